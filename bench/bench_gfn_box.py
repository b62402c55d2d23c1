#!/usr/bin/env python3
"""make bench-gfn-box: the Box GFlowNet (docs/algorithms/gfn-box.md), TB and ZVar, 3 seeds.

`flowrl train --algo gfn-box --env box` at torchgfn's train_box.py configuration (delta 0.25,
batch 128, hidden 128 x 4, 2 Beta components, 4 at s0, concentrations [0.1, 5.1], learned P_B,
Adam lr 1e-3, lr_Z 1e-3) except the budget (--iterations, default 2000 = 256,000 trajectories;
train_box.py trains 3e6) and what docs/algorithms/gfn-box.md §6 lists. Reported per row: the L1
and JSD of a 10 x 10 histogram of 10,000 terminal states against the exact R/Z of the cells,
train_box.py's KDE JSD at the end (exponential kernel, bandwidth 0.1, 10,000 samples each side,
100 x 100 grid), the log Z error (TB), each per seed and as mean with a 95% interval, the L1 at every
evaluation, and the seconds of a run (one thread). Writes its section of BENCHMARKS.md.

    python3 bench/bench_gfn_box.py [--seeds 1,2,3] [--iterations 2000] [--jobs 2] [--rows tb,zvar]
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
from benchlib import invocation, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
ROWS = {"tb": ["--loss", "tb"], "zvar": ["--loss", "zvar"], "tb-uniform-pb": ["--loss", "tb", "--uniform-pb"]}
LINE = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) l1 (\S+) jsd (\S+)"
                  r"(?: kde_jsd (\S+))? log_z (\S+) log_z_err (\S+)")
log = logger("bench_gfn_box")


def run(item):
    row, seed, iters = item
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="bench_gfn_box.")
    out = flowrl(FLOWRL, ["train", "--algo", "gfn-box", "--env", "box", "--out", os.path.join(work, "r"),
                          "--epochs", iters, "--eval-every", iters // 2, "--seed", seed, "--threads", 1, "--backend", "opt",
                          "--checkpoint-every", 0, "--keep-checkpoints", 1, "--kde-samples", 10000] + ROWS[row],
                 name="bench_gfn_box")
    wall = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)
    evals = [dict(traj=int(m.group(3)), l1=float(m.group(4)), jsd=float(m.group(5)), kde=float(m.group(6) or "nan"),
                  zerr=float(m.group(8))) for m in (LINE.match(l.strip()) for l in out.splitlines()) if m]
    if not evals:
        raise SystemExit(f"bench_gfn_box: no evaluation line from {row} seed {seed}")
    log(f"{row} seed {seed}: L1 {evals[-1]['l1']:.4f} KDE JSD {evals[-1]['kde']:.4f} after {evals[-1]['traj']} "
        f"trajectories, {wall:.1f} s")
    return dict(row=row, seed=seed, evals=evals, wall=wall, digest=re.search(r"digest ([0-9a-f]{16})", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rows", default="tb,zvar")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows_run = a.rows.split(",")
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, [(r, s, a.iterations) for r in rows_run for s in seeds]))
    lines = ["| row | L1, 10 x 10 cells, per seed | L1 mean ± 95% | JSD, cells (mean) | KDE JSD per seed | KDE JSD mean ± 95% "
             "| log Z error (mean) | L1 before / mid / after (seed 1) | s per run (1 thread) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows_run:
        rs = [r for r in res if r["row"] == row]
        l1 = [r["evals"][-1]["l1"] for r in rs]
        kde = [r["evals"][-1]["kde"] for r in rs]
        zerr = [r["evals"][-1]["zerr"] for r in rs]
        zcol = "-" if any(z != z for z in zerr) else f"{sum(zerr) / len(zerr):.4f}"
        curve = " / ".join(f"{e['l1']:.3f}" for e in rs[0]["evals"])
        lines.append(f"| gfn-box {' '.join(ROWS[row])} | " + ", ".join(f"{x:.4f}" for x in l1) + f" | {fmt_ci(l1, digits=4)} | "
                     f"{sum(r['evals'][-1]['jsd'] for r in rs) / len(rs):.4f} | " + ", ".join(f"{x:.4f}" for x in kde) +
                     f" | {fmt_ci(kde, digits=4)} | {zcol} | {curve} | {sorted(r['wall'] for r in rs)[len(rs) // 2]:.1f} |")
        log(lines[-1])
    cmd = invocation("bench/bench_gfn_box.py")
    text = "\n".join([
        "<!-- bench_gfn_box begin (written by bench/bench_gfn_box.py; do not edit by hand) -->",
        "## A continuous GFlowNet: the Box (issue 13)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-gfn-box`) at {git_line()} on {machine_line()} (load average "
        f"{load0} before). `flowrl train --algo gfn-box --env box` (delta 0.25, R0 0.1, R1 0.5, R2 2: log Z -1.187444) "
        "at torchgfn 1.2.1's train_box.py configuration (batch 128, hidden 128 x 4, 2 Beta components, 4 at s0, "
        "concentrations [0.1, 5.1], learned P_B unless said, Adam lr 1e-3, lr_Z 1e-3) **except the budget**: "
        f"{a.iterations} iterations = {a.iterations * 128:,} trajectories per run, where train_box.py trains 3,000,000 "
        f"({3000000 / (a.iterations * 128):.0f}x more), and the differences of docs/algorithms/gfn-box.md §6 (ReLU for "
        "ELU, no gradient clamp, no learning-rate schedule). Seeds " + a.seeds + f"; backend opt, one thread per run, "
        f"{a.jobs} runs at a time. L1 and JSD: a 10 x 10 histogram of 10,000 terminal states of the final policy "
        "(Philox purpose box_eval) against the exact R/Z mass of each cell (no target sampling noise; a perfect "
        "sampler's L1 at 10,000 samples is about 0.068: Σ √(2p(1−p)/(πN))). KDE JSD: train_box.py's metric (exponential-kernel KDEs, "
        "bandwidth 0.1, of the 10,000 samples and of 10,000 rejection-sampled target states, on the 100 x 100 grid over "
        "[0.001, 1]^2, each renormalised). s per run: the median wall-clock of a run as the machine was loaded.", "",
        *lines, "",
        "No published table is compared: Lahlou et al. (2023) report the Box results as curves, and the spec "
        "(gflownets.md §6) cites no number. A run's numbers other than the seconds are a function of its bits (the "
        "parameter digest each run prints is the same on ref, opt and cuda-emu).",
        "<!-- bench_gfn_box end -->", ""])
    write_section("BENCHMARKS.md", "bench_gfn_box", text)


if __name__ == "__main__":
    main()
