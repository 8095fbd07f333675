/* safetensors: reading and writing the safetensors format (huggingface/safetensors), the
 * weights file that PyTorch users exchange.
 *
 * A file is: 8 bytes, the header's length H as a little-endian uint64; H bytes of JSON, an
 * object mapping each tensor's name to {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
 * plus an optional "__metadata__" object of string values; then the data buffer, where tensor
 * t's bytes (row-major, little-endian) are [b, e) relative to the buffer's start. Writing pads
 * the header with spaces to a multiple of 8 bytes, as the reference implementation does.
 *
 * Reading validates everything before a byte is used: the header length against the file, the
 * JSON (parsed with libcjson), every dtype (known names only), every shape (non-negative
 * integers, at most ST_MAX_DIMS), every offset pair (b <= e within the buffer, e - b equal to
 * numel * the dtype's size, no overlap, the buffer covered without holes), the metadata (string
 * values). Any failure is -1 with a message naming the tensor and what was expected.
 *
 *   st_file f;
 *   if (st_read("model.safetensors", &f, err, sizeof err)) ...;
 *   const st_tensor *t = st_find(&f, "fc.weight");   // t->data points into f's buffer
 *   st_free(&f); */
#ifndef PMI_SAFETENSORS_H
#define PMI_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20)   /* the reference implementation's limit: 100 MB of JSON */

typedef struct {
    char *name;
    char dtype[8];                /* "F32", "I64", "F16", ... as written in the file */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const unsigned char *data;    /* numel * st_dtype_size(dtype) bytes; not aligned */
    size_t nbytes;
} st_tensor;

typedef struct {
    st_tensor *tensors; int n;    /* in data-offset order */
    char **meta_keys, **meta_values; int n_meta;
    unsigned char *buf;           /* the whole file (owned) */
} st_file;

/* Bytes per element of a safetensors dtype name ("F64", "F32", "F16", "BF16", "I64", "I32",
 * "I16", "I8", "U8", "BOOL"), or 0 for another name. */
int st_dtype_size(const char *dtype);
/* Parses len bytes of a safetensors file held in buf; on success f takes ownership of buf (a
 * malloc'd block; st_free frees it). Returns 0, or -1 with err (buf is then not taken). */
int st_parse(unsigned char *buf, size_t len, st_file *f, char *err, size_t errlen);
/* Reads and parses the file at path. Returns 0, or -1 with err naming the file. */
int st_read(const char *path, st_file *f, char *err, size_t errlen);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* The metadata value of key, or NULL. */
const char *st_meta(const st_file *f, const char *key);
/* No operation is performed if f is NULL; f is zeroed. */
void st_free(st_file *f);

/* Writes n tensors (name, dtype, ndim, shape and data of each; numel and nbytes are derived)
 * and n_meta metadata strings to path atomically (a temporary file renamed into place). Names
 * must be distinct and non-empty; "__metadata__" is not a tensor name. Returns 0, or -1 with
 * err (nothing left behind). */
int st_write(const char *path, const st_tensor *t, int n, const char *const *meta_keys,
             const char *const *meta_values, int n_meta, char *err, size_t errlen);

#endif
