/*
 * A small strict JSON parser (RFC 8259) and the helpers that write JSON.
 *
 * Strict means: exactly one value with only whitespace around it, no byte-order mark, no trailing
 * commas, no leading zeros, no raw control characters in strings, only the escapes the RFC names,
 * well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), no lone
 * surrogate escapes, no duplicate keys in an object, and a nesting limit. Error messages give a
 * byte offset and what was expected, never the input itself.
 */
#include "include/moat_sandbox.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sized for the spec, the only document parsed here: the largest valid spec nests 4 deep, has at most
 * 4,096 members in an object (env) and about 9,100 values (4,096 arguments, 4,096 environment entries,
 * 256 binds, 64 protected paths). The value cap bounds the memory a refused 8 MiB spec can cost (each
 * string is an allocation of its own: 8 MiB of "" took 900 MB); the member cap bounds the duplicate-key
 * check, which compares each key with the earlier keys of its object (800,000 keys took hours). */
enum { JSON_MAX_DEPTH = 32, JSON_MAX_VALUES = 16384, JSON_MAX_MEMBERS = 4096 };

/* ---- memory and buffers ---- */

static void out_of_memory(void) {
    static const char message[] =
        "{\"status\":\"setup_error\",\"exit_code\":125,\"error\":\"moat-sandbox ran out of memory\"}\n";
    ssize_t ignored = write(STDOUT_FILENO, message, sizeof message - 1);
    (void)ignored;
    _exit(MOAT_EXIT_SETUP);
}

void *checked_malloc(size_t size) {
    void *pointer = malloc(size ? size : 1);
    if (!pointer) out_of_memory();
    return pointer;
}

void *checked_realloc(void *pointer, size_t size) {
    void *resized = realloc(pointer, size ? size : 1);
    if (!resized) out_of_memory();
    return resized;
}

void *checked_calloc(size_t count, size_t size) {
    void *pointer = calloc(count ? count : 1, size ? size : 1);
    if (!pointer) out_of_memory();
    return pointer;
}

char *checked_strdup(const char *text) {
    size_t length = strlen(text);
    char *copy = checked_malloc(length + 1);
    memcpy(copy, text, length + 1);
    return copy;
}

static void buffer_reserve(struct buffer *buffer, size_t extra) {
    if (buffer->capacity - buffer->length > extra) return;
    size_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity - buffer->length <= extra) {
        if (capacity > SIZE_MAX / 2) out_of_memory();
        capacity *= 2;
    }
    buffer->data = checked_realloc(buffer->data, capacity);
    buffer->capacity = capacity;
    /* Terminated from the first allocation on: an empty JSON string is "" here, not uninitialised bytes. */
    buffer->data[buffer->length] = '\0';
}

void buffer_append(struct buffer *buffer, const void *bytes, size_t count) {
    buffer_reserve(buffer, count);
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
    buffer->data[buffer->length] = '\0';
}

void buffer_append_string(struct buffer *buffer, const char *text) { buffer_append(buffer, text, strlen(text)); }

void buffer_printf(struct buffer *buffer, const char *format, ...) {
    char small[256];
    va_list arguments;
    va_start(arguments, format);
    int needed = vsnprintf(small, sizeof small, format, arguments);
    va_end(arguments);
    if (needed < 0) return;
    if ((size_t)needed < sizeof small) {
        buffer_append(buffer, small, (size_t)needed);
        return;
    }
    buffer_reserve(buffer, (size_t)needed + 1);
    va_start(arguments, format);
    vsnprintf(buffer->data + buffer->length, (size_t)needed + 1, format, arguments);
    va_end(arguments);
    buffer->length += (size_t)needed;
}

/* Length of the well-formed UTF-8 sequence at bytes[0], or 0 when it is not one (RFC 3629 table). */
static size_t utf8_sequence_length(const unsigned char *bytes, size_t available) {
    unsigned char lead = bytes[0];
    if (lead < 0x80) return 1;
    size_t length;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead == 0xE0) {
        length = 3, low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
        length = 3;
    } else if (lead == 0xED) {
        length = 3, high = 0x9F; /* excludes the surrogates U+D800..U+DFFF */
    } else if (lead == 0xF0) {
        length = 4, low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
        length = 4;
    } else if (lead == 0xF4) {
        length = 4, high = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (available < length) return 0;
    if (bytes[1] < low || bytes[1] > high) return 0;
    for (size_t index = 2; index < length; index++) {
        if (bytes[index] < 0x80 || bytes[index] > 0xBF) return 0;
    }
    return length;
}

void buffer_append_json_string(struct buffer *buffer, const char *text, size_t count) {
    const unsigned char *bytes = (const unsigned char *)text;
    buffer_reserve(buffer, count + 2);
    buffer_append(buffer, "\"", 1);
    size_t index = 0;
    while (index < count) {
        unsigned char byte = bytes[index];
        if (byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\') {
            size_t run = index;
            while (run < count && bytes[run] >= 0x20 && bytes[run] < 0x80 && bytes[run] != '"' && bytes[run] != '\\')
                run++;
            buffer_append(buffer, bytes + index, run - index);
            index = run;
            continue;
        }
        switch (byte) {
        case '"': buffer_append(buffer, "\\\"", 2); index++; continue;
        case '\\': buffer_append(buffer, "\\\\", 2); index++; continue;
        case '\n': buffer_append(buffer, "\\n", 2); index++; continue;
        case '\r': buffer_append(buffer, "\\r", 2); index++; continue;
        case '\t': buffer_append(buffer, "\\t", 2); index++; continue;
        case '\b': buffer_append(buffer, "\\b", 2); index++; continue;
        case '\f': buffer_append(buffer, "\\f", 2); index++; continue;
        default: break;
        }
        if (byte < 0x20) {
            buffer_printf(buffer, "\\u%04x", byte);
            index++;
            continue;
        }
        size_t length = utf8_sequence_length(bytes + index, count - index);
        if (length == 0) {
            buffer_append(buffer, "\\ufffd", 6);
            index++;
        } else {
            buffer_append(buffer, bytes + index, length);
            index += length;
        }
    }
    buffer_append(buffer, "\"", 1);
}

/* ---- the parser ---- */

struct parser {
    const unsigned char *text;
    size_t length;
    size_t position;
    char *error;
    size_t error_size;
    bool failed;
    size_t values; /* parsed or being parsed, at every depth */
};

static bool fail(struct parser *parser, const char *expectation) {
    if (!parser->failed) {
        snprintf(parser->error, parser->error_size, "invalid JSON at byte %zu: %s", parser->position, expectation);
        parser->failed = true;
    }
    return false;
}

static void skip_whitespace(struct parser *parser) {
    while (parser->position < parser->length) {
        unsigned char byte = parser->text[parser->position];
        if (byte != ' ' && byte != '\t' && byte != '\n' && byte != '\r') return;
        parser->position++;
    }
}

static bool parse_value(struct parser *parser, struct json_value *out, int depth);

static bool consume_literal(struct parser *parser, const char *literal) {
    size_t length = strlen(literal);
    if (parser->length - parser->position < length || memcmp(parser->text + parser->position, literal, length) != 0)
        return fail(parser, "expected a value");
    parser->position += length;
    return true;
}

static int hex_value(unsigned char byte) {
    if (byte >= '0' && byte <= '9') return byte - '0';
    if (byte >= 'a' && byte <= 'f') return byte - 'a' + 10;
    if (byte >= 'A' && byte <= 'F') return byte - 'A' + 10;
    return -1;
}

static bool parse_hex4(struct parser *parser, unsigned *out) {
    if (parser->length - parser->position < 4) return fail(parser, "expected four hex digits after \\u");
    unsigned value = 0;
    for (int index = 0; index < 4; index++) {
        int digit = hex_value(parser->text[parser->position + index]);
        if (digit < 0) return fail(parser, "expected four hex digits after \\u");
        value = value * 16 + (unsigned)digit;
    }
    parser->position += 4;
    *out = value;
    return true;
}

static void append_code_point(struct buffer *buffer, unsigned code_point) {
    unsigned char bytes[4];
    size_t count;
    if (code_point < 0x80) {
        bytes[0] = (unsigned char)code_point, count = 1;
    } else if (code_point < 0x800) {
        bytes[0] = (unsigned char)(0xC0 | (code_point >> 6));
        bytes[1] = (unsigned char)(0x80 | (code_point & 0x3F));
        count = 2;
    } else if (code_point < 0x10000) {
        bytes[0] = (unsigned char)(0xE0 | (code_point >> 12));
        bytes[1] = (unsigned char)(0x80 | ((code_point >> 6) & 0x3F));
        bytes[2] = (unsigned char)(0x80 | (code_point & 0x3F));
        count = 3;
    } else {
        bytes[0] = (unsigned char)(0xF0 | (code_point >> 18));
        bytes[1] = (unsigned char)(0x80 | ((code_point >> 12) & 0x3F));
        bytes[2] = (unsigned char)(0x80 | ((code_point >> 6) & 0x3F));
        bytes[3] = (unsigned char)(0x80 | (code_point & 0x3F));
        count = 4;
    }
    buffer_append(buffer, bytes, count);
}

static bool parse_string(struct parser *parser, char **out, size_t *out_length) {
    /* The caller saw the opening quote. */
    parser->position++;
    struct buffer decoded = {0};
    buffer_reserve(&decoded, 16);
    for (;;) {
        if (parser->position >= parser->length) {
            free(decoded.data);
            return fail(parser, "unterminated string");
        }
        unsigned char byte = parser->text[parser->position];
        if (byte == '"') {
            parser->position++;
            break;
        }
        if (byte < 0x20) {
            free(decoded.data);
            return fail(parser, "raw control character in string");
        }
        if (byte != '\\') {
            size_t length = utf8_sequence_length(parser->text + parser->position, parser->length - parser->position);
            if (length == 0) {
                free(decoded.data);
                return fail(parser, "malformed UTF-8");
            }
            buffer_append(&decoded, parser->text + parser->position, length);
            parser->position += length;
            continue;
        }
        parser->position++;
        if (parser->position >= parser->length) {
            free(decoded.data);
            return fail(parser, "unterminated escape");
        }
        unsigned char escape = parser->text[parser->position++];
        char simple = 0;
        switch (escape) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default:
            parser->position--;
            free(decoded.data);
            return fail(parser, "unknown escape");
        }
        if (simple) {
            buffer_append(&decoded, &simple, 1);
            continue;
        }
        unsigned unit;
        if (!parse_hex4(parser, &unit)) {
            free(decoded.data);
            return false;
        }
        if (unit >= 0xDC00 && unit <= 0xDFFF) {
            free(decoded.data);
            return fail(parser, "lone low surrogate escape");
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            unsigned low;
            if (parser->length - parser->position < 2 || parser->text[parser->position] != '\\' ||
                parser->text[parser->position + 1] != 'u') {
                free(decoded.data);
                return fail(parser, "high surrogate escape without a low surrogate");
            }
            parser->position += 2;
            if (!parse_hex4(parser, &low)) {
                free(decoded.data);
                return false;
            }
            if (low < 0xDC00 || low > 0xDFFF) {
                free(decoded.data);
                return fail(parser, "high surrogate escape without a low surrogate");
            }
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        }
        append_code_point(&decoded, unit);
    }
    *out = decoded.data;
    *out_length = decoded.length;
    return true;
}

static bool is_digit(unsigned char byte) { return byte >= '0' && byte <= '9'; }

static bool parse_number(struct parser *parser, struct json_value *out) {
    size_t start = parser->position;
    bool negative = false;
    if (parser->text[parser->position] == '-') {
        negative = true;
        parser->position++;
    }
    if (parser->position >= parser->length || !is_digit(parser->text[parser->position]))
        return fail(parser, "expected a digit");
    bool integer = true;
    /* Accumulate the magnitude as unsigned so INT64_MIN parses exactly. */
    uint64_t magnitude = 0;
    bool overflow = false;
    if (parser->text[parser->position] == '0') {
        parser->position++;
        if (parser->position < parser->length && is_digit(parser->text[parser->position]))
            return fail(parser, "leading zero in a number");
    } else {
        while (parser->position < parser->length && is_digit(parser->text[parser->position])) {
            unsigned digit = parser->text[parser->position] - '0';
            if (magnitude > (UINT64_MAX - digit) / 10) overflow = true;
            else magnitude = magnitude * 10 + digit;
            parser->position++;
        }
    }
    if (parser->position < parser->length && parser->text[parser->position] == '.') {
        integer = false;
        parser->position++;
        if (parser->position >= parser->length || !is_digit(parser->text[parser->position]))
            return fail(parser, "expected a digit after the decimal point");
        while (parser->position < parser->length && is_digit(parser->text[parser->position])) parser->position++;
    }
    if (parser->position < parser->length &&
        (parser->text[parser->position] == 'e' || parser->text[parser->position] == 'E')) {
        integer = false;
        parser->position++;
        if (parser->position < parser->length &&
            (parser->text[parser->position] == '+' || parser->text[parser->position] == '-'))
            parser->position++;
        if (parser->position >= parser->length || !is_digit(parser->text[parser->position]))
            return fail(parser, "expected a digit in the exponent");
        while (parser->position < parser->length && is_digit(parser->text[parser->position])) parser->position++;
    }
    (void)start;
    out->type = JSON_NUMBER;
    out->is_integer = false;
    if (integer && !overflow) {
        if (!negative && magnitude <= (uint64_t)INT64_MAX) {
            out->is_integer = true;
            out->integer = (int64_t)magnitude;
        } else if (negative && magnitude <= (uint64_t)INT64_MAX + 1) {
            out->is_integer = true;
            out->integer = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
        }
    }
    return true;
}

static bool parse_array(struct parser *parser, struct json_value *out, int depth) {
    parser->position++;
    out->type = JSON_ARRAY;
    out->items = NULL;
    out->count = 0;
    size_t capacity = 0;
    skip_whitespace(parser);
    if (parser->position < parser->length && parser->text[parser->position] == ']') {
        parser->position++;
        return true;
    }
    for (;;) {
        if (out->count == capacity) {
            capacity = capacity ? capacity * 2 : 4;
            out->items = checked_realloc(out->items, capacity * sizeof *out->items);
        }
        skip_whitespace(parser);
        /* Counted before it is parsed, so json_free releases a half-parsed item too. */
        if (!parse_value(parser, &out->items[out->count++], depth + 1)) return false;
        skip_whitespace(parser);
        if (parser->position >= parser->length) return fail(parser, "unterminated array");
        unsigned char byte = parser->text[parser->position++];
        if (byte == ']') return true;
        if (byte != ',') {
            parser->position--;
            return fail(parser, "expected ',' or ']'");
        }
    }
}

static bool parse_object(struct parser *parser, struct json_value *out, int depth) {
    parser->position++;
    out->type = JSON_OBJECT;
    out->members = NULL;
    out->count = 0;
    size_t capacity = 0;
    skip_whitespace(parser);
    if (parser->position < parser->length && parser->text[parser->position] == '}') {
        parser->position++;
        return true;
    }
    for (;;) {
        skip_whitespace(parser);
        if (parser->position >= parser->length || parser->text[parser->position] != '"')
            return fail(parser, "expected a string key");
        if (out->count == JSON_MAX_MEMBERS) return fail(parser, "an object with more than 4096 members");
        if (out->count == capacity) {
            capacity = capacity ? capacity * 2 : 4;
            out->members = checked_realloc(out->members, capacity * sizeof *out->members);
        }
        /* Counted (empty) before it is parsed, so json_free releases a half-parsed member too. */
        struct json_member *member = &out->members[out->count++];
        memset(member, 0, sizeof *member);
        size_t key_position = parser->position;
        if (!parse_string(parser, &member->key, &member->key_length)) return false;
        for (size_t index = 0; index + 1 < out->count; index++) {
            if (out->members[index].key_length == member->key_length &&
                memcmp(out->members[index].key, member->key, member->key_length) == 0) {
                parser->position = key_position;
                return fail(parser, "duplicate key in object");
            }
        }
        skip_whitespace(parser);
        if (parser->position >= parser->length || parser->text[parser->position] != ':')
            return fail(parser, "expected ':'");
        parser->position++;
        skip_whitespace(parser);
        if (!parse_value(parser, &member->value, depth + 1)) return false;
        skip_whitespace(parser);
        if (parser->position >= parser->length) return fail(parser, "unterminated object");
        unsigned char byte = parser->text[parser->position++];
        if (byte == '}') return true;
        if (byte != ',') {
            parser->position--;
            return fail(parser, "expected ',' or '}'");
        }
    }
}

static bool parse_value(struct parser *parser, struct json_value *out, int depth) {
    memset(out, 0, sizeof *out);
    if (depth > JSON_MAX_DEPTH) return fail(parser, "nested more than 32 deep");
    if (++parser->values > JSON_MAX_VALUES) return fail(parser, "more than 16384 values (a spec needs far fewer)");
    if (parser->position >= parser->length) return fail(parser, "expected a value");
    unsigned char byte = parser->text[parser->position];
    switch (byte) {
    case '{': return parse_object(parser, out, depth);
    case '[': return parse_array(parser, out, depth);
    case '"':
        out->type = JSON_STRING;
        return parse_string(parser, &out->string, &out->length);
    case 't': out->type = JSON_TRUE; return consume_literal(parser, "true");
    case 'f': out->type = JSON_FALSE; return consume_literal(parser, "false");
    case 'n': out->type = JSON_NULL; return consume_literal(parser, "null");
    default:
        if (byte == '-' || is_digit(byte)) return parse_number(parser, out);
        return fail(parser, "expected a value");
    }
}

bool json_parse(const char *text, size_t length, struct json_value *out, char *error, size_t error_size) {
    struct parser parser = {
        .text = (const unsigned char *)text, .length = length, .error = error, .error_size = error_size};
    memset(out, 0, sizeof *out);
    if (length >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) return fail(&parser, "byte-order mark not allowed");
    skip_whitespace(&parser);
    if (parse_value(&parser, out, 0)) {
        skip_whitespace(&parser);
        if (parser.position == parser.length) return true;
        fail(&parser, "unexpected data after the value");
    }
    /* Nothing of a refused document is kept. */
    json_free(out);
    return false;
}

void json_free(struct json_value *value) {
    switch (value->type) {
    case JSON_STRING: free(value->string); break;
    case JSON_ARRAY:
        for (size_t index = 0; index < value->count; index++) json_free(&value->items[index]);
        free(value->items);
        break;
    case JSON_OBJECT:
        for (size_t index = 0; index < value->count; index++) {
            free(value->members[index].key);
            json_free(&value->members[index].value);
        }
        free(value->members);
        break;
    default: break;
    }
    memset(value, 0, sizeof *value);
}
