#!/usr/bin/env python3
"""make bench-prefs: the offline preference methods (issue 12: Diffusion-DPO, Flow-DPO,
Diffusion-DRO) on gmm2d's halfplane reward, 3 seeds each.

From the under-trained gmm2d bases (benchlib.GMM2D_BASES: velocity and epsilon, 100 pretraining
steps each; a method trains the base its algorithm's base_pred names, `flowrl algos --json`),
`flowrl prefs make` writes the preference files (PAIRS pairs labelled by halfplane from a shared
x_T, ties dropped; one file per base and size). Every method of METHODS trains with its own
defaults except the learning rate for a fixed budget (--pairs, epochs = pairs / the method's pairs
per epoch; or the method's own fixed epochs), the learning rate tuned over the method's LRS on a
seed of its own by the held-out score (or taken from another row, or fixed); then 3 seeds at that
lr. Reported: the held-out mean halfplane score of the base and of the final checkpoint
(benchlib.halfplane_score), the gain per seed and its mean ± 95% interval, and for the methods that
name diagnostic metrics their means over the last 20 epochs. Writes its section of BENCHMARKS.md.

    python3 bench/bench_prefs.py [--seeds 1,2,3] [--only diffusion-dpo] [--pairs 4096]
    python3 bench/bench_prefs.py --report    # the section again from demo/bench_prefs/results.json

--only measures the listed methods and keeps the others' results of earlier invocations
(demo/bench_prefs/results.json, same base scores) in the table; every row records the invocation
that measured it, and the section names each. A method is one row of METHODS.
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (invocation, GMM2D_BASES, base_preds, flowrl, fmt_ci, git_line, gmm2d_base, halfplane_score, loadavg,  # noqa: E402
                      logger, machine_line, make_prefs, median, metrics, write_section)

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
OUT = "demo/bench_prefs"
PAIRS_FILE = 512  # pairs per preference file, unless a method names its own
LRS = [1e-3, 3e-3, 1e-2]
TUNE_SEED = 101
DRO_PUBLIC_LR = 1e-4  # basiclab/DiffusionDRO train.py --learning_rate
# One row per method: the algorithm; whether it reads its base's preference file (--prefs) and of how
# many pairs (prefs_pairs, default PAIRS_FILE); its budget: pairs_per_epoch under the options below
# (epochs = --pairs / pairs_per_epoch) or a fixed number of epochs; the learning rates it is tuned
# over (lrs, default LRS; one value: no tuning), or lr_of: another row's tuned lr; extra options; diag:
# metric keys averaged over the last 20 epochs for the second table.
# The DPO methods run with P 8 x G 8 (their defaults): a file epoch holds P*G/2 = 32 pairs; a Flow-DPO
# rollout epoch at most P = 8 (best vs worst of each distinct prompt). Diffusion-DRO runs its public
# defaults (16 micro-batches of 4 buffer and 4 expert rows, one optimiser step per epoch) for 800
# epochs, on the winners of a 256-pair file; its lr over the public 1e-4 and two larger.
DRO_DIAG = ["reward_mean", "active", "diff", "e_exp", "e_pol"]
DRO = dict(algo="diffusion-dro", prefs=True, prefs_pairs=256, epochs=800, diag=DRO_DIAG)
METHODS = {
    "diffusion-dpo": dict(algo="diffusion-dpo", prefs=True, pairs_per_epoch=32, opts=[]),
    "flow-dpo": dict(algo="flow-dpo", prefs=True, pairs_per_epoch=32, opts=[]),
    "flow-dpo-online": dict(algo="flow-dpo", prefs=False, pairs_per_epoch=8,
                            opts=["--reward", "halfplane", "--ref-update-step", 40]),
    "diffusion-dro": dict(DRO, lrs=[DRO_PUBLIC_LR, 3e-3, 1e-2], opts=["--reward", "halfplane"]),
    "diffusion-dro-public-lr": dict(DRO, lrs=[DRO_PUBLIC_LR], opts=["--reward", "halfplane"]),
    # the lagged sampler refreshed every 16 optimiser steps (256 micro-batches) instead of the public 16
    # micro-batches (= every optimiser step with gradient_accumulation_steps 16)
    "diffusion-dro-lag256": dict(DRO, lr_of="diffusion-dro", opts=["--reward", "halfplane", "--lag-steps", 256]),
}
log = logger("bench_prefs")
PRED = {}  # algorithm -> its base's prediction (flowrl algos --json)


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_prefs")


def pred_of(name):
    return PRED[METHODS[name]["algo"]]


def prefs_path(pred, pairs):
    return os.path.join(OUT, f"prefs-{pred}" + ("" if pairs == PAIRS_FILE else f"-{pairs}") + ".safetensors")


def method_prefs(name):
    m = METHODS[name]
    return prefs_path(pred_of(name), m.get("prefs_pairs", PAIRS_FILE)) if m["prefs"] else None


def run(item):
    name, seed, epochs, lr = item
    m = METHODS[name]
    d = os.path.join(OUT, f"{name}-lr{lr:g}-s{seed}")
    t0 = time.time()
    sh(["train", "--algo", m["algo"], "--task", "gmm2d", "--base", GMM2D_BASES[pred_of(name)], "--out", d, "--epochs",
        epochs, "--seed", seed, "--lr", "%g" % lr, "--eval-n", 0, "--checkpoint-every", 0, "--keep-checkpoints", 0,
        "--log-every", 100, "--backend", "opt", "--threads", 1, "--force"]
       + (["--prefs", method_prefs(name)] if m["prefs"] else []) + m["opts"], out=d + ".log")
    wall = time.time() - t0
    ms = metrics(d)
    final = halfplane_score(FLOWRL, os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"), name="bench_prefs")
    r = dict(method=name, seed=seed, lr=lr, epochs=epochs, final=final, wall=wall,
             pairs=sum(x.get("pairs", 0) for x in ms), acc_last=ms[-1].get("implicit_acc"))
    if m.get("diag"):
        last = ms[-20:]
        r.update(r0=ms[0]["reward_mean"], nfe=ms[-1]["nfe.total"],
                 diag={k: sum(x[k] for x in last) / len(last) for k in m["diag"]})
    return r


def measure(a, names, base, meas):
    """Tunes and runs the methods NAMES; returns their runs, each marked with MEAS."""
    os.makedirs(OUT, exist_ok=True)
    for path in sorted({method_prefs(n) for n in names if METHODS[n]["prefs"]}):
        n = next(n for n in names if method_prefs(n) == path)
        pairs = METHODS[n].get("prefs_pairs", PAIRS_FILE)
        make_prefs(FLOWRL, GMM2D_BASES[pred_of(n)], "gmm2d", pairs, "halfplane", path, name="bench_prefs")
    epochs = {n: METHODS[n].get("epochs") or max(1, a.pairs // METHODS[n]["pairs_per_epoch"]) for n in names}
    tuned_names = [n for n in names if len(METHODS[n].get("lrs", LRS)) > 1 and "lr_of" not in METHODS[n]]
    tune = [(n, TUNE_SEED, epochs[n], lr) for n in tuned_names for lr in METHODS[n].get("lrs", LRS)]
    log(f"{len(tune)} tuning runs")
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        tuned = list(ex.map(run, tune))
    best = {n: max((r for r in tuned if r["method"] == n), key=lambda r: r["final"])["lr"] for n in tuned_names}
    for n in names:
        m = METHODS[n]
        if n not in best:
            if "lr_of" in m and m["lr_of"] not in best:
                raise SystemExit(f"bench_prefs: {n} takes the lr of {m['lr_of']}: measure both (--only)")
            best[n] = best[m["lr_of"]] if "lr_of" in m else m.get("lrs", LRS)[0]
    items = [(n, s, epochs[n], best[n]) for n in names for s in a.seed_list]
    log(f"{len(items)} runs at the tuned lr: " + ", ".join(f"{k} {v:g}" for k, v in best.items()))
    with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        res = list(ex.map(run, items))
    for r in res:
        r["tune"] = {f"{t['lr']:g}": t["final"] for t in tuned if t["method"] == r["method"]}
        r["measured"] = meas
    return res


def lr_cell(n, rs):
    m, lr = METHODS[n], rs[0]["lr"]
    if "lr_of" in m:
        return f"{lr:g} ({m['lr_of']}'s)"
    if rs[0].get("tune"):
        return f"{lr:g} (" + ", ".join(f"{k}: {v:.3f}" for k, v in rs[0]["tune"].items()) + ")"
    return f"{lr:g} (fixed)"


def section(res, base, a):
    rows = ["| method | base (held-out) | lr (tuning scores) | epochs | pairs trained | held-out score (mean ± 95%) | "
            "gain per seed | gain (mean ± 95%) | all seeds ≥ +0.2 | run s (median) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    diag = ["| method | buffer reward: first epoch → last 20 | hinge active (last 20) | diff (last 20) | "
            "e_exp / e_pol (last 20) | model evals |", "|---|---|---|---|---|---|"]
    names = [n for n in METHODS if any(r["method"] == n for r in res)]
    for n in names:
        rs = [r for r in res if r["method"] == n]
        b0 = base[pred_of(n)]
        gains = [r["final"] - b0 for r in rs]
        pairs = median([r["pairs"] for r in rs])
        rows.append(f"| {n} | {pred_of(n)} {b0:.3f} | {lr_cell(n, rs)} | {rs[0]['epochs']} | "
                    + (f"{pairs:.0f}" if pairs else "-") + f" | {fmt_ci([r['final'] for r in rs], digits=3)} | "
                    + ", ".join(f"{g:+.3f}" for g in gains) + f" | {fmt_ci(gains, digits=3)} | "
                    + ("yes" if all(g >= 0.2 for g in gains) else "no") + f" | {median([r['wall'] for r in rs]):.1f} |")
        log(rows[-1])
        if METHODS[n].get("diag"):
            dg = lambda k: [r["diag"][k] for r in rs]  # noqa: E731
            diag.append(f"| {n} | {fmt_ci([r['r0'] for r in rs], digits=3)} → {fmt_ci(dg('reward_mean'), digits=3)} | "
                        f"{fmt_ci(dg('active'), digits=2)} | {fmt_ci(dg('diff'), digits=4)} | "
                        f"{sum(dg('e_exp')) / len(rs):.3f} / {sum(dg('e_pol')) / len(rs):.3f} | "
                        f"{rs[0]['nfe'] / 1e6:.2f}M |")
    # each invocation that measured rows, with the rows it measured
    meas = []
    for n in names:
        mk = json.dumps([r.get("measured") for r in res if r["method"] == n][0], sort_keys=True)
        if not meas or meas[-1][0] != mk:
            meas.append((mk, []))
        meas[-1][1].append(n)
    lines = []
    for mk, ns in meas:
        m = json.loads(mk)
        if not m:  # a results.json from before the rows recorded their invocation
            lines.append(f"- {', '.join(ns)}: measured by an earlier invocation that did not record itself.")
            continue
        lines.append(f"- {', '.join(ns)}: measured {m['time']} by `{m['cmd']}` (`{m['make']}`) at {m['git']} on {m['machine']} "
                     f"(load average {m['load']} before); seeds {m['seeds']}" + (m.get("note") or "") + ".")
    dro = [n for n in names if METHODS[n]["algo"] == "diffusion-dro"]
    return "\n".join([
        "<!-- bench_prefs begin (written by bench/bench_prefs.py; do not edit by hand) -->",
        "## Preference methods on gmm2d halfplane (issue 12: Diffusion-DPO, Flow-DPO, Diffusion-DRO)", "",
        f"Bases: `{GMM2D_BASES['velocity']}` (velocity, held-out halfplane score **{base['velocity']:.3f}**, ODE 40 "
        f"steps) and `{GMM2D_BASES['epsilon']}` (epsilon, **{base['epsilon']:.3f}**, DDIM 40 steps eta 0), 100 "
        "pretraining steps each; each method trains the base of its algorithm (`flowrl algos --json`). Preference "
        f"files: `flowrl prefs make --pairs N --reward halfplane --seed 0` from each base ({PAIRS_FILE} pairs; "
        "Diffusion-DRO's 256; DDIM eta 1 on the epsilon base, ties dropped: every winner scores 1). Each method with "
        "its own defaults (`flowrl train --algo NAME --help`) except the learning rate, tuned on seed "
        f"{TUNE_SEED} by the held-out score (the column's scores); the DPO methods over "
        f"{', '.join('%g' % x for x in LRS)} for {a.pairs} pairs per run (epochs = pairs / pairs per epoch; a rollout "
        "epoch of flow-dpo-online holds at most P = 8 pairs, the column gives what it trained). The issue's bar: +0.2 "
        "over the base on each of 3 seeds, on the held-out score (`flowrl eval --reward halfplane --n 16`).", "",
        *lines, "",
        *rows, "",
        "Rows: diffusion-dpo and flow-dpo train offline from the preference file of their base; flow-dpo-online "
        "samples its pairs from the reference each epoch (best vs worst of G = 8 per prompt, SDE noise 0.7) and "
        "copies the learner into the reference every 40 optimiser steps (`--ref-update-step 40`, FDPO's online DPO).",
        *(["",
           "Diffusion-DRO takes the winners of its file as expert data against a replay buffer of its own lagged "
           "samples, with its public defaults (margin 1e-3, buffer 4, lag 16 micro-batches, prompt drop 0.2, 16 "
           "micro-batches of 4 buffer rows and 4 expert rows per optimiser step; 4 new trajectories of 20 DDIM steps "
           f"per micro-batch) for {DRO['epochs']} epochs of one optimiser step each: diffusion-dro tuned over the public 1e-4 and "
           "two larger, diffusion-dro-public-lr at the public 1e-4, diffusion-dro-lag256 at diffusion-dro's lr with "
           "the lagged sampler refreshed every 16 optimiser steps (`--lag-steps 256`) instead of every one. Its "
           "training metrics:", "",
           *diag, "",
           "Buffer reward: the halfplane reward of the trajectories the lagged sampler adds to the buffer (the "
           "training curve; nothing in the loss reads it). Hinge active: the share of rows with diff + margin > 0 (1 "
           "at theta = ref). diff: (e_theta^exp - e_ref^exp) - (e_theta^pol - e_ref^pol), negative when the policy "
           "denoises the expert data better than its own samples, relative to the base. e_exp / e_pol: the policy's "
           "mean denoising errors on the expert and on the buffer rows. With the public lag (the copy after every "
           "optimiser step) the buffer's eps_hat is the policy's own output at the same input, so e_pol is exactly 0 "
           "and the policy half has no gradient: the loss is hinge-gated denoising of the expert data "
           "(docs/algorithms/dro.md §9). Model evals: nfe.total of a run (forward + 2 backward rows)."] if dro else []),
        "<!-- bench_prefs end -->", ""])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="")
    ap.add_argument("--pairs", type=int, default=4096)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report", action="store_true", help="rewrite the section from results.json, measuring nothing")
    a = ap.parse_args()
    a.seed_list = [int(s) for s in a.seeds.split(",")]
    PRED.update(base_preds(FLOWRL, name="bench_prefs"))
    prev = os.path.join(OUT, "results.json")
    old = json.load(open(prev)) if os.path.exists(prev) else None
    if a.report:
        if not old:
            raise SystemExit(f"bench_prefs: --report: no {prev}")
        a.pairs = old.get("pairs", a.pairs)
        write_section("BENCHMARKS.md", "bench_prefs", section(old["runs"], old["base"], a))
        return
    names = [n for n, m in METHODS.items() if m["algo"] in PRED and (not a.only or n in a.only.split(","))]
    base = {pred: halfplane_score(FLOWRL, gmm2d_base(FLOWRL, pred, name="bench_prefs"), name="bench_prefs")
            for pred in GMM2D_BASES}
    log("base halfplane scores: " + ", ".join(f"{k} {v:.4f}" for k, v in base.items()))
    meas = dict(time=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), git=git_line(), machine=machine_line(),
                load=loadavg(), seeds=a.seeds,
                cmd=invocation("bench/bench_prefs.py"), make="make bench-prefs")
    res = measure(a, names, base, meas)
    if old and old.get("base") == base:
        res = [r for r in old["runs"] if r["method"] not in names] + res
    write_section("BENCHMARKS.md", "bench_prefs", section(res, base, a))
    json.dump(dict(base=base, pairs=a.pairs, runs=res), open(prev, "w"), indent=1)


if __name__ == "__main__":
    main()
