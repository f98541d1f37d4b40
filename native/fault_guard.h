/*
 * Work that survives memory vanishing under it: SIGBUS-guarded copies and jobs.
 *
 * A load or store to a MAP_SHARED page past its file's end raises SIGBUS. The io engine touches
 * such memory while other processes may shrink it: client regions (shared memory a client can
 * truncate) in the codec jobs and the mapped reads, and the files the mapped read path copies
 * from. One process-wide SIGBUS handler serves both: a fault on a thread that is inside a
 * guarded copy or job jumps back out of it, which then reports failure; every other SIGBUS goes
 * on to the handler that was there before (Python's faulthandler, ASan, the default action), so
 * real faults still end the process as they would have.
 */
#ifndef DSD_FAULT_GUARD_H
#define DSD_FAULT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Puts the handler in place (chaining to the present one) unless it already is the one in
 * place; cheap to call again. Returns 0 or -errno; until it succeeds, guarded work runs
 * unguarded. A handler installed after ours (say faulthandler.enable()) is found by the next
 * call and then chained behind ours. */
int dsd_fault_guard_install(void);

/* fn(arg), false if a SIGBUS on this thread cut it short (it must then hold no lock, and leave
 * nothing half-done that its caller does not clean up). */
bool dsd_fault_guard_run(void (*fn)(void *), void *arg);

/* memcpy(dst, src, n), false if it faulted (dst then holds part of it): the source file shrank,
 * or the destination did. */
bool dsd_fault_guard_copy(void *dst, const void *src, size_t n);

#endif
