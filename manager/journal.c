/* journal: an append-only file.

     header:  "HYADESJ1", u32 body length, body, u32 CRC-32 of the body
              body = kind (u8 length + bytes), params (u32 length + bytes), units u64
     record:  "HYRC", u64 unit, u32 length, payload, u32 CRC-32 of unit, length
              and payload

   All integers big-endian. Reading stops at the first record that is cut short
   or fails its checksum; the file is cut there and appending resumes. */
#include "manager/journal.h"
#include "common/bytes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_RECORD (64u << 20)

struct journal_t {
    FILE *file;
    char *path;
    bool failed;   /* a write failed: stop trying, report at flush */
};

/* The header body of a job, in a new buffer. */
static uint8_t *s_header_body(const char *kind, const uint8_t *params, size_t params_len, uint64_t units, size_t *len)
{
    size_t kind_len = strlen(kind);
    *len = 1 + kind_len + 4 + params_len + 8;
    uint8_t *body = malloc(*len);
    writer_t w = {body};
    writer_be(&w, kind_len, 1);
    writer_bytes(&w, kind, kind_len);
    writer_be(&w, params_len, 4);
    writer_bytes(&w, params, params_len);
    writer_be(&w, units, 8);
    return body;
}

static uint32_t s_crc(uint32_t crc, const uint8_t *data, size_t len)
{
    return (uint32_t) crc32(crc, data, (uInt) len);
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
    }
    free(body);
    return same ? 1 : -1;
}

int journal_check(const char *path, const char *kind, const uint8_t *params, size_t params_len, uint64_t units,
                  char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno)), -1);
    size_t len;
    uint8_t *want = s_header_body(kind, params, params_len, units, &len);
    int rc = s_check_header(f, want, len, path, err, errlen);
    free(want);
    fclose(f);
    return rc < 0 ? -1 : 0;
}

journal_t *journal_open(const char *path, const char *kind, const uint8_t *params, size_t params_len,
                        uint64_t units, journal_replay_fn *replay, void *arg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r+b");
    if (!f && errno == ENOENT)
        f = fopen(path, "w+b");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t want_len;
    uint8_t *want = s_header_body(kind, params, params_len, units, &want_len);
    int rc = s_check_header(f, want, want_len, path, err, errlen);
    if (rc < 0) {
        free(want);
        fclose(f);
        return NULL;
    }
    if (rc == 0) {   /* a new journal: its header */
        uint8_t head[12];
        writer_t w = {head};
        writer_bytes(&w, "HYADESJ1", 8);
        writer_be(&w, want_len, 4);
        uint8_t crc[4];
        writer_t c = {crc};
        writer_be(&c, s_crc(0, want, want_len), 4);
        rewind(f);
        if (fwrite(head, 1, sizeof head, f) != sizeof head || fwrite(want, 1, want_len, f) != want_len
            || fwrite(crc, 1, 4, f) != 4 || fflush(f) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            free(want);
            fclose(f);
            return NULL;
        }
    }
    free(want);

    /* Replay records up to the first one that is cut short or damaged. */
    long good = ftell(f);
    uint8_t *payload = NULL;
    while (rc == 1) {
        uint8_t head[16];
        if (!s_read(f, head, sizeof head) || memcmp(head, "HYRC", 4) != 0)
            break;
        reader_t r = reader_new(head + 4, 12);
        uint64_t unit = reader_be(&r, 8);
        size_t len = (size_t) reader_be(&r, 4);
        if (len > MAX_RECORD)
            break;
        payload = realloc(payload, len + 4);
        if (!s_read(f, payload, len + 4))
            break;
        reader_t c = reader_new(payload + len, 4);
        if (reader_be(&c, 4) != s_crc(s_crc(0, head + 4, 12), payload, len))
            break;
        replay(arg, unit, payload, len);
        good = ftell(f);
    }
    free(payload);
    if (fseek(f, good, SEEK_SET) != 0 || ftruncate(fileno(f), good) != 0) {
        snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
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
        || fwrite(crc, 1, 4, self->file) != 4)
        self->failed = true;
    return self->failed ? -1 : 0;
}

int journal_flush(journal_t *self)
{
    if (!self->failed && (fflush(self->file) != 0 || fdatasync(fileno(self->file)) != 0))
        self->failed = true;
    return self->failed ? -1 : 0;
}

void journal_close(journal_t **self_p)
{
    journal_t *self = *self_p;
    if (!self)
        return;
    journal_flush(self);
    fclose(self->file);
    free(self->path);
    free(self);
    *self_p = NULL;
}
