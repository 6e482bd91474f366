package jsonwire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Scanner reads JSON values from a byte slice without building a generic tree.
// Errors say what was expected and at which byte offset.
type Scanner struct {
	b []byte
	i int
}

// NewScanner scans b.
func NewScanner(b []byte) *Scanner { return &Scanner{b: b} }

// Reset makes the scanner read b from the start (for pooling).
func (s *Scanner) Reset(b []byte) { s.b, s.i = b, 0 }

// Offset is the current byte position.
func (s *Scanner) Offset() int { return s.i }

// SyntaxError is malformed JSON.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// TypeError is well-formed JSON of the wrong kind (a string where a number belongs).
type TypeError struct {
	Offset int
	Msg    string
}

func (e *TypeError) Error() string { return e.Msg }

func (s *Scanner) syntax(format string, args ...any) error {
	return &SyntaxError{Offset: s.i, Msg: fmt.Sprintf(format, args...)}
}

// SkipSpace advances past JSON whitespace.
func (s *Scanner) SkipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.SkipSpace()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Expect consumes the byte c (after whitespace) or fails.
func (s *Scanner) Expect(c byte) error {
	if s.Peek() != c {
		if s.i >= len(s.b) {
			return s.syntax("unexpected end of input, expected %q", c)
		}
		return s.syntax("expected %q, found %q", c, s.b[s.i])
	}
	s.i++
	return nil
}

// End checks that only whitespace remains.
func (s *Scanner) End() error {
	s.SkipSpace()
	if s.i != len(s.b) {
		return s.syntax("unexpected data after the JSON value")
	}
	return nil
}

// Kind names the next value's JSON kind for error messages.
func (s *Scanner) Kind() string {
	switch c := s.Peek(); {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	// A literal is only what it looks like when it is whole: "tru" or
	// "feature1=0.5" (a form body) is malformed JSON (400), not a boolean of the
	// wrong kind (422).
	case c == 't' && s.literalAhead("true"), c == 'f' && s.literalAhead("false"):
		return "boolean"
	case c == 'n' && s.literalAhead("null"):
		return "null"
	case c == '-' || (c >= '0' && c <= '9'), s.nonFiniteAhead() != "":
		return "number"
	case c == 0:
		return "end of input"
	}
	return "invalid value"
}

// numberSpan returns the bytes of the number at the cursor, checked against the
// JSON grammar, and advances past it.
func (s *Scanner) numberSpan() ([]byte, bool, error) {
	s.SkipSpace()
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return nil, false, s.syntax("expected a number")
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false, s.syntax("expected a number")
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.syntax("expected a digit after the decimal point")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.syntax("expected a digit in the exponent")
		}
	}
	s.i = i
	return b[start:i], integer, nil
}

// bytesString views b as a string without copying; the string must not outlive
// the call it is passed to (strconv does not keep it).
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// nonFinite are the literals Python's json module writes for NaN and ±Inf, which
// Float accepts (see AppendNonFinite).
var nonFinite = [...]struct {
	word  string
	value float64
}{{"NaN", math.NaN()}, {"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}}

// nonFiniteAhead returns the non-finite literal at the cursor, whole, or "".
func (s *Scanner) nonFiniteAhead() string {
	switch s.Peek() {
	case 'N', 'I', '-':
		for _, nf := range nonFinite {
			if s.literalAhead(nf.word) {
				return nf.word
			}
		}
	}
	return ""
}

// Float reads a number as float64, including the literals NaN, Infinity and
// -Infinity, and null as NaN: a missing value, as pandas' to_json and most
// clients write one. A string or boolean is a TypeError.
func (s *Scanner) Float() (float64, error) {
	if s.Peek() == 'n' && s.literalAhead("null") {
		s.literal("null")
		return math.NaN(), nil
	}
	for _, nf := range nonFinite {
		if s.nonFiniteAhead() == nf.word {
			s.literal(nf.word)
			return nf.value, nil
		}
	}
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return 0, s.typeErr("a number")
	}
	span, _, err := s.numberSpan()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(bytesString(span), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, &TypeError{Offset: s.i, Msg: fmt.Sprintf("number %s is out of range", span)}
		}
		return 0, s.syntax("bad number %q", span)
	}
	return f, nil
}

// Int reads an integer number as int64. Fractions and exponents are TypeErrors,
// unless the value is whole (1.0, 1e3), which JSON encoders of floats produce.
func (s *Scanner) Int() (int64, error) {
	if w := s.nonFiniteAhead(); w != "" {
		return 0, &TypeError{Offset: s.i, Msg: "expected an integer, got " + w}
	}
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return 0, s.typeErr("an integer")
	}
	start := s.i
	span, integer, err := s.numberSpan()
	if err != nil {
		return 0, err
	}
	if integer {
		v, err := strconv.ParseInt(bytesString(span), 10, 64)
		if err != nil {
			return 0, &TypeError{Offset: start, Msg: fmt.Sprintf("integer %s is out of range", span)}
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(bytesString(span), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<63-1024 {
		return 0, &TypeError{Offset: start, Msg: fmt.Sprintf("expected an integer, got %s", span)}
	}
	return int64(f), nil
}

// Uint reads a non-negative integer.
func (s *Scanner) Uint() (uint64, error) {
	if w := s.nonFiniteAhead(); w != "" {
		return 0, &TypeError{Offset: s.i, Msg: "expected a non-negative integer, got " + w}
	}
	if c := s.Peek(); c < '0' || c > '9' {
		if c == '-' {
			return 0, &TypeError{Offset: s.i, Msg: "expected a non-negative integer"}
		}
		return 0, s.typeErr("a non-negative integer")
	}
	start := s.i
	span, integer, err := s.numberSpan()
	if err != nil {
		return 0, err
	}
	if integer {
		v, err := strconv.ParseUint(bytesString(span), 10, 64)
		if err != nil {
			return 0, &TypeError{Offset: start, Msg: fmt.Sprintf("integer %s is out of range", span)}
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(bytesString(span), 64)
	if err != nil || f != math.Trunc(f) || f >= 1<<64 {
		return 0, &TypeError{Offset: start, Msg: fmt.Sprintf("expected an integer, got %s", span)}
	}
	return uint64(f), nil
}

// Bool reads true or false.
func (s *Scanner) Bool() (bool, error) {
	switch s.Peek() {
	case 't':
		if s.literal("true") {
			return true, nil
		}
	case 'f':
		if s.literal("false") {
			return false, nil
		}
	default:
		return false, s.typeErr("a boolean")
	}
	return false, s.syntax("invalid literal")
}

// Null consumes null if it is next and reports whether it did.
func (s *Scanner) Null() bool {
	if s.Peek() == 'n' && s.literal("null") {
		return true
	}
	return false
}

func (s *Scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// literalAhead reports whether word, followed by a delimiter or the end, is at the
// cursor (after Peek has skipped space); it does not move.
func (s *Scanner) literalAhead(word string) bool {
	end := s.i + len(word)
	if end > len(s.b) || string(s.b[s.i:end]) != word {
		return false
	}
	if end == len(s.b) {
		return true
	}
	switch s.b[end] {
	case ' ', '\t', '\n', '\r', ',', ']', '}', ':':
		return true
	}
	return false
}

func (s *Scanner) typeErr(want string) error {
	kind := s.Kind()
	if kind == "invalid value" || kind == "end of input" {
		return s.syntax("expected %s, found %s", want, kind)
	}
	return &TypeError{Offset: s.i, Msg: fmt.Sprintf("expected %s, got %s", want, kind)}
}

// String reads a JSON string and returns its decoded bytes. When the string has
// no escapes the result aliases the input buffer (no copy).
func (s *Scanner) String() ([]byte, error) {
	if s.Peek() != '"' {
		return nil, s.typeErr("a string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			if !utf8.Valid(out) {
				return []byte(toValidUTF8(out)), nil
			}
			return out, nil
		case c == '\\':
			return s.stringSlow(start)
		case c < 0x20:
			return nil, s.syntax("control character in string")
		}
		s.i++
	}
	return nil, s.syntax("unterminated string")
}

func toValidUTF8(b []byte) string {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = append(out, r)
		b = b[n:]
	}
	return string(out)
}

func (s *Scanner) stringSlow(start int) ([]byte, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return []byte(toValidUTF8(out)), nil
			}
			return out, nil
		case c < 0x20:
			return nil, s.syntax("control character in string")
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, s.syntax("unterminated string")
		}
		var n int
		var ok bool
		if out, n, ok = AppendEscape(out, s.b[s.i+1:]); !ok {
			esc := s.b[s.i+1]
			s.i += 2 // the error points past the escape's letter
			if esc == 'u' {
				return nil, s.syntax("bad \\u escape")
			}
			return nil, s.syntax("bad escape \\%c", esc)
		}
		s.i += 1 + n
	}
	return nil, s.syntax("unterminated string")
}

// AppendEscape decodes the JSON escape at the start of b (just after its
// backslash) onto dst and returns how many bytes of b it used, or a message saying
// what is wrong with it. A \u escape that is half of a surrogate pair takes its
// other half when that follows; a lone or mismatched half becomes U+FFFD and the
// bytes after it are read as they stand. ok is false for an unknown escape letter
// or a \u without four hex digits (b is then empty or b[0] says which); callers
// word the error themselves.
func AppendEscape(dst, b []byte) (out []byte, n int, ok bool) {
	if len(b) == 0 {
		return dst, 0, false
	}
	switch c := b[0]; c {
	case '"', '\\', '/':
		return append(dst, c), 1, true
	case 'b':
		return append(dst, '\b'), 1, true
	case 'f':
		return append(dst, '\f'), 1, true
	case 'n':
		return append(dst, '\n'), 1, true
	case 'r':
		return append(dst, '\r'), 1, true
	case 't':
		return append(dst, '\t'), 1, true
	case 'u':
		r, ok := Hex4(b[1:])
		if !ok {
			return dst, 0, false
		}
		n := 5
		if utf16.IsSurrogate(r) {
			pair := utf8.RuneError
			if len(b) >= 7 && b[5] == '\\' && b[6] == 'u' {
				if lo, ok := Hex4(b[7:]); ok {
					pair = utf16.DecodeRune(r, lo)
				}
			}
			if pair != utf8.RuneError {
				n += 6
			}
			r = pair
		}
		return utf8.AppendRune(dst, r), n, true
	}
	return dst, 0, false
}

// Hex4 decodes the four hex digits of a \uXXXX escape at the start of b.
func Hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Skip skips one whole value of any kind, checking its syntax.
func (s *Scanner) Skip() error { return s.skip(0) }

const maxDepth = 64

func (s *Scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.syntax("nested more than %d deep", maxDepth)
	}
	switch s.Peek() {
	case '{':
		s.i++
		if s.Peek() == '}' {
			s.i++
			return nil
		}
		for {
			if _, err := s.String(); err != nil {
				return err
			}
			if err := s.Expect(':'); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if more, err := s.More('}'); err != nil || !more {
				return err
			}
		}
	case '[':
		s.i++
		if s.Peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if more, err := s.More(']'); err != nil || !more {
				return err
			}
		}
	case '"':
		_, err := s.String()
		return err
	case 't', 'f':
		_, err := s.Bool()
		return err
	case 'n':
		if s.Null() {
			return nil
		}
		return s.syntax("invalid literal")
	default:
		if w := s.nonFiniteAhead(); w != "" {
			s.literal(w)
			return nil
		}
		_, _, err := s.numberSpan()
		return err
	}
}

// More is called after an element of an array or object: it consumes a ',' and
// reports true, or consumes the closing byte and reports false.
func (s *Scanner) More(closing byte) (bool, error) {
	switch s.Peek() {
	case ',':
		s.i++
		return true, nil
	case closing:
		s.i++
		return false, nil
	case 0:
		return false, s.syntax("unexpected end of input, expected ',' or %q", closing)
	}
	return false, s.syntax("expected ',' or %q, found %q", closing, s.b[s.i])
}

// ObjectStart consumes '{' and reports whether the object has members.
func (s *Scanner) ObjectStart() (bool, error) {
	if s.Peek() != '{' {
		return false, s.typeErr("an object")
	}
	s.i++
	if s.Peek() == '}' {
		s.i++
		return false, nil
	}
	return true, nil
}

// Key reads a member name and the ':' after it.
func (s *Scanner) Key() ([]byte, error) {
	k, err := s.String()
	if err != nil {
		return nil, err
	}
	return k, s.Expect(':')
}

// ArrayStart consumes '[' and reports whether the array has elements.
func (s *Scanner) ArrayStart() (bool, error) {
	if s.Peek() != '[' {
		return false, s.typeErr("an array")
	}
	s.i++
	if s.Peek() == ']' {
		s.i++
		return false, nil
	}
	return true, nil
}

// Sub returns a scanner over b[start:end] of this scanner's input, for reading a
// value again once its surroundings are known.
func (s *Scanner) Sub(start, end int) *Scanner { return &Scanner{b: s.b[start:end]} }

// Remaining is the number of unread bytes.
func (s *Scanner) Remaining() int { return len(s.b) - s.i }
