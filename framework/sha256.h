/* sha256: the SHA-256 digest (FIPS 180-4) of a file or a buffer, for the verification record's
 * fingerprint of the suspect file. No library that pmi links (HDF5, GSL, libtorch's C API,
 * libcjson) exposes one, so it is written here; tests/test_verify.c checks the FIPS vectors.
 *
 *   char hex[65];
 *   if (sha256_file("model.pt", hex, err, sizeof err)) ...; */
#ifndef PMI_SHA256_H
#define PMI_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bits;
    unsigned char block[64];
    size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Finishes c and writes the digest as 64 lower-case hex digits and a NUL into hex. */
void sha256_final(sha256_ctx *c, char hex[65]);
/* The digest of the file at path. 0, or -1 with err naming the file. */
int sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif
