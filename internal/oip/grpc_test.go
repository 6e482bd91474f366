package oip

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tensor/tensortest"
)

// sameAsREST checks the property the conversion exists for: the server decodes
// the gRPC request into the very tensors it decodes the JSON body into over REST.
func sameAsREST(t *testing.T, body string, req *pb.ModelInferRequest) {
	t.Helper()
	rest, err := DecodeInferRequest([]byte(body))
	if err != nil {
		t.Fatalf("REST decode: %v", err)
	}
	grpcIn, err := InferInputsFromProto(req)
	if err != nil {
		t.Fatalf("the server refuses the converted request: %v\n%v", err, req)
	}
	if a, b := tensortest.Dump(rest.Inputs), tensortest.Dump(grpcIn); a != b {
		t.Fatalf("REST and gRPC tensors differ:\nREST %s\ngRPC %s", a, b)
	}
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

// TestProtoTensorRoundTrip converts tensors of every datatype to a response, back
// to a request, and back to tensors, typed and raw.
func TestProtoTensorRoundTrip(t *testing.T) {
	ts := []*tensor.Tensor{
		{Name: "b", Datatype: tensor.Bool, Shape: []int64{2}, Data: []bool{true, false}},
		{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{2}, Data: []uint8{0, 255}},
		{Name: "u16", Datatype: tensor.Uint16, Shape: []int64{1}, Data: []uint16{65535}},
		{Name: "u32", Datatype: tensor.Uint32, Shape: []int64{1}, Data: []uint32{math.MaxUint32}},
		{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}},
		{Name: "i8", Datatype: tensor.Int8, Shape: []int64{2}, Data: []int8{-128, 127}},
		{Name: "i16", Datatype: tensor.Int16, Shape: []int64{1}, Data: []int16{-32768}},
		{Name: "i32", Datatype: tensor.Int32, Shape: []int64{1}, Data: []int32{math.MinInt32}},
		{Name: "i64", Datatype: tensor.Int64, Shape: []int64{1, 1}, Data: []int64{math.MaxInt64}},
		{Name: "f32", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{0.1, -3}},
		{Name: "f64", Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{math.Pi}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("x"), {}}},
		{Name: "z", Datatype: tensor.FP32, Shape: []int64{0, 3}, Data: []float32{}},
	}
	withHalf := append(append([]*tensor.Tensor{}, ts...), &tensor.Tensor{Name: "h", Datatype: tensor.FP16, Shape: []int64{1}, Data: []uint16{0x3c00}})
	cases := []struct {
		name    string
		outs    []*tensor.Tensor
		raw     bool
		wantRaw bool
	}{
		{"typed", ts, false, false},
		{"raw", ts, true, true},
		{"FP16 forces raw", withHalf, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, raw := InferOutputsToProto(c.outs, c.raw)
			if (len(raw) > 0) != c.wantRaw {
				t.Fatalf("raw contents: %d entries, want raw %v", len(raw), c.wantRaw)
			}
			req := &pb.ModelInferRequest{RawInputContents: raw}
			for _, o := range outs {
				req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape, Contents: o.Contents})
			}
			// Through the wire format, as a client would send it.
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			req = &pb.ModelInferRequest{}
			if err := proto.Unmarshal(b, req); err != nil {
				t.Fatal(err)
			}
			back, err := InferInputsFromProto(req)
			if err != nil {
				t.Fatal(err)
			}
			if !tensortest.Same(back, c.outs) {
				t.Fatalf("round trip:\n got %s\nwant %s", tensortest.Dump(back), tensortest.Dump(c.outs))
			}
			for _, tt := range back {
				if err := tt.Validate(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// FuzzInferInputsFromProto decodes arbitrary bytes as a ModelInferRequest and
// converts it. The conversion must not panic; what it accepts must be valid tensors
// that survive the trip back through a response unchanged.
func FuzzInferInputsFromProto(f *testing.F) {
	seeds := []*pb.ModelInferRequest{
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 0}}}}},
		{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}}}, RawInputContents: [][]byte{make([]byte, 8)}},
		{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "s", Datatype: "BYTES", Shape: []int64{1}}}, RawInputContents: [][]byte{{1, 0, 0, 0, 'a'}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "i", Datatype: "INT8", Shape: []int64{2}, Contents: &pb.InferTensorContents{IntContents: []int32{-1, 5}}}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "u", Datatype: "UINT16", Shape: []int64{1}, Contents: &pb.InferTensorContents{UintContents: []uint32{7}}}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "b", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), nil}}}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &pb.ModelInferRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		ins, err := InferInputsFromProto(req)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || (pe.Status != http.StatusBadRequest && pe.Status != http.StatusUnprocessableEntity) {
				t.Fatalf("error is not the caller's: %v", err)
			}
			return
		}
		for _, in := range ins {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
		}
		for _, raw := range []bool{false, true} {
			outs, rawOut := InferOutputsToProto(ins, raw)
			again := &pb.ModelInferRequest{RawInputContents: rawOut}
			for _, o := range outs {
				again.Inputs = append(again.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape, Contents: o.Contents})
			}
			back, err := InferInputsFromProto(again)
			if err != nil {
				t.Fatalf("re-converting (raw %v): %v", raw, err)
			}
			if !tensortest.Same(back, ins) {
				t.Fatalf("round trip (raw %v) changed the tensors:\n got %s\nwant %s", raw, tensortest.Dump(back), tensortest.Dump(ins))
			}
		}
	})
}

// --- benchmarks -------------------------------------------------------------------
