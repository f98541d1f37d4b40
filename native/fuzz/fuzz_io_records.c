/*
 * libFuzzer target for the io engine's record parser: any bytes submitted as a batch must give
 * exactly one completion per whole 64-byte record, with a valid status and reason, and never
 * crash, hang or touch memory outside the registered region (ASan watches). Both backends.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../io_engine.h"

#define MAX_RECORDS 64

static struct dsd_io_engine *engines[2];
static size_t nengines;
static struct dsd_io_registry *reg;
static size_t reaped;

static int count(void *ctx, uint64_t key, const struct dsd_completion_record *recs, size_t n,
                 const struct dsd_request_record *failed, size_t nfailed)
{
    (void)ctx;
    if (key != 1 || nfailed > n || (nfailed && failed == NULL))
        abort();
    for (size_t i = 0; i < n; i++)
        if (recs[i].status > DSD_STATUS_CANCELLED || recs[i].reason > DSD_REASON_SHUTDOWN)
            abort();
    reaped += n;
    return 0;
}

static void setup(void)
{
    int file = memfd_create("fuzz-file", MFD_CLOEXEC);
    int shm = memfd_create("fuzz-region", MFD_CLOEXEC);
    char buf[4096];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)i;
    if (file < 0 || shm < 0 || pwrite(file, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || ftruncate(shm, 65536))
        abort();
    if (dsd_io_registry_new(&reg) || dsd_io_registry_add_file(reg, 0, file) || dsd_io_registry_add_file(reg, 1, file) ||
        dsd_io_registry_add_region(reg, 0, shm, 65536) || dsd_io_registry_add_region(reg, 1, shm, 4096))
        abort();
    close(file);
    close(shm);
    int kinds[2] = {DSD_IO_BACKEND_POSIX, DSD_IO_BACKEND_URING};
    for (int i = 0; i < 2; i++) {
        struct dsd_io_config cfg = {.backend = kinds[i], .workers = 2, .queue_depth = 4, .staging_bytes = 1 << 20,
                                    .codec_workers = 2, .coalesce = 1};
        char why[256];
        if (dsd_io_engine_new(&cfg, &engines[nengines], why, sizeof(why)) == 0)
            nengines++;
    }
    if (nengines == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (reg == NULL)
        setup();
    size_t n = size / sizeof(struct dsd_request_record);
    if (n > MAX_RECORDS)
        n = MAX_RECORDS;
    for (size_t i = 0; i < nengines; i++) {
        size_t accepted;
        reaped = 0;
        if (dsd_io_engine_submit(engines[i], reg, 1, data, n, &accepted) != 0 || accepted > n)
            abort();
        for (int spins = 0; reaped < n; spins++) {
            if (spins > 5000)
                abort(); /* a record that never completes */
            struct pollfd p = {.fd = dsd_io_engine_fd(engines[i]), .events = POLLIN};
            poll(&p, 1, 1);
            dsd_io_engine_reap(engines[i], count, NULL);
        }
        if (reaped != n)
            abort();
    }
    return 0;
}
