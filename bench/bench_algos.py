#!/usr/bin/env python3
"""The bake-off (issue 10): every registered algorithm, the same base, prompts, reward and seeds,
the same tuning budget and the same budget of model evaluations; `make bench-algos` runs it.

For each task (shapes with the geneval reward, gmm2d with the halfplane reward) and each algorithm
that `flowrl algos` lists, from the task's base, or for an algorithm whose base_pred is epsilon
(`flowrl algos --json`: DDPO) from the task's epsilon base (the same pretraining, --pred epsilon),
against which its gains are then measured:
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
Every number in the tables is a function of the runs' bits (bit-reproducible on any machine), except
the columns marked wall-clock. Runs go JOBS at a time, each on one thread.

Writes its section of BENCHMARKS.md (between the bench_algos markers), the plots
docs/img/bench_algos_<task>.svg, and WORK/results.json (every measured number).
Environment (defaults): BUILD (build), WORK (demo/bench_algos-<time>), OUT (BENCHMARKS.md),
JOBS (nproc), SEEDS (1 2 3), QUICK=1 (a smoke-sized budget, for testing the script itself),
ALGOS ("dance-grpo mix-grpo": only these), MERGE (an earlier WORK/results.json whose other algorithms'
rows join the table: same bases, same protocol).
`bench/bench_algos.py --compare A/results.json B/results.json` checks that two bake-offs measured the
same numbers (every key but the wall-clock ones): the table reproduces bit for bit.
`bench/bench_algos.py --report WORK/results.json [WORK2/results.json]` rewrites the section and plots
from a finished run (with a second run's results: and says whether the two measured the same).
"""
import concurrent.futures as cf
import datetime
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ckpt_meta, config, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, metrics, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
                   pretrain=["--max-train-steps", "10000"], reward="geneval", P=8, G=16, budget=2_000_000, heldout=True),
    # an under-trained base (100 pretraining steps: 40% of its samples near their prompt's mode), so the mode
    # reward has room to grow; a finished base is at 98%, and on the halfplane reward every sample of a prompt
    # scores alike (each mode lies wholly on one side), leaving group-relative advantages nothing to rank
    "gmm2d": dict(base="demo/gmm2d_base100.safetensors", eps_base="demo/gmm2d_eps_base100.safetensors",
                  pretrain=["--max-train-steps", "100"], reward="mode", P=8, G=16, budget=300_000, heldout=False),
}
if QUICK:
    for t in TASKS.values():
        t["budget"] //= 40
    SEEDS = SEEDS[:2]

log = logger("bench_algos")
PRED = {}  # algorithm -> the prediction of the base it trains (flowrl algos --json base_pred)


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


# ---- the phases ------------------------------------------------------------------------------------
def base_meta(path):
    return ckpt_meta(FLOWRL, path, name="bench_algos")


_META = {}


def base_meta_cached(path):
    if path not in _META:
        _META[path] = base_meta(path)
    return _META[path]


def ensure_base(task, key="base"):
    """Reuses a cached base only if it is this task's finished pretrain of the configured length and prediction
    (key "base": velocity, "eps_base": the same pretraining with --pred epsilon)."""
    t = TASKS[task]
    path, pred = t[key], "epsilon" if key == "eps_base" else "velocity"
    steps = t["pretrain"][t["pretrain"].index("--max-train-steps") + 1]
    _META.pop(path, None)
    if os.path.exists(path):
        m = base_meta(path)
        if (m.get("task") == task and m.get("step") == steps and m.get("pretrain.steps") == steps and m.get("seed") == "0"
                and m.get("pretrain.pred", "velocity") == pred):
            return
        log(f"{path} is not {task}'s {steps}-step {pred} pretrain (task {m.get('task')}, step {m.get('step')}, "
            f"pred {m.get('pretrain.pred')}): replacing it")
    log(f"pretraining {path}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sh(["pretrain", "--task", task, "--out", path + ".tmp", "--pred", pred, "--backend", "opt", "--threads", 1,
        "--progress", "off", "--force"] + t["pretrain"])
    os.replace(path + ".tmp", path)


def probe(key):
    task, algo = key
    d = os.path.join(WORK, task, "probe-" + algo)
    train(task, algo, d, 1, TUNE_SEED, [])
    return dict(fe_epoch=fe(metrics(d)[0]), beta=config(d)["beta"], lr=config(d)["lr"])


def tune_run(item):
    task, algo, lr, beta, epochs = item
    d = os.path.join(WORK, task, f"tune-{algo}-lr{lr:g}-beta{beta:g}")
    train(task, algo, d, epochs, TUNE_SEED, grid_flags(lr, beta))
    ck = os.path.join(d, "checkpoints", f"step-{epochs}.safetensors")
    return dict(lr=lr, beta=beta, **evaluate(ck, task, "train"))


def final_run(item):
    task, algo, lr, beta, epochs, seed = item
    d = os.path.join(WORK, task, f"run-{algo}-seed{seed}")
    every = max(1, epochs // CURVE_POINTS)
    train(task, algo, d, epochs, seed, grid_flags(lr, beta), ckpt_every=every)
    ms = metrics(d)
    cum_fe, cum_steps, cum_s = [], [], []
    a = b = c = 0.0
    for m in ms:
        a += fe(m)
        b += m["updates"]
        c += m["seconds"]
        cum_fe.append(a)
        cum_steps.append(b)
        cum_s.append(c)
    curve = []
    for e in sorted({min(k * every, epochs) for k in range(1, CURVE_POINTS + 1)} | {epochs}):
        ck = os.path.join(d, "checkpoints", f"step-{e}.safetensors")
        ev = evaluate(ck, task, "train", kl_ref=base_of(task, algo) if e == epochs else None)
        curve.append(dict(epoch=e, fe=cum_fe[e - 1], steps=cum_steps[e - 1], seconds=cum_s[e - 1], **ev))
    res = dict(seed=seed, curve=curve, final_train=curve[-1], epoch_seconds=[m["seconds"] for m in ms[1:]])
    if TASKS[task]["heldout"]:
        res["final_heldout"] = evaluate(os.path.join(d, "checkpoints", f"step-{epochs}.safetensors"), task, "eval")
    return res


def bake_off(task, algos):
    t = TASKS[task]
    out = dict(algos={})
    for key in ("base", "eps_base"):  # the epsilon base only where an algorithm trains one
        if key == "base" or any(base_key(a) == key for a in algos):
            ensure_base(task, key)
            out[key] = dict(train=evaluate(t[key], task, "train", kl_ref=t[key]))
            if t["heldout"]:
                out[key]["heldout"] = evaluate(t[key], task, "eval")
    probes = dict(zip(algos, pool_map(probe, [(task, a) for a in algos])))
    tune_items, finals = [], []
    for a in algos:
        p = probes[a]
        p["epochs"] = max(1, round(t["budget"] / p["fe_epoch"]))
        p["tune_epochs"] = max(1, round(t["budget"] * TUNE_FRAC / p["fe_epoch"]))
        # (an algorithm without a KL term, default beta 0, has one grid point per lr)
        p["grid"] = list(dict.fromkeys((lr, beta) for lr in LRS for beta in (p["beta"], KL_MULT * p["beta"])))
        tune_items += [(task, a, lr, beta, p["tune_epochs"]) for lr, beta in p["grid"]]
    log(f"{task}: tuning {len(tune_items)} runs")
    tuned = pool_map(tune_run, tune_items)
    for a in algos:
        p = probes[a]
        grid = [r for (tk, aa, *_), r in zip(tune_items, tuned) if aa == a]
        ok = [r for r in grid if r["diversity"] >= 0.5 * out[base_key(a)]["train"]["diversity"]] or grid
        best = max(ok, key=lambda r: r["accuracy"])  # max keeps the first of equals: grid order
        out["algos"][a] = dict(probe=p, grid=grid, chosen=dict(lr=best["lr"], beta=best["beta"]),
                               base_pred=PRED.get(a, "velocity"))
        finals += [(task, a, best["lr"], best["beta"], p["epochs"], s) for s in SEEDS]
    log(f"{task}: {len(finals)} runs of the whole budget")
    runs = pool_map(final_run, finals)
    for (tk, a, *_), r in zip(finals, runs):
        out["algos"][a].setdefault("runs", []).append(r)
    return out


# ---- the report ------------------------------------------------------------------------------------
def reach(run, base_acc, pts):
    """The first curve point at least pts accuracy points over the base, or None."""
    for c in run["curve"]:
        if c["accuracy"] >= base_acc + pts / 100 - 1e-12:
            return c
    return None


def own_base(res, algo):
    """The base measures an algorithm of res compares with: the epsilon base's for an epsilon-prediction algorithm
    (results.json records base_pred; rows of earlier bake-offs without it trained the velocity base)."""
    return res["eps_base" if res["algos"][algo].get("base_pred") == "epsilon" else "base"]


def verdicts(run, base_div):
    curve = run["curve"]
    two_thirds = min(curve, key=lambda c: abs(c["epoch"] - 2 * curve[-1]["epoch"] / 3))
    plateau = curve[-1]["accuracy"] <= two_thirds["accuracy"]
    collapse = curve[-1]["diversity"] < 0.5 * base_div
    return plateau, collapse


def svg_plot(task, res, path):
    """Train accuracy against forward-equivalents, the mean over the seeds, one line per algorithm."""
    W, H, L, R, T, B = 640, 400, 60, 150, 20, 50
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    base = res["base"]["train"]["accuracy"] * 100  # the velocity base's: the reference lines
    series = []
    n_seeds = min(len(r["runs"]) for r in res["algos"].values())
    for a, r in res["algos"].items():
        pts = [(0.0, own_base(res, a)["train"]["accuracy"] * 100)]
        n = len(r["runs"][0]["curve"])
        for i in range(n):
            pts.append((sum(x["curve"][i]["fe"] for x in r["runs"]) / len(r["runs"]),
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
                     + (f"base +{pts_over} points" if pts_over else "base") + "</text>")
    o.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="black"/>')
    for i, (a, pts) in enumerate(series):
        c = colors[i % len(colors)]
        d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
        o.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        o.append(f'<line x1="{W - R + 10}" y1="{T + 18 * i + 8}" x2="{W - R + 30}" y2="{T + 18 * i + 8}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{W - R + 36}" y="{T + 18 * i + 12}" fill="{c}">{a}</text>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">model evaluations (forward-equivalents)</text>')
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
            hit = {k: [h for h in (reach(x, own_base(res, k)["train"]["accuracy"], THRESHOLDS[0])
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


def name(res, algo):
    """The algorithm's name in the tables, ε-marked when it trains the epsilon base."""
    return algo + (" (ε)" if res["algos"][algo].get("base_pred") == "epsilon" else "")


def section(results, meta):
    L = ["<!-- bench_algos begin: written by bench/bench_algos.py (make bench-algos), do not edit by hand -->",
         "## The bake-off: every algorithm at the same budget of model evaluations", "",
         f"Command: `make bench-algos` (bench/bench_algos.py; SEEDS=\"{' '.join(map(str, SEEDS))}\""
         f"{' QUICK=1' if QUICK else ''}) on {meta['when']}; source git {meta['git']}. Machine: {machine_line()}; "
         f"{meta['jobs']} runs at a time, each `--backend opt --threads 1` (nice 10). Load average {meta['load0']} at the "
         f"start, {meta['load1']} at the end; {meta['minutes']:.0f} min in all.", "",
         "Protocol. Per task, every algorithm `flowrl algos` lists starts from the same base checkpoint with the same "
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
              + (f" Epsilon-prediction base `{t['eps_base']}` (the same pretraining, `--pred epsilon`; sampled with "
                 f"DDIM 40 steps, eta 0) of the algorithms marked ε: train accuracy "
                 f"{100 * res['eps_base']['train']['accuracy']:.1f}%"
                 + (f", held-out {100 * res['eps_base']['heldout']['accuracy']:.1f}%" if t["heldout"] else "")
                 + f", diversity {res['eps_base']['train']['diversity']:.4f}; their gains, plateau and collapse are "
                 "measured against it, and flowrl eval's KL (SDE path measures of velocity models) does not apply."
                 if "eps_base" in res else ""), "",
              "Tuning grid (seed 0, train accuracy % / diversity at the end of the tuning runs; * = chosen):", "",
              "| algorithm | FE per epoch | epochs (tuning / runs) | " + " | ".join(
                  f"lr {lr:g}, KL {k}" for lr in LRS for k in ("default", f"{KL_MULT}x")) + " |",
              "|---|---|---|" + "---|" * (2 * len(LRS))]
        for a, r in res["algos"].items():
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
            L.append(f"| {name(res, a)} | {p['fe_epoch']} | {p['tune_epochs']} / {p['epochs']} | " + " | ".join(cells) + " |")
        L += ["", "Runs of the whole budget (chosen configuration, seeds " + ", ".join(map(str, SEEDS)) + "):", "",
              "| algorithm | lr, KL | " + " | ".join(f"+{p} pts: NFE / steps / s (wall-clock)" for p in THRESHOLDS)
              + " | final train % | " + ("final held-out % | " if t["heldout"] else "")
              + "diversity | KL to base (nats) | plateau | collapse | epoch s (wall-clock, median) |",
              "|---|---|" + "---|" * len(THRESHOLDS) + "---|" + ("---|" if t["heldout"] else "") + "---|---|---|---|---|"]
        for a, r in res["algos"].items():
            runs = r["runs"]
            ob = own_base(res, a)
            cells = []
            for pts in THRESHOLDS:
                hits = [reach(x, ob["train"]["accuracy"], pts) for x in runs]
                hits = [h for h in hits if h]
                if not hits:
                    cells.append(f"not reached (0/{len(runs)})")
                else:
                    cells.append(f"{fmt_ci([h['fe'] for h in hits], 1e-6, 2)}M / {fmt_ci([h['steps'] for h in hits], 1, 0)} / "
                                 f"{fmt_ci([h['seconds'] for h in hits], 1, 0)} ({len(hits)}/{len(runs)})")
            v = [verdicts(x, ob["train"]["diversity"]) for x in runs]
            row = f"| {name(res, a)} | {r['chosen']['lr']:g}, {r['chosen']['beta']:g} | " + " | ".join(cells)
            row += f" | {fmt_ci([x['final_train']['accuracy'] for x in runs], 100)}"
            if t["heldout"]:
                row += f" | {fmt_ci([x['final_heldout']['accuracy'] for x in runs], 100)}"
            row += f" | {fmt_ci([x['final_train']['diversity'] for x in runs], 1, 4)}"
            kls = [x['final_train']['kl'] for x in runs if 'kl' in x['final_train']]
            row += f" | {fmt_ci(kls, 1, 0 if max(kls) >= 100 else 2)}" if kls else " | -"
            row += f" | {sum(p for p, _ in v)}/{len(v)} | {sum(c for _, c in v)}/{len(v)}"
            row += f" | {median([s for x in runs for s in x['epoch_seconds']]):.3f} |"
            L.append(row)
        L += ["", f"![{task}: train accuracy against model evaluations](docs/img/bench_algos_{task}.svg)", ""]
    L += ["### The papers' speed-up claims, in miniature", "",
          "Measured as the ratio of model evaluations the claim's baseline (Flow-GRPO unless named) needed to reach +%d "
          "train-accuracy points to what the algorithm needed (means over the seeds that reached it), each at its tuned configuration above. A 1.3M-parameter "
          "MLP on 16x16 images is not SD3.5: a claim that does not hold here is refuted only for this setting." % THRESHOLDS[0], ""]
    L += claims(results) + [""]
    if meta.get("merged"):
        L += [f"Rows of the algorithms not measured in this invocation (ALGOS) come from `{meta['merged']}` "
              "(MERGE: the same bases, budgets, grid and seeds).", ""]
    if meta.get("second"):
        L += [meta["second"], ""]
    L += [f"Run directories and every measured number: `{meta['work']}` (git-ignored; results.json).",
          "<!-- bench_algos end -->"]
    return "\n".join(L) + "\n"


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
    with open(p1) as f1, open(p2) as f2:
        a, b = json.load(f1), json.load(f2)
    return first_difference(a.get("tasks", a), b.get("tasks", b))


def compare(p1, p2):
    """--compare A B: exit 0 when two bake-offs measured the same numbers (wall-clock aside)."""
    d = difference(p1, p2)
    print(f"bench_algos: {p1} and {p2}: " + (f"differ at {d}" if d else "identical (wall-clock keys aside)"))
    return 1 if d else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--report":
        os.chdir(ROOT)
        with open(sys.argv[2]) as f:
            data = json.load(f)
        meta = data.get("meta") or dict(
            when="(time not recorded)", git=git_line() + " (section regenerated from results.json)", jobs=JOBS,
            load0="?", load1="?", minutes=float("nan"), work=os.path.dirname(sys.argv[2]))
        if len(sys.argv) == 4:  # a second run of the same bake-off: the section says whether it measured the same
            d = difference(sys.argv[2], sys.argv[3])
            with open(sys.argv[3]) as f:
                m2 = json.load(f).get("meta") or dict(when="metadata not recorded", git="not recorded",
                                                      work=os.path.dirname(sys.argv[3]))
            meta["second"] = (f"A second run ({m2['when']}, source git {m2['git']}, `{m2['work']}`) "
                              + (f"**differs** from this one at {d}." if d else
                                 "measured **the same numbers**: every key of results.json but the wall-clock ones is "
                                 "identical (`bench/bench_algos.py --compare`)."))
        return report(data.get("tasks", data), meta)
    if len(sys.argv) > 1:
        raise SystemExit("usage: bench/bench_algos.py [--compare RESULTS1.json RESULTS2.json | --report RESULTS.json] "
                         "(see the file's docstring)")
    os.chdir(ROOT)
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_algos: {FLOWRL} not found: run make first")
    # the bake-off fine-tunes a base: the algorithms that train on an environment (GFlowNets) have
    # their own benchmark (bench_gfn.py)
    listing = [a for a in json.loads(sh(["algos", "--json"]))["algos"] if a.get("trains_on", "base") == "base"]
    PRED.update({a["name"]: a["base_pred"] for a in listing})
    algos = [a["name"] for a in listing]
    if not algos:
        raise SystemExit("bench_algos: `flowrl algos` listed no algorithm")
    listed = list(algos)
    if os.environ.get("ALGOS"):
        algos = [a for a in algos if a in os.environ["ALGOS"].split()]
    merge = None
    if os.environ.get("MERGE"):
        with open(os.environ["MERGE"]) as f:
            merge = json.load(f)
        merge = merge.get("tasks", merge)
    os.makedirs(WORK, exist_ok=True)
    t0, load0 = time.time(), loadavg()
    meta = dict(when=f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", git=git_line(), jobs=JOBS,
                load0=load0, work=WORK)
    results = {}
    for task in TASKS:
        os.makedirs(os.path.join(WORK, task), exist_ok=True)
        log(f"{task}: {', '.join(algos)}")
        results[task] = bake_off(task, algos)
        if merge and task in merge:  # the other algorithms' rows from an earlier bake-off of the same bases
            old = merge[task]["algos"]
            new = results[task]["algos"]
            results[task]["algos"] = {a: (new[a] if a in new else old[a]) for a in listed if a in new or a in old}
            meta["merged"] = os.environ["MERGE"]
        meta.update(load1=loadavg(), minutes=(time.time() - t0) / 60)
        with open(os.path.join(WORK, "results.json"), "w") as f:
            json.dump(dict(meta=meta, tasks=results), f, indent=1)
    report(results, meta)


def report(results, meta):
    """The plots and the section of OUT from the measured numbers."""
    os.makedirs("docs/img", exist_ok=True)
    for task, res in results.items():
        svg_plot(task, res, f"docs/img/bench_algos_{task}.svg")
    write_section(OUT, "bench_algos", section(results, meta))
    log(f"wrote the section of {OUT}; numbers: {meta['work']}/results.json")


if __name__ == "__main__":
    main()
