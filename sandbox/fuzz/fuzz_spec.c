/*
 * libFuzzer harness for the launcher's spec parser (sandbox/json.c, sandbox/spec.c): every input goes
 * through spec_parse, the function the launcher runs on the spec it reads, then everything it
 * allocated is freed so LeakSanitizer sees a leak on any path. Not part of the SwiftPM build: run.sh
 * compiles it with clang -fsanitize=fuzzer,address,undefined.
 */
#include "../include/moat_sandbox.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct json_value tree;
    struct spec spec;
    char error[300];
    error[0] = '\0';
    bool accepted = spec_parse((const char *)data, size, &tree, &spec, error, sizeof error);
    /* A refusal always says why; an acceptance always has a command. */
    if (!accepted && (error[0] == '\0' || strlen(error) >= sizeof error)) abort();
    if (accepted && (spec.argv == NULL || spec.argv[0] == NULL || spec.argv[0][0] == '\0')) abort();
    spec_free(&spec, &tree);
    return 0;
}
