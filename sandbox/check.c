/*
 * `moat-sandbox --check`: what this machine offers the sandbox, as one JSON object. Each check
 * tries the real thing (a user namespace is created, not inferred from sysctls).
 */
#include "include/moat_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

static bool user_namespaces_work(int *error) {
    pid_t child = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS) | SIGCHLD,
                                 0, 0, 0, 0);
    if (child == 0) _exit(0);
    if (child < 0) {
        *error = errno;
        return false;
    }
    int status;
    waitpid(child, &status, 0);
    *error = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool seccomp_filter_available(void) {
    /* PR_GET_SECCOMP works on every kernel built with seccomp; the actions file says filters can
     * kill a whole process, which the launcher needs for foreign-architecture syscalls. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) return false;
    char actions[512] = "";
    int fd = open("/proc/sys/kernel/seccomp/actions_avail", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t length = read(fd, actions, sizeof actions - 1);
    close(fd);
    if (length <= 0) return false;
    actions[length] = '\0';
    return strstr(actions, "kill_process") != NULL && strstr(actions, "errno") != NULL;
}

int check_main(void) {
    struct buffer json = {0};
    int namespace_error = 0;
    bool namespaces = user_namespaces_work(&namespace_error);
    buffer_printf(&json, "{\"user_namespaces\":%s", namespaces ? "true" : "false");
    if (!namespaces) {
        buffer_append_string(&json, ",\"user_namespaces_error\":");
        const char *message = strerror(namespace_error);
        buffer_append_json_string(&json, message, strlen(message));
    }
    buffer_printf(&json, ",\"seccomp\":%s", seccomp_filter_available() ? "true" : "false");

    struct spec defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.limits.memory_bytes = 256u << 20;
    defaults.limits.cpus = 1;
    defaults.limits.pids = 64;
    struct limits_plan plan;
    limits_plan_create(&defaults, &plan);
    buffer_printf(&json, ",\"limits_mode\":\"%s\"", plan.use_cgroup ? "cgroup2" : "rlimit");
    limits_plan_destroy(&plan);

    long landlock = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
    buffer_printf(&json, ",\"landlock_abi\":%ld", landlock > 0 ? landlock : 0);

    struct utsname name;
    if (uname(&name) == 0) {
        buffer_append_string(&json, ",\"kernel\":");
        buffer_append_json_string(&json, name.release, strlen(name.release));
    }
    buffer_printf(&json, ",\"running_as_root\":%s}\n", geteuid() == 0 ? "true" : "false");
    fputs(json.data, stdout);
    free(json.data);
    return namespaces ? 0 : 1;
}
