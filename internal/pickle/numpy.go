package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// maxItemSize bounds a dtype's element size; numpy's own limit is INT_MAX.
const maxItemSize = 1 << 30

// npReconstruct is numpy.core.multiarray._reconstruct(ndarray, (0,), b'b'): an
// empty placeholder that the following BUILD fills in.
func (d *decoder) npReconstruct(args Tuple) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("numpy _reconstruct takes 3 arguments, got %d", len(args))
	}
	if err := checkArrayClass(args[0]); err != nil {
		return nil, err
	}
	a := &NDArray{Dtype: &Dtype{Kind: 'i', ItemSize: 1}, Shape: []int{0}, Data: []byte{}}
	d.pending[a] = true
	return a, nil
}

func checkArrayClass(v any) error {
	g, ok := v.(Global)
	if ok {
		switch canonicalName(g.Module, g.Name) {
		case "numpy.ndarray", "numpy.memmap", "numpy.core.memmap.memmap":
			return nil
		}
	}
	return fmt.Errorf("array subclass %s is not supported (only numpy.ndarray)", TypeName(v))
}

// setArrayState applies ndarray.__setstate__((version, shape, dtype, is_fortran,
// data)): data is the raw bytes (in Fortran order when is_fortran) or, for object
// arrays, a list of the elements in C order.
func (d *decoder) setArrayState(a *NDArray, state any) error {
	t, ok := state.(Tuple)
	if !ok {
		return fmt.Errorf("ndarray state is a %s, not a tuple", d.typeName(state))
	}
	switch len(t) {
	case 5:
		if _, ok := t[0].(int64); !ok {
			return errors.New("ndarray state: version is not an int")
		}
		t = t[1:]
	case 4:
	default:
		return fmt.Errorf("ndarray state has %d items, want 4 or 5", len(t))
	}
	shape, err := d.shapeOf(t[0])
	if err != nil {
		return err
	}
	dt, ok := t[1].(*Dtype)
	if !ok {
		return fmt.Errorf("ndarray state: dtype is a %s", d.typeName(t[1]))
	}
	fortran, ok := t[2].(bool)
	if !ok {
		if i, isInt := t[2].(int64); isInt {
			fortran = i != 0
		} else {
			return fmt.Errorf("ndarray state: is_fortran is a %s", d.typeName(t[2]))
		}
	}
	out, err := d.makeArray(dt, shape, t[3], fortran)
	if err != nil {
		return err
	}
	*a = *out
	return nil
}

// makeArray checks data against dtype and shape and builds a C-ordered array.
func (d *decoder) makeArray(dt *Dtype, shape []int, data any, fortran bool) (*NDArray, error) {
	n, err := d.elementCount(dt, shape)
	if err != nil {
		return nil, err
	}
	// Freeze the dtype: a later BUILD must not change the layout of data that
	// was checked against it.
	d.built[dt] = true
	a := &NDArray{Dtype: dt, Shape: shape, pace: d.opts.Pacer}
	if dt.Kind == 'O' {
		items, ok := d.iterable(data)
		if !ok {
			return nil, fmt.Errorf("object array data is a %s, not a list", d.typeName(data))
		}
		if len(items) != n {
			return nil, fmt.Errorf("object array of shape %v holds %d elements, want %d", shape, len(items), n)
		}
		if err := d.charge(16 * n); err != nil {
			return nil, err
		}
		a.Objects = append(make([]any, 0, n), items...)
		return a, nil
	}
	raw, err := d.rawBytes(data)
	if err != nil {
		return nil, err
	}
	if len(raw) != n*dt.ItemSize {
		return nil, fmt.Errorf("array data is %d bytes, want %d for shape %v of %s", len(raw), n*dt.ItemSize, shape, dt)
	}
	if d.borrow && !(fortran && len(shape) > 1) && !bigEndian(dt) {
		// The bytes are used as they lie: no copy, and nothing to charge. The
		// capacity is cut so that an append can never write into the stream.
		a.Data = raw[:len(raw):len(raw)]
		return a, nil
	}
	if err := d.charge(len(raw)); err != nil {
		return nil, err
	}
	if fortran && len(shape) > 1 {
		a.Data = fortranToC(raw, shape, dt.ItemSize)
	} else {
		a.Data = append(make([]byte, 0, len(raw)), raw...)
	}
	return a, nil
}

// rawBytes accepts array data as bytes, or as a str that holds bytes as latin-1
// (Python 2 pickles read with encoding='latin1').
func (d *decoder) rawBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return d.encodeString(x, "latin1")
	}
	return nil, fmt.Errorf("array data is a %s, not bytes", d.typeName(v))
}

// shapeOf reads a shape tuple (or a single int).
func (d *decoder) shapeOf(v any) ([]int, error) {
	var items []any
	switch x := v.(type) {
	case Tuple:
		items = x
	case *List:
		items = x.Items
	case int64:
		items = []any{x}
	default:
		return nil, fmt.Errorf("shape is a %s, not a tuple", d.typeName(v))
	}
	if len(items) > 64 { // numpy's NPY_MAXDIMS is 32 (64 in numpy 2)
		return nil, fmt.Errorf("array has %d dimensions", len(items))
	}
	shape := make([]int, len(items))
	for i, it := range items {
		n, ok := it.(int64)
		if !ok || n < 0 || n > math.MaxInt {
			return nil, fmt.Errorf("bad array dimension %v", it)
		}
		shape[i] = int(n)
	}
	return shape, nil
}

// elementCount multiplies out a shape, refusing counts the budget cannot hold
// (which also rules out overflow). Zero-size elements still count one byte each,
// so that a 10¹²-element array of empty strings is refused too.
func (d *decoder) elementCount(dt *Dtype, shape []int) (int, error) {
	left := d.budget.Left()
	n := int64(1)
	for _, s := range shape {
		if s != 0 && n > left/int64(s) {
			return 0, fmt.Errorf("array of shape %v is larger than the data limit: %w", shape, ErrTooLarge)
		}
		n *= int64(s)
	}
	per := int64(max(dt.ItemSize, 1))
	if dt.Kind == 'O' {
		per = 16
	}
	if n > 0 && per > left/n || n > math.MaxInt {
		return 0, fmt.Errorf("array of shape %v of %s is larger than the data limit: %w", shape, dt, ErrTooLarge)
	}
	return int(n), nil
}

// fortranToC reorders column-major data to row-major.
func fortranToC(src []byte, shape []int, size int) []byte {
	dst := make([]byte, len(src))
	nd := len(shape)
	n := len(src) / max(size, 1)
	if n == 0 || size == 0 {
		return dst
	}
	// fstride[i] is how far apart (in elements) neighbours along axis i are in
	// Fortran order.
	fstride := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	idx := make([]int, nd)
	off := 0 // Fortran offset of idx, in elements
	for c := 0; c < n; c++ {
		copy(dst[c*size:(c+1)*size], src[off*size:(off+1)*size])
		// advance idx in C order (last axis fastest)
		for ax := nd - 1; ax >= 0; ax-- {
			idx[ax]++
			off += fstride[ax]
			if idx[ax] < shape[ax] {
				break
			}
			off -= fstride[ax] * idx[ax]
			idx[ax] = 0
		}
	}
	return dst
}

// npDtype is numpy.dtype(typestr, align, copy); BUILD gives it byte order and
// structure.
func (d *decoder) npDtype(args Tuple) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("numpy.dtype takes 1 to 3 arguments, got %d", len(args))
	}
	var spec string
	switch x := args[0].(type) {
	case string:
		spec = x
	case []byte:
		spec = string(x)
	default:
		return nil, fmt.Errorf("numpy.dtype of a %s", d.typeName(args[0]))
	}
	return parseTypestr(spec)
}

// parseTypestr reads numpy's dtype.__reduce__ spelling: kind then size, e.g. "f8",
// "b1", "U3" (characters), "V24", "O8", with an optional byte-order prefix.
func parseTypestr(spec string) (*Dtype, error) {
	s := spec
	dt := &Dtype{}
	if len(s) > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=') {
		dt.BigEndian = s[0] == '>'
		s = s[1:]
	}
	if len(s) < 2 {
		return nil, fmt.Errorf("dtype %q is not supported", spec)
	}
	size, err := strconv.Atoi(s[1:])
	if err != nil || size < 0 || size > maxItemSize/4 {
		return nil, fmt.Errorf("dtype %q is not supported", spec)
	}
	dt.Kind = s[0]
	switch dt.Kind {
	case 'b':
		if size != 1 {
			return nil, fmt.Errorf("dtype %q is not supported", spec)
		}
	case 'i', 'u':
		if size != 1 && size != 2 && size != 4 && size != 8 {
			return nil, fmt.Errorf("dtype %q is not supported", spec)
		}
	case 'f':
		if size != 2 && size != 4 && size != 8 && size != 12 && size != 16 {
			return nil, fmt.Errorf("dtype %q is not supported", spec)
		}
	case 'c':
		if size != 8 && size != 16 && size != 24 && size != 32 {
			return nil, fmt.Errorf("dtype %q is not supported", spec)
		}
	case 'O':
		if size != 8 && size != 4 {
			return nil, fmt.Errorf("dtype %q is not supported", spec)
		}
		size = 8
	case 'S', 'V':
	case 'U':
		size *= 4
	case 'M', 'm':
		return nil, fmt.Errorf("dtype %q (datetime) is not supported", spec)
	default:
		return nil, fmt.Errorf("dtype %q is not supported", spec)
	}
	dt.ItemSize = size
	return dt, nil
}

// setDtypeState applies dtype.__setstate__: (version, byteorder, subarray, names,
// fields, elsize, alignment, flags[, metadata]).
func (d *decoder) setDtypeState(dt *Dtype, state any) error {
	t, ok := state.(Tuple)
	if !ok {
		return fmt.Errorf("dtype state is a %s, not a tuple", d.typeName(state))
	}
	if len(t) < 7 || len(t) > 9 {
		return fmt.Errorf("dtype state has %d items, want 7 to 9", len(t))
	}
	order, ok := t[1].(string)
	if !ok || len(order) != 1 || !stringsContainsByte("<>|=", order[0]) {
		return fmt.Errorf("dtype state: bad byte order %v", t[1])
	}
	dt.BigEndian = order[0] == '>'
	if t[2] != nil {
		return errors.New("dtypes with a subarray are not supported")
	}
	elsize, ok1 := t[5].(int64)
	if !ok1 {
		return errors.New("dtype state: elsize is not an int")
	}
	switch dt.Kind {
	case 'V', 'S', 'U':
		// Flexible types take their size from the state (numpy writes -1 for
		// the others).
		if elsize < 0 || elsize > maxItemSize {
			return fmt.Errorf("dtype state: bad element size %d", elsize)
		}
		if dt.Kind == 'U' && elsize%4 != 0 {
			return fmt.Errorf("dtype state: unicode element size %d is not a multiple of 4", elsize)
		}
		dt.ItemSize = int(elsize)
	}
	if t[3] == nil && t[4] == nil {
		return nil
	}
	if dt.Kind != 'V' {
		return fmt.Errorf("dtype %s has fields", dt)
	}
	names, ok1 := t[3].(Tuple)
	fields, ok2 := t[4].(*Dict)
	if !ok1 || !ok2 {
		return errors.New("dtype state: names and fields must be a tuple and a dict")
	}
	dt.Fields = make([]Field, 0, len(names))
	for _, nv := range names {
		name, ok := nv.(string)
		if !ok {
			return fmt.Errorf("dtype field name is a %s", d.typeName(nv))
		}
		fv, ok := fields.Get(name)
		if !ok {
			return fmt.Errorf("dtype field %q is named but not described", name)
		}
		ft, ok := fv.(Tuple)
		if !ok || len(ft) < 2 || len(ft) > 3 {
			return fmt.Errorf("dtype field %q: want (dtype, offset[, title])", name)
		}
		fdt, ok := ft[0].(*Dtype)
		// Requiring the field's dtype to be complete (already built) keeps a
		// hostile stream from making a dtype contain itself.
		if !ok || !d.built[fdt] || fdt == dt {
			return fmt.Errorf("dtype field %q: bad dtype", name)
		}
		off, ok := ft[1].(int64)
		if !ok || off < 0 || off+int64(fdt.ItemSize) > int64(dt.ItemSize) {
			return fmt.Errorf("dtype field %q: offset %v outside a %d-byte record", name, ft[1], dt.ItemSize)
		}
		dt.Fields = append(dt.Fields, Field{Name: name, Dtype: fdt, Offset: int(off)})
	}
	return nil
}

func stringsContainsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// npScalar is numpy.core.multiarray.scalar(dtype, data): a numpy scalar, returned
// as the Go value of its kind.
func (d *decoder) npScalar(args Tuple) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("numpy scalar takes 1 or 2 arguments, got %d", len(args))
	}
	dt, ok := args[0].(*Dtype)
	if !ok {
		return nil, fmt.Errorf("numpy scalar: dtype is a %s", d.typeName(args[0]))
	}
	if dt.Kind == 'O' {
		if len(args) != 2 {
			return nil, errors.New("numpy object scalar without a value")
		}
		return args[1], nil
	}
	var raw []byte
	if len(args) == 2 {
		var err error
		if raw, err = d.rawBytes(args[1]); err != nil {
			return nil, err
		}
	}
	if len(raw) != dt.ItemSize {
		return nil, fmt.Errorf("numpy scalar of %s has %d bytes of data", dt, len(raw))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if dt.BigEndian {
		bo = binary.BigEndian
	}
	a := &NDArray{Dtype: dt, Shape: nil, Data: raw}
	switch dt.Kind {
	case 'b':
		return raw[0] != 0, nil
	case 'i':
		if err := a.checkNumeric(1); err != nil {
			return nil, err
		}
		v, err := a.Int64s()
		if err != nil {
			return nil, err
		}
		return v[0], nil
	case 'u':
		switch len(raw) {
		case 1:
			return uint64(raw[0]), nil
		case 2:
			return uint64(bo.Uint16(raw)), nil
		case 4:
			return uint64(bo.Uint32(raw)), nil
		case 8:
			return bo.Uint64(raw), nil
		}
	case 'f':
		if err := a.checkNumeric(1); err != nil {
			return nil, err
		}
		return a.elemFloat(raw, bo), nil
	case 'U':
		s, err := a.Strings()
		if err != nil {
			return nil, err
		}
		return s[0], nil
	case 'S':
		end := len(raw)
		for end > 0 && raw[end-1] == 0 {
			end--
		}
		return append([]byte{}, raw[:end]...), nil
	}
	return nil, fmt.Errorf("numpy scalar of %s is not supported", dt)
}

// npFromBuffer is numpy.core.numeric._frombuffer(buffer, dtype, shape, order),
// what numpy's __reduce_ex__ writes for contiguous arrays under protocol 5.
func (d *decoder) npFromBuffer(args Tuple) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("numpy _frombuffer takes 4 arguments, got %d", len(args))
	}
	dt, ok := args[1].(*Dtype)
	if !ok {
		return nil, fmt.Errorf("numpy _frombuffer: dtype is a %s", d.typeName(args[1]))
	}
	if dt.Kind == 'O' {
		return nil, errors.New("numpy _frombuffer of an object dtype")
	}
	shape, err := d.shapeOf(args[2])
	if err != nil {
		return nil, err
	}
	order, ok := args[3].(string)
	if !ok || (order != "C" && order != "F") {
		return nil, fmt.Errorf("numpy _frombuffer: bad order %v", args[3])
	}
	return d.makeArray(dt, shape, args[0], order == "F")
}

// bigEndian reports whether any part of dt is big-endian (toLittleEndian would
// then write to the array's bytes).
func bigEndian(dt *Dtype) bool {
	if dt.BigEndian {
		return true
	}
	for _, f := range dt.Fields {
		if bigEndian(f.Dtype) {
			return true
		}
	}
	return false
}

// toLittleEndian byte-swaps a big-endian array in place, as joblib.load does
// (joblib's _ensure_native_byte_order; this package treats little-endian as
// native). Structured arrays are swapped only when every field is big-endian,
// again as joblib does. The array's dtype is replaced, never modified, because
// dtypes are shared between arrays.
func toLittleEndian(a *NDArray) {
	dt := a.Dtype
	if dt.Kind == 'V' && len(dt.Fields) > 0 {
		for _, f := range dt.Fields {
			if !f.Dtype.BigEndian || swapUnit(f.Dtype) == 0 {
				return
			}
		}
		n := a.Len()
		for i := 0; i < n; i++ {
			rec := a.Data[i*dt.ItemSize : (i+1)*dt.ItemSize]
			for _, f := range dt.Fields {
				swapBytes(rec[f.Offset:f.Offset+f.Dtype.ItemSize], swapUnit(f.Dtype))
			}
		}
		le := *dt
		le.Fields = make([]Field, len(dt.Fields))
		for i, f := range dt.Fields {
			fd := *f.Dtype
			fd.BigEndian = false
			le.Fields[i] = Field{Name: f.Name, Dtype: &fd, Offset: f.Offset}
		}
		a.Dtype = &le
		return
	}
	unit := swapUnit(dt)
	if !dt.BigEndian || unit == 0 {
		return
	}
	swapBytes(a.Data, unit)
	le := *dt
	le.BigEndian = false
	a.Dtype = &le
}

// swapUnit is the size of the byte-order-dependent units of a dtype's elements,
// or 0 for dtypes that have no byte order (or that this package leaves alone).
func swapUnit(dt *Dtype) int {
	switch dt.Kind {
	case 'b', 'i', 'u', 'f':
		if dt.ItemSize > 1 {
			return dt.ItemSize
		}
	case 'c':
		return dt.ItemSize / 2
	case 'U':
		return 4
	}
	return 0
}

func swapBytes(b []byte, unit int) {
	for i := 0; i+unit <= len(b); i += unit {
		u := b[i : i+unit]
		for l, r := 0, unit-1; l < r; l, r = l+1, r-1 {
			u[l], u[r] = u[r], u[l]
		}
	}
}
