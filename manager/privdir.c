/* privdir: see privdir.h. The lock file takes its name only once it is
   locked, so a sweep never finds an unlocked lock of a living manager. */
#define _XOPEN_SOURCE 700   /* nftw */
#include "manager/privdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRIVDIR_ROOT   "/tmp"
#define PRIVDIR_PREFIX "hyades-"
#define PRIVDIR_RANDOM 6   /* mkdtemp's XXXXXX */

static int s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

int privdir_make(char *dir, size_t len, char *err, size_t errlen)
{
    snprintf(dir, len, "%s/%sXXXXXX", PRIVDIR_ROOT, PRIVDIR_PREFIX);
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "cannot create a private directory in %s: %s", PRIVDIR_ROOT, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    char fresh[PATH_MAX], lock[PATH_MAX];
    snprintf(fresh, sizeof fresh, "%s/lock.new", dir);
    snprintf(lock, sizeof lock, "%s/lock", dir);
    int fd = open(fresh, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write in the private directory %s: %s", dir, strerror(errno));
        nftw(dir, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
        return -1;
    }
    /* Where locks do not work, the file keeps its first name: no sweep
       takes the directory, which then stays after a SIGKILL, as it did. */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        (void) rename(fresh, lock);
    return fd;
}

void privdir_remove(const char *dir, int lock)
{
    if (dir[0])
        nftw(dir, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (lock >= 0)
        close(lock);   /* only now: no sweep takes a directory still being removed */
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

/* If root/name is this user's private directory and its lock can be taken,
   removes it: true. */
static bool s_sweep_one(int root, const char *name)
{
    int dir = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0)
        return false;
    struct stat st;
    int lock = -1;
    bool stale = fstat(dir, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) == 0700
              && (lock = openat(dir, "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) >= 0
              && fstat(lock, &st) == 0 && S_ISREG(st.st_mode) && flock(lock, LOCK_EX | LOCK_NB) == 0;
    if (stale) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", PRIVDIR_ROOT, name);
        nftw(path, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    if (lock >= 0)
        close(lock);
    close(dir);
    return stale;
}

size_t privdir_sweep(void)
{
    DIR *root = opendir(PRIVDIR_ROOT);
    if (!root)
        return 0;
    size_t swept = 0;
    for (struct dirent *e; (e = readdir(root));)
        if (s_private_name(e->d_name) && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
            swept += s_sweep_one(dirfd(root), e->d_name);
    closedir(root);
    return swept;
}
