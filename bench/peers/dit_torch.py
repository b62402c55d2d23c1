"""One pretraining step and one Flow-GRPO epoch with LoRA in PyTorch, eager, on flowrl's DiT (core/dit.c:
a flowrl checkpoint of model.arch dit, e.g. the shapes-dit-s base): timing peers of bench/bench_peers.py.

    python3 bench/peers/dit_torch.py pretrain|fg-lora CKPT THREADS REPS

pretrain: more_torch.py's step (more_torch.pretrain, imported: `flowrl pretrain` defaults, batch 128,
logit-normal sigma, the null condition with probability 0.1, velocity loss through the x0 head, clipping at
1, AdamW lr 1e-3, the EMA copy) with the DiT for the MLP; one JSON line per timed step.
fg-lora: epoch_torch.py's Flow-GRPO epoch (epoch_torch.epoch, imported: the rollout step by step, then per
micro-batch and trained step the policy's forward and backward and the reference's no-grad forward, an
optimizer step every GRAD_ACCUM batches) with `flowrl train --lora-rank 8`'s model: the policy is the DiT
with rank-8 adapters on every block's attn.qkv and attn.proj (dit_common: alpha 8, PEFT's init), only the
adapters require grad and AdamW holds only them; the reference is the same module with the adapters off
(docs/lora.md: "adapter off", the base itself, no copy). Both loops are used unchanged (clip_grad_norm_
skips the frozen base's parameters: they have no grad). One JSON line per timed epoch. A warm-up step /
epoch runs first, untimed."""
import copy
import math
import sys
import time

import torch
import torch.nn.functional as Fn

import dit_common as dc
import epoch_common as ec
from epoch_torch import epoch
from more_torch import pretrain


class DiT(torch.nn.Module):
    """flowrl's DiT (core/dit.c fr_dit_forward, its op order): patch and prompt tokens, the adaLN vector
    silu(time MLP + pooled prompt), adaLN-zero blocks of joint attention and an MLP, the final adaLN layer,
    `out` on the image tokens, unpatchified, and the model's head. With lora_r, rank-r adapters on
    dit_common.LORA_TARGETS: y = base(z) + scale (z A^T) B^T (include/flowrl/lora.h)."""

    def __init__(self, w, cfg, lora_r=0, seed=0):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(torch.from_numpy(v)) for k, v in w.items()})
        half = cfg["E"] // 2
        self.register_buffer("freq", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))
        self.lora = torch.nn.ParameterDict()
        if lora_r:
            assert lora_r == dc.LORA_R
            for m, (a, b) in dc.lora_init(w, cfg, seed).items():
                self.lora[m.replace(".", "_") + "_A"] = torch.nn.Parameter(torch.from_numpy(a))
                self.lora[m.replace(".", "_") + "_B"] = torch.nn.Parameter(torch.from_numpy(b))
        self.used = set()  # the model tensors a forward read (dit_common.check_used)

    def w(self, name):
        self.used.add(name)
        return self.p[name.replace(".", "_")]

    def lin(self, z, name, lora):
        y = Fn.linear(z, self.w(name + ".weight"), self.w(name + ".bias"))
        key = name.replace(".", "_")
        if lora and key + "_A" in self.lora:  # flowrl/linear.h: y + (s z A^T) B^T
            y = y + Fn.linear(dc.LORA_SCALE * Fn.linear(z, self.lora[key + "_A"]), self.lora[key + "_B"])
        return y

    def act(self, u):
        return Fn.gelu(u, approximate="tanh") if self.cfg["act"] == "gelu_tanh" else Fn.silu(u)

    def forward(self, x, sigma, c, lora=True):
        cfg = self.cfg
        B, C, p, H, N, L = x.shape[0], cfg["img_c"], cfg["patch"], cfg["H"], cfg["N"], cfg["L"]
        nh, dh = cfg["n_heads"], cfg["dh"]
        gh, gw = cfg["img_h"] // p, cfg["img_w"] // p
        ln = lambda h: Fn.layer_norm(h, (H,), None, None, cfg["ln_eps"])  # noqa: E731  (no affine: adaLN's)
        # tokens: patch n = (row-major over the patch grid) with values (c, dy, dx); prompt rows
        xp = x.view(B, C, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(B, N, cfg["P"])
        img = self.lin(xp, "patch", lora) + self.w("pos")
        emb = self.w("cond.weight")[c]  # (B, S, H)
        h = torch.cat([img, emb + self.w("prompt_pos")], dim=1)  # (B, L, H)
        # the adaLN vector: time MLP of the sinusoidal features (cos first) of t = 1000 sigma, + pooled prompt
        a = 1000.0 * sigma[:, None] * self.freq[None, :]
        temb = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
        sc = Fn.silu(self.lin(self.act(self.lin(temb, "time.fc1", lora)), "time.fc2", lora) + emb.sum(dim=1))
        for k in range(cfg["n_blocks"]):
            b1, g1, a1, b2, g2, a2 = self.lin(sc, f"blocks.{k}.adaln", lora)[:, None, :].chunk(6, dim=2)
            # joint attention: qkv's 3H outputs are (q, k, v) x (head, dh)
            qkv = self.lin(ln(h) * (1 + g1) + b1, f"blocks.{k}.attn.qkv", lora)
            q, kk, v = qkv.view(B, L, 3, nh, dh).permute(2, 0, 3, 1, 4)  # each (B, nh, L, dh)
            pr = torch.softmax(q @ kk.transpose(2, 3) / math.sqrt(dh), dim=3)
            o = (pr @ v).transpose(1, 2).reshape(B, L, H)
            h = h + a1 * self.lin(o, f"blocks.{k}.attn.proj", lora)
            m = ln(h) * (1 + g2) + b2
            h = h + a2 * self.lin(self.act(self.lin(m, f"blocks.{k}.fc1", lora)), f"blocks.{k}.fc2", lora)
        bf, gf = self.lin(sc, "final.adaln", lora)[:, None, :].chunk(2, dim=2)
        o = self.lin(ln(h[:, :N]) * (1 + gf) + bf, "out", lora)  # image tokens only (flowrl drops the prompt's)
        out = o.view(B, gh, gw, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, cfg["D"])
        if cfg["head"] == "x0":
            return (x - out) / torch.clamp(sigma, min=cfg["sigma_min"])[:, None]
        return out


class Ref:
    """The reference of a LoRA run: the policy's module with its adapters off (no copy)."""

    def __init__(self, net):
        self.net, self.cfg = net, net.cfg

    def __call__(self, x, sigma, c):
        return self.net(x, sigma, c, lora=False)


def main():
    mode, path, threads, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    w, cfg = dc.load_dit(path)
    gen = torch.Generator().manual_seed(0)
    if mode == "pretrain":
        net = DiT(w, cfg)
        ema = copy.deepcopy(net).requires_grad_(False)
        opt = torch.optim.AdamW(net.parameters(), lr=ec.PRE_LR, betas=(ec.B1, ec.B2), eps=ec.EPS, weight_decay=ec.PRE_WD)
        x0 = torch.randn(ec.PRE_BATCH, cfg["D"], generator=gen) * 0.5
        c = torch.randint(0, cfg["n_cond"], (ec.PRE_BATCH, cfg["n_slots"]), generator=gen)
        run = lambda k: pretrain(net, ema, opt, x0, c, gen, cfg["n_cond"])  # noqa: E731
    elif mode == "fg-lora":
        net = DiT(w, cfg, lora_r=dc.LORA_R)
        net.p.requires_grad_(False)  # the base is frozen: only the adapters train
        ref = Ref(net)
        opt = torch.optim.AdamW(net.lora.parameters(), lr=ec.LR, betas=(ec.B1, ec.B2), eps=ec.EPS, weight_decay=ec.WD)
        c, tgt = ec.conditions(cfg)
        c, tgt = torch.from_numpy(c).long(), torch.from_numpy(tgt)
        sig = ec.grid()
        run = lambda k: epoch(net, ref, opt, c, tgt, sig, gen)  # noqa: E731
    else:
        raise SystemExit(f"dit_torch.py: unknown mode {mode} (pretrain, fg-lora)")
    for k in range(reps + 1):
        t0 = time.perf_counter()
        run(k)
        if not k:  # the first one warms up, and has read every model tensor
            dc.check_used(net.used, w)
        else:
            print(ec.result_line("pytorch dit " + mode, threads, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
