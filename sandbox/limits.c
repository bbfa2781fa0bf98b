/*
 * Resource limits, in one of two modes (reported as limits_mode):
 *
 * cgroup2  when /sys/fs/cgroup is cgroup v2 and the launcher may create a cgroup next to its own
 *          (the parent is writable and has the memory, pids and cpu controllers enabled for its
 *          children, as a delegated systemd unit does). The sandbox is cloned straight into the new
 *          cgroup: memory.max (no swap, whole group killed on OOM), pids.max, cpu.max.
 * rlimit   otherwise: RLIMIT_AS for memory, RLIMIT_NPROC for processes (counted per user namespace
 *          and host uid, and the sandbox has both to itself), RLIMIT_NOFILE = 256 (bounds socket and
 *          pipe buffers and epoll watches, which RLIMIT_AS does not see), and CPU affinity to `cpus` cores, which
 *          the seccomp filter keeps the command from widening.
 *
 * Both modes also set RLIMIT_CPU (CPU seconds), RLIMIT_FSIZE (largest file), RLIMIT_CORE = 0 and
 * RLIMIT_SIGPENDING (queued signals and POSIX timers are charged to the host user as well, so an
 * unbounded count would take that user's share from every other process it runs).
 */
#include "include/moat_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270
/* Descriptors per process in rlimit mode. Socket and pipe buffers are kernel memory RLIMIT_AS never
 * sees; each descriptor holds at most one default-sized buffer (the filter refuses raising it), so
 * this bounds them per process. */
#define MOAT_RLIMIT_NOFILE 256
/* Signals a sandbox may have queued at once (the host's default is tens of thousands per user). */
#define MOAT_SIGNALS_PENDING 1024

static bool read_small_file(const char *path, char *out, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t length = read(fd, out, size - 1);
    close(fd);
    if (length < 0) return false;
    out[length] = '\0';
    return true;
}

static bool write_small_file(const char *directory, const char *name, const char *value) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t length = strlen(value);
    ssize_t written = write(fd, value, length);
    close(fd);
    return written == (ssize_t)length;
}

static bool has_token(const char *list, const char *token) {
    size_t length = strlen(token);
    for (const char *cursor = list; (cursor = strstr(cursor, token)) != NULL; cursor += length) {
        bool starts = cursor == list || cursor[-1] == ' ';
        bool ends = cursor[length] == '\0' || cursor[length] == ' ' || cursor[length] == '\n';
        if (starts && ends) return true;
    }
    return false;
}

static bool try_cgroup2(const struct spec *spec, struct limits_plan *plan) {
    struct statfs filesystem;
    if (statfs(CGROUP_ROOT, &filesystem) != 0 || filesystem.f_type != CGROUP2_MAGIC) return false;

    char membership[4096];
    if (!read_small_file("/proc/self/cgroup", membership, sizeof membership)) return false;
    char *line = strstr(membership, "0::");
    if (!line || (line != membership && line[-1] != '\n')) return false;
    char *own = line + 3;
    own[strcspn(own, "\n")] = '\0';
    if (own[0] != '/' || strstr(own, "/..")) return false;

    /* The new cgroup goes next to ours: a cgroup that holds processes cannot hand controllers down. */
    char parent[4096];
    if (strcmp(own, "/") == 0) {
        snprintf(parent, sizeof parent, "%s", CGROUP_ROOT);
    } else {
        int length = snprintf(parent, sizeof parent, "%s%s", CGROUP_ROOT, own);
        if (length < 0 || (size_t)length >= sizeof parent) return false;
        *strrchr(parent, '/') = '\0';
    }
    char controllers[1024], path[4200];
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", parent);
    if (!read_small_file(path, controllers, sizeof controllers)) return false;
    if (!has_token(controllers, "memory") || !has_token(controllers, "pids") || !has_token(controllers, "cpu"))
        return false;
    snprintf(path, sizeof path, "%s/cgroup.procs", parent);
    if (access(parent, W_OK) != 0 || access(path, W_OK) != 0) return false;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int length = snprintf(plan->cgroup_path, sizeof plan->cgroup_path, "%s/moat-sandbox-%ld-%ld", parent,
                          (long)getpid(), (long)now.tv_nsec);
    if (length < 0 || (size_t)length >= sizeof plan->cgroup_path) return false;
    if (mkdir(plan->cgroup_path, 0755) != 0) return false;

    char value[64];
    bool configured = true;
    snprintf(value, sizeof value, "%llu", (unsigned long long)spec->limits.memory_bytes);
    configured = configured && write_small_file(plan->cgroup_path, "memory.max", value);
    /* No swap, and an OOM kills the whole group rather than one process of it. */
    configured = configured && (write_small_file(plan->cgroup_path, "memory.swap.max", "0") || errno == ENOENT);
    configured = configured && (write_small_file(plan->cgroup_path, "memory.oom.group", "1") || errno == ENOENT);
    snprintf(value, sizeof value, "%u", spec->limits.pids);
    configured = configured && write_small_file(plan->cgroup_path, "pids.max", value);
    snprintf(value, sizeof value, "%llu 100000", (unsigned long long)spec->limits.cpus * 100000ULL);
    configured = configured && write_small_file(plan->cgroup_path, "cpu.max", value);
    if (configured) plan->cgroup_fd = open(plan->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!configured || plan->cgroup_fd < 0) {
        rmdir(plan->cgroup_path);
        plan->cgroup_path[0] = '\0';
        plan->cgroup_fd = -1;
        return false;
    }
    plan->use_cgroup = true;
    return true;
}

void limits_plan_create(const struct spec *spec, struct limits_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->cgroup_fd = -1;
    if (try_cgroup2(spec, plan)) return;

    /* Affinity: `cpus` of the CPUs we may use, starting with the one the scheduler runs the
     * launcher on. It picked a CPU with room, and a sandbox forced onto a busy one waits for whole
     * time slices; concurrent launchers land on different CPUs the same way. */
    cpu_set_t allowed;
    CPU_ZERO(&plan->affinity);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        CPU_SET(0, &plan->affinity);
        return;
    }
    int available[CPU_SETSIZE], count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed)) available[count++] = cpu;
    if (count == 0) {
        CPU_SET(0, &plan->affinity);
        return;
    }
    int wanted = (int)spec->limits.cpus < count ? (int)spec->limits.cpus : count;
    int current = sched_getcpu(), start = (int)(getpid() % count);
    for (int index = 0; index < count; index++)
        if (available[index] == current) start = index;
    for (int index = 0; index < wanted; index++) CPU_SET(available[(start + index) % count], &plan->affinity);
}

/* Sets one limit; on failure names it in *failed_step. */
static bool set_limit(int resource, uint64_t soft, uint64_t hard, const char *name, const char **failed_step) {
    struct rlimit limit = {.rlim_cur = (rlim_t)soft, .rlim_max = (rlim_t)hard};
    if (setrlimit(resource, &limit) == 0) return true;
    *failed_step = name;
    return false;
}

int limits_apply_in_child(const struct spec *spec, const struct limits_plan *plan, bool init_shares_uid,
                          const char **failed_step) {
    const struct limits *limits = &spec->limits;
    /* RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second later for a command that catches it. */
    if (!set_limit(RLIMIT_CORE, 0, 0, "set RLIMIT_CORE", failed_step) ||
        !set_limit(RLIMIT_FSIZE, limits->file_bytes, limits->file_bytes, "set RLIMIT_FSIZE", failed_step) ||
        !set_limit(RLIMIT_CPU, limits->cpu_seconds, limits->cpu_seconds + 1, "set RLIMIT_CPU", failed_step) ||
        !set_limit(RLIMIT_SIGPENDING, MOAT_SIGNALS_PENDING, MOAT_SIGNALS_PENDING, "set RLIMIT_SIGPENDING", failed_step))
        return -1;
    if (plan->use_cgroup) return 0;
    /* The process count covers every process of this host uid in this user namespace; when the
     * sandbox's init runs as the same host uid it is one of them. */
    uint64_t processes = (uint64_t)limits->pids + (init_shares_uid ? 1 : 0);
    if (!set_limit(RLIMIT_AS, limits->memory_bytes, limits->memory_bytes, "set RLIMIT_AS", failed_step) ||
        !set_limit(RLIMIT_NPROC, processes, processes, "set RLIMIT_NPROC", failed_step) ||
        !set_limit(RLIMIT_NOFILE, MOAT_RLIMIT_NOFILE, MOAT_RLIMIT_NOFILE, "set RLIMIT_NOFILE", failed_step))
        return -1;
    if (sched_setaffinity(0, sizeof plan->affinity, &plan->affinity) != 0) {
        *failed_step = "set the CPU affinity";
        return -1;
    }
    return 0;
}

/* The value of the line "KEY VALUE" in one of the sandbox cgroup's flat-keyed files, 0 if absent. */
static uint64_t cgroup_counter(const struct limits_plan *plan, const char *file, const char *key) {
    if (!plan->use_cgroup) return 0;
    char path[4200], contents[2048];
    snprintf(path, sizeof path, "%s/%s", plan->cgroup_path, file);
    if (!read_small_file(path, contents, sizeof contents)) return 0;
    size_t length = strlen(key);
    for (const char *line = contents; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, length) == 0 && line[length] == ' ') return strtoull(line + length + 1, NULL, 10);
    return 0;
}

uint64_t limits_oom_kills(const struct limits_plan *plan) { return cgroup_counter(plan, "memory.events", "oom_kill"); }

uint64_t limits_cpu_ms(const struct limits_plan *plan) { return cgroup_counter(plan, "cpu.stat", "usage_usec") / 1000; }

void limits_plan_destroy(struct limits_plan *plan) {
    if (plan->cgroup_fd >= 0) close(plan->cgroup_fd);
    plan->cgroup_fd = -1;
    if (!plan->use_cgroup || plan->cgroup_path[0] == '\0') return;
    /* The last processes may still be leaving the group for a moment after they were reaped. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (rmdir(plan->cgroup_path) == 0 || errno != EBUSY) break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}
