/* config: INI experiment configuration, driven by one schema table (see config.h).
 *
 * Raw entries (section, key, value, "file:line") are collected by libinih; `include` lines
 * recurse into other files, `-s` assignments are added on top. Every typed value is parsed
 * by one function, parse_value(), driven by the schema row: validation parses into a
 * scratch pmi_params, cfg_point() into the caller's. A comma list on a sweepable key is a
 * sweep axis; axes combine in mixed radix, the first axis in file order varying slowest. */
#include "config.h"
#include "nn.h"
#include "pmi.h"
#include "util.h"
#include <ini.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#define CFG_MAX_INCLUDE_DEPTH 32

/* ---- the schema ------------------------------------------------------------------------ */

typedef enum {
    K_INT,      /* int field, range [min, max] */
    K_DOUBLE,   /* double field, range with optional open ends */
    K_STRING,   /* char[CFG_STR] field, free text */
    K_ENUM,     /* int-sized enum field: the index of the value among names */
    K_CHOICE,   /* char[CFG_STR] field: one of names */
    K_BOOL,     /* int field 0/1 */
    K_DLIST,    /* double list (alphas + n_alphas): one value, never a sweep axis */
    K_SLIST     /* comma list of distinct names into char[CFG_STR]: never a sweep axis */
} key_type;

enum { OPEN_MIN = 1, OPEN_MAX = 2, EMPTY_OK = 4, FOLDER_NAME = 8 };  /* FOLDER_NAME: a K_STRING used as one path component */

/* The choices of a key: name i, or NULL past the last. Each comes from the module that owns
 * the fact (nn.h, pmi.h); the two config-owned lists are below. */
typedef const char *(*name_fn)(int i);

const char *cfg_norm_name(int i) {         /* indexed by cfg_norm */
    static const char *const names[] = {"none", "unit", "standard"};
    return i >= 0 && i < (int)(sizeof names / sizeof names[0]) ? names[i] : NULL;
}

static const char *dataset_name(int i) {   /* the names data_load() knows */
    static const char *const names[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"};
    return i >= 0 && i < (int)(sizeof names / sizeof names[0]) ? names[i] : NULL;
}

static const char *score_name(int i) { return i >= 0 && i < SCORE_COUNT ? pmi_score_name((pmi_score_kind)i) : NULL; }
static const char *default_score_name(int i) { return i >= 0 && i < SCORE_DEFAULT_COUNT ? pmi_score_name((pmi_score_kind)i) : NULL; }
static const char *pvalue_name(int i) { return i >= 0 && i < P_COUNT ? pmi_pvalue_name((pmi_pvalue)i) : NULL; }

typedef struct {
    const char *section, *key;
    key_type type;
    size_t off;                 /* field in pmi_params */
    const char *def;            /* default, parsed like any value; NULL on a K_SLIST: every name of
                                 * def_names (of names when def_names is NULL) */
    double min, max;            /* range of numbers (and of K_DLIST elements) */
    int flags;                  /* OPEN_MIN / OPEN_MAX: range ends excluded; EMPTY_OK: a K_CHOICE may be "";
                                 * FOLDER_NAME: a K_STRING that names one folder (not empty, ".", ".." nor with '/') */
    name_fn names;              /* the choices of K_ENUM, K_CHOICE, K_SLIST */
    const char *help;
    name_fn def_names;          /* see def */
} key_def;

#define F(field) offsetof(pmi_params, field)
#define ROW(s, k, t, f, d, lo, hi, op, ch, h) {s, k, t, F(f), d, lo, hi, op, ch, h, NULL}
static const key_def schema[] = {
    ROW("experiment", "name", K_STRING, name, "pmi", 0, 0, FOLDER_NAME, NULL, "experiment name: results go to <output>/<name>/"),
    ROW("experiment", "seeds", K_INT, seeds, "3", 1, 10000, 0, NULL, "number of seeds (replicates)"),
    ROW("experiment", "seed", K_INT, seed, "1", 0, 2147483647.0, 0, NULL, "first seed; the seeds are seed, seed+1, ..."),
    ROW("experiment", "device", K_ENUM, device, "auto", 0, 0, 0, nn_device_request_name, "compute device (auto: cuda when available)"),
    ROW("experiment", "output", K_STRING, output, "results", 0, 0, 0, NULL, "results root folder (not empty)"),
    ROW("experiment", "deterministic", K_BOOL, deterministic, "0", 0, 0, 0, NULL, "GPU: deterministic algorithms and no TF32, so two runs on one card type give identical numbers (slower)"),
    ROW("data", "dataset", K_CHOICE, dataset, "fashion-mnist", 0, 0, 0, dataset_name, "dataset"),
    ROW("data", "path", K_STRING, path, "", 0, 0, EMPTY_OK, NULL, "folder holding the dataset files; empty: the dataset's default"),
    ROW("data", "n_train", K_INT, n_train, "2000", 1, 1e7, 0, NULL, "owner training samples (without the secret mini-dataset)"),
    ROW("data", "n_attacker", K_INT, n_attacker, "1000", 0, 1e7, 0, NULL, "samples the attacker holds"),
    ROW("data", "n_test", K_INT, n_test, "1000", 1, 1e7, 0, NULL, "test samples"),
    ROW("data", "normalize", K_ENUM, normalize, "standard", 0, 0, 0, cfg_norm_name, "input scaling: raw 0..255, /255, or per-channel mean/std"),
    ROW("pool", "N", K_INT, N, "10", 2, 4096, 0, NULL, "number of mini-datasets in the pool"),
    ROW("pool", "m", K_INT, m, "50", 1, 100000, 0, NULL, "samples per mini-dataset"),
    ROW("pool", "secret", K_INT, secret, "-1", -1, 4095, 0, NULL, "secret index k < N; -1: drawn from the seed"),
    ROW("pool", "repeat", K_INT, repeat, "1", 1, 1000, 0, NULL, "copies of D_k in the owner's training set (1: the paper)"),
    ROW("model", "arch", K_CHOICE, arch, "lenet", 0, 0, 0, nn_arch_name, "architecture name (see `pmi info`)"),
    ROW("model", "width", K_INT, width, "0", 0, 4096, 0, NULL, "width multiplier / base channels; 0: the architecture's default"),
    ROW("train", "optimizer", K_ENUM, optimizer, "sgd", 0, 0, 0, nn_optimizer_name, "optimizer"),
    ROW("train", "lr", K_DOUBLE, lr, "0.05", 0, 10, OPEN_MIN, NULL, "learning rate"),
    ROW("train", "momentum", K_DOUBLE, momentum, "0.9", 0, 1, OPEN_MAX, NULL, "SGD momentum"),
    ROW("train", "weight_decay", K_DOUBLE, weight_decay, "0", 0, 1, 0, NULL, "L2 weight decay"),
    ROW("train", "epochs", K_INT, epochs, "10", 0, 10000, 0, NULL, "training epochs"),
    ROW("train", "tf32", K_BOOL, tf32, "1", 0, 0, 0, NULL, "GPU: allow TF32 in training's convolutions (evaluation is always exact fp32)"),
    ROW("train", "precision", K_ENUM, precision, "fp32", 0, 0, 0, nn_precision_name, "training's forward pass: fp32, or bf16 autocast (weights, gradients and evaluation stay fp32)"),
    ROW("train", "channels_last", K_BOOL, channels_last, "0", 0, 0, 0, NULL, "NHWC layout for convolutions while training (faster for vgg11, resnet18 on a GPU; fused ensembles keep NCHW)"),
    ROW("train", "batch_size", K_INT, batch_size, "64", 1, 1 << 20, 0, NULL, "mini-batch size"),
    ROW("train", "schedule", K_ENUM, schedule, "none", 0, 0, 0, nn_schedule_name, "learning-rate schedule"),
    ROW("train", "step_size", K_INT, step_size, "10", 1, 10000, 0, NULL, "epochs between lr decays (schedule=step)"),
    ROW("train", "gamma", K_DOUBLE, gamma, "0.1", 0, 1, OPEN_MIN, NULL, "lr decay factor (schedule=step)"),
    ROW("pmi", "permutations", K_INT, permutations, "9999", 1, 1e8, 0, NULL, "resamples of the permutation test"),
    ROW("pmi", "alpha", K_DLIST, alphas, "0.01,0.05", 0, 1, OPEN_MIN | OPEN_MAX, NULL, "significance levels (a list, not a sweep)"),
    {"pmi", "scores", K_SLIST, F(scores), NULL, 0, 0, 0, score_name,
     "membership score kinds (a list, not a sweep); default: every kind but lnoise, diff and lira, which must be named "
     "(lnoise costs pmi.lnoise_queries more evaluations of every model; diff and lira need pmi.references)", default_score_name},
    ROW("pmi", "decide", K_CHOICE, decide, "perm", 0, 0, 0, pvalue_name, "p-value used for the ownership decision"),
    ROW("pmi", "decide_score", K_CHOICE, decide_score, "", 0, 0, EMPTY_OK, score_name, "score kind of the decision, one of pmi.scores; empty: the first"),
    ROW("pmi", "lnoise_queries", K_INT, lnoise_queries, "16", 1, 1024, 0, NULL, "lnoise score: noisy queries per sample (its scores are multiples of 1/this)"),
    ROW("pmi", "lnoise_sigma", K_DOUBLE, lnoise_sigma, "0.25", 0, 100, 0, NULL, "lnoise score: std of the Gaussian noise added to each query (normalised pixels; 0: the correct score)"),
    ROW("pmi", "references", K_INT, references, "0", 0, 1000, 0, NULL, "reference models per seed, trained without any pool sample (0: none)"),
    ROW("pmi", "reference_fraction", K_DOUBLE, reference_fraction, "1", 0, 1, OPEN_MIN, NULL, "fraction of the owner's training set (without D_k) each reference trains on"),
    ROW("pmi", "holdout", K_INT, holdout, "0", 0, 1e7, 0, NULL, "held-out samples H of the owner's data for the dataset evidence (S against H; the pool's other mini-datasets join H); 0: no dataset evidence"),
    ROW("pmi", "data_permutations", K_INT, data_permutations, "9999", 1, 1e8, 0, NULL, "resamples of the dataset evidence's permutation test"),
    ROW("pmi", "independent", K_INT, independent, "1", 0, 100, 0, NULL, "independent models per seed and kind"),
    ROW("pmi", "indep_arch", K_CHOICE, indep_arch, "", 0, 0, EMPTY_OK, nn_arch_name, "architecture of the indep-arch models; empty: model.arch"),
    ROW("store", "save_models", K_BOOL, save_models, "0", 0, 0, 0, NULL, "store every evaluated model (all parameters and buffers) in the shard"),
    ROW("store", "keys", K_BOOL, keys, "0", 0, 0, 0, NULL, "after the merge, write each owner's key to <output>/<name>/keys/<job>.key.h5 (the secret)"),
};
static const int schema_len = (int)(sizeof schema / sizeof schema[0]);

/* ---- raw storage ----------------------------------------------------------------------- */

typedef struct { char *section, *key, *value, *where; } entry;
typedef struct { char *name, *where; } section;

struct cfg {
    entry *e; int n, cap;
    section *s; int ns, scap;
};

/* printf into a new string of the exact length (util_malloc: exits when out of memory). */
static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = util_malloc(n > 0 ? (size_t)n + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    return s;
}

cfg *cfg_create(void) {
    return util_calloc(1, sizeof(cfg));
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

/* Records a section at its first appearance. */
static void add_section(cfg *c, const char *name, const char *where) {
    if (find_section(c, name) >= 0) return;
    if (c->ns == c->scap) {
        c->scap = c->scap ? 2 * c->scap : 8;
        c->s = util_realloc(c->s, sizeof *c->s * c->scap);
    }
    c->s[c->ns++] = (section){util_strdup(name), util_strdup(where)};
}

/* Sets section.key = value from `where`; an existing entry keeps its position and takes the
 * new value. Returns the entry's index. */
static int set_entry(cfg *c, const char *sec, const char *key, const char *value, const char *where) {
    int i = find_entry(c, sec, key);
    if (i >= 0) {
        free(c->e[i].value); free(c->e[i].where);
        c->e[i].value = util_strdup(value); c->e[i].where = util_strdup(where);
        return i;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->e = util_realloc(c->e, sizeof *c->e * c->cap);
    }
    c->e[c->n] = (entry){util_strdup(sec), util_strdup(key), util_strdup(value), util_strdup(where)};
    return c->n++;
}

/* ---- parsing INI text ------------------------------------------------------------------ */

typedef struct {
    char *real[CFG_MAX_INCLUDE_DEPTH];   /* realpath of every file being parsed, outermost first */
    int depth;
} include_chain;

/* One INI source being parsed: a file (f) or text in memory (text, pos; includes refused). */
typedef struct {
    cfg *c;
    const char *path;      /* the file, or the origin of the text */
    FILE *f;
    const char *text; size_t pos;
    include_chain *chain;
    int line;              /* number of the line the reader returned last */
    int indented;          /* that line starts with white space (a continuation, for inih) */
    int last;              /* entry set by the previous key line, -1 after a section or include */
    int failed, err_line;  /* first error, written to err */
    char *err; size_t errlen;
    struct { int entry, line; } *mine; int nmine;   /* entries this source set, and where (duplicates) */
    int settings;          /* key, include and section lines seen (0: an empty file) */
} parse_ctx;

static int parse_file(cfg *c, const char *path, include_chain *chain, char *err, size_t errlen);

static int fail(parse_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parse_ctx *x, const char *fmt, ...) {
    if (x->failed) return 0;
    va_list ap;
    va_start(ap, fmt);
    if (x->err && x->errlen) vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    x->failed = 1; x->err_line = x->line;
    return 0;
}

/* Registers a "[name]" header line as inih reads it: the text up to the first ']'. inih
 * keeps at most CFG_NAME_MAX characters of a section name: a longer one is an error. */
static void note_section(parse_ctx *x, const char *line) {
    if (x->line == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3;
    while (*line == ' ' || *line == '\t') line++;
    const char *end = *line == '[' ? strchr(line, ']') : NULL;
    if (!end) return;
    int len = (int)(end - line - 1);
    if (len > CFG_NAME_MAX) {
        fail(x, "%s:%d: section name longer than %d characters", x->path, x->line, CFG_NAME_MAX);
        return;
    }
    char name[CFG_NAME_MAX + 1];
    memcpy(name, line + 1, (size_t)len); name[len] = 0;
    char *where = fmt_alloc("%s:%d", x->path, x->line);
    add_section(x->c, name, where);
    free(where);
    x->last = -1;
    x->settings++;
}

static int source_getc(parse_ctx *x) {
    if (x->f) return fgetc(x->f);
    return x->text[x->pos] ? (unsigned char)x->text[x->pos++] : EOF;
}

/* inih line reader (fgets semantics on the file or the text): counts lines (inih calls the
 * handler for a line right after reading it), notes section headers, and turns lines longer
 * than inih's buffer into an error instead of splitting them. */
static char *read_line(char *str, int num, void *stream) {
    parse_ctx *x = stream;
    int n = 0, ch = EOF;
    while (n < num - 1 && (ch = source_getc(x)) != EOF) {
        if (ch == 0) {   /* not text (a binary file, /dev/zero): stop reading at once */
            fail(x, "%s:%d: NUL byte: not a text file", x->path, x->line + 1);
            return NULL;
        }
        str[n++] = (char)ch;
        if (ch == '\n') break;
    }
    if (n == 0) return NULL;
    str[n] = 0;
    x->line++;
    if (str[n - 1] != '\n') {
        ch = source_getc(x);
        if (ch != EOF && ch != '\n') {
            fail(x, "%s:%d: line longer than %d characters", x->path, x->line, num - 2);
            while (ch != EOF && ch != '\n' && ch != 0) ch = source_getc(x);
            if (ch == 0) return NULL;
        }
    }
    x->indented = str[0] == ' ' || str[0] == '\t';
    note_section(x, str);
    return str;
}

/* Follows `include = file`, relative to the including file's folder (text has no folder:
 * a stored effective config is flattened, so include is an error there). An error inside the
 * included file comes first, then where it was included from, so that a message cut at
 * errlen after many nested includes still says what is wrong. */
static int include_file(parse_ctx *x, const char *value) {
    x->last = -1;
    x->settings++;
    if (!x->f) return fail(x, "%s:%d: include is not allowed here (a stored configuration is flattened)", x->path, x->line);
    if (!*value) return fail(x, "%s:%d: include: expected a file name", x->path, x->line);
    const char *slash = strrchr(x->path, '/');
    char *path = value[0] == '/' || !slash ? util_strdup(value)
                                           : fmt_alloc("%.*s/%s", (int)(slash - x->path), x->path, value);
    char *inner = util_malloc(x->errlen ? x->errlen : 1);
    *inner = 0;
    if (parse_file(x->c, path, x->chain, inner, x->errlen ? x->errlen : 1))
        fail(x, "%s (include '%s' at %s:%d)", inner, value, x->path, x->line);
    free(path); free(inner);
    return !x->failed;
}

/* inih handler. With multi-line values, inih reports an indented line after a key line
 * as another value of the same key: that continuation is joined with a space. inih keeps at
 * most CFG_NAME_MAX characters of a key for its continuation lines: longer keys are errors. */
static int on_entry(void *user, const char *sec, const char *key, const char *value) {
    parse_ctx *x = user;
    if (x->failed) return 0;
    if (strlen(key) > CFG_NAME_MAX)
        return fail(x, "%s:%d: key name longer than %d characters", x->path, x->line, CFG_NAME_MAX);
    if (x->indented && x->last >= 0 && !strcmp(x->c->e[x->last].section, sec)
        && !strcmp(x->c->e[x->last].key, key)) {
        entry *e = &x->c->e[x->last];
        char *v = fmt_alloc("%s %s", e->value, value);
        free(e->value); e->value = v;
        return 1;
    }
    if (!strcmp(key, "include")) return include_file(x, value);
    x->settings++;
    int i = find_entry(x->c, sec, key);
    for (int j = 0; i >= 0 && j < x->nmine; j++)
        if (x->mine[j].entry == i)
            return fail(x, "%s:%d: %s%s%s: already set at %s:%d (a key may appear once per file; later files, "
                        "includes and -s override)", x->path, x->line, sec, *sec ? "." : "", key, x->path, x->mine[j].line);
    char *where = fmt_alloc("%s:%d", x->path, x->line);
    x->last = set_entry(x->c, sec, key, value, where);
    free(where);
    x->mine = util_realloc(x->mine, sizeof *x->mine * (size_t)(x->nmine + 1));
    x->mine[x->nmine].entry = x->last; x->mine[x->nmine++].line = x->line;
    return 1;
}

static int check_cycle(const char *path, const char *real, const include_chain *ch, char *err, size_t errlen) {
    for (int i = 0; i < ch->depth; i++) {
        if (strcmp(ch->real[i], real)) continue;
        size_t len = 1;
        for (int j = i; j < ch->depth; j++) len += strlen(ch->real[j]) + 4;
        char *trail = util_malloc(len);
        trail[0] = 0;
        for (int j = i; j < ch->depth; j++) strcat(strcat(trail, ch->real[j]), " -> ");
        util_err(err, errlen, "%s: include cycle: %s%s", path, trail, real);
        free(trail);
        return -1;
    }
    if (ch->depth == CFG_MAX_INCLUDE_DEPTH)
        return util_err(err, errlen, "%s: includes nested deeper than %d files", path, CFG_MAX_INCLUDE_DEPTH);
    return 0;
}

/* Runs inih over x's source and turns its result into one error (the first line at fault). */
static int parse_source(parse_ctx *x) {
    int r = ini_parse_stream(read_line, x, on_entry, x);
    free(x->mine);
    x->mine = NULL;
    if (r > 0 && (!x->failed || r < x->err_line))
        util_err(x->err, x->errlen, "%s:%d: cannot parse the line: expected '[section]' or 'key = value'", x->path, r);
    else if (r < 0 && !x->failed)
        util_err(x->err, x->errlen, "%s: out of memory", x->path);
    return x->failed || r ? -1 : 0;
}

/* What a file that is not a regular file is, for the message. */
static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode) ? "a directory" : S_ISCHR(mode) || S_ISBLK(mode) ? "a device" : S_ISFIFO(mode) ? "a pipe"
         : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}

static int parse_file(cfg *c, const char *path, include_chain *chain, char *err, size_t errlen) {
    /* O_NONBLOCK: opening a named pipe must not wait for a writer; it is refused below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int no_stat = fstat(fd, &st) != 0;
    if (no_stat || !S_ISREG(st.st_mode)) {
        const char *why = no_stat ? strerror(errno) : file_kind(st.st_mode);
        close(fd);
        return util_err(err, errlen, "%s: %s%s, expected an INI text file", path, no_stat ? "cannot stat: " : "", why);
    }
    if (st.st_size > CFG_FILE_MAX) {
        close(fd);
        return util_err(err, errlen, "%s: %lld bytes, more than a config file may hold (%d)", path, (long long)st.st_size, CFG_FILE_MAX);
    }
    FILE *f = fcntl(fd, F_SETFL, 0) ? NULL : fdopen(fd, "r");
    if (!f) { close(fd); return util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno)); }
    char *real = realpath(path, NULL);
    if (!real) { fclose(f); return util_err(err, errlen, "%s: cannot resolve: %s", path, strerror(errno)); }
    if (check_cycle(path, real, chain, err, errlen)) { free(real); fclose(f); return -1; }
    chain->real[chain->depth++] = real;
    parse_ctx x = {.c = c, .path = path, .f = f, .chain = chain, .last = -1, .err = err, .errlen = errlen};
    int rc = parse_source(&x);
    if (!rc && !x.settings)
        rc = util_err(err, errlen, "%s: no settings: the file is empty or holds only comments, expected at least one "
                      "[section] or key = value line", path);
    chain->depth--;
    free(real); fclose(f);
    return rc;
}

int cfg_load(cfg *c, const char *path, char *err, size_t errlen) {
    if (!c || !path) return util_err(err, errlen, "cfg_load: no config or path");
    include_chain chain = {.depth = 0};
    return parse_file(c, path, &chain, err, errlen);
}

int cfg_load_string(cfg *c, const char *text, const char *origin, char *err, size_t errlen) {
    if (!c || !text) return util_err(err, errlen, "cfg_load_string: no config or text");
    parse_ctx x = {.c = c, .path = origin ? origin : "(string)", .text = text, .last = -1, .err = err, .errlen = errlen};
    return parse_source(&x);
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
    return *s && strlen(s) <= CFG_NAME_MAX && !strpbrk(s, " \t\r\n[]=:;#");
}

/* A value that reads back from an INI file unchanged (no line break, no inline comment). */
static int valid_value(const char *s) {
    if (strpbrk(s, "\r\n") || *s == ';') return 0;
    for (const char *p = s; (p = strpbrk(p, " \t")); p++)
        if (p[1] == ';') return 0;
    return 1;
}

int cfg_override(cfg *c, const char *assignment, char *err, size_t errlen) {
    if (!c || !assignment) return util_err(err, errlen, "cfg_override: no config or assignment");
    char *buf = util_strdup(assignment);
    char *eq = strchr(buf, '='), *dot;
    int rc = 0;
    if (eq) *eq = 0;
    char *lhs = trim(buf);
    if (!eq || !(dot = strrchr(lhs, '.'))) {
        rc = util_err(err, errlen, "-s '%s': expected section.key=value", assignment);
    } else {
        *dot = 0;
        char *sec = trim(lhs), *key = trim(dot + 1), *value = trim(eq + 1);
        if (!valid_name(sec) || !valid_name(key))
            rc = util_err(err, errlen, "-s '%s': expected section.key=value (names of 1 to %d characters without spaces or []=:;#)",
                          assignment, CFG_NAME_MAX);
        else if (!strcmp(key, "include"))
            rc = util_err(err, errlen, "-s '%s': include is only allowed in files", assignment);
        else if (!valid_value(value))
            rc = util_err(err, errlen, "-s '%s': the value must not hold a line break or ' ;', nor start with ';'", assignment);
        else {
            char *shown = util_malloc(4 * strlen(value) + 1);   /* messages quote where: no raw control characters */
            util_escape(value, shown, 4 * strlen(value) + 1);
            char *where = fmt_alloc("-s %s.%s=%s", sec, key, shown);
            free(shown);
            add_section(c, sec, where);
            set_entry(c, sec, key, value, where);
            free(where);
        }
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

/* Whether the comma list s (without spaces) holds name. */
static int list_has(const char *s, const char *name) {
    size_t len = strlen(name);
    for (const char *p = s; *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
        if (!strncmp(p, name, len) && (p[len] == ',' || !p[len])) return 1;
    return 0;
}

/* Index of name among names(0), names(1), ..., or -1. */
static int choice_index(name_fn names, const char *name) {
    for (int i = 0; names(i); i++)
        if (!strcmp(names(i), name)) return i;
    return -1;
}

/* Every name joined by sep, in a new string. */
static char *names_joined(name_fn names, const char *sep) {
    size_t len = 1;
    for (int i = 0; names(i); i++) len += strlen(names(i)) + strlen(sep);
    char *s = util_malloc(len);
    s[0] = 0;
    for (int i = 0; names(i); i++) strcat(strcat(s, i ? sep : ""), names(i));
    return s;
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

/* The key's default as text, in a new string (a K_SLIST without one: every name). */
static char *default_text(const key_def *d) {
    return d->def ? util_strdup(d->def) : names_joined(d->def_names ? d->def_names : d->names, ",");
}

/* What the key accepts, in words ("an integer in [1, 10000]"), in a new string. */
static char *describe(const key_def *d) {
    char range[96];   /* two %.15g numbers: at most 2 * 24 characters and 4 more */
    snprintf(range, sizeof range, "%c%.15g, %.15g%c", d->flags & OPEN_MIN ? '(' : '[', d->min,
             d->max, d->flags & OPEN_MAX ? ')' : ']');
    char *names = d->names ? names_joined(d->names, "|") : NULL, *s = NULL;
    switch (d->type) {
    case K_INT: s = fmt_alloc("an integer in %s", range); break;
    case K_DOUBLE: s = fmt_alloc("a number in %s", range); break;
    case K_STRING:
        s = d->flags & FOLDER_NAME ? fmt_alloc("a folder name of 1 to %d characters, without '/' or control characters, not '.' or '..'", CFG_STR - 1)
                                   : fmt_alloc("a string of %d to %d characters", d->flags & EMPTY_OK ? 0 : 1, CFG_STR - 1);
        break;
    case K_ENUM: s = fmt_alloc("one of %s", names); break;
    case K_CHOICE: s = fmt_alloc("one of %s%s", names, d->flags & EMPTY_OK ? " (or empty)" : ""); break;
    case K_BOOL: s = fmt_alloc("a boolean (0/1/true/false/yes/no)"); break;
    case K_DLIST: s = fmt_alloc("a comma list of 1 to %d numbers in %s", CFG_MAX_ALPHAS, range); break;
    case K_SLIST: s = fmt_alloc("a comma list of distinct names out of %s", names); break;
    }
    free(names);
    return s;
}

static int bad_value(const key_def *d, const char *got, const char *where, char *err, size_t errlen) {
    char *want = describe(d);
    char shown[4 * CFG_STR];
    util_escape(got, shown, sizeof shown);
    util_err(err, errlen, "%s: %s.%s: expected %s, got '%s'", where, d->section, d->key, want, shown);
    free(want);
    return -1;
}

/* A base-10 integer in the key's range; fractions ("2.5"), exponents and trailing text are refused. */
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
    if (v < d->min || ((d->flags & OPEN_MIN) && v == d->min)) return -1;
    if (v > d->max || ((d->flags & OPEN_MAX) && v == d->max)) return -1;
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

/* Writes the list normalised ("a,b" without spaces) into out (char[CFG_STR]). An empty list
 * and a name listed twice are errors of their own; other faults are bad values. */
static int parse_slist(const char *s, const key_def *d, char *out, const char *where, char *err, size_t errlen) {
    if (!*s) return util_err(err, errlen, "%s: %s.%s: expected at least one name, got an empty list", where, d->section, d->key);
    char norm[CFG_STR] = "";
    for (int i = 0, n = list_count(s); i < n; i++) {
        char item[CFG_STR];
        if (list_item(s, i, item, sizeof item) || choice_index(d->names, item) < 0) return bad_value(d, s, where, err, errlen);
        if (list_has(norm, item)) return util_err(err, errlen, "%s: %s.%s: '%s' listed twice", where, d->section, d->key, item);
        if (strlen(norm) + strlen(item) + 2 > sizeof norm) return bad_value(d, s, where, err, errlen);
        if (i) strcat(norm, ",");
        strcat(norm, item);
    }
    strcpy(out, norm);
    return 0;
}

/* Whether s can name one folder inside another: nothing that leaves it ("..", "a/../.."), and
 * no control character (an escape sequence would reach the terminal in every message). */
static int folder_name_ok(const char *s) {
    for (const char *q = s; *q; q++) if ((unsigned char)*q < 0x20 || *q == 0x7f) return 0;
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
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
    case K_SLIST: return parse_slist(text, d, field, where, err, errlen);
    case K_ENUM: rc = choice_index(d->names, text); if (rc >= 0) { *(int *)field = rc; rc = 0; } break;
    case K_CHOICE: case K_STRING:
        if (strlen(text) < CFG_STR && ((d->type == K_STRING ? *text != 0 : choice_index(d->names, text) >= 0)
                                       || (!*text && (d->flags & EMPTY_OK)))
            && (!(d->flags & FOLDER_NAME) || folder_name_ok(text))) {
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
    size_t len = 1;
    for (int i = 0; i < schema_len; i++) len += strlen(schema[i].key) + 2;
    char *known = util_malloc(len);
    known[0] = 0;
    for (int i = 0; i < schema_len; i++)
        if (!strcmp(schema[i].section, e->section)) strcat(strcat(known, *known ? ", " : ""), schema[i].key);
    util_err(err, errlen, "%s: unknown key '%s' in [%s] (known: %s)", e->where, e->key, e->section, known);
    free(known);
    return -1;
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

static int write_value(FILE *f, const char *key, const char *value);

/* pmi.decide_score is one of pmi.scores; every calibrated kind there has its references. */
static int check_scores(const cfg *c, char *err, size_t errlen) {
    const key_def *d = find_key("pmi", "scores");
    int i = find_entry(c, "pmi", "scores"), j = find_entry(c, "pmi", "decide_score");
    char *scores = i >= 0 ? util_strdup(c->e[i].value) : default_text(d);
    const char *where = i >= 0 ? c->e[i].where : "default", *wr;
    int refs = int_extreme(c, "pmi", "references", 0, &wr), rc = 0, found = j < 0 || !*c->e[j].value;
    for (int k = 0, n = list_count(scores); k < n && !rc; k++) {
        char item[CFG_STR];
        if (list_item(scores, k, item, sizeof item)) continue;
        found |= j >= 0 && !strcmp(item, c->e[j].value);
        int kind = pmi_score_parse(item), need = kind >= 0 ? pmi_score_min_refs((pmi_score_kind)kind) : 0;
        if (refs < need)
            rc = util_err(err, errlen, "%s: pmi.scores: '%s' needs pmi.references >= %d (reference models trained without "
                          "any pool sample), but pmi.references = %d (%s)", where, item, need, refs, wr);
    }
    if (!rc && !found)
        rc = util_err(err, errlen, "%s: pmi.decide_score: '%s' is not one of pmi.scores (%s, %s)",
                      c->e[j].where, c->e[j].value, scores, where);
    free(scores);
    return rc;
}

int cfg_validate(const cfg *c, char *err, size_t errlen) {
    if (!c) return util_err(err, errlen, "cfg_validate: no config");
    for (int i = 0; i < c->ns; i++) {
        if (!is_schema_section(c->s[i].name) && !is_attack_section(c->s[i].name))
            return util_err(err, errlen, "%s: unknown section [%s] (known: experiment, data, pool, model, train, pmi, store, attack.<name>)",
                           c->s[i].where, c->s[i].name);
        if (!strcmp(c->s[i].name, "attack.none"))
            return util_err(err, errlen, "%s: [attack.none]: the name none is reserved for the un-attacked evaluations; choose another", c->s[i].where);
    }
    for (int i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        if (write_value(NULL, e->key, e->value))
            return util_err(err, errlen, "%s: %s.%s: a value that does not fit on one line of %d characters must hold "
                            "single spaces where the stored configuration can break it into continuation lines",
                            e->where, e->section, e->key, CFG_LINE_MAX);
        if (is_attack_section(e->section)) continue;
        if (!find_key(e->section, e->key)) return unknown_key(c, e, err, errlen);
        if (check_entry(e, err, errlen)) return -1;
    }
    long long points = sweep_total(c);
    if (points > CFG_MAX_POINTS)
        return util_err(err, errlen, "the sweep has %s%lld points (the product of its lists' lengths), more than the %d a plan may "
                        "hold: shorten its lists", points > INT_MAX ? "more than " : "", points > INT_MAX ? (long long)INT_MAX : points,
                        CFG_MAX_POINTS);
    const char *ws, *wn;
    int secret = int_extreme(c, "pool", "secret", 1, &ws), N = int_extreme(c, "pool", "N", 0, &wn);
    if (secret >= N)
        return util_err(err, errlen, "%s: pool.secret: %d must be less than pool.N = %d (%s)", ws, secret, N, wn);
    int seed = int_extreme(c, "experiment", "seed", 1, &ws), seeds = int_extreme(c, "experiment", "seeds", 1, &wn);
    if ((long long)seed + seeds - 1 > INT_MAX)
        return util_err(err, errlen, "%s: experiment.seed: %d + experiment.seeds %d (%s) - 1 passes the last seed %d", ws, seed, seeds, wn, INT_MAX);
    return check_scores(c, err, errlen);
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

/* Parses the key's value at sweep point `point` (or its default) into p. */
static int point_value(const cfg *c, const key_def *d, int point, pmi_params *p, char *err, size_t errlen) {
    int i = find_entry(c, d->section, d->key);
    if (i < 0) {
        char *def = default_text(d);
        int rc = parse_value(d, def, p, "default", err, errlen);
        free(def);
        return rc;
    }
    const char *text = c->e[i].value, *where = c->e[i].where;
    char item[CFG_STR];
    if (is_axis(c, i)) {
        if (list_item(text, axis_index(c, i, point), item, sizeof item)) return bad_value(d, text, where, err, errlen);
        text = item;
    }
    return parse_value(d, text, p, where, err, errlen);
}

int cfg_point(const cfg *c, int point, pmi_params *p, char *err, size_t errlen) {
    if (!c || !p) return util_err(err, errlen, "cfg_point: no config or params");
    int count = cfg_sweep_count(c);
    if (point < 0 || point >= count)
        return util_err(err, errlen, "sweep point %d out of range [0, %d)", point, count);
    memset(p, 0, sizeof *p);
    for (int k = 0; k < schema_len; k++)
        if (point_value(c, &schema[k], point, p, err, errlen)) return -1;
    if (!p->indep_arch[0]) strcpy(p->indep_arch, p->arch);
    if (p->secret >= p->N) {
        int i = find_entry(c, "pool", "secret");
        return util_err(err, errlen, "%s: pool.secret: %d must be less than pool.N = %d",
                       i >= 0 ? c->e[i].where : "default", p->secret, p->N);
    }
    return 0;
}

int cfg_point_label(const cfg *c, int point, char *buf, size_t len) {
    if (buf && len) buf[0] = 0;
    if (!c || point < 0 || point >= cfg_sweep_count(c)) return 0;
    size_t total = 0;
    for (int i = 0; i < c->n; i++) {
        char item[CFG_STR];
        if (!is_axis(c, i) || list_item(c->e[i].value, axis_index(c, i, point), item, sizeof item)) continue;
        int room = buf && total < len;
        int n = snprintf(room ? buf + total : NULL, room ? len - total : 0, "%s%s.%s=%s", total ? "," : "",
                         c->e[i].section, c->e[i].key, item);
        total += n > 0 ? (size_t)n : 0;
    }
    return total > INT_MAX ? INT_MAX : (int)total;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Whether value may be cut after its first `j` characters: at a single space, so that the
 * continuation line (which inih left-trims, and reads as a comment after ';' or '#') joins
 * back with one space to the same text. */
static int cut_point(const char *value, size_t j) {
    return j > 0 && value[j] == ' ' && value[j - 1] != ' ' && value[j - 1] != '\t'
           && value[j + 1] && !strchr(" \t;#", value[j + 1]);
}

/* Writes "key = value" as INI lines of at most CFG_LINE_MAX characters: a longer value goes
 * on indented continuation lines, cut at single spaces (cfg_load joins them back with one
 * space). Returns -1, having written nothing, when the value cannot be cut so; f NULL only
 * checks. */
static int write_value(FILE *f, const char *key, const char *value) {
    size_t prefix = strlen(key) + 3, n = strlen(value);   /* "key = " */
    for (int pass = f ? 0 : 1; pass < 2; pass++) {       /* pass 0 checks, pass 1 writes */
        const char *v = value;
        size_t rest = n, room = CFG_LINE_MAX - prefix;
        if (pass && f) fprintf(f, "%s =%s", key, n ? " " : "");
        while (rest > room) {
            size_t j = room;
            while (j > 0 && !cut_point(v, j)) j--;
            if (!j) return -1;
            if (pass && f) fprintf(f, "%.*s\n  ", (int)j, v);
            v += j + 1; rest -= j + 1; room = CFG_LINE_MAX - 2;
        }
        if (pass && f) fprintf(f, "%s\n", v);
    }
    return 0;
}

char *cfg_effective_text(const cfg *c) {
    char *text = NULL;
    size_t size = 0;
    if (!c) return NULL;
    FILE *f = open_memstream(&text, &size);
    if (!f) return NULL;
    int bad = 0;
    fprintf(f, "; effective pmi configuration: schema defaults, files and -s overrides\n");
    for (int k = 0; k < schema_len; k++) {
        const key_def *d = &schema[k];
        int i = find_entry(c, d->section, d->key);
        if (k == 0 || strcmp(d->section, schema[k - 1].section)) fprintf(f, "\n[%s]\n", d->section);
        char *def = i >= 0 ? NULL : default_text(d);
        bad |= write_value(f, d->key, i >= 0 ? c->e[i].value : def);
        free(def);
    }
    for (int s = 0; s < c->ns; s++) {
        if (!is_attack_section(c->s[s].name)) continue;
        fprintf(f, "\n[%s]\n", c->s[s].name);
        for (int i = 0; i < c->n; i++)
            if (!strcmp(c->e[i].section, c->s[s].name)) bad |= write_value(f, c->e[i].key, c->e[i].value);
    }
    if (fclose(f) || bad) { free(text); return NULL; }
    return text;
}

void cfg_print_help(FILE *out) {
    fprintf(out, "Configuration keys (INI: [section] then key = value; `include = file` reads another file;\n"
                 "`-s section.key=value` overrides). A comma list on a key marked * is a sweep axis:\n"
                 "the experiment runs every combination.\n");
    /* the widest key and default (up to 16 characters; a longer default puts its help on the
     * next line) set the columns, so that every column starts where the others do */
    int kw = 0, dw = 2;
    for (int k = 0; k < schema_len; k++) {
        char *def = default_text(&schema[k]);
        kw = (int)strlen(schema[k].key) > kw ? (int)strlen(schema[k].key) : kw;
        dw = (int)strlen(def) > dw && strlen(def) <= 16 ? (int)strlen(def) : dw;
        free(def);
    }
    for (int k = 0; k < schema_len; k++) {
        const key_def *d = &schema[k];
        char *want = describe(d), *def = default_text(d);
        if (k == 0 || strcmp(d->section, schema[k - 1].section)) fprintf(out, "\n[%s]\n", d->section);
        fprintf(out, "  %-*s %c ", kw, d->key, sweepable(d) ? '*' : ' ');
        if ((int)strlen(def) > dw) fprintf(out, "%s\n%*s", def, kw + dw + 7, "");
        else fprintf(out, "%-*s  ", dw, *def ? def : "\"\"");
        fprintf(out, "%s; %s\n", d->help, want);
        free(want); free(def);
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
