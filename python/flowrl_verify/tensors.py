"""Tensor sets of flowrl's C API: safetensors files (checkpoints, golden cases) as dicts of
NumPy arrays plus their string metadata, read and validated by flowrl's own reader."""
import ctypes

import numpy as np

from . import _lib
from ._lib import check

# safetensors dtype -> NumPy (BF16 has no NumPy dtype: its raw 16-bit words, as uint16)
DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_NUMPY_TO_ST = {np.dtype(v).str: k for k, v in DTYPES.items() if k != "BF16"}


class TensorSet:
    """An owned flowrl_tensors handle."""

    def __init__(self, handle=None):
        lib = _lib.load()
        if handle is None:
            handle = ctypes.c_void_p()
            check(lib.flowrl_tensors_new(ctypes.byref(handle)), "flowrl_tensors_new")
        self._h = handle

    @classmethod
    def read(cls, path):
        h = ctypes.c_void_p()
        check(_lib.load().flowrl_tensors_read(str(path).encode(), ctypes.byref(h)), "flowrl_tensors_read")
        return cls(h)

    @classmethod
    def from_dict(cls, tensors, meta=None):
        from .api import to_numpy
        t = cls()
        lib = _lib.load()
        for name, a in tensors.items():
            arr = to_numpy(a, name=name)
            if arr.dtype.str not in _NUMPY_TO_ST and arr.dtype.kind == "f":
                arr = arr.astype(np.float32)
            st = _NUMPY_TO_ST.get(arr.dtype.str)
            if st is None:
                raise TypeError(f"flowrl_verify: {name}: dtype {arr.dtype} has no safetensors equivalent")
            shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
            check(lib.flowrl_tensors_add(t._h, name.encode(), st.encode(), arr.ndim, shape, arr.ctypes.data),
                  "flowrl_tensors_add")
        for k, v in (meta or {}).items():
            check(lib.flowrl_tensors_meta_set(t._h, str(k).encode(), str(v).encode()), "flowrl_tensors_meta_set")
        return t

    def write(self, path):
        check(_lib.load().flowrl_tensors_write(self._h, str(path).encode()), "flowrl_tensors_write")

    def tensors(self):
        """{name: NumPy array} (copies), in file order."""
        lib = _lib.load()
        out = {}
        name, dt = ctypes.c_char_p(), ctypes.c_char_p()
        nd, shape = ctypes.c_int(), (ctypes.c_int64 * 4)()
        data, nbytes = ctypes.c_void_p(), ctypes.c_int64()
        for i in range(lib.flowrl_tensors_count(self._h)):
            check(lib.flowrl_tensors_get(self._h, i, ctypes.byref(name), ctypes.byref(dt), ctypes.byref(nd), shape,
                                         ctypes.byref(data), ctypes.byref(nbytes)), "flowrl_tensors_get")
            raw = ctypes.string_at(data.value, nbytes.value) if nbytes.value else b""
            a = np.frombuffer(raw, dtype=DTYPES[dt.value.decode()]).reshape(tuple(shape[:nd.value])).copy()
            out[name.value.decode()] = a
        return out

    def meta(self):
        lib = _lib.load()
        out = {}
        k, v = ctypes.c_char_p(), ctypes.c_char_p()
        for i in range(lib.flowrl_tensors_meta_count(self._h)):
            check(lib.flowrl_tensors_meta_get(self._h, i, ctypes.byref(k), ctypes.byref(v)), "flowrl_tensors_meta_get")
            out[k.value.decode()] = v.value.decode()
        return out

    def close(self):
        if getattr(self, "_h", None):
            _lib.load().flowrl_tensors_free(self._h)
            self._h = None

    __del__ = close


def read_safetensors(path):
    """(tensors {name: array}, metadata {key: value}) of a safetensors file, validated by flowrl
    (digests of checkpoints included)."""
    t = TensorSet.read(path)
    try:
        return t.tensors(), t.meta()
    finally:
        t.close()


def write_safetensors(path, tensors, meta=None):
    """Writes {name: array} (+ string metadata) as flowrl writes safetensors (atomically)."""
    t = TensorSet.from_dict(tensors, meta)
    try:
        t.write(path)
    finally:
        t.close()
