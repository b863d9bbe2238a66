#!/usr/bin/env bash
# Writes what vmsim prints for a fixed set of commands into one folder, one file per
# command, so that a change meant to keep behaviour can be checked byte for byte:
#   scripts/outputs.sh VMSIM OUT_DIR   (then: diff -r before/ after/)
# The commands: every `$ vmsim` example of the docs, run --json on the example traces
# and on every synthetic workload, policy --json and mrc --json on the test traces.
set -euo pipefail
vmsim=$(realpath "$1")
out=$(realpath -m "$2")
cd "$(dirname "$0")/.."
mkdir -p "$out" target
n=0
run() {
    n=$((n + 1))
    { printf '$ vmsim %s\n' "$*"; "$vmsim" "$@" 2>&1 || echo "[status $?]"; } >"$out/$(printf %03d $n).txt"
}
for doc in docs/*.md; do
    { grep -h '^\$ vmsim ' "$doc" || true; } | sed 's/^\$ vmsim //' | while read -r line; do
        # shellcheck disable=SC2086
        n=$((n + 1)); { printf '$ vmsim %s\n' "$line"; $vmsim $line 2>&1 || echo "[status $?]"; } >"$out/$(basename "$doc" .md)-$(printf %03d $n).txt"
    done
done
for t in docs/examples/scenario.vmt; do
    run run --json "$t"
    run run --json --ram 64KiB --swap 64KiB "$t"
done
for w in server hw alloc gc seq stride uniform zipf hotcold matmul matmul-blocked pointer-chase hash fork recursion; do
    run run --json -w "$w" -n 20000
done
run run --json -w zipf --footprint 64MiB --ram 32MiB --swap 256MiB -n 200000 --policy clock
run run --json -w zipf --footprint 64MiB --ram 32MiB --swap 256MiB -n 200000 --policy two-list
run run --json -w fork --workers 2 --ram 16MiB --swap 64MiB -n 100000 --policy fifo
d=crates/vmsim/tests/data/replacement
run policy --json -p fifo,lru,clock,fifo-reinsertion,clock3,two-list,arc,random,opt -f 100,1000,5000 "$d/zipfscan_200k.txt.xz"
run policy --json -p ws,pff --window 1000 --pff-threshold 100 "$d/zipfscan_200k.oracleGeneral.bin.xz"
run mrc --json -p lru,fifo,opt "$d/zipfscan_200k.txt.xz"
run mrc --json --sample 0.1 "$d/zipfscan_200k.txt.xz"
run wss --json --window 5000 "$d/zipfscan_200k.txt.xz"
run policy -p lru,ws --window 100 -f 50 "$d/zipfscan_200k.txt.xz"
run mrc --csv -p lru,fifo --points 5 "$d/zipfscan_200k.txt.xz"
echo "wrote $(ls "$out" | wc -l) outputs to $out"
