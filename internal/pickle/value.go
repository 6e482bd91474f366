package pickle

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/loadpace"
)

// Tuple is a Python tuple.
type Tuple []any

// List is a Python list. It is a pointer type because a list can be referenced from
// the memo before it is filled (APPENDS after MEMOIZE).
type List struct{ Items []any }

// Dict is a Python dict in insertion order.
type Dict struct {
	Keys   []any
	Values []any
}

// Get returns the value under a string key.
func (d *Dict) Get(key string) (any, bool) {
	for i, k := range d.Keys {
		if s, ok := k.(string); ok && s == key {
			return d.Values[i], true
		}
	}
	return nil, false
}

// Set inserts or replaces a value. Keys of types Go cannot compare (tuples,
// bytes, containers) are always appended: Python would hash them by value, but
// such keys do not occur in the attribute dicts this package is used for.
func (d *Dict) Set(key, value any) {
	if i := d.find(key); i >= 0 {
		d.Values[i] = value
		return
	}
	d.Keys = append(d.Keys, key)
	d.Values = append(d.Values, value)
}

// find returns the index of key, or -1. Only hashable keys are ever found.
func (d *Dict) find(key any) int {
	if !hashable(key) {
		return -1
	}
	for i, k := range d.Keys {
		if hashable(k) && k == key {
			return i
		}
	}
	return -1
}

// hashable reports whether a decoded value can be compared with == without a
// run-time panic, i.e. whether it can serve as a dict key here.
func hashable(v any) bool {
	switch v.(type) {
	case nil, bool, int64, uint64, float64, string, Global:
		return true
	}
	return false
}

// Global is a reference to an allowed class or function, e.g. a class stored as an
// attribute value.
type Global struct{ Module, Name string }

func (g Global) String() string { return g.Module + "." + g.Name }

// Object is an instance of an allowed class: the arguments it was constructed with
// (NEWOBJ/REDUCE) and the state it was given (BUILD), recorded, never interpreted.
type Object struct {
	Module, Name string
	Args         []any
	// Kwargs are NEWOBJ_EX's keyword arguments (nil otherwise).
	Kwargs *Dict
	// DictItems are the items an instance of a dict subclass was given with
	// SETITEM(S) (nil otherwise).
	DictItems *Dict
	// State is the BUILD argument: usually a *Dict of attributes; for classes with
	// __slots__ a Tuple{dict-or-nil, slots *Dict}; anything else for classes with a
	// custom __setstate__.
	State any
}

// Class is the fully-qualified class name, e.g.
// "sklearn.linear_model._logistic.LogisticRegression".
func (o *Object) Class() string { return o.Module + "." + o.Name }

// Attrs returns the instance attributes: the state dict, merged with slot values
// when the state is a (dict, slots) tuple. Nil if the state has no dict.
func (o *Object) Attrs() *Dict {
	switch s := o.State.(type) {
	case *Dict:
		return s
	case Tuple:
		out := &Dict{}
		for _, part := range s {
			if d, ok := part.(*Dict); ok {
				for i, k := range d.Keys {
					out.Set(k, d.Values[i])
				}
			}
		}
		return out
	}
	return nil
}

// Attr returns one attribute.
func (o *Object) Attr(name string) (any, bool) {
	d := o.Attrs()
	if d == nil {
		return nil, false
	}
	return d.Get(name)
}

func (o *Object) attr(name string) (any, error) {
	v, ok := o.Attr(name)
	if !ok {
		return nil, fmt.Errorf("%s: attribute %s is missing", o.Name, name)
	}
	return v, nil
}

// Float returns a numeric attribute as float64 (Python int, float or numpy scalar).
func (o *Object) Float(name string) (float64, error) {
	v, err := o.attr(name)
	if err != nil {
		return 0, err
	}
	f, ok := ToFloat(v)
	if !ok {
		return 0, fmt.Errorf("%s.%s: want a number, got %s", o.Name, name, TypeName(v))
	}
	return f, nil
}

// Int returns an integer attribute.
func (o *Object) Int(name string) (int64, error) {
	v, err := o.attr(name)
	if err != nil {
		return 0, err
	}
	i, ok := ToInt(v)
	if !ok {
		return 0, fmt.Errorf("%s.%s: want an integer, got %s", o.Name, name, TypeName(v))
	}
	return i, nil
}

// String returns a str attribute.
func (o *Object) String(name string) (string, error) {
	v, err := o.attr(name)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s: want a string, got %s", o.Name, name, TypeName(v))
	}
	return s, nil
}

// Array returns an ndarray attribute.
func (o *Object) Array(name string) (*NDArray, error) {
	v, err := o.attr(name)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*NDArray)
	if !ok {
		return nil, fmt.Errorf("%s.%s: want an array, got %s", o.Name, name, TypeName(v))
	}
	return a, nil
}

// Object returns an attribute that is an allowed class instance.
func (o *Object) Object(name string) (*Object, error) {
	v, err := o.attr(name)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(*Object)
	if !ok {
		return nil, fmt.Errorf("%s.%s: want an object, got %s", o.Name, name, TypeName(v))
	}
	return obj, nil
}

// Items returns a list or tuple attribute's elements.
func (o *Object) Items(name string) ([]any, error) {
	v, err := o.attr(name)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case *List:
		return s.Items, nil
	case Tuple:
		return s, nil
	case *NDArray:
		if s.Dtype.Kind == 'O' {
			return s.Objects, nil
		}
	}
	return nil, fmt.Errorf("%s.%s: want a list, got %s", o.Name, name, TypeName(v))
}

// ToFloat converts a Python/numpy number to float64.
func ToFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case *NDArray: // a 0-d array
		if f, err := x.Float64s(); err == nil && len(f) == 1 {
			return f[0], true
		}
	}
	return 0, false
}

// ToInt converts a Python/numpy integer to int64.
func ToInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64: // numpy sometimes stores counts as floats; accept exact ones
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

// TypeName names a decoded value's Python type for error messages.
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, uint64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *NDArray:
		return "ndarray(" + x.Dtype.String() + ")"
	case *Dtype:
		return "dtype"
	case *Object:
		return x.Class()
	case Global:
		return x.String()
	}
	return fmt.Sprintf("%T", v)
}

// Dtype is a numpy dtype.
type Dtype struct {
	// Kind is numpy's kind character: 'b' bool, 'i' signed, 'u' unsigned, 'f' float,
	// 'U' unicode (UTF-32), 'S' bytes, 'O' object, 'V' void/structured.
	Kind byte
	// ItemSize is the element size in bytes.
	ItemSize int
	// BigEndian is true for '>' byte order.
	BigEndian bool
	// Fields of a structured dtype, in declaration order.
	Fields []Field
}

// Field is one named field of a structured dtype.
type Field struct {
	Name   string
	Dtype  *Dtype
	Offset int
}

// String is numpy's dtype.str, e.g. "<f8".
func (d *Dtype) String() string {
	if d == nil {
		return "?"
	}
	order := byte('<')
	if d.BigEndian {
		order = '>'
	}
	if d.ItemSize <= 1 || d.Kind == 'O' || d.Kind == 'S' || d.Kind == 'V' {
		order = '|'
	}
	switch d.Kind {
	case 'O':
		return "|O"
	case 'U': // numpy counts characters, not bytes
		return fmt.Sprintf("%cU%d", order, d.ItemSize/4)
	}
	return fmt.Sprintf("%c%c%d", order, d.Kind, d.ItemSize)
}

// NDArray is a numpy array. Numeric and structured arrays keep their raw bytes in
// C order (the decoder converts Fortran-ordered arrays); object arrays keep their
// elements in Objects.
type NDArray struct {
	Dtype   *Dtype
	Shape   []int
	Data    []byte
	Objects []any
	// pace is the load's pacer: converting a decoded array is a checkpoint.
	pace *loadpace.Pacer
}

// Len is the number of elements.
func (a *NDArray) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

func (a *NDArray) order() binary.ByteOrder {
	if a.Dtype.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Float64s converts every element of a numeric array to float64.
func (a *NDArray) Float64s() ([]float64, error) {
	n := a.Len()
	if a.Dtype.Kind == 'O' {
		if err := a.checkObjects(n); err != nil {
			return nil, err
		}
	}
	out := make([]float64, n)
	if a.Dtype.Kind == 'O' {
		for i, v := range a.Objects {
			f, ok := ToFloat(v)
			if !ok {
				return nil, fmt.Errorf("array element %d is %s, not a number", i, TypeName(v))
			}
			out[i] = f
		}
		return out, nil
	}
	return out, a.floatsInto(out, 0, a.Dtype.ItemSize)
}

// floatsInto converts len(out) elements that start at byte offset off, stride
// bytes apart (ItemSize for a plain array, the record size for a field of a
// structured one).
func (a *NDArray) floatsInto(out []float64, off, stride int) error {
	return paced(a, len(out), off, stride, func(lo, hi, off int) error { return a.floatsChunk(out[lo:hi], off, stride) })
}

// paceChunk is how many elements a conversion handles between two of the load
// pacer's checkpoints: a few tens of microseconds.
const paceChunk = 1 << 14

// paced runs convert over n elements in chunks, pausing at the array's load
// pacer before each (the conversions are most of an estimator's build, one
// big array can take many milliseconds).
func paced(a *NDArray, n, off, stride int, convert func(lo, hi, off int) error) error {
	if err := a.checkNumericLayout(n, off, stride); err != nil {
		return err
	}
	for lo := 0; ; lo += paceChunk {
		a.pace.Pause()
		hi := min(lo+paceChunk, n)
		if err := convert(lo, hi, off+lo*stride); err != nil {
			return err
		}
		if hi == n {
			return nil
		}
	}
}

func (a *NDArray) floatsChunk(out []float64, off, stride int) error {
	n, sz := len(out), a.Dtype.ItemSize
	if err := a.checkNumericLayout(n, off, stride); err != nil {
		return err
	}
	if a.Dtype.Kind == 'f' && sz == 8 && !a.Dtype.BigEndian {
		// The common case (every float64 array of a model) without the
		// per-element dispatch: a big forest's load spends its time here.
		for i := range out {
			p := off + i*stride
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(a.Data[p : p+8]))
		}
		return nil
	}
	bo := a.order()
	for i := range out {
		p := off + i*stride
		out[i] = a.elemFloat(a.Data[p:p+sz], bo)
	}
	return nil
}

// Int64s converts every element of an integer or bool array (or an object array
// of ints) to int64.
func (a *NDArray) Int64s() ([]int64, error) {
	n := a.Len()
	if a.Dtype.Kind == 'O' {
		if err := a.checkObjects(n); err != nil {
			return nil, err
		}
	}
	out := make([]int64, n)
	if a.Dtype.Kind == 'O' {
		for i, v := range a.Objects {
			x, ok := ToInt(v)
			if !ok {
				return nil, fmt.Errorf("array element %d is %s, not an integer", i, TypeName(v))
			}
			out[i] = x
		}
		return out, nil
	}
	return out, a.intsInto(out, 0, a.Dtype.ItemSize)
}

// intsInto is floatsInto for integers.
func (a *NDArray) intsInto(out []int64, off, stride int) error {
	if a.Dtype.Kind == 'f' {
		return fmt.Errorf("array of %s is not integer", a.Dtype)
	}
	return paced(a, len(out), off, stride, func(lo, hi, off int) error { return a.intsChunk(out[lo:hi], off, stride) })
}

func (a *NDArray) intsChunk(out []int64, off, stride int) error {
	n := len(out)
	if err := a.checkNumericLayout(n, off, stride); err != nil {
		return err
	}
	bo, sz := a.order(), a.Dtype.ItemSize
	if (a.Dtype.Kind == 'i' || a.Dtype.Kind == 'u') && sz == 8 && !a.Dtype.BigEndian {
		// int64 and uint64 (node indices, feature numbers): read as they lie,
		// through the concrete byte order so that the read inlines.
		for i := range out {
			p := off + i*stride
			out[i] = int64(binary.LittleEndian.Uint64(a.Data[p : p+8]))
		}
		return nil
	}
	for i := range out {
		p := off + i*stride
		out[i] = int64(a.elemFloat(a.Data[p:p+sz], bo))
	}
	return nil
}

// Strings returns the elements of a str/bytes array, or of an object array of
// str, as Go strings (numpy's 'U' arrays are UTF-32, NUL-padded).
func (a *NDArray) Strings() ([]string, error) {
	n := a.Len()
	if a.Dtype.Kind == 'O' {
		if err := a.checkObjects(n); err != nil {
			return nil, err
		}
	}
	out := make([]string, n)
	switch a.Dtype.Kind {
	case 'O':
		for i, v := range a.Objects {
			switch s := v.(type) {
			case string:
				out[i] = s
			case []byte:
				out[i] = string(s)
			default:
				return nil, fmt.Errorf("array element %d is %s, not a string", i, TypeName(v))
			}
		}
	case 'U':
		sz := a.Dtype.ItemSize
		if len(a.Data) < n*sz {
			return nil, fmt.Errorf("array data truncated")
		}
		bo := a.order()
		for i := range out {
			var rs []rune
			for j := 0; j+4 <= sz; j += 4 {
				r := bo.Uint32(a.Data[i*sz+j:])
				if r == 0 {
					break
				}
				rs = append(rs, rune(r))
			}
			out[i] = string(rs)
		}
	case 'S':
		sz := a.Dtype.ItemSize
		if len(a.Data) < n*sz {
			return nil, fmt.Errorf("array data truncated")
		}
		for i := range out {
			b := a.Data[i*sz : (i+1)*sz]
			end := len(b)
			for end > 0 && b[end-1] == 0 {
				end--
			}
			out[i] = string(b[:end])
		}
	default:
		return nil, fmt.Errorf("array of %s does not hold strings", a.Dtype)
	}
	return out, nil
}

// Field extracts one field of a structured array as an array of its own.
func (a *NDArray) Field(name string) (*NDArray, error) {
	for _, f := range a.Dtype.Fields {
		if f.Name != name {
			continue
		}
		n, sz, fsz := a.Len(), a.Dtype.ItemSize, f.Dtype.ItemSize
		if f.Offset+fsz > sz || len(a.Data) < n*sz {
			return nil, fmt.Errorf("field %s: array data truncated", name)
		}
		data := make([]byte, n*fsz)
		for i := 0; i < n; i++ {
			copy(data[i*fsz:], a.Data[i*sz+f.Offset:i*sz+f.Offset+fsz])
		}
		return &NDArray{Dtype: f.Dtype, Shape: append([]int(nil), a.Shape...), Data: data, pace: a.pace}, nil
	}
	return nil, fmt.Errorf("structured array has no field %q", name)
}

// FieldFloat64s is Field(name).Float64s() without the intermediate copy of the
// field: for a tree's node records (hundreds of megabytes in a big forest) that
// copy is a fifth of what a load allocates.
func (a *NDArray) FieldFloat64s(name string) ([]float64, error) {
	view, off, err := a.fieldView(name)
	if err != nil {
		return nil, err
	}
	out := make([]float64, a.Len())
	return out, view.floatsInto(out, off, a.Dtype.ItemSize)
}

// FieldInt64s is Field(name).Int64s() without the intermediate copy.
func (a *NDArray) FieldInt64s(name string) ([]int64, error) {
	view, off, err := a.fieldView(name)
	if err != nil {
		return nil, err
	}
	out := make([]int64, a.Len())
	return out, view.intsInto(out, off, a.Dtype.ItemSize)
}

// fieldView is the record array's data seen with the field's dtype, and the
// field's offset in each record.
func (a *NDArray) fieldView(name string) (*NDArray, int, error) {
	for _, f := range a.Dtype.Fields {
		if f.Name != name {
			continue
		}
		n, sz, fsz := a.Len(), a.Dtype.ItemSize, f.Dtype.ItemSize
		if f.Offset < 0 || f.Offset+fsz > sz || len(a.Data) < n*sz {
			return nil, 0, fmt.Errorf("field %s: array data truncated", name)
		}
		return &NDArray{Dtype: f.Dtype, Shape: a.Shape, Data: a.Data[:n*sz], pace: a.pace}, f.Offset, nil
	}
	return nil, 0, fmt.Errorf("structured array has no field %q", name)
}

// checkObjects guards the object-array accessors against an array whose
// Objects do not match its shape (the decoder never builds one; a caller might).
func (a *NDArray) checkObjects(n int) error {
	if len(a.Objects) != n {
		return fmt.Errorf("object array of shape %v holds %d elements", a.Shape, len(a.Objects))
	}
	return nil
}

// checkNumericLayout is checkNumeric for n elements at off, stride bytes apart.
func (a *NDArray) checkNumericLayout(n, off, stride int) error {
	if n == 0 {
		return a.checkNumeric(0)
	}
	if err := a.checkNumeric(0); err != nil {
		return err
	}
	if off < 0 || stride < a.Dtype.ItemSize || (n-1) > (len(a.Data)-off-a.Dtype.ItemSize)/stride || len(a.Data)-off < a.Dtype.ItemSize {
		return fmt.Errorf("array data truncated: %d bytes for %d elements of %s", len(a.Data), n, a.Dtype)
	}
	return nil
}

func (a *NDArray) checkNumeric(n int) error {
	switch a.Dtype.Kind {
	case 'b', 'i', 'u', 'f':
	default:
		return fmt.Errorf("array of %s is not numeric", a.Dtype)
	}
	sz := a.Dtype.ItemSize
	if a.Dtype.Kind == 'f' && sz != 2 && sz != 4 && sz != 8 {
		return fmt.Errorf("unsupported float size %d", sz)
	}
	if sz != 1 && sz != 2 && sz != 4 && sz != 8 {
		return fmt.Errorf("unsupported item size %d", sz)
	}
	if len(a.Data) < n*sz {
		return fmt.Errorf("array data truncated: %d bytes for %d elements of %s", len(a.Data), n, a.Dtype)
	}
	return nil
}

func (a *NDArray) elemFloat(b []byte, bo binary.ByteOrder) float64 {
	switch a.Dtype.Kind {
	case 'f':
		switch len(b) {
		case 2:
			return float64(halfToFloat32(bo.Uint16(b)))
		case 4:
			return float64(math.Float32frombits(bo.Uint32(b)))
		default:
			return math.Float64frombits(bo.Uint64(b))
		}
	case 'i':
		switch len(b) {
		case 1:
			return float64(int8(b[0]))
		case 2:
			return float64(int16(bo.Uint16(b)))
		case 4:
			return float64(int32(bo.Uint32(b)))
		default:
			return float64(int64(bo.Uint64(b)))
		}
	default: // 'u', 'b'
		switch len(b) {
		case 1:
			return float64(b[0])
		case 2:
			return float64(bo.Uint16(b))
		case 4:
			return float64(bo.Uint32(b))
		default:
			return float64(bo.Uint64(b))
		}
	}
}

func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0:
		f := float32(frac) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// ArrayElements counts the elements of the numeric arrays reachable from v, each
// array once however often the stream refers to it: what a caller that converts
// them all (a runtime building its model) is about to allocate, per element.
func ArrayElements(v any) int64 {
	var n int64
	Walk(v, func(x any) {
		if a, ok := x.(*NDArray); ok && a.Dtype != nil && a.Dtype.Kind != 'O' {
			n += int64(a.Len())
		}
	})
	return n
}

// Walk calls visit for v and every value reachable from it (object arguments
// and state, dict keys and values, list, tuple and object-array items), each
// array, object, dict and list once however often the stream refers to it, so
// that a cycle ends.
func Walk(v any, visit func(any)) {
	seen := map[any]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case *NDArray, *Object, *Dict, *List:
			if seen[x] {
				return
			}
			seen[x] = true
		}
		visit(v)
		switch x := v.(type) {
		case *NDArray:
			for _, o := range x.Objects {
				walk(o)
			}
		case *Object:
			for _, a := range x.Args {
				walk(a)
			}
			if x.Kwargs != nil {
				walk(x.Kwargs)
			}
			if x.DictItems != nil {
				walk(x.DictItems)
			}
			walk(x.State)
		case *Dict:
			for i := range x.Keys {
				walk(x.Keys[i])
				walk(x.Values[i])
			}
		case *List:
			for _, it := range x.Items {
				walk(it)
			}
		case Tuple:
			for _, it := range x {
				walk(it)
			}
		}
	}
	walk(v)
}
