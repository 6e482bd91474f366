package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/tideserve/tide/internal/repository"
)

// docsServer serves the numeric tutorial model and the mixed-type fraud
// pipeline (string columns) side by side, /predict on the pipeline.
func docsServer(t *testing.T, opts Options) *Server {
	t.Helper()
	root := t.TempDir()
	for src, dst := range map[string]string{
		"testdata/fraud_logreg.joblib":     "fraud_logreg/model.joblib",
		mixedFixtures + "fraud_hgb.joblib": "fraud_hgb/model.joblib",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755)
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	opts.DefaultModel = "fraud_hgb"
	s := New(repo, opts, quietLog())
	s.LoadModels(context.Background())
	return s
}

// documentValidator checks raw against the OpenAPI 3.1 schema (a real
// validator) and returns the validator of requests and answers it describes.
func documentValidator(t *testing.T, raw []byte) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s (%s)", e.Message, e.Reason)
		}
		t.FailNow()
	}
	return v
}

// exchangeDocumented sends a request to s after checking that the document
// finds it valid (or not: wantValid), and checks that the answer matches the
// document whatever its status.
func exchangeDocumented(t *testing.T, s *Server, v validator.Validator, method, path string, body []byte, wantValid bool) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "http://tide.test"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	ok, verrs := v.ValidateHttpRequest(req)
	if ok != wantValid {
		t.Fatalf("%s %s %s: valid by the document %v, want %v: %v", method, path, body, ok, wantValid, verrs)
	}
	req = httptest.NewRequest(method, path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	vreq := httptest.NewRequest(method, "http://tide.test"+path, bytes.NewReader(body))
	vreq.Header.Set("Content-Type", "application/json")
	if ok, verrs := v.ValidateHttpResponse(vreq, resp); !ok {
		t.Fatalf("%s %s: the answer %d %s does not match the document: %v", method, path, resp.StatusCode, respBody, verrs[0].Message)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	return resp
}

func getDoc(t *testing.T, s *Server) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// TestOpenAPIDocumentIsValidAndTrue: the document validates against the OpenAPI
// 3.1 schema (a real validator), and real requests and the server's real answers
// validate against the document, on every protocol it lists; a request the
// model refuses is refused by the document too, and the examples "Try it out"
// sends are answered 200.
func TestOpenAPIDocumentIsValidAndTrue(t *testing.T) {
	s := docsServer(t, Options{Version: "1.2.3"})
	raw := getDoc(t, s)
	v := documentValidator(t, raw)

	var parsed struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Example json.RawMessage `json:"example"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type any `json:"type"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", parsed.OpenAPI)
	}
	// /predict lists the pipeline's features with their types.
	row := parsed.Components.Schemas["fraud_hgbRow"].Properties
	fx := readFraud(t)
	if len(row) != len(fx.Columns) {
		t.Fatalf("the /predict row lists %d features, the model has %d", len(row), len(fx.Columns))
	}
	for _, c := range fx.Columns {
		typ, _ := json.Marshal(row[c.Name].Type)
		want := map[string]string{"number": `["number","null"]`, "text": `["string","null"]`, "unused": "null"}[c.Kind]
		if string(typ) != want {
			t.Errorf("feature %s (%s): type %s, want %s", c.Name, c.Kind, typ, want)
		}
	}

	exchange := func(method, path string, body []byte, wantValid bool) *http.Response {
		t.Helper()
		return exchangeDocumented(t, s, v, method, path, body, wantValid)
	}
	rowJSON, _ := json.Marshal(fxRow(fx, 0))
	if r := exchange("POST", "/predict", rowJSON, true); r.StatusCode != 200 {
		t.Fatalf("/predict: %d", r.StatusCode)
	}
	batch, _ := json.Marshal([]any{fxRow(fx, 1), fxRow(fx, 2)})
	exchange("POST", "/predict", batch, true)
	exchange("POST", "/v1/models/fraud_hgb:predict", []byte(`{"instances":[`+string(rowJSON)+`]}`), true)
	// A string where the model wants a number: refused by the document and the server.
	bad := fxRow(fx, 0)
	for _, c := range fx.Columns {
		if c.Kind == "number" {
			bad[c.Name] = "lots"
			break
		}
	}
	badJSON, _ := json.Marshal(bad)
	if r := exchange("POST", "/predict", badJSON, false); r.StatusCode != 422 {
		t.Fatalf("a string in a number column: %d, want 422", r.StatusCode)
	}
	exchange("GET", "/v2/models/fraud_logreg", nil, true)
	exchange("GET", "/v2", nil, true)
	// Each example is what the page sends on "Try it out": it must work as it stands.
	for path, ops := range parsed.Paths {
		if op, ok := ops["post"]; ok {
			ex := op.RequestBody.Content["application/json"].Example
			if len(ex) == 0 {
				t.Errorf("POST %s has no example", path)
				continue
			}
			if r := exchange("POST", path, ex, true); r.StatusCode != 200 {
				b, _ := io.ReadAll(r.Body)
				t.Errorf("POST %s with its own example: %d %s", path, r.StatusCode, b)
			}
		}
	}
}

func fxRow(fx *fraudFixture, i int) map[string]any {
	row := map[string]any{}
	for j, c := range fx.Columns {
		row[c.Name] = fx.Rows[i][j]
	}
	return row
}

func TestDocsPageAndItsSwitch(t *testing.T) {
	s := docsServer(t, Options{})
	get := func(s *Server, path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	page := get(s, "/docs")
	if page.Code != 200 || !strings.Contains(page.Body.String(), "swagger-ui-bundle.js") || page.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("/docs: %d %s %v", page.Code, page.Body, page.Header())
	}
	if strings.Contains(page.Body.String(), "://") {
		t.Fatalf("/docs refers to another host (no CDN at run time): %s", page.Body)
	}
	js := get(s, "/docs/5.35.0/swagger-ui-bundle.js", "Accept-Encoding", "gzip")
	if js.Code != 200 || js.Header().Get("Content-Encoding") != "gzip" || js.Body.Len() < 100000 {
		t.Fatalf("bundle, gzip: %d %v, %d bytes", js.Code, js.Header(), js.Body.Len())
	}
	plain := get(s, "/docs/5.35.0/swagger-ui.css")
	if plain.Code != 200 || plain.Header().Get("Content-Encoding") != "" || !strings.Contains(plain.Body.String(), ".swagger-ui") {
		t.Fatalf("css without gzip: %d %v", plain.Code, plain.Header())
	}

	off := docsServer(t, Options{DisableDocs: true})
	for _, p := range []string{"/docs", "/openapi.json", "/docs/5.35.0/swagger-ui.css"} {
		if rec := get(off, p); rec.Code != 404 {
			t.Errorf("--disable-docs: GET %s answered %d", p, rec.Code)
		}
	}

	// With API keys the document, which names the models, needs one; the page
	// does not (it asks for the key), and the document declares the schemes.
	keyed := docsServer(t, Options{APIKeys: []string{"k-123"}})
	if rec := get(keyed, "/openapi.json"); rec.Code != 401 {
		t.Fatalf("/openapi.json without a key: %d", rec.Code)
	}
	rec := get(keyed, "/openapi.json", "X-API-Key", "k-123")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"securitySchemes"`) {
		t.Fatalf("/openapi.json with the key: %d, securitySchemes missing", rec.Code)
	}
	if rec := get(keyed, "/docs"); rec.Code != 200 {
		t.Fatalf("/docs with keys on: %d", rec.Code)
	}
}

// TestVendoredSwaggerUIIsThePinnedRelease: the embedded files are the ones
// hack/vendor-swagger-ui.sh took from the pinned npm tarball (their sums are
// recorded there), so nobody edits the bundle by hand unseen.
func TestVendoredSwaggerUIIsThePinnedRelease(t *testing.T) {
	sums, err := os.ReadFile("../apidocs/swaggerui/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	s := docsServer(t, Options{})
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/docs/5.35.0/"+name, nil))
		if got := sha256hex(rec.Body.Bytes()); got != sum {
			t.Errorf("%s served with sha256 %s, the vendored release has %s", name, got, sum)
		}
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
