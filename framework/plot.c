/* plot: gnuplot figures from a results file (see plot.h).
 *
 * One table lists the figures: each has a template in plots/ and a function that reads the
 * store, writes the figure's .dat files and a header of gnuplot variables, then calls
 * render(). render() writes <figure>.gp (terminal + header + template) and runs gnuplot in
 * out_dir with its stderr captured. */
#include "plot.h"
#include "outfile.h"
#include "pmi.h"
#include "store.h"
#include "util.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gsl/gsl_histogram.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PMI_DATADIR
#define PMI_DATADIR "/usr/local/share/pmi-lab"   /* the installed share folder (make PREFIX) */
#endif

/* A label or title drawn in a figure: wide enough for every field it is built from. */
#define LABEL 640

typedef struct {
    const char *path, *dir, *fmt;
    int column;                    /* 1: --size column (3.5 in), 0: page (7 in) */
    FILE *log;
    store_settings set;            /* the file's decision settings */
    int decide;                    /* the decision pmi_pvalue */
    const char *score;             /* the decision score kind's name */
    store_row *rows; int64_t n;    /* /summary rows of the decision score kind only */
    store_row *all; int64_t nall;  /* every /summary row */
    int few;                       /* fewer than PLOT_FEW_SEEDS seeds: spreads are the seeds' median and range */
    char spread[96];               /* how spreads are computed, for the captions: "median and range of 2 seeds" */
    double lp_cap;                 /* the largest -log10 p the decision p-value can take (INFINITY: none) */
    char tdir[PATH_MAX];           /* folder of the templates */
    char *err; size_t errlen;
} plot_ctx;

/* A figure: its name, template and height as a fraction of the width, on a page (7 in) and
 * in one column (3.5 in, where panels side by side on a page are stacked). */
typedef struct { const char *name, *tmpl; double h_page, h_column; } fig_spec;

/* Below this many seeds a t-interval says little (t = 12.7 at two seeds): the figures draw the
 * seeds' median and range (whose ends are the seeds) instead of the mean and its 95% t-CI. */
#define PLOT_FEW_SEEDS 5

/* Width (inches) and font size (points) of the two sizes. */
#define PAGE_IN 7.0
#define COLUMN_IN 3.5
#define PAGE_PT 9
#define COLUMN_PT 8
#define PNG_DPI 150   /* pixels per inch of a PNG; cairo sizes fonts at 72 per inch */
#define SVG_DPI 96    /* the CSS inch, what browsers and SVG editors assume */

#define row_p store_row_p
/* -log10 p, the evidence against H0 (p = 0 reads as 1e-300); NaN stays NaN. */
static double lp(double p) { return -log10(fmax(p, 1e-300)) + 0.0; }
static int is_owner(const store_row *r) { return !strcmp(r->role, "owner"); }
static int unattacked(const store_row *r) { return !strcmp(r->attack, "none"); }

/* ---- aggregation over seeds -------------------------------------------------------- */
typedef struct { double *lp, *acc; int n, ident; } agg;

static void agg_init(agg *a, int64_t cap) {
    a->lp = util_malloc(sizeof(double) * (size_t)(cap + 1) * 2);
    a->acc = a->lp + cap + 1;
    a->n = a->ident = 0;
}
static void agg_add(agg *a, const store_row *r, int decide) {
    a->acc[a->n] = r->test_acc;
    a->lp[a->n++] = lp(row_p(r, decide));
    a->ident += r->identified == r->secret_k;
}
/* The centre and spread of x[0..n) without NaNs, inside [lo, hi] (the range the quantity can
 * take): with few seeds the median and the range of the values, else the mean and its 95%
 * t-CI clipped to [lo, hi]; lo = hi = centre for one value, NaN for none. */
static void spread(int few, const double *x, int n, double lo, double hi, double *mid, double *a, double *b) {
    double *v = util_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1)), half;
    int k = 0;
    for (int i = 0; i < n; i++) if (!isnan(x[i])) v[k++] = x[i];
    if (few && k > 0) {
        gsl_sort(v, 1, (size_t)k);
        *mid = gsl_stats_median_from_sorted_data(v, 1, (size_t)k);
        *a = v[0]; *b = v[k - 1];
    } else {
        pmi_mean_ci95(v, k, mid, &half);
        if (isnan(half)) half = 0;
        *a = *mid - half; *b = *mid + half;
    }
    free(v);
    *mid = fmin(hi, fmax(lo, *mid)); *a = fmax(lo, *a); *b = fmin(hi, *b);
}
/* Writes " centre lo hi" of spread(). Returns the upper end. */
static double write_ci(const plot_ctx *c, FILE *f, const double *x, int n, double lo, double hi) {
    double mid, a, b;
    spread(c->few, x, n, lo, hi, &mid, &a, &b);
    fprintf(f, " %.6g %.6g %.6g", mid, a, b);
    return b;
}
/* Writes " lo hi", the Wilson 95% interval of k of n (a rate's interval). */
static void write_wilson(FILE *f, int k, int n) {
    double lo, hi;
    pmi_wilson95(k, n, &lo, &hi);
    fprintf(f, " %.6g %.6g", lo, hi);
}
/* How a figure's spreads are computed, for its captions. */
static const char *spread_text(const plot_ctx *c) { return c->spread; }
static double mean_of(const double *x, int n) {
    double s = 0; int k = 0;
    for (int i = 0; i < n; i++) if (!isnan(x[i])) { s += x[i]; k++; }
    return k ? s / k : NAN;
}

/* ---- gnuplot text helpers ------------------------------------------------------------ */
static void gp_str(FILE *h, const char *var, const char *val) {
    fprintf(h, "%s = \"", var);
    for (const char *c = val; *c; c++) fprintf(h, *c == '\n' ? "\\n" : strchr("\\\"", *c) ? "\\%c" : "%c", *c);
    fputs("\"\n", h);
}
static void gp_array(FILE *h, const char *var, char labels[][LABEL], int n) {
    fprintf(h, "array %s[%d]\n", var, n);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%d]", var, i + 1);
        gp_str(h, name, labels[i]);
    }
}
/* Replaces every character outside [A-Za-z0-9._-] by '_' (figure names become file names). */
static void safe_name(char *s) {
    for (; *s; s++) if (!isalnum((unsigned char)*s) && !strchr("._-", *s)) *s = '_';
}
/* Writes "dir/name<suffix>" into p (PATH_MAX); -1 with err naming the limit when it is longer. */
static int out_path(plot_ctx *c, char *p, const char *name, const char *suffix) {
    int n = snprintf(p, PATH_MAX, "%s/%s%s", c->dir, name, suffix);
    if (n >= 0 && n < PATH_MAX) return 0;
    snprintf(c->err, c->errlen, "figure %s: the path %s/%s%s is longer than PATH_MAX (%d)", name, c->dir, name, suffix, PATH_MAX);
    return -1;
}

static FILE *open_data(plot_ctx *c, const char *name) {
    char p[PATH_MAX];
    if (out_path(c, p, name, ".dat")) return NULL;
    FILE *f = outfile_open(p, OUTFILE_PUBLIC, 0, c->err, c->errlen);
    return f;
}

/* Moves a data file of open_data() into place; a failure leaves its message in c->err, which
 * the begin_script() that follows every data file reports. */
static void close_data(plot_ctx *c, FILE *f) {
    outfile_close(f, c->err[0] ? NULL : c->err, c->errlen);
}

/* ---- running gnuplot -------------------------------------------------------------------- */
static const char *gnuplot_prog(void) {
    const char *g = getenv("PMI_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* Seconds gnuplot may take for one figure before it is killed: PMI_GNUPLOT_TIMEOUT, else 300. */
static int gnuplot_timeout_s(void) {
    const char *t = getenv("PMI_GNUPLOT_TIMEOUT");
    int s = t ? atoi(t) : 0;
    return s > 0 ? s : 300;
}

/* Runs `gnuplot script` in dir (posix_spawnp, so no code runs in a forked copy of a threaded
 * process); gnuplot's stderr goes into out (its tail when long). Returns the exit status, or
 * -1 with the reason in out when the program cannot be started or did not end within
 * gnuplot_timeout_s() (it is killed). */
static int run_gnuplot(const char *dir, const char *script, char *out, size_t outlen) {
    int fd[2], st = 0;
    if (pipe(fd)) { snprintf(out, outlen, "cannot create a pipe: %s", strerror(errno)); return -1; }
    const char *prog = gnuplot_prog();
    char *argv[] = {(char *)prog, (char *)script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t n = 0;
    char buf[512];
    double deadline = util_now_s() + gnuplot_timeout_s();
    int late = 0;
    for (ssize_t k; !rc && !late;) {
        struct pollfd pf = {.fd = fd[0], .events = POLLIN};
        int left_ms = (int)((deadline - util_now_s()) * 1000), p = left_ms > 0 ? poll(&pf, 1, left_ms) : 0;
        if (p == 0) { late = 1; kill(pid, SIGKILL); break; }
        if (p < 0 || (k = read(fd[0], buf, sizeof buf)) < 0) { if (errno == EINTR) continue; break; }
        if (k == 0) break;
        for (ssize_t i = 0; i < k; i++) {
            if (n + 1 >= outlen) { memmove(out, out + outlen / 2, n - outlen / 2); n -= outlen / 2; }
            out[n++] = buf[i];
        }
    }
    close(fd[0]);
    out[n] = 0;
    while (n > 0 && strchr("\n ", out[n - 1])) out[--n] = 0;
    if (rc) { snprintf(out, outlen, "cannot run '%s': %s", prog, strerror(rc)); return -1; }
    for (pid_t w; (w = waitpid(pid, &st, late ? 0 : WNOHANG)) <= 0;) {
        if (w < 0 && errno != EINTR) { snprintf(out, outlen, "waiting for '%s': %s", prog, strerror(errno)); return -1; }
        if (w == 0 && util_now_s() > deadline) { late = 1; kill(pid, SIGKILL); }
        else if (w == 0) usleep(10000);
    }
    if (late) {
        snprintf(out, outlen, "'%s %s' did not finish within %d s (PMI_GNUPLOT_TIMEOUT): killed", prog, script, gnuplot_timeout_s());
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The terminal line for a w x h inch picture with pt-point fonts, and the variables every
 * template may read: column (1 at one-column width), fontpt. */
static void write_terminal(FILE *f, const char *fmt, double w, double h, int pt, int column) {
    fprintf(f, "# size: %s, %.2f in x %.2f in, %d pt fonts\n", column ? "column" : "page", w, h, pt);
    if (!strcmp(fmt, "png")) {
        double k = PNG_DPI / 72.0;
        fprintf(f, "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
                   "    set terminal pngcairo noenhanced size %d,%d font \"sans,%.1f\" linewidth %.2f\n"
                   "} else {\n    set terminal png noenhanced size %d,%d\n}\n",
                (int)lround(w * PNG_DPI), (int)lround(h * PNG_DPI), pt * k, k / 2, (int)lround(w * PNG_DPI), (int)lround(h * PNG_DPI));
    } else if (!strcmp(fmt, "pdf"))
        fprintf(f, "set terminal pdfcairo noenhanced size %.2fin,%.2fin font \"sans,%d\" linewidth 0.5\n", w, h, pt);
    else fprintf(f, "set terminal svg noenhanced size %d,%d dynamic font \"sans,%.1f\"\n",
                 (int)lround(w * SVG_DPI), (int)lround(h * SVG_DPI), pt * SVG_DPI / 72.0);
    fprintf(f, "column = %d\nfontpt = %d\n", column, pt);
}

/* Appends the template file to f; -1 with err when it cannot be read. */
static int copy_template(plot_ctx *c, const char *fig, const char *tmpl, FILE *f) {
    char p[PATH_MAX], buf[4096];
    int n = snprintf(p, sizeof p, "%s/%s", c->tdir, tmpl);
    if (n < 0 || n >= (int)sizeof p) {
        snprintf(c->err, c->errlen, "figure %s: the template path %s/%s is longer than PATH_MAX (%d)", fig, c->tdir, tmpl, PATH_MAX);
        return -1;
    }
    FILE *t = fopen(p, "r");
    if (!t) { snprintf(c->err, c->errlen, "figure %s: cannot read template %s: %s", fig, p, strerror(errno)); return -1; }
    for (size_t k; (k = fread(buf, 1, sizeof buf, t)) > 0;) fwrite(buf, 1, k, f);
    fclose(t);
    return 0;
}

/* Opens <name>.gp and writes its terminal and output lines; the caller adds the header
 * variables and hands it to render(). The picture is h_in inches high, or the spec's fraction
 * of the width when h_in is 0. NULL with err when the file cannot be created. */
static FILE *begin_script(plot_ctx *c, const fig_spec *fs, const char *name, double h_in) {
    char gp[PATH_MAX];
    if (c->err[0] || out_path(c, gp, name, ".gp")) return NULL;
    FILE *f = outfile_open(gp, OUTFILE_PUBLIC, 0, c->err, c->errlen);
    if (!f) return NULL;
    fprintf(f, "# %s.gp: figure '%s' of %s, generated by pmi plot from plots/%s.\n"
               "# Redraw it with: cd <this folder> && gnuplot %s.gp\n", name, fs->name, c->path, fs->tmpl, name);
    double w = c->column ? COLUMN_IN : PAGE_IN;
    double h = h_in > 0 ? h_in : w * (c->column ? fs->h_column : fs->h_page);
    write_terminal(f, c->fmt, w, h, c->column ? COLUMN_PT : PAGE_PT, c->column);
    fprintf(f, "set output \"%s.%s\"\n", name, c->fmt);
    return f;
}

/* Appends the template to the script f from begin_script(), closes it and runs gnuplot. */
static int render(plot_ctx *c, const fig_spec *fs, const char *name, FILE *f) {
    char out[PATH_MAX], ext[16], script[300], msg[2048];
    fprintf(f, "\n# ---- template plots/%s ----\n", fs->tmpl);
    if (copy_template(c, name, fs->tmpl, f)) { outfile_discard(f); return -1; }
    if (outfile_close(f, c->err, c->errlen)) return -1;
    snprintf(ext, sizeof ext, ".%s", c->fmt);
    if (out_path(c, out, name, ext)) return -1;
    snprintf(script, sizeof script, "%s.gp", name);
    unlink(out);
    int st = run_gnuplot(c->dir, script, msg, sizeof msg);
    struct stat sb;
    if (st < 0) {
        snprintf(c->err, c->errlen, "figure %s: %s%s", name, msg, strstr(msg, "did not finish") ? "" : " (install gnuplot, e.g. gnuplot-nox, or set PMI_GNUPLOT)");
        return -1;
    }
    if (st != 0 || stat(out, &sb) || sb.st_size == 0) {
        snprintf(c->err, c->errlen, "figure %s: '%s %s' in %s %s %d: %s", name, gnuplot_prog(), script, c->dir,
                 st ? "failed with exit status" : "wrote no picture, exit status", st, msg[0] ? msg : "(no message)");
        return -1;
    }
    if (c->log) fprintf(c->log, "wrote %s (%s.gp, %s.dat)%s%s\n", out, name, name, msg[0] ? "; gnuplot said: " : "", msg);
    return 0;
}

/* Logs why a figure is skipped. Returns 1: skipped, which is not a failure. */
static int skip(plot_ctx *c, const char *name, const char *why) {
    if (c->log) fprintf(c->log, "skipped %s: %s\n", name, why);
    return 1;
}

/* ---- robustness ---------------------------------------------------------------------- */
/* The swept parameter of attack rows r[idx], as the producer recorded it: the strength_key of
 * the first row with one. "" if none has (no swept parameter). */
static const char *swept_key(const store_row *r, const int64_t *idx, int n) {
    for (int i = 0; i < n; i++)
        if (r[idx[i]].strength_key[0]) return r[idx[i]].strength_key;
    return "";
}

/* params without "key=value": what tells two settings of one section apart besides strength. */
static void variant_of(const char *params, const char *key, char *out, size_t len) {
    size_t n = 0, kl = strlen(key);
    out[0] = 0;
    for (const char *p = params; *p;) {
        size_t l = strcspn(p, ",");
        if (!(kl && !strncmp(p, key, kl) && p[kl] == '='))
            n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%.*s", n ? "," : "", (int)l, p);
        p += l + (p[l] == ',');
    }
}

static const char *key_unit(const char *key) {
    static const char *const units[][2] = {
        {"sparsity", "fraction of weights"}, {"epochs", "epochs"}, {"lr", "learning rate"},
        {"fraction", "fraction of attacker data"}, {"bits", "bits per weight"},
        {"sigma", "noise std / tensor std"}, {"temperature", "softmax temperature"},
        {"alpha", "soft-label weight"}, {"width", "student width"}, {"batch_size", "samples"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(key, units[i][0])) return units[i][1];
    return "value";
}

typedef struct { char point[256], arch[STORE_NAME], variant[256]; } line_id;

static int row_on_line(const store_row *r, const line_id *l, const char *key) {
    char v[256];
    variant_of(r->params, key, v, sizeof v);
    return !strcmp(r->point, l->point) && !strcmp(r->arch, l->arch) && !strcmp(v, l->variant);
}

/* One block of the robustness data: per strength, owner rows of line l (or all independent
 * rows when l is NULL), with the un-attacked reference of the same models. *top gets the
 * largest -log10 p drawn. */
static void robust_block(FILE *f, plot_ctx *c, const int64_t *idx, int n, const line_id *l, const char *key,
                         const double *xs, int nx, agg *a, double *top) {
    agg ref;
    agg_init(&ref, c->n);
    for (int64_t i = 0; i < c->n; i++) {
        const store_row *r = &c->rows[i];
        if (unattacked(r) && (l ? is_owner(r) && !strcmp(r->point, l->point) && !strcmp(r->arch, l->arch) : r->independent))
            agg_add(&ref, r, c->decide);
    }
    fprintf(f, "# %s (centre lo hi: %s, within the attainable range)\n# strength models ident_rate lp_mid lp_lo lp_hi"
               " acc_mid acc_lo acc_hi ref_lp ref_acc ident_lo ident_hi (Wilson 95%%)\n", l ? "owner models" : "independent models (all)",
            spread_text(c));
    for (int j = 0; j < nx; j++) {
        a->n = a->ident = 0;
        for (int i = 0; i < n; i++) {
            const store_row *r = &c->rows[idx[i]];
            if (r->strength == xs[j] && (l ? is_owner(r) && row_on_line(r, l, key) : r->independent)) agg_add(a, r, c->decide);
        }
        if (a->n == 0) continue;
        fprintf(f, "%.6g %d %.6g", xs[j], a->n, l ? (double)a->ident / a->n : NAN);
        *top = fmax(*top, write_ci(c, f, a->lp, a->n, 0, c->lp_cap));
        write_ci(c, f, a->acc, a->n, 0, 1);
        double rl = mean_of(ref.lp, ref.n);
        fprintf(f, " %.6g %.6g", rl, mean_of(ref.acc, ref.n));
        if (l) write_wilson(f, a->ident, a->n);
        else fputs(" nan nan", f);
        fputc('\n', f);
        *top = fmax(*top, rl);
    }
    fputs("\n\n", f);
    free(ref.lp);
}

/* The distinct lines (point, arch, variant) of the owner rows r[idx]; lines has room for n. */
static int robust_lines(plot_ctx *c, const int64_t *idx, int n, const char *key, line_id *lines) {
    int nl = 0;
    for (int i = 0; i < n; i++) {
        const store_row *r = &c->rows[idx[i]];
        int seen = !is_owner(r);
        for (int j = 0; j < nl && !seen; j++) seen = row_on_line(r, &lines[j], key);
        if (seen) continue;
        snprintf(lines[nl].point, sizeof lines[nl].point, "%s", r->point);
        snprintf(lines[nl].arch, sizeof lines[nl].arch, "%s", r->arch);
        variant_of(r->params, key, lines[nl].variant, sizeof lines[nl].variant);
        nl++;
    }
    return nl;
}

static void line_labels(const line_id *l, int nl, char labels[][LABEL]) {
    int dp = 0, dv = 0;
    for (int i = 1; i < nl; i++) { dp |= strcmp(l[i].point, l[0].point) != 0; dv |= strcmp(l[i].variant, l[0].variant) != 0; }
    for (int i = 0; i < nl; i++)
        snprintf(labels[i], LABEL, "owner %s%s%s%s%s", l[i].arch, dp ? " " : "", dp ? l[i].point : "",
                 dv ? " " : "", dv ? l[i].variant : "");
}

static int robust_family(plot_ctx *c, const fig_spec *fs, const char *attack, const int64_t *idx, int n) {
    char name[160];
    snprintf(name, sizeof name, "robustness-%s", attack);
    safe_name(name);
    const char *key = swept_key(c->rows, idx, n);
    double *xs = util_malloc(sizeof(double) * (size_t)n);
    int nx = 0, has_indep = 0;
    for (int i = 0; i < n; i++) {
        const store_row *r = &c->rows[idx[i]];
        has_indep |= r->independent;
        if (!isnan(r->strength)) xs[nx++] = r->strength;
    }
    if (nx == 0) { free(xs); return skip(c, name, "no swept parameter (drawn as a point in the robustness summary)"); }
    gsl_sort(xs, 1, (size_t)nx);
    int u = 1;
    for (int i = 1; i < nx; i++) if (xs[i] != xs[u - 1]) xs[u++] = xs[i];
    if (u < 2) { free(xs); return skip(c, name, "one setting, no curve (drawn as a point in the robustness summary)"); }
    line_id *lines = util_malloc(sizeof *lines * (size_t)n);
    int nl = robust_lines(c, idx, n, key, lines);
    char (*labels)[LABEL] = util_malloc(sizeof *labels * (size_t)(nl + 1));
    line_labels(lines, nl, labels);
    FILE *f = open_data(c, name);
    if (!f) { free(xs); free(lines); free(labels); return -1; }
    agg a;
    agg_init(&a, n);
    double alpha = c->set.alphas[0], top = lp(alpha);
    for (int i = 0; i < nl; i++) robust_block(f, c, idx, n, &lines[i], key, xs, u, &a, &top);
    if (has_indep) robust_block(f, c, idx, n, NULL, key, xs, u, &a, &top);
    for (int i = 0; c->few && i < nl; i++) {   /* with few seeds, the seeds themselves: one block per line */
        fprintf(f, "# %s, each seed\n# strength lp\n", labels[i]);
        for (int j = 0; j < u; j++)
            for (int k = 0; k < n; k++) {
                const store_row *r = &c->rows[idx[k]];
                if (r->strength == xs[j] && is_owner(r) && row_on_line(r, &lines[i], key)) fprintf(f, "%.6g %.6g\n", xs[j], lp(row_p(r, c->decide)));
            }
        fputs("\n\n", f);
    }
    close_data(c, f); free(a.lp); free(lines);
    char text[512];
    FILE *h = begin_script(c, fs, name, 0);
    if (!h) { free(xs); free(labels); return -1; }
    fprintf(h, "datafile = \"%s.dat\"\nnlines = %d\nhas_indep = %d\nseeds_drawn = %d\n", name, nl, has_indep, c->few);
    gp_array(h, "labels", labels, nl);
    free(labels);
    fprintf(h, "alpha = %g\nytop = %.6g\nlpcap = %.6g\nxlog = %d\n", alpha, 1.1 * top, isinf(c->lp_cap) ? -1 : c->lp_cap,
            xs[0] > 0 && xs[u - 1] / xs[0] >= 100);
    snprintf(text, sizeof text, "%s: %s (%s)", attack, key[0] ? key : "strength", key_unit(key));
    gp_str(h, "xlabel_text", text);
    snprintf(text, sizeof text, "-log10 p_%s", pmi_pvalue_name((pmi_pvalue)c->decide));
    gp_str(h, "ylabel_p", text);
    gp_str(h, "xlabel_short", key[0] ? key : "strength");
    snprintf(text, sizeof text, "Attack %s (type %s), score %s\n(%s)", attack, c->rows[idx[0]].attack_type, c->score, spread_text(c));
    gp_str(h, "title_text", text);
    free(xs);
    return render(c, fs, name, h);
}

static int fig_robustness(plot_ctx *c, const fig_spec *fs) {
    int64_t *idx = util_malloc(sizeof *idx * (size_t)(c->n + 1));
    int done = 0, rc = 0;
    for (int64_t i = 0; rc >= 0 && i < c->n; i++) {
        const store_row *r = &c->rows[i];
        int first = is_owner(r) && !unattacked(r);
        for (int64_t j = 0; first && j < i; j++) first = !(is_owner(&c->rows[j]) && !strcmp(c->rows[j].attack, r->attack));
        if (!first) continue;
        int n = 0;
        for (int64_t j = 0; j < c->n; j++) if (!strcmp(c->rows[j].attack, r->attack)) idx[n++] = j;
        rc = robust_family(c, fs, r->attack, idx, n);
        done = 1;
    }
    free(idx);
    return done ? rc : skip(c, fs->name, "no attacked evaluations of owner models");
}

/* ---- robustness summary: every attack setting in one figure ------------------------------ */
/* One setting of the summary: an attack and its params ("none" first). */
typedef struct { char attack[STORE_NAME], params[256], label[LABEL]; } setting;

/* The 95th percentile of x[0..n) without NaNs; NaN for none. */
static double p95(double *x, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) if (!isnan(x[i])) x[k++] = x[i];
    if (k == 0) return NAN;
    gsl_sort(x, 1, (size_t)k);
    return gsl_stats_quantile_from_sorted_data(x, 1, (size_t)k, 0.95);
}

/* The first owner row of this attack setting (one exists for every summary setting). */
static const store_row *find_setting_row(plot_ctx *c, const char *attack, const char *params) {
    for (int64_t i = 0; i < c->n; i++)
        if (is_owner(&c->rows[i]) && !strcmp(c->rows[i].attack, attack) && !strcmp(c->rows[i].params, params)) return &c->rows[i];
    return NULL;
}

/* The distinct settings of the owner rows, un-attacked first, then in file order; the label
 * of a setting names its swept value only when its section has more than one setting. */
static int summary_settings(plot_ctx *c, setting *st) {
    int ns = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < c->n; i++) {
            const store_row *r = &c->rows[i];
            if (!is_owner(r) || unattacked(r) != !pass) continue;
            int seen = 0;
            for (int j = 0; j < ns && !seen; j++) seen = !strcmp(st[j].attack, r->attack) && !strcmp(st[j].params, r->params);
            if (seen) continue;
            snprintf(st[ns].attack, STORE_NAME, "%s", r->attack);
            snprintf(st[ns].params, 256, "%s", r->params);
            ns++;
        }
    for (int s = 0; s < ns; s++) {   /* the swept value only where the section has more than one setting */
        int n = 0;
        for (int j = 0; j < ns; j++) n += !strcmp(st[j].attack, st[s].attack);
        const store_row *r = find_setting_row(c, st[s].attack, st[s].params);
        if (!strcmp(st[s].attack, "none")) snprintf(st[s].label, LABEL, "un-attacked");
        else if (n > 1 && !strcmp(r->strength_key, r->attack)) snprintf(st[s].label, LABEL, "%s=%g", r->attack, r->strength);
        else if (n > 1 && r->strength_key[0]) snprintf(st[s].label, LABEL, "%s %s=%g", r->attack, r->strength_key, r->strength);
        else if (n > 1) snprintf(st[s].label, LABEL, "%s %s", r->attack, r->params);
        else snprintf(st[s].label, LABEL, "%s", r->attack);
    }
    return ns;
}

/* The summary draws rows top-down: setting s of ns at y = ns - 1 - s, series l of nl spread
 * around it. */
static double summary_y(int ns, int s, int l, int nl) {
    return ns - 1 - s + (nl > 1 ? 0.3 * ((double)l / (nl - 1) - 0.5) : 0);
}

static int fig_summary(plot_ctx *c, const fig_spec *fs) {
    int attacked = 0;
    for (int64_t i = 0; i < c->n && !attacked; i++) attacked = is_owner(&c->rows[i]) && !unattacked(&c->rows[i]);
    if (!attacked) return skip(c, fs->name, "no attacked evaluations of owner models");
    setting *st = util_malloc(sizeof *st * (size_t)(c->n + 1));
    int ns = summary_settings(c, st);
    line_id *lines = util_malloc(sizeof *lines * (size_t)(c->n + 1));
    int nl = 0;
    for (int64_t i = 0; i < c->n; i++) {   /* one series per (point, arch) of the owners */
        const store_row *r = &c->rows[i];
        int seen = !is_owner(r);
        for (int j = 0; j < nl && !seen; j++) seen = !strcmp(lines[j].point, r->point) && !strcmp(lines[j].arch, r->arch);
        if (seen) continue;
        snprintf(lines[nl].point, 256, "%s", r->point);
        snprintf(lines[nl].arch, STORE_NAME, "%s", r->arch);
        lines[nl++].variant[0] = 0;
    }
    char (*labels)[LABEL] = util_malloc(sizeof *labels * (size_t)(nl + ns + 1));
    line_labels(lines, nl, labels);
    FILE *f = open_data(c, fs->name);
    if (!f) { free(st); free(lines); free(labels); return -1; }
    agg a;
    agg_init(&a, c->n);
    double alpha = c->set.alphas[0], top = lp(alpha);
    int has_indep = 0;
    for (int l = 0; l <= nl; l++) {   /* blocks 0..nl-1: owner series; block nl: independents */
        fprintf(f, "# %s (centre lo hi: %s, within the attainable range)\n# setting_row models ident_rate lp_mid lp_lo"
                   " lp_hi acc_mid acc_lo acc_hi lp_p95 ident_lo ident_hi (Wilson 95%%)\n", l < nl ? labels[l] : "independent models (all)",
                spread_text(c));
        for (int s = 0; s < ns; s++) {
            a.n = a.ident = 0;
            for (int64_t i = 0; i < c->n; i++) {
                const store_row *r = &c->rows[i];
                if (strcmp(r->attack, st[s].attack) || strcmp(r->params, st[s].params)) continue;
                if (l < nl ? is_owner(r) && !strcmp(r->point, lines[l].point) && !strcmp(r->arch, lines[l].arch) : r->independent)
                    agg_add(&a, r, c->decide);
            }
            if (a.n == 0) continue;
            has_indep |= l == nl;
            fprintf(f, "%.4f %d %.6g", summary_y(ns, s, l < nl ? l : 0, l < nl ? nl : 1), a.n, l < nl ? (double)a.ident / a.n : NAN);
            top = fmax(top, write_ci(c, f, a.lp, a.n, 0, c->lp_cap));
            write_ci(c, f, a.acc, a.n, 0, 1);
            double q = p95(a.lp, a.n);
            fprintf(f, " %.6g", q);
            if (l < nl) write_wilson(f, a.ident, a.n);
            else fputs(" nan nan", f);
            fputc('\n', f);
            if (!isnan(q)) top = fmax(top, q);
        }
        fputs("\n\n", f);
    }
    for (int l = 0; c->few && l < nl; l++) {   /* with few seeds, the seeds themselves: one block per series */
        fprintf(f, "# %s, each seed\n# lp setting_row\n", labels[l]);
        for (int s = 0; s < ns; s++)
            for (int64_t i = 0; i < c->n; i++) {
                const store_row *r = &c->rows[i];
                if (!strcmp(r->attack, st[s].attack) && !strcmp(r->params, st[s].params) && is_owner(r) &&
                    !strcmp(r->point, lines[l].point) && !strcmp(r->arch, lines[l].arch))
                    fprintf(f, "%.6g %.4f\n", lp(row_p(r, c->decide)), summary_y(ns, s, l, nl));
            }
        fputs("\n\n", f);
    }
    close_data(c, f); free(a.lp); free(lines);
    for (int s = 0; s < ns; s++) snprintf(labels[nl + s], LABEL, "%s", st[s].label);
    free(st);
    /* One row per setting (0.16 in), both panels side by side on a page; stacked in a column,
     * from the top: title (two lines), panel 1, its axis, panel 2, its axis, key (inches). The
     * key (one line of 0.21 in per entry: the owner series, the independents, alpha, the
     * attainable limit) is above the panels on a page, below them in a column. */
    int nkey = nl + has_indep + 1 + !isinf(c->lp_cap) + 2 * c->column;   /* a column adds the second panel's two key lines */
    double keys = 0.21 * nkey + 0.1, title = 0.5;
    double rows = 0.16 * ns + 0.2, hin = c->column ? title + 2 * rows + 0.55 + 0.55 + keys : title + keys + rows + 0.6;
    double top1 = c->column ? 1 - title / hin : 1 - (title + keys) / hin, bot1 = top1 - rows / hin;
    double top2 = c->column ? bot1 - 0.55 / hin : top1, bot2 = c->column ? top2 - rows / hin : bot1;
    FILE *h = begin_script(c, fs, fs->name, hin);
    if (!h) { free(labels); return -1; }
    char text[512];
    fprintf(h, "datafile = \"%s.dat\"\nnlines = %d\nhas_indep = %d\nseeds_drawn = %d\nnsettings = %d\nalpha = %g\nxtop = %.6g\nlpcap = %.6g\n"
            "top1 = %.4f\nbot1 = %.4f\ntop2 = %.4f\nbot2 = %.4f\nkeyline = %.4f\n", fs->name, nl, has_indep, c->few, ns, alpha, 1.08 * top,
            isinf(c->lp_cap) ? -1 : c->lp_cap, top1, bot1, top2, bot2, 0.21 / hin);
    gp_array(h, "labels", labels, nl);
    gp_array(h, "settings", labels + nl, ns);
    free(labels);
    snprintf(text, sizeof text, "-log10 p_%s", pmi_pvalue_name((pmi_pvalue)c->decide));
    gp_str(h, "xlabel_p", text);
    snprintf(text, sizeof text, "Evidence after each attack (score %s)\n(%s)", c->score, spread_text(c));
    gp_str(h, "title_text", text);
    return render(c, fs, fs->name, h);
}

/* ---- score distributions ------------------------------------------------------------- */
/* The x axis of a score kind's histogram, by pmi_score_kind (pmi.h owns the names). */
static const char *kind_axis(const char *kind) {
    static const char *const axes[SCORE_COUNT] = {
        [SCORE_LOSS] = "log p_y (nats)", [SCORE_CONF] = "p_y (probability)", [SCORE_CORRECT] = "1 if correct, else 0",
        [SCORE_ENTROPY] = "-H(p) (nats)", [SCORE_MENTROPY] = "-Mentr(p, y) (nats)",
        [SCORE_LOGIT] = "log p_y - log(1 - p_y) (nats)", [SCORE_LNOISE] = "fraction of noisy queries answered y",
        [SCORE_DIFF] = "log p_y minus the references' mean (nats)",
        [SCORE_LIRA] = "(logit - mu_ref) / sigma_ref"};
    int k = pmi_score_parse(kind);
    return k >= 0 && axes[k] ? axes[k] : "score";
}

/* Densities of D_k's scores s (N, m) and of the other mini-datasets' on 40 bins over [lo, hi]:
 * one block. Scores outside the range are counted in the block's comment, not drawn; the
 * densities are per score unit of all m (or (N-1) m) scores, so they integrate to the fraction
 * inside the range. */
static void scores_block(FILE *f, const store_row *r, int eval, const double *s, int N, int m, double lo, double hi) {
    gsl_histogram *hk = gsl_histogram_alloc(40), *hr = gsl_histogram_alloc(40);
    gsl_histogram_set_ranges_uniform(hk, lo, hi);
    gsl_histogram_set_ranges_uniform(hr, lo, hi);
    int out = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < m; j++) out += gsl_histogram_increment(i == r->secret_k ? hk : hr, s[i * m + j]) != 0;
    fprintf(f, "# %s eval %d: %d of %d scores outside [%.6g, %.6g]\n# bin_center density_Dk density_others (per score unit)\n",
            r->job_id, eval, out, N * m, lo, hi);
    for (size_t b = 0; b < 40; b++) {
        double l, u;
        gsl_histogram_get_range(hk, b, &l, &u);
        fprintf(f, "%.6g %.6g %.6g\n", (l + u) / 2, gsl_histogram_get(hk, b) / (m * (u - l)),
                gsl_histogram_get(hr, b) / ((double)(N - 1) * m * (u - l)));
    }
    fputs("\n\n", f);
    gsl_histogram_free(hk); gsl_histogram_free(hr);
}

/* The x range of the score histograms: the 1st to 99th percentile of all panels' n scores
 * (a long tail, such as losses to -35 with most near 0, would leave the bulk in one bin),
 * widened by 2% on each side; a range of one value becomes that value +- 0.5. */
static void scores_range(double *all, size_t n, double *lo, double *hi) {
    gsl_sort(all, 1, n);
    double a = gsl_stats_quantile_from_sorted_data(all, 1, n, 0.01), b = gsl_stats_quantile_from_sorted_data(all, 1, n, 0.99);
    if (b - a < 1e-12) { a -= 0.5; b += 0.5; }
    *lo = a - 0.02 * (b - a);
    *hi = b + 0.02 * (b - a);
}

/* Index of the evaluation of job_id with this attack and params; -1 when there is none. */
static int eval_index(plot_ctx *c, const char *job_id, const char *attack, const char *params) {
    store_eval_info *ev = NULL;
    int n = 0, found = -1;
    if (store_read_evals(c->path, job_id, &ev, &n, c->err, c->errlen)) return -1;
    for (int i = 0; i < n && found < 0; i++)
        if (!strcmp(ev[i].attack, attack) && !strcmp(ev[i].params, params)) found = i;
    free(ev);
    return found;
}

/* The row of job_id's evaluation with this attack and params, or NULL. */
static const store_row *find_row(plot_ctx *c, const char *job_id, const char *attack, const char *params) {
    for (int64_t i = 0; i < c->n; i++)
        if (!strcmp(c->rows[i].job_id, job_id) && !strcmp(c->rows[i].attack, attack) && !strcmp(c->rows[i].params, params))
            return &c->rows[i];
    return NULL;
}

static int fig_scores(plot_ctx *c, const fig_spec *fs) {
    const store_row *own = NULL, *ind = NULL, *att = NULL;
    for (int64_t i = 0; i < c->n && !own; i++) if (is_owner(&c->rows[i]) && unattacked(&c->rows[i])) own = &c->rows[i];
    if (!own) return skip(c, fs->name, "no un-attacked owner model");
    for (int64_t i = 0; i < c->n && !ind; i++) {
        const store_row *r = &c->rows[i];
        if (r->independent && unattacked(r) && r->seed == own->seed && !strcmp(r->point, own->point)) ind = r;
    }
    for (int64_t i = 0; i < c->n; i++) {   /* the last setting of the owner's first attack section */
        const store_row *r = &c->rows[i];
        if (!strcmp(r->job_id, own->job_id) && !unattacked(r) && (!att || !strcmp(r->attack, att->attack))) att = r;
    }
    /* panels in rows: owner, independent; columns: un-attacked, attacked (a missing one is left out) */
    const store_row *panels[4] = {own, att, ind, att && ind ? find_row(c, ind->job_id, att->attack, att->params) : NULL};
    char titles[4][LABEL];
    double *sc[4] = {0}, *all = NULL, lo, hi;
    int np = 0, cols = att && !c->column ? 2 : 1, ev[4], Ns[4], ms[4], rc = 0;
    size_t na = 0;
    for (int q = 0; q < 4 && !rc; q++) {
        const store_row *r = panels[q];
        if (!r) continue;
        ev[q] = unattacked(r) ? 0 : eval_index(c, r->job_id, r->attack, r->params);
        if (ev[q] < 0 && !c->err[0]) snprintf(c->err, c->errlen, "figure scores: no evaluation %s of %s", r->attack, r->job_id);
        rc = ev[q] < 0 || store_read_scores(c->path, r->job_id, ev[q], c->score, &sc[q], &Ns[q], &ms[q], c->err, c->errlen);
        if (rc) break;
        all = util_realloc(all, sizeof(double) * (na + (size_t)(Ns[q] * ms[q])));
        memcpy(all + na, sc[q], sizeof(double) * (size_t)(Ns[q] * ms[q]));
        na += (size_t)(Ns[q] * ms[q]);
    }
    FILE *f = rc ? NULL : open_data(c, fs->name);
    if (f) scores_range(all, na, &lo, &hi);
    for (int q = 0; q < 4 && f; q++) {
        const store_row *r = panels[q];
        if (!r) continue;
        scores_block(f, r, ev[q], sc[q], Ns[q], ms[q], lo, hi);
        snprintf(titles[np++], LABEL, "%s, %s: p_%s = %.2g", r->role, unattacked(r) ? "un-attacked" : r->attack,
                 pmi_pvalue_name((pmi_pvalue)c->decide), row_p(r, c->decide));
    }
    for (int q = 0; q < 4; q++) free(sc[q]);
    free(all);
    if (!f) return -1;
    close_data(c, f);
    char text[256];
    FILE *h = begin_script(c, fs, fs->name, 0);
    if (!h) return -1;
    fprintf(h, "datafile = \"%s.dat\"\nnpanels = %d\nncols = %d\nnrows = %d\nk = %d\nN = %d\nm = %d\nxmin = %.6g\nxmax = %.6g\n",
            fs->name, np, cols, (np + cols - 1) / cols, own->secret_k, own->N, own->m, lo, hi);
    double step = pow(10, floor(log10((hi - lo) / 4)));   /* 1, 2 or 5 times a power of ten: 3 to 6 tics */
    fprintf(h, "xstep = %g\n", (hi - lo) / step > 20 ? 5 * step : (hi - lo) / step > 8 ? 2 * step : step);
    gp_array(h, "titles", titles, np);
    snprintf(text, sizeof text, "%s score: %s", c->score, kind_axis(c->score));
    gp_str(h, "xlabel_text", text);
    snprintf(text, sizeof text, "Per-sample %s scores (%s, seed %d)", c->score, own->arch, own->seed);
    gp_str(h, "title_text", text);
    return render(c, fs, fs->name, h);
}

/* ---- ROC of owner against independent models ----------------------------------------- */
/* Writes the ROC points "fpr tpr threshold" of pos against neg (scores: -log10 p) where both
 * rates are above 0 (a log-log plot cannot show 0); returns the AUC, *tpr0 gets the TPR at
 * FPR 0 (the highest threshold no independent model reaches). */
static double roc_block(FILE *f, double *pos, int np, double *neg, int nn, const char *label, double *tpr0) {
    double auc = pmi_auc(pos, np, neg, nn);
    double *all = util_malloc(sizeof(double) * (size_t)(np + nn));
    memcpy(all, pos, sizeof(double) * (size_t)np);
    memcpy(all + np, neg, sizeof(double) * (size_t)nn);
    gsl_sort(all, 1, (size_t)(np + nn));
    *tpr0 = 0;
    fprintf(f, "# %s: AUC %.4f\n# fpr tpr threshold_-log10p (points with fpr > 0 and tpr > 0)\n", label, auc);
    for (int i = np + nn - 1; i >= 0; i--) {
        if (i + 1 < np + nn && all[i] == all[i + 1]) continue;
        int tp = 0, fp = 0;
        for (int j = 0; j < np; j++) tp += pos[j] >= all[i];
        for (int j = 0; j < nn; j++) fp += neg[j] >= all[i];
        if (fp == 0) *tpr0 = (double)tp / np;
        else if (tp > 0) fprintf(f, "%.6g %.6g %.6g\n", (double)fp / nn, (double)tp / np, all[i]);
    }
    fputs("\n\n", f);
    free(all);
    return auc;
}

static int roc_figure(plot_ctx *c, const fig_spec *fs, const char *name, int attacked) {
    double *pos = util_malloc(sizeof(double) * (size_t)(c->n + 1) * 2), *neg = pos + c->n + 1;
    char labels[P_COUNT][LABEL];
    int nl = 0, npos = 0, nneg = 0;
    FILE *f = NULL;
    for (int p = 0; p < P_COUNT; p++) {
        int np = 0, nn = 0;
        for (int64_t i = 0; i < c->n; i++) {
            const store_row *r = &c->rows[i];
            double v = lp(row_p(r, p));
            if (unattacked(r) == attacked || isnan(v)) continue;
            if (is_owner(r)) pos[np++] = v;
            else if (r->independent) neg[nn++] = v;
        }
        if (np == 0 || nn == 0) continue;
        if (!f && !(f = open_data(c, name))) { free(pos); return -1; }
        const char *pname = pmi_pvalue_name((pmi_pvalue)p);
        double tpr0, auc = roc_block(f, pos, np, neg, nn, pname, &tpr0);
        snprintf(labels[nl++], LABEL, "p_%s: AUC %.2f, TPR %.2g at FPR 0", pname, auc, tpr0);
        npos = np; nneg = nn;
    }
    free(pos);
    if (!f) return skip(c, name, attacked ? "no attacked evaluations of both owner and independent models"
                                          : "no un-attacked owner and independent models to compare");
    close_data(c, f);
    char text[256];
    FILE *h = begin_script(c, fs, name, 0);
    if (!h) return -1;
    /* both axes start at the same rate, so the chance line y = x is the diagonal */
    fprintf(h, "datafile = \"%s.dat\"\nnstats = %d\nrate_min = %g\n", name, nl, fmin(1.0 / nneg, 1.0 / npos) / 1.5);
    gp_array(h, "labels", labels, nl);
    snprintf(text, sizeof text, "ROC: %d owner vs %d independent\n%s (%s, score %s)", npos, nneg,
             attacked ? "evaluations" : "models", attacked ? "all attacks" : "un-attacked", c->score);
    gp_str(h, "title_text", text);
    snprintf(text, sizeof text, "false-positive rate (of %d)", nneg);
    gp_str(h, "xlabel_text", text);
    return render(c, fs, name, h);
}

static int fig_roc(plot_ctx *c, const fig_spec *fs) {
    int rc = roc_figure(c, fs, "roc", 0);
    return rc < 0 ? rc : roc_figure(c, fs, "roc-attacked", 1);
}

/* ---- fidelity ---------------------------------------------------------------------------- */
static int fig_fidelity(plot_ctx *c, const fig_spec *fs) {
    line_id *groups = util_malloc(sizeof *groups * (size_t)(c->n + 1));
    int ng = 0, dp = 0;
    for (int64_t i = 0; i < c->n; i++) {
        const store_row *r = &c->rows[i];
        int seen = !(is_owner(r) && unattacked(r));
        for (int g = 0; g < ng && !seen; g++) seen = !strcmp(groups[g].point, r->point) && !strcmp(groups[g].arch, r->arch);
        if (seen) continue;
        snprintf(groups[ng].point, 256, "%s", r->point);
        snprintf(groups[ng++].arch, STORE_NAME, "%s", r->arch);
        dp |= strcmp(r->point, groups[0].point) != 0;
    }
    char (*labels)[LABEL] = util_malloc(sizeof *labels * (size_t)(ng + 1));
    double *oa = util_malloc(sizeof(double) * (size_t)(c->n + 1) * 2), *ca = oa + c->n + 1, lo = 1, hi = 0;
    FILE *f = NULL;
    int nl = 0, rc = 0;
    for (int g = 0; g < ng; g++) {
        int k = 0;
        for (int64_t a = 0; a < c->n; a++) {
            const store_row *o = &c->rows[a];
            if (!is_owner(o) || !unattacked(o) || strcmp(o->point, groups[g].point) || strcmp(o->arch, groups[g].arch)) continue;
            for (int64_t b = 0; b < c->n; b++) {
                const store_row *q = &c->rows[b];
                if (strcmp(q->role, "clean") || !unattacked(q) || q->seed != o->seed || strcmp(q->point, o->point) || strcmp(q->arch, o->arch)) continue;
                oa[k] = o->test_acc; ca[k++] = q->test_acc;
                lo = fmin(lo, fmin(o->test_acc, q->test_acc)); hi = fmax(hi, fmax(o->test_acc, q->test_acc));
                break;
            }
        }
        if (k == 0) continue;
        if (!f && !(f = open_data(c, fs->name))) { rc = -1; break; }
        snprintf(labels[nl++], LABEL, "%s%s%s, %d seed%s", groups[g].arch, dp ? " " : "", dp ? groups[g].point : "", k, k > 1 ? "s" : "");
        double cm, cl, cu, om, ol, ou;
        spread(c->few, ca, k, 0, 1, &cm, &cl, &cu);
        spread(c->few, oa, k, 0, 1, &om, &ol, &ou);
        lo = fmin(lo, fmin(cl, ol)); hi = fmax(hi, fmax(cu, ou));
        fprintf(f, "# %s\n# clean_acc owner_acc clean_mid owner_mid clean_lo clean_hi owner_lo owner_hi row"
                   " (per seed; centre and spread over seeds: %s, within [0, 1])\n", labels[nl - 1], spread_text(c));
        for (int i = 0; i < k; i++)
            fprintf(f, "%.6g %.6g %.6g %.6g %.6g %.6g %.6g %.6g %d\n", ca[i], oa[i], cm, om, cl, cu, ol, ou, nl - 1);
        fputs("\n\n", f);
    }
    free(oa); free(groups);
    if (rc || !f) { free(labels); return rc ? rc : skip(c, fs->name, "no owner and clean models of the same seed (un-attacked)"); }
    close_data(c, f);
    double pad = fmax(0.005, (hi - lo) * 0.08);
    FILE *h = begin_script(c, fs, fs->name, 1.9 + 0.4 * nl);
    if (!h) { free(labels); return -1; }
    fprintf(h, "datafile = \"%s.dat\"\nngroups = %d\nlo = %.6g\nhi = %.6g\n", fs->name, nl, fmax(0, lo - pad), fmin(1, hi + pad));
    gp_array(h, "labels", labels, nl);
    free(labels);
    gp_str(h, "title_text", "Fidelity: test accuracy of owner and clean models");
    gp_str(h, "spread_text", spread_text(c));
    return render(c, fs, fs->name, h);
}

/* ---- pool ablation heatmaps ------------------------------------------------------------ */
/* Adds v to the sorted distinct values vals[0..*n) (room for all). */
static void add_distinct(int *vals, int *n, int v) {
    int i = 0;
    while (i < *n && vals[i] < v) i++;
    if (i < *n && vals[i] == v) return;
    memmove(vals + i + 1, vals + i, sizeof *vals * (size_t)(*n - i));
    vals[i] = v;
    (*n)++;
}

/* The panel of a row in the ablation figure: its score kind, and the sweep values of its point
 * other than pool.N and pool.m ("loss" or "diff, pool.repeat=2"), so that the cells of one panel
 * differ only in N and m. */
static void ablation_panel(const store_row *r, char *out, size_t len) {
    int n = snprintf(out, len, "%s", r->score);
    const char *p = r->point;
    while (*p) {
        size_t k = strcspn(p, ",");
        if (strncmp(p, "pool.N=", 7) && strncmp(p, "pool.m=", 7) && n >= 0 && (size_t)n < len)
            n += snprintf(out + n, len - (size_t)n, "%s%.*s", strchr(out, ',') ? " " : ", ", (int)k, p);
        p += k + (p[k] == ',');
    }
}

/* Claimed rate at the first alpha and median -log10 p of the un-attacked owners over the pool
 * sizes N x m, one pair of panels per score kind in the file and per value of the other sweep
 * axes (pool.repeat, pmi.references, ...). */
static int fig_ablation(plot_ctx *c, const fig_spec *fs) {
    int *Ns = util_malloc(sizeof(int) * (size_t)(2 * c->nall + 2)), *ms = Ns + c->nall + 1, nN = 0, nm = 0, nk = 0;
    char (*kinds)[LABEL] = util_malloc(sizeof *kinds * (size_t)(c->nall + 1)), panel[LABEL];
    for (int64_t i = 0; i < c->nall; i++) {
        const store_row *r = &c->all[i];
        if (!is_owner(r) || !unattacked(r)) continue;
        add_distinct(Ns, &nN, r->N);
        add_distinct(ms, &nm, r->m);
        ablation_panel(r, panel, sizeof panel);
        int seen = 0;
        for (int k = 0; k < nk && !seen; k++) seen = !strcmp(kinds[k], panel);
        if (!seen) snprintf(kinds[nk++], LABEL, "%s", panel);
    }
    if (nN < 2 || nm < 2) {
        char why[160];
        snprintf(why, sizeof why, "no N x m sweep of the pool (the owners have %d value%s of N and %d of m; a heatmap needs two of each)",
                 nN, nN == 1 ? "" : "s", nm);
        free(Ns); free(kinds);
        return skip(c, fs->name, why);
    }
    FILE *f = open_data(c, fs->name);
    if (!f) { free(Ns); free(kinds); return -1; }
    double *lps = util_malloc(sizeof(double) * (size_t)(c->nall + 1)), alpha = c->set.alphas[0], top = 1;
    for (int k = 0; k < nk; k++) {
        fprintf(f, "# score %s\n# iN im N m claimed_rate median_-log10p owners (claimed: p_%s < %g)\n", kinds[k],
                pmi_pvalue_name((pmi_pvalue)c->decide), alpha);
        for (int a = 0; a < nN; a++) {
            for (int b = 0; b < nm; b++) {
                int n = 0, claimed = 0;
                for (int64_t i = 0; i < c->nall; i++) {
                    const store_row *r = &c->all[i];
                    if (!is_owner(r) || !unattacked(r) || r->N != Ns[a] || r->m != ms[b]) continue;
                    ablation_panel(r, panel, sizeof panel);
                    if (strcmp(panel, kinds[k])) continue;
                    double p = row_p(r, c->decide);
                    if (isnan(p)) continue;
                    claimed += p < alpha;
                    lps[n++] = lp(p);
                }
                double med = NAN;
                if (n) { gsl_sort(lps, 1, (size_t)n); med = gsl_stats_median_from_sorted_data(lps, 1, (size_t)n); top = fmax(top, med); }
                fprintf(f, "%d %d %d %d %.6g %.6g %d\n", a, b, Ns[a], ms[b], n ? (double)claimed / n : NAN, med, n);
            }
            fputs("\n", f);
        }
        fputs("\n", f);
    }
    close_data(c, f);
    free(lps);
    char (*lab)[LABEL] = util_malloc(sizeof *lab * (size_t)(nN + nm));
    for (int a = 0; a < nN; a++) snprintf(lab[a], LABEL, "%d", Ns[a]);
    for (int b = 0; b < nm; b++) snprintf(lab[nN + b], LABEL, "%d", ms[b]);
    double w = c->column ? COLUMN_IN : PAGE_IN;
    FILE *h = begin_script(c, fs, fs->name, 0.6 + nk * w * 0.42);
    if (!h) { free(Ns); free(kinds); free(lab); return -1; }
    fprintf(h, "datafile = \"%s.dat\"\nnkinds = %d\nnN = %d\nnm = %d\nalpha = %g\nlptop = %.6g\n", fs->name, nk, nN, nm, alpha, top);
    gp_array(h, "kinds", kinds, nk);
    gp_array(h, "Nlabels", lab, nN);
    gp_array(h, "mlabels", lab + nN, nm);
    char text[256];
    snprintf(text, sizeof text, "median -log10 p_%s", pmi_pvalue_name((pmi_pvalue)c->decide));
    gp_str(h, "lp_text", text);
    snprintf(text, sizeof text, "Pool size: owners claimed (p_%s < %g) and median evidence", pmi_pvalue_name((pmi_pvalue)c->decide), alpha);
    gp_str(h, "title_text", text);
    free(Ns); free(kinds); free(lab);
    return render(c, fs, fs->name, h);
}

/* ---- the table of figures and the entry point -------------------------------------------- */
typedef int (*fig_fn)(plot_ctx *, const fig_spec *);
static const struct { fig_spec spec; fig_fn fn; } figures[] = {
    {{"robustness-<attack>", "robustness.gp", 0.62, 1.75}, fig_robustness},
    {{"robustness", "robustness-summary.gp", 0, 0}, fig_summary},
    {{"scores", "scores.gp", 0.7, 2.0}, fig_scores},
    {{"roc", "roc.gp", 0.62, 1.25}, fig_roc},
    {{"fidelity", "fidelity.gp", 0, 0}, fig_fidelity},
    {{"ablation", "ablation.gp", 0, 0}, fig_ablation},
};

/* Finds the templates, in this order: $PMI_PLOTS_DIR; beside the executable, plots/ and
 * ../share/pmi-lab/plots (an installed tree); ./plots; PMI_DATADIR/plots. dir gets the first
 * folder that holds the first figure's template. */
static int find_templates(char *dir, size_t len) {
    char exe[PATH_MAX] = "";
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    if (strrchr(exe, '/')) *strrchr(exe, '/') = 0;
    const char *env = getenv("PMI_PLOTS_DIR"), *bin = exe[0] ? exe : NULL;
    const struct { const char *base, *sub; } cand[] = {
        {env, ""}, {bin, "/plots"}, {bin, "/../share/pmi-lab/plots"}, {".", "/plots"}, {PMI_DATADIR, "/plots"},
    };
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        if (!cand[i].base || !*cand[i].base) continue;
        char probe[PATH_MAX];
        int n = snprintf(dir, len, "%s%s", cand[i].base, cand[i].sub);
        int m = snprintf(probe, sizeof probe, "%s/%s", dir, figures[0].spec.tmpl);
        if (n < 0 || (size_t)n >= len || m < 0 || m >= (int)sizeof probe) continue;   /* too long to be it */
        if (access(probe, R_OK) == 0) return 0;
    }
    return -1;
}

static int make_dirs(const char *dir, char *err, size_t errlen) {
    char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s", dir);
    if (n < 0 || n >= (int)sizeof p) { snprintf(err, errlen, "plot: the output folder %s is longer than PATH_MAX (%d)", dir, PATH_MAX); return -1; }
    for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
        if (s) *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) { snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno)); return -1; }
        if (!s) return 0;
        *s = '/';
    }
}

plot_params plot_default_params(void) { return (plot_params){.format = "png", .size = "page"}; }

int plot_render(const char *results_path, const char *out_dir, const char *format, FILE *log, char *err, size_t errlen) {
    plot_params pp = plot_default_params();
    pp.format = format;
    return plot_render_ex(results_path, out_dir, &pp, log, err, errlen);
}

int plot_render_ex(const char *results_path, const char *out_dir, const plot_params *pp, FILE *log, char *err, size_t errlen) {
    if (!err || !errlen) return -1;
    err[0] = 0;
    const char *format = pp ? pp->format : NULL, *size = pp && pp->size ? pp->size : "page";
    if (!results_path || !out_dir || !format || (strcmp(format, "png") && strcmp(format, "pdf") && strcmp(format, "svg"))) {
        snprintf(err, errlen, "plot: expected a results file, an output folder and a format png, pdf or svg (got '%s')",
                 format ? format : "(null)");
        return -1;
    }
    if (strcmp(size, "column") && strcmp(size, "page")) {
        snprintf(err, errlen, "plot: the size is column (3.5 in, one paper column) or page (7 in, two columns), not '%s'", size);
        return -1;
    }
    plot_ctx c = {.path = results_path, .dir = out_dir, .fmt = format, .column = !strcmp(size, "column"), .log = log,
                  .err = err, .errlen = errlen};
    if (find_templates(c.tdir, sizeof c.tdir)) {
        snprintf(err, errlen, "plot: cannot find the gnuplot templates (plots/%s beside pmi or its ../share/pmi-lab, ./plots, "
                 PMI_DATADIR "/plots); set PMI_PLOTS_DIR", figures[0].spec.tmpl);
        return -1;
    }
    if (store_read_settings(results_path, &c.set, err, errlen) || store_read_summary(results_path, &c.all, &c.nall, err, errlen) ||
        make_dirs(out_dir, err, errlen)) { free(c.all); return -1; }
    c.decide = pmi_pvalue_parse(c.set.decide);
    c.score = pmi_score_name((pmi_score_kind)c.set.kinds[0]);
    c.rows = util_malloc(sizeof *c.rows * (size_t)(c.nall + 1));
    for (int64_t i = 0; i < c.nall; i++)
        if (!strcmp(c.all[i].score, c.score)) c.rows[c.n++] = c.all[i];
    int maxN = 0, ns = 0, *seeds = util_malloc(sizeof(int) * (size_t)(c.n + 1));
    for (int64_t i = 0; i < c.n; i++) {
        maxN = c.rows[i].N > maxN ? c.rows[i].N : maxN;
        int seen = 0;
        for (int s = 0; s < ns && !seen; s++) seen = seeds[s] == c.rows[i].seed;
        if (!seen) seeds[ns++] = c.rows[i].seed;
    }
    free(seeds);
    c.few = ns < PLOT_FEW_SEEDS;
    if (c.few) snprintf(c.spread, sizeof c.spread, "median; bars: the range; dots: each of the %d seed%s", ns, ns == 1 ? "" : "s");
    else snprintf(c.spread, sizeof c.spread, "mean; bars: 95%% t-CI over %d seeds, clipped to the attainable range", ns);
    c.lp_cap = c.decide == P_PERM ? log10(c.set.permutations + 1.0) : c.decide == P_RANK ? log10(maxN > 1 ? maxN : 1) : INFINITY;
    int rc = 0;
    for (size_t i = 0; rc >= 0 && i < sizeof figures / sizeof figures[0]; i++) rc = figures[i].fn(&c, &figures[i].spec);
    free(c.rows); free(c.all);
    return rc < 0 ? -1 : 0;
}
