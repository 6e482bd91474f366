package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A Template is a request body with holes that are filled afresh for every
// request: {"feature1": {{rand -3 3}}, "feature2": {{randint 0 10}}}.
//
// Functions:
//
//	{{rand LO HI}}        a float drawn uniformly from [LO, HI)
//	{{randint LO HI}}     an integer drawn uniformly from [LO, HI]
//	{{normal MEAN SD}}    a float from a normal distribution
//	{{choice A B ...}}    one of the words, copied as written (quote strings yourself)
//	{{seq}}               0, 1, 2, ... per generator (distinct across workers is not promised)
//
// It is not text/template on purpose: a body is rendered for every request, and
// this renders with no reflection and one append per piece.
type Template struct {
	parts []part
}

type partKind uint8

const (
	partLiteral partKind = iota
	partRand
	partRandInt
	partNormal
	partChoice
	partSeq
)

type part struct {
	kind    partKind
	literal []byte
	a, b    float64
	lo, hi  int64
	choices [][]byte
}

// maxTemplateParts bounds what a template can ask for, so a hostile or mistaken
// file cannot make every request allocate without limit.
const maxTemplateParts = 1 << 16

// ParseTemplate reads a body template. Text outside {{ }} is copied as is.
func ParseTemplate(src string) (*Template, error) {
	t := &Template{}
	rest := src
	for rest != "" {
		open := strings.Index(rest, "{{")
		if open < 0 {
			t.parts = append(t.parts, part{kind: partLiteral, literal: []byte(rest)})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{kind: partLiteral, literal: []byte(rest[:open])})
		}
		closeAt := strings.Index(rest[open+2:], "}}")
		if closeAt < 0 {
			return nil, fmt.Errorf("template: %q at offset %d is never closed with }}", "{{", len(src)-len(rest)+open)
		}
		action := rest[open+2 : open+2+closeAt]
		p, err := parseAction(action)
		if err != nil {
			return nil, fmt.Errorf("template: {{%s}}: %w", action, err)
		}
		t.parts = append(t.parts, p)
		if len(t.parts) > maxTemplateParts {
			return nil, fmt.Errorf("template: more than %d pieces", maxTemplateParts)
		}
		rest = rest[open+2+closeAt+2:]
	}
	return t, nil
}

func parseAction(action string) (part, error) {
	fields := strings.Fields(action)
	if len(fields) == 0 {
		return part{}, fmt.Errorf("empty action (want rand, randint, normal, choice or seq)")
	}
	name, args := fields[0], fields[1:]
	switch name {
	case "rand", "normal":
		a, b, err := twoFloats(args)
		if err != nil {
			return part{}, err
		}
		if name == "rand" {
			if b < a {
				return part{}, fmt.Errorf("rand: HI %g is below LO %g", b, a)
			}
			return part{kind: partRand, a: a, b: b}, nil
		}
		if b < 0 {
			return part{}, fmt.Errorf("normal: standard deviation %g is negative", b)
		}
		return part{kind: partNormal, a: a, b: b}, nil
	case "randint":
		if len(args) != 2 {
			return part{}, fmt.Errorf("randint takes LO HI, got %d arguments", len(args))
		}
		lo, err1 := strconv.ParseInt(args[0], 10, 64)
		hi, err2 := strconv.ParseInt(args[1], 10, 64)
		if err1 != nil || err2 != nil {
			return part{}, fmt.Errorf("randint: LO and HI must be integers")
		}
		if hi < lo {
			return part{}, fmt.Errorf("randint: HI %d is below LO %d", hi, lo)
		}
		// hi-lo+1 must fit a uint64 draw; the full int64 span would overflow it.
		if uint64(hi-lo) == math.MaxUint64 {
			return part{}, fmt.Errorf("randint: range too wide")
		}
		return part{kind: partRandInt, lo: lo, hi: hi}, nil
	case "choice":
		if len(args) == 0 {
			return part{}, fmt.Errorf("choice needs at least one word")
		}
		p := part{kind: partChoice}
		for _, a := range args {
			p.choices = append(p.choices, []byte(a))
		}
		return p, nil
	case "seq":
		if len(args) != 0 {
			return part{}, fmt.Errorf("seq takes no arguments")
		}
		return part{kind: partSeq}, nil
	}
	return part{}, fmt.Errorf("unknown function %q (want rand, randint, normal, choice or seq)", name)
}

func twoFloats(args []string) (float64, float64, error) {
	if len(args) != 2 {
		return 0, 0, fmt.Errorf("takes two numbers, got %d arguments", len(args))
	}
	a, err1 := strconv.ParseFloat(args[0], 64)
	b, err2 := strconv.ParseFloat(args[1], 64)
	if err1 != nil || err2 != nil || isBad(a) || isBad(b) {
		return 0, 0, fmt.Errorf("arguments must be finite numbers")
	}
	return a, b, nil
}

func isBad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// Render appends one body to dst. rng is the caller's: generators keep one
// each, so rendering needs no lock.
func (t *Template) Render(dst []byte, rng *rand.Rand, seq uint64) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partLiteral:
			dst = append(dst, p.literal...)
		case partRand:
			dst = appendFloat(dst, p.a+(p.b-p.a)*rng.Float64())
		case partNormal:
			dst = appendFloat(dst, p.a+p.b*rng.NormFloat64())
		case partRandInt:
			span := uint64(p.hi-p.lo) + 1
			dst = strconv.AppendInt(dst, p.lo+int64(rng.Uint64N(span)), 10)
		case partChoice:
			dst = append(dst, p.choices[rng.IntN(len(p.choices))]...)
		case partSeq:
			dst = strconv.AppendUint(dst, seq, 10)
		}
	}
	return dst
}

// appendFloat writes a float as JSON accepts it (no NaN or Inf can reach here:
// arguments are finite, and so are sums and products of them in practice; a
// non-finite result is written as 0 rather than as invalid JSON).
func appendFloat(dst []byte, f float64) []byte {
	if isBad(f) {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, f, 'g', 10, 64)
}
