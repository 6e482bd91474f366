package oip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/tensor"
)

// everyDatatype holds one tensor of each datatype with edge values.
var everyDatatype = []*tensor.Tensor{
	{Name: "b", Datatype: tensor.Bool, Shape: []int64{3}, Data: []bool{true, false, true}},
	{Name: "u8", Datatype: tensor.Uint8, Shape: []int64{2}, Data: []uint8{0, 255}},
	{Name: "u16", Datatype: tensor.Uint16, Shape: []int64{2}, Data: []uint16{1, math.MaxUint16}},
	{Name: "u32", Datatype: tensor.Uint32, Shape: []int64{1, 2}, Data: []uint32{7, math.MaxUint32}},
	{Name: "u64", Datatype: tensor.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}},
	{Name: "i8", Datatype: tensor.Int8, Shape: []int64{2}, Data: []int8{-128, 127}},
	{Name: "i16", Datatype: tensor.Int16, Shape: []int64{2}, Data: []int16{-32768, 5}},
	{Name: "i32", Datatype: tensor.Int32, Shape: []int64{2}, Data: []int32{math.MinInt32, -1}},
	{Name: "i64", Datatype: tensor.Int64, Shape: []int64{2}, Data: []int64{math.MinInt64, math.MaxInt64}},
	{Name: "f16", Datatype: tensor.FP16, Shape: []int64{1}, Data: []uint16{0x3e00}},
	{Name: "bf16", Datatype: tensor.BF16, Shape: []int64{1}, Data: []uint16{0xc000}},
	{Name: "f32", Datatype: tensor.FP32, Shape: []int64{2, 1}, Data: []float32{0.25, float32(math.Inf(-1))}},
	{Name: "f64", Datatype: tensor.FP64, Shape: []int64{3}, Data: []float64{-0.5, math.MaxFloat64, math.SmallestNonzeroFloat64}},
	{Name: "s", Datatype: tensor.Bytes, Shape: []int64{3}, Data: [][]byte{[]byte("hi"), {}, {0, 0xff, '"'}}},
	{Name: "empty", Datatype: tensor.FP32, Shape: []int64{0, 4}, Data: []float32{}},
	{Name: "scalar", Datatype: tensor.Int64, Shape: []int64{}, Data: []int64{42}},
}

func TestRawRoundTrip(t *testing.T) {
	for _, want := range everyDatatype {
		t.Run(want.Name, func(t *testing.T) {
			raw := AppendRaw(nil, want)
			if len(raw) != RawSize(want) {
				t.Fatalf("AppendRaw wrote %d bytes, RawSize says %d", len(raw), RawSize(want))
			}
			got, err := DecodeRaw(want.Name, want.Datatype, want.Shape, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want.Data) {
				t.Fatalf("round trip: got %v, want %v", got, want.Data)
			}
		})
	}
}

// TestRawLayout pins the byte layout against values written by hand, so that an
// encoder and decoder that agree on a wrong layout cannot both pass.
func TestRawLayout(t *testing.T) {
	cases := []struct {
		t    *tensor.Tensor
		want []byte
	}{
		{&tensor.Tensor{Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1, -2}}, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{&tensor.Tensor{Datatype: tensor.Int16, Shape: []int64{2}, Data: []int16{1, -2}}, []byte{1, 0, 0xfe, 0xff}},
		{&tensor.Tensor{Datatype: tensor.Int64, Shape: []int64{1}, Data: []int64{258}}, []byte{2, 1, 0, 0, 0, 0, 0, 0}},
		{&tensor.Tensor{Datatype: tensor.Bool, Shape: []int64{2}, Data: []bool{false, true}}, []byte{0, 1}},
		{&tensor.Tensor{Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("ab"), []byte("c")}}, []byte{2, 0, 0, 0, 'a', 'b', 1, 0, 0, 0, 'c'}},
	}
	for _, c := range cases {
		if got := AppendRaw(nil, c.t); !bytes.Equal(got, c.want) {
			t.Errorf("%s: got % x, want % x", c.t.Datatype, got, c.want)
		}
	}
}

func TestDecodeRawErrors(t *testing.T) {
	cases := []struct {
		name  string
		dt    tensor.Datatype
		shape []int64
		raw   []byte
		err   string
	}{
		{"short FP32", tensor.FP32, []int64{2}, make([]byte, 7), "needs 8 bytes, got 7"},
		{"long FP64", tensor.FP64, []int64{1}, make([]byte, 9), "needs 8 bytes, got 9"},
		{"forged huge shape", tensor.FP64, []int64{1 << 40, 1 << 20}, make([]byte, 8), "needs more than"},
		{"negative shape", tensor.FP32, []int64{-1}, nil, "invalid shape"},
		{"BOOL not 0/1", tensor.Bool, []int64{2}, []byte{1, 2}, "element 1 is 2"},
		{"BYTES truncated prefix", tensor.Bytes, []int64{2}, []byte{1, 0, 0, 0, 'a', 0, 0, 0}, "element 1: truncated length prefix"},
		{"BYTES element too long", tensor.Bytes, []int64{1}, []byte{9, 0, 0, 0, 'a'}, "element 0 is 9 bytes but only 1 remain"},
		{"BYTES trailing data", tensor.Bytes, []int64{1}, []byte{1, 0, 0, 0, 'a', 'b'}, "1 bytes left after 1 BYTES elements"},
		{"BYTES count cannot fit", tensor.Bytes, []int64{1 << 40}, []byte{0, 0, 0, 0}, "need at least"},
		{"invalid datatype", tensor.Invalid, []int64{1}, []byte{0}, "not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeRaw("x", c.dt, c.shape, c.raw)
			var pe *Error
			if !errors.As(err, &pe) || pe.Status != 422 || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want a 422 containing %q", err, c.err)
			}
			if !strings.Contains(err.Error(), `"x"`) {
				t.Errorf("error %q does not name the tensor", err)
			}
		})
	}
}

// binaryBody joins a JSON header and binary chunks as a client sends them.
func binaryBody(header string, chunks ...[]byte) ([]byte, int) {
	body := []byte(header)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return body, len(header)
}

func f32le(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestDecodeBinaryInferRequest(t *testing.T) {
	strs := AppendRaw(nil, &tensor.Tensor{Datatype: tensor.Bytes, Data: [][]byte{[]byte("a"), []byte("bc")}})
	cases := []struct {
		name      string
		header    string
		chunks    [][]byte
		headerLen int // overrides the computed length when non-zero
		want      []*tensor.Tensor
		outputs   []string
		binary    map[string]bool // output name → wants binary
		status    int
		err       string
	}{
		{name: "one binary input",
			header: `{"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
			chunks: [][]byte{f32le(1.5, -2)},
			want:   []*tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: []float32{1.5, -2}}}},
		{name: "binary and JSON inputs mixed, chunks in input order",
			header: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}},{"name":"j","shape":[2],"datatype":"INT32","data":[3,4]},{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"other":"x","binary_data_size":11}}]}`,
			chunks: [][]byte{f32le(7), strs},
			want: []*tensor.Tensor{
				{Name: "a", Datatype: tensor.FP32, Shape: []int64{1}, Data: []float32{7}},
				{Name: "j", Datatype: tensor.Int32, Shape: []int64{2}, Data: []int32{3, 4}},
				{Name: "s", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("a"), []byte("bc")}},
			}},
		{name: "JSON only, binary outputs for all but one",
			header:    `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],"outputs":[{"name":"p"},{"name":"q","parameters":{"binary_data":false}}],"parameters":{"binary_data_output":true}}`,
			headerLen: -1,
			want:      []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{1}}},
			outputs:   []string{"p", "q"}, binary: map[string]bool{"p": true, "q": false, "other": true}},
		{name: "one output asks for binary",
			header:    `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],"outputs":[{"name":"p","parameters":{"binary_data":true}},{"name":"q"}]}`,
			headerLen: -1,
			want:      []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{1}}},
			outputs:   []string{"p", "q"}, binary: map[string]bool{"p": true, "q": false}},
		{name: "zero-size binary input",
			header: `{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP32","parameters":{"binary_data_size":0}}]}`,
			want:   []*tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{0, 2}, Data: []float32{}}}},
		{name: "header length past the body", header: `{"inputs":[]}`, headerLen: 99, status: 400, err: "is 99 but the body has only 13 bytes"},
		{name: "header length zero", header: `{}`, chunks: [][]byte{{1}}, headerLen: -2, status: 400, err: "no JSON header"},
		{name: "header cut inside the JSON", header: `{"inputs":[]}`, headerLen: 5, status: 400, err: "invalid JSON"},
		{name: "too few binary bytes",
			header: `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
			chunks: [][]byte{f32le(1)}, status: 400, err: "binary data is 4 bytes but the inputs' binary_data_size add up to more than 4"},
		{name: "extra binary bytes",
			header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`,
			chunks: [][]byte{f32le(1, 2)}, status: 400, err: "binary data is 8 bytes but the inputs' binary_data_size add up to 4"},
		{name: "size does not fit the shape",
			header: `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
			chunks: [][]byte{f32le(1, 2)}, status: 422, err: `input "x": shape [3] of FP32 needs 12 bytes, got 8`},
		{name: "forged size does not overflow",
			header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":9223372036854775807}},{"name":"y","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":9223372036854775807}}]}`,
			chunks: [][]byte{f32le(1)}, status: 400, err: "add up to more than 4"},
		{name: "data and binary size", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`,
			chunks: [][]byte{f32le(1)}, status: 422, err: "both data and binary_data_size"},
		{name: "neither data nor binary size", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{}}]}`, status: 422, err: "missing data"},
		{name: "negative binary size", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":-4}}]}`, status: 422, err: "negative"},
		{name: "binary size not a number", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}`, status: 422, err: "expected an integer, got string"},
		{name: "binary_data not a bool", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":1}}]}`, headerLen: -1, status: 422, err: "binary_data: expected a boolean"},
		{name: "binary_data_output not a bool", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":"yes"}}`, headerLen: -1, status: 422, err: "expected a boolean"},
		{name: "no inputs", header: `{"id":"x"}`, headerLen: -1, status: 422, err: "no inputs"},
		{name: "duplicate input", header: `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, headerLen: -1, status: 422, err: "appears twice"},
		{name: "bad BYTES chunk",
			header: `{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":4}}]}`,
			chunks: [][]byte{{5, 0, 0, 0}}, status: 422, err: "element 0 is 5 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, hl := binaryBody(c.header, c.chunks...)
			switch {
			case c.headerLen == -2:
				hl = 0
			case c.headerLen != 0:
				hl = c.headerLen
			}
			req, bin, err := DecodeBinaryInferRequest(body, hl)
			if c.err != "" {
				var pe *Error
				if !errors.As(err, &pe) || pe.Status != c.status || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want status %d containing %q", err, c.status, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.Inputs, c.want) {
				t.Fatalf("inputs\n got %s\nwant %s", dump(req.Inputs), dump(c.want))
			}
			var outs []string
			for _, o := range req.Outputs {
				outs = append(outs, o.Name)
			}
			if !reflect.DeepEqual(outs, c.outputs) {
				t.Fatalf("outputs %v, want %v", outs, c.outputs)
			}
			for name, want := range c.binary {
				if got := bin.Binary(name); got != want {
					t.Errorf("Binary(%q) = %v, want %v", name, got, want)
				}
			}
			if bin.Any() != (len(c.binary) > 0) {
				t.Errorf("Any() = %v", bin.Any())
			}
		})
	}
}

func dump(ts []*tensor.Tensor) string {
	b, _ := json.Marshal(ts)
	return string(b)
}

// TestBinaryDecoderAgreesWithJSON runs the JSON decoder's own cases through the
// binary-aware decoder: a request without binary data must mean the same to both.
func TestBinaryDecoderAgreesWithJSON(t *testing.T) {
	bodies := []string{
		`{"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[1,2,3,4.5]}]}`,
		`{"inputs":[{"data":[[1,2],[3,4]],"name":"x","datatype":"INT32","shape":[2,2],"parameters":{"k":1}}],"outputs":[{"name":"y"}],"parameters":{"p":true}}`,
		`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["hi","\u00e9"]},{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{}]}`,
		`{"inputs":[{"name":"x"`,
		`[]`,
	}
	for _, body := range bodies {
		want, wantErr := DecodeInferRequest([]byte(body))
		got, _, gotErr := DecodeBinaryInferRequest([]byte(body), -1)
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%s: JSON decoder err %v, binary decoder err %v", body, wantErr, gotErr)
			continue
		}
		if wantErr != nil {
			if statusOfErr(wantErr) != statusOfErr(gotErr) {
				t.Errorf("%s: status %d vs %d (%v / %v)", body, statusOfErr(wantErr), statusOfErr(gotErr), wantErr, gotErr)
			}
			continue
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\n JSON   %+v\n binary %+v", body, want, got)
		}
	}
}

func statusOfErr(err error) int {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Status
	}
	return 0
}

func TestAppendBinaryInferResponse(t *testing.T) {
	outs := []*tensor.Tensor{
		{Name: "label", Datatype: tensor.Int64, Shape: []int64{2}, Data: []int64{1, 0}},
		{Name: "proba", Datatype: tensor.FP32, Shape: []int64{2, 2}, Data: []float32{0.25, 0.75, 1, 0}},
		{Name: "text", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("yes"), []byte("")}},
	}
	r := &InferResponse{ModelName: "m", ModelVersion: "3", ID: "q", Outputs: outs}
	bin := BinaryOutputs{All: true, Named: map[string]bool{"label": false}}
	prefix := []byte("keep")
	body, hl := AppendBinaryInferResponse(prefix, r, bin)
	if string(body[:4]) != "keep" {
		t.Fatalf("prefix overwritten: %q", body[:4])
	}
	body = body[4:]
	header := string(body[:hl])
	wantHeader := `{"model_name":"m","model_version":"3","id":"q","outputs":[` +
		`{"name":"label","datatype":"INT64","shape":[2],"data":[1,0]},` +
		`{"name":"proba","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}},` +
		`{"name":"text","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}]}`
	if header != wantHeader {
		t.Fatalf("header\n got %s\nwant %s", header, wantHeader)
	}
	wantTail := append(f32le(0.25, 0.75, 1, 0), 3, 0, 0, 0, 'y', 'e', 's', 0, 0, 0, 0)
	if !bytes.Equal(body[hl:], wantTail) {
		t.Fatalf("binary part % x, want % x", body[hl:], wantTail)
	}
	// With no binary output it is exactly the JSON encoding.
	jsonOnly, hl := AppendBinaryInferResponse(nil, r, BinaryOutputs{})
	if want := AppendInferResponse(nil, r); !bytes.Equal(jsonOnly, want) || hl != len(want) {
		t.Fatalf("JSON-only response differs:\n got %s\nwant %s", jsonOnly, want)
	}
}

// FuzzDecodeBinaryInferRequest feeds arbitrary bodies and split points. The decoder
// must never panic; what it accepts must be valid tensors that survive a binary
// round trip unchanged.
func FuzzDecodeBinaryInferRequest(f *testing.F) {
	add := func(header string, hl int, chunks ...[]byte) {
		body, n := binaryBody(header, chunks...)
		if hl != 0 {
			n = hl
		}
		f.Add(body, n)
	}
	add(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`, 0, f32le(1, 2))
	add(`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}},{"name":"j","shape":[1],"datatype":"INT8","data":[-3]}]}`, 0, []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0})
	add(`{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`, 0, []byte{0, 1})
	add(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],"parameters":{"binary_data_output":true}}`, -1)
	add(`{"inputs":[{"name":"h","shape":[2],"datatype":"FP16","parameters":{"binary_data_size":4}}]}`, 0, []byte{0, 0x3c, 0, 0xc0})
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		req, _, err := DecodeBinaryInferRequest(body, headerLen)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || (pe.Status != 400 && pe.Status != 422) {
				t.Fatalf("error is not a 400/422 protocol error: %v", err)
			}
			return
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
			raw := AppendRaw(nil, in)
			back, err := DecodeRaw(in.Name, in.Datatype, in.Shape, raw)
			if err != nil {
				t.Fatalf("re-decoding %q: %v", in.Name, err)
			}
			if !sameData(back, in.Data) {
				t.Fatalf("round trip of %q changed the data: %v vs %v", in.Name, back, in.Data)
			}
		}
	})
}

// sameData compares element bits, so NaNs compare equal to themselves.
func sameData(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		y := b.([]float32)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y := b.([]float64)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
