/* bytes: bounds-checked big-endian readers and writers for wire and parameter blocks. */
#ifndef HY_BYTES_H
#define HY_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Reads from [p, end). The first read past the end sets bad and returns 0 or
   NULL; every later read does the same, so a decoder checks bad once. */
typedef struct {
    const uint8_t *p, *end;
    bool bad;
} reader_t;

static inline reader_t reader_new(const uint8_t *data, size_t len)
{
    return (reader_t) {data, data + len, data == NULL && len > 0};
}

static inline const uint8_t *reader_take(reader_t *r, size_t n)
{
    if (r->bad || (size_t) (r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

/* An n-byte (n <= 8) big-endian unsigned integer. */
static inline uint64_t reader_be(reader_t *r, size_t n)
{
    const uint8_t *at = reader_take(r, n);
    uint64_t v = 0;
    for (size_t i = 0; at && i < n; i++)
        v = (v << 8) | at[i];
    return v;
}

static inline double reader_double(reader_t *r)
{
    uint64_t bits = reader_be(r, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* True when every byte was read and none was missing. */
static inline bool reader_done(const reader_t *r) { return !r->bad && r->p == r->end; }

/* Writes into a buffer the caller sized in advance. */
typedef struct {
    uint8_t *p;
} writer_t;

static inline void writer_be(writer_t *w, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w->p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
    w->p += n;
}

static inline void writer_double(writer_t *w, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    writer_be(w, bits, 8);
}

static inline void writer_bytes(writer_t *w, const void *data, size_t n)
{
    if (n)
        memcpy(w->p, data, n);
    w->p += n;
}

#endif
