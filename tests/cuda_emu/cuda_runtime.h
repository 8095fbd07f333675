/* A CPU stand-in for the CUDA runtime that framework/nn_cuda.cu uses, for tests/test_cuda_emu.sh:
 * a kernel launch runs the grid's blocks one after another on one std::thread per thread of a
 * block, which meet at a std::barrier for __syncthreads, each block's shared memory filled with NaN
 * (a read before a write shows). It checks the kernels' arithmetic and indexing on a machine
 * without a GPU; not their speed, nor races that only a GPU's scheduling would show. The script
 * rewrites the launch syntax (k<<<grid, block, shared, stream>>>(args)) into EMU_LAUNCH. */
#pragma once
#include <barrier>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>
#include <algorithm>
struct dim3 { unsigned x = 1, y = 1, z = 1; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
inline thread_local dim3 threadIdx, blockIdx, blockDim;
inline thread_local float *emu_shared;
inline thread_local std::barrier<> *emu_bar;
typedef void *cudaStream_t;
typedef int cudaError_t;
#define __global__
#define __device__
#define __host__
#define __restrict__
inline void __syncthreads() { emu_bar->arrive_and_wait(); }
inline float __ldg(const float *p) { return *p; }
using std::min;
inline int cudaGetLastError() { return 0; }
inline const char *cudaGetErrorString(cudaError_t) { return "emu"; }
inline void emu_launch(dim3 g, dim3 b, int sh, std::function<void()> f) {
    std::vector<float> shared(sh / 4 + 1);
    std::barrier<> bar((std::ptrdiff_t)b.x);
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < b.x; t++)   /* one thread per thread of a block, for every block in turn */
        ts.emplace_back([&, t] {
            threadIdx = dim3(t); blockDim = b; emu_shared = shared.data(); emu_bar = &bar;
            for (unsigned by = 0; by < g.y; by++)
                for (unsigned bx = 0; bx < g.x; bx++) {
                    if (t == 0) std::fill(shared.begin(), shared.end(), NAN);
                    bar.arrive_and_wait();
                    blockIdx = dim3(bx, by);
                    f();
                    bar.arrive_and_wait();
                }
        });
    for (auto &t : ts) t.join();
}
#define EMU_LAUNCH(g, b, sh, st, ...) emu_launch(dim3(g), dim3(b), (sh), [&] { __VA_ARGS__; })
