#!/usr/bin/env python3
"""make bench-family: the Flow-GRPO family (issue 11) on gmm2d's halfplane reward, 3 seeds each.

For every registered member of the trajectory-GRPO family, from the same under-trained gmm2d base
(bench_algos' demo/gmm2d_base100.safetensors, 100 pretraining steps), with the member's own
defaults, P 8 x G 16, the halfplane reward, and the bake-off's gmm2d budget of 300k
forward-equivalents (nfe.forward_rows + 2 nfe.backward_rows; the epochs follow from a 1-epoch
probe): the held-out mean halfplane score of the base and of the final checkpoint (`flowrl eval`,
ODE 40 steps, 16 samples per prompt, eval's fixed seeds), the gain per seed, and the budget at
which the training reward first averaged +0.2 over the base's (a 5-epoch running mean). Writes its
section of BENCHMARKS.md.

    python3 bench/bench_family.py [--seeds 1,2,3] [--only dance-grpo,mix-grpo] [--budget 300000]

--only measures the listed members and keeps the others' results of earlier invocations
(demo/bench_family/results.json, same base score) in the table.
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (invocation, GMM2D_BASES, base_preds, flowrl, fmt_ci, git_line, gmm2d_base, halfplane_score, loadavg,  # noqa: E402
                      logger, machine_line, median, metrics, write_section)

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
FAMILY = ["flow-grpo", "dance-grpo", "mix-grpo", "branch-grpo", "g2rpo", "tempflow-grpo", "chunk-grpo", "smart-grpo",
          "ddpo", "d3po", "spo"]
BASE = GMM2D_BASES["velocity"]
# the epsilon members' base (flowrl algos --json base_pred): the same pretraining, --pred epsilon
EPS_BASE = GMM2D_BASES["epsilon"]
PRED = {}  # algorithm -> its base's prediction
# prompts x samples per epoch: P 8 x G 16, except D3PO's pairs (2 samples per prompt, the same 128 samples)
SHAPE = {"d3po": (64, 2)}


def base_of(algo):
    return GMM2D_BASES[PRED[algo]]


LRS = [3e-4, 1e-3, 3e-3]  # the run default and two larger: the public clip ranges (1e-4) hold steps small
TUNE_SEED = 101
OUT = "demo/bench_family"
log = logger("bench_family")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_family")


def fe(m):
    return m["nfe.forward_rows"] + 2 * m["nfe.backward_rows"]


def score(ckpt):
    return halfplane_score(FLOWRL, ckpt, name="bench_family")


def train(algo, rundir, epochs, seed, lr=None):
    sh(["train", "--algo", algo, "--task", "gmm2d", "--base", base_of(algo), "--reward", "halfplane", "--out", rundir,
        "--epochs", epochs, "--seed", seed, "--prompts-per-epoch", SHAPE.get(algo, (8, 16))[0],
        "--group-size", SHAPE.get(algo, (8, 16))[1], "--eval-n", 0,
        "--checkpoint-every", 0, "--keep-checkpoints", 0, "--log-every", 100, "--backend", "opt", "--threads", 1,
        "--force"] + (["--lr", "%g" % lr] if lr else []), out=rundir + ".log")


def run(item):
    algo, seed, epochs, lr = item
    d = os.path.join(OUT, f"{algo}-lr{lr:g}-s{seed}")
    t0 = time.time()
    train(algo, d, epochs, seed, lr)
    wall = time.time() - t0
    ms = metrics(d)
    final = score(os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"))
    r0 = ms[0]["reward_mean"]
    cum, hit = 0.0, None
    for i, m in enumerate(ms):
        cum += fe(m)
        w = [x["reward_mean"] for x in ms[max(0, i - 4):i + 1]]
        if hit is None and i >= 4 and sum(w) / len(w) >= r0 + 0.2:
            hit = cum
    last5 = sum(m["reward_mean"] for m in ms[-5:]) / len(ms[-5:])
    return dict(algo=algo, seed=seed, lr=lr, epochs=epochs, final=final, wall=wall, fe=cum, hit=hit, r0=r0, last5=last5,
                epoch_s=median([m["seconds"] for m in ms[1:]]) if len(ms) > 1 else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="")
    ap.add_argument("--budget", type=int, default=300_000)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    PRED.update(base_preds(FLOWRL, name="bench_family"))
    algos = [x for x in FAMILY if x in PRED and (not a.only or x in a.only.split(","))]
    for pred in GMM2D_BASES:
        gmm2d_base(FLOWRL, pred, name="bench_family")
    os.makedirs(OUT, exist_ok=True)
    load0, t_start = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    base = score(BASE)
    eps_base = score(EPS_BASE)
    log(f"base halfplane score {base:.4f} (epsilon base {eps_base:.4f})")
    epochs = {}
    for algo in algos:  # a 1-epoch probe gives the epoch's forward-equivalents
        d = os.path.join(OUT, f"{algo}-probe")
        train(algo, d, 1, 1)
        epochs[algo] = max(1, a.budget // int(fe(metrics(d)[0])))
    # the learning rate: each member's best held-out score over LRS on a tuning seed of its own
    tune = [(algo, TUNE_SEED, epochs[algo], lr) for algo in algos for lr in LRS]
    log(f"{len(tune)} tuning runs")
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        tuned = list(ex.map(run, tune))
    best = {algo: max((r for r in tuned if r["algo"] == algo), key=lambda r: r["final"])["lr"] for algo in algos}
    items = [(algo, s, epochs[algo], best[algo]) for algo in algos for s in seeds]
    log(f"{len(items)} runs at the tuned lr: " + ", ".join(f"{k} {v:g}" for k, v in best.items()))
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        res = list(ex.map(run, items))
    for r in res:
        r["tune"] = {f"{t['lr']:g}": t["final"] for t in tuned if t["algo"] == r["algo"]}
    # the members measured by earlier invocations (--only) stay in the table
    prev = os.path.join(OUT, "results.json")
    if os.path.exists(prev):
        old = json.load(open(prev))
        if old.get("base") == base:
            res = [r for r in old["runs"] if r["algo"] not in algos] + res
    algos = [x for x in FAMILY if any(r["algo"] == x for r in res)]
    rows = ["| algorithm | lr (tuning scores) | epochs | held-out score (mean ± 95%) | held-out gain per seed | "
            "all seeds ≥ +0.2 | train reward: first epoch → last 5 | budget to +0.2 (train, median) | vs Flow-GRPO | "
            "epoch s (median) |", "|---|---|---|---|---|---|---|---|---|---|"]
    def med_hit(algo):
        h = sorted(r["hit"] for r in res if r["algo"] == algo and r["hit"] is not None)
        return median(h) if h else None
    fg_hit = med_hit("flow-grpo")
    for algo in algos:
        rs = [r for r in res if r["algo"] == algo]
        b0 = eps_base if PRED.get(algo) == "epsilon" else base
        gains = [r["final"] - b0 for r in rs]
        hits = sorted(r["hit"] for r in rs if r["hit"] is not None)
        tune = ", ".join(f"{k}: {v:.3f}" for k, v in rs[0].get("tune", {}).items())
        rows.append(f"| {algo} | {rs[0].get('lr', 0):g} ({tune}) | {rs[0]['epochs']} | "
                    f"{fmt_ci([r['final'] for r in rs], digits=3)} | " + ", ".join(f"{g:+.3f}" for g in gains) + " | "
                    + ("yes" if all(g >= 0.2 for g in gains) else "no") + " | "
                    + f"{fmt_ci([r['r0'] for r in rs], digits=3)} → {fmt_ci([r['last5'] for r in rs], digits=3)} | "
                    + (f"{median(hits) / 1e3:.0f}k ({len(hits)}/{len(rs)} seeds)" if hits else "never")
                    + (f" | {fg_hit / med_hit(algo):.2f}x" if fg_hit and med_hit(algo) else " | -")
                    + f" | {median([r['epoch_s'] for r in rs]):.3f} |")
        log(rows[-1])
    eps_members = [x for x in FAMILY if PRED.get(x) == "epsilon"]
    cmd = invocation("bench/bench_family.py")
    text = "\n".join([
        "<!-- bench_family begin (written by bench/bench_family.py; do not edit by hand) -->",
        "## The trajectory-GRPO family on gmm2d halfplane (issues 11, 12: DDPO, D3PO, SPO)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-family`) at {git_line()} on {machine_line()} "
        f"(load average {load0} before). Base: `{BASE}` (100 pretraining steps), held-out halfplane score "
        f"**{base:.3f}** (`flowrl eval --reward halfplane --n 16`, ODE 40 steps); the epsilon members' ({', '.join(eps_members)}) base `{EPS_BASE}` (the same "
        f"100 steps, `--pred epsilon`) **{eps_base:.3f}** (DDIM 40 steps, eta 0). Each member with its own defaults "
        f"(`flowrl train --algo NAME --help`) except the learning rate, tuned per member over {', '.join('%g' % x for x in LRS)} "
        f"on seed {TUNE_SEED} by the held-out score; P 8 x G 16 (D3PO: 64 pairs, P 64 x G 2), seeds {a.seeds}, a budget of {a.budget // 1000}k "
        "forward-equivalents (epochs = budget / the first epoch's nfe). The issues' bar: +0.2 over the base on each of "
        "3 seeds, read on the held-out score.", "",
        *rows, "",
        *([f"Only {a.only} ran in this invocation; the other rows are the earlier invocations' (`{OUT}/results.json`, "
           "the same base, protocol and seeds).", ""] if a.only else []),
        "Held-out: the last checkpoint's `flowrl eval` score (ODE 40 steps, eval's fixed prompts and seeds) and its "
        "gain over the base's. Train reward: the epochs' mean halfplane reward under each member's own training "
        "sampler (first epoch = the base under that sampler, noisy: 8 random prompts whose modes lie mostly on one "
        "side; last 5 = the mean of the last five epochs). Budget to +0.2: the forward-equivalents spent when the "
        "5-epoch running mean first stood 0.2 above the first epoch; vs Flow-GRPO: Flow-GRPO's median of that budget "
        "over the member's (> 1: fewer model evaluations to +0.2).",
        "<!-- bench_family end -->", ""])
    write_section("BENCHMARKS.md", "bench_family", text)
    json.dump(dict(base=base, runs=res), open(os.path.join(OUT, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
