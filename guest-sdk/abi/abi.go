package abi

// Names shared by host and guest. docs/abi.md describes each one.
const (
	// ImportModule is the single import namespace of every host function.
	ImportModule = "wre"
	// ExportPrefix starts the name of every guest export the host looks for.
	ExportPrefix = "wre_"

	// MarkerV1 is the empty function a guest exports to announce ABI v1.
	MarkerV1 = "wre_abi_v1"

	// MarkerV2 is the empty function a guest exports to announce ABI v2.
	MarkerV2 = "wre_abi_v2"
	// ExportBuffer is wre_buffer(size u32) -> ptr u32 (ABI v2): a buffer of
	// at least size bytes that the host writes its messages into.
	ExportBuffer = "wre_buffer"

	// ExportAlloc is wre_alloc(size u32) -> ptr u32.
	ExportAlloc = "wre_alloc"
	// ExportFree is wre_free(ptr u32).
	ExportFree = "wre_free"
	// ExportReconcile is wre_reconcile(req_ptr u32, req_len u32) -> u64.
	ExportReconcile = "wre_reconcile"

	// ImportCall is wre.call(op u32, req_ptr u32, req_len u32) -> u64.
	ImportCall = "call"
	// ImportLog is wre.log(level u32, ptr u32, len u32).
	ImportLog = "log"
)

// Op selects what wre.call does.
type Op uint32

// Operations of wre.call. Unknown values are answered with status 400.
const (
	OpGet          Op = 1
	OpList         Op = 2
	OpCreate       Op = 3
	OpUpdate       Op = 4
	OpPatch        Op = 5
	OpDelete       Op = 6
	OpStatusUpdate Op = 7
	OpStatusPatch  Op = 8
	OpEvent        Op = 9
	OpConfig       Op = 10
	// OpDeclare (ABI v2) declares a projection; only during _initialize.
	OpDeclare Op = 11
	// OpApply (ABI v2) server-side applies the projected fields of a record.
	OpApply Op = 12
	// OpStatusApply (ABI v2) server-side applies the projected status fields
	// of a record to the status subresource.
	OpStatusApply Op = 13
)

var opNames = [...]string{
	OpGet: "get", OpList: "list", OpCreate: "create", OpUpdate: "update",
	OpPatch: "patch", OpDelete: "delete", OpStatusUpdate: "status_update",
	OpStatusPatch: "status_patch", OpEvent: "event", OpConfig: "config",
	OpDeclare: "declare", OpApply: "apply", OpStatusApply: "status_apply",
}

// Ops returns every operation this version of the package defines, in
// numeric order: the one list of ops that metrics and docs are built from.
func Ops() []Op {
	var out []Op
	for op, name := range opNames {
		if name != "" {
			out = append(out, Op(op))
		}
	}
	return out
}

// String returns the lower-case name of the operation ("get", "status_patch"),
// or "unknown" for values this version does not define.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "unknown"
}

// Level is the severity passed to wre.log.
type Level uint32

// Log levels. Unknown levels are logged at LevelInfo.
const (
	LevelError Level = 0
	LevelInfo  Level = 1
	LevelDebug Level = 2
	LevelTrace Level = 3
)

// Content types of object bodies.
const (
	// ContentTypeProtobuf is the raw output of the generated Marshal method of a
	// k8s.io/api type, without the Kubernetes "k8s\x00" envelope; the type is the
	// Group/Version/Kind named in the same message.
	ContentTypeProtobuf = "application/vnd.kubernetes.protobuf"
	// ContentTypeJSON is a JSON object including apiVersion and kind.
	ContentTypeJSON = "application/json"
	// ContentTypeFlat is an ABI v2 flat record of a declared projection.
	ContentTypeFlat = "application/vnd.wre.flat"
)

// Patch types, the same strings as k8s.io/apimachinery/pkg/types.PatchType.
const (
	PatchJSON           = "application/json-patch+json"
	PatchMerge          = "application/merge-patch+json"
	PatchStrategicMerge = "application/strategic-merge-patch+json"
	PatchApply          = "application/apply-patch+yaml"
)

// Pack returns (ptr << 32) | len, the form in which buffers are returned.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack splits a value made by Pack.
func Unpack(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }
