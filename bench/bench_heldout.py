#!/usr/bin/env python3
"""Held-out transfer on shapes (issue 10, item 5): what makes an RL gain on the training prompts carry
over to the held-out prompts? Screens a list of attempts (one seed, a fixed number of epochs each),
then measures the shortcut that limits transfer. `make bench-heldout` runs it.

Each attempt: `flowrl train` from the demo's base (demo/shapes_base.safetensors), seed 1, EPOCHS
epochs, a checkpoint every EPOCHS/2; every checkpoint evaluated on the held-out and the train prompts
(flowrl eval, ODE 40 steps, N samples per prompt, fixed sampling seeds), the last one also for the
diversity of its samples and its KL to the base. The shortcut: every held-out "A REL B" prompt has
its mirror image among the training prompts ("B REL A" and "A opposite-REL B" draw the same two
colours on the same axis, swapped: data/shapes_prompts.c puts a phrase and its mirror on the same
side of the split, and the two layouts of one colour pair on opposite sides). A policy that learns
"colour pair -> layout" instead of reading the relation improves the mirror and loses the held-out
prompt; the section reports, per attempt, the correlation between the two changes.

Writes its section of BENCHMARKS.md (between the bench_heldout markers) and WORK/results.json.
Environment (defaults): BUILD (build), WORK (demo/bench_heldout), OUT (BENCHMARKS.md), JOBS (nproc),
EPOCHS (1000), N (32), ONLY (comma-separated attempt names: train and evaluate just those, in that
order, and write no section: a second process can share the screen). A finished attempt in WORK (its last checkpoint and the same config.json) is
not trained again, so an interrupted screen resumes where it stopped.
"""
import concurrent.futures as cf
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from benchlib import ci95, flowrl, fmt_ci, git_line, loadavg, logger, machine_line, metrics, write_section  # noqa: E402
from shortcut import r_critical, shortcut  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
FLOWRL = os.path.join(BUILD, "flowrl")
OUT = os.environ.get("OUT", "BENCHMARKS.md")
WORK = os.environ.get("WORK", "demo/bench_heldout")
JOBS = int(os.environ.get("JOBS", str(os.cpu_count() or 1)))
EPOCHS = int(os.environ.get("EPOCHS", "1000"))
N = int(os.environ.get("N", "32"))
BASE = "demo/shapes_base.safetensors"
SEED = 1
CONFIRM_SEEDS = [2, 3]  # an attempt whose held-out gain reaches BAR points on SEED is rerun on these
BAR = 10  # issue 10: a held-out gain of at least +10 points whose 95% interval over 3 seeds excludes zero
PG = ["--prompts-per-epoch", 8, "--group-size", 16]

# name, algorithm, flags, what it tries
ATTEMPTS = [
    ("fg-demo", "flow-grpo", ["--lr", "2e-4", "--beta", 1] + PG, "Flow-GRPO in the demo's configuration (the reference point)"),
    ("fg-p16g8", "flow-grpo", ["--lr", "2e-4", "--beta", 1, "--prompts-per-epoch", 16, "--group-size", 8],
     "more varied prompts per update: 16 prompts x 8 samples instead of 8 x 16 (same samples per epoch)"),
    ("fg-ema", "flow-grpo", ["--lr", "2e-4", "--beta", 1, "--ema-decay", 0.99, "--ema-every", 1] + PG,
     "EMA weights (decay 0.99 every step), evaluated as the policy"),
    ("fg-guard", "flow-grpo", ["--lr", "2e-4", "--beta", 1, "--guard", "sample"] + PG, "GRPO-Guard (per-sample ratio bias correction)"),
    ("fg-guard-b4", "flow-grpo", ["--lr", "2e-4", "--beta", 4, "--guard", "sample"] + PG,
     "GRPO-Guard with a 4x stronger KL to the base (against the guard's collapse)"),
    ("fg-guard-klpaper", "flow-grpo", ["--lr", "2e-4", "--beta", 1, "--guard", "sample", "--kl-form", "paper"] + PG,
     "GRPO-Guard with the paper's KL form"),
    ("fg-klpaper", "flow-grpo", ["--lr", "2e-4", "--beta", 1, "--kl-form", "paper"] + PG, "the paper's KL form (with dt) instead of the code's"),
    ("awm-demo", "awm", ["--lr", "1e-4", "--beta", 0.1] + PG, "AWM (forward process, final samples) in its demo configuration"),
    ("dgpo-b1", "dgpo", ["--lr", "1e-4", "--beta-dpo", 1] + PG, "DGPO (group preference, forward process), beta_dpo 1"),
    ("nft-lr1e-4", "nft", ["--lr", "1e-4"] + PG, "DiffusionNFT (forward process), lr 1e-4"),
]

log = logger("bench_heldout")


def sh(args, out=None):
    return flowrl(FLOWRL, args, out=out, name="bench_heldout")


def evaluate(ckpt, split, kl=False):
    args = ["eval", "--ckpt", ckpt, "--task", "shapes", "--split", split, "--n", N, "--json", "--threads", 1, "--backend", "opt"]
    if kl:
        args += ["--kl-ref", BASE]
    j = json.loads(sh(args))
    return dict(overall=j["overall"], prompts={p["text"]: p["accuracy"] for p in j["prompts"]})


def train_args(name, algo, flags, seed=SEED):
    return ["train", "--algo", algo, "--task", "shapes", "--base", BASE, "--out", os.path.join(WORK, name), "--epochs", EPOCHS,
            "--seed", seed, "--eval-n", 0, "--checkpoint-every", EPOCHS // 2, "--keep-checkpoints", 0, "--log-every", 100,
            "--backend", "opt", "--threads", 1] + flags


def attempt(a, seed=SEED):
    name, algo, flags, _ = a
    if seed != SEED:
        name = f"{name}-seed{seed}"
    d = os.path.join(WORK, name)
    last = os.path.join(d, "checkpoints", f"step-{EPOCHS}.safetensors")
    args = " ".join(map(str, train_args(name, algo, flags, seed)))
    stamp = d + ".args"  # the command that trained it: a finished attempt is reused only for the same one
    trained = not (os.path.exists(last) and os.path.exists(stamp) and open(stamp).read() == args)
    if trained:
        log(f"training {name} ({EPOCHS} epochs)")
        sh(train_args(name, algo, flags, seed) + ["--force"], out=d + ".log")
        with open(stamp, "w") as f:
            f.write(args)
    r = dict(curve=[], trained=trained)
    for e in (EPOCHS // 2, EPOCHS):
        ck = os.path.join(d, "checkpoints", f"step-{e}.safetensors")
        ev, tr = evaluate(ck, "eval", kl=e == EPOCHS), evaluate(ck, "train")
        r["curve"].append(dict(epoch=e, heldout=ev["overall"]["accuracy"], train=tr["overall"]["accuracy"]))
        if e == EPOCHS:
            r["final"] = dict(heldout=ev, train=tr)
    r["collapsed_rollouts"] = min(m["accuracy"] for m in metrics(d))
    return r


def main():
    os.chdir(ROOT)
    if not os.access(FLOWRL, os.X_OK):
        raise SystemExit(f"bench_heldout: {FLOWRL} not found: run make first")
    if not os.path.exists(BASE):
        raise SystemExit(f"bench_heldout: {BASE} not found: `make demo` (or `make bench-algos`) pretrains it")
    os.makedirs(WORK, exist_ok=True)
    t0, load0 = time.time(), loadavg()
    only = [x for x in os.environ.get("ONLY", "").split(",") if x]
    if only:
        names = {a[0]: a for a in ATTEMPTS}
        for x in only:
            if x not in names:
                raise SystemExit(f"bench_heldout: ONLY: no attempt '{x}' (attempts: {', '.join(names)})")
        with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
            list(ex.map(attempt, [names[x] for x in only]))
        return log(f"trained and evaluated {', '.join(only)}; run without ONLY for the section")
    base = dict(heldout=evaluate(BASE, "eval", kl=True), train=evaluate(BASE, "train"))
    with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
        results = dict(zip([a[0] for a in ATTEMPTS], ex.map(attempt, ATTEMPTS)))
    # the confirmation: every attempt that gained BAR points on the held-out prompts, on CONFIRM_SEEDS more
    bh0 = base["heldout"]["overall"]["accuracy"]
    lucky = [a for a in ATTEMPTS if results[a[0]]["curve"][-1]["heldout"] - bh0 >= BAR / 100]
    items = [(a, sd) for a in lucky for sd in CONFIRM_SEEDS]
    with cf.ThreadPoolExecutor(max_workers=JOBS) as ex:
        more = list(ex.map(lambda it: attempt(*it), items))
    confirm = {a[0]: [results[a[0]]] + [m for (b, _), m in zip(items, more) if b is a] for a in lucky}
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(dict(base=base, attempts=results, confirm=confirm), f, indent=1)
    bh, bt = base["heldout"]["overall"], base["train"]["overall"]
    L = ["<!-- bench_heldout begin: written by bench/bench_heldout.py (make bench-heldout), do not edit by hand -->",
         "## Held-out transfer on shapes: attempts", "",
         f"Command: `make bench-heldout` (bench/bench_heldout.py; EPOCHS={EPOCHS} N={N}) on "
         f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; source git {git_line()}. Machine: {machine_line()}; "
         f"{JOBS} runs at a time, one thread each. Load average {load0} at the start, {loadavg()} at the end; "
         f"{(time.time() - t0) / 60:.0f} min in all ({sum(r['trained'] for r in results.values())} of {len(ATTEMPTS)} "
         "attempts trained in this invocation, the others reused from an earlier one with the same commands).", "",
         f"A screen, not a result: **one seed** ({SEED}) per attempt, {EPOCHS} epochs of P 8 x G 16 (P 16 x G 8 where said) from "
         f"`{BASE}`; accuracy on the 18 held-out prompts ({bh['samples']} samples, binomial SD ≈ 2 points) and the 52 "
         f"train prompts, `flowrl eval --n {N}` (ODE 40 steps, fixed sampling seeds). Base: held-out {100 * bh['accuracy']:.1f}%, "
         f"train {100 * bt['accuracy']:.1f}%, diversity {bh['diversity']:.3f}. Issue 10's bar for the demo is a held-out gain "
         "of at least +10 points whose 95% interval over 3 seeds excludes zero; an attempt that reached +10 here would be "
         "rerun on 3 seeds (bench_algos' held-out column is the 3-seed measure for each algorithm).", "",
         "Mirror shortcut: every held-out position prompt (12 of 18) has its two colours drawn on the same axis, swapped, "
         "among the training prompts. *r* = correlation, over those 12, between a prompt's held-out change and its mirrors' "
         f"train change (* = significant at 5%: |r| >= {r_critical(12):.2f} for 12 prompts); *lost / mirror gained* counts "
         "held-out prompts that lost accuracy while their mirrors gained.", "",
         f"| attempt | what it tries | held-out % at {EPOCHS // 2} / {EPOCHS} | change | train % at {EPOCHS // 2} / {EPOCHS} | "
         "diversity | KL to base | r | lost / mirror gained | lowest rollout accuracy |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    rs = []
    for name, algo, flags, what in ATTEMPTS:
        r = results[name]
        c, f = r["curve"], r["final"]
        _, (n, cor, lost) = shortcut(base["heldout"]["prompts"], base["train"]["prompts"], f["heldout"]["prompts"],
                                        f["train"]["prompts"])
        rs.append(cor)
        L.append(f"| {name} | {what} | {100 * c[0]['heldout']:.1f} / {100 * c[1]['heldout']:.1f} | "
                 f"{100 * (c[1]['heldout'] - bh['accuracy']):+.1f} | {100 * c[0]['train']:.1f} / {100 * c[1]['train']:.1f} | "
                 f"{f['heldout']['overall']['diversity']:.3f} | {f['heldout']['overall']['kl']:.0f} | {cor:+.2f}{'*' if abs(cor) >= r_critical(n) else ''} | {lost}/{n} | "
                 f"{100 * r['collapsed_rollouts']:.0f}% |")
    rc = r_critical(12)
    neg = [a[0] for a, c in zip(ATTEMPTS, rs) if c <= -rc]
    pos = [a[0] for a, c in zip(ATTEMPTS, rs) if c >= rc]
    if confirm:
        L += ["", f"Confirmation on seeds {SEED}, {', '.join(map(str, CONFIRM_SEEDS))} of the attempts that gained {BAR} or more "
              f"held-out points on seed {SEED} (mean ± 95% t-interval, {1 + len(CONFIRM_SEEDS)} seeds; *collapse* = diversity "
              "below half the base's):", "",
              "| attempt | held-out % per seed | held-out change (points) | meets the bar | train % | diversity (base "
              f"{bh['diversity']:.3f}) | collapse |", "|---|---|---|---|---|---|---|"]
        for name, runs in confirm.items():
            gains = [100 * (x["curve"][-1]["heldout"] - bh["accuracy"]) for x in runs]
            m, hw = ci95(gains)
            divs = [x["final"]["heldout"]["overall"]["diversity"] for x in runs]
            ok = m >= BAR and hw is not None and m - hw > 0
            per_seed = ", ".join("%.1f" % (100 * x["curve"][-1]["heldout"]) for x in runs)
            L.append(f"| {name} | {per_seed} | {fmt_ci(gains)} | "
                     f"{'**yes**' if ok else 'no' + (' (the interval holds 0)' if hw is not None and m - hw <= 0 else '')} | "
                     f"{fmt_ci([x['curve'][-1]['train'] for x in runs], 100)} | {fmt_ci(divs, 1, 3)} | "
                     f"{sum(d < 0.5 * bh['diversity'] for d in divs)}/{len(runs)} |")
    L += ["", f"Across the attempts: a significant negative r in {len(neg)} of {len(ATTEMPTS)} ({', '.join(neg) or 'none'}), "
          f"a significant positive one in {len(pos)} ({', '.join(pos) or 'none'}). Pooling the pairs of all attempts is "
          "not meaningful here: the collapsed runs move every prompt by tens of points and would dominate.", "",
          f"Run directories: `{WORK}` (git-ignored; results.json holds every per-prompt accuracy).",
          "<!-- bench_heldout end -->"]
    write_section(OUT, "bench_heldout", "\n".join(L) + "\n")
    log(f"wrote the section of {OUT} in {(time.time() - t0) / 60:.0f} min")


if __name__ == "__main__":
    main()
