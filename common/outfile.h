/* outfile: an output file that appears whole or not at all, and that nothing
   planted in its directory can redirect. A regular file (or a new one) is
   written to an exclusive temporary with an unpredictable name beside it and
   renamed into place; a symlink is written through (beside its target, the
   way `sort -o` does), unless it, or a directory link on the way, was
   planted by another user in a directory others may write; a device or FIFO,
   and this process's own descriptors (/dev/stdout, /dev/fd/N), are written
   directly. */
#ifndef HY_OUTFILE_H
#define HY_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct outfile_t outfile_t;

/* Checks, before any work, that path can be written: its directory exists
   and is writable, its name is not too long, it is not a directory. Returns
   0, or -1 with a one-line reason naming path in err. */
int outfile_check(const char *path, char *err, size_t errlen);

/* The offset of the first control character in path (a byte below 0x20,
   or 0x7f), or -1. A path holding one is refused rather than echoed: a
   newline or an escape sequence in a name would forge lines in the log and
   the summary, or drive the terminal. */
long outfile_control_at(const char *path);

/* Whether path, or a directory on the way to it, is a symlink that another
   user planted in a directory others may write (the rule above): not to be
   followed. */
bool outfile_planted(const char *path);

/* Whether paths a and b end up at the same file (after symlinks). */
bool outfile_same(const char *a, const char *b);

/* Whether path is where standard output goes (-o /dev/stdout, /dev/fd/1, or
   the file stdout was redirected to): status lines then go to stderr, or
   they would end up inside the output. */
bool outfile_is_stdout(const char *path);

/* Where path's chain of symlinks ends (path itself when it is none; the end
   need not exist): 0, or -1 when it cannot be followed. */
int outfile_target(const char *path, char *target, size_t len);

/* How long outfile_open waits for a descriptor when the process has none
   left (EMFILE, ENFILE), from now on: 0 (the default) fails at once. While
   it waits it calls waiting(arg, ms waited so far), if not NULL, before each
   look: the callback may give descriptors back (first call: 0 ms), and ends
   the wait by returning false. For an output written once the work is done,
   when nothing else waits on this thread; a process-wide setting. */
void outfile_patience(int ms, bool (*waiting)(void *arg, int waited_ms), void *arg);

/* Opens path for writing (see above). Caller owns the result and ends it
   with outfile_close. NULL with a one-line reason in err. */
outfile_t *outfile_open(const char *path, char *err, size_t errlen);
/* The same for a name this program chose rather than one it was given (a
   frame in --frames-dir): whatever is there (a symlink, a FIFO, a file) is
   replaced by the new file, never followed or written into. */
outfile_t *outfile_open_chosen(const char *path, char *err, size_t errlen);
/* The stream to write to. */
FILE *outfile_stream(outfile_t *self);
/* For an output written a record at a time (--json's line a job): flushes
   what was written, and the first time puts the file in place of the target
   (synced, renamed), so that a process killed later leaves every record
   published so far. Later records are appended to it, each flush in one
   write when the stream's buffer holds it; a flush that fails is cut off
   again, so the file ends with a whole record. Returns 0, or -1 once a
   write has failed (outfile_close then says so, and keeps what was
   published). */
int outfile_publish(outfile_t *self);
/* Records that a write failed with errno (for writers that do not use the
   stream's own error flag); the first one is kept. */
void outfile_failed(outfile_t *self, int errnum);
/* The first write error recorded (errno), or 0. */
int outfile_error(const outfile_t *self);
/* With commit: flushes, syncs and puts the file in place; without: removes
   the temporary (a device or FIFO is left as it is). Returns 0, or -1 with a
   one-line reason naming the file and the system's error in err. Sets
   *self_p to NULL; harmless on NULL. */
int outfile_close(outfile_t **self_p, bool commit, char *err, size_t errlen);

#endif
