/* report: paper-style tables from a results file's /summary (see report.h). */
#include "report.h"
#include "pmi.h"
#include "store.h"
#include "util.h"
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int report_format_parse(const char *s, report_format *f) {
    static const char *names[] = {"md", "csv", "latex"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) { *f = (report_format)i; return 0; }
    return -1;
}

/* ---- a table writer: one header, rows of cells, three formats ----------------------- */
typedef struct { FILE *out; report_format fmt; int ncols; } table;

static void table_cells(table *t, const char *const *cells) {
    for (int i = 0; i < t->ncols; i++) {
        switch (t->fmt) {
        case REPORT_MD: fprintf(t->out, "| %s ", cells[i]); break;
        case REPORT_CSV: fprintf(t->out, "%s%s", i ? "," : "", cells[i]); break;
        case REPORT_LATEX: {
            fputs(i ? " & " : "", t->out);
            for (const char *c = cells[i]; *c; c++) {
                if (strchr("_%&#", *c)) fputc('\\', t->out);
                fputc(*c, t->out);
            }
        } break;
        }
    }
    fputs(t->fmt == REPORT_MD ? "|\n" : t->fmt == REPORT_LATEX ? " \\\\\n" : "\n", t->out);
}

static void table_begin(table *t, const char *title, const char *const *cols, int ncols) {
    t->ncols = ncols;
    if (t->fmt == REPORT_MD) fprintf(t->out, "\n### %s\n\n", title);
    else if (t->fmt == REPORT_CSV) fprintf(t->out, "\n# %s\n", title);
    else {
        fprintf(t->out, "\n%% %s\n\\begin{tabular}{", title);
        for (int i = 0; i < ncols; i++) fputc(i ? 'r' : 'l', t->out);
        fputs("}\n\\hline\n", t->out);
    }
    table_cells(t, cols);
    if (t->fmt == REPORT_MD) {
        for (int i = 0; i < ncols; i++) fputs("|---", t->out);
        fputs("|\n", t->out);
    } else if (t->fmt == REPORT_LATEX) fputs("\\hline\n", t->out);
}

static void table_end(table *t) {
    if (t->fmt == REPORT_LATEX) fputs("\\hline\n\\end{tabular}\n", t->out);
}

/* ---- the decision settings, as the tables use them ----------------------------------- */
typedef struct {
    const double *alphas; int n_alphas;
    int decide;                /* the decision pmi_pvalue */
    const char *score;         /* the decision score kind's name (the first of score_kinds) */
} settings;

static settings settings_of(const store_settings *st) {
    return (settings){st->alphas, st->n_alphas, pmi_pvalue_parse(st->decide), pmi_score_name((pmi_score_kind)st->kinds[0])};
}

#define row_p store_row_p

/* A cell holds any one field of a row (the widest is point, 256) with room for a suffix. */
#define CELL 320

static int same_setting(const store_row *a, const store_row *b) {
    return !strcmp(a->point, b->point) && !strcmp(a->attack, b->attack) && !strcmp(a->params, b->params);
}

static void fmt_p(char *buf, size_t n, double p) {
    if (isnan(p)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.2g", p);
}

static void fmt_ci(char *buf, size_t n, const double *x, int k) {
    double mean, half;
    if (k == 0) { snprintf(buf, n, "-"); return; }
    pmi_mean_ci95(x, k, &mean, &half);
    if (isnan(half)) snprintf(buf, n, "%.4f", mean);
    else snprintf(buf, n, "%.4f ± %.4f", mean, half);
}

static double median_of(double *x, int n) {
    if (n == 0) return NAN;
    gsl_sort(x, 1, (size_t)n);
    return gsl_stats_median_from_sorted_data(x, 1, (size_t)n);
}

static void print_models(table *t, const store_row *r, int64_t n) {
    static const char *cols[] = {"seed", "role", "arch", "attack", "params", "k", "identified",
                                 "p_rank", "p_perm", "p_welch", "p_mw", "test_acc"};
    table_begin(t, "Models: one row per model and evaluation", cols, 12);
    for (int64_t i = 0; i < n; i++) {
        char c[12][CELL];
        snprintf(c[0], CELL, "%d", r[i].seed);
        if (r[i].independent) snprintf(c[1], CELL, "%s#%d", r[i].role, r[i].replica);
        else snprintf(c[1], CELL, "%s", r[i].role);
        snprintf(c[2], CELL, "%s", r[i].arch);
        snprintf(c[3], CELL, "%s", r[i].attack);
        snprintf(c[4], CELL, "%s", r[i].params[0] ? r[i].params : "-");
        snprintf(c[5], CELL, "%d", r[i].secret_k);
        snprintf(c[6], CELL, "%d", r[i].identified);
        for (int p = 0; p < P_COUNT; p++) fmt_p(c[7 + p], CELL, row_p(&r[i], p));
        snprintf(c[11], CELL, "%.4f", r[i].test_acc);
        const char *cells[12];
        for (int j = 0; j < 12; j++) cells[j] = c[j];
        table_cells(t, cells);
    }
    table_end(t);
}

/* Per setting: owner rows (pos) and independent rows (neg) of rows[lo..hi) sharing a setting.
 * Every array has room for all rows of the setting (cap of them). */
typedef struct {
    double *acc, *pos[P_COUNT], *neg[P_COUNT];
    double *nway[P_COUNT];        /* owners' Holm-corrected N-way p-values */
    int npos, nneg, ident;
    double *buf;
} setting_stats;

static void stats_init(setting_stats *st, int cap) {
    st->buf = util_malloc(sizeof(double) * (size_t)(cap > 0 ? cap : 1) * (1 + 3 * P_COUNT));
    st->acc = st->buf;
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

static void collect(const store_row *r, const int64_t *idx, int k, setting_stats *st) {
    st->npos = st->nneg = st->ident = 0;
    for (int i = 0; i < k; i++) {
        const store_row *x = &r[idx[i]];
        if (!strcmp(x->role, "owner")) {
            st->acc[st->npos] = x->test_acc;
            st->ident += x->identified == x->secret_k;
            for (int p = 0; p < P_COUNT; p++) {
                st->pos[p][st->npos] = row_p(x, p);
                st->nway[p][st->npos] = row_p_nway(x, p);
            }
            st->npos++;
        } else if (x->independent) {
            for (int p = 0; p < P_COUNT; p++) st->neg[p][st->nneg] = row_p(x, p);
            st->nneg++;
        }
    }
}

static double frac_below(const double *p, int n, double alpha) {
    int c = 0;
    for (int i = 0; i < n; i++) c += p[i] < alpha;
    return n ? (double)c / n : NAN;
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

/* The settings table's columns: 6 fixed, 2 per alpha, 5 more. */
#define SETTINGS_COLS (11 + 2 * CFG_MAX_ALPHAS)

static void print_settings(table *t, const store_row *r, const int64_t *idx, int64_t n, const settings *s) {
    const char *cols[SETTINGS_COLS];
    char names[SETTINGS_COLS][48];
    int nc = 0;
    const char *fixed[] = {"sweep", "attack", "params", "owners", "owner acc (95% CI)", "identified"};
    for (int i = 0; i < 6; i++) cols[nc++] = fixed[i];
    for (int a = 0; a < s->n_alphas; a++) {
        snprintf(names[nc], 48, "claimed@%g", s->alphas[a]); cols[nc] = names[nc]; nc++;
    }
    snprintf(names[nc], 48, "median p_%s", pmi_pvalue_name((pmi_pvalue)s->decide)); cols[nc] = names[nc]; nc++;
    snprintf(names[nc], 48, "median N-way p_%s (Holm)", pmi_pvalue_name((pmi_pvalue)s->decide)); cols[nc] = names[nc]; nc++;
    cols[nc++] = "indep";
    for (int a = 0; a < s->n_alphas; a++) {
        snprintf(names[nc], 48, "FPR@%g", s->alphas[a]); cols[nc] = names[nc]; nc++;
    }
    cols[nc++] = "AUC";
    cols[nc++] = "TPR@1%FPR";
    table_begin(t, "Settings: owner vs independent models over seeds (decision p-value)", cols, nc);
    for (int64_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && same_setting(&r[idx[lo]], &r[idx[hi]]); hi++) {}
        setting_stats st;
        stats_init(&st, (int)(hi - lo));
        collect(r, idx + lo, (int)(hi - lo), &st);
        char c[SETTINGS_COLS][CELL];
        const store_row *x = &r[idx[lo]];
        int k = 0, d = s->decide;
        snprintf(c[k++], CELL, "%s", x->point[0] ? x->point : "-");
        snprintf(c[k++], CELL, "%s", x->attack);
        snprintf(c[k++], CELL, "%s", x->params[0] ? x->params : "-");
        snprintf(c[k++], CELL, "%d", st.npos);
        fmt_ci(c[k++], CELL, st.acc, st.npos);
        snprintf(c[k++], CELL, "%d/%d", st.ident, st.npos);
        for (int a = 0; a < s->n_alphas; a++) snprintf(c[k++], CELL, "%.2f", frac_below(st.pos[d], st.npos, s->alphas[a]));
        fmt_p(c[k++], CELL, median_of(st.pos[d], st.npos));
        fmt_p(c[k++], CELL, median_of(st.nway[d], st.npos));
        snprintf(c[k++], CELL, "%d", st.nneg);
        for (int a = 0; a < s->n_alphas; a++)
            if (st.nneg) snprintf(c[k++], CELL, "%.3f", frac_below(st.neg[d], st.nneg, s->alphas[a]));
            else snprintf(c[k++], CELL, "-");
        double auc, tpr;
        auc_tpr(st.pos[d], st.npos, st.neg[d], st.nneg, &auc, &tpr);
        fmt_p(c[k++], CELL, auc);
        fmt_p(c[k++], CELL, tpr);
        const char *cells[SETTINGS_COLS];
        for (int j = 0; j < k; j++) cells[j] = c[j];
        table_cells(t, cells);
        free(st.buf);
    }
    table_end(t);
}

/* Calibration: un-attacked independent models, fraction with p < alpha per p-value kind. */
/* The calibration table's columns: 2 fixed, 2 per alpha, 5 more. */
#define CALIB_COLS (7 + 2 * CFG_MAX_ALPHAS)

static void print_calibration(table *t, const store_row *r, int64_t n, const settings *s) {
    const char *cols[CALIB_COLS];
    char names[CALIB_COLS][48];
    int nc = 0;
    cols[nc++] = "p-value"; cols[nc++] = "indep models";
    for (int a = 0; a < s->n_alphas; a++) {
        snprintf(names[nc], 48, "FPR@%g", s->alphas[a]); cols[nc] = names[nc]; nc++;
        snprintf(names[nc], 48, "95%% bound@%g", s->alphas[a]); cols[nc] = names[nc]; nc++;
    }
    char thr[48], tpr_thr[48];
    snprintf(thr, sizeof thr, "p threshold@FPR %g", s->alphas[0]);
    snprintf(tpr_thr, sizeof tpr_thr, "owner TPR there");
    cols[nc++] = "owners"; cols[nc++] = "AUC"; cols[nc++] = "TPR@1%FPR"; cols[nc++] = thr; cols[nc++] = tpr_thr;
    table_begin(t, "Calibration and power: un-attacked independent (FPR) and owner models", cols, nc);
    double *p = util_malloc(sizeof(double) * (size_t)(n ? n : 1) * 2), *q = p + n;
    for (int w = 0; w < P_COUNT; w++) {
        int k = 0, no = 0;
        for (int64_t i = 0; i < n; i++) {
            if (strcmp(r[i].attack, "none")) continue;
            if (r[i].independent) p[k++] = row_p(&r[i], w);
            else if (!strcmp(r[i].role, "owner")) q[no++] = row_p(&r[i], w);
        }
        char c[CALIB_COLS][64];
        int j = 0;
        snprintf(c[j++], 64, "%s%s", pmi_pvalue_name((pmi_pvalue)w), w == s->decide ? " (decision)" : "");
        snprintf(c[j++], 64, "%d", k);
        for (int a = 0; a < s->n_alphas; a++) {
            snprintf(c[j++], 64, "%.3f", frac_below(p, k, s->alphas[a]));
            /* the largest false-positive fraction a calibrated test shows with 95% probability */
            double bound = 0;
            if (k > 0) {
                int x = 0;
                while (x < k && gsl_cdf_binomial_P((unsigned)x, s->alphas[a], (unsigned)k) < 0.95) x++;
                bound = (double)x / k;
            }
            snprintf(c[j++], 64, "%.3f", bound);
        }
        double auc, tpr;
        auc_tpr(q, no, p, k, &auc, &tpr);
        snprintf(c[j++], 64, "%d", no);
        fmt_p(c[j++], 64, auc);
        fmt_p(c[j++], 64, tpr);
        /* calibrated threshold: claim when p < t, with t the smallest independent p-value
         * above the alpha fraction of them, so that their empirical FPR stays <= alpha */
        double cut = NAN;
        if (k > 0) {
            gsl_sort(p, 1, (size_t)k);
            cut = p[(int)floor(s->alphas[0] * k)];
        }
        fmt_p(c[j++], 64, cut);
        snprintf(c[j++], 64, "%s", k && no ? "" : "-");
        if (k && no) snprintf(c[j - 1], 64, "%.2f", frac_below(q, no, cut));
        const char *cells[CALIB_COLS];
        for (int x = 0; x < j; x++) cells[x] = c[x];
        table_cells(t, cells);
    }
    free(p);
    table_end(t);
}

/* An un-attacked owner row of the decision score. */
static int fidelity_row(const store_row *r, const settings *s) {
    return !strcmp(r->role, "owner") && !strcmp(r->attack, "none") && !strcmp(r->score, s->score);
}

/* Fidelity: owner minus clean test accuracy of the un-attacked models, paired by point and seed. */
static void print_fidelity(table *t, const store_row *r, int64_t n, const settings *s) {
    static const char *cols[] = {"sweep", "arch", "pairs", "owner acc", "clean acc", "gap (95% CI)"};
    table_begin(t, "Fidelity: owner minus clean test accuracy (un-attacked)", cols, 6);
    double *gap = util_malloc(sizeof(double) * (size_t)(n ? n : 1) * 3), *oa = gap + n, *ca = oa + n;
    for (int64_t i = 0; i < n; i++) {
        if (!fidelity_row(&r[i], s)) continue;
        int seen = 0;   /* one line per (point, arch): its first owner row */
        for (int64_t d = 0; d < i && !seen; d++)
            seen = fidelity_row(&r[d], s) && !strcmp(r[d].point, r[i].point) && !strcmp(r[d].arch, r[i].arch);
        if (seen) continue;
        int k = 0;
        for (int64_t a = 0; a < n; a++) {
            if (strcmp(r[a].role, "owner") || strcmp(r[a].attack, "none") || strcmp(r[a].point, r[i].point)
                || strcmp(r[a].arch, r[i].arch)) continue;
            for (int64_t b = 0; b < n; b++)
                if (!strcmp(r[b].role, "clean") && !strcmp(r[b].attack, "none") && !strcmp(r[b].point, r[a].point)
                    && !strcmp(r[b].arch, r[a].arch) && r[b].seed == r[a].seed) {
                    oa[k] = r[a].test_acc; ca[k] = r[b].test_acc; gap[k] = oa[k] - ca[k]; k++;
                    break;
                }
        }
        char c[6][CELL];
        snprintf(c[0], CELL, "%s", r[i].point[0] ? r[i].point : "-");
        snprintf(c[1], CELL, "%s", r[i].arch);
        snprintf(c[2], CELL, "%d", k);
        fmt_ci(c[3], CELL, oa, k);
        fmt_ci(c[4], CELL, ca, k);
        fmt_ci(c[5], CELL, gap, k);
        const char *cells[6] = {c[0], c[1], c[2], c[3], c[4], c[5]};
        table_cells(t, cells);
    }
    free(gap);
    table_end(t);
}

int report_print(const char *path, report_format fmt, FILE *out, char *err, size_t errlen) {
    int64_t h = store_open(path, err, errlen);
    if (h < 0) return -1;
    store_close(h);
    store_settings st;
    store_row *rows = NULL;
    int64_t n = 0;
    if (store_read_settings(path, &st, err, errlen) || store_read_summary(path, &rows, &n, err, errlen)) return -1;
    settings s = settings_of(&st);
    /* keep the decision score's rows, in file order (jobs are grouped by setting below) */
    int64_t *idx = util_malloc(sizeof *idx * (size_t)(n ? n : 1)), k = 0;
    store_row *sel = util_malloc(sizeof *sel * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(rows[i].score, s.score)) sel[k++] = rows[i];
    /* settings table groups rows of one setting: order by (point, attack, params) stably */
    int64_t m = 0;
    for (int64_t i = 0; i < k; i++) {
        int first = 1;
        for (int64_t j = 0; j < i; j++) first &= !same_setting(&sel[i], &sel[j]);
        if (!first) continue;
        for (int64_t j = i; j < k; j++) if (same_setting(&sel[i], &sel[j])) idx[m++] = j;
    }
    table t = {out, fmt, 0};
    if (fmt == REPORT_MD) fprintf(out, "## %s (score: %s, decision: p_%s)\n", path, s.score, pmi_pvalue_name((pmi_pvalue)s.decide));
    /* a partial merge (pmi merge --partial) says so where every reader sees it */
    char *partial = store_read_attr(path, "partial_note");
    if (partial) {
        fprintf(fmt == REPORT_MD ? out : stderr, "%s%s\n", fmt == REPORT_MD ? "\n**" : "pmi report: ", partial);
        if (fmt == REPORT_MD) fprintf(out, "**\n\n");
        free(partial);
    }
    print_models(&t, sel, k);
    print_settings(&t, sel, idx, m, &s);
    print_calibration(&t, sel, k, &s);
    print_fidelity(&t, sel, k, &s);
    free(idx); free(sel); free(rows);
    return 0;
}
