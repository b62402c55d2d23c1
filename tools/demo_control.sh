#!/usr/bin/env bash
# make demo-control: expert demonstrations -> behaviour cloning -> RL on nav2d's harder setting
# (docs/envs.md §4.1: 20-step episodes, an expert with action noise 1), printing the success rate
# before and after RL and writing the trajectory pictures. A few minutes on 2 cores.
#
#   1. flowrl expert --env nav2d --max-episode-steps 20 --noise 1 --episodes 200  (success ~0.6)
#   2. flowrl bc --policy KIND (the policy ALGO fine-tunes: ddpm for dppo, flow for fpo and reinflow)
#   3. flowrl train --algo ALGO --env nav2d --max-episode-steps 20 from the BC checkpoint
#      (ppo-gaussian, which has no BC start, trains its Gaussian policy from scratch)
#
# Outputs under $DEMO_DIR/control/ (gitignored): nav2d_noisy.demos, expert.png (the demonstrations),
# bc.safetensors, run-<timestamp>/ (samples/before.png, after.png: the evaluation episodes' paths;
# metrics.jsonl, audit.log, checkpoints/).
# Environment: BUILD (default build), DEMO_DIR (default demo), ALGO (default: the first of fpo, dppo
# registered: FPO gained most in bench_control; else ppo-gaussian), DEMO_EPOCHS (RL epochs), BC_STEPS (default 5000), SEED (default 1).
set -euo pipefail

BUILD=${BUILD:-build}
DEMO_DIR=${DEMO_DIR:-demo}
FLOWRL=$BUILD/flowrl
OUT=$DEMO_DIR/control
SEED=${SEED:-1}
BC_STEPS=${BC_STEPS:-5000}
ENV_OPTS=(--env nav2d --max-episode-steps 20) # nav2d's harder setting (docs/envs.md §4.1)
RUN_OPTS=(--backend opt --threads 2 --seed "$SEED")

registered() { "$FLOWRL" algos --json | grep -q "\"name\":[[:space:]]*\"$1\""; }
if [ -z "${ALGO:-}" ]; then
    ALGO=ppo-gaussian
    for a in fpo dppo; do if registered "$a"; then ALGO=$a; break; fi; done
fi
registered "$ALGO" || { echo "demo-control: ALGO=$ALGO is not registered (flowrl algos)" >&2; exit 2; }
# the policy each algorithm fine-tunes, the option that names its checkpoint, and epochs of about
# 20,000 environment steps at its defaults (bench/bench_control.py's table ALGOS holds the same)
case $ALGO in
dppo) KIND=ddpm; FLAG=--policy; EPOCHS=${DEMO_EPOCHS:-40} ;;          # 8 x 64 steps an epoch
fpo) KIND=flow; FLAG=--policy; EPOCHS=${DEMO_EPOCHS:-10} ;;           # 8 x 256
reinflow) KIND=flow; FLAG=--policy; EPOCHS=${DEMO_EPOCHS:-10} ;;          # 8 x 256
ppo-gaussian) KIND=; FLAG=; EPOCHS=${DEMO_EPOCHS:-10} ;;              # 8 x 256
*) echo "demo-control: ALGO=$ALGO: the demo runs dppo, fpo, reinflow or ppo-gaussian" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
t0=$(date +%s)
echo "== 1. expert demonstrations (nav2d, 20-step episodes, action noise 1)"
EXPERT=$("$FLOWRL" expert "${ENV_OPTS[@]}" --noise 1 --episodes 200 --seed 42 --out "$OUT/nav2d_noisy.demos" --force \
    --plot "$OUT/expert.png")
echo "$EXPERT"
BC_LINE=
if [ -n "$KIND" ]; then
    echo "== 2. behaviour cloning: a $KIND policy, $BC_STEPS steps"
    "$FLOWRL" bc --demos "$OUT/nav2d_noisy.demos" --policy "$KIND" --steps "$BC_STEPS" --out "$OUT/bc.safetensors.tmp" \
        --eval-episodes 100 "${RUN_OPTS[@]}" | tee "$OUT/bc.log" | grep -E "^(bc:|eval:|wrote)"
    mv "$OUT/bc.safetensors.tmp" "$OUT/bc.safetensors"
    BC_LINE=$(grep '^eval:' "$OUT/bc.log")
fi
RUN=$OUT/run-$(date -u +%Y%m%d-%H%M%S)
echo "== 3. RL: $ALGO, $EPOCHS epochs -> $RUN"
START=()
[ -n "$KIND" ] && START=("$FLAG" "$OUT/bc.safetensors")
"$FLOWRL" train --algo "$ALGO" "${ENV_OPTS[@]}" "${START[@]}" --epochs "$EPOCHS" --eval-every 5 --eval-episodes 100 \
    --out "$RUN" "${RUN_OPTS[@]}" | tee "$RUN.log" | grep -E "^eval " || true
[ -f "$RUN/samples/after.png" ] || { echo "demo-control: the run failed (its log: $RUN.log)" >&2; exit 1; }

success() { grep -E "^eval $1 " "$RUN.log" | sed -E 's/.* success ([0-9.]+).*/\1/' | tail -1; }
before=$(success before)
after=$(success 'after ')
echo
echo "nav2d (20-step episodes), success over 100 evaluation episodes (ids from 2^31):"
echo "  expert demonstrations (noise 1): $(grep -oE 'success [0-9.]+' <<<"$EXPERT")"
[ -n "$BC_LINE" ] && echo "  behaviour cloning ($KIND): ${BC_LINE#eval: }"
echo "  $ALGO before RL: success $before"
echo "  $ALGO after $EPOCHS epochs: success $after"
echo "pictures: $OUT/expert.png, $RUN/samples/before.png, $RUN/samples/after.png ($(($(date +%s) - t0)) s)"
