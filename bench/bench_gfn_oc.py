#!/usr/bin/env python3
"""make bench-gfn-oc: the outcome-conditioned GFlowNet baseline (issue 22 §8.1; spec more.md §8.1;
docs/algorithms/gfn-oc.md §5), 3 seeds, on HyperGrid D 2 H 8 (64 cells, OriginalReward, log Z =
3.109061), one thread of opt each run.

  Pre-training: gfn-oc (goal-conditioned DB, R(x | y) = 1[x = y], log floor -10, hindsight
  relabelling 0.5), hidden 256 x 2, batch 64, PRE iterations: the exact goal-reaching rate
  mean_y P_T(y | y) before (the untrained start; a policy that ignores y scores exactly 1/64) and after.
  Fine-tuning at equal trajectories (batch 16, FT iterations, evaluated every 25): gfn-oc-ft from the
  pre-trained checkpoint (outcome predictor q and log Z, lr 1e-2) against training from scratch:
  gfn-oc-ft from the initial conditional network (the same sampler, no pre-training), and gfn-db /
  gfn-tb with the same 256 x 2 trunk at torchgfn's defaults (lr 1e-3, lr_Z 0.1). The metric is the
  exact L1 of the sampler's terminal distribution to R/Z, and the log Z error. Pre-training's
  trajectories are not counted in the fine-tuning budget (they never query R).

Writes its section of BENCHMARKS.md.

    python3 bench/bench_gfn_oc.py [--seeds 1,2,3] [--pre 1500] [--ft 200] [--jobs 2]
"""
import argparse
import concurrent.futures as cf
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import fmt_ci, flowrl, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
GRID = ["--env", "hypergrid", "--ndim", 2, "--height", 8]
COMMON = ["--threads", 1, "--backend", "opt", "--keep-checkpoints", 1]
FT_BATCH = 16
EVAL_EVERY = 25
PRE_LINE = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) goal_rate (\S+) cond_l1 (\S+)")
FT_LINE = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) exact_l1 (\S+) (?:log_z \S+ )?log_z_err (\S+)")
# fine-tuning rows: (algorithm, options, pre-trained?)
ROWS = {
    "oc-ft (pre-trained)": ("gfn-oc-ft", ["--lr", 0.01], True),
    "oc-ft (scratch conditional)": ("gfn-oc-ft", ["--lr", 0.01, "--pretrained", ""], False),
    "db (scratch)": ("gfn-db", [], False),
    "tb (scratch)": ("gfn-tb", [], False),
}
log = logger("bench_gfn_oc")


def pretrain(item):
    seed, iters, work = item
    out_dir = os.path.join(work, f"pre{seed}")
    t0 = time.time()
    out = flowrl(FLOWRL, ["train", "--algo", "gfn-oc", "--out", out_dir, "--epochs", iters, "--seed", seed, "--batch-size", 64,
                          "--checkpoint-every", iters, "--eval-every", iters // 4] + COMMON + GRID, name="bench_gfn_oc")
    curve = [(int(m.group(3)), float(m.group(4)), float(m.group(5))) for m in map(PRE_LINE.match, map(str.strip, out.splitlines())) if m]
    ckpt = os.path.join(out_dir, "checkpoints", f"step-{iters}.safetensors")
    if not curve or not os.path.exists(ckpt):
        raise SystemExit(f"bench_gfn_oc: pre-training seed {seed} left no evaluation or no {ckpt}")
    log(f"pre-train seed {seed}: goal rate {curve[0][1]:.4f} -> {curve[-1][1]:.4f}, {time.time() - t0:.1f} s")
    return dict(seed=seed, curve=curve, ckpt=ckpt, wall=time.time() - t0)


def finetune(item):
    row, seed, iters, ckpt, work = item
    algo, extra, pre = ROWS[row]
    d = tempfile.mkdtemp(prefix="ft.", dir=work)
    args = ["train", "--algo", algo, "--out", os.path.join(d, "a"), "--epochs", iters, "--seed", seed, "--batch-size", FT_BATCH,
            "--checkpoint-every", 0, "--eval-every", EVAL_EVERY] + COMMON + GRID + extra
    if pre:
        args += ["--pretrained", ckpt]
    out = flowrl(FLOWRL, args, name="bench_gfn_oc")
    shutil.rmtree(d, ignore_errors=True)
    curve = {int(m.group(3)): (float(m.group(4)), float(m.group(5)))
             for m in map(FT_LINE.match, map(str.strip, out.splitlines())) if m}
    if not curve:
        raise SystemExit(f"bench_gfn_oc: no evaluation line from {row} seed {seed}")
    last = max(curve)
    log(f"{row} seed {seed}: exact L1 {curve[last][0]:.4f}, log Z err {curve[last][1]:.4f} at {last} trajectories")
    return dict(row=row, seed=seed, curve=curve)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--pre", type=int, default=1500)
    ap.add_argument("--ft", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    work = tempfile.mkdtemp(prefix="bench_gfn_oc.")
    t0 = time.time()
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        pre = {r["seed"]: r for r in ex.map(pretrain, [(s, a.pre, work) for s in seeds])}
        items = [(row, s, a.ft, pre[s]["ckpt"], work) for row in ROWS for s in seeds]
        fts = list(ex.map(finetune, items))
    shutil.rmtree(work, ignore_errors=True)
    budgets = sorted({FT_BATCH * e for e in (0, EVAL_EVERY, 2 * EVAL_EVERY, 4 * EVAL_EVERY, a.ft) if e <= a.ft})
    cmd = f"python3 bench/bench_gfn_oc.py --seeds {a.seeds} --pre {a.pre} --ft {a.ft} --jobs {a.jobs}"
    lines = ["<!-- bench_gfn_oc begin (written by bench/bench_gfn_oc.py) -->",
             "## Outcome-conditioned GFlowNets on HyperGrid 2D H8 (issue 22 §8.1)", "",
             f"`{cmd}` — {git_line()}; {machine_line()}; load {loadavg()} (wall-clock under load); "
             f"{time.time() - t0:.0f} s in all. docs/algorithms/gfn-oc.md §5; the paper's losses are unverified, this is "
             "the spec's goal-reaching DB baseline.", "",
             f"**Pre-training** (gfn-oc, batch 64, {a.pre} iterations, 256 x 2): exact goal-reaching rate mean_y P_T(y | y), "
             f"mean and 95% interval over seeds {a.seeds}:", "",
             "| | untrained start | after pre-training | conditional L1 after |", "|---|---|---|---|",
             "| goal rate | %s | %s | %s |" % (fmt_ci([pre[s]["curve"][0][1] for s in seeds], digits=4),
                                             fmt_ci([pre[s]["curve"][-1][1] for s in seeds], digits=4),
                                             fmt_ci([pre[s]["curve"][-1][2] for s in seeds], digits=4)), "",
             f"**Fine-tuning to OriginalReward** (log Z = 3.109061) at equal trajectories (batch {FT_BATCH}): exact L1 of the "
             "sampler to R/Z (log Z error), mean and 95% interval:", "",
             "| row | " + " | ".join(f"{b} trajectories" if b else "start" for b in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for row in ROWS:
        rs = [r for r in fts if r["row"] == row]
        cells = []
        for b in budgets:
            l1 = [r["curve"][b][0] for r in rs if b in r["curve"]]
            ze = [r["curve"][b][1] for r in rs if b in r["curve"]]
            cells.append(f"{fmt_ci(l1, digits=3)} ({fmt_ci(ze, digits=3)})" if l1 else "-")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "<!-- bench_gfn_oc end -->", ""]
    text = "\n".join(lines)
    print(text)
    write_section("BENCHMARKS.md", "bench_gfn_oc", text)


if __name__ == "__main__":
    main()
