// System calls that Swift's Glibc module does not export.
#ifndef TOKENMETER_CSYSTEM_H
#define TOKENMETER_CSYSTEM_H

/// syncfs(2): flushes every dirty page of the file system holding `fd` (Linux; glibc declares it only
/// under _GNU_SOURCE, which the Glibc module is not built with).
int tm_syncfs(int fd);

/// Asks the CPU to start loading the cache line at `p` for a write (no fault if `p` is not mapped): the
/// windows' row tables and the de-duplication sets are far larger than the caches, and an event's lookups
/// in them are started before the work that does not need them, instead of one cache miss after another.
static inline void tm_prefetch(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
