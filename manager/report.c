/* report: the summary of a job, in three forms. */
#include "manager/report.h"

#include <inttypes.h>
#include <stdlib.h>

void report_print(const job_report_t *r, FILE *out)
{
    double rate = r->seconds > 0 ? r->done / r->seconds : 0;
    if (r->ok)
        fprintf(out, "job %s done", r->job);
    else
        fprintf(out, "job %s FAILED: %s", r->job, r->error);
    fprintf(out, "%s%s\n", r->ok && r->output ? ", output " : "", r->ok && r->output ? r->output : "");
    fprintf(out, "  units %" PRIu64 "/%" PRIu64 " in %.3f s (%.1f units/s, manager CPU %.2f s)\n", r->done, r->units,
            r->seconds, rate, r->cpu_seconds);
    fprintf(out, "  resumed %" PRIu64 ", re-issued %" PRIu64 ", speculative %" PRIu64 ", rebalanced %" PRIu64 ", duplicates %" PRIu64
                 ", rejected %" PRIu64 ", failed %" PRIu64 ", unsolicited %" PRIu64 ", bad messages %" PRIu64 "\n",
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
static void s_json_string(FILE *out, const char *s)
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
    s_json_string(out, r->job);
    if (r->line)
        fprintf(out, ",\"line\":%d", r->line);
    fprintf(out, ",\"status\":\"%s\",\"error\":", r->ok ? "ok" : "failed");
    s_json_string(out, r->error);
    fprintf(out, ",\"output\":");
    if (r->output)
        s_json_string(out, r->output);
    else
        fputs("null", out);
    fprintf(out, ",\"units\":%" PRIu64 ",\"done\":%" PRIu64 ",\"seconds\":%.6f,\"manager_cpu_seconds\":%.6f"
                 ",\"units_per_second\":%.3f,\"resumed\":%" PRIu64 ",\"reissued\":%" PRIu64 ",\"speculative\":%" PRIu64
                 ",\"rebalanced\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unsolicited\":%" PRIu64
                 ",\"malformed\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"restarts\":%" PRIu64 ",\"workers\":[",
            r->units, r->done, r->seconds, r->cpu_seconds, r->seconds > 0 ? r->done / r->seconds : 0.0, r->resumed,
            r->reissued, r->speculative, r->rebalanced, r->duplicates, r->rejected, r->failed, r->unsolicited, r->malformed, r->verified,
            r->mismatches, r->restarts);
    for (size_t i = 0; i < r->worker_count; i++) {
        const report_worker_t *w = &r->workers[i];
        fprintf(out, "%s{\"name\":", i ? "," : "");
        s_json_string(out, w->name);
        fprintf(out, ",\"units\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"excluded\":", w->units, w->failed);
        if (w->excluded[0])
            s_json_string(out, w->excluded);
        else
            fputs("null", out);
        fputc('}', out);
    }
    fprintf(out, "]}\n");
}

void report_clear(job_report_t *report)
{
    free(report->workers);
    report->workers = NULL;
    report->worker_count = 0;
}
