/* weights: a model's state in memory and in safetensors files (see weights.h). */
#include "weights.h"
#include "safetensors.h"
#include "util.h"
#include "version.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *weights_dtype_name(nn_dtype d) { return d == NN_I64 ? "I64" : "F32"; }

static size_t dtype_size(nn_dtype d) { return d == NN_I64 ? sizeof(int64_t) : sizeof(float); }

void weights_free(weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].data);
    free(w->t);
    memset(w, 0, sizeof *w);
}

int weights_collect(const nn_model *m, const weights_input *in, weights *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    const nn_model_spec *spec = nn_model_get_spec(m);
    if (!spec) return util_err(err, errlen, "weights: no model");
    snprintf(w->arch, sizeof w->arch, "%s", spec->arch);
    w->width = spec->width;
    w->input = *in;
    w->input.c = spec->c; w->input.h = spec->h; w->input.w = spec->w; w->input.classes = spec->classes;
    int n = nn_state_count(m);
    w->t = util_calloc((size_t)n + 1, sizeof *w->t);
    for (int i = 0; i < n; i++) {
        weights_tensor *t = &w->t[i];
        const char *name;
        if (nn_state_info(m, i, &name, &t->dtype, t->shape, &t->ndim, &t->numel) != NN_OK) {
            weights_free(w);
            return util_err(err, errlen, "weights: %s", nn_last_error());
        }
        snprintf(t->name, sizeof t->name, "%s", name);
        t->data = util_malloc(dtype_size(t->dtype) * (size_t)t->numel);
        w->n = i + 1;
        if (nn_state_get(m, i, t->data) != NN_OK) {
            weights_free(w);
            return util_err(err, errlen, "weights: %s", nn_last_error());
        }
    }
    return 0;
}

/* "v0,v1,v2" of the first n values. */
static void join(const double *v, int n, char *buf, size_t len) {
    size_t u = 0;
    buf[0] = 0;
    for (int i = 0; i < n && u < len; i++) u += (size_t)snprintf(buf + u, len - u, "%s%.17g", i ? "," : "", v[i]);
}

int weights_save(const weights *w, const char *path, char *err, size_t errlen) {
    st_tensor *t = util_calloc((size_t)w->n + 1, sizeof *t);
    for (int i = 0; i < w->n; i++) {
        t[i].name = (char *)w->t[i].name;
        snprintf(t[i].dtype, sizeof t[i].dtype, "%s", weights_dtype_name(w->t[i].dtype));
        t[i].ndim = w->t[i].ndim;
        memcpy(t[i].shape, w->t[i].shape, sizeof w->t[i].shape);
        t[i].data = w->t[i].data;
    }
    char width[16], shape[64], classes[16], mean[128], sd[128];
    snprintf(width, sizeof width, "%d", w->width);
    snprintf(shape, sizeof shape, "%d,%d,%d", w->input.c, w->input.h, w->input.w);
    snprintf(classes, sizeof classes, "%d", w->input.classes);
    int c = w->input.c < 3 ? w->input.c : 3;
    join(w->input.mean, c, mean, sizeof mean);
    join(w->input.sd, c, sd, sizeof sd);
    const char *keys[] = {"format", "arch", "width", "input_shape", "classes", "normalize", "mean", "std", "dataset", "pmi_version"};
    const char *vals[] = {"pmi-model", w->arch, width, shape, classes, w->input.normalize, mean, sd, w->input.dataset, pmi_version};
    int rc = st_write(path, t, w->n, keys, vals, (int)(sizeof keys / sizeof keys[0]), err, errlen);
    free(t);
    return rc;
}

/* "a,b,c" into up to max doubles; returns how many were read, -1 on a bad list. */
static int split_doubles(const char *s, double *out, int max) {
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t len) {
    size_t u = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && u < len; d++) u += (size_t)snprintf(buf + u, len - u, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (u < len) snprintf(buf + u, len - u, "]");
}

/* Copies the file's tensor into state entry i of m after checking its dtype and shape. */
static int load_entry(nn_model *m, int i, const st_file *f, const char *path, char *err, size_t errlen) {
    const char *name;
    nn_dtype dt;
    int64_t shape[NN_MAX_DIMS], numel;
    int ndim;
    if (nn_state_info(m, i, &name, &dt, shape, &ndim, &numel) != NN_OK) return util_err(err, errlen, "%s", nn_last_error());
    char want[96], got[96];
    shape_text(shape, ndim, want, sizeof want);
    const st_tensor *t = st_find(f, name);
    if (!t) return util_err(err, errlen, "%s: tensor '%s' is missing (the architecture expects %s %s)", path, name,
                            weights_dtype_name(dt), want);
    shape_text(t->shape, t->ndim, got, sizeof got);
    if (strcmp(t->dtype, weights_dtype_name(dt)))
        return util_err(err, errlen, "%s: tensor '%s' is %s, the architecture expects %s", path, name, t->dtype, weights_dtype_name(dt));
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) return util_err(err, errlen, "%s: tensor '%s' has shape %s, the architecture expects %s", path, name, got, want);
    void *buf = util_malloc(t->nbytes ? t->nbytes : 1);
    memcpy(buf, t->data, t->nbytes);   /* the file's data need not be aligned */
    nn_status st = nn_state_set(m, i, buf);
    free(buf);
    return st == NN_OK ? 0 : util_err(err, errlen, "%s: tensor '%s': %s", path, name, nn_last_error());
}

/* Every tensor of the file is a state entry of m. */
static int no_extra(const nn_model *m, const st_file *f, const char *path, const char *arch, char *err, size_t errlen) {
    for (int j = 0; j < f->n; j++) {
        int found = 0;
        for (int i = 0; i < nn_state_count(m) && !found; i++) {
            const char *name;
            found = nn_state_info(m, i, &name, NULL, NULL, NULL, NULL) == NN_OK && !strcmp(name, f->tensors[j].name);
        }
        if (!found)
            return util_err(err, errlen, "%s: tensor '%s' is not part of architecture %s (docs/model-format.md lists its tensors)",
                            path, f->tensors[j].name, arch);
    }
    return 0;
}

static void input_meta(const st_file *f, weights_input *in) {
    memset(in, 0, sizeof *in);
    const char *v;
    if ((v = st_meta(f, "normalize"))) snprintf(in->normalize, sizeof in->normalize, "%s", v);
    if ((v = st_meta(f, "dataset"))) snprintf(in->dataset, sizeof in->dataset, "%s", v);
    split_doubles(st_meta(f, "mean"), in->mean, 3);
    split_doubles(st_meta(f, "std"), in->sd, 3);
    if ((v = st_meta(f, "input_shape"))) sscanf(v, "%d,%d,%d", &in->c, &in->h, &in->w);
    if ((v = st_meta(f, "classes"))) in->classes = atoi(v);
}

int weights_load(const char *path, const weights_want *want, nn_device dev, nn_model **out, weights_input *in_out,
                 char *err, size_t errlen) {
    *out = NULL;
    st_file f;
    if (st_read(path, &f, err, errlen)) return -1;
    const char *arch = want->arch && want->arch[0] ? want->arch : st_meta(&f, "arch");
    int width = want->width;
    if (width <= 0 && arch && st_meta(&f, "width") && (!want->arch || !want->arch[0] || !strcmp(want->arch, st_meta(&f, "arch") ? st_meta(&f, "arch") : "")))
        width = atoi(st_meta(&f, "width"));
    if (!arch && want->fallback_arch && want->fallback_arch[0]) {
        arch = want->fallback_arch;
        if (width <= 0) width = want->fallback_width;
    }
    if (!arch) {
        st_free(&f);
        return util_err(err, errlen, "%s: no architecture given (--arch) and none in the file's __metadata__", path);
    }
    nn_model_spec spec = {.arch = arch, .c = want->c, .h = want->h, .w = want->w, .classes = want->classes,
                          .width = width, .device = dev, .seed = 0};
    nn_model *m = NULL;
    int rc = 0;
    if (nn_model_create(&spec, &m) != NN_OK) rc = util_err(err, errlen, "%s: %s", path, nn_last_error());
    for (int i = 0; !rc && i < nn_state_count(m); i++) rc = load_entry(m, i, &f, path, err, errlen);
    if (!rc) rc = no_extra(m, &f, path, arch, err, errlen);
    if (!rc && in_out) input_meta(&f, in_out);
    st_free(&f);
    if (rc) { nn_model_free(m); return -1; }
    *out = m;
    return 0;
}
