#!/usr/bin/env python3
"""Flow-GRPO and AWM with `--lora-rank 8` on the equal-wall-clock shapes-dit-s base against issue 20's bar
(train-prompt accuracy +5 points or more, the 95% t-interval over seeds excluding zero). `make bench-dit-lora`
runs it; it writes BENCHMARKS.md's section "DiT with LoRA" (between the bench_dit_lora markers).

    python3 bench/bench_dit_lora.py [--rows awm,fg-best] [--seeds 1,2,3] [--keep]
    python3 bench/bench_dit_lora.py --from-results

The base is bench_dit_base's seed-0 DiT (682 steps of 128, `demo/bench_dit_base/shapes-dit-s-682-s0.safetensors`),
reused when its sha256 is the stored one, else pretrained by bench_dit_base's command (and stopped if the bits
differ: the stored rows would not be comparable). Each row (ROWS) is `flowrl train` at docs/lora.md §7.3's command
(100 epochs of 8 prompts x 8 samples, `--lora-rank 8 --lr 3e-3`, opt, one thread) plus the row's change, one run at a
time, under nice 10. The measure is docs/lora.md §7.8's: `flowrl eval --split train --n 32` (52 prompts x 32 samples,
ODE 40 steps, fixed sampling seeds: the base and every adapter see the same noises), of the base once per invocation
and of each run's adapter (and its EMA adapter where the run writes one), with `--n 8` beside it (the first 8 of
each prompt's 32). Gain = adapter minus base in points; mean ± 95% t-interval over the seeds; the verdict is read on
n 32 (on n 8 for a row that has no n 32 reading, and the section says so).

Every measured run goes into bench/results/dit_lora.json (STORE; in the repository) as soon as it is measured: its
command, commit, date, load, wall-clock, user CPU, and per adapter and n the correct count of the samples and the
geneval mean score. A run replaces the stored entry of its (row, seed) and keeps what it replaced under 'replaced'
(the section says whether the counts are equal). The file was seeded with the runs docs/lora.md §7.3, §7.4 and §7.8
record, each marked with its source (document section, commit, date, machine, load). Without --keep the section
holds this invocation's rows; with --keep every stored row; --from-results runs nothing and writes the section from
the file alone (the section is a function of the file: a --keep run and a later --from-results write the same bytes).
Run directories: WORK (demo/bench_dit_lora, git-ignored); a run whose directory holds the same command's finished
adapters is reused.
"""
import argparse
import datetime
import hashlib
import json
import os
import resource
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import invocation, ci95, flowrl, git_line, loadavg, logger, machine_line, median, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "bench_dit_lora"
BASE = "demo/bench_dit_base/shapes-dit-s-682-s0.safetensors"
BAR = 5.0  # issue 20: points of train-prompt accuracy
NS = (32, 8)  # the measure (§7.8) and the old reading beside it
COMMON = ["--task", "shapes", "--epochs", 100, "--checkpoint-every", 0, "--eval-n", 0, "--lora-rank", 8, "--lr", "3e-3",
          "--threads", 1]

# key, label, algo, change, seeds run by default, whether the run writes adapter_ema.safetensors, the adapter the verdict
# is read on (§7.8 declared the EMA adapter for Flow-GRPO's best setting), run by default, short name
ROWS = [
    ("awm", "AWM", "awm", [], [1, 2, 3], False, "last", True, "AWM"),
    ("fg-best", "Flow-GRPO `--beta 0 --noise-level 0.3 --ema-decay 0.9 --ema-every 8` (§7.8's best)", "flow-grpo",
     ["--beta", 0, "--noise-level", 0.3, "--ema-decay", 0.9, "--ema-every", 8], [1, 2, 3, 4, 5], True, "ema", True,
     "Flow-GRPO best"),
    ("fg-default", "Flow-GRPO (clip 1e-4, β 0.04: the defaults)", "flow-grpo", [], [1, 2, 3], False, "last", False,
     "Flow-GRPO defaults"),
    ("fg-clip1e-3", "Flow-GRPO `--clip-range 1e-3`", "flow-grpo", ["--clip-range", "1e-3"], [1, 2, 3], False, "last", False,
     "Flow-GRPO clip 1e-3"),
    ("fg-beta0", "Flow-GRPO `--beta 0`", "flow-grpo", ["--beta", 0], [1, 2, 3], False, "last", False, "Flow-GRPO β 0"),
    ("fg-guard", "Flow-GRPO best `--timestep-fraction 0.5 --guard sample --clip-range 2e-6` (§7.10's GRPO-Guard)",
     "flow-grpo", ["--beta", 0, "--noise-level", 0.3, "--ema-decay", 0.9, "--ema-every", 8, "--timestep-fraction", 0.5,
                   "--guard", "sample", "--clip-range", "2e-6"], [1, 2, 3, 4, 5], True, "ema", False, "Flow-GRPO guard"),
    ("fg-guard-all", "Flow-GRPO best `--guard sample --clip-range 2e-6`, all steps trained (§7.10)", "flow-grpo",
     ["--beta", 0, "--noise-level", 0.3, "--ema-decay", 0.9, "--ema-every", 8, "--guard", "sample", "--clip-range",
      "2e-6"], [1, 2, 3, 4, 5], True, "ema", False, "Flow-GRPO guard, all steps"),
]
ROW = {r[0]: r for r in ROWS}
ADAPTER_FILE = {"last": "adapter_model.safetensors", "ema": "adapter_ema.safetensors"}
ADAPTER_NAME = {"last": "trained (last iterate)", "ema": "EMA", "base": "base"}
ADAPTER_SHORT = {"last": "last", "ema": "EMA"}

log = logger("bench_dit_lora")


# ---- the statistics ------------------------------------------------------------------------------------------------

def gain_points(correct, samples, base_correct, base_samples):
    """Accuracy of an adapter minus the base's, in points."""
    return 100.0 * (correct / samples - base_correct / base_samples)


def verdict(gains):
    """(mean, half-width of the 95% t-interval, verdict) over seeds: 'met' when the mean is >= BAR points and the
    interval excludes zero, 'missed' otherwise; 'one seed' when there is no interval."""
    m, h = ci95(gains)
    if h is None:
        return m, None, "one seed"
    return m, h, "met" if m >= BAR and m - h > 0 else "missed"


def fmt_mean(m, h, digits):
    return f"{m:+.{digits}f}" if h is None else f"{m:+.{digits}f} ± {h:.{digits}f}"


# ---- the store -----------------------------------------------------------------------------------------------------

def load_store(path):
    with open(path) as f:
        return json.load(f)


def save_store(path, store):
    with open(path + ".tmp", "w") as f:
        json.dump(store, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)


def base_entry(store):
    return next(e for e in store["entries"] if e["row"] == "base")


def readings(store, row, adapter, n):
    """[(seed, gain in points, geneval score gain or None, entry)] of ROW's ADAPTER at n, by seed."""
    b = base_entry(store)["evals"]["base"].get(str(n))
    out = []
    for e in sorted((e for e in store["entries"] if e["row"] == row), key=lambda e: e["seed"]):
        r = e["evals"].get(adapter, {}).get(str(n))
        if r is None or b is None:
            continue
        sg = r["score"] - b["score"] if r.get("score") is not None and b.get("score") is not None else r.get("score_gain")
        out.append((e["seed"], gain_points(r["correct"], r["samples"], b["correct"], b["samples"]), sg, e))
    return out


# ---- the section ---------------------------------------------------------------------------------------------------

def source_label(store, src):
    if src in store["invocations"]:
        return f"measured {store['invocations'][src]['date']}"
    return store["sources"][src]["label"]


def seed_list(seeds):
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def wall_text(e):
    if e.get("wall_s") is None:
        return "—"
    w = int(round(e["wall_s"]))
    cpu = f" ({e['cpu_s']:.0f} s CPU)" if e.get("cpu_s") is not None else ""
    return f"{w // 60}m{w % 60:02d}s{cpu}"


def from_text(store, entries):
    """The sources of ENTRIES, with their seeds where there are several."""
    by = {}
    for e in entries:
        by.setdefault(e["source"], []).append(e["seed"])
    if len(by) == 1:
        return source_label(store, next(iter(by)))
    return "; ".join(f"seed{'s' if len(s) > 1 else ''} {seed_list(s)}: {source_label(store, src)}" for src, s in by.items())


def adapters_of(store, row):
    have = {a for e in store["entries"] if e["row"] == row for a in e["evals"]}
    verdict_adapter = ROW[row][6]
    return sorted(have, key=lambda a: (a != verdict_adapter, a))


def render(store, store_name="bench/results/dit_lora.json"):
    """The section's text from STORE alone: every row it holds, in ROWS's order."""
    rows = [r[0] for r in ROWS if any(e["row"] == r[0] for e in store["entries"])]
    be = base_entry(store)
    b32, b8 = be["evals"]["base"]["32"], be["evals"]["base"]["8"]
    sha = store["base"].get("sha256") or store["base"]["sha256_prefix"]
    L = [f"<!-- {MARKER} begin: written by bench/bench_dit_lora.py (make bench-dit-lora), do not edit by hand -->",
         "## DiT with LoRA: Flow-GRPO and AWM `--lora-rank 8` on the equal-wall-clock base (issue 20)", "",
         f"Written from {store_name} by bench/bench_dit_lora.py: `make bench-dit-lora` trains and measures rows "
         "(one run at a time, `--rows`, `--seeds`) and stores each run there; `python3 bench/bench_dit_lora.py "
         "--from-results` rewrites this section from the file alone. Each run's source is named below: measured by this "
         "script, or imported from the document that recorded it (docs/lora.md §7.3, §7.4, §7.8, §7.10).", "",
         f"The base: the seed-0 base of the section above (`{store['base']['path']}`, sha256 {sha[:16]}…; "
         f"`{be['command']}`). Every run: 100 epochs of 8 prompts x 8 samples, `--lora-rank 8` (α 8, the attention "
         "projections), lr 3e-3, opt, one thread, the row's change appended; each adapter measured by the fixed-seed eval "
         "of docs/lora.md §7.8 (`--adapter RUN/adapter_ema.safetensors` for the EMA adapter a run with `--ema-decay` "
         "writes):", "",
         "```sh",
         "flowrl train --algo ALGO --task shapes --base BASE --epochs 100 --seed S --checkpoint-every 0 \\",
         "    --eval-n 0 --lora-rank 8 --lr 3e-3 --threads 1 --out RUN [CHANGE]",
         "flowrl eval --ckpt BASE --task shapes --split train --n 32 --json --threads 1 \\",
         "    --adapter RUN/adapter_model.safetensors",
         "```", "",
         f"The measure (declared in docs/lora.md §7.8 before measuring): train-prompt accuracy of the base with the adapter "
         f"on the 52 train prompts x 32 samples ({b32['samples']:,} samples, ODE 40 steps, fixed sampling seeds: the base "
         "and every adapter see the same noises) minus the base's, in points; mean ± 95% t-interval over the seeds. "
         f"n 8 (the first 8 of each prompt's 32, {b8['samples']} samples) is the older reading, reported beside it. "
         f"**Issue 20's bar: a mean gain of {BAR:.0f} points or more with an interval excluding zero**, read at n 32 (a "
         "row measured at n 8 only is read there and says so). The base: "
         f"{b32['correct']} of {b32['samples']:,} ({100 * b32['correct'] / b32['samples']:.2f}%) at n 32, geneval score "
         f"{b32['score']:.4f}; {b8['correct']} of {b8['samples']} ({100 * b8['correct'] / b8['samples']:.2f}%) at n 8, "
         f"{b8['score']:.4f}. Accuracies are functions of the bits; wall-clock is the loaded machine's.", "",
         "| row | adapter | seeds | n 32: gain per seed (points) | mean ± 95% | n 8: gain per seed | mean ± 95% | "
         "issue 20's bar | geneval score gain, mean ± 95% | wall-clock per run (median) | from |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for row in rows:
        for ad in adapters_of(store, row):
            r32, r8 = readings(store, row, ad, 32), readings(store, row, ad, 8)
            cells = []
            for rs in (r32, r8):
                if rs:
                    m, h, _ = verdict([g for _, g, _, _ in rs])
                    cells += [", ".join(f"{g:+.2f}" for _, g, _, _ in rs), fmt_mean(m, h, 2)]
                else:
                    cells += ["—", "—"]
            rv, at = (r32, 32) if r32 else (r8, 8)
            m, h, v = verdict([g for _, g, _, _ in rv])
            bar = v if at == 32 else f"{v} (n 8 only)"
            sgs = [sg for _, _, sg, _ in rv if sg is not None]
            sg = "—" if len(sgs) < len(rv) else fmt_mean(*ci95(sgs), 3) + ("" if at == 32 else " (n 8)")
            ents = [e for _, _, _, e in rv]
            walls = [e["wall_s"] for e in ents if e.get("wall_s") is not None]
            wall = "—" if not walls else wall_text(dict(wall_s=median(walls)))
            name = ROW[row][1]
            vd = ad == ROW[row][6]
            L.append(f"| {name} | {ADAPTER_NAME[ad]}{' (verdict)' if vd and len(adapters_of(store, row)) > 1 else ''} | "
                     f"{seed_list([e['seed'] for e in ents])} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | "
                     f"{'**' + bar + '**' if v == 'met' else bar} | {sg} | {wall} | {from_text(store, ents)} |")
            if vd:
                verdicts.append((row, ad, at, m, h, v, len(rv)))
    L += [""]
    for row, ad, at, m, h, v, k in verdicts:
        adn = "" if len(adapters_of(store, row)) < 2 else f", {ADAPTER_NAME[ad]} adapter"
        L.append(f"- {ROW[row][1]}{adn}: {fmt_mean(m, h, 2)} points at n {at} over {k} seed{'s' if k > 1 else ''}: "
                 f"{'**meets**' if v == 'met' else 'does not meet'} issue 20's bar"
                 f"{'' if at == 32 else ' (read at n 8: no n 32 reading)'}.")
    # per run
    L += ["", "Per run (correct of the samples and the gain in points; geneval score gain over the base's; the base's "
          "scores are stored, a run's score gain is the document's three-decimal figure where the document did not record "
          "the score):", "",
          "| row | seed | adapter | n 32 correct (gain) | n 8 correct (gain) | score gain n 32, n 8 | wall-clock (user CPU) | "
          "date | load average start → end | from |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for e in sorted((e for e in store["entries"] if e["row"] == row), key=lambda e: e["seed"]):
            for ad in adapters_of(store, row):
                if ad not in e["evals"]:
                    continue
                c, sg = [], []
                for n in NS:
                    hit = [x for x in readings(store, row, ad, n) if x[3] is e]
                    r = e["evals"][ad].get(str(n))
                    c.append("—" if not hit else f"{r['correct']} ({hit[0][1]:+.2f})")
                    sg.append("—" if not hit or hit[0][2] is None else f"{hit[0][2]:+.3f}")
                src = source_label(store, e["source"])
                rep = e.get("replaced")
                if rep:
                    same = all(rep["evals"].get(a, {}).get(n, {}).get("correct") == x["correct"]
                               for a, xs in e["evals"].items() for n, x in xs.items() if n in rep["evals"].get(a, {}))
                    src += f"; counts {'equal to' if same else 'differ from'} {source_label(store, rep['source'])}"
                L.append(f"| {ROW[row][8]} | {e['seed']} | {ADAPTER_SHORT[ad]} | {c[0]} | {c[1]} | {sg[0]}, {sg[1]} | "
                         f"{wall_text(e)} | {e['date']} | {e.get('load') or '—'} | {src} |")
    # provenance
    used = {e["source"] for e in store["entries"] if e["row"] in rows or e["row"] == "base"}
    L += ["", "Where the runs come from:"]
    invs = [k for k in store["invocations"] if k in used]
    if not invs:
        L.append("- Measured by this script: none yet (every row below is imported).")
    for k in invs:
        i = store["invocations"][k]
        end = (f"{i['load_end']} at the end; {i['minutes']:.0f} min in all" if i.get("minutes") is not None else
               "interrupted before its end (the runs it stored are complete)")
        L.append(f"- Measured by this script ({i['date']}): `{i['command']}` at git {i['commit']} on {i['machine']}; "
                 f"load average {i['load_start']} at the start, {end}.")
    for k, s in store["sources"].items():
        if k in used:
            L.append(f"- Imported from {s['doc']} (commit {s['doc_commit']}; runs {s['date']}): machine {s['machine']}; "
                     f"{s['load']}; wall-clock: {s['wall']}; measure: {s['measure']}.")
    # the document's own figures
    same, diff = [], []
    for d in store.get("doc_summaries", []):
        if d["row"] not in rows:
            continue
        rs = readings(store, d["row"], d["adapter"], d["n"])
        if not rs:
            continue
        what = f"{ROW[d['row']][1]} {ADAPTER_NAME[d['adapter']]} at n {d['n']}"
        for key, idx, val in (("gain", 1, d["gain"]), ("score gain", 2, d["score_gain"])):
            if val is None:
                continue
            xs = [x[idx] for x in rs]
            if any(x is None for x in xs):
                continue
            digits = len(val.split("±")[0].strip().split(".")[1])
            mine = fmt_mean(*ci95(xs), digits)
            (same if mine == val.replace("−", "-") else diff).append(f"{what} {key} {mine} ({d['doc']}: {val})")
    if same or diff:
        L += ["", f"Against docs/lora.md's own figures: {len(same)} of {len(same) + len(diff)} means ± intervals equal."
              + ("" if not diff else " Not equal: " + "; ".join(diff) + ". The document computed its score-gain "
                 "intervals from unrounded scores; this file holds the three-decimal per-seed gains it records.")]
    L += ["", "Flow-GRPO's one-seed probes (reward, α, lr, samplers, noise levels, steps, group sizes, 200 and 300 "
          "epochs: docs/lora.md §7.4–§7.7) are not rows here.", f"<!-- {MARKER} end -->"]
    return "\n".join(L) + "\n"


# ---- the runs ------------------------------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sh(binary, args, out=None):
    return flowrl(binary, args, out=out, name="bench_dit_lora")


def ensure_base(binary, store, threads):
    """The stored base, reused when its sha256 matches, else pretrained by bench_dit_base's command; returns the
    pretraining command (None when reused)."""
    want = store["base"].get("sha256") or store["base"]["sha256_prefix"]
    path = store["base"]["path"]
    if os.path.exists(path) and sha256(path).startswith(want):
        log(f"reusing {path} (sha256 {want[:16]}…)")
        store["base"]["sha256"] = sha256(path)
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    args = ["pretrain", "--task", "shapes", "--preset", "shapes-dit-s", "--max-train-steps", 682, "--seed", 0, "--out", path,
            "--backend", "opt", "--threads", threads, "--progress", "off", "--force"]
    log(f"pretraining {path}")
    sh(binary, args, out=path + ".log")
    got = sha256(path)
    if not got.startswith(want):
        raise SystemExit(f"bench_dit_lora: the rebuilt base {path} has sha256 {got}, not the stored {want}: pretraining's "
                         "bits changed (code or defaults), so the stored runs are not comparable; measure every row again "
                         "into a fresh store (--results)")
    store["base"]["sha256"] = got
    return " ".join(["flowrl"] + [str(a) for a in args])


def measure(binary, adapter=None):
    """{n: {correct, samples, score, command}} of the base (with ADAPTER) at each n of NS."""
    out = {}
    for n in NS:
        args = ["eval", "--ckpt", BASE, "--task", "shapes", "--split", "train", "--n", n, "--json", "--threads", 1,
                "--backend", "opt"] + (["--adapter", adapter] if adapter else [])
        o = json.loads(sh(binary, args))["overall"]
        out[str(n)] = dict(correct=int(o["correct"]), samples=int(o["samples"]), score=o["mean_score"], score_gain=None,
                           command=" ".join(["flowrl"] + [str(a) for a in args]))
    return out


def put(store, entry):
    """Stores ENTRY over the entry of its (row, seed), keeping the replaced one's source and counts."""
    old = [e for e in store["entries"] if e["row"] == entry["row"] and e["seed"] == entry["seed"]]
    if old:
        o = old[0]
        entry["replaced"] = dict(source=o["source"], evals={a: {n: dict(correct=x["correct"]) for n, x in xs.items()}
                                                            for a, xs in o["evals"].items()})
        store["entries"][store["entries"].index(o)] = entry
    else:
        store["entries"].append(entry)


def train(binary, work, row, seed):
    """Trains ROW's run of SEED (reused when WORK's run directory finished the same command); returns the entry
    without its evals."""
    key, _, algo, change, _, ema, _, _, _ = ROW[row]
    rundir = os.path.join(work, f"{key}-s{seed}")
    args = ["train", "--algo", algo, "--base", BASE, "--seed", seed] + COMMON + ["--backend", "opt", "--out", rundir] + change
    cmd = " ".join(["flowrl"] + [str(a) for a in args])
    done = os.path.join(rundir, "bench_dit_lora.json")
    if os.path.exists(done):
        with open(done) as f:
            prev = json.load(f)
        if prev["command"] == cmd and all(os.path.exists(os.path.join(rundir, ADAPTER_FILE[a]))
                                          for a in (["last", "ema"] if ema else ["last"])):
            log(f"reusing {rundir}")
            return prev, rundir
    shutil.rmtree(rundir, ignore_errors=True)
    log(f"training {rundir}")
    t0, l0, ru0 = time.time(), loadavg().split()[0], resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    d0 = datetime.datetime.now(datetime.timezone.utc)
    sh(binary, args, out=os.path.join(work, f"{key}-s{seed}.log"))
    d1 = datetime.datetime.now(datetime.timezone.utc)
    e = dict(row=row, seed=seed, source=None, command=cmd, commit=git_line(),
             date=f"{d0:%Y-%m-%d %H:%M}–{d1:%H:%M} UTC", load=f"{l0} → {loadavg().split()[0]}", wall_s=round(time.time() - t0, 1),
             cpu_s=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - ru0, 1), evals={})
    with open(done, "w") as f:
        json.dump(e, f, indent=1)
    return e, rundir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=",".join(r[0] for r in ROWS if r[7]),
                    help="rows to run: " + ", ".join(r[0] for r in ROWS) + " (default: the verdict rows)")
    ap.add_argument("--seeds", default="", help="seeds of every row run (default: each row's own)")
    ap.add_argument("--keep", action="store_true", help="the section holds every stored row, not only this invocation's")
    ap.add_argument("--from-results", action="store_true", help="run nothing: write the section from the results file")
    ap.add_argument("--results", default="bench/results/dit_lora.json", help="the results file (STORE)")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--work", default=os.environ.get("WORK", "demo/bench_dit_lora"))
    ap.add_argument("--threads", type=int, default=1, help="threads of a base pretraining (the bits do not depend on it)")
    a = ap.parse_args()
    os.chdir(ROOT)
    store = load_store(a.results)
    if a.from_results:
        write_section(a.out, MARKER, render(store))
        log(f"wrote the section of {a.out} from {a.results}")
        return
    binary = os.path.join(os.environ.get("BUILD", "build"), "flowrl")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"bench_dit_lora: {binary} not found: run make first")
    rows = a.rows.split(",")
    for r in rows:
        if r not in ROW:
            raise SystemExit(f"bench_dit_lora: --rows: unknown {r!r} (expected {', '.join(ROW)})")
    t0 = time.time()
    d0 = datetime.datetime.now(datetime.timezone.utc)
    inv = f"bench-{d0:%Y%m%dT%H%MZ}"
    store["invocations"][inv] = dict(command=invocation("bench/bench_dit_lora.py"),
                                     commit=git_line(), machine=machine_line(), date=f"{d0:%Y-%m-%d %H:%M} UTC",
                                     load_start=loadavg(), load_end=None, minutes=None)
    os.makedirs(a.work, exist_ok=True)
    pre = ensure_base(binary, store, a.threads)
    be = dict(row="base", seed=0, source=inv, command=pre or base_entry(store)["command"], commit=git_line(),
              date=f"{d0:%Y-%m-%d %H:%M} UTC", load=loadavg().split()[0], wall_s=None, cpu_s=None,
              evals={"base": measure(binary)})
    old = base_entry(store)["evals"]["base"]
    for n, x in be["evals"]["base"].items():
        if n in old and old[n]["correct"] != x["correct"]:
            raise SystemExit(f"bench_dit_lora: the base reads {x['correct']} of {x['samples']} at n {n}, the stored "
                             f"{old[n]['correct']}: the stored gains are not comparable (a changed eval or base)")
    put(store, be)
    save_store(a.results, store)
    for row in rows:
        for seed in ([int(s) for s in a.seeds.split(",")] if a.seeds else ROW[row][4]):
            e, rundir = train(binary, a.work, row, seed)
            e["source"] = inv
            for ad in (["last", "ema"] if ROW[row][5] else ["last"]):
                e["evals"][ad] = measure(binary, os.path.join(rundir, ADAPTER_FILE[ad]))
                log(f"{row} seed {seed} {ad}: " + ", ".join(f"n {n} {x['correct']} of {x['samples']}"
                                                            for n, x in e["evals"][ad].items()))
            put(store, e)
            save_store(a.results, store)
    i = store["invocations"][inv]
    i["load_end"], i["minutes"] = loadavg(), round((time.time() - t0) / 60, 1)
    save_store(a.results, store)
    write_section(a.out, MARKER, render(store if a.keep else dict(store, entries=[
        e for e in store["entries"] if e["row"] == "base" or e["source"] == inv])))
    log(f"wrote the section of {a.out} in {(time.time() - t0) / 60:.0f} min")


if __name__ == "__main__":
    main()
