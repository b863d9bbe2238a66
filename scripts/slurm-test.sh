#!/usr/bin/env bash
# Runs docs/examples/sweep.toml as a real Slurm job array on this machine and checks
# that the merged shards are the unsharded sweep, byte for byte.
#
#   scripts/slurm-test.sh [VMSIM]     (default target/release/vmsim)
#
# It starts its own munged, slurmctld and slurmd (one node: this machine), with their
# key, sockets, state and logs in a temporary folder and ports 16817-16818, submits
# scripts/slurm/sweep.sbatch as a 3-task array (--array=0-2) and
# scripts/slurm/merge.sbatch after it (--dependency), compares, and stops the
# daemons it started and removes the folder whatever happens. Needs root and Debian's
# slurmctld, slurmd, slurm-client and munge; exits 3 saying why when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
vmsim=$(realpath "${1:-target/release/vmsim}")
grid=docs/examples/sweep.toml

skip() {
    echo "slurm test skipped: $*"
    exit 3
}
[ "$(id -u)" -eq 0 ] || skip "not root (it starts munged, slurmctld and slurmd)"
for tool in munged slurmctld slurmd sbatch squeue; do
    command -v "$tool" >/dev/null || skip "no $tool (apt-get install slurmctld slurmd slurm-client munge)"
done
[ -x "$vmsim" ] || skip "no vmsim at $vmsim"

work=$(mktemp -d /tmp/vmsim-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    local status=$?
    # Stop what this script started, by pid, newest first.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        for log in "$work"/*.log "$work"/*.out "$work"/out/*.log; do
            [ -f "$log" ] && { echo "== $log"; tail -n 20 "$log"; }
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# munge, with its own key and socket, so that a munged already running is untouched.
dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge.key"
munged --foreground --force --key-file="$work/munge.key" --socket="$work/munge.sock" \
    --pid-file="$work/munged.pid" --seed-file="$work/munge.seed" \
    --log-file="$work/munged.log" >"$work/munged.out" 2>&1 &
pids+=($!)

host=$(hostname -s)
# The node as slurmd sees it (CPUs, sockets, memory), so that it registers as configured.
node=$(slurmd -C | head -n 1 | sed 's/ UpTime=.*//')
mkdir -p "$work/state" "$work/spool" "$work/out"
cat >"$work/slurm.conf" <<EOF
ClusterName=vmsimtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$work/munge.sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=vmsim Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
for _ in $(seq 50); do
    [ -S "$work/munge.sock" ] && break
    sleep 0.1
done
slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/slurmd.out" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        ready=1
        break
    fi
    sleep 0.5
done
[ -n "$ready" ] || { echo "the node did not come up"; sinfo -N -l || true; exit 1; }

export VMSIM=$vmsim
started=$(date +%s)
array=$(sbatch --parsable --chdir="$work/out" scripts/slurm/sweep.sbatch "$root/$grid" "$work/out")
echo "submitted the array: job $array"
# afterany, not the docs' afterok: a failed task then fails the merge (its rows are
# missing) at once, instead of leaving the merge pending.
timeout 120 sbatch --wait --parsable --chdir="$work/out" --dependency="afterany:$array" \
    scripts/slurm/merge.sbatch "$root/$grid" "$work/out" >/dev/null
echo "array and merge done in $(($(date +%s) - started)) s"
ls "$work/out"
for k in 0 1 2; do
    [ -s "$work/out/shard-$k.csv" ] || { echo "task $k wrote no rows"; exit 1; }
done
"$vmsim" sweep --config "$grid" --csv >"$work/whole.csv"
if cmp "$work/whole.csv" "$work/out/sweep.csv"; then
    echo "slurm test passed: 3 array tasks merged = the unsharded sweep ($(($(wc -l <"$work/whole.csv") - 1)) runs)"
else
    diff "$work/whole.csv" "$work/out/sweep.csv" | head -n 20
    exit 1
fi
