package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tensor"
)

func benchServer(b testing.TB, file string) *Server {
	b.Helper()
	repo, err := repository.Open("testdata/"+file, repository.Options{}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	if !s.IsReady() {
		b.Fatalf("not ready: %+v", repo.Index())
	}
	return s
}

// benchHandler measures one request through the whole HTTP handler (decode, model,
// encode, metrics), without the network. The request and the response writer are
// reused, so that the allocations reported are the handler's own.
func benchHandler(b *testing.B, s *Server, path, body string) {
	b.ReportAllocs()
	serve := reusedRequest(b, s, path, body)
	for i := 0; i < b.N; i++ {
		serve()
	}
}

// reusedRequest returns a function that sends the same request through s's
// handler with one request and one response writer for every call, and fails tb
// unless the answer is 200.
func reusedRequest(tb testing.TB, s *Server, path, body string) func() {
	req := httptest.NewRequest("POST", path, nil)
	rd := &reusableBody{}
	w := &benchWriter{header: http.Header{}}
	return func() {
		rd.Reset(body)
		req.Body = rd
		w.reset()
		s.ServeHTTP(w, req)
		if w.code != 200 {
			tb.Fatalf("%d %s", w.code, w.body.String())
		}
	}
}

// reusableBody is a request body that can be rewound for the next request.
type reusableBody struct{ strings.Reader }

func (*reusableBody) Close() error { return nil }

// benchWriter is a ResponseWriter kept across requests (httptest's recorder
// allocates a header map and a buffer for each).
type benchWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
func (w *benchWriter) reset() {
	clear(w.header)
	w.code = 0
	w.body.Reset()
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func BenchmarkSeedPredict(b *testing.B) {
	for _, m := range []string{"fraud_logreg", "fraud_rf"} {
		b.Run(m, func(b *testing.B) {
			benchHandler(b, benchServer(b, m+".joblib"), "/predict", `{"feature1": 0.5, "feature2": -1.2}`)
		})
	}
}

func BenchmarkOIPInfer(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	benchHandler(b, s, "/v2/models/fraud_logreg/infer",
		`{"id":"1","inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0.5,-1.2]}]}`)
}

func BenchmarkKServeV1Predict(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	benchHandler(b, s, "/v1/models/fraud_logreg:predict", `{"instances":[[0.5,-1.2]]}`)
}

// BenchmarkModelDirect is the model alone, the baseline the protocol overhead is
// measured against (BenchmarkOIPInfer minus this).
func BenchmarkModelDirect(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	v, _ := s.repo.Get("fraud_logreg", "")
	m, _, _ := v.Model()
	in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{0.5, -1.2}}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := m.Predict(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
