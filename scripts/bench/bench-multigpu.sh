#!/bin/bash
# Multi-GPU scaling of the paper-scale experiments (run on a machine with several GPUs after
# `make TORCH_DIR=...`): each experiment of $EXPERIMENTS (default fingerprint, ablation-pool)
# with configs/scale-paper.ini, run on 1 GPU (plain `pmi run`: the seed groups one after the
# other), then with `--gpus 0,1` and `--gpus all`, each into its own output folder, each
# bounded. Prints a table: wall seconds, speed-up over 1 GPU, and the largest difference of a
# per-sample score between the 1-GPU and the n-GPU results (same card type; GPU training is
# not bit-reproducible without deterministic algorithms, so this is reported, not assumed).
#   scripts/bench/bench-multigpu.sh [pmi binary]      (OUT=folder for logs and the table)
set -u
pmi=${1:-./pmi}
out=${OUT:-/tmp/bench-multigpu}
mkdir -p "$out"
n=$(nvidia-smi -L | wc -l)
exps=${EXPERIMENTS:-fingerprint ablation-pool}
echo "# $(nvidia-smi -L | head -1 | sed 's/ (UUID.*//') x $n, $(git rev-parse --short HEAD 2>/dev/null), $(date -u +%FT%TZ)" | tee "$out/table"
printf '%-14s %-10s %8s %8s %s\n' experiment gpus seconds speedup "max |score diff| vs 1 GPU" | tee -a "$out/table"
for exp in $exps; do
  t1=""
  for g in 1 2 all; do
    [ "$g" = 2 ] && [ "$n" -lt 3 ] && continue   # on 2 GPUs, "all" is the 2-GPU run
    case $g in 1) opt=();; 2) opt=(--gpus 0,1);; all) opt=(--gpus all);; esac
    t0=$(date +%s%N)
    timeout -k 5 400 "$pmi" run "experiments/$exp.ini" configs/scale-paper.ini -s experiment.output="$out/g$g" \
      "${opt[@]}" >"$out/$exp-g$g.log" 2>&1
    rc=$?
    t=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    [ "$g" = 1 ] && t1=$t
    diff=$(python3 - "$out/g1/$exp/results.h5" "$out/g$g/$exp/results.h5" 2>&1 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst, n = 0.0, 0
def cmp(name, obj):
    global worst, n
    if isinstance(obj, h5py.Dataset) and name.endswith("sample_scores"):
        x, y = obj[()], b["jobs"][name][()]
        ok = np.isfinite(x) & np.isfinite(y)
        worst = max(worst, float(np.max(np.abs(x[ok] - y[ok])))) if ok.any() else worst
        n += 1
a["jobs"].visititems(cmp)
print(f"{worst:.3g} over {n} arrays")
PY
)
    printf '%-14s %-10s %8.1f %8.2f %s\n' "$exp" "$g" "$t" "$(awk -v a="$t1" -v b="$t" 'BEGIN { print a / b }')" \
      "$([ $rc = 0 ] && echo "${diff##*$'\n'}" || echo "exit $rc")" | tee -a "$out/table"
    [ $rc = 0 ] || tail -5 "$out/$exp-g$g.log"
  done
done
