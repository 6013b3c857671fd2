/* curve: CURVE authentication and encryption for hyades sockets (CurveZMQ,
   certificates as czmq writes them, ZAP through czmq's zauth). */
#ifndef HY_CURVE_H
#define HY_CURVE_H

#include <czmq.h>
#include <stdbool.h>

#define HY_ZAP_DOMAIN "hyades"

/* Writes a new key pair: the public certificate at path, the secret one at
   path_secret (private to its owner). Refuses to overwrite. Returns 0, or -1
   with a one-line reason in err. */
int curve_keygen(const char *path, char *err, size_t errlen);

/* Loads a certificate; with need_secret, path must have its _secret beside
   it, readable by nobody but its owner and group (as ssh refuses a key that
   others can read). Caller owns the result. NULL with a one-line reason in
   err. */
zcert_t *curve_load(const char *path, bool need_secret, char *err, size_t errlen);

/* Makes sock (before it binds) a CURVE server with its key pair that fails
   closed: its ZAP domain is enforced, so without a ZAP handler (zauth) no
   client gets in, instead of every client. Returns 0, or -1 with err. */
int curve_server_setup(zsock_t *sock, zcert_t *cert, char *err, size_t errlen);

/* Makes sock (before it connects) a CURVE client with its key pair that
   trusts only the server whose public certificate is server. */
void curve_client_setup(zsock_t *sock, zcert_t *cert, zcert_t *server);

/* Whether a bind endpoint is reachable only from this machine (loopback
   addresses, ipc://, inproc://). */
bool curve_endpoint_is_local(const char *endpoint);

/* Public certificates in dir (files not ending in _secret that czmq loads);
   *skipped: the other entries (not hidden), the first of them named in first. */
size_t curve_count_certs(const char *dir, size_t *skipped, char *first, size_t first_len);

#endif
