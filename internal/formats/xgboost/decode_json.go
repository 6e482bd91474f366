package xgboost

import (
	"fmt"
	"unicode/utf8"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/loadpace"
)

// The model document is decoded into a small tree of Go values shared by the JSON
// and UBJSON readers:
//
//	object → map[string]any     array → []any      string → string
//	number → jsonNumber (JSON text) or, from UBJSON, int64 / float32 / float64
//	true, false → bool          null → nil
//
// UBJSON's typed arrays (how XGBoost writes every per-node array) stay typed:
// []float32, []float64 or []int64, so a large model costs no boxing.
//
// Numbers from JSON keep their text because XGBoost's split thresholds are
// float32 values printed in shortest round-trip form: parsing the text straight
// to float32 (strconv.ParseFloat(s, 32)) is exact, while going through float64
// first could round twice.

// jsonNumber is a number as written in a JSON document. XGBoost writes NaN,
// Infinity and -Infinity as bare words (a categorical split's threshold is NaN),
// which are kept here as well.
type jsonNumber string

// maxDepth bounds nesting so that a hostile document cannot exhaust the stack.
// An XGBoost model nests six levels deep.
const maxDepth = 64

// parseJSON decodes one JSON document. Errors give the byte offset.
func parseJSON(b []byte, pace *loadpace.Pacer) (any, error) {
	p := &jsonParser{b: b, pace: pace}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, p.errorf("unexpected %s after the document", p.describe())
	}
	return v, nil
}

type jsonParser struct {
	b []byte
	i int
	// pace is the load's pacer, paused at every paceEvery values.
	pace   *loadpace.Pacer
	values int
}

// paceEvery is how many values the parsers read between two of the load
// pacer's checkpoints (well under its quantum).
const paceEvery = 4096

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

// describe names the byte at the cursor for an error message.
func (p *jsonParser) describe() string {
	if p.i >= len(p.b) {
		return "end of file"
	}
	return fmt.Sprintf("%q", p.b[p.i])
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.values++; p.values%paceEvery == 0 {
		p.pace.Pause()
	}
	if depth > maxDepth {
		return nil, p.errorf("nested more than %d levels", maxDepth)
	}
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of file")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.word("true"):
		return true, nil
	case p.word("false"):
		return false, nil
	case p.word("null"):
		return nil, nil
	case p.word("NaN"):
		return jsonNumber("NaN"), nil
	case p.word("Infinity"):
		return jsonNumber("Infinity"), nil
	}
	return nil, p.errorf("unexpected %s where a value belongs", p.describe())
}

// word consumes w if the input continues with it.
func (p *jsonParser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // '{'
	obj := map[string]any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("unexpected %s where an object key belongs", p.describe())
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("unexpected %s after object key %q", p.describe(), key)
		}
		p.i++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of file in an object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj, nil
		default:
			return nil, p.errorf("unexpected %s in an object", p.describe())
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // '['
	arr := []any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return arr, nil
	}
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of file in an array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr, nil
		default:
			return nil, p.errorf("unexpected %s in an array", p.describe())
		}
	}
}

// number scans a JSON number (or -Infinity) and keeps its text; the field that
// reads it decides whether it is an integer or a float32.
func (p *jsonParser) number() (any, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
		if p.word("Infinity") {
			return jsonNumber("-Infinity"), nil
		}
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, p.errorf("malformed number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	return jsonNumber(p.b[start:p.i]), nil
}

// str scans a string, cursor on the opening quote.
func (p *jsonParser) str() (string, error) {
	p.i++ // '"'
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := string(p.b[start:p.i])
			p.i++
			if !utf8.ValidString(s) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(out), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++ // '\\'
		if p.i >= len(p.b) {
			break
		}
		var n int
		var ok bool
		if out, n, ok = jsonwire.AppendEscape(out, p.b[p.i:]); !ok {
			e := p.b[p.i]
			p.i++
			if e == 'u' {
				return "", p.errorf("malformed \\u escape")
			}
			return "", p.errorf("unknown escape \\%c", e)
		}
		p.i += n
	}
	return "", p.errorf("unexpected end of file in a string")
}
