package pickle

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDtypeString(t *testing.T) {
	tests := []struct {
		dt   Dtype
		want string
	}{
		{Dtype{Kind: 'f', ItemSize: 8}, "<f8"},
		{Dtype{Kind: 'i', ItemSize: 2, BigEndian: true}, ">i2"},
		{Dtype{Kind: 'b', ItemSize: 1}, "|b1"},
		{Dtype{Kind: 'u', ItemSize: 1, BigEndian: true}, "|u1"},
		{Dtype{Kind: 'U', ItemSize: 12}, "<U3"},
		{Dtype{Kind: 'S', ItemSize: 5}, "|S5"},
		{Dtype{Kind: 'V', ItemSize: 56}, "|V56"},
		{Dtype{Kind: 'O', ItemSize: 8}, "|O"},
	}
	for _, tc := range tests {
		if got := tc.dt.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.dt, got, tc.want)
		}
	}
}

func TestArrayAccessors(t *testing.T) {
	f8 := &Dtype{Kind: 'f', ItemSize: 8}
	tests := []struct {
		name    string
		a       *NDArray
		floats  []float64
		ints    []int64
		strs    []string
		wantErr string // in the error of some accessor that does not apply
	}{
		{"f2", &NDArray{Dtype: &Dtype{Kind: 'f', ItemSize: 2}, Shape: []int{4}, Data: []byte{0x00, 0x3e, 0x00, 0xb4, 0x01, 0x00, 0x00, 0x7c}},
			[]float64{1.5, -0.25, math.Ldexp(1, -24), math.Inf(1)}, nil, nil, ""},
		{"big-endian i4", &NDArray{Dtype: &Dtype{Kind: 'i', ItemSize: 4, BigEndian: true}, Shape: []int{2}, Data: []byte{0xff, 0xff, 0xff, 0xfe, 0, 0, 1, 0}},
			[]float64{-2, 256}, []int64{-2, 256}, nil, ""},
		{"u8 beyond 2^53", &NDArray{Dtype: &Dtype{Kind: 'u', ItemSize: 8}, Shape: []int{1}, Data: []byte{1, 0, 0, 0, 0, 0, 0x20, 0}},
			[]float64{9007199254740993}, []int64{9007199254740993}, nil, ""},
		{"i8 exact", &NDArray{Dtype: &Dtype{Kind: 'i', ItemSize: 8}, Shape: []int{1}, Data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			[]float64{-1}, []int64{-1}, nil, ""},
		{"bool", &NDArray{Dtype: &Dtype{Kind: 'b', ItemSize: 1}, Shape: []int{2}, Data: []byte{1, 0}},
			[]float64{1, 0}, []int64{1, 0}, nil, ""},
		{"unicode", &NDArray{Dtype: &Dtype{Kind: 'U', ItemSize: 8}, Shape: []int{2}, Data: []byte{'a', 0, 0, 0, 0, 0, 0, 0, 0xe5, 0x65, 0, 0, 'b', 0, 0, 0}},
			nil, nil, []string{"a", "\u65e5b"}, "not numeric"},
		{"bytes", &NDArray{Dtype: &Dtype{Kind: 'S', ItemSize: 2}, Shape: []int{2}, Data: []byte{'x', 0, 'y', 'z'}},
			nil, nil, []string{"x", "yz"}, "not numeric"},
		{"objects", &NDArray{Dtype: &Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{2}, Objects: []any{int64(3), 2.0}},
			[]float64{3, 2}, []int64{3, 2}, nil, "not a string"},
		{"object strings", &NDArray{Dtype: &Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{2}, Objects: []any{"a", []byte("b")}},
			nil, nil, []string{"a", "b"}, "not a number"},
		{"objects not matching the shape", &NDArray{Dtype: &Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{1}, Objects: []any{1.0, 2.0}},
			nil, nil, nil, "holds 2 elements"},
		{"truncated data", &NDArray{Dtype: f8, Shape: []int{2}, Data: make([]byte, 8)},
			nil, nil, nil, "truncated"},
		{"f8 is not integer", &NDArray{Dtype: f8, Shape: []int{1}, Data: make([]byte, 8)},
			[]float64{0}, nil, nil, "not integer"},
		{"complex", &NDArray{Dtype: &Dtype{Kind: 'c', ItemSize: 16}, Shape: []int{1}, Data: make([]byte, 16)},
			nil, nil, nil, "not numeric"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs []string
			check := func(what string, got, want any, err error) {
				t.Helper()
				if reflect.ValueOf(want).IsNil() {
					if err == nil {
						t.Errorf("%s: got %v, want an error", what, got)
					} else {
						errs = append(errs, err.Error())
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", what, got, want)
				}
			}
			f, err := tc.a.Float64s()
			check("Float64s", f, tc.floats, err)
			i, err := tc.a.Int64s()
			check("Int64s", i, tc.ints, err)
			s, err := tc.a.Strings()
			check("Strings", s, tc.strs, err)
			if tc.wantErr != "" && !strings.Contains(strings.Join(errs, "\n"), tc.wantErr) {
				t.Errorf("errors %q, want one containing %q", errs, tc.wantErr)
			}
		})
	}
}

func TestStructuredField(t *testing.T) {
	rec := &Dtype{Kind: 'V', ItemSize: 10, Fields: []Field{
		{Name: "a", Dtype: &Dtype{Kind: 'u', ItemSize: 2}, Offset: 0},
		{Name: "b", Dtype: &Dtype{Kind: 'f', ItemSize: 8}, Offset: 2},
	}}
	a := &NDArray{Dtype: rec, Shape: []int{2}, Data: []byte{
		7, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,
		9, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xc0}}
	b, err := a.Field("b")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Float64s(); !reflect.DeepEqual(got, []float64{1.5, -2}) {
		t.Errorf("field b = %v", got)
	}
	if got, _ := a.Field("a"); got == nil {
		t.Error("field a missing")
	} else if v, _ := got.Int64s(); !reflect.DeepEqual(v, []int64{7, 9}) {
		t.Errorf("field a = %v", v)
	}
	if _, err := a.Field("c"); err == nil || !strings.Contains(err.Error(), `no field "c"`) {
		t.Errorf("missing field: %v", err)
	}
	short := &NDArray{Dtype: rec, Shape: []int{2}, Data: a.Data[:15]}
	if _, err := short.Field("b"); err == nil {
		t.Error("truncated structured data was accepted")
	}
}

func TestObjectAccessors(t *testing.T) {
	arr := &NDArray{Dtype: &Dtype{Kind: 'f', ItemSize: 8}, Shape: []int{1}, Data: make([]byte, 8)}
	inner := &Object{Module: "m", Name: "Inner"}
	o := &Object{Module: "m", Name: "Est", State: Tuple{
		&Dict{Keys: []any{"n", "x", "s"}, Values: []any{int64(3), 0.5, "hi"}},
		&Dict{Keys: []any{"arr", "inner", "list", "n"}, Values: []any{arr, inner, &List{Items: []any{int64(1)}}, int64(4)}},
	}}
	if n, err := o.Int("n"); err != nil || n != 4 {
		t.Errorf("Int(n) = %v, %v; slot values override the dict", n, err)
	}
	if x, err := o.Float("x"); err != nil || x != 0.5 {
		t.Errorf("Float(x) = %v, %v", x, err)
	}
	if s, err := o.String("s"); err != nil || s != "hi" {
		t.Errorf("String(s) = %v, %v", s, err)
	}
	if a, err := o.Array("arr"); err != nil || a != arr {
		t.Errorf("Array(arr) = %v, %v", a, err)
	}
	if i, err := o.Object("inner"); err != nil || i != inner {
		t.Errorf("Object(inner) = %v, %v", i, err)
	}
	if items, err := o.Items("list"); err != nil || len(items) != 1 {
		t.Errorf("Items(list) = %v, %v", items, err)
	}
	errTests := []struct {
		call func() error
		want string
	}{
		{func() error { _, err := o.Int("missing"); return err }, "Est: attribute missing is missing"},
		{func() error { _, err := o.Int("x"); return err }, "Est.x: want an integer, got float"},
		{func() error { _, err := o.Float("s"); return err }, "Est.s: want a number, got str"},
		{func() error { _, err := o.String("n"); return err }, "Est.n: want a string, got int"},
		{func() error { _, err := o.Array("s"); return err }, "Est.s: want an array, got str"},
		{func() error { _, err := o.Object("arr"); return err }, "Est.arr: want an object, got ndarray(<f8)"},
		{func() error { _, err := o.Items("inner"); return err }, "Est.inner: want a list, got m.Inner"},
	}
	for _, tc := range errTests {
		if err := tc.call(); err == nil || err.Error() != tc.want {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	if (&Object{State: int64(1)}).Attrs() != nil {
		t.Error("a non-dict state has attributes")
	}
}

func TestToIntToFloat(t *testing.T) {
	tests := []struct {
		in  any
		i   int64
		iok bool
		f   float64
		fok bool
	}{
		{int64(-3), -3, true, -3, true},
		{uint64(math.MaxUint64), 0, false, math.MaxUint64, true},
		{true, 1, true, 1, true},
		{2.0, 2, true, 2, true},
		{2.5, 0, false, 2.5, true},
		{math.Inf(1), 0, false, math.Inf(1), true},
		{"3", 0, false, 0, false},
		{&NDArray{Dtype: &Dtype{Kind: 'i', ItemSize: 1}, Shape: nil, Data: []byte{0xfe}}, 0, false, -2, true},
	}
	for _, tc := range tests {
		i, iok := ToInt(tc.in)
		f, fok := ToFloat(tc.in)
		if i != tc.i || iok != tc.iok || f != tc.f || fok != tc.fok {
			t.Errorf("%v: ToInt = %v, %v; ToFloat = %v, %v", tc.in, i, iok, f, fok)
		}
	}
}

func TestDictSetUnhashableKeys(t *testing.T) {
	d := &Dict{}
	d.Set(Tuple{int64(1)}, "a")
	d.Set(Tuple{int64(1)}, "b") // must not panic comparing slices
	d.Set("k", 1)
	d.Set("k", 2)
	if len(d.Keys) != 3 {
		t.Fatalf("%d keys, want 3", len(d.Keys))
	}
	if v, _ := d.Get("k"); v != 2 {
		t.Errorf("Get(k) = %v, want 2", v)
	}
}

func TestArrayElementsCountsEachArrayOnce(t *testing.T) {
	f8 := &Dtype{Kind: 'f', ItemSize: 8}
	a := &NDArray{Dtype: f8, Shape: []int{3, 4}, Data: make([]byte, 96)}
	b := &NDArray{Dtype: f8, Shape: []int{5}, Data: make([]byte, 40)}
	objs := &NDArray{Dtype: &Dtype{Kind: 'O'}, Shape: []int{2}, Objects: []any{b, "x"}}
	loop := &List{}
	loop.Items = []any{loop, a} // a list that holds itself
	state := &Dict{}
	state.Set("a", a)
	state.Set("again", a)
	state.Set("objs", objs)
	state.Set("t", Tuple{loop, b})
	v := &Object{Module: "m", Name: "C", State: state}
	if got := ArrayElements(v); got != 12+5 {
		t.Fatalf("ArrayElements = %d, want 17 (a once, b once, object arrays' own slots not numeric)", got)
	}
}

// The field accessors read a structured array's field in place and agree with
// Field(...).Float64s/Int64s, including on malformed arrays.
func TestFieldAccessorsMatchField(t *testing.T) {
	rec := &Dtype{Kind: 'V', ItemSize: 16, Fields: []Field{
		{Name: "left", Dtype: &Dtype{Kind: 'i', ItemSize: 8}, Offset: 0},
		{Name: "thr", Dtype: &Dtype{Kind: 'f', ItemSize: 8}, Offset: 8},
	}}
	data := make([]byte, 3*16)
	for i := 0; i < 3; i++ {
		binary.LittleEndian.PutUint64(data[i*16:], uint64(int64(-1+i*5)))
		binary.LittleEndian.PutUint64(data[i*16+8:], math.Float64bits(0.5*float64(i)))
	}
	a := &NDArray{Dtype: rec, Shape: []int{3}, Data: data}
	ints, err := a.FieldInt64s("left")
	if err != nil || !reflect.DeepEqual(ints, []int64{-1, 4, 9}) {
		t.Fatalf("FieldInt64s = %v, %v", ints, err)
	}
	floats, err := a.FieldFloat64s("thr")
	if err != nil || !reflect.DeepEqual(floats, []float64{0, 0.5, 1}) {
		t.Fatalf("FieldFloat64s = %v, %v", floats, err)
	}
	f, _ := a.Field("thr")
	viaCopy, _ := f.Float64s()
	if !reflect.DeepEqual(viaCopy, floats) {
		t.Fatalf("Field().Float64s() = %v, FieldFloat64s = %v", viaCopy, floats)
	}
	if _, err := a.FieldFloat64s("nope"); err == nil {
		t.Error("an unknown field must fail")
	}
	if _, err := a.FieldInt64s("thr"); err == nil {
		t.Error("a float field is not integer")
	}
	short := &NDArray{Dtype: rec, Shape: []int{3}, Data: data[:40]}
	if _, err := short.FieldFloat64s("thr"); err == nil {
		t.Error("truncated records must fail")
	}
	bad := &NDArray{Dtype: &Dtype{Kind: 'V', ItemSize: 4, Fields: []Field{{Name: "x", Dtype: &Dtype{Kind: 'f', ItemSize: 8}, Offset: 0}}}, Shape: []int{2}, Data: make([]byte, 8)}
	if _, err := bad.FieldFloat64s("x"); err == nil {
		t.Error("a field wider than its record must fail")
	}
}
