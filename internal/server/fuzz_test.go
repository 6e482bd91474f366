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

// FuzzSeedRows: the /predict body parser never panics, and what it accepts has
// exactly one row of two features per object.
func FuzzSeedRows(f *testing.F) {
	for _, s := range []string{`{"feature1": 0.5, "feature2": -1.2}`, `[{"feature1":1,"feature2":2},{"feature2":3,"feature1":4}]`, `{"feature1":1}`, `[]`, `{"x":{"y":[1]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, rows, err := decodeSeedRows(b, fuzzSeedModel)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if rows < 1 || len(x) != rows*2 {
			t.Fatalf("%d rows, %d values", rows, len(x))
		}
	})
}

// FuzzInstances does the same for KServe v1 {"instances": ...} bodies.
func FuzzInstances(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2],[3,4]]}`, `{"instances":[{"feature1":1,"feature2":2}]}`, `{"instances":[[1]]}`, `{"signature_name":"x","instances":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, rows, err := decodeInstances(b, 2, fuzzSeedModel)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if rows < 1 || len(x) != rows*2 {
			t.Fatalf("%d rows, %d values", rows, len(x))
		}
	})
}
