#!/usr/bin/env python3
"""The epsilon-prediction base on shapes (issue 12, first item): `flowrl pretrain --pred epsilon` against the
flow base at equal pretraining time, and measurements of why the epsilon base falls behind. `make bench-eps-base`
runs it.

Main comparison, on SEEDS: `flowrl pretrain --task shapes` (the flow base: shapes-s, x0 head, rectified flow), the
same command with `--pred epsilon --eps-weight none` (DDPM, linear betas, shapes-s's x0 head returning the ε it
implies, the unweighted loss)
and with `--pred epsilon --head velocity` (the network's output is ε̂), STEPS optimiser steps each, `--backend opt --threads 1`; the two of a seed run side by side, so they
share the machine's load, and each one's wall-clock is measured (same model size, threads, backend: equal steps are
equal time when the step costs are equal, which the table shows). Held-out accuracy: `flowrl eval --split eval
--n N` (the flow base with its ODE sampler, the epsilon base with DDIM eta 0, both 40 steps, eval's fixed seeds).

Diagnostics, on DIAG_SEED (each at the main pair's pretraining steps, scaled by forward FLOPs per sample where
the model is larger): DDIM with 20, 100 and 200 steps on the main epsilon base; the epsilon base with SD's
scaled_linear betas; a flow base without the x0 head (a velocity head of the same width, depth and inner width);
an epsilon base whose residual width H is the data's D (no output rank below D); and every epsilon base sampled
with x0-hat clipped to the data's range [-1, 1] (`flowrl eval --x0-clip 1`). With the bake-off's 10000-step
bases in demo/ (seed 0), their held-out accuracy too.

Writes its section of BENCHMARKS.md (between the bench_eps_base markers) and WORK/results.json. A pretrain whose
checkpoint and command are already in WORK is reused (its recorded wall-clock too), so a rerun only evaluates.
Environment (defaults): BUILD (build), WORK (demo/bench_eps_base), OUT (BENCHMARKS.md), JOBS (2), SEEDS (1 2 3),
STEPS (5000), N (32), DIAG=0 skips the diagnostics, WEIGHTS (eps-minsnr eps-x0w: the weighted epsilon losses,
`--eps-weight`, rows of the main table) on WEIGHT_SEEDS (default SEEDS).
"""
import concurrent.futures as cf
import datetime
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ci95, ckpt_meta, flowrl, fmt_ci, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
WORK = os.environ.get("WORK", "demo/bench_eps_base")
JOBS = int(os.environ.get("JOBS", "2"))
SEEDS = [int(s) for s in os.environ.get("SEEDS", "1 2 3").split()]
STEPS = int(os.environ.get("STEPS", "5000"))
N = int(os.environ.get("N", "32"))
DIAG = os.environ.get("DIAG", "1") != "0"
DIAG_SEED = SEEDS[0]
DDIM_STEPS = [20, 100, 200]  # besides the main comparison's 40
GAP_BAR = 10  # issue 12: the epsilon base within 10 held-out points of the flow base
BAKEOFF_BASES = dict(flow="demo/shapes_base.safetensors", eps="demo/shapes_eps_base.safetensors", steps=10000)

# name -> pretrain flags beyond the task, steps and seed; what the row measures
MAIN = {
    "flow": ([], "flow base: rectified flow, shapes-s (x0 head)"),
    "eps": (["--pred", "epsilon", "--head", "velocity"],
            "epsilon base without a head: DDPM (linear betas), shapes-s with `--head velocity` (the network's output is ε̂)"),
    "eps-x0": (["--pred", "epsilon", "--eps-weight", "none"],
               "epsilon base, unweighted loss (`--eps-weight none`): DDPM (linear betas), shapes-s's x0 head "
               "(ε̂ = (x − √ᾱ_t·x̂0)/max(√(1−ᾱ_t), 0.05))"),
}
HEAD = "eps-x0"  # the epsilon base the issue's gap is measured on
# the epsilon loss's per-row weights (pretraining.md §4, §7), on the eps x0 head; WEIGHT_SEEDS (default SEEDS) and
# WEIGHTS (default every row) choose which run
WEIGHTED = {
    "eps-minsnr": (["--pred", "epsilon", "--eps-weight", "min-snr"],
                   "epsilon base (the default for shapes), eps x0 head, Min-SNR-5 loss weight (`--eps-weight min-snr`: "
                   "x̂0 errors weighted by min(SNR, 5) instead of SNR)"),
    "eps-x0w": (["--pred", "epsilon", "--eps-weight", "x0"],
                "epsilon base, eps x0 head, the flow-like weight (`--eps-weight x0`: x̂0 errors weighted by 1/(1−ᾱ_t), "
                "the flow head's 1/σ²; v-prediction's loss)"),
}
CHOSEN = "eps-minsnr"  # the weight pretraining.md §7 recommends for shapes (its gap in bold, as HEAD's)
WEIGHT_SEEDS = [int(s) for s in os.environ.get("WEIGHT_SEEDS", " ".join(map(str, SEEDS))).split()]
WEIGHTS = os.environ.get("WEIGHTS", " ".join(WEIGHTED)).split()
ROWS = dict(MAIN, **{k: WEIGHTED[k] for k in WEIGHTS})
DIAGS = {
    "eps-scaled": (["--pred", "epsilon", "--head", "velocity", "--betas", "scaled_linear"],
                   "epsilon base, SD's scaled_linear betas (ᾱ at t = 999: 0.0047 instead of 4e-5)"),
    "flow-vhead": (["--preset", "gmm2d-s", "--hidden", 256, "--ffn", 512, "--blocks", 3],
                   "flow base without the x0 head: gmm2d-s's velocity head at shapes-s's H 256, F 512, 3 blocks "
                   "(its E 32 and SiLU are gmm2d-s's)"),
    "eps-wide": (["--pred", "epsilon", "--head", "velocity", "--hidden", 768],
                 "epsilon base with H = D = 768 (shapes-s otherwise), steps cut to the main pair's forward FLOPs (its wider "
                 "GEMMs run faster per FLOP: see its wall-clock)"),
}

log = logger("bench_eps_base")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_eps_base")


def meta(path):
    return ckpt_meta(FLOWRL, path, name="bench_eps_base")


def mflop(flags):
    """Forward MFLOP per sample of the model FLAGS make (pretrain's model line, from a 1-step run)."""
    path = os.path.join(WORK, "probe.safetensors")
    o = sh(["pretrain", "--task", "shapes", "--out", path, "--max-train-steps", 1, "--progress", "off", "--force",
            "--backend", "opt", "--threads", 1] + flags)
    m = re.search(r"([0-9.]+) MFLOP/sample forward", o)
    if not m:
        raise SystemExit(f"bench_eps_base: no 'MFLOP/sample forward' in pretrain's output:\n{o}")
    return float(m.group(1))


def pretrain(item):
    """(name, flags, steps, seed) -> the checkpoint, its wall-clock and its last loss; reused when WORK holds the
    same command's finished checkpoint."""
    name, flags, steps, seed = item
    ck = os.path.join(WORK, f"{name}-s{seed}.safetensors")
    args = ["pretrain", "--task", "shapes", "--out", ck, "--max-train-steps", steps, "--seed", seed, "--backend", "opt",
            "--threads", 1, "--progress", "off", "--force"] + flags
    side = ck + ".json"
    if os.path.exists(ck) and os.path.exists(side):
        rec = json.load(open(side))
        if rec.get("args") == [str(a) for a in args]:
            return rec
    if os.path.exists(side):
        os.remove(side)
    t0 = time.time()
    sh(args, out=ck + ".log")
    rec = dict(args=[str(a) for a in args], ckpt=ck, name=name, seed=seed, steps=steps, seconds=time.time() - t0,
               loss=float(meta(ck)["pretrain.loss"]))
    json.dump(rec, open(side, "w"), indent=1)
    log(f"{name} seed {seed}: {steps} steps in {rec['seconds']:.0f} s, loss {rec['loss']:.4f}")
    return dict(rec, trained=True)


def evaluate(ckpt, extra=()):
    j = json.loads(sh(["eval", "--ckpt", ckpt, "--task", "shapes", "--split", "eval", "--n", N, "--json",
                       "--threads", 1, "--backend", "opt"] + list(extra)))
    o = j["overall"]
    return dict(accuracy=o["correct"] / o["samples"], diversity=o["diversity"], sampler=j["sampler"], steps=j["steps"])


def pool(fn, items):
    with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
        return list(ex.map(fn, items))


def pct(x):
    return f"{100 * x:.1f}"


def section(res):
    m, D, H = res["meta"], 768, 256
    main = res["main"]
    L = ["<!-- bench_eps_base begin: written by bench/bench_eps_base.py (make bench-eps-base), do not edit by hand -->",
         "## The epsilon-prediction base on shapes (issue 12)", "",
         f"Command: `make bench-eps-base` (bench/bench_eps_base.py; STEPS={STEPS} SEEDS=\"{' '.join(map(str, SEEDS))}\" "
         f"N={N}) on {m['when']}; source git {m['git']}. Machine: {machine_line()}; {JOBS} pretrains at a time, each "
         f"`--backend opt --threads 1` (nice 10). Load average {m['load0']} at the start, {m['load1']} at the end; "
         f"{m['minutes']:.0f} min in all" + (f" ({m['reused']} of {m['pretrains']} pretrains reused from an earlier "
                                              "invocation with the same commands, their wall-clock as measured then)"
                                              if m.get("reused") else "") + ".", "",
         f"Protocol. Per seed, `flowrl pretrain --task shapes --max-train-steps {STEPS}` (the flow base) and the same "
         "command with `--pred epsilon --eps-weight none` (the epsilon base: DDPM, linear betas, shapes-s's x0 head "
         "returning ε̂, the unweighted loss) and "
         "with `--pred epsilon --head velocity` (the epsilon base before the head) run side by side; wall-clock "
         "measured per run. Held-out accuracy: `flowrl eval "
         f"--split eval --n {N}` ({N} samples x 18 held-out prompts; the flow base with the ODE sampler, the epsilon "
         "base with DDIM eta 0, 40 steps each, eval's fixed seeds). Mean ± 95% t-interval over the seeds; the gap is "
         "the flow base's accuracy minus the epsilon base's of the same seed. The weighted rows (`--eps-weight`) are the "
         "epsilon base's command with the loss weight, on the seeds their gap line names.", "",
         *([f"The weighted rows were trained and evaluated later ({m['weighted']}); the other rows' numbers are "
            "the invocation's above.", ""] if m.get("weighted") else []),
         "| base | steps | pretrain s per seed (wall-clock) | last loss | held-out % per seed | held-out % | diversity |",
         "|---|---|---|---|---|---|---|"]
    for k in [k for k in ROWS if main.get(k)]:
        rows = main[k]
        L.append(f"| {ROWS[k][1]} | {STEPS} | " + ", ".join(f"{r['seconds']:.0f}" for r in rows)
                 + f" | {fmt_ci([r['loss'] for r in rows], 1, 4)} | " + ", ".join(pct(r['eval']['accuracy']) for r in rows)
                 + f" | {fmt_ci([r['eval']['accuracy'] for r in rows], 100)} | "
                 f"{fmt_ci([r['eval']['diversity'] for r in rows], 1, 3)} |")
    flow = {r["seed"]: r for r in main["flow"]}
    for k in [k for k in ROWS if k != "flow" and main.get(k)]:
        pairs = [(flow[e["seed"]], e) for e in main[k] if e["seed"] in flow]
        gaps = [100 * (f["eval"]["accuracy"] - e["eval"]["accuracy"]) for f, e in pairs]
        ratio = [e["seconds"] / f["seconds"] for f, e in pairs]
        g, h = ci95(gaps)
        L += ["", f"- `{k}`: pretraining time, epsilon / flow, per seed: {', '.join(f'{x:.2f}' for x in ratio)} "
              "(equal steps; the network is the same but for the head).",
              (f"- **Gap (flow − {k}), held-out points: {fmt_ci(gaps)}** per seed " if k in (HEAD, CHOSEN)
               else f"- Gap (flow − {k}), held-out points: {fmt_ci(gaps)} per seed ")
              + f"(seeds {', '.join(str(e['seed']) for _, e in pairs)}) {', '.join(f'{x:.1f}' for x in gaps)}: "
              + ("**within** " if g <= GAP_BAR else "**not within** ") + f"the issue's {GAP_BAR} points."]
    if res.get("bakeoff"):
        b = res["bakeoff"]
        L.append(f"- The bake-off's bases ({BAKEOFF_BASES['steps']} steps, seed 0, `{BAKEOFF_BASES['flow']}` and "
                 f"`{BAKEOFF_BASES['eps']}`): flow {pct(b['flow']['accuracy'])}%, epsilon {pct(b['eps']['accuracy'])}% "
                 f"held-out (diversity {b['flow']['diversity']:.3f} / {b['eps']['diversity']:.3f}); last loss "
                 f"{b['flow_loss']:.4f} / {b['eps_loss']:.4f}.")
    if res.get("diag"):
        d = res["diag"]
        L += ["", f"### Why: diagnostics (seed {DIAG_SEED}; the main pair's steps, the wider model's cut to the same "
              "forward FLOPs)", "",
              "| variant | steps | pretrain s (wall-clock) | last loss | held-out % (40 steps) | diversity |",
              "|---|---|---|---|---|---|"]
        for k, r in d["runs"].items():
            L.append(f"| {DIAGS[k][1]} | {r['steps']} | {r['seconds']:.0f} | {r['loss']:.4f} | "
                     f"{pct(r['eval']['accuracy'])} | {r['eval']['diversity']:.3f} |")
        L += ["", "DDIM steps on the main epsilon base (seed %d; eta 0): " % DIAG_SEED
              + ", ".join(f"{s} steps {pct(e['accuracy'])}% (diversity {e['diversity']:.3f})"
                          for s, e in sorted(d["ddim"].items(), key=lambda kv: int(kv[0]))) + ".",
              "", "x0-hat clipped to [-1, 1] (`--x0-clip 1`, DDIM 40 steps): "
              + ", ".join(f"{k} {pct(e['accuracy'])}% (diversity {e['diversity']:.3f})" for k, e in d["clip"].items())
              + "."]
    L += ["", f"Reading ([pretraining.md §7](docs/algorithms/pretraining.md) has the whole note). shapes-s returns a "
          f"linear map of a {H}-wide layer: without a head that adds the input back, its prediction spans at most {H} of "
          f"the D = {D} directions, while ε (and the velocity ε − x0) is white noise over all {D}, so at least "
          f"(D − H)/D = {(D - H) / D:.3f} of ε's variance stays unexplained: the epsilon base's loss sits on that floor "
          "and so does the flow base without its x0 head (its held-out accuracy falls to the epsilon base's), while "
          "the x0 head (the network predicts x0, the head returns (x − x̂0)/σ) leaves the noise to the input. DDIM "
          "turns what ε̂ misses into x̂0 = (x − √(1−ᾱ)·ε̂)/√ᾱ, amplified 1/√ᾱ (125 at the first of 40 linear-beta "
          "steps, 13 with scaled_linear), and the samples leave the data's range (diversity; the data's is below 1); "
          "clipping x̂0 keeps them in range but does not make them right. The eps x0 head (the network predicts x̂0, "
          "the model returns ε̂ = (x − √ᾱ_t·x̂0)/max(√(1−ᾱ_t), 0.05)) takes the noise from the input as the flow head "
          "does, and its row above is the epsilon base with it.", "",
          f"Run directories and every measured number: `{WORK}` (git-ignored; results.json).",
          "<!-- bench_eps_base end -->"]
    return "\n".join(L) + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        os.chdir(ROOT)
        res = json.load(open(sys.argv[2]))
        write_section(OUT, "bench_eps_base", section(res))
        return
    if len(sys.argv) > 1:
        raise SystemExit("usage: bench/bench_eps_base.py [--report WORK/results.json] (see the file's docstring)")
    os.chdir(ROOT)
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_eps_base: {FLOWRL} not found: run make first")
    os.makedirs(WORK, exist_ok=True)
    t0, load0 = time.time(), loadavg()
    res = dict(meta=dict(when=f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", git=git_line(),
                         load0=load0, steps=STEPS, seeds=SEEDS, n=N))
    items = [(k, MAIN[k][0], STEPS, s) for s in SEEDS for k in MAIN]  # a seed's runs side by side
    items += [(k, WEIGHTED[k][0], STEPS, s) for s in WEIGHT_SEEDS for k in WEIGHTS]
    if DIAG:
        small = mflop([])
        wide = mflop(DIAGS["eps-wide"][0])
        for k, (flags, _) in DIAGS.items():
            items.append((k, flags, max(1, round(STEPS * small / wide)) if k == "eps-wide" else STEPS, DIAG_SEED))
    log(f"{len(items)} pretrains of shapes, {JOBS} at a time")
    recs = pool(pretrain, items)
    res["meta"].update(pretrains=len(recs), reused=sum(1 for r in recs if not r.pop("trained", False)))
    evals = pool(lambda r: evaluate(r["ckpt"]), recs)
    for r, e in zip(recs, evals):
        r["eval"] = e
    res["main"] = {k: [r for r in recs if r["name"] == k] for k in ROWS}
    if DIAG:
        eps1 = next(r for r in res["main"]["eps"] if r["seed"] == DIAG_SEED)["ckpt"]
        head1 = next(r for r in res["main"][HEAD] if r["seed"] == DIAG_SEED)["ckpt"]
        clip = [("eps", eps1), (HEAD, head1)] + [(r["name"], r["ckpt"]) for r in recs if r["name"] in DIAGS
                                                 and r["name"].startswith("eps-")]
        res["diag"] = dict(runs={r["name"]: r for r in recs if r["name"] in DIAGS},
                           ddim={str(s): e for s, e in zip(DDIM_STEPS, pool(
                               lambda s: evaluate(eps1, ["--num-steps", s]), DDIM_STEPS))},
                           clip=dict(zip([k for k, _ in clip], pool(lambda kc: evaluate(kc[1], ["--x0-clip", 1]), clip))))
    if all(os.path.exists(BAKEOFF_BASES[k]) for k in ("flow", "eps")):
        mf, me = meta(BAKEOFF_BASES["flow"]), meta(BAKEOFF_BASES["eps"])
        want = str(BAKEOFF_BASES["steps"])
        if (mf.get("step") == want and me.get("step") == want and me.get("pretrain.pred") == "epsilon"
                and mf.get("pretrain.pred", "velocity") == "velocity"):
            f, e = pool(evaluate, [BAKEOFF_BASES["flow"], BAKEOFF_BASES["eps"]])
            res["bakeoff"] = dict(flow=f, eps=e, flow_loss=float(mf["pretrain.loss"]), eps_loss=float(me["pretrain.loss"]))
    res["meta"].update(load1=loadavg(), minutes=(time.time() - t0) / 60)
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_section(OUT, "bench_eps_base", section(res))
    log(f"wrote the section of {OUT}; numbers: {WORK}/results.json")
    for k in ROWS:
        log(f"{k}: held-out {fmt_ci([r['eval']['accuracy'] for r in res['main'][k]], 100)} %")


if __name__ == "__main__":
    main()
