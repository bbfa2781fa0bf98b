/*
 * The spec: one JSON object read from stdin. Every key is known; an unknown key, a wrong type or a
 * value out of range is an error that names the field, never the value.
 *
 * {
 *   "argv": ["/bin/echo", "hi"],                      required, at least one string
 *   "env": {"PATH": "/usr/bin:/bin"},                 optional, default empty
 *   "ro_binds": ["/opt/tool", {"src": "/a", "dst": "/b"}],   optional, added to the system binds
 *   "rw_binds": [{"src": "/home/me/ws", "dst": "/workspace"}], optional
 *   "cwd": "/workspace",                              optional, default "/"
 *   "network": "none",                                optional, the only value
 *   "limits": {"memory_bytes": ..., "cpus": ..., "pids": ..., "tmp_bytes": ...,
 *              "output_bytes": ..., "cpu_seconds": ..., "file_bytes": ...},  optional, each optional
 *   "timeout_ms": 30000,                              optional
 *   "protected_paths": ["/home/me/.local/state/moat"],  optional: no bind may be, contain or be inside one
 *   "parent_pid": 4242                                optional: the launcher ends if this is not its parent
 * }
 */
#include "include/moat_sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_ARGUMENTS = 4096,
    MAX_ENVIRONMENT = 4096,
    MAX_BINDS = 256,
    MAX_PROTECTED_PATHS = 64,
    MAX_PATH_BYTES = 4000,
};

#define MIB (UINT64_C(1) << 20)
#define TIB (UINT64_C(1) << 40)

static bool field_error(char *error, size_t size, const char *field, const char *problem) {
    snprintf(error, size, "spec.%s %s", field, problem);
    return false;
}

static bool key_is(const struct json_member *member, const char *key) {
    return member->key_length == strlen(key) && memcmp(member->key, key, member->key_length) == 0;
}

/* A string without NUL bytes, so it can become a C string. */
static bool plain_string(const struct json_value *value) {
    return value->type == JSON_STRING && memchr(value->string, '\0', value->length) == NULL;
}

static bool read_integer(const struct json_value *value, const char *field, uint64_t minimum, uint64_t maximum,
                         uint64_t *out, char *error, size_t size) {
    if (value->type != JSON_NUMBER || !value->is_integer || value->integer < 0 ||
        (uint64_t)value->integer < minimum || (uint64_t)value->integer > maximum) {
        char problem[160];
        snprintf(problem, sizeof problem, "must be an integer from %llu to %llu", (unsigned long long)minimum,
                 (unsigned long long)maximum);
        return field_error(error, size, field, problem);
    }
    *out = (uint64_t)value->integer;
    return true;
}

/* Absolute, no empty, "." or ".." components, no trailing slash: what the sandbox sees is what was asked. */
static bool normal_absolute_path(const char *path) {
    size_t length = strlen(path);
    if (length == 0 || length > MAX_PATH_BYTES || path[0] != '/') return false;
    if (length == 1) return true;
    if (path[length - 1] == '/') return false;
    const char *component = path + 1;
    for (;;) {
        const char *slash = strchr(component, '/');
        size_t component_length = slash ? (size_t)(slash - component) : strlen(component);
        if (component_length == 0) return false;
        if (component_length == 1 && component[0] == '.') return false;
        if (component_length == 2 && component[0] == '.' && component[1] == '.') return false;
        if (!slash) return true;
        component = slash + 1;
    }
}

static bool path_is_under(const char *path, const char *root) {
    size_t length = strlen(root);
    return strncmp(path, root, length) == 0 && (path[length] == '\0' || path[length] == '/');
}

static bool read_binds(const struct json_value *value, const char *field, bool writable, struct spec *spec,
                       char *error, size_t size) {
    if (value->type != JSON_ARRAY) return field_error(error, size, field, "must be an array");
    if (spec->bind_count + value->count > MAX_BINDS) return field_error(error, size, field, "has too many entries");
    spec->binds = checked_realloc(spec->binds, (spec->bind_count + value->count) * sizeof *spec->binds);
    for (size_t index = 0; index < value->count; index++) {
        const struct json_value *item = &value->items[index];
        char item_field[64];
        snprintf(item_field, sizeof item_field, "%s[%zu]", field, index);
        const char *source = NULL, *target = NULL;
        if (item->type == JSON_STRING) {
            if (!plain_string(item)) return field_error(error, size, item_field, "contains a NUL byte");
            source = target = item->string;
        } else if (item->type == JSON_OBJECT) {
            for (size_t member = 0; member < item->count; member++) {
                const struct json_member *entry = &item->members[member];
                const char **slot = key_is(entry, "src") ? &source : key_is(entry, "dst") ? &target : NULL;
                if (!slot) return field_error(error, size, item_field, "has an unknown key (allowed: src, dst)");
                if (!plain_string(&entry->value))
                    return field_error(error, size, item_field, "src and dst must be strings without NUL bytes");
                *slot = entry->value.string;
            }
            if (!source) return field_error(error, size, item_field, "needs a src");
            if (!target) target = source;
        } else {
            return field_error(error, size, item_field, "must be a path string or an object {src, dst}");
        }
        if (!normal_absolute_path(source))
            return field_error(error, size, item_field,
                               "src must be an absolute path without '.', '..', empty components or a trailing slash");
        if (!normal_absolute_path(target) || strcmp(target, "/") == 0)
            return field_error(error, size, item_field,
                               "dst must be an absolute path other than '/', without '.', '..', empty components "
                               "or a trailing slash");
        if (path_is_under(target, "/proc") || path_is_under(target, "/dev"))
            return field_error(error, size, item_field, "dst may not be under /proc or /dev");
        /* The host's kernel interfaces would undo the namespaces: never bind them in. */
        if (path_is_under(source, "/proc") || path_is_under(source, "/sys") || path_is_under(source, "/dev"))
            return field_error(error, size, item_field, "src may not be under /proc, /sys or /dev");
        struct bind_mount *bind = &spec->binds[spec->bind_count++];
        snprintf(bind->label, sizeof bind->label, "%s", item_field);
        bind->source = checked_strdup(source);
        bind->target = checked_strdup(target);
        bind->writable = writable;
    }
    return true;
}

static bool read_protected_paths(const struct json_value *value, struct spec *spec, char *error, size_t size) {
    if (value->type != JSON_ARRAY || value->count > MAX_PROTECTED_PATHS)
        return field_error(error, size, "protected_paths", "must be an array of at most 64 paths");
    spec->protected_paths = checked_calloc(value->count + 1, sizeof *spec->protected_paths);
    for (size_t index = 0; index < value->count; index++) {
        const struct json_value *item = &value->items[index];
        if (!plain_string(item) || !normal_absolute_path(item->string))
            return field_error(error, size, "protected_paths",
                               "must hold absolute paths without '.', '..', empty components or a trailing slash");
        spec->protected_paths[index] = item->string;
    }
    spec->protected_paths[value->count] = NULL;
    return true;
}

static bool read_limits(const struct json_value *value, struct spec *spec, char *error, size_t size) {
    if (value->type != JSON_OBJECT) return field_error(error, size, "limits", "must be an object");
    struct limits *limits = &spec->limits;
    for (size_t index = 0; index < value->count; index++) {
        const struct json_member *member = &value->members[index];
        const struct json_value *item = &member->value;
        uint64_t number;
        if (key_is(member, "memory_bytes")) {
            if (!read_integer(item, "limits.memory_bytes", 16 * MIB, TIB, &limits->memory_bytes, error, size))
                return false;
        } else if (key_is(member, "cpus")) {
            if (!read_integer(item, "limits.cpus", 1, 1024, &number, error, size)) return false;
            limits->cpus = (uint32_t)number;
        } else if (key_is(member, "pids")) {
            if (!read_integer(item, "limits.pids", 1, 65536, &number, error, size)) return false;
            limits->pids = (uint32_t)number;
        } else if (key_is(member, "tmp_bytes")) {
            if (!read_integer(item, "limits.tmp_bytes", 64 * 1024, TIB, &limits->tmp_bytes, error, size))
                return false;
        } else if (key_is(member, "output_bytes")) {
            if (!read_integer(item, "limits.output_bytes", 0, 256 * MIB, &limits->output_bytes, error, size))
                return false;
        } else if (key_is(member, "cpu_seconds")) {
            if (!read_integer(item, "limits.cpu_seconds", 1, 7 * 86400, &limits->cpu_seconds, error, size))
                return false;
        } else if (key_is(member, "file_bytes")) {
            if (!read_integer(item, "limits.file_bytes", 0, 1024 * TIB, &limits->file_bytes, error, size))
                return false;
        } else {
            char problem[200];
            snprintf(problem, sizeof problem,
                     "has an unknown key at position %zu (allowed: memory_bytes, cpus, pids, tmp_bytes, "
                     "output_bytes, cpu_seconds, file_bytes)",
                     index + 1);
            return field_error(error, size, "limits", problem);
        }
    }
    return true;
}

static bool read_env(const struct json_value *value, struct spec *spec, char *error, size_t size) {
    if (value->type != JSON_OBJECT) return field_error(error, size, "env", "must be an object of strings");
    if (value->count > MAX_ENVIRONMENT) return field_error(error, size, "env", "has too many entries");
    spec->env = checked_calloc(value->count + 1, sizeof *spec->env);
    for (size_t index = 0; index < value->count; index++) {
        const struct json_member *member = &value->members[index];
        char field[64];
        snprintf(field, sizeof field, "env (entry %zu)", index + 1);
        if (member->key_length == 0 || memchr(member->key, '=', member->key_length) ||
            memchr(member->key, '\0', member->key_length))
            return field_error(error, size, field, "has a name that is empty or contains '=' or a NUL byte");
        if (!plain_string(&member->value))
            return field_error(error, size, field, "must have a string value without NUL bytes");
        size_t length = member->key_length + 1 + member->value.length + 1;
        char *entry = checked_malloc(length);
        snprintf(entry, length, "%s=%s", member->key, member->value.string);
        spec->env[index] = entry;
        if (strcmp(member->key, "PATH") == 0) spec->path_variable = entry + 5;
    }
    spec->env[value->count] = NULL;
    return true;
}

bool spec_from_json(const struct json_value *root, struct spec *spec, char *error, size_t size) {
    memset(spec, 0, sizeof *spec);
    spec->limits = (struct limits){
        .memory_bytes = 256 * MIB,
        .cpus = 1,
        .pids = 64,
        .tmp_bytes = 64 * MIB,
        .output_bytes = 1 * MIB,
        .cpu_seconds = 0, /* derived from the timeout below */
        .file_bytes = 256 * MIB,
    };
    spec->timeout_ms = 30000;
    spec->cwd = "/";
    if (root->type != JSON_OBJECT) {
        snprintf(error, size, "spec must be a JSON object");
        return false;
    }
    bool have_argv = false;
    for (size_t index = 0; index < root->count; index++) {
        const struct json_member *member = &root->members[index];
        const struct json_value *value = &member->value;
        if (key_is(member, "argv")) {
            if (value->type != JSON_ARRAY || value->count == 0 || value->count > MAX_ARGUMENTS)
                return field_error(error, size, "argv", "must be an array of 1 to 4096 strings");
            spec->argv = checked_calloc(value->count + 1, sizeof *spec->argv);
            for (size_t item = 0; item < value->count; item++) {
                if (!plain_string(&value->items[item]))
                    return field_error(error, size, "argv", "must hold only strings without NUL bytes");
                spec->argv[item] = value->items[item].string;
            }
            spec->argv[value->count] = NULL;
            if (spec->argv[0][0] == '\0') return field_error(error, size, "argv", "must not start with an empty string");
            have_argv = true;
        } else if (key_is(member, "env")) {
            if (!read_env(value, spec, error, size)) return false;
        } else if (key_is(member, "ro_binds")) {
            if (!read_binds(value, "ro_binds", false, spec, error, size)) return false;
        } else if (key_is(member, "rw_binds")) {
            if (!read_binds(value, "rw_binds", true, spec, error, size)) return false;
        } else if (key_is(member, "cwd")) {
            if (!plain_string(value) || !normal_absolute_path(value->string))
                return field_error(error, size, "cwd",
                                   "must be an absolute path without '.', '..', empty components or a trailing slash");
            spec->cwd = value->string;
        } else if (key_is(member, "network")) {
            if (value->type != JSON_STRING || strcmp(value->string, "none") != 0 || value->length != 4)
                return field_error(error, size, "network", "must be \"none\" (the only mode)");
        } else if (key_is(member, "limits")) {
            if (!read_limits(value, spec, error, size)) return false;
        } else if (key_is(member, "timeout_ms")) {
            if (!read_integer(value, "timeout_ms", 1, UINT64_C(7) * 86400 * 1000, &spec->timeout_ms, error, size))
                return false;
        } else if (key_is(member, "protected_paths")) {
            if (!read_protected_paths(value, spec, error, size)) return false;
        } else if (key_is(member, "parent_pid")) {
            uint64_t pid;
            if (!read_integer(value, "parent_pid", 1, INT32_MAX, &pid, error, size)) return false;
            spec->parent_pid = (pid_t)pid;
        } else {
            snprintf(error, size,
                     "spec has an unknown key at position %zu (allowed: argv, env, ro_binds, rw_binds, cwd, network, "
                     "limits, timeout_ms, protected_paths, parent_pid)",
                     index + 1);
            return false;
        }
    }
    if (!have_argv) return field_error(error, size, "argv", "is required");
    if (!spec->env) {
        spec->env = checked_malloc(sizeof *spec->env);
        spec->env[0] = NULL;
    }
    if (!spec->protected_paths) {
        spec->protected_paths = checked_malloc(sizeof *spec->protected_paths);
        spec->protected_paths[0] = NULL;
    }
    if (spec->limits.cpu_seconds == 0) {
        /* By default CPU time may use every allowed CPU for the whole wall-clock budget, and no more. */
        uint64_t seconds = (spec->timeout_ms + 999) / 1000;
        spec->limits.cpu_seconds = seconds * spec->limits.cpus;
    }
    return true;
}

bool spec_parse(const char *text, size_t length, struct json_value *tree, struct spec *spec, char *error,
                size_t size) {
    memset(spec, 0, sizeof *spec);
    if (!json_parse(text, length, tree, error, size)) return false;
    return spec_from_json(tree, spec, error, size);
}

void spec_free(struct spec *spec, struct json_value *tree) {
    /* argv, cwd and protected_paths borrow their strings from the tree; env entries and binds own theirs. */
    free(spec->argv);
    for (char **entry = spec->env; entry && *entry; entry++) free(*entry);
    free(spec->env);
    for (size_t index = 0; index < spec->bind_count; index++) {
        free(spec->binds[index].source);
        free(spec->binds[index].target);
    }
    free(spec->binds);
    free(spec->protected_paths);
    memset(spec, 0, sizeof *spec);
    json_free(tree);
}
