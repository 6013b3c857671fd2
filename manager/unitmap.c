/* unitmap: keys are numbers in the key pointer: hashed, compared, never copied or freed. */
#include "manager/unitmap.h"

static size_t s_hash(const void *key) { return (size_t) (uintptr_t) key * 0x9e3779b97f4a7c15ull; }
static int s_compare(const void *a, const void *b) { return (uintptr_t) a < (uintptr_t) b ? -1 : a != b; }
static void *s_keep(const void *key) { return (void *) key; }
static void s_forget(void **key) { *key = NULL; }

zhashx_t *unitmap_new(zhashx_destructor_fn *destroy)
{
    zhashx_t *map = zhashx_new();
    zhashx_set_destructor(map, destroy);
    zhashx_set_key_hasher(map, s_hash);
    zhashx_set_key_comparator(map, s_compare);
    zhashx_set_key_duplicator(map, s_keep);
    zhashx_set_key_destructor(map, s_forget);
    return map;
}
