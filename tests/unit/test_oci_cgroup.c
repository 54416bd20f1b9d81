/* Unit tests of oci/ cgroup logic: host layout detection (v1, hybrid, v2 mountinfo fixtures in
 * tests/fixtures/cgroup), runc-style cgroupsPath resolution, and the v1/v2 resource writers on
 * fixture trees built in a temp dir (the test kernel has only v1 controllers, so v2 is only
 * testable this way). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sdbus_dl.h"
#include "oci/oci.h"
#include "tests/unit/hull_test.h"

#define FIXTURES "tests/fixtures/cgroup"

static char *fixture(const char *name)
{
    char *text = NULL;
    hull_error_t err = NULL;
    _cleanup_free_ char *p = hull_path_join(FIXTURES, name);
    if (hull_read_file(p, 1 << 20, &text, NULL, &err) < 0) {
        fprintf(stderr, "fixture %s: %s (run from the repo root)\n", p, hull_error_msg(&err));
        hull_error_free(&err);
        fail();
    }
    return text;
}

static char *get(const char *dir, const char *file)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    char *text = NULL;
    hull_error_t err = NULL;
    if (hull_read_file(p, 1 << 20, &text, NULL, &err) < 0) {
        hull_error_free(&err);
        return NULL;
    }
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    return text;
}

#define assert_file(dir, file, want)                                                               \
    do {                                                                                           \
        _cleanup_free_ char *_g = get(dir, file);                                                  \
        assert_non_null(_g);                                                                       \
        assert_string_equal(_g, want);                                                             \
    } while (0)

static yajl_val parse(const char *text)
{
    yajl_val v = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_json_parse(text, "test", &v, &err), 0);
    return v;
}

/* The JSON -> typed -> library path hull-oci takes (the model's parser at load, then the
 * library's writers), for tests written against linux.resources JSON; a parse error is the
 * result. */
static int typed(yajl_val res, struct hull_cgroup_resources *t, hull_error_t *err)
{
    return hull_ocispec_resources_from_tree(res, t, err);
}

static int v2_apply_json(const char *dir, yajl_val res, hull_error_t *err)
{
    _cleanup_cgroup_resources_ struct hull_cgroup_resources t;
    int r = typed(res, &t, err);
    return r < 0 ? r : hull_cgroup_v2_apply(dir, &t, err);
}

static int v1_apply_json(const char *ctrl, const char *dir, yajl_val res, bool update,
                         hull_error_t *err)
{
    _cleanup_cgroup_resources_ struct hull_cgroup_resources t;
    int r = typed(res, &t, err);
    return r < 0 ? r : hull_cgroup_v1_apply(ctrl, dir, &t, update ? HULL_CGROUP_UPDATE : 0, err);
}

static int apply_json(struct hull_cgroup *cg, yajl_val res, bool update, hull_error_t *err)
{
    _cleanup_cgroup_resources_ struct hull_cgroup_resources t;
    int r = typed(res, &t, err);
    return r < 0 ? r : oci_cgroup_apply(cg, &t, NULL, update, err);
}

static int systemd_props_json(yajl_val res, struct hull_systemd_props *p, hull_error_t *err)
{
    _cleanup_cgroup_resources_ struct hull_cgroup_resources t;
    int r = typed(res, &t, err);
    return r < 0 ? r : hull_cgroup_systemd_props(&t, HULL_CGROUP_V2, p, err);
}

static void rm_tree(const char *dir)
{
    hull_error_t err = NULL;
    hull_rm_rf(dir, &err);
    hull_error_free(&err);
}

/* ---- layout ------------------------------------------------------------------------------- */

static void test_layout_hybrid(void **state)
{
    (void)state;
    _cleanup_free_ char *mi = fixture("mountinfo-hybrid");
    struct hull_cgroup_layout l;
    hull_cgroup_layout_parse(mi, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    assert_int_equal(l.n, 10);
    bool unified = false, systemd = false;
    for (size_t i = 0; i < l.n; i++) {
        unified = unified ||
                  (l.hiers[i].v2 && strcmp(l.hiers[i].mountpoint, "/sys/fs/cgroup/unified") == 0);
        systemd = systemd || strcmp(l.hiers[i].controllers, "name=systemd") == 0;
    }
    assert_true(unified && systemd);
    hull_cgroup_layout_clear(&l);
}

static void test_layout_v1_and_resolve(void **state)
{
    (void)state;
    _cleanup_free_ char *mi = fixture("mountinfo-v1");
    _cleanup_free_ char *self = fixture("proc-self-cgroup-v1");
    struct hull_cgroup_layout l;
    hull_error_t err = NULL;
    hull_cgroup_layout_parse(mi, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_V1);
    assert_int_equal(l.n, 7);
    struct hull_cgroup cg;
    /* absolute */
    assert_int_equal(hull_cgroup_resolve(&l, self, "/hull/abc", "id1", &cg, &err), 0);
    bool seen_cpu = false, seen_dev = false;
    for (size_t i = 0; i < cg.n; i++) {
        if (strcmp(cg.dirs[i].controller, "cpu") == 0) {
            seen_cpu = true;
            assert_string_equal(cg.dirs[i].controllers, "cpu,cpuacct");
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/cpu,cpuacct/hull/abc");
        }
        if (strcmp(cg.dirs[i].controller, "devices") == 0) {
            /* mount root /kubepods is not under /hull: the path is used as is */
            seen_dev = true;
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/devices/hull/abc");
        }
        if (strcmp(cg.dirs[i].controller, "name=systemd") == 0)
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/systemd/hull/abc");
    }
    assert_true(seen_cpu && seen_dev);
    hull_cgroup_clear(&cg);
    /* relative: below the caller's cgroup; the devices mount shows only /kubepods */
    assert_int_equal(hull_cgroup_resolve(&l, self, "ctr", "id1", &cg, &err), 0);
    for (size_t i = 0; i < cg.n; i++) {
        if (strcmp(cg.dirs[i].controller, "memory") == 0)
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/memory/user.slice/ctr");
        if (strcmp(cg.dirs[i].controller, "devices") == 0)
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/devices/pod1/ctr");
        if (strcmp(cg.dirs[i].controller, "freezer") == 0)
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/freezer/ctr");
    }
    hull_cgroup_clear(&cg);
    /* empty: the id, relative */
    assert_int_equal(hull_cgroup_resolve(&l, self, "", "myid", &cg, &err), 0);
    for (size_t i = 0; i < cg.n; i++)
        if (strcmp(cg.dirs[i].controller, "pids") == 0)
            assert_string_equal(cg.dirs[i].path, "/sys/fs/cgroup/pids/user.slice/myid");
    hull_cgroup_clear(&cg);
    /* escapes */
    assert_int_equal(hull_cgroup_resolve(&l, self, "/hull/../../etc", "x", &cg, &err), -EINVAL);
    hull_error_free(&err);
    assert_int_equal(hull_cgroup_resolve(&l, self, "system.slice:hull:x", "x", &cg, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "systemd"));
    hull_error_free(&err);
    hull_cgroup_layout_clear(&l);
}

static void test_layout_v2_and_resolve(void **state)
{
    (void)state;
    _cleanup_free_ char *mi = fixture("mountinfo-v2");
    _cleanup_free_ char *self = fixture("proc-self-cgroup-v2");
    struct hull_cgroup_layout l;
    hull_error_t err = NULL;
    hull_cgroup_layout_parse(mi, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_V2);
    assert_int_equal(l.n, 1);
    struct hull_cgroup cg;
    assert_int_equal(hull_cgroup_resolve(&l, self, "/kubepods/pod1/ctr", "x", &cg, &err), 0);
    assert_int_equal(cg.n, 1);
    assert_string_equal(cg.dirs[0].controller, "unified");
    assert_string_equal(cg.dirs[0].path, "/sys/fs/cgroup/kubepods/pod1/ctr");
    assert_string_equal(cg.dirs[0].mount, "/sys/fs/cgroup");
    hull_cgroup_clear(&cg);
    assert_int_equal(hull_cgroup_resolve(&l, self, "c1", "x", &cg, &err), 0);
    assert_string_equal(cg.dirs[0].path, "/sys/fs/cgroup/user.slice/session-1.scope/c1");
    hull_cgroup_clear(&cg);
    hull_cgroup_layout_clear(&l);
}

static void test_weights(void **state)
{
    (void)state;
    assert_int_equal(hull_cgroup_shares_to_weight(2), 1);
    assert_int_equal(hull_cgroup_shares_to_weight(262144), 10000);
    assert_int_equal(hull_cgroup_shares_to_weight(1024), 39);
    assert_int_equal(hull_cgroup_shares_to_weight(0), 0);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(10), 1);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(1000), 10000);
    assert_int_equal(hull_cgroup_blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
}

/* ---- v2 writers on a fixture tree ---------------------------------------------------------- */

static char *v2_tree(char **leaf)
{
    char *base = hull_test_tmpdir("oci-cg");
    hull_test_write_at(base, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    hull_test_write_at(base, "cgroup.subtree_control", "");
    _cleanup_free_ char *mid = hull_path_join(base, "hull");
    assert_int_equal(mkdir(mid, 0755), 0);
    hull_test_write_at(mid, "cgroup.controllers", "cpuset cpu io memory pids\n");
    hull_test_write_at(mid, "cgroup.subtree_control", "");
    *leaf = hull_path_join(mid, "ctr");
    assert_int_equal(mkdir(*leaf, 0755), 0);
    static const char *const files[] = {"memory.max",
                                        "memory.swap.max",
                                        "memory.low",
                                        "memory.high",
                                        "memory.events",
                                        "cpu.weight",
                                        "cpu.max",
                                        "cpu.idle",
                                        "cpuset.cpus",
                                        "cpuset.mems",
                                        "pids.max",
                                        "io.weight",
                                        "io.max",
                                        "hugetlb.2MB.max",
                                        "cgroup.freeze",
                                        "cgroup.events",
                                        "cgroup.procs",
                                        "cgroup.controllers",
                                        NULL};
    for (size_t i = 0; files[i]; i++)
        hull_test_write_at(*leaf, files[i], "");
    hull_test_write_at(*leaf, "cpu.max", "max 100000\n");
    return base;
}

static void test_v2_apply(void **state)
{
    (void)state;
    _cleanup_free_ char *leaf = NULL;
    _cleanup_free_ char *base = v2_tree(&leaf);
    yajl_val res =
        parse("{\"memory\":{\"limit\":67108864,\"swap\":100663296,\"reservation\":33554432},"
              "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":200000,\"cpus\":\"0-1\","
              "\"mems\":\"0\",\"idle\":1},"
              "\"pids\":{\"limit\":-1},"
              "\"blockIO\":{\"weight\":500,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
              "\"rate\":1048576}]},"
              "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}],"
              "\"unified\":{\"memory.high\":\"50000000\"}}");
    hull_error_t err = NULL;
    int r = v2_apply_json(leaf, res, &err);
    if (r < 0)
        fprintf(stderr, "%s\n", hull_error_msg(&err));
    assert_int_equal(r, 0);
    assert_file(leaf, "memory.max", "67108864");
    assert_file(leaf, "memory.swap.max", "33554432"); /* swap - limit */
    assert_file(leaf, "memory.low", "33554432");
    assert_file(leaf, "cpu.weight", "39");
    assert_file(leaf, "cpu.max", "50000 200000");
    assert_file(leaf, "cpu.idle", "1");
    assert_file(leaf, "cpuset.cpus", "0-1");
    assert_file(leaf, "cpuset.mems", "0");
    assert_file(leaf, "pids.max", "max");
    char w[32];
    snprintf(w, sizeof(w), "%llu", (unsigned long long)hull_cgroup_blkio_to_io_weight(500));
    assert_file(leaf, "io.weight", w);
    assert_file(leaf, "io.max", "8:0 rbps=1048576");
    assert_file(leaf, "hugetlb.2MB.max", "4194304");
    assert_file(leaf, "memory.high", "50000000");
    yajl_tree_free(res);

    /* update: only what is given changes; quota alone keeps the period */
    res = parse("{\"memory\":{\"limit\":-1},\"cpu\":{\"quota\":-1}}");
    assert_int_equal(v2_apply_json(leaf, res, &err), 0);
    assert_file(leaf, "memory.max", "max");
    assert_file(leaf, "cpu.max", "max 100000");
    assert_file(leaf, "memory.low", "33554432");
    yajl_tree_free(res);
    rm_tree(base);
}

static void test_v2_apply_errors(void **state)
{
    (void)state;
    _cleanup_free_ char *leaf = NULL;
    _cleanup_free_ char *base = v2_tree(&leaf);
    hull_error_t err = NULL;
    static const char *const bad[] = {
        "{\"memory\":{\"limit\":100,\"swap\":50}}",
        "{\"memory\":{\"swap\":50}}",
        "{\"unified\":{\"../escape\":\"1\"}}",
        "{\"unified\":{\"cgroup.procs\":\"1\"}}",
        "{\"unified\":{\"memory.high\":5}}",
        "{\"unified\":{\"memory.nonexistent\":\"5\"}}",
        "{\"hugepageLimits\":[{\"pageSize\":\"../2MB\",\"limit\":1}]}",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        yajl_val res = parse(bad[i]);
        assert_true(v2_apply_json(leaf, res, &err) < 0);
        assert_non_null(err);
        hull_error_free(&err);
        yajl_tree_free(res);
    }
    _cleanup_free_ char *escaped = hull_path_join(base, "hull/escape");
    assert_int_equal(access(escaped, F_OK), -1);
    rm_tree(base);
}

static void test_v2_enable_controllers(void **state)
{
    (void)state;
    _cleanup_free_ char *leaf = NULL;
    _cleanup_free_ char *base = v2_tree(&leaf);
    hull_error_t err = NULL;
    assert_int_equal(hull_cgroup_v2_enable_controllers(base, leaf, &err), 0);
    assert_file(base, "cgroup.subtree_control", "+cpuset +cpu +io +memory +hugetlb +pids");
    _cleanup_free_ char *mid = hull_path_join(base, "hull");
    assert_file(mid, "cgroup.subtree_control", "+cpuset +cpu +io +memory +pids");
    rm_tree(base);
}

static void test_v2_freeze_oom_pids(void **state)
{
    (void)state;
    _cleanup_free_ char *leaf = NULL;
    _cleanup_free_ char *base = v2_tree(&leaf);
    struct hull_cgroup cg = {.mode = HULL_CGROUP_V2, .n = 1};
    cg.dirs = xmalloc0(sizeof(*cg.dirs));
    cg.dirs[0].controller = xstrdup("unified");
    cg.dirs[0].controllers = xstrdup("");
    cg.dirs[0].path = xstrdup(leaf);
    cg.dirs[0].mount = xstrdup(base);
    hull_error_t err = NULL;
    hull_test_write_at(leaf, "cgroup.events", "populated 1\nfrozen 1\n");
    assert_int_equal(hull_cgroup_freeze(&cg, true, &err), 0);
    assert_file(leaf, "cgroup.freeze", "1");
    bool frozen = false;
    assert_int_equal(hull_cgroup_is_frozen(&cg, &frozen), 0);
    assert_true(frozen);
    uint64_t n = 99;
    hull_test_write_at(leaf, "memory.events",
                       "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n");
    assert_int_equal(hull_cgroup_oom_count(&cg, &n), 0);
    assert_int_equal(n, 2);
    hull_test_write_at(leaf, "cgroup.procs", "12\n34\n");
    pid_t *pids = NULL;
    size_t np = 0;
    assert_int_equal(hull_cgroup_pids(&cg, &pids, &np, &err), 0);
    assert_int_equal(np, 2);
    assert_int_equal(pids[0], 12);
    assert_int_equal(pids[1], 34);
    free(pids);
    hull_cgroup_clear(&cg);
    rm_tree(base);
}

/* ---- v1 writers on a fixture tree ---------------------------------------------------------- */

static void test_v1_memory_and_cpuset(void **state)
{
    (void)state;
    char *base = hull_test_tmpdir("oci-cg");
    hull_test_write_at(base, "cpuset.cpus", "0-3\n");
    hull_test_write_at(base, "cpuset.mems", "0\n");
    _cleanup_free_ char *leaf = hull_path_join(base, "ctr");
    assert_int_equal(mkdir(leaf, 0755), 0);
    static const char *const files[] = {"memory.limit_in_bytes",
                                        "memory.memsw.limit_in_bytes",
                                        "memory.soft_limit_in_bytes",
                                        "memory.swappiness",
                                        "memory.oom_control",
                                        "cpuset.cpus",
                                        "cpuset.mems",
                                        "pids.max",
                                        "cpu.shares",
                                        "cpu.cfs_quota_us",
                                        "cpu.cfs_period_us",
                                        NULL};
    for (size_t i = 0; files[i]; i++)
        hull_test_write_at(leaf, files[i], "");
    hull_test_write_at(leaf, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
    hull_error_t err = NULL;
    yajl_val res = parse("{\"memory\":{\"limit\":1000,\"swap\":2000,\"reservation\":500,"
                         "\"swappiness\":5,\"disableOOMKiller\":true},"
                         "\"pids\":{\"limit\":0},\"cpu\":{\"shares\":0,\"quota\":1000,"
                         "\"period\":10000}}");
    assert_int_equal(v1_apply_json("memory", leaf, res, false, &err), 0);
    assert_int_equal(v1_apply_json("cpuset", leaf, res, false, &err), 0);
    assert_int_equal(v1_apply_json("pids", leaf, res, false, &err), 0);
    /* cpu.shares 0 means unset; the fake file cannot clamp so only quota/period matter */
    assert_int_equal(v1_apply_json("cpu", leaf, res, false, &err), 0);
    assert_file(leaf, "memory.limit_in_bytes", "1000");
    assert_file(leaf, "memory.memsw.limit_in_bytes", "2000");
    assert_file(leaf, "memory.soft_limit_in_bytes", "500");
    assert_file(leaf, "memory.swappiness", "5");
    assert_file(leaf, "memory.oom_control", "1");
    assert_file(leaf, "cpuset.cpus", "0-3"); /* copied from the parent */
    assert_file(leaf, "cpuset.mems", "0");
    assert_file(leaf, "pids.max", "max");
    assert_file(leaf, "cpu.cfs_quota_us", "1000");
    assert_file(leaf, "cpu.cfs_period_us", "10000");
    yajl_tree_free(res);
    res = parse("{\"memory\":{\"swappiness\":101}}");
    assert_true(v1_apply_json("memory", leaf, res, false, &err) < 0);
    hull_error_free(&err);
    yajl_tree_free(res);
    rm_tree(base);
    free(base);
}

/* ---- mixed hybrid: some controllers moved to cgroup2, memory still on v1 ------------------ */

static void test_mixed_hybrid(void **state)
{
    (void)state;
    _cleanup_free_ char *mi = fixture("mountinfo-hybrid-mixed");
    struct hull_cgroup_layout l;
    hull_error_t err = NULL;
    hull_cgroup_layout_parse(mi, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    assert_int_equal(l.n, 3);
    struct hull_cgroup real;
    assert_int_equal(
        hull_cgroup_resolve(&l, "4:memory:/x\n0::/\n", "/hull/pod/c", "c", &real, &err), 0);
    assert_int_equal(real.n, 3);
    bool uni = false;
    for (size_t i = 0; i < real.n; i++)
        uni = uni || (strcmp(real.dirs[i].controller, "unified") == 0 &&
                      strcmp(real.dirs[i].path, "/sys/fs/cgroup/unified/hull/pod/c") == 0);
    assert_true(uni);
    hull_cgroup_clear(&real);
    hull_cgroup_layout_clear(&l);

    /* the same layout on fixture trees: a v1 memory and devices dir, a cgroup2 dir */
    _cleanup_free_ char *leaf = NULL;
    _cleanup_free_ char *base = v2_tree(&leaf);
    hull_test_write_at(leaf, "cgroup.controllers", "cpuset cpu io pids\n");
    _cleanup_free_ char *mem = hull_path_join(base, "v1mem");
    assert_int_equal(mkdir(mem, 0755), 0);
    hull_test_write_at(mem, "memory.limit_in_bytes", "");
    hull_test_write_at(mem, "memory.soft_limit_in_bytes", "");
    _cleanup_free_ char *dev = hull_path_join(base, "v1dev");
    assert_int_equal(mkdir(dev, 0755), 0);
    hull_test_write_at(dev, "devices.allow", "");
    hull_test_write_at(dev, "devices.deny", "");
    struct hull_cgroup cg = {.mode = HULL_CGROUP_HYBRID, .n = 3};
    cg.dirs = xmalloc0(3 * sizeof(*cg.dirs));
    const char *names[] = {"memory", "devices", "unified"};
    const char *paths[] = {mem, dev, leaf};
    for (size_t i = 0; i < 3; i++) {
        cg.dirs[i].controller = xstrdup(names[i]);
        cg.dirs[i].controllers = xstrdup(i == 2 ? "" : names[i]);
        cg.dirs[i].path = xstrdup(paths[i]);
        cg.dirs[i].mount = xstrdup(base);
    }
    yajl_val res =
        parse("{\"memory\":{\"limit\":67108864},\"cpu\":{\"shares\":1024,"
              "\"quota\":20000,\"period\":100000,\"cpus\":\"0\"},"
              "\"pids\":{\"limit\":9},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}");
    assert_int_equal(apply_json(&cg, res, false, &err), 0);
    assert_file(mem, "memory.limit_in_bytes", "67108864");
    assert_file(leaf, "memory.max", ""); /* memory is v1's here */
    assert_file(leaf, "cpu.max", "20000 100000");
    assert_file(leaf, "cpu.weight", "39");
    assert_file(leaf, "cpuset.cpus", "0");
    assert_file(leaf, "pids.max", "9");
    assert_file(dev, "devices.deny", "a");
    /* no v1 freezer: cgroup2's cgroup.freeze */
    hull_test_write_at(leaf, "cgroup.events", "populated 1\nfrozen 1\n");
    assert_int_equal(hull_cgroup_freeze(&cg, true, &err), 0);
    assert_file(leaf, "cgroup.freeze", "1");
    /* plain hybrid (cgroup2 offers no controller): nothing is written there */
    hull_test_write_at(leaf, "cgroup.controllers", "\n");
    hull_test_write_at(leaf, "cpu.max", "max 100000\n");
    assert_int_equal(apply_json(&cg, res, true, &err), 0);
    assert_file(leaf, "cpu.max", "max 100000");
    yajl_tree_free(res);
    hull_cgroup_clear(&cg);
    rm_tree(base);
}

/* systemd driver: slice names, runc's "slice:prefix:name", the unit's cgroup per hierarchy */
static void test_systemd_names(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    char *p = NULL;
    assert_int_equal(hull_systemd_expand_slice("kubepods-burstable-pod1_2.slice", &p, &err), 0);
    assert_string_equal(p,
                        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice");
    free(p);
    assert_int_equal(hull_systemd_expand_slice("system.slice", &p, &err), 0);
    assert_string_equal(p, "/system.slice");
    free(p);
    assert_int_equal(hull_systemd_expand_slice("-.slice", &p, &err), 0);
    assert_string_equal(p, "/");
    free(p);
    static const char *const bad[] = {"a--b.slice", "-a.slice", "a-.slice",   "a/b.slice",
                                      "a.scope",    ".slice",   "../x.slice", "a:b.slice",
                                      "",           NULL};
    for (size_t i = 0; bad[i]; i++) {
        assert_false(hull_systemd_slice_valid(bad[i]));
        assert_int_equal(hull_systemd_expand_slice(bad[i], &p, &err), -EINVAL);
        hull_error_free(&err);
    }
    assert_true(hull_systemd_path_form("kubepods.slice"));
    assert_true(hull_systemd_path_form("kubepods.slice:hull:abc"));
    assert_false(hull_systemd_path_form("/kubepods/pod1"));
    assert_false(hull_systemd_path_form(""));

    char *slice = NULL, *unit = NULL;
    assert_int_equal(hull_systemd_parse_path("kubepods-besteffort.slice:hull:abc", NULL, "x",
                                             &slice, &unit, &err),
                     0);
    assert_string_equal(slice, "kubepods-besteffort.slice");
    assert_string_equal(unit, "hull-abc.scope");
    free(slice);
    free(unit);
    /* runc's defaults: empty slice is system.slice, empty path takes the prefix and id */
    assert_int_equal(hull_systemd_parse_path(":p:n", NULL, "x", &slice, &unit, &err), 0);
    assert_string_equal(slice, "system.slice");
    assert_string_equal(unit, "p-n.scope");
    free(slice);
    free(unit);
    assert_int_equal(hull_systemd_parse_path("", "hull-oci", "c1", &slice, &unit, &err), 0);
    assert_string_equal(slice, "system.slice");
    assert_string_equal(unit, "hull-oci-c1.scope");
    free(slice);
    free(unit);
    assert_int_equal(hull_systemd_parse_path("a.slice::b-c.slice", NULL, "x", &slice, &unit, &err),
                     0);
    assert_string_equal(unit, "b-c.slice");
    free(slice);
    free(unit);
    static const char *const bad_paths[] = {"/a/b",        "a.slice:x",      "a.slice:x:y:z",
                                            "a.scope:x:y", "a.slice:x:../y", "a.slice:x:y/z",
                                            NULL};
    for (size_t i = 0; bad_paths[i]; i++) {
        assert_int_equal(hull_systemd_parse_path(bad_paths[i], NULL, "x", &slice, &unit, &err),
                         -EINVAL);
        assert_null(unit);
        hull_error_free(&err);
    }
    assert_int_equal(hull_systemd_cgroup_of("k-p1.slice:hull:abc", &p, &err), 0);
    assert_string_equal(p, "/k.slice/k-p1.slice/hull-abc.scope");
    free(p);
    assert_int_equal(hull_systemd_cgroup_of("k-p1.slice", &p, &err), 0);
    assert_string_equal(p, "/k.slice/k-p1.slice");
    free(p);

    /* the unit's cgroup below each hierarchy's root (v2 and v1 fixtures) */
    static const char *const fixtures[] = {"mountinfo-v2", "mountinfo-v1", NULL};
    for (size_t f = 0; fixtures[f]; f++) {
        _cleanup_free_ char *mi = fixture(fixtures[f]);
        struct hull_cgroup_layout l;
        hull_cgroup_layout_parse(mi, NULL, &l);
        struct hull_cgroup cg;
        assert_int_equal(hull_cgroup_systemd_resolve(&l, "k-p1.slice:hull:abc", "abc", &cg, &err),
                         0);
        assert_string_equal(cg.systemd_unit, "hull-abc.scope");
        assert_string_equal(cg.systemd_slice, "k-p1.slice");
        assert_true(cg.n >= 1);
        for (size_t i = 0; i < cg.n; i++) {
            _cleanup_free_ char *want =
                hull_path_join(cg.dirs[i].mount, "k.slice/k-p1.slice/hull-abc.scope");
            assert_string_equal(cg.dirs[i].path, want);
        }
        hull_cgroup_clear(&cg);
        hull_cgroup_layout_clear(&l);
    }
}

static uint64_t prop_u64(const struct hull_systemd_props *p, const char *name)
{
    const struct hull_systemd_prop *e = hull_systemd_props_find(p, name);
    assert_non_null(e);
    assert_int_equal(e->type, HULL_SD_U64);
    return e->u64;
}

/* runtime-spec resources -> unit properties (the values runc sends) */
/* libsystemd is dlopen'ed on first use: every function the driver calls is found and works */
static void test_systemd_sdbus_load(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    assert_int_equal(hull_sdbus_load(&err), 0);
    assert_int_equal(hull_sdbus_load(&err), 0); /* once per process, then the same table */
    const struct hull_sdbus *t = hull_sdbus();
    assert_non_null(t); /* only once every function was found */
    sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("org.freedesktop.systemd1.NoSuchUnit", "gone");
    assert_true(sd_bus_error_is_set(&e));
    assert_true(sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"));
    assert_false(sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists"));
    sd_bus *bus = NULL; /* a bus object, never started: no systemd needed */
    assert_true(sd_bus_new(&bus) >= 0);
    assert_true(sd_bus_set_address(bus, "unix:path=/nonexistent") >= 0);
    assert_null(sd_bus_flush_close_unref(bus));
}

static void test_systemd_props(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    yajl_val res = NULL;
    assert_int_equal(hull_json_parse("{\"memory\":{\"limit\":104857600,\"swap\":209715200,"
                                     "\"reservation\":1048576},"
                                     "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,"
                                     "\"cpus\":\"0-2,9\",\"mems\":\"0\"},"
                                     "\"pids\":{\"limit\":77},\"blockIO\":{\"weight\":500}}",
                                     "r", &res, &err),
                     0);
    struct hull_systemd_props p = {0};
    assert_int_equal(systemd_props_json(res, &p, &err), 0);
    assert_int_equal(prop_u64(&p, "MemoryMax"), 104857600);
    assert_int_equal(prop_u64(&p, "MemorySwapMax"), 104857600);
    assert_int_equal(prop_u64(&p, "MemoryLow"), 1048576);
    assert_int_equal(prop_u64(&p, "CPUWeight"), 39);
    assert_int_equal(prop_u64(&p, "CPUQuotaPerSecUSec"), 500000);
    assert_int_equal(prop_u64(&p, "CPUQuotaPeriodUSec"), 100000);
    assert_int_equal(prop_u64(&p, "TasksMax"), 77);
    assert_int_equal(prop_u64(&p, "IOWeight"), hull_cgroup_blkio_to_io_weight(500));
    const struct hull_systemd_prop *cpus = hull_systemd_props_find(&p, "AllowedCPUs");
    assert_non_null(cpus);
    assert_int_equal(cpus->type, HULL_SD_BYTES);
    assert_int_equal(cpus->n_bytes, 2);
    assert_int_equal(cpus->bytes[0], 0x07);
    assert_int_equal(cpus->bytes[1], 0x02);
    const struct hull_systemd_prop *mems = hull_systemd_props_find(&p, "AllowedMemoryNodes");
    assert_non_null(mems);
    assert_int_equal(mems->n_bytes, 1);
    assert_int_equal(mems->bytes[0], 0x01);
    hull_systemd_props_clear(&p);
    yajl_tree_free(res);

    /* unlimited values are systemd's infinity; quota rounds up to 10 ms per second */
    assert_int_equal(hull_json_parse("{\"memory\":{\"limit\":-1,\"swap\":-1},\"cpu\":{\"quota\":"
                                     "12345,\"period\":100000},\"pids\":{\"limit\":0}}",
                                     "r", &res, &err),
                     0);
    assert_int_equal(systemd_props_json(res, &p, &err), 0);
    assert_true(prop_u64(&p, "MemoryMax") == UINT64_MAX);
    assert_true(prop_u64(&p, "MemorySwapMax") == UINT64_MAX);
    assert_true(prop_u64(&p, "TasksMax") == UINT64_MAX);
    assert_int_equal(prop_u64(&p, "CPUQuotaPerSecUSec"), 130000);
    hull_systemd_props_clear(&p);
    yajl_tree_free(res);

    assert_int_equal(hull_json_parse("{\"cpu\":{\"cpus\":\"1-x\"}}", "r", &res, &err), 0);
    assert_int_equal(systemd_props_json(res, &p, &err), -EINVAL);
    hull_error_free(&err);
    hull_systemd_props_clear(&p);
    yajl_tree_free(res);
}

/* ---- device rules as a BPF program on a real cgroup2 --------------------------------------- */
/* In child: 0 when opening path (flags) succeeds, 1 when it fails with EPERM, 2 otherwise. */
static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno == EPERM ? 1 : 2;
}

/* runs the open checks in a child moved into dir; its exit status */
static int open_checks_in(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char procs[4096], me[32];
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        snprintf(me, sizeof(me), "%d", (int)getpid());
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, me, strlen(me)) < 0)
            _exit(99);
        close(fd);
        /* bit 0: /dev/kmsg read, bit 1: /dev/loop-control read, bit 2: /dev/null read-write */
        int out = 0;
        out |= try_open("/dev/kmsg", O_RDONLY) << 0;
        out |= try_open("/dev/loop-control", O_RDONLY) << 2;
        out |= try_open("/dev/null", O_RDWR) << 4;
        _exit(out);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The typed linux.resources.devices compiled to the cgroup2 device program and enforced by the
 * kernel (the cgroup2 of this host: pure v2 or a hybrid's /sys/fs/cgroup/unified): deny all,
 * the standard devices, then the spec's rules; an update replaces the program. */
static void test_v2_device_program_enforced(void **state)
{
    const char *roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    const char *root = NULL;
    for (size_t i = 0; i < 2 && root == NULL; i++)
        if (geteuid() == 0 && hull_is_cgroup2_mount(roots[i]) && access("/dev/kmsg", F_OK) == 0 &&
            access("/dev/loop-control", F_OK) == 0)
            root = roots[i];
    if (root == NULL)
        skip(); /* needs root, a cgroup2 mount and /dev/kmsg, /dev/loop-control */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/hull-unit-devbpf-%d", root, (int)getpid());
    assert_int_equal(mkdir(dir, 0755), 0);
    *state = xstrdup(dir); /* removed by remove_cgroup_dir, even when an assertion fails */
    hull_error_t err = NULL;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources res;
    /* deny all; /dev/kmsg (c 1:11) read only */
    assert_hull_ok(hull_ocispec_resources_parse(
                       "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,"
                       "\"type\":\"c\",\"major\":1,\"minor\":11,\"access\":\"r\"}]}",
                       &res, &err),
                   err);
    int r = oci_cgroup_v2_devices(dir, &res, NULL, &err);
    if (r < 0)
        fprintf(stderr, "%s\n", hull_error_msg(&err));
    assert_int_equal(r, 0);
    int got = open_checks_in(dir);
    assert_int_equal(got & 3, 0);        /* kmsg: allowed by the spec's rule */
    assert_int_equal((got >> 2) & 3, 1); /* loop-control (c 10:237): denied (EPERM) */
    assert_int_equal((got >> 4) & 3, 0); /* null: a standard device */
    /* update: kmsg write-only now (a read is denied), the old program detached */
    hull_cgroup_resources_clear(&res);
    assert_hull_ok(hull_ocispec_resources_parse(
                       "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,"
                       "\"type\":\"c\",\"major\":1,\"minor\":11,\"access\":\"w\"}]}",
                       &res, &err),
                   err);
    assert_int_equal(oci_cgroup_v2_devices(dir, &res, NULL, &err), 0);
    got = open_checks_in(dir);
    assert_int_equal(got & 3, 1);
    assert_int_equal((got >> 4) & 3, 0);
}

static int remove_cgroup_dir(void **state)
{
    if (*state && rmdir(*state) < 0)
        fprintf(stderr, "rmdir %s: %s\n", (char *)*state, strerror(errno));
    free(*state);
    *state = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_hybrid),
        cmocka_unit_test(test_layout_v1_and_resolve),
        cmocka_unit_test(test_layout_v2_and_resolve),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_v2_apply),
        cmocka_unit_test(test_v2_apply_errors),
        cmocka_unit_test(test_v2_enable_controllers),
        cmocka_unit_test(test_v2_freeze_oom_pids),
        cmocka_unit_test(test_v1_memory_and_cpuset),
        cmocka_unit_test(test_mixed_hybrid),
        cmocka_unit_test(test_systemd_names),
        cmocka_unit_test(test_systemd_props),
        cmocka_unit_test(test_systemd_sdbus_load),
        cmocka_unit_test_teardown(test_v2_device_program_enforced, remove_cgroup_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
