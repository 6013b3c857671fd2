/* registry: the list of job kinds. Adding a kind is one line here. */
#include "jobs/job.h"
#include "common/options.h"

#include <stdlib.h>
#include <string.h>

extern const job_kind_t mandelbrot_job, pi_job, primes_job, frames_job, noop_job;

static const job_kind_t *s_kinds[] = {
    &mandelbrot_job,
    &pi_job,
    &primes_job,
    &frames_job,
    &noop_job,
};

const job_kind_t *job_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        if (strlen(s_kinds[i]->name) == len && memcmp(s_kinds[i]->name, name, len) == 0)
            return s_kinds[i];
    return NULL;
}

size_t job_count(void) { return sizeof s_kinds / sizeof s_kinds[0]; }
const job_kind_t *job_at(size_t i) { return i < job_count() ? s_kinds[i] : NULL; }

void job_list(FILE *out)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
        fprintf(out, "  %-12s %s\n", s_kinds[i]->name, s_kinds[i]->summary);
}

void job_plan_clear(const job_kind_t *kind, job_plan_t *plan)
{
    free(plan->params);
    if (kind && plan->state)
        kind->destroy(plan->state);
    memset(plan, 0, sizeof *plan);
}

int job_options(const opt_t *opts, const bool *help, const char *title, int argc, char **argv, FILE *out,
                char *err, size_t errlen)
{
    int next = opts_parse(opts, argc, argv, 1, err, errlen);
    if (next < 0)
        return JOB_ERROR;
    if (*help) {
        fprintf(out, "%s\n\n", title);
        opts_usage(opts, out);
        return JOB_HELP;
    }
    if (next < argc) {
        snprintf(err, errlen, "%s: unexpected argument '%s'", argv[0], argv[next]);
        return JOB_ERROR;
    }
    return JOB_OK;
}

bool job_simd_allowed(void)
{
    const char *off = getenv("HYADES_NO_SIMD");
    return !(off && strcmp(off, "0") != 0);
}
