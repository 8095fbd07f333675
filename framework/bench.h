/* bench: times pmi's training path the way scripts/bench/bench_ref.py times PyTorch from Python:
 * the same architecture, optimizer, batch size and data (the whole Fashion-MNIST train file,
 * normalised, resident on the device), warm-up epochs first, then timed epochs ending in a
 * device synchronisation. Prints one line "pmi-bench arch=... batch=... images_per_s=...".
 * With models > 1 it trains that many models (seeds 1..k) at once through nn_train_group and
 * prints "pmi-bench-group ... models_per_min=..." (training time only; the script around it
 * times the whole process). With a trace file, one more epoch after the timed ones runs under
 * torch's profiler and is written there ("pmi-trace file=... events=..."), the same epoch
 * scripts/bench/bench_ref.py --trace records for Python. */
#ifndef PMI_BENCH_H
#define PMI_BENCH_H
#include <stddef.h>
#include <stdio.h>
#include "nn.h"

typedef struct {
    const char *arch;      /* registry name */
    const char *dataset;   /* data_load name */
    int width;             /* 0: the arch's default */
    int batch, epochs, warmup;
    int n;                 /* training samples used (<= the train file) */
    nn_device_request device;
    double lr, momentum;
    int models;            /* > 1: train this many models at once with nn_train_group */
    nn_precision precision;   /* the training forward pass's (NN_BF16: autocast) */
    int channels_last;        /* NHWC layout while training */
    int threads;              /* libtorch threads (nn_set_threads: 0 = every core) */
    const char *trace;        /* non-NULL (one model): after the timing, one more epoch under the profiler
                               * (nn_profile_start), its Chrome trace written here */
} bench_opts;

bench_opts bench_default_opts(void);
int bench_train(const bench_opts *o, FILE *out, char *err, size_t errlen);

#endif
