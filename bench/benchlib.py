"""Shared helpers of the Python benchmarks (bench/bench_algos.py, bench/bench_heldout.py,
bench/bench_family.py, bench/bench_prefs.py, ...): running flowrl, the algorithms' bases, the gmm2d
bases and their held-out halfplane score, preference files, reading run directories, 95% intervals over seeds, and
rewriting one marked section of BENCHMARKS.md."""
import json
import math
import os
import re
import shlex
import subprocess
import sys

T_QUANT = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]  # t(0.975, dof 1..9)


def logger(name):
    return lambda msg: print(f"{name}: {msg}", file=sys.stderr, flush=True)


def flowrl(binary, args, out=None, name="bench"):
    """Runs BINARY ARGS (nice 10); returns stdout. A failure stops the benchmark with the command's
    last error lines; OUT, when given, receives stdout and stderr."""
    cmd = [binary] + [str(a) for a in args]
    p = subprocess.run(["nice", "-n", "10"] + cmd, capture_output=True, text=True)
    if out:
        with open(out, "w") as f:
            f.write(p.stdout + p.stderr)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise SystemExit("%s: `%s` failed (exit %d): %s" % (name, " ".join(cmd), p.returncode, " | ".join(tail)))
    return p.stdout


def ckpt_meta(binary, path, name="bench"):
    """A checkpoint's metadata as a dict (flowrl tensors --meta: 'key = value' lines)."""
    out = {}
    for l in flowrl(binary, ["tensors", path, "--meta"], name=name).splitlines():
        k, eq, v = l.partition(" = ")
        if eq:
            out[k.strip()] = v.strip()
    return out


def base_preds(binary, name="bench"):
    """algorithm -> the prediction of the base it trains, "velocity" or "epsilon" (flowrl algos --json
    base_pred): what decides a benchmark's base, so a new epsilon algorithm needs no list edited. The
    algorithms that train on an environment (trains_on "env": GFlowNets) have no base and are left out."""
    return {a["name"]: a["base_pred"] for a in json.loads(flowrl(binary, ["algos", "--json"], name=name))["algos"]
            if a.get("trains_on", "base") == "base"}


# the under-trained gmm2d bases of bench_family and bench_prefs: 100 pretraining steps each
GMM2D_BASES = {"velocity": "demo/gmm2d_base100.safetensors", "epsilon": "demo/gmm2d_eps_base100.safetensors"}


def gmm2d_base(binary, pred, name="bench"):
    """The path of the gmm2d base of that prediction, pretrained first when missing."""
    path = GMM2D_BASES[pred]
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        logger(name)(f"pretraining {path}")
        flowrl(binary, ["pretrain", "--task", "gmm2d", "--out", path, "--pred", pred, "--backend", "opt", "--threads", 1,
                        "--progress", "off", "--max-train-steps", 100, "--force"], name=name)
    return path


def make_prefs(binary, ckpt, task, pairs, reward, path, name="bench"):
    """`flowrl prefs make`: PAIRS pairs sampled from CKPT (its stochastic default sampler, seed 0) and labelled by
    REWARD, ties dropped, at most 100 x PAIRS attempts; returns the file's `flowrl prefs show --json` summary."""
    flowrl(binary, ["prefs", "make", "--ckpt", ckpt, "--task", task, "--pairs", pairs, "--reward", reward, "--seed", 0,
                    "--max-attempts", 100 * pairs, "--out", path, "--progress", "off", "--threads", 1], name=name)
    return json.loads(flowrl(binary, ["prefs", "show", path, "--json"], name=name))


def halfplane_score(binary, ckpt, name="bench"):
    """The held-out mean halfplane score of a gmm2d checkpoint: flowrl eval, 16 samples per prompt, eval's
    fixed seeds (ODE 40 steps for a velocity model, DDIM 40 steps eta 0 for an epsilon one)."""
    o = json.loads(flowrl(binary, ["eval", "--ckpt", ckpt, "--task", "gmm2d", "--n", 16, "--reward", "halfplane", "--json",
                                   "--threads", 1, "--backend", "opt"], name=name))["overall"]
    return o["mean_score"]


def median(xs):
    """The upper median (the middle of an odd count), as the tables print it."""
    return sorted(xs)[len(xs) // 2]


def metrics(rundir):
    with open(os.path.join(rundir, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def config(rundir):
    with open(os.path.join(rundir, "config.json")) as f:
        return json.load(f)


def ci95(xs):
    """(mean, half-width of the 95% t interval); half-width None for one value."""
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, None
    s = math.sqrt(max(sum((x - m) ** 2 for x in xs) / (n - 1), 0.0))
    return m, T_QUANT[min(n - 1, len(T_QUANT)) - 1] * s / math.sqrt(n)


def fmt_ci(xs, scale=1.0, digits=1):
    if not xs:
        return "-"
    m, h = ci95([x * scale for x in xs])
    return f"{m:.{digits}f}" if h is None else f"{m:.{digits}f} ± {h:.{digits}f}"


def invocation(script):
    """The command line that ran this bench, quoted so that it can be pasted back (a --methods list
    with spaces stays one argument)."""
    return " ".join(["python3", script] + ([shlex.join(sys.argv[1:])] if sys.argv[1:] else []))


def machine_line():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} logical CPUs, shared"


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def git_line():
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
    # BENCHMARKS.md left out: the benches write it, so a second bench of one invocation saw the
    # first's section as an uncommitted change of the measured code
    dirty = subprocess.run(["git", "diff", "--quiet", "--", ".", ":(exclude)BENCHMARKS.md"]).returncode != 0
    return git + (" + uncommitted changes" if dirty else "")


def write_section(path, marker, text):
    """Replaces the text between '<!-- MARKER begin' and '<!-- MARKER end -->' in PATH, or appends it."""
    try:
        cur = open(path).read()
    except FileNotFoundError:
        cur = ""
    m = re.search(r"^<!-- %s begin.*?^<!-- %s end -->\n?" % (marker, marker), cur, flags=re.S | re.M)
    new = cur[:m.start()] + text + cur[m.end():] if m else cur.rstrip("\n") + "\n\n" + text
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)
