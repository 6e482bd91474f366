package apidocs

import (
	"encoding/json"
	"testing"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// TestDocumentForAnOddModel: a model name that is not a valid component name is
// made one, its example has one value per element of each input's shape (-1 taken
// as 1) in the input's own JSON type, and an unused input is sent as FP64.
func TestDocumentForAnOddModel(t *testing.T) {
	m := Model{Name: "fraud+v2", Versions: []string{"3"}, Meta: model.Metadata{
		Inputs: []model.TensorSpec{
			{Name: "x", Datatype: tensor.FP32, Shape: []int64{-1, 3}},
			{Name: "tag", Datatype: tensor.Bytes, Shape: []int64{-1}},
			{Name: "id", Datatype: tensor.Bytes, Shape: []int64{-1}, Unused: true},
			{Name: "ok", Datatype: tensor.Bool, Shape: []int64{2}},
		},
		Outputs: []model.TensorSpec{{Name: "y", Datatype: tensor.Int64, Shape: []int64{-1}}},
	}}
	raw, err := Document(Server{Version: "t"}, []Model{m})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Example struct {
						Inputs []struct {
							Name     string  `json:"name"`
							Shape    []int64 `json:"shape"`
							Datatype string  `json:"datatype"`
							Data     []any   `json:"data"`
						} `json:"inputs"`
					} `json:"example"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Components.Schemas["fraud_v2InferenceRequest"]; !ok {
		t.Fatalf("no sanitized request schema; have %v", doc.Components.Schemas)
	}
	if _, ok := doc.Paths["/predict"]; ok {
		t.Fatal("/predict listed with no model to serve it")
	}
	ex := doc.Paths["/v2/models/fraud+v2/infer"]["post"].RequestBody.Content["application/json"].Example.Inputs
	want := map[string]struct {
		dt   string
		n    int
		kind string
	}{"x": {"FP32", 3, "float64"}, "tag": {"BYTES", 1, "<nil>"}, "id": {"FP64", 1, "float64"}, "ok": {"BOOL", 2, "bool"}}
	if len(ex) != len(want) {
		t.Fatalf("example inputs %+v", ex)
	}
	for _, in := range ex {
		w := want[in.Name]
		if in.Datatype != w.dt || len(in.Data) != w.n {
			t.Errorf("input %s: %s with %d values, want %s with %d", in.Name, in.Datatype, len(in.Data), w.dt, w.n)
		}
		for _, v := range in.Data {
			if got := typeName(v); got != w.kind {
				t.Errorf("input %s: value %v is %s, want %s", in.Name, v, got, w.kind)
			}
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "<nil>"
	case bool:
		return "bool"
	case float64:
		return "float64"
	}
	return "other"
}
