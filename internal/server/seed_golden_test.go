package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/tideserve/tide/internal/formats/sklearn"
	"github.com/tideserve/tide/internal/repository"
)

// TestSeedPredictByteForByte serves real scikit-learn joblib files and compares
// every /predict answer, byte for byte, with what the tutorial's FastAPI app
// returns for the same request (testdata/gen_seed_golden.py): int labels, string
// labels, regression floats in Python's repr, single objects and a batch.
func TestSeedPredictByteForByte(t *testing.T) {
	goldens, err := filepath.Glob("testdata/*.golden.json")
	if err != nil || len(goldens) < 4 {
		t.Fatalf("golden files: %v %v", goldens, err)
	}
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".golden.json")
		t.Run(name, func(t *testing.T) {
			repo, err := repository.Open(filepath.Join("testdata", name+".joblib"), repository.Options{}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			s := New(repo, Options{}, quietLog())
			s.LoadModels(context.Background())
			if !s.IsReady() {
				t.Fatalf("not ready: %+v", repo.Index())
			}
			data, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			var cases []struct{ Request, Response string }
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest("POST", "/predict", strings.NewReader(c.Request)))
				if rec.Code != 200 || rec.Body.String() != c.Response {
					t.Errorf("POST /predict %s\n got %d %s\nwant 200 %s", c.Request, rec.Code, rec.Body.String(), c.Response)
				}
			}
		})
	}
}
