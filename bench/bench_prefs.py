#!/usr/bin/env python3
"""make bench-prefs: the preference methods (issue 12) on gmm2d's halfplane reward, 3 seeds each.

From the under-trained gmm2d bases of bench_family (demo/gmm2d_base100.safetensors, velocity, and
demo/gmm2d_eps_base100.safetensors, epsilon; 100 pretraining steps each), `flowrl prefs make`
writes one preference file per base (PAIRS pairs labelled by halfplane, ties dropped). Every
method of METHODS trains for a fixed number of pairs (--pairs; epochs = pairs / the method's pairs
per epoch) with its own defaults except the learning rate, tuned over LRS on a seed of its own by
the held-out score; then 3 seeds at the tuned lr. Reported: the held-out mean halfplane score of
the base and of the final checkpoint (`flowrl eval`, 16 samples per prompt, eval's fixed seeds:
ODE 40 steps for a velocity model, DDIM eta 0 for an epsilon one), the gain per seed and its
mean ± 95% interval. Writes its section of BENCHMARKS.md.

    python3 bench/bench_prefs.py [--seeds 1,2,3] [--only diffusion-dpo] [--pairs 4096]

--only measures the listed methods and keeps the others' results of earlier invocations
(demo/bench_prefs/results.json, same base scores) in the table. A method is one row of METHODS.
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import flowrl, fmt_ci, git_line, loadavg, logger, machine_line, metrics, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
BASES = {"vel": "demo/gmm2d_base100.safetensors", "eps": "demo/gmm2d_eps_base100.safetensors"}
PRED = {"vel": "velocity", "eps": "epsilon"}
OUT = "demo/bench_prefs"
PAIRS_FILE = 512  # pairs per preference file
# One row per method: the algorithm, the base kind it trains ("vel" / "eps"), whether it reads the
# base's preference file (--prefs), its pairs per epoch under the options below, and extra options.
# Every method runs with P 8 x G 8 (the DPO defaults): a file epoch holds P*G/2 = 32 pairs; a
# Flow-DPO rollout epoch at most P = 8 (best vs worst of each distinct prompt).
METHODS = {
    "diffusion-dpo": dict(algo="diffusion-dpo", base="eps", prefs=True, pairs_per_epoch=32, opts=[]),
    "flow-dpo": dict(algo="flow-dpo", base="vel", prefs=True, pairs_per_epoch=32, opts=[]),
    "flow-dpo-online": dict(algo="flow-dpo", base="vel", prefs=False, pairs_per_epoch=8,
                            opts=["--reward", "halfplane", "--ref-update-step", 40]),
}
LRS = [1e-3, 3e-3, 1e-2]
TUNE_SEED = 101
log = logger("bench_prefs")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_prefs")


def score(ckpt):
    o = json.loads(sh(["eval", "--ckpt", ckpt, "--task", "gmm2d", "--n", 16, "--reward", "halfplane", "--json",
                       "--threads", 1, "--backend", "opt"]))["overall"]
    return o["mean_score"]


def prefs_path(kind):
    return os.path.join(OUT, f"prefs-{kind}.safetensors")


def run(item):
    name, seed, epochs, lr = item
    m = METHODS[name]
    d = os.path.join(OUT, f"{name}-lr{lr:g}-s{seed}")
    t0 = time.time()
    sh(["train", "--algo", m["algo"], "--task", "gmm2d", "--base", BASES[m["base"]], "--out", d, "--epochs", epochs,
        "--seed", seed, "--lr", "%g" % lr, "--eval-n", 0, "--checkpoint-every", 0, "--keep-checkpoints", 0,
        "--log-every", 100, "--backend", "opt", "--threads", 1, "--force"]
       + (["--prefs", prefs_path(m["base"])] if m["prefs"] else []) + m["opts"], out=d + ".log")
    wall = time.time() - t0
    ms = metrics(d)
    final = score(os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"))
    return dict(method=name, seed=seed, lr=lr, epochs=epochs, final=final, wall=wall,
                pairs=sum(x.get("pairs", 0) for x in ms), acc_last=ms[-1].get("implicit_acc"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="")
    ap.add_argument("--pairs", type=int, default=4096)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    listed = [l.split()[0] for l in sh(["algos"]).splitlines() if l.strip() and not l.startswith(" ")]
    names = [n for n, m in METHODS.items() if m["algo"] in listed and (not a.only or n in a.only.split(","))]
    os.makedirs(OUT, exist_ok=True)
    for kind, path in BASES.items():
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            log(f"pretraining {path}")
            sh(["pretrain", "--task", "gmm2d", "--out", path, "--pred", PRED[kind], "--backend", "opt", "--threads", 1,
                "--progress", "off", "--max-train-steps", 100, "--force"])
    load0, t_start = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    base = {kind: score(path) for kind, path in BASES.items()}
    log("base halfplane scores: " + ", ".join(f"{k} {v:.4f}" for k, v in base.items()))
    for kind in sorted({METHODS[n]["base"] for n in names if METHODS[n]["prefs"]}):
        sh(["prefs", "make", "--ckpt", BASES[kind], "--task", "gmm2d", "--pairs", PAIRS_FILE, "--reward", "halfplane",
            "--seed", 0, "--max-attempts", 100 * PAIRS_FILE, "--out", prefs_path(kind), "--progress", "off",
            "--threads", 1])
    epochs = {n: max(1, a.pairs // METHODS[n]["pairs_per_epoch"]) for n in names}
    tune = [(n, TUNE_SEED, epochs[n], lr) for n in names for lr in LRS]
    log(f"{len(tune)} tuning runs")
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        tuned = list(ex.map(run, tune))
    best = {n: max((r for r in tuned if r["method"] == n), key=lambda r: r["final"])["lr"] for n in names}
    items = [(n, s, epochs[n], best[n]) for n in names for s in seeds]
    log(f"{len(items)} runs at the tuned lr: " + ", ".join(f"{k} {v:g}" for k, v in best.items()))
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        res = list(ex.map(run, items))
    for r in res:
        r["tune"] = {f"{t['lr']:g}": t["final"] for t in tuned if t["method"] == r["method"]}
    prev = os.path.join(OUT, "results.json")
    if os.path.exists(prev):
        old = json.load(open(prev))
        if old.get("base") == base:
            res = [r for r in old["runs"] if r["method"] not in names] + res
    rows = ["| method | base (held-out) | lr (tuning scores) | epochs | pairs trained | held-out score (mean ± 95%) | "
            "gain per seed | gain (mean ± 95%) | all seeds ≥ +0.2 | run s (median) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in METHODS:
        rs = [r for r in res if r["method"] == n]
        if not rs:
            continue
        b0 = base[METHODS[n]["base"]]
        gains = [r["final"] - b0 for r in rs]
        tune_s = ", ".join(f"{k}: {v:.3f}" for k, v in rs[0].get("tune", {}).items())
        rows.append(f"| {n} | {METHODS[n]['base']} {b0:.3f} | {rs[0]['lr']:g} ({tune_s}) | {rs[0]['epochs']} | "
                    f"{sorted(r['pairs'] for r in rs)[len(rs) // 2]:.0f} | {fmt_ci([r['final'] for r in rs], digits=3)} | "
                    + ", ".join(f"{g:+.3f}" for g in gains) + f" | {fmt_ci(gains, digits=3)} | "
                    + ("yes" if all(g >= 0.2 for g in gains) else "no")
                    + f" | {sorted(r['wall'] for r in rs)[len(rs) // 2]:.1f} |")
        log(rows[-1])
    cmd = "python3 bench/bench_prefs.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "<!-- bench_prefs begin (written by bench/bench_prefs.py; do not edit by hand) -->",
        "## Preference methods on gmm2d halfplane (issue 12: Diffusion-DPO, Flow-DPO)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-prefs`) at {git_line()} on {machine_line()} "
        f"(load average {load0} before). Bases: `{BASES['vel']}` (velocity, held-out halfplane score "
        f"**{base['vel']:.3f}**, ODE 40 steps) and `{BASES['eps']}` (epsilon, **{base['eps']:.3f}**, DDIM 40 steps eta 0), "
        f"100 pretraining steps each. Preference files: `flowrl prefs make --pairs {PAIRS_FILE} --reward halfplane "
        f"--seed 0` from each base (ties dropped). Each method with its own defaults (`flowrl train --algo NAME --help`) "
        f"except the learning rate, tuned over {', '.join('%g' % x for x in LRS)} on seed {TUNE_SEED} by the held-out "
        f"score; {a.pairs} pairs per run (epochs = pairs / pairs per epoch; a rollout epoch of flow-dpo-online holds "
        f"at most P = 8 pairs, the column gives what it trained), seeds {a.seeds}. The issue's bar: +0.2 over the base "
        "on each of 3 seeds, on the held-out score (`flowrl eval --reward halfplane --n 16`).", "",
        *rows, "",
        *([f"Only {a.only} ran in this invocation; the other rows are the earlier invocations' (`{OUT}/results.json`)."
           , ""] if a.only else []),
        "Rows: diffusion-dpo and flow-dpo train offline from the preference file of their base; flow-dpo-online "
        "samples its pairs from the reference each epoch (best vs worst of G = 8 per prompt, SDE noise 0.7) and "
        "copies the learner into the reference every 40 optimiser steps (`--ref-update-step 40`, FDPO's online DPO).",
        "<!-- bench_prefs end -->", ""])
    write_section("BENCHMARKS.md", "bench_prefs", text)
    json.dump(dict(base=base, runs=res), open(os.path.join(OUT, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
