//go:build cgo

package onnx

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/formats/onnx/onnxtest"
	"github.com/tideserve/tide/internal/tensor"
)

// The ONNX backend node tests (Debian's libonnx-testdata, the official suite of
// ONNX 1.12) run through Tide's session layer: each test is one operator in a
// model.onnx with inputs and expected outputs in test_data_set_*/*.pb. ONNX
// Runtime 1.24.1 passes 841 of the 932 here; the rest are training operators,
// random generators and a few datatypes it does not implement.

var updateConformance = flag.Bool("update-conformance", false, "rewrite docs/onnx-conformance.md from this run")

// minConformancePasses is what ONNX Runtime itself reaches on this suite, less
// one test of slack for a numerically borderline case.
const minConformancePasses = 840

// nodeTestDirs are where distributions install the node tests; TIDE_ONNX_NODE_TESTS wins.
var nodeTestDirs = []string{"/usr/share/libonnx-testdata/data/node"}

// The backend test runner's tolerances (onnx/backend/test/runner).
const (
	conformanceRTol = 1e-3
	conformanceATol = 1e-7
)

type nodeTestResult struct {
	name   string
	op     string   // the operator the test is filed under in the report
	ops    []string // every operator in the test's graph
	passed bool
	reason string
}

func TestONNXConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the node-test suite takes about a minute; skipped with -short")
	}
	requireRuntime(t)
	dir := os.Getenv("TIDE_ONNX_NODE_TESTS")
	if dir == "" {
		for _, d := range nodeTestDirs {
			if _, err := os.Stat(d); err == nil {
				dir = d
				break
			}
		}
	}
	if dir == "" {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("ONNX node tests not found in %v (Debian: apt-get install libonnx-testdata)", nodeTestDirs)
		}
		t.Skipf("ONNX node tests not found in %v (Debian: apt-get install libonnx-testdata)", nodeTestDirs)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "test_") {
			names = append(names, e.Name())
		}
	}

	start := time.Now()
	results := make([]nodeTestResult, len(names))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runNodeTest(filepath.Join(dir, names[i]))
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()

	nameOperators(results)
	passed := 0
	for _, r := range results {
		if r.passed {
			passed++
		} else if testing.Verbose() {
			t.Logf("FAIL %s (%s): %s", r.name, r.op, r.reason)
		}
	}
	t.Logf("ONNX node tests: %d of %d pass (%s)", passed, len(results), time.Since(start).Round(time.Millisecond))
	if *updateConformance {
		if err := os.WriteFile("../../../docs/onnx-conformance.md", conformanceTable(results, environment.version), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if passed < minConformancePasses {
		t.Errorf("%d of %d node tests pass, want at least %d", passed, len(results), minConformancePasses)
	}
}

// runNodeTest loads one test's model and checks every data set against it.
func runNodeTest(dir string) nodeTestResult {
	r := nodeTestResult{name: filepath.Base(dir)}
	modelPath := filepath.Join(dir, "model.onnx")
	raw, err := os.ReadFile(modelPath)
	if err != nil {
		r.reason = err.Error()
		return r
	}
	if g, err := parseGraph(raw); err == nil {
		for _, n := range g.nodes {
			r.ops = append(r.ops, n.opType)
		}
	}
	s, err := newSession(modelSource{path: modelPath}, Options{IntraOpThreads: 1})
	if err != nil {
		r.reason = "load: " + err.Error()
		return r
	}
	defer s.close()
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		r.reason = "no test data"
		return r
	}
	want := make([]int, len(s.outputs))
	for i := range want {
		want[i] = i
	}
	for _, set := range sets {
		inputs, err := readValues(set, "input", s.inputs)
		if err != nil {
			r.reason = err.Error()
			return r
		}
		expected, err := readValues(set, "output", s.outputs)
		if err != nil {
			r.reason = err.Error()
			return r
		}
		if len(inputs) != len(s.inputs) {
			// Tests that leave trailing optional inputs out feed fewer files.
			r.reason = fmt.Sprintf("%d input files for %d graph inputs", len(inputs), len(s.inputs))
			return r
		}
		got, err := s.run(context.Background(), inputs, want)
		if err != nil {
			r.reason = "run: " + err.Error()
			return r
		}
		for i := range expected {
			if err := compareValues(got[i], expected[i]); err != nil {
				r.reason = fmt.Sprintf("%s: output %q: %v", filepath.Base(set), s.outputs[i].name, err)
				return r
			}
		}
	}
	r.passed = true
	return r
}

// readValues reads prefix_0.pb, prefix_1.pb, ... decoding each as the kind of
// value the graph declares at that position.
func readValues(dir, prefix string, specs []ioSpec) ([]value, error) {
	var out []value
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i)))
		if os.IsNotExist(err) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		kind := onnxValueTensor
		if i < len(specs) {
			kind = specs[i].onnxType
		}
		v, err := decodeTestValue(b, kind)
		if err != nil {
			return nil, fmt.Errorf("%s_%d.pb: %w", prefix, i, err)
		}
		if i < len(specs) && specs[i].elem == onnxproto.BFloat16 && v.kind == tensorValue && v.tensor.Datatype == tensor.Uint16 {
			// ONNX 1.12 wrote bfloat16 test data as UINT16 tensors of the
			// same bits (numpy has no bfloat16); the graph says what they are.
			v.tensor.Datatype = tensor.BF16
		}
		out = append(out, v)
	}
}

// decodeTestValue reads a backend-test file holding the kind of value the
// graph declares (the C API's ONNXType) as a session value.
func decodeTestValue(b []byte, onnxType int) (value, error) {
	var p onnxtest.Proto
	switch onnxType {
	case onnxValueTensor:
		p = onnxtest.TensorProto
	case onnxValueSequence:
		p = onnxtest.SequenceProto
	case onnxValueOptional:
		p = onnxtest.OptionalProto
	default:
		return value{}, fmt.Errorf("ONNX value type %d is not supported", onnxType)
	}
	v, err := onnxtest.DecodeValue(b, p)
	if err != nil {
		return value{}, err
	}
	return fromTestValue(v), nil
}

// fromTestValue converts a decoded value to the session's own.
func fromTestValue(v onnxtest.Value) value {
	switch v.Kind {
	case onnxtest.KindSequence:
		seq := make([]value, len(v.Seq))
		for i, e := range v.Seq {
			seq[i] = fromTestValue(e)
		}
		return value{kind: sequenceValue, seq: seq}
	case onnxtest.KindNone:
		return value{kind: noneValue}
	}
	return value{kind: tensorValue, tensor: v.Tensor}
}

// compareValues applies the backend runner's check: floating point within
// rtol/atol (NaN matching NaN), everything else exactly.
func compareValues(got, want value) error {
	if got.kind != want.kind {
		return fmt.Errorf("got value kind %d, want %d", got.kind, want.kind)
	}
	switch want.kind {
	case noneValue:
		return nil
	case sequenceValue:
		if len(got.seq) != len(want.seq) {
			return fmt.Errorf("sequence of %d, want %d", len(got.seq), len(want.seq))
		}
		for i := range want.seq {
			if err := compareValues(got.seq[i], want.seq[i]); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		return nil
	}
	g, w := got.tensor, want.tensor
	if g.Datatype != w.Datatype {
		return fmt.Errorf("datatype %s, want %s", g.Datatype, w.Datatype)
	}
	if fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) {
		return fmt.Errorf("shape %v, want %v", g.Shape, w.Shape)
	}
	switch w.Datatype {
	case tensor.FP16, tensor.BF16, tensor.FP32, tensor.FP64:
		gf, err := g.Float64s()
		if err != nil {
			return err
		}
		wf, err := w.Float64s()
		if err != nil {
			return err
		}
		for i := range wf {
			a, b := gf[i], wf[i]
			if math.IsNaN(b) || math.IsNaN(a) {
				if math.IsNaN(a) != math.IsNaN(b) {
					return fmt.Errorf("element %d: %v, want %v", i, a, b)
				}
				continue
			}
			if a == b { // equal infinities included
				continue
			}
			if math.Abs(a-b) > conformanceATol+conformanceRTol*math.Abs(b) {
				return fmt.Errorf("element %d: %v, want %v", i, a, b)
			}
		}
		return nil
	case tensor.Bytes:
		gs, ws := g.Data.([][]byte), w.Data.([][]byte)
		for i := range ws {
			if !bytes.Equal(gs[i], ws[i]) {
				return fmt.Errorf("element %d: %q, want %q", i, gs[i], ws[i])
			}
		}
		return nil
	}
	if fmt.Sprint(g.Data) != fmt.Sprint(w.Data) {
		return fmt.Errorf("values %v, want %v", truncate(g.Data), truncate(w.Data))
	}
	return nil
}

func truncate(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// nameOperators files each test under the operator it exercises: the
// longest operator name, from any test's graph, that the test name starts
// with (in lower case or snake_case: "test_layer_normalization_2d" is
// LayerNormalization's). Expanded tests hold only the operator's function
// body, so their own graph cannot name it. Without a match, the graph's first
// operator. A few tests use abbreviations, listed in testNameAliases.
func nameOperators(results []nodeTestResult) {
	forms := map[string]string{}
	for form, op := range testNameAliases {
		forms[form] = op
	}
	for _, r := range results {
		for _, op := range r.ops {
			forms[strings.ToLower(op)] = op
			forms[snakeCase(op)] = op
		}
	}
	for i := range results {
		r := &results[i]
		rest := strings.TrimPrefix(r.name, "test_")
		best := ""
		for form, op := range forms {
			if (rest == form || strings.HasPrefix(rest, form+"_")) && len(form) > len(best) {
				best, r.op = form, op
			}
		}
		if best == "" {
			r.op = "?"
			if len(r.ops) > 0 {
				r.op = r.ops[0]
			}
		}
	}
}

// testNameAliases are the test-name prefixes that are not an operator's name.
var testNameAliases = map[string]string{
	"sce":           "SoftmaxCrossEntropyLoss",
	"nllloss":       "NegativeLogLikelihoodLoss",
	"mvn":           "MeanVarianceNormalization",
	"greater_equal": "GreaterOrEqual",
	"less_equal":    "LessOrEqual",
	"constant_pad":  "Pad",
}

// snakeCase turns "LayerNormalization" into "layer_normalization" and
// "ReduceL1" into "reduce_l1"; runs of capitals stay together ("LSTM" → "lstm").
func snakeCase(op string) string {
	var b strings.Builder
	for i, c := range op {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prev := rune(op[i-1])
			prevLower := prev >= 'a' && prev <= 'z'
			if prevLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// conformanceTable renders the per-operator report.
func conformanceTable(results []nodeTestResult, version string) []byte {
	type opStat struct {
		pass, fail int
		failed     []string
	}
	stats := map[string]*opStat{}
	nameOperators(results)
	passed := 0
	for _, r := range results {
		s := stats[r.op]
		if s == nil {
			s = &opStat{}
			stats[r.op] = s
		}
		if r.passed {
			s.pass++
			passed++
		} else {
			s.fail++
			s.failed = append(s.failed, fmt.Sprintf("`%s` (%s)", r.name, shortReason(r.reason)))
		}
	}
	ops := make([]string, 0, len(stats))
	for op := range stats {
		ops = append(ops, op)
	}
	sort.Strings(ops)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# ONNX conformance\n\n")
	fmt.Fprintf(&b, "Generated by `go test ./internal/formats/onnx -run TestONNXConformance -update-conformance`; do not edit.\n\n")
	fmt.Fprintf(&b, "The ONNX backend node tests of Debian's `libonnx-testdata` (ONNX 1.12, %d tests) run through Tide's ONNX runtime\n", len(results))
	fmt.Fprintf(&b, "with ONNX Runtime %s on the CPU, compared with the backend runner's tolerances (rtol %g, atol %g).\n\n", version, conformanceRTol, conformanceATol)
	clean := 0
	for _, s := range stats {
		if s.fail == 0 {
			clean++
		}
	}
	fmt.Fprintf(&b, "**%d of %d pass.** %d operators, %d with every test passing.\n\n", passed, len(results), len(ops), clean)
	fmt.Fprintf(&b, "| Operator | Pass | Fail | Failing tests (reason) |\n|---|---:|---:|---|\n")
	for _, op := range ops {
		s := stats[op]
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", op, s.pass, s.fail, strings.Join(s.failed, "<br>"))
	}
	return b.Bytes()
}

// shortReason keeps the first clause of a failure reason for the table.
func shortReason(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}
