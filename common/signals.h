/* signals: SIGINT, SIGTERM and SIGHUP are counted by one handler and go to
   the main thread, whose poller they wake at once, rather than to whichever
   helper thread the kernel picks. SIGPIPE is ignored: a closed pipe is an
   error return, never a reason to die. */
#ifndef HY_SIGNALS_H
#define HY_SIGNALS_H

/* Installs the handler (and turns czmq's own off). Call before zsys_init
   and before any thread starts. */
void signals_init(void);
/* Stop signals received so far (0: none; a second one asks for haste). */
int signals_count(void);
/* The last stop signal received, or 0. */
int signals_last(void);

/* Blocks the stop signals in the calling thread: threads it starts next
   inherit the block. (A process started with fork + exec inherits it too,
   until it unblocks them.) */
void signals_block(void);
/* Unblocks them in the calling thread, once its helper threads exist. */
void signals_unblock(void);

#endif
