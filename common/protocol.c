/* protocol: the wire codec. Every field is bounds- and range-checked on decode;
   a message that fails any check is reported as malformed, never asserted on. */
#include "common/protocol.h"

#include <stdatomic.h>
#include "common/bytes.h"
#include "common/log.h"

#include <string.h>

/* ---------------------------------------------------------------- reading */

/* A short string: one length byte, then that many bytes. */
static const char *s_get_str(reader_t *r, size_t *len)
{
    *len = (size_t) reader_be(r, 1);
    return (const char *) reader_take(r, *len);
}

static bool s_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static bool s_kind_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* A result entry: unit u64, status u8, payload blob. */
static bool s_get_result(reader_t *r, hy_result_t *res)
{
    res->unit = reader_be(r, 8);
    res->status = (uint8_t) reader_be(r, 1);
    res->len = (size_t) reader_be(r, 4);
    if (r->bad || res->len > HY_MAX_PAYLOAD)
        return false;
    res->data = reader_take(r, res->len);
    return !r->bad;
}

int hy_decode(const uint8_t *data, size_t len, hy_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (!data || len < 4 || data[0] != 'H' || data[1] != 'Y')
        return HY_EMALFORMED;
    msg->peer_version = data[2];
    if (data[2] != HY_PROTOCOL_VERSION)
        return HY_EVERSION;
    msg->command = data[3];
    reader_t r = reader_new(data + 4, len - 4);

    switch (msg->command) {
    case HY_HELLO:
        msg->name = s_get_str(&r, &msg->name_len);
        msg->threads = (uint32_t) reader_be(&r, 2);
        msg->heartbeat_ms = (uint32_t) reader_be(&r, 4);
        msg->release = s_get_str(&r, &msg->release_len);
        msg->kind_count = (size_t) reader_be(&r, 1);
        if (r.bad || msg->name_len == 0 || !s_printable(msg->name, msg->name_len)
            || msg->threads < 1 || msg->threads > HY_MAX_THREADS
            || msg->heartbeat_ms < HY_MIN_HEARTBEAT_MS || msg->heartbeat_ms > HY_MAX_HEARTBEAT_MS
            || msg->release_len == 0 || msg->release_len > HY_MAX_RELEASE
            || !s_printable(msg->release, msg->release_len)
            || msg->kind_count < 1 || msg->kind_count > HY_MAX_KINDS)
            return HY_EMALFORMED;
        msg->raw = r.p;
        for (size_t i = 0; i < msg->kind_count; i++) {
            size_t n;
            const char *kind = s_get_str(&r, &n);
            if (r.bad || !s_kind_name(kind, n))
                return HY_EMALFORMED;
        }
        msg->raw_len = (size_t) (r.p - msg->raw);
        break;
    case HY_WELCOME:
        msg->session = reader_be(&r, 8);
        msg->heartbeat_ms = (uint32_t) reader_be(&r, 4);
        msg->liveness = (uint32_t) reader_be(&r, 2);
        msg->idle_ms = (uint32_t) reader_be(&r, 4);
        if (r.bad || msg->heartbeat_ms < HY_MIN_HEARTBEAT_MS || msg->heartbeat_ms > HY_MAX_HEARTBEAT_MS
            || msg->liveness < 1 || msg->liveness > HY_MAX_LIVENESS || msg->idle_ms < msg->heartbeat_ms
            || msg->idle_ms > HY_MAX_HEARTBEAT_MS)
            return HY_EMALFORMED;
        break;
    case HY_JOB:
        msg->job = reader_be(&r, 8);
        msg->name = s_get_str(&r, &msg->name_len);
        msg->data_len = (size_t) reader_be(&r, 4);
        if (r.bad || msg->data_len > HY_MAX_PARAMS)
            return HY_EMALFORMED;
        msg->data = reader_take(&r, msg->data_len);
        if (r.bad || !s_kind_name(msg->name, msg->name_len))
            return HY_EMALFORMED;
        break;
    case HY_UNITS:
    case HY_CANCEL:
        msg->job = reader_be(&r, 8);
        msg->unit_count = (size_t) reader_be(&r, 2);
        if (r.bad || msg->unit_count > HY_MAX_BATCH || (msg->command == HY_UNITS && msg->unit_count < 1))
            return HY_EMALFORMED;
        msg->raw = reader_take(&r, msg->unit_count * 8);
        msg->raw_len = msg->unit_count * 8;
        break;
    case HY_RESULT: {
        msg->job = reader_be(&r, 8);
        msg->result_count = (size_t) reader_be(&r, 2);
        if (r.bad || msg->result_count < 1 || msg->result_count > HY_MAX_BATCH)
            return HY_EMALFORMED;
        msg->raw = r.p;
        size_t payload = 0;
        for (size_t i = 0; i < msg->result_count; i++) {
            hy_result_t res;
            if (!s_get_result(&r, &res) || res.status > HY_RESULT_RETURNED
                || (res.status == HY_RESULT_RETURNED && res.len != 0)
                || (res.status == HY_RESULT_FAILED && !s_printable((const char *) res.data, res.len)))
                return HY_EMALFORMED;
            payload += res.len;
            if (payload > HY_MAX_PAYLOAD)
                return HY_EMALFORMED;
        }
        msg->raw_len = (size_t) (r.p - msg->raw);
        break;
    }
    case HY_HEARTBEAT:
        break;
    case HY_GOODBYE:
        msg->code = (uint8_t) reader_be(&r, 1);
        msg->name = s_get_str(&r, &msg->name_len);
        if (r.bad || msg->code > HY_BYE_MAX || !s_printable(msg->name, msg->name_len))
            return HY_EMALFORMED;
        break;
    default:
        return HY_EMALFORMED;
    }
    /* Every byte must be accounted for: trailing garbage is malformed too. */
    if (!reader_done(&r))
        return HY_EMALFORMED;
    return 0;
}

uint64_t hy_unit_at(const hy_msg_t *msg, size_t i)
{
    assert(i < msg->unit_count);
    if (msg->raw) {
        reader_t r = reader_new(msg->raw + 8 * i, 8);
        return reader_be(&r, 8);
    }
    return msg->units[i];
}

bool hy_kind_next(const hy_msg_t *msg, size_t *cursor, const char **name, size_t *len)
{
    if (msg->command != HY_HELLO || !msg->raw || *cursor >= msg->raw_len)
        return false;
    reader_t r = reader_new(msg->raw + *cursor, msg->raw_len - *cursor);
    *name = s_get_str(&r, len);
    *cursor = (size_t) (r.p - msg->raw);
    return !r.bad;
}

bool hy_result_next(const hy_msg_t *msg, size_t *cursor, hy_result_t *result)
{
    if (msg->command != HY_RESULT || !msg->raw || *cursor >= msg->raw_len)
        return false;
    reader_t r = reader_new(msg->raw + *cursor, msg->raw_len - *cursor);
    bool ok = s_get_result(&r, result);
    *cursor = (size_t) (r.p - msg->raw);
    return ok;
}

size_t hy_result_size(size_t payload_len) { return 8 + 1 + 4 + payload_len; }

/* ---------------------------------------------------------------- writing */

static void s_put_str(writer_t *w, const char *s, size_t len)
{
    writer_be(w, len, 1);
    writer_bytes(w, s, len);
}

/* The encoded size of msg, or 0 (logged) when a field is out of range. */
static size_t s_encoded_size(const hy_msg_t *msg)
{
    size_t name_len = msg->name ? (msg->name_len ? msg->name_len : strlen(msg->name)) : 0;
    size_t release_len = msg->release ? (msg->release_len ? msg->release_len : strlen(msg->release)) : 0;
    size_t size = 4, payload = 0;
    bool bad = name_len > HY_MAX_NAME || msg->data_len > HY_MAX_PARAMS;
    switch (msg->command) {
    case HY_HELLO:
        size += 1 + name_len + 2 + 4 + 1 + release_len + 1;
        bad |= release_len > HY_MAX_RELEASE || msg->kind_count < 1 || msg->kind_count > HY_MAX_KINDS;
        for (size_t i = 0; !bad && i < msg->kind_count; i++) {
            bad |= strlen(msg->kinds[i]) > HY_MAX_NAME;
            size += 1 + strlen(msg->kinds[i]);
        }
        break;
    case HY_WELCOME:   size += 8 + 4 + 2 + 4; break;
    case HY_JOB:       size += 8 + 1 + name_len + 4 + msg->data_len; break;
    case HY_UNITS:
    case HY_CANCEL:
        size += 8 + 2 + 8 * msg->unit_count;
        bad |= msg->unit_count > HY_MAX_BATCH || (msg->command == HY_UNITS && msg->unit_count < 1);
        break;
    case HY_RESULT:
        size += 8 + 2;
        bad |= msg->result_count < 1 || msg->result_count > HY_MAX_BATCH;
        for (size_t i = 0; !bad && i < msg->result_count; i++) {
            size += hy_result_size(msg->results[i].len);
            payload += msg->results[i].len;
        }
        bad |= payload > HY_MAX_PAYLOAD;
        break;
    case HY_HEARTBEAT: break;
    case HY_GOODBYE:   size += 1 + 1 + name_len; break;
    default:
        log_error("protocol: cannot encode command %d", (int) msg->command);
        return 0;
    }
    if (bad) {
        log_error("protocol: %s field out of range", hy_command_name(msg->command));
        return 0;
    }
    return size;
}

/* msg into buf, which holds exactly its encoded size. */
static void s_write(const hy_msg_t *msg, uint8_t *buf, size_t size)
{
    size_t name_len = msg->name ? (msg->name_len ? msg->name_len : strlen(msg->name)) : 0;
    size_t release_len = msg->release ? (msg->release_len ? msg->release_len : strlen(msg->release)) : 0;
    writer_t w = {buf};
    writer_bytes(&w, "HY", 2);
    writer_be(&w, HY_PROTOCOL_VERSION, 1);
    writer_be(&w, msg->command, 1);
    switch (msg->command) {
    case HY_HELLO:
        s_put_str(&w, msg->name, name_len);
        writer_be(&w, msg->threads, 2);
        writer_be(&w, msg->heartbeat_ms, 4);
        s_put_str(&w, msg->release, release_len);
        writer_be(&w, msg->kind_count, 1);
        for (size_t i = 0; i < msg->kind_count; i++)
            s_put_str(&w, msg->kinds[i], strlen(msg->kinds[i]));
        break;
    case HY_WELCOME:
        writer_be(&w, msg->session, 8);
        writer_be(&w, msg->heartbeat_ms, 4);
        writer_be(&w, msg->liveness, 2);
        writer_be(&w, msg->idle_ms, 4);
        break;
    case HY_JOB:
        writer_be(&w, msg->job, 8);
        s_put_str(&w, msg->name, name_len);
        writer_be(&w, msg->data_len, 4);
        writer_bytes(&w, msg->data, msg->data_len);
        break;
    case HY_UNITS:
    case HY_CANCEL:
        writer_be(&w, msg->job, 8);
        writer_be(&w, msg->unit_count, 2);
        for (size_t i = 0; i < msg->unit_count; i++)
            writer_be(&w, msg->units[i], 8);
        break;
    case HY_RESULT:
        writer_be(&w, msg->job, 8);
        writer_be(&w, msg->result_count, 2);
        for (size_t i = 0; i < msg->result_count; i++) {
            const hy_result_t *res = &msg->results[i];
            writer_be(&w, res->unit, 8);
            writer_be(&w, res->status, 1);
            writer_be(&w, res->len, 4);
            writer_bytes(&w, res->data, res->len);
        }
        break;
    case HY_GOODBYE:
        writer_be(&w, msg->code, 1);
        s_put_str(&w, msg->name, name_len);
        break;
    default:
        break;
    }
    assert(w.p == buf + size);
    (void) size;
}

zframe_t *hy_encode(const hy_msg_t *msg)
{
    size_t size = s_encoded_size(msg);
    if (size == 0)
        return NULL;
    zframe_t *frame = zframe_new(NULL, size);
    s_write(msg, zframe_data(frame), size);
    return frame;
}

/* Encoded straight into the message ZeroMQ sends: one copy of the payloads,
   not two. */
int hy_send(zsock_t *sock, const uint8_t *id, size_t id_len, const hy_msg_t *msg)
{
    size_t size = s_encoded_size(msg);
    zmq_msg_t out;
    if (size == 0 || zmq_msg_init_size(&out, size) != 0)
        return -1;
    s_write(msg, zmq_msg_data(&out), size);
    void *handle = zsock_resolve(sock);
    if ((id && zmq_send(handle, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        || zmq_msg_send(&out, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&out);
        return -1;
    }
    return 0;
}

const char *hy_command_name(int command)
{
    static const char *names[] = {"?", "HELLO", "WELCOME", "JOB", "UNITS", "RESULT", "HEARTBEAT", "GOODBYE",
                                  "CANCEL"};
    return command >= 1 && command <= HY_CANCEL ? names[command] : "?";
}

const char *hy_bye_name(int code)
{
    static const char *names[] = {"finished", "unknown peer", "version", "banned", "stopping", "refused"};
    return code >= 0 && code <= HY_BYE_MAX ? names[code] : "?";
}

void hy_socket_setup(zsock_t *sock)
{
    zsock_set_maxmsgsize(sock, HY_MAX_MESSAGE);
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, 100000);
    zsock_set_rcvhwm(sock, 100000);
}

zsock_t *hy_monitor_new(zsock_t *sock, bool connections)
{
    /* A name of its own: a socket closed a moment ago may have had the same
       address, and its monitor's endpoint may not be gone yet. */
    static atomic_uint made;
    char endpoint[80];
    snprintf(endpoint, sizeof endpoint, "inproc://hyades-monitor-%p-%u", (void *) sock, atomic_fetch_add(&made, 1));
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | (connections ? ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPTED : 0);
    if (zmq_socket_monitor(zsock_resolve(sock), endpoint, events) != 0)
        return NULL;
    zsock_t *monitor = zsock_new(ZMQ_PAIR);
    if (!monitor)
        return NULL;
    zsock_set_rcvhwm(monitor, 0);   /* before the connect: an inproc pipe with one side unbounded is unbounded */
    if (zsock_connect(monitor, "%s", endpoint) != 0)
        zsock_destroy(&monitor);
    return monitor;
}

int hy_monitor_read(zsock_t *monitor, char *what, size_t len, int *fd)
{
    zframe_t *event = zframe_recv(monitor);
    zframe_t *address = event && zframe_more(event) ? zframe_recv(monitor) : NULL;
    int seen = HY_EVENT_NONE;
    if (event && zframe_size(event) >= 6) {
        const uint8_t *d = zframe_data(event);
        uint16_t id = (uint16_t) (d[0] | d[1] << 8);
        uint32_t value = (uint32_t) (d[2] | d[3] << 8 | d[4] << 16 | (uint32_t) d[5] << 24);
        char *peer = address ? zframe_strdup(address) : NULL;
        if (id == ZMQ_EVENT_DISCONNECTED || id == ZMQ_EVENT_ACCEPTED) {
            snprintf(what, len, "%s", peer ? peer : "?");
            seen = id == ZMQ_EVENT_DISCONNECTED ? HY_EVENT_DISCONNECTED : HY_EVENT_ACCEPTED;
            if (fd)
                *fd = (int) value;
        } else {
            const char *how = id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                  ? "its key was refused (not among the allowed certificates)"
                              : id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                  ? "the handshake broke off (a key that does not match?)"
                                  : "the handshake failed";
            snprintf(what, len, "%s: %s (code %u)", peer ? peer : "?", how, value);
            seen = HY_EVENT_HANDSHAKE_FAILED;
        }
        free(peer);
    }
    zframe_destroy(&event);
    zframe_destroy(&address);
    return seen;
}

void hy_monitor_close(zsock_t *sock, zsock_t **monitor)
{
    if (!*monitor)
        return;
    if (sock)
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(monitor);
}
