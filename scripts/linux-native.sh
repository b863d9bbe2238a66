#!/usr/bin/env bash
# What Linux itself counts for a program, to set beside `vmsim run`: runs PROG three
# times in a fresh memory cgroup after dropping caches, with a swap file on, and prints
# per run getrusage's minflt and majflt (GNU time's %R %F) and /proc/vmstat's pswpin
# and pswpout deltas, then the medians. Needs root and the memory cgroup controller
# (v1 or v2). Leaves the machine as it found it: the group and the swap file go,
# whatever happens.
#
#   scripts/linux-native.sh [--memory-max SIZE] [--swap SIZE] -- PROG [ARGS]
#   e.g. scripts/linux-native.sh --memory-max 32M -- ./anon3
#
# SIZE as the kernel's files take it (32M, 1G). Without --memory-max the group has no
# limit. The swap file (default 512M) is made in the current folder's file system.
set -euo pipefail
limit=max
swap=512M
while [ $# -gt 0 ]; do
    case "$1" in
    --memory-max) limit=$2; shift 2 ;;
    --swap) swap=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "linux-native.sh: unknown argument \`$1\` (usage: [--memory-max SIZE] [--swap SIZE] -- PROG [ARGS])" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "linux-native.sh: name the program after --" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "linux-native.sh: needs root (memory cgroups, swapon, drop_caches)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "linux-native.sh: needs GNU time (apt-get install time)" >&2; exit 2; }

name=vmsim-native-$$
if [ -d /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/$name
    mkdir "$cg"
    [ "$limit" = max ] || echo "$limit" >"$cg/memory.limit_in_bytes"
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    cg=/sys/fs/cgroup/$name
    mkdir "$cg"
    echo "$limit" >"$cg/memory.max"
else
    echo "linux-native.sh: no memory cgroup controller (v1 /sys/fs/cgroup/memory or v2 with memory)" >&2
    exit 2
fi
swapfile=$(pwd)/.vmsim-native-swap-$$
cleanup() {
    rmdir "$cg" 2>/dev/null || true
    if grep -q "^$swapfile " /proc/swaps; then swapoff "$swapfile"; fi
    rm -f "$swapfile"
}
trap cleanup EXIT
if [ "$swap" != 0 ]; then
    fallocate -l "$swap" "$swapfile" 2>/dev/null || dd if=/dev/zero of="$swapfile" bs=1M count=$(( $(numfmt --from=iec "$swap") >> 20 )) status=none
    chmod 600 "$swapfile"
    mkswap -q "$swapfile" >/dev/null
    swapon "$swapfile"
fi

vm() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
printf 'run\tminflt\tmajflt\tpswpin\tpswpout\n'
results=()
for i in 1 2 3; do
    sync
    echo 3 >/proc/sys/vm/drop_caches
    in0=$(vm pswpin); out0=$(vm pswpout)
    # The shell joins the group, then becomes time, which runs the program in it.
    r=$(bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec /usr/bin/time -f "%R %F" "$@" 2>&1 >/dev/null' _ "$cg" "$@" | tail -n 1)
    in1=$(vm pswpin); out1=$(vm pswpout)
    line="$(echo "$r" | awk '{print $1 "\t" $2}')	$((in1 - in0))	$((out1 - out0))"
    printf '%d\t%s\n' "$i" "$line"
    results+=("$line")
done
printf '%s\n' "${results[@]}" | awk -F'\t' '
    { for (c = 1; c <= 4; c++) v[c, NR] = $c }
    END {
        printf "median"
        for (c = 1; c <= 4; c++) {
            a = v[c, 1]; b = v[c, 2]; d = v[c, 3]
            m = (a <= b) ? ((b <= d) ? b : ((a <= d) ? d : a)) : ((a <= d) ? a : ((b <= d) ? d : b))
            printf "\t%s", m
        }
        printf "\n"
    }'
