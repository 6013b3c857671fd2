/* guard: counters, a small table of recent offenders and a table of bans. */
#include "manager/guard.h"
#include "common/log.h"

#include <czmq.h>
#include <inttypes.h>

#define OFFENDERS 256           /* peers whose bad messages are being counted */
#define STRANGERS 256           /* strangers recently told to say HELLO */

typedef struct {
    uint8_t id[256];
    size_t id_len;
    char key[64];               /* CURVE key or address, "" if none */
    unsigned count;
} offender_t;

typedef struct {
    uint8_t id[256];
    size_t id_len;
    int64_t told_ms;
} stranger_t;

typedef struct {
    int64_t until_ms;           /* banned until then */
    int64_t length_ms;          /* this ban's length: the next one doubles it */
} ban_t;

struct guard_t {
    uint64_t counts[BAD_KINDS];     /* all time */
    uint64_t logged[BAD_KINDS];     /* at the last summary line */
    offender_t offenders[OFFENDERS];
    size_t next_offender;
    stranger_t strangers[STRANGERS];
    size_t next_stranger;
    zhashx_t *bans;                 /* key (or hex routing id) -> ban_t */
    size_t active;                  /* bans in force at the last look */
    int64_t next_log_ms;
    int64_t last_log_ms;            /* when the last summary was due */
    log_limit_t ban_log;            /* "banned" lines: a few per summary interval */
};

static void s_ban_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* The ban key of a peer: its key, else its routing id in hex. */
static void s_ban_key(const uint8_t *id, size_t id_len, const char *key, char out[600])
{
    if (key && *key) {
        snprintf(out, 600, "k:%s", key);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    size_t n = id_len < 256 ? id_len : 256;
    out[0] = 'i', out[1] = ':';
    for (size_t i = 0; i < n; i++) {
        out[2 + 2 * i] = hex[id[i] >> 4];
        out[3 + 2 * i] = hex[id[i] & 15];
    }
    out[2 + 2 * n] = '\0';
}

guard_t *guard_new(void)
{
    guard_t *self = calloc(1, sizeof *self);
    self->last_log_ms = zclock_mono();
    self->ban_log = (log_limit_t) {.interval_ms = GUARD_LOG_MS, .burst = 5};
    self->bans = zhashx_new();
    zhashx_set_destructor(self->bans, s_ban_free);
    return self;
}

void guard_destroy(guard_t **self_p)
{
    guard_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->bans);
    free(self);
    *self_p = NULL;
}

bool guard_any_bans(const guard_t *self) { return self->active > 0; }

static bool s_banned_key(guard_t *self, const char *name)
{
    ban_t *ban = zhashx_lookup(self->bans, name);
    return ban && zclock_mono() < ban->until_ms;
}

bool guard_banned(guard_t *self, const uint8_t *id, size_t id_len, const char *key)
{
    if (!self->active)
        return false;
    char name[600];
    s_ban_key(id, id_len, NULL, name);
    if (s_banned_key(self, name))
        return true;
    if (key && *key) {
        s_ban_key(id, id_len, key, name);
        return s_banned_key(self, name);
    }
    return false;
}

bool guard_offence(guard_t *self, const uint8_t *id, size_t id_len, const char *key, bad_kind_t kind,
                   const char *who)
{
    self->counts[kind]++;
    offender_t *o = NULL;
    for (size_t i = 0; i < OFFENDERS && !o; i++)
        if (self->offenders[i].id_len == id_len && memcmp(self->offenders[i].id, id, id_len) == 0)
            o = &self->offenders[i];
    if (!o) {   /* a new one replaces the oldest entry */
        o = &self->offenders[self->next_offender++ % OFFENDERS];
        memcpy(o->id, id, id_len);
        o->id_len = id_len;
        snprintf(o->key, sizeof o->key, "%s", key ? key : "");
        o->count = 0;
    }
    if (++o->count < BAN_AFTER)
        return false;
    o->count = 0;
    char name[600];
    s_ban_key(id, id_len, o->key, name);
    ban_t *ban = zhashx_lookup(self->bans, name);
    if (!ban) {
        ban = calloc(1, sizeof *ban);
        ban->length_ms = BAN_FIRST_MS;
        zhashx_insert(self->bans, name, ban);
    } else {
        ban->length_ms = ban->length_ms * 2 > BAN_MAX_MS ? BAN_MAX_MS : ban->length_ms * 2;
    }
    ban->until_ms = zclock_mono() + ban->length_ms;
    self->active++;
    uint64_t held;
    if (log_limit(&self->ban_log, &held))
        log_warn("banned %s for %" PRId64 " s after %d bad messages (%s)%s", who, ban->length_ms / 1000, BAN_AFTER,
                 o->key[0] ? o->key : "its connection", log_held(held));
    return true;
}

void guard_dropped(guard_t *self) { self->counts[BAD_BANNED]++; }

bool guard_tell_stranger(guard_t *self, const uint8_t *id, size_t id_len)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < STRANGERS; i++) {
        stranger_t *s = &self->strangers[i];
        if (s->id_len == id_len && memcmp(s->id, id, id_len) == 0) {
            if (now - s->told_ms < 1000)
                return false;
            s->told_ms = now;
            return true;
        }
    }
    stranger_t *s = &self->strangers[self->next_stranger++ % STRANGERS];
    memcpy(s->id, id, id_len);
    s->id_len = id_len;
    s->told_ms = now;
    return true;
}

void guard_tick(guard_t *self, bool now_anyway)
{
    int64_t now = zclock_mono();
    if (now < self->next_log_ms && !now_anyway)
        return;
    self->next_log_ms = now + GUARD_LOG_MS;
    int64_t since = self->last_log_ms;
    uint64_t d[BAD_KINDS], total = 0;
    for (int k = 0; k < BAD_KINDS; k++) {
        d[k] = self->counts[k] - self->logged[k];
        total += d[k];
        self->logged[k] = self->counts[k];
    }
    self->last_log_ms = now;
    if (total)
        log_warn("dropped %" PRIu64 " bad message%s or result%s in the last %d s: %" PRIu64 " malformed, %" PRIu64
                 " of another protocol version, %" PRIu64 " unsolicited results, %" PRIu64 " refused results, %" PRIu64
                 " unexpected, %" PRIu64 " from banned peers", total, total == 1 ? "" : "s", total == 1 ? "" : "s",
                 (int) ((now - since + 999) / 1000), d[BAD_MALFORMED], d[BAD_VERSION], d[BAD_UNSOLICITED],
                 d[BAD_REFUSED], d[BAD_UNEXPECTED], d[BAD_BANNED]);
    /* Count the bans in force, so that the cheap path comes back when none
       is; forget those over long enough not to double the next one. */
    size_t active = 0;
    zlistx_t *stale = zlistx_new();   /* copies of the keys to forget */
    zlistx_set_duplicator(stale, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor(stale, (zlistx_destructor_fn *) zstr_free);
    for (ban_t *ban = zhashx_first(self->bans); ban; ban = zhashx_next(self->bans)) {
        active += now < ban->until_ms;
        if (now > ban->until_ms + BAN_MAX_MS)
            zlistx_add_end(stale, (void *) zhashx_cursor(self->bans));
    }
    for (const char *key = zlistx_first(stale); key; key = zlistx_next(stale))
        zhashx_delete(self->bans, key);
    zlistx_destroy(&stale);
    self->active = active;
}

uint64_t guard_count(const guard_t *self, bad_kind_t kind) { return self->counts[kind]; }
