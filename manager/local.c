/* local: worker processes started by the manager and supervised: one that
   exits is started again after a backoff that grows while it keeps exiting
   quickly. Each child asks the kernel for SIGTERM when the manager dies, so
   none outlives a killed manager. */
#include "manager/local.h"
#include "common/log.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESTART_SPARE 8   /* descriptors free before a local worker is started again */

typedef struct {
    pid_t pid;              /* 0 while not running */
    int64_t started_ms;     /* when it was last started */
    int64_t restart_ms;     /* while not running: when to start it again */
    int64_t backoff_ms;     /* the next restart delay */
    unsigned unjoined;      /* exits in a row without having joined */
    bool joined;            /* said HELLO since its last start */
    bool given_up;
    bool starved;           /* its restart waits for a descriptor (said once) */
    uint64_t restarts;      /* times it was started again */
} child_t;

struct local_t {
    child_t *children;
    size_t count;
    char program[PATH_MAX];
    char endpoint[256], cert[256], manager_key[256];
    char heartbeat[24], liveness[24];
    uint64_t restarts;
    bool terminated;        /* local_terminate: no more restarts */
    char **env;             /* the manager's environment without the worker's own options */
};

/* The worker's options it also reads from the environment. The manager
   passes local workers the values it wants on their command line; these,
   inherited, could only contradict it (HYADES_KINDS=pi would keep them from
   a noop job, HYADES_EXIT_WHEN_DONE would end them after the first). */
static const char *const s_worker_env[] = {"HYADES_CONNECT", "HYADES_THREADS", "HYADES_NAME", "HYADES_HEARTBEAT",
                                           "HYADES_LIVENESS", "HYADES_CERT", "HYADES_MANAGER_KEY", "HYADES_KINDS",
                                           "HYADES_EXIT_WHEN_DONE", "HYADES_GONE_AFTER", "HYADES_QUIET"};

static char **s_child_env(void)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; env && i < n; i++) {
        bool drop = false;
        for (size_t j = 0; j < sizeof s_worker_env / sizeof s_worker_env[0]; j++) {
            size_t len = strlen(s_worker_env[j]);
            drop |= strncmp(environ[i], s_worker_env[j], len) == 0 && environ[i][len] == '=';
        }
        if (!drop)
            env[k++] = strdup(environ[i]);
    }
    return env;
}

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

static int s_spawn(local_t *self, size_t i)
{
    char name[32], cert[300];
    snprintf(name, sizeof name, "local-%zu", i + 1);
    snprintf(cert, sizeof cert, "%s-%zu", self->cert, i + 1);   /* each its own key pair */
    char *argv[] = {self->program, "--connect", self->endpoint, "--threads", "1", "--name", name,
                    "--heartbeat", self->heartbeat, "--liveness", self->liveness, "--quiet",
                    self->cert[0] ? "--cert" : NULL, cert, "--manager-key", self->manager_key, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execve(self->program, argv, self->env);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    child_t *c = &self->children[i];
    c->pid = pid;
    c->started_ms = zclock_mono();
    c->joined = false;
    return 0;
}

local_t *local_start(const char *endpoint, size_t count, int64_t heartbeat_ms, int64_t liveness,
                     const char *cert, const char *manager_key, char *err, size_t errlen)
{
    local_t *self = calloc(1, sizeof *self);
    if (s_worker_path(self->program, sizeof self->program) < 0 || access(self->program, X_OK) != 0) {
        snprintf(err, errlen, "cannot find the worker program (%s); set HYADES_WORKER", self->program);
        free(self);
        return NULL;
    }
    self->children = calloc(count, sizeof *self->children);
    self->count = self->children ? count : 0;
    self->env = s_child_env();
    if (!self->children || !self->env) {
        snprintf(err, errlen, "cannot start local workers: out of memory");
        local_stop(&self);
        return NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    snprintf(self->cert, sizeof self->cert, "%s", cert ? cert : "");
    snprintf(self->manager_key, sizeof self->manager_key, "%s", manager_key ? manager_key : "");
    snprintf(self->heartbeat, sizeof self->heartbeat, "%" PRId64, heartbeat_ms);
    snprintf(self->liveness, sizeof self->liveness, "%" PRId64, liveness);
    for (size_t i = 0; i < count; i++) {
        self->children[i].backoff_ms = LOCAL_BACKOFF_MIN_MS;
        if (s_spawn(self, i) < 0) {
            snprintf(err, errlen, "cannot start local workers: %s", strerror(errno));
            local_stop(&self);
            return NULL;
        }
    }
    return self;
}

/* Collects exited children; with restart, schedules them again. */
static size_t s_reap(local_t *self, bool restart, void (*exited)(void *arg, size_t index), void *arg)
{
    size_t running = 0;
    int64_t now = zclock_mono();
    for (size_t i = 0; self && i < self->count; i++) {
        child_t *c = &self->children[i];
        if (!c->pid)
            continue;
        int status;
        pid_t pid = waitpid(c->pid, &status, WNOHANG);
        if (pid == 0) {
            running++;
            continue;
        }
        if (restart && WIFSIGNALED(status))
            log_warn("local worker %zu (pid %d) was killed by signal %d", i + 1, (int) c->pid, WTERMSIG(status));
        else if (restart && WIFEXITED(status) && WEXITSTATUS(status) != 0)
            log_warn("local worker %zu (pid %d) exited with status %d", i + 1, (int) c->pid, WEXITSTATUS(status));
        c->pid = 0;
        if (exited)
            exited(arg, i);
        if (!restart)
            continue;
        if (now - c->started_ms >= LOCAL_STABLE_MS)
            c->backoff_ms = LOCAL_BACKOFF_MIN_MS;
        c->unjoined = c->joined ? 0 : c->unjoined + 1;
        if (c->unjoined >= LOCAL_GIVE_UP) {
            c->given_up = true;
            log_error("local worker %zu exited %u times in a row before it could join; not restarting it", i + 1,
                      c->unjoined);
            continue;
        }
        c->restart_ms = now + c->backoff_ms;
        log_info("restarting local worker %zu in %" PRId64 " ms", i + 1, c->backoff_ms);
        c->backoff_ms = c->backoff_ms * 2 > LOCAL_BACKOFF_MAX_MS ? LOCAL_BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
    return running;
}

/* Whether this process has RESTART_SPARE descriptors free (counted in
   /proc/self/fd against its limit). */
static bool s_descriptors_to_spare(void)
{
    struct rlimit rl;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return errno != EMFILE && errno != ENFILE;   /* no /proc: cannot tell, try */
    size_t open_now = 0;
    for (struct dirent *e; (e = readdir(d));)
        open_now += e->d_name[0] != '.';
    closedir(d);
    return getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY
        || open_now + RESTART_SPARE <= (size_t) rl.rlim_cur;
}

size_t local_supervise(local_t *self, void (*exited)(void *arg, size_t index), void *arg)
{
    if (!self)
        return 0;
    size_t running = s_reap(self, !self->terminated, exited, arg);
    if (self->terminated)
        return running;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < self->count; i++) {
        child_t *c = &self->children[i];
        if (c->pid || c->given_up || now < c->restart_ms)
            continue;
        /* Its connection takes a descriptor of ours: with none left (a flood
           of connections holds them), libzmq's ipc listener would abort the
           manager on it. Later, then: a flood that comes and goes takes a
           free descriptor again within microseconds, so a few must be. */
        if (!s_descriptors_to_spare()) {
            if (!c->starved)
                log_warn("local worker %zu waits to be restarted: too few descriptors are left (a flood of "
                         "connections?)", i + 1);
            c->starved = true;
            c->restart_ms = now + LOCAL_BACKOFF_MIN_MS;
            continue;
        }
        c->starved = false;
        if (s_spawn(self, i) < 0) {
            log_warn("cannot restart local worker %zu: %s", i + 1, strerror(errno));
            c->restart_ms = now + c->backoff_ms;
            continue;
        }
        self->restarts++;
        c->restarts++;
        running++;
    }
    return running;
}

size_t local_live(const local_t *self)
{
    size_t n = 0;
    for (size_t i = 0; self && !self->terminated && i < self->count; i++)
        n += !self->children[i].given_up;
    return n;
}

void local_kill(local_t *self, size_t index)
{
    if (self && index < self->count && self->children[index].pid)
        kill(self->children[index].pid, SIGKILL);
}

void local_joined(local_t *self, size_t index)
{
    if (self && index < self->count)
        self->children[index].joined = true;
}

bool local_gave_up(const local_t *self)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (!self->children[i].given_up)
            return false;
    return self != NULL;
}

uint64_t local_restarts(const local_t *self) { return self ? self->restarts : 0; }

uint64_t local_restarts_of(const local_t *self, size_t index)
{
    return self && index < self->count ? self->children[index].restarts : 0;
}

void local_terminate(local_t *self)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (self->children[i].pid)
            kill(self->children[i].pid, SIGTERM);
    if (self)
        self->terminated = true;
}

void local_stop(local_t **self_p)
{
    local_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count && !self->terminated; i++)
        if (self->children[i].pid)
            kill(self->children[i].pid, SIGTERM);
    int64_t deadline = zclock_mono() + 2000;
    while (s_reap(self, false, NULL, NULL) > 0 && zclock_mono() < deadline)
        zclock_sleep(2);
    for (size_t i = 0; i < self->count; i++)
        if (self->children[i].pid) {
            kill(self->children[i].pid, SIGKILL);
            waitpid(self->children[i].pid, NULL, 0);
        }
    for (size_t i = 0; self->env && self->env[i]; i++)
        free(self->env[i]);
    free(self->env);
    free(self->children);
    free(self);
    *self_p = NULL;
}
