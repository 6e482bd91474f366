package integration

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/tideserve/tide/internal/formats/lightgbm"
	_ "github.com/tideserve/tide/internal/formats/onnx"
	_ "github.com/tideserve/tide/internal/formats/xgboost"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/server"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func float32s(t *testing.T, b64 string) []float32 {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// TestFormatsSideBySide serves scikit-learn, XGBoost, LightGBM and ONNX models
// from one repository folder and checks each answer against the reference
// library's own output (sklearn via the tutorial's FastAPI golden file,
// XGBoost's predict(), LightGBM's predict(), torch's forward()).
func TestFormatsSideBySide(t *testing.T) {
	root := t.TempDir()
	copyFile(t, "../../internal/server/testdata/fraud_rf.joblib", filepath.Join(root, "fraud", "1", "model.joblib"))
	copyFile(t, "../../internal/formats/xgboost/testdata/binary_logistic.json", filepath.Join(root, "churn", "model.xgboost.json"))
	copyFile(t, "../../internal/formats/onnx/testdata/mlp.onnx", filepath.Join(root, "digits", "model.onnx"))
	copyFile(t, "../../internal/formats/lightgbm/testdata/lgmulticlass.model", filepath.Join(root, "segments", "model.txt"))

	repo, err := repository.Open(root, repository.Options{}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(repo, server.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.LoadModels(context.Background())
	for _, e := range repo.Index() {
		if e.State == repository.Ready {
			continue
		}
		if e.Name == "digits" && strings.Contains(e.Reason, "ONNX Runtime") && os.Getenv("TIDE_REQUIRE_INTEGRATION") != "1" {
			t.Skipf("ONNX Runtime not available here: %s", e.Reason)
		}
		t.Fatalf("%s: %s %s", e.Name, e.State, e.Reason)
	}
	post := func(path, body string) string {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}

	// scikit-learn: byte for byte the tutorial's FastAPI answer.
	var golden []struct{ Request, Response string }
	readJSON(t, "../../internal/server/testdata/fraud_rf.golden.json", &golden)
	for _, g := range golden[:5] {
		var feats map[string]float64
		json.Unmarshal([]byte(g.Request), &feats)
		got := post("/v1/models/fraud:predict", fmt.Sprintf(`{"instances":[[%v,%v]]}`, feats["feature1"], feats["feature2"]))
		want := strings.Replace(g.Response, `{"prediction":`, `{"predictions":`, 1)
		if got != want {
			t.Errorf("sklearn: got %s, want %s", got, want)
		}
	}

	// XGBoost: probabilities equal to xgboost's predict() (float32).
	var X struct {
		Rows, Cols int
		Data       string
	}
	readJSON(t, "../../internal/formats/xgboost/testdata/X_dense.json", &X)
	var expect struct{ Predict string }
	readJSON(t, "../../internal/formats/xgboost/testdata/binary_logistic.expect.json", &expect)
	x, want := float32s(t, X.Data), float32s(t, expect.Predict)
	checked := 0
	for row := 0; row < X.Rows && checked < 5; row++ {
		vals := make([]string, X.Cols)
		hasNaN := false
		for j := range vals {
			v := x[row*X.Cols+j]
			hasNaN = hasNaN || math.IsNaN(float64(v))
			vals[j] = fmt.Sprint(v)
		}
		if hasNaN {
			continue // JSON cannot carry NaN (missing values go in binary tensors)
		}
		checked++
		body := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,%d],"datatype":"FP32","data":[%s]}],"outputs":[{"name":"predict_proba"}]}`, X.Cols, strings.Join(vals, ","))
		var resp struct{ Outputs []struct{ Data []float32 } }
		json.Unmarshal([]byte(post("/v2/models/churn/infer", body)), &resp)
		if got := resp.Outputs[0].Data[1]; got != want[row] {
			t.Errorf("xgboost row %d: p=%v, xgboost %v", row, got, want[row])
		}
	}

	// ONNX: torch's logits within 1e-5.
	var mlp struct {
		Cases []struct {
			Shape  []int
			Input  []float32
			Output []float32
		}
	}
	readJSON(t, "../../internal/formats/onnx/testdata/mlp.json", &mlp)
	c := mlp.Cases[0]
	in, _ := json.Marshal(c.Input)
	var resp struct{ Outputs []struct{ Data []float64 } }
	json.Unmarshal([]byte(post("/v2/models/digits/infer", fmt.Sprintf(`{"inputs":[{"name":"input","shape":[%d,%d],"datatype":"FP32","data":%s}]}`, c.Shape[0], c.Shape[1], in))), &resp)
	for i, w := range c.Output {
		if d := math.Abs(resp.Outputs[0].Data[i] - float64(w)); d > 1e-5 {
			t.Fatalf("onnx logit %d: %v vs torch %v", i, resp.Outputs[0].Data[i], w)
		}
	}

	// LightGBM: softmax probabilities as LightGBM's predict() gave them, to the
	// last bits (FP64 both ways through JSON).
	rows := readFloatRows(t, "../../internal/formats/lightgbm/testdata/multiclass_test.tsv")
	probs := readFloatRows(t, "../../internal/formats/lightgbm/testdata/lgmulticlass_true_predictions.txt")
	for row := 0; row < 5; row++ {
		x, _ := json.Marshal(rows[row][1:]) // the first column is the label
		body := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,%d],"datatype":"FP64","data":%s}],"outputs":[{"name":"predict_proba"}]}`, len(rows[row])-1, x)
		var resp struct{ Outputs []struct{ Data []float64 } }
		json.Unmarshal([]byte(post("/v2/models/segments/infer", body)), &resp)
		for c, want := range probs[row] {
			if got := resp.Outputs[0].Data[c]; math.Abs(got-want) > 1e-15*want {
				t.Errorf("lightgbm row %d class %d: %v, LightGBM %v", row, c, got, want)
			}
		}
	}
}

// readFloatRows reads whitespace-separated numbers, one row per line.
func readFloatRows(t *testing.T, path string) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var row []float64
		for _, f := range strings.Fields(line) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// A model folder whose files look like a format's but are not (a JSON that is
// not an XGBoost model, a .txt that is not a LightGBM model) is a repository
// problem that says so, rather than a bare "no model file".
func TestUnclaimedFilesAreExplained(t *testing.T) {
	root := t.TempDir()
	copyFile(t, "../../internal/server/testdata/fraud_rf.joblib", filepath.Join(root, "fraud", "model.joblib"))
	os.MkdirAll(filepath.Join(root, "churn"), 0o755)
	os.WriteFile(filepath.Join(root, "churn", "model.json"), []byte(`{"weights": [1, 2]}`), 0o644)
	os.WriteFile(filepath.Join(root, "churn", "notes.txt"), []byte("trained on June data\n"), 0o644)
	repo, err := repository.Open(root, repository.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(repo.Problems(), "\n")
	for _, want := range []string{
		"no model file",
		`model.json is JSON but not an XGBoost model (its document does not open with "learner"`,
		`notes.txt is not a LightGBM text model (its first line is not "tree")`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}
}
