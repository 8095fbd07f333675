/* probe: an untrusted results file read first in a child process (see probe.h). */
#include "probe.h"
#include "store.h"
#include "util.h"
#include <errno.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Datasets larger than this are not read whole by the generic pass (weights of big models). */
#define PROBE_MAX_BYTES ((hsize_t)256 << 20)

/* Reads n elements of an attribute (is_attr) or dataset in its native type; variable-length
 * data is reclaimed. Results are ignored: only surviving the read matters. */
static void read_object(hid_t obj, int is_attr) {
    hid_t t = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t sp = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    hid_t mt = t < 0 ? -1 : H5Tget_native_type(t, H5T_DIR_DEFAULT);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    size_t size = mt < 0 ? 0 : H5Tget_size(mt);
    int vlen = mt >= 0 && (H5Tdetect_class(mt, H5T_VLEN) > 0 || H5Tis_variable_str(mt) > 0);
    /* a dataset's variable-length data is read by store's guarded readers (the declared
     * length of /config is checked before libhdf5 allocates it); attributes are read here */
    if (n > 0 && size > 0 && (hsize_t)n * size <= PROBE_MAX_BYTES && (is_attr || !vlen)) {
        void *buf = calloc((size_t)n, size);
        if (buf) {
            herr_t rc = is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            if (rc >= 0 && vlen) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
            free(buf);
        }
    }
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
}

static herr_t read_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info; (void)data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a >= 0) { read_object(a, 1); H5Aclose(a); }
    return 0;
}

/* Every attribute of the object at name, and the object itself when it is a dataset. Only
 * hard links are followed: a soft or external link could lead out of the file. */
static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, read_attr, NULL);
    if (H5Iget_type(o) == H5I_DATASET) read_object(o, 0);
    H5Oclose(o);
    return 0;
}

/* What pmi report and pmi plot read, through the same functions, then the generic pass. */
static void read_all(const char *path) {
    static const char *const attrs[] = {"pmi_version", "git_commit", "torch_version", "device", "host", "started",
                                        "finished", "config", "config_hash", "decide", "partial_note"};
    char err[1024];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int64_t h = store_open(path, err, sizeof err);
    if (h < 0) return;
    store_close(h);
    (void)store_shard_complete(path);
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) free(store_read_attr(path, attrs[i]));
    store_settings st;
    (void)store_read_settings(path, &st, err, sizeof err);
    store_row *rows = NULL;
    int64_t n = 0;
    if (store_read_summary(path, &rows, &n, err, sizeof err) == 0) {
        for (int64_t i = 0; i < n; i++) {
            if (i && !strcmp(rows[i].job_id, rows[i - 1].job_id)) continue;
            store_eval_info *ev = NULL;
            int ne = 0;
            if (store_read_evals(path, rows[i].job_id, &ev, &ne, err, sizeof err) == 0) free(ev);
        }
        free(rows);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, read_attr, NULL);
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit, NULL);
    H5Fclose(f);
}

/* In a sanitizer build (make SAN=1, the fuzz targets), libhdf5's bad memory use is reported
 * by the sanitizer, which then runs its death callback: libFuzzer's writes a crash file and
 * calls it a finding. In the child that is the outcome probed for, not a finding: the
 * callback is removed there (a weak symbol: NULL in an ordinary build). */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void child(const char *path, int timeout_s) {
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(NULL);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    alarm((unsigned)timeout_s);
    read_all(path);
    _exit(0);
}

/* The child that probes path, started; -1 (err set) when none could start. */
static pid_t probe_start(const char *path, int timeout_s, char *err, size_t errlen) {
    struct stat st;
    if (timeout_s <= 0) timeout_s = PROBE_BASE_S + (stat(path, &st) ? 0 : (int)(st.st_size / PROBE_BYTES_PER_S));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) snprintf(err, errlen, "%s: cannot start the process that checks it: %s", path, strerror(errno));
    if (pid == 0) child(path, timeout_s);
    return pid;
}

/* The verdict of the child pid that probes path (a limit of timeout_s, 0: the default). */
static int probe_finish(pid_t pid, const char *path, int timeout_s, char *err, size_t errlen) {
    struct stat st;
    if (timeout_s <= 0) timeout_s = PROBE_BASE_S + (stat(path, &st) ? 0 : (int)(st.st_size / PROBE_BYTES_PER_S));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "%s: cannot wait for the process that checks it: %s", path, strerror(errno));
            return PROBE_ERROR;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return PROBE_OK;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(err, errlen, "%s: not a readable pmi results file (libhdf5 did not finish reading it within %d s)", path, timeout_s);
    else if (WIFSIGNALED(status))
        snprintf(err, errlen, "%s: not a readable pmi results file (libhdf5 crashed reading it: signal %d)", path, WTERMSIG(status));
    else
        snprintf(err, errlen, "%s: not a readable pmi results file (libhdf5 failed reading it: exit %d)", path, WEXITSTATUS(status));
    return PROBE_CRASHED;
}

int probe_results_file(const char *path, int timeout_s, char *err, size_t errlen) {
    pid_t pid = probe_start(path, timeout_s, err, errlen);
    return pid < 0 ? PROBE_ERROR : probe_finish(pid, path, timeout_s, err, errlen);
}

int probe_results_files(const char *const *paths, int n, char *err, size_t errlen) {
    pid_t *pids = calloc((size_t)(n > 0 ? n : 1), sizeof *pids);
    if (!pids) { snprintf(err, errlen, "out of memory"); return PROBE_ERROR; }
    int rc = PROBE_OK;
    char e[1024];
    for (int i = 0; i < n; i++)   /* all children at once */
        if ((pids[i] = probe_start(paths[i], 0, e, sizeof e)) < 0 && rc == PROBE_OK) { rc = PROBE_ERROR; snprintf(err, errlen, "%s", e); }
    for (int i = 0; i < n; i++) {   /* every child waited for; the first failure in the list's order reported */
        if (pids[i] < 0) continue;
        int r = probe_finish(pids[i], paths[i], 0, e, sizeof e);
        if (r != PROBE_OK && rc == PROBE_OK) { rc = r; snprintf(err, errlen, "%s", e); }
    }
    free(pids);
    return rc;
}
