/* plan: expands a validated config into the list of independent jobs (see plan.h). */
#include "plan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const plan_role_info plan_roles[ROLE_COUNT] = {
    {"owner",      1, 0, "train + D_k: the fingerprinted model"},
    {"clean",      0, 0, "train only, same init seed as the owner: the fidelity reference"},
    {"indep-data", 0, 1, "disjoint training data of the same size and distribution"},
    {"indep-seed", 0, 1, "the owner's training data without any mini-dataset, other init seed"},
    {"indep-arch", 0, 1, "the owner's training data without any mini-dataset, pmi.indep_arch"},
};

static int role_count(plan_role r, const pmi_params *p) {
    if (!plan_roles[r].independent) return 1;
    return p->independent;
}

int plan_build(const cfg *c, plan_job **jobs, int *n, char *err, size_t errlen) {
    int points = cfg_sweep_count(c), cap = 16, count = 0;
    plan_job *v = malloc(sizeof *v * cap);
    if (!v) { snprintf(err, errlen, "plan: out of memory"); return -1; }
    for (int pt = 0; pt < points; pt++) {
        pmi_params p;
        if (cfg_point(c, pt, &p, err, errlen)) { free(v); return -1; }
        for (int s = 0; s < p.seeds; s++)
            for (int r = 0; r < ROLE_COUNT; r++)
                for (int rep = 0; rep < role_count(r, &p); rep++) {
                    if (count == cap) {
                        plan_job *nv = realloc(v, sizeof *v * (cap *= 2));
                        if (!nv) { free(v); snprintf(err, errlen, "plan: out of memory"); return -1; }
                        v = nv;
                    }
                    plan_job *j = &v[count++];
                    j->point = pt; j->seed = p.seed + s; j->role = (plan_role)r; j->replica = rep;
                    if (plan_roles[r].independent)
                        snprintf(j->id, sizeof j->id, "p%d-s%d-%s-r%d", pt, j->seed, plan_roles[r].name, rep);
                    else
                        snprintf(j->id, sizeof j->id, "p%d-s%d-%s", pt, j->seed, plan_roles[r].name);
                }
    }
    *jobs = v; *n = count;
    return 0;
}

int plan_slice(plan_job *jobs, int n, int slice, int nslices) {
    int kept = 0;
    for (int j = 0; j < n; j++)
        if (j % nslices == slice) jobs[kept++] = jobs[j];
    return kept;
}

uint64_t plan_init_seed(const plan_job *j) {
    uint64_t base = (uint64_t)j->seed * 1000003u;
    if (!plan_roles[j->role].independent) return base;
    return base + 7919u * (uint64_t)(j->role * 1000 + j->replica + 1);
}
