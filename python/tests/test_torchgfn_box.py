"""flowrl's Box environment and policy against torchgfn 1.2.1's (GFNOrg/torchgfn@13c059a2
src/gfn/gym/box.py, src/gfn/gym/helpers/box_utils.py; docs/algorithms/gfn-box.md §7), through
flowrl_gfn_loss(kind "box") of the C API.

- The reward of Box.reward at random float32 states and on the thresholds' neighbourhoods, bit
  for bit (both float32), and log Z = Box.log_partition.
- log P_F of BoxPFEstimator's DistributionWrapper (QuarterDisk at s0, QuarterCircleWithExit
  elsewhere: steps, exits, forced exits near the top and right edges) and log P_B of
  BoxPBEstimator's QuarterCircle (learned, and BoxPBUniform), on the same raw network outputs
  (torchgfn's side applies BoxPFNeuralNet's / BoxPBNeuralNet's sigmoids), and the gradients of
  the summed log-probabilities in the raw outputs (torch autograd against flowrl's analytic ones).

Tolerance: torchgfn computes the angles in float64 (its "Arccos is very brittle") but the angle
range, the Beta log-densities (lgamma in float32), log(1 − p) and the sums in float32; flowrl all in
float64. The log-densities are sums of a few terms of magnitude ≤ ~20 whose float32 roundings are
~1e-6 each, so TOL = 2e-5 relative to max(1, the largest magnitude); the gradients the same.
Measured (2026-12-06): log P_F 3.4e-7, its gradient 1.7e-6, log P_B 5.6e-7, its gradient 2.0e-7.
Each of these changes on flowrl's side fails: cmax 5.2 for 5.1, δ 0.2501 for 0.25."""
import math

import numpy as np
import pytest

import flowrl_verify as fv
from conftest import need_torch, need_torchgfn
from gfn_flowrl_side import close

torch = need_torch()
need_torchgfn()
from gfn.gym import Box  # noqa: E402
from gfn.gym.helpers.box_utils import (BoxPBEstimator, BoxPBNeuralNet, BoxPBUniform, BoxPFEstimator,  # noqa: E402
                                       BoxPFNeuralNet)

TOL = 2e-5
DELTA, K0, K, CMIN, CMAX, EPS = 0.25, 4, 2, 0.1, 5.1, 1e-10


def f32(x):
    return np.asarray(x, np.float32).astype(np.float64)


def angles(s, ne):
    """QuarterCircle.get_min_and_max_angles in float64 (fractions of π/2)."""
    if ne:
        lo = 0.0 if s[0] <= 1 - DELTA else 2 / math.pi * math.acos((1 - s[0]) / DELTA)
        hi = 1.0 if s[1] <= 1 - DELTA else 2 / math.pi * math.asin((1 - s[1]) / DELTA)
    else:
        lo = 0.0 if s[0] >= DELTA else 2 / math.pi * math.acos(s[0] / DELTA)
        hi = 1.0 if s[1] >= DELTA else 2 / math.pi * math.asin(s[1] / DELTA)
    return lo, hi


def batch(seed, n):
    """Rows of (state, action, is_exit): s0 rows (actions in the quarter disk), steps from states
    inside the square (actions of length δ in the allowed angle range), exits, forced exits."""
    rng = np.random.default_rng(seed)
    S, A, X = [], [], []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            r, th = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)
            S.append((0.0, 0.0))
            A.append((DELTA * r * math.cos(math.pi / 2 * th), DELTA * r * math.sin(math.pi / 2 * th)))
            X.append(0)
            continue
        while True:
            s = f32(rng.uniform(0.02, 0.98, 2))
            forced = math.hypot(1 - s[0], 1 - s[1]) <= DELTA
            if (kind == 4) == forced:
                break
        if kind in (3, 4):
            S.append(tuple(s))
            A.append((-math.inf, -math.inf))
            X.append(1)
            continue
        lo, hi = angles(s, True)
        u = rng.uniform(0.02, 0.98)
        ang = math.pi / 2 * (lo + (hi - lo) * u)
        S.append(tuple(s))
        A.append((max(0.0, DELTA * math.cos(ang)), max(0.0, DELTA * math.sin(ang))))
        X.append(0)
    S, A = f32(S), np.array(A)
    A[np.isfinite(A)] = f32(A[np.isfinite(A)])
    return S, A, np.array(X, np.int32)


def states(env, x):
    return env.States(torch.tensor(x, dtype=torch.float32))


def test_box_reward_and_log_z():
    env = Box(delta=DELTA, epsilon=EPS)
    rng = np.random.default_rng(3)
    edges = np.array([0.1, 0.2, 0.25, 0.75, 0.8, 0.9], np.float32)
    near = np.concatenate([np.nextafter(edges, 0), edges, np.nextafter(edges, 1)]).astype(np.float64)
    x = np.concatenate([f32(rng.uniform(0, 1, (2000, 2))), np.stack(np.meshgrid(near, near), -1).reshape(-1, 2)])
    want = env.reward(states(env, x)).numpy()
    n = x.shape[0]
    out = fv.gfn_loss("box", states=x, actions=np.full((n, 2), -np.inf), is_exit=np.ones(n),
                      pf_out=np.zeros((n, max(5 * K0, 1 + 3 * K))), k0=K0, k=K)
    assert np.array_equal(out["reward"].astype(np.float32), want), "rewards differ"
    assert abs(env.log_partition - math.log(0.1 + 0.25 * 0.5 + 0.04 * 2.0)) < 1e-15


def torch_pf(env, S, A, raw):
    """torchgfn's log P_F of rows (S, A) from raw outputs in flowrl's layout, and the gradient of
    their sum in raw."""
    n, nmax = S.shape[0], max(K0, K)
    rt = torch.tensor(raw, dtype=torch.float32, requires_grad=True)
    s0 = np.all(S == 0, 1)
    # BoxPFNeuralNet's output: [σ(exit), logits, σ(α_θ), σ(β_θ), σ(α_r), σ(β_r)] in blocks of nmax
    rows = []
    for i in range(n):
        r = rt[i]
        if s0[i]:
            parts = [torch.sigmoid(torch.zeros(1)), r[0:K0], torch.sigmoid(r[K0:2 * K0]), torch.sigmoid(r[2 * K0:3 * K0]),
                     torch.sigmoid(r[3 * K0:4 * K0]), torch.sigmoid(r[4 * K0:5 * K0])]
            row = torch.cat([parts[0]] + [torch.cat([p, torch.zeros(nmax - K0)]) for p in parts[1:]])
        else:
            parts = [torch.sigmoid(r[0:1]), r[1:1 + K], torch.sigmoid(r[1 + K:1 + 2 * K]), torch.sigmoid(r[1 + 2 * K:1 + 3 * K])]
            row = torch.cat([parts[0]] + [torch.cat([p, torch.zeros(nmax - K)]) for p in parts[1:]] +
                            [torch.zeros(2 * nmax)])
        rows.append(row)
    mo = torch.stack(rows)
    est = BoxPFEstimator(env, BoxPFNeuralNet(8, 1, n_components_s0=K0, n_components=K), n_components_s0=K0,
                         n_components=K, min_concentration=CMIN, max_concentration=CMAX)
    dist = est.to_probability_distribution(states(env, S), mo)
    lp = dist.log_prob(torch.tensor(A, dtype=torch.float32))
    lp.sum().backward()
    return lp.detach().numpy().astype(np.float64), rt.grad.numpy().astype(np.float64)


@pytest.mark.parametrize("seed", [1, 2])
def test_box_log_pf(seed):
    env = Box(delta=DELTA, epsilon=EPS)
    S, A, X = batch(seed, 60)
    rng = np.random.default_rng(100 + seed)
    W = max(5 * K0, 1 + 3 * K)
    raw = f32(rng.normal(0, 1.5, (S.shape[0], W)))
    s0 = np.all(S == 0, 1)
    raw[s0] = raw[np.argmax(s0)]  # torchgfn's s0 rows share PFs0
    lp_t, g_t = torch_pf(env, S, A, raw)
    out = fv.gfn_loss("box", states=S, actions=A, is_exit=X, pf_out=raw, k0=K0, k=K, cmin=CMIN, cmax=CMAX,
                      delta=DELTA, epsilon=EPS)
    close(lp_t, out["logpf"], "log P_F", TOL)
    g = out["grad_pf_out"].copy()
    g[np.argmax(s0)] = g[s0].sum(0)  # the shared s0 parameters get every s0 row's gradient
    g[s0 & (np.arange(len(s0)) != np.argmax(s0))] = 0.0
    # columns a row does not use are 0 on both sides
    close(g_t, g, "d log P_F / d raw outputs", TOL)


@pytest.mark.parametrize("uniform", [False, True])
def test_box_log_pb(uniform):
    env = Box(delta=DELTA, epsilon=EPS)
    S, A, X = batch(7, 80)
    keep = X == 0
    S, A = S[keep], A[keep]
    nxt = f32(S + A)
    A = f32(A)
    n = S.shape[0]
    rng = np.random.default_rng(11)
    raw = f32(rng.normal(0, 1.5, (n, 3 * K)))
    if uniform:
        est = BoxPBEstimator(env, BoxPBUniform(), n_components=1, min_concentration=CMIN, max_concentration=CMAX)
        mo = torch.ones(n, 3)
        rt = None
    else:
        est = BoxPBEstimator(env, BoxPBNeuralNet(8, 1, n_components=K), n_components=K, min_concentration=CMIN,
                             max_concentration=CMAX)
        rt = torch.tensor(raw, dtype=torch.float32, requires_grad=True)
        mo = torch.cat([rt[:, :K], torch.sigmoid(rt[:, K:])], 1)  # BoxPBNeuralNet's sigmoid
    lp = est.to_probability_distribution(states(env, nxt), mo).log_prob(torch.tensor(A, dtype=torch.float32))
    # flowrl evaluates P_B at state + action; make it the float32 next state torchgfn sees
    kw = {} if uniform else {"pb_out": raw}
    out = fv.gfn_loss("box", states=nxt - A, actions=A, is_exit=np.zeros(n), pf_out=np.zeros((n, max(5 * K0, 1 + 3 * K))),
                      k0=K0, k=K, cmin=CMIN, cmax=CMAX, delta=DELTA, epsilon=EPS, **kw)
    # rows whose state − action lands on s0 exactly are s0 rows on flowrl's P_F side; P_B ignores it
    close(lp.detach().numpy(), out["logpb"], "log P_B", TOL)
    if not uniform:
        lp.sum().backward()
        close(rt.grad.numpy(), out["grad_pb_out"], "d log P_B / d raw outputs", TOL)
