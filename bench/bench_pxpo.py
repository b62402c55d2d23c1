#!/usr/bin/env python3
"""The shapes miniatures of issue 21's pxpo branch, on bench_prefmore.py's row runner (3 seeds, the
held-out mean reward's gain from `flowrl train`'s eval.json with its 95% t interval, "raised" when the
interval excludes zero): PXPO (docs/algorithms/pxpo.md §5) against DDPO on the same epsilon base and
budget, and BalancedDPO (docs/algorithms/balanced-dpo.md §4) voting over the detector, the classifier
and the strict detector against its one-scorer control (Flow-DPO on the detector's labels). The rows of
TRAIN_SPLIT are also scored on the training prompts (a second table: `flowrl eval --split train --n 8` of the
base and of each seed's last checkpoint).

    bench/bench_pxpo.py [ROW ...]        # rows by name; all without arguments
    WORK=demo/pxpo SEEDS="1 2 3" FLOWRL=build/flowrl

Bases: demo/shapes_eps_base.safetensors and demo/shapes_base.safetensors (`make demo`'s; built when
missing with the commands below)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("WORK", "demo/pxpo")
import bench_prefmore  # noqa: E402
from benchlib import ci95, flowrl  # noqa: E402

EPS = "demo/shapes_eps_base.safetensors"
EPS_MK = ["pretrain", "--task", "shapes", "--pred", "epsilon", "--out", EPS]
FLOW = "demo/shapes_base.safetensors"
FLOW_MK = ["pretrain", "--task", "shapes", "--out", FLOW]
# a small budget: measured on a 2-core machine shared by 8 sessions (load ~25)
SMALL = ["--prompts-per-epoch", "4", "--group-size", "8", "--eval-n", "8"]

bench_prefmore.ROWS.clear()
bench_prefmore.ROWS.update({
    # PXPO: the detector's per-pixel correctness map, per-pixel advantages over the prompt's group
    "pxpo-shapes": ("pxpo", EPS, EPS_MK, "geneval", 8, SMALL + ["--lr", "3e-4"]),
    # DDPO on the same base and budget: the scalar reward (the spec's comparison)
    "ddpo-shapes": ("ddpo", EPS, EPS_MK, "geneval", 8, SMALL + ["--lr", "3e-4"]),
    # the score-function forms (no ratio: the weighted row ratio of PPO-clip swings far with per-pixel weights)
    "pxpo-shapes-sf": ("pxpo", EPS, EPS_MK, "geneval", 20, SMALL + ["--lr", "3e-4", "--score-function"]),
    "ddpo-shapes-sf": ("ddpo", EPS, EPS_MK, "geneval", 20, SMALL + ["--lr", "3e-4", "--score-function"]),
    # PPO-clip at lr 1e-4 for 20 epochs (pxpo.md §5.1: DDPO's best one-seed probe of lr 3e-5, 1e-4)
    "pxpo-shapes-lr1e-4": ("pxpo", EPS, EPS_MK, "geneval", 20, SMALL + ["--lr", "1e-4"]),
    "ddpo-shapes-lr1e-4": ("ddpo", EPS, EPS_MK, "geneval", 20, SMALL + ["--lr", "1e-4"]),
    # a longer budget at lr 3e-5
    "pxpo-shapes-lr3e-5": ("pxpo", EPS, EPS_MK, "geneval", 40, SMALL + ["--lr", "3e-5"]),
    "ddpo-shapes-lr3e-5": ("ddpo", EPS, EPS_MK, "geneval", 40, SMALL + ["--lr", "3e-5"]),
    # the spec's own miniature (pxpo.md §2.1, §5.2): --reward redquad, DDPO's defaults (8 prompts x 8, lr 3e-4,
    # 20 epochs), the held-out mean redquad over 18 prompts x 32; PXPO on the map, DDPO on its mean
    "pxpo-redquad": ("pxpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1"]),
    "ddpo-redquad": ("ddpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1"]),
    "pxpo-redquad-lr1e-4": ("pxpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1", "--lr", "1e-4"]),
    "ddpo-redquad-lr1e-4": ("ddpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1", "--lr", "1e-4"]),
    # where DDPO rises (one-seed probes: lr 3e-4 for 100 epochs does not, lr 1e-3 does), and PXPO there
    "ddpo-redquad-lr1e-3": ("ddpo", EPS, EPS_MK, "redquad", 100, ["--threads", "1", "--lr", "1e-3"]),
    "pxpo-redquad-lr1e-3": ("pxpo", EPS, EPS_MK, "redquad", 100, ["--threads", "1", "--lr", "1e-3"]),
    # the spec's REINFORCE form (no ratio, A_ij = r_ij without a baseline) against DDPO-SF, DDPO's defaults otherwise
    "pxpo-redquad-sf-raw": ("pxpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1", "--score-function", "--pixel-adv", "raw"]),
    "ddpo-redquad-sf": ("ddpo", EPS, EPS_MK, "redquad", 20, ["--threads", "1", "--score-function"]),
    # BalancedDPO: the vote of {geneval (the run's), classifier, strict}, and the one-scorer control
    "balanced-dpo-shapes": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                            SMALL + ["--lr", "3e-4", "--scorers", "reward,classifier,strict"]),
    "balanced-dpo-shapes-k1": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30, SMALL + ["--lr", "3e-4", "--scorers", "reward"]),
    # online (balanced-dpo.md §4.2): the reference (which rolls out) is the learner of the previous step
    # (--ref-update-step 1), lr 3e-5 (3e-4 lowers the training prompts' score too)
    "balanced-dpo-shapes-online": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                                   SMALL + ["--lr", "3e-5", "--scorers", "reward,classifier,strict", "--ref-update-step", "1"]),
    "balanced-dpo-shapes-k1-online": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                                      SMALL + ["--lr", "3e-5", "--scorers", "reward", "--ref-update-step", "1"]),
    # offline at the same lr (the lr, not the online rollouts, is what the probes found to matter)
    "balanced-dpo-shapes-lr3e-5": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                                   SMALL + ["--lr", "3e-5", "--scorers", "reward,classifier,strict"]),
    # the same with 8 prompts per epoch (twice the pairs)
    "balanced-dpo-shapes-online-p8": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                                      ["--prompts-per-epoch", "8", "--group-size", "8", "--eval-n", "8", "--lr", "3e-5",
                                       "--scorers", "reward,classifier,strict", "--ref-update-step", "1"]),
})

# rows also scored on the training prompts (balanced-dpo.md §4.2, pxpo.md §5.1): the base's and each seed's last checkpoint,
# `flowrl eval --split train --n 8`, the same fixed evaluation noise for all
TRAIN_SPLIT = ("balanced-dpo-shapes", "balanced-dpo-shapes-k1", "balanced-dpo-shapes-online",
               "balanced-dpo-shapes-k1-online", "balanced-dpo-shapes-online-p8", "balanced-dpo-shapes-lr3e-5",
               "pxpo-shapes-lr1e-4", "ddpo-shapes-lr1e-4",
               "pxpo-shapes-lr3e-5", "ddpo-shapes-lr3e-5",
               "pxpo-redquad", "ddpo-redquad", "pxpo-redquad-lr1e-4", "ddpo-redquad-lr1e-4", "ddpo-redquad-lr1e-3",
               "pxpo-redquad-lr1e-3", "pxpo-redquad-sf-raw", "ddpo-redquad-sf")


def train_split_mean(ckpt, reward):
    args = ["eval", "--ckpt", ckpt, "--split", "train", "--n", "8", "--reward", reward, "--json"]
    print("$ flowrl " + " ".join(args), flush=True)
    ev = json.loads(flowrl(bench_prefmore.FLOWRL, args, name="bench_pxpo"))
    return ev["overall"]["mean_score"]


def train_split(names):
    print("\n| row | train prompts: before | after (per seed) | gain, 95% interval | raised |\n|---|---|---|---|---|")
    for name in names:
        algo, base, mk, reward, epochs, extra = bench_prefmore.ROWS[name]
        before = train_split_mean(base, reward)
        after = [train_split_mean(os.path.join(bench_prefmore.WORK, f"{name}-s{s}", "checkpoints", f"step-{epochs}.safetensors"),
                                  reward) for s in bench_prefmore.SEEDS]
        m, h = ci95([a - before for a in after])
        print(f"| {name} | {before:.4f} | " + ", ".join(f"{a:.4f}" for a in after) + f" | {m:+.4f} ± "
              + ("–" if h is None else f"{h:.4f}") + " | " + ("yes" if h is not None and m - h > 0 else "no") + " |",
              flush=True)


if __name__ == "__main__":
    bench_prefmore.main()
    train_split([n for n in (sys.argv[1:] or bench_prefmore.ROWS) if n in TRAIN_SPLIT])
