/* outfile: exclusive temporaries beside the target, renamed into place;
   symlinks followed to their final target (not those of a name the program
   chose); other file types written as they are. */
#define _GNU_SOURCE   /* statx */
#include "common/outfile.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUTFILE_FD_STEP_MS 50     /* out of descriptors: how often to look for one */
#define TEMP_SUFFIX ".XXXXXX"   /* mkstemp's; with a leading dot, 8 bytes longer than the name */
#define LINKS_MAX 40            /* symlinks followed, as the kernel does */

struct outfile_t {
    char path[PATH_MAX];        /* as given, for messages */
    char target[PATH_MAX];      /* where the bytes end up (symlinks followed) */
    char temp[PATH_MAX];        /* the temporary, or "" when written directly */
    FILE *stream;
    int error;                  /* first write error seen (errno), or 0 */
    bool published;             /* renamed into place by outfile_publish: written there since */
    off_t good;                 /* then: its length after the last flush that worked */
};

/* The kernel's protected_symlinks rule, for every directory others may
   write, sticky or not: whether the link at path (lstat in st) sits in a
   directory writable by its group or by anyone, and belongs neither to us,
   nor to the directory's owner, nor to root: another user's, not to be
   followed (else they could aim our output at any file we may write). */
static bool s_planted(const char *path, const struct stat *st)
{
    char copy[PATH_MAX];
    struct stat parent;
    snprintf(copy, sizeof copy, "%s", path);
    return stat(dirname(copy), &parent) == 0 && (parent.st_mode & (S_IWGRP | S_IWOTH)) && st->st_uid != geteuid()
        && st->st_uid != parent.st_uid && st->st_uid != 0;
}

/* Whether a directory on the way to path is a link planted by another
   user (the rule above, for every component but the last). */
static bool s_planted_on_the_way(const char *path)
{
    char prefix[PATH_MAX];
    size_t n = strlen(path);
    for (size_t i = 1; i < n && i < sizeof prefix; i++) {
        if (path[i] != '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        struct stat st;
        if (lstat(prefix, &st) == 0 && S_ISLNK(st.st_mode) && s_planted(prefix, &st))
            return true;
    }
    return false;
}

/* The final target of path: path itself, or where its chain of symlinks
   ends (which need not exist yet). Returns 0, -2 for a link planted by
   another user in a shared sticky directory, or -1 with errno set. */
static int s_resolve(const char *path, char *target, size_t len)
{
    char cur[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int) sizeof cur) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (int hops = 0; hops <= LINKS_MAX; hops++) {
        struct stat st;
        errno = 0;
        if (lstat(cur, &st) != 0 && errno != ENOENT)
            return -1;
        if (errno == ENOENT || !S_ISLNK(st.st_mode)) {   /* a new file, or not a link */
            if (s_planted_on_the_way(cur)) {
                errno = EPERM;
                return -2;
            }
            snprintf(target, len, "%s", cur);
            return 0;
        }
        if (s_planted(cur, &st) || s_planted_on_the_way(cur)) {
            errno = EPERM;
            return -2;
        }
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0)
            return -1;
        link[n] = '\0';
        char next[PATH_MAX];
        if (link[0] == '/') {
            snprintf(next, sizeof next, "%s", link);
        } else {   /* relative to the link's own directory */
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", cur);
            if (snprintf(next, sizeof next, "%s/%s", dirname(dir), link) >= (int) sizeof next) {
                errno = ENAMETOOLONG;
                return -1;
            }
        }
        snprintf(cur, sizeof cur, "%s", next);
    }
    errno = ELOOP;
    return -1;
}

/* The descriptor path names when it is one of this process's own
   (/dev/stdout, /dev/fd/N, /proc/self/fd/N), or -1. Those are written as
   they are, wherever they lead (a pipe, a terminal, a file opened for
   appending), never replaced. */
static int s_own_fd(const char *path)
{
    if (strcmp(path, "/dev/stdout") == 0)
        return 1;
    if (strcmp(path, "/dev/stderr") == 0)
        return 2;
    const char *n = strncmp(path, "/dev/fd/", 8) == 0 ? path + 8
                  : strncmp(path, "/proc/self/fd/", 14) == 0 ? path + 14 : NULL;
    if (!n || !*n)
        return -1;
    char *end;
    long fd = strtol(n, &end, 10);
    return *end || fd < 0 || fd > 1 << 20 || fcntl((int) fd, F_GETFD) < 0 ? -1 : (int) fd;
}

/* Whether file exists and is mounted on its own (a bind-mounted file): it
   then cannot be renamed over (EBUSY). Its mount differs from its
   directory's. Kernels before Linux 5.8 give no mount ids: there the
   rename's failure says it at the end. (Devices would not do: overlayfs,
   Docker's, can give a file another device than its directory.) */
static bool s_mount_point(const char *file, const char *dir)
{
#ifdef STATX_MNT_ID
    struct statx f, d;
    if (statx(AT_FDCWD, file, 0, STATX_MNT_ID, &f) != 0 || statx(AT_FDCWD, dir, 0, STATX_MNT_ID, &d) != 0)
        return false;
    return (f.stx_mask & d.stx_mask & STATX_MNT_ID) && f.stx_mnt_id != d.stx_mnt_id;
#else
    return false;
#endif
}

/* Whether an existing file refuses to be replaced: immutable or append-only
   (chattr +i, +a), which renaming over it would meet only at the end. */
static bool s_unreplaceable(const char *file)
{
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int flags = 0;
    bool fixed = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL));
    close(fd);
    return fixed;
}

/* Whether the existing file (stat in st) sits in a sticky directory and
   belongs neither to us nor to the directory's owner: renaming over it then
   fails (EPERM), unless we may override owners (root: CAP_FOWNER). */
static bool s_sticky_other(const char *file, const struct stat *st)
{
    char copy[PATH_MAX];
    struct stat parent;
    snprintf(copy, sizeof copy, "%s", file);
    return geteuid() != 0 && stat(dirname(copy), &parent) == 0 && (parent.st_mode & S_ISVTX)
        && st->st_uid != geteuid() && parent.st_uid != geteuid();
}

bool outfile_planted(const char *path)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
        copy[n - 1] = '\0';   /* "dir/" would be the link's target */
    struct stat st;
    return (lstat(copy, &st) == 0 && S_ISLNK(st.st_mode) && s_planted(copy, &st)) || s_planted_on_the_way(copy);
}

long outfile_control_at(const char *path)
{
    for (size_t i = 0; path[i]; i++)
        if ((unsigned char) path[i] < 0x20 || path[i] == 0x7f)
            return (long) i;
    return -1;
}

int outfile_check(const char *path, char *err, size_t errlen)
{
    char target[PATH_MAX];
    errno = 0;
    if (!path || !*path) {
        snprintf(err, errlen, "an empty output path");
        return -1;
    }
    if (path[strlen(path) - 1] == '/') {
        snprintf(err, errlen, "cannot write %s: a file's name cannot end with /", path);
        return -1;
    }
    long at = outfile_control_at(path);
    if (at >= 0) {
        snprintf(err, errlen, "an output path with a control character (byte 0x%02x at offset %ld)",
                 (unsigned char) path[at], at);
        return -1;
    }
    if (s_own_fd(path) >= 0)
        return 0;
    int rc = s_resolve(path, target, sizeof target);
    if (rc == -2) {
        snprintf(err, errlen, "cannot write %s: a symlink owned by another user in a shared directory leads there; "
                 "refusing to follow it", path);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(target, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "cannot write %s: it is a directory", path);
            return -1;
        }
        if (S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "cannot write %s: it is a socket", path);
            return -1;
        }
        if (!S_ISREG(st.st_mode))
            return access(target, W_OK) == 0 ? 0 : (snprintf(err, errlen, "cannot write %s: %s", path,
                                                             strerror(errno)), -1);
        if (s_unreplaceable(target)) {
            snprintf(err, errlen, "cannot write %s: it is immutable or append-only (chattr)", path);
            return -1;
        }
        if (s_sticky_other(target, &st)) {
            snprintf(err, errlen, "cannot write %s: it belongs to another user in a sticky directory, where only "
                     "they may replace it", path);
            return -1;
        }
    }
    char copy[PATH_MAX], dir[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", target);
    snprintf(dir, sizeof dir, "%s", dirname(copy));
    snprintf(copy, sizeof copy, "%s", target);
    const char *base = basename(copy);
    long name_max = pathconf(dir, _PC_NAME_MAX);
    if (name_max <= 0)
        name_max = NAME_MAX;
    if ((long) strlen(base) + 8 > name_max || strlen(target) + 8 >= PATH_MAX) {
        snprintf(err, errlen, "cannot write %s: the file name is too long", path);
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot write %s: its directory %s does not exist", path, dir);
        return -1;
    }
    if (s_mount_point(target, dir)) {
        snprintf(err, errlen, "cannot write %s: a file is mounted there (as docker -v FILE:FILE does), and the "
                 "output is renamed into place: mount its directory instead", path);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot write %s: its directory %s is not writable: %s", path, dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The checks outfile_check makes, for a name this program chose (a
   frame's): nothing there is followed, so only a directory there, a link
   planted on the way, or a name too long can stop it. */
static int s_check_chosen(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (s_planted_on_the_way(path)) {
        snprintf(err, errlen, "cannot write %s: a symlink owned by another user in a shared directory leads there; "
                 "refusing to follow it", path);
        return -1;
    }
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot write %s: it is a directory", path);
        return -1;
    }
    if (strlen(path) + 8 >= PATH_MAX) {
        snprintf(err, errlen, "cannot write %s: the file name is too long", path);
        return -1;
    }
    return 0;
}

/* outfile_open, once: *why is the system's error when it failed (0 for a
   refusal of its own). chosen: see outfile_open_chosen. */
static outfile_t *s_open(const char *path, bool chosen, char *err, size_t errlen, int *why)
{
    *why = 0;
    if (chosen ? s_check_chosen(path, err, errlen) < 0 : outfile_check(path, err, errlen) < 0)
        return NULL;
    outfile_t *self = calloc(1, sizeof *self);
    snprintf(self->path, sizeof self->path, "%s", path);
    if (chosen)
        snprintf(self->target, sizeof self->target, "%s", path);
    else
        s_resolve(path, self->target, sizeof self->target);
    struct stat st;
    int fd, own = chosen ? -1 : s_own_fd(path);
    if (own >= 0) {
        fd = dup(own);
    } else if (!chosen && stat(self->target, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* A device or FIFO: written as it is, never replaced. */
        fd = open(self->target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
    } else {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", self->target);
        char *base = basename(copy);
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", self->target);
        snprintf(self->temp, sizeof self->temp, "%s/.%s" TEMP_SUFFIX, dirname(dir), base);
        fd = mkstemp(self->temp);   /* O_CREAT | O_EXCL: never through a planted link */
        if (fd >= 0) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            mode_t mask = umask(0);
            umask(mask);
            /* A replaced file keeps its permissions; a new one (or one that
               replaces what was not a regular file) follows the umask. */
            bool file = chosen ? lstat(self->target, &st) == 0 && S_ISREG(st.st_mode) : stat(self->target, &st) == 0;
            fchmod(fd, file ? st.st_mode & 07777 : 0666 & ~mask);
        } else {
            self->temp[0] = '\0';
        }
    }
    self->stream = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!self->stream) {
        *why = errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (self->temp[0])
            unlink(self->temp);
        free(self);
        return NULL;
    }
    return self;
}

static int s_patience_ms;   /* outfile_patience's */
static bool (*s_waiting)(void *arg, int waited_ms);
static void *s_waiting_arg;

void outfile_patience(int ms, bool (*waiting)(void *arg, int waited_ms), void *arg)
{
    s_patience_ms = ms > 0 ? ms : 0;
    s_waiting = waiting;
    s_waiting_arg = arg;
}

static outfile_t *s_open_patiently(const char *path, bool chosen, char *err, size_t errlen)
{
    /* Out of descriptors (a flood of connections holds them, say): those
       come back when the connections are dropped, and the work the output
       holds is worth the wait, where the caller allows one. */
    int waited = 0, why;
    outfile_t *self;
    while (!(self = s_open(path, chosen, err, errlen, &why)) && (why == EMFILE || why == ENFILE) && waited < s_patience_ms) {
        if (waited == 0)
            log_warn("%s; waiting up to %d s for a descriptor", err, s_patience_ms / 1000);
        if (s_waiting && !s_waiting(s_waiting_arg, waited)) {   /* the caller may give some back, or give up */
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (the wait for a descriptor was ended)");
            break;
        }
        nanosleep(&(struct timespec) {0, OUTFILE_FD_STEP_MS * 1000000L}, NULL);
        waited += OUTFILE_FD_STEP_MS;
    }
    if (self && waited) {
        log_info("%s: a descriptor came back after %.1f s", path, waited / 1000.0);
        err[0] = '\0';   /* the failed attempts' reason is no longer true */
    }
    return self;
}

outfile_t *outfile_open(const char *path, char *err, size_t errlen)
{
    return s_open_patiently(path, false, err, errlen);
}

outfile_t *outfile_open_chosen(const char *path, char *err, size_t errlen)
{
    return s_open_patiently(path, true, err, errlen);
}

FILE *outfile_stream(outfile_t *self) { return self->stream; }

/* Flushes the stream; once published, a failed flush is cut off (the file
   ends with what the last good flush left) and a good one remembered. */
static void s_flush(outfile_t *self)
{
    if (!self->error && (fflush(self->stream) != 0 || ferror(self->stream)))
        self->error = errno ? errno : EIO;
    if (!self->published)
        return;
    if (self->error) {   /* nothing more reaches it, not even what the stream still holds */
        __fpurge(self->stream);
        (void) !ftruncate(fileno(self->stream), self->good);
        (void) lseek(fileno(self->stream), self->good, SEEK_SET);
    } else
        self->good = lseek(fileno(self->stream), 0, SEEK_CUR);
}

int outfile_publish(outfile_t *self)
{
    s_flush(self);
    if (!self->error && self->temp[0]) {
        if (fsync(fileno(self->stream)) != 0 || rename(self->temp, self->target) != 0) {
            self->error = errno;
        } else {
            self->temp[0] = '\0';
            self->published = true;
            self->good = lseek(fileno(self->stream), 0, SEEK_CUR);
        }
    }
    return self->error ? -1 : 0;
}
int outfile_error(const outfile_t *self) { return self->error; }

void outfile_failed(outfile_t *self, int errnum)
{
    if (!self->error)
        self->error = errnum ? errnum : EIO;
}

int outfile_close(outfile_t **self_p, bool commit, char *err, size_t errlen)
{
    outfile_t *self = *self_p;
    if (!self)
        return 0;
    int rc = 0;
    if (commit) {
        s_flush(self);
        if (!self->error && (self->temp[0] || self->published) && fsync(fileno(self->stream)) != 0)
            self->error = errno;
    }
    if (fclose(self->stream) != 0 && commit && !self->error)
        self->error = errno;
    if (commit && !self->error && self->temp[0] && rename(self->temp, self->target) != 0)
        self->error = errno;
    if (commit && self->error) {
        snprintf(err, errlen, "cannot write %s: %s", self->path, strerror(self->error));
        rc = -1;
    }
    if ((!commit || rc < 0) && self->temp[0])
        unlink(self->temp);
    free(self);
    *self_p = NULL;
    return rc;
}

bool outfile_same(const char *a, const char *b)
{
    char ta[PATH_MAX], tb[PATH_MAX];
    if (s_resolve(a, ta, sizeof ta) != 0 || s_resolve(b, tb, sizeof tb) != 0)
        return false;
    struct stat sa, sb;
    if (stat(ta, &sa) == 0 && stat(tb, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ra[PATH_MAX], rb[PATH_MAX], da[PATH_MAX], db[PATH_MAX];
    snprintf(da, sizeof da, "%s", ta);
    snprintf(db, sizeof db, "%s", tb);
    /* New files: the same name in the same directory. */
    if (!realpath(dirname(da), ra) || !realpath(dirname(db), rb) || strcmp(ra, rb) != 0)
        return false;
    snprintf(da, sizeof da, "%s", ta);
    snprintf(db, sizeof db, "%s", tb);
    return strcmp(basename(da), basename(db)) == 0;
}

bool outfile_is_stdout(const char *path)
{
    struct stat a, b;
    return path && stat(path, &a) == 0 && fstat(STDOUT_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int outfile_target(const char *path, char *target, size_t len)
{
    return s_resolve(path, target, len) == 0 ? 0 : -1;
}
