/* curve: key pairs, CURVE server and client set-up, and which endpoints need them. */
#include "common/curve.h"
#include "common/outfile.h"

#include <dirent.h>
#include <libgen.h>
#include <errno.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN; czmq's setter for it is compiled out of Debian's
   czmq (draft API) and does nothing, so it is set on the libzmq socket. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* czmq names the secret file "%s_secret" in a buffer of 256 bytes: a
   longer path would be cut, and the secret written over (or read from) the
   wrong file, even the public one. */
#define CZMQ_PATH_MAX 255

static bool s_path_fits(const char *path, char *err, size_t errlen)
{
    if (strlen(path) + strlen("_secret") <= CZMQ_PATH_MAX)
        return true;
    snprintf(err, errlen, "the key file name %.80s... is too long: with _secret it must fit in %d bytes", path,
             CZMQ_PATH_MAX);
    return false;
}

/* The pair is written by czmq inside a private directory made beside path,
   then each file is hard-linked to its name: link(2) neither follows nor
   replaces anything there, so a file or a link (dangling or not) planted at
   either name makes keygen refuse instead of writing the key where the link
   points. */
int curve_keygen(const char *path, char *err, size_t errlen)
{
    if (!s_path_fits(path, err, errlen))
        return -1;
    long at = outfile_control_at(path);
    if (at >= 0) {
        snprintf(err, errlen, "a key file name with a control character (byte 0x%02x at offset %ld)",
                 (unsigned char) path[at], at);
        return -1;
    }
    char secret[4096], copy[4096], dir[4096];
    snprintf(secret, sizeof secret, "%s_secret", path);
    snprintf(copy, sizeof copy, "%s", path);
    if (snprintf(dir, sizeof dir, "%s/.hyades-keygen.XXXXXX", dirname(copy)) >= (int) sizeof dir || !mkdtemp(dir)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno ? errno : ENAMETOOLONG));
        return -1;
    }
    char made[4200], made_secret[4300];
    snprintf(made, sizeof made, "%s/key", dir);
    snprintf(made_secret, sizeof made_secret, "%s_secret", made);
    zcert_t *cert = zcert_new();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    zcert_set_meta(cert, "created-by", "hyades keygen on %s", host);
    int rc = zcert_save(cert, made), why = errno;
    zcert_destroy(&cert);
    const char *failed = path;   /* the file rc is about */
    if (rc == 0 && (rc = link(made_secret, secret)) != 0) {
        why = errno;
        failed = secret;
    } else if (rc == 0 && (rc = link(made, path)) != 0) {
        why = errno;
        unlink(secret);   /* no half pair */
    }
    if (rc != 0 && why == EEXIST)
        snprintf(err, errlen, "%s or %s already exists; not overwriting a key", path, secret);
    else if (rc != 0)
        snprintf(err, errlen, "cannot write %s: %s", failed, strerror(why));
    unlink(made);
    unlink(made_secret);
    rmdir(dir);
    return rc == 0 ? 0 : -1;
}

zcert_t *curve_load(const char *path, bool need_secret, char *err, size_t errlen)
{
    if (!s_path_fits(path, err, errlen))
        return NULL;
    char secret_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    if (need_secret && access(secret_path, F_OK) == 0 && access(secret_path, R_OK) != 0) {
        snprintf(err, errlen, "cannot read the secret key %s: %s", secret_path, strerror(errno));
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        snprintf(err, errlen, "cannot load the certificate %s", path);
        return NULL;
    }
    /* zcert_load reads FILE_secret when there is one, public key included:
       a public FILE of another pair would go unnoticed here, and fail the
       handshakes of those given FILE. */
    zconfig_t *public_only = access(secret_path, F_OK) == 0 ? zconfig_load(path) : NULL;
    const char *public_key = public_only ? zconfig_get(public_only, "/curve/public-key", NULL) : NULL;
    if (public_key && !streq(public_key, zcert_public_txt(cert))) {
        snprintf(err, errlen, "%s and %s are not one key pair: their public keys differ", path, secret_path);
        zconfig_destroy(&public_only);
        zcert_destroy(&cert);
        return NULL;
    }
    zconfig_destroy(&public_only);
    static const char zero[] = "0000000000000000000000000000000000000000";
    if (need_secret && streq(zcert_secret_txt(cert), zero)) {
        snprintf(err, errlen, "%s_secret is missing or damaged: a key pair is needed here, not only a public certificate",
                 path);
        zcert_destroy(&cert);
        return NULL;
    }
    /* A secret key whose public key is not the one beside it: every
       handshake would fail, with nothing to say why. */
    char derived[41];
    if (!streq(zcert_secret_txt(cert), zero) && zmq_curve_public(derived, zcert_secret_txt(cert)) == 0
        && !streq(derived, zcert_public_txt(cert))) {
        snprintf(err, errlen, "%s: its secret key is not the one of its public key (damaged?)", secret_path);
        zcert_destroy(&cert);
        return NULL;
    }
    struct stat st;
    if (need_secret && stat(secret_path, &st) == 0 && (st.st_mode & (S_IRWXO | S_IWGRP))) {
        snprintf(err, errlen, "the secret key %s can be read or changed by other users (mode %04o): run 'chmod 600 %s' "
                 "(or 640 to share it with a group)", secret_path, (unsigned) (st.st_mode & 07777), secret_path);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

int curve_server_setup(zsock_t *sock, zcert_t *cert, char *err, size_t errlen)
{
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, HY_ZAP_DOMAIN);
    int on = 1;
    if (zmq_setsockopt(zsock_resolve(sock), ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) != 0) {
        snprintf(err, errlen, "this libzmq cannot enforce ZAP (ZMQ_ZAP_ENFORCE_DOMAIN): %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

void curve_client_setup(zsock_t *sock, zcert_t *cert, zcert_t *server)
{
    zcert_apply(cert, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(server));
}

bool curve_endpoint_is_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 || strncmp(host, "[::1]:", 6) == 0;
}

size_t curve_count_certs(const char *dir, size_t *skipped, char *first, size_t first_len)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    *skipped = 0;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 7 && streq(e->d_name + len - 7, "_secret")))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        /* (only readable files are loaded: the loader prints what it cannot parse) */
        struct stat st;
        zcert_t *cert = stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0 ? zcert_load(path)
                                                                                                : NULL;
        if (!cert && (*skipped)++ == 0)
            snprintf(first, first_len, "%s", e->d_name);
        n += cert != NULL;
        zcert_destroy(&cert);
    }
    if (d)
        closedir(d);
    return n;
}
