/* reorder: releases unit results in index order although they arrive in any
   order, holding only those that came early. */
#ifndef HY_REORDER_H
#define HY_REORDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct reorder_t reorder_t;

/* Called for each result in order; returns 0, or -1 to stop (the error is the
   caller's to remember). data is valid only during the call. */
typedef int (reorder_emit_fn)(void *arg, uint64_t unit, const uint8_t *data, size_t len);

/* Releases units first, first + 1, ... to emit. */
reorder_t *reorder_new(uint64_t first, reorder_emit_fn *emit, void *arg);
/* Frees what it still holds; sets *self_p to NULL; harmless on NULL. */
void reorder_destroy(reorder_t **self_p);

/* Gives the result of unit (each unit once, not below the next to release);
   data is copied if it must wait. Emits every result that is now in order.
   Returns 0, or -1 when emit failed. */
int reorder_put(reorder_t *self, uint64_t unit, const uint8_t *data, size_t len);
/* The next unit to be released. */
uint64_t reorder_next(const reorder_t *self);
/* Results held, waiting for an earlier one. */
size_t reorder_held(const reorder_t *self);
/* Bytes it takes: the results held and its table of slots. */
size_t reorder_memory(const reorder_t *self);

#endif
