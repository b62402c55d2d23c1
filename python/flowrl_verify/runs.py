"""Readers of flowrl run directories (flowrl/run.h: config.json, metrics.jsonl,
checkpoints/step-N.safetensors, audit.log) and an audit diff (as `flowrl audit A B`: the first
step and record whose digests differ, with the element difference when both runs kept a
checkpoint of that step holding the tensor)."""
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ._lib import FlowrlError
from .golden import compare, ulp_distance
from .tensors import read_safetensors


def read_config(run_dir):
    """config.json: every option of the run, resolved."""
    with open(os.path.join(run_dir, "config.json")) as f:
        return json.load(f)


def read_metrics(run_dir, records=False):
    """metrics.jsonl: a list of dicts, one per epoch; records=True gives a NumPy record array
    (one float64 field per key, NaN where an epoch lacks it)."""
    rows = []
    path = os.path.join(run_dir, "metrics.jsonl")
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: {e}") from None
    if not records:
        return rows
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    dt = [(k, np.float64) for k in keys]
    out = np.full(len(rows), np.nan, dtype=dt)
    for i, r in enumerate(rows):
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k][i] = v
    return out.view(np.recarray)


def checkpoints(run_dir):
    """The steps that have checkpoints/step-N.safetensors, ascending."""
    d = os.path.join(run_dir, "checkpoints")
    steps = []
    for n in os.listdir(d) if os.path.isdir(d) else []:
        m = re.fullmatch(r"step-(0|[1-9][0-9]*)\.safetensors", n)
        if m:
            steps.append(int(m.group(1)))
    return sorted(steps)


class Checkpoint(dict):
    """{tensor name: array} with .meta (the file's metadata) and .path."""


def read_checkpoint(path_or_run_dir, step=None):
    """A checkpoint as a dict of arrays: a .safetensors path, or a run directory and its step
    (None: the last one). Digests are verified by flowrl's reader."""
    path = path_or_run_dir
    if os.path.isdir(path):
        steps = checkpoints(path)
        if not steps:
            raise FileNotFoundError(f"{path}: no checkpoints/step-N.safetensors")
        path = os.path.join(path, "checkpoints", f"step-{steps[-1] if step is None else int(step)}.safetensors")
    t, meta = read_safetensors(path)
    c = Checkpoint(t)
    c.meta, c.path = meta, path
    return c


# ---- audit.log (flowrl/audit.h, format version 1) ------------------------------------------------

@dataclass
class AuditRecord:
    kind: str     # "step" (a tensor) or "scalar"
    name: str
    dtype: str
    shape: tuple  # tensors only
    digest: str
    value: float  # scalars only (exact: parsed from C's %a)
    line: int


@dataclass
class AuditLog:
    path: str
    env: dict = field(default_factory=dict)        # the header block's env lines
    steps: dict = field(default_factory=dict)      # step -> {name: AuditRecord}, complete steps only
    resumes: int = 0
    incomplete_step: int = 0                       # a trailing step without end-step (0: none)


def _scalar(text):
    t = text.lower()
    if t in ("inf", "+inf", "-inf", "nan", "-nan"):
        return float(t.replace("+", ""))
    return float.fromhex(text)


def read_audit(path):
    """audit.log of a run directory (or the file itself), parsed strictly: a malformed line
    raises ValueError "PATH:LINE: ..."."""
    if os.path.isdir(path):
        path = os.path.join(path, "audit.log")
    log = AuditLog(path)
    with open(path, "rb") as f:
        data = f.read().decode("ascii", "replace")
    lines = data.split("\n")
    lines = lines[:-1]  # the "" after the last '\n', or a torn last line (ignored, as flowrl does)
    if not lines or lines[0] != "flowrl-audit 1":
        raise ValueError(f"{path}:1: expected 'flowrl-audit 1'")
    cur, recs, block = None, {}, 0
    for n, line in enumerate(lines[1:], 2):
        f = line.split(" ")
        def bad(what):
            return ValueError(f"{path}:{n}: {what}: {line[:80]!r}")
        if f[0] == "env" and len(f) >= 3:
            if block == 0:
                log.env[f[1]] = line.split(" ", 2)[2]
        elif f[0] == "resume" and len(f) == 1:
            log.resumes += 1
            block = log.resumes
        elif f[0] in ("step", "scalar") and len(f) == 6:
            s = int(f[1])
            if cur is None:
                cur, recs = s, {}
            elif s != cur:
                raise bad(f"record of step {s} inside step {cur}")
            if f[0] == "step":
                shape = tuple(int(x) for x in f[4].strip("[]").split(",") if x)
                recs[f[2]] = AuditRecord("step", f[2], f[3], shape, f[5], None, n)
            else:
                recs[f[2]] = AuditRecord("scalar", f[2], f[3], (), f[5], _scalar(f[4]), n)
        elif f[0] == "end-step" and len(f) == 3:
            s, k = int(f[1]), int(f[2])
            if cur is not None and s != cur:
                raise bad(f"end-step {s} closes step {cur}")
            if len(recs) != k:
                raise bad(f"step {s} holds {len(recs)} records, end-step says {k}")
            log.steps[s] = recs
            cur, recs = None, {}
        else:
            raise bad("not an audit line")
    if cur is not None:
        log.incomplete_step = cur
    return log


@dataclass
class AuditDifference:
    step: int
    name: str
    what: str          # "digest", "only in a", "only in b", "value"
    detail: str = ""   # the element difference when checkpoints allowed it


@dataclass
class AuditDiff:
    a: str
    b: str
    common_steps: list
    differences: list  # AuditDifference, in step then record order
    notes: list        # env differences, steps only one side has

    @property
    def identical(self):
        return not self.differences

    @property
    def first(self):
        return self.differences[0] if self.differences else None

    def __str__(self):
        if self.identical:
            return (f"identical: {len(self.common_steps)} common steps"
                    + (f" (through step {self.common_steps[-1]})" if self.common_steps else ""))
        d = self.first
        s = f"first difference at step {d.step}: {d.name} ({d.what})"
        if d.detail:
            s += f": {d.detail}"
        return s + f"; {len(self.differences)} differing records in all"


def _element_detail(run_a, run_b, step, name):
    """The first differing element of tensor `name` in both runs' step checkpoints, if kept."""
    try:
        ca, cb = read_checkpoint(run_a, step), read_checkpoint(run_b, step)
    except (OSError, ValueError, FlowrlError):  # not kept, or refused by flowrl's reader
        return ""
    if name not in ca or name not in cb:
        return ""
    msg = compare(cb[name], ca[name], rtol=0.0, atol=0.0, label=name, names=("b", "a"))
    if msg is None:
        return ""
    a, b = ca[name].astype(np.float32, copy=False), cb[name].astype(np.float32, copy=False)
    if a.shape == b.shape and a.dtype.kind == "f":
        msg += f"; max abs {float(np.nanmax(np.abs(a.astype(np.float64) - b))):.3g}"
    return msg


def audit_diff(a, b):
    """Compares two audit logs (run directories or audit.log paths) over their common complete
    steps, record by record, by digest (scalars also by value). For run directories the first
    differing tensor is compared element by element when both kept that step's checkpoint."""
    la, lb = read_audit(a), read_audit(b)
    common = sorted(set(la.steps) & set(lb.steps))
    notes = [f"env {k}: {la.env.get(k)!r} vs {lb.env.get(k)!r}" for k in sorted(set(la.env) | set(lb.env))
             if la.env.get(k) != lb.env.get(k)]
    for side, x, y in (("a", la, lb), ("b", lb, la)):
        only = sorted(set(x.steps) - set(y.steps))
        if only:
            notes.append(f"steps only in {side}: {only[:10]}{' ...' if len(only) > 10 else ''}")
    diffs = []
    for s in common:
        ra, rb = la.steps[s], lb.steps[s]
        for name in list(ra) + [n for n in rb if n not in ra]:
            if name not in rb:
                diffs.append(AuditDifference(s, name, "only in a"))
            elif name not in ra:
                diffs.append(AuditDifference(s, name, "only in b"))
            elif ra[name].digest != rb[name].digest:
                x, y = ra[name], rb[name]
                if x.kind == "scalar":
                    det = f"a {x.value!r}, b {y.value!r}"
                    if x.dtype == "F32" and y.dtype == "F32":
                        det += f", ulp distance {int(ulp_distance(np.float32(x.value), np.float32(y.value)))}"
                    diffs.append(AuditDifference(s, name, "value", det))
                else:
                    det = ""
                    if not diffs and os.path.isdir(a) and os.path.isdir(b):
                        det = _element_detail(a, b, s, name)
                    diffs.append(AuditDifference(s, name, "digest", det))
    return AuditDiff(la.path, lb.path, common, diffs, notes)
