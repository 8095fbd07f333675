/* plot: the paper's figures from a results file, drawn by gnuplot run as an external program.
 *
 * Every figure is written as three kinds of file in out_dir, side by side:
 *   <figure>.dat   the numbers drawn (plain text, '#' comments name the columns; blocks are
 *                  separated by two blank lines, one block per line of the plot)
 *   <figure>.gp    a generated header (terminal, output name, data file names, labels) followed
 *                  by the template plots/<template>.gp; it names its files relative to out_dir,
 *                  so `cd out_dir && gnuplot <figure>.gp` redraws the figure after restyling
 *   <figure>.<format>  the picture
 * Figures, each drawn when the file holds what it needs and skipped (with the reason) otherwise:
 *   robustness           every attack setting of the file in one figure, one row each: owner
 *                        -log10 p (mean, 95% t-CI over seeds) per architecture, the independent
 *                        models' 95th percentile, the line of the first alpha; beside it test
 *                        accuracy and identification rate. Points with intervals, no lines
 *   robustness-<attack>  per attack section whose parameter is swept (two or more strengths):
 *                        the same quantities as curves against the evaluations' strength_key,
 *                        with the un-attacked references and the independent models; a section
 *                        of one setting is a point in the summary only
 *   scores               per-sample decision scores of D_k against the other mini-datasets for
 *                        an owner and an independent model, un-attacked and after the last
 *                        setting of the first attack section, over the 1st-99th percentile of
 *                        the panels' scores (the count outside is in the .dat)
 *   roc, roc-attacked    ROC of owner against independent models for each p-value (score
 *                        -log10 p) on log-log axes of equal range (chance is the diagonal; the
 *                        TPR at FPR 0 is in the key), un-attacked, and pooled over all attacks
 *   fidelity             a dot plot of owner and clean test accuracy per architecture: seeds,
 *                        mean and 95% CI (clipped to [0, 1])
 *   ablation             heatmaps over the owners' pool sizes N x m (un-attacked): the fraction
 *                        claimed at the first alpha and the median -log10 p, a row per score kind
 *                        in the file and value of the other sweep axes (pool.repeat=2, ...);
 *                        skipped unless N and m each take two values
 * The decision score kind, p-value and alphas are the file's decision settings
 * (store_read_settings()), as in report.c; independent models are the rows with
 * independent = 1, and the x axis of a robustness figure is the evaluations' strength_key. The
 * results file is only read.
 *
 * Templates are looked up in $PMI_PLOTS_DIR, then beside the running executable (plots/, then
 * ../share/pmi-lab/plots), then in ./plots, then in PMI_DATADIR/plots (PMI_DATADIR defaults to
 * /usr/local/share/pmi-lab; the Makefile passes it from PREFIX). The gnuplot program is
 * $PMI_GNUPLOT when set, else `gnuplot` on PATH. */
#ifndef PMI_PLOT_H
#define PMI_PLOT_H
#include <stddef.h>
#include <stdio.h>

/* How to draw: the picture format and the paper width the figures are laid out for. */
typedef struct {
    const char *format;   /* "png" (pngcairo at 150 px per inch, falling back to png), "pdf"
                           * (pdfcairo) or "svg" (96 px per inch, the CSS inch) */
    const char *size;     /* "column": 3.5 in wide, 8 pt fonts, panels stacked;
                           * "page": 7 in wide (two paper columns), 9 pt fonts */
} plot_params;

/* png, page. */
plot_params plot_default_params(void);

/* Renders every figure that applies to results_path into out_dir (created if missing) as
 * params says. Prints one line per figure written and per figure skipped, with the reason, to
 * log (optional). Returns 0, or -1 with err: an unreadable results file, a bad format or size,
 * a missing template, or gnuplot missing or failing; the message names the figure and carries
 * gnuplot's own stderr. */
int plot_render_ex(const char *results_path, const char *out_dir, const plot_params *params, FILE *log,
                   char *err, size_t errlen);
/* plot_render_ex() with the default size and this format. */
int plot_render(const char *results_path, const char *out_dir, const char *format, FILE *log,
                char *err, size_t errlen);

#endif
