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
    python3 bench/bench_peers.py --what dit-pretrain,dit-fg-lora    # the DiT rows (make bench-peers-dit)

--what also takes awm and pretrain (the MLP's AWM epoch and pretraining step: bench/peers/more_*.py) and
dit-pretrain, dit-fg-lora (issue 20: a shapes-dit-s pretraining step, and a Flow-GRPO epoch with
`--lora-rank 8` on the DiT: bench/peers/dit_*.py, on --dit-ckpt), each in its own section.

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
import dit_common as dc  # noqa: E402
import epoch_common as ec  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
JAX_VERSION = "0.10.2"
JAXENV = os.environ.get("JAXENV", os.path.join(BUILD, "jaxenv"))  # JAXENV=DIR: an existing one
SYS_PY = "/usr/bin/python3"  # Debian's python3-torch lives there
DIT_CKPT = "demo/bench_dit_base/shapes-dit-s-682-s0.safetensors"
PRETRAIN_DESC = ("`flowrl pretrain` defaults (batch 128: noise, a forward and backward, clipping, AdamW, the EMA "
                 "copy); flowrl's step is (a run of 1 + S steps − a run of 1 step) / S, so process start, the first "
                 "step and the checkpoint cancel (one sample per round); flowrl renders its shapes each step, the "
                 "peers train on a stand-in batch. PyTorch: `bench/peers/{script}_torch.py {w}` (eager); JAX: "
                 "`bench/peers/{script}_jax.py {w}` (one jit per step)")
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


def run_flowrl(ckpt, threads, epochs, fuse=True, algo="flow-grpo", extra=()):
    work = tempfile.mkdtemp(prefix="bench_peers.")
    try:
        cmd = [os.path.join(BUILD, "flowrl"), "train", "--algo", algo, "--base", ckpt, "--out",
               os.path.join(work, "r"), "--epochs", str(epochs + 1), "--backend", "opt", "--threads", str(threads),
               "--checkpoint-every", "0", "--eval-n", "0"] + list(extra)
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


def alternate(progs, rounds, what):
    """{(program, threads): [seconds, ...]}: every round runs each program at 1 core, then at 2 threads."""
    times = {(p, th): [] for p, _ in progs for th in (1, 2)}
    for r in range(rounds):
        for th in (1, 2):
            for p, f in progs:
                times[(p, th)] += f(th)
        log(f"{what}round {r + 1}/{rounds}: " + ", ".join(
            f"{p} {th}t {statistics.median(times[(p, th)]):.4f} s" for p, _ in progs for th in (1, 2)))
    return times


def table(progs, med, flops, digits, first_peer):
    """The rows of a section's table (median seconds, GFLOP/s, flowrl opt's time over this one at 1 core and
    2 threads) and the line on flowrl against the faster peer (progs[first_peer:] are the peers)."""
    L = []
    for p, _ in progs:
        cells = []
        for th in (1, 2):
            s = med[(p, th)]
            cells += [f"{s:.{digits}f}", f"{flops / s / 1e9:.1f}", f"{med[('flowrl opt', th)] / s:.2f}"]
        L.append(f"| {p} | " + " | ".join(cells) + " |")
    best = {th: min(med[(p, th)] for p, _ in progs[first_peer:]) for th in (1, 2)}
    return L + ["", "flowrl opt against the faster peer: " + "; ".join(
        f"{th} {'core' if th == 1 else 'threads'}: {best[th] / med[('flowrl opt', th)]:.2f}x its speed"
        + (" (flowrl leads)" if med[("flowrl opt", th)] <= best[th] else " (flowrl behind)") for th in (1, 2))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="demo/shapes_base.safetensors")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--what", default="flow-grpo,awm,pretrain",
                    help="flow-grpo (section bench_peers), awm (bench_peers_awm), pretrain (bench_peers_pretrain), "
                         "dit-pretrain (bench_peers_dit-pretrain), dit-fg-lora (bench_peers_dit-fg-lora)")
    ap.add_argument("--dit-ckpt", default=DIT_CKPT,
                    help="the DiT base of the dit-* rows (default: make bench-dit-base's seed-0 base; when it is "
                         "missing, a one-step `flowrl pretrain --preset shapes-dit-s`: timing needs its shapes only)")
    a = ap.parse_args()
    os.chdir(ROOT)
    if not os.path.exists(a.ckpt):
        raise SystemExit(f"bench_peers: {a.ckpt} not found (make demo writes it, or `flowrl pretrain --task shapes`)")
    if not shutil.which("taskset"):
        raise SystemExit("bench_peers: taskset (util-linux) not found: the 1-core rows pin to CPU 0 with it")
    jpy = jax_python()
    what = a.what.split(",")
    if any(w != "flow-grpo" for w in what):
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
    times = alternate(progs, a.rounds, "")
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
    L += table(progs, med, flops, 3, 2)
    L[-1] += f". Every epoch time measured: {sum(len(v) for v in times.values())} samples."
    L.append("<!-- bench_peers end -->")
    write_section(OUT, "bench_peers", "\n".join(L) + "\n")
    log(f"wrote the section of {OUT}")


def dit_base(a, work):
    """--dit-ckpt, or (missing) a one-step shapes-dit-s pretrain in work: the rows time shapes, not weights."""
    if os.path.exists(a.dit_ckpt):
        return a.dit_ckpt
    path = os.path.join(work, "dit.safetensors")
    log(f"{a.dit_ckpt} not found (make bench-dit-base writes it): timing on a one-step shapes-dit-s pretrain")
    cmd = [os.path.join(BUILD, "flowrl"), "pretrain", "--task", "shapes", "--preset", "shapes-dit-s",
           "--max-train-steps", "1", "--out", path, "--threads", "2", "--progress", "off"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"bench_peers: {' '.join(cmd)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return path


# The rows of more(): title, flowrl's work, the peers' programs (script, mode), repetitions per round.
MORE = {
    "awm": ("One AWM epoch against PyTorch and JAX (issue 15)",
            "`flowrl train --algo awm` defaults (P x G = 64 samples, ODE rollout of 14 steps, 2 batches of K = 6 "
            "training times per sample: the policy's forward and backward and the frozen base's and the EMA copy's "
            "forwards of 192 rows each, one optimizer step, the EMA copy's update); flowrl's time is its "
            "metrics.jsonl `seconds`. PyTorch: `bench/peers/more_torch.py awm` (eager, a forward/backward per "
            "batch); JAX: `bench/peers/more_jax.py awm` (rollout one jitted scan, the optimizer step one jit over "
            "both batches' 384 rows)", "more", "epoch"),
    "pretrain": ("One pretraining step against PyTorch and JAX (issue 15)", PRETRAIN_DESC.format(w="pretrain",
                 script="more"), "more", "step"),
    "dit-pretrain": ("One DiT pretraining step against PyTorch and JAX (issue 20)",
                     PRETRAIN_DESC.format(w="pretrain", script="dit") + ". The DiT: patch embedding, learned "
                     "positions, the prompt's tokens in a joint attention, adaLN-zero blocks (bench/peers/dit_common.py "
                     "follows core/dit.c)", "dit", "step"),
    "dit-fg-lora": ("One Flow-GRPO epoch with LoRA on the DiT against PyTorch and JAX (issue 20)",
                    "`flowrl train --algo flow-grpo --lora-rank 8` defaults on the DiT (rank-8 adapters on every "
                    "block's attention qkv and proj, the base frozen; the KL reference is the base with the adapter "
                    "off; otherwise `flowrl train --algo flow-grpo`'s epoch: P 8 x G 8, SDE T 10, 9 trained steps, "
                    "micro-batches of 16, an optimizer step every 2, KL on); flowrl's time is its metrics.jsonl `seconds`. "
                    "PyTorch: `bench/peers/dit_torch.py fg-lora` (bench/peers/epoch_torch.py's loop on the DiT); JAX: "
                    "`bench/peers/dit_jax.py fg-lora` (rollout one jitted scan, each optimizer step one jit)",
                    "dit", "epoch"),
}


def more(a, jpy, what):
    """The rows besides the MLP's Flow-GRPO epoch (MORE) against their PyTorch and JAX peers, each in its
    own section, alternating as the Flow-GRPO epoch's."""
    work = tempfile.mkdtemp(prefix="bench_peers.")
    try:
        for w in what:
            if w not in MORE:
                raise SystemExit(f"bench_peers: --what {w}: expected flow-grpo, " + ", ".join(MORE))
            more_row(a, jpy, w, dit_base(a, work) if w.startswith("dit-") else a.ckpt)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def more_row(a, jpy, w, ckpt):
    title, desc, script, unit = MORE[w]
    _, cfg = dc.load_dit(ckpt) if w.startswith("dit-") else ec.load_weights(ckpt)
    if w == "awm":
        flops = ec.awm_flops(cfg)
        progs = [("flowrl opt", lambda th: run_flowrl(ckpt, th, a.epochs, algo="awm"))]
    elif w == "pretrain":
        flops = ec.pretrain_flops(cfg)
    elif w == "dit-pretrain":
        flops = dc.dit_pretrain_flops(cfg)
    else:
        flops = dc.dit_fg_flops(cfg)
        progs = [("flowrl opt", lambda th: run_flowrl(ckpt, th, a.epochs, extra=["--lora-rank", "8"]))]
    if unit == "step":
        progs = [("flowrl opt", lambda th: run_pretrain(ckpt, th, 8 * a.epochs))]
    reps = a.epochs if unit == "epoch" else 4 * a.epochs
    mode = w[4:] if w.startswith("dit-") else w
    progs += [("PyTorch 1.13 eager", lambda th: run_peer(SYS_PY, f"{script}_torch.py", ckpt, th, reps, mode)),
              (f"JAX {JAX_VERSION} jit", lambda th: run_peer(jpy, f"{script}_jax.py", ckpt, th, reps, mode))]
    load0, t0 = loadavg(), time.time()
    times = alternate(progs, a.rounds, w + " ")
    med = {k: statistics.median(v) for k, v in times.items()}
    net = (f"D {cfg['D']}, H {cfg['H']}, F {cfg['F']}, {cfg['n_blocks']} blocks" +
           (f", {cfg['n_heads']} heads, patch {cfg['patch']}" if w.startswith("dit-") else ""))
    L = [f"<!-- bench_peers_{w} begin (written by bench/bench_peers.py; do not edit by hand) -->",
         f"## {title}", "",
         f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python3 bench/bench_peers.py --what {w} "
         f"--rounds {a.rounds} --epochs {a.epochs}` at {git_line()} on {machine_line()}; load average {load0} "
         f"before, {loadavg()} after ({(time.time() - t0) / 60:.1f} min). {desc}. Network: `{ckpt}` ({net}), "
         f"{flops / 1e9:.2f} GFLOP of GEMMs per {unit}. "
         "1 core = pinned to CPU 0 with one thread, 2 threads = unpinned; the peers compute the same network and "
         "work, not the same bits.", "",
         f"| program | 1 core: {unit} s (median) | GFLOP/s | flowrl / this | 2 threads: {unit} s (median) | GFLOP/s "
         "| flowrl / this |", "|---|---|---|---|---|---|---|"]
    L += table(progs, med, flops, 4, 1)
    L[-1] += f". Samples: {sum(len(v) for v in times.values())}."
    L.append(f"<!-- bench_peers_{w} end -->")
    write_section(OUT, f"bench_peers_{w}", "\n".join(L) + "\n")
    log(f"wrote the {w} section of {OUT}")


if __name__ == "__main__":
    main()
