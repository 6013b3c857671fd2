/* guard: peers that send bad messages. Every bad message is counted by
   kind; a peer that sends BAN_AFTER of them is banned for a while (by its
   CURVE key, else by its network address, else by its connection), and what
   a banned peer sends is dropped unread. Floods are summarised in one log
   line per GUARD_LOG_MS, never echoed line by line. */
#ifndef HY_GUARD_H
#define HY_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BAN_AFTER      100      /* bad messages before a ban */
#define BAN_FIRST_MS   60000    /* the first ban; each next one of the same peer doubles */
#define BAN_MAX_MS     3600000
#define GUARD_LOG_MS   5000     /* at most one summary line this often */

typedef enum {
    BAD_MALFORMED = 0,    /* not a well-formed message */
    BAD_VERSION,          /* another protocol version */
    BAD_UNSOLICITED,      /* a result for a unit not in flight on its sender, or of another job */
    BAD_REFUSED,          /* a result whose payload its job refused (also counted as rejected) */
    BAD_UNEXPECTED,       /* a command a worker does not send, or anything but HELLO from a stranger */
    BAD_BANNED,           /* dropped unread: its sender is banned */
    BAD_KINDS
} bad_kind_t;

typedef struct guard_t guard_t;

guard_t *guard_new(void);
/* Frees it; sets *self_p to NULL; harmless on NULL. */
void guard_destroy(guard_t **self_p);

/* Whether a peer is banned now: by key (its CURVE key or network address,
   "" when it has none) or by routing id. Cheap while nobody is banned. */
bool guard_banned(guard_t *self, const uint8_t *id, size_t id_len, const char *key);
/* Whether a ban is in force at all (callers skip looking up keys when not). */
bool guard_any_bans(const guard_t *self);
/* Counts a bad message of kind from the peer (named who in the log).
   Returns true when this one got the peer banned: the caller tells it. */
bool guard_offence(guard_t *self, const uint8_t *id, size_t id_len, const char *key, bad_kind_t kind,
                   const char *who);
/* Counts a message dropped for being from a banned peer. */
void guard_dropped(guard_t *self);
/* Whether a stranger (not on the roster) should be told to say HELLO now:
   once a second at most per routing id, so that a flood gets no flood back. */
bool guard_tell_stranger(guard_t *self, const uint8_t *id, size_t id_len);
/* Prints the summary line when one is due (or now_anyway: at the end of a
   job), and forgets bans long over. */
void guard_tick(guard_t *self, bool now_anyway);
/* Bad messages of kind so far. */
uint64_t guard_count(const guard_t *self, bad_kind_t kind);

#endif
