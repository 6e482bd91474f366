"""Writes pyfloat.txt: float64 bit patterns and what Python's json.dumps writes for
them, the reference for AppendPyFloat. Run: /usr/bin/python3 gen_pyfloat.py"""
import json
import random
import struct

random.seed(7)
vals = [0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-4, 1e-5, 0.0001234, 0.00001234, 123456789.0,
        1e15, 1e16, 1e17, 9999999999999998.0, 1.5e300, 5e-324, 2.2250738585072014e-308,
        1.7976931348623157e308, 3.141592653589793, 2.0 ** 53, 2.0 ** 53 + 2, 1e22, 1e21,
        0.3, 2.5, 100.0, 1234.5678, 0.000999, 12345678901234567890.0]
for _ in range(3000):
    kind = random.random()
    if kind < 0.4:
        vals.append(random.uniform(-1, 1) * 10 ** random.randint(-8, 20))
    elif kind < 0.7:
        bits = random.getrandbits(64)
        f = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if f == f and f not in (float("inf"), float("-inf")):
            vals.append(f)
    else:
        vals.append(float(random.randint(-10 ** 6, 10 ** 6)) / 10 ** random.randint(0, 6))
with open("pyfloat.txt", "w") as out:
    for v in vals:
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        out.write("%016x %s\n" % (bits, json.dumps(v)))
