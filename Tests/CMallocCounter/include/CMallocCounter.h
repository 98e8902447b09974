#ifndef CMALLOCCOUNTER_H
#define CMALLOCCOUNTER_H

/// Counts heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by
/// the calling thread between `tm_alloc_count_begin` and `tm_alloc_count_end`. Other threads (parallel
/// tests) are never counted: the switch and the counter are thread-local.
void tm_alloc_count_begin(void);
/// Stops counting on this thread and returns the allocations counted since `tm_alloc_count_begin`.
long long tm_alloc_count_end(void);

#endif
