// System calls that Swift's Glibc module does not export.
#ifndef TOKENMETER_CSYSTEM_H
#define TOKENMETER_CSYSTEM_H

/// syncfs(2): flushes every dirty page of the file system holding `fd` (Linux; glibc declares it only
/// under _GNU_SOURCE, which the Glibc module is not built with).
int tm_syncfs(int fd);

#endif
