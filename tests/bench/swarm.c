/* swarm: many simulated workers in one process, for tests and benchmarks of
   the manager's roster. Each is one DEALER that says HELLO (protocol 3),
   keeps the manager's idle heartbeat as hyades-worker does (its own every
   idle interval, or at once in answer to the manager's when it is due
   within half an interval) and answers units of the noop job at once.

     hyades-swarm ENDPOINT COUNT SECONDS

   Prints one line: "swarm: N joined, R rejoined, U units answered". A worker
   rejoins when the manager says it does not know it (GOODBYE unknown peer),
   that is, when the manager declared it lost: R counts how often that
   happened. Exit 0, 1 when some never joined, 2 on a bad command line
   (COUNT 1 to 100000, within the open-files limit; SECONDS 1 to 86400).

     hyades-swarm --bare-manager ENDPOINT

   The other side, for a baseline: the least a manager can do for idle
   workers on ZeroMQ. It binds a ROUTER, answers HELLO with WELCOME (1000 ms,
   idle 4000 ms, liveness 3), sends HEARTBEAT to everyone who said HELLO
   every 4 seconds (the idle interval, as hyades-manager's default) and
   reads the rest without bookkeeping, until it is killed: the same messages
   as hyades-manager's, without anything else. */
#include <czmq.h>
#include <inttypes.h>

#include "common/bytes.h"
#include "common/files.h"
#include "common/options.h"
#include "common/protocol.h"

typedef struct {
    zsock_t *sock;
    bool joined;
    int64_t next_beat;
} sim_t;

static void s_hello(sim_t *s, size_t i)
{
    char name[32];
    snprintf(name, sizeof name, "sim-%zu", i);
    const char *kinds[] = {"noop"};
    hy_msg_t hello = {.command = HY_HELLO, .name = name, .threads = 1, .heartbeat_ms = 1000,
                      .release = HY_RELEASE, .kinds = kinds, .kind_count = 1};
    hy_send(s->sock, NULL, 0, &hello);
}

static zsock_t *s_connect(const char *endpoint)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    hy_socket_setup(sock);
    zsock_connect(sock, "%s", endpoint);
    return sock;
}

static int s_bare_manager(const char *endpoint)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    hy_socket_setup(router);
    if (zsock_bind(router, "%s", endpoint) < 0) {
        fprintf(stderr, "hyades-swarm: cannot bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&router);
        return 1;
    }
    size_t known = 0, room = 1024;
    zframe_t **ids = malloc(room * sizeof *ids);
    int64_t next_beat = zclock_mono() + 4000;   /* the idle interval: its workers hold no units */
    while (!zsys_interrupted) {
        int64_t wait = next_beat - zclock_mono();
        if (zsock_events(router) & ZMQ_POLLIN || zmq_poll(&(zmq_pollitem_t) {zsock_resolve(router), 0, ZMQ_POLLIN, 0}, 1,
                                                            wait > 0 ? wait : 0) > 0) {
            for (;;) {
                zframe_t *id = zframe_recv_nowait(router);
                if (!id)
                    break;
                zframe_t *body = zframe_more(id) ? zframe_recv(router) : NULL;
                hy_msg_t msg;
                if (body && hy_decode(zframe_data(body), zframe_size(body), &msg) == 0 && msg.command == HY_HELLO) {
                    hy_msg_t welcome = {.command = HY_WELCOME, .session = 1, .heartbeat_ms = 1000, .liveness = 3,
                                         .idle_ms = 4000};
                    hy_send(router, zframe_data(id), zframe_size(id), &welcome);
                    if (known == room)
                        ids = realloc(ids, (room *= 2) * sizeof *ids);
                    ids[known++] = id;
                    id = NULL;
                }
                zframe_destroy(&body);
                zframe_destroy(&id);
            }
        }
        if (zclock_mono() >= next_beat) {
            hy_msg_t beat = {.command = HY_HEARTBEAT};
            for (size_t i = 0; i < known; i++)
                hy_send(router, zframe_data(ids[i]), zframe_size(ids[i]), &beat);
            next_beat += 4000;
        }
    }
    for (size_t i = 0; i < known; i++)
        zframe_destroy(&ids[i]);
    free(ids);
    zsock_destroy(&router);
    return 0;
}

/* A whole number from min to max, or -1. */
static long s_number(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    return errno || end == text || *end || n < min || n > max ? -1 : n;
}

int main(int argc, char **argv)
{
    const char *usage = "usage: hyades-swarm ENDPOINT COUNT SECONDS, or hyades-swarm --bare-manager ENDPOINT\n";
    unsigned long files = files_raise_limit();
    if (argc >= 2 && strcmp(argv[1], "--bare-manager") == 0) {
        if (argc != 3) {
            fprintf(stderr, "%s", usage);
            return 2;
        }
        if (!opts_port_ok(argv[2], 0, true)) {
            fprintf(stderr, "hyades-swarm: %s: the port must be a number from 0 to 65535, or *\n", argv[2]);
            return 2;
        }
        return s_bare_manager(argv[2]);
    }
    if (argc != 4 || argv[1][0] == '-') {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    const char *endpoint = argv[1];
    long count_arg = s_number(argv[2], 1, 100000), seconds = s_number(argv[3], 1, 86400);
    if (count_arg < 0 || seconds < 0) {
        fprintf(stderr, "hyades-swarm: COUNT must be 1 to 100000 and SECONDS 1 to 86400\n%s", usage);
        return 2;
    }
    if (!opts_port_ok(endpoint, 1, false)) {
        fprintf(stderr, "hyades-swarm: %s: the port must be a number from 1 to 65535\n", endpoint);
        return 2;
    }
    size_t count = (size_t) count_arg;
    if (files && 2 * count + 64 > files) {   /* a connection and a mailbox each */
        fprintf(stderr, "hyades-swarm: %zu workers need %zu open files; the limit is %lu\n", count, 2 * count + 64,
                files);
        return 2;
    }
    zsys_set_max_sockets(count + 64);
    zsys_set_io_threads(2);
    zsys_init();
    sim_t *sims = calloc(count, sizeof *sims);
    zmq_pollitem_t *items = calloc(count, sizeof *items);
    for (size_t i = 0; i < count; i++) {
        sims[i].sock = s_connect(endpoint);
        if (!sims[i].sock) {
            fprintf(stderr, "hyades-swarm: cannot make socket %zu: %s\n", i + 1, zmq_strerror(zmq_errno()));
            return 1;
        }
        s_hello(&sims[i], i);
    }
    int64_t heartbeat = 1000, end = zclock_mono() + seconds * 1000;
    uint64_t joined = 0, rejoined = 0, answered = 0;
    while (zclock_mono() < end && !zsys_interrupted) {
        for (size_t i = 0; i < count; i++)
            items[i] = (zmq_pollitem_t) {zsock_resolve(sims[i].sock), 0, ZMQ_POLLIN, 0};
        zmq_poll(items, (int) count, 20);
        int64_t now = zclock_mono();
        for (size_t i = 0; i < count; i++) {
            sim_t *s = &sims[i];
            while (items[i].revents & ZMQ_POLLIN) {
                zframe_t *frame = zframe_recv_nowait(s->sock);
                if (!frame)
                    break;
                hy_msg_t msg;
                if (hy_decode(zframe_data(frame), zframe_size(frame), &msg) == 0) {
                    if (msg.command == HY_WELCOME) {
                        if (!s->joined)
                            joined++;
                        s->joined = true;
                        heartbeat = msg.idle_ms;   /* holding no units between answers */
                        s->next_beat = now + heartbeat;
                    } else if (msg.command == HY_HEARTBEAT && s->joined && s->next_beat - now <= heartbeat / 2) {
                        s->next_beat = now;   /* answered below, as the worker answers it */
                    } else if (msg.command == HY_GOODBYE && msg.code == HY_BYE_UNKNOWN) {
                        rejoined++;
                        s_hello(s, i);
                    } else if (msg.command == HY_UNITS) {
                        hy_result_t results[HY_MAX_BATCH];
                        uint8_t payload[HY_MAX_BATCH][8];
                        for (size_t k = 0; k < msg.unit_count; k++) {
                            uint64_t u = hy_unit_at(&msg, k);
                            writer_t w = {payload[k]};
                            writer_be(&w, u, 8);
                            results[k] = (hy_result_t) {.unit = u, .status = HY_RESULT_OK, .data = payload[k],
                                                        .len = 8};
                        }
                        hy_msg_t reply = {.command = HY_RESULT, .job = msg.job, .results = results,
                                          .result_count = msg.unit_count};
                        hy_send(s->sock, NULL, 0, &reply);
                        answered += msg.unit_count;
                    }
                }
                zframe_destroy(&frame);
            }
            if (s->joined && now >= s->next_beat) {
                hy_msg_t beat = {.command = HY_HEARTBEAT};
                hy_send(s->sock, NULL, 0, &beat);
                s->next_beat = now + heartbeat;
            }
        }
    }
    printf("swarm: %" PRIu64 " joined, %" PRIu64 " rejoined, %" PRIu64 " units answered\n", joined, rejoined,
           answered);
    for (size_t i = 0; i < count; i++)
        zsock_destroy(&sims[i].sock);
    free(sims);
    free(items);
    return joined == count ? 0 : 1;
}
