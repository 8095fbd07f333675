/* attack: the table of model-modification attacks and their expansion from [attack.<name>].
 *
 * An [attack.<name>] section has `type = <type>` (or `chain = a,b,...` naming other attack
 * sections, applied in order) and that type's parameters. A comma list on a parameter is a
 * sweep: the section expands into one setting per combination, and the first swept
 * parameter is the setting's "strength" (the x axis of robustness plots). Sections with
 * `enabled = 0` are skipped. Every setting is applied to a copy of the victim model; the
 * runner evaluates the result exactly like an un-attacked model.
 *
 * Types (one table in attack.c, printed by `pmi attacks`): on the weights, ftll, ftal, rtll,
 * rtal (fine-tuning variants), prune (magnitude, global or per layer), prune-ft (prune then
 * fine-tune all layers with the mask fixed), fineprune (Liu et al.: the last convolution's
 * least active channels removed, then fine-tuning), shuffle (a function-preserving
 * permutation of hidden units), distill (soft labels, T and alpha), extract (hard labels
 * only), quantize (bits), noise (sigma relative to each tensor's std); training against
 * membership inference, smooth, flood, noisyft, advtrain, and transfer to a new task; and on
 * the interface (nn.h: the model unchanged, its queries or answers transformed whenever it
 * is evaluated), label, topk, round, temperature, rsigmoid, outnoise, inquant, innoise, blur,
 * shift, flip. */
#ifndef PMI_ATTACK_H
#define PMI_ATTACK_H
#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "nn.h"

#define ATTACK_MAX_STEPS 4
#define ATTACK_MAX_PARAMS 12     /* more than any type takes */
#define ATTACK_MAX_SETTINGS 4096  /* combinations of one section's swept values */

typedef struct {
    char key[32];
    double value;
    char text[CFG_STR];          /* for string parameters (student arch, optimizer) */
} attack_param;

typedef struct {
    int type;                    /* index into the type table */
    attack_param params[ATTACK_MAX_PARAMS];
    int n_params;
} attack_step;

typedef struct {
    char name[64];               /* section name without "attack." */
    char type[64];               /* type, or "prune+ftal" for chains */
    char label[256];             /* "sparsity=0.5,global=1" (all parameters, for the record) */
    char strength_key[32];       /* swept parameter, "" if none */
    double strength;             /* its value, NAN if none */
    attack_step steps[ATTACK_MAX_STEPS];
    int n_steps;
} attack_setting;

/* Expands every enabled [attack.*] section of c into settings (malloc'd). Errors name
 * file:line and the key: unknown type, unknown parameter, bad value. */
int attack_plan(const cfg *c, attack_setting **out, int *n, char *err, size_t errlen);

/* The context an attack may use: the attacker's data and the training defaults. */
typedef struct {
    const nn_data *attacker;     /* the attacker's split on the model's device */
    const pmi_params *p;         /* experiment parameters (input shape comes from spec) */
    nn_model_spec spec;          /* the victim's spec (students reuse shape and device) */
    uint64_t seed;
} attack_ctx;

/* Applies setting a to a deep copy of victim; *out is the attacked model. */
int attack_apply(const attack_setting *a, const nn_model *victim, const attack_ctx *ctx,
                 nn_model **out, char *err, size_t errlen);
/* Applies k settings at once: a[i] to a deep copy of victims[i] with ctx[i] (a victim may
 * appear several times). The steps go in lockstep: step s of every attack that has one is
 * applied, then all their training runs as one nn_train_tasks call (concurrently on a GPU).
 * out[i] is what attack_apply(a[i], victims[i], &ctx[i]) gives (bit for bit on the CPU). On
 * an error nothing is returned (every copy is freed) and err names the attack. */
int attack_apply_many(const attack_setting *const *a, const nn_model *const *victims, const attack_ctx *ctx, int k,
                      nn_model **out, char *err, size_t errlen);

/* Prints every attack type with its parameters, defaults and ranges. */
void attack_print_help(FILE *out);

#endif
