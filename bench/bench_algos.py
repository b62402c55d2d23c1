#!/usr/bin/env python3
"""The bake-off (issue 10): every registered algorithm, the same base, prompts, reward and seeds,
the same tuning budget and the same budget of model evaluations; `make bench-algos` runs it.

For each task (shapes with the geneval reward, gmm2d with the mode reward) and each algorithm
that `flowrl algos` lists, from the task's base, or for an algorithm whose base_pred is epsilon
(`flowrl algos --json`: DDPO, D3PO, SPO, ...) from the task's epsilon base (the same pretraining,
--pred epsilon, with today's defaults of `flowrl pretrain`: a cached base whose metadata differs from a
one-step pretrain's is pretrained again), against which its gains are then measured:
  1. probe   one epoch at the algorithm's defaults: forward-equivalents (FE) per epoch from the run's
             own counters (metrics.jsonl nfe.forward_rows + 2 x nfe.backward_rows), which fixes the
             epochs that spend the budget, and the algorithm's default KL weight (config.json beta);
  2. tune    the grid lr in LRS x KL weight in {default, KL_MULT x default} on the tuning seed
             (TUNE_SEED, never used below) for TUNE_FRAC of the budget; the configuration with the
             best train accuracy whose samples did not collapse (diversity >= half the base's) wins,
             ties to the earlier grid point;
  3. runs    the winner on SEEDS for the whole budget, a checkpoint every 1/CURVE_POINTS of it, each
             evaluated on the train prompts; the last one also on the held-out prompts, for the
             diversity of its samples and for its KL to the base (flowrl eval --kl-ref).
An algorithm that reads a preference file (`flowrl algos --json` prefs "required": Diffusion-DPO,
Diffusion-DRO; "optional": Flow-DPO, which also has its online row) has offline rows: the file made
once per task and base by `flowrl prefs make` (prefs_pairs pairs labelled by the task's reward, seed 0),
the same three phases with the budget counted in pairs trained on (the runs' metrics.jsonl `pairs`:
epochs = pair_budget / pairs per epoch), the model evaluations they took reported beside.
Every evaluation scores with the task's reward (flowrl eval --reward), the one that labels the files.
Every number in the tables is a function of the runs' bits (bit-reproducible on any machine), except
the columns marked wall-clock. Runs go JOBS at a time, each on one thread.

Writes its section of BENCHMARKS.md (between the bench_algos markers), the plots
docs/img/bench_algos_<task>.svg, and WORK/results.json (every measured number), then merges that over
bench/results/bench_algos.json.gz (in the repository; the rows of earlier invocations it did not
re-measure kept) and writes the section from the merged numbers (STORE=0: neither; QUICK=1 never).
Environment (defaults): BUILD (build), WORK (demo/bench_algos-<time>), OUT (BENCHMARKS.md),
JOBS (nproc), SEEDS (1 2 3), QUICK=1 (a smoke-sized budget, for testing the script itself),
ALGOS ("dance-grpo mix-grpo": only these), TASKS ("gmm2d": only these), MODES ("prefs": only the
offline rows; "online prefs"), MERGE (earlier WORK/results.json
files, later over earlier, whose other algorithms' rows join the table: same bases, same protocol; a
row measured against another base stops the merge).
`bench/bench_algos.py --merge OUT.json A/results.json B/results.json ...` writes their rows merged the
same way (for invocations that ran side by side); --report OUT.json then writes the section.
`bench/bench_algos.py --compare A/results.json B/results.json` checks that two bake-offs measured the
same numbers (every key but the wall-clock ones): the table reproduces bit for bit.
`bench/bench_algos.py --report [WORK/results.json [WORK2/results.json]]` (default: the repository's) rewrites the section and plots
from a finished run (with a second run's results: and says whether the two measured the same).
"""
import concurrent.futures as cf
import datetime
import gzip
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ckpt_meta, config, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, make_prefs, metrics,  # noqa: E402
                      write_section)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The bake-off's merged numbers, in the repository: every invocation merges its rows over it and writes it back, so
# no row of the table depends on a git-ignored run directory (rows were lost that way once).
STORE = "bench/results/bench_algos.json.gz"
BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
WORK = os.environ.get("WORK", "demo/bench_algos-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S"))
JOBS = int(os.environ.get("JOBS", str(os.cpu_count() or 1)))
SEEDS = [int(s) for s in os.environ.get("SEEDS", "1 2 3").split()]
QUICK = os.environ.get("QUICK", "") == "1"

TUNE_SEED = 0
LRS = [1e-4, 3e-4]
KL_MULT = 25  # the second KL weight of the grid: 25 x the algorithm's default (Flow-GRPO: 0.04 -> 1)
TUNE_FRAC = 1 / 3
CURVE_POINTS = 10
EVAL_N = 16  # samples per prompt of every evaluation (ODE 40 steps, flowrl eval's fixed seeds)
THRESHOLDS = [10, 20]  # train-accuracy points over the base

# task -> base checkpoint, the epsilon-prediction base of the algorithms whose fr_algo.base_pred is epsilon (the
# same pretraining with --pred epsilon), how to pretrain them, reward, P x G, budget in forward-equivalents
TASKS = {
    "shapes": dict(base="demo/shapes_base.safetensors", eps_base="demo/shapes_eps_base.safetensors",
                   pretrain=["--max-train-steps", "10000"], reward="geneval", P=8, G=16, budget=2_000_000, heldout=True,
                   prefs_pairs=1024, pair_budget=8192),
    # an under-trained base (100 pretraining steps: 40% of its samples near their prompt's mode), so the mode
    # reward has room to grow; a finished base is at 98%, and on the halfplane reward every sample of a prompt
    # scores alike (each mode lies wholly on one side), leaving group-relative advantages nothing to rank
    "gmm2d": dict(base="demo/gmm2d_base100.safetensors", eps_base="demo/gmm2d_eps_base100.safetensors",
                  pretrain=["--max-train-steps", "100"], reward="mode", P=8, G=16, budget=300_000, heldout=False,
                  prefs_pairs=512, pair_budget=4096),
}
MODES = os.environ.get("MODES", "online prefs").split()  # the rows measured: online, offline from a file (prefs)
if os.environ.get("TASKS"):
    # the tasks this invocation measures; TASKS keeps every task, whose rows the report writes (STORE)
    RUN_TASKS = [k for k in TASKS if k in os.environ["TASKS"].split()]
else:
    RUN_TASKS = list(TASKS)
if QUICK:
    for t in TASKS.values():
        t["budget"] //= 40
        t["pair_budget"] //= 40
        t["prefs_pairs"] //= 8
    SEEDS = SEEDS[:2]

log = logger("bench_algos")
PRED = {}  # algorithm -> the prediction of the base it trains (flowrl algos --json base_pred)
PREFS = {}  # algorithm -> "required" or "optional" where it reads a preference file (flowrl algos --json prefs)
# The reward-gradient algorithms (docs/algorithms/draft.md) need a differentiable reward: gmm2d's mode has
# one, shapes' geneval does not (the frozen "is circle" classifier of spec more.md §1.5 is not built), so
# they are measured on gmm2d only.
NEEDS_REWARD_GRAD = {"draft", "alignprop", "refl"}
NO_REWARD_GRAD_TASKS = {"shapes"}


def base_of(task, algo):
    """The base checkpoint an algorithm starts from: the task's epsilon base for epsilon-prediction algorithms."""
    return TASKS[task]["eps_base" if PRED.get(algo) == "epsilon" else "base"]


def base_key(algo):
    """The key of results.json's base measures an algorithm compares with."""
    return "eps_base" if PRED.get(algo) == "epsilon" else "base"


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_algos")


def fe(m):
    """Forward-equivalents of one epoch's metrics line."""
    return m["nfe.forward_rows"] + 2 * m["nfe.backward_rows"]


def evaluate(ckpt, task, split, kl_ref=None):
    """flowrl eval --json: accuracy, mean score, diversity (and KL to kl_ref; flowrl eval measures it on the SDE path
    of velocity models only, so an epsilon model gets none)."""
    if kl_ref and base_meta_cached(kl_ref).get("model.pred") == "epsilon":
        kl_ref = None
    t = TASKS[task]
    args = ["eval", "--ckpt", ckpt, "--task", task, "--split", split, "--n", EVAL_N, "--reward", t["reward"],
            "--json", "--threads", 1, "--backend", "opt"]
    if kl_ref:
        args += ["--kl-ref", kl_ref]
    o = json.loads(sh(args))["overall"]
    r = dict(accuracy=o["correct"] / o["samples"], score=o["mean_score"], diversity=o["diversity"])
    if kl_ref:
        r["kl"] = o["kl"]
    return r


def train(task, algo, rundir, epochs, seed, extra, ckpt_every=0):
    t = TASKS[task]
    args = ["train", "--algo", algo, "--task", task, "--base", base_of(task, algo), "--reward", t["reward"], "--out", rundir,
            "--epochs", epochs, "--seed", seed, "--prompts-per-epoch", t["P"], "--group-size", t["G"],
            "--eval-n", 0, "--checkpoint-every", ckpt_every, "--keep-checkpoints", 0, "--log-every", 100,
            "--backend", "opt", "--threads", 1, "--force"] + extra
    sh(args, out=rundir + ".log")


def grid_flags(lr, beta):
    return ["--lr", "%g" % lr, "--beta", "%g" % beta]


def pool_map(fn, items):
    """fn over items, JOBS at a time, results in the items' order."""
    with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
        return list(ex.map(fn, items))


def fmt_big(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def fmt_count(xs):
    """A count over the seeds: one value where they agree, else its mean ± 95% in thousands."""
    return fmt_big(xs[0]) if min(xs) == max(xs) else f"{fmt_ci(xs, 1e-3, 0)}k"


# ---- the phases ------------------------------------------------------------------------------------
def base_meta(path):
    return ckpt_meta(FLOWRL, path, name="bench_algos")


_META = {}


def base_meta_cached(path):
    if path not in _META:
        _META[path] = base_meta(path)
    return _META[path]


# the metadata keys a pretrain's length (or its random draws) sets: every other key is what the defaults decide
LENGTH_KEYS = {"step", "optim.step", "pretrain.steps", "pretrain.warmup", "pretrain.loss"}


def pretrain(task, key, path, steps=None):
    """flowrl pretrain of the task's base KEY into PATH with the current defaults (steps: a shorter run)."""
    t = TASKS[task]
    args = list(t["pretrain"])
    if steps is not None:
        args[args.index("--max-train-steps") + 1] = str(steps)
    sh(["pretrain", "--task", task, "--out", path, "--pred", "epsilon" if key == "eps_base" else "velocity",
        "--backend", "opt", "--threads", 1, "--progress", "off", "--force"] + args)


def ensure_base(task, key="base"):
    """Reuses a cached base only if it is this task's finished pretrain of the configured length and prediction
    (key "base": velocity, "eps_base": the same pretraining with --pred epsilon) whose metadata equals, but for
    LENGTH_KEYS, a one-step pretrain's of today's flowrl: a base from older defaults (epsilon: the x0 head, the
    Min-SNR-5 weighting on shapes) is pretrained again. Returns the base's pretraining keys (model.head,
    pretrain.eps_weight, pretrain.snr_gamma, ...) for the report."""
    t = TASKS[task]
    path, pred = t[key], "epsilon" if key == "eps_base" else "velocity"
    steps = t["pretrain"][t["pretrain"].index("--max-train-steps") + 1]
    _META.pop(path, None)
    probe_path = os.path.join(WORK, task, f"defaults-{key}.safetensors")
    pretrain(task, key, probe_path, steps=1)
    want = {k: v for k, v in base_meta(probe_path).items() if k not in LENGTH_KEYS}
    if os.path.exists(path):
        m = base_meta(path)
        stale = sorted(k for k in set(want) | set(m) if k not in LENGTH_KEYS and m.get(k) != want.get(k))
        if m.get("step") == steps and m.get("pretrain.steps") == steps and not stale:
            return want
        log(f"{path} is not {task}'s {steps}-step {pred} pretrain with today's defaults (step {m.get('step')}; "
            f"differs at {', '.join(f'{k} {m.get(k)} (now {want.get(k)})' for k in stale) or 'its length'}): replacing it")
    log(f"pretraining {path}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pretrain(task, key, path + ".tmp")
    os.replace(path + ".tmp", path)
    return want


def prefs_file(task, algo):
    """The task's preference file of the algorithm's base (one per base prediction, made once per bake-off)."""
    return os.path.join(WORK, task, f"prefs-{PRED.get(algo, 'velocity')}.safetensors")


def mode_flags(task, algo, mode):
    """An offline run ("prefs") reads the preference file of its base; an online one samples its own pairs."""
    return ["--prefs", prefs_file(task, algo)] if mode == "prefs" else []


def run_name(algo, mode):
    return algo if mode == "online" else "prefs-" + algo


def probe(key):
    task, algo, mode = key
    d = os.path.join(WORK, task, "probe-" + run_name(algo, mode))
    train(task, algo, d, 1, TUNE_SEED, mode_flags(task, algo, mode))
    m = metrics(d)[0]
    p = dict(fe_epoch=fe(m), beta=config(d)["beta"], lr=config(d)["lr"])
    if mode == "prefs":
        p["pairs_epoch"] = m["pairs"]
    return p


def tune_run(item):
    task, algo, mode, lr, beta, epochs = item
    d = os.path.join(WORK, task, f"tune-{run_name(algo, mode)}-lr{lr:g}-beta{beta:g}")
    train(task, algo, d, epochs, TUNE_SEED, grid_flags(lr, beta) + mode_flags(task, algo, mode))
    ck = os.path.join(d, "checkpoints", f"step-{epochs}.safetensors")
    return dict(lr=lr, beta=beta, **evaluate(ck, task, "train"))


def final_run(item):
    task, algo, mode, lr, beta, epochs, seed = item
    d = os.path.join(WORK, task, f"run-{run_name(algo, mode)}-seed{seed}")
    every = max(1, epochs // CURVE_POINTS)
    train(task, algo, d, epochs, seed, grid_flags(lr, beta) + mode_flags(task, algo, mode), ckpt_every=every)
    ms = metrics(d)
    cum = {k: [] for k in ("fe", "steps", "seconds", "pairs")}
    acc = dict.fromkeys(cum, 0.0)
    for m in ms:
        for k, v in (("fe", fe(m)), ("steps", m["updates"]), ("seconds", m["seconds"]), ("pairs", m.get("pairs", 0))):
            acc[k] += v
            cum[k].append(acc[k])
    curve = []
    for e in sorted({min(k * every, epochs) for k in range(1, CURVE_POINTS + 1)} | {epochs}):
        ck = os.path.join(d, "checkpoints", f"step-{e}.safetensors")
        ev = evaluate(ck, task, "train", kl_ref=base_of(task, algo) if e == epochs else None)
        c = dict(epoch=e, fe=cum["fe"][e - 1], steps=cum["steps"][e - 1], seconds=cum["seconds"][e - 1])
        if mode == "prefs":
            c["pairs"] = cum["pairs"][e - 1]
        curve.append(dict(c, **ev))
    res = dict(seed=seed, curve=curve, final_train=curve[-1], epoch_seconds=[m["seconds"] for m in ms[1:]])
    if TASKS[task]["heldout"]:
        res["final_heldout"] = evaluate(os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"), task, "eval")
    return res


# results.json: a task's rows of the online algorithms (a budget of model evaluations) and of the offline ones
# (from a preference file, a budget of pairs)
ROWS = dict(online="algos", prefs="prefs_algos")


def bake_off(task, algos):
    t = TASKS[task]
    out = dict(algos={})
    # both bases, whatever ALGOS measures: MERGE's rows of the other prediction are measured against it too
    for key in ("base", "eps_base"):
        out[key] = dict(pretrain=ensure_base(task, key), train=evaluate(t[key], task, "train", kl_ref=t[key]))
        if t["heldout"]:
            out[key]["heldout"] = evaluate(t[key], task, "eval")
    keys = [(task, a, "online") for a in algos if PREFS.get(a) != "required" and "online" in MODES]
    keys += [(task, a, "prefs") for a in algos if PREFS.get(a) and "prefs" in MODES]
    if any(m == "prefs" for _, _, m in keys):
        out["prefs"], out["pair_budget"] = {}, t["pair_budget"]
        for a in dict.fromkeys(a for _, a, m in keys if m == "prefs"):
            if PRED.get(a, "velocity") not in out["prefs"]:
                log(f"{task}: {t['prefs_pairs']} preference pairs from {base_of(task, a)}")
                f = make_prefs(FLOWRL, base_of(task, a), task, t["prefs_pairs"], t["reward"], prefs_file(task, a),
                               name="bench_algos")
                if f["reward"] != t["reward"]:  # the file's labels and every evaluation: the bake-off's reward
                    raise SystemExit(f"bench_algos: {prefs_file(task, a)} is labelled by {f['reward']}, not {t['reward']}")
                out["prefs"][PRED.get(a, "velocity")] = f
    probes = dict(zip(keys, pool_map(probe, keys)))
    tune_items, finals = [], []
    for k in keys:
        _, a, mode = k
        p = probes[k]
        if mode == "online":  # the whole epochs that spend the budget of model evaluations
            p["epochs"] = max(1, round(t["budget"] / p["fe_epoch"]))
            p["tune_epochs"] = max(1, round(t["budget"] * TUNE_FRAC / p["fe_epoch"]))
        else:  # ... of pairs
            p["epochs"] = max(1, round(t["pair_budget"] / p["pairs_epoch"]))
            p["tune_epochs"] = max(1, round(t["pair_budget"] * TUNE_FRAC / p["pairs_epoch"]))
        # (an algorithm without a KL term, default beta 0, has one grid point per lr)
        p["grid"] = list(dict.fromkeys((lr, beta) for lr in LRS for beta in (p["beta"], KL_MULT * p["beta"])))
        tune_items += [(task, a, mode, lr, beta, p["tune_epochs"]) for lr, beta in p["grid"]]
    log(f"{task}: tuning {len(tune_items)} runs")
    tuned = pool_map(tune_run, tune_items)
    for k in keys:
        _, a, mode = k
        p = probes[k]
        grid = [r for (_, aa, mm, *_), r in zip(tune_items, tuned) if (aa, mm) == (a, mode)]
        ok = [r for r in grid if r["diversity"] >= 0.5 * out[base_key(a)]["train"]["diversity"]] or grid
        best = max(ok, key=lambda r: r["accuracy"])  # max keeps the first of equals: grid order
        out.setdefault(ROWS[mode], {})[a] = dict(probe=p, grid=grid, chosen=dict(lr=best["lr"], beta=best["beta"]),
                                                 base_pred=PRED.get(a, "velocity"))
        finals += [(task, a, mode, best["lr"], best["beta"], p["epochs"], s) for s in SEEDS]
    log(f"{task}: {len(finals)} runs of the whole budget")
    runs = pool_map(final_run, finals)
    for (_, a, mode, *_), r in zip(finals, runs):
        out[ROWS[mode]][a].setdefault("runs", []).append(r)
    return out


# ---- the report ------------------------------------------------------------------------------------
def reach(run, base_acc, pts):
    """The first curve point at least pts accuracy points over the base, or None."""
    for c in run["curve"]:
        if c["accuracy"] >= base_acc + pts / 100 - 1e-12:
            return c
    return None


def own_base(res, row):
    """The base measures a row of res compares with: the epsilon base's for an epsilon-prediction algorithm
    (results.json records base_pred; rows of earlier bake-offs without it trained the velocity base)."""
    return res["eps_base" if row.get("base_pred") == "epsilon" else "base"]


def verdicts(run, base_div):
    curve = run["curve"]
    two_thirds = min(curve, key=lambda c: abs(c["epoch"] - 2 * curve[-1]["epoch"] / 3))
    plateau = curve[-1]["accuracy"] <= two_thirds["accuracy"]
    collapse = curve[-1]["diversity"] < 0.5 * base_div
    return plateau, collapse


def svg_plot(task, res, path, rows="algos", x_key="fe", x_label="model evaluations (forward-equivalents)", ref="base"):
    """Train accuracy against X_KEY (forward-equivalents; the offline rows: pairs), the mean over the seeds, one line
    per algorithm of res[ROWS]; the reference lines at the REF base's accuracy."""
    W, H, L, R, T, B = 640, 400, 60, 150, 20, 50
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    base = res[ref]["train"]["accuracy"] * 100
    series = []
    n_seeds = min(len(r["runs"]) for r in res[rows].values())
    for a, r in res[rows].items():
        pts = [(0.0, own_base(res, r)["train"]["accuracy"] * 100)]
        n = len(r["runs"][0]["curve"])
        for i in range(n):
            pts.append((sum(x["curve"][i][x_key] for x in r["runs"]) / len(r["runs"]),
                        100 * sum(x["curve"][i]["accuracy"] for x in r["runs"]) / len(r["runs"])))
        series.append((a, pts))
    def nice(x):  # the smallest of 1, 2, 2.5, 5 x 10^k at or above x
        k = 10 ** math.floor(math.log10(x))
        return next(m * k for m in (1, 2, 2.5, 5, 10) if m * k >= x - 1e-9)
    xstep = nice((max(p[0] for _, s in series for p in s) or 1) / 5)
    xmax = xstep * math.ceil(max(p[0] for _, s in series for p in s) / xstep - 0.02)  # 2% past a tick: no new tick
    ys = [p[1] for _, s in series for p in s] + [base + THRESHOLDS[0]]
    ystep = 5 if max(ys) - min(ys) > 15 else 2 if max(ys) - min(ys) > 6 else 1
    ylo, yhi = ystep * math.floor(min(ys) / ystep), ystep * math.ceil(max(ys) / ystep + 0.01)
    X = lambda x: L + (W - L - R) * x / xmax
    Y = lambda y: T + (H - T - B) * (1 - (y - ylo) / (yhi - ylo))
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>']
    y = ylo
    while y <= yhi + 1e-9:
        o.append(f'<line x1="{L}" y1="{Y(y):.1f}" x2="{W - R}" y2="{Y(y):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{Y(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
        y += ystep
    x = 0.0
    while x <= xmax + 1e-9:
        o.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{fmt_big(x) if x else "0"}</text>')
        x += xstep
    for pts_over, dash in ((0, ""), (THRESHOLDS[0], "4 4"), (THRESHOLDS[1], "2 6")):
        if base + pts_over <= yhi:
            yy = Y(base + pts_over)
            o.append(f'<line x1="{L}" y1="{yy:.1f}" x2="{W - R}" y2="{yy:.1f}" stroke="#888"'
                     + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
            o.append(f'<text x="{W - R - 4}" y="{yy - 4:.1f}" text-anchor="end" fill="#666">'
                     + (f"{'ε ' if ref == 'eps_base' else ''}base +{pts_over} points" if pts_over else
                        ("ε base" if ref == "eps_base" else "base")) + "</text>")
    o.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="black"/>')
    for i, (a, pts) in enumerate(series):
        c = colors[i % len(colors)]
        d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
        o.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        o.append(f'<line x1="{W - R + 10}" y1="{T + 18 * i + 8}" x2="{W - R + 30}" y2="{T + 18 * i + 8}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{W - R + 36}" y="{T + 18 * i + 12}" fill="{c}">{a}</text>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">{x_label}</text>')
    o.append(f'<text x="14" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 {(T + H - B) / 2})">'
             f'{task}: train accuracy (%), mean of {n_seeds} seeds</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def median(xs):
    s = sorted(xs)
    n = len(s)
    return (s[(n - 1) // 2] + s[n // 2]) / 2 if n else float("nan")


# The papers' speed-up claims over Flow-GRPO, and the factor each is held to: "up to" and "around" are
# held to the number they name, a range to its low end.
CLAIMS = {
    "awm": ("AWM: \"up to 24x faster than Flow-GRPO\"", 24),
    "dgpo": ("DGPO: \"around 20x faster\" than Flow-GRPO", 20),
    "nft": ("DiffusionNFT: \"3x to 25x more efficient\" than Flow-GRPO", 3),
    # arXiv 2507.21802's abstract: against DanceGRPO, in training time (held to 2x: "nearly 50% lower")
    "mix-grpo": ("MixGRPO: \"nearly 50% lower training time\" than DanceGRPO", 2, "dance-grpo"),
}


def claims(results):
    """One line per claim and task: the measured ratio of model evaluations to +THRESHOLDS[0] points."""
    L = []
    for a, claim in CLAIMS.items():
        text, factor = claim[0], claim[1]
        ref = claim[2] if len(claim) > 2 else "flow-grpo"  # the claim's baseline
        for task, res in results.items():
            if a not in res["algos"] or ref not in res["algos"]:
                continue
            budget = TASKS[task]["budget"]
            hit = {k: [h for h in (reach(x, own_base(res, res["algos"][k])["train"]["accuracy"], THRESHOLDS[0])
                                   for x in res["algos"][k]["runs"]) if h]
                   for k in (ref, a)}
            n = len(res["algos"][a]["runs"])
            fg, al = hit[ref], hit[a]
            if not al:
                verdict = (f"not measurable: neither reached +{THRESHOLDS[0]} points within the budget" if not fg else
                           f"**does not hold**: {ref} reached +{THRESHOLDS[0]} points ({len(fg)}/{n} seeds), {a} did not")
            else:
                nfe_a = sum(h["fe"] for h in al) / len(al)
                if fg:
                    ratio = (sum(h["fe"] for h in fg) / len(fg)) / nfe_a
                    how = f"{ratio:.2f}x fewer model evaluations to +{THRESHOLDS[0]} points (seeds reaching it: {ref} {len(fg)}/{n}, {a} {len(al)}/{n})"
                else:
                    ratio = budget / nfe_a
                    how = (f"at least {ratio:.2f}x ({ref} did not reach +{THRESHOLDS[0]} points within the budget; "
                           f"{a} did on {len(al)}/{n} seeds)")
                verdict = ("**holds**" if ratio >= factor and fg else
                           "**consistent, lower bound only**" if ratio >= factor else
                           f"**faster, below the claim** ({factor}x)" if ratio > 1 else "**does not hold**") + ": " + how
            L.append(f"- {text}, {task}: {verdict}.")
    return L


def name(row, algo):
    """The algorithm's name in the tables, ε-marked when it trains the epsilon base."""
    return algo + (" (ε)" if row.get("base_pred") == "epsilon" else "")


def eps_defaults(base):
    """The pretraining keys of the epsilon base that today's defaults decide (results.json records them)."""
    m = base.get("pretrain")
    if not m:
        return ("; pretrained before the bake-off recorded its pretraining keys, with the `flowrl pretrain` defaults of "
                "then")
    return (f", today's defaults: preset {m.get('model.preset')}, {m.get('model.head', 'velocity')} head, "
            + (f"{m['pretrain.eps_weight']}" + (f"-{m['pretrain.snr_gamma']}" if "pretrain.snr_gamma" in m else "")
               + " loss weight" if "pretrain.eps_weight" in m else "unweighted loss"))


def threshold_hits(res, r):
    """Per threshold of THRESHOLDS: the curve points at which the row's seeds first reach it over their own base, and
    the number of seeds."""
    ob = own_base(res, r)
    return [([h for h in (reach(x, ob["train"]["accuracy"], pts) for x in r["runs"]) if h], len(r["runs"]))
            for pts in THRESHOLDS]


def final_cells(res, t, r, after_train=""):
    """The cells from the final train accuracy to the end of a row of the runs' tables (AFTER_TRAIN: cells to insert
    after the train accuracy's)."""
    runs = r["runs"]
    v = [verdicts(x, own_base(res, r)["train"]["diversity"]) for x in runs]
    row = f" | {fmt_ci([x['final_train']['accuracy'] for x in runs], 100)}" + after_train
    if t["heldout"]:
        row += f" | {fmt_ci([x['final_heldout']['accuracy'] for x in runs], 100)}"
    row += f" | {fmt_ci([x['final_train']['diversity'] for x in runs], 1, 4)}"
    kls = [x['final_train']['kl'] for x in runs if 'kl' in x['final_train']]
    row += f" | {fmt_ci(kls, 1, 0 if max(kls) >= 100 else 2)}" if kls else " | -"
    row += f" | {sum(p for p, _ in v)}/{len(v)} | {sum(c for _, c in v)}/{len(v)}"
    return row + f" | {median([s for x in runs for s in x['epoch_seconds']]):.3f} |"


def prefs_section(task, res):
    """The offline rows of a task: accuracy after a fixed number of preference pairs."""
    t = TASKS[task]
    budget = res.get("pair_budget", t["pair_budget"])  # as measured (QUICK's is smaller)
    files = res.get("prefs", {})
    size = next(iter(files.values()))["pairs"] if files else t["prefs_pairs"]
    L = [f"#### {task}, offline: from a preference file, {budget} pairs", "",
         "The algorithms that read a preference file (`flowrl algos --json` prefs: required, or optional for flow-dpo, "
         "whose online row, where measured, is above) train from one made once per task and base by `flowrl prefs make --pairs "
         f"{size} --reward {t['reward']} --seed 0` (the bake-off's reward labels the pairs; ties dropped; "
         "the base's stochastic sampler: DDIM eta 1 for the ε base, SDE a 0.7 for the velocity base):"]
    for pred, f in sorted(files.items()):
        L.append(f"{'ε' if pred == 'epsilon' else 'velocity'} base: {f['pairs']} pairs ({f['attempts']} attempts, "
                 f"{f['ties_dropped']} ties dropped; {f['prompts_covered']} of {f['train_prompts']} train prompts; "
                 f"reward margin r_w - r_l mean {f['margin']['mean']:.3g}).")
    L += ["", f"**Budget**: {budget} pairs trained on (the runs' metrics.jsonl `pairs`; Diffusion-DRO's: the "
          "expert rows, each a winner of the file), so each algorithm gets the whole epochs that spend it; the model "
          "evaluations these took (the same counters as above) are reported beside. The same lr x KL grid on tuning "
          f"seed {TUNE_SEED} for {TUNE_FRAC:.2g} of the pairs, the same seeds, evaluations and verdicts as above; "
          "every evaluation scores with the bake-off's reward "
          f"({t['reward']}, `flowrl eval --reward {t['reward']}`), the one that labelled the file.", "",
          "| algorithm | lr, KL | pairs per epoch x epochs | model evaluations (FE) | "
          + " | ".join(f"+{p} pts: pairs / FE" for p in THRESHOLDS) + " | final train % | gain (points over its base) | "
          + ("final held-out % | " if t["heldout"] else "")
          + "diversity | KL to base (nats) | plateau | collapse | epoch s (wall-clock, median) |",
          "|---|---|---|---|" + "---|" * len(THRESHOLDS) + "---|---|" + ("---|" if t["heldout"] else "") + "---|---|---|---|---|"]
    for a, r in res["prefs_algos"].items():
        runs, p = r["runs"], r["probe"]
        cells = []
        for hits, n in threshold_hits(res, r):
            cells.append(f"{fmt_ci([h['pairs'] for h in hits], 1, 0)} / {fmt_ci([h['fe'] for h in hits], 1e-3, 0)}k "
                         f"({len(hits)}/{n})" if hits else f"not reached (0/{n})")
        gain = [100 * (x["final_train"]["accuracy"] - own_base(res, r)["train"]["accuracy"]) for x in runs]
        L.append(f"| {name(r, a)} | {r['chosen']['lr']:g}, {r['chosen']['beta']:g} | {p['pairs_epoch']} x {p['epochs']} | "
                 f"{fmt_count([x['curve'][-1]['fe'] for x in runs])} | " + " | ".join(cells)
                 + final_cells(res, t, r, after_train=f" | {fmt_ci(gain)}"))
    L += ["", f"![{task}: train accuracy against preference pairs](docs/img/bench_algos_{task}_prefs.svg)", ""]
    return L


def section(results, meta):
    L = ["<!-- bench_algos begin: written by bench/bench_algos.py (make bench-algos), do not edit by hand -->",
         "## The bake-off: every algorithm at the same budget of model evaluations", ""]
    if meta.get("invocations"):  # a --merge of invocations: each one, later rows over earlier ones
        L += [f"Command: `make bench-algos` (bench/bench_algos.py; SEEDS=\"{' '.join(map(str, SEEDS))}\"), in several "
              "invocations joined by `bench/bench_algos.py --merge` (a later one's rows over an earlier one's). Machine: "
              f"{machine_line()}; runs each `--backend opt --threads 1` (nice 10):", ""]
        for m in meta["invocations"]:
            what = (f"{', '.join(m['measured'])} ({', '.join(m['tasks'])}"
                    + (f"; only the {' '.join(m['modes'])} rows" if len(m.get("modes", ROWS)) == 1 else "") + ")"
                    if m.get("measured") else
                    f"the rows of `{m['work']}/results.json` (itself over `{m.get('merged')}`)")
            L.append(f"- `{m['work']}`: {what}; {m['when']}, source git {m['git']}, {m['jobs']} runs at a time, load "
                     f"average {m['load0']} at the start, {m['load1']} at the end, {m['minutes']:.0f} min.")
        L.append("")
    else:
        L += [f"Command: `make bench-algos` (bench/bench_algos.py; SEEDS=\"{' '.join(map(str, SEEDS))}\""
              f"{' QUICK=1' if QUICK else ''}) on {meta['when']}; source git {meta['git']}. Machine: {machine_line()}; "
              f"{meta['jobs']} runs at a time, each `--backend opt --threads 1` (nice 10). Load average {meta['load0']} at "
              f"the start, {meta['load1']} at the end; {meta['minutes']:.0f} min in all.", ""]
    L += ["Protocol. Per task, every algorithm `flowrl algos` lists starts from the same base checkpoint with the same "
          "prompts, reward, P x G and seeds. **Budget**: a fixed number of model evaluations counted by the runs "
          "themselves (metrics.jsonl `nfe.forward_rows` + 2 x `nfe.backward_rows`: a backward ≈ 2 forwards), so each "
          "algorithm gets the whole epochs that spend it; wall-clock is reported beside, never used as the budget. "
          f"**Tuning**, the same for every algorithm: lr ∈ {{{', '.join('%g' % x for x in LRS)}}} x KL weight `--beta` ∈ "
          f"{{default, {KL_MULT} x default}}, each on tuning seed {TUNE_SEED} for {TUNE_FRAC:.2g} of the budget; the best "
          "train accuracy among grid points whose samples did not collapse wins. **Measures** (flowrl eval, ODE 40 steps, "
          f"{EVAL_N} samples per prompt, fixed sampling seeds): accuracy = share of samples judged correct; NFE / "
          "optimiser steps / seconds to reach +10 and +20 train-accuracy points over the base, at the first of "
          f"{CURVE_POINTS} evenly spaced checkpoints that does (mean ± 95% t-interval over the seeds that reach it; "
          "k/n says how many did); diversity = mean over prompts of the mean pairwise RMS distance between a prompt's "
          "samples (`flowrl eval` `diversity`); KL to the base = KL between the policy's and the base's SDE path "
          "measures (T 10, a 0.7) in nats per sample (`flowrl eval --kl-ref`). **plateau** = no train-accuracy gain over "
          "the last third of the budget; **collapse** = final diversity below half the base's. Every column except "
          "those marked wall-clock is a function of the runs' bits and reproduces exactly.", ""]
    for task, res in results.items():
        t = TASKS[task]
        b = res["base"]
        bacc = b["train"]["accuracy"]
        L += [f"### {task} (reward {t['reward']}, P {t['P']} x G {t['G']}, budget {fmt_big(t['budget'])} forward-equivalents)", "",
              f"Base `{t['base']}`: train accuracy {100 * bacc:.1f}%"
              + (f", held-out {100 * b['heldout']['accuracy']:.1f}%" if t["heldout"] else "")
              + f", diversity {b['train']['diversity']:.4f}, KL to itself {b['train']['kl']:.3g}."
              + (f" Epsilon-prediction base `{t['eps_base']}` (the same pretraining, `--pred epsilon`"
                 + eps_defaults(res["eps_base"]) + "; sampled with "
                 f"DDIM 40 steps, eta 0) of the algorithms marked ε: train accuracy "
                 f"{100 * res['eps_base']['train']['accuracy']:.1f}%"
                 + (f", held-out {100 * res['eps_base']['heldout']['accuracy']:.1f}%" if t["heldout"] else "")
                 + f", diversity {res['eps_base']['train']['diversity']:.4f}; their gains, plateau and collapse are "
                 "measured against it, and flowrl eval's KL (SDE path measures of velocity models) does not apply."
                 if "eps_base" in res else ""), "",
              "Tuning grid (seed 0, train accuracy % / diversity at the end of the tuning runs; * = chosen; rows marked "
              "prefs: from the preference file, FE per epoch with the pairs of an epoch):", "",
              "| algorithm | FE per epoch | epochs (tuning / runs) | " + " | ".join(
                  f"lr {lr:g}, KL {k}" for lr in LRS for k in ("default", f"{KL_MULT}x")) + " |",
              "|---|---|---|" + "---|" * (2 * len(LRS))]
        for mode, rows in ROWS.items():
            for a, r in res.get(rows, {}).items():
                # one cell per column (lr, default KL / KL_MULT x default); an algorithm without a KL term
                # (default β 0) ran one point per lr: its KL-25x cells say so
                p = r["probe"]
                cells = []
                for lr in LRS:
                    for col, beta in enumerate((p["beta"], KL_MULT * p["beta"])):
                        g = next((g for g in r["grid"] if g["lr"] == lr and g["beta"] == beta), None)
                        if col == 1 and beta == p["beta"]:
                            cells.append("(no KL term)")
                            continue
                        star = "*" if g and (g["lr"], g["beta"]) == (r["chosen"]["lr"], r["chosen"]["beta"]) else ""
                        cells.append(f"{star}β {g['beta']:g}: {100 * g['accuracy']:.1f} / {g['diversity']:.3f}" if g else "-")
                fe_cell = f"{p['fe_epoch']}" + (f" ({p['pairs_epoch']} pairs)" if mode == "prefs" else "")
                L.append(f"| {name(r, a)}{' · prefs' if mode == 'prefs' else ''} | {fe_cell} | "
                         f"{p['tune_epochs']} / {p['epochs']} | " + " | ".join(cells) + " |")
        L += ["", "Runs of the whole budget (chosen configuration, seeds " + ", ".join(map(str, SEEDS)) + "):", ""] + ([
              "(no online rows measured)"] if not res["algos"] else [
              "| algorithm | lr, KL | " + " | ".join(f"+{p} pts: NFE / steps / s (wall-clock)" for p in THRESHOLDS)
              + " | final train % | " + ("final held-out % | " if t["heldout"] else "")
              + "diversity | KL to base (nats) | plateau | collapse | epoch s (wall-clock, median) |",
              "|---|---|" + "---|" * len(THRESHOLDS) + "---|" + ("---|" if t["heldout"] else "") + "---|---|---|---|---|"])
        for a, r in res["algos"].items():
            cells = []
            for hits, n in threshold_hits(res, r):
                cells.append(f"{fmt_ci([h['fe'] for h in hits], 1e-6, 2)}M / {fmt_ci([h['steps'] for h in hits], 1, 0)} / "
                             f"{fmt_ci([h['seconds'] for h in hits], 1, 0)} ({len(hits)}/{n})" if hits else f"not reached (0/{n})")
            L.append(f"| {name(r, a)} | {r['chosen']['lr']:g}, {r['chosen']['beta']:g} | " + " | ".join(cells)
                     + final_cells(res, t, r))
        for x in res.get("dropped", []):
            L += ["", f"Not in the tables: {x['algo']}'s {'offline ' if x['rows'] == 'prefs_algos' else ''}row of an "
                  f"earlier invocation, {x['why']} (MERGE drops it; measure it again)."]
        L += ["", f"![{task}: train accuracy against model evaluations](docs/img/bench_algos_{task}.svg)", ""] if res["algos"] else [""]
        if res.get("prefs_algos"):
            L += prefs_section(task, res)
    L += ["### The papers' speed-up claims, in miniature", "",
          "Measured as the ratio of model evaluations the claim's baseline (Flow-GRPO unless named) needed to reach +%d "
          "train-accuracy points to what the algorithm needed (means over the seeds that reached it), each at its tuned configuration above. A 1.3M-parameter "
          "MLP on 16x16 images is not SD3.5: a claim that does not hold here is refuted only for this setting." % THRESHOLDS[0], ""]
    L += claims(results) + [""]
    if meta.get("merged") and not meta.get("invocations"):
        L += [f"Rows of the algorithms not measured in this invocation (ALGOS) come from `{meta['merged']}` "
              "(MERGE: the same bases, budgets, grid and seeds).", ""]
    if meta.get("second"):
        L += [meta["second"], ""]
    L += [f"Every measured number: `{STORE}` (in the repository; `bench/bench_algos.py --report` rewrites this section "
          "from it); the runs' directories: the `demo/` paths above (git-ignored).",
          "<!-- bench_algos end -->"]
    return "\n".join(L) + "\n"


def merge_into(res, old, listed):
    """One task's results RES with OLD's rows of the algorithms RES did not measure, in LISTED's order; a row
    measured against another base than RES's (its train measures differ) is dropped, and res["dropped"] says so."""
    for rows in ROWS.values():
        o, n = dict(old.get(rows, {})), res.get(rows, {})
        for a, r in list(o.items()):
            key = "eps_base" if r.get("base_pred") == "epsilon" else "base"
            if a in n or key not in res:
                continue
            d = first_difference(old[key]["train"], res[key]["train"], key + ".train")
            if d:
                log(f"MERGE: dropping {a}'s {rows} row: measured against another {key} ({d})")
                res.setdefault("dropped", []).append(dict(algo=a, rows=rows, why=f"measured against another {key}: {d}"))
                del o[a]
        if o or n:
            res[rows] = {a: (n[a] if a in n else o[a]) for a in listed if a in n or a in o}
    res["dropped"] = [x for x in res.get("dropped", []) + old.get("dropped", [])  # not measured since
                      if x["algo"] not in res.get(x["rows"], {})] or None
    if not res["dropped"]:
        del res["dropped"]
    for key in ("base", "eps_base", "prefs"):  # the bases and preference files of the rows kept
        if key in old and key not in res:
            res[key] = old[key]
    if "prefs" in old:
        res["prefs"] = dict(old["prefs"], **res["prefs"])


def read_results(path):
    """A results.json, or the gzip'd STORE."""
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
        return json.load(f)


def write_results(path, data):
    """Writes results (gzip'd for a .gz path, with no timestamp in the header: the same numbers, the same bytes)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if path.endswith(".gz"):
        with open(path + ".tmp", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(text.encode())
    else:
        with open(path + ".tmp", "w") as f:
            f.write(text)
    os.replace(path + ".tmp", path)


def merged_files(paths, listed):
    """The tasks of several results.json, a later file's rows over an earlier one's (merge_into)."""
    out = {}
    for p in paths:
        tasks = read_results(p)
        tasks = tasks.get("tasks", tasks)
        for task, res in tasks.items():
            if task in out:
                merge_into(res, out[task], listed)
            out[task] = res
    return out


WALL_CLOCK = {"seconds", "epoch_seconds"}  # the keys of results.json that measure time, not bits


def first_difference(a, b, path="results"):
    """The first difference between two results.json trees outside the wall-clock keys, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in WALL_CLOCK:
                continue
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'the second' if k not in a else 'the first'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def difference(p1, p2):
    """The first difference between two results.json files (their meta aside: when, where, load, git)."""
    a, b = read_results(p1), read_results(p2)
    return first_difference(a.get("tasks", a), b.get("tasks", b))


def compare(p1, p2):
    """--compare A B: exit 0 when two bake-offs measured the same numbers (wall-clock aside)."""
    d = difference(p1, p2)
    print(f"bench_algos: {p1} and {p2}: " + (f"differ at {d}" if d else "identical (wall-clock keys aside)"))
    return 1 if d else 0


def listing():
    """The algorithms `flowrl algos --json` lists that fine-tune a base (PRED and PREFS filled): the ones that train on
    an environment (GFlowNets) have their own benchmark (bench_gfn.py)."""
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_algos: {FLOWRL} not found: run make first")
    out = [a for a in json.loads(sh(["algos", "--json"]))["algos"] if a.get("trains_on", "base") == "base"]
    PRED.update({a["name"]: a["base_pred"] for a in out})
    PREFS.update({a["name"]: a["prefs"] for a in out if "prefs" in a})
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) in (2, 3, 4) and sys.argv[1] == "--report":
        os.chdir(ROOT)
        path = sys.argv[2] if len(sys.argv) > 2 else STORE
        data = read_results(path)
        meta = data.get("meta") or dict(
            when="(time not recorded)", git=git_line() + " (section regenerated from results.json)", jobs=JOBS,
            load0="?", load1="?", minutes=float("nan"), work=os.path.dirname(path))
        if len(sys.argv) == 4:  # a second run of the same bake-off: the section says whether it measured the same
            d = difference(path, sys.argv[3])
            m2 = read_results(sys.argv[3]).get("meta") or dict(when="metadata not recorded", git="not recorded",
                                                              work=os.path.dirname(sys.argv[3]))
            meta["second"] = (f"A second run ({m2['when']}, source git {m2['git']}, `{m2['work']}`) "
                              + (f"**differs** from this one at {d}." if d else
                                 "measured **the same numbers**: every key of results.json but the wall-clock ones is "
                                 "identical (`bench/bench_algos.py --compare`)."))
        return report(data.get("tasks", data), meta)
    if len(sys.argv) >= 4 and sys.argv[1] == "--merge":
        os.chdir(ROOT)
        merge_invocations(sys.argv[2], sys.argv[3:], [a["name"] for a in listing()])
        return
    if len(sys.argv) > 1:
        raise SystemExit("usage: bench/bench_algos.py [--compare RESULTS1.json RESULTS2.json | --report [RESULTS.json] | "
                         "--merge OUT.json RESULTS.json... ] (see the file's docstring)")
    os.chdir(ROOT)
    algos = [a["name"] for a in listing()]
    if not algos:
        raise SystemExit("bench_algos: `flowrl algos` listed no algorithm")
    listed = list(algos)
    if os.environ.get("ALGOS"):
        algos = [a for a in algos if a in os.environ["ALGOS"].split()]
    merge = merged_files(os.environ["MERGE"].split(), listed) if os.environ.get("MERGE") else None
    os.makedirs(WORK, exist_ok=True)
    t0, load0 = time.time(), loadavg()
    meta = dict(when=f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", git=git_line(), jobs=JOBS,
                load0=load0, work=WORK, measured=algos, tasks=RUN_TASKS, modes=MODES)
    results = {}
    for task in RUN_TASKS:
        os.makedirs(os.path.join(WORK, task), exist_ok=True)
        here = [a for a in algos if not (a in NEEDS_REWARD_GRAD and task in NO_REWARD_GRAD_TASKS)]
        if len(here) < len(algos):
            log(f"{task}: no differentiable reward: {', '.join(a for a in algos if a not in here)} skipped")
        log(f"{task}: {', '.join(here)}")
        results[task] = bake_off(task, here)
        if merge and task in merge:  # the other algorithms' rows from an earlier bake-off of the same bases
            merge_into(results[task], merge[task], listed)
            meta["merged"] = os.environ["MERGE"]
        meta.update(load1=loadavg(), minutes=(time.time() - t0) / 60)
        write_results(os.path.join(WORK, "results.json"), dict(meta=meta, tasks=results))
    if QUICK or os.environ.get("STORE") == "0":  # (a smoke run, or one asked to leave the repository's numbers alone)
        return report(results, meta)
    # the repository's numbers: this invocation's rows over STORE's (its other rows kept), the section from them all
    stored = merge_invocations(STORE, ([STORE] if os.path.exists(STORE) else []) + [os.path.join(WORK, "results.json")],
                               listed)
    report(stored["tasks"], stored["meta"])


def merge_invocations(out, paths, listed):
    """--merge OUT PATHS...: the rows of several invocations (results.json or STORE), a later one's rows over an
    earlier one's, with the list of invocations in meta; written to OUT and returned."""
    invocations = []
    for p in paths:
        d = read_results(p)
        m = d["meta"]
        if m.get("invocations"):  # an earlier merge (STORE): its own invocations, in their order
            invocations += m["invocations"]
            continue
        # what it measured: recorded since the merges, or (an invocation without MERGE) every row it holds
        m.setdefault("measured", None if m.get("merged") else
                     sorted({a for res in d["tasks"].values() for rows in ROWS.values() for a in res.get(rows, {})}))
        m.setdefault("tasks", list(d["tasks"]))
        invocations.append(m)
    meta = dict(invocations[-1], invocations=invocations, work=os.path.dirname(out) or ".")
    meta["merged"] = " ".join(paths[:-1])
    data = dict(meta=meta, tasks=merged_files(paths, listed))
    write_results(out, data)
    return data


def report(results, meta):
    """The plots and the section of OUT from the measured numbers."""
    os.makedirs("docs/img", exist_ok=True)
    for task, res in results.items():
        if res["algos"]:  # (an invocation of offline rows only, MODES=prefs, has none)
            svg_plot(task, res, f"docs/img/bench_algos_{task}.svg")
        if res.get("prefs_algos"):
            svg_plot(task, res, f"docs/img/bench_algos_{task}_prefs.svg", rows="prefs_algos", x_key="pairs",
                     x_label="preference pairs trained on", ref="eps_base")
    write_section(OUT, "bench_algos", section(results, meta))
    log(f"wrote the section of {OUT}; numbers: " + (STORE if meta.get("invocations") else f"{meta['work']}/results.json"))


if __name__ == "__main__":
    main()
