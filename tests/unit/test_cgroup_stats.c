/* Unit tests for the cgroup library's usage readers (common/cgroup_stats*.c,
 * hull_cgroup_stats_read): the v1/v2/hybrid fixture trees of tests/fixtures/cgroup-stats with
 * exact expected values, trees built in a temp dir from real kernel files (v1, v2, hybrid; "max",
 * missing files, missing controllers, PSI absent), the number and PSI parsers, systemd-form
 * paths, layouts from mountinfo texts, and a real cgroup on this host with a CPU- and
 * memory-burning child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "common/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char fixtures[PATH_MAX];

static void find_fixtures(void)
{
    hull_test_fixture_dir("cgroup-stats", fixtures, sizeof(fixtures));
}

/* A layout guessed from a tree's files (no cgroup is mounted there). */
static struct hull_cgroup_layout *open_root(const char *root, int mode)
{
    struct hull_cgroup_layout *l = xmalloc0(sizeof(*l));
    hull_error_t err = NULL;
    /* no mountinfo: the layout is guessed from the files */
    int r = hull_cgroup_layout_load(root, NULL, l, &err);
    if (r < 0)
        fail_msg("open %s: %s", root, hull_error_msg(&err));
    assert_int_equal(l->mode, mode);
    /* this process's mountinfo has no cgroup mount there either: the files decide */
    struct hull_cgroup_layout l2;
    assert_hull_ok(hull_cgroup_layout_open(root, &l2, &err), err);
    assert_int_equal(l2.mode, mode);
    hull_cgroup_layout_clear(&l2);
    return l;
}

static struct hull_cgroup_layout *open_fixture(const char *name, int mode)
{
    char root[PATH_MAX + 32];
    snprintf(root, sizeof(root), "%s/%s", fixtures, name);
    return open_root(root, mode);
}

static void layout_close(struct hull_cgroup_layout *l)
{
    if (l)
        hull_cgroup_layout_clear(l);
    free(l);
}

static void read_ok(const struct hull_cgroup_layout *l, const char *path,
                    struct hull_cgroup_stats *s)
{
    hull_error_t err = NULL;
    int r = hull_cgroup_stats_read_path(l, path, s, &err);
    if (r < 0)
        fail_msg("read %s: %s", path, hull_error_msg(&err));
    assert_true(s->timestamp_ns > 0);
    assert_true(s->monotonic_ns > 0);
}

/* The directory of controller for cgroups_path, as the readers resolve it; caller frees. */
static char *dir_for(const struct hull_cgroup_layout *l, const char *controller,
                     const char *cgroups_path)
{
    struct hull_cgroup cg;
    hull_error_t err = NULL;
    assert_hull_ok(hull_cgroup_resolve(l, NULL, cgroups_path, NULL, &cg, &err), err);
    const struct hull_cgroup_dir *d = hull_cgroup_find_dir(&cg, controller);
    char *out = d ? xstrdup(d->path) : NULL;
    hull_cgroup_clear(&cg);
    return out;
}

#define MiB (UINT64_C(1) << 20)

/* ---- v1 fixture ---------------------------------------------------------------------------- */
static void test_v1_limited(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v1", HULL_CGROUP_V1);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/pod1/hull-a", &s);

    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 5000000000ULL);
    assert_true(s.cpu.has_user_system);
    assert_int_equal(s.cpu.user_ns, 3000000000ULL);
    assert_int_equal(s.cpu.system_ns, 2000000000ULL);
    assert_true(s.cpu.has_throttling);
    assert_int_equal(s.cpu.nr_periods, 10);
    assert_int_equal(s.cpu.nr_throttled, 2);
    assert_int_equal(s.cpu.throttled_ns, 1500000);
    assert_false(s.cpu.psi.valid);

    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 100 * MiB);
    assert_int_equal(s.memory.inactive_file_bytes, 20 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 80 * MiB);
    assert_int_equal(s.memory.rss_bytes, 50 * MiB);
    assert_int_equal(s.memory.cache_bytes, 40 * MiB);
    assert_int_equal(s.memory.page_faults, 12345);
    assert_int_equal(s.memory.major_page_faults, 67);
    assert_true(s.memory.has_limit);
    assert_int_equal(s.memory.limit_bytes, 256 * MiB);
    assert_int_equal(s.memory.available_bytes, 176 * MiB);
    assert_true(s.memory.has_oom_kills);
    assert_int_equal(s.memory.oom_kills, 2);
    assert_true(s.memory.has_swap);
    assert_int_equal(s.memory.swap_usage_bytes, 5 * MiB);
    assert_true(s.memory.has_swap_limit);
    assert_int_equal(s.memory.swap_limit_bytes, 256 * MiB);
    assert_int_equal(s.memory.swap_available_bytes, 251 * MiB);

    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 7);
    assert_true(s.pids.has_limit);
    assert_int_equal(s.pids.limit, 100);

    /* the _recursive files win over the plain ones */
    assert_true(s.io.valid);
    assert_int_equal(s.io.read_bytes, 5096);
    assert_int_equal(s.io.write_bytes, 8192);
    assert_int_equal(s.io.read_ops, 4);
    assert_int_equal(s.io.write_ops, 2);
    layout_close(cg);
}

static void test_v1_unlimited_and_old_kernel(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v1", HULL_CGROUP_V1);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/pod1/hull-b", &s);

    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 2000000000ULL);
    /* from cpuacct.stat ticks */
    assert_true(s.cpu.has_user_system);
    long hz = sysconf(_SC_CLK_TCK);
    assert_int_equal(s.cpu.user_ns, 150 * (1000000000ULL / (uint64_t)hz));
    assert_int_equal(s.cpu.system_ns, 50 * (1000000000ULL / (uint64_t)hz));
    assert_false(s.cpu.has_throttling);

    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 4 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 0); /* inactive_file 8 MiB > usage: floor */
    assert_false(s.memory.has_limit);                /* 9223372036854771712 */
    assert_int_equal(s.memory.available_bytes, 0);
    assert_false(s.memory.has_oom_kills);
    assert_false(s.memory.has_swap);
    assert_false(s.memory.has_swap_limit);

    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 1);
    assert_false(s.pids.has_limit); /* "max" */
    assert_false(s.io.valid);       /* no blkio cgroup */
    layout_close(cg);
}

static void test_v1_pod(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v1", HULL_CGROUP_V1);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/pod1", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 9000000000ULL);
    assert_int_equal(s.cpu.user_ns, 6000000000ULL);
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 200 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 170 * MiB);
    assert_false(s.memory.has_limit);
    assert_int_equal(s.memory.oom_kills, 2);
    /* no pids.current: processes counted from cgroup.procs of the pod and its containers */
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 3);
    assert_false(s.pids.has_limit);
    layout_close(cg);
}

static void test_v1_paths_and_errors(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v1", HULL_CGROUP_V1);
    hull_error_t err = NULL;
    struct hull_cgroup_stats s;
    assert_int_equal(hull_cgroup_stats_read_path(cg, "/hull/gone", &s, &err), -ENOENT);
    assert_non_null(strstr(hull_error_msg(&err), "/hull/gone"));
    hull_error_free(&err);
    assert_hull_fails(hull_cgroup_stats_read_path(cg, "hull/pod1", &s, &err), EINVAL, err);
    assert_hull_fails(hull_cgroup_stats_read_path(cg, "/hull/../../etc", &s, &err), EINVAL, err);
    assert_hull_fails(hull_cgroup_stats_read_path(cg, NULL, &s, &err), EINVAL, err);

    char *d = dir_for(cg, "memory", "/hull/pod1");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/v1/memory/hull/pod1", fixtures);
    assert_string_equal(d, want);
    free(d);
    /* cpu and cpuacct are symlinks to the co-mounted directory: one hierarchy, reached through
     * its directory (as through its mount point on a host) */
    d = dir_for(cg, "cpuacct", "/x");
    snprintf(want, sizeof(want), "%s/v1/cpu,cpuacct/x", fixtures);
    assert_string_equal(d, want);
    free(d);
    d = dir_for(cg, "cpu", "/x");
    assert_string_equal(d, want);
    free(d);
    assert_null(dir_for(cg, "unified", "/x"));
    assert_null(dir_for(cg, "hugetlb", "/x"));
    layout_close(cg);
}

/* ---- v2 fixture ---------------------------------------------------------------------------- */
static void test_v2_limited(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v2", HULL_CGROUP_V2);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/pod1/hull-a", &s);

    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 5000000000ULL);
    assert_int_equal(s.cpu.user_ns, 3000000000ULL);
    assert_int_equal(s.cpu.system_ns, 2000000000ULL);
    assert_true(s.cpu.has_throttling);
    assert_int_equal(s.cpu.nr_periods, 10);
    assert_int_equal(s.cpu.nr_throttled, 2);
    assert_int_equal(s.cpu.throttled_ns, 1500000);
    assert_true(s.cpu.psi.valid);
    assert_true(s.cpu.psi.has_full);
    assert_int_equal(s.cpu.psi.some.total_ns, 123456000);
    assert_true(s.cpu.psi.some.avg10 > 1.49 && s.cpu.psi.some.avg10 < 1.51);
    assert_true(s.cpu.psi.some.avg60 > 0.74 && s.cpu.psi.some.avg60 < 0.76);
    assert_true(s.cpu.psi.some.avg300 > 0.24 && s.cpu.psi.some.avg300 < 0.26);
    assert_int_equal(s.cpu.psi.full.total_ns, 6543000);
    assert_true(s.memory.psi.valid);
    assert_int_equal(s.memory.psi.full.total_ns, 5000);
    assert_true(s.io.psi.valid);

    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 100 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 80 * MiB);
    assert_int_equal(s.memory.rss_bytes, 50 * MiB); /* anon */
    assert_int_equal(s.memory.cache_bytes, 40 * MiB);
    assert_int_equal(s.memory.page_faults, 12345);
    assert_int_equal(s.memory.major_page_faults, 67);
    assert_true(s.memory.has_limit);
    assert_int_equal(s.memory.limit_bytes, 256 * MiB);
    assert_int_equal(s.memory.available_bytes, 176 * MiB);
    assert_true(s.memory.has_oom_kills);
    assert_int_equal(s.memory.oom_kills, 1);
    assert_true(s.memory.has_swap);
    assert_int_equal(s.memory.swap_usage_bytes, 1 * MiB);
    assert_true(s.memory.has_swap_limit);
    assert_int_equal(s.memory.swap_limit_bytes, 4 * MiB);
    assert_int_equal(s.memory.swap_available_bytes, 3 * MiB);

    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 7);
    assert_int_equal(s.pids.limit, 100);

    assert_true(s.io.valid);
    assert_int_equal(s.io.read_bytes, 5096);
    assert_int_equal(s.io.write_bytes, 8192);
    assert_int_equal(s.io.read_ops, 4);
    assert_int_equal(s.io.write_ops, 2);
    layout_close(cg);
}

static void test_v2_unlimited(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("v2", HULL_CGROUP_V2);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/pod1/hull-b", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 2000000000ULL);
    assert_false(s.cpu.has_throttling); /* no cpu controller: only the core stats */
    assert_true(s.cpu.psi.valid);
    assert_false(s.cpu.psi.has_full);
    assert_int_equal(s.cpu.psi.some.total_ns, 42000);
    assert_false(s.memory.psi.valid);

    assert_true(s.memory.valid);
    assert_int_equal(s.memory.working_set_bytes, 0); /* floor */
    assert_false(s.memory.has_limit);                /* "max" */
    assert_true(s.memory.has_oom_kills);
    assert_int_equal(s.memory.oom_kills, 0);
    assert_false(s.memory.has_swap);

    assert_true(s.pids.valid); /* counted from cgroup.procs */
    assert_int_equal(s.pids.current, 1);
    assert_false(s.pids.has_limit);
    assert_false(s.io.valid);

    read_ok(cg, "/hull/pod1", &s);
    assert_int_equal(s.cpu.usage_ns, 9000000000ULL);
    assert_int_equal(s.memory.working_set_bytes, 170 * MiB);
    assert_false(s.memory.has_limit);
    assert_int_equal(s.memory.oom_kills, 3);
    assert_int_equal(s.pids.current, 3);

    /* the root cgroup has no memory.current: memory invalid, the rest still read */
    read_ok(cg, "/", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 999000);
    assert_false(s.memory.valid);

    hull_error_t err = NULL;
    assert_hull_fails(hull_cgroup_stats_read_path(cg, "/hull/nope", &s, &err), ENOENT, err);
    layout_close(cg);
}

static void test_hybrid(void **state)
{
    struct hull_cgroup_layout *cg = open_fixture("hybrid", HULL_CGROUP_HYBRID);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/c", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 1234);
    assert_false(s.cpu.has_user_system);
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 1 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 1 * MiB);
    assert_false(s.memory.has_limit);
    assert_true(s.cpu.psi.valid); /* from unified/ */
    assert_int_equal(s.cpu.psi.some.total_ns, 777000);
    assert_true(s.memory.psi.valid);
    assert_int_equal(s.memory.psi.full.total_ns, 2000);
    assert_false(s.io.psi.valid);
    /* no pids controller: counted in the first hierarchy that has the cgroup (none listed) */
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 0);
    assert_false(s.io.valid);
    layout_close(cg);
}

/* hybrid where cpu, io and pids moved to cgroup2: their usage comes from unified/, memory from
 * v1 */
static void test_hybrid_mixed(void **state)
{
    (void)state;
    struct hull_cgroup_layout *cg = open_fixture("hybrid-mixed", HULL_CGROUP_HYBRID);
    struct hull_cgroup_stats s;
    read_ok(cg, "/hull/c", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 4000000);
    assert_true(s.cpu.has_user_system);
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 1 * MiB);
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 5);
    assert_true(s.pids.has_limit);
    assert_int_equal(s.pids.limit, 50);
    assert_true(s.io.valid);
    assert_int_equal(s.io.read_bytes, 100);
    assert_int_equal(s.io.write_bytes, 200);
    assert_true(s.io.psi.valid);
    assert_int_equal(s.io.psi.full.total_ns, 6000);
    layout_close(cg);
}

/* ---- layout detection from mountinfo ------------------------------------------------------ */
static const char MI_HYBRID[] =
    "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 /kube /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "37 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    "42 31 0:39 / /other/cgroup/blkio rw - cgroup cgroup rw,blkio\n";

static const char MI_V2[] = "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
                            "30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 "
                            "rw,nsdelegate,memory_recursiveprot\n";

static void test_mountinfo_layouts(void **state)
{
    hull_error_t err = NULL;
    struct hull_cgroup_layout *cg = xmalloc0(sizeof(*cg));
    assert_hull_ok(hull_cgroup_layout_load(NULL, MI_HYBRID, cg, &err), err);
    assert_int_equal(cg->mode, HULL_CGROUP_HYBRID);
    assert_string_equal(hull_cgroup_mode_name(cg->mode), "hybrid");
    char *d = dir_for(cg, "cpuacct", "/hull/p/hull-c");
    assert_string_equal(d, "/sys/fs/cgroup/cpu,cpuacct/hull/p/hull-c");
    free(d);
    d = dir_for(cg, "cpu", "/hull/p");
    assert_string_equal(d, "/sys/fs/cgroup/cpu,cpuacct/hull/p");
    free(d);
    /* the memory mount shows only /kube: paths below it are relative to that root */
    d = dir_for(cg, "memory", "/kube/burstable/pod1");
    assert_string_equal(d, "/sys/fs/cgroup/memory/burstable/pod1");
    free(d);
    d = dir_for(cg, "unified", "/hull/p");
    assert_string_equal(d, "/sys/fs/cgroup/unified/hull/p");
    free(d);
    d = dir_for(cg, "name=systemd", "/");
    assert_string_equal(d, "/sys/fs/cgroup/systemd/");
    free(d);
    assert_null(dir_for(cg, "blkio", "/x")); /* mounted outside the root */
    assert_null(dir_for(cg, "xattr", "/x"));
    assert_null(dir_for(cg, "rw", "/x"));
    layout_close(cg);

    /* a root with a trailing slash; the v1-only view of the same host */
    const char *v1only =
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    cg = xmalloc0(sizeof(*cg));
    assert_hull_ok(hull_cgroup_layout_load("/sys/fs/cgroup/", v1only, cg, &err), err);
    assert_int_equal(cg->mode, HULL_CGROUP_V1);
    layout_close(cg);

    cg = xmalloc0(sizeof(*cg));
    assert_hull_ok(hull_cgroup_layout_load(NULL, MI_V2, cg, &err), err);
    assert_int_equal(cg->mode, HULL_CGROUP_V2);
    d = dir_for(cg, "unified", "/hull/p/hull-c");
    assert_string_equal(d, "/sys/fs/cgroup/hull/p/hull-c");
    free(d);
    layout_close(cg);

    /* nothing mounted and nothing on disk */
    struct hull_cgroup_layout none;
    assert_hull_fails(hull_cgroup_layout_load("/nonexistent-hull", MI_V2, &none, &err), ENOENT,
                      err);
}

/* ---- a real cgroup on this host ------------------------------------------------------------ */
struct live {
    struct hull_cgroup_layout *cg;
    char path[64];
    char *dirs[8];
    size_t ndirs;
    pid_t child;
    int go[2];
};

static int live_teardown(void **state)
{
    struct live *l = *state;
    if (l == NULL)
        return 0;
    if (l->child > 0) {
        kill(l->child, SIGKILL);
        waitpid(l->child, NULL, 0);
    }
    for (size_t i = 0; i < l->ndirs; i++) {
        for (int tries = 0; tries < 50 && rmdir(l->dirs[i]) < 0 && errno == EBUSY; tries++)
            usleep(20000);
        free(l->dirs[i]);
    }
    if (l->go[0] >= 0)
        close(l->go[0]);
    if (l->go[1] >= 0)
        close(l->go[1]);
    layout_close(l->cg);
    free(l);
    *state = NULL;
    return 0;
}

static void burn(int go, pid_t parent)
{
    /* never outlive the test */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    alarm(30);
    char c;
    if (read(go, &c, 1) != 1)
        _exit(1);
    size_t sz = 32 * MiB;
    volatile char *m = malloc(sz);
    if (m == NULL)
        _exit(1);
    for (size_t i = 0; i < sz; i += 4096)
        m[i] = 1;
    volatile uint64_t x = 0;
    for (;;)
        x++;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* root: NULL for the host's layout, or a cgroup2 mount to use as a v2 root */
static void live_run(void **state, const char *root)
{
    struct live *l = xmalloc0(sizeof(*l));
    l->go[0] = l->go[1] = -1;
    *state = l;
    hull_error_t err = NULL;
    l->cg = xmalloc0(sizeof(*l->cg));
    if (geteuid() != 0 || hull_cgroup_layout_open(root, l->cg, &err) < 0) {
        hull_error_free(&err);
        free(l->cg);
        l->cg = NULL;
        skip();
    }
    if (root && l->cg->mode != HULL_CGROUP_V2)
        skip();
    snprintf(l->path, sizeof(l->path), "/hull-statstest-%d", (int)getpid());
    /* hybrid: the (controller-less) unified tree too, as runc does, for PSI */
    const char *ctrls_v1[] = {"memory", "cpu", "cpuacct", "pids", "unified"};
    const char *ctrls_v2[] = {"unified"};
    bool v2 = l->cg->mode == HULL_CGROUP_V2;
    const char **ctrls = v2 ? ctrls_v2 : ctrls_v1;
    size_t nc = v2 ? 1 : l->cg->mode == HULL_CGROUP_HYBRID ? 5 : 4;
    for (size_t i = 0; i < nc; i++) {
        char *d = dir_for(l->cg, ctrls[i], l->path);
        if (d == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < l->ndirs; j++)
            dup = dup || strcmp(l->dirs[j], d) == 0; /* co-mounted */
        if (dup || mkdir(d, 0755) < 0) {
            if (!dup)
                print_message("mkdir %s: %s\n", d, strerror(errno));
            free(d);
            if (!dup)
                skip();
            continue;
        }
        l->dirs[l->ndirs++] = d;
    }
    if (l->ndirs == 0)
        skip();
    assert_int_equal(pipe2(l->go, O_CLOEXEC), 0);
    pid_t parent = getpid();
    l->child = fork();
    assert_true(l->child >= 0);
    if (l->child == 0) {
        close(l->go[1]);
        burn(l->go[0], parent);
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)l->child);
    for (size_t i = 0; i < l->ndirs; i++) {
        char *procs = hull_path_join(l->dirs[i], "cgroup.procs");
        int r = hull_write_string(procs, pid, &err);
        free(procs);
        if (r < 0)
            fail_msg("%s", hull_error_msg(&err));
    }
    assert_int_equal(write(l->go[1], "g", 1), 1);

    /* the child is running in the cgroup once its cpu time shows (and, with memory, its pages:
     * it touches them before it spins) */
    struct hull_cgroup_stats a, b;
    for (int i = 0;; i++) {
        read_ok(l->cg, l->path, &a);
        if (a.cpu.valid && a.cpu.usage_ns > 0 &&
            (!a.memory.valid || a.memory.rss_bytes >= 32 * MiB))
            break;
        if (i == 500)
            fail_msg("the child did not show in the cgroup's stats");
        sleep_ms(20);
    }
    sleep_ms(400); /* the interval the cpu rate is measured over, not a wait */
    read_ok(l->cg, l->path, &b);
    assert_true(a.cpu.valid && b.cpu.valid);
    assert_true(b.cpu.usage_ns > a.cpu.usage_ns);
    /* the average use over the interval, in nano-cores */
    assert_true(b.monotonic_ns > a.monotonic_ns);
    uint64_t ncores = (uint64_t)((unsigned __int128)(b.cpu.usage_ns - a.cpu.usage_ns) *
                                 1000000000u / (uint64_t)(b.monotonic_ns - a.monotonic_ns));
    print_message("live %s (%s): cpu %llu ns, %llu nano-cores, mem usage %llu ws %llu rss %llu "
                  "faults %llu, pids %llu\n",
                  l->path, hull_cgroup_mode_name(l->cg->mode), (unsigned long long)b.cpu.usage_ns,
                  (unsigned long long)ncores, (unsigned long long)b.memory.usage_bytes,
                  (unsigned long long)b.memory.working_set_bytes,
                  (unsigned long long)b.memory.rss_bytes, (unsigned long long)b.memory.page_faults,
                  (unsigned long long)b.pids.current);
    assert_true(ncores > 0); /* a busy loop (sharing 2 CPUs with whatever else runs) */
    assert_true(ncores < 1500000000);
    if (b.memory.valid) {
        assert_true(b.memory.usage_bytes >= 32 * MiB);
        assert_true(b.memory.working_set_bytes >= 32 * MiB);
        assert_true(b.memory.rss_bytes >= 32 * MiB);
        /* one fault per page touched, or per 2 MiB with transparent huge pages */
        assert_true(b.memory.page_faults >= (32 * MiB) / (2 * MiB));
        assert_false(b.memory.has_limit);
        assert_true(b.memory.has_oom_kills);
        assert_int_equal(b.memory.oom_kills, 0);
    }
    assert_true(b.pids.valid);
    assert_int_equal(b.pids.current, 1);
    if (l->cg->mode != HULL_CGROUP_V1 && access("/proc/pressure/cpu", R_OK) == 0) {
        assert_true(b.cpu.psi.valid); /* PSI on: every cgroup2 directory has it */
        assert_true(b.memory.psi.valid);
        assert_true(b.io.psi.valid);
    }

    /* a limit shows up as limit and available bytes */
    char *mem = dir_for(l->cg, v2 ? "unified" : "memory", l->path);
    char *lim = hull_path_join(mem, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (hull_write_string(lim, "1073741824", &err) == 0) {
        read_ok(l->cg, l->path, &b);
        assert_true(b.memory.has_limit);
        assert_int_equal(b.memory.limit_bytes, 1073741824);
        assert_int_equal(b.memory.available_bytes, 1073741824 - b.memory.working_set_bytes);
    }
    hull_error_free(&err);
    free(lim);
    free(mem);

    /* after the child is gone the cgroup still reads; once removed: ENOENT */
    kill(l->child, SIGKILL);
    waitpid(l->child, NULL, 0);
    l->child = 0;
    read_ok(l->cg, l->path, &b);
    assert_int_equal(b.pids.current, 0);
    for (size_t i = 0; i < l->ndirs; i++)
        for (int tries = 0; tries < 50 && rmdir(l->dirs[i]) < 0 && errno == EBUSY; tries++)
            sleep_ms(20);
    assert_hull_fails(hull_cgroup_stats_read_path(l->cg, l->path, &b, &err), ENOENT, err);
}

static void test_live_cgroup(void **state)
{
    live_run(state, NULL);
}

/* On a hybrid host the (controller-less) cgroup2 at /sys/fs/cgroup/unified is a real v2 tree:
 * cpu.stat usage_usec, PSI and process counting work there without controllers. */
static void test_live_cgroup_v2_unified(void **state)
{
    if (access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) != 0)
        skip();
    live_run(state, "/sys/fs/cgroup/unified");
}

/* ---- trees built in a temp dir from real kernel files ------------------------------------- */
/* Writes root/rel (its directories made first). */
static void put(const char *root, const char *rel, const char *text)
{
    _cleanup_free_ char *p = hull_path_join(root, rel);
    _cleanup_free_ char *dir = xstrdup(p);
    *strrchr(dir, '/') = '\0';
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(dir, 0755, &err), err);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void mkdirs(const char *root, const char *rel)
{
    _cleanup_free_ char *p = hull_path_join(root, rel);
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(p, 0755, &err), err);
}

static int tmp_teardown(void **state)
{
    char *dir = *state;
    if (dir) {
        hull_error_t err = NULL;
        hull_rm_rf(dir, &err);
        hull_error_free(&err);
        free(dir);
    }
    *state = NULL;
    return 0;
}

/* memory.stat of a 6.x kernel's cgroup2 (every key, in the kernel's order) */
static const char V2_MEMORY_STAT[] = "anon 52428800\n"
                                     "file 41943040\n"
                                     "kernel 3145728\n"
                                     "kernel_stack 163840\n"
                                     "pagetables 520192\n"
                                     "sec_pagetables 0\n"
                                     "percpu 1440\n"
                                     "sock 0\n"
                                     "vmalloc 0\n"
                                     "shmem 0\n"
                                     "zswap 0\n"
                                     "zswapped 0\n"
                                     "file_mapped 8388608\n"
                                     "file_dirty 0\n"
                                     "file_writeback 0\n"
                                     "swapcached 0\n"
                                     "anon_thp 0\n"
                                     "file_thp 0\n"
                                     "shmem_thp 0\n"
                                     "inactive_anon 52355072\n"
                                     "active_anon 73728\n"
                                     "inactive_file 20971520\n"
                                     "active_file 20971520\n"
                                     "unevictable 0\n"
                                     "slab_reclaimable 1572864\n"
                                     "slab_unreclaimable 1048576\n"
                                     "slab 2621440\n"
                                     "workingset_refault_anon 0\n"
                                     "workingset_refault_file 0\n"
                                     "workingset_activate_anon 0\n"
                                     "workingset_activate_file 0\n"
                                     "workingset_restore_anon 0\n"
                                     "workingset_restore_file 0\n"
                                     "workingset_nodereclaim 0\n"
                                     "pgscan 0\n"
                                     "pgsteal 0\n"
                                     "pgfault 12345\n"
                                     "pgmajfault 67\n"
                                     "pgrefill 0\n"
                                     "pgactivate 0\n"
                                     "pgdeactivate 0\n"
                                     "pglazyfree 0\n"
                                     "pglazyfreed 0\n"
                                     "thp_fault_alloc 0\n"
                                     "thp_collapse_alloc 0\n";

/* a 5.10 kernel's: no "kernel" line (kernel_stack + slab + sock + percpu are summed) */
static const char V2_MEMORY_STAT_OLD[] = "anon 1048576\n"
                                         "file 8388608\n"
                                         "kernel_stack 16384\n"
                                         "pagetables 4096\n"
                                         "percpu 512\n"
                                         "sock 0\n"
                                         "shmem 0\n"
                                         "file_mapped 0\n"
                                         "file_dirty 0\n"
                                         "file_writeback 0\n"
                                         "anon_thp 0\n"
                                         "inactive_anon 1048576\n"
                                         "active_anon 0\n"
                                         "inactive_file 8388608\n"
                                         "active_file 0\n"
                                         "unevictable 0\n"
                                         "slab_reclaimable 1000\n"
                                         "slab_unreclaimable 2000\n"
                                         "slab 3000\n"
                                         "pgfault 10\n"
                                         "pgmajfault 0\n";

#define POD_SLICE "kubepods.slice/kubepods-pod1.slice"

static void test_tmp_v2(void **state)
{
    char *root = hull_test_tmpdir("cgstats-v2");
    *state = root;
    put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    put(root, "cpu.stat", "usage_usec 999\nuser_usec 500\nsystem_usec 499\nnice_usec 0\n");
    put(root, POD_SLICE "/cgroup.procs", "");
    put(root, POD_SLICE "/cpu.stat", "usage_usec 7000\nuser_usec 4000\nsystem_usec 3000\n");

    /* a: every controller, limits, swap, two block devices, PSI with "full" lines */
    const char *a = POD_SLICE "/hull-a.scope/";
    char p[256];
#define PUT(dir, file, text) (snprintf(p, sizeof(p), "%s%s", dir, file), put(root, p, text))
    PUT(a, "cpu.stat",
        "usage_usec 5000000\nuser_usec 3000000\nsystem_usec 2000000\nnice_usec 0\n"
        "core_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 1500\n"
        "nr_bursts 0\nburst_usec 0\n");
    PUT(a, "cpu.max", "50000 100000\n");
    PUT(a, "cpu.weight", "39\n");
    PUT(a, "memory.current", "104857600\n");
    PUT(a, "memory.stat", V2_MEMORY_STAT);
    PUT(a, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
    PUT(a, "memory.max", "268435456\n");
    PUT(a, "memory.peak", "115343360\n");
    PUT(a, "memory.swap.current", "1048576\n");
    PUT(a, "memory.swap.max", "4194304\n");
    PUT(a, "pids.current", "7\n");
    PUT(a, "pids.max", "100\n");
    PUT(a, "io.stat",
        "8:0 rbytes=1048576 wbytes=2097152 rios=10 wios=20 dbytes=0 dios=0\n"
        "253:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=512 dios=1\n");
    PUT(a, "cpu.pressure",
        "some avg10=1.50 avg60=0.75 avg300=0.25 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=6543\n");
    PUT(a, "memory.pressure",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
    PUT(a, "io.pressure",
        "some avg10=0.10 avg60=0.00 avg300=0.00 total=300\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=200\n");
    PUT(a, "cgroup.procs", "999999998\n999999999\n");

    /* b: no controller enabled (only the core files), PSI off, a child cgroup */
    const char *b = POD_SLICE "/hull-b.scope/";
    PUT(b, "cpu.stat", "usage_usec 2000\nuser_usec 1000\nsystem_usec 1000\n");
    PUT(b, "cgroup.procs", "999999997\n");
    PUT(b, "sub/cgroup.procs", "999999996\n999999995\n");

    /* c: "max" everywhere, an older kernel's memory.stat and memory.events, no "full" line */
    const char *c = POD_SLICE "/hull-c.scope/";
    PUT(c, "cpu.stat", "usage_usec 1\nuser_usec 1\nsystem_usec 0\n");
    PUT(c, "cpu.max", "max 100000\n");
    PUT(c, "cpu.weight", "100\n");
    PUT(c, "memory.current", "4194304\n");
    PUT(c, "memory.stat", V2_MEMORY_STAT_OLD);
    PUT(c, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
    PUT(c, "memory.max", "max\n");
    PUT(c, "memory.swap.current", "0\n");
    PUT(c, "memory.swap.max", "max\n");
    PUT(c, "pids.current", "1\n");
    PUT(c, "pids.max", "max\n");
    PUT(c, "cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n");
    PUT(c, "cgroup.procs", "999999994\n");

    /* d: malformed values read as absent */
    const char *d = POD_SLICE "/hull-d.scope/";
    PUT(d, "cpu.stat", "usage_usec many\n");
    PUT(d, "memory.current", "\n");
    PUT(d, "pids.current", "12abc\n");
    PUT(d, "cpu.pressure", "some avg10=x\n");
    PUT(d, "cgroup.procs", "");

    /* e: this process (counted like any other, its open fds and a socket too) */
    const char *e = POD_SLICE "/hull-e.scope/";
    char self[32];
    snprintf(self, sizeof(self), "%d\n", (int)getpid());
    PUT(e, "cgroup.procs", self);
#undef PUT

    struct hull_cgroup_layout *l = open_root(root, HULL_CGROUP_V2);
    struct hull_cgroup_stats s;
    /* systemd's "slice:prefix:name" */
    read_ok(l, "kubepods-pod1.slice:hull:a", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 5000000000ULL);
    assert_int_equal(s.cpu.user_ns, 3000000000ULL);
    assert_int_equal(s.cpu.system_ns, 2000000000ULL);
    assert_true(s.cpu.has_throttling);
    assert_int_equal(s.cpu.nr_periods, 10);
    assert_int_equal(s.cpu.nr_throttled, 2);
    assert_int_equal(s.cpu.throttled_ns, 1500000);
    assert_true(s.cpu.has_spec);
    assert_int_equal(s.cpu.period_us, 100000);
    assert_int_equal(s.cpu.shares, 998); /* 2 + 38 * 262142 / 9999 */
    assert_true(s.cpu.psi.valid && s.cpu.psi.has_full);
    assert_int_equal(s.cpu.psi.some.total_ns, 123456000);
    assert_int_equal(s.cpu.psi.full.total_ns, 6543000);
    assert_true(s.cpu.psi.some.avg10 > 1.49 && s.cpu.psi.some.avg10 < 1.51);
    assert_int_equal(s.memory.psi.full.total_ns, 5000);
    assert_int_equal(s.io.psi.some.total_ns, 300000);
    assert_int_equal(s.io.psi.full.total_ns, 200000);

    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 100 * MiB);
    assert_int_equal(s.memory.inactive_file_bytes, 20 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 80 * MiB);
    assert_int_equal(s.memory.rss_bytes, 50 * MiB);   /* anon, not anon_thp */
    assert_int_equal(s.memory.cache_bytes, 40 * MiB); /* file, not file_mapped */
    assert_int_equal(s.memory.mapped_file_bytes, 8 * MiB);
    assert_int_equal(s.memory.page_faults, 12345);
    assert_int_equal(s.memory.major_page_faults, 67);
    assert_true(s.memory.has_kernel);
    assert_int_equal(s.memory.kernel_bytes, 3145728);
    assert_true(s.memory.has_limit);
    assert_int_equal(s.memory.limit_bytes, 256 * MiB);
    assert_int_equal(s.memory.available_bytes, 176 * MiB);
    assert_true(s.memory.has_max_usage);
    assert_int_equal(s.memory.max_usage_bytes, 110 * MiB);
    assert_true(s.memory.has_failcnt);
    assert_int_equal(s.memory.failcnt, 3);
    assert_true(s.memory.has_oom_kills);
    assert_int_equal(s.memory.oom_kills, 1);
    assert_true(s.memory.has_swap && s.memory.has_swap_limit);
    assert_int_equal(s.memory.swap_usage_bytes, 1 * MiB);
    assert_int_equal(s.memory.swap_limit_bytes, 4 * MiB);
    assert_int_equal(s.memory.swap_available_bytes, 3 * MiB);

    assert_true(s.pids.valid && s.pids.has_limit);
    assert_int_equal(s.pids.current, 7);
    assert_int_equal(s.pids.limit, 100);
    assert_true(s.io.valid);
    assert_int_equal(s.io.read_bytes, 1048576 + 4096);
    assert_int_equal(s.io.write_bytes, 2097152);
    assert_int_equal(s.io.read_ops, 11);
    assert_int_equal(s.io.write_ops, 20);
    assert_true(s.procs.valid);
    assert_int_equal(s.procs.processes, 2); /* gone pids: counted, no fds */
    assert_int_equal(s.procs.fds, 0);

    /* the same cgroup by its path */
    struct hull_cgroup_stats s2;
    read_ok(l, "/" POD_SLICE "/hull-a.scope", &s2);
    assert_int_equal(s2.memory.working_set_bytes, s.memory.working_set_bytes);
    assert_int_equal(s2.io.read_bytes, s.io.read_bytes);

    /* b: only the core cpu.stat; the rest invalid; pids counted from cgroup.procs below */
    read_ok(l, "kubepods-pod1.slice:hull:b", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 2000000);
    assert_true(s.cpu.has_user_system);
    assert_false(s.cpu.has_throttling);
    assert_false(s.cpu.has_spec);
    assert_false(s.memory.valid);
    assert_false(s.io.valid);
    assert_false(s.cpu.psi.valid || s.memory.psi.valid || s.io.psi.valid);
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 3);
    assert_false(s.pids.has_limit);
    assert_int_equal(s.procs.processes, 3);

    /* c: "max" is no limit; kernel memory from its parts; no oom_kill line */
    read_ok(l, "kubepods-pod1.slice:hull:c", &s);
    assert_true(s.cpu.has_spec);
    assert_int_equal(s.cpu.period_us, 100000);
    assert_int_equal(s.cpu.shares, 2597); /* 2 + 99 * 262142 / 9999 */
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.working_set_bytes, 0); /* inactive_file > usage: floor */
    assert_false(s.memory.has_limit);
    assert_int_equal(s.memory.available_bytes, 0);
    assert_true(s.memory.has_kernel);
    assert_int_equal(s.memory.kernel_bytes, 16384 + 3000 + 0 + 512);
    assert_false(s.memory.has_max_usage);
    assert_false(s.memory.has_oom_kills);
    assert_true(s.memory.has_failcnt);
    assert_int_equal(s.memory.failcnt, 0);
    assert_true(s.memory.has_swap);
    assert_false(s.memory.has_swap_limit);
    assert_true(s.pids.valid);
    assert_false(s.pids.has_limit);
    assert_true(s.cpu.psi.valid);
    assert_false(s.cpu.psi.has_full);
    assert_int_equal(s.cpu.psi.some.total_ns, 42000);

    /* d: malformed numbers are not values */
    read_ok(l, "kubepods-pod1.slice:hull:d", &s);
    assert_false(s.cpu.valid);
    assert_false(s.memory.valid);
    assert_true(s.pids.valid); /* counted instead: none */
    assert_int_equal(s.pids.current, 0);
    assert_false(s.cpu.psi.valid);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    read_ok(l, "kubepods-pod1.slice:hull:e", &s);
    close(sv[0]);
    close(sv[1]);
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 1);
    assert_true(s.procs.valid);
    assert_int_equal(s.procs.processes, 1);
    assert_true(s.procs.fds >= 5); /* stdio and the socket pair at least */
    assert_true(s.procs.sockets >= 2);

    /* the pod's slice (systemd form) and the root */
    read_ok(l, "kubepods-pod1.slice", &s);
    assert_int_equal(s.cpu.usage_ns, 7000000);
    assert_int_equal(s.pids.current, 2 + 3 + 1 + 0 + 1); /* every container's processes */
    read_ok(l, "/", &s);
    assert_int_equal(s.cpu.usage_ns, 999000);
    assert_false(s.memory.valid);

    /* errors */
    hull_error_t err = NULL;
    assert_int_equal(hull_cgroup_stats_read_path(l, "kubepods-pod1.slice:hull:gone", &s, &err),
                     -ENOENT);
    assert_non_null(strstr(hull_error_msg(&err), "hull-gone.scope"));
    hull_error_free(&err);
    assert_hull_fails(hull_cgroup_stats_read_path(l, "hull/c", &s, &err), EINVAL, err);
    assert_hull_fails(hull_cgroup_stats_read_path(l, "/a/../../etc", &s, &err), EINVAL, err);
    assert_hull_fails(hull_cgroup_stats_read_path(l, NULL, &s, &err), EINVAL, err);
    layout_close(l);
}

/* v1 as on this host: cpu and cpuacct in hierarchies of their own, memory without swap
 * accounting, blkio, no pids hierarchy */
static void test_tmp_v1(void **state)
{
    char *root = hull_test_tmpdir("cgstats-v1");
    *state = root;
    static const char *const hiers[] = {"cpu", "cpuacct", "memory", "blkio", "systemd"};
    for (size_t i = 0; i < sizeof(hiers) / sizeof(hiers[0]); i++) {
        char p[64];
        snprintf(p, sizeof(p), "%s/cgroup.procs", hiers[i]);
        put(root, p, "1\n");
    }
    put(root, "cpuacct/hull/c1/cpuacct.usage", "35147706738\n");
    put(root, "cpuacct/hull/c1/cpuacct.usage_user", "24678888000\n");
    put(root, "cpuacct/hull/c1/cpuacct.usage_sys", "10231696000\n");
    put(root, "cpuacct/hull/c1/cpuacct.stat", "user 2484\nsystem 1030\n");
    put(root, "cpuacct/hull/c1/cgroup.procs", "999999990\n");
    put(root, "cpuacct/hull/c1/x/cgroup.procs", "999999989\n");
    put(root, "cpu/hull/c1/cpu.stat",
        "nr_periods 4\nnr_throttled 1\nthrottled_time 2500000\nnr_bursts 0\nburst_time 0\n");
    put(root, "cpu/hull/c1/cpu.cfs_period_us", "100000\n");
    put(root, "cpu/hull/c1/cpu.cfs_quota_us", "-1\n");
    put(root, "cpu/hull/c1/cpu.shares", "1024\n");
    /* local and hierarchical (total_) lines: the totals count */
    put(root, "memory/hull/c1/memory.stat",
        "cache 11837440\nrss 6950912\nrss_huge 0\nshmem 0\nmapped_file 8695808\ndirty 16384\n"
        "writeback 0\nswap 0\npgpgin 77762\npgpgout 73175\npgfault 181777\npgmajfault 0\n"
        "inactive_anon 0\nactive_anon 0\ninactive_file 16384\nactive_file 1269760\n"
        "unevictable 0\nhierarchical_memory_limit 9223372036854771712\n"
        "hierarchical_memsw_limit 9223372036854771712\ntotal_cache 20971520\n"
        "total_rss 31457280\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 4194304\n"
        "total_dirty 0\ntotal_writeback 0\ntotal_swap 0\ntotal_pgpgin 346844345\n"
        "total_pgpgout 346511596\ntotal_pgfault 547131\ntotal_pgmajfault 307\n"
        "total_inactive_anon 0\ntotal_active_anon 0\ntotal_inactive_file 10485760\n"
        "total_active_file 0\ntotal_unevictable 0\n");
    put(root, "memory/hull/c1/memory.usage_in_bytes", "52428800\n");
    put(root, "memory/hull/c1/memory.limit_in_bytes", "9223372036854771712\n");
    put(root, "memory/hull/c1/memory.max_usage_in_bytes", "62914560\n");
    put(root, "memory/hull/c1/memory.failcnt", "0\n");
    put(root, "memory/hull/c1/memory.kmem.usage_in_bytes", "1048576\n");
    put(root, "memory/hull/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    static const char bytes[] = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n"
                                "8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1000\n8:16 Write 0\n"
                                "8:16 Sync 1000\n8:16 Async 0\n8:16 Discard 0\n8:16 Total 1000\n"
                                "Total 13288\n";
    static const char ops[] = "8:0 Read 1\n8:0 Write 2\n8:0 Sync 3\n8:0 Async 0\n8:0 Discard 0\n"
                              "8:0 Total 3\n8:16 Read 3\n8:16 Write 0\n8:16 Total 3\nTotal 6\n";
    put(root, "blkio/hull/c1/blkio.throttle.io_service_bytes_recursive", bytes);
    put(root, "blkio/hull/c1/blkio.throttle.io_serviced_recursive", ops);
    /* the non-recursive files (this cgroup alone) are not read when the others exist */
    put(root, "blkio/hull/c1/blkio.throttle.io_service_bytes", "8:0 Read 1\nTotal 1\n");
    put(root, "blkio/hull/c1/blkio.throttle.io_serviced", "8:0 Read 1\nTotal 1\n");
    /* c2: only in the memory hierarchy, with swap accounting and an old root-like memory.stat
     * (local lines only) */
    put(root, "memory/hull/c2/memory.stat",
        "cache 4096\nrss 8192\ninactive_file 0\npgfault 5\npgmajfault 1\nmapped_file 0\n");
    put(root, "memory/hull/c2/memory.usage_in_bytes", "104857600\n");
    put(root, "memory/hull/c2/memory.limit_in_bytes", "268435456\n");
    put(root, "memory/hull/c2/memory.memsw.usage_in_bytes", "110100480\n");
    put(root, "memory/hull/c2/memory.memsw.limit_in_bytes", "536870912\n");
    put(root, "memory/hull/c2/cgroup.procs", "999999988\n");
    /* c3: usage from cpuacct.stat ticks only (no usage_user/_sys), memory without oom_kill
     * (kernels before 4.13) */
    put(root, "cpuacct/hull/c3/cpuacct.usage", "1000\n");
    put(root, "cpuacct/hull/c3/cpuacct.stat", "user 150\nsystem 50\n");
    put(root, "memory/hull/c3/memory.usage_in_bytes", "4096\n");
    put(root, "memory/hull/c3/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");

    struct hull_cgroup_layout *l = open_root(root, HULL_CGROUP_V1);
    struct hull_cgroup_stats s;
    read_ok(l, "/hull/c1", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 35147706738ULL);
    assert_true(s.cpu.has_user_system);
    assert_int_equal(s.cpu.user_ns, 24678888000ULL);
    assert_int_equal(s.cpu.system_ns, 10231696000ULL);
    assert_true(s.cpu.has_throttling);
    assert_int_equal(s.cpu.nr_periods, 4);
    assert_int_equal(s.cpu.nr_throttled, 1);
    assert_int_equal(s.cpu.throttled_ns, 2500000);
    assert_true(s.cpu.has_spec);
    assert_int_equal(s.cpu.period_us, 100000);
    assert_int_equal(s.cpu.shares, 1024);
    assert_false(s.cpu.psi.valid); /* no cgroup2 */
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.usage_bytes, 50 * MiB);
    assert_int_equal(s.memory.inactive_file_bytes, 10 * MiB);
    assert_int_equal(s.memory.working_set_bytes, 40 * MiB);
    assert_int_equal(s.memory.rss_bytes, 30 * MiB);
    assert_int_equal(s.memory.cache_bytes, 20 * MiB);
    assert_int_equal(s.memory.mapped_file_bytes, 4 * MiB);
    assert_int_equal(s.memory.page_faults, 547131);
    assert_int_equal(s.memory.major_page_faults, 307);
    assert_false(s.memory.has_limit); /* 9223372036854771712 */
    assert_true(s.memory.has_oom_kills);
    assert_int_equal(s.memory.oom_kills, 0);
    assert_true(s.memory.has_failcnt);
    assert_true(s.memory.has_kernel);
    assert_int_equal(s.memory.kernel_bytes, 1 * MiB);
    assert_true(s.memory.has_max_usage);
    assert_int_equal(s.memory.max_usage_bytes, 60 * MiB);
    assert_false(s.memory.has_swap); /* no memsw files */
    assert_true(s.io.valid);
    assert_int_equal(s.io.read_bytes, 5096);
    assert_int_equal(s.io.write_bytes, 8192);
    assert_int_equal(s.io.read_ops, 4);
    assert_int_equal(s.io.write_ops, 2);
    /* no pids hierarchy: the processes of the first hierarchy holding the cgroup (cpuacct) */
    assert_true(s.pids.valid);
    assert_int_equal(s.pids.current, 2);
    assert_false(s.pids.has_limit);
    assert_int_equal(s.procs.processes, 2);

    /* c2: missing from cpu, cpuacct and blkio */
    read_ok(l, "/hull/c2", &s);
    assert_false(s.cpu.valid);
    assert_false(s.io.valid);
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.rss_bytes, 8192);
    assert_int_equal(s.memory.cache_bytes, 4096);
    assert_int_equal(s.memory.page_faults, 5);
    assert_true(s.memory.has_limit);
    assert_int_equal(s.memory.available_bytes, 156 * MiB);
    assert_true(s.memory.has_swap && s.memory.has_swap_limit);
    assert_int_equal(s.memory.swap_usage_bytes, 5 * MiB);
    assert_int_equal(s.memory.swap_limit_bytes, 256 * MiB);
    assert_int_equal(s.memory.swap_available_bytes, 251 * MiB);
    assert_false(s.memory.has_oom_kills);
    assert_false(s.memory.has_failcnt);
    assert_int_equal(s.pids.current, 1);

    read_ok(l, "/hull/c3", &s);
    long hz = sysconf(_SC_CLK_TCK);
    assert_true(s.cpu.has_user_system);
    assert_int_equal(s.cpu.user_ns, 150 * (1000000000ULL / (uint64_t)hz));
    assert_int_equal(s.cpu.system_ns, 50 * (1000000000ULL / (uint64_t)hz));
    assert_false(s.cpu.has_throttling);
    assert_false(s.cpu.has_spec);
    assert_false(s.memory.has_oom_kills);
    assert_int_equal(s.memory.working_set_bytes, 4096); /* no memory.stat: nothing inactive */

    hull_error_t err = NULL;
    assert_hull_fails(hull_cgroup_stats_read_path(l, "/hull/c4", &s, &err), ENOENT, err);
    layout_close(l);
}

/* hybrid: v1 cpu, cpuacct, memory and a controller-less cgroup2 at unified/ */
static void test_tmp_hybrid(void **state)
{
    char *root = hull_test_tmpdir("cgstats-hy");
    *state = root;
    put(root, "cpu/cgroup.procs", "");
    put(root, "cpuacct/cgroup.procs", "");
    put(root, "memory/cgroup.procs", "");
    put(root, "unified/cgroup.controllers", "");
    for (int i = 1; i <= 2; i++) {
        char p[64];
        snprintf(p, sizeof(p), "cpuacct/hull/h%d/cpuacct.usage", i);
        put(root, p, "1234\n");
        snprintf(p, sizeof(p), "cpuacct/hull/h%d/cgroup.procs", i);
        put(root, p, "999999987\n");
        snprintf(p, sizeof(p), "memory/hull/h%d/memory.usage_in_bytes", i);
        put(root, p, "1048576\n");
        snprintf(p, sizeof(p), "memory/hull/h%d/memory.limit_in_bytes", i);
        put(root, p, "9223372036854771712\n");
        mkdirs(root, "cpu/hull/h1");
    }
    /* h1 is in unified/ too (as runc puts it): PSI from there, the usage from v1 */
    put(root, "unified/hull/h1/cpu.stat", "usage_usec 99\nuser_usec 99\nsystem_usec 0\n");
    put(root, "unified/hull/h1/cpu.pressure",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=777\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put(root, "unified/hull/h1/memory.pressure",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=3\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=2\n");
    put(root, "unified/hull/h1/cgroup.procs", "999999987\n");
    /* h3 only in unified/ */
    put(root, "unified/hull/h3/cpu.stat", "usage_usec 5\nuser_usec 5\nsystem_usec 0\n");
    put(root, "unified/hull/h3/cgroup.procs", "999999986\n999999985\n");

    struct hull_cgroup_layout *l = open_root(root, HULL_CGROUP_HYBRID);
    struct hull_cgroup_stats s;
    read_ok(l, "/hull/h1", &s);
    assert_true(s.cpu.valid);
    assert_int_equal(s.cpu.usage_ns, 1234); /* cpuacct, not cgroup2's cpu.stat */
    assert_false(s.cpu.has_user_system);
    assert_true(s.memory.valid);
    assert_int_equal(s.memory.working_set_bytes, 1 * MiB);
    assert_false(s.memory.has_limit);
    assert_true(s.cpu.psi.valid);
    assert_int_equal(s.cpu.psi.some.total_ns, 777000);
    assert_true(s.memory.psi.valid);
    assert_int_equal(s.memory.psi.full.total_ns, 2000);
    assert_false(s.io.psi.valid); /* no io.pressure */
    assert_false(s.io.valid);     /* no blkio hierarchy, no io.stat in cgroup2 */
    assert_true(s.pids.valid);    /* no pids anywhere: counted */
    assert_int_equal(s.pids.current, 1);

    /* h2 is not in unified/: no pressure at all */
    read_ok(l, "/hull/h2", &s);
    assert_true(s.cpu.valid && s.memory.valid);
    assert_false(s.cpu.psi.valid || s.memory.psi.valid || s.io.psi.valid);

    /* h3 is only in unified/: cpu and memory stay v1's (invalid), pids counted there */
    read_ok(l, "/hull/h3", &s);
    assert_false(s.cpu.valid);
    assert_false(s.memory.valid);
    assert_int_equal(s.pids.current, 2);
    assert_false(s.cpu.psi.valid);
    layout_close(l);
}

/* ---- the number and pressure parsers ------------------------------------------------------ */
static void test_read_u64_and_psi(void **state)
{
    char *dir = hull_test_tmpdir("cgstats-num");
    *state = dir;
    uint64_t v = 0;
    bool unl = true;
    put(dir, "a", "42\n");
    assert_true(hull_cgroup_read_u64(dir, "a", &v, &unl));
    assert_int_equal(v, 42);
    assert_false(unl);
    put(dir, "a", " \t7");
    assert_true(hull_cgroup_read_u64(dir, "a", &v, NULL));
    assert_int_equal(v, 7);
    put(dir, "a", "max\n");
    assert_false(hull_cgroup_read_u64(dir, "a", &v, NULL)); /* "max" not wanted */
    assert_true(hull_cgroup_read_u64(dir, "a", &v, &unl));
    assert_true(unl);
    assert_int_equal(v, UINT64_MAX);
    put(dir, "a", "18446744073709551615\n");
    assert_true(hull_cgroup_read_u64(dir, "a", &v, NULL));
    assert_int_equal(v, UINT64_MAX);
    static const char *const bad[] = {
        "18446744073709551616\n", "-1\n", "12x\n", "", "\n", "maximum\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(dir, "a", bad[i]);
        assert_false(hull_cgroup_read_u64(dir, "a", &v, &unl));
    }
    assert_false(hull_cgroup_read_u64(dir, "missing", &v, &unl));
    assert_false(hull_cgroup_read_u64(NULL, "a", &v, &unl));

    /* "key value" files: whole keys only */
    const char *ms = "file_mapped 5\nfile 7\nanon_thp 1\nanon 2\nbad x\n";
    assert_true(hull_cgroup_kv_get(ms, "file", &v));
    assert_int_equal(v, 7);
    assert_true(hull_cgroup_kv_get(ms, "anon", &v));
    assert_int_equal(v, 2);
    assert_false(hull_cgroup_kv_get(ms, "bad", &v));
    assert_false(hull_cgroup_kv_get(ms, "fil", &v));

    struct hull_cgroup_psi psi;
    put(dir, "cpu.pressure",
        "some avg10=12.50 avg60=3.00 avg300=0.10 total=18446744073\n"
        "full avg10=1.00 avg60=0.00 avg300=0.00 total=1\n");
    hull_cgroup_stats_psi(dir, "cpu.pressure", &psi);
    assert_true(psi.valid && psi.has_full);
    assert_int_equal(psi.some.total_ns, 18446744073000ULL);
    assert_true(psi.some.avg10 > 12.49 && psi.some.avg10 < 12.51);
    assert_true(psi.some.avg300 > 0.09 && psi.some.avg300 < 0.11);
    assert_int_equal(psi.full.total_ns, 1000);
    /* a "full" line without a good "some" one is not used */
    put(dir, "cpu.pressure", "some avg10=0.00\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
    hull_cgroup_stats_psi(dir, "cpu.pressure", &psi);
    assert_false(psi.valid);
    assert_false(psi.has_full);
    hull_cgroup_stats_psi(dir, "io.pressure", &psi); /* PSI off */
    assert_false(psi.valid);
}

int main(void)
{
    find_fixtures();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_limited),
        cmocka_unit_test(test_v1_unlimited_and_old_kernel),
        cmocka_unit_test(test_v1_pod),
        cmocka_unit_test(test_v1_paths_and_errors),
        cmocka_unit_test(test_v2_limited),
        cmocka_unit_test(test_v2_unlimited),
        cmocka_unit_test(test_hybrid),
        cmocka_unit_test(test_hybrid_mixed),
        cmocka_unit_test(test_mountinfo_layouts),
        cmocka_unit_test_teardown(test_tmp_v2, tmp_teardown),
        cmocka_unit_test_teardown(test_tmp_v1, tmp_teardown),
        cmocka_unit_test_teardown(test_tmp_hybrid, tmp_teardown),
        cmocka_unit_test_teardown(test_read_u64_and_psi, tmp_teardown),
        cmocka_unit_test_teardown(test_live_cgroup, live_teardown),
        cmocka_unit_test_teardown(test_live_cgroup_v2_unified, live_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
