/* libFuzzer target for the readers that take files from users: the INI config loader
 * (with validation and the sweep expansion) and the IDX and CIFAR dataset readers. The input's
 * first byte picks the reader; the rest is written to a file that the reader opens. Any crash,
 * sanitizer report or hang is a bug: bad input must end in an error message.
 *   make -C tests/fuzz run      (clang with -fsanitize=fuzzer,address,undefined; see Makefile) */
#include "config.h"
#include "data.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *write_tmp(const char *name, const uint8_t *d, size_t n) {
    static char path[2][256];
    static int which;
    char *p = path[which++ & 1];
    snprintf(p, 256, "/tmp/pmi-fuzz-%d-%s", (int)getpid(), name);
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    fwrite(d, 1, n, f);
    fclose(f);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[1024];
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {  /* config */
        const char *p = write_tmp("cfg.ini", d, n);
        cfg *c = cfg_create();
        if (p && cfg_load(c, p, err, sizeof err) == 0 && cfg_validate(c, err, sizeof err) == 0) {
            pmi_params pp;
            int points = cfg_sweep_count(c);
            for (int i = 0; i < points && i < 8; i++) cfg_point(c, i, &pp, err, sizeof err);
            free(cfg_effective_text(c));
        }
        cfg_free(c);
        if (p) unlink(p);
        break;
    }
    case 1: {  /* IDX: the first half is the image file, the second the label file */
        const char *a = write_tmp("img", d, n / 2), *b = write_tmp("lab", d + n / 2, n - n / 2);
        pmi_dataset ds = {0};
        if (a && b && data_read_idx(a, b, &ds, err, sizeof err) == 0) data_free(&ds);
        if (a) unlink(a);
        if (b) unlink(b);
        break;
    }
    default: {  /* CIFAR-10 and CIFAR-100 records */
        const char *p = write_tmp("cifar.bin", d, n);
        const char *files[] = {p, NULL};
        pmi_dataset ds = {0};
        if (p && data_read_cifar(files, 10, &ds, err, sizeof err) == 0) data_free(&ds);
        if (p && data_read_cifar(files, 100, &ds, err, sizeof err) == 0) data_free(&ds);
        if (p) unlink(p);
        break;
    }
    }
    return 0;
}
