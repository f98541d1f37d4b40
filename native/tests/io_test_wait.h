/* Shared by the io engine's C tests: wait (up to ~3 s) until nothing is in flight. */
#ifndef DSD_IO_TEST_WAIT_H
#define DSD_IO_TEST_WAIT_H

#include <unistd.h>

#include "../io_engine.h"

/* 0 once st (filled in) says nothing is in flight, -1 if that never came. */
static inline int wait_until_idle(struct dsd_io_engine *e, struct dsd_io_stats *st)
{
    for (int spins = 0; spins < 3000; spins++) {
        dsd_io_engine_stats(e, st);
        if (st->in_flight == 0)
            return 0;
        usleep(1000);
    }
    return -1;
}

#endif
