/* server/stats/stats.c — CPU rates from the cgroup library's samples (common/cgroup.h), the
 * usage of writable layers, network namespaces' counters and the metric table (see stats.h). */
#include "server/stats/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define STATS_FILE_MAX (1u << 20)

/* ---- cpu rate ---------------------------------------------------------------------------------
 */
struct stats_cpu_sample stats_cpu_sample_of(const struct hull_cgroup_stats *s)
{
    struct stats_cpu_sample c = {0};
    if (s && s->cpu.valid) {
        c.valid = true;
        c.monotonic_ns = s->monotonic_ns;
        c.usage_ns = s->cpu.usage_ns;
    }
    return c;
}

bool stats_cpu_nano_cores(const struct stats_cpu_sample *prev, const struct stats_cpu_sample *cur,
                          uint64_t *nano_cores)
{
    if (prev == NULL || cur == NULL || !prev->valid || !cur->valid)
        return false;
    if (cur->monotonic_ns <= prev->monotonic_ns || cur->usage_ns < prev->usage_ns)
        return false;
    unsigned __int128 du = cur->usage_ns - prev->usage_ns;
    unsigned __int128 dt = (uint64_t)(cur->monotonic_ns - prev->monotonic_ns);
    unsigned __int128 r = du * 1000000000u / dt;
    *nano_cores = r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
    return true;
}

/* ---- directory usage --------------------------------------------------------------------------
 */
struct inode_set {
    struct {
        dev_t dev;
        ino_t ino;
    } * slots;
    size_t cap, n;
};

static size_t inode_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)dev;
    return (size_t)(h ^ (h >> 29));
}

/* True when (dev, ino) was not in the set yet (and is now). ino 0 marks an empty slot. */
static bool inode_set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
    if (ino == 0)
        return true;
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        __typeof__(s->slots) ns = xmalloc0(ncap * sizeof(*ns));
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i].ino == 0)
                continue;
            size_t j = inode_hash(s->slots[i].dev, s->slots[i].ino) & (ncap - 1);
            while (ns[j].ino != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = inode_hash(dev, ino) & (s->cap - 1);
    while (s->slots[j].ino != 0) {
        if (s->slots[j].ino == ino && s->slots[j].dev == dev)
            return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j].dev = dev;
    s->slots[j].ino = ino;
    s->n++;
    return true;
}

struct walk {
    struct stats_fs_usage *u;
    struct inode_set links;
    dev_t dev;
};

static bool is_mount_root(int dirfd, const char *name)
{
    struct statx stx;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, 0, &stx) < 0)
        return false;
    return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
           (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static void count_inode(struct walk *w, const struct stat *st)
{
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 &&
        !inode_set_add(&w->links, st->st_dev, st->st_ino))
        return;
    w->u->inodes_used++;
    w->u->used_bytes += (uint64_t)st->st_blocks * 512;
}

/* fd (owned, closed here) is an open directory already counted; walks its entries.  One fd per
 * level is open at a time, so the walk needs at most STATS_FS_MAX_DEPTH + 1 descriptors. */
static void walk_dir(struct walk *w, int fd, int depth)
{
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        w->u->truncated = true;
        return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished */
        count_inode(w, &st);
        if (!S_ISDIR(st.st_mode))
            continue;
        /* another file system, or a bind mount of this one: counted, not entered */
        if (st.st_dev != w->dev || is_mount_root(dfd, e->d_name))
            continue;
        if (depth + 1 > STATS_FS_MAX_DEPTH) {
            w->u->truncated = true;
            continue;
        }
        int sub =
            openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (sub < 0) {
            if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                w->u->truncated = true; /* EMFILE, EACCES, …: not counted */
            continue;
        }
        struct stat st2;
        if (fstat(sub, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
            close(sub); /* replaced while we looked */
            continue;
        }
        walk_dir(w, sub, depth + 1);
    }
}

int stats_dir_usage(const char *dir, struct stats_fs_usage *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->timestamp_ns = hull_now_ns();
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", dir);
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0) {
        out->has_fs = true;
        out->fs_limit_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        out->fs_inodes_total = vfs.f_files;
        out->fs_inodes_free = vfs.f_ffree;
    }
    struct walk w = {.u = out, .dev = st.st_dev};
    count_inode(&w, &st);
    walk_dir(&w, hull_steal_fd(fd), 0);
    free(w.links.slots);
    return 0;
}

int stats_fs_mountpoint(const char *path, char **out, hull_error_t *err)
{
    _cleanup_free_ char *real = realpath(path, NULL);
    if (real == NULL)
        return hull_error_set(err, errno, "resolve `%s`", path);
    *out = hull_mount_point_of(real, err);
    return *out ? 0 : -hull_error_status(err);
}

/* ---- network ----------------------------------------------------------------------------------
 */
void stats_net_clear(struct stats_net *n)
{
    free(n->ifaces);
    n->ifaces = NULL;
    n->n = 0;
}

int stats_net_parse_dev(const char *text, struct stats_net *out, hull_error_t *err)
{
    /* Inter-|   Receive                                                |  Transmit
     *  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs ...
     *     lo:  123  4  0  0  0  0  0  0  123  4  0  0  0  0  0  0 */
    if (out->timestamp_ns == 0)
        out->timestamp_ns = hull_now_ns();
    int lineno = 0;
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        lineno++;
        _cleanup_free_ char *line = xstrndup(l, len);
        l = nl ? nl + 1 : NULL;
        char *colon = strchr(line, ':');
        if (colon == NULL || strchr(line, '|') != NULL)
            continue; /* headers */
        *colon = '\0';
        char *name = line;
        while (*name == ' ' || *name == '\t')
            name++;
        uint64_t v[16];
        int n = sscanf(colon + 1,
                       "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                       &v[11], &v[12], &v[13], &v[14], &v[15]);
        if (n != 16 || *name == '\0' || strlen(name) >= sizeof(out->ifaces[0].name))
            return hull_error_setx(err, EINVAL, "/proc/net/dev line %d: cannot parse", lineno);
        out->ifaces = xrealloc(out->ifaces, (out->n + 1) * sizeof(*out->ifaces));
        struct stats_net_iface *i = &out->ifaces[out->n++];
        memset(i, 0, sizeof(*i));
        snprintf(i->name, sizeof(i->name), "%s", name);
        i->rx_bytes = v[0];
        i->rx_packets = v[1];
        i->rx_errors = v[2];
        i->rx_dropped = v[3];
        i->tx_bytes = v[8];
        i->tx_packets = v[9];
        i->tx_errors = v[10];
        i->tx_dropped = v[11];
    }
    return 0;
}

struct netns_job {
    int fd;
    char *text;
    hull_error_t err;
};

/* Runs in its own thread, which ends right after: nothing else ever runs in the pod's netns. */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;
    if (setns(j->fd, CLONE_NEWNET) < 0) {
        hull_error_set(&j->err, errno, "join network namespace");
        return NULL;
    }
    /* /proc/self/net follows the thread group leader, /proc/thread-self this thread (and
     * /sys/class/net the netns sysfs was mounted in: no use here) */
    if (hull_read_file("/proc/thread-self/net/dev", STATS_FILE_MAX, &j->text, NULL, NULL) == 0)
        return NULL;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/net/dev", (int)gettid());
    hull_read_file(path, STATS_FILE_MAX, &j->text, NULL, &j->err); /* before Linux 3.17 */
    return NULL;
}

int stats_net_read_netns(const char *netns_path, struct stats_net *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_close_ int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open network namespace `%s`", netns_path);
    struct netns_job j = {.fd = fd};
    /* no signal handler may run in the pod's netns */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int r = pthread_create(&t, NULL, netns_thread, &j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return hull_error_set(err, r, "network stats of `%s`: start thread", netns_path);
    pthread_join(t, NULL);
    _cleanup_free_ char *text = j.text;
    if (j.err) {
        int st = hull_error_status(&j.err);
        r = hull_error_setx(err, st, "network stats of `%s`: %s", netns_path,
                            hull_error_msg(&j.err));
        hull_error_free(&j.err);
        return r;
    }
    out->timestamp_ns = hull_now_ns();
    r = stats_net_parse_dev(text, out, err);
    if (r < 0) {
        stats_net_clear(out);
        return hull_error_wrap(err, "network stats of `%s`", netns_path);
    }
    return 0;
}

int stats_net_read_pid(pid_t pid, struct stats_net *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(path, STATS_FILE_MAX, &text, NULL, err);
    if (r < 0)
        return r;
    out->timestamp_ns = hull_now_ns();
    r = stats_net_parse_dev(text, out, err);
    if (r < 0)
        stats_net_clear(out);
    return r;
}

const struct stats_net_iface *stats_net_default(const struct stats_net *n, const char *name)
{
    if (name)
        for (size_t i = 0; i < n->n; i++)
            if (strcmp(n->ifaces[i].name, name) == 0)
                return &n->ifaces[i];
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->ifaces[i].name, "lo") != 0)
            return &n->ifaces[i];
    return NULL;
}

/* ---- metrics ----------------------------------------------------------------------------------
 */
static const char *const base_keys[] = {"id", "name", "image", NULL};
static const char *const iface_keys[] = {"id", "name", "image", "interface", NULL};
static const char *const failure_keys[] = {"id", "name", "image", "failure_type", "scope", NULL};
static const char *const blkio_keys[] = {"id",    "name",  "image",     "device",
                                         "major", "minor", "operation", NULL};

enum metric_id {
    M_CPU_USAGE,
    M_CPU_USER,
    M_CPU_SYSTEM,
    M_CFS_PERIODS,
    M_CFS_THROTTLED_PERIODS,
    M_CFS_THROTTLED_SECONDS,
    M_MEM_USAGE,
    M_MEM_WORKING_SET,
    M_MEM_RSS,
    M_MEM_CACHE,
    M_MEM_SWAP,
    M_MEM_LIMIT,
    M_OOM_EVENTS,
    M_FS_READS_BYTES,
    M_FS_WRITES_BYTES,
    M_FS_READS,
    M_FS_WRITES,
    M_FS_USAGE,
    M_PSI_CPU_WAITING,
    M_PSI_CPU_STALLED,
    M_PSI_MEM_WAITING,
    M_PSI_MEM_STALLED,
    M_PSI_IO_WAITING,
    M_PSI_IO_STALLED,
    M_MEM_FAILCNT,
    M_MEM_FAILURES,
    M_MEM_KERNEL,
    M_MEM_MAPPED_FILE,
    M_MEM_MAX_USAGE,
    M_SWAP_LIMIT,
    M_CPU_PERIOD,
    M_CPU_SHARES,
    M_PROCESSES,
    M_FILE_DESCRIPTORS,
    M_SOCKETS,
    M_THREADS,
    M_THREADS_MAX,
    M_FS_LIMIT,
    M_FS_INODES_TOTAL,
    M_FS_INODES_FREE,
    M_START_TIME,
    M_LAST_SEEN,
    M_BLKIO_DEVICE_USAGE,
    M_NET_RX_BYTES,
    M_NET_RX_PACKETS,
    M_NET_RX_DROPPED,
    M_NET_RX_ERRORS,
    M_NET_TX_BYTES,
    M_NET_TX_PACKETS,
    M_NET_TX_DROPPED,
    M_NET_TX_ERRORS,
    M_COUNT
};

#define C                           STATS_METRIC_COUNTER
#define G                           STATS_METRIC_GAUGE
#define BASE(id, n, h, t)           [id] = {n, h, t, base_keys, 3, false}
#define IFACE(id, n, h)             [id] = {n, h, C, iface_keys, 4, true}
#define KEYS(id, n, h, t, keys, nk) [id] = {n, h, t, keys, nk, false}
static const struct stats_metric_desc metric_table[M_COUNT] = {
    BASE(M_CPU_USAGE, "container_cpu_usage_seconds_total",
         "Cumulative cpu time consumed in seconds.", C),
    BASE(M_CPU_USER, "container_cpu_user_seconds_total",
         "Cumulative user cpu time consumed in seconds.", C),
    BASE(M_CPU_SYSTEM, "container_cpu_system_seconds_total",
         "Cumulative system cpu time consumed in seconds.", C),
    BASE(M_CFS_PERIODS, "container_cpu_cfs_periods_total",
         "Number of elapsed enforcement period intervals.", C),
    BASE(M_CFS_THROTTLED_PERIODS, "container_cpu_cfs_throttled_periods_total",
         "Number of throttled period intervals.", C),
    BASE(M_CFS_THROTTLED_SECONDS, "container_cpu_cfs_throttled_seconds_total",
         "Total time duration the container has been throttled.", C),
    BASE(M_MEM_USAGE, "container_memory_usage_bytes",
         "Current memory usage in bytes, including all memory regardless of when it was accessed",
         G),
    BASE(M_MEM_WORKING_SET, "container_memory_working_set_bytes", "Current working set in bytes.",
         G),
    BASE(M_MEM_RSS, "container_memory_rss", "Size of RSS in bytes.", G),
    BASE(M_MEM_CACHE, "container_memory_cache", "Number of bytes of page cache memory.", G),
    BASE(M_MEM_SWAP, "container_memory_swap", "Container swap usage in bytes.", G),
    BASE(M_MEM_LIMIT, "container_spec_memory_limit_bytes", "Memory limit for the container.", G),
    BASE(M_OOM_EVENTS, "container_oom_events_total",
         "Count of out of memory events observed for the container", C),
    BASE(M_FS_READS_BYTES, "container_fs_reads_bytes_total", "Cumulative count of bytes read", C),
    BASE(M_FS_WRITES_BYTES, "container_fs_writes_bytes_total", "Cumulative count of bytes written",
         C),
    BASE(M_FS_READS, "container_fs_reads_total", "Cumulative count of reads completed", C),
    BASE(M_FS_WRITES, "container_fs_writes_total", "Cumulative count of writes completed", C),
    BASE(M_FS_USAGE, "container_fs_usage_bytes",
         "Number of bytes that are consumed by the container on this filesystem.", G),
    BASE(M_PSI_CPU_WAITING, "container_pressure_cpu_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to CPU congestion.", C),
    BASE(M_PSI_CPU_STALLED, "container_pressure_cpu_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to CPU congestion.",
         C),
    BASE(M_PSI_MEM_WAITING, "container_pressure_memory_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to memory congestion.", C),
    BASE(M_PSI_MEM_STALLED, "container_pressure_memory_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to memory "
         "congestion.",
         C),
    BASE(M_PSI_IO_WAITING, "container_pressure_io_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to IO congestion.", C),
    BASE(M_PSI_IO_STALLED, "container_pressure_io_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to IO congestion.",
         C),
    BASE(M_MEM_FAILCNT, "container_memory_failcnt", "Number of memory usage hits limits", C),
    KEYS(M_MEM_FAILURES, "container_memory_failures_total",
         "Cumulative count of memory allocation failures.", C, failure_keys, 5),
    BASE(M_MEM_KERNEL, "container_memory_kernel_usage", "Size of kernel memory allocated in bytes.",
         G),
    BASE(M_MEM_MAPPED_FILE, "container_memory_mapped_file", "Size of memory mapped files in bytes.",
         G),
    BASE(M_MEM_MAX_USAGE, "container_memory_max_usage_bytes",
         "Maximum memory usage recorded in bytes", G),
    BASE(M_SWAP_LIMIT, "container_spec_memory_swap_limit_bytes",
         "Memory swap limit for the container.", G),
    BASE(M_CPU_PERIOD, "container_spec_cpu_period", "CPU period of the container.", G),
    BASE(M_CPU_SHARES, "container_spec_cpu_shares", "CPU share of the container.", G),
    BASE(M_PROCESSES, "container_processes", "Number of processes running inside the container.",
         G),
    BASE(M_FILE_DESCRIPTORS, "container_file_descriptors",
         "Number of open file descriptors for the container.", G),
    BASE(M_SOCKETS, "container_sockets", "Number of open sockets for the container.", G),
    BASE(M_THREADS, "container_threads", "Number of threads running inside the container", G),
    BASE(M_THREADS_MAX, "container_threads_max",
         "Maximum number of threads allowed inside the container, infinity if value is zero", G),
    BASE(M_FS_LIMIT, "container_fs_limit_bytes",
         "Number of bytes that can be consumed by the container on this filesystem.", G),
    BASE(M_FS_INODES_TOTAL, "container_fs_inodes_total",
         "Number of available Inodes on the container's filesystem", G),
    BASE(M_FS_INODES_FREE, "container_fs_inodes_free",
         "Number of available Inodes on the container's filesystem that are free", G),
    BASE(M_START_TIME, "container_start_time_seconds",
         "Start time of the container since unix epoch in seconds.", G),
    BASE(M_LAST_SEEN, "container_last_seen", "Last time a container was seen by the exporter", G),
    KEYS(M_BLKIO_DEVICE_USAGE, "container_blkio_device_usage_total", "Blkio Device bytes usage", C,
         blkio_keys, 7),
    IFACE(M_NET_RX_BYTES, "container_network_receive_bytes_total",
          "Cumulative count of bytes received"),
    IFACE(M_NET_RX_PACKETS, "container_network_receive_packets_total",
          "Cumulative count of packets received"),
    IFACE(M_NET_RX_DROPPED, "container_network_receive_packets_dropped_total",
          "Cumulative count of packets dropped while receiving"),
    IFACE(M_NET_RX_ERRORS, "container_network_receive_errors_total",
          "Cumulative count of errors encountered while receiving"),
    IFACE(M_NET_TX_BYTES, "container_network_transmit_bytes_total",
          "Cumulative count of bytes transmitted"),
    IFACE(M_NET_TX_PACKETS, "container_network_transmit_packets_total",
          "Cumulative count of packets transmitted"),
    IFACE(M_NET_TX_DROPPED, "container_network_transmit_packets_dropped_total",
          "Cumulative count of packets dropped while transmitting"),
    IFACE(M_NET_TX_ERRORS, "container_network_transmit_errors_total",
          "Cumulative count of errors encountered while transmitting"),
};
#undef C
#undef G
#undef BASE
#undef IFACE
#undef KEYS

_Static_assert(M_PSI_IO_STALLED == M_PSI_CPU_WAITING + 5, "PSI metrics: cpu, memory, io pairs");
_Static_assert(M_NET_TX_ERRORS == M_NET_RX_BYTES + 7 && M_NET_TX_ERRORS == M_COUNT - 1,
               "network metrics last, in stats_metrics_emit's order");

const struct stats_metric_desc *stats_metric_descriptors(size_t *n)
{
    *n = M_COUNT;
    return metric_table;
}

#define SECONDS(ns) ((ns) / UINT64_C(1000000000))

void stats_metrics_emit(const struct hull_cgroup_stats *s, const struct stats_fs_usage *fs,
                        const struct stats_net *net, int64_t start_ns, stats_metric_cb cb,
                        void *opaque)
{
    size_t n;
    const struct stats_metric_desc *t = stats_metric_descriptors(&n);
    static const char *const none[] = {NULL};
#define EMIT(id, v) cb(opaque, &t[id], none, (v))
    if (s && s->cpu.valid) {
        EMIT(M_CPU_USAGE, SECONDS(s->cpu.usage_ns));
        if (s->cpu.has_user_system) {
            EMIT(M_CPU_USER, SECONDS(s->cpu.user_ns));
            EMIT(M_CPU_SYSTEM, SECONDS(s->cpu.system_ns));
        }
        if (s->cpu.has_throttling) {
            EMIT(M_CFS_PERIODS, s->cpu.nr_periods);
            EMIT(M_CFS_THROTTLED_PERIODS, s->cpu.nr_throttled);
            EMIT(M_CFS_THROTTLED_SECONDS, SECONDS(s->cpu.throttled_ns));
        }
    }
    if (s && s->cpu.has_spec) {
        EMIT(M_CPU_PERIOD, s->cpu.period_us);
        EMIT(M_CPU_SHARES, s->cpu.shares);
    }
    if (s && s->memory.valid) {
        const struct hull_cgroup_memory_stats *m = &s->memory;
        EMIT(M_MEM_USAGE, m->usage_bytes);
        EMIT(M_MEM_WORKING_SET, m->working_set_bytes);
        EMIT(M_MEM_RSS, m->rss_bytes);
        EMIT(M_MEM_CACHE, m->cache_bytes);
        if (m->has_swap)
            EMIT(M_MEM_SWAP, m->swap_usage_bytes);
        if (m->has_limit)
            EMIT(M_MEM_LIMIT, m->limit_bytes);
        if (m->has_oom_kills)
            EMIT(M_OOM_EVENTS, m->oom_kills);
        if (m->has_failcnt)
            EMIT(M_MEM_FAILCNT, m->failcnt);
        if (m->has_kernel)
            EMIT(M_MEM_KERNEL, m->kernel_bytes);
        EMIT(M_MEM_MAPPED_FILE, m->mapped_file_bytes);
        if (m->has_max_usage)
            EMIT(M_MEM_MAX_USAGE, m->max_usage_bytes);
        /* like cadvisor: 0 when there is no swap limit (or no swap accounting) */
        EMIT(M_SWAP_LIMIT, m->has_swap_limit ? m->swap_limit_bytes : 0);
        /* cadvisor's failure series: page faults (pgfault counts the minor ones too) for the
         * container and its hierarchy; cgroup's counters are hierarchical, so both are equal */
        const char *const types[] = {"pgfault", "pgmajfault"};
        const uint64_t faults[] = {m->page_faults, m->major_page_faults};
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                const char *const extra[] = {types[i], k ? "hierarchy" : "container", NULL};
                cb(opaque, &t[M_MEM_FAILURES], extra, faults[i]);
            }
    }
    if (s && s->pids.valid) {
        EMIT(M_THREADS, s->pids.current);
        EMIT(M_THREADS_MAX, s->pids.has_limit ? s->pids.limit : 0);
    }
    if (s && s->procs.valid) {
        EMIT(M_PROCESSES, s->procs.processes);
        EMIT(M_FILE_DESCRIPTORS, s->procs.fds);
        EMIT(M_SOCKETS, s->procs.sockets);
    }
    if (fs && fs->has_fs) {
        EMIT(M_FS_LIMIT, fs->fs_limit_bytes);
        EMIT(M_FS_INODES_TOTAL, fs->fs_inodes_total);
        EMIT(M_FS_INODES_FREE, fs->fs_inodes_free);
    }
    if (start_ns > 0)
        EMIT(M_START_TIME, (uint64_t)start_ns / UINT64_C(1000000000));
    if (s || fs || net)
        EMIT(M_LAST_SEEN, (uint64_t)hull_now_ns() / UINT64_C(1000000000));
    if (s && s->io.valid) {
        EMIT(M_FS_READS_BYTES, s->io.read_bytes);
        EMIT(M_FS_WRITES_BYTES, s->io.write_bytes);
        EMIT(M_FS_READS, s->io.read_ops);
        EMIT(M_FS_WRITES, s->io.write_ops);
    }
    if (fs)
        EMIT(M_FS_USAGE, fs->used_bytes);
    const struct hull_cgroup_psi *psi[3] = {s ? &s->cpu.psi : NULL, s ? &s->memory.psi : NULL,
                                            s ? &s->io.psi : NULL};
    for (int i = 0; i < 3; i++) {
        if (psi[i] == NULL || !psi[i]->valid)
            continue;
        EMIT(M_PSI_CPU_WAITING + 2 * i, SECONDS(psi[i]->some.total_ns));
        if (psi[i]->has_full)
            EMIT(M_PSI_CPU_STALLED + 2 * i, SECONDS(psi[i]->full.total_ns));
    }
#undef EMIT
    for (size_t i = 0; net && i < net->n; i++) {
        const struct stats_net_iface *f = &net->ifaces[i];
        if (strcmp(f->name, "lo") == 0)
            continue;
        const uint64_t v[] = {f->rx_bytes, f->rx_packets, f->rx_dropped, f->rx_errors,
                              f->tx_bytes, f->tx_packets, f->tx_dropped, f->tx_errors};
        const char *const extra[] = {f->name, NULL};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            cb(opaque, &t[M_NET_RX_BYTES + k], extra, v[k]);
    }
}
