package server

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
)

// The realistic fraud pipeline (the sklearn runtime's gen_mixed.py): numeric
// amount/hour/age and string merchant_category/country/device columns with
// gaps, a dropped transaction_id, ColumnTransformer + SimpleImputer +
// OneHotEncoder + HistGradientBoosting, and 1,000 evaluation rows holding
// strings fit never saw. Every protocol answers what the pipeline's own
// predict and predict_proba did, bit for bit.
const mixedFixtures = "../formats/sklearn/testdata/mixed/"

type fraudFixture struct {
	Columns []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"columns"`
	Rows         [][]any     `json:"rows"`
	Predict      []int64     `json:"predict"`
	PredictProba [][]float64 `json:"predict_proba"` // never null for a classifier
}

func readFraud(t *testing.T) *fraudFixture {
	t.Helper()
	b, err := os.ReadFile(mixedFixtures + "fraud_hgb.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	fx := &fraudFixture{}
	if err := json.Unmarshal(b, fx); err != nil {
		t.Fatal(err)
	}
	return fx
}

func mixedServer(t *testing.T, file string) *Server {
	t.Helper()
	repo, err := repository.Open(mixedFixtures+file, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	return s
}

func post(t *testing.T, s *Server, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body))))
	return rec
}

// objects are the rows as /predict takes them: {"column": value}, null for a gap.
func (fx *fraudFixture) objects() []map[string]any {
	out := make([]map[string]any, len(fx.Rows))
	for r, row := range fx.Rows {
		out[r] = map[string]any{}
		for c, col := range fx.Columns {
			out[r][col.Name] = row[c]
		}
	}
	return out
}

// oipInputs are the rows one input per column, as MLServer's pandas codec
// sends a DataFrame: BYTES for strings, FP64 for numbers, null for a gap.
func (fx *fraudFixture) oipInputs(shape2D bool) []map[string]any {
	var ins []map[string]any
	for c, col := range fx.Columns {
		data := make([]any, len(fx.Rows))
		for r, row := range fx.Rows {
			data[r] = row[c]
		}
		dt := "FP64"
		if col.Kind != "number" {
			dt = "BYTES"
		}
		shape := []int{len(fx.Rows)}
		if shape2D {
			shape = append(shape, 1)
		}
		ins = append(ins, map[string]any{"name": col.Name, "datatype": dt, "shape": shape, "data": data})
	}
	return ins
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFraudPipelineOnEveryProtocol(t *testing.T) {
	fx := readFraud(t)
	if len(fx.Rows) != 1000 {
		t.Fatalf("%d rows, want 1,000", len(fx.Rows))
	}
	s := mixedServer(t, "fraud_hgb.joblib")
	checkLabels := func(what string, got []int64) {
		t.Helper()
		if len(got) != len(fx.Predict) {
			t.Fatalf("%s: %d labels, want %d", what, len(got), len(fx.Predict))
		}
		for i := range got {
			if got[i] != fx.Predict[i] {
				t.Fatalf("%s: row %d is %d, the pipeline's predict %d", what, i, got[i], fx.Predict[i])
			}
		}
	}
	checkProba := func(what string, got []float64) {
		t.Helper()
		i := 0
		for _, row := range fx.PredictProba {
			for _, want := range row {
				if i >= len(got) || got[i] != want {
					t.Fatalf("%s: predict_proba[%d] differs from the pipeline's %v", what, i, want)
				}
				i++
			}
		}
		if i != len(got) {
			t.Fatalf("%s: %d probabilities, want %d", what, len(got), i)
		}
	}

	// The tutorial's /predict: a list of objects with strings and nulls.
	rec := post(t, s, "/predict", mustJSON(t, fx.objects()))
	var seed struct{ Prediction []int64 }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &seed) != nil {
		t.Fatalf("/predict: %d %s", rec.Code, rec.Body.String())
	}
	checkLabels("/predict", seed.Prediction)

	// One object answers a one-element list.
	rec = post(t, s, "/predict", mustJSON(t, fx.objects()[2]))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"prediction":[`+itoa(fx.Predict[2])+`]}` {
		t.Fatalf("/predict one object: %d %s", rec.Code, rec.Body.String())
	}

	// KServe v1: the objects as instances, and lists in column order.
	lists := make([][]any, len(fx.Rows))
	copy(lists, fx.Rows)
	for _, body := range []any{map[string]any{"instances": fx.objects()}, map[string]any{"instances": lists}} {
		rec = post(t, s, "/v1/models/fraud_hgb:predict", mustJSON(t, body))
		var v1 struct{ Predictions []int64 }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v1) != nil {
			t.Fatalf("v1: %d %s", rec.Code, rec.Body.String())
		}
		checkLabels("v1", v1.Predictions)
	}

	// OIP REST, one input per column, shapes [n] and [n, 1].
	for _, shape2D := range []bool{false, true} {
		rec = post(t, s, "/v2/models/fraud_hgb/infer", mustJSON(t, map[string]any{"inputs": fx.oipInputs(shape2D)}))
		if rec.Code != http.StatusOK {
			t.Fatalf("OIP: %d %s", rec.Code, rec.Body.String())
		}
		outs := restOutputs(t, rec)
		checkLabels("OIP predict", outs[0].Data.([]int64))
		checkProba("OIP predict_proba", outs[1].Data.([]float64))
	}

	// OIP gRPC, strings in bytes_contents (a gap in a string column cannot be
	// said there, so those rows travel as the imputer's own fill value).
	req := &pb.ModelInferRequest{ModelName: "fraud_hgb"}
	for c, col := range fx.Columns {
		in := &pb.ModelInferRequest_InferInputTensor{Name: col.Name, Shape: []int64{int64(len(fx.Rows))}, Contents: &pb.InferTensorContents{}}
		for _, row := range fx.Rows {
			if col.Kind == "number" {
				in.Datatype = "FP64"
				f, ok := row[c].(float64)
				if !ok {
					f = math.NaN()
				}
				in.Contents.Fp64Contents = append(in.Contents.Fp64Contents, f)
				continue
			}
			in.Datatype = "BYTES"
			str, ok := row[c].(string)
			if !ok {
				str = "missing" // SimpleImputer(strategy="constant", fill_value="missing")
			}
			in.Contents.BytesContents = append(in.Contents.BytesContents, []byte(str))
		}
		req.Inputs = append(req.Inputs, in)
	}
	resp, err := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s)).ModelInfer(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	outs := grpcOutputs(t, resp)
	checkLabels("gRPC predict", outs[0].Data.([]int64))
	checkProba("gRPC predict_proba", outs[1].Data.([]float64))
}

func itoa(i int64) string { b, _ := json.Marshal(i); return string(b) }

// The metadata lists each column with its datatype; the dropped
// transaction_id takes any.
func TestMixedModelMetadataListsColumns(t *testing.T) {
	s := mixedServer(t, "fraud_hgb.joblib")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/models/fraud_hgb", nil))
	var md struct {
		Inputs []struct {
			Name       string
			Datatype   string
			Shape      []int64
			Parameters *struct{ Unused bool }
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range md.Inputs {
		got = append(got, in.Name+":"+in.Datatype)
	}
	if p := md.Inputs[0].Parameters; p == nil || !p.Unused {
		t.Errorf("transaction_id is not marked unused")
	}
	want := "transaction_id:FP64 amount:FP64 hour:FP64 age:FP64 merchant_category:BYTES country:BYTES device:BYTES"
	if strings.Join(got, " ") != want {
		t.Fatalf("inputs %v, want %s", got, want)
	}
}

// Bad mixed input gets a 422 that says what was wrong, on /predict and OIP.
func TestMixedInputErrors(t *testing.T) {
	s := mixedServer(t, "fraud_hgb.joblib")
	strict := mixedServer(t, "impute_frequent_onehot_drop.joblib")
	row := `"transaction_id":"t1","amount":12.5,"hour":3,"age":40,"merchant_category":"fuel","country":"US","device":"ios"`
	for _, c := range []struct {
		s    *Server
		path string
		body string
		want string
	}{
		{s, "/predict", `{` + strings.Replace(row, `"country":"US"`, `"country":7`, 1) + `}`, `feature \"country\": expected a string, got number`},
		{s, "/predict", `{` + strings.Replace(row, `"amount":12.5`, `"amount":"12.5"`, 1) + `}`, `feature \"amount\": expected a number, got string`},
		{s, "/predict", `{` + strings.Replace(row, `,"device":"ios"`, ``, 1) + `}`, `missing features: device`},
		{strict, "/predict", `{"merchant_category":"fuel","country":"Atlantis","device":null}`, `input row 0, column \"country\": \"Atlantis\" is not a known category (handle_unknown='error')`},
		{strict, "/v2/models/impute_frequent_onehot_drop/infer", `{"inputs":[{"name":"merchant_category","datatype":"BYTES","shape":[2],"data":["fuel","crypto"]},
			{"name":"country","datatype":"BYTES","shape":[2],"data":["US",null]},{"name":"device","datatype":"BYTES","shape":[2],"data":["ios","web"]}]}`,
			`input row 1, column \"merchant_category\": \"crypto\" is not a known category`},
		{s, "/v2/models/fraud_hgb/infer", `{"inputs":[{"name":"amount","datatype":"FP64","shape":[1],"data":[1]}]}`, `missing input \"transaction_id\"`},
	} {
		rec := post(t, c.s, c.path, []byte(c.body))
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("POST %s %s: %d %s, want 422 with %s", c.path, c.body, rec.Code, rec.Body.String(), c.want)
		}
	}
	// A known row with a gap the imputer fills is answered.
	rec := post(t, strict, "/predict", []byte(`{"merchant_category":"fuel","country":null,"device":"web"}`))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"prediction":[[`) {
		t.Errorf("imputed gap: %d %s", rec.Code, rec.Body.String())
	}
}

// A numeric tabular model takes its columns as inputs of their own too, as
// MLServer's pandas codec sends them, and answers as for the matrix.
func TestNumericModelTakesOneInputPerColumn(t *testing.T) {
	repo, err := repository.Open("testdata/fraud_logreg.joblib", repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	const path = "/v2/models/fraud_logreg/infer"
	matrix := post(t, s, path, []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[2,2],"data":[[0.5,-1.2],[3,1]]}]}`))
	columns := post(t, s, path, []byte(`{"inputs":[{"name":"feature2","datatype":"FP64","shape":[2,1],"data":[-1.2,1]},{"name":"feature1","datatype":"FP64","shape":[2],"data":[0.5,3]}]}`))
	if matrix.Code != http.StatusOK || columns.Code != http.StatusOK {
		t.Fatalf("matrix %d %s; columns %d %s", matrix.Code, matrix.Body.String(), columns.Code, columns.Body.String())
	}
	m, c := restOutputs(t, matrix), restOutputs(t, columns)
	mp, cp := m[1].Data.([]float64), c[1].Data.([]float64)
	if len(m) != len(c) || len(mp) != 4 || len(cp) != 4 || mp[0] != cp[0] || mp[1] != cp[1] || mp[2] != cp[2] || mp[3] != cp[3] {
		t.Fatalf("columns answer %v, the matrix %v", c[1].Data, m[1].Data)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"inputs":[{"name":"feature1","datatype":"FP64","shape":[1],"data":[1]},{"name":"feature3","datatype":"FP64","shape":[1],"data":[1]}]}`, `missing column \"feature2\"`},
		{`{"inputs":[{"name":"feature1","datatype":"FP64","shape":[2],"data":[1,2]},{"name":"feature2","datatype":"FP64","shape":[1],"data":[1]}]}`, `input \"feature2\" has 1 rows but \"feature1\" has 2`},
		{`{"inputs":[{"name":"feature1","datatype":"BYTES","shape":[1],"data":["a"]},{"name":"feature2","datatype":"FP64","shape":[1],"data":[1]}]}`, `input \"feature1\" takes numbers, got BYTES`},
	} {
		rec := post(t, s, path, []byte(bad.body))
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), bad.want) {
			t.Errorf("%s: %d %s, want 422 with %s", bad.body, rec.Code, rec.Body.String(), bad.want)
		}
	}
}
