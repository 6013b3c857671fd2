/* hyades-worker: command line -> session. */
#include "common/log.h"
#include "common/curve.h"
#include "common/files.h"
#include "common/options.h"
#include "common/protocol.h"
#include "common/signals.h"
#include "jobs/job.h"
#include "worker/session.h"

#include <unistd.h>

static void s_usage(FILE *out, const opt_t *opts)
{
    fprintf(out, "usage: hyades-worker --connect ENDPOINT [options]\n"
                 "       hyades-worker keygen FILE   (a CURVE key pair: FILE and FILE_secret)\n\n"
                 "Computes work units for a hyades manager; keeps serving successive manager\n"
                 "runs until stopped with Ctrl-C or SIGTERM.\n\noptions:\n");
    opts_usage(opts, out);
}

/* Parses the comma-separated kind names of list into kinds (at most
   max, no duplicates). Returns their number, or -1 with a one-line reason. */
static int s_parse_kinds(const char *list, const job_kind_t **kinds, size_t max, char *err, size_t errlen)
{
    size_t n = 0;
    const char *p = list;
    while (true) {
        size_t len = strcspn(p, ",");
        const job_kind_t *kind = job_find(p, len);
        if (!kind) {
            if (len == 0)
                snprintf(err, errlen, "--kinds: an empty kind name in '%s' (known kinds:", list);
            else
                snprintf(err, errlen, "--kinds: unknown job kind '%.*s' (known kinds:", (int) (len > 64 ? 64 : len), p);
            for (size_t i = 0; i < job_count(); i++) {
                size_t used = strlen(err);
                snprintf(err + used, errlen - used, " %s%s", job_at(i)->name, i + 1 < job_count() ? "," : ")");
            }
            return -1;
        }
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen |= kinds[i] == kind;
        if (!seen && n < max)
            kinds[n++] = kind;
        if (!p[len])
            break;
        p += len + 1;
    }
    return (int) n;
}

int main(int argc, char **argv)
{
    signals_init();   /* before zsys_init and before any thread */
    log_init("worker");
    if (argc == 3 && streq(argv[1], "keygen")) {
        char err[512];
        if (curve_keygen(argv[2], err, sizeof err) < 0) {
            fprintf(stderr, "hyades-worker: %s\n", err);
            return 1;
        }
        printf("wrote %s (public: copy it into the manager's --allow directory) and %s_secret (keep it here)\n",
               argv[2], argv[2]);
        return 0;
    }
    const char *endpoint = NULL, *name = NULL, *cert = NULL, *manager_key = NULL, *kinds_list = NULL;
    int64_t threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    int64_t heartbeat = 1000, liveness = 3, gone_after = 60;
    bool help = false, quiet = false, version = false, exit_when_done = false;
    const opt_t opts[] = {
        {"connect", 'c', OPT_STRING, &endpoint, 0, 0, 0, 0, NULL, "HYADES_CONNECT", "ENDPOINT", "manager endpoint, e.g. tcp://host:5555"},
        {"threads", 't', OPT_INT, &threads, 1, HY_MAX_THREADS, 0, 0, NULL, "HYADES_THREADS", "N", "compute threads (number of cores)"},
        {"name", 'n', OPT_STRING, &name, 0, 0, 0, 0, NULL, "HYADES_NAME", "NAME", "name shown by the manager (host-pid)"},
        {"heartbeat", 0, OPT_INT, &heartbeat, HY_MIN_HEARTBEAT_MS, HY_MAX_HEARTBEAT_MS, 0, 0, NULL, "HYADES_HEARTBEAT", "MS", "heartbeat interval while holding units (1000)"},
        {"liveness", 0, OPT_INT, &liveness, 2, 1000, 0, 0, NULL, "HYADES_LIVENESS", "N", "missed heartbeats before the manager counts as gone (3)"},
        {"cert", 0, OPT_STRING, &cert, 0, 0, 0, 0, NULL, "HYADES_CERT", "FILE", "our CURVE key pair (FILE and FILE_secret, from keygen)"},
        {"manager-key", 0, OPT_STRING, &manager_key, 0, 0, 0, 0, NULL, "HYADES_MANAGER_KEY", "FILE", "the manager's public certificate"},
        {"kinds", 0, OPT_STRING, &kinds_list, 0, 0, 0, 0, NULL, "HYADES_KINDS", "LIST", "job kinds to compute, comma-separated (all)"},
        {"exit-when-done", 0, OPT_FLAG, &exit_when_done, 0, 0, 0, 0, NULL, "HYADES_EXIT_WHEN_DONE", NULL, "exit when the manager finishes or has been gone --gone-after seconds (status 0), or when none came in that time from the start (status 1), instead of waiting for the next one"},
        {"gone-after", 0, OPT_INT, &gone_after, 1, 86400, 0, 0, NULL, "HYADES_GONE_AFTER", "S", "with --exit-when-done: seconds without a manager before exiting (60)"},
        {"quiet", 'q', OPT_FLAG, &quiet, 0, 0, 0, 0, NULL, "HYADES_QUIET", NULL, "log warnings and errors only"},
        {"version", 0, OPT_FLAG, &version, 0, 0, 0, 0, NULL, NULL, NULL, "print the release and protocol version"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    char err[256];
    int next = opts_env(opts, err, sizeof err) < 0 ? -1 : opts_parse(opts, argc, argv, 1, err, sizeof err);
    if (next >= 0 && help) {
        s_usage(stdout, opts);
        return 0;
    }
    if (next >= 0 && version) {
        printf("hyades-worker %s (protocol %d)\n", HY_RELEASE, HY_PROTOCOL_VERSION);
        return 0;
    }
    if (next >= 0 && next < argc) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[next]);
        next = -1;
    }
    if (next >= 0 && !cert != !manager_key) {
        snprintf(err, sizeof err, "--cert and --manager-key go together: our key pair, and the manager's public certificate");
        next = -1;
    }
    const job_kind_t *kinds[HY_MAX_KINDS];
    const char *bad = NULL;   /* what is wrong with --connect */
    int kind_count = 0;
    if (next >= 0 && kinds_list && (kind_count = s_parse_kinds(kinds_list, kinds, HY_MAX_KINDS, err, sizeof err)) < 0)
        next = -1;
    if (next >= 0 && !endpoint) {
        snprintf(err, sizeof err, "--connect ENDPOINT is required (or HYADES_CONNECT)");
        next = -1;
    } else if (next >= 0 && (bad = opts_endpoint_problem(endpoint, 1, false))) {
        snprintf(err, sizeof err, "--connect %.200s: %s", endpoint, bad);
        next = -1;
    }
    if (next < 0) {
        fprintf(stderr, "hyades-worker: %s\n", err);
        s_usage(stderr, opts);
        return 2;
    }
    char default_name[HY_MAX_NAME + 1];
    if (!name) {
        char host[128] = "worker";
        gethostname(host, sizeof host - 1);
        for (char *c = host; *c; c++)   /* a host name may hold anything: names are printable ASCII */
            if (*c < 0x21 || *c > 0x7e)
                *c = '_';
        snprintf(default_name, sizeof default_name, "%s-%ld", host, (long) getpid());
        name = default_name;
    }
    bool printable = true;
    for (const char *c = name; *c; c++)
        printable &= *c >= 0x20 && *c <= 0x7e;
    if (strlen(name) > HY_MAX_NAME || !printable) {
        fprintf(stderr, "hyades-worker: --name must be 1 to %d printable ASCII characters\n", HY_MAX_NAME);
        return 2;
    }
    session_config_t config = {.endpoint = endpoint, .name = name, .threads = threads,
                               .heartbeat_ms = heartbeat, .liveness = liveness,
                               .kinds = kinds, .kind_count = (size_t) kind_count,
                               .exit_when_done_ms = exit_when_done ? gone_after * 1000 : 0};
    if (failpoints_parse(getenv("HYADES_FAILPOINTS"), &config.failpoints, err, sizeof err) < 0) {
        fprintf(stderr, "hyades-worker: %s\n", err);
        return 2;
    }
    if (cert) {
        config.cert = curve_load(cert, true, err, sizeof err);
        config.manager_key = config.cert ? curve_load(manager_key, false, err, sizeof err) : NULL;
        if (!config.manager_key) {
            fprintf(stderr, "hyades-worker: %s\n", err);
            zcert_destroy(&config.cert);
            return 2;
        }
    }
    if (quiet)
        log_set_level(HY_LOG_WARN);
    if (failpoints_active(&config.failpoints))
        log_warn("failpoints active: %s", getenv("HYADES_FAILPOINTS"));
    unsigned long files = files_raise_limit();
    if (files && files < FILES_MIN) {
        fprintf(stderr, "hyades-worker: at most %lu open files (ulimit -n): a worker needs %d\n", files, FILES_MIN);
        zcert_destroy(&config.cert);
        zcert_destroy(&config.manager_key);
        return 1;
    }
    signals_block();   /* threads started from here on leave the stop signals to this one */
    zsys_init();
    int status = session_run(&config);
    zcert_destroy(&config.cert);
    zcert_destroy(&config.manager_key);
    return status;
}
