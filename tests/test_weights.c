/* Tests of sha256.c (the FIPS 180-4 vectors), safetensors.c (a round trip, and every class of
 * malformed header refused with a message that names it) and weights.c (a model saved and
 * loaded gives the same outputs; every state entry, BatchNorm buffers included, is in the
 * file; a mismatch names the tensor). */
#include "testutil.h"
#include "nn.h"
#include "safetensors.h"
#include "sha256.h"
#include "weights.h"

static void digest(const void *d, size_t n, size_t repeat, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    for (size_t i = 0; i < repeat; i++) sha256_update(&c, d, n);
    sha256_final(&c, hex);
}

/* FIPS 180-4 / NIST examples: "", "abc", the 448-bit message, a million 'a'. */
static void test_sha256_vectors(void **state) {
    char hex[65];
    digest("", 0, 1, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest("abc", 3, 1, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(m448, strlen(m448), 1, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    digest("a", 1, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    char path[300];
    snprintf(path, sizeof path, "%s/abc", tu_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("abc", f);
    fclose(f);
    char err[256];
    assert_int_equal(sha256_file(path, hex, err, sizeof err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(sha256_file("/no/such/file", hex, err, sizeof err), -1);
    assert_non_null(strstr(err, "/no/such/file"));
}

/* Reads path into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void test_safetensors_round_trip(void **state) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", tu_tmpdir());
    float w[6] = {1, -2, 3.5f, 4, 5, 6};
    int64_t n = 42;
    st_tensor t[2] = {{.name = "a.weight", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .data = (void *)w},
                      {.name = "bn.num_batches_tracked", .dtype = "I64", .ndim = 0, .data = (void *)&n}};
    const char *k[] = {"arch"}, *v[] = {"mlp"};
    assert_int_equal(st_write(path, t, 2, k, v, 1, err, sizeof err), 0);
    size_t len;
    unsigned char *raw = slurp(path, &len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    assert_int_equal(hl % 8, 0);                       /* the header is padded to 8 bytes */
    assert_int_equal(len, 8 + hl + sizeof w + sizeof n);
    free(raw);
    st_file f;
    assert_int_equal(st_read(path, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 2);
    const st_tensor *a = st_find(&f, "a.weight"), *b = st_find(&f, "bn.num_batches_tracked");
    assert_non_null(a); assert_non_null(b);
    assert_string_equal(a->dtype, "F32");
    assert_true(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->numel == 6);
    assert_memory_equal(a->data, w, sizeof w);
    assert_true(b->ndim == 0 && b->numel == 1);
    assert_memory_equal(b->data, &n, sizeof n);
    assert_string_equal(st_meta(&f, "arch"), "mlp");
    assert_null(st_meta(&f, "width"));
    st_free(&f);
    st_tensor dup[2] = {t[0], t[0]};
    assert_int_equal(st_write(path, dup, 2, NULL, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "repeated"));
}

/* A safetensors buffer of the JSON header h followed by `data` bytes of zeros. */
static int parse_text(const char *h, size_t data, char *err, size_t errlen) {
    size_t hl = strlen(h), len = 8 + hl + data;
    unsigned char *b = calloc(1, len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, h, hl);
    st_file f;
    int rc = st_parse(b, len, &f, err, errlen);
    if (rc) free(b);
    else st_free(&f);
    return rc;
}

static void refused(const char *h, size_t data, const char *words) {
    char err[512] = "";
    assert_int_equal(parse_text(h, data, err, sizeof err), -1);
    if (!strstr(err, words)) fail_msg("header %s: message '%s' lacks '%s'", h, err, words);
}

static void test_safetensors_refuses(void **state) {
    char err[512];
    assert_int_equal(parse_text("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, err, sizeof err), 0);
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON");
    refused("[1, 2]", 0, "not a JSON object");
    refused("{\"x\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'x': dtype is missing or unknown");
    refused("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'x': dtype");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape entry 0");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "shape entry 0");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "at most 8");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "outside the 8-byte data buffer");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes, data_offsets give 8");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets [8, 0]");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "not [begin, end]");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            4, "overlaps");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "a hole precedes it");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "the tensors cover 4");
    refused("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, "tensor 'x' appears twice");
    refused("{\"__metadata__\":{\"a\":1}}", 0, "__metadata__.a is not a string");
    refused("{} x", 0, "bytes after its JSON object");
    unsigned char short_buf[4] = {0};
    st_file f;
    assert_int_equal(st_parse(short_buf, 4, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "too short"));
    unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(st_parse(big, 16, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "header length"));
}

static nn_model *vgg(void) {
    nn_model_spec s = {.arch = "vgg11", .c = 1, .h = 8, .w = 8, .classes = 3, .width = 4, .device = NN_CPU, .seed = 3};
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&s, &m), NN_OK);
    return m;
}

/* A trained vgg11 (BatchNorm running statistics moved) saved and loaded gives the same
 * log-probabilities; the state has every buffer; a wrong architecture or width is refused
 * with the tensor named. */
static void test_weights_round_trip(void **state) {
    nn_set_threads(1);
    enum { N = 24 };
    float x[N * 64];
    int32_t y[N];
    for (int i = 0; i < N * 64; i++) x[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < N; i++) y[i] = i % 3;
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(x, y, N, 1, 8, 8, NN_CPU, &d), NN_OK);
    nn_model *m = vgg();
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 1; tp.batch_size = 8; tp.lr = 0.05;
    assert_int_equal(nn_train(m, d, &tp, NULL), NN_OK);
    int buffers = 0, nbt = 0;
    for (int i = 0; i < nn_state_count(m); i++) {
        const char *name; nn_dtype dt;
        assert_int_equal(nn_state_info(m, i, &name, &dt, NULL, NULL, NULL), NN_OK);
        buffers += strstr(name, "running_") != NULL;
        if (strstr(name, "num_batches_tracked")) { nbt++; assert_int_equal(dt, NN_I64); }
    }
    assert_int_equal(buffers, 16);   /* 8 BatchNorm layers, mean and var each */
    assert_int_equal(nbt, 8);
    assert_int_equal(nn_state_count(m), nn_param_count(m) + 24);
    weights_input in = {.dataset = "synthetic", .normalize = "unit"};
    weights w;
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/vgg.safetensors", tu_tmpdir());
    assert_int_equal(weights_collect(m, &in, &w, err, sizeof err), 0);
    assert_int_equal(weights_save(&w, path, err, sizeof err), 0);
    weights_free(&w);
    weights_want want = {.c = 1, .h = 8, .w = 8, .classes = 3};   /* arch and width from the metadata */
    nn_model *back = NULL;
    weights_input got;
    assert_int_equal(weights_load(path, &want, NN_CPU, &back, &got, err, sizeof err), 0);
    assert_string_equal(got.normalize, "unit");
    float a[N * 3], b[N * 3];
    assert_int_equal(nn_eval_logp(m, d, a), NN_OK);
    assert_int_equal(nn_eval_logp(back, d, b), NN_OK);
    assert_memory_equal(a, b, sizeof a);
    nn_model_free(back);
    want.arch = "resnet18";
    assert_int_equal(weights_load(path, &want, NN_CPU, &back, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "tensor 'conv1.weight' has shape [4, 1, 3, 3], the architecture expects [64, 1, 3, 3]"));
    want.arch = "vgg11"; want.width = 8;
    assert_int_equal(weights_load(path, &want, NN_CPU, &back, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "tensor 'conv1.weight' has shape [4, 1, 3, 3], the architecture expects [8, 1, 3, 3]"));
    nn_model_free(m);
    nn_data_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_safetensors_round_trip),
        cmocka_unit_test(test_safetensors_refuses),
        cmocka_unit_test(test_weights_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
