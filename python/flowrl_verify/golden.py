"""flowrl's golden cases as data (golden/README.md) and the testing helper assert_matches.

A case is one computation with tiny inputs: its inputs ("in.*" tensors, "param.*"
metadata), reference outputs ("out.*"), tolerance and provenance (the Philox coordinates of
every drawn input, how derived inputs were formed, the flowrl version and command that wrote
it). Every case of flowrl's registry is reachable generically through the C API, so a case
added to flowrl needs no code here."""
import ctypes
import inspect
import os
from dataclasses import dataclass, field

import numpy as np

from . import _lib
from ._lib import check
from .api import to_numpy
from .tensors import TensorSet


@dataclass
class Case:
    name: str
    what: str
    kind: str              # "op" (one op-table entry), "shared" (core/ code) or "ops" (a chain)
    function: str          # the op-table entry of an "op" case, else None
    tolerance: tuple       # (abs, rel) flowrl allows its --fast paths (0, 0: bitwise there too)
    inputs: dict = field(default_factory=dict)      # name -> array ("in." dropped); 0-d for scalars
    outputs: dict = field(default_factory=dict)     # name -> array ("out." dropped)
    params: dict = field(default_factory=dict)      # "param.*" metadata (ints as int)
    provenance: dict = field(default_factory=dict)  # rng.*, derived.*, note.*, golden.*, flowrl.version
    source: str = ""       # the file read, or "built by libflowrl (ref)"


def cases():
    """The names of every golden case flowrl's library knows, in registry order."""
    lib = _lib.load()
    return [lib.flowrl_golden_name(i).decode() for i in range(lib.flowrl_golden_count())]


def info(name):
    """(what, kind, function, (tol_abs, tol_rel)) of a case."""
    lib = _lib.load()
    what, kind, fn = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
    ta, tr = ctypes.c_float(), ctypes.c_float()
    check(lib.flowrl_golden_info(name.encode(), ctypes.byref(what), ctypes.byref(kind), ctypes.byref(fn),
                                 ctypes.byref(ta), ctypes.byref(tr)), "flowrl_golden_info")
    return (what.value.decode(), kind.value.decode(), fn.value.decode() if fn.value else None,
            (ta.value, tr.value))


def golden_dir():
    """The committed golden set this package uses, or None: $FLOWRL_GOLDEN, the source tree's
    golden/, or <prefix>/share/flowrl/golden next to the library loaded."""
    cand = []
    if os.environ.get("FLOWRL_GOLDEN"):
        cand.append(os.environ["FLOWRL_GOLDEN"])
    tree = _lib._source_tree()
    if tree:
        cand.append(os.path.join(tree, "golden"))
    how, path = _lib.loaded_from()
    if os.path.sep in path:
        cand.append(os.path.join(os.path.dirname(os.path.realpath(path)), "..", "share", "flowrl", "golden"))
    for d in cand:
        if os.path.exists(os.path.join(d, "MANIFEST")):
            return os.path.normpath(d)
    return None


def _param(v):
    try:
        return int(v)
    except ValueError:
        return v


def _case_of(name, t, source):
    what, kind, fn, tol = info(name)
    c = Case(name, what, kind, fn, tol, source=source)
    for k, a in t.tensors().items():
        if k.startswith("in."):
            c.inputs[k[3:]] = a
        elif k.startswith("out."):
            c.outputs[k[4:]] = a
    for k, v in t.meta().items():
        if k.startswith("param."):
            c.params[k[6:]] = _param(v)
        else:
            c.provenance[k] = v
    return c


def load(name, directory=None, build=False):
    """Case `name`: read from the golden set (directory, else golden_dir()), or built by the
    library (build=True, or no golden set found): the same bits, `flowrl golden check` proves
    it. case.source says which."""
    lib = _lib.load()
    d = None if build else (directory or golden_dir())
    if d:
        path = os.path.join(d, name + ".safetensors")
        t = TensorSet.read(path)
        source = path
    else:
        h = ctypes.c_void_p()
        check(lib.flowrl_golden_build(name.encode(), ctypes.byref(h)), "flowrl_golden_build")
        t = TensorSet(h)
        source = "built by libflowrl (ref)"
    try:
        return _case_of(name, t, source)
    finally:
        t.close()


def compute(name, inputs, params=None, backend=None):
    """flowrl's outputs {name: array} of case `name` for YOUR inputs (the case's input names,
    "in." dropped; params: its "param.*" values), e.g. to run flowrl's AWM loss on your own
    batch. Missing or misshapen inputs raise FlowrlError naming them."""
    from .api import _be
    meta = {"param." + k: str(v) for k, v in (params or {}).items()}
    t = TensorSet.from_dict({"in." + k: v for k, v in inputs.items()}, meta)
    h = ctypes.c_void_p()
    try:
        check(_lib.load().flowrl_golden_compute(_be(backend), name.encode(), t._h, ctypes.byref(h)),
              "flowrl_golden_compute")
    finally:
        t.close()
    out = TensorSet(h)
    try:
        return {k[4:] if k.startswith("out.") else k: v for k, v in out.tensors().items()}
    finally:
        out.close()


# ---- comparison ------------------------------------------------------------------------------------

def _ordered(a):
    """float32 bits as integers ordered like the floats (flowrl's ulp distance)."""
    i = a.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, np.int64(-(2 ** 31)) - i, i)


def ulp_distance(a, b):
    """|ordered(a) − ordered(b)| per element, as flowrl golden check counts it."""
    return np.abs(_ordered(np.asarray(a, np.float32)) - _ordered(np.asarray(b, np.float32)))


def compare(got, want, rtol=1e-5, atol=1e-6, label="output", names=("got", "expected")):
    """None if |got − want| <= atol + rtol·|want| everywhere (NaN never passes), else a message
    naming the first mismatching element (C order), both values and their ulp distance."""
    g = to_numpy(got, name=label)
    w = np.asarray(want)
    if g.shape != w.shape:
        if g.size == w.size and g.size == 1:
            g = g.reshape(w.shape)
        else:
            return f"{label}: shape {g.shape}, expected {w.shape}"
    if w.dtype.kind != "f":
        bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
        if bad.size == 0:
            return None
        idx = np.unravel_index(bad[0], w.shape) if w.ndim else ()
        return (f"{label}{list(idx)}: {names[0]} {g.reshape(-1)[bad[0]]}, {names[1]} {w.reshape(-1)[bad[0]]} "
                f"({bad.size} of {w.size} elements differ)")
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    diff = np.abs(g64 - w64)
    ok = diff <= atol + rtol * np.abs(w64)  # NaN compares False
    if ok.all():
        return None
    bad = np.flatnonzero(~ok.reshape(-1))
    k = bad[0]
    idx = list(np.unravel_index(k, w.shape)) if w.ndim else []
    gf, wf = np.float32(g.reshape(-1)[k]), np.float32(w.reshape(-1)[k])
    u = "NaN" if np.isnan(gf) or np.isnan(wf) else str(int(ulp_distance(gf, wf)))
    ulps = ulp_distance(g.astype(np.float32), w.astype(np.float32))
    fin = ~(np.isnan(g64) | np.isnan(w64))
    return (f"{label}{idx}: {names[0]} {gf!r}, {names[1]} {wf!r}: abs diff {diff.reshape(-1)[k]:.3g}, "
            f"ulp distance {u} (tolerance atol {atol:g} + rtol {rtol:g}·|{names[1]}|); "
            f"{bad.size} of {w.size} elements out of tolerance, max ulp distance "
            f"{int(ulps[fin].max()) if fin.any() else 'NaN'}")


def _call(fn, case):
    pool = dict(case.params)
    pool.update(case.inputs)
    sig = inspect.signature(fn)
    params = sig.parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return fn(**{k: np.array(v) for k, v in pool.items()})
    kw, missing = {}, []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL,):
            continue
        if p.name in pool:
            kw[p.name] = np.array(pool[p.name]) if isinstance(pool[p.name], np.ndarray) else pool[p.name]
        elif p.default is p.empty:
            missing.append(p.name)
    if missing:
        raise TypeError(f"flowrl_verify: {fn.__name__} takes {missing}, which case {case.name} does not have "
                        f"(its inputs: {sorted(case.inputs)}; params: {sorted(case.params)})")
    return fn(**kw)


def _outputs(ret, case, outputs):
    if isinstance(ret, dict):
        return dict(ret)
    if outputs is None:
        if len(case.outputs) == 1 and not isinstance(ret, (tuple, list)):
            outputs = list(case.outputs)
        else:
            raise TypeError(f"flowrl_verify: return a dict of output names (case {case.name} has "
                            f"{sorted(case.outputs)}) or pass outputs=(names...) for a tuple")
    if isinstance(outputs, str):
        outputs = [outputs]
    ret = ret if isinstance(ret, (tuple, list)) else (ret,)
    if len(ret) != len(outputs):
        raise TypeError(f"flowrl_verify: {len(ret)} values returned for outputs {list(outputs)}")
    return dict(zip(outputs, ret))


def assert_matches(fn, name, rtol=1e-5, atol=1e-6, outputs=None, directory=None):
    """Runs YOUR fn on golden case `name`'s inputs and asserts its outputs match flowrl's.

    fn is called with the case's inputs (and "param.*" values) as keyword arguments, by the
    names it declares (a **kwargs function gets them all); scalars are 0-d arrays. It returns
    a dict {output name: array} (a subset of the case's outputs, e.g. {"x_next": .., "logp": ..})
    or a tuple with outputs=(names...); NumPy arrays or torch tensors. Each returned output must
    satisfy |got − flowrl| <= atol + rtol·|flowrl| (rtol = atol = 0: bitwise). On a mismatch
    AssertionError names the output, the first mismatching element, both values and the ulp
    distance. Returns the Case."""
    case = load(name, directory)
    got = _outputs(_call(fn, case), case, outputs)
    if not got:
        raise TypeError(f"flowrl_verify: {fn.__name__} returned no outputs")
    unknown = sorted(set(got) - set(case.outputs))
    if unknown:
        raise TypeError(f"flowrl_verify: outputs {unknown} are not outputs of case {name} "
                        f"({sorted(case.outputs)})")
    errors = [m for m in (compare(got[k], case.outputs[k], rtol, atol, label=f"out.{k}") for k in got) if m]
    if errors:
        raise AssertionError(f"{name} ({case.source}): " + "; ".join(errors))
    return case
