/* nn_torch: the libtorch implementation of nn.h, the project's only C++.
 *
 * Layout: error plumbing (every extern "C" call runs inside guard(), which turns a C++
 * exception into NN_ETORCH plus a thread-local message); devices and data; the architecture
 * registry (one table of name, help, default width and factory; every model is a named
 * torch::nn::Sequential whose last module is the Linear classifier); the shared training
 * loop used by nn_train and nn_distill; the model modifications (pruning masks,
 * quantisation, noise, re-initialisation); parameter accessors.
 *
 * It builds against Debian's libtorch 1.13 (CPU) and PyTorch 2.x's CUDA libtorch, so it uses
 * only the stable torch::nn / torch::optim surface both share; CUDA-only calls sit behind
 * PMI_CUDA (defined by the Makefile when libtorch_cuda is linked). */
#include "nn.h"

#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#ifdef PMI_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#ifdef PMI_CUDA_KERNELS
#include "nn_cuda.h"
#endif
#include "philox.h"
#include <dlfcn.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace nnf = torch::nn::functional;

/* ---- errors ------------------------------------------------------------------------ */
namespace {
thread_local std::string g_error;

nn_status fail(nn_status s, const std::string &msg) {
    g_error = msg;
    return s;
}

/* Runs f, turning any exception into NN_ETORCH with its message (no backtrace). */
template <class F>
nn_status guard(const char *fn, F &&f) {
    try {
        return f();
    } catch (const c10::Error &e) {
        return fail(NN_ETORCH, std::string(fn) + ": " + e.what_without_backtrace());
    } catch (const std::exception &e) {
        return fail(NN_ETORCH, std::string(fn) + ": " + e.what());
    } catch (...) {
        return fail(NN_ETORCH, std::string(fn) + ": unknown C++ exception");
    }
}

/* Streams its arguments into one string. */
template <class... A>
std::string cat(const A &...a) {
    std::ostringstream os;
    (os << ... << a);
    return os.str();
}

/* Returns NN_EINVAL with the message cat(...) from the calling function when cond fails. */
#define NN_REQUIRE(cond, ...) \
    do { if (!(cond)) return fail(NN_EINVAL, cat(__VA_ARGS__)); } while (0)

/* A CPU generator seeded with seed: local, so the global generator is untouched. */
at::Generator cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

/* N(0, 1) of x's shape on x's device, drawn on the CPU from seed (the same on any device). */
torch::Tensor seeded_randn(const torch::Tensor &x, uint64_t seed) {
    return torch::randn(x.sizes(), cpu_generator(seed), torch::kFloat).to(x.device());
}

/* ---- name tables of nn.h's named choices, indexed by the enum value ---- */
const char *const kDeviceRequestNames[] = {"auto", "cpu", "cuda",  // nn_device_request
    "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4", "cuda:5", "cuda:6", "cuda:7",
    "cuda:8", "cuda:9", "cuda:10", "cuda:11", "cuda:12", "cuda:13", "cuda:14", "cuda:15"};
const char *const kOptimizerNames[] = {"sgd", "adam"};                  // nn_optimizer
const char *const kScheduleNames[] = {"none", "step", "cosine"};        // nn_schedule
const char *const kPrecisionNames[] = {"fp32", "bf16"};                  // nn_precision
const char *const kInputNames[] = {"none", "quantize", "noise", "blur", "shift", "flip"};                  // nn_input_transform
const char *const kOutputNames[] = {"none", "label", "topk", "round", "temperature", "rsigmoid", "noise"}; // nn_output_transform
static_assert(NN_WANT_CUDA == 2 && NN_WANT_CUDA_0 == 3 && NN_WANT_CUDA_MAX == NN_WANT_CUDA_0 + 15 && NN_ADAM == 1 && NN_SCHED_COSINE == 2 &&
              NN_BF16 == 1 && NN_IN_FLIP == 5 && NN_OUT_NOISE == 6, "name tables follow the enums in nn.h");

template <size_t N>
const char *table_name(const char *const (&names)[N], int i) { return i >= 0 && i < (int)N ? names[i] : nullptr; }

template <size_t N, class E>
int table_parse(const char *const (&names)[N], const char *s, E *out) {
    for (size_t i = 0; s && out && i < N; i++)
        if (!std::strcmp(names[i], s)) { *out = static_cast<E>(i); return 0; }
    return -1;
}

/* The CUDA device of this process: cuda:N in experiment.device, else 0 (with --gpus each
 * worker sees only its own GPU, as device 0, through CUDA_VISIBLE_DEVICES). */
int g_cuda_index = 0;

nn_status torch_device(nn_device dev, torch::Device *out) {
    if (dev == NN_CPU) { *out = torch::Device(torch::kCPU); return NN_OK; }
    if (dev != NN_CUDA) return fail(NN_EINVAL, cat("unknown nn_device ", dev));
    if (!torch::cuda::is_available())
        return fail(NN_EDEVICE, std::string("cuda requested but torch.cuda is not available (this libtorch: ")
                                    + TORCH_VERSION + ", built without CUDA or no GPU)");
    *out = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(g_cuda_index));
    return NN_OK;
}
}  // namespace

/* ---- data -------------------------------------------------------------------------- */
struct nn_data {
    torch::Tensor x;  // (n, c, h, w) float32 on the device
    torch::Tensor y;  // (n) int64 on the device
};

/* ---- architectures ---------------------------------------------------------------- */
namespace {
using torch::nn::Sequential;

struct Shape { int c, h, w, classes, width; };

int scaled(int base, int width, int ref) { return std::max(1, base * width / ref); }

torch::nn::Conv2d conv(int in, int out, int k, int stride, int pad, bool bias) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}

/* Number of features `body` produces for one input of shape s (a dry forward). */
int64_t flat_size(Sequential &body, const Shape &s) {
    torch::NoGradGuard ng;
    body->eval();
    int64_t n = body->forward(torch::zeros({1, s.c, s.h, s.w})).numel();
    body->train();
    return n;
}

/* 2x2 max-pooling with stride 2 (floor mode) on the CPU, as one pass over each plane. libtorch
 * 1.13's CPU kernel (max_pool2d_with_indices) took 5.7-6.5 ms for a LeNet's first pooling of 256
 * images on one core (docs/performance.md, "2x2 pooling"); two element-wise maxima of strided
 * slices took 0.27-0.41 ms forward, but their backward (a mask per window position, where, strided
 * copies) cost about as much as ATen's in a training step ("A pooling loop", same file). This
 * loop scans each window as max_pool2d does (rows, then columns; a larger value or a NaN replaces
 * the maximum), so values and the window position that gets the gradient (the first maximum; the
 * last NaN) are max_pool2d's bit for bit (test_nn.c: test_pool_matches_max_pool2d, ties included).
 * Training saves the position of each output's maximum instead of the input and the output. */
/* One window (rows r0, r1; column pair j) scanned as max_pool2d scans it. Branch-free, so that
 * the loops over j vectorise (`omp simd`; random maxima made a branching scan take 10 ns a window). */
template <typename T>
static inline void pool2_window(const T *r0, const T *r1, int64_t j, T *m_out, int32_t *q_out) {
    T m = r0[2 * j], v;
    int32_t q = 0;
    bool t;
    v = r0[2 * j + 1]; t = (v > m) | (v != v); m = t ? v : m; q = t ? 1 : q;
    v = r1[2 * j];     t = (v > m) | (v != v); m = t ? v : m; q = t ? 2 : q;
    v = r1[2 * j + 1]; t = (v > m) | (v != v); m = t ? v : m; q = t ? 3 : q;
    *m_out = m; *q_out = q;
}

/* y = the pooled planes of x (planes of h x w, floor mode); pos (when not NULL) = each window's
 * position that gets the gradient (0..3, row-major). */
template <typename T>
static void pool2_planes(const T *x, T *y, int32_t *pos, int64_t planes, int64_t h, int64_t w) {
    int64_t h2 = h / 2, w2 = w / 2;
    at::parallel_for(0, planes, 16, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++)
            for (int64_t i = 0; i < h2; i++) {
                const T *r0 = x + (p * h + 2 * i) * w, *r1 = r0 + w;
                T *yr = y + (p * h2 + i) * w2;
                int32_t *pr = pos ? pos + (p * h2 + i) * w2 : nullptr;
                if (pr) {
#pragma omp simd
                    for (int64_t j = 0; j < w2; j++) pool2_window(r0, r1, j, yr + j, pr + j);
                } else {
#pragma omp simd
                    for (int64_t j = 0; j < w2; j++) { int32_t q; pool2_window(r0, r1, j, yr + j, &q); }
                }
            }
    });
}

/* One row of windows' gradients: gr[j] to the position pr[j] of rows g0, g1; zero elsewhere. */
template <typename T>
static void pool2_row_backward(const T *gr, const int32_t *pr, T *g0, T *g1, int64_t w2) {
    for (int64_t j = 0; j < w2; j++) {
        T g = gr[j], z = T(0);
        g0[2 * j] = pr[j] == 0 ? g : z; g0[2 * j + 1] = pr[j] == 1 ? g : z;
        g1[2 * j] = pr[j] == 2 ? g : z; g1[2 * j + 1] = pr[j] == 3 ? g : z;
    }
}
/* The same for float as masks of the bits (the selects above compile to branches, which do not
 * vectorise): each gradient exactly, +0 elsewhere. */
typedef uint32_t float_bits __attribute__((may_alias));   /* a float's bits, read and written in place */
static void pool2_row_backward(const float *gr, const int32_t *pr, float *g0, float *g1, int64_t w2) {
    static_assert(sizeof(float) == sizeof(float_bits), "float is 32 bits");
    const float_bits *gb = reinterpret_cast<const float_bits *>(gr);
    float_bits *o0 = reinterpret_cast<float_bits *>(g0), *o1 = reinterpret_cast<float_bits *>(g1);
#pragma omp simd
    for (int64_t j = 0; j < w2; j++) {
        uint32_t q = (uint32_t)pr[j], g = gb[j];
        o0[2 * j] = g & (0u - (q == 0)); o0[2 * j + 1] = g & (0u - (q == 1));
        o1[2 * j] = g & (0u - (q == 2)); o1[2 * j + 1] = g & (0u - (q == 3));
    }
}

/* gx (planes of h x w) = the gradient go of the pooled planes sent to the positions pos; zero
 * elsewhere (the rows and columns that floor mode drops must be zero already). */
template <typename T>
static void pool2_planes_backward(const T *go, const int32_t *pos, T *gx, int64_t planes, int64_t h, int64_t w) {
    int64_t h2 = h / 2, w2 = w / 2;
    at::parallel_for(0, planes, 16, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++)
            for (int64_t i = 0; i < h2; i++) {
                T *g0 = gx + (p * h + 2 * i) * w;
                pool2_row_backward(go + (p * h2 + i) * w2, pos + (p * h2 + i) * w2, g0, g0 + w, w2);
            }
    });
}

static torch::Tensor pool2_cpu(const torch::Tensor &x_, torch::Tensor *pos) {
    torch::Tensor x = x_.contiguous();
    int64_t h = x.size(2), w = x.size(3), planes = x.size(0) * x.size(1);
    torch::Tensor y = torch::empty({x.size(0), x.size(1), h / 2, w / 2}, x.options());
    if (pos) *pos = torch::empty(y.sizes(), x.options().dtype(torch::kInt));
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "pool2", [&] {
        pool2_planes(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), pos ? pos->data_ptr<int32_t>() : nullptr, planes, h, w);
    });
    return y;
}

struct MaxPool2Fn : public torch::autograd::Function<MaxPool2Fn> {
    static torch::Tensor forward(torch::autograd::AutogradContext *ctx, const torch::Tensor &x) {
        torch::Tensor pos;
        torch::Tensor y = pool2_cpu(x, &pos);
        ctx->save_for_backward({pos});
        ctx->saved_data["h"] = x.size(2);
        ctx->saved_data["w"] = x.size(3);
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx, torch::autograd::variable_list g) {
        torch::Tensor pos = ctx->get_saved_variables()[0], go = g[0].contiguous();
        int64_t h = ctx->saved_data["h"].toInt(), w = ctx->saved_data["w"].toInt();
        std::vector<int64_t> shape = {pos.size(0), pos.size(1), h, w};
        torch::Tensor gx = h % 2 || w % 2 ? torch::zeros(shape, go.options()) : torch::empty(shape, go.options());
        AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, go.scalar_type(), "pool2_backward", [&] {
            pool2_planes_backward(go.data_ptr<scalar_t>(), pos.data_ptr<int32_t>(), gx.data_ptr<scalar_t>(),
                                  pos.size(0) * pos.size(1), h, w);
        });
        return {gx};
    }
};

/* MaxPool2d(2) whose CPU forward is MaxPool2Fn; on a GPU max_pool2d itself (cuDNN; what CUDA
 * graphs capture). A subclass, so that code asking for a MaxPool2dImpl (the fused ensembles,
 * unit_layers) finds it. PMI_POOL=aten at the model's creation keeps ATen's kernel on the CPU
 * too (test_nn.c compares the two; a benchmark's baseline). */
struct Pool2Impl : torch::nn::MaxPool2dImpl {
    bool aten;
    Pool2Impl() : torch::nn::MaxPool2dImpl(torch::nn::MaxPool2dOptions(2)) {
        const char *env = getenv("PMI_POOL");
        aten = env && !std::strcmp(env, "aten");
    }
    torch::Tensor forward(const torch::Tensor &x) {
        if (aten || x.is_cuda() || x.dim() != 4) return torch::nn::MaxPool2dImpl::forward(x);
        /* without a gradient to keep (evaluation), the values alone */
        return torch::GradMode::is_enabled() && x.requires_grad() ? MaxPool2Fn::apply(x) : pool2_cpu(x, nullptr);
    }
};
TORCH_MODULE(Pool2);

/* Appends a 2x2 max-pool when both spatial sides are at least 2, tracking the side sizes. */
void maybe_pool(Sequential &seq, const std::string &name, int *h, int *w) {
    if (*h < 2 || *w < 2) return;
    seq->push_back(std::string(name), Pool2());
    *h /= 2; *w /= 2;
}

Sequential make_mlp(const Shape &s) {
    Sequential seq;
    seq->push_back("flatten", torch::nn::Flatten());
    seq->push_back("fc1", torch::nn::Linear(s.c * s.h * s.w, s.width));
    seq->push_back("relu1", torch::nn::ReLU());
    seq->push_back("fc2", torch::nn::Linear(s.width, s.width));
    seq->push_back("relu2", torch::nn::ReLU());
    seq->push_back("fc", torch::nn::Linear(s.width, s.classes));
    return seq;
}

/* LeNet-5: conv1 is "same" (pad 2); conv2 is the classic unpadded 5x5 when its input is at
 * least 10 pixels a side (28x28 and 32x32 inputs), "same" below that (tiny inputs). */
Sequential make_lenet(const Shape &s) {
    int c1 = s.width, c2 = scaled(16, s.width, 6), h = s.h, w = s.w;
    Sequential seq;
    seq->push_back("conv1", conv(s.c, c1, 5, 1, 2, true));
    seq->push_back("relu1", torch::nn::ReLU());
    maybe_pool(seq, "pool1", &h, &w);
    int pad2 = std::min(h, w) >= 10 ? 0 : 2;
    seq->push_back("conv2", conv(c1, c2, 5, 1, pad2, true));
    seq->push_back("relu2", torch::nn::ReLU());
    h -= 4 - 2 * pad2;
    w -= 4 - 2 * pad2;
    maybe_pool(seq, "pool2", &h, &w);
    seq->push_back("flatten", torch::nn::Flatten());
    int64_t nf = flat_size(seq, s);
    seq->push_back("fc1", torch::nn::Linear(nf, 120));
    seq->push_back("relu3", torch::nn::ReLU());
    seq->push_back("fc2", torch::nn::Linear(120, 84));
    seq->push_back("relu4", torch::nn::ReLU());
    seq->push_back("fc", torch::nn::Linear(84, s.classes));
    return seq;
}

/* The small CNN conv32-conv64-fc128 (3x3 convs padded to keep the size, 2x2 pools). */
Sequential make_cnn(const Shape &s) {
    int c1 = s.width, c2 = 2 * s.width, h = s.h, w = s.w;
    Sequential seq;
    seq->push_back("conv1", conv(s.c, c1, 3, 1, 1, true));
    seq->push_back("relu1", torch::nn::ReLU());
    maybe_pool(seq, "pool1", &h, &w);
    seq->push_back("conv2", conv(c1, c2, 3, 1, 1, true));
    seq->push_back("relu2", torch::nn::ReLU());
    maybe_pool(seq, "pool2", &h, &w);
    seq->push_back("flatten", torch::nn::Flatten());
    seq->push_back("fc1", torch::nn::Linear(flat_size(seq, s), 128));
    seq->push_back("relu3", torch::nn::ReLU());
    seq->push_back("fc", torch::nn::Linear(128, s.classes));
    return seq;
}

/* VGG-11 with BatchNorm; a pool that would shrink a side below 1 is skipped. */
Sequential make_vgg11(const Shape &s) {
    const int cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};  // 0: max-pool
    Sequential seq;
    int in = s.c, h = s.h, w = s.w, nconv = 0, npool = 0;
    for (int v : cfg) {
        if (v == 0) { maybe_pool(seq, cat("pool", ++npool), &h, &w); continue; }
        int out = scaled(v, s.width, 64);
        std::string id = cat(++nconv);
        seq->push_back("conv" + id, conv(in, out, 3, 1, 1, false));
        seq->push_back("bn" + id, torch::nn::BatchNorm2d(out));
        seq->push_back("relu" + id, torch::nn::ReLU());
        in = out;
    }
    seq->push_back("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)));
    seq->push_back("flatten", torch::nn::Flatten());
    seq->push_back("fc", torch::nn::Linear(in, s.classes));
    return seq;
}

/* ResNet BasicBlock: two 3x3 conv+BN with an identity (or 1x1 conv+BN) shortcut. */
struct BasicBlockImpl : torch::nn::Module {
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    Sequential shortcut{nullptr};

    BasicBlockImpl(int in, int out, int stride) {
        conv1 = register_module("conv1", conv(in, out, 3, stride, 1, false));
        bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
        conv2 = register_module("conv2", conv(out, out, 3, 1, 1, false));
        bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
        if (stride != 1 || in != out) {
            Sequential sc;
            sc->push_back("conv", conv(in, out, 1, stride, 0, false));
            sc->push_back("bn", torch::nn::BatchNorm2d(out));
            shortcut = register_module("shortcut", sc);
        }
    }
    torch::Tensor forward(torch::Tensor x) {
        torch::Tensor y = torch::relu(bn1(conv1(x)));
        y = bn2(conv2(y));
        return torch::relu(y + (shortcut ? shortcut->forward(x) : x));
    }
};
TORCH_MODULE(BasicBlock);

/* ResNet-18, CIFAR variant: 3x3 stem, no max-pool, stages of two BasicBlocks. */
Sequential make_resnet18(const Shape &s) {
    Sequential seq;
    int in = scaled(64, s.width, 64);
    seq->push_back("conv1", conv(s.c, in, 3, 1, 1, false));
    seq->push_back("bn1", torch::nn::BatchNorm2d(in));
    seq->push_back("relu", torch::nn::ReLU());
    const int widths[] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; stage++) {
        int out = scaled(widths[stage], s.width, 64);
        for (int b = 0; b < 2; b++) {
            std::string name = cat("layer", stage + 1, "_", b);
            seq->push_back(std::move(name), BasicBlock(in, out, stage > 0 && b == 0 ? 2 : 1));
            in = out;
        }
    }
    seq->push_back("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)));
    seq->push_back("flatten", torch::nn::Flatten());
    seq->push_back("fc", torch::nn::Linear(in, s.classes));
    return seq;
}

struct Arch {
    const char *name, *help;
    int default_width;
    Sequential (*make)(const Shape &);
    /* models a GPU batch trains at once by default (nn_arch_batch): 128 where measured faster than
     * 64 (the paper-scale fingerprint and ablation-power experiments, LeNets with MLP independents,
     * docs/performance.md); 64 where 128 was not measured */
    int batch;
};

const Arch kArchs[] = {
    {"mlp", "flatten -> width (256) -> ReLU -> width -> ReLU -> classes", 256, make_mlp, 128},
    {"lenet", "LeNet-5: conv5x5 width (6) -> pool -> conv5x5 16*width/6 -> pool -> fc120 -> fc84 -> classes",
     6, make_lenet, 128},
    {"cnn", "small CNN: conv3x3 width (32) -> pool -> conv3x3 2*width -> pool -> fc128 -> classes", 32,
     make_cnn, 64},
    {"vgg11", "VGG-11 with BatchNorm, base channels width (64), adaptive avg-pool, linear classifier", 64,
     make_vgg11, 64},
    {"resnet18", "ResNet-18 (CIFAR variant: 3x3 stem, no max-pool), base channels width (64)", 64,
     make_resnet18, 64},
};
const int kNumArchs = sizeof kArchs / sizeof kArchs[0];

const Arch *find_arch(const char *name) {
    for (const Arch &a : kArchs)
        if (name && std::strcmp(a.name, name) == 0) return &a;
    return nullptr;
}

std::string arch_list() {
    std::string s;
    for (const Arch &a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
    return s;
}
}  // namespace

/* ---- model ------------------------------------------------------------------------- */
struct nn_model {
    nn_model_spec spec;                   // spec.arch points at arch below
    std::string arch;
    torch::Device device{torch::kCPU};
    Sequential net{nullptr};
    std::vector<torch::Tensor> params;    // registration order; the classifier's weight, bias last
    std::vector<std::string> names;
    std::vector<torch::Tensor> masks;     // per parameter; defined only for pruned tensors
    int last_first = 0;                   // index of the classifier's weight
    std::vector<torch::Tensor> state;     // parameters then buffers (handles into net)
    std::vector<std::string> state_names; // their PyTorch state_dict names
    nn_interface iface{};                 // what evaluation does to queries and answers (none: zeros)
};

namespace {
bool prunable(const torch::Tensor &t) { return t.dim() >= 2; }

/* Re-applies the pruning masks so that pruned weights are exactly zero. */
void apply_masks(nn_model *m) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < m->params.size(); i++)
        if (m->masks[i].defined()) m->params[i].mul_(m->masks[i]);
}

/* Masks that keep all but the k smallest |w| of the given tensors ranked together; ties
 * are broken by position (stable sort), so exactly k weights are removed. */
void prune_group(nn_model *m, const std::vector<size_t> &group, double sparsity) {
    std::vector<torch::Tensor> flat;
    for (size_t i : group) flat.push_back(m->params[i].detach().abs().flatten());
    torch::Tensor all = torch::cat(flat);
    int64_t k = std::llround(sparsity * static_cast<double>(all.numel()));
    torch::Tensor keep = torch::ones_like(all);
    if (k > 0) keep.index_fill_(0, std::get<1>(torch::sort(all, true, 0, false)).slice(0, 0, k), 0.0);
    int64_t off = 0;
    for (size_t i : group) {
        torch::Tensor &w = m->params[i];
        torch::Tensor mask = keep.slice(0, off, off + w.numel()).view_as(w).clone();
        off += w.numel();
        m->masks[i] = m->masks[i].defined() ? m->masks[i] * mask : mask;
    }
}

std::vector<size_t> prunable_indices(const nn_model *m) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < m->params.size(); i++)
        if (prunable(m->params[i])) idx.push_back(i);
    return idx;
}

nn_status check_data(const nn_model *m, const nn_data *d, const char *fn) {
    NN_REQUIRE(m && d, fn, ": model or data is NULL");
    const nn_model_spec &s = m->spec;
    auto x = d->x.sizes();
    NN_REQUIRE(x[1] == s.c && x[2] == s.h && x[3] == s.w, fn, ": data samples are ", x[1], "x", x[2], "x",
               x[3], " but the model expects ", s.c, "x", s.h, "x", s.w);
    NN_REQUIRE(d->x.device() == m->device, fn, ": data is on ", d->x.device().str(), ", model on ",
               m->device.str());
    return NN_OK;
}

/* Validates labels once per call (one host sync): out-of-range labels would be a device assert. */
nn_status check_labels(const nn_model *m, const nn_data *d, const char *fn) {
    if (d->y.numel() == 0) return NN_OK;
    int64_t lo = d->y.min().item<int64_t>(), hi = d->y.max().item<int64_t>();
    NN_REQUIRE(lo >= 0 && hi < m->spec.classes, fn, ": labels span [", lo, ", ", hi, "] but the model has ",
               m->spec.classes, " classes");
    return NN_OK;
}
}  // namespace

/* ---- training ---------------------------------------------------------------------- */
namespace {
/* A step's loss on its batch x, y (rows idx of the training data, for losses that keep per-sample
 * targets of their own: a distillation's cached teacher logits). */
using LossFn = std::function<torch::Tensor(const torch::Tensor &x, const torch::Tensor &y, const torch::Tensor &idx)>;

/* The scope of a training forward pass under nn_train_params.precision: NN_BF16 autocasts
 * convolutions and matrix products on the device of x to bfloat16 (what torch.autocast does
 * from Python); the caller takes the logits back to fp32 for the loss. The cast cache is off:
 * a CUDA graph replays its captured casts, so it must not capture casts of cached weights. */
struct Autocast {
    bool on;
    c10::DeviceType dev;
    bool was_on = false, was_cache = true;
    Autocast(nn_precision p, const torch::Tensor &x) : on(p == NN_BF16), dev(x.device().type()) {
        if (!on) return;
        was_cache = at::autocast::is_autocast_cache_enabled();
        at::autocast::set_autocast_cache_enabled(false);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        was_on = at::autocast::is_autocast_enabled(dev);
        at::autocast::set_autocast_dtype(dev, at::kBFloat16);
        at::autocast::set_autocast_enabled(dev, true);
#else
        if (dev == c10::DeviceType::CUDA) {
            was_on = at::autocast::is_enabled();
            at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
            at::autocast::set_enabled(true);
        } else {
            was_on = at::autocast::is_cpu_enabled();
            at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
            at::autocast::set_cpu_enabled(true);
        }
#endif
    }
    ~Autocast() {
        if (!on) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        at::autocast::set_autocast_enabled(dev, was_on);
#else
        if (dev == c10::DeviceType::CUDA) at::autocast::set_enabled(was_on);
        else at::autocast::set_cpu_enabled(was_on);
#endif
        at::autocast::set_autocast_cache_enabled(was_cache);
    }
};

/* Sets requires_grad=false on every parameter before `first` and restores the flags on exit. */
struct FreezeGuard {
    std::vector<torch::Tensor> &params;
    std::vector<bool> saved;
    FreezeGuard(std::vector<torch::Tensor> &p, size_t first) : params(p) {
        for (size_t i = 0; i < p.size(); i++) {
            saved.push_back(p[i].requires_grad());
            if (i < first) p[i].set_requires_grad(false);
        }
    }
    ~FreezeGuard() {
        for (size_t i = 0; i < params.size(); i++) {
            params[i].set_requires_grad(saved[i]);
            params[i].mutable_grad() = torch::Tensor();
        }
    }
};

/* An optimizer state's key: the TensorImpl's address in libtorch 2.x, its text in 1.13. */
template <class Map, std::enable_if_t<std::is_pointer_v<typename Map::key_type>, int> = 0>
typename Map::key_type state_key(const Map &, c10::TensorImpl *p) { return p; }
template <class Map, std::enable_if_t<!std::is_pointer_v<typename Map::key_type>, int> = 0>
std::string state_key(const Map &, c10::TensorImpl *p) { std::ostringstream s; s << p; return s.str(); }

/* libtorch's SGD, its step over all parameters at once: torch::optim::SGD::step launches two to
 * four kernels per parameter (ResNet-18's 62: about 200 launches a step), where PyTorch from
 * Python runs multi-tensor kernels (`foreach`, its default on a GPU); the trace of ResNet-18 NHWC
 * on an H100 (docs/performance.md) showed them as pmi's largest extra kernels after the first
 * layer's. The same arithmetic in the same order: on the CPU the _foreach ops run each tensor's op
 * in turn, bit for bit libtorch's step. A step where a parameter has no momentum buffer yet (the
 * first) is libtorch's, which creates them. PMI_FOREACH_SGD=0 steps with libtorch's SGD
 * (tests/test_nn.c compares). */
struct ForeachSGD : torch::optim::SGD {
    using torch::optim::SGD::SGD;
    torch::Tensor step(LossClosure closure = nullptr) override {
        torch::NoGradGuard ng;
        std::vector<std::vector<torch::Tensor>> ps(param_groups_.size()), gs(ps.size()), bufs(ps.size());
        for (size_t i = 0; i < param_groups_.size(); i++) {   /* every buffer found before any step */
            auto &o = static_cast<torch::optim::SGDOptions &>(param_groups_[i].options());
            for (auto &t : param_groups_[i].params()) {
                if (!t.grad().defined()) continue;
                if (o.momentum() != 0) {
                    auto it = state_.find(state_key(state_, t.unsafeGetTensorImpl()));
                    if (it == state_.end()) return torch::optim::SGD::step(closure);
                    bufs[i].push_back(static_cast<torch::optim::SGDParamState &>(*it->second).momentum_buffer());
                }
                ps[i].push_back(t.data());
                gs[i].push_back(t.grad().data());
            }
        }
        for (size_t i = 0; i < param_groups_.size(); i++) {
            if (ps[i].empty()) continue;
            auto &o = static_cast<torch::optim::SGDOptions &>(param_groups_[i].options());
            std::vector<torch::Tensor> d = gs[i];
            if (o.weight_decay() != 0) d = at::_foreach_add(d, ps[i], o.weight_decay());
            if (o.momentum() != 0) {
                at::_foreach_mul_(bufs[i], o.momentum());
                at::_foreach_add_(bufs[i], d, 1 - o.dampening());
                d = o.nesterov() ? at::_foreach_add(d, bufs[i], o.momentum()) : bufs[i];
            }
            at::_foreach_add_(ps[i], d, -1 * o.lr());
        }
        return {};
    }
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const nn_train_params *p,
                                                        const std::vector<torch::Tensor> &ps) {
    if (p->optimizer == NN_ADAM)
        return std::make_unique<torch::optim::Adam>(ps, torch::optim::AdamOptions(p->lr).weight_decay(p->weight_decay));
    auto o = torch::optim::SGDOptions(p->lr).momentum(p->momentum).weight_decay(p->weight_decay);
    const char *fe = getenv("PMI_FOREACH_SGD");
    if (fe && !strcmp(fe, "0")) return std::make_unique<torch::optim::SGD>(ps, o);
    return std::make_unique<ForeachSGD>(ps, o);
}

/* The epoch's learning rate under p's schedule (epoch counts from 0). */
double scheduled_lr(const nn_train_params *p, int epoch) {
    if (p->schedule == NN_SCHED_STEP) return p->lr * std::pow(p->gamma, epoch / p->step_size);
    if (p->schedule == NN_SCHED_COSINE) return p->lr * 0.5 * (1.0 + std::cos(M_PI * epoch / p->epochs));
    return p->lr;
}

void set_lr(torch::optim::Optimizer &opt, nn_optimizer kind, double lr) {
    for (auto &g : opt.param_groups()) {
        if (kind == NN_ADAM) static_cast<torch::optim::AdamOptions &>(g.options()).lr(lr);
        else static_cast<torch::optim::SGDOptions &>(g.options()).lr(lr);
    }
}

nn_status check_train_params(const nn_train_params *p, const char *fn) {
    NN_REQUIRE(p, fn, ": params are NULL");
    NN_REQUIRE(nn_optimizer_name(p->optimizer), fn, ": unknown optimizer ", p->optimizer);
    NN_REQUIRE(p->lr > 0 && p->momentum >= 0 && p->weight_decay >= 0, fn, ": need lr > 0, momentum >= 0, "
               "weight_decay >= 0");
    NN_REQUIRE(p->epochs >= 0 && p->batch_size >= 1, fn, ": need epochs >= 0 and batch_size >= 1");
    NN_REQUIRE(nn_schedule_name(p->schedule), fn, ": unknown schedule ", p->schedule);
    NN_REQUIRE(nn_precision_name(p->precision), fn, ": unknown precision ", p->precision);
    NN_REQUIRE(p->schedule != NN_SCHED_STEP || (p->step_size >= 1 && p->gamma > 0),
               fn, ": step schedule needs step_size >= 1 and gamma > 0");
    NN_REQUIRE(p->trainable == NN_TRAIN_ALL || p->trainable == NN_TRAIN_LAST, fn, ": unknown trainable ",
               p->trainable);
    NN_REQUIRE(p->label_smoothing >= 0 && p->label_smoothing < 1 && p->flood >= 0 && p->clip >= 0 && p->grad_noise >= 0 &&
               p->adv_eps >= 0 && (p->adv_eps == 0 || p->adv_steps >= 1),
               fn, ": need label_smoothing in [0, 1), flood, clip, grad_noise, adv_eps >= 0 and adv_steps >= 1 with adv_eps");
    return NN_OK;
}

/* nn_train_params.channels_last for the scope: the model's 4-D parameters (convolution weights)
 * in NHWC layout, so that cuDNN runs its NHWC kernels (on an H100, PyTorch's VGG-11 and ResNet-18
 * trained 1.3x and 1.6x faster so, one run each); the standard layout again after, for evaluation and export. The
 * optimizer's state, made from the parameters, follows their layout. */
struct Layout {
    nn_model *m;
    bool on;
    Layout(nn_model *mm, bool channels_last) : m(mm), on(channels_last) { set(at::MemoryFormat::ChannelsLast); }
    ~Layout() { set(at::MemoryFormat::Contiguous); }
    void set(at::MemoryFormat f) {
        if (!on) return;
        torch::NoGradGuard ng;
        for (torch::Tensor &p : m->params)
            if (p.dim() == 4) p.set_data(p.data().contiguous(f));
    }
};

/* x (N, C, H, W) in channels-last strides. With one channel both layouts hold the same bytes and
 * contiguous(ChannelsLast) returns x with its NCHW strides, from which cuDNN picks its NCHW kernels
 * for the first convolution and batch norm and converts their output: in the trace of ResNet-18 NHWC
 * on an H100 (docs/performance.md) those were pmi's largest extra kernels against Python, which
 * converts its images with .to(memory_format=channels_last). A view with the NHWC strides: no copy. */
torch::Tensor to_channels_last(const torch::Tensor &x) {
    if (x.size(1) == 1 && x.is_contiguous())
        return x.as_strided(x.sizes(), {x.size(2) * x.size(3), 1, x.size(3), 1});
    return x.contiguous(at::MemoryFormat::ChannelsLast);
}

/* Draws 0 .. n-1 of philox.h's stream s at step t under key into p, on the host: on the intra-op
 * threads when parallel. */
void philox_fill(float *p, int64_t n, uint64_t key, uint32_t s, uint64_t t, bool normal, bool parallel) {
    auto fill = [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; b++) {
            float v[4];
            pmi_draw4(key, t, s, (uint64_t)b, normal, v);
            for (int64_t i = 0; i < 4 && 4 * b + i < n; i++) p[4 * b + i] = v[i];
        }
    };
    if (parallel) at::parallel_for(0, (n + 3) / 4, 4096, fill);
    else fill(0, (n + 3) / 4);
}

/* One optimizer step on the batch `idx` (its last dimension indexes the batch: (bs) for one
 * model, (K, bs) for a fused ensemble): forward, backward, optimizer step, masks. Returns the
 * batch's mean loss, detached: a scalar, or (K) for an ensemble. The caller zeroes the grads. */
using StepFn = std::function<torch::Tensor(const torch::Tensor &idx)>;

/* The random draws of a training step (nn_train_params.adv_eps's PGD start, grad_noise's
 * noise): philox.h's counter-based draws of the step's count under a key from the seed, so that
 * the CPU and a GPU train with the same numbers. On a GPU with pmi's CUDA kernels (nn_cuda.h) the
 * step draws them itself on the GPU, reading the step count from GPU memory, so that a captured
 * step draws each replay's own without the host (PMI_DEVICE_DRAWS=0 turns that off); otherwise
 * feed(bs) draws the next batch's on the host, and on a GPU a full batch's go into device tensors
 * of fixed addresses (through pinned memory, without a host synchronisation) that a captured
 * step reads. */
using FeedFn = std::function<void(int64_t bs)>;
struct Draws {
    nn_model *m = nullptr;
    std::vector<int64_t> sample;        /* one image's shape (C, H, W), for the PGD start */
    double eps = 0, noise = 0;          /* draws wanted: eps > 0, noise > 0 */
    int64_t full = 0;                   /* the batch size whose buffers stay fixed */
    uint64_t key = 0, counter = 0;      /* the draws' key; batches drawn so far (host draws) */
    std::vector<torch::Tensor> trainable;
    torch::Tensor start;                /* U(0, 1) of the batch's images' shape (stream 0) */
    std::vector<torch::Tensor> gnoise;  /* N(0, 1) per trainable parameter (stream 1 + i) */
    torch::Tensor start_fixed, start_tail;
    std::vector<torch::Tensor> gnoise_fixed;
    torch::Tensor steps;                /* the step count in GPU memory (GPU draws) */
    bool gpu = false;                   /* the step draws on the GPU (pmi_draws), not fed from the host */

    bool wanted() const { return eps > 0 || noise > 0; }
    /* whether m's steps draw on the GPU: with pmi's kernels on a GPU, unless PMI_DEVICE_DRAWS=0 */
    static bool gpu_draws(const nn_model *m) {
#ifdef PMI_CUDA_KERNELS
        const char *env = getenv("PMI_DEVICE_DRAWS");
        return m->device.is_cuda() && !(env && !strcmp(env, "0"));
#else
        (void)m;
        return false;
#endif
    }
    std::vector<int64_t> start_shape(int64_t bs) const {
        std::vector<int64_t> shape{bs};
        shape.insert(shape.end(), sample.begin(), sample.end());
        return shape;
    }
    /* philox.h's draws of stream s at step t into n floats at p, on the host: on the intra-op
     * threads for a CPU model (they train it), on this thread for a GPU's (an OpenMP team there
     * competes with the permutation workers: 5 ms a LeNet step on an H100's host, 1 ms alone) */
    void host_fill(float *p, int64_t n, uint32_t s, uint64_t t, bool normal) const {
        philox_fill(p, n, key, s, t, normal, !m->device.is_cuda());
    }
    /* a host draw on the model's device: copied into fixed for a full batch, a fresh tensor
     * for the shorter last one */
    torch::Tensor put(const torch::Tensor &host, torch::Tensor &fixed, bool full_batch) const {
        if (!m->device.is_cuda()) return host;
        if (!full_batch) return host.to(m->device, /*non_blocking=*/true);
        if (!fixed.defined()) fixed = torch::empty_like(host, torch::TensorOptions().device(m->device));
        fixed.copy_(host, /*non_blocking=*/true);
        return fixed;
    }
    void feed(int64_t bs) {
        if (gpu) return draw_on_gpu(bs);
        auto opt = torch::TensorOptions().dtype(torch::kFloat).pinned_memory(m->device.is_cuda());
        bool full_batch = bs == full;
        if (eps > 0) {
            torch::Tensor h = torch::empty(start_shape(bs), opt);
            host_fill(h.data_ptr<float>(), h.numel(), 0, counter, false);
            start = put(h, start_fixed, full_batch);
        }
        if (noise > 0) {
            gnoise.resize(trainable.size());
            gnoise_fixed.resize(trainable.size());
            for (size_t i = 0; i < trainable.size(); i++) {
                torch::Tensor h = torch::empty(trainable[i].sizes(), opt);
                host_fill(h.data_ptr<float>(), h.numel(), (uint32_t)(1 + i), counter, true);
                gnoise[i] = put(h, gnoise_fixed[i], full_batch);
            }
        }
        counter++;
    }
    /* the step's draws by pmi_draws on the current stream into tensors that stay (a captured step
     * writes and reads the same), then the step count's increment */
    void draw_on_gpu(int64_t bs) {
#ifdef PMI_CUDA_KERNELS
        auto opt = torch::TensorOptions().dtype(torch::kFloat).device(m->device);
        void *stream = c10::cuda::getCurrentCUDAStream().stream();
        if (!steps.defined()) steps = torch::zeros({1}, torch::TensorOptions().dtype(torch::kLong).device(m->device));
        uint64_t *t = reinterpret_cast<uint64_t *>(steps.data_ptr<int64_t>());
        int e = 0;
        if (eps > 0) {
            torch::Tensor &buf = bs == full ? start_fixed : start_tail;
            if (!buf.defined() || buf.size(0) != bs) buf = torch::empty(start_shape(bs), opt);
            e |= pmi_draws(buf.data_ptr<float>(), buf.numel(), key, t, 0, 0, stream);
            start = buf;
        }
        if (noise > 0) {
            gnoise_fixed.resize(trainable.size());
            for (size_t i = 0; i < trainable.size(); i++) {
                if (!gnoise_fixed[i].defined()) gnoise_fixed[i] = torch::empty(trainable[i].sizes(), opt);
                e |= pmi_draws(gnoise_fixed[i].data_ptr<float>(), gnoise_fixed[i].numel(), key, t, (uint32_t)(1 + i), 1, stream);
            }
            gnoise = gnoise_fixed;
        }
        e |= pmi_draws_next(t, stream);
        TORCH_CHECK(!e, "the training step's random draws on the GPU: ", pmi_cuda_error(e));
#else
        (void)bs;
#endif
    }
};

/* PGD adversarial examples for (x, y) against m (nn_train_params.adv_eps): a uniform random
 * start in the L-inf ball eps (from u, U(0, 1) of x's shape), then steps signed-gradient steps
 * of 2.5 eps / steps, each projected back into the ball. */
torch::Tensor pgd_examples(nn_model *m, const torch::Tensor &x, const torch::Tensor &y, double eps, int steps, const torch::Tensor &u) {
    torch::Tensor delta = (u * 2.0 - 1.0) * eps;
    double step = 2.5 * eps / std::max(1, steps);
    for (int s = 0; s < steps; s++) {
        delta.set_requires_grad(true);
        torch::Tensor loss = nnf::cross_entropy(m->net->forward(x + delta), y);
        torch::Tensor g = torch::autograd::grad({loss}, {delta})[0];
        delta = (delta.detach() + step * g.sign()).clamp(-eps, eps);
    }
    return (x + delta).detach();
}

/* Clips the gradient of params to norm clip (torch::nn::utils::clip_grad_norm_'s arithmetic,
 * without its host synchronisation, so a CUDA graph can capture it) and adds noise[i] *
 * (grad_noise clip / batch) to each (nn_train_params.clip, grad_noise; noise empty: none). */
void clip_and_noise(const std::vector<torch::Tensor> &params, double clip, double noise, int64_t batch,
                    const std::vector<torch::Tensor> &draws) {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> norms;
    for (auto &t : params) if (t.grad().defined()) norms.push_back(t.grad().norm(2));
    if (norms.empty()) return;
    torch::Tensor total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
    torch::Tensor coef = torch::clamp(clip / (total + 1e-6), c10::nullopt, 1.0);
    for (size_t i = 0; i < params.size(); i++) {
        if (!params[i].grad().defined()) continue;
        params[i].mutable_grad().mul_(coef);
        if (noise > 0) params[i].mutable_grad().add_(draws[i] * (noise * clip / static_cast<double>(batch)));
    }
}

/* The step of one model; with `feed` (a CUDA graph's caller) the step reads the draws that
 * *feed provides before each call, otherwise it draws them itself. */
StepFn model_step(nn_model *m, const nn_data *d, torch::optim::Optimizer &opt, const LossFn &loss_fn, const nn_train_params *p,
                  FeedFn *feed = nullptr) {
    bool channels_last = p->channels_last != 0;
    double eps = p->adv_eps, clip = p->clip, noise = p->clip > 0 ? p->grad_noise : 0;
    int steps = p->adv_steps;
    auto draws = std::make_shared<Draws>();
    draws->m = m; draws->sample = d->x.sizes().slice(1).vec();
    draws->eps = eps; draws->noise = noise; draws->full = p->batch_size;
    draws->key = (p->seed + 1) * 0x9E3779B97F4A7C15ull;
    draws->gpu = Draws::gpu_draws(m);
    for (auto &t : m->params) if (t.requires_grad()) draws->trainable.push_back(t);
    /* a graph's caller feeds host draws before each replay; GPU draws are part of the step */
    bool self_fed = !feed || draws->gpu;
    if (feed) *feed = draws->wanted() && !draws->gpu ? FeedFn([draws](int64_t bs) { draws->feed(bs); }) : FeedFn();
    return [m, d, &opt, &loss_fn, channels_last, eps, steps, clip, noise, draws, self_fed](const torch::Tensor &idx) {
        torch::Tensor x = d->x.index_select(0, idx), y = d->y.index_select(0, idx);
        if (self_fed && draws->wanted()) draws->feed(idx.size(-1));
        if (eps > 0) x = pgd_examples(m, x, y, eps, steps, draws->start);
        if (channels_last && x.dim() == 4) x = to_channels_last(x);
        torch::Tensor loss = loss_fn(x, y, idx);
        loss.backward();
        if (clip > 0) clip_and_noise(draws->trainable, clip, noise, idx.size(-1), draws->gnoise);
        opt.step();
        apply_masks(m);
        return loss.detach();
    };
}

/* One epoch in the order perm (last dimension: n samples); returns the mean loss as a device
 * tensor (no sync). A trailing batch of one sample joins the previous batch (BatchNorm needs two). */
torch::Tensor run_epoch(const StepFn &step, const torch::Tensor &perm, int64_t bs, torch::optim::Optimizer &opt) {
    int64_t n = perm.size(-1);
    torch::Tensor total = torch::zeros({}, torch::TensorOptions().device(perm.device()));
    for (int64_t start = 0; start < n;) {
        int64_t end = std::min(n, start + bs);
        if (n - end == 1) end = n;
        opt.zero_grad();
        total = total + step(perm.slice(-1, start, end)) * static_cast<double>(end - start);
        start = end;
    }
    return total / static_cast<double>(n);
}

thread_local int64_t g_graph_replays = 0;   /* nn_graph_replays */

#ifdef PMI_CUDA
/* CUDA-graph training (SGD on a GPU): the full batches of an epoch replay one captured step
 * (gather the batch, forward, backward, optimizer step, masks, loss accumulation) instead of
 * launching each kernel from the host. Adam is left eager: libtorch's Adam keeps its step
 * count on the host, so a captured bias correction would be frozen. The learning rate is a
 * host scalar of the captured step: a schedule that changes it re-captures. PMI_CUDA_GRAPH=0
 * turns graphs off. */
struct GraphStep {
    at::cuda::CUDAGraph graph;
    /* the stream of the warm-up and capture: a pool stream when unset (one model alone); a
     * group gives each member one of its own (see OwnStream) */
    std::optional<c10::cuda::CUDAStream> side;
    torch::Tensor idx, total;   // the captured batch indices (bs or K x bs) and loss sum
    FeedFn feed;                /* the step's random draws, fed before each step and replay (model_step) */
    double lr = -1;
    bool ready = false;
};

bool graph_eligible(const nn_model *m, const nn_train_params *p, int64_t n) {
    const char *env = getenv("PMI_CUDA_GRAPH");
    return m->device.is_cuda() && p->optimizer == NN_SGD && n >= 5 * (int64_t)p->batch_size && !(env && !strcmp(env, "0"));
}

/* One model's (or ensemble's) captured epoch in three phases, so that several members on their
 * own streams can interleave their replays (nn_train_tasks): begin (warm-up and capture when
 * needed; returns the first batch left to replay), replay one full batch, end (the eager tail;
 * the epoch's mean loss as a device tensor). All on the current stream. */
struct GraphEpoch {
    int64_t n, bs, full, next;
    torch::Tensor perm, eager;
};

void graph_begin(const StepFn &step, const torch::Tensor &perm, int64_t bs, torch::optim::Optimizer &opt,
                 GraphStep &gs, double lr, GraphEpoch &ep) {
    ep.n = perm.size(-1); ep.bs = bs; ep.full = ep.n / bs; ep.next = 0; ep.perm = perm;
    if (ep.n % bs == 1) ep.full--;  /* a single-sample tail joins the last batch, eagerly (BatchNorm) */
    ep.eager = torch::zeros({}, torch::TensorOptions().device(perm.device()));
    if (!gs.ready || gs.lr != lr) {
        /* three eager warm-up steps on a side stream (they create the momentum buffers), then
         * the capture; capturing records the step without running it */
        auto cur = c10::cuda::getCurrentCUDAStream();
        auto side = gs.side ? *gs.side : c10::cuda::getStreamFromPool();
        at::cuda::CUDAEvent before, after;
        before.record(cur);
        before.block(side);
        {
            c10::cuda::CUDAStreamGuard guard(side);
            torch::Tensor last;
            for (; ep.next < 3 && ep.next < ep.full; ep.next++) {
                opt.zero_grad(true);
                if (gs.feed) gs.feed(bs);
                last = step(perm.slice(-1, ep.next * bs, (ep.next + 1) * bs));
                ep.eager = ep.eager + last * static_cast<double>(bs);
            }
            if (!gs.idx.defined()) {
                gs.idx = torch::zeros_like(perm.slice(-1, 0, bs));
                gs.total = torch::zeros_like(last);
            }
            opt.zero_grad(true);
            gs.graph.reset();
            gs.graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);   /* other threads may allocate (nn_bag_sums) */
            try {
                gs.total.add_(step(gs.idx), static_cast<double>(bs));
            } catch (...) {
                /* end the capture before the error leaves: a stream left capturing cannot be
                 * synchronised, and the members' destructors would abort the process with that
                 * instead of the error (one paper-scale robustness run on an H100, 2026-12-06) */
                try { gs.graph.capture_end(); } catch (...) {}
                try { gs.graph.reset(); } catch (...) {}
                gs.ready = false;
                throw;
            }
            gs.graph.capture_end();
        }
        after.record(side);
        after.block(cur);
        gs.ready = true;
        gs.lr = lr;
    }
    gs.total.zero_();
}

/* Replays the next full batch; false when none is left. */
bool graph_replay(GraphStep &gs, GraphEpoch &ep) {
    if (ep.next >= ep.full) return false;
    gs.idx.copy_(ep.perm.slice(-1, ep.next * ep.bs, (ep.next + 1) * ep.bs));
    if (gs.feed) gs.feed(ep.bs);
    gs.graph.replay();
    g_graph_replays++;
    ep.next++;
    return true;
}

torch::Tensor graph_end(const StepFn &step, torch::optim::Optimizer &opt, GraphStep &gs, GraphEpoch &ep) {
    if (ep.full * ep.bs < ep.n) {
        opt.zero_grad(true);
        if (gs.feed) gs.feed(ep.n - ep.full * ep.bs);
        ep.eager = ep.eager + step(ep.perm.slice(-1, ep.full * ep.bs, ep.n)) * static_cast<double>(ep.n - ep.full * ep.bs);
    }
    return (gs.total + ep.eager) / static_cast<double>(ep.n);
}

torch::Tensor run_epoch_graph(const StepFn &step, const torch::Tensor &perm, int64_t bs, torch::optim::Optimizer &opt,
                              GraphStep &gs, double lr) {
    GraphEpoch ep;
    graph_begin(step, perm, bs, opt, gs, lr, ep);
    while (graph_replay(gs, ep)) {}
    return graph_end(step, opt, gs, ep);
}
#endif

/* The loop nn_train and nn_distill share: optimizer, schedule, shuffling, masks, callback. */
nn_status train_loop(nn_model *m, const nn_data *d, const nn_train_params *p, double *loss_curve,
                     const LossFn &loss_fn, const char *fn) {
    nn_status st = check_train_params(p, fn);
    if (st == NN_OK) st = check_data(m, d, fn);
    if (st == NN_OK) st = check_labels(m, d, fn);
    if (st != NN_OK) return st;
    int64_t n = d->x.size(0);
    NN_REQUIRE(n > 0, fn, ": no training data");
    size_t first = p->trainable == NN_TRAIN_LAST ? static_cast<size_t>(m->last_first) : 0;
    FreezeGuard freeze(m->params, first);
    Layout layout(m, p->channels_last != 0);
    std::vector<torch::Tensor> trainable(m->params.begin() + first, m->params.end());
    auto opt = make_optimizer(p, trainable);
#ifdef PMI_CUDA
    GraphStep gs;
    bool use_graph = graph_eligible(m, p, n);
    StepFn step = model_step(m, d, *opt, loss_fn, p, use_graph ? &gs.feed : nullptr);
#else
    StepFn step = model_step(m, d, *opt, loss_fn, p);
#endif
    if (loss_curve) std::fill(loss_curve, loss_curve + p->epochs, std::nan(""));
    /* Frozen layers run in eval mode, so BatchNorm statistics stay fixed too. */
    if (p->trainable == NN_TRAIN_LAST) m->net->eval();
    else m->net->train();
    for (int e = 0; e < p->epochs; e++) {
        double lr = scheduled_lr(p, e);
        set_lr(*opt, p->optimizer, lr);
        torch::Tensor perm = torch::randperm(n, cpu_generator(p->seed + e), torch::kLong).to(m->device);
#ifdef PMI_CUDA
        double loss = (use_graph ? run_epoch_graph(step, perm, p->batch_size, *opt, gs, lr)
                                 : run_epoch(step, perm, p->batch_size, *opt)).item<double>();
#else
        double loss = run_epoch(step, perm, p->batch_size, *opt).item<double>();
#endif
        if (loss_curve) loss_curve[e] = loss;
        if (p->on_epoch && p->on_epoch(p->ctx, e, p->epochs, loss)) break;
    }
    m->net->eval();
    return NN_OK;
}

/* Rows of p scaled to sum 1; a row of zeros becomes uniform. */
torch::Tensor renormalise(const torch::Tensor &p) {
    torch::Tensor s = p.sum(1, true);
    return torch::where(s > 0, p / s.clamp_min(1e-30), torch::full_like(p, 1.0 / static_cast<double>(p.size(1))));
}

/* The stream of philox.h that the queries' noise draws from (a training step's are 0 .. 1 + its
 * trainable tensors). */
constexpr uint32_t kQueryStream = 0xFFFFFFFFu;

/* N(0, 1) of x's shape, float: the noise of the queries (or answers) of the chunk that starts at
 * sample start, under the key seed: philox.h's draws of stream kQueryStream at step start, made
 * where x is (pmi_draws on a GPU with pmi's kernels, the intra-op threads of the host otherwise;
 * drawn on one host thread and copied, the forward passes of the paper-scale robustness batches
 * with noise interfaces took 2.6-2.7 s on an H100, 0.3-0.7 s drawn on the GPU: docs/performance.md).
 * The same numbers on any device up to the last place of a float (philox.h), and for any chunking
 * by thread count. */
torch::Tensor query_randn(const torch::Tensor &x, uint64_t seed, int64_t start) {
#ifdef PMI_CUDA_KERNELS
    if (x.is_cuda()) {
        auto opt = torch::TensorOptions().dtype(torch::kLong).device(x.device());
        torch::Tensor out = torch::empty(x.sizes(), opt.dtype(torch::kFloat)), t = torch::full({1}, start, opt);
        int e = pmi_draws(out.data_ptr<float>(), out.numel(), seed, reinterpret_cast<const uint64_t *>(t.data_ptr<int64_t>()),
                          kQueryStream, 1, c10::cuda::getCurrentCUDAStream().stream());
        TORCH_CHECK(!e, "the queries' noise on the GPU: ", pmi_cuda_error(e));
        return out;
    }
#endif
    torch::Tensor h = torch::empty(x.sizes(), torch::kFloat);
    philox_fill(h.data_ptr<float>(), h.numel(), seed, kQueryStream, static_cast<uint64_t>(start), true, true);
    return h.to(x.device());
}

/* x + N(0, sigma^2) per element, for the chunk that starts at sample start (query_randn). */
torch::Tensor add_query_noise(const torch::Tensor &x, double sigma, uint64_t seed, int64_t start) {
    return x + query_randn(x, seed, start) * sigma;
}

/* The interface's input transform (nn.h) of the images x, the chunk that starts at sample start. */
torch::Tensor query_input(const nn_interface &q, const torch::Tensor &x, int64_t start) {
    switch (q.input) {
    case NN_IN_QUANTIZE: {
        torch::Tensor flat = x.flatten(1);
        torch::Tensor lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
        torch::Tensor step = (hi - lo).clamp_min(1e-12) / (std::ldexp(1.0, static_cast<int>(q.in_param)) - 1.0);
        return (((flat - lo) / step).round() * step + lo).view_as(x);
    }
    case NN_IN_NOISE: return add_query_noise(x, q.in_param, q.seed, start);
    case NN_IN_BLUR: {
        int64_t r = static_cast<int64_t>(q.in_param);
        return r ? nnf::avg_pool2d(x, nnf::AvgPool2dFuncOptions(2 * r + 1).stride(1).padding(r).count_include_pad(false)) : x;
    }
    case NN_IN_SHIFT: {
        int64_t p = static_cast<int64_t>(q.in_param), h = x.size(2), w = x.size(3);
        if (!p) return x;
        torch::Tensor out = std::get<0>(x.flatten(1).min(1)).view({-1, 1, 1, 1}).expand_as(x).clone();
        out.slice(2, p).slice(3, p).copy_(x.slice(2, 0, h - p).slice(3, 0, w - p));
        return out;
    }
    case NN_IN_FLIP: return x.flip({3});
    default: return x;
    }
}

/* The interface's output transform (nn.h) of the log-probabilities lp of the chunk at start. */
torch::Tensor query_output(const nn_interface &q, const torch::Tensor &lp, int64_t start) {
    if (q.output == NN_OUT_NONE) return lp;
    if (q.output == NN_OUT_TEMPERATURE) return torch::log_softmax(lp / q.out_param, 1);
    torch::Tensor p = lp.exp(), out;
    switch (q.output) {
    case NN_OUT_LABEL: out = torch::zeros_like(p).scatter_(1, lp.argmax(1, true), 1.0); break;
    case NN_OUT_TOPK: {
        auto top = p.topk(static_cast<int64_t>(q.out_param), 1);
        out = renormalise(torch::zeros_like(p).scatter_(1, std::get<1>(top), std::get<0>(top)));
        break;
    }
    case NN_OUT_ROUND: {
        double f = std::pow(10.0, q.out_param);
        out = (p.to(torch::kDouble) * f).round().div(f).to(torch::kFloat);
        break;
    }
    case NN_OUT_RSIGMOID: {
        torch::Tensor pc = p.clamp(1e-6, 1.0 - 1e-6);
        out = renormalise((p - q.out_param * (torch::sigmoid(q.out_param2 * (pc.log() - (1.0 - pc).log())) - 0.5)).clamp(0.0, 1.0));
        break;
    }
    case NN_OUT_NOISE: out = renormalise((p + query_randn(p, q.seed, start) * q.out_param).clamp_min(0.0)); break;
    default: return lp;
    }
    return out.clamp_min(NN_OUT_FLOOR).log();
}

/* m's forward pass over the chunk q: in slices of 256 samples on the CPU, whose activations
 * stay in the cache (a LeNet evaluating 3000 images on one core of the CI machine: 0.85 s in one
 * pass, 0.12 s in slices of 128-256, PyTorch 1.13), in one pass on a GPU. A slice's outputs may
 * differ from the whole pass's in the last bit, never more than rounding. */
torch::Tensor forward_slices(nn_model *m, const torch::Tensor &q) {
    const int64_t slice = 256;
    if (q.is_cuda() || q.size(0) <= slice) return m->net->forward(q);
    std::vector<torch::Tensor> out;
    for (int64_t s = 0; s < q.size(0); s += slice) out.push_back(m->net->forward(q.slice(0, s, std::min(q.size(0), s + slice))));
    return torch::cat(out);
}

/* The queries an evaluation sends at once: an interface's noise is drawn per chunk of them,
 * seeded by the chunk's first sample (nn.h), so every evaluation path chunks alike. */
constexpr int64_t kQueryChunk = 4096;

/* log-probabilities of m on x in chunks, eval mode, no autograd, through m's interface (the
 * answers a querier gets); calls sink(start, logp). sigma > 0: the querier's own noise
 * (nn_eval_logp_noisy) is added to each query before the interface sees it. */
void eval_chunks(nn_model *m, const torch::Tensor &x,
                 const std::function<void(int64_t, const torch::Tensor &)> &sink, double sigma = 0,
                 uint64_t seed = 0) {
    const int64_t chunk = kQueryChunk;
    torch::NoGradGuard ng;
    m->net->eval();
    for (int64_t s = 0; s < x.size(0); s += chunk) {
        torch::Tensor q = x.slice(0, s, std::min(x.size(0), s + chunk));
        if (sigma > 0) q = add_query_noise(q, sigma, seed, s);
        q = query_input(m->iface, q, s);
        sink(s, query_output(m->iface, torch::log_softmax(forward_slices(m, q), 1), s));
    }
}

/* ---- profiling (nn_profile_start) ------------------------------------------------- */
namespace prof = torch::profiler::impl;
/* KinetoEvent's times: microseconds in libtorch 1.13 (startUs), nanoseconds in 2.x (startNs);
 * the first overload exists only where startNs does. */
template <class E> auto ev_start_us(const E &e, int) -> decltype(e.startNs(), double()) { return e.startNs() / 1e3; }
template <class E> double ev_start_us(const E &e, long) { return static_cast<double>(e.startUs()); }
template <class E> auto ev_dur_us(const E &e, int) -> decltype(e.durationNs(), double()) { return e.durationNs() / 1e3; }
template <class E> double ev_dur_us(const E &e, long) { return static_cast<double>(e.durationUs()); }

void json_string(FILE *f, const std::string &s) {
    fputc('"', f);
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
bool g_profiling = false;
}  // namespace

/* ---- extern "C": status, devices, data ------------------------------------------ */
extern "C" {

const char *nn_status_string(nn_status s) {
    switch (s) {
    case NN_OK: return "ok";
    case NN_EINVAL: return "invalid argument";
    case NN_EDEVICE: return "device unavailable";
    case NN_ETORCH: return "libtorch error";
    }
    return "unknown status";
}

const char *nn_last_error(void) { return g_error.c_str(); }
const char *nn_torch_version(void) { return TORCH_VERSION; }

int nn_cuda_kernels(void) {
#ifdef PMI_CUDA_KERNELS
    return 1;
#else
    return 0;
#endif
}

const char *nn_device_request_name(int i) { return table_name(kDeviceRequestNames, i); }
int nn_device_request_parse(const char *s, nn_device_request *out) { return table_parse(kDeviceRequestNames, s, out); }
const char *nn_optimizer_name(int i) { return table_name(kOptimizerNames, i); }
int nn_optimizer_parse(const char *s, nn_optimizer *out) { return table_parse(kOptimizerNames, s, out); }
const char *nn_schedule_name(int i) { return table_name(kScheduleNames, i); }
int nn_schedule_parse(const char *s, nn_schedule *out) { return table_parse(kScheduleNames, s, out); }
const char *nn_precision_name(int i) { return table_name(kPrecisionNames, i); }
int nn_precision_parse(const char *s, nn_precision *out) { return table_parse(kPrecisionNames, s, out); }
const char *nn_input_transform_name(int i) { return table_name(kInputNames, i); }
int nn_input_transform_parse(const char *s, nn_input_transform *out) { return table_parse(kInputNames, s, out); }
const char *nn_output_transform_name(int i) { return table_name(kOutputNames, i); }
int nn_output_transform_parse(const char *s, nn_output_transform *out) { return table_parse(kOutputNames, s, out); }

nn_status nn_device_resolve(nn_device_request want, nn_device *dev, char *name, size_t len) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(dev, "nn_device_resolve: dev is NULL");
        NN_REQUIRE(nn_device_request_name(want), "nn_device_resolve: want must be an nn_device_request (0 auto, "
                   "1 cpu, 2 cuda, 3-18 cuda:0-15), got ", static_cast<int>(want));
        bool cuda = want >= NN_WANT_CUDA || (want == NN_WANT_AUTO && torch::cuda::is_available());
        int index = want >= NN_WANT_CUDA_0 ? want - NN_WANT_CUDA_0 : 0;
        if (cuda && torch::cuda::is_available() && index >= static_cast<int>(torch::cuda::device_count()))
            return fail(NN_EDEVICE, cat(kDeviceRequestNames[want], " requested but this machine has ",
                                        torch::cuda::device_count(), " CUDA device(s) (cuda:0 to cuda:",
                                        torch::cuda::device_count() - 1, ")"));
        g_cuda_index = index;
#ifdef PMI_CUDA
        if (cuda && torch::cuda::is_available()) c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
#endif
        torch::Device td(torch::kCPU);
        nn_status st = torch_device(cuda ? NN_CUDA : NN_CPU, &td);
        if (st != NN_OK) return st;
        *dev = cuda ? NN_CUDA : NN_CPU;
        std::string label = cat("cpu (", torch::get_num_threads(), " threads)");
#ifdef PMI_CUDA
        if (cuda) label = at::cuda::getCurrentDeviceProperties()->name;
        if (cuda && index) label = cat(label, " (cuda:", index, ")");
#else
        if (cuda) label = "cuda";
#endif
        if (name && len > 0) snprintf(name, len, "%s", label.c_str());
        return NN_OK;
    });
}

int nn_cuda_device_count(void) {
    try {
        return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    } catch (const std::exception &e) {
        g_error = e.what();
        return 0;
    }
}

/* The caching allocator's current bytes on the current CUDA device: in live tensors, or held
 * (reserved); -1 without CUDA. */
static int64_t allocator_bytes(bool held) {
#ifdef PMI_CUDA
    try {
        if (!torch::cuda::is_available()) return -1;
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
        return (held ? stats.reserved_bytes : stats.allocated_bytes)[0].current;
    } catch (const std::exception &e) {
        g_error = e.what();
    }
#endif
    return -1;
}

int64_t nn_cuda_allocated_bytes(void) { return allocator_bytes(false); }
int64_t nn_cuda_reserved_bytes(void) { return allocator_bytes(true); }

/* ---- sums of bags of rows (the permutation tests' sums) ----------------------------------- */
struct nn_bags {
    torch::Tensor rows;
#ifdef PMI_CUDA
    std::optional<c10::cuda::CUDAStream> stream;   /* a pool stream: never waits for the training's */
#endif
};

nn_bags *nn_bag_sums_open(nn_device dev, const double *rows, int width, int64_t n_rows) {
    nn_bags *out = nullptr;
    guard(__func__, [&]() -> nn_status {
        if (!rows || width < 1 || n_rows < 1 || n_rows > INT32_MAX)
            return fail(NN_EINVAL, cat("nn_bag_sums_open: rows ", rows ? "" : "NULL ", "(", n_rows, ", ", width,
                                       "): expected 1..2^31-1 rows of width >= 1"));
        auto host = torch::from_blob(const_cast<double *>(rows), {n_rows, width}, torch::kDouble);
        auto b = std::make_unique<nn_bags>();
        if (dev == NN_CUDA) {
#ifdef PMI_CUDA
            if (!torch::cuda::is_available()) return fail(NN_EDEVICE, "nn_bag_sums_open: no CUDA device");
            b->stream = c10::cuda::getStreamFromPool();
            c10::cuda::CUDAStreamGuard on(*b->stream);
            b->rows = host.to(torch::kCUDA);
#else
            return fail(NN_EDEVICE, "nn_bag_sums_open: built without CUDA");
#endif
        } else {
            b->rows = host.clone();
        }
        out = b.release();
        return NN_OK;
    });
    return out;
}

nn_status nn_bag_sums(nn_bags *b, const uint32_t *idx, int n_bags, int len, double *out) {
    return guard(__func__, [&]() -> nn_status {
        if (!b || !idx || !out || n_bags < 1 || len < 1)
            return fail(NN_EINVAL, cat("nn_bag_sums: ", n_bags, " bags of ", len, ": expected >= 1 of >= 1 and non-NULL arrays"));
#ifdef PMI_CUDA
        std::optional<c10::cuda::CUDAStreamGuard> on;
        if (b->stream) on.emplace(*b->stream);
#endif
        int64_t n = static_cast<int64_t>(n_bags) * len;
        auto i = torch::from_blob(const_cast<uint32_t *>(idx), {n}, torch::kInt32).to(b->rows.device()).to(torch::kLong);
        auto off = torch::arange(0, n, len, torch::TensorOptions().dtype(torch::kLong).device(b->rows.device()));
        auto sums = std::get<0>(torch::embedding_bag(b->rows, i, off, false, 0, false, {}, false));
        torch::from_blob(out, {n_bags, b->rows.size(1)}, torch::kDouble).copy_(sums);
        return NN_OK;
    });
}

void nn_bag_sums_close(nn_bags *b) {
    if (!b) return;
#ifdef PMI_CUDA
    std::optional<c10::cuda::CUDAStreamGuard> on;
    if (b->stream) on.emplace(*b->stream);
#endif
    delete b;
}

nn_status nn_profile_start(int cuda) {
    return guard(__func__, [&]() -> nn_status {
        if (g_profiling) return fail(NN_EINVAL, "a profile is already running");
        std::set<prof::ActivityType> act{prof::ActivityType::CPU};
        if (cuda) act.insert(prof::ActivityType::CUDA);
        prof::ProfilerConfig config(prof::ProfilerState::KINETO);
        torch::autograd::profiler::prepareProfiler(config, act);  /* as torch.profiler does: Kineto's
                                                                      CUDA tracing needs it first */
        torch::autograd::profiler::enableProfiler(config, act);
        g_profiling = true;
        return NN_OK;
    });
}

nn_status nn_profile_stop(const char *path, int64_t *n_events) {
    return guard(__func__, [&]() -> nn_status {
        if (!g_profiling) return fail(NN_EINVAL, "no profile is running");
        g_profiling = false;
        auto res = torch::autograd::profiler::disableProfiler();
        if (!path) return NN_OK;   /* discarded */
        const auto &ev = res->events();
        double t0 = std::numeric_limits<double>::infinity();
        for (const auto &e : ev) t0 = std::min(t0, ev_start_us(e, 0));
        FILE *f = fopen(path, "w");
        if (!f) return fail(NN_EINVAL, std::string("cannot write ") + path + ": " + strerror(errno));
        fputs("{\"traceEvents\": [", f);
        int64_t n = 0;
        for (const auto &e : ev) {
            bool gpu = e.deviceType() == c10::DeviceType::CUDA;
            fputs(n++ ? ",\n" : "\n", f);
            fputs("{\"name\": ", f);
            json_string(f, e.name());
            fprintf(f, ", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": %d, \"tid\": %lld}",
                    gpu ? "kernel" : "cpu_op", ev_start_us(e, 0) - t0, ev_dur_us(e, 0), gpu ? 1 : 0,
                    static_cast<long long>(gpu ? e.deviceResourceId() : static_cast<int64_t>(e.startThreadId())));
        }
        fputs("\n], \"displayTimeUnit\": \"ms\"}\n", f);
        if (fclose(f) != 0) return fail(NN_EINVAL, std::string("writing ") + path + ": " + strerror(errno));
        if (n_events) *n_events = n;
        return NN_OK;
    });
}

void nn_set_numerics(int tf32, int deterministic) {
    guard(__func__, [&]() -> nn_status {
        auto &c = at::globalContext();
        if (deterministic) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
        c.setDeterministicCuDNN(deterministic != 0);
        c.setBenchmarkCuDNN(false);
        c.setDeterministicAlgorithms(deterministic != 0, false);
        c.setAllowTF32CuDNN(tf32 && !deterministic);
        c.setAllowTF32CuBLAS(false);
        return NN_OK;
    });
}

/* Evaluation in exact fp32 whatever training allowed: TF32 off for the scope. */
struct ExactFp32 {
    bool cudnn = at::globalContext().allowTF32CuDNN(), blas = at::globalContext().allowTF32CuBLAS();
    ExactFp32() { at::globalContext().setAllowTF32CuDNN(false); at::globalContext().setAllowTF32CuBLAS(false); }
    ~ExactFp32() { at::globalContext().setAllowTF32CuDNN(cudnn); at::globalContext().setAllowTF32CuBLAS(blas); }
};

void nn_set_threads(int n) {
    guard(__func__, [&]() -> nn_status {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int k = n > 0 ? n : static_cast<int>(cores > 0 ? cores : 1);
        torch::set_num_threads(k);
        /* A BLAS linked by libtorch (OpenBLAS on Debian) keeps a thread pool of its own, sized
         * to the cores at load time: several one-thread workers would oversubscribe the cores. */
        using set_fn = void (*)(int);
        if (auto f = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(k);
        return NN_OK;
    });
}

nn_status nn_data_create(const float *x, const int32_t *y, int64_t n, int c, int h, int w, nn_device dev,
                         nn_data **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(out, "nn_data_create: out is NULL");
        *out = nullptr;
        NN_REQUIRE(n >= 0 && c >= 1 && h >= 1 && w >= 1, "nn_data_create: need n >= 0 and c, h, w >= 1");
        NN_REQUIRE(n == 0 || (x && y), "nn_data_create: x or y is NULL");
        torch::Device td(torch::kCPU);
        nn_status st = torch_device(dev, &td);
        if (st != NN_OK) return st;
        auto d = std::make_unique<nn_data>();
        d->x = n ? torch::from_blob(const_cast<float *>(x), {n, c, h, w}, torch::kFloat).to(td, torch::kFloat, false, true)
                 : torch::zeros({0, c, h, w}, torch::TensorOptions(td));
        d->y = n ? torch::from_blob(const_cast<int32_t *>(y), {n}, torch::kInt).to(td, torch::kLong)
                 : torch::zeros({0}, torch::TensorOptions(td).dtype(torch::kLong));
        *out = d.release();
        return NN_OK;
    });
}

nn_status nn_data_adopt(float *x, const int32_t *y, int64_t n, int c, int h, int w, nn_device dev, nn_data **out) {
    if (dev != NN_CPU || n <= 0 || c < 1 || h < 1 || w < 1 || !y || !out) {
        nn_status st = nn_data_create(x, y, n, c, h, w, dev, out);   /* a GPU's copy, or the checks' error */
        free(x);
        return st;
    }
    nn_status st = guard(__func__, [&]() -> nn_status {
        *out = nullptr;
        auto d = std::make_unique<nn_data>();
        d->y = torch::from_blob(const_cast<int32_t *>(y), {n}, torch::kInt).to(torch::kLong);
        d->x = torch::from_blob(x, {n, c, h, w}, [](void *p) { free(p); }, torch::TensorOptions(torch::kFloat));
        x = nullptr;   /* the tensor's now */
        *out = d.release();
        return NN_OK;
    });
    free(x);   /* NULL unless an error came first */
    return st;
}

nn_status nn_data_subset(const nn_data *src, const int64_t *idx, int64_t n, nn_data **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(out, "nn_data_subset: out is NULL");
        *out = nullptr;
        NN_REQUIRE(src && (idx || n == 0) && n >= 0, "nn_data_subset: src or idx is NULL, or n < 0");
        int64_t size = src->x.size(0);
        for (int64_t i = 0; i < n; i++)
            NN_REQUIRE(idx[i] >= 0 && idx[i] < size, "nn_data_subset: idx[", i, "] = ",
                       idx[i], " is outside [0, ", size, ")");
        torch::Tensor ix = n ? torch::from_blob(const_cast<int64_t *>(idx), {n}, torch::kLong).to(src->x.device())
                             : torch::zeros({0}, src->y.options());
        auto d = std::make_unique<nn_data>();
        d->x = src->x.index_select(0, ix);
        d->y = src->y.index_select(0, ix);
        *out = d.release();
        return NN_OK;
    });
}

nn_status nn_data_concat(const nn_data *a, const nn_data *b, nn_data **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(out, "nn_data_concat: out is NULL");
        *out = nullptr;
        NN_REQUIRE(a && b, "nn_data_concat: a or b is NULL");
        NN_REQUIRE(a->x.sizes().slice(1) == b->x.sizes().slice(1) && a->x.device() == b->x.device(),
                   "nn_data_concat: sample shapes or devices differ");
        auto d = std::make_unique<nn_data>();
        d->x = torch::cat({a->x, b->x});
        d->y = torch::cat({a->y, b->y});
        *out = d.release();
        return NN_OK;
    });
}

int64_t nn_data_size(const nn_data *d) { return d ? d->x.size(0) : 0; }
nn_status nn_data_labels(const nn_data *d, int32_t *y) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(d && (y || d->y.size(0) == 0), "nn_data_labels: data or y is NULL");
        torch::Tensor h = d->y.to(torch::kCPU, torch::kInt).contiguous();
        std::memcpy(y, h.data_ptr<int32_t>(), sizeof(int32_t) * static_cast<size_t>(h.numel()));
        return NN_OK;
    });
}
void nn_data_free(nn_data *d) { delete d; }

/* ---- extern "C": models ------------------------------------------------------------ */
int nn_arch_count(void) { return kNumArchs; }
const char *nn_arch_name(int i) { return i >= 0 && i < kNumArchs ? kArchs[i].name : nullptr; }
const char *nn_arch_help(int i) { return i >= 0 && i < kNumArchs ? kArchs[i].help : nullptr; }
int nn_arch_batch(const char *arch) {
    const Arch *a = find_arch(arch);
    return a ? a->batch : 0;
}

nn_status nn_model_create(const nn_model_spec *spec, nn_model **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(out && spec, "nn_model_create: spec or out is NULL");
        *out = nullptr;
        const Arch *arch = find_arch(spec->arch);
        NN_REQUIRE(arch, "nn_model_create: unknown arch '", spec->arch ? spec->arch : "(null)",
                   "' (known: ", arch_list(), ")");
        NN_REQUIRE(spec->c >= 1 && spec->h >= 1 && spec->w >= 1 && spec->classes >= 2,
                   "nn_model_create: need c, h, w >= 1 and classes >= 2");
        auto m = std::make_unique<nn_model>();
        nn_status st = torch_device(spec->device, &m->device);
        if (st != NN_OK) return st;
        m->arch = arch->name;
        m->spec = *spec;
        m->spec.arch = m->arch.c_str();
        m->spec.width = spec->width > 0 ? spec->width : arch->default_width;
        /* libtorch's init functions take no generator: this seeds the global one. */
        torch::manual_seed(spec->seed);
        m->net = arch->make(Shape{spec->c, spec->h, spec->w, spec->classes, m->spec.width});
        m->net->to(m->device);
        m->net->eval();
        for (auto &kv : m->net->named_parameters()) {
            m->names.push_back(kv.key());
            m->params.push_back(kv.value());
        }
        m->masks.resize(m->params.size());
        m->state = m->params;
        m->state_names = m->names;
        for (auto &kv : m->net->named_buffers()) {
            m->state_names.push_back(kv.key());
            m->state.push_back(kv.value());
        }
        m->last_first = static_cast<int>(m->params.size()) - 2;  // the final Linear's weight and bias
        *out = m.release();
        return NN_OK;
    });
}

nn_status nn_model_copy(const nn_model *src, nn_model **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(src && out, "nn_model_copy: src or out is NULL");
        *out = nullptr;
        nn_model *m = nullptr;
        nn_status st = nn_model_create(&src->spec, &m);
        if (st != NN_OK) return st;
        std::unique_ptr<nn_model> owned(m);
        torch::NoGradGuard ng;
        for (size_t i = 0; i < m->params.size(); i++) {
            m->params[i].copy_(src->params[i]);
            if (src->masks[i].defined()) m->masks[i] = src->masks[i].clone();
        }
        auto dst_buf = m->net->buffers(), src_buf = src->net->buffers();
        for (size_t i = 0; i < dst_buf.size(); i++) dst_buf[i].copy_(src_buf[i]);
        m->iface = src->iface;
        *out = owned.release();
        return NN_OK;
    });
}

void nn_model_free(nn_model *m) { delete m; }

nn_status nn_set_interface(nn_model *m, const nn_interface *q) {
    NN_REQUIRE(m, "nn_set_interface: model is NULL");
    if (!q) { m->iface = nn_interface{}; return NN_OK; }
    double a = q->in_param, b = q->out_param;
    int side = std::min(m->spec.h, m->spec.w);
    NN_REQUIRE(nn_input_transform_name(q->input) && nn_output_transform_name(q->output),
               "nn_set_interface: unknown transform ", q->input, "/", q->output);
    NN_REQUIRE(q->input != NN_IN_QUANTIZE || (a >= 1 && a <= 16 && a == std::floor(a)), "nn_set_interface: quantize needs 1 to 16 bits, got ", a);
    NN_REQUIRE(q->input != NN_IN_NOISE || a >= 0, "nn_set_interface: input noise needs sigma >= 0, got ", a);
    NN_REQUIRE((q->input != NN_IN_BLUR && q->input != NN_IN_SHIFT) || (a >= 0 && a <= side - 1 && a == std::floor(a)),
               "nn_set_interface: ", nn_input_transform_name(q->input), " needs a whole number of pixels in [0, ", side - 1, "], got ", a);
    NN_REQUIRE(q->output != NN_OUT_TOPK || (b >= 1 && b <= m->spec.classes && b == std::floor(b)),
               "nn_set_interface: topk needs k in [1, ", m->spec.classes, "], got ", b);
    NN_REQUIRE(q->output != NN_OUT_ROUND || (b >= 0 && b <= 8 && b == std::floor(b)), "nn_set_interface: round needs 0 to 8 decimals, got ", b);
    NN_REQUIRE(q->output != NN_OUT_TEMPERATURE || b > 0, "nn_set_interface: temperature must be > 0, got ", b);
    NN_REQUIRE(q->output != NN_OUT_RSIGMOID || (b >= 0 && q->out_param2 > 0), "nn_set_interface: rsigmoid needs beta >= 0 and gamma > 0");
    NN_REQUIRE(q->output != NN_OUT_NOISE || b >= 0, "nn_set_interface: output noise needs sigma >= 0, got ", b);
    m->iface = *q;
    return NN_OK;
}

const nn_interface *nn_get_interface(const nn_model *m) { return m ? &m->iface : nullptr; }

int64_t nn_model_num_params(const nn_model *m) {
    int64_t n = 0;
    if (m)
        for (const auto &p : m->params) n += p.numel();
    return n;
}

nn_train_params nn_train_default_params(void) {
    nn_train_params p;
    std::memset(&p, 0, sizeof p);
    p.optimizer = NN_SGD;
    p.lr = 0.01;
    p.momentum = 0.9;
    p.weight_decay = 5e-4;
    p.epochs = 10;
    p.batch_size = 128;
    p.schedule = NN_SCHED_NONE;
    p.step_size = 10;
    p.gamma = 0.1;
    p.trainable = NN_TRAIN_ALL;
    return p;
}

namespace {
/* The teacher's logits on every training sample of d (eval mode, no gradients), in chunks. */
torch::Tensor teacher_logits(nn_model *teacher, const nn_data *d) {
    torch::NoGradGuard ng;
    const int64_t chunk = 4096, n = d->x.size(0);
    std::vector<torch::Tensor> out;
    for (int64_t s = 0; s < n; s += chunk) out.push_back(forward_slices(teacher, d->x.slice(0, s, std::min(n, s + chunk))));
    return torch::cat(out);
}

/* The loss of a task: cross-entropy on the labels, or distillation from its teacher (eval mode,
 * no gradients, batch by batch). */
LossFn task_loss(const nn_train_task &t) {
    nn_model *m = t.model, *teacher = t.teacher;
    nn_precision prec = t.params.precision;
    auto forward = [m, prec](const torch::Tensor &x) {
        Autocast ac(prec, x);
        return m->net->forward(x).to(torch::kFloat);
    };
    double smooth = t.params.label_smoothing, flood = t.params.flood;
    using T3 = const torch::Tensor &;
    if (!teacher && flood > 0)
        return [forward, smooth, flood](T3 x, T3 y, T3) {
            torch::Tensor l = nnf::cross_entropy(forward(x), y, nnf::CrossEntropyFuncOptions().label_smoothing(smooth).reduction(torch::kNone));
            return ((l - flood).abs() + flood).mean();
        };
    if (!teacher && smooth > 0)
        return [forward, smooth](T3 x, T3 y, T3) {
            return nnf::cross_entropy(forward(x), y, nnf::CrossEntropyFuncOptions().label_smoothing(smooth));
        };
    if (!teacher)
        return [forward](T3 x, T3 y, T3) { return nnf::cross_entropy(forward(x), y); };
    double T = t.distill.temperature, alpha = t.distill.alpha;
    int hard = t.distill.hard;
    /* the student's output s against the teacher's logits tl (fp32 whatever the student's precision) */
    auto loss = [T, alpha, hard](const torch::Tensor &s, const torch::Tensor &tl, const torch::Tensor &y) {
        if (hard) return nnf::cross_entropy(s, tl.argmax(1));
        torch::Tensor lt = torch::log_softmax(tl / T, 1), ls = torch::log_softmax(s / T, 1);
        torch::Tensor kl = (lt.exp() * (lt - ls)).sum() / static_cast<double>(s.size(0));
        return alpha * T * T * kl + (1.0 - alpha) * nnf::cross_entropy(s, y);
    };
    /* A frozen teacher (eval mode, no gradients) gives a sample the same logits in every epoch:
     * with clean inputs (no adversarial examples) they are computed once for the whole training
     * set, one forward pass over it instead of one per step (epochs of them). Queued on the
     * current stream before the steps (a group's streams wait for it). PMI_TEACHER_CACHE=0
     * computes them batch by batch instead (the same targets up to rounding). */
    const char *cache = getenv("PMI_TEACHER_CACHE");
    if (t.params.adv_eps <= 0 && !(cache && !strcmp(cache, "0"))) {
        torch::Tensor all = teacher_logits(teacher, t.data);
        return [forward, loss, all](T3 x, T3 y, T3 idx) { return loss(forward(x), all.index_select(0, idx), y); };
    }
    return [forward, loss, teacher](T3 x, T3 y, T3) {
        torch::Tensor tl;
        {
            torch::NoGradGuard ng;
            tl = teacher->net->forward(x);
        }
        return loss(forward(x), tl, y);
    };
}

/* A teacher's checks (the student's are train_loop's / the group's). */
nn_status check_teacher(const nn_train_task &t, const char *fn) {
    if (!t.teacher) return NN_OK;
    const nn_distill_params *dp = &t.distill;
    NN_REQUIRE(t.model, fn, ": student is NULL");
    NN_REQUIRE(t.model != t.teacher, fn, ": student and teacher are the same model");
    NN_REQUIRE(dp->hard || (dp->temperature > 0 && dp->alpha >= 0 && dp->alpha <= 1),
               fn, ": need temperature > 0 and alpha in [0, 1]");
    NN_REQUIRE(t.model->spec.classes == t.teacher->spec.classes, fn, ": class counts differ");
    nn_status st = check_data(t.teacher, t.data, (std::string(fn) + " (teacher)").c_str());
    if (st != NN_OK) return st;
    t.teacher->net->eval();
    return NN_OK;
}

/* One task alone (nn_train, nn_distill, and the tasks a group cannot capture). */
nn_status run_task(const nn_train_task &t, const char *fn) {
    NN_REQUIRE(t.model, fn, ": model is NULL");
    nn_status st = check_teacher(t, fn);
    if (st != NN_OK) return st;
    return train_loop(t.model, t.data, &t.params, t.loss_curve, task_loss(t), fn);
}
/* ---- fused ensembles ------------------------------------------------------------------
 * K models of one plain architecture (Conv2d, Linear, ReLU, MaxPool2d and Flatten layers: mlp,
 * lenet, cnn), trained on the same number of samples with the same recipe, run as one network
 * whose layers hold all K models: a convolution becomes a grouped convolution over the K
 * models' channels (weights (K*out, in, k, k)), a linear layer a batched matrix product
 * (weights (K, out, in)). Each model still sees its own batches in its own order and gets the
 * gradient of its own mean loss (the ensemble's loss is the sum of the K), and SGD is per
 * element, so each model trains as it would alone, up to floating-point rounding: one kernel
 * does the work of K, which is what small models on a large GPU lack. A recipe's loss (label
 * smoothing, flooding) is per model too, and distillation and extraction students fuse: each
 * student's teacher runs once over its training set before the first step (task_loss's cache),
 * and the steps read those logits, so students of different teachers share an ensemble. */
struct FusedLayer {
    enum Kind { CONV, LINEAR, RELU, MAXPOOL, FLATTEN } kind;
    int64_t stride = 1, pad = 0, pool = 2;
    int w = -1, b = -1;          // indices into the models' params (-1: none)
};

struct Fused {
    std::vector<nn_model *> m;
    int64_t K = 0, n = 0;
    std::vector<FusedLayer> layers;
    std::vector<torch::Tensor> params, masks;   // fused leaves in the models' param order; masks or undefined
    size_t first = 0;                           // the first trained one (NN_TRAIN_LAST: the classifier's)
    nn_precision precision = NN_FP32;           // the forward pass's (fuse_key makes it common)
    torch::Tensor x, y;                         // the K training sets, one after another
    torch::Tensor tl;                           // with teachers: their logits on x's rows, or undefined
    double smooth = 0, flood = 0;               // the loss's recipe (fuse_key makes it common)
    nn_distill_params distill{};
    std::vector<int64_t> offset;
    int gconv = 2;                              // GConvFn where it applies (fused_conv; PMI_GCONV=0, 1, 2)
};

/* The layers of m when every module is one the fused network can run, else empty. */
std::vector<FusedLayer> fused_layers(nn_model *m) {
    std::vector<FusedLayer> out;
    int pi = 0;
    for (const auto &c : m->net->children()) {
        FusedLayer l;
        if (auto *cv = c->as<torch::nn::Conv2dImpl>()) {
            const auto &o = cv->options;
            /* padding is a variant (std:: in PyTorch 2, c10:: in 1.13): visit finds either by ADL */
            int64_t pad = -1;
            visit([&](const auto &v) {
                if constexpr (std::is_same_v<std::decay_t<decltype(v)>, torch::ExpandingArray<2>>)
                    if ((*v)[0] == (*v)[1]) pad = (*v)[0];
            }, o.padding());
            if (o.groups() != 1 || (*o.stride())[0] != (*o.stride())[1] || (*o.dilation())[0] != 1 || (*o.dilation())[1] != 1 ||
                pad < 0)
                return {};
            l.kind = FusedLayer::CONV; l.stride = (*o.stride())[0]; l.pad = pad;
            l.w = pi++;
            if (o.bias()) l.b = pi++;
        } else if (auto *li = c->as<torch::nn::LinearImpl>()) {
            l.kind = FusedLayer::LINEAR;
            l.w = pi++;
            if (li->options.bias()) l.b = pi++;
        } else if (c->as<torch::nn::ReLUImpl>()) {
            l.kind = FusedLayer::RELU;
        } else if (auto *mp = c->as<torch::nn::MaxPool2dImpl>()) {
            const auto &o = mp->options;
            if ((*o.kernel_size())[0] != 2 || (*o.kernel_size())[1] != 2 || (*o.stride())[0] != 2 || (*o.stride())[1] != 2 ||
                (*o.padding())[0] != 0 || (*o.padding())[1] != 0 || o.ceil_mode())
                return {};
            l.kind = FusedLayer::MAXPOOL;
        } else if (c->as<torch::nn::FlattenImpl>()) {
            l.kind = FusedLayer::FLATTEN;
        } else {
            return {};
        }
        out.push_back(l);
    }
    if (pi != static_cast<int>(m->params.size()) || !m->net->buffers().empty()) return {};
    return out;
}

#ifdef PMI_CUDA_KERNELS
/* A fused ensemble's convolution by nn_cuda.cu's kernels: x (B, K*Ci, H, W) float on a GPU, w
 * (K*Co, Ci, S, S), stride 1; the input's gradient only when x wants one (not for the data). */
struct GConvFn : public torch::autograd::Function<GConvFn> {
    static torch::Tensor forward(torch::autograd::AutogradContext *ctx, const torch::Tensor &x_, const torch::Tensor &w_,
                                 const torch::Tensor &b_, int64_t K, int64_t pad) {
        torch::Tensor x = x_.contiguous(), w = w_.contiguous(), b = b_.defined() ? b_.contiguous() : b_;
        int64_t B = x.size(0), Ci = x.size(1) / K, H = x.size(2), W = x.size(3), Co = w.size(0) / K, S = w.size(2);
        torch::Tensor y = torch::empty({B, K * Co, H + 2 * pad - S + 1, W + 2 * pad - S + 1}, x.options());
        int e = pmi_gconv_forward(x.data_ptr<float>(), w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                                  y.data_ptr<float>(), B, K, Ci, Co, S, H, W, pad, c10::cuda::getCurrentCUDAStream().stream());
        TORCH_CHECK(!e, "the fused convolution's CUDA kernel: ", pmi_cuda_error(e));
        ctx->save_for_backward({x, w});
        ctx->saved_data["K"] = K;
        ctx->saved_data["pad"] = pad;
        ctx->saved_data["bias"] = b.defined();
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx, torch::autograd::variable_list g) {
        auto saved = ctx->get_saved_variables();
        torch::Tensor x = saved[0], w = saved[1], gy = g[0].contiguous();
        int64_t K = ctx->saved_data["K"].toInt(), pad = ctx->saved_data["pad"].toInt();
        int64_t B = x.size(0), Ci = x.size(1) / K, H = x.size(2), W = x.size(3), Co = w.size(0) / K, S = w.size(2);
        void *stream = c10::cuda::getCurrentCUDAStream().stream();
        torch::Tensor gx, gw, gb;
        if (ctx->needs_input_grad(0)) {
            gx = torch::empty_like(x);
            int e = pmi_gconv_dgrad(gy.data_ptr<float>(), w.data_ptr<float>(), gx.data_ptr<float>(), B, K, Ci, Co, S, H, W, pad, stream);
            TORCH_CHECK(!e, "the fused convolution's CUDA kernel (input gradient): ", pmi_cuda_error(e));
        }
        if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
            gw = torch::empty_like(w);
            if (ctx->saved_data["bias"].toBool()) gb = torch::empty({K * Co}, x.options());
            torch::Tensor scratch = torch::empty({pmi_gconv_scratch(B, K, Ci, Co, S)}, x.options());
            int e = pmi_gconv_wgrad(x.data_ptr<float>(), gy.data_ptr<float>(), gw.data_ptr<float>(),
                                    gb.defined() ? gb.data_ptr<float>() : nullptr, scratch.data_ptr<float>(), B, K, Ci, Co, S, H,
                                    W, pad, stream);
            TORCH_CHECK(!e, "the fused convolution's CUDA kernel (weight gradient): ", pmi_cuda_error(e));
        }
        return {gx, gw, gb, torch::Tensor(), torch::Tensor()};
    }
};

/* ReLU then 2x2 max-pooling of a fused network's activations (B, K*c, h, w) in pmi's kernels
 * (nn_cuda.h: pmi_relu_pool_forward): max_pool2d(relu(x)) and its gradient, the same numbers
 * bit for bit (tests/cuda_emu/check.cpp), one kernel each way instead of ATen's three (relu,
 * pooling with int64 indices, and the zero fill before the pooling's backward), saving a byte
 * per output instead of relu's output and the indices. */
struct ReluPoolFn : public torch::autograd::Function<ReluPoolFn> {
    static torch::Tensor pool(const torch::Tensor &x, torch::Tensor *pos) {
        int64_t H = x.size(2), W = x.size(3), planes = x.size(0) * x.size(1);
        torch::Tensor y = torch::empty({x.size(0), x.size(1), H / 2, W / 2}, x.options());
        if (pos) *pos = torch::empty(y.sizes(), x.options().dtype(torch::kByte));
        int e = pmi_relu_pool_forward(x.data_ptr<float>(), y.data_ptr<float>(), pos ? pos->data_ptr<uint8_t>() : nullptr, planes,
                                      H, W, c10::cuda::getCurrentCUDAStream().stream());
        TORCH_CHECK(!e, "the fused ReLU and pooling's CUDA kernel: ", pmi_cuda_error(e));
        return y;
    }
    static torch::Tensor forward(torch::autograd::AutogradContext *ctx, const torch::Tensor &x_) {
        torch::Tensor x = x_.contiguous(), pos;
        torch::Tensor y = pool(x, &pos);
        ctx->save_for_backward({pos});
        ctx->saved_data["h"] = x.size(2);
        ctx->saved_data["w"] = x.size(3);
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx, torch::autograd::variable_list g) {
        torch::Tensor pos = ctx->get_saved_variables()[0], gy = g[0].contiguous();
        int64_t H = ctx->saved_data["h"].toInt(), W = ctx->saved_data["w"].toInt();
        torch::Tensor gx = torch::empty({pos.size(0), pos.size(1), H, W}, gy.options());
        int e = pmi_relu_pool_backward(gy.data_ptr<float>(), pos.data_ptr<uint8_t>(), gx.data_ptr<float>(), pos.size(0) * pos.size(1),
                                       H, W, c10::cuda::getCurrentCUDAStream().stream());
        TORCH_CHECK(!e, "the fused ReLU and pooling's CUDA kernel (gradient): ", pmi_cuda_error(e));
        return {gx};
    }
};

/* Whether f's ReLU + pooling at h runs in pmi's kernel (ReluPoolFn): where its convolutions may
 * (f.gconv 2, the default; PMI_GCONV=0 and =1 keep ATen's), fp32 on a GPU. */
bool fused_relu_pool(const Fused &f, const torch::Tensor &h) {
    return f.gconv == 2 && f.precision == NN_FP32 && h.is_cuda() && h.scalar_type() == torch::kFloat && h.dim() == 4;
}
#endif

/* One convolution layer of the fused network on h (B, K*c, h, w): a cuDNN convolution grouped by
 * model, or GConvFn where it applies (fp32 on a GPU, stride 1, a shape the kernels take; f.gconv:
 * 0 never, 1 for layers of one input channel per model, 2 for every such layer). */
torch::Tensor fused_conv(const Fused &f, const FusedLayer &l, const torch::Tensor &h) {
    const torch::Tensor &w = f.params[l.w];
    torch::Tensor b = l.b >= 0 ? f.params[l.b] : torch::Tensor();
#ifdef PMI_CUDA_KERNELS
    if (f.gconv > (w.size(1) == 1 ? 0 : 1) && h.is_cuda() && h.scalar_type() == torch::kFloat && w.scalar_type() == torch::kFloat &&
        l.stride == 1 && f.precision == NN_FP32 &&
        pmi_gconv_supported(w.size(1), w.size(0) / f.K, w.size(2), h.size(2), h.size(3), l.pad, h.requires_grad()))
        return GConvFn::apply(h, w, b, f.K, l.pad);
#endif
    return torch::conv2d(h, w, b, l.stride, l.pad, 1, f.K);
}

/* The fused network's logits, (K, B, classes), of x (K, B, c, h, w). Convolutions run grouped by
 * model over (B, K*c, h, w) (fused_conv), which pooling and ReLU keep; the flatten turns
 * that into (K, B, features) for the batched linear layers. (An unfold + batched-matmul
 * convolution was measured 10x slower on an H100: docs/performance.md.) */
torch::Tensor fused_forward(const Fused &f, const torch::Tensor &x) {
    int64_t K = f.K, B = x.size(1);
    enum { RAW, CONV, FLAT } mode = RAW;   // (K, B, c, h, w) / (B, K*c, h, w) / (K, B, features)
    torch::Tensor h = x;
    auto to_conv = [&] {
        if (mode == RAW) { h = h.transpose(0, 1).reshape({B, K * x.size(2), x.size(3), x.size(4)}); mode = CONV; }
    };
    for (size_t i = 0; i < f.layers.size(); i++) {
        const FusedLayer &l = f.layers[i];
        switch (l.kind) {
        case FusedLayer::CONV:
            to_conv();
            h = fused_conv(f, l, h);
            break;
        case FusedLayer::MAXPOOL: to_conv(); h = torch::max_pool2d(h, 2, 2); break;
        case FusedLayer::RELU:
#ifdef PMI_CUDA_KERNELS
            if (mode == CONV && i + 1 < f.layers.size() && f.layers[i + 1].kind == FusedLayer::MAXPOOL && fused_relu_pool(f, h)) {
                h = torch::GradMode::is_enabled() && h.requires_grad() ? ReluPoolFn::apply(h) : ReluPoolFn::pool(h.contiguous(), nullptr);
                i++;   /* the pooling too */
                break;
            }
#endif
            h = torch::relu(h);
            break;
        case FusedLayer::FLATTEN:
            if (mode == RAW) h = h.reshape({K, B, -1});
            else if (mode == CONV) h = h.reshape({B, K, -1}).transpose(0, 1);
            mode = FLAT;
            break;
        case FusedLayer::LINEAR:
            h = l.b >= 0 ? torch::baddbmm(f.params[l.b].unsqueeze(1), h, f.params[l.w].transpose(1, 2))
                         : torch::bmm(h, f.params[l.w].transpose(1, 2));
            break;
        }
    }
    return h;
}

/* Builds the ensemble of the tasks t (fusable together: fuse_key equal): the K models' weights
 * and masks laid side by side, their data one after another. */
/* f's network from its models f.m: the layers, the convolution kernels' mode and the K models'
 * weights side by side (conv weights along the output channels, linear ones stacked); with
 * train, copies that learn from f.first on, and the masks of pruned tensors. */
void fused_weights(Fused &f, bool train) {
    torch::NoGradGuard ng;
    f.K = static_cast<int64_t>(f.m.size());
    f.layers = fused_layers(f.m[0]);
    const char *gc = getenv("PMI_GCONV");
    f.gconv = gc && (!std::strcmp(gc, "0") || !std::strcmp(gc, "1")) ? gc[0] - '0' : 2;
    std::vector<bool> conv(f.m[0]->params.size());
    for (const FusedLayer &l : f.layers)
        if (l.kind == FusedLayer::CONV) { conv[l.w] = true; if (l.b >= 0) conv[l.b] = true; }
    for (size_t i = 0; i < f.m[0]->params.size(); i++) {
        std::vector<torch::Tensor> ps, ms;
        bool masked = false;
        for (nn_model *m : f.m) {
            ps.push_back(m->params[i]);
            masked |= m->masks[i].defined();
            if (train) ms.push_back(m->masks[i].defined() ? m->masks[i] : torch::ones_like(m->params[i]));
        }
        torch::Tensor w = conv[i] ? torch::cat(ps) : torch::stack(ps);
        f.params.push_back(train ? w.clone().set_requires_grad(i >= f.first) : w);
        f.masks.push_back(train && masked ? (conv[i] ? torch::cat(ms) : torch::stack(ms)) : torch::Tensor());
    }
}

std::unique_ptr<Fused> fused_build(const std::vector<const nn_train_task *> &t) {
    auto f = std::make_unique<Fused>();
    f->n = t[0]->data->x.size(0);
    for (const nn_train_task *x : t) f->m.push_back(x->model);
    f->first = t[0]->params.trainable == NN_TRAIN_LAST ? static_cast<size_t>(f->m[0]->last_first) : 0;
    f->precision = t[0]->params.precision;
    fused_weights(*f, true);
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> xs, ys;
    for (const nn_train_task *x : t) {
        f->offset.push_back(static_cast<int64_t>(xs.size()) * f->n);
        xs.push_back(x->data->x);
        ys.push_back(x->data->y);
    }
    f->x = torch::cat(xs);
    f->y = torch::cat(ys);
    f->smooth = t[0]->params.label_smoothing;
    f->flood = t[0]->params.flood;
    if (t[0]->teacher) {   /* each student's frozen teacher, once over its training set (task_loss's cache) */
        std::vector<torch::Tensor> tls;
        for (const nn_train_task *x : t) tls.push_back(teacher_logits(x->teacher, x->data));
        f->tl = torch::cat(tls);
        f->distill = t[0]->distill;
    }
    return f;
}

/* Copies the trained ensemble back into its models. */
void fused_unpack(const Fused &f) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < f.params.size(); i++) {
        torch::Tensor v = f.params[i].view(torch::IntArrayRef([&] {
            std::vector<int64_t> s{f.K};
            auto one = f.m[0]->params[i].sizes();
            s.insert(s.end(), one.begin(), one.end());
            return s;
        }()));
        for (int64_t k = 0; k < f.K; k++) f.m[k]->params[i].copy_(v[k]);
    }
}

/* ---- fused evaluation (nn_eval_many) --------------------------------------------------
 * Models that nn_eval_logp would run one after another (an attack batch's attacked models) run
 * K at a time as one fused network (fused_forward, no gradients), each on its own data: one
 * launch per layer for all K, and one copy to the host per chunk instead of one per model. */
constexpr int64_t kEvalBytes = int64_t{1} << 30;   /* the activations of one chunk of all members, about */

/* Floats of every layer's output for one image of shape (c, h, w) in f's network. */
int64_t activation_floats(const Fused &f, int64_t c, int64_t h, int64_t w) {
    int64_t total = 0, feat = c * h * w;
    for (const FusedLayer &l : f.layers) {
        switch (l.kind) {
        case FusedLayer::CONV: {
            const torch::Tensor &wt = f.params[l.w];
            int64_t S = wt.size(2);
            c = wt.size(0) / f.K;
            h = (h + 2 * l.pad - S) / l.stride + 1;
            w = (w + 2 * l.pad - S) / l.stride + 1;
            feat = c * h * w;
            break;
        }
        case FusedLayer::MAXPOOL: h /= 2; w /= 2; feat = c * h * w; break;
        case FusedLayer::LINEAR: feat = f.params[l.w].size(1); break;
        default: break;
        }
        total += feat;
    }
    return total;
}

/* Whether a and b (with data da, db) may share a fused evaluation: a plain architecture
 * (fused_layers), the same parameter shapes and device, data of one size. Their interfaces may
 * differ: each member's queries and answers go through its own. */
bool eval_fusable(nn_model *a, const nn_data *da, nn_model *b, const nn_data *db) {
    if (a->arch != b->arch || a->device != b->device || da->x.sizes() != db->x.sizes() ||
        a->params.size() != b->params.size())
        return false;
    for (size_t i = 0; i < a->params.size(); i++)
        if (a->params[i].sizes() != b->params[i].sizes()) return false;
    return true;
}

/* The most members with an input transform in one fused evaluation: each holds its transformed
 * chunk of kQueryChunk queries (x.sizes() per sample) while the chunk runs, within about kEvalBytes. */
int64_t eval_input_members(const torch::Tensor &x) {
    return std::max<int64_t>(2, kEvalBytes / (4 * kQueryChunk * (x.numel() / std::max<int64_t>(1, x.size(0)))));
}

/* The log-probabilities (logp[k], where not NULL) and accuracy (acc[k], where acc[k] is not NULL)
 * of m[k] on d[k], the K models as one fused network, in slices of about kEvalBytes of
 * activations; through each member's interface (eval_chunks's answers): then the slices lie
 * within chunks of kQueryChunk queries, each member's input transform acts on a whole chunk
 * before its slices run and its output transform on the chunk's log-probabilities after. */
void eval_fused(const std::vector<nn_model *> &m, const std::vector<const nn_data *> &d, const std::vector<float *> &logp,
                const std::vector<double *> &acc) {
    torch::NoGradGuard ng;
    Fused f;
    f.m = m;
    fused_weights(f, false);
    const int64_t n = d[0]->x.size(0), classes = m[0]->spec.classes;
    const auto &xs0 = d[0]->x.sizes();
    const int64_t per = 4 * (activation_floats(f, xs0[1], xs0[2], xs0[3]) + xs0[1] * xs0[2] * xs0[3]);   /* bytes a model-image */
    int64_t B = std::max<int64_t>(1, std::min<int64_t>(n, kEvalBytes / (per * f.K)));
    bool want_logp = false, want_acc = false, iface = false;
    for (int64_t k = 0; k < f.K; k++) {
        want_logp |= logp[k] != nullptr; want_acc |= acc[k] != nullptr;
        iface |= m[k]->iface.input != NN_IN_NONE || m[k]->iface.output != NN_OUT_NONE;
    }
    const int64_t C = iface ? kQueryChunk : B;   /* a chunk: its queries and answers transformed together */
    B = std::min(B, C);
    torch::Tensor correct = torch::zeros({f.K}, d[0]->y.options().dtype(torch::kLong));
    for (int64_t c = 0; c < n; c += C) {
        const int64_t ce = std::min(n, c + C);
        std::vector<torch::Tensor> q(f.K), lps;
        for (int64_t k = 0; k < f.K; k++) q[k] = query_input(m[k]->iface, d[k]->x.slice(0, c, ce), c);
        for (int64_t s = c; s < ce; s += B) {
            std::vector<torch::Tensor> xs;
            for (int64_t k = 0; k < f.K; k++) xs.push_back(q[k].slice(0, s - c, std::min(ce, s + B) - c));
            lps.push_back(torch::log_softmax(fused_forward(f, torch::stack(xs)), 2));   /* (K, slice, classes) */
        }
        torch::Tensor lp = lps.size() == 1 ? lps[0] : torch::cat(lps, 1);           /* (K, ce - c, classes) */
        if (iface) {
            std::vector<torch::Tensor> out;
            for (int64_t k = 0; k < f.K; k++) out.push_back(query_output(m[k]->iface, lp[k], c));
            lp = torch::stack(out);
        }
        if (want_acc) {
            std::vector<torch::Tensor> ys;
            for (int64_t k = 0; k < f.K; k++) ys.push_back(d[k]->y.slice(0, c, ce));
            correct += lp.argmax(2).eq(torch::stack(ys)).sum(1);
        }
        if (want_logp) {
            torch::Tensor host = lp.to(torch::kCPU, torch::kFloat).contiguous();
            for (int64_t k = 0; k < f.K; k++)
                if (logp[k]) std::memcpy(logp[k] + c * classes, host[k].data_ptr<float>(), sizeof(float) * (ce - c) * classes);
        }
    }
    if (want_acc) {
        torch::Tensor c = correct.to(torch::kCPU);
        for (int64_t k = 0; k < f.K; k++)
            if (acc[k]) *acc[k] = static_cast<double>(c[k].item<int64_t>()) / static_cast<double>(n);
    }
}

/* Whether nn_eval_many fuses models on device dev: on a GPU; PMI_EVAL_FUSE=0 never, =1 also on
 * the CPU (the tests'). */
bool eval_fuse(const torch::Device &dev) {
    const char *v = getenv("PMI_EVAL_FUSE");
    if (v && *v) return std::strcmp(v, "0") != 0;
    return dev.is_cuda();
}

/* Each sample's loss in the ensemble's logits lg (K * B, classes) of rows `rows` of f.x: task_loss's
 * per model (its mean over a model's B samples is that model's loss): cross-entropy with the
 * recipe's label smoothing and flooding, or distillation from the teachers' cached logits. */
torch::Tensor fused_loss(const Fused &f, const torch::Tensor &lg, const torch::Tensor &y, const torch::Tensor &rows) {
    auto none = nnf::CrossEntropyFuncOptions().reduction(torch::kNone);
    if (f.tl.defined()) {
        torch::Tensor tl = f.tl.index_select(0, rows);
        const nn_distill_params &d = f.distill;
        if (d.hard) return nnf::cross_entropy(lg, tl.argmax(1), none);
        torch::Tensor lt = torch::log_softmax(tl / d.temperature, 1), ls = torch::log_softmax(lg / d.temperature, 1);
        return d.alpha * d.temperature * d.temperature * (lt.exp() * (lt - ls)).sum(1) + (1.0 - d.alpha) * nnf::cross_entropy(lg, y, none);
    }
    torch::Tensor l = nnf::cross_entropy(lg, y, none.label_smoothing(f.smooth));
    return f.flood > 0 ? (l - f.flood).abs() + f.flood : l;
}

/* One step of the ensemble on idx (K, bs) of rows of f.x; the K mean losses, detached. */
StepFn fused_step(Fused &f, torch::optim::Optimizer &opt) {
    return [&f, &opt](const torch::Tensor &idx) {
        int64_t B = idx.size(1);
        torch::Tensor flat = idx.reshape({-1});
        torch::Tensor x = f.x.index_select(0, flat), y = f.y.index_select(0, flat);
        x = x.view({f.K, B, x.size(1), x.size(2), x.size(3)});
        torch::Tensor logits;
        {
            Autocast ac(f.precision, x);
            logits = fused_forward(f, x).to(torch::kFloat);
        }
        torch::Tensor per = fused_loss(f, logits.reshape({f.K * B, -1}), y, flat).view({f.K, B}).mean(1);
        per.sum().backward();
        opt.step();
        {
            torch::NoGradGuard ng;
            for (size_t i = 0; i < f.params.size(); i++)
                if (f.masks[i].defined()) f.params[i].mul_(f.masks[i]);
        }
        return per.detach();
    };
}

/* The epoch's order of every model, as rows of f.x: (K, n), each model shuffled with its own seed. */
torch::Tensor fused_perm(const Fused &f, const std::vector<const nn_train_task *> &t, int e) {
    std::vector<torch::Tensor> rows;
    for (int64_t k = 0; k < f.K; k++)
        rows.push_back(torch::randperm(f.n, cpu_generator(t[k]->params.seed + e), torch::kLong) + f.offset[k]);
    return torch::stack(rows).to(f.x.device());
}

/* Tasks that can share an ensemble have equal keys; "" for a task that trains alone. */
std::string fuse_key(const nn_train_task &t) {
    const nn_train_params &p = t.params;
    const char *env = getenv("PMI_FUSE");
    bool on = env && *env ? strcmp(env, "0") != 0 : t.model && t.model->device.is_cuda();
    const char *cache = getenv("PMI_TEACHER_CACHE");   /* students fuse with their teachers' logits cached */
    if (!on || !t.model || !t.data || (t.teacher && cache && !strcmp(cache, "0")) || p.optimizer != NN_SGD ||
        p.clip > 0 || p.adv_eps > 0 || fused_layers(t.model).empty())
        return "";
    const nn_model_spec &s = t.model->spec;
    std::ostringstream k;
    k << t.model->arch << '|' << s.c << 'x' << s.h << 'x' << s.w << '|' << s.classes << '|' << s.width << '|'
      << t.model->device.str() << '|' << t.data->x.size(0) << '|' << p.lr << '|' << p.momentum << '|' << p.weight_decay << '|'
      << p.epochs << '|' << p.batch_size << '|' << p.schedule << '|' << p.step_size << '|' << p.gamma << '|' << p.trainable << '|' << p.precision
      << '|' << p.label_smoothing << '|' << p.flood;
    if (t.teacher) k << "|teacher " << t.distill.hard << ' ' << t.distill.temperature << ' ' << t.distill.alpha;
    return k.str();
}

/* Trains fused ensembles eagerly, one after another (the CPU, or a GPU without graphs). */
nn_status train_fused_eager(const std::vector<const nn_train_task *> &t) {
    for (const nn_train_task *x : t) {
        nn_status st = check_train_params(&x->params, "nn_train_tasks");
        if (st == NN_OK) st = check_data(x->model, x->data, "nn_train_tasks");
        if (st == NN_OK) st = check_labels(x->model, x->data, "nn_train_tasks");
        if (st == NN_OK) st = check_teacher(*x, "nn_train_tasks");
        if (st != NN_OK) return st;
    }
    auto f = fused_build(t);
    const nn_train_params *p = &t[0]->params;
    auto opt = make_optimizer(p, std::vector<torch::Tensor>(f->params.begin() + f->first, f->params.end()));
    StepFn step = fused_step(*f, *opt);
    for (const nn_train_task *x : t)
        if (x->loss_curve) std::fill(x->loss_curve, x->loss_curve + p->epochs, std::nan(""));
    for (int e = 0; e < p->epochs; e++) {
        set_lr(*opt, p->optimizer, scheduled_lr(p, e));
        torch::Tensor loss = run_epoch(step, fused_perm(*f, t, e), p->batch_size, *opt).to(torch::kCPU, torch::kDouble);
        bool stop = false;
        for (int64_t k = 0; k < f->K; k++) {
            double l = loss[k].item<double>();
            if (t[k]->loss_curve) t[k]->loss_curve[e] = l;
            if (t[k]->params.on_epoch && t[k]->params.on_epoch(t[k]->params.ctx, e, p->epochs, l)) stop = true;
        }
        if (stop) break;
    }
    fused_unpack(*f);
    for (nn_model *m : f->m) m->net->eval();
    return NN_OK;
}

}  // namespace

nn_status nn_train(nn_model *m, const nn_data *d, const nn_train_params *p, double *loss_curve) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(p, "nn_train: params are NULL");
        nn_train_task t = {m, d, *p, nullptr, {}, loss_curve};
        return run_task(t, "nn_train");
    });
}

#ifdef PMI_CUDA
namespace {
/* A CUDA stream created for one group member and destroyed with it. The pool's streams are
 * handed out round-robin (32 per device), so in a large group two members' streams, or one's
 * capture stream and another's replay stream, were the same stream; replays of graphs
 * captured for models of different shapes then raced (an illegal memory access, or a hang, on
 * an H100 with cnn and lenet models in one group). Own streams share nothing. */
struct OwnStream {
    cudaStream_t raw = nullptr;
    c10::cuda::CUDAStream stream;
    explicit OwnStream(c10::DeviceIndex dev)
        : stream([&] {
              c10::cuda::CUDAGuard g(dev);
              C10_CUDA_CHECK(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking));
              return c10::cuda::getStreamFromExternal(raw, dev);
          }()) {}
    ~OwnStream() {
        if (raw) { cudaStreamSynchronize(raw); cudaStreamDestroy(raw); }
    }
    OwnStream(const OwnStream &) = delete;
    OwnStream &operator=(const OwnStream &) = delete;
};

/* One member of a group: one task, or a fused ensemble of several; its optimizer, captured
 * step, streams and current epoch. */
struct Member {
    std::vector<const nn_train_task *> t;
    const nn_train_params *p;            /* t[0]'s (an ensemble's tasks share all but the seed) */
    nn_model *m;                         /* t[0]'s model */
    std::unique_ptr<Fused> fused;
    std::optional<FreezeGuard> freeze;   /* NN_TRAIN_LAST: the layers before the last stay fixed */
    std::optional<Layout> layout;        /* channels_last while training */
    std::unique_ptr<torch::optim::Optimizer> opt;
    LossFn loss_fn;
    StepFn step;
    OwnStream own, side;    /* replays; warm-up and capture */
    c10::cuda::CUDAStream stream;
    GraphStep gs;
    GraphEpoch ep;
    torch::Tensor loss;
    explicit Member(std::vector<const nn_train_task *> tt)
        : t(std::move(tt)), p(&t[0]->params), m(t[0]->model), own(m->device.index()), side(m->device.index()),
          stream(own.stream) {
        gs.side = side.stream;
    }
    /* the graph and the tensors its replays use go before the streams they ran on */
    ~Member() {
        stream.synchronize();
        gs.graph.reset();
        gs.idx = gs.total = torch::Tensor();
        ep.perm = ep.eager = loss = torch::Tensor();
        opt.reset();
        fused.reset();
        layout.reset();
    }
    torch::Tensor perm(int e) const {
        if (fused) return fused_perm(*fused, t, e);
        return torch::randperm(t[0]->data->x.size(0), cpu_generator(p->seed + e), torch::kLong).to(m->device);
    }
};

/* A task a group can capture: on a GPU, SGD, at least 5 batches. */
bool task_eligible(const nn_train_task &t) {
    return t.model && t.data && graph_eligible(t.model, &t.params, t.data->x.size(0));
}

/* Trains the members (each a list of tasks: one, or an ensemble) concurrently. */
nn_status train_group_cuda(const std::vector<std::vector<const nn_train_task *>> &members) {
    std::vector<std::unique_ptr<Member>> g;
    int epochs = 0;
    for (const auto &ts : members) {
        for (const nn_train_task *t : ts) {
            nn_status st = check_train_params(&t->params, "nn_train_group");
            if (st == NN_OK) st = check_data(t->model, t->data, "nn_train_group");
            if (st == NN_OK) st = check_labels(t->model, t->data, "nn_train_group");
            if (st == NN_OK) st = check_teacher(*t, "nn_train_group");
            if (st != NN_OK) return st;
            if (t->loss_curve) std::fill(t->loss_curve, t->loss_curve + t->params.epochs, std::nan(""));
        }
        g.push_back(std::make_unique<Member>(ts));
        Member &x = *g.back();
        const nn_train_task *t = ts[0];
        if (ts.size() > 1) {
            x.fused = fused_build(ts);
            x.opt = make_optimizer(&t->params, std::vector<torch::Tensor>(x.fused->params.begin() + x.fused->first, x.fused->params.end()));
            x.step = fused_step(*x.fused, *x.opt);
        } else {
            nn_model *m = t->model;
            size_t first = t->params.trainable == NN_TRAIN_LAST ? static_cast<size_t>(m->last_first) : 0;
            x.freeze.emplace(m->params, first);
            x.layout.emplace(m, t->params.channels_last != 0);
            std::vector<torch::Tensor> trainable(m->params.begin() + first, m->params.end());
            x.opt = make_optimizer(&t->params, trainable);
            x.loss_fn = task_loss(*t);
            x.step = model_step(m, t->data, *x.opt, x.loss_fn, &t->params, &x.gs.feed);
            /* as train_loop: frozen layers run in eval mode */
            if (t->params.trainable == NN_TRAIN_LAST) m->net->eval();
            else m->net->train();
        }
        epochs = std::max(epochs, t->params.epochs);
    }
    /* each member's work goes to its own stream, after what the current stream has queued */
    at::cuda::CUDAEvent ready;
    ready.record(c10::cuda::getCurrentCUDAStream());
    for (auto &x : g) ready.block(x->stream);
    for (int e = 0; e < epochs; e++) {
        for (auto &x : g) {
            if (e >= x->p->epochs) continue;
            c10::cuda::CUDAStreamGuard guard(x->stream);
            double lr = scheduled_lr(x->p, e);
            set_lr(*x->opt, x->p->optimizer, lr);
            graph_begin(x->step, x->perm(e), x->p->batch_size, *x->opt, x->gs, lr, x->ep);
        }
        for (bool any = true; any;) {
            any = false;
            for (auto &x : g) {
                if (e >= x->p->epochs) continue;
                c10::cuda::CUDAStreamGuard guard(x->stream);
                any |= graph_replay(x->gs, x->ep);
            }
        }
        for (auto &x : g) {
            if (e >= x->p->epochs) continue;
            c10::cuda::CUDAStreamGuard guard(x->stream);
            x->loss = graph_end(x->step, *x->opt, x->gs, x->ep);
        }
        bool stop = false;
        for (auto &x : g) {
            if (e >= x->p->epochs) continue;
            bool wanted = false;
            for (const nn_train_task *t : x->t) wanted |= t->loss_curve || t->params.on_epoch;
            if (!wanted) continue;
            c10::cuda::CUDAStreamGuard guard(x->stream);  /* read the loss on the stream that made it */
            torch::Tensor host = x->loss.to(torch::kCPU, torch::kDouble).reshape({-1});
            for (size_t k = 0; k < x->t.size(); k++) {
                const nn_train_task *t = x->t[k];
                double loss = host[static_cast<int64_t>(k)].item<double>();
                if (t->loss_curve) t->loss_curve[e] = loss;
                if (t->params.on_epoch && t->params.on_epoch(t->params.ctx, e, t->params.epochs, loss)) stop = true;
            }
        }
        if (stop) break;   /* on_epoch asked to stop: the whole group ends after this epoch */
    }
    at::cuda::CUDAEvent done;
    auto cur = c10::cuda::getCurrentCUDAStream();
    for (auto &x : g) {
        done.record(x->stream);
        done.block(cur);
        if (x->fused) { c10::cuda::CUDAStreamGuard guard(x->stream); fused_unpack(*x->fused); }
        for (const nn_train_task *t : x->t) t->model->net->eval();
    }
    for (auto &x : g) x->stream.synchronize();
    g.clear();   /* graphs, then streams */
    /* PyTorch keeps a cuBLAS workspace (32 MiB on Hopper) per handle and stream and never drops
     * that of a destroyed stream: each member's two streams left about 64 MiB in live tensors,
     * and a paper-scale robustness run (2750 attacked models in one batch of jobs) ran an H200
     * out of memory. No graph is left that could replay with a dropped workspace. */
    at::cuda::clearCublasWorkspaces();
    /* The caching allocator keeps freed blocks for the stream they were used on, and the
     * members' streams are gone: their cached blocks could only serve a later allocation after an
     * out-of-memory retry frees them, which a CUDA graph's capture cannot do. A paper-scale
     * robustness run (one H100, 2026-12-06) ended its 10th attack batch with 58.8 GiB held and
     * unallocated, and the next capture ran out of memory; the cached blocks go back now. */
    c10::cuda::CUDACachingAllocator::emptyCache();
    return NN_OK;
}
}  // namespace
#endif

thread_local int g_fused_models = 0;   /* models the calling thread's last nn_train_tasks fused */
int nn_fused_models(void) { return g_fused_models; }
int64_t nn_graph_replays(void) { return g_graph_replays; }

/* The largest ensemble nn_train_tasks fuses (PMI_FUSE_MAX overrides). */
static size_t fuse_max() {
    const char *v = getenv("PMI_FUSE_MAX");
    long n = v && *v ? atol(v) : 32;
    return n < 1 ? 1 : static_cast<size_t>(n);
}

/* The smallest ensemble fused by default (PMI_FUSE_MIN overrides; PMI_FUSE=1 fuses any two), 4.
 * Before pmi's own fused convolutions (e237077), on an H100, 8 cnn models trained at 429-436k
 * images/s on their own streams against 359-367k as one ensemble (3 runs each), 8 LeNets at
 * 798-873k against 706-816k, and the default was 16. With them, on an H100 (2026-12-06), the
 * paper-scale robustness experiment at 5 seeds trained its 25 models (groups of 5 LeNets of
 * one recipe and 5 MLPs) in 12.8-13.3 s on streams and 8.8 s as ensembles of 5, and its attacks
 * in blocks of 25 took 29.3 s against 31.9 s; in one process 8 LeNets trained at 1117k images/s
 * fused against 836k apart, 8 small CNNs at 429k against 425k (docs/performance.md). */
static size_t fuse_min() {
    const char *f = getenv("PMI_FUSE");
    if (f && *f && strcmp(f, "0") != 0) return 2;
    const char *v = getenv("PMI_FUSE_MIN");
    long n = v && *v ? atol(v) : 4;
    return n < 2 ? 2 : static_cast<size_t>(n);
}

nn_status nn_train_tasks(const nn_train_task *t, int k) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(k >= 0 && (k == 0 || t), "nn_train_tasks: bad arguments");
        /* tasks with equal fuse keys form ensembles of at most fuse_max(), as equal in size as
         * may be (130 of one key: 5 of 26, not 4 of 32 and 2 that train apart); the rest alone */
        std::vector<std::vector<const nn_train_task *>> members, same;
        std::vector<std::string> keys;
        for (int i = 0; i < k; i++) {
            std::string key = fuse_key(t[i]);
            size_t j = same.size();
            if (!key.empty())
                for (j = 0; j < same.size(); j++)
                    if (keys[j] == key) break;
            if (j == same.size()) { same.push_back({}); keys.push_back(key); }
            same[j].push_back(&t[i]);
        }
        for (size_t j = 0; j < same.size(); j++) {
            size_t s = same[j].size(), e = keys[j].empty() ? s : (s + fuse_max() - 1) / fuse_max();
            /* unfusable tasks (no key) alone; else e ensembles of s / e members, one more for the
             * first s % e, unless that is below fuse_min() (PMI_FUSE_MAX below twice the
             * minimum): then full ensembles first */
            bool equal = e == 1 || s / e >= fuse_min();
            for (size_t q = 0, at = 0; at < s; q++) {
                size_t len = keys[j].empty() ? 1 : equal ? s / e + (q < s % e) : std::min(fuse_max(), s - at);
                members.emplace_back(same[j].begin() + (long)at, same[j].begin() + (long)(at + len));
                at += len;
            }
        }
        for (size_t j = 0, n = members.size(); j < n; j++)   /* ensembles below fuse_min() train apart */
            if (members[j].size() > 1 && members[j].size() < fuse_min()) {
                for (size_t i = 1; i < members[j].size(); i++) members.push_back({members[j][i]});
                members[j].resize(1);
            }
        std::vector<const nn_train_task *> rest;
        std::vector<std::vector<const nn_train_task *>> fused;
        g_fused_models = 0;
        for (auto &mb : members) g_fused_models += mb.size() > 1 ? static_cast<int>(mb.size()) : 0;
#ifdef PMI_CUDA
        std::vector<std::vector<const nn_train_task *>> group;
        for (auto &mb : members) {
            if (task_eligible(*mb[0])) group.push_back(mb);
            else if (mb.size() > 1) fused.push_back(mb);
            else rest.push_back(mb[0]);
        }
        if (group.size() == 1 && group[0].size() == 1) rest.insert(rest.begin(), group[0][0]);
        else if (!group.empty()) {
            nn_status st = train_group_cuda(group);
            if (st != NN_OK) return st;
        }
#else
        for (auto &mb : members) {
            if (mb.size() > 1) fused.push_back(mb);
            else rest.push_back(mb[0]);
        }
#endif
        for (auto &mb : fused) {
            nn_status st = train_fused_eager(mb);
            if (st != NN_OK) return st;
        }
        for (const nn_train_task *x : rest) {
            nn_status st = run_task(*x, x->teacher ? "nn_distill" : "nn_train");
            if (st != NN_OK) return st;
        }
        return NN_OK;
    });
}

nn_status nn_train_group(nn_model *const *m, const nn_data *const *d, const nn_train_params *p, int k,
                         double *const *loss_curves) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(k >= 0 && (k == 0 || (m && d && p)), "nn_train_group: bad arguments");
        std::vector<nn_train_task> t((size_t)k);
        for (int i = 0; i < k; i++) t[i] = nn_train_task{m[i], d[i], p[i], nullptr, {}, loss_curves ? loss_curves[i] : nullptr};
        return nn_train_tasks(t.data(), k);
    });
}

namespace {
/* nn_eval_logp_noisy's and nn_accuracy's work on one model (checked; under ExactFp32). */
void eval_logp_one(nn_model *m, const nn_data *d, double sigma, uint64_t seed, float *logp) {
    int64_t k = m->spec.classes;
    eval_chunks(m, d->x, [&](int64_t start, const torch::Tensor &lp) {
        torch::Tensor host = lp.to(torch::kCPU, torch::kFloat).contiguous();
        std::memcpy(logp + start * k, host.data_ptr<float>(), sizeof(float) * host.numel());
    }, sigma, seed);
}

double accuracy_one(nn_model *m, const nn_data *d) {
    torch::Tensor correct = torch::zeros({}, d->y.options());
    eval_chunks(m, d->x, [&](int64_t start, const torch::Tensor &lp) {
        correct += lp.argmax(1).eq(d->y.slice(0, start, start + lp.size(0))).sum();
    });
    return static_cast<double>(correct.item<int64_t>()) / static_cast<double>(d->x.size(0));
}
}  // namespace

nn_status nn_eval_logp_noisy(nn_model *m, const nn_data *d, double sigma, uint64_t seed, float *logp) {
    return guard(__func__, [&]() -> nn_status {
        nn_status st = check_data(m, d, "nn_eval_logp");
        if (st != NN_OK) return st;
        NN_REQUIRE(logp || d->x.size(0) == 0, "nn_eval_logp: logp is NULL");
        NN_REQUIRE(sigma >= 0 && std::isfinite(sigma), "nn_eval_logp_noisy: sigma must be finite and >= 0, got ", sigma);
        ExactFp32 exact;
        eval_logp_one(m, d, sigma, seed, logp);
        return NN_OK;
    });
}

nn_status nn_eval_logp(nn_model *m, const nn_data *d, float *logp) { return nn_eval_logp_noisy(m, d, 0, 0, logp); }

nn_status nn_accuracy(nn_model *m, const nn_data *d, double *acc) {
    return guard(__func__, [&]() -> nn_status {
        nn_status st = check_data(m, d, "nn_accuracy");
        if (st != NN_OK) return st;
        NN_REQUIRE(acc, "nn_accuracy: acc is NULL");
        NN_REQUIRE(d->x.size(0) > 0, "nn_accuracy: empty data");
        ExactFp32 exact;
        *acc = accuracy_one(m, d);
        return NN_OK;
    });
}

thread_local int g_eval_fused = 0;   /* models the calling thread's last nn_eval_many fused */
int nn_eval_fused_models(void) { return g_eval_fused; }

nn_status nn_eval_many(nn_model *const *m, const nn_data *const *d, int k, float *const *logp, double *acc) {
    return guard(__func__, [&]() -> nn_status {
        g_eval_fused = 0;
        NN_REQUIRE(k >= 0 && (k == 0 || (m && d)), "nn_eval_many: need k >= 0 models and data");
        NN_REQUIRE(logp || acc, "nn_eval_many: neither logp nor acc asked for");
        for (int i = 0; i < k; i++) {
            nn_status st = check_data(m[i], d[i], "nn_eval_many");
            if (st != NN_OK) return st;
            NN_REQUIRE(!logp || logp[i] || d[i]->x.size(0) == 0, "nn_eval_many: logp[", i, "] is NULL");
            NN_REQUIRE(!acc || d[i]->x.size(0) > 0, "nn_eval_many: empty data for accuracy (model ", i, ")");
        }
        ExactFp32 exact;
        std::vector<bool> done(static_cast<size_t>(k));
        for (int i = 0; i < k; i++) {
            if (done[i]) continue;
            std::vector<int> g{i};
            if (eval_fuse(m[i]->device) && !fused_layers(m[i]).empty() && d[i]->x.size(0) > 0) {
                const int64_t most_in = eval_input_members(d[i]->x);
                int64_t in = m[i]->iface.input != NN_IN_NONE;
                for (int j = i + 1; j < k; j++) {
                    if (done[j] || !eval_fusable(m[i], d[i], m[j], d[j])) continue;
                    if (m[j]->iface.input != NN_IN_NONE && in >= most_in) continue;   /* into a later group */
                    in += m[j]->iface.input != NN_IN_NONE;
                    g.push_back(j);
                }
            }
            if (g.size() < 2) {
                if (logp) eval_logp_one(m[i], d[i], 0, 0, logp[i]);
                if (acc) acc[i] = accuracy_one(m[i], d[i]);
                done[i] = true;
                continue;
            }
            std::vector<nn_model *> gm;
            std::vector<const nn_data *> gd;
            std::vector<float *> gl;
            std::vector<double *> ga;
            for (int j : g) {
                gm.push_back(m[j]); gd.push_back(d[j]);
                gl.push_back(logp ? logp[j] : nullptr); ga.push_back(acc ? &acc[j] : nullptr);
                done[j] = true;
            }
            eval_fused(gm, gd, gl, ga);
            g_eval_fused += static_cast<int>(g.size());
        }
        return NN_OK;
    });
}

/* ---- extern "C": modifications --------------------------------------------------- */
nn_status nn_prune(nn_model *m, double sparsity, int global, double *achieved) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_prune: model is NULL");
        NN_REQUIRE(sparsity >= 0 && sparsity <= 1, "nn_prune: sparsity must be in [0, 1], got ",
                   sparsity);
        torch::NoGradGuard ng;
        std::vector<size_t> idx = prunable_indices(m);
        if (global) prune_group(m, idx, sparsity);
        else
            for (size_t i : idx) prune_group(m, {i}, sparsity);
        apply_masks(m);
        if (achieved) *achieved = nn_sparsity(m);
        return NN_OK;
    });
}

double nn_sparsity(const nn_model *m) {
    double r = std::nan("");
    guard(__func__, [&]() -> nn_status {
        if (!m) return NN_EINVAL;
        int64_t zeros = 0, total = 0;
        for (size_t i : prunable_indices(m)) {
            zeros += m->params[i].eq(0).sum().item<int64_t>();
            total += m->params[i].numel();
        }
        r = total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0;
        return NN_OK;
    });
    return r;
}

nn_status nn_quantize(nn_model *m, int bits) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_quantize: model is NULL");
        NN_REQUIRE(bits >= 1 && bits <= 16, "nn_quantize: bits must be in [1, 16], got ", bits);
        torch::NoGradGuard ng;
        double levels = std::ldexp(1.0, bits) - 1.0;
        for (torch::Tensor &t : m->params) {
            double lo = t.min().item<double>(), hi = t.max().item<double>();
            if (!(hi > lo)) continue;
            double step = (hi - lo) / levels;
            t.sub_(lo).div_(step).round_().mul_(step).add_(lo);
        }
        apply_masks(m);
        return NN_OK;
    });
}

nn_status nn_add_noise(nn_model *m, double sigma, uint64_t seed) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_add_noise: model is NULL");
        NN_REQUIRE(sigma >= 0, "nn_add_noise: sigma must be >= 0, got ", sigma);
        torch::NoGradGuard ng;
        at::Generator gen = cpu_generator(seed);
        for (torch::Tensor &t : m->params) {
            double sd = (t - t.mean()).pow(2).mean().sqrt().item<double>();
            torch::Tensor z = torch::randn(t.sizes(), gen, torch::kFloat).to(t.device(), t.scalar_type());
            t.add_(z, sigma * sd);
        }
        apply_masks(m);
        return NN_OK;
    });
}

nn_status nn_shift_weights(nn_model *m, double shift, double sigma, uint64_t seed) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_shift_weights: model is NULL");
        NN_REQUIRE(shift >= 0 && sigma >= 0, "nn_shift_weights: need shift, sigma >= 0, got ", shift, ", ", sigma);
        torch::NoGradGuard ng;
        for (size_t i = 0; i < m->params.size(); i++) {
            torch::Tensor &t = m->params[i];
            if (t.dim() != 4) continue;
            double sd = (t - t.mean()).pow(2).mean().sqrt().item<double>();
            torch::Tensor z = seeded_randn(t, seed + i).to(t.scalar_type());
            t.sub_(t.mean(0, true) * shift + z * (sigma * sd));
        }
        apply_masks(m);
        return NN_OK;
    });
}

}  // extern "C"

namespace {
/* The index of parameter t in m->params (its mask's index), or -1. */
int param_index(const nn_model *m, const torch::Tensor &t) {
    for (size_t i = 0; i < m->params.size(); i++)
        if (m->params[i].is_same(t)) return static_cast<int>(i);
    return -1;
}

/* t (and its mask) reordered along dim by index. */
void reorder(nn_model *m, torch::Tensor t, int64_t dim, const torch::Tensor &index) {
    if (!t.defined()) return;
    t.copy_(t.index_select(dim, index));
    int i = param_index(m, t);
    if (i >= 0 && m->masks[i].defined()) m->masks[i] = m->masks[i].index_select(dim, index);
}

/* Permutes the output units of a layer (weight w, bias b, BatchNorm bn after it) and the inputs
 * of the next layer's weight nw by perm; a Linear after a Flatten takes its inputs in blocks of
 * nw.size(1) / units. */
void permute_units(nn_model *m, torch::Tensor w, torch::Tensor b, torch::nn::BatchNorm2dImpl *bn, torch::Tensor nw,
                   const torch::Tensor &perm) {
    reorder(m, w, 0, perm);
    reorder(m, b, 0, perm);
    if (bn) {
        reorder(m, bn->weight, 0, perm); reorder(m, bn->bias, 0, perm);
        reorder(m, bn->running_mean, 0, perm); reorder(m, bn->running_var, 0, perm);
    }
    int64_t units = perm.size(0), block = nw.size(1) / units;
    torch::Tensor cols = nw.dim() == 2 && block > 1
        ? (perm.view({-1, 1}) * block + torch::arange(block, perm.options()).view({1, -1})).flatten() : perm;
    reorder(m, nw, 1, cols.to(nw.device()));
}

/* The layers of m's top-level Sequential that carry units, in order, each with the BatchNorm that
 * follows it; a module that is neither a unit layer nor channel-wise (a ResNet block) ends a run:
 * -1 stands for it in `layers` (so that no pair spans it). */
struct UnitLayer { torch::nn::Module *mod; torch::Tensor w, b; torch::nn::BatchNorm2dImpl *bn; };
std::vector<UnitLayer> unit_layers(nn_model *m, std::vector<BasicBlockImpl *> *blocks) {
    std::vector<UnitLayer> out;
    for (auto &child : m->net->children()) {
        if (auto *l = child->as<torch::nn::Linear>()) out.push_back({l, l->weight, l->bias, nullptr});
        else if (auto *c = child->as<torch::nn::Conv2d>()) out.push_back({c, c->weight, c->bias, nullptr});
        else if (auto *bn = child->as<torch::nn::BatchNorm2d>()) { if (!out.empty() && out.back().mod) out.back().bn = bn; }
        else if (auto *blk = child->as<BasicBlock>()) { out.push_back({nullptr, {}, {}, nullptr}); if (blocks) blocks->push_back(blk); }
        else if (!child->as<torch::nn::ReLU>() && !child->as<torch::nn::MaxPool2d>() && !child->as<torch::nn::Flatten>() &&
                 !child->as<torch::nn::AdaptiveAvgPool2d>())
            out.push_back({nullptr, {}, {}, nullptr});
    }
    return out;
}
}  // namespace

extern "C" {
nn_status nn_shuffle_units(nn_model *m, uint64_t seed) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_shuffle_units: model is NULL");
        torch::NoGradGuard ng;
        at::Generator gen = cpu_generator(seed);
        std::vector<BasicBlockImpl *> blocks;
        std::vector<UnitLayer> L = unit_layers(m, &blocks);
        for (size_t i = 0; i + 1 < L.size(); i++) {
            if (!L[i].mod || !L[i + 1].mod) continue;
            torch::Tensor perm = torch::randperm(L[i].w.size(0), gen, torch::kLong).to(m->device);
            permute_units(m, L[i].w, L[i].b, L[i].bn, L[i + 1].w, perm);
        }
        for (BasicBlockImpl *blk : blocks) {
            torch::Tensor perm = torch::randperm(blk->conv1->weight.size(0), gen, torch::kLong).to(m->device);
            permute_units(m, blk->conv1->weight, blk->conv1->bias, blk->bn1.get(), blk->conv2->weight, perm);
        }
        return NN_OK;
    });
}

nn_status nn_prune_channels(nn_model *m, const nn_data *d, double fraction, int *pruned) {
    return guard(__func__, [&]() -> nn_status {
        nn_status st = check_data(m, d, "nn_prune_channels");
        if (st != NN_OK) return st;
        NN_REQUIRE(fraction >= 0 && fraction <= 1, "nn_prune_channels: fraction must be in [0, 1], got ", fraction);
        NN_REQUIRE(d->x.size(0) > 0, "nn_prune_channels: no data");
        std::vector<UnitLayer> L = unit_layers(m, nullptr);
        for (const UnitLayer &u : L)
            NN_REQUIRE(u.mod, "nn_prune_channels: ", m->arch, " is not sequential (Fine-Pruning removes the last "
                       "convolution's channels; use unstructured pruning, prune-ft)");
        /* the last Conv2d, else the last hidden Linear (the classifier is L.back()) */
        int hidden = static_cast<int>(L.size()) - 1, target = hidden - 1;
        NN_REQUIRE(target >= 0, "nn_prune_channels: ", m->arch, " has no hidden layer");
        for (int i = 0; i < hidden; i++) if (L[i].w.dim() == 4) target = i;
        /* mean activation per channel after the layer's ReLU, on d (eval mode, chunked) */
        torch::NoGradGuard ng;
        m->net->eval();
        int64_t units = L[target].w.size(0), n = d->x.size(0);
        torch::Tensor act = torch::zeros({units}, torch::TensorOptions().device(m->device));
        for (int64_t s = 0; s < n; s += 4096) {
            torch::Tensor x = d->x.slice(0, s, std::min(n, s + 4096));
            bool seen = false;
            for (auto &any : *m->net) {
                x = any.forward(x);
                if (any.ptr().get() == L[target].mod) seen = true;
                else if (seen && any.ptr()->as<torch::nn::ReLU>()) break;
            }
            act += (x.dim() == 4 ? x.mean({2, 3}) : x).sum(0);
        }
        int64_t k = std::llround(fraction * static_cast<double>(units));
        torch::Tensor order = std::get<1>(torch::sort(act, true, 0, false));   /* stable: ties by index */
        torch::Tensor keep = torch::ones({units}, act.options());
        if (k > 0) keep.index_fill_(0, order.slice(0, 0, k), 0.0);
        auto mask_units = [&](const torch::Tensor &t) {
            if (!t.defined()) return;
            int i = param_index(m, t);
            std::vector<int64_t> shape(t.dim(), 1);
            shape[0] = units;
            torch::Tensor mk = keep.view(shape).expand_as(t).clone();
            m->masks[i] = m->masks[i].defined() ? m->masks[i] * mk : mk;
        };
        mask_units(L[target].w);
        mask_units(L[target].b);
        if (L[target].bn) { mask_units(L[target].bn->weight); mask_units(L[target].bn->bias); }
        apply_masks(m);
        if (pruned) *pruned = static_cast<int>(k);
        return NN_OK;
    });
}

nn_status nn_reinit_last(nn_model *m, uint64_t seed) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m, "nn_reinit_last: model is NULL");
        torch::Tensor &w = m->params[m->last_first];
        torch::manual_seed(seed);
        torch::nn::Linear fresh(w.size(1), w.size(0));  // built on the CPU: same numbers on any device
        torch::NoGradGuard ng;
        w.copy_(fresh->weight);
        m->params[m->last_first + 1].copy_(fresh->bias);
        apply_masks(m);
        return NN_OK;
    });
}

nn_status nn_distill(nn_model *student, nn_model *teacher, const nn_data *d, const nn_train_params *p,
                     const nn_distill_params *dp, double *loss_curve) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(student && teacher && dp && p, "nn_distill: student, teacher, params or distill params are NULL");
        nn_train_task t = {student, d, *p, teacher, *dp, loss_curve};
        return run_task(t, "nn_distill");
    });
}

/* ---- extern "C": parameters ------------------------------------------------------- */
int nn_param_count(const nn_model *m) { return m ? static_cast<int>(m->params.size()) : 0; }
int nn_last_layer_first_param(const nn_model *m) { return m ? m->last_first : -1; }

nn_status nn_param_info(const nn_model *m, int i, const char **name, int64_t *numel, int64_t shape[4],
                        int *ndim) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_param_count(m), "nn_param_info: no parameter ", i);
        const torch::Tensor &t = m->params[i];
        NN_REQUIRE(t.dim() <= 4, "nn_param_info: parameter ", m->names[i], " has more than 4 dimensions");
        if (name) *name = m->names[i].c_str();
        if (numel) *numel = t.numel();
        if (ndim) *ndim = static_cast<int>(t.dim());
        if (shape)
            for (int k = 0; k < 4; k++) shape[k] = k < t.dim() ? t.size(k) : 0;
        return NN_OK;
    });
}

nn_status nn_param_get(const nn_model *m, int i, float *out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_param_count(m) && out, "nn_param_get: no parameter ",
                   i, " or out is NULL");
        torch::Tensor host = m->params[i].detach().to(torch::kCPU, torch::kFloat).contiguous();
        std::memcpy(out, host.data_ptr<float>(), sizeof(float) * host.numel());
        return NN_OK;
    });
}

nn_status nn_param_set(nn_model *m, int i, const float *in) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_param_count(m) && in, "nn_param_set: no parameter ",
                   i, " or in is NULL");
        torch::Tensor &t = m->params[i];
        torch::NoGradGuard ng;
        t.copy_(torch::from_blob(const_cast<float *>(in), t.sizes(), torch::kFloat));
        return NN_OK;
    });
}

/* ---- extern "C": state ----------------------------------------------------------- */
int nn_state_count(const nn_model *m) { return m ? static_cast<int>(m->state.size()) : 0; }
const nn_model_spec *nn_model_get_spec(const nn_model *m) { return m ? &m->spec : nullptr; }

nn_status nn_state_info(const nn_model *m, int i, const char **name, nn_dtype *dtype, int64_t shape[NN_MAX_DIMS],
                        int *ndim, int64_t *numel) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_state_count(m), "nn_state_info: no state entry ", i);
        const torch::Tensor &t = m->state[i];
        NN_REQUIRE(t.dim() <= NN_MAX_DIMS, "nn_state_info: ", m->state_names[i], " has more than ", NN_MAX_DIMS, " dimensions");
        NN_REQUIRE(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kLong, "nn_state_info: ",
                   m->state_names[i], " is neither float32 nor int64");
        if (name) *name = m->state_names[i].c_str();
        if (dtype) *dtype = t.scalar_type() == torch::kFloat ? NN_F32 : NN_I64;
        if (ndim) *ndim = static_cast<int>(t.dim());
        if (numel) *numel = t.numel();
        if (shape)
            for (int k = 0; k < NN_MAX_DIMS; k++) shape[k] = k < t.dim() ? t.size(k) : 0;
        return NN_OK;
    });
}

nn_status nn_state_get(const nn_model *m, int i, void *out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_state_count(m) && out, "nn_state_get: no state entry ", i, " or out is NULL");
        torch::Tensor host = m->state[i].detach().to(torch::kCPU).contiguous();
        std::memcpy(out, host.data_ptr(), host.element_size() * host.numel());
        return NN_OK;
    });
}

nn_status nn_state_set(nn_model *m, int i, const void *in) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(m && i >= 0 && i < nn_state_count(m) && in, "nn_state_set: no state entry ", i, " or in is NULL");
        torch::Tensor &t = m->state[i];
        torch::NoGradGuard ng;
        t.copy_(torch::from_blob(const_cast<void *>(in), t.sizes(), t.scalar_type()));
        return NN_OK;
    });
}

}  // extern "C"

/* ---- TorchScript ----------------------------------------------------------------------- */
struct nn_script {
    torch::jit::Module module;
    torch::Device device{torch::kCPU};
};

extern "C" {

nn_status nn_script_load(const char *path, nn_device dev, nn_script **out) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(out && path, "nn_script_load: path or out is NULL");
        *out = nullptr;
        auto s = std::make_unique<nn_script>();
        nn_status st = torch_device(dev, &s->device);
        if (st != NN_OK) return st;
        try {
            s->module = torch::jit::load(path, s->device);
        } catch (const c10::Error &e) {
            std::string why = e.what_without_backtrace();
            return fail(NN_EINVAL, cat(path, ": not a TorchScript archive that libtorch ", TORCH_VERSION,
                                       " can read: ", why.substr(0, why.find('\n'))));
        }
        s->module.eval();
        *out = s.release();
        return NN_OK;
    });
}

nn_status nn_script_eval_logp(nn_script *s, const nn_data *d, int classes, float *logp) {
    return guard(__func__, [&]() -> nn_status {
        NN_REQUIRE(s && d && (logp || d->x.size(0) == 0), "nn_script_eval_logp: script, data or logp is NULL");
        NN_REQUIRE(d->x.device() == s->device, "nn_script_eval_logp: data is on ", d->x.device().str(), ", model on ",
                   s->device.str());
        torch::NoGradGuard ng;
        const int64_t chunk = 4096, n = d->x.size(0);
        for (int64_t start = 0; start < n; start += chunk) {
            torch::Tensor x = d->x.slice(0, start, std::min(n, start + chunk));
            c10::IValue r = s->module.forward({x});
            NN_REQUIRE(r.isTensor(), "TorchScript model: forward returned a ", r.tagKind(), ", expected a tensor of logits");
            torch::Tensor y = r.toTensor();
            NN_REQUIRE(y.dim() == 2 && y.size(0) == x.size(0) && y.size(1) == classes, "TorchScript model: forward returned shape ",
                       y.sizes(), " for ", x.size(0), " samples, expected (", x.size(0), ", ", classes, ")");
            torch::Tensor lp = torch::log_softmax(y.to(torch::kFloat), 1).to(torch::kCPU).contiguous();
            std::memcpy(logp + start * classes, lp.data_ptr<float>(), sizeof(float) * lp.numel());
        }
        return NN_OK;
    });
}

void nn_script_free(nn_script *s) { delete s; }

}  // extern "C"
