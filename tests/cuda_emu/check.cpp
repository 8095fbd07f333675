/* framework/nn_cuda.cu's convolution kernels, compiled for the CPU against cuda_runtime.h here,
 * against a plain convolution in double precision (forward, input gradient, weight and bias
 * gradients) for the shapes the fused ensembles give them: LeNet's conv1 and conv2 at 28 x 28 and
 * at 8 x 8 (test_gpu's images), the small CNN's conv1, and odd sizes. One TAP line per shape and
 * quantity; tests/test_cuda_emu.sh builds and runs it. And the training step's random draws
 * (philox.h): the generator against Philox4x32-10's known answers, the kernel against the host's
 * draws bit for bit, and their distribution. And the fused ReLU + 2x2 pooling against relu then
 * max_pool2d, bit for bit. */
#include "nn_cuda.h"
#include "philox.h"
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <random>
#include <cmath>
static int fails = 0;
static char shape_name[128];
static void cmp(const char *what, const std::vector<float> &a, const std::vector<double> &r) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, std::fabs(a[i] - r[i]) / (1 + std::fabs(r[i])));
    bool ok = worst < 1e-4;   /* NaN (a shared-memory read before its write) fails too */
    printf("%s - %s %s: %zu values within %.3g of the double-precision convolution (bound 1e-4)\n", ok ? "ok" : "not ok",
           shape_name, what, a.size(), worst);
    fails += !ok;
}
static void run(int B, int K, int Ci, int Co, int S, int H, int W, int pad) {
    snprintf(shape_name, sizeof shape_name, "B=%d K=%d Ci=%d Co=%d S=%d %dx%d pad=%d", B, K, Ci, Co, S, H, W, pad);
    bool dgrad = pmi_gconv_supported(Ci, Co, S, H, W, pad, 1);
    printf("%s - %s: the kernels take it (with the input gradient: %s)\n", pmi_gconv_supported(Ci, Co, S, H, W, pad, 0) ? "ok" : "not ok",
           shape_name, dgrad ? "yes" : "no");
    int Ho = H + 2 * pad - S + 1, Wo = W + 2 * pad - S + 1;
    std::mt19937 g(1);
    std::normal_distribution<float> n(0, 1);
    std::vector<float> x((size_t)B * K * Ci * H * W), w((size_t)K * Co * Ci * S * S), b((size_t)K * Co), gy((size_t)B * K * Co * Ho * Wo);
    for (auto *v : {&x, &w, &b, &gy}) for (auto &e : *v) e = n(g);
    auto X = [&](int bb, int k, int c, int r, int cc) -> double { r -= pad; cc -= pad; return r < 0 || r >= H || cc < 0 || cc >= W ? 0 : x[(((size_t)bb * K + k) * Ci + c) * H * W + r * W + cc]; };
    auto Wt = [&](int k, int o, int c, int i, int j) -> double { return w[((((size_t)k * Co + o) * Ci + c) * S + i) * S + j]; };
    std::vector<double> y(gy.size()), gx(x.size()), gw(w.size()), gb(b.size());
    for (int bb = 0; bb < B; bb++) for (int k = 0; k < K; k++) for (int o = 0; o < Co; o++) for (int r = 0; r < Ho; r++) for (int c = 0; c < Wo; c++) {
        double acc = b[k * Co + o];
        for (int ci = 0; ci < Ci; ci++) for (int i = 0; i < S; i++) for (int j = 0; j < S; j++) acc += X(bb, k, ci, r + i, c + j) * Wt(k, o, ci, i, j);
        size_t yi = (((size_t)bb * K + k) * Co + o) * Ho * Wo + r * Wo + c;
        y[yi] = acc;
        double gg = gy[yi];
        gb[k * Co + o] += gg;
        for (int ci = 0; ci < Ci; ci++) for (int i = 0; i < S; i++) for (int j = 0; j < S; j++) {
            gw[((((size_t)k * Co + o) * Ci + ci) * S + i) * S + j] += gg * X(bb, k, ci, r + i, c + j);
            int rr = r + i - pad, cc = c + j - pad;
            if (rr >= 0 && rr < H && cc >= 0 && cc < W) gx[(((size_t)bb * K + k) * Ci + ci) * H * W + rr * W + cc] += gg * Wt(k, o, ci, i, j);
        }
    }
    std::vector<float> yo(y.size()), gxo(gx.size()), gwo(gw.size()), gbo(gb.size()), scr(pmi_gconv_scratch(B, K, Ci, Co, S));
    pmi_gconv_forward(x.data(), w.data(), b.data(), yo.data(), B, K, Ci, Co, S, H, W, pad, nullptr);
    cmp("y", yo, y);
    if (dgrad) {
        pmi_gconv_dgrad(gy.data(), w.data(), gxo.data(), B, K, Ci, Co, S, H, W, pad, nullptr);
        cmp("gx", gxo, gx);
    }
    pmi_gconv_wgrad(x.data(), gy.data(), gwo.data(), gbo.data(), scr.data(), B, K, Ci, Co, S, H, W, pad, nullptr);
    cmp("gw", gwo, gw);
    cmp("gb", gbo, gb);
}
static void check(bool ok, const char *fmt, double a = 0, double b = 0) {
    printf("%s - ", ok ? "ok" : "not ok");
    printf(fmt, a, b);
    printf("\n");
    fails += !ok;
}

static void draws() {
    /* Random123's known-answer vectors of Philox4x32-10: counter, key, result */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    int right = 0;
    for (auto &v : kat) {
        uint32_t out[4];
        pmi_philox(v, v + 4, out);
        right += out[0] == v[6] && out[1] == v[7] && out[2] == v[8] && out[3] == v[9];
    }
    check(right == 3, "philox.h: Philox4x32-10 gives the %g known answers of 3", right);
    const int64_t n = 100003;   /* not a multiple of 4 */
    const uint64_t key = 0x9E3779B97F4A7C15ull * 51;
    for (int normal = 0; normal < 2; normal++) {
        uint64_t t = 41;
        std::vector<float> a(n), b(n), h(n);
        int e = pmi_draws(a.data(), n, key, &t, 3, normal, nullptr) | pmi_draws_next(&t, nullptr);
        e |= pmi_draws(b.data(), n, key, &t, 3, normal, nullptr);
        for (int64_t i = 0; i < n; i += 4) {
            float v[4];
            pmi_draw4(key, 41, 3, (uint64_t)(i / 4), normal, v);
            for (int j = 0; j < 4 && i + j < n; j++) h[i + j] = v[j];
        }
        int64_t same = 0, again = 0;
        double sum = 0, sq = 0, lo = 1e9, hi = -1e9;
        for (int64_t i = 0; i < n; i++) {
            same += a[i] == h[i];
            again += a[i] == b[i];
            sum += a[i]; sq += (double)a[i] * a[i]; lo = std::min(lo, (double)a[i]); hi = std::max(hi, (double)a[i]);
        }
        const char *kind = normal ? "normal" : "uniform";
        printf("# %s draws: mean %.5f, mean square %.5f, range [%.4f, %.4f]\n", kind, sum / n, sq / n, lo, hi);
        check(!e && same == n, normal ? "pmi_draws: %g normal draws of the kernel equal the host's (pmi_draw4) bit for bit, of %g"
                                      : "pmi_draws: %g uniform draws of the kernel equal the host's (pmi_draw4) bit for bit, of %g", (double)same, (double)n);
        check(t == 42 && again < 20, "pmi_draws_next: the next step draws others (%g of the values repeat; step %g)", (double)again, (double)t);
        if (normal)   /* mean 0 +- 4.5 sd (1 / sqrt(n)), mean square 1 +- 4.5 sd (sqrt(2 / n)) */
            check(std::fabs(sum / n) < 0.0143 && std::fabs(sq / n - 1) < 0.0202, "normal draws: mean %.4f and mean square %.4f of N(0, 1)'s 0 and 1", sum / n, sq / n);
        else          /* mean 1/2 +- 4.5 sd (sqrt(1/12 / n)), in [0, 1) */
            check(std::fabs(sum / n - 0.5) < 0.0042 && lo >= 0 && hi < 1, "uniform draws: mean %.4f in [0, 1) (largest %.6f)", sum / n, hi);
    }
}

/* pmi_relu_pool_forward / _backward against ATen's order written out: relu, then max_pool2d's
 * scan of each window over relu's outputs (the first maximum; a NaN wins), then max_pool2d's and
 * relu's backward (threshold_backward: no gradient where relu's output is <= 0). Values drawn
 * from a few levels so that ties, all-negative windows and zeros occur; two NaNs; an odd size
 * whose last row and column floor mode drops. Bit for bit. */
static void relu_pool(int planes, int H, int W) {
    const int H2 = H / 2, W2 = W / 2, n = planes * H * W, no = planes * H2 * W2;
    std::mt19937 rng(7 + H);
    std::vector<float> x(n), y(no), gy(no), gx(n, NAN), ry(no), rgx(n, 0.f);
    std::vector<uint8_t> pos(no);
    for (float &v : x) v = (float)((int)(rng() % 9) - 5) * 0.5f;   /* -2.5 .. 1.5 */
    x[3] = NAN; x[n / 2 + 1] = NAN;
    for (float &v : gy) v = (float)(rng() % 1000) / 1000.f + 0.5f;
    for (int p = 0; p < planes; p++)
        for (int r = 0; r < H2; r++)
            for (int c = 0; c < W2; c++) {
                float m = 0; int q = -1;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        float v = x[(p * H + 2 * r + i) * W + 2 * c + j];
                        v = v > 0.f || v != v ? v : 0.f;   /* relu; a NaN stays */
                        if (q < 0 || v > m || v != v) { m = v; q = i * 2 + j; }
                    }
                int o = (p * H2 + r) * W2 + c;
                ry[o] = m;
                if (m > 0.f || m != m) rgx[(p * H + 2 * r + q / 2) * W + 2 * c + q % 2] = gy[o];
            }
    int e = pmi_relu_pool_forward(x.data(), y.data(), pos.data(), planes, H, W, nullptr) |
            pmi_relu_pool_backward(gy.data(), pos.data(), gx.data(), planes, H, W, nullptr);
    std::vector<float> y2(no, -1.f);
    e |= pmi_relu_pool_forward(x.data(), y2.data(), nullptr, planes, H, W, nullptr);
    int same = 0, gsame = 0, nans = 0, nopos = 0;
    for (int i = 0; i < no; i++) {
        bool eq = (y[i] == ry[i] || (y[i] != y[i] && ry[i] != ry[i])) && (y2[i] == y[i] || (y2[i] != y2[i] && y[i] != y[i]));
        same += eq; nans += y[i] != y[i]; nopos += pos[i] == 4;
    }
    for (int i = 0; i < n; i++) gsame += gx[i] == rgx[i];
    char what[160];
    snprintf(what, sizeof what, "pmi_relu_pool_forward: %%g of %%g outputs are relu then max_pool2d's, bit for bit (%d planes of %d x %d)",
             planes, H, W);
    check(!e && same == no && nans >= 1 && nopos > 0, what, same, no);
    snprintf(what, sizeof what, "pmi_relu_pool_backward: %%g of %%g input gradients are max_pool2d's then relu's (%d x %d)", H, W);
    check(!e && gsame == n, what, gsame, n);
}

int main() {
    draws();
    relu_pool(6, 28, 28);   // LeNet's first pooling
    relu_pool(5, 10, 10);   // its second
    relu_pool(3, 7, 9);     // odd sides: the last row and column dropped
    run(3, 2, 1, 6, 5, 28, 28, 2);    // LeNet conv1
    run(3, 2, 6, 16, 5, 14, 14, 0);   // LeNet conv2
    run(3, 2, 1, 32, 3, 28, 28, 1);   // CNN conv1
    run(2, 3, 6, 16, 5, 4, 4, 2);     // LeNet conv2 on 8x8 images
    run(2, 3, 1, 6, 5, 8, 8, 2);      // LeNet conv1 on 8x8 images
    run(5, 2, 3, 5, 3, 9, 7, 1);      // odd shapes
    run(7, 200, 6, 16, 5, 4, 4, 2);   // many models: several images per chunk of the weight gradient (2, 2, 2, 1)
    run(7, 1500, 1, 6, 5, 4, 4, 2);   // the same with one input channel (3, 3, 1)
    /* too large for the shared memory, or not a size the kernels have: ATen's */
    printf("%s - the kernels refuse what they do not take (S = 7, 64 x 64 channels, a 256 x 256 image's input gradient)\n",
           !pmi_gconv_supported(1, 6, 7, 28, 28, 3, 0) && !pmi_gconv_supported(64, 64, 3, 14, 14, 1, 0) &&
           !pmi_gconv_supported(6, 16, 5, 256, 256, 0, 1) ? "ok" : "not ok");
    return fails != 0;
}
