/* job: runs jobs of a plan. A batch is one or more groups (the jobs of one sweep point and
 * seed: one job, or on a GPU all the unfinished jobs of that point and seed, and with batching
 * several consecutive groups). Each group draws its data split once; all the batch's models
 * train together (nn_train_tasks: concurrent CUDA streams on a GPU); then each job's model is
 * evaluated, every attack setting is applied to every model (on a GPU many (model, setting)
 * pairs at once, attack_apply_many) and evaluated, and each job's shard is written. The
 * datasets are loaded once per (dataset, path, normalisation) into a job_data cache on the
 * run's device; consecutive jobs whose data differ run as separate batches. A job whose model
 * this process already trained (the same samples, seeds and recipe: the clean and reference
 * models of points that differ only in pool.repeat) copies it (reuse.h); job_data_free ends that.
 *
 *   job_data *d = job_data_create();
 *   job_env env = { .plan = p, .dev = dev, ... };
 *   int rc = job_run_group(&env, d, &p->jobs[j], g, j, err, sizeof err);  // 0 ok, 1 stopped, -1 error
 *   job_data_free(d); */
#ifndef PMI_JOB_H
#define PMI_JOB_H
#include <signal.h>
#include <stddef.h>
#include "nn.h"
#include "plan.h"
#include "store.h"
#include "data.h"

typedef struct job_data job_data;   /* opaque: the loaded datasets on the device */

job_data *job_data_create(void);
void job_data_free(job_data *d);    /* NULL is a no-op */

/* A worker's live status, in memory its parent reads to draw the run's status line on a
 * terminal (runner.c). Plain ints and chars: written by one process, read by another. */
typedef struct {
    char job[128];          /* the job (or "<first job> +n" for a group) being trained or attacked */
    int epoch, epochs;      /* training: epochs done, of epochs */
    int attack, attacks;    /* (model, attack setting) pairs of the batch applied so far, of attacks (0 of 0: training) */
    int done;               /* jobs this worker has finished */
    int copied;             /* of the models it trained, those copied from the same model trained before (reuse.h) */
} job_status;

/* What every job of a run shares. */
typedef struct {
    const plan *plan;
    nn_device dev;
    const store_provenance *prov;   /* copied into every shard, with its own finish time */
    const char *shard_dir;          /* shards are <shard_dir>/<job id>.h5 */
    const volatile sig_atomic_t *stop; /* nonzero: abandon the group at the next epoch boundary */
    int worker;                     /* worker process index for the log lines, -1: single process */
    const char *worker_kind;        /* the log lines' tag: "w" (CPU worker) or "gpu" (--gpus worker, index = GPU) */
    int tty;                        /* draw the progress line on stderr */
    job_status *status;             /* a worker's live status (NULL: none); its parent draws it */
    int total;                      /* jobs of this process, for progress */
    double run_t0;                  /* start of this process's run (util_now_s), for the ETA */
    const char *trace;              /* the first attack batch of this process under the profiler, written here; NULL: none */
    int *traced;                    /* set once that trace is written (or failed) */
    int batch_models;               /* > 0: job_run_group splits its jobs into batches of whole groups that each train
                                     * at most this many models (copies of models trained before do not count); 0: one batch */
} job_env;

/* Runs jobs[0..g): whole groups (a point and seed's jobs adjacent). `index` is the position of
 * jobs[0] among this process's jobs (progress). Writes one shard per job. Returns 0, 1 when
 * stopped (no shard of an unfinished job is written), or -1 with err. */
int job_run_group(const job_env *env, job_data *d, const plan_job *jobs, int g, int index,
                  char *err, size_t errlen);
/* What determines the model each of jobs[0..n) trains, as far as the plan and the data files'
 * sample counts tell (no pixel is loaded): jobs with equal keys train the same model, which one
 * process trains once and copies after (reuse.h), so a run keeps them in one worker (runner.c).
 * keys[i]: a SHA-256 in hex (reuse_key_make's, of the split's indices and everything training
 * reads but the loaded pixels and their statistics). 0, or -1 with err (unreadable data files). */
int job_model_keys(const plan *pl, const plan_job *jobs, int n, char (*keys)[65], char *err, size_t errlen);
/* The decision settings a shard of a job of sweep point pt records (store_settings). */
store_settings job_settings(const plan_point *pt);
/* Loads the dataset of p raw (pixels 0..255, as data_load gives them) and the per-channel
 * statistics its normalisation uses (standard: of the whole train file; else mean 0, sd 1): the
 * same data and statistics a run's jobs use, for exporting an owner key. 0, or -1 with err. */
int job_load_raw(const pmi_params *p, pmi_dataset *train, pmi_dataset *test, double mean[3], double sd[3],
                 char *err, size_t errlen);
/* The shard path of job j: "<shard_dir>/<id>.h5". -1 with err if it does not fit in len. */
int job_shard_path(const char *shard_dir, const plan_job *j, char *path, size_t len, char *err, size_t errlen);

#endif
