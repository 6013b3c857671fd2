/* hyades-manager: command line -> cluster -> job -> summary. */
#include "common/log.h"
#include "common/curve.h"
#include "common/files.h"
#include "common/outfile.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/protocol.h"
#include "manager/batch.h"
#include "manager/cluster.h"
#include "manager/dashboard.h"
#include "manager/report.h"
#include "manager/journal.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_BUFFER (1 << 20)   /* --json's stream: a record is written in one go */

/* The words of a job after its kind, joined by spaces (static: one at a time). */
static const char *s_args(const batch_job_t *job)
{
    static char text[1024];
    text[0] = '\0';
    for (int i = 1; i < job->argc; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", i > 1 ? " " : "", job->argv[i]);
    return text;
}

/* The jobs of a batch and their states, for the dashboard: jobs before
   current are done or failed (ok says which), current runs, the rest wait. */
static void s_publish_batch(dashboard_t *dash, const batch_t *batch, size_t current, const bool *ok)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return;
    fputs("{\"jobs\":[", out);
    for (size_t i = 0; i < batch->count; i++) {
        fprintf(out, "%s{\"line\":%d,\"kind\":", i ? "," : "", batch->jobs[i].line);
        report_json_string(out, batch->jobs[i].argc > 0 ? batch->jobs[i].argv[0] : "");
        fputs(",\"args\":", out);
        report_json_string(out, s_args(&batch->jobs[i]));
        fprintf(out, ",\"state\":\"%s\"}", i < current ? (ok[i] ? "done" : "failed") : i == current ? "running" : "pending");
    }
    fputs("]}", out);
    if (fclose(out) == 0)
        dashboard_set_batch(dash, text);
    free(text);
}

static void s_usage(FILE *out, const opt_t *opts)
{
    fprintf(out, "usage: hyades-manager [options] JOB [job options]\n"
                 "       hyades-manager [options] --batch FILE\n"
                 "       hyades-manager keygen FILE   (a CURVE key pair: FILE and FILE_secret)\n\n"
                 "Splits JOB into work units, hands them to workers over ZeroMQ and writes the\n"
                 "output. Without --bind it is a one-machine cluster of --local workers.\n\n"
                 "jobs (hyades-manager JOB --help for their options):\n");
    job_list(out);
    fprintf(out, "\noptions:\n");
    opts_usage(opts, out);
}

/* The directory a job writes files into (--frames-dir), checked before any
   work as the outputs are: a writable directory, or one the job can make
   (its parent exists and is writable). 0, or -1 with the reason in err. */
static int s_check_files_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    char copy[PATH_MAX];
    int why = 0;
    long at = outfile_control_at(dir);
    if (at >= 0) {
        snprintf(err, errlen, "a --frames-dir with a control character (byte 0x%02x at offset %ld)",
                 (unsigned char) dir[at], at);
        return -1;
    }
    if (outfile_planted(dir)) {
        snprintf(err, errlen, "--frames-dir %s: a symlink owned by another user in a shared directory leads there; "
                 "refusing to follow it", dir);
        return -1;
    }
    if (!*dir) {
        why = ENOENT;
    } else if (stat(dir, &st) == 0) {
        why = !S_ISDIR(st.st_mode) ? ENOTDIR : access(dir, W_OK | X_OK) != 0 ? errno : 0;
    } else if (errno != ENOENT) {
        why = errno;
    } else {
        snprintf(copy, sizeof copy, "%s", dir);
        for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
            copy[n - 1] = '\0';
        const char *parent = dirname(copy);
        why = stat(parent, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR
              : access(parent, W_OK | X_OK) != 0 ? errno : 0;
    }
    if (why)
        snprintf(err, errlen, "--frames-dir %s: %s", dir, strerror(why));
    return why ? -1 : 0;
}

/* Plans one job: its kind, its plan (cleared by the caller) and its output
   path, with the output checked (and not the --journal or --json file) and the
   journal checked. Returns JOB_OK, JOB_HELP or JOB_ERROR with a one-line reason in err. */
static int s_plan(const batch_job_t *job, const char *output, const char *journal, double verify, const char *json,
                  const job_kind_t **kind, job_plan_t *plan, const char **path, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    *kind = job_find(job->argv[0], strlen(job->argv[0]));
    if (!*kind) {
        snprintf(err, errlen, "unknown job '%s'", job->argv[0]);
        return JOB_ERROR;
    }
    int rc = (*kind)->plan(job->argc, job->argv, plan, stdout, err, errlen);
    if (rc != JOB_OK)
        return rc;
    if (plan->no_output && output) {
        snprintf(err, errlen, "%s writes no output file: -o has no place here", (*kind)->name);
        return JOB_ERROR;
    }
    *path = plan->output ? plan->output : output ? output : plan->default_output;
    if (*path && outfile_check(*path, err, errlen) < 0)
        return JOB_ERROR;
    if (plan->files_dir && s_check_files_dir(plan->files_dir, err, errlen) < 0)
        return JOB_ERROR;
    if (*path && ((journal && outfile_same(*path, journal)) || (json && outfile_same(*path, json)))) {
        snprintf(err, errlen, "the output %s is also the %s file", *path,
                 journal && outfile_same(*path, journal) ? "--journal" : "--json");
        return JOB_ERROR;
    }
    if (journal && journal_check(journal, (*kind)->name, plan->params, plan->params_len, plan->units, verify, err,
                                 errlen) < 0)
        return JOB_ERROR;
    return JOB_OK;
}

/* path made absolute and free of ".", ".." and symlinks, also where its
   last parts do not exist yet (a directory a job will create). */
static void s_canonical(const char *path, char *out, size_t len, int depth)
{
    char copy[PATH_MAX], base[PATH_MAX], dir[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
        copy[n - 1] = '\0';   /* "fd1/" is "fd1" */
    char real[PATH_MAX];
    if (realpath(copy, real) || depth > 64) {
        snprintf(out, len, "%s", depth > 64 ? copy : real);
        return;
    }
    snprintf(base, sizeof base, "%s", copy);
    snprintf(dir, sizeof dir, "%s", copy);
    const char *name = basename(base);
    s_canonical(dirname(dir), real, sizeof real, depth + 1);
    if (strcmp(name, ".") == 0)
        snprintf(out, len, "%s", real);
    else if (strcmp(name, "..") == 0)
        snprintf(out, len, "%s", dirname(real));
    else
        snprintf(out, len, "%.2048s/%.1024s", strcmp(real, "/") == 0 ? "" : real, name);
}

/* The same directory, by any path to it, existing yet or not. */
static bool s_same_dir(const char *a, const char *b)
{
    char ca[PATH_MAX], cb[PATH_MAX];
    s_canonical(a, ca, sizeof ca, 0);
    s_canonical(b, cb, sizeof cb, 0);
    return strcmp(ca, cb) == 0;
}

/* Whether path (where its symlinks lead) names one of the files a job
   writes into dir, whose names start with prefix: such a file would be
   overwritten by the job. */
static bool s_among_files(const char *path, const char *dir, const char *prefix)
{
    char target[PATH_MAX], full[PATH_MAX], name[PATH_MAX], parent[PATH_MAX];
    if (!path || !dir || outfile_target(path, target, sizeof target) < 0)
        return false;
    s_canonical(target, full, sizeof full, 0);
    snprintf(name, sizeof name, "%s", full);
    snprintf(parent, sizeof parent, "%s", full);
    return strncmp(basename(name), prefix, strlen(prefix)) == 0 && s_same_dir(dirname(parent), dir);
}

/* What line i of a batch (or the single job) would overwrite that it must
   not, before anything runs: the batch file or an earlier line's output
   (lost without a word), or, with the frames it writes into a directory
   (--frames-dir), any file of the run or another line's frames. paths,
   dirs and prefixes: those of the lines before. JOB_OK or JOB_ERROR. */
static int s_collides(const batch_t *batch, size_t i, const char *batch_path, const char *path,
                      const job_plan_t *plan, const char *json, const char *journal, char *const *paths,
                      const char *const *dirs, const char *const *prefixes, char *err, size_t errlen)
{
    if (path && batch_path && outfile_same(path, batch_path)) {
        snprintf(err, errlen, "the output %s is the batch file itself", path);
        return JOB_ERROR;
    }
    for (size_t j = 0; path && batch_path && j < i; j++)
        if (paths[j] && outfile_same(path, paths[j])) {
            snprintf(err, errlen, "the output %s is also line %d's: one of them would be lost (-o names another file)",
                     path, batch->jobs[j].line);
            return JOB_ERROR;
        }
    const char *files[] = {path, json, journal, batch_path};
    for (size_t k = 0; plan->files_dir && k < sizeof files / sizeof files[0]; k++)
        if (s_among_files(files[k], plan->files_dir, plan->files_prefix)) {
            snprintf(err, errlen, "%s would be overwritten by the frames written in %s", files[k], plan->files_dir);
            return JOB_ERROR;
        }
    for (size_t j = 0; j < i; j++)
        if ((plan->files_dir && dirs[j] && s_same_dir(plan->files_dir, dirs[j]))
            || s_among_files(paths[j], plan->files_dir, plan->files_prefix)
            || s_among_files(path, dirs[j], prefixes[j])) {
            snprintf(err, errlen, "line %d writes files in the same place (--frames-dir)", batch->jobs[j].line);
            return JOB_ERROR;
        }
    return JOB_OK;
}

/* One job's record in the --json file (none without one), flushed. */
static void s_json_record(outfile_t *json_out, const job_report_t *report)
{
    if (!json_out)
        return;
    report_json(report, outfile_stream(json_out));
    outfile_publish(json_out);
}

int main(int argc, char **argv)
{
    log_init("manager");
    signals_init();
    int64_t cores = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    if (argc == 2 && streq(argv[1], "--version")) {
        printf("hyades-manager %s (protocol %d)\n", HY_RELEASE, HY_PROTOCOL_VERSION);
        return 0;
    }
    if (argc == 3 && streq(argv[1], "keygen")) {
        char err[512];
        if (curve_keygen(argv[2], err, sizeof err) < 0) {
            fprintf(stderr, "hyades-manager: %s\n", err);
            return 1;
        }
        printf("wrote %s (public: give it to the workers) and %s_secret (keep it here)\n", argv[2], argv[2]);
        return 0;
    }
    const char *bind = NULL, *json = NULL, *output = NULL, *journal = NULL, *cert = NULL, *allow = NULL;
    const char *batch_path = NULL, *dashboard_addr = NULL;
    int64_t local = -1, min_workers = 0, heartbeat = 1000, liveness = 3, max_attempts = 3, straggler = 1000;
    double verify = 0;
    int schedule = SCHED_DYNAMIC;
    bool quiet = false, help = false, insecure = false, version = false;
    const opt_t opts[] = {
        {"bind", 'b', OPT_STRING, &bind, 0, 0, 0, 0, NULL, "HYADES_BIND", "ENDPOINT", "wait for remote workers here, e.g. tcp://0.0.0.0:5555"},
        {"local", 'l', OPT_INT, &local, 0, 1024, 0, 0, NULL, "HYADES_LOCAL", "N", "start N local workers (cores without --bind, else 0)"},
        {"min-workers", 0, OPT_INT, &min_workers, 1, 100000, 0, 0, NULL, "HYADES_MIN_WORKERS", "N", "workers to wait for before starting (1; with static or --verify: --local)"},
        {"schedule", 0, OPT_CHOICE, &schedule, 0, 0, 0, 0, "dynamic|static", "HYADES_SCHEDULE", "POLICY", "dynamic (load balancing) or static (unit k to worker k mod n)"},
        {"heartbeat", 0, OPT_INT, &heartbeat, HY_MIN_HEARTBEAT_MS, HY_MAX_HEARTBEAT_MS, 0, 0, NULL, "HYADES_HEARTBEAT", "MS", "heartbeat interval of workers holding units; idle ones and the manager beat 4x slower (1000)"},
        {"liveness", 0, OPT_INT, &liveness, 2, 1000, 0, 0, NULL, "HYADES_LIVENESS", "N", "missed heartbeats before a worker counts as lost (3)"},
        {"max-attempts", 0, OPT_INT, &max_attempts, 1, 255, 0, 0, NULL, "HYADES_MAX_ATTEMPTS", "N", "workers one unit may fail on or be lost with before the job fails (3)"},
        {"straggler-ms", 0, OPT_INT, &straggler, 10, 86400000, 0, 0, NULL, "HYADES_STRAGGLER_MS", "MS", "copy a unit out this long and 4x the median (4x this before any unit completed) to an idle worker (1000)"},
        {"verify", 0, OPT_FRACTION, &verify, 0, 0, 0, 0, NULL, "HYADES_VERIFY", "FRACTION", "accept a unit only when two workers return the same bytes; that share of units (all)"},
        {"journal", 'j', OPT_STRING, &journal, 0, 0, 0, 0, NULL, "HYADES_JOURNAL", "FILE", "log finished units here; the same command resumes from it"},
        {"cert", 0, OPT_STRING, &cert, 0, 0, 0, 0, NULL, "HYADES_CERT", "FILE", "our CURVE key pair (FILE and FILE_secret, from keygen)"},
        {"allow", 0, OPT_STRING, &allow, 0, 0, 0, 0, NULL, "HYADES_ALLOW", "DIR", "public certificates of the workers let in"},
        {"insecure", 0, OPT_FLAG, &insecure, 0, 0, 0, 0, NULL, "HYADES_INSECURE", NULL, "listen beyond this machine without keys"},
        {"json", 0, OPT_STRING, &json, 0, 0, 0, 0, NULL, "HYADES_JSON", "FILE", "write the run summary as JSON (a line a job)"},
        {"batch", 0, OPT_STRING, &batch_path, 0, 0, 0, 0, NULL, "HYADES_BATCH", "FILE", "run the jobs of FILE, a command line a line, on the same workers"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "output file (the job's default name)"},
        {"dashboard", 0, OPT_STRING, &dashboard_addr, 0, 0, 0, 0, NULL, "HYADES_DASHBOARD", "ADDR", "serve a live page, /api/status, /metrics and /preview.png at HOST:PORT (port 0: any free one)"},
        {"quiet", 'q', OPT_FLAG, &quiet, 0, 0, 0, 0, NULL, "HYADES_QUIET", NULL, "no progress line, summary or info logs"},
        {"version", 0, OPT_FLAG, &version, 0, 0, 0, 0, NULL, NULL, NULL, "print the release and protocol version"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    char err[512];
    int next = opts_env(opts, err, sizeof err) < 0 ? -1 : opts_parse(opts, argc, argv, 1, err, sizeof err);
    if (next >= 0 && help) {
        s_usage(stdout, opts);
        return 0;
    }
    if (next >= 0 && version) {
        printf("hyades-manager %s (protocol %d)\n", HY_RELEASE, HY_PROTOCOL_VERSION);
        return 0;
    }
    if (next >= 0 && batch_path && next < argc) {
        snprintf(err, sizeof err, "--batch takes its jobs from the file, not from the command line ('%s')", argv[next]);
        next = -1;
    } else if (next >= 0 && batch_path && output) {
        snprintf(err, sizeof err, "with --batch, -o goes on each job's line");
        next = -1;
    } else if (next >= 0 && batch_path && journal) {
        snprintf(err, sizeof err, "--journal is for a single job, not a batch");
        next = -1;
    } else if (next >= 0 && !batch_path && next >= argc) {
        snprintf(err, sizeof err, "no JOB given");
        next = -1;
    }
    if (next < 0) {
        fprintf(stderr, "hyades-manager: %s\nusage: hyades-manager [options] JOB [job options]"
                        " (hyades-manager --help for more)\n", err);
        return 2;
    }
    /* ZeroMQ binds addresses, not host names: localhost means loopback. */
    char bind_local[512];
    if (bind && strncmp(bind, "tcp://localhost:", 16) == 0) {
        snprintf(bind_local, sizeof bind_local, "tcp://127.0.0.1:%s", bind + 16);
        bind = bind_local;
    }
    if (local < 0)
        local = bind ? 0 : cores;
    /* Static scheduling numbers the workers at the start and --verify needs
       two opinions, so both wait for the local workers; otherwise the job
       starts with the first, and the others take work as they come (each
       takes a few milliseconds to load). */
    if (min_workers == 0)
        min_workers = local > 0 && (schedule == SCHED_STATIC || verify > 0) ? local : 1;
    const char *problem = NULL;
    const char *bad_bind = bind ? opts_endpoint_problem(bind, 0, true) : NULL;
    if (bad_bind) {
        snprintf(err, sizeof err, "--bind %.200s: %s", bind, bad_bind);
        problem = err;
    } else if (!bind && local == 0)
        problem = "--local 0 needs --bind: there would be no workers";
    else if (!bind && min_workers > local)
        problem = "--min-workers is larger than --local and there is no --bind for others";
    else if (json && outfile_check(json, err, sizeof err) < 0)
        problem = err;
    else if (batch_path && json && outfile_same(json, batch_path))
        problem = "--json names the batch file";
    else if (journal && outfile_check(journal, err, sizeof err) < 0)
        problem = err;
    else if (verify > 0 && !bind && local < 2)
        problem = "--verify needs two workers: --local 2 or more, or --bind for remote ones";
    else if (json && journal && outfile_same(json, journal))
        problem = "--json and --journal name the same file";
    else if (!cert != !allow)
        problem = "--cert and --allow go together: our key pair, and the workers' public certificates";
    else if (bind && !cert && !insecure && !curve_endpoint_is_local(bind))
        problem = "refusing to listen beyond this machine without keys: run 'hyades-manager keygen manager.cert'"
                  " and 'hyades-worker keygen worker.cert' on each worker, put the workers' public certificates in"
                  " a directory, and pass --cert manager.cert --allow DIR (workers: --cert worker.cert"
                  " --manager-key manager.cert); or pass --insecure on a network you trust";
    if (problem) {
        fprintf(stderr, "hyades-manager: %s\n", problem);
        return 2;
    }

    /* The jobs: the command line's, or every line of the batch file, all
       checked before anything runs. */
    batch_t single = {&(batch_job_t) {0, argc - next, argv + next}, 1};
    batch_t *batch = &single, *loaded = NULL;
    if (batch_path) {
        loaded = batch = batch_load(batch_path, err, sizeof err);
        if (!batch) {
            fprintf(stderr, "hyades-manager: %s\n", err);
            return 2;
        }
    }
    int bad = 0;
    char **paths = calloc(batch->count, sizeof *paths);   /* each line's output, to find two that collide */
    const char **dirs = calloc(batch->count, sizeof *dirs), **prefixes = calloc(batch->count, sizeof *prefixes);
    FILE *status_out = json && outfile_is_stdout(json) ? stderr : stdout;   /* where status lines go */
    for (size_t i = 0; i < batch->count; i++) {
        const job_kind_t *kind;
        job_plan_t plan;
        const char *path;
        int rc = s_plan(&batch->jobs[i], output, journal, verify, json, &kind, &plan, &path, err, sizeof err);
        if (rc == JOB_HELP && !batch_path) {
            free(paths), free(dirs), free(prefixes);
            return 0;
        }
        if (rc == JOB_HELP)
            snprintf(err, sizeof err, "--help has no place in a batch file");
        if (rc == JOB_OK)
            rc = s_collides(batch, i, batch_path, path, &plan, json, journal, paths, dirs, prefixes, err, sizeof err);
        if (rc == JOB_OK) {
            dirs[i] = plan.files_dir;
            prefixes[i] = plan.files_prefix;
        }
        if (rc == JOB_OK && path)
            paths[i] = strdup(path);
        if (rc == JOB_OK && outfile_is_stdout(path))
            status_out = stderr;   /* an output goes to stdout: the status lines must not */
        if (rc != JOB_OK) {
            if (batch_path)
                fprintf(stderr, "hyades-manager: %s:%d: %s\n", batch_path, batch->jobs[i].line, err);
            else
                fprintf(stderr, "hyades-manager: %s\n", err);
            bad++;
        }
        job_plan_clear(kind, &plan);
    }
    for (size_t i = 0; i < batch->count; i++)
        free(paths[i]);
    free(paths), free(dirs), free(prefixes);
    if (bad) {
        batch_destroy(&loaded);
        return 2;
    }

    if (quiet)
        log_set_level(HY_LOG_WARN);
    /* A descriptor per worker connection, and ZeroMQ's own: well above the
       usual 1024 when many workers join. */
    unsigned long files = files_raise_limit();
    if (files && files < FILES_MIN) {
        fprintf(stderr, "hyades-manager: at most %lu open files (ulimit -n): a manager needs %d\n", files, FILES_MIN);
        batch_destroy(&loaded);
        return 1;
    }
    if (files && (unsigned long) local > files - FILES_MIN) {
        /* Each local worker's connection takes a descriptor: beyond the limit
           libzmq's ipc listener aborts the manager at its accept. */
        fprintf(stderr, "hyades-manager: --local %" PRId64 ": at most %lu open files (ulimit -n) leave room for about "
                "%lu workers; start fewer or raise the limit\n", local, files, files - FILES_MIN);
        batch_destroy(&loaded);
        return 2;
    }
    if (files && files < 4096)   /* the manager itself holds about 15; outputs and the dashboard want some */
        log_info("at most %lu open files: about %lu workers can connect (raise the hard limit for more)", files,
                 files - FILES_MIN);
    signals_block();   /* threads started from here on leave SIGINT and SIGTERM to this one */
    zsys_init();
    dashboard_t *dash = NULL;
    if (dashboard_addr) {
        bool bad_addr;
        dash = dashboard_new(dashboard_addr, &bad_addr, err, sizeof err);
        if (!dash) {
            signals_unblock();
            fprintf(stderr, "hyades-manager: %s\n", err);
            batch_destroy(&loaded);
            return bad_addr ? 2 : 1;
        }
        log_set_tap(dashboard_log_tap, dash);
    }
    cluster_config_t config = {
        .bind = bind, .local = local, .min_workers = min_workers, .schedule = (sched_policy_t) schedule,
        .heartbeat_ms = heartbeat, .liveness = liveness, .max_attempts = max_attempts, .straggler_ms = straggler,
        .verify = verify,
        .journal = journal, .cert = cert, .allow = allow,
        .progress = !quiet && isatty(STDERR_FILENO),
        .status_to_stderr = status_out == stderr,
        .dashboard = dash,
    };
    cluster_t *cluster = cluster_new(&config, err, sizeof err);
    signals_unblock();
    if (!cluster) {
        fprintf(stderr, "hyades-manager: %s\n", err);
        log_set_tap(NULL, NULL);
        dashboard_destroy(&dash);
        batch_destroy(&loaded);
        return 1;
    }
    bool *ok = calloc(batch->count, sizeof *ok);
    /* The summary goes to a temporary beside --json, put in place with the
       first job's record; each later job's is appended as it ends (in one
       write: the buffer holds it), so that a batch killed in its tenth job
       leaves the records of the nine before. */
    outfile_t *json_out = json ? outfile_open(json, err, sizeof err) : NULL;
    if (json && !json_out)
        fprintf(stderr, "hyades-manager: %s\n", err);
    if (json_out)
        setvbuf(outfile_stream(json_out), NULL, _IOFBF, JSON_BUFFER);
    int status = json && !json_out ? 1 : 0;
    size_t failed = 0;
    size_t ran = 0;
    for (size_t i = 0; i < batch->count && signals_count() == 0; i++, ran++) {
        const job_kind_t *kind;
        job_plan_t plan;
        const char *path;
        /* Planned again rather than kept from the check above: a plan can hold a
           whole image, so only the running job's plan is in memory. */
        path = NULL;
        int planned = s_plan(&batch->jobs[i], output, journal, verify, json, &kind, &plan, &path, err, sizeof err);
        job_report_t report;
        if (dash && batch_path)
            s_publish_batch(dash, batch, i, ok);
        if (i + 1 == batch->count)
            cluster_last_job(cluster);
        if (planned != JOB_OK) {
            /* It was planned once already: what fails now is the machine
               (memory short) or the files (a directory gone since). */
            report = (job_report_t) {.job = kind ? kind->name : batch->jobs[i].argv[0], .output = path,
                                     .state = "failed"};
            size_t named = strlen(report.job);   /* "mandelbrot: ..." once the report names the job */
            bool prefixed = strncmp(err, report.job, named) == 0 && strncmp(err + named, ": ", 2) == 0;
            snprintf(report.error, sizeof report.error, "%s", prefixed ? err + named + 2 : err);
            failed++;
        } else if (cluster_run(cluster, kind, &plan, path, s_args(&batch->jobs[i]), &report) != 0) {
            failed++;
        }
        if (ok)
            ok[i] = report.ok;
        if (dash && batch_path)
            s_publish_batch(dash, batch, i + 1, ok);
        report.line = batch->jobs[i].line;
        if (batch_path) {
            report_line(&report, status_out);
            fflush(status_out);
        } else if (!quiet) {
            report_print(&report, stderr);
        } else if (!report.ok) {
            fprintf(stderr, "hyades-manager: job %s failed: %s\n", report.job, report.error);
        }
        s_json_record(json_out, &report);
        report_clear(&report);
        job_plan_clear(kind, &plan);
    }
    /* Lines a signal kept from running get their line and record too: one
       of each per job, whatever happened to it. */
    for (size_t i = ran; batch_path && i < batch->count; i++) {
        job_report_t report = {.job = batch->jobs[i].argv[0], .line = batch->jobs[i].line, .state = "not run"};
        snprintf(report.error, sizeof report.error, "not run: the batch was interrupted");
        report_line(&report, status_out);
        s_json_record(json_out, &report);
    }
    if (!batch_path && ran < batch->count)   /* a stop signal before the job began */
        fprintf(stderr, "hyades-manager: job %s not run: interrupted before it started\n", batch->jobs[0].argv[0]);
    fflush(status_out);
    cluster_destroy(&cluster);
    log_set_tap(NULL, NULL);
    dashboard_destroy(&dash);
    free(ok);
    if (json_out && outfile_close(&json_out, true, err, sizeof err) < 0) {
        fprintf(stderr, "hyades-manager: %s\n", err);
        status = 1;
    }
    /* A signal that came while the last output was being written did not cut
       anything short: that job is done. Jobs of a batch not run are. */
    bool cut = ran < batch->count;
    if (batch_path && (failed || cut))
        fprintf(stderr, "hyades-manager: batch %s: %zu of %zu jobs failed%s\n", batch_path, failed + (batch->count - ran),
                batch->count, cut || signals_count() > 0 ? " (interrupted)" : "");
    batch_destroy(&loaded);
    return failed || cut ? 1 : status;
}
