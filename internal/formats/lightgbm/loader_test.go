package lightgbm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// A repository finds a LightGBM model by its first line under the names
// LightGBM's files go by, and leaves other files with those names alone.
func TestRepositoryFindsModelsByContent(t *testing.T) {
	dir := t.TempDir()
	model := readFixture(t, "model_simple.txt")
	files := map[string]string{
		"model.txt": model, "LightGBM_model.txt": model, "fraud.model": model, "crlf.txt": strings.ReplaceAll(model, "\n", "\r\n"),
		"README.txt": "tree\nnot really", "notes.txt": "a forest of trees", "model.json": model, "treehouse.txt": "treehouse\n",
	}
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"fifo.txt":  false, // never opened: the open would block
		"model.txt": true, "LightGBM_model.txt": true, "fraud.model": true, "crlf.txt": true,
		"README.txt": true, // first line "tree": claimed, and refused at load with the reason
		"notes.txt":  false, "model.json": false, "treehouse.txt": false, "missing.txt": false,
	} {
		if got := MatchesFile(filepath.Join(dir, name)); got != want {
			t.Errorf("MatchesFile(%s) = %v, want %v", name, got, want)
		}
	}
	rt, err := formats.ForFile(filepath.Join(dir, "model.txt"))
	if err != nil || rt.Format != "lightgbm" {
		t.Fatalf("ForFile(model.txt) = %q, %v", rt.Format, err)
	}
	m, err := rt.Loader.Load(context.Background(), filepath.Join(dir, "crlf.txt"), formats.Config{Name: "m"})
	if err != nil {
		t.Fatalf("a CRLF file: %v", err)
	}
	_ = m
	_, err = rt.Loader.Load(context.Background(), filepath.Join(dir, "README.txt"), formats.Config{})
	if err == nil || !strings.Contains(err.Error(), "README.txt: line 2") {
		t.Errorf("README.txt: %v", err)
	}
}

func TestServedOutputs(t *testing.T) {
	ctx := context.Background()
	binary, err := loader{}.Load(ctx, "testdata/model_simple.txt", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	md := binary.Metadata()
	if got := outputNames(md); !reflect.DeepEqual(got, []string{"predict", "predict_proba", "raw_score"}) || md.Platform != "lightgbm" {
		t.Fatalf("binary outputs %v, platform %s", got, md.Platform)
	}
	if !reflect.DeepEqual(md.Features, []string{"X1", "X2"}) {
		t.Errorf("features %v, want the file's X1 X2", md.Features)
	}
	// Integer input converts; row 0 is in the category set, row 1 not.
	in := &tensor.Tensor{Name: "input", Datatype: tensor.Int32, Shape: []int64{2, 2}, Data: []int32{0, 100, 0, 3}}
	out, err := binary.Predict(ctx, []*tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := 0.56697267424823339, 0.12883103567558912, 0.3584987837673016, -0.063872842243335157
	inSet, low := a+b, c+d // in float64, as the trees are summed
	if got := out[0].Data.([]int64); !reflect.DeepEqual(got, []int64{1, 1}) {
		t.Errorf("labels %v", got)
	}
	p := out[1].Data.([]float64)
	if p[1] != sigmoid(inSet) || p[0] != 1-sigmoid(inSet) || p[3] != sigmoid(low) || !reflect.DeepEqual(out[1].Shape, []int64{2, 2}) {
		t.Errorf("predict_proba %v %v", p, out[1].Shape)
	}
	if raw := out[2].Data.([]float64); raw[0] != inSet || raw[1] != low {
		t.Errorf("raw_score %v", raw)
	}
	bad := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 3}, Data: []float64{1, 2, 3}}
	if _, err := binary.Predict(ctx, []*tensor.Tensor{bad}); !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), "want shape [n, 2]") {
		t.Errorf("wrong width: %v", err)
	}

	multi, err := loader{}.Load(ctx, "testdata/lgmulticlass.model", formats.Config{Outputs: []string{"label", "probabilities"}})
	if err != nil {
		t.Fatal(err)
	}
	md = multi.Metadata()
	if got := outputNames(md); !reflect.DeepEqual(got, []string{"label", "probabilities", "raw_score"}) {
		t.Errorf("renamed outputs %v", got)
	}
	if md.Features[0] != "feature1" || len(md.Features) != 28 {
		t.Errorf("LightGBM's made-up Column_N names should give way to feature1..N, got %v", md.Features[:3])
	}
	if !reflect.DeepEqual(md.Outputs[1].Shape, []int64{-1, 5}) || !reflect.DeepEqual(md.Outputs[2].Shape, []int64{-1, 5}) {
		t.Errorf("multiclass shapes %v %v", md.Outputs[1].Shape, md.Outputs[2].Shape)
	}

	reg, err := loader{}.Load(ctx, "testdata/genlin_fmtp_gamma_AvgClaimAmount.model", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := outputNames(reg.Metadata()); !reflect.DeepEqual(got, []string{"predict", "raw_score"}) {
		t.Errorf("regression outputs %v", got)
	}
	if _, err := (loader{}).Load(ctx, "testdata/model_simple.txt", formats.Config{Features: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "config lists 1 features but the model takes 2") {
		t.Errorf("short config features: %v", err)
	}
}

func outputNames(md model.Metadata) []string {
	var names []string
	for _, o := range md.Outputs {
		names = append(names, o.Name)
	}
	return names
}

// The load's memory charge must bound what a load really allocates: if the
// reader grows costlier, this fails before a budget stops meaning anything.
func TestLoadCostBoundsAllocation(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.model")
	paths = append(paths, "testdata/lg_breast_cancer.txt", "testdata/model_simple.txt")
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err = loader{}.Load(context.Background(), path, formats.Config{})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		if alloc > loadCost(st.Size()) {
			t.Errorf("%s: loading %d bytes allocated %d, more than the %d charged", path, st.Size(), alloc, loadCost(st.Size()))
		}
		t.Logf("%s: %d bytes, allocated %.1f× the file", filepath.Base(path), st.Size(), float64(alloc)/float64(st.Size()))
	}
}

func TestLoadIsRefusedBeyondItsBudget(t *testing.T) {
	path := "testdata/lgmulticlass.model"
	st, _ := os.Stat(path)
	_, err := loader{}.Load(context.Background(), path, formats.Config{Memory: loadmem.New(loadCost(st.Size()) - 1)})
	if !errors.Is(err, loadmem.ErrExceeded) {
		t.Fatalf("error %v, want the budget exceeded", err)
	}
	if _, err := (loader{}).Load(context.Background(), path, formats.Config{Memory: loadmem.New(loadCost(st.Size()))}); err != nil {
		t.Fatalf("the exact budget must do: %v", err)
	}
}

// A paced load pauses (once per tree) and reads the same model.
func TestPacedLoadPausesAndReadsTheSame(t *testing.T) {
	data, err := os.ReadFile("testdata/genlin_fmtp_poisson_Frequency.model")
	if err != nil {
		t.Fatal(err)
	}
	want, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got *ensemble
	pace := loadpace.New(0.5)
	for pace.Slept() == 0 { // one pass may fit in a quantum on a fast machine
		if got, err = parse(data, pace); err != nil {
			t.Fatal(err)
		}
	}
	// The compiled walks are compared by presence: their leaves' thresholds
	// are NaN, which DeepEqual never finds equal.
	for i := range min(len(got.trees), len(want.trees)) {
		if (got.trees[i].walk != nil) != (want.trees[i].walk != nil) {
			t.Fatalf("tree %d compiled in one parse only", i)
		}
		got.trees[i].walk, want.trees[i].walk = nil, nil
	}
	if !reflect.DeepEqual(got.trees, want.trees) || got.numFeature != want.numFeature || got.obj.name != want.obj.name {
		t.Fatal("the paced parse read something else")
	}
}
