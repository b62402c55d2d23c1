#!/usr/bin/env python3
"""Reference values of AWM's objective (docs/algorithms/awm.md) in float64 numpy, without
PyTorch, for tests/test_awm.c ("numpy reference").

The formulas follow scxue/advantage_weighted_matching@be51372 scripts/train_sd3_awm.py
(compute_log_prob_awm and the training loop), with the gradient w.r.t. the model output
written out analytically (what autograd computes):
    m_r   = mean_i (v − (ε − x0))²                           float64
    ℓ_r   = weighting(m_r, t_r)
    Ã_b   = clamp(A_b, −5, 5)/5·1
    ρ     = exp(ℓ − ℓ_old) per row (exp_first) or exp(mean_k ℓ − mean_k ℓ_old) per sample
    L_pg  = mean max(−Ã·ρ, −Ã·clip(ρ, 1 − c, 1 + c))
    KL    = mean_b mean_k mean_i (v − v_o)² / s,  s = 1 or the float32 2·std² (ELBO)
    L     = L_pg + β·KL + ema_beta·KL_ema
    dL/dv = (1/R)·q·(dℓ/dm)·2(v − v*)/D + Σ β/(B·K·s·D)·2(v − v_o)
with q = dmax/d(ℓ − ℓ_old) (torch's tie rule: inside the band −Ã·ρ; clipped side 0).

The inputs are small dyadic rationals (exact in float32), so the C test builds the same
arrays from the same formula. Output: one number per line ("%.17e"), per case in the
order loss, policy_loss, kl, ema_kl, ℓ (R values), grad (R·D values). Run:
    python3 tests/awm_ref.py          # the list, one value a line (the test reruns this)
    python3 tests/awm_ref.py --c      # the same as the C initializer of k_numpy_ref
"""
import numpy as np

K, B, D = 2, 2, 3
R = K * B
F = np.float32


def val(i, a, s):
    """((i² + i·a + s) mod 17 − 8)/8: the dyadic inputs, the same in tests/test_awm.c."""
    return F(((i * i + i * a + s) % 17 - 8) / 8.0)


x0 = np.array([[val(b * D + i, 5, 1) for i in range(D)] for b in range(B)], dtype=F)
eps = np.array([[val(r * D + i, 7, 3) for i in range(D)] for r in range(R)], dtype=F)
v = np.array([[val(r * D + i, 3, 11) for i in range(D)] for r in range(R)], dtype=F)
v_ref = np.array([[val(r * D + i, 11, 4) for i in range(D)] for r in range(R)], dtype=F)
v_ema = np.array([[val(r * D + i, 13, 9) for i in range(D)] for r in range(R)], dtype=F)
t = np.array([0.75, 0.75, 0.375, 0.375], dtype=F)  # rows r = k·B + b
adv = np.array([7.0, -1.5], dtype=F)                # 7 is beyond the clamp at 5
old_off = np.array([0.02, -0.3, 0.004, 0.5])        # ℓ_old = ℓ + old_off (off-policy)

W_UNIFORM, W_GHUBER, W_T, W_T2, W_HUBER = range(5)


def logprob(w, m, p=0.25):
    td = t.astype(np.float64)
    if w == W_UNIFORM:
        return -m, np.ones(R)
    if w == W_T:
        return -m * td, td
    if w == W_T2:
        t2 = (t * t).astype(np.float64)  # `timestep.view(-1)**2` in float32
        return -m * t2, t2
    if w == W_HUBER:
        s = np.sqrt(m + 1e-10)
        return -(s - 1e-5) * td, td / (2.0 * s)
    a = np.power(m + 1e-10, p) - np.power(1e-10, p)
    return -a * td / p, td * np.power(m + 1e-10, p - 1.0)


def elbo_two_var():
    c = np.clip(t, F(0), F(0.99))
    sd = np.sqrt(t / (F(1) - c)) * F(0.7)
    return (F(2) * (sd * sd)).astype(np.float64)


def case(w, off=False, sum_first=False, clip=1.0, beta=0.0, ema_beta=0.0, kl_w=0, ema_w=0):
    # rows r = k·B + b: sample b's x0 for every k
    target = eps.astype(np.float64) - np.tile(x0.astype(np.float64), (K, 1))
    d = v.astype(np.float64) - target
    m = (d * d).mean(axis=1)
    lp, wgt = logprob(w, m)
    lp_old = lp + old_off if off else lp.copy()
    a = np.clip(adv.astype(np.float64), -5.0, 5.0) / 5.0 * 1.0
    lo, hi = 1.0 - clip, 1.0 + clip
    if sum_first:
        z = lp.reshape(K, B).mean(axis=0) - lp_old.reshape(K, B).mean(axis=0)
        aa = a
    else:
        z = lp - lp_old
        aa = np.tile(a, K)
    rho = np.exp(z)
    u, c = -aa * rho, -aa * np.clip(rho, lo, hi)
    pol = np.maximum(u, c).mean()
    inband = (rho >= lo) & (rho <= hi)
    q = np.where(inband, -aa * rho, np.where(u > c, -aa * rho, 0.0))
    if sum_first:
        dl = np.tile(q, K) / R  # dL/dℓ_{k,b} = q_b/(B·K)
    else:
        dl = q / R
    grad = (dl * -wgt)[:, None] * 2.0 * d / D
    loss, kl, ekl = pol, 0.0, 0.0
    for coef, vo, kw, name in ((beta, v_ref, kl_w, "kl"), (ema_beta, v_ema, ema_w, "ema")):
        if coef <= 0.0:
            continue
        s = elbo_two_var() if kw == 1 else np.ones(R)
        dd = v.astype(np.float64) - vo.astype(np.float64)
        rows = (dd * dd).mean(axis=1) / s
        val_ = rows.reshape(K, B).mean(axis=0).mean()
        grad = grad + (coef / (B * K * s * D))[:, None] * 2.0 * dd
        loss = loss + coef * val_
        if name == "kl":
            kl = val_
        else:
            ekl = val_
    return [loss, pol, kl, ekl] + list(lp) + list(grad.reshape(-1))


CASES = [
    case(W_UNIFORM),
    case(W_GHUBER),
    case(W_T),
    case(W_T2),
    case(W_HUBER),
    case(W_GHUBER, off=True, clip=0.01),
    case(W_GHUBER, off=True, sum_first=True, clip=0.01),
    case(W_UNIFORM, beta=0.003, ema_beta=1.0),
    case(W_GHUBER, beta=0.003, ema_beta=0.5, kl_w=1, ema_w=1),
]

if __name__ == "__main__":
    import sys
    vals = [x for c in CASES for x in c]
    if sys.argv[1:] == ["--c"]:  # the initializer tests/test_awm.c embeds
        for i in range(0, len(vals), 3):
            print("    " + ", ".join("%.17e" % x for x in vals[i:i + 3]) + ",")
    else:
        for x in vals:
            print("%.17e" % x)
