package image

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// SharedLibrary is one file of the shared-library layer: the path it gets in the
// image and the host file its bytes come from.
type SharedLibrary struct {
	Path   string // absolute, inside the image
	Source string // on the host (symbolic links resolved)
	Loader bool   // the dynamic loader named by PT_INTERP
}

// libraryDirs are the directories Debian's dynamic loader searches when there is no
// ld.so.cache (an image has none): the multiarch directories, then /lib and /usr/lib.
// A library goes into the image under the directory it was found in, so the loader
// in the image finds it the same way.
func libraryDirs(arch string) []string {
	var dirs []string
	if t := multiarchTriplet[arch]; t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	return append(dirs, "/lib", "/usr/lib")
}

var multiarchTriplet = map[string]string{
	"amd64":   "x86_64-linux-gnu",
	"arm64":   "aarch64-linux-gnu",
	"386":     "i386-linux-gnu",
	"arm":     "arm-linux-gnueabihf",
	"ppc64le": "powerpc64le-linux-gnu",
	"s390x":   "s390x-linux-gnu",
	"riscv64": "riscv64-linux-gnu",
}

// elfObject is one ELF file on the host, with where it sits in the image.
type elfObject struct {
	imagePath, hostPath string
}

// dynamicInterpreter returns the PT_INTERP path of an ELF executable: "" for a
// static one, or for a file that is not ELF at all (it is copied as it is: tests use
// stand-ins).
func dynamicInterpreter(file string) (string, error) {
	r, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer r.Close()
	f, err := elf.NewFile(r)
	if err != nil {
		return "", nil
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("image: %s: read PT_INTERP: %w", file, err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

// ResolveSharedLibraries returns the dynamic loader interp and every shared library
// that the given ELF objects need, transitively, as the loader in an image without
// ld.so.cache would find them: DT_NEEDED names looked up in each object's
// DT_RUNPATH/DT_RPATH ($ORIGIN is the object's directory) and then in the standard
// directories, under root (the host's file system, "/" unless testing). Each object
// is given as image path → host path. Libraries of another ELF class or machine
// are passed over, as the loader does. The result is sorted by image path.
//
// A DT_NEEDED entry naming the loader itself (libstdc++ and ONNX Runtime list
// ld-linux-x86-64.so.2) is satisfied by the loader already mapped, which glibc
// matches by its soname, so the loader is in the image once, at its PT_INTERP path.
func ResolveSharedLibraries(root, arch, interp string, objects map[string]string) ([]SharedLibrary, error) {
	if root == "" {
		root = "/"
	}
	hostPath := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	loaderSrc, err := filepath.EvalSymlinks(hostPath(interp))
	if err != nil {
		return nil, fmt.Errorf("image: dynamic loader %s: %w", interp, err)
	}
	found := map[string]SharedLibrary{interp: {Path: interp, Source: loaderSrc, Loader: true}}
	loaderName := path.Base(interp)
	var queue []elfObject
	for img, host := range objects {
		queue = append(queue, elfObject{imagePath: img, hostPath: host})
	}
	slices.SortFunc(queue, func(a, b elfObject) int { return strings.Compare(a.imagePath, b.imagePath) })
	seen := map[string]string{} // DT_NEEDED name → image path, once resolved
	dirs := libraryDirs(arch)
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		needed, searchPath, class, machine, err := dynamicSection(obj.hostPath)
		if err != nil {
			return nil, err
		}
		for _, name := range needed {
			if name == loaderName {
				continue
			}
			if _, ok := seen[name]; ok {
				continue
			}
			if strings.Contains(name, "/") {
				return nil, fmt.Errorf("image: %s needs %s by path; only library names are supported", obj.hostPath, name)
			}
			lib, ok := findLibrary(name, obj, searchPath, dirs, hostPath, class, machine)
			if !ok {
				return nil, fmt.Errorf("image: %s needs %s, which is not in %s (under %s)", obj.hostPath, name, strings.Join(append(searchPath, dirs...), ", "), root)
			}
			seen[name] = lib.Path
			if _, ok := found[lib.Path]; ok {
				continue
			}
			found[lib.Path] = lib
			queue = append(queue, elfObject{imagePath: lib.Path, hostPath: lib.Source})
		}
	}
	libs := make([]SharedLibrary, 0, len(found))
	for _, l := range found {
		libs = append(libs, l)
	}
	slices.SortFunc(libs, func(a, b SharedLibrary) int { return strings.Compare(a.Path, b.Path) })
	return libs, nil
}

// dynamicSection reads an object's DT_NEEDED names and its library search path
// (DT_RUNPATH, or DT_RPATH when there is no RUNPATH, split on ':').
func dynamicSection(file string) (needed, searchPath []string, class elf.Class, machine elf.Machine, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	needed, err = f.ImportedLibraries()
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("image: %s: dynamic section: %w", file, err)
	}
	paths, err := f.DynString(elf.DT_RUNPATH)
	if err == nil && len(paths) == 0 {
		paths, err = f.DynString(elf.DT_RPATH)
	}
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("image: %s: run path: %w", file, err)
	}
	for _, p := range paths {
		searchPath = append(searchPath, strings.Split(p, ":")...)
	}
	return needed, searchPath, f.Class, f.Machine, nil
}

// findLibrary looks name up in the object's run path, then in the standard
// directories, and returns the first regular ELF file of the same class and machine.
func findLibrary(name string, obj elfObject, searchPath, dirs []string, hostPath func(string) string, class elf.Class, machine elf.Machine) (SharedLibrary, bool) {
	type candidate struct{ imageDir, hostDir string }
	var cands []candidate
	for _, d := range searchPath {
		switch {
		case d == "$ORIGIN" || d == "${ORIGIN}" || strings.HasPrefix(d, "$ORIGIN/") || strings.HasPrefix(d, "${ORIGIN}/"):
			rest := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(d, "${ORIGIN}"), "$ORIGIN"), "/")
			cands = append(cands, candidate{
				imageDir: path.Join(path.Dir(obj.imagePath), rest),
				hostDir:  filepath.Join(filepath.Dir(obj.hostPath), rest),
			})
		case path.IsAbs(d):
			cands = append(cands, candidate{imageDir: path.Clean(d), hostDir: hostPath(d)})
		}
	}
	for _, d := range dirs {
		cands = append(cands, candidate{imageDir: d, hostDir: hostPath(d)})
	}
	for _, c := range cands {
		src, err := filepath.EvalSymlinks(filepath.Join(c.hostDir, name))
		if err != nil {
			continue
		}
		if st, err := os.Stat(src); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if !sameTarget(src, class, machine) {
			continue
		}
		return SharedLibrary{Path: path.Join(c.imageDir, name), Source: src}, true
	}
	return SharedLibrary{}, false
}

func sameTarget(file string, class elf.Class, machine elf.Machine) bool {
	f, err := elf.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Class == class && f.Machine == machine
}

// addSharedLibraries adds the loader (0755) and the libraries (0644) to b.
func (b *layerBuilder) addSharedLibraries(libs []SharedLibrary) error {
	for _, l := range libs {
		mode := fs.FileMode(0o644)
		if l.Loader {
			mode = 0o755
		}
		if err := b.copyFile(l.Source, l.Path, mode); err != nil {
			return err
		}
	}
	return nil
}
