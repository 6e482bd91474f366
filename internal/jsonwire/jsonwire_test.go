package jsonwire

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestAppendPyFloatMatchesPython compares against what Python's json.dumps wrote
// for 3000+ values (testdata/gen_pyfloat.py).
func TestAppendPyFloatMatchesPython(t *testing.T) {
	f, err := os.Open("testdata/pyfloat.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		hexBits, want, _ := strings.Cut(sc.Text(), " ")
		bits, err := strconv.ParseUint(hexBits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		v := math.Float64frombits(bits)
		if got := string(AppendPyFloat(nil, v)); got != want {
			t.Errorf("%v (bits %s): got %s, Python writes %s", v, hexBits, got, want)
		}
		n++
	}
	if n < 3000 {
		t.Fatalf("only %d reference values", n)
	}
	// json.dumps(float("nan")), float("inf"), float("-inf").
	for v, want := range map[float64]string{math.Inf(1): "Infinity", math.Inf(-1): "-Infinity"} {
		if got := string(AppendPyFloat(nil, v)); got != want {
			t.Errorf("%v: got %s, Python writes %s", v, got, want)
		}
	}
	if got := string(AppendPyFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("NaN: got %s, Python writes NaN", got)
	}
}

// What the writers produce for non-finite values, the scanner reads back, as
// Python's json.loads does; as integers they are a type error (422), and
// lookalikes are malformed (400).
func TestNonFiniteLiteralsRoundTrip(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		text := AppendFloat([]byte("["), f, 64)
		text = append(text, ',', '1', ']')
		sc := NewScanner(text)
		if _, err := sc.ArrayStart(); err != nil {
			t.Fatal(err)
		}
		if k := sc.Kind(); k != "number" {
			t.Errorf("%s: Kind %q, want number", text, k)
		}
		got, err := sc.Float()
		if err != nil || math.IsNaN(got) != math.IsNaN(f) || (!math.IsNaN(f) && got != f) {
			t.Errorf("%s: Float = %v, %v; want %v", text, got, err, f)
		}
		if more, err := sc.More(']'); !more || err != nil {
			t.Errorf("%s: the literal was not consumed whole (%v)", text, err)
		}
		if err := NewScanner(text[1:]).Skip(); err != nil {
			t.Errorf("Skip(%s): %v", text[1:], err)
		}
		var te *TypeError
		if _, err := NewScanner(text[1:]).Int(); !errors.As(err, &te) {
			t.Errorf("Int(%s) = %v, want a TypeError", text[1:], err)
		}
	}
	for _, bad := range []string{"Nan", "NaNa", "Inf", "infinity", "-Inf", "NaN1", "nul", "nullx", "Null"} {
		var se *SyntaxError
		if _, err := NewScanner([]byte(bad)).Float(); !errors.As(err, &se) {
			t.Errorf("Float(%q) = %v, want a SyntaxError", bad, err)
		}
	}
}

// null is a missing value where a float is expected: NaN. As an integer it
// stays a type error, and a string never reads as a number.
func TestNullReadsAsNaNForFloats(t *testing.T) {
	sc := NewScanner([]byte(`[null, 1]`))
	if _, err := sc.ArrayStart(); err != nil {
		t.Fatal(err)
	}
	if got, err := sc.Float(); err != nil || !math.IsNaN(got) {
		t.Fatalf("Float(null) = %v, %v; want NaN", got, err)
	}
	if more, err := sc.More(']'); !more || err != nil {
		t.Fatalf("null was not consumed whole (%v)", err)
	}
	var te *TypeError
	for _, in := range []string{"null", `"NaN"`, "true"} {
		if in != "null" {
			if _, err := NewScanner([]byte(in)).Float(); !errors.As(err, &te) {
				t.Errorf("Float(%s) = %v, want a TypeError", in, err)
			}
		}
		if _, err := NewScanner([]byte(in)).Int(); !errors.As(err, &te) {
			t.Errorf("Int(%s) = %v, want a TypeError", in, err)
		}
	}
}

func TestAppendStringIsValidJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\`, "tab\tnl\ncr\r\b\f\x01", "ünï€ode", "bad\xffutf8", "<&>"} {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Errorf("%q round-tripped to %q", s, back)
		}
	}
	if got := string(AppendString(nil, "<&>")); got != `"<&>"` {
		t.Errorf("HTML characters escaped: %s (Python does not)", got)
	}
}

func TestScannerValues(t *testing.T) {
	cases := []struct {
		in   string
		read func(*Scanner) (any, error)
		want any
		err  string
	}{
		{in: " 1.5 ", read: func(s *Scanner) (any, error) { return s.Float() }, want: 1.5},
		{in: "-0", read: func(s *Scanner) (any, error) { return s.Float() }, want: math.Copysign(0, -1)},
		{in: "1e400", read: func(s *Scanner) (any, error) { return s.Float() }, err: "out of range"},
		{in: "01", read: func(s *Scanner) (any, error) {
			v, err := s.Float()
			if err == nil {
				err = s.End()
			}
			return v, err
		}, err: "unexpected data"},
		{in: "1.", read: func(s *Scanner) (any, error) { return s.Float() }, err: "digit after the decimal point"},
		{in: "1e", read: func(s *Scanner) (any, error) { return s.Float() }, err: "digit in the exponent"},
		{in: `"x"`, read: func(s *Scanner) (any, error) { return s.Float() }, err: "expected a number, got string"},
		{in: "9223372036854775807", read: func(s *Scanner) (any, error) { return s.Int() }, want: int64(math.MaxInt64)},
		{in: "9223372036854775808", read: func(s *Scanner) (any, error) { return s.Int() }, err: "out of range"},
		{in: "3.0", read: func(s *Scanner) (any, error) { return s.Int() }, want: int64(3)},
		{in: "3.5", read: func(s *Scanner) (any, error) { return s.Int() }, err: "expected an integer"},
		{in: "-1", read: func(s *Scanner) (any, error) { return s.Uint() }, err: "non-negative"},
		{in: "18446744073709551615", read: func(s *Scanner) (any, error) { return s.Uint() }, want: uint64(math.MaxUint64)},
		{in: "true", read: func(s *Scanner) (any, error) { return s.Bool() }, want: true},
		{in: "tru", read: func(s *Scanner) (any, error) { return s.Bool() }, err: "invalid literal"},
		{in: `"a\u00e9\ud83d\ude00\n"`, read: func(s *Scanner) (any, error) { b, err := s.String(); return string(b), err }, want: "aé😀\n"},
		{in: `"\ud83d"`, read: func(s *Scanner) (any, error) { b, err := s.String(); return string(b), err }, want: "\uFFFD"},
		{in: "\"a\x01\"", read: func(s *Scanner) (any, error) { b, err := s.String(); return string(b), err }, err: "control character"},
		{in: `"abc`, read: func(s *Scanner) (any, error) { b, err := s.String(); return string(b), err }, err: "unterminated"},
		{in: `{"a":[1,{"b":null}],"c":"d"}`, read: func(s *Scanner) (any, error) { return nil, s.Skip() }, want: nil},
		{in: `{"a":1,}`, read: func(s *Scanner) (any, error) { return nil, s.Skip() }, err: "invalid JSON"},
		{in: strings.Repeat("[", 100) + strings.Repeat("]", 100), read: func(s *Scanner) (any, error) { return nil, s.Skip() }, err: "nested more than 64"},
	}
	for _, c := range cases {
		got, err := c.read(NewScanner([]byte(c.in)))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if f, ok := c.want.(float64); ok && f == 0 {
			if g := got.(float64); g != 0 || math.Signbit(g) != math.Signbit(f) {
				t.Errorf("%q: got %v", c.in, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %#v, want %#v", c.in, got, c.want)
		}
	}
}

// FuzzScanner checks that Skip agrees with encoding/json on what is valid JSON and
// never panics, and that numbers read as Go's strconv reads them.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,-0.1,true,null,"x\u00e9"]}`, `[[1,2],[3,4]]`, `"\ud83d\ude00"`, `1e999`, `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewScanner(b)
		err := s.Skip()
		if err == nil {
			err = s.End()
		}
		valid := json.Valid(b)
		depthOK := !strings.Contains(string(b), strings.Repeat("[", 60)) && !strings.Contains(string(b), strings.Repeat("{", 60))
		if valid && err != nil && depthOK {
			t.Fatalf("encoding/json accepts %q, scanner says %v", b, err)
		}
		if !valid && err == nil {
			t.Fatalf("encoding/json rejects %q, scanner accepts it", b)
		}
		if v, err := NewScanner(b).Float(); err == nil {
			// The scanner consumed a prefix number; strconv must agree on it.
			sc := NewScanner(b)
			span, _, _ := sc.numberSpan()
			if w, err2 := strconv.ParseFloat(string(span), 64); err2 != nil || w != v && !(math.IsNaN(w) && math.IsNaN(v)) {
				t.Fatalf("%q: scanner %v, strconv %v (%v)", span, v, w, err2)
			}
		}
	})
}

// TestLiteralsMustBeWhole: a value is a boolean or null only when its literal is
// whole, so a truncated or foreign body is malformed JSON (SyntaxError, answered
// 400) rather than a value of the wrong kind (TypeError, 422).
func TestLiteralsMustBeWhole(t *testing.T) {
	for body, kind := range map[string]string{
		"true": "boolean", " false ": "boolean", "null": "null", "true,": "boolean", "null}": "null",
		"tru": "invalid value", "truex": "invalid value", "feature1=0.5&feature2=1": "invalid value",
		"nul": "invalid value", "nullify": "invalid value", "f": "invalid value",
	} {
		sc := NewScanner([]byte(body))
		if got := sc.Kind(); got != kind {
			t.Errorf("Kind(%q) = %s, want %s", body, got, kind)
		}
		if kind != "invalid value" {
			continue
		}
		_, err := sc.ObjectStart()
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ObjectStart(%q): %v, want a syntax error", body, err)
		}
	}
}
