#!/bin/bash
# GPU benchmark, one run on the GPU machine (see README, "On the GPU machine"):
#   source .device/setup.sh && scripts/bench/bench-gpu.sh [out_dir] [train|reproduce|all|trace]
# train: for each case it trains the same architecture, batch size, optimizer, precision and
# data with scripts/bench/bench_ref.py (PyTorch from Python) and with `pmi bench` (pmi's training
# path), and prints images/s for both and the ratio; then a sweep of small CNNs: K models one
# after another from Python against pmi (K concurrent processes, and one process training the K
# at once).
# reproduce: times `scripts/reproduce.sh paper` (every experiment at paper scale, its report and
# figures) experiment by experiment; EXPERIMENTS="a b" limits it to those (scripts/reproduce.sh).
# trace: one epoch of one case (TRACE_CASE="arch batch n precision layout", default "resnet18 512
# 20000 fp32 nhwc") under torch's profiler on both sides (bench_ref.py --trace, pmi bench --trace),
# then scripts/bench/trace-compare.py: the GPU kernels each side runs, by name, the largest
# differences first (out_dir/trace-compare.txt; the traces out_dir/trace-*.json open in Perfetto).
# train and reproduce write their rows as a markdown table to out_dir/table.md (card, commit, torch version in
# its header; COMMIT=... names it where the checkout's git is not the tree's, as in a copy of a
# working tree), the form of docs/performance.md's tables. A bench takes 3-4 minutes, the
# reproduction about 9 on one H100: the device tool runs 10 minutes a command, so split them.
# Needs ./pmi built against the CUDA libtorch (make TORCH_DIR=$TORCH_DIR).
set -uo pipefail
out=${1:-bench-out}
mode=${2:-all}
case $mode in train|reproduce|all|trace) ;; *) echo "bench-gpu.sh: mode '$mode': expected train, reproduce, all or trace" >&2; exit 2 ;; esac
mkdir -p "$out"
log="$out/bench.log"
: > "$log"
py=${PYTHON:-python3}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
{ echo "<!-- scripts/bench/bench-gpu.sh $mode: ${card:-no GPU}, commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}, $($py -c 'import torch; print("torch", torch.__version__)' 2>/dev/null), $(date -u +%Y-%m-%d) -->"; } > "$out/table.md"
rate() { sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' | tail -1; }

train_cases() {
printf "%-10s %6s %8s %5s %5s %14s %14s %7s\n" arch batch n prec layout python_img/s pmi_img/s ratio | tee "$out/table.txt"
printf "| case | precision, layout | PyTorch from Python, images/s | pmi | ratio |\n|---|---|---|---|---|\n" >> "$out/table.md"
while read -r arch batch n epochs prec layout; do
  cl=; [ "$layout" = nhwc ] && cl=--channels-last
  r=$($py scripts/bench/bench_ref.py --arch "$arch" --batch "$batch" --n "$n" --epochs "$epochs" --precision "$prec" $cl 2>>"$log" | tee -a "$log" | rate)
  p=$(./pmi bench --arch "$arch" --batch "$batch" --n "$n" --epochs "$epochs" --precision "$prec" $cl --device cuda 2>>"$log" | tee -a "$log" | rate)
  ratio=$(awk -v a="$p" -v b="$r" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf "%-10s %6s %8s %5s %5s %14s %14s %7s\n" "$arch" "$batch" "$n" "$prec" "$layout" "${r:--}" "${p:--}" "$ratio" | tee -a "$out/table.txt"
  printf "| %s, batch %s, %s images | %s, %s | %s | %s | %s |\n" "$arch" "$batch" "$n" "$prec" "$layout" "${r:--}" "${p:--}" "$ratio" >> "$out/table.md"
done <<'CASES'
cnn 128 60000 3 fp32 nchw
cnn 512 60000 5 fp32 nchw
cnn 512 60000 5 bf16 nchw
vgg11 512 20000 2 fp32 nchw
vgg11 512 20000 2 fp32 nhwc
vgg11 512 20000 2 bf16 nhwc
resnet18 512 20000 2 fp32 nchw
resnet18 512 20000 2 fp32 nhwc
resnet18 512 20000 2 bf16 nhwc
CASES

# Sweep: K small CNNs (3 epochs on 60000 images each, batch 128; whole processes timed, start-up
# included on both sides): Python one after another, pmi as K concurrent processes, and pmi as
# one process training the K models at once (nn_train_group: one fused ensemble on a GPU).
K=${K:-8}
t0=$(date +%s.%N)
$py scripts/bench/bench_ref.py --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --models "$K" 2>>"$log" | tee -a "$log" >/dev/null
t1=$(date +%s.%N)
for i in $(seq "$K"); do
  ./pmi bench --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --device cuda >>"$log" 2>&1 &
done
wait
t2=$(date +%s.%N)
done_k=$(grep -c '^pmi-bench arch=cnn batch=128 epochs=3 n=60000' "$log")
[ "$done_k" -ge "$K" ] || { echo "sweep: only $done_k of $K pmi processes finished (see $log)" | tee -a "$out/table.txt"; return 1; }
t3=$(date +%s.%N)
./pmi bench --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --device cuda --models "$K" >>"$log" 2>&1 ||
  { echo "sweep: pmi bench --models $K failed (see $log)" | tee -a "$out/table.txt"; return 1; }
t4=$(date +%s.%N)
awk -v k="$K" -v a="$t0" -v b="$t1" -v c="$t3" -v d="$t4" 'BEGIN {
  py = 60 * k / (b - a); pm = 60 * k / (d - c);
  printf "sweep: %d cnn models, python one after another %.1f models/min (%.1f s), pmi one process, %d models %.1f models/min (%.1f s, %.0f images/s aggregate), ratio %.2f\n", k, py, b - a, k, pm, d - c, k * 180000 / (d - c), pm / py }' | tee -a "$out/table.txt"
awk -v k="$K" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  py = 60 * k / (b - a); pm = 60 * k / (c - b);
  printf "sweep: %d cnn models, python one after another %.1f models/min (%.1f s), pmi %d concurrent processes %.1f models/min (%.1f s), ratio %.2f\n", k, py, b - a, k, pm, c - b, pm / py }' | tee -a "$out/table.txt"
printf "| sweep of %s cnn models | fp32, nchw | %s | %s | %s |\n" "$K" \
  "$(sed -n 's/.*python one after another \([0-9.]*\) models\/min.*/\1 models\/min/p' "$out/table.txt" | head -1)" \
  "$(sed -n 's/.*pmi one process, [0-9]* models \([0-9.]*\) models\/min ([0-9.]* s, \([0-9]*\) images.*/\1 models\/min, \2 images\/s (one process)/p' "$out/table.txt" | head -1)" \
  "$(sed -n 's/.*one process, [0-9]* models [0-9.]* models\/min.*ratio \([0-9.]*\)$/\1/p' "$out/table.txt" | head -1)" >> "$out/table.md"
}

# The paper scale, experiment by experiment: scripts/reproduce.sh prints "reproduce: <experiment>
# run <s> s, report and figures <s> s" per experiment and the total at the end.
reproduce_paper() {
  printf "| experiment | pmi run | report and figures |\n|---|---|---|\n" >> "$out/table.md"
  sh scripts/reproduce.sh paper > "$out/reproduce.log" 2>&1
  rc=$?
  sed -n 's/^reproduce: \([a-z-]*\) run \([0-9]*\) s, report and figures \([0-9]*\) s$/| \1 | \2 s | \3 s |/p' "$out/reproduce.log" >> "$out/table.md"
  sed -n "s/^reproduce: scale paper done in \([0-9]*\) s\$/| ${EXPERIMENTS:+these experiments (EXPERIMENTS=$EXPERIMENTS), }whole script, run, report and figures | \1 s | |/p" "$out/reproduce.log" >> "$out/table.md"
  grep '^reproduce:' "$out/reproduce.log" | tee -a "$out/table.txt"
  [ $rc -eq 0 ] || { echo "reproduce: failed (exit $rc), see $out/reproduce.log" | tee -a "$out/table.txt"; return 1; }
}

# One epoch of one case under the profiler on both sides, compared kernel by kernel.
trace_case() {
  read -r arch batch n prec layout <<<"${TRACE_CASE:-resnet18 512 20000 fp32 nhwc}"
  cl=; [ "$layout" = nhwc ] && cl=--channels-last
  $py scripts/bench/bench_ref.py --arch "$arch" --batch "$batch" --n "$n" --epochs 1 --precision "$prec" $cl \
    --trace "$out/trace-python.json" 2>>"$log" | tee -a "$log" || return 1
  ./pmi bench --arch "$arch" --batch "$batch" --n "$n" --epochs 1 --precision "$prec" $cl --device cuda \
    --trace "$out/trace-pmi.json" 2>>"$log" | tee -a "$log" || return 1
  $py scripts/bench/trace-compare.py "$out/trace-python.json" "$out/trace-pmi.json" --label-a python --label-b pmi \
    --what kernels --top 40 | tee "$out/trace-compare.txt"
}

status=0
if [ "$mode" = trace ]; then trace_case || status=1; cat "$out/table.md"; exit $status; fi
if [ "$mode" != reproduce ]; then train_cases || status=1; fi
if [ "$mode" != train ]; then reproduce_paper || status=1; fi
cat "$out/table.md"
exit $status
