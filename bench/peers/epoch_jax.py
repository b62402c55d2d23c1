"""One Flow-GRPO epoch in JAX, as a careful JAX user writes it: the rollout one jitted lax.scan over the
T steps, each optimizer step one jit that evaluates all trained steps of its GRAD_ACCUM micro-batches
batched (GRAD_ACCUM x BATCH x TRAINED rows at once: the policy's forward and backward and the frozen
base's forward), clipping and AdamW inside. The same network and epoch as flowrl train's Flow-GRPO on a
flowrl checkpoint (bench/peers/epoch_common.py); a timing peer of bench/bench_peers.py:

    python3 bench/peers/epoch_jax.py CKPT THREADS EPOCHS

prints one JSON line per timed epoch (after one untimed warm-up epoch that compiles)."""
import math
import os
import sys
import time

THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
# XLA's CPU thread pool: one thread (the Eigen pool off) for THREADS 1; otherwise XLA's default, one thread
# per CPU the process may run on (bench_peers.py runs THREADS > 1 on the whole 2-core machine)
if THREADS == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import epoch_common as ec  # noqa: E402


def make_net(cfg):
    half = cfg["E"] // 2
    freq = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)

    def lin(p, name, x):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    def ln(h, w, b):
        m = h.mean(axis=-1, keepdims=True)
        v = ((h - m) ** 2).mean(axis=-1, keepdims=True)
        return (h - m) * jax.lax.rsqrt(v + cfg["ln_eps"]) * w + b

    def act(u):
        return jax.nn.gelu(u, approximate=True)

    def net(p, x, sigma, c):
        a = 1000.0 * sigma[:, None] * freq[None, :]
        temb = jnp.concatenate([jnp.cos(a), jnp.sin(a)], axis=1)
        h = lin(p, "in", x) + lin(p, "time.fc2", act(lin(p, "time.fc1", temb)))
        h = h + p["cond.weight"][c].sum(axis=1)
        for k in range(cfg["n_blocks"]):
            u = ln(h, p[f"blocks.{k}.ln.weight"], p[f"blocks.{k}.ln.bias"])
            h = h + lin(p, f"blocks.{k}.fc2", act(lin(p, f"blocks.{k}.fc1", u)))
        h = ln(h, p["norm.weight"], p["norm.bias"])
        x0 = lin(p, "out", h)
        return (x - x0) / jnp.maximum(sigma, cfg["sigma_min"])[:, None]
    return net


def sde_coefs(sig):
    """Per step j: s, dt, std_dev (without sqrt(-dt)), std (numpy, host constants)."""
    s, sn = sig[:-1].astype(np.float64), sig[1:].astype(np.float64)
    dt = sn - s
    den = np.where(s == 1.0, 1 - sig[1], 1 - s)
    st = np.sqrt(s / den) * ec.NOISE_LEVEL
    return [jnp.asarray(a, jnp.float32) for a in (s, dt, st, st * np.sqrt(-dt))]


def sde_mean(x, v, s, dt, st):
    s, dt, st = s[..., None], dt[..., None], st[..., None]
    return x * (1 + st * st / (2 * s) * dt) + v * (1 + st * st * (1 - s) / (2 * s)) * dt


def logp(x_next, mean, std):
    std = std[..., None]
    return (-(x_next - mean) ** 2 / (2 * std * std) - jnp.log(std) - 0.5 * math.log(2 * math.pi)).mean(axis=-1)


def adamw(p, m, v, g, t, lr, wd):
    """Clipping at MAX_GRAD_NORM, then AdamW (the peers' optimizer step, inside their jits)."""
    tmap = jax.tree_util.tree_map
    norm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(g)))
    g = tmap(lambda x: x * jnp.minimum(1.0, ec.MAX_GRAD_NORM / (norm + 1e-6)), g)
    m = tmap(lambda m, g: ec.B1 * m + (1 - ec.B1) * g, m, g)
    v = tmap(lambda v, g: ec.B2 * v + (1 - ec.B2) * g * g, v, g)
    bc1, bc2 = 1 - ec.B1 ** t, 1 - ec.B2 ** t
    p = tmap(lambda p, m, v: p * (1 - lr * wd) - lr * (m / bc1) / (jnp.sqrt(v / bc2) + ec.EPS), p, m, v)
    return p, m, v


def run_epochs(policy, ref, train, frozen, cfg, epochs, name):
    """The timed epochs: policy(train, frozen, x, sigma, c) is the policy's velocity, ref(frozen, x, sigma, c)
    the KL reference's; `train` holds the trained parameters (their gradient, clipping and AdamW), `frozen`
    enters each jit unchanged (the MLP: the base's copy; with LoRA: the base, its adapter term off)."""
    c_np, tgt_np = ec.conditions(cfg)
    N, D = ec.P * ec.G, cfg["D"]
    cond = jnp.asarray(np.repeat(c_np, ec.G, axis=0))
    tgt = jnp.asarray(np.repeat(tgt_np, ec.G, axis=0))
    s_j, dt_j, st_j, std_j = sde_coefs(ec.grid())

    @jax.jit
    def rollout(p, fz, key):
        k0, k1 = jax.random.split(key)
        x = jax.random.normal(k0, (N, D))

        def step(x, inp):
            s, dt, st, std, k = inp
            mean = sde_mean(x, policy(p, fz, x, jnp.full((N,), s), cond), s, dt, st)
            xn = mean + std * jax.random.normal(k, (N, D))
            return xn, (x, xn, logp(xn, mean, std))
        x, (xs, xns, lps) = jax.lax.scan(step, x, (s_j, dt_j, st_j, std_j, jax.random.split(k1, ec.T)))
        r = -((x - tgt) ** 2).mean(axis=1).reshape(ec.P, ec.G)
        adv = ((r - r.mean(axis=1, keepdims=True)) / (r.std(axis=1, keepdims=True) + 1e-4)).reshape(N)
        return xs, xns, lps, adv

    J = ec.TRAINED

    def loss(p, fz, xj, xn, lp_old, a, cj):
        # rows (J, R, D): every trained step of the optimizer step's micro-batches at once
        R = xj.shape[1]
        s = jnp.repeat(s_j[:J], R)
        flat = lambda z: z.reshape((J * R,) + z.shape[2:])  # noqa: E731
        v = policy(p, fz, flat(xj), s, flat(cj)).reshape(J, R, D)
        vr = jax.lax.stop_gradient(ref(fz, flat(xj), s, flat(cj))).reshape(J, R, D)
        co = (s_j[:J, None], dt_j[:J, None], st_j[:J, None])
        mean, mref = sde_mean(xj, v, *co), sde_mean(xj, vr, *co)
        ratio = jnp.exp(logp(xn, mean, std_j[:J, None]) - lp_old)
        a = jnp.clip(a, -ec.ADV_CLIP, ec.ADV_CLIP)
        pol = jnp.maximum(-a * ratio, -a * jnp.clip(ratio, 1 - ec.CLIP, 1 + ec.CLIP)).mean(axis=1)  # per step
        kl = ((mean - mref) ** 2).mean(axis=2).mean(axis=1) / (2 * st_j[:J] ** 2)
        return (pol + ec.BETA * kl).sum() / J

    @jax.jit
    def update(p, m, v, t, fz, xj, xn, lp_old, a, cj):
        g = jax.grad(loss)(p, fz, xj, xn, lp_old, a, cj)  # the trained parameters' gradient only
        return adamw(p, m, v, g, t, ec.LR, ec.WD)

    m = jax.tree_util.tree_map(jnp.zeros_like, train)
    v = jax.tree_util.tree_map(jnp.zeros_like, train)
    key, t = jax.random.PRNGKey(0), 0
    R = ec.GRAD_ACCUM * ec.BATCH
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        key, kr, kp = jax.random.split(key, 3)
        xs, xns, lps, adv = rollout(train, frozen, kr)
        perm = jax.random.permutation(kp, N)
        for u in range(N // R):
            rows = perm[u * R:(u + 1) * R]
            t += 1
            train, m, v = update(train, m, v, t, frozen, xs[:J, rows], xns[:J, rows], lps[:J, rows],
                                 adv[rows][None, :], jnp.broadcast_to(cond[rows], (J,) + cond[rows].shape))
        jax.block_until_ready(train)
        if e:  # the first epoch compiles
            print(ec.result_line(name, THREADS, time.perf_counter() - t0), flush=True)


def main():
    path, epochs = sys.argv[1], int(sys.argv[3])
    w, cfg = ec.load_weights(path)
    net = make_net(cfg)
    params = {k: jnp.asarray(v) for k, v in w.items()}
    run_epochs(lambda p, ref, x, s, c: net(p, x, s, c), lambda ref, x, s, c: net(ref, x, s, c), params,
               dict(params), cfg, epochs, "jax")


if __name__ == "__main__":
    main()
