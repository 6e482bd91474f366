package lightgbm

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The reference models' predictions must match what LightGBM computed to
// within 1e-12 relative (LightGBM printed them with 16-19 digits).
const relTol = 1e-12

func loadEnsemble(t testing.TB, name string) *ensemble {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	e, err := parse(data, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

// readTable reads whitespace-separated numbers, one row per line.
func readTable(t *testing.T, name string) [][]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		row := make([]float64, len(fields))
		for i, s := range fields {
			if row[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// readLibsvm reads "label idx:value ..." rows into dense rows of n features
// (absent features are 0, as LightGBM reads them).
func readLibsvm(t *testing.T, name string, n int) [][]float64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		row := make([]float64, n)
		for _, kv := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(kv, ":")
			i, err1 := strconv.Atoi(k)
			x, err2 := strconv.ParseFloat(v, 64)
			if err1 != nil || err2 != nil || i >= n {
				t.Fatalf("%s: bad entry %q", name, kv)
			}
			row[i] = x
		}
		rows = append(rows, row)
	}
	return rows
}

func close(got, want float64) bool {
	return got == want || math.Abs(got-want) <= relTol*math.Max(math.Abs(want), 1e-300)
}

// predictRows runs the model the way a request does, the rows as one batch,
// and returns, per row, what LightGBM's predict gives (probabilities or
// transformed predictions) and the raw scores.
func predictRows(e *ensemble, rows [][]float64) (pred, raw [][]float64) {
	k := e.treesPerIteration
	X := make([]float64, 0, len(rows)*e.numFeature)
	for _, x := range rows {
		X = append(X, x...)
	}
	all := make([]float64, len(rows)*k)
	e.rawScores(X, len(rows), all)
	for i := range rows {
		r := all[i*k : (i+1)*k]
		raw = append(raw, r)
		switch {
		case e.obj.multiclass:
			p := make([]float64, k)
			e.probabilities(r, p)
			pred = append(pred, p)
		default:
			pred = append(pred, []float64{e.obj.transform(r[0])})
		}
	}
	return pred, raw
}

func compare(t *testing.T, what string, got, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s row %d: %d values, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !close(got[i][j], want[i][j]) {
				t.Errorf("%s row %d [%d]: %.17g, LightGBM %.17g", what, i, j, got[i][j], want[i][j])
			}
			if want[i][j] != 0 {
				worst = math.Max(worst, math.Abs(got[i][j]-want[i][j])/math.Abs(want[i][j]))
			}
		}
	}
	t.Logf("%s: %d rows, worst relative difference %.2g", what, len(want), worst)
}

// Every tree's leaf for every row, as LightGBM's predict(pred_leaf=True).
func TestBreastCancerLeavesMatchLightGBM(t *testing.T) {
	e := loadEnsemble(t, "lg_breast_cancer.txt")
	rows := readTable(t, "lg_breast_cancer_data.txt")
	leaves := readTable(t, "lg_breast_cancer_data_pred_leaves.txt")
	if len(rows) != len(leaves) {
		t.Fatalf("%d rows, %d leaf rows", len(rows), len(leaves))
	}
	for i, x := range rows {
		if len(leaves[i]) != len(e.trees) {
			t.Fatalf("row %d: %d leaves for %d trees", i, len(leaves[i]), len(e.trees))
		}
		for j := range e.trees {
			if got := e.trees[j].leaf(x); float64(got) != leaves[i][j] {
				t.Fatalf("row %d tree %d: leaf %d, LightGBM %v", i, j, got, leaves[i][j])
			}
		}
	}
}

func TestDartBreastCancerMatchesLightGBM(t *testing.T) {
	e := loadEnsemble(t, "lg_dart_breast_cancer.model")
	pred, _ := predictRows(e, readTable(t, "breast_cancer_test.tsv"))
	compare(t, "dart probabilities", pred, readTable(t, "lg_dart_breast_cancer_true_predictions.txt"))
}

func TestMulticlassMatchesLightGBM(t *testing.T) {
	e := loadEnsemble(t, "lgmulticlass.model")
	var rows [][]float64
	for _, r := range readTable(t, "multiclass_test.tsv") {
		rows = append(rows, r[1:]) // the first column is the label
	}
	pred, raw := predictRows(e, rows)
	compare(t, "softmax", pred, readTable(t, "lgmulticlass_true_predictions.txt"))
	compare(t, "raw scores", raw, readTable(t, "lgmulticlass_true_raw_predictions.txt"))
}

// A random forest's scores are the mean over its rounds. This file comes from a
// LightGBM before 2.2.3, which stored rf leaves already transformed
// (probabilities) and did not transform their mean: what it predicted is the
// averaged raw score. LightGBM since 2.2.3 (and Tide's predict_proba) applies
// the sigmoid to the mean, as for every other model.
func TestRandomForestMatchesLightGBM(t *testing.T) {
	e := loadEnsemble(t, "lg_rf_iris.model")
	if !e.averageOutput {
		t.Fatal("the rf model's average_output was not read")
	}
	pred, raw := predictRows(e, readLibsvm(t, "iris_test.libsvm", e.numFeature))
	compare(t, "rf averaged scores", raw, readTable(t, "lg_rf_iris_true_predictions.txt"))
	for i := range raw {
		if want := 1 / (1 + math.Exp(-raw[i][0])); pred[i][0] != want {
			t.Fatalf("row %d: predict %v, want the sigmoid of the mean %v", i, pred[i][0], want)
		}
	}
}

// Poisson and gamma regressions with categorical splits (five categorical
// columns among nine).
func TestCategoricalRegressionsMatchLightGBM(t *testing.T) {
	for _, name := range []string{"genlin_fmtp_poisson_Frequency", "genlin_fmtp_gamma_AvgClaimAmount"} {
		t.Run(name, func(t *testing.T) {
			e := loadEnsemble(t, name+".model")
			pred, _ := predictRows(e, readTable(t, name+"_features.tsv"))
			compare(t, name, pred, readTable(t, name+"_true_predictions.txt"))
		})
	}
}
