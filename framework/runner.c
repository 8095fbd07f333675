/* runner: executes a plan job by job, one shard per job (see runner.h). */
#include "runner.h"
#include "attack.h"
#include "data.h"
#include "nn.h"
#include "plan.h"
#include "pmi.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { stop_requested = sig; }

void runner_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}


static void iso_now(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int mkdir_p(const char *path) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *q = tmp + 1; *q; q++)
        if (*q == '/') { *q = 0; if (mkdir(tmp, 0755) && errno != EEXIST) return -1; *q = '/'; }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

void runner_paths(const pmi_params *p, char *shard_dir, size_t a, char *merged, size_t b) {
    snprintf(shard_dir, a, "%s/%s/shards", p->output, p->name);
    snprintf(merged, b, "%s/%s/results.h5", p->output, p->name);
}

/* ---- the data a job needs, loaded once per (dataset, path) and device --------------- */
typedef struct {
    char key[CFG_STR * 2];
    pmi_dataset train, test;
    nn_data *dtrain, *dtest;
} data_cache;

static void cache_free(data_cache *dc) {
    nn_data_free(dc->dtrain); nn_data_free(dc->dtest);
    data_free(&dc->train); data_free(&dc->test);
    memset(dc, 0, sizeof *dc);
}

static void normalize_pair(data_cache *dc, cfg_norm mode) {
    if (mode == NORM_NONE) return;
    if (mode == NORM_UNIT) {
        data_normalize(&dc->train, DATA_NORM_UNIT, NULL, NULL);
        data_normalize(&dc->test, DATA_NORM_UNIT, NULL, NULL);
        return;
    }
    /* standard: per-channel statistics of the whole train file (independent of the split) */
    double mean[3] = {0}, sd[3] = {1, 1, 1};
    data_channel_stats(&dc->train, NULL, dc->train.n, mean, sd);
    data_normalize(&dc->train, DATA_NORM_STANDARD, mean, sd);
    data_normalize(&dc->test, DATA_NORM_STANDARD, mean, sd);
}

static int cache_get(data_cache *dc, const pmi_params *p, nn_device dev, char *err, size_t errlen) {
    char key[sizeof dc->key];
    int64_t n_synth = (int64_t)p->n_train * 2 + (int64_t)p->N * p->m + p->n_attacker + 4 * (int64_t)p->n_test;
    snprintf(key, sizeof key, "%s|%s|%d|%lld", p->dataset, p->path, (int)p->normalize,
             strcmp(p->dataset, "synthetic") ? 0LL : (long long)n_synth);
    if (!strcmp(key, dc->key)) return 0;
    cache_free(dc);
    if (data_load(p->dataset, p->path, n_synth, 12345, &dc->train, &dc->test, err, errlen)) return -1;
    normalize_pair(dc, p->normalize);
    nn_status st = nn_data_create(dc->train.x, dc->train.y, dc->train.n, dc->train.c, dc->train.h, dc->train.w, dev, &dc->dtrain);
    if (st == NN_OK)
        st = nn_data_create(dc->test.x, dc->test.y, dc->test.n, dc->test.c, dc->test.h, dc->test.w, dev, &dc->dtest);
    if (st != NN_OK) {
        snprintf(err, errlen, "uploading %s: %s", p->dataset, nn_last_error());
        cache_free(dc);
        return -1;
    }
    snprintf(dc->key, sizeof dc->key, "%s", key);
    return 0;
}

/* ---- one job ------------------------------------------------------------------------ */
typedef struct {
    const plan_job *job;
    const pmi_params *p;
    const data_split *split;
    nn_data *pool, *test, *attacker;
    int classes;
    const int32_t *labels;     /* train-file labels (host) */
    const char *arch;          /* this job's architecture */
    const attack_setting *attacks; int n_attacks;
    nn_device dev;
    int kinds[SCORE_COUNT], n_kinds;
    int index, total;          /* progress */
    int worker;                /* worker process index, -1 in a single-process run */
    double t0, run_t0;
    int tty;
} job_ctx;

static int progress_epoch(void *ctx, int epoch, int epochs, double loss) {
    job_ctx *jc = ctx;
    if (jc->tty) {
        double now = util_now_s(), el = now - jc->t0;
        double eta = el / (epoch + 1) * (epochs - epoch - 1);
        /* the whole run: the fraction of jobs done so far, counting this one's epochs */
        double frac = (jc->index + (epoch + 1.0) / epochs) / jc->total;
        double run_eta = (now - jc->run_t0) / frac * (1 - frac);
        fprintf(stderr, "\r  [%d/%d] %-28s epoch %3d/%-3d loss %.4f  job eta %5.1fs, run eta %6.0fs   ",
                jc->index + 1, jc->total, jc->job->id, epoch + 1, epochs, loss, eta, run_eta);
        fflush(stderr);
    }
    return stop_requested != 0;
}

static int parse_kinds(const char *list, int *kinds) {
    char buf[CFG_STR];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int k = pmi_score_parse(t);
        if (k >= 0 && n < SCORE_COUNT) kinds[n++] = k;
    }
    return n;
}

static void eval_free(store_eval *e) {
    free(e->sample_scores); free(e->pool_mean); free(e->pool_median);
}

/* The result of a model that cannot be verified: nothing identified, every p-value NaN
 * (which no alpha claims). */
static void unverifiable(pmi_result *r, int N, int m, int k) {
    memset(r, 0, sizeof *r);
    r->N = N; r->m = m; r->k = k;
    r->identified = r->identified_median = -1;
    r->margin = NAN;
    for (int i = 0; i < P_COUNT; i++) { r->p[i] = r->p_nway[i] = NAN; r->nway_index[i] = -1; }
}

/* Test accuracy, per-sample scores of every pool sample for every kind, PMI statistics. A
 * model with NaN outputs is recorded as unverifiable rather than stopping the run. */
static int evaluate(nn_model *model, const job_ctx *jc, store_eval *ev, char *err, size_t errlen) {
    const pmi_params *p = jc->p;
    int64_t nm = (int64_t)p->N * p->m;
    double t0 = util_now_s();
    ev->n_kinds = jc->n_kinds;
    memcpy(ev->kinds, jc->kinds, sizeof ev->kinds);
    ev->sample_scores = malloc(sizeof(double) * (size_t)(nm * jc->n_kinds));
    ev->pool_mean = malloc(sizeof(double) * (size_t)(p->N * jc->n_kinds));
    ev->pool_median = malloc(sizeof(double) * (size_t)(p->N * jc->n_kinds));
    float *logp = malloc(sizeof(float) * (size_t)(nm * jc->classes));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)nm);
    if (!ev->sample_scores || !ev->pool_mean || !ev->pool_median || !logp || !y) {
        free(logp); free(y); snprintf(err, errlen, "out of memory"); return -1;
    }
    nn_status st = nn_accuracy(model, jc->test, &ev->test_acc);
    if (st == NN_OK) st = nn_eval_logp(model, jc->pool, logp);
    if (st != NN_OK) { free(logp); free(y); snprintf(err, errlen, "evaluation: %s", nn_last_error()); return -1; }
    for (int64_t i = 0; i < nm; i++) y[i] = jc->labels[jc->split->pool[i]];
    int diverged = 0, failed = 0;
    for (int64_t i = 0; i < nm * jc->classes && !diverged; i++) diverged = isnan(logp[i]);
    /* The score kinds are independent, each seeded on its own: verify them in parallel (the
     * permutation tests dominate an evaluation); the results do not depend on the threads. */
    #pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < jc->n_kinds; k++) {
        double *s = ev->sample_scores + k * nm;
        pmi_scores((pmi_score_kind)jc->kinds[k], logp, y, nm, jc->classes, s);
        if (diverged) {  /* a model whose outputs are NaN (an attack diverged) cannot be verified */
            unverifiable(&ev->res[k], p->N, p->m, jc->split->secret);
            for (int i = 0; i < p->N; i++) ev->pool_mean[k * p->N + i] = ev->pool_median[k * p->N + i] = NAN;
            continue;
        }
        if (pmi_verify(s, p->N, p->m, jc->split->secret, p->permutations,
                       (uint64_t)jc->job->seed * 7777u + (uint64_t)k, &ev->res[k],
                       ev->pool_mean + k * p->N, ev->pool_median + k * p->N)) {
            #pragma omp critical
            {
                failed = 1;
                snprintf(err, errlen, "verification (%s score): %s", pmi_score_name((pmi_score_kind)jc->kinds[k]), pmi_error());
            }
        }
    }
    if (failed) { free(logp); free(y); return -1; }
    if (diverged) fprintf(stderr, "  %s: %s%s model outputs NaN (diverged): recorded as unverifiable\n",
                          jc->job->id, ev->attack[0] ? "attack " : "", ev->attack);
    ev->sparsity = nn_sparsity(model);
    ev->wall_s = util_now_s() - t0;
    free(logp); free(y);
    return 0;
}

static nn_train_params train_params(const pmi_params *p, job_ctx *jc, uint64_t seed) {
    nn_train_params tp = nn_train_default_params();
    tp.optimizer = p->optimizer == OPT_ADAM ? NN_ADAM : NN_SGD;
    tp.lr = p->lr; tp.momentum = p->momentum; tp.weight_decay = p->weight_decay;
    tp.epochs = p->epochs; tp.batch_size = p->batch_size;
    tp.schedule = (nn_schedule)p->schedule; tp.step_size = p->step_size; tp.gamma = p->gamma;
    tp.seed = seed;
    tp.on_epoch = progress_epoch; tp.ctx = jc;
    return tp;
}

/* The training set of a role: owner = train + D_k; indep-data = the disjoint set; else train. */
static nn_data *role_data(const job_ctx *jc, nn_data *dtrain) {
    const data_split *sp = jc->split;
    nn_data *d = NULL, *dk = NULL, *both = NULL;
    switch (jc->job->role) {
    case ROLE_OWNER:
        if (nn_data_subset(dtrain, sp->train, sp->n_train, &d) != NN_OK) return NULL;
        if (nn_data_subset(dtrain, sp->pool + (int64_t)sp->secret * sp->m, sp->m, &dk) != NN_OK) { nn_data_free(d); return NULL; }
        nn_data_concat(d, dk, &both);
        nn_data_free(d); nn_data_free(dk);
        return both;
    case ROLE_INDEP_DATA:
        return nn_data_subset(dtrain, sp->indep, sp->n_indep, &d) == NN_OK ? d : NULL;
    default:
        return nn_data_subset(dtrain, sp->train, sp->n_train, &d) == NN_OK ? d : NULL;
    }
}

typedef struct {
    store_eval evals[1 + 256];
    int n_evals;
    double loss_curve[10000];
    double train_acc, test_acc;
    const char *names[256]; int64_t numel[256]; float *data[256]; int n_tensors;
} job_out;

static void job_out_free(job_out *o) {
    for (int i = 0; i < o->n_evals; i++) eval_free(&o->evals[i]);
    for (int i = 0; i < o->n_tensors; i++) free(o->data[i]);
    memset(o, 0, sizeof *o);
}

static int collect_weights(nn_model *m, job_out *o) {
    int n = nn_param_count(m);
    if (n > 256) n = 256;
    for (int i = 0; i < n; i++) {
        int64_t shape[4]; int ndim;
        if (nn_param_info(m, i, &o->names[i], &o->numel[i], shape, &ndim) != NN_OK) return -1;
        o->data[i] = malloc(sizeof(float) * (size_t)o->numel[i]);
        o->n_tensors = i + 1;
        if (!o->data[i] || nn_param_get(m, i, o->data[i]) != NN_OK) return -1;
    }
    return 0;
}

static int run_attacks(nn_model *model, job_ctx *jc, const nn_model_spec *spec, job_out *o, char *err, size_t errlen) {
    attack_ctx ac = { .attacker = jc->attacker, .p = jc->p, .spec = *spec,
                      .seed = (uint64_t)jc->job->seed * 31337u + 17u };
    for (int a = 0; a < jc->n_attacks && !stop_requested; a++) {
        const attack_setting *as = &jc->attacks[a];
        nn_model *attacked = NULL;
        double t0 = util_now_s();
        if (attack_apply(as, model, &ac, &attacked, err, errlen)) return -1;
        store_eval *ev = &o->evals[o->n_evals++];
        snprintf(ev->attack, sizeof ev->attack, "%s", as->name);
        snprintf(ev->type, sizeof ev->type, "%s", as->type);
        snprintf(ev->params, sizeof ev->params, "%s", as->label);
        ev->strength = as->strength;
        int rc = evaluate(attacked, jc, ev, err, errlen);
        ev->wall_s = util_now_s() - t0;
        nn_model_free(attacked);
        if (rc) return -1;
    }
    return 0;
}

/* A job's model, training set and training parameters, ready to train. */
typedef struct {
    nn_model_spec spec;
    nn_model *model;
    nn_data *dtr;
    nn_train_params tp;
} job_train;

static void job_train_free(job_train *t) {
    nn_model_free(t->model);
    nn_data_free(t->dtr);
    memset(t, 0, sizeof *t);
}

static int job_setup(job_ctx *jc, data_cache *dc, job_train *t, char *err, size_t errlen) {
    const pmi_params *p = jc->p;
    memset(t, 0, sizeof *t);
    t->spec = (nn_model_spec){ .arch = jc->arch, .c = dc->train.c, .h = dc->train.h, .w = dc->train.w,
                               .classes = jc->classes, .width = p->width, .device = jc->dev,
                               .seed = plan_init_seed(jc->job) };
    if (p->epochs > (int)(sizeof ((job_out *)0)->loss_curve / sizeof(double))) { snprintf(err, errlen, "too many epochs"); return -1; }
    if (!(t->dtr = role_data(jc, dc->dtrain))) { snprintf(err, errlen, "selecting training data: %s", nn_last_error()); return -1; }
    if (nn_model_create(&t->spec, &t->model) != NN_OK) {
        snprintf(err, errlen, "model '%s': %s", jc->arch, nn_last_error());
        return -1;
    }
    t->tp = train_params(p, jc, (uint64_t)jc->job->seed * 2654435761u + 1u);
    return 0;
}

/* After training: training accuracy, the un-attacked evaluation, the attacks, the weights.
 * Returns 0, -1 on error, 1 when stopped. */
static int job_finish(job_ctx *jc, job_train *t, job_out *o, char *err, size_t errlen) {
    if (jc->tty) fprintf(stderr, "\r\033[K");
    if (nn_accuracy(t->model, t->dtr, &o->train_acc) != NN_OK) { snprintf(err, errlen, "accuracy: %s", nn_last_error()); return -1; }
    store_eval *ev = &o->evals[o->n_evals++];
    snprintf(ev->attack, sizeof ev->attack, "none");
    snprintf(ev->type, sizeof ev->type, "none");
    ev->strength = NAN;
    if (evaluate(t->model, jc, ev, err, errlen)) return -1;
    o->test_acc = ev->test_acc;
    if (run_attacks(t->model, jc, &t->spec, o, err, errlen)) return -1;
    if (stop_requested) return 1;
    if (jc->p->save_models && collect_weights(t->model, o)) { snprintf(err, errlen, "reading weights: %s", nn_last_error()); return -1; }
    return 0;
}

/* Trains the models of g jobs: one nn_train with progress for a single job, else one
 * nn_train_group (concurrent CUDA streams on a GPU). */
static int train_jobs(job_ctx *jcs, job_train *t, job_out **o, int g, char *err, size_t errlen) {
    nn_status st;
    if (g == 1) {
        st = nn_train(t[0].model, t[0].dtr, &t[0].tp, o[0]->loss_curve);
    } else {
        nn_model *m[64];
        const nn_data *d[64];
        nn_train_params tp[64];
        double *curves[64];
        for (int i = 0; i < g; i++) {
            m[i] = t[i].model; d[i] = t[i].dtr; tp[i] = t[i].tp; curves[i] = o[i]->loss_curve;
            tp[i].on_epoch = NULL;
        }
        fprintf(stderr, "  training %d models at once (%s ... %s)\n", g, jcs[0].job->id, jcs[g - 1].job->id);
        st = nn_train_group(m, d, tp, g, curves);
    }
    if (stop_requested) return 1;
    if (st != NN_OK) { snprintf(err, errlen, "training: %s", nn_last_error()); return -1; }
    return 0;
}

static void fill_job(store_job *sj, const job_ctx *jc, const job_out *o, const pmi_params *p, const char *point, double wall) {
    memset(sj, 0, sizeof *sj);
    snprintf(sj->id, sizeof sj->id, "%s", jc->job->id);
    snprintf(sj->experiment, sizeof sj->experiment, "%s", p->name);
    snprintf(sj->dataset, sizeof sj->dataset, "%s", p->dataset);
    snprintf(sj->arch, sizeof sj->arch, "%s", jc->arch);
    snprintf(sj->role, sizeof sj->role, "%s", plan_roles[jc->job->role].name);
    snprintf(sj->point, sizeof sj->point, "%s", point);
    sj->point_index = jc->job->point; sj->seed = jc->job->seed; sj->replica = jc->job->replica;
    sj->N = p->N; sj->m = p->m; sj->secret_k = jc->split->secret;
    sj->trained_on_k = plan_roles[jc->job->role].trained_on_k;
    sj->train_acc = o->train_acc; sj->test_acc = o->test_acc; sj->wall_s = wall;
    sj->split = jc->split;
    sj->loss_curve = o->loss_curve; sj->epochs = p->epochs;
    sj->evals = (store_eval *)o->evals; sj->n_evals = o->n_evals;
    sj->n_tensors = o->n_tensors; sj->tensor_names = o->names; sj->tensor_numel = o->numel;
    sj->tensor_data = (const float *const *)o->data;
}

static void report_line(const job_ctx *jc, const job_out *o, double wall) {
    const store_eval *e = &o->evals[0];
    const pmi_result *r = &e->res[0];
    char tag[16] = "";
    if (jc->worker >= 0) snprintf(tag, sizeof tag, "w%d ", jc->worker);
    fprintf(stderr, "  [%s%d/%d] %-24s train %.3f test %.3f  k=%d identified=%d p_perm=%.2g p_rank=%.2g  %d attacks  %.1fs\n",
            tag, jc->index + 1, jc->total, jc->job->id, o->train_acc, o->test_acc, r->k, r->identified,
            r->p[P_PERM], r->p[P_RANK], o->n_evals - 1, wall);
}

static int write_shard(job_ctx *jc, const job_out *o, const cfg *c, const char *shard,
                       const store_provenance *prov0, char *err, size_t errlen) {
    double wall = util_now_s() - jc->t0;
    char point[256];
    cfg_point_label(c, jc->job->point, point, sizeof point);
    store_job sj;
    fill_job(&sj, jc, o, jc->p, point, wall);
    store_provenance prov = *prov0;
    iso_now(prov.finished, sizeof prov.finished);
    if (store_write_shard(shard, &sj, &prov, err, errlen)) return -1;
    report_line(jc, o, wall);
    return 0;
}

/* Runs g jobs of one sweep point and seed (g = 1 unless grouped on a GPU): splits the data
 * once, trains their models (together when g > 1), then evaluates each, runs its attacks
 * and writes its shard. 0 ok, 1 stopped, -1 error. */
static int execute(job_ctx *jcs, int g, data_cache *dc, const cfg *c, char (*shards)[700],
                   const store_provenance *prov, char *err, size_t errlen) {
    const pmi_params *p = jcs[0].p;
    data_split split;
    if (data_split_make(dc->train.n, dc->test.n, p->n_train, p->N, p->m, p->n_attacker,
                        p->independent > 0, p->n_test, p->secret, (uint64_t)jcs[0].job->seed, &split, err, errlen))
        return -1;
    int rc = -1;
    nn_data *pool = NULL, *test = NULL, *attacker = NULL;
    job_train t[64];
    job_out *o[64];
    memset(t, 0, sizeof t);
    memset(o, 0, sizeof o);
    if (nn_data_subset(dc->dtrain, split.pool, (int64_t)p->N * p->m, &pool) != NN_OK ||
        nn_data_subset(dc->dtest, split.test, split.n_test, &test) != NN_OK ||
        (split.n_attacker > 0 && nn_data_subset(dc->dtrain, split.attacker, split.n_attacker, &attacker) != NN_OK)) {
        snprintf(err, errlen, "selecting data: %s", nn_last_error());
        goto out;
    }
    for (int i = 0; i < g; i++) {
        job_ctx *jc = &jcs[i];
        jc->split = &split; jc->labels = dc->train.y; jc->classes = dc->train.classes;
        jc->pool = pool; jc->test = test; jc->attacker = attacker;
        jc->t0 = util_now_s();
        if (!(o[i] = calloc(1, sizeof *o[i]))) { snprintf(err, errlen, "out of memory"); goto out; }
        if (job_setup(jc, dc, &t[i], err, errlen)) goto out;
    }
    if ((rc = train_jobs(jcs, t, o, g, err, errlen))) goto out;
    for (int i = 0; i < g && rc == 0; i++) {
        rc = job_finish(&jcs[i], &t[i], o[i], err, errlen);
        if (rc == 0) rc = write_shard(&jcs[i], o[i], c, shards[i], prov, err, errlen);
        job_train_free(&t[i]);
    }
out:
    for (int i = 0; i < g; i++) {
        job_train_free(&t[i]);
        if (o[i]) { job_out_free(o[i]); free(o[i]); }
        jcs[i].pool = jcs[i].test = jcs[i].attacker = NULL;
    }
    nn_data_free(pool); nn_data_free(test); nn_data_free(attacker);
    data_split_free(&split);
    return rc;
}

/* Drops the `seeds = ...` line of [experiment]: adding seeds keeps earlier jobs valid. */
static void strip_seeds(char *text) {
    char *sec = strstr(text, "[experiment]"), *line = sec ? strstr(sec, "\nseeds") : NULL;
    char *next = strstr(sec ? sec + 1 : text, "\n[");
    if (!line || (next && line > next)) return;
    char *end = strchr(line + 1, '\n');
    memmove(line, end ? end : line + strlen(line), strlen(end ? end : line + strlen(line)) + 1);
}

/* 0 if the shard was written by the same configuration (seed count aside), else -1 with err. */
static int same_config(const char *shard, const char *config_text, char *err, size_t errlen) {
    char *old = store_read_attr(shard, "config"), *cur = strdup(config_text);
    int same = old && cur;
    if (same) { strip_seeds(old); strip_seeds(cur); same = !strcmp(old, cur); }
    free(old); free(cur);
    if (same) return 0;
    snprintf(err, errlen, "%s was written by a different configuration; run with --force to retrain, "
             "or choose another experiment.name", shard);
    return -1;
}

static int all_complete(const plan_job *jobs, int n, const char *shard_dir) {
    for (int j = 0; j < n; j++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.h5", shard_dir, jobs[j].id);
        if (!store_shard_complete(path)) return 0;
    }
    return 1;
}

/* Everything a run needs besides the models: the plan, attacks, paths and provenance. */
typedef struct {
    const cfg *c;
    const runner_options *o;
    pmi_params p0;
    nn_device dev;
    plan_job *jobs, *mine;   /* the whole plan; this process's slice */
    int n, nmine;
    attack_setting *attacks; int n_attacks;
    char *config_text;
    store_provenance prov;
    int group;               /* train the jobs of one point and seed together (GPU) */
} run_ctx;

static void run_ctx_free(run_ctx *r) {
    free(r->jobs); free(r->mine); free(r->attacks); free(r->config_text);
}

/* Resolves the device in a short-lived child process when workers may be forked: a process
 * that has initialised CUDA cannot hand it to forked children. */
static nn_status resolve_device(int want, int in_child, int threads, nn_device *dev, char *name, size_t len, char *msg, size_t msglen) {
    struct { nn_status st; nn_device dev; char name[128], msg[512]; } res;
    int fd[2];
    pid_t pid;
    if (!in_child || pipe(fd) || (pid = fork()) < 0) {
        nn_set_threads(threads);
        nn_status st = nn_device_resolve(want, dev, name, len);
        snprintf(msg, msglen, "%s", nn_last_error());
        return st;
    }
    if (pid == 0) {
        close(fd[0]);
        memset(&res, 0, sizeof res);
        nn_set_threads(1);
        res.st = nn_device_resolve(want, &res.dev, res.name, sizeof res.name);
        snprintf(res.msg, sizeof res.msg, "%s", nn_last_error());
        ssize_t w = write(fd[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], &res, sizeof res);
    close(fd[0]);
    waitpid(pid, NULL, 0);
    if (got != (ssize_t)sizeof res) { snprintf(msg, msglen, "device probe failed"); return NN_ETORCH; }
    *dev = res.dev;
    snprintf(name, len, "%s", res.name);
    snprintf(msg, msglen, "%s", res.msg);
    return res.st;
}

static int prepare(run_ctx *r, runner_summary *s, char *err, size_t errlen) {
    char devname[128], msg[512];
    if (cfg_point(r->c, 0, &r->p0, err, errlen)) return -1;
    if (resolve_device((int)r->p0.device, r->o->workers != 1, r->o->threads, &r->dev, devname, sizeof devname, msg, sizeof msg) != NN_OK) {
        snprintf(err, errlen, "experiment.device: %s", msg);
        return -1;
    }
    if (plan_build(r->c, &r->jobs, &r->n, err, errlen) || attack_plan(r->c, &r->attacks, &r->n_attacks, err, errlen)) return -1;
    if (r->n_attacks > 256) { snprintf(err, errlen, "%d attack settings: at most 256 per job", r->n_attacks); return -1; }
    runner_paths(&r->p0, s->shard_dir, sizeof s->shard_dir, s->results_path, sizeof s->results_path);
    if (mkdir_p(s->shard_dir)) { snprintf(err, errlen, "%s: cannot create: %s", s->shard_dir, strerror(errno)); return -1; }
    r->mine = malloc(sizeof *r->mine * (size_t)(r->n ? r->n : 1));
    r->config_text = cfg_effective_text(r->c);
    if (!r->mine || !r->config_text) { snprintf(err, errlen, "out of memory"); return -1; }
    memcpy(r->mine, r->jobs, sizeof *r->mine * (size_t)r->n);
    r->nmine = r->o->nslices > 1 ? plan_slice(r->mine, r->n, r->o->slice, r->o->nslices) : r->n;
    r->prov.config = r->config_text;
    snprintf(r->prov.pmi_version, sizeof r->prov.pmi_version, "%s", pmi_version);
    snprintf(r->prov.git_commit, sizeof r->prov.git_commit, "%s", pmi_git_commit);
    snprintf(r->prov.torch_version, sizeof r->prov.torch_version, "%s", nn_torch_version());
    snprintf(r->prov.device, sizeof r->prov.device, "%s", devname);
    iso_now(r->prov.started, sizeof r->prov.started);
    s->jobs_total = r->nmine;
    r->group = r->dev == NN_CUDA && !r->o->no_group;
    return 0;
}

/* Runs the jobs jobs[0..n) in this process. worker >= 0 tags the progress lines. */
static runner_status run_jobs(run_ctx *r, plan_job *jobs, int n, int worker, runner_summary *s, char *err, size_t errlen) {
    data_cache dc;
    memset(&dc, 0, sizeof dc);
    runner_status rs = RUN_ERROR;
    int tty = isatty(2) && worker < 0;
    double run_t0 = util_now_s();
    for (int j = 0; j < n && !stop_requested;) {
        char shards[64][700];
        snprintf(shards[0], sizeof shards[0], "%s/%s.h5", s->shard_dir, jobs[j].id);
        if (!r->o->force && store_shard_complete(shards[0])) {
            if (same_config(shards[0], r->config_text, err, errlen)) goto out;
            s->jobs_skipped++; s->jobs_done++;
            j++;
            continue;
        }
        pmi_params p;
        if (cfg_point(r->c, jobs[j].point, &p, err, errlen)) goto out;
        if (cache_get(&dc, &p, r->dev, err, errlen)) goto out;
        /* on a GPU, the unfinished jobs of one point and seed train together */
        int g = 1;
        while (r->group && j + g < n && g < 64 && jobs[j + g].point == jobs[j].point && jobs[j + g].seed == jobs[j].seed) {
            snprintf(shards[g], sizeof shards[g], "%s/%s.h5", s->shard_dir, jobs[j + g].id);
            if (!r->o->force && store_shard_complete(shards[g])) break;
            g++;
        }
        job_ctx jc[64];
        for (int i = 0; i < g; i++) {
            const plan_job *job = &jobs[j + i];
            jc[i] = (job_ctx){ .job = job, .p = &p, .index = j + i, .total = n, .tty = tty && g == 1, .run_t0 = run_t0,
                               .arch = job->role == ROLE_INDEP_ARCH ? p.indep_arch : p.arch,
                               .attacks = r->attacks, .n_attacks = r->n_attacks, .dev = r->dev, .worker = worker };
            if ((jc[i].n_kinds = parse_kinds(p.scores, jc[i].kinds)) == 0) { snprintf(err, errlen, "pmi.scores: no known score kind"); goto out; }
        }
        int rc = execute(jc, g, &dc, r->c, shards, &r->prov, err, errlen);
        if (rc < 0) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s", err);
            snprintf(err, errlen, "job %s%s: %s", jobs[j].id, g > 1 ? " (and its group)" : "", tmp);
            goto out;
        }
        if (rc > 0) break;
        s->jobs_done += g; s->jobs_trained += g;
        j += g;
    }
    rs = stop_requested ? RUN_INTERRUPTED : RUN_OK;
out:
    cache_free(&dc);
    return rs;
}

static int count_complete(const plan_job *jobs, int n, const char *shard_dir) {
    int k = 0;
    for (int j = 0; j < n; j++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.h5", shard_dir, jobs[j].id);
        k += store_shard_complete(path);
    }
    return k;
}

/* Forks `workers` processes, each running every workers-th job of this slice with one
 * libtorch thread. The parent touches no libtorch thread pool before forking. */
static runner_status run_workers(run_ctx *r, int workers, runner_summary *s, char *err, size_t errlen) {
    int before = count_complete(r->mine, r->nmine, s->shard_dir);
    pid_t pids[64];
    for (int w = 0; w < workers; w++) {
        pids[w] = fork();
        if (pids[w] < 0) { snprintf(err, errlen, "fork: %s", strerror(errno)); workers = w; break; }
        if (pids[w] == 0) {
            /* a worker dies with its parent: a killed run leaves no orphan writing shards */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1) _exit(RUN_INTERRUPTED);
            plan_job *mine = malloc(sizeof *mine * (size_t)r->nmine);
            memcpy(mine, r->mine, sizeof *mine * (size_t)r->nmine);
            int n = plan_slice(mine, r->nmine, w, workers);
            runner_summary ws = *s;
            nn_set_threads(1);
            runner_status rs = run_jobs(r, mine, n, w, &ws, err, errlen);
            if (rs == RUN_ERROR) fprintf(stderr, "pmi: worker %d: %s\n", w, err);
            fflush(stderr);
            _exit(rs);
        }
    }
    int worst = RUN_OK;
    for (int w = 0; w < workers; w++) {
        int st;
        while (waitpid(pids[w], &st, 0) < 0) {
            if (errno != EINTR) break;
            for (int q = 0; q < workers; q++) kill(pids[q], stop_requested ? (int)stop_requested : SIGTERM);
        }
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : RUN_ERROR;
        if (code == RUN_ERROR || (code == RUN_INTERRUPTED && worst == RUN_OK)) worst = code;
    }
    s->jobs_done = count_complete(r->mine, r->nmine, s->shard_dir);
    s->jobs_skipped = r->o->force ? 0 : before;
    s->jobs_trained = s->jobs_done - s->jobs_skipped;
    if (worst == RUN_ERROR) snprintf(err, errlen, "a worker failed (its message is above)");
    return (runner_status)worst;
}

runner_status runner_run(const cfg *c, const runner_options *o, runner_summary *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    run_ctx r = { .c = c, .o = o };
    runner_status rs = RUN_ERROR;
    if (prepare(&r, s, err, errlen)) goto out;
    /* auto (0): one worker per core on CPU, one process on a GPU */
    int workers = o->workers > 0 ? o->workers : r.dev == NN_CPU ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
    if (workers > r.nmine) workers = r.nmine > 0 ? r.nmine : 1;
    if (workers > 64) workers = 64;
    fprintf(stderr, "pmi: experiment '%s': %d jobs (%d here), %d attack settings, device %s, %d worker%s\n",
            r.p0.name, r.n, r.nmine, r.n_attacks, r.prov.device, workers, workers > 1 ? "s x 1 thread" : "");
    if (workers > 1) {
        rs = run_workers(&r, workers, s, err, errlen);
    } else {
        nn_set_threads(o->threads);
        rs = run_jobs(&r, r.mine, r.nmine, -1, s, err, errlen);
    }
    if (rs == RUN_INTERRUPTED || stop_requested) {
        fprintf(stderr, "\npmi: stopped by signal %d: %d of %d jobs done; run again to continue\n",
                (int)stop_requested, s->jobs_done, s->jobs_total);
        rs = RUN_INTERRUPTED;
        goto out;
    }
    if (rs != RUN_OK) goto out;
    if (o->no_merge || !all_complete(r.jobs, r.n, s->shard_dir)) s->results_path[0] = 0;
    if (s->results_path[0]) {
        iso_now(r.prov.finished, sizeof r.prov.finished);
        if (store_merge(s->shard_dir, s->results_path, &r.prov, err, errlen)) rs = RUN_ERROR;
    }
out:
    run_ctx_free(&r);
    return rs;
}
