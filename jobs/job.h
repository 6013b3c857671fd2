/* job: the seam between the cluster and a job kind. Everything job-specific
   lives behind one job_kind_t; the manager and the worker know no job by name. */
#ifndef HY_JOB_H
#define HY_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct opt;   /* common/options.h */

/* What the manager learns from a job's command line. */
typedef struct {
    uint8_t *params;             /* bytes sent to every worker once; owned */
    size_t params_len;
    uint64_t units;              /* number of units, indices 0 .. units-1 */
    const char *output;          /* -o given to the job, or NULL */
    const char *default_output;  /* the kind's default output path, or NULL */
    void *state;                 /* the kind's manager-side state; owned */
    bool no_output;              /* the kind writes no file: the manager refuses -o */
    const char *files_dir;       /* a directory it also writes files into (frames' --frames-dir), or NULL */
    const char *files_prefix;    /* the start of those files' names there */
} job_plan_t;

/* A picture of the output so far, for the dashboard: RGB rows. */
typedef struct {
    uint8_t *rgb;                /* width * height * 3 bytes, top row first; malloc'd */
    uint32_t width, height;
} job_picture_t;

/* Return codes of plan(). */
#define JOB_OK    0
#define JOB_ERROR (-1)   /* bad options: err holds a one-line reason */
#define JOB_HELP  1      /* --help was asked for and usage printed */

/* Return codes of accept() besides 0. */
#define JOB_MALFORMED    (-1)   /* the payload is not what the kind sends */
#define JOB_WRITE_FAILED (-2)   /* the output cannot be written */

/* Return codes of compute() besides 0. */
#define JOB_RANGE     (-1)   /* unit out of range */
#define JOB_CANCELLED (-2)   /* stopped because *cancel was set */
#define JOB_FAILED    (-3)   /* could not compute it here (out of memory) */
#define JOB_MISSING   (-4)   /* could not compute it here: a library it needs cannot be loaded */

typedef struct job_kind {
    const char *name;      /* "mandelbrot": [a-z0-9_-] */
    const char *summary;   /* one line for the list of kinds */

    /* Manager: parses argv[1..argc) (argv[0] is the kind's name) into plan.
       Returns JOB_OK, JOB_HELP (usage printed to out) or JOB_ERROR. */
    int (*plan)(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen);

    /* Worker: checks untrusted parameter bytes and decodes them. Returns an
       owned context for compute, or NULL when the bytes are not valid. */
    void *(*load)(const uint8_t *params, size_t len);
    void (*unload)(void *ctx);

    /* Worker, pure: computes one unit. On success returns 0 and a malloc'd
       payload in *out (caller frees). Returns JOB_RANGE when unit is out of
       range, JOB_CANCELLED (nothing in *out) when it saw *cancel set: it
       looks at least every few milliseconds of work (cancel may be NULL).
       ctx is shared by every compute thread and never written. No global
       state, no clock, no I/O: same inputs, same bytes. */
    int (*compute)(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len);

    /* Manager, optional (NULL): called once before the first result, with
       the output path, for kinds that write their output as results come.
       Returns 0, or -1 with a one-line reason in err. */
    int (*begin)(void *state, const char *output, char *err, size_t errlen);

    /* Manager: folds one unit's result into the output. Each unit is accepted
       exactly once. Returns 0; JOB_MALFORMED, with what is wrong in err
       (a few words, no file name), when the payload is malformed (the result
       is then dropped and the unit computed again); or
       JOB_WRITE_FAILED, with a one-line reason naming the file and the
       system's error in err, when the output cannot be written (the job
       then stops at once). */
    int (*accept)(void *state, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen);

    /* Manager, optional (NULL): bytes held for results that arrived ahead
       of an earlier unit (an output written in order). The manager hands
       out no further units while it is above HOLD_MAX_BYTES. */
    size_t (*held)(void *state);

    /* Manager: all units accepted; writes the output file and prints the
       job's one-line result to out. Returns 0, or -1 with reason in err. */
    int (*finish)(void *state, const char *output, FILE *out, char *err, size_t errlen);

    /* Manager, optional (NULL): the output as assembled so far, at most
       max_side pixels wide and high, in *picture (the caller frees
       picture->rgb). Called on the event loop: it must be quick whatever the
       output's size. Returns 0, or -1 when there is nothing to show. */
    int (*preview)(void *state, uint32_t max_side, job_picture_t *picture);
    /* Manager, optional (NULL): the job's live result so far (pi: the running
       estimate): its value and one short line for people. Returns 0, or -1
       when there is none yet. */
    int (*estimate)(void *state, double *value, char *text, size_t len);
    /* Manager: frees the state (NULL is harmless); removes any partial
       output when finish did not succeed. */
    void (*destroy)(void *state);
} job_kind_t;

/* The kind named name (len bytes), or NULL. */
const job_kind_t *job_find(const char *name, size_t len);
/* Whether kernels may use SIMD: not when HYADES_NO_SIMD is set to
   anything but 0 (the scalar kernels then, for comparison). */
bool job_simd_allowed(void);
/* Number of kinds, and the i-th (0 <= i < job_count()), in a fixed order. */
size_t job_count(void);
const job_kind_t *job_at(size_t i);
/* Prints "  name   summary" for every kind. */
void job_list(FILE *out);

/* The option handling every kind's plan() shares: parses argv[1..) with
   opts; on --help (*help set by opts) prints title and the options to out.
   Returns JOB_OK, JOB_HELP, or JOB_ERROR with a one-line reason in err (also
   for a word that is not an option). */
int job_options(const struct opt *opts, const bool *help, const char *title, int argc, char **argv, FILE *out,
                char *err, size_t errlen);

/* Frees what a plan owns, through its kind; harmless on an empty plan. */
void job_plan_clear(const job_kind_t *kind, job_plan_t *plan);

#endif
