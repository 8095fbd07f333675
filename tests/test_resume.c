/* Crash safety and resume (issue: results store): a run killed with SIGKILL in the middle of a
 * job leaves only complete shards; the re-run trains exactly the missing jobs and its final
 * table equals an uninterrupted run's; SIGINT stops cleanly with exit code 3. */
#include "testutil.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/mount.h>

static const char *ini_text =
    "[experiment]\nname = resume\nseeds = 2\ndevice = cpu\noutput = %s\n"
    "[data]\ndataset = synthetic\nn_train = 300\nn_attacker = 200\nn_test = 200\nnormalize = unit\n"
    "[pool]\nN = 5\nm = 20\n"
    "[model]\narch = mlp\nwidth = 128\n"
    "[train]\noptimizer = adam\nlr = 0.002\nmomentum = 0\nepochs = 60\nbatch_size = 16\n"
    "[pmi]\npermutations = 199\nindependent = 1\nindep_arch = mlp\n"
    "[attack.prune]\ntype = prune\nsparsity = 0.5, 0.9\n";

static void write_ini(const char *path, const char *outdir) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, ini_text, outdir);
    fclose(f);
}

/* Starts `pmi run ini` with output to logpath; returns its pid. */
static pid_t start_run(const char *ini, const char *logpath) {
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(logpath, "w", stderr);
        (void)f;
        execl(tu_pmi_bin(), "pmi", "run", ini, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Complete shards (*.h5, not temporary) in dir. */
static int count_shards(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        n += l > 3 && !strcmp(e->d_name + l - 3, ".h5");
    }
    closedir(d);
    return n;
}

static void sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

static void report_csv(const char *results, char *out, size_t len) {
    char cmd[1400];   /* the csv files of every table, concatenated */
    snprintf(cmd, sizeof cmd, "%s report %s --format csv -o %s.csv && cat %s.csv/*.csv", tu_pmi_bin(), results, results, results);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
}

static void test_sigkill_then_resume(void **state) {
    char a[400], b[400], ini_a[500], ini_b[500], log[500], shards[600], text[8192];
    snprintf(a, sizeof a, "%s/a", tu_tmpdir());
    snprintf(b, sizeof b, "%s/b", tu_tmpdir());
    snprintf(ini_a, sizeof ini_a, "%s/a.ini", tu_tmpdir());
    snprintf(ini_b, sizeof ini_b, "%s/b.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/log", tu_tmpdir());
    write_ini(ini_a, a);
    write_ini(ini_b, b);
    /* the uninterrupted reference */
    assert_int_equal(wait_exit(start_run(ini_a, log)), 0);
    /* the interrupted run: killed while its third job trains */
    snprintf(shards, sizeof shards, "%s/resume/shards", b);
    pid_t pid = start_run(ini_b, log);
    for (int i = 0; i < 6000 && count_shards(shards) < 2; i++) sleep_ms(5);
    sleep_ms(300);
    kill(pid, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
    sleep_ms(500);  /* the workers die with their parent */
    int before = count_shards(shards);
    assert_true(before >= 2 && before < 10);
    /* every shard that exists opens and is complete (h5py, a reader we did not write) */
    char py[512];
    snprintf(py, sizeof py,
             "import sys, glob, h5py\n"
             "for p in glob.glob(sys.argv[1] + '/*.h5'):\n"
             "    assert h5py.File(p, 'r').attrs['complete'] == 1, p\n"
             "print('ok')\n");
    assert_int_equal(tu_python(py, shards, NULL, 0), 0);
    /* the re-run trains exactly the missing jobs */
    assert_int_equal(wait_exit(start_run(ini_b, log)), 0);
    read_file(log, text, sizeof text);
    char expect[128];
    snprintf(expect, sizeof expect, "10 jobs done (%d trained, %d already complete)", 10 - before, before);
    if (!strstr(text, expect)) fail_msg("expected '%s' in:\n%s", expect, strrchr(text, '\n') ? text + (strlen(text) > 600 ? strlen(text) - 600 : 0) : text);
    /* and the final tables equal the uninterrupted run's */
    char ra[600], rb[600];
    static char ta[65536], tb[65536];
    snprintf(ra, sizeof ra, "%s/resume/results.h5", a);
    snprintf(rb, sizeof rb, "%s/resume/results.h5", b);
    report_csv(ra, ta, sizeof ta);
    report_csv(rb, tb, sizeof tb);
    assert_true(strlen(ta) > 500);
    assert_string_equal(ta, tb);
}

static void test_sigint_stops_cleanly(void **state) {
    char dir[400], ini[500], log[500], shards[600], text[8192];
    snprintf(dir, sizeof dir, "%s/c", tu_tmpdir());
    snprintf(ini, sizeof ini, "%s/c.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/logc", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/resume/shards", dir);
    write_ini(ini, dir);
    pid_t pid = start_run(ini, log);
    for (int i = 0; i < 6000 && count_shards(shards) < 1; i++) sleep_ms(5);
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid), 3);
    read_file(log, text, sizeof text);
    assert_non_null(strstr(text, "run again to continue"));
    int n = count_shards(shards);
    assert_true(n >= 1 && n < 10);
}

/* A finished experiment re-run with a changed config is refused with exit 2 before any worker
 * starts, naming the changed key with its old and new value. */
static void test_changed_config_refused(void **state) {
    char dir[400], ini[500], log[500], text[8192], cmd[1200];
    snprintf(dir, sizeof dir, "%s/a", tu_tmpdir());
    snprintf(ini, sizeof ini, "%s/a.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/logd", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run %s -s train.lr=0.01 2>%s", tu_pmi_bin(), ini, log);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);   /* a configuration error, found before any worker starts */
    read_file(log, text, sizeof text);
    if (!strstr(text, "different configuration (changed: train.lr: ") || !strstr(text, " -> 0.01"))
        fail_msg("the changed key with its old and new value is not named: %s", text);
    if (strstr(text, "run again") || strstr(text, "worker")) fail_msg("a worker started or 'run again' was suggested: %s", text);
}

/* While a run uses the experiment folder, a run of another configuration into the same folder
 * exits 2 at once, naming the folder (two configs once interleaved their shards and each
 * merged the other's). */
static void test_other_config_refused_while_running(void **state) {
    char dir[400], ini[500], log[500], log2[500], shards[600], text[8192], cmd[1400];
    snprintf(dir, sizeof dir, "%s/lock", tu_tmpdir());
    snprintf(ini, sizeof ini, "%s/lock.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/loglock", tu_tmpdir());
    snprintf(log2, sizeof log2, "%s/loglock2", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/resume/shards", dir);
    write_ini(ini, dir);
    pid_t pid = start_run(ini, log);
    for (int i = 0; i < 6000 && count_shards(shards) < 1; i++) sleep_ms(5);
    snprintf(cmd, sizeof cmd, "%s run %s -s train.lr=0.01 2>%s", tu_pmi_bin(), ini, log2);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);
    read_file(log2, text, sizeof text);
    if (!strstr(text, "in use by another pmi run")) fail_msg("no lock message in: %s", text);
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid), 3);
    /* the same config may take the folder again (resume), as may another once it is free */
    snprintf(cmd, sizeof cmd, "%s run %s -s train.lr=0.01 --shard 0/100 2>%s", tu_pmi_bin(), ini, log2);
    st = system(cmd);
    read_file(log2, text, sizeof text);
    assert_null(strstr(text, "in use by another pmi run"));
}

/* A worker killed by a signal is reported with the signal and the job it was running. */
static void test_killed_worker_named(void **state) {
    char dir[400], ini[500], log[500], shards[600], text[8192], cmd[700];
    snprintf(dir, sizeof dir, "%s/kill", tu_tmpdir());
    snprintf(ini, sizeof ini, "%s/kill.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/logkill", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/resume/shards", dir);
    write_ini(ini, dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(tu_pmi_bin(), "pmi", "run", ini, "--jobs", "2", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 6000 && count_shards(shards) < 1; i++) sleep_ms(5);
    snprintf(cmd, sizeof cmd, "pkill -KILL -n -P %d", (int)pid);   /* the newest child: a worker */
    assert_int_equal(WEXITSTATUS(system(cmd)), 0);
    assert_int_equal(wait_exit(pid), 1);
    read_file(log, text, sizeof text);
    if (!strstr(text, "was killed by signal 9") || !strstr(text, "while running job p0-s"))
        fail_msg("no signal and job in: %s", text);
}

/* A process that cannot reach an epoch boundary (here one long resnet18 epoch on the CPU; on a
 * GPU, a stuck CUDA call) still exits within the grace of 10 s after SIGTERM, with code 3. */
static void test_sigterm_grace(void **state) {
    char ini[500], log[500], text[8192];
    snprintf(ini, sizeof ini, "%s/slow.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/logslow", tu_tmpdir());
    FILE *f = fopen(ini, "w");
    fprintf(f, "[experiment]\nname = slow\nseeds = 1\ndevice = cpu\noutput = %s/slow\n"
               "[data]\ndataset = synthetic\nn_train = 4000\nn_attacker = 0\nn_test = 100\nnormalize = unit\n"
               "[pool]\nN = 5\nm = 20\n[model]\narch = resnet18\n"
               "[train]\noptimizer = sgd\nlr = 0.01\nepochs = 1\nbatch_size = 256\n"
               "[pmi]\npermutations = 99\nindependent = 0\n", tu_tmpdir());
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *e = freopen(log, "w", stderr);
        (void)e;
        execl(tu_pmi_bin(), "pmi", "run", ini, "--jobs", "1", (char *)NULL);
        _exit(127);
    }
    sleep_ms(3000);
    kill(pid, SIGTERM);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(wait_exit(pid), 3);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (waited > 13) fail_msg("exited %.1f s after SIGTERM", waited);
    read_file(log, text, sizeof text);
    assert_non_null(strstr(text, "run again to continue"));
}

/* ---- merge takes exactly the plan's shards (issue: trust the results) ---------------------- */
static char mdir[400], mini[500];

/* A complete run of ini_text (2 seeds, 10 jobs) in mdir, made once. */
static void merged_run(void) {
    if (mdir[0]) return;
    char log[500];
    snprintf(mdir, sizeof mdir, "%s/m", tu_tmpdir());
    snprintf(mini, sizeof mini, "%s/m.ini", tu_tmpdir());
    snprintf(log, sizeof log, "%s/logm", tu_tmpdir());
    write_ini(mini, mdir);
    assert_int_equal(wait_exit(start_run(mini, log)), 0);
}

/* Runs a shell command with stderr into text; returns the exit code. */
static int sh(const char *cmd, char *text, size_t len) {
    char full[4600], log[500];
    snprintf(log, sizeof log, "%s/logsh", tu_tmpdir());
    snprintf(full, sizeof full, "%s 2>%s >/dev/null", cmd, log);
    int st = system(full);
    read_file(log, text, len);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int h5_int(const char *path, const char *expr) {
    char py[600], out[64];
    snprintf(py, sizeof py, "import sys, h5py\nf = h5py.File(sys.argv[1], 'r')\nprint(int(%s))\n", expr);
    assert_int_equal(tu_python(py, path, out, sizeof out), 0);
    return atoi(out);
}

/* After lowering experiment.seeds, the merged file holds the plan's jobs only (it once kept
 * the dropped seeds while its /config said otherwise). */
static void test_merge_takes_only_the_plan(void **state) {
    merged_run();
    char cmd[1200], text[8192], res[600];
    snprintf(res, sizeof res, "%s/resume/results.h5", mdir);
    assert_int_equal(h5_int(res, "len(f['jobs'])"), 10);
    snprintf(cmd, sizeof cmd, "%s merge %s -s experiment.seeds=1", tu_pmi_bin(), mini);
    if (sh(cmd, text, sizeof text)) fail_msg("pmi merge: %s", text);
    assert_int_equal(h5_int(res, "len(f['jobs'])"), 5);
    assert_int_equal(h5_int(res, "f.attrs['partial']"), 0);
    assert_int_equal(h5_int(res, "f.attrs['jobs_planned']"), 5);
    snprintf(cmd, sizeof cmd, "%s merge %s", tu_pmi_bin(), mini);
    assert_int_equal(sh(cmd, text, sizeof text), 0);
    assert_int_equal(h5_int(res, "len(f['jobs'])"), 10);
}

/* A missing shard makes merge fail naming it, unless --partial: then the file and the report
 * say the results are partial. A shard of another configuration is refused by name. */
static void test_merge_refuses_missing_and_foreign(void **state) {
    merged_run();
    char cmd[4096], text[8192], res[600], shard[700], other[400], oini[500];
    snprintf(res, sizeof res, "%s/resume/results.h5", mdir);
    snprintf(shard, sizeof shard, "%s/resume/shards/p0-s2-clean.h5", mdir);
    snprintf(cmd, sizeof cmd, "mv %s %s.away", shard, shard);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s merge %s", tu_pmi_bin(), mini);
    assert_int_equal(sh(cmd, text, sizeof text), 1);
    if (!strstr(text, "p0-s2-clean.h5 is missing") || !strstr(text, "9 of 10")) fail_msg("message: %s", text);
    snprintf(cmd, sizeof cmd, "%s merge %s --partial", tu_pmi_bin(), mini);
    if (sh(cmd, text, sizeof text)) fail_msg("pmi merge --partial: %s", text);
    assert_int_equal(h5_int(res, "f.attrs['partial']"), 1);
    assert_int_equal(h5_int(res, "f.attrs['jobs_merged']"), 9);
    snprintf(cmd, sizeof cmd, "%s report %s | grep -c 'PARTIAL RESULTS: 9 of 10'", tu_pmi_bin(), res);
    assert_int_equal(sh(cmd, text, sizeof text), 0);
    /* a shard written by another configuration, put in its place */
    snprintf(other, sizeof other, "%s/other", tu_tmpdir());
    snprintf(oini, sizeof oini, "%s/other.ini", tu_tmpdir());
    write_ini(oini, other);
    snprintf(cmd, sizeof cmd, "%s run %s -s train.lr=0.01 --shard 0/2 --jobs 1 && cp %s/resume/shards/p0-s1-clean.h5 %s",
             tu_pmi_bin(), oini, other, shard);
    if (sh(cmd, text, sizeof text)) fail_msg("%s: %s", cmd, text);
    snprintf(cmd, sizeof cmd, "%s merge %s", tu_pmi_bin(), mini);
    assert_int_equal(sh(cmd, text, sizeof text), 1);
    if (!strstr(text, "p0-s2-clean.h5 was written by a different configuration")) fail_msg("message: %s", text);
    snprintf(cmd, sizeof cmd, "mv %s.away %s", shard, shard);
    assert_int_equal(system(cmd), 0);
}

/* A worker that dies in a job (here killed by PMI_FAULT, as by the OOM killer or a CUDA
 * failure that takes its process down) costs that job only: it is recorded in
 * <job>.failed, a fresh worker does the other jobs, the run exits 1 naming the job, and the
 * next run trains just that job, removes the record and merges. */
static void test_failed_job_given_up_then_retried(void **state) {
    char dir[400], ini[500], shards[600], text[8192], cmd[1400], failed[800], res[700];
    snprintf(dir, sizeof dir, "%s/fault", tu_tmpdir());
    snprintf(ini, sizeof ini, "%s/fault.ini", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/resume/shards", dir);
    snprintf(failed, sizeof failed, "%s/p0-s1-clean.failed", shards);
    snprintf(res, sizeof res, "%s/resume/results.h5", dir);
    write_ini(ini, dir);
    snprintf(cmd, sizeof cmd, "PMI_FAULT=p0-s1-clean %s run %s -s train.epochs=5 --jobs 2", tu_pmi_bin(), ini);
    assert_int_equal(sh(cmd, text, sizeof text), 1);
    if (!strstr(text, "was killed by signal 9") || !strstr(text, "giving up job p0-s1-clean") ||
        !strstr(text, "1 job failed and was given up (p0-s1-clean"))
        fail_msg("messages: %s", text);
    assert_int_equal(count_shards(shards), 9);
    read_file(failed, text, sizeof text);
    if (!strstr(text, "job p0-s1-clean failed on cpu") || !strstr(text, "signal 9")) fail_msg("%s: %s", failed, text);
    assert_int_equal(access(res, F_OK), -1);
    snprintf(cmd, sizeof cmd, "%s run %s -s train.epochs=5 --jobs 2", tu_pmi_bin(), ini);
    if (sh(cmd, text, sizeof text)) fail_msg("pmi run: %s", text);
    if (!strstr(text, "10 jobs done (1 trained, 9 already complete)")) fail_msg("second run: %s", text);
    assert_int_equal(count_shards(shards), 10);
    assert_int_equal(access(failed, F_OK), -1);
    assert_int_equal(access(res, F_OK), 0);
}

/* Temporary files of a killed writer are removed by the next run; a live writer's are kept. */
static void test_dead_temps_removed(void **state) {
    merged_run();
    char cmd[1200], text[8192], dead[700], live[700], dead_here[1000], other_host[700], host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(dead, sizeof dead, "%s/resume/shards/p0-s1-owner.h5.tmp-999999999", mdir);
    snprintf(live, sizeof live, "%s/resume/shards/p0-s1-clean.h5.tmp-%d", mdir, (int)getpid());
    snprintf(dead_here, sizeof dead_here, "%s/resume/shards/p0-s2-owner.h5.tmp-999999998@%s", mdir, host);
    /* a job array task on another machine: a pid dead here may live there */
    snprintf(other_host, sizeof other_host, "%s/resume/shards/p0-s2-clean.h5.tmp-999999998@not-%s", mdir, host);
    const char *files[] = {dead, live, dead_here, other_host};
    for (int i = 0; i < 4; i++) { FILE *f = fopen(files[i], "w"); fclose(f); }
    snprintf(cmd, sizeof cmd, "%s run %s", tu_pmi_bin(), mini);
    if (sh(cmd, text, sizeof text)) fail_msg("pmi run: %s", text);
    assert_non_null(strstr(text, "removed 2 temporary files"));
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(dead_here, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(other_host, F_OK), 0);
    unlink(live);
    unlink(other_host);
}

/* A merge into a folder without room fails with a message, exit 1 (it once segfaulted inside
 * HDF5), and leaves neither a temporary file nor a broken results file. Needs root to mount a
 * small tmpfs (CI is root). */
static void test_merge_full_disk(void **state) {
    if (geteuid() != 0) { fprintf(stderr, "test_merge_full_disk: needs root to mount a tmpfs\n"); skip(); }
    merged_run();
    char mnt[400], cmd[4096], text[8192];
    snprintf(mnt, sizeof mnt, "%s/small", tu_tmpdir());
    mkdir(mnt, 0755);
    /* just room for the shards: about 10 x 0.1 MB */
    snprintf(cmd, sizeof cmd, "du -sk %s/resume/shards | cut -f1", mdir);
    FILE *p = popen(cmd, "r");
    int kb = 0;
    if (fscanf(p, "%d", &kb) != 1) kb = 0;
    pclose(p);
    assert_true(kb > 0);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%dk", kb + kb / 10 + 64);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts)) fail_msg("mount tmpfs on %s: %s", mnt, strerror(errno));
    snprintf(cmd, sizeof cmd, "mkdir -p %s/resume && cp -r %s/resume/shards %s/resume/ && %s merge %s -s experiment.output=%s",
             mnt, mdir, mnt, tu_pmi_bin(), mini, mnt);
    int rc = sh(cmd, text, sizeof text);
    snprintf(cmd, sizeof cmd, "ls %s/resume | grep -c 'results' ", mnt);
    char ls[64];
    int left = sh(cmd, ls, sizeof ls);   /* grep exits 1 when nothing matches */
    umount(mnt);
    assert_int_equal(rc, 1);
    if (!strstr(text, "not enough free space")) fail_msg("message: %s", text);
    assert_int_equal(left, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_then_resume),
        cmocka_unit_test(test_sigint_stops_cleanly),
        cmocka_unit_test(test_changed_config_refused),
        cmocka_unit_test(test_other_config_refused_while_running),
        cmocka_unit_test(test_killed_worker_named),
        cmocka_unit_test(test_failed_job_given_up_then_retried),
        cmocka_unit_test(test_sigterm_grace),
        cmocka_unit_test(test_merge_takes_only_the_plan),
        cmocka_unit_test(test_merge_refuses_missing_and_foreign),
        cmocka_unit_test(test_dead_temps_removed),
        cmocka_unit_test(test_merge_full_disk),
    };
    return cmocka_run_group_tests_name("resume", tests, NULL, NULL);
}
