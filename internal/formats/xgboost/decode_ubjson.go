package xgboost

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/tideserve/tide/internal/loadpace"
)

// parseUBJSON decodes one Universal Binary JSON document, the format XGBoost
// writes for files named *.ubj (and for every file from XGBoost 2.0 on unless
// the name ends in .json). Numbers are big-endian. Containers may carry a count
// ('#') and an element type ('$'); XGBoost writes every per-node array that way,
// and those arrive here as []float32, []float64 or []int64.
func parseUBJSON(b []byte, pace *loadpace.Pacer) (any, error) {
	p := &ubjParser{b: b, pace: pace}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.b) {
		return nil, p.errorf("%d bytes after the document", len(p.b)-p.i)
	}
	return v, nil
}

type ubjParser struct {
	b []byte
	i int
	// pace is the load's pacer, paused at every paceEvery values (elements of a
	// typed array count).
	pace   *loadpace.Pacer
	values int
}

// tick counts n values read and pauses at the pacer each paceEvery.
func (p *ubjParser) tick(n int) {
	before := p.values
	p.values += n
	if p.values/paceEvery != before/paceEvery {
		p.pace.Pause()
	}
}

func (p *ubjParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid UBJSON at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *ubjParser) need(n int) error {
	if n < 0 || len(p.b)-p.i < n {
		return p.errorf("unexpected end of file")
	}
	return nil
}

func (p *ubjParser) marker() (byte, error) {
	// 'N' is a no-op padding marker that may appear anywhere a value may.
	for {
		if err := p.need(1); err != nil {
			return 0, err
		}
		c := p.b[p.i]
		p.i++
		if c != 'N' {
			return c, nil
		}
	}
}

func (p *ubjParser) value(depth int) (any, error) {
	p.tick(1)
	m, err := p.marker()
	if err != nil {
		return nil, err
	}
	return p.valueOf(m, depth)
}

// payloadSize is the fixed size of a value of type m, or -1 when it varies.
func payloadSize(m byte) int {
	switch m {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	case 'Z', 'T', 'F':
		return 0
	}
	return -1
}

// valueOf reads the payload of a value whose type marker m has been read.
func (p *ubjParser) valueOf(m byte, depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested more than %d levels", maxDepth)
	}
	switch m {
	case 'Z':
		return nil, nil
	case 'T':
		return true, nil
	case 'F':
		return false, nil
	case 'i', 'U', 'I', 'l', 'L':
		return p.integer(m)
	case 'd':
		if err := p.need(4); err != nil {
			return nil, err
		}
		v := math.Float32frombits(binary.BigEndian.Uint32(p.b[p.i:]))
		p.i += 4
		return v, nil
	case 'D':
		if err := p.need(8); err != nil {
			return nil, err
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(p.b[p.i:]))
		p.i += 8
		return v, nil
	case 'C':
		if err := p.need(1); err != nil {
			return nil, err
		}
		p.i++
		return string(p.b[p.i-1 : p.i]), nil
	case 'S':
		return p.str()
	case 'H':
		s, err := p.str()
		return jsonNumber(s), err
	case '[':
		return p.array(depth)
	case '{':
		return p.object(depth)
	}
	p.i--
	return nil, p.errorf("unknown type marker %q", m)
}

func (p *ubjParser) integer(m byte) (int64, error) {
	n := payloadSize(m)
	if err := p.need(n); err != nil {
		return 0, err
	}
	b := p.b[p.i : p.i+n]
	p.i += n
	switch m {
	case 'i':
		return int64(int8(b[0])), nil
	case 'U':
		return int64(b[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// length reads a count or string length: an integer value with its marker.
func (p *ubjParser) length() (int, error) {
	m, err := p.marker()
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i', 'U', 'I', 'l', 'L':
	default:
		return 0, p.errorf("want an integer length, got marker %q", m)
	}
	n, err := p.integer(m)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(p.b)) {
		return 0, p.errorf("length %d does not fit in a %d-byte file", n, len(p.b))
	}
	return int(n), nil
}

func (p *ubjParser) str() (string, error) {
	n, err := p.length()
	if err != nil {
		return "", err
	}
	if err := p.need(n); err != nil {
		return "", err
	}
	s := string(p.b[p.i : p.i+n])
	p.i += n
	if !utf8.ValidString(s) {
		return "", p.errorf("string is not valid UTF-8")
	}
	return s, nil
}

// header reads an optimized container's '$' type and '#' count, if present.
// count is -1 for a container closed by ']' or '}'.
func (p *ubjParser) header() (elem byte, count int, err error) {
	count = -1
	if p.i < len(p.b) && p.b[p.i] == '$' {
		p.i++
		if err := p.need(1); err != nil {
			return 0, 0, err
		}
		elem = p.b[p.i]
		p.i++
		if p.i >= len(p.b) || p.b[p.i] != '#' {
			return 0, 0, p.errorf("typed container without a count")
		}
	}
	if p.i < len(p.b) && p.b[p.i] == '#' {
		p.i++
		if count, err = p.length(); err != nil {
			return 0, 0, err
		}
	}
	if elem != 0 {
		size := payloadSize(elem)
		if size == 0 || elem == 'N' {
			// Elements without a payload would let a tiny file claim a huge count.
			return 0, 0, p.errorf("container of type %q is not supported", elem)
		}
		if size > 0 && count > (len(p.b)-p.i)/size {
			return 0, 0, p.errorf("%d elements of type %q do not fit in the file", count, elem)
		}
	}
	return elem, count, nil
}

func (p *ubjParser) array(depth int) (any, error) {
	elem, count, err := p.header()
	if err != nil {
		return nil, err
	}
	if count >= 0 {
		switch elem {
		case 'd':
			out := make([]float32, count)
			for k := range out {
				out[k] = math.Float32frombits(binary.BigEndian.Uint32(p.b[p.i:]))
				p.i += 4
				p.tick(1)
			}
			return out, nil
		case 'D':
			out := make([]float64, count)
			for k := range out {
				out[k] = math.Float64frombits(binary.BigEndian.Uint64(p.b[p.i:]))
				p.i += 8
				p.tick(1)
			}
			return out, nil
		case 'i', 'U', 'I', 'l', 'L':
			out := make([]int64, count)
			for k := range out {
				out[k], _ = p.integer(elem) // room checked by header
				p.tick(1)
			}
			return out, nil
		}
	}
	arr := []any{}
	for k := 0; count < 0 || k < count; k++ {
		if count < 0 {
			if err := p.need(1); err != nil {
				return nil, err
			}
			if p.b[p.i] == ']' {
				p.i++
				return arr, nil
			}
		}
		var v any
		if elem != 0 {
			v, err = p.valueOf(elem, depth+1)
		} else {
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	return arr, nil
}

func (p *ubjParser) object(depth int) (any, error) {
	elem, count, err := p.header()
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	for k := 0; count < 0 || k < count; k++ {
		if count < 0 {
			if err := p.need(1); err != nil {
				return nil, err
			}
			if p.b[p.i] == '}' {
				p.i++
				return obj, nil
			}
		}
		key, err := p.str() // keys are strings without the 'S' marker
		if err != nil {
			return nil, err
		}
		var v any
		if elem != 0 {
			v, err = p.valueOf(elem, depth+1)
		} else {
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
	return obj, nil
}
