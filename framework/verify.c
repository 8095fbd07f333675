/* verify: a suspect model judged with an owner key (see verify.h). */
#include "verify.h"
#include "data.h"
#include "outfile.h"
#include "sha256.h"
#include "util.h"
#include "version.h"
#include "weights.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* nm of the key's samples (raw pixels x, labels y) in the input normalisation `mode` ("none"/"raw",
 * "unit", "standard"). */
static nn_data *key_data(const pmi_key *k, const float *x, const int32_t *y, int64_t nm, const char *mode, nn_device dev,
                         char *err, size_t errlen) {
    size_t n = (size_t)nm * (size_t)k->c * (size_t)k->h * (size_t)k->w;
    pmi_dataset d = {.x = util_malloc(sizeof(float) * n), .y = (int32_t *)y, .n = nm, .c = k->c, .h = k->h, .w = k->w,
                     .classes = k->classes};
    memcpy(d.x, x, sizeof(float) * n);
    data_norm norm = !strcmp(mode, "unit") ? DATA_NORM_UNIT : !strcmp(mode, "standard") ? DATA_NORM_STANDARD : DATA_NORM_NONE;
    data_normalize(&d, norm, k->mean, k->sd);
    nn_data *out = NULL;
    if (nn_data_create(d.x, y, nm, k->c, k->h, k->w, dev, &out) != NN_OK)
        util_err(err, errlen, "key samples: %s", nn_last_error());
    free(d.x);
    return out;
}

static int weights_logp(const pmi_key *k, const verify_suspect *s, const nn_data *d, float *logp, char *err, size_t errlen) {
    weights_want want = {.arch = s->arch, .width = s->width, .fallback_arch = k->arch, .fallback_width = k->width,
                         .c = k->c, .h = k->h, .w = k->w, .classes = k->classes};
    nn_model *m = NULL;
    if (weights_load(s->weights, &want, s->dev, &m, NULL, err, errlen)) return -1;
    nn_status st = nn_eval_logp(m, d, logp);
    nn_model_free(m);
    return st == NN_OK ? 0 : util_err(err, errlen, "%s: %s", s->weights, nn_last_error());
}

static int script_logp(const pmi_key *k, const verify_suspect *s, const nn_data *d, float *logp, char *err, size_t errlen) {
    nn_script *m = NULL;
    if (nn_script_load(s->script, s->dev, &m) != NN_OK) return util_err(err, errlen, "%s", nn_last_error());
    nn_status st = nn_script_eval_logp(m, d, k->classes, logp);
    nn_script_free(m);
    return st == NN_OK ? 0 : util_err(err, errlen, "%s: %s", s->script, nn_last_error());
}

/* log_softmax of each row of x (n, classes), in double, into logp. */
static void log_softmax_rows(const double *x, int64_t n, int classes, float *logp) {
    for (int64_t i = 0; i < n; i++) {
        const double *r = x + i * classes;
        double mx = r[0], s = 0;
        for (int c = 1; c < classes; c++) mx = fmax(mx, r[c]);
        for (int c = 0; c < classes; c++) s += exp(r[c] - mx);
        for (int c = 0; c < classes; c++) logp[i * classes + c] = (float)(r[c] - mx - log(s));
    }
}

/* Reads n rows, or n_alt (>= n; x holds n_alt rows) when the file has that many: *got gets the count. */
static int csv_logits(const char *path, int64_t n, int64_t n_alt, int classes, double *x, int64_t *got, char *err,
                      size_t errlen) {
    unsigned char *buf;
    size_t len;
    /* 64 bytes a value and 1 MiB of comments: a larger file is refused before it is read */
    if (util_read_file(path, (size_t)(n_alt * classes * 64) + (1 << 20), &buf, &len, err, errlen)) return -1;
    char *p = (char *)buf;
    int64_t row = 0;
    int line = 0, rc = 0;
    while (*p && !rc) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q && *q != '#') {
            if (row >= n_alt) { rc = util_err(err, errlen, "%s:%d: more than the key's %lld rows", path, line, (long long)n_alt); break; }
            for (int c = 0; c < classes && !rc; c++) {
                char *end;
                errno = 0;
                x[row * classes + c] = strtod(q, &end);
                if (end == q || errno == ERANGE || !isfinite(x[row * classes + c]))
                    rc = util_err(err, errlen, "%s:%d: value %d is not a finite number (expected %d comma-separated logits)", path, line, c + 1, classes);
                q = end;
                while (*q == ' ' || *q == '\t' || *q == '\r') q++;
                if (!rc && c + 1 < classes && *q++ != ',')
                    rc = util_err(err, errlen, "%s:%d: %d values, expected %d (the key's classes)", path, line, c + 1, classes);
            }
            if (!rc && *q) rc = util_err(err, errlen, "%s:%d: more than %d values (the key's classes)", path, line, classes);
            row++;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    free(buf);
    if (!rc && row != n && row != n_alt)
        rc = n_alt > n ? util_err(err, errlen, "%s: %lld rows, expected the key's N*m = %lld (or %lld with its dataset evidence's "
                                  "samples)", path, (long long)row, (long long)n, (long long)n_alt)
                       : util_err(err, errlen, "%s: %lld rows, expected the key's N*m = %lld", path, (long long)row, (long long)n);
    *got = row;
    return rc;
}

static int h5_logits(const char *path, int64_t n, int64_t n_alt, int classes, double *x, const pmi_key *k, int64_t *got,
                     char *err, size_t errlen) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return util_err(err, errlen, "%s: cannot open as HDF5 (outputs are a .csv file or an HDF5 file with dataset logits)", path);
    hid_t d = H5Lexists(f, "logits", H5P_DEFAULT) > 0 ? H5Dopen2(f, "logits", H5P_DEFAULT) : -1;
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[3] = {0};
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (r >= 2 && r <= 3) H5Sget_simple_extent_dims(sp, dims, NULL);
    int ok = (r == 2 && (dims[0] == (hsize_t)n || dims[0] == (hsize_t)n_alt) && dims[1] == (hsize_t)classes) ||
             (r == 3 && dims[0] == (hsize_t)k->N && dims[1] == (hsize_t)k->m && dims[2] == (hsize_t)classes);
    *got = r == 2 ? (int64_t)dims[0] : n;
    int rc = 0;
    if (d < 0) rc = util_err(err, errlen, "%s: no dataset logits", path);
    else if (!ok) rc = util_err(err, errlen, "%s: dataset logits has %d dims (%llu, %llu, %llu), expected (N*m, classes) = (%lld, %d) or (N, m, classes)",
                                path, r, (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2], (long long)n, classes);
    else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
        rc = util_err(err, errlen, "%s: cannot read dataset logits as numbers", path);
    for (int64_t i = 0; !rc && i < *got * classes; i++)
        if (!isfinite(x[i])) rc = util_err(err, errlen, "%s: logits row %lld holds a value that is not finite", path, (long long)(i / classes));
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* The log-probabilities of the pool's rows into logp, and of the dataset evidence's into dlogp
 * when the file has them too (*with_data = 1). */
static int outputs_logp(const pmi_key *k, const char *path, float *logp, float *dlogp, int *with_data, char *err,
                        size_t errlen) {
    int64_t n = (int64_t)k->N * k->m, n_alt = n + 2 * (int64_t)k->data_n, got = 0;
    double *x = util_malloc(sizeof(double) * (size_t)n_alt * (size_t)k->classes);
    int rc = ends_with(path, ".csv") ? csv_logits(path, n, n_alt, k->classes, x, &got, err, errlen)
                                     : h5_logits(path, n, n_alt, k->classes, x, k, &got, err, errlen);
    *with_data = !rc && got == n_alt && n_alt > n;
    if (!rc) log_softmax_rows(x, n, k->classes, logp);
    if (*with_data) log_softmax_rows(x + n * k->classes, n_alt - n, k->classes, dlogp);
    free(x);
    return rc;
}

/* z of D_k: its mean against all N*m scores, in standard errors of an m-sample mean. */
static double z_score(const double *s, int N, int m, int k) {
    int64_t nm = (int64_t)N * m;
    double mu = 0, v = 0, mk = 0;
    for (int64_t i = 0; i < nm; i++) mu += s[i];
    mu /= (double)nm;
    for (int64_t i = 0; i < nm; i++) v += (s[i] - mu) * (s[i] - mu);
    for (int j = 0; j < m; j++) mk += s[(int64_t)k * m + j];
    mk /= m;
    double sd = sqrt(v / (double)nm);
    return sd > 0 ? (mk - mu) / (sd / sqrt((double)m)) : 0.0;
}

/* The suspect's scores of `kind` into s (N*m): a raw kind from its outputs, a calibrated one from
 * its base scores (into the scratch array base, N*m) against all of the key's references (the
 * suspect is none of them: none is left out). 0, or -1 with pmi_error(). */
static int kind_scores(const pmi_key *k, pmi_score_kind kind, const float *logp, const int32_t *y, int64_t nm,
                       double *const *refs, double *base, double *s) {
    if (!pmi_score_calibrated(kind)) {
        pmi_scores(kind, logp, y, nm, k->classes, s);
        return 0;
    }
    pmi_scores(pmi_score_base(kind), logp, y, nm, k->classes, base);
    return pmi_calibrate(kind, base, refs[pmi_score_base(kind)], k->n_refs, -1, nm, s);
}

/* The dataset evidence of every kind (dlogp: the suspect on the key's 2 data_n samples): S's mean
 * against H's by the run's permutation test (N = 2, m = data_n, k = 0, the key's seed). */
static int score_data(const pmi_key *k, const float *dlogp, verify_result *r, char *err, size_t errlen) {
    int64_t n = k->data_n, nd = 2 * n;
    for (int64_t i = 0; i < nd * k->classes; i++)
        if (isnan(dlogp[i])) return util_err(err, errlen, "the suspect's outputs hold NaN (dataset evidence sample %lld)", (long long)(i / k->classes));
    double *s = util_malloc(sizeof(double) * (size_t)nd), *base = util_malloc(sizeof(double) * (size_t)nd);
    int rc = 0;
    for (int q = 0; q < k->settings.n_kinds && !rc; q++) {
        double p[2], z = NAN, a = 0, b = 0;
        const double *one[1] = {s};
        if (kind_scores(k, (pmi_score_kind)k->settings.kinds[q], dlogp, k->data_labels, nd, k->data_refs, base, s) ||
            pmi_perm_batch(one, 1, 2, (int)n, 0, k->data_permutations, k->data_seed, p, &z)) {
            rc = util_err(err, errlen, "dataset evidence (%s score): %s", pmi_score_name((pmi_score_kind)k->settings.kinds[q]), pmi_error());
            break;
        }
        for (int64_t i = 0; i < n; i++) { a += s[i]; b += s[n + i]; }
        r->data[q] = (pmi_data_result){.n = (int)n, .gap = (a - b) / (double)n, .p = p[0], .z = z};
    }
    free(s); free(base);
    return rc;
}

static int score_all(const pmi_key *k, const float *logp, verify_result *r, char *err, size_t errlen) {
    int64_t nm = (int64_t)k->N * k->m;
    for (int64_t i = 0; i < nm * k->classes; i++)
        if (isnan(logp[i])) return util_err(err, errlen, "the suspect's outputs hold NaN (sample %lld): it cannot be verified", (long long)(i / k->classes));
    double *s = util_malloc(sizeof(double) * (size_t)nm), *base = util_malloc(sizeof(double) * (size_t)nm);
    int rc = 0;
    for (int q = 0; q < k->settings.n_kinds && !rc; q++) {
        if (kind_scores(k, (pmi_score_kind)k->settings.kinds[q], logp, k->labels, nm, k->refs, base, s) ||
            pmi_verify(s, k->N, k->m, k->secret_k, k->settings.permutations, k->seeds[q], &r->res[q], NULL, NULL))
            rc = util_err(err, errlen, "verification (%s score): %s", pmi_score_name((pmi_score_kind)k->settings.kinds[q]), pmi_error());
        r->z[q] = z_score(s, k->N, k->m, k->secret_k);
    }
    pmi_scores(SCORE_CORRECT, logp, k->labels, nm, k->classes, s);
    r->accuracy = 0;
    for (int64_t i = 0; i < nm; i++) r->accuracy += s[i] / (double)nm;
    free(s); free(base);
    return rc;
}

int verify_run(const pmi_key *k, const verify_suspect *s, verify_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    int given = !!s->weights + !!s->script + !!s->logits;
    if (given != 1) return util_err(err, errlen, "give exactly one suspect: --weights, --model or --logits");
    const char *path = s->weights ? s->weights : s->script ? s->script : s->logits;
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->type, sizeof r->type, "%s", s->weights ? "weights" : s->script ? "torchscript" : "logits");
    const char *mode = s->input ? s->input : k->normalize;
    if (!strcmp(mode, "raw")) mode = "none";
    if (strcmp(mode, "none") && strcmp(mode, "unit") && strcmp(mode, "standard"))
        return util_err(err, errlen, "--input '%s': expected raw, unit or standard", s->input);
    snprintf(r->input, sizeof r->input, "%s", !strcmp(mode, "none") ? "raw" : mode);
    if (sha256_file(path, r->sha256, err, errlen)) return -1;
    for (int q = 0; q < k->settings.n_kinds; q++)
        if (pmi_score_queried((pmi_score_kind)k->settings.kinds[q]))
            return util_err(err, errlen, "the key's score kind %s needs noisy queries of the model, which pmi verify does not "
                            "make (the key does not record the query noise): write the key from a run without it in pmi.scores",
                            pmi_score_name((pmi_score_kind)k->settings.kinds[q]));
    r->n_kinds = k->settings.n_kinds;
    memcpy(r->kinds, k->settings.kinds, sizeof r->kinds);
    r->decide = pmi_pvalue_parse(k->settings.decide);
    r->alpha = k->settings.alphas[0];
    int64_t nm = (int64_t)k->N * k->m, nd = 2 * (int64_t)k->data_n;
    float *logp = util_malloc(sizeof(float) * (size_t)nm * (size_t)k->classes);
    float *dlogp = nd ? util_malloc(sizeof(float) * (size_t)nd * (size_t)k->classes) : NULL;
    int rc, with_data = nd > 0;
    if (s->logits) {
        rc = outputs_logp(k, s->logits, logp, dlogp, &with_data, err, errlen);
    } else {
        /* the pool and the dataset evidence are evaluated apart, as the run evaluated them: one pass
         * over both would batch the samples differently and move their scores by float rounding */
        nn_data *d = key_data(k, k->samples, k->labels, nm, mode, s->dev, err, errlen);
        nn_data *dd = !d || !nd ? NULL : key_data(k, k->data_samples, k->data_labels, nd, mode, s->dev, err, errlen);
        rc = !d || (nd && !dd) ? -1 : s->weights ? weights_logp(k, s, d, logp, err, errlen) : script_logp(k, s, d, logp, err, errlen);
        if (!rc && dd) rc = s->weights ? weights_logp(k, s, dd, dlogp, err, errlen) : script_logp(k, s, dd, dlogp, err, errlen);
        nn_data_free(d); nn_data_free(dd);
    }
    for (int q = 0; q < SCORE_COUNT; q++) r->data[q] = (pmi_data_result){.n = 0, .gap = NAN, .p = NAN, .z = NAN};
    if (!rc) rc = score_all(k, logp, r, err, errlen);
    if (!rc && with_data) rc = score_data(k, dlogp, r, err, errlen);
    free(logp); free(dlogp);
    if (rc) return -1;
    r->p = r->res[0].p[r->decide];
    r->p_pool = pmi_pool_p((pmi_score_kind)r->kinds[0], r->p, k->pool_audit[0]);
    r->p_combined = pmi_combine_p(r->p_pool, r->data[0].p);
    r->claimed = r->p_combined < r->alpha;
    return 0;
}

/* Why a suspect is not claimed, in words: what the evidence says and what would make it stronger. */
static void explain(FILE *out, const pmi_key *k, const verify_result *r) {
    const pmi_result *d = &r->res[0];
    const char *kind = pmi_score_name((pmi_score_kind)r->kinds[0]);
    if (isnan(r->p_pool))
        fprintf(out, "why: the key's pool audit found this pool unsafe for the raw %s score (D_k stands out on the reference "
                "models, audit p = %.3g < %g): its pool evidence is refused%s\n", kind, k->pool_audit[0], PMI_AUDIT_ALPHA,
                k->data_n ? "" : ", and the key has no dataset evidence");
    else if (d->identified == k->secret_k)
        fprintf(out, "why: D_k was identified but p_%s = %.3g >= %g: weak evidence, as from a model trained on D_k too little to "
                "stand out against %d other mini-datasets of %d samples (stronger pools: larger m, pool.repeat > 1; see "
                "docs/results-paper.md), or from a derived model that kept only part of it\n",
                pmi_pvalue_name((pmi_pvalue)r->decide), r->p, r->alpha, k->N - 1, k->m);
    else
        fprintf(out, "why: D_%d scores highest, not the secret D_%d: no sign that the suspect saw D_k\n", d->identified, k->secret_k);
    if (k->data_n && r->data[0].n == 0)
        fprintf(out, "note: the outputs file holds only the pool's %d rows; give the %d rows of the key's dataset evidence "
                "after them for that evidence too\n", k->N * k->m, 2 * k->data_n);
    else if (k->data_n)
        fprintf(out, "dataset evidence: p = %.3g >= %g: the suspect does not treat the owner's training samples apart from "
                "held-out ones\n", r->data[0].p, r->alpha);
}

void verify_print(FILE *out, const pmi_key *k, const verify_result *r) {
    const pmi_result *d = &r->res[0];
    const char *kind = pmi_score_name((pmi_score_kind)r->kinds[0]);
    fprintf(out, "%s: %s at alpha = %g (p = %.6g", r->claimed ? "CLAIMED" : "NOT CLAIMED", r->claimed ?
            "the suspect is derived from the owner's model or data" : "no significant evidence", r->alpha, r->p_combined);
    if (r->data[0].n)
        fprintf(out, " = min(1, 2 min(pool %.4g, dataset %.4g))", r->p_pool, r->data[0].p);
    fprintf(out, "; pool evidence p_%s = %.6g on the %s score%s; identified D_%d, secret k = %d)\n",
            pmi_pvalue_name((pmi_pvalue)r->decide), r->p, kind, isnan(r->p_pool) ? " (refused by the pool audit)" : "",
            d->identified, k->secret_k);
    if (!r->claimed) explain(out, k, r);
    fprintf(out, "suspect: %s (%s, sha256 %s), input %s; key: %s (job %s), N = %d, m = %d\n", r->path, r->type, r->sha256,
            r->input, k->dataset, k->job_id, k->N, k->m);
    fprintf(out, "suspect accuracy on the key's %d pool samples: %.3f", k->N * k->m, r->accuracy);
    if (r->accuracy < 1.5 / k->classes)
        fprintf(out, " -- WARNING: near chance (1/%d): a wrong --input normalisation or a destroyed model scores like an "
                "innocent one", k->classes);
    fputc('\n', out);
    if (k->n_refs > 0)
        fprintf(out, "calibrated kinds against the key's %d reference models (each trained on %g of the owner's training set)\n",
                k->n_refs, k->reference_fraction);
    fprintf(out, "%-9s %-10s %-8s %-9s %-9s %-11s %-11s %-11s %-11s %-11s %-8s\n", "score", "identified", "margin", "z", "p_rank",
            "p_perm", "p_welch", "p_mw", "p_nway", "p_data", "z_data");
    for (int q = 0; q < r->n_kinds; q++) {
        const pmi_result *x = &r->res[q];
        fprintf(out, "%-9s %-10d %-8.3f %-9.3f %-9.4g %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g %-8.3f\n",
                pmi_score_name((pmi_score_kind)r->kinds[q]), x->identified, x->margin, r->z[q], x->p[P_RANK], x->p[P_PERM],
                x->p[P_WELCH], x->p[P_MW], x->p_nway[r->decide], r->data[q].p, r->data[q].z);
    }
}

/* A JSON number, or null for NaN (JSON has no NaN). */
static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int verify_write_record(const char *path, const pmi_key *k, const verify_result *r, char *err, size_t errlen) {
    cJSON *j = cJSON_CreateObject();
    char when[64];
    util_iso_now(when, sizeof when);
    cJSON_AddStringToObject(j, "record", "pmi-verification");
    cJSON_AddNumberToObject(j, "record_version", 2);
    cJSON_AddStringToObject(j, "verified_at", when);
    cJSON_AddStringToObject(j, "pmi_version", pmi_version);
    cJSON_AddStringToObject(j, "git_commit", pmi_git_commit);
    cJSON *sus = cJSON_AddObjectToObject(j, "suspect");
    cJSON_AddStringToObject(sus, "path", r->path);
    cJSON_AddStringToObject(sus, "type", r->type);
    cJSON_AddStringToObject(sus, "sha256", r->sha256);
    cJSON_AddStringToObject(sus, "input", r->input);
    cJSON *key = cJSON_AddObjectToObject(j, "key");
    cJSON_AddStringToObject(key, "job_id", k->job_id);
    cJSON_AddStringToObject(key, "dataset", k->dataset);
    cJSON_AddStringToObject(key, "dataset_sha256", k->dataset_sha256);
    cJSON_AddStringToObject(key, "config_hash", k->config_hash);
    cJSON_AddNumberToObject(key, "N", k->N);
    cJSON_AddNumberToObject(key, "m", k->m);
    cJSON_AddNumberToObject(key, "secret_k", k->secret_k);
    cJSON_AddNumberToObject(key, "permutations", k->settings.permutations);
    cJSON_AddNumberToObject(key, "references", k->n_refs);
    cJSON_AddBoolToObject(j, "claimed", r->claimed);
    cJSON_AddNumberToObject(j, "alpha", r->alpha);
    cJSON_AddStringToObject(j, "decide", pmi_pvalue_name((pmi_pvalue)r->decide));
    cJSON_AddItemToObject(j, "p", num(r->p));
    cJSON_AddItemToObject(j, "p_pool", num(r->p_pool));
    cJSON_AddItemToObject(j, "p_combined", num(r->p_combined));
    cJSON_AddItemToObject(j, "accuracy", num(r->accuracy));
    cJSON_AddNumberToObject(key, "dataset_evidence_n", k->data_n);
    cJSON *scores = cJSON_AddObjectToObject(j, "scores");
    for (int q = 0; q < r->n_kinds; q++) {
        const pmi_result *x = &r->res[q];
        cJSON *o = cJSON_AddObjectToObject(scores, pmi_score_name((pmi_score_kind)r->kinds[q]));
        cJSON_AddNumberToObject(o, "identified", x->identified);
        cJSON_AddItemToObject(o, "margin", num(x->margin));
        cJSON_AddItemToObject(o, "z", num(r->z[q]));
        for (int p = 0; p < P_COUNT; p++) {
            char name[32];
            snprintf(name, sizeof name, "p_%s", pmi_pvalue_name((pmi_pvalue)p));
            cJSON_AddItemToObject(o, name, num(x->p[p]));
            snprintf(name, sizeof name, "p_nway_%s", pmi_pvalue_name((pmi_pvalue)p));
            cJSON_AddItemToObject(o, name, num(x->p_nway[p]));
        }
        cJSON_AddItemToObject(o, "p_data", num(r->data[q].p));
        cJSON_AddItemToObject(o, "z_data", num(r->data[q].z));
        cJSON_AddItemToObject(o, "gap_data", num(r->data[q].gap));
        cJSON_AddItemToObject(o, "pool_audit_p", num(k->pool_audit[q]));
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return util_err(err, errlen, "%s: cannot print the record", path);
    size_t len = strlen(text);
    const void *parts[2] = {text, "\n"};
    size_t lens[2] = {len, 1};
    int rc = strcmp(path, "-") ? outfile_write(path, OUTFILE_SECRET, parts, lens, 2, err, errlen)
             : printf("%s\n", text) < 0 || fflush(stdout) ? util_err(err, errlen, "standard output: %s", strerror(errno)) : 0;
    free(text);
    return rc;
}
