/* report: paper-style tables from a results file's /summary (see report.h). */
#include "report.h"
#include "outfile.h"
#include "pmi.h"
#include "store.h"
#include "util.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int report_format_parse(const char *s, report_format *f) {
    static const char *names[] = {"md", "csv", "latex", "json"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) { *f = (report_format)i; return 0; }
    return -1;
}

report_options report_default_options(void) {
    return (report_options){REPORT_MD, NULL, NULL, NULL};
}

/* ---- intervals ------------------------------------------------------------------------ */

/* Mean and Student-t 95% interval of x[0..n), clipped to [lo_bound, hi_bound]. */
static void mean_ci(const double *x, int n, double lo_bound, double hi_bound, double *mean, double *lo, double *hi) {
    double half;
    if (n == 0) { *mean = *lo = *hi = NAN; return; }
    pmi_mean_ci95(x, n, mean, &half);
    *lo = isnan(half) ? NAN : fmax(lo_bound, *mean - half);
    *hi = isnan(half) ? NAN : fmin(hi_bound, *mean + half);
}

/* ---- a table: typed columns, buffered rows, three renderers --------------------------- */

typedef enum {
    C_STR,      /* s */
    C_INT,      /* k */
    C_P,        /* v, a p-value or score: %.2g */
    C_ACC,      /* v, an accuracy: %.4f */
    C_MEAN,     /* v [lo, hi], a mean with its interval */
    C_RATE,     /* k of n, its rate v [lo, hi] */
    C_ROLE,     /* s, with replica k shown when n (independent) */
} col_kind;

typedef struct {
    const char *name;              /* shown (md, latex); "@<alpha>" appended when per_alpha */
    const char *csv;               /* the csv name (stem of X_mean, X_k, ...) */
    col_kind kind;
    int per_alpha;                 /* one value per alpha */
} column;

typedef struct { char *s; double v, lo, hi; int k, n; } cell;

#define MAX_COLS 24

typedef struct {
    const char *name, *caption;
    column cols[MAX_COLS];
    int ncols, nkey;               /* the first nkey columns identify a row */
    const double *alphas; int n_alphas;
    const char *score, *decision;  /* csv only: constant first columns, when set */
    cell *cells;                   /* (nrows, ncols, n_alphas) */
    int nrows, cap;
} table;

static void table_init(table *t, const char *name, const char *caption, int nkey, const double *alphas, int n_alphas) {
    memset(t, 0, sizeof *t);
    t->name = name; t->caption = caption; t->nkey = nkey; t->alphas = alphas; t->n_alphas = n_alphas;
}

static void table_col(table *t, const char *name, const char *csv, col_kind kind, int per_alpha) {
    if (t->ncols == MAX_COLS) { fprintf(stderr, "report: table %s has more than %d columns\n", t->name, MAX_COLS); abort(); }
    t->cols[t->ncols++] = (column){name, csv, kind, per_alpha};
}

/* Starts a row; the cells are then set with the cell_* calls on column c (and alpha a). */
static void table_row(table *t) {
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->cells = util_realloc(t->cells, sizeof(cell) * (size_t)t->cap * (size_t)(t->ncols * t->n_alphas));
    }
    size_t w = (size_t)(t->ncols * t->n_alphas);
    cell *r = t->cells + (size_t)t->nrows * w;
    for (size_t i = 0; i < w; i++) r[i] = (cell){NULL, NAN, NAN, NAN, 0, 0};
    t->nrows++;
}

static cell *cell_at(const table *t, int row, int c, int a) {
    return t->cells + ((size_t)row * (size_t)t->ncols + (size_t)c) * (size_t)t->n_alphas + (size_t)a;
}
static cell *last(table *t, int c, int a) { return cell_at(t, t->nrows - 1, c, a); }

static void set_str(table *t, int c, const char *s) { last(t, c, 0)->s = util_strdup(s); }
static void set_int(table *t, int c, int k) { last(t, c, 0)->k = k; }
static void set_num(table *t, int c, int a, double v) { last(t, c, a)->v = v; }
static void set_mean(table *t, int c, const double *x, int n, double lo_bound, double hi_bound) {
    cell *e = last(t, c, 0);
    mean_ci(x, n, lo_bound, hi_bound, &e->v, &e->lo, &e->hi);
    e->n = n;
}
static void set_rate(table *t, int c, int a, int k, int n) {
    cell *e = last(t, c, a);
    e->k = k; e->n = n; e->v = n ? (double)k / n : NAN;
    pmi_wilson95(k, n, &e->lo, &e->hi);
}
static void set_role(table *t, int c, const char *role, int replica, int independent) {
    cell *e = last(t, c, 0);
    e->s = util_strdup(role); e->k = replica; e->n = independent;
}

static void table_free(table *t) {
    for (size_t i = 0; i < (size_t)t->nrows * (size_t)(t->ncols * t->n_alphas); i++) free(t->cells[i].s);
    free(t->cells);
}

/* The shown text of a cell (md, latex). */
static void cell_text(const column *col, const cell *e, char *buf, size_t n) {
    switch (col->kind) {
    case C_STR: snprintf(buf, n, "%s", e->s && e->s[0] ? e->s : "-"); break;
    case C_INT: snprintf(buf, n, "%d", e->k); break;
    case C_P: if (isnan(e->v)) snprintf(buf, n, "-"); else snprintf(buf, n, "%.2g", e->v); break;
    case C_ACC: if (isnan(e->v)) snprintf(buf, n, "-"); else snprintf(buf, n, "%.4f", e->v); break;
    case C_MEAN:
        if (isnan(e->v)) snprintf(buf, n, "-");
        else if (isnan(e->lo)) snprintf(buf, n, "%.4f", e->v);
        else snprintf(buf, n, "%.4f [%.4f, %.4f]", e->v, e->lo, e->hi);
        break;
    case C_RATE:
        if (!e->n) snprintf(buf, n, "-");
        else snprintf(buf, n, "%.3f [%.3f, %.3f]", e->v, e->lo, e->hi);
        break;
    case C_ROLE:
        if (e->n) snprintf(buf, n, "%s#%d", e->s, e->k);
        else snprintf(buf, n, "%s", e->s);
        break;
    }
}

static void col_title(const table *t, int c, int a, char *buf, size_t n) {
    if (t->cols[c].per_alpha) snprintf(buf, n, "%s@%g", t->cols[c].name, t->alphas[a]);
    else snprintf(buf, n, "%s", t->cols[c].name);
}

/* A cell is at most a field of a row (point, 256) with room for an interval. */
#define CELL 320

static void render_md(const table *t, FILE *out) {
    char buf[CELL];
    fprintf(out, "\n### %s\n\n", t->caption);
    int shown = 0;
    for (int c = 0; c < t->ncols; c++)
        for (int a = 0; a < (t->cols[c].per_alpha ? t->n_alphas : 1); a++, shown++) {
            col_title(t, c, a, buf, sizeof buf);
            fprintf(out, "| %s ", buf);
        }
    fputs("|\n", out);
    for (int i = 0; i < shown; i++) fputs("|---", out);
    fputs("|\n", out);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            for (int a = 0; a < (t->cols[c].per_alpha ? t->n_alphas : 1); a++) {
                cell_text(&t->cols[c], cell_at(t, r, c, a), buf, sizeof buf);
                fprintf(out, "| %s ", buf);
            }
        fputs("|\n", out);
    }
}

/* ---- LaTeX ---------------------------------------------------------------------------- */

static void tex_escape(FILE *out, const char *s) {
    for (; *s; s++) {
        if (strchr("_%&#$", *s)) fprintf(out, "\\%c", *s);
        else if (*s == '~') fputs("\\textasciitilde{}", out);
        else if (*s == '^') fputs("\\textasciicircum{}", out);
        else fputc(*s, out);
    }
}

/* A shown column: (column, alpha). */
typedef struct { int c, a; } shown_col;
/* One LaTeX row of the shown columns. */
static void latex_row(const table *t, const shown_col *cols, int n, int r, FILE *out) {
    char buf[CELL];
    for (int i = 0; i < n; i++) {
        if (r < 0) col_title(t, cols[i].c, cols[i].a, buf, sizeof buf);
        else cell_text(&t->cols[cols[i].c], cell_at(t, r, cols[i].c, cols[i].a), buf, sizeof buf);
        fputs(i ? " & " : "", out);
        tex_escape(out, buf);
    }
    fputs(" \\\\\n", out);
}

/* One table: a float scaled down to the line width when wider, or, past REPORT_LATEX_LONG
 * rows, a longtable that breaks across pages and repeats its header. Labelled
 * tab:<label>-<name>. */
static void render_latex(const table *t, const char *label, FILE *out) {
    shown_col cols[MAX_COLS * 4];
    int n = 0, lng = t->nrows > REPORT_LATEX_LONG;
    for (int c = 0; c < t->ncols; c++)
        for (int a = 0; a < (t->cols[c].per_alpha ? t->n_alphas : 1); a++) cols[n++] = (shown_col){c, a};
    fputs(lng ? "\n\\begingroup\n\\scriptsize\n\\begin{longtable}{" : "\n\\begin{table}[htbp]\n\\centering\n\\small\n\\caption{", out);
    if (lng) {
        for (int i = 0; i < n; i++) fputc(cols[i].c < t->nkey ? 'l' : 'r', out);
        fputs("}\n\\caption{", out);
    }
    tex_escape(out, t->caption);
    fprintf(out, "}\\label{tab:%s-%s}", label, t->name);
    if (lng) {
        fputs("\\\\\n\\toprule\n", out);
        latex_row(t, cols, n, -1, out);
        fputs("\\midrule\n\\endfirsthead\n\\toprule\n", out);
        latex_row(t, cols, n, -1, out);
        fputs("\\midrule\n\\endhead\n\\bottomrule\n\\endfoot\n", out);
        for (int r = 0; r < t->nrows; r++) latex_row(t, cols, n, r, out);
        fputs("\\end{longtable}\n\\endgroup\n", out);
        return;
    }
    fputs("\n\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n\\begin{tabular}{", out);
    for (int i = 0; i < n; i++) fputc(cols[i].c < t->nkey ? 'l' : 'r', out);
    fputs("}\n\\toprule\n", out);
    latex_row(t, cols, n, -1, out);
    fputs("\\midrule\n", out);
    for (int r = 0; r < t->nrows; r++) latex_row(t, cols, n, r, out);
    fputs("\\bottomrule\n\\end{tabular}}\n\\end{table}\n", out);
}

/* The label of a results file's tables: its folder's name (the experiment), reduced to
 * [A-Za-z0-9-], so that the tables of two experiments never share a label. */
static void latex_label(const char *path, char *out, size_t len) {
    const char *end = strrchr(path, '/'), *start = end;
    while (start && start > path && start[-1] != '/') start--;
    if (end && start && end > start) snprintf(out, len, "%.*s", (int)(end - start), start);
    else snprintf(out, len, "results");
    for (char *c = out; *c; c++) if (!isalnum((unsigned char)*c) && *c != '-') *c = '-';
}

/* ---- CSV ------------------------------------------------------------------------------ */

static void csv_str(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\n")) { fputs(s, out); return; }
    fputc('"', out);
    for (; *s; s++) { if (*s == '"') fputc('"', out); fputc(*s, out); }
    fputc('"', out);
}

/* The shortest of %.15g, %.16g and %.17g that reads back as v (0.05, not 0.050000000000000003). */
static void csv_num(FILE *out, double v) {
    char buf[32];
    if (isnan(v)) return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, out);
}

static int has_alpha(const table *t) {
    for (int c = 0; c < t->ncols; c++) if (t->cols[c].per_alpha) return 1;
    return 0;
}

/* The long-format columns of a table, shared by csv and /report (store_write_tables): the
 * constant score and decision columns when set, the alpha column before the first non-key
 * column when the table has per-alpha quantities, then every column expanded: a mean to
 * X_mean, X_ci_low, X_ci_high; a rate to X_k, X_n, X_rate, X_ci_low, X_ci_high; a role to
 * role and replica (-1, an empty csv cell, when the model is not independent). One row per
 * table row, and per alpha when there is an alpha column. */
typedef struct {
    store_column *cols;
    int *blank_negative;        /* an int column whose negative values are missing */
    int ncols;
    int64_t nrows;
    char **names;               /* the malloc'd column names */
    void **mem;                 /* the malloc'd value arrays */
} col_set;

static void *col_add(col_set *cs, const char *stem, const char *suffix, store_col_type type, int blank) {
    int i = cs->ncols++;
    cs->cols = util_realloc(cs->cols, sizeof *cs->cols * (size_t)cs->ncols);
    cs->blank_negative = util_realloc(cs->blank_negative, sizeof(int) * (size_t)cs->ncols);
    cs->names = util_realloc(cs->names, sizeof(char *) * (size_t)cs->ncols);
    cs->mem = util_realloc(cs->mem, sizeof(void *) * (size_t)cs->ncols);
    size_t len = strlen(stem) + strlen(suffix) + 1, n = (size_t)(cs->nrows ? cs->nrows : 1);
    cs->names[i] = util_malloc(len);
    snprintf(cs->names[i], len, "%s%s", stem, suffix);
    size_t w = type == STORE_COL_INT ? sizeof(int32_t) : type == STORE_COL_DOUBLE ? sizeof(double) : sizeof(char *);
    cs->mem[i] = util_calloc(n, w);
    cs->cols[i] = (store_column){cs->names[i], type, type == STORE_COL_INT ? cs->mem[i] : NULL,
                                 type == STORE_COL_DOUBLE ? cs->mem[i] : NULL, type == STORE_COL_STR ? cs->mem[i] : NULL};
    cs->blank_negative[i] = blank;
    return cs->mem[i];
}

static void col_set_free(col_set *cs) {
    for (int i = 0; i < cs->ncols; i++) { free(cs->names[i]); free(cs->mem[i]); }
    free(cs->cols); free(cs->blank_negative); free(cs->names); free(cs->mem);
    memset(cs, 0, sizeof *cs);
}

/* The columns of t; strings point into t (or are constants), valid while t is. */
static void table_columns(const table *t, col_set *cs) {
    memset(cs, 0, sizeof *cs);
    int na = has_alpha(t) ? t->n_alphas : 1;
    cs->nrows = (int64_t)t->nrows * na;
    const char **s;
    if (t->score) { s = col_add(cs, "score", "", STORE_COL_STR, 0); for (int64_t r = 0; r < cs->nrows; r++) s[r] = t->score; }
    if (t->decision) { s = col_add(cs, "decision", "", STORE_COL_STR, 0); for (int64_t r = 0; r < cs->nrows; r++) s[r] = t->decision; }
    for (int c = 0; c < t->ncols; c++) {
        if (c == t->nkey && has_alpha(t)) {
            double *a = col_add(cs, "alpha", "", STORE_COL_DOUBLE, 0);
            for (int64_t r = 0; r < cs->nrows; r++) a[r] = t->alphas[r % na];
        }
        const char *st = t->cols[c].csv;
        int32_t *k = NULL, *n = NULL;
        double *v = NULL, *lo = NULL, *hi = NULL;
        s = NULL;
        switch (t->cols[c].kind) {
        case C_STR: s = col_add(cs, st, "", STORE_COL_STR, 0); break;
        case C_INT: k = col_add(cs, st, "", STORE_COL_INT, 0); break;
        case C_P: case C_ACC: v = col_add(cs, st, "", STORE_COL_DOUBLE, 0); break;
        case C_MEAN:
            v = col_add(cs, st, "_mean", STORE_COL_DOUBLE, 0);
            lo = col_add(cs, st, "_ci_low", STORE_COL_DOUBLE, 0);
            hi = col_add(cs, st, "_ci_high", STORE_COL_DOUBLE, 0);
            break;
        case C_RATE:
            k = col_add(cs, st, "_k", STORE_COL_INT, 0);
            n = col_add(cs, st, "_n", STORE_COL_INT, 0);
            v = col_add(cs, st, "_rate", STORE_COL_DOUBLE, 0);
            lo = col_add(cs, st, "_ci_low", STORE_COL_DOUBLE, 0);
            hi = col_add(cs, st, "_ci_high", STORE_COL_DOUBLE, 0);
            break;
        case C_ROLE:
            s = col_add(cs, st, "", STORE_COL_STR, 0);
            n = col_add(cs, "replica", "", STORE_COL_INT, 1);
            break;
        }
        for (int64_t r = 0; r < cs->nrows; r++) {
            const cell *e = cell_at(t, (int)(r / na), c, t->cols[c].per_alpha ? (int)(r % na) : 0);
            if (t->cols[c].kind == C_ROLE) { s[r] = e->s ? e->s : ""; n[r] = e->n ? e->k : -1; continue; }
            if (s) s[r] = e->s ? e->s : "";
            if (k) k[r] = e->k;
            if (n) n[r] = e->n;
            if (v) v[r] = e->v;
            if (lo) { lo[r] = e->lo; hi[r] = e->hi; }
        }
    }
}

/* <dir>/<name>.csv of the tables t[0..nk) (one per score kind, the same columns): one header,
 * then every table's rows. */
static int render_csv(const table *const *t, int nk, const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.csv", dir, t[0]->name);
    FILE *out = outfile_open(path, OUTFILE_PUBLIC, 0, err, errlen);
    if (!out) return REPORT_ERR_FILE;
    for (int k = 0; k < nk; k++) {
        col_set cs;
        table_columns(t[k], &cs);
        for (int c = 0; c < cs.ncols && k == 0; c++) fprintf(out, "%s%s", c ? "," : "", cs.cols[c].name);
        if (k == 0) fputc('\n', out);
        for (int64_t r = 0; r < cs.nrows; r++) {
            for (int c = 0; c < cs.ncols; c++) {
                const store_column *x = &cs.cols[c];
                if (c) fputc(',', out);
                if (x->type == STORE_COL_STR) csv_str(out, x->s[r]);
                else if (x->type == STORE_COL_DOUBLE) csv_num(out, x->d[r]);
                else if (!(cs.blank_negative[c] && x->i[r] < 0)) fprintf(out, "%d", (int)x->i[r]);
            }
            fputc('\n', out);
        }
        col_set_free(&cs);
    }
    return outfile_close(out, err, errlen) ? REPORT_ERR_FILE : REPORT_OK;
}

/* ---- JSON ----------------------------------------------------------------------------- */

/* {"caption", "columns": [...], "rows": [{column: value}, ...]} of the tables t[0..nk) (one per
 * score kind): the csv's columns and values, a missing number null. */
static cJSON *json_table(const table *const *t, int nk) {
    cJSON *o = cJSON_CreateObject(), *cols = cJSON_AddArrayToObject(o, "columns"), *rows = cJSON_AddArrayToObject(o, "rows");
    cJSON_AddStringToObject(o, "caption", t[0]->caption);
    for (int k = 0; k < nk; k++) {
        col_set cs;
        table_columns(t[k], &cs);
        for (int c = 0; c < cs.ncols && k == 0; c++) cJSON_AddItemToArray(cols, cJSON_CreateString(cs.cols[c].name));
        for (int64_t r = 0; r < cs.nrows; r++) {
            cJSON *row = cJSON_CreateObject();
            for (int c = 0; c < cs.ncols; c++) {
                const store_column *x = &cs.cols[c];
                cJSON *v = x->type == STORE_COL_STR ? cJSON_CreateString(x->s[r])
                           : x->type == STORE_COL_DOUBLE ? (isnan(x->d[r]) ? cJSON_CreateNull() : cJSON_CreateNumber(x->d[r]))
                           : cs.blank_negative[c] && x->i[r] < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(x->i[r]);
                cJSON_AddItemToObject(row, x->name, v);
            }
            cJSON_AddItemToArray(rows, row);
        }
        col_set_free(&cs);
    }
    return o;
}

/* ---- the decision settings, as the tables use them ----------------------------------- */
typedef struct {
    const double *alphas; int n_alphas;
    int decide;                /* the decision pmi_pvalue */
    const char *score;         /* the score kind whose rows are shown */
    int data;                  /* some shown row has dataset evidence: its columns are shown */
} settings;

/* The settings of file `path` with the options' score and decision; REPORT_ERR_USAGE with a
 * message naming the available ones when either is unknown. */
static int settings_of(const char *path, const store_settings *st, const report_options *o, settings *s, char *err, size_t errlen) {
    *s = (settings){st->alphas, st->n_alphas, pmi_pvalue_parse(st->decide), pmi_score_name((pmi_score_kind)st->kinds[0]), 0};
    if (o->score) {
        int found = 0;
        for (int i = 0; i < st->n_kinds; i++)
            if (!strcmp(o->score, pmi_score_name((pmi_score_kind)st->kinds[i]))) { s->score = pmi_score_name((pmi_score_kind)st->kinds[i]); found = 1; }
        if (!found) {
            size_t n = (size_t)snprintf(err, errlen, "--score '%s': %s has score kinds", o->score, path);
            for (int i = 0; i < st->n_kinds && n < errlen; i++)
                n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? ", " : " ", pmi_score_name((pmi_score_kind)st->kinds[i]));
            return REPORT_ERR_USAGE;
        }
    }
    if (o->decide) {
        s->decide = pmi_pvalue_parse(o->decide);
        if (s->decide < 0) {
            snprintf(err, errlen, "--decision '%s': expected rank, perm, welch or mw", o->decide);
            return REPORT_ERR_USAGE;
        }
    }
    return REPORT_OK;
}

#define row_p store_row_p

static int same_setting(const store_row *a, const store_row *b) {
    return !strcmp(a->point, b->point) && !strcmp(a->attack, b->attack) && !strcmp(a->params, b->params);
}

/* The verdict's p-value of a row as a null model: a model trained on the owner's data is no null
 * model for the dataset evidence, so only its pool evidence (audited) counts (docs/dataset-evidence.md). */
static double null_p(const store_row *r, int decide) {
    if (!r->owner_data) return store_row_verdict_p(r, decide);
    int kind = pmi_score_parse(r->score);
    return kind < 0 ? row_p(r, decide) : pmi_pool_p((pmi_score_kind)kind, row_p(r, decide), r->pool_audit_p);
}

static double median_of(double *x, int n) {
    if (n == 0) return NAN;
    gsl_sort(x, 1, (size_t)n);
    return gsl_stats_median_from_sorted_data(x, 1, (size_t)n);
}

static void build_models(table *t, const store_row *r, int64_t n, const settings *s) {
    static const char *pcols[P_COUNT] = {"p_rank", "p_perm", "p_welch", "p_mw"};
    table_init(t, "models", "Models: one row per model and evaluation", 6, s->alphas, s->n_alphas);
    table_col(t, "seed", "seed", C_INT, 0);
    table_col(t, "role", "role", C_ROLE, 0);
    table_col(t, "arch", "arch", C_STR, 0);
    table_col(t, "sweep", "sweep", C_STR, 0);
    table_col(t, "attack", "attack", C_STR, 0);
    table_col(t, "params", "params", C_STR, 0);
    table_col(t, "k", "k", C_INT, 0);
    table_col(t, "identified", "identified", C_INT, 0);
    for (int p = 0; p < P_COUNT; p++) table_col(t, pcols[p], pcols[p], C_P, 0);
    table_col(t, "test_acc", "test_acc", C_ACC, 0);
    if (s->data) {
        table_col(t, "p_data", "p_data", C_P, 0);
        table_col(t, "p_combined", "p_combined", C_P, 0);
    }
    t->score = s->score;
    for (int64_t i = 0; i < n; i++) {
        table_row(t);
        int c = 0;
        set_int(t, c++, r[i].seed);
        set_role(t, c++, r[i].role, r[i].replica, r[i].independent);
        set_str(t, c++, r[i].arch);
        set_str(t, c++, r[i].point);
        set_str(t, c++, r[i].attack);
        set_str(t, c++, r[i].params);
        set_int(t, c++, r[i].secret_k);
        set_int(t, c++, r[i].identified);
        for (int p = 0; p < P_COUNT; p++) set_num(t, c++, 0, row_p(&r[i], p));
        set_num(t, c++, 0, r[i].test_acc);
        if (s->data) {
            set_num(t, c++, 0, r[i].data_p);
            set_num(t, c++, 0, store_row_verdict_p(&r[i], s->decide));
        }
    }
}

/* Per setting: owner rows (pos) and independent rows (neg) of rows[lo..hi) sharing a setting.
 * Every array has room for all rows of the setting (cap of them). */
typedef struct {
    double *acc, *pos[P_COUNT], *neg[P_COUNT];
    double *nway[P_COUNT];        /* owners' Holm-corrected N-way p-values */
    double *z;                    /* owners' z_perm (NaN ones left out: nz of them) */
    double *pdata, *pv, *nv;      /* owners' dataset and verdict p-values, independents' null verdict p */
    int npos, nneg, ident, nz;
    double *buf;
} setting_stats;

static void stats_init(setting_stats *st, int cap) {
    st->buf = util_malloc(sizeof(double) * (size_t)(cap > 0 ? cap : 1) * (5 + 3 * P_COUNT));
    st->pdata = st->buf + (size_t)cap * (2 + 3 * P_COUNT);
    st->pv = st->pdata + cap;
    st->nv = st->pv + cap;
    st->acc = st->buf;
    st->z = st->buf + (size_t)cap * (1 + 3 * P_COUNT);
    for (int p = 0; p < P_COUNT; p++) {
        st->pos[p] = st->buf + (size_t)cap * (1 + p);
        st->neg[p] = st->buf + (size_t)cap * (1 + P_COUNT + p);
        st->nway[p] = st->buf + (size_t)cap * (1 + 2 * P_COUNT + p);
    }
}

/* The N-way (Holm over all N mini-datasets) p-value of kind `which` of a row. */
static double row_p_nway(const store_row *r, int which) {
    const double v[P_COUNT] = {r->p_nway_rank, r->p_nway_perm, r->p_nway_welch, r->p_nway_mw};
    return v[which];
}

static void collect(const store_row *r, const int64_t *idx, int k, int decide, setting_stats *st) {
    st->npos = st->nneg = st->ident = st->nz = 0;
    for (int i = 0; i < k; i++) {
        const store_row *x = &r[idx[i]];
        if (!strcmp(x->role, "owner")) {
            st->acc[st->npos] = x->test_acc;
            st->ident += x->identified == x->secret_k;
            if (!isnan(x->z_perm)) st->z[st->nz++] = x->z_perm;
            st->pdata[st->npos] = x->data_p;
            st->pv[st->npos] = store_row_verdict_p(x, decide);
            for (int p = 0; p < P_COUNT; p++) {
                st->pos[p][st->npos] = row_p(x, p);
                st->nway[p][st->npos] = row_p_nway(x, p);
            }
            st->npos++;
        } else if (x->independent) {
            for (int p = 0; p < P_COUNT; p++) st->neg[p][st->nneg] = row_p(x, p);
            st->nv[st->nneg] = null_p(x, decide);
            st->nneg++;
        }
    }
}

static int count_below(const double *p, int n, double alpha) {
    int c = 0;
    for (int i = 0; i < n; i++) c += p[i] < alpha;
    return c;
}

/* AUC and TPR@1%FPR of owner vs independent on -log10 p (larger = more evidence). */
static void auc_tpr(const double *pos, int np, const double *neg, int nn, double *auc, double *tpr) {
    double *a = util_malloc(sizeof(double) * (size_t)(np + nn + 1)), *b = a + np;
    for (int i = 0; i < np; i++) a[i] = -log10(fmax(pos[i], 1e-300));
    for (int i = 0; i < nn; i++) b[i] = -log10(fmax(neg[i], 1e-300));
    *auc = np && nn ? pmi_auc(a, np, b, nn) : NAN;
    *tpr = np && nn ? pmi_tpr_at_fpr(a, np, b, nn, 0.01) : NAN;
    free(a);
}

static void build_settings(table *t, const store_row *r, const int64_t *idx, int64_t n, const settings *s) {
    static char med[48], nway[48];
    const char *d = pmi_pvalue_name((pmi_pvalue)s->decide);
    snprintf(med, sizeof med, "median p_%s", d);
    snprintf(nway, sizeof nway, "median N-way p_%s (Holm)", d);
    table_init(t, "settings",
               "Settings: owner vs independent models over seeds (decision p-value); owner accuracy: mean, "
               "t-interval clipped to [0, 1]; rates: Wilson 95% intervals", 3, s->alphas, s->n_alphas);
    t->score = s->score; t->decision = d;
    table_col(t, "sweep", "sweep", C_STR, 0);
    table_col(t, "attack", "attack", C_STR, 0);
    table_col(t, "params", "params", C_STR, 0);
    table_col(t, "owners", "owners", C_INT, 0);
    table_col(t, "owner acc (95% CI)", "owner_acc", C_MEAN, 0);
    table_col(t, "identified", "identified", C_RATE, 0);
    table_col(t, "claimed", "claimed", C_RATE, 1);
    table_col(t, med, "median_p", C_P, 0);
    table_col(t, nway, "median_p_nway_holm", C_P, 0);
    table_col(t, "median z_perm", "median_z_perm", C_P, 0);
    table_col(t, "indep", "indep", C_INT, 0);
    table_col(t, "FPR", "fpr", C_RATE, 1);
    table_col(t, "AUC", "auc", C_P, 0);
    table_col(t, "TPR@1%FPR", "tpr_at_1pct_fpr", C_P, 0);
    if (s->data) {   /* docs/dataset-evidence.md */
        table_col(t, "median p_data", "median_p_data", C_P, 0);
        table_col(t, "claimed (pool+data)", "claimed_combined", C_RATE, 1);
        table_col(t, "FPR (pool+data)", "fpr_combined", C_RATE, 1);
    }
    for (int64_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && same_setting(&r[idx[lo]], &r[idx[hi]]); hi++) {}
        setting_stats st;
        stats_init(&st, (int)(hi - lo));
        collect(r, idx + lo, (int)(hi - lo), s->decide, &st);
        const store_row *x = &r[idx[lo]];
        int c = 0, dd = s->decide;
        table_row(t);
        set_str(t, c++, x->point);
        set_str(t, c++, x->attack);
        set_str(t, c++, x->params);
        set_int(t, c++, st.npos);
        set_mean(t, c++, st.acc, st.npos, 0, 1);
        set_rate(t, c++, 0, st.ident, st.npos);
        for (int a = 0; a < s->n_alphas; a++) set_rate(t, c, a, count_below(st.pos[dd], st.npos, s->alphas[a]), st.npos);
        c++;
        set_num(t, c++, 0, median_of(st.pos[dd], st.npos));
        set_num(t, c++, 0, median_of(st.nway[dd], st.npos));
        set_num(t, c++, 0, median_of(st.z, st.nz));
        set_int(t, c++, st.nneg);
        for (int a = 0; a < s->n_alphas; a++) set_rate(t, c, a, count_below(st.neg[dd], st.nneg, s->alphas[a]), st.nneg);
        c++;
        double auc, tpr;
        auc_tpr(st.pos[dd], st.npos, st.neg[dd], st.nneg, &auc, &tpr);
        set_num(t, c++, 0, auc);
        set_num(t, c++, 0, tpr);
        if (s->data) {
            set_num(t, c++, 0, median_of(st.pdata, st.npos));
            for (int a = 0; a < s->n_alphas; a++) set_rate(t, c, a, count_below(st.pv, st.npos, s->alphas[a]), st.npos);
            c++;
            for (int a = 0; a < s->n_alphas; a++) set_rate(t, c, a, count_below(st.nv, st.nneg, s->alphas[a]), st.nneg);
            c++;
        }
        free(st.buf);
    }
}

/* Calibration: un-attacked independent models, fraction with p < alpha per p-value kind. */
static void build_calibration(table *t, const store_row *r, int64_t n, const settings *s) {
    static char thr[48];
    snprintf(thr, sizeof thr, "p threshold@FPR %g", s->alphas[0]);
    table_init(t, "calibration",
               "Calibration and power: un-attacked independent (FPR, Wilson 95% intervals; bound: the binomial "
               "95% upper bound of a calibrated test) and owner models", 2, s->alphas, s->n_alphas);
    t->score = s->score; t->decision = pmi_pvalue_name((pmi_pvalue)s->decide);
    table_col(t, "p-value", "pvalue", C_STR, 0);
    table_col(t, "indep models", "indep", C_INT, 0);
    table_col(t, "FPR", "fpr", C_RATE, 1);
    table_col(t, "95% bound", "calibrated_bound", C_P, 1);
    table_col(t, "owners", "owners", C_INT, 0);
    table_col(t, "AUC", "auc", C_P, 0);
    table_col(t, "TPR@1%FPR", "tpr_at_1pct_fpr", C_P, 0);
    table_col(t, thr, "p_threshold", C_P, 0);
    table_col(t, "owner TPR there", "owner_tpr_at_threshold", C_P, 0);
    double *p = util_malloc(sizeof(double) * (size_t)(n ? n : 1) * 2), *q = p + n;
    for (int w = 0; w < P_COUNT; w++) {
        int k = 0, no = 0;
        for (int64_t i = 0; i < n; i++) {
            if (strcmp(r[i].attack, "none")) continue;
            if (r[i].independent) p[k++] = row_p(&r[i], w);
            else if (!strcmp(r[i].role, "owner")) q[no++] = row_p(&r[i], w);
        }
        char name[48];
        snprintf(name, sizeof name, "%s%s", pmi_pvalue_name((pmi_pvalue)w), w == s->decide ? " (decision)" : "");
        int c = 0;
        table_row(t);
        set_str(t, c++, name);
        set_int(t, c++, k);
        for (int a = 0; a < s->n_alphas; a++) {
            set_rate(t, c, a, count_below(p, k, s->alphas[a]), k);
            /* the largest false-positive fraction a calibrated test shows with 95% probability */
            double bound = 0;
            if (k > 0) {
                int x = 0;
                while (x < k && gsl_cdf_binomial_P((unsigned)x, s->alphas[a], (unsigned)k) < 0.95) x++;
                bound = (double)x / k;
            }
            set_num(t, c + 1, a, bound);
        }
        c += 2;
        double auc, tpr;
        auc_tpr(q, no, p, k, &auc, &tpr);
        set_int(t, c++, no);
        set_num(t, c++, 0, auc);
        set_num(t, c++, 0, tpr);
        /* calibrated threshold: claim when p < t, with t the smallest independent p-value
         * above the alpha fraction of them, so that their empirical FPR stays <= alpha */
        double cut = NAN;
        if (k > 0) {
            gsl_sort(p, 1, (size_t)k);
            cut = p[(int)floor(s->alphas[0] * k)];
        }
        set_num(t, c++, 0, cut);
        set_num(t, c++, 0, k && no ? (double)count_below(q, no, cut) / no : NAN);
    }
    free(p);
}

/* An un-attacked owner row. */
static int fidelity_row(const store_row *r) {
    return !strcmp(r->role, "owner") && !strcmp(r->attack, "none");
}

/* Fidelity: owner minus clean test accuracy of the un-attacked models, paired by point and seed. */
static void build_fidelity(table *t, const store_row *r, int64_t n, const settings *s) {
    table_init(t, "fidelity",
               "Fidelity: owner minus clean test accuracy (un-attacked); accuracies: mean, t-interval clipped to "
               "[0, 1]; gap: mean, t-interval", 2, s->alphas, s->n_alphas);
    table_col(t, "sweep", "sweep", C_STR, 0);
    table_col(t, "arch", "arch", C_STR, 0);
    table_col(t, "pairs", "pairs", C_INT, 0);
    table_col(t, "owner acc", "owner_acc", C_MEAN, 0);
    table_col(t, "clean acc", "clean_acc", C_MEAN, 0);
    table_col(t, "gap (95% CI)", "gap", C_MEAN, 0);
    double *gap = util_malloc(sizeof(double) * (size_t)(n ? n : 1) * 3), *oa = gap + n, *ca = oa + n;
    for (int64_t i = 0; i < n; i++) {
        if (!fidelity_row(&r[i])) continue;
        int seen = 0;   /* one line per (point, arch): its first owner row */
        for (int64_t d = 0; d < i && !seen; d++)
            seen = fidelity_row(&r[d]) && !strcmp(r[d].point, r[i].point) && !strcmp(r[d].arch, r[i].arch);
        if (seen) continue;
        int k = 0;
        for (int64_t a = 0; a < n; a++) {
            if (!fidelity_row(&r[a]) || strcmp(r[a].point, r[i].point) || strcmp(r[a].arch, r[i].arch)) continue;
            for (int64_t b = 0; b < n; b++)
                if (!strcmp(r[b].role, "clean") && !strcmp(r[b].attack, "none") && !strcmp(r[b].point, r[a].point)
                    && !strcmp(r[b].arch, r[a].arch) && r[b].seed == r[a].seed) {
                    oa[k] = r[a].test_acc; ca[k] = r[b].test_acc; gap[k] = oa[k] - ca[k]; k++;
                    break;
                }
        }
        table_row(t);
        set_str(t, 0, r[i].point);
        set_str(t, 1, r[i].arch);
        set_int(t, 2, k);
        set_mean(t, 3, oa, k, 0, 1);
        set_mean(t, 4, ca, k, 0, 1);
        set_mean(t, 5, gap, k, -INFINITY, INFINITY);
    }
    free(gap);
}

/* Creates dir and its missing parents. */
static int make_dir(const char *dir, char *err, size_t errlen) {
    char *p = util_strdup(dir);
    int rc = REPORT_OK;
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) {
            snprintf(err, errlen, "cannot create folder %s: %s", p, strerror(errno));
            rc = REPORT_ERR_FILE;
        }
        *s = c;
        if (!c || rc) break;
    }
    free(p);
    return rc;
}

/* The four tables of a results file, with its score and decision settings. */
typedef struct {
    table t[4];
    settings s;
    store_settings st;
    store_row *rows, *sel;
    int64_t *idx;
} tables;

static void tables_free(tables *T) {
    for (int i = 0; i < 4; i++) table_free(&T->t[i]);
    free(T->idx); free(T->sel); free(T->rows);
}

/* Reads path and builds its tables as o says (format aside). Returns REPORT_OK, or a status
 * with err and nothing to free. */
static int tables_build(const char *path, const report_options *o, tables *T, char *err, size_t errlen) {
    memset(T, 0, sizeof *T);
    int64_t h = store_open(path, err, errlen);
    if (h < 0) return REPORT_ERR_FILE;
    store_close(h);
    int64_t n = 0;
    if (store_read_settings(path, &T->st, err, errlen)) return REPORT_ERR_FILE;
    int rc = settings_of(path, &T->st, o, &T->s, err, errlen);
    if (rc) return rc;
    if (store_read_summary(path, &T->rows, &n, err, errlen)) return REPORT_ERR_FILE;
    /* keep the chosen score's rows, in file order (jobs are grouped by setting below) */
    int64_t *idx = T->idx = util_malloc(sizeof *idx * (size_t)(n ? n : 1)), k = 0;
    store_row *sel = T->sel = util_malloc(sizeof *sel * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(T->rows[i].score, T->s.score)) { sel[k] = T->rows[i]; T->s.data |= !isnan(sel[k++].data_p); }
    /* settings table groups rows of one setting: order by (point, attack, params) stably */
    int64_t m = 0;
    for (int64_t i = 0; i < k; i++) {
        int first = 1;
        for (int64_t j = 0; j < i; j++) first &= !same_setting(&sel[i], &sel[j]);
        if (!first) continue;
        for (int64_t j = i; j < k; j++) if (same_setting(&sel[i], &sel[j])) idx[m++] = j;
    }
    build_models(&T->t[0], sel, k, &T->s);
    build_settings(&T->t[1], sel, idx, m, &T->s);
    build_calibration(&T->t[2], sel, k, &T->s);
    build_fidelity(&T->t[3], sel, k, &T->s);
    return REPORT_OK;
}

/* csv and json: the tables of o->score, or of every score kind of the file (the score column
 * tells them apart), one tidy table each. */
static int write_tidy(const char *path, const report_options *o, FILE *out, char *err, size_t errlen) {
    tables *T = util_calloc(SCORE_COUNT, sizeof *T);
    int nk = 1, rc = tables_build(path, o, &T[0], err, errlen);
    if (rc) { free(T); return rc; }
    for (int k = 1; !o->score && k < T[0].st.n_kinds && !rc; k++) {
        report_options ok = *o;
        ok.score = pmi_score_name((pmi_score_kind)T[0].st.kinds[k]);
        if (!(rc = tables_build(path, &ok, &T[nk], err, errlen))) nk++;
    }
    if (!rc && o->format == REPORT_CSV) rc = make_dir(o->dir, err, errlen);
    const table *each[SCORE_COUNT];
    cJSON *root = o->format == REPORT_JSON ? cJSON_CreateObject() : NULL, *tabs = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "file", path);
        cJSON_AddStringToObject(root, "decision", pmi_pvalue_name((pmi_pvalue)T[0].s.decide));
        cJSON *kinds = cJSON_AddArrayToObject(root, "score_kinds");
        for (int k = 0; k < nk; k++) cJSON_AddItemToArray(kinds, cJSON_CreateString(T[k].s.score));
        char *partial = store_read_attr(path, "partial_note");
        if (partial) cJSON_AddStringToObject(root, "partial", partial);
        free(partial);
        tabs = cJSON_AddObjectToObject(root, "tables");
    }
    for (int i = 0; i < 4 && !rc; i++) {
        int n = T[0].t[i].score ? nk : 1;   /* a table without a score column (fidelity) is the same for every kind */
        for (int k = 0; k < n; k++) each[k] = &T[k].t[i];
        if (root) cJSON_AddItemToObject(tabs, T[0].t[i].name, json_table(each, n));
        else rc = render_csv(each, n, o->dir, err, errlen);
    }
    if (root && !rc) {
        char *text = cJSON_Print(root);
        fprintf(out, "%s\n", text);
        free(text);
    }
    cJSON_Delete(root);
    for (int k = 0; k < nk; k++) tables_free(&T[k]);
    free(T);
    return rc;
}

int report_write(const char *path, const report_options *o, FILE *out, char *err, size_t errlen) {
    if (o->format == REPORT_CSV && !o->dir) {
        snprintf(err, errlen, "--format csv writes one file per table: name their folder with -o DIR");
        return REPORT_ERR_USAGE;
    }
    if (o->format == REPORT_CSV || o->format == REPORT_JSON) return write_tidy(path, o, out, err, errlen);
    tables T;
    int rc = tables_build(path, o, &T, err, errlen);
    if (rc) return rc;
    const char *d = pmi_pvalue_name((pmi_pvalue)T.s.decide);
    char label[256];
    latex_label(path, label, sizeof label);
    if (o->format == REPORT_MD) fprintf(out, "## %s (score: %s, decision: p_%s)\n", path, T.s.score, d);
    if (o->format == REPORT_LATEX)
        fprintf(out, "%% pmi report %s (score: %s, decision: p_%s); needs \\usepackage{booktabs,graphicx,longtable}\n", path, T.s.score, d);
    /* a partial merge (pmi merge --partial) says so where every reader sees it */
    char *partial = store_read_attr(path, "partial_note");
    if (partial) {
        if (o->format == REPORT_MD) fprintf(out, "\n**%s**\n\n", partial);
        else fprintf(stderr, "pmi report: %s\n", partial);
        free(partial);
    }
    for (int i = 0; i < 4; i++) {
        if (o->format == REPORT_MD) render_md(&T.t[i], out);
        else render_latex(&T.t[i], label, out);
    }
    tables_free(&T);
    return rc;
}

int report_store(const char *path, const report_options *o, char *err, size_t errlen) {
    tables T;
    int rc = tables_build(path, o, &T, err, errlen);
    if (rc) return rc;
    col_set cs[4];
    store_table st[4];
    for (int i = 0; i < 4; i++) {
        table_columns(&T.t[i], &cs[i]);
        st[i] = (store_table){T.t[i].name, T.t[i].caption, cs[i].cols, cs[i].ncols, cs[i].nrows};
    }
    char when[STORE_NAME];
    util_iso_now(when, sizeof when);
    const char *attrs[] = {"score", T.s.score, "decision", pmi_pvalue_name((pmi_pvalue)T.s.decide), "written", when};
    if (store_write_tables(path, st, 4, attrs, 3, err, errlen)) rc = REPORT_ERR_FILE;
    for (int i = 0; i < 4; i++) col_set_free(&cs[i]);
    tables_free(&T);
    return rc;
}

int report_print(const char *path, report_format fmt, FILE *out, char *err, size_t errlen) {
    report_options o = report_default_options();
    o.format = fmt;
    return report_write(path, &o, out, err, errlen);
}
