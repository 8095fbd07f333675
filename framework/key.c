/* key: the owner's key file (see key.h and docs/key-schema.md). */
#include "key.h"
#include "config.h"
#include "job.h"
#include "outfile.h"
#include "plan.h"
#include "sha256.h"
#include "util.h"
#include "version.h"
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void key_free(pmi_key *k) {
    if (!k) return;
    free(k->samples); free(k->labels); free(k->indices);
    free(k->data_samples); free(k->data_labels); free(k->data_indices);
    for (int b = 0; b < SCORE_COUNT; b++) { free(k->refs[b]); free(k->data_refs[b]); }
    memset(k, 0, sizeof *k);
}

/* ---- export from a results file ------------------------------------------------------ */

/* The plan job called job_id of the config text stored in results; *p gets the plan. */
static const plan_job *find_job(const char *results, const char *job_id, plan **p, char *err, size_t errlen) {
    char *text = store_read_attr(results, "config");
    if (!text) { util_err(err, errlen, "%s: no /config text", results); return NULL; }
    cfg *c = cfg_create();
    char why[1024];
    int bad = cfg_load_string(c, text, results, why, sizeof why) || cfg_validate(c, why, sizeof why) ||
              plan_build(c, p, why, sizeof why);
    cfg_free(c);
    free(text);
    if (bad) { util_err(err, errlen, "%s: its /config does not build a plan: %s", results, why); return NULL; }
    for (int j = 0; j < (*p)->n_jobs; j++)
        if (!strcmp((*p)->jobs[j].id, job_id)) return &(*p)->jobs[j];
    util_err(err, errlen, "%s: no job '%s' in its plan (`pmi report` lists the jobs)", results, job_id);
    return NULL;
}

static void data_hash(const pmi_dataset *d, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, d->x, sizeof(float) * (size_t)d->n * (size_t)d->c * (size_t)d->h * (size_t)d->w);
    sha256_update(&c, d->y, sizeof(int32_t) * (size_t)d->n);
    sha256_final(&c, hex);
}

/* The samples ix[0..n) of the raw train set into malloc'd *samples and *labels; `what` names
 * them in the error for an index outside the set (another dataset?). */
static int gather_samples(const pmi_dataset *train, const int64_t *ix, int64_t n, const char *what, float **samples,
                          int32_t **labels, char *err, size_t errlen) {
    size_t per = (size_t)train->c * (size_t)train->h * (size_t)train->w;
    *samples = util_malloc(sizeof(float) * per * (size_t)(n > 0 ? n : 1));
    *labels = util_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        if (ix[i] < 0 || ix[i] >= train->n)
            return util_err(err, errlen, "%s index %lld is outside the dataset's %lld training samples (another dataset?)", what,
                            (long long)ix[i], (long long)train->n);
        memcpy(*samples + (size_t)i * per, train->x + (size_t)ix[i] * per, sizeof(float) * per);
        (*labels)[i] = train->y[ix[i]];
    }
    return 0;
}

/* The samples, labels and indices of the pool (N, m) from the raw train set. */
static int gather_pool(pmi_key *k, const pmi_dataset *train, const int64_t *pool, char *err, size_t errlen) {
    int64_t nm = (int64_t)k->N * k->m;
    k->indices = util_malloc(sizeof(int64_t) * (size_t)nm);
    memcpy(k->indices, pool, sizeof(int64_t) * (size_t)nm);
    return gather_samples(train, pool, nm, "pool", &k->samples, &k->labels, err, errlen);
}

/* The id of the reference model of replica r among the jobs of job's point and seed, or NULL. */
static const char *reference_id(const plan *p, const plan_job *job, int r) {
    for (int j = 0; j < p->n_jobs; j++) {
        const plan_job *x = &p->jobs[j];
        if (x->role == ROLE_REFERENCE && x->point == job->point && x->seed == job->seed && x->replica == r) return x->id;
    }
    return NULL;
}

/* The references' base scores (R, N, m) that the key's calibrated kinds need, read from the
 * reference jobs of job's seed; nothing when the key has no calibrated kind. */
static int gather_refs(pmi_key *k, const plan *p, const plan_job *job, const char *results, char *err, size_t errlen) {
    const pmi_params *pp = plan_params(p, job);
    int64_t nm = (int64_t)k->N * k->m;
    for (int q = 0; q < k->settings.n_kinds; q++) {
        pmi_score_kind kind = (pmi_score_kind)k->settings.kinds[q], base = pmi_score_base(kind);
        if (!pmi_score_calibrated(kind) || k->refs[base]) continue;
        if (pp->references < pmi_score_min_refs(kind))
            return util_err(err, errlen, "%s: score kind %s needs %d reference models, job %s's config has pmi.references = %d",
                            results, pmi_score_name(kind), pmi_score_min_refs(kind), job->id, pp->references);
        k->n_refs = pp->references;
        k->reference_fraction = pp->reference_fraction;
        k->refs[base] = util_malloc(sizeof(double) * (size_t)(nm * k->n_refs));
        for (int r = 0; r < k->n_refs; r++) {
            const char *id = reference_id(p, job, r);
            double *v = NULL;
            int N = 0, m = 0;
            char why[1024];
            if (!id) return util_err(err, errlen, "%s: the plan has no reference model %d for job %s", results, r, job->id);
            if (store_read_ref_scores(results, id, pmi_score_name(base), &v, &N, &m, why, sizeof why))
                return util_err(err, errlen, "%s (the %s scores of reference model %s, which calibrate the %s score; results "
                                "files written before pmi stored them cannot give a key with calibrated kinds: run the "
                                "experiment again)", why, pmi_score_name(base), id, pmi_score_name(kind));
            if (N != k->N || m != k->m) {
                free(v);
                return util_err(err, errlen, "%s: /jobs/%s/reference_scores/%s is (%d, %d), the pool is (%d, %d)", results, id,
                                pmi_score_name(base), N, m, k->N, k->m);
            }
            memcpy(k->refs[base] + r * nm, v, sizeof(double) * (size_t)nm);
            free(v);
        }
    }
    return 0;
}

/* The dataset evidence of job: its samples (data_split_evidence of the stored split), the run's
 * resamples and seed, and the references' scores on them for the calibrated kinds; nothing
 * without pmi.holdout. */
static int gather_data(pmi_key *k, const plan *p, const plan_job *job, const char *results, const pmi_dataset *train,
                       char *err, size_t errlen) {
    const pmi_params *pp = plan_params(p, job);
    int64_t side = plan_data_side(pp);
    if (!side) return 0;
    data_split sp = {.N = k->N, .m = k->m, .secret = k->secret_k, .pool = k->indices};
    int64_t dims[2], n = 0;
    int rc = store_read_split(results, job->id, "train", &sp.train, &sp.n_train, dims, err, errlen) ||
             store_read_split(results, job->id, "holdout", &sp.holdout, &sp.n_holdout, dims, err, errlen);
    int64_t *ix = rc ? NULL : data_split_evidence(&sp, side);
    if (!rc && !ix)
        rc = util_err(err, errlen, "%s: job %s: the stored split does not hold the dataset evidence's %lld samples per side",
                      results, job->id, (long long)side);
    free(sp.train); free(sp.holdout);
    if (rc) return -1;
    n = 2 * side;
    k->data_n = (int)side;
    k->data_indices = ix;
    if (gather_samples(train, ix, n, "dataset evidence", &k->data_samples, &k->data_labels, err, errlen)) return -1;
    k->data_permutations = pp->data_permutations;
    k->data_seed = plan_seed(job, SEED_VERIFY, 1);
    for (int b = 0; b < SCORE_COUNT; b++) {
        if (!k->refs[b]) continue;   /* the bases the calibrated kinds need (gather_refs) */
        k->data_refs[b] = util_malloc(sizeof(double) * (size_t)(n * k->n_refs));
        for (int r = 0; r < k->n_refs; r++) {
            char name[64], why[1024];
            double *v = NULL;
            int two = 0, m = 0;
            snprintf(name, sizeof name, "data_%s", pmi_score_name((pmi_score_kind)b));
            if (store_read_ref_scores(results, reference_id(p, job, r), name, &v, &two, &m, why, sizeof why))
                return util_err(err, errlen, "%s (the references' scores on the dataset evidence's samples)", why);
            if (two != 2 || m != side) {
                free(v);
                return util_err(err, errlen, "%s: reference_scores/%s of %s is (%d, %d), expected (2, %lld)", results, name,
                                reference_id(p, job, r), two, m, (long long)side);
            }
            memcpy(k->data_refs[b] + r * n, v, sizeof(double) * (size_t)n);
            free(v);
        }
    }
    return 0;
}

/* The run's pool audit of each score kind, from job's un-attacked /summary rows (NAN: not
 * audited, or a file written before the audit). */
static int gather_audit(pmi_key *k, const char *results, const char *job_id, char *err, size_t errlen) {
    store_row *rows = NULL;
    int64_t n = 0;
    for (int q = 0; q < SCORE_COUNT; q++) k->pool_audit[q] = NAN;
    if (store_read_summary(results, &rows, &n, err, errlen)) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (strcmp(rows[i].job_id, job_id) || strcmp(rows[i].attack, "none")) continue;
        for (int q = 0; q < k->settings.n_kinds; q++)
            if (pmi_score_parse(rows[i].score) == k->settings.kinds[q]) k->pool_audit[q] = rows[i].pool_audit_p;
    }
    free(rows);
    return 0;
}

int key_export(const char *results, const char *job_id, pmi_key *k, char *err, size_t errlen) {
    memset(k, 0, sizeof *k);
    plan *p = NULL;
    const plan_job *job = find_job(results, job_id, &p, err, errlen);
    if (!job) { plan_free(p); return -1; }
    if (job->role != ROLE_OWNER) {
        util_err(err, errlen, "%s: job %s is a %s model, not an owner: a key is an owner's (the jobs p<i>-s<j>-owner)",
                 results, job_id, plan_roles[job->role].name);
        plan_free(p);
        return -1;
    }
    const plan_point *pt = &p->points[job->point];
    const pmi_params *pp = &pt->params;
    int64_t *pool = NULL, n = 0, dims[2];
    pmi_dataset train = {0}, test = {0};
    int rc = store_read_split(results, job_id, "pool", &pool, &n, dims, err, errlen) ||
             store_read_job_int(results, job_id, "secret_k", &k->secret_k, err, errlen);
    if (!rc && (dims[0] != pp->N || dims[1] != pp->m))
        rc = util_err(err, errlen, "%s: job %s: split/pool is (%lld, %lld), its config says N=%d, m=%d", results, job_id,
                      (long long)dims[0], (long long)dims[1], pp->N, pp->m);
    if (!rc) rc = job_load_raw(pp, &train, &test, k->mean, k->sd, err, errlen);
    if (!rc) {
        k->N = pp->N; k->m = pp->m;
        k->c = train.c; k->h = train.h; k->w = train.w; k->classes = train.classes;
        rc = gather_pool(k, &train, pool, err, errlen);
    }
    if (!rc) {
        snprintf(k->dataset, sizeof k->dataset, "%.*s", (int)sizeof k->dataset - 1, pp->dataset);
        data_hash(&train, k->dataset_sha256);
        snprintf(k->normalize, sizeof k->normalize, "%s", cfg_norm_name(pp->normalize));
        k->settings = job_settings(pt);
        /* the run tests every kind from one stream (eval_permutations): the same seed for each */
        for (int q = 0; q < pt->n_kinds; q++) k->seeds[q] = plan_seed(job, SEED_VERIFY, 0);
        snprintf(k->arch, sizeof k->arch, "%.*s", (int)sizeof k->arch - 1, plan_arch(p, job));
        k->width = pp->width;
        snprintf(k->job_id, sizeof k->job_id, "%s", job_id);
        snprintf(k->source, sizeof k->source, "%.*s", (int)sizeof k->source - 1, results);
        snprintf(k->pmi_version, sizeof k->pmi_version, "%s", pmi_version);
        snprintf(k->git_commit, sizeof k->git_commit, "%s", pmi_git_commit);
        snprintf(k->config_hash, sizeof k->config_hash, "%s", p->config_hash);
        util_iso_now(k->created, sizeof k->created);
        rc = gather_refs(k, p, job, results, err, errlen) || gather_data(k, p, job, results, &train, err, errlen) ||
             gather_audit(k, results, job_id, err, errlen);
    }
    free(pool);
    data_free(&train); data_free(&test);
    plan_free(p);
    if (rc) key_free(k);
    return rc ? -1 : 0;
}

/* ---- writing ---------------------------------------------------------------------- */

static int put_attr(hid_t loc, const char *name, hid_t type, int n, const void *v) {
    hsize_t d = (hsize_t)n;
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, type, v) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return bad ? -1 : 0;
}

static int put_str(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = put_attr(loc, name, t, -1, &s);
    H5Tclose(t);
    return rc;
}

static int put_int(hid_t loc, const char *name, int v) { return put_attr(loc, name, H5T_NATIVE_INT, -1, &v); }

static int put_dset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const void *v) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return bad ? -1 : 0;
}

/* The group references/ with one (R, N, m) dataset per base kind held; none when R = 0. */
static int write_refs(hid_t f, const pmi_key *k) {
    if (k->n_refs < 1) return 0;
    hid_t g = H5Gcreate2(f, "references", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    hsize_t d3[3] = {(hsize_t)k->n_refs, (hsize_t)k->N, (hsize_t)k->m};
    int bad = 0;
    for (int b = 0; !bad && b < SCORE_COUNT; b++)
        if (k->refs[b]) bad = put_dset(g, pmi_score_name((pmi_score_kind)b), H5T_NATIVE_DOUBLE, 3, d3, k->refs[b]);
    H5Gclose(g);
    return bad;
}

/* The group dataset_evidence/ (samples, labels, indices, references/<base>; attributes n,
 * permutations, seed) when the key has it, and the root attribute pool_audit_p. */
static int write_data(hid_t f, const pmi_key *k) {
    if (put_attr(f, "pool_audit_p", H5T_NATIVE_DOUBLE, k->settings.n_kinds, k->pool_audit)) return -1;
    if (k->data_n < 1) return 0;
    hid_t g = H5Gcreate2(f, "dataset_evidence", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    hsize_t ds[4] = {2 * (hsize_t)k->data_n, (hsize_t)k->c, (hsize_t)k->h, (hsize_t)k->w};
    hsize_t d2[2] = {(hsize_t)k->n_refs, 2 * (hsize_t)k->data_n};
    int bad = put_int(g, "n", k->data_n) || put_int(g, "permutations", k->data_permutations) ||
              put_attr(g, "seed", H5T_NATIVE_UINT64, -1, &k->data_seed) ||
              put_dset(g, "samples", H5T_NATIVE_FLOAT, 4, ds, k->data_samples) ||
              put_dset(g, "labels", H5T_NATIVE_INT32, 1, ds, k->data_labels) ||
              put_dset(g, "indices", H5T_NATIVE_INT64, 1, ds, k->data_indices);
    hid_t r = bad || k->n_refs < 1 ? -1 : H5Gcreate2(g, "references", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!bad && k->n_refs >= 1 && r < 0) bad = 1;
    for (int b = 0; !bad && r >= 0 && b < SCORE_COUNT; b++)
        if (k->data_refs[b]) bad = put_dset(r, pmi_score_name((pmi_score_kind)b), H5T_NATIVE_DOUBLE, 2, d2, k->data_refs[b]);
    if (r >= 0) H5Gclose(r);
    H5Gclose(g);
    return bad;
}

static int write_fields(hid_t f, const pmi_key *k) {
    const store_settings *s = &k->settings;
    const char *kinds[SCORE_COUNT];
    for (int q = 0; q < s->n_kinds; q++) kinds[q] = pmi_score_name((pmi_score_kind)s->kinds[q]);
    int shape[3] = {k->c, k->h, k->w};
    hsize_t ds[5] = {(hsize_t)k->N, (hsize_t)k->m, (hsize_t)k->c, (hsize_t)k->h, (hsize_t)k->w};
    hsize_t nk = (hsize_t)s->n_kinds;
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tset_cset(vs, H5T_CSET_UTF8);
    int bad = put_str(f, "kind", "pmi-owner-key") || put_int(f, "key_schema_version", KEY_SCHEMA_VERSION) ||
              put_int(f, "N", k->N) || put_int(f, "m", k->m) || put_int(f, "secret_k", k->secret_k) ||
              put_attr(f, "input_shape", H5T_NATIVE_INT, 3, shape) || put_int(f, "classes", k->classes) ||
              put_str(f, "dataset", k->dataset) || put_str(f, "dataset_sha256", k->dataset_sha256) ||
              put_str(f, "normalize", k->normalize) || put_attr(f, "mean", H5T_NATIVE_DOUBLE, k->c, k->mean) ||
              put_attr(f, "std", H5T_NATIVE_DOUBLE, k->c, k->sd) || put_str(f, "decide", s->decide) ||
              put_attr(f, "alphas", H5T_NATIVE_DOUBLE, s->n_alphas, s->alphas) ||
              put_int(f, "permutations", s->permutations) || put_attr(f, "score_kinds", vs, s->n_kinds, kinds) ||
              put_str(f, "arch", k->arch) || put_int(f, "width", k->width) || put_str(f, "job_id", k->job_id) ||
              put_str(f, "source", k->source) || put_str(f, "pmi_version", k->pmi_version) ||
              put_str(f, "git_commit", k->git_commit) || put_str(f, "config_hash", k->config_hash) ||
              put_str(f, "created", k->created) || put_int(f, "references", k->n_refs) ||
              put_attr(f, "reference_fraction", H5T_NATIVE_DOUBLE, -1, &k->reference_fraction) || write_refs(f, k) ||
              put_dset(f, "samples", H5T_NATIVE_FLOAT, 5, ds, k->samples) ||
              put_dset(f, "labels", H5T_NATIVE_INT32, 2, ds, k->labels) ||
              put_dset(f, "indices", H5T_NATIVE_INT64, 2, ds, k->indices) ||
              put_dset(f, "permutation_seeds", H5T_NATIVE_UINT64, 1, &nk, k->seeds) || write_data(f, k);
    H5Tclose(vs);
    return bad;
}

int key_write(const char *path, const pmi_key *k, char *err, size_t errlen) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    FILE *o = outfile_open(path, OUTFILE_SECRET, 0, err, errlen);
    if (!o) return -1;
    hid_t f = H5Fcreate(outfile_name(o), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = f < 0 || write_fields(f, k);
    if (f >= 0 && H5Fclose(f) < 0) bad = 1;
    if (bad) {
        outfile_discard(o);
        return util_err(err, errlen, "%s: cannot write the key file: HDF5 failed writing its temporary file", path);
    }
    return outfile_close(o, err, errlen);
}

/* ---- reading ------------------------------------------------------------------------ */

/* A numeric attribute of n elements (n < 0: scalar) read as type; -1 when absent or another size. */
static int get_attr(hid_t f, const char *name, hid_t type, int n, void *v) {
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a), t = a < 0 ? -1 : H5Aget_type(a);
    hssize_t np = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int ok = t >= 0 && H5Tget_class(t) != H5T_STRING && np == (n < 0 ? 1 : n) && H5Aread(a, type, v) >= 0;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

/* A scalar string attribute into buf (at most len - 1 characters). */
static int get_str(hid_t f, const char *name, char *buf, size_t len) {
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    int ok = 0;
    if (t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 && H5Sget_simple_extent_npoints(sp) == 1) {
        char *s = NULL;
        hid_t mt = H5Tcopy(t);
        if (H5Aread(a, mt, &s) >= 0 && s && strlen(s) < len) { snprintf(buf, len, "%s", s); ok = 1; }
        if (s) H5free_memory(s);
        H5Tclose(mt);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

/* A dataset of exactly the given shape, read as type into a malloc'd array. */
static void *get_dset(hid_t f, const char *name, hid_t type, size_t elem, int rank, const hsize_t *dims) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t got[5] = {0};
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == rank && H5Sget_simple_extent_dims(sp, got, NULL) == rank;
    size_t n = 1;
    for (int i = 0; ok && i < rank; i++) { ok = got[i] == dims[i]; n *= (size_t)dims[i]; }
    void *v = ok ? util_malloc(elem * (n ? n : 1)) : NULL;
    if (v && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) { free(v); v = NULL; }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return v;
}

static int get_kinds(hid_t f, store_settings *s) {
    if (H5Aexists(f, "score_kinds") <= 0) return -1;
    hid_t a = H5Aopen(f, "score_kinds", H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a), t = a < 0 ? -1 : H5Aget_type(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 && n >= 1 && n <= SCORE_COUNT;
    char *names[SCORE_COUNT] = {0};
    if (ok) {
        hid_t mt = H5Tcopy(t);
        ok = H5Aread(a, mt, names) >= 0;
        H5Tclose(mt);
    }
    for (int q = 0; ok && q < n; q++) ok = (s->kinds[q] = pmi_score_parse(names[q] ? names[q] : "")) >= 0;
    for (int q = 0; q < SCORE_COUNT; q++) if (names[q]) H5free_memory(names[q]);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (!ok) return -1;
    s->n_kinds = (int)n;
    return 0;
}

/* Number of elements of attribute name (0 when absent). */
static int attr_len(hid_t f, const char *name) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), sp = a < 0 ? -1 : H5Aget_space(a);
    int n = sp < 0 ? 0 : (int)H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return n;
}

#define NEED(cond, ...) do { if (!(cond)) return util_err(err, errlen, __VA_ARGS__); } while (0)

/* Version 1 holds no references: a calibrated score kind cannot be verified with it. */
static int read_refs_v1(const pmi_key *k, const char *path, char *err, size_t errlen) {
    for (int q = 0; q < k->settings.n_kinds; q++)
        NEED(!pmi_score_calibrated((pmi_score_kind)k->settings.kinds[q]),
             "%s: key schema version 1 holds no reference scores, but its score_kinds list the calibrated kind %s", path,
             pmi_score_name((pmi_score_kind)k->settings.kinds[q]));
    return 0;
}

/* references, reference_fraction and, per calibrated kind, references/<base> (R, N, m), finite. */
static int read_refs(hid_t f, const char *path, pmi_key *k, char *err, size_t errlen) {
    NEED(!get_attr(f, "references", H5T_NATIVE_INT, -1, &k->n_refs) && k->n_refs >= 0 && k->n_refs <= 100000,
         "%s: key field references is missing or not a count in [0, 100000]", path);
    NEED(!get_attr(f, "reference_fraction", H5T_NATIVE_DOUBLE, -1, &k->reference_fraction) &&
         (k->n_refs == 0 || (k->reference_fraction > 0 && k->reference_fraction <= 1)),
         "%s: key field reference_fraction is missing or outside (0, 1]", path);
    int64_t nm = (int64_t)k->N * k->m;
    NEED((double)nm * k->n_refs < (double)(1u << 31), "%s: key reference scores are too large", path);
    hsize_t d3[3] = {(hsize_t)k->n_refs, (hsize_t)k->N, (hsize_t)k->m};
    for (int q = 0; q < k->settings.n_kinds; q++) {
        pmi_score_kind kind = (pmi_score_kind)k->settings.kinds[q], base = pmi_score_base(kind);
        if (!pmi_score_calibrated(kind) || k->refs[base]) continue;
        const char *bn = pmi_score_name(base);
        NEED(k->n_refs >= pmi_score_min_refs(kind), "%s: key score kind %s needs %d reference models, key field references is %d",
             path, pmi_score_name(kind), pmi_score_min_refs(kind), k->n_refs);
        char name[64];
        snprintf(name, sizeof name, "references/%s", bn);
        NEED((k->refs[base] = get_dset(f, name, H5T_NATIVE_DOUBLE, 8, 3, d3)),
             "%s: key dataset references/%s (for score kind %s) is missing or not (references, N, m) = (%d, %d, %d)", path, bn,
             pmi_score_name(kind), k->n_refs, k->N, k->m);
        for (int64_t i = 0; i < nm * k->n_refs; i++)
            NEED(isfinite(k->refs[base][i]), "%s: key dataset references/%s holds a value that is not finite (reference %lld, sample %lld)",
                 path, bn, (long long)(i / nm), (long long)(i % nm));
    }
    return 0;
}

/* Version 3: pool_audit_p (one per score kind; NaN allowed) and the optional dataset_evidence/
 * group, checked like the pool's fields. */
static int read_data(hid_t f, const char *path, pmi_key *k, char *err, size_t errlen) {
    NEED(!get_attr(f, "pool_audit_p", H5T_NATIVE_DOUBLE, k->settings.n_kinds, k->pool_audit),
         "%s: key field pool_audit_p is missing or not one value per score kind (%d)", path, k->settings.n_kinds);
    if (H5Lexists(f, "dataset_evidence", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(f, "dataset_evidence", H5P_DEFAULT);
    NEED(g >= 0, "%s: key group dataset_evidence cannot be opened", path);
    int n = 0, perms = 0, ok = !get_attr(g, "n", H5T_NATIVE_INT, -1, &n) && n >= 1 && n <= 10000000 &&
                             !get_attr(g, "permutations", H5T_NATIVE_INT, -1, &perms) && perms >= 1 && perms <= 100000000 &&
                             !get_attr(g, "seed", H5T_NATIVE_UINT64, -1, &k->data_seed) &&
                             2.0 * n * k->c * k->h * k->w < (double)(1u << 31) && 2.0 * n * k->n_refs < (double)(1u << 31);
    hsize_t ds[4] = {2 * (hsize_t)n, (hsize_t)k->c, (hsize_t)k->h, (hsize_t)k->w}, d2[2] = {(hsize_t)k->n_refs, 2 * (hsize_t)n};
    if (ok) {
        k->data_n = n; k->data_permutations = perms;
        k->data_samples = get_dset(g, "samples", H5T_NATIVE_FLOAT, 4, 4, ds);
        k->data_labels = get_dset(g, "labels", H5T_NATIVE_INT32, 4, 1, ds);
        k->data_indices = get_dset(g, "indices", H5T_NATIVE_INT64, 8, 1, ds);
    }
    ok = ok && k->data_samples && k->data_labels;
    for (int64_t i = 0; ok && i < 2 * (int64_t)n; i++) ok = k->data_labels[i] >= 0 && k->data_labels[i] < k->classes;
    for (int b = 0; ok && b < SCORE_COUNT; b++) {
        if (!k->refs[b]) continue;
        char name[64];
        snprintf(name, sizeof name, "references/%s", pmi_score_name((pmi_score_kind)b));
        ok = (k->data_refs[b] = get_dset(g, name, H5T_NATIVE_DOUBLE, 8, 2, d2)) != NULL;
        for (int64_t i = 0; ok && i < 2 * (int64_t)n * k->n_refs; i++) ok = isfinite(k->data_refs[b][i]);
    }
    H5Gclose(g);
    NEED(ok, "%s: key group dataset_evidence is incomplete or malformed (expected attributes n >= 1, permutations >= 1, seed; "
         "samples (2n, c, h, w), labels (2n) in [0, classes) and, per calibrated base kind, finite references/<base> "
         "(references, 2n))", path);
    return 0;
}

static int read_fields(hid_t f, const char *path, pmi_key *k, char *err, size_t errlen) {
    char kind[32] = "";
    int ver = 0, shape[3];
    store_settings *s = &k->settings;
    NEED(!get_str(f, "kind", kind, sizeof kind) && !strcmp(kind, "pmi-owner-key"),
         "%s: not a pmi owner key (root attribute kind is not \"pmi-owner-key\")", path);
    NEED(!get_attr(f, "key_schema_version", H5T_NATIVE_INT, -1, &ver) && ver >= 1 && ver <= KEY_SCHEMA_VERSION,
         "%s: key schema version %d, this pmi reads versions 1 to %d", path, ver, KEY_SCHEMA_VERSION);
    NEED(!get_attr(f, "N", H5T_NATIVE_INT, -1, &k->N) && !get_attr(f, "m", H5T_NATIVE_INT, -1, &k->m) &&
         k->N >= 2 && k->N <= PMI_MAX_N && k->m >= 1 && k->m <= 1000000,
         "%s: key field N or m is missing or out of range (N in [2, %d], m >= 1)", path, PMI_MAX_N);
    NEED(!get_attr(f, "secret_k", H5T_NATIVE_INT, -1, &k->secret_k) && k->secret_k >= 0 && k->secret_k < k->N,
         "%s: key field secret_k is missing or outside [0, N)", path);
    NEED(!get_attr(f, "input_shape", H5T_NATIVE_INT, 3, shape) && shape[0] >= 1 && shape[0] <= 3 && shape[1] >= 1 &&
         shape[2] >= 1 && shape[1] <= 4096 && shape[2] <= 4096,
         "%s: key field input_shape is missing or not (c, h, w) with 1..3 channels", path);
    k->c = shape[0]; k->h = shape[1]; k->w = shape[2];
    NEED(!get_attr(f, "classes", H5T_NATIVE_INT, -1, &k->classes) && k->classes >= 2 && k->classes <= 100000,
         "%s: key field classes is missing or outside [2, 100000]", path);
    NEED(!get_str(f, "normalize", k->normalize, sizeof k->normalize) &&
         (!strcmp(k->normalize, "none") || !strcmp(k->normalize, "unit") || !strcmp(k->normalize, "standard")),
         "%s: key field normalize is missing or not none, unit or standard", path);
    NEED(!get_attr(f, "mean", H5T_NATIVE_DOUBLE, k->c, k->mean) && !get_attr(f, "std", H5T_NATIVE_DOUBLE, k->c, k->sd),
         "%s: key field mean or std is missing or not %d values (one per channel of input_shape)", path, k->c);
    NEED(!get_str(f, "decide", s->decide, sizeof s->decide) && pmi_pvalue_parse(s->decide) >= 0,
         "%s: key field decide is missing or not rank, perm, welch or mw", path);
    s->n_alphas = attr_len(f, "alphas");
    NEED(s->n_alphas >= 1 && s->n_alphas <= CFG_MAX_ALPHAS && !get_attr(f, "alphas", H5T_NATIVE_DOUBLE, s->n_alphas, s->alphas),
         "%s: key field alphas is missing or not 1..%d values", path, CFG_MAX_ALPHAS);
    for (int a = 0; a < s->n_alphas; a++) NEED(s->alphas[a] > 0 && s->alphas[a] < 1, "%s: key alpha %g is outside (0, 1)", path, s->alphas[a]);
    NEED(!get_attr(f, "permutations", H5T_NATIVE_INT, -1, &s->permutations) && s->permutations >= 1 && s->permutations <= 100000000,
         "%s: key field permutations is missing or outside [1, 100000000] (pmi.permutations' range)", path);
    NEED(!get_kinds(f, s), "%s: key field score_kinds is missing or not 1..%d known score kinds", path, SCORE_COUNT);
    hsize_t nk = (hsize_t)s->n_kinds;
    uint64_t *seeds = get_dset(f, "permutation_seeds", H5T_NATIVE_UINT64, 8, 1, &nk);
    NEED(seeds, "%s: key dataset permutation_seeds is missing or not one seed per score kind (%d)", path, s->n_kinds);
    memcpy(k->seeds, seeds, sizeof *seeds * nk);
    free(seeds);
    get_str(f, "dataset", k->dataset, sizeof k->dataset);
    get_str(f, "dataset_sha256", k->dataset_sha256, sizeof k->dataset_sha256);
    get_str(f, "arch", k->arch, sizeof k->arch);
    get_attr(f, "width", H5T_NATIVE_INT, -1, &k->width);
    get_str(f, "job_id", k->job_id, sizeof k->job_id);
    get_str(f, "source", k->source, sizeof k->source);
    get_str(f, "pmi_version", k->pmi_version, sizeof k->pmi_version);
    get_str(f, "git_commit", k->git_commit, sizeof k->git_commit);
    get_str(f, "config_hash", k->config_hash, sizeof k->config_hash);
    get_str(f, "created", k->created, sizeof k->created);
    hsize_t ds[5] = {(hsize_t)k->N, (hsize_t)k->m, (hsize_t)k->c, (hsize_t)k->h, (hsize_t)k->w};
    NEED((double)k->N * k->m * k->c * k->h * k->w < (double)(1u << 31), "%s: key samples are too large", path);
    NEED((k->samples = get_dset(f, "samples", H5T_NATIVE_FLOAT, 4, 5, ds)),
         "%s: key dataset samples is missing or not (N, m, c, h, w) = (%d, %d, %d, %d, %d)", path, k->N, k->m, k->c, k->h, k->w);
    for (int64_t i = 0; i < (int64_t)k->N * k->m * k->c * k->h * k->w; i++)
        NEED(isfinite(k->samples[i]), "%s: key dataset samples holds a value that is not finite (sample %lld of N*m)", path, (long long)(i / ((int64_t)k->c * k->h * k->w)));
    NEED((k->labels = get_dset(f, "labels", H5T_NATIVE_INT32, 4, 2, ds)),
         "%s: key dataset labels is missing or not (N, m) = (%d, %d)", path, k->N, k->m);
    for (int64_t i = 0; i < (int64_t)k->N * k->m; i++)
        NEED(k->labels[i] >= 0 && k->labels[i] < k->classes, "%s: key label %d is outside [0, classes = %d)", path, k->labels[i], k->classes);
    k->indices = get_dset(f, "indices", H5T_NATIVE_INT64, 8, 2, ds);   /* provenance only */
    for (int q = 0; q < SCORE_COUNT; q++) k->pool_audit[q] = NAN;
    if (ver == 1) return read_refs_v1(k, path, err, errlen);
    return read_refs(f, path, k, err, errlen) || (ver >= 3 && read_data(f, path, k, err, errlen)) ? -1 : 0;
}

int key_read(const char *path, pmi_key *k, char *err, size_t errlen) {
    memset(k, 0, sizeof *k);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, R_OK)) return util_err(err, errlen, "%s: cannot open the key file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return util_err(err, errlen, "%s: not an HDF5 file (expected an owner key from `pmi key export`)", path);
    int rc = read_fields(f, path, k, err, errlen);
    H5Fclose(f);
    if (rc) key_free(k);
    return rc;
}
