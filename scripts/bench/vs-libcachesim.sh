#!/usr/bin/env bash
# vmsim beside libCacheSim, as a user sees them: the whole process of each on the same
# oracleGeneral file, in alternating pairs, medians of RUNS pairs, and the ratio of
# vmsim's time to libCacheSim's. Miss counts must be equal: libCacheSim's exact counts
# come from its library (scripts/bench/lcs-misses.c), since `cachesim` prints a
# four-place ratio only.
#
#   scripts/bench/vs-libcachesim.sh LIBCACHESIM_SRC [VMSIM]
#
# LIBCACHESIM_SRC is a checkout of https://github.com/1a1a11a/libCacheSim (built here in
# LIBCACHESIM_SRC/_build when it has no build yet; needs cmake, libglib2.0-dev and
# libzstd-dev). VMSIM defaults to target/release/vmsim.
#
# Environment: TRACE (an oracleGeneral file of your own to run on instead of the
# generated one, such as libCacheSim's data/cloudPhysicsIO.oracleGeneral.bin; it is
# only read), REFS (10000000), PAGES (1000000), FRAMES (100000), RUNS (3),
# POLICIES ("lru fifo fifo-reinsertion:clock arc opt:belady", vmsim:libCacheSim names),
# MAX (0.10: the largest ratio allowed), FULL=1 also times `vmsim run` (TLBs, page
# tables, faults, swap) on the file against libCacheSim's LRU, MAX_FULL (1.0).
# Exits 1 if misses differ or a ratio is above its maximum.
set -euo pipefail
src=${1:?usage: $0 LIBCACHESIM_SRC [VMSIM]}
here=$(cd "$(dirname "$0")" && pwd)
vmsim=$(realpath "${2:-$here/../../target/release/vmsim}")
refs=${REFS:-10000000} pages=${PAGES:-1000000} frames=${FRAMES:-100000} runs=${RUNS:-3}
policies=${POLICIES:-lru fifo fifo-reinsertion:clock arc opt:belady}
max=${MAX:-0.10} max_full=${MAX_FULL:-1.0}

build=$src/_build
if [ ! -x "$build/bin/cachesim" ] || [ ! -f "$build/liblibCacheSim.a" ]; then
    echo "building libCacheSim in $build" >&2
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    make -C "$build" -j"$(nproc)" cachesim libCacheSim >/dev/null
fi
cachesim=$build/bin/cachesim
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/zipfscan" "$here/zipfscan.c" -lm
# shellcheck disable=SC2046
gcc -O2 -o "$work/lcs-misses" "$here/lcs-misses.c" -I"$src/libCacheSim/include" \
    -I"$build/libCacheSim/include" $(pkg-config --cflags glib-2.0) "$build/liblibCacheSim.a" \
    $(pkg-config --libs glib-2.0) -lzstd -lm -lpthread -ldl
# libCacheSim's Belady wants "oracleGeneral" in the name: a file of the user's is
# reached through a link so named.
trace=$work/zipfscan.oracleGeneral.bin
if [ -n "${TRACE:-}" ]; then
    [ -f "$TRACE" ] || { echo "TRACE=$TRACE: no such file" >&2; exit 2; }
    trace=$work/given.oracleGeneral.bin
    ln -s "$(realpath "$TRACE")" "$trace"
    echo "trace: $TRACE, $(($(stat -L -c %s "$trace") / 24)) references; $frames frames; medians of $runs pairs"
else
    "$work/zipfscan" "$trace" "$refs" "$pages"
    echo "trace: $refs references over $pages pages (85% Zipf 0.9, 15% scans), $(($(stat -c %s "$trace") / 1048576)) MiB; $frames frames; medians of $runs pairs"
fi

seconds() { # wall time of "$@" (run in $work: cachesim writes a result file there)
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$work" && "$@" >/dev/null 2>"$work/err") || { cat "$work/err" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peak_kib() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

status=0
printf '%-18s %12s %12s %10s %10s %7s %12s\n' policy misses lcs-misses vmsim-s lcs-s ratio vmsim-peak
for pair in $policies; do
    ours=${pair%%:*} theirs=${pair#*:}
    [ "$theirs" = "$pair" ] && theirs=$ours
    misses=$("$vmsim" policy -p "$ours" -f "$frames" "$trace" --json | sed 's/.*"misses":\([0-9]*\).*/\1/')
    lcs=$("$work/lcs-misses" "$trace" "$theirs" "$frames" | cut -d' ' -f2)
    : >"$work/a"
    : >"$work/b"
    for _ in $(seq "$runs"); do
        seconds "$vmsim" policy -p "$ours" -f "$frames" "$trace" >>"$work/a"
        seconds "$cachesim" "$trace" oracleGeneral "$theirs" "$frames" --ignore-obj-size 1 >>"$work/b"
    done
    a=$(median <"$work/a") b=$(median <"$work/b")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
    peak=$(peak_kib "$vmsim" policy -p "$ours" -f "$frames" "$trace")
    printf '%-18s %12s %12s %10s %10s %7s %9s KiB\n' "$ours" "$misses" "$lcs" "$a" "$b" "$ratio" "$peak"
    if [ "$misses" != "$lcs" ]; then
        echo "  misses differ" >&2
        status=1
    fi
    if awk -v r="$ratio" -v m="$max" 'BEGIN { exit !(r > m) }'; then
        echo "  ratio above $max" >&2
        status=1
    fi
done

if [ "${FULL:-0}" = 1 ]; then
    # The full path: TLBs, page walks in simulated RAM, faults, two-list reclaim (run's default) and swap,
    # on the same file (pages become 4 KiB pages of one process).
    ram=$((frames * 4))KiB
    run=("$vmsim" run "$trace" --no-zero-page --ram "$ram" --swap 8GiB --json)
    : >"$work/a"
    : >"$work/b"
    for _ in $(seq "$runs"); do
        seconds "${run[@]}" >>"$work/a"
        seconds "$cachesim" "$trace" oracleGeneral lru "$frames" --ignore-obj-size 1 >>"$work/b"
    done
    a=$(median <"$work/a") b=$(median <"$work/b")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
    printf '%-18s %12s %12s %10s %10s %7s\n' "run (full path)" - - "$a" "$b" "$ratio"
    if awk -v r="$ratio" -v m="$max_full" 'BEGIN { exit !(r > m) }'; then
        echo "  full path ratio above $max_full" >&2
        status=1
    fi
fi
exit $status
