"""flowrl's preference files (docs/preferences.md) read with NumPy alone: no libflowrl needed,
so any training script can load the pairs `flowrl prefs make` writes."""
import json
import struct

import numpy as np

_DTYPES = {"F32": "<f4", "I32": "<i4"}
_REQUIRED_META = ("format", "format_version", "task", "D", "reward", "tie_rule", "ckpt", "ckpt_digest", "sampler",
                  "noise", "steps", "cfg", "seed", "flowrl_version")


def read_prefs(path):
    """(arrays, meta) of a preference file: arrays {"x_w", "x_l": (N, D) float32, "prompt": (N,) int32,
    "r_w", "r_l": (N,) float32, and "x_T": (N, D) float32 when stored}; meta {key: str}, the
    safetensors __metadata__ (digest.* entries included). Checks the layout, the format name and
    version, the shapes and r_w > r_l; flowrl's own reader (`flowrl prefs show`) checks the rest."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: {len(buf)} bytes, not a safetensors file")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"{path}: header of {n} bytes runs past the end of the file (truncated)")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    for k in _REQUIRED_META:
        if k not in meta:
            raise ValueError(f"{path}: metadata '{k}' is missing")
    if meta["format"] != "flowrl.prefs" or meta["format_version"] != "1":
        raise ValueError(f"{path}: format {meta['format']} version {meta['format_version']}, expected flowrl.prefs 1")
    data = buf[8 + n:]
    arrays = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        if e["dtype"] not in _DTYPES or end > len(data):
            raise ValueError(f"{path}: tensor '{name}': dtype {e['dtype']}, offsets {b}..{end}")
        arrays[name] = np.frombuffer(data[b:end], dtype=_DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    N, D = arrays["x_w"].shape
    if D != int(meta["D"]):
        raise ValueError(f"{path}: tensor 'x_w': D = {D}, metadata 'D' = {meta['D']}")
    for name, shape in (("x_l", (N, D)), ("prompt", (N,)), ("r_w", (N,)), ("r_l", (N,)), ("x_T", (N, D))):
        if name in arrays and arrays[name].shape != shape:
            raise ValueError(f"{path}: tensor '{name}': shape {arrays[name].shape}, expected {shape}")
        if name not in arrays and name != "x_T":
            raise ValueError(f"{path}: tensor '{name}' is missing")
    if not np.all(arrays["r_w"] > arrays["r_l"]):
        raise ValueError(f"{path}: r_w <= r_l at row {int(np.argmin(arrays['r_w'] > arrays['r_l']))}")
    return arrays, meta
