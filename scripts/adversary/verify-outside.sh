#!/bin/sh
# The dataset evidence against a thief outside pmi (docs/dataset-evidence.md): pmi trains an owner
# with dataset evidence (Fashion-MNIST, LeNet, 20000 samples, held-out 5000, m = 100, D_k four
# times, one seed; [store] save_models), exports it as safetensors and its key; PyTorch
# (scripts/adversary/distill.py) distils it into a student on the test file's 10000 images, and
# trains an innocent model from scratch on the same images; `pmi verify --model` judges both
# TorchScript files with the key. Expected: the student claimed (exit 0), the innocent not (1).
#   scripts/adversary/verify-outside.sh OUT_DIR [FASHION_MNIST_DIR]   (a GPU makes it minutes)
set -u
out=${1:?usage: verify-outside.sh OUT_DIR [FASHION_MNIST_DIR]}
data=${2:-${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}}
python=${PMI_PYTHON:-python3}
mkdir -p "$out"
cat >"$out/owner.ini" <<INI
include = $PWD/configs/fashion-mnist.ini
include = $PWD/configs/lenet-adam.ini
include = $PWD/configs/scale-paper.ini
[experiment]
name = outside
seeds = 1
output = $out/results
[pool]
m = 100
repeat = 4
[pmi]
independent = 0
holdout = 5000
scores = loss
data_permutations = 9999
[store]
save_models = 1
INI
r=$out/results/outside/results.h5
./pmi run "$out/owner.ini" >"$out/run.log" 2>&1 || { tail "$out/run.log"; exit 1; }
./pmi key export "$r" --job p0-s1-owner -o "$out/owner.key.h5" 2>&1 | tail -1
./pmi export "$r" --job p0-s1-owner --eval 0 -o "$out/owner.safetensors" >/dev/null || exit 1
for mode in distill scratch; do
  $python scripts/adversary/distill.py --owner "$out/owner.safetensors" --key "$out/owner.key.h5" --data "$data" \
    --out "$out/$mode.pt" --mode $mode || exit 1
  ./pmi verify --key "$out/owner.key.h5" --model "$out/$mode.pt" -o "$out/$mode.json" >"$out/$mode.txt" 2>&1
  rc=$?
  head -4 "$out/$mode.txt"
  echo "pmi verify of the $mode model: exit $rc"
done
