#include "textflag.h"

// A step is "left, or left + node size when x > threshold": UCOMISS (UCOMISD)
// sets "above" only for x > threshold, never for NaN, so a leaf (NaN
// threshold, left its own offset) keeps its rows; CMOV takes the right child
// without a branch to guess. The step macros take the tree's layout:
//
//	MOVS, UCOMIS  MOVSS and UCOMISS for float32 trees, MOVSD and UCOMISD for float64
//	FEAT, LEFT, PAY  the byte offsets of a node's feature, left child and payload
//	             (its threshold is at 0)
//	SIZE, VSIZE  a node's size and a value's size
//
// AX holds the nodes; DX, SI and DI are scratch.

// Every step starts by loading the node at offset O: the row's value into X,
// the left child into SI and the right child (left + SIZE) into DI; DX is
// free again after it.
#define LOAD(MOVS, FEAT, LEFT, SIZE, VSIZE, O, G, LANE, X) \
	MOVL FEAT(AX)(O*1), DX \
	MOVS (LANE*VSIZE)(G)(DX*1), X \
	MOVL LEFT(AX)(O*1), SI \
	LEAL SIZE(SI), DI

// NANCHILD puts in DX the child a NaN value takes: left + SIZE × the node's
// payload's top bit. (A leaf's threshold is NaN too, so every value is
// unordered there; its payload's top bit is 0, and DX is its left, itself.)
#define NANCHILD(PAY, SIZE, O) \
	MOVL PAY(AX)(O*1), DX \
	SARL $31, DX \
	ANDL $SIZE, DX \
	ADDL SI, DX

// STEPR steps the lane whose node offset is in register O; its group's values
// start at G and LANE is its index in the group.
#define STEPR(MOVS, UCOMIS, FEAT, LEFT, SIZE, VSIZE, O, G, LANE, X) \
	LOAD(MOVS, FEAT, LEFT, SIZE, VSIZE, O, G, LANE, X) \
	UCOMIS (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O

// STEPM steps the lane whose offset lives in memory at ADDR (there are not
// registers for sixteen); R14 is scratch too.
#define STEPM(MOVS, UCOMIS, FEAT, LEFT, SIZE, VSIZE, ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	LOAD(MOVS, FEAT, LEFT, SIZE, VSIZE, R14, G, LANE, X) \
	UCOMIS (AX)(R14*1), X \
	CMOVLHI DI, SI \
	MOVL SI, ADDR

// STEPRN and STEPMN are STEPR and STEPM for a batch that may hold NaN: a NaN
// value compares unordered (parity set), and then the step takes NANCHILD's
// child. (The NaN child is worked out before the comparison, whose flags the
// arithmetic would overwrite.)
#define STEPRN(MOVS, UCOMIS, FEAT, LEFT, PAY, SIZE, VSIZE, O, G, LANE, X) \
	LOAD(MOVS, FEAT, LEFT, SIZE, VSIZE, O, G, LANE, X) \
	NANCHILD(PAY, SIZE, O) \
	UCOMIS (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O \
	CMOVLPS DX, O

#define STEPMN(MOVS, UCOMIS, FEAT, LEFT, PAY, SIZE, VSIZE, ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	LOAD(MOVS, FEAT, LEFT, SIZE, VSIZE, R14, G, LANE, X) \
	NANCHILD(PAY, SIZE, R14) \
	UCOMIS (AX)(R14*1), X \
	CMOVLHI DI, SI \
	CMOVLPS DX, SI \
	MOVL SI, ADDR

// The step macros for each tree type.
#define STEPR32(O, G, LANE, X) STEPR(MOVSS, UCOMISS, 4, 8, 16, 4, O, G, LANE, X)
#define STEPM32(ADDR, G, LANE, X) STEPM(MOVSS, UCOMISS, 4, 8, 16, 4, ADDR, G, LANE, X)
#define STEPRN32(O, G, LANE, X) STEPRN(MOVSS, UCOMISS, 4, 8, 12, 16, 4, O, G, LANE, X)
#define STEPMN32(ADDR, G, LANE, X) STEPMN(MOVSS, UCOMISS, 4, 8, 12, 16, 4, ADDR, G, LANE, X)
#define STEPR64(O, G, LANE, X) STEPR(MOVSD, UCOMISD, 8, 12, 24, 8, O, G, LANE, X)
#define STEPM64(ADDR, G, LANE, X) STEPM(MOVSD, UCOMISD, 8, 12, 24, 8, ADDR, G, LANE, X)
#define STEPRN64(O, G, LANE, X) STEPRN(MOVSD, UCOMISD, 8, 12, 16, 24, 8, O, G, LANE, X)
#define STEPMN64(ADDR, G, LANE, X) STEPMN(MOVSD, UCOMISD, 8, 12, 16, 24, 8, ADDR, G, LANE, X)

// A walk's registers: AX nodes, BX g0, BP g1, CX o1; group 0's lanes 0-6 in
// R8-R13 and R15, its lane 7 and all of group 1 in memory (lane7 on the
// frame, group 1 in o1). LEVEL moves all sixteen rows down one level with the
// step macros S (a lane in a register) and M (a lane in memory); the two
// groups' steps alternate, so sixteen independent loads are in flight.
#define LEVEL(S, M) \
	S(R8, BX, 0, X0) \
	M(0(CX), BP, 0, X8) \
	S(R9, BX, 1, X1) \
	M(4(CX), BP, 1, X9) \
	S(R10, BX, 2, X2) \
	M(8(CX), BP, 2, X10) \
	S(R11, BX, 3, X3) \
	M(12(CX), BP, 3, X11) \
	S(R12, BX, 4, X4) \
	M(16(CX), BP, 4, X12) \
	S(R13, BX, 5, X5) \
	M(20(CX), BP, 5, X13) \
	S(R15, BX, 6, X6) \
	M(24(CX), BP, 6, X14) \
	M(lane7-16(SP), BX, 7, X7) \
	M(28(CX), BP, 7, X15)

// WALK is a whole pair walk: it loads the arguments and the offsets, runs
// levels levels with the steps for a batch with or without NaN, and stores
// the offsets back. Its labels are the caller's, so that each function has
// its own.
#define WALK(S, M, SN, MN, LEVELS, LEVELSNAN, DONE) \
	MOVQ nodes+0(FP), AX \
	MOVQ g0+8(FP), BX \
	MOVQ g1+16(FP), BP \
	MOVQ levels+24(FP), R14 \
	MOVQ R14, n-8(SP) \
	MOVQ o0+40(FP), DX \
	MOVQ o1+48(FP), CX \
	MOVL 0(DX), R8 \
	MOVL 4(DX), R9 \
	MOVL 8(DX), R10 \
	MOVL 12(DX), R11 \
	MOVL 16(DX), R12 \
	MOVL 20(DX), R13 \
	MOVL 24(DX), R15 \
	MOVL 28(DX), R14 \
	MOVL R14, lane7-16(SP) \
	CMPQ n-8(SP), $0 \
	JLE DONE \
	CMPB nan+32(FP), $0 \
	JNE LEVELSNAN \
LEVELS: \
	LEVEL(S, M) \
	DECQ n-8(SP) \
	JNZ LEVELS \
	JMP DONE \
LEVELSNAN: \
	LEVEL(SN, MN) \
	DECQ n-8(SP) \
	JNZ LEVELSNAN \
DONE: \
	MOVQ o0+40(FP), DX \
	MOVL R8, 0(DX) \
	MOVL R9, 4(DX) \
	MOVL R10, 8(DX) \
	MOVL R11, 12(DX) \
	MOVL R12, 16(DX) \
	MOVL R13, 20(DX) \
	MOVL R15, 24(DX) \
	MOVL lane7-16(SP), R14 \
	MOVL R14, 28(DX)

// func walkPair(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[8]uint32)
//
// A float32 tree: 16-byte nodes (threshold at 0, feature at 4, left at 8,
// payload at 12), 4-byte values.
TEXT ·walkPair(SB), $16-56
	WALK(STEPR32, STEPM32, STEPRN32, STEPMN32, level32, levelNaN32, done32)
	RET

// func walkPair64(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[8]uint32)
//
// A float64 tree (HistGradientBoosting's, LightGBM's): 24-byte nodes
// (threshold at 0, feature at 8, left at 12, payload at 16), 8-byte values.
TEXT ·walkPair64(SB), $16-56
	WALK(STEPR64, STEPM64, STEPRN64, STEPMN64, level64, levelNaN64, done64)
	RET
