/* Unit tests of the cgroup library (common/cgroup*.c) on its typed resources: the v1 and v2
 * conversions on fixture trees, shares -> weight and quota/period -> cpu.max, the unified
 * map's checks, path safety (a spec's cgroup path never leaves the cgroup root), the JSON
 * round trip, the systemd unit properties per host mode, and the OOM counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/cgroup_systemd.h"
#include "tests/unit/hull_test.h"

static void assert_file(const char *dir, const char *name, const char *want)
{
    _cleanup_free_ char *p = hull_path_join(dir, name);
    _cleanup_free_ char *got = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_read_file(p, 1 << 16, &got, NULL, &err), 0);
    size_t n = strlen(got);
    while (n > 0 && got[n - 1] == '\n')
        got[--n] = '\0';
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s: `%s`, want `%s`\n", name, got, want);
    assert_string_equal(got, want);
}

static void rm_tree(const char *dir)
{
    hull_error_t err = NULL;
    hull_rm_rf(dir, &err);
    hull_error_free(&err);
}

/* A directory with the given (empty) files. */
static char *tree(const char *const *files)
{
    char *dir = hull_test_tmpdir("cglib");
    for (size_t i = 0; files[i]; i++)
        hull_test_write_at(dir, files[i], "");
    return dir;
}

/* ---- conversions ------------------------------------------------------------------------- */
static void test_shares_to_weight(void **state)
{
    (void)state;
    /* runc / crun: 1 + ((shares - 2) * 9999) / 262142, shares clamped to 2..262144 */
    assert_int_equal(hull_cgroup_shares_to_weight(0), 0);
    assert_int_equal(hull_cgroup_shares_to_weight(1), 1);
    assert_int_equal(hull_cgroup_shares_to_weight(2), 1);
    assert_int_equal(hull_cgroup_shares_to_weight(102), 4);
    assert_int_equal(hull_cgroup_shares_to_weight(1024), 39);
    assert_int_equal(hull_cgroup_shares_to_weight(262144), 10000);
    assert_int_equal(hull_cgroup_shares_to_weight(1000000), 10000);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(0), 0);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(1), 1);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(10), 1);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(100), 1 + 90 * 9999 / 990);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(5000), 10000);
}

static void test_cpu_max(void **state)
{
    (void)state;
    char buf[64];
    const int64_t U = HULL_CG_UNSET;
    assert_true(hull_cgroup_cpu_max(50000, 200000, NULL, buf, sizeof(buf)));
    assert_string_equal(buf, "50000 200000");
    assert_true(hull_cgroup_cpu_max(50000, U, NULL, buf, sizeof(buf)));
    assert_string_equal(buf, "50000 100000");
    assert_true(hull_cgroup_cpu_max(-1, U, NULL, buf, sizeof(buf)));
    assert_string_equal(buf, "max 100000");
    assert_true(hull_cgroup_cpu_max(-1, 50000, NULL, buf, sizeof(buf)));
    assert_string_equal(buf, "max 50000");
    /* a period alone keeps the current quota */
    assert_true(hull_cgroup_cpu_max(U, 50000, "20000 100000", buf, sizeof(buf)));
    assert_string_equal(buf, "20000 50000");
    assert_true(hull_cgroup_cpu_max(0, 50000, NULL, buf, sizeof(buf)));
    assert_string_equal(buf, "max 50000");
    assert_false(hull_cgroup_cpu_max(U, U, NULL, buf, sizeof(buf)));
    assert_false(hull_cgroup_cpu_max(0, 0, NULL, buf, sizeof(buf)));
    /* systemd's CPUQuotaPerSecUSec, rounded up to 10 ms */
    assert_int_equal(hull_cgroup_quota_per_sec(50000, 100000), 500000);
    assert_int_equal(hull_cgroup_quota_per_sec(50000, U), 500000);
    assert_int_equal(hull_cgroup_quota_per_sec(33333, 100000), 340000);
    assert_int_equal(hull_cgroup_quota_per_sec(100000, 50000), 2000000);
    assert_true(hull_cgroup_quota_per_sec(-1, 100000) == UINT64_MAX);
}

/* ---- path safety ------------------------------------------------------------------------- */
static void test_path_safe(void **state)
{
    (void)state;
    static const char *const ok[] = {"",        "/",         "/a/b",       "a/b",
                                     "/a/..b",  "/a/b..",    "/a/.hidden", "/kubepods/pod1/ctr",
                                     "//a//b/", "c-1.scope", NULL};
    static const char *const bad[] = {
        "..",    "../x",    "/a/../b",  "/a/..",         "/a/./b",    ".",       "a/.", "/a/b\n",
        "/a\\b", "/a/\x01", "/..//etc", "/a/b/../../..", "x/../../y", "/a/\x7f", NULL};
    for (size_t i = 0; ok[i]; i++) {
        if (!hull_cgroup_path_safe(ok[i]))
            fprintf(stderr, "refused `%s`\n", ok[i]);
        assert_true(hull_cgroup_path_safe(ok[i]));
    }
    for (size_t i = 0; bad[i]; i++) {
        if (hull_cgroup_path_safe(bad[i]))
            fprintf(stderr, "accepted `%s`\n", bad[i]);
        assert_false(hull_cgroup_path_safe(bad[i]));
    }
    char *longp = xmalloc0(5000);
    memset(longp, 'a', 4999);
    longp[0] = '/';
    assert_false(hull_cgroup_path_safe(longp));
    free(longp);
}

/* Every directory a resolved cgroupsPath gives stays below its hierarchy's mount, and a path
 * that could leave it is refused. */
static void test_resolve_never_escapes(void **state)
{
    (void)state;
    static const char mi[] =
        "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
    static const char self[] = "4:memory:/user\n3:cpu,cpuacct:/user\n0::/user\n";
    struct hull_cgroup_layout l;
    hull_cgroup_layout_parse(mi, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    static const char *const bad[] = {"/../../etc",    "../x",         "a/../../b",
                                      "/hull/./../..", "/hull/x\n/..", NULL};
    hull_error_t err = NULL;
    for (size_t i = 0; bad[i]; i++) {
        struct hull_cgroup cg;
        assert_int_equal(hull_cgroup_resolve(&l, self, bad[i], "id", &cg, &err), -EINVAL);
        hull_error_free(&err);
        hull_cgroup_clear(&cg);
    }
    static const char *const good[] = {"/hull/a", "rel/c", "", "/a/..b", NULL};
    for (size_t i = 0; good[i]; i++) {
        struct hull_cgroup cg;
        assert_int_equal(hull_cgroup_resolve(&l, self, good[i], "id", &cg, &err), 0);
        assert_int_equal(cg.n, 3);
        for (size_t j = 0; j < cg.n; j++) {
            size_t ml = strlen(cg.dirs[j].mount);
            assert_int_equal(strncmp(cg.dirs[j].path, cg.dirs[j].mount, ml), 0);
            assert_int_equal(cg.dirs[j].path[ml], '/');
            assert_null(strstr(cg.dirs[j].path, "/../"));
        }
        hull_cgroup_clear(&cg);
    }
    hull_cgroup_layout_clear(&l);
}

/* ---- unified ------------------------------------------------------------------------------ */
static void test_unified_checks(void **state)
{
    (void)state;
    assert_true(hull_cgroup_unified_key_ok("memory.high"));
    assert_true(hull_cgroup_unified_key_ok("cpu.weight.nice"));
    assert_true(hull_cgroup_unified_key_ok("cgroup.freeze"));
    static const char *const bad[] = {"",
                                      "memory",
                                      "../memory.high",
                                      "a/b.c",
                                      ".memory.high",
                                      "cgroup.procs",
                                      "cgroup.kill",
                                      "cgroup.threads",
                                      "cgroup.subtree_control",
                                      NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_false(hull_cgroup_unified_key_ok(bad[i]));
    assert_false(hull_cgroup_unified_key_ok(NULL));

    hull_error_t err = NULL;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    hull_cgroup_resources_init(&r);
    hull_cgroup_resources_add_unified(&r, "memory.high", "1000\n");
    assert_int_equal(hull_cgroup_unified_check(&r, &err), 0);
    hull_cgroup_resources_add_unified(&r, "memory.max", "1\n2");
    assert_int_equal(hull_cgroup_unified_check(&r, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "memory.max"));
    hull_error_free(&err);
    hull_cgroup_resources_clear(&r);
    hull_cgroup_resources_add_unified(&r, "pids.max", NULL); /* not a string in the spec */
    assert_int_equal(hull_cgroup_unified_check(&r, &err), -EINVAL);
    hull_error_free(&err);
    hull_cgroup_resources_clear(&r);
    hull_cgroup_resources_add_unified(&r, "cgroup.procs", "1");
    assert_int_equal(hull_cgroup_unified_check(&r, &err), -EINVAL);
    hull_error_free(&err);

    /* unified on a host that is not pure v2: refused before anything is written */
    struct hull_cgroup cg = {.mode = HULL_CGROUP_HYBRID};
    hull_cgroup_resources_clear(&r);
    hull_cgroup_resources_add_unified(&r, "memory.high", "1");
    assert_int_equal(hull_cgroup_apply(&cg, &r, 0, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "cgroup v2"));
    hull_error_free(&err);
}

/* ---- v2 writers from the typed struct ------------------------------------------------------ */
static void test_v2_typed(void **state)
{
    (void)state;
    static const char *const files[] = {
        "memory.max",  "memory.swap.max", "memory.low", "cpu.weight",      "cpu.max",
        "pids.max",    "io.weight",       "io.max",     "hugetlb.1GB.max", "cpuset.cpus",
        "cpuset.mems", "memory.high",     NULL};
    _cleanup_free_ char *dir = tree(files);
    hull_test_write_at(dir, "cpu.max", "max 100000\n");
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    hull_cgroup_resources_init(&r);
    r.memory.limit = 1 << 20;
    r.memory.swap = 3 << 20; /* memory+swap: swap.max is 2 MiB */
    r.cpu.shares = 512;
    r.cpu.period = 50000;
    r.pids_limit = 0; /* no limit */
    r.blkio.weight = 100;
    hull_cgroup_resources_add_dev(&r.blkio.throttle[HULL_CG_THROTTLE_WRITE_IOPS],
                                  &r.blkio.n_throttle[HULL_CG_THROTTLE_WRITE_IOPS], 8, 16, 300);
    hull_cgroup_resources_add_hugetlb(&r, "1GB", 1 << 30);
    r.cpu.cpus = xstrdup("1");
    hull_cgroup_resources_add_unified(&r, "memory.high", "900000");
    hull_error_t err = NULL;
    assert_hull_ok(hull_cgroup_v2_apply(dir, &r, &err), err);
    assert_file(dir, "memory.max", "1048576");
    assert_file(dir, "memory.swap.max", "2097152");
    assert_file(dir, "cpu.weight", "20"); /* 1 + 510 * 9999 / 262142 */
    assert_file(dir, "cpu.max", "max 50000");
    assert_file(dir, "pids.max", "max");
    char w[16];
    snprintf(w, sizeof(w), "%llu", (unsigned long long)hull_cgroup_blkio_to_io_weight(100));
    assert_file(dir, "io.weight", w);
    assert_file(dir, "io.max", "8:16 wiops=300");
    assert_file(dir, "hugetlb.1GB.max", "1073741824");
    assert_file(dir, "cpuset.cpus", "1");
    assert_file(dir, "cpuset.mems", ""); /* not given: untouched */
    assert_file(dir, "memory.high", "900000");
    assert_file(dir, "memory.low", "");

    /* swap without a limit, or below it, is refused on v2 */
    hull_cgroup_resources_clear(&r);
    r.memory.swap = 100;
    assert_int_equal(hull_cgroup_v2_apply(dir, &r, &err), -EINVAL);
    hull_error_free(&err);
    r.memory.limit = 200;
    assert_int_equal(hull_cgroup_v2_apply(dir, &r, &err), -EINVAL);
    hull_error_free(&err);
    r.memory.swap = -1;
    assert_hull_ok(hull_cgroup_v2_apply(dir, &r, &err), err);
    assert_file(dir, "memory.swap.max", "max");
    assert_file(dir, "memory.max", "200");
    rm_tree(dir);
}

/* ---- v1 writers from the typed struct ------------------------------------------------------ */
static void test_v1_typed(void **state)
{
    (void)state;
    static const char *const files[] = {"blkio.weight",
                                        "blkio.weight_device",
                                        "blkio.throttle.read_bps_device",
                                        "blkio.throttle.write_iops_device",
                                        "hugetlb.2MB.limit_in_bytes",
                                        "pids.max",
                                        "cpu.rt_period_us",
                                        "cpu.rt_runtime_us",
                                        "net_cls.classid",
                                        "memory.limit_in_bytes",
                                        "memory.memsw.limit_in_bytes",
                                        "memory.oom_control",
                                        NULL};
    _cleanup_free_ char *dir = tree(files);
    hull_test_write_at(dir, "memory.memsw.limit_in_bytes", "4096\n");
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    hull_cgroup_resources_init(&r);
    r.blkio.weight = 300;
    hull_cgroup_resources_add_dev(&r.blkio.weight_device, &r.blkio.n_weight_device, 8, 0, 700);
    hull_cgroup_resources_add_dev(&r.blkio.throttle[HULL_CG_THROTTLE_READ_BPS],
                                  &r.blkio.n_throttle[HULL_CG_THROTTLE_READ_BPS], 8, 0, 1048576);
    hull_cgroup_resources_add_hugetlb(&r, "2MB", 2097152);
    r.pids_limit = 42;
    r.cpu.realtime_period = 1000000;
    r.cpu.realtime_runtime = 950000;
    r.net_cls_classid = 0x100001;
    r.memory.limit = 8192;
    r.memory.swap = 16384; /* raising: memsw first, else the kernel refuses the limit */
    hull_error_t err = NULL;
    static const char *const ctrls[] = {"blkio", "hugetlb", "pids", "cpu", "net_cls", "memory"};
    for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
        assert_hull_ok(hull_cgroup_v1_apply(ctrls[i], dir, &r, 0, &err), err);
    assert_file(dir, "blkio.weight", "300");
    assert_file(dir, "blkio.weight_device", "8:0 700");
    assert_file(dir, "blkio.throttle.read_bps_device", "8:0 1048576");
    assert_file(dir, "blkio.throttle.write_iops_device", "");
    assert_file(dir, "hugetlb.2MB.limit_in_bytes", "2097152");
    assert_file(dir, "pids.max", "42");
    assert_file(dir, "cpu.rt_period_us", "1000000");
    assert_file(dir, "cpu.rt_runtime_us", "950000");
    assert_file(dir, "net_cls.classid", "1048577");
    assert_file(dir, "memory.limit_in_bytes", "8192");
    assert_file(dir, "memory.memsw.limit_in_bytes", "16384");
    /* disableOOMKiller false is written only by an update */
    assert_file(dir, "memory.oom_control", "");
    hull_cgroup_resources_clear(&r);
    r.memory.disable_oom_killer = 0;
    assert_hull_ok(hull_cgroup_v1_apply("memory", dir, &r, 0, &err), err);
    assert_file(dir, "memory.oom_control", "");
    assert_hull_ok(hull_cgroup_v1_apply("memory", dir, &r, HULL_CGROUP_UPDATE, &err), err);
    assert_file(dir, "memory.oom_control", "0");
    /* an invalid hugetlb page size never names a file outside the cgroup */
    hull_cgroup_resources_add_hugetlb(&r, "../../2MB", 1);
    assert_int_equal(hull_cgroup_v1_apply("hugetlb", dir, &r, 0, &err), -EINVAL);
    hull_error_free(&err);
    rm_tree(dir);
}

/* ---- systemd unit properties ---------------------------------------------------------------- */
static uint64_t prop(const struct hull_systemd_props *p, const char *name)
{
    const struct hull_systemd_prop *e = hull_systemd_props_find(p, name);
    if (e == NULL)
        fprintf(stderr, "no property %s\n", name);
    assert_non_null(e);
    assert_int_equal(e->type, HULL_SD_U64);
    return e->u64;
}

static void test_systemd_props_modes(void **state)
{
    (void)state;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    hull_cgroup_resources_init(&r);
    r.memory.limit = 1 << 20;
    r.cpu.shares = 1024;
    r.cpu.quota = 50000;
    r.cpu.cpus = xstrdup("0");
    r.pids_limit = 10;
    r.blkio.weight = 500;
    hull_cgroup_resources_add_hugetlb(&r, "2MB", 4096);
    hull_error_t err = NULL;

    /* v1 and hybrid: the legacy names systemd applies to v1 controllers */
    struct hull_systemd_props p = {0};
    assert_hull_ok(hull_cgroup_systemd_props(&r, HULL_CGROUP_HYBRID, &p, &err), err);
    assert_int_equal(prop(&p, "MemoryLimit"), 1 << 20);
    assert_int_equal(prop(&p, "CPUShares"), 1024);
    assert_int_equal(prop(&p, "CPUQuotaPerSecUSec"), 500000);
    assert_int_equal(prop(&p, "TasksMax"), 10);
    assert_int_equal(prop(&p, "BlockIOWeight"), 500);
    assert_null(hull_systemd_props_find(&p, "MemoryMax"));
    assert_null(hull_systemd_props_find(&p, "CPUWeight"));
    assert_null(hull_systemd_props_find(&p, "AllowedCPUs"));
    hull_systemd_props_clear(&p);

    /* v2, and the unified keys that have a property (they win over the typed fields, as the
     * unified file is written last) */
    hull_cgroup_resources_add_unified(&r, "memory.high", "2000000");
    hull_cgroup_resources_add_unified(&r, "memory.max", "max");
    hull_cgroup_resources_add_unified(&r, "cpu.max", "20000 40000");
    hull_cgroup_resources_add_unified(&r, "cpu.weight", "77");
    hull_cgroup_resources_add_unified(&r, "pids.max", "64");
    hull_cgroup_resources_add_unified(&r, "io.weight", "default 300");
    hull_cgroup_resources_add_unified(&r, "cpuset.mems", "0");
    hull_cgroup_resources_add_unified(&r, "memory.oom.group", "1"); /* no property */
    hull_cgroup_resources_add_unified(&r, "memory.low", "50%");     /* not a number: file only */
    assert_hull_ok(hull_cgroup_systemd_props(&r, HULL_CGROUP_V2, &p, &err), err);
    assert_int_equal(prop(&p, "MemoryHigh"), 2000000);
    assert_true(prop(&p, "MemoryMax") == UINT64_MAX);
    assert_int_equal(prop(&p, "CPUQuotaPeriodUSec"), 40000);
    assert_int_equal(prop(&p, "CPUQuotaPerSecUSec"), 500000);
    assert_int_equal(prop(&p, "CPUWeight"), 77);
    assert_int_equal(prop(&p, "TasksMax"), 64);
    assert_int_equal(prop(&p, "IOWeight"), 300);
    assert_non_null(hull_systemd_props_find(&p, "AllowedCPUs"));
    assert_non_null(hull_systemd_props_find(&p, "AllowedMemoryNodes"));
    assert_null(hull_systemd_props_find(&p, "MemoryLow"));
    assert_null(hull_systemd_props_find(&p, "MemoryLimit"));
    for (size_t i = 0; i < p.n; i++)
        assert_null(strstr(p.v[i].name, "uge")); /* systemd has no hugetlb property */
    hull_systemd_props_clear(&p);
}

/* ---- OOM counter ---------------------------------------------------------------------------- */
static void test_oom_counter(void **state)
{
    (void)state;
    assert_int_equal(hull_cgroup_oom_parse("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n"), 2);
    assert_int_equal(hull_cgroup_oom_parse("oom_kill_disable 0\nunder_oom 0\n"), -1);
    assert_int_equal(hull_cgroup_oom_parse(NULL), -1);
    _cleanup_free_ char *dir = hull_test_tmpdir("cglib-oom");
    hull_test_write_at(dir, "memory.events", "oom 1\noom_kill 5\n");
    struct hull_cgroup cg = {.mode = HULL_CGROUP_V2, .n = 1};
    cg.dirs = xmalloc0(sizeof(*cg.dirs));
    cg.dirs[0].controller = xstrdup("unified");
    cg.dirs[0].controllers = xstrdup("");
    cg.dirs[0].path = xstrdup(dir);
    uint64_t n = 0;
    assert_int_equal(hull_cgroup_oom_count(&cg, &n), 0);
    assert_int_equal(n, 5);
    hull_cgroup_clear(&cg);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shares_to_weight), cmocka_unit_test(test_cpu_max),
        cmocka_unit_test(test_path_safe),        cmocka_unit_test(test_resolve_never_escapes),
        cmocka_unit_test(test_unified_checks),   cmocka_unit_test(test_v2_typed),
        cmocka_unit_test(test_v1_typed),         cmocka_unit_test(test_systemd_props_modes),
        cmocka_unit_test(test_oom_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
