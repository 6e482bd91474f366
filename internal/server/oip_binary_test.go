package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/tensor"
)

func fp64le(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// TestOIPBinaryTensorData drives the REST infer handler with the binary tensor data
// extension: binary inputs, binary outputs, both, and the errors a client can make.
func TestOIPBinaryTensorData(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	rows := `{"name":"input","shape":[2,2],"datatype":"FP64","parameters":{"binary_data_size":32}}`
	cases := []struct {
		name       string
		header     string
		binary     []byte
		headerLen  string // Inference-Header-Content-Length; "" = omit, "auto" = len(header)
		wantStatus int
		wantHeader string // the response's JSON part (or whole JSON body)
		wantBinary []byte // the response's binary part
		wantLen    bool   // the response carries Inference-Header-Content-Length
	}{
		{name: "binary input, JSON output", header: `{"id":"b1","inputs":[` + rows + `]}`, binary: fp64le(1, 0, 0, 1), headerLen: "auto",
			wantStatus: 200,
			wantHeader: `{"model_name":"fraud","model_version":"1","id":"b1","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"data":[1,0]},{"name":"predict_proba","datatype":"FP64","shape":[2,2],"data":[0,1,1,0]}]}`},
		{name: "binary input, all outputs binary", header: `{"inputs":[` + rows + `],"parameters":{"binary_data_output":true}}`, binary: fp64le(1, 0, 0, 1), headerLen: "auto",
			wantStatus: 200, wantLen: true,
			wantHeader: `{"model_name":"fraud","model_version":"1","id":"t-1","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"parameters":{"binary_data_size":16}},{"name":"predict_proba","datatype":"FP64","shape":[2,2],"parameters":{"binary_data_size":32}}]}`,
			wantBinary: append(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1), 0), fp64le(0, 1, 1, 0)...)},
		{name: "JSON input, one requested output binary", header: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0,3]}],"outputs":[{"name":"predict_proba","parameters":{"binary_data":true}}]}`,
			wantStatus: 200, wantLen: true,
			wantHeader: `{"model_name":"fraud","model_version":"1","id":"t-1","outputs":[{"name":"predict_proba","datatype":"FP64","shape":[1,2],"parameters":{"binary_data_size":16}}]}`,
			wantBinary: fp64le(1, 0)},
		{name: "binary_data false keeps JSON", header: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0,3]}],"outputs":[{"name":"predict","parameters":{"binary_data":false}}]}`,
			wantStatus: 200,
			wantHeader: `{"model_name":"fraud","model_version":"1","id":"t-1","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[0]}]}`},
		{name: "header length not a number", header: `{"inputs":[` + rows + `]}`, binary: fp64le(1, 0, 0, 1), headerLen: "x",
			wantStatus: 400, wantHeader: `{"error":"Inference-Header-Content-Length header \"x\": want the JSON header's length in bytes"}`},
		{name: "binary part too short", header: `{"inputs":[` + rows + `]}`, binary: fp64le(1, 0, 0), headerLen: "auto",
			wantStatus: 400, wantHeader: `{"error":"binary data is 24 bytes but the inputs' binary_data_size add up to more than 24"}`},
		{name: "binary size does not fit the shape", header: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","parameters":{"binary_data_size":8}}]}`, binary: fp64le(1), headerLen: "auto",
			wantStatus: 422, wantHeader: `{"error":"input \"input\": shape [1 2] of FP64 needs 16 bytes, got 8"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := append([]byte(c.header), c.binary...)
			req := httptest.NewRequest("POST", "/v2/models/fraud/infer", bytes.NewReader(body))
			req.Header.Set("X-Request-Id", testRequestID)
			switch c.headerLen {
			case "":
			case "auto":
				req.Header.Set(oip.HeaderContentLength, strconv.Itoa(len(c.header)))
			default:
				req.Header.Set(oip.HeaderContentLength, c.headerLen)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.wantStatus, rec.Body)
			}
			got := rec.Body.Bytes()
			hl := rec.Header().Get(oip.HeaderContentLength)
			if (hl != "") != c.wantLen {
				t.Fatalf("%s = %q, want it set: %v", oip.HeaderContentLength, hl, c.wantLen)
			}
			n := len(got)
			if c.wantLen {
				var err error
				if n, err = strconv.Atoi(hl); err != nil || n > len(got) {
					t.Fatalf("bad %s %q for a %d-byte body", oip.HeaderContentLength, hl, len(got))
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("Content-Type %q for a binary response", ct)
				}
			}
			if string(got[:n]) != c.wantHeader {
				t.Fatalf("JSON part\n got %s\nwant %s", got[:n], c.wantHeader)
			}
			if !bytes.Equal(got[n:], c.wantBinary) {
				t.Fatalf("binary part % x, want % x", got[n:], c.wantBinary)
			}
		})
	}
}

func TestServerMetadataAdvertisesBinaryTensorData(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2", nil))
	if !strings.Contains(rec.Body.String(), `"binary_tensor_data"`) {
		t.Fatalf("GET /v2 = %s, want binary_tensor_data among the extensions", rec.Body)
	}
}

// BenchmarkOIPInferEncodings sends the same 1024 rows to the tutorial's logistic
// regression through the REST handler as JSON and as binary tensor data (inputs and
// outputs), to show what the extension saves on larger batches.
func BenchmarkOIPInferEncodings(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	const rows = 1024
	x := make([]float64, 2*rows)
	for i := range x {
		x[i] = float64(i%17) / 7
	}
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{rows, 2}, Data: x}
	jsonBody := []byte(`{"inputs":[` + string(oip.AppendTensor(nil, in)) + `]}`)
	header := fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[%d,2],"parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}`, rows, 16*rows)
	binBody := append([]byte(header), fp64le(x...)...)
	for _, c := range []struct {
		name      string
		body      []byte
		headerLen int
	}{{"json", jsonBody, 0}, {"binary", binBody, len(header)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/v2/models/fraud_logreg/infer", bytes.NewReader(c.body))
				if c.headerLen > 0 {
					req.Header.Set(oip.HeaderContentLength, strconv.Itoa(c.headerLen))
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
