package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/repository"
)

// A missing value (null, or Python's NaN literal) reaches a scikit-learn model
// that does not take missing values as NaN, and is refused with a 422 that names
// the feature on every JSON protocol, where sklearn's predict would raise.
func TestMissingValuesReachTheModelOnEveryProtocol(t *testing.T) {
	repo, err := repository.Open("testdata/fraud_logreg.joblib", repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	const refusal = `feature \"feature1\" (column 0) is NaN, which the model does not accept (impute missing values first`
	for _, c := range []struct{ path, body string }{
		{"/predict", `{"feature1": null, "feature2": 2}`},
		{"/predict", `[{"feature1": 1, "feature2": 2}, {"feature1": NaN, "feature2": 2}]`},
		{"/v2/models/fraud_logreg/infer", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[null,2]}]}`},
		{"/v1/models/fraud_logreg:predict", `{"instances":[[null,2]]}`},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), refusal) {
			t.Errorf("POST %s %s: %d %s, want 422 naming feature1", c.path, c.body, rec.Code, rec.Body.String())
		}
	}
}
