#!/usr/bin/env python3
"""pi-Flow's miniature (issue 22, spec more.md §10.2; docs/algorithms/piflow.md §5): a checkerboard
rectified-flow teacher (`flowrl pretrain --task checkerboard`), its 50-step Euler samples as the
reference, and per seed the 1-NFE pi-Flow student (K = 8) before and after imitation distillation,
against the teacher itself at 1 Euler step, all scored by the sliced Wasserstein-2 distance
(`flowrl piflow swd`, flowrl/swd.h) to the reference samples. Writes its BENCHMARKS.md section.

    python3 bench/bench_piflow.py [--steps 600] [--seeds 1,2,3] [--n 10000] [--teacher-steps 6000]
    python3 bench/bench_piflow.py --task shapes [--steps 400] [--batch 32] [--k 8] [--jobs 2]

--task shapes: the image student (docs/algorithms/piflow.md §7) distilled from the shapes flow base,
against its untrained start and the teacher at its own step counts, scored by the sliced W2 to 1,040
of the teacher's 50-step samples and the detector's accuracy (bench/gm_shapes.py); section
bench_piflow_shapes.

The teacher is reused when demo/bench_piflow/teacher.safetensors exists (its command is in
teacher.cmd); every run is niced."""
import argparse
import json
import concurrent.futures as cf
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import invocation, ci95, flowrl, git_line, loadavg, logger, machine_line, write_section  # noqa: E402
import gm_shapes  # noqa: E402

log = logger("bench_piflow")


def swd(binary, a, b):
    out = flowrl(binary, ["piflow", "swd", a, b], name="bench_piflow")
    return float(re.search(r"sliced_w2 ([0-9.eE+-]+)", out).group(1))


SHAPES_DIR = "demo/bench_piflow_shapes"


def run_shapes(job):
    """One seed of pi-Flow on shapes: the untrained and the distilled image student, 1 network call each."""
    seed, a, teacher, ref = job
    d = SHAPES_DIR
    r = {"seed": seed}
    for name, steps in (("untrained", 0), ("trained", a.steps)):
        ck = f"{d}/student_{name}_s{seed}.safetensors"
        t0 = time.time()
        out = flowrl(a.binary, ["piflow", "train", "--teacher", teacher, "--out", ck, "--steps", steps, "--seed", seed,
                                "--k", a.k, "--batch-size", a.batch, "--preset", "shapes-s",
                                "--log-every", max(1, a.steps // 4), "--threads", 1])
        r[name + "_wall"] = time.time() - t0
        r[name + "_loss"] = [float(x) for x in re.findall(r"loss ([0-9.eE+-]+)", out)]
        digs = re.findall(r"params ([0-9a-f]{16})", out)
        r[name + "_digest"] = digs[-1] if digs else "-"
        smp = f"{d}/samples_{name}_s{seed}.safetensors"
        out = flowrl(a.binary, ["piflow", "sample", "--ckpt", ck, "--n", gm_shapes.N, "--seed", 100 + seed, "--out", smp,
                                "--threads", 1])
        r[name] = (gm_shapes.swd(a.binary, ref, smp), gm_shapes.accuracy(out))
        if seed == 1:
            flowrl(a.binary, ["piflow", "sample", "--ckpt", ck, "--n", 104, "--seed", 100 + seed,
                              "--out", f"{d}/samples_{name}_s1.png", "--threads", 1])
    log(f"seed {seed}: {r}")
    return r


def main_shapes(a, seeds):
    os.makedirs(SHAPES_DIR, exist_ok=True)
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    teacher, tcmd = gm_shapes.ensure_teacher(a.binary, log)
    ref, ref_acc, floor, floor_acc = gm_shapes.reference(a.binary, teacher)
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run_shapes, [(s, a, teacher, ref) for s in seeds]))
        tea = list(ex.map(lambda s: gm_shapes.teacher_rows(a.binary, teacher, ref, s), seeds))
    q = max(1, a.steps // 4)
    loss_lines = "; ".join(f"seed {r['seed']}: " + " → ".join(f"{x:.2f}" for x in r["trained_loss"]) +
                           f" (parameters {r['trained_digest']}, {r['trained_wall']:.0f} s)" for r in res)
    text = gm_shapes.section(
        "bench_piflow_shapes", "bench/bench_piflow.py --task shapes",
        "## pi-Flow on shapes: a 1-NFE image student distilled from the shapes flow base (issue 22 §10.2; "
        "docs/algorithms/piflow.md §7)",
        f"Measured {t_start} by `{invocation('bench/bench_piflow.py')}` at {git_line()} on "
        f"{machine_line()} (load average {load0} before; seconds under that load). Student: `flowrl piflow train "
        f"--teacher T --preset shapes-s --k {a.k} --batch-size {a.batch} --steps {a.steps} --seed S` (GMFlow's image "
        "network: shapes-s with the K·768 + K + 1 row head, prompt-conditioned, at sigma_s = 1; N = 2 intermediate "
        "times, 128 substeps, AdamW lr 1e-3, betas (0.9, 0.95); the teacher called with each sample's prompt, no "
        "guidance); untrained: `--steps 0`. Samples: `flowrl piflow sample --n "
        f"{gm_shapes.N} --seed 100 + S` (one network call each).",
        tcmd, ref_acc, floor, floor_acc, tea, a.seeds,
        [(f"pi-Flow student K {a.k}, untrained", 1, [r["untrained"] for r in res]),
         (f"pi-Flow student K {a.k}, {a.steps} steps", 1, [r["trained"] for r in res])],
        {1: ([r["untrained"] for r in res], [r["trained"] for r in res])},
        f"Imitation loss at steps {q}, {2 * q}, {3 * q}, {4 * q} (one batch each): {loss_lines}.")
    write_section("BENCHMARKS.md", "bench_piflow_shapes", text)
    print(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="checkerboard", choices=["checkerboard", "shapes"])
    ap.add_argument("--k", type=int, default=8, help="shapes: K")
    ap.add_argument("--batch", type=int, default=32, help="shapes: x_s per step")
    ap.add_argument("--binary", default=os.environ.get("FLOWRL", "build/flowrl"))
    ap.add_argument("--dir", default="demo/bench_piflow")
    ap.add_argument("--steps", type=int, default=None, help="600 (checkerboard), 400 (shapes)")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--teacher-steps", type=int, default=6000)
    ap.add_argument("--jobs", type=int, default=3)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.task == "shapes":
        a.steps = a.steps or 400
        a.jobs = min(a.jobs, 2)
        return main_shapes(a, seeds)
    a.steps = a.steps or 600
    os.makedirs(a.dir, exist_ok=True)
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = loadavg()
    d = a.dir
    teacher = f"{d}/teacher.safetensors"
    tcmd = ["pretrain", "--task", "checkerboard", "--out", teacher, "--max-train-steps", a.teacher_steps,
            "--train-batch-size", 256, "--sigma", "uniform", "--progress", "off", "--force"]
    tcmd_s = "flowrl " + " ".join(str(x) for x in tcmd)
    if not (os.path.exists(teacher) and open(f"{d}/teacher.cmd").read().strip() == tcmd_s
            if os.path.exists(f"{d}/teacher.cmd") else False):
        log("pretraining the teacher: " + tcmd_s)
        flowrl(a.binary, tcmd, name="bench_piflow")
        open(f"{d}/teacher.cmd", "w").write(tcmd_s + "\n")
    ref = f"{d}/teacher50.safetensors"
    flowrl(a.binary, ["piflow", "teacher", "--ckpt", teacher, "--n", a.n, "--num-steps", 50, "--seed", 0, "--out", ref])
    flowrl(a.binary, ["piflow", "teacher", "--ckpt", teacher, "--n", 4000, "--num-steps", 50, "--seed", 0,
                      "--out", f"{d}/teacher50.png"])

    def run(seed):
        r = {"seed": seed}
        t1 = f"{d}/teacher1_s{seed}.safetensors"
        flowrl(a.binary, ["piflow", "teacher", "--ckpt", teacher, "--n", a.n, "--num-steps", 1, "--seed", 100 + seed,
                          "--out", t1])
        r["teacher1"] = swd(a.binary, ref, t1)
        for name, steps in (("untrained", 0), ("trained", a.steps)):
            ck = f"{d}/student_{name}_s{seed}.safetensors"
            t0 = time.time()
            out = flowrl(a.binary, ["piflow", "train", "--teacher", teacher, "--out", ck, "--steps", steps, "--seed", seed,
                                    "--log-every", max(1, a.steps // 4), "--threads", 1])
            r[name + "_wall"] = time.time() - t0
            losses = [float(x) for x in re.findall(r"loss ([0-9.eE+-]+)", out)]
            r[name + "_loss"] = losses
            digs = re.findall(r"params ([0-9a-f]{16})", out)
            r[name + "_digest"] = digs[-1] if digs else "-"
            smp = f"{d}/samples_{name}_s{seed}.safetensors"
            flowrl(a.binary, ["piflow", "sample", "--ckpt", ck, "--n", a.n, "--seed", 100 + seed, "--out", smp])
            if seed == seeds[0]:
                flowrl(a.binary, ["piflow", "sample", "--ckpt", ck, "--n", 4000, "--seed", 100 + seed,
                                  "--out", f"{d}/samples_{name}_s{seed}.png"])
            r[name] = swd(a.binary, ref, smp)
        log(f"seed {seed}: {r}")
        return r

    with cf.ThreadPoolExecutor(a.jobs) as ex:
        res = list(ex.map(run, seeds))
    # the reference against a second set of teacher samples: the metric's floor at this n
    ref2 = f"{d}/teacher50_b.safetensors"
    flowrl(a.binary, ["piflow", "teacher", "--ckpt", teacher, "--n", a.n, "--num-steps", 50, "--seed", 7, "--out", ref2])
    floor = swd(a.binary, ref, ref2)

    def fmt(xs):
        m, h = ci95(xs)
        return ", ".join(f"{x:.4f}" for x in xs) + f" | {m:.4f} ± {h:.4f}"

    rows = ["| sampler | network calls per sample | sliced W2 per seed | mean ± 95% |", "|---|---|---|---|"]
    rows.append(f"| teacher, 50 Euler steps (a second sample set, seed 7) | 50 | {floor:.4f} | - |")
    rows.append("| teacher, 1 Euler step | 1 | " + fmt([r["teacher1"] for r in res]) + " |")
    rows.append("| pi-Flow student K = 8, untrained | 1 | " + fmt([r["untrained"] for r in res]) + " |")
    rows.append(f"| pi-Flow student K = 8, {a.steps} steps | 1 | " + fmt([r["trained"] for r in res]) + " |")
    gain = [r["untrained"] - r["trained"] for r in res]
    vs1 = [r["teacher1"] - r["trained"] for r in res]
    q = max(1, a.steps // 4)
    loss_lines = "; ".join(f"seed {r['seed']}: " + " → ".join(f"{x:.4f}" for x in r["trained_loss"]) +
                           f" (final parameters {r['trained_digest']}, {r['trained_wall']:.0f} s)" for r in res)
    with open(f"{d}/results.json", "w") as f:
        json.dump({"steps": a.steps, "n": a.n, "floor": floor, "runs": res}, f, indent=1)
    cmd = invocation("bench/bench_piflow.py")
    text = "\n".join([
        "<!-- bench_piflow begin (written by bench/bench_piflow.py; do not edit by hand) -->",
        "## pi-Flow: a 1-NFE student distilled from a checkerboard teacher (issue 22 §10.2)", "",
        f"Measured {t_start} by `{cmd.strip()}` at {git_line()} on {machine_line()} (load average {load0} before; "
        "wall-clock under that load). Teacher: `" + tcmd_s + "` (preset gmm2d-s, 56,962 parameters, rectified flow, "
        "EMA weights). Reference: "
        f"{a.n:,} teacher samples at 50 Euler steps (the spec says 10^5: cut to {a.n:,} for the shared 2-core machine). "
        f"Student: `flowrl piflow train --steps {a.steps} --seed S` at its defaults (K = 8, an MLP of 3 x 256 SiLU on "
        "x_s, sigma_s = 1, batch 256, N = 2 intermediate times, 128 substeps, AdamW lr 1e-3, betas (0.9, 0.95)); "
        "untrained: the same command with --steps 0 (the initial weights: w_k = 1/K, s = 0). Each scored by "
        f"`flowrl piflow swd` (512 projections, seed 0) on {a.n:,} samples of seed 100 + S.", "",
        *rows, "",
        "Gain over the untrained student (untrained − trained, per seed): " + ", ".join(f"{x:.4f}" for x in gain) +
        "; over the teacher at 1 Euler step: " + ", ".join(f"{x:.4f}" for x in vs1) + ".",
        f"Imitation loss at steps {q}, {2 * q}, {3 * q}, {4 * q} (one batch each) " + loss_lines + ". Margin: the "
        "trained student beats its untrained start by " + f"{min(gain):.3f}" + " sliced W2 or more on every seed "
        "(the bar: a gain on all 3 seeds), and the teacher's own 1-step sampler by " + f"{min(vs1):.3f}" + " or more; "
        "it stays above the metric's floor at this n (the first row: two sets of the same teacher's samples).",
        "<!-- bench_piflow end -->", ""])
    write_section("BENCHMARKS.md", "bench_piflow", text)
    print(text)


if __name__ == "__main__":
    main()
