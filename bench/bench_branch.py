#!/usr/bin/env python3
"""make bench-branch: BranchGRPO's iteration time against DanceGRPO at equal leaves (issue 11;
docs/algorithms/flow-grpo.md §6). BranchGRPO's paper claims -55% iteration time from computing the
shared prefixes of its sampling tree once.

Both runs: gmm2d, a small gmm2d base (its weights do not matter for timing), P prompts x 16 samples
per prompt (BranchGRPO: the 16 leaves of its tree, splits 0,3,6,9 of width 2), T 20 steps of the
dance sampler (eta 0.3, s(linspace) grid, shift 3), backend opt, 1 thread; each algorithm at its
defaults otherwise (DanceGRPO trains int(0.6 x 19) = 11 random steps per sample, BranchGRPO every
tree edge once). The baseline runs in the same invocation. Per epoch: wall time (median of epochs
2..E, the first is warm-up) and the model evaluations from the run's own counters (metrics.jsonl
nfe.forward_rows: rollout + training forwards; nfe.backward_rows: training), which are a function
of the configuration, not of the machine.

Writes its section of BENCHMARKS.md between the bench_branch markers.
Environment (defaults): BUILD (build), OUT (BENCHMARKS.md), P (8), EPOCHS (6)."""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import flowrl, git_line, loadavg, logger, machine_line, metrics, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWRL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "flowrl")
OUT = os.environ.get("OUT", os.path.join(ROOT, "BENCHMARKS.md"))
P = int(os.environ.get("P", "8"))
EPOCHS = int(os.environ.get("EPOCHS", "11"))
G, T = 16, 20
CLAIM = -0.55  # BranchGRPO paper: iteration time vs DanceGRPO
log = logger("bench_branch")
# (label, algorithm, extra flags): the baseline first
RUNS = [("dance-grpo", "dance-grpo", []), ("branch-grpo", "branch-grpo", []),
        ("branch-grpo, width pruning 1", "branch-grpo", ["--width-pruning-mode", "1"])]


def med(rows, key):
    return statistics.median(r[key] for r in rows[1:])


def main():
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_branch: {FLOWRL} not found: run make first")
    tmp = tempfile.mkdtemp(prefix="bench_branch.")
    load0, t0 = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    base = os.path.join(tmp, "base.safetensors")
    flowrl(FLOWRL, ["pretrain", "--task", "gmm2d", "--out", base, "--max-train-steps", "20"], name="bench_branch")
    common = ["--base", base, "--task", "gmm2d", "--prompts-per-epoch", P, "--group-size", G, "--num-steps", T,
              "--sampler", "dance", "--noise-level", "0.3", "--grid", "linear", "--shift", "3", "--epochs", EPOCHS,
              "--eval-n", "0", "--backend", "opt", "--threads", "1"]
    res = {}
    for label, algo, extra in RUNS:
        d = os.path.join(tmp, label.replace(" ", "_"))
        log(label)
        flowrl(FLOWRL, ["train", "--algo", algo] + common + extra + ["--out", d], name="bench_branch")
        res[label] = metrics(d)
    load1 = loadavg()
    subprocess.run(["rm", "-rf", tmp])

    b = res["dance-grpo"]
    sec_b, fwd_b, bwd_b = med(b, "seconds"), med(b, "nfe.forward_rows"), med(b, "nfe.backward_rows")
    L = ["<!-- bench_branch begin: written by bench/bench_branch.py (make bench-branch), do not edit by hand -->",
         "## BranchGRPO against DanceGRPO at equal leaves", "",
         f"Measured {t0} by `bench/bench_branch.py` at {git_line()} on {machine_line()} (load average {load0} before, "
         f"{load1} after). Command (ALGO = dance-grpo, then branch-grpo, in the same invocation): `flowrl train --algo "
         f"ALGO {' '.join(str(a) for a in common[2:])} --base BASE` (a 20-step gmm2d base; the third row adds "
         "`--width-pruning-mode 1`: each leaf trains 5 of its 10 steps after the last split). "
         f"{P} prompts x {G} samples (BranchGRPO: one tree of {G} leaves per prompt, splits 0,3,6,9 of width 2, split "
         f"noise x4), T {T}, dance sampler eta 0.3; the rest each algorithm's defaults (DanceGRPO: 11 random steps of "
         f"19 per sample, clip 1e-4; BranchGRPO: every tree edge once, clip 1e-3). Wall time: median of epochs "
         f"2-{EPOCHS}. Forward rows = the rollout's model rows + the training forwards (nfe.forward_rows); backward "
         "rows = the training's (nfe.backward_rows): these two are exact, the wall times depend on the machine's load.",
         "", "| algorithm | epoch (wall) | vs dance-grpo | forward rows | of which rollout | backward rows | "
         "transitions trained |", "|---|---|---|---|---|---|---|"]
    for algo, rows in res.items():
        sec, fwd, bwd = med(rows, "seconds"), med(rows, "nfe.forward_rows"), med(rows, "nfe.backward_rows")
        roll = fwd - bwd  # each trained transition is one forward and one backward row (no KL reference)
        L.append(f"| {algo} | {sec * 1e3:.1f} ms | {(sec / sec_b - 1) * 100:+.0f}% | {fwd:.0f} ({(fwd / fwd_b - 1) * 100:+.0f}%) "
                 f"| {roll:.0f} | {bwd:.0f} ({(bwd / bwd_b - 1) * 100:+.0f}%) | {bwd:.0f} |")
    rb = res["branch-grpo"]
    roll_b = med(b, "nfe.forward_rows") - bwd_b
    roll_t = med(rb, "nfe.forward_rows") - med(rb, "nfe.backward_rows")
    L += ["", f"The tree's rollout evaluates {roll_t:.0f} model rows per epoch where {P * G} independent samples take "
          f"{roll_b:.0f} ({(roll_t / roll_b - 1) * 100:+.0f}%): each node's shared prefix once. But it trains every "
          f"edge of the tree ({med(rb, 'nfe.backward_rows') / P:.0f} transitions per tree, against DanceGRPO's "
          f"{G} x 11 = {G * 11} per prompt), so its epoch is "
          f"{(med(rb, 'seconds') / sec_b - 1) * 100:+.0f}% against DanceGRPO's here; the paper's claim is "
          f"{CLAIM * 100:+.0f}% iteration time (Flux, 8 GPUs), not reproduced on this tiny model; the NFE columns are "
          "what carries over: the rollout saving grows with the share of steps before the splits, the training cost "
          "with the edges trained (width pruning, third row).", "",
          "<!-- bench_branch end -->", ""]
    write_section(OUT, "bench_branch", "\n".join(L))
    log(f"wrote the bench_branch section of {OUT}")


if __name__ == "__main__":
    main()
