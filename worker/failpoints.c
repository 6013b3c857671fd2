/* failpoints: deliberate faults, parsed once at start-up, read-only after. */
#include "worker/failpoints.h"
#include "common/log.h"

#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The unit lists, by the name before the colon. */
static uint64_t *s_list(failpoints_t *fp, const char *item, size_t **count)
{
    static const struct { const char *name; size_t list, count; } lists[] = {
        {"crash:", offsetof(failpoints_t, crash), offsetof(failpoints_t, crash_count)},
        {"hang:", offsetof(failpoints_t, hang), offsetof(failpoints_t, hang_count)},
        {"refuse:", offsetof(failpoints_t, refuse), offsetof(failpoints_t, refuse_count)},
        {"corrupt:", offsetof(failpoints_t, corrupt), offsetof(failpoints_t, corrupt_count)},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strncmp(item, lists[i].name, strlen(lists[i].name)) == 0) {
            *count = (size_t *) ((char *) fp + lists[i].count);
            return (uint64_t *) ((char *) fp + lists[i].list);
        }
    return NULL;
}

static bool s_listed(const uint64_t *list, size_t count, uint64_t unit)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] == unit)
            return true;
    return false;
}

static bool s_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

int failpoints_parse(const char *spec, failpoints_t *fp, char *err, size_t errlen)
{
    memset(fp, 0, sizeof *fp);
    fp->slow = 1;
    if (!spec || !*spec)
        return 0;
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        char *end = NULL;
        size_t *count = NULL;
        uint64_t *list = s_list(fp, item, &count);
        errno = 0;
        if (!colon || !colon[1]) {
            rc = -1;
        } else if (streq(item, "corrupt:all")) {
            fp->corrupt_all = true;
        } else if (list) {
            unsigned long long k = strtoull(colon + 1, &end, 10);
            if (errno || *end || strchr(colon + 1, '-') || *count == FAILPOINTS_MAX)
                rc = -1;
            else
                list[(*count)++] = k;
        } else if (strncmp(item, "slow:", 5) == 0) {
            fp->slow = strtod(colon + 1, &end);
            if (errno || *end || !isfinite(fp->slow) || fp->slow < 1 || fp->slow > 1000)
                rc = -1;
        } else if (strncmp(item, "sleep:", 6) == 0) {
            unsigned long long ms = strtoull(colon + 1, &end, 10);
            if (errno || *end || strchr(colon + 1, '-') || ms > 3600000)
                rc = -1;
            else
                fp->sleep_ms = (int64_t) ms;
        } else {
            rc = -1;
        }
        if (rc < 0)
            snprintf(err, errlen, "HYADES_FAILPOINTS: cannot use '%s' (crash:K, hang:K, refuse:K, corrupt:K, sleep:MS, "
                                  "corrupt:all, slow:F with 1 <= F <= 1000; at most %d units each)",
                     item, FAILPOINTS_MAX);
    }
    free(copy);
    return rc;
}

bool failpoints_active(const failpoints_t *fp)
{
    return fp->crash_count || fp->hang_count || fp->refuse_count || fp->corrupt_count || fp->corrupt_all
        || fp->slow != 1 || fp->sleep_ms > 0;
}

int failpoints_before(const failpoints_t *fp, uint64_t unit, const atomic_bool *cancel)
{
    if (s_listed(fp->crash, fp->crash_count, unit)) {
        /* As a unit that crashes its worker would: a little into its
           computation, once the results before it have left. */
        log_warn("failpoint: crashing in unit %llu", (unsigned long long) unit);
        zclock_sleep(100);
        kill(getpid(), SIGKILL);
    }
    if (s_listed(fp->hang, fp->hang_count, unit)) {
        /* As a kernel stuck in a loop would: deaf to cancels, until the
           process ends. */
        log_warn("failpoint: hanging at unit %llu for good", (unsigned long long) unit);
        while (true)
            zclock_sleep(1000);
    }
    if (s_listed(fp->refuse, fp->refuse_count, unit)) {
        log_warn("failpoint: refusing unit %llu", (unsigned long long) unit);
        return FAILPOINT_REFUSE;
    }
    return FAILPOINT_COMPUTE;
}

void failpoints_after(const failpoints_t *fp, uint64_t unit, int64_t elapsed_ms, uint8_t *data, size_t len,
                      const atomic_bool *cancel)
{
    if (len > 0 && (fp->corrupt_all || s_listed(fp->corrupt, fp->corrupt_count, unit)))
        data[len - 1] ^= 0x01;
    if (fp->slow > 1 || fp->sleep_ms > 0) {
        int64_t left = (int64_t) ((fp->slow - 1) * (double) elapsed_ms) + fp->sleep_ms;
        while (left > 0 && !s_cancelled(cancel)) {
            int64_t slice = left < 10 ? left : 10;
            zclock_sleep((int) slice);
            left -= slice;
        }
    }
}
