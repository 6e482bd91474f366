package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tideserve/tide/internal/formats/formatstest"
	_ "github.com/tideserve/tide/internal/formats/sklearn"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/servertest"
	"github.com/tideserve/tide/internal/serving"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tensor/tensortest"
)

// dialGRPC serves s's gRPC front end on a loopback port and returns a client
// generated from the same proto, closed when the test ends.
func dialGRPC(tb testing.TB, s *Server) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(serveGRPC(tb, s), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// serveGRPC serves s's gRPC front end on a loopback port until the test ends,
// and returns its address.
func serveGRPC(tb testing.TB, s *Server) string {
	tb.Helper()
	gs, err := s.GRPCServer()
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go gs.Serve(ln)
	tb.Cleanup(gs.Stop)
	return ln.Addr().String()
}

func fp64Contents(v ...float64) *pb.InferTensorContents {
	return &pb.InferTensorContents{Fp64Contents: v}
}

func inferReq(model string, inputs ...*pb.ModelInferRequest_InferInputTensor) *pb.ModelInferRequest {
	return &pb.ModelInferRequest{ModelName: model, Inputs: inputs}
}

func fp64Input(name string, shape []int64, v ...float64) *pb.ModelInferRequest_InferInputTensor {
	return &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP64", Shape: shape, Contents: fp64Contents(v...)}
}

// wantCode checks a call's gRPC code and that its message contains msg.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
	}
}

// TestGRPCConformance calls every RPC of inference.GRPCInferenceService through a
// client generated from the same proto, on the test runtime whose answers are
// known exactly, and checks answers and error codes.
func TestGRPCConformance(t *testing.T) {
	s := newTestServer(t, Options{Version: "1.2.3", ModelControl: true}, map[string]formatstest.Spec{
		"fraud": fraud, "broken": {FailLoad: "corrupt file"}})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	ctx := context.Background()

	t.Run("ServerLive", func(t *testing.T) {
		r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{})
		if err != nil || !r.GetLive() {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("ServerReady", func(t *testing.T) {
		r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{})
		if err != nil || !r.GetReady() {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("ModelReady", func(t *testing.T) {
		cases := []struct {
			name, version string
			ready         bool
			code          codes.Code
		}{
			{"fraud", "", true, codes.OK},
			{"fraud", "1", true, codes.OK},
			{"broken", "", false, codes.OK},
			{"fraud", "9", false, codes.NotFound},
			{"nope", "", false, codes.NotFound},
		}
		for _, cs := range cases {
			r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: cs.name, Version: cs.version})
			if status.Code(err) != cs.code || r.GetReady() != cs.ready {
				t.Errorf("ModelReady(%s, %q) = %v, %v; want ready %v, code %v", cs.name, cs.version, r, err, cs.ready, cs.code)
			}
		}
	})
	t.Run("ServerMetadata", func(t *testing.T) {
		r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
		want := &pb.ServerMetadataResponse{Name: "tide", Version: "1.2.3", Extensions: []string{"model_repository"}}
		if err != nil || !proto.Equal(r, want) {
			t.Fatalf("got %v %v, want %v", r, err, want)
		}
	})
	t.Run("ModelMetadata", func(t *testing.T) {
		r, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud"})
		want := &pb.ModelMetadataResponse{Name: "fraud", Versions: []string{"1"}, Platform: "testlinear",
			Inputs: []*pb.ModelMetadataResponse_TensorMetadata{{Name: "input", Datatype: "FP64", Shape: []int64{-1, 2}}},
			Outputs: []*pb.ModelMetadataResponse_TensorMetadata{
				{Name: "predict", Datatype: "INT64", Shape: []int64{-1}},
				{Name: "predict_proba", Datatype: "FP64", Shape: []int64{-1, 2}}}}
		if err != nil || !proto.Equal(r, want) {
			t.Fatalf("got %v %v, want %v", r, err, want)
		}
		_, err = c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "nope"})
		wantCode(t, err, codes.NotFound, "model not found")
		_, err = c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "broken"})
		wantCode(t, err, codes.Unavailable, "corrupt file")
	})
	t.Run("ModelInfer", func(t *testing.T) {
		typed := inferReq("fraud", fp64Input("input", []int64{2, 2}, 1, 0, 0, 1))
		typed.Id = "req-7"
		r, err := c.ModelInfer(ctx, typed)
		want := &pb.ModelInferResponse{ModelName: "fraud", ModelVersion: "1", Id: "req-7", Outputs: []*pb.ModelInferResponse_InferOutputTensor{
			{Name: "predict", Datatype: "INT64", Shape: []int64{2}, Contents: &pb.InferTensorContents{Int64Contents: []int64{1, 0}}},
			{Name: "predict_proba", Datatype: "FP64", Shape: []int64{2, 2}, Contents: fp64Contents(0, 1, 1, 0)}}}
		if err != nil || !proto.Equal(r, want) {
			t.Fatalf("typed:\n got %v %v\nwant %v", r, err, want)
		}

		raw := &pb.ModelInferRequest{ModelName: "fraud", ModelVersion: "1",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}}},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "predict_proba"}},
			RawInputContents: [][]byte{fp64le(0, 3)}}
		var header metadata.MD
		r, err = c.ModelInfer(metadata.AppendToOutgoingContext(ctx, "x-request-id", "raw-1"), raw, grpc.Header(&header))
		if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "raw-1" {
			t.Fatalf("x-request-id header metadata %q, want the client's raw-1 back", got)
		}
		want = &pb.ModelInferResponse{ModelName: "fraud", ModelVersion: "1", Id: "raw-1", // no id in the request: the request id
			Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: "predict_proba", Datatype: "FP64", Shape: []int64{1, 2}}},
			RawOutputContents: [][]byte{fp64le(1, 0)}}
		if err != nil || !proto.Equal(r, want) {
			t.Fatalf("raw:\n got %v %v\nwant %v", r, err, want)
		}

		i32 := inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "INT32", Shape: []int64{1, 2},
			Contents: &pb.InferTensorContents{IntContents: []int32{3, 1}}})
		if r, err = c.ModelInfer(ctx, i32, grpc.Header(&header)); err != nil || r.GetOutputs()[0].GetContents().GetInt64Contents()[0] != 1 {
			t.Fatalf("INT32 input: %v %v", r, err)
		}
		if got := header.Get("x-request-id"); len(got) != 1 || len(got[0]) != 16 || r.GetId() != got[0] {
			t.Fatalf("no request id given: header metadata %q and OIP id %q, want the same generated 16-digit id", got, r.GetId())
		}
	})
	t.Run("ModelInfer errors", func(t *testing.T) {
		ok := fp64Input("input", []int64{1, 2}, 1, 0)
		cases := []struct {
			name string
			req  *pb.ModelInferRequest
			code codes.Code
			msg  string
		}{
			{"unknown model", inferReq("nope", ok), codes.NotFound, "model not found"},
			{"unknown version", &pb.ModelInferRequest{ModelName: "fraud", ModelVersion: "7", Inputs: []*pb.ModelInferRequest_InferInputTensor{ok}}, codes.NotFound, `version "7"`},
			{"model failed to load", inferReq("broken", ok), codes.Unavailable, "corrupt file"},
			{"no inputs", inferReq("fraud"), codes.InvalidArgument, "no inputs"},
			{"wrong input name", inferReq("fraud", fp64Input("x", []int64{1, 2}, 1, 0)), codes.InvalidArgument, `missing input "input"`},
			{"shape needs more data", inferReq("fraud", fp64Input("input", []int64{2, 2}, 1, 0)), codes.InvalidArgument, "needs 4 elements, fp64_contents has 2"},
			{"wrong contents field", inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP32", Shape: []int64{1, 2}, Contents: fp64Contents(1, 0)}), codes.InvalidArgument, "fp32_contents has 0"},
			{"model refuses the width", inferReq("fraud", fp64Input("input", []int64{1, 3}, 1, 0, 2)), codes.InvalidArgument, "want shape [-1, 2]"},
			{"unknown datatype", inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP128", Shape: []int64{1}}), codes.InvalidArgument, "unknown datatype"},
			{"negative dimension", inferReq("fraud", fp64Input("input", []int64{-1, 2}, 1, 0)), codes.InvalidArgument, "invalid shape"},
			{"duplicate input", inferReq("fraud", ok, ok), codes.InvalidArgument, "appears twice"},
			{"FP16 without raw", inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP16", Shape: []int64{1, 2}}), codes.InvalidArgument, "send it in raw_input_contents"},
			{"INT8 out of range", inferReq("fraud", &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "INT8", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{IntContents: []int32{1, 300}}}), codes.InvalidArgument, "element 1 is 300, out of range for INT8"},
			{"raw count differs", &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}}}, RawInputContents: [][]byte{fp64le(1, 2), fp64le(3)}}, codes.InvalidArgument, "raw_input_contents has 2 entries for 1 inputs"},
			{"raw and typed mixed", &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{ok}, RawInputContents: [][]byte{fp64le(1, 2)}}, codes.InvalidArgument, "use one or the other"},
			{"raw size wrong", &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}}}, RawInputContents: [][]byte{fp64le(1)}}, codes.InvalidArgument, "needs 16 bytes, got 8"},
			{"unknown output", &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{ok}, Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}}, codes.InvalidArgument, `no output "logits"`},
		}
		for _, cs := range cases {
			t.Run(cs.name, func(t *testing.T) {
				var header metadata.MD
				_, err := c.ModelInfer(metadata.AppendToOutgoingContext(ctx, "x-request-id", "err-"+strconv.Itoa(len(cs.name))), cs.req, grpc.Header(&header))
				wantCode(t, err, cs.code, cs.msg)
				if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "err-"+strconv.Itoa(len(cs.name)) {
					t.Errorf("a refused call's x-request-id header metadata %q, want the client's id back", got)
				}
			})
		}
	})
	t.Run("RepositoryIndex", func(t *testing.T) {
		r, err := c.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, m := range r.GetModels() {
			got[m.GetName()+"/"+m.GetVersion()] = m.GetState()
			if m.GetName() == "broken" && !strings.Contains(m.GetReason(), "corrupt file") {
				t.Errorf("broken model's reason %q", m.GetReason())
			}
		}
		if want := map[string]string{"fraud/1": "READY", "broken/1": "FAILED"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("index %v, want %v", got, want)
		}
		r, err = c.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{Ready: true})
		if err != nil || len(r.GetModels()) != 1 || r.GetModels()[0].GetName() != "fraud" {
			t.Fatalf("ready-only index: %v %v", r, err)
		}
	})
	t.Run("RepositoryModelLoad and Unload", func(t *testing.T) {
		_, err := c.RepositoryModelUnload(ctx, &pb.RepositoryModelUnloadRequest{ModelName: "fraud"})
		if status.Code(err) == codes.Unimplemented {
			// A repository without load/unload: both RPCs say so in words.
			wantCode(t, err, codes.Unimplemented, "not supported")
			_, err = c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: "fraud"})
			wantCode(t, err, codes.Unimplemented, "not supported")
			return
		}
		if err != nil {
			t.Fatalf("unload: %v", err)
		}
		if r, _ := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud"}); r.GetReady() {
			t.Fatal("model still ready after unload")
		}
		lr, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: "fraud"})
		if err != nil || !lr.GetIsLoaded() || lr.GetModelName() != "fraud" {
			t.Fatalf("load: %v %v", lr, err)
		}
		if r, _ := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud"}); !r.GetReady() {
			t.Fatal("model not ready after load")
		}
		_, err = c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: "nope"})
		wantCode(t, err, codes.NotFound, "")
	})
}

func TestGRPCCodes(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
	}{
		{&oip.Error{Status: 400, Msg: "x"}, codes.InvalidArgument},
		{model.InvalidInputf("x"), codes.InvalidArgument},
		{&oip.Error{Status: 422, Msg: "x"}, codes.InvalidArgument},
		{fmt.Errorf("get: %w", repository.ErrNotFound), codes.NotFound},
		{repository.ErrNotReady, codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{&oip.Error{Status: http.StatusTooManyRequests, Msg: "x"}, codes.ResourceExhausted},
		{&oip.Error{Status: http.StatusRequestEntityTooLarge, Msg: "x"}, codes.ResourceExhausted},
		{errors.New("boom"), codes.Internal},
	}
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	for _, c := range cases {
		err := s.grpcError(context.Background(), "Test", c.err)
		if got := status.Code(err); got != c.code {
			t.Errorf("%v: code %v, want %v", c.err, got, c.code)
		}
	}
	if msg := status.Convert(s.grpcError(context.Background(), "Test", errors.New("boom"))).Message(); msg != "internal error: boom" {
		t.Errorf("internal error message %q", msg)
	}
}

// TestGRPCRetryAfterTrailer: shed and unready calls tell the client when to retry.
func TestGRPCRetryAfterTrailer(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"broken": {FailLoad: "corrupt"}})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	var trailer metadata.MD
	_, err := c.ModelInfer(context.Background(), inferReq("broken", fp64Input("input", []int64{1, 2}, 1, 0)), grpc.Trailer(&trailer))
	wantCode(t, err, codes.Unavailable, "corrupt")
	if got := trailer.Get("retry-after"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("retry-after trailer %v", got)
	}
}

// --- parity: the same answers over every encoding --------------------------------

// restOutputs decodes an OIP REST response (JSON, or JSON plus binary data).
func restOutputs(t *testing.T, rec *httptest.ResponseRecorder) []*tensor.Tensor {
	t.Helper()
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	headerLen := len(body)
	if h := rec.Header().Get(oip.HeaderContentLength); h != "" {
		headerLen, _ = strconv.Atoi(h)
	}
	var doc struct {
		Outputs []struct {
			Name       string
			Datatype   string
			Shape      []int64
			Data       json.RawMessage
			Parameters struct {
				BinaryDataSize *int `json:"binary_data_size"`
			}
		}
	}
	if err := json.Unmarshal(body[:headerLen], &doc); err != nil {
		t.Fatalf("response JSON: %v: %s", err, body[:headerLen])
	}
	rest := body[headerLen:]
	var out []*tensor.Tensor
	for _, o := range doc.Outputs {
		dt, err := tensor.ParseDatatype(o.Datatype)
		if err != nil {
			t.Fatal(err)
		}
		tt := &tensor.Tensor{Name: o.Name, Datatype: dt, Shape: o.Shape}
		if n := o.Parameters.BinaryDataSize; n != nil {
			if tt.Data, err = oip.DecodeRaw(o.Name, dt, o.Shape, rest[:*n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[*n:]
		} else {
			tt.Data = jsonData(t, dt, o.Data)
		}
		out = append(out, tt)
	}
	if len(rest) != 0 {
		t.Fatalf("%d binary bytes left over", len(rest))
	}
	return out
}

func jsonData(t *testing.T, dt tensor.Datatype, raw json.RawMessage) any {
	var err error
	var v any
	switch dt {
	case tensor.FP64:
		var x []float64
		err, v = json.Unmarshal(raw, &x), x
	case tensor.FP32:
		var x []float32
		err, v = json.Unmarshal(raw, &x), x
	case tensor.Int64:
		var x []int64
		err, v = json.Unmarshal(raw, &x), x
	case tensor.Bool:
		var x []bool
		err, v = json.Unmarshal(raw, &x), x
	default:
		t.Fatalf("parity test does not decode %s from JSON", dt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// grpcOutputs converts a ModelInfer response back to tensors.
func grpcOutputs(t *testing.T, r *pb.ModelInferResponse) []*tensor.Tensor {
	t.Helper()
	var out []*tensor.Tensor
	for i, o := range r.GetOutputs() {
		dt, err := tensor.ParseDatatype(o.GetDatatype())
		if err != nil {
			t.Fatal(err)
		}
		tt := &tensor.Tensor{Name: o.GetName(), Datatype: dt, Shape: o.GetShape()}
		if raw := r.GetRawOutputContents(); len(raw) > 0 {
			if o.GetContents() != nil {
				t.Fatal("response mixes raw and typed outputs")
			}
			if tt.Data, err = oip.DecodeRaw(tt.Name, dt, tt.Shape, raw[i]); err != nil {
				t.Fatal(err)
			}
		} else {
			c := o.GetContents()
			switch dt {
			case tensor.FP64:
				tt.Data = c.GetFp64Contents()
			case tensor.FP32:
				tt.Data = c.GetFp32Contents()
			case tensor.Int64:
				tt.Data = c.GetInt64Contents()
			case tensor.Bool:
				tt.Data = c.GetBoolContents()
			default:
				t.Fatalf("parity test does not decode typed %s", dt)
			}
		}
		out = append(out, tt)
	}
	return out
}

// TestRESTGRPCParity sends the same rows to the same model four ways — REST JSON,
// REST binary tensors, gRPC typed contents, gRPC raw contents — and checks that
// all four answers equal the model's own Predict output, bit for bit.
func TestRESTGRPCParity(t *testing.T) {
	servers := map[string]*Server{
		"formatstest": newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud}),
	}
	repo, err := repository.Open("testdata/fraud_logreg.joblib", repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	sk := New(repo, Options{}, quietLog())
	sk.LoadModels(context.Background())
	servers["fraud_logreg.joblib"] = sk

	batches := [][]float64{
		{0.5, -1.2},
		{1, 0.3, 0.6, 0.6, 0, 0, -3, 3, 1e-7, -1e7},
		{math.MaxFloat64 / 4, 2, -0.25, 1e-300},
	}
	for label, s := range servers {
		name := s.repo.Names()[0]
		v, err := s.repo.Get(name, "")
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := v.Model()
		if err != nil {
			t.Fatal(err)
		}
		c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
		for bi, rows := range batches {
			t.Run(fmt.Sprintf("%s/batch%d", label, bi), func(t *testing.T) {
				shape := []int64{int64(len(rows) / 2), 2}
				want, err := m.Predict(context.Background(), []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: shape, Data: rows}})
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][]*tensor.Tensor{}

				in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: shape, Data: rows}
				jsonBody := `{"inputs":[` + string(oip.AppendTensor(nil, in)) + `]}`
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/"+name+"/infer", strings.NewReader(jsonBody)))
				got["REST JSON"] = restOutputs(t, rec)

				header := fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[%d,2],"parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}`, shape[0], 8*len(rows))
				req := httptest.NewRequest("POST", "/v2/models/"+name+"/infer", bytes.NewReader(append([]byte(header), fp64le(rows...)...)))
				req.Header.Set(oip.HeaderContentLength, strconv.Itoa(len(header)))
				rec = httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				got["REST binary"] = restOutputs(t, rec)

				r, err := c.ModelInfer(context.Background(), inferReq(name, fp64Input("input", shape, rows...)))
				if err != nil {
					t.Fatal(err)
				}
				got["gRPC typed"] = grpcOutputs(t, r)

				r, err = c.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: name,
					Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: shape}},
					RawInputContents: [][]byte{fp64le(rows...)}})
				if err != nil {
					t.Fatal(err)
				}
				if len(r.GetRawOutputContents()) == 0 {
					t.Fatal("raw request got a typed answer")
				}
				got["gRPC raw"] = grpcOutputs(t, r)

				for how, outs := range got {
					if !tensortest.Same(outs, want) {
						t.Errorf("%s differs from Predict:\n got %s\nwant %s", how, tensortest.Dump(outs), tensortest.Dump(want))
					}
				}
			})
		}
	}
}

// --- health, reflection, TLS, drain -------------------------------------------------

func TestGRPCHealth(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "fraud"), 0o755)
	if _, err := formatstest.Write(filepath.Join(root, "fraud"), "model", fraud); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog()) // not loaded yet
	hc := healthpb.NewHealthClient(dialGRPC(t, s))
	ctx := context.Background()
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return r.GetStatus()
	}
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("before loading: %v", got)
	}
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		return r.GetStatus()
	}
	if got := recv(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch, before loading: %v", got)
	}
	s.LoadModels(ctx)
	for _, svc := range []string{"", "inference.GRPCInferenceService"} {
		if got := check(svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("loaded, %q: %v", svc, got)
		}
	}
	if got := recv(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch, loaded: %v", got)
	}
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "other.Service"})
	wantCode(t, err, codes.NotFound, "unknown service")

	s.draining.Store(true)
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("draining: %v", got)
	}
	if got := recv(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch, draining: %v", got)
	}
	if _, err := watch.Recv(); err != io.EOF {
		t.Fatalf("watch did not end while draining: %v", err)
	}
}

// TestGRPCReflection lists services and fetches the OIP schema with the standard
// reflection client, as grpcurl does.
func TestGRPCReflection(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	rc := reflectionpb.NewServerReflectionClient(dialGRPC(t, s))
	stream, err := rc.ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := r.GetErrorResponse(); e != nil {
			t.Fatalf("reflection error: %v", e)
		}
		return r
	}
	r := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var services []string
	for _, sv := range r.GetListServicesResponse().GetService() {
		services = append(services, sv.GetName())
	}
	for _, want := range []string{"inference.GRPCInferenceService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(services, " "), want) {
			t.Errorf("services %v lack %s", services, want)
		}
	}

	r = ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "inference.GRPCInferenceService"}})
	files := r.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) == 0 {
		t.Fatal("no file descriptor")
	}
	fd := &descriptorpb.FileDescriptorProto{}
	if err := proto.Unmarshal(files[0], fd); err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range fd.GetService()[0].GetMethod() {
		methods = append(methods, m.GetName())
	}
	want := []string{"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
		"RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"}
	if !reflect.DeepEqual(methods, want) {
		t.Fatalf("methods %v, want %v", methods, want)
	}
	// Field numbers are the protocol: spot-check the ones clients depend on most.
	fields := map[string]int32{}
	for _, msg := range fd.GetMessageType() {
		for _, f := range msg.GetField() {
			fields[msg.GetName()+"."+f.GetName()] = f.GetNumber()
		}
	}
	for name, num := range map[string]int32{
		"ModelInferRequest.model_name": 1, "ModelInferRequest.inputs": 5, "ModelInferRequest.outputs": 6,
		"ModelInferRequest.raw_input_contents": 7, "ModelInferResponse.outputs": 5, "ModelInferResponse.raw_output_contents": 6,
		"InferTensorContents.fp32_contents": 6, "InferTensorContents.bytes_contents": 8, "InferParameter.string_param": 3,
	} {
		if fields[name] != num {
			t.Errorf("%s is field %d, want %d", name, fields[name], num)
		}
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and returns the
// files and a pool that trusts it.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert := writeCertPair(t, certFile, keyFile, 1)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// writeCertPair writes a self-signed certificate with the given serial number and
// its key to the two files.
func writeCertPair(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "tide-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertificateReload: a rotated certificate is served from the next check on;
// a broken rotation keeps the previous certificate.
func TestCertificateReload(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t)
	r := &certReloader{certFile: certFile, keyFile: keyFile, interval: 0, log: quietLog()}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		c, err := r.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	touch := func(at time.Time) {
		os.Chtimes(certFile, at, at)
		os.Chtimes(keyFile, at, at)
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writeCertPair(t, certFile, keyFile, 2)
	touch(time.Now().Add(time.Minute))
	if got := serial(); got != 2 {
		t.Fatalf("after rotation: serial %d, want 2", got)
	}
	os.WriteFile(keyFile, []byte("half-written"), 0o600)
	touch(time.Now().Add(2 * time.Minute))
	if got := serial(); got != 2 {
		t.Fatalf("after a broken rotation: serial %d, want the previous 2", got)
	}
}

// TestServeTLS runs Serve with a certificate: gRPC and HTTP both speak TLS, and a
// plaintext gRPC client is refused.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t)
	s := newTestServer(t, Options{GRPCAddr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile},
		map[string]formatstest.Spec{"fraud": fraud})
	httpAddr := serveInBackground(t, s)
	addr := waitGRPCAddr(t, s)
	ctx := t.Context()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if r, err := pb.NewGRPCInferenceServiceClient(conn).ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Fatalf("gRPC over TLS: %v %v", r, err)
	}

	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := pb.NewGRPCInferenceServiceClient(plain).ServerLive(short, &pb.ServerLiveRequest{}); err == nil {
		t.Fatal("plaintext gRPC client was served by a TLS server")
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + httpAddr + "/v2/health/live")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTPS live: %d", resp.StatusCode)
	}
}

func TestTLSOptionErrors(t *testing.T) {
	certFile, _, _ := writeTestCert(t)
	cases := []struct {
		cert, key, err string
	}{
		{certFile, "", "needs both a certificate and a key"},
		{"", certFile, "needs both a certificate and a key"},
		{certFile, filepath.Join(t.TempDir(), "missing.key"), "load TLS certificate"},
	}
	for _, c := range cases {
		s := newTestServer(t, Options{GRPCAddr: "127.0.0.1:0", TLSCertFile: c.cert, TLSKeyFile: c.key}, map[string]formatstest.Spec{"fraud": fraud})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		err = s.Serve(context.Background(), ln)
		ln.Close()
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("cert %q key %q: Serve returned %v, want %q", c.cert, c.key, err, c.err)
		}
	}
}

// serveInBackground runs s.Serve on a fresh loopback listener until the test
// ends, then stops it and fails the test unless Serve returned nil. It returns
// the HTTP address.
func serveInBackground(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func waitGRPCAddr(t *testing.T, s *Server) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if a := s.GRPCAddr(); a != "" && s.IsReady() {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("gRPC server never started")
	return ""
}

// TestGRPCDrain: on stop, gRPC health turns NOT_SERVING at once, a call in flight
// finishes, new connections are refused after the drain, and Serve returns nil.
func TestGRPCDrain(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 700}
	s := newTestServer(t, Options{GRPCAddr: "127.0.0.1:0", DrainDelay: 300 * time.Millisecond, DrainTimeout: 5 * time.Second},
		map[string]formatstest.Spec{"slow": slow})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	addr := waitGRPCAddr(t, s)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	hc := healthpb.NewHealthClient(conn)

	inflight := make(chan error, 1)
	go func() {
		r, err := c.ModelInfer(context.Background(), inferReq("slow", fp64Input("input", []int64{1, 2}, 1, 0)))
		if err == nil && r.GetOutputs()[0].GetContents().GetInt64Contents()[0] != 1 {
			err = fmt.Errorf("wrong answer %v", r)
		}
		inflight <- err
	}()
	time.Sleep(150 * time.Millisecond)
	stop()
	time.Sleep(50 * time.Millisecond)
	r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health during drain delay: %v %v", r, err)
	}
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight call: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v after a clean drain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	fresh, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := pb.NewGRPCInferenceServiceClient(fresh).ServerLive(short, &pb.ServerLiveRequest{}); err == nil {
		t.Fatal("gRPC still serving after drain")
	}
}

func TestGRPCDrainTimeout(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 3000}
	s := newTestServer(t, Options{GRPCAddr: "127.0.0.1:0", DrainTimeout: 200 * time.Millisecond}, map[string]formatstest.Spec{"slow": slow})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	conn, err := grpc.NewClient(waitGRPCAddr(t, s), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go pb.NewGRPCInferenceServiceClient(conn).ModelInfer(context.Background(), inferReq("slow", fp64Input("input", []int64{1, 2}, 1, 0)))
	time.Sleep(150 * time.Millisecond)
	stop()
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "gRPC calls still running") {
			t.Fatalf("Serve returned %v, want a gRPC drain timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not give up after the drain timeout")
	}
}

func TestGRPCMetrics(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	for i := 0; i < 2; i++ {
		if _, err := c.ModelInfer(context.Background(), inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0))); err != nil {
			t.Fatal(err)
		}
	}
	c.ModelInfer(context.Background(), inferReq("fraud", fp64Input("x", []int64{1, 2}, 1, 0)))
	c.ModelInfer(context.Background(), inferReq("made-up", fp64Input("x", []int64{1, 2}, 1, 0)))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`tide_requests_total{code="200",model="fraud",protocol="oip-grpc"} 2`,
		`tide_requests_total{code="422",model="fraud",protocol="oip-grpc"} 1`,
		`tide_requests_total{code="404",model="",protocol="oip-grpc"} 1`,
		`tide_request_duration_seconds_count{model="fraud",protocol="oip-grpc"} 3`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// --- conversion -----------------------------------------------------------------

// BenchmarkGRPCInfer is one ModelInfer call over a real loopback connection (client
// and server in this process), typed and raw, on the tutorial's logistic regression.
// BenchmarkRESTInferLoopback is the same request over HTTP/1.1 on loopback, for a
// like-for-like comparison.
func BenchmarkGRPCInfer(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(b, s))
	reqs := map[string]*pb.ModelInferRequest{
		"typed": inferReq("fraud_logreg", fp64Input("input", []int64{1, 2}, 0.5, -1.2)),
		"raw": {ModelName: "fraud_logreg", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}}},
			RawInputContents: [][]byte{fp64le(0.5, -1.2)}},
	}
	for _, name := range []string{"typed", "raw"} {
		req := reqs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := c.ModelInfer(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRESTInferLoopback(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	srv := httptest.NewServer(s)
	defer srv.Close()
	body := []byte(`{"id":"1","inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0.5,-1.2]}]}`)
	url := srv.URL + "/v2/models/fraud_logreg/infer"
	client := srv.Client()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

// TestGRPCOverloadAndDeadline: admission control speaks gRPC too. With one run slot
// and one queue place busy, a third call is shed with RESOURCE_EXHAUSTED and a
// retry-after trailer; a queued call whose gRPC deadline passes ends with
// DEADLINE_EXCEEDED and is counted as expired, without running.
func TestGRPCOverloadAndDeadline(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 700}
	s := newTestServer(t, Options{Admission: serving.Admission{MaxInFlight: 1, MaxQueue: 1}}, map[string]formatstest.Spec{"slow": slow})
	t.Cleanup(s.repo.Close)
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	req := inferReq("slow", fp64Input("input", []int64{1, 2}, 1, 0))

	running := make(chan error, 1)
	go func() { _, err := c.ModelInfer(context.Background(), req); running <- err }()
	time.Sleep(150 * time.Millisecond)
	queued := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := c.ModelInfer(ctx, req)
		queued <- err
	}()
	time.Sleep(100 * time.Millisecond)

	var trailer metadata.MD
	_, err := c.ModelInfer(context.Background(), req, grpc.Trailer(&trailer))
	wantCode(t, err, codes.ResourceExhausted, "overloaded")
	if got := trailer.Get("retry-after"); len(got) != 1 {
		t.Errorf("shed call without retry-after: %v", trailer)
	}
	if err := <-queued; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("queued call past its deadline: %v", err)
	}
	if err := <-running; err != nil {
		t.Fatalf("running call: %v", err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`tide_shed_requests_total{model="slow"} 1`, `tide_expired_requests_total{model="slow"} 1`,
		`tide_requests_total{code="429",model="slow",protocol="oip-grpc"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestGRPCRepositoryAPIOff(t *testing.T) {
	s := newTestServer(t, Options{DisableRepositoryAPI: true}, map[string]formatstest.Spec{"fraud": fraud})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	ctx := context.Background()
	_, err := c.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
	wantCode(t, err, codes.Unimplemented, "--disable-repository-api")
	_, err = c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: "fraud"})
	wantCode(t, err, codes.Unimplemented, "--disable-repository-api")
	_, err = c.RepositoryModelUnload(ctx, &pb.RepositoryModelUnloadRequest{ModelName: "fraud"})
	wantCode(t, err, codes.Unimplemented, "--disable-repository-api")
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud"}); err != nil || !r.GetReady() {
		t.Fatalf("model RPCs stay on: %v %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || len(r.GetExtensions()) != 0 {
		t.Fatalf("server metadata still advertises the repository extension: %v %v", r, err)
	}
}

// BenchmarkInferConcurrent drives 16 callers per CPU at once over one loopback connection
// (gRPC) and a keep-alive pool (REST), for throughput rather than latency.
func BenchmarkInferConcurrent(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(b, s))
	greq := &pb.ModelInferRequest{ModelName: "fraud_logreg", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}}},
		RawInputContents: [][]byte{fp64le(0.5, -1.2)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	body := []byte(`{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0.5,-1.2]}]}`)
	url := srv.URL + "/v2/models/fraud_logreg/infer"
	b.Run("grpc-raw", func(b *testing.B) {
		b.SetParallelism(16) // 16 × GOMAXPROCS callers
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.ModelInfer(context.Background(), greq); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("rest-json", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
}

// TestGRPCMalformedMessageIsInvalidArgument: bytes that are not a ModelInferRequest
// are the caller's mistake (INVALID_ARGUMENT, as malformed JSON is 400 over REST),
// not the server's (INTERNAL); the next well-formed call is answered as usual.
func TestGRPCMalformedMessageIsInvalidArgument(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	conn := dialGRPC(t, s)
	good, err := proto.Marshal(inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"garbage":        []byte("\xff\xff\xff\xff not protobuf"),
		"truncated":      good[:len(good)-3],
		"bad field tag":  {0x00, 0x01},
		"huge length":    {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"invalid string": {0x0a, 0x02, 0xc3, 0x28}, // model_name, not UTF-8
	} {
		t.Run(name, func(t *testing.T) {
			err := conn.Invoke(t.Context(), pb.GRPCInferenceService_ModelInfer_FullMethodName, &servertest.RawMsg{B: b}, &servertest.RawMsg{}, grpc.ForceCodecV2(servertest.RawCodec{}))
			wantCode(t, err, codes.InvalidArgument, "malformed request message")
		})
	}
	c := pb.NewGRPCInferenceServiceClient(conn)
	if _, err := c.ModelInfer(t.Context(), inferReq("fraud", fp64Input("input", []int64{1, 2}, 1, 0))); err != nil {
		t.Fatalf("a well-formed call after the malformed ones: %v", err)
	}
}

// The one unary interceptor recovers a panicking handler into Internal, and
// runs the key check before the handler.
func TestGRPCUnaryInterceptor(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	intercept := s.grpcUnary(newLenientCodec(), s.newGRPCAuth())
	info := &grpc.UnaryServerInfo{FullMethod: "/inference.GRPCInferenceService/ModelInfer"}
	stream := &headerStream{}
	_, err := intercept(grpc.NewContextWithServerTransportStream(context.Background(), stream), &pb.ModelInferRequest{}, info, func(context.Context, any) (any, error) {
		panic("model bug")
	})
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "model bug") {
		t.Fatalf("a panicking handler: %v, want Internal without the panic's text", err)
	}
	if got := stream.sent.Get(grpcMetadataRequestID); len(got) != 1 || len(got[0]) != 16 {
		t.Fatalf("a panicking handler's answer: request id header %q sent, want a new 16-digit id", got)
	}
	resp, err := intercept(context.Background(), &pb.ModelInferRequest{}, info, func(context.Context, any) (any, error) {
		return "answered", nil
	})
	if err != nil || resp != "answered" {
		t.Fatalf("a handler that answers: %v %v", resp, err)
	}
}

// TestGRPCDrainKeepsListeningWhileClientsArrive: a new gRPC connection while
// draining is a client the route still sends here, as a new HTTP request is.
func TestGRPCDrainKeepsListeningWhileClientsArrive(t *testing.T) {
	s := newTestServer(t, Options{GRPCAddr: "127.0.0.1:0", DrainDelay: 100 * time.Millisecond, DrainQuiet: 600 * time.Millisecond, DrainTimeout: 20 * time.Second},
		map[string]formatstest.Spec{"m": {Weights: []float64{1, -1}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	addr := waitGRPCAddr(t, s)
	done := make(chan struct{})
	failures := every(50*time.Millisecond, done, func() error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		call, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = pb.NewGRPCInferenceServiceClient(conn).ServerLive(call, &pb.ServerLiveRequest{})
		return err
	})
	time.Sleep(100 * time.Millisecond)
	stop()
	listensWhileClientsArrive(t, served, done, failures, "gRPC calls")
}

// TestGRPCInferAllocations pins what the server's own code allocates for one
// ModelInfer call (decoding, the interceptor, the handler, the model and the
// response's encoding), without the transport's and the client's share, which
// are gRPC's.
func TestGRPCInferAllocations(t *testing.T) {
	s := benchServer(t, "fraud_logreg.joblib")
	codec := newLenientCodec()
	intercept := s.grpcUnary(codec, s.newGRPCAuth())
	svc := newInferenceService(s)
	req, err := proto.Marshal(inferReq("fraud_logreg", fp64Input("input", []int64{1, 2}, 0.5, -1.2)))
	if err != nil {
		t.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(req)}
	dec := func(v any) error { return codec.Unmarshal(data, v) }
	stream := &headerStream{}
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), stream)
	var answer []byte
	allocs := testing.AllocsPerRun(500, func() {
		resp, err := svc.handleModelInfer(ctx, dec, intercept)
		if err != nil {
			t.Fatal(err)
		}
		out, err := codec.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		answer = append(answer[:0], out[0].ReadOnlyData()...)
		out.Free()
	})
	if got := stream.sent.Get(grpcMetadataRequestID); len(got) != 1 || len(got[0]) != 16 || stream.set != nil {
		t.Fatalf("request id header %q sent (%q set), want one new 16-digit id sent", got, stream.set)
	}
	var resp pb.ModelInferResponse
	if err := proto.Unmarshal(answer, &resp); err != nil || len(resp.Outputs) != 2 || resp.ModelName != "fraud_logreg" || len(resp.Id) != 16 {
		t.Fatalf("answer %v (%v)", &resp, err)
	}
	if allocs > 4 && !raceDetector {
		t.Errorf("a gRPC ModelInfer call allocates %.1f objects in the server's code, want at most 4 (its context, the header map and the answer)", allocs)
	}
}

// headerStream is the server transport stream of a call made without a
// transport: it keeps the header metadata it is given, set and sent apart.
type headerStream struct{ set, sent metadata.MD }

func (s *headerStream) Method() string                  { return pb.GRPCInferenceService_ModelInfer_FullMethodName }
func (s *headerStream) SetHeader(md metadata.MD) error  { s.set = md; return nil }
func (s *headerStream) SendHeader(md metadata.MD) error { s.sent = md; return nil }
func (s *headerStream) SetTrailer(metadata.MD) error    { return nil }

// The codec's Marshal writes the same bytes as proto.Marshal, whether the
// message is empty, small, or over a pooled buffer's size, and refuses what is
// not a message.
func TestLenientCodecMarshal(t *testing.T) {
	c := newLenientCodec()
	for _, n := range []int{0, 2, 1000, 300_000} {
		m := &pb.ModelInferResponse{}
		if n > 0 {
			m = &pb.ModelInferResponse{ModelName: "m", Id: "0123456789abcdef", Outputs: []*pb.ModelInferResponse_InferOutputTensor{
				{Name: "y", Datatype: "FP64", Shape: []int64{int64(n)}, Contents: &pb.InferTensorContents{Fp64Contents: make([]float64, n)}}}}
		}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("%d elements: %v", n, err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Errorf("%d elements: %d bytes, want the %d of proto.Marshal", n, len(got), len(want))
		}
		data.Free()
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("a string marshalled without an error")
	}
}
