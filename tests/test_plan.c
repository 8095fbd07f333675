/* Tests of the plan module: plan_build types the whole config once (points with their
 * parameters, labels and score kinds, attack settings, jobs, effective text and hash), the
 * config hash ignores the seed count and nothing else, and plan_seed gives every purpose its
 * own stream while sharing exactly what must be shared (the split of one seed, the init of
 * the owner and clean pair). */
#include "testutil.h"
#include "config.h"
#include "plan.h"
#include "runner.h"

static plan *build(const char *text, char *err, size_t errlen) {
    char path[300];
    snprintf(path, sizeof path, "%s/plan-%d.ini", tu_tmpdir(), rand());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    cfg *c = cfg_create();
    plan *p = NULL;
    if (cfg_load(c, path, err, errlen) || cfg_validate(c, err, errlen) || plan_build(c, &p, err, errlen)) p = NULL;
    cfg_free(c);
    return p;
}

static const char *sweep_ini =
    "[experiment]\nname = plan-test\nseeds = 2\nseed = 5\n"
    "[pool]\nN = 10\nm = 20, 50\n"
    "[pmi]\nindependent = 2\nscores = conf, loss\n"
    "[attack.prune]\ntype = prune\nsparsity = 0.2, 0.5\n";

static void test_build_types_everything(void **state) {
    char err[512];
    plan *p = build(sweep_ini, err, sizeof err);
    if (!p) fail_msg("plan_build: %s", err);
    assert_int_equal(p->n_points, 2);
    assert_int_equal(p->points[0].params.m, 20);
    assert_int_equal(p->points[1].params.m, 50);
    assert_string_equal(p->points[1].label, "pool.m=50");
    assert_int_equal(p->points[0].n_kinds, 2);
    assert_int_equal(p->points[0].kinds[0], pmi_score_parse("conf"));
    assert_int_equal(p->points[0].kinds[1], pmi_score_parse("loss"));
    /* 2 points x 2 seeds x (owner + clean + 3 independent roles x 2 replicas) */
    assert_int_equal(p->n_jobs, 2 * 2 * (2 + 3 * 2));
    assert_string_equal(p->jobs[0].id, "p0-s5-owner");
    assert_string_equal(p->jobs[2].id, "p0-s5-indep-data-r0");
    assert_int_equal(p->jobs[p->n_jobs - 1].point, 1);
    assert_int_equal(p->jobs[p->n_jobs - 1].seed, 6);
    assert_int_equal(p->n_attacks, 2);
    assert_string_equal(p->attacks[1].strength_key, "sparsity");
    assert_non_null(strstr(p->config_text, "[attack.prune]"));
    assert_int_equal(strlen(p->config_hash), 16);
    plan_job arch_job = p->jobs[0];
    arch_job.role = ROLE_INDEP_ARCH;
    assert_string_equal(plan_arch(p, &arch_job), p->points[0].params.indep_arch);
    assert_ptr_equal(plan_params(p, &p->jobs[p->n_jobs - 1]), &p->points[1].params);
    plan_free(p);
}

/* A GPU run's default --batch is the smallest registry batch of the architectures a plan's jobs
 * train: 128 LeNets with MLP independents (the paper's experiments), 64 as soon as one job trains
 * a VGG-11 or a small CNN, whatever the other jobs train. */
static void test_default_batch_follows_the_architectures(void **state) {
    static const struct { const char *set; int batch; } rows[] = {
        {"", 128},                                      /* lenet owners, lenet independents */
        {"[pmi]\nindep_arch = mlp\n", 128},
        {"[pmi]\nindep_arch = vgg11\n", 64},
        {"[model]\narch = cnn\n", 64},
        {"[model]\narch = mlp\n[pmi]\nindep_arch = resnet18\n", 64},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[512], text[1024];
        snprintf(text, sizeof text, "%s%s", sweep_ini, rows[i].set);
        plan *p = build(text, err, sizeof err);
        if (!p) fail_msg("plan_build: %s", err);
        if (runner_default_batch(p) != rows[i].batch)
            fail_msg("'%s': default batch %d, expected %d", rows[i].set, runner_default_batch(p), rows[i].batch);
        plan_free(p);
    }
    assert_int_equal(nn_arch_batch("no-such-arch"), 0);
}

static void test_bad_attack_fails_the_plan(void **state) {
    char err[512];
    plan *p = build("[attack.x]\ntype = ftal\nepochs = 1.5\n", err, sizeof err);
    assert_null(p);
    assert_non_null(strstr(err, ".ini:3"));
    plan_free(NULL);
    /* a name the results file cannot hold is refused before anything runs (was cut to 63) */
    char ini[512] = "[experiment]\nname = ";
    memset(ini + strlen(ini), 'x', 80);
    strcat(ini, "\n");
    assert_null(build(ini, err, sizeof err));
    assert_non_null(strstr(err, "experiment.name"));
    assert_non_null(strstr(err, "longer than 63"));
}

static void test_hash_ignores_only_seeds_and_output(void **state) {
    char a[17], b[17], c[17], d[17];
    plan_config_hash("[experiment]\nname = x\nseeds = 3\n[pool]\nN = 10\n", a);
    plan_config_hash("[experiment]\nname = x\nseeds = 7\n[pool]\nN = 10\n", b);
    plan_config_hash("[experiment]\nname = x\nseeds = 3\n[pool]\nN = 11\n", c);
    plan_config_hash("[experiment]\nname = x\nseeds = 3\n[attack.a]\nseeds = 3\n[pool]\nN = 10\n", d);
    assert_string_equal(a, b);
    char e[17];
    plan_config_hash("[experiment]\nname = x\nseeds = 3\noutput = /elsewhere\n[pool]\nN = 10\n", e);
    assert_string_equal(a, e);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);   /* a `seeds` key elsewhere is not the seed count */
}

static plan_job job(int seed, plan_role role, int replica) {
    plan_job j = {.point = 0, .seed = seed, .role = role, .replica = replica};
    return j;
}

static void test_seed_sharing(void **state) {
    plan_job owner = job(3, ROLE_OWNER, 0), clean = job(3, ROLE_CLEAN, 0);
    plan_job d0 = job(3, ROLE_INDEP_DATA, 0), d1 = job(3, ROLE_INDEP_DATA, 1), s0 = job(3, ROLE_INDEP_SEED, 0);
    plan_job other = job(4, ROLE_OWNER, 0);
    /* the split, batch order, attacks and permutation tests are shared by a seed's jobs */
    for (int purpose = SEED_SPLIT; purpose <= SEED_VERIFY; purpose++) {
        if (purpose == SEED_INIT) continue;
        assert_true(plan_seed(&owner, purpose, 0) == plan_seed(&d1, purpose, 0));
        assert_true(plan_seed(&owner, purpose, 0) != plan_seed(&other, purpose, 0));
    }
    /* init: owner and clean share (the fidelity pair); every independent has its own */
    assert_true(plan_seed(&owner, SEED_INIT, 0) == plan_seed(&clean, SEED_INIT, 0));
    uint64_t inits[4] = {plan_seed(&owner, SEED_INIT, 0), plan_seed(&d0, SEED_INIT, 0),
                         plan_seed(&d1, SEED_INIT, 0), plan_seed(&s0, SEED_INIT, 0)};
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++) assert_true(inits[i] != inits[k]);
}

/* Reference models: R jobs per seed after the independent roles, replicas 0..R-1; each has its
 * own init, batch order and subset stream, while the split is the seed's; pmi.decide_score moves
 * the decision kind first; a slice by seed group keeps a seed's jobs together. */
static void test_reference_jobs(void **state) {
    char err[512];
    plan *p = build("[experiment]\nname = ref-test\nseeds = 2\nseed = 5\n[pool]\nm = 20, 50\n"
                    "[pmi]\nindependent = 1\nreferences = 3\nscores = loss, diff, lira\ndecide_score = lira\n", err, sizeof err);
    if (!p) fail_msg("plan_build: %s", err);
    assert_true(plan_has_references(p));
    /* 2 points x 2 seeds x (owner + clean + 3 independent + 3 references) */
    assert_int_equal(p->n_jobs, 2 * 2 * 8);
    assert_string_equal(p->jobs[5].id, "p0-s5-reference-r0");
    assert_string_equal(p->jobs[7].id, "p0-s5-reference-r2");
    assert_int_equal(p->jobs[7].replica, 2);
    assert_int_equal(p->points[0].kinds[0], SCORE_LIRA);
    assert_int_equal(p->points[0].kinds[1], SCORE_LOSS);
    assert_int_equal(p->points[0].kinds[2], SCORE_DIFF);
    const plan_job *owner = &p->jobs[0], *r0 = &p->jobs[5], *r1 = &p->jobs[6];
    assert_true(plan_seed(r0, SEED_SPLIT, 0) == plan_seed(owner, SEED_SPLIT, 0));
    for (int purpose = SEED_INIT; purpose <= SEED_SUBSET; purpose++) {
        if (purpose == SEED_ATTACK || purpose == SEED_VERIFY) {   /* shared: same attack, same test */
            assert_true(plan_seed(r0, purpose, 0) == plan_seed(owner, purpose, 0));
            continue;
        }
        assert_true(plan_seed(r0, purpose, 0) != plan_seed(owner, purpose, 0));
        assert_true(plan_seed(r0, purpose, 0) != plan_seed(r1, purpose, 0));
    }
    plan_job *jobs = malloc(sizeof *jobs * (size_t)p->n_jobs);
    memcpy(jobs, p->jobs, sizeof *jobs * (size_t)p->n_jobs);
    int n = plan_slice_groups(jobs, p->n_jobs, 1, 2);
    assert_int_equal(n, 2 * 8);   /* groups 1 and 3: (point 0, seed 6) and (point 1, seed 6) */
    for (int j = 0; j < n; j++) assert_int_equal(jobs[j].seed, 6);
    assert_int_equal(jobs[8].point, 1);
    free(jobs);
    plan_free(p);
    assert_null(build("[pmi]\nreferences = 1\nscores = loss\ndecide_score = conf\n", err, sizeof err));
    assert_non_null(strstr(err, "decide_score"));
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* No two (seed, purpose, index) share a stream: 200 seeds x 5 purposes x 8 indices, all distinct
 * (the old constants gave seed*7777+k for the permutation test and `seed` for the split: the
 * same GSL stream at seed 0). Seeds fit in 63 bits. */
static void test_purposes_never_collide(void **state) {
    enum { S = 200, P = 5, I = 8 };
    uint64_t *v = malloc(sizeof *v * S * P * I);
    int n = 0;
    for (int s = 0; s < S; s++) {
        plan_job j = job(s, ROLE_OWNER, 0);
        for (int p = SEED_SPLIT; p <= SEED_VERIFY; p++)
            for (int i = 0; i < I; i++) v[n++] = plan_seed(&j, p, (uint64_t)i);
    }
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    for (int i = 0; i < n; i++) assert_true(v[i] >> 63 == 0);
    for (int i = 1; i < n; i++) assert_true(v[i] != v[i - 1]);
    free(v);
}

/* --shard and --gpus slices: every job in exactly one slice, the jobs of one point and seed
 * (a group, trained together on a GPU) always in the same slice, groups dealt round-robin. */
static void test_group_slices_keep_groups_together(void **state) {
    char err[512];
    plan *p = build(sweep_ini, err, sizeof err);
    if (!p) fail_msg("plan_build: %s", err);
    assert_int_equal(plan_groups(p->jobs, p->n_jobs), 4);   /* 2 points x 2 seeds */
    for (int n = 1; n <= 6; n++) {
        int seen[256] = {0}, total = 0;
        assert_true(p->n_jobs <= 256);
        for (int i = 0; i < n; i++) {
            plan_job *jobs = malloc(sizeof *jobs * (size_t)p->n_jobs);
            memcpy(jobs, p->jobs, sizeof *jobs * (size_t)p->n_jobs);
            int k = plan_slice_groups(jobs, p->n_jobs, i, n);
            assert_int_equal(plan_groups(jobs, k), (4 - i + n - 1) / n);   /* groups i, i+n, ... of 4 */
            for (int a = 0; a < k; a++) {
                int idx = -1;
                for (int j = 0; j < p->n_jobs; j++) if (!strcmp(p->jobs[j].id, jobs[a].id)) idx = j;
                assert_true(idx >= 0);
                seen[idx]++;
                total++;
                /* every job of this job's point and seed is in this slice too */
                for (int j = 0; j < p->n_jobs; j++)
                    if (p->jobs[j].point == jobs[a].point && p->jobs[j].seed == jobs[a].seed) {
                        int found = 0;
                        for (int b = 0; b < k; b++) found += !strcmp(jobs[b].id, p->jobs[j].id);
                        assert_int_equal(found, 1);
                    }
            }
            free(jobs);
        }
        assert_int_equal(total, p->n_jobs);
        for (int j = 0; j < p->n_jobs; j++) assert_int_equal(seen[j], 1);
    }
    plan_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_types_everything),
        cmocka_unit_test(test_bad_attack_fails_the_plan),
        cmocka_unit_test(test_default_batch_follows_the_architectures),
        cmocka_unit_test(test_hash_ignores_only_seeds_and_output),
        cmocka_unit_test(test_seed_sharing),
        cmocka_unit_test(test_purposes_never_collide),
        cmocka_unit_test(test_group_slices_keep_groups_together),
        cmocka_unit_test(test_reference_jobs),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
