// Test-only allocation counter. Linked into the test executable, these definitions interpose glibc's
// allocator for the whole process (the executable's symbols come first in ELF symbol resolution, so
// the Swift runtime's calls land here too) and forward to glibc's own entry points (__libc_*).
// Only the thread that called tm_alloc_count_begin is counted, so tests running in parallel on other
// threads do not disturb a measurement. free is forwarded untouched: the benchmarks count allocations.
#include <errno.h>
#include <stddef.h>
#include "CMallocCounter.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

// initial-exec: reading these from inside malloc must never allocate (no lazy TLS block).
static __thread int counting __attribute__((tls_model("initial-exec")));
static __thread long long allocations __attribute__((tls_model("initial-exec")));

void tm_alloc_count_begin(void) {
    allocations = 0;
    counting = 1;
}

long long tm_alloc_count_end(void) {
    counting = 0;
    return allocations;
}

void *malloc(size_t size) {
    if (counting) allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (counting) allocations++;
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size) {
    if (counting) allocations++;
    return __libc_realloc(ptr, size);
}

void free(void *ptr) {
    __libc_free(ptr);
}

void *memalign(size_t alignment, size_t size) {
    if (counting) allocations++;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (counting) allocations++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    if (counting) allocations++;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
