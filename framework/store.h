/* store: the HDF5 results schema, per-job shards and their merge.
 *
 * Each job writes one shard, results/<experiment>/shards/<job_id>.h5, atomically: it is
 * written under a temporary name, flushed, fsync'd and renamed, and carries the root
 * attribute complete=1 only then. store_merge() joins the shards of an experiment into
 * results/<experiment>/results.h5 and builds the tidy /summary table. The schema is
 * documented in docs/results-schema.md; STORE_SCHEMA_VERSION changes with it, and a file
 * of another version is refused with a message naming both versions. */
#ifndef PMI_STORE_H
#define PMI_STORE_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "pmi.h"
#include "data.h"
#include "weights.h"

#define STORE_SCHEMA_VERSION 3
#define STORE_NAME 64

/* The decision settings of a run, stored as root attributes (decide, alphas, permutations,
 * score_kinds) of every shard and merged file, so that readers never parse the config.
 * All zero (a memset struct) means "not recorded": the attributes are then left out, and
 * store_read_settings() refuses the file. When recorded, they are checked before anything is
 * written: decide is a pmi_pvalue_name(), 1..CFG_MAX_ALPHAS alphas in (0, 1), permutations
 * >= 0, 1..SCORE_COUNT distinct score kinds, and every kind an evaluation holds is listed. */
typedef struct {
    char decide[16];               /* the decision p-value, pmi_pvalue_name(): "perm", "rank", ... */
    double alphas[CFG_MAX_ALPHAS]; /* significance levels (pmi.alpha), in config order */
    int n_alphas;
    int permutations;              /* resamples of the permutation test (pmi.permutations) */
    int n_kinds;                   /* score kinds evaluated (pmi.scores) */
    int kinds[SCORE_COUNT];        /* their pmi_score_kind; kinds[0] is the decision score */
} store_settings;

typedef struct {
    char pmi_version[STORE_NAME];
    char git_commit[STORE_NAME];
    char torch_version[STORE_NAME];
    char device[128];
    char host[256];                /* "<hostname>, <CPU model>, <n> cores"; "" = not recorded */
    char started[STORE_NAME];      /* ISO 8601 UTC */
    char finished[STORE_NAME];
    const char *config;            /* full effective INI text */
    char config_hash[17];          /* plan_config_hash of config (seed count aside); "" = not recorded */
    store_settings settings;       /* the decision settings; see store_settings */
} store_provenance;

/* One evaluation of one model: the un-attacked model (attack "none") or an attacked one. */
typedef struct {
    char attack[STORE_NAME];       /* attack instance name from [attack.<name>], or "none" */
    char type[STORE_NAME];         /* attack type, or "none" (chains: "prune+ftal") */
    char params[256];              /* "sparsity=0.5,global=1" */
    char strength_key[32];         /* name of the swept parameter ("sparsity"); "" when none */
    double strength;               /* value of the swept parameter; NAN for "none" */
    double test_acc;
    double sparsity;               /* fraction of prunable weights that are zero */
    int n_kinds;                   /* score kinds evaluated */
    int kinds[SCORE_COUNT];        /* their pmi_score_kind */
    double *sample_scores;         /* (n_kinds, N, m) */
    double *pool_mean;             /* (n_kinds, N) */
    double *pool_median;           /* (n_kinds, N) */
    pmi_result res[SCORE_COUNT];   /* per evaluated kind, same order as kinds */
    pmi_data_result data[SCORE_COUNT]; /* dataset evidence per kind (n = 0: none), same order */
    double *data_scores;           /* (n_kinds, 2 n): eval's working scores of S then H; not stored */
    double wall_s;
    const weights *model;          /* the evaluated model's state ([store] save_models), or NULL */
} store_eval;

typedef struct {
    char id[128];                  /* unique within the experiment, file-name safe */
    char experiment[STORE_NAME];
    char dataset[STORE_NAME];
    char arch[STORE_NAME];
    char role[STORE_NAME];         /* owner | clean | indep-data | indep-seed | indep-arch | reference */
    char point[256];               /* sweep point label, "" without a sweep */
    int point_index, seed, replica;/* replica: index among independent models of one kind */
    int N, m, secret_k;
    int trained_on_k;              /* 1 if D_k was in this model's training data */
    int independent;               /* 1 if the model counts toward the false-positive rate */
    int owner_data;                /* 1 if trained on the dataset evidence's S side (plan_role_info) */
    double train_acc, test_acc, wall_s;
    int train_samples;             /* samples the model trained on (owner: n_train + repeat * m) */
    const data_split *split;
    const double *loss_curve; int epochs;
    store_eval *evals; int n_evals;
    /* A reference model's base scores on the pool, (N, m) per base kind (loss, logit: see
     * pmi_score_base()), exactly as they calibrated its seed's models; NULL: not written. */
    const double *ref_scores[SCORE_COUNT];
    /* The same on the dataset evidence's samples, (2, data_side) per base kind (S, then H); NULL: none. */
    const double *ref_data_scores[SCORE_COUNT];
    int holdout, data_side;        /* pmi.holdout and the dataset evidence's samples per side (0: none) */
    /* The pool audit of its seed (pmi.h), per pmi_score_kind: NAN where not audited (no
     * references, calibrated kinds); NULL: none at all. */
    const double *pool_audit;
} store_job;

/* Writes a complete shard atomically. Returns 0, or -1 with err (nothing left behind). */
int store_write_shard(const char *path, const store_job *job, const store_provenance *prov,
                      char *err, size_t errlen);
/* 1 if path is a complete shard of this schema version, 0 otherwise (missing, partial, other). */
int store_shard_complete(const char *path);
/* Merges the shards of one plan, paths[0..n) in plan order, into out_path (atomically
 * replaced). Every shard must be complete and carry prov->config_hash (the root attribute
 * config_hash): a shard of another configuration is an error naming it; a missing or
 * incomplete one too, unless partial, when it is left out and the output records partial=1.
 * The output records jobs_planned and jobs_merged, and the free space of out_path's folder is
 * checked first (an error naming what is needed and what is free). Returns 0, or -1 with err
 * and out_path untouched (no temporary file left). *n_merged (optional) gets the count. */
int store_merge_plan(const char *const *paths, int n, int partial, const char *out_path,
                     const store_provenance *prov, int *n_merged, char *err, size_t errlen);
/* Removes the temporary files ("*.h5.tmp-<pid>@<host>", or "*.h5.tmp-<pid>" of older runs) in
 * dir whose writer process no longer exists on this host (left by a killed run); another
 * host's are kept. *removed (optional) gets the count. -1 if dir cannot be read. */
int store_clean_temps(const char *dir, int *removed);
/* Merges every complete *.h5 in shard_dir into out_path (atomically replaced), whatever plan or
 * configuration wrote them: for tools and tests; pmi itself merges with store_merge_plan(). */
int store_merge(const char *shard_dir, const char *out_path, const store_provenance *prov,
                char *err, size_t errlen);
/* store_merge() with counts. Shards are taken in file-name order; each one's /jobs/<id>
 * groups are copied and its /summary rows appended. The root attributes come from prov; when
 * prov->config is NULL the config text of the first merged shard is used, and when
 * prov->settings is all zero the first merged shard's settings are; a shard whose decide,
 * alphas or score kinds differ from those is an error (permutations may differ, as in a sweep
 * over pmi.permutations). *n_merged (optional)
 * gets the number of shards merged; *n_skipped (optional) the number left out: temporary files
 * ("*.h5.tmp-*") and *.h5 files that are not complete shards of this schema version (out_path
 * itself, if it lies in shard_dir, is neither). A job id present in two shards, or a folder
 * without any complete shard, is an error. Returns 0, or -1 with err and out_path untouched. */
int store_merge_ex(const char *shard_dir, const char *out_path, const store_provenance *prov,
                   int *n_merged, int *n_skipped, char *err, size_t errlen);
/* Opens path read-only and checks its schema version; -1 with a message naming both versions
 * (or why it cannot be read) otherwise. Returns an hid_t >= 0 as int64_t; close it with
 * store_close() (or H5Fclose). */
int64_t store_open(const char *path, char *err, size_t errlen);
/* Closes a file opened by store_open(). No operation is performed if file < 0. */
void store_close(int64_t file);

/* One /summary row: one model, one evaluation, one score kind. */
typedef struct {
    char job_id[128];
    char experiment[STORE_NAME], dataset[STORE_NAME], arch[STORE_NAME], role[STORE_NAME];
    char point[256];
    int32_t seed, replica, N, m, secret_k, trained_on_k, independent;
    char attack[STORE_NAME], attack_type[STORE_NAME], params[256], strength_key[32];
    double strength, test_acc, sparsity;
    char score[16];
    int32_t identified;
    double margin;
    double p_rank, p_perm, p_welch, p_mw;
    double p_nway_rank, p_nway_perm, p_nway_welch, p_nway_mw;
    double z_perm;                 /* D_k's mean in sd of the permutation means (pmi_result.z_perm) */
    /* Added within schema 3 (files written before them read them as NAN, owner_data as 0): */
    double data_p, data_z, data_gap;  /* dataset evidence (pmi_data_result); NAN: none */
    double pool_audit_p;           /* the seed's pool audit of this kind; NAN: not audited */
    double p_pool;                 /* the decision p-value (settings' decide) of this kind, NAN when the
                                    * audit refuses it (pmi_pool_p) */
    double p_combined;             /* pmi_combine_p(p_pool, data_p): the verdict's p-value */
    int32_t owner_data;            /* 1 if trained on the dataset evidence's S side: no null model for it */
} store_row;

/* The verdict's p-value of a row with decision p-value `decide` (a pmi_pvalue): the pool
 * evidence (store_row_p) unless the pool audit refuses it (pmi_pool_p), combined with the
 * dataset evidence (pmi_combine_p). For a row without either (older files) it is store_row_p.
 * With the run's own decide this is the stored p_combined. */
double store_row_verdict_p(const store_row *r, int decide);

/* The p-value of kind `which` (a pmi_pvalue) of a row; NAN for another index. */
double store_row_p(const store_row *r, int which);

/* Reads /summary of a shard or merged file (after the store_open() version check) into a
 * malloc'd array of *n rows (*rows is NULL when the table is empty). Returns 0, or -1 with err. */
int store_read_summary(const char *path, store_row **rows, int64_t *n, char *err, size_t errlen);
/* Reads a root attribute string ("device", "started", ...) into a malloc'd string, or NULL.
 * "config" is stored as the root dataset /config: a name that is not a root attribute is
 * looked up as a scalar string dataset at the root. NULL also for a non-string attribute. */
char *store_read_attr(const char *path, const char *name);

/* Reads the decision settings (the root attributes decide, alphas, permutations and
 * score_kinds) of a shard or merged file, after the store_open() version check. Returns 0, or
 * -1 with err naming the file and the attribute that is missing or invalid (a file written
 * without settings, an unknown p-value or score kind, more alphas than CFG_MAX_ALPHAS). */
int store_read_settings(const char *path, store_settings *s, char *err, size_t errlen);

/* ---- the report tables (/report, written by `pmi report --store`) ------------------ */

typedef enum { STORE_COL_INT = 0, STORE_COL_DOUBLE, STORE_COL_STR } store_col_type;

/* One column of n values: i (int32), d (double; NAN = missing) or s (strings) by type. */
typedef struct {
    const char *name;
    store_col_type type;
    const int32_t *i;
    const double *d;
    const char *const *s;
} store_column;

/* One table: ncols columns of nrows values each. */
typedef struct {
    const char *name, *caption;
    const store_column *cols;
    int ncols;
    int64_t nrows;
} store_table;

/* Replaces the group /report of the results file `path` by one group per table,
 * /report/<table>/<column>, each column a 1-d dataset (int, double or string) of nrows, with
 * the table's caption and its column names in order as the group attributes `caption` and
 * `columns`, and the attributes of `attrs` (n_attrs
 * name/value pairs of strings) on /report. Atomic: the file is copied to "<path>.tmp-<pid>@<host>"
 * (outfile.h; the file's mode kept), changed there and renamed onto path; on any failure path
 * is untouched and the copy removed.
 * Returns 0, or -1 with err naming the file and what failed. */
int store_write_tables(const char *path, const store_table *tables, int n_tables, const char *const *attrs,
                       int n_attrs, char *err, size_t errlen);

/* ---- reading one job's evaluations (added for plot) ------------------------------- */

/* The attributes of one evaluation group /jobs/<id>/evals/<i>. */
typedef struct {
    char attack[STORE_NAME], type[STORE_NAME], params[256], strength_key[32];
    double strength, test_acc, sparsity;
} store_eval_info;

/* Reads the attributes of every evaluation of job job_id, in index order (evals/0, 1, ...),
 * into a malloc'd array of *n entries. Returns 0, or -1 with err naming the file and the
 * missing group or attribute (unknown job, no evals group, a gap in the numbering). */
int store_read_evals(const char *path, const char *job_id, store_eval_info **evals, int *n,
                     char *err, size_t errlen);
/* Reads /jobs/<job_id>/evals/<eval_index>/<kind>/sample_scores into a malloc'd (N, m)
 * row-major array *scores, with its shape in *N and *m. Returns 0, or -1 with err naming the
 * object that is missing or not a 2-d numeric dataset (*scores is then NULL). */
int store_read_scores(const char *path, const char *job_id, int eval_index, const char *kind,
                      double **scores, int *N, int *m, char *err, size_t errlen);

/* Reads /jobs/<job_id>/reference_scores/<kind> (a reference model's base scores that calibrated
 * its seed's models; kind is "loss" or "logit", or "data_loss", "data_logit" on the dataset
 * evidence's samples, shaped (2, data_side)) into a malloc'd (N, m) row-major array *scores,
 * with its shape in *N and *m. Returns 0, or -1 with err naming the object that is missing (a
 * file written before pmi stored them, or a job that is not a reference model) or malformed. */
int store_read_ref_scores(const char *path, const char *job_id, const char *kind, double **scores, int *N, int *m,
                          char *err, size_t errlen);

/* Reads the model state stored with evaluation eval_index of job job_id
 * (/jobs/<id>/evals/<i>/model, written when [store] save_models is on) into *w (free with
 * weights_free). Returns 0, or -1 with err naming the file and what is missing (no such job or
 * evaluation, a file written without save_models) or malformed. */
int store_read_model(const char *path, const char *job_id, int eval_index, weights *w, char *err, size_t errlen);
/* Reads the int64 dataset /jobs/<job_id>/split/<name> into a malloc'd array of *n entries
 * (its dims, up to 2, in dims[]). Returns 0, or -1 with err. */
int store_read_split(const char *path, const char *job_id, const char *name, int64_t **v, int64_t *n, int64_t dims[2],
                     char *err, size_t errlen);
/* Reads the int attribute name of /jobs/<job_id> into *v. Returns 0, or -1 with err. */
int store_read_job_int(const char *path, const char *job_id, const char *name, int *v, char *err, size_t errlen);

#endif
