#!/usr/bin/env python3
"""make bench-control: the control algorithms of issue 18 (every `flowrl algos --json` row with env_kind
"control") on nav2d's harder setting and on pendulum, 3 seeds (docs/control.md, docs/envs.md §4.1).

1. Demonstrations: `flowrl expert` on nav2d's harder setting (20-step episodes, the expert with action
   noise 1: success about 0.6) and on pendulum (the expert as it is).
2. Behaviour cloning (`flowrl bc`) of a flow and a DDPM policy per seed: success and return of the
   policy from noise (100 episodes): where the fine-tuning starts.
3. RL per algorithm and seed at one budget of environment steps: DPPO from the DDPM policy, FPO and
   ReinFlow from the flow policy, ppo-gaussian (no BC start) from scratch. Each algorithm's own
   evaluation (--eval-episodes episodes, ids from 2^31) at about 5 points: success and return
   against environment steps and wall-clock, mean ± 95% t-interval over seeds; the BC -> RL gain
   (after - before, paired by seed) with its interval; the papers' claim (a fine-tuned flow or
   diffusion policy against Gaussian PPO at the same environment steps) stated as reproduced or
   not, with the numbers.

Runs are cached under WORK (default demo/bench_control): a run whose command is unchanged is read
back, so an interrupted benchmark resumes and a newly merged algorithm costs only its own runs.

    python3 bench/bench_control.py [--quick] [--seeds 1,2,3] [--jobs 2] [--algos a,b] [--report]
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ci95, fmt_ci, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
EVAL = re.compile(r"^eval (before|epoch-\d+|after)\s+\(epoch (\d+)\): env_steps (\d+) return (\S+)(?: success (\S+))?")
BC_EVAL = re.compile(r"^eval: (\d+) episodes, return (\S+), success (\S+) \(demonstrations: return (\S+), success (\S+)\)")
log = logger("bench_control")

# What each control algorithm fine-tunes and the option naming the checkpoint (None: from scratch).
# An algorithm of env_kind control missing here is run from scratch and said so.
ALGOS = {
    "ppo-gaussian": (None, None),
    "dppo": ("ddpm", "--policy"),
    "fpo": ("flow", "--policy"),
    "reinflow": ("flow", "--policy"),
}
# nav2d's harder setting (docs/envs.md §4.1): the environment's options and the expert's noise
NAV = ["--env", "nav2d", "--max-episode-steps", "20"]
NAV_NOISE = 1.0
PEND = ["--env", "pendulum"]
# budgets: env steps of an RL run, BC steps, demonstration episodes, evaluation episodes
FULL = dict(nav_steps=12288, pend_steps=61440, bc_steps=5000, nav_demos=200, pend_demos=50, eval_episodes=100,
            pend_eval_episodes=20, points=5)
QUICK = dict(nav_steps=8192, pend_steps=8192, bc_steps=5000, nav_demos=200, pend_demos=20, eval_episodes=50,
             pend_eval_episodes=10, points=3)
NICE = os.environ.get("NICE", "10")  # the benchmark's niceness (NICE=0 on a machine it has to itself)


def run_cached(work, name, args):
    """flowrl ARGS (nice 10, one thread), stdout kept in WORK/NAME.log with its command; a log
    whose arguments are the same is read back instead (whichever BUILD ran it). Returns (stdout, seconds)."""
    path = os.path.join(work, name + ".log")
    cmd = [FLOWRL] + [str(a) for a in args]
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved["cmd"][1:] == cmd[1:]:  # the arguments; the binary's path (BUILD) aside
            return saved["out"], saved["wall"]
    t0 = time.time()
    p = subprocess.run(["nice", "-n", NICE] + cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise SystemExit("bench_control: `%s` failed (exit %d): %s" % (" ".join(cmd), p.returncode, " | ".join(tail)))
    with open(path + ".tmp", "w") as f:
        json.dump(dict(cmd=cmd, out=p.stdout, wall=wall), f)
    os.replace(path + ".tmp", path)
    return p.stdout, wall


def help_default(algo, flag):
    """The default of --FLAG in `flowrl train --algo ALGO --help` (the last parenthesis of its line)."""
    out = subprocess.run([FLOWRL, "train", "--algo", algo, "--help"], capture_output=True, text=True).stdout
    for l in out.splitlines():
        if l.strip().startswith(flag + " "):
            return int(re.findall(r"\(([^()]*)\)\s*$", l)[0])
    raise SystemExit(f"bench_control: {algo} has no {flag}")


def control_algos(only):
    out = subprocess.run([FLOWRL, "algos", "--json"], capture_output=True, text=True, check=True).stdout
    names = [a["name"] for a in json.loads(out)["algos"] if a.get("env_kind") == "control"]
    return [n for n in names if not only or n in only]


def demos(work, env, episodes, noise):
    name = f"demos_{env[1]}"
    path = os.path.join(work, name + ".safetensors")
    args = ["expert", *env, "--episodes", episodes, "--seed", 42, "--out", path, "--force"]
    if noise:
        args += ["--noise", noise]
    out, _ = run_cached(work, name, args)
    m = re.search(r"success (\S+), return (\S+)", out)
    show = " ".join(str(x) for x in [*env, *(["--noise", f"{noise:g}"] if noise else []), "--episodes", episodes, "--seed", 42])
    return path, dict(succ=float(m.group(1)) if m.group(1) != "n/a" else None, ret=float(m.group(2)), show=show)


def bc(item):
    work, env, path, kind, seed, steps, E = item
    name = f"bc_{env}_{kind}_{seed}"
    ck = os.path.join(work, name + ".safetensors")
    out, wall = run_cached(work, name, ["bc", "--demos", path, "--policy", kind, "--steps", steps, "--seed", seed, "--out",
                                        ck, "--eval-episodes", E, "--backend", "opt", "--threads", 1])
    m = [x for x in (BC_EVAL.match(l.strip()) for l in out.splitlines()) if x][-1]
    log(f"bc {kind} {env} seed {seed}: success {m.group(3)}, return {m.group(2)}, {wall:.0f} s")
    return dict(env=env, kind=kind, seed=seed, ckpt=ck, ret=float(m.group(2)), succ=float(m.group(3)), wall=wall)


def rl(item):
    work, env_args, algo, seed, epochs, every, E, ck = item
    env = env_args[1]
    name = f"rl_{env}_{algo}_{seed}"
    args = ["train", "--algo", algo, *env_args, "--out", os.path.join(work, name), "--force", "--epochs", epochs,
            "--seed", seed, "--eval-every", every, "--eval-episodes", E, "--checkpoint-every", 0, "--keep-checkpoints", 1,
            "--backend", "opt", "--threads", 1]
    kind, flag = ALGOS.get(algo, (None, None))
    if kind:
        args += [flag, ck[(env, kind, seed)]]
    out, wall = run_cached(work, name, args)
    curve = {}
    for l in out.splitlines():
        m = EVAL.match(l.strip())
        if m:
            curve[int(m.group(3))] = (float(m.group(4)), float(m.group(5)) if m.group(5) else None)
    last = max(curve)
    log(f"{algo} {env} seed {seed}: return {curve[last][0]:.3f} success {curve[last][1]} at {last} steps, {wall:.0f} s")
    return dict(env=env, algo=algo, seed=seed, curve=curve, wall=wall, epochs=epochs, cmd=args)


def fmt_int(x):
    m, h = ci95(x)
    return f"{m:+.2f}" if h is None else f"{m:+.2f} ± {h:.2f}"


def curve_table(runs, env, digits):
    """Rows env steps x algorithm: success (nav2d) or return (pendulum), mean ± 95% over seeds."""
    algos = sorted({r["algo"] for r in runs if r["env"] == env}, key=lambda a: list(ALGOS).index(a) if a in ALGOS else 99)
    key = 1 if env == "nav2d" else 0
    head = ["| algorithm (start) | env steps | " + ("success" if key else "return") + " per seed | mean ± 95% | "
            + ("return mean ± 95% | " if key else "") + "wall-clock s (median run, 1 thread) |",
            "|---|---|---|---|" + ("---|" if key else "") + "---|"]
    rows = []
    for a in algos:
        rs = sorted([r for r in runs if r["env"] == env and r["algo"] == a], key=lambda r: r["seed"])
        steps = sorted(set.intersection(*[set(r["curve"]) for r in rs]))
        kind = ALGOS.get(a, (None, None))[0]
        wall = sorted(r["wall"] for r in rs)[len(rs) // 2]
        for s in steps:
            v = [r["curve"][s][key] for r in rs]
            row = f"| {a} ({'BC ' + kind if kind else 'scratch'}) | {s:,} | " + ", ".join(f"{x:.{digits}f}" for x in v)
            row += f" | {fmt_ci(v, digits=digits)} |"
            if key:
                row += f" {fmt_ci([r['curve'][s][0] for r in rs], digits=3)} |"
            # wall-clock at this point: the run's seconds scaled by the share of its epochs
            row += f" {wall * s / max(max(r['curve']) for r in rs):.0f} |" if s else " 0 |"
            rows.append(row)
    return head + rows


def gains(runs, env, key):
    """algorithm -> (per-seed after - before, before values, after values) of the success (key 1) or return (0)."""
    out = {}
    for a in sorted({r["algo"] for r in runs if r["env"] == env}):
        rs = sorted([r for r in runs if r["env"] == env and r["algo"] == a], key=lambda r: r["seed"])
        b = [r["curve"][0][key] for r in rs]
        f = [r["curve"][max(r["curve"])][key] for r in rs]
        out[a] = ([y - x for x, y in zip(b, f)], b, f)
    return out


def report(res, a, cmdline, t_start, load0):
    runs, bcs, dem = res["runs"], res["bc"], res["demos"]
    lines = ["<!-- bench_control begin (written by bench/bench_control.py; do not edit by hand) -->",
             "## Control: DPPO, FPO, ReinFlow and Gaussian PPO on nav2d's harder setting and pendulum (issue 18)", "",
             f"Measured {t_start} by `{cmdline}` (`make bench-control{' QUICK=1' if a.quick else ''}`) at {git_line()} on "
             f"{machine_line()} (load average {load0} before; the machine was shared, so the seconds are only "
             f"indicative). Seeds {a.seeds}; backend opt, one thread per run, nice {res.get('nice', NICE)}, {a.jobs} runs at a "
             f"time. "
             f"Every number but the seconds is a function of the runs' bits (ref = opt; tests/test_ctl.c, "
             f"tests/test_algos.c). Algorithms measured: {', '.join(res['algos'])}"
             + (f"; not registered in this build: {', '.join(x for x in ALGOS if x not in res['algos'])}"
                if any(x not in res["algos"] for x in ALGOS) else "") + "."
             + (f" **Not finished when this section was written** (their rows are missing): {', '.join(res['pending'])}."
                if res.get("pending") else ""), ""]
    nd, pd = dem["nav2d"], dem.get("pendulum")
    lines += [f"**The setting** (docs/envs.md §4.1). nav2d with 20-step episodes (`{' '.join(NAV[2:])}`); the "
              f"demonstrations are `flowrl expert {nd['show']}`: {a.nav_demos} episodes "
              f"of the expert with Gaussian action noise σ = {NAV_NOISE:g}, success {nd['succ']:.3f}, return "
              f"{nd['ret']:.4f} (the noiseless expert: 1.000 in 12.2 steps). Each RL run has {a.nav_steps:,} env steps "
              f"on nav2d" + ("" if a.no_pendulum else f" and {a.pend_steps:,} on pendulum") + " at the algorithm's "
              f"defaults (`flowrl train --algo ALGO --help`), evaluated by the algorithm itself on {a.eval_episodes} "
              f"episodes" + ("" if a.no_pendulum else f" ({a.pend_eval_episodes} on pendulum)") + ": ppo-gaussian the mean "
              f"action, DPPO its deterministic DDPM chain (x_T from noise), FPO sampled actions (as `flowrl bc`), "
              f"ReinFlow the noise-free chain from x_0 = 0. The noise is zero-mean, so an evaluation at the policy's "
              f"mode (ReinFlow's, ppo-gaussian's) does not see most of it.", ""]
    if bcs:
        lines += ["**Behaviour cloning** (`flowrl bc --policy flow|ddpm --steps %d`, evaluated from noise, c0 = 2^32 - 1, on "
                  "100 episodes of nav2d%s): where the fine-tuning starts." % (
                      a.bc_steps, "" if a.no_pendulum else " and %d of pendulum" % a.pend_eval_episodes), "",
                  "| env | policy | success per seed | success mean ± 95% | return mean ± 95% | s per run |",
                  "|---|---|---|---|---|---|"]
        for env in ("nav2d", "pendulum"):
            for kind in ("flow", "ddpm"):
                bk = sorted([b for b in bcs if b["env"] == env and b["kind"] == kind], key=lambda b: b["seed"])
                if bk:
                    lines.append(f"| {env} | {kind} | " + ", ".join(f"{b['succ']:.2f}" for b in bk) + " | "
                                 f"{fmt_ci([b['succ'] for b in bk], digits=3)} | {fmt_ci([b['ret'] for b in bk], digits=3)} | "
                                 f"{sorted(b['wall'] for b in bk)[len(bk) // 2]:.0f} |")
        lines.append("")
    lines += ["### nav2d (harder setting): success against environment steps", "",
              *curve_table(runs, "nav2d", 2), ""]
    g = gains(runs, "nav2d", 1)
    lines += ["**BC -> RL gain on nav2d** (success after the budget minus the run's own evaluation before its first "
              "update, per seed; mean ± 95% t-interval). The issue's bar: +0.15 with the interval above 0 for DPPO and "
              "FPO.", "", "| algorithm | before per seed | after per seed | gain mean ± 95% | bar (+0.15, interval > 0) |",
              "|---|---|---|---|---|"]
    for alg, (d, b, f) in g.items():
        m, h = ci95(d)
        ok = h is not None and m >= 0.15 and m - h > 0
        lines.append(f"| {alg}{' (from scratch)' if not ALGOS.get(alg, (None,))[0] else ''} | "
                     + ", ".join(f"{x:.2f}" for x in b) + " | " + ", ".join(f"{x:.2f}" for x in f)
                     + f" | {fmt_int(d)} | {'met' if ok else 'not met'} |")
    lines.append("")
    # the gain at every evaluation the seeds share: where in the budget the bar is met, and whether it holds
    rows = []
    for alg in sorted({r["algo"] for r in runs if r["env"] == "nav2d"}):
        rs = sorted([r for r in runs if r["env"] == "nav2d" and r["algo"] == alg], key=lambda r: r["seed"])
        if not ALGOS.get(alg, (None,))[0]:
            continue
        for st in sorted(set.intersection(*[set(r["curve"]) for r in rs]) - {0}):
            d = [r["curve"][st][1] - r["curve"][0][1] for r in rs]
            m, h = ci95(d)
            ok = h is not None and m >= 0.15 and m - h > 0
            rows.append(f"| {alg} | {st:,} | " + ", ".join(f"{x:+.2f}" for x in d) + f" | {fmt_int(d)} | "
                        f"{'met' if ok else 'not met'} |")
    if rows:
        lines += ["The same gain at every evaluation of the runs (the evaluations do not change a run's bits, and "
                  "DPPO's, FPO's and ppo-gaussian's updates do not depend on the budget, so the row at S steps is "
                  "what a run of S steps measures; ReinFlow's noise schedule does depend on it):", "",
                  "| algorithm | env steps | gain per seed | gain mean ± 95% | bar |", "|---|---|---|---|---|", *rows, ""]
    if a.no_pendulum:
        lines += ["pendulum: not measured in this run (`--no-pendulum`).", ""]
    elif any(r["env"] == "pendulum" for r in runs):
        lines += ["### pendulum: return against environment steps", "",
                  "200-step episodes, never terminal; a swung-up and balanced pendulum scores about -150 to -200. "
                  + (f"The expert's demonstrations: return {pd['ret']:.1f} ({a.pend_demos} episodes)." if pd else ""), "",
                  *curve_table(runs, "pendulum", 1), ""]
    # the papers' claim in miniature
    lines += ["### The papers' claim in miniature", "",
              "DPPO (Ren et al. 2024) and FPO / ReinFlow report that fine-tuning a pretrained diffusion or flow policy "
              "with their policy gradient beats Gaussian-policy PPO at the same environment steps. Here Gaussian PPO "
              "has no BC start (flowrl's ppo-gaussian trains from scratch), so a verdict here measures the BC start as "
              "much as the policy class, and the evaluations differ as said above. Compared at every common "
              "evaluation after the start, at equal environment steps (per-seed differences paired by seed, mean ± "
              "95%):", ""]
    claim = []
    for env, key, what in (("nav2d", 1, "success"), ("pendulum", 0, "return")):
        base = {r["seed"]: r for r in runs if r["env"] == env and r["algo"] == "ppo-gaussian"}
        for alg in sorted({r["algo"] for r in runs if r["env"] == env and r["algo"] != "ppo-gaussian"}):
            rs = [r for r in runs if r["env"] == env and r["algo"] == alg and r["seed"] in base]
            if not rs:
                continue
            # every evaluation after the start that all of the pairs share: equal environment steps
            common = sorted(set.intersection(*[set(r["curve"]) & set(base[r["seed"]]["curve"]) for r in rs]) - {0})
            for steps in common:
                mine = [r["curve"][steps][key] for r in rs]
                gauss = [base[r["seed"]]["curve"][steps][key] for r in rs]
                d = [x - y for x, y in zip(mine, gauss)]
                m, h = ci95(d)
                verdict = ("reproduced (against Gaussian PPO from scratch)" if h is not None and m - h > 0 else
                           "reversed" if h is not None and m + h < 0 else "not resolved (interval includes 0)")
                claim.append(f"| {env} | {alg} | {steps:,} | {fmt_ci(mine, digits=3)} | {fmt_ci(gauss, digits=3)} | "
                             f"{fmt_ci(d, digits=3)} | {verdict} |")
    if claim:
        lines += [f"| env | algorithm | env steps | its {'success / return'} | ppo-gaussian | difference | claim |",
                  "|---|---|---|---|---|---|---|", *claim, ""]
    else:
        lines += ["No flow or diffusion algorithm was registered in this build: nothing to compare.", ""]
    lines += ["Commands: every run's command and output are in `demo/bench_control/*.log` (JSON: cmd, out, wall); "
              "`python3 bench/bench_control.py --report` rewrites this section from them.",
              "<!-- bench_control end -->", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small budgets (QUICK=1): minutes, not an hour")
    ap.add_argument("--algos", default="", help="only these algorithms (comma-separated)")
    ap.add_argument("--no-pendulum", action="store_true")
    ap.add_argument("--work", default="demo/bench_control")
    ap.add_argument("--report", action="store_true", help="rewrite the section from WORK/results.json")
    for k, v in FULL.items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=None)
    a = ap.parse_args()
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    os.makedirs(a.work, exist_ok=True)
    rpath = os.path.join(a.work, "results.json")
    cmdline = ("python3 bench/bench_control.py " + " ".join(x for x in sys.argv[1:] if x != "--report")).strip()
    if a.report:
        with open(rpath) as f:
            res = json.load(f)
        for r in res["runs"]:
            r["curve"] = {int(k): v for k, v in r["curve"].items()}
        for k, v in res["args"].items():
            setattr(a, k, v)
        write_section("BENCHMARKS.md", "bench_control", report(res, a, res["cmdline"], res["t_start"], res["load0"]))
        return
    seeds = [int(s) for s in a.seeds.split(",")]
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    algos = control_algos(set(a.algos.split(",")) - {""})
    for x in algos:
        if x not in ALGOS:
            log(f"{x}: env_kind control but not in ALGOS: run from scratch")
    envs = [("nav2d", NAV, a.nav_steps)] + ([] if a.no_pendulum else [("pendulum", PEND, a.pend_steps)])
    dem, bc_items = {}, []
    kinds = sorted({ALGOS[x][0] for x in algos if ALGOS.get(x, (None,))[0]})
    for env, args, _ in envs:
        path, dem[env] = demos(a.work, args, a.nav_demos if env == "nav2d" else a.pend_demos,
                               NAV_NOISE if env == "nav2d" else 0)
        bc_items += [(a.work, env, path, k, s, a.bc_steps, 100 if env == "nav2d" else a.pend_eval_episodes)
                     for k in kinds for s in seeds]
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        bcs = list(ex.map(bc, bc_items))
        ck = {(b["env"], b["kind"], b["seed"]): b["ckpt"] for b in bcs}
        items = []
        for env, args, budget in envs:
            for x in algos:
                per = help_default(x, "--n-envs") * help_default(x, "--n-steps")
                epochs = max(1, budget // per)
                every = max(1, epochs // (a.points - 1))
                E = a.eval_episodes if env == "nav2d" else a.pend_eval_episodes
                items += [(a.work, args, x, s, epochs, every, E, ck) for s in seeds]
        # the cheapest algorithms first; the section is rewritten after every finished run with the
        # algorithms whose seeds are all done, so a benchmark stopped early still reports them
        cost = {x: i for i, x in enumerate(["ppo-gaussian", "reinflow", "dppo", "fpo"])}
        items.sort(key=lambda it: (it[1][1] != "nav2d", cost.get(it[2], 9)))
        runs = []
        for fut in cf.as_completed([ex.submit(rl, it) for it in items]):
            runs.append(fut.result())
            done = [r for r in runs if sum(q["algo"] == r["algo"] and q["env"] == r["env"] for q in runs) == len(seeds)]
            pending = sorted({f"{it[2]} on {it[1][1]}" for it in items} - {f"{r['algo']} on {r['env']}" for r in done})
            res = dict(runs=done, bc=bcs, demos=dem, algos=algos, cmdline=cmdline, t_start=t_start, load0=load0,
                       args=vars(a), nice=NICE, pending=pending)
            with open(rpath, "w") as f:
                json.dump(res, f, indent=1)
            write_section("BENCHMARKS.md", "bench_control", report(res, a, cmdline, t_start, load0))


if __name__ == "__main__":
    main()
