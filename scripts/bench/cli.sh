#!/usr/bin/env bash
# The speed a user sees: whole `vmsim` commands on files, timed by hyperfine (Debian's
# hyperfine package), beside the in-process benches of `cargo bench`. Prints hyperfine's
# table (mean, min and max of RUNS runs) and each command's rate in references or
# accesses per second. Writes nothing outside a temporary directory.
#
#   scripts/bench/cli.sh [VMSIM]          (VMSIM: target/release/vmsim)
#
# Environment: REFS (10000000) and PAGES (1000000) size the oracleGeneral trace
# (scripts/bench/zipfscan.c), FRAMES (100000), RUNS (3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vmsim=$(realpath "${1:-$here/../../target/release/vmsim}")
refs=${REFS:-10000000} pages=${PAGES:-1000000} frames=${FRAMES:-100000} runs=${RUNS:-3}
command -v hyperfine >/dev/null || { echo "cli.sh: needs hyperfine (apt install hyperfine)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/zipfscan" "$here/zipfscan.c" -lm
trace=$work/zipfscan.oracleGeneral.bin
"$work/zipfscan" "$trace" "$refs" "$pages"
replay=$here/../../docs/examples/shootdown.vmb
ram=$((frames * 4))KiB

# name|accesses or references|command
benches=(
    "policy lru|$refs|$vmsim policy -p lru -f $frames $trace"
    "policy arc|$refs|$vmsim policy -p arc -f $frames $trace"
    "policy opt|$refs|$vmsim policy -p opt -f $frames $trace"
    "policy lru,fifo,clock,arc x 4 sizes|$((refs * 16))|$vmsim policy -p lru,fifo,clock,arc -f 25000,50000,100000,200000 $trace"
    "mrc lru (exact, 20 sizes)|$refs|$vmsim mrc -p lru $trace"
    "run oracleGeneral (full path, swap)|$refs|$vmsim run $trace --no-zero-page --ram $ram --swap 8GiB --json"
    "run -w zipf 4GiB (swap)|10000000|$vmsim run -w zipf --footprint 4GiB --ram 400MiB --swap 8GiB -n 10000000 --json"
    "run -w seq 128KiB (all TLB hits)|100000000|$vmsim run -w seq --footprint 128KiB -n 100000000 --json"
    "replay docs/examples/shootdown.vmb|-|$vmsim run $replay --json"
)
args=()
for b in "${benches[@]}"; do
    IFS='|' read -r name _ cmd <<<"$b"
    args+=(-n "$name" "$cmd")
done
hyperfine -N -w 1 -r "$runs" --export-json "$work/times.json" --style basic "${args[@]}" >&2
echo "| command | mean s | min s | max s | per second |"
echo "|---|---:|---:|---:|---:|"
i=0
for b in "${benches[@]}"; do
    IFS='|' read -r name n _ <<<"$b"
    python3 - "$work/times.json" "$i" "$name" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
n = sys.argv[4]
rate = f"{int(n) / r['mean'] / 1e6:.1f} M" if n != "-" else "-"
print(f"| `{sys.argv[3]}` | {r['mean']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {rate} |")
PY
    i=$((i + 1))
done
