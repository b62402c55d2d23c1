"""Finding and loading libflowrl.so, the ctypes declarations of flowrl's C API
(include/flowrl/capi.h), and the error check that turns a status into FlowrlError."""
import ctypes
import ctypes.util
import os

API_VERSION = 1  # the FLOWRL_API_VERSION this package was written for (libflowrl.so.1)

STATUS_NAMES = {1: "arg", 2: "io", 3: "format", 4: "nomem", 5: "unsupported", 6: "numeric", 7: "mismatch"}


class FlowrlError(Exception):
    """A flowrl call failed: .status is flowrl's code, .message flowrl's own message."""

    def __init__(self, status, message, function=None):
        self.status = status
        self.message = message
        self.function = function
        super().__init__(f"{message} (flowrl status {status}: {STATUS_NAMES.get(status, '?')})")


class LibraryNotFound(FlowrlError, OSError):
    """libflowrl.so could not be loaded; the message lists every place tried and why."""

    def __init__(self, message):
        FlowrlError.__init__(self, 0, message)


def _source_tree():
    """The flowrl source tree this package came from: baked at install (setup.py) or, when
    run from the tree itself (PYTHONPATH=python), the package's grandparent."""
    try:
        from . import _install  # written by setup.py's build_py
        if _install.SOURCE_TREE:
            return _install.SOURCE_TREE
    except ImportError:
        pass
    tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return tree if os.path.exists(os.path.join(tree, "include", "flowrl", "capi.h")) else None


def candidates():
    """(how, path) in search order: $FLOWRL_LIB (a file or a directory), the source tree's
    build/, the installed prefixes (the loader's search path, /usr/local/lib, /usr/lib)."""
    name = f"libflowrl.so.{API_VERSION}"
    out = []
    env = os.environ.get("FLOWRL_LIB")
    if env:
        out.append(("$FLOWRL_LIB", os.path.join(env, name) if os.path.isdir(env) else env))
    tree = _source_tree()
    if tree:
        out.append(("build tree", os.path.join(tree, os.environ.get("FLOWRL_BUILD", "build"), name)))
    found = ctypes.util.find_library("flowrl")
    if found:
        out.append(("loader search path", found))
    for prefix in ("/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"):
        out.append(("installed prefix", os.path.join(prefix, name)))
    return out


_lib = None
_loaded_from = None


def load():
    """The loaded library (loads it on first use). Raises LibraryNotFound naming every
    candidate and why it was not used."""
    global _lib, _loaded_from
    if _lib is not None:
        return _lib
    why = []
    for how, path in candidates():
        # a bare soname from find_library is resolved by the loader itself
        if os.path.sep in path and not os.path.exists(path):
            why.append(f"  {how}: {path}: no such file")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            why.append(f"  {how}: {path}: {e}")
            continue
        if not hasattr(lib, "flowrl_api_version"):
            why.append(f"  {how}: {path}: not flowrl's C API (no flowrl_api_version)")
            continue
        v = lib.flowrl_api_version()
        if v != API_VERSION:
            why.append(f"  {how}: {path}: API version {v}, this package needs {API_VERSION}")
            continue
        _declare(lib)
        _lib, _loaded_from = lib, (how, path)
        return lib
    raise LibraryNotFound("flowrl_verify: cannot load libflowrl.so; set FLOWRL_LIB to the library "
                          "(or its directory), build flowrl (make) in the source tree, or `make install`. "
                          "Tried:\n" + "\n".join(why))


def loaded_from():
    """(how, path) of the library in use, e.g. ('$FLOWRL_LIB', '/src/build/libflowrl.so')."""
    load()
    return _loaded_from


def check(status, function):
    """Raises FlowrlError with flowrl's message for a non-zero status."""
    if status != 0:
        msg = _lib.flowrl_last_error().decode("utf-8", "replace")
        raise FlowrlError(status, msg or f"{function} failed", function)


# ---- ctypes declarations ------------------------------------------------------------------------

P = ctypes.c_void_p
I64 = ctypes.c_int64
U32 = ctypes.c_uint32
F32 = ctypes.c_float
F64 = ctypes.c_double
INT = ctypes.c_int
STR = ctypes.c_char_p
PSTR = ctypes.POINTER(ctypes.c_char_p)
PF32 = ctypes.POINTER(ctypes.c_float)
PI64 = ctypes.POINTER(ctypes.c_int64)
PINT = ctypes.POINTER(ctypes.c_int)
PP = ctypes.POINTER(ctypes.c_void_p)

_SIGNATURES = {
    "flowrl_api_version": (INT, []),
    "flowrl_version": (STR, []),
    "flowrl_last_error": (STR, []),
    "flowrl_status_name": (STR, [INT]),
    "flowrl_backend_open": (INT, [STR, INT, INT, PP]),
    "flowrl_backend_close": (None, [P]),
    "flowrl_backend_describe": (STR, [P]),
    "flowrl_step_new": (INT, [STR, PP]),
    "flowrl_step_free": (None, [P]),
    "flowrl_step_set": (INT, [P, STR, F64]),
    "flowrl_step_std": (INT, [P, PF32, PF32]),
    "flowrl_step_dmean_dv": (INT, [P, PF32]),
    "flowrl_step_kl_std": (INT, [P, STR, PF32]),
    "flowrl_sampler_step": (INT, [P, P, I64, I64, P, P, P, P, P, P, P, PF32, PF32]),
    "flowrl_sampler_mean": (INT, [P, P, I64, I64, P, P, P, P]),
    "flowrl_sampler_logprob": (INT, [P, P, I64, I64, P, P, P, P, P, P]),
    "flowrl_sampler_logprob_of": (INT, [P, P, I64, I64, P, P, P]),
    "flowrl_cfg_combine": (INT, [P, I64, F32, P, P, P]),
    "flowrl_flow_x0": (INT, [P, I64, F32, P, P, P]),
    "flowrl_ppo_policy": (INT, [I64, F64, F32, P, P, P, F32, P, P, P]),
    "flowrl_logp_backward": (INT, [P, P, I64, I64, P, P, P, P]),
    "flowrl_kl_loss": (INT, [P, I64, I64, F32, P, P, F32, PF32, P]),
    "flowrl_guard_policy": (INT, [P, P, I64, I64, STR, F64, F32, P, P, P, P, P, P, F32, P, P, P, P]),
    "flowrl_adv_mean_std": (INT, [I64, P, PF32, PF32]),
    "flowrl_adv_per_prompt": (INT, [I64, P, P, INT, F32, P]),
    "flowrl_adv_batch": (INT, [I64, P, F32, P]),
    "flowrl_adv_filter_zero": (INT, [I64, P, I64, U32, U32, U32, U32, P, PI64]),
    "flowrl_sigmas_diffusers": (INT, [I64, F64, P]),
    "flowrl_sigmas_linspace": (INT, [I64, F64, P]),
    "flowrl_sigmas_shifted_linspace": (INT, [F64, F64, I64, F64, P]),
    "flowrl_timesteps": (INT, [STR, I64, P, P]),
    "flowrl_betas": (INT, [STR, I64, F64, F64, P]),
    "flowrl_alphas_cumprod": (INT, [I64, P, P]),
    "flowrl_ddim_timesteps": (INT, [I64, I64, I64, P]),
    "flowrl_rng": (INT, [STR, U32, U32, U32, U32, U32, I64, I64, P]),
    "flowrl_math_name": (STR, [I64]),
    "flowrl_math": (INT, [STR, I64, P, P]),
    "flowrl_tensors_new": (INT, [PP]),
    "flowrl_tensors_free": (None, [P]),
    "flowrl_tensors_read": (INT, [STR, PP]),
    "flowrl_tensors_write": (INT, [P, STR]),
    "flowrl_tensors_count": (I64, [P]),
    "flowrl_tensors_get": (INT, [P, I64, PSTR, PSTR, PINT, PI64, PP, PI64]),
    "flowrl_tensors_add": (INT, [P, STR, STR, INT, PI64, P]),
    "flowrl_tensors_meta_count": (I64, [P]),
    "flowrl_tensors_meta_get": (INT, [P, I64, PSTR, PSTR]),
    "flowrl_tensors_meta_set": (INT, [P, STR, STR]),
    "flowrl_golden_count": (I64, []),
    "flowrl_golden_name": (STR, [I64]),
    "flowrl_golden_info": (INT, [STR, PSTR, PSTR, PSTR, PF32, PF32]),
    "flowrl_golden_build": (INT, [STR, PP]),
    "flowrl_golden_compute": (INT, [P, STR, P, PP]),
    "flowrl_env_open": (INT, [STR, INT, PSTR, PP]),
    "flowrl_env_close": (None, [P]),
    "flowrl_env_describe": (STR, [P]),
    "flowrl_env_sizes": (INT, [P, P]),
    "flowrl_env_states": (INT, [P, I64, I64, P]),
    "flowrl_env_query": (INT, [P, I64, P, P, P, P, P, P, P]),
    "flowrl_env_step": (INT, [P, INT, I64, P, P, P]),
    "flowrl_env_target": (INT, [P, P, P, P, P]),
    "flowrl_gfn_loss": (INT, [STR, P, PP]),
}


def _declare(lib):
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
