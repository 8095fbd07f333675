/* key: the owner's key, everything needed to verify a suspect model later and nothing more,
 * as one self-contained HDF5 file (docs/key-schema.md). THE KEY IS THE SECRET: whoever holds it
 * knows k and the pool, and can fine-tune a stolen model on other data until D_k looks like the
 * rest.
 *
 * It holds the N mini-datasets' samples themselves (raw pixels, 0..255, as the dataset files
 * give them), their labels and indices into the dataset's train file, the dataset's name and a
 * SHA-256 of its train samples and labels, the input layout and normalisation, the secret k, N,
 * m, the score kinds, the decision settings (p-value, alphas, permutations) with each kind's
 * permutation-test seed, and provenance (pmi version, commit, config hash, job, results file).
 * When its score kinds include a calibrated one (diff, lira), it also holds the run's R
 * reference models' base scores on the pool (loss for diff, logit for lira), so that a suspect
 * is calibrated exactly as the run calibrated it.
 *
 *   pmi_key k;
 *   if (key_export("results.h5", "p0-s1-owner", &k, err, sizeof err) || key_write("owner.key.h5", &k, err, sizeof err)) ...;
 *   key_free(&k); */
#ifndef PMI_KEY_H
#define PMI_KEY_H
#include <stddef.h>
#include <stdint.h>
#include "pmi.h"
#include "store.h"

#define KEY_SCHEMA_VERSION 3     /* written; key_read also reads versions 1 (no references) and 2
                                  * (no dataset evidence, no pool audit) */

typedef struct {
    int N, m;
    int c, h, w, classes;
    float *samples;                 /* (N, m, c, h, w) raw pixel values 0..255 */
    int32_t *labels;                /* (N, m) */
    int64_t *indices;               /* (N, m) indices into the dataset's train file */
    int secret_k;
    char dataset[64];
    char dataset_sha256[65];        /* of the train samples (float32) then labels (int32), as loaded */
    char normalize[16];             /* "none", "unit", "standard": the input the owner's model had */
    double mean[3], sd[3];          /* per channel (standard); 0 and 1 otherwise */
    store_settings settings;        /* decide, alphas, permutations, score kinds (kinds[0] decides) */
    uint64_t seeds[SCORE_COUNT];    /* permutation-test seed of each score kind, in settings order (a
                                     * run tests all kinds from one stream: one seed repeated) */
    int n_refs;                     /* R: reference models whose scores the key holds (0 without calibrated kinds) */
    double reference_fraction;      /* of the owner's training set each reference trained on (pmi.reference_fraction) */
    double *refs[SCORE_COUNT];      /* per base kind a calibrated kind needs (loss, logit): (R, N, m) the
                                     * references' base scores on the pool; NULL for the others */
    /* Dataset evidence (pmi.h, docs/dataset-evidence.md): data_n samples of the owner's training
     * set S then data_n held-out samples H, raw pixels (2 data_n, c, h, w), labels and indices;
     * the run's resamples and seed of its test; per base kind a calibrated kind needs, the
     * references' scores on them (R, 2 data_n). data_n = 0: none (a run without pmi.holdout). */
    int data_n;
    float *data_samples;
    int32_t *data_labels;
    int64_t *data_indices;
    int data_permutations;
    uint64_t data_seed;
    double *data_refs[SCORE_COUNT];
    double pool_audit[SCORE_COUNT]; /* per settings kind: the run's pool audit p (NAN: not audited) */
    char arch[64];                  /* the owner model's architecture */
    int width;
    char job_id[128], source[1024]; /* the owner job and the results file it came from */
    char pmi_version[64], git_commit[64], config_hash[17], created[64];
} pmi_key;

/* Builds the key of job job_id of a results file: the decision settings and seeds from its
 * stored config (the plan is rebuilt from /config, so the seeds are the run's), the pool indices
 * from /jobs/<id>/split/pool, and the samples by re-reading the dataset the config names (it
 * must be where the config says). With a calibrated score kind, the references' base scores come
 * from the seed's reference jobs (/jobs/<id>/reference_scores/<base>): a results file without
 * them (written before pmi stored them) is an error naming the dataset. Returns 0, or -1 with err. */
int key_export(const char *results, const char *job_id, pmi_key *k, char *err, size_t errlen);
/* Writes k to path atomically. Returns 0, or -1 with err (nothing left behind). */
int key_write(const char *path, const pmi_key *k, char *err, size_t errlen);
/* Reads and checks a key file: kind "pmi-owner-key", key_schema_version 1 or KEY_SCHEMA_VERSION,
 * every field present with its shape and in range; every calibrated score kind needs the
 * references' base scores (R, N, m), finite, with R >= pmi_score_min_refs() (so a version-1 key,
 * which has none, is refused when it lists one). Returns 0, or -1 with err naming the file and
 * the field that is missing or wrong. */
int key_read(const char *path, pmi_key *k, char *err, size_t errlen);
/* No operation is performed if k is NULL; k is zeroed. */
void key_free(pmi_key *k);

#endif
