#!/usr/bin/env python3
"""A shapes-dit-s base against the shapes MLP base at the same pretraining wall-clock (issue 20, "Done
when"). `make bench-dit-base` runs it.

Both presets are pretrained with `flowrl pretrain --task shapes`'s defaults (batch 128, lr 1e-3 cosine,
warm-up 100, EMA 0.999, logit-normal sigma) except --max-train-steps: the MLP (shapes-s) gets its default
length, MLP_STEPS (10000, README's "~3 min on 2 cores"); the DiT gets the steps that cost the same
wall-clock, MLP_STEPS x MS_MLP / MS_DIT, with the per-step costs measured on the QUIET machine (below),
not during this run: the machine these runs share is loaded, and the bits of a run do not depend on load.
Each base is evaluated on the 18 held-out prompts and the 52 train prompts (`flowrl eval --n N`, ODE 40
steps, fixed sampling seeds, the EMA weights), SEEDS pretraining seeds per preset, mean ± 95% t-interval.
EQUAL_STEPS_SEEDS (default none) adds DiT bases pretrained for MLP_STEPS steps (equal steps: 14.7x the
wall-clock).

Writes its section of BENCHMARKS.md (between the bench_dit_base markers) and WORK/results.json.
Environment (defaults): BUILD (build), WORK (demo/bench_dit_base), OUT (BENCHMARKS.md), JOBS (2), THREADS (1), SEEDS
("0 1 2"), MLP_STEPS (10000), N (32; held-out), N_TRAIN (8), EQUAL_STEPS_SEEDS (""). A checkpoint already in WORK whose metadata
(preset, steps, seed, batch) matches is reused, so an interrupted run resumes where it stopped and
demo/shapes_base.safetensors (seed 0) can be copied in as the MLP's seed-0 base.
"""
import concurrent.futures as cf
import datetime
import json
import math
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import T_QUANT, ci95, ckpt_meta, flowrl, fmt_ci, git_line, loadavg, logger, machine_line, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
WORK = os.environ.get("WORK", "demo/bench_dit_base")
JOBS = int(os.environ.get("JOBS", "2"))
THREADS = int(os.environ.get("THREADS", "1"))  # pretraining threads per run (the bits do not depend on it)
SEEDS = [int(s) for s in os.environ.get("SEEDS", "0 1 2").split()]
EQUAL_STEPS_SEEDS = [int(s) for s in os.environ.get("EQUAL_STEPS_SEEDS", "").split()]
MLP_STEPS = int(os.environ.get("MLP_STEPS", "10000"))
N = int(os.environ.get("N", "32"))
N_TRAIN = int(os.environ.get("N_TRAIN", "8"))  # samples per train prompt (52 prompts: 8 are 416 samples)
BATCH = 128  # pretrain's default --train-batch-size

# Per-step wall-clock on the quiet machine (2026-12-07 01:12 UTC, load average < 1): `flowrl pretrain --task
# shapes --preset P --max-train-steps N --backend opt --threads 2`, defaults otherwise, wall including start-up;
# the difference of two lengths removes the start-up: shapes-s 400 steps 5.51 s, 10 steps 0.25 s; shapes-dit-s
# 40 steps 8.06 s, 10 steps 2.13 s.
MS_MLP = (5.51 - 0.25) / (400 - 10) * 1000  # 13.5 ms
MS_DIT = (8.06 - 2.13) / (40 - 10) * 1000  # 198 ms
DIT_STEPS = round(MLP_STEPS * MS_MLP / MS_DIT)

log = logger("bench_dit_base")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_dit_base")


def base(preset, steps, seed):
    """The checkpoint of PRESET pretrained STEPS steps with SEED (pretrained here unless WORK has it); its
    wall-clock in seconds under this run's load (None when reused)."""
    path = os.path.join(WORK, f"{preset}-{steps}-s{seed}.safetensors")
    want = {"preset": preset, "pretrain.steps": str(steps), "seed": str(seed), "pretrain.batch": str(BATCH)}
    if os.path.exists(path):
        meta = ckpt_meta(FLOWRL, path, name="bench_dit_base")
        if all(meta.get(k) == v for k, v in want.items()):
            return path, None
    log(f"pretraining {path}")
    t0 = time.time()
    sh(["pretrain", "--task", "shapes", "--preset", preset, "--max-train-steps", steps, "--seed", seed, "--out", path,
        "--backend", "opt", "--threads", THREADS, "--progress", "off", "--force"], out=path + ".log")
    return path, time.time() - t0


def evaluate(ckpt, split):
    j = json.loads(sh(["eval", "--ckpt", ckpt, "--task", "shapes", "--split", split, "--n", N if split == "eval" else N_TRAIN,
                       "--json", "--threads", 1,
                       "--backend", "opt"]))
    return j["overall"]


def one(item):
    preset, steps, seed = item
    path, wall = base(preset, steps, seed)
    return dict(preset=preset, steps=steps, seed=seed, path=path, wall=wall, loss=float(ckpt_meta(FLOWRL, path)["pretrain.loss"]),
                heldout=evaluate(path, "eval"), train=evaluate(path, "train"))


def diff_ci(a, b):
    """Mean of a minus mean of b and the half-width of its 95% t-interval (Welch, Welch–Satterthwaite dof)."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    if va + vb == 0:
        return ma - mb, 0.0
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = T_QUANT[min(max(int(math.floor(dof)), 1), len(T_QUANT)) - 1]
    return ma - mb, t * math.sqrt(va + vb)


def main():
    os.chdir(ROOT)
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_dit_base: {FLOWRL} not found: run make first")
    os.makedirs(WORK, exist_ok=True)
    demo = "demo/shapes_base.safetensors"  # the demo's base is the MLP's seed 0 at the default length
    mlp0 = os.path.join(WORK, f"shapes-s-{MLP_STEPS}-s0.safetensors")
    if 0 in SEEDS and not os.path.exists(mlp0) and os.path.exists(demo):
        shutil.copyfile(demo, mlp0)  # reused only if its metadata matches (base())
    t0, load0 = time.time(), loadavg()
    items = [("shapes-s", MLP_STEPS, s) for s in SEEDS] + [("shapes-dit-s", DIT_STEPS, s) for s in SEEDS] + \
        [("shapes-dit-s", MLP_STEPS, s) for s in EQUAL_STEPS_SEEDS]
    with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
        rows = list(ex.map(one, items))
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(dict(ms_mlp=MS_MLP, ms_dit=MS_DIT, dit_steps=DIT_STEPS, rows=rows), f, indent=1)

    def group(preset, steps):
        return [r for r in rows if r["preset"] == preset and r["steps"] == steps]

    groups = [("shapes-s (MLP)", group("shapes-s", MLP_STEPS), "its default length"),
              ("shapes-dit-s", group("shapes-dit-s", DIT_STEPS), "the MLP's wall-clock"),
              ("shapes-dit-s", group("shapes-dit-s", MLP_STEPS), "the MLP's steps (14.7x its wall-clock)")]
    eq = ' EQUAL_STEPS_SEEDS="%s"' % " ".join(map(str, EQUAL_STEPS_SEEDS)) if EQUAL_STEPS_SEEDS else ""
    L = ["<!-- bench_dit_base begin: written by bench/bench_dit_base.py (make bench-dit-base), do not edit by hand -->",
         "## DiT against the MLP: the base at equal pretraining wall-clock (issue 20)", "",
         f"Command: `make bench-dit-base` (bench/bench_dit_base.py; SEEDS=\"{' '.join(map(str, SEEDS))}\" MLP_STEPS={MLP_STEPS} "
         f"N={N} N_TRAIN={N_TRAIN}{eq}) on "
         f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; source git {git_line()}. Machine: {machine_line()}; "
         f"{JOBS} runs at a time, `--backend opt`, pretraining `--threads {THREADS}` (eval 1), nice 10. Load average {load0} at the start, {loadavg()} at the "
         f"end; {(time.time() - t0) / 60:.0f} min in all ({sum(r['wall'] is not None for r in rows)} of {len(rows)} bases "
         "pretrained in this invocation, the others reused from an earlier one: same preset, steps, seed and batch).", "",
         f"**Equal wall-clock by the quiet per-step cost**, not by this run's clock: the lead measured on the quiet machine "
         f"(2026-12-07 01:12 UTC, load average < 1; `flowrl pretrain --task shapes --preset P --max-train-steps N --backend opt "
         f"--threads 2`, defaults otherwise, wall including start-up, two lengths to remove the start-up) "
         f"shapes-s {MS_MLP:.1f} ms/step (400 steps 5.51 s, 10 steps 0.25 s) and shapes-dit-s {MS_DIT:.0f} ms/step (40 steps "
         f"8.06 s, 10 steps 2.13 s), {MS_DIT / MS_MLP:.1f}x. The MLP base gets pretrain's default length, {MLP_STEPS} steps of "
         f"{BATCH} (~{MLP_STEPS * MS_MLP / 60000:.1f} min quiet on 2 threads); the DiT gets {MLP_STEPS} x {MS_MLP:.1f} / "
         f"{MS_DIT:.0f} = **{DIT_STEPS} steps** of {BATCH}. Everything else is pretrain's defaults (lr 1e-3 cosine, warm-up 100, "
         "EMA 0.999, logit-normal σ, CFG dropout 0.1). The bits of a run do not depend on load or threads, so every accuracy "
         "below reproduces exactly; the wall-clock column is this loaded run's and is not comparable.", "",
         f"Accuracy: `flowrl eval --split eval --n {N}` and `--split train --n {N_TRAIN}` (ODE 40 steps, fixed sampling seeds, the EMA weights): the 18 "
         f"held-out prompts ({18 * N} samples, binomial SD ≈ 2 points) and the 52 train prompts ({52 * N_TRAIN} samples); "
         "mean ± 95% t-interval over "
         "the pretraining seeds.", "",
         "| base | pretraining | steps | seeds | final loss | held-out % per seed | held-out % | train % | diversity | wall min per base (loaded) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g, what in groups:
        if not g:
            continue
        walls = [r["wall"] for r in g if r["wall"] is not None]
        L.append(f"| {name} | {what} | {g[0]['steps']} | {', '.join(str(r['seed']) for r in g)} | "
                 f"{fmt_ci([r['loss'] for r in g], 1, 4)} | {', '.join('%.1f' % (100 * r['heldout']['accuracy']) for r in g)} | "
                 f"{fmt_ci([r['heldout']['accuracy'] for r in g], 100)} | {fmt_ci([r['train']['accuracy'] for r in g], 100)} | "
                 f"{fmt_ci([r['heldout']['diversity'] for r in g], 1, 3)} | "
                 f"{fmt_ci([w / 60 for w in walls]) if walls else 'reused'} |")
    mlp, dit = groups[0][1], groups[1][1]
    if len(mlp) > 1 and len(dit) > 1:
        d, hw = diff_ci([100 * r["heldout"]["accuracy"] for r in dit], [100 * r["heldout"]["accuracy"] for r in mlp])
        dt, hwt = diff_ci([100 * r["train"]["accuracy"] for r in dit], [100 * r["train"]["accuracy"] for r in mlp])
        verdict = "better" if d - hw > 0 else "worse" if d + hw < 0 else "not distinguishable"
        L += ["", f"DiT minus MLP at equal wall-clock (Welch 95% interval over the seeds): held-out **{d:+.1f} ± {hw:.1f} "
              f"points** ({verdict}), train {dt:+.1f} ± {hwt:.1f} points."]
    L += ["", f"Checkpoints: `{WORK}` (git-ignored; results.json holds every figure).", "<!-- bench_dit_base end -->"]
    write_section(OUT, "bench_dit_base", "\n".join(L) + "\n")
    log(f"wrote the section of {OUT} in {(time.time() - t0) / 60:.0f} min")


if __name__ == "__main__":
    main()
