/* reuse: the models this process has trained, by what determined them, so that a job whose
 * model an earlier job of the run already trained copies it instead of training it again: the
 * clean and reference models of two sweep points that differ only in pool.repeat are the same
 * models (same samples, seeds and recipe), and ablation-power's grid has many such pairs.
 *
 * The key is the SHA-256 of everything training reads: the architecture, shape and
 * initialisation seed (nn_model_spec), the recipe (every field of nn_train_params but its
 * callback), the GPU numerics, the dataset as loaded (its name, normalisation and statistics)
 * and the training samples' indices in order. A hit is a copy of the trained model (weights,
 * masks, buffers) and its loss curve: on the CPU bit for bit what training would give, on a GPU
 * one of the models training could give. PMI_REUSE_MB bounds the parameters kept (default
 * 1024 MB; 0 turns reuse off); the oldest entries go first. One process, one thread.
 *
 *   reuse_key k;
 *   reuse_key_make(&k, &spec, &tp, tf32, deterministic, data_id, idx, n);
 *   if (!reuse_get(&k, &model, curve, epochs)) { train...; reuse_put(&k, model, curve, epochs); }
 */
#ifndef PMI_REUSE_H
#define PMI_REUSE_H
#include <stdint.h>
#include "nn.h"

typedef struct { char hex[65]; } reuse_key;

void reuse_key_make(reuse_key *k, const nn_model_spec *spec, const nn_train_params *tp, int tf32, int deterministic,
                    const char *data_id, const int64_t *idx, int64_t n);
/* 1 and *out = a copy of the model trained under k (loss_curve, when not NULL, gets its
 * `epochs` entries); 0 when there is none (or reuse is off, or the copy failed). */
int reuse_get(const reuse_key *k, nn_model **out, double *loss_curve, int epochs);
/* 1 when reuse_get(k, ..., epochs) would find a model (without copying it), else 0. */
int reuse_has(const reuse_key *k, int epochs);
/* Keeps a copy of m and its loss curve under k (nothing when reuse is off or m alone exceeds the bound). */
void reuse_put(const reuse_key *k, const nn_model *m, const double *loss_curve, int epochs);
/* Hits so far in this process. */
int reuse_hits(void);
/* Frees every entry. */
void reuse_clear(void);

#endif
