#!/usr/bin/env python3
"""make bench-gfn: GFlowNets on HyperGrid 2D H8 (issue 13), every loss and option row flowrl has, 3 seeds.

`flowrl train --algo gfn-LOSS --env hypergrid` at torchgfn's test configuration
(tutorials/examples/test_scripts.py: batch 128, hidden 256 x 2, learned P_B, lr 1e-3, lr_Z 0.1,
weight decay 0, epsilon 0) for a budget of trajectories, the exact L1 between the policy's
terminating distribution P_T (dynamic programming over the DAG, no sampling) and R/Z every 25
iterations (3,200 trajectories). Reported per loss: the final exact L1 per seed and its mean with a
95% interval, the issue's bar (<= 0.02 for TB and SubTB, <= 0.05 for the others) on every seed,
the trajectories until every seed is at the bar, the log Z error, and the wall-clock of a run
(one thread), and torchgfn's sampled L1 of 200,000 fresh trajectories at the end; and torchgfn's
own TB training at the same configuration in the same run (torchgfn_row: its seconds and exact L1).
Writes its section of BENCHMARKS.md.

Rows (ROWS): every loss (tb, db, subtb, zvar, fm, mdb), forward-looking DB and SubTB, each SubTB
weighting, TB with the cosh and Linex(1) regressions, TB and DB with torchgfn train_hypergrid's
replay buffer of 2048, and RTB against the seed's initial network as the prior (beta 1: its exact
L1 is to p_prior_T(x) R(x) / Z, not to R/Z). The sampled JSD (spec gflownets.md §5.1) beside the sampled L1.

    python3 bench/bench_gfn.py [--seeds 1,2,3] [--iterations 250] [--iters-for ROW=N,...] [--jobs 2]
        [--losses tb,db,...] [--torchgfn tb,subtb-geometric,...] [--keep]

--iters-for gives a row its own budget of iterations (default ITERS_FOR: the rows that miss the bar at
torchgfn's 32,000 trajectories get the budget at which they reach it; `--iters-for none`: every row
at --iterations). --torchgfn: the rows that torchgfn 1.2.1 itself also trains, at --iterations (TB,
SubTB with a weighting, forward-looking SubTB; default tb). --keep keeps the section's rows of the
losses not in --losses (its text names the run they came from).
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import invocation, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
# row name -> (algorithm, extra options); the bar: <= 0.02 for TB and SubTB (every weighting), 0.05 the others
ROWS = {
    "tb": ("gfn-tb", []), "db": ("gfn-db", []), "subtb": ("gfn-subtb", []), "zvar": ("gfn-zvar", []),
    "fm": ("gfn-fm", []), "mdb": ("gfn-mdb", []),
    "db-fl": ("gfn-db", ["--forward-looking"]), "subtb-fl": ("gfn-subtb", ["--forward-looking"]),
    "subtb-equal_within": ("gfn-subtb", ["--subtb-weighting", "equal_within"]),
    "subtb-equal": ("gfn-subtb", ["--subtb-weighting", "equal"]),
    "subtb-geometric": ("gfn-subtb", ["--subtb-weighting", "geometric"]),
    "subtb-DB": ("gfn-subtb", ["--subtb-weighting", "DB"]),
    "subtb-ModifiedDB": ("gfn-subtb", ["--subtb-weighting", "ModifiedDB"]),
    "subtb-TB": ("gfn-subtb", ["--subtb-weighting", "TB"]),
    "tb-cosh": ("gfn-tb", ["--regression", "cosh"]), "tb-linex": ("gfn-tb", ["--regression", "linex", "--linex-alpha", 1]),
    "tb-replay": ("gfn-tb", ["--replay-buffer", 2048]), "db-replay": ("gfn-db", ["--replay-buffer", 2048]),
    # RTB's prior: the initial network of the seed (no --prior), beta 1: target p_prior_T(x) R(x) / Z
    "rtb": ("gfn-rtb", []),
}
# the rows that miss the bar at 32,000 trajectories and the iterations (x 128 trajectories) at which
# they reach it on 3 seeds (measured: BENCHMARKS.md bench_gfn, docs/algorithms/gfn.md §7)
ITERS_FOR = {"subtb-equal": 750, "subtb-geometric": 1000, "subtb-fl": 500, "tb-cosh": 750}
# torchgfn 1.2.1's own training of a row (tools/torchgfn_hypergrid.py options); it has no regressions
TORCHGFN_ROWS = {"tb": ["--loss", "TB"], "subtb": ["--loss", "SubTB"],
                 "subtb-fl": ["--loss", "SubTB", "--forward-looking"],
                 **{f"subtb-{w}": ["--loss", "SubTB", "--weighting", w]
                    for w in ("equal_within", "equal", "geometric", "DB", "ModifiedDB", "TB")}}
BAR = {k: (0.02 if v[0] in ("gfn-tb", "gfn-subtb") else 0.05) for k, v in ROWS.items()}
EVAL_EVERY = 25
VAL_N = 200000  # torchgfn validate's fresh samples
LINE = re.compile(r"^eval (epoch-\d+|after)\s+\(epoch (\d+)\): trajectories (\d+) exact_l1 (\S+) "
                  r"log_z_err (\S+) modes (\d+)/(\d+)")
log = logger("bench_gfn")


def run(item):
    loss, seed, iters = item
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="bench_gfn.")
    # a run directory each (the run loop's), no checkpoints but the last
    common = ["--env", "hypergrid", "--ndim", 2, "--height", 8, "--epochs", iters, "--seed", seed, "--threads", 1,
              "--backend", "opt", "--checkpoint-every", 0, "--keep-checkpoints", 1]
    algo, extra = ROWS[loss]
    common += extra
    out = flowrl(FLOWRL, ["train", "--algo", algo, "--out", os.path.join(work, "a"), "--eval-every", EVAL_EVERY]
                 + common, name="bench_gfn")
    wall = time.time() - t0
    # the same run (the same bits) again, with torchgfn's sampled L1 of 200,000 fresh trajectories at the end
    val = flowrl(FLOWRL, ["train", "--algo", algo, "--out", os.path.join(work, "b"), "--eval-every", 0,
                          "--validation-samples", VAL_N] + common, name="bench_gfn")
    shutil.rmtree(work, ignore_errors=True)
    sampled = float(re.findall(r"sampled_l1 (\S+)", val)[-1])
    jsd = float(re.findall(r"sampled_jsd (\S+)", val)[-1])
    curve = []
    for l in out.splitlines():
        m = LINE.match(l.strip())
        if m:
            curve.append(dict(traj=int(m.group(3)), l1=float(m.group(4)), zerr=float(m.group(5)),
                              modes=int(m.group(6)), n_modes=int(m.group(7))))
    if not curve:
        raise SystemExit("bench_gfn: no progress line from gfn-%s seed %s" % (loss, seed))
    digest = re.search(r"digest ([0-9a-f]{16})", out).group(1)
    log(f"gfn-{loss} seed {seed}: exact L1 {curve[-1]['l1']:.4f} after {curve[-1]['traj']} trajectories, {wall:.1f} s")
    if re.search(r"digest ([0-9a-f]{16})", val).group(1) != digest:
        raise SystemExit("bench_gfn: gfn-%s seed %s: the validation run's parameters differ" % (loss, seed))
    return dict(loss=loss, seed=seed, curve=curve, wall=wall, digest=digest, sampled=sampled, jsd=jsd)


def row_label(loss):
    algo, extra = ROWS[loss]
    return " ".join([algo] + [str(x) for x in extra])


def torchgfn_row(loss, seeds, iterations, jobs):
    """torchgfn's own training of row loss (TB, or SubTB with its weighting / forward-looking) at the
    same configuration and budget (tools/torchgfn_hypergrid.py in make check's venv, build/pyenv,
    where configure --install-deps put torchgfn 1.2.1), jobs runs at a time, one thread each like
    flowrl's: a row of the table with its exact L1 per seed and its seconds per run, and the line
    that describes it."""
    py = os.path.join(os.environ.get("PYENV", os.path.join(BUILD, "pyenv")), "bin", "python")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "torchgfn_hypergrid.py")

    def one(seed):
        t0 = time.time()
        r = subprocess.run(["nice", "-n", "10", py, script, "--iterations", str(iterations), "--seed", str(seed),
                            "--threads", "1"] + TORCHGFN_ROWS[loss], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench_gfn: torchgfn seed {seed}: {r.stderr.strip().splitlines()[-1:]} (make "
                             "build/pyenv/torchgfn after ./configure --install-deps)")
        return dict(json.loads(r.stdout.strip().splitlines()[-1]), wall=time.time() - t0)

    with cf.ThreadPoolExecutor(jobs) as ex:
        rs = list(ex.map(one, seeds))
    l1 = [r["exact_l1"] for r in rs]
    what = "TB" if loss == "tb" else "SubTB " + (
        "--forward-looking" if loss == "subtb-fl" else "--subtb-weighting " + (loss[6:] or "geometric_within"))
    row = (f"| torchgfn {rs[0]['torchgfn']} {what} | {iterations * 128} | " + ", ".join(f"{x:.4f}" for x in l1) +
           f" | {fmt_ci(l1, digits=4)} | <= {BAR[loss]} | {'yes' if all(x <= BAR[loss] for x in l1) else 'no'} | - | - | - | "
           f"{sum(r['log_z_err'] for r in rs) / len(rs):.4f} | - | {sorted(r['wall'] for r in rs)[len(rs) // 2]:.1f} |")
    log(row)
    if loss != "tb":
        return row, ""
    note = (f"torchgfn's own wall-clock, measured in the same run: its HyperGrid TB training (torchgfn {rs[0]['torchgfn']} "
            f"on torch {rs[0]['torch']}, CPU, `tools/torchgfn_hypergrid.py`: its train_hypergrid.py's tied NeuralNet, "
            f"{rs[0]['params']:,} parameters, Adam = AdamW at weight decay 0, the same batch, lr, lr_Z and "
            f"{rs[0]['trajectories']:,} trajectories, its own RNG), {jobs} runs at a time, one thread each; s per run is the "
            f"process's wall-clock as for flowrl's rows (the training loop alone, median: "
            f"{sorted(r['seconds'] for r in rs)[len(rs) // 2]:.1f} s wall, "
            f"{sorted(r['cpu_seconds'] for r in rs)[len(rs) // 2]:.1f} s CPU); exact L1 of its final P_F by the same dynamic program.")
    return row, note


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--iters-for", default=",".join(f"{k}={v}" for k, v in ITERS_FOR.items()),
                    help="ROW=N,...: a row's own iterations ('none': every row at --iterations)")
    ap.add_argument("--torchgfn", default="tb", help="rows torchgfn itself trains at --iterations: " + ",".join(TORCHGFN_ROWS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--losses", default=",".join(ROWS))
    ap.add_argument("--keep", action="store_true",
                    help="keep the section's rows of the losses not run (marked as from its previous run)")
    a = ap.parse_args()
    iters_for = {} if a.iters_for in ("", "none") else {k: int(v) for k, v in (x.split("=") for x in a.iters_for.split(","))}
    for k in list(iters_for) + a.torchgfn.split(","):
        if k not in ROWS or (k in a.torchgfn.split(",") and k not in TORCHGFN_ROWS):
            raise SystemExit(f"bench_gfn: no row {k!r} (rows: {', '.join(ROWS)}; torchgfn's: {', '.join(TORCHGFN_ROWS)})")
    kept, kept_src = {}, {}
    if a.keep:  # the current section's rows by label, and the line that says when they were measured
        cur = open("BENCHMARKS.md").read()
        m = re.search(r"^<!-- bench_gfn begin.*?^<!-- bench_gfn end -->", cur, flags=re.S | re.M)
        sec = m.group(0) if m else ""
        old_traj = re.search(r"iterations = ([\d,]+) trajectories per run", sec)
        for l in sec.splitlines():
            if l.startswith("| gfn-"):
                cells = l.split("|")
                if len(cells) == 13 and old_traj:  # a row written before the trajectories column
                    cells.insert(2, " " + old_traj.group(1).replace(",", "") + " ")
                kept[cells[1].strip()] = "|".join(cells)
        mm = re.search(r"^Measured (.*?) by `(.*?)` .*? at (\S+) on", sec, flags=re.M)
        own = f"{mm.group(1)}, `{mm.group(2)}` at {mm.group(3)}" if mm else "an earlier run"
        kept_src = {k: own for k in kept}
        prev = re.search(r"The rows of (.*?) are kept from the section's previous run \((.*?); `--keep`\)", sec)
        for label in (prev.group(1).split(", ") if prev else []):  # rows that section kept: the run that measured them
            if label in kept_src:
                kept_src[label] = prev.group(2)
    seeds = [int(s) for s in a.seeds.split(",")]
    losses = a.losses.split(",")
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    items = [(l, s, iters_for.get(l, a.iterations)) for l in losses for s in seeds]
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, items))
    rows = ["| loss | trajectories per run | exact L1 per seed | mean ± 95% | bar | every seed at the bar | trajectories until every seed "
            "is at the bar | sampled L1, 200k (mean) | sampled JSD, 200k (mean) | log Z error (mean) | modes found | "
            "s per run (1 thread) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = list(ROWS) if a.keep else losses
    kept_labels = []
    for loss in order:
        label = row_label(loss)
        if loss not in losses:
            if label in kept:
                rows.append(kept[label])
                kept_labels.append(label)
            continue
        rs = [r for r in res if r["loss"] == loss]
        finals = [r["curve"][-1]["l1"] for r in rs]
        bar = BAR[loss]
        # the first evaluation from which every seed stays at or under the bar
        n = min(len(r["curve"]) for r in rs)
        reach = None
        for k in range(n):
            if all(all(c["l1"] <= bar for c in r["curve"][k:n]) for r in rs):
                reach = rs[0]["curve"][k]["traj"]
                break
        zerr = [r["curve"][-1]["zerr"] for r in rs]
        zcol = "-" if any(z != z for z in zerr) else f"{sum(zerr) / len(zerr):.4f}"
        modes = f"{min(r['curve'][-1]['modes'] for r in rs)}/{rs[0]['curve'][-1]['n_modes']}"
        rows.append(f"| {label} | {iters_for.get(loss, a.iterations) * 128} | " + ", ".join(f"{x:.4f}" for x in finals) + f" | {fmt_ci(finals, digits=4)} | "
                    f"<= {bar} | {'yes' if all(x <= bar for x in finals) else 'no'} | "
                    f"{reach if reach is not None else 'not within the budget'} | "
                    f"{sum(r['sampled'] for r in rs) / len(rs):.4f} | {sum(r['jsd'] for r in rs) / len(rs):.5f} | "
                    f"{zcol} | {modes} | "
                    f"{sorted(r['wall'] for r in rs)[len(rs) // 2]:.1f} |")
        log(rows[-1])
    torchgfn_note = ""
    for loss in a.torchgfn.split(","):
        row, note = torchgfn_row(loss, seeds, a.iterations, a.jobs)
        rows.append(row)
        torchgfn_note += note
    if any(k != "tb" for k in a.torchgfn.split(",")):
        torchgfn_note += (" torchgfn's SubTB rows: its SubTBGFlowNet with that weighting (lamda 0.9), log F a third head "
                          "on the tied torso in the lr group, its log Z estimate log F(s0); torchgfn 1.2.1's "
                          "forward_looking raises (a shape mismatch), so tools/torchgfn_hypergrid.py adds the valid "
                          "states' log rewards as torchgfn later fixed it (its docstring).")
    cmd = invocation("bench/bench_gfn.py")
    kept_note = "".join(f" The rows of {', '.join(l for l in kept_labels if kept_src[l] == src)} are kept from the "
                        f"section's previous run ({src}; `--keep`)." for src in dict.fromkeys(kept_src[l] for l in kept_labels))
    kept_note += " This run measured the others." if kept_note else ""
    text = "\n".join([
        "<!-- bench_gfn begin (written by bench/bench_gfn.py; do not edit by hand) -->",
        "## GFlowNets on HyperGrid 2D H8 (issue 13)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-gfn`) at {git_line()} on {machine_line()} (load average "
        f"{load0} before). `flowrl train --algo gfn-LOSS --env hypergrid` (D 2, H 8, R0 0.1, R1 0.5, R2 2: log Z "
        f"3.109061, 4 mode cells) at torchgfn's test configuration: batch 128, hidden 256 x 2 (71,430 parameters for "
        f"TB), learned P_B, AdamW lr 1e-3, lr_Z 0.1 (TB), weight decay 0, epsilon 0; {a.iterations} iterations = "
        f"{a.iterations * 128:,} trajectories per run (torchgfn's test budget: 32,000)" + (
            "; the rows " + ", ".join(f"{row_label(k)} {v * 128:,}" for k, v in iters_for.items() if k in losses) +
            " (`--iters-for`: the budget at which a row that misses the bar at 32,000 reaches it)" if
            any(k in losses for k in iters_for) else "") + f"; seeds {a.seeds}; backend "
        f"opt, one thread per run, {a.jobs} runs at a time. Exact L1 = sum_x |P_T(x) - R(x)/Z| of the policy at "
        f"epsilon 0, by dynamic programming over the DAG (docs/algorithms/gfn.md §5.1), every {EVAL_EVERY} "
        "iterations. The issue's bar: <= 0.02 for TB and SubTB (every weighting and option), <= 0.05 for the others, on 3 "
        "seeds. gfn-rtb's prior is the seed's initial network (no --prior) and its target p_prior_T(x) R(x)^beta / Z "
        "(beta 1), so its L1 and log Z error are against that target." + kept_note, "",
        *rows, "",
        "Sampled L1 and JSD: torchgfn validate's metrics (L1 = sum_x |p^ - p|, current torchgfn's sum; JSD in nats), the histogram of 200,000 fresh trajectories of the final policy "
        "(epsilon 0, Philox purpose gfn_eval) against R/Z, from a second run of the same bits (its parameter digest "
        "checked equal). torchgfn's figures (spec gflownets.md §5.3) are of that metric: 2D H8 TB 0.012 ± 0.015, "
        "FM 0.047; its noise floor for a perfect sampler is 0.0115 (§5.4), which the exact L1 does not have. " + torchgfn_note +
        " A run's numbers other than the seconds are a function of its bits (the parameter "
        "digest is printed by each run and is the same on ref, opt and cuda-emu).",
        "<!-- bench_gfn end -->", ""])
    write_section("BENCHMARKS.md", "bench_gfn", text)


if __name__ == "__main__":
    main()
