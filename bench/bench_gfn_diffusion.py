#!/usr/bin/env python3
"""make bench-gfn-diffusion: diffusion samplers trained as GFlowNets on 25GMM, Funnel and Manywell
(issue 13): TB, TB + Expl., VarGrad + Expl., TB + Expl. + LP, VarGrad + Expl. + LP and VarGrad + Expl. + LP + LS
(the methods of Sendera et al. 2024's Table 1 that flowrl implements; LP(t): the paper's time-only Langevin scale;
(PIS): the public code's --pis_architectures networks, flowrl's --pis-architectures), 3 seeds.

`flowrl train --algo gfn-diffusion --env gmm25|funnel|manywell --loss tb|tb-avg [--langevin] [--exploration 0.2]`
at the public code's configuration (GFNOrg/gfn-diffusion@255b499 energy_sampling/train.py: T 100, hidden 64,
64 harmonics, fixed variance, zero_init, clipping, Adam lr 1e-3, lr_flow 1e-1; "+ Expl." = the README's
--exploratory --exploration_wd --exploration_factor 0.2) except the budget: the paper trains 25,000 iterations
of batch 300; this runs BUDGET's iterations x batch per (target, method) (default 300 x 64), or --iterations /
--batch for every run. Reported per target and method: Delta log Z^RW = |log Z_IS - log Z| of 2,000 samples at
the end per seed, its mean with a 95% interval, ELBO and EUBO (means), the seconds of a run (one thread), and
the verdicts against the tolerances (TABLE1 below; docs/algorithms/gfn-diffusion.md §7). Writes its section of
BENCHMARKS.md.

    python3 bench/bench_gfn_diffusion.py [--seeds 1,2,3] [--iterations N] [--batch N] [--jobs 2]
                                         [--targets 25GMM,Funnel,Manywell] [--methods "TB,TB + Expl.,..."] [--keep]

--keep keeps the section's rows of the (target, method) pairs not run (judged again against TABLE1;
the text names the run they came from; read when the runs end, so two runs on other pairs may overlap);
`--targets none --keep` runs nothing and rewrites the section's verdicts from its numbers.
Under its table the section prints the public code's own runs at the LP rows' budget from
bench/results/gfn_diffusion_public.json (measured once outside the project, with the commit, the commands and
what was changed to run it on CPU: docs/algorithms/gfn-diffusion.md §7.4); never rerun here.
"""
import argparse
import concurrent.futures as cf
import json
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
# target: (flowrl env, t_scale) -- train.py's default t_scale 5 for 25GMM and Funnel; the README's Manywell
# commands pass --t_scale 1.
TARGETS = {"25GMM": ("gmm25", 5.0), "Funnel": ("funnel", 5.0), "Manywell": ("manywell", 1.0)}
# (name, loss, Langevin drift, exploration): "+ Expl." is the public code's --exploratory --exploration_wd
# --exploration_factor 0.2 (README.md's TB + Expl., VarGrad + Expl. and TB + Expl. + LP commands): flowrl's
# --exploration 0.2 with the default --exploration-decay 5000 (utils.py get_exploration_std's 5,000 iterations, kept
# as they are, so a run shorter than 5,000 iterations ends while e is still decaying).
# "+ LS" is the README's local search (its TB + Expl. + LS command: --both_ways --local_search --buffer_size 600000
# --prioritized rank --rank_weight 0.01 --ld_step 0.1 --ld_schedule --target_acceptance_rate 0.574; max_iter_ls 200,
# burn_in 100, ls_cycle 100 train.py's defaults). "LP(t)" is the paper's Langevin parametrisation, NN2 a function of
# the time alone (appendix D eq. 17; the code's LangevinScalingModelPIS): flowrl's --langevin-time-scale; plain "LP"
# is flowrl's NN2(x, t), a column of the drift head (docs/algorithms/gfn-diffusion.md §6).
LS = ["--local-search", "--buffer-size", 600000, "--prioritized", "rank", "--rank-weight", 0.01, "--ld-step", 0.1,
      "--ld-schedule", "--target-acceptance-rate", 0.574]
LPT = ["--langevin-time-scale"]
# "(PIS)": the public code's --pis_architectures networks (the README's LP commands use them): flowrl's
# --pis-architectures (a state Linear plus a time MLP of learned-phase features, three GELU layers, NN2(t)
# LangevinScalingModelPIS; docs/algorithms/gfn-diffusion.md §1, §6, §7.5).
PIS = ["--pis-architectures"]
# (name, loss, Langevin drift, exploration, further options)
METHODS = [("TB", "tb", False, False, []), ("TB + Expl.", "tb", False, True, []), ("TB + LP", "tb", True, False, []),
           ("TB + Expl. + LP", "tb", True, True, []), ("TB + Expl. + LP(t)", "tb", True, True, LPT),
           ("VarGrad", "tb-avg", False, False, []), ("VarGrad + Expl.", "tb-avg", False, True, []),
           ("VarGrad + LP", "tb-avg", True, False, []), ("VarGrad + Expl. + LP", "tb-avg", True, True, []),
           ("VarGrad + Expl. + LP + LS", "tb-avg", True, True, LS),
           ("VarGrad + Expl. + LP(t) + LS", "tb-avg", True, True, LPT + LS),
           ("TB + Expl. + LP (PIS)", "tb", True, True, PIS),
           ("VarGrad + Expl. + LP + LS (PIS)", "tb-avg", True, True, PIS + LS),
           ("TB + Expl. + LP (PIS) long", "tb", True, True, PIS),
           ("VarGrad + Expl. + LP (PIS) long", "tb-avg", True, True, PIS),
           ("VarGrad + Expl. + LP + LS (PIS) long", "tb-avg", True, True, PIS + LS),
           ("VarGrad + Expl. + LP + LS (PIS) longer", "tb-avg", True, True, PIS + LS),
           ("TB + Expl. + LP (PIS) longest", "tb", True, True, PIS)]
# The methods a plain run measures: those with a Table 1 row of the same method, and VarGrad + Expl. + LP (judged
# against the row that adds local search, named as such).
DEFAULT_METHODS = ["TB", "TB + Expl.", "TB + Expl. + LP", "VarGrad + Expl.", "VarGrad + Expl. + LP",
                   "VarGrad + Expl. + LP + LS"]
EXPLORATION = 0.2
HISTORY_EVERY = 900
LOG_Z = {"25GMM": 0.0, "Funnel": 0.0, "Manywell": 164.695675}
# The tolerances (docs/algorithms/gfn-diffusion.md §7): Sendera et al., "Improved off-policy training of
# diffusion samplers", NeurIPS 2024 (arXiv 2402.05098v4), Table 1, "log-partition function estimation errors
# ... (mean and standard deviation over 5 runs)": per target its columns Delta log Z (the error of log Z-hat,
# the mean log weight: the public code's log_Z_lb, flowrl's ELBO) and Delta log Z^RW (the error of the
# importance-weighted log Z-hat^RW: the code's log_Z = logmeanexp, flowrl's log_Z_IS). The row of each flowrl
# importance-weighted log Z-hat^RW: the code's log_Z = logmeanexp, flowrl's log_Z_IS). Each method is judged
# against the row of the same method where the table has one (LP(t) and LP against the same LP rows); the rows of
# VarGrad, TB + LP and VarGrad + LP without exploration, and of VarGrad + Expl. + LP (the table's adds local
# search), are the nearest, and the
# verdict says what the row adds. Values: {row: {target: (Delta log Z mean, sd, Delta log Z^RW mean, sd)}}, as the
# table prints them.
TABLE1 = {
    "TB [41]": {"25GMM": ("1.176", "0.109", "1.071", "0.112"), "Funnel": ("0.690", "0.018", "0.239", "0.192"),
                "Manywell": ("4.01", "0.04", "2.67", "0.02")},
    "TB + Expl. [41]": {"25GMM": ("0.560", "0.302", "0.422", "0.320"), "Funnel": ("0.749", "0.015", "0.226", "0.138"),
                        "Manywell": ("4.01", "0.05", "2.68", "0.06")},
    "VarGrad + Expl.": {"25GMM": ("0.615", "0.241", "0.487", "0.250"), "Funnel": ("0.642", "0.010", "0.250", "0.112"),
                        "Manywell": ("4.01", "0.05", "2.69", "0.06")},
    "TB + Expl. + LP": {"25GMM": ("0.206", "0.018", "0.011", "0.010"), "Funnel": ("0.666", "0.615", "0.051", "0.616"),
                        "Manywell": ("7.46", "1.74", "1.06", "1.11")},
    "VarGrad + Expl. + LP + LS": {"25GMM": ("0.207", "0.016", "0.015", "0.015"),
                                  "Funnel": ("0.920", "0.118", "0.256", "0.037"),
                                  "Manywell": ("4.11", "0.45", "0.02", "0.21")},
}
# method -> (its Table 1 row, what that row adds to the method: "" when it is the same method)
METHOD_ROW = {"TB": ("TB [41]", ""), "TB + Expl.": ("TB + Expl. [41]", ""), "TB + LP": ("TB + Expl. + LP", "Expl."),
              "TB + Expl. + LP": ("TB + Expl. + LP", ""), "VarGrad": ("VarGrad + Expl.", "Expl."),
              "VarGrad + Expl.": ("VarGrad + Expl.", ""), "VarGrad + LP": ("VarGrad + Expl. + LP + LS", "Expl., LS"),
              "VarGrad + Expl. + LP": ("VarGrad + Expl. + LP + LS", "LS"),
              "TB + Expl. + LP(t)": ("TB + Expl. + LP", ""),
              "VarGrad + Expl. + LP + LS": ("VarGrad + Expl. + LP + LS", ""),
              "VarGrad + Expl. + LP(t) + LS": ("VarGrad + Expl. + LP + LS", ""),
              "TB + Expl. + LP (PIS)": ("TB + Expl. + LP", ""),
              "VarGrad + Expl. + LP + LS (PIS)": ("VarGrad + Expl. + LP + LS", ""),
              "TB + Expl. + LP (PIS) long": ("TB + Expl. + LP", ""),
              "VarGrad + Expl. + LP (PIS) long": ("VarGrad + Expl. + LP + LS", "LS"),
              "VarGrad + Expl. + LP + LS (PIS) long": ("VarGrad + Expl. + LP + LS", ""),
              "VarGrad + Expl. + LP + LS (PIS) longer": ("VarGrad + Expl. + LP + LS", ""),
              "TB + Expl. + LP (PIS) longest": ("TB + Expl. + LP", "")}


# (iterations, batch) per (target, method) where not 300 of 64 (docs/algorithms/gfn-diffusion.md §7: the probes
# that chose them; the paper's runs are 25,000 iterations of batch 300).
# The LS and LP(t) rows run at the budget of the LP row they are compared with (like for like).
BUDGET = {("Funnel", "TB"): (100, 300), ("25GMM", "TB + Expl. + LP"): (900, 64), ("25GMM", "VarGrad + Expl. + LP"): (900, 64),
          ("25GMM", "TB + Expl. + LP(t)"): (900, 64), ("25GMM", "VarGrad + Expl. + LP + LS"): (900, 64),
          ("25GMM", "VarGrad + Expl. + LP(t) + LS"): (900, 64), ("25GMM", "TB + Expl. + LP (PIS)"): (900, 64),
          ("25GMM", "VarGrad + Expl. + LP + LS (PIS)"): (900, 64),
          # "(PIS) long": the same method at 2,700 x 300 = 810,000 trajectories (11% of the paper's), where the ELBO
          # leaves the -1.2 plateau of the shorter budgets (docs/algorithms/gfn-diffusion.md §7.6)
          ("25GMM", "TB + Expl. + LP (PIS) long"): (2700, 300), ("25GMM", "VarGrad + Expl. + LP + LS (PIS) long"): (2700, 300),
          ("Funnel", "VarGrad + Expl. + LP + LS (PIS) long"): (2700, 300),
          ("25GMM", "VarGrad + Expl. + LP (PIS) long"): (2700, 300), ("Funnel", "VarGrad + Expl. + LP (PIS) long"): (2700, 300),
          # "(PIS) longer": 5,400 x 300 = 1,620,000 trajectories (22% of the paper's), where the Funnel's VarGrad + Expl.
          # + LP + LS reaches its row (docs/algorithms/gfn-diffusion.md §7.6)
          ("Funnel", "VarGrad + Expl. + LP + LS (PIS) longer"): (5400, 300),
          # "(PIS) longest": 8,100 x 300 = 2,430,000 trajectories (32% of the paper's): where 25GMM's ELBO column
          # (still rising at 810,000) is measured again; the runs evaluate every 900 iterations, so the log has the
          # whole history (docs/algorithms/gfn-diffusion.md §7.6)
          ("25GMM", "TB + Expl. + LP (PIS) longest"): (8100, 300)}


def budget(target, method, iterations, batch):
    """--iterations / --batch where given, else BUDGET's or 300 of 64."""
    it, b = BUDGET.get((target, method), (300, 64))
    return iterations or it, batch or b


def tolerance(mean, sd):
    """The row's mean plus two of its standard deviations: within the spread of the paper's 5 runs."""
    return round(float(mean) + 2.0 * float(sd), 4)
LINE = re.compile(r"^eval (?:after|epoch-\d+)\s+\(epoch (\d+)\): log_Z_IS (\S+) ELBO (\S+) EUBO (\S+) log_Z_learned (\S+) "
                  r"delta_log_Z (\S+)")
log = logger("bench_gfn_diffusion")


def run(item):
    target, (name, loss, lp, expl, extra), seed, iters, batch = item
    env, ts = TARGETS[target]
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="bench_gfnd.")
    # Runs of 2,700 iterations and more evaluate every 900 (an evaluation does not perturb a run: the final
    # evaluation's bits are the same; docs §7.6), and the log keeps each evaluation.
    every = HISTORY_EVERY if iters >= 3 * HISTORY_EVERY and iters % HISTORY_EVERY == 0 else 0
    args = ["train", "--algo", "gfn-diffusion", "--env", env, "--loss", loss, "--t-scale", ts, "--batch-size", batch,
            "--epochs", iters, "--seed", seed, "--threads", 1, "--backend", "opt", "--eval-every", every,
            "--checkpoint-every", 0, "--keep-checkpoints", 1, "--out", os.path.join(work, "r")]
    if lp:
        args.append("--langevin")
    if expl:
        args += ["--exploration", EXPLORATION]
    args += extra
    out = flowrl(FLOWRL, args, name="bench_gfn_diffusion")
    wall = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)
    m = [LINE.match(l.strip()) for l in out.splitlines()]
    m = [x for x in m if x]
    if not m:
        raise SystemExit("bench_gfn_diffusion: no evaluation line from %s %s seed %s" % (target, name, seed))
    g = m[-1]
    for h in m[:-1]:
        log(f"{target} {name} seed {seed}: after {h.group(1)} iterations: log Z_IS {float(h.group(2)):.3f}, "
            f"ELBO {float(h.group(3)):.3f}")
    r = dict(target=target, method=name, seed=seed, wall=wall, traj=f"{iters * batch} ({iters} x {batch})", log_z_is=float(g.group(2)), elbo=float(g.group(3)),
             eubo=float(g.group(4)), dlogz=float(g.group(6)), digest=re.search(r"digest ([0-9a-f]{16})", out).group(1),
             history=[[int(h.group(1)), float(h.group(2)), float(h.group(3))] for h in m[:-1]])
    log(f"{target} {name} seed {seed}: delta log Z {r['dlogz']:.3f} (ELBO {r['elbo']:.3f}, EUBO {r['eubo']:.3f}), "
        f"{wall:.1f} s")
    return r


def table_row(t, name, r):
    """A row of the section from r: traj, d (Delta log Z^RW per seed), elbo, eubo (means), wall."""
    row, adds = METHOD_ROW[name]
    dm, ds, rm, rsd = TABLE1[row][t]
    unlike = f"; unlike: the row adds {adds}" if adds else ""
    d = r["d"]
    mean = sum(d) / len(d)
    tol_rw, tol = tolerance(rm, rsd), tolerance(dm, ds)
    ok = sum(x <= tol_rw for x in d)
    gap = abs(r["elbo"] - LOG_Z[t])
    v_rw = f"{'pass' if mean <= tol_rw else 'FAIL'} ({mean:.3f} {'<=' if mean <= tol_rw else '>'} {tol_rw}; {ok}/{len(d)} seeds{unlike})"
    v = f"{'pass' if gap <= tol else 'FAIL'}"
    return (f"| {t} | {name} | {r['traj']} | " + ", ".join(f"{x:.3f}" for x in d) + f" | {fmt_ci(d, digits=3)} | "
            f"{row}: {rm} ± {rsd} (Delta log Z {dm} ± {ds}) | {tol_rw} | {v_rw} | {r['elbo']:.3f} | {gap:.3f} | {tol} | "
            f"{v} | {r['eubo']:.3f} | {r['wall']:.1f} |")


PUBLIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gfn_diffusion_public.json")
# Every row a run measured, unrounded, with the run that measured it and each seed's evaluations: what --keep reads
# (the section's three-decimal values only for rows measured before this file existed).
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gfn_diffusion.json")


def load_results():
    """RESULTS' rows by (target, method); {} when there is no file yet."""
    if not os.path.exists(RESULTS):
        return {}
    with open(RESULTS) as f:
        return {(r["target"], r["method"]): r for r in json.load(f)["rows"]}


def save_results(rows):
    """Writes RESULTS with rows (by (target, method)), in TARGETS' and METHODS' order."""
    order = [(t, m[0]) for t in TARGETS for m in METHODS]
    out = [rows[k] for k in order if k in rows]
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"format": "flowrl bench_gfn_diffusion results 1", "about": "bench/bench_gfn_diffusion.py: per row "
                   "the last run that measured it; d = Delta log Z^RW per seed, elbo and eubo = means over seeds, wall "
                   "= median seconds per run, history = per seed the evaluations [iteration, log Z_IS, ELBO] before the "
                   "last", "rows": out}, f, indent=1)
        f.write("\n")
    os.replace(tmp, RESULTS)


def public_code_text():
    """The public code's own runs at the LP rows' budget (measured once, committed as PUBLIC; issue 13 asked whether
    the LP rows' misses are the budget or flowrl's networks): a paragraph and a table, or nothing without the file."""
    if not os.path.exists(PUBLIC):
        return []
    with open(PUBLIC) as f:
        pub = json.load(f)
    rows = ["| target | method (public code) | trajectories per run | Delta log Z^RW per seed | mean ± 95% | ELBO per "
            "seed | mean ± 95% | s per run (1 thread) |", "|---|---|---|---|---|---|---|---|"]
    for r in pub["runs"]:
        seeds = sorted(r["seeds"], key=int)
        d = [abs(r["seeds"][s]["log_Z"] - LOG_Z[r["target"]]) for s in seeds]
        e = [r["seeds"][s]["log_Z_lb"] for s in seeds]
        w = sorted(r["seeds"][s]["wall_s"] for s in seeds)[len(seeds) // 2]
        per = [", ".join(f"{x:.3f}" for x in v) for v in (d, e)]
        traj = f"{r['iterations'] * r['batch']} ({r['iterations']} x {r['batch']})"
        rows.append(f"| {r['target']} | {r['method']} | {traj} | {per[0]} | {fmt_ci(d, digits=3)} | {per[1]} "
                    f"| {fmt_ci(e, digits=3)} | {w:.0f} |")
    cmds = "; ".join(f"{r['method']}, {r['iterations']} x {r['batch']}: `{r['command']}`" for r in pub["runs"])
    return ["", f"**The public code at the same budget** (bench/results/gfn_diffusion_public.json, measured "
            f"{pub['measured']} on {pub['machine']}, load average {pub['load']}): {pub['source']} run at the LP rows' "
            f"iterations x batch and at the paper's batch 300 (its seeds are torch's generator's, not flowrl's). {pub['how']} Its log_Z and "
            f"log_Z_lb after the last iteration are the same 2,000-sample estimators as log Z_IS and ELBO above. "
            f"{pub['verdict']}", "", *rows, "", f"Commands (S = 1, 2, 3): {cmds}."]


def previous_rows():
    """The current section's rows by (target, method) with their numbers, and the run they came from."""
    cur = open("BENCHMARKS.md").read()
    m = re.search(r"^<!-- bench_gfn_diffusion begin.*?^<!-- bench_gfn_diffusion end -->", cur, flags=re.S | re.M)
    sec = m.group(0) if m else ""
    traj = re.search(r"= ([\d,]+) trajectories (per run|for the rows)", sec)
    kept = {}
    for l in sec.splitlines():
        c = [x.strip() for x in l.split("|")[1:-1]]
        if len(c) < 9 or c[0] not in TARGETS:
            continue
        if len(c) == 9:  # written before the trajectories and Table 1 columns
            c = [c[0], c[1], traj.group(1).replace(",", "") if traj else "?", c[2], c[3], "", "", "", c[6], "", "",
                 "", c[7], c[8]]
        kept[(c[0], c[1])] = dict(traj=c[2], d=[float(x) for x in c[3].split(",")], elbo=float(c[8]),
                                  eubo=float(c[12]), wall=float(c[13]))
    mm = re.search(r"^Measured (.*?) by `(.*?)` .*? at (.+?) on ", sec, flags=re.M)
    own = f"{mm.group(1)}, `{mm.group(2)}` at {mm.group(3)}" if mm else "an earlier run"
    for k in kept:
        kept[k]["src"] = own
    for prev in re.finditer(r"The rows of (.*?) are the numbers of the section's previous run \((.*?); `--keep`\)", sec):
        # the rows that section itself kept: the run that measured them
        for pair in prev.group(1).split(", "):
            t, _, name = pair.partition(" ")
            if (t, name) in kept:
                kept[(t, name)]["src"] = prev.group(2)
    return kept


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--iterations", type=int, default=0, help="iterations of every run (0: BUDGET's per row)")
    ap.add_argument("--batch", type=int, default=0, help="batch of every run (0: BUDGET's per row)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--targets", default=",".join(TARGETS), help="targets to run ('none': none)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--keep", action="store_true", help="keep the section's rows not run (judged again)")
    a = ap.parse_args()
    targets = [] if a.targets == "none" else a.targets.split(",")
    methods = a.methods.split(",")
    for t in targets:
        if t not in TARGETS:
            raise SystemExit("bench_gfn_diffusion: --targets: unknown %r (expected %s)" % (t, ", ".join(TARGETS)))
    for m in methods:
        if m not in [x[0] for x in METHODS]:
            raise SystemExit("bench_gfn_diffusion: --methods: unknown %r (expected %s)" % (m, ", ".join(x[0] for x in METHODS)))
    seeds = [int(s) for s in a.seeds.split(",")]
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    t_all = time.time()
    items = [(t, m, s, *budget(t, m[0], a.iterations, a.batch)) for t in targets for m in METHODS if m[0] in methods
             for s in seeds]
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, items))
    total = time.time() - t_all
    # read after the runs: another run's rows written meanwhile stay; the results file's unrounded rows over the
    # section's three-decimal ones
    saved = load_results()
    cmd, git = invocation("bench/bench_gfn_diffusion.py"), git_line()  # the section's line and each saved row's
    kept = {**previous_rows(), **saved} if a.keep else {}
    rows = ["| target | method | trajectories per run | Delta log Z^RW per seed | mean ± 95% | Table 1 row | tolerance "
            "(RW) | within (mean; seeds) | ELBO (mean) | Delta log Z = abs(ELBO - log Z) | tolerance | within | EUBO (mean) | "
            "s per run (1 thread) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    kept_pairs = []
    for t in TARGETS:
        for name, *_ in METHODS:
            rs = [r for r in res if r["target"] == t and r["method"] == name]
            if rs:
                r0 = dict(traj=rs[0]["traj"], d=[r["dlogz"] for r in rs],
                          elbo=sum(r["elbo"] for r in rs) / len(rs), eubo=sum(r["eubo"] for r in rs) / len(rs),
                          wall=sorted(r["wall"] for r in rs)[len(rs) // 2])
                saved[(t, name)] = dict(target=t, method=name, **r0, seeds=[r["seed"] for r in rs],
                                        digests=[r["digest"] for r in rs], history=[r["history"] for r in rs],
                                        src=f"{t_start}, `{cmd.strip()}` at {git}")
            elif (t, name) in kept:
                r0 = kept[(t, name)]
                kept_pairs.append((f"{t} {name}", r0["src"]))
            else:
                continue
            rows.append(table_row(t, name, r0))
            log(rows[-1])
    kept_note = "".join(f" The rows of {', '.join(p for p, s in kept_pairs if s == src)} are the numbers of the section's "
                        f"previous run ({src}; `--keep`), judged again against the tolerances below."
                        for src in dict.fromkeys(s for _, s in kept_pairs))
    text = "\n".join([
        "<!-- bench_gfn_diffusion begin (written by bench/bench_gfn_diffusion.py; do not edit by hand) -->",
        "## Diffusion samplers as GFlowNets on 25GMM, Funnel and Manywell (issue 13)", "",
        f"Measured {t_start} by `{cmd.strip()}` (`make bench-gfn-diffusion`) at {git} on {machine_line()} "
        f"(load average {load0} before; {total / 60:.1f} min for its runs). `flowrl train --algo gfn-diffusion "
        "--env gmm25|funnel|manywell --loss tb|tb-avg [--langevin [--langevin-time-scale]] [--exploration 0.2] [--pis-architectures] [--local-search "
        "...]` (docs/algorithms/gfn-diffusion.md) "
        "at the public code's configuration (GFNOrg/gfn-diffusion@255b499 train.py: T 100, t_scale 5 (Manywell: 1, the README's), "
        "hidden 64 x 2, 64 harmonics, fixed "
        "variance, zero_init, clipping, Adam lr 1e-3, lr_flow 1e-1; + Expl. = --exploratory --exploration_wd "
        "--exploration_factor 0.2, the README's: e = 0.2 max(0, 1 - i/5000) at iteration i, utils.py "
        "get_exploration_std) **except the budget**: "
        "iterations x batch per row (the trajectories column), where the paper trains 25,000 "
        f"iterations of batch 300 (7,500,000 trajectories). Seeds "
        f"{a.seeds}; backend opt, one thread per run, {a.jobs} runs at a time. Delta log Z^RW = |log Z_IS - log Z| "
        "(log Z = 0 for 25GMM and Funnel, 164.695675 for Manywell), log Z_IS = logmeanexp(log R + sum log P_B - sum "
        "log P_F) over 2,000 samples of the final sampler (the public code's log_Z, the paper's log Z-hat^RW); ELBO = "
        "the mean of the same weights (the code's log_Z_lb, the paper's log Z-hat); EUBO = their mean over 2,000 "
        "ground-truth samples with tau ~ P_B (a stochastic upper bound). LP = the Langevin-parametrised drift with "
        "flowrl's NN2(x, t), LP(t) with the paper's NN2(t) (--langevin-time-scale); (PIS) = the public code's "
        "--pis_architectures networks (--pis-architectures: a state Linear plus a time MLP of learned-phase features, "
        "three GELU layers of 64, NN2(t) its own 3-layer MLP; 37,958 parameters on 25GMM); LS = the README's local search "
        "(--local-search --buffer-size 600000 --prioritized rank --rank-weight 0.01 --ld-step 0.1 --ld-schedule, "
        "every 100 iterations 200 MALA steps, burn-in 100; odd iterations train on P_B trajectories from its buffer). s per "
        "run: the median wall-clock of a run on this machine as loaded (load average above), not the cost on a "
        "quiet core." + kept_note, "",
        *rows, "",
        "**Tolerances** (docs/algorithms/gfn-diffusion.md §7): Sendera et al., *Improved off-policy training of "
        "diffusion samplers* (NeurIPS 2024; arXiv 2402.05098v4), **Table 1** (log-partition function estimation "
        "errors, mean ± standard deviation over 5 runs), the row named in the table per method: the same method's "
        "(TB, TB + Expl., VarGrad + Expl., TB + Expl. + LP), else the nearest, with what it adds in the verdict "
        "(TB + Expl. + LP(t), TB + Expl. + LP (PIS) and its long and longest -> TB + Expl. + LP, VarGrad + Expl. + LP(t) + LS, "
        "VarGrad + Expl. + LP + LS (PIS), its long and longer and VarGrad + Expl. + LP + LS -> "
        "VarGrad + Expl. + LP + LS; VarGrad + Expl. + LP and VarGrad + Expl. + LP (PIS) long -> \"VarGrad + Expl. + LP + LS\": without the local search; the rows without "
        "exploration of VarGrad, TB + LP and VarGrad + LP -> the table's rows with it). "
        "Tolerance = the row's mean + 2 standard deviations; Delta log Z^RW (flowrl's log Z_IS) against the row's "
        "Delta log Z^RW column, abs(ELBO - log Z) against its Delta log Z column. Verdict: pass when the mean over "
        "seeds is at most the tolerance. The paper's runs are 25,000 iterations of batch 300; these are far "
        "shorter, so a fail here is a budget statement, not a claim about the method. A run's "
        "numbers other than the seconds are a function of its bits (its parameter digest is the same on ref, opt "
        "and cuda-emu).", *public_code_text(),
        "<!-- bench_gfn_diffusion end -->", ""])
    write_section("BENCHMARKS.md", "bench_gfn_diffusion", text)
    if res:
        save_results(saved)


if __name__ == "__main__":
    main()
