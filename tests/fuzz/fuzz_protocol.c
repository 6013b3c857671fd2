/* fuzz_protocol: libFuzzer target for everything a peer's bytes reach first:
   the wire decoder with its list readers (units, kinds, results) and, for JOB
   messages, every job kind's parameter loader. */
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
    /* Every list a decoded message carries reads back whole: the decoder
       checked each entry, so the readers must neither fail early nor run on. */
    for (size_t i = 0; i < msg.unit_count; i++)
        sum += hy_unit_at(&msg, i);
    size_t cursor = 0, n = 0, len;
    const char *kind_name;
    while (hy_kind_next(&msg, &cursor, &kind_name, &len)) {
        if (len == 0 || !job_find(kind_name, len))
            sum += len;
        n++;
    }
    if (n != (msg.command == HY_HELLO ? msg.kind_count : 0))
        abort();
    cursor = n = 0;
    hy_result_t result;
    while (hy_result_next(&msg, &cursor, &result)) {
        if (result.status > HY_RESULT_RETURNED || (result.status == HY_RESULT_RETURNED && result.len))
            abort();
        sum += result.unit + (result.len ? result.data[result.len - 1] : 0);
        n++;
    }
    if (n != msg.result_count)
        abort();
    if (msg.command == HY_JOB) {
        /* The kind named, and every other kind too: each must refuse what it
           cannot use, and never crash on it. */
        for (size_t k = 0; k < job_count(); k++) {
            const job_kind_t *kind = job_at(k);
            void *ctx = kind->load(msg.data, msg.data_len);
            if (ctx)
                kind->unload(ctx);
        }
    }
    return (int) (sum & 0);
}
