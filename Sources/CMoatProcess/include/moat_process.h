// prctl(2) for the moat process itself: Swift cannot call the variadic libc prototype.
#ifndef MOAT_PROCESS_H
#define MOAT_PROCESS_H

/// Marks the process non-dumpable (PR_SET_DUMPABLE 0): no core dump, and /proc/PID/mem, ptrace and
/// gcore refused to every process without CAP_SYS_PTRACE. Returns 0, or -1 with errno set.
int moat_process_set_nondumpable(void);

/// PR_GET_DUMPABLE: 0 when non-dumpable, 1 when dumpable, -1 with errno set on failure.
int moat_process_dumpable(void);

#endif
