/* dashboard: libmicrohttpd serves snapshots that the event loop publishes. */
#include "manager/dashboard.h"
#include "common/image.h"
#include "common/protocol.h"
#include "manager/report.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECTIONS_MAX 256       /* at once; more are closed at once */
#define CONNECTIONS_SHARE 8       /* ... and at most this fraction of the open-file limit */
#define CONNECTION_TIMEOUT_S 10   /* idle connections are closed after this */
#define REQUEST_MEMORY 16384      /* bytes for one request's headers: beyond, 431 */

/* libmicrohttpd, loaded when a dashboard is asked for rather than at every
   start: with the TLS libraries it brings, it was a third of the manager's
   start-up time, paid by every job. MHD_SONAME comes from the Makefile. */
static struct {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_create_response_from_buffer_with_free_callback) *create_response;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
} mhd;

static int s_load_mhd(char *err, size_t errlen)
{
    if (mhd.start_daemon)
        return 0;
    void *lib = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);   /* kept until exit */
    if (!lib) {
        snprintf(err, errlen, "--dashboard: cannot load libmicrohttpd: %s", dlerror());
        return -1;
    }
#define LOAD(field, name) (mhd.field = (__typeof__(mhd.field)) dlsym(lib, name))
    /* start_daemon last: once set, it says the table is whole */
    bool whole = LOAD(stop_daemon, "MHD_stop_daemon") && LOAD(get_daemon_info, "MHD_get_daemon_info")
                 && LOAD(lookup_connection_value, "MHD_lookup_connection_value")
                 && LOAD(create_response, "MHD_create_response_from_buffer_with_free_callback")
                 && LOAD(add_response_header, "MHD_add_response_header")
                 && LOAD(queue_response, "MHD_queue_response") && LOAD(destroy_response, "MHD_destroy_response")
                 && LOAD(start_daemon, "MHD_start_daemon");
#undef LOAD
    if (!whole) {
        snprintf(err, errlen, "--dashboard: %s lacks a function this manager uses", MHD_SONAME);
        return -1;
    }
    return 0;
}

/* The page, embedded from manager/dashboard.html at build time. */
extern const unsigned char dashboard_page[];
extern const size_t dashboard_page_len;

typedef struct {
    double time;   /* Unix seconds */
    log_level_t level;
    char text[300];
} event_t;

struct dashboard_t {
    struct MHD_Daemon *daemon;
    char url[128];
    char host[256];                  /* the host it was started with, for Host checks */
    bool loopback;                   /* it listens on loopback only: Host names are checked */
    pthread_mutex_t mutex;           /* guards everything below */
    char *status, *metrics, *batch;  /* the latest published (NUL-terminated) */
    job_picture_t picture;           /* the latest picture, rgb NULL when none */
    uint8_t *png;                    /* it encoded, when it was asked for since */
    size_t png_len;
    bool has_picture;                /* the running job can draw one */
    pthread_cond_t pictured;         /* a picture was published */
    uint64_t picture_gen;            /* pictures published so far */
    uint64_t png_gen;                /* the one png was made from */
    bool encoding;                   /* an HTTP request is compressing the picture */
    pthread_cond_t encoded;          /* ... and is done */
    event_t events[DASHBOARD_EVENTS];
    size_t event_count;              /* ever recorded (a ring) */
    atomic_bool picture_wanted;
};

/* ------------------------------------------------------------ publishing */

static char *s_copy(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

void dashboard_publish(dashboard_t *self, const char *status, size_t status_len, const char *metrics,
                       size_t metrics_len, bool has_picture)
{
    char *s = s_copy(status, status_len), *m = s_copy(metrics, metrics_len);
    pthread_mutex_lock(&self->mutex);
    self->has_picture = has_picture;
    free(self->status), free(self->metrics);
    self->status = s, self->metrics = m;
    pthread_mutex_unlock(&self->mutex);
}

void dashboard_publish_picture(dashboard_t *self, job_picture_t *picture)
{
    pthread_mutex_lock(&self->mutex);
    free(self->picture.rgb);   /* (the PNG of an older one is served until this one is encoded) */
    self->picture = picture ? *picture : (job_picture_t) {0};
    self->picture_gen++;
    pthread_cond_broadcast(&self->pictured);
    pthread_mutex_unlock(&self->mutex);
    if (picture)
        picture->rgb = NULL;
    atomic_store(&self->picture_wanted, false);
}

bool dashboard_picture_wanted(dashboard_t *self) { return atomic_load(&self->picture_wanted); }

void dashboard_set_batch(dashboard_t *self, const char *json)
{
    char *copy = json ? s_copy(json, strlen(json)) : NULL;
    pthread_mutex_lock(&self->mutex);
    free(self->batch);
    self->batch = copy;
    pthread_mutex_unlock(&self->mutex);
}

void dashboard_event(dashboard_t *self, log_level_t level, const char *text)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&self->mutex);
    event_t *e = &self->events[self->event_count++ % DASHBOARD_EVENTS];
    e->time = ts.tv_sec + ts.tv_nsec / 1e9;
    e->level = level;
    snprintf(e->text, sizeof e->text, "%s", text);
    pthread_mutex_unlock(&self->mutex);
}

void dashboard_log_tap(void *self, log_level_t level, const char *text) { dashboard_event(self, level, text); }

/* ------------------------------------------------------------ serving */

/* Under the mutex: the status with the events and the batch added. */
static char *s_status_json(dashboard_t *self, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out)
        return NULL;
    const char *status = self->status ? self->status : "{\"job\":null}";
    size_t body = strlen(status);
    while (body > 0 && status[body - 1] != '}')
        body--;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(out, "{\"hyades\":{\"release\":\"%s\",\"protocol\":%d},\"time\":%.3f,", HY_RELEASE,
            HY_PROTOCOL_VERSION, ts.tv_sec + ts.tv_nsec / 1e9);
    fwrite(status + 1, 1, body > 1 ? body - 2 : 0, out);   /* without its braces */
    fputs(body > 2 ? ",\"events\":[" : "\"events\":[", out);
    static const char *levels[] = {"debug", "info", "warn", "error"};
    size_t n = self->event_count < DASHBOARD_EVENTS ? self->event_count : DASHBOARD_EVENTS;
    for (size_t i = 0; i < n; i++) {
        const event_t *e = &self->events[(self->event_count - n + i) % DASHBOARD_EVENTS];
        fprintf(out, "%s{\"time\":%.3f,\"level\":\"%s\",\"text\":", i ? "," : "", e->time,
                levels[e->level <= HY_LOG_ERROR ? e->level : HY_LOG_ERROR]);
        report_json_string(out, e->text);
        fputc('}', out);
    }
    fprintf(out, "],\"batch\":%s}\n", self->batch ? self->batch : "null");
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Sends a response that takes over body (malloc'd; freed by libmicrohttpd). */
static enum MHD_Result s_reply(struct MHD_Connection *connection, unsigned code, const char *type, char *body,
                               size_t len)
{
    struct MHD_Response *response = mhd.create_response(len, body, free);
    if (!response) {
        free(body);
        return MHD_NO;
    }
    mhd.add_response_header(response, "Content-Type", type);
    mhd.add_response_header(response, "Cache-Control", "no-store");
    mhd.add_response_header(response, "X-Content-Type-Options", "nosniff");
    mhd.add_response_header(response, "X-Frame-Options", "DENY");
    mhd.add_response_header(response, "Referrer-Policy", "no-referrer");
    mhd.add_response_header(response, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        mhd.add_response_header(response, "Allow", "GET, HEAD");
    enum MHD_Result rc = mhd.queue_response(connection, code, response);
    mhd.destroy_response(response);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *connection, unsigned code, const char *text)
{
    return s_reply(connection, code, "text/plain; charset=utf-8", s_copy(text, strlen(text)), strlen(text));
}

/* Under the mutex (released while it compresses, so that the event loop
   can publish meanwhile): the latest picture as PNG, encoded once; an older
   one while a newer is being encoded elsewhere or cannot be. */
static bool s_png(dashboard_t *self)
{
    while (self->encoding)
        pthread_cond_wait(&self->encoded, &self->mutex);
    if (self->picture.rgb && (!self->png || self->png_gen != self->picture_gen)) {
        job_picture_t picture = self->picture;
        uint64_t gen = self->picture_gen;
        self->picture.rgb = NULL;   /* ours while we compress it */
        self->encoding = true;
        pthread_mutex_unlock(&self->mutex);
        size_t len = 0;
        uint8_t *png = image_png_memory(picture.rgb, picture.width, picture.height, 3, &len);
        free(picture.rgb);
        pthread_mutex_lock(&self->mutex);
        self->encoding = false;
        pthread_cond_broadcast(&self->encoded);
        if (png) {
            free(self->png);
            self->png = png;
            self->png_len = len;
            self->png_gen = gen;
        }
    }
    return self->png != NULL;
}

/* Whether the Host header names this dashboard: an address literal,
   localhost, this machine's name or the name it was started with. Anything
   else is a name that some other site may point at this address (DNS
   rebinding): refused. No Host (HTTP/1.0) is fine. */
static bool s_host_ok(const dashboard_t *self, const char *host)
{
    if (!host || !self->loopback)
        return true;   /* listening beyond this machine was the user's choice: any name may reach it */
    char name[256];
    if (host[0] == '[')
        return strchr(host, ']') != NULL;   /* an IPv6 literal */
    size_t len = strcspn(host, ":");
    if (len == 0 || len >= sizeof name)
        return false;
    memcpy(name, host, len);
    name[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, name, &v4) == 1 || strcasecmp(name, "localhost") == 0
        || strcasecmp(name, self->host) == 0)
        return true;
    char me[256];
    if (gethostname(me, sizeof me) == 0) {
        me[sizeof me - 1] = '\0';
        size_t short_len = strcspn(me, ".");
        if (strcasecmp(name, me) == 0 || (strlen(name) == short_len && strncasecmp(name, me, short_len) == 0))
            return true;
    }
    return false;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    dashboard_t *self = cls;
    (void) version, (void) upload_data, (void) upload_data_size, (void) con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET and HEAD only\n");
    if (!s_host_ok(self, mhd.lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
        return s_text(connection, MHD_HTTP_MISDIRECTED_REQUEST, "this Host is not the dashboard's\n");
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        char *page = s_copy((const char *) dashboard_page, dashboard_page_len);
        return s_reply(connection, MHD_HTTP_OK, "text/html; charset=utf-8", page, dashboard_page_len);
    }
    char *body = NULL;
    size_t len = 0;
    const char *type = NULL;
    pthread_mutex_lock(&self->mutex);
    if (strcmp(url, "/api/status") == 0) {
        body = s_status_json(self, &len);
        type = "application/json";
    } else if (strcmp(url, "/metrics") == 0) {
        const char *metrics = self->metrics ? self->metrics : "";
        len = strlen(metrics);
        body = s_copy(metrics, len);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(url, "/preview.png") == 0) {
        atomic_store(&self->picture_wanted, true);
        /* The first picture is made once somebody asks: wait for it a little. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!self->png && !self->picture.rgb && !self->encoding && self->has_picture
               && pthread_cond_timedwait(&self->pictured, &self->mutex, &until) == 0)
            ;
        if (s_png(self)) {
            len = self->png_len;
            body = malloc(len);
            if (body)
                memcpy(body, self->png, len);
        }
        type = "image/png";
    } else {
        pthread_mutex_unlock(&self->mutex);
        return s_text(connection, MHD_HTTP_NOT_FOUND, "not found: /, /api/status, /metrics, /preview.png\n");
    }
    pthread_mutex_unlock(&self->mutex);
    if (!body && strcmp(type, "image/png") == 0)
        return s_text(connection, MHD_HTTP_NOT_FOUND, "no picture of this job (yet)\n");
    if (!body)
        return s_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
    return s_reply(connection, MHD_HTTP_OK, type, body, len);
}

/* While the daemon starts: its last complaint, for the one-line error
   (whether it could not bind, or could not start its thread). */
static atomic_bool s_starting;
static char s_start_why[256];

/* libmicrohttpd's own complaints (a client that sent garbage, say): debug lines. */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    if (atomic_load(&s_starting))
        snprintf(s_start_why, sizeof s_start_why, "%.200s", text);
    log_debug("dashboard: %s", text);
}

/* ------------------------------------------------------------ life cycle */

/* Splits "HOST:PORT" or "[V6]:PORT" and resolves it (numbers or names);
   messages quote what the user gave. */
static int s_address(const char *addr, const char *given, struct sockaddr_storage *sa, socklen_t *sa_len,
                     char *host_out, size_t host_len, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t) (colon - addr) >= sizeof host) {
        snprintf(err, errlen, "--dashboard '%s': expected HOST:PORT, e.g. 127.0.0.1:8080", given);
        return -1;
    }
    memcpy(host, addr, (size_t) (colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    snprintf(host_out, host_len, "%s", host);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    size_t digits = strspn(colon + 1, "0123456789");
    if (digits == 0 || digits > 5 || colon[1 + digits] || *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "--dashboard '%s': the port must be a number from 0 to 65535", given);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *found;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "--dashboard '%s': cannot resolve %s: %s", given, host, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, found->ai_addr, found->ai_addrlen);
    *sa_len = found->ai_addrlen;
    freeaddrinfo(found);
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *) sa)->sin_port = htons((uint16_t) port);
    else
        ((struct sockaddr_in6 *) sa)->sin6_port = htons((uint16_t) port);
    return 0;
}

dashboard_t *dashboard_new(const char *addr, bool *bad_addr, char *err, size_t errlen)
{
    /* A bare port means loopback, and so does localhost. */
    char where[300];
    const char *given = addr;
    if (*addr && strspn(addr, "0123456789") == strlen(addr))
        snprintf(where, sizeof where, "127.0.0.1:%s", addr);
    else if (strncasecmp(addr, "localhost:", 10) == 0)
        snprintf(where, sizeof where, "127.0.0.1:%s", addr + 10);
    else
        snprintf(where, sizeof where, "%s", addr);
    addr = where;
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char host[256];
    *bad_addr = false;
    if (s_address(addr, given, &sa, &sa_len, host, sizeof host, err, errlen) < 0) {
        *bad_addr = true;
        return NULL;
    }
    if (s_load_mhd(err, errlen) < 0)
        return NULL;
    dashboard_t *self = calloc(1, sizeof *self);
    if (self)
        snprintf(self->host, sizeof self->host, "%s", host);
    if (!self) {
        snprintf(err, errlen, "--dashboard: out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->encoded, NULL);
    pthread_cond_init(&self->pictured, NULL);
    /* A thread per connection (a slow client, or one waiting for a picture,
       holds up nobody), with poll: the manager may hold more than
       FD_SETSIZE descriptors. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Each connection holds a descriptor: pages held open must leave the
       manager enough for its workers and for writing the output (at
       `ulimit -n 150`, 300 slow pages once made a finished job fail with
       "Too many open files"). */
    struct rlimit files;
    unsigned connections = CONNECTIONS_MAX;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
        && files.rlim_cur / CONNECTIONS_SHARE < connections)
        connections = files.rlim_cur / CONNECTIONS_SHARE > 4 ? (unsigned) (files.rlim_cur / CONNECTIONS_SHARE) : 4;
    s_start_why[0] = '\0';
    atomic_store(&s_starting, true);
    /* The port argument is ignored beside MHD_OPTION_SOCK_ADDR, but its
       complaints name it. */
    uint16_t port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &sa)->sin6_port
                                                  : ((struct sockaddr_in *) &sa)->sin_port);
    self->daemon = mhd.start_daemon(flags, port, NULL, NULL, s_handle, self, MHD_OPTION_SOCK_ADDR, &sa,
                                    MHD_OPTION_CONNECTION_LIMIT, connections,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) CONNECTION_TIMEOUT_S,
                                    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) REQUEST_MEMORY,
                                    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL, MHD_OPTION_END);
    atomic_store(&s_starting, false);
    if (!self->daemon && s_start_why[0])
        snprintf(err, errlen, "--dashboard %s: cannot start: %s", addr, s_start_why);
    else if (!self->daemon)
        snprintf(err, errlen, "--dashboard %s: cannot listen there (in use, or not an address of this machine?)",
                 addr);
    if (!self->daemon) {
        pthread_mutex_destroy(&self->mutex);
        pthread_cond_destroy(&self->encoded);
        pthread_cond_destroy(&self->pictured);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = mhd.get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char numeric[INET6_ADDRSTRLEN] = "";
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, numeric, sizeof numeric);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, numeric, sizeof numeric);
    snprintf(self->url, sizeof self->url, sa.ss_family == AF_INET6 ? "http://[%s]:%u/" : "http://%s:%u/", numeric,
             info ? info->port : 0);
    self->loopback = sa.ss_family == AF_INET ? (ntohl(((struct sockaddr_in *) &sa)->sin_addr.s_addr) >> 24) == 127
                                             : IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) &sa)->sin6_addr);
    if (self->loopback)
        log_info("dashboard at %s", self->url);
    else
        log_warn("dashboard at %s, reachable beyond this machine: anyone who can reach it sees the job's"
                 " parameters, output path and worker names and addresses (never keys)", self->url);
    (void) sa_len;
    return self;
}

void dashboard_destroy(dashboard_t **self_p)
{
    dashboard_t *self = *self_p;
    if (!self)
        return;
    mhd.stop_daemon(self->daemon);   /* joins its thread and closes the socket */
    free(self->status), free(self->metrics), free(self->batch);
    free(self->picture.rgb), free(self->png);
    pthread_mutex_destroy(&self->mutex);
    pthread_cond_destroy(&self->encoded);
    free(self);
    *self_p = NULL;
}

const char *dashboard_url(const dashboard_t *self) { return self->url; }
