/*
 * What a random 4 KiB read of a cached file costs, four ways: pread(), memcpy() from a shared
 * mapping of the file, the same with the next read's first cache lines prefetched, and mincore()
 * of one page (what a per-read residency check would add). The numbers behind the mapped read
 * path (docs/io-engine.md, native/io_mapped.c).
 *
 *   gcc -O2 -o /tmp/mapped_copy tools/mapped_copy.c
 *   dd if=/dev/urandom of=/tmp/f bs=1M count=1024 && cat /tmp/f > /dev/null && /tmp/mapped_copy /tmp/f
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define N 2000000
#define PAGE 4096

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint8_t buf[64][PAGE];

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE (cached, at least a few MiB)\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (size < 16 * PAGE) {
        fprintf(stderr, "%s: cannot read, or too small\n", argv[1]);
        return 1;
    }
    uint8_t *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    uint64_t *offs = malloc(N * sizeof(*offs));
    if (map == MAP_FAILED || offs == NULL)
        return 1;
    srand(1);
    for (int i = 0; i < N; i++)
        offs[i] = (uint64_t)(rand() % (size / PAGE)) * PAGE;
    for (int i = 0; i < N; i++) /* map every page first, as a long-running daemon has */
        memcpy(buf[i & 63], map + offs[i], PAGE);

    double t = now();
    for (int i = 0; i < N; i++)
        if (pread(fd, buf[i & 63], PAGE, (off_t)offs[i]) != PAGE)
            return 1;
    double t_pread = now() - t;

    t = now();
    for (int i = 0; i < N; i++)
        memcpy(buf[i & 63], map + offs[i], PAGE);
    double t_copy = now() - t;

    t = now();
    for (int i = 0; i < N; i++) {
        if (i + 1 < N)
            for (int k = 0; k < 4; k++)
                __builtin_prefetch(map + offs[i + 1] + k * 64);
        memcpy(buf[i & 63], map + offs[i], PAGE);
    }
    double t_prefetch = now() - t;

    unsigned char vec[1];
    t = now();
    for (int i = 0; i < N; i++)
        mincore(map + offs[i], PAGE, vec);
    double t_mincore = now() - t;

    printf("per 4 KiB read: pread %.0f ns, memcpy from the mapping %.0f ns, with prefetch %.0f ns, "
           "mincore of one page %.0f ns\n",
           t_pread / N * 1e9, t_copy / N * 1e9, t_prefetch / N * 1e9, t_mincore / N * 1e9);
    return 0;
}
