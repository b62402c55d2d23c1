#!/usr/bin/env python3
"""Check your own Flow-GRPO SDE step against flowrl's golden case.

    python3 examples/check_sde_step.py [golden/sampler.sde.safetensors]

The workflow a researcher uses to verify their own (PyTorch) code against flowrl: load the
golden case's inputs, run *your* step on them, compare with the stored outputs. Here "your
code" is `sde_step` below, a numpy transcription of docs/algorithms/samplers.md §3 (Flow-GRPO's
sde_step_with_logprob) in float32, operation by operation as the PyTorch code writes it.
Replace it with a call into your own implementation.

Bits will differ from flowrl's in the last place (numpy's log is libm's, not flowrl's, and
numpy's mean sums pairwise, not in flowrl's 8-lane order), so the comparison uses a
tolerance: |yours - golden| <= ATOL + RTOL * |golden|. Exit status 0 = PASS, 1 = FAIL,
2 = the file could not be read. Needs only numpy (Debian: python3-numpy); the safetensors
file is parsed by hand (8-byte little-endian header length, JSON header, raw buffers).
"""
import json
import struct
import sys

import numpy as np

ATOL = 1e-5  # a few float32 ulps of the log-prob (|logp| ~ 1..10) and of x' (|x'| ~ 1)
RTOL = 1e-5

DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}


def load_safetensors(path):
    """{name: numpy array}, {metadata key: value} of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    buf = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        a = np.frombuffer(buf[begin:end], dtype=DTYPES[e["dtype"]])
        tensors[name] = a.reshape(e["shape"])
    return tensors, meta


def sde_step(x, v, xi, sigma, sigma_next, sigma1, a):
    """Flow-GRPO SDE step with log-prob (docs/algorithms/samplers.md §3), float32 throughout.

    Returns x' (B, D), mu (B, D), log p (B,) (a MEAN over the non-batch dims), sigma_t."""
    f32 = np.float32
    sigma, sigma_next, sigma1, a = f32(sigma), f32(sigma_next), f32(sigma1), f32(a)
    dt = sigma_next - sigma
    # the only guard: sigma == 1 exactly uses sigma_1 of the grid in 1 - sigma
    std_dev_t = np.sqrt(sigma / (f32(1) - (sigma1 if sigma == f32(1) else sigma))) * a
    mean = (x * (f32(1) + std_dev_t ** 2 / (f32(2) * sigma) * dt)
            + v * (f32(1) + std_dev_t ** 2 * (f32(1) - sigma) / (f32(2) * sigma)) * dt)
    step_std = std_dev_t * np.sqrt(f32(-1) * dt)
    x_next = mean + step_std * xi
    logp = (-((x_next - mean) ** 2) / (f32(2) * step_std ** 2)
            - np.log(step_std) - np.log(np.sqrt(f32(2) * f32(np.pi))))
    logp = logp.mean(axis=tuple(range(1, logp.ndim)), dtype=np.float32)
    return x_next, mean, logp, std_dev_t


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "golden/sampler.sde.safetensors"
    try:
        t, meta = load_safetensors(path)
    except (OSError, ValueError, KeyError) as e:
        print(f"check_sde_step: cannot read {path}: {e}", file=sys.stderr)
        return 2
    if meta.get("param.sampler") != "sde":
        print(f"check_sde_step: {path} is not an sde case (param.sampler = "
              f"{meta.get('param.sampler')})", file=sys.stderr)
        return 2
    print(f"{path}: case {meta.get('golden.case')}, written by flowrl {meta.get('flowrl.version')}")
    x_next, mean, logp, std_dev = sde_step(t["in.x"], t["in.model_out"], t["in.xi"],
                                           t["in.sigma"], t["in.sigma_next"], t["in.sigma1"],
                                           t["in.noise"])
    ok = True
    for name, mine in (("x_next", x_next), ("mean", mean), ("logp", logp),
                       ("std_dev", std_dev)):
        gold = t["out." + name]
        mine = np.asarray(mine, dtype=np.float32).reshape(gold.shape)
        diff = np.abs(mine.astype(np.float64) - gold.astype(np.float64))
        good = bool(np.all(diff <= ATOL + RTOL * np.abs(gold.astype(np.float64))))  # NaN fails
        same = int(np.sum(mine.view(np.uint32) == gold.view(np.uint32)))
        print(f"  out.{name:8s} max abs diff {diff.max():.3e}  bit-identical {same}/{gold.size}"
              f"  {'ok' if good else 'OUT OF TOLERANCE'}")
        ok &= good
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
