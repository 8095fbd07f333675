/* plan: expands a validated config into the list of independent jobs.
 *
 * A job is one trained model: a sweep point x a seed x a role (x a replica for independent
 * models). Its attacks run inside the job. The order is deterministic: points, then seeds,
 * then roles in the order of plan_roles. A job's id is file-name safe and unique within the
 * experiment ("p0-s1-owner", "p0-s1-indep-data-r0"); its shard is <shards>/<id>.h5. */
#ifndef PMI_PLAN_H
#define PMI_PLAN_H
#include "config.h"

typedef enum { ROLE_OWNER = 0, ROLE_CLEAN, ROLE_INDEP_DATA, ROLE_INDEP_SEED, ROLE_INDEP_ARCH, ROLE_COUNT } plan_role;

/* What each role trains on and how it is initialised; one row per role. */
typedef struct {
    const char *name;      /* "owner", "clean", ... */
    int trained_on_k;      /* D_k in its training data */
    int independent;       /* counts toward the false-positive rate */
    const char *help;
} plan_role_info;
extern const plan_role_info plan_roles[ROLE_COUNT];

typedef struct {
    char id[128];
    int point;             /* sweep point index */
    int seed;              /* experiment seed (split, secret k, batch order) */
    plan_role role;
    int replica;           /* 0 .. independent-1 for independent roles, 0 otherwise */
} plan_job;

/* Builds the job list of c (malloc'd, *n jobs). Returns 0 or -1 with err. */
int plan_build(const cfg *c, plan_job **jobs, int *n, char *err, size_t errlen);
/* Shard slice "i/n" (0-based i): keeps jobs j with j % n == i. Returns the new count. */
int plan_slice(plan_job *jobs, int n, int slice, int nslices);
/* Model-initialisation seed of a job: owner and clean share one (the fidelity pair), every
 * independent replica gets its own. */
uint64_t plan_init_seed(const plan_job *j);

#endif
