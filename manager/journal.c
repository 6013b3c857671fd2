/* journal: an append-only file.

     header:  "HYADESJ1", u32 body length, body, u32 CRC-32 of the body
              body = kind (u8 length + bytes), params (u32 length + bytes), units u64,
                     verify u64 (the bits of --verify's fraction as a double; 0: none)
     record:  "HYRC", u64 unit, u32 length, payload, u32 CRC-32 of unit, length
              and payload

   All integers big-endian. On reopening, every record that passes its
   checksum is replayed. Damage in the middle (a flipped bit, a lost block)
   is skipped by looking for the next record that checks out: the records
   after it are kept, the damaged units computed again, the file rewritten
   without the damage, and the damage reported. A torn last record (a crash
   in the middle of a write) is cut off.

   One manager at a time: it holds an exclusive flock(2) on the journal from
   its open to its close (a repaired journal is locked before it takes the
   old one's name), and a second manager given the same journal is refused
   instead of computing the whole job beside the first. */
#include "manager/journal.h"
#include "common/bytes.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_RECORD (64u << 20)

struct journal_t {
    FILE *file;
    char *path;
    bool failed;   /* a write failed: stop trying, report at flush */
    bool moved;    /* path no longer names our file (said once) */
    char error[600];   /* then: "cannot write PATH: reason" */
};

/* The header body of a job, in a new buffer. */
static uint8_t *s_header_body(const char *kind, const uint8_t *params, size_t params_len, uint64_t units,
                              double verify, size_t *len)
{
    size_t kind_len = strlen(kind);
    *len = 1 + kind_len + 4 + params_len + 8 + 8;
    uint8_t *body = malloc(*len);
    writer_t w = {body};
    writer_be(&w, kind_len, 1);
    writer_bytes(&w, kind, kind_len);
    writer_be(&w, params_len, 4);
    writer_bytes(&w, params, params_len);
    writer_be(&w, units, 8);
    uint64_t bits;
    memcpy(&bits, &verify, sizeof bits);
    writer_be(&w, verify > 0 ? bits : 0, 8);
    return body;
}

static uint32_t s_crc(uint32_t crc, const uint8_t *data, size_t len)
{
    return (uint32_t) crc32(crc, data, (uInt) len);
}

/* The whole header of a job (magic, length, body, CRC), in a new buffer. */
static uint8_t *s_header(const uint8_t *body, size_t body_len, size_t *len)
{
    *len = 12 + body_len + 4;
    uint8_t *head = malloc(*len);
    writer_t w = {head};
    writer_bytes(&w, "HYADESJ1", 8);
    writer_be(&w, body_len, 4);
    writer_bytes(&w, body, body_len);
    writer_be(&w, s_crc(0, body, body_len), 4);
    return head;
}

/* Whether f holds only the start of head: a header cut short by a crash
   while it was written. Leaves f at its start. */
static bool s_cut_header(FILE *f, const uint8_t *head, size_t head_len)
{
    struct stat st;
    bool cut = false;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && (size_t) st.st_size < head_len) {
        uint8_t *start = malloc((size_t) st.st_size);
        cut = fread(start, 1, (size_t) st.st_size, f) == (size_t) st.st_size
           && memcmp(start, head, (size_t) st.st_size) == 0;
        free(start);
    }
    rewind(f);
    return cut;
}

/* Reads exactly len bytes; false at end of file or on error. */
static bool s_read(FILE *f, void *buf, size_t len) { return fread(buf, 1, len, f) == len; }

/* Checks the header of an open file against the job. 1: matches (file
   positioned after it); 0: the file is empty; -1: another job or garbage. */
static int s_check_header(FILE *f, const uint8_t *want, size_t want_len, const char *path, char *err, size_t errlen)
{
    uint8_t head[12];
    size_t got = fread(head, 1, sizeof head, f);
    if (got == 0 && feof(f))
        return 0;
    if (got < sizeof head || memcmp(head, "HYADESJ1", 8) != 0) {
        snprintf(err, errlen, "%s is not a hyades journal; remove it or choose another --journal", path);
        return -1;
    }
    reader_t r = reader_new(head + 8, 4);
    size_t len = (size_t) reader_be(&r, 4);
    uint8_t *body = len <= MAX_RECORD ? malloc(len + 4) : NULL;
    bool ok = body && s_read(f, body, len + 4);
    if (ok) {
        reader_t c = reader_new(body + len, 4);
        ok = reader_be(&c, 4) == s_crc(0, body, len);
    }
    if (!ok) {
        free(body);
        snprintf(err, errlen, "%s: damaged journal header; remove it or choose another --journal", path);
        return -1;
    }
    bool same = len == want_len && memcmp(body, want, len) == 0;
    if (!same) {
        reader_t b = reader_new(body, len);
        size_t kind_len = (size_t) reader_be(&b, 1);
        const uint8_t *kind = reader_take(&b, kind_len);
        snprintf(err, errlen, "%s is the journal of another job (%s%.*s); remove it or choose another --journal",
                 path, kind ? "" : "unknown", kind ? (int) kind_len : 0, kind ? (const char *) kind : "");
        if (kind && kind_len == (size_t) want[0] && memcmp(kind, want + 1, kind_len) == 0)
            snprintf(err, errlen, "%s is the journal of a %.*s job with other options; remove it or choose another --journal",
                     path, (int) kind_len, (const char *) kind);
        if (len == want_len && memcmp(body, want, len - 8) == 0) {   /* the same job, another --verify */
            reader_t v = reader_new(body + len - 8, 8);
            uint64_t bits = reader_be(&v, 8);
            double was;
            memcpy(&was, &bits, sizeof was);
            if (bits)
                snprintf(err, errlen, "%s was written with --verify %g: resume it with the same --verify, or remove it",
                         path, was);
            else
                snprintf(err, errlen, "%s was written without --verify, whose results it cannot tell apart: resume it"
                         " without --verify, or remove it", path);
        }
    }
    free(body);
    return same ? 1 : -1;
}

/* Opens the journal without following a link at its name (a journal is
   state, not an output to write through), and only when it is our own
   regular file that nobody else can write: a journal planted by another
   user would be replayed into the output. mode "rb" or "r+b"; with create,
   a missing journal is made (0600). NULL with errno, or with a reason in
   err (errno 0). */
static FILE *s_open(const char *path, const char *mode, bool create, char *err, size_t errlen)
{
    int flags = (mode[1] == '+' ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = open(path, flags | (create ? O_CREAT : 0), 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            snprintf(err, errlen, "--journal %s is a symbolic link; name the journal itself", path);
        return NULL;
    }
    struct stat st, now;
    const char *why = fstat(fd, &st) != 0 ? strerror(errno)
                    : !S_ISREG(st.st_mode) ? "is not a regular file"
                    : st.st_uid != geteuid() ? "belongs to another user: it cannot be trusted"
                    : (st.st_mode & 022) ? "can be written by other users: it cannot be trusted"
                    : NULL;
    /* Writing takes the lock; checking only looks whether someone has it.
       A journal repaired (renamed over) between the open and the lock is
       not the one at path any more: open it again. */
    if (!why && flock(fd, (mode[1] == '+' ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            why = "is in use by another manager";
        else if (mode[1] == '+')   /* a file system without locks: run as before, unguarded */
            log_warn("journal %s cannot be locked (%s): nothing keeps a second manager off it", path,
                     strerror(errno));
    } else if (!why && (lstat(path, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
        close(fd);
        return s_open(path, mode, create, err, errlen);
    }
    if (why) {
        snprintf(err, errlen, "--journal %s %s", path, why);
        close(fd);
        errno = 0;
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, mode);
    if (!f)
        close(fd);
    return f;
}

int journal_check(const char *path, const char *kind, const uint8_t *params, size_t params_len, uint64_t units,
                  double verify, char *err, size_t errlen)
{
    err[0] = '\0';
    FILE *f = s_open(path, "rb", false, err, errlen);
    if (!f && !err[0] && errno == ENOENT)
        return 0;
    if (!f) {
        if (!err[0])
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len, head_len;
    uint8_t *want = s_header_body(kind, params, params_len, units, verify, &len);
    uint8_t *head = s_header(want, len, &head_len);
    int rc = s_cut_header(f, head, head_len) ? 0 : s_check_header(f, want, len, path, err, errlen);
    free(head);
    free(want);
    fclose(f);
    return rc < 0 ? -1 : 0;
}

/* The size of the valid record at p in [data, data + len), or 0. */
static size_t s_record_at(const uint8_t *data, size_t len, size_t p)
{
    if (len - p < 20 || memcmp(data + p, "HYRC", 4) != 0)
        return 0;
    reader_t r = reader_new(data + p + 4, 12);
    reader_be(&r, 8);
    size_t payload = (size_t) reader_be(&r, 4);
    if (payload > MAX_RECORD || len - p - 20 < payload)
        return 0;
    reader_t c = reader_new(data + p + 16 + payload, 4);
    if (reader_be(&c, 4) != s_crc(s_crc(0, data + p + 4, 12), data + p + 16, payload))
        return 0;
    return 20 + payload;
}

/* The next valid record after p, or len when there is none. */
static size_t s_next_record(const uint8_t *data, size_t len, size_t p)
{
    for (size_t q = p + 1; q + 20 <= len; q++) {
        const uint8_t *h = memchr(data + q, 'H', len - q - 19);
        if (!h)
            break;
        q = (size_t) (h - data);
        if (s_record_at(data, len, q))
            return q;
    }
    return len;
}

/* The name of a repair's temporary beside path: ".NAME.repair.", then
   suffix ("XXXXXX" for mkstemp, or ""), in the journal's directory. */
static void s_repair_name(const char *path, const char *suffix, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, len, "%.*s.%s.repair.%s", slash ? (int) (slash - path + 1) : 0, path, slash ? slash + 1 : path,
             suffix);
}

/* Removes the temporaries of repairs cut short (a manager killed while it
   rewrote the journal): only a manager that holds the journal's lock
   repairs it. A file is taken for one only when nothing holds a lock on it
   and it is empty or starts with this job's header (head): a file that
   merely has such a name is left. */
static void s_sweep_repairs(const char *path, const uint8_t *head, size_t head_len)
{
    char prefix[PATH_MAX + 32], dir[PATH_MAX];
    s_repair_name(path, "", prefix, sizeof prefix);
    const char *slash = strrchr(prefix, '/'), *name = slash ? slash + 1 : prefix;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int) (slash - prefix) + 1 : 1, slash ? prefix : ".");
    DIR *d = opendir(dir);
    uint8_t *start = malloc(head_len);
    for (struct dirent *e; d && start && (e = readdir(d));) {
        if (strncmp(e->d_name, name, strlen(name)) != 0 || strlen(e->d_name) != strlen(name) + 6)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        bool ours = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()
                 && flock(fd, LOCK_EX | LOCK_NB) == 0
                 && (st.st_size == 0 || (pread(fd, start, head_len, 0) == (ssize_t) head_len
                                         && memcmp(start, head, head_len) == 0));
        if (ours && unlinkat(dirfd(d), e->d_name, 0) == 0)
            log_warn("journal %s: removed %s, left by a repair cut short", path, e->d_name);
        if (fd >= 0)
            close(fd);
    }
    free(start);
    if (d)
        closedir(d);
}

/* Writes the header and the given records of data to a new file beside path
   and puts it in place of path, locked before it takes the name. Returns the
   new file, open for writing, or NULL with err. */
static FILE *s_rewrite(const char *path, const uint8_t *head, size_t head_len, const uint8_t *data,
                       const size_t (*spans)[2], size_t span_count, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 32];
    s_repair_name(path, "XXXXXX", tmp, sizeof tmp);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        (void) flock(fd, LOCK_EX | LOCK_NB);   /* new: nobody else has it (or the file system has no locks) */
    FILE *f = fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? fdopen(fd, "r+b") : NULL;
    bool ok = f && fwrite(head, 1, head_len, f) == head_len;
    for (size_t i = 0; ok && i < span_count; i++)
        ok = fwrite(data + spans[i][0], 1, spans[i][1] - spans[i][0], f) == spans[i][1] - spans[i][0];
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0 && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
        unlink(tmp);
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        f = NULL;
    }
    return f;
}

/* Replays every valid record after the header (which ends at start), skips
   damage, and leaves the file holding exactly the valid records. Returns 0,
   1 when the file was rewritten (*repaired is the new one, to go on in), or
   -1 with err. */
static int s_replay_all(FILE *f, const char *path, size_t start, const uint8_t *head, size_t head_len,
                        journal_replay_fn *replay, void *arg, FILE **repaired, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = (size_t) st.st_size;
    if (len <= start)
        return 0;
    const uint8_t *data = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    if (data == MAP_FAILED) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t (*spans)[2] = NULL, span_count = 0, span_cap = 0;   /* runs of valid records */
    size_t p = start, damaged = 0, first_damage = 0, records = 0, end = start;
    while (p < len) {
        size_t size = s_record_at(data, len, p);
        if (size) {
            reader_t r = reader_new(data + p + 4, 12);
            uint64_t unit = reader_be(&r, 8);
            replay(arg, unit, data + p + 16, size - 20);
            records++;
            if (span_count && spans[span_count - 1][1] == p) {
                spans[span_count - 1][1] = p + size;
            } else {
                if (span_count == span_cap) {
                    span_cap = span_cap ? 2 * span_cap : 8;
                    spans = realloc(spans, span_cap * sizeof *spans);
                }
                spans[span_count][0] = p;
                spans[span_count++][1] = p + size;
            }
            p += size;
            end = p;
            continue;
        }
        size_t next = s_next_record(data, len, p);
        if (next == len) {
            /* Nothing valid after p: a torn tail (a record cut short by a
               crash), cut off silently, or a whole record that fails its
               checksum: damage, said below. */
            if (len - p >= 20 && memcmp(data + p, "HYRC", 4) == 0) {
                reader_t r = reader_new(data + p + 12, 4);
                size_t payload = (size_t) reader_be(&r, 4);
                if (payload <= MAX_RECORD && len - p - 20 >= payload) {
                    if (!damaged)
                        first_damage = p;
                    damaged += len - p;
                }
            }
            break;
        }
        if (!damaged)
            first_damage = p;
        damaged += next - p;
        p = next;
    }
    int rc = 0;
    if (damaged) {
        log_warn("journal %s: %zu damaged bytes from offset %zu skipped; %zu valid records kept (the damaged units "
                 "are computed again)", path, damaged, first_damage, records);
        *repaired = s_rewrite(path, head, head_len, data, (const size_t (*)[2]) spans, span_count, err, errlen);
        rc = *repaired ? 1 : -1;
    } else if (end < len) {
        if (ftruncate(fileno(f), (off_t) end) != 0) {
            snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    munmap((void *) data, len);
    free(spans);
    return rc;
}

journal_t *journal_open(const char *path, const char *kind, const uint8_t *params, size_t params_len,
                        uint64_t units, double verify, journal_replay_fn *replay, void *arg, char *err, size_t errlen)
{
    err[0] = '\0';
    FILE *f = s_open(path, "r+b", true, err, errlen);
    if (!f) {
        if (!err[0])
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t want_len;
    uint8_t *want = s_header_body(kind, params, params_len, units, verify, &want_len);
    size_t want_head_len;
    uint8_t *want_head = s_header(want, want_len, &want_head_len);
    if (flock(fileno(f), LOCK_EX | LOCK_NB) == 0)   /* ours (where locks work) */
        s_sweep_repairs(path, want_head, want_head_len);
    /* A header cut short by a crash while it was being written: start afresh. */
    if (s_cut_header(f, want_head, want_head_len) && ftruncate(fileno(f), 0) != 0)
        log_warn("journal %s: cannot cut its unfinished header: %s", path, strerror(errno));
    int rc = s_check_header(f, want, want_len, path, err, errlen);
    free(want);
    if (rc < 0) {
        free(want_head);
        fclose(f);
        return NULL;
    }
    if (rc == 0) {   /* a new journal: its header */
        rewind(f);
        if (fwrite(want_head, 1, want_head_len, f) != want_head_len || fflush(f) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            free(want_head);
            fclose(f);
            return NULL;
        }
    }

    long start = ftell(f);
    FILE *repaired = NULL;
    rc = s_replay_all(f, path, (size_t) start, want_head, want_head_len, replay, arg, &repaired, err, errlen);
    free(want_head);
    if (rc == 1) {
        fclose(f);
        f = repaired;
    }
    if (rc < 0) {
        fclose(f);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    journal_t *self = calloc(1, sizeof *self);
    self->file = f;
    self->path = strdup(path);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    return self;
}

int journal_append(journal_t *self, uint64_t unit, const uint8_t *data, size_t len)
{
    if (self->failed)
        return -1;
    uint8_t head[16], crc[4];
    writer_t w = {head};
    writer_bytes(&w, "HYRC", 4);
    writer_be(&w, unit, 8);
    writer_be(&w, len, 4);
    writer_t c = {crc};
    writer_be(&c, s_crc(s_crc(0, head + 4, 12), data, len), 4);
    if (fwrite(head, 1, sizeof head, self->file) != sizeof head || fwrite(data, 1, len, self->file) != len
        || fwrite(crc, 1, 4, self->file) != 4) {
        self->failed = true;
        snprintf(self->error, sizeof self->error, "cannot write the journal %s: %s", self->path, strerror(errno));
    }
    return self->failed ? -1 : 0;
}

/* What was appended, on disk. */
static int s_sync(journal_t *self)
{
    if (!self->failed && (fflush(self->file) != 0 || fdatasync(fileno(self->file)) != 0)) {
        self->failed = true;
        snprintf(self->error, sizeof self->error, "cannot write the journal %s: %s", self->path, strerror(errno));
    }
    return self->failed ? -1 : 0;
}

int journal_flush(journal_t *self)
{
    s_sync(self);
    /* Removed or replaced under us: what we write is kept nowhere a resume
       would look. The job goes on; the operator is told. */
    struct stat ours, there;
    if (!self->moved && fstat(fileno(self->file), &ours) == 0
        && (lstat(self->path, &there) != 0 || there.st_ino != ours.st_ino || there.st_dev != ours.st_dev)) {
        self->moved = true;
        log_warn("journal %s was removed or replaced while this manager wrote it: this run's records are not in it,"
                 " and a resume will compute them again", self->path);
    }
    return self->failed ? -1 : 0;
}

const char *journal_error(const journal_t *self) { return self->failed ? self->error : ""; }

void journal_close(journal_t **self_p)
{
    journal_t *self = *self_p;
    if (!self)
        return;
    s_sync(self);   /* (a tainted journal is removed before it is closed) */
    fclose(self->file);
    free(self->path);
    free(self);
    *self_p = NULL;
}
