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
 *   robustness-<attack>  per attack section: decision -log10 p (mean and 95% t-CI over seeds),
 *                        identification rate and test accuracy against the swept parameter, one
 *                        line per owner architecture, un-attacked references and the independent
 *                        models' -log10 p (the noise floor)
 *   scores               per-sample decision scores of D_k against the other mini-datasets for
 *                        an owner and an independent model, un-attacked and after the last
 *                        setting of the first attack section
 *   roc, roc-attacked    ROC of owner against independent models for each p-value (score
 *                        -log10 p), un-attacked, and pooled over all attacked evaluations
 *   fidelity             owner against clean test accuracy per architecture, paired by seed
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
