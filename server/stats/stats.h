/* server/stats/: resource usage and operator metrics.  This header is the whole interface of the
 * area: the kernel readers (stats.c), the stats service the CRI stats handlers share
 * (stats_service.c) and the Prometheus endpoint (metrics.c).
 *
 * stats.c: resource usage of containers and pods, read from the kernel: cgroups v1 and
 * v2, the file system (writable layers) and network namespaces.  No protobuf here: the CRI
 * handlers map these structs to ContainerStats / PodSandboxStats / Metric messages.
 *
 *   struct stats_cgroups *cg;
 *   stats_open(NULL, &cg, &err);                          // once, at daemon start
 *   struct stats_cgroup s;
 *   stats_cgroup_read(cg, "/hull/pod<uid>/hull-<id>", &s, &err);   // the OCI cgroupsPath
 *   uint64_t nc;
 *   struct stats_cpu_sample now = stats_cpu_sample_of(&s);
 *   if (stats_cpu_nano_cores(&c->prev_cpu, &now, &nc)) ...     // caller keeps prev per object
 *   c->prev_cpu = now;
 *
 * Paths follow runc's cgroupfs driver: v1 <mountpoint of controller><cgroupsPath>, v2
 * <root><cgroupsPath>.  Only absolute cgroupsPaths are accepted; ".." components are refused.
 *
 * All functions are thread safe (a struct stats_cgroups is read-only after stats_open);
 * keeping and updating previous CPU samples is the caller's business.
 * Costs: stats_cgroup_read reads about 15 small cgroup files; stats_dir_usage walks the whole
 * directory (cache it per container if kubelet polls often); stats_net_read_netns starts and
 * joins one thread.
 * Errors: 0 or a negative errno with *err filled (common.h). */
#ifndef HULL_SERVER_STATS_STATS_H
#define HULL_SERVER_STATS_STATS_H

#include "common/cgroup.h"
#include "common/common.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- cgroup layout ---------------------------------------------------------------------------
 * The layout is common/cgroup.h's (stats_mode returns an enum hull_cgroup_mode):
 * HULL_CGROUP_V1: only v1 hierarchies (one per controller or co-mounted, e.g. cpu,cpuacct).
 * HULL_CGROUP_HYBRID: v1 controllers plus a (usually empty) cgroup2 at <root>/unified; usage
 *   comes from v1, pressure (PSI) from the unified tree when the cgroup exists there, and so
 *   does the usage of a controller that no v1 hierarchy holds (cpu usage from cgroup2's
 *   cpu.stat, which needs no controller; memory, pids, io when moved to cgroup2).
 * HULL_CGROUP_V2: cgroup2 mounted at the root. */
struct stats_cgroups; /* opaque, immutable after stats_open */

/* cgroup_root NULL means /sys/fs/cgroup.  The layout comes from /proc/self/mountinfo (cgroup
 * mounts at or below the root); when none is mounted there (a fixture tree in tests) it is
 * guessed from the files (hull_cgroup_layout_load): <root>/cgroup.controllers → v2,
 * <root>/<controller>/ directories → v1, plus <root>/unified/cgroup.controllers → hybrid.  Fails
 * with ENOENT when no cgroup is found. */
int stats_open(const char *cgroup_root, struct stats_cgroups **out, hull_error_t *err);
void stats_close(struct stats_cgroups *cg);
HULL_DEFINE_CLEANUP(struct stats_cgroups, stats_close)
#define _cleanup_stats_cgroups_ __attribute__((cleanup(stats_closep)))
int stats_mode(const struct stats_cgroups *cg);
const char *stats_mode_name(int mode); /* "v1", "hybrid", "v2", "none" */
/* Same as stats_open, but from a given mountinfo text (tests). */
int stats_open_mountinfo(const char *cgroup_root, const char *mountinfo, struct stats_cgroups **out,
                         hull_error_t *err);
/* The host directory of a cgroup in one controller ("memory", "cpuacct", …; "unified" for the
 * cgroup2 tree), or NULL when that controller is not mounted.  Caller frees. */
char *stats_cgroup_dir(const struct stats_cgroups *cg, const char *controller,
                       const char *cgroups_path);

/* ---- per-cgroup usage ------------------------------------------------------------------------
 * Every section has `valid` (its controller exists for this cgroup and its main file was read);
 * has_* flags mark optional values (absent files, "unlimited" limits).
 * Limits of 2^62 or more (v1's 9223372036854771712) and v2's "max" count as no limit. */
struct stats_psi_data {
    uint64_t total_ns; /* stall time in ns (CRI PsiData.Total); the kernel counts microseconds */
    double avg10, avg60, avg300;
};
struct stats_psi {
    bool valid;    /* the <res>.pressure file was read (v2 / hybrid unified dir) */
    bool has_full; /* cpu.pressure has no "full" line on older kernels */
    struct stats_psi_data some, full;
};

struct stats_cpu {
    bool valid;
    uint64_t usage_ns; /* cumulative: v1 cpuacct.usage, v2 cpu.stat usage_usec * 1000 */
    bool has_user_system;
    uint64_t user_ns, system_ns; /* v1 cpuacct.usage_user/_sys, v2 user_usec/system_usec */
    bool has_throttling;         /* cpu.stat */
    uint64_t nr_periods, nr_throttled, throttled_ns;
    bool has_spec; /* the configured CFS period and shares: v1 cpu.cfs_period_us and cpu.shares,
                      v2 cpu.max's period and cpu.weight mapped back to shares */
    uint64_t period_us, shares;
    struct stats_psi psi;
};

struct stats_memory {
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
    struct stats_psi psi;
};

/* The processes of the cgroup and its descendants (cgroup.procs of any hierarchy holding it):
 * how many, and their open file descriptors and sockets (from /proc/<pid>/fd; processes that
 * exit meanwhile are skipped). */
struct stats_procs {
    bool valid;
    uint64_t processes, fds, sockets;
};

struct stats_pids {
    bool valid;
    uint64_t current; /* pids.current (tasks, threads included, as containerd and cadvisor
                         report it); without a pids controller, the processes listed in the
                         cgroup.procs files of the cgroup and its descendants */
    bool has_limit;
    uint64_t limit;
};

struct stats_io {
    bool valid; /* v1 blkio.throttle.io_service{d,_bytes}[_recursive], v2 io.stat; all devices */
    uint64_t read_bytes, write_bytes, read_ops, write_ops;
    struct stats_psi psi;
};

struct stats_cgroup {
    int64_t timestamp_ns; /* CLOCK_REALTIME when read (the CRI timestamp) */
    int64_t monotonic_ns; /* CLOCK_MONOTONIC, for rates */
    struct stats_cpu cpu;
    struct stats_memory memory;
    struct stats_pids pids;
    struct stats_io io;
    struct stats_procs procs;
};

/* Reads everything available for cgroupsPath.  A controller whose directory is missing leaves
 * its section invalid; ENOENT when the cgroup exists in no controller (e.g. already removed). */
int stats_cgroup_read(const struct stats_cgroups *cg, const char *cgroups_path,
                      struct stats_cgroup *out, hull_error_t *err);

/* ---- CPU rate ------------------------------------------------------------------------------- */
struct stats_cpu_sample {
    bool valid;
    int64_t monotonic_ns;
    uint64_t usage_ns;
};
struct stats_cpu_sample stats_cpu_sample_of(const struct stats_cgroup *s);
/* Average CPU use between two samples in nano-cores (1e9 = one full CPU).  False when either
 * sample is invalid, time did not advance, or the counter went back (cgroup recreated). */
bool stats_cpu_nano_cores(const struct stats_cpu_sample *prev, const struct stats_cpu_sample *cur,
                          uint64_t *nano_cores);

/* ---- writable layer / directory usage ------------------------------------------------------- */
struct stats_fs_usage {
    int64_t timestamp_ns;
    uint64_t used_bytes;  /* allocated blocks (st_blocks * 512), as du and containerd count */
    uint64_t inodes_used; /* distinct inodes, the directory itself included */
    bool truncated;       /* parts were not counted: deeper than STATS_FS_MAX_DEPTH, or a directory
                             could not be opened (EMFILE, EACCES) */
    bool has_fs;          /* statvfs of the file system holding the directory */
    uint64_t fs_limit_bytes, fs_inodes_total, fs_inodes_free;
};
#define STATS_FS_MAX_DEPTH 128
/* Walks dir without following symlinks (they count as themselves) or crossing into other mounts
 * (a mount point is counted, not its contents); hard-linked inodes count once.  Entries that
 * vanish during the walk are skipped.  ENOENT when dir does not exist. */
int stats_dir_usage(const char *dir, struct stats_fs_usage *out, hull_error_t *err);
/* The mount point of the file system holding path (CRI FilesystemIdentifier; ImageFsInfo should
 * report the same one so kubelet matches them).  Reads /proc/self/mountinfo: cache it per
 * directory if called often.  Caller frees. */
int stats_fs_mountpoint(const char *path, char **out, hull_error_t *err);

/* ---- network -------------------------------------------------------------------------------- */
struct stats_net_iface {
    char name[32];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};
struct stats_net {
    int64_t timestamp_ns;
    struct stats_net_iface *ifaces; /* in /proc/net/dev order, loopback included */
    size_t n;
};
void stats_net_clear(struct stats_net *n);
/* Parses the text of /proc/net/dev into out (appends; clear first). */
int stats_net_parse_dev(const char *text, struct stats_net *out, hull_error_t *err);
/* Counters of the network namespace pinned at netns_path (/run/hull/ns/net/<id>): a dedicated
 * short-lived thread joins it with setns() and reads /proc/thread-self/net/dev, then exits (it
 * is never reused, so no other code runs in the pod's netns).  Needs CAP_SYS_ADMIN. */
int stats_net_read_netns(const char *netns_path, struct stats_net *out, hull_error_t *err);
/* Counters of the netns of a process: /proc/<pid>/net/dev. */
int stats_net_read_pid(pid_t pid, struct stats_net *out, hull_error_t *err);
/* The interface CRI reports as default: `name` (kubelet's "eth0") when present, otherwise the
 * first that is not "lo"; NULL when there is none. */
const struct stats_net_iface *stats_net_default(const struct stats_net *n, const char *name);

/* ---- metrics (ListMetricDescriptors / ListPodSandboxMetrics) ----------------------------------
 * cadvisor's metric names, which kubelet serves on /metrics/cadvisor from these RPCs.  Values are
 * CRI's uint64: "_seconds_total" metrics are whole seconds (CRI-O does the same).  Every metric
 * has the label keys "id", "name", "image" (values filled by the caller); per-interface metrics
 * add "interface" (the value is passed to the callback). */
enum stats_metric_type { STATS_METRIC_COUNTER = 0, STATS_METRIC_GAUGE = 1 }; /* = CRI MetricType */
struct stats_metric_desc {
    const char *name;
    const char *help;
    int type;
    const char *const *label_keys; /* NULL-terminated */
    size_t n_label_keys;           /* "id", "name", "image" first, then the extra keys */
    bool per_interface;
};
/* The static table of every metric stats_metrics_emit can produce. */
const struct stats_metric_desc *stats_metric_descriptors(size_t *n);
typedef void (*stats_metric_cb)(void *opaque, const struct stats_metric_desc *d,
                                const char *const *extra, uint64_t value);
/* Calls cb for each metric available in the samples (any of them may be NULL): cgroup usage from
 * s, the writable layer's usage and its file system's size from fs, per interface (loopback left
 * out) from net; container_start_time_seconds from start_ns (when > 0) and
 * container_last_seen from the sample time.  Metrics with extra label keys (memory failures by
 * type and scope) pass the extra values in `extra`, NULL-terminated (the interface name is
 * extra[0] for the network metrics). */
void stats_metrics_emit(const struct stats_cgroup *s, const struct stats_fs_usage *fs,
                        const struct stats_net *net, int64_t start_ns, stats_metric_cb cb,
                        void *opaque);

/* ---- the stats service (stats_service.c) ------------------------------------------------- */
/* State the CRI stats handlers share. */
struct hull_server;

int stats_service_init(struct hull_server *srv, hull_error_t *err);
void stats_service_fini(struct hull_server *srv);
/* The cgroup reader, NULL when no cgroup hierarchy is mounted. */
struct stats_cgroups *stats_service_cgroups(struct hull_server *srv);
/* Swaps in the new sample for key ("c/<id>", "p/<id>") and computes nano-cores against the
 * previous one; false when there is none (or it cannot be compared). */
bool stats_service_nano_cores(struct hull_server *srv, const char *key, struct stats_cpu_sample cur,
                              uint64_t *out);
/* After a listing of every object of a kind: drops the samples whose key starts with prefix
 * ("c/", "p/") that were not taken since `since` (CLOCK_MONOTONIC ns), i.e. of objects gone. */
void stats_service_prune(struct hull_server *srv, const char *prefix, int64_t since);

/* ---- metrics endpoint (metrics.c) ---------------------------------------------------------- */
/* Off unless metrics_address is set: a small HTTP/1.1 server thread answering GET /metrics
 * with the Prometheus text format, 404 otherwise.  Names follow CRI-O's with a
 * hull_ prefix: hull_operations_total{operation}, hull_operations_errors_total{operation,error},
 * hull_operations_latency_seconds{operation} (histogram), hull_image_pulls_*,
 * hull_containers{state}, hull_pod_sandboxes{state}, hull_containers_monitor_lost_total.
 * Counters are atomics updated at the gRPC edge; the gauges are counted at scrape time by the
 * callbacks the daemon gives (this area knows nothing of pods and containers). */
struct hull_metrics;

/* What the endpoint reports but does not count itself. */
struct metrics_sources {
    size_t n_operations;                     /* the operation indexes of metrics_rpc_done */
    const char *(*operation_name)(size_t i); /* "RunPodSandbox" */
    void *opaque;
    /* the gauges, at scrape time: containers created, running, exited, unknown; pods ready,
     * not ready (NULL: all zero) */
    void (*count_containers)(void *opaque, size_t by_state[4]);
    void (*count_pods)(void *opaque, size_t by_state[2]);
};

/* Creates the counters; starts the HTTP listener when config->metrics_address is non-empty
 * ("host:port", "[v6]:port", ":port" or "port", the last two on 127.0.0.1).  EINVAL bad address,
 * EADDRINUSE etc. from bind. */
int metrics_start(struct hull_server *srv, const struct metrics_sources *src, hull_error_t *err);
/* Stops the listener thread and frees everything (NULL-safe). */
void metrics_stop(struct hull_server *srv);

/* One finished RPC: operation index (< n_operations), gRPC code, duration. */
void metrics_rpc_done(struct hull_metrics *m, size_t method, int code, int64_t duration_ns);
/* One finished PullImage: bytes newly stored (0 when nothing new), success. */
void metrics_image_pull(struct hull_metrics *m, uint64_t bytes, int64_t duration_ns, bool ok);
/* A container whose monitor vanished without an exit status. */
void metrics_monitor_lost(struct hull_metrics *m);

/* The metrics text (for the endpoint and tests); caller frees. */
char *metrics_render(struct hull_server *srv, size_t *len);

/* Parses "host:port", "[v6]:port", ":port" or "port" (the last two: 127.0.0.1); port 0..65535
 * (0: any free port, logged).  The host stays as given (numeric addresses only at bind). */
int metrics_parse_address(const char *addr, char **host, int *port, hull_error_t *err);

#endif
