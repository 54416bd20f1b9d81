/* The host's cgroup layout, from mountinfo: which cgroup hierarchies are mounted where
 * (v1, hybrid or unified), and a process's cgroup in each from /proc/PID/cgroup.  Used by
 * hulld (stats, the spec builder, recovery), hull-oci and hull-conmon (libc only: no yajl here). */
#ifndef HULL_COMMON_CGROUP_H
#define HULL_COMMON_CGROUP_H

#include "common/common.h"
#include "common/mountinfo.h"

enum hull_cgroup_mode {
    HULL_CGROUP_NONE = 0,
    HULL_CGROUP_V1,     /* v1 hierarchies only */
    HULL_CGROUP_HYBRID, /* v1 hierarchies and a cgroup2 mount beside them */
    HULL_CGROUP_V2,     /* cgroup2 at the cgroup root (v1 mounts then ignored) */
};

struct hull_cgroup_hier {
    char *mountpoint;  /* host path of the hierarchy mount */
    char *root;        /* mountinfo root field: the cgroup shown at the mount point */
    char *controllers; /* "cpu,cpuacct" / "name=systemd"; "" for cgroup2 */
    bool v2;
};

struct hull_cgroup_layout {
    int mode;
    struct hull_cgroup_hier *hiers; /* mountinfo order; a hierarchy mounted twice once */
    size_t n;
};

/* The layout from parsed mountinfo.  With cgroup_root (e.g. "/sys/fs/cgroup") only mounts at
 * or below it count, and cgroup2 mounted on it means HULL_CGROUP_V2; with NULL every cgroup
 * mount counts and "/sys/fs/cgroup" is the root.  A hierarchy mounted twice is kept once (the
 * first mount; for cgroup2 the one on the root). */
void hull_cgroup_layout_from_mountinfo(const struct hull_mountinfo *mi, const char *cgroup_root,
                                       struct hull_cgroup_layout *out);
/* The same from mountinfo text (a host's, or a fixture). */
void hull_cgroup_layout_parse(const char *mountinfo, const char *cgroup_root,
                              struct hull_cgroup_layout *out);
/* The layout of this process's mount namespace (/proc/self/mountinfo). */
int hull_cgroup_layout_detect(const char *cgroup_root, struct hull_cgroup_layout *out,
                              hull_error_t *err);
/* The layout below cgroup_root (NULL or "": /sys/fs/cgroup) from mountinfo text (NULL: none).
 * When no cgroup is mounted at or below the root (a fixture tree in tests) it is guessed from
 * the files: <root>/cgroup.controllers -> v2; else every directory <root>/<names> is a v1
 * hierarchy of those comma-separated controllers (a symlink to one of them adds its name to
 * that hierarchy), and <root>/unified/cgroup.controllers the cgroup2 of a hybrid host.
 * Fails with ENOENT when there is no cgroup at all. */
int hull_cgroup_layout_load(const char *cgroup_root, const char *mountinfo,
                            struct hull_cgroup_layout *out, hull_error_t *err);
/* The same from this process's mountinfo (the files alone when it cannot be read). */
int hull_cgroup_layout_open(const char *cgroup_root, struct hull_cgroup_layout *out,
                            hull_error_t *err);
/* Whether a controller can be used: v2, listed in the cgroup2 root's cgroup.controllers; v1 or
 * hybrid, a v1 hierarchy holds it. */
bool hull_cgroup_layout_has_controller(const struct hull_cgroup_layout *l, const char *controller);
void hull_cgroup_layout_clear(struct hull_cgroup_layout *l);
#define _cleanup_cgroup_layout_ __attribute__((cleanup(hull_cgroup_layout_clear))) /* by value */
const char *hull_cgroup_mode_name(int mode);

/* The mount point of every cgroup and cgroup2 mount of this mount namespace, in mountinfo
 * order (a hierarchy mounted twice is listed twice); NULL-terminated, *n of them (0 when
 * mountinfo cannot be read).  For sweeping a cgroup path out of every hierarchy. */
char **hull_cgroup_mount_points(size_t *n);

/* The v1 hierarchy holding controller ("memory", "name=systemd"), or with controller NULL the
 * cgroup2 mount; NULL if there is none. */
const struct hull_cgroup_hier *hull_cgroup_layout_find(const struct hull_cgroup_layout *l,
                                                       const char *controller);

/* Whether a cgroup (v1) super option names a controller ("memory", "name=systemd") rather than
 * being a mount flag ("rw", "clone_children", "release_agent=...", ...). */
bool hull_cgroup_is_controller_option(const char *opt);

/* A process's cgroup from the text of /proc/PID/cgroup ("ID:CONTROLLERS:PATH" lines): with
 * controller NULL or "" the cgroup2 entry ("0::/x"), else the v1 entry whose controller list
 * holds controller.  NULL if there is no such entry.  Caller frees. */
char *hull_proc_cgroup_lookup(const char *proc_cgroup, const char *controller);

/* CPU shares (v1, 2..262144) -> cpu.weight (v2, 1..10000), the conversion runc and crun use;
 * 0 stays 0 (unset). */
uint64_t hull_cgroup_shares_to_weight(uint64_t shares);

/* The pids a cgroup.procs file lists (never the caller's own), *n of them; caller frees.
 * -errno when the file cannot be read. */
int hull_cgroup_read_procs(const char *procs, pid_t **out, size_t *n, hull_error_t *err);
/* Sends sig to every process a cgroup.procs file lists.  Each pid is pinned with a pidfd and
 * signalled only if the file still lists it afterwards: a process that exited after the first
 * read and whose pid went to a process elsewhere is never hit (no pidfds: plain kill).
 * Returns -errno when the file cannot be read (either time), else the number of processes that
 * could not be signalled (err then names the first); a process gone meanwhile is no failure. */
int hull_cgroup_signal_procs(const char *procs, int sig, hull_error_t *err);

/* Stats reading: the value of key in a cgroup "key value" file (memory.stat, cpu.stat,
 * memory.events, memory.oom_control, ...).  False when the key is absent or its value is not a
 * number. */
bool hull_cgroup_kv_get(const char *text, const char *key, uint64_t *v);
/* The "oom_kill" counter of a memory cgroup directory (v2 memory.events, v1
 * memory.oom_control; kernel >= 4.13), or -1 when it cannot be read. */
long long hull_cgroup_oom_kills(const char *dir, bool v2);

/* Tree removal: rmdir of the cgroup directory dir and of every cgroup below it (16 levels at
 * most), deepest first; one that is gone already (ENOENT) counts as removed.  Without flags a
 * busy cgroup (EBUSY) fails at once.  HULL_CGROUP_RM_WAIT retries a busy one for about 2 s
 * (its last processes exiting); HULL_CGROUP_RM_KILL thaws each cgroup (v1 freezer.state, v2
 * cgroup.freeze) and, while it stays busy, kills what cgroup.procs lists
 * (hull_cgroup_signal_procs) and retries for about 2 s.  Returns 0 or the -errno of the first
 * cgroup left behind (err names it). */
#define HULL_CGROUP_RM_WAIT 1u
#define HULL_CGROUP_RM_KILL 2u
int hull_cgroup_remove_tree(const char *dir, unsigned flags, hull_error_t *err);

/* Whether path is the root of a cgroup2 file system (statfs). */
bool hull_is_cgroup2_mount(const char *path);

#endif
