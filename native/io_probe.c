/*
 * Host capability checks for AUTO and `dsd doctor`: each one does the real thing once (set up a
 * ring, do an O_DIRECT read) instead of guessing from kernel versions.
 */
#define _GNU_SOURCE
#include "io_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dsd_io_uring_probe(char *reason, size_t reason_len)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc < 0) {
        snprintf(reason, reason_len, "io_uring_setup: %s", strerror(-rc));
        return 0;
    }
    /* A ring can exist yet refuse reads (seccomp filters on io_uring_enter, disabled opcodes). */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    int ok = 1;
    if (probe != NULL) {
        if (!io_uring_opcode_supported(probe, IORING_OP_READ)) {
            snprintf(reason, reason_len, "io_uring lacks IORING_OP_READ (kernel older than 5.6)");
            ok = 0;
        } else if (!io_uring_opcode_supported(probe, IORING_OP_WRITE) || !io_uring_opcode_supported(probe, IORING_OP_FSYNC)) {
            snprintf(reason, reason_len, "io_uring lacks IORING_OP_WRITE / IORING_OP_FSYNC");
            ok = 0;
        } else if (!io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL)) {
            snprintf(reason, reason_len, "io_uring lacks IORING_OP_ASYNC_CANCEL");
            ok = 0;
        }
        io_uring_free_probe(probe);
    }
    if (ok) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_nop(sqe);
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0) {
            snprintf(reason, reason_len, "io_uring_enter: %s", strerror(-rc));
            ok = 0;
        } else {
            snprintf(reason, reason_len, "io_uring works");
        }
    }
    io_uring_queue_exit(&ring);
    return ok;
}

/* Reads one aligned block of fd with O_DIRECT semantics (fd was opened with O_DIRECT). */
static int direct_read_ok(int fd, char *reason, size_t reason_len)
{
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, 4096) != 0) {
        snprintf(reason, reason_len, "out of memory");
        return 0;
    }
    ssize_t n = pread(fd, buf, 4096, 0);
    int err = errno;
    free(buf);
    if (n < 0) {
        snprintf(reason, reason_len, "O_DIRECT read: %s", strerror(err));
        return 0;
    }
    snprintf(reason, reason_len, "O_DIRECT works");
    return 1;
}

int dsd_io_odirect_probe(const char *path, char *reason, size_t reason_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(reason, reason_len, "%s: %s", path, strerror(errno));
        return 0;
    }
    int fd;
    if (S_ISDIR(st.st_mode)) {
        /* an unnamed file on that filesystem, written then read back without the page cache */
        fd = open(path, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(reason, reason_len, "open(O_TMPFILE|O_DIRECT) in %s: %s", path, strerror(errno));
            return 0;
        }
        void *buf = NULL;
        if (posix_memalign(&buf, 4096, 4096) != 0) {
            close(fd);
            snprintf(reason, reason_len, "out of memory");
            return 0;
        }
        memset(buf, 0x5a, 4096);
        ssize_t w = pwrite(fd, buf, 4096, 0);
        int err = errno;
        free(buf);
        if (w != 4096) {
            close(fd);
            snprintf(reason, reason_len, "O_DIRECT write: %s", w < 0 ? strerror(err) : "short write");
            return 0;
        }
    } else {
        fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
            snprintf(reason, reason_len, "open(O_DIRECT) %s: %s", path, strerror(errno));
            return 0;
        }
    }
    int ok = direct_read_ok(fd, reason, reason_len);
    close(fd);
    return ok;
}
