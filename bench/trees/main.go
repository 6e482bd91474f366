// Command trees is Tide's side of bench/trees.sh: it loads the tree ensembles that
// bench/trees.py wrote through the same format loaders tide-server uses, checks
// that their answers are bit for bit the libraries' own, and times Predict (the
// model's whole call: input tensor in, output tensors out) on a batch.
//
//	go run ./bench/trees -dir DIR [-rows 1000] [-repeats 15] [-procs 1]
//
// It prints one line per model, "NAME ROWS NS_PER_BATCH", the median of
// -repeats calls after two warm-ups, with GOMAXPROCS set to -procs, and then
// "NAME 1 NS" for a one-row call (the median of 2,000). With -procs above 1 it
// also prints "wake 1 NS": how long a goroutine started while the other cores
// are idle takes to run, the cost a batch split across cores pays up front,
// and for each model "NAME alone-120 NS" and "NAME together-120 NS": a batch of
// 120 rows (too few to be split) run alone, and run on every core at once, each
// its own copy, started together. How much the cores slow each other down when
// all of them work bounds what splitting a batch across them can gain.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tideserve/tide/internal/formats"
	_ "github.com/tideserve/tide/internal/formats/sklearn"
	_ "github.com/tideserve/tide/internal/formats/xgboost"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

const features = 30

// benchModel is one ensemble of the table: its file, and which output holds the
// values the library wrote to NAME.expect.f64.
type benchModel struct {
	name, file, format, output string
}

var models = []benchModel{
	{"rf", "rf.pkl", "sklearn", "predict_proba"},
	{"hgb", "hgb.pkl", "sklearn", "predict_proba"},
	{"xgb", "xgb.json", "xgboost", "margin"},
}

func main() {
	dir := flag.String("dir", "", "folder written by bench/trees.py gen")
	rows := flag.Int("rows", 1000, "rows per batch")
	repeats := flag.Int("repeats", 15, "timed batches per model")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the timed calls to this file")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "trees: -dir is required")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "trees:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*dir, *rows, *repeats); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "trees:", err)
		os.Exit(1)
	}
}

func run(dir string, rows, repeats int) error {
	X, err := readFloat64s(filepath.Join(dir, "X.f64"))
	if err != nil {
		return err
	}
	if rows < 1 || rows*features > len(X) {
		return fmt.Errorf("-rows must be 1..%d", len(X)/features)
	}
	ctx := context.Background()
	if runtime.GOMAXPROCS(0) > 1 {
		fmt.Printf("wake 1 %d\n", wakeLatency())
	}
	for _, bm := range models {
		rt, ok := formats.Lookup(bm.format)
		if !ok {
			return fmt.Errorf("no %s runtime", bm.format)
		}
		m, err := rt.Loader.Load(ctx, filepath.Join(dir, bm.file), formats.Config{Name: bm.name})
		if err != nil {
			return fmt.Errorf("%s: %w", bm.name, err)
		}
		full := input(m, X, len(X)/features)
		if err := check(ctx, m, full, bm, filepath.Join(dir, bm.name+".expect.f64")); err != nil {
			return fmt.Errorf("%s: %w", bm.name, err)
		}
		batch := input(m, X[:rows*features], rows)
		fmt.Printf("%s %d %d\n", bm.name, rows, median(ctx, m, batch, repeats))
		one := input(m, X[:features], 1)
		fmt.Printf("%s 1 %d\n", bm.name, median(ctx, m, one, 2000))
		if runtime.GOMAXPROCS(0) > 1 {
			const small = 120
			in := input(m, X[:small*features], small)
			alone, together := contention(ctx, m, in, repeats)
			fmt.Printf("%s alone-%d %d\n%s together-%d %d\n", bm.name, small, alone, bm.name, small, together)
		}
	}
	return nil
}

// input is X as the model's single input tensor, in the datatype it declares.
func input(m model.Model, X []float64, n int) []*tensor.Tensor {
	spec := m.Metadata().Inputs[0]
	t := &tensor.Tensor{Name: spec.Name, Datatype: spec.Datatype, Shape: []int64{int64(n), features}}
	switch spec.Datatype {
	case tensor.FP32:
		x32 := make([]float32, len(X))
		for i, v := range X {
			x32[i] = float32(v)
		}
		t.Data = x32
	default:
		t.Data = X
	}
	return []*tensor.Tensor{t}
}

// check compares the model's output with the library's, bit for bit.
func check(ctx context.Context, m model.Model, in []*tensor.Tensor, bm benchModel, expectPath string) error {
	want, err := readFloat64s(expectPath)
	if err != nil {
		return err
	}
	outs, err := m.Predict(ctx, in)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if o.Name != bm.output {
			continue
		}
		var got []float64
		switch d := o.Data.(type) {
		case []float64:
			got = d
		case []float32:
			for _, v := range d {
				got = append(got, float64(v))
			}
		default:
			return fmt.Errorf("output %s holds %T", o.Name, o.Data)
		}
		if len(got) != len(want) {
			return fmt.Errorf("output %s has %d values, the library %d", o.Name, len(got), len(want))
		}
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				return fmt.Errorf("output %s[%d] = %v, the library's %v", o.Name, i, got[i], want[i])
			}
		}
		return nil
	}
	return fmt.Errorf("no output %s", bm.output)
}

// median times n calls after two warm-ups and returns the median in nanoseconds.
func median(ctx context.Context, m model.Model, in []*tensor.Tensor, n int) int64 {
	for i := 0; i < 2; i++ {
		m.Predict(ctx, in)
	}
	samples := make([]int64, n)
	for i := range samples {
		start := time.Now()
		if _, err := m.Predict(ctx, in); err != nil {
			fmt.Fprintln(os.Stderr, "trees:", err)
			os.Exit(1)
		}
		samples[i] = time.Since(start).Nanoseconds()
	}
	sort.Slice(samples, func(a, b int) bool { return samples[a] < samples[b] })
	return samples[n/2]
}

func readFloat64s(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a whole number of float64s", filepath.Base(path), len(b))
	}
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

// contention returns the median time of a call on in alone, and the median
// time of the same call made on every core at once: the caller and a goroutine
// per other core, those spinning on their cores until the caller starts them,
// so that no core is idle (or waking) when the timed calls begin.
func contention(ctx context.Context, m model.Model, in []*tensor.Tensor, n int) (alone, together int64) {
	alone = median(ctx, m, in, n)
	others := runtime.GOMAXPROCS(0) - 1
	var samples []int64
	for i := 0; i < n; i++ {
		var ready, done sync.WaitGroup
		var start atomic.Bool
		times := make([]int64, others+1)
		call := func(k int) {
			t := time.Now()
			if _, err := m.Predict(ctx, in); err != nil {
				fmt.Fprintln(os.Stderr, "trees:", err)
				os.Exit(1)
			}
			times[k] = time.Since(t).Nanoseconds()
		}
		for k := 1; k <= others; k++ {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				for !start.Load() {
				}
				call(k)
			}()
		}
		ready.Wait()
		start.Store(true)
		call(0)
		done.Wait()
		samples = append(samples, times...)
	}
	sort.Slice(samples, func(a, b int) bool { return samples[a] < samples[b] })
	return alone, samples[len(samples)/2]
}

// wakeLatency is the median time from a go statement to the goroutine running,
// measured while the caller keeps its own core busy and the others idle (as a
// batch split across cores finds them), over 200 tries a millisecond apart.
func wakeLatency() int64 {
	samples := make([]int64, 200)
	for i := range samples {
		time.Sleep(time.Millisecond)
		start := time.Now()
		started := make(chan time.Time, 1)
		go func() { started <- time.Now() }()
		for time.Since(start) < 300*time.Microsecond {
		}
		samples[i] = (<-started).Sub(start).Nanoseconds()
	}
	sort.Slice(samples, func(a, b int) bool { return samples[a] < samples[b] })
	return samples[len(samples)/2]
}
