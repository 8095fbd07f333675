/* CUDA kernels of the torch shim: the convolutions of a fused ensemble, its ReLU + pooling, and
 * the random draws (nn_cuda.h says what and why). Compiled by nvcc without torch's headers where
 * the CUDA toolkit is present.
 *
 * Layouts (all contiguous): x (B, K*Ci, H, W), w (K*Co, Ci, S, S), bias (K*Co), y (B, K*Co, Ho, Wo)
 * with Ho = H + 2 pad - S + 1: image b's channels of model k start at (b*K + k)*Ci planes. */
#include "nn_cuda.h"
#include "philox.h"

#include <cuda_runtime.h>

namespace {

constexpr int kMaxShared = 48 * 1024;   // bytes of dynamic shared memory without opting in
constexpr int kThreads = 256;           // the forward and input-gradient blocks
constexpr int kG = 8;                   // output (input) channels per thread in the forward (input-gradient) pass

struct Shape {
    int K, Ci, Co, S, H, W, pad;
    __host__ __device__ int Hp() const { return H + 2 * pad; }
    __host__ __device__ int Wp() const { return W + 2 * pad; }
    __host__ __device__ int Ho() const { return H + 2 * pad - S + 1; }
    __host__ __device__ int Wo() const { return W + 2 * pad - S + 1; }
    __host__ __device__ int weights() const { return Co * Ci * S * S; }   // one model's
};

/* Image b's channels of model k (bk = b*K + k) into tile (Ci, Hp, rs), zero-padded: rows rs >= Wp apart. */
__device__ inline void load_padded(float *tile, const float *__restrict__ x, int64_t bk, const Shape &s, int rs) {
    const int Hp = s.Hp(), Wp = s.Wp();
    const float *xi = x + bk * s.Ci * s.H * s.W;
    for (int q = threadIdx.x; q < s.Ci * Hp * Wp; q += blockDim.x) {
        int c = q / (Hp * Wp), r = (q / Wp) % Hp - s.pad, cc = q % Wp - s.pad;
        tile[(c * Hp + r + s.pad) * rs + cc + s.pad] = r >= 0 && r < s.H && cc >= 0 && cc < s.W ? xi[(c * s.H + r) * s.W + cc] : 0.f;
    }
}

/* acc[g] += the S x S window at t0 (rows rs apart) times filter g, at w0 + g * step, for the
 * first n < kG filters; Flip: the filters turned by 180 degrees (the input gradient's). */
template <int S, bool Flip>
__device__ inline void window_dot(const float *t0, int rs, const float *w0, int step, int n, float *acc) {
    float win[S * S];
#pragma unroll
    for (int i = 0; i < S; i++)
#pragma unroll
        for (int j = 0; j < S; j++) win[i * S + j] = t0[i * rs + j];
#pragma unroll
    for (int g = 0; g < kG; g++) {
        if (g >= n) break;
        const float *wp = w0 + g * step;
#pragma unroll
        for (int t = 0; t < S * S; t++) acc[g] = fmaf(win[t], wp[Flip ? S * S - 1 - t : t], acc[g]);
    }
}

/* Forward: one block per (image, model) = blockIdx.x = b*K + k, the padded image and the model's
 * filters in shared memory; a thread makes kG output channels of one pixel, window by window. */
template <int S>
__global__ void gconv_fwd(const float *__restrict__ x, const float *__restrict__ w, const float *__restrict__ bias,
                          float *__restrict__ y, Shape s) {
    extern __shared__ float sh[];
    const int Hp = s.Hp(), Wp = s.Wp(), Wo = s.Wo(), P = s.Ho() * Wo, Ci = s.Ci, Co = s.Co;
    float *tile = sh, *ws = tile + Ci * Hp * Wp, *bs = ws + s.weights();
    const int64_t bk = blockIdx.x;
    const int k = (int)(bk % s.K);
    load_padded(tile, x, bk, s, Wp);
    for (int q = threadIdx.x; q < s.weights(); q += blockDim.x) ws[q] = w[(int64_t)k * s.weights() + q];
    for (int q = threadIdx.x; q < Co; q += blockDim.x) bs[q] = bias ? bias[(int64_t)k * Co + q] : 0.f;
    __syncthreads();
    float *yo = y + bk * Co * P;
    const int groups = (Co + kG - 1) / kG;
    for (int q = threadIdx.x; q < P * groups; q += blockDim.x) {
        const int p = q % P, o0 = q / P * kG, r = p / Wo, c = p % Wo;
        float acc[kG];
#pragma unroll
        for (int g = 0; g < kG; g++) acc[g] = 0.f;
        for (int ci = 0; ci < Ci; ci++)
            window_dot<S, false>(tile + (ci * Hp + r) * Wp + c, Wp, ws + (o0 * Ci + ci) * S * S, Ci * S * S, Co - o0, acc);
#pragma unroll
        for (int g = 0; g < kG; g++)
            if (o0 + g < Co) yo[(int64_t)(o0 + g) * P + p] = acc[g] + bs[o0 + g];
    }
}

/* Input gradient: gx[ci][y][x] = sum over o, i, j of gy[o][y + pad - i][x + pad - j] w[o][ci][i][j],
 * a correlation of gy, padded by S - 1 - pad, with the flipped filters. One block per (image,
 * model); a thread makes kG input channels of one pixel. */
template <int S>
__global__ void gconv_dgrad(const float *__restrict__ gy, const float *__restrict__ w, float *__restrict__ gx, Shape s) {
    extern __shared__ float sh[];
    const int Ho = s.Ho(), Wo = s.Wo(), q0 = S - 1 - s.pad, Hq = Ho + 2 * q0, Wq = Wo + 2 * q0, P = s.H * s.W;
    const int Ci = s.Ci, Co = s.Co;
    float *gt = sh, *ws = gt + Co * Hq * Wq;
    const int64_t bk = blockIdx.x;
    const int k = (int)(bk % s.K);
    const float *gi = gy + bk * Co * Ho * Wo;
    for (int q = threadIdx.x; q < Co * Hq * Wq; q += blockDim.x) {
        int o = q / (Hq * Wq), r = (q / Wq) % Hq - q0, c = q % Wq - q0;
        gt[q] = r >= 0 && r < Ho && c >= 0 && c < Wo ? gi[(o * Ho + r) * Wo + c] : 0.f;
    }
    for (int q = threadIdx.x; q < s.weights(); q += blockDim.x) ws[q] = w[(int64_t)k * s.weights() + q];
    __syncthreads();
    float *xo = gx + bk * Ci * P;
    const int groups = (Ci + kG - 1) / kG;
    for (int q = threadIdx.x; q < P * groups; q += blockDim.x) {
        const int p = q % P, c0 = q / P * kG, r = p / s.W, c = p % s.W;
        float acc[kG];
#pragma unroll
        for (int g = 0; g < kG; g++) acc[g] = 0.f;
        for (int o = 0; o < Co; o++)
            window_dot<S, true>(gt + (o * Hq + r) * Wq + c, Wq, ws + (o * Ci + c0) * S * S, S * S, Ci - c0, acc);
#pragma unroll
        for (int g = 0; g < kG; g++)
            if (c0 + g < Ci) xo[(int64_t)(c0 + g) * P + p] = acc[g];
    }
}

/* The weight gradient's partial sums, per model (blockIdx.x) and chunk of images (blockIdx.y),
 * into part (chunks, K, weights + Co): the weights in w's order, then the biases. */

/* One input channel (Ci = 1): thread t < Co*(S*S + 1) owns output channel t / (S*S + 1) and tap
 * t % (S*S + 1) (the last: the bias) and sums pixel by pixel in order. The tile's rows are rs
 * floats apart, rs = S (mod 32): a pixel's S x S taps fall in S*S different banks (S <= 5). */
__host__ __device__ inline int row_stride(int Wp, int S) { return Wp + ((S - Wp % 32) % 32 + 32) % 32; }

template <int S>
__global__ void gconv_wgrad1(const float *__restrict__ x, const float *__restrict__ gy, float *__restrict__ part, int B,
                             Shape s, int per) {
    extern __shared__ float tile[];
    const int Ho = s.Ho(), Wo = s.Wo(), rs = row_stride(s.Wp(), S), Co = s.Co;
    const int k = blockIdx.x, T = Co * (S * S + 1), t = threadIdx.x;
    const int o = t / (S * S + 1), tap = t % (S * S + 1), i = tap / S, j = tap % S;
    const int b0 = blockIdx.y * per, b1 = min(B, b0 + per);
    float acc = 0.f;
    for (int b = b0; b < b1; b++) {
        __syncthreads();   // the previous image's tile is read
        load_padded(tile, x, (int64_t)b * s.K + k, s, rs);
        __syncthreads();
        if (t >= T) continue;
        const float *g = gy + (((int64_t)b * s.K + k) * Co + o) * Ho * Wo;
        if (tap == S * S) {
            for (int p = 0; p < Ho * Wo; p++) acc += __ldg(g + p);
            continue;
        }
        for (int r = 0; r < Ho; r++) {
            const float *tr = tile + (r + i) * rs + j, *gr = g + r * Wo;
            for (int c = 0; c < Wo; c++) acc = fmaf(__ldg(gr + c), tr[c], acc);
        }
    }
    if (t < T) part[((int64_t)blockIdx.y * s.K + k) * (s.weights() + Co) + (tap < S * S ? o * S * S + tap : s.weights() + o)] = acc;
}

/* Several input channels: thread t < Co*Ci*S owns the row (o, ci, i) of S taps; thread
 * Co*Ci*S + o the bias of o. The image's padded channels and its gradient gy in shared memory. */
template <int S>
__global__ void gconv_wgrad(const float *__restrict__ x, const float *__restrict__ gy, float *__restrict__ part, int B,
                            Shape s, int per) {
    extern __shared__ float sh[];
    const int Hp = s.Hp(), Wp = s.Wp(), Wo = s.Wo(), P = s.Ho() * Wo, Ci = s.Ci, Co = s.Co;
    float *tile = sh, *gt = tile + Ci * Hp * Wp;
    const int k = blockIdx.x, rows = Co * Ci * S, t = threadIdx.x;
    const int o = t < rows ? t / (Ci * S) : t - rows, ci = t / S % Ci, i = t % S;
    const int b0 = blockIdx.y * per, b1 = min(B, b0 + per);
    float acc[S];
#pragma unroll
    for (int j = 0; j < S; j++) acc[j] = 0.f;
    for (int b = b0; b < b1; b++) {
        __syncthreads();
        const int64_t bk = (int64_t)b * s.K + k;
        load_padded(tile, x, bk, s, Wp);
        const float *gi = gy + bk * Co * P;
        for (int q = t; q < Co * P; q += blockDim.x) gt[q] = gi[q];
        __syncthreads();
        if (t < rows) {
            for (int r = 0; r < s.Ho(); r++) {
                const float *tr = tile + (ci * Hp + r + i) * Wp, *gr = gt + o * P + r * Wo;
                for (int c = 0; c < Wo; c++) {
                    const float g = gr[c];
#pragma unroll
                    for (int j = 0; j < S; j++) acc[j] = fmaf(g, tr[c + j], acc[j]);
                }
            }
        } else if (o < Co) {
            for (int p = 0; p < P; p++) acc[0] += gt[o * P + p];
        }
    }
    float *out = part + ((int64_t)blockIdx.y * s.K + k) * (s.weights() + Co);
    if (t < rows) {
#pragma unroll
        for (int j = 0; j < S; j++) out[((o * Ci + ci) * S + i) * S + j] = acc[j];
    } else if (o < Co) {
        out[s.weights() + o] = acc[0];
    }
}

/* The chunks' partial sums in chunk order, into gw (K*Co, Ci, S, S) and gb (K*Co). */
__global__ void wgrad_sum(const float *__restrict__ part, float *__restrict__ gw, float *__restrict__ gb, int K, int nw,
                          int Co, int chunks) {
    const int per = nw + Co;
    const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= (int64_t)K * per) return;
    float acc = 0.f;
    for (int ch = 0; ch < chunks; ch++) acc += part[(int64_t)ch * K * per + q];
    const int k = (int)(q / per), t = (int)(q % per);
    if (t < nw) gw[(int64_t)k * nw + t] = acc;
    else if (gb) gb[(int64_t)k * Co + t - nw] = acc;
}

Shape shape(int64_t K, int64_t Ci, int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad) {
    return Shape{(int)K, (int)Ci, (int)Co, (int)S, (int)H, (int)W, (int)pad};
}
int fwd_shared(const Shape &s) { return (int)((s.Ci * s.Hp() * s.Wp() + s.weights() + s.Co) * sizeof(float)); }
int dgrad_shared(const Shape &s) {
    int q0 = s.S - 1 - s.pad;
    return (int)((s.Co * (s.Ho() + 2 * q0) * (s.Wo() + 2 * q0) + s.weights()) * sizeof(float));
}
int wgrad_shared(const Shape &s) {
    if (s.Ci == 1) return (int)(s.Hp() * row_stride(s.Wp(), s.S) * sizeof(float));
    return (int)((s.Ci * s.Hp() * s.Wp() + s.Co * s.Ho() * s.Wo()) * sizeof(float));
}
int wgrad_threads(const Shape &s) {
    int t = s.Ci == 1 ? s.Co * (s.S * s.S + 1) : s.Co * s.Ci * s.S + s.Co;
    return (t + 31) / 32 * 32;
}

/* Images per chunk and the chunk count of the weight gradient: about 4096 blocks of one input
 * channel's small blocks, 1024 of the larger ones. */
void chunks(int64_t B, int64_t K, int64_t Ci, int64_t *per, int64_t *n) {
    int64_t want = (Ci == 1 ? 4096 : 1024) / (K > 0 ? K : 1);
    if (want < 1) want = 1;
    if (want > B) want = B;
    *per = (B + want - 1) / want;
    *n = (B + *per - 1) / *per;
}

/* Draws 4 b .. 4 b + 3 of stream s at step *t (philox.h), one thread per 4. */
__global__ void draws_kernel(float *__restrict__ out, int64_t n, uint64_t k, const uint64_t *__restrict__ t, uint32_t s, int normal) {
    int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (4 * b >= n) return;
    float v[4];
    pmi_draw4(k, *t, s, (uint64_t)b, normal, v);
    for (int i = 0; i < 4 && 4 * b + i < n; i++) out[4 * b + i] = v[i];
}

__global__ void draws_next(uint64_t *t) { *t += 1; }

/* ReLU then 2x2 max-pooling, one thread per output (planes of H x W, floor mode): the window is
 * scanned as ATen's max_pool2d scans it (rows, then columns; a larger value or a NaN replaces
 * the maximum), so the value is max_pool2d(relu(x))'s and pos the window position (0..3,
 * row-major) that gets the gradient, 4 where the maximum is <= 0 (relu's gradient is 0 there). */
__global__ void relu_pool_fwd(const float *__restrict__ x, float *__restrict__ y, uint8_t *__restrict__ pos, int64_t n,
                              int H, int W) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int H2 = H / 2, W2 = W / 2;
    const int64_t p = i / ((int64_t)H2 * W2);
    const int r = (int)(i / W2 % H2), c = (int)(i % W2);
    const float *r0 = x + (p * H + 2 * r) * W + 2 * c, *r1 = r0 + W;
    float m = r0[0], v;
    int q = 0;
    bool t;
    v = r0[1]; t = (v > m) || (v != v); m = t ? v : m; q = t ? 1 : q;
    v = r1[0]; t = (v > m) || (v != v); m = t ? v : m; q = t ? 2 : q;
    v = r1[1]; t = (v > m) || (v != v); m = t ? v : m; q = t ? 3 : q;
    const bool pass = !(m <= 0.f);   /* relu's: a NaN passes, as threshold_backward passes it */
    y[i] = pass ? m : 0.f;
    if (pos) pos[i] = (uint8_t)(pass ? q : 4);
}

/* The gradient of relu_pool_fwd's input, one thread per input element: its window's gradient
 * where pos names it, 0 elsewhere (and in the rows and columns that floor mode drops). */
__global__ void relu_pool_bwd(const float *__restrict__ gy, const uint8_t *__restrict__ pos, float *__restrict__ gx,
                              int64_t n, int H, int W) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int H2 = H / 2, W2 = W / 2;
    const int64_t p = i / ((int64_t)H * W);
    const int r = (int)(i / W % H), c = (int)(i % W);
    float g = 0.f;
    if (r < 2 * H2 && c < 2 * W2) {
        const int64_t o = (p * H2 + r / 2) * W2 + c / 2;
        if (pos[o] == (r % 2) * 2 + c % 2) g = gy[o];
    }
    gx[i] = g;
}

}  // namespace

extern "C" {

int pmi_gconv_supported(int64_t Ci, int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, int dgrad) {
    if ((S != 3 && S != 5) || Ci < 1 || Co < 1 || pad < 0 || pad >= S || H < 1 || W < 1 || H > 256 || W > 256) return 0;
    if (H + 2 * pad < S || W + 2 * pad < S || Ci * Co > 4096) return 0;
    Shape s = shape(1, Ci, Co, S, H, W, pad);
    return wgrad_threads(s) <= 1024 && fwd_shared(s) <= kMaxShared && (!dgrad || dgrad_shared(s) <= kMaxShared) &&
           wgrad_shared(s) <= kMaxShared;
}

int pmi_gconv_forward(const float *x, const float *w, const float *bias, float *y, int64_t B, int64_t K, int64_t Ci,
                      int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    Shape s = shape(K, Ci, Co, S, H, W, pad);
    dim3 grid((unsigned)(B * K));
    if (S == 3) gconv_fwd<3><<<grid, kThreads, fwd_shared(s), st>>>(x, w, bias, y, s);
    else gconv_fwd<5><<<grid, kThreads, fwd_shared(s), st>>>(x, w, bias, y, s);
    return (int)cudaGetLastError();
}

int pmi_gconv_dgrad(const float *gy, const float *w, float *gx, int64_t B, int64_t K, int64_t Ci, int64_t Co, int64_t S,
                    int64_t H, int64_t W, int64_t pad, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    Shape s = shape(K, Ci, Co, S, H, W, pad);
    dim3 grid((unsigned)(B * K));
    if (S == 3) gconv_dgrad<3><<<grid, kThreads, dgrad_shared(s), st>>>(gy, w, gx, s);
    else gconv_dgrad<5><<<grid, kThreads, dgrad_shared(s), st>>>(gy, w, gx, s);
    return (int)cudaGetLastError();
}

int64_t pmi_gconv_scratch(int64_t B, int64_t K, int64_t Ci, int64_t Co, int64_t S) {
    int64_t per, n;
    chunks(B, K, Ci, &per, &n);
    return n * K * (Co * Ci * S * S + Co);
}

int pmi_gconv_wgrad(const float *x, const float *gy, float *gw, float *gb, float *scratch, int64_t B, int64_t K, int64_t Ci,
                    int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    Shape s = shape(K, Ci, Co, S, H, W, pad);
    int64_t per, n;
    chunks(B, K, Ci, &per, &n);
    dim3 grid((unsigned)K, (unsigned)n);
    int threads = wgrad_threads(s), sh = wgrad_shared(s);
    if (Ci == 1) {
        if (S == 3) gconv_wgrad1<3><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, s, (int)per);
        else gconv_wgrad1<5><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, s, (int)per);
    } else {
        if (S == 3) gconv_wgrad<3><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, s, (int)per);
        else gconv_wgrad<5><<<grid, threads, sh, st>>>(x, gy, scratch, (int)B, s, (int)per);
    }
    int e = (int)cudaGetLastError();
    if (e) return e;
    int64_t outs = K * (s.weights() + Co);
    wgrad_sum<<<(unsigned)((outs + 255) / 256), 256, 0, st>>>(scratch, gw, gb, (int)K, s.weights(), (int)Co, (int)n);
    return (int)cudaGetLastError();
}

int pmi_draws(float *out, int64_t n, uint64_t k, const uint64_t *t, uint32_t s, int normal, void *stream) {
    if (n <= 0) return 0;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    unsigned blocks = (unsigned)(((n + 3) / 4 + kThreads - 1) / kThreads);
    draws_kernel<<<blocks, kThreads, 0, st>>>(out, n, k, t, s, normal);
    return (int)cudaGetLastError();
}

int pmi_draws_next(uint64_t *t, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    draws_next<<<1, 1, 0, st>>>(t);
    return (int)cudaGetLastError();
}

int pmi_relu_pool_forward(const float *x, float *y, uint8_t *pos, int64_t planes, int64_t H, int64_t W, void *stream) {
    int64_t n = planes * (H / 2) * (W / 2);
    if (n <= 0) return 0;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    relu_pool_fwd<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, st>>>(x, y, pos, n, (int)H, (int)W);
    return (int)cudaGetLastError();
}

int pmi_relu_pool_backward(const float *gy, const uint8_t *pos, float *gx, int64_t planes, int64_t H, int64_t W, void *stream) {
    int64_t n = planes * H * W;
    if (n <= 0) return 0;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    relu_pool_bwd<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, st>>>(gy, pos, gx, n, (int)H, (int)W);
    return (int)cudaGetLastError();
}

const char *pmi_cuda_error(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // extern "C"
