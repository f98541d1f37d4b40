/*
 * fault_guard under ASan/UBSan: copies from a mapping whose file shrank, and into a mapping that
 * shrank, and a guarded job touching such memory, report failure instead of killing the process;
 * a SIGBUS outside any guarded work still reaches the handler that was there before (here a
 * test handler that jumps back).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../fault_guard.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static sigjmp_buf outside;
static volatile sig_atomic_t outside_faults;

static void previous_handler(int sig)
{
    (void)sig;
    outside_faults++;
    siglongjmp(outside, 1);
}

static void touch_past_the_end(void *arg)
{
    volatile unsigned char *p = arg;
    (void)p[0];
}

static int shrinking_file(size_t size, unsigned char **map)
{
    int fd = memfd_create("dsd-test-guard", MFD_CLOEXEC);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
    *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(*map != MAP_FAILED);
    for (size_t i = 0; i < size; i++)
        (*map)[i] = (unsigned char)(i * 131u);
    return fd;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = previous_handler;
    sa.sa_flags = SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
    CHECK(dsd_fault_guard_install() == 0);
    CHECK(dsd_fault_guard_install() == 0); /* again: already in place */

    long page = sysconf(_SC_PAGESIZE);
    size_t size = 8 * (size_t)page;
    unsigned char *src, *dst;
    int sfd = shrinking_file(size, &src);
    int dfd = shrinking_file(size, &dst);
    unsigned char *buf = malloc(size);

    CHECK(dsd_fault_guard_copy(buf, src, size) && memcmp(buf, src, size) == 0);
    CHECK(ftruncate(sfd, 2 * page) == 0);
    for (int round = 0; round < 3; round++) /* and again: SIGBUS must be unblocked after each */
        CHECK(!dsd_fault_guard_copy(buf, src + page, 3 * (size_t)page));
    CHECK(dsd_fault_guard_copy(buf, src, 2 * (size_t)page)); /* what is left still copies */

    CHECK(!dsd_fault_guard_run(touch_past_the_end, src + 6 * page));
    CHECK(dsd_fault_guard_run(touch_past_the_end, src)); /* still there */

    CHECK(ftruncate(dfd, page) == 0);
    CHECK(!dsd_fault_guard_copy(dst + page / 2, buf, (size_t)page));

    /* a fault no copy is guarding goes to the handler that was there before */
    if (sigsetjmp(outside, 1) == 0) {
        volatile unsigned char c = src[5 * page];
        (void)c;
        CHECK(0 && "the load past the end did not fault");
    }
    CHECK(outside_faults == 1);
    CHECK(dsd_fault_guard_copy(buf, src, (size_t)page)); /* and guarding still works afterwards */
    CHECK(!dsd_fault_guard_copy(buf, src + 4 * page, (size_t)page));

    munmap(src, size);
    munmap(dst, size);
    close(sfd);
    close(dfd);
    free(buf);
    printf("fault_guard: ok\n");
    return 0;
}
