/* util: the two helpers several modules share.
 *   util_err()   writes a printf-style message into a caller's (err, errlen) buffer and
 *                returns -1, so that `return util_err(err, errlen, "...", ...);` reports and fails;
 *                a NULL or empty buffer is left alone.
 *   util_now_s() monotonic seconds, for durations. */
#ifndef PMI_UTIL_H
#define PMI_UTIL_H
#include <stddef.h>

int util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double util_now_s(void);

#endif
