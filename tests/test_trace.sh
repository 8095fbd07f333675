#!/bin/sh
# Tests of the profiler hook (nn_profile_start/stop through `pmi bench --trace` and `pmi run
# --trace`, the first attack batch of a run) and of scripts/bench/trace-compare.py: the trace pmi
# writes is a Chrome trace that records exactly the one profiled epoch (4 steps of the small
# CNN: 8 convolutions forward and 8 backward, the same counts as Python's trace of the same epoch
# by scripts/bench/bench_ref.py --trace) or attack batch, the compare script puts two traces side
# by side, and bad paths or options are refused with a message.
# Run from the repository root by scripts/run-tests.sh; one TAP line per check.
pmi=${PMI_BIN:-./pmi}
py=/usr/bin/python3   # Debian's: python3-torch imports only there
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; return 1; fi; }
bench="--arch cnn --n 512 --batch 128 --epochs 1 --warmup 0"   # pmi adds --device cpu

# shellcheck disable=SC2086
timeout 120 "$pmi" bench $bench --device cpu --trace "$tmp/pmi.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/err"
check "$([ "$rc" = 0 ] && grep -q "^pmi-trace arch=cnn batch=128 epochs=1 file=$tmp/pmi.json events=[1-9]" "$tmp/out"; echo $?)" \
  "pmi bench --trace writes a trace and says how many events"

# Counts of one name's events in a trace: name file
count() {
  "$py" - "$1" "$2" <<'EOF'
import json, sys
t = json.load(open(sys.argv[2]))
ev = t["traceEvents"] if isinstance(t, dict) else t
print(sum(1 for e in ev if e.get("name") == sys.argv[1]))
EOF
}
"$py" - "$tmp/pmi.json" >"$tmp/shape" 2>&1 <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
ev = t["traceEvents"]
bad = [e for e in ev if e.get("ph") != "X" or e.get("cat") not in ("cpu_op", "kernel") or not e["ts"] >= 0 or not e["dur"] >= 0]
print(len(ev), len(bad))
sys.exit(1 if bad or not ev else 0)
EOF
check $? "pmi's trace is JSON: complete events (ph X) of category cpu_op, ts and dur >= 0 ($(cat "$tmp/shape"))"
conv=$(count aten::convolution "$tmp/pmi.json"); back=$(count aten::convolution_backward "$tmp/pmi.json")
check "$([ "$conv" = 8 ] && [ "$back" = 8 ]; echo $?)" \
  "pmi's trace holds the one profiled epoch: 4 steps x 2 convolutions = 8 forward, 8 backward (got $conv, $back)"

# shellcheck disable=SC2086
timeout 120 "$py" scripts/bench/bench_ref.py $bench --trace "$tmp/py.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/err"
pconv=$(count aten::convolution "$tmp/py.json" 2>/dev/null); pback=$(count aten::convolution_backward "$tmp/py.json" 2>/dev/null)
check "$([ "$rc" = 0 ] && [ "$pconv" = "$conv" ] && [ "$pback" = "$back" ]; echo $?)" \
  "bench_ref.py --trace records the same epoch: the same convolution counts as pmi's ($pconv, $pback)"

python3 scripts/bench/trace-compare.py "$tmp/pmi.json" "$tmp/py.json" --label-a pmi --label-b python --top 1000 >"$tmp/cmp" 2>&1; rc=$?
sed 's/^/#   /' "$tmp/cmp" | head -8
row=$(grep '^aten::convolution ' "$tmp/cmp" | awk '{print $2, $4}')
check "$([ "$rc" = 0 ] && grep -q '^trace-compare what=ops a_events=[1-9][0-9]* b_events=[1-9]' "$tmp/cmp" && [ "$row" = "8 8" ]; echo $?)" \
  "trace-compare.py compares the two traces' operators (aten::convolution: 8 and 8 calls, got '$row')"

# one trace: known kernel intervals (us) on two streams: [0,100] and [50,150] overlap, then a
# 1.85 ms pause, then [2000,2100]: span 2.1 ms, busy 0.25 ms, one gap of 1.85 ms
cat >"$tmp/k.json" <<'EOF'
{"traceEvents": [
 {"ph": "X", "cat": "kernel", "name": "k1", "pid": 0, "tid": 7, "ts": 0, "dur": 100},
 {"ph": "X", "cat": "kernel", "name": "k2", "pid": 0, "tid": 8, "ts": 50, "dur": 100},
 {"ph": "X", "cat": "kernel", "name": "k1", "pid": 0, "tid": 7, "ts": 2000, "dur": 100},
 {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0, "dur": 5000}]}
EOF
python3 scripts/bench/trace-compare.py "$tmp/k.json" >"$tmp/one" 2>&1; rc=$?
sed 's/^/#   /' "$tmp/one"
check "$([ "$rc" = 0 ] && grep -q '^trace-busy what=kernels events=3 span_ms=2.100 busy_ms=0.250 busy=0.119 gaps_ms=1.850 gaps=1 streams=2$' "$tmp/one" &&
  grep -q '^k1  *2  *0.200  *100.0$' "$tmp/one"; echo $?)" \
  "trace-compare.py with one trace: the GPU's busy time is the union of its kernels over streams, the pauses of 1 ms or more are gaps"

echo '{"not": "a trace"}' >"$tmp/bad.json"
python3 scripts/bench/trace-compare.py "$tmp/bad.json" "$tmp/py.json" >"$tmp/out" 2>&1; rc=$?
check "$([ "$rc" = 2 ] && grep -q "$tmp/bad.json: expected a Chrome trace" "$tmp/out"; echo $?)" \
  "trace-compare.py refuses a file that is not a trace: exit 2 naming it (exit $rc)"

# shellcheck disable=SC2086
timeout 60 "$pmi" bench $bench --device cpu --trace "$tmp/no/such/dir/t.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "$([ "$rc" = 1 ] && grep -q "cannot write $tmp/no/such/dir/t.json" "$tmp/err"; echo $?)" \
  "pmi bench --trace into a missing folder: exit 1 naming the path (exit $rc)"
# shellcheck disable=SC2086
timeout 120 "$pmi" bench $bench --models 2 --device cpu --trace "$tmp/t2.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
conv=$(count aten::convolution "$tmp/t2.json" 2>/dev/null); back=$(count aten::convolution_backward "$tmp/t2.json" 2>/dev/null)
check "$([ "$rc" = 0 ] && grep -q "^pmi-trace arch=cnn batch=128 epochs=1 models=2 file=$tmp/t2.json events=[1-9]" "$tmp/out" &&
  [ "$conv" = 16 ] && [ "$back" = 16 ]; echo $?)" \
  "pmi bench --trace with --models 2 profiles one epoch of both models: 16 convolutions forward, 16 backward (exit $rc, got $conv, $back)"

# pmi run --trace: the first attack batch of a run under the profiler. A tiny synthetic experiment
# (MLP, 5 jobs, 2 attack settings); on the CPU a batch is one (model, setting) pair: the owner's
# ftal of one epoch on 10 attacker samples (one step: 3 linear layers' forward and backward) and
# the attacked model's forward passes (test accuracy, pool scores: 2 x 3 linear layers). So the
# trace holds 3 AddmmBackward0 and 9 aten::addmm, no more (the prune setting and the other jobs
# are not in it).
cat >"$tmp/run.ini" <<EOF
[experiment]
name = tr
seeds = 1
device = cpu
output = $tmp/results
[data]
dataset = synthetic
n_train = 50
n_attacker = 10
n_test = 20
[pool]
N = 2
m = 5
[model]
arch = mlp
[train]
epochs = 1
[attack.ft]
type = ftal
epochs = 1
[attack.pr]
type = prune
sparsity = 0.5
EOF
timeout 120 "$pmi" run "$tmp/run.ini" --trace "$tmp/run.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/err"
bw=$(count AddmmBackward0 "$tmp/run.json" 2>/dev/null); fw=$(count aten::addmm "$tmp/run.json" 2>/dev/null)
check "$([ "$rc" = 0 ] && grep -q -- "--trace: 1 (model, setting) pairs attacked and their forward passes .* [1-9][0-9]* events in $tmp/run.json" "$tmp/err" &&
  [ "$bw" = 3 ] && [ "$fw" = 9 ]; echo $?)" \
  "pmi run --trace profiles exactly the first attack batch: one ftal step and the attacked model's 2 forward passes (3 backward and 9 forward addmm, got $bw and $fw)"
rm -f "$tmp/run.json"
timeout 60 "$pmi" run "$tmp/run.ini" --trace "$tmp/run.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "$([ "$rc" = 0 ] && [ ! -e "$tmp/run.json" ] && grep -q -- "--trace: no attack batch ran" "$tmp/err"; echo $?)" \
  "pmi run --trace of a complete run: exit 0, no file, says that no attack batch ran (exit $rc)"
timeout 60 "$pmi" run "$tmp/run.ini" --force --jobs 2 --trace "$tmp/run.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "$([ "$rc" = 2 ] && [ ! -e "$tmp/run.json" ] && grep -q -- "--trace profiles one process's first attack batch: it does not go with --jobs n > 1" "$tmp/err"; echo $?)" \
  "pmi run --trace with --jobs 2: exit 2 before any job, naming both options (exit $rc)"
timeout 60 "$pmi" run "$tmp/run.ini" --force --trace "$tmp/no/such/dir/t.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "$([ "$rc" = 2 ] && grep -q -- "--trace $tmp/no/such/dir/t.json: cannot write" "$tmp/err"; echo $?)" \
  "pmi run --trace into a missing folder: exit 2 before any job, naming the path (exit $rc)"

# Freed memory stays in the process (util_keep_freed_memory): the small CNN's steps free and take
# back their activations (12.8 MB each), and with glibc's defaults each step faulted its pages in
# again. Counted, not timed: the minor page faults of 2 epochs of 16 steps on one thread with the
# process's malloc settings and with PMI_MALLOC=glibc (glibc's own).
faults() {
  "$py" - "$pmi" "$@" <<'EOF2'
import os, resource, subprocess, sys
r = subprocess.run([sys.argv[1], "bench", "--arch", "cnn", "--n", "2048", "--batch", "128", "--epochs", "2", "--warmup", "0",
                    "--device", "cpu", "--threads", "1"], capture_output=True, text=True, env=dict(os.environ, **dict(a.split("=", 1) for a in sys.argv[2:])))
assert r.returncode == 0 and 'device="cpu (1 threads)"' in r.stdout, (r.returncode, r.stdout, r.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt)
EOF2
}
if grep -q __asan_init "$pmi" 2>/dev/null; then
  echo "ok - pmi keeps freed memory # SKIP the sanitized build's allocator replaces glibc's malloc (mallopt does nothing there)"
else
  kept=$(faults) && glibc=$(faults PMI_MALLOC=glibc); rc=$?
  check "$([ "$rc" = 0 ] && [ "$kept" -gt 0 ] && [ $((kept * 2)) -lt "$glibc" ]; echo $?)" \
    "pmi keeps freed memory: fewer than half the page faults of glibc's defaults (2 epochs of 16 steps of the small CNN, 1 thread: $kept against $glibc)"
fi
