/* privdir: the private directory of a manager's local workers (their ipc
   socket, and their keys under CURVE): /tmp/hyades-XXXXXX, only its user can
   enter. While its manager lives it holds an exclusive flock(2) on the file
   "lock" inside; a manager killed without warning (SIGKILL, the OOM killer)
   leaves its directory behind, and the next manager of the same user to
   finish with one of its own removes it: a lock it can take has no owner. */
#ifndef HY_PRIVDIR_H
#define HY_PRIVDIR_H

#include <stddef.h>

/* Makes a new private directory, its path into dir (len bytes), locked.
   Returns the lock's descriptor (for privdir_remove), or -1 with a one-line
   reason in err. */
int privdir_make(char *dir, size_t len, char *err, size_t errlen);
/* Removes dir and what it holds, then lets its lock go. */
void privdir_remove(const char *dir, int lock);
/* Removes this user's private directories whose manager has died (those of
   earlier releases, which hold no lock file, are left). Returns how many. */
size_t privdir_sweep(void);

#endif
