/* config: INI experiment configuration, driven by one schema table (see config.h).
 *
 * Raw entries (section, key, value, "file:line") are collected by libinih; `include` lines
 * recurse into other files, `-s` assignments are added on top. Every typed value is parsed
 * by one function, parse_value(), driven by the schema row: validation parses into a
 * scratch pmi_params, cfg_point() into the caller's. A comma list on a sweepable key is a
 * sweep axis; axes combine in mixed radix, the first axis in file order varying slowest. */
#include "config.h"
#include "util.h"
#include <ini.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_MAX_INCLUDE_DEPTH 32

/* ---- the schema ------------------------------------------------------------------------ */

typedef enum {
    K_INT,      /* int field, range [min, max] */
    K_DOUBLE,   /* double field, range with optional open ends */
    K_STRING,   /* char[CFG_STR] field, free text */
    K_ENUM,     /* int-sized enum field: index into choices */
    K_CHOICE,   /* char[CFG_STR] field: one of choices */
    K_BOOL,     /* int field 0/1 */
    K_DLIST,    /* double list (alphas + n_alphas): one value, never a sweep axis */
    K_SLIST     /* comma list of choices into char[CFG_STR]: never a sweep axis */
} key_type;

enum { OPEN_MIN = 1, OPEN_MAX = 2 };

typedef struct {
    const char *section, *key;
    key_type type;
    size_t off;                 /* field in pmi_params */
    const char *def;            /* default, parsed like any value */
    double min, max;            /* range of numbers (and of K_DLIST elements) */
    int open;                   /* OPEN_MIN / OPEN_MAX: range ends excluded */
    const char *choices;        /* "a|b|c" for K_ENUM, K_CHOICE, K_SLIST */
    const char *help;
} key_def;

#define F(field) offsetof(pmi_params, field)
#define ROW(s, k, t, f, d, lo, hi, op, ch, h) {s, k, t, F(f), d, lo, hi, op, ch, h}
static const key_def schema[] = {
    ROW("experiment", "name", K_STRING, name, "pmi", 0, 0, 0, NULL, "experiment name: results go to <output>/<name>/"),
    ROW("experiment", "seeds", K_INT, seeds, "3", 1, 10000, 0, NULL, "number of seeds (replicates)"),
    ROW("experiment", "seed", K_INT, seed, "1", 0, 2147483647.0, 0, NULL, "first seed; the seeds are seed, seed+1, ..."),
    ROW("experiment", "device", K_ENUM, device, "auto", 0, 0, 0, "auto|cpu|cuda", "compute device (auto: cuda when available)"),
    ROW("experiment", "output", K_STRING, output, "results", 0, 0, 0, NULL, "results root folder"),
    ROW("data", "dataset", K_CHOICE, dataset, "fashion-mnist", 0, 0, 0, "fashion-mnist|mnist|cifar10|cifar100|synthetic", "dataset"),
    ROW("data", "path", K_STRING, path, "", 0, 0, 0, NULL, "folder holding the dataset files; empty: the dataset's default"),
    ROW("data", "n_train", K_INT, n_train, "2000", 1, 1e7, 0, NULL, "owner training samples (without the secret mini-dataset)"),
    ROW("data", "n_attacker", K_INT, n_attacker, "1000", 0, 1e7, 0, NULL, "samples the attacker holds"),
    ROW("data", "n_test", K_INT, n_test, "1000", 1, 1e7, 0, NULL, "test samples"),
    ROW("data", "normalize", K_ENUM, normalize, "standard", 0, 0, 0, "none|unit|standard", "input scaling: raw 0..255, /255, or per-channel mean/std"),
    ROW("pool", "N", K_INT, N, "10", 2, 4096, 0, NULL, "number of mini-datasets in the pool"),
    ROW("pool", "m", K_INT, m, "50", 1, 100000, 0, NULL, "samples per mini-dataset"),
    ROW("pool", "secret", K_INT, secret, "-1", -1, 4095, 0, NULL, "secret index k < N; -1: drawn from the seed"),
    ROW("model", "arch", K_STRING, arch, "lenet", 0, 0, 0, NULL, "architecture name (see `pmi info`)"),
    ROW("model", "width", K_INT, width, "0", 0, 4096, 0, NULL, "width multiplier / base channels; 0: the architecture's default"),
    ROW("train", "optimizer", K_ENUM, optimizer, "sgd", 0, 0, 0, "sgd|adam", "optimizer"),
    ROW("train", "lr", K_DOUBLE, lr, "0.05", 0, 10, OPEN_MIN, NULL, "learning rate"),
    ROW("train", "momentum", K_DOUBLE, momentum, "0.9", 0, 1, OPEN_MAX, NULL, "SGD momentum"),
    ROW("train", "weight_decay", K_DOUBLE, weight_decay, "0", 0, 1, 0, NULL, "L2 weight decay"),
    ROW("train", "epochs", K_INT, epochs, "10", 0, 10000, 0, NULL, "training epochs"),
    ROW("train", "batch_size", K_INT, batch_size, "64", 1, 1 << 20, 0, NULL, "mini-batch size"),
    ROW("train", "schedule", K_ENUM, schedule, "none", 0, 0, 0, "none|step|cosine", "learning-rate schedule"),
    ROW("train", "step_size", K_INT, step_size, "10", 1, 10000, 0, NULL, "epochs between lr decays (schedule=step)"),
    ROW("train", "gamma", K_DOUBLE, gamma, "0.1", 0, 1, OPEN_MIN, NULL, "lr decay factor (schedule=step)"),
    ROW("pmi", "permutations", K_INT, permutations, "9999", 0, 1e8, 0, NULL, "resamples of the permutation test"),
    ROW("pmi", "alpha", K_DLIST, alphas, "0.01,0.05", 0, 1, OPEN_MIN | OPEN_MAX, NULL, "significance levels (a list, not a sweep)"),
    ROW("pmi", "scores", K_SLIST, scores, "loss,conf,correct,entropy,mentropy,logit", 0, 0, 0,
        "loss|conf|correct|entropy|mentropy|logit", "membership score kinds (a list, not a sweep)"),
    ROW("pmi", "decide", K_CHOICE, decide, "perm", 0, 0, 0, "perm|rank|welch|mw", "p-value used for the ownership decision"),
    ROW("pmi", "independent", K_INT, independent, "1", 0, 100, 0, NULL, "independent models per seed and kind"),
    ROW("pmi", "indep_arch", K_STRING, indep_arch, "", 0, 0, 0, NULL, "architecture of the indep-arch models; empty: model.arch"),
    ROW("store", "save_models", K_BOOL, save_models, "0", 0, 0, 0, NULL, "store model weights in the shard"),
};
static const int schema_len = (int)(sizeof schema / sizeof schema[0]);

/* ---- raw storage ----------------------------------------------------------------------- */

typedef struct { char *section, *key, *value, *where; } entry;
typedef struct { char *name, *where; } section;

struct cfg {
    entry *e; int n, cap;
    section *s; int ns, scap;
};


cfg *cfg_create(void) {
    return calloc(1, sizeof(cfg));
}

void cfg_free(cfg *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].section); free(c->e[i].key); free(c->e[i].value); free(c->e[i].where);
    }
    for (int i = 0; i < c->ns; i++) { free(c->s[i].name); free(c->s[i].where); }
    free(c->e); free(c->s); free(c);
}

static int find_entry(const cfg *c, const char *sec, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].section, sec) && !strcmp(c->e[i].key, key)) return i;
    return -1;
}

static int find_section(const cfg *c, const char *name) {
    for (int i = 0; i < c->ns; i++)
        if (!strcmp(c->s[i].name, name)) return i;
    return -1;
}

/* Records a section at its first appearance. Returns 0, or -1 when out of memory. */
static int add_section(cfg *c, const char *name, const char *where) {
    if (find_section(c, name) >= 0) return 0;
    if (c->ns == c->scap) {
        int cap = c->scap ? 2 * c->scap : 8;
        section *s = realloc(c->s, sizeof *s * cap);
        if (!s) return -1;
        c->s = s; c->scap = cap;
    }
    section *s = &c->s[c->ns];
    s->name = strdup(name); s->where = strdup(where);
    if (!s->name || !s->where) { free(s->name); free(s->where); return -1; }
    c->ns++;
    return 0;
}

/* Sets section.key = value from `where`; an existing entry keeps its position and takes the
 * new value. Returns the entry's index, or -1 when out of memory. */
static int set_entry(cfg *c, const char *sec, const char *key, const char *value, const char *where) {
    char *v = strdup(value), *w = strdup(where);
    if (!v || !w) { free(v); free(w); return -1; }
    int i = find_entry(c, sec, key);
    if (i >= 0) {
        free(c->e[i].value); free(c->e[i].where);
        c->e[i].value = v; c->e[i].where = w;
        return i;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        entry *e = realloc(c->e, sizeof *e * cap);
        if (!e) { free(v); free(w); return -1; }
        c->e = e; c->cap = cap;
    }
    entry *e = &c->e[c->n];
    e->section = strdup(sec); e->key = strdup(key); e->value = v; e->where = w;
    if (!e->section || !e->key) { free(e->section); free(e->key); free(v); free(w); return -1; }
    return c->n++;
}

/* ---- parsing files --------------------------------------------------------------------- */

typedef struct {
    char *real[CFG_MAX_INCLUDE_DEPTH];   /* realpath of every file being parsed, outermost first */
    int depth;
} include_chain;

typedef struct {
    cfg *c;
    const char *path;
    FILE *f;
    include_chain *chain;
    int line;              /* number of the line the reader returned last */
    int indented;          /* that line starts with white space (a continuation, for inih) */
    int last;              /* entry set by the previous key line, -1 after a section or include */
    int failed, err_line;  /* first error, written to err */
    char *err; size_t errlen;
} parse_ctx;

static int parse_file(cfg *c, const char *path, include_chain *chain, char *err, size_t errlen);

static int fail(parse_ctx *x, const char *fmt, ...) {
    if (x->failed) return 0;
    va_list ap;
    va_start(ap, fmt);
    if (x->err && x->errlen) vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    x->failed = 1; x->err_line = x->line;
    return 0;
}

/* Registers a "[name]" header line as inih reads it: the text up to the first ']'. */
static void note_section(parse_ctx *x, const char *line) {
    if (x->line == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3;
    while (*line == ' ' || *line == '\t') line++;
    const char *end = *line == '[' ? strchr(line, ']') : NULL;
    if (!end) return;
    char name[CFG_STR], where[PATH_MAX + 32];
    snprintf(name, sizeof name, "%.*s", (int)(end - line - 1), line + 1);
    snprintf(where, sizeof where, "%s:%d", x->path, x->line);
    if (add_section(x->c, name, where)) fail(x, "%s:%d: out of memory", x->path, x->line);
    x->last = -1;
}

/* inih line reader: counts lines (inih calls the handler for a line right after reading it),
 * notes section headers, and turns over-long lines into an error instead of splitting them. */
static char *read_line(char *str, int num, void *stream) {
    parse_ctx *x = stream;
    if (!fgets(str, num, x->f)) return NULL;
    x->line++;
    size_t len = strlen(str);
    if (len && str[len - 1] != '\n') {
        int ch = fgetc(x->f);
        if (ch != EOF && ch != '\n') {
            fail(x, "%s:%d: line longer than %d characters", x->path, x->line, num - 2);
            while (ch != EOF && ch != '\n') ch = fgetc(x->f);
        }
    }
    x->indented = str[0] == ' ' || str[0] == '\t';
    note_section(x, str);
    return str;
}

/* Follows `include = file`, relative to the including file's folder. */
static int include_file(parse_ctx *x, const char *value) {
    x->last = -1;
    if (!*value) return fail(x, "%s:%d: include: expected a file name", x->path, x->line);
    const char *slash = strrchr(x->path, '/');
    char path[PATH_MAX], inner[1024];
    if (value[0] == '/' || !slash) snprintf(path, sizeof path, "%s", value);
    else snprintf(path, sizeof path, "%.*s/%s", (int)(slash - x->path), x->path, value);
    if (parse_file(x->c, path, x->chain, inner, sizeof inner))
        return fail(x, "%s:%d: include '%s': %s", x->path, x->line, value, inner);
    return 1;
}

/* inih handler. With multi-line values, inih reports an indented line after a key line
 * as another value of the same key: that continuation is joined with a space. */
static int on_entry(void *user, const char *sec, const char *key, const char *value) {
    parse_ctx *x = user;
    if (x->failed) return 0;
    if (x->indented && x->last >= 0 && !strcmp(x->c->e[x->last].section, sec)
        && !strcmp(x->c->e[x->last].key, key)) {
        entry *e = &x->c->e[x->last];
        size_t n = strlen(e->value) + strlen(value) + 2;
        char *v = malloc(n);
        if (!v) return fail(x, "%s:%d: out of memory", x->path, x->line);
        snprintf(v, n, "%s %s", e->value, value);
        free(e->value); e->value = v;
        return 1;
    }
    if (!strcmp(key, "include")) return include_file(x, value);
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%d", x->path, x->line);
    x->last = set_entry(x->c, sec, key, value, where);
    if (x->last < 0) return fail(x, "%s:%d: out of memory", x->path, x->line);
    return 1;
}

static int check_cycle(const char *path, const char *real, const include_chain *ch, char *err, size_t errlen) {
    for (int i = 0; i < ch->depth; i++) {
        if (strcmp(ch->real[i], real)) continue;
        char trail[2048] = "";
        for (int j = i; j < ch->depth; j++)
            snprintf(trail + strlen(trail), sizeof trail - strlen(trail), "%s -> ", ch->real[j]);
        return util_err(err, errlen, "%s: include cycle: %s%s", path, trail, real);
    }
    if (ch->depth == CFG_MAX_INCLUDE_DEPTH)
        return util_err(err, errlen, "%s: includes nested deeper than %d files", path, CFG_MAX_INCLUDE_DEPTH);
    return 0;
}

static int parse_file(cfg *c, const char *path, include_chain *chain, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *real = realpath(path, NULL);
    if (!real) { fclose(f); return util_err(err, errlen, "%s: cannot resolve: %s", path, strerror(errno)); }
    if (check_cycle(path, real, chain, err, errlen)) { free(real); fclose(f); return -1; }
    chain->real[chain->depth++] = real;
    parse_ctx x = {.c = c, .path = path, .f = f, .chain = chain, .last = -1, .err = err, .errlen = errlen};
    int r = ini_parse_stream(read_line, &x, on_entry, &x);
    chain->depth--;
    free(real); fclose(f);
    if (r > 0 && (!x.failed || r < x.err_line))
        util_err(err, errlen, "%s:%d: cannot parse the line: expected '[section]' or 'key = value'", path, r);
    else if (r < 0 && !x.failed)
        util_err(err, errlen, "%s: out of memory", path);
    return x.failed || r ? -1 : 0;
}

int cfg_load(cfg *c, const char *path, char *err, size_t errlen) {
    if (!c || !path) return util_err(err, errlen, "cfg_load: no config or path");
    include_chain chain = {.depth = 0};
    return parse_file(c, path, &chain, err, errlen);
}

/* ---- -s overrides ---------------------------------------------------------------------- */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
    return s;
}

/* A section or key name that reads back from an INI file unchanged. */
static int valid_name(const char *s) {
    return *s && !strpbrk(s, " \t\r\n[]=:;#");
}

/* A value that reads back from an INI file unchanged (no line break, no inline comment). */
static int valid_value(const char *s) {
    if (strpbrk(s, "\r\n")) return 0;
    for (const char *p = s; (p = strpbrk(p, " \t")); p++)
        if (p[1] == ';') return 0;
    return 1;
}

int cfg_override(cfg *c, const char *assignment, char *err, size_t errlen) {
    if (!c || !assignment) return util_err(err, errlen, "cfg_override: no config or assignment");
    char *buf = strdup(assignment);
    if (!buf) return util_err(err, errlen, "-s '%s': out of memory", assignment);
    char *eq = strchr(buf, '='), *dot;
    int rc = 0;
    if (eq) *eq = 0;
    char *lhs = trim(buf);
    if (!eq || !(dot = strrchr(lhs, '.'))) {
        rc = util_err(err, errlen, "-s '%s': expected section.key=value", assignment);
    } else {
        *dot = 0;
        char *sec = trim(lhs), *key = trim(dot + 1), *value = trim(eq + 1);
        char where[CFG_STR * 4];
        snprintf(where, sizeof where, "-s %s.%s=%s", sec, key, value);
        if (!valid_name(sec) || !valid_name(key))
            rc = util_err(err, errlen, "-s '%s': expected section.key=value (names without spaces or []=:;#)", assignment);
        else if (!strcmp(key, "include"))
            rc = util_err(err, errlen, "-s '%s': include is only allowed in files", assignment);
        else if (!valid_value(value))
            rc = util_err(err, errlen, "-s '%s': the value must not hold a line break or ' ;'", assignment);
        else if (add_section(c, sec, where) || set_entry(c, sec, key, value, where) < 0)
            rc = util_err(err, errlen, "-s '%s': out of memory", assignment);
    }
    free(buf);
    return rc;
}

/* ---- lists ----------------------------------------------------------------------------- */

static int list_count(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

/* Copies the trimmed element i of comma list s into buf. Returns -1 if it does not fit. */
static int list_item(const char *s, int i, char *buf, size_t len) {
    for (; i > 0; i--) s = strchr(s, ',') + 1;
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= len) return -1;
    memcpy(buf, s, n); buf[n] = 0;
    return 0;
}

/* Index of name in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *name) {
    size_t len = strlen(name);
    int i = 0;
    for (const char *p = choices; p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, name, n)) return i;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* ---- typed values ---------------------------------------------------------------------- */

static const key_def *find_key(const char *sec, const char *key) {
    for (int i = 0; i < schema_len; i++)
        if (!strcmp(schema[i].section, sec) && !strcmp(schema[i].key, key)) return &schema[i];
    return NULL;
}

static int is_schema_section(const char *sec) {
    for (int i = 0; i < schema_len; i++)
        if (!strcmp(schema[i].section, sec)) return 1;
    return 0;
}

static int is_attack_section(const char *sec) {
    return !strncmp(sec, "attack.", 7);
}

/* A comma list on this key is a sweep axis (lists and [experiment] keys are never axes). */
static int sweepable(const key_def *d) {
    return d->type != K_DLIST && d->type != K_SLIST && strcmp(d->section, "experiment");
}

/* What the key accepts, in words: "an integer in [1, 10000]". */
static const char *describe(const key_def *d, char *buf, size_t len) {
    char range[96];
    snprintf(range, sizeof range, "%c%.15g, %.15g%c", d->open & OPEN_MIN ? '(' : '[', d->min,
             d->max, d->open & OPEN_MAX ? ')' : ']');
    switch (d->type) {
    case K_INT: snprintf(buf, len, "an integer in %s", range); break;
    case K_DOUBLE: snprintf(buf, len, "a number in %s", range); break;
    case K_STRING: snprintf(buf, len, "a string of at most %d characters", CFG_STR - 1); break;
    case K_ENUM: case K_CHOICE: snprintf(buf, len, "one of %s", d->choices); break;
    case K_BOOL: snprintf(buf, len, "a boolean (0/1/true/false/yes/no)"); break;
    case K_DLIST: snprintf(buf, len, "a comma list of 1 to %d numbers in %s", CFG_MAX_ALPHAS, range); break;
    case K_SLIST: snprintf(buf, len, "a comma list of %s", d->choices); break;
    }
    return buf;
}

static int bad_value(const key_def *d, const char *got, const char *where, char *err, size_t errlen) {
    char want[160];
    return util_err(err, errlen, "%s: %s.%s: expected %s, got '%s'", where, d->section, d->key,
                   describe(d, want, sizeof want), got);
}

static int parse_int(const char *s, const key_def *d, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < d->min || v > d->max) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, const key_def *d, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v)) return -1;
    if (v < d->min || ((d->open & OPEN_MIN) && v == d->min)) return -1;
    if (v > d->max || ((d->open & OPEN_MAX) && v == d->max)) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *names[] = {"0", "false", "no", "1", "true", "yes"};
    for (int i = 0; i < 6; i++)
        if (!strcasecmp(s, names[i])) { *out = i >= 3; return 0; }
    return -1;
}

static int parse_dlist(const char *s, const key_def *d, pmi_params *p) {
    int n = list_count(s);
    if (n > CFG_MAX_ALPHAS) return -1;
    for (int i = 0; i < n; i++) {
        char item[64];
        if (list_item(s, i, item, sizeof item) || parse_double(item, d, &p->alphas[i])) return -1;
    }
    p->n_alphas = n;
    return 0;
}

/* Writes the list normalised ("a,b" without spaces) into out. */
static int parse_slist(const char *s, const key_def *d, char *out) {
    char norm[CFG_STR] = "";
    for (int i = 0, n = list_count(s); i < n; i++) {
        char item[CFG_STR];
        if (list_item(s, i, item, sizeof item) || choice_index(d->choices, item) < 0) return -1;
        if (strlen(norm) + strlen(item) + 2 > sizeof norm) return -1;
        if (i) strcat(norm, ",");
        strcat(norm, item);
    }
    strcpy(out, norm);
    return 0;
}

/* Parses text (one sweep element, or a whole list for list keys) into the key's field of p. */
static int parse_value(const key_def *d, const char *text, pmi_params *p, const char *where,
                       char *err, size_t errlen) {
    char *field = (char *)p + d->off;
    int rc = -1;
    switch (d->type) {
    case K_INT: rc = parse_int(text, d, (int *)field); break;
    case K_DOUBLE: rc = parse_double(text, d, (double *)field); break;
    case K_BOOL: rc = parse_bool(text, (int *)field); break;
    case K_DLIST: rc = parse_dlist(text, d, p); break;
    case K_SLIST: rc = parse_slist(text, d, field); break;
    case K_ENUM: rc = choice_index(d->choices, text); if (rc >= 0) { *(int *)field = rc; rc = 0; } break;
    case K_CHOICE: case K_STRING:
        if (strlen(text) < CFG_STR && (d->type == K_STRING || choice_index(d->choices, text) >= 0)) {
            strcpy(field, text);
            rc = 0;
        }
        break;
    }
    return rc ? bad_value(d, text, where, err, errlen) : 0;
}

/* ---- validation ------------------------------------------------------------------------ */

static int is_axis(const cfg *c, int i) {
    const key_def *d = find_key(c->e[i].section, c->e[i].key);
    return d && sweepable(d) && strchr(c->e[i].value, ',');
}

static int unknown_key(const cfg *c, const entry *e, char *err, size_t errlen) {
    if (!*e->section) return util_err(err, errlen, "%s: key '%s' outside any section", e->where, e->key);
    char known[1024] = "";
    for (int i = 0; i < schema_len; i++)
        if (!strcmp(schema[i].section, e->section))
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", *known ? ", " : "", schema[i].key);
    return util_err(err, errlen, "%s: unknown key '%s' in [%s] (known: %s)", e->where, e->key, e->section, known);
}

static int check_entry(const entry *e, char *err, size_t errlen) {
    const key_def *d = find_key(e->section, e->key);
    pmi_params scratch;
    if (!sweepable(d) || !strchr(e->value, ',')) {
        if (d->type != K_DLIST && d->type != K_SLIST && strchr(e->value, ','))
            return util_err(err, errlen, "%s: %s.%s: [%s] keys take one value, not a comma list (sweep), got '%s'",
                           e->where, d->section, d->key, d->section, e->value);
        return parse_value(d, e->value, &scratch, e->where, err, errlen);
    }
    for (int i = 0, n = list_count(e->value); i < n; i++) {
        char item[CFG_STR];
        if (list_item(e->value, i, item, sizeof item)) return bad_value(d, e->value, e->where, err, errlen);
        if (parse_value(d, item, &scratch, e->where, err, errlen)) return -1;
    }
    return 0;
}

/* Largest (want_max) or smallest element of an int key over the sweep, or of its default. */
static int int_extreme(const cfg *c, const char *sec, const char *key, int want_max, const char **where) {
    const key_def *d = find_key(sec, key);
    int i = find_entry(c, sec, key), best = 0;
    const char *text = i >= 0 ? c->e[i].value : d->def;
    *where = i >= 0 ? c->e[i].where : "default";
    for (int j = 0, n = list_count(text); j < n; j++) {
        char item[64];
        int v = 0;
        if (list_item(text, j, item, sizeof item) || parse_int(item, d, &v)) continue;
        if (j == 0 || (want_max ? v > best : v < best)) best = v;
    }
    return best;
}

static long long sweep_total(const cfg *c) {
    long long total = 1;
    for (int i = 0; i < c->n; i++)
        if (is_axis(c, i) && (total *= list_count(c->e[i].value)) > INT_MAX) return (long long)INT_MAX + 1;
    return total;
}

int cfg_validate(const cfg *c, char *err, size_t errlen) {
    if (!c) return util_err(err, errlen, "cfg_validate: no config");
    for (int i = 0; i < c->ns; i++)
        if (!is_schema_section(c->s[i].name) && !is_attack_section(c->s[i].name))
            return util_err(err, errlen, "%s: unknown section [%s] (known: experiment, data, pool, model, train, pmi, store, attack.<name>)",
                           c->s[i].where, c->s[i].name);
    for (int i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        if (is_attack_section(e->section)) continue;
        if (!find_key(e->section, e->key)) return unknown_key(c, e, err, errlen);
        if (check_entry(e, err, errlen)) return -1;
    }
    if (sweep_total(c) > INT_MAX) return util_err(err, errlen, "the sweep has more than %d points", INT_MAX);
    const char *ws, *wn;
    int secret = int_extreme(c, "pool", "secret", 1, &ws), N = int_extreme(c, "pool", "N", 0, &wn);
    if (secret >= N)
        return util_err(err, errlen, "%s: pool.secret: %d must be less than pool.N = %d (%s)", ws, secret, N, wn);
    return 0;
}

/* ---- sweep points ---------------------------------------------------------------------- */

int cfg_sweep_count(const cfg *c) {
    long long total = c ? sweep_total(c) : 1;
    return total > INT_MAX ? INT_MAX : (int)total;
}

/* Element of axis entry i at sweep point `point` (later axes vary faster). */
static int axis_index(const cfg *c, int i, int point) {
    long long stride = 1;
    for (int j = i + 1; j < c->n && stride <= point; j++)
        if (is_axis(c, j)) stride *= list_count(c->e[j].value);
    return (int)((point / stride) % list_count(c->e[i].value));
}

int cfg_point(const cfg *c, int point, pmi_params *p, char *err, size_t errlen) {
    if (!c || !p) return util_err(err, errlen, "cfg_point: no config or params");
    int count = cfg_sweep_count(c);
    if (point < 0 || point >= count)
        return util_err(err, errlen, "sweep point %d out of range [0, %d)", point, count);
    memset(p, 0, sizeof *p);
    for (int k = 0; k < schema_len; k++) {
        const key_def *d = &schema[k];
        int i = find_entry(c, d->section, d->key);
        char item[CFG_STR];
        const char *text = i >= 0 ? c->e[i].value : d->def, *where = i >= 0 ? c->e[i].where : "default";
        if (i >= 0 && is_axis(c, i)) {
            if (list_item(text, axis_index(c, i, point), item, sizeof item)) return bad_value(d, text, where, err, errlen);
            text = item;
        }
        if (parse_value(d, text, p, where, err, errlen)) return -1;
    }
    if (!p->indep_arch[0]) strcpy(p->indep_arch, p->arch);
    if (p->secret >= p->N) {
        int i = find_entry(c, "pool", "secret");
        return util_err(err, errlen, "%s: pool.secret: %d must be less than pool.N = %d",
                       i >= 0 ? c->e[i].where : "default", p->secret, p->N);
    }
    return 0;
}

void cfg_point_label(const cfg *c, int point, char *buf, size_t len) {
    if (!buf || !len) return;
    buf[0] = 0;
    if (!c || point < 0 || point >= cfg_sweep_count(c)) return;
    for (int i = 0; i < c->n; i++) {
        char item[CFG_STR];
        if (!is_axis(c, i) || list_item(c->e[i].value, axis_index(c, i, point), item, sizeof item)) continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s.%s=%s", used ? "," : "", c->e[i].section, c->e[i].key, item);
    }
}

/* ---- output ---------------------------------------------------------------------------- */

char *cfg_effective_text(const cfg *c) {
    char *text = NULL;
    size_t size = 0;
    if (!c) return NULL;
    FILE *f = open_memstream(&text, &size);
    if (!f) return NULL;
    fprintf(f, "; effective pmi configuration: schema defaults, files and -s overrides\n");
    for (int k = 0; k < schema_len; k++) {
        const key_def *d = &schema[k];
        int i = find_entry(c, d->section, d->key);
        if (k == 0 || strcmp(d->section, schema[k - 1].section)) fprintf(f, "\n[%s]\n", d->section);
        const char *value = i >= 0 ? c->e[i].value : d->def;
        fprintf(f, "%s =%s%s\n", d->key, *value ? " " : "", value);
    }
    for (int s = 0; s < c->ns; s++) {
        if (!is_attack_section(c->s[s].name)) continue;
        fprintf(f, "\n[%s]\n", c->s[s].name);
        for (int i = 0; i < c->n; i++)
            if (!strcmp(c->e[i].section, c->s[s].name))
                fprintf(f, "%s =%s%s\n", c->e[i].key, *c->e[i].value ? " " : "", c->e[i].value);
    }
    if (fclose(f)) { free(text); return NULL; }
    return text;
}

void cfg_print_help(FILE *out) {
    fprintf(out, "Configuration keys (INI: [section] then key = value; `include = file` reads another file;\n"
                 "`-s section.key=value` overrides). A comma list on a key marked * is a sweep axis:\n"
                 "the experiment runs every combination.\n");
    for (int k = 0; k < schema_len; k++) {
        const key_def *d = &schema[k];
        char want[160];
        if (k == 0 || strcmp(d->section, schema[k - 1].section)) fprintf(out, "\n[%s]\n", d->section);
        fprintf(out, "  %-13s%c %-14s %s; %s\n", d->key, sweepable(d) ? '*' : ' ', *d->def ? d->def : "\"\"",
                d->help, describe(d, want, sizeof want));
    }
    fprintf(out, "\n[attack.<name>]\n  parameters of one attack, checked by the attack module (see `pmi attacks`)\n");
}

/* ---- raw access ------------------------------------------------------------------------ */

static int has_prefix(const char *s, const char *prefix) {
    return !prefix || !strncmp(s, prefix, strlen(prefix));
}

int cfg_section_count(const cfg *c, const char *prefix) {
    int n = 0;
    for (int i = 0; c && i < c->ns; i++) n += has_prefix(c->s[i].name, prefix);
    return n;
}

const char *cfg_section_name(const cfg *c, const char *prefix, int i) {
    for (int s = 0; c && s < c->ns; s++)
        if (has_prefix(c->s[s].name, prefix) && i-- == 0) return c->s[s].name;
    return NULL;
}

const char *cfg_get(const cfg *c, const char *section, const char *key, const char **where) {
    int i = c && section && key ? find_entry(c, section, key) : -1;
    if (where) *where = i >= 0 ? c->e[i].where : NULL;
    return i >= 0 ? c->e[i].value : NULL;
}

int cfg_keys(const cfg *c, const char *section, const char **keys, int max) {
    int n = 0;
    for (int i = 0; c && section && i < c->n; i++) {
        if (strcmp(c->e[i].section, section)) continue;
        if (keys && n == max) break;
        if (keys) keys[n] = c->e[i].key;
        n++;
    }
    return n;
}
