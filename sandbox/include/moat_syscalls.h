/* Kernel constants that older libc headers lack; values from the kernel's uapi headers. */
#ifndef MOAT_SYSCALLS_H
#define MOAT_SYSCALLS_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#define MOAT_OPEN_TREE_CLONE 1U
#define MOAT_AT_RECURSIVE 0x8000U
#define MOAT_MOVE_MOUNT_F_EMPTY_PATH 0x00000004U
#define MOAT_MOVE_MOUNT_T_EMPTY_PATH 0x00000040U
#define MOAT_MOUNT_ATTR_RDONLY 0x00000001ULL
#define MOAT_MOUNT_ATTR_NOSUID 0x00000002ULL
#define MOAT_MOUNT_ATTR_NODEV 0x00000004ULL
#define MOAT_MOUNT_ATTR_NOEXEC 0x00000008ULL
#define MOAT_CLOSE_RANGE_CLOEXEC (1U << 2)

#define MOAT_CLONE_PIDFD 0x00001000ULL
#define MOAT_CLONE_INTO_CGROUP 0x200000000ULL

struct moat_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

/* clone3's argument, version 2 (with the cgroup field). */
struct moat_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

#endif
