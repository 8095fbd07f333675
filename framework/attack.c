/* attack: the attack table, the expansion of [attack.<name>] sections, and applying a
 * setting to a copy of a model (see attack.h). */
#include "attack.h"
#include "util.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Every parameter any attack takes: default, range, and for enums the choice list. */
typedef struct {
    const char *key;
    double def, min, max;
    const char *(*choices)(int i); /* names of an enum (nn.h's table): the value is the index; NULL: a number */
    int is_arch;           /* value is an architecture name ("" = the victim's) */
    int is_int;            /* value must be a whole number */
    const char *help;
} param_info;

static const param_info param_table[] = {
    {"epochs", 5, 0, 10000, NULL, 0, 1, "training epochs"},
    {"lr", 0.01, 1e-8, 10, NULL, 0, 0, "learning rate"},
    {"optimizer", NN_SGD, 0, 0, nn_optimizer_name, 0, 0, "optimizer"},
    {"momentum", 0.9, 0, 0.999, NULL, 0, 0, "SGD momentum"},
    {"batch_size", 64, 1, 1 << 20, NULL, 0, 1, "mini-batch size"},
    {"fraction", 1, 1e-6, 1, NULL, 0, 0, "fraction of the attacker's data used"},
    {"sparsity", 0.5, 0, 0.999, NULL, 0, 0, "fraction of weights set to zero"},
    {"global", 1, 0, 1, NULL, 0, 1, "1: rank all layers together; 0: prune each layer to the sparsity"},
    {"temperature", 4, 0.01, 1000, NULL, 0, 0, "softmax temperature T (of the soft labels; of the answers)"},
    {"alpha", 0.9, 0, 1, NULL, 0, 0, "weight of the soft-label loss (1-alpha on the true labels)"},
    {"arch", 0, 0, 0, NULL, 1, 0, "student architecture (default: the victim's)"},
    {"width", 0, 0, 4096, NULL, 0, 1, "student width (0: the arch's default)"},
    {"bits", 8, 1, 16, NULL, 0, 1, "bits per weight (2^bits levels per tensor) or per query pixel (inquant)"},
    {"sigma", 0.1, 0, 100, NULL, 0, 0, "noise std: of each tensor's std (noise, wshift), of the normalised pixels (innoise), "
                                         "of a probability (outnoise), of clip / batch (noisyft)"},
    {"k", 3, 1, 1000, NULL, 0, 1, "probabilities the answer keeps"},
    {"decimals", 2, 0, 8, NULL, 0, 1, "decimals the answer's probabilities keep"},
    {"beta", 1, 0, 10, NULL, 0, 0, "reverse sigmoid's strength"},
    {"gamma", 0.1, 1e-6, 100, NULL, 0, 0, "reverse sigmoid's slope"},
    {"pixels", 1, 0, 64, NULL, 0, 1, "blur radius ((2r+1)^2 window) or shift, in pixels"},
    {"smoothing", 0.1, 0, 0.999, NULL, 0, 0, "label smoothing of the fine-tuning's targets"},
    {"level", 0.3, 0, 100, NULL, 0, 0, "flooding level b: a sample's loss l counts as |l - b| + b"},
    {"clip", 1, 1e-6, 1e6, NULL, 0, 0, "norm each batch's gradient is clipped to"},
    {"eps", 0.3, 0, 100, NULL, 0, 0, "L-inf radius of the adversarial examples, in normalised pixels"},
    {"steps", 3, 1, 100, NULL, 0, 1, "PGD steps per batch"},
    {"classes", 5, 2, 1000, NULL, 0, 1, "the new task's classes: the first this many labels"},
    {"freeze", 1, 0, 1, NULL, 0, 1, "1: only the new head trains; 0: all layers"},
    {"lambda", 1.5, 0, 100, NULL, 0, 0, "multiple of the mean filter taken from each convolution's filters"},
    {"samples", 50, 1, 1e6, NULL, 0, 1, "the thief's own mini-dataset: the first this many of its samples"},
    {"repeat", 4, 1, 100, NULL, 0, 1, "times the thief's mini-dataset is in its training set"},
};
enum { N_PARAMS = sizeof param_table / sizeof param_table[0] };

/* What one step of one attack leaves to train: a task (model NULL: nothing), the attacker data it
 * owns, and for distillation the teacher (the victim copy), freed once the student is trained. */
typedef struct {
    nn_train_task task;
    nn_data *data;
    nn_model *teacher;
} step_work;

typedef struct attack_kind {
    const char *name;
    const char *params;    /* space-separated keys of param_table */
    const char *help;
    /* modifies *m in place (or replaces it) and, for a training step, fills *w's task */
    int (*apply)(const struct attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed,
                 step_work *w);
    /* interface attacks (nn.h): the transform they set; its parameter is the kind's first (and
     * for rsigmoid second) parameter */
    nn_input_transform input;
    nn_output_transform output;
} attack_kind;

#define FT_PARAMS "epochs lr optimizer momentum batch_size fraction"
static int apply_finetune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_prune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_distill(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_quantize(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_noise(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_fineprune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_shuffle(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_wshift(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_overwrite(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_recipe(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_transfer(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);
static int apply_interface(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w);

static const attack_kind kinds[] = {
    {"ftll", FT_PARAMS, "fine-tune the last layer only on the attacker's data", apply_finetune, NN_IN_NONE, NN_OUT_NONE},
    {"ftal", FT_PARAMS, "fine-tune all layers", apply_finetune, NN_IN_NONE, NN_OUT_NONE},
    {"rtll", FT_PARAMS, "re-initialise the last layer, train it only", apply_finetune, NN_IN_NONE, NN_OUT_NONE},
    {"rtal", FT_PARAMS, "re-initialise the last layer, train all layers", apply_finetune, NN_IN_NONE, NN_OUT_NONE},
    {"prune", "sparsity global", "unstructured magnitude pruning", apply_prune, NN_IN_NONE, NN_OUT_NONE},
    {"prune-ft", "sparsity global " FT_PARAMS, "unstructured pruning, then fine-tune all layers with the mask fixed", apply_prune, NN_IN_NONE, NN_OUT_NONE},
    {"fineprune", "sparsity " FT_PARAMS, "Fine-Pruning (Liu et al. 2018): remove the last conv's least active channels, fine-tune", apply_fineprune, NN_IN_NONE, NN_OUT_NONE},
    {"shuffle", "", "neuron shuffling: permute hidden units (the function is unchanged)", apply_shuffle, NN_IN_NONE, NN_OUT_NONE},
    {"wshift", "lambda sigma " FT_PARAMS, "weight shifting (WRT): shift and noise every conv filter, then fine-tune all layers", apply_wshift, NN_IN_NONE, NN_OUT_NONE},
    {"overwrite", "samples repeat " FT_PARAMS, "overwriting (WRT): fine-tune all layers while embedding the thief's own PMI fingerprint", apply_overwrite, NN_IN_NONE, NN_OUT_NONE},
    {"distill", "temperature alpha arch width " FT_PARAMS, "train a fresh student on the victim's soft labels", apply_distill, NN_IN_NONE, NN_OUT_NONE},
    {"extract", "arch width " FT_PARAMS, "train a fresh student on the victim's hard labels (label-only)", apply_distill, NN_IN_NONE, NN_OUT_NONE},
    {"quantize", "bits", "uniform per-tensor weight quantisation", apply_quantize, NN_IN_NONE, NN_OUT_NONE},
    {"noise", "sigma", "Gaussian weight noise relative to each tensor's std", apply_noise, NN_IN_NONE, NN_OUT_NONE},
    /* training against membership inference, and a new task */
    {"smooth", "smoothing " FT_PARAMS, "fine-tune all layers against label-smoothed targets", apply_recipe, NN_IN_NONE, NN_OUT_NONE},
    {"flood", "level " FT_PARAMS, "adaptive: fine-tune all layers with per-sample flooding, pushing up every loss below the level", apply_recipe, NN_IN_NONE, NN_OUT_NONE},
    {"noisyft", "sigma clip " FT_PARAMS, "fine-tune all layers with clipped, noised batch gradients (DP-SGD-like, no guarantee)", apply_recipe, NN_IN_NONE, NN_OUT_NONE},
    {"advtrain", "eps steps " FT_PARAMS, "adversarial fine-tuning of all layers on PGD examples (Madry et al.)", apply_recipe, NN_IN_NONE, NN_OUT_NONE},
    {"transfer", "classes freeze " FT_PARAMS, "transfer to a new task: the first `classes` labels only, a new head", apply_transfer, NN_IN_NONE, NN_OUT_NONE},
    /* the interface: what a query and its answer go through (evaluation only; nn.h) */
    {"label", "", "answer the label only (top-1, one-hot)", apply_interface, NN_IN_NONE, NN_OUT_LABEL},
    {"topk", "k", "answer the k largest probabilities, renormalised", apply_interface, NN_IN_NONE, NN_OUT_TOPK},
    {"round", "decimals", "answer probabilities rounded to d decimals", apply_interface, NN_IN_NONE, NN_OUT_ROUND},
    {"temperature", "temperature", "answer softmax at temperature T", apply_interface, NN_IN_NONE, NN_OUT_TEMPERATURE},
    {"rsigmoid", "beta gamma", "answer reverse-sigmoid-perturbed probabilities (Lee et al. 2019)", apply_interface, NN_IN_NONE, NN_OUT_RSIGMOID},
    {"outnoise", "sigma", "answer probabilities plus Gaussian noise, renormalised", apply_interface, NN_IN_NONE, NN_OUT_NOISE},
    {"inquant", "bits", "quantise each query image to 2^bits levels", apply_interface, NN_IN_QUANTIZE, NN_OUT_NONE},
    {"innoise", "sigma", "add Gaussian noise to each query image", apply_interface, NN_IN_NOISE, NN_OUT_NONE},
    {"blur", "pixels", "blur each query image (mean over a (2r+1)^2 window)", apply_interface, NN_IN_BLUR, NN_OUT_NONE},
    {"shift", "pixels", "shift each query image down and right", apply_interface, NN_IN_SHIFT, NN_OUT_NONE},
    {"flip", "", "mirror each query image left to right", apply_interface, NN_IN_FLIP, NN_OUT_NONE},
};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

static const param_info *param_find(const char *key) {
    for (int i = 0; i < N_PARAMS; i++)
        if (!strcmp(param_table[i].key, key)) return &param_table[i];
    return NULL;
}

static int kind_find(const char *name) {
    for (int i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].name, name)) return i;
    return -1;
}

/* The first parameter a type takes ("" for none) into out. */
static void first_param(const attack_kind *k, char out[32]) {
    snprintf(out, 32, "%.*s", (int)strcspn(k->params, " "), k->params);
}

static int kind_takes(const attack_kind *k, const char *key) {
    size_t n = strlen(key);
    for (const char *p = k->params; (p = strstr(p, key)); p += n)
        if ((p == k->params || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* The value of key in step s, or its default. */
static double step_num(const attack_step *s, const char *key) {
    for (int i = 0; i < s->n_params; i++)
        if (!strcmp(s->params[i].key, key)) return s->params[i].value;
    const param_info *pi = param_find(key);
    return pi ? pi->def : NAN;
}

static const char *step_text(const attack_step *s, const char *key) {
    for (int i = 0; i < s->n_params; i++)
        if (!strcmp(s->params[i].key, key)) return s->params[i].text;
    return "";
}

/* Appends printf-style text to the string buf of capacity len. -1 if it does not fit
 * (buf is then cut; the caller reports the limit). */
static int str_append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int str_append(char *buf, size_t len, const char *fmt, ...) {
    size_t used = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* "ftll ftal ..." (every type, for messages). */
static const char *kind_list(void) {
    static char names[512];
    if (!names[0])
        for (int i = 0; i < N_KINDS; i++) str_append(names, sizeof names, "%s%s", i ? " " : "", kinds[i].name);
    return names;
}

/* Parses one value of parameter pi into ap. Returns 0 or -1 with err naming where. */
static int parse_value(const param_info *pi, const char *text, const char *where, const char *sec,
                       attack_param *ap, char *err, size_t errlen) {
    snprintf(ap->key, sizeof ap->key, "%s", pi->key);
    if (strlen(text) >= sizeof ap->text)
        return util_err(err, errlen, "%s: [%s] %s: value longer than %zu characters", where, sec, pi->key, sizeof ap->text - 1);
    snprintf(ap->text, sizeof ap->text, "%s", text);
    if (pi->is_arch) {
        for (int i = 0; i < nn_arch_count(); i++)
            if (!strcmp(text, nn_arch_name(i))) { ap->value = i; return 0; }
        snprintf(err, errlen, "%s: [%s] %s: unknown architecture '%s'", where, sec, pi->key, text);
        return -1;
    }
    if (pi->choices) {
        char names[256] = "";
        for (int i = 0; pi->choices(i); i++) {
            if (!strcmp(pi->choices(i), text)) { ap->value = i; return 0; }
            str_append(names, sizeof names, "%s%s", i ? "|" : "", pi->choices(i));
        }
        return util_err(err, errlen, "%s: [%s] %s: expected one of %s, got '%s'", where, sec, pi->key, names, text);
    }
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || isnan(v) || v < pi->min || v > pi->max || (pi->is_int && v != floor(v)))
        return util_err(err, errlen, "%s: [%s] %s: expected %s in [%g, %g], got '%s'", where, sec, pi->key,
                        pi->is_int ? "a whole number" : "a number", pi->min, pi->max, text);
    ap->value = v;
    return 0;
}

/* One section's keys split into values: key j has nvals[j] comma-separated values vals[j]. */
typedef struct {
    const char *keys[ATTACK_MAX_PARAMS];
    char **vals[ATTACK_MAX_PARAMS];
    int nvals[ATTACK_MAX_PARAMS];
    const char *where[ATTACK_MAX_PARAMS];
    int n;
    int kind;
    int combos;
} section_spec;

/* Splits a comma list into malloc'd, trimmed items (*n of them); free with free_list(). */
static char **split_list(const char *v, int *n) {
    char *buf = util_strdup(v);
    char **out = NULL;
    *n = 0;
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ') t++;
        size_t l = strlen(t);
        while (l && t[l - 1] == ' ') t[--l] = 0;
        out = util_realloc(out, sizeof *out * (size_t)(*n + 1));
        out[(*n)++] = util_strdup(t);
    }
    free(buf);
    return out;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

static void section_free(section_spec *ss) {
    for (int j = 0; j < ss->n; j++) free_list(ss->vals[j], ss->nvals[j]);
    ss->n = 0;
}

/* Reads and checks the keys of a typed section (not a chain) into ss. */
static int read_keys(const cfg *c, const char *sec, const char **keys, int nk, section_spec *ss, char *err, size_t errlen) {
    const char *where = NULL;
    const char *type = cfg_get(c, sec, "type", &where);
    if (!type) {
        cfg_get(c, sec, nk ? keys[0] : "", &where);
        return util_err(err, errlen, "%s: [%s]: missing 'type' (or 'chain'); types: %s", where ? where : "config", sec, kind_list());
    }
    if ((ss->kind = kind_find(type)) < 0)
        return util_err(err, errlen, "%s: [%s] type: unknown attack type '%s' (known: %s)", where, sec, type, kind_list());
    ss->combos = 1;
    for (int i = 0; i < nk; i++) {
        if (!strcmp(keys[i], "type") || !strcmp(keys[i], "enabled")) continue;
        const char *v = cfg_get(c, sec, keys[i], &where);
        if (!kind_takes(&kinds[ss->kind], keys[i]))
            return util_err(err, errlen, "%s: [%s] unknown parameter '%s' for type %s (takes: %s)", where, sec, keys[i], type, kinds[ss->kind].params);
        if (ss->n == ATTACK_MAX_PARAMS)
            return util_err(err, errlen, "%s: [%s]: more than %d parameters", where, sec, ATTACK_MAX_PARAMS);
        int j = ss->n++;
        ss->keys[j] = keys[i];
        ss->where[j] = where;
        ss->vals[j] = split_list(v, &ss->nvals[j]);
        if (ss->nvals[j] == 0) return util_err(err, errlen, "%s: [%s] %s: empty value", where, sec, keys[i]);
        for (int q = 0; q < ss->nvals[j]; q++) {
            attack_param ap;
            if (parse_value(param_find(keys[i]), ss->vals[j][q], where, sec, &ap, err, errlen)) return -1;
        }
        if (ss->combos > ATTACK_MAX_SETTINGS / ss->nvals[j])
            return util_err(err, errlen, "%s: [%s]: more than %d combinations of swept values", where, sec, ATTACK_MAX_SETTINGS);
        ss->combos *= ss->nvals[j];
    }
    return 0;
}

/* Reads and checks a typed section (not a chain); free ss with section_free(). */
static int read_section(const cfg *c, const char *sec, section_spec *ss, char *err, size_t errlen) {
    int nk = cfg_keys(c, sec, NULL, 0);
    const char **keys = util_calloc((size_t)nk, sizeof *keys);
    cfg_keys(c, sec, keys, nk);
    memset(ss, 0, sizeof *ss);
    int rc = read_keys(c, sec, keys, nk, ss, err, errlen);
    free(keys);
    if (rc) section_free(ss);
    return rc;
}

/* Step for combination `combo` (mixed radix, first key slowest). Sets strength from the first axis. */
static void make_step(const section_spec *ss, int combo, attack_step *st, const char **skey, double *strength) {
    char err[8];
    memset(st, 0, sizeof *st);
    st->type = ss->kind;
    *skey = NULL; *strength = NAN;
    int rem = combo;
    for (int j = ss->n - 1; j >= 0; j--) {
        int q = rem % ss->nvals[j];
        rem /= ss->nvals[j];
        attack_param *ap = &st->params[j];
        parse_value(param_find(ss->keys[j]), ss->vals[j][q], "", "", ap, err, sizeof err);
    }
    st->n_params = ss->n;
    for (int j = 0; j < ss->n; j++)
        if (ss->nvals[j] > 1) { *skey = ss->keys[j]; *strength = st->params[j].value; return; }
    /* no sweep: the strength is the type's first parameter */
    static char first[32];
    first_param(&kinds[ss->kind], first);
    *skey = first;
    *strength = step_num(st, first);
}

/* Appends the parameters the section sets ("key=value,..."); defaults are left out (the
 * stored config and `pmi attacks` have them). -1 if the label does not fit. */
static int append_label(char *label, size_t len, const attack_step *st) {
    for (int i = 0; i < st->n_params; i++) {
        const attack_param *ap = &st->params[i];
        const param_info *pi = param_find(ap->key);
        size_t used = strlen(label);
        const char *sep = used && label[used - 1] != ':' ? "," : "";
        int rc = pi->is_arch || pi->choices ? str_append(label, len, "%s%s=%s", sep, ap->key, ap->text)
                                            : str_append(label, len, "%s%s=%g", sep, ap->key, ap->value);
        if (rc) return -1;
    }
    return 0;
}

/* Starts setting a of section sec ("attack.<name>"). -1 with err if the name is too long. */
static int setting_init(attack_setting *a, const char *sec, const char *where, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    a->strength = NAN;
    if (strlen(sec + 7) >= sizeof a->name)
        return util_err(err, errlen, "%s: [%s]: attack name longer than %zu characters", where, sec, sizeof a->name - 1);
    snprintf(a->name, sizeof a->name, "%s", sec + 7);
    return 0;
}

static int chain_step(const cfg *c, const char *sec, const char *step, const char *where,
                      attack_setting *a, char *err, size_t errlen) {
    size_t rlen = strlen(step) + 8;
    char *ref = util_malloc(rlen);
    snprintf(ref, rlen, "attack.%s", step);
    section_spec ss;
    int rc = -1;
    if (cfg_keys(c, ref, NULL, 0) == 0) { util_err(err, errlen, "%s: [%s] chain: no section [%s]", where, sec, ref); goto out; }
    if (read_section(c, ref, &ss, err, errlen)) goto out;
    if (ss.combos != 1) {
        util_err(err, errlen, "%s: [%s] chain: step [%s] has a comma list; chain steps take single values", where, sec, ref);
    } else {
        const char *skey; double strength;
        make_step(&ss, 0, &a->steps[a->n_steps++], &skey, &strength);
        if (str_append(a->type, sizeof a->type, "%s%s", a->type[0] ? "+" : "", kinds[ss.kind].name) ||
            str_append(a->label, sizeof a->label, "%s%s:", a->label[0] ? ";" : "", kinds[ss.kind].name) ||
            append_label(a->label, sizeof a->label, &a->steps[a->n_steps - 1]))
            util_err(err, errlen, "%s: [%s] chain: its type or parameter label is longer than %zu characters", where, sec, sizeof a->label - 1);
        else
            rc = 0;
    }
    section_free(&ss);
out:
    free(ref);
    return rc;
}

static int plan_chain(const cfg *c, const char *sec, const char *chain, const char *where,
                      attack_setting *a, char *err, size_t errlen) {
    int ns, rc = 0;
    char **steps = split_list(chain, &ns);
    if (ns < 1 || ns > ATTACK_MAX_STEPS)
        rc = util_err(err, errlen, "%s: [%s] chain: expected 1 to %d attack names", where, sec, ATTACK_MAX_STEPS);
    if (!rc) rc = setting_init(a, sec, where, err, errlen);
    for (int i = 0; i < ns && !rc; i++) rc = chain_step(c, sec, steps[i], where, a, err, errlen);
    free_list(steps, ns);
    return rc;
}

/* Appends the settings of a typed section (one per combination of swept values). */
static int plan_section(const cfg *c, const char *sec, int enabled, attack_setting **v, int *count, int *cap,
                        char *err, size_t errlen) {
    section_spec ss;
    if (read_section(c, sec, &ss, err, errlen)) return -1;
    int rc = 0;
    for (int combo = 0; enabled && combo < ss.combos && !rc; combo++) {
        if (*count == *cap) *v = util_realloc(*v, sizeof **v * (size_t)(*cap = *cap ? *cap * 2 : 16));
        attack_setting *a = &(*v)[(*count)++];
        const char *skey;
        if ((rc = setting_init(a, sec, ss.n ? ss.where[0] : "config", err, errlen))) break;
        snprintf(a->type, sizeof a->type, "%s", kinds[ss.kind].name);
        make_step(&ss, combo, &a->steps[0], &skey, &a->strength);
        a->n_steps = 1;
        if (skey) snprintf(a->strength_key, sizeof a->strength_key, "%s", skey);
        if (append_label(a->label, sizeof a->label, &a->steps[0]))
            rc = util_err(err, errlen, "[%s]: the parameter label is longer than %zu characters", sec, sizeof a->label - 1);
    }
    section_free(&ss);
    return rc;
}

int attack_plan(const cfg *c, attack_setting **out, int *n, char *err, size_t errlen) {
    attack_setting *v = NULL;
    int count = 0, cap = 0, ns = cfg_section_count(c, "attack.");
    *out = NULL; *n = 0;
    for (int i = 0; i < ns; i++) {
        const char *sec = cfg_section_name(c, "attack.", i), *where = NULL;
        const char *en = cfg_get(c, sec, "enabled", &where);
        if (en && strcmp(en, "0") && strcmp(en, "1")) {
            free(v);
            return util_err(err, errlen, "%s: [%s] enabled: expected 0 or 1, got '%s'", where, sec, en);
        }
        int enabled = !en || strcmp(en, "0");
        const char *chain = cfg_get(c, sec, "chain", &where);
        int rc;
        if (chain) {
            if (count == cap) v = util_realloc(v, sizeof *v * (size_t)(cap = cap ? cap * 2 : 16));
            if (!(rc = plan_chain(c, sec, chain, where, &v[count], err, errlen)) && enabled) count++;
        } else {
            rc = plan_section(c, sec, enabled, &v, &count, &cap, err, errlen);
        }
        if (rc) { free(v); return -1; }
    }
    *out = v; *n = count;
    return 0;
}

/* ---- applying ---------------------------------------------------------------------- */
static nn_train_params step_train(const attack_step *s, uint64_t seed) {
    nn_train_params tp = nn_train_default_params();
    tp.epochs = (int)step_num(s, "epochs");
    tp.lr = step_num(s, "lr");
    tp.optimizer = (nn_optimizer)step_num(s, "optimizer");
    tp.momentum = step_num(s, "momentum");
    tp.batch_size = (int)step_num(s, "batch_size");
    tp.seed = seed;
    return tp;
}

/* The first `fraction` of the attacker's data (the split is already random). */
static int attacker_part(const attack_ctx *ctx, double fraction, nn_data **out) {
    int64_t n = nn_data_size(ctx->attacker), k = (int64_t)ceil(fraction * (double)n);
    if (k < 1) k = 1;
    int64_t *idx = util_malloc(sizeof *idx * (size_t)k);
    for (int64_t i = 0; i < k; i++) idx[i] = i;
    int rc = nn_data_subset(ctx->attacker, idx, k, out) == NN_OK ? 0 : -1;
    free(idx);
    return rc;
}

/* Fills w with fine-tuning m on the attacker's part (all layers or the last). */
static int finetune(const attack_step *s, nn_model *m, const attack_ctx *ctx, uint64_t seed, nn_trainable which, step_work *w) {
    if (!ctx->attacker || attacker_part(ctx, step_num(s, "fraction"), &w->data)) return -1;
    w->task = (nn_train_task){ .model = m, .data = w->data, .params = step_train(s, seed) };
    w->task.params.trainable = which;
    return 0;
}

static int apply_finetune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    int reinit = k->name[0] == 'r', last = !strcmp(k->name + 2, "ll");
    if (reinit && nn_reinit_last(*m, seed) != NN_OK) return -1;
    return finetune(s, *m, ctx, seed + 1, last ? NN_TRAIN_LAST : NN_TRAIN_ALL, w);
}

static int apply_prune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    if (nn_prune(*m, step_num(s, "sparsity"), (int)step_num(s, "global"), NULL) != NN_OK) return -1;
    return strcmp(k->name, "prune-ft") ? 0 : finetune(s, *m, ctx, seed, NN_TRAIN_ALL, w);
}

/* Fine-Pruning: the channels least active on the attacker's (clean) data removed, then
 * fine-tuning of all layers with them kept removed. */
static int apply_fineprune(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k;
    if (!ctx->attacker || finetune(s, *m, ctx, seed, NN_TRAIN_ALL, w)) return -1;
    return nn_prune_channels(*m, w->data, step_num(s, "sparsity"), NULL) == NN_OK ? 0 : -1;
}

static int apply_shuffle(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k; (void)s; (void)ctx; (void)w;
    return nn_shuffle_units(*m, seed) == NN_OK ? 0 : -1;
}

/* Weight shifting (nn_shift_weights), then fine-tuning of all layers with ftal's seeds: at lambda
 * = sigma = 0 it is ftal. */
static int apply_wshift(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k;
    if (nn_shift_weights(*m, step_num(s, "lambda"), step_num(s, "sigma"), seed) != NN_OK) return -1;
    return finetune(s, *m, ctx, seed + 1, NN_TRAIN_ALL, w);
}

/* A fresh student replaces *m, which becomes its teacher until it has trained. */
static int apply_distill(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    nn_model_spec spec = ctx->spec;
    const char *arch = step_text(s, "arch");
    if (*arch) { spec.arch = arch; spec.width = (int)step_num(s, "width"); }
    spec.seed = seed;
    nn_model *student = NULL;
    if (!ctx->attacker || nn_model_create(&spec, &student) != NN_OK) return -1;
    if (attacker_part(ctx, step_num(s, "fraction"), &w->data)) { nn_model_free(student); return -1; }
    w->task = (nn_train_task){ .model = student, .data = w->data, .params = step_train(s, seed + 1), .teacher = *m,
                               .distill = { .temperature = step_num(s, "temperature"), .alpha = step_num(s, "alpha"),
                                            .hard = !strcmp(k->name, "extract") } };
    w->teacher = *m;
    *m = student;
    return 0;
}

static int apply_quantize(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)w;
    return nn_quantize(*m, (int)step_num(s, "bits")) == NN_OK ? 0 : -1;
}

static int apply_noise(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)w;
    return nn_add_noise(*m, step_num(s, "sigma"), seed) == NN_OK ? 0 : -1;
}

/* Why the last apply of this thread failed when it was not libtorch ("" otherwise). */
static __thread char apply_msg[256];

/* Fine-tuning of all layers with a kind's training recipe (nn_train_params: label smoothing,
 * flooding, clipped noisy gradients, adversarial examples), read from the parameters it takes. */
static int apply_recipe(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k;
    if (finetune(s, *m, ctx, seed + 1, NN_TRAIN_ALL, w)) return -1;   /* ftal's seeds: a neutral recipe is ftal */
    nn_train_params *tp = &w->task.params;
    if (kind_takes(k, "smoothing")) tp->label_smoothing = step_num(s, "smoothing");
    if (kind_takes(k, "level")) tp->flood = step_num(s, "level");
    if (kind_takes(k, "clip")) { tp->clip = step_num(s, "clip"); tp->grad_noise = step_num(s, "sigma"); }
    if (kind_takes(k, "eps")) { tp->adv_eps = step_num(s, "eps"); tp->adv_steps = (int)step_num(s, "steps"); }
    return 0;
}

/* Overwriting (WRT: embedding a watermark of one's own with the same scheme), for PMI: the thief's
 * own mini-dataset, the first `samples` of its data, is `repeat` times in its training set (once
 * among the rest, repeat - 1 copies after) while all layers are fine-tuned with ftal's seeds; at
 * repeat 1 it is ftal. */
static int apply_overwrite(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k;
    nn_data *part = NULL;
    if (!ctx->attacker || attacker_part(ctx, step_num(s, "fraction"), &part)) return -1;
    int64_t n = nn_data_size(part), own = (int64_t)step_num(s, "samples"), total = n + (int64_t)(step_num(s, "repeat") - 1) * own;
    if (own > n) {
        snprintf(apply_msg, sizeof apply_msg, "samples = %lld: the attacker's data has only %lld", (long long)own, (long long)n);
        nn_data_free(part);
        return -1;
    }
    int64_t *idx = util_malloc(sizeof *idx * (size_t)total);
    for (int64_t i = 0; i < total; i++) idx[i] = i < n ? i : (i - n) % own;
    int rc = nn_data_subset(part, idx, total, &w->data) == NN_OK ? 0 : -1;
    free(idx);
    nn_data_free(part);
    if (rc) return -1;
    w->task = (nn_train_task){ .model = *m, .data = w->data, .params = step_train(s, seed + 1) };
    w->task.params.trainable = NN_TRAIN_ALL;
    return 0;
}

/* Transfer to a new task: the attacker's samples of the first `classes` labels, the last layer
 * re-initialised, then it alone (freeze = 1) or every layer trained. The model keeps its output
 * count; the labels it is no longer trained on are the old task's. */
static int apply_transfer(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)k;
    nn_data *part = NULL;
    if (!ctx->attacker || attacker_part(ctx, step_num(s, "fraction"), &part)) return -1;
    int64_t n = nn_data_size(part), kept = 0;
    int classes = (int)step_num(s, "classes");
    int32_t *y = util_malloc(sizeof *y * (size_t)(n ? n : 1));
    int64_t *idx = util_malloc(sizeof *idx * (size_t)(n ? n : 1));
    int rc = nn_data_labels(part, y) == NN_OK ? 0 : -1;
    for (int64_t i = 0; i < n && !rc; i++)
        if (y[i] < classes) idx[kept++] = i;
    if (!rc && (classes >= ctx->spec.classes || kept < 2)) {
        snprintf(apply_msg, sizeof apply_msg, classes >= ctx->spec.classes ? "classes = %d: the new task must have fewer than the model's %d"
                 : "classes = %d: fewer than 2 of the attacker's samples have such a label (of %d classes)", classes, ctx->spec.classes);
        nn_data_free(part); free(y); free(idx);
        return -1;
    }
    if (!rc) rc = nn_data_subset(part, idx, kept, &w->data) == NN_OK ? 0 : -1;
    nn_data_free(part); free(y); free(idx);
    if (rc || nn_reinit_last(*m, seed) != NN_OK) return -1;
    w->task = (nn_train_task){ .model = *m, .data = w->data, .params = step_train(s, seed + 1) };
    w->task.params.trainable = step_num(s, "freeze") ? NN_TRAIN_LAST : NN_TRAIN_ALL;
    return 0;
}

/* An interface attack: the model unchanged, its queries or answers transformed at evaluation
 * (nn.h). A later transform of the same side (input or output) replaces an earlier one. */
static int apply_interface(const attack_kind *k, const attack_step *s, nn_model **m, const attack_ctx *ctx, uint64_t seed, step_work *w) {
    (void)w;
    nn_interface q = *nn_get_interface(*m);
    char first[32];
    first_param(k, first);
    double a = *first ? step_num(s, first) : 0;
    if (k->input != NN_IN_NONE) { q.input = k->input; q.in_param = a; }
    if (k->output != NN_OUT_NONE) { q.output = k->output; q.out_param = a; q.out_param2 = kind_takes(k, "gamma") ? step_num(s, "gamma") : 0; }
    q.seed = seed;   /* the attack's seed: its job's and this step's */
    return nn_set_interface(*m, &q) == NN_OK ? 0 : -1;
}

static void work_clear(step_work *w) {
    nn_model_free(w->teacher);
    nn_data_free(w->data);
    memset(w, 0, sizeof *w);
}

int attack_apply_many(const attack_setting *const *a, const nn_model *const *victims, const attack_ctx *ctx, int k,
                      nn_model **out, char *err, size_t errlen) {
    nn_model **m = util_calloc((size_t)k, sizeof *m);
    step_work *w = util_calloc((size_t)k, sizeof *w);
    nn_train_task *tasks = util_calloc((size_t)k, sizeof *tasks);
    int rc = 0, steps = 0;
    for (int i = 0; i < k && !rc; i++) {
        if (nn_model_copy(victims[i], &m[i]) != NN_OK)
            rc = util_err(err, errlen, "attack %s: copying the model: %s", a[i]->name, nn_last_error());
        if (a[i]->n_steps > steps) steps = a[i]->n_steps;
    }
    /* step s of every attack that has one: the modifications, then their training together */
    for (int s = 0; s < steps && !rc; s++) {
        int nt = 0, first = -1;
        for (int i = 0; i < k && !rc; i++) {
            if (s >= a[i]->n_steps) continue;
            const attack_kind *kd = &kinds[a[i]->steps[s].type];
            apply_msg[0] = 0;
            if (kd->apply(kd, &a[i]->steps[s], &m[i], &ctx[i], ctx[i].seed + 1000u * (uint64_t)s, &w[i]))
                rc = util_err(err, errlen, "attack %s (%s): %s", a[i]->name, kd->name,
                              apply_msg[0] ? apply_msg : ctx[i].attacker || !kind_takes(kd, "fraction") ? nn_last_error()
                                                                : "needs attacker data (data.n_attacker > 0)");
            else if (w[i].task.model) {
                if (first < 0) first = i;
                tasks[nt++] = w[i].task;
            }
        }
        if (!rc && nt && nn_train_tasks(tasks, nt) != NN_OK) {
            const attack_step *st = &a[first]->steps[s];
            rc = nt == 1 ? util_err(err, errlen, "attack %s (%s): %s", a[first]->name, kinds[st->type].name, nn_last_error())
                         : util_err(err, errlen, "attacks %s ... (%d trained together): %s", a[first]->name, nt, nn_last_error());
        }
        for (int i = 0; i < k; i++) work_clear(&w[i]);
    }
    for (int i = 0; i < k; i++) {
        if (rc) nn_model_free(m[i]);
        else out[i] = m[i];
    }
    free(m); free(w); free(tasks);
    return rc ? -1 : 0;
}

int attack_apply(const attack_setting *a, const nn_model *victim, const attack_ctx *ctx,
                 nn_model **out, char *err, size_t errlen) {
    return attack_apply_many(&a, &victim, ctx, 1, out, err, errlen);
}

void attack_print_help(FILE *out) {
    fprintf(out, "Attack types, used as [attack.<name>] type = <type> with the parameters below.\n"
                 "A comma list on a parameter sweeps it; `chain = a,b` applies sections a then b;\n"
                 "`enabled = 0` skips a section.\n\n");
    for (int i = 0; i < N_KINDS; i++)
        fprintf(out, "  %-11s %s\n              parameters: %s\n", kinds[i].name, kinds[i].help, *kinds[i].params ? kinds[i].params : "(none)");
    fprintf(out, "\nParameters:\n");
    for (int i = 0; i < N_PARAMS; i++) {
        const param_info *p = &param_table[i];
        if (p->is_arch) fprintf(out, "  %-12s %-22s %s\n", p->key, "arch name", p->help);
        else if (p->choices) {
            char names[256] = "";
            for (int c = 0; p->choices(c); c++) str_append(names, sizeof names, "%s%s", c ? "|" : "", p->choices(c));
            fprintf(out, "  %-12s %-22s %s (default %s)\n", p->key, names, p->help, p->choices((int)p->def));
        }
        else fprintf(out, "  %-12s [%g, %g] default %-6g %s\n", p->key, p->min, p->max, p->def, p->help);
    }
}
