/* protocol: the wire codec, every message between manager and workers in and out.
   The format is specified in common/PROTOCOL.md; this file is its only reader. */
#ifndef HY_PROTOCOL_H
#define HY_PROTOCOL_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HY_PROTOCOL_VERSION 1
#define HY_MAX_NAME         255           /* worker name, job kind: bytes */
#define HY_MAX_THREADS      1024          /* threads a worker may announce */
#define HY_MAX_PARAMS       (1u << 20)    /* job parameter block: bytes */
#define HY_MAX_BATCH        1024          /* units in one UNITS message */
#define HY_MAX_PAYLOAD      (16u << 20)   /* one result's payload: bytes */
#define HY_MAX_MESSAGE      (HY_MAX_PAYLOAD + 64)  /* ZMQ_MAXMSGSIZE on every socket */
#define HY_MIN_HEARTBEAT_MS 10
#define HY_MAX_HEARTBEAT_MS 600000

typedef enum {
    HY_HELLO = 1,      /* worker -> manager: name, threads, heartbeat */
    HY_WELCOME = 2,    /* manager -> worker: session, heartbeat */
    HY_JOB = 3,        /* manager -> worker: job id, kind, parameters */
    HY_UNITS = 4,      /* manager -> worker: job id, unit indices */
    HY_RESULT = 5,     /* worker -> manager: job id, unit, status, payload */
    HY_HEARTBEAT = 6,  /* both ways */
    HY_GOODBYE = 7,    /* both ways: reason */
} hy_command_t;

typedef enum { HY_RESULT_OK = 0, HY_RESULT_FAILED = 1 } hy_status_t;

/* Decode results; 0 is success. */
#define HY_EMALFORMED (-2)  /* not a well-formed message of our version */
#define HY_EVERSION   (-3)  /* a hyades message of another protocol version */

/* One decoded message. After hy_decode, the pointers point into the buffer
   that was decoded and live as long as it does. */
typedef struct {
    hy_command_t command;
    uint8_t peer_version;      /* the version byte seen (set also on HY_EVERSION) */
    const char *name;          /* HELLO: worker name; JOB: kind; GOODBYE: reason */
    size_t name_len;           /*   (not NUL-terminated on decode) */
    uint32_t threads;          /* HELLO */
    uint32_t heartbeat_ms;     /* HELLO, WELCOME */
    uint64_t session;          /* WELCOME */
    uint64_t job;              /* JOB, UNITS, RESULT */
    const uint8_t *data;       /* JOB: parameters; RESULT: payload */
    size_t data_len;
    size_t unit_count;         /* UNITS: number of units */
    const uint8_t *units_raw;  /* UNITS on decode: read with hy_unit_at */
    const uint64_t *units;     /* UNITS on encode: unit_count indices */
    uint64_t unit;             /* RESULT */
    uint8_t status;            /* RESULT: hy_status_t */
} hy_msg_t;

/* Decodes one frame's bytes into msg. Returns 0, HY_EMALFORMED or HY_EVERSION;
   never reads outside [data, data + len), never allocates. */
int hy_decode(const uint8_t *data, size_t len, hy_msg_t *msg);

/* Unit i (0 <= i < msg->unit_count) of a decoded UNITS message. */
uint64_t hy_unit_at(const hy_msg_t *msg, size_t i);

/* Encodes msg into a new frame; caller owns the frame. Returns NULL when a
   field is out of range (a programmer error, also logged). */
zframe_t *hy_encode(const hy_msg_t *msg);

/* Encodes and sends msg; on a ROUTER, the routing id (id, id_len) names the
   peer (NULL on a DEALER). Returns 0 or -1. Never blocks: a message that
   cannot be queued is dropped. */
int hy_send(zsock_t *sock, const uint8_t *id, size_t id_len, const hy_msg_t *msg);

/* The command's name for logs ("HELLO"), "?" if unknown. */
const char *hy_command_name(int command);

/* Applies what every hyades socket needs: maximum message size, linger,
   high-water marks. */
void hy_socket_setup(zsock_t *sock);

#endif
