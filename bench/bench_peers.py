#!/usr/bin/env python3
"""make bench-peers (issue 15): one Flow-GRPO epoch of `flowrl train` against the same network and
epoch written by a user in PyTorch (Debian python3-torch, eager, Flow-GRPO's loop structure:
bench/peers/epoch_torch.py) and in JAX (PyPI jax/jaxlib JAX_VERSION in a virtual environment this
script creates, build/jaxenv: rollout one jitted scan, each optimizer step one jit over all its trained
steps: bench/peers/epoch_jax.py), on the shapes base checkpoint.

Timed in one invocation, alternating: ROUNDS rounds, each running every program once for EPOCHS timed
epochs (after its own warm-up epoch: process start, loading and JIT compilation are not timed), at 1
core (the process pinned to CPU 0 with taskset, one thread) and at 2 threads (not pinned). flowrl's
epoch time is its metrics.jsonl `seconds` (rollout, reward, advantages, update, audit records), with each
update's micro-steps fused into one forward and one backward (the default) and one by one (FLOWRL_FUSE=0,
the same bits: docs/determinism.md). Medians,
and each peer's ratio to flowrl opt at the same thread count. With the epoch's GEMM FLOPs (from the
model's shapes: bench/peers/epoch_common.py gemm_flops) the achieved GFLOP/s of each program.

    python3 bench/bench_peers.py [--ckpt demo/shapes_base.safetensors] [--rounds 5] [--epochs 3]

Writes its section of BENCHMARKS.md (OUT). The PyTorch and JAX peers compute the same network and
epoch, not the same bits (their reward is a stand-in; see bench/peers/epoch_common.py)."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from benchlib import git_line, loadavg, logger, machine_line, write_section  # noqa: E402
import epoch_common as ec  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
JAX_VERSION = "0.10.2"
JAXENV = os.environ.get("JAXENV", os.path.join(BUILD, "jaxenv"))  # JAXENV=DIR: an existing one
SYS_PY = "/usr/bin/python3"  # Debian's python3-torch lives there
log = logger("bench_peers")


def jax_python():
    """build/jaxenv/bin/python with jax == jaxlib == JAX_VERSION (created here, from PyPI, once)."""
    py = os.path.join(JAXENV, "bin", "python")
    want = f"jax {JAX_VERSION}"
    try:
        if subprocess.run([py, "-c", "import jax;print('jax', jax.__version__)"], capture_output=True,
                          text=True).stdout.strip() == want:
            return py
    except OSError:
        pass
    log(f"creating {JAXENV} with jax=={JAX_VERSION} jaxlib=={JAX_VERSION} (PyPI, about 600 MB)")
    shutil.rmtree(JAXENV, ignore_errors=True)
    subprocess.run([SYS_PY, "-m", "venv", JAXENV], check=True)
    r = subprocess.run([py, "-m", "pip", "install", "-q", f"jax=={JAX_VERSION}", f"jaxlib=={JAX_VERSION}"])
    if r.returncode:
        raise SystemExit(f"bench_peers: pip could not install jax=={JAX_VERSION} into {JAXENV} (PyPI reachable?)")
    return py


def pin(cmd, threads):
    return (["taskset", "-c", "0"] if threads == 1 else []) + cmd


def run_flowrl(ckpt, threads, epochs, fuse=True, algo="flow-grpo"):
    work = tempfile.mkdtemp(prefix="bench_peers.")
    try:
        cmd = [os.path.join(BUILD, "flowrl"), "train", "--algo", algo, "--base", ckpt, "--out",
               os.path.join(work, "r"), "--epochs", str(epochs + 1), "--backend", "opt", "--threads", str(threads),
               "--checkpoint-every", "0", "--eval-n", "0"]
        env = dict(os.environ, FLOWRL_FUSE="1" if fuse else "0")
        r = subprocess.run(pin(cmd, threads), capture_output=True, text=True, env=env)
        if r.returncode:
            raise SystemExit(f"bench_peers: {' '.join(cmd)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        with open(os.path.join(work, "r", "metrics.jsonl")) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        return [m["seconds"] for m in rows if "seconds" in m and m.get("epoch", 0) > 1]  # epoch 1 warms up
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_pretrain(ckpt, threads, steps):
    """flowrl pretrain's step time: (a run of 1 + steps steps − a run of 1 step) / steps, each the same
    command but for --max-train-steps (start-up, loading and the checkpoint cancel out)."""
    cfg = ec.load_weights(ckpt)[1]
    work = tempfile.mkdtemp(prefix="bench_peers.")
    try:
        t = []
        for n in (1, 1 + steps):
            cmd = [os.path.join(BUILD, "flowrl"), "pretrain", "--task", "shapes", "--preset", cfg.get("preset", "shapes-s"),
                   "--max-train-steps", str(n), "--out", os.path.join(work, f"p{n}.safetensors"), "--backend", "opt",
                   "--threads", str(threads), "--progress", "off"]
            t0 = time.perf_counter()
            r = subprocess.run(pin(cmd, threads), capture_output=True, text=True)
            t.append(time.perf_counter() - t0)
            if r.returncode:
                raise SystemExit(f"bench_peers: {' '.join(cmd)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        return [(t[1] - t[0]) / steps]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_peer(py, script, ckpt, threads, epochs, mode=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [py, os.path.join(ROOT, "bench", "peers", script)] + ([mode] if mode else []) + [ckpt, str(threads), str(epochs)]
    r = subprocess.run(pin(cmd, threads), capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"bench_peers: {script} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return [json.loads(l)["seconds"] for l in r.stdout.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="demo/shapes_base.safetensors")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--what", default="flow-grpo,awm,pretrain",
                    help="flow-grpo (section bench_peers), awm (bench_peers_awm), pretrain (bench_peers_pretrain)")
    a = ap.parse_args()
    os.chdir(ROOT)
    if not os.path.exists(a.ckpt):
        raise SystemExit(f"bench_peers: {a.ckpt} not found (make demo writes it, or `flowrl pretrain --task shapes`)")
    if not shutil.which("taskset"):
        raise SystemExit("bench_peers: taskset (util-linux) not found: the 1-core rows pin to CPU 0 with it")
    jpy = jax_python()
    what = a.what.split(",")
    if "awm" in what or "pretrain" in what:
        more(a, jpy, [w for w in what if w != "flow-grpo"])
    if "flow-grpo" not in what:
        return
    _, cfg = ec.load_weights(a.ckpt)
    flops = ec.gemm_flops(cfg)
    load0, t0 = loadavg(), time.time()
    progs = [("flowrl opt", lambda th: run_flowrl(a.ckpt, th, a.epochs)),
             ("flowrl opt, micro-steps one by one (FLOWRL_FUSE=0)", lambda th: run_flowrl(a.ckpt, th, a.epochs, False)),
             ("PyTorch 1.13 eager", lambda th: run_peer(SYS_PY, "epoch_torch.py", a.ckpt, th, a.epochs)),
             (f"JAX {JAX_VERSION} jit", lambda th: run_peer(jpy, "epoch_jax.py", a.ckpt, th, a.epochs))]
    times = {(p, th): [] for p, _ in progs for th in (1, 2)}
    for r in range(a.rounds):
        for th in (1, 2):
            for p, f in progs:
                times[(p, th)] += f(th)
        log(f"round {r + 1}/{a.rounds}: " + ", ".join(
            f"{p} {th}t {statistics.median(times[(p, th)]):.3f} s" for p, _ in progs for th in (1, 2)))
    load1, minutes = loadavg(), (time.time() - t0) / 60
    med = {k: statistics.median(v) for k, v in times.items()}
    L = ["<!-- bench_peers begin (written by bench/bench_peers.py; do not edit by hand) -->",
         "## One Flow-GRPO epoch against PyTorch and JAX (issue 15)", "",
         f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python3 bench/bench_peers.py --rounds "
         f"{a.rounds} --epochs {a.epochs}` (`make bench-peers`) at {git_line()} on {machine_line()}; load average "
         f"{load0} before, {load1} after ({minutes:.1f} min). The epoch: `flowrl train --algo flow-grpo` defaults on "
         f"`{a.ckpt}` (shapes-s: D {cfg['D']}, H {cfg['H']}, F {cfg['F']}, {cfg['n_blocks']} blocks; P {ec.P} x G "
         f"{ec.G}, SDE T {ec.T}, {ec.TRAINED} trained steps, micro-batches of {ec.BATCH}, an optimizer step every "
         f"{ec.GRAD_ACCUM}, KL to the frozen base on), {flops / 1e9:.2f} GFLOP of GEMMs. The programs alternate, "
         f"{a.rounds} rounds of {a.epochs} timed epochs each (after a warm-up epoch per process: start-up, loading "
         "and compilation untimed); 1 core = pinned to CPU 0 with one thread, 2 threads = unpinned. PyTorch: "
         "`bench/peers/epoch_torch.py` (eager, Flow-GRPO's loop: one forward/backward per micro-batch and step); "
         f"JAX: `bench/peers/epoch_jax.py` (rollout one jitted scan; each optimizer step one jit over its "
         f"{ec.GRAD_ACCUM * ec.BATCH * ec.TRAINED} rows). The peers compute the same network and epoch, not the same "
         "bits, and score with a stand-in reward of negligible cost (flowrl scores with the task's detector).", "",
         "| program | 1 core: epoch s (median) | GFLOP/s | flowrl / this | 2 threads: epoch s (median) | GFLOP/s "
         "| flowrl / this |", "|---|---|---|---|---|---|---|"]
    for p, _ in progs:
        cells = []
        for th in (1, 2):
            s = med[(p, th)]
            cells += [f"{s:.3f}", f"{flops / s / 1e9:.1f}", f"{med[('flowrl opt', th)] / s:.2f}"]
        L.append(f"| {p} | " + " | ".join(cells) + " |")
    best = {th: min(med[(p, th)] for p, _ in progs[2:]) for th in (1, 2)}
    L += ["", "flowrl opt against the faster peer: " + "; ".join(
        f"{th} {'core' if th == 1 else 'threads'}: {best[th] / med[('flowrl opt', th)]:.2f}x its speed"
        + (" (flowrl leads)" if med[("flowrl opt", th)] <= best[th] else " (flowrl behind)") for th in (1, 2))
        + f". Every epoch time measured: {sum(len(v) for v in times.values())} samples.",
        "<!-- bench_peers end -->"]
    write_section(OUT, "bench_peers", "\n".join(L) + "\n")
    log(f"wrote the section of {OUT}")


def more(a, jpy, what):
    """The AWM epoch and the pretraining step against their PyTorch and JAX peers (bench/peers/more_*.py),
    each in its own section, alternating as the Flow-GRPO epoch's."""
    _, cfg = ec.load_weights(a.ckpt)
    for w in what:
        if w == "awm":
            flops, unit = ec.awm_flops(cfg), "epoch"
            progs = [("flowrl opt", lambda th: run_flowrl(a.ckpt, th, a.epochs, algo="awm"))]
        elif w == "pretrain":
            flops, unit = ec.pretrain_flops(cfg), "step"
            progs = [("flowrl opt", lambda th: run_pretrain(a.ckpt, th, 8 * a.epochs))]
        else:
            raise SystemExit(f"bench_peers: --what {w}: expected flow-grpo, awm or pretrain")
        reps = a.epochs if w == "awm" else 4 * a.epochs
        progs += [("PyTorch 1.13 eager", lambda th, w=w: run_peer(SYS_PY, "more_torch.py", a.ckpt, th, reps, w)),
                  (f"JAX {JAX_VERSION} jit", lambda th, w=w: run_peer(jpy, "more_jax.py", a.ckpt, th, reps, w))]
        load0, t0 = loadavg(), time.time()
        times = {(p, th): [] for p, _ in progs for th in (1, 2)}
        for r in range(a.rounds):
            for th in (1, 2):
                for p, f in progs:
                    times[(p, th)] += f(th)
            log(f"{w} round {r + 1}/{a.rounds}: " + ", ".join(
                f"{p} {th}t {statistics.median(times[(p, th)]):.4f} s" for p, _ in progs for th in (1, 2)))
        med = {k: statistics.median(v) for k, v in times.items()}
        title = ("One AWM epoch against PyTorch and JAX (issue 15)" if w == "awm"
                 else "One pretraining step against PyTorch and JAX (issue 15)")
        desc = ("`flowrl train --algo awm` defaults (P x G = 64 samples, ODE rollout of 14 steps, 2 batches of K = 6 "
                "training times per sample: the policy's forward and backward and the frozen base's and the EMA copy's "
                "forwards of 192 rows each, one optimizer step, the EMA copy's update); flowrl's time is its "
                "metrics.jsonl `seconds`. PyTorch: `bench/peers/more_torch.py awm` (eager, a forward/backward per "
                "batch); JAX: `bench/peers/more_jax.py awm` (rollout one jitted scan, the optimizer step one jit over "
                "both batches' 384 rows)" if w == "awm" else
                "`flowrl pretrain` defaults (batch 128: noise, a forward and backward, clipping, AdamW, the EMA "
                "copy); flowrl's step is (a run of 1 + S steps − a run of 1 step) / S, so process start, the first "
                "step and the checkpoint cancel (one sample per round); flowrl renders its shapes each step, the "
                "peers train on a stand-in batch. PyTorch: `bench/peers/more_torch.py pretrain` (eager); JAX: "
                "`bench/peers/more_jax.py pretrain` (one jit per step)")
        L = [f"<!-- bench_peers_{w} begin (written by bench/bench_peers.py; do not edit by hand) -->",
             f"## {title}", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python3 bench/bench_peers.py --what {w} "
             f"--rounds {a.rounds} --epochs {a.epochs}` at {git_line()} on {machine_line()}; load average {load0} "
             f"before, {loadavg()} after ({(time.time() - t0) / 60:.1f} min). {desc}. Network: `{a.ckpt}` (D {cfg['D']}, "
             f"H {cfg['H']}, F {cfg['F']}, {cfg['n_blocks']} blocks), {flops / 1e9:.2f} GFLOP of GEMMs per {unit}. "
             "1 core = pinned to CPU 0 with one thread, 2 threads = unpinned; the peers compute the same network and "
             "work, not the same bits.", "",
             f"| program | 1 core: {unit} s (median) | GFLOP/s | flowrl / this | 2 threads: {unit} s (median) | GFLOP/s "
             "| flowrl / this |", "|---|---|---|---|---|---|---|"]
        for p, _ in progs:
            cells = []
            for th in (1, 2):
                s = med[(p, th)]
                cells += [f"{s:.4f}", f"{flops / s / 1e9:.1f}", f"{med[('flowrl opt', th)] / s:.2f}"]
            L.append(f"| {p} | " + " | ".join(cells) + " |")
        best = {th: min(med[(p, th)] for p, _ in progs[1:]) for th in (1, 2)}
        L += ["", "flowrl opt against the faster peer: " + "; ".join(
            f"{th} {'core' if th == 1 else 'threads'}: {best[th] / med[('flowrl opt', th)]:.2f}x its speed"
            + (" (flowrl leads)" if med[("flowrl opt", th)] <= best[th] else " (flowrl behind)") for th in (1, 2))
            + f". Samples: {sum(len(v) for v in times.values())}.", f"<!-- bench_peers_{w} end -->"]
        write_section(OUT, f"bench_peers_{w}", "\n".join(L) + "\n")
        log(f"wrote the {w} section of {OUT}")


if __name__ == "__main__":
    main()
