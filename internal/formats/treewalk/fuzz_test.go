package treewalk

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzCompile builds trees from arbitrary node arrays, thresholds and tests of
// membership, as a corrupt or hostile model file could describe them once its
// runtime has decoded it. Compile must
// refuse what it cannot walk safely (the walks read memory without bounds
// checks), and what it accepts must walk to the reference's leaves.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{2, 3, 0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0})
	f.Add([]byte{1, 1, 1, 0, 0, 0, 0})
	f.Add([]byte{3, 5, 0, 2, 2, 1, 3, 1, 0, 0, 0, 0, 1, 1, 2, 1, 4, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	// A test of membership (kind 0x44: one word) at the root, from -1.
	f.Add([]byte{1, 3, 0x44, 0, 0xfc, 1, 2, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 4, 8, 0xf8, 0xfe, 31, 32})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		nFeatures, nNodes := int(data[0]%8), int(data[1]%64)
		data = data[2:]
		splits := make([]Split[float32], 0, nNodes)
		for i := 0; i < nNodes && len(data) >= 5; i++ {
			kind, a, b, c, d := data[0], data[1], data[2], data[3], data[4]
			data = data[5:]
			if kind%2 == 1 {
				splits = append(splits, Split[float32]{Leaf: true, Payload: binary.LittleEndian.Uint32([]byte{a, b, c, d})})
				continue
			}
			s := Split[float32]{
				Feature:   int(int8(a)),
				Threshold: float32(int8(b)) / 4,
				NaNRight:  kind&2 != 0,
				Left:      int(int8(c)),
				Right:     int(int8(d)),
			}
			if kind&4 != 0 {
				// A test of membership: the kind's top bits pick the set's
				// size (0 to 3 words) and its bits; thresholds below -1
				// must be refused.
				s.Categories = make([]uint32, kind>>6)
				for w := range s.Categories {
					s.Categories[w] = uint32(kind) * 0x9e3779b1 >> w
				}
			}
			splits = append(splits, s)
		}
		tree, err := Compile(splits, nFeatures)
		if err != nil {
			return
		}
		// Rows from the rest of the input: values around the thresholds,
		// NaN and infinities.
		special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
		nRows := 1 + len(data)/max(1, nFeatures)
		nRows = min(nRows, 40)
		X := make([]float32, nRows*nFeatures)
		for i := range X {
			if i < len(data) {
				v := int8(data[i])
				if v > 120 {
					X[i] = special[int(v)%3]
				} else {
					X[i] = float32(v) / 4
				}
			}
		}
		var batch Batch[float32]
		batch.Load(X, nRows, nFeatures)
		out := make([]uint32, nRows)
		tree.Leaves(&batch, 0, out)
		// The Go walk alone must agree too, where the pair walk took some
		// groups above.
		goOut := make([]uint32, nRows)
		func() {
			defer func(was bool) { usePairWalk = was }(usePairWalk)
			usePairWalk = false
			tree.Leaves(&batch, 0, goOut)
		}()
		for r := 0; r < nRows; r++ {
			row := X[r*nFeatures : (r+1)*nFeatures]
			want := reference(splits, row)
			if got := tree.Leaf(row); got != want {
				t.Fatalf("row %d: Leaf %d, reference %d", r, got, want)
			}
			if out[r] != want || goOut[r] != want {
				t.Fatalf("row %d: Leaves %d (Go walk alone %d), reference %d", r, out[r], goOut[r], want)
			}
		}
	})
}
