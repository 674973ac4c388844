"""The records of a .sprig blob read in Python, as docs/blob-format.md lays them out.

For the benchmark tools (tools/bench_peers.py, tools/tflite_from_blob.py); it checks
only the magic. Use the Swift reader (or `sprig-edge info`) to validate a blob.
"""
import struct

import numpy as np

OPCODES = {1: "dense", 2: "conv2d", 3: "depthwise", 4: "maxpool", 5: "avgpool", 6: "gap", 7: "add",
           8: "reshape", 9: "softmax", 10: "quantize", 11: "dequantize", 12: "l2normalize"}
DTYPES = {1: np.float32, 2: np.int8, 3: np.int32}


class Blob:
    """The records of a .sprig blob (docs/blob-format.md); no validation beyond what this needs."""

    def __init__(self, data):
        self.data = data
        u32 = lambda at: struct.unpack_from("<I", data, at)[0]
        if data[:4] != b"SPRG":
            raise ValueError("not a .sprig blob (bad magic)")
        sections = {}
        for s in range(u32(20)):
            kind, offset, size, count = struct.unpack_from("<4I", data, u32(24) + 16 * s)
            sections[kind] = (offset, count)
        self.tensors = []
        offset, count = sections[1]
        for t in range(count):
            r = offset + 64 * t
            dtype, rank, storage = data[r], data[r + 1], data[r + 2]
            dims = list(struct.unpack_from("<4I", data, r + 4))[:rank]
            data_offset, data_bytes, qcount, qaxis, qoffset = struct.unpack_from("<5I", data, r + 20)
            quant = [struct.unpack_from("<fi", data, qoffset + 8 * k) for k in range(qcount)]
            self.tensors.append({"dtype": DTYPES[dtype], "dims": dims, "constant": storage == 1,
                                 "offset": data_offset, "bytes": data_bytes, "quant": quant})
        self.ops = []
        offset, count = sections[2]
        for o in range(count):
            r = offset + 64 * o
            slots = struct.unpack_from("<6I", data, r + 4)[:data[r + 2]]
            self.ops.append({"op": OPCODES.get(data[r], f"opcode {data[r]}"), "act": data[r + 1],
                             "inputs": [-1 if s == 0xFFFFFFFF else s for s in slots],
                             "output": u32(r + 28), "params": list(struct.unpack_from("<8i", data, r + 32))})
        offset, count = sections[3]
        self.io = [struct.unpack_from("<IIff", data, offset + 16 * k) for k in range(count)]

    def constant(self, t):
        info = self.tensors[t]
        return np.frombuffer(self.data, info["dtype"], count=info["bytes"] // np.dtype(info["dtype"]).itemsize,
                             offset=info["offset"]).reshape(info["dims"])

    def input_normalisation(self):
        """(mean, std) of the first input record, exactly as stored (f32)."""
        for role, _, mean, std in self.io:
            if role == 0:
                return mean, std
        raise ValueError("no input record")
