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
        errno = 0;
        if (!colon || !colon[1]) {
            rc = -1;
        } else if (strncmp(item, "crash:", 6) == 0 || strncmp(item, "hang:", 5) == 0) {
            unsigned long long k = strtoull(colon + 1, &end, 10);
            bool crash = item[0] == 'c';
            size_t *count = crash ? &fp->crash_count : &fp->hang_count;
            if (errno || *end || strchr(colon + 1, '-') || *count == FAILPOINTS_MAX)
                rc = -1;
            else
                (crash ? fp->crash : fp->hang)[(*count)++] = k;
        } else if (strncmp(item, "slow:", 5) == 0) {
            fp->slow = strtod(colon + 1, &end);
            if (errno || *end || !isfinite(fp->slow) || fp->slow < 1 || fp->slow > 1000)
                rc = -1;
        } else {
            rc = -1;
        }
        if (rc < 0)
            snprintf(err, errlen, "HYADES_FAILPOINTS: cannot use '%s' (crash:K, hang:K, slow:F with 1 <= F <= 1000)", item);
    }
    free(copy);
    return rc;
}

bool failpoints_active(const failpoints_t *fp)
{
    return fp->crash_count || fp->hang_count || fp->slow != 1;
}

void failpoints_before(const failpoints_t *fp, uint64_t unit)
{
    for (size_t i = 0; i < fp->crash_count; i++)
        if (fp->crash[i] == unit) {
            /* As a unit that crashes its worker would: a little into its
               computation, once the results before it have left. */
            log_warn("failpoint: crashing in unit %llu", (unsigned long long) unit);
            zclock_sleep(100);
            kill(getpid(), SIGKILL);
        }
    for (size_t i = 0; i < fp->hang_count; i++)
        if (fp->hang[i] == unit) {
            log_warn("failpoint: hanging at unit %llu", (unsigned long long) unit);
            while (!zsys_interrupted)
                zclock_sleep(50);
        }
}

void failpoints_after(const failpoints_t *fp, int64_t elapsed_ms)
{
    if (fp->slow > 1)
        zclock_sleep((int) ((fp->slow - 1) * (double) elapsed_ms));
}
