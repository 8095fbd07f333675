/* weights: a model's complete state (every parameter and buffer, under PyTorch's names) with
 * what is needed to use it (architecture, width, input shape and normalisation), in memory,
 * in safetensors files, and back into a pmi model.
 *
 * The state is nn.h's (nn_state_*): torch.nn.Module.state_dict() of the equivalent PyTorch
 * module, names and shapes listed per architecture in docs/model-format.md. A safetensors file
 * written here holds F32 parameters and running statistics and I64 num_batches_tracked, and
 * its __metadata__ records format "pmi-model", arch, width, input_shape "c,h,w", classes,
 * normalize (none, unit or standard), mean and std (comma lists, one value per channel; what
 * the model's input x was: x = (raw / 255 - mean) / std for standard, raw / 255 for unit, raw
 * 0..255 for none), dataset and pmi_version.
 *
 *   weights w;
 *   if (weights_collect(model, &input, &w, err, sizeof err) || weights_save(&w, "m.safetensors", err, sizeof err)) ...;
 *   weights_free(&w);
 *   nn_model *m;
 *   if (weights_load("m.safetensors", &want, NN_CPU, &m, &input, err, sizeof err)) ...;   // checks every tensor */
#ifndef PMI_WEIGHTS_H
#define PMI_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>
#include "nn.h"

/* What the model's input is: the dataset it was trained on, its normalisation and shape. */
typedef struct {
    char dataset[64];
    char normalize[16];      /* "none", "unit" or "standard" (cfg_norm's names) */
    double mean[3], sd[3];   /* per channel (c of them); 0 and 1 unless normalize = standard */
    int c, h, w, classes;
} weights_input;

typedef struct {
    char name[128];          /* PyTorch state_dict name */
    nn_dtype dtype;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    int64_t numel;
    void *data;              /* numel floats or int64s (owned) */
} weights_tensor;

typedef struct {
    char arch[64];
    int width;
    weights_input input;
    weights_tensor *t; int n;
} weights;

/* The safetensors dtype name of an nn_dtype ("F32", "I64"). */
const char *weights_dtype_name(nn_dtype d);
/* Copies the state of m (nn_state_*) and its spec into w. 0, or -1 with err. */
int weights_collect(const nn_model *m, const weights_input *in, weights *w, char *err, size_t errlen);
/* Writes w as a safetensors file (atomically) with the metadata above. 0, or -1 with err. */
int weights_save(const weights *w, const char *path, char *err, size_t errlen);
/* What the caller asks of a weights file: arch NULL or "" takes the file's metadata "arch", else
 * fallback_arch; width <= 0 takes the metadata's "width" (with the metadata's arch) or
 * fallback_width, else the arch's default; classes and the input shape (c, h, w) must be given
 * (the key's). */
typedef struct {
    const char *arch;
    int width;
    const char *fallback_arch;   /* e.g. the key's owner architecture; NULL: none */
    int fallback_width;
    int c, h, w, classes;
} weights_want;
/* Builds the architecture asked for and fills its state from the safetensors file at path.
 * Every state entry must be in the file with its dtype (F32 or I64) and shape, and the file may
 * hold nothing else: a mismatch is an error naming the tensor, what the file has and what the
 * architecture expects. *in_out (optional) gets the file's input metadata (normalize, mean,
 * std; "" when absent). Returns 0 with *out set, or -1 with err naming the file. */
int weights_load(const char *path, const weights_want *want, nn_device dev, nn_model **out, weights_input *in_out,
                 char *err, size_t errlen);
/* No operation is performed if w is NULL; w is zeroed. */
void weights_free(weights *w);

#endif
