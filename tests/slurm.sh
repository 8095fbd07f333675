#!/bin/bash
# The cluster path through a real Slurm (Debian's slurm-wlm 22.05 and munge): installs them if
# missing (root), starts munged, slurmctld and slurmd for a one-node cluster on localhost from
# a slurm.conf written here, submits a tiny experiment as a 4-task job array with
# scripts/slurm/submit.sh (and its merge job, afterok on the array), waits with a bound, and
# checks that the merged results equal a single-process run of the same config: every report
# table (CSV) and every per-sample score, bit for bit. Then it stops the daemons it started, by
# pid. A daemon that cannot start fails the test with its log; nothing is skipped. Run by
# `make test-slurm` (and .ci/run); needs root. Prints TAP lines and "slurm: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
pmi=$(readlink -f "${PMI_BIN:-./pmi}")
pass=0; fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
notok() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { if [ "$1" = 0 ]; then ok "$2"; else notok "$2"; return 1; fi; }
finish() { echo "slurm: $pass passed, $fail failed"; [ "$fail" = 0 ] && [ "$pass" -gt 0 ]; exit $?; }
[ "$(id -u)" = 0 ] || { notok "needs root (to install and start munged, slurmctld, slurmd)"; finish; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/tmp/slurm-apt.log 2>&1 \
    || { notok "apt-get install slurm-wlm munge"; sed 's/^/#   /' /tmp/slurm-apt.log | tail -20; finish; }
fi
t=$(mktemp -d /tmp/pmi-slurm.XXXXXX)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
}
trap 'stop; rm -rf "$t"' EXIT
dump() { for f in "$@"; do echo "# --- $f"; tail -30 "$f" 2>/dev/null | sed 's/^/#   /'; done; }

# ---- munge: its own key, socket and files under $t -----------------------------------------
mkdir -p "$t/munge" "$t/state" "$t/spool" && chmod 700 "$t/munge"
dd if=/dev/urandom of="$t/munge/munge.key" bs=1024 count=1 2>/dev/null && chmod 600 "$t/munge/munge.key"
munged --foreground --force --key-file="$t/munge/munge.key" --socket="$t/munge/munge.socket" \
  --pid-file="$t/munge/munged.pid" --log-file="$t/munge/munged.log" --seed-file="$t/munge/munged.seed" \
  >"$t/munge/stdout" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$t/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$t/munge/munge.socket" ]; check $? "munged started" || true
[ -S "$t/munge/munge.socket" ] || { dump "$t/munge/munged.log" "$t/munge/stdout"; finish; }

# ---- a one-node cluster on this host --------------------------------------------------------
host=$(hostname -s); cpus=$(nproc)
cat >"$t/slurm.conf" <<EOF
ClusterName=pmitest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$t/munge/munge.socket
StateSaveLocation=$t/state
SlurmdSpoolDir=$t/spool
SlurmctldPidFile=$t/slurmctld.pid
SlurmdPidFile=$t/slurmd.pid
SlurmctldLogFile=$t/slurmctld.log
SlurmdLogFile=$t/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=pmi Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$t/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$t/slurmctld.stdout" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$t/slurmd.stdout" 2>&1 &
pids+=($!)
up=1
for _ in $(seq 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  case $state in idle*|mix*|alloc*) up=0; break ;; esac
  sleep 0.5
done
check $up "slurmctld and slurmd up, node $host idle (state '${state:-none}')"
[ "$up" = 0 ] || { dump "$t/slurmctld.log" "$t/slurmctld.stdout" "$t/slurmd.log" "$t/slurmd.stdout"; finish; }

# ---- a tiny experiment: 2 sweep points x 2 seeds = 4 groups of 5 jobs ------------------------
mkdir -p "$t/work"
cat >"$t/work/tiny.ini" <<EOF
[experiment]
name = slurm-tiny
seeds = 2
device = cpu
output = $t/work/array
[data]
dataset = synthetic
n_train = 200
n_attacker = 100
n_test = 100
normalize = unit
[pool]
N = 4
m = 10, 20
[model]
arch = mlp
width = 32
[train]
optimizer = adam
lr = 0.002
momentum = 0
epochs = 5
batch_size = 32
[pmi]
permutations = 199
independent = 1
indep_arch = mlp
[attack.prune]
type = prune
sparsity = 0.5
EOF
cd "$t/work"
out=$(PMI_BIN=$pmi bash "$OLDPWD/scripts/slurm/submit.sh" --tasks 4 --gpus-per-task 0 --cpus-per-task 1 tiny.ini 2>"$t/submit.err")
rc=$?
cd "$OLDPWD"
array=$(echo "$out" | awk '{print $2}'); merge=$(echo "$out" | awk '{print $4}')
[ "$rc" = 0 ] && [ -n "$array" ] && [ -n "$merge" ]; check $? "submit.sh submitted the array and the merge ($out)"
[ -n "$merge" ] || { dump "$t/submit.err" "$t/slurmctld.log"; finish; }

# wait for both jobs to leave the queue (bounded: 10 minutes)
done_=1
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$array,$merge" -o %i 2>/dev/null)" ] && { done_=0; break; }
  sleep 1
done
check $done_ "the array and the merge job ended within 10 minutes"
state_of() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' '; }
astate=$(state_of "$array"); mstate=$(state_of "$merge")
[ "$astate" = "COMPLETED " ]; check $? "every array task COMPLETED (states: $astate)"
[ "$mstate" = "COMPLETED " ]; check $? "the merge job COMPLETED (state: $mstate)"
res=$t/work/array/slurm-tiny/results.h5
[ -f "$res" ]; check $? "the merge job wrote $res"
if [ ! -f "$res" ]; then dump "$t"/work/pmi-run-*.out "$t"/work/pmi-merge-*.out "$t/slurmctld.log" "$t/slurmd.log"; finish; fi
# every task ran its own slice: 4 jobs each (one group), on this cluster
n=0; for f in "$t"/work/pmi-run-"$array"_*.out; do cp "$f" "$t/last-task.log"; grep -q "5 jobs done (5 trained" "$f" && n=$((n + 1)); done
[ "$n" = 4 ]; check $? "4 task logs, each with one group of 5 jobs trained ($n)" || dump "$t/last-task.log"

# ---- the same config in one process -----------------------------------------------------
"$pmi" run "$t/work/tiny.ini" -s experiment.output="$t/work/single" >"$t/single.out" 2>"$t/single.err"
check $? "single-process run of the same config"
one=$t/work/single/slurm-tiny/results.h5
mkdir -p "$t/csv-array" "$t/csv-single"
"$pmi" report "$res" --format csv -o "$t/csv-array" >/dev/null 2>&1 && "$pmi" report "$one" --format csv -o "$t/csv-single" >/dev/null 2>&1
check $? "pmi report -f csv of both"
n=$(ls "$t/csv-single" | wc -l)
diff -r "$t/csv-array" "$t/csv-single" >"$t/csv.diff" 2>&1; rc=$?
[ "$rc" = 0 ] && [ "$n" -gt 0 ]; check $? "all $n report tables (CSV) equal"
[ "$rc" = 0 ] || sed 's/^/#   /' "$t/csv.diff" | head -20
/usr/bin/python3 - "$res" "$one" >"$t/h5.out" 2>&1 <<'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ja, jb = sorted(a["jobs"]), sorted(b["jobs"])
assert ja == jb and len(ja) == 20, (len(ja), len(jb))
n = 0
def cmp(name, obj):
    global n
    if isinstance(obj, h5py.Dataset) and name.endswith("sample_scores"):
        other = b["jobs"][name]
        assert obj.shape == other.shape and np.array_equal(obj[()], other[()], equal_nan=True), name
        n += 1
a["jobs"].visititems(cmp)
assert n > 0
print(f"{n} per-sample score arrays equal over {len(ja)} jobs")
EOF
rc=$?
check $rc "per-sample scores identical: $(tail -1 "$t/h5.out")"
[ "$rc" = 0 ] || sed 's/^/#   /' "$t/h5.out"
finish
