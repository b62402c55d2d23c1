"""The shapes measurement shared by bench_gmflow.py --task shapes and bench_piflow.py --task shapes
(docs/algorithms/gmflow.md §7, piflow.md §7): the teacher (the shapes flow base of `flowrl pretrain`),
its 50-step Euler samples as the reference, the metric's floor (a second 50-step set), the teacher at
its own few step counts, and the scoring of a sample file: the sliced W2 to the reference
(`flowrl piflow swd`, 512 projections, seed 0) and the detector's accuracy printed by the sampling
command. Sample i has training prompt i mod 52 everywhere (student, teacher, reference): the sliced W2
is pooled over the 52 training prompts, N / 52 samples each."""
import os
import re
import time

from benchlib import ci95, flowrl, fmt_ci

N = 1040  # 20 samples of each of the 52 training prompts
TEACHER_DIR = "demo/bench_shapes_teacher"  # the teacher and its reference, shared by both benches
TEACHER_STEPS = 4000
TEACHER_COUNTS = (1, 2, 4, 8)  # the teacher's own Euler step counts compared with


def teacher_cmd(path):
    return ["pretrain", "--task", "shapes", "--out", path, "--max-train-steps", TEACHER_STEPS, "--threads", 1,
            "--progress", "off", "--force"]


def ensure_teacher(binary, log):
    """The teacher at TEACHER_DIR/teacher.safetensors, pretrained unless it exists from the same command."""
    d = TEACHER_DIR
    os.makedirs(d, exist_ok=True)
    path = f"{d}/teacher.safetensors"
    cmd = "flowrl " + " ".join(str(x) for x in teacher_cmd(path))
    side = f"{d}/teacher.cmd"
    if not (os.path.exists(path) and os.path.exists(side) and open(side).read().strip() == cmd):
        log("pretraining the teacher: " + cmd)
        t0 = time.time()
        flowrl(binary, teacher_cmd(path), name="gm_shapes")
        log(f"teacher: {time.time() - t0:.0f} s")
        open(side, "w").write(cmd + "\n")
    return path, cmd


def accuracy(out):
    m = re.search(r"geneval accuracy \(the detector, strict\) over \d+ samples[^:]*: ([0-9.]+)", out)
    if not m:
        raise SystemExit("gm_shapes: no accuracy in: " + out[-300:])
    return float(m.group(1))


def swd(binary, a, b):
    out = flowrl(binary, ["piflow", "swd", a, b], name="gm_shapes")
    return float(re.search(r"sliced_w2 ([0-9.eE+-]+)", out).group(1))


def reference(binary, teacher):
    """The reference (seed 0) and the floor (a second set, seed 7, against it); the reference's accuracy."""
    d = TEACHER_DIR
    ref = f"{d}/teacher50.safetensors"
    out = flowrl(binary, ["piflow", "teacher", "--ckpt", teacher, "--n", N, "--num-steps", 50, "--seed", 0, "--out", ref,
                          "--threads", 1], name="gm_shapes")
    ref_acc = accuracy(out)
    ref2 = f"{d}/teacher50_b.safetensors"
    out = flowrl(binary, ["piflow", "teacher", "--ckpt", teacher, "--n", N, "--num-steps", 50, "--seed", 7, "--out", ref2,
                          "--threads", 1], name="gm_shapes")
    return ref, ref_acc, swd(binary, ref, ref2), accuracy(out)


def teacher_rows(binary, teacher, ref, seed):
    """The teacher at TEACHER_COUNTS Euler steps, sampling seed 100 + seed: {steps: (sliced W2, accuracy)}."""
    r = {}
    for st in TEACHER_COUNTS:
        f = f"{TEACHER_DIR}/teacher{st}_s{seed}.safetensors"
        out = flowrl(binary, ["piflow", "teacher", "--ckpt", teacher, "--n", N, "--num-steps", st, "--seed", 100 + seed,
                              "--out", f, "--threads", 1], name="gm_shapes")
        r[st] = (swd(binary, ref, f), accuracy(out))
    return r


def _per(xs, digits=4):
    return ", ".join(f"{x:.{digits}f}" for x in xs)


def section(marker, script, title, intro, tcmd, ref_acc, floor, floor_acc, tea, seeds, rows, pairs, extra):
    """The BENCHMARKS.md section: the teacher rows (tea: per seed {steps: (W2, acc)}), the model rows
    (name, calls, [(W2, acc)] per seed), and per key of pairs (untrained, trained) per seed the gain and
    the comparison with the teacher at the same number of network calls."""
    lines = ["| sampler | network calls per sample | sliced W2 per seed | mean ± 95% | accuracy per seed | mean ± 95% |",
             "|---|---|---|---|---|---|",
             f"| teacher, 50 Euler steps (the reference itself, seed 0) | 50 | - | - | {ref_acc:.3f} | - |",
             f"| teacher, 50 Euler steps (a second set, seed 7: the metric's floor) | 50 | {floor:.4f} | - | "
             f"{floor_acc:.3f} | - |"]

    def row(name, calls, ps):
        w, acc = [p[0] for p in ps], [p[1] for p in ps]
        return (f"| {name} | {calls} | {_per(w)} | {fmt_ci(w, digits=4)} | {_per(acc, 3)} | {fmt_ci(acc, digits=3)} |")
    for st in TEACHER_COUNTS:
        lines.append(row(f"teacher, {st} Euler steps", st, [t[st] for t in tea]))
    for name, calls, ps in rows:
        lines.append(row(name, calls, ps))
    verdicts = []
    for calls, (unt, tr) in pairs.items():
        gain = [u[0] - t[0] for u, t in zip(unt, tr)]
        m, h = ci95(gain)
        word = "met" if min(gain) > 0 and m - h > 0 else "not met"
        verdicts.append(f"at {calls} network call(s) per sample the trained model's sliced W2 is lower than its "
                        f"untrained start's by {_per(gain)} ({m:.4f} ± {h:.4f}; the margin asked: lower on every seed "
                        f"and the interval above 0: **{word}**)")
        if calls in TEACHER_COUNTS:
            vs = [t[calls][0] - x[0] for t, x in zip(tea, tr)]
            acc = [x[1] - t[calls][1] for t, x in zip(tea, tr)]
            m2, h2 = ci95(vs)
            verdicts.append(f"against the teacher at the same {calls} Euler step(s) (teacher − model, positive: the "
                            f"model is closer to the reference) {_per(vs)} ({m2:.4f} ± {h2:.4f}: the model is "
                            f"**{'better' if m2 - h2 > 0 else 'worse' if m2 + h2 < 0 else 'not separated'}**), "
                            f"accuracy model − teacher {_per(acc, 3)}")
    return "\n".join([
        f"<!-- {marker} begin (written by {script}; do not edit by hand) -->", title, "",
        intro + " Teacher (the shapes flow base): `" + tcmd + "` (shapes-s, x0 head, EMA weights). Reference: "
        f"{N:,} teacher samples at 50 Euler steps (seed 0), sample i of training prompt i mod 52 (20 per prompt: the "
        "sliced W2 is pooled over the 52 training prompts); the teacher at its own step counts: `flowrl piflow "
        "teacher --num-steps S' --seed 100 + S`. Scores: `flowrl piflow swd` (512 projections, seed 0) to the "
        "reference, and the detector's strict accuracy (`flowrl eval`'s) printed by the sampling commands. Seeds "
        + seeds + "; mean ± 95% t-interval over them.", "",
        *lines, "",
        "; ".join(verdicts) + ". " + extra,
        f"<!-- {marker} end -->", ""])
