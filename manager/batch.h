/* batch: a file of job command lines (one a line, '#' comments), run one
   after the other on the same workers (hyades-manager --batch FILE). */
#ifndef HY_BATCH_H
#define HY_BATCH_H

#include <stddef.h>

/* One job: its line in the file and its words ("mandelbrot", "--width", "9"). */
typedef struct {
    int line;
    int argc;
    char **argv;   /* NULL-terminated; owned by the batch */
} batch_job_t;

typedef struct {
    batch_job_t *jobs;
    size_t count;
} batch_t;

/* Reads path: blank lines and comments (from a '#' that starts a word to the
   end of the line) are skipped; words are split at blanks, with '...' and
   "..." quoting. Caller owns the batch. NULL with a one-line reason in err
   (naming the line of an unterminated quote). */
batch_t *batch_load(const char *path, char *err, size_t errlen);
/* Frees it; sets *self_p to NULL; harmless on NULL. */
void batch_destroy(batch_t **self_p);

#endif
