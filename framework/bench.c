/* bench: timing of pmi's training path (see bench.h). */
#include "bench.h"
#include "data.h"
#include "nn.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

bench_opts bench_default_opts(void) {
    return (bench_opts){.arch = "cnn", .dataset = "fashion-mnist", .batch = 128, .epochs = 3, .warmup = 1,
                        .n = 60000, .device = NN_WANT_AUTO, .lr = 0.01, .momentum = 0.9, .models = 1};
}


/* k models of spec (seeds 1..k, batch orders 1..k) trained at once on d. */
static int bench_group(const bench_opts *o, const nn_model_spec *spec0, const nn_data *d, const nn_train_params *tp0,
                       int64_t n, const char *devname, FILE *out, char *err, size_t errlen) {
    int k = o->models, rc = -1;
    nn_model **m = util_calloc((size_t)k, sizeof *m);
    const nn_data **ds = util_calloc((size_t)k, sizeof *ds);
    nn_train_params *tp = util_calloc((size_t)k, sizeof *tp);
    double **curves = util_calloc((size_t)k, sizeof *curves);
    double *buf = util_calloc((size_t)k * (size_t)o->epochs, sizeof *buf);
    for (int i = 0; i < k; i++) {
        nn_model_spec spec = *spec0;
        spec.seed = (uint64_t)i + 1;
        if (nn_model_create(&spec, &m[i]) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
        ds[i] = d;
        tp[i] = *tp0;
        tp[i].epochs = o->epochs;
        tp[i].seed = (uint64_t)i + 1;
        curves[i] = buf + (size_t)i * (size_t)o->epochs;
    }
    double t0 = util_now_s();
    if (nn_train_group(m, ds, tp, k, curves) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
    double dt = util_now_s() - t0;
    fprintf(out, "pmi-bench-group arch=%s precision=%s batch=%d epochs=%d n=%lld models=%d device=\"%s\" seconds=%.3f "
                 "images_per_s=%.0f models_per_min=%.2f final_loss_first=%.4f\n",
            o->arch, nn_precision_name(o->precision), o->batch, o->epochs, (long long)n, k, devname, dt, (double)n * o->epochs * k / dt,
            60.0 * k / dt, curves[0][o->epochs - 1]);
    if (o->trace) {   /* one more epoch of the k models, under the profiler */
        int64_t events = 0;
        for (int i = 0; i < k; i++) tp[i].epochs = 1;
        if (nn_profile_start(spec0->device == NN_CUDA) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
        nn_status st = nn_train_group(m, ds, tp, k, curves);
        if (nn_profile_stop(o->trace, &events) != NN_OK || st != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
        fprintf(out, "pmi-trace arch=%s batch=%d epochs=1 models=%d file=%s events=%lld\n", o->arch, o->batch, k, o->trace,
                (long long)events);
    }
    rc = 0;
out:
    for (int i = 0; m && i < k; i++) nn_model_free(m[i]);
    free(m); free(ds); free(tp); free(curves); free(buf);
    return rc;
}

int bench_train(const bench_opts *o, FILE *out, char *err, size_t errlen) {
    pmi_dataset train = {0}, test = {0};
    nn_data *d = NULL;
    nn_model *m = NULL;
    double *loss = NULL;   /* (epochs) */
    nn_device dev;
    char devname[128];
    int rc = -1;
    nn_set_threads(o->threads);
    if (nn_device_resolve(o->device, &dev, devname, sizeof devname) != NN_OK) {
        snprintf(err, errlen, "%s", nn_last_error());
        return -1;
    }
    if (data_load(o->dataset, "", 0, 1, &train, &test, err, errlen)) return -1;
    int64_t n = o->n < train.n ? o->n : train.n;
    double mean[3] = {0}, sd[3] = {1, 1, 1};
    data_channel_stats(&train, NULL, n, mean, sd);
    data_normalize(&train, DATA_NORM_STANDARD, mean, sd);
    nn_model_spec spec = {.arch = o->arch, .c = train.c, .h = train.h, .w = train.w, .classes = train.classes,
                          .width = o->width, .device = dev, .seed = 1};
    nn_train_params tp = nn_train_default_params();
    tp.lr = o->lr; tp.momentum = o->momentum; tp.batch_size = o->batch; tp.seed = 1; tp.precision = o->precision;
    tp.channels_last = o->channels_last;
    if (nn_data_create(train.x, train.y, n, train.c, train.h, train.w, dev, &d) != NN_OK ||
        nn_model_create(&spec, &m) != NN_OK) {
        snprintf(err, errlen, "%s", nn_last_error());
        goto out;
    }
    if (o->models > 1) {
        rc = bench_group(o, &spec, d, &tp, n, devname, out, err, errlen);
        goto out;
    }
    tp.epochs = o->warmup;
    if (o->warmup > 0 && nn_train(m, d, &tp, NULL) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
    loss = util_malloc((size_t)o->epochs * sizeof *loss);
    tp.epochs = o->epochs;
    double t0 = util_now_s();
    /* nn_train reads each epoch's loss back, so the last epoch has finished on the device */
    if (nn_train(m, d, &tp, loss) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
    double dt = util_now_s() - t0;
    fprintf(out, "pmi-bench arch=%s batch=%d epochs=%d n=%lld device=\"%s\" seconds=%.3f images_per_s=%.0f final_loss=%.4f precision=%s%s\n",
            o->arch, o->batch, tp.epochs, (long long)n, devname, dt, (double)n * tp.epochs / dt, loss[tp.epochs - 1],
            nn_precision_name(o->precision), o->channels_last ? " channels_last" : "");
    if (o->trace) {
        int64_t events = 0;
        tp.epochs = 1;
        if (nn_profile_start(dev == NN_CUDA) != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
        nn_status st = nn_train(m, d, &tp, loss);
        if (nn_profile_stop(o->trace, &events) != NN_OK || st != NN_OK) { snprintf(err, errlen, "%s", nn_last_error()); goto out; }
        fprintf(out, "pmi-trace arch=%s batch=%d epochs=1 file=%s events=%lld\n", o->arch, o->batch, o->trace, (long long)events);
    }
    rc = 0;
out:
    free(loss);
    nn_model_free(m);
    nn_data_free(d);
    data_free(&train);
    data_free(&test);
    return rc;
}
