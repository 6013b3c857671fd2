/* local: worker processes started by the manager. Each child asks the kernel
   for SIGTERM when the manager dies, so none outlives a killed manager. */
#include "manager/local.h"
#include "common/log.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct local_t {
    pid_t *pids;       /* 0 once reaped */
    size_t count;
};

/* The worker program: $HYADES_WORKER, else hyades-worker beside this executable. */
static int s_worker_path(char *path, size_t len)
{
    const char *env = getenv("HYADES_WORKER");
    if (env && *env) {
        snprintf(path, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return -1;
    self[n] = '\0';
    snprintf(path, len, "%s/hyades-worker", dirname(self));
    return 0;
}

local_t *local_start(const char *endpoint, size_t count, int64_t heartbeat_ms, int64_t liveness,
                     const char *cert, const char *manager_key, char *err, size_t errlen)
{
    char program[PATH_MAX];
    if (s_worker_path(program, sizeof program) < 0 || access(program, X_OK) != 0) {
        snprintf(err, errlen, "cannot find the worker program (%s); set HYADES_WORKER", program);
        return NULL;
    }
    local_t *self = calloc(1, sizeof *self);
    self->pids = calloc(count, sizeof *self->pids);
    self->count = count;
    pid_t parent = getpid();
    char hb[24], live[24];
    snprintf(hb, sizeof hb, "%" PRId64, heartbeat_ms);
    snprintf(live, sizeof live, "%" PRId64, liveness);
    for (size_t i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "local-%zu", i + 1);
        char *argv[] = {program, "--connect", (char *) endpoint, "--threads", "1", "--name", name,
                        "--heartbeat", hb, "--liveness", live, "--quiet",
                        cert ? "--cert" : NULL, (char *) cert, "--manager-key", (char *) manager_key, NULL};
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(1);
            execv(program, argv);
            _exit(127);
        }
        if (pid < 0) {
            snprintf(err, errlen, "cannot start local workers: %s", strerror(errno));
            local_stop(&self);
            return NULL;
        }
        self->pids[i] = pid;
    }
    return self;
}

size_t local_reap(local_t *self, void (*exited)(void *arg, size_t index), void *arg)
{
    size_t running = 0;
    for (size_t i = 0; self && i < self->count; i++) {
        if (!self->pids[i])
            continue;
        int status;
        pid_t pid = waitpid(self->pids[i], &status, WNOHANG);
        if (pid == 0) {
            running++;
            continue;
        }
        if (WIFSIGNALED(status))
            log_warn("local worker %zu (pid %d) was killed by signal %d", i + 1, (int) self->pids[i],
                     WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            log_warn("local worker %zu (pid %d) exited with status %d", i + 1, (int) self->pids[i],
                     WEXITSTATUS(status));
        self->pids[i] = 0;
        if (exited)
            exited(arg, i);
    }
    return running;
}

void local_stop(local_t **self_p)
{
    local_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        if (self->pids[i])
            kill(self->pids[i], SIGTERM);
    int64_t deadline = zclock_mono() + 2000;
    while (local_reap(self, NULL, NULL) > 0 && zclock_mono() < deadline)
        zclock_sleep(2);
    for (size_t i = 0; i < self->count; i++)
        if (self->pids[i]) {
            kill(self->pids[i], SIGKILL);
            waitpid(self->pids[i], NULL, 0);
        }
    free(self->pids);
    free(self);
    *self_p = NULL;
}
