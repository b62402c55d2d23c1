#!/usr/bin/env python3
"""make bench-gfn-ext: OP-GFN and local-search GFlowNets against TB on HyperGrid 4D H8, and
preference-conditioned multi-objective GFlowNets on the 2-objective HyperGrid (issue 13; spec
gflownets.md §9-§11; docs/algorithms/gfn.md §9, §10, §13), 3 seeds.

`flowrl train --env hypergrid --ndim 4 --height 8 --r0 0.001` (4,096 cells, 16 mode cells, which are
also the top-16 states: the reward is R0 + R1 + R2 there) with hidden 64 x 2, learned P_B, lr 1e-3,
lr_Z 0.1, epsilon 0, one thread, for ITERATIONS iterations of 32 samples (a sample = one evaluation
of R at a terminal state), evaluated every 25 iterations:

  OP-GFN vs TB at equal trajectories: gfn-op and gfn-tb, batch 32. The metric is the fraction of the
  top-16 states found among the training samples (the paper's), and from the exact P_T (no sampling):
  P_T(top-16) and the expected fraction of the top-16 that 1000 fresh samples hit.
  Local search vs TB at equal samples: gfn-tb with batch 32 against gfn-tb with batch 16 and
  --local-search 1 (each fresh trajectory refined once: 16 fresh + 16 rebuilt = 32 samples an
  iteration), greedy and Metropolis-Hastings. The metric is the number of mode cells discovered.
  Multi-objective: gfn-tb, gfn-db and gfn-subtb with --preference on mo-hypergrid H 32 (Branin and
  Currin; 36 Pareto-optimal cells of 1,024), beta 16, batch 32, the same iterations: the Pareto cells
  found in training, the exact Pareto coverage (the expected fraction of the front that 1000 samples
  at each of 9 preferences hit, from P_T(x | w)), the exact L1 and log Z error averaged over the 9.

Writes its section of BENCHMARKS.md.

    python3 bench/bench_gfn_ext.py [--seeds 1,2,3] [--iterations 800] [--jobs 2]
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
from benchlib import invocation, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, median, metrics, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
GRID = ["--env", "hypergrid", "--ndim", 4, "--height", 8, "--r0", 0.001]
NET = ["--hidden-dim", 64, "--n-hidden", 2]
TOPK = 16
EVAL_EVERY = 25
# row -> (algorithm, options); every row takes 32 samples an iteration
ROWS = {
    "tb": ("gfn-tb", ["--batch-size", 32]),
    "op": ("gfn-op", ["--batch-size", 32]),
    "ls": ("gfn-tb", ["--batch-size", 16, "--local-search", 1]),
    "ls-mh": ("gfn-tb", ["--batch-size", 16, "--local-search", 1, "--ls-mh"]),
}
LINE = re.compile(r"^eval (epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) exact_l1 (\S+) log_z_err (\S+) "
                  r"modes (\d+)/(\d+) topk_found (\S+) topk_mass (\S+) topk_hit1000 (\S+)")
MO_GRID = ["--env", "mo-hypergrid", "--height", 32, "--preference", "--mo-beta", 16]
MO_ROWS = {"mo-tb": ("gfn-tb", []), "mo-db": ("gfn-db", []), "mo-subtb": ("gfn-subtb", [])}
MO_LINE = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) .* mo_l1 (\S+) mo_log_z_err (\S+) "
                     r"pareto_cov1000 (\S+) pareto_found (\d+)/(\d+)")
log = logger("bench_gfn_ext")


def run(item):
    row, seed, iters = item
    algo, extra = ROWS[row]
    work = tempfile.mkdtemp(prefix="bench_gfn_ext.")
    t0 = time.time()
    out = flowrl(FLOWRL, ["train", "--algo", algo, "--out", os.path.join(work, "a"), "--epochs", iters, "--seed", seed,
                          "--threads", 1, "--backend", "opt", "--checkpoint-every", 0, "--keep-checkpoints", 1,
                          "--eval-every", EVAL_EVERY, "--top-k", TOPK] + GRID + NET + extra, name="bench_gfn_ext")
    wall = time.time() - t0
    acc = [m["ls_accepted"] for m in metrics(os.path.join(work, "a")) if "ls_accepted" in m]
    shutil.rmtree(work, ignore_errors=True)
    curve = []
    for l in out.splitlines():
        m = LINE.match(l.strip())
        if m:
            curve.append(dict(samples=int(m.group(3)), l1=float(m.group(4)), zerr=float(m.group(5)),
                              modes=int(m.group(6)), n_modes=int(m.group(7)), found=float(m.group(8)),
                              mass=float(m.group(9)), hit=float(m.group(10))))
    if not curve:
        raise SystemExit(f"bench_gfn_ext: no evaluation line from {row} seed {seed}")
    log(f"{row} seed {seed}: modes {curve[-1]['modes']}/{curve[-1]['n_modes']}, top-{TOPK} found {curve[-1]['found']:.3f}, "
        f"exact L1 {curve[-1]['l1']:.4f} after {curve[-1]['samples']} samples, {wall:.1f} s")
    batch = extra[extra.index("--batch-size") + 1]  # one round: batch reconstructions an iteration
    return dict(row=row, seed=seed, curve=curve, wall=wall, accepted=sum(acc), proposed=batch * len(acc))


def run_mo(item):
    row, seed, iters = item
    algo, extra = MO_ROWS[row]
    work = tempfile.mkdtemp(prefix="bench_gfn_ext.")
    t0 = time.time()
    out = flowrl(FLOWRL, ["train", "--algo", algo, "--out", os.path.join(work, "a"), "--epochs", iters, "--seed", seed,
                          "--threads", 1, "--backend", "opt", "--checkpoint-every", 0, "--keep-checkpoints", 1,
                          "--eval-every", EVAL_EVERY * 4, "--batch-size", 32] + MO_GRID + NET + extra, name="bench_gfn_ext")
    wall = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)
    curve = [dict(samples=int(m.group(3)), l1=float(m.group(4)), zerr=float(m.group(5)), cov=float(m.group(6)),
                  found=int(m.group(7)), front=int(m.group(8)))
             for m in (MO_LINE.match(l.strip()) for l in out.splitlines()) if m]
    if not curve:
        raise SystemExit(f"bench_gfn_ext: no evaluation line from {row} seed {seed}")
    log(f"{row} seed {seed}: Pareto found {curve[-1]['found']}/{curve[-1]['front']}, coverage {curve[-1]['cov']:.4f}, "
        f"mo L1 {curve[-1]['l1']:.4f}, {wall:.1f} s")
    return dict(row=row, seed=seed, curve=curve, wall=wall)


def first_all(rs, key, full):
    """The samples of the first evaluation at which every seed has key == full (the counts only grow)."""
    n = min(len(r["curve"]) for r in rs)
    for k in range(n):
        if all(r["curve"][k][key] >= full for r in rs):
            return f"{rs[0]['curve'][k]['samples']:,}"
    return "not within the budget"


def ROWS_MO_LABEL(r):
    algo, extra = MO_ROWS[r]
    return " ".join([algo, "--preference"] + [str(x) for x in extra])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--iterations", type=int, default=800)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    items = [(r, s, a.iterations) for r in ROWS for s in seeds]
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, items))
        mres = list(ex.map(run_mo, [(r, s, a.iterations) for r in MO_ROWS for s in seeds]))
    by = {r: [x for x in res if x["row"] == r] for r in ROWS}
    budget = by["tb"][0]["curve"][-1]["samples"]

    def label(r):  # noqa: E306
        algo, extra = ROWS[r]
        return " ".join([algo] + [str(x) for x in extra])

    op = [f"| run | top-{TOPK} found per seed | mean ± 95% | samples until every seed found all {TOPK} | "
          f"P_T(top-{TOPK}) (mean) | expected top-{TOPK} hit by 1000 fresh samples (mean) | exact L1 (mean) | s per run |",
          "|---|---|---|---|---|---|---|---|"]
    for r in ("tb", "op"):
        rs = by[r]
        f = [x["curve"][-1]["found"] for x in rs]
        op.append(f"| {label(r)} | " + ", ".join(f"{v:.4f}" for v in f) + f" | {fmt_ci(f, digits=3)} | "
                  f"{first_all(rs, 'found', 1.0)} | {sum(x['curve'][-1]['mass'] for x in rs) / len(rs):.4f} | "
                  f"{sum(x['curve'][-1]['hit'] for x in rs) / len(rs):.4f} | "
                  f"{sum(x['curve'][-1]['l1'] for x in rs) / len(rs):.4f} | {median([x['wall'] for x in rs]):.1f} |")
        log(op[-1])
    n_modes = by["tb"][0]["curve"][-1]["n_modes"]
    quarter = [k for k, c in enumerate(by["tb"][0]["curve"]) if c["samples"] >= budget // 4][0]
    half = [k for k, c in enumerate(by["tb"][0]["curve"]) if c["samples"] >= budget // 2][0]
    ls = [f"| run | modes found per seed ({budget:,} samples) | mean ± 95% | modes at {by['tb'][0]['curve'][quarter]['samples']:,} / "
          f"{by['tb'][0]['curve'][half]['samples']:,} samples (mean) | samples until every seed found all {n_modes} | "
          "reconstructions accepted | exact L1 (mean) | log Z error (mean) | s per run |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in ("tb", "ls", "ls-mh"):
        rs = by[r]
        m = [x["curve"][-1]["modes"] for x in rs]
        mq = sum(x["curve"][quarter]["modes"] for x in rs) / len(rs)
        mh = sum(x["curve"][half]["modes"] for x in rs) / len(rs)
        acc = "-" if r == "tb" else f"{sum(x['accepted'] for x in rs) / max(1, sum(x['proposed'] for x in rs)):.3f}"
        ls.append(f"| {label(r)} | " + ", ".join(str(v) for v in m) + f" | {fmt_ci(m, digits=1)} | {mq:.1f} / {mh:.1f} | "
                  f"{first_all(rs, 'modes', n_modes)} | {acc} | {sum(x['curve'][-1]['l1'] for x in rs) / len(rs):.4f} | "
                  f"{sum(x['curve'][-1]['zerr'] for x in rs) / len(rs):.4f} | {median([x['wall'] for x in rs]):.1f} |")
        log(ls[-1])
    front = mres[0]["curve"][-1]["front"]
    mo = [f"| run | Pareto cells found per seed | mean ± 95% | exact coverage, 1000 samples x 9 preferences (per seed) | "
          f"at the start (initial policy) | exact L1, mean over 9 preferences | log Z error, mean over 9 | s per run |",
          "|---|---|---|---|---|---|---|---|"]
    for r in MO_ROWS:
        rs = [x for x in mres if x["row"] == r]
        f = [x["curve"][-1]["found"] for x in rs]
        mo.append(f"| {ROWS_MO_LABEL(r)} | " + ", ".join(f"{v}/{front}" for v in f) + f" | {fmt_ci(f, digits=1)} | "
                  + ", ".join(f"{x['curve'][-1]['cov']:.4f}" for x in rs) + f" | {rs[0]['curve'][0]['cov']:.4f} | "
                  f"{fmt_ci([x['curve'][-1]['l1'] for x in rs], digits=4)} | "
                  f"{fmt_ci([x['curve'][-1]['zerr'] for x in rs], digits=4)} | {median([x['wall'] for x in rs]):.1f} |")
        log(mo[-1])
    cmd = invocation("bench/bench_gfn_ext.py")
    text = "\n".join([
        "<!-- bench_gfn_ext begin (written by bench/bench_gfn_ext.py; do not edit by hand) -->",
        "## OP-GFN and local-search GFlowNets on HyperGrid 4D H8, multi-objective GFlowNets on mo-hypergrid (issue 13)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-gfn-ext`) at {git_line()} on {machine_line()} (load "
        f"average {load0} before). `flowrl train --env hypergrid --ndim 4 --height 8 --r0 0.001` (4,096 cells; "
        f"{n_modes} mode cells, which are the top-{TOPK} states) with hidden 64 x 2, learned P_B, AdamW lr 1e-3, lr_Z 0.1 "
        f"(TB), weight decay 0, epsilon 0; {a.iterations} iterations of 32 samples = {budget:,} samples per run (a "
        f"sample: one evaluation of R at a terminal state, a local-search reconstruction included); seeds {a.seeds}; "
        f"backend opt, one thread per run, {a.jobs} runs at a time; evaluations every {EVAL_EVERY} iterations.", "",
        "**OP-GFN vs TB at equal trajectories** (docs/algorithms/gfn.md §9; the reward enters gfn-op only through "
        "comparisons within pairs of the batch). Top-16 found: the fraction of the top-16 states among the terminal "
        "states sampled in training; P_T(top-16) and the expected fraction 1000 fresh samples hit come from the exact "
        "terminating distribution of the final policy (dynamic programming, no sampling). gfn-op has no log Z and "
        "targets no distribution: its exact L1 to R/Z is shown only to see that it does not match R/Z (it "
        "concentrates on the maximisers).", "",
        *op, "",
        "**Local search vs TB at equal samples** (docs/algorithms/gfn.md §10): plain TB samples 32 trajectories an "
        "iteration; local search 16 fresh ones, each destroyed K = ceil(0.5 (n - 1)) steps with P_B and rebuilt with "
        "P_F once (16 more samples), accepted greedily (R(x') >= R(x)) or by Metropolis-Hastings, and TB trains on "
        "the 32. Modes: distinct mode cells among every sample (fresh and rebuilt).", "",
        *ls, "",
        f"**Multi-objective, preference-conditioned** (docs/algorithms/gfn.md §13): `--env mo-hypergrid --height 32 "
        f"--preference --mo-beta 16` (Branin and Currin, {front} Pareto-optimal cells of 1,024), batch 32, the same "
        f"{a.iterations} iterations, the other settings as above; each trajectory draws w ~ Dirichlet(1, 1), reward "
        "(w . R(x))^16. Pareto cells found: among the training samples (all preferences). Exact coverage: the expected "
        "fraction of the front that 1000 samples at each of the preferences w_j = ((j + 0.5)/9, 1 - (j + 0.5)/9), j < 9, "
        "hit, from the policy's exact P_T(x | w_j); exact L1 and log Z error: the mean over the same 9 of "
        "sum_x |P_T(x | w) - R(x | w)/Z(w)| and |log Z(w) - log Z_true(w)| (TB's log Z(w) and DB / SubTB's log F(s0 | w) "
        f"are head columns read at (s0, w)). Evaluations every {EVAL_EVERY * 4} iterations.", "",
        *mo, "",
        "A run's numbers other than the seconds are a function of its bits (the same on ref, opt and cuda-emu: "
        "tests/test_gfn_ext.c).",
        "<!-- bench_gfn_ext end -->", ""])
    write_section("BENCHMARKS.md", "bench_gfn_ext", text)


if __name__ == "__main__":
    main()
