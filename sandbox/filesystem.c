/*
 * The sandbox's filesystem, built by its init inside the new user and mount namespaces:
 *
 *   1. every host tree the sandbox will see is cloned first (open_tree), while the host is still
 *      fully visible, and its clone made read-only/nosuid/nodev as one recursive attribute change;
 *   2. a small tmpfs becomes the new root; /tmp is a size-limited tmpfs; /etc is a handful of
 *      synthetic files plus the dynamic-linker cache; /dev holds five host device nodes;
 *      The caller's bind sources are opened one component at a time without following any symlink,
 *      and the object reached (not the path text) is checked against /proc, /sys, /dev and Moat's
 *      own state (and their aliases made by mounts) before its own mount alone is cloned from that
 *      very descriptor; a source with any mount below it is refused;
 *   3. the clones are attached by file descriptor under the new root, whose directories are walked
 *      without following any symlink, so a path inside a writable bind cannot redirect a mount;
 *   4. a fresh /proc for the new PID namespace, with /proc/sys and /proc/sysrq-trigger read-only
 *      and the host-wide timer and scheduler listings hidden;
 *   5. pivot_root into the new root, detach the old one, and make the root mount read-only.
 */
#include "include/moat_sandbox.h"
#include "include/moat_syscalls.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Where the new root is mounted before the pivot. Any existing host directory would do: every host
 * tree the sandbox needs was cloned before this directory is covered. */
#define STAGING_DIRECTORY "/tmp"

enum plan_kind { PLAN_TREE, PLAN_SYMLINK, PLAN_SKIP };

struct plan_entry {
    char label[80];
    const char *source;
    const char *target;
    enum plan_kind kind;
    bool optional;
    uint64_t attributes;
    int tree_fd;
    bool is_directory;
    char link_target[PATH_MAX];
};

struct builder {
    struct plan_entry *entries;
    size_t count;
    size_t capacity;
    char *step;
    size_t step_size;
};

static int step_failed(struct builder *builder, const char *format, const char *subject) {
    int saved = errno;
    snprintf(builder->step, builder->step_size, format, subject);
    errno = saved ? saved : EINVAL;
    return -1;
}

static struct plan_entry *plan_add(struct builder *builder, const char *label, const char *source,
                                   const char *target, uint64_t attributes, bool optional) {
    if (builder->count == builder->capacity) {
        builder->capacity = builder->capacity ? builder->capacity * 2 : 32;
        builder->entries = checked_realloc(builder->entries, builder->capacity * sizeof *builder->entries);
    }
    struct plan_entry *entry = &builder->entries[builder->count++];
    memset(entry, 0, sizeof *entry);
    snprintf(entry->label, sizeof entry->label, "%s", label);
    entry->source = source;
    entry->target = target;
    entry->kind = PLAN_TREE;
    entry->optional = optional;
    entry->attributes = attributes;
    entry->tree_fd = -1;
    return entry;
}

/* A merged-/usr style link such as /bin -> usr/bin is recreated as the same link, so the sandbox
 * shows the host's layout; any other symlink is followed and its target bound. */
static bool mirrors_as_symlink(const char *link_target) {
    if (link_target[0] == '/' || link_target[0] == '\0') return false;
    for (const char *component = link_target; component; component = strchr(component, '/')) {
        if (*component == '/') component++;
        if (strncmp(component, "..", 2) == 0 && (component[2] == '/' || component[2] == '\0')) return false;
    }
    return true;
}

/* The clone's attributes (read-only, nosuid, ...) and its type, once entry->tree_fd holds it. */
static int plan_finish_clone(struct builder *builder, struct plan_entry *entry) {
    if (sys_mount_setattr(entry->tree_fd, "", AT_EMPTY_PATH | MOAT_AT_RECURSIVE, entry->attributes, 0) != 0)
        return step_failed(builder, "%s: cannot set mount attributes", entry->label);
    struct stat target_status;
    if (fstat(entry->tree_fd, &target_status) != 0) return step_failed(builder, "%s: cannot stat the source", entry->label);
    entry->is_directory = S_ISDIR(target_status.st_mode);
    return 0;
}

/* ---- the caller's bind sources ---- */

static void guard_append(struct object_id **list, size_t *count, const struct stat *status) {
    *list = checked_realloc(*list, (*count + 1) * sizeof **list);
    (*list)[(*count)++] = (struct object_id){.device = status->st_dev, .inode = status->st_ino};
}

static bool guard_contains(const struct object_id *list, size_t count, const struct stat *status) {
    for (size_t index = 0; index < count; index++)
        if (list[index].device == status->st_dev && list[index].inode == status->st_ino) return true;
    return false;
}

/* ---- the host's mount table ---- */

struct mount_record {
    char device[32];      /* major:minor */
    char root[PATH_MAX];  /* the directory of that file system the mount shows */
    char point[PATH_MAX]; /* where it is mounted */
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void mountinfo_unescape(char *field) {
    char *out = field;
    for (char *in = field; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

/* Calls visit for each mount of this process's mount namespace, in mountinfo order (a later mount
 * on the same point is on top); stops early when visit returns false. Returns false when the table
 * cannot be read. */
static bool mounts_each(bool (*visit)(const struct mount_record *record, void *context), void *context) {
    FILE *table = fopen("/proc/self/mountinfo", "re");
    if (!table) return false;
    char *line = NULL;
    size_t capacity = 0;
    struct mount_record *record = checked_malloc(sizeof *record);
    while (getline(&line, &capacity, table) > 0) {
        /* id parent major:minor root point ... */
        char *save = NULL;
        char *fields[5];
        size_t count = 0;
        for (char *field = strtok_r(line, " \n", &save); field && count < 5; field = strtok_r(NULL, " \n", &save))
            fields[count++] = field;
        if (count < 5) continue;
        snprintf(record->device, sizeof record->device, "%s", fields[2]);
        snprintf(record->root, sizeof record->root, "%s", fields[3]);
        snprintf(record->point, sizeof record->point, "%s", fields[4]);
        mountinfo_unescape(record->root);
        mountinfo_unescape(record->point);
        if (!visit(record, context)) break;
    }
    free(record);
    free(line);
    fclose(table);
    return true;
}

/* The rest of `path` when `prefix` is it or one of its ancestor directories ("" or "/..."), else NULL. */
static const char *path_below(const char *path, const char *prefix) {
    if (strcmp(prefix, "/") == 0) return strcmp(path, "/") == 0 ? "" : path;
    size_t length = strlen(prefix);
    if (strncmp(path, prefix, length) != 0 || (path[length] != '\0' && path[length] != '/')) return NULL;
    return path + length;
}

static void path_join(char *out, size_t size, const char *base, const char *rest) {
    if (rest[0] == '\0') snprintf(out, size, "%s", base);
    else if (strcmp(base, "/") == 0) snprintf(out, size, "%s", rest);
    else snprintf(out, size, "%s%s", base, rest);
}

/* Finds the mount that shows `path` (the deepest mount point above it, the last one stacked there). */
struct containing_mount {
    const char *path;
    size_t point_length;
    struct mount_record found;
    bool any;
};

static bool find_containing_mount(const struct mount_record *record, void *context) {
    struct containing_mount *search = context;
    if (!path_below(search->path, record->point)) return true;
    size_t length = strlen(record->point);
    if (!search->any || length >= search->point_length) {
        search->found = *record;
        search->point_length = length;
        search->any = true;
    }
    return true;
}

static void guard_add_object(struct bind_guard *guard, const char *path);

/* Every other place the protected object shows through a mount of the same file system. */
struct alias_search {
    struct bind_guard *guard;
    const char *device;
    char within[PATH_MAX]; /* the object's path inside its file system */
    const char *missing;   /* the part of the protected path that does not exist yet ("" or "/...") */
};

static bool add_alias(const struct mount_record *record, void *context) {
    struct alias_search *search = context;
    if (strcmp(record->device, search->device) != 0) return true;
    char alias[PATH_MAX], whole[PATH_MAX];
    const char *rest = path_below(search->within, record->root);
    if (rest) {
        /* The mount shows a directory at or above the object: the object is inside it. */
        path_join(alias, sizeof alias, record->point, rest);
        path_join(whole, sizeof whole, alias, search->missing);
        guard_add_object(search->guard, whole);
    } else {
        /* The mount shows a part of the object: the mount point itself is forbidden. */
        char object[PATH_MAX];
        path_join(object, sizeof object, search->within, search->missing);
        if (path_below(record->root, object)) guard_add_object(search->guard, record->point);
    }
    return true;
}

/* One forbidden path: the object it names if it exists, and every directory above it (or above
 * the part of it that exists: a bind of that directory could create the rest). These paths are the
 * kernel's and Moat's own, so symlinks in them are resolved here. Returns the part that exists. */
static bool guard_resolve(const char *path, char *resolved, size_t *existing_length) {
    char existing[PATH_MAX];
    snprintf(existing, sizeof existing, "%s", path);
    bool whole = true;
    while (!realpath(existing, resolved)) {
        whole = false;
        char *slash = strrchr(existing, '/');
        if (!slash || slash == existing) {
            snprintf(resolved, PATH_MAX, "/");
            existing[0] = '\0';
            break;
        }
        *slash = '\0';
    }
    *existing_length = strlen(existing);
    return whole;
}

static void guard_add_object(struct bind_guard *guard, const char *path) {
    char resolved[PATH_MAX];
    size_t existing_length;
    bool whole = guard_resolve(path, resolved, &existing_length);
    struct stat status;
    if (whole && stat(resolved, &status) == 0) guard_append(&guard->forbidden, &guard->forbidden_count, &status);
    for (;;) {
        if (stat(resolved, &status) == 0) guard_append(&guard->enclosing, &guard->enclosing_count, &status);
        char *slash = strrchr(resolved, '/');
        if (!slash || strcmp(resolved, "/") == 0) break;
        slash[slash == resolved ? 1 : 0] = '\0';
    }
}

/* A regular file with more than one name inside a protected directory may have a name outside it
 * (made on the host: the sandbox cannot make one). Its inode is forbidden too, so binding that name
 * is refused; a bind of the directory holding it is not (see Docs/Sandbox.md). Bounded walk. */
static void guard_add_linked_files(struct bind_guard *guard, int directory_fd, int depth, size_t *budget) {
    DIR *listing = fdopendir(directory_fd);
    if (!listing) {
        close(directory_fd);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(listing)) != NULL && *budget > 0) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        (*budget)--;
        struct stat status;
        if (fstatat(dirfd(listing), entry->d_name, &status, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISREG(status.st_mode) && status.st_nlink > 1) {
            guard_append(&guard->forbidden, &guard->forbidden_count, &status);
        } else if (S_ISDIR(status.st_mode) && depth > 0) {
            int child = openat(dirfd(listing), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0) guard_add_linked_files(guard, child, depth - 1, budget);
        }
    }
    closedir(listing);
}

/* The protected path itself, and every alias of it that a mount (a bind mount of a directory above
 * it, or of a part of it) makes elsewhere in the caller's mount namespace. */
static void guard_add_path(struct bind_guard *guard, const char *path) {
    guard_add_object(guard, path);
    char resolved[PATH_MAX];
    size_t existing_length;
    guard_resolve(path, resolved, &existing_length);
    struct containing_mount containing = {.path = resolved};
    if (!mounts_each(find_containing_mount, &containing) || !containing.any) return;
    struct alias_search search = {.guard = guard, .device = containing.found.device, .missing = path + existing_length};
    const char *rest = path_below(resolved, containing.found.point);
    path_join(search.within, sizeof search.within, containing.found.root, rest ? rest : "");
    mounts_each(add_alias, &search);
}

/* Whether any mount lies strictly below `path` (a clone of it would carry that mount along, or the
 * kernel would refuse to clone it alone). */
struct submount_search {
    const char *path;
    bool found;
};

static bool find_submount(const struct mount_record *record, void *context) {
    struct submount_search *search = context;
    const char *rest = path_below(record->point, search->path);
    if (rest && rest[0] != '\0') {
        search->found = true;
        return false;
    }
    return true;
}

void bind_guard_create(const struct spec *spec, struct bind_guard *guard) {
    memset(guard, 0, sizeof *guard);
    if (spec->bind_count == 0) return;
    static const char *const kernel_interfaces[] = {"/proc", "/sys", "/dev"};
    for (size_t index = 0; index < sizeof kernel_interfaces / sizeof kernel_interfaces[0]; index++)
        guard_add_path(guard, kernel_interfaces[index]);
    size_t budget = 4096;
    for (char **path = spec->protected_paths; path && *path; path++) {
        guard_add_path(guard, *path);
        int directory = open(*path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (directory >= 0) guard_add_linked_files(guard, directory, 3, &budget);
    }
}

/* File systems that are kernel interfaces wherever they are mounted. */
static bool is_kernel_interface(const struct statfs *filesystem) {
    static const long types[] = {
        PROC_SUPER_MAGIC, SYSFS_MAGIC,  DEVPTS_SUPER_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC,
        DEBUGFS_MAGIC,    TRACEFS_MAGIC, SECURITYFS_MAGIC,  BPF_FS_MAGIC,       NSFS_MAGIC,
        0x62656570 /* configfs */, 0xde5e81e4 /* efivarfs */, 0x6165676c /* pstore */,
        0x42494e4d /* binfmt_misc */, 0x19800202 /* mqueue */, 0x65735543 /* fusectl */,
        0x67596969 /* rpc_pipefs */,
    };
    for (size_t index = 0; index < sizeof types / sizeof types[0]; index++)
        if ((long)filesystem->f_type == types[index]) return true;
    return false;
}

/*
 * Opens a caller bind's source as an O_PATH descriptor, one component at a time from the host's
 * root, following no symlink (a link planted by an earlier run in a writable bind is refused, not
 * followed), and checks the object reached and every directory on the way against the guard.
 */
static int open_bind_source(struct builder *builder, const struct bind_guard *guard, const struct plan_entry *entry) {
    char copy[PATH_MAX];
    if (strlen(entry->source) >= sizeof copy) {
        errno = ENAMETOOLONG;
        return step_failed(builder, "%s: the source path is too long", entry->label);
    }
    strcpy(copy, entry->source);
    int current = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (current < 0) return step_failed(builder, "%s: cannot open the host root", entry->label);
    struct stat status;
    char *cursor = copy + 1;
    for (;;) {
        if (fstat(current, &status) != 0) {
            close(current);
            return step_failed(builder, "%s: cannot stat the source", entry->label);
        }
        if (guard_contains(guard->forbidden, guard->forbidden_count, &status)) {
            close(current);
            errno = EPERM;
            return step_failed(builder, "%s: the source is inside /proc, /sys, /dev or Moat's state", entry->label);
        }
        if (*cursor == '\0') break;
        if (!S_ISDIR(status.st_mode)) {
            close(current);
            errno = ENOTDIR;
            return step_failed(builder, "%s: the source is not accessible", entry->label);
        }
        char *slash = strchr(cursor, '/');
        if (slash) *slash = '\0';
        int next = openat(current, cursor, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        close(current);
        if (next < 0) return step_failed(builder, "%s: the source is not accessible", entry->label);
        current = next;
        if (fstat(current, &status) == 0 && S_ISLNK(status.st_mode)) {
            close(current);
            errno = ELOOP;
            return step_failed(builder, "%s: the source path crosses a symlink (give the real path)", entry->label);
        }
        cursor = slash ? slash + 1 : cursor + strlen(cursor);
    }
    struct statfs filesystem;
    if (guard_contains(guard->enclosing, guard->enclosing_count, &status)) {
        close(current);
        errno = EPERM;
        return step_failed(builder, "%s: the source contains /proc, /sys, /dev or Moat's state", entry->label);
    }
    if (fstatfs(current, &filesystem) != 0 || is_kernel_interface(&filesystem)) {
        close(current);
        errno = EPERM;
        return step_failed(builder, "%s: the source is a kernel interface file system", entry->label);
    }
    return current;
}

/* Step 1 for a caller's bind: clone the very object open_bind_source checked. */
static int plan_clone_bind(struct builder *builder, const struct bind_guard *guard, struct plan_entry *entry) {
    int source = open_bind_source(builder, guard, entry);
    if (source < 0) return -1;
    /* Only the source's own mount is cloned, never the mounts below it: one of those could be an
     * alias of Moat's state made by a bind mount, which the walk above never saw. */
    struct submount_search below = {.path = entry->source};
    if (!mounts_each(find_submount, &below) || below.found) {
        close(source);
        errno = EPERM;
        return step_failed(builder, "%s: the source has other mounts below it (bind each of them separately)", entry->label);
    }
    entry->tree_fd = sys_open_tree(source, "", MOAT_OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
    close(source);
    if (entry->tree_fd < 0) return step_failed(builder, "%s: cannot clone the source mount", entry->label);
    return plan_finish_clone(builder, entry);
}

/* Clones the host tree for one entry (step 1). */
static int plan_clone(struct builder *builder, struct plan_entry *entry, bool may_mirror_symlink) {
    struct stat status;
    if (lstat(entry->source, &status) != 0) {
        if ((errno == ENOENT || errno == ENOTDIR) && entry->optional) {
            entry->kind = PLAN_SKIP;
            return 0;
        }
        return step_failed(builder, "%s: the source is not accessible", entry->label);
    }
    if (S_ISLNK(status.st_mode) && may_mirror_symlink) {
        ssize_t length = readlink(entry->source, entry->link_target, sizeof entry->link_target - 1);
        if (length < 0) return step_failed(builder, "%s: cannot read the source symlink", entry->label);
        entry->link_target[length] = '\0';
        if (mirrors_as_symlink(entry->link_target)) {
            entry->kind = PLAN_SYMLINK;
            return 0;
        }
    }
    entry->tree_fd = sys_open_tree(AT_FDCWD, entry->source, MOAT_OPEN_TREE_CLONE | O_CLOEXEC | MOAT_AT_RECURSIVE);
    if (entry->tree_fd < 0) {
        if ((errno == ENOENT || errno == ENOTDIR) && entry->optional) {
            entry->kind = PLAN_SKIP;
            return 0;
        }
        return step_failed(builder, "%s: cannot clone the source mount", entry->label);
    }
    return plan_finish_clone(builder, entry);
}

/*
 * Opens `path` (absolute, already normalised) below root_fd as an O_PATH descriptor, creating missing
 * directories and, when the leaf is a file, an empty file to mount on. No symlink is ever followed:
 * a symlink anywhere on the way is an error.
 */
static int open_beneath(int root_fd, const char *path, bool leaf_is_directory) {
    char copy[PATH_MAX];
    if (strlen(path) >= sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(copy, path);
    int directory = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
    if (directory < 0) return -1;
    char *cursor = copy + 1;
    while (*cursor) {
        char *slash = strchr(cursor, '/');
        bool last = slash == NULL;
        if (slash) *slash = '\0';
        int next;
        if (!last || leaf_is_directory) {
            next = openat(directory, cursor, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0 && errno == ENOENT) {
                if (mkdirat(directory, cursor, 0755) != 0 && errno != EEXIST) {
                    close(directory);
                    return -1;
                }
                next = openat(directory, cursor, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
        } else {
            next = openat(directory, cursor, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0 && errno == ENOENT) {
                int created = openat(directory, cursor, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (created < 0) {
                    close(directory);
                    return -1;
                }
                close(created);
                next = openat(directory, cursor, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            }
            struct stat status;
            if (next >= 0 && (fstat(next, &status) != 0 || S_ISLNK(status.st_mode) || S_ISDIR(status.st_mode))) {
                close(next);
                next = -1;
                errno = ELOOP;
            }
        }
        close(directory);
        if (next < 0) {
            if (errno == ENOTDIR) errno = ELOOP; /* O_NOFOLLOW|O_DIRECTORY on a symlink */
            return -1;
        }
        directory = next;
        if (last) break;
        cursor = slash + 1;
    }
    return directory;
}

/* Splits an absolute path into its parent (opened beneath root_fd) and its last component. */
static int open_parent_beneath(int root_fd, const char *path, const char **leaf) {
    const char *slash = strrchr(path, '/');
    *leaf = slash + 1;
    if (slash == path) return fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
    char parent[PATH_MAX];
    size_t length = (size_t)(slash - path);
    if (length >= sizeof parent) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(parent, path, length);
    parent[length] = '\0';
    return open_beneath(root_fd, parent, true);
}

static int mount_filesystem_at(int directory_fd, const char *type, unsigned long flags, const char *options) {
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", directory_fd);
    return mount(type, target, type, flags, options);
}

/* Step 3 for one planned entry. */
static int plan_attach(struct builder *builder, int root_fd, struct plan_entry *entry) {
    if (entry->kind == PLAN_SKIP) return 0;
    if (entry->kind == PLAN_SYMLINK) {
        const char *leaf;
        int parent = open_parent_beneath(root_fd, entry->target, &leaf);
        if (parent < 0) return step_failed(builder, "%s: cannot create the place for the symlink", entry->label);
        int result = symlinkat(entry->link_target, parent, leaf);
        close(parent);
        if (result != 0) return step_failed(builder, "%s: cannot create the symlink", entry->label);
        return 0;
    }
    int target = open_beneath(root_fd, entry->target, entry->is_directory);
    if (target < 0) {
        if (errno == ELOOP)
            return step_failed(builder, "%s: the sandbox path crosses a symlink or has the wrong type", entry->label);
        return step_failed(builder, "%s: cannot create the sandbox path", entry->label);
    }
    int result = sys_move_mount(entry->tree_fd, "", target, "", MOAT_MOVE_MOUNT_F_EMPTY_PATH | MOAT_MOVE_MOUNT_T_EMPTY_PATH);
    close(target);
    if (result != 0) return step_failed(builder, "%s: cannot attach the bind mount", entry->label);
    close(entry->tree_fd);
    entry->tree_fd = -1;
    return 0;
}

static int write_file_at(int directory_fd, const char *name, const char *contents) {
    int fd = openat(directory_fd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t length = strlen(contents);
    ssize_t written = write(fd, contents, length);
    close(fd);
    return written == (ssize_t)length ? 0 : -1;
}

static const char synthetic_passwd[] =
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "sandbox:x:1000:1000:sandbox:/tmp:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char synthetic_group[] = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
static const char synthetic_hosts[] = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
static const char synthetic_nsswitch[] =
    "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\n"
    "protocols: files\nservices: files\nethers: files\nrpc: files\n";

static int build_etc(struct builder *builder, int root_fd) {
    int etc = open_beneath(root_fd, "/etc", true);
    if (etc < 0) return step_failed(builder, "%s", "create /etc");
    const struct {
        const char *name;
        const char *contents;
    } files[] = {
        {"passwd", synthetic_passwd},     {"group", synthetic_group}, {"hosts", synthetic_hosts},
        {"nsswitch.conf", synthetic_nsswitch}, {"hostname", "sandbox\n"},
    };
    for (size_t index = 0; index < sizeof files / sizeof files[0]; index++) {
        if (write_file_at(etc, files[index].name, files[index].contents) != 0) {
            close(etc);
            return step_failed(builder, "write /etc/%s", files[index].name);
        }
    }
    close(etc);
    return 0;
}

static int build_dev(struct builder *builder, int root_fd) {
    int dev = open_beneath(root_fd, "/dev", true);
    if (dev < 0) return step_failed(builder, "%s", "create /dev");
    const struct {
        const char *name;
        const char *target;
    } links[] = {
        {"fd", "/proc/self/fd"},
        {"stdin", "/proc/self/fd/0"},
        {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"},
    };
    for (size_t index = 0; index < sizeof links / sizeof links[0]; index++) {
        if (symlinkat(links[index].target, dev, links[index].name) != 0) {
            close(dev);
            return step_failed(builder, "create /dev/%s", links[index].name);
        }
    }
    close(dev);
    return 0;
}

/* Re-mounts `name` below proc_fd onto itself with extra attributes (read-only /proc/sys). */
static int restrict_proc_entry(int proc_fd, const char *name, uint64_t attributes) {
    int tree = sys_open_tree(proc_fd, name, MOAT_OPEN_TREE_CLONE | O_CLOEXEC | MOAT_AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    if (tree < 0) return errno == ENOENT ? 0 : -1;
    int result = sys_mount_setattr(tree, "", AT_EMPTY_PATH | MOAT_AT_RECURSIVE, attributes, 0);
    if (result == 0) {
        int target = openat(proc_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        result = target < 0 ? -1
                            : sys_move_mount(tree, "", target, "", MOAT_MOVE_MOUNT_F_EMPTY_PATH | MOAT_MOVE_MOUNT_T_EMPTY_PATH);
        if (target >= 0) close(target);
    }
    close(tree);
    return result;
}

/* Hides a host-wide /proc file behind an empty read-only file (Docker masks the same ones). */
static int mask_proc_file(int proc_fd, int empty_file_tree_source, const char *name) {
    int target = openat(proc_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (target < 0) return errno == ENOENT ? 0 : -1;
    int tree = sys_open_tree(empty_file_tree_source, "", MOAT_OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
    const uint64_t read_only = MOAT_MOUNT_ATTR_RDONLY | MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NODEV | MOAT_MOUNT_ATTR_NOEXEC;
    int result = tree < 0 ? -1 : sys_mount_setattr(tree, "", AT_EMPTY_PATH, read_only, 0);
    if (result == 0)
        result = sys_move_mount(tree, "", target, "", MOAT_MOVE_MOUNT_F_EMPTY_PATH | MOAT_MOVE_MOUNT_T_EMPTY_PATH);
    if (tree >= 0) close(tree);
    close(target);
    return result;
}

static int build_proc(struct builder *builder, int root_fd) {
    int mount_point = open_beneath(root_fd, "/proc", true);
    if (mount_point < 0) return step_failed(builder, "%s", "create /proc");
    int result = mount_filesystem_at(mount_point, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    close(mount_point);
    if (result != 0) return step_failed(builder, "%s", "mount a fresh /proc for the PID namespace");
    /* Opening by name from the root crosses onto the proc mount just made. */
    int proc = openat(root_fd, "proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (proc < 0) return step_failed(builder, "%s", "open the fresh /proc");
    const uint64_t read_only = MOAT_MOUNT_ATTR_RDONLY | MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NODEV | MOAT_MOUNT_ATTR_NOEXEC;
    static const char *const read_only_entries[] = {"sys", "sysrq-trigger"};
    for (size_t index = 0; index < sizeof read_only_entries / sizeof read_only_entries[0]; index++) {
        if (restrict_proc_entry(proc, read_only_entries[index], read_only) != 0) {
            close(proc);
            return step_failed(builder, "make /proc/%s read-only", read_only_entries[index]);
        }
    }
    /* An empty read-only file to mount over host-wide listings: /etc/hostname's sibling would do,
     * but a dedicated empty file keeps what is shown obvious. */
    int etc = openat(root_fd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (etc < 0 || write_file_at(etc, ".empty", "") != 0) {
        if (etc >= 0) close(etc);
        close(proc);
        return step_failed(builder, "%s", "create the empty mask file");
    }
    int empty = openat(etc, ".empty", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    close(etc);
    static const char *const masked[] = {"timer_list", "sched_debug", "kcore", "keys", "latency_stats", "timer_stats"};
    for (size_t index = 0; index < sizeof masked / sizeof masked[0]; index++) {
        if (empty < 0 || mask_proc_file(proc, empty, masked[index]) != 0) {
            if (empty >= 0) close(empty);
            close(proc);
            return step_failed(builder, "hide /proc/%s", masked[index]);
        }
    }
    close(empty);
    close(proc);
    return 0;
}

static size_t depth_of(const char *path) {
    size_t depth = 0;
    for (; *path; path++) depth += *path == '/';
    return depth;
}

int filesystem_build(const struct spec *spec, const struct bind_guard *guard, const char **failed_step,
                     char *step_buffer, size_t step_size) {
    struct builder builder = {.step = step_buffer, .step_size = step_size};
    *failed_step = step_buffer;
    step_buffer[0] = '\0';

    /* Nothing done in this namespace may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return step_failed(&builder, "%s", "make mounts private");

    const uint64_t read_only = MOAT_MOUNT_ATTR_RDONLY | MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NODEV;
    const uint64_t writable = MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NODEV;
    const uint64_t device = MOAT_MOUNT_ATTR_RDONLY | MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NOEXEC;

    /* Step 1: clone every host tree while the host is still visible. */
    static const char *const system_directories[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64"};
    size_t system_count = sizeof system_directories / sizeof system_directories[0];
    for (size_t index = 0; index < system_count; index++) {
        char label[80];
        snprintf(label, sizeof label, "system bind %s", system_directories[index]);
        struct plan_entry *entry =
            plan_add(&builder, label, system_directories[index], system_directories[index], read_only, true);
        if (plan_clone(&builder, entry, true) != 0) return -1;
    }
    static const char *const etc_entries[] = {"/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime"};
    for (size_t index = 0; index < sizeof etc_entries / sizeof etc_entries[0]; index++) {
        char label[80];
        snprintf(label, sizeof label, "system bind %s", etc_entries[index]);
        struct plan_entry *entry = plan_add(&builder, label, etc_entries[index], etc_entries[index], read_only, true);
        /* /etc/localtime is a symlink into /usr/share/zoneinfo: follow it, so the zone is a file. */
        if (plan_clone(&builder, entry, false) != 0) return -1;
    }
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
    for (size_t index = 0; index < sizeof devices / sizeof devices[0]; index++) {
        char label[80];
        snprintf(label, sizeof label, "device %s", devices[index]);
        struct plan_entry *entry = plan_add(&builder, label, devices[index], devices[index], device, false);
        if (plan_clone(&builder, entry, false) != 0) return -1;
        if (entry->is_directory) {
            errno = EINVAL;
            return step_failed(&builder, "%s is not a device node", label);
        }
    }
    /* The caller's binds, shallowest first so a bind inside another lands on top of it. */
    for (size_t depth = 1; depth <= PATH_MAX / 2; depth++) {
        bool deeper = false;
        for (size_t index = 0; index < spec->bind_count; index++) {
            const struct bind_mount *bind = &spec->binds[index];
            size_t bind_depth = depth_of(bind->target);
            if (bind_depth > depth) deeper = true;
            if (bind_depth != depth) continue;
            struct plan_entry *entry =
                plan_add(&builder, bind->label, bind->source, bind->target, bind->writable ? writable : read_only, false);
            if (plan_clone_bind(&builder, guard, entry) != 0) return -1;
        }
        if (!deeper) break;
    }

    /* Step 2: the new root. */
    if (mount("tmpfs", STAGING_DIRECTORY, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096") != 0)
        return step_failed(&builder, "%s", "mount the tmpfs root");
    int root = open(STAGING_DIRECTORY, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0) return step_failed(&builder, "%s", "open the new root");

    int tmp = open_beneath(root, "/tmp", true);
    if (tmp < 0) return step_failed(&builder, "%s", "create /tmp");
    char tmp_options[128];
    uint64_t inodes = spec->limits.tmp_bytes / 4096;
    if (inodes < 1024) inodes = 1024;
    snprintf(tmp_options, sizeof tmp_options, "mode=1777,size=%llu,nr_inodes=%llu",
             (unsigned long long)spec->limits.tmp_bytes, (unsigned long long)inodes);
    int result = mount_filesystem_at(tmp, "tmpfs", MS_NOSUID | MS_NODEV, tmp_options);
    close(tmp);
    if (result != 0) return step_failed(&builder, "%s", "mount the size-limited /tmp");

    if (build_etc(&builder, root) != 0 || build_dev(&builder, root) != 0) return -1;

    /* Step 3: attach the clones (system trees, /etc files, devices, then the caller's binds). */
    for (size_t index = 0; index < builder.count; index++) {
        if (plan_attach(&builder, root, &builder.entries[index]) != 0) return -1;
    }

    /* Step 4: /proc for the new PID namespace. */
    if (build_proc(&builder, root) != 0) return -1;

    /* Step 5: pivot. With put_old equal to new_root the old root ends up stacked on top of the
     * new one, and one lazy unmount of "." removes it: no directory for it is ever needed. */
    if (fchdir(root) != 0) return step_failed(&builder, "%s", "enter the new root");
    if (sys_pivot_root(".", ".") != 0) return step_failed(&builder, "%s", "pivot_root");
    if (umount2(".", MNT_DETACH) != 0) return step_failed(&builder, "%s", "detach the old root");
    if (chdir("/") != 0) return step_failed(&builder, "%s", "enter /");
    close(root);
    if (sys_mount_setattr(AT_FDCWD, "/", 0, MOAT_MOUNT_ATTR_RDONLY | MOAT_MOUNT_ATTR_NOSUID | MOAT_MOUNT_ATTR_NODEV, 0) != 0)
        return step_failed(&builder, "%s", "make the new root read-only");
    free(builder.entries);
    return 0;
}
