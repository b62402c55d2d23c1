#!/usr/bin/env bash
# The fault trial of issue 14: SIGKILLs at random moments, corrupted checkpoints and audit
# logs, concurrent runs, bad reward programs, a full disk and bad option values (and stop
# signals, resume misuse, a relative base path, divergence), each for every algorithm,
# against build/flowrl on a tiny gmm2d model (docs/fault-trial.md). Prints a markdown table
#   | fault | runs | expected | observed | verdict |
# and exits 1 if any verdict is not "pass". Not part of `make check` (20 s on 2 idle cores,
# about a minute on a loaded machine); `make fault-trial` runs it on a temporary directory.
#
#   tools/fault_trial.sh SCRATCH_DIR [SEED]
#
# SEED (default 14) seeds bash's $RANDOM, which picks every kill moment and corrupted bit,
# so a run of the trial can be repeated. FLOWRL overrides the binary, FAULT_TRIAL_KILLS the
# number of SIGKILLs per algorithm (35), FAULT_TRIAL_ALGOS the algorithms ("flow-grpo awm").
set -u

[ $# -ge 1 ] || { echo "usage: $0 SCRATCH_DIR [SEED]" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
FLOWRL=${FLOWRL:-$SRC/build/flowrl}
MOCK="$SRC/tests/reward_progs/mock_reward.py"
KILLS=${FAULT_TRIAL_KILLS:-35}
ALGOS=${FAULT_TRIAL_ALGOS:-flow-grpo awm}
SEED=${2:-14}
RANDOM=$SEED
mkdir -p "$1" || exit 2
S=$(cd "$1" && pwd)
[ -x "$FLOWRL" ] || { echo "$0: $FLOWRL not built (make build/flowrl)" >&2; exit 2; }
# a trial stopped half-way must not leave a tmpfs mounted in the scratch dir
trap 'for m in "$S"/*/tmpfs; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done' EXIT

EPOCHS=8   # the reference length; checkpoints every epoch, the last 2 kept (defaults)
HALF=4     # the corruption cases start from a run stopped here
BASE="$S/base.safetensors"
# --reward mode: every group has spread, so every epoch updates the weights (halfplane
# leaves many groups all-0 or all-1, and an epoch without an update tests less)
TINY=(--prompts-per-epoch 2 --group-size 8 --num-steps 6 --num-batches 2 --grad-accum 1
      --clip-range 0.2 --lr 3e-3 --eval-n 0 --reward mode)

ROWS=()
FAILED=0
# row FAULT RUNS EXPECTED OBSERVED VERDICT
row() {
    ROWS+=("| $1 | $2 | $3 | $4 | $5 |")
    case $5 in pass | "not tested") ;; *) FAILED=1 ;; esac
    echo "fault_trial: $1: $5 ($4)" >&2
}

train() { "$FLOWRL" train "$@"; }
# the run's lines of flowrl's own (progress lines and a shell's "Segmentation fault" aside)
err_lines() { grep -ac '^flowrl' "$1"; }
err_line() { grep -a '^flowrl' "$1" | tail -n 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# a random fraction of a second below $1 ms, as sleep takes it
rand_sleep() { local ms=$((RANDOM * 32768 + RANDOM)); ms=$((ms % $1)); sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; }
# audit A B: exit status of `flowrl audit` (0 = identical)
audit() { "$FLOWRL" audit "$1" "$2" >"$S/audit.out" 2>&1; }
# flip bit $3 of byte $2 of file $1
flip_bit() {
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
p, off, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1)[0]; f.seek(off); f.write(bytes([b ^ (1 << bit)]))
EOF
}
# the safetensors header length of $1 (data starts at 8 + it)
st_header_len() { python3 -c 'import struct,sys; print(struct.unpack("<Q", open(sys.argv[1],"rb").read(8))[0])' "$1"; }

echo "fault_trial: scratch $S, seed $SEED, $FLOWRL" >&2
T0=$(now_ms)
"$FLOWRL" pretrain --task gmm2d --out "$BASE" --max-train-steps 200 --lr 3e-3 >"$S/pretrain.log" 2>&1 ||
    { echo "$0: pretrain failed (see $S/pretrain.log)" >&2; exit 2; }

# ---- SIGKILL at random moments, then --resume to the end --------------------------------
# Chains of up to 5 kills on one run directory: start (or resume) it, SIGKILL it after a
# random time within the reference run's length, again, then let it finish; the finished
# run must be bit-identical to the uninterrupted reference (flowrl audit exit 0).
# continue_cmd A R: in CMD, the command that resumes R, or starts it when no config.json
# was written yet (run as "${CMD[@]}" &, so that $! is flowrl itself, not a subshell)
continue_cmd() {
    if [ -e "$2/config.json" ]; then CMD=("$FLOWRL" train --resume "$2")
    else CMD=("$FLOWRL" train --algo "$1" --base "$BASE" "${TINY[@]}" --epochs "$EPOCHS" --out "$2"); fi
}
# startup_left R: R is what a SIGKILL during start-up leaves (the directory, no config.json),
# which the next start takes with --out (the start-up row)
startup_left() { [ -d "$1" ] && [ ! -e "$1/config.json" ]; }
# The state a SIGKILL during start-up leaves (seen in this trial: .lock, an empty
# checkpoints/, maybe config.json.tmp.*), made on purpose: a retry must be able to use R
# (issue 14 item 6: a run that fails before its first checkpoint leaves nothing that blocks
# a retry; SIGKILL cannot clean up, so the start must recognise it).
startup_case() {
    local a=$1 r=$S/$1/startup v=pass obs="" rc
    local -a tries=("--out" "--force --out" "--resume")
    for t in "${tries[@]}"; do
        rm -rf "$r"; mkdir -p "$r/checkpoints"; : >"$r/.lock"
        if [ "$t" = --resume ]; then train --resume "$r" >/dev/null 2>"$S/st.err"
        else
            # shellcheck disable=SC2086 # "--out --force": the flags are words
            train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs "$EPOCHS" $t "$r" >/dev/null 2>"$S/st.err"
        fi
        rc=$?
        if [ $rc -eq 0 ] && audit "$r" "$S/$a/ref"; then obs="$obs \`$t R\`: runs, identical;"
        else
            obs="$obs \`$t R\`: exit $rc: \`$(err_line "$S/st.err")\`;"
            # nothing there is a run: --out (and --force --out) must take it; --resume may not
            [ "$t" = --resume ] || v=FAIL
        fi
    done
    row "directory left by a SIGKILL during start-up: .lock + empty checkpoints/, no config.json ($a)" 3 \
        "\`--out R\` and \`--force --out R\` run and are identical (nothing there is a run); \`--resume R\` may refuse" "$obs" "$v"
}
kill_case() {
    local a=$1 span=$2 landed=0 missed=0 chains=0 ok=0 early=0 blocked=0 bad=""
    local ref=$S/$a/ref
    while [ $landed -lt "$KILLS" ]; do
        chains=$((chains + 1))
        local r=$S/$a/kill-$chains k=0
        rm -rf "$r"
        while [ $k -lt 5 ] && [ $landed -lt "$KILLS" ]; do
            startup_left "$r" && blocked=$((blocked + 1))
            continue_cmd "$a" "$r"
            "${CMD[@]}" >/dev/null 2>"$S/kill.err" &
            local pid=$!
            # within what is left of the run: its share of the reference's wall time
            local done=0 c
            for c in "$r"/checkpoints/step-*.safetensors; do
                c=${c##*/step-}; c=${c%.safetensors}
                [ "$c" = "*" ] || [ "$c" -le "$done" ] || done=$c
            done
            rand_sleep $((span * (EPOCHS - done + 1) / (EPOCHS + 1) + 1))
            kill -9 $pid 2>/dev/null
            wait $pid 2>/dev/null # no "Killed" line from bash
            local rc=$?
            if [ $rc -eq 137 ]; then
                landed=$((landed + 1)); k=$((k + 1))
                ls "$r"/checkpoints/step-*.safetensors >/dev/null 2>&1 || early=$((early + 1))
            elif [ $rc -eq 0 ]; then
                missed=$((missed + 1)); break   # it finished first: the chain is complete
            else
                bad="$bad chain $chains: exit $rc: $(err_line "$S/kill.err");"; break
            fi
        done
        startup_left "$r" && blocked=$((blocked + 1))
        continue_cmd "$a" "$r"
        "${CMD[@]}" >/dev/null 2>"$S/kill.err"
        local rc=$?
        if [ $rc -ne 0 ]; then bad="$bad chain $chains: final resume exit $rc: $(err_line "$S/kill.err");"
        elif ls "$r"/checkpoints/*.tmp.* >/dev/null 2>&1; then bad="$bad chain $chains: a temporary checkpoint file left behind;"
        elif audit "$r" "$ref"; then ok=$((ok + 1))
        else bad="$bad chain $chains: audit differs: $(head -n 3 "$S/audit.out" | tail -n 1);"
        fi
    done
    local v=pass
    [ -z "$bad" ] || v=FAIL
    row "SIGKILL at a random moment ($a)" "$landed kills in $chains runs" \
        "every resumed run identical to the uninterrupted one (audit exit 0), no temporary file left" \
        "$ok/$chains runs identical; $early kills before the first checkpoint, $blocked restarts with --out over a start-up leftover (no config.json yet); $missed runs ended before their kill${bad:+;$bad}" "$v"
}

# ---- corruptions ------------------------------------------------------------------------
# prepare A NAME: a copy of the half run, in $S/A/NAME
prepare() { rm -rf "${S:?}/$1/$2"; cp -a "$S/$1/half" "$S/$1/$2"; }
# refused A NAME WHAT NEEDLE...: resume must fail with one line containing every NEEDLE;
# then --from-step $((HALF - 1)) must finish identical to the reference. Or, where the
# damage is harmless ("valid"), the resume itself must finish identical.
corrupt_case() {
    local a=$1 what=$3 r=$S/$1/$2 from_ok=1
    shift 3
    [ "$1" = --from-step-refused ] && { from_ok=0; shift; }
    train --resume "$r" --epochs $EPOCHS >/dev/null 2>"$S/c.err"
    local rc=$? obs v=pass line
    line=$(err_line "$S/c.err")
    if [ $rc -eq 0 ]; then
        if audit "$r" "$S/$a/ref"; then obs="resumed (damage harmless) and identical"
        else obs="resumed but DIFFERS from the reference: $(head -n 3 "$S/audit.out" | tail -n 1)"; v=FAIL; fi
    else
        obs="exit $rc: \`$line\`"
        [ "$(err_lines "$S/c.err")" -eq 1 ] || { v=FAIL; obs="$obs ($(err_lines "$S/c.err") lines)"; }
        for n in "$@"; do
            case "$line" in *"$n"*) ;; *) v=FAIL; obs="$obs (does not name $n)" ;; esac
        done
        train --resume "$r" --from-step $((HALF - 1)) --epochs $EPOCHS >/dev/null 2>"$S/c.err"
        rc=$?
        if [ $from_ok -eq 0 ]; then
            # the log no longer covers step HALF - 1: no checkpoint can be continued
            if [ $rc -ne 0 ] && [ "$(err_lines "$S/c.err")" -eq 1 ]; then obs="$obs; --from-step $((HALF - 1)) refused too"
            else v=FAIL; obs="$obs; --from-step $((HALF - 1)): exit $rc"; fi
        elif [ $rc -ne 0 ]; then v=FAIL; obs="$obs; --from-step $((HALF - 1)): exit $rc: $(err_line "$S/c.err")"
        elif audit "$r" "$S/$a/ref"; then obs="$obs; --from-step $((HALF - 1)) identical"
        else v=FAIL; obs="$obs; --from-step $((HALF - 1)) DIFFERS"; fi
    fi
    local exp="resume refused in one line naming the file (and tensor), or valid and identical; --from-step $((HALF - 1)) identical"
    [ $from_ok -eq 1 ] || exp="resume refused in one line naming audit.log; --from-step $((HALF - 1)) refused too (the log lost steps 2-$HALF, which no checkpoint can restore)"
    row "$what ($a)" 1 "$exp" "$obs" "$v"
}
corruptions() {
    local a=$1 ck hl sz
    ck=checkpoints/step-$HALF.safetensors
    prepare "$a" c-data
    hl=$(st_header_len "$S/$a/c-data/$ck"); sz=$(stat -c %s "$S/$a/c-data/$ck")
    flip_bit "$S/$a/c-data/$ck" $((8 + hl + RANDOM % (sz - 8 - hl))) $((RANDOM % 8))
    corrupt_case "$a" c-data "one bit flipped in the newest checkpoint's tensor data" "step-$HALF.safetensors" "'"
    prepare "$a" c-header
    flip_bit "$S/$a/c-header/$ck" $((8 + RANDOM % hl)) $((RANDOM % 8))
    corrupt_case "$a" c-header "one bit flipped in the newest checkpoint's header" "step-$HALF.safetensors"
    prepare "$a" c-trunc
    truncate -s $((sz / 2)) "$S/$a/c-trunc/$ck"
    corrupt_case "$a" c-trunc "newest checkpoint truncated to half" "step-$HALF.safetensors"
    prepare "$a" c-audit
    sz=$(stat -c %s "$S/$a/c-audit/audit.log")
    truncate -s $((sz - 1 - RANDOM % 200)) "$S/$a/c-audit/audit.log"
    corrupt_case "$a" c-audit "audit.log torn (last line cut)" "audit.log"
    prepare "$a" c-audit2
    truncate -s $((sz / 2)) "$S/$a/c-audit2/audit.log"
    corrupt_case "$a" c-audit2 "audit.log truncated to half" --from-step-refused "audit.log"
    prepare "$a" c-delete
    rm "$S/$a/c-delete/$ck"
    corrupt_case "$a" c-delete "newest checkpoint deleted" "step-$HALF"
}

# ---- concurrency ------------------------------------------------------------------------
concurrency() {
    local a=$1 r=$S/$1/both v=pass obs rc1 rc2 loser
    prepare "$a" both
    train --resume "$r" --epochs $EPOCHS >/dev/null 2>"$S/b1.err" & local p1=$!
    train --resume "$r" --epochs $EPOCHS >/dev/null 2>"$S/b2.err" & local p2=$!
    wait $p1; rc1=$?; wait $p2; rc2=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -ne 0 ]; then loser=$S/b2.err
    elif [ $rc2 -eq 0 ] && [ $rc1 -ne 0 ]; then loser=$S/b1.err
    else loser=; v=FAIL; fi
    obs="exits $rc1, $rc2"
    if [ -n "$loser" ]; then
        obs="$obs; refused: \`$(err_line "$loser")\`"
        err_line "$loser" | grep -Eq '(pid|PID|process) [0-9]+' || { v=FAIL; obs="$obs (no PID named)"; }
    fi
    if audit "$r" "$r" && audit "$r" "$S/$a/ref"; then obs="$obs; audit R R exit 0, identical to the reference"
    else v=FAIL; obs="$obs; audit: $(head -n 3 "$S/audit.out" | tail -n 1)"; fi
    row "two \`--resume R\` at once ($a)" 2 "one runs, the other exits non-zero naming the PID; audit.log reads back" "$obs" "$v"

    r=$S/$a/both-out; v=pass; rm -rf "$r"
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs $EPOCHS --out "$r" >/dev/null 2>"$S/b1.err" & p1=$!
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs $EPOCHS --out "$r" >/dev/null 2>"$S/b2.err" & p2=$!
    wait $p1; rc1=$?; wait $p2; rc2=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -ne 0 ]; then loser=$S/b2.err
    elif [ $rc2 -eq 0 ] && [ $rc1 -ne 0 ]; then loser=$S/b1.err
    else loser=; v=FAIL; fi
    obs="exits $rc1, $rc2"
    [ -z "$loser" ] || obs="$obs; refused: \`$(err_line "$loser")\`"
    if audit "$r" "$r" && audit "$r" "$S/$a/ref"; then obs="$obs; audit R R exit 0, identical to the reference"
    else v=FAIL; obs="$obs; audit: $(head -n 3 "$S/audit.out" | tail -n 1)"; fi
    row "two \`--out R\` at once ($a)" 2 "one runs, the other is refused; audit.log reads back" "$obs" "$v"

    # --force --out R while R runs: refused by the lock, and the live run keeps its files
    r=$S/$a/force-live; v=pass; rm -rf "$r"
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs "$EPOCHS" --out "$r" >/dev/null 2>"$S/b1.err" & p1=$!
    local k=0
    while [ ! -e "$r/audit.log" ] && [ $k -lt 200 ]; do sleep 0.01; k=$((k + 1)); done
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs "$EPOCHS" --force --out "$r" >/dev/null 2>"$S/b2.err"
    rc2=$?
    wait $p1; rc1=$?
    obs="live run exit $rc1, \`--force --out\` exit $rc2: \`$(err_line "$S/b2.err")\`"
    if [ $rc1 -ne 0 ]; then v=FAIL
    elif [ $rc2 -ne 0 ]; then
        err_line "$S/b2.err" | grep -Eq 'PID [0-9]+' || { v=FAIL; obs="$obs (no PID named)"; }
    fi
    # (rc2 = 0: the live run had ended first, and --force replaced it: also a valid outcome)
    if audit "$r" "$S/$a/ref"; then obs="$obs; the run identical to the reference"
    else v=FAIL; obs="$obs; audit: $(head -n 3 "$S/audit.out" | tail -n 1)"; fi
    row "\`--force --out R\` while R runs ($a)" 2 "refused naming the PID; the live run keeps its files and is identical" "$obs" "$v"
}

# ---- bad reward programs ----------------------------------------------------------------
# Each fails the run with exit 1 and one line naming the cause; a retry reuses the run
# directory: --out R when the failure left no checkpoint, else --resume R (which must get
# as far as the reward program again, not be stopped by the lock or a half-written state).
bad_rewards() {
    local a=$1 ok=0 n=0 obs="" bad=""
    local modes=("exit" "segv 1" "nan" "inf" "wrong_batch" "short_exit" "garbage" "hang $S/hang.pid" "missing")
    for m in "${modes[@]}"; do
        local r=$S/$a/rw-${m%% *} prog="cmd:python3 $MOCK $m" rc line
        [ "$m" = missing ] && prog="cmd:$S/no-such-reward-program"
        n=$((n + 1)); rm -rf "$r"
        timeout 60 "$FLOWRL" train --algo "$a" --base "$BASE" "${TINY[@]}" --reward "$prog" --reward-timeout 1 \
            --epochs 3 --out "$r" >/dev/null 2>"$S/rw.err"
        rc=$?
        line=$(err_line "$S/rw.err")
        local why=""
        [ $rc -eq 1 ] || why="exit $rc"
        [ "$(err_lines "$S/rw.err")" -eq 1 ] || why="$why $(err_lines "$S/rw.err") lines"
        case "$line" in *"closed with step"*) why="$why 'closed with step'" ;; *reward*) ;; *) why="$why cause not named" ;; esac
        # the hung program must be gone (a zombie is: a container's PID 1 may not reap it)
        if [ "${m%% *}" = hang ] && [ -s "$S/hang.pid" ]; then
            case "$(ps -o stat= -p "$(cat "$S/hang.pid")")" in "" | Z*) ;; *) why="$why program still alive" ;; esac
        fi
        # the retry, with a working reward program
        if ls "$r"/checkpoints/step-*.safetensors >/dev/null 2>&1; then
            train --resume "$r" >/dev/null 2>"$S/rw2.err"
            case "$(err_line "$S/rw2.err")" in *"reward program"*) ;; *) why="$why retry: $(err_line "$S/rw2.err")" ;; esac
        else
            train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs 2 --out "$r" >/dev/null 2>"$S/rw2.err" ||
                why="$why retry --out: $(err_line "$S/rw2.err")"
        fi
        if [ -z "$why" ]; then ok=$((ok + 1)); obs="$obs ${m%% *}: \`${line#*\`, }\`<br>"
        else bad="$bad ${m%% *}: $why: \`$line\`<br>"; fi
    done
    local v=pass
    [ -z "$bad" ] || v=FAIL
    row "bad reward program ($a)" "$n" "exit 1, one line naming the cause (never 'closed with step N open'); the run dir reusable by a retry" \
        "$ok/$n as expected:<br>$bad$obs" "$v"
}

# ---- disk full --------------------------------------------------------------------------
# A tmpfs a little larger than two checkpoints: a run in it fills it while writing its
# third checkpoint (the last two are kept, the third is written before the oldest goes).
disk_full() {
    local a=$1 ck sz v=pass obs rc
    local mnt=$S/$a/tmpfs
    ck=$(ls "$S/$a/ref/checkpoints/" | head -n 1)
    sz=$(stat -c %s "$S/$a/ref/checkpoints/$ck")
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=$((sz * 5 / 2 + 65536)) tmpfs "$mnt" 2>"$S/mount.err"; then
        row "disk full ($a)" 0 "one clear line; the last checkpoint resumes" "not tested: mount -t tmpfs refused: $(head -n 1 "$S/mount.err")" "not tested"
        return
    fi
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs $EPOCHS --out "$mnt/r" >/dev/null 2>"$S/df.err"
    rc=$?
    local line
    line=$(err_line "$S/df.err")
    obs="exit $rc: \`${line}\`"
    [ $rc -ne 0 ] || v=FAIL
    [ "$(err_lines "$S/df.err")" -eq 1 ] || { v=FAIL; obs="$obs ($(err_lines "$S/df.err") lines)"; }
    case "$line" in *"No space left"*) ;; *) v=FAIL; obs="$obs (no ENOSPC named)" ;; esac
    # the state left behind must resume (on a disk with room) to the reference's bits
    rm -rf "$S/$a/df-moved"
    cp -a "$mnt/r" "$S/$a/df-moved"
    umount "$mnt"
    train --resume "$S/$a/df-moved" >/dev/null 2>"$S/df.err"
    rc=$?
    if [ $rc -eq 0 ] && audit "$S/$a/df-moved" "$S/$a/ref"; then obs="$obs; moved to a disk with room, --resume finishes identical"
    else v=FAIL; obs="$obs; --resume after it: exit $rc: $(err_line "$S/df.err") $(head -n 3 "$S/audit.out" | tail -n 1)"; fi
    row "disk full: tmpfs of $((sz * 5 / 2 / 1024 + 64)) KiB ($a)" 1 "one clear line (ENOSPC), no corrupt state: the last checkpoint resumes identical" "$obs" "$v"
}

# ---- bad option values ------------------------------------------------------------------
bad_options() {
    local a=$1 ok=0 n=0 obs="" bad="" rc
    for o in "--clip-range 1" "--clip-range 11" "--noise-level 0" "--lr 20" "--epochs 0"; do
        local r=$S/$a/opt-$n
        n=$((n + 1)); rm -rf "$r"
        # shellcheck disable=SC2086 # the option and its value are two words
        train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs 2 $o --out "$r" >/dev/null 2>"$S/o.err"
        rc=$?
        # valid for awm: clip_range 1 is its default (docs/algorithms/awm.md), and its
        # default sampler is ode, which has no noise (awm takes no SDE log-probability)
        if [ "$a" = awm ] && { [ "$o" = "--clip-range 1" ] || [ "$o" = "--noise-level 0" ]; }; then
            if [ $rc -eq 0 ]; then ok=$((ok + 1)); obs="$obs $o: valid for awm, runs<br>"
            else bad="$bad $o: exit $rc: \`$(err_line "$S/o.err")\`<br>"; fi
            continue
        fi
        local why=""
        [ $rc -eq 2 ] || why="exit $rc"
        [ "$(wc -l <"$S/o.err")" -eq 1 ] || why="$why $(wc -l <"$S/o.err") lines"
        [ ! -e "$r" ] || why="$why directory created"
        if [ -z "$why" ]; then ok=$((ok + 1)); obs="$obs $o: \`$(err_line "$S/o.err")\`<br>"
        else bad="$bad $o: $why: \`$(err_line "$S/o.err")\`<br>"; fi
    done
    local v=pass
    [ -z "$bad" ] || v=FAIL
    row "bad option values ($a)" "$n" "exit 2, one line, no directory created" "$ok/$n as expected:<br>$bad$obs" "$v"
}

# ---- SIGTERM / SIGINT, and other items of issue 14 -------------------------------------
# A stop signal at a random moment: exit 143 / 130 with a checkpoint (or 0 if the run ended
# first), and --resume finishes identical to the reference.
stop_signals() {
    local a=$1 span=$2 n=0 ok=0 stopped=0 bad=""
    for sig in TERM INT TERM INT TERM INT; do
        local r=$S/$a/sig-$n want=143
        [ $sig = INT ] && want=130
        n=$((n + 1)); rm -rf "$r"
        "$FLOWRL" train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs "$EPOCHS" --out "$r" >/dev/null 2>"$S/sig.err" &
        local pid=$!
        sleep 0.05 # past start-up: a signal before the handler is installed kills at once
        rand_sleep "$span"
        kill -s $sig $pid 2>/dev/null
        wait $pid
        local rc=$?
        if [ $rc -eq $want ]; then
            stopped=$((stopped + 1))
            ls "$r"/checkpoints/step-*.safetensors >/dev/null 2>&1 || { bad="$bad SIG$sig: exit $rc without a checkpoint;"; continue; }
            train --resume "$r" >/dev/null 2>"$S/sig.err" || { bad="$bad SIG$sig: resume: $(err_line "$S/sig.err");"; continue; }
        elif [ $rc -ne 0 ]; then bad="$bad SIG$sig: exit $rc (expected $want): $(err_line "$S/sig.err");"; continue
        fi
        if audit "$r" "$S/$a/ref"; then ok=$((ok + 1)); else bad="$bad SIG$sig: audit differs;"; fi
    done
    local v=pass
    [ -z "$bad" ] || v=FAIL
    row "SIGTERM / SIGINT at a random moment ($a)" "$n" "exit 143 / 130 with a checkpoint (or 0 if done first); --resume identical" \
        "$ok/$n identical; $stopped stopped by the signal, $((n - stopped)) ended first${bad:+;$bad}" "$v"
}
# --resume --epochs below the epochs done: refused (exit 2, one line), config.json unchanged.
# The base given as a relative path: a resume from another directory still finds it.
resume_misuse() {
    local a=$1 r=$S/$1/short v=pass obs rc
    prepare "$a" short
    cp "$r/config.json" "$S/config.before"
    train --resume "$r" --epochs $((HALF - 2)) >/dev/null 2>"$S/s.err"
    rc=$?
    obs="exit $rc: \`$(err_line "$S/s.err")\`"
    [ $rc -eq 2 ] && [ "$(err_lines "$S/s.err")" -eq 1 ] || v=FAIL
    cmp -s "$r/config.json" "$S/config.before" && obs="$obs; config.json unchanged" || { v=FAIL; obs="$obs; config.json REWRITTEN"; }
    row "\`--resume R --epochs $((HALF - 2))\` after $HALF epochs ($a)" 1 "exit 2, one line; config.json unchanged" "$obs" "$v"

    r=$S/$a/rel; v=pass; rm -rf "$r"
    (cd "$S" && "$FLOWRL" train --algo "$a" --base "${BASE##*/}" "${TINY[@]}" --epochs "$HALF" --out "$a/rel") >/dev/null 2>"$S/s.err"
    rc=$?
    if [ $rc -ne 0 ]; then obs="start in $S: exit $rc: $(err_line "$S/s.err")"; v=FAIL
    else
        (cd / && "$FLOWRL" train --resume "$r" --epochs "$EPOCHS") >/dev/null 2>"$S/s.err"
        rc=$?
        if [ $rc -eq 0 ] && audit "$r" "$S/$a/ref"; then obs="resumed from /, identical"
        else v=FAIL; obs="resume from /: exit $rc: $(err_line "$S/s.err") $(head -n 3 "$S/audit.out" | tail -n 1)"; fi
    fi
    row "relative \`--base\`, \`--resume\` from another directory ($a)" 1 "resume finds the base; identical" "$obs" "$v"
}
# --lr 10 --max-grad-norm 0 (issue 14 item 4): not silent. Either it runs with the KL and the
# zero-advantage warnings, or it stops in one line on non-finite values.
divergence() {
    local a=$1 r=$S/$1/diverge v=pass obs rc
    rm -rf "$r"
    train --algo "$a" --base "$BASE" "${TINY[@]}" --lr 10 --max-grad-norm 0 --epochs 12 --out "$r" >"$S/d.out" 2>&1
    rc=$?
    local kl zero
    kl=$(grep -ac '^warning: epoch [0-9]*: kl' "$S/d.out"); zero=$(grep -ac '^warning: every advantage was zero' "$S/d.out")
    if [ $rc -eq 0 ]; then
        obs="exit 0; $kl KL warning, $zero zero-advantage warning"
        [ "$kl" -eq 1 ] || [ "$zero" -eq 1 ] || v=FAIL
    else
        obs="exit $rc: \`$(grep -a '^flowrl' "$S/d.out" | tail -n 1)\`"
        grep -a '^flowrl' "$S/d.out" | tail -n 1 | grep -q 'non-finite' || v=FAIL
    fi
    row "divergence: \`--lr 10 --max-grad-norm 0\` ($a)" 1 "warned once (KL, zero advantages) or stopped naming the non-finite values" "$obs" "$v"
}

# ---- the trial --------------------------------------------------------------------------
for a in $ALGOS; do
    mkdir -p "$S/$a"
    rm -rf "$S/$a/ref" "$S/$a/half"
    t=$(now_ms)
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs $EPOCHS --out "$S/$a/ref" >"$S/$a/ref.log" 2>&1 ||
        { echo "$0: the reference run of $a failed (see $S/$a/ref.log)" >&2; exit 2; }
    span=$(($(now_ms) - t))
    train --algo "$a" --base "$BASE" "${TINY[@]}" --epochs $HALF --out "$S/$a/half" >"$S/$a/half.log" 2>&1 ||
        { echo "$0: the half run of $a failed (see $S/$a/half.log)" >&2; exit 2; }
    kill_case "$a" "$span"
    startup_case "$a"
    stop_signals "$a" "$span"
    corruptions "$a"
    concurrency "$a"
    bad_rewards "$a"
    disk_full "$a"
    bad_options "$a"
    resume_misuse "$a"
    divergence "$a"
done

echo "| fault | runs | expected | observed | verdict |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "seed $SEED, $(($(now_ms) - T0)) ms, $(uname -m), $(nproc) cores; $("$FLOWRL" --version 2>/dev/null | head -n 1)"
[ $FAILED -eq 0 ]
