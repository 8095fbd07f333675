/* report: the paper-style tables, computed from a merged results file's /summary alone.
 *
 * Tables (each in Markdown, CSV or LaTeX):
 *   1. models: one row per model and evaluation (seed, role, attack, k, identified, p-values, accuracy);
 *   2. settings: per sweep point and attack setting, over seeds: owner test accuracy (mean and
 *      95% CI), identification rate, ownership claim rate at each alpha on the decision p-value,
 *      median p-values (of the claimed k, and the N-way Holm-corrected one for a verifier who
 *      does not trust the claimed k), false-positive rate of independent models, AUC and TPR at 1% FPR of
 *      owner against independent models on -log10 p;
 *   3. calibration and power: for un-attacked independent models, the fraction with p < alpha
 *      for every p-value kind, with the binomial 95% upper bound expected under a calibrated
 *      test; against owner models, AUC, TPR at 1% FPR and the threshold calibrated on the
 *      independent models at the first alpha;
 *   4. fidelity: owner minus clean test accuracy, paired by seed, mean and 95% CI.
 * Alphas and the decision p-value come from the config stored in the file. Rows use the first
 * score kind of pmi.scores (the decision score). */
#ifndef PMI_REPORT_H
#define PMI_REPORT_H
#include <stddef.h>
#include <stdio.h>
#include "config.h"

typedef enum { REPORT_MD = 0, REPORT_CSV, REPORT_LATEX } report_format;

/* The decision settings stored with a results file: alphas, the decision p-value (a
 * pmi_pvalue) and the decision score kind (the first of pmi.scores), read from its config. */
typedef struct { double alphas[CFG_MAX_ALPHAS]; int n_alphas; int decide; char score[16]; } report_settings;
int report_read_settings(const char *path, report_settings *s, char *err, size_t errlen);
int report_format_parse(const char *s, report_format *f);   /* 0, or -1 if unknown */
/* Prints all tables of `path`. Returns 0, or -1 with err (unreadable file, other schema). */
int report_print(const char *path, report_format fmt, FILE *out, char *err, size_t errlen);

#endif
