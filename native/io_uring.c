/*
 * io_uring backend: rings land in the next commit; until then AUTO falls back to the pread pool.
 */
#include "io_backend.h"

#include <errno.h>
#include <stdio.h>

static int uring_start(struct dsd_io_engine *e, char *reason, size_t reason_len)
{
    (void)e;
    snprintf(reason, reason_len, "io_uring backend not built yet");
    return -ENOSYS;
}

const struct dsd_io_backend_ops dsd_io_uring_ops = {
    .name = "uring",
    .start = uring_start,
};
