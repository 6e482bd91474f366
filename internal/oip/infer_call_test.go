package oip

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tensor/tensortest"
)

// inferCallSeeds are requests in the shapes clients send, each marshalled by
// protobuf, and then byte strings protobuf writes differently or not at all:
// unpacked lists, repeated fields, parameters, unknown fields, bad UTF-8,
// wrong wire types and cut-off messages.
func inferCallSeeds(t testing.TB) [][]byte {
	msgs := []*pb.ModelInferRequest{
		{ModelName: "m", Id: "r1", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{0.5, math.NaN()}}}}},
		{ModelName: "m", ModelVersion: "2", Inputs: []*pb.ModelInferRequest_InferInputTensor{
			{Name: "a", Datatype: "FP32", Shape: []int64{2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, -2}}},
			{Name: "b", Datatype: "INT8", Shape: []int64{3}, Contents: &pb.InferTensorContents{IntContents: []int32{-1, 5, -128}}},
			{Name: "c", Datatype: "UINT64", Shape: []int64{1}, Contents: &pb.InferTensorContents{Uint64Contents: []uint64{math.MaxUint64}}},
			{Name: "d", Datatype: "BOOL", Shape: []int64{2}, Contents: &pb.InferTensorContents{BoolContents: []bool{true, false}}},
			{Name: "e", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("x"), {}}}},
			{Name: "f", Datatype: "INT64", Shape: []int64{1}, Contents: &pb.InferTensorContents{Int64Contents: []int64{-7}}},
			{Name: "g", Datatype: "UINT16", Shape: []int64{1}, Contents: &pb.InferTensorContents{UintContents: []uint32{65535}}},
			{Name: "h", Datatype: "FP64", Shape: []int64{0}, Contents: &pb.InferTensorContents{}},
		}, Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "y"}, {}}},
		{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}}, {Name: "s", Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{make([]byte, 8), {1, 0, 0, 0, 'a'}}},
		{ModelName: "m", Parameters: map[string]*pb.InferParameter{"k": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 3}}},
			Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1}}}}},
		{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Parameters: map[string]*pb.InferParameter{"p": {}}}}},
		{Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "y", Parameters: map[string]*pb.InferParameter{"p": {}}}}},
		{},
	}
	var seeds [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	field := func(num protowire.Number, v []byte) []byte {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	// Contents written unpacked, one element per field, and a second contents
	// field, which protobuf merges into the first.
	var unpacked []byte
	unpacked = protowire.AppendTag(unpacked, 7, protowire.Fixed64Type)
	unpacked = protowire.AppendFixed64(unpacked, math.Float64bits(2.5))
	unpacked = protowire.AppendTag(unpacked, 6, protowire.Fixed32Type)
	unpacked = protowire.AppendFixed32(unpacked, math.Float32bits(-1))
	for num := protowire.Number(1); num <= 5; num++ {
		unpacked = protowire.AppendTag(unpacked, num, protowire.VarintType)
		unpacked = protowire.AppendVarint(unpacked, 1<<40+1)
	}
	var shape []byte
	shape = protowire.AppendTag(shape, 3, protowire.VarintType)
	shape = protowire.AppendVarint(shape, 2)
	input := cat(field(1, []byte("in")), field(2, []byte("FP64")), shape, field(3, []byte{1}),
		field(5, unpacked), field(5, field(7, make([]byte, 8))), field(1, []byte("last name wins")))
	seeds = append(seeds,
		cat(field(1, []byte("a")), field(1, []byte("b")), field(5, input), field(5, input), field(7, nil), field(6, nil)),
		field(1, []byte{0xff, 0xfe}),                                                 // not UTF-8
		field(5, field(1, []byte{0xc0})),                                             // not UTF-8 in an input's name
		cat(field(1, []byte("m")), field(99, nil)),                                   // an unknown field
		protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3), // a wrong wire type
		field(5, field(5, field(7, make([]byte, 7)))),                                // a packed list cut short
		field(5, field(5, field(6, []byte{1, 2, 3}))),
		field(5, field(5, field(2, []byte{0x80}))), // a varint cut short
		seeds[0][:len(seeds[0])-3],                 // a message cut short
		[]byte{0},                                  // field number 0
	)
	return seeds
}

// TestInferCallDecodesAsProtobuf: every seed decodes to the message (or the
// failure) proto.Unmarshal gives, into a fresh call and into one that decoded
// every other seed before it.
func TestInferCallDecodesAsProtobuf(t *testing.T) {
	seeds := inferCallSeeds(t)
	var reused InferCall
	for _, first := range seeds {
		for i, b := range seeds {
			_ = reused.Unmarshal(first)
			sameAsProtobuf(t, &reused, b, fmt.Sprintf("seed %d after %x", i, first))
			var fresh InferCall
			sameAsProtobuf(t, &fresh, b, fmt.Sprintf("seed %d", i))
		}
	}
}

// sameAsProtobuf decodes b into c and checks the request, and the tensors
// made of it, against proto.Unmarshal's and InferInputsFromProto's.
func sameAsProtobuf(t *testing.T, c *InferCall, b []byte, what string) {
	t.Helper()
	var want pb.ModelInferRequest
	wantErr := proto.Unmarshal(b, &want)
	err := c.Unmarshal(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, protobuf's %v", what, err, wantErr)
	}
	if err != nil {
		return
	}
	if !proto.Equal(&c.Request, &want) {
		t.Fatalf("%s: decoded\n%v\nprotobuf decodes\n%v", what, &c.Request, &want)
	}
	got, err := c.Inputs()
	exp, wantErr := InferInputsFromProto(&want)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%s: converting: %v, from protobuf's message %v", what, err, wantErr)
	}
	if err == nil && !tensortest.Same(got, exp) {
		t.Fatalf("%s: tensors\n%s\nfrom protobuf's message\n%s", what, tensortest.Dump(got), tensortest.Dump(exp))
	}
}

// FuzzInferCallUnmarshal: whatever the bytes, the call decodes them as
// protobuf does, the first time and again into its own memory.
func FuzzInferCallUnmarshal(f *testing.F) {
	seeds := inferCallSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c InferCall
		_ = c.Unmarshal(seeds[1]) // every kind of contents, and two requested outputs
		sameAsProtobuf(t, &c, b, "after a request")
		sameAsProtobuf(t, &c, b, "again")
	})
}

// TestInferCallReusesItsMemory: once a call has answered a request, the same
// request again allocates nothing: not to decode it, not for its tensors
// (their data in an interface is the last call's), not for its answer.
func TestInferCallReusesItsMemory(t *testing.T) {
	req := &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "input", Datatype: "FP64", Shape: []int64{4, 2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 2, 3, 4, 5, 6, 7, 8}}}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	outs := []*tensor.Tensor{{Name: "label", Datatype: tensor.Int64, Shape: []int64{4}, Data: []int64{0, 1, 0, 1}}}
	var c InferCall
	step := func() {
		if err := c.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Inputs(); err != nil {
			t.Fatal(err)
		}
		c.SetOutputs(outs, false)
	}
	step()
	if allocs := testing.AllocsPerRun(100, step); allocs != 0 {
		t.Errorf("a request decoded again allocates %.1f objects, want none", allocs)
	}
	if !proto.Equal(&c.Request, req) {
		t.Errorf("decoded %v, want %v", &c.Request, req)
	}
	if got := c.Response.Outputs; len(got) != 1 || fmt.Sprint(got[0].Contents.Int64Contents) != "[0 1 0 1]" {
		t.Errorf("outputs %v", got)
	}
	if c.Retained() < 8*8 {
		t.Errorf("retains %d bytes, less than the request's contents", c.Retained())
	}
	// A long id is kept for the next call's comparison, so it counts.
	long, err := proto.Marshal(&pb.ModelInferRequest{Id: strings.Repeat("x", 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(long); err != nil || c.Retained() < 1<<20 {
		t.Errorf("after a 1 MiB id: retains %d bytes (%v)", c.Retained(), err)
	}
	// So does a request protobuf's decoder took (here for its parameters).
	params, err := proto.Marshal(&pb.ModelInferRequest{Parameters: map[string]*pb.InferParameter{
		"k": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: strings.Repeat("y", 1<<20)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(params); err != nil || c.Retained() < 1<<20 {
		t.Errorf("after 1 MiB of parameters: retains %d bytes (%v)", c.Retained(), err)
	}
}
