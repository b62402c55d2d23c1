#!/usr/bin/env python3
"""GMFlow's miniature (docs/algorithms/gmflow.md §6; issue 22 §10.1): GMFlow on checkerboard against its
untrained start and a rectified-flow base of similar size and time, all sampled at few steps, measured by
the sliced W2 (flowrl/swd.h) against 10,000 data samples; 3 seeds. Writes its section of BENCHMARKS.md.

  python3 bench/bench_gmflow.py [--steps 1500] [--seeds 1,2,3] [--sample-steps 8] [--jobs 2]
  python3 bench/bench_gmflow.py --task shapes [--steps 1500] [--batch 128] [--components 8]

--task shapes: GMFlow's image network (docs/algorithms/gmflow.md §7) against its untrained start and the
shapes flow base (the teacher) at its own step counts, scored by the sliced W2 to 1,040 of the teacher's
50-step samples and the detector's accuracy (bench/gm_shapes.py); section bench_gmflow_shapes.

The GMFlow paper's claim is few-step quality: at 8 steps its GM-SDE samples the checkerboard better than a
flow model's Euler steps. Runs live in demo/bench_gmflow/ (git-ignored)."""
import argparse
import concurrent.futures as cf
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import invocation, fmt_ci, flowrl, git_line, loadavg, logger, machine_line, write_section  # noqa: E402
import gm_shapes  # noqa: E402

BIN = os.environ.get("FLOWRL_BIN", "build/flowrl")
DIR = "demo/bench_gmflow"
log = logger("bench_gmflow")
N_SAMPLES, N_DATA = 4096, 10000
# GMFlow: K 64 (the toy's), embedding 64 + 64, 3 x 128 SiLU (~74k parameters; the toy's is 5 x 512 with
# 256 + 256); the flow base: the gmm2d-s preset (3 residual blocks of width 64, F 128: ~57k parameters)
GM_ARCH = ["--components", 64, "--embed", 64, "--hidden", 128, "--layers", 3]


def swd(out):
    m = re.search(r"projections\): ([0-9.eE+-]+) \(\d+ fresh data samples: ([0-9.eE+-]+)\)", out)
    if not m:
        raise SystemExit("bench_gmflow: no sliced W2 in: " + out[-300:])
    return float(m.group(1)), float(m.group(2))


def trained(ck, argv, log_path):
    """Trains by ARGV unless CK and its .wall (the seconds the training took) exist from the same command."""
    side = ck + ".wall"
    cmd = " ".join(str(x) for x in argv)
    if os.path.exists(ck) and os.path.exists(side):
        wall, old = open(side).read().split("\n", 1)
        if old.strip() == cmd:
            return float(wall)
    t1 = time.time()
    flowrl(BIN, argv, log_path, name="bench_gmflow")
    wall = time.time() - t1
    with open(side, "w") as f:
        f.write(f"{wall:.1f}\n{cmd}\n")
    return wall


def run(job):
    kind, seed, a = job
    t0 = time.time()
    meas = ["--n", N_SAMPLES, "--swd", N_DATA, "--backend", "opt", "--threads", 1]
    if kind == "gmflow":
        ck = f"{DIR}/gm_s{seed}.safetensors"
        init = f"{DIR}/gm_s{seed}_init.safetensors"
        common = ["--task", "checkerboard", "--batch", a.batch, "--lr", a.lr, "--warmup", 100, "--seed", seed,
                  "--backend", "opt", "--threads", 1, "--force"] + GM_ARCH
        flowrl(BIN, ["gmflow", "train", "--out", init, "--steps", 0] + common, name="bench_gmflow")
        wall = trained(ck, ["gmflow", "train", "--out", ck, "--steps", a.steps] + common, f"{DIR}/gm_s{seed}.log")
        nll = float(re.findall(r"last nll ([0-9.eE+-]+)", open(f"{DIR}/gm_s{seed}.log").read())[-1])
        res = {"kind": kind, "seed": seed, "wall": wall, "nll": nll}
        res["init"], res["floor"] = swd(flowrl(BIN, ["gmflow", "sample", "--ckpt", init, "--steps", a.sample_steps,
                                                     "--seed", seed] + meas, name="bench_gmflow"))
        for st in sorted({a.sample_steps, 2, 4, 16}):
            png = ["--out", f"{DIR}/gm_s{seed}_{st}.png"] if seed == 1 else []
            res[f"sw{st}"] = swd(flowrl(BIN, ["gmflow", "sample", "--ckpt", ck, "--steps", st, "--seed", seed] + meas
                                        + png, name="bench_gmflow"))[0]
    else:
        ck = f"{DIR}/rf_s{seed}.safetensors"
        wall = trained(ck, ["pretrain", "--task", "checkerboard", "--out", ck, "--max-train-steps", a.steps,
                            "--train-batch-size", a.batch, "--lr", a.lr, "--seed", seed, "--backend", "opt", "--threads",
                            1, "--progress", "off", "--force"], f"{DIR}/rf_s{seed}.log")
        res = {"kind": kind, "seed": seed, "wall": wall}
        for st in sorted({a.sample_steps, 2, 4, 16}):
            png = ["--out", f"{DIR}/rf_s{seed}_{st}.png"] if seed == 1 else []
            res[f"sw{st}"] = swd(flowrl(BIN, ["gmflow", "swd-base", "--ckpt", ck, "--sampler", "ode", "--num-steps", st,
                                              "--grid", "linear", "--shift", 1, "--seed", seed] + meas + png,
                                        name="bench_gmflow"))[0]
    res["total"] = time.time() - t0
    log(str(res))
    return res


SHAPES_DIR = "demo/bench_gmflow_shapes"
SHAPES_SAMPLE_STEPS = (8, 32)


def run_shapes(job):
    """One seed of GMFlow on shapes: the untrained start and the trained network, each sampled at
    SHAPES_SAMPLE_STEPS GM-SDE steps (EMA weights), scored against the reference."""
    seed, a, ref = job
    d = SHAPES_DIR
    common = ["--task", "shapes", "--preset", "shapes-s", "--components", a.components, "--batch", a.batch, "--lr", a.lr,
              "--warmup", 100, "--seed", seed, "--backend", "opt", "--threads", 1, "--force"]
    init, ck = f"{d}/gm_s{seed}_init.safetensors", f"{d}/gm_s{seed}.safetensors"
    flowrl(BIN, ["gmflow", "train", "--out", init, "--steps", 0] + common, name="bench_gmflow")
    wall = trained(ck, ["gmflow", "train", "--out", ck, "--steps", a.steps] + common, f"{d}/gm_s{seed}.log")
    logtxt = open(f"{d}/gm_s{seed}.log").read()
    res = {"seed": seed, "wall": wall, "nll": float(re.findall(r"last nll ([0-9.eE+-]+)", logtxt)[-1]),
           "digest": re.findall(r"parameters digest ([0-9a-f]{16})", logtxt)[-1]}
    for name, c in (("init", init), ("gm", ck)):
        for st in SHAPES_SAMPLE_STEPS:
            f = f"{d}/{name}_s{seed}_{st}.safetensors"
            out = flowrl(BIN, ["gmflow", "sample", "--ckpt", c, "--n", gm_shapes.N, "--steps", st, "--seed", 100 + seed,
                               "--out", f, "--backend", "opt", "--threads", 1], name="bench_gmflow")
            res[f"{name}{st}"] = (gm_shapes.swd(BIN, ref, f), gm_shapes.accuracy(out))
            if seed == 1 and name == "gm":
                flowrl(BIN, ["gmflow", "sample", "--ckpt", c, "--n", 104, "--steps", st, "--seed", 100 + seed,
                             "--out", f"{d}/gm_s1_{st}.png", "--threads", 1], name="bench_gmflow")
    log(str(res))
    return res


def main_shapes(a, seeds):
    os.makedirs(SHAPES_DIR, exist_ok=True)
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    teacher, tcmd = gm_shapes.ensure_teacher(BIN, log)
    ref, ref_acc, floor, floor_acc = gm_shapes.reference(BIN, teacher)
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run_shapes, [(s, a, ref) for s in seeds]))
        tea = list(ex.map(lambda s: gm_shapes.teacher_rows(BIN, teacher, ref, s), seeds))
    text = gm_shapes.section(
        "bench_gmflow_shapes", "bench/bench_gmflow.py --task shapes",
        "## GMFlow on shapes (issue 22 §10.1; docs/algorithms/gmflow.md §7)",
        f"Measured {t_start} by `{invocation('bench/bench_gmflow.py')}` at {git_line()} on "
        f"{machine_line()} (load average {load0} before; seconds under that load). GMFlow: `flowrl gmflow train --task "
        f"shapes --preset shapes-s --components {a.components} --batch {a.batch} --lr {a.lr:g} --warmup 100 --steps "
        f"{a.steps} --seed S` (the shapes-s residual MLP, its velocity head widened to the K·768 + K + 1 row, "
        "prompt-conditioned; Karras EMA); untrained: `--steps 0` (every row 0: w = 1/K, s = 0, means 0). Samples: "
        f"`flowrl gmflow sample --n {gm_shapes.N} --steps S' --seed 100 + S` (GM-SDE order 1, EMA weights).",
        tcmd, ref_acc, floor, floor_acc, tea, a.seeds,
        [(f"GMFlow K {a.components}, {nm}, GM-SDE {st} steps", st, [r[f"{key}{st}"] for r in res])
         for st in SHAPES_SAMPLE_STEPS for nm, key in (("untrained", "init"), (f"{a.steps} steps", "gm"))],
        {st: ([r[f"init{st}"] for r in res], [r[f"gm{st}"] for r in res]) for st in SHAPES_SAMPLE_STEPS},
        "Training (loaded wall-clock, s): " + ", ".join(f"{r['wall']:.0f}" for r in res) + "; final NLL "
        + ", ".join(f"{r['nll']:.1f}" for r in res) + "; parameters " + ", ".join(r["digest"] for r in res) + ".")
    write_section("BENCHMARKS.md", "bench_gmflow_shapes", text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="checkerboard", choices=["checkerboard", "shapes"])
    ap.add_argument("--components", type=int, default=8, help="shapes: K")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=None, help="256 (checkerboard), 128 (shapes)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--sample-steps", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.task == "shapes":
        a.batch = a.batch or 128
        return main_shapes(a, seeds)
    a.batch = a.batch or 256
    os.makedirs(DIR, exist_ok=True)
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, [(k, s, a) for k in ("gmflow", "rf") for s in seeds]))
    gm = [r for r in res if r["kind"] == "gmflow"]
    rf = [r for r in res if r["kind"] == "rf"]
    S = a.sample_steps
    cols = sorted({S, 2, 4, 16})
    per = lambda rs, k: ", ".join(f"{r[k]:.4f}" for r in rs)  # noqa: E731
    lines = ["| model | sliced W2 at %d steps, per seed | mean ± 95%% | " % S
             + " | ".join(f"{c} steps (mean)" for c in cols if c != S) + " | training s (median, loaded) |",
             "|---|---|---|" + "---|" * (len(cols) - 1) + "---|",
             f"| untrained GMFlow (w = 1/K, s = 0) | {per(gm, 'init')} | {fmt_ci([r['init'] for r in gm], digits=4)} | "
             + " | ".join("-" for c in cols if c != S) + " | - |"]
    for name, rs in (("GMFlow, GM-SDE order 1", gm), ("rectified flow (pretrain gmm2d-s), Euler", rf)):
        lines.append(f"| {name} | {per(rs, f'sw{S}')} | {fmt_ci([r[f'sw{S}'] for r in rs], digits=4)} | "
                     + " | ".join(f"{sum(r[f'sw{c}'] for r in rs) / len(rs):.4f}" for c in cols if c != S)
                     + f" | {sorted(r['wall'] for r in rs)[len(rs) // 2]:.0f} |")
    def verdict(st):
        gm_m = sum(r[f"sw{st}"] for r in gm) / len(gm)
        rf_m = sum(r[f"sw{st}"] for r in rf) / len(rf)
        wins = sum(g[f"sw{st}"] < f[f"sw{st}"] for g, f in zip(gm, rf))
        word = ("holds" if gm_m < rf_m and wins == len(gm) else "does not hold" if gm_m >= rf_m else
                "holds on the mean only")
        return f"at {st} steps it **{word}** (mean {gm_m:.4f} against {rf_m:.4f}, GMFlow lower in {wins} of {len(gm)} seeds)"
    cmd = invocation("bench/bench_gmflow.py")
    text = "\n".join([
        "<!-- bench_gmflow begin (written by bench/bench_gmflow.py; do not edit by hand) -->",
        "## GMFlow's few-step miniature (issue 22 §10.1)", "",
        f"Measured {t_start} by `{cmd.strip()}` at {git_line()} on {machine_line()} (load average {load0} before; the "
        "seconds are wall-clock under that load). `flowrl gmflow train --task checkerboard` (K 64, embedding 64 + 64, "
        f"3 x 128 SiLU, ~74k parameters) and `flowrl pretrain --task checkerboard` (gmm2d-s, ~57k parameters), each "
        f"{a.steps} AdamW steps of batch {a.batch} at lr {a.lr:g} (GMFlow: constant after 100 warm-up steps; the flow "
        "base: pretrain's cosine; both sampled with their EMA weights: GMFlow's the config's Karras EMA, the flow base's pretrain's 0.999 with warm-up), seeds " + a.seeds + ", backend opt, one thread per run. Each model draws "
        f"{N_SAMPLES} samples (GMFlow: GM-SDE order 1 on sigma_i = 1 - i/S; the flow base: Euler on the same linear "
        f"grid, `flowrl gmflow swd-base --sampler ode --grid linear --shift 1`), measured by the sliced W2 "
        f"(256 projections) against {N_DATA:,} data samples, averaged over 4 such reference sets (data seeds 1000, 1002, "
        "1004, 1006: one set's value moves by about ±0.03). GMFlow's public run is "
        "200,000 steps of batch 4096 at 5 x 512 with a second-order sampler: this is a miniature.", "",
        *lines, "",
        f"The floor (the metric of {N_SAMPLES} fresh data samples, seeds 1001 + 2r, against the same sets): "
        f"{gm[0]['floor']:.4f}.", "",
        "GMFlow's claim, few-step quality better than a flow model's, at this budget: "
        + "; ".join(verdict(c) for c in cols) + ".",
        "<!-- bench_gmflow end -->", ""])
    write_section("BENCHMARKS.md", "bench_gmflow", text)
    print(text)


if __name__ == "__main__":
    main()
