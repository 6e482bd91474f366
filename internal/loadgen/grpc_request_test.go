package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/server"
	"github.com/tideserve/tide/internal/tensor"
)

// sameAsREST checks the property the conversion exists for: the server decodes
// the gRPC request into the very tensors it decodes the JSON body into over REST.
func sameAsREST(t *testing.T, body string, req *pb.ModelInferRequest) {
	t.Helper()
	rest, err := oip.DecodeInferRequest([]byte(body))
	if err != nil {
		t.Fatalf("REST decode: %v", err)
	}
	grpcIn, err := server.InferInputsFromProto(req)
	if err != nil {
		t.Fatalf("the server refuses the converted request: %v\n%v", err, req)
	}
	if a, b := dumpTensors(rest.Inputs), dumpTensors(grpcIn); a != b {
		t.Fatalf("REST and gRPC tensors differ:\nREST %s\ngRPC %s", a, b)
	}
}

func dumpTensors(ts []*tensor.Tensor) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s %s %v %v; ", t.Name, t.Datatype, t.Shape, t.Data)
	}
	return b.String()
}

func TestInferRequestFromJSON(t *testing.T) {
	tests := []struct {
		name, body string
		raw        bool
		check      func(t *testing.T, r *pb.ModelInferRequest)
	}{
		{name: "FP64 typed", body: `{"id":"r1","inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4.5]]}],"outputs":[{"name":"predict"}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				want := &pb.ModelInferRequest{ModelName: "m", ModelVersion: "2", Id: "r1",
					Inputs:  []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{2, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2, 3, 4.5}}}},
					Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "predict"}}}
				if !proto.Equal(r, want) {
					t.Errorf("got %v\nwant %v", r, want)
				}
			}},
		{name: "FP64 raw", raw: true, body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0,3]}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				if len(r.RawInputContents) != 1 || len(r.RawInputContents[0]) != 16 || r.Inputs[0].Contents != nil {
					t.Errorf("got %v", r)
				}
			}},
		{name: "small ints widen", body: `{"inputs":[{"name":"a","shape":[3],"datatype":"INT8","data":[-128,0,127]},{"name":"b","shape":[2],"datatype":"UINT16","data":[0,65535]},{"name":"c","shape":[1],"datatype":"BOOL","data":[true]}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				if fmt.Sprint(r.Inputs[0].Contents.IntContents, r.Inputs[1].Contents.UintContents, r.Inputs[2].Contents.BoolContents) != "[-128 0 127] [0 65535] [true]" {
					t.Errorf("got %v", r)
				}
			}},
		{name: "FP16 turns the request raw", body: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP16","data":[1.5]},{"name":"b","shape":[1],"datatype":"INT64","data":[7]}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				if len(r.RawInputContents) != 2 || r.Inputs[1].Contents != nil {
					t.Errorf("got %v", r)
				}
			}},
		{name: "BYTES", body: `{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["hi","there"]}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				if fmt.Sprintf("%s", r.Inputs[0].Contents.BytesContents) != "[hi there]" {
					t.Errorf("got %v", r)
				}
			}},
		{name: "parameters", body: `{"parameters":{"a":true,"b":3,"c":"x"},"inputs":[{"name":"s","shape":[1],"datatype":"FP32","data":[1]}]}`,
			check: func(t *testing.T, r *pb.ModelInferRequest) {
				p := r.Parameters
				if !p["a"].GetBoolParam() || p["b"].GetInt64Param() != 3 || p["c"].GetStringParam() != "x" {
					t.Errorf("got %v", p)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := InferRequestFromJSON([]byte(tt.body), "m", "2", tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			sameAsREST(t, tt.body, r)
		})
	}
}

func TestInferRequestFromJSONErrors(t *testing.T) {
	for body, want := range map[string]string{
		`feature1=1`:    "expected an object",
		`{"inputs":[]}`: "no inputs",
		`{"parameters":{"t":0.5},"inputs":[{"name":"s","shape":[1],"datatype":"FP32","data":[1]}]}`: "not a 64-bit integer",
		`{"parameters":{"t":[1]},"inputs":[{"name":"s","shape":[1],"datatype":"FP32","data":[1]}]}`: "booleans, integers or strings",
		`{"inputs":[{"name":"s","shape":[2],"datatype":"FP32","data":[1]}]}`:                        "shape",
	} {
		_, err := InferRequestFromJSON([]byte(body), "m", "", false)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line containing %q", body, err, want)
		}
	}
}

// TestGRPCRequestsFromTemplates: the generated template for a model becomes a
// fresh request per call, and a static body one request for every call.
func TestGRPCRequestsFromTemplates(t *testing.T) {
	md := &ModelMetadata{Name: "fraud", Inputs: []TensorMeta{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 3}}}}
	src, err := TemplateFor(ProtocolGRPC, md, 2)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{Protocol: ProtocolGRPC, Model: "fraud"}
	g, err := newGRPCRequests(tpl, tg, false)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	a, _ := g.next(rng, 0)
	b, _ := g.next(rng, 1)
	if a.ModelName != "fraud" || fmt.Sprint(a.Inputs[0].Shape) != "[2 3]" || len(a.Inputs[0].Contents.Fp32Contents) != 6 || proto.Equal(a, b) {
		t.Errorf("generated requests %v and %v", a, b)
	}
	s, err := newGRPCRequests(StaticBody(`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`), tg, true)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := s.next(rng, 0); x != s.fixed || len(x.RawInputContents) != 1 {
		t.Errorf("static body: %v", x)
	}
	if _, err := newGRPCRequests(nil, tg, false); err == nil {
		t.Error("no body: no error")
	}
}

// FuzzInferRequestFromJSON: whatever body the REST decoder accepts converts to
// a gRPC request that the server decodes into the same tensors, typed or raw;
// anything else is one error.
func FuzzInferRequestFromJSON(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`,
		`{"id":"x","parameters":{"a":1},"inputs":[{"name":"a","shape":[2],"datatype":"UINT8","data":[0,255]}],"outputs":[{"name":"o"}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"BF16","data":[1]},{"name":"b","shape":[1],"datatype":"BYTES","data":["x"]}]}`,
		`{"inputs":[{"name":"a","shape":[0],"datatype":"INT16","data":[]}]}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, raw bool) {
		r, err := InferRequestFromJSON([]byte(body), "m", "", raw)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(body, "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back pb.ModelInferRequest
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		sameAsREST(t, body, &back)
	})
}

// BenchmarkGRPCRequest is the generator's cost per gRPC call against that of
// rendering the same OIP JSON body for REST: the conversion is the difference.
func BenchmarkGRPCRequest(b *testing.B) {
	md := &ModelMetadata{Name: "fraud", Inputs: []TensorMeta{{Name: "input", Datatype: "FP64", Shape: []int64{-1, 2}}}}
	for _, rows := range []int{1, 100} {
		src, _ := TemplateFor(ProtocolGRPC, md, rows)
		tpl, _ := ParseTemplate(src)
		rng := rand.New(rand.NewPCG(1, 2))
		b.Run(fmt.Sprintf("rows=%d/REST render", rows), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tpl.Render(nil, rng, uint64(i))
			}
		})
		b.Run(fmt.Sprintf("rows=%d/gRPC render+convert", rows), func(b *testing.B) {
			g, err := newGRPCRequests(tpl, Target{Protocol: ProtocolGRPC, Model: "fraud"}, false)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := g.next(rng, uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
