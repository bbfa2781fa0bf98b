/*
 * Raw wrappers for the syscalls that older C libraries do not wrap. The numbers below are the
 * kernel's unified numbers (the same on x86_64, aarch64 and the other architectures that use the
 * generic table), used only when the libc headers do not define them.
 */
#include "include/moat_sandbox.h"
#include "include/moat_syscalls.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

int sys_open_tree(int dirfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

int sys_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

int sys_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set, uint64_t attr_clr) {
    struct moat_mount_attr attributes = {.attr_set = attr_set, .attr_clr = attr_clr};
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attributes, sizeof attributes);
}

int sys_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int sys_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, MOAT_CLOSE_RANGE_CLOEXEC);
}
