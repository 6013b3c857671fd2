/* journal: a durable log of finished units, so that a manager killed halfway
   resumes where it was. Records are checksummed; a torn last record (a crash
   in the middle of a write) is detected, ignored and overwritten. */
#ifndef HY_JOURNAL_H
#define HY_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct journal_t journal_t;

/* Called for each valid record when a journal is reopened. */
typedef void (journal_replay_fn)(void *arg, uint64_t unit, const uint8_t *data, size_t len);

/* Checks whether path can serve the job (kind, params, units) run with
   --verify fraction verify (0: without): absent, empty, or a journal of
   exactly that job and verify (results accepted unchecked, or without
   --verify, must not stand in a verified run). Returns 0, or -1 with a
   one-line reason. */
int journal_check(const char *path, const char *kind, const uint8_t *params, size_t params_len, uint64_t units,
                  double verify, char *err, size_t errlen);

/* Opens path for the job, creating it or replaying its records through
   replay (in the order written) and cutting off a torn tail. Caller owns
   the journal. NULL with a one-line reason in err. */
journal_t *journal_open(const char *path, const char *kind, const uint8_t *params, size_t params_len,
                        uint64_t units, double verify, journal_replay_fn *replay, void *arg, char *err, size_t errlen);
/* Appends one finished unit (buffered until the next flush). Returns 0 or -1. */
int journal_append(journal_t *self, uint64_t unit, const uint8_t *data, size_t len);
/* Writes what is buffered and waits until the disk has it. Returns 0 or -1. */
int journal_flush(journal_t *self);
/* After a failed append or flush: "cannot write the journal PATH: reason". */
const char *journal_error(const journal_t *self);
/* Flushes and closes; sets *self_p to NULL; harmless on NULL. */
void journal_close(journal_t **self_p);

#endif
