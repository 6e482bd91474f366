//go:build linux || darwin

package pickle

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tideserve/tide/internal/loadpace"
)

// pacedFixture is a stream with a bit of everything a paced load pauses in: a
// big bytes payload (the mapping's population), many opcodes (the decoder's run
// loop) and a float64 array of a million elements (the conversion).
func pacedFixture(t *testing.T) (plain []byte, floats []float64) {
	floats = make([]float64, 1<<20)
	data := make([]byte, 8*len(floats))
	for i := range floats {
		floats[i] = math.Sqrt(float64(i)) - 3.5
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(floats[i]))
	}
	q := newPK(4)
	q.op(opMark).bin(bytes.Repeat([]byte("tide"), 1<<20))
	q.op(opEmptyList, opMark)
	for i := 0; i < 50_000; i++ {
		q.int(int64(i))
	}
	q.op(opAppends)
	q.array([]int64{int64(len(floats))}, "<f8", false, data)
	return q.op(opTuple).stop(), floats
}

// A paced load decodes what an unpaced one does, and pauses on the way: in the
// mapping, the decoder and the array conversion, and, for a compressed file,
// the decompression.
func TestPacedLoadDecodesTheSameAndPauses(t *testing.T) {
	plain, floats := pacedFixture(t)
	var zbuf bytes.Buffer
	zw := zlib.NewWriter(&zbuf)
	zw.Write(plain)
	zw.Close()
	for name, file := range map[string][]byte{"plain": plain, "zlib": zbuf.Bytes()} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.pkl")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			want, releaseWant, err := LoadFile(path, Options{Allow: allowAll})
			if err != nil {
				t.Fatal(err)
			}
			defer releaseWant()
			pace := loadpace.New(0.5)
			got, release, err := LoadFile(path, Options{Allow: allowAll, Pacer: pace})
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			g, w := got.(Tuple), want.(Tuple)
			if !bytes.Equal(g[0].([]byte), w[0].([]byte)) || !reflect.DeepEqual(g[1], w[1]) ||
				!bytes.Equal(g[2].(*NDArray).Data, w[2].(*NDArray).Data) {
				t.Fatal("the paced load decoded something else")
			}
			decoded := pace.Slept()
			if decoded == 0 {
				t.Error("the paced decode never paused")
			}
			arr := got.(Tuple)[2].(*NDArray)
			out, err := arr.Float64s()
			if err != nil || !reflect.DeepEqual(out, floats) {
				t.Fatalf("the paced conversion: %v", err)
			}
			if pace.Slept() == decoded {
				t.Error("converting a million elements never paused")
			}
		})
	}
}
