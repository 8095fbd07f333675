#!/bin/bash
# GPU check of group training (run on a CUDA machine after `make TORCH_DIR=...`): the GPU
# tests (tests/test_gpu.c: every pair of architectures and widths in one group, a group
# larger than the device's 32 pool streams, group == single training), then the two runs that
# once ended in an illegal memory access or a hang: a cnn of width 16 with lenet independent
# models, and the paper-scale fingerprint with 8 independent models per role (26 models in a
# seed's group). Each run is bounded; the last lines are a table of outcomes.
#   scripts/gpu/gpu-group-check.sh [pmi binary] [test binary]
set -u
pmi=${1:-./pmi}
tests=${2:-build/tests/test_gpu}
out=${GPU_CHECK_OUT:-/tmp/gpu-group-check}
mkdir -p "$out"
row() { printf '%-44s %s\n' "$1" "$2" >>"$out/table"; }
: >"$out/table"
run() {  # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout -k 5 "$secs" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  row "$name" "exit $rc in $(( $(date +%s) - t0 )) s$(grep -m1 -o 'illegal memory access\|CUDA error[^\n]*' "$out/$name.log" | head -1 | sed 's/^/: /')"
  [ $rc = 0 ] || { echo "== $name (exit $rc), last lines:"; tail -5 "$out/$name.log"; }
}
if [ -x "$tests" ]; then run test_gpu 300 "$tests"; fi
run mixed-cnn16-lenet 200 "$pmi" run experiments/fingerprint.ini configs/scale-paper.ini --force \
  -s experiment.name=gpu-mixed -s experiment.seeds=1 -s model.arch=cnn -s model.width=16 \
  -s pmi.independent=2 -s pmi.indep_arch=lenet -s pmi.permutations=999 -s train.epochs=5
run paper-independent-8 200 "$pmi" run experiments/fingerprint.ini configs/scale-paper.ini --force \
  -s experiment.name=gpu-indep8 -s experiment.seeds=1 -s pmi.independent=8 -s pmi.permutations=999 -s train.epochs=5
cat "$out/table"
