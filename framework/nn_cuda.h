/* CUDA kernels of the torch shim (framework/nn_cuda.cu), built only where nvcc is present
 * (the Makefile then defines PMI_CUDA_KERNELS); the CPU build and Debian's packages never see
 * them. Plain pointers and a cudaStream_t passed as void *, so that nvcc compiles the kernels
 * without torch's headers; nn_torch.cpp wraps them as autograd functions.
 *
 * The first convolution of a fused ensemble (docs/performance.md, "Where the time of a LeNet step
 * goes"): K models, each one input channel and C output channels of an S x S kernel, stride 1,
 * zero padding p, as one grouped convolution over (B, K, H, W). ATen runs that as a depthwise
 * convolution with kernels of its own (a third of a fused LeNet step on an H100); these are
 * written for it: one block per (image, model) for the forward pass, and the weight gradient
 * summed in a fixed order (partial sums per chunk of images, then the chunks in order), so a
 * step's numbers do not depend on scheduling. */
#ifndef PMI_NN_CUDA_H
#define PMI_NN_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the kernels take this shape (S in 1..7 odd or even, C * (S * S + 1) <= 1024, the padded
 * image in shared memory); 0 means: use ATen. */
int pmi_gconv1_supported(int64_t C, int64_t S, int64_t H, int64_t W, int64_t pad);

/* y (B, K*C, Ho, Wo) = the convolution of x (B, K, H, W) with w (K*C, 1, S, S) plus bias
 * (K*C, or NULL), Ho = H + 2 pad - S + 1. 0, or a CUDA error code. */
int pmi_gconv1_forward(const float *x, const float *w, const float *bias, float *y, int64_t B, int64_t K, int64_t C,
                       int64_t S, int64_t H, int64_t W, int64_t pad, void *stream);

/* The number of floats of scratch that pmi_gconv1_wgrad needs. */
int64_t pmi_gconv1_scratch(int64_t B, int64_t K, int64_t C, int64_t S);

/* gw (K*C, 1, S, S) and gb (K*C, or NULL) = the gradients of the weights and bias given gy
 * (B, K*C, Ho, Wo), the gradient of y, and x; scratch holds pmi_gconv1_scratch floats. */
int pmi_gconv1_wgrad(const float *x, const float *gy, float *gw, float *gb, float *scratch, int64_t B, int64_t K,
                     int64_t C, int64_t S, int64_t H, int64_t W, int64_t pad, void *stream);

/* The CUDA error's text. */
const char *pmi_cuda_error(int code);

#ifdef __cplusplus
}
#endif
#endif
