/* util: the helpers several modules share.
 *   util_err()     writes a printf-style message into a caller's (err, errlen) buffer and
 *                  returns -1, so that `return util_err(err, errlen, "...", ...);` reports and
 *                  fails; a NULL or empty buffer is left alone. A message longer than the
 *                  buffer loses its middle (util_fit), not its end, where the reason is.
 *   util_fit()     a message into a buffer, its middle replaced by " [...] " when too long.
 *   util_malloc(), util_calloc(), util_realloc(), util_strdup()
 *                  checked allocation (llm.c's mallocCheck): out of memory is not a condition
 *                  pmi recovers from, so these print the caller's file:line and the size asked
 *                  for, and exit(1). They never return NULL (a size of 0 allocates 1 byte).
 *   util_now_s()   monotonic seconds, for durations.
 *   util_iso_now() the current UTC time as ISO 8601 ("2026-01-02T03:04:05Z") into buf.
 *   util_open_regular() a regular file opened for reading; a pipe or device refused, not waited on.
 *   util_read_file()   a whole regular file into a malloc'd buffer, refusing more than max bytes.
 *   util_escape()  a string with its control characters as \xNN, for a message to a terminal.
 *   util_host()    this machine as "<hostname>, <CPU model>, <n> cores" into buf (the CPU
 *                  model from /proc/cpuinfo; left out where there is none). */
#ifndef PMI_UTIL_H
#define PMI_UTIL_H
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

int util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* msg into buf (len bytes): whole when it fits, else its head, " [...] " and its last two
 * thirds, so that a long path cuts itself and the reason after it survives. */
void util_fit(const char *msg, char *buf, size_t len);
double util_now_s(void);
void util_iso_now(char *buf, size_t len);
/* Opens path for reading when it is a regular file (*st: its stat), without blocking on a named
 * pipe; NULL with err naming path otherwise. */
FILE *util_open_regular(const char *path, struct stat *st, char *err, size_t errlen);
/* Reads path into *buf (malloc'd, one NUL byte after the data) and *len. A path that is not a
 * regular file, or holds more than max bytes, is an error. Returns 0, or -1 with err naming path. */
int util_read_file(const char *path, size_t max, unsigned char **buf, size_t *len, char *err, size_t errlen);
/* s into buf with every control character (below 0x20, and 0x7f) written as \xNN, so that a
 * name from a file or the command line cannot drive the terminal; cut to fit len. */
void util_escape(const char *s, char *buf, size_t len);
void util_host(char *buf, size_t len);

/* Keeps the memory that libtorch frees in the process instead of giving it back to the kernel
 * (glibc: blocks up to 32 MB from the heap, the heap trimmed only above 1 GB free, grown 64 MB at
 * a time); a fresh page faults at about 5 us on the paravirtualised CI VM, and a training step
 * that frees and takes again its activations paid that for every page (docs/performance.md,
 * "Freed memory kept"). PMI_MALLOC=glibc keeps glibc's defaults. Call once, at the start. */
void util_keep_freed_memory(void);
void *util_malloc_at(size_t size, const char *file, int line);
void *util_calloc_at(size_t count, size_t size, const char *file, int line);
void *util_realloc_at(void *p, size_t size, const char *file, int line);
char *util_strdup_at(const char *s, const char *file, int line);
#define util_malloc(size)         util_malloc_at((size), __FILE__, __LINE__)
#define util_calloc(count, size)  util_calloc_at((count), (size), __FILE__, __LINE__)
#define util_realloc(p, size)     util_realloc_at((p), (size), __FILE__, __LINE__)
#define util_strdup(s)            util_strdup_at((s), __FILE__, __LINE__)

#endif
