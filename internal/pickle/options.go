package pickle

import (
	"errors"
	"fmt"

	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
)

// Default limits, used where Options leaves a limit at zero. They are generous for
// real models (a 1000-tree forest memoizes a few tens of thousands of objects) and
// small enough that a hostile file fails fast instead of exhausting memory.
const (
	DefaultMaxMemo  = 1 << 20
	DefaultMaxDepth = 1000
	DefaultMaxBytes = 2 << 30
)

// Options control what a decode accepts.
type Options struct {
	// Allow reports whether a module-level class or function may be referenced.
	// It sees Python 3's names (a Python 2 pickle's __builtin__ and copy_reg
	// arrive as builtins and copyreg); name may be dotted (Outer.Inner) under
	// protocol 4. Names the package interprets itself (numpy arrays, dtypes and
	// scalars, joblib's array wrapper, a few builtins) need no permission. Nil
	// allows nothing else. Allowing a name never runs it: instances are only
	// recorded as *Object.
	Allow func(module, name string) bool
	// MaxMemo caps the number of memo entries (PUT, MEMOIZE).
	MaxMemo int
	// MaxDepth caps the nesting of MARKs (each open tuple, list, dict or call
	// argument list built with a MARK is one level).
	MaxDepth int
	// MaxBytes caps the stream's length (after decompression) plus every byte
	// the decoder allocates for array data, strings and bytes built from it.
	// It is ignored when Budget is set.
	MaxBytes int64
	// Budget, if set, is the model load's memory budget: Load charges it for the
	// file, the decompressed stream and everything decoded from it, before each
	// allocation, and fails with ErrTooLarge at the first charge it cannot hold.
	// The caller may go on charging it for what it builds from the result.
	Budget *loadmem.Budget
	// Pacer, if set, keeps the load to its share of a CPU: the decoder pauses
	// at its checkpoints (every few thousand opcodes, the mapping of the file in
	// chunks), and so do the conversions of the arrays it decodes, which is where
	// an estimator's build spends its time.
	Pacer *loadpace.Pacer
}

// budget is the allowance a decode runs against.
func (o Options) budget() *loadmem.Budget {
	if o.Budget != nil {
		return o.Budget
	}
	return loadmem.New(o.MaxBytes)
}

// tooLarge marks a budget refusal as ErrTooLarge (what callers of this package
// test for) while keeping loadmem.ErrExceeded and the budget's own message.
type tooLarge struct{ err error }

func (e *tooLarge) Error() string        { return e.err.Error() }
func (e *tooLarge) Unwrap() error        { return e.err }
func (e *tooLarge) Is(target error) bool { return target == ErrTooLarge }

// charge takes n bytes from b, saying what they were for when it cannot.
func charge(b *loadmem.Budget, n int64, what string) error {
	if err := b.Charge(n); err != nil {
		return &tooLarge{fmt.Errorf("%s: %w", what, err)}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxMemo <= 0 {
		o.MaxMemo = DefaultMaxMemo
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// NotAllowedError is returned when a stream names a class or function that is
// neither on the allow-list nor interpreted by this package.
type NotAllowedError struct {
	Module, Name string
}

func (e *NotAllowedError) Error() string {
	return fmt.Sprintf("refusing to load %q: not an allowed class", e.Module+"."+e.Name)
}

var (
	// ErrTruncated reports a stream that ends before its STOP opcode or inside an
	// opcode's argument.
	ErrTruncated = errors.New("unexpected end of data (file truncated?)")
	// ErrTooLarge reports a stream that exceeds the memory budget (Options.Budget or
	// MaxBytes), MaxMemo or MaxDepth.
	ErrTooLarge = errors.New("limit exceeded")
)
