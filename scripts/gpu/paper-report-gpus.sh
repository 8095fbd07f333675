#!/bin/bash
# The paper-scale report on a machine with several GPUs, as docs/paper/REPORT.md of 2026-11-26 was made:
# fingerprint, ablation-pool and robustness (configs/scale-paper.ini) with `pmi run --gpus all`,
# each bounded, then `pmi report --markdown-report` over the results (no figures: the GPU
# machine has no gnuplot; render them elsewhere with `pmi plot`). Run after
# `make TORCH_DIR=...`; OUT (default /tmp/paper-report) gets the logs and REPORT.md.
set -u
out=${OUT:-/tmp/paper-report}
res=${RESULTS:-/tmp/paper-results}
mkdir -p "$out"
t00=$(date +%s); files=""
for exp in fingerprint ablation-pool robustness; do
  t0=$(date +%s)
  timeout -k 5 "${EXP_SECONDS:-170}" ./pmi run "experiments/$exp.ini" configs/scale-paper.ini -s experiment.output="$res" \
    --gpus all >"$out/$exp.log" 2>&1
  echo "$exp: exit $? in $(( $(date +%s) - t0 )) s"
  [ -f "$res/$exp/results.h5" ] && files="$files $res/$exp/results.h5"
done
echo "all experiments: $(( $(date +%s) - t00 )) s"
# shellcheck disable=SC2086
./pmi report --markdown-report "$out/REPORT.md" $files
