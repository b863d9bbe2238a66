#!/usr/bin/env bash
# Recording speed as a user sees it: the wall time of `vmsim record` over the program's
# own wall time, for a CPU-bound C program (scripts/record-bench/hash.c, a hash table),
# median of three runs of each, interleaved. Prints one line per run and the ratio;
# exits 1 if the ratio is above MAX (default 30).
#
#   scripts/bench-record.sh [VMSIM] [MAX]        (VMSIM: target/release/vmsim)
#   TOOL=lackey scripts/bench-record.sh          (the valgrind fallback, for comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
vmsim=${1:-target/release/vmsim}
max=${2:-30}
tool=${TOOL:-qemu}
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/hash" scripts/record-bench/hash.c

seconds() { # runs "$@", prints its wall time in seconds
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$work/native"
: >"$work/record"
for i in $(seq "$runs"); do
    n=$(seconds "$work/hash")
    r=$(seconds "$vmsim" record --tool "$tool" -o "$work/hash.vmb" -- "$work/hash")
    printf 'run %d: native %.3f s, vmsim record --tool %s %.3f s\n' "$i" "$n" "$tool" "$r"
    echo "$n" >>"$work/native"
    echo "$r" >>"$work/record"
done
"$vmsim" trace stat "$work/hash.vmb" | grep -E '^(events|accesses|processes)' || true
n=$(median <"$work/native")
r=$(median <"$work/record")
ratio=$(awk -v r="$r" -v n="$n" 'BEGIN { printf "%.3f", r / n }')
printf 'median: native %.3f s, record %.3f s, record/native %.1f (limit %s)\n' "$n" "$r" "$ratio" "$max"
awk -v r="$ratio" -v m="$max" 'BEGIN { exit !(r <= m) }'
