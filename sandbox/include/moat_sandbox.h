/*
 * moat-sandbox: runs one command in a fresh set of Linux namespaces behind a seccomp allowlist.
 * The launcher reads one JSON spec on stdin and writes one JSON result on stdout; Docs/Sandbox.md
 * explains every step and why it happens in that order.
 *
 * This header is shared by the launcher's translation units only; nothing here is a public API.
 */
#ifndef MOAT_SANDBOX_H
#define MOAT_SANDBOX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- exit codes, as documented for callers ---- */
enum {
    MOAT_EXIT_TIMEOUT = 124,
    MOAT_EXIT_SETUP = 125,
    MOAT_EXIT_NOT_EXECUTABLE = 126,
    MOAT_EXIT_NOT_FOUND = 127,
    MOAT_EXIT_SIGNAL_BASE = 128,
};

/* Sent by the launcher to init at the timeout: kill everything else in the namespace and reap it. */
#define MOAT_STOP_SIGNAL SIGPWR

/* The uid and gid the command has inside its user namespace. */
#define MOAT_INSIDE_ID 1000
/* The host id a root caller's sandbox is mapped to: never host root itself (see Docs/Sandbox.md). */
#define MOAT_UNPRIVILEGED_HOST_ID 65534

/* ---- growable byte buffer ---- */
struct buffer {
    char *data;
    size_t length;
    size_t capacity;
};

void buffer_append(struct buffer *buffer, const void *bytes, size_t count);
void buffer_append_string(struct buffer *buffer, const char *text);
void buffer_printf(struct buffer *buffer, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Appends bytes as a JSON string literal; invalid UTF-8 becomes U+FFFD. */
void buffer_append_json_string(struct buffer *buffer, const char *bytes, size_t count);

void *checked_malloc(size_t size);
/* Zeroed, and refuses a count * size that overflows. */
void *checked_calloc(size_t count, size_t size);
void *checked_realloc(void *pointer, size_t size);
char *checked_strdup(const char *text);

/* ---- strict JSON (RFC 8259) ---- */
enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_member;

struct json_value {
    enum json_type type;
    /* JSON_NUMBER: integers without fraction or exponent that fit in int64 set is_integer. */
    bool is_integer;
    int64_t integer;
    /* JSON_STRING: decoded UTF-8, NUL-terminated; length excludes the terminator and may count NULs. */
    char *string;
    size_t length;
    /* JSON_ARRAY */
    struct json_value *items;
    /* JSON_OBJECT, in document order; duplicate keys are rejected while parsing. */
    struct json_member *members;
    size_t count;
};

struct json_member {
    char *key;
    size_t key_length;
    struct json_value value;
};

/* Parses a whole document. On failure returns false and writes a message (which never quotes the input). */
bool json_parse(const char *text, size_t length, struct json_value *out, char *error, size_t error_size);
/* Frees what json_parse allocated and zeroes the value. */
void json_free(struct json_value *value);

/* ---- the spec ---- */
struct bind_mount {
    char label[64]; /* "ro_binds[2]": how errors name it, without echoing the path */
    char *source; /* host path */
    char *target; /* path inside the sandbox */
    bool writable;
};

struct limits {
    uint64_t memory_bytes;
    uint32_t cpus;
    uint32_t pids;
    uint64_t tmp_bytes;
    uint64_t output_bytes;
    uint64_t cpu_seconds;
    uint64_t file_bytes;
};

struct spec {
    char **argv; /* NULL-terminated */
    char **env;  /* NULL-terminated "KEY=VALUE" strings */
    const char *path_variable; /* the PATH value from env, or NULL */
    struct bind_mount *binds;
    size_t bind_count;
    char *cwd;
    struct limits limits;
    uint64_t timeout_ms;
    char **protected_paths; /* NULL-terminated: Moat's own state; no bind may be, contain or be inside one */
    pid_t parent_pid;       /* the process that started the launcher, or 0 when not given */
};

/* ---- what no caller bind may reach (computed by the launcher, checked by init) ---- */
struct object_id {
    dev_t device;
    ino_t inode;
};

struct bind_guard {
    /* /proc, /sys, /dev and the protected paths that exist: a source at or below one is refused. */
    struct object_id *forbidden;
    size_t forbidden_count;
    /* Every directory on the way to each of those, and they themselves: a source equal to one would
     * contain a forbidden object. */
    struct object_id *enclosing;
    size_t enclosing_count;
};

/* In the launcher, with the caller's own view of the host: resolves the forbidden objects. */
void bind_guard_create(const struct spec *spec, struct bind_guard *guard);

bool spec_from_json(const struct json_value *root, struct spec *spec, char *error, size_t error_size);

/* The launcher's whole parse, bytes to a checked spec: what main runs on the spec it read, and what the
 * fuzz harness (sandbox/fuzz/) runs on every input. The spec borrows strings from tree, which must
 * outlive it. On failure returns false with a message that names a byte offset or a field, never the input. */
bool spec_parse(const char *text, size_t length, struct json_value *tree, struct spec *spec, char *error,
                size_t error_size);
/* Frees what spec_parse allocated, after a success or a failure (the launcher itself never needs to). */
void spec_free(struct spec *spec, struct json_value *tree);

/* ---- reports from inside the sandbox to the launcher (one record per write, atomic on a pipe) ---- */
enum report_kind { REPORT_SETUP_ERROR = 'E', REPORT_EXEC_ERROR = 'X', REPORT_COMMAND_STATUS = 'S' };

struct report {
    char kind;
    int32_t value; /* errno for E and X, wait status for S */
    char step[120]; /* which step failed, in our own words; never contains spec input */
};

/* ---- the run ---- */
struct limits_plan {
    bool use_cgroup;          /* limits_mode: "cgroup2" when true, "rlimit" otherwise */
    int cgroup_fd;            /* directory fd of the sandbox's own cgroup, or -1 */
    char cgroup_path[4096];   /* for cleanup and for reading memory.events */
    cpu_set_t affinity;       /* rlimit mode: the CPUs the command may run on */
};

/* Decides between cgroup v2 and rlimits; creates the cgroup when one is used. */
void limits_plan_create(const struct spec *spec, struct limits_plan *plan);
/* In the command process, before dropping privileges: applies rlimits and CPU affinity. */
int limits_apply_in_child(const struct spec *spec, const struct limits_plan *plan, bool init_shares_uid,
                          const char **failed_step);
/* After the sandbox ended: the number of OOM kills seen by the cgroup (0 in rlimit mode). */
uint64_t limits_oom_kills(const struct limits_plan *plan);
/* After the sandbox ended: the CPU time the cgroup's processes used (0 in rlimit mode). */
uint64_t limits_cpu_ms(const struct limits_plan *plan);
void limits_plan_destroy(struct limits_plan *plan);

/* Builds the filesystem inside the new mount namespace and pivots into it. */
int filesystem_build(const struct spec *spec, const struct bind_guard *guard, const char **failed_step,
                     char *step_buffer, size_t step_size);

/* The seccomp filters, built once per launcher run in the sandbox's init. */
struct seccomp_filters;
struct seccomp_filters *seccomp_filters_build(const char **failed_step);
/* memory_guard: also refuse what holds memory outside RLIMIT_AS (rlimit mode, no memory cgroup). */
int seccomp_filters_load(struct seccomp_filters *filters, bool memory_guard);
/* `--export-filter`: prints include/moat_filter_blob.h. `--verify-filter`: compares it with the rules. */
int seccomp_filters_export(void);
int seccomp_filters_verify(void);

/* Writes a setup_error result (for failures before the sandbox exists); returns the exit code. */
int report_setup_error(const char *message, const char *limits_mode);

/* Runs the spec and writes the result; returns the launcher's exit code. */
int sandbox_run(const struct spec *spec);

/* Check mode: `moat-sandbox --check` prints what this machine supports as JSON. */
int check_main(void);

/* Raw syscalls that older libcs lack. */
int sys_open_tree(int dirfd, const char *path, unsigned int flags);
int sys_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags);
int sys_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set, uint64_t attr_clr);
int sys_pivot_root(const char *new_root, const char *put_old);
int sys_close_range_cloexec(unsigned int first);

#endif
