//go:build race

package server

// raceDetector is on: sync.Pool drops a share of what is put back at random
// there, so counts of allocations say nothing.
const raceDetector = true
