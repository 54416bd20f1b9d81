/* server/stats/: resource usage and operator metrics.  This header is the whole interface of the
 * area: the file-system and network readers and the metric table (stats.c), the stats service
 * the CRI stats handlers share (stats_service.c) and the Prometheus endpoint (metrics.c).
 *
 * A cgroup's usage is the cgroup library's (common/cgroup.h: struct hull_cgroup_stats,
 * hull_cgroup_stats_read_path, for cgroups v1, hybrid and v2, PSI included); this area turns it
 * into CPU rates and metrics, and reads what is not a cgroup's: writable layers and network
 * namespaces.  No protobuf here: the CRI handlers map these structs to ContainerStats /
 * PodSandboxStats / Metric messages.
 *
 *   const struct hull_cgroup_layout *l = stats_service_cgroups(srv);  // opened once at start
 *   struct hull_cgroup_stats s;
 *   hull_cgroup_stats_read_path(l, "/hull/pod<uid>/hull-<id>", &s, &err);  // OCI cgroupsPath
 *   uint64_t nc;
 *   struct stats_cpu_sample now = stats_cpu_sample_of(&s);
 *   if (stats_cpu_nano_cores(&c->prev_cpu, &now, &nc)) ...     // caller keeps prev per object
 *   c->prev_cpu = now;
 *
 * Costs: hull_cgroup_stats_read reads about 15 small cgroup files; stats_dir_usage walks the
 * whole directory (cache it per container if kubelet polls often); stats_net_read_netns starts
 * and joins one thread.
 * Errors: 0 or a negative errno with *err filled (common.h). */
#ifndef HULL_SERVER_STATS_STATS_H
#define HULL_SERVER_STATS_STATS_H

#include "common/cgroup.h"
#include "common/common.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- CPU rate ------------------------------------------------------------------------------- */
struct stats_cpu_sample {
    bool valid;
    int64_t monotonic_ns;
    uint64_t usage_ns;
};
struct stats_cpu_sample stats_cpu_sample_of(const struct hull_cgroup_stats *s);
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
void stats_metrics_emit(const struct hull_cgroup_stats *s, const struct stats_fs_usage *fs,
                        const struct stats_net *net, int64_t start_ns, stats_metric_cb cb,
                        void *opaque);

/* ---- the stats service (stats_service.c) ------------------------------------------------- */
/* State the CRI stats handlers share. */
struct hull_server;

int stats_service_init(struct hull_server *srv, hull_error_t *err);
void stats_service_fini(struct hull_server *srv);
/* The host's cgroup layout (opened once, read-only afterwards), NULL when no cgroup hierarchy
 * is mounted. */
const struct hull_cgroup_layout *stats_service_cgroups(struct hull_server *srv);
/* Swaps in the new sample for key ("c/<id>", "p/<id>") and computes nano-cores against the
 * previous one; false when there is none (or it cannot be compared). */
bool stats_service_nano_cores(struct hull_server *srv, const char *key, struct stats_cpu_sample cur,
                              uint64_t *out);

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
