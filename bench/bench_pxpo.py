#!/usr/bin/env python3
"""The shapes miniatures of issue 21's pxpo branch, on bench_prefmore.py's row runner (3 seeds, the
held-out mean reward's gain from `flowrl train`'s eval.json with its 95% t interval, "raised" when the
interval excludes zero): PXPO (docs/algorithms/pxpo.md §5) against DDPO on the same epsilon base and
budget, and BalancedDPO (docs/algorithms/balanced-dpo.md §4) voting over the detector, the classifier
and the strict detector against its one-scorer control (Flow-DPO on the detector's labels).

    bench/bench_pxpo.py [ROW ...]        # rows by name; all without arguments
    WORK=demo/pxpo SEEDS="1 2 3" FLOWRL=build/flowrl

Bases: demo/shapes_eps_base.safetensors and demo/shapes_base.safetensors (`make demo`'s; built when
missing with the commands below)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("WORK", "demo/pxpo")
import bench_prefmore  # noqa: E402

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
    # BalancedDPO: the vote of {geneval (the run's), classifier, strict}, and the one-scorer control
    "balanced-dpo-shapes": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30,
                            SMALL + ["--lr", "3e-4", "--scorers", "reward,classifier,strict"]),
    "balanced-dpo-shapes-k1": ("balanced-dpo", FLOW, FLOW_MK, "geneval", 30, SMALL + ["--lr", "3e-4", "--scorers", "reward"]),
})

if __name__ == "__main__":
    bench_prefmore.main()
