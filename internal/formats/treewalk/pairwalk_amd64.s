#include "textflag.h"

// A node is 16 bytes: threshold float32 at 0, feature (a column's byte offset
// in a group) at 4, left child's byte offset at 8, payload at 12. A step is
// "left, or left + 16 when x > threshold": UCOMISS sets "above" only for
// x > threshold, never for NaN, so a leaf (NaN threshold, left its own offset)
// keeps its rows; CMOV takes the right child without a branch to guess.

// STEPR steps the lane whose offset is in register O; its group's values
// start at G and LANE is its index in the group. DX, SI and DI are scratch.
#define STEPR(O, G, LANE, X) \
	MOVL 4(AX)(O*1), DX \
	MOVSS (LANE*4)(G)(DX*1), X \
	MOVL 8(AX)(O*1), SI \
	LEAL 16(SI), DI \
	UCOMISS (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O

// STEPM steps the lane whose offset lives in memory at ADDR (there are not
// registers for sixteen); R14 is scratch too.
#define STEPM(ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	MOVL 4(AX)(R14*1), DX \
	MOVSS (LANE*4)(G)(DX*1), X \
	MOVL 8(AX)(R14*1), SI \
	LEAL 16(SI), DI \
	UCOMISS (AX)(R14*1), X \
	CMOVLHI DI, SI \
	MOVL SI, ADDR

// STEPRN and STEPMN are STEPR and STEPM for a batch that may hold NaN: a NaN
// value compares unordered (parity set), and then the node's payload's top
// bit says which child: DX becomes left + 16 × that bit. (A leaf's threshold
// is NaN too, so every value is unordered there; its payload's top bit is 0,
// and DX is its left, itself.)
#define STEPRN(O, G, LANE, X) \
	MOVL 4(AX)(O*1), DX \
	MOVSS (LANE*4)(G)(DX*1), X \
	MOVL 8(AX)(O*1), SI \
	LEAL 16(SI), DI \
	MOVL 12(AX)(O*1), DX \
	SHRL $31, DX \
	SHLL $4, DX \
	ADDL SI, DX \
	UCOMISS (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O \
	CMOVLPS DX, O

#define STEPMN(ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	MOVL 4(AX)(R14*1), DX \
	MOVSS (LANE*4)(G)(DX*1), X \
	MOVL 8(AX)(R14*1), SI \
	LEAL 16(SI), DI \
	MOVL 12(AX)(R14*1), DX \
	SHRL $31, DX \
	SHLL $4, DX \
	ADDL SI, DX \
	UCOMISS (AX)(R14*1), X \
	CMOVLHI DI, SI \
	CMOVLPS DX, SI \
	MOVL SI, ADDR

// func walkPair(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[8]uint32)
//
// Registers: AX nodes, BX g0, BP g1, CX o1; group 0's lanes 0-6 in R8-R13
// and R15, its lane 7 and all of group 1 in memory. The steps of the two
// groups alternate, so sixteen independent loads are in flight.
TEXT ·walkPair(SB), $16-56
	MOVQ nodes+0(FP), AX
	MOVQ g0+8(FP), BX
	MOVQ g1+16(FP), BP
	MOVQ levels+24(FP), R14
	MOVQ R14, n-8(SP)
	MOVQ o0+40(FP), DX
	MOVQ o1+48(FP), CX
	MOVL 0(DX), R8
	MOVL 4(DX), R9
	MOVL 8(DX), R10
	MOVL 12(DX), R11
	MOVL 16(DX), R12
	MOVL 20(DX), R13
	MOVL 24(DX), R15
	MOVL 28(DX), R14
	MOVL R14, lane7-16(SP)
	CMPQ n-8(SP), $0
	JLE done
	CMPB nan+32(FP), $0
	JNE levelNaN

level:
	STEPR(R8, BX, 0, X0)
	STEPM(0(CX), BP, 0, X8)
	STEPR(R9, BX, 1, X1)
	STEPM(4(CX), BP, 1, X9)
	STEPR(R10, BX, 2, X2)
	STEPM(8(CX), BP, 2, X10)
	STEPR(R11, BX, 3, X3)
	STEPM(12(CX), BP, 3, X11)
	STEPR(R12, BX, 4, X4)
	STEPM(16(CX), BP, 4, X12)
	STEPR(R13, BX, 5, X5)
	STEPM(20(CX), BP, 5, X13)
	STEPR(R15, BX, 6, X6)
	STEPM(24(CX), BP, 6, X14)
	STEPM(lane7-16(SP), BX, 7, X7)
	STEPM(28(CX), BP, 7, X15)
	DECQ n-8(SP)
	JNZ level
	JMP done

levelNaN:
	STEPRN(R8, BX, 0, X0)
	STEPMN(0(CX), BP, 0, X8)
	STEPRN(R9, BX, 1, X1)
	STEPMN(4(CX), BP, 1, X9)
	STEPRN(R10, BX, 2, X2)
	STEPMN(8(CX), BP, 2, X10)
	STEPRN(R11, BX, 3, X3)
	STEPMN(12(CX), BP, 3, X11)
	STEPRN(R12, BX, 4, X4)
	STEPMN(16(CX), BP, 4, X12)
	STEPRN(R13, BX, 5, X5)
	STEPMN(20(CX), BP, 5, X13)
	STEPRN(R15, BX, 6, X6)
	STEPMN(24(CX), BP, 6, X14)
	STEPMN(lane7-16(SP), BX, 7, X7)
	STEPMN(28(CX), BP, 7, X15)
	DECQ n-8(SP)
	JNZ levelNaN

done:
	MOVQ o0+40(FP), DX
	MOVL R8, 0(DX)
	MOVL R9, 4(DX)
	MOVL R10, 8(DX)
	MOVL R11, 12(DX)
	MOVL R12, 16(DX)
	MOVL R13, 20(DX)
	MOVL R15, 24(DX)
	MOVL lane7-16(SP), R14
	MOVL R14, 28(DX)
	RET

// The same for float64 trees (HistGradientBoosting's): a node is 24 bytes,
// threshold float64 at 0, feature at 8, left at 12, payload at 16; a value is 8
// bytes. The NaN child is left + 24 × the payload's top bit.
//
// func walkPair64(nodes, g0, g1 unsafe.Pointer, levels int, nan bool, o0, o1 *[8]uint32)
#define STEPR64(O, G, LANE, X) \
	MOVL 8(AX)(O*1), DX \
	MOVSD (LANE*8)(G)(DX*1), X \
	MOVL 12(AX)(O*1), SI \
	LEAL 24(SI), DI \
	UCOMISD (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O

#define STEPM64(ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	MOVL 8(AX)(R14*1), DX \
	MOVSD (LANE*8)(G)(DX*1), X \
	MOVL 12(AX)(R14*1), SI \
	LEAL 24(SI), DI \
	UCOMISD (AX)(R14*1), X \
	CMOVLHI DI, SI \
	MOVL SI, ADDR

#define STEPRN64(O, G, LANE, X) \
	MOVL 8(AX)(O*1), DX \
	MOVSD (LANE*8)(G)(DX*1), X \
	MOVL 12(AX)(O*1), SI \
	LEAL 24(SI), DI \
	MOVL 16(AX)(O*1), DX \
	SARL $31, DX \
	ANDL $24, DX \
	ADDL SI, DX \
	UCOMISD (AX)(O*1), X \
	MOVL SI, O \
	CMOVLHI DI, O \
	CMOVLPS DX, O

#define STEPMN64(ADDR, G, LANE, X) \
	MOVL ADDR, R14 \
	MOVL 8(AX)(R14*1), DX \
	MOVSD (LANE*8)(G)(DX*1), X \
	MOVL 12(AX)(R14*1), SI \
	LEAL 24(SI), DI \
	MOVL 16(AX)(R14*1), DX \
	SARL $31, DX \
	ANDL $24, DX \
	ADDL SI, DX \
	UCOMISD (AX)(R14*1), X \
	CMOVLHI DI, SI \
	CMOVLPS DX, SI \
	MOVL SI, ADDR

TEXT ·walkPair64(SB), $16-56
	MOVQ nodes+0(FP), AX
	MOVQ g0+8(FP), BX
	MOVQ g1+16(FP), BP
	MOVQ levels+24(FP), R14
	MOVQ R14, n-8(SP)
	MOVQ o0+40(FP), DX
	MOVQ o1+48(FP), CX
	MOVL 0(DX), R8
	MOVL 4(DX), R9
	MOVL 8(DX), R10
	MOVL 12(DX), R11
	MOVL 16(DX), R12
	MOVL 20(DX), R13
	MOVL 24(DX), R15
	MOVL 28(DX), R14
	MOVL R14, lane7-16(SP)
	CMPQ n-8(SP), $0
	JLE done64
	CMPB nan+32(FP), $0
	JNE levelNaN64

level64:
	STEPR64(R8, BX, 0, X0)
	STEPM64(0(CX), BP, 0, X8)
	STEPR64(R9, BX, 1, X1)
	STEPM64(4(CX), BP, 1, X9)
	STEPR64(R10, BX, 2, X2)
	STEPM64(8(CX), BP, 2, X10)
	STEPR64(R11, BX, 3, X3)
	STEPM64(12(CX), BP, 3, X11)
	STEPR64(R12, BX, 4, X4)
	STEPM64(16(CX), BP, 4, X12)
	STEPR64(R13, BX, 5, X5)
	STEPM64(20(CX), BP, 5, X13)
	STEPR64(R15, BX, 6, X6)
	STEPM64(24(CX), BP, 6, X14)
	STEPM64(lane7-16(SP), BX, 7, X7)
	STEPM64(28(CX), BP, 7, X15)
	DECQ n-8(SP)
	JNZ level64
	JMP done64

levelNaN64:
	STEPRN64(R8, BX, 0, X0)
	STEPMN64(0(CX), BP, 0, X8)
	STEPRN64(R9, BX, 1, X1)
	STEPMN64(4(CX), BP, 1, X9)
	STEPRN64(R10, BX, 2, X2)
	STEPMN64(8(CX), BP, 2, X10)
	STEPRN64(R11, BX, 3, X3)
	STEPMN64(12(CX), BP, 3, X11)
	STEPRN64(R12, BX, 4, X4)
	STEPMN64(16(CX), BP, 4, X12)
	STEPRN64(R13, BX, 5, X5)
	STEPMN64(20(CX), BP, 5, X13)
	STEPRN64(R15, BX, 6, X6)
	STEPMN64(24(CX), BP, 6, X14)
	STEPMN64(lane7-16(SP), BX, 7, X7)
	STEPMN64(28(CX), BP, 7, X15)
	DECQ n-8(SP)
	JNZ levelNaN64

done64:
	MOVQ o0+40(FP), DX
	MOVL R8, 0(DX)
	MOVL R9, 4(DX)
	MOVL R10, 8(DX)
	MOVL R11, 12(DX)
	MOVL R12, 16(DX)
	MOVL R13, 20(DX)
	MOVL R15, 24(DX)
	MOVL lane7-16(SP), R14
	MOVL R14, 28(DX)
	RET
