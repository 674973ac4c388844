// Counts heap allocations made by the calling thread, for tests that prove
// a code path allocates nothing. The test binary's malloc family forwards to
// glibc's and counts while counting is on.
#ifndef SPRIG_ALLOC_COUNTER_H
#define SPRIG_ALLOC_COUNTER_H

/// Starts counting this thread's allocations from zero.
void sprig_alloc_counter_start(void);
/// Stops counting and returns how many allocations this thread made.
long sprig_alloc_counter_stop(void);

#endif
