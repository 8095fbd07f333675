/* test_data: the dataset readers (IDX raw and gzip, CIFAR-10/100, every corrupt case), the
 * real Fashion-MNIST, the synthetic generator, normalisation and the seeded split. */
#include "testutil.h"
#include <math.h>
#include <sys/stat.h>
#include <zlib.h>
#include "data.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers that write test files --------------------------------------------------- */

static char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_tmpdir(), name);
    return buf[k];
}

static void write_bytes(const char *path, const unsigned char *p, size_t n, int gz) {
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        if (n) assert_int_equal(gzwrite(g, p, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(p, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static unsigned char pixel_of(uint32_t i, uint32_t r, uint32_t c) { return (unsigned char)(i * 31 + r * 7 + c * 3 + 1); }

/* An IDX image file of n images rows x cols; returns its byte count in *len (caller frees). */
static unsigned char *idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t *len) {
    *len = 16 + (size_t)n * rows * cols;
    unsigned char *p = malloc(*len);
    put_be32(p, magic); put_be32(p + 4, n); put_be32(p + 8, rows); put_be32(p + 12, cols);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t c = 0; c < cols; c++) p[16 + ((size_t)i * rows + r) * cols + c] = pixel_of(i, r, c);
    return p;
}

static unsigned char *idx_labels(uint32_t magic, uint32_t n, const unsigned char *labels, size_t *len) {
    *len = 8 + n;
    unsigned char *p = malloc(*len);
    put_be32(p, magic); put_be32(p + 4, n);
    memcpy(p + 8, labels, n);
    return p;
}

static const unsigned char good_labels[5] = {3, 0, 9, 1, 7};

/* Writes a good 5-image 3x4 pair at img/lab. */
static void write_good_idx(const char *img, const char *lab, int gz) {
    size_t li, ll;
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li), *pl = idx_labels(0x801, 5, good_labels, &ll);
    write_bytes(img, pi, li, gz);
    write_bytes(lab, pl, ll, gz);
    free(pi);
    free(pl);
}

/* Asserts data_read_idx fails, leaves out zeroed, and names `culprit` (and `word`, if given). */
static void expect_idx_error(const char *img, const char *lab, const char *culprit, const char *word) {
    pmi_dataset d;
    char err[1024] = "";
    assert_int_equal(data_read_idx(img, lab, &d, err, sizeof err), -1);
    assert_null(d.x);
    assert_null(d.y);
    assert_int_equal(d.n, 0);
    if (!strstr(err, culprit) || (word && !strstr(err, word))) fail_msg("message '%s' lacks '%s' / '%s'", err, culprit, word ? word : "");
}

/* ---- IDX ----------------------------------------------------------------------------- */

static void check_good_idx(const char *img, const char *lab) {
    pmi_dataset d;
    char err[512] = "";
    assert_int_equal(data_read_idx(img, lab, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.h, 3);
    assert_int_equal(d.w, 4);
    assert_int_equal(d.classes, 10);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(d.y[i], good_labels[i]);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) assert_true(d.x[(i * 3 + r) * 4 + c] == (float)pixel_of(i, r, c));
    }
    data_free(&d);
    assert_null(d.x);
    data_free(NULL);
}

static void test_idx_roundtrip_raw(void **state) {
    write_good_idx(tpath("raw-img"), tpath("raw-lab"), 0);
    check_good_idx(tpath("raw-img"), tpath("raw-lab"));
}

static void test_idx_roundtrip_gzip(void **state) {
    write_good_idx(tpath("gz-img.gz"), tpath("gz-lab.gz"), 1);
    check_good_idx(tpath("gz-img.gz"), tpath("gz-lab.gz"));
}

/* A file's size hint (gzip's ISIZE trailer, a plain file's size) only sizes the first buffer:
 * a two-member gzip file, whose trailer holds the second member's size alone, still reads whole,
 * and a file large enough for the huge-page buffer (over 8 MB of pixels) reads the same pixels. */
static void test_idx_size_hint(void **state) {
    size_t li, ll;
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li), *pl = idx_labels(0x801, 5, good_labels, &ll);
    gzFile g = gzopen(tpath("two-img.gz"), "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, pi, 40), 40);
    assert_int_equal(gzclose(g), Z_OK);
    g = gzopen(tpath("two-img.gz"), "ab");   /* a second gzip member */
    assert_non_null(g);
    assert_int_equal(gzwrite(g, pi + 40, (unsigned)(li - 40)), (int)(li - 40));
    assert_int_equal(gzclose(g), Z_OK);
    write_bytes(tpath("two-lab"), pl, ll, 0);
    check_good_idx(tpath("two-img.gz"), tpath("two-lab"));
    free(pi); free(pl);
    const uint32_t n = 3000, side = 28;   /* 3000 x 784 x 4 bytes = 9.4 MB of floats */
    unsigned char labels[3000];
    for (uint32_t i = 0; i < n; i++) labels[i] = (unsigned char)(i % 10);
    pi = idx_images(0x803, n, side, side, &li);
    pl = idx_labels(0x801, n, labels, &ll);
    for (int gz = 0; gz < 2; gz++) {
        write_bytes(tpath("big-img"), pi, li, gz);
        write_bytes(tpath("big-lab"), pl, ll, gz);
        pmi_dataset d;
        char err[512] = "";
        assert_int_equal(data_read_idx(tpath("big-img"), tpath("big-lab"), &d, err, sizeof err), 0);
        assert_int_equal(d.n, n);
        for (size_t j = 0; j < (size_t)n * side * side; j++)
            if (d.x[j] != (float)pi[16 + j]) fail_msg("pixel %zu: %g, expected %u", j, d.x[j], pi[16 + j]);
        for (uint32_t i = 0; i < n; i++) assert_int_equal(d.y[i], labels[i]);
        data_free(&d);
    }
    free(pi); free(pl);
}

static void test_idx_bad_magic(void **state) {
    size_t li, ll;
    unsigned char *pi = idx_images(0x12345678, 5, 3, 4, &li), *pl = idx_labels(0x801, 5, good_labels, &ll);
    write_bytes(tpath("bm-img"), pi, li, 0);
    write_bytes(tpath("bm-lab"), pl, ll, 0);
    expect_idx_error(tpath("bm-img"), tpath("bm-lab"), tpath("bm-img"), "magic");
    /* a label file where the image file should be: the dimension count is wrong */
    expect_idx_error(tpath("bm-lab"), tpath("bm-lab"), tpath("bm-lab"), "dimensions");
    put_be32(pi, 0x803);
    put_be32(pl, 0x803);
    write_bytes(tpath("bm-img"), pi, li, 0);
    write_bytes(tpath("bm-lab"), pl, ll, 0);
    expect_idx_error(tpath("bm-img"), tpath("bm-lab"), tpath("bm-lab"), "dimensions");
    free(pi);
    free(pl);
}

static void test_idx_truncated(void **state) {
    size_t li, ll;
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li), *pl = idx_labels(0x801, 5, good_labels, &ll);
    write_bytes(tpath("tr-lab"), pl, ll, 0);
    write_bytes(tpath("tr-img"), pi, li - 7, 0);
    expect_idx_error(tpath("tr-img"), tpath("tr-lab"), tpath("tr-img"), "truncated: expected 60 bytes of pixel data, got 53");
    for (size_t cut = 0; cut < li; cut++) {  /* every shorter file, header cuts included */
        write_bytes(tpath("tr-img"), pi, cut, cut % 2);
        expect_idx_error(tpath("tr-img"), tpath("tr-lab"), tpath("tr-img"), "truncated");
    }
    write_good_idx(tpath("tr-img"), tpath("tr-lab"), 0);
    for (size_t cut = 0; cut < ll; cut++) {
        write_bytes(tpath("tr-lab"), pl, cut, 0);
        expect_idx_error(tpath("tr-img"), tpath("tr-lab"), tpath("tr-lab"), "truncated");
    }
    free(pi);
    free(pl);
}

/* A gzip stream cut short is a read error, not silently short data. */
static void test_idx_truncated_gzip_stream(void **state) {
    write_good_idx(tpath("tg-img.gz"), tpath("tg-lab"), 1);
    struct stat st;
    assert_int_equal(stat(tpath("tg-img.gz"), &st), 0);
    FILE *f = fopen(tpath("tg-img.gz"), "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, (size_t)st.st_size);
    for (size_t cut = 10; cut < n; cut += 3) {
        write_bytes(tpath("tg-img.gz"), buf, cut, 0);
        expect_idx_error(tpath("tg-img.gz"), tpath("tg-lab"), tpath("tg-img.gz"), "truncated");
    }
    buf[n - 6] ^= 0x5a;  /* a damaged CRC in the gzip trailer */
    write_bytes(tpath("tg-img.gz"), buf, n, 0);
    expect_idx_error(tpath("tg-img.gz"), tpath("tg-lab"), tpath("tg-img.gz"), "check");
}

static void test_idx_count_mismatch(void **state) {
    size_t li, ll;
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li), *pl = idx_labels(0x801, 4, good_labels, &ll);
    write_bytes(tpath("cm-img"), pi, li, 0);
    write_bytes(tpath("cm-lab"), pl, ll, 1);
    expect_idx_error(tpath("cm-img"), tpath("cm-lab"), tpath("cm-lab"), "5 images");
    expect_idx_error(tpath("cm-img"), tpath("cm-lab"), tpath("cm-img"), "4 labels");
    free(pi);
    free(pl);
}

static void test_idx_bad_dims_and_trailing(void **state) {
    size_t li, ll;
    unsigned char *pl = idx_labels(0x801, 5, good_labels, &ll);
    write_bytes(tpath("bd-lab"), pl, ll, 0);
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li);
    put_be32(pi + 8, 0);
    write_bytes(tpath("bd-img"), pi, li, 0);
    expect_idx_error(tpath("bd-img"), tpath("bd-lab"), tpath("bd-img"), "rows and cols");
    put_be32(pi + 8, 2000);
    write_bytes(tpath("bd-img"), pi, li, 0);
    expect_idx_error(tpath("bd-img"), tpath("bd-lab"), tpath("bd-img"), "rows and cols");
    put_be32(pi + 8, 3);
    put_be32(pi + 4, 0xffffffffu);  /* a huge count must not be trusted for an allocation */
    write_bytes(tpath("bd-img"), pi, li, 0);
    expect_idx_error(tpath("bd-img"), tpath("bd-lab"), tpath("bd-img"), "truncated");
    put_be32(pi + 4, 4);
    write_bytes(tpath("bd-img"), pi, li, 0);
    expect_idx_error(tpath("bd-img"), tpath("bd-lab"), tpath("bd-img"), "trailing");
    free(pi);
    free(pl);
}

static void test_idx_missing_file(void **state) {
    write_good_idx(tpath("mf-img"), tpath("mf-lab"), 0);
    expect_idx_error(tpath("nope-img"), tpath("mf-lab"), tpath("nope-img"), "cannot open");
    expect_idx_error(tpath("mf-img"), tpath("nope-lab"), tpath("nope-lab"), "cannot open");
    pmi_dataset d;
    char err[256];
    assert_int_equal(data_read_idx(NULL, tpath("mf-lab"), &d, err, sizeof err), -1);
    assert_int_equal(data_read_idx(tpath("mf-img"), tpath("mf-lab"), NULL, err, sizeof err), -1);
}

/* Writes an MNIST-style directory whose training labels are `labels` (5 samples). */
static const char *mnist_dir(const char *name, const unsigned char *labels, int raw_test) {
    char *dir = tpath(name);
    mkdir(dir, 0700);
    char img[600], lab[600];
    size_t li, ll;
    unsigned char *pi = idx_images(0x803, 5, 3, 4, &li), *pl = idx_labels(0x801, 5, labels, &ll);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    write_bytes(img, pi, li, 1);
    write_bytes(lab, pl, ll, 1);
    snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte%s", dir, raw_test ? "" : ".gz");
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte%s", dir, raw_test ? "" : ".gz");
    write_bytes(img, pi, li, !raw_test);
    write_bytes(lab, pl, ll, !raw_test);
    free(pi);
    free(pl);
    return dir;
}

static void test_mnist_label_out_of_range(void **state) {
    const unsigned char bad[5] = {3, 0, 12, 1, 7};
    const char *dir = mnist_dir("mnist-bad", bad, 0);
    pmi_dataset tr, te;
    char err[1024] = "";
    assert_int_equal(data_load("mnist", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    assert_null(tr.x);
    assert_null(te.x);
    assert_non_null(strstr(err, "train-labels-idx1-ubyte.gz"));
    assert_non_null(strstr(err, "label 12 at sample 2"));
    /* data_read_idx itself accepts labels >= 10 and widens classes to fit them */
    char img[600], lab[600];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    assert_int_equal(data_read_idx(img, lab, &tr, err, sizeof err), 0);
    assert_int_equal(tr.classes, 13);
    data_free(&tr);
}

static void test_mnist_dir_gz_and_raw(void **state) {
    const char *dir = mnist_dir("mnist-good", good_labels, 1);
    pmi_dataset tr, te;
    char err[1024] = "";
    assert_int_equal(data_load("mnist", dir, 0, 0, &tr, &te, err, sizeof err), 0);
    assert_int_equal(tr.n, 5);
    assert_int_equal(te.n, 5);
    assert_int_equal(te.y[2], 9);
    assert_int_equal(tr.classes, 10);
    data_free(&tr);
    data_free(&te);
    assert_int_equal(data_load("mnist", NULL, 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a directory"));
    assert_int_equal(data_load("mnist", tpath("no-such-dir"), 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-dir/train-images-idx3-ubyte.gz"));
}

/* ---- CIFAR --------------------------------------------------------------------------- */

static unsigned char cifar_pixel(int rec, int c, int h, int w) { return (unsigned char)(rec * 13 + c * 101 + h * 7 + w); }

/* Writes n CIFAR records (labels 1 or 2 bytes); returns the path. */
static const char *write_cifar(const char *name, int n, int label_bytes, int first, size_t chop) {
    size_t rec = (size_t)label_bytes + 3072, len = rec * (size_t)n - chop;
    unsigned char *p = malloc(rec * (size_t)n);
    for (int r = 0; r < n; r++) {
        unsigned char *q = p + rec * (size_t)r;
        q[0] = (unsigned char)((first + r) % 10 + (label_bytes == 2 ? 50 : 0));  /* coarse differs from fine */
        if (label_bytes == 2) q[1] = (unsigned char)((first + r) * 11 % 100);
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < 32; h++)
                for (int w = 0; w < 32; w++) q[label_bytes + c * 1024 + h * 32 + w] = cifar_pixel(first + r, c, h, w);
    }
    const char *path = tpath(name);
    write_bytes(path, p, len, 0);
    free(p);
    return path;
}

static void check_cifar_pixels(const pmi_dataset *d) {
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    for (int i = 0; i < d->n; i++)
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < 32; h += 5)
                for (int w = 0; w < 32; w += 3)
                    assert_true(d->x[((i * 3 + c) * 32 + h) * 32 + w] == (float)cifar_pixel(i, c, h, w));
}

static void test_cifar10_layout(void **state) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", write_cifar("c10-a.bin", 3, 1, 0, 0));
    snprintf(b, sizeof b, "%s", write_cifar("c10-b.bin", 2, 1, 3, 0));
    const char *files[] = {a, b, NULL};
    pmi_dataset d;
    char err[512] = "";
    assert_int_equal(data_read_cifar(files, 10, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.classes, 10);
    for (int i = 0; i < 5; i++) assert_int_equal(d.y[i], i);
    check_cifar_pixels(&d);
    data_free(&d);
}

static void test_cifar100_fine_label(void **state) {
    const char *files[] = {write_cifar("c100.bin", 4, 2, 0, 0), NULL};
    pmi_dataset d;
    char err[512] = "";
    assert_int_equal(data_read_cifar(files, 100, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.classes, 100);
    for (int i = 0; i < 4; i++) assert_int_equal(d.y[i], i * 11 % 100);
    check_cifar_pixels(&d);
    data_free(&d);
    /* a CIFAR-100 file read as CIFAR-10 has the wrong record size */
    assert_int_equal(data_read_cifar(files, 10, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, files[0]));
}

static void expect_cifar_error(const char *path, int classes, const char *word) {
    const char *files[] = {path, NULL};
    pmi_dataset d;
    char err[1024] = "";
    assert_int_equal(data_read_cifar(files, classes, &d, err, sizeof err), -1);
    assert_null(d.x);
    assert_int_equal(d.n, 0);
    if (!strstr(err, path) || !strstr(err, word)) fail_msg("message '%s' lacks '%s' / '%s'", err, path, word);
}

static void test_cifar_corrupt(void **state) {
    expect_cifar_error(write_cifar("c10-short.bin", 2, 1, 0, 5), 10, "not a positive multiple of the 3073-byte");
    expect_cifar_error(write_cifar("c10-empty.bin", 1, 1, 0, 3073), 10, "not a positive multiple");
    expect_cifar_error(tpath("c10-missing.bin"), 10, "cannot open");
    /* labels 0..11 in a CIFAR-10 file: record 10 is out of range */
    char good[512];
    snprintf(good, sizeof good, "%s", write_cifar("c10-ok.bin", 2, 1, 0, 0));
    size_t rec = 3073;
    unsigned char *p = calloc(12, rec);
    for (int r = 0; r < 12; r++) p[rec * (size_t)r] = (unsigned char)r;
    write_bytes(tpath("c10-lab.bin"), p, 12 * rec, 0);
    free(p);
    expect_cifar_error(tpath("c10-lab.bin"), 10, "record 10 has label 10");
    const char *files[] = {good, tpath("c10-lab.bin"), NULL};  /* a bad second file frees the first */
    pmi_dataset d;
    char err[512];
    assert_int_equal(data_read_cifar(files, 10, &d, err, sizeof err), -1);
    assert_null(d.x);
    assert_int_equal(data_read_cifar(files, 7, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "10 or 100"));
}

static void test_cifar_dirs(void **state) {
    char *dir = tpath("cifar10-dir"), path[600];
    mkdir(dir, 0700);
    for (int i = 1; i <= 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "cifar10-dir/data_batch_%d.bin", i);
        write_cifar(name, 2, 1, 0, 0);
    }
    write_cifar("cifar10-dir/test_batch.bin", 2, 1, 0, 0);
    pmi_dataset tr, te;
    char err[1024] = "";
    assert_int_equal(data_load("cifar10", dir, 0, 0, &tr, &te, err, sizeof err), 0);
    assert_int_equal(tr.n, 10);
    assert_int_equal(te.n, 2);
    data_free(&tr);
    data_free(&te);
    snprintf(path, sizeof path, "%s/data_batch_4.bin", dir);
    remove(path);
    assert_int_equal(data_load("cifar10", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "data_batch_4.bin"));
    assert_int_equal(data_load("cifar100", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "train.bin"));
    assert_int_equal(data_load("imagenet", dir, 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "'imagenet'"));
    assert_non_null(strstr(err, "fashion-mnist, mnist, cifar10, cifar100, synthetic"));
}

/* ---- the real Fashion-MNIST ---------------------------------------------------------- */

static void check_fashion_set(const pmi_dataset *d, int64_t n) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, 28);
    assert_int_equal(d->w, 28);
    assert_int_equal(d->classes, 10);
    int64_t count[10] = {0};
    for (int64_t i = 0; i < d->n; i++) {
        assert_in_range(d->y[i], 0, 9);
        count[d->y[i]]++;
    }
    for (int k = 0; k < 10; k++) assert_int_equal(count[k], n / 10);  /* Fashion-MNIST is balanced */
    float lo = 255, hi = 0;
    for (int64_t i = 0; i < d->n * 784; i++) { lo = fminf(lo, d->x[i]); hi = fmaxf(hi, d->x[i]); }
    assert_true(lo == 0.0f && hi == 255.0f);
}

static void test_fashion_mnist_real(void **state) {
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0) {
        print_message("SKIP: %s is absent, the real Fashion-MNIST was not checked\n", FASHION_DIR);
        skip();
    }
    unsetenv("FASHION_MNIST");
    pmi_dataset tr, te;
    char err[1024] = "";
    assert_int_equal(data_load("fashion-mnist", NULL, 0, 0, &tr, &te, err, sizeof err), 0);
    check_fashion_set(&tr, 60000);
    check_fashion_set(&te, 10000);
    data_free(&tr);
    data_free(&te);
    setenv("FASHION_MNIST", tpath("no-such-fashion"), 1);  /* the variable overrides the default */
    assert_int_equal(data_load("fashion-mnist", "", 0, 0, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-fashion"));
    unsetenv("FASHION_MNIST");
}

/* ---- synthetic ----------------------------------------------------------------------- */

static int same_data(const pmi_dataset *a, const pmi_dataset *b) {
    size_t dim = (size_t)a->c * a->h * a->w;
    return a->n == b->n && memcmp(a->x, b->x, (size_t)a->n * dim * sizeof(float)) == 0 &&
           memcmp(a->y, b->y, (size_t)a->n * sizeof(int32_t)) == 0;
}

static void test_synthetic_deterministic(void **state) {
    pmi_dataset a, b, c, t;
    char err[256];
    assert_int_equal(data_load("synthetic", NULL, 400, 7, &a, &t, err, sizeof err), 0);
    assert_int_equal(data_synthetic(400, 1, 8, 8, 10, 7, &b), 0);
    assert_int_equal(data_synthetic(400, 1, 8, 8, 10, 8, &c), 0);
    assert_true(same_data(&a, &b));
    assert_false(same_data(&a, &c));
    assert_int_equal(a.c * a.h * a.w, 64);
    assert_int_equal(a.classes, 10);
    assert_int_equal(t.n, 100);
    assert_false(memcmp(a.x, t.x, 100 * 64 * sizeof(float)) == 0);  /* test samples are new samples */
    for (int64_t i = 0; i < a.n * 64; i++) assert_true(a.x[i] >= 0 && a.x[i] <= 255);
    for (int64_t i = 0; i < a.n; i++) assert_in_range(a.y[i], 0, 9);
    data_free(&a); data_free(&b); data_free(&c); data_free(&t);
    assert_int_equal(data_synthetic(0, 1, 8, 8, 10, 7, &a), -1);
    assert_int_equal(data_load("synthetic", NULL, 3, 7, &a, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "n_synth"));
}

/* Nearest class mean (fitted on train) on test: the classes must be learnable from the
 * prototypes, and the test set must come from the same distribution as train. */
static double nearest_mean_accuracy(const pmi_dataset *tr, const pmi_dataset *te) {
    double mu[10][64] = {{0}}, cnt[10] = {0};
    for (int64_t i = 0; i < tr->n; i++) {
        cnt[tr->y[i]]++;
        for (int j = 0; j < 64; j++) mu[tr->y[i]][j] += tr->x[i * 64 + j];
    }
    int hit = 0;
    for (int64_t i = 0; i < te->n; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int k = 0; k < 10; k++) {
            double dd = 0;
            for (int j = 0; j < 64; j++) { double v = te->x[i * 64 + j] - mu[k][j] / cnt[k]; dd += v * v; }
            if (dd < bd) { bd = dd; best = k; }
        }
        hit += best == te->y[i];
    }
    return (double)hit / (double)te->n;
}

static void test_synthetic_learnable_and_noisy(void **state) {
    pmi_dataset tr, te;
    char err[256];
    assert_int_equal(data_load("synthetic", NULL, 4000, 3, &tr, &te, err, sizeof err), 0);
    double acc = nearest_mean_accuracy(&tr, &te);
    print_message("synthetic nearest-class-mean test accuracy %.3f\n", acc);
    assert_true(acc > 0.7);   /* learnable; the ceiling is about 0.85 + 0.015 with 15% label noise */
    assert_true(acc < 0.92);  /* the label noise is there: not even the Bayes rule fits it */
    data_free(&tr);
    data_free(&te);
}

/* ---- normalisation ------------------------------------------------------------------- */

static void test_normalize(void **state) {
    pmi_dataset d, u;
    assert_int_equal(data_synthetic(300, 3, 4, 5, 10, 11, &d), 0);
    assert_int_equal(data_synthetic(300, 3, 4, 5, 10, 11, &u), 0);
    data_normalize(&u, DATA_NORM_UNIT, NULL, NULL);
    for (int64_t i = 0; i < 300 * 60; i++) assert_float_equal(u.x[i], d.x[i] / 255.0, 1e-6);
    int64_t idx[100];
    for (int i = 0; i < 100; i++) idx[i] = 2 * i + 50;
    double mean[3], std[3], m2[3], s2[3];
    data_channel_stats(&d, idx, 100, mean, std);
    data_normalize(&d, DATA_NORM_STANDARD, mean, std);
    data_channel_stats(&d, idx, 100, m2, s2);  /* stats of x/255 after normalising: scaled by 1/255 */
    for (int c = 0; c < 3; c++) {
        assert_true(std[c] > 0.01);
        assert_float_equal(m2[c] * 255.0, 0.0, 1e-5);
        assert_float_equal(s2[c] * 255.0, 1.0, 1e-5);
    }
    data_normalize(&d, DATA_NORM_STANDARD, NULL, std);  /* no statistics: unchanged */
    data_channel_stats(&d, idx, 100, m2, s2);
    assert_float_equal(s2[0] * 255.0, 1.0, 1e-5);
    data_normalize(NULL, DATA_NORM_UNIT, NULL, NULL);
    data_free(&d);
    data_free(&u);
}

static void test_channel_stats_reference(void **state) {
    pmi_dataset d = {0};
    float x[2 * 2 * 2] = {0, 255, 51, 102, 255, 255, 0, 0};  /* 2 samples, 2 channels, 1x2 */
    int32_t y[2] = {0, 1};
    d.x = x; d.y = y; d.n = 2; d.c = 2; d.h = 1; d.w = 2;
    double mean[2], std[2];
    data_channel_stats(&d, NULL, 2, mean, std);
    /* channel 0: 0, 1, 1, 1 -> mean 0.75, std sqrt(0.1875); channel 1: 0.2, 0.4, 0, 0 */
    assert_float_equal(mean[0], 0.75, 1e-12);
    assert_float_equal(std[0], sqrt(0.1875), 1e-12);
    assert_float_equal(mean[1], 0.15, 1e-12);
    assert_float_equal(std[1], sqrt((0.05 * 0.05 + 0.25 * 0.25 + 2 * 0.15 * 0.15) / 4), 1e-12);
    const int64_t bad[2] = {1, 99};  /* out-of-range indices are skipped */
    data_channel_stats(&d, bad, 2, mean, std);
    assert_float_equal(mean[0], 1.0, 1e-12);
    assert_float_equal(std[0], 0.0, 1e-12);
}

/* ---- the split ----------------------------------------------------------------------- */

static void mark(unsigned char *seen, const int64_t *idx, int64_t n, int64_t range) {
    for (int64_t i = 0; i < n; i++) {
        assert_in_range(idx[i], 0, range - 1);
        assert_int_equal(seen[idx[i]], 0);
        seen[idx[i]] = 1;
    }
}

static void test_split_disjoint_and_sizes(void **state) {
    data_split s;
    char err[512] = "";
    assert_int_equal(data_split_make(1000, 300, 200, 10, 20, 150, 1, 0, 250, -1, 42, &s, err, sizeof err), 0);
    assert_int_equal(s.n_train, 200);
    assert_int_equal(s.N, 10);
    assert_int_equal(s.m, 20);
    assert_int_equal(s.n_attacker, 150);
    assert_int_equal(s.n_indep, 200);
    assert_int_equal(s.n_test, 250);
    assert_in_range(s.secret, 0, 9);
    unsigned char seen[1000] = {0}, seen_test[300] = {0};
    mark(seen, s.train, 200, 1000);
    mark(seen, s.pool, 200, 1000);
    mark(seen, s.attacker, 150, 1000);
    mark(seen, s.indep, 200, 1000);
    mark(seen_test, s.test, 250, 300);
    data_split_free(&s);
    assert_null(s.train);
    data_split_free(NULL);
    assert_int_equal(data_split_make(1000, 300, 200, 10, 20, 0, 0, 0, 0, 3, 42, &s, err, sizeof err), 0);
    assert_int_equal(s.n_indep, 0);
    assert_int_equal(s.secret, 3);
    data_split_free(&s);
}

static int same_split(const data_split *a, const data_split *b) {
    return a->secret == b->secret && memcmp(a->train, b->train, (size_t)a->n_train * 8) == 0 &&
           memcmp(a->pool, b->pool, (size_t)a->N * a->m * 8) == 0 &&
           memcmp(a->attacker, b->attacker, (size_t)a->n_attacker * 8) == 0 &&
           memcmp(a->test, b->test, (size_t)a->n_test * 8) == 0;
}

static void test_split_seeded(void **state) {
    data_split a, b, c;
    char err[512];
    assert_int_equal(data_split_make(60000, 10000, 1000, 100, 10, 500, 0, 0, 1000, -1, 5, &a, err, sizeof err), 0);
    assert_int_equal(data_split_make(60000, 10000, 1000, 100, 10, 500, 0, 0, 1000, -1, 5, &b, err, sizeof err), 0);
    assert_int_equal(data_split_make(60000, 10000, 1000, 100, 10, 500, 0, 0, 1000, -1, 5 + (1ull << 40), &c, err, sizeof err), 0);
    assert_true(same_split(&a, &b));
    assert_false(memcmp(a.train, c.train, 1000 * 8) == 0);  /* high seed bits matter too */
    assert_false(memcmp(a.test, c.test, 1000 * 8) == 0);
    int secrets[100] = {0}, distinct = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {  /* the drawn secret varies with the seed */
        data_split s;
        assert_int_equal(data_split_make(60000, 10000, 10, 100, 10, 0, 0, 0, 10, -1, seed, &s, err, sizeof err), 0);
        assert_in_range(s.secret, 0, 99);
        distinct += !secrets[s.secret]++;
        data_split_free(&s);
    }
    assert_true(distinct > 15);
    data_split_free(&a); data_split_free(&b); data_split_free(&c);
}

static void test_split_too_small(void **state) {
    data_split s;
    char err[512] = "";
    assert_int_equal(data_split_make(900, 300, 300, 10, 20, 150, 1, 0, 250, -1, 1, &s, err, sizeof err), -1);
    assert_string_equal(err, "split needs 950 samples from the train file (n_train=300 + pool N*m=200 + "
                             "attacker=150 + indep=300 + holdout=0), the file has 900");
    assert_null(s.train);
    assert_int_equal(data_split_make(900, 300, 300, 10, 20, 150, 0, 0, 250, -1, 1, &s, err, sizeof err), 0);
    data_split_free(&s);
    assert_int_equal(data_split_make(1000, 300, 300, 10, 20, 150, 0, 0, 301, -1, 1, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "test file"));
    assert_int_equal(data_split_make(1000, 300, 300, 10, 20, 150, 0, 0, 250, 10, 1, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "secret 10"));
    assert_int_equal(data_split_make(1000, 300, 300, 0, 20, 150, 0, 0, 250, -1, 1, &s, err, sizeof err), -1);
    assert_int_equal(data_split_make(1000, 300, -1, 10, 20, 150, 0, 0, 250, -1, 1, &s, err, sizeof err), -1);
}

/* ---- counts without loading, and the split check they feed --------------------------- */

/* data_counts reads the sample counts from IDX headers (gzip or raw) and CIFAR file sizes, and
 * agrees with what data_load reads; its errors are the loader's. */
static void test_counts_match_load(void **state) {
    static const unsigned char labels[5] = {1, 2, 3, 4, 5};
    const char *dir = mnist_dir("counts-mnist", labels, 1);
    int64_t ntr = -1, nte = -1;
    char err[1024] = "";
    pmi_dataset tr, te;
    assert_int_equal(data_counts("mnist", dir, 0, &ntr, &nte, err, sizeof err), 0);
    assert_int_equal(data_load("mnist", dir, 0, 0, &tr, &te, err, sizeof err), 0);
    assert_int_equal(ntr, tr.n); assert_int_equal(nte, te.n); assert_int_equal(ntr, 5);
    data_free(&tr); data_free(&te);
    char *cdir = tpath("counts-cifar");
    mkdir(cdir, 0700);
    for (int i = 1; i <= 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "counts-cifar/data_batch_%d.bin", i);
        write_cifar(name, i, 1, 0, 0);
    }
    write_cifar("counts-cifar/test_batch.bin", 3, 1, 0, 0);
    assert_int_equal(data_counts("cifar10", cdir, 0, &ntr, &nte, err, sizeof err), 0);
    assert_int_equal(ntr, 15); assert_int_equal(nte, 3);
    assert_int_equal(data_load("cifar10", cdir, 0, 0, &tr, &te, err, sizeof err), 0);
    assert_int_equal(tr.n, 15); assert_int_equal(te.n, 3);
    data_free(&tr); data_free(&te);
    /* a gzip CIFAR file is counted by its content, not its size */
    char path[700];
    snprintf(path, sizeof path, "%s/test_batch.bin", cdir);
    unsigned char *rec = calloc(4, 3073);
    write_bytes(path, rec, 4 * 3073, 1);
    free(rec);
    assert_int_equal(data_counts("cifar10", cdir, 0, &ntr, &nte, err, sizeof err), 0);
    assert_int_equal(nte, 4);
    assert_int_equal(data_counts("synthetic", NULL, 100, &ntr, &nte, err, sizeof err), 0);
    assert_int_equal(ntr, 100); assert_int_equal(nte, 25);
}

static void test_counts_errors(void **state) {
    int64_t ntr = -1, nte = -1;
    char err[1024] = "";
    assert_int_equal(data_counts("mnist", tpath("no-such-dir"), 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-dir/train-images-idx3-ubyte"));
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(ntr, 0); assert_int_equal(nte, 0);
    assert_int_equal(data_counts("mnist", NULL, 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a directory"));
    assert_int_equal(data_counts("cifar10", tpath("no-such-dir"), 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "data_batch_1.bin"));
    assert_int_equal(data_counts("imagenet", "x", 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "known: fashion-mnist"));
    assert_int_equal(data_counts("synthetic", NULL, 3, &ntr, &nte, err, sizeof err), -1);
    /* images and labels that disagree, and a label file given a wrong magic */
    static const unsigned char labels[5] = {1, 2, 3, 4, 5};
    const char *dir = mnist_dir("counts-bad", labels, 1);
    char path[700];
    size_t len;
    unsigned char *pl = idx_labels(0x801, 4, labels, &len);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    write_bytes(path, pl, len, 0);
    assert_int_equal(data_counts("mnist", dir, 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "4 labels for 5 images"));
    pl[3] = 0x03;
    write_bytes(path, pl, len, 0);
    free(pl);
    assert_int_equal(data_counts("mnist", dir, 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "t10k-labels-idx1-ubyte"));
    assert_non_null(strstr(err, "dimensions"));
    char *cdir = tpath("counts-cifar-bad");
    mkdir(cdir, 0700);
    write_cifar("counts-cifar-bad/train.bin", 2, 2, 0, 5);
    write_cifar("counts-cifar-bad/test.bin", 2, 2, 0, 0);
    assert_int_equal(data_counts("cifar100", cdir, 0, &ntr, &nte, err, sizeof err), -1);
    assert_non_null(strstr(err, "train.bin: size 6143 bytes is not a positive multiple of the 3074-byte CIFAR-100 record"));
}

/* data_split_check is data_split_make's check: the same verdicts and the same message. */
static void test_split_check_is_the_split(void **state) {
    static const int64_t cases[][10] = {   /* file train, file test, n_train, N, m, attacker, indep, holdout, n_test, secret */
        {900, 300, 300, 10, 20, 150, 1, 0, 250, -1}, {900, 300, 300, 10, 20, 150, 0, 0, 250, -1},
        {1000, 300, 300, 10, 20, 150, 0, 0, 301, -1}, {1000, 300, 300, 10, 20, 150, 0, 0, 250, 10},
        {1000, 300, 300, 0, 20, 150, 0, 0, 250, -1}, {1000, 300, -1, 10, 20, 150, 0, 0, 250, -1},
        {1200, 300, 300, 10, 20, 400, 1, 0, 300, 3}, {1199, 300, 300, 10, 20, 400, 1, 0, 300, 3},
        {1300, 300, 300, 10, 20, 400, 1, 100, 300, 3}, {1299, 300, 300, 10, 20, 400, 1, 100, 300, 3},
        {1300, 300, 300, 10, 20, 400, 1, -1, 300, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int64_t *c = cases[i];
        char e1[512] = "", e2[512] = "";
        data_split s;
        int a = data_split_check(c[0], c[1], c[2], (int)c[3], (int)c[4], c[5], (int)c[6], c[7], c[8], (int)c[9], e1, sizeof e1);
        int b = data_split_make(c[0], c[1], c[2], (int)c[3], (int)c[4], c[5], (int)c[6], c[7], c[8], (int)c[9], 1, &s, e2, sizeof e2);
        assert_int_equal(a, b);
        assert_string_equal(e1, e2);
        if (!b) data_split_free(&s);
    }
    char err[512];
    data_split s;
    assert_int_equal(data_split_check(1299, 300, 300, 10, 20, 400, 1, 100, 300, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "holdout=100"));
    (void)s;
}

/* The held-out set is drawn after everything else: a split with it keeps every other part of
 * the split without it (earlier results stay valid), and it is disjoint from all of them. */
static void test_split_holdout(void **state) {
    data_split a, b;
    char err[256];
    assert_int_equal(data_split_make(3000, 300, 500, 10, 20, 300, 1, 0, 200, -1, 9, &a, err, sizeof err), 0);
    assert_int_equal(data_split_make(3000, 300, 500, 10, 20, 300, 1, 400, 200, -1, 9, &b, err, sizeof err), 0);
    assert_int_equal(b.n_holdout, 400);
    assert_int_equal(a.n_holdout, 0);
    assert_int_equal(a.secret, b.secret);
    assert_memory_equal(a.train, b.train, sizeof *a.train * 500);
    assert_memory_equal(a.pool, b.pool, sizeof *a.pool * 200);
    assert_memory_equal(a.attacker, b.attacker, sizeof *a.attacker * 300);
    assert_memory_equal(a.indep, b.indep, sizeof *a.indep * 500);
    assert_memory_equal(a.test, b.test, sizeof *a.test * 200);
    char *seen = calloc(3000, 1);
    const int64_t *parts[] = {b.train, b.pool, b.attacker, b.indep, b.holdout};
    const int64_t sizes[] = {500, 200, 300, 500, 400};
    for (int p = 0; p < 5; p++)
        for (int64_t i = 0; i < sizes[p]; i++) {
            assert_true(parts[p][i] >= 0 && parts[p][i] < 3000);
            assert_int_equal(seen[parts[p][i]], 0);
            seen[parts[p][i]] = 1;
        }
    free(seen);
    data_split_free(&a);
    data_split_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_roundtrip_raw),
        cmocka_unit_test(test_idx_roundtrip_gzip),
        cmocka_unit_test(test_idx_size_hint),
        cmocka_unit_test(test_idx_bad_magic),
        cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_truncated_gzip_stream),
        cmocka_unit_test(test_idx_count_mismatch),
        cmocka_unit_test(test_idx_bad_dims_and_trailing),
        cmocka_unit_test(test_idx_missing_file),
        cmocka_unit_test(test_mnist_label_out_of_range),
        cmocka_unit_test(test_mnist_dir_gz_and_raw),
        cmocka_unit_test(test_cifar10_layout),
        cmocka_unit_test(test_cifar100_fine_label),
        cmocka_unit_test(test_cifar_corrupt),
        cmocka_unit_test(test_cifar_dirs),
        cmocka_unit_test(test_fashion_mnist_real),
        cmocka_unit_test(test_synthetic_deterministic),
        cmocka_unit_test(test_synthetic_learnable_and_noisy),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_channel_stats_reference),
        cmocka_unit_test(test_split_disjoint_and_sizes),
        cmocka_unit_test(test_split_seeded),
        cmocka_unit_test(test_split_too_small),
        cmocka_unit_test(test_counts_match_load),
        cmocka_unit_test(test_counts_errors),
        cmocka_unit_test(test_split_check_is_the_split),
        cmocka_unit_test(test_split_holdout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
