/* privdir: the private directory of a manager's local workers (their ipc
   socket, and their keys under CURVE): /tmp/hyades-XXXXXX, only its user can
   enter. While its manager lives it holds an exclusive flock(2) on the file
   "lock" inside; a manager killed without warning (SIGKILL, the OOM killer)
   leaves its directory behind, and the next manager of the same user to
   finish with one of its own removes it: a lock it can take has no owner. */
#ifndef HY_PRIVDIR_H
#define HY_PRIVDIR_H

#include <stddef.h>

typedef struct privdir_t privdir_t;

/* Makes a new private directory, locked, and starts removing those of
   killed managers in the background. NULL with a one-line reason in err. */
privdir_t *privdir_new(char *err, size_t errlen);
/* Its path ("/tmp/hyades-XXXXXX"). */
const char *privdir_path(const privdir_t *self);
/* Removes it and what it holds, then lets its lock go; returns how many
   directories of killed managers the sweep removed. Harmless on NULL. */
size_t privdir_destroy(privdir_t **self_p);
/* The sweep itself: removes this user's private directories whose manager
   has died (those without a lock file are left). Returns how many. */
size_t privdir_sweep(void);

#endif
