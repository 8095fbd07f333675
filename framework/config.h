/* config: INI experiment configuration (libinih), driven by one schema table.
 *
 * A config is read in three steps:
 *   1. cfg_load() parses an INI file (following `include = other.ini` lines, relative to the
 *      including file) into a list of raw entries, each remembering its file and line;
 *   2. cfg_override() applies command-line `section.key=value` assignments on top;
 *   3. cfg_validate() checks every entry against the schema (unknown section or key, wrong
 *      type, out-of-range value) and cfg_point() fills a typed pmi_params for one point of
 *      the sweep.
 * A comma-separated value on a key of the experiment sections ([experiment] excepted) is a
 * sweep axis: the plan is the cartesian product of all axes (cfg_sweep_count()), and the
 * first axis in file order varies slowest. List-valued keys (pmi.alpha, pmi.scores) are never
 * axes. Later entries of the same section.key override earlier ones and keep the earlier
 * entry's position in that order. An indented line after a key line continues its value
 * (inih's multi-line values), joined with one space. Values of [attack.<name>] sections are
 * stored raw and parsed by the attack module, where a comma list sweeps the attack's
 * strength.
 *
 * Errors are written to `err` as "file:line: section.key: what was expected" and the call
 * returns -1; nothing is run. The schema table (static in config.c) is also the source of
 * `pmi config --help` (cfg_print_help()). */
#ifndef PMI_CONFIG_H
#define PMI_CONFIG_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "nn.h"

#define CFG_STR 256          /* capacity of every string field */
#define CFG_MAX_ALPHAS 4
#define CFG_MAX_ATTACKS 32

#define CFG_NAME_MAX 49       /* longest section or key name (libinih's MAX_SECTION - 1) */
#define CFG_LINE_MAX 198      /* longest line of an INI file (libinih's INI_MAX_LINE - 2) */
#define CFG_FILE_MAX (1 << 20) /* largest config file read (bytes): a bigger one is refused before reading */
#define CFG_MAX_POINTS 100000  /* most sweep points (a plan holds about 2.5 KB a point before its jobs) */

/* Requested device, optimizer and schedule are nn.h's enums (nn_device_request, nn_optimizer,
 * nn_schedule), read by their nn.h name tables; score kinds and p-values are pmi.h's. */
typedef enum { NORM_NONE = 0, NORM_UNIT, NORM_STANDARD } cfg_norm; /* none: raw 0..255; unit: /255; standard: per-channel mean/std of the owner train split */
/* The name of a cfg_norm ("none", "unit", "standard"), NULL outside the enum. */
const char *cfg_norm_name(int i);

/* The typed parameters of one sweep point. Field comments give units. */
typedef struct {
    /* [experiment] */
    char name[CFG_STR];         /* experiment name: results/<name>/ */
    int seeds;                  /* number of seeds (replicates) */
    int seed;                   /* first seed; seeds are seed, seed+1, ... */
    nn_device_request device;   /* auto | cpu | cuda | cuda:N (nn_device_request_name) */
    char output[CFG_STR];       /* results root folder */
    int deterministic;          /* 1: deterministic GPU algorithms, no TF32 (nn_set_numerics) */
    /* [data] */
    char dataset[CFG_STR];      /* fashion-mnist | mnist | cifar10 | cifar100 | synthetic */
    char path[CFG_STR];         /* folder holding the files; empty = the dataset's default */
    int n_train;                /* owner training samples (without D_k) */
    int n_attacker;             /* samples the attacker holds (for attacks) */
    int n_test;                 /* test samples (from the test file) */
    cfg_norm normalize;
    /* [pool] */
    int N;                      /* number of mini-datasets */
    int m;                      /* samples per mini-dataset */
    int secret;                 /* secret index k in [0,N), or -1: drawn from the seed */
    int repeat;                 /* copies of D_k in the owner's training set (1: the paper) */
    /* [model] */
    char arch[CFG_STR];         /* architecture name, one of nn_arch_name() */
    int width;                  /* width multiplier / base channels */
    /* [train] */
    nn_optimizer optimizer;     /* sgd | adam (nn_optimizer_name) */
    double lr, momentum, weight_decay;
    int epochs, batch_size;
    int tf32;                   /* 1: TF32 allowed in training's convolutions (GPU); never in evaluation */
    nn_precision precision;     /* fp32 | bf16: training's forward pass (nn_precision_name) */
    int channels_last;          /* 1: NHWC convolutions while training (nn_train_params.channels_last) */
    nn_schedule schedule;       /* none | step | cosine (nn_schedule_name) */
    int step_size;              /* epochs between lr decays (schedule=step) */
    double gamma;               /* lr decay factor (schedule=step) */
    /* [pmi] */
    int permutations;           /* resamples of the permutation test */
    double alphas[CFG_MAX_ALPHAS]; int n_alphas; /* significance levels for the decision / FPR */
    char scores[CFG_STR];       /* comma list of distinct score kinds (pmi_score_name), "a,b" without spaces */
    char decide[CFG_STR];       /* p-value used for the ownership decision (pmi_pvalue_name) */
    char decide_score[CFG_STR]; /* score kind of the decision, one of scores; "": the first of scores */
    int lnoise_queries;         /* lnoise score kind: noisy queries per sample (K) */
    double lnoise_sigma;        /* lnoise score kind: std of each query's Gaussian noise (normalised pixels) */
    int references;             /* reference models per seed (trained without any pool sample); 0: none */
    double reference_fraction;  /* fraction of the owner's training set (without D_k) each reference trains on */
    int holdout;                /* held-out samples H for the dataset evidence (pmi.holdout); 0: none */
    int data_permutations;      /* resamples of the dataset evidence's permutation test */
    int independent;            /* independent models per seed and kind */
    char indep_arch[CFG_STR];   /* architecture of the indep-arch models (pmi.indep_arch; unset: arch) */
    /* [store] */
    int save_models;            /* 1: store every evaluated model's state in the shard */
    int keys;                   /* 1: write each owner's key after the merge (key.h) */
} pmi_params;

typedef struct cfg cfg;        /* opaque: raw entries + their origin */

cfg *cfg_create(void);
void cfg_free(cfg *c);                                  /* NULL is a no-op */
/* Parses `path` and its includes into c. Returns 0, or -1 with err set ("path: cannot open:
 * <reason>", "<the included file's error> (include 'x' at file:line)", include cycles, lines
 * inih cannot read, lines longer than inih's line limit, a key set twice in one file, a file
 * that is not a regular file (directory, device), holds a NUL byte or has no setting at all);
 * after an error c may hold part of the file and should be freed. Loading another file on
 * top (or an include, or cfg_override) overrides earlier values on purpose. */
int cfg_load(cfg *c, const char *path, char *err, size_t errlen);
/* Parses INI text held in memory (e.g. a stored cfg_effective_text()) into c, with cfg_load's
 * semantics and limits, except that an `include` line is an error (a stored configuration is
 * flattened). Errors name `origin` (NULL: "(string)") as "origin:line: ...". */
int cfg_load_string(cfg *c, const char *text, const char *origin, char *err, size_t errlen);
/* Applies "section.key=value" (origin shown as "-s section.key=value"); later assignments win.
 * The section is everything before the last dot of the left side ("attack.ft.lr=0.1" sets lr
 * in [attack.ft]). Bad syntax, `include`, and values that would not read back from an INI
 * file (line breaks, " ;") are errors. */
int cfg_override(cfg *c, const char *assignment, char *err, size_t errlen);
/* Checks every entry against the schema, every element of a sweep axis included, and that
 * pool.secret < pool.N at every sweep point; [attack.*] sections are left to attack_plan().
 * Names are checked against their owners' tables: model.arch and pmi.indep_arch against the
 * architecture registry (nn_arch_name), pmi.scores against pmi_score_name (no name twice, not
 * empty), pmi.decide against pmi_pvalue_name, experiment.device, train.optimizer and
 * train.schedule against nn.h's name tables; the message lists the known names. pmi.decide_score
 * must be one of pmi.scores, and a calibrated score kind (diff, lira) in pmi.scores needs
 * pmi.references >= pmi_score_min_refs() at every sweep point. Every value
 * must also be storable: one that does not fit on a CFG_LINE_MAX line needs single spaces
 * where cfg_effective_text() can break it into continuation lines. */
int cfg_validate(const cfg *c, char *err, size_t errlen);
/* Number of sweep points (product of the comma-list lengths), >= 1. */
int cfg_sweep_count(const cfg *c);
/* Fills p with defaults overlaid by the entries, taking element `point` of every sweep axis
 * (p is zeroed first, so equal configs give byte-equal params). An empty pmi.indep_arch
 * becomes model.arch. Errors: point outside [0, cfg_sweep_count()), a bad value, and
 * pool.secret >= pool.N. Unknown keys are only reported by cfg_validate(). */
int cfg_point(const cfg *c, int point, pmi_params *p, char *err, size_t errlen);
/* Writes the short "key=value,key=value" label of the sweep point (axes only; "" without
 * axes) to buf and returns its length, as snprintf does: a return >= len means the label was
 * cut (buf NULL or len 0: nothing is written, so a caller can size its buffer first). */
int cfg_point_label(const cfg *c, int point, char *buf, size_t len);
/* Writes the full effective INI (schema defaults + entries, sweep lists kept, includes
 * flattened, then the raw [attack.*] sections) to a malloc'd string that loads back (cfg_load,
 * cfg_load_string) to the same config; values longer than a line go on continuation lines.
 * NULL for a NULL config, when out of memory, or when a value cannot be broken into lines
 * (cfg_validate() refuses those). */
char *cfg_effective_text(const cfg *c);

/* Raw access for modules that own a section family (attack). Sections are returned in file order. */
int cfg_section_count(const cfg *c, const char *prefix);           /* sections starting with prefix */
const char *cfg_section_name(const cfg *c, const char *prefix, int i);
/* Value of key in section, or NULL; *where (optional) gets "file:line" (or the -s origin),
 * NULL when the key is absent. */
const char *cfg_get(const cfg *c, const char *section, const char *key, const char **where);
/* Keys of a section in order: fills keys[] with at most max pointers into c and returns how
 * many it filled; with keys NULL it returns the section's key count (max ignored). */
int cfg_keys(const cfg *c, const char *section, const char **keys, int max);

/* Prints the schema table as help text, grouped by section, one line per key: key, '*' when
 * it may be a sweep axis, default, help and the accepted values (type and range). */
void cfg_print_help(FILE *out);

#endif
