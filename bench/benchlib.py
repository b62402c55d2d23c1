"""Shared helpers of the Python benchmarks (bench/bench_algos.py, bench/bench_heldout.py): running
flowrl, reading run directories, 95% intervals over seeds, and rewriting one marked section of
BENCHMARKS.md."""
import json
import math
import os
import re
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


def machine_line():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} logical CPUs, shared"


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def git_line():
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "diff", "--quiet"]).returncode != 0
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
