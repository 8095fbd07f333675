/* outfile: the one way pmi creates a file (shards, merges, keys, records, reports, figures'
 * scripts and data, <job>.failed). The file is written under a temporary name beside its
 * target, "<path>.tmp-<pid>@<host>", created with O_CREAT|O_EXCL|O_NOFOLLOW and its mode
 * (umask applied) at creation, so a link planted at the temporary name is never followed and
 * nobody else can read the file while it is written; outfile_close() flushes and fsyncs it,
 * renames it onto path (a link at path is replaced, never written through) and fsyncs the
 * folder. Until then path is untouched, and any failure removes the temporary file.
 *
 *   FILE *f = outfile_open("owner.key.h5", OUTFILE_SECRET, 0, err, sizeof err);
 *   ... write with fprintf/fwrite, or H5Fcreate(outfile_name(f), H5F_ACC_TRUNC, ...) ...
 *   if (!f || outfile_close(f, err, sizeof err)) fail;
 *
 * Temporary files of a dead writer of the same target on this host are removed when the next
 * one opens; every temporary file still open is removed at exit and by outfile_remove_temps()
 * (async-signal-safe, for signal handlers). outfile_check_inputs() refuses an output that is an
 * input (same device and inode). */
#ifndef PMI_OUTFILE_H
#define PMI_OUTFILE_H
#include <stddef.h>
#include <stdio.h>

#define OUTFILE_SECRET 0600   /* keys, verify records, results files (they hold k and the pool) */
#define OUTFILE_PUBLIC 0644   /* reports, tables, figures, exported models */
#define OUTFILE_KEEP_MODE 1   /* flag: an existing path keeps its permission bits (a results file rewritten) */

/* Creates the temporary file of path with mode (an OUTFILE_* mode; umask applies) or, with
 * OUTFILE_KEEP_MODE and path an existing regular file, path's mode. Returns a stream open for
 * writing, or NULL with err naming the temporary file and the reason. */
FILE *outfile_open(const char *path, int mode, int flags, char *err, size_t errlen);
/* A name that opens the file behind f (a stream of outfile_open), for a library that opens by
 * name (HDF5): "/proc/self/fd/<n>", the very file created, or its temporary name where /proc
 * is not mounted. Valid until outfile_close() or outfile_discard(). */
const char *outfile_name(FILE *f);
/* Flushes f, checks that every write reached the file, fsyncs it, renames it onto its path and
 * fsyncs the folder. Returns 0, or -1 with err (path and errno text) and the temporary file
 * removed. f is closed either way. */
int outfile_close(FILE *f, char *err, size_t errlen);
/* Closes f and removes its temporary file; path stays as it was. No-op for NULL. */
void outfile_discard(FILE *f);
/* Writes the n parts (part[i], len[i]) one after another to path through outfile_open and
 * outfile_close. Returns 0, or -1 with err. */
int outfile_write(const char *path, int mode, const void *const *part, const size_t *len, int n, char *err, size_t errlen);
/* 0 if the output path is none of the n input paths, or -1 with err naming both when it
 * resolves (links followed) to the same file as one of them. A path that does not exist is
 * no input's. */
int outfile_check_inputs(const char *out, const char *const *in, int n, char *err, size_t errlen);
/* Removes every temporary file still open; only unlink(2), so a signal handler may call it. */
void outfile_remove_temps(void);

#endif
