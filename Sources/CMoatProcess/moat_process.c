#define _GNU_SOURCE

#include "moat_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>

int moat_process_set_nondumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int moat_process_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

int moat_spawn(
    pid_t *pid, const char *path, char *const argv[], char *const envp[], const int fds[3],
    const char *directory, int own_group) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = posix_spawn_file_actions_init(&actions);
    if (error != 0) {
        return error;
    }
    error = posix_spawnattr_init(&attributes);
    if (error != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return error;
    }
    for (int target = 0; target < 3 && error == 0; target++) {
        if (fds[target] < 0) {
            error = posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0);
        } else {
            error = posix_spawn_file_actions_adddup2(&actions, fds[target], target);
        }
    }
    if (error == 0 && directory != NULL) {
        error = posix_spawn_file_actions_addchdir_np(&actions, directory);
    }
    if (error == 0) {
        error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    }
    sigset_t all;
    sigset_t none;
    sigfillset(&all);
    sigemptyset(&none);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (own_group ? POSIX_SPAWN_SETPGROUP : 0);
    if (error == 0) {
        error = posix_spawnattr_setsigdefault(&attributes, &all);
    }
    if (error == 0) {
        error = posix_spawnattr_setsigmask(&attributes, &none);
    }
    if (error == 0 && own_group) {
        error = posix_spawnattr_setpgroup(&attributes, 0);
    }
    if (error == 0) {
        error = posix_spawnattr_setflags(&attributes, flags);
    }
    if (error == 0) {
        error = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    }
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return error;
}
