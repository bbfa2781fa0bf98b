/*
 * The seccomp filters: an allowlist in the style of Docker's default profile (anything not listed
 * fails with EPERM), and a second, tiny filter for the one rule an allowlist cannot say with
 * libseccomp: "ioctl is allowed, except TIOCSTI and TIOCLINUX". The kernel runs both filters on
 * every syscall and takes the stricter answer.
 *
 * In rlimit mode (no memory cgroup) a third filter of the same kind refuses the syscalls that create
 * memory RLIMIT_AS never sees: memfd_create (pages written with write() belong to no mapping) and
 * the SysV shared memory, message queue and semaphore sets of the sandbox's IPC namespace; and it
 * refuses raising a socket's buffers (SO_SNDBUF, SO_RCVBUF and their FORCE forms) or a pipe's
 * (F_SETPIPE_SZ), so that RLIMIT_NOFILE bounds that kernel memory.
 *
 * All filters kill the whole process on a syscall from a non-native ABI (i386 `int 0x80` or x32 on
 * x86_64): those calls would bypass every rule written for the native numbers.
 *
 * Built once per launcher run, in the sandbox's init, and loaded by the command process as the very
 * last step before execve.
 *
 * Compiling ~330 rules with libseccomp costs about 1.5 ms of CPU on every run, more than the rest of
 * the sandbox setup together. So, like minijail's build-time policy compilation, the programs
 * libseccomp produces from the rules below are also kept in include/moat_filter_blob.h (generated
 * by `moat-sandbox --export-filter`), and on the architecture they were generated for the launcher
 * loads those directly. `moat-sandbox --verify-filter` (run by CI) regenerates them from these rules
 * and fails if the stored copy differs; on any other architecture the rules are compiled at run time.
 */
#include "include/moat_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "include/moat_filter_blob.h"

struct seccomp_filters {
    /* Compiled at run time, or NULL when the stored programs are used. */
    scmp_filter_ctx allowlist;
    scmp_filter_ctx ioctl_guard;
    scmp_filter_ctx memory_guard;
};

/* Allowed without conditions. Names unknown to this architecture are skipped.
 *
 * Left out on purpose because they draw on host-wide counters, not the sandbox's own: io_setup and
 * the rest of Linux AIO (fs.aio-max-nr, shared by the whole host), inotify (instances and watches
 * are counted per host user, across namespaces) and POSIX message queues (RLIMIT_MSGQUEUE, per host
 * user). Docs/Sandbox.md lists the review. */
static const char *const allowed_syscalls[] = {
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget", "capset",
    "chdir", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
    "copy_file_range", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchown", "fchownat", "fcntl", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync",
    "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_mempolicy",
    "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid",
    "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresuid", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt",
    "gettid", "gettimeofday", "getuid", "getxattr", "ioctl", "ioprio_get", "ioprio_set", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise",
    "map_shadow_stack", "mbind", "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom",
    "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "set_mempolicy", "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsuid", "setgid",
    "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid",
    "setrlimit", "setsid", "setsockopt", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice", "stat", "statfs", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
    "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
};

/* Syscalls newer than some libseccomp releases know, by their native number. */
static int fallback_number(const char *name) {
#if defined(__x86_64__) || defined(__aarch64__)
    if (strcmp(name, "mseal") == 0) return 462;
#endif
#if defined(__x86_64__)
    if (strcmp(name, "uretprobe") == 0) return 335;
#endif
    (void)name;
    return -1;
}

/* Namespace-creating clone flags; CLONE_NEWTIME cannot be passed to clone(2) (it overlaps CSIGNAL). */
#define NAMESPACE_CLONE_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

#define LOW_32_BITS 0xFFFFFFFFULL
#define SETID_BITS ((scmp_datum_t)(S_ISUID | S_ISGID))

static int add_rules(scmp_filter_ctx allowlist) {
    for (size_t index = 0; index < sizeof allowed_syscalls / sizeof allowed_syscalls[0]; index++) {
        int number = seccomp_syscall_resolve_name(allowed_syscalls[index]);
        if (number == __NR_SCMP_ERROR) number = fallback_number(allowed_syscalls[index]);
        if (number == __NR_SCMP_ERROR || number == -1) continue;
        int result = seccomp_rule_add(allowlist, SCMP_ACT_ALLOW, number, 0);
        if (result != 0) return result;
    }

    int result;
    /* clone: threads and plain forks only, never a new namespace. */
#if defined(__s390__) || defined(__s390x__)
    result = seccomp_rule_add(allowlist, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, NAMESPACE_CLONE_FLAGS, 0));
#else
    result = seccomp_rule_add(allowlist, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, NAMESPACE_CLONE_FLAGS, 0));
#endif
    if (result != 0) return result;
    /* clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes libc fall back to clone. */
    if ((result = seccomp_rule_add(allowlist, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0) return result;
    /* openat2 hides its mode in memory too; ENOSYS makes callers fall back to openat. */
    if ((result = seccomp_rule_add(allowlist, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0)) != 0) return result;

    /* socket: unix, IPv4 and IPv6 only (no packet, netlink, crypto (AF_ALG), vsock, ...). The kernel
     * reads the family as an int, so only the low 32 bits are compared. */
    static const scmp_datum_t families[] = {AF_UNIX, AF_INET, AF_INET6};
    for (size_t index = 0; index < sizeof families / sizeof families[0]; index++) {
        result = seccomp_rule_add(allowlist, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, LOW_32_BITS, families[index]));
        if (result != 0) return result;
    }

    /* personality: querying (0xffffffff) and the default (PER_LINUX) only, never READ_IMPLIES_EXEC,
     * ADDR_NO_RANDOMIZE and friends. */
    static const scmp_datum_t personas[] = {0, 0xFFFFFFFFULL};
    for (size_t index = 0; index < sizeof personas / sizeof personas[0]; index++) {
        result = seccomp_rule_add(allowlist, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, LOW_32_BITS, personas[index]));
        if (result != 0) return result;
    }

    /* File modes: never set-user-ID or set-group-ID bits. Writable binds are host directories, and
     * such a bit would survive outside the sandbox, where mounts are not nosuid. */
    static const struct {
        const char *name;
        unsigned argument;
    } mode_arguments[] = {
        {"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2}, {"fchmodat2", 2}, {"creat", 1},
        {"open", 2},  {"openat", 3}, {"mknod", 1},    {"mknodat", 2},
    };
    for (size_t index = 0; index < sizeof mode_arguments / sizeof mode_arguments[0]; index++) {
        int number = seccomp_syscall_resolve_name(mode_arguments[index].name);
        if (number == __NR_SCMP_ERROR) continue;
        struct scmp_arg_cmp comparison = {
            .arg = mode_arguments[index].argument, .op = SCMP_CMP_MASKED_EQ, .datum_a = SETID_BITS, .datum_b = 0};
        result = seccomp_rule_add_array(allowlist, SCMP_ACT_ALLOW, number, 1, &comparison);
        if (result != 0) return result;
    }
    return 0;
}

/* Memory outside RLIMIT_AS; refused only when no memory cgroup counts it. */
static const char *const memory_outside_rlimit[] = {"memfd_create", "shmget", "msgget", "semget"};

static int add_memory_guard(scmp_filter_ctx guard) {
    for (size_t index = 0; index < sizeof memory_outside_rlimit / sizeof memory_outside_rlimit[0]; index++) {
        int number = seccomp_syscall_resolve_name(memory_outside_rlimit[index]);
        if (number == __NR_SCMP_ERROR) continue;
        int result = seccomp_rule_add(guard, SCMP_ACT_ERRNO(EPERM), number, 0);
        if (result != 0) return result;
    }
    /* Socket and pipe buffers stay at their defaults (net.core.wmem_default / rmem_default, 16
     * pages a pipe), so RLIMIT_NOFILE bounds what they hold. The kernel reads these as int. */
    static const scmp_datum_t buffer_options[] = {SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE};
    for (size_t index = 0; index < sizeof buffer_options / sizeof buffer_options[0]; index++) {
        int result = seccomp_rule_add(guard, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
                                      SCMP_A1(SCMP_CMP_MASKED_EQ, LOW_32_BITS, SOL_SOCKET),
                                      SCMP_A2(SCMP_CMP_MASKED_EQ, LOW_32_BITS, buffer_options[index]));
        if (result != 0) return result;
    }
    return seccomp_rule_add(guard, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
                            SCMP_A1(SCMP_CMP_MASKED_EQ, LOW_32_BITS, F_SETPIPE_SZ));
}

static int add_ioctl_guard(scmp_filter_ctx guard) {
    /* The kernel reads the request as 32 bits: compare only those, so a request with high bits set
     * (0x100005412) is still recognised as TIOCSTI. */
    static const scmp_datum_t requests[] = {TIOCSTI, TIOCLINUX};
    for (size_t index = 0; index < sizeof requests / sizeof requests[0]; index++) {
        int result = seccomp_rule_add(guard, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                      SCMP_A1(SCMP_CMP_MASKED_EQ, LOW_32_BITS, requests[index]));
        if (result != 0) return result;
    }
    return 0;
}

static struct seccomp_filters *compile_filters(const char **failed_step) {
    struct seccomp_filters *filters = checked_malloc(sizeof *filters);
    filters->allowlist = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    filters->ioctl_guard = seccomp_init(SCMP_ACT_ALLOW);
    filters->memory_guard = seccomp_init(SCMP_ACT_ALLOW);
    if (!filters->allowlist || !filters->ioctl_guard || !filters->memory_guard) {
        *failed_step = "create the seccomp filters";
        errno = ENOMEM;
        return NULL;
    }
    /* Native architecture only: anything else kills the process. libseccomp also treats x32
     * syscall numbers on x86_64 as a foreign architecture. */
    int result = seccomp_attr_set(filters->allowlist, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (result == 0) result = seccomp_attr_set(filters->ioctl_guard, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (result == 0) result = seccomp_attr_set(filters->memory_guard, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* A binary search over syscall numbers instead of a linear chain: a few comparisons per
     * syscall rather than up to ~330, which also makes the kernel's per-syscall action cache
     * (computed when the filter is loaded) cheap to build. */
    if (result == 0) result = seccomp_attr_set(filters->allowlist, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (result != 0) {
        *failed_step = "set the seccomp bad-architecture action";
        errno = -result;
        return NULL;
    }
    if ((result = add_rules(filters->allowlist)) != 0) {
        *failed_step = "add the seccomp allowlist rules";
        errno = -result;
        return NULL;
    }
    if ((result = add_ioctl_guard(filters->ioctl_guard)) != 0) {
        *failed_step = "add the seccomp ioctl rules";
        errno = -result;
        return NULL;
    }
    if ((result = add_memory_guard(filters->memory_guard)) != 0) {
        *failed_step = "add the seccomp memory rules";
        errno = -result;
        return NULL;
    }
    return filters;
}

static bool stored_programs_usable(void) {
#if MOAT_FILTER_BLOB_AVAILABLE
    return true;
#else
    return false;
#endif
}

struct seccomp_filters *seccomp_filters_build(const char **failed_step) {
    if (stored_programs_usable()) {
        struct seccomp_filters *filters = checked_malloc(sizeof *filters);
        filters->allowlist = NULL;
        filters->ioctl_guard = NULL;
        filters->memory_guard = NULL;
        return filters;
    }
    return compile_filters(failed_step);
}

#if MOAT_FILTER_BLOB_AVAILABLE
static int install_program(const struct sock_filter *instructions, size_t count) {
    struct sock_fprog program = {.len = (unsigned short)count, .filter = (struct sock_filter *)instructions};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
}
#endif

int seccomp_filters_load(struct seccomp_filters *filters, bool memory_guard) {
    if (!filters->allowlist) {
#if MOAT_FILTER_BLOB_AVAILABLE
        if (install_program(moat_filter_ioctl_guard, sizeof moat_filter_ioctl_guard / sizeof moat_filter_ioctl_guard[0]) != 0)
            return -1;
        if (memory_guard &&
            install_program(moat_filter_memory_guard, sizeof moat_filter_memory_guard / sizeof moat_filter_memory_guard[0]) != 0)
            return -1;
        return install_program(moat_filter_allowlist, sizeof moat_filter_allowlist / sizeof moat_filter_allowlist[0]);
#else
        (void)memory_guard;
        errno = ENOSYS;
        return -1;
#endif
    }
    int result = seccomp_load(filters->ioctl_guard);
    if (result == 0 && memory_guard) result = seccomp_load(filters->memory_guard);
    if (result == 0) result = seccomp_load(filters->allowlist);
    if (result != 0) {
        errno = -result;
        return -1;
    }
    return 0;
}

/* ---- the stored copy: export and verification ---- */

/* libseccomp's program for one filter, read back through a memfd. */
static struct sock_filter *export_program(scmp_filter_ctx filter, size_t *count) {
    int fd = memfd_create("moat-filter", MFD_CLOEXEC);
    if (fd < 0 || seccomp_export_bpf(filter, fd) != 0) return NULL;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0) return NULL;
    struct sock_filter *program = checked_malloc((size_t)size);
    if (pread(fd, program, (size_t)size, 0) != size) return NULL;
    close(fd);
    *count = (size_t)size / sizeof(struct sock_filter);
    return program;
}

static const char *architecture_name(void) {
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "other";
#endif
}

static void print_program(const char *name, const struct sock_filter *program, size_t count) {
    printf("static const struct sock_filter %s[%zu] = {\n", name, count);
    for (size_t index = 0; index < count; index++)
        printf("    {0x%04x, %u, %u, 0x%08x},\n", program[index].code, program[index].jt, program[index].jf,
               program[index].k);
    printf("};\n");
}

int seccomp_filters_export(void) {
    const char *step = NULL;
    struct seccomp_filters *filters = compile_filters(&step);
    size_t guard_count = 0, memory_count = 0, allowlist_count = 0;
    struct sock_filter *guard = filters ? export_program(filters->ioctl_guard, &guard_count) : NULL;
    struct sock_filter *memory = filters ? export_program(filters->memory_guard, &memory_count) : NULL;
    struct sock_filter *allowlist = filters ? export_program(filters->allowlist, &allowlist_count) : NULL;
    if (!guard || !memory || !allowlist) {
        fprintf(stderr, "cannot compile the seccomp filters\n");
        return 1;
    }
    const struct scmp_version *version = seccomp_version();
    printf("/* Generated by `moat-sandbox --export-filter` from sandbox/filter.c; do not edit.\n"
           " * `moat-sandbox --verify-filter` checks that this matches the rules. */\n"
           "#ifndef MOAT_FILTER_BLOB_H\n#define MOAT_FILTER_BLOB_H\n\n#include <linux/filter.h>\n\n"
           "#define MOAT_FILTER_BLOB_LIBSECCOMP \"%u.%u.%u\"\n\n#if defined(__%s__)\n"
           "#define MOAT_FILTER_BLOB_AVAILABLE 1\n",
           version->major, version->minor, version->micro, architecture_name());
    print_program("moat_filter_ioctl_guard", guard, guard_count);
    print_program("moat_filter_memory_guard", memory, memory_count);
    print_program("moat_filter_allowlist", allowlist, allowlist_count);
    printf("#else\n#define MOAT_FILTER_BLOB_AVAILABLE 0\n#endif\n\n#endif\n");
    return 0;
}

int seccomp_filters_verify(void) {
#if MOAT_FILTER_BLOB_AVAILABLE
    const struct scmp_version *version = seccomp_version();
    char running[32];
    snprintf(running, sizeof running, "%u.%u.%u", version->major, version->minor, version->micro);
    if (strcmp(running, MOAT_FILTER_BLOB_LIBSECCOMP) != 0) {
        printf("filter: not compared: stored programs come from libseccomp %s, this is %s\n",
               MOAT_FILTER_BLOB_LIBSECCOMP, running);
        return 0;
    }
    const char *step = NULL;
    struct seccomp_filters *filters = compile_filters(&step);
    size_t guard_count = 0, memory_count = 0, allowlist_count = 0;
    struct sock_filter *guard = filters ? export_program(filters->ioctl_guard, &guard_count) : NULL;
    struct sock_filter *memory = filters ? export_program(filters->memory_guard, &memory_count) : NULL;
    struct sock_filter *allowlist = filters ? export_program(filters->allowlist, &allowlist_count) : NULL;
    if (!guard || !memory || !allowlist) {
        printf("filter: cannot compile the rules\n");
        return 1;
    }
    bool same = guard_count == sizeof moat_filter_ioctl_guard / sizeof moat_filter_ioctl_guard[0] &&
                memory_count == sizeof moat_filter_memory_guard / sizeof moat_filter_memory_guard[0] &&
                memcmp(memory, moat_filter_memory_guard, sizeof moat_filter_memory_guard) == 0 &&
                allowlist_count == sizeof moat_filter_allowlist / sizeof moat_filter_allowlist[0] &&
                memcmp(guard, moat_filter_ioctl_guard, sizeof moat_filter_ioctl_guard) == 0 &&
                memcmp(allowlist, moat_filter_allowlist, sizeof moat_filter_allowlist) == 0;
    if (!same) {
        printf("filter: the stored programs differ from the rules; regenerate with\n"
               "  moat-sandbox --export-filter > sandbox/include/moat_filter_blob.h\n");
        return 1;
    }
    printf("filter: stored programs match the rules (%zu + %zu + %zu instructions)\n", guard_count, memory_count,
           allowlist_count);
    return 0;
#else
    printf("filter: no stored programs for this architecture; rules are compiled at run time\n");
    return 0;
#endif
}
