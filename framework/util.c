/* util: shared helpers (see util.h). */
#include "util.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        char *full = NULL;
        int n = vasprintf(&full, fmt, ap);
        va_end(ap);
        if (n >= 0) util_fit(full, err, errlen);
        else err[0] = 0;
        free(full);
    }
    return -1;
}

void util_fit(const char *msg, char *buf, size_t len) {
    size_t n = strlen(msg);
    if (!len) return;
    if (n < len) { memcpy(buf, msg, n + 1); return; }
    static const char cut[] = " [...] ";
    if (len < 64) { snprintf(buf, len, "%s", msg); return; }
    size_t tail = (len - sizeof cut) * 2 / 3, head = len - sizeof cut - tail;   /* the reason is at the end */
    memcpy(buf, msg, head);
    memcpy(buf + head, cut, sizeof cut - 1);
    memcpy(buf + head + sizeof cut - 1, msg + n - tail, tail);
    buf[len - 1] = 0;
}

double util_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void util_iso_now(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void out_of_memory(size_t size, const char *file, int line) {
    fprintf(stderr, "pmi: out of memory allocating %zu bytes at %s:%d\n", size, file, line);
    exit(1);
}

void *util_malloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

void *util_calloc_at(size_t count, size_t size, const char *file, int line) {
    if (size && count > (size_t)-1 / size) out_of_memory((size_t)-1, file, line);
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size, file, line);
    return p;
}

void *util_realloc_at(void *p, size_t size, const char *file, int line) {
    void *q = realloc(p, size ? size : 1);
    if (!q) out_of_memory(size, file, line);
    return q;
}

char *util_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = util_malloc_at(n, file, line);
    memcpy(d, s, n);
    return d;
}

FILE *util_open_regular(const char *path, struct stat *st, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* a named pipe must not block the open */
    if (fd < 0) { util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
        close(fd);
        util_err(err, errlen, "%s: not a regular file", path);
        return NULL;
    }
    FILE *f = fcntl(fd, F_SETFL, 0) ? NULL : fdopen(fd, "rb");
    if (!f) { util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno)); close(fd); }
    return f;
}

int util_read_file(const char *path, size_t max, unsigned char **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL; *len = 0;
    struct stat st;
    FILE *f = util_open_regular(path, &st, err, errlen);
    if (!f) return -1;
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return util_err(err, errlen, "%s: %lld bytes, more than the %zu this reader accepts", path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = util_malloc(n + 1);
    size_t got = fread(b, 1, n, f);
    int bad = ferror(f) || got != n;
    fclose(f);
    if (bad) { free(b); return util_err(err, errlen, "%s: read error", path); }
    b[n] = 0;
    *buf = b; *len = n;
    return 0;
}

void util_escape(const char *s, char *buf, size_t len) {
    size_t n = 0;
    if (!len) return;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int ctl = ch < 0x20 || ch == 0x7f;
        if (n + (ctl ? 4 : 1) >= len) break;
        if (ctl) n += (size_t)snprintf(buf + n, len - n, "\\x%02x", ch);
        else buf[n++] = (char)ch;
    }
    buf[n] = 0;
}

void util_host(char *buf, size_t len) {
    char host[256] = "unknown host", model[256] = "", line[512];
    gethostname(host, sizeof host - 1);
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(model, sizeof model, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
    if (f) fclose(f);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(buf, len, "%s%s%s, %ld cores", host, model[0] ? ", " : "", model, cores);
}

void util_keep_freed_memory(void) {
#ifdef __GLIBC__
    const char *env = getenv("PMI_MALLOC");
    if (env && !strcmp(env, "glibc")) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
#endif
}
