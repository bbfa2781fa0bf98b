#ifndef MOAT_FILES_H
#define MOAT_FILES_H

/// openat2(2) of `path` beneath the directory `dirfd`: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, so the kernel refuses `..` out of it, any symlink on the way
/// (the last component included), /proc magic links and mount points, in one race-free lookup.
/// Returns the descriptor, or -1 with errno set (ENOSYS where the kernel has no openat2).
/// A C shim because the libc `syscall` is variadic, which Swift cannot call.
int moat_open_beneath(int dirfd, const char *path, int flags, unsigned int mode);

#endif
