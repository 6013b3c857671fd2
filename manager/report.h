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
} report_worker_t;

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
    double seconds;
    double cpu_seconds;        /* the manager's own CPU time (all its threads) */
    size_t worker_count;
    report_worker_t *workers;  /* owned */
} job_report_t;

/* Prints the report for a person, as one line (batch runs), and as one JSON
   object on one line. */
void report_print(const job_report_t *report, FILE *out);
void report_line(const job_report_t *report, FILE *out);
void report_json(const job_report_t *report, FILE *out);
/* Frees the worker entries. */
void report_clear(job_report_t *report);

#endif
