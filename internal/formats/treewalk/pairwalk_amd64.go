package treewalk

import "unsafe"

// pairWalk says whether this architecture has walkPair.
const pairWalk = true

// walkPair moves the rows of two groups (g0, g1: each lanes rows, laid out as
// Batch lays them) of a float32 tree down levels levels, from the node byte
// offsets in o0 and o1, which it overwrites with where the rows end up. nan
// says whether the groups may hold NaN: their steps also read the node's NaN
// direction, five instructions more.
//
// It is assembly because the Go compiler writes the step as a comparison, a
// flag to an integer, a shift and an add, and spills lanes to the stack; a
// conditional move on a float comparison it does not make. Here a step is
// seven instructions, and sixteen rows' chains of loads overlap: an XGBoost
// batch walks about 1.35 times as fast (docs/performance.md).
//
//go:noescape
func walkPair(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[lanes]uint32)

// walkPair64 is walkPair for a float64 tree.
//
//go:noescape
func walkPair64(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[lanes]uint32)
