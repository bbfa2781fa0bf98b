/*
 * moat-sandbox — run one command in a sandbox that assumes the command is hostile.
 *
 *   moat-sandbox                 read the JSON spec on stdin, write the JSON result on stdout
 *   moat-sandbox --spec FILE     the same, with the spec read from FILE
 *   moat-sandbox --check         print what this machine supports, as JSON
 *   moat-sandbox --export-filter print the compiled seccomp programs (include/moat_filter_blob.h)
 *   moat-sandbox --verify-filter check that header against the rules in filter.c
 *
 * The escape probes are not in here: they are the test-only moat-sandbox-probe (Tests/SandboxProbe).
 *
 * Exit codes: the command's own; 124 timeout; 125 setup error; 126 not executable; 127 not found;
 * 128+N killed by signal N. Docs/Sandbox.md describes the spec, the result and every step.
 */
#include "include/moat_sandbox.h"
#include "include/moat_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SPEC_BYTES (8u << 20)

static const char usage[] =
    "usage: moat-sandbox [--spec FILE]     run the JSON spec from stdin (or FILE), print a JSON result\n"
    "       moat-sandbox --check           print what this machine supports\n"
    "       moat-sandbox --export-filter   print the compiled seccomp programs as a C header\n"
    "       moat-sandbox --verify-filter   check the stored seccomp programs against the rules\n";

static bool read_spec(int fd, struct buffer *text, char *error, size_t error_size) {
    char chunk[65536];
    for (;;) {
        ssize_t count = read(fd, chunk, sizeof chunk);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) {
            snprintf(error, error_size, "cannot read the spec: %s", strerror(errno));
            return false;
        }
        if (count == 0) return true;
        if (text->length + (size_t)count > MAX_SPEC_BYTES) {
            snprintf(error, error_size, "the spec is larger than %u bytes", MAX_SPEC_BYTES);
            return false;
        }
        buffer_append(text, chunk, (size_t)count);
    }
}

int main(int argc, char **argv) {
    /* Nothing the starter left open by mistake (a descriptor without close-on-exec) reaches the
     * sandbox's init. */
    syscall(SYS_close_range, 3U, ~0U, 0U);

    /* Descriptors 0-2 must exist, so that no pipe made later takes one of their numbers. */
    for (;;) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0) return MOAT_EXIT_SETUP;
        if (fd > 2) {
            close(fd);
            break;
        }
        fcntl(fd, F_SETFD, 0);
    }

    int spec_fd = STDIN_FILENO;
    if (argc >= 2 && strcmp(argv[1], "--probe") == 0)
        return report_setup_error("--probe is not part of the launcher: the escape probes are the test-only "
                                  "moat-sandbox-probe (Docs/Sandbox.md, \"Escape suite\")",
                                  "none");
    if (argc == 2 && strcmp(argv[1], "--check") == 0) return check_main();
    if (argc == 2 && strcmp(argv[1], "--export-filter") == 0) return seccomp_filters_export();
    if (argc == 2 && strcmp(argv[1], "--verify-filter") == 0) return seccomp_filters_verify();
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--spec") == 0) {
        spec_fd = strcmp(argv[2], "-") == 0 ? STDIN_FILENO : open(argv[2], O_RDONLY | O_CLOEXEC);
        if (spec_fd < 0) {
            char message[200];
            snprintf(message, sizeof message, "cannot open the spec file: %s", strerror(errno));
            return report_setup_error(message, "none");
        }
    } else if (argc != 1) {
        fputs(usage, stderr);
        return report_setup_error("unknown command-line arguments (see --help)", "none");
    }

    struct buffer text = {0};
    char error[300];
    if (!read_spec(spec_fd, &text, error, sizeof error)) return report_setup_error(error, "none");
    if (spec_fd != STDIN_FILENO) close(spec_fd);
    struct json_value tree;
    struct spec spec;
    if (!spec_parse(text.data ? text.data : "", text.length, &tree, &spec, error, sizeof error))
        return report_setup_error(error, "none");
    return sandbox_run(&spec);
}
