// Package jsonwire holds the small, allocation-free JSON pieces on the request hot
// path: a scanner that reads numbers, strings and (nested) arrays straight into
// typed slices, and number formatting, including Python's float repr so that
// answers are byte-for-byte what a FastAPI/Flask service returns.
package jsonwire

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendPyFloat appends f the way Python's json.dumps writes a float (float.__repr__):
// the shortest digits that round-trip, fixed notation for exponents in [-4, 16),
// scientific with at least two exponent digits otherwise, and a ".0" on whole
// numbers. NaN and ±Inf, which strict JSON cannot carry, are written as Python
// writes them: NaN, Infinity and -Infinity (see AppendNonFinite).
func AppendPyFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return AppendNonFinite(dst, f)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	// 'e' with -1 precision gives the shortest round-trip digits: d.ddddde±XX.
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	epos := 0
	for i, c := range s {
		if c == 'e' {
			epos = i
			break
		}
	}
	mant, expPart := s[:epos], s[epos+1:]
	exp, _ := strconv.Atoi(string(expPart))
	var digitBuf [24]byte
	digits := digitBuf[:0]
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	if neg {
		dst = append(dst, '-')
	}
	if exp < -4 || exp >= 16 {
		return appendScientific(dst, digits, exp)
	}
	if exp < 0 {
		dst = append(dst, "0."...)
		for i := 0; i < -exp-1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	intLen := exp + 1
	if len(digits) <= intLen {
		dst = append(dst, digits...)
		for i := len(digits); i < intLen; i++ {
			dst = append(dst, '0')
		}
		return append(dst, ".0"...)
	}
	dst = append(dst, digits[:intLen]...)
	dst = append(dst, '.')
	return append(dst, digits[intLen:]...)
}

// appendScientific writes d.ddde±XX as Python's repr does.
func appendScientific(dst, digits []byte, exp int) []byte {
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}

// AppendFloat appends f as a JSON number in Go's shortest form for its width
// (bits 32 or 64); NaN and ±Inf as AppendNonFinite writes them.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return AppendNonFinite(dst, f)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// AppendNonFinite writes NaN or ±Inf as the literals NaN, Infinity and -Infinity.
// Strict JSON has no such numbers; these are what Python's json module (and so
// most ML clients: json.loads, requests, pandas) writes and reads, and what
// Scanner.Float reads back. Writing null instead, as some servers do, loses the
// difference between "the model said NaN" and "no value", and a model that
// answers Inf for an outlier would look like one that answered nothing.
func AppendNonFinite(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case f > 0:
		return append(dst, "Infinity"...)
	}
	return append(dst, "-Infinity"...)
}

// AppendString appends s as a JSON string, escaping only what JSON requires (as
// Python's json.dumps with ensure_ascii=False does) and replacing invalid UTF-8
// with U+FFFD.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
