#!/bin/sh
# framework/nn_cuda.cu's kernels (the fused ensembles' convolutions, built for GPUs only where
# nvcc is present) compiled for the CPU against tests/cuda_emu/cuda_runtime.h, a stand-in that
# runs each block's threads as std::threads meeting at a barrier, and compared with a plain
# double-precision convolution (tests/cuda_emu/check.cpp): their arithmetic and indexing are
# checked on every machine, GPU or not. test_gpu's test_gconv_gpu checks them on a GPU against
# ATen and cuDNN. Run from the repository root by scripts/run-tests.sh; one TAP line per check.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# k<<<grid, block, shared, stream>>>(args); -> EMU_LAUNCH(grid, block, shared, stream, k(args));
sed -E 's/extern __shared__ float (\w+)\[\];/float *\1 = emu_shared;/; s/(\w+(<[0-9]+>)?)<<<([^>]*)>>>\((.*)\);/EMU_LAUNCH(\3, \1(\4));/' \
  framework/nn_cuda.cu >"$tmp/nn_cuda.cpp"
n=$(grep -c 'EMU_LAUNCH(' "$tmp/nn_cuda.cpp")
if [ "$n" -lt 5 ] || grep -q '<<<' "$tmp/nn_cuda.cpp"; then
  echo "not ok - tests/test_cuda_emu.sh rewrote $n kernel launches of framework/nn_cuda.cu and left others: update its sed"
  exit 1
fi
if ! ${CXX:-c++} -std=c++20 -O1 -Itests/cuda_emu -Iframework -include cuda_runtime.h "$tmp/nn_cuda.cpp" tests/cuda_emu/check.cpp \
     -o "$tmp/check" -lpthread 2>"$tmp/err"; then
  sed 's/^/#   /' "$tmp/err" | head -20
  echo "not ok - framework/nn_cuda.cu compiles for the CPU against tests/cuda_emu/cuda_runtime.h"
  exit 1
fi
echo "ok - framework/nn_cuda.cu compiles for the CPU against tests/cuda_emu/cuda_runtime.h ($n launches)"
timeout 300 "$tmp/check"
