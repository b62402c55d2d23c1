"""What the peer programs of bench/bench_peers.py share: the weights of a flowrl checkpoint read
with numpy, and one Flow-GRPO epoch's configuration — flowrl train's defaults (docs/algorithms/
flow-grpo.md), so each peer does the same work as `flowrl train --algo flow-grpo` on shapes.

The peers compute the same network and the same epoch (shapes, FLOPs, structure), not the same bits:
they are timing peers. Their reward is a stand-in of negligible cost (the squared distance of x0 to a
per-prompt target), where flowrl scores with the task's detector; bench_peers.py's profile gives the
share of flowrl's epoch its reward takes."""
import json
import math
import struct

import numpy as np

# flowrl train --algo flow-grpo defaults (flowrl train --help)
P, G = 8, 8  # prompts per epoch x samples per prompt
T = 10  # sampler steps
NOISE_LEVEL = 0.7  # sde
TRAINED = int(T * 0.99)  # timestep fraction 0.99: steps 0..8
BATCH = 16  # samples per micro-batch
GRAD_ACCUM = 2  # batches per optimizer step
CLIP = 1e-4  # PPO clip range
ADV_CLIP = 5.0
BETA = 0.04  # KL weight to the frozen base
LR, WD, EPS, B1, B2 = 3e-4, 1e-4, 1e-8, 0.9, 0.999
MAX_GRAD_NORM = 1.0
SIGMA_SHIFT = 3.0  # the grid's shift (SD3's): sigma' = s*sigma / (1 + (s-1)*sigma)


def grid():
    """The T + 1 sigmas of the sampler, 1 -> 0."""
    s = np.linspace(1.0, 0.0, T + 1)
    return (SIGMA_SHIFT * s / (1 + (SIGMA_SHIFT - 1) * s)).astype(np.float32)


def load_weights(path):
    """The model tensors of a flowrl safetensors checkpoint (ema.*, optim.* left out) and its config."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    w = {}
    for k, v in header.items():
        if k.startswith(("ema.", "optim.")):
            continue
        a, b = v["data_offsets"]
        w[k] = np.frombuffer(data[a:b], dtype=np.float32).reshape(v["shape"]).copy()
    cfg = {k[6:]: meta[k] for k in meta if k.startswith("model.")}
    for k in ("D", "E", "F", "H", "n_blocks", "n_cond", "n_slots"):
        cfg[k] = int(cfg[k])
    cfg["sigma_min"] = float(cfg["sigma_min"])
    cfg["ln_eps"] = float(cfg["ln_eps"])
    return w, cfg


def conditions(cfg, seed=0):
    """Condition ids (P, n_slots) of P prompts, and per-prompt reward targets (P, D)."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, cfg["n_cond"] + 1, size=(P, cfg["n_slots"])).astype(np.int32)
    tgt = rng.standard_normal((P, cfg["D"])).astype(np.float32) * 0.5
    return c, tgt


def gemm_flops(cfg):
    """Multiply-adds x 2 of one epoch's GEMMs (rollout, trained forward+backward, the base's forward)."""
    D, H, F, E, nb = cfg["D"], cfg["H"], cfg["F"], cfg["E"], cfg["n_blocks"]
    fwd = 2 * (D * H + E * H + H * H + nb * 2 * H * F + H * D)  # per row
    rows_fwd = P * G * T + 2 * P * G * TRAINED  # rollout, policy, base
    rows_bwd = P * G * TRAINED  # backward: about 2 forwards (dW, dX)
    return fwd * rows_fwd + 2 * fwd * rows_bwd


def result_line(name, threads, seconds):
    return json.dumps(dict(program=name, threads=threads, seconds=seconds))


assert math.isclose(grid()[0], 1.0)


# ---- one pretraining step (flowrl pretrain's defaults: core/pretrain.c fr_pretrain_defaults) ----
PRE_BATCH = 128
PRE_LR, PRE_WD, PRE_EMA = 1e-3, 0.0, 0.999
PRE_CFG_DROPOUT = 0.1  # the null condition's probability
# The data x0 is a stand-in (a fixed random batch): flowrl renders the task's shapes each step.


def pretrain_flops(cfg):
    """GEMM FLOPs of one pretraining step: a forward and a backward of PRE_BATCH rows."""
    D, H, F, E, nb = cfg["D"], cfg["H"], cfg["F"], cfg["E"], cfg["n_blocks"]
    fwd = 2 * (D * H + E * H + H * H + nb * 2 * H * F + H * D)
    return 3 * fwd * PRE_BATCH


# ---- one AWM epoch (flowrl train --algo awm defaults: docs/algorithms/awm.md) ----
AWM_T = 14  # ODE sampler steps
AWM_BATCHES = 2  # batches per epoch, one optimizer step (grad accum 2)
AWM_K = 6  # training times per sample
AWM_BETA, AWM_EMA_BETA = 1e-3, 1.0  # KL to the frozen base, KL to the EMA copy
AWM_EMA_DECAY = 0.3  # the EMA copy's decay cap (linear: min(0.3, 0.001 * step))
AWM_LR, AWM_WD = 3e-4, 1e-4


def awm_flops(cfg):
    """GEMM FLOPs of one AWM epoch: the ODE rollout, and per batch the policy's forward and backward
    and the base's and the EMA copy's forwards of K x batch rows."""
    D, H, F, E, nb = cfg["D"], cfg["H"], cfg["F"], cfg["E"], cfg["n_blocks"]
    fwd = 2 * (D * H + E * H + H * H + nb * 2 * H * F + H * D)
    rows = P * G * AWM_K
    return fwd * (P * G * AWM_T + 3 * rows) + 2 * fwd * rows


def ode_grid(T):
    """The ODE sampler's T + 1 sigmas (the same shifted grid as grid())."""
    s = np.linspace(1.0, 0.0, T + 1)
    return (SIGMA_SHIFT * s / (1 + (SIGMA_SHIFT - 1) * s)).astype(np.float32)
