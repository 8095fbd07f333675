/* libFuzzer target for the safetensors reader that `pmi verify --weights` runs on a user's
 * file: st_parse (header length, JSON through libcjson, dtypes, shapes, offsets), then, for a
 * file that parses, weights_load into a small mlp (every tensor's presence, dtype and shape
 * checked against the architecture, the data copied in). Any crash, sanitizer report or hang
 * is a bug: bad input must end in an error message.
 *   make -C tests/fuzz run-safetensors SECONDS=60   (seeds: seeds-st/, a valid mlp file) */
#include "safetensors.h"
#include "weights.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024];
    unsigned char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    st_file f;
    if (st_parse(buf, size, &f, err, sizeof err)) {
        free(buf);
        return 0;
    }
    for (int i = 0; i < f.n; i++) {   /* touch every tensor's bytes: they must lie in the buffer */
        volatile unsigned char s = 0;
        for (size_t b = 0; b < f.tensors[i].nbytes; b++) s ^= f.tensors[i].data[b];
        (void)s;
    }
    st_meta(&f, "arch");
    st_free(&f);
    char path[256];
    snprintf(path, sizeof path, "/tmp/pmi-fuzz-%d.safetensors", (int)getpid());
    FILE *o = fopen(path, "wb");
    if (!o) return 0;
    fwrite(data, 1, size, o);
    fclose(o);
    weights_want want = {.arch = "mlp", .width = 2, .c = 1, .h = 2, .w = 2, .classes = 2};
    nn_model *m = NULL;
    if (weights_load(path, &want, NN_CPU, &m, NULL, err, sizeof err) == 0) nn_model_free(m);
    unlink(path);
    return 0;
}
