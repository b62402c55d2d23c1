"""One Flow-GRPO epoch in PyTorch, eager, with Flow-GRPO's loop structure (yifan123/flow_grpo
train_sd3.py: the rollout step by step, then for each micro-batch and each trained step one forward and
backward of the policy and one no-grad forward of the base, an optimizer step every GRAD_ACCUM
batches), on the network of a flowrl checkpoint. A timing peer of bench/bench_peers.py:

    python3 bench/peers/epoch_torch.py CKPT THREADS EPOCHS

prints one JSON line per timed epoch (after one untimed warm-up epoch)."""
import copy
import math
import sys
import time

import torch
import torch.nn.functional as Fn

import epoch_common as ec


class Net(torch.nn.Module):
    """flowrl's residual MLP (core/model.c): in-projection + time MLP + condition table, blocks of
    h + fc2(act(fc1(LN(h)))), a final LN, the x0 head v = (x - x0_hat) / max(sigma, sigma_min)."""

    def __init__(self, w, cfg):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(torch.from_numpy(v)) for k, v in w.items()})
        half = cfg["E"] // 2
        self.register_buffer("freq", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))

    def lin(self, x, name):
        return Fn.linear(x, self.p[name + "_weight"], self.p[name + "_bias"])

    def forward(self, x, sigma, c):
        cfg = self.cfg
        act = lambda u: Fn.gelu(u, approximate="tanh")  # noqa: E731
        a = 1000.0 * sigma[:, None] * self.freq[None, :]
        temb = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
        h = self.lin(x, "in") + self.lin(act(self.lin(temb, "time_fc1")), "time_fc2")
        h = h + self.p["cond_weight"][c].sum(dim=1)
        for k in range(cfg["n_blocks"]):
            ln = Fn.layer_norm(h, (cfg["H"],), self.p[f"blocks_{k}_ln_weight"], self.p[f"blocks_{k}_ln_bias"], cfg["ln_eps"])
            h = h + self.lin(act(self.lin(ln, f"blocks_{k}_fc1")), f"blocks_{k}_fc2")
        h = Fn.layer_norm(h, (cfg["H"],), self.p["norm_weight"], self.p["norm_bias"], cfg["ln_eps"])
        x0 = self.lin(h, "out")
        return (x - x0) / torch.clamp(sigma, min=cfg["sigma_min"])[:, None]


def sde_step(x, v, s, s_next, s1):
    """Flow-GRPO's SDE step (docs/algorithms/samplers.md §3): mean, std_dev (without sqrt(-dt)), std."""
    dt = s_next - s
    st = math.sqrt(s / (1 - (s1 if s == 1.0 else s))) * ec.NOISE_LEVEL
    mean = x * (1 + st * st / (2 * s) * dt) + v * (1 + st * st * (1 - s) / (2 * s)) * dt
    return mean, st, st * math.sqrt(-dt)


def logp(x_next, mean, std):
    return (-(x_next - mean) ** 2 / (2 * std * std) - math.log(std) - 0.5 * math.log(2 * math.pi)).mean(dim=1)


def epoch(net, ref, opt, c, tgt, sig, gen):
    N, D = ec.P * ec.G, net.cfg["D"]
    cond = c.repeat_interleave(ec.G, dim=0)
    # rollout
    with torch.no_grad():
        x = torch.randn(N, D, generator=gen)
        xs, lps = [x], []
        for j in range(ec.T):
            v = net(x, torch.full((N,), float(sig[j])), cond)
            mean, _, std = sde_step(x, v, float(sig[j]), float(sig[j + 1]), float(sig[1]))
            x = mean + std * torch.randn(N, D, generator=gen)
            xs.append(x)
            lps.append(logp(x, mean, std))
        r = -((x - tgt.repeat_interleave(ec.G, dim=0)) ** 2).mean(dim=1)
        rg = r.view(ec.P, ec.G)
        adv = ((rg - rg.mean(dim=1, keepdim=True)) / (rg.std(dim=1, unbiased=False, keepdim=True) + 1e-4)).view(N)
    perm = torch.randperm(N, generator=gen)
    for b in range(N // ec.BATCH):
        rows = perm[b * ec.BATCH:(b + 1) * ec.BATCH]
        for j in range(ec.TRAINED):
            s, sn = float(sig[j]), float(sig[j + 1])
            xj, xn, cj = xs[j][rows], xs[j + 1][rows], cond[rows]
            t = torch.full((ec.BATCH,), s)
            mean, st, std = sde_step(xj, net(xj, t, cj), s, sn, float(sig[1]))
            ratio = torch.exp(logp(xn, mean, std) - lps[j][rows])
            a = torch.clamp(adv[rows], -ec.ADV_CLIP, ec.ADV_CLIP)
            pol = torch.maximum(-a * ratio, -a * torch.clamp(ratio, 1 - ec.CLIP, 1 + ec.CLIP)).mean()
            with torch.no_grad():
                mref, _, _ = sde_step(xj, ref(xj, t, cj), s, sn, float(sig[1]))
            kl = ((mean - mref) ** 2).mean(dim=1).mean() / (2 * st * st)
            ((pol + ec.BETA * kl) / (ec.GRAD_ACCUM * ec.TRAINED)).backward()
        if (b + 1) % ec.GRAD_ACCUM == 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), ec.MAX_GRAD_NORM)
            opt.step()
            opt.zero_grad(set_to_none=False)


def main():
    path, threads, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    w, cfg = ec.load_weights(path)
    net = Net(w, cfg)
    ref = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=ec.LR, betas=(ec.B1, ec.B2), eps=ec.EPS, weight_decay=ec.WD)
    c, tgt = ec.conditions(cfg)
    c, tgt = torch.from_numpy(c).long(), torch.from_numpy(tgt)
    sig = ec.grid()
    gen = torch.Generator().manual_seed(0)
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        epoch(net, ref, opt, c, tgt, sig, gen)
        if e:  # the first epoch warms up
            print(ec.result_line("pytorch", threads, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
