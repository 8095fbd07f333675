/* safetensors: the safetensors format, read with libcjson (see safetensors.h). */
#include "safetensors.h"
#include "outfile.h"
#include "util.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; int size; } kDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
    {"I16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1},
};

int st_dtype_size(const char *dtype) {
    for (size_t i = 0; dtype && i < sizeof kDtypes / sizeof kDtypes[0]; i++)
        if (!strcmp(kDtypes[i].name, dtype)) return kDtypes[i].size;
    return 0;
}

void st_free(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->tensors); free(f->meta_keys); free(f->meta_values); free(f->buf);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int json_count(const cJSON *j, int64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v)) return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_meta(const cJSON *meta, st_file *f, char *err, size_t errlen) {
    if (!cJSON_IsObject(meta)) return util_err(err, errlen, "__metadata__ is not a JSON object");
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = util_calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = util_calloc((size_t)n + 1, sizeof *f->meta_values);
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m)) return util_err(err, errlen, "__metadata__.%s is not a string", m->string);
        f->meta_keys[f->n_meta] = util_strdup(m->string);
        f->meta_values[f->n_meta++] = util_strdup(m->valuestring);
    }
    return 0;
}

/* One tensor entry: dtype, shape and data offsets, checked against the data buffer's size. */
static int parse_tensor(const cJSON *j, st_tensor *t, uint64_t data_len, char *err, size_t errlen) {
    const char *name = j->string;
    if (!cJSON_IsObject(j)) return util_err(err, errlen, "tensor '%s': not a JSON object", name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt) || !st_dtype_size(dt->valuestring))
        return util_err(err, errlen, "tensor '%s': dtype is missing or unknown (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > ST_MAX_DIMS)
        return util_err(err, errlen, "tensor '%s': shape is missing or not an array of at most %d sizes", name, ST_MAX_DIMS);
    t->ndim = 0;
    double numel = 1;
    for (const cJSON *d = sh->child; d; d = d->next) {
        if (json_count(d, &t->shape[t->ndim]))
            return util_err(err, errlen, "tensor '%s': shape entry %d is not a non-negative whole number", name, t->ndim);
        numel *= (double)t->shape[t->ndim++];
    }
    int64_t b, e;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_count(off->child, &b) || json_count(off->child->next, &e))
        return util_err(err, errlen, "tensor '%s': data_offsets is missing or not [begin, end] whole numbers", name);
    if (b > e || (uint64_t)e > data_len)
        return util_err(err, errlen, "tensor '%s': data_offsets [%lld, %lld] outside the %llu-byte data buffer", name,
                        (long long)b, (long long)e, (unsigned long long)data_len);
    double want = numel * st_dtype_size(t->dtype);
    if (want != (double)(e - b))
        return util_err(err, errlen, "tensor '%s': %s of shape with %.0f elements needs %.0f bytes, data_offsets give %lld",
                        name, t->dtype, numel, want, (long long)(e - b));
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(e - b);
    t->data = (const unsigned char *)(uintptr_t)b;   /* an offset until parse_header ends */
    t->name = util_strdup(name);
    return 0;
}

static int by_offset(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const st_tensor *)a)->data, y = (uintptr_t)((const st_tensor *)b)->data;
    size_t nx = ((const st_tensor *)a)->nbytes, ny = ((const st_tensor *)b)->nbytes;
    return x < y ? -1 : x > y ? 1 : (nx > ny) - (nx < ny);
}

static int parse_header(const cJSON *root, st_file *f, uint64_t data_len, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) return util_err(err, errlen, "header is not a JSON object");
    int n = cJSON_GetArraySize(root);
    f->tensors = util_calloc((size_t)n + 1, sizeof *f->tensors);
    for (const cJSON *j = root->child; j; j = j->next) {
        if (!j->string || !j->string[0]) return util_err(err, errlen, "a tensor has an empty name");
        if (!strcmp(j->string, "__metadata__")) {
            if (f->meta_keys) return util_err(err, errlen, "__metadata__ appears twice");
            if (parse_meta(j, f, err, errlen)) return -1;
            continue;
        }
        for (int i = 0; i < f->n; i++)
            if (!strcmp(f->tensors[i].name, j->string)) return util_err(err, errlen, "tensor '%s' appears twice", j->string);
        if (parse_tensor(j, &f->tensors[f->n], data_len, err, errlen)) return -1;
        f->n++;
    }
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, by_offset);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        uint64_t b = (uintptr_t)f->tensors[i].data;
        if (b != at)
            return util_err(err, errlen, "tensor '%s': its data starts at byte %llu of the buffer, expected %llu (%s)",
                            f->tensors[i].name, (unsigned long long)b, (unsigned long long)at,
                            b < at ? "it overlaps the previous tensor" : "a hole precedes it");
        at = b + f->tensors[i].nbytes;
    }
    if (at != data_len)
        return util_err(err, errlen, "the data buffer has %llu bytes, the tensors cover %llu",
                        (unsigned long long)data_len, (unsigned long long)at);
    return 0;
}

int st_parse(unsigned char *buf, size_t len, st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (!buf || len < 8) return util_err(err, errlen, "%zu bytes: too short for the 8-byte header length", len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    if (hl < 2 || hl > ST_MAX_HEADER || hl > len - 8)
        return util_err(err, errlen, "header length %llu is not within [2, %zu] (file of %zu bytes, limit %u)",
                        (unsigned long long)hl, len - 8, len, ST_MAX_HEADER);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hl, &end, 0);
    if (!root) return util_err(err, errlen, "header is not valid JSON (near byte %td of it)", end ? end - (const char *)buf - 8 : 0);
    for (; end && end < (const char *)buf + 8 + hl; end++)
        if (*end != ' ' && *end != 0) {
            cJSON_Delete(root);
            return util_err(err, errlen, "header has bytes after its JSON object (only space padding is allowed)");
        }
    int rc = parse_header(root, f, len - 8 - hl, err, errlen);
    cJSON_Delete(root);
    if (rc) { st_free(f); return -1; }
    for (int i = 0; i < f->n; i++) f->tensors[i].data = buf + 8 + hl + (uintptr_t)f->tensors[i].data;
    f->buf = buf;
    return 0;
}

/* Reads the header of path alone and checks it against the file's size (the tensors must
 * cover exactly what follows the header), so that a file is read whole only when its header
 * accounts for every byte. */
static int check_header(const char *path, char *why, size_t whylen) {
    struct stat st;
    unsigned char head[8];
    FILE *in = util_open_regular(path, &st, why, whylen);
    if (!in) return -1;
    if (fread(head, 1, 8, in) != 8) {
        fclose(in);
        return util_err(why, whylen, "%lld bytes: too short for the 8-byte header length", (long long)st.st_size);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | head[i];
    if (hl < 2 || hl > ST_MAX_HEADER || hl > (uint64_t)st.st_size - 8) {
        fclose(in);
        return util_err(why, whylen, "header length %llu is not within [2, %lld] (file of %lld bytes, limit %u)",
                        (unsigned long long)hl, (long long)st.st_size - 8, (long long)st.st_size, ST_MAX_HEADER);
    }
    unsigned char *buf = util_malloc(8 + (size_t)hl);
    memcpy(buf, head, 8);
    int bad = fread(buf + 8, 1, (size_t)hl, in) != (size_t)hl;
    fclose(in);
    if (bad) { free(buf); return util_err(why, whylen, "cannot read its header"); }
    st_file h;
    if (st_parse(buf, (size_t)st.st_size, &h, why, whylen)) { free(buf); return -1; }
    st_free(&h);   /* frees buf */
    return 0;
}

int st_read(const char *path, st_file *f, char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(f, 0, sizeof *f);
    char why[512];
    if (access(path, R_OK)) return util_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (check_header(path, why, sizeof why))
        return util_err(err, errlen, "%s: not a valid safetensors file: %s", path, why);
    if (util_read_file(path, (size_t)1 << 40, &buf, &len, err, errlen)) return -1;
    if (st_parse(buf, len, f, why, sizeof why)) {
        free(buf);
        return util_err(err, errlen, "%s: not a valid safetensors file: %s", path, why);
    }
    return 0;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; f && name && i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; f && key && i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

int st_write(const char *path, const st_tensor *t, int n, const char *const *meta_keys,
             const char *const *meta_values, int n_meta, char *err, size_t errlen) {
    cJSON *root = cJSON_CreateObject();
    int bad = 0;
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]);
    }
    uint64_t at = 0;
    size_t *nbytes = util_calloc((size_t)n + 1, sizeof *nbytes);
    for (int i = 0; i < n && !bad; i++) {
        int es = st_dtype_size(t[i].dtype);
        double numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (double)t[i].shape[d];
        if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, "__metadata__") || cJSON_HasObjectItem(root, t[i].name) ||
            !es || t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS || (numel > 0 && !t[i].data)) {
            bad = util_err(err, errlen, "%s: tensor %d ('%s') has an empty, reserved or repeated name, an unknown dtype or no data",
                           path, i, t[i].name ? t[i].name : "");
            break;
        }
        nbytes[i] = (size_t)numel * (size_t)es;
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON_AddStringToObject(e, "dtype", t[i].dtype);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t[i].ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(at + nbytes[i])));
        at += nbytes[i];
    }
    char *json = bad ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (bad || !json) {
        free(nbytes); free(json);
        return bad ? -1 : util_err(err, errlen, "%s: cannot print the JSON header", path);
    }
    size_t jl = strlen(json), hl = (jl + 7) / 8 * 8;
    unsigned char *head = util_malloc(8 + hl);
    for (int i = 0; i < 8; i++) head[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(head + 8, json, jl);
    memset(head + 8 + jl, ' ', hl - jl);
    free(json);
    const void **parts = util_calloc((size_t)n + 1, sizeof *parts);
    size_t *lens = util_calloc((size_t)n + 1, sizeof *lens);
    parts[0] = head; lens[0] = 8 + hl;
    for (int i = 0; i < n; i++) { parts[i + 1] = t[i].data; lens[i + 1] = nbytes[i]; }
    int rc = outfile_write(path, OUTFILE_PUBLIC, parts, lens, n + 1, err, errlen);
    free(parts); free(lens); free(nbytes); free(head);
    return rc;
}
