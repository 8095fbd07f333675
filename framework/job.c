/* job: a group of jobs of one sweep point and seed, from the split to the shards (see job.h). */
#include "job.h"
#include "reuse.h"
#include "attack.h"
#include "data.h"
#include "eval.h"
#include "util.h"
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the datasets, loaded once per (dataset, path, normalisation) and device -------------- */
struct job_data {
    char *key;
    pmi_dataset train, test;   /* shapes and labels; their pixels (x) became dtrain and dtest (NULL) */
    double mean[3], sd[3];     /* the standard normalisation's statistics (0 and 1 otherwise) */
    nn_data *dtrain, *dtest;
};

job_data *job_data_create(void) { return util_calloc(1, sizeof(job_data)); }

static void data_clear(job_data *d) {
    nn_data_free(d->dtrain); nn_data_free(d->dtest);
    data_free(&d->train); data_free(&d->test);
    free(d->key);
    memset(d, 0, sizeof *d);
}

void job_data_free(job_data *d) {
    if (!d) return;
    data_clear(d);
    free(d);
    reuse_clear();   /* the models trained on it (reuse.h) go with the run's data */
}

/* Normalises d's train and test sets in place; mean and sd are job_load_raw's statistics of the
 * whole train file (independent of the split), used with the standard normalisation. */
static void normalize_pair(job_data *d, cfg_norm mode, const double *mean, const double *sd) {
    for (int c = 0; c < 3; c++) { d->mean[c] = 0; d->sd[c] = 1; }
    if (mode == NORM_NONE) return;
    if (mode == NORM_UNIT) {
        data_normalize(&d->train, DATA_NORM_UNIT, NULL, NULL);
        data_normalize(&d->test, DATA_NORM_UNIT, NULL, NULL);
        return;
    }
    memcpy(d->mean, mean, sizeof d->mean);
    memcpy(d->sd, sd, sizeof d->sd);
    data_normalize(&d->train, DATA_NORM_STANDARD, d->mean, d->sd);
    data_normalize(&d->test, DATA_NORM_STANDARD, d->mean, d->sd);
}

/* The samples the synthetic dataset is generated with for p (its split needs no more). */
static int64_t synth_count(const pmi_params *p) {
    return (int64_t)p->n_train * 2 + (int64_t)p->N * p->m + p->n_attacker + p->holdout + 4 * (int64_t)p->n_test;
}

int job_load_raw(const pmi_params *p, pmi_dataset *train, pmi_dataset *test, double mean[3], double sd[3],
                 char *err, size_t errlen) {
    if (data_load(p->dataset, p->path, synth_count(p), 12345, train, test, err, errlen)) return -1;
    for (int c = 0; c < 3; c++) { mean[c] = 0; sd[c] = 1; }
    if (p->normalize == NORM_STANDARD) data_channel_stats(train, NULL, train->n, mean, sd);
    return 0;
}

/* Makes d hold the datasets of p on dev, loading them unless they are there already. */
static int data_get(job_data *d, const pmi_params *p, nn_device dev, char *err, size_t errlen) {
    size_t klen = strlen(p->dataset) + strlen(p->path) + 64;
    char *key = util_malloc(klen);
    snprintf(key, klen, "%s|%s|%d|%lld", p->dataset, p->path, (int)p->normalize,
             strcmp(p->dataset, "synthetic") ? 0LL : (long long)synth_count(p));
    if (d->key && !strcmp(key, d->key)) { free(key); return 0; }
    data_clear(d);
    double mean[3], sd[3];
    if (job_load_raw(p, &d->train, &d->test, mean, sd, err, errlen)) { free(key); return -1; }
    normalize_pair(d, p->normalize, mean, sd);
    /* the pixels become the device data's (on the CPU without a copy); job.c keeps shapes and labels */
    nn_status st = nn_data_adopt(d->train.x, d->train.y, d->train.n, d->train.c, d->train.h, d->train.w, dev, &d->dtrain);
    d->train.x = NULL;
    if (st == NN_OK) {
        st = nn_data_adopt(d->test.x, d->test.y, d->test.n, d->test.c, d->test.h, d->test.w, dev, &d->dtest);
        d->test.x = NULL;
    }
    if (st != NN_OK) {
        util_err(err, errlen, "uploading %s: %s", p->dataset, nn_last_error());
        data_clear(d); free(key);
        return -1;
    }
    d->key = key;
    return 0;
}

store_settings job_settings(const plan_point *pt) {
    store_settings s;
    memset(&s, 0, sizeof s);
    snprintf(s.decide, sizeof s.decide, "%.*s", (int)sizeof s.decide - 1, pt->params.decide);   /* a pmi_pvalue_name (cfg_validate) */
    memcpy(s.alphas, pt->params.alphas, sizeof s.alphas);
    s.n_alphas = pt->params.n_alphas;
    s.permutations = pt->params.permutations;
    s.n_kinds = pt->n_kinds;
    memcpy(s.kinds, pt->kinds, sizeof s.kinds);
    return s;
}

int job_shard_path(const char *shard_dir, const plan_job *j, char *path, size_t len, char *err, size_t errlen) {
    int n = snprintf(path, len, "%s/%s.h5", shard_dir, j->id);
    if (n < 0 || (size_t)n >= len)
        return util_err(err, errlen, "shard path %s/%s.h5: longer than %zu characters", shard_dir, j->id, len - 1);
    return 0;
}

/* ---- one job's state ----------------------------------------------------------------- */
typedef struct {
    const job_env *env;
    const plan_job *job;
    const pmi_params *p;
    const plan_point *point;
    const char *arch;
    int index;                 /* position among this process's jobs (progress) */
    int progress;              /* draw the per-epoch progress line */
    double t0;
    /* the model and what it trains on */
    nn_model_spec spec;
    nn_model *model;
    nn_data *dtr;
    nn_train_params tp;
    reuse_key key;             /* what determines the trained model (reuse.h) */
    int reused;                /* 1: the model is a copy of one this process trained before */
    int copy_of;               /* >= 0: a job of the same batch trains the same model; copy it */
    /* results */
    store_eval *evals; int n_evals;        /* 1 + the attack settings */
    double *loss_curve;                    /* (epochs) */
    double train_acc, test_acc;
    weights *models;                       /* per evaluation, when [store] save_models */
    weights_input input;                   /* what the models' input is */
    /* evaluation */
    const data_split *split;
    const nn_data *attacker;               /* the attacker's split (attacks train on it) */
    const struct ref_scores *refs;         /* its seed's reference scores (stored in a reference's shard) */
    int shard_written;                     /* its shard is written (shard_after_tests) */
    eval_input in;                         /* what every evaluation of this job scores against */
} job_state;

static void job_state_free(job_state *s) {
    nn_model_free(s->model); nn_data_free(s->dtr);
    /* every slot: a batch of attacks fills them out of order */
    for (int i = 0; s->evals && i < s->env->plan->n_attacks + 1; i++) {
        eval_free(&s->evals[i]);
        if (s->models) weights_free(&s->models[i]);
    }
    free(s->evals); free(s->loss_curve); free(s->models);
    s->model = NULL; s->dtr = NULL; s->evals = NULL; s->loss_curve = NULL; s->models = NULL;
    s->n_evals = 0;
}

static int progress_epoch(void *ctx, int epoch, int epochs, double loss) {
    job_state *js = ctx;
    if (js->env->status) { js->env->status->epoch = epoch + 1; js->env->status->epochs = epochs; }
    if (js->progress) {
        double now = util_now_s(), el = now - js->t0;
        double eta = el / (epoch + 1) * (epochs - epoch - 1);
        /* the whole run: the fraction of jobs done so far, counting this one's epochs */
        double frac = (js->index + (epoch + 1.0) / epochs) / js->env->total;
        double run_eta = (now - js->env->run_t0) / frac * (1 - frac);
        fprintf(stderr, "\r  [%d/%d] %-28s epoch %3d/%-3d loss %.4f  job eta %5.1fs, run eta %6.0fs   ",
                js->index + 1, js->env->total, js->job->id, epoch + 1, epochs, loss, eta, run_eta);
        fflush(stderr);
    }
    return *js->env->stop != 0;
}

/* The training samples of a role, as indices into the loaded training set (malloc'd; *n gets
 * their count): owner = train + `repeat` copies of D_k; indep-data = the disjoint set;
 * reference = train without the dataset evidence's S side (its first plan_data_side() samples:
 * a reference must see neither S nor H), or a random subset of round(fraction * that) of it
 * (at least 1; in the split's order) drawn from the job's SEED_SUBSET stream; else train. */
static int64_t *role_indices(const plan_job *job, const pmi_params *p, const data_split *sp, int64_t *n) {
    const int64_t *from = sp->train;
    int64_t *ix;
    *n = sp->n_train;
    switch (job->role) {
    case ROLE_OWNER:
        *n = sp->n_train + (int64_t)p->repeat * sp->m;
        ix = util_malloc(sizeof *ix * (size_t)*n);
        memcpy(ix, sp->train, sizeof *ix * (size_t)sp->n_train);
        for (int r = 0; r < p->repeat; r++)
            memcpy(ix + sp->n_train + (int64_t)r * sp->m, sp->pool + (int64_t)sp->secret * sp->m, sizeof *ix * (size_t)sp->m);
        return ix;
    case ROLE_INDEP_DATA:
        from = sp->indep; *n = sp->n_indep;
        break;
    case ROLE_REFERENCE: {
        double fraction = p->reference_fraction;
        int64_t side = plan_data_side(p), have = sp->n_train - side;
        from = sp->train + side; *n = have;
        int64_t k = fraction >= 1 ? have : (int64_t)llround(fraction * (double)have);
        if (k < 1) k = 1;
        if (k == have) break;
        ix = util_malloc(sizeof *ix * (size_t)k);
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, (unsigned long)plan_seed(job, SEED_SUBSET, 0));
        gsl_ran_choose(rng, ix, (size_t)k, (void *)from, (size_t)have, sizeof *ix);
        gsl_rng_free(rng);
        *n = k;
        return ix;
    }
    default:
        break;
    }
    ix = util_malloc(sizeof *ix * (size_t)(*n > 0 ? *n : 1));
    memcpy(ix, from, sizeof *ix * (size_t)*n);
    return ix;
}

static nn_train_params train_params(job_state *js) {
    const pmi_params *p = js->p;
    nn_train_params tp = nn_train_default_params();
    tp.optimizer = p->optimizer;
    tp.lr = p->lr; tp.momentum = p->momentum; tp.weight_decay = p->weight_decay;
    tp.epochs = p->epochs; tp.batch_size = p->batch_size;
    tp.schedule = p->schedule; tp.step_size = p->step_size; tp.gamma = p->gamma;
    tp.precision = p->precision;
    tp.channels_last = p->channels_last;
    tp.seed = plan_seed(js->job, SEED_BATCH, 0);
    tp.on_epoch = progress_epoch; tp.ctx = js;
    return tp;
}

/* The job's model spec, training parameters and reuse key (what determines the trained model):
 * sets js->spec, js->tp and js->key; returns the training samples' indices (malloc'd, *n of them). */
static int64_t *job_key(job_state *js, const job_data *d, const data_split *split, int64_t *n) {
    const pmi_params *p = js->p;
    js->spec = (nn_model_spec){ .arch = js->arch, .c = d->train.c, .h = d->train.h, .w = d->train.w,
                                .classes = d->train.classes, .width = p->width, .device = js->env->dev,
                                .seed = plan_seed(js->job, SEED_INIT, 0) };
    int64_t *ix = role_indices(js->job, p, split, n);
    js->tp = train_params(js);
    char data_id[sizeof p->dataset + sizeof p->path + 512];
    snprintf(data_id, sizeof data_id, "%s|%s|%s|%lld|%d|%d|%d|%.17g|%.17g|%.17g|%.17g|%.17g|%.17g", p->dataset, p->path,
             cfg_norm_name(p->normalize), (long long)d->train.n, d->train.c, d->train.h, d->train.w,
             d->mean[0], d->mean[1], d->mean[2], d->sd[0], d->sd[1], d->sd[2]);
    reuse_key_make(&js->key, &js->spec, &js->tp, p->tf32, p->deterministic, data_id, ix, *n);
    return ix;
}

/* The job's model, training set and training parameters, ready to train. */
static int job_setup(job_state *js, const job_data *d, const data_split *split, char *err, size_t errlen) {
    const pmi_params *p = js->p;
    int64_t n;
    int64_t *ix = job_key(js, d, split, &n);
    js->evals = util_calloc((size_t)js->env->plan->n_attacks + 1, sizeof *js->evals);
    if (p->save_models) js->models = util_calloc((size_t)js->env->plan->n_attacks + 1, sizeof *js->models);
    js->input = (weights_input){ .c = d->train.c, .h = d->train.h, .w = d->train.w, .classes = d->train.classes };
    snprintf(js->input.dataset, sizeof js->input.dataset, "%.*s", (int)sizeof js->input.dataset - 1, p->dataset);
    snprintf(js->input.normalize, sizeof js->input.normalize, "%s", cfg_norm_name(p->normalize));
    memcpy(js->input.mean, d->mean, sizeof d->mean);
    memcpy(js->input.sd, d->sd, sizeof d->sd);
    js->loss_curve = util_calloc((size_t)p->epochs, sizeof *js->loss_curve);
    nn_status st = nn_data_subset(d->dtrain, ix, n, &js->dtr);
    free(ix);
    js->copy_of = -1;
    if (st != NN_OK) return util_err(err, errlen, "selecting training data: %s", nn_last_error());
    js->reused = reuse_get(&js->key, &js->model, js->loss_curve, p->epochs);
    if (!js->reused && nn_model_create(&js->spec, &js->model) != NN_OK)
        return util_err(err, errlen, "model '%s': %s", js->arch, nn_last_error());
    return 0;
}

/* Trains the models of n jobs as one nn_train_tasks call (concurrent CUDA streams on a GPU;
 * one after another on the CPU): those that are not copies of a model trained before (reuse.h)
 * or of another job's in this batch (the same key), which are copied after. 0, 1 when stopped,
 * -1 with err. */
static int train_all(job_state *js, int n, char *err, size_t errlen) {
    nn_train_task *t = util_calloc((size_t)n, sizeof *t);
    int k = 0, reused = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i && !js[i].reused && js[i].copy_of < 0; j++)
            if (!js[j].reused && js[j].copy_of < 0 && !strcmp(js[i].key.hex, js[j].key.hex)) js[i].copy_of = j;
        if (js[i].reused || js[i].copy_of >= 0) { reused++; continue; }
        t[k++] = (nn_train_task){ .model = js[i].model, .data = js[i].dtr, .params = js[i].tp, .loss_curve = js[i].loss_curve };
    }
    if (k > 1) fprintf(stderr, "  training %d models at once (%s ... %s)\n", k, js[0].job->id, js[n - 1].job->id);
    double t0 = util_now_s();
    nn_status st = k ? nn_train_tasks(t, k) : NN_OK;
    free(t);
    if (*js[0].env->stop) return 1;
    if (st != NN_OK) return util_err(err, errlen, "training: %s", nn_last_error());
    for (int i = 0; i < n; i++) {
        if (js[i].copy_of >= 0) {
            const job_state *src = &js[js[i].copy_of];
            nn_model_free(js[i].model);
            js[i].model = NULL;
            if (nn_model_copy(src->model, &js[i].model) != NN_OK)
                return util_err(err, errlen, "copying the model of %s: %s", src->job->id, nn_last_error());
            memcpy(js[i].loss_curve, src->loss_curve, sizeof *src->loss_curve * (size_t)js[i].tp.epochs);
        } else if (!js[i].reused) {
            reuse_put(&js[i].key, js[i].model, js[i].loss_curve, js[i].tp.epochs);
        }
    }
    if (n > 1 || reused) {
        fprintf(stderr, "  trained %d models in %.1fs (%d of them in fused ensembles)", k, util_now_s() - t0, k ? nn_fused_models() : 0);
        if (reused) fprintf(stderr, "; %d copied from the same model trained before (same samples, seeds and recipe)", reused);
        if (js[0].env->status) js[0].env->status->copied += reused;
        fputc('\n', stderr);
    }
    return 0;
}

/* With [store] save_models, copies the state of the model that ev evaluated into js->models. */
static int keep_model(job_state *js, const nn_model *m, store_eval *ev, char *err, size_t errlen) {
    if (!js->models) return 0;
    weights *w = &js->models[ev - js->evals];
    if (weights_collect(m, &js->input, w, err, errlen)) return -1;
    ev->model = w;
    return 0;
}

/* How many (model, attack setting) pairs are attacked at once: on a GPU their training runs
 * concurrently (attack_apply_many), 256 by default; on the CPU one at a time by default, which
 * needs the least memory and gives the same numbers as any batch (tests/test_e2e.c compares).
 * PMI_ATTACK_BATCH sets it on either. */
static int attack_batch(const job_env *env) {
    const char *v = getenv("PMI_ATTACK_BATCH");
    int b = v && *v ? atoi(v) : env->dev == NN_CUDA ? 256 : 1;
    return b < 1 ? 1 : b;
}

/* --trace: stops the profiler started before a batch of k pairs' attacks, after their forward
 * passes (t seconds), and writes its trace; a trace that cannot be written is said, not an error
 * of the jobs (whose results do not depend on it). */
static void trace_written(const job_env *env, int k, double t) {
    int64_t events = 0;
    *env->traced = 1;
    if (nn_profile_stop(env->trace, &events) != NN_OK) {
        fprintf(stderr, "  --trace: %s\n", nn_last_error());
        return;
    }
    fprintf(stderr, "  --trace: %d (model, setting) pairs attacked and their forward passes (%.1fs) under the profiler: "
            "%lld events in %s\n", k, t, (long long)events, env->trace);
}

/* ---- a job's shard as soon as its tests are done ----------------------------------------- */
static int write_shard(const job_state *js, const data_split *split, const struct ref_scores *rs, char *err, size_t errlen);

/* Writes js's shard on the thread that tested it, one thread at a time in libhdf5 (the serial
 * library; nothing else calls it while a batch runs), so that the shards are written beside the
 * other jobs' tests and the next jobs' attacks rather than all after them (at paper scale 2.1 s
 * of ablation-power's 480 shards and 4.5 s of robustness's 50 on an H100 machine). A shard
 * holds one job's results whole: written before a stop or another job's failure, it stays. */
static pthread_mutex_t shard_mu = PTHREAD_MUTEX_INITIALIZER;
static int shard_after_tests(job_state *js, char *err, size_t errlen) {
    pthread_mutex_lock(&shard_mu);
    int rc = write_shard(js, js->split, js->refs, err, errlen);
    pthread_mutex_unlock(&shard_mu);
    js->shard_written = !rc;
    return rc;
}

/* ---- the permutation tests of finished jobs, beside the attacks of the others ------------- */
/* Pairs are attacked model by model, or block by block of models (run_attacks), so a job, or a
 * block's jobs, have all their evaluations once its last setting is evaluated; from then on their
 * permutation tests (eval_permutations, seeded by the job, so the p-values do not depend on when
 * or where they run) can run while the GPU trains the next jobs' attacks. Worker threads take
 * the jobs in order as they are done, each job's tests with an OpenMP team of the worker's share
 * of the threads (a job's 330 tests at paper scale keep a team busy). One worker on the CPU; on
 * a GPU, whose sums leave each job's serial draw of its subsets as most of its time, one per
 * four threads, and once the attacks end one more per job left, up to one per thread, so that
 * the jobs done last, together, are tested side by side. PMI_PERM_WORKERS sets the
 * count beside the attacks, PMI_PERM_MORE the most after them. */
typedef struct perm_worker {
    pthread_t threads[64];
    int n_threads;         /* started */
    int more;              /* at the close, a worker (team 1) per job no worker took, up to this many in all */
    int n_more;            /* started so */
    int team;              /* OpenMP threads of each worker's tests */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_state *js;
    int done;              /* jobs 0..done-1 have all their evaluations */
    int next;              /* the next job a worker takes */
    int closed;            /* no more jobs will be done: the workers test those done and end */
    int cancel;            /* an error or a stop: each worker ends after the job in test */
    char *tested;          /* per job: tested by a worker (read after the join) */
    int *rcs;              /* per job: eval_permutations' result */
    char (*errs)[256];
} perm_worker;

static int perm_workers(const job_env *env) {
    const char *v = getenv("PMI_PERM_WORKERS");
    int n = v && *v ? atoi(v) : env->dev == NN_CUDA ? omp_get_max_threads() / 4 : 1;
    return n < 1 ? 1 : n > 64 ? 64 : n;
}

/* The most workers once the attacks end: on a GPU one per thread, on the CPU no more than beside
 * them; PMI_PERM_MORE sets it (at most 64). */
static int perm_more(const job_env *env) {
    const char *v = getenv("PMI_PERM_MORE");
    int n = v && *v ? atoi(v) : env->dev == NN_CUDA ? omp_get_max_threads() : 0;
    return n < 0 ? 0 : n > 64 ? 64 : n;
}

static void *perm_worker_main(void *arg) {
    perm_worker *w = arg;
    omp_set_num_threads(w->team);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->next >= w->done && !w->closed && !w->cancel) pthread_cond_wait(&w->cv, &w->mu);
        int i = w->next < w->done && !w->cancel ? w->next++ : -1;
        pthread_mutex_unlock(&w->mu);
        if (i < 0) break;
        w->rcs[i] = eval_permutations(w->js[i].evals, w->js[i].n_evals, &w->js[i].in, w->errs[i], sizeof w->errs[i]);
        if (!w->rcs[i]) w->rcs[i] = shard_after_tests(&w->js[i], w->errs[i], sizeof w->errs[i]);
        w->tested[i] = 1;
    }
    return NULL;
}

/* Starts up to n workers; 0 when none could start. */
static int perm_worker_start(perm_worker *w, int n) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->team = omp_get_max_threads() / n;
    if (w->team < 1) w->team = 1;
    while (w->n_threads < n && !pthread_create(&w->threads[w->n_threads], NULL, perm_worker_main, w)) w->n_threads++;
    if (w->n_threads) return 1;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return 0;
}

/* Jobs 0..done-1 may be tested. */
static void perm_worker_done(perm_worker *w, int done) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->done = done;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Ends the workers: they test every job done first, or with cancel only those in test;
 * w->tested says which they tested. */
static void perm_worker_close(perm_worker *w, int cancel) {
    pthread_mutex_lock(&w->mu);
    w->closed = 1;
    w->cancel = cancel;
    int left = w->done - w->next;
    /* the attacks are over, the threads that fed the GPU free: the jobs done last, together, are
     * tested side by side, one thread each (each job's draws are serial) */
    if (!cancel && w->more > w->n_threads) {
        w->team = 1;
        int want = w->n_threads > left ? w->n_threads : left;   /* the idle workers take jobs too */
        if (want > w->more) want = w->more;
        while (w->n_threads < want && !pthread_create(&w->threads[w->n_threads], NULL, perm_worker_main, w)) {
            w->n_threads++;
            w->n_more++;
        }
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int t = 0; t < w->n_threads; t++) pthread_join(w->threads[t], NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* How many models' attacks interleave. Within a block of models the pairs go setting by
 * setting, the block's models side by side, so that a batch holds each setting for many models,
 * which a GPU trains as fused ensembles (nn_train_tasks fuses at least PMI_FUSE_MIN and at most
 * PMI_FUSE_MAX, 32, of one recipe); model by model a batch of 256 pairs holds about 5 models of
 * each of the paper scale's 55 settings, each trained alone on a stream of its own. A job's
 * permutation tests wait for its block's last setting. PMI_ATTACK_BLOCK sets the most models a
 * block holds (blocks of a batch of jobs are all about the size: 50 models at most 25 make two
 * of 25); 1 is model by model. The default is 25 on a GPU (a fused ensemble of each setting of a
 * block, at most PMI_FUSE_MAX) and 1 on the CPU, which fuses nothing. On one H100 the
 * paper-scale robustness experiment at 5 seeds (25 models) took 92 s model by model and 71 s in
 * one block of 25, its attacks 56.7 s against 31.9 s (docs/performance.md, 2026-12-06). */
static int attack_block(int n, const job_env *env) {
    const char *v = getenv("PMI_ATTACK_BLOCK");
    int most = v && *v ? atoi(v) : env->dev == NN_CUDA ? 25 : 1;
    if (most > n) most = n;
    if (most < 1) return 1;
    int blocks = (n + most - 1) / most;
    return (n + blocks - 1) / blocks;
}

/* ---- the host's half of a batch's evaluations beside the next batch's attacks ------------ */
/* After a batch's forward passes (eval_forward) its scores and statistics (eval_finish: host
 * arithmetic, no torch call) may run on a thread of their own while the main thread attacks the
 * next batch, one such thread at a time (joined before the next starts), so that the GPU does not
 * wait for them; the thread then marks the batch's jobs done for the permutation workers. The
 * stored numbers are the same bit for bit (each model's statistics do not depend on where they
 * run; tests/test_e2e.c compares). On by default on a GPU: on one H100 the paper-scale
 * robustness experiment at 5 seeds took 55 s with it against 59 and 58 s without (two pairs of
 * runs, two calls; docs/performance.md, 2026-12-06); off on the CPU, whose few cores train the
 * next batch. PMI_EVAL_THREAD=1 or =0 overrides. */
typedef struct stats_batch {
    pthread_t thread;
    int running;
    job_state *js;
    const int *pm, *ps;     /* pair q0 + b: model pm[q0 + b], setting ps[q0 + b] */
    int q0, k, na, done;
    eval_pending *pend;     /* k of them, owned (eval_finish frees each) */
    perm_worker *w;
    double t_attack, share;
    int64_t mem, reserved;  /* GPU bytes in use and held by the caching allocator after the batch's attacks, or -1 */
    eval_times et;
    int beside;             /* on a thread of its own */
    int fused;              /* models whose forward passes ran fused (nn_eval_many) */
    int rc;
    char err[256];
} stats_batch;

static int eval_thread(const job_env *env) {
    const char *v = getenv("PMI_EVAL_THREAD");
    return v && *v ? atoi(v) != 0 : env->dev == NN_CUDA;
}

/* ", n models fused" for a log line, or "" (a thread's own buffer). */
static const char *fused_note(int n) {
    static _Thread_local char buf[48];
    if (n <= 0) return "";
    snprintf(buf, sizeof buf, ", %d models fused", n);
    return buf;
}

static void stats_batch_run(stats_batch *sb) {
    for (int b = 0; b < sb->k; b++) {
        job_state *j = &sb->js[sb->pm[sb->q0 + b]];
        int setting = sb->ps[sb->q0 + b];
        store_eval *ev = &j->evals[1 + setting];
        if (!sb->rc) {
            sb->rc = eval_finish(&j->in, ev, &sb->pend[b], &sb->et, sb->err, sizeof sb->err);
            ev->wall_s += sb->share;
        } else {
            eval_pending_free(&sb->pend[b]);
        }
        if (!sb->rc && setting == sb->na - 1) j->n_evals = 1 + sb->na;   /* a job's last pair */
    }
    if (!sb->rc) perm_worker_done(sb->w, sb->done);
    if (sb->k > 1 && !sb->rc) {
        fprintf(stderr, "  attacked %d (model, setting) pairs in %.1fs, evaluated them in %.1fs (forward passes %.2fs%s, scores "
                "and statistics %.2fs%s)", sb->k, sb->t_attack, sb->et.forward_s + sb->et.stats_s, sb->et.forward_s,
                fused_note(sb->fused), sb->et.stats_s, sb->beside ? " beside the next batch's attacks" : "");
        if (sb->mem >= 0) fprintf(stderr, "; %.2f GiB of GPU memory in use", (double)sb->mem / (1 << 30));
        if (sb->reserved >= 0) fprintf(stderr, ", %.2f GiB held", (double)sb->reserved / (1 << 30));
        fputc('\n', stderr);
    }
    free(sb->pend);
    sb->pend = NULL;
}

static void *stats_batch_main(void *arg) {
    stats_batch_run(arg);
    return NULL;
}

/* Waits for the batch on its thread, if any: 0, or -1 with its error in err. */
static int stats_batch_join(stats_batch *sb, char *err, size_t errlen) {
    if (!sb->running) return 0;
    pthread_join(sb->thread, NULL);
    sb->running = 0;
    return sb->rc ? util_err(err, errlen, "%s", sb->err) : 0;
}

/* Every attack setting on every model of js[0..n), pair by pair in blocks of attack_block()
 * models (pair q: model pm[q], setting ps[q]), in batches of whole settings of a block (a
 * block's g pairs of one setting; one pair when g is 1) of at most attack_batch() pairs, or one
 * such setting; each attacked model is evaluated into its job's evals[1 + setting], and once a
 * block's jobs have all of theirs the worker w (or NULL) may test them. Returns 0, -1 with err,
 * 1 when stopped. */
static int run_attacks(job_state *js, int n, perm_worker *w, char *err, size_t errlen) {
    const job_env *env = js[0].env;
    const plan *pl = env->plan;
    int na = pl->n_attacks, total = n * na, batch = attack_batch(env), block = attack_block(n, env);
    if (!na) return 0;
    int *pm = util_malloc(sizeof *pm * (size_t)total), *ps = util_malloc(sizeof *ps * (size_t)total);
    int *unit = util_malloc(sizeof *unit * (size_t)total), *done = util_malloc(sizeof *done * (size_t)total);
    for (int b0 = 0, q = 0; b0 < n; b0 += block) {
        int g = n - b0 < block ? n - b0 : block;
        for (int r = 0; r < g * na; r++, q++) {
            pm[q] = b0 + r % g; ps[q] = r / g;
            unit[q] = g;                                  /* the pairs of one setting of the block */
            done[q] = r == g * na - 1 ? b0 + g : b0;      /* the jobs with all their pairs once q is */
        }
    }
    if (block > 1 && batch > 1) fprintf(stderr, "  attacks in blocks of %d models, setting by setting\n", block);
    int most = batch > block ? batch : block;
    const attack_setting **as = util_calloc((size_t)most, sizeof *as);
    const nn_model **victims = util_calloc((size_t)most, sizeof *victims);
    attack_ctx *ctx = util_calloc((size_t)most, sizeof *ctx);
    nn_model **out = util_calloc((size_t)most, sizeof *out);
    const eval_input **ins = util_calloc((size_t)most, sizeof *ins);
    store_eval **evs = util_calloc((size_t)most, sizeof *evs);
    job_status *st = env->status;
    int rc = 0, beside = eval_thread(env);
    stats_batch sb = {0};
    for (int q0 = 0, k; q0 < total && !rc; q0 += k) {
        if (*env->stop) { rc = 1; break; }
        for (k = unit[q0]; q0 + k < total && k + unit[q0 + k] <= batch;) k += unit[q0 + k];
        for (int b = 0; b < k; b++) {
            job_state *j = &js[pm[q0 + b]];
            as[b] = &pl->attacks[ps[q0 + b]];
            victims[b] = j->model;
            ctx[b] = (attack_ctx){ .attacker = j->attacker, .p = j->p, .spec = j->spec, .seed = plan_seed(j->job, SEED_ATTACK, 0) };
        }
        if (st) {
            snprintf(st->job, sizeof st->job, "%s", js[pm[q0]].job->id);
            st->attack = q0; st->attacks = total;
        }
        int tracing = 0;
        if (env->trace && !*env->traced && !(tracing = nn_profile_start(env->dev == NN_CUDA) == NN_OK)) {
            fprintf(stderr, "  --trace: the profiler did not start (%s); no trace\n", nn_last_error());
            *env->traced = 1;
        }
        double t0 = util_now_s();
        if (attack_apply_many(as, victims, ctx, k, out, err, errlen)) {
            if (tracing) nn_profile_stop(NULL, NULL);
            rc = -1;
            break;
        }
        double t_attack = util_now_s() - t0;   /* a batch trains together: each pair's share of it */
        int64_t mem = k > 1 && env->dev == NN_CUDA ? nn_cuda_allocated_bytes() : -1;
        int64_t reserved = mem >= 0 ? nn_cuda_reserved_bytes() : -1;
        eval_pending *pend = util_calloc((size_t)k, sizeof *pend);
        for (int b = 0; b < k; b++) {
            job_state *j = &js[pm[q0 + b]];
            const attack_setting *a = as[b];
            store_eval *ev = evs[b] = &j->evals[1 + ps[q0 + b]];
            snprintf(ev->attack, sizeof ev->attack, "%s", a->name);
            snprintf(ev->type, sizeof ev->type, "%s", a->type);
            snprintf(ev->params, sizeof ev->params, "%s", a->label);
            snprintf(ev->strength_key, sizeof ev->strength_key, "%s", a->strength_key);
            ev->strength = a->strength;
            ins[b] = &j->in;
        }
        int fused = 0;
        rc = eval_forward_many(out, ins, evs, pend, k, &fused, err, errlen);   /* fused on a GPU */
        for (int b = 0; b < k; b++) {
            if (!rc) rc = keep_model(&js[pm[q0 + b]], out[b], evs[b], err, errlen);
            nn_model_free(out[b]);
        }
        if (tracing) trace_written(env, k, util_now_s() - t0);
        if (!rc) rc = stats_batch_join(&sb, err, errlen);   /* the previous batch's */
        if (rc) {
            for (int b = 0; b < k; b++) eval_pending_free(&pend[b]);
            free(pend);
            break;
        }
        sb = (stats_batch){ .js = js, .pm = pm, .ps = ps, .q0 = q0, .k = k, .na = na, .done = done[q0 + k - 1],
                            .pend = pend, .w = w, .t_attack = t_attack, .share = t_attack / k, .mem = mem, .reserved = reserved, .beside = beside, .fused = fused };
        if (beside && !pthread_create(&sb.thread, NULL, stats_batch_main, &sb)) {
            sb.running = 1;
        } else {
            sb.beside = 0;
            stats_batch_run(&sb);
            if (sb.rc) rc = util_err(err, errlen, "%s", sb.err);
        }
    }
    char late[256];   /* the batch on its thread failed too: the first error is the one reported */
    if (stats_batch_join(&sb, rc ? late : err, rc ? sizeof late : errlen) && !rc) rc = -1;
    free(as); free(victims); free(ctx); free(out); free(ins); free(evs);
    free(pm); free(ps); free(unit); free(done);
    return rc;
}

/* The reference models' base scores on the pool, for the calibrated kinds: per base kind
 * (loss, logit), (n, N*m) with row r the reference of replica r; the same on the dataset
 * evidence's samples, (n, 2 n_side); and the pool audit (pmi.h) of every raw kind evaluated. */
typedef struct ref_scores {
    double *scores[SCORE_COUNT];
    double *dscores[SCORE_COUNT];
    double audit[SCORE_COUNT];     /* per pmi_score_kind: the audit p-value; NAN: not audited */
    int n;
    float *logp;                   /* the references' log-probabilities on the pool until the audit (ref_scores_audit) */
} ref_scores;

static void ref_scores_free(ref_scores *rs) {
    for (int b = 0; b < SCORE_COUNT; b++) { free(rs->scores[b]); free(rs->dscores[b]); }
    free(rs->logp);
    memset(rs, 0, sizeof *rs);
    for (int b = 0; b < SCORE_COUNT; b++) rs->audit[b] = NAN;
}

/* The pool audit of every raw kind of the point but lnoise (not audited: it would need the
 * references' noisy queries): D_k's permutation p-value on the references'
 * mean score (the SEED_VERIFY stream's index 2: one per seed). logp_all holds the references'
 * log-probabilities on the pool, (n, N*m, classes). 0, or -1 with err. */
static int pool_audit(ref_scores *rs, const job_state *js, const float *logp_all, const int32_t *pool_labels,
                      int secret, char *err, size_t errlen) {
    const pmi_params *p = js[0].p;
    int64_t nm = (int64_t)p->N * p->m;
    int classes = js[0].spec.classes;
    double *mean = util_malloc(sizeof *mean * (size_t)nm), *s = util_malloc(sizeof *s * (size_t)nm);
    int rc = 0;
    for (int q = 0; q < js[0].point->n_kinds && !rc; q++) {
        int kind = js[0].point->kinds[q];
        if (pmi_score_calibrated((pmi_score_kind)kind) || pmi_score_queried((pmi_score_kind)kind)) continue;
        for (int64_t i = 0; i < nm; i++) mean[i] = 0;
        for (int r = 0; r < rs->n; r++) {
            pmi_scores((pmi_score_kind)kind, logp_all + (size_t)r * (size_t)nm * (size_t)classes, pool_labels, nm, classes, s);
            for (int64_t i = 0; i < nm; i++) mean[i] += s[i] / rs->n;
        }
        rs->audit[kind] = pmi_perm_p(mean, p->N, p->m, secret, p->permutations, plan_seed(js[0].job, SEED_VERIFY, 2));
        if (isnan(rs->audit[kind]) && p->permutations > 0)
            rc = util_err(err, errlen, "pool audit (%s score): %s", pmi_score_name((pmi_score_kind)kind), pmi_error());
    }
    free(mean); free(s);
    return rc;
}

/* Fills rs from the trained reference models among js[0..g): exactly p->references of them,
 * replicas 0..references-1 (the runner keeps a seed's jobs together), all but the pool audit,
 * which ref_scores_audit makes (host work alone: the units' audits side by side). dset (2
 * n_side samples, labels dlabels) is the dataset evidence's, or NULL. 0, or -1 with err. */
static int ref_scores_fill(ref_scores *rs, const job_state *js, int g, const nn_data *pool, const int32_t *pool_labels,
                           const nn_data *dset, const int32_t *dlabels, int secret, char *err, size_t errlen) {
    const pmi_params *p = js[0].p;
    int64_t nm = (int64_t)p->N * p->m, classes = js[0].spec.classes, nd = dset ? 2 * plan_data_side(p) : 0;
    memset(rs, 0, sizeof *rs);
    for (int b = 0; b < SCORE_COUNT; b++) rs->audit[b] = NAN;
    if (p->references < 1) return 0;
    static const pmi_score_kind bases[] = {SCORE_LOSS, SCORE_LOGIT};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        rs->scores[bases[b]] = util_malloc(sizeof(double) * (size_t)(nm * p->references));
        if (nd) rs->dscores[bases[b]] = util_malloc(sizeof(double) * (size_t)(nd * p->references));
    }
    float *logp = util_malloc(sizeof(float) * (size_t)(nm * classes * p->references));
    float *dlogp = nd ? util_malloc(sizeof(float) * (size_t)(nd * classes * p->references)) : NULL;
    /* the references' forward passes together (nn_eval_many: fused on a GPU), replica r's rows at r */
    nn_model **ms = util_malloc(sizeof *ms * (size_t)g);
    const nn_data **pools = util_malloc(sizeof *pools * (size_t)g), **dsets = util_malloc(sizeof *dsets * (size_t)g);
    float **lp = util_malloc(sizeof *lp * (size_t)g), **dlp = util_malloc(sizeof *dlp * (size_t)g);
    int *who = util_malloc(sizeof *who * (size_t)g), k = 0, rc = 0;
    for (int i = 0; i < g; i++) {
        if (js[i].job->role != ROLE_REFERENCE) continue;
        int r = js[i].job->replica;
        if (r < 0 || r >= p->references) continue;   /* counted below: the check names the group */
        ms[k] = js[i].model; pools[k] = pool; dsets[k] = dset; who[k] = i;
        lp[k] = logp + (size_t)r * (size_t)(nm * classes);
        dlp[k++] = nd ? dlogp + (size_t)r * (size_t)(nd * classes) : NULL;
    }
    if (k && (nn_eval_many(ms, pools, k, lp, NULL) != NN_OK || (nd && nn_eval_many(ms, dsets, k, dlp, NULL) != NN_OK)))
        rc = util_err(err, errlen, "reference models (%s and the group's others): %s", js[who[0]].job->id, nn_last_error());
    for (int q = 0; q < k && !rc; q++) {
        int r = js[who[q]].job->replica;
        for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
            pmi_scores(bases[b], lp[q], pool_labels, nm, (int)classes, rs->scores[bases[b]] + r * nm);
            if (nd) pmi_scores(bases[b], dlp[q], dlabels, nd, (int)classes, rs->dscores[bases[b]] + r * nd);
        }
        rs->n++;
    }
    free(ms); free(pools); free(dsets); free(lp); free(dlp); free(who);
    if (!rc && rs->n != p->references)
        rc = util_err(err, errlen, "job group of %s: %d of pmi.references = %d reference models (a seed's jobs must run together)",
                      js[0].job->id, rs->n, p->references);
    rs->logp = logp;
    free(dlogp);
    return rc;
}

/* The pool audit of rs, filled by ref_scores_fill for the group js (no torch call: units may be
 * audited on threads side by side). 0, or -1 with err. */
static int ref_scores_audit(ref_scores *rs, const job_state *js, const int32_t *pool_labels, int secret, char *err,
                            size_t errlen) {
    int rc = rs->logp ? pool_audit(rs, js, rs->logp, pool_labels, secret, err, errlen) : 0;
    free(rs->logp);
    rs->logp = NULL;
    return rc;
}

/* Where a job's permutation tests sum: on the GPU it trains on (unless PMI_PERM_GPU=0), else
 * on the CPU (NULL). */
static const pmi_sum_device *perm_sums(nn_device dev) {
    const char *v = getenv("PMI_PERM_GPU");
    return dev == NN_CUDA && !(v && !strcmp(v, "0")) ? eval_sum_device(NN_CUDA) : NULL;
}

/* After training: the job's evaluation input (its pool, test split, attacker split, references)
 * and its un-attacked evaluation's names (evals[0]), which evaluate_all fills. */
static void job_eval_setup(job_state *js, const data_split *split, nn_data *pool, nn_data *test, nn_data *attacker,
                           const int32_t *pool_labels, const nn_data *dset, const int32_t *dlabels, const ref_scores *rs) {
    if (js->progress) fprintf(stderr, "\r\033[K");
    js->split = split;
    js->attacker = attacker;
    js->refs = rs;
    js->in = (eval_input){ .pool = pool, .pool_labels = pool_labels, .test = test, .classes = js->spec.classes,
                           .N = js->p->N, .m = js->p->m, .secret = split->secret, .permutations = js->p->permutations,
                           .kinds = js->point->kinds, .n_kinds = js->point->n_kinds, .who = js->job->id,
                           .perm_seed = plan_seed(js->job, SEED_VERIFY, 0), .sums = perm_sums(js->env->dev),
                           .n_refs = rs->n, .ref_skip = js->job->role == ROLE_REFERENCE ? js->job->replica : -1,
                           .dset = dset, .dset_labels = dlabels, .n_side = dset ? plan_data_side(js->p) : 0,
                           .data_permutations = js->p->data_permutations, .data_seed = plan_seed(js->job, SEED_VERIFY, 1),
                           .lnoise_queries = js->p->lnoise_queries, .lnoise_sigma = js->p->lnoise_sigma,
                           .lnoise_seed = plan_seed(js->job, SEED_VERIFY, 3) };
    memcpy(js->in.ref_scores, rs->scores, sizeof js->in.ref_scores);
    memcpy(js->in.dref_scores, rs->dscores, sizeof js->in.dref_scores);
    store_eval *ev = &js->evals[js->n_evals++];
    snprintf(ev->attack, sizeof ev->attack, "none");
    snprintf(ev->type, sizeof ev->type, "none");
    ev->strength = NAN;
}

/* The un-attacked evaluation (evals[0]) and training accuracy of js[0..n), set up by
 * job_eval_setup: their forward passes together (eval_forward_many: fused on a GPU), then each
 * one's scores and statistics. 0, or -1 with err. */
static int evaluate_all(job_state *js, int n, char *err, size_t errlen) {
    double t0 = util_now_s();
    nn_model **ms = util_malloc(sizeof *ms * (size_t)n);
    const nn_data **dtr = util_malloc(sizeof *dtr * (size_t)n);
    const eval_input **ins = util_malloc(sizeof *ins * (size_t)n);
    store_eval **evs = util_malloc(sizeof *evs * (size_t)n);
    double *acc = util_malloc(sizeof *acc * (size_t)n);
    eval_pending *pend = util_calloc((size_t)n, sizeof *pend);
    for (int i = 0; i < n; i++) { ms[i] = js[i].model; dtr[i] = js[i].dtr; ins[i] = &js[i].in; evs[i] = &js[i].evals[js[i].n_evals - 1]; }
    int rc = nn_eval_many(ms, dtr, n, NULL, acc) != NN_OK ? util_err(err, errlen, "accuracy: %s", nn_last_error()) : 0;
    int fused = 0;
    if (!rc) rc = eval_forward_many(ms, ins, evs, pend, n, &fused, err, errlen);
    eval_times et = {0};
    for (int i = 0; i < n; i++) {
        if (rc) { eval_pending_free(&pend[i]); continue; }
        js[i].train_acc = acc[i];
        rc = eval_finish(ins[i], evs[i], &pend[i], &et, err, errlen);
        if (!rc) rc = keep_model(&js[i], js[i].model, evs[i], err, errlen);
        js[i].test_acc = evs[i]->test_acc;
    }
    if (!rc && n > 1)
        fprintf(stderr, "  evaluated %d models in %.1fs (forward passes %.2fs%s, scores and statistics %.2fs)\n", n,
                util_now_s() - t0, et.forward_s, fused_note(fused), et.stats_s);
    free(ms); free(dtr); free(ins); free(evs); free(acc); free(pend);
    return rc;
}

/* Fault injection for the tests of the runner's recovery (tests/test_resume.c): with
 * PMI_FAULT=<job id> the process is killed (SIGKILL, as by the kernel's OOM killer or a
 * watchdog) when that job starts; with PMI_FAULT=group:<job id> only when the job starts in a
 * group of several (the GPU case of a group that fails where its jobs alone would not). */
static void fault_point(const plan_job *jobs, int g) {
    const char *f = getenv("PMI_FAULT");
    if (!f || !*f) return;
    int group_only = !strncmp(f, "group:", 6);
    for (int i = 0; i < g; i++)
        if (!strcmp(jobs[i].id, f + (group_only ? 6 : 0)) && (!group_only || g > 1)) raise(SIGKILL);
}

static void report_line(const job_state *js, double wall) {
    const pmi_result *r = &js->evals[0].res[0];
    char tag[16] = "";
    if (js->env->worker >= 0)
        snprintf(tag, sizeof tag, "%s%d ", js->env->worker_kind ? js->env->worker_kind : "w", js->env->worker);
    /* on a terminal, the parent's status line is cleared first (it redraws it) */
    fprintf(stderr, "%s  [%s%d/%d] %-24s train %.3f test %.3f  k=%d identified=%d p_perm=%.2g p_rank=%.2g  %d attacks  %.1fs\n",
            js->env->status && isatty(2) ? "\r\033[K" : "", tag, js->index + 1, js->env->total, js->job->id, js->train_acc, js->test_acc, r->k, r->identified,
            r->p[P_PERM], r->p[P_RANK], js->n_evals - 1, wall);
}

static int write_shard(const job_state *js, const data_split *split, const ref_scores *rs, char *err, size_t errlen) {
    const pmi_params *p = js->p;
    double wall = util_now_s() - js->t0;
    char path[4096];
    if (job_shard_path(js->env->shard_dir, js->job, path, sizeof path, err, errlen)) return -1;
    store_job sj;
    memset(&sj, 0, sizeof sj);
    /* plan_build has checked that every name fits its field */
    snprintf(sj.id, sizeof sj.id, "%s", js->job->id);
    snprintf(sj.experiment, sizeof sj.experiment, "%.*s", STORE_NAME - 1, p->name);
    snprintf(sj.dataset, sizeof sj.dataset, "%.*s", STORE_NAME - 1, p->dataset);
    snprintf(sj.arch, sizeof sj.arch, "%.*s", STORE_NAME - 1, js->arch);
    snprintf(sj.role, sizeof sj.role, "%s", plan_roles[js->job->role].name);
    if (strlen(js->point->label) >= sizeof sj.point)
        return util_err(err, errlen, "sweep label '%s' is longer than %zu characters", js->point->label, sizeof sj.point - 1);
    snprintf(sj.point, sizeof sj.point, "%s", js->point->label);
    sj.point_index = js->job->point; sj.seed = js->job->seed; sj.replica = js->job->replica;
    sj.N = p->N; sj.m = p->m; sj.secret_k = split->secret;
    sj.trained_on_k = plan_roles[js->job->role].trained_on_k;
    sj.independent = plan_roles[js->job->role].independent;
    sj.owner_data = plan_roles[js->job->role].owner_data;
    sj.train_acc = js->train_acc; sj.test_acc = js->test_acc; sj.wall_s = wall;
    sj.train_samples = (int)nn_data_size(js->dtr);
    sj.split = split;
    sj.loss_curve = js->loss_curve; sj.epochs = p->epochs;
    sj.evals = js->evals; sj.n_evals = js->n_evals;
    sj.data_side = (int)js->in.n_side; sj.holdout = sj.data_side ? p->holdout : 0;
    sj.pool_audit = rs->audit;
    for (int b = 0; js->job->role == ROLE_REFERENCE && b < SCORE_COUNT; b++) {   /* for owner keys (key.h) */
        if (rs->scores[b]) sj.ref_scores[b] = rs->scores[b] + (size_t)js->job->replica * (size_t)p->N * (size_t)p->m;
        if (rs->dscores[b]) sj.ref_data_scores[b] = rs->dscores[b] + (size_t)js->job->replica * 2 * (size_t)sj.data_side;
    }
    store_provenance prov = *js->env->prov;
    prov.settings = job_settings(js->point);
    util_iso_now(prov.finished, sizeof prov.finished);
    if (store_write_shard(path, &sj, &prov, err, errlen)) return -1;
    report_line(js, wall);
    return 0;
}

/* The jobs of one sweep point and seed in a batch: their split and the data cut from it. */
typedef struct {
    const plan_job *jobs; int g;
    data_split split;
    nn_data *pool, *test, *attacker;
    int32_t *pool_labels;
    nn_data *dset;             /* the dataset evidence's samples, S side then H (2 plan_data_side()), or NULL */
    int32_t *dset_labels;
    ref_scores refs;
    job_state *js;             /* its g jobs' states, inside the batch's array */
} job_unit;

static void unit_free(job_unit *u) {
    free(u->pool_labels); free(u->dset_labels);
    nn_data_free(u->dset);
    ref_scores_free(&u->refs);
    nn_data_free(u->pool); nn_data_free(u->test); nn_data_free(u->attacker);
    data_split_free(&u->split);
}

/* The dataset evidence's samples of unit u (data_split_evidence) and their labels; nothing
 * without pmi.holdout. 0, or -1 with err. */
static int unit_dataset_evidence(job_unit *u, const job_data *d, const pmi_params *p, char *err, size_t errlen) {
    int64_t side = plan_data_side(p);
    if (!side) return 0;
    int64_t *ix = data_split_evidence(&u->split, side);
    if (!ix) return util_err(err, errlen, "dataset evidence: %lld samples per side do not fit the split", (long long)side);
    u->dset_labels = util_malloc(sizeof *u->dset_labels * (size_t)(2 * side));
    for (int64_t i = 0; i < 2 * side; i++) u->dset_labels[i] = d->train.y[ix[i]];
    nn_status st = nn_data_subset(d->dtrain, ix, 2 * side, &u->dset);
    free(ix);
    return st == NN_OK ? 0 : util_err(err, errlen, "selecting the dataset evidence's samples: %s", nn_last_error());
}

/* The split of the unit whose first job is job (its point's parameters p). 0, or -1 with err. */
static int unit_split(const plan_job *job, const job_data *d, const pmi_params *p, data_split *split, char *err, size_t errlen) {
    return data_split_make(d->train.n, d->test.n, p->n_train, p->N, p->m, p->n_attacker, p->independent > 0,
                           p->holdout, p->n_test, p->secret, plan_seed(job, SEED_SPLIT, 0), split, err, errlen);
}

int job_model_keys(const plan *pl, const plan_job *jobs, int n, char (*keys)[65], char *err, size_t errlen) {
    job_env env = { .plan = pl, .dev = NN_CPU };
    job_data d;   /* the sample counts alone: what the split and the keys read of the data */
    memset(&d, 0, sizeof d);
    for (int c = 0; c < 3; c++) d.sd[c] = 1;
    for (int a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && jobs[b].point == jobs[a].point && jobs[b].seed == jobs[a].seed; b++) {}
        const plan_point *pt = &pl->points[jobs[a].point];
        if (data_counts(pt->params.dataset, pt->params.path, synth_count(&pt->params), &d.train.n, &d.test.n, err, errlen))
            return -1;
        data_split split;
        if (unit_split(&jobs[a], &d, &pt->params, &split, err, errlen)) return -1;
        for (int i = a; i < b; i++) {
            job_state js = { .env = &env, .job = &jobs[i], .p = &pt->params, .point = pt, .arch = plan_arch(pl, &jobs[i]) };
            int64_t m;
            free(job_key(&js, &d, &split, &m));
            memcpy(keys[i], js.key.hex, sizeof keys[i]);
        }
        data_split_free(&split);
    }
    return 0;
}

/* The split of unit u and the data cut from it. 0, or -1 with err. */
static int unit_setup(job_unit *u, const job_data *d, const pmi_params *p, char *err, size_t errlen) {
    if (unit_split(&u->jobs[0], d, p, &u->split, err, errlen)) return -1;
    if (unit_dataset_evidence(u, d, p, err, errlen)) return -1;
    int64_t nm = (int64_t)p->N * p->m;
    u->pool_labels = util_malloc(sizeof *u->pool_labels * (size_t)nm);
    for (int64_t i = 0; i < nm; i++) u->pool_labels[i] = d->train.y[u->split.pool[i]];
    if (nn_data_subset(d->dtrain, u->split.pool, nm, &u->pool) != NN_OK ||
        nn_data_subset(d->dtest, u->split.test, u->split.n_test, &u->test) != NN_OK ||
        (u->split.n_attacker > 0 && nn_data_subset(d->dtrain, u->split.attacker, u->split.n_attacker, &u->attacker) != NN_OK))
        return util_err(err, errlen, "selecting data: %s", nn_last_error());
    return 0;
}

/* 1 if jobs a and b can share a batch: the same dataset as loaded, and the same numerics. */
static int batchable(const plan *pl, const plan_job *a, const plan_job *b) {
    const pmi_params *p = &pl->points[a->point].params, *q = &pl->points[b->point].params;
    return !strcmp(p->dataset, q->dataset) && !strcmp(p->path, q->path) && p->normalize == q->normalize &&
           p->tf32 == q->tf32 && p->deterministic == q->deterministic &&
           (strcmp(p->dataset, "synthetic") || (p->n_train == q->n_train && p->N * p->m == q->N * q->m &&
                                                p->n_attacker == q->n_attacker && p->n_test == q->n_test));
}

/* One batch of jobs that share the loaded data: every unit's split, all models trained together,
 * the references' scores, the un-attacked evaluations, all attacks, then each job's shard. */
static int run_batch(const job_env *env, job_data *d, const plan_job *jobs, int n, int index, char *err, size_t errlen) {
    double t_start = util_now_s();
    const pmi_params *p0 = &env->plan->points[jobs[0].point].params;
    nn_set_numerics(p0->tf32, p0->deterministic);
    if (data_get(d, p0, env->dev, err, errlen)) return -1;
    int nu = 0, rc = -1;
    for (int i = 0; i < n; i++)
        nu += i == 0 || jobs[i].point != jobs[i - 1].point || jobs[i].seed != jobs[i - 1].seed;
    job_unit *units = util_calloc((size_t)nu, sizeof *units);
    job_state *js = util_calloc((size_t)n, sizeof *js);
    if (env->status) {
        job_status *st = env->status;
        if (n > 1) snprintf(st->job, sizeof st->job, "%.100s +%d", jobs[0].id, n - 1);
        else snprintf(st->job, sizeof st->job, "%s", jobs[0].id);
        st->epoch = 0; st->epochs = p0->epochs; st->attack = st->attacks = 0;
    }
    for (int i = 0, u = -1; i < n; i++) {
        const plan_point *point = &env->plan->points[jobs[i].point];
        if (i == 0 || jobs[i].point != jobs[i - 1].point || jobs[i].seed != jobs[i - 1].seed) {
            units[++u] = (job_unit){ .jobs = &jobs[i], .js = &js[i] };
            if (unit_setup(&units[u], d, &point->params, err, errlen)) goto out;
        }
        units[u].g++;
        js[i] = (job_state){ .env = env, .job = &jobs[i], .p = &point->params, .point = point, .arch = plan_arch(env->plan, &jobs[i]),
                             .index = index + i, .progress = env->tty && n == 1, .t0 = util_now_s() };
        if (job_setup(&js[i], d, &units[u].split, err, errlen)) goto out;
    }
    double t_setup = util_now_s();
    if ((rc = train_all(js, n, err, errlen))) goto out;
    double t_refs = util_now_s();
    for (int u = 0; u < nu && !rc; u++) {
        job_unit *un = &units[u];
        rc = ref_scores_fill(&un->refs, un->js, un->g, un->pool, un->pool_labels, un->dset, un->dset_labels, un->split.secret,
                             err, errlen);
        for (int i = 0; i < un->g && !rc; i++)
            job_eval_setup(&un->js[i], &un->split, un->pool, un->test, un->attacker, un->pool_labels, un->dset, un->dset_labels,
                           &un->refs);
    }
    /* the units' pool audits side by side, one thread each (a permutation test of 99999
     * resamples per raw kind at paper scale: ablation-power's 80 units' references' scores
     * took 7.4 s with the audits one after another, 0.7 s side by side, on H100 machines;
     * docs/performance.md, 2026-12-06) */
    if (!rc) {
        char (*aerr)[256] = util_calloc((size_t)nu, sizeof *aerr);
        int *arc = util_calloc((size_t)nu, sizeof *arc);
        #pragma omp parallel for schedule(dynamic) if (nu > 1)
        for (int u = 0; u < nu; u++)
            arc[u] = ref_scores_audit(&units[u].refs, units[u].js, units[u].pool_labels, units[u].split.secret, aerr[u],
                                      sizeof aerr[u]);
        for (int u = 0; u < nu && !rc; u++)
            if (arc[u]) rc = util_err(err, errlen, "%s", aerr[u]);
        free(aerr); free(arc);
    }
    t_refs = util_now_s() - t_refs;
    if (!rc) rc = evaluate_all(js, n, err, errlen);
    /* each job's permutation tests, all its evaluations and kinds from one stream of its own:
     * with attacks, on the worker as the jobs are done (perm_worker); otherwise side by side
     * (one thread each; a job alone uses every thread for its tests); each job's shard by the
     * thread that tested it (shard_after_tests), the rest after */
    char (*errs)[256] = util_calloc((size_t)n, sizeof *errs);
    int *rcs = util_calloc((size_t)n, sizeof *rcs);
    char *tested = util_calloc((size_t)n, 1);
    perm_worker w = { .js = js, .rcs = rcs, .errs = errs, .tested = tested, .more = perm_more(env) };
    const char *pw = getenv("PMI_PERM_WORKER");   /* 0: after all attacks, side by side (tests compare) */
    int worker = !rc && env->plan->n_attacks > 0 && n > 1 && !(pw && !strcmp(pw, "0"));
    int n_workers = perm_workers(env);
    if (worker) worker = perm_worker_start(&w, n_workers < n ? n_workers : n);
    double t_end = 0;
    if (!rc) rc = run_attacks(js, n, worker ? &w : NULL, err, errlen);
    if (worker) {
        t_end = util_now_s();
        perm_worker_close(&w, rc || *env->stop);
    }
    if (!rc && *env->stop) rc = 1;
    double t_perm = util_now_s();
    if (!rc) {
        int left = 0, *todo = util_malloc(sizeof *todo * (size_t)n);
        double *secs = util_calloc((size_t)n, sizeof *secs), busy = 0;
        for (int i = 0; i < n; i++)
            if (!tested[i]) todo[left++] = i;
        #pragma omp parallel for schedule(dynamic) if (left > 1)
        for (int t = 0; t < left; t++) {
            int i = todo[t];
            double t0 = util_now_s();
            rcs[i] = eval_permutations(js[i].evals, js[i].n_evals, &js[i].in, errs[i], sizeof errs[i]);
            secs[i] = util_now_s() - t0;
            if (!rcs[i]) rcs[i] = shard_after_tests(&js[i], errs[i], sizeof errs[i]);
        }
        for (int i = 0; i < n; i++) busy += secs[i];
        free(todo); free(secs);
        for (int i = 0; i < n && !rc; i++)
            if (rcs[i]) rc = util_err(err, errlen, "%s", errs[i]);
        if (worker) {
            int first = w.n_threads - w.n_more;
            fprintf(stderr, "  permutation tests of %d jobs beside the attacks (%d worker thread%s", n - left, first, first > 1 ? "s" : "");
            if (w.n_more) fprintf(stderr, ", %d more after them", w.n_more);
            fprintf(stderr, "), done %.1fs after them\n", util_now_s() - t_end);
        } else if (n > 1 && left) {   /* and the sum of the jobs' times: how well the threads shared them */
            fprintf(stderr, "  permutation tests of %d jobs in %.1fs (%.1fs of tests on %d threads)\n", left, util_now_s() - t_perm,
                    busy, left > 1 ? omp_get_max_threads() : 1);
        }
    }
    free(errs); free(rcs); free(tested);
    double t_shard = util_now_s();
    for (int i = 0; i < n && !rc; i++) {   /* those the tests' threads did not write */
        if (!js[i].shard_written) rc = write_shard(&js[i], js[i].split, js[i].refs, err, errlen);
        job_state_free(&js[i]);
    }
    /* where a batch's time goes besides the lines above: the splits, data and keys before the
     * training, the references' scores after it, the shards last */
    if (!rc && n > 1)
        fprintf(stderr, "  set up %d jobs in %.1fs, references' scores %.1fs, shards left to write %.1fs\n", n,
                t_setup - t_start, t_refs, util_now_s() - t_shard);
out:
    for (int i = 0; i < n; i++) job_state_free(&js[i]);
    for (int u = 0; u < nu; u++) unit_free(&units[u]);
    free(js); free(units);
    return rc;
}

/* Of the jobs whose keys are keys[a..b), those whose model a batch starting at job `from` would
 * train: neither kept from an earlier batch (reuse.h) nor the same as an earlier job's of it. */
static int to_train(const reuse_key *keys, int from, int a, int b, int epochs) {
    int n = 0;
    for (int i = a; i < b; i++) {
        int seen = reuse_has(&keys[i], epochs);
        for (int j = from; j < i && !seen; j++) seen = !strcmp(keys[i].hex, keys[j].hex);
        n += !seen;
    }
    return n;
}

/* The batchable jobs[0..g) (whole units) as batches of whole units, each training at most
 * env->batch_models models: a job's model counts unless it is kept from an earlier batch
 * (reuse.h) or is the same model (key) as an earlier job's of its batch, the models that
 * train_all copies instead of training. A unit with more forms a batch alone. So the sweep
 * points whose clean, independent and reference models were trained before join their owners
 * into a few large batches instead of one small batch per point. A batch that is full takes in
 * the rest of the jobs all the same where they train at most an eighth of the cap more, rather
 * than leave them to a small batch of their own (ablation-power at paper scale: 130 models in
 * one batch, not 128 and then 2 that trained unfused in 3.0 s on an H100). 0, 1 when stopped,
 * -1 with err. */
static int run_batches(const job_env *env, job_data *d, const plan_job *jobs, int g, int index, char *err, size_t errlen) {
    int cap = env->batch_models;
    if (cap <= 0 || g < 2) return run_batch(env, d, jobs, g, index, err, errlen);
    if (data_get(d, &env->plan->points[jobs[0].point].params, env->dev, err, errlen)) return -1;
    reuse_key *keys = util_calloc((size_t)g, sizeof *keys);
    int *unit_end = util_calloc((size_t)g, sizeof *unit_end);   /* per unit's first job: the job after its last */
    int rc = 0;
    for (int a = 0, b; a < g && !rc; a = b) {
        for (b = a + 1; b < g && jobs[b].point == jobs[a].point && jobs[b].seed == jobs[a].seed; b++) {}
        unit_end[a] = b;
        const plan_point *point = &env->plan->points[jobs[a].point];
        data_split split;
        if (unit_split(&jobs[a], d, &point->params, &split, err, errlen)) { rc = -1; break; }
        for (int i = a; i < b; i++) {
            job_state js = { .env = env, .job = &jobs[i], .p = &point->params, .point = point, .arch = plan_arch(env->plan, &jobs[i]) };
            int64_t n;
            free(job_key(&js, d, &split, &n));
            keys[i] = js.key;
        }
        data_split_free(&split);
    }
    int start = 0, fresh = 0, batches = 0, last = 0;   /* last: this batch takes in the rest */
    for (int a = 0; a < g && !rc; a = unit_end[a]) {
        int epochs = env->plan->points[jobs[a].point].params.epochs;
        int add = to_train(keys, start, a, unit_end[a], epochs);
        if (a > start && fresh + add > cap && !last) {   /* the batch so far is full */
            int rest = fresh;
            for (int u = a; u < g && rest <= cap + cap / 8; u = unit_end[u])
                rest += to_train(keys, start, u, unit_end[u], env->plan->points[jobs[u].point].params.epochs);
            if (rest > cap + cap / 8) {   /* run it, start one here */
                rc = run_batch(env, d, jobs + start, a - start, index + start, err, errlen);
                batches++;
                start = a; fresh = 0;
                add = to_train(keys, start, a, unit_end[a], epochs);   /* the batch just run may have trained some */
            } else {
                last = 1;
            }
        }
        fresh += add;
    }
    if (!rc) rc = run_batch(env, d, jobs + start, g - start, index + start, err, errlen);
    if (!rc && batches) fprintf(stderr, "  %d jobs in %d batches of at most %d models to train\n", g, batches + 1, cap);
    free(keys); free(unit_end);
    return rc;
}

int job_run_group(const job_env *env, job_data *d, const plan_job *jobs, int g, int index,
                  char *err, size_t errlen) {
    fault_point(jobs, g);
    /* runs of jobs that share the loaded data form batches, one after another */
    int rc = 0;
    for (int a = 0, b; a < g && rc == 0; a = b) {
        for (b = a + 1; b < g && batchable(env->plan, &jobs[a], &jobs[b]); b++) {}
        rc = run_batches(env, d, jobs + a, b - a, index + a, err, errlen);
    }
    return rc;
}
