/* The cgroup library (libc only: no yajl, no sd-bus here; the systemd driver is
 * cgroup_systemd.h).  Used by hull-oci (create/apply/update/kill/delete/state), hulld (pod
 * cgroups, the spec builder, recovery, stats) and hull-conmon (OOM watch).
 *
 *   layout      which cgroup hierarchies are mounted where (v1, hybrid, unified) and a
 *               process's cgroup in each                                (cgroup_layout.c)
 *   resources   linux.resources as a typed struct (parsed and written as JSON by the
 *               runtime-spec model, common/ocispec_model.h; hulld fills it from CRI
 *               LinuxContainerResources); constructors, conversions, path safety
 *               (cgroup_resources.c)
 *   manager     a container's cgroup: resolve/create/enter/apply/freeze/kill/destroy
 *               (cgroup_manager.c), with the v1 writers (cgroup_v1.c) and v2 writers
 *               (cgroup_v2.c)
 *   stats       "key value" files, numbers, OOM counters and the OOM watch (cgroup_stats.c);
 *               a cgroup's usage as one typed struct (cgroup_stats_read.c, with the v1
 *               readers in cgroup_stats_v1.c, the v2 ones in cgroup_stats_v2.c and what
 *               they share in cgroup_stats_common.c)
 *   systemd     transient scopes/slices and unit properties            (cgroup_systemd.h) */
#ifndef HULL_COMMON_CGROUP_H
#define HULL_COMMON_CGROUP_H

#include "common/common.h"
#include "common/mountinfo.h"

#include <sys/types.h>

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

/* ---- path safety ------------------------------------------------------------------------ */
/* Whether a cgroup path from a spec or a CRI request stays below the cgroup root it is joined
 * to: no "." or ".." component, no control character or backslash, at most 4096 bytes.  An
 * empty path is safe (the caller picks a default). */
bool hull_cgroup_path_safe(const char *path);

/* ---- resources (linux.resources, typed) ---------------------------------------------------
 * Every int64 member is HULL_CG_UNSET when not given; -1 or INT64_MAX means "max" (no limit)
 * where the kernel has one (a spec value above INT64_MAX reads as INT64_MAX). */
#define HULL_CG_UNSET INT64_MIN

/* A per-device value: blkio weightDevice (weight) or a throttle (rate, bytes or ops/s). */
struct hull_cgroup_dev_value {
    int64_t major, minor, value;
};
enum {
    HULL_CG_THROTTLE_READ_BPS = 0,
    HULL_CG_THROTTLE_WRITE_BPS,
    HULL_CG_THROTTLE_READ_IOPS,
    HULL_CG_THROTTLE_WRITE_IOPS,
    HULL_CG_N_THROTTLE,
};
struct hull_cgroup_hugetlb {
    char *page_size; /* "2MB" (NULL only from a CRI request without one: refused when applied) */
    int64_t limit;
};
struct hull_cgroup_unified {
    char *key;   /* a cgroup2 file name, "memory.high" */
    char *value; /* NULL only when built so (refused when applied) */
};
/* A device cgroup rule (linux.resources.devices): the v1 devices controller's "TYPE MAJ:MIN
 * ACCESS" line, or on cgroup2 a rule of hull-oci's BPF program. */
#define HULL_CG_DEV_MKNOD 1u /* the BPF_DEVCG_ACC_* values */
#define HULL_CG_DEV_READ  2u
#define HULL_CG_DEV_WRITE 4u
#define HULL_CG_DEV_RWM   (HULL_CG_DEV_READ | HULL_CG_DEV_WRITE | HULL_CG_DEV_MKNOD)
struct hull_cgroup_device_rule {
    bool allow;
    char type;            /* 'a' (all devices), 'c', 'b' */
    int64_t major, minor; /* -1: any */
    unsigned access;      /* HULL_CG_DEV_* bits, never 0 */
};
struct hull_cgroup_resources {
    /* NULL: not given (an update keeps the container's rules); else n_devices rules, in order */
    struct hull_cgroup_device_rule *devices;
    size_t n_devices;
    struct {
        int64_t limit, swap, reservation, kernel, kernel_tcp, swappiness;
        int disable_oom_killer; /* -1 not given, 0, 1 */
    } memory;
    struct {
        int64_t shares, quota, period, realtime_runtime, realtime_period, idle;
        char *cpus, *mems; /* cpuset lists; NULL when not given or empty */
    } cpu;
    int64_t pids_limit;
    struct {
        int64_t weight, leaf_weight;
        struct hull_cgroup_dev_value *weight_device;
        size_t n_weight_device;
        struct hull_cgroup_dev_value *throttle[HULL_CG_N_THROTTLE];
        size_t n_throttle[HULL_CG_N_THROTTLE];
    } blkio;
    struct hull_cgroup_hugetlb *hugetlb;
    size_t n_hugetlb;
    struct hull_cgroup_unified *unified;
    size_t n_unified;
    int64_t net_cls_classid;
};
/* Everything unset. */
void hull_cgroup_resources_init(struct hull_cgroup_resources *r);
void hull_cgroup_resources_clear(struct hull_cgroup_resources *r);
#define _cleanup_cgroup_resources_                                                                 \
    __attribute__((cleanup(hull_cgroup_resources_clear))) /* by value */
void hull_cgroup_resources_add_dev(struct hull_cgroup_dev_value **v, size_t *n, int64_t major,
                                   int64_t minor, int64_t value);
void hull_cgroup_resources_add_hugetlb(struct hull_cgroup_resources *r, const char *page_size,
                                       int64_t limit);
void hull_cgroup_resources_add_unified(struct hull_cgroup_resources *r, const char *key,
                                       const char *value);
/* Appends a device rule (makes devices present). */
void hull_cgroup_resources_add_device(struct hull_cgroup_resources *r,
                                      struct hull_cgroup_device_rule rule);
/* "rwm", "m", ... for HULL_CG_DEV_* bits (buf of 4 at least). */
const char *hull_cgroup_device_access_string(unsigned access, char buf[4]);
/* The HULL_CG_DEV_* bits of an access string ("rwm", "wr", ...); NULL or empty: every access
 * (HULL_CG_DEV_RWM); 0 when it holds anything but r, w and m. */
unsigned hull_cgroup_device_access_bits(const char *access);

/* CPU shares (v1, 2..262144) -> cpu.weight (v2, 1..10000), the conversion runc and crun use;
 * 0 stays 0 (unset). */
uint64_t hull_cgroup_shares_to_weight(uint64_t shares);
/* blkio.weight (10..1000) -> io.weight (1..10000); 0 stays 0. */
uint64_t hull_cgroup_blkio_to_io_weight(uint64_t weight);
/* The cpu.max line for a quota and period (either may be HULL_CG_UNSET or 0: not given):
 * "QUOTA PERIOD", "max PERIOD" for a negative quota, and the current quota (cur_max, the text
 * of cpu.max, or "max") kept when only the period is given; the period defaults to 100000.
 * False when neither is given (nothing to write). */
bool hull_cgroup_cpu_max(int64_t quota, int64_t period, const char *cur_max, char *buf, size_t len);
/* systemd's CPUQuotaPerSecUSec for a quota and period (µs), rounded up to 10 ms as runc does;
 * UINT64_MAX (no limit) for a negative quota. */
uint64_t hull_cgroup_quota_per_sec(int64_t quota, int64_t period);
/* Whether a unified key is a plain cgroup2 file name ("memory.high"): no "/", not starting
 * with ".", a "." inside, and never one of the files that move or kill processes
 * (cgroup.procs, cgroup.threads, cgroup.subtree_control, cgroup.kill). */
bool hull_cgroup_unified_key_ok(const char *key);
/* Checks every unified entry (key as above, value a string of one line); EINVAL naming it. */
int hull_cgroup_unified_check(const struct hull_cgroup_resources *r, hull_error_t *err);

/* ---- a container's cgroup (cgroup_manager.c)
 * ------------------------------------------------------ */
struct hull_cgroup_dir {
    char *controller;  /* the hierarchy's first controller ("cpu" for cpu,cpuacct), or
                          "unified" for cgroup2 */
    char *controllers; /* the hierarchy's controller list; "" for cgroup2 */
    char *path;        /* the container's directory in that hierarchy */
    char *mount;       /* the hierarchy's mount point */
};
struct hull_cgroup {
    int mode; /* enum hull_cgroup_mode */
    struct hull_cgroup_dir *dirs;
    size_t n;
    /* systemd driver: the transient scope holding the container and its slice; NULL with
     * the cgroupfs driver (cgroup_systemd.h) */
    char *systemd_unit;
    char *systemd_slice;
};
/* The container's directories as runc's cgroupfs driver computes them: an absolute
 * cgroups_path is below each hierarchy's root, a relative one (or id when it is empty) below
 * the calling process's cgroup as listed in proc_self_cgroup (the text of /proc/self/cgroup).
 * EINVAL for an unsafe path (hull_cgroup_path_safe) or a systemd-form one. */
int hull_cgroup_resolve(const struct hull_cgroup_layout *l, const char *proc_self_cgroup,
                        const char *cgroups_path, const char *id, struct hull_cgroup *out,
                        hull_error_t *err);
void hull_cgroup_clear(struct hull_cgroup *cg);
#define _cleanup_hull_cgroup_ __attribute__((cleanup(hull_cgroup_clear))) /* by value */
/* The directory of controller ("memory", "unified"), or NULL. */
const struct hull_cgroup_dir *hull_cgroup_find_dir(const struct hull_cgroup *cg,
                                                   const char *controller);
/* Whether d is a cgroup2 directory. */
bool hull_cgroup_dir_is_v2(const struct hull_cgroup *cg, const struct hull_cgroup_dir *d);
/* mkdir -p every directory (v2: enabling the controllers on the way). */
int hull_cgroup_create(struct hull_cgroup *cg, hull_error_t *err);
int hull_cgroup_enter(struct hull_cgroup *cg, pid_t pid, hull_error_t *err);
/* Writes res to every directory: v1 controllers, cgroup2 (pure v2, or on a hybrid host the
 * controllers no v1 hierarchy holds).  unified needs pure v2 (EINVAL otherwise).  The device
 * rules (res->devices) are not written here (hull-oci's cgroup.c, cgroup_devices.c).
 * HULL_CGROUP_UPDATE: an update of a running container (memory.oom_control is written for false
 * too). */
#define HULL_CGROUP_UPDATE 1u
int hull_cgroup_apply(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                      unsigned flags, hull_error_t *err);
/* One v1 controller's settings in dir (a no-op for a controller without any). */
int hull_cgroup_v1_apply(const char *controller, const char *dir,
                         const struct hull_cgroup_resources *res, unsigned flags,
                         hull_error_t *err);
/* Every v2 setting in the cgroup2 directory dir. */
int hull_cgroup_v2_apply(const char *dir, const struct hull_cgroup_resources *res,
                         hull_error_t *err);
/* v2: writes "+cpu +memory ..." (what each level's cgroup.controllers offers) into the
 * cgroup.subtree_control of every level from base down to dir's parent. */
int hull_cgroup_v2_enable_controllers(const char *base, const char *dir, hull_error_t *err);
int hull_cgroup_freeze(struct hull_cgroup *cg, bool freeze, hull_error_t *err);
int hull_cgroup_is_frozen(struct hull_cgroup *cg, bool *frozen);
/* The pids of the container's cgroup.procs. */
int hull_cgroup_pids(struct hull_cgroup *cg, pid_t **pids, size_t *n, hull_error_t *err);
/* The memory cgroup's oom_kill counter; -ENOENT when it cannot be read. */
int hull_cgroup_oom_count(struct hull_cgroup *cg, uint64_t *count);
/* sig to every process (v2 SIGKILL: cgroup.kill; else frozen, then each pid pinned with a
 * pidfd: hull_cgroup_signal_procs). */
int hull_cgroup_kill(struct hull_cgroup *cg, int sig, hull_error_t *err);
/* Stops the systemd unit (systemd driver) and removes every directory with what is below it. */
int hull_cgroup_destroy(struct hull_cgroup *cg, hull_error_t *err);

/* Host probes (for hulld's spec generation): cgroup2 at /sys/fs/cgroup; swap accounting
 * (v2, or v1 memory.memsw files). */
bool hull_cgroup_host_is_v2(void);
bool hull_cgroup_host_has_controller(const char *controller);
bool hull_cgroup_host_has_swap_accounting(void);

/* ---- OOM watch (cgroup_stats.c) -------------------------------------------------------------
 * v1: an eventfd registered on memory.oom_control through cgroup.event_control; v2: inotify
 * on memory.events.  The truth is the "oom_kill" counter compared with its value when the
 * watch began; the event only says when to look.  When the cgroup is gone (systemd removes an
 * emptied scope) the parent's hierarchical memory.events counts. */
struct hull_cgroup_oom_watch {
    int fd;             /* poll for POLLIN (eventfd / inotify); -1 when there is none */
    int ctl_fd;         /* v1: memory.oom_control kept open */
    char *counter_path; /* memory.oom_control (v1) / memory.events (v2): "oom_kill N" */
    char *parent_path;  /* v2: the parent's memory.events */
    long long base_kills, parent_base_kills;
    bool fired;
};
/* The memory cgroup directory of pid (v1 memory hierarchy, else cgroup2; *v2 says which), or
 * NULL when it is in the root cgroup or none can be found. */
char *hull_cgroup_memory_dir_of(pid_t pid, bool *v2);
void hull_cgroup_oom_watch_init(struct hull_cgroup_oom_watch *w, pid_t pid);
void hull_cgroup_oom_watch_init_dir(struct hull_cgroup_oom_watch *w, const char *dir, bool v2);
/* Drains the fd after POLLIN and records whether a kill happened. */
void hull_cgroup_oom_watch_event(struct hull_cgroup_oom_watch *w);
bool hull_cgroup_oom_watch_killed(struct hull_cgroup_oom_watch *w);
void hull_cgroup_oom_watch_free(struct hull_cgroup_oom_watch *w);
/* The "oom_kill N" value of a memory.oom_control / memory.events text; -1 if none. */
long long hull_cgroup_oom_parse(const char *text);

/* ---- usage (cgroup_stats_read.c; the v1 readers cgroup_stats_v1.c, the v2 ones
 * cgroup_stats_v2.c) --------------------------------------------------------------------------
 * What a cgroup used, in one typed struct every reader shares (hulld's ContainerStats,
 * PodSandboxStats, ListPodSandboxMetrics and /metrics).  Every section has `valid` (its
 * controller holds the cgroup and its main file was read); has_* flags mark optional values
 * (absent files, "unlimited" limits).  Limits of HULL_CGROUP_STATS_UNLIMITED or more (v1's
 * 9223372036854771712) and v2's "max" count as no limit. */
#define HULL_CGROUP_STATS_UNLIMITED (UINT64_C(1) << 62) /* kubelet: anything above is "none" */
struct hull_cgroup_psi_data {
    uint64_t total_ns; /* stall time in ns (CRI PsiData.Total); the kernel counts microseconds */
    double avg10, avg60, avg300;
};
struct hull_cgroup_psi {
    bool valid;    /* the <res>.pressure file was read (v2 / hybrid unified dir) */
    bool has_full; /* cpu.pressure has no "full" line on older kernels */
    struct hull_cgroup_psi_data some, full;
};
struct hull_cgroup_cpu_stats {
    bool valid;
    uint64_t usage_ns; /* cumulative: v1 cpuacct.usage, v2 cpu.stat usage_usec * 1000 */
    bool has_user_system;
    uint64_t user_ns, system_ns; /* v1 cpuacct.usage_user/_sys (or cpuacct.stat ticks), v2
                                    user_usec/system_usec */
    bool has_throttling;         /* cpu.stat */
    uint64_t nr_periods, nr_throttled, throttled_ns;
    bool has_spec; /* the configured CFS period and shares: v1 cpu.cfs_period_us and cpu.shares,
                      v2 cpu.max's period and cpu.weight mapped back to shares */
    uint64_t period_us, shares;
    struct hull_cgroup_psi psi;
};
struct hull_cgroup_memory_stats {
    bool valid;
    uint64_t usage_bytes;       /* v1 memory.usage_in_bytes, v2 memory.current */
    uint64_t working_set_bytes; /* usage - inactive_file, floored at 0 */
    uint64_t rss_bytes;         /* v1 total_rss, v2 anon */
    uint64_t cache_bytes;       /* v1 total_cache, v2 file */
    uint64_t inactive_file_bytes;
    uint64_t page_faults, major_page_faults; /* v1 total_pgfault/total_pgmajfault, v2 pgfault */
    bool has_limit;
    uint64_t limit_bytes;
    uint64_t available_bytes; /* has_limit: limit - working set, floored at 0 */
    bool has_oom_kills;
    uint64_t oom_kills; /* v1 memory.oom_control oom_kill, v2 memory.events oom_kill */
    bool has_swap;      /* v1 needs memsw accounting (memory.memsw.*), v2 memory.swap.current */
    uint64_t swap_usage_bytes;
    bool has_swap_limit;
    uint64_t swap_limit_bytes;
    uint64_t swap_available_bytes; /* has_swap_limit: limit - usage, floored at 0 */
    bool has_failcnt; /* v1 memory.failcnt, v2 memory.events "max" (times the limit was hit) */
    uint64_t failcnt;
    bool has_kernel; /* v1 memory.kmem.usage_in_bytes, v2 memory.stat kernel (or kernel_stack +
                        slab + sock + percpu on older kernels) */
    uint64_t kernel_bytes;
    uint64_t mapped_file_bytes; /* v1 total_mapped_file, v2 file_mapped */
    bool has_max_usage;         /* v1 memory.max_usage_in_bytes, v2 memory.peak */
    uint64_t max_usage_bytes;
    struct hull_cgroup_psi psi;
};
struct hull_cgroup_pids_stats {
    bool valid;
    uint64_t current; /* pids.current (tasks, threads included, as containerd and cadvisor
                         report it); without a pids controller, the processes listed in the
                         cgroup.procs files of the cgroup and its descendants */
    bool has_limit;
    uint64_t limit;
};
struct hull_cgroup_io_stats {
    bool valid; /* v1 blkio.throttle.io_service{d,_bytes}[_recursive], v2 io.stat; all devices */
    uint64_t read_bytes, write_bytes, read_ops, write_ops;
    struct hull_cgroup_psi psi;
};
/* The processes of the cgroup and its descendants (cgroup.procs of the first hierarchy holding
 * it): how many, and their open file descriptors and sockets (from /proc/<pid>/fd; processes
 * that exit meanwhile are skipped). */
struct hull_cgroup_procs_stats {
    bool valid;
    uint64_t processes, fds, sockets;
};
struct hull_cgroup_stats {
    int64_t timestamp_ns; /* CLOCK_REALTIME when read (the CRI timestamp) */
    int64_t monotonic_ns; /* CLOCK_MONOTONIC, for rates */
    struct hull_cgroup_cpu_stats cpu;
    struct hull_cgroup_memory_stats memory;
    struct hull_cgroup_pids_stats pids;
    struct hull_cgroup_io_stats io;
    struct hull_cgroup_procs_stats procs;
};
/* Reads everything available for a resolved cgroup (hull_cgroup_resolve).  Pure v2: the
 * cgroup2 directory.  v1 and hybrid: each controller's v1 hierarchy; a controller that no v1
 * hierarchy holds is read from the cgroup2 directory when the cgroup exists there (cgroup2's
 * cpu.stat usage needs no controller at all), and so is pressure (PSI).  A controller whose
 * directory is missing leaves its section invalid; ENOENT when the cgroup exists in no
 * hierarchy (e.g. removed already). */
int hull_cgroup_stats_read(const struct hull_cgroup *cg, struct hull_cgroup_stats *out,
                           hull_error_t *err);
/* The same for a cgroupsPath below the layout's hierarchies: absolute (runc's cgroupfs driver:
 * <mount point><path>, less the mount's root) or systemd's "slice:prefix:name" / a slice name
 * (expanded as systemd does).  EINVAL for a relative or unsafe path. */
int hull_cgroup_stats_read_path(const struct hull_cgroup_layout *l, const char *cgroups_path,
                                struct hull_cgroup_stats *out, hull_error_t *err);
/* One <res>.pressure file of a cgroup2 directory ("some" and "full" lines); psi->valid false
 * when it is absent (PSI off, older kernel) or has no "some" line. */
void hull_cgroup_stats_psi(const char *dir, const char *file, struct hull_cgroup_psi *psi);
/* A cgroup file holding one number, or "max" (*unlimited true, *v UINT64_MAX; with unlimited
 * NULL "max" is refused).  False when absent or malformed. */
bool hull_cgroup_read_u64(const char *dir, const char *file, uint64_t *v, bool *unlimited);

#endif
