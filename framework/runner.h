/* runner: what runs where. runner_run executes a plan: it skips the jobs whose shard is
 * already complete (resume), hands the others to job_run_group (job.h) in this process or in
 * forked worker processes, groups the jobs of one point and seed on a GPU, and when every job
 * of the plan has a shard merges them into <output>/<name>/results.h5.
 *
 * Workers: on CPU, small models train faster as independent jobs in separate processes with one
 * libtorch thread each than as one job using every core (measured in docs/performance.md), so
 * runner_run can fork workers that take every workers-th job of the plan. With --gpus, one
 * worker per GPU takes every ngpus-th group (the jobs of one point and seed, trained together);
 * it sees only its GPU (CUDA_VISIBLE_DEVICES), as cuda:0. Slices (--shard i/n, e.g. the tasks
 * of a Slurm job array) are groups too, so which jobs train together never depends on them.
 *
 * Lock: runs of one configuration (e.g. the slices of a job array) may share the experiment
 * folder; while any of them runs, a run of another configuration (another config hash) is
 * refused with RUN_BUSY, so shards of two configurations never interleave.
 *
 * SIGINT/SIGTERM: the current job is abandoned at the next epoch boundary (its shard is
 * never written, so nothing partial exists) and runner_run returns RUN_INTERRUPTED. */
#ifndef PMI_RUNNER_H
#define PMI_RUNNER_H
#include <stddef.h>
#include "plan.h"

#define RUNNER_MAX_GPUS 16
#define RUNNER_BATCH 64    /* default of --batch for an architecture the registry does not know */
#define RUNNER_SPAN 4      /* a batch holds at most this many times --batch jobs (copied models included) */

typedef struct {
    int slice, nslices;     /* run the groups g (jobs of one point and seed) with g % nslices == slice; 0/1 = all */
    int force;              /* retrain jobs whose shard exists */
    int no_merge;           /* do not merge at the end */
    int threads;            /* libtorch intra-op threads of a single-process run; 0 = cores */
    int no_group;           /* GPU: train each job alone instead of the jobs of a seed together */
    int batch;              /* GPU, or the CPU when given: consecutive groups join one batch (trained together)
                             * while it trains at most this many models (copies of models trained before in the
                             * run do not count; at most RUNNER_SPAN times as many jobs); 0: the default
                             * (runner_default_batch on a GPU, no batches on the CPU), 1: each group alone */
    int workers;            /* worker processes, each with 1 libtorch thread; 1: one process; 0: auto (cores on CPU, 1 on GPU) */
    int ngpus;              /* --gpus: one worker process per GPU; 0: off, -1: every visible GPU, else gpus[0..ngpus) */
    int gpus[RUNNER_MAX_GPUS]; /* indices among the visible CUDA devices (CUDA_VISIBLE_DEVICES applies) */
    const char *trace;      /* --trace: the first attack batch (its attacks and forward passes) under torch's profiler,
                             * written to this Chrome trace (nn_profile_start); one process of jobs only */
} runner_options;

/* The --batch a GPU run of pl uses when none is given: the smallest nn_arch_batch of the
 * architectures its jobs train (so a plan with one large architecture batches as that one does). */
int runner_default_batch(const plan *pl);

/* RUN_BUSY: another pmi run of a different configuration is using the experiment folder.
 * RUN_CHANGED: finished shards of this plan were written by another configuration (without
 * --force); found before any job starts, the message names the changed keys. */
typedef enum { RUN_OK = 0, RUN_ERROR = 1, RUN_BUSY = 2, RUN_INTERRUPTED = 3, RUN_CHANGED = 4 } runner_status;

typedef struct {
    int jobs_total, jobs_done, jobs_skipped, jobs_trained;
    int jobs_copied;          /* of the jobs run, those whose model was copied from the same model trained before */
    char results_path[4096];  /* merged file, "" if not merged */
    char shard_dir[4096];
} runner_summary;

runner_status runner_run(const plan *p, const runner_options *o, runner_summary *s, char *err, size_t errlen);
/* Merges the shards of plan p into <output>/<name>/results.h5 under the folder's lock (see
 * store_merge_plan): every job's shard complete and of this configuration, or with partial
 * those that are. RUN_BUSY while a run of another configuration uses the folder. */
runner_status runner_merge(const plan *p, int partial, runner_summary *s, char *err, size_t errlen);
/* Installs the SIGINT/SIGTERM handlers that request a clean stop. */
void runner_install_signals(void);
/* Shard directory and merged file of an experiment: <output>/<name>/shards, <output>/<name>/results.h5.
 * -1 with err when a path does not fit its buffer. */
int runner_paths(const pmi_params *p, char *shard_dir, size_t a, char *merged, size_t b, char *err, size_t errlen);

#endif
