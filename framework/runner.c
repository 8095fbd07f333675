/* runner: what runs where: resume, worker processes, GPU groups, signals, merge (see runner.h). */
#include "runner.h"
#include "job.h"
#include "nn.h"
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
    int g = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (g < 0) return util_err(err, errlen, "%s: %s", path, strerror(errno));
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
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 || flock(fd, LOCK_SH)) {
        util_err(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
out:
    close(g);   /* releases the exclusive lock */
    return fd;
}

/* Everything a run needs besides the models. */
typedef struct {
    const plan *pl;
    const runner_options *o;
    nn_device dev;
    plan_job *mine; int nmine;   /* this process's slice of the plan */
    store_provenance prov;
    int group;                   /* train the jobs of one point and seed together (GPU) */
    int lock_fd;                 /* the experiment folder's lock, -1 when not held */
    char exp_dir[4096];          /* <output>/<name> */
} run_ctx;

/* Resolves the device in a short-lived child process when workers may be forked: a process
 * that has initialised CUDA cannot hand it to forked children. */
static nn_status resolve_device(nn_device_request want, int in_child, int threads, nn_device *dev, char *name, size_t len, char *msg, size_t msglen) {
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
    const pmi_params *p0 = &r->pl->points[0].params;
    char devname[128], msg[512];
    if (resolve_device(p0->device, r->o->workers != 1, r->o->threads, &r->dev, devname, sizeof devname, msg, sizeof msg) != NN_OK)
        return util_err(err, errlen, "experiment.device: %s", msg);
    if (runner_paths(p0, s->shard_dir, sizeof s->shard_dir, s->results_path, sizeof s->results_path, err, errlen)) return -1;
    if (mkdir_p(s->shard_dir)) return util_err(err, errlen, "%s: cannot create: %s", s->shard_dir, strerror(errno));
    snprintf(r->exp_dir, sizeof r->exp_dir, "%.*s", (int)(strlen(s->shard_dir) - strlen("/shards")), s->shard_dir);
    if ((r->lock_fd = lock_take(r->exp_dir, r->pl->config_hash, err, errlen)) < 0) return r->lock_fd;
    int removed = 0;
    store_clean_temps(s->shard_dir, &removed);
    if (removed) fprintf(stderr, "pmi: removed %d temporary file%s of killed runs from %s\n", removed, removed > 1 ? "s" : "", s->shard_dir);
    r->mine = util_malloc(sizeof *r->mine * (size_t)r->pl->n_jobs);
    memcpy(r->mine, r->pl->jobs, sizeof *r->mine * (size_t)r->pl->n_jobs);
    r->nmine = r->o->nslices > 1 ? plan_slice(r->mine, r->pl->n_jobs, r->o->slice, r->o->nslices) : r->pl->n_jobs;
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
    r->group = r->dev == NN_CUDA && !r->o->no_group;
    return 0;
}

/* 1 if job j must run (no complete shard, or --force); 0 if it is done; -1 with err if its
 * shard was written by another configuration. */
static int needs_run(const run_ctx *r, const runner_summary *s, const plan_job *j, char *err, size_t errlen) {
    char path[8192];
    if (job_shard_path(s->shard_dir, j, path, sizeof path, err, errlen)) return -1;
    if (r->o->force || !store_shard_complete(path)) return 1;
    return same_config(path, r->pl->config_hash, err, errlen) ? -1 : 0;
}

/* Runs the jobs jobs[0..n) in this process. worker >= 0 tags the progress lines; *current
 * (optional, shared with the parent) gets the index of the job being run. */
static runner_status run_jobs(run_ctx *r, plan_job *jobs, int n, int worker, volatile int *current,
                              runner_summary *s, char *err, size_t errlen) {
    job_data *d = job_data_create();
    runner_status rs = RUN_ERROR;
    job_env env = { .plan = r->pl, .dev = r->dev, .prov = &r->prov, .shard_dir = s->shard_dir, .stop = &stop_requested,
                    .worker = worker, .tty = isatty(2) && worker < 0, .total = n, .run_t0 = util_now_s() };
    for (int j = 0; j < n && !stop_requested;) {
        int need = needs_run(r, s, &jobs[j], err, errlen);
        if (need < 0) goto out;
        if (!need) { s->jobs_skipped++; s->jobs_done++; j++; continue; }
        /* on a GPU, the unfinished jobs of one point and seed train together */
        int g = 1;
        while (r->group && j + g < n && jobs[j + g].point == jobs[j].point && jobs[j + g].seed == jobs[j].seed) {
            if ((need = needs_run(r, s, &jobs[j + g], err, errlen)) < 0) goto out;
            if (!need) break;
            g++;
        }
        if (current) *current = j;
        int rc = job_run_group(&env, d, &jobs[j], g, j, err, errlen);
        if (rc < 0 && g > 1 && !stop_requested) {
            /* a group that fails (e.g. out of GPU memory with many models at once) is retried
             * job by job; an error that poisons the CUDA context fails again and is reported */
            fprintf(stderr, "pmi: training %d jobs together failed (%s); running them one at a time\n", g, err);
            g = 1;
            rc = job_run_group(&env, d, &jobs[j], g, j, err, errlen);
        }
        if (rc < 0) {
            char *msg = util_strdup(err);
            util_err(err, errlen, "job %s%s: %s", jobs[j].id, g > 1 ? " (and its group)" : "", msg);
            free(msg);
            goto out;
        }
        if (rc > 0) break;
        s->jobs_done += g; s->jobs_trained += g;
        j += g;
    }
    rs = stop_requested ? RUN_INTERRUPTED : RUN_OK;
out:
    job_data_free(d);
    return rs;
}

/* Forks `workers` processes, each running every workers-th job of this slice with one
 * libtorch thread. The parent touches no libtorch thread pool before forking. */
static runner_status run_workers(run_ctx *r, int workers, runner_summary *s, char *err, size_t errlen) {
    int before = count_complete(r->mine, r->nmine, s->shard_dir);
    pid_t *pids = util_calloc((size_t)workers, sizeof *pids);
    /* each worker's current job (index into its slice), shared so that the parent can say
     * which job a worker killed by a signal was running */
    volatile int *current = mmap(NULL, sizeof(int) * (size_t)workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (current == MAP_FAILED) { free(pids); util_err(err, errlen, "mmap: %s", strerror(errno)); return RUN_ERROR; }
    for (int w = 0; w < workers; w++) current[w] = -1;
    for (int w = 0; w < workers; w++) {
        pids[w] = fork();
        if (pids[w] < 0) { util_err(err, errlen, "fork: %s", strerror(errno)); workers = w; break; }
        if (pids[w] == 0) {
            /* a worker dies with its parent: a killed run leaves no orphan writing shards */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1) _exit(RUN_INTERRUPTED);
            plan_job *mine = util_malloc(sizeof *mine * (size_t)r->nmine);
            memcpy(mine, r->mine, sizeof *mine * (size_t)r->nmine);
            int n = plan_slice(mine, r->nmine, w, workers);
            runner_summary ws = *s;
            nn_set_threads(1);
            runner_status rs = run_jobs(r, mine, n, w, &current[w], &ws, err, errlen);
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
        if (WIFSIGNALED(st) && !stop_requested) {
            /* the worker's slice is mine[w], mine[w + workers], ... (plan_slice) */
            int j = current[w], idx = w + j * workers;
            fprintf(stderr, "pmi: worker %d was killed by signal %d (%s) %s%s\n", w, WTERMSIG(st), strsignal(WTERMSIG(st)),
                    j >= 0 && idx < r->nmine ? "while running job " : "before its first job", j >= 0 && idx < r->nmine ? r->mine[idx].id : "");
            worst = RUN_ERROR;
        }
        if (code == RUN_ERROR || (code == RUN_INTERRUPTED && worst == RUN_OK)) worst = code;
    }
    free(pids);
    munmap((void *)current, sizeof(int) * (size_t)workers);
    s->jobs_done = count_complete(r->mine, r->nmine, s->shard_dir);
    s->jobs_skipped = r->o->force ? 0 : before;
    s->jobs_trained = s->jobs_done - s->jobs_skipped;
    if (worst == RUN_ERROR) util_err(err, errlen, "a worker failed (its message is above); run again to retry the missing jobs");
    return (runner_status)worst;
}

/* Merges the plan's shards into s->results_path (the caller holds the folder's lock). */
static int merge_plan(const plan *pl, store_provenance *prov, int partial, runner_summary *s, char *err, size_t errlen) {
    char **paths = util_calloc((size_t)pl->n_jobs, sizeof *paths);
    int rc = 0;
    for (int j = 0; j < pl->n_jobs && !rc; j++) {
        paths[j] = util_malloc(8192);
        rc = job_shard_path(s->shard_dir, &pl->jobs[j], paths[j], 8192, err, errlen);
    }
    /* a shard that makes libhdf5 crash or spin would take the merge down with it: each one
     * that exists is read in a child process first (probe.h) */
    struct stat st;
    for (int j = 0; j < pl->n_jobs && !rc; j++) {
        if (stat(paths[j], &st) || probe_results_file(paths[j], 0, err, errlen) == PROBE_OK) continue;
        size_t u = strlen(err);
        if (u + 1 < errlen) snprintf(err + u, errlen - u, "; remove it and run again to retrain its job");
        rc = -1;
    }
    /* the run started when its first shard's session did (a resumed run's session may only merge) */
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
    int rc = merge_plan(pl, &prov, partial, s, err, errlen);
    close(fd);
    s->jobs_total = pl->n_jobs;
    return rc ? RUN_ERROR : RUN_OK;
}

runner_status runner_run(const plan *pl, const runner_options *o, runner_summary *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    run_ctx r = { .pl = pl, .o = o, .lock_fd = -1 };
    runner_status rs = RUN_ERROR;
    int prc = prepare(&r, s, err, errlen);
    if (prc) { rs = prc == -2 ? RUN_BUSY : RUN_ERROR; goto out; }
    /* auto (0): one worker per core on CPU, one process on a GPU */
    int workers = o->workers > 0 ? o->workers : r.dev == NN_CPU ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
    if (workers > r.nmine) workers = r.nmine > 0 ? r.nmine : 1;
    fprintf(stderr, "pmi: experiment '%s': %d jobs (%d here), %d attack settings, device %s, %d worker%s\n",
            pl->points[0].params.name, pl->n_jobs, r.nmine, pl->n_attacks, r.prov.device, workers, workers > 1 ? "s x 1 thread" : "");
    /* the device as the results files record it: worker processes of one thread each */
    if (r.dev == NN_CPU && workers > 1)
        snprintf(r.prov.device, sizeof r.prov.device, "cpu (%d worker processes x 1 thread)", workers);
    if (workers > 1) {
        rs = run_workers(&r, workers, s, err, errlen);
    } else {
        nn_set_threads(o->threads);
        rs = run_jobs(&r, r.mine, r.nmine, -1, NULL, s, err, errlen);
    }
    if (rs == RUN_INTERRUPTED || stop_requested) {
        fprintf(stderr, "\npmi: stopped by signal %d: %d of %d jobs done; run again to continue\n",
                (int)stop_requested, s->jobs_done, s->jobs_total);
        rs = RUN_INTERRUPTED;
        goto out;
    }
    if (rs != RUN_OK) goto out;
    if (o->no_merge || count_complete(pl->jobs, pl->n_jobs, s->shard_dir) < pl->n_jobs) s->results_path[0] = 0;
    if (s->results_path[0] && merge_plan(pl, &r.prov, 0, s, err, errlen)) rs = RUN_ERROR;
out:
    if (r.lock_fd >= 0) close(r.lock_fd);
    free(r.mine);
    return rs;
}
