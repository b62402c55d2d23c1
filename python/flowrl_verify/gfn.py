"""GFlowNet environments and losses of flowrl's C API (docs/algorithms/gfn.md, docs/envs.md):
an environment by name with its options (Env), its states, masks, transitions, rewards and
exact target as NumPy arrays, and gfn_loss, flowrl's loss of a batch with its gradients."""
import ctypes

import numpy as np

from . import _lib
from ._lib import check
from .api import to_numpy
from .tensors import TensorSet


class Env:
    """A GFlowNet environment: Env("hypergrid", ndim=3, height=5, r0=0.01); the keyword
    options are the `flowrl train --env NAME` flags (--ndim ...)."""

    def __init__(self, name, **options):
        lib = _lib.load()
        words = []
        for k, v in options.items():
            words += ["--" + k.replace("_", "-"), repr(v) if isinstance(v, float) else str(v)]
        argv = (ctypes.c_char_p * max(len(words), 1))(*[w.encode() for w in words])
        self._h, self._close = ctypes.c_void_p(), lib.flowrl_env_close  # usable at interpreter exit
        check(lib.flowrl_env_open(name.encode(), len(words), argv, ctypes.byref(self._h)), "flowrl_env_open")
        sizes = np.zeros(7, np.int64)
        check(lib.flowrl_env_sizes(self._h, sizes.ctypes.data), "flowrl_env_sizes")
        (self.state_dim, self.obs_dim, self.n_actions, self.action_dim, self.exit_action, self.max_steps,
         self.n_states) = (int(x) for x in sizes)

    def describe(self):
        return _lib.load().flowrl_env_describe(self._h).decode()

    def states(self, start=0, n=None):
        """The states of canonical indices [start, start + n) (all by default): (n, state_dim) int32."""
        n = self.n_states - start if n is None else n
        out = np.zeros((n, self.state_dim), np.int32)
        check(_lib.load().flowrl_env_states(self._h, start, n, out.ctypes.data), "flowrl_env_states")
        return out

    def query(self, states):
        """{fwd, bwd, log_reward, index, is_mode, obs} of states (n, state_dim)."""
        s = to_numpy(states, np.int32, "states").reshape(-1, self.state_dim)
        n = s.shape[0]
        out = {"fwd": np.zeros((n, self.n_actions), np.uint8), "bwd": np.zeros((n, self.n_actions - 1), np.uint8),
               "log_reward": np.zeros(n), "index": np.zeros(n, np.int64), "is_mode": np.zeros(n, np.uint8),
               "obs": np.zeros((n, self.obs_dim), np.float32)}
        check(_lib.load().flowrl_env_query(self._h, n, s.ctypes.data, *(out[k].ctypes.data for k in
                                                                         ("fwd", "bwd", "log_reward", "index",
                                                                          "is_mode", "obs"))), "flowrl_env_query")
        return out

    def step(self, states, actions, backward=False):
        """The children (or, backward, the parents) of states through non-exit actions."""
        s = to_numpy(states, np.int32, "states").reshape(-1, self.state_dim)
        a = to_numpy(actions, np.int32, "actions").reshape(-1)
        out = np.zeros_like(s)
        check(_lib.load().flowrl_env_step(self._h, int(backward), s.shape[0], s.ctypes.data, a.ctypes.data,
                                          out.ctypes.data), "flowrl_env_step")
        return out

    def target(self):
        """(p (n_states,) = R/Z by canonical index, log Z, mode cells, mass on the modes)."""
        p, lz, nm, mm = np.zeros(self.n_states), ctypes.c_double(), ctypes.c_int64(), ctypes.c_double()
        check(_lib.load().flowrl_env_target(self._h, p.ctypes.data, ctypes.byref(lz), ctypes.byref(nm),
                                            ctypes.byref(mm)), "flowrl_env_target")
        return p, lz.value, nm.value, mm.value

    def close(self):
        if getattr(self, "_h", None):
            self._close(self._h)
            self._h = None

    __del__ = close


def gfn_loss(kind, **inputs):
    """flowrl's GFlowNet loss `kind` ("tb", "db", "subtb", "zvar", "mdb", "rtb", "op", "fm") on the
    named inputs of capi.h's flowrl_gfn_loss (len, logpf, logpb, logf, logr, log_z, lambda; logrs,
    logpf_exit, logprior, perm, util, beta, linex_alpha, forward_looking, weighting, regression; FM:
    n_in, fin, n_out, fout, fexit, logr, alpha): {loss, resid, grad_logpf, ...} as NumPy arrays."""
    ints = {"len", "n_in", "n_out", "is_exit", "perm"}
    arrays = {"in." + k: to_numpy(v, np.int32 if k in ints else np.float64, k) for k, v in inputs.items()}
    t = TensorSet.from_dict(arrays)
    h = ctypes.c_void_p()
    try:
        check(_lib.load().flowrl_gfn_loss(kind.encode(), t._h, ctypes.byref(h)), "flowrl_gfn_loss")
    finally:
        t.close()
    out = TensorSet(h)
    try:
        return {k[len("out."):]: v for k, v in out.tensors().items()}
    finally:
        out.close()
