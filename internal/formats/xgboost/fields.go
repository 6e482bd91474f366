package xgboost

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Reading the decoded document. Every value in a model file is untrusted: these
// helpers check kinds and ranges and say which field was wrong, so the builder
// that uses them never indexes out of range later.

// field returns obj[key]; a missing key is an error naming path.
func field(obj map[string]any, key, path string) (any, error) {
	v, ok := obj[key]
	if !ok {
		return nil, fmt.Errorf("%s.%s is missing", path, key)
	}
	return v, nil
}

// objectField returns a required nested object.
func objectField(obj map[string]any, key, path string) (map[string]any, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return nil, err
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s.%s: want an object, got %s", path, key, kindName(v))
	}
	return o, nil
}

// stringField returns a required string.
func stringField(obj map[string]any, key, path string) (string, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s: want a string, got %s", path, key, kindName(v))
	}
	return s, nil
}

// intParam reads an integer that XGBoost stores either as a number or, in its
// *_param objects, as a decimal string ("num_class": "3"). It must lie in
// [lo, hi].
func intParam(obj map[string]any, key, path string, lo, hi int64) (int64, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return 0, err
	}
	n, ok := toInt(v)
	if !ok {
		return 0, fmt.Errorf("%s.%s: want an integer, got %s", path, key, describe(v))
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s.%s is %d, want %d to %d", path, key, n, lo, hi)
	}
	return n, nil
}

// float32Param reads a float stored as a number or a decimal string
// ("base_score": "5E-1"), rounded once to float32 as XGBoost reads it.
func float32Param(obj map[string]any, key, path string) (float32, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return 0, err
	}
	f, ok := toFloat32(v)
	if !ok {
		return 0, fmt.Errorf("%s.%s: want a number, got %s", path, key, describe(v))
	}
	return f, nil
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case jsonNumber:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	case float32:
		if x == float32(math.Trunc(float64(x))) && math.Abs(float64(x)) < 1<<24 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func toFloat32(v any) (float32, bool) {
	switch x := v.(type) {
	case float32:
		return x, true
	case float64:
		return float32(x), true
	case int64:
		return float32(x), true
	case jsonNumber:
		f, err := strconv.ParseFloat(string(x), 32)
		return float32(f), err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 32)
		return float32(f), err == nil
	}
	return 0, false
}

// float32s reads a numeric array as float32s.
func float32s(obj map[string]any, key, path string) ([]float32, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return nil, err
	}
	switch a := v.(type) {
	case []float32:
		return a, nil
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	case []int64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	case []any:
		out := make([]float32, len(a))
		for i, x := range a {
			f, ok := toFloat32(x)
			if !ok || isString(x) {
				return nil, fmt.Errorf("%s.%s[%d]: want a number, got %s", path, key, i, describe(x))
			}
			out[i] = f
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s.%s: want an array of numbers, got %s", path, key, kindName(v))
}

// ints reads an integer array whose elements lie in [lo, hi].
func ints(obj map[string]any, key, path string, lo, hi int64) ([]int64, error) {
	v, err := field(obj, key, path)
	if err != nil {
		return nil, err
	}
	var out []int64
	switch a := v.(type) {
	case []int64:
		out = a
	case []any:
		out = make([]int64, len(a))
		for i, x := range a {
			n, ok := toInt(x)
			if !ok || isString(x) {
				return nil, fmt.Errorf("%s.%s[%d]: want an integer, got %s", path, key, i, describe(x))
			}
			out[i] = n
		}
	case []float32, []float64:
		return nil, fmt.Errorf("%s.%s: want an array of integers, got floats", path, key)
	default:
		return nil, fmt.Errorf("%s.%s: want an array of integers, got %s", path, key, kindName(v))
	}
	for i, n := range out {
		if n < lo || n > hi {
			return nil, fmt.Errorf("%s.%s[%d] is %d, want %d to %d", path, key, i, n, lo, hi)
		}
	}
	return out, nil
}

// stringList reads an optional array of strings; a missing key or null gives nil.
func stringList(obj map[string]any, key, path string) ([]string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s.%s: want an array of strings, got %s", path, key, kindName(v))
	}
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s.%s[%d]: want a string, got %s", path, key, i, kindName(x))
		}
		out[i] = s
	}
	return out, nil
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// kindName names a decoded value's JSON kind for error messages.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case string:
		return "a string"
	case jsonNumber, int64, float32, float64:
		return "a number"
	case map[string]any:
		return "an object"
	case []any, []float32, []float64, []int64:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// describe shows a scalar's value, or the kind of anything else.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case jsonNumber:
		return string(x)
	case int64, float32, float64:
		return fmt.Sprint(x)
	}
	return kindName(v)
}
