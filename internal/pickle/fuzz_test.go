package pickle

import (
	"os"
	"testing"

	"github.com/tideserve/tide/internal/loadmem"
)

// Run briefly with (minimizing each new input for the default 60 s would stall
// a 20-second run):
//
//	go test ./internal/pickle -run '^$' -fuzz FuzzDecode -fuzztime 20s -fuzzminimizetime 2s
//	go test ./internal/pickle -run '^$' -fuzz FuzzLoad -fuzztime 20s -fuzzminimizetime 2s

const fuzzMaxBytes = 32 << 20

// FuzzDecode feeds arbitrary streams to the decoder with every class allowed (the
// most code reachable) and then reads every array it produced through the
// accessors that runtimes use.
func FuzzDecode(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if plain, err := decompress(data, loadmem.New(fuzzMaxBytes), nil); err == nil {
			f.Add(plain)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeBytes(data, Options{Allow: allowAll, MaxBytes: fuzzMaxBytes})
		if err != nil {
			return
		}
		exercise(v, &walk{seen: map[any]bool{}, left: 100000})
	})
}

// FuzzLoad covers container detection and decompression.
func FuzzLoad(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := LoadBytes(data, Options{Allow: allowMain, MaxBytes: fuzzMaxBytes})
		if err != nil {
			return
		}
		exercise(v, &walk{seen: map[any]bool{}, left: 100000})
	})
}

// walk bounds exercise: shared tuples (DUP, memo) can make a small stream a DAG
// with exponentially many paths, and lists, dicts and objects can form cycles.
type walk struct {
	seen map[any]bool
	left int
}

// exercise walks a decoded value and calls the accessors of value.go on
// everything they accept; none may panic.
func exercise(v any, w *walk) {
	if w.left <= 0 {
		return
	}
	w.left--
	seen := w.seen
	switch x := v.(type) {
	case *List:
		if seen[x] {
			return
		}
		seen[x] = true
		for _, it := range x.Items {
			exercise(it, w)
		}
	case Tuple:
		for _, it := range x {
			exercise(it, w)
		}
	case *Dict:
		if seen[x] {
			return
		}
		seen[x] = true
		for i := range x.Keys {
			exercise(x.Keys[i], w)
			exercise(x.Values[i], w)
			if s, ok := x.Keys[i].(string); ok {
				x.Get(s)
			}
		}
	case *Object:
		if seen[x] {
			return
		}
		seen[x] = true
		_ = x.Attrs()
		exercise(x.State, w)
		for _, a := range x.Args {
			exercise(a, w)
		}
	case *NDArray:
		if seen[x] {
			return
		}
		seen[x] = true
		_ = TypeName(x)
		_, _ = x.Float64s()
		_, _ = x.Int64s()
		_, _ = x.Strings()
		_, _ = ToFloat(x)
		for _, f := range x.Dtype.Fields {
			_, _ = x.FieldFloat64s(f.Name)
			_, _ = x.FieldInt64s(f.Name)
			if fa, err := x.Field(f.Name); err == nil {
				_, _ = fa.Float64s()
			}
		}
		for _, o := range x.Objects {
			exercise(o, w)
		}
	}
}
