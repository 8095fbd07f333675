/* probe: reads an untrusted results file in a child process before pmi reads it itself.
 *
 * libhdf5 (1.10 in Debian 12) can crash inside itself on a malformed file (a SEGV in
 * H5HG_read under H5Dread/H5Aread of a variable-length string, found by make fuzz-results);
 * no check in pmi can prevent that. probe_results_file() forks a child that does every read
 * `pmi report` and `pmi plot` do (store_open, the root attributes and the settings, /summary,
 * every job's evaluations) and, in one pass over every object of the file, reads every
 * attribute and every dataset without a variable-length type. When the child dies, the
 * caller gets a message instead of a crash of its own; when it finishes, the same reads in
 * the caller are known to survive this file. Clean read errors are not the probe's business:
 * the caller's own reads report them.
 *
 * The child has no core dump (RLIMIT_CORE 0), the default action for SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL and SIGABRT (a sanitizer's or fuzzer's handler is not run there) and a time
 * limit: libhdf5 can also loop forever on a malformed file (found by make fuzz-results: a
 * spin in H5HG_read). The default limit, PROBE_BASE_S seconds plus one second per
 * PROBE_BYTES_PER_S bytes of file, is far above what a real file needs (the 9 MB small-scale
 * robustness file is read in about 1 s on the 2-core CI machine). */
#ifndef PMI_PROBE_H
#define PMI_PROBE_H
#include <stddef.h>

#define PROBE_BASE_S 60
#define PROBE_BYTES_PER_S (2 << 20)

typedef enum {
    PROBE_OK = 0,                  /* the child read the file and exited normally */
    PROBE_CRASHED = -1,            /* it died (signal), ran out of time or exited with an error */
    PROBE_ERROR = -2,              /* no child could be started (fork failed) */
} probe_status;

/* Probes path as above, with a limit of timeout_s seconds (0: the default). Returns PROBE_OK,
 * or a probe_status with err: "PATH: not a readable pmi results file (libhdf5 crashed reading
 * it: signal N)", "... did not finish reading it within N s" or "... exit N", or why no child
 * could be started. */
int probe_results_file(const char *path, int timeout_s, char *err, size_t errlen);

/* Probes the n files paths[0..n) at once, a child each, with the default limits (pmi report
 * --markdown-report reads several results files). PROBE_OK when every child finished; else
 * the status and message of the first file in the list's order that failed. */
int probe_results_files(const char *const *paths, int n, char *err, size_t errlen);

#endif
