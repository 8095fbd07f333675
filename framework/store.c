/* store: the HDF5 results schema (docs/results-schema.md), per-job shards and their merge.
 *
 * A shard is written under "<path>.tmp-<pid>@<host>" (outfile.h), gets the root attribute complete=1 last, is
 * flushed, closed, fsync'd and renamed onto its final name; the directory is fsync'd after.
 * Any failure removes the temporary file. HDF5's automatic error printing is switched off:
 * failures are reported once, through err, with the innermost HDF5 message appended.
 * The HDF5 library used here is the serial one: these functions are not thread-safe. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "outfile.h"
#include "util.h"

/* Score-kind and p-value names are pmi.c's (pmi_score_name(), pmi_pvalue_name()). */
#define kind_name(k) pmi_score_name((pmi_score_kind)(k))
#define pvalue_name(p) pmi_pvalue_name((pmi_pvalue)(p))

/* ---- messages --------------------------------------------------------------------- */

typedef struct { char *buf; size_t len; } serr;

static void serr_reset(serr *e) {
    if (e->buf && e->len) e->buf[0] = 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Eclear2(H5E_DEFAULT);
}

static herr_t innermost_desc(unsigned n, const H5E_error2_t *ent, void *out) {
    if (n == 0 && ent->desc) snprintf((char *)out, 256, "%s", ent->desc);
    return 0;
}

/* Sets the message (the first failure wins), appends the innermost HDF5 error of the current
 * stack if there is one, clears the stack and returns -1. Call it before any other HDF5 call
 * after the failing one: every API call clears the stack. */
static int fail(serr *e, const char *fmt, ...) {
    char detail[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_desc, detail);
    H5Eclear2(H5E_DEFAULT);
    if (!e->buf || !e->len || e->buf[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if (detail[0]) util_err(e->buf, e->len, "%s (HDF5: %s)", msg, detail);
    else util_fit(msg, e->buf, e->len);
    free(msg);
    return -1;
}

/* ---- writing primitives: each returns 0, or -1 with the object path in the message ---- */

static hid_t vstr_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int attr_write(hid_t loc, const char *where, const char *name, hid_t type, const void *val, serr *e) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, type, val) < 0) ? fail(e, "cannot write attribute %s of %s", name, where) : 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int attr_int(hid_t loc, const char *where, const char *name, int v, serr *e) {
    return attr_write(loc, where, name, H5T_NATIVE_INT, &v, e);
}

static int attr_dbl(hid_t loc, const char *where, const char *name, double v, serr *e) {
    return attr_write(loc, where, name, H5T_NATIVE_DOUBLE, &v, e);
}

static int attr_str(hid_t loc, const char *where, const char *name, const char *s, serr *e) {
    const char *p = s ? s : "";
    hid_t t = vstr_type();
    int rc = attr_write(loc, where, name, t, &p, e);
    H5Tclose(t);
    return rc;
}

/* A contiguous dataset of rank 1 or 2; zero-sized shapes give an empty dataset. */
static int dset_write(hid_t loc, const char *where, const char *name, hid_t type, int rank,
                      const hsize_t *dims, const void *data, serr *e) {
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = d < 0 || (n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0);
    int rc = bad ? fail(e, "cannot write dataset %s/%s", where, name) : 0;
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int dset_str(hid_t loc, const char *where, const char *name, const char *s, serr *e) {
    const char *p = s ? s : "";
    hid_t t = vstr_type(), sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0;
    int rc = bad ? fail(e, "cannot write dataset %s%s", where, name) : 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static hid_t group_create(hid_t loc, const char *where, const char *name, serr *e) {
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) fail(e, "cannot create group %s/%s", where, name);
    return g;
}

/* ---- the /summary table ----------------------------------------------------------- */

#define FS(f) {#f, offsetof(store_row, f), sizeof(((store_row *)0)->f), 's'}
#define FI(f) {#f, offsetof(store_row, f), 0, 'i'}
#define FD(f) {#f, offsetof(store_row, f), 0, 'd'}
static const struct { const char *name; size_t off, size; char kind; } row_fields[] = {
    FS(job_id), FS(experiment), FS(dataset), FS(arch), FS(role), FS(point),
    FI(seed), FI(replica), FI(N), FI(m), FI(secret_k), FI(trained_on_k), FI(independent),
    FS(attack), FS(attack_type), FS(params), FS(strength_key), FD(strength), FD(test_acc), FD(sparsity),
    FS(score), FI(identified), FD(margin), FD(p_rank), FD(p_perm), FD(p_welch), FD(p_mw),
    FD(p_nway_rank), FD(p_nway_perm), FD(p_nway_welch), FD(p_nway_mw), FD(z_perm),
    FD(data_p), FD(data_z), FD(data_gap), FD(pool_audit_p), FD(p_pool), FD(p_combined), FI(owner_data),
};

/* The in-memory compound type of store_row: fixed-length NUL-terminated strings of the
 * struct's sizes, native int32 and double. */
static hid_t row_mem_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(store_row));
    for (size_t i = 0; i < sizeof row_fields / sizeof row_fields[0]; i++) {
        if (row_fields[i].kind == 's') {
            hid_t s = H5Tcopy(H5T_C_S1);
            H5Tset_size(s, row_fields[i].size);
            H5Tset_strpad(s, H5T_STR_NULLTERM);
            H5Tinsert(t, row_fields[i].name, row_fields[i].off, s);
            H5Tclose(s);
        } else {
            H5Tinsert(t, row_fields[i].name, row_fields[i].off,
                      row_fields[i].kind == 'i' ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE);
        }
    }
    return t;
}

/* An empty, extensible /summary (chunked, deflate-compressed when the filter is there). */
static hid_t summary_create(hid_t file, serr *e) {
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = 256;
    hid_t mt = row_mem_type(), ft = H5Tcopy(mt);
    H5Tpack(ft);
    hid_t sp = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 4);
    hid_t d = H5Dcreate2(file, "summary", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) fail(e, "cannot create dataset /summary");
    H5Pclose(dcpl); H5Sclose(sp); H5Tclose(ft); H5Tclose(mt);
    return d;
}

static int summary_append(hid_t d, const store_row *rows, int64_t n, serr *e) {
    if (n <= 0) return 0;
    hid_t fs = H5Dget_space(d);
    hsize_t old = 0, cnt = (hsize_t)n;
    H5Sget_simple_extent_dims(fs, &old, NULL);
    H5Sclose(fs);
    hsize_t total = old + cnt;
    if (H5Dset_extent(d, &total) < 0) return fail(e, "cannot extend /summary to %llu rows", (unsigned long long)total);
    fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(1, &cnt, NULL), mt = row_mem_type();
    int bad = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &old, NULL, &cnt, NULL) < 0 ||
              H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, rows) < 0;
    int rc = bad ? fail(e, "cannot write %lld rows to /summary", (long long)n) : 0;
    H5Tclose(mt); H5Sclose(ms); H5Sclose(fs);
    return rc;
}

/* Reads all of /summary of an open file into a malloc'd array (NULL when empty). */
static int summary_read(hid_t file, const char *path, store_row **rows, int64_t *n, serr *e) {
    *rows = NULL; *n = 0;
    hid_t d = H5Dopen2(file, "summary", H5P_DEFAULT);
    if (d < 0) return fail(e, "%s: no /summary table", path);
    hid_t fs = H5Dget_space(d);
    hsize_t cnt = 0;
    int rc = H5Sget_simple_extent_ndims(fs) == 1 ? 0 : fail(e, "%s: /summary is not a 1-d table", path);
    if (!rc) H5Sget_simple_extent_dims(fs, &cnt, NULL);
    if (!rc && cnt > 0) {
        *rows = util_calloc((size_t)cnt, sizeof **rows);
        for (hsize_t i = 0; i < cnt; i++) {   /* a file written before these fields has none */
            store_row *r = &(*rows)[i];
            r->z_perm = r->data_p = r->data_z = r->data_gap = r->pool_audit_p = r->p_pool = r->p_combined = NAN;
        }
        hid_t mt = row_mem_type();
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0) rc = fail(e, "%s: cannot read /summary", path);
        H5Tclose(mt);
    }
    H5Sclose(fs); H5Dclose(d);
    if (rc) { free(*rows); *rows = NULL; return -1; }
    *n = (int64_t)cnt;
    return 0;
}

static void fill_row(store_row *r, const store_job *j, const store_eval *ev, int q, int decide) {
    const pmi_result *res = &ev->res[q];
    memset(r, 0, sizeof *r);
    snprintf(r->job_id, sizeof r->job_id, "%s", j->id);
    snprintf(r->experiment, sizeof r->experiment, "%s", j->experiment);
    snprintf(r->dataset, sizeof r->dataset, "%s", j->dataset);
    snprintf(r->arch, sizeof r->arch, "%s", j->arch);
    snprintf(r->role, sizeof r->role, "%s", j->role);
    snprintf(r->point, sizeof r->point, "%s", j->point);
    r->seed = j->seed; r->replica = j->replica; r->N = j->N; r->m = j->m;
    r->secret_k = j->secret_k; r->trained_on_k = j->trained_on_k; r->independent = j->independent;
    snprintf(r->attack, sizeof r->attack, "%s", ev->attack);
    snprintf(r->attack_type, sizeof r->attack_type, "%s", ev->type);
    snprintf(r->params, sizeof r->params, "%s", ev->params);
    snprintf(r->strength_key, sizeof r->strength_key, "%s", ev->strength_key);
    r->strength = ev->strength; r->test_acc = ev->test_acc; r->sparsity = ev->sparsity;
    snprintf(r->score, sizeof r->score, "%s", kind_name(ev->kinds[q]));
    r->identified = res->identified; r->margin = res->margin;
    r->p_rank = res->p[P_RANK]; r->p_perm = res->p[P_PERM];
    r->p_welch = res->p[P_WELCH]; r->p_mw = res->p[P_MW];
    r->p_nway_rank = res->p_nway[P_RANK]; r->p_nway_perm = res->p_nway[P_PERM];
    r->p_nway_welch = res->p_nway[P_WELCH]; r->p_nway_mw = res->p_nway[P_MW];
    r->z_perm = res->z_perm;
    const pmi_data_result *d = &ev->data[q];
    r->data_p = d->n > 0 ? d->p : NAN; r->data_z = d->n > 0 ? d->z : NAN; r->data_gap = d->n > 0 ? d->gap : NAN;
    r->pool_audit_p = j->pool_audit ? j->pool_audit[ev->kinds[q]] : NAN;
    r->p_pool = pmi_pool_p((pmi_score_kind)ev->kinds[q], store_row_p(r, decide), r->pool_audit_p);
    r->p_combined = store_row_verdict_p(r, decide);
    r->owner_data = j->owner_data;
}

/* The job's summary rows, one per (eval, score kind), appended to /summary. */
static int job_summary(hid_t sum, const store_job *j, int decide, serr *e) {
    int64_t n = 0, r = 0;
    for (int i = 0; i < j->n_evals; i++) n += j->evals[i].n_kinds;
    if (n == 0) return 0;
    store_row *rows = util_malloc(sizeof *rows * (size_t)n);
    for (int i = 0; i < j->n_evals; i++)
        for (int q = 0; q < j->evals[i].n_kinds; q++) fill_row(&rows[r++], j, &j->evals[i], q, decide);
    int rc = summary_append(sum, rows, n, e);
    free(rows);
    return rc;
}

/* ---- validation of a job before anything is created ------------------------------- */

static int valid_name(const char *s) { return s && s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."); }

static int validate_eval(const store_job *j, int i, serr *e) {
    const store_eval *ev = &j->evals[i];
    if (ev->n_kinds < 0 || ev->n_kinds > SCORE_COUNT)
        return fail(e, "job %s eval %d: n_kinds %d, expected 0..%d", j->id, i, ev->n_kinds, SCORE_COUNT);
    unsigned seen = 0;
    for (int q = 0; q < ev->n_kinds; q++) {
        int k = ev->kinds[q];
        if (k < 0 || k >= SCORE_COUNT || (seen & (1u << k)))
            return fail(e, "job %s eval %d: kinds[%d] = %d is out of range or repeated", j->id, i, q, k);
        seen |= 1u << k;
    }
    if (ev->n_kinds > 0 && (!ev->sample_scores || !ev->pool_mean || !ev->pool_median))
        return fail(e, "job %s eval %d: sample_scores, pool_mean and pool_median are required", j->id, i);
    return 0;
}

static int validate_split(const store_job *j, serr *e) {
    const data_split *s = j->split;
    if (!s) return 0;
    if (s->N != j->N || s->m != j->m)
        return fail(e, "job %s: split pool is (%d, %d) but the job says N=%d, m=%d", j->id, s->N, s->m, j->N, j->m);
    if (s->n_train < 0 || s->n_attacker < 0 || s->n_indep < 0 || s->n_test < 0 ||
        (s->n_train && !s->train) || (s->n_attacker && !s->attacker) || (s->n_indep && !s->indep) ||
        (s->n_test && !s->test) || (s->N > 0 && s->m > 0 && !s->pool))
        return fail(e, "job %s: split has a negative size or a missing index array", j->id);
    return 0;
}

static int validate_model(const store_job *j, int i, serr *e) {
    const weights *w = j->evals[i].model;
    if (!w) return 0;
    if (w->n < 1 || !w->t || !w->arch[0] || w->input.c < 1 || w->input.c > 3)
        return fail(e, "job %s eval %d: model state without tensors, arch or a 1..3-channel input", j->id, i);
    for (int t = 0; t < w->n; t++)
        if (!valid_name(w->t[t].name) || w->t[t].numel < 0 || w->t[t].ndim < 0 || w->t[t].ndim > NN_MAX_DIMS ||
            (w->t[t].numel > 0 && !w->t[t].data))
            return fail(e, "job %s eval %d: tensor %d has no valid name (non-empty, no '/'), a bad shape or no data", j->id, i, t);
    return 0;
}

/* ---- the decision settings -------------------------------------------------------- */

/* 0 when the struct is all zero: the producer did not record settings. */
static int settings_recorded(const store_settings *s) {
    return s->decide[0] || s->n_alphas || s->permutations || s->n_kinds;
}

static int settings_has_kind(const store_settings *s, int k) {
    for (int q = 0; q < s->n_kinds; q++)
        if (s->kinds[q] == k) return 1;
    return 0;
}

/* Recorded settings are complete and valid; `where` names their owner in the message. */
static int settings_check(const store_settings *s, const char *where, serr *e) {
    if (!memchr(s->decide, 0, sizeof s->decide) || pmi_pvalue_parse(s->decide) < 0)
        return fail(e, "%s: decide '%.*s' is not a p-value name (%s, %s, %s or %s)", where, (int)sizeof s->decide,
                    s->decide, pvalue_name(0), pvalue_name(1), pvalue_name(2), pvalue_name(3));
    if (s->n_alphas < 1 || s->n_alphas > CFG_MAX_ALPHAS)
        return fail(e, "%s: %d alphas, expected 1..%d (CFG_MAX_ALPHAS)", where, s->n_alphas, CFG_MAX_ALPHAS);
    for (int a = 0; a < s->n_alphas; a++)
        if (!(s->alphas[a] > 0 && s->alphas[a] < 1)) return fail(e, "%s: alpha %g is outside (0, 1)", where, s->alphas[a]);
    if (s->permutations < 0) return fail(e, "%s: permutations %d is negative", where, s->permutations);
    if (s->n_kinds < 1 || s->n_kinds > SCORE_COUNT)
        return fail(e, "%s: %d score kinds, expected 1..%d (SCORE_COUNT)", where, s->n_kinds, SCORE_COUNT);
    for (int q = 0; q < s->n_kinds; q++) {
        int k = s->kinds[q];
        if (k < 0 || k >= SCORE_COUNT) return fail(e, "%s: score kind %d is out of range", where, k);
        for (int r = 0; r < q; r++)
            if (s->kinds[r] == k) return fail(e, "%s: score kind %s is listed twice", where, kind_name(k));
    }
    return 0;
}

/* The settings that decide how rows are read: the same p-value, alphas and score kinds.
 * permutations may differ (a sweep over pmi.permutations). */
static int settings_same(const store_settings *a, const store_settings *b) {
    if (settings_recorded(a) != settings_recorded(b)) return 0;
    if (strcmp(a->decide, b->decide) || a->n_alphas != b->n_alphas || a->n_kinds != b->n_kinds) return 0;
    for (int i = 0; i < a->n_alphas; i++) if (a->alphas[i] != b->alphas[i]) return 0;
    for (int i = 0; i < a->n_kinds; i++) if (a->kinds[i] != b->kinds[i]) return 0;
    return 1;
}

/* Recorded settings are valid and list every kind that an evaluation of j holds. */
static int validate_settings(const store_job *j, const store_settings *s, serr *e) {
    if (!settings_recorded(s)) return 0;
    if (settings_check(s, "store: provenance settings", e)) return -1;
    for (int i = 0; i < j->n_evals; i++)
        for (int q = 0; q < j->evals[i].n_kinds; q++)
            if (!settings_has_kind(s, j->evals[i].kinds[q]))
                return fail(e, "job %s eval %d: score kind %s is not in the settings' score kinds", j->id, i,
                            kind_name(j->evals[i].kinds[q]));
    return 0;
}

static int validate_job(const store_job *j, serr *e) {
    if (!j) return fail(e, "store: no job given");
    if (!valid_name(j->id)) return fail(e, "store: job id '%s' is empty or not file-name safe", j->id);
    if (j->N < 0 || j->m < 0 || (j->n_evals > 0 && (j->N < 1 || j->m < 1)))
        return fail(e, "job %s: N=%d, m=%d, expected both >= 1", j->id, j->N, j->m);
    if (j->epochs < 0 || (j->epochs > 0 && !j->loss_curve))
        return fail(e, "job %s: epochs=%d but no loss_curve", j->id, j->epochs);
    if (j->n_evals < 0 || (j->n_evals > 0 && !j->evals))
        return fail(e, "job %s: n_evals=%d but no evals", j->id, j->n_evals);
    for (int i = 0; i < j->n_evals; i++)
        if (validate_eval(j, i, e) || validate_model(j, i, e)) return -1;
    for (int b = 0; b < SCORE_COUNT; b++)
        if (j->ref_scores[b] && (b >= SCORE_RAW_COUNT || j->N < 1 || j->m < 1))
            return fail(e, "job %s: reference scores of kind %s (a raw kind of an N x m >= 1 pool expected)", j->id, kind_name(b));
    return validate_split(j, e);
}

/* ---- the job group ---------------------------------------------------------------- */

static int job_attrs(hid_t g, const char *w, const store_job *j, serr *e) {
    int bad = attr_str(g, w, "experiment", j->experiment, e) || attr_str(g, w, "dataset", j->dataset, e) ||
              attr_str(g, w, "arch", j->arch, e) || attr_str(g, w, "role", j->role, e) ||
              attr_str(g, w, "point", j->point, e) || attr_int(g, w, "point_index", j->point_index, e) ||
              attr_int(g, w, "seed", j->seed, e) || attr_int(g, w, "replica", j->replica, e) ||
              attr_int(g, w, "N", j->N, e) || attr_int(g, w, "m", j->m, e) ||
              attr_int(g, w, "secret_k", j->secret_k, e) || attr_int(g, w, "trained_on_k", j->trained_on_k, e) ||
              attr_int(g, w, "independent", j->independent, e) || attr_int(g, w, "owner_data", j->owner_data, e) ||
              attr_dbl(g, w, "train_accuracy", j->train_acc, e) || attr_dbl(g, w, "test_accuracy", j->test_acc, e) ||
              attr_dbl(g, w, "wall_s", j->wall_s, e) || attr_int(g, w, "epochs", j->epochs, e) ||
              attr_int(g, w, "train_samples", j->train_samples, e) ||
              (j->data_side > 0 && (attr_int(g, w, "holdout", j->holdout, e) || attr_int(g, w, "data_side", j->data_side, e)));
    return bad ? -1 : 0;
}

static int write_split(hid_t jg, const char *jw, const data_split *s, serr *e) {
    if (!s) return 0;
    char w[256];
    snprintf(w, sizeof w, "%s/split", jw);
    hid_t g = group_create(jg, jw, "split", e);
    if (g < 0) return -1;
    const struct { const char *name; const int64_t *v; int64_t n; } one[] = {
        {"train", s->train, s->n_train}, {"attacker", s->attacker, s->n_attacker},
        {"indep", s->indep, s->n_indep}, {"test", s->test, s->n_test}, {"holdout", s->holdout, s->n_holdout},
    };
    hsize_t pool[2] = {(hsize_t)s->N, (hsize_t)s->m};
    int bad = dset_write(g, w, "pool", H5T_NATIVE_INT64, 2, pool, s->pool, e);
    for (size_t i = 0; !bad && i < sizeof one / sizeof one[0]; i++) {
        hsize_t n = (hsize_t)one[i].n;
        bad = dset_write(g, w, one[i].name, H5T_NATIVE_INT64, 1, &n, one[i].v, e);
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int pvalue_attrs(hid_t g, const char *w, const pmi_result *r, serr *e) {
    char name[32];
    for (int p = 0; p < P_COUNT; p++) {
        snprintf(name, sizeof name, "p_%s", pvalue_name(p));
        if (attr_dbl(g, w, name, r->p[p], e)) return -1;
        snprintf(name, sizeof name, "p_nway_%s", pvalue_name(p));
        if (attr_dbl(g, w, name, r->p_nway[p], e)) return -1;
        snprintf(name, sizeof name, "nway_index_%s", pvalue_name(p));
        if (attr_int(g, w, name, r->nway_index[p], e)) return -1;
    }
    return 0;
}

/* evals/<i>/<kind>/: the kind's scores (N, m), pooled means and medians (N), statistics. */
static int write_kind(hid_t eg, const char *ew, const store_job *j, const store_eval *ev, int q, serr *e) {
    const char *kn = kind_name(ev->kinds[q]);
    char w[320];
    snprintf(w, sizeof w, "%s/%s", ew, kn);
    hid_t g = group_create(eg, ew, kn, e);
    if (g < 0) return -1;
    size_t N = (size_t)j->N, nm = N * (size_t)j->m;
    hsize_t d2[2] = {(hsize_t)j->N, (hsize_t)j->m}, d1 = (hsize_t)j->N;
    const pmi_result *r = &ev->res[q];
    int bad = dset_write(g, w, "sample_scores", H5T_NATIVE_DOUBLE, 2, d2, ev->sample_scores + (size_t)q * nm, e) ||
              dset_write(g, w, "pool_mean", H5T_NATIVE_DOUBLE, 1, &d1, ev->pool_mean + (size_t)q * N, e) ||
              dset_write(g, w, "pool_median", H5T_NATIVE_DOUBLE, 1, &d1, ev->pool_median + (size_t)q * N, e) ||
              attr_int(g, w, "identified", r->identified, e) ||
              attr_int(g, w, "identified_median", r->identified_median, e) ||
              attr_dbl(g, w, "margin", r->margin, e) || attr_dbl(g, w, "z_perm", r->z_perm, e) || pvalue_attrs(g, w, r, e);
    const pmi_data_result *d = &ev->data[q];
    if (!bad && d->n > 0)
        bad = attr_int(g, w, "data_n", d->n, e) || attr_dbl(g, w, "data_gap", d->gap, e) ||
              attr_dbl(g, w, "data_p", d->p, e) || attr_dbl(g, w, "data_z", d->z, e);
    if (!bad && j->pool_audit && !isnan(j->pool_audit[ev->kinds[q]]))
        bad = attr_dbl(g, w, "pool_audit_p", j->pool_audit[ev->kinds[q]], e);
    H5Gclose(g);
    return bad ? -1 : 0;
}

/* A rank-1 attribute of n elements. */
static int attr_array(hid_t loc, const char *where, const char *name, hid_t type, int n, const void *val, serr *e) {
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t a = sp < 0 ? -1 : H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, type, val) < 0) ? fail(e, "cannot write attribute %s of %s", name, where) : 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

/* evals/<i>/model/: one dataset per state tensor (its shape, float32 or int64) and the model's
 * architecture and input as attributes. */
static int write_model(hid_t eg, const char *ew, const weights *m, serr *e) {
    char w[320];
    snprintf(w, sizeof w, "%s/model", ew);
    hid_t g = group_create(eg, ew, "model", e);
    if (g < 0) return -1;
    const weights_input *in = &m->input;
    int shape[3] = {in->c, in->h, in->w};
    int bad = attr_str(g, w, "arch", m->arch, e) || attr_int(g, w, "width", m->width, e) ||
              attr_array(g, w, "input_shape", H5T_NATIVE_INT, 3, shape, e) || attr_int(g, w, "classes", in->classes, e) ||
              attr_str(g, w, "dataset", in->dataset, e) || attr_str(g, w, "normalize", in->normalize, e) ||
              attr_array(g, w, "mean", H5T_NATIVE_DOUBLE, in->c, in->mean, e) ||
              attr_array(g, w, "std", H5T_NATIVE_DOUBLE, in->c, in->sd, e);
    for (int t = 0; !bad && t < m->n; t++) {
        const weights_tensor *x = &m->t[t];
        hsize_t dims[NN_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++) dims[d] = (hsize_t)x->shape[d];
        hid_t type = x->dtype == NN_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
        if (x->ndim == 0) {
            hid_t sp = H5Screate(H5S_SCALAR);
            hid_t d = H5Dcreate2(g, x->name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            bad = d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->data) < 0;
            if (bad) fail(e, "cannot write dataset %s/%s", w, x->name);
            if (d >= 0) H5Dclose(d);
            H5Sclose(sp);
        } else {
            bad = dset_write(g, w, x->name, type, x->ndim, dims, x->data, e);
        }
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int write_eval(hid_t esg, const char *jw, const store_job *j, int i, serr *e) {
    const store_eval *ev = &j->evals[i];
    char name[16], esw[256], w[288];
    snprintf(name, sizeof name, "%d", i);
    snprintf(esw, sizeof esw, "%s/evals", jw);
    snprintf(w, sizeof w, "%s/%d", esw, i);
    hid_t g = group_create(esg, esw, name, e);
    if (g < 0) return -1;
    int bad = attr_str(g, w, "attack", ev->attack, e) || attr_str(g, w, "type", ev->type, e) ||
              attr_str(g, w, "params", ev->params, e) || attr_str(g, w, "strength_key", ev->strength_key, e) ||
              attr_dbl(g, w, "strength", ev->strength, e) ||
              attr_dbl(g, w, "test_accuracy", ev->test_acc, e) || attr_dbl(g, w, "sparsity", ev->sparsity, e) ||
              attr_dbl(g, w, "wall_s", ev->wall_s, e);
    for (int q = 0; !bad && q < ev->n_kinds; q++) bad = write_kind(g, w, j, ev, q, e);
    if (!bad && ev->model) bad = write_model(g, w, ev->model, e);
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int write_evals(hid_t jg, const char *jw, const store_job *j, serr *e) {
    hid_t g = group_create(jg, jw, "evals", e);
    if (g < 0) return -1;
    int bad = 0;
    for (int i = 0; !bad && i < j->n_evals; i++) bad = write_eval(g, jw, j, i, e);
    H5Gclose(g);
    return bad ? -1 : 0;
}

/* reference_scores/<base>: a reference model's base scores (N, m); no group when none is given. */
static int write_ref_scores(hid_t jg, const char *jw, const store_job *j, serr *e) {
    int any = 0;
    for (int b = 0; b < SCORE_COUNT; b++) any |= j->ref_scores[b] != NULL;
    if (!any) return 0;
    char w[256];
    snprintf(w, sizeof w, "%s/reference_scores", jw);
    hid_t g = group_create(jg, jw, "reference_scores", e);
    if (g < 0) return -1;
    hsize_t d2[2] = {(hsize_t)j->N, (hsize_t)j->m};
    int bad = 0;
    hsize_t dd[2] = {2, (hsize_t)j->data_side};
    char name[64];
    for (int b = 0; !bad && b < SCORE_COUNT; b++) {
        if (j->ref_scores[b]) bad = dset_write(g, w, kind_name(b), H5T_NATIVE_DOUBLE, 2, d2, j->ref_scores[b], e);
        snprintf(name, sizeof name, "data_%s", kind_name(b));
        if (!bad && j->ref_data_scores[b] && j->data_side > 0)
            bad = dset_write(g, w, name, H5T_NATIVE_DOUBLE, 2, dd, j->ref_data_scores[b], e);
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int write_job(hid_t jobs, const store_job *j, serr *e) {
    char w[160];
    snprintf(w, sizeof w, "/jobs/%s", j->id);
    hid_t g = group_create(jobs, "/jobs", j->id, e);
    if (g < 0) return -1;
    hsize_t ep = (hsize_t)j->epochs;
    int bad = job_attrs(g, w, j, e) || write_split(g, w, j->split, e) ||
              dset_write(g, w, "loss_curve", H5T_NATIVE_DOUBLE, 1, &ep, j->loss_curve, e) ||
              write_evals(g, w, j, e) || write_ref_scores(g, w, j, e);
    H5Gclose(g);
    return bad ? -1 : 0;
}

/* ---- the file: root attributes, temporary name, atomic finish ------------------------ */

/* The root attributes decide, alphas, permutations, score_kinds; none when not recorded. */
static int write_settings(hid_t f, const store_settings *s, serr *e) {
    if (!settings_recorded(s)) return 0;
    const char *kinds[SCORE_COUNT];
    for (int q = 0; q < s->n_kinds; q++) kinds[q] = kind_name(s->kinds[q]);
    hid_t t = vstr_type();
    int bad = attr_str(f, "/", "decide", s->decide, e) ||
              attr_array(f, "/", "alphas", H5T_NATIVE_DOUBLE, s->n_alphas, s->alphas, e) ||
              attr_int(f, "/", "permutations", s->permutations, e) ||
              attr_array(f, "/", "score_kinds", t, s->n_kinds, kinds, e);
    H5Tclose(t);
    return bad ? -1 : 0;
}

static int write_root(hid_t f, const store_provenance *p, const char *config, const store_settings *s, serr *e) {
    int bad = attr_int(f, "/", "schema_version", STORE_SCHEMA_VERSION, e) ||
              attr_str(f, "/", "pmi_version", p->pmi_version, e) || attr_str(f, "/", "git_commit", p->git_commit, e) ||
              attr_str(f, "/", "torch_version", p->torch_version, e) || attr_str(f, "/", "device", p->device, e) ||
              attr_str(f, "/", "started", p->started, e) || attr_str(f, "/", "finished", p->finished, e) ||
              (p->host[0] && attr_str(f, "/", "host", p->host, e)) ||
              dset_str(f, "/", "config", config, e) || write_settings(f, s, e) ||
              (p->config_hash[0] && attr_str(f, "/", "config_hash", p->config_hash, e));
    return bad ? -1 : 0;
}

/* This host's name, for temporary file names ("" if unknown). */
static const char *host_name(void) {
    static char host[256];
    if (!host[0] && gethostname(host, sizeof host - 1)) host[0] = 0;
    return host;
}

/* Copies the file src into the open file descriptor out. */
static int copy_file(const char *src, int out, serr *e) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return fail(e, "store: cannot open %s: %s", src, strerror(errno));
    char buf[1 << 16];
    int rc = 0;
    for (ssize_t n; !rc && (n = read(in, buf, sizeof buf)) != 0;) {
        if (n < 0) { if (errno != EINTR) rc = fail(e, "store: cannot read %s: %s", src, strerror(errno)); continue; }
        for (ssize_t w = 0, k; !rc && w < n; w += k)
            if ((k = write(out, buf + w, (size_t)(n - w))) < 0) rc = fail(e, "store: cannot copy %s: %s", src, strerror(errno)), k = 0;
    }
    close(in);
    return rc;
}

/* Opens the file of path (outfile_open: "<path>.tmp-<pid>@<host>", mode 0600 as it holds k
 * and the pool, or an existing path's mode) with HDF5 (how: H5Fcreate, or H5Fopen read-write
 * of a copy made in *o first); H5F_CLOSE_STRONG makes H5Fclose close anything left open. */
static hid_t open_out(const char *path, FILE **o, int create, serr *e) {
    *o = outfile_open(path, OUTFILE_SECRET, OUTFILE_KEEP_MODE, e->buf, e->len);
    if (!*o) return -1;
    if (!create && copy_file(path, fileno(*o), e)) { outfile_discard(*o); return -1; }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = create ? H5Fcreate(outfile_name(*o), H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5Fopen(outfile_name(*o), H5F_ACC_RDWR, fapl);
    if (f < 0) { fail(e, "store: cannot %s the temporary file of %s", create ? "create" : "open", path); outfile_discard(*o); }
    H5Pclose(fapl);
    return f;
}

/* Closes the HDF5 file f and moves o into place (outfile_close); on any failure (bad != 0
 * included) the temporary file is removed and -1 returned. */
static int close_out(hid_t f, FILE *o, int bad, serr *e) {
    if (!bad && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) bad = fail(e, "store: cannot flush the temporary file");
    if (H5Fclose(f) < 0 && !bad) bad = fail(e, "store: cannot close the temporary file");
    if (bad) { outfile_discard(o); return -1; }
    return outfile_close(o, e->buf, e->len);
}

/* Marks the file complete, closes it and moves it into place (close_out). */
static int finish(hid_t f, FILE *o, int bad, serr *e) {
    if (!bad) bad = attr_int(f, "/", "complete", 1, e);
    return close_out(f, o, bad, e);
}

int store_write_shard(const char *path, const store_job *job, const store_provenance *prov,
                      char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    FILE *o;
    if (!path || !prov) return fail(&e, "store: no %s given", path ? "provenance" : "shard path");
    if (validate_job(job, &e) || validate_settings(job, &prov->settings, &e)) return -1;
    hid_t f = open_out(path, &o, 1, &e);
    if (f < 0) return -1;
    hid_t jobs = group_create(f, "", "jobs", &e);
    hid_t sum = jobs < 0 ? -1 : summary_create(f, &e);
    int bad = sum < 0 || write_job(jobs, job, &e) || job_summary(sum, job, pmi_pvalue_parse(prov->settings.decide), &e) || write_root(f, prov, prov->config, &prov->settings, &e);
    if (sum >= 0) H5Dclose(sum);
    if (jobs >= 0) H5Gclose(jobs);
    return finish(f, o, bad, &e);
}

/* ---- reading ----------------------------------------------------------------------- */

static int root_int(hid_t f, const char *name, int *v) {
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_INT, v) >= 0;
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

/* The longest string a results file may hold (the effective config is a few KB): a malformed
 * file that declares a longer one is refused instead of making HDF5 allocate it. */
#define STORE_MAX_STRING ((size_t)64 << 20)

static void *vlen_alloc_limited(size_t size, void *info) {
    (void)info;
    return size > STORE_MAX_STRING ? NULL : malloc(size);
}

static void vlen_free(void *p, void *info) {
    (void)info;
    free(p);
}

/* 1 if the scalar variable-length string dataset d declares more than STORE_MAX_STRING bytes,
 * or its length cannot be checked. libhdf5 allocates the declared length before it reads the
 * string, so a malformed file could make it allocate gigabytes: the length (the first 4 bytes
 * of the element, little-endian, in the file's raw data) is read and checked first. */
static int vlen_too_long(hid_t d) {
    haddr_t off = H5Dget_offset(d);
    hid_t f = H5Iget_file_id(d);
    if (off == HADDR_UNDEF || f < 0) { if (f >= 0) H5Fclose(f); return 1; }
    void *handle = NULL;
    int bad = 1;
    if (H5Fget_vfd_handle(f, H5P_DEFAULT, &handle) >= 0 && handle) {
        unsigned char b[4];
        if (pread(*(int *)handle, b, 4, (off_t)off) == 4) {
            uint32_t len = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            bad = len > STORE_MAX_STRING;
        }
    }
    H5Fclose(f);
    return bad;
}

/* A scalar string (variable or fixed length) of an attribute or dataset, malloc'd; NULL if
 * obj does not hold exactly one string, or one longer than STORE_MAX_STRING (a dataset's
 * variable-length string is read through an allocator that refuses it). */
static char *read_string(hid_t obj, int is_attr) {
    hid_t t = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t sp = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    char *out = NULL;
    if (t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1) {
        hid_t mt = H5Tcopy(t);
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            herr_t rc = -1;
            if (is_attr) {
                rc = H5Aread(obj, mt, &v);
            } else if (vlen_too_long(obj)) {
                rc = -1;
            } else {
                hid_t x = H5Pcreate(H5P_DATASET_XFER);
                if (x >= 0 && H5Pset_vlen_mem_manager(x, vlen_alloc_limited, NULL, vlen_free, NULL) >= 0)
                    rc = H5Dread(obj, mt, H5S_ALL, H5S_ALL, x, &v);
                if (x >= 0) H5Pclose(x);
            }
            if (rc >= 0) out = util_strdup(v ? v : "");
            if (v) { if (is_attr) H5free_memory(v); else free(v); }
        } else {
            size_t n = H5Tget_size(t);
            if (n > 0 && n <= STORE_MAX_STRING) {
                out = util_calloc(n + 1, 1);
                herr_t rc = is_attr ? H5Aread(obj, mt, out) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
                if (rc < 0) { free(out); out = NULL; }
            }
        }
        H5Tclose(mt);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return out;
}

/* A root string attribute, or a root string dataset of that name (how "config" is stored). */
static char *root_string(hid_t f, const char *name) {
    char *s = NULL;
    if (H5Aexists(f, name) > 0) {
        hid_t a = H5Aopen(f, name, H5P_DEFAULT);
        if (a >= 0) { s = read_string(a, 1); H5Aclose(a); }
    } else if (H5Lexists(f, name, H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        if (d >= 0) { s = read_string(d, 0); H5Dclose(d); }
    }
    return s;
}

/* A double attribute of obj; NAN when absent or unreadable. */
static double attr_read_dbl(hid_t obj, const char *name) {
    double v = NAN;
    if (H5Aexists(obj, name) <= 0) return v;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
    if (a >= 0) H5Aclose(a);
    return v;
}

/* A string attribute of obj into buf; -1 when absent, not a string or too long for buf. */
static int attr_read_str(hid_t obj, const char *name, char *buf, size_t len) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    char *s = a < 0 ? NULL : read_string(a, 1);
    if (a >= 0) H5Aclose(a);
    int fits = s && strlen(s) < len;
    if (fits) memcpy(buf, s, strlen(s) + 1);
    free(s);
    return fits ? 0 : -1;
}

/* The decision settings of an open file into s (zeroed first). With optional set, a file
 * without the attribute decide is not an error: s stays all zero (not recorded). */
static int settings_read(hid_t f, const char *path, store_settings *s, int optional, serr *e) {
    memset(s, 0, sizeof *s);
    if (H5Aexists(f, "decide") <= 0)
        return optional ? 0 : fail(e, "%s: no decision settings (root attribute decide): the producer did not record them", path);
    if (attr_read_str(f, "decide", s->decide, sizeof s->decide))
        return fail(e, "%s: root attribute decide is not a string of at most %zu characters", path, sizeof s->decide - 1);
    if (root_int(f, "permutations", &s->permutations))
        return fail(e, "%s: root attribute permutations is missing or not an integer", path);
    hid_t a = H5Aexists(f, "alphas") > 0 ? H5Aopen(f, "alphas", H5P_DEFAULT) : -1;
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int bad = n < 1 || n > CFG_MAX_ALPHAS || H5Aread(a, H5T_NATIVE_DOUBLE, s->alphas) < 0;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (bad) return fail(e, "%s: root attribute alphas is missing, unreadable or not 1..%d (CFG_MAX_ALPHAS) values", path, CFG_MAX_ALPHAS);
    s->n_alphas = (int)n;
    a = H5Aexists(f, "score_kinds") > 0 ? H5Aopen(f, "score_kinds", H5P_DEFAULT) : -1;
    sp = a < 0 ? -1 : H5Aget_space(a);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a), mt = vstr_type();
    n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    char *names[SCORE_COUNT] = {0};
    bad = ft < 0 || H5Tis_variable_str(ft) <= 0 || n < 1 || n > SCORE_COUNT || H5Aread(a, mt, names) < 0;
    for (int q = 0; !bad && q < n; q++) {
        s->kinds[q] = names[q] ? pmi_score_parse(names[q]) : -1;
        if (s->kinds[q] < 0) bad = fail(e, "%s: root attribute score_kinds: '%s' is not a score kind", path, names[q] ? names[q] : "");
    }
    for (int q = 0; q < SCORE_COUNT; q++) if (names[q]) H5free_memory(names[q]);
    H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (bad) return fail(e, "%s: root attribute score_kinds is missing or not 1..%d (SCORE_COUNT) strings", path, SCORE_COUNT);
    s->n_kinds = (int)n;
    return settings_check(s, path, e);
}

int store_shard_complete(const char *path) {
    if (!path) return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    int v = 0, c = 0;
    int ok = root_int(f, "schema_version", &v) == 0 && v == STORE_SCHEMA_VERSION &&
             root_int(f, "complete", &c) == 0 && c == 1;
    H5Fclose(f);
    return ok;
}

static int64_t open_checked(const char *path, serr *e) {
    if (!path) return fail(e, "store: no file name given");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fail(e, "%s: cannot open as an HDF5 file", path);
    int v = 0;
    if (H5Aexists(f, "schema_version") <= 0) {
        H5Fclose(f);
        return fail(e, "%s: not a pmi results file (no schema_version attribute)", path);
    }
    if (root_int(f, "schema_version", &v)) {
        H5Fclose(f);
        return fail(e, "%s: schema_version is not an integer attribute", path);
    }
    if (v != STORE_SCHEMA_VERSION) {
        H5Fclose(f);
        return fail(e, "%s: schema version %d, this pmi reads version %d", path, v, STORE_SCHEMA_VERSION);
    }
    return (int64_t)f;
}

int64_t store_open(const char *path, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    return open_checked(path, &e);
}

void store_close(int64_t file) {
    if (file >= 0) H5Fclose((hid_t)file);
}

int store_read_summary(const char *path, store_row **rows, int64_t *n, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!rows || !n) return fail(&e, "store: no output for the summary of %s", path ? path : "(null)");
    *rows = NULL; *n = 0;
    int64_t f = open_checked(path, &e);
    if (f < 0) return -1;
    int rc = summary_read((hid_t)f, path, rows, n, &e);
    H5Fclose((hid_t)f);
    return rc;
}

int store_read_settings(const char *path, store_settings *s, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!s) return fail(&e, "store: no output for the settings of %s", path ? path : "(null)");
    memset(s, 0, sizeof *s);
    int64_t f = open_checked(path, &e);
    if (f < 0) return -1;
    int rc = settings_read((hid_t)f, path, s, 0, &e);
    H5Fclose((hid_t)f);
    return rc;
}

char *store_read_attr(const char *path, const char *name) {
    if (!path || !name || !name[0]) return NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    char *s = root_string(f, name);
    H5Fclose(f);
    return s;
}

/* ---- merge ------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The *.h5 names in dir, sorted; *n_temp counts the temporary files ("*.h5.tmp-*"). */
static int list_shards(const char *dir, char ***names, int *n, int *n_temp, serr *e) {
    *names = NULL; *n = 0; *n_temp = 0;
    DIR *d = opendir(dir);
    if (!d) return fail(e, "store: cannot list %s: %s", dir, strerror(errno));
    int cap = 0, rc = 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        if (strstr(de->d_name, ".h5.tmp-")) { (*n_temp)++; continue; }
        if (!ends_with(de->d_name, ".h5")) continue;
        if (*n == cap) *names = util_realloc(*names, sizeof **names * (size_t)(cap = cap ? 2 * cap : 64));
        (*names)[(*n)++] = util_strdup(de->d_name);
    }
    closedir(d);
    if (rc) { free_names(*names, *n); *names = NULL; *n = 0; return -1; }
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, cmp_names);
    return 0;
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Copies every /jobs/<id> of src into dst_jobs (a job id seen before is an error). */
static int copy_jobs(hid_t src, const char *path, hid_t dst_jobs, serr *e) {
    hid_t sj = H5Gopen2(src, "jobs", H5P_DEFAULT);
    if (sj < 0) return fail(e, "%s: no /jobs group", path);
    H5G_info_t info;
    int bad = H5Gget_info(sj, &info) < 0 ? fail(e, "%s: cannot read /jobs", path) : 0;
    for (hsize_t i = 0; !bad && i < info.nlinks; i++) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(sj, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) bad = fail(e, "%s: cannot read the name of job %llu", path, (unsigned long long)i);
        else if (H5Lexists(dst_jobs, name, H5P_DEFAULT) > 0) bad = fail(e, "%s: job %s is already in an earlier shard", path, name);
        else if (H5Ocopy(sj, name, dst_jobs, name, H5P_DEFAULT, H5P_DEFAULT) < 0) bad = fail(e, "%s: cannot copy /jobs/%s", path, name);
    }
    H5Gclose(sj);
    return bad ? -1 : 0;
}

/* What a merge carries from shard to shard. */
typedef struct {
    char *config;              /* the first shard's config text, when wanted (prov has none) */
    int want_config;
    store_settings settings;   /* the settings written to the output */
    int have_settings;         /* 1 once fixed: prov's when recorded, else the first shard's */
    int merged, skipped;
} merge_state;

/* Adds one complete shard: its job groups and its summary rows. Its decision settings become
 * the output's when none are fixed yet; otherwise they must be the same. */
static int merge_one(hid_t dst_jobs, hid_t dst_sum, const char *path, merge_state *m, serr *e) {
    hid_t src = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (src < 0) return fail(e, "%s: cannot open", path);
    store_row *rows = NULL;
    int64_t n = 0;
    store_settings set;
    int bad = settings_read(src, path, &set, 1, e);
    if (!bad && !m->have_settings) { m->settings = set; m->have_settings = 1; }
    else if (!bad && !settings_same(&m->settings, &set))
        bad = fail(e, "%s: decision settings (decide, alphas, score_kinds) differ from the run's or an earlier shard's", path);
    bad = bad || copy_jobs(src, path, dst_jobs, e) || summary_read(src, path, &rows, &n, e) ||
          summary_append(dst_sum, rows, n, e);
    if (!bad && m->want_config && !m->config) m->config = root_string(src, "config");
    free(rows);
    H5Fclose(src);
    return bad ? -1 : 0;
}

/* Merges the listed shards into the open file f. */
static int merge_into(hid_t f, const char *dir, const char *out_path, char **names, int n, merge_state *m, serr *e) {
    hid_t jobs = group_create(f, "", "jobs", e);
    hid_t sum = jobs < 0 ? -1 : summary_create(f, e);
    int bad = sum < 0;
    for (int i = 0; !bad && i < n; i++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) { bad = fail(e, "store: path too long (PATH_MAX): %s/%s", dir, names[i]); break; }
        if (same_file(p, out_path)) continue;
        if (!store_shard_complete(p)) { m->skipped++; continue; }
        bad = merge_one(jobs, sum, p, m, e);
        if (!bad) m->merged++;
    }
    if (sum >= 0) H5Dclose(sum);
    if (jobs >= 0) H5Gclose(jobs);
    return bad ? -1 : 0;
}

int store_merge_ex(const char *shard_dir, const char *out_path, const store_provenance *prov,
                   int *n_merged, int *n_skipped, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    int n = 0;
    char **names = NULL;
    FILE *o;
    if (!shard_dir || !out_path || !prov) return fail(&e, "store: merge needs a shard folder, an output path and provenance");
    merge_state m = {.want_config = !prov->config, .settings = prov->settings,
                     .have_settings = settings_recorded(&prov->settings)};
    if (m.have_settings && settings_check(&m.settings, "store: provenance settings", &e)) return -1;
    if (list_shards(shard_dir, &names, &n, &m.skipped, &e)) return -1;
    hid_t f = open_out(out_path, &o, 1, &e);
    if (f < 0) { free_names(names, n); return -1; }
    int bad = merge_into(f, shard_dir, out_path, names, n, &m, &e);
    if (!bad && m.merged == 0) bad = fail(&e, "store: no complete shard in %s (%d skipped)", shard_dir, m.skipped);
    if (!bad) bad = write_root(f, prov, prov->config ? prov->config : m.config, &m.settings, &e);
    bad = finish(f, o, bad, &e);
    free(m.config);
    free_names(names, n);
    if (n_merged) *n_merged = m.merged;
    if (n_skipped) *n_skipped = m.skipped;
    return bad ? -1 : 0;
}

int store_merge(const char *shard_dir, const char *out_path, const store_provenance *prov,
                char *err, size_t errlen) {
    return store_merge_ex(shard_dir, out_path, prov, NULL, NULL, err, errlen);
}

/* Free bytes for an unprivileged writer in the folder of path; -1 if unknown. */
static int64_t free_bytes(const char *path) {
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    struct statvfs v;
    if (statvfs(dirname(copy), &v)) return -1;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* Checks the shards of a plan before merging: each is a complete shard of this schema written
 * by the configuration config_hash. *present gets 1 per shard that is there. A missing or
 * incomplete shard is an error unless partial; a shard of another configuration always is. */
static int check_plan_shards(const char *const *paths, int n, const char *config_hash, int partial,
                             int *present, int64_t *bytes, int *n_present, serr *e) {
    *bytes = 0; *n_present = 0;
    for (int i = 0; i < n; i++) {
        present[i] = store_shard_complete(paths[i]);
        if (!present[i]) {
            if (partial) continue;
            int done = 0;
            for (int k = 0; k < n; k++) done += k < i ? present[k] : store_shard_complete(paths[k]);
            return fail(e, "store: %s is missing or incomplete (%d of %d shards of the plan are complete): "
                           "finish the run (pmi run), or merge what there is with --partial", paths[i], done, n);
        }
        char *hash = store_read_attr(paths[i], "config_hash");
        int same = hash && !strcmp(hash, config_hash);
        if (!same) {
            int rc = fail(e, "store: %s was written by a different configuration (config hash %s, this plan's %s); "
                             "retrain it (pmi run --force) or merge the plan that wrote it", paths[i], hash ? hash : "none", config_hash);
            free(hash);
            return rc;
        }
        free(hash);
        struct stat st;
        if (stat(paths[i], &st) == 0) *bytes += (int64_t)st.st_size;
        (*n_present)++;
    }
    return *n_present ? 0 : fail(e, "store: none of the %d shards of the plan is complete", n);
}

/* The root attribute partial_note: a sentence that report and plot show. */
static int partial_note(hid_t f, int merged, int planned, serr *e) {
    char note[160];
    snprintf(note, sizeof note, "PARTIAL RESULTS: %d of %d jobs of the plan (merged with --partial)", merged, planned);
    return attr_str(f, "/", "partial_note", note, e);
}

int store_merge_plan(const char *const *paths, int n, int partial, const char *out_path,
                     const store_provenance *prov, int *n_merged, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (n_merged) *n_merged = 0;
    if (!paths || n < 1 || !out_path || !prov || !prov->config_hash[0])
        return fail(&e, "store: a plan merge needs shard paths, an output path and provenance with the config hash");
    int *present = util_calloc((size_t)n, sizeof *present), n_present = 0;
    int64_t bytes = 0;
    if (check_plan_shards(paths, n, prov->config_hash, partial, present, &bytes, &n_present, &e)) { free(present); return -1; }
    /* the merged file is about the size of its shards: refuse up front rather than let HDF5
     * run out of space in the middle of a copy */
    int64_t need = bytes + bytes / 4 + (1 << 20), avail = free_bytes(out_path);
    if (avail >= 0 && avail < need) {
        free(present);
        return fail(&e, "store: not enough free space for %s: the merge needs about %.1f MB, %.1f MB are free",
                    out_path, (double)need / 1e6, (double)avail / 1e6);
    }
    FILE *o;
    hid_t f = open_out(out_path, &o, 1, &e);
    if (f < 0) { free(present); return -1; }
    merge_state m = {.want_config = !prov->config, .settings = prov->settings, .have_settings = settings_recorded(&prov->settings)};
    int bad = m.have_settings && settings_check(&m.settings, "store: provenance settings", &e);
    hid_t jobs = bad ? -1 : group_create(f, "", "jobs", &e);
    hid_t sum = jobs < 0 ? -1 : summary_create(f, &e);
    bad = bad || sum < 0;
    for (int i = 0; !bad && i < n; i++)
        if (present[i] && !(bad = merge_one(jobs, sum, paths[i], &m, &e))) m.merged++;
    if (sum >= 0) H5Dclose(sum);
    if (jobs >= 0) H5Gclose(jobs);
    if (!bad) bad = write_root(f, prov, prov->config ? prov->config : m.config, &m.settings, &e) ||
                    attr_int(f, "/", "partial", n_present < n, &e) || attr_int(f, "/", "jobs_planned", n, &e) ||
                    attr_int(f, "/", "jobs_merged", m.merged, &e) || (n_present < n && partial_note(f, m.merged, n, &e));
    bad = finish(f, o, bad, &e);
    free(m.config); free(present);
    if (n_merged) *n_merged = m.merged;
    return bad ? -1 : 0;
}

int store_clean_temps(const char *dir, int *removed) {
    DIR *d = opendir(dir);
    if (removed) *removed = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));) {
        const char *t = strstr(de->d_name, ".h5.tmp-");
        char *end;
        long pid = t ? strtol(t + 8, &end, 10) : 0;
        /* another machine's writer (a job array task elsewhere): its pid means nothing here */
        if (t && *end == '@' && strcmp(end + 1, host_name())) continue;
        if (!t || pid <= 0 || (*end && *end != '@') || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p && unlink(p) == 0 && removed) (*removed)++;
    }
    closedir(d);
    return 0;
}

/* ---- reading one job's evaluations ------------------------------------------------- */

/* 1 if every link along the absolute path w exists (H5Lexists needs each parent to exist). */
static int path_exists(hid_t f, const char *w) {
    char buf[400];
    snprintf(buf, sizeof buf, "%s", w);
    for (char *p = strchr(buf + 1, '/');; p = strchr(p + 1, '/')) {
        if (p) *p = 0;
        if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) return 0;
        if (!p) return 1;
        *p = '/';
    }
}

static int read_eval_info(hid_t g, const char *path, const char *w, store_eval_info *ev, serr *e) {
    memset(ev, 0, sizeof *ev);
    if (attr_read_str(g, "attack", ev->attack, sizeof ev->attack) ||
        attr_read_str(g, "type", ev->type, sizeof ev->type) ||
        attr_read_str(g, "params", ev->params, sizeof ev->params) ||
        attr_read_str(g, "strength_key", ev->strength_key, sizeof ev->strength_key))
        return fail(e, "%s: %s: string attribute attack, type, params or strength_key missing or too long", path, w);
    ev->strength = attr_read_dbl(g, "strength");
    ev->test_acc = attr_read_dbl(g, "test_accuracy");
    ev->sparsity = attr_read_dbl(g, "sparsity");
    return 0;
}

static int evals_read(hid_t f, const char *path, const char *job_id, store_eval_info **out, int *n, serr *e) {
    char w[300];
    int len = snprintf(w, sizeof w, "/jobs/%s/evals", job_id);
    if (len < 0 || len >= (int)sizeof w) return fail(e, "%s: job id %s is longer than a job group name can be", path, job_id);
    if (!path_exists(f, w)) return fail(e, "%s: no group %s", path, w);
    hid_t g = H5Gopen2(f, w, H5P_DEFAULT);
    H5G_info_t info;
    if (g < 0 || H5Gget_info(g, &info) < 0) {
        if (g >= 0) H5Gclose(g);
        return fail(e, "%s: cannot open %s", path, w);
    }
    *out = util_calloc(info.nlinks ? info.nlinks : 1, sizeof **out);
    int rc = 0;
    for (hsize_t i = 0; !rc && i < info.nlinks; i++) {
        char name[32], ew[340];
        snprintf(name, sizeof name, "%llu", (unsigned long long)i);
        snprintf(ew, sizeof ew, "%s/%s", w, name);
        hid_t eg = H5Lexists(g, name, H5P_DEFAULT) > 0 ? H5Gopen2(g, name, H5P_DEFAULT) : -1;
        if (eg < 0) { rc = fail(e, "%s: no group %s/%s (evaluations must be numbered 0..%llu)", path, w, name,
                                (unsigned long long)info.nlinks - 1); break; }
        rc = read_eval_info(eg, path, ew, &(*out)[i], e);
        H5Gclose(eg);
    }
    H5Gclose(g);
    if (rc) { free(*out); *out = NULL; return -1; }
    *n = (int)info.nlinks;
    return 0;
}

int store_read_evals(const char *path, const char *job_id, store_eval_info **evals, int *n,
                     char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!evals || !n || !valid_name(job_id)) return fail(&e, "store: bad arguments to store_read_evals");
    *evals = NULL; *n = 0;
    int64_t f = open_checked(path, &e);
    if (f < 0) return -1;
    int rc = evals_read((hid_t)f, path, job_id, evals, n, &e);
    H5Fclose((hid_t)f);
    return rc;
}

static int scores_read(hid_t f, const char *path, const char *w, double **out, int *N, int *m, serr *e) {
    if (!path_exists(f, w)) return fail(e, "%s: no dataset %s", path, w);
    hid_t d = H5Dopen2(f, w, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int rc = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2
             ? 0 : fail(e, "%s: %s is not a 2-d dataset", path, w);
    if (!rc && (dims[0] < 1 || dims[1] < 1 || dims[0] > INT_MAX || dims[1] > INT_MAX / dims[0]))
        rc = fail(e, "%s: %s has shape (%llu, %llu)", path, w, (unsigned long long)dims[0], (unsigned long long)dims[1]);
    if (!rc) *out = util_malloc(sizeof **out * dims[0] * dims[1]);
    if (!rc && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = fail(e, "%s: cannot read %s as double", path, w);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (rc) { free(*out); *out = NULL; return -1; }
    *N = (int)dims[0]; *m = (int)dims[1];
    return 0;
}

/* scores_read() of the dataset w of the results file path, opened with the version check. */
static int scores_read_file(const char *path, const char *w, double **out, int *N, int *m, serr *e) {
    int64_t f = open_checked(path, e);
    if (f < 0) return -1;
    int rc = scores_read((hid_t)f, path, w, out, N, m, e);
    H5Fclose((hid_t)f);
    return rc;
}

int store_read_scores(const char *path, const char *job_id, int eval_index, const char *kind,
                      double **scores, int *N, int *m, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!scores || !N || !m || !valid_name(job_id) || !valid_name(kind) || eval_index < 0)
        return fail(&e, "store: bad arguments to store_read_scores");
    *scores = NULL;
    char w[400];
    int len = snprintf(w, sizeof w, "/jobs/%s/evals/%d/%s/sample_scores", job_id, eval_index, kind);
    if (len < 0 || len >= (int)sizeof w) return fail(&e, "store: /jobs/%s/evals/%d/%s is longer than %zu characters", job_id, eval_index, kind, sizeof w - 1);
    return scores_read_file(path, w, scores, N, m, &e);
}

int store_read_ref_scores(const char *path, const char *job_id, const char *kind, double **scores, int *N, int *m,
                          char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!scores || !N || !m || !valid_name(job_id) || !valid_name(kind))
        return fail(&e, "store: bad arguments to store_read_ref_scores");
    *scores = NULL;
    char w[400];
    int len = snprintf(w, sizeof w, "/jobs/%s/reference_scores/%s", job_id, kind);
    if (len < 0 || len >= (int)sizeof w) return fail(&e, "store: job id %s is longer than a job group name can be", job_id);
    return scores_read_file(path, w, scores, N, m, &e);
}

double store_row_verdict_p(const store_row *r, int decide) {
    int kind = pmi_score_parse(r->score);
    double p = kind < 0 ? store_row_p(r, decide) : pmi_pool_p((pmi_score_kind)kind, store_row_p(r, decide), r->pool_audit_p);
    return pmi_combine_p(p, r->data_p);
}

double store_row_p(const store_row *r, int which) {
    const double v[P_COUNT] = {r->p_rank, r->p_perm, r->p_welch, r->p_mw};
    return which >= 0 && which < P_COUNT ? v[which] : NAN;
}

/* ---- reading a job's split, attributes and stored models ------------------------- */

/* A numeric dataset (rank <= max_rank) read as type into a malloc'd array; dims gets its shape. */
static int dset_read(hid_t f, const char *path, const char *w, hid_t type, size_t elem, int max_rank, void **out,
                     int *rank, hsize_t *dims, serr *e) {
    *out = NULL;
    if (!path_exists(f, w)) return fail(e, "%s: no dataset %s", path, w);
    hid_t d = H5Dopen2(f, w, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hid_t t = d < 0 ? -1 : H5Dget_type(d);
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    int rc = r >= 0 && r <= max_rank && t >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT)
             ? 0 : fail(e, "%s: %s is not a numeric dataset of rank <= %d", path, w, max_rank);
    hsize_t n = 1;
    if (!rc) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < r; i++) n *= dims[i];
        if (n > ((hsize_t)1 << 34) / elem) rc = fail(e, "%s: %s has %llu elements, too many", path, w, (unsigned long long)n);
    }
    if (!rc) {
        *out = util_malloc(elem * (size_t)(n ? n : 1));
        if (n && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) rc = fail(e, "%s: cannot read %s", path, w);
    }
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (rc) { free(*out); *out = NULL; return -1; }
    *rank = r;
    return 0;
}

int store_read_split(const char *path, const char *job_id, const char *name, int64_t **v, int64_t *n, int64_t dims[2],
                     char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    *v = NULL; *n = 0;
    if (!valid_name(job_id) || !valid_name(name)) return fail(&e, "store: bad arguments to store_read_split");
    char w[400];
    snprintf(w, sizeof w, "/jobs/%s/split/%s", job_id, name);
    int64_t f = open_checked(path, &e);
    if (f < 0) return -1;
    hsize_t hd[2] = {0, 0};
    int rank = 0;
    void *out = NULL;
    int rc = dset_read((hid_t)f, path, w, H5T_NATIVE_INT64, sizeof(int64_t), 2, &out, &rank, hd, &e);
    H5Fclose((hid_t)f);
    if (rc) return -1;
    dims[0] = rank > 0 ? (int64_t)hd[0] : 1;
    dims[1] = rank > 1 ? (int64_t)hd[1] : 1;
    *v = out;
    *n = dims[0] * dims[1];
    return 0;
}

int store_read_job_int(const char *path, const char *job_id, const char *name, int *v, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!valid_name(job_id)) return fail(&e, "store: bad job id");
    char w[300];
    snprintf(w, sizeof w, "/jobs/%s", job_id);
    int64_t f = open_checked(path, &e);
    if (f < 0) return -1;
    int rc = 0;
    if (!path_exists((hid_t)f, w)) rc = fail(&e, "%s: no job %s", path, job_id);
    hid_t g = rc ? -1 : H5Gopen2((hid_t)f, w, H5P_DEFAULT);
    if (!rc && (g < 0 || root_int(g, name, v))) rc = fail(&e, "%s: %s has no int attribute %s", path, w, name);
    if (g >= 0) H5Gclose(g);
    H5Fclose((hid_t)f);
    return rc;
}

/* A rank-1 numeric attribute of exactly n elements, read as type. */
static int attr_read_array(hid_t obj, const char *name, hid_t type, int n, void *out) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == n && H5Aread(a, type, out) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

typedef struct { hid_t f; const char *path, *w; weights *m; serr *e; } model_iter;

static herr_t read_model_tensor(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
    (void)g; (void)info;
    model_iter *it = ctx;
    weights *m = it->m;
    char w[512];
    snprintf(w, sizeof w, "%s/%s", it->w, name);
    weights_tensor *t = &m->t[m->n];
    if (strlen(name) >= sizeof t->name) return fail(it->e, "%s: %s: tensor name too long", it->path, w);
    hid_t d = H5Dopen2(it->f, w, H5P_DEFAULT);
    hid_t ty = d < 0 ? -1 : H5Dget_type(d);
    int is_int = ty >= 0 && H5Tget_class(ty) == H5T_INTEGER;
    if (ty >= 0) H5Tclose(ty);
    if (d >= 0) H5Dclose(d);
    if (d < 0) return fail(it->e, "%s: %s is not a dataset", it->path, w);
    hsize_t dims[NN_MAX_DIMS];
    int rank = 0;
    t->dtype = is_int ? NN_I64 : NN_F32;
    if (dset_read(it->f, it->path, w, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, is_int ? 8 : 4, NN_MAX_DIMS,
                  &t->data, &rank, dims, it->e)) return -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = rank;
    t->numel = 1;
    for (int i = 0; i < rank; i++) { t->shape[i] = (int64_t)dims[i]; t->numel *= t->shape[i]; }
    m->n++;
    return 0;
}

int store_read_model(const char *path, const char *job_id, int eval_index, weights *m, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    memset(m, 0, sizeof *m);
    if (!valid_name(job_id) || eval_index < 0) return fail(&e, "store: bad arguments to store_read_model");
    char w[400], ew[360];
    snprintf(ew, sizeof ew, "/jobs/%s/evals/%d", job_id, eval_index);
    snprintf(w, sizeof w, "%s/model", ew);
    int64_t fi = open_checked(path, &e);
    if (fi < 0) return -1;
    hid_t f = (hid_t)fi;
    int rc = 0;
    if (!path_exists(f, ew)) rc = fail(&e, "%s: no evaluation %s (pmi report lists the jobs)", path, ew);
    else if (!path_exists(f, w)) rc = fail(&e, "%s: %s holds no model: the run did not save models ([store] save_models = 1)", path, ew);
    hid_t g = rc ? -1 : H5Gopen2(f, w, H5P_DEFAULT);
    H5G_info_t info;
    weights_input *in = &m->input;
    int shape[3];
    if (!rc && (g < 0 || H5Gget_info(g, &info) < 0 || info.nlinks < 1 || info.nlinks > 4096))
        rc = fail(&e, "%s: cannot open %s or it holds no tensors", path, w);
    if (!rc && (attr_read_str(g, "arch", m->arch, sizeof m->arch) || root_int(g, "width", &m->width) ||
                attr_read_array(g, "input_shape", H5T_NATIVE_INT, 3, shape) || root_int(g, "classes", &in->classes) ||
                attr_read_str(g, "dataset", in->dataset, sizeof in->dataset) ||
                attr_read_str(g, "normalize", in->normalize, sizeof in->normalize)))
        rc = fail(&e, "%s: %s: attribute arch, width, input_shape, classes, dataset or normalize missing or malformed", path, w);
    if (!rc && !(shape[0] >= 1 && shape[0] <= 3 && shape[1] >= 1 && shape[2] >= 1))
        rc = fail(&e, "%s: %s: input_shape (%d, %d, %d) is not 1..3 channels of at least 1x1", path, w, shape[0], shape[1], shape[2]);
    if (!rc) {
        in->c = shape[0]; in->h = shape[1]; in->w = shape[2];
        if (attr_read_array(g, "mean", H5T_NATIVE_DOUBLE, in->c, in->mean) || attr_read_array(g, "std", H5T_NATIVE_DOUBLE, in->c, in->sd))
            rc = fail(&e, "%s: %s: attribute mean or std is not %d doubles", path, w, in->c);
    }
    if (!rc) {
        m->t = util_calloc(info.nlinks, sizeof *m->t);
        model_iter it = {f, path, w, m, &e};
        if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, read_model_tensor, &it) < 0) rc = fail(&e, "%s: cannot read the tensors of %s", path, w);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    if (rc) weights_free(m);
    return rc;
}

/* ---- the report tables ------------------------------------------------------------- */


static int write_column(hid_t g, const char *where, const store_column *c, int64_t n, serr *e) {
    hsize_t dims = (hsize_t)n;
    switch (c->type) {
    case STORE_COL_INT: return dset_write(g, where, c->name, H5T_NATIVE_INT32, 1, &dims, c->i, e);
    case STORE_COL_DOUBLE: return dset_write(g, where, c->name, H5T_NATIVE_DOUBLE, 1, &dims, c->d, e);
    case STORE_COL_STR: {
        hid_t t = vstr_type();
        int rc = dset_write(g, where, c->name, t, 1, &dims, c->s, e);
        H5Tclose(t);
        return rc;
    }
    }
    return fail(e, "store: column %s/%s has an unknown type", where, c->name);
}

static int write_tables(hid_t f, const store_table *tables, int n_tables, const char *const *attrs, int n_attrs, serr *e) {
    if (H5Lexists(f, "report", H5P_DEFAULT) > 0 && H5Ldelete(f, "report", H5P_DEFAULT) < 0)
        return fail(e, "store: cannot remove the old /report");
    hid_t r = group_create(f, "", "report", e);
    if (r < 0) return -1;
    int bad = 0;
    for (int a = 0; !bad && a < n_attrs; a++) bad = attr_str(r, "/report", attrs[2 * a], attrs[2 * a + 1], e);
    for (int t = 0; !bad && t < n_tables; t++) {
        char w[300];
        snprintf(w, sizeof w, "/report/%s", tables[t].name);
        hid_t g = group_create(r, "/report", tables[t].name, e);
        if (g < 0) { bad = -1; break; }
        bad = attr_str(g, w, "caption", tables[t].caption, e);
        const char **names = util_malloc(sizeof *names * (size_t)(tables[t].ncols ? tables[t].ncols : 1));
        for (int c = 0; c < tables[t].ncols; c++) names[c] = tables[t].cols[c].name;
        hid_t vt = vstr_type();
        if (!bad) bad = attr_array(g, w, "columns", vt, tables[t].ncols, names, e);
        H5Tclose(vt);
        free(names);
        for (int c = 0; !bad && c < tables[t].ncols; c++) bad = write_column(g, w, &tables[t].cols[c], tables[t].nrows, e);
        H5Gclose(g);
    }
    H5Gclose(r);
    return bad ? -1 : 0;
}

int store_write_tables(const char *path, const store_table *tables, int n_tables, const char *const *attrs,
                       int n_attrs, char *err, size_t errlen) {
    serr e = {err, errlen};
    serr_reset(&e);
    if (!path || !tables || n_tables < 1) return fail(&e, "store: bad arguments to store_write_tables");
    FILE *o;
    int64_t h = open_checked(path, &e);
    if (h < 0) return -1;
    H5Fclose((hid_t)h);
    hid_t f = open_out(path, &o, 0, &e);
    if (f < 0) return -1;
    return close_out(f, o, write_tables(f, tables, n_tables, attrs, n_attrs, &e), &e);
}
