/* Unit tests of cni/ (config loading, results, CNI_ARGS, plugin execution with a recording
 * fake plugin: prevResult chaining, runtimeConfig, DEL order and cache) and of the sandbox
 * helpers (resolv.conf, cgroupfs v1/v2 on fixture trees). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>

#include "cni/cni.h"
#include "server/pod/pod.h"

static char *read_text(const char *path)
{
    char *buf = NULL;
    hull_error_t err = NULL;
    if (hull_read_file(path, 1 << 20, &buf, NULL, &err) < 0) {
        hull_error_free(&err);
        return NULL;
    }
    return buf;
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_parse_conflist(void **state)
{
    (void)state;
    struct cni_network *n = NULL;
    hull_error_t err = NULL;
    const char *text = "{\"cniVersion\":\"1.0.0\",\"name\":\"net1\",\"plugins\":["
                       "{\"type\":\"bridge\"},{\"type\":\"portmap\"}]}";
    assert_hull_ok(cni_network_parse(text, "t", false, &n, &err), err);
    assert_string_equal(cni_network_name(n), "net1");
    assert_string_equal(cni_network_version(n), "1.0.0");
    assert_int_equal(cni_network_plugin_count(n), 2);
    assert_string_equal(cni_network_plugin_type(n, 1), "portmap");
    cni_network_unref(n);

    /* a single-plugin .conf */
    assert_int_equal(cni_network_parse("{\"cniVersion\":\"0.4.0\",\"name\":\"x\",\"type\":\"ptp\"}",
                                       "t", true, &n, &err),
                     0);
    assert_int_equal(cni_network_plugin_count(n), 1);
    assert_string_equal(cni_network_plugin_type(n, 0), "ptp");
    cni_network_unref(n);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "not json",
        "[]",
        "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}",                      /* no plugins */
        "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}",       /* empty */
        "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"bridge\"}]}", /* no name */
        "{\"name\":\"n\",\"plugins\":[{\"type\":\"bridge\"}]}",           /* no version */
        "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{}]}",     /* no type */
        "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}",
        "{\"cniVersion\":\"1.0.0\",\"name\":\"../x\",\"plugins\":[{\"type\":\"bridge\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cni_network *n = NULL;
        hull_error_t err = NULL;
        assert_true(cni_network_parse(bad[i], "bad.conflist", false, &n, &err) < 0);
        assert_non_null(err);
        assert_non_null(strstr(hull_error_msg(&err), "bad.conflist"));
        hull_error_free(&err);
    }
}

static void test_load_dir_order_and_skip(void **state)
{
    (void)state;
    _cleanup_free_ char *d = hull_test_tmpdir("cni");
    hull_error_t err = NULL;
    struct cni_network *n = NULL;
    assert_int_equal(cni_network_load_dir(d, &n, &err), -ENOENT);
    assert_non_null(strstr(hull_error_msg(&err), "no network config"));
    hull_error_free(&err);

    _cleanup_free_ char *a = hull_path_join(d, "05-broken.conflist");
    _cleanup_free_ char *b = hull_path_join(d, "10-b.conf");
    _cleanup_free_ char *c = hull_path_join(d, "20-a.conflist");
    _cleanup_free_ char *x = hull_path_join(d, "00-ignored.txt");
    hull_test_write_file(a, "{broken", 0644);
    hull_test_write_file(b, "{\"cniVersion\":\"0.4.0\",\"name\":\"b\",\"type\":\"bridge\"}", 0644);
    hull_test_write_file(
        c, "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"x\"}]}", 0644);
    hull_test_write_file(x, "{}", 0644);
    assert_hull_ok(cni_network_load_dir(d, &n, &err), err);
    assert_string_equal(cni_network_name(n), "b"); /* first valid in lexical order */
    cni_network_unref(n);
    unlink(b);
    unlink(c);
    assert_int_equal(cni_network_load_dir(d, &n, &err), -ENOENT);
    assert_non_null(strstr(hull_error_msg(&err), "05-broken.conflist"));
    hull_error_free(&err);
    hull_rm_rf(d, NULL);
}

static void test_default_config(void **state)
{
    (void)state;
    _cleanup_free_ char *d = hull_test_tmpdir("cni");
    hull_error_t err = NULL;
    bool written = false;
    assert_hull_ok(cni_write_default_config(d, "10.77.0.0/16", &written, &err), err);
    assert_true(written);
    struct cni_network *n = NULL;
    assert_hull_ok(cni_network_load_dir(d, &n, &err), err);
    assert_string_equal(cni_network_name(n), "hull");
    assert_int_equal(cni_network_plugin_count(n), 3);
    assert_string_equal(cni_network_plugin_type(n, 0), "bridge");
    assert_string_equal(cni_network_plugin_type(n, 2), "loopback");
    assert_non_null(strstr(cni_network_text(n), "10.77.0.0/16"));
    assert_non_null(strstr(cni_network_text(n), "hull0"));
    cni_network_unref(n);
    /* not rewritten when a config exists */
    assert_hull_ok(cni_write_default_config(d, "10.1.0.0/16", &written, &err), err);
    assert_false(written);
    /* a subnet is never injected into JSON */
    _cleanup_free_ char *t = cni_default_conflist("1.2.3.0/24\",\"x\":\"y");
    assert_null(strstr(t, "\"x\""));
    hull_rm_rf(d, NULL);
}

/* ---- results, args ------------------------------------------------------------------------ */

static void test_result_parse(void **state)
{
    (void)state;
    struct cni_result *r = NULL;
    hull_error_t err = NULL;
    assert_int_equal(cni_result_parse("{\"cniVersion\":\"1.0.0\",\"ips\":["
                                      "{\"address\":\"fd00::5/64\"},"
                                      "{\"address\":\"10.1.2.3/24\",\"gateway\":\"10.1.2.1\"}]}",
                                      &r, &err),
                     0);
    assert_int_equal(r->n_ips, 2);
    assert_string_equal(r->ips[0], "10.1.2.3"); /* v4 first */
    assert_string_equal(r->ips[1], "fd00::5");
    cni_result_free(r);
    assert_hull_ok(cni_result_parse("{\"ip4\":{\"ip\":\"10.0.0.9/8\"}}", &r, &err), err);
    assert_int_equal(r->n_ips, 1);
    assert_string_equal(r->ips[0], "10.0.0.9");
    cni_result_free(r);
    assert_true(cni_result_parse("[1]", &r, &err) < 0);
    hull_error_free(&err);
}

static void test_cni_args(void **state)
{
    (void)state;
    struct cni_attachment a = {
        .container_id = "abc", .pod_name = "web", .pod_namespace = "default", .pod_uid = "u-1"};
    char *s = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(cni_build_args(&a, &s, &err), err);
    assert_string_equal(s, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
                           "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
    free(s);
    a.pod_name = "web;K8S_POD_NAMESPACE=kube-system";
    assert_int_equal(cni_build_args(&a, &s, &err), -EINVAL);
    hull_error_free(&err);
}

/* ---- plugin execution with a recording fake -------------------------------------------- */

/* Records "<n> <type> <command>" lines, each stdin and env; ADD prints prevResult plus one
 * more IP (or a fresh result); "failer" fails with a CNI error. */
static const char fake_plugin[] =
    "#!/bin/sh\n"
    "t=$(basename \"$0\")\n"
    "d=$(dirname \"$0\")/../rec\n"
    "n=$(ls \"$d\" | wc -l)\n"
    "cat > \"$d/$n-$t-$CNI_COMMAND.in\"\n"
    "env | grep '^CNI_' | sort > \"$d/$n-$t-$CNI_COMMAND.env\"\n"
    "if [ \"$t\" = failer ] && [ \"$CNI_COMMAND\" = ADD ]; then\n"
    "  echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no luck\",\"details\":\"really\"}'\n"
    "  exit 1\n"
    "fi\n"
    "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
    "  echo "
    "'{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.'$n'/24\"}],\"t\":\"'$t'\"}'\n"
    "fi\n"
    "exit 0\n";

struct fake_env {
    char *base, *bin, *rec, *cache;
    struct cni_exec ex;
    char *dirs[1];
};

static void fake_setup(struct fake_env *f)
{
    f->base = hull_test_tmpdir("cni");
    f->bin = hull_path_join(f->base, "bin");
    f->rec = hull_path_join(f->base, "rec");
    f->cache = hull_path_join(f->base, "cache");
    mkdir(f->bin, 0755);
    mkdir(f->rec, 0755);
    const char *types[] = {"first", "second", "third", "failer"};
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *p = hull_path_join(f->bin, types[i]);
        hull_test_write_file(p, fake_plugin, 0755);
    }
    f->dirs[0] = f->bin;
    f->ex = (struct cni_exec){.plugin_dirs = f->dirs, .n_plugin_dirs = 1, .cache_dir = f->cache};
}

static void fake_teardown(struct fake_env *f)
{
    hull_rm_rf(f->base, NULL);
    free(f->base);
    free(f->bin);
    free(f->rec);
    free(f->cache);
}

static char *rec_file(struct fake_env *f, int n, const char *type, const char *cmd, const char *ext)
{
    _cleanup_free_ char *p = xasprintf("%s/%d-%s-%s.%s", f->rec, n, type, cmd, ext);
    return read_text(p);
}

static void test_add_del_chain(void **state)
{
    (void)state;
    struct fake_env f;
    fake_setup(&f);
    const char *text = "{\"cniVersion\":\"1.0.0\",\"name\":\"chain\",\"plugins\":["
                       "{\"type\":\"first\",\"k\":1},"
                       "{\"type\":\"second\",\"capabilities\":{\"portMappings\":true}},"
                       "{\"type\":\"third\",\"capabilities\":{\"bandwidth\":true}}]}";
    struct cni_network *n = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(cni_network_parse(text, "t", false, &n, &err), err);
    struct cni_port_mapping pm = {.host_port = 8080, .container_port = 80, .protocol = "tcp"};
    struct cni_attachment a = {.container_id = "c0ffee",
                               .netns = "/run/netns/x",
                               .pod_name = "p",
                               .pod_namespace = "ns",
                               .pod_uid = "u",
                               .port_mappings = &pm,
                               .n_port_mappings = 1};
    struct cni_result *r = NULL;
    assert_hull_ok(cni_add(&f.ex, n, &a, &r, &err), err);
    /* the final result is the last plugin's */
    assert_int_equal(r->n_ips, 1);
    assert_string_equal(r->ips[0], "10.9.0.4"); /* 4 files recorded before it ran */
    cni_result_free(r);

    _cleanup_free_ char *in0 = rec_file(&f, 0, "first", "ADD", "in");
    _cleanup_free_ char *in1 = rec_file(&f, 2, "second", "ADD", "in");
    _cleanup_free_ char *in2 = rec_file(&f, 4, "third", "ADD", "in");
    _cleanup_free_ char *env0 = rec_file(&f, 0, "first", "ADD", "in");
    assert_non_null(in0);
    assert_non_null(in1);
    assert_non_null(in2);
    assert_null(strstr(in0, "prevResult"));
    assert_null(strstr(in0, "runtimeConfig"));
    assert_non_null(strstr(in0, "\"name\":\"chain\""));
    assert_non_null(strstr(in0, "\"cniVersion\":\"1.0.0\""));
    assert_non_null(strstr(in0, "\"k\":1"));
    /* prevResult chaining */
    assert_non_null(strstr(in1, "\"prevResult\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":"
                                "\"10.9.0.0/24\"}],\"t\":\"first\"}"));
    assert_non_null(strstr(in1, "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080,"
                                "\"containerPort\":80,\"protocol\":\"tcp\"}]}"));
    assert_non_null(strstr(in2, "\"t\":\"second\""));
    assert_null(strstr(in2, "runtimeConfig")); /* no bandwidth given */
    _cleanup_free_ char *e0 = rec_file(&f, 0, "first", "ADD", "env");
    assert_non_null(strstr(e0, "CNI_COMMAND=ADD\n"));
    assert_non_null(strstr(e0, "CNI_CONTAINERID=c0ffee\n"));
    assert_non_null(strstr(e0, "CNI_IFNAME=eth0\n"));
    assert_non_null(strstr(e0, "CNI_NETNS=/run/netns/x\n"));
    assert_non_null(strstr(e0, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;"
                               "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=u\n"));
    _cleanup_free_ char *pathline = xasprintf("CNI_PATH=%s\n", f.bin);
    assert_non_null(strstr(e0, pathline));
    (void)env0;

    /* the cache holds the result */
    struct cni_result *cached = NULL;
    assert_hull_ok(cni_cached_result(&f.ex, "chain", "c0ffee", "eth0", &cached, &err), err);
    assert_string_equal(cached->ips[0], "10.9.0.4");
    cni_result_free(cached);

    /* CHECK */
    assert_hull_ok(cni_check(&f.ex, "chain", &a, &err), err);
    _cleanup_free_ char *chk = rec_file(&f, 6, "first", "CHECK", "in");
    assert_non_null(chk);
    assert_non_null(strstr(chk, "\"t\":\"third\""));

    /* DEL with neither the network nor its name at hand: the cache entry is found by
     * container id, its config is used, reverse order, cached result */
    assert_hull_ok(cni_del(&f.ex, NULL, NULL, &a, &err), err);
    _cleanup_free_ char *d0 = rec_file(&f, 12, "third", "DEL", "in");
    _cleanup_free_ char *d1 = rec_file(&f, 14, "second", "DEL", "in");
    _cleanup_free_ char *d2 = rec_file(&f, 16, "first", "DEL", "in");
    assert_non_null(d0);
    assert_non_null(d1);
    assert_non_null(d2);
    assert_non_null(strstr(d2, "\"t\":\"third\"")); /* prevResult = cached final result */
    assert_non_null(strstr(d1, "\"portMappings\""));
    assert_int_equal(cni_cached_result(&f.ex, "chain", "c0ffee", "eth0", &cached, &err), -ENOENT);
    hull_error_free(&err);
    /* a second DEL without cache or config is a no-op */
    assert_hull_ok(cni_del(&f.ex, NULL, "chain", &a, &err), err);
    cni_network_unref(n);
    fake_teardown(&f);
}

static void test_add_failure_rolls_back(void **state)
{
    (void)state;
    struct fake_env f;
    fake_setup(&f);
    const char *text = "{\"cniVersion\":\"1.0.0\",\"name\":\"bad\",\"plugins\":["
                       "{\"type\":\"first\"},{\"type\":\"failer\"}]}";
    struct cni_network *n = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(cni_network_parse(text, "t", false, &n, &err), err);
    struct cni_attachment a = {.container_id = "dead", .netns = "/x"};
    struct cni_result *r = NULL;
    assert_true(cni_add(&f.ex, n, &a, &r, &err) < 0);
    assert_non_null(strstr(hull_error_msg(&err), "no luck: really"));
    assert_non_null(strstr(hull_error_msg(&err), "failer"));
    hull_error_free(&err);
    /* DEL ran for the list, in reverse */
    _cleanup_free_ char *d0 = rec_file(&f, 4, "failer", "DEL", "in");
    _cleanup_free_ char *d1 = rec_file(&f, 6, "first", "DEL", "in");
    assert_non_null(d0);
    assert_non_null(d1);
    assert_int_equal(cni_cached_result(&f.ex, "bad", "dead", "eth0", &r, &err), -ENOENT);
    hull_error_free(&err);

    /* a missing plugin */
    cni_network_unref(n);
    assert_int_equal(cni_network_parse("{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"plugins\":"
                                       "[{\"type\":\"nosuchplugin\"}]}",
                                       "t", false, &n, &err),
                     0);
    assert_true(cni_add(&f.ex, n, &a, &r, &err) < 0);
    assert_non_null(strstr(hull_error_msg(&err), "failed to find plugin \"nosuchplugin\""));
    hull_error_free(&err);
    cni_network_unref(n);
    fake_teardown(&f);
}

/* SECURITY.md "unbounded buffers and streams": plugin output is capped and calls time out. */
static void test_exec_limits(void **state)
{
    (void)state;
    struct fake_env f;
    fake_setup(&f);
    _cleanup_free_ char *big = hull_path_join(f.bin, "big");
    hull_test_write_file(big, "#!/bin/sh\ncat >/dev/null\nhead -c 3000000 /dev/zero | tr '\\0' x\n",
                         0755);
    _cleanup_free_ char *slow = hull_path_join(f.bin, "slow");
    hull_test_write_file(slow, "#!/bin/sh\nexec sleep 30\n", 0755);
    struct cni_attachment a = {.container_id = "lim"};
    char *out = NULL;
    hull_error_t err = NULL;
    assert_int_equal(cni_exec_plugin(&f.ex, "big", "ADD", &a, "", "{}", &out, &err), -EMSGSIZE);
    assert_null(out);
    hull_error_free(&err);
    f.ex.timeout_ms = 300;
    int64_t t0 = hull_monotonic_ns();
    assert_int_equal(cni_exec_plugin(&f.ex, "slow", "ADD", &a, "", "{}", &out, &err), -ETIMEDOUT);
    assert_true(hull_monotonic_ns() - t0 < 5000000000LL);
    assert_non_null(strstr(hull_error_msg(&err), "timed out"));
    hull_error_free(&err);
    fake_teardown(&f);
}

static void test_manager_readiness(void **state)
{
    (void)state;
    _cleanup_free_ char *d = hull_test_tmpdir("cni");
    _cleanup_free_ char *cache = hull_path_join(d, "cache");
    _cleanup_free_ char *conf = hull_path_join(d, "conf");
    mkdir(conf, 0755);
    struct cni_manager_options o = {.config_dir = conf, .cache_dir = cache};
    struct cni_manager *m = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(cni_manager_new(&o, &m, &err), err);
    char *reason = NULL, *msg = NULL;
    assert_false(cni_manager_ready(m, &reason, &msg));
    assert_string_equal(reason, "NetworkPluginNotReady");
    assert_non_null(strstr(msg, conf));
    free(reason);
    free(msg);
    _cleanup_free_ char *f = hull_path_join(conf, "10-x.conflist");
    hull_test_write_file(
        f, "{\"cniVersion\":\"1.0.0\",\"name\":\"x\",\"plugins\":[{\"type\":\"x\"}]}", 0644);
    assert_true(cni_manager_ready(m, &reason, &msg));
    hull_test_write_file(f, "{oops", 0644);
    assert_false(cni_manager_ready(m, &reason, &msg));
    assert_non_null(strstr(msg, "10-x.conflist"));
    free(reason);
    free(msg);
    cni_manager_free(m);
    hull_rm_rf(d, NULL);
}

/* ---- sandbox helpers ---------------------------------------------------------------------- */

static void test_resolv_conf(void **state)
{
    (void)state;
    assert_null(sandbox_resolv_conf_text(NULL));
    char *servers[] = {"10.0.0.10", "8.8.8.8"};
    char *searches[] = {"ns.svc.cluster.local", "cluster.local"};
    char *options[] = {"ndots:5", "edns0"};
    Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
    dns.servers = servers;
    dns.n_servers = 2;
    dns.searches = searches;
    dns.n_searches = 2;
    dns.options = options;
    dns.n_options = 2;
    _cleanup_free_ char *t = sandbox_resolv_conf_text(&dns);
    assert_string_equal(t, "search ns.svc.cluster.local cluster.local\n"
                           "nameserver 10.0.0.10\nnameserver 8.8.8.8\n"
                           "options ndots:5 edns0\n");
}

static void test_cgroup_v1_fixture(void **state)
{
    (void)state;
    _cleanup_free_ char *root = hull_test_tmpdir("cni");
    const char *ctrls[] = {"memory", "cpu", "cpuset", "pids"};
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *d = hull_path_join(root, ctrls[i]);
        mkdir(d, 0755);
        _cleanup_free_ char *p = hull_path_join(d, "cgroup.procs");
        hull_test_write_file(p, "", 0644);
    }
    _cleanup_free_ char *cs = xasprintf("%s/cpuset/cpuset.cpus", root);
    hull_test_write_file(cs, "0-1\n", 0644);
    _cleanup_free_ char *cm = xasprintf("%s/cpuset/cpuset.mems", root);
    hull_test_write_file(cm, "0\n", 0644);
    _cleanup_free_ char *unified = hull_path_join(root, "unified");
    mkdir(unified, 0755);
    _cleanup_free_ char *link = hull_path_join(root, "cpuacct");
    assert_int_equal(symlink("cpu", link), 0);

    hull_error_t err = NULL;
    bool created = false;
    assert_int_equal(sandbox_cgroup_create(root, 1, "/kubepods/../etc", &created, &err), -EINVAL);
    hull_error_free(&err);
    assert_false(sandbox_cgroup_path_ok("relative/path"));
    /* on a fixture, cpuset files of new dirs don't exist: no copy needed */
    assert_hull_ok(sandbox_cgroup_create(root, 1, "/kubepods/pod1", &created, &err), err);
    assert_true(created);
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *d = xasprintf("%s/%s/kubepods/pod1", root, ctrls[i]);
        struct stat st;
        assert_int_equal(stat(d, &st), 0);
    }
    _cleanup_free_ char *nu = xasprintf("%s/unified/kubepods", root);
    struct stat st;
    assert_int_equal(stat(nu, &st), -1);
    assert_hull_ok(sandbox_cgroup_create(root, 1, "/kubepods/pod1", &created, &err), err);
    assert_false(created);
    assert_hull_ok(sandbox_cgroup_remove(root, 1, "/kubepods/pod1", &err), err);
    _cleanup_free_ char *gone = xasprintf("%s/memory/kubepods/pod1", root);
    assert_int_equal(stat(gone, &st), -1);
    _cleanup_free_ char *kept = xasprintf("%s/memory/kubepods", root);
    assert_int_equal(stat(kept, &st), 0);
    /* removing twice is fine */
    assert_hull_ok(sandbox_cgroup_remove(root, 1, "/kubepods/pod1", &err), err);
    hull_rm_rf(root, NULL);
}

static void test_cgroup_v2_fixture(void **state)
{
    (void)state;
    _cleanup_free_ char *root = hull_test_tmpdir("cni");
    _cleanup_free_ char *ctl = hull_path_join(root, "cgroup.controllers");
    hull_test_write_file(ctl, "cpuset cpu io memory pids\n", 0644);
    _cleanup_free_ char *sub = hull_path_join(root, "cgroup.subtree_control");
    hull_test_write_file(sub, "", 0644);
    hull_error_t err = NULL;
    bool created = false;
    assert_hull_ok(sandbox_cgroup_create(root, 2, "/hull/pod-x", &created, &err), err);
    assert_true(created);
    struct stat st;
    _cleanup_free_ char *leaf = xasprintf("%s/hull/pod-x", root);
    assert_int_equal(stat(leaf, &st), 0);
    /* controllers were enabled at the root for the level below (the last write wins on a
     * plain file; on cgroupfs each "+x" adds one) */
    _cleanup_free_ char *enabled = read_text(sub);
    assert_non_null(enabled);
    assert_true(enabled[0] == '+');
    /* cgroupfs provides cgroup.procs in every new dir; the fixture has to */
    _cleanup_free_ char *pdir = xasprintf("%s/hull/pod-x/pause", root);
    mkdir(pdir, 0755);
    _cleanup_free_ char *procs = xasprintf("%s/hull/pod-x/pause/cgroup.procs", root);
    hull_test_write_file(procs, "", 0644);
    assert_hull_ok(sandbox_cgroup_add_pid(root, 2, "/hull/pod-x", 1234, &err), err);
    _cleanup_free_ char *pid = read_text(procs);
    assert_string_equal(pid, "1234");
    unlink(procs);
    assert_hull_ok(sandbox_cgroup_remove(root, 2, "/hull/pod-x", &err), err);
    assert_int_equal(stat(leaf, &st), -1);
    hull_rm_rf(root, NULL);
}

static void test_ns_create_remove(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    _cleanup_free_ char *d = hull_test_tmpdir("cni");
    _cleanup_free_ char *net = xasprintf("%s/net/x", d);
    _cleanup_free_ char *uts = xasprintf("%s/uts/x", d);
    struct cni_sysctl sc[] = {{"net.ipv4.ip_unprivileged_port_start", "77"}};
    struct cni_ns_request req = {.flags = CLONE_NEWNET | CLONE_NEWUTS,
                                 .net_path = net,
                                 .uts_path = uts,
                                 .hostname = "unit-host",
                                 .sysctls = sc,
                                 .n_sysctls = 1};
    hull_error_t err = NULL;
    assert_hull_ok(cni_ns_create(&req, &err), err);
    assert_true(cni_ns_is_pinned(net));
    assert_true(cni_ns_is_pinned(uts));
    assert_hull_ok(cni_ns_remove(net, &err), err);
    assert_hull_ok(cni_ns_remove(uts, &err), err);
    assert_false(cni_ns_is_pinned(net));
    assert_int_equal(access(net, F_OK), -1);
    assert_hull_ok(cni_ns_remove(net, &err), err); /* twice */

    /* a failing sysctl leaves nothing pinned */
    struct cni_sysctl bad[] = {{"net.ipv4.no_such_knob", "1"}};
    req.sysctls = bad;
    assert_true(cni_ns_create(&req, &err) < 0);
    assert_non_null(strstr(hull_error_msg(&err), "net.ipv4.no_such_knob"));
    hull_error_free(&err);
    assert_int_equal(access(net, F_OK), -1);
    assert_int_equal(access(uts, F_OK), -1);
    hull_rm_rf(d, NULL);
}

int main(void)
{
    hull_log_set_level(HULL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_conflist),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_load_dir_order_and_skip),
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_result_parse),
        cmocka_unit_test(test_cni_args),
        cmocka_unit_test(test_add_del_chain),
        cmocka_unit_test(test_add_failure_rolls_back),
        cmocka_unit_test(test_exec_limits),
        cmocka_unit_test(test_manager_readiness),
        cmocka_unit_test(test_resolv_conf),
        cmocka_unit_test(test_cgroup_v1_fixture),
        cmocka_unit_test(test_cgroup_v2_fixture),
        cmocka_unit_test(test_ns_create_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
