/* cluster: the manager's event loop. It binds the socket, starts local
   workers, keeps the roster, and runs jobs one after the other on whatever
   workers are connected. */
#ifndef HY_CLUSTER_H
#define HY_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "jobs/job.h"
#include "manager/report.h"
#include "manager/scheduler.h"

#define EXCLUDE_AFTER_FAILS 3  /* units a worker fails before it is excluded from the job */
#define HOLD_MAX_BYTES (32u << 20)  /* results held ahead of a late unit before the manager waits for it */
#define HANDSHAKE_MS 10000         /* a connection's handshake (ZeroMQ's, CURVE's) must end within this */
#define OUTPUT_PATIENCE_MS 30000   /* the final write waits this long for a descriptor when none is left */

typedef struct {
    const char *bind;          /* endpoint for remote workers, or NULL */
    int64_t local;             /* local worker processes to start */
    int64_t min_workers;       /* workers to wait for before a job starts */
    sched_policy_t schedule;
    int64_t heartbeat_ms;
    int64_t liveness;          /* missed heartbeats before a worker is lost */
    int64_t max_attempts;      /* workers lost on, or failing, one unit before the job fails */
    int64_t straggler_ms;      /* floor of the straggler limit */
    double verify;             /* share of units checked by a second worker; 0: none */
    const char *journal;       /* durable log of finished units, or NULL */
    const char *cert;          /* our CURVE key pair, or NULL: no CURVE */
    const char *allow;         /* directory of the workers' public certificates */
    bool progress;             /* show the live progress line */
    bool status_to_stderr;     /* stdout carries an output (--json /dev/stdout): status lines go to stderr */
    struct dashboard_t *dashboard;  /* publish the live status there, or NULL */
} cluster_config_t;

typedef struct cluster_t cluster_t;

/* Binds and starts local workers. NULL with a one-line reason in err. */
cluster_t *cluster_new(const cluster_config_t *config, char *err, size_t errlen);
/* Says goodbye to every worker, stops local ones, frees; sets *self_p to NULL. */
void cluster_destroy(cluster_t **self_p);

/* The next job is the last: once all its units are in, local workers are
   let go while its output is written. */
void cluster_last_job(cluster_t *self);

/* Runs one planned job to the end: output written, report filled (the caller
   frees it with report_clear). Returns 0 when the output is complete. */
int cluster_run(cluster_t *self, const job_kind_t *kind, job_plan_t *plan, const char *output, const char *args,
                job_report_t *report);

#endif
