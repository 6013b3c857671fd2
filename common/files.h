/* files: the process's limit on open files. Every worker connection costs
   the manager a descriptor, and a process at its limit makes ZeroMQ's
   accept loop spin; so both programs raise the soft limit to the hard one. */
#ifndef HY_FILES_H
#define HY_FILES_H

#include <sys/resource.h>

/* Raises the soft limit on open files to the hard limit; returns the limit
   now in force (0 if unknown). */
static inline unsigned long files_raise_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long) rl.rlim_cur;
}

/* Below this many open files ZeroMQ cannot open its sockets and
   connections (czmq then aborts, or a worker never connects): both programs
   refuse to start. */
#define FILES_MIN 32

#endif
