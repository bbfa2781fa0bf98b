/*
 * libFuzzer harness for the launcher's JSON writer (buffer_append_json_string in sandbox/json.c), which
 * encodes the sandboxed command's own output into the result outside the sandbox. Property: whatever
 * the bytes, the writer's text is one valid JSON string to the strict parser, and it decodes to the
 * input unless the input held malformed UTF-8 (then the decoded text has a U+FFFD replacement).
 */
#include "../include/moat_sandbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct buffer encoded = {0};
    buffer_append_json_string(&encoded, (const char *)data, size);
    struct json_value value;
    char error[300];
    if (!json_parse(encoded.data, encoded.length, &value, error, sizeof error) || value.type != JSON_STRING) abort();
    bool same = value.length == size && memcmp(value.string, data, size) == 0;
    if (!same && !memmem(value.string, value.length, "\xEF\xBF\xBD", 3)) abort();
    json_free(&value);
    free(encoded.data);
    return 0;
}
