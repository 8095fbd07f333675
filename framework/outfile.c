/* outfile: the one way pmi creates a file (see outfile.h). */
#include "outfile.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The files open now: a fixed table, so that a signal handler can walk it. */
#define OUTFILE_MAX 16
typedef struct {
    volatile sig_atomic_t live;
    pid_t owner;              /* the process that created it (a forked child never removes its parent's) */
    FILE *f;
    char path[PATH_MAX], tmp[PATH_MAX];
    char name[40];            /* "/proc/self/fd/<n>", or "" without /proc */
} slot;
static slot slots[OUTFILE_MAX];

void outfile_remove_temps(void) {
    pid_t me = getpid();
    for (int i = 0; i < OUTFILE_MAX; i++)
        if (slots[i].live && slots[i].owner == me) { unlink(slots[i].tmp); slots[i].live = 0; }
}

static slot *find(FILE *f) {
    for (int i = 0; f && i < OUTFILE_MAX; i++)
        if (slots[i].live && slots[i].f == f) return &slots[i];
    return NULL;
}

static const char *host_name(void) {
    static char host[256];
    if (!host[0] && gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "unknown");
    return host;
}

/* The folder of path into dir ("." when path has no slash). */
static void folder_of(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* Removes "<base>.tmp-<pid>@<this host>" beside path where pid is no longer alive: what a
 * writer killed before its rename left behind. */
static void remove_stale(const char *path) {
    char dir[PATH_MAX], p[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t nb = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, base, nb) || strncmp(de->d_name + nb, ".tmp-", 5)) continue;
        char *end;
        long pid = strtol(de->d_name + nb + 5, &end, 10);
        if (pid <= 0 || pid == (long)getpid() || *end != '@' || strcmp(end + 1, host_name())) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p) unlink(p);
    }
    closedir(d);
}

FILE *outfile_open(const char *path, int mode, int flags, char *err, size_t errlen) {
    static int registered;
    if (!registered) registered = !atexit(outfile_remove_temps);
    slot *s = NULL;
    for (int i = 0; i < OUTFILE_MAX && !s; i++) if (!slots[i].live) s = &slots[i];
    if (!path || !*path) { util_err(err, errlen, "no output file name given"); return NULL; }
    if (!s) { util_err(err, errlen, "%s: more than %d files open for writing at once", path, OUTFILE_MAX); return NULL; }
    int n = snprintf(s->tmp, sizeof s->tmp, "%s.tmp-%ld@%s", path, (long)getpid(), host_name());
    if (n < 0 || n >= (int)sizeof s->tmp || strlen(path) >= sizeof s->path) {
        util_err(err, errlen, "%s: path too long (at most %d bytes with its temporary suffix)", path, PATH_MAX - 1);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    remove_stale(path);
    int fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST && !unlink(s->tmp))   /* ours by its name: left by this pid before, or planted */
        fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) { util_err(err, errlen, "%s: cannot create: %s", s->tmp, strerror(errno)); return NULL; }
    struct stat st;
    if ((flags & OUTFILE_KEEP_MODE) && !stat(path, &st) && S_ISREG(st.st_mode) && fchmod(fd, st.st_mode & 07777)) {
        util_err(err, errlen, "%s: cannot set mode %o: %s", s->tmp, (unsigned)(st.st_mode & 07777), strerror(errno));
        close(fd); unlink(s->tmp);
        return NULL;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) { util_err(err, errlen, "%s: %s", s->tmp, strerror(errno)); close(fd); unlink(s->tmp); return NULL; }
    snprintf(s->name, sizeof s->name, "/proc/self/fd/%d", fd);
    if (access(s->name, F_OK)) s->name[0] = 0;
    s->f = f; s->owner = getpid();
    s->live = 1;
    return f;
}

const char *outfile_name(FILE *f) {
    slot *s = find(f);
    return s ? (s->name[0] ? s->name : s->tmp) : NULL;
}

void outfile_discard(FILE *f) {
    slot *s = find(f);
    if (!f) return;
    fclose(f);
    if (s) { unlink(s->tmp); s->live = 0; }
}

/* fsyncs the folder of path. */
static int sync_folder(const char *path) {
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int outfile_close(FILE *f, char *err, size_t errlen) {
    slot *s = find(f);
    if (!s) { if (f) fclose(f); return util_err(err, errlen, "outfile_close: not a file of outfile_open"); }
    int bad = fflush(f) != 0, e = errno;
    if (!bad && ferror(f)) bad = 1, e = EIO;
    if (!bad && fsync(fileno(f))) bad = 1, e = errno;
    if (fclose(f) && !bad) bad = 1, e = errno;
    if (bad) {
        util_err(err, errlen, "cannot write %s: %s", s->path, strerror(e));
    } else if (rename(s->tmp, s->path)) {
        bad = 1;
        util_err(err, errlen, "cannot rename %s to %s: %s", s->tmp, s->path, strerror(errno));
    }
    if (bad) unlink(s->tmp);
    s->live = 0;
    if (!bad && sync_folder(s->path)) return util_err(err, errlen, "%s: fsync of its folder: %s", s->path, strerror(errno));
    return bad ? -1 : 0;
}

int outfile_write(const char *path, int mode, const void *const *part, const size_t *len, int n, char *err, size_t errlen) {
    FILE *f = outfile_open(path, mode, 0, err, errlen);
    if (!f) return -1;
    for (int i = 0; i < n; i++)
        if (len[i] && fwrite(part[i], 1, len[i], f) != len[i]) {
            util_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
            outfile_discard(f);
            return -1;
        }
    return outfile_close(f, err, errlen);
}

int outfile_check_inputs(const char *out, const char *const *in, int n, char *err, size_t errlen) {
    struct stat so, si;
    if (!out || stat(out, &so)) return 0;
    for (int i = 0; i < n; i++)
        if (in[i] && !stat(in[i], &si) && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return util_err(err, errlen, "the output %s is the input %s (the same file): choose another output", out, in[i]);
    return 0;
}
