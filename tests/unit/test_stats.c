/* Unit tests for server/stats/stats.c: CPU rates, directory usage (symlink loop, hard link,
 * sparse file, mount point, depth), the /proc/net/dev parser, a real network namespace with
 * ping traffic, and the metrics of cgroup usage read by the cgroup library from the fixture
 * trees (the readers themselves: test_cgroup_stats.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "server/stats/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char fixtures[PATH_MAX];

static void find_fixtures(void)
{
    hull_test_fixture_dir("cgroup-stats", fixtures, sizeof(fixtures));
}

/* The usage of a cgroup of a fixture tree, read by the cgroup library. */
static void read_fixture(const char *name, const char *path, struct hull_cgroup_stats *s)
{
    char root[PATH_MAX + 32];
    snprintf(root, sizeof(root), "%s/%s", fixtures, name);
    struct hull_cgroup_layout l;
    hull_error_t err = NULL;
    assert_hull_ok(hull_cgroup_layout_load(root, NULL, &l, &err), err);
    assert_hull_ok(hull_cgroup_stats_read_path(&l, path, s, &err), err);
    hull_cgroup_layout_clear(&l);
}

#define MiB (UINT64_C(1) << 20)

/* ---- CPU rate ----------------------------------------------------------------------------- */
static void test_nano_cores(void **state)
{
    struct stats_cpu_sample a = {.valid = true, .monotonic_ns = 1000000000, .usage_ns = 1000000000};
    struct stats_cpu_sample b = {.valid = true, .monotonic_ns = 3000000000, .usage_ns = 2000000000};
    uint64_t nc = 0;
    assert_true(stats_cpu_nano_cores(&a, &b, &nc));
    assert_int_equal(nc, 500000000); /* 1 s of CPU in 2 s: half a core */
    /* 4 cores busy for 10 s: no overflow in the arithmetic */
    struct stats_cpu_sample c = {.valid = true,
                                 .monotonic_ns = b.monotonic_ns + 10000000000LL,
                                 .usage_ns = b.usage_ns + 40000000000ULL};
    assert_true(stats_cpu_nano_cores(&b, &c, &nc));
    assert_int_equal(nc, 4000000000ULL);
    assert_false(stats_cpu_nano_cores(&b, &a, &nc)); /* went back */
    assert_false(stats_cpu_nano_cores(&b, &b, &nc)); /* no time passed */
    struct stats_cpu_sample none = {0};
    assert_false(stats_cpu_nano_cores(&none, &b, &nc));
    assert_false(stats_cpu_nano_cores(&a, &none, &nc));

    struct hull_cgroup_stats s = {0};
    s.monotonic_ns = 77;
    assert_false(stats_cpu_sample_of(&s).valid);
    s.cpu.valid = true;
    s.cpu.usage_ns = 99;
    struct stats_cpu_sample x = stats_cpu_sample_of(&s);
    assert_true(x.valid);
    assert_int_equal(x.monotonic_ns, 77);
    assert_int_equal(x.usage_ns, 99);
}

/* ---- directory usage ---------------------------------------------------------------------- */
struct tree {
    char dir[64];
    char mnt[128];
    bool mounted;
};

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    if (t == NULL)
        return 0;
    if (t->mounted)
        umount2(t->mnt, MNT_DETACH);
    hull_error_t err = NULL;
    hull_rm_rf(t->dir, &err);
    hull_error_free(&err);
    free(t);
    return 0;
}

static uint64_t blocks_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static void test_dir_usage(void **state)
{
    struct tree *t = xmalloc0(sizeof(*t));
    *state = t;
    {
        /* /var/tmp: a disk file system (block counts), not tmpfs */
        _cleanup_free_ char *d = hull_test_tmpdir_under("/var/tmp", "statsfs");
        assert_true(strlen(d) < sizeof(t->dir));
        strcpy(t->dir, d);
    }
    char p[256], q[256];
    hull_error_t err = NULL;

    static char data[20000];
    memset(data, 'x', sizeof(data));
    snprintf(p, sizeof(p), "%s/a", t->dir);
    hull_test_write_data(p, data, sizeof(data), 0644);
    snprintf(p, sizeof(p), "%s/sub", t->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    /* a hard link to a: counted once */
    snprintf(p, sizeof(p), "%s/a", t->dir);
    snprintf(q, sizeof(q), "%s/sub/b", t->dir);
    assert_int_equal(link(p, q), 0);
    /* symlink loops: never followed, each counts as one inode */
    snprintf(q, sizeof(q), "%s/sub/up", t->dir);
    assert_int_equal(symlink("..", q), 0);
    snprintf(q, sizeof(q), "%s/sub/self", t->dir);
    assert_int_equal(symlink("self", q), 0);
    /* a sparse file: 1 GiB apparent, one block allocated */
    snprintf(q, sizeof(q), "%s/sub/sparse", t->dir);
    int fd = open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "z", 1, (off_t)1 << 30), 1);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    /* the mount point used below, empty for now */
    snprintf(t->mnt, sizeof(t->mnt), "%s/mnt", t->dir);
    assert_int_equal(mkdir(t->mnt, 0755), 0);

    const char *names[] = {"", "a", "sub", "sub/up", "sub/self", "sub/sparse"};
    uint64_t want_bytes = 0, want_inodes = 6;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", t->dir, names[i]);
        want_bytes += blocks_of(p);
    }
    uint64_t mnt_bytes = blocks_of(t->mnt);
    want_bytes += mnt_bytes;
    want_inodes++;

    struct stats_fs_usage u;
    int r = stats_dir_usage(t->dir, &u, &err);
    if (r < 0)
        fail_msg("%s", hull_error_msg(&err));
    assert_int_equal(u.inodes_used, want_inodes);
    assert_int_equal(u.used_bytes, want_bytes);
    assert_true(u.used_bytes < 1 * MiB);
    assert_false(u.truncated);
    assert_true(u.timestamp_ns > 0);

    /* a mount point inside: its own inode counts, what is mounted there does not */
    if (mount("tmpfs", t->mnt, "tmpfs", 0, "size=4m") == 0) {
        t->mounted = true;
        snprintf(q, sizeof(q), "%s/big", t->mnt);
        hull_test_write_data(q, data, sizeof(data), 0644);
        assert_hull_ok(stats_dir_usage(t->dir, &u, &err), err);
        assert_int_equal(u.inodes_used, want_inodes);
        /* the tmpfs root replaces the directory under it */
        assert_int_equal(u.used_bytes, want_bytes - mnt_bytes + blocks_of(t->mnt));
        assert_int_equal(umount2(t->mnt, MNT_DETACH), 0);
        t->mounted = false;
        /* a bind mount of the same file system (same st_dev) is not entered either */
        snprintf(p, sizeof(p), "%s/sub", t->dir);
        if (mount(p, t->mnt, NULL, MS_BIND, NULL) == 0) {
            t->mounted = true;
            assert_hull_ok(stats_dir_usage(t->dir, &u, &err), err);
            assert_int_equal(u.inodes_used, want_inodes);
            umount2(t->mnt, MNT_DETACH);
            t->mounted = false;
        }
    }
    assert_hull_ok(stats_dir_usage(t->dir, &u, &err), err);
    assert_int_equal(u.inodes_used, want_inodes);
    assert_int_equal(u.used_bytes, want_bytes);

    /* deeper than the bound: truncated, the rest still counted */
    snprintf(p, sizeof(p), "%s/deep", t->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    for (int i = 0; i < STATS_FS_MAX_DEPTH + 5; i++) {
        assert_int_equal(mkdirat(dfd, "d", 0755), 0);
        int n = openat(dfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(n >= 0);
        close(dfd);
        dfd = n;
    }
    close(dfd);
    assert_hull_ok(stats_dir_usage(t->dir, &u, &err), err);
    assert_true(u.truncated);
    assert_true(u.inodes_used > want_inodes + STATS_FS_MAX_DEPTH);
    assert_true(u.inodes_used < want_inodes + STATS_FS_MAX_DEPTH + 5);
    uint64_t deep_inodes = u.inodes_used;

    /* one descriptor per level: the whole depth fits under a tight RLIMIT_NOFILE */
    int top = 0, nopen = 0;
    DIR *fds = opendir("/proc/self/fd");
    assert_non_null(fds);
    struct dirent *e;
    while ((e = readdir(fds)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        nopen++;
        if (atoi(e->d_name) > top)
            top = atoi(e->d_name);
    }
    closedir(fds);
    struct rlimit old, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    tight = old;
    tight.rlim_cur = (rlim_t)top + STATS_FS_MAX_DEPTH + 8;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    r = stats_dir_usage(t->dir, &u, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r, 0);
    assert_int_equal(u.inodes_used, deep_inodes);
    /* and with too few, the walk says it is incomplete */
    tight.rlim_cur = (rlim_t)nopen + 20; /* about 20 free descriptors (below any hole) */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    r = stats_dir_usage(t->dir, &u, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r, 0);
    assert_true(u.truncated);
    assert_true(u.inodes_used < deep_inodes);

    /* errors */
    snprintf(p, sizeof(p), "%s/missing", t->dir);
    assert_hull_fails(stats_dir_usage(p, &u, &err), ENOENT, err);
    snprintf(p, sizeof(p), "%s/sub/up", t->dir);
    assert_true(stats_dir_usage(p, &u, &err) < 0); /* a symlink is not followed */
    hull_error_free(&err);

    char *mp = NULL;
    assert_hull_ok(stats_fs_mountpoint(t->dir, &mp, &err), err);
    struct stat a, b;
    assert_int_equal(stat(mp, &a), 0);
    assert_int_equal(stat(t->dir, &b), 0);
    assert_true(a.st_dev == b.st_dev);
    free(mp);
    assert_hull_ok(stats_fs_mountpoint("/", &mp, &err), err);
    assert_string_equal(mp, "/");
    free(mp);
    assert_hull_ok(stats_fs_mountpoint("/proc/self/status", &mp, &err), err);
    assert_string_equal(mp, "/proc");
    free(mp);
}

/* ---- network -------------------------------------------------------------------------------- */
static const char NET_DEV[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:    1764      18    0    0    0     0          0         0     1764      18    0    "
    "0    0     0       0          0\n"
    "  eth0: 98765432   54321    3    4    0     0          0        12 12345678    4321    5    "
    "6    0     0       0          0\n"
    "veth-abcdef:18446744073709551615 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";

static void test_net_parse(void **state)
{
    struct stats_net n = {0};
    hull_error_t err = NULL;
    assert_hull_ok(stats_net_parse_dev(NET_DEV, &n, &err), err);
    assert_int_equal(n.n, 3);
    assert_true(n.timestamp_ns > 0);
    assert_string_equal(n.ifaces[0].name, "lo");
    assert_int_equal(n.ifaces[0].rx_bytes, 1764);
    assert_int_equal(n.ifaces[0].tx_packets, 18);
    assert_string_equal(n.ifaces[1].name, "eth0");
    assert_int_equal(n.ifaces[1].rx_bytes, 98765432);
    assert_int_equal(n.ifaces[1].rx_packets, 54321);
    assert_int_equal(n.ifaces[1].rx_errors, 3);
    assert_int_equal(n.ifaces[1].rx_dropped, 4);
    assert_int_equal(n.ifaces[1].tx_bytes, 12345678);
    assert_int_equal(n.ifaces[1].tx_packets, 4321);
    assert_int_equal(n.ifaces[1].tx_errors, 5);
    assert_int_equal(n.ifaces[1].tx_dropped, 6);
    assert_string_equal(n.ifaces[2].name, "veth-abcdef"); /* no space after the colon */
    assert_int_equal(n.ifaces[2].rx_bytes, UINT64_MAX);
    assert_int_equal(n.ifaces[2].tx_bytes, 7);

    assert_string_equal(stats_net_default(&n, "eth0")->name, "eth0");
    assert_string_equal(stats_net_default(&n, "eth9")->name, "eth0"); /* first non-lo */
    assert_string_equal(stats_net_default(&n, NULL)->name, "eth0");
    stats_net_clear(&n);
    assert_int_equal(n.n, 0);

    assert_hull_ok(stats_net_parse_dev("", &n, &err), err);
    assert_int_equal(n.n, 0);
    const char *lo_only = "    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
    assert_hull_ok(stats_net_parse_dev(lo_only, &n, &err), err);
    assert_null(stats_net_default(&n, "eth0"));
    assert_int_equal(n.ifaces[0].tx_bytes, 9);
    assert_int_equal(n.ifaces[0].tx_errors, 11);
    stats_net_clear(&n);

    assert_hull_fails(stats_net_parse_dev("  eth0: 1 2 3\n", &n, &err), EINVAL, err);
    stats_net_clear(&n);
    assert_hull_fails(stats_net_parse_dev("  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", &n, &err),
                      EINVAL, err);
    stats_net_clear(&n);
}

/* ---- metrics ------------------------------------------------------------------------------- */
struct emitted {
    struct {
        const struct stats_metric_desc *d;
        char iface[16];
        uint64_t v;
    } m[96];
    size_t n;
};

static void collect_metric(void *opaque, const struct stats_metric_desc *d,
                           const char *const *extra, uint64_t value)
{
    struct emitted *e = opaque;
    assert_true(e->n < 96);
    /* as many extra label values as the descriptor has extra keys */
    size_t n_extra = 0;
    while (extra && extra[n_extra])
        n_extra++;
    assert_int_equal(n_extra, d->n_label_keys - 3);
    const char *iface = d->per_interface ? extra[0] : NULL;
    if (strcmp(d->name, "container_memory_failures_total") == 0) {
        if (strcmp(extra[0], "pgmajfault") == 0 && strcmp(extra[1], "container") == 0)
            iface = "pgmajfault"; /* recorded under its type, container scope only */
        else if (strcmp(extra[0], "pgfault") == 0 && strcmp(extra[1], "container") == 0)
            iface = "pgfault";
        else
            return;
    }
    e->m[e->n].d = d;
    snprintf(e->m[e->n].iface, sizeof(e->m[0].iface), "%s", iface ? iface : "");
    e->m[e->n].v = value;
    e->n++;
}

static bool metric(const struct emitted *e, const char *name, const char *iface, uint64_t *v)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->m[i].d->name, name) == 0 && strcmp(e->m[i].iface, iface ? iface : "") == 0) {
            *v = e->m[i].v;
            return true;
        }
    return false;
}

static uint64_t metric_value(const struct emitted *e, const char *name, const char *iface)
{
    uint64_t v = 0;
    if (!metric(e, name, iface, &v))
        fail_msg("metric %s%s%s not emitted", name, iface ? " " : "", iface ? iface : "");
    return v;
}

static void test_metrics(void **state)
{
    size_t n = 0;
    const struct stats_metric_desc *t = stats_metric_descriptors(&n);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].name);
        assert_non_null(t[i].help);
        assert_int_equal(strncmp(t[i].name, "container_", 10), 0);
        assert_true(t[i].type == STATS_METRIC_COUNTER || t[i].type == STATS_METRIC_GAUGE);
        /* counters end in _total, as Prometheus wants */
        size_t len = strlen(t[i].name);
        /* (cadvisor's names: container_memory_failcnt is a counter without the suffix,
         * container_fs_inodes_total a gauge with it) */
        if (strcmp(t[i].name, "container_memory_failcnt") != 0 &&
            strcmp(t[i].name, "container_fs_inodes_total") != 0)
            assert_true((t[i].type == STATS_METRIC_COUNTER) ==
                        (len > 6 && strcmp(t[i].name + len - 6, "_total") == 0));
        size_t keys = 0;
        while (t[i].label_keys[keys])
            keys++;
        assert_int_equal(t[i].n_label_keys, keys);
        assert_true(t[i].n_label_keys >= 3);
        if (t[i].per_interface)
            assert_int_equal(t[i].n_label_keys, 4);
        assert_null(t[i].label_keys[t[i].n_label_keys]);
        assert_string_equal(t[i].label_keys[0], "id");
        if (t[i].per_interface)
            assert_string_equal(t[i].label_keys[3], "interface");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t[i].name, t[j].name);
    }

    struct hull_cgroup_stats s;
    read_fixture("v2", "/hull/pod1/hull-a", &s);
    struct stats_fs_usage fs = {.used_bytes = 12345, .inodes_used = 7};
    struct stats_net net = {0};
    hull_error_t err = NULL;
    assert_hull_ok(stats_net_parse_dev(NET_DEV, &net, &err), err);

    struct emitted *e = xmalloc0(sizeof(*e));
    stats_metrics_emit(&s, &fs, &net, 1700000000123456789, collect_metric, e);
    assert_int_equal(metric_value(e, "container_cpu_usage_seconds_total", NULL), 5);
    assert_int_equal(metric_value(e, "container_cpu_user_seconds_total", NULL), 3);
    assert_int_equal(metric_value(e, "container_cpu_system_seconds_total", NULL), 2);
    assert_int_equal(metric_value(e, "container_cpu_cfs_periods_total", NULL), 10);
    assert_int_equal(metric_value(e, "container_cpu_cfs_throttled_periods_total", NULL), 2);
    assert_int_equal(metric_value(e, "container_cpu_cfs_throttled_seconds_total", NULL), 0);
    assert_int_equal(metric_value(e, "container_memory_usage_bytes", NULL), 100 * MiB);
    assert_int_equal(metric_value(e, "container_memory_working_set_bytes", NULL), 80 * MiB);
    assert_int_equal(metric_value(e, "container_memory_rss", NULL), 50 * MiB);
    assert_int_equal(metric_value(e, "container_memory_cache", NULL), 40 * MiB);
    assert_int_equal(metric_value(e, "container_memory_swap", NULL), 1 * MiB);
    assert_int_equal(metric_value(e, "container_spec_memory_limit_bytes", NULL), 256 * MiB);
    assert_int_equal(metric_value(e, "container_oom_events_total", NULL), 1);
    assert_int_equal(metric_value(e, "container_fs_reads_bytes_total", NULL), 5096);
    assert_int_equal(metric_value(e, "container_fs_writes_bytes_total", NULL), 8192);
    assert_int_equal(metric_value(e, "container_fs_reads_total", NULL), 4);
    assert_int_equal(metric_value(e, "container_fs_writes_total", NULL), 2);
    assert_int_equal(metric_value(e, "container_fs_usage_bytes", NULL), 12345);
    metric_value(e, "container_pressure_cpu_waiting_seconds_total", NULL);
    metric_value(e, "container_pressure_io_stalled_seconds_total", NULL);
    assert_int_equal(metric_value(e, "container_network_receive_bytes_total", "eth0"), 98765432);
    assert_int_equal(metric_value(e, "container_network_receive_errors_total", "eth0"), 3);
    assert_int_equal(metric_value(e, "container_network_receive_packets_dropped_total", "eth0"), 4);
    assert_int_equal(metric_value(e, "container_network_transmit_bytes_total", "eth0"), 12345678);
    assert_int_equal(metric_value(e, "container_network_transmit_packets_total", "eth0"), 4321);
    assert_int_equal(metric_value(e, "container_network_transmit_errors_total", "eth0"), 5);
    assert_int_equal(metric_value(e, "container_network_transmit_packets_dropped_total", "eth0"),
                     6);
    assert_int_equal(metric_value(e, "container_network_transmit_bytes_total", "veth-abcdef"), 7);
    uint64_t v;
    assert_false(metric(e, "container_network_receive_bytes_total", "lo", &v));
    assert_int_equal(metric_value(e, "container_start_time_seconds", NULL), 1700000000);
    assert_true(metric_value(e, "container_last_seen", NULL) >= 1700000000);
    metric_value(e, "container_memory_mapped_file", NULL);
    metric_value(e, "container_spec_memory_swap_limit_bytes", NULL);
    metric_value(e, "container_threads", NULL);
    metric_value(e, "container_threads_max", NULL);
    metric_value(e, "container_memory_failures_total", "pgfault");
    metric_value(e, "container_memory_failures_total", "pgmajfault");
    /* every metric of the table is emitted but the file-system size (no statvfs in this
     * sample), the per-device blkio series and what the fixture has no file for */
    static const char *const absent[] = {
        "container_memory_max_usage_bytes",  "container_spec_cpu_period",
        "container_spec_cpu_shares",         "container_fs_limit_bytes",
        "container_fs_inodes_total",         "container_fs_inodes_free",
        "container_blkio_device_usage_total"};
    for (size_t i = 0; i < n; i++) {
        bool seen = false, expected_absent = false;
        for (size_t k = 0; k < e->n; k++)
            seen = seen || e->m[k].d == &t[i];
        for (size_t k = 0; k < sizeof(absent) / sizeof(absent[0]); k++)
            expected_absent = expected_absent || strcmp(t[i].name, absent[k]) == 0;
        if (seen == expected_absent)
            fail_msg("%s: %s", t[i].name, seen ? "emitted" : "not emitted");
    }
    /* the file system of the writable layer, when statvfs worked */
    memset(e, 0, sizeof(*e));
    fs.has_fs = true;
    fs.fs_limit_bytes = 10 * MiB;
    fs.fs_inodes_total = 1000;
    fs.fs_inodes_free = 900;
    stats_metrics_emit(NULL, &fs, NULL, 0, collect_metric, e);
    assert_int_equal(metric_value(e, "container_fs_limit_bytes", NULL), 10 * MiB);
    assert_int_equal(metric_value(e, "container_fs_inodes_total", NULL), 1000);
    assert_int_equal(metric_value(e, "container_fs_inodes_free", NULL), 900);
    assert_false(metric(e, "container_start_time_seconds", NULL, &v));

    /* an unlimited container without swap, io or PSI: those metrics are left out */
    memset(e, 0, sizeof(*e));
    read_fixture("v1", "/hull/pod1/hull-b", &s);
    stats_metrics_emit(&s, NULL, NULL, 0, collect_metric, e);
    assert_false(metric(e, "container_spec_memory_limit_bytes", NULL, &v));
    assert_false(metric(e, "container_memory_swap", NULL, &v));
    assert_false(metric(e, "container_oom_events_total", NULL, &v));
    assert_false(metric(e, "container_fs_reads_total", NULL, &v));
    assert_false(metric(e, "container_fs_usage_bytes", NULL, &v));
    assert_false(metric(e, "container_pressure_cpu_waiting_seconds_total", NULL, &v));
    assert_false(metric(e, "container_cpu_cfs_periods_total", NULL, &v));
    assert_int_equal(metric_value(e, "container_memory_working_set_bytes", NULL), 0);
    assert_int_equal(metric_value(e, "container_cpu_usage_seconds_total", NULL), 2);

    memset(e, 0, sizeof(*e));
    stats_metrics_emit(NULL, NULL, NULL, 0, collect_metric, e);
    assert_int_equal(e->n, 0);
    free(e);
    stats_net_clear(&net);
}

struct netns {
    char name[64];
    bool added;
};

static int netns_teardown(void **state)
{
    struct netns *ns = *state;
    if (ns == NULL)
        return 0;
    if (ns->added) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns->name);
        if (system(cmd) != 0)
            print_message("could not delete netns %s\n", ns->name);
    }
    free(ns);
    return 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int r = system(cmd);
    free(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

static const struct stats_net_iface *iface(const struct stats_net *n, const char *name)
{
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->ifaces[i].name, name) == 0)
            return &n->ifaces[i];
    return NULL;
}

static void test_netns_real(void **state)
{
    struct netns *ns = xmalloc0(sizeof(*ns));
    *state = ns;
    snprintf(ns->name, sizeof(ns->name), "hullstats-%d", (int)getpid());
    if (geteuid() != 0 || sh("ip netns add %s 2>/dev/null", ns->name) != 0)
        skip();
    ns->added = true;
    assert_int_equal(sh("ip -n %s link set lo up", ns->name), 0);
    assert_int_equal(sh("ip -n %s link add veth0 type veth peer name veth1", ns->name), 0);

    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns->name);
    char self_ns[64] = "", self_ns_after[64] = "";
    assert_true(readlink("/proc/thread-self/ns/net", self_ns, sizeof(self_ns) - 1) > 0);

    struct stats_net before = {0}, after = {0};
    hull_error_t err = NULL;
    int r = stats_net_read_netns(path, &before, &err);
    if (r < 0)
        fail_msg("%s", hull_error_msg(&err));
    assert_int_equal(before.n, 3); /* lo, veth0, veth1: none of the host's */
    assert_non_null(iface(&before, "lo"));
    assert_non_null(iface(&before, "veth0"));
    assert_non_null(iface(&before, "veth1"));
    /* no eth0: the first that is not lo (/proc/net/dev order) */
    assert_int_equal(strncmp(stats_net_default(&before, "eth0")->name, "veth", 4), 0);
    assert_string_equal(stats_net_default(&before, "veth0")->name, "veth0");

    assert_int_equal(
        sh("ip netns exec %s busybox ping -c 3 -i 0.2 -W 2 127.0.0.1 >/dev/null", ns->name), 0);
    assert_hull_ok(stats_net_read_netns(path, &after, &err), err);
    const struct stats_net_iface *b = iface(&before, "lo"), *a = iface(&after, "lo");
    assert_non_null(a);
    /* 3 requests + 3 replies, all through lo: 84 bytes of IP each */
    assert_true(a->rx_packets - b->rx_packets >= 6);
    assert_true(a->tx_packets - b->tx_packets >= 6);
    assert_true(a->rx_bytes - b->rx_bytes >= 6 * 84);
    assert_true(a->tx_bytes - b->tx_bytes >= 6 * 84);
    assert_int_equal(a->rx_errors, 0);
    assert_int_equal(a->tx_errors, 0);
    print_message("netns %s lo: rx %llu B %llu pkts, tx %llu B\n", ns->name,
                  (unsigned long long)a->rx_bytes, (unsigned long long)a->rx_packets,
                  (unsigned long long)a->tx_bytes);

    /* the same numbers as a process inside sees */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /proc/net/dev", ns->name);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    assert_int_equal(pclose(f), 0);
    struct stats_net inside = {0};
    assert_hull_ok(stats_net_parse_dev(text, &inside, &err), err);
    assert_int_equal(inside.n, 3);
    assert_int_equal(iface(&inside, "lo")->rx_bytes, a->rx_bytes);
    stats_net_clear(&inside);

    /* the calling thread never left its own netns */
    assert_true(readlink("/proc/thread-self/ns/net", self_ns_after, sizeof(self_ns_after) - 1) > 0);
    assert_string_equal(self_ns, self_ns_after);

    /* by pid: our own netns (the host's) */
    struct stats_net host = {0};
    assert_hull_ok(stats_net_read_pid(getpid(), &host, &err), err);
    assert_non_null(iface(&host, "lo"));
    assert_null(iface(&host, "veth0"));
    stats_net_clear(&host);
    assert_true(stats_net_read_pid(0x7ffffff0, &host, &err) < 0);
    hull_error_free(&err);

    stats_net_clear(&before);
    stats_net_clear(&after);

    /* not a namespace / missing */
    assert_hull_fails(stats_net_read_netns("/nonexistent/ns", &after, &err), ENOENT, err);
    assert_true(stats_net_read_netns("/proc/self/status", &after, &err) < 0);
    assert_non_null(strstr(hull_error_msg(&err), "/proc/self/status"));
    hull_error_free(&err);
}

int main(void)
{
    find_fixtures();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nano_cores),
        cmocka_unit_test_teardown(test_dir_usage, tree_teardown),
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test_teardown(test_netns_real, netns_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
