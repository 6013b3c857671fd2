/* report: the summary of a job, in three forms. */
#include "manager/report.h"

#include <czmq.h>

#include <inttypes.h>
#include <stdlib.h>

/* Units computed in this run (not resumed from a journal) a second of work
   (not of waiting for workers). */
static double s_rate(const job_report_t *r)
{
    double work = r->seconds - r->waited;
    uint64_t computed = r->done > r->resumed ? r->done - r->resumed : 0;
    return work > 0 ? computed / work : 0;
}

void report_print(const job_report_t *r, FILE *out)
{
    double rate = s_rate(r);
    if (r->ok)
        fprintf(out, "job %s done", r->job);
    else
        fprintf(out, "job %s FAILED: %s", r->job, r->error);
    fprintf(out, "%s%s\n", r->ok && r->output ? ", output " : "", r->ok && r->output ? r->output : "");
    fprintf(out, "  units %" PRIu64 "/%" PRIu64 " in %.3f s", r->done, r->units, r->seconds);
    if (r->waited >= 0.1)   /* a local cluster waits some milliseconds for its workers to start */
        fprintf(out, ", %.3f of them waiting for workers", r->waited);
    fprintf(out, " (%.1f units/s, manager CPU %.2f s)\n", rate, r->cpu_seconds);
    fprintf(out, "  resumed %" PRIu64 ", re-issued %" PRIu64 ", speculative %" PRIu64 ", rebalanced %" PRIu64 ", duplicates %" PRIu64
                 ", rejected %" PRIu64 ", failed %" PRIu64 ", unsolicited %" PRIu64 ", other bad messages %" PRIu64 "\n",
            r->resumed, r->reissued, r->speculative, r->rebalanced, r->duplicates, r->rejected, r->failed,
            r->unsolicited, r->malformed);
    if (r->verified || r->mismatches)
        fprintf(out, "  verified %" PRIu64 ", mismatches %" PRIu64 "\n", r->verified, r->mismatches);
    if (r->restarts)
        fprintf(out, "  local worker restarts %" PRIu64 "\n", r->restarts);
    for (size_t i = 0; i < r->worker_count; i++) {
        const report_worker_t *w = &r->workers[i];
        fprintf(out, "  worker %-24s %" PRIu64 " units", w->name, w->units);
        if (w->failed)
            fprintf(out, ", %" PRIu64 " failed", w->failed);
        if (w->excluded[0])
            fprintf(out, ", EXCLUDED: %s", w->excluded);
        fputc('\n', out);
    }
}

void report_line(const job_report_t *r, FILE *out)
{
    fprintf(out, "line %d: %s ", r->line, r->job);
    if (r->ok)
        fprintf(out, "ok, %" PRIu64 " units in %.3f s, re-issued %" PRIu64 "%s%s\n", r->units, r->seconds, r->reissued,
                r->output ? ", output " : "", r->output ? r->output : "");
    else
        fprintf(out, "FAILED: %s\n", r->error);
}

/* The length of the valid UTF-8 sequence at s (2-4), or 0. */
static int s_utf8(const unsigned char *s)
{
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : 0;
    if (s[0] >= 0xf5)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0)
        || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;   /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* A JSON string: valid UTF-8 as it is, control characters escaped, and a
   byte that is not UTF-8 as U+FFFD (JSON holds Unicode text only). */
void report_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *) s; c && *c;) {
        int n;
        if (*c == '"' || *c == '\\') {
            fprintf(out, "\\%c", *c++);
        } else if (*c < 0x20 || *c == 0x7f) {
            fprintf(out, "\\u%04x", *c++);
        } else if (*c < 0x80) {
            fputc(*c++, out);
        } else if ((n = s_utf8(c)) > 0) {
            fwrite(c, 1, (size_t) n, out);
            c += n;
        } else {
            fputs("\\ufffd", out);
            c++;
        }
    }
    fputc('"', out);
}

void report_json(const job_report_t *r, FILE *out)
{
    fprintf(out, "{\"job\":");
    report_json_string(out, r->job);
    if (r->line)
        fprintf(out, ",\"line\":%d", r->line);
    fprintf(out, ",\"status\":\"%s\",\"error\":", r->ok ? "ok" : "failed");
    report_json_string(out, r->error);
    fprintf(out, ",\"output\":");
    if (r->output)
        report_json_string(out, r->output);
    else
        fputs("null", out);
    fprintf(out, ",\"units\":%" PRIu64 ",\"done\":%" PRIu64 ",\"seconds\":%.6f,\"waited_seconds\":%.6f,\"manager_cpu_seconds\":%.6f"
                 ",\"units_per_second\":%.3f,\"resumed\":%" PRIu64 ",\"reissued\":%" PRIu64 ",\"speculative\":%" PRIu64
                 ",\"rebalanced\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unsolicited\":%" PRIu64
                 ",\"malformed\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"restarts\":%" PRIu64 ",\"workers\":[",
            r->units, r->done, r->seconds, r->waited, r->cpu_seconds, s_rate(r), r->resumed,
            r->reissued, r->speculative, r->rebalanced, r->duplicates, r->rejected, r->failed, r->unsolicited, r->malformed, r->verified,
            r->mismatches, r->restarts);
    for (size_t i = 0; i < r->worker_count; i++) {
        const report_worker_t *w = &r->workers[i];
        fprintf(out, "%s{\"name\":", i ? "," : "");
        report_json_string(out, w->name);
        fprintf(out, ",\"units\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"excluded\":", w->units, w->failed);
        if (w->excluded[0])
            report_json_string(out, w->excluded);
        else
            fputs("null", out);
        fputc('}', out);
    }
    fprintf(out, "]}\n");
}

void report_status_json(const job_report_t *r, FILE *out)
{
    if (!r) {
        fputs("{\"job\":null}", out);
        return;
    }
    fputs("{\"job\":{\"kind\":", out);
    report_json_string(out, r->job);
    fputs(",\"args\":", out);
    report_json_string(out, r->args ? r->args : "");
    fputs(",\"output\":", out);
    if (r->output)
        report_json_string(out, r->output);
    else
        fputs("null", out);
    fprintf(out, ",\"status\":\"%s\",\"error\":", r->state ? r->state : "running");
    report_json_string(out, r->error);
    fprintf(out, ",\"seconds\":%.3f}", r->seconds);
    uint64_t pending = r->units - r->done > r->inflight ? r->units - r->done - r->inflight : 0;
    fprintf(out, ",\"units\":%" PRIu64 ",\"done\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"pending\":%" PRIu64
                 ",\"percent\":%.2f,\"rate\":%.3f,\"eta_seconds\":",
            r->units, r->done, r->inflight, pending, r->units ? 100.0 * r->done / r->units : 100.0, r->rate);
    if (r->eta >= 0)
        fprintf(out, "%.3f", r->eta);
    else
        fputs("null", out);
    fprintf(out, ",\"resumed\":%" PRIu64 ",\"reissued\":%" PRIu64 ",\"speculative\":%" PRIu64 ",\"rebalanced\":%" PRIu64
                 ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unsolicited\":%" PRIu64
                 ",\"malformed\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"restarts\":%" PRIu64
                 ",\"manager_cpu_seconds\":%.3f,\"workers_connected\":%" PRIu64 ",\"estimate\":",
            r->resumed, r->reissued, r->speculative, r->rebalanced, r->duplicates, r->rejected, r->failed,
            r->unsolicited, r->malformed, r->verified, r->mismatches, r->restarts, r->cpu_seconds,
            r->workers_connected);
    if (r->has_estimate) {
        fprintf(out, "{\"name\":");
        report_json_string(out, r->job);
        fprintf(out, ",\"value\":%.17g,\"text\":", r->estimate);
        report_json_string(out, r->estimate_text);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fprintf(out, ",\"preview\":%s,\"workers\":[", r->has_preview ? "true" : "false");
    for (size_t i = 0; i < r->worker_count; i++) {
        const report_worker_t *w = &r->workers[i];
        fprintf(out, "%s{\"name\":", i ? "," : "");
        report_json_string(out, w->name);
        fputs(",\"host\":", out);
        report_json_string(out, w->host);
        fprintf(out, ",\"threads\":%u,\"units\":%" PRIu64 ",\"rate\":%.3f,\"state\":\"%s\",\"restarts\":%" PRIu64
                     ",\"failed\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"excluded\":",
                w->threads, w->units, w->rate, w->state ? w->state : "idle", w->restarts, w->failed, w->inflight);
        if (w->excluded[0])
            report_json_string(out, w->excluded);
        else
            fputs("null", out);
        fputc('}', out);
    }
    fputs("]}", out);
}

/* A label value in the exposition format: backslash, quote and newline
   escaped, a byte that is not UTF-8 as U+FFFD. */
static void s_label(FILE *out, const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c;) {
        int n;
        if (*c == '\\' || *c == '"') {
            fprintf(out, "\\%c", *c++);
        } else if (*c == '\n') {
            fputs("\\n", out);
            c++;
        } else if (*c < 0x80) {
            fputc(*c++, out);
        } else if ((n = s_utf8(c)) > 0) {
            fwrite(c, 1, (size_t) n, out);
            c += n;
        } else {
            fputs("\xef\xbf\xbd", out);
            c++;
        }
    }
}

static void s_metric(FILE *out, const char *name, const char *type, const char *help, uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, value);
}

void report_metrics(const job_report_t *r, const report_totals_t *t, double cpu_seconds, FILE *out)
{
    static const job_report_t none = {0};
    const job_report_t *n = r ? r : &none;
    fprintf(out, "# HELP hyades_jobs_total Jobs finished, by outcome.\n# TYPE hyades_jobs_total counter\n"
                 "hyades_jobs_total{status=\"ok\"} %" PRIu64 "\nhyades_jobs_total{status=\"failed\"} %" PRIu64 "\n",
            t->jobs_ok, t->jobs_failed);
    s_metric(out, "hyades_units_total", "counter", "Units of the jobs started.", t->units);
    s_metric(out, "hyades_units_done_total", "counter", "Units whose result was accepted.", t->done);
    s_metric(out, "hyades_units_inflight", "gauge", "Units handed out and not answered yet.", n->inflight);
    s_metric(out, "hyades_units_reissued_total", "counter", "Units handed out again after a loss, failure or give-back.",
             t->reissued);
    s_metric(out, "hyades_units_speculative_total", "counter", "Speculative copies of late units.",
             t->speculative);
    s_metric(out, "hyades_units_rebalanced_total", "counter", "Queued units moved to an idle worker at the end of a job.",
             t->rebalanced);
    s_metric(out, "hyades_results_duplicate_total", "counter", "Results for units already done or cancelled.",
             t->duplicates);
    s_metric(out, "hyades_results_rejected_total", "counter", "Results the job kind found malformed.",
             t->rejected);
    s_metric(out, "hyades_results_failed_total", "counter", "Units a worker said it could not compute.",
             t->failed);
    s_metric(out, "hyades_results_verified_total", "counter", "Units accepted after two workers agreed.",
             t->verified);
    s_metric(out, "hyades_results_mismatched_total", "counter", "Units whose answers disagreed.",
             t->mismatches);
    s_metric(out, "hyades_messages_malformed_total", "counter", "Bad messages dropped (malformed, other version, "
             "unexpected, banned).", t->malformed);
    s_metric(out, "hyades_local_worker_restarts_total", "counter", "Local worker processes restarted.",
             t->restarts);
    s_metric(out, "hyades_workers_connected", "gauge", "Workers connected now.", n->workers_connected);
    fprintf(out, "# HELP hyades_job_progress_ratio Share of the current job's units done.\n"
                 "# TYPE hyades_job_progress_ratio gauge\nhyades_job_progress_ratio %.6f\n",
            n->units ? (double) n->done / n->units : 0.0);
    if (n->has_estimate)
        fprintf(out, "# HELP hyades_job_estimate The current job's live result (pi: the running estimate).\n"
                     "# TYPE hyades_job_estimate gauge\nhyades_job_estimate %.17g\n", n->estimate);
    fprintf(out, "# HELP hyades_manager_cpu_seconds_total CPU time of the manager process (all threads).\n"
                 "# TYPE hyades_manager_cpu_seconds_total counter\nhyades_manager_cpu_seconds_total %.6f\n",
            cpu_seconds);
    fputs("# HELP hyades_worker_units_done_total Units accepted from each worker connection, by name.\n"
          "# TYPE hyades_worker_units_done_total counter\n", out);
    /* One series per name (workers may share one): summed. */
    zhashx_t *by_name = zhashx_new();
    for (size_t i = 0; i < n->worker_count; i++) {
        uint64_t *sum = zhashx_lookup(by_name, n->workers[i].name);
        if (!sum) {
            sum = calloc(1, sizeof *sum);
            if (!sum)
                continue;
            zhashx_insert(by_name, n->workers[i].name, sum);
        }
        *sum += n->workers[i].total;
    }
    for (size_t i = 0; i < n->worker_count; i++) {
        uint64_t *sum = zhashx_lookup(by_name, n->workers[i].name);
        if (!sum)
            continue;
        fputs("hyades_worker_units_done_total{worker=\"", out);
        s_label(out, n->workers[i].name);
        fprintf(out, "\"} %" PRIu64 "\n", *sum);
        free(sum);
        zhashx_delete(by_name, n->workers[i].name);
    }
    zhashx_destroy(&by_name);
}

void report_add_counters(report_totals_t *t, const job_report_t *r)
{
    t->units += r->units, t->done += r->done, t->reissued += r->reissued, t->speculative += r->speculative;
    t->rebalanced += r->rebalanced, t->duplicates += r->duplicates, t->rejected += r->rejected;
    t->failed += r->failed, t->malformed += r->malformed, t->verified += r->verified;
    t->mismatches += r->mismatches, t->restarts += r->restarts;
}

void report_add_totals(report_totals_t *t, const job_report_t *r)
{
    t->jobs_ok += r->ok;
    t->jobs_failed += !r->ok;
    report_add_counters(t, r);
}

void report_clear(job_report_t *report)
{
    free(report->workers);
    report->workers = NULL;
    report->worker_count = 0;
}
