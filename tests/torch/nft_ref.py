#!/usr/bin/env python3
"""DiffusionNFT's micro-batch loss and its gradient as the public code computes them, in torch
(NVlabs/DiffusionNFT@24af555, scripts/train_nft_sd3.py, the per-timestep loop of the training
step; docs/algorithms/nft.md). Written for tests/test_nft.c, which compares flowrl's
fr_nft_loss with it.

Input (--in, little-endian): int64 J, B, D; float64 beta, adv_clip_max, kl_beta, grad_accum;
float32 t (J*B), x0 (B*D), xt (J*B*D), v, v_old, v_ref (J*B*D each); float64 adv (B).
Rows are r = j*B + b. Output (--out): float64 loss of each j (J), float32 gradient of the summed
scaled losses w.r.t. v (J*B*D).

Precision as the public code: the velocities, x0 and x_t are float32 tensors; beta, 1 - beta,
1 + beta are Python floats; the advantages are float64 (numpy's stat tracker); the adaptive
weights are float64 means of |x0_pred.double() - x0.double()| clipped at 1e-5 and detached; each
per-time loss is divided by grad_accum * J before its backward.
"""
import argparse
import sys

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    raw = open(a.inp, "rb").read()
    J, B, D = (int(x) for x in np.frombuffer(raw, dtype="<i8", count=3))
    off = 24
    beta, acm, kl_beta, ga = (float(x) for x in np.frombuffer(raw, dtype="<f8", count=4, offset=off))
    off += 32

    def f32(n):
        nonlocal off
        x = np.frombuffer(raw, dtype="<f4", count=n, offset=off).copy()
        off += 4 * n
        return torch.from_numpy(x)

    R = J * B
    t_all = f32(R).view(J, B)
    x0 = f32(B * D).view(B, D)
    xt_all, v_all, vo_all, vr_all = (f32(R * D).view(J, B, D) for _ in range(4))
    adv = torch.from_numpy(np.frombuffer(raw, dtype="<f8", count=B, offset=off).copy())
    off += 8 * B
    if off != len(raw):
        sys.exit(f"nft_ref: {len(raw) - off} trailing bytes in {a.inp}")

    v = v_all.clone().requires_grad_(True)
    losses = []
    for j in range(J):
        t = t_all[j].view(B, 1)
        xt, vo, vr, vj = xt_all[j], vo_all[j], vr_all[j], v[j]
        a_clip = torch.clamp(adv, -acm, acm)
        r = torch.clamp((a_clip / acm) / 2.0 + 0.5, 0, 1)
        pos = beta * vj + (1 - beta) * vo
        neg = (1.0 + beta) * vo - beta * vj
        x0p = xt - t * pos
        with torch.no_grad():
            wp = torch.abs(x0p.double() - x0.double()).mean(dim=1, keepdim=True).clip(min=0.00001)
        lp = ((x0p - x0) ** 2 / wp).mean(dim=1)
        x0n = xt - t * neg
        with torch.no_grad():
            wn = torch.abs(x0n.double() - x0.double()).mean(dim=1, keepdim=True).clip(min=0.00001)
        ln = ((x0n - x0) ** 2 / wn).mean(dim=1)
        loss = ((r * lp / beta + (1.0 - r) * ln / beta) * acm).mean()
        kl = ((vj - vr) ** 2).mean(dim=1)
        loss = loss + kl_beta * torch.mean(kl)
        (loss / (ga * J)).backward()
        losses.append(loss.item())
    with open(a.out, "wb") as f:
        f.write(np.asarray(losses, dtype="<f8").tobytes())
        f.write(v.grad.detach().numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
