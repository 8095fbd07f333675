/* data: dataset readers, normalisation and the seeded disjoint split.
 *
 * Readers fill a host-side pmi_dataset (float images in NCHW order, int32 labels):
 *   - IDX (MNIST family incl. Fashion-MNIST), gzip-compressed or raw, via zlib;
 *   - CIFAR-10/100 binary batches (data_batch_1..5.bin + test_batch.bin, or train.bin +
 *     test.bin for CIFAR-100, whose records carry a coarse and a fine label; fine is used);
 *   - a synthetic generator for fast tests (Gaussian class prototypes plus noise).
 * Headers are validated (magic, counts, dimensions, label range): a truncated or wrong file
 * is an error naming the file and what was expected, never a crash.
 *
 * The split draws, from the train file, disjoint index sets: owner train, the pool of N
 * mini-datasets of m samples, the attacker's set and the independent models' set (same size
 * as owner train); test indices come from the test file. A seed fixes everything. */
#ifndef PMI_DATA_H
#define PMI_DATA_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *x;         /* (n, c, h, w) pixel values, raw 0..255 until data_normalize() */
    int32_t *y;       /* (n) labels in [0, classes) */
    int64_t n;
    int c, h, w;
    int classes;
} pmi_dataset;

void data_free(pmi_dataset *d);  /* frees x and y, zeroes d; NULL-safe */

/* IDX pair, e.g. train-images-idx3-ubyte(.gz) + train-labels-idx1-ubyte(.gz). */
int data_read_idx(const char *images, const char *labels, pmi_dataset *out, char *err, size_t errlen);
/* CIFAR binary files: `files` is a NULL-terminated list; classes is 10 or 100. */
int data_read_cifar(const char *const *files, int classes, pmi_dataset *out, char *err, size_t errlen);
/* n samples of c x h x w with `classes` classes, deterministic in seed. Pixel range 0..255. */
int data_synthetic(int64_t n, int c, int h, int w, int classes, uint64_t seed, pmi_dataset *out);

/* Loads a named dataset ("fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic") from
 * dir (NULL or "" = default: $FASHION_MNIST or /usr/share/datasets/fashion-mnist for
 * Fashion-MNIST; required for the others). Synthetic: train has n_synth samples, test n_synth/4,
 * 1x8x8 images, 10 classes. Returns 0 or -1 with err. */
int data_load(const char *name, const char *dir, int64_t n_synth, uint64_t seed,
              pmi_dataset *train, pmi_dataset *test, char *err, size_t errlen);

typedef enum { DATA_NORM_NONE = 0, DATA_NORM_UNIT, DATA_NORM_STANDARD } data_norm;
/* unit: x/255. standard: (x/255 - mean_c)/std_c with per-channel statistics given (or, if
 * mean == NULL, computed from the first `n_stats` samples listed in idx). */
void data_normalize(pmi_dataset *d, data_norm mode, const double *mean, const double *std);
/* Per-channel mean and std of x/255 over the samples idx[0..n). mean, std: (c). */
void data_channel_stats(const pmi_dataset *d, const int64_t *idx, int64_t n, double *mean, double *std);

typedef struct {
    int64_t *train;     int64_t n_train;      /* owner training set, indices into the train file */
    int64_t *pool;      int N, m;             /* (N, m): pool[i*m + j] is sample j of mini-dataset i */
    int64_t *attacker;  int64_t n_attacker;
    int64_t *indep;     int64_t n_indep;      /* disjoint data for independent models (n_train), may be 0 */
    int64_t *test;      int64_t n_test;       /* indices into the test file */
    int secret;                               /* k in [0, N) */
} data_split;

/* Draws the split with a GSL generator seeded by `seed`. secret < 0: k drawn from the seed.
 * want_indep: also draw the independent set (n_train more samples). Fails with a message
 * when the train file holds fewer than n_train*(1+want_indep) + N*m + n_attacker samples or
 * the test file fewer than n_test. */
int data_split_make(int64_t n_train_file, int64_t n_test_file, int64_t n_train, int N, int m,
                    int64_t n_attacker, int want_indep, int64_t n_test, int secret, uint64_t seed,
                    data_split *out, char *err, size_t errlen);
void data_split_free(data_split *s);  /* NULL-safe */

#endif
