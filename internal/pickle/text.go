package pickle

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// latin1ToString decodes ISO-8859-1 bytes: each byte is the code point of the
// same value.
func latin1ToString(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// stringToLatin1 is the inverse of latin1ToString: what Python's
// str.encode('latin1') gives, which is how numpy and Python 3 carry bytes through
// protocols 0–2.
func stringToLatin1(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		if r > 0xff { // also invalid UTF-8, which ranges as U+FFFD
			return nil, fmt.Errorf("string is not latin-1: character %U at byte %d", r, i)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// unquoteString undoes the repr() that protocol 0's STRING opcode carries: strip the
// quotes, then decode Python's backslash escapes (codecs.escape_decode).
func unquoteString(line []byte) ([]byte, error) {
	// Python 2 wrote a trailing '\r' on some platforms; Python 3's reader keeps
	// whatever precedes '\n', so only the quotes are checked.
	if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
		return nil, errors.New("the STRING opcode argument must be quoted")
	}
	return escapeDecode(line[1 : len(line)-1])
}

// escapeDecode implements Python's codecs.escape_decode.
func escapeDecode(s []byte) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New(`trailing \ in string`)
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'v':
			out = append(out, '\v')
		case 'a':
			out = append(out, '\a')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			out = append(out, byte(v))
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf(`invalid \x escape at position %d`, i-1)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf(`invalid \x escape at position %d`, i-1)
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			out = append(out, '\\', c)
		}
	}
	return out, nil
}

// decodeRawUnicodeEscape implements Python's raw-unicode-escape decoding, used by
// protocol 0's UNICODE opcode: bytes are latin-1 code points, except that \uXXXX
// and \UXXXXXXXX after an odd number of backslashes are escapes.
func decodeRawUnicodeEscape(s []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			sb.WriteRune(rune(c))
			i++
			continue
		}
		run := 0
		for i < len(s) && s[i] == '\\' {
			run++
			i++
		}
		if run%2 == 0 || i >= len(s) || (s[i] != 'u' && s[i] != 'U') {
			sb.WriteString(strings.Repeat(`\`, run))
			continue
		}
		sb.WriteString(strings.Repeat(`\`, run-1))
		digits := 4
		if s[i] == 'U' {
			digits = 8
		}
		i++
		if i+digits > len(s) {
			return "", errors.New(`truncated \uXXXX escape`)
		}
		var r rune
		for _, h := range s[i : i+digits] {
			v, ok := unhex(h)
			if !ok {
				return "", errors.New(`truncated \uXXXX escape`)
			}
			r = r<<4 | rune(v)
		}
		if r > utf8.MaxRune || r < 0 {
			return "", errors.New(`\Uxxxxxxxx out of range`)
		}
		i += digits
		// Lone surrogates are legal in a Python str but not in UTF-8; they are
		// replaced, as encoding/json would do.
		sb.WriteRune(r)
	}
	return sb.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
