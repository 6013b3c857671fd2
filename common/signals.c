/* signals: steering SIGINT and SIGTERM to the main thread. */
#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

static void s_mask(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(how, &set, NULL);
}

void signals_block(void) { s_mask(SIG_BLOCK); }
void signals_unblock(void) { s_mask(SIG_UNBLOCK); }
