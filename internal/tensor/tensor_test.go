package tensor

import (
	"math"
	"strings"
	"testing"
)

func TestHalfRoundTripsEveryValue(t *testing.T) {
	for b := 0; b < 1<<16; b++ {
		h := uint16(b)
		f := HalfToFloat32(h)
		if math.IsNaN(float64(f)) {
			if back := Float32ToHalf(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %04x came back as %04x", h, back)
			}
			continue
		}
		if back := Float32ToHalf(f); back != h {
			t.Fatalf("%04x → %g → %04x", h, f, back)
		}
	}
}

func TestHalfRounding(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e-8, 0}, {5.960464477539063e-08, 0x0001},
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, // a tie rounds to even
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, c := range cases {
		if got := Float32ToHalf(c.in); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %04x, want %04x", c.in, got, c.want)
		}
	}
	if got := BFloat16ToFloat32(Float32ToBFloat16(3.140625)); got != 3.140625 {
		t.Errorf("bf16 round trip: %g", got)
	}
	if got := Float32ToBFloat16(1.00390625); got != 0x3f80 { // tie to even
		t.Errorf("bf16 tie: %04x", got)
	}
}

func TestValidateAndConvert(t *testing.T) {
	good := &Tensor{Name: "x", Datatype: Int32, Shape: []int64{2, 2}, Data: []int32{1, 2, 3, 4}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	f, err := good.Float64s()
	if err != nil || f[3] != 4 {
		t.Fatalf("%v %v", f, err)
	}
	bad := []struct {
		t   *Tensor
		err string
	}{
		{&Tensor{Name: "x", Datatype: FP32, Shape: []int64{2}, Data: []float64{1, 2}}, "does not match datatype FP32"},
		{&Tensor{Name: "x", Datatype: FP64, Shape: []int64{3}, Data: []float64{1, 2}}, "needs 3 elements, got 2"},
		{&Tensor{Name: "x", Datatype: FP64, Shape: []int64{-1}, Data: []float64{}}, "invalid shape"},
		{&Tensor{Name: "x", Datatype: FP64, Shape: []int64{1 << 40, 1 << 40}, Data: []float64{}}, "invalid shape"},
	}
	for _, c := range bad {
		if err := c.t.Validate(); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want %q", c.t, err, c.err)
		}
	}
	if _, err := (&Tensor{Name: "s", Datatype: Bytes, Shape: []int64{1}, Data: [][]byte{nil}}).Float64s(); err == nil {
		t.Error("BYTES converted to numbers")
	}
	for dt := Bool; dt <= BF16; dt++ {
		tt, err := New("n", dt, []int64{2, 3})
		if err != nil || tt.Validate() != nil {
			t.Errorf("New(%s): %v %v", dt, err, tt.Validate())
		}
		if back, err := ParseDatatype(dt.String()); err != nil || back != dt {
			t.Errorf("ParseDatatype(%s) = %v %v", dt, back, err)
		}
		// Case exact, as the protocol defines the names; the refusal says which one.
		lower := strings.ToLower(dt.String())
		if _, err := ParseDatatype(lower); err == nil || !strings.Contains(err.Error(), "upper case: "+dt.String()) {
			t.Errorf("ParseDatatype(%q) = %v, want a refusal naming %s", lower, err, dt)
		}
	}
	if _, err := ParseDatatype(strings.Repeat("X", 9000)); err == nil || len(err.Error()) > 120 {
		t.Errorf("a 9000-byte datatype is echoed whole: %d bytes", len(err.Error()))
	}
}
