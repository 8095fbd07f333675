#!/bin/bash
# GPU checks of the numerics and recovery options (run on a CUDA machine after
# `make TORCH_DIR=...`), each run bounded, a table last:
#   - experiment.deterministic = 1: the paper-scale fingerprint (SEEDS seeds, default 4) twice
#     on one GPU and once with --gpus all: per-sample scores must be bit-identical; the same
#     without it (default numerics) twice, to show what it changes and what it costs;
#   - a GPU group killed when it starts (PMI_FAULT=group:<job>): the run must finish, its jobs
#     retried one at a time in a fresh process.
#   scripts/gpu/gpu-numerics-check.sh [pmi binary]     (OUT=folder for logs)
set -u
pmi=${1:-./pmi}
out=${OUT:-/tmp/gpu-numerics}
seeds=${SEEDS:-4}
mkdir -p "$out"
: >"$out/table"
row() { printf '%-34s %s\n' "$1" "$2" | tee -a "$out/table"; }
run() {  # name, seconds, pmi arguments...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s%N)
  timeout -k 5 "$secs" "$pmi" run experiments/fingerprint.ini configs/scale-paper.ini -s experiment.seeds="$seeds" \
    -s experiment.output="$out/$name" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  eval "t_$name=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
  eval "rc_$name=$rc"
  [ $rc = 0 ] || { echo "== $name (exit $rc), last lines:"; tail -5 "$out/$name.log"; }
}
same() {  # results folder a, b: "identical" or the largest per-sample score difference
  python3 - "$out/$1/fingerprint/results.h5" "$out/$2/fingerprint/results.h5" 2>&1 <<'PY' | tail -1
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst, n, same = 0.0, 0, 0
def cmp(name, obj):
    global worst, n, same
    if isinstance(obj, h5py.Dataset) and name.endswith("sample_scores"):
        x, y = obj[()], b["jobs"][name][()]
        n += 1
        same += np.array_equal(x, y, equal_nan=True)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any(): worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]))))
a["jobs"].visititems(cmp)
print("identical" if same == n else f"{same}/{n} arrays identical, max |diff| {worst:.3g}")
PY
}
run det1 300 -s experiment.deterministic=1
run det2 300 -s experiment.deterministic=1
run detall 300 -s experiment.deterministic=1 --gpus all
run def1 300
run def2 300
row "deterministic, 1 GPU" "exit $rc_det1, $t_det1 s"
row "deterministic, 1 GPU again" "exit $rc_det2, $t_det2 s: $(same det1 det2)"
row "deterministic, --gpus all" "exit $rc_detall, $t_detall s: $(same det1 detall)"
row "default, 1 GPU" "exit $rc_def1, $t_def1 s"
row "default, 1 GPU again" "exit $rc_def2, $t_def2 s: $(same def1 def2)"
row "default vs deterministic" "$(same def1 det1)"
PMI_FAULT=group:p0-s1-clean timeout -k 5 200 "$pmi" run experiments/fingerprint.ini configs/scale-paper.ini \
  -s experiment.seeds=2 -s train.epochs=5 -s pmi.permutations=999 -s experiment.output="$out/fault" >"$out/fault.log" 2>&1
rc=$?
row "group killed at start (PMI_FAULT)" "exit $rc; $(grep -c 'retrying the' "$out/fault.log") retry line(s); $(ls "$out"/fault/fingerprint/shards/*.h5 2>/dev/null | wc -l) shards"
