#!/usr/bin/env python3
"""Guided TB and the ssr policy on HyperGrid 4D H8 (issue 22 §8.4; spec more.md §8.4;
docs/algorithms/gfn-guided.md §5), 3 seeds: `flowrl train --algo gfn-guided --env hypergrid --ndim 4
--height 8 --r0 0.001` (4,096 cells, 16 mode cells) with the public code's settings (batch 16 online +
16 offline a round, sa 16 x 2 / ssr encoder and scorer 16 x 1, lr 1e-4, lr_Z 1e-2, epsilon 0.1,
w 0.5) for ROUNDS rounds, one thread, opt. Rows: sa / ssr x tb / guided-tb. Per row: the mode cells
found among the online samples, the exact L1 of P_T to R/Z before training (the untrained start) and
after, and the change, as mean ± 95% interval over the seeds; wall-clock seconds (under load).

Writes its section of BENCHMARKS.md.

    python3 bench/bench_gfn_guided.py [--seeds 1,2,3] [--rounds 1500] [--jobs 2]
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
GRID = ["--env", "hypergrid", "--ndim", 4, "--height", 8, "--r0", 0.001]
ROWS = [("sa", "tb"), ("sa", "guided-tb"), ("ssr", "tb"), ("ssr", "guided-tb")]
LINE = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): exact_l1 (\S+) log_z (\S+) modes_found (\d+)/(\d+) "
                  r"observed (\d+)")
log = logger("bench_gfn_guided")


def run(item):
    policy, loss, seed, rounds = item
    work = tempfile.mkdtemp(prefix="bench_gfn_guided.")
    t0 = time.time()
    out = flowrl(FLOWRL, ["train", "--algo", "gfn-guided", "--out", os.path.join(work, "a"), "--epochs", rounds,
                          "--seed", seed, "--threads", 1, "--backend", "opt", "--checkpoint-every", 0,
                          "--keep-checkpoints", 1, "--eval-every", rounds, "--policy", policy, "--loss", loss] + GRID,
                 name="bench_gfn_guided")
    wall = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)
    ev = {}
    for l in out.splitlines():
        m = LINE.match(l.strip())
        if m:
            ev[m.group(1)] = dict(l1=float(m.group(3)), log_z=float(m.group(4)), modes=int(m.group(5)),
                                  n_modes=int(m.group(6)), observed=int(m.group(7)))
    if "before" not in ev or "after" not in ev:
        raise SystemExit(f"bench_gfn_guided: no before/after evaluation from {policy} {loss} seed {seed}")
    a, b = ev["after"], ev["before"]
    log(f"{policy} {loss} seed {seed}: modes {a['modes']}/{a['n_modes']}, exact L1 {b['l1']:.4f} -> {a['l1']:.4f}, "
        f"observed {a['observed']}, {wall:.1f} s")
    return dict(policy=policy, loss=loss, seed=seed, before=b, after=a, wall=wall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=1500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print the section only")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    items = [(p, l, s, args.rounds) for (p, l) in ROWS for s in seeds]
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        res = list(ex.map(run, items))
    lines = [
        "<!-- bench_gfn_guided begin (written by bench/bench_gfn_guided.py; do not edit by hand) -->",
        "## Guided TB and the ssr policy on HyperGrid 4D H8 (bench/bench_gfn_guided.py)", "",
        f"`python3 bench/bench_gfn_guided.py --seeds {args.seeds} --rounds {args.rounds} --jobs {args.jobs}`: "
        f"`flowrl train --algo gfn-guided --env hypergrid --ndim 4 --height 8 --r0 0.001 --epochs {args.rounds}` "
        "(one round = 16 online + 16 offline trajectories), the public code's settings, seeds " + args.seeds +
        "; mean ± 95% interval over the seeds. Modes: distinct mode cells (of 16) among the online samples; L1: the "
        "exact L1 of P_T to R/Z (2 at worst) before training (the untrained start) and after. Wall-clock under load.", "",
        "| policy | loss | modes found | exact L1 start | exact L1 after | change | s / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for (p, l) in ROWS:
        rs = [r for r in res if r["policy"] == p and r["loss"] == l]
        lines.append(f"| {p} | {l} | {fmt_ci([r['after']['modes'] for r in rs])} | "
                     f"{fmt_ci([r['before']['l1'] for r in rs], digits=4)} | {fmt_ci([r['after']['l1'] for r in rs], digits=4)} | "
                     f"{fmt_ci([r['after']['l1'] - r['before']['l1'] for r in rs], digits=4)} | "
                     f"{sum(r['wall'] for r in rs) / len(rs):.0f} |")
    lines += ["", f"Commit {git_line()}; {machine_line()}; load average {loadavg()} at the end.", "",
              "<!-- bench_gfn_guided end -->", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("BENCHMARKS.md", "bench_gfn_guided", text)


if __name__ == "__main__":
    main()
