/* protocol: the wire codec, every message between manager and workers in and out.
   The format is specified in common/PROTOCOL.md; this file is its only reader. */
#ifndef HY_PROTOCOL_H
#define HY_PROTOCOL_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HY_PROTOCOL_VERSION 3
#define HY_RELEASE          "0.2.0"       /* this hyades release, announced in HELLO */
#define HY_MAX_NAME         255           /* worker name, job kind, reason: bytes */
#define HY_MAX_RELEASE      32            /* release string in HELLO: bytes */
#define HY_MAX_KINDS        32            /* kinds listed in one HELLO */
#define HY_MAX_THREADS      1024          /* threads a worker may announce */
#define HY_MAX_LIVENESS     1000          /* liveness a manager may announce */
#define HY_MAX_PARAMS       (1u << 20)    /* job parameter block: bytes */
#define HY_MAX_BATCH        1024          /* units in one UNITS or CANCEL, results in one RESULT */
#define HY_MAX_PAYLOAD      (16u << 20)   /* one result's payload, and all of one RESULT's: bytes */
#define HY_MAX_MESSAGE      (HY_MAX_PAYLOAD + 16 * 1024)  /* ZMQ_MAXMSGSIZE on every socket */
#define HY_MIN_HEARTBEAT_MS 10
#define HY_MAX_HEARTBEAT_MS 600000

typedef enum {
    HY_HELLO = 1,      /* worker -> manager: name, threads, heartbeat, release, kinds */
    HY_WELCOME = 2,    /* manager -> worker: session, heartbeat, liveness, idle heartbeat */
    HY_JOB = 3,        /* manager -> worker: job id, kind, parameters */
    HY_UNITS = 4,      /* manager -> worker: job id, unit indices */
    HY_RESULT = 5,     /* worker -> manager: job id, then (unit, status, payload) x n */
    HY_HEARTBEAT = 6,  /* both ways */
    HY_GOODBYE = 7,    /* both ways: code, reason */
    HY_CANCEL = 8,     /* manager -> worker: job id, units to drop (none listed: all of the job) */
} hy_command_t;

/* A result's status. */
typedef enum {
    HY_RESULT_OK = 0,        /* payload: the kind's bytes */
    HY_RESULT_FAILED = 1,    /* payload: a printable reason; the unit goes to another worker */
    HY_RESULT_RETURNED = 2,  /* not computed, given back (worker stopping); payload empty; no blame */
} hy_status_t;

/* GOODBYE codes: what the receiver should do is fixed by the code, the
   reason text is for people. */
typedef enum {
    HY_BYE_FINISHED = 0,  /* manager: work done, exiting; worker: drop everything, wait for the next */
    HY_BYE_UNKNOWN = 1,   /* manager: you are not (or no longer) on the roster: HELLO again at once */
    HY_BYE_VERSION = 2,   /* other protocol version: do not retry soon */
    HY_BYE_BANNED = 3,    /* manager: too many bad messages; ignored for a while */
    HY_BYE_STOPPING = 4,  /* the sender stops (signal); worker: drop everything; manager: re-issue, no blame */
    HY_BYE_REFUSED = 5,   /* manager: this HELLO cannot be accepted (reason says why) */
} hy_bye_t;
#define HY_BYE_MAX HY_BYE_REFUSED

/* Decode results; 0 is success. */
#define HY_EMALFORMED (-2)  /* not a well-formed message of our version */
#define HY_EVERSION   (-3)  /* a hyades message of another protocol version */

/* One result inside a RESULT message. */
typedef struct {
    uint64_t unit;
    uint8_t status;            /* hy_status_t */
    const uint8_t *data;       /* payload or reason (points into the decoded buffer) */
    size_t len;
} hy_result_t;

/* One decoded message. After hy_decode, the pointers point into the buffer
   that was decoded and live as long as it does. */
typedef struct {
    hy_command_t command;
    uint8_t peer_version;      /* the version byte seen (set also on HY_EVERSION) */
    const char *name;          /* HELLO: worker name; JOB: kind; GOODBYE: reason */
    size_t name_len;           /*   (not NUL-terminated on decode; on encode 0 means strlen) */
    const char *release;       /* HELLO: the sender's release (not NUL-terminated on decode) */
    size_t release_len;
    uint32_t threads;          /* HELLO */
    uint32_t heartbeat_ms;     /* HELLO, WELCOME */
    uint32_t liveness;         /* WELCOME */
    uint32_t idle_ms;          /* WELCOME: the heartbeat of workers that hold no units (>= heartbeat_ms) */
    uint8_t code;              /* GOODBYE: hy_bye_t */
    uint64_t session;          /* WELCOME */
    uint64_t job;              /* JOB, UNITS, RESULT, CANCEL */
    const uint8_t *data;       /* JOB: parameters */
    size_t data_len;
    size_t kind_count;         /* HELLO: kinds the worker computes (1..HY_MAX_KINDS) */
    const char *const *kinds;  /* HELLO on encode: kind_count NUL-terminated names */
    size_t unit_count;         /* UNITS (1..), CANCEL (0 = every unit of the job) */
    const uint64_t *units;     /* UNITS, CANCEL on encode: unit_count indices */
    size_t result_count;       /* RESULT (1..HY_MAX_BATCH) */
    const hy_result_t *results;/* RESULT on encode: result_count results */
    const uint8_t *raw;        /* on decode: where the list (kinds, units, results) starts */
    size_t raw_len;
} hy_msg_t;

/* Decodes one frame's bytes into msg. Returns 0, HY_EMALFORMED or HY_EVERSION;
   never reads outside [data, data + len), never allocates. Every entry of a
   list (kinds, units, results) is checked here, so that the readers below
   cannot fail on a decoded message. */
int hy_decode(const uint8_t *data, size_t len, hy_msg_t *msg);

/* Unit i (0 <= i < msg->unit_count) of a UNITS or CANCEL message, decoded or not. */
uint64_t hy_unit_at(const hy_msg_t *msg, size_t i);
/* The next kind name of a decoded HELLO: start with *cursor = 0. Returns
   false after the last. */
bool hy_kind_next(const hy_msg_t *msg, size_t *cursor, const char **name, size_t *len);
/* The next result of a decoded RESULT: start with *cursor = 0. Returns false
   after the last. */
bool hy_result_next(const hy_msg_t *msg, size_t *cursor, hy_result_t *result);

/* Bytes one result adds to a RESULT message (to fill a batch up to
   HY_MAX_PAYLOAD of payload). */
size_t hy_result_size(size_t payload_len);

/* Encodes msg into a new frame; caller owns the frame. Returns NULL when a
   field is out of range (a programmer error, also logged). */
zframe_t *hy_encode(const hy_msg_t *msg);

/* Encodes and sends msg; on a ROUTER, the routing id (id, id_len) names the
   peer (NULL on a DEALER). Returns 0 or -1. Never blocks: a message that
   cannot be queued is dropped. */
int hy_send(zsock_t *sock, const uint8_t *id, size_t id_len, const hy_msg_t *msg);

/* The command's name for logs ("HELLO"), "?" if unknown. */
const char *hy_command_name(int command);
/* The GOODBYE code's name for logs ("finished"), "?" if unknown. */
const char *hy_bye_name(int code);

/* Applies what every hyades socket needs: maximum message size, linger,
   high-water marks. */
void hy_socket_setup(zsock_t *sock);

/* What hy_monitor_read saw. */
#define HY_EVENT_NONE 0
#define HY_EVENT_HANDSHAKE_FAILED 1   /* a CURVE handshake failed */
#define HY_EVENT_DISCONNECTED 2       /* a connection closed */
#define HY_EVENT_ACCEPTED 3           /* a connection was accepted */

/* Watches sock's connections: returns a socket (caller owns it) that becomes
   readable when a CURVE handshake fails and, with connections, when a
   connection closes or is accepted; NULL if monitoring is unavailable. Its
   queue has no bound: ZeroMQ's I/O thread never waits for its reader. */
zsock_t *hy_monitor_new(zsock_t *sock, bool connections);
/* Reads one event from the monitor socket: HY_EVENT_*, with the peer's
   address and what failed in what for a failed handshake, and the
   connection's file descriptor in *fd for the others (fd may be NULL). */
int hy_monitor_read(zsock_t *monitor, char *what, size_t len, int *fd);
/* Stops watching sock and destroys *monitor (harmless on NULL). Before sock
   is closed: ZeroMQ sends monitor events blocking, from its I/O thread, so
   an event of a closing socket whose monitor is gone would stop every
   socket of the process. */
void hy_monitor_close(zsock_t *sock, zsock_t **monitor);

#endif
