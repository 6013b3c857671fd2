/* report: what one job did, for a person (summary), a batch (one line) and
   machines (one JSON object on one line). */
#ifndef HY_REPORT_H
#define HY_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char name[256];
    uint64_t units;            /* accepted units that came from it */
    uint64_t failed;           /* units it failed */
    char excluded[160];        /* why it was excluded from the job, or "" */
    /* Live, for the dashboard: */
    char host[64];             /* its network address, "local" for ipc */
    uint32_t threads;
    const char *state;         /* "working", "idle", "stalled", "lost", "excluded" */
    uint64_t inflight;         /* units it holds */
    uint64_t total;            /* units accepted from it in the manager's life */
    uint64_t restarts;         /* restarts of its local process */
    double rate;               /* units/s over the job so far */
} report_worker_t;

/* Counters summed over the jobs a manager finished (for metrics, which
   only grow). */
typedef struct {
    uint64_t jobs_ok, jobs_failed;
    uint64_t units, done, reissued, speculative, rebalanced, duplicates, rejected, failed, malformed;
    uint64_t verified, mismatches, restarts;
} report_totals_t;

typedef struct {
    const char *job;           /* kind name */
    int line;                  /* its line in a batch file, or 0 */
    const char *output;        /* path, or NULL */
    bool ok;
    char error[512];           /* one line when !ok */
    uint64_t units, done, reissued, duplicates, rejected, speculative;
    uint64_t rebalanced;       /* queued units taken back at the end of the job for an idle worker */
    uint64_t resumed;          /* units replayed from the journal */
    uint64_t failed;           /* failed results (the unit went to another worker) */
    uint64_t unsolicited;      /* results dropped: not in flight on their sender, or another job's */
    uint64_t malformed;        /* other bad messages dropped: malformed, other version, unexpected, banned */
    uint64_t verified;         /* units accepted after two workers agreed */
    uint64_t mismatches;       /* units whose answers disagreed */
    uint64_t restarts;         /* local worker processes restarted */
    double seconds;            /* from the job's start to its end, waiting for workers included */
    double waited;             /* of those, before its first unit went out (--min-workers, no worker yet) */
    double cpu_seconds;        /* the manager's own CPU time (all its threads) */
    size_t worker_count;
    report_worker_t *workers;  /* owned */
    /* Live, for the dashboard: */
    const char *args;          /* the job's words after its kind, or NULL */
    const char *state;         /* "waiting", "running", "done", "failed" */
    uint64_t inflight;
    double rate;               /* units/s over the job so far */
    double eta;                /* seconds left at that rate; < 0: unknown */
    bool has_estimate;         /* the job's live result (pi: the running estimate) */
    double estimate;
    char estimate_text[80];
    bool has_preview;          /* the job can draw its output so far */
    uint64_t workers_connected;
} job_report_t;

/* Prints the report for a person, as one line (batch runs), and as one JSON
   object on one line. */
void report_print(const job_report_t *report, FILE *out);
void report_line(const job_report_t *report, FILE *out);
void report_json(const job_report_t *report, FILE *out);
/* The live status of a job (NULL: none running) as one JSON object, for
   /api/status: the fields of report_json and the live ones. */
void report_status_json(const job_report_t *report, FILE *out);
/* Prometheus text exposition: the counters of sum (every job so far, the
   running one included), the gauges and workers of report (NULL: none),
   and the manager's CPU seconds. */
void report_metrics(const job_report_t *report, const report_totals_t *sum, double cpu_seconds, FILE *out);
/* Adds a job's counters to totals, and with report_add_totals, once it
   finished, its outcome. */
void report_add_counters(report_totals_t *totals, const job_report_t *report);
void report_add_totals(report_totals_t *totals, const job_report_t *report);
/* text as a JSON string: valid UTF-8 kept, control characters escaped, any
   other byte as U+FFFD. */
void report_json_string(FILE *out, const char *text);
/* Frees the worker entries. */
void report_clear(job_report_t *report);

#endif
