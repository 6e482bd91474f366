package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/tideserve/tide/internal/loadmem"
)

const highestProtocol = 5

var pythonNaN = math.Float64frombits(0x7ff8000000000000)

// maxDecimalDigits bounds the text of a protocol-0 integer, as Python 3.11 does
// (int_max_str_digits): converting a huge decimal string is quadratic.
const maxDecimalDigits = 4300

// Decode reads one pickle (or one uncompressed joblib stream) from r, within the
// memory budget (Options); use Load for files, which also undoes joblib's
// compression.
func Decode(r io.Reader, opts Options) (any, error) {
	opts = opts.withDefaults()
	b := opts.budget()
	data, err := readAllCharged(r, b, "pickle: stream")
	if err != nil {
		return nil, fmt.Errorf("pickle: read: %w", err)
	}
	return decodeCharged(data, opts, b, false)
}

// DecodeBytes decodes one pickle (or one uncompressed joblib stream) held in
// memory. Decoded values never alias data.
func DecodeBytes(data []byte, opts Options) (v any, err error) {
	opts = opts.withDefaults()
	b := opts.budget()
	if err := charge(b, int64(len(data)), fmt.Sprintf("pickle: stream of %d bytes", len(data))); err != nil {
		return nil, err
	}
	return decodeCharged(data, opts, b, false)
}

// decodeCharged decodes a stream whose own bytes b has already been charged for;
// with borrow, numeric arrays share data's bytes instead of copying them.
func decodeCharged(data []byte, opts Options, b *loadmem.Budget, borrow bool) (v any, err error) {
	// Every check below is explicit; this only turns a bug into an error rather
	// than a crash of the server that is loading an untrusted file.
	if catchPanics {
		defer func() {
			if r := recover(); r != nil {
				if isFault(r) {
					panic(r) // a mapped file that shrank: WhileMapped reports it
				}
				v, err = nil, fmt.Errorf("pickle: internal error decoding stream: %v", r)
			}
		}()
	}
	d := newDecoder(data, opts, b)
	d.borrow = borrow
	return d.run()
}

// catchPanics is switched off by the tests so that a bug shows as a panic.
var catchPanics = true

type decoder struct {
	opts Options
	data []byte
	pos  int
	// budget is the load's allowance, shared with the nested decoders a decoder
	// starts (joblib's object arrays are pickles inside the pickle).
	budget *loadmem.Budget

	stack []any
	marks []int // stack heights at each open MARK
	memo  memo

	// borrow lets numeric arrays share the stream's bytes (LoadFile): the
	// caller keeps the stream unchanged for as long as it reads the arrays.
	borrow bool

	// nested is true for the pickle joblib writes for an object array: it is a
	// plain pickle.load in joblib, so joblib's own wrappers are not honoured there.
	nested bool

	sets      map[*List]bool        // lists that stand for Python sets
	dictIndex map[*Dict]map[any]int // key positions of large dicts, for SETITEMS
	built     map[any]bool          // dtypes and arrays that have had their BUILD
	pending   map[*NDArray]bool     // arrays made by _reconstruct, awaiting BUILD
	wrappers  map[*Object]bool      // joblib NumpyArrayWrapper instances
}

func newDecoder(data []byte, opts Options, b *loadmem.Budget) *decoder {
	return &decoder{
		opts:      opts,
		data:      data,
		budget:    b,
		sets:      map[*List]bool{},
		dictIndex: map[*Dict]map[any]int{},
		built:     map[any]bool{},
		pending:   map[*NDArray]bool{},
		wrappers:  map[*Object]bool{},
	}
}

// charge takes n bytes from the allocation budget before they are allocated.
func (d *decoder) charge(n int) error {
	return charge(d.budget, int64(n), "decoded data")
}

// paceEvery is how many opcodes the decoder runs between the pacer's
// checkpoints: a few hundred microseconds of the slowest ones.
const paceEvery = 4096

func (d *decoder) run() (any, error) {
	for ops := 0; ; ops++ {
		if ops%paceEvery == paceEvery-1 {
			d.opts.Pacer.Pause()
		}
		if d.pos >= len(d.data) {
			return nil, fmt.Errorf("pickle: offset %d: no STOP opcode: %w", d.pos, ErrTruncated)
		}
		start := d.pos
		op := d.data[d.pos]
		d.pos++
		if op == opStop {
			v, err := d.pop()
			if err != nil {
				return nil, fmt.Errorf("pickle: STOP at offset %d: %w", start, err)
			}
			return v, nil
		}
		if err := d.step(op); err != nil {
			if start == 0 {
				if kind := compressionOf(d.data); kind != "" {
					return nil, fmt.Errorf("pickle: the stream is %s-compressed: use Load or LoadBytes", kind)
				}
			}
			var na *NotAllowedError
			if errors.As(err, &na) {
				return nil, fmt.Errorf("pickle: offset %d: %w", start, err)
			}
			return nil, fmt.Errorf("pickle: %s at offset %d: %w", opName(op), start, err)
		}
	}
}

// step executes one opcode (its byte already consumed).
func (d *decoder) step(op byte) error {
	switch op {
	case opMark:
		if len(d.marks) >= d.opts.MaxDepth {
			return fmt.Errorf("MARKs nested deeper than %d: %w", d.opts.MaxDepth, ErrTooLarge)
		}
		d.marks = append(d.marks, len(d.stack))
	case opPop:
		if len(d.stack) > d.floor() {
			d.stack = d.stack[:len(d.stack)-1]
			return nil
		}
		// Python's POP with an empty frame above a MARK discards the MARK.
		if len(d.marks) > 0 && d.marks[len(d.marks)-1] == len(d.stack) {
			d.marks = d.marks[:len(d.marks)-1]
			return nil
		}
		return errStackUnderflow
	case opPopMark:
		_, err := d.popMark()
		return err
	case opDup:
		v, err := d.peek()
		if err != nil {
			return err
		}
		d.push(v)

	case opNone:
		d.push(nil)
	case opNewTrue:
		d.push(true)
	case opNewFalse:
		d.push(false)
	case opInt:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		switch string(line) {
		case "00":
			d.push(false)
		case "01":
			d.push(true)
		default:
			v, err := parseDecimal(line)
			if err != nil {
				return err
			}
			d.push(v)
		}
	case opLong:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		line = bytes.TrimSuffix(line, []byte("L"))
		v, err := parseDecimal(line)
		if err != nil {
			return err
		}
		d.push(v)
	case opBinInt:
		b, err := d.read(4)
		if err != nil {
			return err
		}
		d.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		b, err := d.read(1)
		if err != nil {
			return err
		}
		d.push(int64(b[0]))
	case opBinInt2:
		b, err := d.read(2)
		if err != nil {
			return err
		}
		d.push(int64(binary.LittleEndian.Uint16(b)))
	case opLong1, opLong4:
		n, err := d.readLength(op == opLong4, 1, 4)
		if err != nil {
			return err
		}
		b, err := d.read(n)
		if err != nil {
			return err
		}
		d.push(decodeLong(b))
	case opFloat:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(line)), 64)
		if err != nil {
			return fmt.Errorf("bad float %q", truncateForError(line))
		}
		if math.IsNaN(f) {
			f = pythonNaN // what Python's float('nan') is, bit for bit
		}
		d.push(f)
	case opBinFloat:
		b, err := d.read(8)
		if err != nil {
			return err
		}
		d.push(math.Float64frombits(binary.BigEndian.Uint64(b)))

	case opString:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		raw, err := unquoteString(line)
		if err != nil {
			return err
		}
		return d.pushLatin1(raw)
	case opBinString, opShortBinString:
		b, err := d.readCounted(op == opBinString, 1, 4)
		if err != nil {
			return err
		}
		return d.pushLatin1(b)
	case opUnicode:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		s, err := decodeRawUnicodeEscape(line)
		if err != nil {
			return err
		}
		if err := d.charge(len(s)); err != nil {
			return err
		}
		d.push(s)
	case opShortBinUnicode, opBinUnicode, opBinUnicode8:
		var b []byte
		var err error
		switch op {
		case opShortBinUnicode:
			b, err = d.readCounted(false, 1, 1)
		case opBinUnicode:
			b, err = d.readCounted(true, 1, 4)
		default:
			b, err = d.readCounted(true, 1, 8)
		}
		if err != nil {
			return err
		}
		d.push(string(b))
	case opShortBinBytes, opBinBytes, opBinBytes8, opByteArray8:
		var b []byte
		var err error
		switch op {
		case opShortBinBytes:
			b, err = d.readCounted(false, 1, 1)
		case opBinBytes:
			b, err = d.readCounted(true, 1, 4)
		default:
			b, err = d.readCounted(true, 1, 8)
		}
		if err != nil {
			return err
		}
		d.push(bytes.Clone(nonNil(b)))

	case opEmptyTuple:
		d.push(Tuple{})
	case opTuple:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(Tuple(items))
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(d.stack)-d.floor() < n {
			return errStackUnderflow
		}
		t := make(Tuple, n)
		copy(t, d.stack[len(d.stack)-n:])
		d.stack = d.stack[:len(d.stack)-n]
		d.push(t)
	case opEmptyList:
		d.push(&List{})
	case opList:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&List{Items: items})
	case opAppend:
		v, err := d.pop()
		if err != nil {
			return err
		}
		l, err := d.peekList()
		if err != nil {
			return err
		}
		l.Items = append(l.Items, v)
	case opAppends:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		l, err := d.peekList()
		if err != nil {
			return err
		}
		l.Items = append(l.Items, items...)
	case opEmptyDict:
		d.push(&Dict{})
	case opDict:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		dict := &Dict{}
		if err := d.setItems(dict, items); err != nil {
			return err
		}
		d.push(dict)
	case opSetItem:
		if len(d.stack)-d.floor() < 3 {
			return errStackUnderflow
		}
		kv := d.stack[len(d.stack)-2:]
		d.stack = d.stack[:len(d.stack)-2]
		dict, err := d.peekDict()
		if err != nil {
			return err
		}
		return d.setItems(dict, kv)
	case opSetItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		dict, err := d.peekDict()
		if err != nil {
			return err
		}
		return d.setItems(dict, items)
	case opEmptySet:
		s := &List{}
		d.sets[s] = true
		d.push(s)
	case opAddItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		top, err := d.peek()
		if err != nil {
			return err
		}
		s, ok := top.(*List)
		if !ok || !d.sets[s] {
			return fmt.Errorf("ADDITEMS to a %s, not a set", TypeName(top))
		}
		s.Items = append(s.Items, items...)
	case opFrozenSet:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		s := &List{Items: items}
		d.sets[s] = true
		d.push(s)

	case opGlobal:
		module, err := d.readLine()
		if err != nil {
			return err
		}
		name, err := d.readLine()
		if err != nil {
			return err
		}
		g, err := d.resolve(string(module), string(name))
		if err != nil {
			return err
		}
		d.push(g)
	case opStackGlobal:
		name, err := d.pop()
		if err != nil {
			return err
		}
		module, err := d.pop()
		if err != nil {
			return err
		}
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("STACK_GLOBAL needs two str, got %s and %s", TypeName(module), TypeName(name))
		}
		g, err := d.resolve(ms, ns)
		if err != nil {
			return err
		}
		d.push(g)
	case opReduce:
		args, err := d.pop()
		if err != nil {
			return err
		}
		fn, err := d.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return fmt.Errorf("REDUCE arguments are a %s, not a tuple", TypeName(args))
		}
		v, err := d.call(fn, t)
		if err != nil {
			return err
		}
		d.push(v)
	case opNewObj:
		args, err := d.pop()
		if err != nil {
			return err
		}
		cls, err := d.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return fmt.Errorf("NEWOBJ arguments are a %s, not a tuple", TypeName(args))
		}
		v, err := d.newObject(cls, t, nil)
		if err != nil {
			return err
		}
		d.push(v)
	case opNewObjEx:
		kwargs, err := d.pop()
		if err != nil {
			return err
		}
		args, err := d.pop()
		if err != nil {
			return err
		}
		cls, err := d.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		kw, ok2 := kwargs.(*Dict)
		if !ok || !ok2 {
			return fmt.Errorf("NEWOBJ_EX wants a tuple and a dict, got %s and %s", TypeName(args), TypeName(kwargs))
		}
		v, err := d.newObject(cls, t, kw)
		if err != nil {
			return err
		}
		d.push(v)
	case opInst:
		module, err := d.readLine()
		if err != nil {
			return err
		}
		name, err := d.readLine()
		if err != nil {
			return err
		}
		g, err := d.resolve(string(module), string(name))
		if err != nil {
			return err
		}
		args, err := d.popMark()
		if err != nil {
			return err
		}
		v, err := d.call(g, Tuple(args))
		if err != nil {
			return err
		}
		d.push(v)
	case opObj:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return errors.New("OBJ without a class")
		}
		v, err := d.call(items[0], Tuple(items[1:]))
		if err != nil {
			return err
		}
		d.push(v)
	case opBuild:
		state, err := d.pop()
		if err != nil {
			return err
		}
		inst, err := d.peek()
		if err != nil {
			return err
		}
		v, err := d.build(inst, state)
		if err != nil {
			return err
		}
		d.stack[len(d.stack)-1] = v

	case opPut:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		idx, err := parseMemoIndex(line)
		if err != nil {
			return err
		}
		return d.memoPut(idx)
	case opBinPut:
		b, err := d.read(1)
		if err != nil {
			return err
		}
		return d.memoPut(int(b[0]))
	case opLongBinPut:
		b, err := d.read(4)
		if err != nil {
			return err
		}
		return d.memoPut(int(binary.LittleEndian.Uint32(b)))
	case opMemoize:
		return d.memoPut(d.memo.count)
	case opGet:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		idx, err := parseMemoIndex(line)
		if err != nil {
			return err
		}
		return d.memoGet(idx)
	case opBinGet:
		b, err := d.read(1)
		if err != nil {
			return err
		}
		return d.memoGet(int(b[0]))
	case opLongBinGet:
		b, err := d.read(4)
		if err != nil {
			return err
		}
		return d.memoGet(int(binary.LittleEndian.Uint32(b)))

	case opProto:
		b, err := d.read(1)
		if err != nil {
			return err
		}
		if b[0] > highestProtocol {
			return fmt.Errorf("unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		// Frames only group opcodes for buffered reading; the opcodes inside are
		// read one by one like any others. The length must still be sane.
		n, err := d.readLength(true, 8, 8)
		if err != nil {
			return err
		}
		if n > len(d.data)-d.pos {
			return fmt.Errorf("frame of %d bytes: %w", n, ErrTruncated)
		}

	case opPersID, opBinPersID:
		return errors.New("persistent IDs are not supported: the pickle refers to objects outside the file")
	case opExt1, opExt2, opExt4:
		return errors.New("extension registry codes (copyreg.add_extension) are not supported")
	case opNextBuffer, opReadonlyBuffer:
		return errors.New("out-of-band buffers are not supported: they are never stored in files (pickle protocol 5 buffer_callback)")
	default:
		return fmt.Errorf("invalid opcode 0x%02x", op)
	}
	return nil
}

var errStackUnderflow = errors.New("stack underflow (malformed pickle)")

func (d *decoder) push(v any) { d.stack = append(d.stack, v) }

// floor is the lowest stack index the current MARK frame may pop.
func (d *decoder) floor() int {
	if len(d.marks) == 0 {
		return 0
	}
	return d.marks[len(d.marks)-1]
}

func (d *decoder) pop() (any, error) {
	if len(d.stack) <= d.floor() {
		return nil, errStackUnderflow
	}
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return v, nil
}

func (d *decoder) peek() (any, error) {
	if len(d.stack) <= d.floor() {
		return nil, errStackUnderflow
	}
	return d.stack[len(d.stack)-1], nil
}

// popMark removes and returns the items above the innermost MARK.
func (d *decoder) popMark() ([]any, error) {
	if len(d.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items := make([]any, len(d.stack)-m)
	copy(items, d.stack[m:])
	clear(d.stack[m:])
	d.stack = d.stack[:m]
	return items, nil
}

func (d *decoder) peekList() (*List, error) {
	top, err := d.peek()
	if err != nil {
		return nil, err
	}
	l, ok := top.(*List)
	if !ok || d.sets[l] {
		return nil, fmt.Errorf("APPEND to a %s, not a list", d.typeName(top))
	}
	return l, nil
}

func (d *decoder) peekDict() (*Dict, error) {
	top, err := d.peek()
	if err != nil {
		return nil, err
	}
	switch x := top.(type) {
	case *Dict:
		return x, nil
	case *Object:
		// An instance of an allowed dict subclass (sklearn's Bunch): its items
		// are kept apart from its attributes.
		if x.DictItems == nil {
			x.DictItems = &Dict{}
		}
		return x.DictItems, nil
	}
	return nil, fmt.Errorf("SETITEM on a %s, not a dict", d.typeName(top))
}

func (d *decoder) typeName(v any) string {
	if l, ok := v.(*List); ok && d.sets[l] {
		return "set"
	}
	return TypeName(v)
}

// smallDict is the size up to which SETITEMS looks for duplicate keys by scanning;
// larger dicts get an index so that a hostile dict of n keys costs O(n), not O(n²).
const smallDict = 64

// setItems stores key/value pairs as Python's dict does: a repeated key replaces
// the value in place.
func (d *decoder) setItems(dict *Dict, kv []any) error {
	if len(kv)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	dict.Keys = slices.Grow(dict.Keys, len(kv)/2)
	dict.Values = slices.Grow(dict.Values, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		if !hashable(k) {
			dict.Keys = append(dict.Keys, k)
			dict.Values = append(dict.Values, v)
			continue
		}
		if idx := d.dictIndex[dict]; idx != nil {
			if j, ok := idx[k]; ok {
				dict.Values[j] = v
				continue
			}
			idx[k] = len(dict.Keys)
		} else {
			if j := dict.find(k); j >= 0 {
				dict.Values[j] = v
				continue
			}
			if len(dict.Keys) >= smallDict {
				idx := make(map[any]int, len(dict.Keys)+1)
				for j, key := range dict.Keys {
					if hashable(key) {
						if _, dup := idx[key]; !dup {
							idx[key] = j
						}
					}
				}
				idx[k] = len(dict.Keys)
				d.dictIndex[dict] = idx
			}
		}
		dict.Keys = append(dict.Keys, k)
		dict.Values = append(dict.Values, v)
	}
	return nil
}

func (d *decoder) memoPut(idx int) error {
	v, err := d.peek()
	if err != nil {
		return err
	}
	if !d.memo.put(idx, v, d.opts.MaxMemo) {
		return fmt.Errorf("more than %d memo entries: %w", d.opts.MaxMemo, ErrTooLarge)
	}
	return nil
}

func (d *decoder) memoGet(idx int) error {
	v, ok := d.memo.get(idx)
	if !ok {
		return fmt.Errorf("memo key %d is not defined", idx)
	}
	d.push(v)
	return nil
}

// read returns the next n bytes (aliasing the input).
func (d *decoder) read(n int) ([]byte, error) {
	if n < 0 || n > len(d.data)-d.pos {
		return nil, ErrTruncated
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// readLength reads a little-endian unsigned length of 1, 4 or 8 bytes (small or
// big as the opcode says) and checks that it fits an int.
func (d *decoder) readLength(big bool, small, large int) (int, error) {
	size := small
	if big {
		size = large
	}
	b, err := d.read(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
	default:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(len(d.data)) {
		return 0, fmt.Errorf("length %d is longer than the stream: %w", n, ErrTruncated)
	}
	return int(n), nil
}

// readCounted reads a length-prefixed byte string.
func (d *decoder) readCounted(big bool, small, large int) ([]byte, error) {
	n, err := d.readLength(big, small, large)
	if err != nil {
		return nil, err
	}
	return d.read(n)
}

// readLine returns the bytes up to the next '\n' (excluded), for protocol 0's
// text arguments.
func (d *decoder) readLine() ([]byte, error) {
	i := bytes.IndexByte(d.data[d.pos:], '\n')
	if i < 0 {
		return nil, ErrTruncated
	}
	line := d.data[d.pos : d.pos+i]
	d.pos += i + 1
	return line, nil
}

// pushLatin1 pushes a Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) as Python 3
// reads it with encoding='latin1', the setting numpy and sklearn need.
func (d *decoder) pushLatin1(b []byte) error {
	if err := d.charge(2 * len(b)); err != nil {
		return err
	}
	d.push(latin1ToString(b))
	return nil
}

// decodeLong reads a little-endian two's-complement integer (LONG1, LONG4).
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		if b[len(b)-1]&0x80 != 0 && len(b) < 8 { // sign-extend
			u |= ^uint64(0) << (8 * uint(len(b)))
		}
		return int64(u)
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normalizeInt(n)
}

// normalizeInt returns an int64 when the value fits one.
func normalizeInt(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

// parseDecimal parses protocol 0's INT and LONG text.
func parseDecimal(line []byte) (any, error) {
	s := string(bytes.TrimSpace(line))
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	if len(s) > maxDecimalDigits {
		return nil, fmt.Errorf("integer literal of %d digits is too long", len(s))
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("bad integer %q", truncateForError(line))
	}
	return normalizeInt(n), nil
}

func parseMemoIndex(line []byte) (int, error) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 31)
	if err != nil {
		return 0, fmt.Errorf("bad memo index %q", truncateForError(line))
	}
	return int(n), nil
}

func truncateForError(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
