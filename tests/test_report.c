/* test_report: `pmi report`'s tables from the small fixed results file of fixture.h, in all
 * three formats: row counts, identification, the false-positive rates, the calibration bound
 * and the fidelity gap (owner = clean + 0.002 for every pair, by construction); the csv files
 * read by pandas against /summary and the Wilson formula; --score, --decision; LaTeX layout. */
#include "testutil.h"
#include "fixture.h"
#include "report.h"

static char results[400];

static int setup(void **state) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rep", tu_tmpdir());
    build_results(dir, 1, results, sizeof results);
    return 0;
}

static char *render_opts(const report_options *o) {
    static char buf[1 << 18];
    char err[512];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    if (report_write(results, o, f, err, sizeof err)) fail_msg("report: %s", err);
    fclose(f);
    return buf;
}

static char *render(report_format fmt) {
    report_options o = report_default_options();
    o.format = fmt;
    return render_opts(&o);
}

/* Writes the csv files of the results with score kind `score` and decision `decide` (NULL:
 * the file's) into <tmp>/<name>; returns the folder. */
static const char *render_csv(const char *name, const char *score, const char *decide) {
    static char dir[4][400];
    static int next;
    char *d = dir[next++ % 4];
    snprintf(d, 400, "%s/%s", tu_tmpdir(), name);
    report_options o = {REPORT_CSV, score, decide, d};
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    if (report_write(results, &o, f, err, sizeof err)) fail_msg("report: %s", err);
    fclose(f);
    return d;
}

static int count_lines_with(const char *text, const char *a, const char *b) {
    int n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)(len < 2047 ? len : 2047), l);
        n += strstr(line, a) && (!b || strstr(line, b));
    }
    return n;
}

/* One row per model and evaluation: 2 archs x 3 roles x 3 seeds x (1 + 3 attacks). */
static void test_models_table(void **state) {
    char *md = render(REPORT_MD);
    *strstr(md, "### Settings") = 0;   /* the models table only */
    assert_int_equal(count_lines_with(md, "| prune ", "sparsity="), 2 * 3 * 3 * 3);
    assert_int_equal(count_lines_with(md, "| none | - |", NULL), 2 * 3 * 3);
}

/* Settings: 6 owners per setting, all identified un-attacked; 6 independent models. */
static void test_settings_table(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Settings");
    assert_non_null(l);
    assert_non_null(strstr(l, "| - | none | - | 6 |"));
    assert_non_null(strstr(l, "| 6 | 0.8850 [0.8674, 0.9026] | 1.000 [0.610, 1.000] |"));   /* 6 of 6 identified */
    assert_non_null(strstr(l, "median N-way p_perm (Holm)"));
    assert_int_equal(count_lines_with(l, "| prune | sparsity=", NULL) >= 3, 1);
}

/* Fidelity: the gap is +0.0020 for both architectures, with a zero-width interval. */
static void test_fidelity_gap(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Fidelity");
    assert_non_null(l);
    assert_int_equal(count_lines_with(l, "| 3 |", "| 0.0020 [0.0020, 0.0020] |"), 2);
}

/* Calibration: every p-value kind has a row with the 6 un-attacked independent models. */
static void test_calibration(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Calibration");
    assert_non_null(l);
    assert_non_null(strstr(l, "| perm (decision) | 6 |"));
    assert_non_null(strstr(l, "| welch | 6 |"));
}

/* The csv files, read by pandas: expected columns and row counts, plain numbers (no "±", no
 * "k/n"), the numbers of /summary, Wilson intervals from the formula, accuracy intervals in
 * [0, 1]; --score conf shows the conf rows, --decision rank other claim counts. */
static const char *csv_check =
    "import sys, math, re, h5py, numpy as np, pandas as pd\n"
    "res, d, dconf, drank = sys.argv[1:5]\n"
    "def load(dd):\n"
    "    return {t: pd.read_csv(f'{dd}/{t}.csv') for t in ['models', 'settings', 'calibration', 'fidelity']}\n"
    "T, C, R = load(d), load(dconf), load(drank)\n"
    "# without --score every score kind is in the one tidy table, told apart by the score column\n"
    "assert set(T['models'].score) == {'loss', 'conf'} and set(T['settings'].score) == {'loss', 'conf'}, set(T['models'].score)\n"
    "assert len(T['models']) == len(h5py.File(res, 'r')['summary'])\n"
    "for t in T:\n"
    "    if 'score' in T[t].columns: T[t] = T[t][T[t].score == 'loss'].reset_index(drop=True)\n"
    "for t in R:\n"
    "    if 'score' in R[t].columns: R[t] = R[t][R[t].score == 'loss'].reset_index(drop=True)\n"
    "s = pd.DataFrame(h5py.File(res, 'r')['summary'][:])\n"
    "for c in s.columns:\n"
    "    if s[c].dtype.kind in 'SO': s[c] = s[c].map(lambda v: v.decode() if isinstance(v, bytes) else v)\n"
    "m = T['models']\n"
    "assert list(m.columns) == ['score','seed','role','replica','arch','sweep','attack','params','k','identified','p_rank','p_perm','p_welch','p_mw','test_acc'], list(m.columns)\n"
    "loss = s[s.score == 'loss']\n"
    "assert len(m) == len(loss) == 2 * 3 * 3 * 4, len(m)\n"
    "assert np.allclose(np.sort(m.p_perm.values), np.sort(loss.p_perm.values), rtol=0, atol=1e-15)\n"
    "assert np.allclose(np.sort(m.test_acc.values), np.sort(loss.test_acc.values), rtol=0, atol=1e-15)\n"
    "assert (m.score == 'loss').all() and (C['models'].score == 'conf').all()\n"
    "conf = s[s.score == 'conf']\n"
    "assert np.allclose(np.sort(C['models'].p_perm.values), np.sort(conf.p_perm.values), rtol=0, atol=1e-15)\n"
    "assert not np.allclose(np.sort(C['models'].p_perm.values), np.sort(m.p_perm.values))\n"
    "st = T['settings']\n"
    "assert len(st) == 4 * 2, len(st)   # 4 settings x 2 alphas\n"
    "for c in ['decision','alpha','owners','owner_acc_mean','owner_acc_ci_low','owner_acc_ci_high','identified_k','identified_n','identified_rate','identified_ci_low','identified_ci_high','claimed_k','claimed_n','claimed_rate','claimed_ci_low','claimed_ci_high','median_p','median_p_nway_holm','median_z_perm','indep','fpr_k','fpr_rate','fpr_ci_low','fpr_ci_high','auc','tpr_at_1pct_fpr']:\n"
    "    assert c in st.columns, c\n"
    "none = st[(st.attack == 'none') & (st.alpha == 0.01)].iloc[0]\n"
    "own = loss[(loss.role == 'owner') & (loss.attack == 'none')]\n"
    "assert abs(none.owner_acc_mean - own.test_acc.mean()) < 1e-12 and none.identified_k == 6 and none.identified_n == 6\n"
    "assert none.claimed_k == (own.p_perm < 0.01).sum()\n"
    "assert abs(none.median_z_perm - own.z_perm.median()) < 1e-9 and own.z_perm.notna().all()\n"
    "assert (st.decision == 'perm').all() and (R['settings'].decision == 'rank').all()\n"
    "assert (st.claimed_k != R['settings'].claimed_k).any()\n"
    "cal = T['calibration']\n"
    "assert len(cal) == 4 * 2 and list(cal.columns[:4]) == ['score','decision','pvalue','indep'], list(cal.columns)\n"
    "assert 'alpha' in cal.columns and 'calibrated_bound' in cal.columns\n"
    "fid = T['fidelity']\n"
    "assert len(fid) == 2 and list(fid.columns) == ['sweep','arch','pairs','owner_acc_mean','owner_acc_ci_low','owner_acc_ci_high','clean_acc_mean','clean_acc_ci_low','clean_acc_ci_high','gap_mean','gap_ci_low','gap_ci_high'], list(fid.columns)\n"
    "assert np.allclose(fid.gap_mean, 0.002, atol=1e-12)\n"
    "z = 1.959963984540054\n"
    "def wilson(k, n):\n"
    "    c = (k + z*z/2) / (n + z*z); h = z / (n + z*z) * math.sqrt(k * (n - k) / n + z*z/4)\n"
    "    return max(0, c - h), min(1, c + h)\n"
    "assert abs(wilson(0, 6)[1] - 0.39033) < 1e-4 and abs(wilson(1, 6)[0] - 0.030053) < 1e-4\n"
    "checked = 0\n"
    "for tab in list(T.values()) + list(C.values()) + list(R.values()):\n"
    "    for c in tab.columns:\n"
    "        if tab[c].dtype == object:\n"
    "            assert not tab[c].astype(str).str.contains('±|^[0-9]+/[0-9]+$').any(), c\n"
    "        if c.endswith('_k'):\n"
    "            x = c[:-2]\n"
    "            for _, r in tab.iterrows():\n"
    "                if r[x + '_n'] == 0: continue\n"
    "                lo, hi = wilson(r[c], r[x + '_n'])\n"
    "                assert abs(lo - r[x + '_ci_low']) < 1e-12 and abs(hi - r[x + '_ci_high']) < 1e-12, (c, r)\n"
    "                checked += 1\n"
    "        if c.endswith('acc_ci_low') or c.endswith('acc_ci_high'):\n"
    "            assert ((tab[c] >= 0) & (tab[c] <= 1)).all(), c\n"
    "assert checked > 50, checked\n"
    "print('ok')\n";

static void test_csv(void **state) {
    const char *d = render_csv("csv", NULL, NULL), *dc = render_csv("csv-conf", "conf", NULL),
               *dr = render_csv("csv-rank", NULL, "rank");
    char args[2000], out[4096];
    snprintf(args, sizeof args, "'%s' '%s' '%s' '%s' 2>&1", results, d, dc, dr);
    int rc = tu_python(csv_check, args, out, sizeof out);
    if (rc) fail_msg("pandas check failed (%d): %s", rc, out);
}

/* report_store: /report/<table> holds the csv's columns in order with the same values (h5py
 * against pandas), on a copy of the results file whose other content is unchanged; a second
 * store replaces /report; storing into a file that cannot be replaced leaves it as it was. */
static const char *store_check =
    "import sys, h5py, numpy as np, pandas as pd\n"
    "res, d = sys.argv[1:3]\n"
    "f = h5py.File(res, 'r')\n"
    "g = f['report']\n"
    "assert g.attrs['score'] == 'loss' and g.attrs['decision'] == 'perm', dict(g.attrs)\n"
    "assert sorted(g.keys()) == ['calibration', 'fidelity', 'models', 'settings'], list(g.keys())\n"
    "assert len(f['summary']) == 2 * 3 * 3 * 4 * 2\n"
    "n = 0\n"
    "for t in g:\n"
    "    csv = pd.read_csv(f'{d}/{t}.csv', float_precision='round_trip')\n"
    "    cols = list(g[t].attrs['columns'])\n"
    "    assert cols == list(csv.columns), (t, cols, list(csv.columns))\n"
    "    assert g[t].attrs['caption']\n"
    "    for c in cols:\n"
    "        ds = g[t][c]\n"
    "        assert len(ds) == len(csv), (t, c)\n"
    "        if ds.dtype.kind == 'O':\n"
    "            v = np.array([x if x else np.nan for x in ds.asstr()[:]], dtype=object)\n"
    "            w = csv[c].values\n"
    "            assert all((a == b) or (a != a and b != b) for a, b in zip(v, w)), (t, c, v[:3], w[:3])\n"
    "        else:\n"
    "            v = ds[:].astype(float)\n"
    "            if c == 'replica': v[v < 0] = np.nan\n"
    "            assert np.allclose(v, csv[c].values.astype(float), rtol=0, atol=0, equal_nan=True), (t, c)\n"
    "        n += 1\n"
    "assert n > 60, n\n"
    "print('ok')\n";

static void test_store(void **state) {
    char copy[300], cmd[1400], err[512], out[4096];
    snprintf(copy, sizeof copy, "%s/stored.h5", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", results, copy);
    assert_int_equal(system(cmd), 0);
    report_options o = report_default_options();
    assert_int_equal(report_store(copy, &o, err, sizeof err), REPORT_OK);
    assert_int_equal(report_store(copy, &o, err, sizeof err), REPORT_OK);   /* replaces /report */
    const char *d = render_csv("csv-store", "loss", NULL);   /* /report holds the decision kind's tables */
    snprintf(cmd, sizeof cmd, "'%s' '%s' 2>&1", copy, d);
    int rc = tu_python(store_check, cmd, out, sizeof out);
    if (rc) fail_msg("h5py check failed (%d): %s", rc, out);
    /* the file still reads as before: same tables from /summary */
    char *a = strdup(render(REPORT_MD));
    char *saved = strdup(results);
    snprintf(results, sizeof results, "%s", copy);
    char *b = render(REPORT_MD);
    assert_string_equal(strchr(a, '\n'), strchr(b, '\n'));   /* all but the first line, which names the file */
    snprintf(results, sizeof results, "%s", saved);
    free(a); free(saved);
    /* the temporary copy cannot be created (a folder has its name): an error naming it, and
     * the file byte for byte as it was */
    char tmp[1000], backup[700], host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld@%s", copy, (long)getpid(), host);
    snprintf(backup, sizeof backup, "%s/backup.h5", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", copy, backup);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(tmp, 0777), 0);
    assert_int_equal(report_store(copy, &o, err, sizeof err), REPORT_ERR_FILE);
    assert_non_null(strstr(err, "cannot create"));
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", copy, backup);
    assert_int_equal(system(cmd), 0);
    rmdir(tmp);
}

/* Options that name no score kind or p-value of the file, and csv without a folder, are usage
 * errors naming what is available. */
static void test_bad_options(void **state) {
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    report_options o = report_default_options();
    o.score = "logit";
    assert_int_equal(report_write(results, &o, f, err, sizeof err), REPORT_ERR_USAGE);
    assert_non_null(strstr(err, "loss, conf"));
    o = report_default_options();
    o.decide = "bayes";
    assert_int_equal(report_write(results, &o, f, err, sizeof err), REPORT_ERR_USAGE);
    assert_non_null(strstr(err, "perm"));
    o = report_default_options();
    o.format = REPORT_CSV;
    assert_int_equal(report_write(results, &o, f, err, sizeof err), REPORT_ERR_USAGE);
    assert_non_null(strstr(err, "-o"));
    fclose(f);
    report_format fmt;
    assert_int_equal(report_format_parse("html", &fmt), -1);
    /* --score and --decision reach the Markdown too */
    o = report_default_options();
    o.score = "conf"; o.decide = "rank";
    assert_non_null(strstr(render_opts(&o), "(score: conf, decision: p_rank)"));
    assert_non_null(strstr(render_opts(&o), "median p_rank"));
}

/* LaTeX: booktabs, every table with a caption and a label of its experiment (the results
 * file's folder, "rep"), a longtable past REPORT_LATEX_LONG rows (the 72-row models table)
 * and a float otherwise, never split into parts; every row as wide as its column spec; escaped
 * names; compiled by pdflatex where it is installed. */
static void test_latex(void **state) {
    char *tex = render(REPORT_LATEX);
    assert_null(strstr(tex, "\\hline"));
    assert_null(strstr(tex, "part 1 of"));
    assert_null(strstr(tex, "\\label{tab:models}"));
    assert_non_null(strstr(tex, "\\label{tab:rep-models}"));
    assert_non_null(strstr(tex, "\\label{tab:rep-settings}"));
    assert_non_null(strstr(tex, "\\label{tab:rep-calibration}"));
    assert_non_null(strstr(tex, "\\label{tab:rep-fidelity}"));
    assert_non_null(strstr(tex, "p\\_perm"));
    assert_non_null(strstr(tex, "TPR@1\\%FPR"));
    int floats = 0, longs = 0, captions = 0, bottoms = 0;
    for (const char *p = tex; (p = strstr(p, "\\begin{table}")); p++) floats++;
    for (const char *p = tex; (p = strstr(p, "\\begin{longtable}")); p++) longs++;
    for (const char *p = tex; (p = strstr(p, "\\caption{")); p++) captions++;
    for (const char *p = tex; (p = strstr(p, "\\bottomrule")); p++) bottoms++;
    assert_int_equal(longs, 1);
    assert_int_equal(floats, 3);
    assert_int_equal(captions, 4);
    assert_int_equal(bottoms, 4);
    const char *lt = strstr(tex, "\\begin{longtable}");
    assert_true(strstr(lt, "\\endhead") && strstr(lt, "\\endhead") < strstr(lt, "\\end{longtable}"));
    assert_true(strstr(lt, "\\label{tab:rep-models}") < strstr(lt, "\\end{longtable}"));
    /* every tabular and longtable: each row has as many cells as its column spec */
    const char *envs[] = {"\\begin{tabular}{", "\\begin{longtable}{"}, *ends[] = {"\\end{tabular}", "\\end{longtable}"};
    for (int e = 0; e < 2; e++)
        for (const char *p = tex; (p = strstr(p, envs[e]));) {
            p += strlen(envs[e]);
            int ncol = (int)(strchr(p, '}') - p);
            assert_true(ncol >= 2);
            const char *end = strstr(p, ends[e]);
            for (const char *l = strchr(p, '\n') + 1; l < end; l = strchr(l, '\n') + 1) {
                int amp = 0;
                for (const char *c = l; *c != '\n'; c++) amp += *c == '&' && c[-1] != '\\';
                assert_true(amp == 0 || amp == ncol - 1);
            }
        }
    if (system("command -v pdflatex >/dev/null 2>&1")) {
        print_message("note: pdflatex not installed; the LaTeX output was not compiled\n");
        return;
    }
    char dir[400], path[500], cmd[1200];
    snprintf(dir, sizeof dir, "%s/tex", tu_tmpdir());
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/report.tex", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "\\documentclass{article}\n\\usepackage{booktabs,graphicx,longtable}\n\\begin{document}\n%s\n\\end{document}\n", tex);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && pdflatex -interaction=nonstopmode -halt-on-error report.tex >/dev/null 2>&1", dir);
    assert_int_equal(system(cmd), 0);
}

/* The independent models are the rows with independent = 1, whatever their role is called, and a
 * file without decision settings is refused with a message naming the file and the attribute. */
static void test_flags_and_settings(void **state) {
    char dir[300], shards[340], p[512], out[400], err[512];
    snprintf(dir, sizeof dir, "%s/flags", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    for (int r = 0; r < 3; r++)
        for (int s = 1; s <= NSEED; s++) {
            fill_job(x, 0, r, s, 0);
            if (r == 2) snprintf(x->job.role, sizeof x->job.role, "other-data");   /* no "indep" prefix */
            snprintf(p, sizeof p, "%s/%s.h5", shards, x->job.id);
            assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
        }
    snprintf(out, sizeof out, "%s/results.h5", dir);
    if (store_merge(shards, out, &prov, err, sizeof err)) fail_msg("merge: %s", err);
    char shared[sizeof results];
    snprintf(shared, sizeof shared, "%s", results);
    snprintf(results, sizeof results, "%s", out);
    char *md = render(REPORT_MD);
    snprintf(results, sizeof results, "%s", shared);
    assert_non_null(strstr(md, "| perm (decision) | 3 |"));     /* 3 independent models */
    assert_int_equal(count_lines_with(md, "| other-data#0 |", NULL), 3);
    /* the same shards, written without settings */
    memset(&prov.settings, 0, sizeof prov.settings);
    snprintf(p, sizeof p, "%s/bare.h5", dir);
    assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(report_print(p, REPORT_MD, f, err, sizeof err), -1);
    fclose(f);
    assert_non_null(strstr(err, "bare.h5"));
    assert_non_null(strstr(err, "decide"));
    free(x);
}

static void test_missing_file(void **state) {
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(report_print("/nonexistent/results.h5", REPORT_MD, f, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/results.h5"));
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_table),
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test(test_fidelity_gap),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_latex),
        cmocka_unit_test(test_flags_and_settings),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests_name("report", tests, setup, NULL);
}
