//go:build linux || darwin

package pickle

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only. ok is false when it cannot (an empty
// file, a file system without mmap), and the caller reads the file instead.
func mapFile(f *os.File, size int64) (data []byte, release func(), ok bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, false
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE|mapPopulate)
	if err != nil {
		return nil, nil, false
	}
	return data, func() { syscall.Munmap(data) }, true
}
