#!/bin/sh
# What a build records and how flags reach it (issue 16, items 3-5), on core/buildinfo.c
# alone (BUILD/build_probe, three objects) in its own build directory:
#   - the user's CFLAGS come before the contract flags: CFLAGS='-ffp-contract=fast
#     -ffast-math' (with FMA instructions on) still passes the run-time self-test;
#   - the record names the compiler make used, the target, and the flags with the user's;
#   - changing OPT or CFLAGS rebuilds the objects (a flags stamp), and nothing more after.
# Usage: CC=... tests/check_build.sh BUILD_DIR   (CC: the compiler make uses)
set -u
cd "$(dirname "$0")/.." || exit 2
B=${1:?usage: tests/check_build.sh BUILD_DIR}
MAKE=${MAKE:-make}
unset MAKEFLAGS MFLAGS # a make of its own (make check's jobserver is not passed down)
cc=${CC:-cc}
fail() { echo "check_build: FAIL: $*" >&2; exit 1; }

# FMA instructions available to the compiler: x86 needs -mfma, AArch64 always has them.
case "$(uname -m)" in x86_64 | i?86) fma=-mfma ;; *) fma= ;; esac
user="$fma -ffp-contract=fast -ffast-math"
$MAKE -s --no-print-directory CC="$cc" BUILD="$B" CFLAGS="$user" "$B/build_probe" >/dev/null || fail "building $B/build_probe"
out=$("$B/build_probe") || fail "with CFLAGS='$user' the contract self-test fails: $out"
flags=$(printf '%s\n' "$out" | sed -n 's/^flags //p')
case "$flags" in *"-ffp-contract=fast -ffast-math"*"-ffp-contract=off -fno-fast-math"*) ;;
*) fail "the recorded flags lack the user's CFLAGS before the contract flags: '$flags'" ;; esac
want=gcc
$cc -dM -E -x c /dev/null 2>/dev/null | grep -q __clang__ && want=clang
printf '%s\n' "$out" | grep -q "^compiler $want [0-9]" || fail "compiler is $cc ($want), the record says: $(echo "$out" | head -n 1)"
arch=$(uname -m)
printf '%s\n' "$out" | grep -qx "target $arch" || fail "target: want $arch, the record says: $(echo "$out" | sed -n 2p)"

# A flags change rebuilds; the same flags again rebuild nothing.
log=$($MAKE --no-print-directory CC="$cc" BUILD="$B" OPT=-O1 CFLAGS="$user" "$B/build_probe" 2>&1) || fail "rebuild with OPT=-O1: $log"
printf '%s\n' "$log" | grep -q 'buildinfo\.c' || fail "OPT=-O1 did not recompile core/buildinfo.c: $log"
"$B/build_probe" | grep -q '^flags .* -O1 ' || fail "after OPT=-O1 the record says: $("$B/build_probe" | sed -n 3p)"
$MAKE -q --no-print-directory CC="$cc" BUILD="$B" OPT=-O1 CFLAGS="$user" "$B/build_probe" ||
    fail "the same flags twice: the second make wants to rebuild"
echo "check_build: contract flags after CFLAGS, record ($want, $arch, user flags), flags stamp: ok"
