/*
 * moat-sandbox-probe: the escape probes, a test-only executable (never installed; Docs/Sandbox.md,
 * "Escape suite"). `moat-sandbox-probe NAME [ARGS]` runs as the sandboxed command, bound read-only into
 * the sandbox the real launcher builds. Each probe tries one thing a hostile command would try, with
 * raw syscalls where a libc wrapper could hide the answer, and prints one line:
 *
 *   held: NAME: what happened          exit 0: the sandbox held
 *   ESCAPED: NAME: what happened       exit 1: it did not
 *
 * A few probes are judged from outside instead (int80 and x32 are expected to be killed by SIGSYS;
 * orphan is expected to end at the timeout; flood and memory-bomb are judged by the result too).
 * `moat-sandbox-probe all` runs every probe that needs no argument and reports a count.
 *
 * The probe refuses to run outside a sandbox (no seccomp filter, or no_new_privs unset): several
 * probes are real attacks (a fork bomb, a memory bomb) that must never meet the host. It used to be
 * the launcher's `--probe` mode; it lives apart so the installed launcher carries no attack code.
 */
/* The launcher's constants (its stop signal, clone3's argument), so the probes test the real values. */
#include "../../sandbox/include/moat_sandbox.h"
#include "../../sandbox/include/moat_syscalls.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

static int verdict(bool held, const char *name, const char *format, ...) __attribute__((format(printf, 3, 4)));

static int verdict(bool held, const char *name, const char *format, ...) {
    char detail[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(detail, sizeof detail, format, arguments);
    va_end(arguments);
    printf("%s: %s: %s\n", held ? "held" : "ESCAPED", name, detail);
    fflush(stdout);
    return held ? 0 : 1;
}

static const char *errno_name(int error) {
    switch (error) {
    case 0: return "success";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSYS: return "ENOSYS";
    case ENOTTY: return "ENOTTY";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerror(error);
    }
}

/* Appends ",item" (or "item") to a fixed buffer, dropping what does not fit. */
static void list_append(char *list, size_t size, const char *item) {
    size_t used = strlen(list);
    if (used && used + 1 < size) list[used++] = ',';
    size_t length = strnlen(item, size - used - 1);
    memcpy(list + used, item, length);
    list[used + length] = '\0';
}

/* Held when the call failed with one of the listed errors (terminated by 0). */
static int expect_errors(const char *name, long result, int error, const int *allowed) {
    if (result >= 0) return verdict(false, name, "the call succeeded (returned %ld)", result);
    for (const int *entry = allowed; *entry; entry++)
        if (error == *entry) return verdict(true, name, "%s", errno_name(error));
    return verdict(false, name, "unexpected error %s", errno_name(error));
}

#define EXPECT(name, call, ...)                                                                                 \
    do {                                                                                                        \
        errno = 0;                                                                                              \
        long result_ = (long)(call);                                                                            \
        int error_ = errno;                                                                                     \
        static const int allowed_[] = {__VA_ARGS__, 0};                                                         \
        return expect_errors(name, result_, error_, allowed_);                                                  \
    } while (0)

/* ---- filesystem ---- */

static int probe_write_etc(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("write-etc", open("/etc/moat-probe", O_WRONLY | O_CREAT | O_EXCL, 0644), EROFS);
}

static int probe_write_usr_bin_true(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("write-usr-bin-true", open("/usr/bin/true", O_WRONLY), EACCES, EROFS);
}

static int probe_fill_tmp(int argc, char **argv) {
    uint64_t limit = argc > 0 ? strtoull(argv[0], NULL, 10) : 64ull << 20;
    int fd = open("/tmp/moat-fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return verdict(false, "fill-tmp", "cannot create a file in /tmp: %s", errno_name(errno));
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    uint64_t total = 0;
    int error = 0;
    for (;;) {
        ssize_t written = write(fd, block, sizeof block);
        if (written < 0) {
            error = errno;
            break;
        }
        total += (uint64_t)written;
        if (total > limit + (8u << 20)) break;
    }
    close(fd);
    unlink("/tmp/moat-fill");
    bool held = error == ENOSPC && total <= limit;
    return verdict(held, "fill-tmp", "%s after %llu bytes (limit %llu)", errno_name(error),
                   (unsigned long long)total, (unsigned long long)limit);
}

static int probe_host_dirs(int argc, char **argv) {
    (void)argc, (void)argv;
    static const char *const paths[] = {"/root", "/home", "/sys", "/run", "/var", "/boot", "/mnt"};
    for (size_t index = 0; index < sizeof paths / sizeof paths[0]; index++) {
        struct stat status;
        if (stat(paths[index], &status) == 0 || errno != ENOENT)
            return verdict(false, "host-dirs", "%s is present (%s)", paths[index], errno_name(errno));
    }
    return verdict(true, "host-dirs", "/root, /home, /sys, /run, /var, /boot, /mnt: ENOENT");
}

static int probe_write_proc_sys(int argc, char **argv) {
    (void)argc, (void)argv;
    DIR *directory = opendir("/proc/sys/kernel");
    if (!directory) return verdict(false, "write-proc-sys", "cannot list /proc/sys/kernel: %s", errno_name(errno));
    int tried = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/sys/kernel/%s", entry->d_name);
        struct stat status;
        if (stat(path, &status) != 0 || !S_ISREG(status.st_mode)) continue;
        tried++;
        int fd = open(path, O_WRONLY);
        if (fd >= 0) {
            close(fd);
            closedir(directory);
            return verdict(false, "write-proc-sys", "opened %s for writing", path);
        }
        if (errno != EACCES && errno != EROFS && errno != EPERM) {
            closedir(directory);
            return verdict(false, "write-proc-sys", "%s: unexpected %s", path, errno_name(errno));
        }
    }
    closedir(directory);
    return verdict(tried > 0, "write-proc-sys", "%d files under /proc/sys/kernel refused writing", tried);
}

static int probe_sysrq(int argc, char **argv) {
    (void)argc, (void)argv;
    /* ENOENT: a kernel built without magic SysRq has no trigger to protect. */
    EXPECT("sysrq", open("/proc/sysrq-trigger", O_WRONLY), EACCES, EROFS, ENOENT);
}

static int probe_mknod_block(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("mknod-block", mknod("/tmp/moat-block", S_IFBLK | 0600, makedev(8, 0)), EPERM);
}

static int probe_setid_bits(int argc, char **argv) {
    (void)argc, (void)argv;
    int fd = open("/tmp/moat-setid", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (fd < 0) return verdict(false, "setid-bits", "cannot create a file in /tmp: %s", errno_name(errno));
    close(fd);
    long chmod_result = syscall(SYS_chmod, "/tmp/moat-setid", 04755);
    int chmod_error = errno;
    long open_result = syscall(SYS_openat, AT_FDCWD, "/tmp/moat-setid2", O_WRONLY | O_CREAT, 02755);
    int open_error = errno;
    if (open_result >= 0) close((int)open_result);
    bool held = chmod_result < 0 && chmod_error == EPERM && open_result < 0 && open_error == EPERM;
    return verdict(held, "setid-bits", "chmod 4755: %s, create with 2755: %s",
                   chmod_result < 0 ? errno_name(chmod_error) : "success",
                   open_result < 0 ? errno_name(open_error) : "success");
}

/* ---- network ---- */

/* Lists interfaces from /proc/net/dev; returns how many are up, and writes their names. */
static int interfaces_up(char *names, size_t size, int *total) {
    names[0] = '\0';
    *total = 0;
    FILE *file = fopen("/proc/net/dev", "re");
    if (!file) return -1;
    int socket_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char line[512];
    int up = 0;
    while (fgets(line, sizeof line, file)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        char *name = line;
        while (*name == ' ') name++;
        (*total)++;
        struct ifreq request;
        memset(&request, 0, sizeof request);
        size_t name_length = strnlen(name, sizeof request.ifr_name - 1);
        memcpy(request.ifr_name, name, name_length);
        if (socket_fd < 0 || ioctl(socket_fd, SIOCGIFFLAGS, &request) != 0 || (request.ifr_flags & IFF_UP)) {
            up++;
            size_t used = strlen(names);
            snprintf(names + used, size - used, "%s%s", used ? "," : "", name);
        }
    }
    if (socket_fd >= 0) close(socket_fd);
    fclose(file);
    return up;
}

static int probe_net_ifaces(int argc, char **argv) {
    (void)argc, (void)argv;
    char names[256];
    int total;
    int up = interfaces_up(names, sizeof names, &total);
    if (up < 0) return verdict(false, "net-ifaces", "cannot read /proc/net/dev");
    return verdict(up == 0, "net-ifaces", "%d interfaces, %d up%s%s", total, up, up ? ": " : "", names);
}

static int probe_connect_tcp(int argc, char **argv) {
    if (argc < 2) return verdict(false, "connect-tcp", "usage: connect-tcp ADDRESS PORT");
    char names[256];
    int total;
    /* Never send a packet towards a real address from a sandbox that turns out to have a network. */
    int up = interfaces_up(names, sizeof names, &total);
    if (up != 0) return verdict(false, "connect-tcp", "not trying: the sandbox has interfaces up (%s)", names);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    if (inet_pton(AF_INET, argv[0], &address.sin_addr) != 1) return verdict(false, "connect-tcp", "bad address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return verdict(false, "connect-tcp", "socket: %s", errno_name(errno));
    struct timeval timeout = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    EXPECT("connect-tcp", connect(fd, (struct sockaddr *)&address, sizeof address), ECONNREFUSED, ENETUNREACH,
           EHOSTUNREACH);
}

static int probe_connect_abstract(int argc, char **argv) {
    if (argc < 1) return verdict(false, "connect-abstract", "usage: connect-abstract NAME");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(argv[0]);
    if (length + 1 > sizeof address.sun_path) return verdict(false, "connect-abstract", "name too long");
    memcpy(address.sun_path + 1, argv[0], length);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return verdict(false, "connect-abstract", "socket: %s", errno_name(errno));
    EXPECT("connect-abstract",
           connect(fd, (struct sockaddr *)&address, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length)),
           ECONNREFUSED, ENOENT);
}

static int probe_socket_packet(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("socket-packet", syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0), EPERM, EAFNOSUPPORT);
}

static int probe_socket_alg(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("socket-alg", syscall(SYS_socket, AF_ALG, SOCK_SEQPACKET, 0), EPERM, EAFNOSUPPORT);
}

static int probe_socket_netlink(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("socket-netlink", syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0), EPERM, EAFNOSUPPORT);
}

/* ---- syscalls the filter denies ---- */

static int probe_ptrace(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("ptrace", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0), EPERM);
}

static int probe_mount(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL), EPERM);
}

static int probe_umount_proc(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("umount-proc", syscall(SYS_umount2, "/proc", MNT_DETACH), EPERM);
}

static int probe_unshare_user(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("unshare-user", syscall(SYS_unshare, CLONE_NEWUSER), EPERM);
}

static int probe_clone_newuser(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    long pid = syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    int error = errno;
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    static const int allowed[] = {EPERM, 0};
    return expect_errors("clone-newuser", pid, error, allowed);
}

static int probe_clone3(int argc, char **argv) {
    (void)argc, (void)argv;
    struct moat_clone_args arguments;
    memset(&arguments, 0, sizeof arguments);
    arguments.exit_signal = SIGCHLD;
    errno = 0;
    long pid = syscall(SYS_clone3, &arguments, 64);
    if (pid == 0) _exit(0);
    int error = errno;
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    static const int allowed[] = {ENOSYS, 0};
    return expect_errors("clone3", pid, error, allowed);
}

static int probe_setns(int argc, char **argv) {
    (void)argc, (void)argv;
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    EXPECT("setns", syscall(SYS_setns, fd, 0), EPERM);
}

static int probe_chroot(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("chroot", syscall(SYS_chroot, "/tmp"), EPERM);
}

static int probe_keyctl(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    long keyctl = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    int keyctl_error = errno;
    errno = 0;
    long add_key = syscall(SYS_add_key, "user", "moat-probe", "x", 1, -3);
    int add_key_error = errno;
    errno = 0;
    long request_key = syscall(SYS_request_key, "user", "moat-probe", NULL, 0);
    int request_key_error = errno;
    bool held = keyctl < 0 && keyctl_error == EPERM && add_key < 0 && add_key_error == EPERM && request_key < 0 &&
                request_key_error == EPERM;
    return verdict(held, "keyctl", "keyctl %s, add_key %s, request_key %s", errno_name(keyctl < 0 ? keyctl_error : 0),
                   errno_name(add_key < 0 ? add_key_error : 0), errno_name(request_key < 0 ? request_key_error : 0));
}

static int probe_bpf(int argc, char **argv) {
    (void)argc, (void)argv;
    char attributes[128];
    memset(attributes, 0, sizeof attributes);
    EXPECT("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attributes, sizeof attributes), EPERM);
}

static int probe_perf_event_open(int argc, char **argv) {
    (void)argc, (void)argv;
    struct perf_event_attr attributes;
    memset(&attributes, 0, sizeof attributes);
    attributes.size = sizeof attributes;
    attributes.type = PERF_TYPE_SOFTWARE;
    attributes.config = PERF_COUNT_SW_CPU_CLOCK;
    EXPECT("perf_event_open", syscall(SYS_perf_event_open, &attributes, 0, -1, -1, 0), EPERM);
}

static int probe_userfaultfd(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC), EPERM);
}

/* Host-wide counters: fs.aio-max-nr is shared by the whole host, inotify instances and POSIX message
 * queues are counted per host user across every namespace. */
static int probe_io_setup(int argc, char **argv) {
    (void)argc, (void)argv;
    unsigned long context = 0;
    EXPECT("io_setup", syscall(SYS_io_setup, 1024, &context), EPERM);
}

static int probe_inotify(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    long first = syscall(SYS_inotify_init1, O_CLOEXEC);
    int first_error = errno;
#ifdef SYS_inotify_init
    errno = 0;
    long second = syscall(SYS_inotify_init);
    int second_error = errno;
#else
    long second = -1;
    int second_error = EPERM;
#endif
    bool held = first < 0 && first_error == EPERM && second < 0 && second_error == EPERM;
    return verdict(held, "inotify_init", "inotify_init1 %s, inotify_init %s", first < 0 ? errno_name(first_error) : "succeeded",
                   second < 0 ? errno_name(second_error) : "succeeded");
}

static int probe_mq_open(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("mq_open", syscall(SYS_mq_open, "moat-probe", O_RDWR | O_CREAT, 0600, NULL), EPERM);
}

/* Memory that RLIMIT_AS does not see: judged from outside, by limits mode (in cgroup2 mode the
 * memory cgroup counts it and the run ends as oom). Each writes BYTES and reports how far it got. */
static int probe_memfd_fill(int argc, char **argv) {
    uint64_t target = argc > 0 ? strtoull(argv[0], NULL, 10) : 512ull << 20;
    /* Several memfds of 16 MiB, each below RLIMIT_FSIZE. */
    const uint64_t per_memfd = 16u << 20;
    static char block[1 << 20];
    memset(block, 'm', sizeof block);
    uint64_t total = 0;
    int error = 0;
    while (total < target && !error) {
        int fd = (int)syscall(SYS_memfd_create, "moat-probe", 0);
        if (fd < 0) {
            error = errno;
            break;
        }
        for (uint64_t filled = 0; filled < per_memfd;) {
            ssize_t written = write(fd, block, sizeof block);
            if (written <= 0) {
                error = written < 0 ? errno : ENOSPC;
                break;
            }
            filled += (uint64_t)written;
            total += (uint64_t)written;
        }
    }
    if (total == 0 && error == EPERM) return verdict(true, "memfd-fill", "memfd_create: EPERM");
    return verdict(total < target, "memfd-fill", "memfds hold %llu MiB (%s)", (unsigned long long)(total >> 20),
                   error ? errno_name(error) : "no error");
}

/* Kernel memory in socket and pipe buffers, which RLIMIT_AS never sees: raise the descriptor limit,
 * try to enlarge the buffers, then fill socketpairs and pipes until the target or a limit. */
static int probe_buffer_fill(int argc, char **argv) {
    uint64_t target = argc > 0 ? strtoull(argv[0], NULL, 10) : 512ull << 20;
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    int pair[2], pipe_ends[2];
    int big = 64 << 20, sndbuf_error = 0, force_error = 0, pipe_error = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return verdict(false, "buffer-fill", "socketpair failed");
    if (setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big) != 0) sndbuf_error = errno;
    if (setsockopt(pair[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0) force_error = errno;
    close(pair[0]);
    close(pair[1]);
    if (pipe(pipe_ends) != 0) return verdict(false, "buffer-fill", "pipe failed");
    if (fcntl(pipe_ends[1], F_SETPIPE_SZ, 1 << 20) < 0) pipe_error = errno;
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    static char block[1 << 16];
    memset(block, 'b', sizeof block);
    uint64_t total = 0;
    int error = 0;
    while (total < target && !error) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) != 0) {
            error = errno;
            break;
        }
        for (int end = 0; end < 2 && total < target; end++) {
            ssize_t written;
            while (total < target && (written = write(pair[end], block, sizeof block)) > 0) total += (uint64_t)written;
        }
    }
    return verdict(total < target && sndbuf_error && force_error && pipe_error, "buffer-fill",
                   "descriptors %llu; SO_SNDBUF: %s; SO_SNDBUFFORCE: %s; F_SETPIPE_SZ: %s; socket buffers hold %llu MiB (%s)",
                   (unsigned long long)files.rlim_cur, errno_name(sndbuf_error), errno_name(force_error),
                   errno_name(pipe_error), (unsigned long long)(total >> 20), error ? errno_name(error) : "no error");
}

static int probe_sysv_shm_fill(int argc, char **argv) {
    uint64_t target = argc > 0 ? strtoull(argv[0], NULL, 10) : 512ull << 20;
    const size_t segment = 16u << 20;
    uint64_t total = 0;
    int error = 0;
    while (total < target) {
        int id = shmget(IPC_PRIVATE, segment, IPC_CREAT | 0600);
        if (id < 0) {
            error = errno;
            break;
        }
        /* Attached one at a time, so RLIMIT_AS never sees more than one segment. */
        void *memory = shmat(id, NULL, 0);
        if (memory == (void *)-1) {
            error = errno;
            break;
        }
        memset(memory, 's', segment);
        shmdt(memory);
        total += segment;
    }
    if (total == 0 && error == EPERM) return verdict(true, "sysv-shm-fill", "shmget: EPERM");
    return verdict(total < target, "sysv-shm-fill", "SysV segments hold %llu MiB (%s)", (unsigned long long)(total >> 20),
                   error ? errno_name(error) : "no error");
}

/* POSIX shared memory lives in /dev/shm, a tmpfs outside RLIMIT_AS: the sandbox has none. */
static int probe_dev_shm(int argc, char **argv) {
    (void)argc, (void)argv;
    EXPECT("dev-shm", open("/dev/shm/moat-probe", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), ENOENT, EROFS);
}

static int probe_sysv_msg_sem(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    int queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    int queue_error = errno;
    errno = 0;
    int set = semget(IPC_PRIVATE, 1000, IPC_CREAT | 0600);
    int set_error = errno;
    bool held = queue < 0 && queue_error == EPERM && set < 0 && set_error == EPERM;
    return verdict(held, "sysv-msg-sem", "msgget %s, semget %s", queue < 0 ? errno_name(queue_error) : "succeeded",
                   set < 0 ? errno_name(set_error) : "succeeded");
}

static int probe_io_uring(int argc, char **argv) {
    (void)argc, (void)argv;
    char parameters[120];
    memset(parameters, 0, sizeof parameters);
    EXPECT("io_uring_setup", syscall(SYS_io_uring_setup, 4, parameters), EPERM);
}

static int probe_tiocsti(int argc, char **argv) {
    (void)argc, (void)argv;
    char character = 'x';
    static const struct {
        const char *label;
        unsigned long request;
    } requests[] = {
        {"TIOCSTI", TIOCSTI},
        {"TIOCSTI|1<<32", (1UL << 32) | TIOCSTI},
        {"TIOCLINUX", TIOCLINUX},
        {"TIOCLINUX|1<<32", (1UL << 32) | TIOCLINUX},
    };
    char detail[256] = "";
    bool held = true;
    for (size_t index = 0; index < sizeof requests / sizeof requests[0]; index++) {
        errno = 0;
        long result = syscall(SYS_ioctl, STDIN_FILENO, requests[index].request, &character);
        int error = errno;
        if (result >= 0 || error != EPERM) held = false;
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, "%s%s %s", used ? ", " : "", requests[index].label,
                 result >= 0 ? "succeeded" : errno_name(error));
    }
    return verdict(held, "tiocsti", "%s", detail);
}

static int probe_open_by_handle(int argc, char **argv) {
    (void)argc, (void)argv;
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char handle[128];
    } handle = {.handle_bytes = 8, .handle_type = 1};
    EXPECT("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY), EPERM);
}

static int probe_personality(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    long query = syscall(SYS_personality, 0xffffffffUL);
    if (query < 0) return verdict(false, "personality", "querying the personality failed: %s", errno_name(errno));
    EXPECT("personality", syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC), EPERM);
}

/* Expected to be killed by SIGSYS: judged from outside. */
static int probe_int80(int argc, char **argv) {
    (void)argc, (void)argv;
#if defined(__x86_64__)
    fflush(stdout);
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(20 /* i386 getpid */) : "memory");
    return verdict(false, "int80", "the i386 syscall returned %ld", result);
#else
    return verdict(true, "int80", "not an x86_64 machine: nothing to try");
#endif
}

/* x32 syscall numbers on x86_64: also a foreign ABI, also expected to be killed by SIGSYS. */
static int probe_x32(int argc, char **argv) {
    (void)argc, (void)argv;
#if defined(__x86_64__)
    fflush(stdout);
    long result = syscall(0x40000000L | 39 /* getpid */);
    return verdict(false, "x32", "the x32 syscall returned %ld (%s)", result, errno_name(errno));
#else
    return verdict(true, "x32", "not an x86_64 machine: nothing to try");
#endif
}

/* ---- processes ---- */

static bool read_text(const char *path, char *out, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t length = read(fd, out, size - 1);
    close(fd);
    if (length < 0) return false;
    out[length] = '\0';
    return true;
}

static int probe_proc1(int argc, char **argv) {
    (void)argc, (void)argv;
    char comm[64], cmdline[512];
    if (!read_text("/proc/1/comm", comm, sizeof comm) || !read_text("/proc/1/cmdline", cmdline, sizeof cmdline))
        return verdict(false, "proc1", "cannot read /proc/1");
    comm[strcspn(comm, "\n")] = '\0';
    return verdict(strcmp(comm, "moat-init") == 0, "proc1", "pid 1 is '%s' (%s)", comm, cmdline);
}

/* Init obeys the stop signal only from the launcher: a queued SIGPWR that claims sender pid 0 must
 * not make it kill everything (this probe would die before printing). */
static int probe_spoof_stop(int argc, char **argv) {
    (void)argc, (void)argv;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = MOAT_STOP_SIGNAL;
    info.si_code = SI_QUEUE;
    info.si_pid = 0;
    errno = 0;
    long sent = syscall(SYS_rt_sigqueueinfo, 1, MOAT_STOP_SIGNAL, &info);
    int send_error = errno;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    return verdict(true, "spoof-stop", "rt_sigqueueinfo(1, SIGPWR, SI_QUEUE, pid 0): %s; still alive",
                   sent == 0 ? "delivered" : errno_name(send_error));
}

static int probe_pid_namespace(int argc, char **argv) {
    (void)argc, (void)argv;
    errno = 0;
    long killed = kill(-1, 0);
    int kill_error = errno;
    DIR *directory = opendir("/proc");
    if (!directory) return verdict(false, "kill-all", "cannot list /proc");
    int count = 0;
    char pids[256] = "";
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        count++;
        list_append(pids, sizeof pids, entry->d_name);
    }
    closedir(directory);
    char comm[64] = "";
    read_text("/proc/1/comm", comm, sizeof comm);
    comm[strcspn(comm, "\n")] = '\0';
    /* Only the sandbox's own processes exist here: init, this probe, and whatever started it. */
    bool held = strcmp(comm, "moat-init") == 0 && count <= 8;
    return verdict(held, "kill-all", "kill(-1, 0): %s; visible pids: %s",
                   killed < 0 ? errno_name(kill_error) : "delivered to sandbox processes only", pids);
}

static int probe_write_proc1_exe(int argc, char **argv) {
    (void)argc, (void)argv;
    char target[256];
    errno = 0;
    ssize_t link = readlink("/proc/1/exe", target, sizeof target - 1);
    int link_error = errno;
    errno = 0;
    int fd = open("/proc/1/exe", O_WRONLY);
    int open_error = errno;
    if (fd >= 0) {
        close(fd);
        return verdict(false, "write-proc1-exe", "opened init's executable for writing");
    }
    return verdict(true, "write-proc1-exe", "open for writing: %s; readlink: %s", errno_name(open_error),
                   link < 0 ? errno_name(link_error) : "readable");
}

static int probe_fds(int argc, char **argv) {
    (void)argc, (void)argv;
    DIR *directory = opendir("/proc/self/fd");
    if (!directory) return verdict(false, "fds", "cannot list /proc/self/fd");
    int own = dirfd(directory);
    char list[256] = "";
    bool held = true;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        int fd = atoi(entry->d_name);
        if (fd == own) continue;
        if (fd > 2) held = false;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%d", used ? "," : "", fd);
    }
    closedir(directory);
    return verdict(held, "fds", "open descriptors: %s", list);
}

static bool status_field(const char *status, const char *field, char *value, size_t size) {
    const char *line = strstr(status, field);
    if (!line) return false;
    line += strlen(field);
    while (*line == ' ' || *line == '\t') line++;
    size_t length = strcspn(line, "\n");
    if (length >= size) length = size - 1;
    memcpy(value, line, length);
    value[length] = '\0';
    return true;
}

static int probe_privileges(int argc, char **argv) {
    (void)argc, (void)argv;
    char status[8192];
    if (!read_text("/proc/self/status", status, sizeof status)) return verdict(false, "privileges", "no status");
    static const struct {
        const char *field;
        const char *expected;
    } checks[] = {
        {"NoNewPrivs:", "1"},
        {"Seccomp:", "2"},
        {"CapInh:", "0000000000000000"},
        {"CapPrm:", "0000000000000000"},
        {"CapEff:", "0000000000000000"},
        {"CapBnd:", "0000000000000000"},
        {"CapAmb:", "0000000000000000"},
    };
    char detail[400] = "";
    bool held = true;
    for (size_t index = 0; index < sizeof checks / sizeof checks[0]; index++) {
        char value[64] = "?";
        status_field(status, checks[index].field, value, sizeof value);
        if (strcmp(value, checks[index].expected) != 0) held = false;
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, "%s%s %s", used ? ", " : "", checks[index].field, value);
    }
    char uid[64] = "?";
    status_field(status, "Uid:", uid, sizeof uid);
    if (strncmp(uid, "1000\t1000\t1000\t1000", 19) != 0) held = false;
    struct statvfs usr;
    bool nosuid = statvfs("/usr", &usr) == 0 && (usr.f_flag & ST_NOSUID);
    if (!nosuid) held = false;
    size_t used = strlen(detail);
    snprintf(detail + used, sizeof detail - used, ", uid 1000, /usr %s", nosuid ? "nosuid" : "NOT nosuid");
    return verdict(held, "privileges", "%s", detail);
}

/*
 * A set-uid-root binary run inside gains nothing. The dynamic loader tells us what the kernel
 * decided at exec: with LD_SHOW_AUXV=1 it prints the auxiliary vector (AT_EUID, AT_SECURE), and it
 * would ignore that variable had the exec raised privileges.
 */
static int probe_setuid_binary(int argc, char **argv) {
    (void)argc, (void)argv;
    static const char *const candidates[] = {"/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/newgrp"};
    for (size_t index = 0; index < sizeof candidates / sizeof candidates[0]; index++) {
        struct stat status;
        /* The owner shows as the overflow uid: host root is not mapped in here. */
        if (stat(candidates[index], &status) != 0 || !(status.st_mode & S_ISUID)) continue;
        int output[2];
        if (pipe(output) != 0) break;
        pid_t child = fork();
        if (child == 0) {
            close(output[0]);
            int null = open("/dev/null", O_RDWR);
            dup2(null, STDIN_FILENO), dup2(output[1], STDOUT_FILENO), dup2(null, STDERR_FILENO);
            char *const environment[] = {"LD_SHOW_AUXV=1", NULL};
            execle(candidates[index], candidates[index], "--help", (char *)NULL, environment);
            _exit(127);
        }
        close(output[1]);
        char text[8192];
        size_t length = 0;
        ssize_t count;
        while (length < sizeof text - 1 && (count = read(output[0], text + length, sizeof text - 1 - length)) > 0)
            length += (size_t)count;
        text[length] = '\0';
        close(output[0]);
        waitpid(child, NULL, 0);
        char euid[32] = "?", secure[32] = "?";
        status_field(text, "AT_EUID:", euid, sizeof euid);
        status_field(text, "AT_SECURE:", secure, sizeof secure);
        bool held = strcmp(euid, "1000") == 0 && strcmp(secure, "0") == 0;
        return verdict(held, "setuid-binary", "%s (set-uid root) ran with AT_EUID %s, AT_SECURE %s", candidates[index],
                       euid, secure);
    }
    return verdict(true, "setuid-binary", "no set-uid binary to try; NoNewPrivs and nosuid are checked by 'privileges'");
}

static int probe_fork_bomb(int argc, char **argv) {
    long limit = argc > 0 ? atol(argv[0]) : 64;
    pid_t *children = malloc(sizeof *children * 100000);
    if (!children) return verdict(false, "fork-bomb", "cannot allocate the child list");
    int count = 0, error = 0;
    while (count < 100000) {
        pid_t child = fork();
        if (child == 0) {
            pause();
            _exit(0);
        }
        if (child < 0) {
            error = errno;
            break;
        }
        children[count++] = child;
    }
    for (int index = 0; index < count; index++) kill(children[index], SIGKILL);
    for (int index = 0; index < count; index++) waitpid(children[index], NULL, 0);
    free(children);
    bool held = error == EAGAIN && count < limit;
    return verdict(held, "fork-bomb", "fork failed with %s after %d children (limit %ld processes)",
                   errno_name(error), count, limit);
}

static int probe_memory_bomb(int argc, char **argv) {
    uint64_t limit = argc > 0 ? strtoull(argv[0], NULL, 10) : 256ull << 20;
    uint64_t total = 0;
    const size_t chunk = 1 << 20;
    for (;;) {
        char *block = malloc(chunk);
        if (!block) break;
        memset(block, 0x5a, chunk);
        total += chunk;
        if (total > limit * 2) break;
    }
    bool held = total <= limit;
    return verdict(held, "memory-bomb", "allocation stopped after %llu MiB (limit %llu MiB)",
                   (unsigned long long)(total >> 20), (unsigned long long)(limit >> 20));
}

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static int probe_busy(int argc, char **argv) {
    int workers = argc > 0 ? atoi(argv[0]) : 2;
    uint64_t duration = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000;
    double cpus = argc > 2 ? atof(argv[2]) : 1.0;
    if (workers < 1 || workers > 64) workers = 2;
    uint64_t started = now_ms();
    for (int index = 0; index < workers; index++) {
        if (fork() == 0) {
            volatile uint64_t spin = 0;
            while (now_ms() - started < duration) spin++;
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {
    }
    uint64_t wall = now_ms() - started;
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    double cpu = (double)usage.ru_utime.tv_sec * 1000 + usage.ru_utime.tv_usec / 1000.0 +
                 (double)usage.ru_stime.tv_sec * 1000 + usage.ru_stime.tv_usec / 1000.0;
    double ratio = cpu / (double)(wall ? wall : 1);
    return verdict(ratio <= cpus + 0.25, "busy", "%d busy loops for %llu ms used %.0f ms of CPU (%.2f CPUs, limit %.0f)",
                   workers, (unsigned long long)wall, cpu, ratio, cpus);
}

/* Expected to end at the launcher's timeout with nothing left: judged from outside. */
static int probe_orphan(int argc, char **argv) {
    unsigned seconds = argc > 0 ? (unsigned)atoi(argv[0]) : 60;
    pid_t child = fork();
    if (child == 0) {
        if (fork() == 0) {
            setsid();
            prctl(PR_SET_NAME, "moat-orphan", 0, 0, 0);
            sleep(seconds * 10);
            _exit(0);
        }
        _exit(0);
    }
    waitpid(child, NULL, 0);
    sleep(seconds);
    return verdict(false, "orphan", "was not stopped at the timeout");
}

/* Writes BYTES to stdout: the launcher must truncate at its cap and say so. */
static int probe_flood(int argc, char **argv) {
    uint64_t total = argc > 0 ? strtoull(argv[0], NULL, 10) : 10ull << 20;
    static char block[65536];
    memset(block, 'y', sizeof block);
    while (total > 0) {
        size_t count = total < sizeof block ? (size_t)total : sizeof block;
        ssize_t written = write(STDOUT_FILENO, block, count);
        if (written <= 0) return 1;
        total -= (uint64_t)written;
    }
    return 0;
}

static int probe_timer_list(int argc, char **argv) {
    (void)argc, (void)argv;
    char text[256];
    if (!read_text("/proc/timer_list", text, sizeof text)) return verdict(true, "timer-list", "not readable");
    return verdict(text[0] == '\0', "timer-list", text[0] ? "host timers are visible" : "masked (empty)");
}

/* ---- dispatch ---- */

struct probe {
    const char *name;
    int (*run)(int argc, char **argv);
    bool in_all;
};

static const struct probe probes[] = {
    {"write-etc", probe_write_etc, true},
    {"write-usr-bin-true", probe_write_usr_bin_true, true},
    {"fill-tmp", probe_fill_tmp, true},
    {"host-dirs", probe_host_dirs, true},
    {"write-proc-sys", probe_write_proc_sys, true},
    {"sysrq", probe_sysrq, true},
    {"timer-list", probe_timer_list, true},
    {"mknod-block", probe_mknod_block, true},
    {"setid-bits", probe_setid_bits, true},
    {"net-ifaces", probe_net_ifaces, true},
    {"connect-tcp", probe_connect_tcp, false},
    {"connect-abstract", probe_connect_abstract, false},
    {"socket-packet", probe_socket_packet, true},
    {"socket-alg", probe_socket_alg, true},
    {"socket-netlink", probe_socket_netlink, true},
    {"ptrace", probe_ptrace, true},
    {"mount", probe_mount, true},
    {"umount-proc", probe_umount_proc, true},
    {"unshare-user", probe_unshare_user, true},
    {"clone-newuser", probe_clone_newuser, true},
    {"clone3", probe_clone3, true},
    {"setns", probe_setns, true},
    {"chroot", probe_chroot, true},
    {"keyctl", probe_keyctl, true},
    {"bpf", probe_bpf, true},
    {"perf_event_open", probe_perf_event_open, true},
    {"userfaultfd", probe_userfaultfd, true},
    {"io_uring_setup", probe_io_uring, true},
    {"io_setup", probe_io_setup, true},
    {"inotify_init", probe_inotify, true},
    {"mq_open", probe_mq_open, true},
    {"memfd-fill", probe_memfd_fill, false},
    {"sysv-shm-fill", probe_sysv_shm_fill, false},
    {"sysv-msg-sem", probe_sysv_msg_sem, false},
    {"buffer-fill", probe_buffer_fill, false},
    {"dev-shm", probe_dev_shm, true},
    {"tiocsti", probe_tiocsti, true},
    {"open_by_handle_at", probe_open_by_handle, true},
    {"personality", probe_personality, true},
    {"int80", probe_int80, false},
    {"x32", probe_x32, false},
    {"proc1", probe_proc1, true},
    {"kill-all", probe_pid_namespace, true},
    {"spoof-stop", probe_spoof_stop, true},
    {"write-proc1-exe", probe_write_proc1_exe, true},
    {"fds", probe_fds, true},
    {"privileges", probe_privileges, true},
    {"setuid-binary", probe_setuid_binary, true},
    {"fork-bomb", probe_fork_bomb, false},
    {"memory-bomb", probe_memory_bomb, false},
    {"busy", probe_busy, false},
    {"orphan", probe_orphan, false},
    {"flood", probe_flood, false},
};

static bool inside_a_sandbox(void) {
    char status[8192], value[64];
    if (!read_text("/proc/self/status", status, sizeof status)) return false;
    if (!status_field(status, "Seccomp:", value, sizeof value) || strcmp(value, "2") != 0) return false;
    if (!status_field(status, "NoNewPrivs:", value, sizeof value) || strcmp(value, "1") != 0) return false;
    return true;
}

/* Runs one probe in a child, so a probe that is killed (SIGSYS) is reported rather than fatal. */
static int run_isolated(const struct probe *probe, int expected_signal) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (expected_signal) {
            int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
            dup2(null, STDOUT_FILENO);
        }
        _exit(probe->run(0, NULL));
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) < 0) return verdict(false, probe->name, "cannot fork");
    if (expected_signal) {
        bool held = WIFSIGNALED(status) && WTERMSIG(status) == expected_signal;
        return verdict(held, probe->name, held ? "killed by SIGSYS" : "not killed by SIGSYS");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    argc--, argv++;
    if (argc < 1) {
        fprintf(stderr, "usage: moat-sandbox-probe NAME [ARGS] | all | list\n");
        return 2;
    }
    if (strcmp(argv[0], "list") == 0) {
        for (size_t index = 0; index < sizeof probes / sizeof probes[0]; index++) printf("%s\n", probes[index].name);
        return 0;
    }
    if (!inside_a_sandbox()) {
        fprintf(stderr, "moat-sandbox-probe runs only inside a sandbox (seccomp filter and no_new_privs)\n");
        return 2;
    }
    if (strcmp(argv[0], "all") == 0) {
        int escaped = 0, total = 0;
        for (size_t index = 0; index < sizeof probes / sizeof probes[0]; index++) {
            if (!probes[index].in_all) continue;
            total++;
            escaped += run_isolated(&probes[index], 0) != 0;
        }
        static const char *const killed[] = {"int80", "x32"};
        for (size_t kill_index = 0; kill_index < 2; kill_index++) {
            for (size_t index = 0; index < sizeof probes / sizeof probes[0]; index++) {
                if (strcmp(probes[index].name, killed[kill_index]) != 0) continue;
                total++;
                escaped += run_isolated(&probes[index], SIGSYS) != 0;
            }
        }
        printf("probes: %d held, %d escaped\n", total - escaped, escaped);
        return escaped ? 1 : 0;
    }
    for (size_t index = 0; index < sizeof probes / sizeof probes[0]; index++)
        if (strcmp(probes[index].name, argv[0]) == 0) return probes[index].run(argc - 1, argv + 1);
    fprintf(stderr, "unknown probe (try: moat-sandbox-probe list)\n");
    return 2;
}
