/* signals: one async-signal-safe handler that counts stop signals. */
#include "common/signals.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>

static volatile sig_atomic_t s_count;
static volatile sig_atomic_t s_last;

static void s_handler(int sig)
{
    s_last = sig;
    s_count++;
}

static void s_mask(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(how, &set, NULL);
}

void signals_init(void)
{
    zsys_handler_set(NULL);   /* czmq's handler would only set zsys_interrupted */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);   /* past `ulimit -f`: a write fails with EFBIG, said like a full disk */
}

int signals_count(void) { return (int) s_count; }
int signals_last(void) { return (int) s_last; }
void signals_block(void) { s_mask(SIG_BLOCK); }
void signals_unblock(void) { s_mask(SIG_UNBLOCK); }
