package onnx

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/tensor"
)

func TestParseGraph(t *testing.T) {
	raw, err := os.ReadFile("testdata/tree.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGraph(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.nodes) != 1 || g.nodes[0].opType != "TreeEnsembleClassifier" || g.nodes[0].domain != "ai.onnx.ml" {
		t.Fatalf("nodes %+v", g.nodes)
	}
	n := g.nodes[0]
	if !reflect.DeepEqual(n.inputs, []string{"X"}) || !reflect.DeepEqual(n.outputs, []string{"label", "probabilities"}) {
		t.Fatalf("node wiring %v -> %v", n.inputs, n.outputs)
	}
	if !reflect.DeepEqual(n.attrs["classlabels_int64s"].ints, []int64{0, 1}) || string(n.attrs["post_transform"].s) != "NONE" {
		t.Fatalf("attributes %+v", n.attrs)
	}
	if len(n.attrs["nodes_values"].floats) != 6 || n.attrs["nodes_values"].floats[3] != 1.5 {
		t.Fatalf("nodes_values %v", n.attrs["nodes_values"].floats)
	}
	if want := []valueInfo{{name: "label"}, {name: "probabilities"}}; !reflect.DeepEqual(g.outputs, want) {
		t.Fatalf("graph outputs %v", g.outputs)
	}
	if _, err := parseGraph([]byte{1<<3 | onnxproto.WireVarint, 8}); err == nil {
		t.Fatal("a model without a graph parsed")
	}
}

// TestScanModelFileMatchesParseGraph: the streaming reader used at load and
// the in-memory one see the same graph, and a truncated file is an error.
func TestScanModelFileMatchesParseGraph(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.onnx")
	if len(files) < 5 {
		t.Fatalf("only %d models in testdata", len(files))
	}
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := parseGraph(raw)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got, err := scanModelFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: scanned %+v, parsed %+v", p, got, want)
		}
		cut := filepath.Join(t.TempDir(), "cut.onnx")
		if err := os.WriteFile(cut, raw[:len(raw)-3], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := scanModelFile(cut); err == nil {
			t.Errorf("%s cut short: scanned without error", p)
		}
	}
	if _, err := scanModelFile("testdata/missing.onnx"); err == nil {
		t.Error("scanned a missing file")
	}
}

func TestLabelFix(t *testing.T) {
	g := &graphView{nodes: []nodeView{
		{opType: "TreeEnsembleClassifier", domain: "ai.onnx.ml", outputs: []string{"label", "proba"},
			attrs: map[string]attrView{"classlabels_strings": {strings: [][]byte{[]byte("no"), []byte("yes"), []byte("maybe")}}}},
		{opType: "TreeEnsembleClassifier", domain: "ai.onnx.ml", outputs: []string{"hidden_label", "hidden_proba"},
			attrs: map[string]attrView{"classlabels_int64s": {ints: []int64{0, 1}}}},
		{opType: "Identity", outputs: []string{"other"}},
	}}
	fixes := planLabelFixes(g, []string{"proba", "other", "label"})
	if len(fixes) != 1 {
		t.Fatalf("planned %d fixes, want 1 (only the served node)", len(fixes))
	}
	fix, ok := fixes[2]
	if !ok || fix.prob != 0 {
		t.Fatalf("fixes %+v, want label 2 from probabilities 0", fixes)
	}
	out := []*tensor.Tensor{
		{Datatype: tensor.FP32, Shape: []int64{3, 3}, Data: []float32{0.1, 0.2, 0.7, 0.5, 0.5, 0, 0.2, 0.6, 0.2}},
		nil,
		{Datatype: tensor.Bytes, Shape: []int64{3}, Data: [][]byte{[]byte("yes"), []byte("yes"), []byte("yes")}},
	}
	if err := fix.apply(out, 2); err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{[]byte("maybe"), []byte("no"), []byte("yes")}; !reflect.DeepEqual(out[2].Data, want) {
		t.Fatalf("labels %q, want %q (ties go to the first class)", out[2].Data, want)
	}
	out[0].Shape = []int64{3, 2}
	if err := fix.apply(out, 2); err == nil {
		t.Fatal("applied with probabilities of the wrong width")
	}
}

// FuzzParseGraph: the graph view of any bytes parses or errors, never panics,
// and the streaming reader agrees with the in-memory one.
func FuzzParseGraph(f *testing.F) {
	tmp := filepath.Join(f.TempDir(), "model.onnx")
	files, _ := filepath.Glob("testdata/*.onnx")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := parseGraph(b)
		if werr := os.WriteFile(tmp, b, 0o644); werr != nil {
			t.Fatal(werr)
		}
		if scanned, serr := scanModelFile(tmp); err == nil && serr == nil && !reflect.DeepEqual(scanned, g) {
			t.Fatalf("scanned %+v, parsed %+v", scanned, g)
		}
		if err == nil {
			var names []string
			for _, o := range g.outputs {
				names = append(names, o.name)
			}
			planLabelFixes(g, names)
		}
	})
}
