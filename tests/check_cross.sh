#!/bin/sh
# make check's architecture and compiler legs (issue 16; README "What make check proves"):
#   aarch64  cross-built with aarch64-linux-gnu-gcc (./configure --host=aarch64-linux-gnu), run
#            under plain qemu-aarch64 (no -L: the arm64 libc of libc6:arm64 is the loader's; with
#            the cross package's -L tree pthread_create hangs): flowrl info (gcc, aarch64, the
#            neon path), the golden suite on ref, opt (NEON, 3 threads) and opt's portable path,
#            the opt suite of the Check runner (NEON against ref over op x shape), and a short
#            pretrain + Flow-GRPO run whose checkpoint and audit.log equal the x86 run's.
#   clang    the host build with clang (./configure --cc=clang --without-cuda): no warning, the
#            golden suite on ref, opt and cuda-emu, the same short run equal to gcc's, and
#            tests/check_build.sh with clang.
#   configure  cross options without building: a compiler of several words
#            (--cc="clang --target=aarch64-linux-gnu"), and a host .pc in a cross build named
#            as such.
# A leg whose tools are missing prints one SKIP line naming them (./configure --install-deps
# installs them all). Each leg builds in BUILD/cross/<leg>/ from a copy of the tree whose
# timestamps are kept, so a second make check rebuilds only what changed.
# Usage: tests/check_cross.sh FLOWRL BUILD   (FLOWRL: this machine's gcc build)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
F=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
W=$(mkdir -p "$2/cross" && cd "$2/cross" && pwd)
unset MAKEFLAGS MFLAGS MAKELEVEL
t0=$(date +%s)
JOBS=${CROSS_JOBS:-2}
fails=0
fail() { echo "check_cross: FAIL: $*" >&2; fails=$((fails + 1)); }
skip() { echo "check_cross: SKIP $*"; }

# sync DIR: DIR/src = the tree (tracked and untracked-but-not-ignored files), mtimes kept;
# files gone from the tree are removed from the copy.
sync() {
    mkdir -p "$1/src"
    if [ -d "$SRC/.git" ] || [ -f "$SRC/.git" ]; then
        (cd "$SRC" && git ls-files -co --exclude-standard) | grep -v -x -e config.mk -e config.h | sort >"$1/files"
    else
        (cd "$SRC" && find . -type f ! -path './build*' ! -name config.mk ! -name config.h | sed 's|^\./||') | sort >"$1/files"
    fi
    (cd "$SRC" && tar -cf - -T "$1/files") | (cd "$1/src" && tar -xf -) || return 1
    (cd "$1/src" && find . -type f ! -path './build/*' ! -name config.mk ! -name config.h | sed 's|^\./||' | sort) |
        comm -23 - "$1/files" | (cd "$1/src" && xargs -r rm -f)
}

# configure_once DIR ARGS...: configure in DIR/src when it has no config.mk or configure changed
configure_once() {
    d=$1
    shift
    if [ ! -f "$d/src/config.mk" ] || [ "$d/src/configure" -nt "$d/src/config.mk" ] ||
        [ "$(sed -n 1p "$d/src/config.mk")" != "# written by ./configure $* -- edit by re-running configure" ]; then
        (cd "$d/src" && ./configure "$@") >"$d/configure.log" 2>&1
    fi
}

T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT

# short_run DIR FLOWRL...: a tiny gmm2d base and two Flow-GRPO epochs on opt at 2 threads
# (FLOWRL... is the command: the binary, or qemu-aarch64 and the binary)
short_run() {
    dir=$1
    shift
    mkdir -p "$dir"
    "$@" pretrain --task gmm2d --out "$dir/base.safetensors" --max-train-steps 20 --hidden 16 --ffn 32 --blocks 1 \
        --backend opt --threads 2 >"$dir/pretrain.log" 2>&1 || return 1
    "$@" train --algo flow-grpo --base "$dir/base.safetensors" --task gmm2d --prompts-per-epoch 2 --group-size 4 \
        --num-batches 2 --num-steps 4 --epochs 2 --eval-n 0 --seed 7 --backend opt --threads 2 --out "$dir/run" \
        >"$dir/train.log" 2>&1
}

# same_run A B LABEL: B's base is A's byte for byte and B's audit.log has A's records
same_run() {
    cmp -s "$1/base.safetensors" "$2/base.safetensors" || fail "$3: the pretrained checkpoint differs from the x86 gcc one"
    out=$("$F" audit "$1/run/audit.log" "$2/run/audit.log" 2>&1)
    n=$(grep -c '^[{]' "$1/run/metrics.jsonl")
    echo "$out" | grep -q "^identical through step $n " ||
        fail "$3: audit.log differs from the x86 gcc run: $(echo "$out" | grep -v '^note' | head -n 3 | tr '\n' ' ')"
}

short_run "$T/x86" "$F" || { fail "the x86 short run: $(tail -n 3 "$T/x86/train.log")"; exit 1; }

# ---- aarch64 -------------------------------------------------------------------------------
A=$W/aarch64
missing=""
[ "$(uname -m)" = x86_64 ] || missing="an x86_64 machine (this is $(uname -m): its own make check is the native leg)"
for t in aarch64-linux-gnu-gcc qemu-aarch64; do command -v $t >/dev/null 2>&1 || missing="$missing $t"; done
if [ -n "$missing" ]; then
    skip "aarch64 leg: missing$missing (./configure --install-deps installs gcc-aarch64-linux-gnu, qemu-user, the :arm64 dev packages)"
elif ! sync "$A"; then
    fail "aarch64: copying the tree to $A/src"
elif ! configure_once "$A" --host=aarch64-linux-gnu; then
    skip "aarch64 leg: ./configure --host=aarch64-linux-gnu failed (the :arm64 dev packages? ./configure --install-deps): $(grep '✗' "$A/configure.log" | head -n 3 | tr '\n' ' ')"
elif ! (cd "$A/src" && make -j"$JOBS" all build/check_flowrl) >"$A/build.log" 2>&1; then
    fail "aarch64 build: $(grep -m 3 -E 'error|Error' "$A/build.log" | tr '\n' ' ')"
else
    Q="qemu-aarch64 $A/src/build/flowrl"
    info=$($Q info 2>&1)
    for want in "compiler:    gcc [0-9.]*, for aarch64" "opt path:    neon" "fp contract: ok"; do
        echo "$info" | grep -q "^$want" || fail "aarch64 flowrl info lacks '$want': $(echo "$info" | head -n 8 | tr '\n' ' ')"
    done
    for args in "--backend ref" "--backend opt --threads 3"; do
        out=$($Q golden check $args 2>&1) || fail "aarch64 golden check $args: $(echo "$out" | grep -E '^FAIL|FAIL,' | head -n 3 | tr '\n' ' ')"
    done
    out=$(FLOWRL_OPT_NO_SIMD=1 $Q golden check --backend opt --threads 2 2>&1) ||
        fail "aarch64 golden check --backend opt (portable path): $(echo "$out" | grep '^FAIL' | head -n 3 | tr '\n' ' ')"
    out=$(cd "$A/src" && FLOWRL_BIN="$A/src/build/flowrl" FLOWRL_SRC="$A/src" CK_RUN_SUITE=opt qemu-aarch64 build/check_flowrl 2>&1)
    echo "$out" | grep -q '^100%: Checks: [1-9][0-9]*, Failures: 0, Errors: 0' ||
        fail "aarch64 Check suite opt: $(echo "$out" | grep -v '^Running' | head -n 5 | tr '\n' ' ')"
    if short_run "$T/aarch64" qemu-aarch64 "$A/src/build/flowrl"; then
        same_run "$T/x86" "$T/aarch64" "aarch64 (qemu)"
    else
        fail "aarch64 short run: $(tail -n 3 "$T/aarch64/train.log")"
    fi
    [ $fails = 0 ] && echo "check_cross: aarch64 (gcc, qemu-aarch64): info, golden ref/opt(neon, 3 threads)/opt(portable), Check suite opt, short run = x86 (checkpoint, audit.log): ok"
fi

# ---- clang -----------------------------------------------------------------------------------
C=$W/clang
f0=$fails
if ! command -v clang >/dev/null 2>&1; then
    skip "clang leg: clang not found (./configure --install-deps installs it)"
elif ! sync "$C"; then
    fail "clang: copying the tree to $C/src"
elif ! configure_once "$C" --cc=clang --without-cuda; then
    fail "clang: ./configure --cc=clang failed: $(grep '✗' "$C/configure.log" | head -n 3 | tr '\n' ' ')"
elif ! (cd "$C/src" && make -j"$JOBS" all) >"$C/build.log" 2>&1; then
    fail "clang build: $(grep -m 3 -E 'error|Error' "$C/build.log" | tr '\n' ' ')"
else
    nw=$(grep -c 'warning:' "$C/build.log")
    [ "$nw" = 0 ] || fail "clang build: $nw warnings, e.g. $(grep -m 1 'warning:' "$C/build.log")"
    K=$C/src/build/flowrl
    $K info | grep -q '^compiler:    clang [0-9]' || fail "clang flowrl info: $($K info | sed -n 3p)"
    for args in "--backend ref" "--backend opt --threads 3" "--backend cuda-emu"; do
        out=$($K golden check $args 2>&1) || fail "clang golden check $args: $(echo "$out" | grep -E '^FAIL' | head -n 3 | tr '\n' ' ')"
    done
    if short_run "$T/clang" "$K"; then same_run "$T/x86" "$T/clang" clang; else fail "clang short run: $(tail -n 3 "$T/clang/train.log")"; fi
    (cd "$C/src" && CC=clang sh tests/check_build.sh build/probe) >"$C/check_build.log" 2>&1 ||
        fail "clang: $(tail -n 1 "$C/check_build.log")"
    [ $fails = "$f0" ] && echo "check_cross: clang $(clang -dumpversion): no warnings, golden ref/opt/cuda-emu, short run = gcc (checkpoint, audit.log), check_build: ok"
fi

# ---- configure for cross builds (no build) -------------------------------------------------
if command -v clang >/dev/null 2>&1 && [ -d /usr/lib/aarch64-linux-gnu/pkgconfig ]; then
    P=$W/configure
    sync "$P" || fail "configure: copying the tree"
    (cd "$P/src" && ./configure --cc="clang --target=aarch64-linux-gnu" --host=aarch64-linux-gnu) >"$P/multi.log" 2>&1 &&
        grep -qx 'CC = clang --target=aarch64-linux-gnu' "$P/src/config.mk" ||
        fail "configure --cc='clang --target=aarch64-linux-gnu': $(grep -E '✗|configure:' "$P/multi.log" | head -n 2 | tr '\n' ' ')"
    if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && pkg-config --exists openblas 2>/dev/null; then
        (cd "$P/src" && PKG_CONFIG=pkg-config ./configure --cc=aarch64-linux-gnu-gcc) >"$P/hostpc.log" 2>&1
        grep -q 'OpenBLAS .*found openblas.pc' "$P/hostpc.log" ||
            fail "configure, cross with the host's openblas.pc: $(grep OpenBLAS "$P/hostpc.log")"
    fi
    [ $fails = 0 ] && echo "check_cross: configure: --cc of several words, a host .pc named in a cross build: ok"
else
    skip "configure leg: needs clang and the arm64 pkg-config files (./configure --install-deps)"
fi

[ $fails = 0 ] || { echo "check_cross: $fails failure(s)" >&2; exit 1; }
echo "check_cross: $(($(date +%s) - t0)) s (load average $(cut -d' ' -f1 /proc/loadavg 2>/dev/null))"
