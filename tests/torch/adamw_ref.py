#!/usr/bin/env python3
"""torch.optim.AdamW (foreach=False) on float32 parameters with integer-formula gradients.

The check values of tests/test_torch.c: flowrl runs its AdamW on the same inputs and
compares every state tensor after every step. Both sides build the inputs from integers,
so they are bit for bit the same floats (no file of inputs to keep in sync):

    p0[i]   = ((i*613) mod 1999 - 999) * 2^-9
    g_t[i]  = ((i*40503 + t*9973) mod 2003 - 1001) * 2^-(10 + (7i + 3t) mod 16),  t = 1..T

(|integer| < 2^11, so each value is exact in float32; the exponents spread the
gradients over 2^-25 .. 2^0 so that v spans many binades.)

Writes to OUT, little-endian float32, for t = 1..T: p (n), exp_avg (n), exp_avg_sq (n).
The hyper-parameters are parsed by Python's float(), i.e. the same doubles as C's strtod.

    adamw_ref.py --n 97 --steps 100 --lr 1e-3 --beta1 0.9 --beta2 0.999 --eps 1e-8 \
                 --weight-decay 1e-2 --out states.f32
"""
import argparse
import array
import sys

import torch


def init_param(n):
    return [((i * 613) % 1999 - 999) * 2.0**-9 for i in range(n)]


def grad(n, t):
    return [((i * 40503 + t * 9973) % 2003 - 1001) * 2.0**-(10 + (7 * i + 3 * t) % 16)
            for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--beta1", type=float, required=True)
    ap.add_argument("--beta2", type=float, required=True)
    ap.add_argument("--eps", type=float, required=True)
    ap.add_argument("--weight-decay", type=float, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if sys.byteorder != "little":
        sys.exit("adamw_ref.py: writes little-endian float32; this machine is big-endian")
    torch.set_num_threads(1)
    p = torch.tensor(init_param(a.n), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps,
                            weight_decay=a.weight_decay, foreach=False)
    out = array.array("f")
    for t in range(1, a.steps + 1):
        p.grad = torch.tensor(grad(a.n, t), dtype=torch.float32)
        opt.step()
        st = opt.state[p]
        for x in (p.detach(), st["exp_avg"], st["exp_avg_sq"]):
            out.extend(x.tolist())  # float32 -> double -> float32: exact
    with open(a.out, "wb") as f:
        out.tofile(f)


if __name__ == "__main__":
    main()
