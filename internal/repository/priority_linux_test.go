package repository

import "syscall"

// threadNice is the calling thread's nice value. The raw getpriority system call
// answers 20 - nice, so that its result is never negative.
func threadNice() int {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		return -100
	}
	return 20 - p
}
