/* main: the `pmi` command line. One function per command; each parses its own options with
 * getopt_long, reports errors once with context, and picks the exit code:
 *   0 ok, 1 runtime failure, 2 usage or configuration error, 3 interrupted (run again to resume).
 * Usage errors (2) include a missing or malformed argument (numbers are whole base-10 numbers
 * in range: "--jobs 2x" is refused), an argument to a command that takes none, an unknown
 * --format, a config that cannot be read or does not validate, a dataset that is missing or
 * too small for the split at some sweep point (checked before any worker starts), and an input
 * results file (report, plot) that is missing, not a regular file, not a pmi results file of
 * this schema, not complete (complete != 1), without a /summary row, or one that libhdf5
 * crashes on (probe.h: read in a child process first). Failures after the
 * inputs were accepted (training, writing, gnuplot) are runtime failures (1). */
#include "attack.h"
#include "bench.h"
#include "claims.h"
#include "config.h"
#include "data.h"
#include "job.h"
#include "key.h"
#include "nn.h"
#include "outfile.h"
#include "plan.h"
#include "plot.h"
#include "probe.h"
#include "report.h"
#include "runner.h"
#include "store.h"
#include "util.h"
#include "verify.h"
#include "version.h"
#include "weights.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *help;
    int own_help;          /* the command handles --help itself */
    const struct option *opts;  /* its long options (NULL: none), which `pmi completion bash` offers */
} command;

static int cmd_help(int argc, char **argv);
static int cmd_completion(int argc, char **argv);

/* A whole base-10 number in [lo, hi] into *out: "", "2x", "1.5", "1e3" and out-of-range values
 * are refused. Returns 0, or -1 after printing "pmi <cmd>: --<opt> '<text>': expected ...". */
static int parse_number(const char *cmd, const char *opt, const char *text, long lo, long hi, const char *what, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "pmi %s: --%s '%s': expected %s, a whole number in [%ld, %ld]\n", cmd, opt, text, what, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "i/n" with whole numbers 0 <= i < n into *slice, *nslices. Returns 0, or -1. */
static int parse_shard(const char *text, int *slice, int *nslices) {
    char buf[64], *slash, *end;
    if (strlen(text) >= sizeof buf || !(slash = strchr(strcpy(buf, text), '/'))) return -1;
    *slash = 0;
    errno = 0;
    long i = strtol(buf, &end, 10);
    if (!*buf || *end) return -1;
    long n = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || errno || n < 1 || n > 1000000 || i < 0 || i >= n) return -1;
    *slice = (int)i; *nslices = (int)n;
    return 0;
}

/* Checks that a results file given on the command line can be opened as one (exists, is a
 * regular file, is a pmi results file of this schema), is complete (complete = 1) and has
 * rows in /summary. Returns 0, or 2 after printing why. */
static int check_results_path(const char *cmd, const char *path) {
    struct stat st;
    if (stat(path, &st)) { fprintf(stderr, "pmi %s: %s: cannot open: %s\n", cmd, path, strerror(errno)); return 2; }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "pmi %s: %s: cannot open: %s, expected a results file (.h5)\n", cmd, path,
                S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return 2;
    }
    return 0;
}

/* As check_results_file, the file read in a child process already (probed) or not. */
static int check_results_file_probed(const char *cmd, const char *path, int probed) {
    char err[1024];
    if (check_results_path(cmd, path)) return 2;
    /* libhdf5 may crash on a malformed file: read it in a child process first */
    if (!probed && probe_results_file(path, 0, err, sizeof err)) { fprintf(stderr, "pmi %s: %s\n", cmd, err); return 2; }
    int64_t f = store_open(path, err, sizeof err);
    if (f < 0) { fprintf(stderr, "pmi %s: cannot open %s as a results file: %s\n", cmd, path, err); return 2; }
    store_close(f);
    if (!store_shard_complete(path)) {
        fprintf(stderr, "pmi %s: %s: not a complete results file (root attribute complete is not 1): a shard still "
                "being written or a merge that did not finish; run `pmi run` or `pmi merge` again\n", cmd, path);
        return 2;
    }
    store_row *rows = NULL;
    int64_t n = 0;
    if (store_read_summary(path, &rows, &n, err, sizeof err)) { fprintf(stderr, "pmi %s: %s\n", cmd, err); return 2; }
    free(rows);
    if (n == 0) { fprintf(stderr, "pmi %s: %s: /summary holds no rows: no model was evaluated, nothing to show\n", cmd, path); return 2; }
    return 0;
}

static int check_results_file(const char *cmd, const char *path) { return check_results_file_probed(cmd, path, 0); }

/* Refuses (prints why; exit 2 follows) an output path that is one of the n inputs. */
static int check_output(const char *cmd, const char *out, const char *const *in, int n) {
    char err[PATH_MAX * 2 + 128];
    if (!outfile_check_inputs(out, in, n, err, sizeof err)) return 0;
    fprintf(stderr, "pmi %s: %s\n", cmd, err);
    return -1;
}

/* What load_plan checks of the dataset: nothing (merge only reads shards), or the split of
 * every sweep point against the dataset's counts, with a dataset that cannot be read a
 * warning (pmi plan may list the jobs on a machine without the data) or an error (pmi run). */
typedef enum { DATA_SKIP = 0, DATA_WARN, DATA_REQUIRE } data_check;

/* Checks, before anything runs, that the dataset of every sweep point holds that point's split
 * (data_counts, then data_split_check: the arithmetic of the split itself). Synthetic data is
 * generated to the split's size (job.c), so it always fits. Returns 0, or -1 after printing
 * the error. */
static int check_data(const plan *p, data_check mode) {
    if (mode == DATA_SKIP) return 0;
    int need_data = mode == DATA_REQUIRE;
    char err[1024], why[1024];
    const pmi_params *last = NULL;
    int64_t n_train = 0, n_test = 0;
    int counted = 0;
    for (int i = 0; i < p->n_points; i++) {
        const pmi_params *pp = &p->points[i].params;
        if (!strcmp(pp->dataset, "synthetic")) continue;
        const char *at = p->n_points > 1 ? p->points[i].label : "";
        if (!last || strcmp(last->dataset, pp->dataset) || strcmp(last->path, pp->path)) {
            last = pp;
            counted = !data_counts(pp->dataset, pp->path, 0, &n_train, &n_test, why, sizeof why);
            if (!counted) {
                fprintf(stderr, "pmi: %s: data.dataset = %s%s%s: %s\n", need_data ? "error" : "warning", pp->dataset,
                        *pp->path ? ", data.path = " : "", pp->path, why);
                if (need_data) return -1;
            }
        }
        if (!counted) continue;
        if (data_split_check(n_train, n_test, pp->n_train, pp->N, pp->m, pp->n_attacker, pp->independent > 0,
                             pp->holdout, pp->n_test, pp->secret, err, sizeof err)) {
            fprintf(stderr, "pmi: %s%s%sdata.dataset = %s is too small: %s (lower data.n_train, pool.N * pool.m, "
                    "data.n_attacker, pmi.holdout or data.n_test; pmi.independent > 0 takes another n_train)\n",
                    *at ? "sweep point " : "", at, *at ? ": " : "", pp->dataset, err);
            return -1;
        }
    }
    return 0;
}

/* Loads config files (later files overlay earlier ones), applies -s overrides, validates and
 * builds the plan; the config is not needed after that. Then checks the dataset against the
 * split of every sweep point (check_data). Returns NULL after printing the error. */
static plan *load_plan(char **paths, int npaths, char **sets, int nsets, data_check data) {
    char err[1024];
    cfg *c = cfg_create();
    plan *p = NULL;
    if (!c) { fprintf(stderr, "pmi: out of memory\n"); return NULL; }
    int bad = 0;
    for (int i = 0; !bad && i < npaths; i++) bad = cfg_load(c, paths[i], err, sizeof err);
    for (int i = 0; !bad && i < nsets; i++) bad = cfg_override(c, sets[i], err, sizeof err);
    if (!bad) bad = cfg_validate(c, err, sizeof err);
    if (!bad) bad = plan_build(c, &p, err, sizeof err);
    cfg_free(c);
    if (bad) { fprintf(stderr, "pmi: %s\n", err); return NULL; }
    if (check_data(p, data)) { plan_free(p); return NULL; }
    return p;
}

/* Shared option parsing for commands that take <config.ini> [-s sec.key=val ...]. */
typedef struct { char *sets[64]; int nsets; } set_list;
static int add_set(set_list *s, char *v) {
    if (s->nsets == 64) { fprintf(stderr, "pmi: too many -s options (max 64)\n"); return -1; }
    s->sets[s->nsets++] = v;
    return 0;
}

/* --gpus all | i,j,...: distinct indices in [0, RUNNER_MAX_GPUS). */
static int parse_gpus(const char *s, runner_options *o) {
    if (!strcmp(s, "all")) { o->ngpus = -1; return 0; }
    o->ngpus = 0;
    for (const char *q = s;; q++) {
        char *end;
        errno = 0;
        long g = strtol(q, &end, 10);
        if (end == q || errno || g < 0 || g >= RUNNER_MAX_GPUS || (*end && *end != ',') || o->ngpus == RUNNER_MAX_GPUS) return -1;
        for (int i = 0; i < o->ngpus; i++) if (o->gpus[i] == g) return -1;
        o->gpus[o->ngpus++] = (int)g;
        if (!*end) return 0;
        q = end;
    }
}

static const struct option run_longopts[] = {
    {"set", required_argument, 0, 's'}, {"shard", required_argument, 0, 'S'},
    {"force", no_argument, 0, 'f'}, {"threads", required_argument, 0, 't'},
    {"no-merge", no_argument, 0, 'M'}, {"jobs", required_argument, 0, 'j'}, {"no-group", no_argument, 0, 'G'},
    {"batch", required_argument, 0, 'B'}, {"gpus", required_argument, 0, 'g'}, {"trace", required_argument, 0, 'T'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_run(int argc, char **argv) {
    set_list sl = {0};
    runner_options o = {.slice = 0, .nslices = 1};
    int threads_set = 0;
    for (int ch; (ch = getopt_long(argc, argv, "s:S:ft:Mj:GB:g:T:h", run_longopts, NULL)) != -1;) {
        switch (ch) {
        case 's': if (add_set(&sl, optarg)) return 2; break;
        case 'S':
            if (parse_shard(optarg, &o.slice, &o.nslices)) {
                fprintf(stderr, "pmi run: --shard '%s': expected i/n with 0 <= i < n\n", optarg);
                return 2;
            }
            break;
        case 'f': o.force = 1; break;
        case 't':
            if (parse_number("run", "threads", optarg, 0, 1024, "libtorch threads (0: all cores)", &o.threads)) return 2;
            o.workers = o.workers ? o.workers : 1;
            threads_set = 1;
            break;
        case 'j':
            if (parse_number("run", "jobs", optarg, 1, 64, "a number of worker processes", &o.workers)) return 2;
            break;
        case 'M': o.no_merge = 1; break;
        case 'G': o.no_group = 1; break;
        case 'B':
            if (parse_number("run", "batch", optarg, 1, 4096, "a number of models", &o.batch)) return 2;
            break;
        case 'g':
            if (parse_gpus(optarg, &o)) {
                fprintf(stderr, "pmi run: --gpus '%s': expected all or a comma list of distinct GPU indices 0-%d "
                        "(at most %d)\n", optarg, RUNNER_MAX_GPUS - 1, RUNNER_MAX_GPUS);
                return 2;
            }
            break;
        case 'T': o.trace = optarg; break;
        case 'h': return cmd_help(2, (char *[]){"help", "run"}), 0;
        default: return 2;
        }
    }
    if (optind >= argc) { fprintf(stderr, "pmi run: expected a config file (pmi run --help)\n"); return 2; }
    int trace_existed = 0;
    if (o.trace) {   /* one process of jobs writes it; the file must be writable before any job runs */
        if (o.workers > 1 || o.ngpus || o.nslices > 1) {
            fprintf(stderr, "pmi run: --trace profiles one process's first attack batch: it does not go with --jobs n > 1, "
                    "--gpus or --shard\n");
            return 2;
        }
        trace_existed = access(o.trace, F_OK) == 0;
        FILE *f = fopen(o.trace, "a");
        if (!f) { fprintf(stderr, "pmi run: --trace %s: cannot write: %s\n", o.trace, strerror(errno)); return 2; }
        fclose(f);
        if (!trace_existed) remove(o.trace);
    }
    if (threads_set && o.workers > 1) {
        fprintf(stderr, "pmi run: --jobs %d and --threads %d: choose one (worker processes of one thread each, or one process of n threads)\n",
                o.workers, o.threads);
        return 2;
    }
    if (o.workers == 1 && !threads_set) o.threads = 1;   /* --jobs 1: one worker of one thread, as --jobs says */
    if (o.trace && !o.workers) o.workers = 1;            /* one process, all cores (on a GPU: in this process) */
    plan *p = load_plan(argv + optind, argc - optind, sl.sets, sl.nsets, DATA_REQUIRE);
    if (!p) return 2;
    runner_install_signals();
    runner_summary s;
    char err[1024];
    runner_status rs = runner_run(p, &o, &s, err, sizeof err);
    plan_free(p);
    if (rs == RUN_ERROR || rs == RUN_BUSY || rs == RUN_CHANGED) { fprintf(stderr, "pmi run: %s\n", err); return rs == RUN_ERROR ? 1 : 2; }
    if (rs == RUN_INTERRUPTED) return 3;
    char copied[96] = "";
    if (s.jobs_copied) snprintf(copied, sizeof copied, ", %d copied from the same model trained before", s.jobs_copied);
    fprintf(stderr, "pmi: %d jobs done (%d trained%s, %d already complete); shards in %s\n",
            s.jobs_done, s.jobs_trained, copied, s.jobs_skipped, s.shard_dir);
    if (s.results_path[0]) printf("%s\n", s.results_path);
    if (o.trace && !trace_existed && access(o.trace, F_OK) != 0)
        fprintf(stderr, "pmi run: --trace: no attack batch ran (no attack settings, or every job was complete): no trace written\n");
    return 0;
}

/* pmi plan's last lines: where the results go, how many jobs are already complete there, and
 * the work left: models to train, training sample-epochs (an owner's set holds D_k repeat
 * times), attacked evaluations. */
/* What is left of plan p in shards: jobs with a complete shard of this configuration (done) or of
 * another (other), and the training sample-epochs of the jobs not done. */
typedef struct { int done, other; double sample_epochs; } plan_left;

/* Reads untrusted HDF5 files: call it in a child (plan_left_get). */
static plan_left plan_left_count(const plan *p, const char *shards) {
    char path[8192];
    plan_left l = {0, 0, 0};
    for (int j = 0; j < p->n_jobs; j++) {
        const plan_job *job = &p->jobs[j];
        if (!job_shard_path(shards, job, path, sizeof path, NULL, 0) && store_shard_complete(path)) {
            char *config = store_read_attr(path, "config"), hash[17] = "";
            if (config) plan_config_hash(config, hash);
            free(config);
            if (!strcmp(hash, p->config_hash)) { l.done++; continue; }
            l.other++;
        }
        const pmi_params *q = plan_params(p, job);
        l.sample_epochs += (double)q->epochs * (q->n_train + (job->role == ROLE_OWNER ? q->repeat * q->m : 0));
    }
    return l;
}

/* plan_left_count in a child process: libhdf5 can crash on a malformed file (probe.h), which
 * must not take `pmi plan` down. 0, or -1 when the child died (*l then counts nothing done). */
static int plan_left_get(const plan *p, const char *shards, plan_left *l) {
    int fd[2], status = 0;
    fflush(stdout);
    if (!pipe(fd)) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            plan_left v = plan_left_count(p, shards);
            _exit(write(fd[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
        }
        close(fd[1]);
        ssize_t got = pid > 0 ? read(fd[0], l, sizeof *l) : -1;
        close(fd[0]);
        if (pid > 0) waitpid(pid, &status, 0);
        if (got == (ssize_t)sizeof *l && WIFEXITED(status) && !WEXITSTATUS(status)) return 0;
    }
    *l = (plan_left){0, 0, 0};
    for (int j = 0; j < p->n_jobs; j++) {
        const pmi_params *q = plan_params(p, &p->jobs[j]);
        l->sample_epochs += (double)q->epochs * (q->n_train + (p->jobs[j].role == ROLE_OWNER ? q->repeat * q->m : 0));
    }
    return -1;
}

static void print_plan_estimate(const plan *p) {
    char shards[4096], merged[4096], err[256];
    if (runner_paths(&p->points[0].params, shards, sizeof shards, merged, sizeof merged, err, sizeof err)) return;
    plan_left l;
    int bad = plan_left_get(p, shards, &l);
    printf("# output: %.*s/ (shards in %s, merged into %s); %d of %d jobs already complete there%s\n",
           (int)(strlen(shards) - strlen("/shards")), shards, shards, merged, l.done, p->n_jobs,
           bad ? " (a shard there could not be read: pmi run will say which)" : "");
    if (l.other)
        printf("# %d shard%s there %s written by another configuration: pmi run refuses to mix them (--force retrains, or "
               "choose another experiment.name)\n", l.other, l.other == 1 ? "" : "s", l.other == 1 ? "was" : "were");
    printf("# estimate: %d model%s to train, %.3g M training sample-epochs, %d attacked evaluations\n", p->n_jobs - l.done,
           p->n_jobs - l.done == 1 ? "" : "s", l.sample_epochs / 1e6, (p->n_jobs - l.done) * p->n_attacks);
}

static const struct option plan_longopts[] = {{"set", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_plan(int argc, char **argv) {
    set_list sl = {0};
    for (int ch; (ch = getopt_long(argc, argv, "s:h", plan_longopts, NULL)) != -1;) {
        if (ch == 's') { if (add_set(&sl, optarg)) return 2; }
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "plan"}), 0;
        else return 2;
    }
    if (optind >= argc) { fprintf(stderr, "pmi plan: expected a config file\n"); return 2; }
    plan *p = load_plan(argv + optind, argc - optind, sl.sets, sl.nsets, DATA_WARN);
    if (!p) return 2;
    printf("# %d jobs, each evaluated un-attacked and under %d attack settings\n", p->n_jobs, p->n_attacks);
    printf("# job_id\tpoint\tseed\trole\treplica\tsweep\n");
    for (int j = 0; j < p->n_jobs; j++) {
        const plan_job *job = &p->jobs[j];
        printf("%s\t%d\t%d\t%s\t%d\t%s\n", job->id, job->point, job->seed,
               plan_roles[job->role].name, job->replica, p->points[job->point].label);
    }
    for (int i = 0; i < p->n_attacks; i++) printf("# attack %s: %s %s\n", p->attacks[i].name, p->attacks[i].type, p->attacks[i].label);
    print_plan_estimate(p);
    plan_free(p);
    return 0;
}

static const struct option merge_longopts[] = {{"set", required_argument, 0, 's'}, {"partial", no_argument, 0, 'P'},
                                     {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_merge(int argc, char **argv) {
    set_list sl = {0};
    int partial = 0;
    for (int ch; (ch = getopt_long(argc, argv, "s:h", merge_longopts, NULL)) != -1;) {
        if (ch == 's') { if (add_set(&sl, optarg)) return 2; }
        else if (ch == 'P') partial = 1;
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "merge"}), 0;
        else return 2;
    }
    if (optind >= argc) { fprintf(stderr, "pmi merge: expected the config file(s) of the run (pmi merge --help)\n"); return 2; }
    plan *p = load_plan(argv + optind, argc - optind, sl.sets, sl.nsets, DATA_SKIP);
    if (!p) return 2;
    runner_summary s;
    char err[2048];
    runner_status rs = runner_merge(p, partial, &s, err, sizeof err);
    plan_free(p);
    if (rs != RUN_OK) { fprintf(stderr, "pmi merge: %s\n", err); return rs == RUN_BUSY ? 2 : 1; }
    printf("%s\n", s.results_path);
    return 0;
}

static const struct option report_longopts[] = {{"format", required_argument, 0, 'f'}, {"output", required_argument, 0, 'o'},
                                     {"score", required_argument, 0, 'S'}, {"decision", required_argument, 0, 'D'},
                                     {"store", no_argument, 0, 'W'}, {"markdown-report", required_argument, 0, 'R'},
                                     {"plots", required_argument, 0, 'P'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_report(int argc, char **argv) {
    report_options o = report_default_options();
    int store = 0;
    const char *md_report = NULL, *plots = NULL;
    for (int ch; (ch = getopt_long(argc, argv, "f:o:h", report_longopts, NULL)) != -1;) {
        if (ch == 'f') {
            if (report_format_parse(optarg, &o.format)) { fprintf(stderr, "pmi report: --format '%s': expected md, csv, latex or json\n", optarg); return 2; }
        } else if (ch == 'o') o.dir = optarg;
        else if (ch == 'S') o.score = optarg;
        else if (ch == 'D') o.decide = optarg;
        else if (ch == 'W') store = 1;
        else if (ch == 'R') md_report = optarg;
        else if (ch == 'P') plots = optarg;
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "report"}), 0;
        else return 2;
    }
    char err[1024];
    if ((md_report || store) && (o.format != REPORT_MD || o.dir || (md_report && (store || o.score || o.decide)))) {
        fprintf(stderr, "pmi report: %s takes no %s\n", md_report ? "--markdown-report" : "--store",
                md_report && store ? "--store" : o.format != REPORT_MD || o.dir ? "--format or -o" : "--score or --decision");
        return 2;
    }
    if (md_report) {   /* the reproduction report: every claim's verdict, tables and figures */
        if (optind >= argc) { fprintf(stderr, "pmi report: --markdown-report: expected one or more results files\n"); return 2; }
        /* the files read in their children side by side, then checked one by one */
        for (int i = optind; i < argc; i++) if (check_results_path("report", argv[i])) return 2;
        if (probe_results_files((const char *const *)argv + optind, argc - optind, err, sizeof err)) {
            fprintf(stderr, "pmi report: %s\n", err);
            return 2;
        }
        for (int i = optind; i < argc; i++) if (check_results_file_probed("report", argv[i], 1)) return 2;
        if (check_output("report", md_report, (const char *const *)argv + optind, argc - optind)) return 2;
        if (claims_write_report((const char *const *)argv + optind, argc - optind, plots, md_report, err, sizeof err)) {
            fprintf(stderr, "pmi report: %s\n", err);
            return 1;
        }
        fprintf(stderr, "pmi report: wrote %s\n", md_report);
        return 0;
    }
    if (plots) { fprintf(stderr, "pmi report: --plots is for --markdown-report\n"); return 2; }
    if (o.dir && o.format != REPORT_CSV) { fprintf(stderr, "pmi report: -o is for --format csv (md, latex and json go to stdout)\n"); return 2; }
    if (optind + 1 != argc) { fprintf(stderr, "pmi report: expected one results file\n"); return 2; }
    if (check_results_file("report", argv[optind])) return 2;
    if (store) {
        int rc = report_store(argv[optind], &o, err, sizeof err);
        if (rc) { fprintf(stderr, "pmi report: %s\n", err); return rc == REPORT_ERR_USAGE ? 2 : 1; }
        fprintf(stderr, "pmi report: tables models, settings, calibration and fidelity stored under /report of %s\n", argv[optind]);
        return 0;
    }
    int rc = report_write(argv[optind], &o, stdout, err, sizeof err);
    if (rc) { fprintf(stderr, "pmi report: %s\n", err); return rc == REPORT_ERR_USAGE ? 2 : 1; }
    return 0;
}

static const struct option plot_longopts[] = {{"output", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
                                     {"size", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_plot(int argc, char **argv) {
    const char *dir = NULL;
    plot_params pp = plot_default_params();
    for (int ch; (ch = getopt_long(argc, argv, "o:f:s:h", plot_longopts, NULL)) != -1;) {
        if (ch == 'o') dir = optarg;
        else if (ch == 'f') pp.format = optarg;
        else if (ch == 's') pp.size = optarg;
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "plot"}), 0;
        else return 2;
    }
    if (strcmp(pp.format, "png") && strcmp(pp.format, "pdf") && strcmp(pp.format, "svg")) {
        fprintf(stderr, "pmi plot: --format '%s': expected png, pdf or svg\n", pp.format);
        return 2;
    }
    if (optind + 1 != argc) { fprintf(stderr, "pmi plot: expected one results file\n"); return 2; }
    if (check_results_file("plot", argv[optind])) return 2;
    char err[2048], *def = NULL;
    if (!dir) {  /* default: plots/<experiment folder name> */
        const char *path = argv[optind], *end = strrchr(path, '/'), *start = end;
        while (start && start > path && start[-1] != '/') start--;
        const char *name = end && start ? start : "results";
        size_t n = end && start ? (size_t)(end - start) : strlen(name);
        def = util_malloc(n + 7);
        memcpy(def, "plots/", 6); memcpy(def + 6, name, n); def[n + 6] = 0;
        dir = def;
    }
    int rc = plot_render_ex(argv[optind], dir, &pp, stderr, err, sizeof err);
    if (rc) fprintf(stderr, "pmi plot: %s\n", err);
    free(def);
    return rc ? 1 : 0;
}

static const struct option bench_longopts[] = {
    {"arch", required_argument, 0, 'a'}, {"batch", required_argument, 0, 'b'}, {"epochs", required_argument, 0, 'e'},
    {"warmup", required_argument, 0, 'w'}, {"n", required_argument, 0, 'n'}, {"device", required_argument, 0, 'd'},
    {"width", required_argument, 0, 'W'}, {"lr", required_argument, 0, 'l'}, {"models", required_argument, 0, 'k'},
    {"precision", required_argument, 0, 'p'}, {"channels-last", no_argument, 0, 'C'}, {"trace", required_argument, 0, 't'},
    {"threads", required_argument, 0, 'T'}, {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};
static int cmd_bench(int argc, char **argv) {
    bench_opts o = bench_default_opts();
    for (int ch; (ch = getopt_long(argc, argv, "a:b:e:w:n:d:W:l:k:p:Ct:T:h", bench_longopts, NULL)) != -1;) {
        switch (ch) {
        case 'a': o.arch = optarg; break;
        case 'b': if (parse_number("bench", "batch", optarg, 1, 1 << 20, "a batch size", &o.batch)) return 2; break;
        case 'e': if (parse_number("bench", "epochs", optarg, 1, 10000, "a number of epochs", &o.epochs)) return 2; break;
        case 'w': if (parse_number("bench", "warmup", optarg, 0, 10000, "a number of epochs", &o.warmup)) return 2; break;
        case 'n': if (parse_number("bench", "n", optarg, 1, 100000000, "a number of samples", &o.n)) return 2; break;
        case 'W': if (parse_number("bench", "width", optarg, 0, 4096, "a width (0: the default)", &o.width)) return 2; break;
        case 'k': if (parse_number("bench", "models", optarg, 1, 64, "a number of models", &o.models)) return 2; break;
        case 'T': if (parse_number("bench", "threads", optarg, 0, 1024, "a number of threads (0: every core)", &o.threads)) return 2; break;
        case 'l': {
            char *end;
            o.lr = strtod(optarg, &end);
            if (!*optarg || *end || !(o.lr > 0 && o.lr <= 10)) {
                fprintf(stderr, "pmi bench: --lr '%s': expected a learning rate in (0, 10]\n", optarg);
                return 2;
            }
            break;
        }
        case 'C': o.channels_last = 1; break;
        case 't': o.trace = optarg; break;
        case 'p':
            if (nn_precision_parse(optarg, &o.precision)) {
                fprintf(stderr, "pmi bench: --precision '%s': expected fp32 or bf16\n", optarg);
                return 2;
            }
            break;
        case 'd':
            if (nn_device_request_parse(optarg, &o.device)) {
                fprintf(stderr, "pmi bench: --device '%s': expected one of", optarg);
                for (int i = 0; nn_device_request_name(i); i++) fprintf(stderr, "%s%s", i ? ", " : " ", nn_device_request_name(i));
                fprintf(stderr, "\n");
                return 2;
            }
            break;
        case 'h':
            printf("usage: pmi bench [--arch cnn] [--batch 128] [--epochs 3] [--warmup 1] [--n 60000] [--device auto] [--models k]\n"
                   "                 [--precision fp32|bf16] [--channels-last] [--trace FILE] [--threads n]\n"
                   "  trains on Fashion-MNIST resident on the device (SGD, momentum 0.9) and prints images/s;\n"
                   "  bf16 autocasts the forward pass (scripts/bench/bench_ref.py --precision bf16 does the same);\n"
                   "  --channels-last trains in NHWC layout (bench_ref.py --channels-last);\n"
                   "  --threads n: libtorch threads (default 0: every core; 1 is what each CPU worker of pmi run has);\n"
                   "  --trace FILE: after the timing, one more epoch (of all --models) under torch's profiler, written to FILE as a\n"
                   "  Chrome trace (bench_ref.py --trace does the same; scripts/bench/trace-compare.py compares two);\n"
                   "  scripts/bench/bench-gpu.sh runs it beside scripts/bench/bench_ref.py (PyTorch from Python)\n");
            return 0;
        default: return 2;
        }
    }
    if (o.batch < 1 || o.epochs < 1 || o.n < 1 || o.models < 1) { fprintf(stderr, "pmi bench: --batch, --epochs and --n must be positive\n"); return 2; }
    char err[1024];
    if (bench_train(&o, stdout, err, sizeof err)) { fprintf(stderr, "pmi bench: %s\n", err); return 1; }
    return 0;
}

/* Checks that path is an existing regular file; prints why not (exit 2 follows). */
static int check_input_file(const char *cmd, const char *what, const char *path) {
    struct stat st;
    if (stat(path, &st)) { fprintf(stderr, "pmi %s: %s %s: cannot open: %s\n", cmd, what, path, strerror(errno)); return -1; }
    if (!S_ISREG(st.st_mode)) { fprintf(stderr, "pmi %s: %s %s: not a regular file\n", cmd, what, path); return -1; }
    return 0;
}

static const struct option export_longopts[] = {{"job", required_argument, 0, 'j'}, {"eval", required_argument, 0, 'e'},
                                     {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_export(int argc, char **argv) {
    const char *job = NULL, *out = NULL;
    int ev = 0;
    for (int ch; (ch = getopt_long(argc, argv, "j:e:o:h", export_longopts, NULL)) != -1;) {
        if (ch == 'j') job = optarg;
        else if (ch == 'e') { if (parse_number("export", "eval", optarg, 0, 1000000, "an evaluation index (0: the trained model)", &ev)) return 2; }
        else if (ch == 'o') out = optarg;
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "export"}), 0;
        else return 2;
    }
    if (optind + 1 != argc || !job || !out) { fprintf(stderr, "pmi export: expected <results.h5> --job <id> -o <file.safetensors>\n"); return 2; }
    if (check_results_file("export", argv[optind]) || check_output("export", out, (const char *const *)argv + optind, 1)) return 2;
    weights w;
    char err[1024];
    if (store_read_model(argv[optind], job, ev, &w, err, sizeof err)) { fprintf(stderr, "pmi export: %s\n", err); return 2; }
    int rc = weights_save(&w, out, err, sizeof err);
    weights_free(&w);
    if (rc) { fprintf(stderr, "pmi export: %s\n", err); return 1; }
    printf("%s\n", out);
    return 0;
}

static const struct option key_longopts[] = {{"job", required_argument, 0, 'j'}, {"output", required_argument, 0, 'o'},
                                     {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_key(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return cmd_help(2, (char *[]){"help", "key"}), 0;
    if (argc < 2 || strcmp(argv[1], "export")) {
        fprintf(stderr, "pmi key: expected `pmi key export <results.h5> --job <owner job> -o owner.key.h5`\n");
        return 2;
    }
    argc--; argv++;
    const char *job = NULL, *out = NULL;
    for (int ch; (ch = getopt_long(argc, argv, "j:o:h", key_longopts, NULL)) != -1;) {
        if (ch == 'j') job = optarg;
        else if (ch == 'o') out = optarg;
        else if (ch == 'h') return cmd_help(2, (char *[]){"help", "key"}), 0;
        else return 2;
    }
    if (optind + 1 != argc || !job || !out) { fprintf(stderr, "pmi key export: expected <results.h5> --job <owner job> -o <owner.key.h5>\n"); return 2; }
    if (check_results_file("key export", argv[optind]) || check_output("key export", out, (const char *const *)argv + optind, 1)) return 2;
    pmi_key k;
    char err[2048];
    if (key_export(argv[optind], job, &k, err, sizeof err)) { fprintf(stderr, "pmi key export: %s\n", err); return 2; }
    for (int q = 0; q < k.settings.n_kinds; q++)   /* the pool audit (pmi.h): loud, before anyone is accused */
        if (pmi_pool_unsafe((pmi_score_kind)k.settings.kinds[q], k.pool_audit[q]))
            fprintf(stderr, "pmi key export: WARNING: this pool is unsafe for the raw %s score: D_k stands out on the reference "
                    "models, which never saw it (audit p = %.3g < %g); verify refuses its pool evidence and decides on the "
                    "dataset evidence%s\n", pmi_score_name((pmi_score_kind)k.settings.kinds[q]), k.pool_audit[q], PMI_AUDIT_ALPHA,
                    k.data_n ? "" : " (none in this key: nothing will be claimed on this kind; list a calibrated kind first)");
    if (k.data_n)
        fprintf(stderr, "pmi key export: the key holds the dataset evidence: %d + %d samples (%.1f MB of pixels)\n", k.data_n,
                k.data_n, 2.0 * k.data_n * k.c * k.h * k.w * sizeof(float) / 1e6);
    int rc = key_write(out, &k, err, sizeof err);
    key_free(&k);
    if (rc) { fprintf(stderr, "pmi key export: %s\n", err); return 1; }
    fprintf(stderr, "pmi key export: %s holds the secret index and the pool: keep it private\n", out);
    printf("%s\n", out);
    return 0;
}

/* pmi verify's exit codes: 0 claimed, 1 not claimed, 2 usage or input error, 4 the record
 * (or the verdict on the standard output) could not be written. */
static const struct option verify_longopts[] = {
    {"key", required_argument, 0, 'k'}, {"weights", required_argument, 0, 'w'}, {"arch", required_argument, 0, 'a'},
    {"width", required_argument, 0, 'W'}, {"model", required_argument, 0, 'm'}, {"logits", required_argument, 0, 'l'},
    {"input", required_argument, 0, 'i'}, {"device", required_argument, 0, 'd'}, {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
static int cmd_verify(int argc, char **argv) {
    const char *key_path = NULL, *record = NULL;
    verify_suspect s = {0};
    nn_device_request want = NN_WANT_CPU;
    for (int ch; (ch = getopt_long(argc, argv, "k:o:h", verify_longopts, NULL)) != -1;) {
        switch (ch) {
        case 'k': key_path = optarg; break;
        case 'w': s.weights = optarg; break;
        case 'a': s.arch = optarg; break;
        case 'W': if (parse_number("verify", "width", optarg, 1, 4096, "a width", &s.width)) return 2; break;
        case 'm': s.script = optarg; break;
        case 'l': s.logits = optarg; break;
        case 'i':
            if (strcmp(optarg, "raw") && strcmp(optarg, "unit") && strcmp(optarg, "standard")) {
                fprintf(stderr, "pmi verify: --input '%s': expected raw, unit or standard\n", optarg);
                return 2;
            }
            s.input = optarg;
            break;
        case 'd':
            if (nn_device_request_parse(optarg, &want)) { fprintf(stderr, "pmi verify: --device '%s': expected auto, cpu or cuda\n", optarg); return 2; }
            break;
        case 'o': record = optarg; break;
        case 'h': return cmd_help(2, (char *[]){"help", "verify"}), 0;
        default: return 2;
        }
    }
    if (optind != argc) { fprintf(stderr, "pmi verify: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!key_path) { fprintf(stderr, "pmi verify: expected --key owner.key.h5\n"); return 2; }
    if (!!s.weights + !!s.script + !!s.logits != 1) {
        fprintf(stderr, "pmi verify: give exactly one suspect: --weights file.safetensors, --model file.pt or --logits file\n");
        return 2;
    }
    if ((s.arch || s.width) && !s.weights) { fprintf(stderr, "pmi verify: --arch and --width go with --weights\n"); return 2; }
    if (s.input && s.logits) { fprintf(stderr, "pmi verify: --input does not apply to --logits (the outputs are given)\n"); return 2; }
    const char *suspect = s.weights ? s.weights : s.script ? s.script : s.logits;
    if (check_input_file("verify", "key", key_path) || check_input_file("verify", "suspect", suspect) ||
        (record && check_output("verify", record, (const char *const *)(const char *[]){key_path, suspect}, 2))) return 2;
    struct stat kst;
    if (!stat(key_path, &kst) && (kst.st_mode & 077))
        fprintf(stderr, "pmi verify: warning: the key %s has mode %03o: others can read the secret (chmod 600 it)\n",
                key_path, (unsigned)(kst.st_mode & 0777));
    nn_set_threads(1);   /* one forward pass; one thread gives the run's numbers (a CPU worker has one) */
    if (nn_device_resolve(want, &s.dev, NULL, 0) != NN_OK) { fprintf(stderr, "pmi verify: %s\n", nn_last_error()); return 2; }
    pmi_key k;
    verify_result r;
    char err[2048];
    if (key_read(key_path, &k, err, sizeof err)) { fprintf(stderr, "pmi verify: %s\n", err); return 2; }
    int rc = verify_run(&k, &s, &r, err, sizeof err);
    if (rc) { fprintf(stderr, "pmi verify: %s\n", err); key_free(&k); return 2; }
    FILE *vout = record && !strcmp(record, "-") ? stderr : stdout;   /* -o -: stdout holds the record alone */
    verify_print(vout, &k, &r);
    int out_bad = fflush(vout) || ferror(vout);   /* exit 1 would read as a verdict: 4, as for the record */
    if (out_bad) fprintf(stderr, "pmi verify: cannot write the verdict to the standard output: %s\n", strerror(errno ? errno : EIO));
    clearerr(vout);
    rc = record ? verify_write_record(record, &k, &r, err, sizeof err) : 0;
    key_free(&k);
    if (rc) { fprintf(stderr, "pmi verify: %s\n", err); return 4; }
    return out_bad ? 4 : r.claimed ? 0 : 1;
}

/* Commands without arguments (config takes --help) refuse any: a typo must not pass silently. */
static int no_arguments(const char *cmd, int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(cmd, "config") || (strcmp(argv[i], "--help") && strcmp(argv[i], "-h"))) {
            fprintf(stderr, "pmi %s: unexpected argument '%s' (usage: pmi %s%s)\n", cmd, argv[i], cmd,
                    strcmp(cmd, "config") ? "" : " --help");
            return -1;
        }
    return 0;
}

static int cmd_config(int argc, char **argv) {
    if (no_arguments("config", argc, argv)) return 2;
    cfg_print_help(stdout);
    return 0;
}

static int cmd_attacks(int argc, char **argv) {
    if (no_arguments("attacks", argc, argv)) return 2;
    attack_print_help(stdout);
    return 0;
}

/* pmi info [--json]: versions, the device auto resolves to, the architectures; --json as one
 * object {"pmi_version", "git_commit", "torch_version", "results_schema", "device" (null when
 * none resolves), "architectures": [...], "score_kinds": [...]}. */
static const struct option info_longopts[] = {{"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
static int cmd_info(int argc, char **argv) {
    int json = 0;
    opterr = 0;   /* an unknown option is reported as an unexpected argument, as before */
    for (int ch; (ch = getopt_long(argc, argv, "", info_longopts, NULL)) != -1;) {
        if (ch != 'j') { fprintf(stderr, "pmi info: unexpected argument '%s' (usage: pmi info [--json])\n", argv[optind - 1]); return 2; }
        json = 1;
    }
    opterr = 1;
    if (optind < argc) { fprintf(stderr, "pmi info: unexpected argument '%s' (usage: pmi info [--json])\n", argv[optind]); return 2; }
    nn_device dev;
    char name[128];
    nn_set_threads(0);
    int have_dev = nn_device_resolve(NN_WANT_AUTO, &dev, name, sizeof name) == NN_OK;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "pmi_version", pmi_version);
        cJSON_AddStringToObject(j, "git_commit", pmi_git_commit);
        cJSON_AddStringToObject(j, "torch_version", nn_torch_version());
        cJSON_AddNumberToObject(j, "results_schema", STORE_SCHEMA_VERSION);
        cJSON_AddBoolToObject(j, "cuda_kernels", nn_cuda_kernels());
        cJSON_AddItemToObject(j, "device", have_dev ? cJSON_CreateString(name) : cJSON_CreateNull());
        cJSON *a = cJSON_AddArrayToObject(j, "architectures");
        for (int i = 0; i < nn_arch_count(); i++) cJSON_AddItemToArray(a, cJSON_CreateString(nn_arch_name(i)));
        a = cJSON_AddArrayToObject(j, "score_kinds");
        for (int i = 0; i < SCORE_COUNT; i++) cJSON_AddItemToArray(a, cJSON_CreateString(pmi_score_name((pmi_score_kind)i)));
        char *text = cJSON_Print(j);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(j);
        return 0;
    }
    printf("pmi %s (commit %s), libtorch %s, results schema %d\n", pmi_version, pmi_git_commit, nn_torch_version(), STORE_SCHEMA_VERSION);
    if (have_dev) printf("device (auto): %s\n", name);
    if (nn_cuda_kernels()) printf("CUDA kernels: the fused ensembles' small convolutions and the training steps' random draws "
                                  "(framework/nn_cuda.cu; PMI_GCONV=0 and PMI_DEVICE_DRAWS=0 turn them off)\n");
    printf("architectures:");
    for (int i = 0; i < nn_arch_count(); i++) printf(" %s", nn_arch_name(i));
    printf("\n");
    return 0;
}

static const command commands[] = {
    {"run", cmd_run, "pmi run <config.ini> [overlay.ini ...] [-s sec.key=val ...] [--shard i/n] [--jobs n | --threads n | --gpus all|i,j] [--force] [--no-merge] [--no-group] [--batch n] [--trace FILE]",
     "train and verify every job of the experiment; resumes from complete shards; merges at the end", 1, run_longopts},
    {"plan", cmd_plan, "pmi plan <config.ini> [overlay.ini ...] [-s sec.key=val ...]", "list the jobs and attack settings without running", 1, plan_longopts},
    {"merge", cmd_merge, "pmi merge <config.ini> [more.ini ...] [-s sec.key=val ...] [--partial]",
     "join the shards of a run's plan into <output>/<name>/results.h5 (every shard complete and of that config; --partial: those that are)", 1, merge_longopts},
    {"report", cmd_report, "pmi report <results.h5> [--format md|latex|json | --format csv -o dir | --store] [--score kind] [--decision rank|perm|welch|mw]\n"
     "       pmi report --markdown-report REPORT.md [--plots dir] <results.h5> ...",
     "the paper-style tables: Markdown, LaTeX or JSON to stdout, one tidy CSV file per table in dir (created with its parents; "
     "csv and json hold every score kind unless --score), or (--store) into the file's /report; --markdown-report: a "
     "verdict per claim of the paper, the tables and the figures of dir/<experiment>/", 1, report_longopts},
    {"plot", cmd_plot, "pmi plot <results.h5> [-o dir] [--format png|pdf|svg] [--size page|column]",
     "robustness summary and curves, score distributions, ROC, fidelity and pool-ablation figures (gnuplot); --size column: 3.5 in wide", 1, plot_longopts},
    {"export", cmd_export, "pmi export <results.h5> --job <id> [--eval i] -o <file.safetensors>",
     "a stored model (save_models) as safetensors with PyTorch names, buffers and input metadata; --eval i: the model of evaluation i (0: as trained)", 1, export_longopts},
    {"key", cmd_key, "pmi key export <results.h5> --job <owner job> -o <owner.key.h5>",
     "the owner's key (pool samples, k, decision settings): everything pmi verify needs; it is the secret", 1, key_longopts},
    {"verify", cmd_verify, "pmi verify --key <owner.key.h5> (--weights f.safetensors [--arch a] [--width w] | --model f.pt | --logits f.csv|f.h5) [--input raw|unit|standard] [--device cpu|cuda|auto] [-o record.json | -o -]",
     "judge a suspect model with an owner key; -o -: the JSON record on stdout (the verdict text on stderr); exit 0 claimed, "
     "1 not claimed, 2 usage or input error, 4 record not written", 1, verify_longopts},
    {"config", cmd_config, "pmi config --help", "every configuration key: type, default, range, help", 1, NULL},
    {"attacks", cmd_attacks, "pmi attacks", "every attack type and its parameters", 0, NULL},
    {"bench", cmd_bench, "pmi bench [--arch a] [--batch b] [--epochs e] [--device d]",
     "training throughput of pmi's training path (images/s), for scripts/bench/bench-gpu.sh", 1, bench_longopts},
    {"info", cmd_info, "pmi info [--json]", "versions, device, architectures (--json: as one JSON object)", 0, info_longopts},
    {"completion", cmd_completion, "pmi completion bash", "a bash completion script of every command and option (make install puts it "
     "in share/bash-completion/completions/pmi; or: source <(./pmi completion bash))", 0, NULL},
};
static const int n_commands = sizeof commands / sizeof commands[0];

/* pmi completion bash: a bash completion script made from the commands table and each
 * command's long options, so that it never lists an option the parser does not take. */
static int cmd_completion(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "bash")) { fprintf(stderr, "pmi completion: expected `pmi completion bash`\n"); return 2; }
    printf("# bash completion for pmi, generated by `pmi completion bash` (pmi %s)\n"
           "_pmi() {\n    local cur=${COMP_WORDS[COMP_CWORD]} opts=\n"
           "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n        COMPREPLY=($(compgen -W \"", pmi_version);
    for (int i = 0; i < n_commands; i++) printf("%s ", commands[i].name);
    printf("help --help --version\" -- \"$cur\"))\n        return\n    fi\n    case ${COMP_WORDS[1]} in\n");
    for (int i = 0; i < n_commands; i++) {
        printf("        %s) opts=\"", commands[i].name);
        for (const struct option *o = commands[i].opts; o && o->name; o++) printf("--%s ", o->name);
        if (!commands[i].opts && commands[i].own_help) printf("--help ");   /* config: --help is its only option */
        if (!commands[i].own_help) printf("--help ");                        /* main answers --help for it */
        if (!strcmp(commands[i].name, "completion")) printf("bash");
        printf("\" ;;\n");
    }
    printf("        help) opts=\"");
    for (int i = 0; i < n_commands; i++) printf("%s%s", i ? " " : "", commands[i].name);
    printf("\" ;;\n    esac\n"
           "    if [[ $cur == -* || ${COMP_WORDS[1]} == help || ${COMP_WORDS[1]} == completion ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
           "    else\n        COMPREPLY=($(compgen -f -- \"$cur\"))\n    fi\n}\n"
           "complete -o filenames -F _pmi pmi\n");
    return 0;
}

static int cmd_help(int argc, char **argv) {
    for (int i = 0; argc > 1 && i < n_commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            printf("usage: %s\n  %s\n", commands[i].usage, commands[i].help);
            if (!strcmp(argv[1], "run"))
                printf("  -s, --set sec.key=val  override a config key (repeatable)\n"
                       "  --shard i/n            run only the groups g with g %% n == i, a group being the jobs\n"
                       "                         of one sweep point and seed (Slurm arrays: scripts/slurm/)\n"
                       "  --force                retrain jobs whose shard exists\n"
                       "  --jobs n               worker processes, one libtorch thread each (default: one per\n"
                       "                         core on CPU, 1 on a GPU)\n"
                       "  --threads n            a single process with n libtorch threads (0: all cores)\n"
                       "  --gpus all|i,j,...     one worker process per GPU (indices among the visible devices),\n"
                       "                         each on every n-th group; merged at the end\n"
                       "  --no-merge             leave the shards unmerged\n"
                       "  --no-group             on a GPU, train each job alone (default: the jobs of a seed\n"
                       "                         train together on separate CUDA streams)\n"
                       "  --batch n              consecutive groups join one batch that trains at most n models\n"
                       "                         (models copied from ones the run trained before do not count),\n"
                       "                         trained and attacked together: on a GPU by default (128 when\n"
                       "                         every model is an mlp or a lenet, else 64), on the CPU only\n"
                       "                         when given (the same numbers); 1: group by group\n"
                       "  --trace FILE           the first attack batch (its attacks and their forward passes) under\n"
                       "                         torch's profiler, written to FILE as a Chrome trace (with kernels on\n"
                       "                         a GPU; scripts/bench/trace-compare.py reads it); one process\n"
                       "exit codes: 0 ok, 1 failure, 2 bad config or usage, 3 interrupted (run again to resume)\n");
            return 0;
        }
    printf("pmi %s: Pooled Membership Inference fingerprinting experiments\n\nusage: pmi <command> [options]\n\n", pmi_version);
    for (int i = 0; i < n_commands; i++) printf("  %-8s %s\n", commands[i].name, commands[i].help);
    printf("\n`pmi <command> --help` for a command's options.\n");
    return 0;
}

/* A command's exit code, or 1 when its standard output did not all reach its file (a full
 * disk, /dev/full, a closed pipe): nothing is lost silently. */
static int finish_stdout(const char *cmd, int rc) {
    int bad = fflush(stdout) != 0, e = errno;
    if (!bad && ferror(stdout)) bad = 1, e = EIO;
    if (!bad) return rc;
    fprintf(stderr, "pmi %s: cannot write the standard output: %s\n", cmd, strerror(e));
    return rc ? rc : 1;
}

int main(int argc, char **argv) {
    util_keep_freed_memory();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return cmd_help(argc > 2 ? argc - 1 : 1, argv + 1), argc < 2 ? 2 : 0;
    if (!strcmp(argv[1], "--version")) { printf("pmi %s (commit %s)\n", pmi_version, pmi_git_commit); return 0; }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) && !commands[i].own_help)
                return cmd_help(2, (char *[]){"help", (char *)commands[i].name}), 0;
            return finish_stdout(commands[i].name, commands[i].fn(argc - 1, argv + 1));
        }
    fprintf(stderr, "pmi: unknown command '%s' (pmi --help lists them)\n", argv[1]);
    return 2;
}
