//go:build linux || darwin

package pickle

import (
	"os"
	"syscall"

	"github.com/tideserve/tide/internal/loadpace"
)

// mapFile maps size bytes of f read-only. ok is false when it cannot (an empty
// file, a file system without mmap), and the caller reads the file instead.
// An unpaced load has the mapping populated in the one system call; a paced one
// populates it a chunk at a time between its pauses (populateChunk).
func mapFile(f *os.File, size int64, pace *loadpace.Pacer) (data []byte, release func(), ok bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, false
	}
	flags := syscall.MAP_PRIVATE
	if pace == nil {
		flags |= mapPopulate
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, flags)
	if err != nil {
		return nil, nil, false
	}
	if pace != nil {
		for off := 0; off < len(data); off += populateChunk {
			pace.Pause()
			if !populate(data[off:min(off+populateChunk, len(data))]) {
				break // an older kernel, or a file cut short: the rest faults in as read
			}
		}
	}
	return data, func() { syscall.Munmap(data) }, true
}

// populateChunk is how much of a mapping a paced load reads in between two
// pauses: 1 MiB of page cache maps in well under a tenth of a millisecond.
const populateChunk = 1 << 20
