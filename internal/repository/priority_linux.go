package repository

import (
	"runtime"
	"syscall"
)

// loadNice is the nice value of a loading thread: lower priority than serving
// (0), so that on a busy node the kernel runs request handlers first.
const loadNice = 10

// lowerPriority moves the calling goroutine onto a thread of its own and lowers
// that thread's priority. Linux applies nice values per thread, and Go would move
// the goroutine between threads, so it is locked to this one; it never unlocks,
// so the thread, with its priority, ends when the goroutine returns rather than
// going back to the pool to run request handlers at nice 10.
func lowerPriority() {
	runtime.LockOSThread()
	// Failing (a seccomp profile that forbids it) leaves normal priority.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), loadNice)
}
