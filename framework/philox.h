/* The random draws of a training step (nn_train_params.grad_noise's Gaussian noise, adv_eps's
 * uniform PGD start), from a counter-based generator so that the CPU and a GPU make the same
 * numbers and a captured CUDA graph draws fresh ones at each replay without the host: Philox4x32-10
 * (J. Salmon, M. Moraes, R. Dror, D. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
 * written from the paper's definition and checked against its known-answer vectors
 * (tests/cuda_emu/check.cpp). GSL has no counter-based generator, and torch's CPU and CUDA
 * generators make different numbers, hence this header.
 *
 * Draw j of stream s (0: the PGD start; 1 + i: the noise of trainable tensor i) at step t (the
 * batches drawn so far) with key k is word j % 4 of Philox4x32-10 of the counter
 * (j / 4, s, t mod 2^32, t / 2^32) under the key (k mod 2^32, k / 2^32): uniform draws are its top
 * 24 bits over 2^24 (in [0, 1), exact in a float); normal draws pair words (0, 1) and (2, 3) by
 * Box-Muller in double precision, rounded to float. The doubles' log, sin and cos of the CPU's
 * libm and of CUDA may differ in the last place, so a float drawn on either may rarely differ by
 * one unit in the last place; the uniform draws are equal bit for bit.
 *
 * Included by the torch shim (nn_torch.cpp, the CPU's draws) and by nn_cuda.cu (the GPU's). */
#ifndef PMI_PHILOX_H
#define PMI_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PMI_HD __host__ __device__
#else
#define PMI_HD
#endif

/* out = Philox4x32-10(ctr, key) */
static inline PMI_HD void pmi_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0; c1 = (uint32_t)p1; c2 = n2; c3 = (uint32_t)p0;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Draws 4 b .. 4 b + 3 of stream s at step t under key k (the header's comment): uniform in
 * [0, 1) or standard normal. */
static inline PMI_HD void pmi_draw4(uint64_t k, uint64_t t, uint32_t s, uint64_t b, int normal, float v[4]) {
    const uint32_t ctr[4] = {(uint32_t)b, s, (uint32_t)t, (uint32_t)(t >> 32)}, key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t w[4];
    pmi_philox(ctr, key, w);
    if (!normal) {
        for (int i = 0; i < 4; i++) v[i] = (float)(w[i] >> 8) * (1.0f / 16777216.0f);
        return;
    }
    const double two32 = 1.0 / 4294967296.0, tau = 6.283185307179586476925286766559;
    for (int i = 0; i < 4; i += 2) {
        double u1 = ((double)w[i] + 0.5) * two32, u2 = ((double)w[i + 1] + 0.5) * two32;
        double r = sqrt(-2.0 * log(u1));
        v[i] = (float)(r * cos(tau * u2));
        v[i + 1] = (float)(r * sin(tau * u2));
    }
}

#endif
