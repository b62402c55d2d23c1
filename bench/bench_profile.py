#!/usr/bin/env python3
"""make bench-profile / make bench-gates (issue 15): where an RL epoch's time goes, and the gates'
inputs measured in one invocation. Each configuration is one process of build/bench_profile
(bench/bench_profile.c): the epoch's time (median of EPOCHS epochs after a warm-up, unprofiled), its
profile (every op entry's self time, GEMMs by shape, rewards, audit records, opt's pool waits) and
the GEMM-only bound (each GEMM shape of the epoch timed alone on the same backend and thread count,
times its calls). "1 core" runs pinned to CPU 0 (taskset) with one thread, "2 threads" unpinned.

    python3 bench/bench_profile.py            # the profile of a shapes-s Flow-GRPO epoch (section bench_profile)
    python3 bench/bench_profile.py --gates    # shapes-s, shapes-m and AWM at 1 core and 2 threads (bench_gates)
    python3 bench/bench_profile.py --gates --no-write   # the same, the section printed, BENCHMARKS.md untouched

The gate (issue 15): the epoch at >= 70% of its GEMM-only bound, read interleaved: the process
also runs PAIRS more epochs, each followed at once by a replay of the epoch's GEMM calls alone (the
shapes and calls the bound counts), and the gate's reading is the median of the pairs' ratios
(replay / epoch), with their interquartile range. Why: the epoch and the bound used to be timed
only seconds apart, one after the other, and this shared VM's speed drifts between them, so one
process's ratio moved by +-15 points; a pair's two halves run a fraction of a second apart, so a
slow spell lands on both and cancels in their ratio. The separately timed ratio is still reported
beside it. shapes-m trains from a one-step
pretrain of the preset (timing only) scored by tests/reward_progs/mock_reward.py, a reward program
whose scores differ per sample (the task's detector scores an untrained model's samples all 0, and
Flow-GRPO then trains nothing); its cost is in the profile's rewards row."""
import argparse
import resource
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import git_line, loadavg, logger, machine_line, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
log = logger("bench_profile")
MOCK = ["--", "--reward", "cmd:python3 " + os.path.join(ROOT, "tests", "reward_progs", "mock_reward.py") + " ok"]


def configs(gates, ckpt):
    s = ("shapes-s Flow-GRPO", ["--algo", "flow-grpo", "--base", ckpt])
    if not gates:
        return [s]
    return [s,
            ("shapes-m Flow-GRPO", ["--algo", "flow-grpo", "--preset", "shapes-m"] + MOCK),
            ("shapes-s AWM", ["--algo", "awm", "--base", ckpt])]


# A row's reading counts as a quiet machine's when the other processes used less than this many
# cores on average while it ran (its own threads, spinning pool workers included, are not counted).
QUIET_OTHERS = 0.10


def cpu_jiffies():
    """(busy, steal) jiffies over every CPU since boot (/proc/stat's cpu line: user nice system
    idle iowait irq softirq steal ...)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7] if len(v) > 7 else 0


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(name, args, threads, epochs, pairs, work):
    js = os.path.join(work, f"{len(os.listdir(work))}.json")
    cmd = [os.path.join(BUILD, "bench_profile"), "--threads", str(threads), "--epochs", str(epochs),
           "--pairs", str(pairs), "--json", js,
           "--title", f"{name}, {'1 core' if threads == 1 else '2 threads'}"]
    pre = ["taskset", "-c", "0"] if threads == 1 else []
    # the training options after "--" stay last
    extra = args[args.index("--"):] if "--" in args else []
    base = args[:args.index("--")] if "--" in args else args
    t0, (busy0, steal0), own0 = time.time(), cpu_jiffies(), children_cpu()
    r = subprocess.run(pre + cmd + base + extra, capture_output=True, text=True)
    (busy1, steal1), own1, wall = cpu_jiffies(), children_cpu(), time.time() - t0
    if r.returncode:
        raise SystemExit(f"bench_profile: {' '.join(cmd + base + extra)} failed: "
                         f"{(r.stderr or r.stdout).strip().splitlines()[-3:]}")
    with open(js) as f:
        res = json.load(f)
    res["markdown"] = r.stdout
    res["name"], res["wall"] = name, wall
    hz = os.sysconf("SC_CLK_TCK")
    # the other processes' CPU, in cores on average over the row: every CPU's busy time less the row's own
    res["others_cores"] = max(0.0, ((busy1 - busy0) / hz - (own1 - own0)) / wall)
    res["steal_cores"] = (steal1 - steal0) / hz / wall
    log(f"{name} {threads}t: epoch {res['epoch_s']:.3f} s, GEMM-only bound {res['gemm_bound_s']:.3f} s "
        f"({100 * old_ratio(res):.0f}%), interleaved {100 * ratio(res):.0f}%, {res['wall']:.0f} s, "
        f"others {res['others_cores']:.2f} cores, steal {res['steal_cores']:.2f}")
    return res


def old_ratio(r):
    """The separately timed ratio: the bound over the median epoch, timed seconds apart."""
    return r["gemm_bound_s"] / r["epoch_s"]


def ratio(r):
    """The gate's reading: the median of the interleaved pairs' ratios (the old one with --pairs 0)."""
    return r["pairs"]["median"] if "pairs" in r else old_ratio(r)


def median_round(rs):
    """The process of the median ratio (the lower middle for an even count), with every round's ratio."""
    pick = dict(sorted(rs, key=ratio)[(len(rs) - 1) // 2])
    pick["round_pcts"] = [100 * ratio(r) for r in rs]
    pick["round_old_pcts"] = [100 * old_ratio(r) for r in rs]
    pick["round_others"] = [r["others_cores"] for r in rs]
    return pick


def top_rows(res, n=4):
    """The n largest non-GEMM rows of the profile, as 'name share%'."""
    rows = sorted((r for r in res["rows"] if r["group"] != "GEMM"), key=lambda r: -r["seconds"])[:n]
    return ", ".join(f"{r['what']} {100 * r['seconds'] / res['window_s']:.0f}%" for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gates", action="store_true", help="shapes-s, shapes-m and AWM at 1 core and 2 threads")
    ap.add_argument("--ckpt", default="demo/shapes_base.safetensors")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=15,
                    help="interleaved (epoch, GEMM replay) pairs per process, the gate's reading (0: none, the "
                         "separately timed ratio is the reading)")
    ap.add_argument("--no-write", action="store_true", help=f"print the section instead of writing {OUT}")
    ap.add_argument("--rounds", type=int, default=None,
                    help="processes per row, run round-robin over the rows; each row reports the process of the "
                         "median ratio (default: 5 with --gates, 1 without)")
    a = ap.parse_args()
    if a.rounds is None:
        a.rounds = 5 if a.gates else 1
    if a.rounds < 1:
        raise SystemExit("bench_profile: --rounds must be at least 1")
    if not 0 <= a.pairs < 64:
        raise SystemExit("bench_profile: --pairs must be in 0..63")
    os.chdir(ROOT)
    if not os.path.exists(a.ckpt):
        raise SystemExit(f"bench_profile: {a.ckpt} not found (make demo writes it, or `flowrl pretrain --task shapes`)")
    if not shutil.which("taskset"):
        raise SystemExit("bench_profile: taskset (util-linux) not found: the 1-core rows pin to CPU 0 with it")
    work = tempfile.mkdtemp(prefix="bench_profile.")
    load0, t0 = loadavg(), time.time()
    try:
        rows = [(name, args, th) for name, args in configs(a.gates, a.ckpt) for th in (1, 2)]
        # round-robin: a slow spell of the (shared) machine lands on every row, not on one
        rounds = [[run(name, args, th, a.epochs, a.pairs, work) for name, args, th in rows] for _ in range(a.rounds)]
        res = [median_round([rd[i] for rd in rounds]) for i in range(len(rows))]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1, minutes = loadavg(), (time.time() - t0) / 60
    cmd = "python3 bench/bench_profile.py" + (" --gates" if a.gates else "") + f" --epochs {a.epochs}" + \
        f" --pairs {a.pairs}" + (f" --rounds {a.rounds}" if a.rounds > 1 else "")
    head = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{cmd}` "
            f"(`make bench-{'gates' if a.gates else 'profile'}`) at {git_line()} on {machine_line()}; load average "
            f"{load0} before, {load1} after ({minutes:.1f} min){'' if float(str(load0).split()[0]) < 1.5 else ': the machine was under load, so the wall-clock numbers are not a quiet machine’s'}. "
            "Each row is one process of `build/bench_profile` (bench/bench_profile.c): canonical opt, 1 core = "
            "pinned to CPU 0 with one thread, 2 threads = unpinned; the epoch is the median of "
            f"{a.epochs} unprofiled epochs after a warm-up epoch (`flowrl train` defaults, eval off, no checkpoints); "
            "the GEMM-only bound is every GEMM call of a profiled epoch at the speed of its shape timed alone in "
            "the same process (its GEMM FLOPs at the GEMM rate measured in the same run); a GEMM whose B lay "
            "in a frozen range (the rollout's weights, flowrl/ops.h freeze: opt packs them once per rollout, "
            "rows \"B frozen\") is timed alone the same way, its B frozen, packed by the untimed first call." +
            (f" Interleaved (the gate's reading): after those, the process runs 1 + {a.pairs} more "
             "epochs and after each one replays the profiled epoch's GEMM calls alone (each shape one untimed call, "
             "then its calls back to back, timed: the bound's shapes and calls); the first pair warms up, each of "
             f"the {a.pairs} others gives a ratio replay / epoch, and the reading is their median (interquartile "
             "range beside it). The epoch and the bound timed separately run seconds apart and the VM's speed "
             "drifts between them (one process's ratio moved by +-15 points from round to round in the 5-round runs of 2026-12-07); a "
             "pair's halves run a fraction of a second apart, so a drift lands on both and cancels in their ratio. "
             "The separately timed ratio stays in its column." if a.pairs else "") +
            (f" {a.rounds} rounds: each row ran {a.rounds} times, the rows taken in turn; a row reports the process "
             "whose gate reading is the median of its rounds (every round's readings in the last columns)."
             if a.rounds > 1 else ""))

    def emit(marker, text):
        if a.no_write:
            sys.stdout.write(text)
        else:
            write_section(OUT, marker, text)
            log(f"wrote the section of {OUT}")
    if not a.gates:
        L = ["<!-- bench_profile begin (written by bench/bench_profile.py; do not edit by hand) -->",
             "## Where a Flow-GRPO epoch's time goes (issue 15)", "", head, "",
             "Self times of one profiled epoch (flowrl/profile.h: a timing table over the op table, installed "
             "only when asked: `FLOWRL_PROFILE=FILE flowrl train ...` writes the same table for a whole run). "
             "Groups first, then every entry; \"other host code\" is the epoch less every op entry and region "
             "(the model's and the algorithm's C between ops, allocation on the host, metrics).", ""]
        for r in res:
            L += [r["markdown"].rstrip(), ""]
        L.append("<!-- bench_profile end -->")
        emit("bench_profile", "\n".join(L) + "\n")
    else:
        L = ["<!-- bench_gates begin (written by bench/bench_profile.py --gates; do not edit by hand) -->",
             "## Gates: the epoch against its GEMM-only bound (issue 15)", "", head, "",
             "| epoch | threads | epoch s | GEMM GFLOP | GEMMs alone s | GEMM rate GFLOP/s | % of the GEMM-only bound, "
             "interleaved pairs: median (IQR) (gate >= 70%) | the same in CPU time | timed separately: % of the bound "
             "| timed separately in CPU time: epoch s, % | GEMMs inside the epoch s | largest other rows (share of "
             "the profiled epoch) | other processes' CPU, cores (the reported round; steal) | every round's %: "
             "interleaved | every round's %: timed separately |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        def verdict(pct, reading=True):
            return (("(met)" if pct >= 70 else "(**missed**)") if reading else "(under load: no verdict)")
        for r in res:
            quiet = r["others_cores"] < QUIET_OTHERS
            pct = 100 * old_ratio(r)
            cpct = 100 * r["gemm_bound_cpu_s"] / r["epoch_cpu_s"]
            one = r["threads"] == 1
            if "pairs" in r:
                p = r["pairs"]
                ppct, pcpct = 100 * p["median"], 100 * p["cpu_median"]
                gate = (f"{ppct:.1f}% ({100 * p['q1']:.0f}-{100 * p['q3']:.0f}) {verdict(ppct, quiet)}",
                        f"{pcpct:.1f}% ({100 * p['cpu_q1']:.0f}-{100 * p['cpu_q3']:.0f})"
                        f"{' ' + verdict(pcpct) if one else ''}")
                old = (f"{pct:.0f}%", f"{r['epoch_cpu_s']:.3f}, {cpct:.0f}%")
            else:
                gate = ("-", "-")
                old = (f"{pct:.0f}% {verdict(pct, quiet)}", f"{r['epoch_cpu_s']:.3f}, {cpct:.0f}%"
                       f"{' ' + verdict(cpct) if one else ''}")
            L.append(f"| {r['name']} | {'1 core' if one else '2 threads'} | {r['epoch_s']:.3f} | "
                     f"{r['gemm_flops'] / 1e9:.2f} | {r['gemm_bound_s']:.3f} | "
                     f"{r['gemm_flops'] / 1e9 / r['gemm_bound_s']:.1f} | {gate[0]} | {gate[1]} | {old[0]} | {old[1]} | "
                     f"{r['gemm_in_epoch_s']:.3f} | {top_rows(r)} | {r['others_cores']:.2f} ({r['steal_cores']:.2f}) | "
                     f"{', '.join(f'{p:.0f}' for p in r['round_pcts']) if 'pairs' in r else '-'} | "
                     f"{', '.join(f'{p:.0f}' for p in r['round_old_pcts'])} |")
        L += ["", "The verdict is the interleaved reading's (the separately timed one's with --pairs 0). CPU time: the "
              "process's, all threads (spinning workers included); at 1 core it is what the epoch "
              "and its GEMMs cost on a loaded machine, so its percentage is the gate's reading under load. The wall-clock verdicts "
              f"are given only for a row whose reported process ran while the other processes used less than {QUIET_OTHERS:.2f} "
              "of a core on average (every CPU's busy time in /proc/stat over the process's run, less the process's own CPU "
              "time, spinning pool workers included; steal, the hypervisor's, beside it): the load average, the rule "
              "before 2026-12-07 22:00, counts the bench's own threads (a 2-thread row leaves it near 1.5 by itself). The 1-core "
              "profiles are in CPU time, the 2-thread ones in wall time.", "",
              "The ratio to the faster of PyTorch and JAX at each thread count is `make bench-peers`' "
              "(its section); the profile of each row: `make bench-profile` (shapes-s) or `build/bench_profile` "
              "with the row's options.", "<!-- bench_gates end -->"]
        emit("bench_gates", "\n".join(L) + "\n")


if __name__ == "__main__":
    main()
