package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/tensor"
)

func TestDecodeInferRequest(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    []*tensor.Tensor
		id      string
		outputs []string
		status  int
		err     string
	}{
		{name: "flat FP64", body: `{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[1,2,3,4.5]}]}`, id: "a",
			want: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{2, 2}, Data: []float64{1, 2, 3, 4.5}}}},
		{name: "nested, data before shape", body: `{"inputs":[{"data":[[1,2],[3,4]],"name":"x","datatype":"INT32","shape":[2,2],"parameters":{"k":1}}],"outputs":[{"name":"y"}],"parameters":{"p":true}}`,
			want: []*tensor.Tensor{{Name: "x", Datatype: tensor.Int32, Shape: []int64{2, 2}, Data: []int32{1, 2, 3, 4}}}, outputs: []string{"y"}},
		{name: "every type", body: `{"inputs":[
			{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
			{"name":"u8","shape":[1],"datatype":"UINT8","data":[255]},
			{"name":"u64","shape":[1],"datatype":"UINT64","data":[18446744073709551615]},
			{"name":"i8","shape":[1],"datatype":"INT8","data":[-128]},
			{"name":"i16","shape":[1],"datatype":"INT16","data":[-32768]},
			{"name":"i64","shape":[1],"datatype":"INT64","data":[-9223372036854775808]},
			{"name":"f16","shape":[1],"datatype":"FP16","data":[1.5]},
			{"name":"bf16","shape":[1],"datatype":"BF16","data":[-2]},
			{"name":"f32","shape":[1],"datatype":"FP32","data":[0.25]},
			{"name":"s","shape":[2],"datatype":"BYTES","data":["hi","\u00e9"]},
			{"name":"scalar","shape":[],"datatype":"FP64","data":7}]}`,
			want: []*tensor.Tensor{
				{Name: "b", Datatype: tensor.Bool, Shape: []int64{2}, Data: []bool{true, false}},
				{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{1}, Data: []uint8{255}},
				{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}},
				{Name: "i8", Datatype: tensor.Int8, Shape: []int64{1}, Data: []int8{-128}},
				{Name: "i16", Datatype: tensor.Int16, Shape: []int64{1}, Data: []int16{-32768}},
				{Name: "i64", Datatype: tensor.Int64, Shape: []int64{1}, Data: []int64{math.MinInt64}},
				{Name: "f16", Datatype: tensor.FP16, Shape: []int64{1}, Data: []uint16{0x3e00}},
				{Name: "bf16", Datatype: tensor.BF16, Shape: []int64{1}, Data: []uint16{0xc000}},
				{Name: "f32", Datatype: tensor.FP32, Shape: []int64{1}, Data: []float32{0.25}},
				{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("hi"), []byte("é")}},
				{Name: "scalar", Datatype: tensor.FP64, Shape: []int64{}, Data: []float64{7}},
			}},
		{name: "zero-size", body: `{"inputs":[{"name":"x","shape":[0,3],"datatype":"FP32","data":[]}]}`,
			want: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{0, 3}, Data: []float32{}}}},
		{name: "not an object", body: `[]`, status: 422, err: "expected an object"},
		{name: "truncated", body: `{"inputs":[{"name":"x"`, status: 400, err: "invalid JSON"},
		{name: "no inputs", body: `{"id":"x"}`, status: 422, err: "no inputs"},
		{name: "missing datatype", body: `{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, status: 422, err: "missing datatype"},
		{name: "missing shape", body: `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, status: 422, err: "missing shape"},
		{name: "missing data", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]}`, status: 422, err: "missing data"},
		{name: "missing name", body: `{"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]}`, status: 422, err: "missing name"},
		{name: "negative dim", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]}`, status: 422, err: "negative"},
		{name: "fractional dim", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1.5],"data":[1]}]}`, status: 422, err: "expected an integer"},
		{name: "huge shape", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[4611686018427387904,4],"data":[1]}]}`, status: 422, err: "invalid shape"},
		{name: "count mismatch", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[1,2]}]}`, status: 422, err: "needs 3 elements, data has 2"},
		{name: "int overflow", body: `{"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[128]}]}`, status: 422, err: "out of range for INT8"},
		{name: "fp32 overflow", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1e39]}]}`, status: 422, err: "out of range for FP32"},
		{name: "bool as number", body: `{"inputs":[{"name":"x","datatype":"BOOL","shape":[1],"data":[1]}]}`, status: 422, err: "expected a boolean, got number"},
		{name: "string in ints", body: `{"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":["1"]}]}`, status: 422, err: "expected an integer, got string"},
		{name: "duplicate input", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`, status: 422, err: "appears twice"},
		{name: "output without name", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}],"outputs":[{}]}`, status: 422, err: "outputs[0]: missing name"},
		{name: "trailing data", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]} {}`, status: 400, err: "after the JSON value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := DecodeInferRequest([]byte(c.body))
			if c.err != "" {
				var pe *Error
				if !errors.As(err, &pe) || pe.Status != c.status || !strings.Contains(pe.Msg, c.err) {
					t.Fatalf("got %v, want %d %q", err, c.status, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.ID != c.id {
				t.Errorf("id %q, want %q", req.ID, c.id)
			}
			if !reflect.DeepEqual(req.Inputs, c.want) {
				for i := range req.Inputs {
					t.Logf("got %+v", *req.Inputs[i])
				}
				t.Fatalf("inputs differ")
			}
			var outs []string
			for _, o := range req.Outputs {
				outs = append(outs, o.Name)
			}
			if !reflect.DeepEqual(outs, c.outputs) {
				t.Errorf("outputs %v, want %v", outs, c.outputs)
			}
		})
	}
}

func TestResponseIsValidJSONAndRoundTrips(t *testing.T) {
	resp := &InferResponse{ModelName: "m\"1", ModelVersion: "2", ID: "x", Outputs: []*tensor.Tensor{
		{Name: "f64", Datatype: tensor.FP64, Shape: []int64{2}, Data: []float64{0.1, math.NaN()}},
		{Name: "f32", Datatype: tensor.FP32, Shape: []int64{1}, Data: []float32{0.1}},
		{Name: "f16", Datatype: tensor.FP16, Shape: []int64{1}, Data: []uint16{0x3e00}},
		{Name: "i8", Datatype: tensor.Int8, Shape: []int64{1}, Data: []int8{-3}},
		{Name: "u32", Datatype: tensor.Uint32, Shape: []int64{1}, Data: []uint32{7}},
		{Name: "b", Datatype: tensor.Bool, Shape: []int64{1}, Data: []bool{true}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("fraud")}},
	}}
	b := AppendInferResponse(nil, resp)
	if !strings.Contains(string(b), `"data":[0.1,NaN]`) {
		t.Errorf("NaN not written as Python's NaN literal: %s", b)
	}
	// Go's encoding/json is strict JSON: read the rest with the literal aside.
	b = bytes.ReplaceAll(b, []byte("NaN"), []byte("null"))
	var doc struct {
		ModelName string `json:"model_name"`
		Outputs   []struct {
			Name     string
			Datatype string
			Shape    []int64
			Data     []any
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if doc.ModelName != `m"1` || len(doc.Outputs) != 7 {
		t.Fatalf("decoded %+v", doc)
	}
	want := `{"name":"f32","datatype":"FP32","shape":[1],"data":[0.1]}`
	if !strings.Contains(string(b), want) {
		t.Errorf("FP32 not in shortest float32 form: %s", b)
	}
}

// FuzzDecodeInferRequest: no input makes the decoder panic; every success yields
// tensors whose data agree with their shapes; every failure is a protocol error.
func FuzzDecodeInferRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4]]}],"outputs":[{"name":"y"}]}`,
		`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["a"]}]}`,
		`{"inputs":[{"name":"b","shape":[],"datatype":"BOOL","data":true}]}`,
		`{"inputs":[{"name":"h","shape":[1],"datatype":"FP16","data":[65504]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeInferRequest(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || (pe.Status != 400 && pe.Status != 422) {
				t.Fatalf("error is not a 400/422 protocol error: %#v", err)
			}
			return
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("decoded an invalid tensor: %v", err)
			}
		}
	})
}

// TestAmbiguousRequestsAre400: a repeated key, or data nested otherwise than its
// shape, can be read more than one way; both are refused as unparsable (400), while
// flat data of any shape and nesting that follows the shape are read.
func TestAmbiguousRequestsAre400(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}],"inputs":[]}`, `request: duplicate key "inputs"`},
		{`{"id":"x","id":"y","inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}]}`, `duplicate key "id"`},
		{`{"inputs":[{"name":"a","name":"b","shape":[1],"datatype":"FP64","data":[1]}]}`, `inputs[0]: duplicate key "name"`},
		{`{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP64","data":[[[1,2]]]}]}`, "nested 3 deep but shape [1 2]"},
		{`{"inputs":[{"name":"a","shape":[2,1],"datatype":"FP64","data":[[1,2]]}]}`, "data has 2 values at depth 2 where shape [2 1] says 1"},
		{`{"inputs":[{"name":"a","shape":[2],"datatype":"FP64","data":[1,[2]]}]}`, "nested unevenly"},
	} {
		_, err := DecodeInferRequest([]byte(c.body))
		var pe *Error
		if !errors.As(err, &pe) || pe.Status != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want 400 containing %q", c.body, err, c.want)
		}
	}
	for _, body := range []string{
		`{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP64","data":[[1,2]]}]}`,
		`{"inputs":[{"name":"a","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"a","shape":[2,1,2],"datatype":"FP64","data":[[[1,2]],[[3,4]]]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1],"x":1,"x":2}]}`, // extensions are not read
	} {
		if _, err := DecodeInferRequest([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// A missing value in a float tensor may be sent as null or as Python's NaN
// literal; both read as NaN. In an integer tensor null stays a 422.
func TestNullAndNaNReadAsMissingInFloatTensors(t *testing.T) {
	req, err := DecodeInferRequest([]byte(`{"inputs":[
		{"name":"a","shape":[1,3],"datatype":"FP64","data":[null,NaN,-Infinity]},
		{"name":"b","shape":[2],"datatype":"FP32","data":[1.5,null]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := req.Inputs[0].Data.([]float64), req.Inputs[1].Data.([]float32)
	if !math.IsNaN(a[0]) || !math.IsNaN(a[1]) || !math.IsInf(a[2], -1) || b[0] != 1.5 || !math.IsNaN(float64(b[1])) {
		t.Fatalf("read %v and %v", a, b)
	}
	_, err = DecodeInferRequest([]byte(`{"inputs":[{"name":"i","shape":[1],"datatype":"INT64","data":[null]}]}`))
	var pe *Error
	if !errors.As(err, &pe) || pe.Status != 422 {
		t.Fatalf("null in INT64: %v, want a 422", err)
	}
}
