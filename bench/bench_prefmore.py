#!/usr/bin/env python3
"""The miniatures of issue 21's preference variants (docs/algorithms/flow-rwr.md §4, ...): each row
trains one algorithm from a small base on 3 seeds and reports the held-out mean reward's gain
(after - before, `flowrl train`'s eval.json, 32 samples per prompt at flowrl eval's fixed seeds)
with its 95% t interval over the seeds; a row is "raised" when the interval excludes zero.

    bench/bench_prefmore.py [ROW ...]        # rows by name; all without arguments
    WORK=demo/prefmore SEEDS="1 2 3" FLOWRL=build/flowrl

Bases: demo/gmm2d_base100.safetensors (100 pretraining steps, as bench_algos' gmm2d base; built when
missing), demo/gmm2d_eps_base100.safetensors (the same, --pred epsilon) and demo/gmm2d_eps_base2000.safetensors
(--pred epsilon, 2000 steps) for the rows that train from a preference file (PREFS: made once by `flowrl prefs make` in WORK). Every command is printed; runs are nice 10, one at a time."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ci95, flowrl  # noqa: E402

FLOWRL = os.environ.get("FLOWRL", "build/flowrl")
WORK = os.environ.get("WORK", "demo/prefmore")
SEEDS = [int(s) for s in os.environ.get("SEEDS", "1 2 3").split()]
GMM_BASE = "demo/gmm2d_base100.safetensors"
GMM_PRETRAIN = ["pretrain", "--task", "gmm2d", "--max-train-steps", "100", "--out", GMM_BASE, "--force"]
GMM_EPS_BASE = "demo/gmm2d_eps_base100.safetensors"
GMM_EPS_PRETRAIN = ["pretrain", "--task", "gmm2d", "--pred", "epsilon", "--max-train-steps", "100", "--out", GMM_EPS_BASE,
                    "--force"]
# rows that train from a preference file: row -> (reward that labels it, pairs); `flowrl prefs make --seed 0` from the
# row's base, made once per (base, reward, pairs)
PREFS = {}

# row -> (algorithm, base, base command, reward, epochs, extra flags)
ROWS = {
    "flow-rwr-exp": ("flow-rwr", GMM_BASE, GMM_PRETRAIN, "mode", 100, ["--lr", "1e-3"]),
    "flow-rwr-softmax": ("flow-rwr", GMM_BASE, GMM_PRETRAIN, "mode", 200,
                         ["--lr", "3e-4", "--weighting", "softmax", "--temperature", "0.05"]),
    # DDO: the spec's miniature setting (alpha 4, beta 0.05, 3 rounds) and beta 5, alpha 1 (the per-element mean
    # error of a 2-D sample makes beta*Delta ~100x smaller than the paper's image-sum scale)
    "ddo-spec": ("ddo", GMM_BASE, GMM_PRETRAIN, "mode", 60, ["--lr", "3e-4", "--alpha", "4", "--beta-ddo", "0.05"]),
    "ddo": ("ddo", GMM_BASE, GMM_PRETRAIN, "mode", 60, ["--lr", "3e-4", "--alpha", "1", "--beta-ddo", "5"]),
    # BalancedDPO: the default vote over {mode (the run's reward), halfplane}
    "balanced-dpo": ("balanced-dpo", GMM_BASE, GMM_PRETRAIN, "mode", 100, ["--lr", "3e-3", "--scorers", "reward,halfplane"]),
}
# SmPO (docs/algorithms/smpo.md §6): halfplane pairs of the 100-step epsilon base, 4096 pairs (128 epochs of 32), the
# spec's 5 inversion steps and 50 (a finer inverse grid: x_inv nearer the level t the network is told, quirk 1)
# against Diffusion-DPO (hard labels, shared fresh noise) on the same file
ROWS.update({
    "smpo": ("smpo", GMM_EPS_BASE, GMM_EPS_PRETRAIN, "halfplane", 128, ["--lr", "1e-4"]),
    "smpo-inv50": ("smpo", GMM_EPS_BASE, GMM_EPS_PRETRAIN, "halfplane", 128, ["--lr", "3e-4", "--inversion-steps", "50"]),
    "diffusion-dpo-eps": ("diffusion-dpo", GMM_EPS_BASE, GMM_EPS_PRETRAIN, "halfplane", 128, ["--lr", "1e-3"]),
})
PREFS.update({name: ("halfplane", 512) for name in ("smpo", "smpo-inv50", "diffusion-dpo-eps")})
# SmPO on a well-trained epsilon base (smpo.md §6): 2000 pretraining steps (DDIM 40-step samples on the modes: mode
# accuracy 94.9%, mean mode score 0.853), pairs labelled by the continuous `mode` reward (halfplane never separates
# two of its samples: 0 pairs in 5220 attempts); the spec's 5 inversion steps and 50, Diffusion-DPO at its best lr of
# 1e-4, 3e-4, 1e-3 (seed 1)
GMM_EPS_BASE2000 = "demo/gmm2d_eps_base2000.safetensors"
GMM_EPS_PRETRAIN2000 = ["pretrain", "--task", "gmm2d", "--pred", "epsilon", "--max-train-steps", "2000", "--out",
                        GMM_EPS_BASE2000, "--force"]
ROWS.update({
    "smpo-eps2000": ("smpo", GMM_EPS_BASE2000, GMM_EPS_PRETRAIN2000, "mode", 128, ["--lr", "1e-4"]),
    "smpo-inv50-eps2000": ("smpo", GMM_EPS_BASE2000, GMM_EPS_PRETRAIN2000, "mode", 128,
                           ["--lr", "1e-4", "--inversion-steps", "50"]),
    "diffusion-dpo-eps2000": ("diffusion-dpo", GMM_EPS_BASE2000, GMM_EPS_PRETRAIN2000, "mode", 128, ["--lr", "1e-4"]),
})
PREFS.update({name: ("mode", 512) for name in ("smpo-eps2000", "smpo-inv50-eps2000", "diffusion-dpo-eps2000")})


def prefs_file(base, reward, pairs):
    path = os.path.join(WORK, f"prefs-{os.path.basename(base).split('.')[0]}-{reward}-{pairs}.safetensors")
    if not os.path.exists(path):
        args = ["prefs", "make", "--ckpt", base, "--pairs", str(pairs), "--reward", reward, "--seed", "0", "--out", path]
        print("$ flowrl " + " ".join(args), flush=True)
        flowrl(FLOWRL, args, name="bench_prefmore")
    return path


def run_row(name):
    algo, base, mk, reward, epochs, extra = ROWS[name]
    if not os.path.exists(base):
        print("$ flowrl " + " ".join(mk), flush=True)
        flowrl(FLOWRL, mk, name="bench_prefmore")
    if name in PREFS:
        extra = extra + ["--prefs", prefs_file(base, *PREFS[name])]
    gains, before, after = [], None, []
    for s in SEEDS:
        out = os.path.join(WORK, f"{name}-s{s}")
        args = ["train", "--algo", algo, "--base", base, "--reward", reward, "--out", out, "--force", "--epochs",
                str(epochs), "--seed", str(s), "--eval-n", "32", "--log-every", "1000"] + extra
        print("$ flowrl " + " ".join(args), flush=True)
        flowrl(FLOWRL, args, name="bench_prefmore")
        ev = json.load(open(os.path.join(out, "eval.json")))
        before = ev["before"]["mean_score"]
        after.append(ev["after"]["mean_score"])
        gains.append(ev["after"]["mean_score"] - ev["before"]["mean_score"])
    m, h = ci95(gains)
    raised = h is not None and m - h > 0
    return dict(row=name, algo=algo, reward=reward, epochs=epochs, before=before, after=after, gain=m, ci=h,
                raised=raised, flags=" ".join(extra))


def main():
    names = sys.argv[1:] or list(ROWS)
    os.makedirs(WORK, exist_ok=True)
    res = [run_row(n) for n in names]
    print("\n| row | reward | epochs | before | after (per seed) | gain, 95% interval | raised |")
    print("|---|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['row']} (`{r['flags']}`) | {r['reward']} | {r['epochs']} | {r['before']:.4f} | "
              + ", ".join(f"{a:.4f}" for a in r["after"]) + f" | {r['gain']:+.4f} ± "
              + ("–" if r["ci"] is None else f"{r['ci']:.4f}") + " | "
              + ("yes" if r["raised"] else "no") + " |")
    json.dump(res, open(os.path.join(WORK, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
