// prctl(2) for the moat process itself (Swift cannot call the variadic libc prototype), and a
// posix_spawn that closes every other descriptor in the child without listing them.
#ifndef MOAT_PROCESS_H
#define MOAT_PROCESS_H

#include <sys/types.h>

/// Marks the process non-dumpable (PR_SET_DUMPABLE 0): no core dump, and /proc/PID/mem, ptrace and
/// gcore refused to every process without CAP_SYS_PTRACE. Returns 0, or -1 with errno set.
int moat_process_set_nondumpable(void);

/// PR_GET_DUMPABLE: 0 when non-dumpable, 1 when dumpable, -1 with errno set on failure.
int moat_process_dumpable(void);

/// Starts `path` with `argv` and `envp` (both NULL-terminated). `fds[0]`, `fds[1]` and `fds[2]` become
/// the child's standard input, output and error (-1: /dev/null); every other descriptor is closed in the
/// child (closefrom, so nothing has to list /proc/self/fd). `directory`, when not NULL, is its working
/// directory. The child starts with default signal dispositions and an empty signal mask, in a process
/// group of its own when `own_group` is not 0. Returns 0 with `*pid` set, or an errno value.
int moat_spawn(
    pid_t *pid, const char *path, char *const argv[], char *const envp[], const int fds[3],
    const char *directory, int own_group);

#endif
