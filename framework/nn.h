/* nn: the C API over libtorch (implemented in nn_torch.cpp, the project's only C++).
 *
 * Model-level calls on opaque handles. Every call returns an nn_status; on failure
 * nn_last_error() holds a thread-local message, and no C++ exception crosses into C.
 * Data is uploaded once (nn_data_create) and stays on the model's device; training does
 * not synchronise with the host per step (the epoch's mean loss is read once per epoch).
 *
 * Architectures come from one registry table (nn_arch_count/nn_arch_name): each takes an
 * input shape (c, h, w), a class count and a width. Seeding: nn_model_create's seed fixes
 * the initial weights; nn_train's seed fixes the batch order; the same seeds on CPU give the
 * same numbers. libtorch's init functions take no generator, so nn_model_create,
 * nn_model_copy and nn_reinit_last reseed libtorch's global generator: call them from one
 * thread at a time. Every model's parameters are in registration order and end with the
 * final Linear classifier's weight and bias.
 *
 * Pruning masks live beside the weights: after nn_prune() every optimizer step of
 * nn_train()/nn_distill() re-applies them, so pruned weights stay zero (fine-pruning). */
#ifndef PMI_NN_H
#define PMI_NN_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NN_OK = 0,
    NN_EINVAL,     /* bad argument (unknown arch, shape mismatch, ...) */
    NN_EDEVICE,    /* device unavailable (cuda asked for and absent) */
    NN_ETORCH,     /* libtorch raised an error; message in nn_last_error() */
} nn_status;

const char *nn_status_string(nn_status s);
const char *nn_last_error(void);     /* thread-local; "" when none */
const char *nn_torch_version(void);  /* e.g. "1.13.1" */
int nn_cuda_kernels(void);           /* 1 when the shim's own CUDA kernels (framework/nn_cuda.cu) are built in */

/* ---- named choices ----------------------------------------------------------------
 * The enums that configs and the command line name (requested device, optimizer, schedule)
 * are defined here once, each with one name table in nn_torch.cpp. <enum>_name(i) returns
 * the name of value i, or NULL when i is out of range, so that a caller lists the names
 * with `for (int i = 0; name(i); i++)`; <enum>_parse(s, &out) sets *out and returns 0, or
 * returns -1 (leaving *out alone) when s is NULL or not a name. Names are case-sensitive. */

/* The device a config or the command line asks for; nn_device_resolve() turns it into an
 * nn_device. Names: "auto" (cuda when available, else cpu), "cpu", "cuda" (the current CUDA
 * device: 0, or the one GPU a --gpus worker sees), "cuda:0" to "cuda:15" (that device of the
 * machine; NN_WANT_CUDA_0 + N). */
typedef enum { NN_WANT_AUTO = 0, NN_WANT_CPU = 1, NN_WANT_CUDA = 2, NN_WANT_CUDA_0 = 3, NN_WANT_CUDA_MAX = 18 } nn_device_request;
const char *nn_device_request_name(int i);
int nn_device_request_parse(const char *s, nn_device_request *out);

typedef enum { NN_CPU = 0, NN_CUDA = 1 } nn_device;
/* Resolves a requested device; cuda absent when asked for is NN_EDEVICE, a value outside
 * nn_device_request is NN_EINVAL. name (optional) gets e.g. "cpu (2 threads)" or the GPU
 * name (cut to len - 1 characters: it is a label). */
nn_status nn_device_resolve(nn_device_request want, nn_device *dev, char *name, size_t len);
/* The CUDA devices this process can see (0 without CUDA). Initialises CUDA: a process that
 * forks workers calls it in a short-lived child (see runner.c). */
int nn_cuda_device_count(void);
/* Bytes of GPU memory in live tensors on the current CUDA device (the caching allocator's
 * allocated bytes, without its cached free blocks); -1 without CUDA. The runner prints it after
 * each batch of attacks. */
int64_t nn_cuda_allocated_bytes(void);
/* Bytes of GPU memory the caching allocator holds on the current CUDA device (live tensors plus
 * its cached free blocks); -1 without CUDA. A training group gives its cached blocks back when it
 * ends (nn_train_tasks), so this stays near nn_cuda_allocated_bytes between groups. */
int64_t nn_cuda_reserved_bytes(void);
/* Sums of bags of rows, the additions in order (the permutation tests' sums on a GPU:
 * pmi_sum_device, eval_sum_device). nn_bag_sums_open copies rows (n_rows, width) row-major to
 * dev (the current CUDA device for NN_CUDA); nn_bag_sums writes out (n_bags, width),
 * out[b width + c] = 0 + rows[idx[b len] width + c] + rows[idx[b len + 1] width + c] + ...
 * (j = 0..len-1, in that order), for idx (n_bags, len) of indices < n_rows: torch's embedding_bag
 * (mode sum), one thread per sum. On a GPU the copies and the kernel run on a stream of their
 * own, so another thread may train meanwhile (graphs are captured thread-locally). open returns
 * NULL and nn_bag_sums an error with nn_last_error(); close is NULL-safe. */
typedef struct nn_bags nn_bags;
nn_bags *nn_bag_sums_open(nn_device dev, const double *rows, int width, int64_t n_rows);
nn_status nn_bag_sums(nn_bags *b, const uint32_t *idx, int n_bags, int len, double *out);
void nn_bag_sums_close(nn_bags *b);
/* The arithmetic of this process's GPU work (no effect on the CPU): tf32 allows TF32 in
 * training's cuDNN convolutions (libtorch's default; matmuls stay fp32); deterministic selects deterministic cuDNN and CUDA
 * algorithms (an op without one fails with its name), turns off cuDNN benchmarking and TF32,
 * so that two runs on one card type give identical numbers. Evaluation (nn_eval_logp,
 * nn_accuracy) always runs without TF32. Call it before the first GPU work of the process
 * (it sets CUBLAS_WORKSPACE_CONFIG, which cuBLAS reads when it starts). */
void nn_set_numerics(int tf32, int deterministic);
/* Sets libtorch intra-op threads; n <= 0 means the number of online cores. */
void nn_set_threads(int n);
/* Profiling with torch's profiler (Kineto where libtorch has it): between nn_profile_start and
 * nn_profile_stop every torch operator the calling thread runs (and the autograd threads it
 * starts) is recorded, and with cuda (Kineto builds) every GPU kernel, memcpy and memset of the
 * process (CUPTI: kernels replayed from CUDA graphs too). nn_profile_stop writes them as a
 * Chrome trace (JSON: {"traceEvents": [{"name", "cat": "cpu_op" or "kernel", "ph": "X",
 * "ts", "dur" in microseconds, "pid", "tid"}]}) to path, which Perfetto and
 * scripts/bench/trace-compare.py read, and puts the number of events in *n_events (or NULL).
 * path NULL discards the profile. One profile at a time per process. */
nn_status nn_profile_start(int cuda);
nn_status nn_profile_stop(const char *path, int64_t *n_events);

/* ---- data ------------------------------------------------------------------------- */
typedef struct nn_data nn_data;
/* Uploads n samples x (n,c,h,w) float and y (n) int32 to dev. Copies; caller keeps its arrays. */
nn_status nn_data_create(const float *x, const int32_t *y, int64_t n, int c, int h, int w,
                         nn_device dev, nn_data **out);
/* As nn_data_create, but takes x (from malloc or posix_memalign) over: on the CPU the data keeps
 * x's memory instead of a copy and frees it with the data (copying Fashion-MNIST's 220 MB of
 * train and test pixels took 0.64 s on the CI's VM); on a GPU x is uploaded, then freed. x is
 * the data's (or freed) on return, whatever the status; the caller keeps y. */
nn_status nn_data_adopt(float *x, const int32_t *y, int64_t n, int c, int h, int w, nn_device dev, nn_data **out);
/* A new device dataset holding rows idx[0..n) of src (gathered on the device). */
nn_status nn_data_subset(const nn_data *src, const int64_t *idx, int64_t n, nn_data **out);
/* Concatenation of a then b. */
nn_status nn_data_concat(const nn_data *a, const nn_data *b, nn_data **out);
int64_t nn_data_size(const nn_data *d);
/* Copies d's labels to y (nn_data_size(d) of them). */
nn_status nn_data_labels(const nn_data *d, int32_t *y);
void nn_data_free(nn_data *d);  /* NULL-safe */

/* ---- models ----------------------------------------------------------------------- */
/* The architecture registry: nn_arch_name(i) and nn_arch_help(i) for i in [0, nn_arch_count()),
 * NULL outside (so nn_arch_name also lists the names like the <enum>_name functions above). */
int nn_arch_count(void);
const char *nn_arch_name(int i);
const char *nn_arch_help(int i);
/* How many models of architecture arch a GPU batch of pmi run trains at once unless --batch says
 * (the registry's column); 0 for an unknown name. */
int nn_arch_batch(const char *arch);

typedef struct nn_model nn_model;
typedef struct {
    const char *arch;    /* registry name */
    int c, h, w;         /* input shape */
    int classes;
    int width;           /* width multiplier / base channels; <= 0: the arch's default */
    nn_device device;
    uint64_t seed;       /* initial weights */
} nn_model_spec;

nn_status nn_model_create(const nn_model_spec *spec, nn_model **out);
nn_status nn_model_copy(const nn_model *src, nn_model **out);   /* deep copy incl. masks */
void nn_model_free(nn_model *m);                                 /* NULL-safe */
int64_t nn_model_num_params(const nn_model *m);

/* Names: "sgd", "adam" (nn_optimizer_name/parse, see "named choices" above). */
typedef enum { NN_SGD = 0, NN_ADAM = 1 } nn_optimizer;
const char *nn_optimizer_name(int i);
int nn_optimizer_parse(const char *s, nn_optimizer *out);
/* Names: "none", "step", "cosine" (nn_schedule_name/parse). */
typedef enum { NN_SCHED_NONE = 0, NN_SCHED_STEP = 1, NN_SCHED_COSINE = 2 } nn_schedule;
const char *nn_schedule_name(int i);
int nn_schedule_parse(const char *s, nn_schedule *out);
typedef enum { NN_TRAIN_ALL = 0, NN_TRAIN_LAST = 1 } nn_trainable;
/* Names: "fp32", "bf16" (nn_precision_name/parse). */
typedef enum { NN_FP32 = 0, NN_BF16 = 1 } nn_precision;
const char *nn_precision_name(int i);
int nn_precision_parse(const char *s, nn_precision *out);

typedef struct {
    nn_optimizer optimizer;
    double lr, momentum, weight_decay;
    int epochs, batch_size;
    nn_schedule schedule;
    int step_size; double gamma;   /* step schedule */
    nn_trainable trainable;        /* NN_TRAIN_LAST: only the last layer's parameters change */
    nn_precision precision;        /* NN_BF16: training's forward pass autocast to bfloat16 (weights,
                                      gradients, optimizer and loss stay fp32; evaluation is fp32) */
    int channels_last;             /* 1: convolution weights and images in NHWC layout while training
                                      (cuDNN's NHWC kernels); the standard layout after. Models in a
                                      fused ensemble keep its grouped NCHW convolutions */
    uint64_t seed;                 /* batch order (and the draws of grad_noise and adv_eps) */
    /* Recipes of the training-side attacks (0: off). Their random draws (PGD's start, the
     * gradient noise) come from the CPU's generator on any device, and a CUDA graph captures
     * them too (each replay reads its batch's draws); a task with any of them is never fused. */
    double label_smoothing;        /* cross-entropy against labels smoothed by this much */
    double flood;                  /* per-sample flooding: each sample's loss l counts as |l - flood| + flood,
                                      so samples fitted below the level are pushed back up */
    double clip, grad_noise;       /* clip > 0: each batch's gradient clipped to norm clip, then
                                      N(0, (grad_noise * clip / batch)^2) added to each element
                                      (DP-SGD's noise on a batch-level clip: no privacy guarantee) */
    double adv_eps; int adv_steps; /* adv_eps > 0: each batch replaced by PGD adversarial examples in the
                                      L-inf ball adv_eps around it (random start, adv_steps steps of
                                      2.5 adv_eps / adv_steps; adversarial training, Madry et al. 2018) */
    /* Called after each epoch with its mean training loss (may be NULL). Return non-zero to stop. */
    int (*on_epoch)(void *ctx, int epoch, int epochs, double loss);
    void *ctx;
} nn_train_params;

nn_train_params nn_train_default_params(void);
/* Trains m on d for p->epochs epochs. loss_curve (optional, p->epochs) gets each epoch's mean
 * loss; when on_epoch stops training early the remaining entries are NaN. Epoch e (from 0)
 * shuffles with seed p->seed + e and uses lr * gamma^(e / step_size) (step) or
 * lr * (1 + cos(pi e / epochs)) / 2 (cosine). A trailing batch of one sample joins the
 * previous batch (BatchNorm cannot train on one sample). With NN_TRAIN_LAST the whole model
 * runs in eval mode, so the frozen layers' BatchNorm statistics stay fixed as well. Labels
 * outside [0, classes) are NN_EINVAL. The model is left in eval mode. */
nn_status nn_train(nn_model *m, const nn_data *d, const nn_train_params *p, double *loss_curve);

/* Trains k models at once: model i on d[i] with p[i] (loss_curves, optional: k arrays of
 * p[i].epochs). On a GPU, when every p[i] is eligible for the captured step (SGD, all layers
 * trainable, at least 5 batches), each model gets CUDA streams of its own (created for it, never
 * shared with another model) and its own CUDA graph, and one host thread issues their batches
 * in turn so that the card runs the models concurrently; p[i].on_epoch is called for each model
 * after each epoch of the group, and a nonzero return from any ends the whole group there.
 * Otherwise they train one after another through nn_train. Either way model i ends as a
 * separate nn_train(m[i], d[i], &p[i]) would leave it. */
nn_status nn_train_group(nn_model *const *m, const nn_data *const *d, const nn_train_params *p, int k,
                         double *const *loss_curves);

/* One model to train in nn_train_tasks: on its data with its parameters, by cross-entropy on the
 * data's labels (teacher NULL) or by distillation from teacher with `distill` (as nn_distill). */
typedef struct {
    double temperature, alpha; int hard;
} nn_distill_params;
typedef struct {
    nn_model *model;
    const nn_data *data;
    nn_train_params params;
    nn_model *teacher;             /* NULL: plain training */
    nn_distill_params distill;     /* with a teacher */
    double *loss_curve;            /* optional, params.epochs */
} nn_train_task;
/* Trains k tasks at once: nn_train_group's scheduling for any mix of plain training, last-layer
 * fine-tuning (NN_TRAIN_LAST) and distillation. On a GPU every task eligible for the captured
 * step (SGD, at least 5 batches) gets its own streams and CUDA graph and the eligible ones train
 * concurrently; a teacher may be shared by several tasks (it only runs forward, in eval mode);
 * the rest train one after another afterwards. Each model ends as nn_train / nn_distill of its
 * task alone would leave it (bit for bit on the CPU unless PMI_FUSE=1; see fused ensembles below).
 * nn_train_group is this with no teachers. */
nn_status nn_train_tasks(const nn_train_task *t, int k);
/* Fused ensembles: tasks with the same plain architecture (mlp, lenet, cnn: no BatchNorm), the
 * same number of samples and the same recipe (SGD, no teacher, all layers or the last
 * only; only the seed may differ) train as one network that holds up to 32 of them (PMI_FUSE_MAX): convolutions grouped
 * by model, linear layers as batched products, each model on its own batches with the gradient
 * of its own loss, so each ends as it would alone up to float rounding (tests/test_gpu.c). On by
 * default on a GPU; PMI_FUSE=0 turns it off, PMI_FUSE=1 turns it on for the CPU too (tests).
 * The number of models the calling thread's last nn_train_tasks trained fused: */
int nn_fused_models(void);
/* The captured training steps (CUDA-graph replays) the calling thread has issued so far: 0 on
 * the CPU; tests use it to see that a recipe trains in graphs. */
int64_t nn_graph_replays(void);

/* Per-sample log-probabilities: logp (n, classes) row-major, float, in one batched pass
 * (chunked internally to bound memory). n = nn_data_size(d). */
nn_status nn_eval_logp(nn_model *m, const nn_data *d, float *logp);
/* nn_eval_logp of every image plus N(0, sigma^2) per (normalised) pixel: the querier's own
 * perturbation, added before the model's interface (below) sees the query, so an input
 * transform acts on the noisy image and an output transform on its answer. The noise is drawn
 * from seed and the chunk's first sample as the interface's noise (below): the same on any
 * device up to the last place of a float, and for any thread count. sigma = 0 is nn_eval_logp exactly; a negative or non-finite
 * sigma is NN_EINVAL. (The lnoise score kind, pmi.h, queries through it.) */
nn_status nn_eval_logp_noisy(nn_model *m, const nn_data *d, double sigma, uint64_t seed, float *logp);
/* Fraction of d classified correctly. */
nn_status nn_accuracy(nn_model *m, const nn_data *d, double *acc);
/* nn_eval_logp of m[i] on d[i] into logp[i] (logp NULL: none) and nn_accuracy into acc[i] (acc
 * NULL: none), for i < k. On a GPU the models of one plain architecture (those nn_train_tasks
 * can fuse: mlp, lenet, cnn) with the same parameter shapes and data of one size run as one
 * fused network, a chunk of all of them per launch, each model's queries and answers through
 * its own interface (its noise drawn per chunk as nn_eval_logp draws it): the same numbers up
 * to floating-point rounding (test_nn.c, test_gpu.c); the others, and every model on the CPU,
 * run one by one as nn_eval_logp does. PMI_EVAL_FUSE=0 never fuses, =1 fuses on the CPU too. */
nn_status nn_eval_many(nn_model *const *m, const nn_data *const *d, int k, float *const *logp, double *acc);
/* How many models the calling thread's last nn_eval_many ran fused (the tests'). */
int nn_eval_fused_models(void);

/* ---- the suspect's interface (evaluation only) ----------------------------------------
 * What a deployed model does to a query before its network sees it (an input transform) and
 * to the answer before the querier sees it (an output transform). Every evaluation goes
 * through it (nn_eval_logp, nn_accuracy); training, and a teacher's targets in distillation,
 * do not (they are the thief's own use of the weights). A new model has none; nn_model_copy
 * copies it. Input transforms act on the normalised images:
 *   quantize  each image to 2^param levels between its own minimum and maximum
 *   noise     adds N(0, param^2) to every pixel (seeded)
 *   blur      the mean over the (2 param + 1)^2 window around each pixel, inside the image
 *   shift     moves the image param pixels down and right, filling with its minimum
 *   flip      mirrors it left to right
 * Output transforms act on the probabilities p and answer p':
 *   label        one-hot of argmax p (label-only)
 *   topk         the param largest probabilities, renormalised; the others 0
 *   round        p rounded to param decimals (not renormalised)
 *   temperature  softmax(log p / param)
 *   rsigmoid     reverse sigmoid (Lee et al. 2019): p - param * (sigmoid(param2 * logit p) - 1/2),
 *                clipped to [0, 1], renormalised
 *   noise        p + N(0, param^2) (seeded), clipped at 0, renormalised (uniform if all 0)
 * The log-probabilities reported are log max(p', NN_OUT_FLOOR), so a zero probability is a
 * large but finite loss. Noise is philox.h's counter-based draws under the key seed, counted
 * from the chunk's first sample (of 4096 queries), made where the model is: the same on any
 * device up to the last place of a float, and for any thread count. Names: nn_input_transform_name/parse
 * and nn_output_transform_name/parse ("none", ... as above, in enum order). */
typedef enum { NN_IN_NONE = 0, NN_IN_QUANTIZE, NN_IN_NOISE, NN_IN_BLUR, NN_IN_SHIFT, NN_IN_FLIP } nn_input_transform;
typedef enum { NN_OUT_NONE = 0, NN_OUT_LABEL, NN_OUT_TOPK, NN_OUT_ROUND, NN_OUT_TEMPERATURE, NN_OUT_RSIGMOID,
               NN_OUT_NOISE } nn_output_transform;
#define NN_OUT_FLOOR 1e-12
const char *nn_input_transform_name(int i);
int nn_input_transform_parse(const char *s, nn_input_transform *out);
const char *nn_output_transform_name(int i);
int nn_output_transform_parse(const char *s, nn_output_transform *out);
typedef struct {
    nn_input_transform input;  double in_param;
    nn_output_transform output; double out_param, out_param2;
    uint64_t seed;             /* of the noise transforms */
} nn_interface;
/* Sets m's interface (NULL: none). NN_EINVAL for a parameter out of its range: quantize
 * [1, 16] bits, noise >= 0, blur and shift whole numbers in [0, min(h, w) - 1], topk [1,
 * classes], round [0, 8] decimals, temperature > 0, rsigmoid param >= 0 and param2 > 0. */
nn_status nn_set_interface(nn_model *m, const nn_interface *q);
/* m's interface (all NONE when it has none); NULL for NULL. */
const nn_interface *nn_get_interface(const nn_model *m);

/* ---- model modifications (attacks) ---------------------------------------------- */
/* Unstructured magnitude pruning of weight tensors (conv and linear weights, not biases or
 * norms): global=1 ranks all of them together, global=0 prunes each tensor to `sparsity`.
 * Existing masks are combined. achieved (optional): fraction of prunable weights now zero. */
nn_status nn_prune(nn_model *m, double sparsity, int global, double *achieved);
/* Fraction of prunable weights that are exactly zero. */
double nn_sparsity(const nn_model *m);
/* Uniform per-tensor quantisation of every floating parameter to 2^bits levels in [min,max];
 * bits in [1, 16], else NN_EINVAL. Pruning masks are re-applied afterwards, so a pruned
 * tensor may hold exact zeros besides its 2^bits levels. */
nn_status nn_quantize(nn_model *m, int bits);
/* Adds N(0, (sigma * std(tensor))^2) to every parameter tensor, deterministic in seed (drawn
 * on the CPU, so the same on any device); std is the population standard deviation; sigma
 * must be >= 0. Pruning masks are re-applied afterwards. */
nn_status nn_add_noise(nn_model *m, double sigma, uint64_t seed);
/* Weight shifting (the Watermark-Robustness-Toolbox's removal attack, Lukas et al. 2022): every
 * convolution weight w (out, in, kh, kw) becomes w - shift * mean_0(w) - sigma * std(w) * z, with
 * mean_0 the mean over its output filters, std the tensor's population standard deviation and z
 * N(0, 1) drawn on the CPU from seed; other tensors are untouched (an mlp is unchanged). shift,
 * sigma >= 0. Pruning masks are re-applied afterwards. */
nn_status nn_shift_weights(nn_model *m, double shift, double sigma, uint64_t seed);
/* Neuron shuffling (DeepJudge's removal test): a random permutation, seeded, of the hidden units
 * of every pair of consecutive layers (a Linear or Conv2d's outputs, with the BatchNorm after
 * it, and the next layer's inputs; through a Flatten, in blocks of the spatial size), and of
 * the inner channels of each ResNet block (conv1/bn1 outputs, conv2 inputs). The function is
 * unchanged up to float rounding; the weights and their pruning masks move. */
nn_status nn_shuffle_units(nn_model *m, uint64_t seed);
/* Fine-Pruning's pruning (Liu et al., RAID 2018): the channels of the last Conv2d (the last
 * hidden Linear's units in an mlp) whose mean activation after its ReLU on d is smallest are
 * removed, `fraction` of them (rounded): their weights, bias and the BatchNorm's affine
 * parameters after them are masked to zero, so fine-tuning keeps them removed. Sequential
 * architectures only (a ResNet is NN_EINVAL). pruned (optional): how many were removed. */
nn_status nn_prune_channels(nn_model *m, const nn_data *d, double fraction, int *pruned);
/* Re-initialises the last layer (its default init, seeded; drawn on the CPU). */
nn_status nn_reinit_last(nn_model *m, uint64_t seed);
/* Trains student on d from teacher outputs: loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
 * + (1 - alpha) * CE(s, y). hard=1: the labels are the teacher's argmax (label-only extraction)
 * and the loss is CE on them. The teacher runs in eval mode without gradients, batch by batch;
 * student and teacher may differ in architecture but not in input shape or class count. */
nn_status nn_distill(nn_model *student, nn_model *teacher, const nn_data *d,
                     const nn_train_params *p, const nn_distill_params *dp, double *loss_curve);

/* ---- weights (for storing, inspection and tests) ---------------------------------- */
/* Number of parameter tensors (in registration order). */
int nn_param_count(const nn_model *m);
/* Name, number of elements and shape (up to 4 dims, ndim returned) of tensor i. */
nn_status nn_param_info(const nn_model *m, int i, const char **name, int64_t *numel, int64_t shape[4], int *ndim);
/* Copies tensor i to host floats (numel), or writes host floats into it (pruning masks are
 * not applied here; the next optimizer step re-applies them). */
nn_status nn_param_get(const nn_model *m, int i, float *out);
nn_status nn_param_set(nn_model *m, int i, const float *in);
/* Index of the first parameter tensor of the last layer (its weight); those from here on
 * belong to the last layer. */
int nn_last_layer_first_param(const nn_model *m);

/* ---- state: every parameter and buffer, under PyTorch's names --------------------- */
/* A model's state is what torch.nn.Module.state_dict() of the equivalent PyTorch module holds:
 * its parameters (registration order) then its buffers (BatchNorm running_mean, running_var and
 * num_batches_tracked), named as PyTorch names them ("conv1.weight", "bn1.running_mean",
 * "layer1_0.shortcut.conv.weight"); docs/model-format.md lists them per architecture. */
typedef enum { NN_F32 = 0, NN_I64 = 1 } nn_dtype;
#define NN_MAX_DIMS 4
int nn_state_count(const nn_model *m);   /* 0 for NULL */
/* Name, dtype, shape (ndim entries, up to NN_MAX_DIMS) and number of elements of entry i. */
nn_status nn_state_info(const nn_model *m, int i, const char **name, nn_dtype *dtype, int64_t shape[NN_MAX_DIMS],
                        int *ndim, int64_t *numel);
/* Copies entry i to host memory (numel floats or int64s, by its dtype), or writes it from host
 * memory (the next optimizer step re-applies pruning masks). */
nn_status nn_state_get(const nn_model *m, int i, void *out);
nn_status nn_state_set(nn_model *m, int i, const void *in);
/* The model's spec as created (arch is the registry name, width resolved to the arch's default
 * when it was <= 0); NULL for NULL. */
const nn_model_spec *nn_model_get_spec(const nn_model *m);

/* ---- TorchScript models (a suspect brought in from PyTorch) -------------------------- */
/* A module saved by torch.jit.script(model).save(path) or torch.jit.trace(...).save(path),
 * loaded with torch::jit::load. Its forward must take one (n, c, h, w) float tensor and return
 * (n, classes) logits. */
typedef struct nn_script nn_script;
/* Loads path onto dev; NN_EINVAL with libtorch's reason when it is not a TorchScript archive
 * this libtorch can read. */
nn_status nn_script_load(const char *path, nn_device dev, nn_script **out);
/* log_softmax of the module's outputs on every sample of d into logp (n, classes); an output
 * that is not (n, classes) is NN_EINVAL naming the shape it had. */
nn_status nn_script_eval_logp(nn_script *s, const nn_data *d, int classes, float *logp);
void nn_script_free(nn_script *s);  /* NULL-safe */

#ifdef __cplusplus
}
#endif
#endif
