/* testutil: small helpers shared by the cmocka tests.
 *   tu_tmpdir()      a fresh temporary folder (mkdtemp under $TMPDIR or /tmp), removed at exit
 *   tu_python(...)   runs Debian's /usr/bin/python3 with a script (for h5py/scipy cross-checks),
 *                    returns its exit status; stdout captured into out (optional).
 *   tu_pmi_bin()     the pmi executable under test: $PMI_BIN, else ./pmi (tests run from the
 *                    repository root). */
#ifndef PMI_TESTUTIL_H
#define PMI_TESTUTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char tu_dir_[256];
static void tu_cleanup_(void) {
    if (tu_dir_[0]) { char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir_); if (system(cmd)) {} }
}
static inline const char *tu_tmpdir(void) {
    if (!tu_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tu_dir_, sizeof tu_dir_, "%s/pmi-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tu_dir_)) { perror("mkdtemp"); exit(1); }
        atexit(tu_cleanup_);
    }
    return tu_dir_;
}
/* Writes `script` to a file and runs /usr/bin/python3 on it with args; stdout into out. */
static inline int tu_python(const char *script, const char *args, char *out, size_t outlen) {
    char path[300], cmd[8192];
    snprintf(path, sizeof path, "%s/script-%d.py", tu_tmpdir(), rand());
    FILE *f = fopen(path, "w"); if (!f) return -1;
    fputs(script, f); fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s", path, args ? args : "");
    FILE *p = popen(cmd, "r"); if (!p) return -1;
    size_t n = 0; int ch;
    while ((ch = fgetc(p)) != EOF) if (out && n + 1 < outlen) out[n++] = (char)ch;
    if (out) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#include <sys/wait.h>
static inline const char *tu_pmi_bin(void) {
    const char *b = getenv("PMI_BIN");
    return b && *b ? b : "./pmi";
}
#endif
