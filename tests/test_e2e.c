/* End-to-end tests of the `pmi` command on tiny synthetic experiments: the owner's secret
 * mini-dataset is identified, the results file holds what it should (read back with h5py,
 * a reader we did not write), bad configs fail with exit code 2 and file:line, and attacks
 * land as their own rows. Run from the repository root (make test does). */
#include "testutil.h"
#include <sys/stat.h>

/* Writes text to path. */
static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs pmi with args, captures stderr+stdout into out; returns the exit code. */
static int run_pmi(const char *args, char *out, size_t outlen) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", tu_pmi_bin(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0; int ch;
    while ((ch = fgetc(p)) != EOF) if (n + 1 < outlen) out[n++] = (char)ch;
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *tiny_ini =
    "[experiment]\nname = tiny\nseeds = 2\ndevice = cpu\noutput = %s/results\n"
    "[data]\ndataset = synthetic\nn_train = 300\nn_attacker = 200\nn_test = 200\nnormalize = unit\n"
    "[pool]\nN = 5\nm = 20\n"
    "[model]\narch = mlp\nwidth = 128\n"
    "[train]\noptimizer = adam\nlr = 0.002\nmomentum = 0\nepochs = 80\nbatch_size = 16\n"
    "[pmi]\npermutations = 999\nindependent = 1\nindep_arch = lenet\n";

static char results_path[512];

static int setup_tiny(void **state) {
    char ini[300], text[2048], out[16384];
    snprintf(ini, sizeof ini, "%s/tiny.ini", tu_tmpdir());
    snprintf(text, sizeof text, tiny_ini, tu_tmpdir());
    write_file(ini, text);
    char args[600];
    snprintf(args, sizeof args, "run %s", ini);
    int rc = run_pmi(args, out, sizeof out);
    if (rc != 0) { fprintf(stderr, "pmi run failed (%d):\n%s\n", rc, out); return -1; }
    snprintf(results_path, sizeof results_path, "%s/results/tiny/results.h5", tu_tmpdir());
    return 0;
}

/* The owner's secret k is identified with a small permutation p-value, for every seed, and
 * no independent model is claimed at alpha = 0.01; h5py reads the same secret_k in the job
 * group as in /summary. */
static void test_owner_identified(void **state) {
    static const char *py =
        "import sys, h5py\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "s = f['summary'][:]\n"
        "rows = [r for r in s if r['role'] == b'owner' and r['attack'] == b'none' and r['score'] == b'loss']\n"
        "assert len(rows) == 2, len(rows)\n"
        "for r in rows:\n"
        "    g = f['jobs'][r['job_id'].decode()]\n"
        "    assert g.attrs['secret_k'] == r['secret_k']\n"
        "    assert r['identified'] == r['secret_k'], (r['identified'], r['secret_k'])\n"
        "    assert r['p_perm'] <= 0.01, r['p_perm']\n"
        "    assert r['p_rank'] == 1.0 / r['N'], r['p_rank']\n"
        "ind = [r for r in s if r['role'].startswith(b'indep') and r['attack'] == b'none' and r['score'] == b'loss']\n"
        "assert len(ind) == 6, len(ind)\n"
        "assert all(r['p_perm'] >= 0.01 for r in ind), [r['p_perm'] for r in ind]\n"
        "print('ok', len(s))\n";
    char out[4096];
    int rc = tu_python(py, results_path, out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "ok"));
}

/* The file carries provenance and the effective config, and per-sample scores of shape (N, m). */
static void test_results_file_contents(void **state) {
    static const char *py =
        "import sys, h5py\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "a = f.attrs\n"
        "for k in ('schema_version', 'pmi_version', 'git_commit', 'torch_version', 'device'):\n"
        "    assert k in a, k\n"
        "cfg = a['config'] if 'config' in a else f['config'][()]\n"
        "cfg = cfg.decode() if isinstance(cfg, bytes) else str(cfg)\n"
        "assert 'dataset = synthetic' in cfg, cfg[:200]\n"
        "ids = sorted(f['jobs'].keys())\n"
        "assert 'p0-s1-owner' in ids and 'p0-s1-clean' in ids and 'p0-s2-indep-data-r0' in ids, ids\n"
        "ev = f['jobs/p0-s1-owner/evals/0']\n"
        "assert ev['loss/sample_scores'].shape == (5, 20), ev['loss/sample_scores'].shape\n"
        "sp = f['jobs/p0-s1-owner/split']\n"
        "assert sp['pool'].shape == (5, 20)\n"
        "assert len(set(sp['train'][:]) & set(sp['pool'][:].ravel())) == 0\n"
        "print('ok')\n";
    char out[4096];
    assert_int_equal(tu_python(py, results_path, out, sizeof out), 0);
}

/* A second run of the same config trains nothing: every shard is complete. */
static void test_rerun_skips_complete_jobs(void **state) {
    char ini[300], args[600], out[16384];
    snprintf(ini, sizeof ini, "%s/tiny.ini", tu_tmpdir());
    snprintf(args, sizeof args, "run %s", ini);
    assert_int_equal(run_pmi(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "0 trained"));
}

/* Bad configs: exit code 2, the message names the file, the line and the key; nothing is written. */
static void test_bad_config_exit_2(void **state) {
    char ini[300], args[600], out[4096];
    snprintf(ini, sizeof ini, "%s/bad.ini", tu_tmpdir());
    write_file(ini, "[experiment]\nname = bad\n[pool]\nN = 10\nm = lots\n");
    snprintf(args, sizeof args, "run %s", ini);
    assert_int_equal(run_pmi(args, out, sizeof out), 2);
    assert_non_null(strstr(out, "bad.ini:5"));
    assert_non_null(strstr(out, "m"));
    write_file(ini, "[experiment]\nname = bad\n[attack.x]\ntype = melt\n");
    assert_int_equal(run_pmi(args, out, sizeof out), 2);
    assert_non_null(strstr(out, "bad.ini:4"));
    assert_non_null(strstr(out, "melt"));
    write_file(ini, "[experiment]\nname = bad\n[attack.x]\ntype = prune\nsparsity = 1.5\n");
    assert_int_equal(run_pmi(args, out, sizeof out), 2);
    assert_non_null(strstr(out, "bad.ini:5"));
    assert_non_null(strstr(out, "sparsity"));
    struct stat st;
    char dir[400];
    snprintf(dir, sizeof dir, "results/bad");
    assert_int_not_equal(stat(dir, &st), 0);
}

static void test_cuda_absent_is_clear_error(void **state) {
    char ini[300], args[700], out[4096];
    snprintf(ini, sizeof ini, "%s/tiny.ini", tu_tmpdir());
    snprintf(args, sizeof args, "run %s -s experiment.device=cuda -s experiment.name=cudatest", ini);
    int rc = run_pmi(args, out, sizeof out);
    if (strstr(out, "cuda") && rc == 0) skip();  /* a machine with a GPU */
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "cuda"));
}

/* A model whose outputs turn NaN under an attack (fine-tuning at lr = 10 diverges) is recorded
 * as unverifiable (identified = -1, p-values NaN, never claimed) and the run goes on. */
static void test_diverged_attack_recorded(void **state) {
    char ini[300], args[900], out[16384];
    snprintf(ini, sizeof ini, "%s/boom.ini", tu_tmpdir());
    char text[1024];
    snprintf(text, sizeof text,
             "include = %s/experiments/fingerprint.ini\ninclude = %s/configs/scale-small.ini\n"
             "[experiment]\nname = boom\nseeds = 1\noutput = %s/results\n[pmi]\nindependent = 0\npermutations = 99\n"
             "[train]\nepochs = 5\n"
             "[attack.boom]\ntype = ftal\nlr = 10\nepochs = 5\noptimizer = sgd\nmomentum = 0.9\n",
             getcwd((char[512]){0}, 512), getcwd((char[512]){0}, 512), tu_tmpdir());
    write_file(ini, text);
    snprintf(args, sizeof args, "run %s", ini);
    int rc = run_pmi(args, out, sizeof out);
    if (rc != 0) fail_msg("pmi run failed (%d):\n%s", rc, out);
    assert_non_null(strstr(out, "diverged"));
    static const char *py =
        "import sys, math, h5py\n"
        "s = h5py.File(sys.argv[1], 'r')['summary'][:]\n"
        "bad = [r for r in s if r['attack'] == b'boom' and r['identified'] == -1]\n"
        "assert bad, 'no unverifiable row'\n"
        "assert all(math.isnan(r['p_perm']) and math.isnan(r['p_rank']) for r in bad)\n"
        "assert all(r['identified'] >= 0 for r in s if r['attack'] == b'none')\n"
        "print('ok')\n";
    char res[600];
    snprintf(res, sizeof res, "%s/results/boom/results.h5", tu_tmpdir());
    assert_int_equal(tu_python(py, res, out, sizeof out), 0);
}

/* Reference calibration on a tiny model where the raw score fails: 4 reference models per seed
 * (seeds 3 and 4, found by trying seeds 1-4: the raw loss claims the owner in none of 3, 4, 1),
 * pool.repeat 1 and 4 as a sweep axis. Asserts: raw loss p_perm > 0.1 while diff and lira
 * claim the owner at 0.01, with lira's z above the raw one; the stored diff scores are the
 * owner's loss minus the references' mean loss, sample by sample; the references are stored as
 * models (role reference, not independent, not trained on k), calibrated leave-one-out, and
 * are the same models at both repeat points (to float rounding: a second group in one process
 * can differ by ~5e-7, as the clean model does); four copies of D_k raise the owner's raw z. */
static void test_references_power(void **state) {
    char ini[300], text[2048], args[600], out[16384];
    snprintf(ini, sizeof ini, "%s/power.ini", tu_tmpdir());
    snprintf(text, sizeof text,
             "[experiment]\nname = power\nseeds = 2\nseed = 3\ndevice = cpu\noutput = %s/results\n"
             "[data]\ndataset = synthetic\nn_train = 300\nn_attacker = 200\nn_test = 200\nnormalize = unit\n"
             "[pool]\nN = 5\nm = 20\nrepeat = 1, 4\n[model]\narch = mlp\nwidth = 64\n"
             "[train]\noptimizer = adam\nlr = 0.002\nmomentum = 0\nepochs = 20\nbatch_size = 16\n"
             "[pmi]\npermutations = 999\nindependent = 1\nreferences = 4\nscores = loss, diff, lira\n", tu_tmpdir());
    write_file(ini, text);
    snprintf(args, sizeof args, "run %s", ini);
    int rc = run_pmi(args, out, sizeof out);
    if (rc != 0) fail_msg("pmi run failed (%d):\n%s", rc, out);
    static const char *py =
        "import sys, math, h5py, numpy as np\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "assert [str(k) for k in f.attrs['score_kinds']] == ['loss', 'diff', 'lira'], f.attrs['score_kinds']\n"
        "s = f['summary'][:]\n"
        "def row(job, score):\n"
        "    r = [x for x in s if x['job_id'] == job.encode() and x['score'] == score.encode() and x['attack'] == b'none']\n"
        "    assert len(r) == 1, (job, score); return r[0]\n"
        "def sc(job, kind): return f['jobs/%s/evals/0/%s/sample_scores' % (job, kind)][:]\n"
        "for seed in (3, 4):\n"
        "    o = 'p0-s%d-owner' % seed\n"
        "    assert row(o, 'loss')['p_perm'] > 0.1, row(o, 'loss')['p_perm']\n"
        "    for k in ('diff', 'lira'): assert row(o, k)['p_perm'] <= 0.01, (seed, k, row(o, k)['p_perm'])\n"
        "    assert row(o, 'lira')['z_perm'] > row(o, 'loss')['z_perm'] + 1, (row(o, 'lira')['z_perm'], row(o, 'loss')['z_perm'])\n"
        "    refs = ['p0-s%d-reference-r%d' % (seed, r) for r in range(4)]\n"
        "    mu = np.mean([sc(r, 'loss') for r in refs], axis=0)\n"
        "    assert np.allclose(sc(o, 'diff'), sc(o, 'loss') - mu, rtol=0, atol=1e-12)\n"
        "    mu3 = np.mean([sc(r, 'loss') for r in refs[1:]], axis=0)\n"
        "    assert np.allclose(sc(refs[0], 'diff'), sc(refs[0], 'loss') - mu3, rtol=0, atol=1e-12)\n"
        "    for r in refs:\n"
        "        g = f['jobs/' + r].attrs\n"
        "        assert g['role'] == 'reference' and g['independent'] == 0 and g['trained_on_k'] == 0\n"
        "        assert math.isfinite(row(r, 'lira')['p_perm'])\n"
        "        assert np.allclose(sc(r, 'loss'), sc(r.replace('p0', 'p1'), 'loss'), rtol=0, atol=1e-5)\n"
        "    o4 = 'p1-s%d-owner' % seed\n"
        "    assert f['jobs/' + o4].attrs['point'] == 'pool.repeat=4'\n"
        "    assert f['jobs/' + o4].attrs['train_samples'] == 300 + 4 * 20 and f['jobs/' + o].attrs['train_samples'] == 320\n"
        "    assert all(f['jobs/' + r].attrs['train_samples'] == 300 for r in refs)\n"
        "    assert row(o4, 'loss')['z_perm'] > row(o, 'loss')['z_perm'] + 1, (row(o4, 'loss')['z_perm'], row(o, 'loss')['z_perm'])\n"
        "ind = [x for x in s if x['independent'] == 1]\n"
        "assert len(ind) == 2 * 2 * 3 * 3 and not any(x['role'] == b'reference' for x in ind)\n"
        "print('ok')\n";
    char res[600];
    snprintf(res, sizeof res, "%s/results/power/results.h5", tu_tmpdir());
    if (tu_python(py, res, out, sizeof out)) fail_msg("%s", out);
    /* a re-run with one shard missing runs the whole seed group again (its references with it) */
    char shard[600];
    snprintf(shard, sizeof shard, "%s/results/power/shards/p0-s4-clean.h5", tu_tmpdir());
    assert_int_equal(unlink(shard), 0);
    assert_int_equal(run_pmi(args, out, sizeof out), 0);
    if (!strstr(out, "9 trained, 27 already complete")) fail_msg("%s", out);
}

/* Compares two results files (argv 1 and 2): every number of every dataset (compound fields
 * too) equal, NaN to NaN; more than 50 datasets compared. */
/* The parts of the small synthetic experiment (7 jobs a seed: owner, clean, 3 independent, 2
 * references) that the comparison tests below run twice, one way and the other. */
#define CMP_DATA "[data]\ndataset = synthetic\nn_train = 300\nn_attacker = 200\nn_test = 200\nnormalize = unit\n"
#define CMP_TRAIN(epochs) "[train]\noptimizer = adam\nlr = 0.002\nmomentum = 0\nepochs = " epochs "\nbatch_size = 16\n"
#define CMP_PMI "[pmi]\npermutations = 999\nindependent = 1\nreferences = 2\nscores = loss, diff\n"
#define CMP_ATTACKS "[attack.prune]\ntype = prune\nsparsity = 0.3, 0.6\n" \
    "[attack.ftal]\ntype = ftal\nepochs = 1\nlr = 0.01\noptimizer = sgd\nmomentum = 0.9\n"

/* Every numeric dataset and field of results file a equals b's, bit for bit (NaN equal to NaN);
 * with a third argument "close", to floating-point rounding instead: floats within 1e-4 (relative,
 * 1e-5 absolute), p-values within 0.01 (a permutation count that a rounded score can move),
 * integers equal. Prints how many datasets it compared and the largest float difference. */
static const char *same_numbers_py =
    "import sys, h5py, numpy as np\n"
    "a, b = h5py.File(sys.argv[1], 'r'), h5py.File(sys.argv[2], 'r')\n"
    "close = sys.argv[3:] == ['close']\n"
    "n, worst = [0], [0.0]\n"
    "def same(x, y, what):\n"
    "    if not close or x.dtype.kind in 'iu': assert np.array_equal(x, y, equal_nan=True), what; return\n"
    "    x, y = x.astype(float), y.astype(float)\n"
    "    assert np.array_equal(np.isnan(x), np.isnan(y)), what\n"
    "    ok = ~np.isnan(x)\n"
    "    tol = 0.01 if 'p_' in what or what.endswith('/p') else 1e-4\n"
    "    assert np.allclose(x[ok], y[ok], rtol=tol, atol=tol / 10), (what, np.abs(x[ok] - y[ok]).max())\n"
    "    if ok.any() and tol < 0.01: worst[0] = max(worst[0], float(np.abs(x[ok] - y[ok]).max()))\n"
    "def cmp(name, o):\n"
    "    if not isinstance(o, h5py.Dataset): return\n"
    "    x, y = o[()], b[o.name][()]\n"
    "    if not hasattr(x, 'dtype'): return\n"
    "    if x.dtype.names:\n"
    "        for f in x.dtype.names:\n"
    "            if x[f].dtype.kind in 'fiu': same(x[f], y[f], o.name + '/' + f)\n"
    "    elif x.dtype.kind in 'fiu': same(x, y, o.name)\n"
    "    n[0] += 1\n"
    "a.visititems(cmp)\n"
    "assert n[0] > 50, n[0]\n"
    "print('close' if close else 'same', n[0], 'largest difference', worst[0])\n";

/* Writes cfg (a format with the temporary folder and dir for experiment.output) to
 * <tmp>/<dir>.ini and runs `pmi run --jobs 1 <opts>` on it, with environment variable var set to
 * val when var is not NULL (a switch whose runs are compared); fails the test unless pmi exits 0. */
static void run_config(const char *cfg, const char *dir, const char *opts, const char *var, const char *val, char *out,
                       size_t outlen) {
    char ini[300], text[2048], args[800];
    snprintf(ini, sizeof ini, "%s/%s.ini", tu_tmpdir(), dir);
    snprintf(text, sizeof text, cfg, tu_tmpdir(), dir);
    write_file(ini, text);
    snprintf(args, sizeof args, "run --jobs 1 %s %s", opts, ini);
    if (var) setenv(var, val, 1);
    int rc = run_pmi(args, out, outlen);
    if (var) unsetenv(var);
    if (rc != 0) fail_msg("pmi run failed (%d):\n%s", rc, out);
}

/* Models that the same samples, seeds and recipe determine are trained once per process
 * (framework/reuse.h): with pool.repeat = 1, 2 only the owner of the second point trains, the
 * other 6 jobs of its group (clean, 3 independent, 2 references) copy the first point's
 * models, and every stored number equals a run that trains them all (PMI_REUSE_MB=0), bit for
 * bit; the two owners still differ. */
static void test_reuse_equals_training(void **state) {
    char out[16384];
    const char *cfg =
        "[experiment]\nname = reuse\nseeds = 1\nseed = 5\ndevice = cpu\noutput = %s/%s\n"
        CMP_DATA
        "[pool]\nN = 5\nm = 20\nrepeat = 1, 2\n[model]\narch = mlp\nwidth = 32\n"
        CMP_TRAIN("8")
        CMP_PMI;
    const char *dirs[2] = {"reuse-on", "reuse-off"};
    for (int r = 0; r < 2; r++) {
        run_config(cfg, dirs[r], "", r ? "PMI_REUSE_MB" : NULL, "0", out, sizeof out);
        if (!r && !strstr(out, "trained 1 models") ) fail_msg("the second point trained more than its owner:\n%s", out);
        if (!r && !strstr(out, "6 copied from the same model")) fail_msg("no reuse:\n%s", out);
        if (r && strstr(out, "copied from")) fail_msg("PMI_REUSE_MB=0 still copied:\n%s", out);
    }
    static const char *py =
        "import sys, h5py, numpy as np\n"
        "a = h5py.File(sys.argv[1], 'r')\n"
        "sc = lambda f, j: f['jobs/%s/evals/0/loss/sample_scores' % j][:]\n"
        "assert not np.array_equal(sc(a, 'p0-s5-owner'), sc(a, 'p1-s5-owner'))\n"
        "assert np.array_equal(sc(a, 'p0-s5-reference-r1'), sc(a, 'p1-s5-reference-r1'))\n"
        "print('ok')\n";
    char res[1300];
    snprintf(res, sizeof res, "%s/reuse-on/reuse/results.h5 %s/reuse-off/reuse/results.h5", tu_tmpdir(), tu_tmpdir());
    if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s", out);
    if (tu_python(py, res, out, sizeof out)) fail_msg("%s", out);
}

/* CPU workers get balanced shares that keep the jobs of one model together (runner.c,
 * share_workers): on a pool.repeat sweep of 4 points x 2 seeds, owner and clean, the 8 clean
 * jobs are 2 models (one per seed), each in one worker, so the 2 workers train 5 models each
 * (every second job was the share: one worker trained the 8 owners, the other 2 models). Where a
 * job runs changes none of its numbers: every stored number equals a 1-worker run's, bit for bit. */
static void test_worker_shares(void **state) {
    char out[16384];
    const char *cfg =
        "[experiment]\nname = shares\nseeds = 2\nseed = 3\ndevice = cpu\noutput = %s/%s\n"
        CMP_DATA
        "[pool]\nN = 5\nm = 20\nrepeat = 1, 2, 3, 4\n[model]\narch = mlp\nwidth = 16\n"
        CMP_TRAIN("2")
        "[pmi]\npermutations = 99\nindependent = 0\nscores = loss\n";
    run_config(cfg, "shares-2", "--jobs 2", NULL, NULL, out, sizeof out);
    if (!strstr(out, "shares: w0 5 models to train in 8 jobs, w1 5 models to train in 8 jobs"))
        fail_msg("unbalanced shares:\n%s", out);
    if (!strstr(out, "16 jobs done (10 trained, 6 copied")) fail_msg("twins split across workers:\n%s", out);
    run_config(cfg, "shares-1", "", NULL, NULL, out, sizeof out);
    if (strstr(out, "shares:")) fail_msg("one worker printed shares:\n%s", out);
    char res[1300];
    snprintf(res, sizeof res, "%s/shares-2/shares/results.h5 %s/shares-1/shares/results.h5", tu_tmpdir(), tu_tmpdir());
    if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s", out);
}

/* The "trained N models" counts of a run's log, in order, as "N/copied N/copied ..." into buf. */
static void trained_counts(const char *log, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (const char *p = log; (p = strstr(p, "  trained ")); p++) {
        int k = 0, c = 0;
        const char *nl = strchr(p, '\n'), *cp = strstr(p, "; ");
        if (sscanf(p, "  trained %d models", &k) != 1) continue;
        if (cp && (!nl || cp < nl)) sscanf(cp, "; %d copied", &c);
        used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%d/%d", used ? " " : "", k, c);
    }
}

/* Batches are formed from the models still to train (job.c, run_batches): with --batch 8 on a
 * pool.repeat sweep of 3 points x 2 seeds (groups of 7 jobs: owner, clean, 3 independent, 2
 * references), the first seed's group trains its 7 models alone, the second seed's 7 join the
 * next point's owner (the other 6 of that group are copies of the first batch's models) and,
 * where a batch of 8 would leave one model to a batch of its own, that group's owner too (a
 * full batch takes in up to an eighth of --batch more models, the rest of the span), and the
 * last point's two groups (another span: at most 4 times --batch jobs) train only their 2
 * owners: "7/0 9/12 2/12" (trained/copied), where one batch per group trains "7 7 1 1 1 1".
 * Every stored number is the same as without batches, bit for bit. */
static void test_batches_after_reuse(void **state) {
    char out[16384], counts[256];
    const char *cfg =
        "[experiment]\nname = rb\nseeds = 2\nseed = 5\ndevice = cpu\noutput = %s/%s\n"
        CMP_DATA
        "[pool]\nN = 5\nm = 20\nrepeat = 1, 2, 3\n[model]\narch = mlp\nwidth = 32\n"
        CMP_TRAIN("4")
        CMP_PMI;
    run_config(cfg, "rb-groups", "", NULL, NULL, out, sizeof out);
    trained_counts(out, counts, sizeof counts);
    if (strcmp(counts, "7/0 7/0 1/6 1/6 1/6 1/6")) fail_msg("without --batch: '%s', expected one batch per group:\n%s", counts, out);
    run_config(cfg, "rb-batches", "--batch 8", NULL, NULL, out, sizeof out);
    trained_counts(out, counts, sizeof counts);
    if (strcmp(counts, "7/0 9/12 2/12")) fail_msg("--batch 8: '%s', expected '7/0 9/12 2/12':\n%s", counts, out);
    if (!strstr(out, "18 trained, 24 copied")) fail_msg("not 18 trained and 24 copied:\n%s", out);
    char res[1300];
    snprintf(res, sizeof res, "%s/rb-groups/rb/results.h5 %s/rb-batches/rb/results.h5", tu_tmpdir(), tu_tmpdir());
    if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s", out);
}

/* The small experiment with attacks (3 settings) that the next two tests run two ways. */
static const char *attacked_cfg =
    "[experiment]\nname = att\nseeds = 1\nseed = 3\ndevice = cpu\noutput = %s/%s\n"
    CMP_DATA
    "[pool]\nN = 5\nm = 20\n[model]\narch = mlp\nwidth = 32\n"
    CMP_TRAIN("4")
    CMP_PMI
    CMP_ATTACKS;

/* With attacks, each job's permutation tests run on a thread of their own once its attacks are
 * evaluated, beside the next jobs' attacks (framework/job.c, perm_worker): a group of 7 jobs
 * (the references make one group on the CPU too) gives every number, p-values included, bit
 * for bit as when all tests run after the attacks (PMI_PERM_WORKER=0), also with three worker
 * threads taking the jobs (PMI_PERM_WORKERS=3, a GPU's way), and with the 7 jobs attacked as one
 * block (all done at the end) and up to 4 workers after the attacks (PMI_PERM_MORE, a GPU's
 * way: 3 start then, one worker being there), and no test is left out. That run has 99999
 * permutations (compared with a run of as many without the worker), so that its one worker cannot
 * have tested 6 of the 7 jobs before the attacks' end is seen (with 999 it could, on a fast core:
 * then no more workers start, and the check would depend on timing). */
static void test_perm_worker_same_pvalues(void **state) {
    char out[16384];
    const char *cfg = attacked_cfg;
    const char *dirs[5] = {"pw-on", "pw-off", "pw-three", "pw-more", "pw-more-off"};
    const char *env[5][2] = {{NULL, NULL}, {"PMI_PERM_WORKER", "0"}, {"PMI_PERM_WORKERS", "3"}, {"PMI_PERM_MORE", "4"},
                             {"PMI_PERM_WORKER", "0"}};
    for (int r = 0; r < 5; r++) {
        if (r == 3) setenv("PMI_ATTACK_BLOCK", "7", 1);
        run_config(cfg, dirs[r], r >= 3 ? "-s pmi.permutations=99999" : "", env[r][0], env[r][1], out, sizeof out);
        unsetenv("PMI_ATTACK_BLOCK");
        if (r == 0 && !strstr(out, "permutation tests of 7 jobs beside the attacks (1 worker thread)")) fail_msg("no worker:\n%s", out);
        if (r == 1 && strstr(out, "beside the attacks")) fail_msg("PMI_PERM_WORKER=0 still used the worker:\n%s", out);
        if (r == 2 && !strstr(out, "permutation tests of 7 jobs beside the attacks (3 worker threads)")) fail_msg("not 3 workers:\n%s", out);
        if (r == 3 && !strstr(out, "permutation tests of 7 jobs beside the attacks (1 worker thread, 3 more after them)"))
            fail_msg("not 3 more workers after the attacks:\n%s", out);
    }
    static const char *py =
        "import sys, math, h5py\n"
        "s = h5py.File(sys.argv[1], 'r')['summary'][:]\n"
        "att = [r for r in s if r['attack'] != b'none' and r['score'] == b'loss']\n"
        "assert len(att) == 7 * 3, len(att)\n"
        "assert all(math.isfinite(r['p_perm']) and 0 < r['p_perm'] <= 1 for r in att), att\n"
        "print('ok')\n";
    char res[1300];
    snprintf(res, sizeof res, "%s/pw-on/att/results.h5 %s/pw-off/att/results.h5", tu_tmpdir(), tu_tmpdir());
    if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s", out);
    for (int r = 2; r < 4; r++) {
        char other[1300];
        snprintf(other, sizeof other, "%s/%s/att/results.h5 %s/%s/att/results.h5", tu_tmpdir(), dirs[r], tu_tmpdir(),
                 dirs[r == 3 ? 4 : 1]);
        if (tu_python(same_numbers_py, other, out, sizeof out)) fail_msg("%s: %s", dirs[r], out);
    }
    if (tu_python(py, res, out, sizeof out)) fail_msg("%s", out);
}

/* Attacking several (model, setting) pairs at once (PMI_ATTACK_BATCH, the GPU's way; on the CPU
 * one at a time by default) gives every number bit for bit as one at a time: 7 jobs x 3 settings
 * in batches of 5 (the last of 1), and each batch's log line splits its evaluation time into
 * the forward passes and the host's scores and statistics. So do blocks of models attacked
 * setting by setting (PMI_ATTACK_BLOCK, a GPU's way, framework/job.c: run_attacks): at most 3
 * makes blocks of 3, 3 and 1 models, and batches of at most 7 pairs take whole settings of a
 * block (3 pairs each, then 1) while they fit: 6, 6, 7 (the second block's last two settings and
 * the third's first) and 2 pairs. With PMI_EVAL_THREAD=1 each batch's scores and statistics run
 * on a thread beside the next batch's attacks (opt-in, meant for a GPU), the numbers still bit for bit. */
static void test_attack_batch_same_numbers(void **state) {
    char out[16384];
    const char *cfg = attacked_cfg;
    const char *dirs[4] = {"ab-one", "ab-five", "ab-blocks", "ab-thread"};
    for (int r = 0; r < 4; r++) {
        if (r == 2) setenv("PMI_ATTACK_BLOCK", "3", 1);
        if (r == 3) setenv("PMI_EVAL_THREAD", "1", 1);
        run_config(cfg, dirs[r], "", r ? "PMI_ATTACK_BATCH" : NULL, r == 2 ? "7" : "5", out, sizeof out);
        unsetenv("PMI_ATTACK_BLOCK");
        unsetenv("PMI_EVAL_THREAD");
        int beside = 0;
        for (const char *p = out; (p = strstr(p, " beside the next batch's attacks)")); p++) beside++;
        if (beside != (r == 3 ? 4 : 0)) fail_msg("%d batches' statistics beside the next attacks, expected %d:\n%s", beside, r == 3 ? 4 : 0, out);
        int batches = 0, sixes = 0, sevens = 0;
        for (const char *p = out; (p = strstr(p, "  attacked ")); p++) {
            p += 2;
            const char *nl = strchr(p, '\n');
            if (!strstr(p, "(forward passes ") || (nl && strstr(p, "(forward passes ") > nl)) fail_msg("no evaluation split:\n%s", out);
            batches++;
            sixes += !strncmp(p, "attacked 6 (model, setting) pairs in", 36);
            sevens += !strncmp(p, "attacked 7 (model, setting) pairs in", 36);
            if (r % 2 && strncmp(p, "attacked 5 (model, setting) pairs in", 36)) fail_msg("a batch not of 5:\n%s", out);
        }
        if (r != 2 && batches != (r ? 4 : 0)) fail_msg("%d batches of 5 pairs, expected %d:\n%s", batches, r ? 4 : 0, out);
        if (r != 2 && strstr(out, "attacks in blocks")) fail_msg("blocks without PMI_ATTACK_BLOCK:\n%s", out);
        if (r == 2 && (batches != 4 || sixes != 2 || sevens != 1 || !strstr(out, "attacks in blocks of 3 models, setting by setting")))
            fail_msg("blocks: %d batches (%d of 6 pairs, %d of 7), expected 4 (2, 1):\n%s", batches, sixes, sevens, out);
    }
    char res[1300];
    for (int r = 1; r < 4; r++) {
        snprintf(res, sizeof res, "%s/ab-one/att/results.h5 %s/%s/att/results.h5", tu_tmpdir(), tu_tmpdir(), dirs[r]);
        if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s: %s", dirs[r], out);
    }
}

/* Evaluating the models together as fused networks (nn_eval_many, a GPU's way; PMI_EVAL_FUSE=1
 * lets the CPU do it): the un-attacked evaluation fuses the group's 4 mlps (owner, clean,
 * independent, references are one architecture) and each batch of 5 attacked pairs its 5 models;
 * every number is as when each model runs alone, to rounding. */
static void test_fused_evaluation_close(void **state) {
    char out[16384], res[1300];
    run_config(attacked_cfg, "fe-one", "", NULL, NULL, out, sizeof out);
    setenv("PMI_EVAL_FUSE", "1", 1);
    run_config(attacked_cfg, "fe-fused", "", "PMI_ATTACK_BATCH", "5", out, sizeof out);
    unsetenv("PMI_EVAL_FUSE");
    int batches = 0;
    for (const char *p = out; (p = strstr(p, "  attacked 5 (model, setting) pairs in ")); p++) {
        const char *nl = strchr(p, '\n');
        const char *f = strstr(p, ", 5 models fused, scores and statistics");
        if (f && (!nl || f < nl)) batches++;
    }
    if (batches != 4) fail_msg("%d batches of 5 attacked models evaluated fused, expected 4:\n%s", batches, out);
    if (!strstr(out, "  evaluated 7 models in ") || !strstr(out, " models fused, scores and statistics"))
        fail_msg("the un-attacked evaluation did not say that it fused:\n%s", out);
    snprintf(res, sizeof res, "%s/fe-one/att/results.h5 %s/fe-fused/att/results.h5 close", tu_tmpdir(), tu_tmpdir());
    if (tu_python(same_numbers_py, res, out, sizeof out)) fail_msg("%s", out);
    print_message("fused against one by one: %s", out);
}

/* With 2 references, a reference evaluated as a suspect keeps one other: its lira (which needs
 * 2) is recorded unverifiable, its diff is computed, and the run succeeds; with
 * pmi.reference_fraction = 0.5 each reference trains on 150 of the 300 samples. */
static void test_reference_loo_too_few(void **state) {
    char ini[300], args[800], out[16384];
    snprintf(ini, sizeof ini, "%s/power.ini", tu_tmpdir());
    snprintf(args, sizeof args, "run %s -s experiment.name=loo -s pmi.references=2 -s train.epochs=3 -s experiment.seeds=1 "
             "-s pool.repeat=1 -s pmi.reference_fraction=0.5", ini);
    int rc = run_pmi(args, out, sizeof out);
    if (rc != 0) fail_msg("pmi run failed (%d):\n%s", rc, out);
    static const char *py =
        "import sys, math, h5py\n"
        "s = h5py.File(sys.argv[1], 'r')['summary'][:]\n"
        "ref = [r for r in s if r['role'] == b'reference']\n"
        "assert len(ref) == 2 * 3, len(ref)\n"
        "for r in ref:\n"
        "    if r['score'] == b'lira': assert r['identified'] == -1 and math.isnan(r['p_perm']) and math.isnan(r['z_perm'])\n"
        "    else: assert r['identified'] >= 0 and math.isfinite(r['p_perm'])\n"
        "assert all(math.isfinite(r['p_perm']) for r in s if r['role'] != b'reference')\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "assert [f['jobs/p0-s3-reference-r%d' % r].attrs['train_samples'] for r in (0, 1)] == [150, 150]\n"
        "assert f['jobs/p0-s3-clean'].attrs['train_samples'] == 300\n"
        "print('ok')\n";
    char res[600];
    snprintf(res, sizeof res, "%s/results/loo/results.h5", tu_tmpdir());
    if (tu_python(py, res, out, sizeof out)) fail_msg("%s", out);
}

/* `pmi plan` lists every job: 2 seeds x (owner, clean, 3 independent kinds x 1 replica). */
static void test_plan_lists_jobs(void **state) {
    char ini[300], args[600], out[16384];
    snprintf(ini, sizeof ini, "%s/tiny.ini", tu_tmpdir());
    snprintf(args, sizeof args, "plan %s", ini);
    assert_int_equal(run_pmi(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "# 10 jobs"));
    assert_non_null(strstr(out, "p0-s2-indep-arch-r0"));
}

/* `pmi bench` trains on the device and reports a throughput, alone and as a group. */
static void test_bench_smoke(void **state) {
    char out[4096];
    assert_int_equal(run_pmi("bench --device cpu --arch mlp --n 600 --epochs 1 --warmup 0 --batch 64", out, sizeof out), 0);
    const char *r = strstr(out, "images_per_s=");
    assert_non_null(r);
    assert_true(atof(r + strlen("images_per_s=")) > 0);
    assert_int_equal(run_pmi("bench --device cpu --arch mlp --n 600 --epochs 1 --warmup 0 --models 2", out, sizeof out), 0);
    assert_non_null(strstr(out, "models=2"));
    assert_int_equal(run_pmi("bench --device tpu", out, sizeof out), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_identified),
        cmocka_unit_test(test_results_file_contents),
        cmocka_unit_test(test_rerun_skips_complete_jobs),
        cmocka_unit_test(test_bad_config_exit_2),
        cmocka_unit_test(test_cuda_absent_is_clear_error),
        cmocka_unit_test(test_diverged_attack_recorded),
        cmocka_unit_test(test_plan_lists_jobs),
        cmocka_unit_test(test_references_power),
        cmocka_unit_test(test_reuse_equals_training),
        cmocka_unit_test(test_worker_shares),
        cmocka_unit_test(test_batches_after_reuse),
        cmocka_unit_test(test_perm_worker_same_pvalues),
        cmocka_unit_test(test_attack_batch_same_numbers),
        cmocka_unit_test(test_fused_evaluation_close),
        cmocka_unit_test(test_reference_loo_too_few),
        cmocka_unit_test(test_bench_smoke),
    };
    return cmocka_run_group_tests_name("e2e", tests, setup_tiny, NULL);
}
