/* libFuzzer target for the HDF5 results readers that `pmi report` and `pmi plot` run on a file
 * given by the user, in the order the commands run them: first probe_results_file() (probe.h),
 * which reads the file in a child process, so that a crash inside libhdf5 (1.10 crashes on
 * malformed files: SEGV in H5HG_read) ends the child, not the fuzzer, and is refused with a
 * message as `pmi report` refuses it (so is a child that runs past 5 s: libhdf5 also loops
 * forever on some malformed files, which pmi refuses after its own, longer limit); then, only when the child survived, in this process:
 * store_open (schema check), store_read_attr, store_read_settings, store_read_summary,
 * store_read_evals and store_read_scores of every job the summary names, report_print (every
 * table) to /dev/null and report_store into the file. The input is written to a file and
 * opened by path, as the commands do. A crash, sanitizer report or hang here is a finding.
 *   make -C tests/fuzz run-results SECONDS=60   (seeds: tests/fuzz/seed-results.ini run by ./pmi) */
#include "probe.h"
#include "report.h"
#include "store.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *devnull;

/* Reads every evaluation and score of one job, as plot does. */
static void read_job(const char *path, const char *job_id) {
    char err[1024];
    store_eval_info *evals = NULL;
    int n = 0;
    if (store_read_evals(path, job_id, &evals, &n, err, sizeof err) == 0) {
        for (int i = 0; i < n && i < 4; i++) {
            double *scores = NULL;
            int N = 0, m = 0;
            if (store_read_scores(path, job_id, i, "loss", &scores, &N, &m, err, sizeof err) == 0) free(scores);
        }
        free(evals);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], err[1024];
    if (!devnull) devnull = fopen("/dev/null", "w");
    snprintf(path, sizeof path, "/tmp/pmi-fuzz-%d.h5", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    int64_t h = probe_results_file(path, 5, err, sizeof err) == PROBE_OK ? store_open(path, err, sizeof err) : -1;
    if (h >= 0) {
        store_close(h);
        static const char *const attrs[] = {"config", "complete", "schema_version", "pmi_version", "device", "started"};
        for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) free(store_read_attr(path, attrs[i]));
        store_settings settings;
        store_read_settings(path, &settings, err, sizeof err);
        (void)store_shard_complete(path);
        store_row *rows = NULL;
        int64_t n = 0;
        if (store_read_summary(path, &rows, &n, err, sizeof err) == 0) {
            for (int64_t i = 0; i < n && i < 3; i++) read_job(path, rows[i].job_id);
            free(rows);
        }
        report_print(path, REPORT_MD, devnull, err, sizeof err);
        report_options o = report_default_options();
        report_store(path, &o, err, sizeof err);
    }
    unlink(path);
    return 0;
}
