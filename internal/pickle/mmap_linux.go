package pickle

import (
	"syscall"
	"unsafe"
)

// mapPopulate reads the whole mapping in at once instead of fault by fault.
const mapPopulate = syscall.MAP_POPULATE

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14): populate page tables
// for reading, as MAP_POPULATE does, for part of a mapping.
const madvPopulateRead = 22

// populate reads part of a mapping in; false when the kernel cannot.
func populate(b []byte) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), madvPopulateRead)
	return errno == 0
}
