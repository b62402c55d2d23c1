#!/usr/bin/env python3
"""make bench-mpi: epoch time of `mpirun -n R flowrl train` against R on this machine (R = 1, 2),
and a projection for larger R from the measured compute per sample and the measured
communication volume (docs/determinism.md "Many processes").

Writes its section of BENCHMARKS.md between the bench_mpi markers (bench/run.sh keeps it).
Runs: a small gmm2d base (its weights do not matter for timing), then for Flow-GRPO and AWM one
run without mpirun and one under `mpirun -n R` for R = 1, 2, each a few epochs; the first epoch
(warm-up) is dropped and the median of the others is reported. Every run's audit.log is
compared with the run without mpirun (they must be identical)."""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(ROOT, BUILD, "flowrl")
OUT = os.path.join(ROOT, "BENCHMARKS.md")
MPIRUN = os.environ.get("MPIRUN", "mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,vader",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1",
           OMPI_MCA_hwloc_base_binding_policy="none")
P, G, T, EPOCHS = 8, 8, 10, 4
# the projection's assumptions (written into the section)
LINK_GBPS = 10.0      # GB/s per rank, one direction: a 100 Gb/s-class interconnect
LATENCY_US = 5.0      # per collective
COLLECTIVES = 25      # per epoch, the rollout's: 3-5 gathers (3 collectives each), the NFE sum, the stop flags
PER_GATHER = 3        # collectives per gather of the update: its agreement, the buffers' agreement, the all-gather


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench_mpi: {' '.join(args)} failed:\n{p.stdout[-2000:]}")
    return p.stdout


def epochs(d):
    with open(os.path.join(d, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def med(rows, key):
    v = [r[key] for r in rows[1:] if key in r]
    return statistics.median(v) if v else float("nan")


def volume(algo, N, D):
    """The rollout's gathered bytes per epoch (docs/determinism.md "Many processes")."""
    if algo == "flow-grpo":
        return N * (4 * ((2 * T + 1) * D + T) + 8)
    return N * (4 * D + 8)


def model_sizes(path):
    """(|W|, |P|, tensors, weight tensors, r_f + r_b, gathers per forward and backward): the linear weights and
    all parameters of a checkpoint's model, the floats a row of the update gathers (docs/determinism.md "Many
    processes": r_f after the forward, r_b after the backward) and the gathers of one split forward and backward."""
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    W = Pn = nt = nw = 0
    meta = h.get("__metadata__", {})
    H, F, E, D, nb = (int(meta[f"model.{k}"]) for k in ("H", "F", "E", "D", "n_blocks"))
    row = ((2 * nb + 3) * H + nb * F + 2 * nb + E + D + 2) + ((nb + 2) * H + nb * F)
    for k, v in h.items():
        if k == "__metadata__" or k.startswith(("ema.", "optim.")):
            continue
        size = 1
        for d in v["shape"]:
            size *= d
        Pn += size
        nt += 1
        if k.endswith(".weight") and len(v["shape"]) == 2 and not k.startswith("cond."):
            W += size
            nw += 1
    return W, Pn, nt, nw, row, 11 + 2 + 2 * nb


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_mpi: {FLOWRL} not found: run make first")
    if "HAVE_MPI = 1" not in open(os.path.join(ROOT, "config.mk")).read():
        raise SystemExit("bench_mpi: flowrl was built without Open MPI (./configure found none)")
    tmp = tempfile.mkdtemp(prefix="bench_mpi.")
    load0, t0 = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run([FLOWRL, "pretrain", "--task", "gmm2d", "--out", "base.safetensors", "--max-train-steps", "20"], tmp)
    N, D = P * G, 2
    res = {}
    for algo in ("flow-grpo", "awm"):
        common = ["train", "--algo", algo, "--base", "base.safetensors", "--task", "gmm2d", "--prompts-per-epoch",
                  str(P), "--group-size", str(G), "--num-steps", str(T), "--epochs", str(EPOCHS), "--eval-n", "0",
                  "--backend", "opt", "--threads", "1"]
        run([FLOWRL] + common + ["--out", f"{algo}.plain"], tmp)
        res[algo] = {"plain": epochs(os.path.join(tmp, f"{algo}.plain"))}
        for R in (1, 2):
            d = f"{algo}.R{R}"
            run([MPIRUN, "--oversubscribe", "-n", str(R), FLOWRL] + common + ["--out", d], tmp)
            a = run([FLOWRL, "audit", f"{algo}.plain", d], tmp)
            if not re.search(rf"^identical through step {EPOCHS} ", a, re.M):
                raise SystemExit(f"bench_mpi: {d}'s audit.log differs from the run without mpirun:\n{a}")
            res[algo][R] = epochs(os.path.join(tmp, d))
        with open(os.path.join(tmp, f"{algo}.R1", "config.json")) as f:
            res[algo]["num_batches"] = json.load(f)["num_batches"]
    load1 = loadavg()
    W, Pn, n_tensors, n_weights, row, row_gathers = model_sizes(os.path.join(tmp, "base.safetensors"))
    subprocess.run(["rm", "-rf", tmp])

    L = ["<!-- bench_mpi begin: written by bench/bench_mpi.py (make bench-mpi), do not edit by hand -->",
         "## MPI: epoch time against the number of processes", "",
         f"Measured {t0} by `bench/bench_mpi.py` on this machine (2 cores, **shared**: load average {load0} before, "
         f"{load1} after — other helpers' builds and tests ran at the same time, so the times are noisy; one short "
         f"run each). gmm2d, gmm2d-s model ({Pn} parameters, {W} of them in the {n_weights} linear weights), "
         f"{P} prompts x {G} samples (N = {N}), {T} steps, backend opt, 1 thread per process, "
         f"`mpirun --oversubscribe -n R` over shared memory (btl self,vader). Median of epochs 2-{EPOCHS}. Every run's "
         "audit.log is identical to the run without mpirun (checked). *split* = the rollout and rewards each process "
         "computes (`dist.split_seconds`), *rest* = the update (the policy's forward and backward split by "
         "sample, dW by rows, AdamW by shares; the frozen models' forwards and the row reductions replicated) and "
         "the records; *comm* = time in collectives, waiting for the slower rank included "
         "(`dist.comm_seconds`); bytes: `dist.recv_bytes`, of which the update's `dist.update_recv_bytes`." +
         (f" **The load average was {load0.split()[0]} on 2 cores: the two processes of R = 2 did not have a core "
          "each, so its rows measure contention, not scaling; the projection below uses the R = 1 numbers.**"
          if float(load0.split()[0]) > 1.0 else ""), "",
         "| algorithm | run | epoch | split | rest | comm | bytes received by rank 0 | of which the update's | speed-up |",
         "|---|---|---|---|---|---|---|---|---|"]
    proj = {}
    for algo, r in res.items():
        base = med(r["plain"], "seconds")
        L.append(f"| {algo} | without mpirun | {base * 1e3:.1f} ms | | | | | | 1.00 |")
        for R in (1, 2):
            e, sp, cm = med(r[R], "seconds"), med(r[R], "dist.split_seconds"), med(r[R], "dist.comm_seconds")
            L.append(f"| {algo} | mpirun -n {R} | {e * 1e3:.1f} ms | {sp * 1e3:.1f} ms | {(e - sp) * 1e3:.1f} ms | "
                     f"{cm * 1e3:.2f} ms | {med(r[R], 'dist.recv_bytes'):.0f} | "
                     f"{med(r[R], 'dist.update_recv_bytes'):.0f} | {base / e:.2f} |")
        e1, s1 = med(r[1], "seconds"), med(r[1], "dist.split_seconds")
        U = med(r[1], "updates")
        # the split share of the update's GEMM work: backward rows do dX and dW (2 units), forward rows 1 unit;
        # the policy's forward rows (split) are its backward rows, the other forward rows are frozen models'
        fwd = med(r[1], "nfe.forward_rows") - N * T
        bwd = med(r[1], "nfe.backward_rows")
        proj[algo] = (s1 / N, e1 - s1, U, 3 * bwd / (fwd + 2 * bwd), bwd, bwd / (N / r["num_batches"]))
    L += ["", "### Projection for larger R (a model, not a measurement)", "",
          "t(R) = c·G·⌈P/R⌉ + rest·(1 − f) + rest·f/R + comm(R), comm(R) = n_c·λ + (V_r + V_u)·(R−1)/R / β, with c "
          "(split compute per sample) and rest (the update and records) measured above at R = 1; f the split share "
          "of the update, estimated from its GEMM work (f = 3b / (a + 2b), a the update's forward rows, b its "
          "backward rows = the policy's split forward rows: the `nfe.*` metrics; the frozen models' forwards, AdamW "
          "and the records counted as replicated); V_r the rollout's gathered bytes, V_u = U·4·(|W| + 3·|P|) + "
          f"b·4·(r_f + r_b) the update's (docs/determinism.md \"Many processes\"; r_f + r_b = {row} floats a row "
          f"for this model), n_c = {COLLECTIVES} + U·{PER_GATHER}·({n_weights} + 3·{n_tensors}) + "
          f"m·{PER_GATHER}·{row_gathers} collectives (m the split forward/backward pairs, estimated as b over the "
          f"micro-batch's rows N / num_batches); assumed λ = {LATENCY_US:g} µs per collective and β = "
          f"{LINK_GBPS:g} GB/s per process (a 100 Gb/s-class link between machines; shared memory is faster). The "
          "speed-up is bounded by (c·N + rest) / (rest·(1 − f)) (Amdahl): the frozen models' forwards (a KL "
          "reference, an EMA teacher), the O(B·width) row reductions, AdamW's gathers and the records are what "
          "bounds it now.", "",
          "| algorithm | c per sample | rest | f | V_r + V_u per epoch | R = 1 | R = 2 | R = 4 | R = 8 | bound |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for algo, (c, rest, U, f, b, m) in proj.items():
        Vr, Vu = volume(algo, N, D), U * 4 * (W + 3 * Pn) + b * 4 * row
        nc = COLLECTIVES + U * PER_GATHER * (n_weights + 3 * n_tensors) + m * PER_GATHER * row_gathers
        cells = []
        t1 = c * N + rest
        for R in (1, 2, 4, 8):
            comm = (nc * LATENCY_US * 1e-6 + (Vr + Vu) * (R - 1) / R / (LINK_GBPS * 1e9)) if R > 1 else 0.0
            t = c * G * -(-P // R) + rest * (1 - f) + rest * f / R + comm
            cells.append(f"{t * 1e3:.1f} ms ({t1 / t:.2f}x)")
        L.append(f"| {algo} | {c * 1e6:.0f} µs | {rest * 1e3:.1f} ms | {f:.2f} | {Vr:.0f} + {Vu:.0f} B | " +
                 " | ".join(cells) + f" | {t1 / (rest * (1 - f)):.2f}x |")
    L += ["", "<!-- bench_mpi end -->"]
    text = "\n".join(L) + "\n"
    try:
        cur = open(OUT).read()
    except FileNotFoundError:
        cur = ""
    m = re.search(r"^<!-- bench_mpi begin.*?^<!-- bench_mpi end -->\n?", cur, flags=re.S | re.M)
    new = cur[:m.start()] + text + cur[m.end():] if m else cur.rstrip("\n") + "\n\n" + text
    with open(OUT + ".tmp", "w") as f:
        f.write(new)
    os.replace(OUT + ".tmp", OUT)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
