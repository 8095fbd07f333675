/* data: dataset readers (IDX via zlib, CIFAR binary, synthetic), normalisation and the seeded
 * disjoint split. data.h holds the contracts. Every reader loads a whole file into memory
 * first and then checks the header against the number of bytes actually read, so a header
 * is never trusted for an allocation or a read. */
#include "data.h"
#include "util.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u
#define IDX_MAX_SIDE 1024u
#define CIFAR_PIXELS 3072
#define SYN_NOISE 2.0   /* per-sample noise std, in prototype units */
#define SYN_FLIP 0.15   /* probability that a sample's label is redrawn uniformly */
#define SYN_SCALE 20.0  /* stored pixel = 128 + SYN_SCALE * value, clipped to 0..255 */

static const char *const known_datasets = "fashion-mnist, mnist, cifar10, cifar100, synthetic";


void data_free(pmi_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* ---- whole-file reading through zlib (gzip or raw) ------------------------------------- */

typedef struct { unsigned char *p; size_t n; } bytes;

/* zlib's messages start with "path: "; drop it, since ours already names the file. */
static const char *gz_message(gzFile gz, const char *path) {
    int code;
    const char *m = gzerror(gz, &code);
    size_t l = strlen(path);
    if (code == Z_ERRNO) return strerror(errno);
    if (strncmp(m, path, l) == 0 && m[l] == ':' && m[l + 1] == ' ') return m + l + 2;
    return m;
}

/* A buffer of `size` bytes (a file's contents, a dataset's pixels). One of 8 MB or more is
 * aligned to 2 MB and advised to the kernel as huge pages (transparent huge pages in "madvise"
 * mode, Debian's default), so that its first writes fault once per 2 MB instead of once per
 * 4 KB: loading Fashion-MNIST took 2400 page faults instead of 67000 on the CI's VM, where each
 * is expensive (docs/performance.md, CPU). free() releases it either way. */
static void *alloc_large(size_t size) {
    const size_t huge = (size_t)2 << 20, whole = (size + huge - 1) / huge * huge;
    void *p = NULL;
    if (size < 4 * huge) return malloc(size);
    if (posix_memalign(&p, huge, whole)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, whole, MADV_HUGEPAGE);   /* advice only: no error */
#endif
    return p;
}

static int grow(bytes *b, size_t *cap) {
    size_t ncap = *cap ? *cap * 2 : (size_t)1 << 16;
    unsigned char *p = realloc(b->p, ncap);
    if (!p) return -1;
    b->p = p;
    *cap = ncap;
    return 0;
}

/* What reading path will probably give, to size the buffer once instead of doubling it (a copy
 * and fresh pages per doubling of a 47 MB file): a gzip file's ISIZE field (its last 4 bytes, the
 * uncompressed size mod 2^32), a plain file's size; 0 when unknown or over 256 MB. Only a hint:
 * read_stream still grows the buffer when the data is longer (a multi-member gzip file). */
static size_t size_hint(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char head[2], tail[4];
    size_t hint = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0) {
        if (fread(head, 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b) {
            if (st.st_size >= 18 && fseek(f, -4, SEEK_END) == 0 && fread(tail, 1, 4, f) == 4)
                hint = (size_t)tail[0] | (size_t)tail[1] << 8 | (size_t)tail[2] << 16 | (size_t)tail[3] << 24;
        } else {
            hint = (size_t)st.st_size;
        }
    }
    fclose(f);
    return hint <= (size_t)1 << 28 ? hint : 0;   /* a hint is not trusted far */
}

static int read_stream(gzFile gz, const char *path, size_t hint, bytes *b, char *err, size_t errlen) {
    size_t cap = hint ? hint + 1 : 0;   /* one byte more: the read that finds the end needs room */
    if (cap && !(b->p = alloc_large(cap))) return util_err(err, errlen, "%s: out of memory for %zu bytes", path, cap);
    for (;;) {
        if (b->n == cap && grow(b, &cap)) return util_err(err, errlen, "%s: out of memory after %zu bytes", path, b->n);
        size_t want = cap - b->n < (size_t)1 << 30 ? cap - b->n : (size_t)1 << 30;
        int got = gzread(gz, b->p + b->n, (unsigned)want);
        if (got < 0) return util_err(err, errlen, "%s: read error: %s", path, gz_message(gz, path));
        if (got == 0) break;
        b->n += (size_t)got;
    }
    int code;
    gzerror(gz, &code);  /* a gzip stream cut short ends in Z_BUF_ERROR, not in a read error */
    if (code != Z_OK) return util_err(err, errlen, "%s: truncated or corrupt gzip stream: %s", path, gz_message(gz, path));
    return 0;
}

/* Reads all of path into b (decompressing gzip); b is empty on error. */
static int read_file(const char *path, bytes *b, char *err, size_t errlen) {
    b->p = NULL;
    b->n = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return util_err(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1 << 17);
    int rc = read_stream(gz, path, size_hint(path), b, err, errlen);
    gzclose(gz);
    if (rc) {
        free(b->p);
        b->p = NULL;
        b->n = 0;
    }
    return rc;
}

static int alloc_dataset(pmi_dataset *d, int64_t n, int c, int h, int w) {
    d->x = alloc_large((size_t)n * (size_t)(c * h * w) * sizeof *d->x);
    d->y = malloc((size_t)n * sizeof *d->y);
    if (!d->x || !d->y) {
        data_free(d);
        return -1;
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    return 0;
}

/* ---- IDX ----------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the magic `want` and reads its (want & 0xff) dimensions into dims. */
static int idx_header(const char *path, const bytes *b, uint32_t want, uint32_t *dims, char *err, size_t errlen) {
    unsigned nd = want & 0xffu;
    size_t hlen = 4 + 4 * (size_t)nd;
    const char *what = want == IDX_IMAGES ? "images" : "labels";
    if (b->n < 4) return util_err(err, errlen, "%s: truncated: %zu bytes, too short for an IDX header", path, b->n);
    uint32_t magic = be32(b->p);
    if (magic >> 8 == 0x08u && magic != want)
        return util_err(err, errlen, "%s: IDX file has %u dimensions, expected %u (%s)", path, magic & 0xffu, nd, what);
    if (magic != want)
        return util_err(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (IDX unsigned-byte %s)", path, magic, want, what);
    if (b->n < hlen) return util_err(err, errlen, "%s: truncated: IDX header needs %zu bytes, got %zu", path, hlen, b->n);
    for (unsigned i = 0; i < nd; i++) dims[i] = be32(b->p + 4 + 4 * i);
    if (dims[0] == 0) return util_err(err, errlen, "%s: IDX file holds no samples", path);
    return 0;
}

/* Checks that exactly `expected` payload bytes follow a header of hlen bytes. */
static int idx_payload(const char *path, const bytes *b, size_t hlen, uint64_t expected, const char *what,
                       char *err, size_t errlen) {
    uint64_t got = b->n - hlen;
    if (got < expected)
        return util_err(err, errlen, "%s: truncated: expected %llu bytes of %s data, got %llu", path,
                    (unsigned long long)expected, what, (unsigned long long)got);
    if (got > expected)
        return util_err(err, errlen, "%s: %llu bytes of trailing data after %llu bytes of %s data", path,
                    (unsigned long long)(got - expected), (unsigned long long)expected, what);
    return 0;
}

static int idx_check_images(const char *path, const bytes *b, uint32_t *dims, char *err, size_t errlen) {
    if (idx_header(path, b, IDX_IMAGES, dims, err, errlen)) return -1;
    if (dims[1] < 1 || dims[1] > IDX_MAX_SIDE || dims[2] < 1 || dims[2] > IDX_MAX_SIDE)
        return util_err(err, errlen, "%s: image size %ux%u, expected rows and cols in 1..%u", path, dims[1], dims[2],
                    IDX_MAX_SIDE);
    return idx_payload(path, b, 16, (uint64_t)dims[0] * dims[1] * dims[2], "pixel", err, errlen);
}

static int idx_check_labels(const char *path, const bytes *b, uint32_t *n, char *err, size_t errlen) {
    if (idx_header(path, b, IDX_LABELS, n, err, errlen)) return -1;
    return idx_payload(path, b, 8, *n, "label", err, errlen);
}

/* Fills out from checked image and label buffers of n samples. */
static int idx_fill(const bytes *img, const bytes *lab, const uint32_t *dims, pmi_dataset *out) {
    if (alloc_dataset(out, dims[0], 1, (int)dims[1], (int)dims[2])) return -1;
    size_t npix = (size_t)dims[0] * dims[1] * dims[2];
    for (size_t i = 0; i < npix; i++) out->x[i] = img->p[16 + i];
    int maxl = 0;
    for (uint32_t i = 0; i < dims[0]; i++) {
        out->y[i] = lab->p[8 + i];
        if (out->y[i] > maxl) maxl = out->y[i];
    }
    out->classes = maxl + 1 > 10 ? maxl + 1 : 10;
    return 0;
}

static int idx_parse(const char *images, const char *labels, const bytes *img, const bytes *lab,
                     pmi_dataset *out, char *err, size_t errlen) {
    uint32_t dims[3], nlab;
    if (idx_check_images(images, img, dims, err, errlen)) return -1;
    if (idx_check_labels(labels, lab, &nlab, err, errlen)) return -1;
    if (nlab != dims[0])
        return util_err(err, errlen, "%s holds %u images but %s holds %u labels", images, dims[0], labels, nlab);
    if (idx_fill(img, lab, dims, out)) return util_err(err, errlen, "%s: out of memory for %u images", images, dims[0]);
    return 0;
}

int data_read_idx(const char *images, const char *labels, pmi_dataset *out, char *err, size_t errlen) {
    if (!out) return util_err(err, errlen, "data_read_idx: no output dataset");
    memset(out, 0, sizeof *out);
    if (!images || !labels) return util_err(err, errlen, "data_read_idx: missing image or label path");
    bytes img, lab = {NULL, 0};
    int rc = read_file(images, &img, err, errlen);
    if (rc == 0) rc = read_file(labels, &lab, err, errlen);
    if (rc == 0) rc = idx_parse(images, labels, &img, &lab, out, err, errlen);
    free(img.p);
    free(lab.p);
    return rc;
}

/* ---- CIFAR --------------------------------------------------------------------------- */

/* Appends the k records of one checked file buffer to d. */
static int cifar_append_records(const char *path, const bytes *b, int classes, pmi_dataset *d, char *err,
                                size_t errlen) {
    size_t lab = classes == 100 ? 2 : 1, rec = lab + CIFAR_PIXELS, k = b->n / rec;
    float *x = realloc(d->x, ((size_t)d->n + k) * CIFAR_PIXELS * sizeof *x);
    if (x) d->x = x;
    int32_t *y = realloc(d->y, ((size_t)d->n + k) * sizeof *y);
    if (y) d->y = y;
    if (!x || !y) return util_err(err, errlen, "%s: out of memory for %zu records", path, k);
    for (size_t r = 0; r < k; r++) {
        const unsigned char *p = b->p + r * rec;
        if (p[lab - 1] >= classes)
            return util_err(err, errlen, "%s: record %zu has label %u, expected 0..%d", path, r, p[lab - 1], classes - 1);
        y[d->n + r] = p[lab - 1];
        for (size_t j = 0; j < CIFAR_PIXELS; j++) x[((size_t)d->n + r) * CIFAR_PIXELS + j] = p[lab + j];
    }
    d->n += (int64_t)k;
    return 0;
}

static int cifar_append(const char *path, int classes, pmi_dataset *d, char *err, size_t errlen) {
    bytes b;
    if (read_file(path, &b, err, errlen)) return -1;
    size_t rec = (classes == 100 ? 2 : 1) + CIFAR_PIXELS;
    int rc = 0;
    if (b.n == 0 || b.n % rec)
        rc = util_err(err, errlen, "%s: size %zu bytes is not a positive multiple of the %zu-byte CIFAR-%d record", path,
                  b.n, rec, classes);
    if (rc == 0) rc = cifar_append_records(path, &b, classes, d, err, errlen);
    free(b.p);
    return rc;
}

int data_read_cifar(const char *const *files, int classes, pmi_dataset *out, char *err, size_t errlen) {
    if (!out) return util_err(err, errlen, "data_read_cifar: no output dataset");
    memset(out, 0, sizeof *out);
    if (classes != 10 && classes != 100) return util_err(err, errlen, "CIFAR classes must be 10 or 100, got %d", classes);
    if (!files || !files[0]) return util_err(err, errlen, "data_read_cifar: no files given");
    for (size_t i = 0; files[i]; i++) {
        if (cifar_append(files[i], classes, out, err, errlen)) {
            data_free(out);
            return -1;
        }
    }
    out->c = 3;
    out->h = out->w = 32;
    out->classes = classes;
    return 0;
}

/* ---- seeds and the synthetic generator ----------------------------------------------- */

/* splitmix64's finaliser: spreads every bit of a 64-bit seed over the output. */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A gsl_rng_mt19937 for (seed, stream), the 64-bit mix folded to mt19937's 32 seed bits. */
static gsl_rng *rng_for(uint64_t seed, unsigned stream) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return NULL;
    uint64_t z = mix64(seed ^ mix64(stream));
    gsl_rng_set(r, (unsigned long)((z ^ (z >> 32)) & 0xffffffffu));
    return r;
}

static float clip_pixel(double v) {
    double p = 128.0 + SYN_SCALE * v;
    return (float)(p < 0 ? 0 : p > 255 ? 255 : p);
}

/* Fills out (allocated) from the prototypes (classes, dim) with the sample generator r. */
static void synth_samples(const double *proto, int classes, size_t dim, gsl_rng *r, pmi_dataset *out) {
    for (int64_t i = 0; i < out->n; i++) {
        int y = (int)gsl_rng_uniform_int(r, (unsigned long)classes);
        const double *p = proto + (size_t)y * dim;
        float *x = out->x + (size_t)i * dim;
        for (size_t j = 0; j < dim; j++) x[j] = clip_pixel(p[j] + gsl_ran_gaussian(r, SYN_NOISE));
        if (gsl_rng_uniform(r) < SYN_FLIP) y = (int)gsl_rng_uniform_int(r, (unsigned long)classes);
        out->y[i] = y;
    }
}

static double *synth_prototypes(uint64_t seed, int classes, size_t dim) {
    double *proto = malloc((size_t)classes * dim * sizeof *proto);
    gsl_rng *r = rng_for(seed, 0);
    if (proto && r)
        for (size_t i = 0; i < (size_t)classes * dim; i++) proto[i] = gsl_ran_gaussian(r, 1.0);
    gsl_rng_free(r);
    if (!r) {
        free(proto);
        return NULL;
    }
    return proto;
}

int data_synthetic_stream(int64_t n, int c, int h, int w, int classes, uint64_t seed, unsigned stream,
                          pmi_dataset *out) {
    if (!out) return -1;
    memset(out, 0, sizeof *out);
    if (n < 1 || c < 1 || h < 1 || w < 1 || classes < 2 || stream < 1) return -1;
    if ((int64_t)c * h * w > INT_MAX / 4) return -1;
    size_t dim = (size_t)c * h * w;
    double *proto = synth_prototypes(seed, classes, dim);
    gsl_rng *r = rng_for(seed, stream);
    int rc = proto && r && alloc_dataset(out, n, c, h, w) == 0 ? 0 : -1;
    if (rc == 0) {
        out->classes = classes;
        synth_samples(proto, classes, dim, r, out);
    }
    gsl_rng_free(r);
    free(proto);
    return rc;
}

int data_synthetic(int64_t n, int c, int h, int w, int classes, uint64_t seed, pmi_dataset *out) {
    return data_synthetic_stream(n, c, h, w, classes, seed, 1, out);
}

/* ---- named datasets ------------------------------------------------------------------ */

/* path = dir/base.gz, or dir/base when only the un-gzipped file exists. */
static int idx_path(const char *dir, const char *base, char *path, size_t len, char *err, size_t errlen) {
    if ((size_t)snprintf(path, len, "%s/%s.gz", dir, base) >= len) return util_err(err, errlen, "%s: path too long", dir);
    if (access(path, F_OK) == 0) return 0;
    char raw[PATH_MAX];
    snprintf(raw, sizeof raw, "%s/%s", dir, base);
    if (access(raw, F_OK) == 0) memcpy(path, raw, strlen(raw) + 1);
    return 0;
}

static int idx_labels_below(const pmi_dataset *d, const char *labels, int classes, char *err, size_t errlen) {
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] >= classes)
            return util_err(err, errlen, "%s: label %d at sample %lld is out of range 0..%d", labels, (int)d->y[i],
                        (long long)i, classes - 1);
    return 0;
}

static int load_idx_set(const char *dir, const char *prefix, pmi_dataset *d, char *err, size_t errlen) {
    char img[PATH_MAX], lab[PATH_MAX], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (idx_path(dir, base, img, sizeof img, err, errlen)) return -1;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (idx_path(dir, base, lab, sizeof lab, err, errlen)) return -1;
    if (data_read_idx(img, lab, d, err, errlen)) return -1;
    if (idx_labels_below(d, lab, 10, err, errlen)) return -1;
    d->classes = 10;
    return 0;
}

/* The folder of an IDX dataset: dir, or Fashion-MNIST's default; NULL (err set) for MNIST without one. */
static const char *mnist_dir(const char *name, const char *dir, char *err, size_t errlen) {
    if (dir && *dir) return dir;
    if (strcmp(name, "mnist") == 0) { util_err(err, errlen, "dataset 'mnist' needs a directory"); return NULL; }
    const char *env = getenv("FASHION_MNIST");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

static int load_mnist(const char *name, const char *dir, pmi_dataset *train, pmi_dataset *test, char *err,
                      size_t errlen) {
    if (!(dir = mnist_dir(name, dir, err, errlen))) return -1;
    if (load_idx_set(dir, "train", train, err, errlen)) return -1;
    return load_idx_set(dir, "t10k", test, err, errlen);
}

/* Reads the named files of dir as one CIFAR dataset. */
static int load_cifar_files(const char *dir, const char *const *names, int classes, pmi_dataset *d, char *err,
                            size_t errlen) {
    char paths[5][PATH_MAX];
    const char *list[6] = {NULL};
    for (int i = 0; names[i]; i++) {
        if ((size_t)snprintf(paths[i], PATH_MAX, "%s/%s", dir, names[i]) >= PATH_MAX)
            return util_err(err, errlen, "%s: path too long", dir);
        list[i] = paths[i];
    }
    return data_read_cifar(list, classes, d, err, errlen);
}

static const char *const c10_train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", NULL};
static const char *const c10_test[] = {"test_batch.bin", NULL};
static const char *const c100_train[] = {"train.bin", NULL};
static const char *const c100_test[] = {"test.bin", NULL};

static int load_cifar(const char *name, const char *dir, int classes, pmi_dataset *train, pmi_dataset *test,
                      char *err, size_t errlen) {
    if (!dir || !*dir) return util_err(err, errlen, "dataset '%s' needs a directory", name);
    if (load_cifar_files(dir, classes == 10 ? c10_train : c100_train, classes, train, err, errlen)) return -1;
    return load_cifar_files(dir, classes == 10 ? c10_test : c100_test, classes, test, err, errlen);
}

static int load_synthetic(int64_t n, uint64_t seed, pmi_dataset *train, pmi_dataset *test, char *err,
                          size_t errlen) {
    if (n < 4) return util_err(err, errlen, "dataset 'synthetic' needs n_synth >= 4, got %lld", (long long)n);
    if (data_synthetic_stream(n, 1, 8, 8, 10, seed, 1, train) ||
        data_synthetic_stream(n / 4, 1, 8, 8, 10, seed, 2, test))
        return util_err(err, errlen, "dataset 'synthetic': out of memory for %lld samples", (long long)n);
    return 0;
}

static int load_named(const char *name, const char *dir, int64_t n_synth, uint64_t seed, pmi_dataset *train,
                      pmi_dataset *test, char *err, size_t errlen) {
    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0)
        return load_mnist(name, dir, train, test, err, errlen);
    if (strcmp(name, "cifar10") == 0) return load_cifar(name, dir, 10, train, test, err, errlen);
    if (strcmp(name, "cifar100") == 0) return load_cifar(name, dir, 100, train, test, err, errlen);
    if (strcmp(name, "synthetic") == 0) return load_synthetic(n_synth, seed, train, test, err, errlen);
    return util_err(err, errlen, "unknown dataset '%s' (known: %s)", name, known_datasets);
}

int data_load(const char *name, const char *dir, int64_t n_synth, uint64_t seed, pmi_dataset *train,
              pmi_dataset *test, char *err, size_t errlen) {
    if (!train || !test) return util_err(err, errlen, "data_load: no output dataset");
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!name) return util_err(err, errlen, "data_load: no dataset name (known: %s)", known_datasets);
    int rc = load_named(name, dir, n_synth, seed, train, test, err, errlen);
    if (rc == 0 && (train->c != test->c || train->h != test->h || train->w != test->w))
        rc = util_err(err, errlen, "dataset '%s': train images are %dx%dx%d but test images are %dx%dx%d", name,
                  train->c, train->h, train->w, test->c, test->h, test->w);
    if (rc) {
        data_free(train);
        data_free(test);
    }
    return rc;
}

/* ---- sample counts without loading ---------------------------------------------------- */

/* The sample count of one IDX file from its header (magic `want`, first dimension). */
static int idx_count(const char *path, uint32_t want, int64_t *n, char *err, size_t errlen) {
    unsigned char head[16];
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return util_err(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    int got = gzread(gz, head, sizeof head);
    gzclose(gz);
    bytes b = {head, got > 0 ? (size_t)got : 0};
    uint32_t dims[3];
    if (idx_header(path, &b, want, dims, err, errlen)) return -1;
    *n = dims[0];
    return 0;
}

static int idx_set_count(const char *dir, const char *prefix, int64_t *n, char *err, size_t errlen) {
    char img[PATH_MAX], lab[PATH_MAX], base[64];
    int64_t nl;
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (idx_path(dir, base, img, sizeof img, err, errlen) || idx_count(img, IDX_IMAGES, n, err, errlen)) return -1;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (idx_path(dir, base, lab, sizeof lab, err, errlen) || idx_count(lab, IDX_LABELS, &nl, err, errlen)) return -1;
    if (nl != *n) return util_err(err, errlen, "%s: %lld labels for %lld images in %s", lab, (long long)nl, (long long)*n, img);
    return 0;
}

/* Records in the CIFAR files dir/names[i]: from the file sizes, or by reading a gzip file. */
static int cifar_count(const char *dir, const char *const *names, int classes, int64_t *n, char *err, size_t errlen) {
    size_t rec = (classes == 100 ? 2 : 1) + CIFAR_PIXELS;
    *n = 0;
    for (int i = 0; names[i]; i++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
            return util_err(err, errlen, "%s: path too long", dir);
        unsigned char magic[2] = {0};
        struct stat st;
        FILE *f = fopen(path, "rb");
        if (!f) return util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        int gz = fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        int bad = fstat(fileno(f), &st);
        fclose(f);
        if (bad) return util_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        size_t size = (size_t)st.st_size;
        if (gz) {
            bytes b;
            if (read_file(path, &b, err, errlen)) return -1;
            size = b.n;
            free(b.p);
        }
        if (size == 0 || size % rec)
            return util_err(err, errlen, "%s: size %zu bytes is not a positive multiple of the %zu-byte CIFAR-%d record",
                            path, size, rec, classes);
        *n += (int64_t)(size / rec);
    }
    return 0;
}

static int counts_named(const char *name, const char *dir, int64_t n_synth, int64_t *n_train, int64_t *n_test,
                        char *err, size_t errlen) {
    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0) {
        if (!(dir = mnist_dir(name, dir, err, errlen))) return -1;
        return idx_set_count(dir, "train", n_train, err, errlen) || idx_set_count(dir, "t10k", n_test, err, errlen) ? -1 : 0;
    }
    int classes = strcmp(name, "cifar10") == 0 ? 10 : strcmp(name, "cifar100") == 0 ? 100 : 0;
    if (classes) {
        if (!dir || !*dir) return util_err(err, errlen, "dataset '%s' needs a directory", name);
        return cifar_count(dir, classes == 10 ? c10_train : c100_train, classes, n_train, err, errlen) ||
               cifar_count(dir, classes == 10 ? c10_test : c100_test, classes, n_test, err, errlen) ? -1 : 0;
    }
    if (strcmp(name, "synthetic") == 0) {
        if (n_synth < 4) return util_err(err, errlen, "dataset 'synthetic' needs n_synth >= 4, got %lld", (long long)n_synth);
        *n_train = n_synth;
        *n_test = n_synth / 4;
        return 0;
    }
    return util_err(err, errlen, "unknown dataset '%s' (known: %s)", name, known_datasets);
}

int data_counts(const char *name, const char *dir, int64_t n_synth, int64_t *n_train, int64_t *n_test, char *err,
                size_t errlen) {
    if (!n_train || !n_test) return util_err(err, errlen, "data_counts: no output counts");
    *n_train = *n_test = 0;
    if (!name) return util_err(err, errlen, "data_counts: no dataset name (known: %s)", known_datasets);
    int rc = counts_named(name, dir, n_synth, n_train, n_test, err, errlen);
    if (rc) *n_train = *n_test = 0;
    return rc;
}

/* ---- normalisation ------------------------------------------------------------------- */

void data_normalize(pmi_dataset *d, data_norm mode, const double *mean, const double *std) {
    if (!d || !d->x || mode == DATA_NORM_NONE) return;
    if (mode == DATA_NORM_STANDARD && (!mean || !std)) return;
    size_t plane = (size_t)d->h * d->w;
    for (int64_t i = 0; i < d->n; i++)
        for (int c = 0; c < d->c; c++) {
            double mu = mode == DATA_NORM_STANDARD ? mean[c] : 0.0;
            double sd = mode == DATA_NORM_STANDARD && std[c] > 0 ? std[c] : 1.0;
            float *x = d->x + ((size_t)i * d->c + c) * plane;
            for (size_t j = 0; j < plane; j++) x[j] = (float)((x[j] / 255.0 - mu) / sd);
        }
}

/* Adds channel c of sample i (x/255) to the running sums of value and squared deviation
 * from `shift` (the first pass's mean, 0 on the first pass). */
static void channel_sums(const pmi_dataset *d, int64_t i, int c, double shift, double *s1, double *s2) {
    size_t plane = (size_t)d->h * d->w;
    const float *x = d->x + ((size_t)i * d->c + c) * plane;
    for (size_t j = 0; j < plane; j++) {
        double v = x[j] / 255.0 - shift;
        *s1 += v;
        *s2 += v * v;
    }
}

void data_channel_stats(const pmi_dataset *d, const int64_t *idx, int64_t n, double *mean, double *std) {
    if (!d || !mean || !std) return;
    for (int c = 0; c < d->c; c++) {
        double s1 = 0, s2 = 0, dev1 = 0, dev2 = 0;
        int64_t used = 0;
        for (int64_t k = 0; k < n; k++) {
            int64_t i = idx ? idx[k] : k;
            if (i < 0 || i >= d->n) continue;
            channel_sums(d, i, c, 0.0, &s1, &s2);
            used++;
        }
        double cnt = (double)used * d->h * d->w;
        mean[c] = used ? s1 / cnt : 0.0;
        for (int64_t k = 0; k < n && used; k++) {
            int64_t i = idx ? idx[k] : k;
            if (i >= 0 && i < d->n) channel_sums(d, i, c, mean[c], &dev1, &dev2);
        }
        std[c] = used ? sqrt(fmax(dev2 / cnt - (dev1 / cnt) * (dev1 / cnt), 0.0)) : 0.0;
    }
}

/* ---- the split ----------------------------------------------------------------------- */

int data_split_check(int64_t n_train_file, int64_t n_test_file, int64_t n_train, int N, int m,
                     int64_t n_attacker, int want_indep, int64_t n_holdout, int64_t n_test, int secret,
                     char *err, size_t errlen) {
    if (N < 1 || m < 1) return util_err(err, errlen, "split needs N >= 1 and m >= 1, got N=%d, m=%d", N, m);
    if (n_train < 0 || n_attacker < 0 || n_holdout < 0 || n_test < 0 || n_train_file < 0 || n_test_file < 0)
        return util_err(err, errlen, "split sizes must not be negative (n_train=%lld, attacker=%lld, holdout=%lld, n_test=%lld)",
                    (long long)n_train, (long long)n_attacker, (long long)n_holdout, (long long)n_test);
    if (secret >= N) return util_err(err, errlen, "split: secret %d is out of range 0..%d", secret, N - 1);
    if (n_train_file > (int64_t)UINT32_MAX || n_test_file > (int64_t)UINT32_MAX)
        return util_err(err, errlen, "split: files of more than %u samples are not supported", UINT32_MAX);
    int64_t pool = (int64_t)N * m, indep = want_indep ? n_train : 0;
    int64_t need = n_train + pool + n_attacker + indep + n_holdout;
    if (need > n_train_file)
        return util_err(err, errlen,
                    "split needs %lld samples from the train file (n_train=%lld + pool N*m=%lld + attacker=%lld + "
                    "indep=%lld + holdout=%lld), the file has %lld",
                    (long long)need, (long long)n_train, (long long)pool, (long long)n_attacker, (long long)indep,
                    (long long)n_holdout, (long long)n_train_file);
    if (n_test > n_test_file)
        return util_err(err, errlen, "split needs %lld samples from the test file, the file has %lld", (long long)n_test,
                    (long long)n_test_file);
    return 0;
}

/* A shuffled permutation of 0..n-1 (n >= 0). */
static int64_t *shuffled(gsl_rng *r, int64_t n) {
    int64_t *p = malloc((n > 0 ? (size_t)n : 1) * sizeof *p);
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) p[i] = i;
    if (n > 1) gsl_ran_shuffle(r, p, (size_t)n, sizeof *p);
    return p;
}

/* A copy of src[from .. from+n), advancing *from. */
static int64_t *take(const int64_t *src, int64_t *from, int64_t n) {
    int64_t *p = malloc((n > 0 ? (size_t)n : 1) * sizeof *p);
    if (p && n > 0) memcpy(p, src + *from, (size_t)n * sizeof *p);
    *from += n;
    return p;
}

static void split_cut(const int64_t *tp, const int64_t *sp, data_split *s) {
    int64_t at = 0, zero = 0;
    s->train = take(tp, &at, s->n_train);
    s->pool = take(tp, &at, (int64_t)s->N * s->m);
    s->attacker = take(tp, &at, s->n_attacker);
    s->indep = take(tp, &at, s->n_indep);
    s->holdout = take(tp, &at, s->n_holdout);
    s->test = take(sp, &zero, s->n_test);
}

int data_split_make(int64_t n_train_file, int64_t n_test_file, int64_t n_train, int N, int m,
                    int64_t n_attacker, int want_indep, int64_t n_holdout, int64_t n_test, int secret, uint64_t seed,
                    data_split *out, char *err, size_t errlen) {
    if (!out) return util_err(err, errlen, "data_split_make: no output split");
    memset(out, 0, sizeof *out);
    if (data_split_check(n_train_file, n_test_file, n_train, N, m, n_attacker, want_indep, n_holdout, n_test, secret,
                         err, errlen))
        return -1;
    gsl_rng *r = rng_for(seed, 0);
    int64_t *tp = r ? shuffled(r, n_train_file) : NULL, *sp = r ? shuffled(r, n_test_file) : NULL;
    int rc = -1;
    if (tp && sp) {
        *out = (data_split){.n_train = n_train, .N = N, .m = m, .n_attacker = n_attacker,
                            .n_indep = want_indep ? n_train : 0, .n_holdout = n_holdout, .n_test = n_test};
        out->secret = secret >= 0 ? secret : (int)gsl_rng_uniform_int(r, (unsigned long)N);
        split_cut(tp, sp, out);
        rc = out->train && out->pool && out->attacker && out->indep && out->holdout && out->test ? 0 : -1;
    }
    gsl_rng_free(r);
    free(tp);
    free(sp);
    if (rc) {
        data_split_free(out);
        return util_err(err, errlen, "split: out of memory for %lld + %lld indices", (long long)n_train_file,
                    (long long)n_test_file);
    }
    return 0;
}

int64_t *data_split_evidence(const data_split *s, int64_t side) {
    if (!s || side < 1 || side > s->n_train || side != s->n_holdout + (int64_t)(s->N - 1) * s->m) return NULL;
    int64_t *ix = malloc(sizeof *ix * (size_t)(2 * side)), at = side;
    if (!ix) return NULL;
    memcpy(ix, s->train, sizeof *ix * (size_t)side);
    memcpy(ix + at, s->holdout, sizeof *ix * (size_t)s->n_holdout);
    at += s->n_holdout;
    for (int i = 0; i < s->N; i++)
        if (i != s->secret) { memcpy(ix + at, s->pool + (int64_t)i * s->m, sizeof *ix * (size_t)s->m); at += s->m; }
    return ix;
}

void data_split_free(data_split *s) {
    if (!s) return;
    free(s->train);
    free(s->pool);
    free(s->attacker);
    free(s->indep);
    free(s->holdout);
    free(s->test);
    memset(s, 0, sizeof *s);
}
