"""What the DiT peers of bench/bench_peers.py share (dit_torch.py, dit_jax.py): a flowrl DiT checkpoint
(model.arch = dit, the "shapes-dit-s" preset: core/dit.c) read with epoch_common.load_weights, the
tensor shapes its forward expects, flowrl's LoRA defaults for the DiT (docs/lora.md), and the GEMM
FLOPs of one pretraining step and of one Flow-GRPO epoch with LoRA (for GFLOP/s).

The DiT (core/dit.c's header): x (B, D) an image (C, Hi, Wi) in CHW order cut into N = (Hi/p)(Wi/p)
patch tokens of P = C p p values (token n = patch n of the patch grid, row-major; its values in
(c, dy, dx) order: core/dit.c make_tables), S = n_slots prompt tokens, L = N + S, nh heads of
dh = H / nh; adaLN-zero blocks of joint self-attention and an MLP over all L tokens, a final adaLN
layer and `out` on the image tokens, unpatchified. The epoch's and the pretraining step's
configuration are epoch_common's (P, G, T, TRAINED, BATCH, GRAD_ACCUM, PRE_BATCH, ...)."""
import numpy as np

import epoch_common as ec

# flowrl train --lora-rank 8 with the defaults (docs/lora.md §2): alpha 0 means alpha = r, so the
# scale alpha / r is 1; the DiT's default targets FR_LORA_DIT_TARGETS (include/flowrl/lora.h)
LORA_R = 8
LORA_ALPHA = 8.0
LORA_SCALE = LORA_ALPHA / LORA_R
LORA_TARGETS = ("attn.qkv", "attn.proj")  # blocks.*.attn.qkv, blocks.*.attn.proj


def load_dit(path):
    """The model tensors and config of a flowrl DiT checkpoint: load_weights plus the DiT's keys."""
    w, cfg = ec.load_weights(path)
    if cfg.get("arch") != "dit":
        raise SystemExit(f"dit peers: {path} has model.arch {cfg.get('arch', 'mlp')}, expected dit")
    for k in ("patch", "n_heads", "img_c", "img_h", "img_w"):
        cfg[k] = int(cfg[k])
    cfg.setdefault("head", "velocity")  # a file without model.head is a velocity head (include/flowrl/model.h)
    if cfg["head"] not in ("x0", "velocity"):
        raise SystemExit(f"dit peers: model.head {cfg['head']}: expected x0 or velocity")
    if cfg.get("act", "gelu_tanh") not in ("gelu_tanh", "silu"):
        raise SystemExit(f"dit peers: model.act {cfg['act']}: expected gelu_tanh or silu")
    C, Hi, Wi, p = cfg["img_c"], cfg["img_h"], cfg["img_w"], cfg["patch"]
    assert C * Hi * Wi == cfg["D"] and Hi % p == 0 and Wi % p == 0 and cfg["H"] % cfg["n_heads"] == 0
    cfg["N"] = (Hi // p) * (Wi // p)  # image tokens
    cfg["P"] = C * p * p  # values per token
    cfg["L"] = cfg["N"] + cfg["n_slots"]  # tokens
    cfg["dh"] = cfg["H"] // cfg["n_heads"]
    check_shapes(w, cfg)
    return w, cfg


def shapes(cfg):
    """Every model tensor of a DiT and its shape (core/dit.c fr_dit_make_specs)."""
    H, F, E, P, N = cfg["H"], cfg["F"], cfg["E"], cfg["P"], cfg["N"]
    s = {"patch.weight": (H, P), "patch.bias": (H,), "pos": (N, H),
         "time.fc1.weight": (H, E), "time.fc1.bias": (H,), "time.fc2.weight": (H, H), "time.fc2.bias": (H,),
         "cond.weight": (cfg["n_cond"] + 1, H), "prompt_pos": (cfg["n_slots"], H)}
    for k in range(cfg["n_blocks"]):
        for name, shape in (("adaln", (6 * H, H)), ("attn.qkv", (3 * H, H)), ("attn.proj", (H, H)),
                            ("fc1", (F, H)), ("fc2", (H, F))):
            s[f"blocks.{k}.{name}.weight"] = shape
            s[f"blocks.{k}.{name}.bias"] = shape[:1]
    s.update({"final.adaln.weight": (2 * H, H), "final.adaln.bias": (2 * H,), "out.weight": (P, H), "out.bias": (P,)})
    return s


def check_shapes(w, cfg):
    want = shapes(cfg)
    if set(w) != set(want):
        raise SystemExit(f"dit peers: checkpoint tensors differ from the DiT's: missing {sorted(set(want) - set(w))}, "
                         f"unknown {sorted(set(w) - set(want))}")
    for k, s in want.items():
        if tuple(w[k].shape) != s:
            raise SystemExit(f"dit peers: {k} has shape {tuple(w[k].shape)}, expected {s}")


def check_used(used, w):
    """Every model tensor of the checkpoint was read by the forward (`used`: the names it read)."""
    if set(used) != set(w):
        raise SystemExit(f"dit peers: the forward left tensors unused: {sorted(set(w) - set(used))}")


def lora_modules(cfg):
    return [f"blocks.{k}.{t}" for k in range(cfg["n_blocks"]) for t in LORA_TARGETS]


def lora_init(w, cfg, seed=0):
    """PEFT's default init (include/flowrl/lora.h): A (r, K) ~ kaiming_uniform_(a = sqrt 5) =
    U(-1/sqrt K, 1/sqrt K), B (N, r) = 0, per target module M, as {M: (A, B)} (numpy)."""
    rng = np.random.default_rng(seed)
    ad = {}
    for m in lora_modules(cfg):
        n, k = w[m + ".weight"].shape
        a = ((2 * rng.random((LORA_R, k)) - 1) / np.sqrt(k)).astype(np.float32)
        ad[m] = (a, np.zeros((n, LORA_R), np.float32))
    return ad


# ---- GEMM FLOPs (multiply-adds x 2) ----

def dit_fwd_flops_per_sample(cfg, lora=False):
    """One sample's forward: every linear layer on its rows (patch embedding on the N image tokens;
    qkv, proj, fc1, fc2 on all L tokens; the blocks' adaLN, the time MLP and the final adaLN on one
    row; out on the N image tokens) and attention's Q K^T and P V (2 x 2 nh L L dh). With lora, the
    adapters' two small GEMMs (z A^T, then (.) B^T) on the L rows of every target. flowrl's own count
    (core/dit.c fr_dit_flops) runs `out` on all L rows: 2 S H P more, 0.2% here."""
    H, F, E, P, N, L, nh, dh = cfg["H"], cfg["F"], cfg["E"], cfg["P"], cfg["N"], cfg["L"], cfg["n_heads"], cfg["dh"]
    macs = N * P * H + E * H + H * H  # patch embedding, time MLP
    block = 6 * H * H + L * (3 * H * H + H * H + H * F + F * H) + 2 * nh * L * L * dh
    macs += cfg["n_blocks"] * block + 2 * H * H + N * H * P  # blocks, final adaLN, out
    if lora:
        macs += cfg["n_blocks"] * L * LORA_R * ((H + 3 * H) + (H + H))  # qkv (K H, N 3H), proj (K H, N H)
    return 2 * macs


def dit_lora_bwd_flops_per_sample(cfg):
    """One sample's backward when only the adapters train (the base frozen: no dW of base weights, so
    about 1 forward where full fine-tuning costs 2). Counted: dX of the layers the gradient runs
    through (every block's qkv, proj, fc1, fc2, and out), attention's backward (dV = P^T dO, dP = dO V^T,
    dQ = dS K, dK = dS^T Q: 2 x its forward), and the adapters' backward (dB, dA and dX through their two
    GEMMs: 2 x their forward). Not counted: the adaLN layers, the time MLP and the patch embedding (their
    inputs and weights are all frozen: PyTorch and JAX do no GEMM there; flowrl computes the adaLN
    layers' dX of one row per sample, under 1%), and that autograd skips the first block's qkv dX."""
    H, F, P, N, L, nh, dh = cfg["H"], cfg["F"], cfg["P"], cfg["N"], cfg["L"], cfg["n_heads"], cfg["dh"]
    block = L * (3 * H * H + H * H + H * F + F * H) + 2 * (2 * nh * L * L * dh)
    block += 2 * L * LORA_R * ((H + 3 * H) + (H + H))
    return 2 * (cfg["n_blocks"] * block + N * H * P)


def dit_pretrain_flops(cfg):
    """One pretraining step: a forward and a backward (about 2 forwards: dW and dX) of PRE_BATCH rows."""
    return 3 * dit_fwd_flops_per_sample(cfg) * ec.PRE_BATCH


def dit_fg_flops(cfg, lora=True):
    """One Flow-GRPO epoch (epoch_common's configuration): the rollout's P G T forwards of the policy,
    the policy's forward and backward on the P G TRAINED trained rows, and the frozen reference's forward
    (the base: the adapters off) on the same rows. With lora the policy's forwards include the adapters
    and its backward is dit_lora_bwd_flops_per_sample (no dW of the base); without, full fine-tuning:
    backward = 2 forwards (dW and dX)."""
    rows = ec.P * ec.G * ec.TRAINED
    pol = dit_fwd_flops_per_sample(cfg, lora)
    bwd = dit_lora_bwd_flops_per_sample(cfg) if lora else 2 * pol
    return pol * ec.P * ec.G * ec.T + (pol + bwd) * rows + dit_fwd_flops_per_sample(cfg) * rows
