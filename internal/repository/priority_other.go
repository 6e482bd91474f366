//go:build !linux

package repository

// lowerPriority does nothing where threads have no per-thread nice value.
func lowerPriority() {}

// loadNice is the nice value loads would run at (Linux only).
const loadNice = 10
