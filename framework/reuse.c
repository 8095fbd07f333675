/* reuse: trained models of this process by what determined them (see reuse.h). */
#include "reuse.h"
#include "sha256.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    reuse_key key;
    nn_model *model;
    double *curve;
    int epochs;
    int64_t params;
} entry;

static entry *entries;
static int n_entries, cap_entries, hits;
static int64_t held;   /* parameters held */

/* The bound in parameters (PMI_REUSE_MB, default 1024 MB of fp32), 0: off. */
static int64_t bound(void) {
    const char *v = getenv("PMI_REUSE_MB");
    double mb = v && *v ? atof(v) : 1024;
    return mb > 0 ? (int64_t)(mb * 1024 * 1024 / 4) : 0;
}

static void add(sha256_ctx *c, const void *p, size_t n) { sha256_update(c, p, n); }
static void add_str(sha256_ctx *c, const char *s) { add(c, s ? s : "", strlen(s ? s : "") + 1); }
static void add_i64(sha256_ctx *c, int64_t v) { add(c, &v, sizeof v); }
static void add_f64(sha256_ctx *c, double v) { add(c, &v, sizeof v); }

void reuse_key_make(reuse_key *k, const nn_model_spec *spec, const nn_train_params *tp, int tf32, int deterministic,
                    const char *data_id, const int64_t *idx, int64_t n) {
    sha256_ctx c;
    sha256_init(&c);
    add_str(&c, "pmi-reuse-1");
    add_str(&c, spec->arch);
    add_i64(&c, spec->c); add_i64(&c, spec->h); add_i64(&c, spec->w); add_i64(&c, spec->classes);
    add_i64(&c, spec->width); add_i64(&c, spec->device); add_i64(&c, (int64_t)spec->seed);
    add_i64(&c, tp->optimizer); add_f64(&c, tp->lr); add_f64(&c, tp->momentum); add_f64(&c, tp->weight_decay);
    add_i64(&c, tp->epochs); add_i64(&c, tp->batch_size); add_i64(&c, tp->schedule); add_i64(&c, tp->step_size);
    add_f64(&c, tp->gamma); add_i64(&c, tp->trainable); add_i64(&c, (int64_t)tp->seed); add_i64(&c, tp->precision);
    add_i64(&c, tp->channels_last);
    add_i64(&c, tf32); add_i64(&c, deterministic);
    add_str(&c, data_id);
    add_i64(&c, n);
    add(&c, idx, sizeof *idx * (size_t)n);
    sha256_final(&c, k->hex);
}

static entry *find(const reuse_key *k) {
    for (int i = 0; i < n_entries; i++)
        if (!strcmp(entries[i].key.hex, k->hex)) return &entries[i];
    return NULL;
}

int reuse_get(const reuse_key *k, nn_model **out, double *loss_curve, int epochs) {
    entry *e = bound() > 0 ? find(k) : NULL;
    if (!e || e->epochs != epochs || nn_model_copy(e->model, out) != NN_OK) return 0;
    if (loss_curve) memcpy(loss_curve, e->curve, sizeof *loss_curve * (size_t)epochs);
    hits++;
    return 1;
}

int reuse_has(const reuse_key *k, int epochs) {
    entry *e = bound() > 0 ? find(k) : NULL;
    return e && e->epochs == epochs;
}

static void drop(int i) {
    nn_model_free(entries[i].model);
    free(entries[i].curve);
    held -= entries[i].params;
    memmove(&entries[i], &entries[i + 1], sizeof *entries * (size_t)(n_entries - i - 1));
    n_entries--;
}

void reuse_put(const reuse_key *k, const nn_model *m, const double *loss_curve, int epochs) {
    int64_t limit = bound(), params = nn_model_num_params(m);
    if (limit <= 0 || params > limit || find(k)) return;
    nn_model *copy = NULL;
    if (nn_model_copy(m, &copy) != NN_OK) return;
    while (n_entries > 0 && held + params > limit) drop(0);
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? 2 * cap_entries : 64;
        entries = util_realloc(entries, sizeof *entries * (size_t)cap_entries);
    }
    entry *e = &entries[n_entries++];
    *e = (entry){ .key = *k, .model = copy, .epochs = epochs, .params = params,
                  .curve = util_calloc((size_t)(epochs > 0 ? epochs : 1), sizeof *e->curve) };
    if (loss_curve) memcpy(e->curve, loss_curve, sizeof *loss_curve * (size_t)epochs);
    held += params;
}

int reuse_hits(void) { return hits; }

void reuse_clear(void) {
    while (n_entries > 0) drop(n_entries - 1);
    free(entries);
    entries = NULL; cap_entries = 0; held = 0;
}
