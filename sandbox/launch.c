/*
 * The launcher's main job: create the sandbox, feed it nothing, collect its output, enforce the
 * timeout, and describe what happened.
 *
 *   launcher (host namespaces)
 *     └─ init: PID 1 of new user, mount, PID, network, IPC, UTS and cgroup namespaces
 *          builds the filesystem, builds the seccomp filters, forks the command, reaps, forwards
 *          signals; when the command ends init exits, and the kernel kills whatever is left in
 *          the PID namespace
 *          └─ command: setsid, limits, capabilities dropped, no_new_privs, descriptors closed,
 *             seccomp, execve
 *
 * The launcher writes the uid/gid maps for init (a process cannot map ids it does not own from
 * inside), then lets it go through a pipe. Init reports setup failures, exec failures and the
 * command's wait status on a second pipe; any failure before execve ends the run as setup_error,
 * and the command never runs outside a complete sandbox.
 */
#include "include/moat_sandbox.h"
#include "include/moat_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NAMESPACE_FLAGS                                                                                         \
    (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

/* How long to keep draining output after the sandbox was killed at the timeout. */
#define DRAIN_AFTER_KILL_MS 5000
/* At the timeout the launcher asks init to kill and reap everything (so the CPU time the command
 * tree used is counted); init itself is SIGKILLed if it has not ended this long after. */
#define STOP_GRACE_MS 1000

struct run {
    const struct spec *spec;
    struct limits_plan plan;
    struct bind_guard guard;
    int output_pipe[2];
    int error_pipe[2];
    int report_pipe[2];
    int start_pipe[2];
};

struct capture {
    int fd;
    struct buffer data;
    uint64_t cap;
    bool truncated;
};

struct outcome {
    const char *status;
    int exit_code;
    int signal;
    uint64_t wall_ms;
    uint64_t cpu_ms;
    uint64_t peak_rss_kb;
    char error[512];
};

static uint64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* ---- inside the sandbox ---- */

static void send_report(int fd, char kind, int value, const char *step) {
    struct report report;
    memset(&report, 0, sizeof report);
    report.kind = kind;
    report.value = value;
    if (step) snprintf(report.step, sizeof report.step, "%s", step);
    ssize_t ignored = write(fd, &report, sizeof report);
    (void)ignored;
}

static _Noreturn void setup_failed(int report_fd, const char *step) {
    send_report(report_fd, REPORT_SETUP_ERROR, errno, step);
    _exit(MOAT_EXIT_SETUP);
}

static int drop_privileges(void) {
    /* The bounding set first: dropping it needs CAP_SETPCAP, which the next steps take away. */
    for (int capability = 0; capability <= 63; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0) {
            if (errno == EINVAL) break; /* past the last capability this kernel knows */
            return -1;
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    /* Locked: uid 0 would never mean capabilities again, even if it were mapped. */
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                         SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return -1;
    if (setresgid(MOAT_INSIDE_ID, MOAT_INSIDE_ID, MOAT_INSIDE_ID) != 0) return -1;
    if (setresuid(MOAT_INSIDE_ID, MOAT_INSIDE_ID, MOAT_INSIDE_ID) != 0) return -1;
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) return -1;
    /* Verify rather than trust. */
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    for (int index = 0; index < 2; index++) {
        if (data[index].effective || data[index].permitted || data[index].inheritable) {
            errno = EPERM;
            return -1;
        }
    }
    if (getuid() != MOAT_INSIDE_ID || geteuid() != MOAT_INSIDE_ID || getgid() != MOAT_INSIDE_ID) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* execvpe, but with the spec's PATH (libc would search the launcher's own). Returns errno. */
static int exec_command(char **argv, char **env, const char *path_variable) {
    const char *name = argv[0];
    if (strchr(name, '/')) {
        execve(name, argv, env);
        return errno;
    }
    const char *search = path_variable ? path_variable : "/usr/local/bin:/usr/bin:/bin";
    bool denied = false;
    size_t name_length = strlen(name);
    for (const char *segment = search;;) {
        const char *end = strchr(segment, ':');
        size_t length = end ? (size_t)(end - segment) : strlen(segment);
        char candidate[PATH_MAX];
        if (length + 1 + name_length < sizeof candidate) {
            if (length == 0) {
                memcpy(candidate, name, name_length + 1); /* an empty entry means the working directory */
            } else {
                memcpy(candidate, segment, length);
                candidate[length] = '/';
                memcpy(candidate + length + 1, name, name_length + 1);
            }
            execve(candidate, argv, env);
            if (errno == EACCES) denied = true;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT)
                return errno;
        }
        if (!end) break;
        segment = end + 1;
    }
    return denied ? EACCES : ENOENT;
}

static _Noreturn void run_command(const struct run *run, struct seccomp_filters *filters) {
    const struct spec *spec = run->spec;
    int report = run->report_pipe[1];
    const char *step = NULL;

    /* What the launcher or init changed must not leak into the command. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int signal_number = 1; signal_number < NSIG; signal_number++) signal(signal_number, SIG_DFL);

    /* A new session: no controlling terminal, so nothing to inject keystrokes into. */
    if (setsid() < 0) setup_failed(report, "setsid");
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) setup_failed(report, "open /dev/null");
    if (dup2(null, STDIN_FILENO) < 0 || dup2(run->output_pipe[1], STDOUT_FILENO) < 0 ||
        dup2(run->error_pipe[1], STDERR_FILENO) < 0)
        setup_failed(report, "connect stdin, stdout and stderr");
    if (chdir(spec->cwd) != 0) setup_failed(report, "enter cwd (it must exist inside the sandbox)");
    if (limits_apply_in_child(spec, &run->plan, true, &step) != 0) setup_failed(report, step);
    if (drop_privileges() != 0) setup_failed(report, "drop capabilities and switch to uid 1000");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) setup_failed(report, "set no_new_privs");
    /* Every descriptor above 2 closes at execve; the report pipe stays usable until then. */
    if (sys_close_range_cloexec(3) != 0) setup_failed(report, "close inherited file descriptors");
    /* Without a memory cgroup, memory that RLIMIT_AS does not see (memfds, SysV IPC) is refused. */
    if (seccomp_filters_load(filters, !run->plan.use_cgroup) != 0) setup_failed(report, "load the seccomp filters");

    int error = exec_command(spec->argv, spec->env, spec->path_variable);
    send_report(report, REPORT_EXEC_ERROR, error, "execve");
    _exit(error == EACCES || error == ENOEXEC ? MOAT_EXIT_NOT_EXECUTABLE : MOAT_EXIT_NOT_FOUND);
}

struct command_start {
    const struct run *run;
    struct seccomp_filters *filters;
};

static int command_entry(void *argument) {
    const struct command_start *start = argument;
    run_command(start->run, start->filters);
}

static volatile sig_atomic_t command_pid;

static void forward_signal(int signal_number) {
    if (command_pid > 0) kill(command_pid, signal_number);
}

/* The launcher's timeout: everything in the namespace but init dies now, and init reaps it. Only a
 * kill() from outside the namespace is obeyed: si_code SI_USER (which rt_sigqueueinfo cannot forge
 * for another process) and a sender pid that reads as 0 here. */
static void stop_sandbox(int signal_number, siginfo_t *info, void *context) {
    (void)signal_number, (void)context;
    if (info->si_code == SI_USER && info->si_pid == 0) kill(-1, SIGKILL);
}

/* Kills whatever is left in the namespace and reaps it: a process reaped here adds its CPU time to
 * init's, which the launcher's wait4 reads. (When init just exits, the kernel reaps the rest without
 * counting it.) */
static void reap_everything(void) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
    }
}

static _Noreturn void sandbox_init(struct run *run) {
    int report = run->report_pipe[1];
    close(run->output_pipe[0]);
    close(run->error_pipe[0]);
    close(run->report_pipe[0]);
    close(run->start_pipe[1]);
    char go;
    if (read(run->start_pipe[0], &go, 1) != 1) _exit(MOAT_EXIT_SETUP); /* the launcher gave up */
    prctl(PR_SET_NAME, "moat-init", 0, 0, 0);
    /* Init's own stdout is the launcher's result channel: nothing inside may write to it. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
        setup_failed(report, "detach init from the launcher's standard streams");
    close(null);

    /* Become the mapped id now: files created while building the root must have an owner that
     * exists in this namespace, and setup sees the host with no more rights than the command. The
     * capabilities held in the new user namespace are kept across this change. */
    if (setresgid(MOAT_INSIDE_ID, MOAT_INSIDE_ID, MOAT_INSIDE_ID) != 0 ||
        setresuid(MOAT_INSIDE_ID, MOAT_INSIDE_ID, MOAT_INSIDE_ID) != 0)
        setup_failed(report, "switch to uid 1000 inside the user namespace");

    /* If the launcher dies, so does the sandbox (and with init, its whole PID namespace). Set after
     * the id change, which clears it. The launcher holds the start pipe's write end until it is
     * done: a hang-up there means it died before the signal was armed. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) setup_failed(report, "set the parent-death signal");
    struct pollfd launcher = {.fd = run->start_pipe[0], .events = POLLIN};
    if (poll(&launcher, 1, 0) != 0) _exit(MOAT_EXIT_SETUP);
    close(run->start_pipe[0]);

    char step_buffer[sizeof ((struct report *)0)->step];
    const char *step = NULL;
    if (filesystem_build(run->spec, &run->guard, &step, step_buffer, sizeof step_buffer) != 0)
        setup_failed(report, step);
    if (sethostname("sandbox", 7) != 0) setup_failed(report, "set the hostname");
    /* Not dumpable: the command (same uid) cannot open /proc/1/exe, /proc/1/environ or /proc/1/mem. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) setup_failed(report, "make init non-dumpable");
    struct seccomp_filters *filters = seccomp_filters_build(&step);
    if (!filters) setup_failed(report, step);

    /* posix_spawn's technique: the command shares init's memory and init waits until it has
     * exec'd, which skips copying init's page tables. Everything the command changes before execve
     * (descriptors, working directory, limits, credentials, signal dispositions, seccomp) belongs to
     * its own task, not to the shared memory; init does not run until then. */
    struct command_start start = {.run = run, .filters = filters};
    size_t stack_size = 256 * 1024;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) setup_failed(report, "allocate the command's stack");
    pid_t child = clone(command_entry, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
    if (child < 0) setup_failed(report, "start the command");
    munmap(stack, stack_size);
    command_pid = child;
    close(run->output_pipe[1]);
    close(run->error_pipe[1]);

    struct sigaction forward = {.sa_handler = forward_signal};
    sigemptyset(&forward.sa_mask);
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t index = 0; index < sizeof forwarded / sizeof forwarded[0]; index++)
        sigaction(forwarded[index], &forward, NULL);
    struct sigaction stop = {.sa_sigaction = stop_sandbox, .sa_flags = SA_SIGINFO};
    sigemptyset(&stop.sa_mask);
    sigaction(MOAT_STOP_SIGNAL, &stop, NULL);

    /* Reap everything (orphans are re-parented to us) until the command itself ends. */
    for (;;) {
        int status;
        pid_t reaped = waitpid(-1, &status, 0);
        if (reaped == child) {
            send_report(report, REPORT_COMMAND_STATUS, status, NULL);
            break;
        }
        if (reaped < 0 && errno != EINTR) break;
    }
    reap_everything();
    _exit(0);
}

/* ---- in the launcher ---- */

static int write_proc_file(int process_directory, const char *name, const char *contents) {
    int fd = openat(process_directory, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t length = strlen(contents);
    ssize_t written = write(fd, contents, length);
    int saved = errno;
    close(fd);
    errno = saved;
    return written == (ssize_t)length ? 0 : -1;
}

static void capture_read(struct capture *capture) {
    char chunk[65536];
    ssize_t count = read(capture->fd, chunk, sizeof chunk);
    if (count < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (count <= 0) {
        close(capture->fd);
        capture->fd = -1;
        return;
    }
    uint64_t room = capture->cap > capture->data.length ? capture->cap - capture->data.length : 0;
    size_t kept = (uint64_t)count < room ? (size_t)count : (size_t)room;
    if (kept) buffer_append(&capture->data, chunk, kept);
    if (kept < (size_t)count) capture->truncated = true;
}

static void write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0) {
            if (errno == EINTR) continue;
            return;
        }
        data += written;
        length -= (size_t)written;
    }
}

static int emit_result(const struct outcome *outcome, const struct capture *output, const struct capture *error,
                       const char *limits_mode) {
    struct buffer json = {0};
    buffer_append_string(&json, "{\"status\":");
    buffer_append_json_string(&json, outcome->status, strlen(outcome->status));
    buffer_printf(&json, ",\"exit_code\":%d,\"signal\":", outcome->exit_code);
    if (outcome->signal) buffer_printf(&json, "%d", outcome->signal);
    else buffer_append_string(&json, "null");
    buffer_printf(&json, ",\"wall_ms\":%llu,\"cpu_ms\":%llu,\"peak_rss_kb\":%llu,\"stdout\":",
                  (unsigned long long)outcome->wall_ms, (unsigned long long)outcome->cpu_ms,
                  (unsigned long long)outcome->peak_rss_kb);
    buffer_append_json_string(&json, output ? output->data.data : "", output ? output->data.length : 0);
    buffer_printf(&json, ",\"stdout_truncated\":%s,\"stderr\":", output && output->truncated ? "true" : "false");
    buffer_append_json_string(&json, error ? error->data.data : "", error ? error->data.length : 0);
    buffer_printf(&json, ",\"stderr_truncated\":%s,\"limits_mode\":", error && error->truncated ? "true" : "false");
    buffer_append_json_string(&json, limits_mode, strlen(limits_mode));
    if (outcome->error[0]) {
        buffer_append_string(&json, ",\"error\":");
        buffer_append_json_string(&json, outcome->error, strlen(outcome->error));
    }
    buffer_append_string(&json, "}\n");
    write_all(STDOUT_FILENO, json.data, json.length);
    free(json.data);
    return outcome->exit_code;
}

int report_setup_error(const char *message, const char *limits_mode) {
    struct outcome outcome = {.status = "setup_error", .exit_code = MOAT_EXIT_SETUP};
    snprintf(outcome.error, sizeof outcome.error, "%s", message);
    return emit_result(&outcome, NULL, NULL, limits_mode);
}

static int setup_error_now(const char *step, int error, const char *limits_mode) {
    char message[400];
    snprintf(message, sizeof message, "sandbox setup failed: %s: %s", step, strerror(error));
    return report_setup_error(message, limits_mode);
}

/* Root of the initial user namespace, as opposed to "root" inside a user namespace (which is an
 * ordinary host user, and is mapped like one). */
static bool running_as_host_root(void) {
    if (geteuid() != 0) return false;
    char map[128] = "";
    int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true; /* no way to tell: assume the more dangerous case */
    ssize_t length = read(fd, map, sizeof map - 1);
    close(fd);
    if (length <= 0) return true;
    map[length] = '\0';
    unsigned long inside, outside, count;
    if (sscanf(map, "%lu %lu %lu", &inside, &outside, &count) != 3) return true;
    return inside == 0 && outside == 0 && count == 4294967295UL;
}

static pid_t clone_sandbox(struct run *run, int *pidfd) {
    struct moat_clone_args arguments;
    memset(&arguments, 0, sizeof arguments);
    arguments.flags = NAMESPACE_FLAGS | MOAT_CLONE_PIDFD;
    arguments.pidfd = (uint64_t)(uintptr_t)pidfd;
    arguments.exit_signal = SIGCHLD;
    if (run->plan.use_cgroup) {
        arguments.flags |= MOAT_CLONE_INTO_CGROUP;
        arguments.cgroup = (uint64_t)run->plan.cgroup_fd;
    }
    pid_t pid = (pid_t)syscall(SYS_clone3, &arguments, sizeof arguments);
    if (pid >= 0 || (errno != ENOSYS && errno != E2BIG)) return pid;

    /* Kernels or filters without clone3: a fork-style clone, then a pidfd. With a zero stack every
     * architecture's argument order reduces to (flags, 0, 0, 0, 0). */
    pid = (pid_t)syscall(SYS_clone, (unsigned long)NAMESPACE_FLAGS | SIGCHLD, 0, 0, 0, 0);
    if (pid > 0) {
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        bool moved = true;
        if (run->plan.use_cgroup) {
            char value[32];
            snprintf(value, sizeof value, "%d", (int)pid);
            char path[4200];
            snprintf(path, sizeof path, "%s/cgroup.procs", run->plan.cgroup_path);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            moved = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
            if (fd >= 0) close(fd);
        }
        if (*pidfd < 0 || !moved) {
            int saved = errno;
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            errno = saved;
            return -1;
        }
    }
    return pid;
}

int sandbox_run(const struct spec *spec) {
    struct run run = {.spec = spec};
    signal(SIGPIPE, SIG_IGN);

    /* The host ids the sandbox maps to: the caller's own, except that a root caller's sandbox runs
     * as an unprivileged host id. Host uid 0 would own every root-owned file reachable through a
     * bind (and /proc/sysrq-trigger), be exempt from RLIMIT_NPROC, and could leave set-uid-root
     * files in a writable bind. */
    uid_t host_uid = geteuid();
    gid_t host_gid = getegid();
    if (running_as_host_root()) {
        host_uid = MOAT_UNPRIVILEGED_HOST_ID;
        host_gid = MOAT_UNPRIVILEGED_HOST_ID;
        /* Root's supplementary groups would otherwise follow the sandbox, and setgroups is denied
         * inside it. */
        if (setgroups(0, NULL) != 0) return setup_error_now("drop supplementary groups", errno, "rlimit");
    }

    /* The launcher dies with the process that started it (as bwrap --die-with-parent), and the
     * sandbox dies with the launcher (init's own parent-death signal). Armed after the credential
     * changes above, which would clear it; if that parent is already gone, the signal never comes,
     * so its pid is compared too. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return setup_error_now("set the parent-death signal", errno, "rlimit");
    if (spec->parent_pid > 0 && getppid() != spec->parent_pid)
        return report_setup_error("sandbox setup failed: the process that started the launcher has exited", "rlimit");

    bind_guard_create(spec, &run.guard);
    limits_plan_create(spec, &run.plan);
    const char *limits_mode = run.plan.use_cgroup ? "cgroup2" : "rlimit";

    if (pipe2(run.output_pipe, O_CLOEXEC) != 0 || pipe2(run.error_pipe, O_CLOEXEC) != 0 ||
        pipe2(run.report_pipe, O_CLOEXEC) != 0 || pipe2(run.start_pipe, O_CLOEXEC) != 0) {
        limits_plan_destroy(&run.plan);
        return setup_error_now("create pipes", errno, limits_mode);
    }

    uint64_t started = monotonic_ms();
    int pidfd = -1;
    pid_t pid = clone_sandbox(&run, &pidfd);
    if (pid == 0) sandbox_init(&run);
    if (pid < 0) {
        int error = errno;
        limits_plan_destroy(&run.plan);
        return setup_error_now("create the namespaces (user namespaces may be disabled on this host)", error,
                               limits_mode);
    }
    close(run.output_pipe[1]);
    close(run.error_pipe[1]);
    close(run.report_pipe[1]);
    close(run.start_pipe[0]);

    char map[64];
    snprintf(map, sizeof map, "/proc/%d", (int)pid);
    int process_directory = open(map, O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(map, sizeof map, "%d %d 1\n", MOAT_INSIDE_ID, (int)host_uid);
    int map_error = 0;
    const char *map_step = NULL;
    if (process_directory < 0) map_error = errno, map_step = "open the sandbox's /proc entry";
    else if (write_proc_file(process_directory, "setgroups", "deny") != 0) map_error = errno, map_step = "deny setgroups";
    else if (write_proc_file(process_directory, "uid_map", map) != 0) map_error = errno, map_step = "write uid_map";
    else {
        snprintf(map, sizeof map, "%d %d 1\n", MOAT_INSIDE_ID, (int)host_gid);
        if (write_proc_file(process_directory, "gid_map", map) != 0) map_error = errno, map_step = "write gid_map";
    }
    if (process_directory >= 0) close(process_directory);
    /* The write end stays open until the sandbox ends: init checks it to know the launcher lives. */
    if (map_error || write(run.start_pipe[1], "g", 1) != 1) {
        if (!map_error) map_error = errno, map_step = "start the sandbox";
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        limits_plan_destroy(&run.plan);
        return setup_error_now(map_step, map_error, limits_mode);
    }

    struct capture output = {.fd = run.output_pipe[0], .cap = spec->limits.output_bytes};
    struct capture error = {.fd = run.error_pipe[0], .cap = spec->limits.output_bytes};
    uint64_t deadline = started + spec->timeout_ms;
    bool exited = false, timed_out = false;
    uint64_t drain_until = 0, kill_at = 0;
    for (;;) {
        if (exited && output.fd < 0 && error.fd < 0) break;
        uint64_t now = monotonic_ms();
        if (!timed_out && !exited && now >= deadline) {
            /* Init kills and reaps everything else, so its CPU time is counted. */
            kill(pid, MOAT_STOP_SIGNAL);
            timed_out = true;
            kill_at = now + STOP_GRACE_MS;
            drain_until = now + DRAIN_AFTER_KILL_MS;
        }
        if (kill_at && !exited && now >= kill_at) {
            /* Killing PID 1 of the namespace kills every process in it, orphans included. */
            kill(pid, SIGKILL);
            kill_at = 0;
        }
        /* Once init is gone nothing in the sandbox can hold the pipes; bound the drain anyway. */
        uint64_t end = timed_out || exited ? drain_until : deadline;
        if ((timed_out || exited) && now >= end) break;
        uint64_t wake = kill_at && !exited && kill_at < end ? kill_at : end;
        struct pollfd fds[3];
        struct capture *sources[3] = {NULL, NULL, NULL};
        nfds_t count = 0;
        int pidfd_slot = -1;
        if (output.fd >= 0) fds[count] = (struct pollfd){.fd = output.fd, .events = POLLIN}, sources[count++] = &output;
        if (error.fd >= 0) fds[count] = (struct pollfd){.fd = error.fd, .events = POLLIN}, sources[count++] = &error;
        if (!exited) fds[count] = (struct pollfd){.fd = pidfd, .events = POLLIN}, pidfd_slot = (int)count++;
        uint64_t wait_ms = wake > now ? wake - now : 0;
        int ready = poll(fds, count, (int)(wait_ms > 60000 ? 60000 : wait_ms));
        if (ready < 0 && errno != EINTR) break;
        for (nfds_t index = 0; ready > 0 && index < count; index++) {
            if (!fds[index].revents) continue;
            if ((int)index != pidfd_slot) {
                capture_read(sources[index]);
            } else if (!exited) {
                exited = true;
                if (!timed_out) drain_until = monotonic_ms() + DRAIN_AFTER_KILL_MS;
            }
        }
    }
    if (output.fd >= 0) close(output.fd);
    if (error.fd >= 0) close(error.fd);
    close(run.start_pipe[1]);

    int init_status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (wait4(pid, &init_status, 0, &usage) < 0 && errno == EINTR) {
    }
    struct outcome outcome = {0};
    outcome.wall_ms = monotonic_ms() - started;
    outcome.cpu_ms = (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                     (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
    outcome.peak_rss_kb = (uint64_t)usage.ru_maxrss;
    /* The cgroup also counts what init could not reap (when it was SIGKILLed itself). */
    uint64_t group_cpu_ms = limits_cpu_ms(&run.plan);
    if (group_cpu_ms > outcome.cpu_ms) outcome.cpu_ms = group_cpu_ms;
    if (pidfd >= 0) close(pidfd);

    struct report setup = {0}, exec = {0}, command = {0};
    int flags = fcntl(run.report_pipe[0], F_GETFL);
    fcntl(run.report_pipe[0], F_SETFL, flags | O_NONBLOCK);
    struct report report;
    while (read(run.report_pipe[0], &report, sizeof report) == (ssize_t)sizeof report) {
        report.step[sizeof report.step - 1] = '\0';
        if (report.kind == REPORT_SETUP_ERROR && !setup.kind) setup = report;
        else if (report.kind == REPORT_EXEC_ERROR) exec = report;
        else if (report.kind == REPORT_COMMAND_STATUS) command = report;
    }
    close(run.report_pipe[0]);
    uint64_t oom_kills = limits_oom_kills(&run.plan);
    limits_plan_destroy(&run.plan);

    if (setup.kind) {
        outcome.status = "setup_error";
        outcome.exit_code = MOAT_EXIT_SETUP;
        snprintf(outcome.error, sizeof outcome.error, "sandbox setup failed: %s: %s", setup.step, strerror(setup.value));
    } else if (timed_out) {
        outcome.status = "timeout";
        outcome.exit_code = MOAT_EXIT_TIMEOUT;
        snprintf(outcome.error, sizeof outcome.error, "killed at the %llu ms timeout",
                 (unsigned long long)spec->timeout_ms);
    } else if (exec.kind) {
        bool not_found = exec.value != EACCES && exec.value != ENOEXEC;
        outcome.status = "exited";
        outcome.exit_code = not_found ? MOAT_EXIT_NOT_FOUND : MOAT_EXIT_NOT_EXECUTABLE;
        snprintf(outcome.error, sizeof outcome.error, "%s: %s",
                 not_found ? "command not found" : "command not executable", strerror(exec.value));
    } else if (command.kind) {
        int status = command.value;
        if (WIFEXITED(status)) {
            outcome.status = "exited";
            outcome.exit_code = WEXITSTATUS(status);
        } else {
            outcome.signal = WTERMSIG(status);
            outcome.exit_code = MOAT_EXIT_SIGNAL_BASE + outcome.signal;
            outcome.status = outcome.signal == SIGKILL && oom_kills > 0 ? "oom" : "signaled";
        }
    } else if (WIFSIGNALED(init_status) && WTERMSIG(init_status) == SIGKILL && oom_kills > 0) {
        /* memory.oom.group: the OOM killer took the whole sandbox, init included. */
        outcome.status = "oom";
        outcome.signal = SIGKILL;
        outcome.exit_code = MOAT_EXIT_SIGNAL_BASE + SIGKILL;
    } else {
        outcome.status = "setup_error";
        outcome.exit_code = MOAT_EXIT_SETUP;
        snprintf(outcome.error, sizeof outcome.error, "the sandbox's init ended before reporting (%s %d)",
                 WIFSIGNALED(init_status) ? "signal" : "status",
                 WIFSIGNALED(init_status) ? WTERMSIG(init_status) : WEXITSTATUS(init_status));
    }
    int code = emit_result(&outcome, &output, &error, limits_mode);
    free(output.data.data);
    free(error.data.data);
    return code;
}
