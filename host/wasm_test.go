package host_test

// A minimal WebAssembly binary encoder for hand-written hostile modules that a
// Go toolchain cannot produce (an unreachable trap, missing exports, foreign
// ABI markers, unsupported imports).

const (
	tI32 = 0x7f
	tI64 = 0x7e
)

type wfunc struct {
	name            string // export name; "" for no export
	params, results []byte
	body            []byte // instructions, without the final end
}

type wimport struct {
	module, name    string
	params, results []byte
}

func uleb(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func vec(items ...[]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func functype(params, results []byte) []byte {
	out := append([]byte{0x60}, uleb(uint32(len(params)))...)
	out = append(out, params...)
	out = append(out, uleb(uint32(len(results)))...)
	return append(out, results...)
}

// wasmModule encodes a module with one page of exported memory "memory" (when
// memory is true), the imports and the functions.
func wasmModule(memory bool, imports []wimport, funcs []wfunc) []byte {
	pages := byte(0)
	if memory {
		pages = 1
	}
	return wasmModulePages(pages, imports, funcs)
}

// wasmModulePages is wasmModule with pages (< 128) pages of memory; 0 exports none.
func wasmModulePages(pages byte, imports []wimport, funcs []wfunc) []byte {
	memory := pages > 0
	var types, imps, fidx, exports, codes [][]byte
	for i, im := range imports {
		types = append(types, functype(im.params, im.results))
		imps = append(imps, append(append(name(im.module), name(im.name)...), append([]byte{0x00}, uleb(uint32(i))...)...))
	}
	for i, f := range funcs {
		ti := uint32(len(imports) + i)
		types = append(types, functype(f.params, f.results))
		fidx = append(fidx, uleb(ti))
		if f.name != "" {
			exports = append(exports, append(name(f.name), append([]byte{0x00}, uleb(ti)...)...))
		}
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, 0x0b)
		codes = append(codes, append(uleb(uint32(len(body))), body...))
	}
	if memory {
		exports = append(exports, append(name("memory"), 0x02, 0x00))
	}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, vec(types...))...)
	if len(imps) > 0 {
		out = append(out, section(2, vec(imps...))...)
	}
	out = append(out, section(3, vec(fidx...))...)
	if memory {
		out = append(out, section(5, vec([]byte{0x00, pages}))...)
	}
	out = append(out, section(7, vec(exports...))...)
	return append(out, section(10, vec(codes...))...)
}

var (
	i32Const1024 = []byte{0x41, 0x80, 0x08}
	i64Const0    = []byte{0x42, 0x00}
	unreachable  = []byte{0x00}
	spinForever  = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop br 0 end
)

// abiFuncs are the v1 exports of a hand-written guest whose allocator always
// returns 1024 and whose reconcile runs body.
func abiFuncs(marker string, reconcileBody []byte) []wfunc {
	return []wfunc{
		{name: marker},
		{name: "wre_alloc", params: []byte{tI32}, results: []byte{tI32}, body: i32Const1024},
		{name: "wre_free", params: []byte{tI32}},
		{name: "wre_reconcile", params: []byte{tI32, tI32}, results: []byte{tI64}, body: reconcileBody},
	}
}
