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

/* IDX pair, e.g. train-images-idx3-ubyte(.gz) + train-labels-idx1-ubyte(.gz), gzip or raw.
 * Checks: magic 0x00000803 (images: n, rows, cols) and 0x00000801 (labels: n), big-endian;
 * 1 <= rows, cols <= 1024; n >= 1; the same n in both files; exactly n*rows*cols pixel bytes
 * and n label bytes after the headers. out gets c = 1, pixels 0..255 as float, and
 * classes = max(10, largest label + 1). Returns 0, or -1 with err naming the file (out zeroed). */
int data_read_idx(const char *images, const char *labels, pmi_dataset *out, char *err, size_t errlen);
/* CIFAR binary files: `files` is a NULL-terminated, non-empty list, read in order; classes is
 * 10 (records of 1 label byte + 3072 pixel bytes) or 100 (coarse label byte, fine label byte,
 * 3072 pixel bytes; the fine label is used). Pixels are stored 1024 R, 1024 G, 1024 B, each
 * row-major 32x32, which is (c, h, w) = (3, 32, 32). A file size that is not a positive
 * multiple of the record size or a label >= classes is an error naming the file. Returns 0,
 * or -1 with err (out zeroed). */
int data_read_cifar(const char *const *files, int classes, pmi_dataset *out, char *err, size_t errlen);
/* Synthetic data, built so that a small MLP both learns it and memorises its samples (which
 * is what membership inference needs). The seed draws `classes` prototype images with i.i.d.
 * N(0,1) pixels. A sample takes a uniform class y, its pixels are prototype[y] plus i.i.d.
 * N(0, 2^2) noise (large, so every sample is distinguishable and a model overfits), then with
 * probability 0.15 its label is redrawn uniformly (label noise that only memorisation can fit);
 * a value v is stored as the pixel 128 + 20 v clipped to 0..255. Generators are GSL's
 * gsl_rng_mt19937 with gsl_ran_gaussian.
 * data_synthetic_stream draws n samples of stream `stream` (>= 1): every stream of one seed
 * shares the prototypes (the same distribution) but has its own samples, so stream 1 can be a
 * training set and stream 2 its test set. Deterministic in (seed, stream). Returns 0, or -1
 * (out zeroed) when n < 1, c, h or w < 1, classes < 2, stream < 1 or memory runs out. */
int data_synthetic_stream(int64_t n, int c, int h, int w, int classes, uint64_t seed,
                          unsigned stream, pmi_dataset *out);
/* Stream 1 of data_synthetic_stream. */
int data_synthetic(int64_t n, int c, int h, int w, int classes, uint64_t seed, pmi_dataset *out);

/* Loads a named dataset ("fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic") from
 * dir (NULL or "" = default: $FASHION_MNIST if set, else /usr/share/datasets/fashion-mnist for
 * Fashion-MNIST; required for MNIST and CIFAR).
 *   fashion-mnist, mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 *     t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (each may be un-gzipped, without
 *     .gz, when the .gz is absent); labels must be 0..9.
 *   cifar10: data_batch_1.bin .. data_batch_5.bin and test_batch.bin.
 *   cifar100: train.bin and test.bin (fine labels).
 *   synthetic: ignores dir; train = data_synthetic_stream(n_synth, 1, 8, 8, 10, seed, 1),
 *     test = data_synthetic_stream(n_synth / 4, ..., seed, 2): same prototypes, other samples.
 *     n_synth must be >= 4. seed is used only by synthetic.
 * Returns 0, or -1 with err (train and test zeroed); an unknown name lists the known ones. */
int data_load(const char *name, const char *dir, int64_t n_synth, uint64_t seed,
              pmi_dataset *train, pmi_dataset *test, char *err, size_t errlen);

/* The sample counts of a named dataset's train and test files (the names, folders and
 * n_synth of data_load), read from the IDX headers or the CIFAR file sizes without loading
 * any sample; a gzip CIFAR file is read through. A run checks its split against them before
 * any worker starts. Errors are data_load's for missing or unreadable files, a wrong IDX
 * magic, an image/label count mismatch or a CIFAR size that is not a multiple of the record.
 * Returns 0, or -1 with err (both counts 0). */
int data_counts(const char *name, const char *dir, int64_t n_synth, int64_t *n_train, int64_t *n_test, char *err,
                size_t errlen);

typedef enum { DATA_NORM_NONE = 0, DATA_NORM_UNIT, DATA_NORM_STANDARD } data_norm;
/* Normalises d->x in place; call once, on raw 0..255 pixels. none: no change. unit: x/255.
 * standard: (x/255 - mean[c]) / std[c] with per-channel statistics (c entries each, e.g. from
 * data_channel_stats on the training samples); a channel whose std is not positive is only
 * centred. Standard mode with mean or std NULL, or d NULL, changes nothing. */
void data_normalize(pmi_dataset *d, data_norm mode, const double *mean, const double *std);
/* Per-channel mean and (population) std of x/255 over the samples idx[0..n) (idx NULL: samples
 * 0..n-1). mean, std: (c). Indices outside [0, d->n) are skipped; with no sample left, mean
 * and std are 0. */
void data_channel_stats(const pmi_dataset *d, const int64_t *idx, int64_t n, double *mean, double *std);

typedef struct {
    int64_t *train;     int64_t n_train;      /* owner training set, indices into the train file */
    int64_t *pool;      int N, m;             /* (N, m): pool[i*m + j] is sample j of mini-dataset i */
    int64_t *attacker;  int64_t n_attacker;
    int64_t *indep;     int64_t n_indep;      /* disjoint data for independent models (n_train), may be 0 */
    int64_t *holdout;   int64_t n_holdout;    /* held-out samples H of the owner's data (pmi.holdout), may be 0 */
    int64_t *test;      int64_t n_test;       /* indices into the test file */
    int secret;                               /* k in [0, N) */
} data_split;

/* Draws the split with one gsl_rng_mt19937 seeded from `seed` (the 64-bit seed is mixed and
 * folded to the generator's 32 bits): gsl_ran_shuffle permutes the train file's indices, then
 * the test file's; the train permutation is cut into consecutive slices: train (n_train), pool
 * (N*m), attacker (n_attacker), indep (n_train if want_indep, else none), holdout (n_holdout: the
 * owner's held-out set H of the dataset evidence, drawn last so that a split without it is
 * the split of earlier versions); test takes the first
 * n_test of the test permutation. secret >= 0 is kept (it must be < N); secret < 0 draws
 * k = gsl_rng_uniform_int(r, N) from the same generator after both shuffles. Needs N, m >= 1
 * and n_train, n_attacker, n_test >= 0. Fails with a message when the train file holds fewer
 * than n_train*(1+want_indep) + N*m + n_attacker + n_holdout samples or the test file fewer than n_test.
 * Every array of out is allocated (possibly with no element) and freed by data_split_free.
 * Returns 0, or -1 with err (out zeroed). */
int data_split_make(int64_t n_train_file, int64_t n_test_file, int64_t n_train, int N, int m,
                    int64_t n_attacker, int want_indep, int64_t n_holdout, int64_t n_test, int secret, uint64_t seed,
                    data_split *out, char *err, size_t errlen);
void data_split_free(data_split *s);  /* NULL-safe */
/* The dataset evidence's samples of a split (docs/dataset-evidence.md), 2 side indices into the
 * train file (malloc'd): S = the first `side` of s->train, then H = s->holdout followed by the
 * pool's mini-datasets other than s->secret in index order. side must be n_holdout + (N-1) m
 * and at most n_train; NULL otherwise. */
int64_t *data_split_evidence(const data_split *s, int64_t side);
/* The checks of data_split_make without drawing anything: 0 when files of n_train_file and
 * n_test_file samples hold the split, or -1 with data_split_make's message (what the split
 * needs, summed per part, and what the file has). One function, so a check before the run
 * and the split inside it cannot disagree. */
int data_split_check(int64_t n_train_file, int64_t n_test_file, int64_t n_train, int N, int m,
                     int64_t n_attacker, int want_indep, int64_t n_holdout, int64_t n_test, int secret,
                     char *err, size_t errlen);

#endif
