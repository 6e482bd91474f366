package pickle

import (
	"errors"
	"fmt"
	"strings"
)

// What the package does with a name it interprets itself.
type builtinKind int

const (
	refOnly       builtinKind = iota + 1 // may be referenced (e.g. as an attribute value), not called
	reconstructor                        // copyreg._reconstructor(cls, base, state)
	newObjFunc                           // copyreg.__newobj__(cls, *args)
	newObjExFunc                         // copyreg.__newobj_ex__(cls, args, kwargs)
	codecsEncode                         // _codecs.encode(str, encoding)
	makeSet                              // builtins.set / frozenset
	makeBytes                            // builtins.bytes / bytearray
	makeDict                             // collections.OrderedDict(): a Dict keeps insertion order
	npReconstruct                        // numpy.core.multiarray._reconstruct
	npScalar                             // numpy.core.multiarray.scalar
	npDtype                              // numpy.dtype
	npFromBuffer                         // numpy.core.numeric._frombuffer
	joblibWrapper                        // joblib.numpy_pickle.NumpyArrayWrapper
)

// builtins are the names the package interprets, keyed by canonical name (after
// Python 2's module renames and numpy 2's numpy._core → numpy.core).
var builtins = map[string]builtinKind{
	"builtins.object":                       refOnly,
	"builtins.set":                          makeSet,
	"builtins.frozenset":                    makeSet,
	"builtins.bytes":                        makeBytes,
	"builtins.bytearray":                    makeBytes,
	"collections.OrderedDict":               makeDict,
	"copyreg._reconstructor":                reconstructor,
	"copyreg.__newobj__":                    newObjFunc,
	"copyreg.__newobj_ex__":                 newObjExFunc,
	"_codecs.encode":                        codecsEncode,
	"numpy.core.multiarray._reconstruct":    npReconstruct,
	"numpy.core.multiarray.scalar":          npScalar,
	"numpy.core.numeric._frombuffer":        npFromBuffer,
	"numpy.dtype":                           npDtype,
	"numpy.ndarray":                         refOnly,
	"numpy.memmap":                          refOnly,
	"numpy.core.memmap.memmap":              refOnly,
	"joblib.numpy_pickle.NumpyArrayWrapper": joblibWrapper,
	// scikit-learn < 0.23 shipped its own copy of joblib
	"sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper": joblibWrapper,
}

func init() {
	// numpy's scalar types appear as bare references, e.g. an estimator's
	// dtype=np.float64 parameter. Referencing a type is harmless; calling one
	// still needs the allow-list.
	for _, t := range []string{"bool_", "int8", "int16", "int32", "int64", "uint8", "uint16",
		"uint32", "uint64", "float16", "float32", "float64", "longlong", "ulonglong",
		"intc", "uintc", "int_", "uint", "double", "single", "str_", "bytes_", "object_"} {
		builtins["numpy."+t] = refOnly
	}
}

// moduleRenames are Python 2 module names that Python 3's unpickler maps
// (fix_imports) and that the package needs to recognise.
var moduleRenames = map[string]string{
	"__builtin__": "builtins",
	"copy_reg":    "copyreg",
}

// oldJoblibWrappers store arrays in side files next to the pickle (joblib < 0.10).
var oldJoblibWrappers = map[string]bool{
	"joblib.numpy_pickle.NDArrayWrapper":                    true,
	"joblib.numpy_pickle.ZNDArrayWrapper":                   true,
	"joblib.numpy_pickle_compat.NDArrayWrapper":             true,
	"joblib.numpy_pickle_compat.ZNDArrayWrapper":            true,
	"sklearn.externals.joblib.numpy_pickle.NDArrayWrapper":  true,
	"sklearn.externals.joblib.numpy_pickle.ZNDArrayWrapper": true,
}

// canonicalName is the key used to look a name up in builtins.
func canonicalName(module, name string) string {
	if rest, ok := strings.CutPrefix(module, "numpy._core"); ok {
		module = "numpy.core" + rest
	}
	return module + "." + name
}

// resolve turns a GLOBAL/STACK_GLOBAL/INST reference into a Global, or refuses it.
// This is the only place a name from the stream becomes something the decoder
// will act on.
func (d *decoder) resolve(module, name string) (Global, error) {
	if m, ok := moduleRenames[module]; ok {
		module = m
	}
	c := canonicalName(module, name)
	if oldJoblibWrappers[c] {
		return Global{}, fmt.Errorf("%s: the file was written by joblib < 0.10, which keeps arrays in separate files; re-save it with a current joblib", c)
	}
	if d.nested && builtins[c] == joblibWrapper {
		return Global{}, errors.New("joblib array wrapper inside an object array's pickle")
	}
	if _, ok := builtins[c]; ok {
		return Global{Module: module, Name: name}, nil
	}
	if d.opts.Allow != nil && d.opts.Allow(module, name) {
		return Global{Module: module, Name: name}, nil
	}
	return Global{}, &NotAllowedError{Module: module, Name: name}
}

// call handles REDUCE, INST and OBJ: fn(*args). Interpreted names are evaluated
// here; any other (allowed) callable is recorded, never called.
func (d *decoder) call(fn any, args Tuple) (any, error) {
	g, ok := fn.(Global)
	if !ok {
		return nil, fmt.Errorf("cannot call a %s", d.typeName(fn))
	}
	c := canonicalName(g.Module, g.Name)
	switch builtins[c] {
	case 0: // allowed by the caller: record
		return &Object{Module: g.Module, Name: g.Name, Args: args}, nil
	case refOnly:
		if d.opts.Allow != nil && d.opts.Allow(g.Module, g.Name) {
			return &Object{Module: g.Module, Name: g.Name, Args: args}, nil
		}
		return nil, fmt.Errorf("calling %s is not supported", g)
	case joblibWrapper:
		o := &Object{Module: g.Module, Name: g.Name, Args: args}
		d.wrappers[o] = true
		return o, nil
	case reconstructor:
		// copyreg._reconstructor(cls, base, state) is object.__new__(cls) for
		// protocols 0 and 1 when base is object.
		if len(args) != 3 {
			return nil, fmt.Errorf("copyreg._reconstructor takes 3 arguments, got %d", len(args))
		}
		base, ok := args[1].(Global)
		if !ok || canonicalName(base.Module, base.Name) != "builtins.object" || args[2] != nil {
			return nil, fmt.Errorf("copyreg._reconstructor with base %s is not supported", d.typeName(args[1]))
		}
		return d.newObject(args[0], nil, nil)
	case newObjFunc:
		if len(args) == 0 {
			return nil, errors.New("copyreg.__newobj__ without a class")
		}
		return d.newObject(args[0], args[1:], nil)
	case newObjExFunc:
		if len(args) != 3 {
			return nil, fmt.Errorf("copyreg.__newobj_ex__ takes 3 arguments, got %d", len(args))
		}
		a, ok1 := args[1].(Tuple)
		kw, ok2 := args[2].(*Dict)
		if !ok1 || !ok2 {
			return nil, errors.New("copyreg.__newobj_ex__ wants a tuple and a dict")
		}
		return d.newObject(args[0], a, kw)
	case codecsEncode:
		return d.codecsEncode(args)
	case makeSet:
		return d.makeSet(g, args)
	case makeBytes:
		return d.makeBytes(g, args)
	case makeDict:
		// OrderedDict.__reduce__ calls it with no arguments; the items follow
		// with SETITEMS.
		if len(args) != 0 {
			return nil, fmt.Errorf("calling %s with arguments is not supported", g)
		}
		return &Dict{}, nil
	case npReconstruct:
		return d.npReconstruct(args)
	case npScalar:
		return d.npScalar(args)
	case npDtype:
		return d.npDtype(args)
	case npFromBuffer:
		return d.npFromBuffer(args)
	}
	return nil, fmt.Errorf("calling %s is not supported", g)
}

// newObject handles NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args, **kwargs).
func (d *decoder) newObject(cls any, args Tuple, kwargs *Dict) (any, error) {
	g, ok := cls.(Global)
	if !ok {
		return nil, fmt.Errorf("cannot instantiate a %s", d.typeName(cls))
	}
	switch builtins[canonicalName(g.Module, g.Name)] {
	case 0:
		return &Object{Module: g.Module, Name: g.Name, Args: args, Kwargs: kwargs}, nil
	case joblibWrapper:
		o := &Object{Module: g.Module, Name: g.Name, Args: args, Kwargs: kwargs}
		d.wrappers[o] = true
		return o, nil
	case makeSet:
		// set.__new__ ignores its arguments; the items come with BUILD/ADDITEMS.
		s := &List{}
		d.sets[s] = true
		return s, nil
	}
	return nil, fmt.Errorf("instantiating %s is not supported", g)
}

// build handles BUILD: inst.__setstate__(state) or inst.__dict__.update(state).
// It returns what replaces inst on the stack (joblib's wrapper becomes its array).
func (d *decoder) build(inst, state any) (any, error) {
	switch x := inst.(type) {
	case *NDArray:
		if d.built[x] || !d.pending[x] {
			return nil, errors.New("BUILD on an array that was not made by numpy's _reconstruct, or twice")
		}
		d.built[x] = true
		delete(d.pending, x)
		if err := d.setArrayState(x, state); err != nil {
			return nil, err
		}
		return x, nil
	case *Dtype:
		if d.built[x] {
			return nil, errors.New("BUILD on a dtype twice")
		}
		d.built[x] = true
		if err := d.setDtypeState(x, state); err != nil {
			return nil, err
		}
		return x, nil
	case *Object:
		if d.wrappers[x] {
			delete(d.wrappers, x)
			return d.readJoblibArray(state)
		}
		if prev, ok := x.State.(*Dict); ok {
			if next, ok := state.(*Dict); ok && prev != next {
				// A second BUILD updates __dict__ as Python's default does. A
				// memoized dict can be merged again and again for a few bytes
				// each, so the merge is paid for.
				if err := d.charge(32 * len(next.Keys)); err != nil {
					return nil, err
				}
				for i, k := range next.Keys {
					if err := d.setItems(prev, []any{k, next.Values[i]}); err != nil {
						return nil, err
					}
				}
				return x, nil
			}
		}
		x.State = state
		return x, nil
	}
	return nil, fmt.Errorf("BUILD on a %s", d.typeName(inst))
}

// codecsEncode is _codecs.encode(str, encoding): how protocols 0–2 carry bytes
// written by Python 3 (numpy's raw array data among them).
func (d *decoder) codecsEncode(args Tuple) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("_codecs.encode takes 1 to 3 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("_codecs.encode of a %s", d.typeName(args[0]))
	}
	enc := "utf-8"
	if len(args) >= 2 {
		if enc, ok = args[1].(string); !ok {
			return nil, errors.New("_codecs.encode: encoding is not a str")
		}
	}
	return d.encodeString(s, enc)
}

func (d *decoder) encodeString(s, encoding string) ([]byte, error) {
	if err := d.charge(len(s)); err != nil {
		return nil, err
	}
	switch strings.ReplaceAll(strings.ToLower(encoding), "_", "-") {
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1":
		return stringToLatin1(s)
	case "utf-8", "utf8":
		return []byte(s), nil
	case "ascii":
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, fmt.Errorf("string is not ascii: byte 0x%02x at %d", s[i], i)
			}
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("encoding %q is not supported", encoding)
}

func (d *decoder) makeSet(g Global, args Tuple) (any, error) {
	s := &List{}
	d.sets[s] = true
	switch len(args) {
	case 0:
		return s, nil
	case 1:
		items, ok := d.iterable(args[0])
		if !ok {
			return nil, fmt.Errorf("%s of a %s", g, d.typeName(args[0]))
		}
		if err := d.charge(16 * len(items)); err != nil {
			return nil, err
		}
		s.Items = append([]any(nil), items...)
		return s, nil
	}
	return nil, fmt.Errorf("%s takes at most 1 argument, got %d", g, len(args))
}

// iterable returns the items of a list, tuple or set argument.
func (d *decoder) iterable(v any) ([]any, bool) {
	switch x := v.(type) {
	case *List:
		return x.Items, true
	case Tuple:
		return x, true
	}
	return nil, false
}

// makeBytes is bytes(...) / bytearray(...): empty, a copy of bytes, or
// (str, encoding) as Python 3 writes a bytearray in protocols 0–2.
func (d *decoder) makeBytes(g Global, args Tuple) (any, error) {
	switch len(args) {
	case 0:
		return []byte{}, nil
	case 1:
		if b, ok := args[0].([]byte); ok {
			if err := d.charge(len(b)); err != nil {
				return nil, err
			}
			return append([]byte{}, b...), nil
		}
	case 2:
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if ok1 && ok2 {
			return d.encodeString(s, enc)
		}
	}
	return nil, fmt.Errorf("%s with these arguments is not supported", g)
}
