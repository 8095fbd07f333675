/* verify: judges a suspect model with an owner key (pmi verify). The suspect is one of
 *   - safetensors weights for one of pmi's architectures (weights_load: every tensor checked),
 *   - a TorchScript module (nn_script_load: any architecture scripted or traced in PyTorch),
 *   - its outputs on the key's samples (a model behind an API): a CSV file of N*m rows of
 *     `classes` comma-separated logits, or an HDF5 file with a float dataset "logits" of shape
 *     (N*m, classes) or (N, m, classes), rows in the key's sample order; for a key with dataset
 *     evidence, N*m + 2 data_n rows (the dataset evidence's samples after the pool's) give
 *     that evidence too. Log-probabilities are
 *     valid logits, so probabilities can be given as their logarithms.
 * The key's samples are fed in the key's normalisation unless input overrides it ("raw": pixels
 * 0..255, "unit": /255, "standard": the key's per-channel mean and std). Scores, pooling and
 * p-values are pmi.c's, with the key's permutation seeds; a calibrated kind (diff, lira) is
 * calibrated against all of the key's reference scores (pmi_calibrate, none left out): verifying
 * the owner's own model gives the p-values that the run stored for it, calibrated ones included.
 * The verdict is the run's: the pool evidence (refused when the key's pool audit found the pool
 * unsafe for a raw decision kind) combined with the dataset evidence (pmi_combine_p). A key
 * that lists the lnoise kind is refused: the key does not record its query noise.
 *
 *   verify_result r;
 *   if (verify_run(&key, &suspect, &r, err, sizeof err)) ...;   // r.claimed: 1 or 0 */
#ifndef PMI_VERIFY_H
#define PMI_VERIFY_H
#include <stddef.h>
#include <stdio.h>
#include "key.h"
#include "nn.h"

typedef struct {
    const char *weights, *arch;  /* safetensors file; arch NULL: the file's metadata, then the key's */
    int width;                   /* <= 0: the file's metadata, then the arch's default */
    const char *script;          /* TorchScript file */
    const char *logits;          /* outputs file (.csv, or HDF5 otherwise) */
    const char *input;           /* "raw", "unit", "standard"; NULL: the key's normalisation */
    nn_device dev;
} verify_suspect;

typedef struct {
    int n_kinds, kinds[SCORE_COUNT];   /* the key's score kinds; kinds[0] decides */
    pmi_result res[SCORE_COUNT];
    double z[SCORE_COUNT];       /* (mean of D_k - mean of all N*m) / (std of all N*m / sqrt(m)) */
    int decide;                  /* the key's decision p-value (pmi_pvalue) */
    double alpha, p;             /* the key's first alpha; the decision p-value of kinds[0] */
    pmi_data_result data[SCORE_COUNT]; /* dataset evidence per kind; n = 0 when the key has none (or
                                        * the outputs file holds only the pool's rows) */
    double p_pool;               /* p, or NAN when the key's pool audit refuses kinds[0] (pmi_pool_p) */
    double p_combined;           /* pmi_combine_p(p_pool, data[0].p): the verdict's p-value */
    int claimed;                 /* p_combined < alpha */
    double accuracy;             /* the suspect's accuracy on the key's pool samples */
    char path[1024], type[16];   /* the suspect file and its type: weights, torchscript, logits */
    char sha256[65];             /* of the suspect file */
    char input[16];              /* the input normalisation used */
} verify_result;

/* Scores the key's samples with the suspect and computes every p-value. Exactly one of
 * weights, script and logits must be set. Returns 0, or -1 with err (a file that cannot be
 * read or does not fit the key: wrong shape, dtype, class count, NaN outputs). */
int verify_run(const pmi_key *k, const verify_suspect *s, verify_result *r, char *err, size_t errlen);
/* Prints the verdict and every p-value, human-readable. */
void verify_print(FILE *out, const pmi_key *k, const verify_result *r);
/* Writes the verification record as JSON (docs/key-schema.md) to path, or to stdout when path
 * is "-". 0, or -1 with err. */
int verify_write_record(const char *path, const pmi_key *k, const verify_result *r, char *err, size_t errlen);

#endif
