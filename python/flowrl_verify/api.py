"""flowrl's numerical functions over NumPy arrays (torch tensors accepted), through the C API
(include/flowrl/capi.h). Inputs are converted to contiguous float32 (int64 for group ids);
results are NumPy arrays. Every failure raises FlowrlError carrying flowrl's message."""
import ctypes

import numpy as np

from . import _lib
from ._lib import FlowrlError, check


def to_numpy(a, dtype=None, name="array"):
    """A NumPy array of a (NumPy array, torch tensor, scalar or nested list), contiguous and of
    dtype when given."""
    if a is None:
        return None
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"flowrl_verify: {name}: not an array ({e})") from None
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


def _ptr(a):
    return None if a is None else a.ctypes.data


def _f32(a, name):
    if a is None:
        raise TypeError(f"flowrl_verify: {name} is required")
    return to_numpy(a, np.float32, name)


def _rows(a, name):
    """(array, B, D) of a (B, ...) array: D = the product of the other dims."""
    if a.ndim < 1 or a.size == 0:
        raise FlowrlError(1, f"{name}: shape {a.shape}, expected (B, ...) with B >= 1")
    return a, a.shape[0], a.size // a.shape[0]


def _same(a, ref, name, ref_name):
    if a is not None and a.shape != ref.shape:
        raise FlowrlError(1, f"{name}: shape {a.shape}, expected {ref_name}'s {ref.shape}")
    return a


# ---- backends --------------------------------------------------------------------------------------

class Backend:
    """A flowrl backend: "ref" (the reference), "opt", "cuda-emu", "cuda"; fast = --fast.
    Every function takes backend=None (ref) or one of these."""

    def __init__(self, name="ref", fast=False, threads=1):
        lib = _lib.load()
        h = ctypes.c_void_p()
        check(lib.flowrl_backend_open(name.encode(), int(bool(fast)), int(threads), ctypes.byref(h)),
              "flowrl_backend_open")
        self._h = h

    def describe(self):
        return _lib.load().flowrl_backend_describe(self._h).decode()

    def close(self):
        if getattr(self, "_h", None):
            _lib.load().flowrl_backend_close(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<flowrl_verify.Backend {self.describe() if self._h else 'closed'}>"


def _be(backend):
    if backend is None:
        return None
    if isinstance(backend, str):
        raise TypeError("flowrl_verify: pass a Backend(name), not a string")
    return backend._h


# ---- sampler steps -------------------------------------------------------------------------------

STEP_FIELDS = ("sigma", "sigma_next", "sigma1", "noise", "alpha_bar", "alpha_bar_prev", "x0_clip",
               "sigma_prev", "order")


class Step:
    """The scalars of one sampler step (flowrl/sampler.h): kind "ode", "sde", "cps", "dance",
    "ddim" or "dpm" and the fields it reads, e.g. Step("sde", sigma=0.9, sigma_next=0.8,
    sigma1=0.99, noise=0.7). Values are rounded to float32 as flowrl holds them."""

    def __init__(self, kind, **fields):
        lib = _lib.load()
        h = ctypes.c_void_p()
        check(lib.flowrl_step_new(str(kind).encode(), ctypes.byref(h)), "flowrl_step_new")
        self._h = h
        self.kind = kind
        self.fields = {}
        for k, v in fields.items():
            self.set(k, v)

    def set(self, field, value):
        check(_lib.load().flowrl_step_set(self._h, field.encode(), float(to_numpy(value))), "flowrl_step_set")
        self.fields[field] = value
        return self

    def std(self):
        """(std, std_dev): the std of x' | x and the std the public code returns."""
        a, b = ctypes.c_float(), ctypes.c_float()
        check(_lib.load().flowrl_step_std(self._h, ctypes.byref(a), ctypes.byref(b)), "flowrl_step_std")
        return np.float32(a.value), np.float32(b.value)

    def dmean_dv(self):
        a = ctypes.c_float()
        check(_lib.load().flowrl_step_dmean_dv(self._h, ctypes.byref(a)), "flowrl_step_dmean_dv")
        return np.float32(a.value)

    def kl_std(self, form="code"):
        a = ctypes.c_float()
        check(_lib.load().flowrl_step_kl_std(self._h, form.encode(), ctypes.byref(a)), "flowrl_step_kl_std")
        return np.float32(a.value)

    def close(self):
        if getattr(self, "_h", None):
            _lib.load().flowrl_step_free(self._h)
            self._h = None

    __del__ = close

    def __repr__(self):
        return f"Step({self.kind!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.fields.items()) + ")"


def _step(step, fields):
    if isinstance(step, Step):
        if fields:
            raise TypeError(f"flowrl_verify: fields {sorted(fields)} given with a Step object")
        return step
    return Step(step, **fields)


def sampler_step(step, x, model_out, xi=None, x0_prev=None, backend=None, **fields):
    """One step of sampler `step` (a Step, or a kind with its fields as keywords):
    {"x_next", "mean", "logp" (B,), "std", "std_dev"}; mean and logp for the stochastic kinds.
    x, model_out, xi, x0_prev: (B, ...) arrays of one shape; xi None means no noise."""
    s = _step(step, fields)
    x, B, D = _rows(_f32(x, "x"), "x")
    mo = _same(_f32(model_out, "model_out"), x, "model_out", "x")
    xi = _same(to_numpy(xi, np.float32), x, "xi", "x")
    x0p = _same(to_numpy(x0_prev, np.float32), x, "x0_prev", "x")
    stoch = s.kind in ("sde", "cps", "dance", "ddim")
    xn = np.empty_like(x)
    mean = np.empty_like(x) if stoch else None
    logp = np.empty(B, np.float32) if stoch else None
    sd, sdd = ctypes.c_float(), ctypes.c_float()
    check(_lib.load().flowrl_sampler_step(_be(backend), s._h, B, D, _ptr(x), _ptr(mo), _ptr(x0p), _ptr(xi),
                                          _ptr(xn), _ptr(mean), _ptr(logp), ctypes.byref(sd), ctypes.byref(sdd)),
          "flowrl_sampler_step")
    out = {"x_next": xn}
    if stoch:
        out.update(mean=mean, logp=logp, std=np.float32(sd.value), std_dev=np.float32(sdd.value))
    return out


def sampler_mean(step, x, model_out, x0_prev=None, backend=None, **fields):
    """μ of the step, x's shape."""
    s = _step(step, fields)
    x, B, D = _rows(_f32(x, "x"), "x")
    mo = _same(_f32(model_out, "model_out"), x, "model_out", "x")
    x0p = _same(to_numpy(x0_prev, np.float32), x, "x0_prev", "x")
    mean = np.empty_like(x)
    check(_lib.load().flowrl_sampler_mean(_be(backend), s._h, B, D, _ptr(x), _ptr(mo), _ptr(x0p), _ptr(mean)),
          "flowrl_sampler_mean")
    return mean


def sampler_logprob(step, x, model_out, x_next, x0_prev=None, backend=None, **fields):
    """{"mean", "logp"}: μ from (x, model_out), then log p(x_next | μ) (B,) (the PPO ratio's
    new log-prob)."""
    s = _step(step, fields)
    x, B, D = _rows(_f32(x, "x"), "x")
    mo = _same(_f32(model_out, "model_out"), x, "model_out", "x")
    xn = _same(_f32(x_next, "x_next"), x, "x_next", "x")
    x0p = _same(to_numpy(x0_prev, np.float32), x, "x0_prev", "x")
    mean, logp = np.empty_like(x), np.empty(B, np.float32)
    check(_lib.load().flowrl_sampler_logprob(_be(backend), s._h, B, D, _ptr(x), _ptr(mo), _ptr(x0p), _ptr(xn),
                                             _ptr(mean), _ptr(logp)), "flowrl_sampler_logprob")
    return {"mean": mean, "logp": logp}


def sampler_logprob_of(step, x_next, mean, backend=None, **fields):
    """log p(x_next | mean) (B,) under the step's Gaussian."""
    s = _step(step, fields)
    xn, B, D = _rows(_f32(x_next, "x_next"), "x_next")
    mean = _same(_f32(mean, "mean"), xn, "mean", "x_next")
    logp = np.empty(B, np.float32)
    check(_lib.load().flowrl_sampler_logprob_of(_be(backend), s._h, B, D, _ptr(xn), _ptr(mean), _ptr(logp)),
          "flowrl_sampler_logprob_of")
    return logp


def cfg_combine(v_u, v_c, g, backend=None):
    """v_u + g·(v_c − v_u), v_u's shape."""
    a = _f32(v_u, "v_u")
    b = _same(_f32(v_c, "v_c"), a, "v_c", "v_u")
    out = np.empty_like(a)
    check(_lib.load().flowrl_cfg_combine(_be(backend), a.size, float(g), _ptr(a), _ptr(b), _ptr(out)),
          "flowrl_cfg_combine")
    return out


def flow_x0(x, v, sigma, backend=None):
    """x̂0 = x − σ·v, x's shape."""
    a = _f32(x, "x")
    b = _same(_f32(v, "v"), a, "v", "x")
    out = np.empty_like(a)
    check(_lib.load().flowrl_flow_x0(_be(backend), a.size, float(sigma), _ptr(a), _ptr(b), _ptr(out)),
          "flowrl_flow_x0")
    return out


# ---- objectives ----------------------------------------------------------------------------------

_STATS = ("loss", "approx_kl", "clipfrac", "ratio_min", "ratio_max", "ratio_mean")


def _stats(st):
    return {k: np.float32(v) for k, v in zip(_STATS, st)}


def ppo_policy(logp_new, logp_old, adv, clip_range=1e-4, adv_clip_max=5.0, gout=1.0):
    """Flow-GRPO's PPO-clip term (grpo.h fr_ppo_policy): {"loss", "grad_logp_new" (B,) =
    gout·dL/dlogp_new, "ratio" (B,), "approx_kl", "clipfrac", "ratio_min", "ratio_max",
    "ratio_mean"}."""
    ln = _f32(logp_new, "logp_new").reshape(-1)
    lo = _same(_f32(logp_old, "logp_old").reshape(-1), ln, "logp_old", "logp_new")
    ad = _same(_f32(adv, "adv").reshape(-1), ln, "adv", "logp_new")
    g, r, st = np.empty_like(ln), np.empty_like(ln), np.empty(6, np.float32)
    check(_lib.load().flowrl_ppo_policy(ln.size, float(clip_range), float(adv_clip_max), _ptr(ln), _ptr(lo),
                                        _ptr(ad), float(gout), _ptr(g), _ptr(r), _ptr(st)), "flowrl_ppo_policy")
    return dict(_stats(st), grad_logp_new=g, ratio=r)


def logp_backward(step, x_next, mean, g_logp, backend=None, **fields):
    """dL/dμ (x_next's shape) of a per-sample gradient g_logp (B,) through the step's log-prob."""
    s = _step(step, fields)
    xn, B, D = _rows(_f32(x_next, "x_next"), "x_next")
    mean = _same(_f32(mean, "mean"), xn, "mean", "x_next")
    g = _f32(g_logp, "g_logp").reshape(-1)
    if g.size != B:
        raise FlowrlError(1, f"g_logp: {g.size} values, expected B = {B}")
    out = np.empty_like(xn)
    check(_lib.load().flowrl_logp_backward(_be(backend), s._h, B, D, _ptr(xn), _ptr(mean), _ptr(g), _ptr(out)),
          "flowrl_logp_backward")
    return out


def kl_loss(mean, mean_ref, kl_sigma, gout=1.0, backend=None):
    """{"loss", "grad_mean"}: L_KL = mean (μ − μ_ref)²/(2σ²) and gout·dL_KL/dμ."""
    m, B, D = _rows(_f32(mean, "mean"), "mean")
    r = _same(_f32(mean_ref, "mean_ref"), m, "mean_ref", "mean")
    loss, g = ctypes.c_float(), np.empty_like(m)
    check(_lib.load().flowrl_kl_loss(_be(backend), B, D, float(kl_sigma), _ptr(m), _ptr(r), float(gout),
                                     ctypes.byref(loss), _ptr(g)), "flowrl_kl_loss")
    return {"loss": np.float32(loss.value), "grad_mean": g}


def guard_policy(step, x_next, mean, mean_old, logp_new, logp_old, adv, bias="batch", clip_range=2e-6,
                 adv_clip_max=5.0, gout=1.0, backend=None, **fields):
    """GRPO-Guard's term for an sde step (grpo.h fr_guard_policy): the PPO stats plus
    "grad_mean" (dL/dμ), "ratio", "bias"."""
    s = _step(step, fields)
    xn, B, D = _rows(_f32(x_next, "x_next"), "x_next")
    m = _same(_f32(mean, "mean"), xn, "mean", "x_next")
    mo = _same(_f32(mean_old, "mean_old"), xn, "mean_old", "x_next")
    ln, lo, ad = (_f32(a, n).reshape(-1) for a, n in ((logp_new, "logp_new"), (logp_old, "logp_old"), (adv, "adv")))
    for a, n in ((ln, "logp_new"), (lo, "logp_old"), (ad, "adv")):
        if a.size != B:
            raise FlowrlError(1, f"{n}: {a.size} values, expected B = {B}")
    g, r, b, st = np.empty_like(xn), np.empty(B, np.float32), np.empty(B, np.float32), np.empty(6, np.float32)
    check(_lib.load().flowrl_guard_policy(_be(backend), s._h, B, D, bias.encode(), float(clip_range),
                                          float(adv_clip_max), _ptr(xn), _ptr(m), _ptr(mo), _ptr(ln), _ptr(lo),
                                          _ptr(ad), float(gout), _ptr(g), _ptr(r), _ptr(b), _ptr(st)),
          "flowrl_guard_policy")
    return dict(_stats(st), grad_mean=g, ratio=r, bias=b)


# ---- advantages ----------------------------------------------------------------------------------

ADV_EPS_FLOW_GRPO = 1e-4
ADV_EPS_DDPO = 1e-6


def adv_mean_std(x):
    """(mean, population std) as flowrl's advantage estimators form them."""
    a = _f32(x, "x").reshape(-1)
    m, s = ctypes.c_float(), ctypes.c_float()
    check(_lib.load().flowrl_adv_mean_std(a.size, _ptr(a), ctypes.byref(m), ctypes.byref(s)), "flowrl_adv_mean_std")
    return np.float32(m.value), np.float32(s.value)


def adv_per_prompt(rewards, group, global_std=False, eps=ADV_EPS_FLOW_GRPO):
    """Flow-GRPO's per-prompt advantages (B,): group = one integer id per sample."""
    r = _f32(rewards, "rewards").reshape(-1)
    g = _same(to_numpy(group, np.int64, "group").reshape(-1), r, "group", "rewards")
    out = np.empty_like(r)
    check(_lib.load().flowrl_adv_per_prompt(r.size, _ptr(r), _ptr(g), int(bool(global_std)), float(eps), _ptr(out)),
          "flowrl_adv_per_prompt")
    return out


def adv_batch(rewards, eps=ADV_EPS_FLOW_GRPO):
    """(r − mean)/(std + eps) over the whole batch (B,)."""
    r = _f32(rewards, "rewards").reshape(-1)
    out = np.empty_like(r)
    check(_lib.load().flowrl_adv_batch(r.size, _ptr(r), float(eps), _ptr(out)), "flowrl_adv_batch")
    return out


def adv_filter_zero(adv, num_batches, seed, purpose, c0, c1=0):
    """Flow-GRPO's zero-advantage filter: (keep (B,) bool, kept count)."""
    a = _f32(adv, "adv").reshape(-1)
    keep, kept = np.empty(a.size, np.uint8), ctypes.c_int64()
    check(_lib.load().flowrl_adv_filter_zero(a.size, _ptr(a), int(num_batches), seed, purpose, c0, c1, _ptr(keep),
                                             ctypes.byref(kept)), "flowrl_adv_filter_zero")
    return keep.astype(bool), int(kept.value)


# ---- σ grids and schedules -------------------------------------------------------------------------

def sigmas_diffusers(T, shift=3.0):
    """Flow-GRPO's diffusers σ grid, T + 1 values ending in 0."""
    out = np.empty(max(int(T), 0) + 1, np.float32)
    check(_lib.load().flowrl_sigmas_diffusers(int(T), float(shift), _ptr(out)), "flowrl_sigmas_diffusers")
    return out


def sigmas_linspace(T, shift=3.0):
    """s(linspace(1, 0, T + 1)) of MixGRPO, DanceGRPO, BranchGRPO, G²RPO."""
    out = np.empty(max(int(T), 0) + 1, np.float32)
    check(_lib.load().flowrl_sigmas_linspace(int(T), float(shift), _ptr(out)), "flowrl_sigmas_linspace")
    return out


def sigmas_shifted_linspace(u_start, u_end, n, shift=3.0):
    out = np.empty(max(int(n), 0), np.float32)
    check(_lib.load().flowrl_sigmas_shifted_linspace(float(u_start), float(u_end), int(n), float(shift), _ptr(out)),
          "flowrl_sigmas_shifted_linspace")
    return out


def timesteps(sigmas, kind="quantized"):
    """Network time inputs of σ's: "quantized" (⌊1000σ⌋/1000) or "diffusers" (1000σ)."""
    s = _f32(sigmas, "sigmas")
    out = np.empty_like(s)
    check(_lib.load().flowrl_timesteps(kind.encode(), s.size, _ptr(s), _ptr(out)), "flowrl_timesteps")
    return out


def betas(kind, n, a, b):
    """DDPM β's: "linear" / "scaled_linear" (a, b = beta_start, beta_end) or "cosine"
    (a = s, b = max_beta)."""
    out = np.empty(max(int(n), 0), np.float32)
    check(_lib.load().flowrl_betas(kind.encode(), int(n), float(a), float(b), _ptr(out)), "flowrl_betas")
    return out


def alphas_cumprod(betas_):
    b = _f32(betas_, "betas").reshape(-1)
    out = np.empty_like(b)
    check(_lib.load().flowrl_alphas_cumprod(b.size, _ptr(b), _ptr(out)), "flowrl_alphas_cumprod")
    return out


def ddim_timesteps(T, n_train=1000, offset=1):
    out = np.empty(max(int(T), 0), np.int64)
    check(_lib.load().flowrl_ddim_timesteps(int(T), int(n_train), int(offset), _ptr(out)), "flowrl_ddim_timesteps")
    return out


# ---- Philox ------------------------------------------------------------------------------------

# flowrl/philox.h fr_rng_purpose: part of the key; values are part of flowrl's file formats.
RNG_PURPOSES = {
    "test": 0, "init": 1, "task_data": 2, "task_eval": 3, "pretrain_noise": 4, "pretrain_time": 5,
    "cfg_dropout": 6, "sampler_init": 7, "sampler_noise": 8, "prompts": 9, "window": 10, "golden": 11,
    "adv_filter": 12, "shuffle": 13, "awm_times": 14, "awm_noise": 15, "nft_times": 16, "nft_noise": 17,
    "dgpo_times": 20, "dgpo_noise": 21, "noise_search": 22, "step_select": 23,
    "prefs": 24, "dpo_order": 25, "dpo_time": 26, "dpo_noise": 27, "spo_choice": 28,
    "dro_pick": 40, "dro_data": 41, "dro_noise": 42, "env_reset": 50, "gfn_action": 51, "gfn_eval": 52,
}


def rng(dist, seed, purpose, c0=0, c1=0, c2=0, shape=1, start=0):
    """Draws of flowrl's Philox stream (seed, purpose, c0, c1, c2), elements start, start+1, ...
    in row-major order of shape: dist "uniform" / "normal" (float32) or "u32" (uint32).
    purpose: an integer or a name of RNG_PURPOSES."""
    p = RNG_PURPOSES[purpose] if isinstance(purpose, str) else int(purpose)
    n = int(np.prod(shape))
    out = np.empty(shape, np.uint32 if dist == "u32" else np.float32)
    check(_lib.load().flowrl_rng(dist.encode(), seed, p, c0, c1, c2, int(start), n, _ptr(out)), "flowrl_rng")
    return out


def uniform(seed, purpose, c0=0, c1=0, c2=0, shape=1, start=0):
    return rng("uniform", seed, purpose, c0, c1, c2, shape, start)


def normal(seed, purpose, c0=0, c1=0, c2=0, shape=1, start=0):
    return rng("normal", seed, purpose, c0, c1, c2, shape, start)


# ---- transcendental functions --------------------------------------------------------------------

def math_functions():
    """The names math() takes."""
    lib, out, i = _lib.load(), [], 0
    while True:
        n = lib.flowrl_math_name(i)
        if n is None:
            return out
        out.append(n.decode())
        i += 1


def math(fn, x):
    """flowrl's own float32 fn ("exp", "log", "sin", "tanh", "sigmoid", ...) elementwise,
    bit-identical on every backend and compiler; x's shape."""
    a = _f32(x, "x")
    out = np.empty_like(a)
    check(_lib.load().flowrl_math(fn.encode(), a.size, _ptr(a), _ptr(out)), "flowrl_math")
    return out
