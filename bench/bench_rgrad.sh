#!/bin/sh
# The reward-gradient miniature (docs/algorithms/draft.md §7; spec more.md §1.5): a gmm2d base
# (flowrl pretrain, 2000 steps), reward sqdist = -|x - mu_k|^2, each method 3 seeds; the held-out
# mean reward (8 prompts x 8, 40 ODE steps) before and after, from each run's eval.json.
# Usage: bench/bench_rgrad.sh OUTDIR   (about 2 minutes on one core)
set -eu
OUT=${1:-demo/bench_rgrad}
FLOWRL=${FLOWRL:-build/flowrl}
mkdir -p "$OUT"
BASE="$OUT/base.safetensors"
[ -f "$BASE" ] || nice -n 10 "$FLOWRL" pretrain --task gmm2d --out "$BASE" --max-train-steps 2000 >/dev/null
COMMON="--task gmm2d --base $BASE --reward sqdist --epochs 20 --prompts-per-epoch 8 --group-size 8 --num-steps 16 --eval-n 8 --backend opt --threads 1"
for m in "draft" "draft --truncate 1" "draft --truncate 4" "alignprop" "refl"; do
  name=$(echo "$m" | tr ' ' '_' | sed 's/--//g')
  for seed in 1 2 3; do
    d="$OUT/$name-s$seed"
    rm -rf "$d"
    nice -n 10 "$FLOWRL" train --algo $m $COMMON --seed $seed --out "$d" >"$d.log" 2>&1
    echo "$name $seed $(tail -1 "$d.log")"
  done
done
