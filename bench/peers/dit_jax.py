"""One pretraining step and one Flow-GRPO epoch with LoRA in JAX, as a careful JAX user writes them, on
flowrl's DiT (core/dit.c: a flowrl checkpoint of model.arch dit, e.g. the shapes-dit-s base): timing peers
of bench/bench_peers.py, the same work as dit_torch.py.

    python3 bench/peers/dit_jax.py pretrain|fg-lora CKPT THREADS REPS

pretrain: more_jax.py's pretrain (imported), each step one jit (noise, forward, backward, clipping, AdamW,
the EMA copy) with `flowrl pretrain`'s defaults on a stand-in batch, the DiT for the MLP.
fg-lora: epoch_jax.py's run_epochs (imported), the rollout one jitted lax.scan over the T steps, each
optimizer step one jit over all trained steps of its GRAD_ACCUM micro-batches (GRAD_ACCUM x BATCH x TRAINED rows: the policy's
forward and backward, the reference's forward), clipping and AdamW inside, with `flowrl train --lora-rank 8`'s
model: the gradient, the clipping and AdamW are over the adapters only (rank 8 on every block's attn.qkv and
attn.proj, dit_common), the base's weights enter each jit as frozen arguments, and the reference is the same
base weights with the adapter term off. One JSON line per timed step / epoch, after an untimed one that
compiles."""
import math
import sys

# more_jax.py reads this same command line at import: it takes MODE out of sys.argv and, before JAX starts,
# sets XLA's CPU threads for THREADS (one thread, the Eigen pool off, for THREADS 1: epoch_jax.py's setup)
from more_jax import MODE, pretrain

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import dit_common as dc  # noqa: E402
from epoch_jax import run_epochs  # noqa: E402


def make_dit(cfg):
    """net(p, ad, x, sigma, c): flowrl's DiT (core/dit.c fr_dit_forward, its op order; dit_torch.DiT's
    forward) with base weights p and adapters ad ({module: (A, B)}, or None: the adapters off)."""
    half = cfg["E"] // 2
    freq = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    C, p_, H, N, L, nh, dh = cfg["img_c"], cfg["patch"], cfg["H"], cfg["N"], cfg["L"], cfg["n_heads"], cfg["dh"]
    gh, gw = cfg["img_h"] // p_, cfg["img_w"] // p_

    def lin(p, ad, name, z):
        y = z @ p[name + ".weight"].T + p[name + ".bias"]
        if ad is not None and name in ad:  # flowrl/linear.h: y + (s z A^T) B^T
            a, b = ad[name]
            y = y + (dc.LORA_SCALE * (z @ a.T)) @ b.T
        return y

    def ln(h):  # no affine: adaLN's
        m = h.mean(axis=-1, keepdims=True)
        v = ((h - m) ** 2).mean(axis=-1, keepdims=True)
        return (h - m) * jax.lax.rsqrt(v + cfg["ln_eps"])

    def act(u):
        return jax.nn.gelu(u, approximate=True) if cfg["act"] == "gelu_tanh" else jax.nn.silu(u)

    def net(p, ad, x, sigma, c):
        B = x.shape[0]
        # tokens: patch n = (row-major over the patch grid) with values (c, dy, dx); prompt rows
        xp = x.reshape(B, C, gh, p_, gw, p_).transpose(0, 2, 4, 1, 3, 5).reshape(B, N, cfg["P"])
        img = lin(p, ad, "patch", xp) + p["pos"]
        emb = p["cond.weight"][c]  # (B, S, H)
        h = jnp.concatenate([img, emb + p["prompt_pos"]], axis=1)  # (B, L, H)
        # the adaLN vector: time MLP of the sinusoidal features (cos first) of t = 1000 sigma, + pooled prompt
        a = 1000.0 * sigma[:, None] * freq[None, :]
        temb = jnp.concatenate([jnp.cos(a), jnp.sin(a)], axis=1)
        sc = jax.nn.silu(lin(p, ad, "time.fc2", act(lin(p, ad, "time.fc1", temb))) + emb.sum(axis=1))
        for k in range(cfg["n_blocks"]):
            b1, g1, a1, b2, g2, a2 = jnp.split(lin(p, ad, f"blocks.{k}.adaln", sc)[:, None, :], 6, axis=2)
            # joint attention: qkv's 3H outputs are (q, k, v) x (head, dh)
            qkv = lin(p, ad, f"blocks.{k}.attn.qkv", ln(h) * (1 + g1) + b1)
            q, kk, v = qkv.reshape(B, L, 3, nh, dh).transpose(2, 0, 3, 1, 4)  # each (B, nh, L, dh)
            pr = jax.nn.softmax(q @ kk.transpose(0, 1, 3, 2) / math.sqrt(dh), axis=3)
            o = (pr @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
            h = h + a1 * lin(p, ad, f"blocks.{k}.attn.proj", o)
            m = ln(h) * (1 + g2) + b2
            h = h + a2 * lin(p, ad, f"blocks.{k}.fc2", act(lin(p, ad, f"blocks.{k}.fc1", m)))
        bf, gf = jnp.split(lin(p, ad, "final.adaln", sc)[:, None, :], 2, axis=2)
        o = lin(p, ad, "out", ln(h[:, :N]) * (1 + gf) + bf)  # image tokens only (flowrl drops the prompt's)
        out = o.reshape(B, gh, gw, C, p_, p_).transpose(0, 3, 1, 4, 2, 5).reshape(B, cfg["D"])
        if cfg["head"] == "x0":
            return (x - out) / jnp.maximum(sigma, cfg["sigma_min"])[:, None]
        return out
    return net


def check_used(net, w, cfg, ad):
    """dit_common.check_used, on one untraced forward of 2 rows with a dict that records its reads."""
    class Rec(dict):
        def __init__(self, d):
            super().__init__(d)
            self.used = set()

        def __getitem__(self, k):
            self.used.add(k)
            return dict.__getitem__(self, k)
    rec = Rec({k: jnp.asarray(v) for k, v in w.items()})
    c = np.zeros((2, cfg["n_slots"]), np.int32)
    net(rec, ad, jnp.zeros((2, cfg["D"])), jnp.full((2,), 0.5), c)
    dc.check_used(rec.used, w)


def main():
    path, reps = sys.argv[1], int(sys.argv[3])
    w, cfg = dc.load_dit(path)
    net = make_dit(cfg)
    params = {k: jnp.asarray(v) for k, v in w.items()}
    if MODE == "pretrain":
        check_used(net, w, cfg, None)
        pretrain(lambda p, x, s, c: net(p, None, x, s, c), params, cfg, reps, "jax dit pretrain")
    elif MODE == "fg-lora":
        ad = {m: (jnp.asarray(a), jnp.asarray(b)) for m, (a, b) in dc.lora_init(w, cfg).items()}
        check_used(net, w, cfg, ad)
        # epoch_jax's epoch: the adapters trained, the base frozen; the reference is the base, adapters off
        run_epochs(lambda ad, base, x, s, c: net(base, ad, x, s, c), lambda base, x, s, c: net(base, None, x, s, c),
                   ad, params, cfg, reps, "jax dit fg-lora")
    else:
        raise SystemExit(f"dit_jax.py: unknown mode {MODE} (pretrain, fg-lora)")


if __name__ == "__main__":
    main()
