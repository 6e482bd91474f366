// Package pickle reads Python pickle streams (protocols 0–5) and joblib files into
// plain Go values, building only classes on an allow-list. It never executes
// anything from the stream: a GLOBAL/STACK_GLOBAL/INST that names a class not on the
// allow-list is an error that names the class, and REDUCE/NEWOBJ/BUILD on an
// allowed class only record their arguments in an *Object for the caller to read.
//
// Values produced by the decoder:
//
//	None → nil            bool → bool             int → int64 (or *big.Int if it does not fit)
//	float → float64       str → string            bytes, bytearray → []byte
//	tuple → Tuple         list → *List            dict → *Dict      set, frozenset → *List
//	numpy.ndarray (pickled or joblib-wrapped) → *NDArray
//	numpy.dtype → *Dtype  numpy scalar → bool, int64, uint64 or float64 (str_ → string, bytes_ → []byte)
//	an allowed class instance → *Object
//	a bare reference to an allowed class/function → Global
//
// # Security model
//
// A pickle is a program for a small stack machine whose instructions can import
// any Python callable and call it. This package implements the machine's data
// instructions faithfully and replaces every "import and call" with a lookup:
//
//   - GLOBAL, STACK_GLOBAL, INST and OBJ resolve a name to a Global only if the
//     caller's Options.Allow accepts it or it is one of the few names the package
//     interprets itself (numpy's array, dtype and scalar reconstructors, joblib's
//     NumpyArrayWrapper, copyreg's object reconstructors, builtins set, frozenset,
//     bytearray, bytes and object, and _codecs.encode). Anything else stops the
//     decode with a *NotAllowedError naming the class, before any later opcode is
//     read.
//   - REDUCE, NEWOBJ, NEWOBJ_EX and BUILD on an allowed Global record the
//     arguments and state in an *Object. Nothing is ever called; the caller decides
//     what an Object means (package sklearn rebuilds estimators from them).
//   - Persistent IDs, the extension registry and out-of-band buffers are refused:
//     they need cooperation from the writer's process and never occur in files.
//
// Decoding is also bounded: every length read from the stream is checked against
// the bytes actually left before anything is allocated, and Options caps the memo,
// the MARK nesting depth and the total bytes read plus allocated (which also bounds
// decompression). Malformed input is an error, never a panic.
//
// Values decoded from one stream may share structure (Python's shared references
// are preserved: two references to one list give the same *List), and a malicious
// stream can build cycles through lists, dicts and objects; code that walks
// arbitrary decoded values must not assume a tree.
package pickle
