/* unitmap: a zhashx keyed by unit number, for the few units that need more
   than the run table's bytes (avoid lists, answers under verification). */
#ifndef HY_UNITMAP_H
#define HY_UNITMAP_H

#include <czmq.h>
#include <stdint.h>

/* The key of unit: unit + 1 in the key pointer itself (never NULL). */
#define UNIT_KEY(unit) ((void *) (uintptr_t) ((unit) + 1))
/* The unit of a key. */
#define KEY_UNIT(key) ((uint64_t) (uintptr_t) (key) - 1)

/* A new map whose items destroy frees; caller owns it (zhashx_destroy). */
zhashx_t *unitmap_new(zhashx_destructor_fn *destroy);

#endif
