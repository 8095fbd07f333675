/* plan: a validated config turned, once, into everything a run needs; nothing after the plan
 * reads the config again. Data flows config -> plan -> jobs -> shards.
 *
 * The plan holds every sweep point's typed parameters and label, every attack setting, the
 * effective INI text with its hash, and the list of independent jobs. A job is one trained
 * model: a sweep point x a seed x a role (x a replica for independent models). Its attacks
 * run inside the job. The order is deterministic: points, then seeds, then roles in the order
 * of plan_roles. A job's id is file-name safe and unique within the experiment
 * ("p0-s1-owner", "p0-s1-indep-data-r0"); its shard is <shards>/<id>.h5.
 *
 * Every random stream of a job comes from plan_seed(job, purpose, index): the purposes are one
 * enum, so no two uses can share a stream by accident.
 *
 *   plan *p;
 *   if (plan_build(c, &p, err, sizeof err)) ...;   // c can be freed now
 *   for (int j = 0; j < p->n_jobs; j++) { const pmi_params *pp = plan_params(p, &p->jobs[j]); ... }
 *   plan_free(p); */
#ifndef PMI_PLAN_H
#define PMI_PLAN_H
#include <stdint.h>
#include "attack.h"
#include "config.h"
#include "pmi.h"

typedef enum { ROLE_OWNER = 0, ROLE_CLEAN, ROLE_INDEP_DATA, ROLE_INDEP_SEED, ROLE_INDEP_ARCH, ROLE_REFERENCE, ROLE_COUNT } plan_role;

/* What each role trains on and how it is initialised; one row per role. */
typedef struct {
    const char *name;      /* "owner", "clean", ... */
    int trained_on_k;      /* D_k in its training data */
    int independent;       /* counts toward the pool evidence's false-positive rate */
    int owner_data;        /* trained on the dataset evidence's S side (the owner's training set): the
                            * dataset evidence rightly claims it, so it is no null model for that test */
    const char *help;
} plan_role_info;
extern const plan_role_info plan_roles[ROLE_COUNT];

typedef struct {
    char id[128];
    int point;             /* sweep point index */
    int seed;              /* experiment seed (split, secret k, batch order) */
    plan_role role;
    int replica;           /* 0 .. independent-1 for independent roles, 0 .. references-1 for
                            * reference models, 0 otherwise */
    int index;             /* position in plan.jobs (stays with the job through slices) */
} plan_job;

/* One sweep point. */
typedef struct {
    pmi_params params;     /* typed parameters (cfg_point) */
    char *label;           /* "key=value,key=value" of the sweep axes, "" without a sweep */
    int kinds[SCORE_COUNT]; int n_kinds;   /* pmi.scores as pmi_score_kind, decision kind
                                            * (pmi.decide_score, else the first listed) first */
} plan_point;

typedef struct {
    plan_point *points; int n_points;
    plan_job *jobs; int n_jobs;
    attack_setting *attacks; int n_attacks;   /* applied to every job's model, in this order */
    char *config_text;     /* the full effective INI (cfg_effective_text) */
    char config_hash[17];  /* 64-bit FNV-1a of config_text without [experiment] seeds and
                            * output, in hex: adding seeds keeps earlier jobs valid, and a moved
                            * experiment folder stays the same experiment */
} plan;

/* Builds the whole plan of a validated config (points, attacks, jobs, effective text and
 * hash). Returns 0 with *out set (free with plan_free), or -1 with err (a bad point, an
 * [attack.*] error with file:line). */
int plan_build(const cfg *c, plan **out, char *err, size_t errlen);
/* No operation is performed if p is NULL. */
void plan_free(plan *p);
/* The parameters of a job's sweep point. */
const pmi_params *plan_params(const plan *p, const plan_job *j);
/* Shard slice "i/n" (0-based i): keeps jobs j with j % n == i. Returns the new count. */
int plan_slice(plan_job *jobs, int n, int slice, int nslices);
/* The same by group: the jobs of one point and seed (adjacent in a plan) form a group, and
 * group g is kept when g % n == i, so a group's jobs stay together (one GPU trains them at
 * once). Used by --shard and --gpus. Returns the new count. */
int plan_slice_groups(plan_job *jobs, int n, int slice, int nslices);
/* The number of groups (runs of adjacent jobs of one point and seed) in jobs[0..n). */
int plan_groups(const plan_job *jobs, int n);
/* 1 when some sweep point has reference models (pmi.references > 0): then the jobs of one point
 * and seed must run together, since every model is calibrated by the group's references. */
int plan_has_references(const plan *p);
/* The architecture a job trains: pmi.indep_arch for indep-arch models, model.arch otherwise. */
const char *plan_arch(const plan *p, const plan_job *j);
/* Samples per side of the dataset evidence (pmi.h): pmi.holdout + (N - 1) m (H is the held-out
 * set and the pool's other mini-datasets; S's side is as many of the owner's training samples),
 * or 0 when pmi.holdout = 0 (no dataset evidence). plan_build refuses a side larger than
 * data.n_train. */
int64_t plan_data_side(const pmi_params *p);
/* The 64-bit FNV-1a hash of an effective config text, seed count and output folder aside, as
 * 16 hex digits. */
void plan_config_hash(const char *config_text, char out[17]);
/* What changed from one effective config text to another, the lines the hash leaves out
 * aside: "section.key: old -> new" entries joined by "; " ("(none)" for a missing key), written
 * into out (truncated with "..." when longer than len). Returns the number of changed keys. */
int plan_config_diff(const char *old_text, const char *new_text, char *out, size_t len);

/* What a random stream is for. Each purpose names who shares it:
 *   SEED_SPLIT   the data split and the secret k: every job of one seed (they must agree);
 *   SEED_INIT    model initialisation: owner and clean share it (the fidelity pair), every
 *                independent and reference role and replica has its own;
 *   SEED_BATCH   mini-batch order of training: every job of one seed, except that every
 *                reference model has its own;
 *   SEED_ATTACK  the attacks' base seed (attack.c derives each step's seeds from it): every
 *                job of one seed, so owner and independents see the same attack;
 *   SEED_VERIFY  index 0: the one permutation stream of all the job's tests (every evaluation,
 *                every score kind: one set of random subsets, eval_permutations): every job
 *                of one seed; index 1 the dataset evidence's, 2 the pool audit's, 3 the lnoise
 *                kind's query noise (every model of the seed gets the same noisy queries);
 *   SEED_SUBSET  a reference model's random subset of the training set (pmi.reference_fraction):
 *                its own. */
typedef enum { SEED_SPLIT = 1, SEED_INIT, SEED_BATCH, SEED_ATTACK, SEED_VERIFY, SEED_SUBSET } plan_seed_purpose;
/* The seed of a purpose for job j: splitmix64 of (experiment seed, purpose, role/replica where
 * the purpose is the job's own, index). Different purposes give unrelated streams. */
uint64_t plan_seed(const plan_job *j, plan_seed_purpose purpose, uint64_t index);

#endif
