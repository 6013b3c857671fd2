/* fuzz_protocol: libFuzzer target for everything a peer's bytes reach first:
   the wire decoder and, for JOB messages, every job kind's parameter loader. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/protocol.h"
#include "jobs/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++)
        log_set_level(HY_LOG_OFF);
    hy_msg_t msg;
    if (hy_decode(data, size, &msg) != 0)
        return 0;
    uint64_t sum = 0;
    if (msg.command == HY_UNITS)
        for (size_t i = 0; i < msg.unit_count; i++)
            sum += hy_unit_at(&msg, i);
    if (msg.command == HY_JOB) {
        /* The kind named, and every other kind too: each must refuse what it
           cannot use, and never crash on it. */
        static const char *kinds[] = {"mandelbrot", "pi", "primes", "frames", "noop"};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const job_kind_t *kind = job_find(kinds[k], strlen(kinds[k]));
            void *ctx = kind->load(msg.data, msg.data_len);
            if (ctx)
                kind->unload(ctx);
        }
    }
    return (int) (sum & 0);
}
