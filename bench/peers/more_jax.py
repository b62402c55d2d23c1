"""One pretraining step and one AWM epoch in JAX, as a careful JAX user writes them, on the network of
a flowrl checkpoint (epoch_jax.py's make_net): timing peers of bench/bench_peers.py (issue 15).

    python3 bench/peers/more_jax.py pretrain|awm CKPT THREADS REPS

pretrain: each step one jit (noise, forward, backward, clipping, AdamW, the EMA copy) with
`flowrl pretrain`'s defaults on a stand-in batch of data. awm: the ODE rollout one jitted scan, the
optimizer step one jit over both batches' K x b rows at once (the policy's forward and backward,
the frozen base's and the EMA copy's forwards), the EMA copy's update inside; the same work as
more_torch.py. One JSON line per timed step / epoch, after an untimed one that compiles."""
import os
import sys
import time

MODE = sys.argv.pop(1) if len(sys.argv) > 1 else ""  # the rest as epoch_jax.py's: CKPT THREADS N
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
if THREADS == 1:  # as epoch_jax.py: XLA on one thread
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import epoch_common as ec  # noqa: E402
from epoch_jax import adamw, make_net  # noqa: E402

tmap = jax.tree_util.tree_map


def pretrain(apply, params, cfg, reps, name):
    """The timed pretraining steps, each one jit: apply(p, x, sigma, c) is the network's velocity."""
    B, D = ec.PRE_BATCH, cfg["D"]
    ema = dict(params)
    m = tmap(jnp.zeros_like, params)
    v = tmap(jnp.zeros_like, params)
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.standard_normal((B, D)).astype(np.float32) * 0.5)
    c = jnp.asarray(rng.integers(0, cfg["n_cond"], (B, cfg["n_slots"])).astype(np.int32))

    def loss(p, x0, c, key):
        k0, k1, k2 = jax.random.split(key, 3)
        sigma = jax.nn.sigmoid(jax.random.normal(k0, (B,)))
        eps = jax.random.normal(k1, x0.shape)
        x = (1 - sigma[:, None]) * x0 + sigma[:, None] * eps
        cc = jnp.where((jax.random.uniform(k2, (B,)) < ec.PRE_CFG_DROPOUT)[:, None], cfg["n_cond"], c)
        return ((apply(p, x, sigma, cc) - (eps - x0)) ** 2).mean()

    @jax.jit
    def step(p, m, v, ema, t, key):
        g = jax.grad(loss)(p, x0, c, key)
        p, m, v = adamw(p, m, v, g, t, ec.PRE_LR, ec.PRE_WD)
        ema = tmap(lambda e, q: ec.PRE_EMA * e + (1 - ec.PRE_EMA) * q, ema, p)
        return p, m, v, ema

    key = jax.random.PRNGKey(0)
    for k in range(reps + 1):
        t0 = time.perf_counter()
        key, kk = jax.random.split(key)
        params, m, v, ema = step(params, m, v, ema, k + 1, kk)
        jax.block_until_ready(params)
        if k:
            print(ec.result_line(name, THREADS, time.perf_counter() - t0), flush=True)


def main():
    mode, path, reps = MODE, sys.argv[1], int(sys.argv[3])
    w, cfg = ec.load_weights(path)
    net = make_net(cfg)
    D = cfg["D"]
    params = {k: jnp.asarray(v) for k, v in w.items()}
    ema = dict(params)
    m = tmap(jnp.zeros_like, params)
    v = tmap(jnp.zeros_like, params)

    if mode == "pretrain":
        pretrain(net, params, cfg, reps, "jax pretrain")
        return
    if mode != "awm":
        raise SystemExit(f"more_jax.py: unknown mode {mode} (pretrain, awm)")

    ref = dict(params)
    c_np, tgt_np = ec.conditions(cfg)
    N = ec.P * ec.G
    cond = jnp.asarray(np.repeat(c_np, ec.G, axis=0))
    tgt = jnp.asarray(np.repeat(tgt_np, ec.G, axis=0))
    sig = jnp.asarray(ec.ode_grid(ec.AWM_T))

    @jax.jit
    def rollout(p, key):
        def step(x, j):
            return x + (sig[j + 1] - sig[j]) * net(p, x, jnp.full((N,), sig[j]), cond), None
        x, _ = jax.lax.scan(step, jax.random.normal(key, (N, D)), jnp.arange(ec.AWM_T))
        r = -((x - tgt) ** 2).mean(axis=1).reshape(ec.P, ec.G)
        adv = ((r - r.mean(axis=1, keepdims=True)) / (r.std(axis=1, keepdims=True) + 1e-4)).reshape(N)
        return x, adv

    def loss(p, ema, x0, cj, a, key):
        R = x0.shape[0]
        k0, k1 = jax.random.split(key)
        t = sig[jax.random.randint(k0, (R,), 1, ec.AWM_T)]
        eps = jax.random.normal(k1, x0.shape)
        xt = (1 - t[:, None]) * x0 + t[:, None] * eps
        vp = net(p, xt, t, cj)
        vr = jax.lax.stop_gradient(net(ref, xt, t, cj))
        ve = jax.lax.stop_gradient(net(ema, xt, t, cj))
        mm = ((vp - (eps - x0)) ** 2).mean(axis=1)
        lp = -((mm + 1e-10) ** 0.25 - 1e-10 ** 0.25) * t / 0.25
        ratio = jnp.exp(lp - jax.lax.stop_gradient(lp))
        pol = (-jnp.clip(a, -ec.ADV_CLIP, ec.ADV_CLIP) / ec.ADV_CLIP * ratio).mean()
        return pol + ec.AWM_BETA * ((vp - vr) ** 2).mean() + ec.AWM_EMA_BETA * ((vp - ve) ** 2).mean()

    @jax.jit
    def update(p, m, v, ema, t, x0, cj, a, key):
        g = jax.grad(loss)(p, ema, x0, cj, a, key)
        p, m, v = adamw(p, m, v, g, t, ec.AWM_LR, ec.AWM_WD)
        d = jnp.minimum(ec.AWM_EMA_DECAY, 0.001 * t)
        ema = tmap(lambda e, q: d * e + (1 - d) * q, ema, p)
        return p, m, v, ema

    key = jax.random.PRNGKey(0)
    for k in range(reps + 1):
        t0 = time.perf_counter()
        key, kr, kp, ku = jax.random.split(key, 4)
        x, adv = rollout(params, kr)
        rows = jnp.tile(jax.random.permutation(kp, N), ec.AWM_K)  # both batches, K times each
        params, m, v, ema = update(params, m, v, ema, k + 1, x[rows], cond[rows], adv[rows], ku)
        jax.block_until_ready(params)
        if k:
            print(ec.result_line("jax awm", THREADS, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
