#!/usr/bin/python3
"""Writes the pickle/joblib fixtures for internal/pickle and what each must decode to.

Run from the repository root with Debian's Python (python3-numpy, python3-joblib,
python3-sklearn):

    /usr/bin/python3 internal/pickle/testdata/gen.py

Every fixture NAME.pkl / NAME.joblib gets NAME.json beside it, holding either
{"value": ...}, the decoded value in the canonical form below, or {"error": "..."},
a substring the decode error must contain. The Go test (fixtures_test.go) renders
what it decodes in the same form and compares.

Canonical form: None, True, False as JSON; {"int": "decimal"}; {"float": "16 hex
digits of the IEEE bits"}; {"str": s}; {"bytes": hex}; {"tuple": [...]}; {"list":
[...]} (sets too: the Go decoder gives sets as lists); {"dict": [[k, v], ...]};
{"ndarray": {"dtype": D, "shape": [...], "data": hex of the C-order bytes} or
"objects": [...] for object arrays}; {"dtype": D} with D = {"kind", "itemsize",
"str", "big_endian", "fields": [[name, D, offset], ...] or null}; {"global": "module.name"};
{"object": "module.name", "args": [...], "kwargs": ..., "state": ...} for instances
of allowed classes, recorded the way the decoder records them.

Fixtures are deterministic (fixed seeds) but depend on the Python, numpy and joblib
versions (Debian 12: Python 3.11, numpy 1.24, joblib 1.2, scikit-learn 1.2).
"""

import copyreg
import io
import json
import os
import pickle
import struct
import subprocess
import sys

import joblib
import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__))


# --- allowed classes (the Go test allows module __main__) -------------------

class Point:
    """A plain class: pickled as cls + __dict__ state."""

    def __init__(self, x, y):
        self.x = x
        self.y = y


class Slotted:
    """__slots__: state is (None, {slot: value})."""
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


class Reduced:
    """A custom __reduce__ with constructor arguments and a state."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (Reduced, self.args, {"note": "from __reduce__"})


class KwNew:
    """__getnewargs_ex__: NEWOBJ_EX under protocol 4+."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __getnewargs_ex__(self):
        return self.args, self.kwargs


# --- refused payloads ---------------------------------------------------------

class RunsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class RunsPopen:
    def __reduce__(self):
        return (subprocess.Popen, (["echo", "pwned"],))


# --- canonical description ----------------------------------------------------

def fbits(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def ddesc(dt):
    fields = None
    if dt.names is not None:
        fields = [[n, ddesc(dt.fields[n][0]), dt.fields[n][1]] for n in dt.names]
    return {"kind": dt.kind, "itemsize": dt.itemsize, "str": dt.str,
            "big_endian": dt.byteorder == ">", "fields": fields}


def gname(g):
    return g.__module__ + "." + g.__qualname__


def reduce_record(obj, proto):
    """What the decoder records for an instance: mirror pickle's save_reduce."""
    rv = obj.__reduce_ex__(proto)
    func, args = rv[0], rv[1]
    state = rv[2] if len(rv) > 2 else None
    kwargs = None
    if func is copyreg._reconstructor:
        cls, args = args[0], ()
    elif getattr(func, "__name__", "") == "__newobj__":
        cls, args = args[0], args[1:]
    elif getattr(func, "__name__", "") == "__newobj_ex__":
        cls, args, kwargs = args
    else:
        cls = func
    out = {"object": gname(cls), "args": [desc(a, proto) for a in args], "state": desc(state, proto)}
    if kwargs is not None:
        out["kwargs"] = desc(kwargs, proto)
    return out


def desc(v, proto=4):
    if v is None or isinstance(v, (bool, np.bool_)):
        return None if v is None else bool(v)
    if isinstance(v, (int, np.integer)):
        return {"int": str(int(v))}
    if isinstance(v, (float, np.floating)):
        return {"float": fbits(v)}
    if isinstance(v, np.str_):
        return {"str": str(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, tuple):
        return {"tuple": [desc(x, proto) for x in v]}
    if isinstance(v, (list, set, frozenset)):
        return {"list": [desc(x, proto) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[desc(k, proto), desc(x, proto)] for k, x in v.items()]}
    if isinstance(v, np.ndarray):
        d = {"dtype": ddesc(v.dtype), "shape": list(v.shape)}
        if v.dtype.hasobject:
            d["objects"] = [desc(x, proto) for x in v.ravel(order="C")]
        else:
            d["data"] = v.tobytes(order="C").hex()
        return {"ndarray": d}
    if isinstance(v, np.dtype):
        return {"dtype": ddesc(v)}
    if isinstance(v, type) or callable(v):
        return {"global": gname(v)}
    return reduce_record(v, proto)


# --- the values ------------------------------------------------------------------

def primitives():
    shared = [1, "two"]
    strs = ["s%d" % i for i in range(300)]
    return {
        "none": None, "true": True, "false": False,
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, 2**63 - 1, -2**63,
                 2**63, -2**63 - 1, 2**64, 12345678901234567890123456789, -(10**40)],
        "floats": [0.0, -0.0, 1.5, -2.25, 1e-300, 1e300, 5e-324, float("nan"), float("inf"),
                   float("-inf"), 0.1, 1e15, 123456789.125],
        "strs": ["", "ascii", "héllo wörld", "日本語", "emoji 🐍", "back\\slash \\u1234 not an escape",
                 "new\nline\r\ttab", "quote ' and \"", "\x00nul", "a" * 300],
        "bytes": [b"", b"\x00\x01\xff", bytes(range(256)), b"x" * 300],
        "bytearray": bytearray(b"mutable\x00\xff"),
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((1, (2, (3,))),)],
        "nested": {"list": [[], [[]], [1, [2, [3, [4]]]]], "dict": {"a": {"b": {"c": {}}}},
                   1: "int key", (1, 2): "tuple key", None: "none key", 2.5: "float key"},
        "sets": [set(), {1}, frozenset(), frozenset({"x"})],
        "shared": [shared, shared, (shared, shared)],
        "empty_dict": {},
        # more than one APPENDS batch (1000), and more than 256 memoized objects
        # so that LONG_BINPUT/LONG_BINGET appear
        "long_list": list(range(1001)),
        "many_strs": strs,
        "many_refs": strs[::7],
    }


def instances(proto):
    v = {
        "point": Point(1, "two"),
        "reduced": Reduced(5, "six"),
        "class_ref": Point,
        "function_ref": np.dtype,
    }
    if proto >= 2:
        # protocols 0 and 1 cannot pickle __slots__ without __getstate__
        v["slotted"] = Slotted(3, [4])
    if proto >= 4:
        # keyword arguments to __new__ need NEWOBJ_EX; protocols 2 and 3 would
        # pickle a functools.partial instead
        v["kwnew"] = KwNew(7, eight=8)
    return v


def arrays(for_joblib=False):
    rng = np.random.RandomState(0)
    node = np.dtype([("left", "<i8"), ("right", "<i8"), ("feature", "<i8"), ("threshold", "<f8"),
                     ("impurity", "<f8"), ("n_node_samples", "<i8"),
                     ("weighted_n_node_samples", "<f8")])
    nodes = np.zeros(3, dtype=node)
    nodes["left"] = [1, -1, -1]
    nodes["threshold"] = [0.5, -2, -2]
    nodes["impurity"] = rng.rand(3)
    packed = np.dtype({"names": ["u", "f"], "formats": ["u1", "<f4"], "offsets": [0, 4], "itemsize": 12})
    v = {
        "f64": rng.rand(2, 3),
        "f32": rng.rand(4).astype(np.float32),
        "f16": np.array([1.5, -0.25, 65504], dtype=np.float16),
        "i64": np.arange(-3, 3, dtype=np.int64),
        "i32": np.array([[1, -2], [3, -4]], dtype=np.int32),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "bool": np.array([True, False, True]),
        "c128": np.array([1 + 2j, -3.5j]),
        "big_endian": np.arange(3, dtype=">i4"),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
        "fortran_2d_i8": np.asfortranarray(np.arange(6, dtype=np.int8).reshape(3, 2)),
        "zero_d": np.array(3.25),
        "empty": np.zeros((0, 3)),
        "empty_1d_i64": np.array([], dtype=np.int64),
        "structured": nodes,
        "structured_padded": np.zeros(2, dtype=packed),
        "structured_big_endian": np.array([(1, 2.5), (-3, 1e10)], dtype=[("a", ">i4"), ("b", ">f8")]),
        "object": np.array(["a", 1, None, 2.5, ("t",)], dtype=object),
        "object_2d": np.array([["a", "b"], ["c", None]], dtype=object),
        "object_fortran": np.asfortranarray(np.array([["a", "b", "c"], [1, 2, 3]], dtype=object)),
        "unicode": np.array(["", "abc", "日本"]),
        "bytes_S": np.array([b"ab", b"c"]),
        "scalars": [np.float64(1.5), np.float32(-2.5), np.int64(-7), np.int32(9), np.uint8(200),
                    np.uint64(2**64 - 1), np.bool_(True), np.bool_(False), np.float16(0.5),
                    np.str_("sc")],
        "dtypes": [np.dtype("f8"), np.dtype(">i2"), node],
        "type_refs": [np.float64, np.int32, np.ndarray],
    }
    if for_joblib:
        # joblib.load fills a structured array field by field, so its padding
        # bytes are whatever np.empty returned: nothing to compare against.
        del v["structured_padded"]
    return v


# --- writing -------------------------------------------------------------------------

def write(name, data, expected):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    base = name.rsplit(".", 1)[0]
    with open(os.path.join(OUT, base + ".json"), "w") as f:
        json.dump(expected, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


def write_pickle(name, value, proto):
    data = pickle.dumps(value, protocol=proto)
    # the fixture must round-trip in Python itself
    pickle.loads(data)
    write(name, data, {"value": desc(value, proto)})


def write_joblib(name, value, **kw):
    path = os.path.join(OUT, name)
    joblib.dump(value, path, **kw)
    with open(path, "rb") as f:
        data = f.read()
    back = joblib.load(path)
    expected = {"value": desc(back, kw.get("protocol", 4))}
    write(name, data, expected)


# Python 2 wrote protocol-0 pickles with str (bytes) STRING opcodes, __builtin__
# and copy_reg names; Python 2 cannot run here, so these are written by hand the
# way Python 2.7 + numpy wrote them, and checked by loading them with Python 3's
# pickle.loads(..., encoding="latin1"), which is the behaviour the Go decoder
# copies.
def py2_string(b):
    return b"S" + repr(bytes(b))[1:].encode("ascii") + b"\n"


def py2_numpy_array(arr):
    raw = arr.tobytes(order="A")
    fortran = b"I01\n" if (arr.flags.f_contiguous and not arr.flags.c_contiguous) else b"I00\n"
    shape = b"(" + b"".join(b"I%d\n" % s for s in arr.shape) + b"t"
    return (b"cnumpy.core.multiarray\n_reconstruct\np0\n(cnumpy\nndarray\np1\n(I0\ntp2\nS'b'\np3\ntRp4\n"
            b"(I1\n" + shape + b"cnumpy\ndtype\np5\n(" + py2_string(arr.dtype.str[1:].encode()) +
            b"I0\nI1\ntp6\nRp7\n(I3\nS'<'\np8\nNNNI-1\nI-1\nI0\ntp9\nb" + fortran +
            py2_string(raw) + b"tp10\nb.")


def py2_proto2_array(arr):
    """numpy under Python 2 with protocol 2: SHORT_BINSTRING/BINSTRING data."""
    raw = arr.tobytes(order="C")
    code = arr.dtype.str[1:].encode()
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85q\x02"
            b"U\x01b\x87Rq\x03(K\x01" + b"".join(b"K%c" % s for s in arr.shape) + b"\x85cnumpy\ndtype\nq\x04"
            b"U" + bytes([len(code)]) + code + b"K\x00K\x01\x87Rq\x05(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
            b"K\x00tb\x89T" + struct.pack("<I", len(raw)) + raw + b"tb.")


PY2 = {
    "py2_proto2_array_i8": py2_proto2_array(np.array([1, -2, 3], dtype="<i8")),
    "py2_array_f8": py2_numpy_array(np.array([1.5, -2.0, 1e-3])),
    "py2_array_fortran_i4": py2_numpy_array(np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3))),
    "py2_object": (b"ccopy_reg\n_reconstructor\np0\n(c__main__\nPoint\np1\nc__builtin__\nobject\np2\n"
                   b"Ntp3\nRp4\n(dp5\nS'x'\np6\nI1\nsS'label'\np7\nS'caf\\xe9 \\'q\\' \\\\ \\n'\np8\n"
                   b"sS'big'\np9\nL123456789012345678901234567890L\nsS'flag'\np10\nI01\nsb."),
    "py2_set_unicode": (b"(lp0\nc__builtin__\nset\np1\n((lp2\nI1\naI2\natp3\nRp4\naVcaf\xe9 \\u20ac"
                        b" \\U0001f40d \\\\u0041\np5\naF0.1\naF-inf\naI-5\naL-99999999999999999999L\na."),
}


def main():
    np.random.seed(0)
    for proto in range(6):
        write_pickle("primitives_p%d.pkl" % proto, primitives(), proto)
        write_pickle("arrays_p%d.pkl" % proto, arrays(), proto)
        write_pickle("instances_p%d.pkl" % proto, instances(proto), proto)

    for name, kw in [("none", dict(compress=0)), ("zlib", dict(compress=3)),
                     ("gzip", dict(compress=("gzip", 3))), ("bz2", dict(compress=("bz2", 3))),
                     ("proto0", dict(compress=0, protocol=0)), ("proto2", dict(compress=0, protocol=2))]:
        write_joblib("arrays_joblib_%s.joblib" % name, arrays(for_joblib=True), **kw)
    # joblib writes no alignment padding to a file object it cannot tell() on
    # (numpy_array_alignment_bytes=None), and joblib <= 1.1 had no such attribute.
    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.buf += b
            return len(b)

        def tell(self):
            raise io.UnsupportedOperation("tell")

    sink = Unseekable()
    joblib.dump(arrays(for_joblib=True), sink)
    value = joblib.load(io.BytesIO(bytes(sink.buf)))
    write("arrays_joblib_unaligned.joblib", bytes(sink.buf), {"value": desc(value)})

    wrapper = joblib.numpy_pickle.NumpyArrayWrapper
    saved = wrapper.safe_get_numpy_array_alignment_bytes
    wrapper.safe_get_numpy_array_alignment_bytes = lambda self: None
    wrapper.__getstate__ = lambda self: {k: v for k, v in self.__dict__.items()
                                         if k != "numpy_array_alignment_bytes"}
    try:
        write_joblib("arrays_joblib_v1_1.joblib", arrays(for_joblib=True))
    finally:
        wrapper.safe_get_numpy_array_alignment_bytes = saved
        del wrapper.__getstate__

    for name in ("xz", "lzma"):
        joblib.dump(arrays(for_joblib=True), os.path.join(OUT, "arrays_joblib_%s.joblib" % name), compress=(name, 3))
        with open(os.path.join(OUT, "arrays_joblib_%s.json" % name), "w") as f:
            json.dump({"error": "file is %s-compressed, which is not supported" % name}, f)
            f.write("\n")

    for name, data in PY2.items():
        value = pickle.loads(data, encoding="latin1")
        write(name + ".pkl", data, {"value": desc(value, 0)})

    for proto in (0, 2, 4):
        refused = {"error": 'refusing to load "posix.system": not an allowed class'}
        write("evil_system_p%d.pkl" % proto, pickle.dumps([1, RunsSystem()], protocol=proto), refused)
    write("evil_popen_p4.pkl", pickle.dumps({"a": RunsPopen()}, protocol=4),
          {"error": 'refusing to load "subprocess.Popen": not an allowed class'})

    forest()


def forest():
    """A 20-tree random forest: the benchmark's realistic joblib file."""
    from sklearn.ensemble import RandomForestClassifier
    rng = np.random.RandomState(0)
    X = rng.rand(200, 4)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.7)
    rf = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    path = os.path.join(OUT, "forest_20.joblib")
    joblib.dump(rf, path, compress=3)
    trees = [{"node_count": int(e.tree_.node_count),
              "threshold": [fbits(t) for t in e.tree_.threshold],
              "feature": [int(f) for f in e.tree_.feature]} for e in rf.estimators_]
    with open(os.path.join(OUT, "forest_20.json"), "w") as f:
        json.dump({"class": gname(type(rf)), "classes": [int(c) for c in rf.classes_], "trees": trees},
                  f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
