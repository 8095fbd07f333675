/* runner: what runs where: resume, worker processes, GPU groups, signals, merge (see runner.h). */
#include "runner.h"
#include "job.h"
#include "key.h"
#include "nn.h"
#include "outfile.h"
#include "probe.h"
#include "report.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

/* The grace a run has to stop at an epoch boundary after SIGINT/SIGTERM before it exits
 * anyway: a process stuck in a CUDA call (a failed or hung kernel) never reaches one. No shard
 * is left partial either way (shards are written atomically). */
#define STOP_GRACE_S 10
#define STR_(x) #x
#define STR(x) STR_(x)

static void on_signal(int sig) {
    if (!stop_requested) alarm(STOP_GRACE_S);
    stop_requested = sig;
}

static void on_alarm(int sig) {
    static const char msg[] = "\npmi: did not stop within " STR(STOP_GRACE_S) " s of the signal: exiting (completed shards are kept; run again to continue)\n";
    outfile_remove_temps();
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(RUN_INTERRUPTED);
}

/* A merge has no boundary to stop at: a signal removes its temporary file and ends it. */
static void on_merge_signal(int sig) {
    static const char msg[] = "\npmi: merge stopped by a signal; its temporary files are removed (run pmi merge again)\n";
    outfile_remove_temps();
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(RUN_INTERRUPTED);
}

void runner_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

static int mkdir_p(const char *path) {
    char *tmp = util_strdup(path);
    int rc = 0;
    for (char *q = tmp + 1; *q && !rc; q++)
        if (*q == '/') { *q = 0; rc = mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0; *q = '/'; }
    if (!rc) rc = mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
    free(tmp);
    return rc;
}

int runner_paths(const pmi_params *p, char *shard_dir, size_t a, char *merged, size_t b, char *err, size_t errlen) {
    int n1 = snprintf(shard_dir, a, "%s/%s/shards", p->output, p->name);
    int n2 = snprintf(merged, b, "%s/%s/results.h5", p->output, p->name);
    if (n1 < 0 || (size_t)n1 >= a || n2 < 0 || (size_t)n2 >= b)
        return util_err(err, errlen, "experiment.output + experiment.name: %s/%s/ is too long (at most %zu characters)",
                        p->output, p->name, (a < b ? a : b) - 20);
    return 0;
}

/* 0 if the shard was written by the same configuration, seed count aside (plan_config_hash:
 * adding seeds keeps earlier jobs valid), else -1 with err. */
static int same_config(const char *shard, const char *config_hash, char *err, size_t errlen) {
    /* a shard of an earlier run is read in a child process first (probe.h): one that makes
     * libhdf5 crash or spin is refused by name, where reading it here took down a run of one
     * process (--jobs 1) */
    if (probe_results_file(shard, 0, err, errlen) != PROBE_OK) {
        size_t u = strlen(err);
        if (u + 1 < errlen) snprintf(err + u, errlen - u, "; remove it and run again to retrain its job");
        return -1;
    }
    char *old = store_read_attr(shard, "config"), hash[17] = "";
    if (old) plan_config_hash(old, hash);
    free(old);
    if (!strcmp(hash, config_hash)) return 0;
    return util_err(err, errlen, "%s was written by a different configuration; run with --force to retrain, "
                    "or choose another experiment.name", shard);
}

static int count_complete(const plan_job *jobs, int n, const char *shard_dir) {
    int k = 0;
    char path[8192];
    for (int j = 0; j < n; j++)
        if (!job_shard_path(shard_dir, &jobs[j], path, sizeof path, NULL, 0)) k += store_shard_complete(path);
    return k;
}

/* ---- the experiment folder's lock -------------------------------------------------------
 * <exp>/.lock records the config hash of the runs using the folder; every such run holds a
 * shared flock on <exp>/.lock-<hash> until it ends. A run takes <exp>/.lock exclusively for
 * a moment: if the recorded hash is another config's and a run of it still holds its lock,
 * it refuses; otherwise it records its own hash and takes its shared lock. Runs of one config
 * (the slices of a job array) share the folder; a run of another config never interleaves. */
static int lock_path(char *buf, size_t len, const char *exp_dir, const char *hash, char *err, size_t errlen) {
    int n = snprintf(buf, len, "%s/.lock%s%s", exp_dir, hash ? "-" : "", hash ? hash : "");
    return n < 0 || (size_t)n >= len ? util_err(err, errlen, "%s: path too long", exp_dir) : 0;
}

/* 1 if a run of config `hash` holds the folder now, 0 if not, -1 with err. */
static int lock_busy(const char *exp_dir, const char *hash, char *err, size_t errlen) {
    char path[8192];
    if (lock_path(path, sizeof path, exp_dir, hash, err, errlen)) return -1;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) return 0;   /* released by its last run */
    if (fd < 0) return util_err(err, errlen, "%s: %s", path, strerror(errno));
    int busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
    return busy;
}

/* Takes the folder for config `hash`: returns the fd of the held lock (close it to release),
 * -1 with err on failure, -2 with err when a run of another config is using the folder. */
static int lock_take(const char *exp_dir, const char *hash, char *err, size_t errlen) {
    char path[8192], old[17] = "";
    if (lock_path(path, sizeof path, exp_dir, NULL, err, errlen)) return -1;
    int g = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (g < 0) return util_err(err, errlen, "%s: %s", path, errno == ELOOP ? "a symbolic link: refused (remove it)" : strerror(errno));
    int fd = -1;
    if (flock(g, LOCK_EX)) { util_err(err, errlen, "%s: flock: %s", path, strerror(errno)); goto out; }
    ssize_t got = pread(g, old, 16, 0);
    old[got == 16 ? 16 : 0] = 0;
    if (old[0] && strcmp(old, hash)) {
        int busy = lock_busy(exp_dir, old, err, errlen);
        if (busy < 0) goto out;
        if (busy) {
            util_err(err, errlen, "%s is in use by another pmi run of a different configuration (hash %s; this one is %s): "
                     "wait for it to end, or choose another experiment.name", exp_dir, old, hash);
            fd = -2;
            goto out;
        }
    }
    if (pwrite(g, hash, 16, 0) != 16 || ftruncate(g, 16)) { util_err(err, errlen, "%s: %s", path, strerror(errno)); goto out; }
    if (lock_path(path, sizeof path, exp_dir, hash, err, errlen)) goto out;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0 || flock(fd, LOCK_SH)) {
        util_err(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
out:
    close(g);   /* releases the exclusive lock */
    return fd;
}

/* Releases the lock fd of lock_take() and removes <exp>/.lock-<hash> when no other run of the
 * config holds it (checked under <exp>/.lock, which lock_take holds while it takes one), so no
 * lock file outlives the runs that used it. */
static void lock_release(const char *exp_dir, const char *hash, int fd) {
    char path[8192];
    if (fd < 0) return;
    int g = lock_path(path, sizeof path, exp_dir, NULL, NULL, 0) ? -1 : open(path, O_RDWR | O_CLOEXEC);
    if (g >= 0 && !flock(g, LOCK_EX) && !flock(fd, LOCK_EX | LOCK_NB) && !lock_path(path, sizeof path, exp_dir, hash, NULL, 0))
        unlink(path);
    close(fd);
    if (g >= 0) close(g);
}

/* Everything a run needs besides the models. */
typedef struct {
    const plan *pl;
    const runner_options *o;
    nn_device dev;
    plan_job *mine; int nmine;   /* this process's slice of the plan */
    store_provenance prov;
    int group;                   /* train the jobs of one point and seed together (GPU) */
    int batch;                   /* runner_default_batch of the plan */
    int traced;                  /* this process wrote its --trace (job_env.traced) */
    int cuda_count;              /* visible CUDA devices (probed when workers are forked) */
    unsigned char *job_flags;    /* with workers: JOB_ALONE / JOB_GIVEN_UP per job of the plan (shared) */
    unsigned char *trusted;      /* per job of the plan (shared with the workers, MAP_SHARED): 1 where
                                  * this run wrote its shard, or read it in a child already (same_config),
                                  * so the merge need not read it in a child (probe.h); NULL: none is */
    int ngpus;                   /* --gpus: worker processes, one per GPU; 0 without --gpus */
    char visible[RUNNER_MAX_GPUS][16]; /* --gpus: worker w's CUDA_VISIBLE_DEVICES */
    int together;                /* reference models: a point and seed's jobs always run as one
                                  * group, all of them when any must run (plan_has_references) */
    int lock_fd;                 /* the experiment folder's lock, -1 when not held */
    char exp_dir[4096];          /* <output>/<name> */
    int *share;                  /* CPU workers: the worker of each job of mine (share_workers); NULL: round robin */
} run_ctx;

/* The jobs of this process that a run will skip: the complete ones, and with reference models
 * only those of seed groups that are complete as a whole. */
static int count_settled(const run_ctx *r, const char *shard_dir) {
    if (!r->together) return count_complete(r->mine, r->nmine, shard_dir);
    int k = 0;
    for (int a = 0, b; a < r->nmine; a = b) {
        for (b = a + 1; b < r->nmine && r->mine[b].point == r->mine[a].point && r->mine[b].seed == r->mine[a].seed; b++) {}
        int done = count_complete(r->mine + a, b - a, shard_dir);
        k += done == b - a ? done : 0;
    }
    return k;
}

/* Resolves the device in a short-lived child process when workers may be forked: a process
 * that has initialised CUDA cannot hand it to forked children. */
static nn_status resolve_device(nn_device_request want, int in_child, int threads, nn_device *dev, int *count,
                                char *name, size_t len, char *msg, size_t msglen) {
    struct { nn_status st; nn_device dev; int count; char name[128], msg[512]; } res;
    int fd[2];
    pid_t pid;
    if (!in_child || pipe(fd) || (pid = fork()) < 0) {
        nn_set_threads(threads);
        nn_status st = nn_device_resolve(want, dev, name, len);
        snprintf(msg, msglen, "%s", nn_last_error());
        *count = st == NN_OK && *dev == NN_CUDA ? nn_cuda_device_count() : 0;
        return st;
    }
    if (pid == 0) {
        close(fd[0]);
        memset(&res, 0, sizeof res);
        nn_set_threads(1);
        res.st = nn_device_resolve(want, &res.dev, res.name, sizeof res.name);
        snprintf(res.msg, sizeof res.msg, "%s", nn_last_error());
        res.count = res.st == NN_OK && res.dev == NN_CUDA ? nn_cuda_device_count() : 0;
        ssize_t w = write(fd[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], &res, sizeof res);
    close(fd[0]);
    waitpid(pid, NULL, 0);
    if (got != (ssize_t)sizeof res) { snprintf(msg, msglen, "device probe failed"); return NN_ETORCH; }
    *dev = res.dev;
    *count = res.count;
    snprintf(name, len, "%s", res.name);
    snprintf(msg, msglen, "%s", res.msg);
    return res.st;
}

/* --gpus: checks the GPUs asked for against those visible and fills r->visible with the
 * CUDA_VISIBLE_DEVICES entry each worker gets. */
static int check_gpus(run_ctx *r, char *err, size_t errlen) {
    const pmi_params *p0 = &r->pl->points[0].params;
    if (r->dev != NN_CUDA)
        return util_err(err, errlen, "--gpus: experiment.device is %s and resolved to the CPU here: --gpus needs GPUs",
                        nn_device_request_name(p0->device));
    if (p0->device >= NN_WANT_CUDA_0)
        return util_err(err, errlen, "--gpus cannot be combined with experiment.device = %s: set experiment.device to "
                        "cuda or auto and list the GPUs in --gpus", nn_device_request_name(p0->device));
    r->ngpus = r->o->ngpus > 0 ? r->o->ngpus : r->cuda_count < RUNNER_MAX_GPUS ? r->cuda_count : RUNNER_MAX_GPUS;
    /* --gpus indices count the visible devices: with CUDA_VISIBLE_DEVICES=2,3, --gpus 1 is device 3 */
    const char *env = getenv("CUDA_VISIBLE_DEVICES");
    for (int w = 0; w < r->ngpus; w++) {
        int g = r->o->ngpus > 0 ? r->o->gpus[w] : w;
        if (g >= r->cuda_count)
            return util_err(err, errlen, "--gpus: GPU %d does not exist: %d CUDA device%s visible (0 to %d)", g,
                            r->cuda_count, r->cuda_count == 1 ? " is" : "s are", r->cuda_count - 1);
        const char *e = env;
        for (int k = 0; e && k < g; k++) e = (e = strchr(e, ',')) ? e + 1 : NULL;
        if (e) snprintf(r->visible[w], sizeof r->visible[w], "%.*s", (int)strcspn(e, ","), e);
        else snprintf(r->visible[w], sizeof r->visible[w], "%d", g);
    }
    return 0;
}

/* 0 when every complete shard of the plan was written by this configuration, else -1 with
 * err naming the changed keys with old and new values (from the first such shard) and how many
 * shards differ. */
static int find_changed_shards(const run_ctx *r, const char *shard_dir, char *err, size_t errlen) {
    char path[8192], first[8192] = "", changes[768] = "";
    int differ = 0, nkeys = 0;
    for (int j = 0; j < r->pl->n_jobs; j++) {
        if (job_shard_path(shard_dir, &r->pl->jobs[j], path, sizeof path, NULL, 0) || !store_shard_complete(path)) continue;
        char *old = store_read_attr(path, "config"), hash[17] = "";
        if (old) plan_config_hash(old, hash);
        if (strcmp(hash, r->pl->config_hash) && differ++ == 0) {
            snprintf(first, sizeof first, "%s", path);
            nkeys = old ? plan_config_diff(old, r->pl->config_text, changes, sizeof changes) : 0;
        }
        free(old);
    }
    if (!differ) return 0;
    return util_err(err, errlen, "%d finished shard%s in %s %s written by a different configuration (%s%s): "
                    "run with --force to retrain %s, or choose another experiment.name", differ, differ > 1 ? "s" : "",
                    shard_dir, differ > 1 ? "were" : "was", nkeys ? "changed: " : "no comparable configuration in ",
                    nkeys ? changes : first, differ > 1 ? "them" : "it");
}

/* find_changed_shards() before any worker starts, in a child process: a shard that makes
 * libhdf5 crash then takes down only the child, and the workers meet it as before. */
static int check_shards_config(const run_ctx *r, const char *shard_dir, char *err, size_t errlen) {
    int fd[2];
    pid_t pid;
    if (pipe(fd)) return 0;
    if ((pid = fork()) < 0) { close(fd[0]); close(fd[1]); return 0; }
    if (pid == 0) {
        close(fd[0]);
        ssize_t w = find_changed_shards(r, shard_dir, err, errlen) ? write(fd[1], err, strlen(err)) : 0;
        _exit(w < 0);
    }
    close(fd[1]);
    size_t n = 0;
    for (ssize_t k; n + 1 < errlen && (k = read(fd[0], err + n, errlen - 1 - n)) != 0;) {
        if (k < 0) { if (errno == EINTR) continue; break; }
        n += (size_t)k;
    }
    close(fd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    if (errlen) err[n] = 0;
    return n ? -1 : 0;
}

static int prepare(run_ctx *r, runner_summary *s, char *err, size_t errlen) {
    const pmi_params *p0 = &r->pl->points[0].params;
    char devname[128], msg[512];
    if (resolve_device(p0->device, r->o->workers != 1 || r->o->ngpus, r->o->threads, &r->dev, &r->cuda_count,
                       devname, sizeof devname, msg, sizeof msg) != NN_OK)
        return util_err(err, errlen, "experiment.device: %s", msg);
    if (r->o->ngpus && check_gpus(r, err, errlen)) return -1;
    if (runner_paths(p0, s->shard_dir, sizeof s->shard_dir, s->results_path, sizeof s->results_path, err, errlen)) return -1;
    if (mkdir_p(s->shard_dir)) return util_err(err, errlen, "%s: cannot create: %s", s->shard_dir, strerror(errno));
    snprintf(r->exp_dir, sizeof r->exp_dir, "%.*s", (int)(strlen(s->shard_dir) - strlen("/shards")), s->shard_dir);
    if ((r->lock_fd = lock_take(r->exp_dir, r->pl->config_hash, err, errlen)) < 0) return r->lock_fd;
    if (!r->o->force && check_shards_config(r, s->shard_dir, err, errlen)) return -3;
    int removed = 0;
    store_clean_temps(s->shard_dir, &removed);
    if (removed) fprintf(stderr, "pmi: removed %d temporary file%s of killed runs from %s\n", removed, removed > 1 ? "s" : "", s->shard_dir);
    r->mine = util_malloc(sizeof *r->mine * (size_t)r->pl->n_jobs);
    memcpy(r->mine, r->pl->jobs, sizeof *r->mine * (size_t)r->pl->n_jobs);
    r->trusted = mmap(NULL, (size_t)r->pl->n_jobs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->trusted == MAP_FAILED) r->trusted = NULL;   /* the merge then reads every shard in a child */
    r->together = plan_has_references(r->pl);
    r->nmine = r->o->nslices > 1 ? plan_slice_groups(r->mine, r->pl->n_jobs, r->o->slice, r->o->nslices) : r->pl->n_jobs;
    r->prov.config = r->pl->config_text;
    snprintf(r->prov.config_hash, sizeof r->prov.config_hash, "%s", r->pl->config_hash);
    r->prov.settings = job_settings(&r->pl->points[0]);
    snprintf(r->prov.pmi_version, sizeof r->prov.pmi_version, "%s", pmi_version);
    snprintf(r->prov.git_commit, sizeof r->prov.git_commit, "%s", pmi_git_commit);
    snprintf(r->prov.torch_version, sizeof r->prov.torch_version, "%s", nn_torch_version());
    snprintf(r->prov.device, sizeof r->prov.device, "%s", devname);
    util_host(r->prov.host, sizeof r->prov.host);
    util_iso_now(r->prov.started, sizeof r->prov.started);
    s->jobs_total = r->nmine;
    r->group = (r->dev == NN_CUDA || r->o->batch > 0) && !r->o->no_group;   /* the CPU batches only when asked */
    r->batch = runner_default_batch(r->pl);
    return 0;
}

int runner_default_batch(const plan *pl) {
    int b = 0;
    for (int i = 0; i < pl->n_jobs; i++) {
        int a = nn_arch_batch(plan_arch(pl, &pl->jobs[i]));
        if (a <= 0) a = RUNNER_BATCH;
        if (!b || a < b) b = a;
    }
    return b ? b : RUNNER_BATCH;
}

/* 1 if job j must run (no complete shard, or --force); 0 if it is done; -1 with err if its
 * shard was written by another configuration. */
static int needs_run(const run_ctx *r, const runner_summary *s, const plan_job *j, char *err, size_t errlen) {
    char path[8192];
    if (job_shard_path(s->shard_dir, j, path, sizeof path, err, errlen)) return -1;
    if (r->o->force || !store_shard_complete(path)) return 1;
    if (same_config(path, r->pl->config_hash, err, errlen)) return -1;
    if (r->trusted) r->trusted[j->index] = 1;   /* read in a child by same_config */
    return 0;
}

/* What a worker shares with the parent (MAP_SHARED): the group it is running (index into its
 * job list and size, -1 between groups) and its last error, so that the parent can say what a
 * worker that died was doing, and retry or give up exactly that. */
typedef struct {
    int job, g;
    char msg[512];
    job_status status;        /* what it is doing now, for the status line */
} worker_slot;

/* job_flags (per job of the plan, shared with the workers): train it alone; given up in this run. */
enum { JOB_ALONE = 1, JOB_GIVEN_UP = 2 };

/* "<shard_dir>/<id>.failed": the record of a job given up, kept until it trains. */
static void failed_path(const char *shard_dir, const plan_job *j, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s.failed", shard_dir, j->id);
}

static int flagged(const run_ctx *r, const plan_job *j, int flag) {
    return r->job_flags && (r->job_flags[j->index] & flag);
}

/* Runs the jobs jobs[0..n) in this process. worker >= 0 tags the progress lines; slot
 * (optional, shared with the parent) says which group is running and why it failed. */
static runner_status run_jobs(run_ctx *r, plan_job *jobs, int n, int worker, const char *worker_kind, worker_slot *slot,
                              runner_summary *s, char *err, size_t errlen) {
    job_data *d = job_data_create();
    runner_status rs = RUN_ERROR;
    job_status own = {0};   /* a single process's status: only its count of copied models is read */
    job_env env = { .plan = r->pl, .dev = r->dev, .prov = &r->prov, .shard_dir = s->shard_dir, .stop = &stop_requested,
                    .worker = worker, .worker_kind = worker_kind, .tty = isatty(2) && worker < 0, .total = n,
                    .run_t0 = util_now_s(), .status = slot ? &slot->status : &own, .trace = r->o->trace, .traced = &r->traced };
    for (int j = 0; j < n && !stop_requested;) {
        if (flagged(r, &jobs[j], JOB_GIVEN_UP)) { j++; continue; }
        int need = needs_run(r, s, &jobs[j], err, errlen);
        if (need < 0) goto out;
        if (!need) { s->jobs_skipped++; s->jobs_done++; j++; continue; }
        /* on a GPU, the unfinished jobs of one point and seed train together; with reference
         * models all of them do, finished or not, since every model is calibrated by the
         * group's references (a finished job's shard is written again) */
        int g = 1;
        if (r->together) {
            int first = j;
            while (first > 0 && jobs[first - 1].point == jobs[j].point && jobs[first - 1].seed == jobs[j].seed) first--;
            s->jobs_skipped -= j - first; s->jobs_done -= j - first;
            j = first;
            while (j + g < n && jobs[j + g].point == jobs[j].point && jobs[j + g].seed == jobs[j].seed) g++;
        }
        while (!r->together && r->group && !flagged(r, &jobs[j], JOB_ALONE) && j + g < n && jobs[j + g].point == jobs[j].point &&
               jobs[j + g].seed == jobs[j].seed && !flagged(r, &jobs[j + g], JOB_ALONE | JOB_GIVEN_UP)) {
            if ((need = needs_run(r, s, &jobs[j + g], err, errlen)) < 0) goto out;
            if (!need) break;
            g++;
        }
        /* on a GPU (or with --batch) the next groups join this one's span while it stays within
         * RUNNER_SPAN times --batch jobs: whole groups only, each of whose jobs must run (a
         * finished or flagged job ends it); job_run_group cuts the span into batches that each
         * train at most --batch models (models copied from ones trained before do not count) */
        int cap = r->o->batch ? r->o->batch : r->batch, span = cap == 1 ? 1 : cap * RUNNER_SPAN;
        env.batch_models = r->group && cap > 1 ? cap : 0;
        while (r->group && !flagged(r, &jobs[j], JOB_ALONE) && j + g < n && g < span) {
            int k = j + g, h = 0;
            if (jobs[k].point == jobs[k - 1].point && jobs[k].seed == jobs[k - 1].seed) break;
            for (; k + h < n && jobs[k + h].point == jobs[k].point && jobs[k + h].seed == jobs[k].seed; h++) {
                if (flagged(r, &jobs[k + h], JOB_ALONE | JOB_GIVEN_UP)) break;
                if ((need = needs_run(r, s, &jobs[k + h], err, errlen)) < 0) goto out;
                if (!need) break;
            }
            if (k + h < n && jobs[k + h].point == jobs[k].point && jobs[k + h].seed == jobs[k].seed) break;
            if (g + h > span) break;
            g += h;
        }
        if (slot) { slot->job = j; slot->g = g; }
        int rc = job_run_group(&env, d, &jobs[j], g, j, err, errlen);
        if (rc < 0 && g > 1 && !stop_requested && !slot && !r->together) {
            /* a group that fails (e.g. out of GPU memory with many models at once) is retried
             * job by job; in a worker, the parent does that in a fresh process (an error may
             * have poisoned this one's CUDA context) */
            fprintf(stderr, "pmi: training %d jobs together failed (%s); running them one at a time\n", g, err);
            g = 1;
            rc = job_run_group(&env, d, &jobs[j], g, j, err, errlen);
        }
        if (rc < 0) {
            char *msg = util_strdup(err);
            util_err(err, errlen, "job %s%s: %s", jobs[j].id, g > 1 ? " (and its group)" : "", msg);
            if (slot) snprintf(slot->msg, sizeof slot->msg, "%s", msg);
            free(msg);
            goto out;
        }
        if (rc > 0) break;
        for (int i = 0; i < g; i++) {
            char path[8192];
            failed_path(s->shard_dir, &jobs[j + i], path, sizeof path);
            unlink(path);   /* a failure recorded by an earlier run is over */
        }
        if (slot) { slot->job = -1; slot->status.done += g; slot->status.job[0] = 0; }
        for (int i = 0; i < g && r->trusted; i++) r->trusted[jobs[j + i].index] = 1;   /* shared: a worker's reach the parent */
        s->jobs_done += g; s->jobs_trained += g;
        j += g;
    }
    rs = stop_requested ? RUN_INTERRUPTED : RUN_OK;
out:
    s->jobs_copied += own.copied;
    s->jobs_trained -= own.copied;
    job_data_free(d);
    return rs;
}

/* What a CPU worker's share costs, in tenths of a second of the small LeNet runs on the 2-core CI
 * VM (make reproduce): a model trained about 2.4 s with its evaluation, a job's own evaluation
 * 0.1 s, an attack setting applied and evaluated 0.33 s (17.5 s of 53 settings a job). */
#define SHARE_TRAIN 24.0
#define SHARE_JOB 1.0
#define SHARE_ATTACK 3.3

typedef struct { const char *key; int unit; } share_key;
static int share_key_cmp(const void *a, const void *b) {
    const share_key *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->unit > y->unit) - (x->unit < y->unit);
}
static int share_root(int *up, int u) {
    while (up[u] != u) u = up[u] = up[up[u]];
    return u;
}

/* The CPU workers' shares of mine, balanced: units (jobs, or groups of a point and seed when
 * by_group) whose jobs train the same model (job_model_keys: the clean and reference models of
 * sweep points that differ only in the pool) join one cluster, so that one process trains that
 * model once and copies it (reuse.h); clusters go, costliest first, to the worker with the least
 * cost so far (ties: the lower index; SHARE_* above). Deterministic: the plan alone decides.
 * Every workers-th job used to be the share: ablation-pool's 2 workers got the 8 owners (8 models
 * to train) and the 8 clean models (2 to train). Returns worker_of[nmine] (malloc'd), or NULL
 * (round robin) when the data files' counts cannot be read; prints the shares. */
static int *share_workers(const run_ctx *r, int workers, int by_group) {
    int n = r->nmine;
    char (*keys)[65] = util_malloc(sizeof *keys * (size_t)(n ? n : 1)), err[512];
    if (job_model_keys(r->pl, r->mine, n, keys, err, sizeof err)) { free(keys); return NULL; }
    int *unit = util_malloc(sizeof *unit * (size_t)(n ? n : 1)), nu = 0;
    for (int j = 0; j < n; j++)
        unit[j] = !j ? 0 : by_group && r->mine[j].point == r->mine[j - 1].point && r->mine[j].seed == r->mine[j - 1].seed
                              ? unit[j - 1] : unit[j - 1] + 1;
    nu = n ? unit[n - 1] + 1 : 0;
    int *up = util_malloc(sizeof *up * (size_t)(nu ? nu : 1));
    for (int u = 0; u < nu; u++) up[u] = u;
    share_key *sk = util_malloc(sizeof *sk * (size_t)(n ? n : 1));
    for (int j = 0; j < n; j++) sk[j] = (share_key){ keys[j], unit[j] };
    qsort(sk, (size_t)n, sizeof *sk, share_key_cmp);
    double *cost = util_calloc((size_t)(nu ? nu : 1), sizeof *cost);
    int *models = util_calloc((size_t)(nu ? nu : 1), sizeof *models), *jobs = util_calloc((size_t)(nu ? nu : 1), sizeof *jobs);
    for (int i = 0; i < n; i++)   /* same key: one cluster */
        if (i && !strcmp(sk[i].key, sk[i - 1].key)) up[share_root(up, sk[i].unit)] = share_root(up, sk[i - 1].unit);
    for (int i = 0; i < n; i++) {  /* a cluster trains each of its distinct keys once */
        int c = share_root(up, sk[i].unit);
        if (!i || strcmp(sk[i].key, sk[i - 1].key)) { cost[c] += SHARE_TRAIN; models[c]++; }
    }
    for (int j = 0; j < n; j++) {
        int c = share_root(up, unit[j]);
        cost[c] += SHARE_JOB + SHARE_ATTACK * r->pl->n_attacks;
        jobs[c]++;
    }
    /* clusters by cost, costliest first (ties: the one that comes first in the plan) */
    int *order = util_malloc(sizeof *order * (size_t)(nu ? nu : 1)), no = 0;
    for (int u = 0; u < nu; u++) if (share_root(up, u) == u) order[no++] = u;
    for (int i = 1; i < no; i++)
        for (int k = i; k > 0 && cost[order[k]] > cost[order[k - 1]]; k--) { int t = order[k]; order[k] = order[k - 1]; order[k - 1] = t; }
    double *load = util_calloc((size_t)workers, sizeof *load);
    int *wm = util_calloc((size_t)workers, sizeof *wm), *wj = util_calloc((size_t)workers, sizeof *wj);
    int *worker_of_cluster = util_malloc(sizeof *worker_of_cluster * (size_t)(nu ? nu : 1));
    for (int i = 0; i < no; i++) {
        int w = 0;
        for (int v = 1; v < workers; v++) if (load[v] < load[w]) w = v;
        worker_of_cluster[order[i]] = w;
        load[w] += cost[order[i]]; wm[w] += models[order[i]]; wj[w] += jobs[order[i]];
    }
    int *worker_of = util_malloc(sizeof *worker_of * (size_t)(n ? n : 1));
    for (int j = 0; j < n; j++) worker_of[j] = worker_of_cluster[share_root(up, unit[j])];
    fprintf(stderr, "  shares:");
    for (int w = 0; w < workers; w++) fprintf(stderr, "%s w%d %d model%s to train in %d job%s", w ? "," : "", w, wm[w], wm[w] == 1 ? "" : "s", wj[w], wj[w] == 1 ? "" : "s");
    fprintf(stderr, "\n");
    free(keys); free(unit); free(up); free(sk); free(cost); free(models); free(jobs); free(order); free(load); free(wm); free(wj);
    free(worker_of_cluster);
    return worker_of;
}

/* Worker w's jobs: its share (share_workers) on CPU, or every workers-th job of this slice,
 * every workers-th group on a GPU. Returns their count; *out is malloc'd. */
static int worker_jobs(const run_ctx *r, int w, int workers, int by_group, plan_job **out) {
    *out = util_malloc(sizeof **out * (size_t)(r->nmine ? r->nmine : 1));
    if (r->share) {
        int k = 0;
        for (int j = 0; j < r->nmine; j++) if (r->share[j] == w) (*out)[k++] = r->mine[j];
        return k;
    }
    memcpy(*out, r->mine, sizeof **out * (size_t)r->nmine);
    return by_group ? plan_slice_groups(*out, r->nmine, w, workers) : plan_slice(*out, r->nmine, w, workers);
}

/* Worker w's process (never returns). */
static void worker_main(run_ctx *r, int w, int workers, char (*visible)[16], worker_slot *slot, runner_summary *s,
                        char *err, size_t errlen) {
    /* a worker dies with its parent: a killed run leaves no orphan writing shards */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(RUN_INTERRUPTED);
    plan_job *mine;
    int n = worker_jobs(r, w, workers, r->dev == NN_CUDA || r->together || r->group, &mine);
    runner_summary ws = *s;
    if (visible) {
        /* before CUDA is initialised in this process: it sees its GPU as cuda:0 */
        setenv("CUDA_VISIBLE_DEVICES", visible[w], 1);
    }
    if (r->dev == NN_CUDA) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nn_set_threads(r->o->threads > 0 ? r->o->threads : cores / workers > 1 ? (int)(cores / workers) : 1);
        nn_device dev;   /* experiment.device = cuda:N: the probe chose N in its own process */
        if (!visible) nn_device_resolve(r->pl->points[0].params.device, &dev, NULL, 0);
    } else {
        nn_set_threads(1);
    }
    runner_status rs = run_jobs(r, mine, n, visible && r->o->ngpus > 0 ? r->o->gpus[w] : w, visible ? "gpu" : "w",
                                slot, &ws, err, errlen);
    if (rs == RUN_ERROR) fprintf(stderr, "pmi: worker %d%s%s: %s\n", w, visible ? " on GPU " : "", visible ? visible[w] : "", err);
    fflush(stderr);
    _exit(rs);
}

/* The run's status line on a terminal: jobs done of all with an ETA, then per worker its job
 * and epoch e/E or attack i/n, cut to the terminal's width (a wrapped line could not be
 * redrawn in place). */
static void draw_status(const worker_slot *slots, int workers, int gpus, int before, int todo, int total, double t0) {
    char line[1024];
    int done = 0;
    for (int w = 0; w < workers; w++) done += slots[w].status.done;
    double el = util_now_s() - t0;
    int n = snprintf(line, sizeof line, "[%d/%d jobs", before + done, total);
    if (done > 0 && done < todo) n += snprintf(line + n, sizeof line - (size_t)n, ", eta %.0fs", el / done * (todo - done));
    n += snprintf(line + n, sizeof line - (size_t)n, "]");
    for (int w = 0; w < workers && n < (int)sizeof line - 1; w++) {
        const job_status *st = &slots[w].status;
        if (!st->job[0]) continue;
        if (st->attacks) n += snprintf(line + n, sizeof line - (size_t)n, " %s%d %s attack %d/%d", gpus ? "gpu" : "w", w, st->job, st->attack + 1, st->attacks);
        else n += snprintf(line + n, sizeof line - (size_t)n, " %s%d %s e%d/%d", gpus ? "gpu" : "w", w, st->job, st->epoch, st->epochs);
    }
    struct winsize ws;
    int cols = ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10 ? ws.ws_col - 1 : 79;
    if (n > cols && cols < (int)sizeof line) line[cols] = 0;
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

/* Forks `workers` processes. On CPU each runs every workers-th job of this slice with one
 * libtorch thread; on a GPU every workers-th group with cores / workers threads, and with
 * --gpus worker w sees only the GPU visible[w]. The parent touches neither a libtorch thread
 * pool nor CUDA before forking.
 *
 * A worker that fails or dies (an error, a crash, a CUDA failure that poisons its process,
 * the OOM killer) is replaced by a fresh process on the same jobs (finished shards are
 * skipped): if it was training a group of several jobs, they are retried one at a time; if
 * a single job, that job is given up for this run (its reason in <shard_dir>/<id>.failed)
 * and the other jobs go on. The run then ends with RUN_ERROR naming the given-up jobs; a
 * later run retries them. */
static runner_status run_workers(run_ctx *r, int workers, char (*visible)[16], runner_summary *s, char *err, size_t errlen) {
    int before = count_settled(r, s->shard_dir);
    pid_t *pids = util_calloc((size_t)workers, sizeof *pids);
    size_t shared = sizeof(worker_slot) * (size_t)workers + (size_t)r->pl->n_jobs;
    void *mem = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { free(pids); util_err(err, errlen, "mmap: %s", strerror(errno)); return RUN_ERROR; }
    worker_slot *slots = mem;
    r->job_flags = (unsigned char *)(slots + workers);
    int running = 0, worst = RUN_OK, restarts = 0, given_up = 0;
    for (int w = 0; w < workers; w++) {
        slots[w].job = -1;
        if ((pids[w] = fork()) < 0) { util_err(err, errlen, "fork: %s", strerror(errno)); worst = RUN_ERROR; break; }
        if (pids[w] == 0) worker_main(r, w, workers, visible, &slots[w], s, err, errlen);
        running++;
    }
    int tty = isatty(2), base = r->o->force ? 0 : before, todo = r->nmine - base;
    double t0 = util_now_s(), last_draw = 0;
    while (running > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, tty ? WNOHANG : 0);
        if (pid == 0) {   /* a terminal: redraw the status line every second, look again soon */
            if (util_now_s() - last_draw >= 1) { draw_status(slots, workers, visible != NULL, base, todo, r->nmine, t0); last_draw = util_now_s(); }
            struct timespec nap = {0, 100 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (pid < 0) {
            if (errno != EINTR) break;
            for (int q = 0; q < workers; q++) if (pids[q] > 0) kill(pids[q], stop_requested ? (int)stop_requested : SIGTERM);
            continue;
        }
        int w = 0;
        while (w < workers && pids[w] != pid) w++;
        if (w == workers) continue;
        pids[w] = 0;
        running--;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : RUN_ERROR;
        if ((WIFSIGNALED(st) || code == RUN_ERROR) && !stop_requested) {
            plan_job *its;
            int n = worker_jobs(r, w, workers, r->dev == NN_CUDA || r->together || r->group, &its), j = slots[w].job, g = slots[w].g;
            char why[600];
            if (WIFSIGNALED(st)) snprintf(why, sizeof why, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
            else snprintf(why, sizeof why, "%s", slots[w].msg[0] ? slots[w].msg : "failed");
            fprintf(stderr, "pmi: worker %d%s%s %s%s%s%s\n", w, visible ? " on GPU " : "", visible ? visible[w] : "",
                    WIFSIGNALED(st) ? why : "failed", j >= 0 && j < n ? " while running job " : " outside a job",
                    j >= 0 && j < n ? its[j].id : "", j >= 0 && j < n && g > 1 ? " and its group" : "");
            if (j >= 0 && j < n && restarts < r->nmine + workers) {
                int groups = plan_groups(its + j, g);
                if (g > 1 && (!r->together || groups > 1)) {
                    /* a batch of several groups, or a group of jobs that may train apart, is retried
                     * in smaller pieces (with reference models a group is the smallest piece) */
                    for (int i = 0; i < g; i++) r->job_flags[its[j + i].index] |= JOB_ALONE;
                    if (r->together) fprintf(stderr, "pmi: retrying the %d groups of that batch one at a time in a fresh process\n", groups);
                    else fprintf(stderr, "pmi: retrying the %d jobs of that group one at a time in a fresh process\n", g);
                } else {
                    /* one job, or a group that must train as one (reference models calibrate it) */
                    for (int i = 0; i < g; i++) {
                        char path[8192];
                        failed_path(s->shard_dir, &its[j + i], path, sizeof path);
                        FILE *f = outfile_open(path, OUTFILE_PUBLIC, 0, NULL, 0);
                        if (f) {
                            char now[64];
                            util_iso_now(now, sizeof now);
                            fprintf(f, "job %s%s failed on %s at %s: %s\n", its[j + i].id, g > 1 ? " (in its group)" : "",
                                    r->prov.device, now, why);
                            outfile_close(f, NULL, 0);
                        }
                        r->job_flags[its[j + i].index] |= JOB_GIVEN_UP;
                        given_up++;
                        fprintf(stderr, "pmi: giving up job %s for this run (%s); the other jobs go on in a fresh process\n",
                                its[j + i].id, path);
                    }
                }
                restarts++;
                slots[w].job = -1; slots[w].msg[0] = 0;
                free(its);
                if ((pids[w] = fork()) == 0) worker_main(r, w, workers, visible, &slots[w], s, err, errlen);
                if (pids[w] > 0) { running++; continue; }
                pids[w] = 0;
                util_err(err, errlen, "fork: %s", strerror(errno));
            } else {
                free(its);
            }
            worst = RUN_ERROR;
            continue;
        }
        if (code == RUN_ERROR || (code == RUN_INTERRUPTED && worst == RUN_OK)) worst = code;
    }
    if (tty) fprintf(stderr, "\r\033[K");
    free(pids);
    s->jobs_done = count_complete(r->mine, r->nmine, s->shard_dir);
    s->jobs_skipped = r->o->force ? 0 : before;
    for (int w = 0; w < workers; w++) s->jobs_copied += slots[w].status.copied;
    s->jobs_trained = s->jobs_done - s->jobs_skipped - s->jobs_copied;
    if (given_up && worst == RUN_OK) {
        char list[1024] = "";
        for (int j = 0; j < r->nmine; j++)
            if (r->job_flags[r->mine[j].index] & JOB_GIVEN_UP && strlen(list) + strlen(r->mine[j].id) + 3 < sizeof list)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", r->mine[j].id);
        util_err(err, errlen, "%d job%s failed and %s given up (%s; the reasons are in %s/<job>.failed and above); "
                 "the other jobs are done: run again to retry %s", given_up, given_up > 1 ? "s" : "",
                 given_up > 1 ? "were" : "was", list, s->shard_dir, given_up > 1 ? "them" : "it");
        worst = RUN_ERROR;
    } else if (worst == RUN_ERROR) {
        util_err(err, errlen, "a worker failed (its message is above); run again to retry the missing jobs");
    }
    r->job_flags = NULL;
    munmap(mem, shared);
    return (runner_status)worst;
}

/* --gpus: one worker per GPU, each on its own groups (see run_workers). */
static runner_status run_gpus(run_ctx *r, runner_summary *s, char *err, size_t errlen) {
    int groups = plan_groups(r->mine, r->nmine);
    if (groups < r->ngpus)
        fprintf(stderr, "pmi: --gpus: %d GPUs for %d group%s of jobs (point x seed): %d GPU%s will idle\n", r->ngpus, groups,
                groups == 1 ? "" : "s", r->ngpus - groups, r->ngpus - groups == 1 ? "" : "s");
    fprintf(stderr, "pmi: one worker per GPU:");
    for (int w = 0; w < r->ngpus; w++) fprintf(stderr, " gpu%d=device %s", r->o->ngpus > 0 ? r->o->gpus[w] : w, r->visible[w]);
    fprintf(stderr, "\n");
    return run_workers(r, r->ngpus, r->visible, s, err, errlen);
}

/* Merges the plan's shards into s->results_path (the caller holds the folder's lock). trusted
 * (or NULL): per job of the plan, 1 where this run wrote its shard or read it in a child. */
static int merge_plan(const plan *pl, store_provenance *prov, int partial, const unsigned char *trusted, runner_summary *s,
                      char *err, size_t errlen) {
    char **paths = util_calloc((size_t)pl->n_jobs, sizeof *paths);
    int rc = 0;
    for (int j = 0; j < pl->n_jobs && !rc; j++) {
        paths[j] = util_malloc(8192);
        rc = job_shard_path(s->shard_dir, &pl->jobs[j], paths[j], 8192, err, errlen);
    }
    /* a shard that makes libhdf5 crash or spin would take the merge down with it: each one
     * that exists is read in a child process first (probe.h), but for those this run wrote,
     * which pmi's own writer made a moment ago, and those read so already (trusted): at paper
     * scale ablation-power's merge
     * of 480 shards took 10.2 s with a child each and 1.6 s without on H100 machines
     * (docs/performance.md, 2026-12-06) */
    struct stat st;
    for (int j = 0; j < pl->n_jobs && !rc; j++) {
        if ((trusted && trusted[j]) || stat(paths[j], &st) || probe_results_file(paths[j], 0, err, errlen) == PROBE_OK) continue;
        size_t u = strlen(err);
        if (u + 1 < errlen) snprintf(err + u, errlen - u, "; remove it and run again to retrain its job");
        rc = -1;
    }
    /* the run started when its first shard's session did (a resumed run's session may only
     * merge) */
    for (int j = 0; j < pl->n_jobs && !rc; j++) {
        char *t = stat(paths[j], &st) ? NULL : store_read_attr(paths[j], "started");
        if (t && t[0] && (!prov->started[0] || strcmp(t, prov->started) < 0)) snprintf(prov->started, sizeof prov->started, "%s", t);
        free(t);
    }
    int merged = 0;
    util_iso_now(prov->finished, sizeof prov->finished);
    if (!rc) rc = store_merge_plan((const char *const *)paths, pl->n_jobs, partial, s->results_path, prov, &merged, err, errlen);
    if (!rc && merged < pl->n_jobs)
        fprintf(stderr, "pmi: PARTIAL results: %d of %d jobs merged into %s\n", merged, pl->n_jobs, s->results_path);
    /* the report tables go into the merged file (/report); without them the file is still whole */
    char why[1024];
    report_options ro = report_default_options();
    if (!rc && report_store(s->results_path, &ro, why, sizeof why))
        fprintf(stderr, "pmi: warning: the report tables were not stored in %s: %s\n", s->results_path, why);
    for (int j = 0; j < pl->n_jobs; j++) free(paths[j]);
    free(paths);
    return rc;
}

/* Makes dir (mode 0700) for the owner keys, or checks the one there: a link is refused (it may
 * lead anywhere), a folder that group or others may enter is made 0700 with a warning. */
static int keys_folder(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (mkdir(dir, 0700) && errno != EEXIST) return util_err(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);   /* the folder itself, never a link's target */
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
        return util_err(err, errlen, "%s: %s, expected the folder for the owner keys: remove it", dir,
                        lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) ? "a symbolic link" : "not a folder");
    if (fd < 0 || fstat(fd, &st)) { util_err(err, errlen, "%s: %s", dir, strerror(errno)); if (fd >= 0) close(fd); return -1; }
    int rc = 0;
    if ((st.st_mode & 077) && fchmod(fd, 0700))
        rc = util_err(err, errlen, "%s: mode %03o lets others in, and chmod 700 failed: %s", dir, (unsigned)(st.st_mode & 0777), strerror(errno));
    else if (st.st_mode & 077)
        fprintf(stderr, "pmi: warning: %s had mode %03o (others could reach the keys): made 0700\n", dir, (unsigned)(st.st_mode & 0777));
    close(fd);
    return rc;
}

/* With [store] keys, the key of every owner job of the merged file, in <experiment>/keys/. */
static int write_keys(const plan *pl, const runner_summary *s, char *err, size_t errlen) {
    char dir[4096], path[4352];
    snprintf(dir, sizeof dir, "%.*s/keys", (int)(strlen(s->shard_dir) - strlen("/shards")), s->shard_dir);
    for (int j = 0; j < pl->n_jobs; j++) {
        const plan_job *job = &pl->jobs[j];
        if (job->role != ROLE_OWNER || !plan_params(pl, job)->keys) continue;
        if (keys_folder(dir, err, errlen)) return -1;
        snprintf(path, sizeof path, "%s/%s.key.h5", dir, job->id);
        pmi_key k;
        if (key_export(s->results_path, job->id, &k, err, errlen)) return -1;
        int rc = key_write(path, &k, err, errlen);
        key_free(&k);
        if (rc) return -1;
        fprintf(stderr, "pmi: owner key %s (the secret: keep it private)\n", path);
    }
    return 0;
}

runner_status runner_merge(const plan *pl, int partial, runner_summary *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    const pmi_params *p0 = &pl->points[0].params;
    if (runner_paths(p0, s->shard_dir, sizeof s->shard_dir, s->results_path, sizeof s->results_path, err, errlen)) return RUN_ERROR;
    char exp_dir[4096];
    snprintf(exp_dir, sizeof exp_dir, "%.*s", (int)(strlen(s->shard_dir) - strlen("/shards")), s->shard_dir);
    int fd = lock_take(exp_dir, pl->config_hash, err, errlen);
    if (fd < 0) return fd == -2 ? RUN_BUSY : RUN_ERROR;
    store_provenance prov;
    memset(&prov, 0, sizeof prov);
    prov.config = pl->config_text;
    snprintf(prov.config_hash, sizeof prov.config_hash, "%s", pl->config_hash);
    prov.settings = job_settings(&pl->points[0]);
    snprintf(prov.pmi_version, sizeof prov.pmi_version, "%s", pmi_version);
    snprintf(prov.git_commit, sizeof prov.git_commit, "%s", pmi_git_commit);
    snprintf(prov.torch_version, sizeof prov.torch_version, "%s", nn_torch_version());
    snprintf(prov.device, sizeof prov.device, "(merged by pmi merge)");
    util_host(prov.host, sizeof prov.host);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_merge_signal;
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (int i = 0; i < 4; i++) sigaction(sigs[i], &sa, NULL);
    int rc = merge_plan(pl, &prov, partial, NULL, s, err, errlen);
    lock_release(exp_dir, pl->config_hash, fd);
    s->jobs_total = pl->n_jobs;
    return rc ? RUN_ERROR : RUN_OK;
}

runner_status runner_run(const plan *pl, const runner_options *o, runner_summary *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    run_ctx r = { .pl = pl, .o = o, .lock_fd = -1 };
    runner_status rs = RUN_ERROR;
    int prc = prepare(&r, s, err, errlen);
    if (prc) { rs = prc == -2 ? RUN_BUSY : prc == -3 ? RUN_CHANGED : RUN_ERROR; goto out; }
    /* auto (0): one worker per core on CPU, one process on a GPU */
    int workers = o->workers > 0 ? o->workers : r.dev == NN_CPU ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
    if (workers > r.nmine) workers = r.nmine > 0 ? r.nmine : 1;
    if (o->ngpus) workers = r.ngpus;
    fprintf(stderr, "pmi: experiment '%s': %d jobs (%d here), %d attack settings, device %s, %d %s%s\n",
            pl->points[0].params.name, pl->n_jobs, r.nmine, pl->n_attacks, r.prov.device, workers,
            o->ngpus ? "GPU worker" : "worker", workers > 1 ? o->ngpus ? "s" : "s x 1 thread" : "");
    /* the device as the results files record it: worker processes of one thread each */
    if (r.dev == NN_CPU && workers > 1)
        snprintf(r.prov.device, sizeof r.prov.device, "cpu (%d worker processes x 1 thread)", workers);
    if (o->ngpus) {
        rs = run_gpus(&r, s, err, errlen);
    } else if (workers > 1 || (r.dev == NN_CUDA && o->workers == 0)) {
        /* on a GPU, one worker process too: if it fails, a fresh one can go on (run_workers) */
        if (r.dev == NN_CPU) r.share = share_workers(&r, workers, r.together || r.group);
        rs = run_workers(&r, workers, NULL, s, err, errlen);
    } else {
        nn_set_threads(o->threads);
        rs = run_jobs(&r, r.mine, r.nmine, -1, NULL, NULL, s, err, errlen);
    }
    if (rs == RUN_INTERRUPTED || stop_requested) {
        fprintf(stderr, "\npmi: stopped by signal %d: %d of %d jobs done; run again to continue\n",
                (int)stop_requested, s->jobs_done, s->jobs_total);
        rs = RUN_INTERRUPTED;
        goto out;
    }
    if (rs != RUN_OK) goto out;
    if (o->no_merge || count_complete(pl->jobs, pl->n_jobs, s->shard_dir) < pl->n_jobs) s->results_path[0] = 0;
    if (s->results_path[0] && merge_plan(pl, &r.prov, 0, r.trusted, s, err, errlen)) rs = RUN_ERROR;
    if (rs == RUN_OK && s->results_path[0] && write_keys(pl, s, err, errlen)) rs = RUN_ERROR;
out:
    lock_release(r.exp_dir, pl->config_hash, r.lock_fd);
    free(r.mine); free(r.share);
    if (r.trusted) munmap(r.trusted, (size_t)pl->n_jobs);
    return rs;
}
