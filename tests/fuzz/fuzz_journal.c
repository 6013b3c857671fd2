/* fuzz_journal: libFuzzer target for the journal reader. The input is what
   follows a valid header (records, damage, torn tails); the reader must
   replay only records that check out, never crash, and leave a file that
   reads back the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t s_params[] = {1, 2, 3};

static void s_count(void *arg, uint64_t unit, const uint8_t *payload, size_t len)
{
    (void) unit, (void) payload;
    size_t *bytes = arg;
    *bytes += len + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        log_set_level(HY_LOG_OFF);
        snprintf(path, sizeof path, "/tmp/hyades-fuzz-journal-%d", (int) getpid());
    }
    char err[256];
    unlink(path);
    journal_t *j = journal_open(path, "noop", s_params, sizeof s_params, 10, 0, s_count, NULL, err, sizeof err);
    if (!j)
        abort();   /* a new journal must always open */
    journal_close(&j);
    FILE *f = fopen(path, "ab");
    fwrite(data, 1, size, f);
    fclose(f);
    size_t first = 0, second = 0;
    j = journal_open(path, "noop", s_params, sizeof s_params, 10, 0, s_count, &first, err, sizeof err);
    if (!j)
        return 0;
    journal_close(&j);
    /* Whatever was kept reads back the same, with no damage left. */
    j = journal_open(path, "noop", s_params, sizeof s_params, 10, 0, s_count, &second, err, sizeof err);
    if (!j || first != second)
        abort();
    journal_close(&j);
    return 0;
}
