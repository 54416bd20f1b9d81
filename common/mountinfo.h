/* /proc/PID/mountinfo, read once and parsed into entries (see proc(5)):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent maj:min root mount-point options [optional fields] - fstype source super-options
 *
 * root, mount point and source come with the kernel's octal escapes (\040 for a space, \011,
 * \012, \134) undone.  Lines that do not have this shape are skipped.  Used by hulld, hull-oci
 * and hull-conmon (libc only: no yajl here). */
#ifndef HULL_COMMON_MOUNTINFO_H
#define HULL_COMMON_MOUNTINFO_H

#include "common/common.h"

struct hull_mountinfo_entry {
    int id, parent;
    unsigned major, minor;
    char *root; /* the path of the mounted file system shown at the mount point */
    char *mount_point;
    char *options;  /* per-mount options: "rw,nosuid,relatime" */
    char *optional; /* optional fields, space separated ("shared:1 master:2"), or "" */
    char *fstype;   /* "ext4", "cgroup", "cgroup2" (a "type.subtype" as given) */
    char *source;
    char *super_options; /* per-superblock options: "rw,memory" */
    char *line_;         /* owns the strings above */
};

struct hull_mountinfo {
    struct hull_mountinfo_entry *v;
    size_t n;
};

/* Parses mountinfo text (a host's, or a fixture). */
void hull_mountinfo_parse(const char *text, struct hull_mountinfo *out);
/* Reads and parses a mountinfo file; path NULL means /proc/self/mountinfo. */
int hull_mountinfo_read(const char *path, struct hull_mountinfo *out, hull_error_t *err);
void hull_mountinfo_clear(struct hull_mountinfo *mi);

/* Undoes mountinfo's octal escapes (\ooo, first digit 0-3) in place. */
void hull_mountinfo_unescape(char *s);

/* Whether path is root or below it, by whole components ("/" holds every absolute path). */
bool hull_path_at_or_below(const char *path, const char *root);

/* The entry of the mount holding path (an absolute, resolved path): the last (top-most) entry
 * whose mount point is the longest prefix of path; NULL if there is none. */
const struct hull_mountinfo_entry *hull_mountinfo_holding(const struct hull_mountinfo *mi,
                                                          const char *path);

/* The mount point of the (top-most) mount holding path (absolute, resolved), from
 * /proc/self/mountinfo; NULL with ENOENT if none holds it.  Caller frees. */
char *hull_mount_point_of(const char *path, hull_error_t *err);

/* Whether an optional field starts with tag ("shared:", "master:", "propagate_from:",
 * "unbindable"). */
bool hull_mountinfo_has_optional(const struct hull_mountinfo_entry *e, const char *tag);

/* Whether a comma-separated option list holds opt exactly. */
bool hull_option_list_has(const char *list, const char *opt);

#endif
