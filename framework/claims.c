/* claims: verdicts per claim of the paper and the reproduction report (see claims.h). */
#include "claims.h"
#include "outfile.h"
#include "pmi.h"
#include "report.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include <dirent.h>
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const claims_rules[] = {
    "C1 lossless: holds when the 95% interval of owner minus clean test accuracy lies above -0.01 "
    "(any loss is below one point); otherwise, does not hold when it lies below 0 (a significant loss); partial "
    "otherwise, and with fewer than 2 owner/clean pairs.",
    "C2 effective: holds when the Wilson 95% lower bound of the rate of owner models claimed "
    "(verdict p-value < alpha) is at least 0.5; does not hold when no owner model is claimed; partial otherwise. "
    "The verdict p-value is the decision p-value of the pool evidence; with dataset evidence (pmi.holdout) it is "
    "min(1, 2 min(pool, dataset)) (Bonferroni), and a raw pool p-value that the pool audit refuses does not count.",
    "C3 unique: does not hold when independent models are claimed more often than a test calibrated at "
    "alpha allows (one-sided binomial test, p < 0.05); holds when not, and the Wilson 95% upper bound of "
    "their claim rate is at most 2 x alpha; partial otherwise (too few independent models to tell). An "
    "independent model trained on the owner's training set (indep-seed, indep-arch) is judged on the pool "
    "evidence alone: the dataset evidence rightly claims it.",
    "C4 robust (per attack family): settings whose owner accuracy falls more than 0.10 below the "
    "un-attacked owner accuracy are shown but not counted (the attack destroyed the model); holds when "
    "at every counted setting the Wilson 95% lower bound of the owner claim rate is at least 0.5; does "
    "not hold when no owner model is claimed at any counted setting; partial otherwise; not tested when "
    "no setting counts.",
    "C5 pool size: holds when at every pool size (N, m) the Wilson 95% lower bound of the owner claim "
    "rate is at least 0.5; does not hold when no owner model is claimed at any pool size; partial otherwise.",
};
const int claims_n_rules = sizeof claims_rules / sizeof *claims_rules;

const char *claims_verdict_name(claim_verdict v) {
    static const char *names[] = {"holds", "partial", "does not hold at this scale", "not run", "not tested"};
    return v >= CLAIM_HOLDS && v <= CLAIM_NOT_TESTED ? names[v] : "?";
}

/* ---- one results file, as the claims use it ------------------------------------------ */

typedef struct {
    const char *path;
    store_settings st;
    int decide;               /* pmi_pvalue */
    double alpha;             /* the first alpha */
    store_row *rows;          /* the decision score's rows */
    int64_t n;
    int attacked, pool_sweep, swept;
    int data;                 /* some row has dataset evidence */
} rfile;

static int rfile_load(const char *path, rfile *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    f->path = path;
    store_row *all = NULL;
    int64_t n = 0;
    if (store_read_settings(path, &f->st, err, errlen) || store_read_summary(path, &all, &n, err, errlen)) return -1;
    f->decide = pmi_pvalue_parse(f->st.decide);
    f->alpha = f->st.alphas[0];
    const char *score = pmi_score_name((pmi_score_kind)f->st.kinds[0]);
    f->rows = util_malloc(sizeof *f->rows * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        if (strcmp(all[i].score, score)) continue;
        store_row *r = &f->rows[f->n++];
        *r = all[i];
        f->attacked |= strcmp(r->attack, "none") != 0;
        f->swept |= r->point[0] != 0;
        f->pool_sweep |= r->N != f->rows[0].N || r->m != f->rows[0].m;
        f->data |= !isnan(r->data_p);
    }
    free(all);
    return 0;
}

static int is_owner(const store_row *r) { return !strcmp(r->role, "owner"); }
static int unattacked(const store_row *r) { return !strcmp(r->attack, "none"); }
/* The pool evidence's decision p-value, NAN when the pool audit refuses it (pmi_pool_p). */
static double pool_p(const rfile *f, const store_row *r) {
    int kind = pmi_score_parse(r->score);
    return kind < 0 ? store_row_p(r, f->decide) : pmi_pool_p((pmi_score_kind)kind, store_row_p(r, f->decide), r->pool_audit_p);
}
/* The verdict: pool and dataset evidence combined (store_row_verdict_p). */
static int claimed(const rfile *f, const store_row *r) { return store_row_verdict_p(r, f->decide) < f->alpha; }
static int claimed_pool(const rfile *f, const store_row *r) { return pool_p(f, r) < f->alpha; }
static int claimed_data(const rfile *f, const store_row *r) { return r->data_p < f->alpha; }
/* The verdict of a model that is null for the tests it is judged on: a model trained on the
 * owner's training set is no null model for the dataset evidence, so only its pool evidence. */
static int claimed_null(const rfile *f, const store_row *r) { return r->owner_data ? claimed_pool(f, r) : claimed(f, r); }
/* "p_perm < 0.01", or with dataset evidence "p_combined < 0.01 (p_perm and p_data, Bonferroni)". */
static void verdict_rule(const rfile *f, char *out, size_t len) {
    const char *d = pmi_pvalue_name((pmi_pvalue)f->decide);
    if (f->data) snprintf(out, len, "p_combined < %g (p_%s and p_data, Bonferroni)", f->alpha, d);
    else snprintf(out, len, "p_%s < %g", d, f->alpha);
}

/* ", pool evidence a/n, dataset evidence b/n" for a file with dataset evidence, "" otherwise. */
static void evidence_split(const rfile *f, int pool, int data, int n, char *out, size_t len) {
    if (f->data) snprintf(out, len, "; pool evidence %d/%d, dataset evidence %d/%d", pool, n, data, n);
    else out[0] = 0;
}

static claim_row *add_row(claim_row **rows, int *n, const char *claim, const rfile *f) {
    *rows = util_realloc(*rows, sizeof **rows * (size_t)(*n + 1));
    claim_row *c = &(*rows)[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->claim, sizeof c->claim, "%s", claim);
    snprintf(c->source, sizeof c->source, "%s", f ? f->path : "-");
    c->value = c->lo = c->hi = NAN;
    c->verdict = CLAIM_NOT_RUN;
    return c;
}

static void set_rate(claim_row *c, int k, int n) {
    c->value = n ? (double)k / n : NAN;
    pmi_wilson95(k, n, &c->lo, &c->hi);
}

/* The verdict of "claimed in a majority" rates: each (k[i], n[i]) a setting. */
static claim_verdict majority_verdict(const int *k, const int *n, int count) {
    int all = count > 0, any = 0;
    for (int i = 0; i < count; i++) {
        double lo, hi;
        pmi_wilson95(k[i], n[i], &lo, &hi);
        all &= n[i] > 0 && lo >= CLAIMS_MAJORITY;
        any |= k[i] > 0;
    }
    return all ? CLAIM_HOLDS : any ? CLAIM_PARTIAL : CLAIM_FAILS;
}

static double median(double *x, int n) {
    if (!n) return NAN;
    gsl_sort(x, 1, (size_t)n);
    return gsl_stats_median_from_sorted_data(x, 1, (size_t)n);
}

static void claim_c1(const rfile *f, claim_row **rows, int *n) {
    claim_row *c = add_row(rows, n, "C1 lossless", f);
    if (!f) { snprintf(c->measured, sizeof c->measured, "no experiment without attacks and sweep"); return; }
    double *gap = util_malloc(sizeof(double) * (size_t)(f->n ? f->n : 1));
    int k = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const store_row *o = &f->rows[i];
        if (!is_owner(o) || !unattacked(o)) continue;
        for (int64_t j = 0; j < f->n; j++) {
            const store_row *r = &f->rows[j];
            if (!strcmp(r->role, "clean") && unattacked(r) && r->seed == o->seed && !strcmp(r->arch, o->arch) && !strcmp(r->point, o->point)) {
                gap[k++] = o->test_acc - r->test_acc;
                break;
            }
        }
    }
    double half = NAN;
    if (k) pmi_mean_ci95(gap, k, &c->value, &half);
    c->lo = c->value - half; c->hi = c->value + half;
    free(gap);
    snprintf(c->measured, sizeof c->measured, "owner minus clean test accuracy %+.4f", c->value);
    snprintf(c->setting, sizeof c->setting, "%d owner/clean pair%s (one per seed), un-attacked", k, k == 1 ? "" : "s");
    if (k < 2) c->verdict = k ? CLAIM_PARTIAL : CLAIM_NOT_RUN;
    else c->verdict = c->lo >= -CLAIMS_LOSS_MARGIN ? CLAIM_HOLDS : c->hi < 0 ? CLAIM_FAILS : CLAIM_PARTIAL;
}

static void claim_c2(const rfile *f, claim_row **rows, int *n) {
    claim_row *c = add_row(rows, n, "C2 effective", f);
    if (!f) { snprintf(c->measured, sizeof c->measured, "no experiment without attacks and sweep"); return; }
    double *p = util_malloc(sizeof(double) * (size_t)(f->n ? f->n : 1));
    int own = 0, cl = 0, id = 0, cp = 0, cd = 0, unsafe = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const store_row *r = &f->rows[i];
        if (!is_owner(r) || !unattacked(r)) continue;
        p[own++] = store_row_p(r, f->decide);
        cl += claimed(f, r); cp += claimed_pool(f, r); cd += claimed_data(f, r);
        unsafe += isnan(pool_p(f, r)) && !isnan(store_row_p(r, f->decide));
        id += r->identified == r->secret_k;
    }
    set_rate(c, cl, own);
    const char *d = pmi_pvalue_name((pmi_pvalue)f->decide);
    char ev[128], un[96] = "";
    evidence_split(f, cp, cd, own, ev, sizeof ev);
    if (unsafe) snprintf(un, sizeof un, "; %d pool%s refused by the pool audit", unsafe, unsafe == 1 ? "" : "s");
    snprintf(c->measured, sizeof c->measured, "owner models claimed %d/%d at alpha %g (k identified %d/%d, median p_%s %.2g%s%s)",
             cl, own, f->alpha, id, own, d, median(p, own), ev, un);
    char rule[96];
    verdict_rule(f, rule, sizeof rule);
    snprintf(c->setting, sizeof c->setting, "%d owner model%s, un-attacked, %s", own, own == 1 ? "" : "s", rule);
    free(p);
    int kk[1] = {cl}, nn[1] = {own};
    c->verdict = own ? majority_verdict(kk, nn, 1) : CLAIM_NOT_RUN;
}

static void claim_c3(const rfile *f, claim_row **rows, int *n) {
    claim_row *c = add_row(rows, n, "C3 unique", f);
    if (!f) { snprintf(c->measured, sizeof c->measured, "no experiment without attacks and sweep"); return; }
    int ind = 0, fp = 0, fpp = 0, nd = 0, fpd = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const store_row *r = &f->rows[i];
        if (!r->independent || !unattacked(r)) continue;
        ind++;
        fp += claimed_null(f, r); fpp += claimed_pool(f, r);
        if (!r->owner_data) { nd++; fpd += claimed_data(f, r); }
    }
    set_rate(c, fp, ind);
    /* P(X >= fp) for X ~ Binomial(ind, alpha): the chance of this many under calibration */
    double tail = fp == 0 ? 1 : gsl_cdf_binomial_Q((unsigned)(fp - 1), f->alpha, (unsigned)ind);
    char ev[160] = "", bt[64] = "none claimed";
    if (f->data) snprintf(ev, sizeof ev, "; pool evidence %d/%d, dataset evidence %d/%d of those that never saw the owner's data",
                          fpp, ind, fpd, nd);
    if (fp) snprintf(bt, sizeof bt, "binomial P(X >= %d) = %.2g", fp, tail);
    snprintf(c->measured, sizeof c->measured, "independent models claimed %d/%d at alpha %g (%s%s)", fp, ind, f->alpha, bt, ev);
    char rule[96];
    verdict_rule(f, rule, sizeof rule);
    snprintf(c->setting, sizeof c->setting, "%d independent model%s (never saw the pool), un-attacked, %s", ind,
             ind == 1 ? "" : "s", rule);
    if (!ind) { c->verdict = CLAIM_NOT_RUN; snprintf(c->measured, sizeof c->measured, "no independent models in %s", f->path); return; }
    c->verdict = tail < 0.05 ? CLAIM_FAILS : c->hi <= CLAIMS_FPR_FACTOR * f->alpha ? CLAIM_HOLDS : CLAIM_PARTIAL;
}

static int same_setting(const store_row *a, const store_row *b) {
    return !strcmp(a->point, b->point) && !strcmp(a->attack, b->attack) && !strcmp(a->params, b->params);
}

/* Owner statistics of the setting of row s: owners, claims, mean accuracy. */
static void owner_stats(const rfile *f, const store_row *s, int *own, int *cl, int *cp, int *cd, double *acc) {
    double sum = 0;
    *own = *cl = *cp = *cd = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const store_row *r = &f->rows[i];
        if (!is_owner(r) || !same_setting(r, s)) continue;
        (*own)++;
        *cl += claimed(f, r); *cp += claimed_pool(f, r); *cd += claimed_data(f, r);
        sum += r->test_acc;
    }
    *acc = *own ? sum / *own : NAN;
}

/* One row per attack family (attack type) of file f. */
static void claim_c4_file(const rfile *f, claim_row **rows, int *n) {
    double acc0 = 0;
    int n0 = 0;
    for (int64_t i = 0; i < f->n; i++)
        if (is_owner(&f->rows[i]) && unattacked(&f->rows[i])) { acc0 += f->rows[i].test_acc; n0++; }
    acc0 = n0 ? acc0 / n0 : NAN;
    for (int64_t i = 0; i < f->n; i++) {
        const store_row *x = &f->rows[i];
        int first = !unattacked(x);
        for (int64_t j = 0; j < i && first; j++) first = strcmp(f->rows[j].attack_type, x->attack_type) != 0;
        if (!first) continue;
        char name[96];
        snprintf(name, sizeof name, "C4 robust: %s", x->attack_type);
        claim_row *c = add_row(rows, n, name, f);
        int ks[256], ns[256], kp[256], kd[256], count = 0, total = 0, worst = -1;
        double worst_acc = NAN;
        char excluded[512] = "", worst_params[300] = "";
        for (int64_t j = i; j < f->n; j++) {
            const store_row *s = &f->rows[j];
            int fresh = !strcmp(s->attack_type, x->attack_type);
            for (int64_t q = i; q < j && fresh; q++) fresh = !same_setting(&f->rows[q], s);
            if (!fresh) continue;
            int own, cl, cp, cd;
            double acc;
            owner_stats(f, s, &own, &cl, &cp, &cd, &acc);
            total++;
            if (!(acc >= acc0 - CLAIMS_UTILITY_DROP)) {
                size_t u = strlen(excluded);
                snprintf(excluded + u, sizeof excluded - u, "%s%s (accuracy %.2f)", u ? "; " : "", s->params[0] ? s->params : s->attack, acc);
                continue;
            }
            if (count == 256) continue;
            ks[count] = cl; ns[count] = own; kp[count] = cp; kd[count] = cd;
            if (worst < 0 || (own && (double)cl / own < (double)ks[worst] / (ns[worst] ? ns[worst] : 1))) {
                worst = count; worst_acc = acc;
                snprintf(worst_params, sizeof worst_params, "%s", s->params[0] ? s->params : s->attack);
            }
            count++;
        }
        if (!count) {
            c->verdict = CLAIM_NOT_TESTED;
            snprintf(c->measured, sizeof c->measured, "every setting cost more than %.2f accuracy", CLAIMS_UTILITY_DROP);
        } else {
            set_rate(c, ks[worst], ns[worst]);
            c->verdict = majority_verdict(ks, ns, count);
            char ev[128];
            evidence_split(f, kp[worst], kd[worst], ns[worst], ev, sizeof ev);
            snprintf(c->measured, sizeof c->measured, "least claimed: %d/%d at alpha %g after %s (owner accuracy %.3f, un-attacked %.3f%s)",
                     ks[worst], ns[worst], f->alpha, worst_params, worst_acc, acc0, ev);
        }
        snprintf(c->setting, sizeof c->setting, "%d of %d setting%s counted%s%s", count, total, total == 1 ? "" : "s",
                 excluded[0] ? "; not counted: " : "", excluded);
    }
}

static void claim_c5(const rfile *f, claim_row **rows, int *n) {
    claim_row *c = add_row(rows, n, "C5 pool size", f);
    if (!f) { snprintf(c->measured, sizeof c->measured, "no experiment with more than one pool size (N, m)"); return; }
    int ks[256], ns[256], count = 0, worst = -1;
    size_t u = 0;
    for (int64_t i = 0; i < f->n && count < 256; i++) {
        const store_row *x = &f->rows[i];
        if (!is_owner(x) || !unattacked(x)) continue;
        int first = 1;
        for (int64_t j = 0; j < i && first; j++)
            first = !(is_owner(&f->rows[j]) && unattacked(&f->rows[j]) && f->rows[j].N == x->N && f->rows[j].m == x->m);
        if (!first) continue;
        int own = 0, cl = 0;
        for (int64_t j = i; j < f->n; j++) {
            const store_row *r = &f->rows[j];
            if (is_owner(r) && unattacked(r) && r->N == x->N && r->m == x->m) { own++; cl += claimed(f, r); }
        }
        ks[count] = cl; ns[count] = own;
        if (worst < 0 || (double)cl / own < (double)ks[worst] / ns[worst]) worst = count;
        if (u < sizeof c->setting)
            u += (size_t)snprintf(c->setting + u, sizeof c->setting - u, "%sN=%d m=%d: %d/%d", count ? "; " : "", x->N, x->m, cl, own);
        count++;
    }
    if (!count) { snprintf(c->measured, sizeof c->measured, "no un-attacked owner models"); return; }
    set_rate(c, ks[worst], ns[worst]);
    c->verdict = majority_verdict(ks, ns, count);
    snprintf(c->measured, sizeof c->measured, "least claimed pool size: %d/%d owner models at alpha %g (%d pool sizes)",
             ks[worst], ns[worst], f->alpha, count);
}

int claims_evaluate(const char *const *paths, int n, claim_row **rows, int *nrows, char *err, size_t errlen) {
    *rows = NULL; *nrows = 0;
    rfile *f = util_calloc((size_t)(n ? n : 1), sizeof *f);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = rfile_load(paths[i], &f[i], err, errlen);
    if (!rc) {
        const rfile *base = NULL, *pool = NULL;
        for (int i = 0; i < n; i++) {
            if (!base && !f[i].attacked && !f[i].swept) base = &f[i];
            if (!pool && f[i].pool_sweep) pool = &f[i];
        }
        claim_c1(base, rows, nrows);
        claim_c2(base, rows, nrows);
        claim_c3(base, rows, nrows);
        int before = *nrows;
        for (int i = 0; i < n; i++) if (f[i].attacked) claim_c4_file(&f[i], rows, nrows);
        if (*nrows == before) snprintf(add_row(rows, nrows, "C4 robust", NULL)->measured, sizeof (*rows)->measured, "no experiment with attacks");
        claim_c5(pool, rows, nrows);
    }
    for (int i = 0; i < n; i++) free(f[i].rows);
    free(f);
    if (rc) { free(*rows); *rows = NULL; *nrows = 0; }
    return rc;
}

/* ---- the report ---------------------------------------------------------------------- */

/* The name of the folder holding path ("results/small/fingerprint/results.h5": "fingerprint"). */
static void experiment_of(const char *path, char *out, size_t len) {
    const char *end = strrchr(path, '/'), *start = end;
    while (start && start > path && start[-1] != '/') start--;
    if (end && start && end > start) snprintf(out, len, "%.*s", (int)(end - start), start);
    else snprintf(out, len, "results");
}

/* The path of target relative to the folder dir (both made absolute first); target itself if
 * either cannot be resolved. */
static void relative_path(const char *dir, const char *target, char *out, size_t len) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(dir, a) || !realpath(target, b)) { snprintf(out, len, "%s", target); return; }
    size_t i = 0, common = 0;
    while (a[i] && a[i] == b[i]) { if (a[i] == '/') common = i; i++; }
    if (!a[i] && (b[i] == '/' || !b[i])) common = i;       /* dir is a prefix of target */
    size_t u = 0;
    out[0] = 0;
    for (const char *p = a + common; *p; p++)
        if (*p == '/' && u < len) u += (size_t)snprintf(out + u, len - u, "../");
    snprintf(out + u, len > u ? len - u : 0, "%s", b[common] == '/' ? b + common + 1 : b + common);
}

/* Seconds between two ISO 8601 UTC stamps; NAN when either cannot be read. */
static double seconds_between(const char *a, const char *b) {
    struct tm ta, tb;
    memset(&ta, 0, sizeof ta); memset(&tb, 0, sizeof tb);
    if (!a || !b || !strptime(a, "%Y-%m-%dT%H:%M:%SZ", &ta) || !strptime(b, "%Y-%m-%dT%H:%M:%SZ", &tb)) return NAN;
    return difftime(timegm(&tb), timegm(&ta));
}

static void md_cell(FILE *out, const char *s) {
    fputs("| ", out);
    for (; s && *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else fputc(*s == '\n' ? ' ' : *s, out);
    }
    fputc(' ', out);
}

static void write_provenance(FILE *out, const char *const *paths, int n) {
    fputs("| experiment | device | host | commit | config hash | started | wall time (s) | file |\n|---|---|---|---|---|---|---|---|\n", out);
    for (int i = 0; i < n; i++) {
        char exp[256], wall[32] = "-";
        experiment_of(paths[i], exp, sizeof exp);
        char *v[6];
        static const char *names[6] = {"device", "host", "git_commit", "config_hash", "started", "finished"};
        for (int k = 0; k < 6; k++) v[k] = store_read_attr(paths[i], names[k]);
        double w = seconds_between(v[4], v[5]);
        if (!isnan(w)) snprintf(wall, sizeof wall, "%.0f", w);
        md_cell(out, exp);
        for (int k = 0; k < 5; k++) md_cell(out, v[k] ? v[k] : "-");
        md_cell(out, wall);
        md_cell(out, paths[i]);
        fputs("|\n", out);
        for (int k = 0; k < 6; k++) free(v[k]);
    }
    fputs("\nWall time: from the run's start to the merge of its results (root attributes `started` and "
          "`finished`; a resumed run counts the time between its sessions).\n", out);
}

static void write_claims(FILE *out, const claim_row *rows, int n) {
    fputs("| claim | measured | value [95% interval] | setting | verdict |\n|---|---|---|---|---|\n", out);
    for (int i = 0; i < n; i++) {
        const claim_row *c = &rows[i];
        char v[96] = "-";
        if (!isnan(c->value) && !isnan(c->lo)) snprintf(v, sizeof v, "%.3f [%.3f, %.3f]", c->value, c->lo, c->hi);
        else if (!isnan(c->value)) snprintf(v, sizeof v, "%.3f", c->value);
        char verdict[64];
        snprintf(verdict, sizeof verdict, "**%s**", claims_verdict_name(c->verdict));
        md_cell(out, c->claim); md_cell(out, c->measured); md_cell(out, v); md_cell(out, c->setting); md_cell(out, verdict);
        fputs("|\n", out);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Links to every *.png of <plots_dir>/<experiment>, relative to the report's folder. */
static void write_figures(FILE *out, const char *plots_dir, const char *exp, const char *report_dir) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", plots_dir, exp);
    DIR *d = opendir(dir);
    if (!d) { fprintf(out, "\nNo figures: %s does not exist (pmi plot writes them).\n", dir); return; }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".png")) {
            names = util_realloc(names, sizeof *names * (size_t)(n + 1));
            names[n++] = util_strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    if (!n) fprintf(out, "\nNo figures in %s.\n", dir);
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX + 256], rel[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        relative_path(report_dir, p, rel, sizeof rel);
        fprintf(out, "\n![%s: %.*s](%s)\n", exp, (int)(strlen(names[i]) - 4), names[i], rel);
        free(names[i]);
    }
    free(names);
}

/* Every score kind's verdict of a file with several kinds: per setting (sweep point, attack),
 * the owner models claimed at the first alpha by each kind's verdict p-value (pool and dataset
 * evidence combined, store_row_verdict_p), then the un-attacked independent models claimed
 * (claimed_null's rule). The decision kind comes first. */
static int write_kinds(FILE *out, const char *path, char *err, size_t errlen) {
    store_settings st;
    store_row *r = NULL;
    int64_t n = 0;
    if (store_read_settings(path, &st, err, errlen) || store_read_summary(path, &r, &n, err, errlen)) return -1;
    if (st.n_kinds < 2) { free(r); return 0; }
    rfile f = {.path = path, .st = st, .decide = pmi_pvalue_parse(st.decide), .alpha = st.alphas[0]};
    char exp[256];
    experiment_of(path, exp, sizeof exp);
    fprintf(out, "\n### %s: every score kind's verdict\n\nOwner models claimed at alpha %g (pool and dataset evidence combined) "
            "per setting, and un-attacked independent models claimed, for each score kind; the first is the decision kind.\n\n"
            "| sweep | setting |", exp, f.alpha);
    for (int q = 0; q < st.n_kinds; q++) fprintf(out, " %s |", pmi_score_name((pmi_score_kind)st.kinds[q]));
    fputs("\n|---|---|", out);
    for (int q = 0; q < st.n_kinds; q++) fputs("---|", out);
    fputc('\n', out);
    const char *k0 = pmi_score_name((pmi_score_kind)st.kinds[0]);
    for (int pass = 0; pass < 2; pass++)   /* owners per setting, then independent models per sweep point */
        for (int64_t i = 0; i < n; i++) {
            const store_row *x = &r[i];
            if (strcmp(x->score, k0) || (pass == 0 ? !is_owner(x) : !x->independent || !unattacked(x))) continue;
            int first = 1;
            for (int64_t j = 0; j < i && first; j++)
                first = !(!strcmp(r[j].score, k0) && (pass == 0 ? is_owner(&r[j]) && same_setting(&r[j], x)
                                                               : r[j].independent && unattacked(&r[j]) && !strcmp(r[j].point, x->point)));
            if (!first) continue;
            char what[400];
            if (pass) snprintf(what, sizeof what, "independent models, un-attacked");
            else if (x->params[0]) snprintf(what, sizeof what, "%s: %s", x->attack, x->params);
            else snprintf(what, sizeof what, "%s", x->attack);
            md_cell(out, x->point[0] ? x->point : "-");
            md_cell(out, what);
            for (int q = 0; q < st.n_kinds; q++) {
                const char *kn = pmi_score_name((pmi_score_kind)st.kinds[q]);
                int cl = 0, all = 0;
                for (int64_t j = 0; j < n; j++) {
                    const store_row *y = &r[j];
                    if (strcmp(y->score, kn)) continue;
                    if (pass == 0 ? !is_owner(y) || !same_setting(y, x) : !y->independent || !unattacked(y) || strcmp(y->point, x->point)) continue;
                    all++;
                    cl += pass == 0 ? claimed(&f, y) : claimed_null(&f, y);
                }
                fprintf(out, "| %d/%d ", cl, all);
            }
            fputs("|\n", out);
        }
    free(r);
    return 0;
}

static int write_body(FILE *out, const char *const *paths, int n, const char *plots_dir, const char *report_dir,
                      char *err, size_t errlen) {
    claim_row *rows;
    int nrows;
    if (claims_evaluate(paths, n, &rows, &nrows, err, errlen)) return -1;
    char now[64];
    util_iso_now(now, sizeof now);
    fprintf(out, "# PMI reproduction report\n\nWritten %s by pmi %s (commit %s) from %d results file%s.\n\n## Machine and runs\n\n",
            now, pmi_version, pmi_git_commit, n, n == 1 ? "" : "s");
    write_provenance(out, paths, n);
    fputs("\n## Claims\n\nEach claim on the decision score and p-value of its results file, at the file's first alpha; "
          "the rules of the verdicts are at the end.\n\n", out);
    write_claims(out, rows, nrows);
    free(rows);
    fputs("\n## Tables\n", out);
    for (int i = 0; i < n; i++) {
        report_options o = report_default_options();
        fputc('\n', out);
        if (report_write(paths[i], &o, out, err, errlen) || write_kinds(out, paths[i], err, errlen)) return -1;
    }
    if (plots_dir) {
        fputs("\n## Figures\n", out);
        for (int i = 0; i < n; i++) {
            char exp[256];
            experiment_of(paths[i], exp, sizeof exp);
            fprintf(out, "\n### %s\n", exp);
            write_figures(out, plots_dir, exp, report_dir);
        }
    }
    fputs("\n---\n\n**Verdict rules** (docs/claims.md):\n\n", out);
    for (int i = 0; i < claims_n_rules; i++) fprintf(out, "- %s\n", claims_rules[i]);
    return 0;
}

int claims_write_report(const char *const *paths, int n, const char *plots_dir, const char *out_path,
                        char *err, size_t errlen) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    FILE *out = outfile_open(out_path, OUTFILE_PUBLIC, 0, err, errlen);
    if (!out) return -1;
    if (write_body(out, paths, n, plots_dir, dir, err, errlen)) { outfile_discard(out); return -1; }
    return outfile_close(out, err, errlen);
}
