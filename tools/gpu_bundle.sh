#!/usr/bin/env bash
# make gpu-bundle: builds, on this machine, what tools/gpu_check.sh needs on a bare GPU machine
# and puts it in one folder (default gpu-bundle/, git-ignored) of at most 64 MiB, the device
# tool's limit for what travels with a run (DEVELOPERS.md "The GPU check"):
#   bin/    flowrl, bench_cuda_gemm, cuda_selfcheck, check_flowrl (built in build-bundle/)
#   lib/    the shared libraries they link that are not part of every glibc system
#   golden/ the golden set of this commit (MANIFEST and the cases)
#   gpu_check.sh, mock_reward.py (tests/reward_progs: a reward program in plain Python) and
#   BUNDLE (what was built from what, and what the GPU machine must have)
# The bundle's build differs from `make` in three ways: no OpenBLAS / oneDNN (--fast on opt is
# not part of the check, and the two libraries alone are 76 MB); libraries that exist as static
# archives here (libarchive, libpng, xxHash, zlib, ...) are linked in; and the binaries look for
# the others in ../lib (RPATH $ORIGIN/../lib), so nothing needs LD_LIBRARY_PATH. The CUDA
# runtime is linked statically by every build; cuBLAS (~570 MB) is not carried: --fast on cuda
# loads the GPU machine's own (gpu/cuda_fast.cu), and the check reports "cuBLAS not available on
# this machine" where there is none.
# Environment: BUNDLE (gpu-bundle), BUNDLE_BUILD (build-bundle), MAKE (make), JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${BUNDLE:-gpu-bundle}
BB=${BUNDLE_BUILD:-build-bundle}
MAKE=${MAKE:-make}
JOBS=${JOBS:-2}
LIMIT=$((64 * 1024 * 1024))
die() { echo "gpu_bundle: $*" >&2; exit 1; }

grep -q '^HAVE_CUDA = 1' config.mk 2>/dev/null || die "the cuda backend is not configured (./configure found no nvcc): nothing to bundle"
cc=$(sed -n 's/^CC = //p' config.mk)

# The libraries of the build: each -lNAME whose libNAME.a the compiler finds is linked
# statically, with the libraries pkg-config says it needs; the rest stay shared.
static=() shared=()
# (of a name listed twice the last place counts: a static library precedes what it needs)
for l in $(pkg-config --static --libs-only-l libarchive libpng libxxhash libcjson | tr ' ' '\n' | tac | awk 'NF && !s[$0]++' | tac); do
    n=${l#-l}
    [ "$n" = m ] && continue
    # libxml2 (libarchive's xar format, pulled in by its format table) stays shared: static, it
    # needs ICU, whose data (libicudata, ~30 MB) comes along either way
    if [ "$n" != xml2 ] && [ "$("$cc" -print-file-name="lib$n.a")" != "lib$n.a" ]; then
        static+=("-l$n")
    elif [ "$("$cc" -print-file-name="lib$n.so")" != "lib$n.so" ]; then
        shared+=("-l$n")
    else # no development link: the runtime library by its soname
        so=$(ldconfig -p | awk -v p="lib$n.so." '!f && index($1, p) == 1 { print $1; f = 1 }')
        [ -n "$so" ] || die "lib$n (needed by libarchive) is not installed"
        shared+=("-l:$so")
    fi
done
# a static library that needs a shared one must come first: static ones, then shared ones
libs="-Wl,-Bstatic ${static[*]} -Wl,-Bdynamic ${shared[*]}"
echo "gpu_bundle: static: ${static[*]:-none}; shared: ${shared[*]:-none}"

mkdir -p "$BB"
t0=$(date +%s)
"$MAKE" -j"$JOBS" --no-print-directory BUILD="$BB" HAVE_OPENBLAS=0 HAVE_ONEDNN=0 HAVE_MPI=0 \
    CFLAGS='-DFR_HAVE_OPENBLAS=0 -DFR_HAVE_ONEDNN=0' CFG_LIBS="$libs" \
    LDFLAGS='-Wl,--disable-new-dtags,-rpath,\$$ORIGIN/../lib' \
    "$BB/flowrl" "$BB/bench_cuda_gemm" "$BB/cuda_selfcheck" "$BB/check_flowrl" >"$BB/bundle.log" 2>&1 ||
    { tail -n 30 "$BB/bundle.log" >&2; die "the bundle build failed (log: $BB/bundle.log)"; }
echo "gpu_bundle: built in $BB/ in $(($(date +%s) - t0)) s (log: $BB/bundle.log)"

rm -rf "$BUNDLE.tmp"
mkdir -p "$BUNDLE.tmp/bin" "$BUNDLE.tmp/lib"
for b in flowrl bench_cuda_gemm cuda_selfcheck check_flowrl; do
    cp "$BB/$b" "$BUNDLE.tmp/bin/"
    strip --strip-debug "$BUNDLE.tmp/bin/$b"
done
mkdir "$BUNDLE.tmp/golden"
cp golden/MANIFEST golden/*.safetensors "$BUNDLE.tmp/golden/"
cp tools/gpu_check.sh tests/reward_progs/mock_reward.py "$BUNDLE.tmp/"

# Carried: every library ldd resolves except glibc's own, the C/C++ runtimes every such system
# has, and the driver (the GPU machine's).
keep='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libgcc_s|libstdc\+\+|libcuda)\.so'
for b in "$BUNDLE.tmp"/bin/*; do
    ! ldd "$b" | grep 'not found' || die "$b: a library is missing here"
    ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
    [[ $name =~ $keep ]] && continue
    cp -L "$path" "$BUNDLE.tmp/lib/$name"
done
# the carried libraries' own dependencies must be carried or kept too
for l in "$BUNDLE.tmp"/lib/*; do
    [ -e "$l" ] || continue
    ldd "$l" | awk '$2 == "=>" { print $1 }' | while read -r dep; do
        [[ $dep =~ $keep ]] || [ -e "$BUNDLE.tmp/lib/$dep" ] || die "$l needs $dep, which is not carried"
    done
done

glibc=$(objdump -T "$BUNDLE.tmp"/bin/* | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
{
    echo "flowrl GPU-check bundle"
    echo "source:  git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
    echo "built:   $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm), $("$cc" --version | head -n 1)"
    echo "nvcc:    $("$(sed -n 's/^NVCC = //p' config.mk)" --version | sed -n 's/.*release \([0-9.]*\), \(V[0-9.]*\).*/\1 (\2)/p'), -arch=$(sed -n 's/^CUDA_ARCH = //p' config.mk)"
    echo "needs:   $glibc or newer, the NVIDIA driver (libcuda.so.1), libstdc++/libgcc_s; cuBLAS 13 for --fast (optional)"
    echo "carried: $(cd "$BUNDLE.tmp/lib" && ls | tr '\n' ' ')"
} >"$BUNDLE.tmp/BUNDLE"

size=$(du -sb "$BUNDLE.tmp" | cut -f1)
[ "$size" -le "$LIMIT" ] || die "the bundle is $size bytes, over the 64 MiB the device tool carries ($(du -sh "$BUNDLE.tmp"/* | tr '\n' ' '))"
rm -rf "$BUNDLE"
mv "$BUNDLE.tmp" "$BUNDLE"
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
printf 'gpu_bundle: %s: %.1f MiB (bin %s, lib %s); with the tracked tree (%.1f MiB) %.1f of the 64 MiB that travel\n' \
    "$BUNDLE" "$(echo "$size / 1048576" | bc -l)" "$(du -sh "$BUNDLE/bin" | cut -f1)" "$(du -sh "$BUNDLE/lib" | cut -f1)" \
    "$(echo "$tracked / 1048576" | bc -l)" "$(echo "($size + $tracked) / 1048576" | bc -l)"
cat "$BUNDLE/BUNDLE"
