/* batch: reading a file of job command lines into words. */
#include "manager/batch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LINE 65536
#define MAX_JOBS 100000          /* a batch is read whole before it runs: bounded */
#define MAX_BYTES (64u << 20)
#define MAX_WORDS 256

/* Splits line into words (new strings). Returns the count, or -1 for an
   unterminated quote, -2 for too many words. */
static int s_split(const char *line, char **words)
{
    int n = 0;
    const char *p = line;
    while (true) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p || *p == '#')
            return n;
        if (n == MAX_WORDS)
            return -2;
        char *word = malloc(strlen(p) + 1), *w = word;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            if (*p == '\'' || *p == '"') {
                char quote = *p++;
                while (*p && *p != quote)
                    *w++ = *p++;
                if (*p != quote) {
                    free(word);
                    while (n > 0)
                        free(words[--n]);
                    return -1;
                }
                p++;
            } else {
                *w++ = *p++;
            }
        }
        *w = '\0';
        words[n++] = word;
    }
}

/* Reads a line (with its newline) into line, at most size - 1 bytes, NULs
   included (fgets would hide them): its length, 0 at the end. An endless
   input without newlines (/dev/zero) stops at size - 1. */
static size_t s_read_line(FILE *f, char *line, size_t size)
{
    size_t n = 0;
    int c;
    while (n + 1 < size && (c = getc(f)) != EOF) {
        line[n++] = (char) c;
        if (c == '\n')
            break;
    }
    line[n] = '\0';
    return n;
}

batch_t *batch_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the batch file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot read the batch file %s: %s", path, strerror(EISDIR));
        fclose(f);
        return NULL;
    }
    batch_t *self = calloc(1, sizeof *self);
    char *line = malloc(MAX_LINE + 1), *words[MAX_WORDS];
    size_t cap = 0, len, total = 0;
    for (int number = 1; (len = s_read_line(f, line, MAX_LINE + 1)) > 0; number++) {
        total += len;
        if (total > MAX_BYTES || self->count == MAX_JOBS) {
            snprintf(err, errlen, "%s: more than %u jobs or %u MiB: split it into several batches", path,
                     (unsigned) MAX_JOBS, MAX_BYTES >> 20);
            batch_destroy(&self);
            break;
        }
        if (memchr(line, '\0', len)) {
            snprintf(err, errlen, "%s:%d: a NUL byte: not a text file", path, number);
            batch_destroy(&self);
            break;
        }
        if (number == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {   /* a UTF-8 byte-order mark */
            memmove(line, line + 3, len - 2);
            len -= 3;
        }
        /* Control characters would reach the terminal in the messages that
           quote the line (an escape sequence, say): refused, by number. A
           CR only ends a line (CRLF). */
        size_t bad = 0;
        while (bad < len && !((unsigned char) line[bad] < 0x20 && !strchr("\t\r\n", line[bad]))
               && line[bad] != 0x7f && !(line[bad] == '\r' && bad + 1 < len && line[bad + 1] != '\n'))
            bad++;
        if (bad < len) {
            snprintf(err, errlen, "%s:%d: a control character (0x%02x) at byte %zu: not a text line", path, number,
                     (unsigned char) line[bad], bad + 1);
            batch_destroy(&self);
            break;
        }
        if (len > MAX_LINE - 1) {
            snprintf(err, errlen, "%s:%d: line longer than %d bytes", path, number, MAX_LINE - 1);
            batch_destroy(&self);
            break;
        }
        int n = s_split(line, words);
        if (n < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, number, n == -1 ? "unterminated quote" : "too many words");
            batch_destroy(&self);
            break;
        }
        if (n == 0)
            continue;
        if (self->count == cap) {
            cap = cap ? cap * 2 : 8;
            batch_job_t *more = realloc(self->jobs, cap * sizeof *self->jobs);
            if (!more) {
                snprintf(err, errlen, "%s: out of memory", path);
                while (n > 0)
                    free(words[--n]);
                batch_destroy(&self);
                break;
            }
            self->jobs = more;
        }
        batch_job_t *job = &self->jobs[self->count++];
        job->line = number;
        job->argc = n;
        job->argv = malloc((size_t) (n + 1) * sizeof *job->argv);
        memcpy(job->argv, words, (size_t) n * sizeof *words);
        job->argv[n] = NULL;
    }
    if (self && ferror(f)) {
        snprintf(err, errlen, "cannot read the batch file %s: %s", path, strerror(errno));
        batch_destroy(&self);
    }
    free(line);
    fclose(f);
    if (self && self->count == 0) {
        snprintf(err, errlen, "%s: no jobs in the batch file", path);
        batch_destroy(&self);
    }
    return self;
}

void batch_destroy(batch_t **self_p)
{
    batch_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        for (int k = 0; k < self->jobs[i].argc; k++)
            free(self->jobs[i].argv[k]);
        free(self->jobs[i].argv);
    }
    free(self->jobs);
    free(self);
    *self_p = NULL;
}
