/* CUDA kernels of the torch shim: the first convolution of a fused ensemble (nn_cuda.h says
 * what and why). Compiled by nvcc without torch's headers where the CUDA toolkit is present. */
#include "nn_cuda.h"

#include <cuda_runtime.h>

namespace {

constexpr int kMaxShared = 48 * 1024;   // bytes of dynamic shared memory without opting in
constexpr int kThreads = 256;           // the forward pass's block
constexpr int kBlocks = 4096;           // about this many blocks of the weight gradient

/* The weight gradient's tile rows are rs floats apart, rs = S (mod 32): the S x S taps of one
 * output pixel then fall in S * S different banks (S <= 5), so a warp reads them without conflicts. */
__host__ __device__ inline int row_stride(int Wp, int S) { return Wp + ((S - Wp % 32) % 32 + 32) % 32; }

/* One block per (image b, model k) = blockIdx.x = b * K + k: the padded image and the model's C
 * filters in shared memory; each thread makes C outputs of one pixel from its S x S window. */
template <int S>
__global__ void gconv1_fwd(const float *__restrict__ x, const float *__restrict__ w, const float *__restrict__ bias,
                           float *__restrict__ y, int K, int C, int H, int W, int pad) {
    extern __shared__ float sh[];
    const int Hp = H + 2 * pad, Wp = W + 2 * pad, Ho = Hp - S + 1, Wo = Wp - S + 1;
    float *tile = sh, *ws = sh + Hp * Wp, *bs = ws + C * S * S;
    const int bk = blockIdx.x, k = bk % K;
    const float *xi = x + (int64_t)bk * H * W;
    for (int q = threadIdx.x; q < Hp * Wp; q += blockDim.x) {
        int r = q / Wp - pad, c = q % Wp - pad;
        tile[q] = r >= 0 && r < H && c >= 0 && c < W ? xi[r * W + c] : 0.f;
    }
    for (int q = threadIdx.x; q < C * S * S; q += blockDim.x) ws[q] = w[(int64_t)k * C * S * S + q];
    for (int q = threadIdx.x; q < C; q += blockDim.x) bs[q] = bias ? bias[(int64_t)k * C + q] : 0.f;
    __syncthreads();
    float *yo = y + (int64_t)bk * C * Ho * Wo;   // (b, k*C + o, ., .)
    for (int p = threadIdx.x; p < Ho * Wo; p += blockDim.x) {
        const int r = p / Wo, c = p % Wo;
        float win[S * S];
#pragma unroll
        for (int i = 0; i < S; i++)
#pragma unroll
            for (int j = 0; j < S; j++) win[i * S + j] = tile[(r + i) * Wp + c + j];
        for (int o = 0; o < C; o++) {
            const float *wo = ws + o * S * S;
            float acc = 0.f;
#pragma unroll
            for (int t = 0; t < S * S; t++) acc = fmaf(win[t], wo[t], acc);
            yo[(int64_t)o * Ho * Wo + p] = acc + bs[o];
        }
    }
}

/* Partial weight and bias gradients of model k = blockIdx.x over the images of chunk blockIdx.y:
 * thread t < C * (S*S + 1) owns output channel o = t / (S*S + 1) and tap t % (S*S + 1) (the last:
 * the bias) and sums over the chunk's images, pixel by pixel in order. part (chunks, K, T). */
template <int S>
__global__ void gconv1_wgrad_part(const float *__restrict__ x, const float *__restrict__ gy, float *__restrict__ part,
                                  int B, int K, int C, int H, int W, int pad, int per) {
    extern __shared__ float tile[];
    const int Hp = H + 2 * pad, Wp = W + 2 * pad, Ho = Hp - S + 1, Wo = Wp - S + 1, rs = row_stride(Wp, S);
    const int k = blockIdx.x, T = C * (S * S + 1), t = threadIdx.x;
    const int o = t / (S * S + 1), tap = t % (S * S + 1), i = tap / S, j = tap % S;
    const int b0 = blockIdx.y * per, b1 = min(B, b0 + per);
    float acc = 0.f;
    for (int b = b0; b < b1; b++) {
        __syncthreads();   // the previous image's tile is read
        const float *xi = x + ((int64_t)b * K + k) * H * W;
        for (int q = t; q < Hp * Wp; q += blockDim.x) {
            int r = q / Wp, c = q % Wp, rr = r - pad, cc = c - pad;
            tile[r * rs + c] = rr >= 0 && rr < H && cc >= 0 && cc < W ? xi[rr * W + cc] : 0.f;
        }
        __syncthreads();
        if (t >= T) continue;
        const float *g = gy + (((int64_t)b * K + k) * C + o) * Ho * Wo;
        if (tap == S * S) {
            for (int p = 0; p < Ho * Wo; p++) acc += __ldg(g + p);
            continue;
        }
        for (int r = 0; r < Ho; r++) {
            const float *tr = tile + (r + i) * rs + j, *gr = g + r * Wo;
            for (int c = 0; c < Wo; c++) acc = fmaf(__ldg(gr + c), tr[c], acc);
        }
    }
    if (t < T) part[((int64_t)blockIdx.y * K + k) * T + t] = acc;
}

/* The chunks' partial sums in chunk order, into gw (K*C, 1, S, S) and gb (K*C). */
__global__ void gconv1_wgrad_sum(const float *__restrict__ part, float *__restrict__ gw, float *__restrict__ gb, int K,
                                 int C, int SS, int chunks) {
    const int T = C * (SS + 1);
    const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= (int64_t)K * T) return;
    float acc = 0.f;
    for (int ch = 0; ch < chunks; ch++) acc += part[(int64_t)ch * K * T + q];
    const int k = (int)(q / T), t = (int)(q % T), o = t / (SS + 1), tap = t % (SS + 1);
    if (tap < SS) gw[((int64_t)k * C + o) * SS + tap] = acc;
    else if (gb) gb[(int64_t)k * C + o] = acc;
}

/* Images per chunk and the chunk count of the weight gradient. */
void chunks(int64_t B, int64_t K, int64_t *per, int64_t *n) {
    int64_t want = kBlocks / (K > 0 ? K : 1);
    if (want < 1) want = 1;
    if (want > B) want = B;
    *per = (B + want - 1) / want;
    *n = (B + *per - 1) / *per;
}

int fwd_shared(int64_t C, int64_t S, int64_t H, int64_t W, int64_t pad) {
    return (int)(((H + 2 * pad) * (W + 2 * pad) + C * S * S + C) * sizeof(float));
}
int wgrad_shared(int64_t S, int64_t H, int64_t W, int64_t pad) {
    return (int)((H + 2 * pad) * row_stride((int)(W + 2 * pad), (int)S) * sizeof(float));
}

}  // namespace

extern "C" {

int pmi_gconv1_supported(int64_t C, int64_t S, int64_t H, int64_t W, int64_t pad) {
    if ((S != 3 && S != 5) || C < 1 || pad < 0 || pad >= S || H < 1 || W < 1 || H > 256 || W > 256) return 0;
    if (H + 2 * pad < S || W + 2 * pad < S || C * (S * S + 1) > 1024) return 0;
    return fwd_shared(C, S, H, W, pad) <= kMaxShared && wgrad_shared(S, H, W, pad) <= kMaxShared;
}

int pmi_gconv1_forward(const float *x, const float *w, const float *bias, float *y, int64_t B, int64_t K, int64_t C,
                       int64_t S, int64_t H, int64_t W, int64_t pad, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    dim3 grid((unsigned)(B * K));
    int sh = fwd_shared(C, S, H, W, pad);
    if (S == 3)
        gconv1_fwd<3><<<grid, kThreads, sh, st>>>(x, w, bias, y, (int)K, (int)C, (int)H, (int)W, (int)pad);
    else
        gconv1_fwd<5><<<grid, kThreads, sh, st>>>(x, w, bias, y, (int)K, (int)C, (int)H, (int)W, (int)pad);
    return (int)cudaGetLastError();
}

int64_t pmi_gconv1_scratch(int64_t B, int64_t K, int64_t C, int64_t S) {
    int64_t per, n;
    chunks(B, K, &per, &n);
    return n * K * C * (S * S + 1);
}

int pmi_gconv1_wgrad(const float *x, const float *gy, float *gw, float *gb, float *scratch, int64_t B, int64_t K,
                     int64_t C, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    int64_t per, n;
    chunks(B, K, &per, &n);
    int T = (int)(C * (S * S + 1)), threads = (T + 31) / 32 * 32;
    dim3 grid((unsigned)K, (unsigned)n);
    int sh = wgrad_shared(S, H, W, pad);
    if (S == 3)
        gconv1_wgrad_part<3><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, (int)K, (int)C, (int)H, (int)W, (int)pad,
                                                        (int)per);
    else
        gconv1_wgrad_part<5><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, (int)K, (int)C, (int)H, (int)W, (int)pad,
                                                        (int)per);
    int e = (int)cudaGetLastError();
    if (e) return e;
    int64_t outs = K * T;
    gconv1_wgrad_sum<<<(unsigned)((outs + 255) / 256), 256, 0, st>>>(scratch, gw, gb, (int)K, (int)C, (int)(S * S), (int)n);
    return (int)cudaGetLastError();
}

const char *pmi_cuda_error(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // extern "C"
