/* CUDA kernels of the torch shim (framework/nn_cuda.cu), built only where nvcc is present
 * (the Makefile then defines PMI_CUDA_KERNELS); the CPU build and Debian's packages never see
 * them. Plain pointers and a cudaStream_t passed as void *, so that nvcc compiles the kernels
 * without torch's headers; nn_torch.cpp wraps them as an autograd function.
 *
 * The convolutions of a fused ensemble (docs/performance.md, "Where the time of a LeNet step
 * goes"): K models, each Ci input and Co output channels of an S x S kernel, stride 1, zero
 * padding pad, as one grouped convolution. ATen and cuDNN run those with kernels made for wide
 * layers (ATen's depthwise kernels for Ci = 1, cuDNN's grouped ones with layout conversions
 * otherwise): most of a fused LeNet step on an H100. These are written for the small ones: one
 * block per (image, model) for the forward pass and the input gradient, the model's filters and
 * the image in shared memory, and the weight gradient summed in a fixed order (partial sums per
 * chunk of images, then the chunks in order), so that a step's numbers do not depend on
 * scheduling.
 *
 * The ReLU and 2x2 max-pooling that follow each such convolution, as one kernel each way.
 *
 * And the random draws of a training step (philox.h), made on the GPU inside the captured step
 * instead of on the host before each replay. */
#ifndef PMI_NN_CUDA_H
#define PMI_NN_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the kernels take this shape (S 3 or 5; the image, its gradient and one model's filters
 * in shared memory), with the input's gradient too when dgrad; 0 means: use ATen. */
int pmi_gconv_supported(int64_t Ci, int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, int dgrad);

/* y (B, K*Co, Ho, Wo) = the convolution of x (B, K*Ci, H, W), model by model, with w (K*Co, Ci, S, S)
 * plus bias (K*Co, or NULL), Ho = H + 2 pad - S + 1. 0, or a CUDA error code. */
int pmi_gconv_forward(const float *x, const float *w, const float *bias, float *y, int64_t B, int64_t K, int64_t Ci,
                      int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream);

/* gx (B, K*Ci, H, W) = the gradient of x given gy (B, K*Co, Ho, Wo), the gradient of y. */
int pmi_gconv_dgrad(const float *gy, const float *w, float *gx, int64_t B, int64_t K, int64_t Ci, int64_t Co, int64_t S,
                    int64_t H, int64_t W, int64_t pad, void *stream);

/* The number of floats of scratch that pmi_gconv_wgrad needs. */
int64_t pmi_gconv_scratch(int64_t B, int64_t K, int64_t Ci, int64_t Co, int64_t S);

/* gw (K*Co, Ci, S, S) and gb (K*Co, or NULL) = the gradients of the weights and bias given gy and
 * x; scratch holds pmi_gconv_scratch floats. */
int pmi_gconv_wgrad(const float *x, const float *gy, float *gw, float *gb, float *scratch, int64_t B, int64_t K, int64_t Ci,
                    int64_t Co, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream);

/* The random draws of a training step on the GPU (philox.h says which): out[0 .. n) = draws
 * 0 .. n-1 of stream s at step *t (read on the GPU when the kernel runs, so that a captured CUDA
 * graph draws each replay's own) under key k, uniform in [0, 1) or standard normal (normal != 0). */
int pmi_draws(float *out, int64_t n, uint64_t k, const uint64_t *t, uint32_t s, int normal, void *stream);

/* *t += 1 on the GPU: the next step's draws. */
int pmi_draws_next(uint64_t *t, void *stream);

/* y (planes, H/2, W/2) = 2x2 max-pooling (stride 2, floor mode) of ReLU(x), x (planes, H, W), as
 * ATen's relu then max_pool2d make it, in one pass (a fused ensemble's ReLU + pooling after each
 * convolution: ATen's three kernels forward and three backward each read or write the whole
 * activation); pos (or NULL when no gradient is wanted) = the window position (0..3, row-major)
 * that gets each output's gradient, 4 for none (a window's maximum <= 0). */
int pmi_relu_pool_forward(const float *x, float *y, uint8_t *pos, int64_t planes, int64_t H, int64_t W, void *stream);

/* gx (planes, H, W) = the gradient of x given gy (planes, H/2, W/2) and pos: max_pool2d's and
 * relu's backward as ATen makes them (0 where no window sends one). */
int pmi_relu_pool_backward(const float *gy, const uint8_t *pos, float *gx, int64_t planes, int64_t H, int64_t W, void *stream);

/* The CUDA error's text. */
const char *pmi_cuda_error(int code);

#ifdef __cplusplus
}
#endif
#endif
