/* signals: SIGINT and SIGTERM go to the main thread, whose poller they wake
   at once, rather than to whichever helper thread the kernel picks. */
#ifndef HY_SIGNALS_H
#define HY_SIGNALS_H

/* Blocks SIGINT and SIGTERM in the calling thread: threads it starts next
   inherit the block. (A process started with fork + exec inherits it too,
   until it unblocks them.) */
void signals_block(void);
/* Unblocks them in the calling thread, once its helper threads exist. */
void signals_unblock(void);

#endif
