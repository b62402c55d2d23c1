#!/usr/bin/env python3
"""make bench-dro: Diffusion-DRO (issue 12) on gmm2d's halfplane reward, 3 seeds.

From the under-trained epsilon base of bench_family (demo/gmm2d_eps_base100.safetensors, 100
pretraining steps, --pred epsilon) and one preference file sampled from it (`flowrl prefs make
--pairs 256 --reward halfplane`: D3PO's pairs from a shared x_T, ties dropped; the winners are
Diffusion-DRO's expert data), Diffusion-DRO with its public defaults (`flowrl train --algo
diffusion-dro --help`: margin 1e-3, buffer 4, lag 16 micro-batches, prompt drop 0.2, 16
micro-batches of 4 rows per optimiser step) for a fixed number of optimiser steps. The learning
rate: the public 1e-4 and two larger, tuned on a seed of its own by the held-out score; then 3
seeds at the tuned lr, 3 at the public lr, and 3 at the tuned lr with the
lagged sampler refreshed every 16 optimiser steps instead of every one. Reported: the held-out mean halfplane score of the
base and of the final checkpoint (`flowrl eval`, DDIM 40 steps eta 0, 16 samples per held-out
prompt, eval's fixed seeds), the gain per seed (the issue's bar: +0.2 on each seed), and the
training metrics that say why (the buffer samples' reward, the hinge's active share and diff).
Writes its section of BENCHMARKS.md.

    python3 bench/bench_dro.py [--seeds 1,2,3] [--epochs 800] [--jobs 2]
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import fmt_ci, flowrl, git_line, loadavg, logger, machine_line, metrics, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
EPS_BASE = "demo/gmm2d_eps_base100.safetensors"  # bench_family's epsilon base
OUT = "demo/bench_dro"
PREFS = os.path.join(OUT, "prefs.safetensors")
PAIRS = 256
PUBLIC_LR = 1e-4
LRS = [PUBLIC_LR, 3e-3, 1e-2]
# the variant: the lagged sampler refreshed every 16 optimiser steps (256 micro-batches) instead of the
# public 16 micro-batches (= every optimiser step with gradient_accumulation_steps 16)
LAG_VARIANT = 256
TUNE_SEED = 101
log = logger("bench_dro")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_dro")


def score(ckpt):
    o = json.loads(sh(["eval", "--ckpt", ckpt, "--task", "gmm2d", "--n", 16, "--reward", "halfplane", "--json",
                       "--threads", 1, "--backend", "opt"]))["overall"]
    return o["mean_score"]


def run(item):
    seed, epochs, lr, lag = item
    d = os.path.join(OUT, f"lr{lr:g}-s{seed}" + (f"-lag{lag}" if lag else ""))
    t0 = time.time()
    sh(["train", "--algo", "diffusion-dro", "--task", "gmm2d", "--base", EPS_BASE, "--prefs", PREFS, "--reward",
        "halfplane", "--out", d, "--epochs", epochs, "--seed", seed, "--lr", "%g" % lr, "--eval-n", 0,
        "--checkpoint-every", 0, "--keep-checkpoints", 0, "--log-every", 100, "--backend", "opt", "--threads", 1,
        "--force"] + (["--lag-steps", lag] if lag else []), out=d + ".log")
    wall = time.time() - t0
    ms = metrics(d)
    final = score(os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"))
    last = ms[-20:]
    avg = lambda k: sum(m[k] for m in last) / len(last)  # noqa: E731
    return dict(seed=seed, lr=lr, lag=lag, epochs=epochs, final=final, wall=wall, r0=ms[0]["reward_mean"],
                last20=avg("reward_mean"), active=avg("active"), diff=avg("diff"), e_exp=avg("e_exp"),
                e_pol=avg("e_pol"), nfe=ms[-1]["nfe.total"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=800)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(EPS_BASE):
        log(f"pretraining {EPS_BASE}")
        sh(["pretrain", "--task", "gmm2d", "--out", EPS_BASE, "--pred", "epsilon", "--backend", "opt", "--threads", 1,
            "--progress", "off", "--max-train-steps", 100, "--force"])
    if not os.path.exists(PREFS):
        sh(["prefs", "make", "--ckpt", EPS_BASE, "--task", "gmm2d", "--pairs", PAIRS, "--reward", "halfplane", "--seed",
            0, "--out", PREFS, "--progress", "off", "--threads", 1])
    prefs = json.loads(sh(["prefs", "show", PREFS, "--json"]))
    load0, t_start = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    base = score(EPS_BASE)
    log(f"epsilon base held-out halfplane score {base:.4f}")
    tuned = []
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        tuned = list(ex.map(run, [(TUNE_SEED, a.epochs, lr, None) for lr in LRS]))
    best = max(tuned, key=lambda r: r["final"])["lr"]
    configs = [(best, None)] + ([(PUBLIC_LR, None)] if best != PUBLIC_LR else []) + [(best, LAG_VARIANT)]
    log(f"tuned lr {best:g}: " + ", ".join(f"{r['lr']:g}: {r['final']:.3f}" for r in tuned))
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        res = list(ex.map(run, [(s, a.epochs, lr, lag) for lr, lag in configs for s in seeds]))
    rows = ["| lr, lag | held-out score (mean ± 95%) | held-out gain per seed | all seeds ≥ +0.2 | buffer reward: first "
            "epoch → last 20 | hinge active (last 20) | diff (last 20) | e_exp / e_pol (last 20) | model evals | "
            "run s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for lr, lag in configs:
        rs = [r for r in res if r["lr"] == lr and r["lag"] == lag]
        gains = [r["final"] - base for r in rs]
        name = f"{lr:g}{' (public)' if lr == PUBLIC_LR else ' (tuned)'}, " + (
            f"{lag} micro-batches (16 optimiser steps)" if lag else "16 micro-batches (public)")
        rows.append(f"| {name} | {fmt_ci([r['final'] for r in rs], digits=3)} | "
                    + ", ".join(f"{g:+.3f}" for g in gains) + " | " + ("yes" if all(g >= 0.2 for g in gains) else "no")
                    + f" | {fmt_ci([r['r0'] for r in rs], digits=3)} → {fmt_ci([r['last20'] for r in rs], digits=3)} | "
                    + f"{fmt_ci([r['active'] for r in rs], digits=2)} | {fmt_ci([r['diff'] for r in rs], digits=4)} | "
                    + f"{sum(r['e_exp'] for r in rs) / len(rs):.3f} / {sum(r['e_pol'] for r in rs) / len(rs):.3f} | "
                    + f"{rs[0]['nfe'] / 1e6:.2f}M | {sorted(r['wall'] for r in rs)[len(rs) // 2]:.0f} |")
        log(rows[-1])
    cmd = "python3 bench/bench_dro.py " + " ".join(sys.argv[1:])
    tune = ", ".join(f"{r['lr']:g}: {r['final']:.3f}" for r in tuned)
    text = "\n".join([
        "<!-- bench_dro begin (written by bench/bench_dro.py; do not edit by hand) -->",
        "## Diffusion-DRO on gmm2d halfplane (issue 12)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-dro`) at {git_line()} on {machine_line()} "
        f"(load average {load0} before). Base: `{EPS_BASE}` (100 pretraining steps, `--pred epsilon`), held-out "
        f"halfplane score **{base:.3f}** (`flowrl eval --reward halfplane --n 16`, DDIM 40 steps, eta 0). Expert data: "
        f"the winners of `{PREFS}` ({prefs.get('pairs', PAIRS)} pairs sampled from the base by `flowrl prefs make "
        f"--reward halfplane --seed 0`, DDIM eta 1, ties dropped: every winner scores 1). Diffusion-DRO with its "
        f"public defaults, {a.epochs} epochs of one optimiser step each (16 micro-batches of 4 buffer rows and 4 "
        f"expert rows; 4 new trajectories of 20 DDIM steps per micro-batch); lr tuned over "
        f"{', '.join('%g' % x for x in LRS)} on seed {TUNE_SEED} ({tune}); seeds {a.seeds}. The issue's bar: +0.2 "
        "over the base on each of 3 seeds, read on the held-out score.", "",
        *rows, "",
        "Buffer reward: the halfplane reward of the trajectories the lagged sampler adds to the buffer (the training "
        "curve; nothing in the loss reads it). Hinge active: the share of rows with diff + margin > 0 (1 at theta = "
        "ref). diff: (e_theta^exp - e_ref^exp) - (e_theta^pol - e_ref^pol), negative when the policy denoises the "
        "expert data better than its own samples, relative to the base. e_exp / e_pol: the policy's mean denoising "
        "errors on the expert and on the buffer rows. With the public lag (the copy after every optimiser step) the "
        "buffer's eps_hat is the policy's own output at the same input, so e_pol is exactly 0 and the policy half "
        "has no gradient: the loss is hinge-gated denoising of the expert data (docs/algorithms/dro.md §9). Model "
        "evals: nfe.total of a run (forward + 2 backward rows).",
        "<!-- bench_dro end -->", ""])
    write_section("BENCHMARKS.md", "bench_dro", text)
    json.dump(dict(base=base, tuned=tuned, runs=res), open(os.path.join(OUT, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
