package pickle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The fixtures are written by testdata/gen.py; see its docstring for the canonical
// form that describe renders here.

// allowMain permits the classes gen.py defines (module __main__) and nothing else.
func allowMain(module, name string) bool { return module == "__main__" }

func TestMain(m *testing.M) {
	// Let a panic reach the test (or the fuzzer) instead of becoming an error.
	catchPanics = false
	os.Exit(m.Run())
}

// fixtureFiles returns the data files in testdata that have an expected-value JSON.
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/*.pkl", "testdata/*.joblib"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 30 {
		t.Fatalf("found %d fixtures; run /usr/bin/python3 internal/pickle/testdata/gen.py", len(files))
	}
	return files
}

type expectation struct {
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

func TestFixtures(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		name := filepath.Base(path)
		base := strings.TrimSuffix(path, filepath.Ext(path))
		if strings.HasPrefix(name, "forest_") {
			continue // checked by TestForest
		}
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(base + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var want expectation
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path, Options{Allow: allowMain})
			if want.Error != "" {
				if err == nil {
					t.Fatalf("decoded %s, want an error containing %q", TypeName(got), want.Error)
				}
				if !strings.Contains(err.Error(), want.Error) {
					t.Fatalf("error %q does not contain %q", err, want.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var wantValue any
			if err := json.Unmarshal(want.Value, &wantValue); err != nil {
				t.Fatal(err)
			}
			gotValue := normalizeJSON(t, describe(got))
			if d := firstDiff("", wantValue, gotValue); d != "" {
				t.Fatalf("decoded value differs from Python's: %s", d)
			}
		})
	}
}

// TestForest checks the benchmark's random forest against the thresholds and
// features scikit-learn reported for each tree.
func TestForest(t *testing.T) {
	raw, err := os.ReadFile("testdata/forest_20.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Class   string
		Classes []int64
		Trees   []struct {
			NodeCount int      `json:"node_count"`
			Threshold []string `json:"threshold"`
			Feature   []int64  `json:"feature"`
		}
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	v, err := Load("testdata/forest_20.joblib", Options{Allow: func(m, _ string) bool { return strings.HasPrefix(m, "sklearn.") }})
	if err != nil {
		t.Fatal(err)
	}
	rf, ok := v.(*Object)
	if !ok || rf.Class() != want.Class {
		t.Fatalf("got %s, want %s", TypeName(v), want.Class)
	}
	classes, err := rf.Array("classes_")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := classes.Int64s(); !reflect.DeepEqual(got, want.Classes) {
		t.Errorf("classes_ = %v, want %v", got, want.Classes)
	}
	trees, err := rf.Items("estimators_")
	if err != nil {
		t.Fatal(err)
	}
	if len(trees) != len(want.Trees) {
		t.Fatalf("%d trees, want %d", len(trees), len(want.Trees))
	}
	for i, tv := range trees {
		est, ok := tv.(*Object)
		if !ok {
			t.Fatalf("tree %d is a %s", i, TypeName(tv))
		}
		tree, err := est.Object("tree_")
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := tree.Array("nodes")
		if err != nil {
			t.Fatal(err)
		}
		if nodes.Len() != want.Trees[i].NodeCount {
			t.Errorf("tree %d: %d nodes, want %d", i, nodes.Len(), want.Trees[i].NodeCount)
		}
		thr, err := nodes.Field("threshold")
		if err != nil {
			t.Fatal(err)
		}
		th, _ := thr.Float64s()
		feat, err := nodes.Field("feature")
		if err != nil {
			t.Fatal(err)
		}
		fe, _ := feat.Int64s()
		for j := range th {
			if got := fmt.Sprintf("%016x", math.Float64bits(th[j])); got != want.Trees[i].Threshold[j] {
				t.Fatalf("tree %d node %d: threshold bits %s, want %s", i, j, got, want.Trees[i].Threshold[j])
			}
		}
		if !reflect.DeepEqual(fe, want.Trees[i].Feature) {
			t.Errorf("tree %d: features %v, want %v", i, fe, want.Trees[i].Feature)
		}
	}
}

// describe renders a decoded value in gen.py's canonical form.
func describe(v any) any {
	type m = map[string]any
	list := func(items []any) []any {
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = describe(it)
		}
		return out
	}
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		return x
	case int64:
		return m{"int": strconv.FormatInt(x, 10)}
	case uint64:
		return m{"int": strconv.FormatUint(x, 10)}
	case *big.Int:
		return m{"int": x.String()}
	case float64:
		return m{"float": fmt.Sprintf("%016x", math.Float64bits(x))}
	case string:
		return m{"str": x}
	case []byte:
		return m{"bytes": hex.EncodeToString(x)}
	case Tuple:
		return m{"tuple": list(x)}
	case *List:
		return m{"list": list(x.Items)}
	case *Dict:
		pairs := make([]any, len(x.Keys))
		for i := range x.Keys {
			pairs[i] = []any{describe(x.Keys[i]), describe(x.Values[i])}
		}
		return m{"dict": pairs}
	case *Dtype:
		return m{"dtype": describeDtype(x)}
	case *NDArray:
		shape := make([]any, len(x.Shape))
		for i, s := range x.Shape {
			shape[i] = s
		}
		a := m{"dtype": describeDtype(x.Dtype), "shape": shape}
		if x.Dtype.Kind == 'O' {
			a["objects"] = list(x.Objects)
		} else {
			a["data"] = hex.EncodeToString(x.Data)
		}
		return m{"ndarray": a}
	case Global:
		return m{"global": x.String()}
	case *Object:
		o := m{"object": x.Class(), "args": list(x.Args), "state": describe(x.State)}
		if x.Kwargs != nil {
			o["kwargs"] = describe(x.Kwargs)
		}
		return o
	}
	return m{"unknown Go type": fmt.Sprintf("%T", v)}
}

func describeDtype(d *Dtype) any {
	var fields any
	if d.Fields != nil {
		fs := make([]any, len(d.Fields))
		for i, f := range d.Fields {
			fs[i] = []any{f.Name, describeDtype(f.Dtype), f.Offset}
		}
		fields = fs
	}
	return map[string]any{"kind": string(rune(d.Kind)), "itemsize": d.ItemSize, "str": d.String(), "big_endian": d.BigEndian, "fields": fields}
}

// normalizeJSON round-trips v through JSON so that it compares with a decoded file.
func normalizeJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstDiff names the first place where two JSON values differ, or returns "".
func firstDiff(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want %s, got %s", path, short(want), short(got))
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				return fmt.Sprintf("%s: missing %q (want %s)", path, k, short(w[k]))
			}
			if d := firstDiff(path+"."+k, w[k], g[k]); d != "" {
				return d
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s: unexpected %q = %s", path, k, short(g[k]))
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %s, got %s", path, short(want), short(got))
		}
		for i := range w {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: want %s, got %s", path, short(want), short(got))
	}
	return ""
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// Files written through scikit-learn < 0.23's bundled joblib name the wrapper
// sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper.
func TestBundledJoblibWrapper(t *testing.T) {
	data, err := os.ReadFile("testdata/arrays_joblib_proto0.joblib")
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.ReplaceAll(data, []byte("cjoblib.numpy_pickle\n"), []byte("csklearn.externals.joblib.numpy_pickle\n"))
	if bytes.Equal(old, data) {
		t.Fatal("fixture does not name joblib.numpy_pickle in a protocol-0 GLOBAL")
	}
	want, err := LoadBytes(data, Options{Allow: allowMain})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadBytes(old, Options{Allow: allowMain})
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff("", normalizeJSON(t, describe(want)), normalizeJSON(t, describe(got))); d != "" {
		t.Fatal(d)
	}
}
