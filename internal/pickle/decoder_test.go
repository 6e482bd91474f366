package pickle

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pk writes pickle opcodes by hand, for streams Python would never write.
type pk struct{ bytes.Buffer }

func newPK(proto byte) *pk {
	p := &pk{}
	if proto >= 2 {
		p.op(opProto, proto)
	}
	return p
}

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }

func (p *pk) global(module, name string) *pk {
	p.WriteByte(opGlobal)
	p.WriteString(module + "\n" + name + "\n")
	return p
}

func (p *pk) int(v int64) *pk {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.WriteByte(opBinInt)
		_ = binary.Write(&p.Buffer, binary.LittleEndian, int32(v))
		return p
	}
	p.op(opLong1, 8)
	_ = binary.Write(&p.Buffer, binary.LittleEndian, v)
	return p
}

func (p *pk) str(s string) *pk {
	p.WriteByte(opBinUnicode)
	_ = binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pk) bin(b []byte) *pk {
	p.WriteByte(opBinBytes)
	_ = binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(b)))
	p.Write(b)
	return p
}

// dtype pushes numpy.dtype(spec) with its BUILD state.
func (p *pk) dtype(spec, order string) *pk {
	p.global("numpy", "dtype").str(spec).op(opNewFalse, opNewTrue, opTuple3, opReduce)
	return p.op(opMark).int(3).str(order).op(opNone, opNone, opNone).int(-1).int(-1).int(0).op(opTuple, opBuild)
}

// array pushes an ndarray built by _reconstruct + BUILD with the given state
// parts (shape must already be written by writeShape).
func (p *pk) array(shape []int64, spec string, fortran bool, data []byte) *pk {
	p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").
		int(0).op(opTuple1).bin([]byte("b")).op(opTuple3, opReduce)
	p.op(opMark).int(1).op(opMark)
	for _, s := range shape {
		p.int(s)
	}
	p.op(opTuple).dtype(spec, "<")
	if fortran {
		p.op(opNewTrue)
	} else {
		p.op(opNewFalse)
	}
	return p.bin(data).op(opTuple, opBuild)
}

func (p *pk) stop() []byte { p.WriteByte(opStop); return p.Bytes() }

func allowAll(string, string) bool { return true }

func TestDecodeValues(t *testing.T) {
	big1, _ := new(big.Int).SetString("-9223372036854775809", 10)
	recursive := &List{}
	recursive.Items = []any{recursive}
	tests := []struct {
		name string
		in   []byte
		opts Options
		want any
	}{
		{"BININT1", []byte("\x80\x02K\x05."), Options{}, int64(5)},
		{"BININT negative", []byte("J\xfe\xff\xff\xff."), Options{}, int64(-2)},
		{"BININT2", []byte("M\xff\xff."), Options{}, int64(65535)},
		{"INT text", []byte("I-42\n."), Options{}, int64(-42)},
		{"INT true", []byte("I01\n."), Options{}, true},
		{"INT false", []byte("I00\n."), Options{}, false},
		{"INT huge", []byte("I123456789012345678901234567890\n."), Options{}, bigInt("123456789012345678901234567890")},
		{"LONG text", []byte("L-5L\n."), Options{}, int64(-5)},
		{"LONG1 empty", []byte("\x80\x02\x8a\x00."), Options{}, int64(0)},
		{"LONG1 -1", []byte("\x80\x02\x8a\x01\xff."), Options{}, int64(-1)},
		{"LONG1 2^63", []byte("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00."), Options{}, bigInt("9223372036854775808")},
		{"LONG1 below int64", []byte("\x80\x02\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff."), Options{}, big1},
		{"LONG4", []byte("\x80\x02\x8b\x02\x00\x00\x00\x00\x01."), Options{}, int64(256)},
		{"FLOAT text", []byte("F-1.5e3\n."), Options{}, -1500.0},
		{"FLOAT nan is Python's NaN", []byte("Fnan\n."), Options{}, pythonNaN},
		{"BINFLOAT", []byte("G?\xf8\x00\x00\x00\x00\x00\x00."), Options{}, 1.5},
		{"STRING escapes", []byte(`S'a\'b\\c\x41\101\n\q'` + "\n."), Options{}, "a'b\\cAA\n\\q"},
		{"STRING double quotes", []byte(`S"it's"` + "\n."), Options{}, "it's"},
		{"STRING latin-1", []byte("S'caf\\xe9'\n."), Options{}, "café"},
		{"SHORT_BINSTRING latin-1", []byte("U\x02\xe9\xff."), Options{}, "éÿ"},
		{"UNICODE escapes", []byte(`Va\u00e9\U0001F40D\\u0041\x` + "\n."), Options{}, "aé🐍\\\\u0041\\x"},
		{"SHORT_BINUNICODE", []byte("\x80\x04\x8c\x03abc."), Options{}, "abc"},
		{"BINBYTES8", []byte("\x80\x04\x8e\x01\x00\x00\x00\x00\x00\x00\x00z."), Options{}, []byte("z")},
		{"BYTEARRAY8", []byte("\x80\x05\x96\x00\x00\x00\x00\x00\x00\x00\x00."), Options{}, []byte{}},
		{"POP", []byte("K\x01K\x020."), Options{}, int64(1)},
		{"POP discards an empty MARK", []byte("K\x01(0."), Options{}, int64(1)},
		{"POP_MARK", []byte("K\x03(K\x01K\x021."), Options{}, int64(3)},
		{"DUP", []byte("\x80\x02K\x012\x86."), Options{}, Tuple{int64(1), int64(1)}},
		{"TUPLE", []byte("(K\x01K\x02t."), Options{}, Tuple{int64(1), int64(2)}},
		{"LIST APPEND APPENDS", []byte("(lK\x01a(K\x02K\x03e."), Options{}, &List{Items: []any{int64(1), int64(2), int64(3)}}},
		{"DICT and duplicate keys", []byte("(K\x01K\x02K\x01K\x03d."), Options{}, &Dict{Keys: []any{int64(1)}, Values: []any{int64(3)}}},
		{"SETITEM replaces", []byte("}K\x01K\x02sK\x01K\x03s."), Options{}, &Dict{Keys: []any{int64(1)}, Values: []any{int64(3)}}},
		{"unhashable keys are kept", []byte("\x80\x02}(K\x01\x85K\x02K\x01\x85K\x03u."), Options{},
			&Dict{Keys: []any{Tuple{int64(1)}, Tuple{int64(1)}}, Values: []any{int64(2), int64(3)}}},
		{"EMPTY_SET ADDITEMS", []byte("\x80\x04\x8f(K\x01K\x02\x90."), Options{}, &List{Items: []any{int64(1), int64(2)}}},
		{"FROZENSET", []byte("\x80\x04(K\x01\x91."), Options{}, &List{Items: []any{int64(1)}}},
		{"builtins.set", []byte("c__builtin__\nset\n((lK\x01atR."), Options{}, &List{Items: []any{int64(1)}}},
		{"bytearray from latin-1", []byte("\x80\x02cbuiltins\nbytearray\nX\x02\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R."), Options{}, []byte{0xff}},
		{"empty bytes", []byte("\x80\x02c__builtin__\nbytes\n)R."), Options{}, []byte{}},
		{"_codecs.encode", []byte("\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xa9X\x06\x00\x00\x00latin1\x86R."), Options{}, []byte{0xe9}},
		{"memo PUT/GET text", []byte("(lp0\ng0\na."), Options{}, recursive},
		{"MEMOIZE/BINGET recursive list", []byte("\x80\x04]\x94h\x00a."), Options{}, recursive},
		{"LONG_BINPUT/LONG_BINGET", []byte("\x80\x02K\x07r\x00\x00\x01\x000j\x00\x00\x01\x00."), Options{}, int64(7)},
		{"sparse memo index", []byte("\x80\x02K\x07r\xff\xff\xff\xff0K\x08\x94j\xff\xff\xff\xff\x86."), Options{}, Tuple{int64(8), int64(7)}},
		{"MEMOIZE counts entries", []byte("\x80\x04K\x01q\x05K\x02\x94h\x01."), Options{}, int64(2)},
		{"FRAME is transparent", []byte("\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x09."), Options{}, int64(9)},
		{"INST records", []byte("(K\x01i__main__\nPoint\n."), Options{Allow: allowMain},
			&Object{Module: "__main__", Name: "Point", Args: []any{int64(1)}}},
		{"OBJ records", []byte("(c__main__\nPoint\nK\x02o."), Options{Allow: allowMain},
			&Object{Module: "__main__", Name: "Point", Args: []any{int64(2)}}},
		{"STACK_GLOBAL", []byte("\x80\x04\x8c\x08__main__\x8c\x05Point\x93."), Options{Allow: allowMain}, Global{"__main__", "Point"}},
		{"second BUILD updates the dict", []byte("\x80\x02c__main__\nP\n)\x81}X\x01\x00\x00\x00aK\x01sb}X\x01\x00\x00\x00bK\x02sb."), Options{Allow: allowMain},
			&Object{Module: "__main__", Name: "P", Args: []any{}, State: &Dict{Keys: []any{"a", "b"}, Values: []any{int64(1), int64(2)}}}},
		{"copyreg.__newobj__ under protocol 0", []byte("ccopy_reg\n__newobj__\n(c__main__\nP\nK\x01tR."), Options{Allow: allowMain},
			&Object{Module: "__main__", Name: "P", Args: []any{int64(1)}}},
		{"allowed os.system is recorded, not run", []byte("cposix\nsystem\n(Vecho pwned\ntR."), Options{Allow: allowAll},
			&Object{Module: "posix", Name: "system", Args: []any{"echo pwned"}}},
		{"numpy 2 spelling", bytes.ReplaceAll(newPK(3).array([]int64{2}, "i2", false, []byte{1, 0, 2, 0}).stop(), []byte("numpy.core."), []byte("numpy._core.")), Options{},
			&NDArray{Dtype: &Dtype{Kind: 'i', ItemSize: 2}, Shape: []int{2}, Data: []byte{1, 0, 2, 0}}},
		{"Fortran 2x2", newPK(3).array([]int64{2, 2}, "u1", true, []byte{1, 3, 2, 4}).stop(), Options{},
			&NDArray{Dtype: &Dtype{Kind: 'u', ItemSize: 1}, Shape: []int{2, 2}, Data: []byte{1, 2, 3, 4}}},
		{"calling an allowed numpy type is recorded", []byte("cnumpy\nfloat64\n(K\x01tR."), Options{Allow: allowAll},
			&Object{Module: "numpy", Name: "float64", Args: []any{int64(1)}}},
		{"numpy scalar", []byte("\x80\x03cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00u8\x89\x88\x87RC\x08\xff\xff\xff\xff\xff\xff\xff\xff\x86R."), Options{}, uint64(math.MaxUint64)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBytes(tc.in, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalizeJSON(t, describeCyclic(got)), normalizeJSON(t, describeCyclic(tc.want))) {
				t.Fatalf("got %#v, want %#v", describeCyclic(got), describeCyclic(tc.want))
			}
		})
	}
}

func bigInt(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

// describeCyclic is describe for the one cycle these tests build: a list that
// contains itself.
func describeCyclic(v any) any {
	if l, ok := v.(*List); ok && len(l.Items) == 1 && l.Items[0] == any(l) {
		return "a list containing itself"
	}
	return describe(v)
}

func TestDecodeSharedReferences(t *testing.T) {
	// x = [1]; [x, x, (x,)]
	v, err := DecodeBytes([]byte("\x80\x02]q\x00(]q\x01K\x01ah\x01h\x01\x85q\x02e."), Options{})
	if err != nil {
		t.Fatal(err)
	}
	outer := v.(*List).Items
	if outer[0].(*List) != outer[1].(*List) || outer[2].(Tuple)[0].(*List) != outer[0].(*List) {
		t.Fatal("shared references decoded as copies")
	}
}

func TestDecodeErrors(t *testing.T) {
	huge := newPK(3).array([]int64{1_000_000_000_000}, "f8", false, make([]byte, 8)).stop()
	hugeOverflow := newPK(3).array([]int64{1 << 40, 1 << 40, 1 << 40}, "f8", false, nil).stop()
	badSize := newPK(3).array([]int64{3}, "f8", false, make([]byte, 16)).stop()

	tests := []struct {
		name string
		in   []byte
		opts Options
		want string // substring of the error
		is   error  // or nil
	}{
		{"empty", nil, Options{}, "no STOP", ErrTruncated},
		{"no STOP", []byte("K\x01"), Options{}, "no STOP", ErrTruncated},
		{"truncated argument", []byte("J\x01\x02"), Options{}, "BININT at offset 0", ErrTruncated},
		{"BINUNICODE claims 4 GiB", []byte("X\xff\xff\xff\xffabc."), Options{}, "longer than the stream", ErrTruncated},
		{"BINBYTES8 claims 2^63", []byte("\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80."), Options{}, "longer than the stream", ErrTruncated},
		{"FRAME longer than data", []byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00K\x01."), Options{}, "FRAME at offset 2", ErrTruncated},
		{"invalid opcode", []byte("\xff."), Options{}, "invalid opcode 0xff", nil},
		{"protocol 6", []byte("\x80\x06K\x01."), Options{}, "unsupported pickle protocol 6", nil},
		{"PERSID", []byte("Pref\n."), Options{}, "persistent IDs are not supported", nil},
		{"BINPERSID", []byte("K\x01Q."), Options{}, "persistent IDs are not supported", nil},
		{"EXT1", []byte("\x80\x02\x82\x01."), Options{}, "extension registry", nil},
		{"EXT4", []byte("\x80\x02\x84\x01\x00\x00\x00."), Options{}, "extension registry", nil},
		{"NEXT_BUFFER", []byte("\x80\x05\x97."), Options{}, "out-of-band buffers are not supported", nil},
		{"READONLY_BUFFER", []byte("\x80\x05\x98."), Options{}, "out-of-band buffers are not supported", nil},
		{"stack underflow", []byte("a."), Options{}, "stack underflow", nil},
		{"TUPLE without MARK", []byte("K\x01t."), Options{}, "no MARK", nil},
		{"pop through a MARK", []byte("K\x01(\x85."), Options{}, "stack underflow", nil},
		{"memo miss", []byte("h\x05."), Options{}, "memo key 5 is not defined", nil},
		{"APPEND to a dict", []byte("}K\x01a."), Options{}, "APPEND to a dict", nil},
		{"SETITEM on a list", []byte("]K\x01K\x02s."), Options{}, "SETITEM on a list", nil},
		{"ADDITEMS to a list", []byte("\x80\x04](K\x01\x90."), Options{}, "not a set", nil},
		{"odd DICT", []byte("(K\x01d."), Options{}, "odd number", nil},
		{"unquoted STRING", []byte("Sabc\n."), Options{}, "must be quoted", nil},
		{"bad \\x escape", []byte(`S'\x4'` + "\n."), Options{}, `invalid \x escape`, nil},
		{"bad \\u escape", []byte(`V\u12` + "\n."), Options{}, `truncated \uXXXX`, nil},
		{"INT too long", append(append([]byte("I"), bytes.Repeat([]byte("9"), 5000)...), "\n."...), Options{}, "too long", nil},
		{"REDUCE of a non-callable", []byte("K\x01)R."), Options{}, "cannot call a int", nil},
		{"REDUCE with a list", []byte("\x80\x02c__builtin__\nset\n]R."), Options{}, "not a tuple", nil},
		{"os.system refused", []byte("cposix\nsystem\n(Vecho pwned\ntR."), Options{}, `offset 0: refusing to load "posix.system": not an allowed class`, nil},
		{"builtins.eval refused", []byte("c__builtin__\neval\n."), Options{}, `refusing to load "builtins.eval"`, nil},
		{"getattr refused", []byte("\x80\x04\x8c\x08builtins\x8c\x07getattr\x93."), Options{}, `refusing to load "builtins.getattr"`, nil},
		{"INST refused", []byte("(Vx\nios\nsystem\n."), Options{}, `refusing to load "os.system"`, nil},
		{"Allow is asked with the names", []byte("csklearn.tree\nTree\n."), Options{Allow: func(m, n string) bool { return m == "sklearn.tree" && n == "Other" }}, `refusing to load "sklearn.tree.Tree"`, nil},
		{"calling numpy.ndarray", []byte("cnumpy\nndarray\n)R."), Options{}, "calling numpy.ndarray is not supported", nil},
		{"_reconstructor with another base", []byte("ccopy_reg\n_reconstructor\n(c__main__\nP\nc__builtin__\nobject\nK\x01tR."), Options{Allow: allowMain}, "_reconstructor with base", nil},
		{"old joblib side files", []byte("cjoblib.numpy_pickle\nNDArrayWrapper\n."), Options{}, "joblib < 0.10", nil},
		{"unknown encoding", []byte("\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."), Options{}, `encoding "rot13" is not supported`, nil},
		{"not latin-1", []byte("\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x82\xacX\x06\x00\x00\x00latin1\x86R."), Options{}, "not latin-1", nil},
		{"datetime dtype", newPK(3).dtype("M8", "<").stop(), Options{}, "datetime", nil},
		{"dtype built twice", append(newPK(3).dtype("f8", "<").op(opMark).int(3).str(">").op(opNone, opNone, opNone).int(-1).int(-1).int(0).op(opTuple, opBuild).Bytes(), '.'), Options{}, "BUILD on a dtype twice", nil},
		{"array data of the wrong size", badSize, Options{}, "array data is 16 bytes, want 24", nil},
		{"array of 10^12 elements", huge, Options{}, "larger than the data limit", ErrTooLarge},
		{"array shape overflow", hugeOverflow, Options{}, "larger than the data limit", ErrTooLarge},
		{"MaxMemo", []byte("\x80\x04K\x01\x94\x94\x94."), Options{MaxMemo: 2}, "more than 2 memo entries", ErrTooLarge},
		{"MaxDepth", []byte("(((((."), Options{MaxDepth: 4}, "nested deeper than 4", ErrTooLarge},
		{"MaxBytes", bytes.Repeat([]byte("N"), 100), Options{MaxBytes: 50}, "more than its 50 B memory budget", ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			v, err := DecodeBytes(tc.in, tc.opts)
			if err == nil {
				t.Fatalf("decoded %s, want an error", TypeName(v))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %q is not %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v to fail", d)
			}
		})
	}
}

func TestNotAllowedErrorNamesTheClass(t *testing.T) {
	_, err := DecodeBytes([]byte("\x80\x02csubprocess\nPopen\n."), Options{})
	var na *NotAllowedError
	if !errors.As(err, &na) || na.Module != "subprocess" || na.Name != "Popen" {
		t.Fatalf("error %v is not a NotAllowedError for subprocess.Popen", err)
	}
}

func TestLargeDictDuplicates(t *testing.T) {
	// 40 keys, 20 distinct: the indexed path must keep Python's last-wins order.
	in := []byte("\x80\x02}(")
	for i := 0; i < 40; i++ {
		in = append(in, 'K', byte(i%20), 'K', byte(i))
	}
	in = append(in, "u."...)
	v, err := DecodeBytes(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*Dict)
	if len(d.Keys) != 20 {
		t.Fatalf("%d keys, want 20", len(d.Keys))
	}
	for i := range d.Keys {
		if d.Keys[i] != int64(i) || d.Values[i] != int64(i+20) {
			t.Fatalf("item %d = %v: %v, want %d: %d", i, d.Keys[i], d.Values[i], i, i+20)
		}
	}
}

func TestDecompressionBomb(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	chunk := make([]byte, 1<<20)
	for i := 0; i < 16; i++ {
		_, _ = zw.Write(chunk)
	}
	_ = zw.Close()
	_, err := LoadBytes(buf.Bytes(), Options{MaxBytes: 1 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "zlib-compressed file expands beyond") {
		t.Fatalf("error %v, want a zlib expansion limit error", err)
	}
}

func TestBudgetBoundsMemoAmplification(t *testing.T) {
	// One 64 KiB buffer, memoized, turned into 1000 arrays: 64 MB of arrays from
	// a 70 KB stream. The budget must stop it.
	q := newPK(4)
	q.bin(make([]byte, 1<<16)).op(opMemoize, opPop).op(opMark)
	for i := 0; i < 1000; i++ {
		q.global("numpy.core.numeric", "_frombuffer").op(opMark).op(opBinGet, 0).dtype("u1", "|").int(1<<16).op(opTuple1).str("C").op(opTuple, opReduce)
	}
	q.op(opList, opStop)
	_, err := DecodeBytes(q.Bytes(), Options{MaxBytes: 8 << 20})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	// The same stream decodes under a budget large enough for it.
	v, err := DecodeBytes(q.Bytes(), Options{MaxBytes: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v.(*List).Items); n != 1000 {
		t.Fatalf("%d arrays, want 1000", n)
	}
}

func TestContainerDetection(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"xz", []byte("\xfd7zXZ\x00rest"), "xz-compressed, which is not supported: re-save it with joblib.dump(..., compress=3)"},
		{"lzma", []byte("\x5d\x00\x00\x80\x00"), "lzma-compressed"},
		{"lz4", []byte("\x04\x22\x4d\x18...."), "lz4-compressed"},
		{"broken zlib", []byte("\x78\x9c\x00\x00"), "zlib"},
		{"broken gzip", []byte("\x1f\x8b\x08\x00"), "gzip"},
		{"broken bz2", []byte("BZh9\x00\x00"), "bz2"},
		{"short ZF", []byte("ZF0x1"), "ZF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes(tc.in, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestZFile(t *testing.T) {
	// joblib < 0.9.3: "ZF", the length in hex padded to 19 characters, zlib data.
	payload := []byte("\x80\x02K\x07.")
	var buf bytes.Buffer
	buf.WriteString("ZF0x5                ")
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(payload)
	_ = zw.Close()
	v, err := LoadBytes(buf.Bytes(), Options{})
	if err != nil || v != int64(7) {
		t.Fatalf("got %v, %v; want 7", v, err)
	}
}

// TestNothingRuns decodes payloads that would create a file if anything in them
// were executed: refused by default, recorded (and still not run) when the
// caller allows everything.
func TestNothingRuns(t *testing.T) {
	marker := t.TempDir() + "/pwned"
	cmd := "touch " + marker
	payloads := map[string][]byte{
		"protocol 0 GLOBAL": []byte("cposix\nsystem\n(V" + cmd + "\ntR."),
		"protocol 0 INST":   []byte("(V" + cmd + "\niposix\nsystem\n."),
		"protocol 4 STACK_GLOBAL": newPK(4).str("os").str("system").op(opStackGlobal).
			str(cmd).op(opTuple1, opReduce).stop(),
		"subprocess via OBJ": newPK(2).op(opMark).global("subprocess", "Popen").
			op(opEmptyList).str("sh").op(opAppend).str("-c").op(opAppend).str(cmd).op(opAppend).op(opObj).stop(),
		"hidden in BUILD state": newPK(2).global("__main__", "P").op(opEmptyTuple, opNewObj).
			op(opEmptyDict).str("x").global("posix", "system").str(cmd).op(opTuple1, opReduce, opSetItem, opBuild).stop(),
	}
	for name, data := range payloads {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeBytes(data, Options{Allow: allowMain})
			var na *NotAllowedError
			if !errors.As(err, &na) {
				t.Fatalf("error %v, want a refusal", err)
			}
			if !strings.Contains(err.Error(), `refusing to load "`+na.Module+"."+na.Name+`"`) {
				t.Fatalf("error %q does not name the class", err)
			}
			v, err := DecodeBytes(data, Options{Allow: allowAll})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists: something ran", marker)
			}
			if !strings.Contains(fmt.Sprint(describe(v)), cmd) {
				t.Fatalf("the call was not recorded: %v", describe(v))
			}
		})
	}
}

func TestDecodeReader(t *testing.T) {
	v, err := Decode(bytes.NewReader([]byte("\x80\x02K\x2a.")), Options{})
	if err != nil || v != int64(42) {
		t.Fatalf("got %v, %v; want 42", v, err)
	}
	_, err = Decode(bytes.NewReader(bytes.Repeat([]byte("N"), 100)), Options{MaxBytes: 10})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	// Decode takes a plain stream; compressed joblib files go through Load.
	_, err = Decode(bytes.NewReader([]byte("\x78\x9c\x00")), Options{})
	if err == nil || !strings.Contains(err.Error(), "zlib-compressed: use Load") {
		t.Fatalf("error %v, want a hint to use Load", err)
	}
}

func TestLoadFileLimits(t *testing.T) {
	if _, err := Load("testdata/forest_20.joblib", Options{Allow: allowAll, MaxBytes: 1000}); !errors.Is(err, ErrTooLarge) ||
		!strings.HasPrefix(err.Error(), "load testdata/forest_20.joblib: file of ") {
		t.Fatalf("error %v, want a size limit error naming the file", err)
	}
	if _, err := Load("testdata/no-such-file.pkl", Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want ErrNotExist", err)
	}
}

// collections.OrderedDict (XGBoost's wrappers pickle their evals_result_ as
// one) decodes as a Dict, items in order, on protocols 2 and 4; called with
// arguments it is refused.
func TestOrderedDictDecodesAsDict(t *testing.T) {
	for _, in := range []string{
		"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03K\x02u.",
		"\x80\x04\x950\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94(\x8c\x01a\x94K\x01\x8c\x01b\x94K\x02u.",
	} {
		v, err := DecodeBytes([]byte(in), Options{})
		if err != nil {
			t.Fatal(err)
		}
		d, ok := v.(*Dict)
		if !ok || len(d.Keys) != 2 || d.Keys[0] != "a" || d.Keys[1] != "b" || d.Values[0] != int64(1) || d.Values[1] != int64(2) {
			t.Fatalf("decoded %#v", v)
		}
	}
	if _, err := DecodeBytes([]byte("\x80\x02ccollections\nOrderedDict\n]\x85R."), Options{}); err == nil || !strings.Contains(err.Error(), "with arguments is not supported") {
		t.Fatalf("OrderedDict([]): %v", err)
	}
}

// An instance of an allowed dict subclass (sklearn's Bunch) keeps the items it
// is given with SETITEMS apart from its attributes; a disallowed one is still
// refused by name.
func TestDictSubclassItems(t *testing.T) {
	in := []byte("\x80\x02csklearn.utils._bunch\nBunch\nq\x00)\x81q\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03K\x02u.")
	v, err := DecodeBytes(in, Options{Allow: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*Object)
	if !ok || o.Name != "Bunch" || o.DictItems == nil || len(o.DictItems.Keys) != 2 || o.DictItems.Values[1] != int64(2) || o.State != nil {
		t.Fatalf("decoded %#v", v)
	}
	if _, err := DecodeBytes(in, Options{}); err == nil || !strings.Contains(err.Error(), `"sklearn.utils._bunch.Bunch": not an allowed class`) {
		t.Fatalf("without permission: %v", err)
	}
}
