/* dashboard: the manager's read-only web side (libmicrohttpd, in its own
   thread): a live page at /, /api/status (JSON), /metrics (Prometheus text)
   and /preview.png. The event loop never waits for it: it publishes
   snapshots (copied under a mutex), and the HTTP thread serves the latest.
   Nothing the dashboard receives can change the manager's state. */
#ifndef HY_DASHBOARD_H
#define HY_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "jobs/job.h"

#define DASHBOARD_EVENTS 50         /* recent events kept for the page */
#define DASHBOARD_PUBLISH_MS 250    /* how often the event loop publishes a status */
#define DASHBOARD_PREVIEW_MS 1000   /* ... and at most how often a picture, while one is asked for */
#define DASHBOARD_PREVIEW_SIDE 1024    /* pictures fit in this many pixels both ways */

typedef struct dashboard_t dashboard_t;

/* Serves on addr, "HOST:PORT" ("[::1]:PORT" for IPv6; port 0: one the
   kernel picks; a bare port or localhost:PORT: loopback), and logs its URL. NULL with a one-line reason in err, and *bad_addr set when
   addr itself is wrong (not when it cannot be listened on). Caller owns it. */
dashboard_t *dashboard_new(const char *addr, bool *bad_addr, char *err, size_t errlen);
/* Stops serving (the port is closed when it returns); sets *self_p to NULL. */
void dashboard_destroy(dashboard_t **self_p);
/* "http://HOST:PORT/". */
const char *dashboard_url(const dashboard_t *self);

/* The status of the job (one JSON object, without "events" and "batch", which
   the dashboard adds) and the metrics (Prometheus text): both copied; and
   whether the job can draw a picture of its output. */
void dashboard_publish(dashboard_t *self, const char *status, size_t status_len, const char *metrics,
                       size_t metrics_len, bool has_picture);
/* A new picture of the output (taken over: the caller no longer owns
   picture->rgb), or NULL for none. Encoded as PNG when asked for. */
void dashboard_publish_picture(dashboard_t *self, job_picture_t *picture);
/* Whether /preview.png was asked for since the last picture was published
   (so that pictures are only made while somebody watches). */
bool dashboard_picture_wanted(dashboard_t *self);
/* The jobs of a batch and their states, as a JSON value (copied), or NULL. */
void dashboard_set_batch(dashboard_t *self, const char *json);
/* Records an event for the page (any thread). */
void dashboard_event(dashboard_t *self, log_level_t level, const char *text);
/* A log tap (common/log.h) that records INFO lines and above as events. */
void dashboard_log_tap(void *self, log_level_t level, const char *text);

#endif
