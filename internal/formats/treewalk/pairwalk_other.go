//go:build !amd64

package treewalk

import "unsafe"

// pairWalk says whether this architecture has walkPair: elsewhere every
// group takes the Go walk.
const pairWalk = false

func walkPair(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[lanes]uint32) {
	panic("treewalk: walkPair is amd64 assembly")
}

func walkPair64(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[lanes]uint32) {
	panic("treewalk: walkPair64 is amd64 assembly")
}
