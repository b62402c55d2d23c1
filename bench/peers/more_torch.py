"""One pretraining step and one AWM epoch in PyTorch, eager, on the network of a flowrl checkpoint
(epoch_torch.py's Net): timing peers of bench/bench_peers.py (issue 15).

    python3 bench/peers/more_torch.py pretrain|awm CKPT THREADS REPS

pretrain: `flowrl pretrain` defaults (batch 128, logit-normal sigma, the null condition with
probability 0.1, velocity loss through the x0 head, clipping at 1, AdamW lr 1e-3, an EMA copy
updated every step) on a stand-in batch of data; one JSON line per timed step.
awm: `flowrl train --algo awm` defaults (P x G samples, an ODE rollout of 14 steps, 2 batches of
K = 6 training times per sample, each batch one forward and backward of the policy and no-grad
forwards of the frozen base and the EMA copy, one optimizer step, the EMA copy's update), AWM's
ghuber log-likelihood in the PPO ratio (on-policy: the ratio's gradient is the advantage-weighted
log-likelihood's); one JSON line per timed epoch. A warm-up step / epoch runs first, untimed."""
import copy
import sys
import time

import torch

import epoch_common as ec
from epoch_torch import Net


def pretrain(net, ema, opt, x0, c, gen, null_id):
    B = x0.shape[0]
    sigma = torch.sigmoid(torch.randn(B, generator=gen))
    eps = torch.randn(x0.shape, generator=gen)
    x = (1 - sigma[:, None]) * x0 + sigma[:, None] * eps
    drop = torch.rand(B, generator=gen) < ec.PRE_CFG_DROPOUT
    cc = torch.where(drop[:, None], torch.full_like(c, null_id), c)
    loss = ((net(x, sigma, cc) - (eps - x0)) ** 2).mean()
    opt.zero_grad(set_to_none=False)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), ec.MAX_GRAD_NORM)
    opt.step()
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.mul_(ec.PRE_EMA).add_(p, alpha=1 - ec.PRE_EMA)


def ghuber_logp(v, target, t, p=0.25):
    m = ((v - target) ** 2).mean(dim=1)
    return -((m + 1e-10) ** p - 1e-10 ** p) * t / p


def awm_epoch(net, ref, ema, opt, c, tgt, gen, step):
    N, D = ec.P * ec.G, net.cfg["D"]
    cond = c.repeat_interleave(ec.G, dim=0)
    sig = ec.ode_grid(ec.AWM_T)
    with torch.no_grad():  # the ODE rollout: only x0 is kept
        x = torch.randn(N, D, generator=gen)
        for j in range(ec.AWM_T):
            x = x + (float(sig[j + 1]) - float(sig[j])) * net(x, torch.full((N,), float(sig[j])), cond)
        r = -((x - tgt.repeat_interleave(ec.G, dim=0)) ** 2).mean(dim=1)
        rg = r.view(ec.P, ec.G)
        adv = ((rg - rg.mean(dim=1, keepdim=True)) / (rg.std(dim=1, unbiased=False, keepdim=True) + 1e-4)).view(N)
    perm = torch.randperm(N, generator=gen)
    b = N // ec.AWM_BATCHES
    opt.zero_grad(set_to_none=False)
    for q in range(ec.AWM_BATCHES):
        rows = perm[q * b:(q + 1) * b].repeat(ec.AWM_K)  # K training times per sample
        idx = torch.randint(1, ec.AWM_T, (rows.numel(),), generator=gen)
        t = torch.from_numpy(sig)[idx]
        x0, cj = x[rows], cond[rows]
        eps = torch.randn(x0.shape, generator=gen)
        xt = (1 - t[:, None]) * x0 + t[:, None] * eps
        v = net(xt, t, cj)
        with torch.no_grad():
            v_ref, v_ema = ref(xt, t, cj), ema(xt, t, cj)
        lp = ghuber_logp(v, eps - x0, t)
        ratio = torch.exp(lp - lp.detach())
        a = torch.clamp(adv[rows], -ec.ADV_CLIP, ec.ADV_CLIP) / ec.ADV_CLIP
        pol = (-a * ratio).mean()
        kl = ec.AWM_BETA * ((v - v_ref) ** 2).mean() + ec.AWM_EMA_BETA * ((v - v_ema) ** 2).mean()
        ((pol + kl) / ec.AWM_BATCHES).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), ec.MAX_GRAD_NORM)
    opt.step()
    d = min(ec.AWM_EMA_DECAY, 0.001 * step)
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.mul_(d).add_(p, alpha=1 - d)


def main():
    mode, path, threads, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    w, cfg = ec.load_weights(path)
    net = Net(w, cfg)
    ema = copy.deepcopy(net).requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    if mode == "pretrain":
        opt = torch.optim.AdamW(net.parameters(), lr=ec.PRE_LR, betas=(ec.B1, ec.B2), eps=ec.EPS, weight_decay=ec.PRE_WD)
        x0 = torch.randn(ec.PRE_BATCH, cfg["D"], generator=gen) * 0.5
        c = torch.randint(0, cfg["n_cond"], (ec.PRE_BATCH, cfg["n_slots"]), generator=gen)
        run = lambda k: pretrain(net, ema, opt, x0, c, gen, cfg["n_cond"])  # noqa: E731
    elif mode == "awm":
        ref = copy.deepcopy(net).requires_grad_(False)
        opt = torch.optim.AdamW(net.parameters(), lr=ec.AWM_LR, betas=(ec.B1, ec.B2), eps=ec.EPS, weight_decay=ec.AWM_WD)
        c, tgt = ec.conditions(cfg)
        c, tgt = torch.from_numpy(c).long(), torch.from_numpy(tgt)
        run = lambda k: awm_epoch(net, ref, ema, opt, c, tgt, gen, k + 1)  # noqa: E731
    else:
        raise SystemExit(f"more_torch.py: unknown mode {mode} (pretrain, awm)")
    for k in range(reps + 1):
        t0 = time.perf_counter()
        run(k)
        if k:  # the first one warms up
            print(ec.result_line("pytorch " + mode, threads, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
