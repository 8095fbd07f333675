#!/bin/bash
# GPU benchmark, one run on the GPU machine (see README, "On the GPU machine"):
#   source .device/setup.sh && scripts/bench-gpu.sh [out_dir]
# For each case it trains the same architecture, batch size, optimizer and data with
# scripts/bench_ref.py (PyTorch from Python) and with `pmi bench` (pmi's training path), and
# prints images/s for both and the ratio; then a sweep of small CNNs: K models one after
# another from Python against K concurrent pmi processes (models per minute).
# Needs ./pmi built against the CUDA libtorch (make TORCH_DIR=$TORCH_DIR).
set -uo pipefail
out=${1:-bench-out}
mkdir -p "$out"
log="$out/bench.log"
: > "$log"
py=${PYTHON:-python3}
rate() { sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' | tail -1; }
printf "%-10s %6s %8s %14s %14s %7s\n" arch batch n python_img/s pmi_img/s ratio | tee "$out/table.txt"
while read -r arch batch n epochs; do
  r=$($py scripts/bench_ref.py --arch "$arch" --batch "$batch" --n "$n" --epochs "$epochs" 2>>"$log" | tee -a "$log" | rate)
  p=$(./pmi bench --arch "$arch" --batch "$batch" --n "$n" --epochs "$epochs" --device cuda 2>>"$log" | tee -a "$log" | rate)
  ratio=$(awk -v a="$p" -v b="$r" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf "%-10s %6s %8s %14s %14s %7s\n" "$arch" "$batch" "$n" "${r:--}" "${p:--}" "$ratio" | tee -a "$out/table.txt"
done <<'CASES'
cnn 128 60000 3
cnn 512 60000 5
vgg11 512 20000 2
resnet18 512 20000 2
CASES

# Sweep: K small CNNs (3 epochs on 60000 images each, batch 128; whole processes timed, start-up
# included on both sides): Python one after another, pmi as K concurrent processes, and pmi as
# one process training the K models at once on K CUDA streams (nn_train_group).
K=${K:-8}
t0=$(date +%s.%N)
$py scripts/bench_ref.py --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --models "$K" 2>>"$log" | tee -a "$log" >/dev/null
t1=$(date +%s.%N)
for i in $(seq "$K"); do
  ./pmi bench --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --device cuda >>"$log" 2>&1 &
done
wait
t2=$(date +%s.%N)
done_k=$(grep -c '^pmi-bench arch=cnn batch=128 epochs=3 n=60000' "$log")
[ "$done_k" -ge "$K" ] || { echo "sweep: only $done_k of $K pmi processes finished (see $log)" | tee -a "$out/table.txt"; exit 1; }
t3=$(date +%s.%N)
./pmi bench --arch cnn --batch 128 --n 60000 --epochs 3 --warmup 0 --device cuda --models "$K" >>"$log" 2>&1 ||
  { echo "sweep: pmi bench --models $K failed (see $log)" | tee -a "$out/table.txt"; exit 1; }
t4=$(date +%s.%N)
awk -v k="$K" -v a="$t0" -v b="$t1" -v c="$t3" -v d="$t4" 'BEGIN {
  py = 60 * k / (b - a); pm = 60 * k / (d - c);
  printf "sweep: %d cnn models, python one after another %.1f models/min (%.1f s), pmi one process, %d streams %.1f models/min (%.1f s), ratio %.2f\n", k, py, b - a, k, pm, d - c, pm / py }' | tee -a "$out/table.txt"
awk -v k="$K" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  py = 60 * k / (b - a); pm = 60 * k / (c - b);
  printf "sweep: %d cnn models, python one after another %.1f models/min (%.1f s), pmi %d concurrent processes %.1f models/min (%.1f s), ratio %.2f\n", k, py, b - a, k, pm, c - b, pm / py }' | tee -a "$out/table.txt"
