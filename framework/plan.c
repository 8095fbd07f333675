/* plan: a validated config turned into the typed plan of a run (see plan.h). */
#include "plan.h"
#include "store.h"
#include "util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const plan_role_info plan_roles[ROLE_COUNT] = {
    {"owner",      1, 0, 1, "train + D_k: the fingerprinted model"},
    {"clean",      0, 0, 1, "train only, same init seed as the owner: the fidelity reference"},
    {"indep-data", 0, 1, 0, "disjoint training data of the same size and distribution"},
    {"indep-seed", 0, 1, 1, "the owner's training data without any mini-dataset, other init seed"},
    {"indep-arch", 0, 1, 1, "the owner's training data without any mini-dataset, pmi.indep_arch"},
    {"reference",  0, 0, 0, "the owner's training data without any mini-dataset and without the dataset evidence's S side "
                            "(or a pmi.reference_fraction of it), own init and batch order: calibrates the diff and lira "
                            "scores; not independent"},
};

static int role_count(plan_role r, const pmi_params *p) {
    return r == ROLE_REFERENCE ? p->references : plan_roles[r].independent ? p->independent : 1;
}

static void add_jobs(plan *pl, int pt, int *cap) {
    const pmi_params *p = &pl->points[pt].params;
    for (int s = 0; s < p->seeds; s++)
        for (int r = 0; r < ROLE_COUNT; r++)
            for (int rep = 0; rep < role_count((plan_role)r, p); rep++) {
                if (pl->n_jobs == *cap) pl->jobs = util_realloc(pl->jobs, sizeof *pl->jobs * (size_t)(*cap *= 2));
                plan_job *j = &pl->jobs[pl->n_jobs];
                j->index = pl->n_jobs++;
                j->point = pt; j->seed = p->seed + s; j->role = (plan_role)r; j->replica = rep;
                if (plan_roles[r].independent || r == ROLE_REFERENCE)
                    snprintf(j->id, sizeof j->id, "p%d-s%d-%s-r%d", pt, j->seed, plan_roles[r].name, rep);
                else
                    snprintf(j->id, sizeof j->id, "p%d-s%d-%s", pt, j->seed, plan_roles[r].name);
            }
}

/* pmi.scores into kinds, pmi.decide_score moved first (cfg_validate has checked the names and
 * the references; this refuses what slipped by). */
static int parse_kinds(plan_point *pt, char *err, size_t errlen) {
    char *buf = util_strdup(pt->params.scores);
    pt->n_kinds = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int k = pmi_score_parse(t);
        for (int i = 0; i < pt->n_kinds && k >= 0; i++) if (pt->kinds[i] == k) k = -1;
        if (k < 0 || pt->n_kinds == SCORE_COUNT) { free(buf); return util_err(err, errlen, "pmi.scores: unknown or repeated score kind '%s'", t); }
        if (pt->params.references < pmi_score_min_refs((pmi_score_kind)k)) {
            free(buf);
            return util_err(err, errlen, "pmi.scores: '%s' needs pmi.references >= %d", t, pmi_score_min_refs((pmi_score_kind)k));
        }
        pt->kinds[pt->n_kinds++] = k;
    }
    free(buf);
    if (!pt->n_kinds) return util_err(err, errlen, "pmi.scores: no score kind");
    if (!pt->params.decide_score[0]) return 0;
    int d = pmi_score_parse(pt->params.decide_score), at = -1;
    for (int i = 0; i < pt->n_kinds; i++) if (pt->kinds[i] == d) at = i;
    if (at < 0) return util_err(err, errlen, "pmi.decide_score: '%s' is not one of pmi.scores", pt->params.decide_score);
    memmove(pt->kinds + 1, pt->kinds, sizeof *pt->kinds * (size_t)at);
    pt->kinds[0] = d;
    return 0;
}

/* Names the results file stores in fixed fields must fit them: refused here, before anything
 * runs, rather than cut when the first shard is written. */
static int check_names(const pmi_params *p, char *err, size_t errlen) {
    const struct { const char *key, *value; } names[] = {
        {"experiment.name", p->name}, {"data.dataset", p->dataset}, {"model.arch", p->arch}, {"pmi.indep_arch", p->indep_arch}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].value) >= STORE_NAME)
            return util_err(err, errlen, "%s: '%s' is longer than %d characters (the results file's limit)",
                            names[i].key, names[i].value, STORE_NAME - 1);
    return 0;
}

int64_t plan_data_side(const pmi_params *p) {
    return p->holdout > 0 ? (int64_t)p->holdout + (int64_t)(p->N - 1) * p->m : 0;
}

/* The dataset evidence's S side is that many of the owner's training samples, and the
 * references train on the rest of them. */
static int check_holdout(const pmi_params *p, char *err, size_t errlen) {
    int64_t side = plan_data_side(p);
    if (side >= p->n_train)
        return util_err(err, errlen, "pmi.holdout = %d: the dataset evidence compares holdout + (N-1)*m = %lld held-out "
                        "samples with as many of the owner's training samples, which needs data.n_train > %lld (it is %d; "
                        "the references train on the rest)", p->holdout, (long long)side, (long long)side, p->n_train);
    return 0;
}

int plan_build(const cfg *c, plan **out, char *err, size_t errlen) {
    plan *pl = util_calloc(1, sizeof *pl);
    int cap = 16;
    *out = NULL;
    pl->n_points = cfg_sweep_count(c);
    pl->points = util_calloc((size_t)pl->n_points, sizeof *pl->points);
    pl->jobs = util_malloc(sizeof *pl->jobs * (size_t)cap);
    for (int pt = 0; pt < pl->n_points; pt++) {
        if (cfg_point(c, pt, &pl->points[pt].params, err, errlen) || check_names(&pl->points[pt].params, err, errlen) ||
            check_holdout(&pl->points[pt].params, err, errlen)) goto fail;
        size_t len = (size_t)cfg_point_label(c, pt, NULL, 0) + 1;
        char *label = pl->points[pt].label = util_malloc(len);
        cfg_point_label(c, pt, label, len);
        if (strlen(label) >= sizeof ((store_job *)0)->point) {
            util_err(err, errlen, "the sweep label '%s' is longer than %zu characters (the results file's limit)",
                     label, sizeof ((store_job *)0)->point - 1);
            goto fail;
        }
        if (parse_kinds(&pl->points[pt], err, errlen)) goto fail;
        add_jobs(pl, pt, &cap);
    }
    if (attack_plan(c, &pl->attacks, &pl->n_attacks, err, errlen)) goto fail;
    if (!(pl->config_text = cfg_effective_text(c))) { util_err(err, errlen, "plan: out of memory"); goto fail; }
    plan_config_hash(pl->config_text, pl->config_hash);
    *out = pl;
    return 0;
fail:
    plan_free(pl);
    return -1;
}

void plan_free(plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_points; i++) free(p->points[i].label);
    free(p->points); free(p->jobs); free(p->attacks); free(p->config_text);
    free(p);
}

const pmi_params *plan_params(const plan *p, const plan_job *j) {
    return &p->points[j->point].params;
}

const char *plan_arch(const plan *p, const plan_job *j) {
    const pmi_params *pp = plan_params(p, j);
    return j->role == ROLE_INDEP_ARCH ? pp->indep_arch : pp->arch;
}

int plan_slice(plan_job *jobs, int n, int slice, int nslices) {
    int kept = 0;
    for (int j = 0; j < n; j++)
        if (j % nslices == slice) jobs[kept++] = jobs[j];
    return kept;
}

int plan_slice_groups(plan_job *jobs, int n, int slice, int nslices) {
    int kept = 0, group = -1, point = -1, seed = -1;
    for (int j = 0; j < n; j++) {
        if (!j || jobs[j].point != point || jobs[j].seed != seed) group++;
        point = jobs[j].point; seed = jobs[j].seed;
        if (group % nslices == slice) jobs[kept++] = jobs[j];
    }
    return kept;
}

int plan_groups(const plan_job *jobs, int n) {
    int g = 0;
    for (int j = 0; j < n; j++) g += !j || jobs[j].point != jobs[j - 1].point || jobs[j].seed != jobs[j - 1].seed;
    return g;
}

int plan_has_references(const plan *p) {
    for (int i = 0; i < p->n_points; i++)
        if (p->points[i].params.references > 0) return 1;
    return 0;
}

/* True for the lines the config hash leaves out: [experiment] seeds (adding seeds keeps
 * earlier jobs valid) and output (where the folder lies, not what is in it). */
static int is_unhashed_line(const char *line, const char *section) {
    static const char *const keys[] = {"seeds", "output"};
    if (strcmp(section, "[experiment]")) return 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t n = strlen(keys[i]);
        if (!strncmp(line, keys[i], n) && strchr(" =\t", line[n])) return 1;
    }
    return 0;
}

void plan_config_hash(const char *text, char out[17]) {
    uint64_t h = 1469598103934665603ull;          /* FNV-1a 64 offset basis */
    char section[64] = "";
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        if (line[0] == '[') snprintf(section, sizeof section, "%.*s", (int)(len < 63 ? len : 63), line);
        if (!is_unhashed_line(line, section))
            for (size_t i = 0; i <= len && line[i]; i++) { h ^= (unsigned char)line[i]; h *= 1099511628211ull; }
        line += len + (line[len] == '\n');
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* An effective config text as "section.key" / value pairs (continuation lines joined with one
 * space), the unhashed lines left out. Returns the count; free each name and value. */
static int config_entries(const char *text, char ***names, char ***values) {
    int n = 0, cap = 0;
    char section[64] = "", **nm = NULL, **va = NULL;
    for (const char *line = text; *line;) {
        int len = (int)strcspn(line, "\n");
        const char *eq = memchr(line, '=', (size_t)len);
        if (line[0] == '[') snprintf(section, sizeof section, "%.*s", len < 63 ? len : 63, line);
        else if (line[0] == ' ' && n > 0 && va[n - 1]) {   /* a continuation of the last value */
            char *v = util_malloc(strlen(va[n - 1]) + (size_t)len + 1);
            sprintf(v, "%s %.*s", va[n - 1], len - 2, line + 2);
            free(va[n - 1]);
            va[n - 1] = v;
        } else if (eq && line[0] != ';' && !is_unhashed_line(line, section)) {
            if (n == cap) { cap = cap ? 2 * cap : 64; nm = util_realloc(nm, sizeof *nm * (size_t)cap); va = util_realloc(va, sizeof *va * (size_t)cap); }
            int kl = (int)(eq - line);
            while (kl > 0 && line[kl - 1] == ' ') kl--;
            const char *v = eq + 1 + (eq[1] == ' ');
            nm[n] = util_malloc(strlen(section) + (size_t)kl + 2);
            sprintf(nm[n], "%.*s.%.*s", (int)strlen(section) - 2, section + 1, kl, line);
            size_t vl = (size_t)(line + len - v);
            va[n] = util_malloc(vl + 1);
            memcpy(va[n], v, vl);
            va[n++][vl] = 0;
        }
        line += len + (line[len] == '\n');
    }
    *names = nm; *values = va;
    return n;
}

static const char *entry_value(char **names, char **values, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(names[i], name)) return values[i];
    return NULL;
}

/* Appends "name: a -> b" to out (used bytes *u); "..." once it is full. */
static void add_change(char *out, size_t len, size_t *u, const char *name, const char *a, const char *b) {
    if (*u >= len) return;
    int k = snprintf(out + *u, len - *u, "%s%s: %s -> %s", *u ? "; " : "", name, a ? a : "(none)", b ? b : "(none)");
    *u = k < 0 || (size_t)k >= len - *u ? len : *u + (size_t)k;
    if (*u == len && len > 4) strcpy(out + len - 4, "...");
}

int plan_config_diff(const char *old_text, const char *new_text, char *out, size_t len) {
    char **on, **ov, **nn, **nv;
    int no = config_entries(old_text, &on, &ov), nnew = config_entries(new_text, &nn, &nv), changed = 0;
    size_t u = 0;
    if (len) out[0] = 0;
    for (int i = 0; i < nnew; i++) {
        const char *o = entry_value(on, ov, no, nn[i]);
        if (o && !strcmp(o, nv[i])) continue;
        add_change(out, len, &u, nn[i], o, nv[i]);
        changed++;
    }
    for (int i = 0; i < no; i++) {
        if (entry_value(nn, nv, nnew, on[i])) continue;
        add_change(out, len, &u, on[i], ov[i], NULL);
        changed++;
    }
    for (int i = 0; i < no; i++) { free(on[i]); free(ov[i]); }
    for (int i = 0; i < nnew; i++) { free(nn[i]); free(nv[i]); }
    free(on); free(ov); free(nn); free(nv);
    return changed;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t plan_seed(const plan_job *j, plan_seed_purpose purpose, uint64_t index) {
    uint64_t who = 0;   /* shared by every job of the seed unless the purpose is the job's own */
    int own = (purpose == SEED_INIT && (plan_roles[j->role].independent || j->role == ROLE_REFERENCE))
              || (j->role == ROLE_REFERENCE && (purpose == SEED_BATCH || purpose == SEED_SUBSET));
    if (own) who = 1 + (uint64_t)j->role * 1000003u + (uint64_t)j->replica;
    uint64_t h = splitmix64((uint64_t)(int64_t)j->seed);
    h = splitmix64(h ^ (uint64_t)purpose);
    h = splitmix64(h ^ who);
    return splitmix64(h ^ index) >> 1;   /* 63 bits: safe where a signed seed is expected */
}
