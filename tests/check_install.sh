#!/bin/sh
# `make install` into a staging directory (DESTDIR, PREFIX), then, from outside the source
# tree: the installed flowrl finds its golden set (PREFIX/share/flowrl/golden) and passes
# it on ref, and a C program built with the installed flowrl.pc calls the library
# (issue 16, item 7).
set -u
cd "$(dirname "$0")/.." || exit 2
MAKE=${MAKE:-make}
unset MAKEFLAGS MFLAGS # a make of its own (make check's jobserver is not passed down)
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail() { echo "check_install: FAIL: $*" >&2; exit 1; }
prefix=/opt/flowrl
$MAKE -s --no-print-directory install DESTDIR="$d/stage" PREFIX="$prefix" >"$d/log" 2>&1 || fail "make install: $(tail -n 5 "$d/log")"
root=$d/stage$prefix
for f in bin/flowrl lib/libflowrl.a lib/libflowrl.so lib/pkgconfig/flowrl.pc include/flowrl/capi.h \
    share/flowrl/golden/MANIFEST; do
    [ -e "$root/$f" ] || fail "$prefix/$f not installed"
done
grep -qx "prefix=$prefix" "$root/lib/pkgconfig/flowrl.pc" || fail "flowrl.pc does not say prefix=$prefix"
out=$(cd "$d" && "$root/bin/flowrl" golden check --backend ref 2>&1) || fail "installed golden check: $(printf '%s\n' "$out" | tail -n 3)"
printf '%s\n' "$out" | head -n 1 | grep -q "set $root/share/flowrl/golden " || fail "not the installed set: $(printf '%s\n' "$out" | head -n 1)"
cat >"$d/use.c" <<'C'
#include <flowrl/capi.h>
#include <stdio.h>
int main(void)
{
    printf("flowrl %s, API %d\n", flowrl_version(), flowrl_api_version());
    return flowrl_api_version() == FLOWRL_API_VERSION ? 0 : 1;
}
C
pc="$PKG_CONFIG --define-variable=prefix=$root"
# shellcheck disable=SC2046
PKG_CONFIG_PATH=$root/lib/pkgconfig $CC -o "$d/use" "$d/use.c" $(PKG_CONFIG_PATH=$root/lib/pkgconfig $pc --cflags --libs flowrl) \
    -Wl,-rpath,"$root/lib" || fail "building a program with the installed flowrl.pc"
use=$("$d/use") || fail "the program linked against the installed library: $use"
echo "check_install: make install DESTDIR PREFIX=$prefix: golden set found and passed, flowrl.pc works ($use)"
