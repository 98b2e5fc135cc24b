package deploy

import (
	"debug/elf"
	"errors"
	"fmt"
)

// CheckStatic returns an error unless the ELF file at path is statically
// linked: no program interpreter (PT_INTERP) and no shared library it needs
// (DT_NEEDED), so it runs on an image with no libc such as distroless/static.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var problems []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			problems = append(problems, errors.New("has a program interpreter (PT_INTERP): dynamically linked"))
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		return fmt.Errorf("%s: read dynamic section: %w", path, err)
	}
	for _, lib := range needed {
		problems = append(problems, fmt.Errorf("needs shared library %s (DT_NEEDED)", lib))
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("%s is not static: %w", path, err)
	}
	return nil
}
