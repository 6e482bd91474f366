package pickle

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
)

// readJoblibArray finishes joblib's NumpyArrayWrapper: its BUILD state says what
// the array is, and the array itself follows in the stream, outside the pickle
// opcodes (joblib's NumpyUnpickler.load_build reads it from the file handle):
//
//   - object arrays: a complete nested pickle (protocol 2) of the array;
//   - others: if the wrapper has numpy_array_alignment_bytes (joblib ≥ 1.2), one
//     byte giving a padding length and that many padding bytes; then the raw
//     elements, in Fortran order when the wrapper's order is "F".
//
// Like joblib.load, it returns big-endian arrays converted to little-endian.
func (d *decoder) readJoblibArray(state any) (any, error) {
	st, ok := state.(*Dict)
	if !ok {
		return nil, fmt.Errorf("joblib array wrapper state is a %s, not a dict", d.typeName(state))
	}
	get := func(key string) (any, error) {
		v, ok := st.Get(key)
		if !ok {
			return nil, fmt.Errorf("joblib array wrapper has no %s", key)
		}
		return v, nil
	}
	sub, err := get("subclass")
	if err != nil {
		return nil, err
	}
	if err := checkArrayClass(sub); err != nil {
		return nil, err
	}
	dv, err := get("dtype")
	if err != nil {
		return nil, err
	}
	dt, ok := dv.(*Dtype)
	if !ok {
		return nil, fmt.Errorf("joblib array wrapper: dtype is a %s", d.typeName(dv))
	}
	sv, err := get("shape")
	if err != nil {
		return nil, err
	}
	shape, err := d.shapeOf(sv)
	if err != nil {
		return nil, err
	}
	ov, err := get("order")
	if err != nil {
		return nil, err
	}
	order, ok := ov.(string)
	if !ok || (order != "C" && order != "F") {
		return nil, fmt.Errorf("joblib array wrapper: bad order %v", ov)
	}

	if dt.Kind == 'O' {
		nested := newDecoder(d.data, d.opts, d.budget)
		nested.pos = d.pos
		nested.nested = true
		nested.borrow = d.borrow
		v, err := nested.run()
		d.pos = nested.pos
		if err != nil {
			return nil, fmt.Errorf("joblib object array: %w", err)
		}
		a, ok := v.(*NDArray)
		if !ok {
			return nil, fmt.Errorf("joblib object array holds a %s, not an array", TypeName(v))
		}
		return a, nil
	}

	if align, ok := st.Get("numpy_array_alignment_bytes"); ok && align != nil {
		pad, err := d.read(1)
		if err != nil {
			return nil, fmt.Errorf("joblib array padding: %w", err)
		}
		if _, err := d.read(int(pad[0])); err != nil {
			return nil, fmt.Errorf("joblib array padding: %w", err)
		}
	}
	n, err := d.elementCount(dt, shape)
	if err != nil {
		return nil, err
	}
	if dt.ItemSize > 0 && n > (len(d.data)-d.pos)/dt.ItemSize {
		return nil, fmt.Errorf("joblib array of shape %v of %s: %w", shape, dt, ErrTruncated)
	}
	raw, err := d.read(n * dt.ItemSize)
	if err != nil {
		return nil, err
	}
	a, err := d.makeArray(dt, shape, raw, order == "F")
	if err != nil {
		return nil, err
	}
	toLittleEndian(a)
	return a, nil
}

// Container formats joblib writes, by their first bytes (joblib's compressor.py).
var (
	zlibMagic  = []byte{0x78}
	gzipMagic  = []byte{0x1f, 0x8b}
	bz2Magic   = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	lzmaMagic  = []byte{0x5d, 0x00, 0x00}
	lz4Magic   = []byte{0x04, 0x22, 0x4d, 0x18}
	zfileMagic = []byte("ZF")
)

// zfileHeaderLen is joblib < 0.9.3's "ZF" prefix plus the uncompressed length as
// hex, padded to len(hex(2**64)).
const zfileHeaderLen = 2 + 19

// Load reads a pickle or joblib file, detecting joblib's compression (zlib, gzip,
// bz2) from the file's first bytes. The file, its decompressed stream and what is
// decoded from it are all charged to the memory budget (Options) before they are
// allocated, so a small compressed file that expands to gigabytes fails at the
// budget, having taken no more than that.
func Load(path string, opts Options) (any, error) {
	opts = opts.withDefaults()
	b := opts.budget()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	data, release, err := readFile(f, b, opts.Pacer)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// Decoded values never alias data, so the file's bytes go as soon as the
	// decode is done.
	defer release()
	v, err := loadMapped(data, opts, b, false)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return v, nil
}

// readFile reads a whole file and returns a func that releases its bytes. A
// regular file is mapped (read-only, populated in one system call) rather than
// copied into the heap: model files run to hundreds of megabytes, and faulting in
// that much fresh anonymous memory page by page is most of a big load's time on a
// virtual machine, and stalls the serving threads meanwhile. Where mapping fails
// it is read into one allocation.
func readFile(f *os.File, b *loadmem.Budget, pace *loadpace.Pacer) ([]byte, func(), error) {
	noop := func() {}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if err := charge(b, st.Size(), fmt.Sprintf("file of %d bytes", st.Size())); err != nil {
			return nil, noop, err
		}
		if data, release, ok := mapFile(f, st.Size(), pace); ok {
			return data, release, nil
		}
		data := make([]byte, st.Size())
		if _, err := io.ReadFull(f, data); err != nil {
			return nil, noop, err
		}
		return data, noop, nil
	}
	data, err := readAllCharged(f, b, "file")
	return data, noop, err
}

// pacedReader reads at most pacedReadSize bytes a call and pauses at the load's
// pacer before each: inflating a big file is otherwise one long stretch of CPU.
type pacedReader struct {
	r    io.Reader
	pace *loadpace.Pacer
}

// pacedReadSize is a read's share of decompressed output: 64 KiB inflate in
// about a tenth of a millisecond.
const pacedReadSize = 64 << 10

func (p pacedReader) Read(b []byte) (int, error) {
	p.pace.Pause()
	return p.r.Read(b[:min(len(b), pacedReadSize)])
}

// Chunk sizes of readAllCharged: it starts small (most decompressed pickles are
// small) and doubles up to maxReadChunk. Growing a single buffer by doubling
// (io.ReadAll) would overshoot a budget by up to the buffer's whole size when a
// stream is refused; chunks overshoot by one chunk at most.
const (
	minReadChunk = 64 << 10
	maxReadChunk = 4 << 20
)

// readAllCharged reads r to its end, charging b for every chunk before it is
// allocated and again for the joined result. A refused stream has taken at most
// the budget.
func readAllCharged(r io.Reader, b *loadmem.Budget, what string) ([]byte, error) {
	var chunks [][]byte
	total, size := 0, int64(minReadChunk)
	for {
		// Never ask for more than is left, so that a small budget still reads a
		// small stream; with nothing left, only the end of the stream may follow.
		n := min(size, b.Left())
		if n == 0 {
			var probe [1]byte
			if k, err := fill(r, probe[:]); k == 0 {
				if err == io.EOF {
					break
				}
				return nil, err
			}
			n = 1 // more data: the charge below refuses it
		}
		if err := charge(b, n, fmt.Sprintf("%s beyond %d bytes", what, total)); err != nil {
			return nil, err
		}
		c := make([]byte, n)
		got, err := fill(r, c)
		chunks = append(chunks, c[:got])
		total += got
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, maxReadChunk)
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	if err := charge(b, int64(total), fmt.Sprintf("%s of %d bytes", what, total)); err != nil {
		return nil, err
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// fill reads into c until it is full (nil), the stream ends (io.EOF) or fails.
// Unlike io.ReadFull it keeps a decompressor's own io.ErrUnexpectedEOF (a
// truncated file) apart from the end of the stream.
func fill(r io.Reader, c []byte) (int, error) {
	n := 0
	for n < len(c) {
		k, err := r.Read(c[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// LoadFile is Load for a caller that converts the decoded arrays into its own
// structures and then drops them, as a runtime building its model does: numeric
// arrays share the file's bytes instead of copying them (the largest allocation
// of a big load, and the memory it would fault in), and release gives the bytes
// back. After release no decoded array may be read; strings, bytes and every
// other value remain the caller's. The caller runs its conversion inside
// WhileMapped, so that a file truncated meanwhile fails the load rather than the
// process.
func LoadFile(path string, opts Options) (v any, release func(), err error) {
	opts = opts.withDefaults()
	b := opts.budget()
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	data, release, err := readFile(f, b, opts.Pacer)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	v, err = loadMapped(data, opts, b, true)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return v, release, nil
}

// loadMapped decompresses and decodes a file's mapping (arrays borrowing its
// bytes if borrow). If the file is truncated while it is read (a model copied
// over the one loading), touching the missing pages faults; WhileMapped makes
// that this load's error instead of the process's crash.
func loadMapped(data []byte, opts Options, b *loadmem.Budget, borrow bool) (v any, err error) {
	err = WhileMapped(func() error {
		plain, err := decompress(data, b, opts.Pacer)
		if err != nil {
			return err
		}
		v, err = decodeCharged(plain, opts, b, borrow)
		return err
	})
	return v, err
}

// ErrFileChanged reports a mapped model file that shrank while it was read.
var ErrFileChanged = errors.New("the file changed while it was being read (truncated or replaced?); the next load will read it again")

// WhileMapped runs f, which reads a file's mapping (or arrays that borrow it),
// with debug.SetPanicOnFault on: a read past a file that shrank meanwhile faults,
// and that fault is returned as ErrFileChanged instead of crashing the process.
// Other panics go on.
func WhileMapped(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r)
			}
			err = ErrFileChanged
		}
	}()
	return f()
}

// isFault reports whether a recovered panic value is a memory fault, which
// debug.SetPanicOnFault turns a read past a shrunken mapping into.
func isFault(r any) bool {
	_, fault := r.(interface{ Addr() uintptr })
	return fault
}

// LoadBytes is Load for a file already in memory (charged to the budget too).
func LoadBytes(data []byte, opts Options) (any, error) {
	opts = opts.withDefaults()
	b := opts.budget()
	if err := charge(b, int64(len(data)), fmt.Sprintf("file of %d bytes", len(data))); err != nil {
		return nil, err
	}
	return loadCharged(data, opts, b)
}

// loadCharged decompresses and decodes a file whose bytes b has been charged for.
func loadCharged(data []byte, opts Options, b *loadmem.Budget) (any, error) {
	plain, err := decompress(data, b, opts.Pacer)
	if err != nil {
		return nil, err
	}
	return decodeCharged(plain, opts, b, false)
}

// decompress undoes joblib's compression, or returns data as is for a plain
// pickle. Plain pickles start with PROTO (0x80) or a protocol 0/1 opcode, none of
// which is a compression magic (']' EMPTY_LIST is never followed by 0x00).
func decompress(data []byte, b *loadmem.Budget, pace *loadpace.Pacer) ([]byte, error) {
	var r io.Reader
	var name string
	switch {
	case bytes.HasPrefix(data, zfileMagic):
		body, err := zfileBody(data)
		if err != nil {
			return nil, err
		}
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("joblib ZF file: %w", err)
		}
		r, name = zr, "ZF (zlib)"
	case bytes.HasPrefix(data, zlibMagic):
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("zlib-compressed file: %w", err)
		}
		r, name = zr, "zlib"
	case bytes.HasPrefix(data, gzipMagic):
		gr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip-compressed file: %w", err)
		}
		r, name = gr, "gzip"
	case bytes.HasPrefix(data, bz2Magic):
		r, name = bzip2.NewReader(bytes.NewReader(data)), "bz2"
	case bytes.HasPrefix(data, xzMagic):
		return nil, unsupportedCompression("xz")
	case bytes.HasPrefix(data, lzmaMagic):
		return nil, unsupportedCompression("lzma")
	case bytes.HasPrefix(data, lz4Magic):
		return nil, unsupportedCompression("lz4")
	default:
		return data, nil
	}
	if pace != nil {
		r = pacedReader{r, pace}
	}
	out, err := readAllCharged(r, b, name+"-compressed file expands")
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%s-compressed file: %w", name, err)
	}
	return out, nil
}

// compressionOf names the compression a stream's first bytes announce, or "".
func compressionOf(data []byte) string {
	for _, c := range []struct {
		magic []byte
		name  string
	}{{zlibMagic, "zlib"}, {gzipMagic, "gzip"}, {bz2Magic, "bz2"}, {xzMagic, "xz"}, {lzmaMagic, "lzma"}, {lz4Magic, "lz4"}, {zfileMagic, "ZF (zlib)"}} {
		if bytes.HasPrefix(data, c.magic) {
			return c.name
		}
	}
	return ""
}

func unsupportedCompression(name string) error {
	return fmt.Errorf("file is %s-compressed, which is not supported: re-save it with joblib.dump(..., compress=3) (zlib) or compress=0", name)
}

// zfileBody returns the zlib stream of a joblib < 0.9.3 "ZF" file.
func zfileBody(data []byte) ([]byte, error) {
	if len(data) < zfileHeaderLen {
		return nil, fmt.Errorf("joblib ZF file: header: %w", ErrTruncated)
	}
	hexLen := strings.TrimSpace(string(data[2:zfileHeaderLen]))
	if _, err := strconv.ParseUint(strings.TrimPrefix(hexLen, "0x"), 16, 64); err != nil {
		return nil, errors.New("joblib ZF file: bad length header")
	}
	body := data[zfileHeaderLen:]
	// Python 2 versions of joblib ≤ 0.8.4 wrote one more space.
	if len(body) > 0 && body[0] == ' ' {
		body = body[1:]
	}
	return body, nil
}
