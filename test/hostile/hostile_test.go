// Package hostile replays, against the real tide-server binary, every hostile or
// careless request found so far, on every protocol, and checks each answer's status
// or gRPC code, that nothing a client sent comes back whole, and that the server is
// still up and small afterwards. New parsers add their cases here.
package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/servertest"
)

// server is a running tide-server on the fraud model, with gRPC on.
type server struct {
	*servertest.Process
	grpc string
}

func start(t *testing.T, bin string) *server {
	t.Helper()
	grpcAddr := servertest.FreeAddr(t)
	p := servertest.Serve(t, bin, "../../internal/server/testdata/fraud_logreg.joblib",
		"--grpc-addr", grpcAddr, "--max-body-bytes", "65536", "--log-level", "warn")
	return &server{Process: p, grpc: grpcAddr}
}

// rawRequest sends bytes as they are, so that paths are not cleaned on the way.
func rawRequest(t *testing.T, addr, method, path string, header http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: tide\r\nConnection: close\r\nContent-Length: %d\r\n", method, path, len(body))
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	req.Write(body)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

const oneRow = `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`

func TestHostileREST(t *testing.T) {
	s := start(t, servertest.Build(t))
	long := strings.Repeat("m", 8000)
	replayREST(t, s.HTTP, 400, []restCase{
		{"path escape", "POST", "/../../etc/passwd", "", 404, "no route"},
		{"dot-dot into a route", "GET", "/metrics/../v2", "", 404, "no route"},
		{"double slash", "GET", "//v2/health/ready", "", 404, "no route"},
		{"truncated literal", "POST", "/predict", "tru", 400, ""},
		{"form body", "POST", "/predict", "feature1=0.5&feature2=1", 400, ""},
		{"empty body", "POST", "/predict", "", 400, "empty request body"},
		{"wrong kind", "POST", "/predict", "true", 422, ""},
		{"unknown feature", "POST", "/predict", `{"feature1":1,"feature2":2,"x":3}`, 422, "unknown features: x"},
		{"long unknown features", "POST", "/predict", `{"feature1":1,"feature2":2,"` + strings.Repeat("k", 3000) + `":3,"` + strings.Repeat("j", 3000) + `":4}`, 422, "unknown features"},
		{"duplicate inputs", "POST", "/v2/models/fraud_logreg/infer", `{"inputs":[],"inputs":[]}`, 400, "duplicate key"},
		{"nesting against shape", "POST", "/v2/models/fraud_logreg/infer", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[[[1,0]]]}]}`, 400, "nested"},
		{"lower-case datatype", "POST", "/v2/models/fraud_logreg/infer", strings.Replace(oneRow, "FP64", "fp64", 1), 422, "upper case"},
		{"huge datatype", "POST", "/v2/models/fraud_logreg/infer", strings.Replace(oneRow, "FP64", strings.Repeat("X", 6000), 1), 422, "unknown datatype"},
		{"body over the limit", "POST", "/predict", `{"feature1":` + strings.Repeat("1", 70000) + `}`, 413, ""},
		{"long model name", "POST", "/v2/models/" + long + "/infer", oneRow, 404, "not found"},
		{"unload while model control is off", "POST", "/v2/repository/models/fraud_logreg/unload", "", 403, "model control is off"},
		{"KServe v1 malformed", "POST", "/v1/models/fraud_logreg:predict", `{"instances": [[1, tru]]}`, 400, ""},
	})
	stillServes(t, s)
}

// restCase is one hostile or careless REST request and the answer it must get.
type restCase struct {
	name, method, path, body string
	want                     int
	contains                 string
}

// replayREST sends each case as raw bytes and checks its status and message,
// that it is one line of JSON, not a redirect, and at most maxAnswer bytes (an
// answer that echoes what the client sent is longer).
func replayREST(t *testing.T, addr string, maxAnswer int, cases []restCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := rawRequest(t, addr, c.method, c.path, nil, []byte(c.body))
			if code != c.want || !strings.Contains(string(body), c.contains) {
				t.Errorf("%d %s; want %d containing %q", code, body, c.want, c.contains)
			}
			if hdr.Get("Location") != "" {
				t.Errorf("redirected to %q", hdr.Get("Location"))
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || bytes.Count(body, []byte("\n")) > 1 {
				t.Errorf("want one line of JSON, got %q: %s", hdr.Get("Content-Type"), body)
			}
			if len(body) > maxAnswer {
				t.Errorf("%d-byte answer echoes what the client sent", len(body))
			}
		})
	}
}

func TestHostileGRPC(t *testing.T) {
	s := start(t, servertest.Build(t))
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	check := func(name string, err error, want codes.Code, contains string) {
		t.Helper()
		st, _ := status.FromError(err)
		if st.Code() != want || !strings.Contains(st.Message(), contains) || len(st.Message()) > 300 {
			t.Errorf("%s: %v %q; want %v containing %q, short", name, st.Code(), st.Message(), want, contains)
		}
	}
	for name, b := range map[string][]byte{"garbage": []byte("\xff\xff not protobuf"), "truncated": {0x0a, 0x40, 'f'}} {
		err := conn.Invoke(t.Context(), pb.GRPCInferenceService_ModelInfer_FullMethodName, &servertest.RawMsg{B: b}, &servertest.RawMsg{}, grpc.ForceCodecV2(servertest.RawCodec{}))
		check(name, err, codes.InvalidArgument, "malformed request message")
	}
	in := &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 0}}}
	_, err = c.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: strings.Repeat("m", 8000), Inputs: []*pb.ModelInferRequest_InferInputTensor{in}})
	check("8000-byte model name", err, codes.NotFound, "not found")
	bad := &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "fp64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 0}}}
	_, err = c.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "fraud_logreg", Inputs: []*pb.ModelInferRequest_InferInputTensor{bad}})
	check("lower-case datatype", err, codes.InvalidArgument, "upper case")
	_, err = c.RepositoryModelUnload(t.Context(), &pb.RepositoryModelUnloadRequest{ModelName: "fraud_logreg"})
	check("unload while model control is off", err, codes.PermissionDenied, "model control is off")
	if _, err := c.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "fraud_logreg", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}}); err != nil {
		t.Errorf("a good call after the hostile ones: %v", err)
	}
	stillServes(t, s)
}

// TestBlankKeysRefused: a key list that is only blanks does not turn auth off.
func TestBlankKeysRefused(t *testing.T) {
	bin := servertest.Build(t)
	for _, env := range []string{"TIDE_API_KEYS= , ", "TIDE_MANAGEMENT_KEYS=,"} {
		cmd := exec.Command(bin, "serve", "--http-addr", servertest.FreeAddr(t), "--grpc-addr", "", "../../internal/server/testdata/fraud_logreg.joblib")
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is blank") {
			t.Errorf("%s: started or said %q", env, out)
		}
	}
}

// stillServes: after the hostile cases the server answers, and is still small.
func stillServes(t *testing.T, s *server) {
	t.Helper()
	code, _, body := rawRequest(t, s.HTTP, "POST", "/predict", nil, []byte(`{"feature1": 0.5, "feature2": -1.2}`))
	if code != 200 {
		t.Fatalf("after the hostile cases /predict answers %d %s", code, body)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return // not Linux
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			if kb, _ := strconv.Atoi(f[1]); kb > 128<<10 {
				t.Errorf("peak RSS %d KiB after the hostile cases, want under 128 MiB", kb)
			}
		}
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// TestHostileFeedback: the feedback and monitoring routes of a monitored model
// take careless and hostile bodies with one line each, never echo a long id
// whole, and leave the server serving.
func TestHostileFeedback(t *testing.T) {
	dir := t.TempDir()
	model, err := os.ReadFile("../../internal/server/testdata/fraud_logreg.joblib")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir+"/fraud.joblib", model, 0o644)
	os.WriteFile(dir+"/fraud.yaml", []byte("monitoring:\n  feedback:\n    max_rows: 1000\n"), 0o644)
	p := servertest.Serve(t, servertest.Build(t), dir+"/fraud.joblib", "--max-body-bytes", "65536", "--log-level", "warn")
	long := strings.Repeat("i", 8000)
	// Per-item answers may run longer than an error line: 1000 bytes at most.
	replayREST(t, p.HTTP, 1000, []restCase{
		{"not JSON", "POST", "/v2/models/fraud/feedback", "{nope", 400, "not valid JSON"},
		{"deep nesting", "POST", "/v2/models/fraud/feedback", strings.Repeat("[", 5000), 400, "not a JSON array"},
		{"NaN value", "POST", "/v2/models/fraud/feedback", `[{"id":"a","value":NaN}]`, 400, "not a JSON array"},
		{"a string", "POST", "/v2/models/fraud/feedback", `"ok"`, 400, "not a JSON array"},
		{"long id", "POST", "/v2/models/fraud/feedback", `[{"id":"` + long + `","label":1}]`, 200, "longer than a request id"},
		{"label of every wrong type", "POST", "/v2/models/fraud/feedback", `[{"id":"a","label":{}},{"id":"a","label":null},{"id":"a","label":[1]},{"id":"a","row":"0","label":1},{"id":7,"label":1}]`, 200, `"invalid":5`},
		{"too many items", "POST", "/v2/models/fraud/feedback", "[" + strings.Repeat(`{},`, 10000) + "{}]", 413, "at most 10000"},
		{"body over the limit", "POST", "/v2/models/fraud/feedback", `[{"id":"` + strings.Repeat("a", 70000) + `"}]`, 413, ""},
		{"long model name", "POST", "/v2/models/" + long + "/feedback", "[]", 404, "not found"},
		{"monitoring of a long name", "GET", "/v2/models/" + long + "/monitoring", "", 404, "not found"},
	})
	stillServes(t, &server{Process: p})
}
