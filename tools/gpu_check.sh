#!/usr/bin/env bash
# The GPU check of issue 9 (DEVELOPERS.md "The GPU check"), under 5 minutes on a GPU machine
# with nothing installed. Run from the bundle `make gpu-bundle` builds (gpu-bundle/gpu_check.sh:
# its bin/, lib/, golden/), or from a source tree after `make` (tools/gpu_check.sh: build/).
#
#   gpu_check.sh [OUTDIR]         OUTDIR: $OUT if set, else ./gpu-check-out
#   gpu_check.sh --merge FILE [BENCHMARKS.md]
#                                 puts FILE's section (OUTDIR/gpu_check.md) into BENCHMARKS.md
#
# Steps, in order; each is timed, limited, and reported PASS / FAIL / SKIP with its first cause:
#   libraries    every shared library the binaries need resolves (ldd)
#   info         flowrl info: the device, driver and runtime, cuBLAS
#   selfcheck    cuda_selfcheck: the FR_HOSTDEV element functions, device bits = host bits
#   suite        check_flowrl cuda: the memory entries and the registry on the device
#   golden       flowrl golden check --backend cuda (bitwise), then --fast (cuBLAS, tolerance)
#   grpo-*       a short Flow-GRPO run (gmm2d) on cuda and on ref, compared by flowrl audit
#   bench-gemm   bench_cuda_gemm: canonical cuda GEMM vs cuBLAS SGEMM (TF32 off), 1024³ and shapes-m
#   epoch-*      a shapes-m Flow-GRPO epoch on cuda and on opt pinned to 2 cores (taskset), the
#                two runs compared by flowrl audit (bitwise: cuda = ref = opt)
# OUTDIR receives two files (the device tool brings back at most 8): gpu_check.md (the summary
# and the BENCHMARKS.md section between the gpu_check markers) and gpu_check.log (every command
# and its output). The exit status is 0 only when no step failed.
#
# FLOWRL_GPU_CHECK_DRY=1: a rehearsal on a machine without a GPU (the steps' logic, parsing and
# report): opt plays cuda, bench_cuda_gemm runs --dry-run, the device-only steps are skipped.
# Its report says DRY RUN and --merge refuses it.
# Environment: FLOWRL_CUBLAS (the libcublas.so.13 to load; else found on this machine), BUILD
# (source-tree mode: build), GPU_CHECK_EPOCHS (4: epochs per epoch-timing run, the first not
# counted).
set -uo pipefail

# ---- --merge ------------------------------------------------------------------------------------
if [ "${1:-}" = --merge ]; then
    src=${2:?usage: gpu_check.sh --merge FILE [BENCHMARKS.md]}
    dst=${3:-BENCHMARKS.md}
    grep -q '^<!-- gpu_check begin' "$src" || { echo "gpu_check: $src holds no gpu_check section" >&2; exit 1; }
    if grep -q 'DRY RUN' "$src"; then echo "gpu_check: $src is a dry run, not a measurement: not merged" >&2; exit 1; fi
    sec=$(mktemp)
    sed -n '/^<!-- gpu_check begin/,/^<!-- gpu_check end -->/p' "$src" >"$sec"
    if grep -q '^<!-- gpu_check begin' "$dst" 2>/dev/null; then
        awk -v f="$sec" '/^<!-- gpu_check begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
            /^<!-- gpu_check end/ { skip = 0; next } !skip' "$dst" >"$dst.tmp"
    else
        { cat "$dst"; echo; cat "$sec"; } >"$dst.tmp"
    fi
    mv "$dst.tmp" "$dst" && rm -f "$sec"
    echo "gpu_check: wrote the gpu_check section of $dst"
    exit 0
fi

T_START=$(date +%s)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${1:-${OUT:-gpu-check-out}}
DRY=${FLOWRL_GPU_CHECK_DRY:-0}
EPOCHS=${GPU_CHECK_EPOCHS:-4}
if [ -x "$HERE/bin/flowrl" ]; then # the bundle
    MODE=bundle BIN=$HERE/bin GOLDEN=$HERE/golden REWARD=$HERE/mock_reward.py
else # a source tree
    ROOT=$(cd "$HERE/.." && pwd)
    MODE=source BIN=$ROOT/${BUILD:-build} GOLDEN=$ROOT/golden REWARD=$ROOT/tests/reward_progs/mock_reward.py
fi
FLOWRL=$BIN/flowrl
DEV=cuda
[ "$DRY" = 1 ] && DEV=opt
mkdir -p "$OUTDIR" || { echo "gpu_check: cannot create $OUTDIR" >&2; exit 1; }
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/gpu_check.log
REPORT=$OUTDIR/gpu_check.md
W=$(mktemp -d /tmp/flowrl-gpu-check-XXXXXX)
trap 'rm -rf "$W"' EXIT
: >"$LOG"
: >"$W/steps"

say() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }
# first_cause FILE: the first line that reads like an error, else the last line
first_cause() {
    local l
    l=$(grep -m1 -iE 'error|fail|cannot|not found|no cuda|differ|mismatch|refus|denied|^flowrl [a-z]+: ' "$1")
    [ -n "$l" ] || l=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1)
    printf '%s' "${l:0:300}" | tr '|' '/'
}
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$W/steps"; } # NAME RESULT SECONDS CAUSE
skip() { record "$1" SKIP 0 "$2"; say "$1: SKIP ($2)"; }
# step NAME LIMIT_S CMD...: runs CMD (output in $W/NAME.out and the log), records the result
step() {
    local name=$1 limit=$2 rc t0 t1 secs
    shift 2
    { echo; echo "==== $name (limit ${limit} s): $*"; } >>"$LOG"
    t0=$(date +%s.%N)
    if declare -F "$1" >/dev/null; then "$@" >"$W/$name.out" 2>&1; else
        timeout --kill-after=5 "$limit" "$@" >"$W/$name.out" 2>&1; fi
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    cat "$W/$name.out" >>"$LOG"
    echo "==== $name: exit $rc after $secs s" >>"$LOG"
    if [ $rc = 0 ]; then
        record "$name" PASS "$secs" ""
        say "$name: PASS ($secs s)"
    else
        local cause
        if [ $rc = 124 ] || [ $rc = 137 ]; then cause="timed out after $limit s; last line: $(first_cause "$W/$name.out")"
        else cause="exit $rc: $(first_cause "$W/$name.out")"; fi
        record "$name" FAIL "$secs" "$cause"
        say "$name: FAIL ($cause)"
    fi
    return $rc
}
passed() { awk -F'\t' -v n="$1" '$1 == n { r = $2 } END { exit r != "PASS" }' "$W/steps"; }
# median of the "seconds" of a run's epochs after the first
epoch_secs() { grep -o '"seconds":[0-9.eE+-]*' "$1/metrics.jsonl" | cut -d: -f2 | tail -n +2; }
stats() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%d %.3f %.3f %.3f", NR, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR]; else print "0 0 0 0" }'; }

say "mode $MODE ($BIN), outputs in $OUTDIR$([ "$DRY" = 1 ] && echo ', DRY RUN: opt plays cuda')"
{
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host:    $(uname -srm); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu:     /'
    [ -f "$HERE/BUNDLE" ] && sed 's/^/bundle:  /' "$HERE/BUNDLE"
} >"$W/env.txt"
cat "$W/env.txt" >>"$LOG"

# cuBLAS for --fast: FLOWRL_CUBLAS, else the loader's, else a toolkit or a pip wheel's copy
if [ "$DRY" != 1 ] && [ -z "${FLOWRL_CUBLAS:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '; then
    for d in /usr/local/cuda/lib64 ${CUDA_HOME:+$CUDA_HOME/lib64} /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu; do
        [ -e "$d/libcublas.so.13" ] && { export FLOWRL_CUBLAS=$d/libcublas.so.13; break; }
    done
    if [ -z "${FLOWRL_CUBLAS:-}" ]; then
        f=$(find /opt /usr/local /usr/lib /root -xdev -name 'libcublas.so.13' -path '*nvidia*' 2>/dev/null | head -n 1)
        [ -n "$f" ] && export FLOWRL_CUBLAS=$f
    fi
fi
say "cuBLAS: ${FLOWRL_CUBLAS:-libcublas.so.13 through the loader, if it has one}"

# ---- checks -------------------------------------------------------------------------------------
libs_ok() {
    local b bad=0
    for b in "$BIN"/flowrl "$BIN"/bench_cuda_gemm "$BIN"/cuda_selfcheck "$BIN"/check_flowrl; do
        [ -x "$b" ] || { echo "$b: not found (make; make bench; make build/cuda_selfcheck, or make gpu-bundle)"; bad=1; continue; }
        if ldd "$b" | grep 'not found'; then echo "$b: a shared library is missing (above)"; bad=1; fi
    done
    return $bad
}
step libraries 30 libs_ok

step info 30 "$FLOWRL" info
device=$(sed -n 's/^cuda: *//p' "$W/info.out")
have_dev=0
if [ "$DRY" = 1 ]; then device="none (dry run)"
elif passed info && [ -n "$device" ] && ! grep -q 'no CUDA device\|built (kernels' "$W/info.out"; then have_dev=1
fi
blas=$(sed -n 's/^cuda --fast: *//p' "$W/info.out")
if [ "$DRY" != 1 ] && [ $have_dev = 0 ]; then # the first cause of every device step's skip
    record device FAIL 0 "no usable CUDA device: ${device:-flowrl info printed no cuda line}"
    say "device: FAIL (${device:-flowrl info printed no cuda line})"
fi
need_dev() { # NAME: 0 if the device-only steps can run, else records the skip
    [ "$DRY" = 1 ] && { skip "$1" "dry run: no device"; return 1; }
    [ $have_dev = 1 ] || { skip "$1" "no usable CUDA device (the device step)"; return 1; }
}
# dev_step NAME LIMIT CMD...: a step that needs the device; in a dry run opt plays cuda
dev_step() { if [ "$DRY" = 1 ] || need_dev "$1"; then step "$@"; else return 1; fi; }

if need_dev selfcheck; then
    step selfcheck 120 "$BIN/cuda_selfcheck"
fi
step suite 120 env FLOWRL_BIN="$FLOWRL" FLOWRL_SRC="${ROOT:-$HERE}" "$BIN/check_flowrl" cuda

dev_step golden 120 "$FLOWRL" golden check --backend "$DEV" --dir "$GOLDEN"
dev_step golden-fast 120 "$FLOWRL" golden check --backend "$DEV" --fast --dir "$GOLDEN"
if [ -f "$W/golden-fast.out" ] && ! passed golden-fast && grep -q 'cuBLAS not available\|--fast needs OpenBLAS or oneDNN' "$W/golden-fast.out"; then
    sed -i '$d' "$W/steps" && skip golden-fast "$(first_cause "$W/golden-fast.out")"
fi

# a short Flow-GRPO run (gmm2d, 3 epochs) on the device and on ref: identical audit logs
TRAIN=(--algo flow-grpo --epochs 3 --eval-n 0 --checkpoint-every 1 --keep-checkpoints 0 --log-every 1)
if step grpo-base 120 "$FLOWRL" pretrain --task gmm2d --max-train-steps 200 --backend opt --out "$W/g-base.safetensors" --progress off; then
    step grpo-ref 120 "$FLOWRL" train "${TRAIN[@]}" --base "$W/g-base.safetensors" --out "$W/g-ref" --backend ref
    dev_step grpo-cuda 120 "$FLOWRL" train "${TRAIN[@]}" --base "$W/g-base.safetensors" --out "$W/g-dev" --backend "$DEV"
    if passed grpo-ref && passed grpo-cuda; then step grpo-audit 60 "$FLOWRL" audit "$W/g-ref" "$W/g-dev"
    else skip grpo-audit "a run failed"; fi
else
    skip grpo-ref "no base"; skip grpo-cuda "no base"; skip grpo-audit "no base"
fi

# ---- benchmarks ---------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
    step bench-gemm 120 "$BIN/bench_cuda_gemm" --dry-run --cube 256 --batches 64 --reps 2
else
    dev_step bench-gemm 180 "$BIN/bench_cuda_gemm" --cube 1024 --preset shapes-m --batches 64,256 --reps 5
fi

# shapes-m Flow-GRPO epochs: the demo's P x G (8 x 16), T 10, a stdlib-only reward program with
# distinct scores (so every sample trains); the base is a 1-step pretrain (timing only)
EP=(--algo flow-grpo --epochs "$EPOCHS" --eval-n 0 --checkpoint-every 0 --keep-checkpoints 1 --log-every 1
    --prompts-per-epoch 8 --group-size 16 --reward "cmd:python3 $REWARD ok")
if ! command -v taskset >/dev/null; then
    skip epoch-opt "taskset not found (util-linux): opt cannot be pinned to 2 cores"
elif step epoch-base 120 "$FLOWRL" pretrain --task shapes --preset shapes-m --max-train-steps 1 --backend opt --out "$W/m-base.safetensors" --progress off; then
    step epoch-opt 180 taskset -c 0,1 "$FLOWRL" train "${EP[@]}" --base "$W/m-base.safetensors" --out "$W/m-opt" --backend opt --threads 2
    if dev_step epoch-cuda 180 "$FLOWRL" train "${EP[@]}" --base "$W/m-base.safetensors" --out "$W/m-dev" --backend "$DEV" --threads 2 &&
        passed epoch-opt; then
        step epoch-audit 60 "$FLOWRL" audit "$W/m-opt" "$W/m-dev"
    fi
fi

# ---- the report ---------------------------------------------------------------------------------
T_END=$(date +%s)
n_fail=$(awk -F'\t' '$2 == "FAIL"' "$W/steps" | wc -l)
first_fail=$(awk -F'\t' '$2 == "FAIL" { print $1 ": " $4; exit }' "$W/steps")
{
    echo "# GPU check $([ "$DRY" = 1 ] && echo '(DRY RUN: no GPU; opt played cuda; not a measurement)')"
    echo
    echo "Verdict: $([ "$n_fail" = 0 ] && echo "no step failed" || echo "$n_fail step(s) FAILED; first: $first_fail")."
    echo "Bring the section below into BENCHMARKS.md with \`tools/gpu_check.sh --merge gpu_check.md\`."
    echo
    echo "<!-- gpu_check begin: written by tools/gpu_check.sh, do not edit by hand -->"
    echo "## CUDA backend on a GPU"
    echo
    echo "Written by \`tools/gpu_check.sh\` ($MODE mode$([ "$DRY" = 1 ] && echo ', DRY RUN')) in $((T_END - T_START)) s."
    echo "Device: $device."
    echo "cuda --fast: ${blas:-not reported}."
    echo
    echo '```'
    cat "$W/env.txt"
    echo '```'
    echo
    echo "### Checks"
    echo
    echo "| step | result | seconds | first cause |"
    echo "|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, ($2 == "FAIL" ? "**FAIL**" : $2), $3, ($4 == "" ? "-" : $4) }' "$W/steps"
    echo
    if passed grpo-audit; then
        echo "Flow-GRPO on gmm2d, 3 epochs, $DEV vs ref: $(grep -m1 '^identical' "$W/grpo-audit.out")."
        echo
    fi
    echo "### GEMM"
    if passed bench-gemm; then sed -n '/^###/,$p' "$W/bench-gemm.out" | sed '1d'
    else echo; echo "Not measured ($(awk -F'\t' '$1 == "bench-gemm" { print $2 ": " $4 }' "$W/steps"))."; fi
    echo
    echo "### Flow-GRPO epoch, shapes-m: cuda vs opt on 2 cores"
    echo
    if passed epoch-opt && passed epoch-cuda; then
        read -r n_o med_o min_o max_o < <(epoch_secs "$W/m-opt" | stats)
        read -r n_d med_d min_d max_d < <(epoch_secs "$W/m-dev" | stats)
        echo "\`flowrl train ${EP[*]}\` from a 1-step shapes-m pretrain (\`--preset shapes-m\`), on \`--backend $DEV\`" \
            "and on \`taskset -c 0,1 ... --backend opt --threads 2\`, one after the other on this machine; seconds per epoch" \
            "(metrics.jsonl), the first epoch of each run not counted. The two runs' audit logs:" \
            "$(passed epoch-audit && grep -m1 '^identical' "$W/epoch-audit.out" || echo '**not identical** (see the checks)')."
        echo
        echo "| backend | epochs timed | epoch s (median) | min | max | speed-up over opt 2 cores |"
        echo "|---|---|---|---|---|---|"
        printf '| opt, 2 cores (taskset) | %s | %s | %s | %s | 1.00x |\n' "$n_o" "$med_o" "$min_o" "$max_o"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$DEV" "$n_d" "$med_d" "$min_d" "$max_d" \
            "$(awk -v o="$med_o" -v d="$med_d" 'BEGIN { printf (d > 0 ? "%.2fx" : "-"), o / d }')"
    else
        echo "Not measured ($(awk -F'\t' '$1 ~ /^epoch-/ && $2 != "PASS" { printf "%s%s: %s %s", s, $1, $2, $4; s = "; " }' "$W/steps"))."
    fi
    echo "<!-- gpu_check end -->"
} >"$REPORT"
say "$((T_END - T_START)) s; report $REPORT, log $LOG"
[ "$n_fail" = 0 ] && say "no step failed" || say "$n_fail step(s) FAILED; first: $first_fail"
[ "$n_fail" = 0 ]
