/* privdir: see privdir.h. The lock file takes its name only once it is
   locked, so a sweep never finds an unlocked lock of a living manager. */
#define _GNU_SOURCE   /* statx */
#include "manager/privdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PRIVDIR_ROOT   "/tmp"
#define PRIVDIR_PREFIX "hyades-"
#define PRIVDIR_RANDOM 6   /* mkdtemp's XXXXXX */
#define REMOVE_TRIES   100
#define MAKE_TRIES     5
#define UNFINISHED_S   60   /* a directory left half made or half removed: this old, it is nobody's */
#define REMOVE_STEP_MS 10

/* The mount a descriptor is on (0 where the kernel cannot tell). */
static uint64_t s_mount_of(int fd)
{
#ifdef STATX_MNT_ID
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &st) == 0 && (st.stx_mask & STATX_MNT_ID))
        return st.stx_mnt_id;
#else
    (void) fd;
#endif
    return 0;
}

/* Empties the directory dir (a descriptor it takes over), but for a file
   named keep at its top, without leaving its mount: a directory inside
   that is another mount (a bind mount too) is left whole. Returns 0, or -1
   with errno (the first failure). */
static int s_empty(int dir, const char *keep)
{
    uint64_t mount = s_mount_of(dir);
    DIR *d = fdopendir(dir);
    if (!d) {
        close(dir);
        return -1;
    }
    int rc = 0, why = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (keep && !strcmp(e->d_name, keep)))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        int sub = errno == EISDIR ? openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (sub >= 0 && s_mount_of(sub) != mount) {
            close(sub);
            errno = EXDEV;
        } else if (sub >= 0 && s_empty(sub, NULL) == 0 && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0) {
            continue;
        }
        if (!rc)
            rc = -1, why = errno;
    }
    closedir(d);
    errno = why;
    return rc;
}

/* Removes dir and what it holds, its lock file last: a removal cut short
   (a SIGKILL) leaves a directory that the next sweep still recognises.
   Short of descriptors (a flood of connections that ZeroMQ is closing), it
   tries again for up to a second. Returns whether dir is gone. */
static bool s_remove(const char *dir)
{
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    for (int tries = 0; tries < REMOVE_TRIES; tries++) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            return true;
        if (fd >= 0 && s_empty(fd, "lock") == 0) {
            unlink(lock);
            return rmdir(dir) == 0 || errno == ENOENT;
        }
        if (errno != EMFILE && errno != ENFILE)
            return false;
        nanosleep(&(struct timespec) {0, REMOVE_STEP_MS * 1000000L}, NULL);
    }
    return false;
}

struct privdir_t {
    char path[64];
    int lock;              /* the lock's descriptor */
    pthread_t sweeper;
    bool sweeping;         /* the sweeper runs (else: swept at the end) */
    size_t swept;
};

static void *s_sweeper(void *arg)
{
    privdir_t *self = arg;
    self->swept = privdir_sweep();
    return NULL;
}

/* One try at making self's directory and taking its lock: 0; -1 with
   err; 1 when a sweep took the directory meanwhile (a manager stalled for
   a minute between mkdir and its lock looks killed there): try again. */
static int s_make(privdir_t *self, char *err, size_t errlen)
{
    snprintf(self->path, sizeof self->path, "%s/%sXXXXXX", PRIVDIR_ROOT, PRIVDIR_PREFIX);
    if (!mkdtemp(self->path)) {
        snprintf(err, errlen, "cannot create a private directory in %s: %s", PRIVDIR_ROOT, strerror(errno));
        return -1;
    }
    (void) chmod(self->path, 0700);   /* whatever the umask: sweeps know such directories by it */
    char fresh[PATH_MAX], lock[PATH_MAX];
    snprintf(fresh, sizeof fresh, "%s/lock.new", self->path);
    snprintf(lock, sizeof lock, "%s/lock", self->path);
    self->lock = open(fresh, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (self->lock < 0 && errno == ENOENT)
        return 1;
    if (self->lock < 0) {
        snprintf(err, errlen, "cannot write in the private directory %s: %s", self->path, strerror(errno));
        rmdir(self->path);
        return -1;
    }
    /* Where locks do not work, the file keeps its first name: no sweep
       takes the directory, which then stays after a SIGKILL, as it did. */
    if (flock(self->lock, LOCK_EX | LOCK_NB) != 0 || rename(fresh, lock) == 0)
        return 0;
    int why = errno;
    close(self->lock);
    if (why == ENOENT)
        return 1;
    snprintf(err, errlen, "cannot lock the private directory %s: %s", self->path, strerror(why));
    s_remove(self->path);
    return -1;
}

privdir_t *privdir_new(char *err, size_t errlen)
{
    privdir_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "not enough memory");
        return NULL;
    }
    int rc = 1;
    for (int tries = 0; rc == 1 && tries < MAKE_TRIES; tries++)
        rc = s_make(self, err, errlen);
    if (rc != 0) {
        if (rc == 1)
            snprintf(err, errlen, "cannot keep a private directory in %s: removed as soon as made", PRIVDIR_ROOT);
        free(self);
        return NULL;
    }
    /* A /tmp of many entries takes a millisecond to look through: not on
       the way to the first unit, nor to the exit. */
    self->sweeping = pthread_create(&self->sweeper, NULL, s_sweeper, self) == 0;
    return self;
}

const char *privdir_path(const privdir_t *self) { return self->path; }

size_t privdir_destroy(privdir_t **self_p)
{
    privdir_t *self = *self_p;
    if (!self)
        return 0;
    s_remove(self->path);
    close(self->lock);   /* only now: no sweep takes a directory still being removed */
    if (self->sweeping)
        pthread_join(self->sweeper, NULL);
    else
        self->swept = privdir_sweep();
    size_t swept = self->swept;
    free(self);
    *self_p = NULL;
    return swept;
}

/* Whether name is one of mkdtemp's private directory names. */
static bool s_private_name(const char *name)
{
    size_t n = strlen(PRIVDIR_PREFIX);
    if (strncmp(name, PRIVDIR_PREFIX, n) != 0 || strlen(name) != n + PRIVDIR_RANDOM)
        return false;
    for (const char *c = name + n; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* Whether the lock at name in dir (a regular file) can be taken: then no
   living manager holds it. */
static bool s_unlocked(int dir, const char *name)
{
    int lock = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    bool free_ = lock >= 0 && fstat(lock, &st) == 0 && S_ISREG(st.st_mode) && flock(lock, LOCK_EX | LOCK_NB) == 0;
    if (lock >= 0)
        close(lock);
    return free_;
}

/* A directory whose manager was killed before its lock took its name
   (between mkdir and rename) or after it removed it (before rmdir): nothing
   in it but an unlocked "lock.new", and unchanged for UNFINISHED_S (a
   living manager takes that step within microseconds). */
static bool s_unfinished(int dir, const struct stat *st)
{
    if (st->st_mtime > time(NULL) - UNFINISHED_S)
        return false;
    int fd = dup(dir);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    bool unfinished = true;
    for (struct dirent *e; unfinished && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unfinished = !strcmp(e->d_name, "lock.new") && s_unlocked(dirfd(d), "lock.new");
    closedir(d);
    return unfinished;
}

/* If root/name is this user's private directory, on root's own mount, and
   no manager owns it any more, removes it: true. It works from the
   descriptors it checked, never from the path again. A directory left half
   made loses only its lock.new: a manager that took it up meanwhile (it was
   only stalled) has more in it by then, and keeps it. */
static bool s_sweep_one(int root, uint64_t root_mount, const char *name)
{
    char lock_path[PATH_MAX];
    struct stat st;
    snprintf(lock_path, sizeof lock_path, "%s/lock", name);
    bool has_lock = fstatat(root, lock_path, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!has_lock && errno != ENOENT)
        return false;
    int dir = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0)
        return false;
    bool mine = fstat(dir, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) == 0700
             && s_mount_of(dir) == root_mount;   /* (not a mount point itself) */
    bool removed = false;
    if (mine && has_lock && s_unlocked(dir, "lock")) {
        int contents = dup(dir);
        removed = contents >= 0 && s_empty(contents, "lock") == 0
               && (unlinkat(dir, "lock", 0) == 0 || errno == ENOENT) && unlinkat(root, name, AT_REMOVEDIR) == 0;
    } else if (mine && !has_lock && s_unfinished(dir, &st)) {
        removed = (unlinkat(dir, "lock.new", 0) == 0 || errno == ENOENT) && unlinkat(root, name, AT_REMOVEDIR) == 0;
    }
    close(dir);
    return removed;
}

size_t privdir_sweep(void)
{
    DIR *root = opendir(PRIVDIR_ROOT);
    if (!root)
        return 0;
    size_t swept = 0;
    uint64_t root_mount = s_mount_of(dirfd(root));
    for (struct dirent *e; (e = readdir(root));)
        if (s_private_name(e->d_name) && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
            swept += s_sweep_one(dirfd(root), root_mount, e->d_name);
    closedir(root);
    return swept;
}
