#!/usr/bin/env bash
# AWM vs Flow-GRPO on shapes (issue 8): epoch time, model evaluations per epoch, and train /
# held-out accuracy after the same number of model evaluations, on 3 seeds. Rewrites its own
# section of BENCHMARKS.md (between the bench_algos markers; appended when absent); the numbers
# there come only from this script. Usage, from the repository root:
#   bench/bench_algos.sh
# Environment (defaults): BUILD (build), BASE (demo/shapes_base.safetensors: tools/demo.sh's
# cache, pretrained here the same way when absent), OUT (BENCHMARKS.md), WORK (run directories,
# demo/bench_algos-<time>), TIME_EPOCHS (11 per timing run; the first is not counted), TIME_ROUNDS
# (2: runs per algorithm, round-robin), FG_EPOCHS (400: Flow-GRPO's epochs of the accuracy runs,
# which fix the budget; AWM gets the epochs that spend the same), SEEDS (1 2 3), EVAL_N (16).
# Everything runs on one thread (--threads 1, nice 10), one command at a time: about 17 min on
# the shared 2-core machine (BENCHMARKS.md records the load).
set -euo pipefail

BUILD=${BUILD:-build}
FLOWRL=$BUILD/flowrl
BASE=${BASE:-demo/shapes_base.safetensors}
OUT=${OUT:-BENCHMARKS.md}
WORK=${WORK:-demo/bench_algos-$(date -u +%Y%m%d-%H%M%S)}
TIME_EPOCHS=${TIME_EPOCHS:-11}
TIME_ROUNDS=${TIME_ROUNDS:-2}
FG_EPOCHS=${FG_EPOCHS:-400}
SEEDS=${SEEDS:-1 2 3}
EVAL_N=${EVAL_N:-16}
BASE_STEPS=10000 # flowrl pretrain's default for shapes, as tools/demo.sh

RUN=(nice -n 10)
COMMON=(--task shapes --backend opt --threads 1)
PG=(--prompts-per-epoch 8 --group-size 16) # the demo's P x G, the same for both algorithms
# The accuracy runs use each algorithm's demo configuration (tools/demo.sh: why these flags).
FG_OPTS=(--lr 2e-4 --beta 1)
AWM_OPTS=(--lr 1e-4 --beta 0.1)

[ -x "$FLOWRL" ] || { echo "bench_algos: $FLOWRL not found: run make first" >&2; exit 1; }
mkdir -p "$WORK"
log() { echo "bench_algos: $*" >&2; }
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- base: tools/demo.sh's cached default shapes pretrain ---------------------------------------
if [ ! -f "$BASE" ]; then
    log "pretraining $BASE ($BASE_STEPS steps)"
    mkdir -p "$(dirname "$BASE")"
    "${RUN[@]}" "$FLOWRL" pretrain --task shapes --out "$BASE.tmp" --max-train-steps "$BASE_STEPS" \
        --backend opt --threads 1 --progress off --force
    mv "$BASE.tmp" "$BASE"
fi
base_meta=$("$FLOWRL" tensors "$BASE" --meta | awk '$1 ~ /^(preset|step|seed)$/ { printf "%s%s %s", s, $1, $3; s = ", " }')

# train ALGO DIR EPOCHS [flags...]: one run, no held-out evaluation, the last checkpoint only
train() {
    local algo=$1 dir=$2 epochs=$3
    shift 3
    "${RUN[@]}" "$FLOWRL" train --algo "$algo" --base "$BASE" --out "$dir" --epochs "$epochs" --eval-n 0 \
        --checkpoint-every 0 --keep-checkpoints 1 --log-every 50 "${COMMON[@]}" "${PG[@]}" "$@" >"$dir.log" 2>&1 ||
        { cat "$dir.log" >&2; exit 1; }
}

# ---- a. epoch time at each algorithm's defaults (P x G as the demo) -----------------------------
for r in $(seq 1 "$TIME_ROUNDS"); do
    for a in flow-grpo awm; do
        log "timing $a, round $r"
        train "$a" "$WORK/time-$a-$r" "$TIME_EPOCHS" --seed "$r"
    done
done
# epoch seconds of ALGO's timing runs, the first epoch of each run left out (warm-up)
epoch_secs() { for r in $(seq 1 "$TIME_ROUNDS"); do jq -r 'select(.epoch > 1) | .seconds' "$WORK/time-$1-$r/metrics.jsonl"; done; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f | %.3f", lo, hi }'; }
med_fg=$(epoch_secs flow-grpo | median)
med_awm=$(epoch_secs awm | median)

# ---- b. model evaluations per epoch, from a run's config.json -----------------------------------
# Unit: one row (one sample at one time) through the network = 1 forward; a backward ≈ 2 forwards,
# so a trained row (forward + backward) costs 3. Prints "forwards backwards forward-equivalents".
# Flow-GRPO: rollout N·T (×2 with CFG); training KEPT·T_train policy rows (×2 with training CFG),
#   T_train = int(T·timestep_fraction), plus as many reference forwards when β > 0 (the old
#   log-probs come from the rollout: no extra forward). KEPT = N from the options (the zero filter
#   drops samples whose advantage is exactly 0; the measured mean is reported beside it).
# AWM: rollout N·T (×2 with CFG); training K·N policy rows (CFG 1), K·N reference forwards when
#   β > 0, K·N EMA-copy forwards when ema_beta > 0, and K·b·(num_batches − grad_accum) forwards
#   for the old log-probs when num_batches > grad_accum.
nfe() { # RUNDIR [KEPT]
    jq -r --arg kept "${2:-}" '
        (.prompts_per_epoch * .group_size) as $N | .num_steps as $T |
        (if .cfg != 1 then 2 else 1 end) as $c |
        ($N * $T * $c) as $roll |
        if .algo == "flow-grpo" then
            (if $kept == "" then $N else ($kept | tonumber) end) as $k |
            ((.num_steps * .timestep_fraction) | floor) as $Tt |
            (if .train_cfg == "on" or (.train_cfg == "auto" and .cfg != 1) then 2 else 1 end) as $ct |
            ($k * $Tt * $ct) as $rows |
            [$roll + $rows + (if .beta > 0 then $rows else 0 end), $rows]
        else
            (.train_timesteps * $N) as $rows |
            (if .num_batches > .grad_accum then .train_timesteps * ($N / .num_batches) * (.num_batches - .grad_accum) else 0 end) as $old |
            [$roll + $rows + (if .beta > 0 then $rows else 0 end) + (if .ema_beta > 0 then $rows else 0 end) + $old, $rows]
        end | "\(.[0]) \(.[1]) \(.[0] + 2 * .[1])"' "$1/config.json"
}
kept_mean() { jq -s 'map(.kept) | add / length' "$1/metrics.jsonl"; }

# ---- c. equal budget: FG_EPOCHS Flow-GRPO epochs' forward-equivalents --------------------------
mkdir -p "$WORK/probe"
train flow-grpo "$WORK/probe/flow-grpo" 1 "${FG_OPTS[@]}" --seed 1
train awm "$WORK/probe/awm" 1 "${AWM_OPTS[@]}" --seed 1
fe_fg=$(nfe "$WORK/probe/flow-grpo" | cut -d' ' -f3)
fe_awm=$(nfe "$WORK/probe/awm" | cut -d' ' -f3)
budget=$((FG_EPOCHS * fe_fg))
AWM_EPOCHS=$(awk -v b="$budget" -v e="$fe_awm" 'BEGIN { printf "%d", b / e + 0.5 }')
log "budget $budget forward-equivalents: flow-grpo $FG_EPOCHS epochs, awm $AWM_EPOCHS epochs"

# eval_overall CKPT SPLIT -> "prompts samples correct" of flowrl eval's overall row
eval_overall() {
    "${RUN[@]}" "$FLOWRL" eval --ckpt "$1" --task shapes --split "$2" --n "$EVAL_N" --backend opt --threads 1 2>/dev/null |
        awk '$1 == "overall" { print $2, $3, $4 }'
}
acc=$WORK/accuracy.txt # lines "ALGO SEED SPLIT prompts samples correct seconds"
: >"$acc"
for s in eval train; do echo "base 0 $s $(eval_overall "$BASE" $s) 0" >>"$acc"; done
for seed in $SEEDS; do
    for a in flow-grpo awm; do
        if [ "$a" = flow-grpo ]; then ep=$FG_EPOCHS opts=("${FG_OPTS[@]}"); else ep=$AWM_EPOCHS opts=("${AWM_OPTS[@]}"); fi
        dir=$WORK/acc-$a-seed$seed
        log "accuracy run $a seed $seed ($ep epochs)"
        t0=$(date +%s)
        train "$a" "$dir" "$ep" "${opts[@]}" --seed "$seed"
        t1=$(date +%s)
        for s in eval train; do
            echo "$a $seed $s $(eval_overall "$dir/checkpoints/step-$ep.safetensors" $s) $((t1 - t0))" >>"$acc"
        done
    done
done
kept_fg=$(for seed in $SEEDS; do kept_mean "$WORK/acc-flow-grpo-seed$seed"; done | awk '{ s += $1 } END { printf "%.1f", s / NR }')

# ---- the section --------------------------------------------------------------------------------
t_end=$(date +%s)
seeds_csv=$(echo "$SEEDS" | tr ' ' ',')
section=$WORK/section.md
{
    echo "<!-- bench_algos begin: written by bench/bench_algos.sh, do not edit by hand -->"
    echo "## AWM vs Flow-GRPO on shapes"
    echo
    echo "Command: \`bench/bench_algos.sh\` (TIME_EPOCHS=$TIME_EPOCHS TIME_ROUNDS=$TIME_ROUNDS FG_EPOCHS=$FG_EPOCHS" \
        "SEEDS=\"$SEEDS\" EVAL_N=$EVAL_N) on $(date -u '+%Y-%m-%d %H:%M UTC'); source git" \
        "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')."
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical CPUs, shared; every command on one thread" \
        "(\`--backend opt --threads 1\`, nice 10), one at a time. Load average: $load_start at the start," \
        "$(cut -d' ' -f1-3 /proc/loadavg) at the end; $(((t_end - t_start) / 60)) min in all."
    echo "Base: \`$BASE\` ($base_meta: tools/demo.sh's default shapes pretrain). Both algorithms:" \
        "P 8 prompts x G 16 samples per epoch (the demo's), task reward geneval."
    echo
    echo "### Epoch time at each algorithm's defaults"
    echo
    echo "\`flowrl train --algo A --prompts-per-epoch 8 --group-size 16 --epochs $TIME_EPOCHS --eval-n 0 --threads 1\`," \
        "every other option the algorithm's default; $TIME_ROUNDS runs per algorithm (seeds 1..$TIME_ROUNDS," \
        "round-robin), the first epoch of each run not counted: seconds per epoch (metrics.jsonl \`seconds\`)."
    echo
    echo "| algorithm | rollout | epochs timed | epoch s (median) | min | max | ratio to Flow-GRPO |"
    echo "|---|---|---|---|---|---|---|"
    for a in flow-grpo awm; do
        c=$WORK/time-$a-1/config.json
        if [ "$a" = awm ]; then m=$med_awm; else m=$med_fg; fi
        printf '| %s | %s, T %s | %d | %.3f | %s | %.2fx |\n' "$a" "$(jq -r .sampler "$c")" "$(jq -r .num_steps "$c")" \
            "$(epoch_secs "$a" | wc -l)" "$m" "$(epoch_secs "$a" | minmax)" \
            "$(awk -v x="$m" -v y="$med_fg" 'BEGIN { print x / y }')"
    done
    echo
    echo "### Model evaluations per epoch"
    echo
    echo "Counted from the options (config.json), in rows through the network: a forward of one row = 1, a"
    echo "backward ≈ 2 forwards, so a trained row costs 3 (forward-equivalents = forwards + 2 x backwards)."
    echo "Flow-GRPO: rollout N·T, training N·int(T·timestep_fraction) policy rows + as many reference forwards"
    echo "(β > 0). AWM: rollout N·T (ODE), training K·N policy rows + K·N reference forwards (β > 0) + K·N"
    echo "EMA-copy forwards (ema_beta > 0). CFG is 1 in both (no unconditional rows). Flow-GRPO's zero filter"
    echo "trains only samples with a nonzero advantage: the counts assume all N are kept; in the accuracy runs"
    echo "below it kept $kept_fg of 128 on average."
    echo
    echo "| algorithm | N | T | trained rows | forwards | backwards | forward-equivalents | ratio to Flow-GRPO |"
    echo "|---|---|---|---|---|---|---|---|"
    for a in flow-grpo awm; do
        d=$WORK/time-$a-1
        read -r f b fe < <(nfe "$d")
        fe1=$(nfe "$WORK/time-flow-grpo-1" | cut -d' ' -f3)
        if [ "$a" = awm ]; then rows="K $(jq -r .train_timesteps "$d/config.json") x N"; else rows="int(T x $(jq -r .timestep_fraction "$d/config.json")) x N"; fi
        printf '| %s | %d | %s | %s = %d | %d | %d | %d | %.2fx |\n' "$a" 128 "$(jq -r .num_steps "$d/config.json")" "$rows" "$b" \
            "$f" "$b" "$fe" "$(awk -v x="$fe" -v y="$fe1" 'BEGIN { print x / y }')"
    done
    echo
    echo "### Accuracy after the same number of model evaluations"
    echo
    echo "Budget: $budget forward-equivalents = $FG_EPOCHS Flow-GRPO epochs x $fe_fg = $AWM_EPOCHS AWM epochs x $fe_awm" \
        "(rounded to whole epochs). Each algorithm in its demo configuration (tools/demo.sh):"
    echo "Flow-GRPO \`${FG_OPTS[*]}\`, AWM \`${AWM_OPTS[*]}\`, both \`--prompts-per-epoch 8 --group-size 16\`, everything"
    echo "else the defaults; seeds $seeds_csv. Accuracy = share of samples judged correct by \`flowrl eval --ckpt"
    echo "RUN/checkpoints/step-E.safetensors --split eval|train --n $EVAL_N\` (ODE 40 steps, the same sampling seed"
    echo "for every checkpoint). held-out = the eval prompts (never trained on), train = the prompts RL draws from."
    echo "mean ± 95% interval over the seeds: t-distribution, mean ± t·s/√n (n = 3: t = 4.303, 2 degrees of freedom)."
    echo
    echo "| policy | epochs | held-out accuracy | train accuracy | per seed (held-out / train) | train s per run |"
    echo "|---|---|---|---|---|---|"
    awk -v fge="$FG_EPOCHS" -v awe="$AWM_EPOCHS" '
        BEGIN { split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262", tq, " ") }
        { a = $1; sp = $3; p = $6 / $5; n[a, sp]++; sum[a, sp] += p; sq[a, sp] += p * p
          cell[a] = cell[a] (sp == "eval" ? (cell[a] == "" ? "" : ", ") sprintf("%.1f", 100 * p) : sprintf(" / %.1f", 100 * p))
          secs[a] += (sp == "eval") ? $7 : 0; samples[a, sp] = $5 }
        function ci(a, sp,    k, m, s) {
            k = n[a, sp]; m = sum[a, sp] / k
            if (k < 2) return sprintf("%.1f%% (%d samples)", 100 * m, samples[a, sp])
            s = sqrt((sq[a, sp] - k * m * m) / (k - 1)); if (s != s) s = 0
            return sprintf("%.1f%% ± %.1f", 100 * m, 100 * tq[k - 1] * s / sqrt(k)) }
        END {
            printf "| base | 0 | %s | %s | - | - |\n", ci("base", "eval"), ci("base", "train")
            printf "| Flow-GRPO | %d | %s | %s | %s | %.0f |\n", fge, ci("flow-grpo", "eval"), ci("flow-grpo", "train"), cell["flow-grpo"], secs["flow-grpo"] / n["flow-grpo", "eval"]
            printf "| AWM | %d | %s | %s | %s | %.0f |\n", awe, ci("awm", "eval"), ci("awm", "train"), cell["awm"], secs["awm"] / n["awm", "eval"] }' "$acc"
    echo
    echo "Run directories: \`$WORK\` (git-ignored; accuracy.txt holds the raw counts)."
    echo "<!-- bench_algos end -->"
} >"$section"

# replace the section between the markers, or append it
if grep -q '^<!-- bench_algos begin' "$OUT" 2>/dev/null; then
    awk -v f="$section" '/^<!-- bench_algos begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
        /^<!-- bench_algos end/ { skip = 0; next } !skip' "$OUT" >"$OUT.tmp"
else
    { cat "$OUT"; echo; cat "$section"; } >"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
log "wrote the section of $OUT in $(((t_end - t_start) / 60)) min; raw numbers: $acc"
