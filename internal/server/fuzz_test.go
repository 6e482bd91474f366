package server

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/serving"
)

var fuzzSeedModel = &serving.Features{Input: "input", Names: []string{"feature1", "feature2"},
	Index: map[string]int{"feature1": 0, "feature2": 1}}

// checkClientError fails unless err is one a client caused: 400 or 422.
func checkClientError(t *testing.T, err error) {
	t.Helper()
	if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusUnprocessableEntity {
		t.Fatalf("status %d for %v", st, err)
	}
	if errors.Is(err, model.ErrInvalidInput) && statusOf(err) != 422 {
		t.Fatalf("invalid input not 422: %v", err)
	}
}

// fuzzColumnsModel takes one input per column: a number, a string, and a
// column it ignores.
var fuzzColumnsModel = &serving.Features{Names: []string{"amount", "country", "id"},
	Index: map[string]int{"amount": 0, "country": 1, "id": 2}, Columns: true,
	Kinds: []serving.ColumnKind{serving.ColumnNumber, serving.ColumnText, serving.ColumnAny}}

// checkTable fails unless t holds rows ≥ 1 of every column, as the model's
// inputs need them.
func checkTable(t *testing.T, tb *featureTable) {
	t.Helper()
	ts := tb.tensors()
	if tb.rows < 1 {
		t.Fatalf("%d rows", tb.rows)
	}
	for _, x := range ts {
		if err := x.Validate(); err != nil || x.Shape[0] != int64(tb.rows) {
			t.Fatalf("tensor %s %v: %v (rows %d)", x.Name, x.Shape, err, tb.rows)
		}
	}
	if !tb.sm.Columns && (len(ts) != 1 || ts[0].Shape[1] != int64(len(tb.sm.Names))) {
		t.Fatalf("matrix %v", ts[0].Shape)
	}
	if tb.sm.Columns && len(ts) != len(tb.sm.Names) {
		t.Fatalf("%d column tensors", len(ts))
	}
}

// FuzzSeedRows: the /predict body parser never panics, and what it accepts has
// one row of every feature per object, for a numeric model and one with
// string columns.
func FuzzSeedRows(f *testing.F) {
	for _, s := range []string{`{"feature1": 0.5, "feature2": -1.2}`, `[{"feature1":1,"feature2":2},{"feature2":3,"feature1":4}]`, `{"feature1":1}`, `[]`, `{"x":{"y":[1]}}`,
		`{"amount":1,"country":"US","id":"t1"}`, `[{"amount":null,"country":null,"id":7},{"amount":NaN,"country":"日本","id":{"a":[1]}}]`, `{"amount":"1","country":2,"id":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sm := range []*serving.Features{fuzzSeedModel, fuzzColumnsModel} {
			tb, err := decodeSeedRows(b, sm)
			if err != nil {
				checkClientError(t, err)
				continue
			}
			checkTable(t, tb)
		}
	})
}

// FuzzInstances does the same for KServe v1 {"instances": ...} bodies.
func FuzzInstances(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2],[3,4]]}`, `{"instances":[{"feature1":1,"feature2":2}]}`, `{"instances":[[1]]}`, `{"signature_name":"x","instances":[]}`,
		`{"instances":[[1,"US","t1"],{"amount":2,"country":null,"id":3}]}`, `{"instances":[[1,2],[3,4]],"instances":[[5,6]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sm := range []*serving.Features{fuzzSeedModel, fuzzColumnsModel} {
			tb := newFeatureTable(sm, "", len(sm.Names), 4)
			if err := decodeInstances(b, tb); err != nil {
				checkClientError(t, err)
				continue
			}
			checkTable(t, tb)
		}
	})
}
