/* Unit tests of the typed runtime-spec model (common/ocispec_model.h): parse(serialize(m)) == m
 * field by field for a model that sets every field, serialize(parse(json)) == json, null as
 * absent and unknown members ignored, and bad input refused with errors naming the member.
 * (tests/unit/test_server_spec.c checks the round trip on every config.json hulld generates.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/ocispec_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- field-by-field equality ------------------------------------------------------------------
 */
static void eq_str(const char *a, const char *b, const char *what)
{
    if (a == NULL || b == NULL) {
        if (a != b)
            fail_msg("%s: %s vs %s", what, a ? a : "(absent)", b ? b : "(absent)");
        return;
    }
    if (strcmp(a, b) != 0)
        fail_msg("%s: `%s` vs `%s`", what, a, b);
}

static void eq_strv(char *const *a, char *const *b, const char *what)
{
    if (a == NULL || b == NULL) {
        if (a != b)
            fail_msg("%s: present in one only", what);
        return;
    }
    size_t i = 0;
    for (; a[i] && b[i]; i++)
        eq_str(a[i], b[i], what);
    if (a[i] || b[i])
        fail_msg("%s: lengths differ", what);
}

#define EQ(field)                                                                                  \
    do {                                                                                           \
        if ((a)->field != (b)->field)                                                              \
            fail_msg("%s differs", #field);                                                        \
    } while (0)
#define EQ_STR(field)  eq_str((a)->field, (b)->field, #field)
#define EQ_STRV(field) eq_strv((a)->field, (b)->field, #field)
#define EQ_PRESENT(field)                                                                          \
    do {                                                                                           \
        if (((a)->field == NULL) != ((b)->field == NULL))                                          \
            fail_msg("%s: present in one only", #field);                                           \
    } while (0)

static void eq_process(const struct hull_ocispec_process *a, const struct hull_ocispec_process *b)
{
    EQ(terminal);
    EQ(has_console_size);
    EQ(console_height);
    EQ(console_width);
    EQ(user.uid);
    EQ(user.gid);
    EQ(user.has_umask);
    EQ(user.umask);
    EQ_PRESENT(user.additional_gids);
    EQ(user.n_additional_gids);
    for (size_t i = 0; i < a->user.n_additional_gids; i++)
        EQ(user.additional_gids[i]);
    EQ_STR(user.username);
    EQ_STRV(args);
    EQ_STRV(env);
    EQ_STR(cwd);
    EQ(has_capabilities);
    EQ_STRV(caps.bounding);
    EQ_STRV(caps.effective);
    EQ_STRV(caps.inheritable);
    EQ_STRV(caps.permitted);
    EQ_STRV(caps.ambient);
    EQ_PRESENT(rlimits);
    EQ(n_rlimits);
    for (size_t i = 0; i < a->n_rlimits; i++) {
        EQ_STR(rlimits[i].type);
        EQ(rlimits[i].hard);
        EQ(rlimits[i].soft);
    }
    EQ(no_new_privileges);
    EQ(has_oom_score_adj);
    EQ(oom_score_adj);
    EQ_STR(apparmor_profile);
    EQ_STR(selinux_label);
}

static void eq_kv(const struct hull_ocispec_kv *a, size_t na, const struct hull_ocispec_kv *b,
                  size_t nb, const char *what)
{
    if ((a == NULL) != (b == NULL) || na != nb)
        fail_msg("%s: differ", what);
    for (size_t i = 0; i < na; i++) {
        eq_str(a[i].key, b[i].key, what);
        eq_str(a[i].value, b[i].value, what);
    }
}

static void eq_seccomp(const struct hull_ocispec_seccomp *a, const struct hull_ocispec_seccomp *b)
{
    if (a == NULL || b == NULL) {
        assert_true(a == b);
        return;
    }
    EQ_STR(default_action);
    EQ(has_default_errno_ret);
    EQ(default_errno_ret);
    EQ_STRV(architectures);
    EQ_STRV(flags);
    EQ_STR(listener_path);
    EQ_STR(listener_metadata);
    EQ_PRESENT(syscalls);
    EQ(n_syscalls);
    for (size_t i = 0; i < a->n_syscalls; i++) {
        EQ_STRV(syscalls[i].names);
        EQ_STR(syscalls[i].action);
        EQ(syscalls[i].has_errno_ret);
        EQ(syscalls[i].errno_ret);
        EQ_PRESENT(syscalls[i].args);
        EQ(syscalls[i].n_args);
        for (size_t j = 0; j < a->syscalls[i].n_args; j++) {
            EQ(syscalls[i].args[j].index);
            EQ(syscalls[i].args[j].value);
            EQ(syscalls[i].args[j].value_two);
            EQ(syscalls[i].args[j].has_value_two);
            EQ_STR(syscalls[i].args[j].op);
        }
    }
}

static void eq_dev_values(const struct hull_cgroup_dev_value *a, size_t na,
                          const struct hull_cgroup_dev_value *b, size_t nb, const char *what)
{
    if (na != nb)
        fail_msg("%s: %zu vs %zu entries", what, na, nb);
    for (size_t i = 0; i < na; i++)
        if (a[i].major != b[i].major || a[i].minor != b[i].minor || a[i].value != b[i].value)
            fail_msg("%s[%zu] differs", what, i);
}

/* linux.resources, every member of the typed struct */
static void eq_resources(const struct hull_cgroup_resources *a,
                         const struct hull_cgroup_resources *b)
{
    EQ_PRESENT(devices);
    EQ(n_devices);
    for (size_t i = 0; i < a->n_devices; i++) {
        EQ(devices[i].allow);
        EQ(devices[i].type);
        EQ(devices[i].major);
        EQ(devices[i].minor);
        EQ(devices[i].access);
    }
    EQ(memory.limit);
    EQ(memory.swap);
    EQ(memory.reservation);
    EQ(memory.kernel);
    EQ(memory.kernel_tcp);
    EQ(memory.swappiness);
    EQ(memory.disable_oom_killer);
    EQ(cpu.shares);
    EQ(cpu.quota);
    EQ(cpu.period);
    EQ(cpu.realtime_runtime);
    EQ(cpu.realtime_period);
    EQ(cpu.idle);
    EQ_STR(cpu.cpus);
    EQ_STR(cpu.mems);
    EQ(pids_limit);
    EQ(blkio.weight);
    EQ(blkio.leaf_weight);
    eq_dev_values(a->blkio.weight_device, a->blkio.n_weight_device, b->blkio.weight_device,
                  b->blkio.n_weight_device, "blkio.weight_device");
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        eq_dev_values(a->blkio.throttle[i], a->blkio.n_throttle[i], b->blkio.throttle[i],
                      b->blkio.n_throttle[i], "blkio.throttle");
    EQ(n_hugetlb);
    for (size_t i = 0; i < a->n_hugetlb; i++) {
        EQ_STR(hugetlb[i].page_size);
        EQ(hugetlb[i].limit);
    }
    EQ(n_unified);
    for (size_t i = 0; i < a->n_unified; i++) {
        EQ_STR(unified[i].key);
        EQ_STR(unified[i].value);
    }
    EQ(net_cls_classid);
}

static void eq_linux(const struct hull_ocispec_linux *a, const struct hull_ocispec_linux *b)
{
    if (a == NULL || b == NULL) {
        assert_true(a == b);
        return;
    }
    eq_kv(a->sysctl, a->n_sysctl, b->sysctl, b->n_sysctl, "linux.sysctl");
    EQ_PRESENT(resources);
    if (a->resources)
        eq_resources(a->resources, b->resources);
    EQ_STR(cgroups_path);
    EQ_PRESENT(namespaces);
    EQ(n_namespaces);
    for (size_t i = 0; i < a->n_namespaces; i++) {
        EQ_STR(namespaces[i].type);
        EQ_STR(namespaces[i].path);
    }
    EQ_PRESENT(uid_mappings);
    EQ_PRESENT(gid_mappings);
    EQ(n_uid_mappings);
    EQ(n_gid_mappings);
    for (size_t i = 0; i < a->n_uid_mappings; i++) {
        EQ(uid_mappings[i].container_id);
        EQ(uid_mappings[i].host_id);
        EQ(uid_mappings[i].size);
    }
    for (size_t i = 0; i < a->n_gid_mappings; i++) {
        EQ(gid_mappings[i].container_id);
        EQ(gid_mappings[i].host_id);
        EQ(gid_mappings[i].size);
    }
    EQ_PRESENT(devices);
    EQ(n_devices);
    for (size_t i = 0; i < a->n_devices; i++) {
        EQ_STR(devices[i].path);
        EQ(devices[i].type);
        EQ(devices[i].major);
        EQ(devices[i].minor);
        EQ(devices[i].has_file_mode);
        EQ(devices[i].file_mode);
        EQ(devices[i].has_uid);
        EQ(devices[i].uid);
        EQ(devices[i].has_gid);
        EQ(devices[i].gid);
    }
    EQ_STRV(masked_paths);
    EQ_STRV(readonly_paths);
    EQ_STR(rootfs_propagation);
    EQ_STR(mount_label);
    eq_seccomp(a->seccomp, b->seccomp);
    for (int i = 0; i < HULL_OCISPEC_N_CLOCKS; i++) {
        EQ(time_offsets[i].set);
        EQ(time_offsets[i].secs);
        EQ(time_offsets[i].nanosecs);
    }
    EQ_STR(personality_domain);
    EQ_STRV(personality_flags);
}

static void assert_model_equal(const struct hull_ocispec *a, const struct hull_ocispec *b)
{
    EQ_STR(oci_version);
    EQ_PRESENT(process);
    if (a->process)
        eq_process(a->process, b->process);
    EQ_STR(root_path);
    EQ(root_readonly);
    EQ_STR(hostname);
    EQ_STR(domainname);
    EQ_PRESENT(mounts);
    EQ(n_mounts);
    for (size_t i = 0; i < a->n_mounts; i++) {
        EQ_STR(mounts[i].destination);
        EQ_STR(mounts[i].type);
        EQ_STR(mounts[i].source);
        EQ_STRV(mounts[i].options);
    }
    EQ(has_hooks);
    for (int k = 0; k < HULL_OCISPEC_N_HOOK_KINDS; k++) {
        EQ_PRESENT(hooks[k]);
        EQ(n_hooks[k]);
        for (size_t i = 0; i < a->n_hooks[k]; i++) {
            EQ_STR(hooks[k][i].path);
            EQ_STRV(hooks[k][i].args);
            EQ_STRV(hooks[k][i].env);
            EQ(hooks[k][i].has_timeout);
            EQ(hooks[k][i].timeout);
        }
    }
    eq_kv(a->annotations, a->n_annotations, b->annotations, b->n_annotations, "annotations");
    eq_linux(a->linux_, b->linux_);
}

/* ---- a model with every field set -------------------------------------------------------------
 */
static char **sv(const char *a, const char *b)
{
    char **v = NULL;
    size_t n = 0;
    hull_strv_push(&v, &n, a);
    if (b)
        hull_strv_push(&v, &n, b);
    return v;
}

/* typed resources with every member set (device rules of each type, wildcards, every
 * throttle list, "max" values) */
static struct hull_cgroup_resources *full_resources(void)
{
    struct hull_cgroup_resources *r = xmalloc0(sizeof(*r));
    hull_cgroup_resources_init(r);
    r->devices = xmalloc0(sizeof(*r->devices));
    hull_cgroup_resources_add_device(
        r, (struct hull_cgroup_device_rule){false, 'a', -1, -1, HULL_CG_DEV_RWM});
    hull_cgroup_resources_add_device(
        r, (struct hull_cgroup_device_rule){true, 'c', -1, -1, HULL_CG_DEV_MKNOD});
    hull_cgroup_resources_add_device(
        r, (struct hull_cgroup_device_rule){true, 'c', 136, -1, HULL_CG_DEV_RWM});
    hull_cgroup_resources_add_device(
        r,
        (struct hull_cgroup_device_rule){false, 'b', 8, 0, HULL_CG_DEV_READ | HULL_CG_DEV_WRITE});
    r->memory.limit = 1073741824;
    r->memory.swap = -1;
    r->memory.reservation = 536870912;
    r->memory.kernel = INT64_MAX;
    r->memory.kernel_tcp = 1048576;
    r->memory.swappiness = 60;
    r->memory.disable_oom_killer = 0;
    r->cpu.shares = 1024;
    r->cpu.quota = -1;
    r->cpu.period = 100000;
    r->cpu.realtime_runtime = 950000;
    r->cpu.realtime_period = 1000000;
    r->cpu.idle = 1;
    r->cpu.cpus = xstrdup("0-1,3");
    r->cpu.mems = xstrdup("0");
    r->pids_limit = 4096;
    r->blkio.weight = 500;
    r->blkio.leaf_weight = 300;
    hull_cgroup_resources_add_dev(&r->blkio.weight_device, &r->blkio.n_weight_device, 8, 0, 200);
    for (int64_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        hull_cgroup_resources_add_dev(&r->blkio.throttle[i], &r->blkio.n_throttle[i], 8, i,
                                      1000 * (i + 1));
    hull_cgroup_resources_add_hugetlb(r, "2MB", 4194304);
    hull_cgroup_resources_add_hugetlb(r, "1GB", 0);
    hull_cgroup_resources_add_unified(r, "memory.high", "max");
    hull_cgroup_resources_add_unified(r, "io.weight", "default 100");
    r->net_cls_classid = 0x100001;
    return r;
}

static struct hull_ocispec *rich_model(void)
{
    struct hull_ocispec *m = hull_ocispec_new();
    m->oci_version = xstrdup("1.1.0");
    struct hull_ocispec_process *p = m->process = xmalloc0(sizeof(*p));
    p->terminal = true;
    p->has_console_size = true;
    p->console_height = 40;
    p->console_width = 120;
    p->user = (struct hull_ocispec_user){.uid = 1000, .gid = 2000, .has_umask = true, .umask = 022};
    p->user.additional_gids = xmalloc0(3 * sizeof(uint32_t));
    p->user.additional_gids[0] = 2000;
    p->user.additional_gids[1] = 4294967294u;
    p->user.n_additional_gids = 2;
    p->user.username = xstrdup("app");
    p->args = sv("/bin/sh", "-c");
    p->env = sv("PATH=/bin", "A=b=c");
    p->cwd = xstrdup("/work dir");
    p->has_capabilities = true;
    p->caps.bounding = sv("CAP_KILL", "CAP_CHOWN");
    p->caps.effective = sv("CAP_KILL", NULL);
    p->caps.permitted = sv("CAP_KILL", "CAP_CHOWN");
    p->caps.inheritable = xmalloc0(sizeof(char *)); /* present and empty */
    p->caps.ambient = sv("CAP_NET_BIND_SERVICE", NULL);
    p->rlimits = xmalloc0(3 * sizeof(*p->rlimits));
    p->rlimits[0] = (struct hull_ocispec_rlimit){xstrdup("RLIMIT_NOFILE"), UINT64_MAX, 1024};
    p->rlimits[1] = (struct hull_ocispec_rlimit){xstrdup("RLIMIT_CORE"), 0, 0};
    p->n_rlimits = 2;
    p->no_new_privileges = true;
    p->has_oom_score_adj = true;
    p->oom_score_adj = -999;
    p->apparmor_profile = xstrdup("hull-test");
    p->selinux_label = xstrdup("system_u:system_r:container_t:s0:c1,c2");
    m->root_path = xstrdup("rootfs");
    m->root_readonly = true;
    m->hostname = xstrdup("h\u00e9");
    m->domainname = xstrdup("example.org");
    m->mounts = xmalloc0(3 * sizeof(*m->mounts));
    m->mounts[0] = (struct hull_ocispec_mount){xstrdup("/proc"), xstrdup("proc"), xstrdup("proc"),
                                               sv("nosuid", "noexec")};
    m->mounts[1] = (struct hull_ocispec_mount){xstrdup("/data"), NULL, xstrdup("/host/data"),
                                               sv("rbind", "rro")};
    m->n_mounts = 2;
    m->has_hooks = true;
    m->hooks[HULL_OCISPEC_HOOK_PRESTART] = xmalloc0(2 * sizeof(struct hull_ocispec_hook));
    m->hooks[HULL_OCISPEC_HOOK_PRESTART][0] = (struct hull_ocispec_hook){
        xstrdup("/usr/bin/hook"), sv("hook", "--x"), sv("K=V", NULL), true, 5};
    m->n_hooks[HULL_OCISPEC_HOOK_PRESTART] = 1;
    m->hooks[HULL_OCISPEC_HOOK_POSTSTOP] = xmalloc0(sizeof(struct hull_ocispec_hook));
    m->annotations = xmalloc0(3 * sizeof(*m->annotations));
    m->annotations[0] =
        (struct hull_ocispec_kv){xstrdup("io.kubernetes.cri.sandbox-id"), xstrdup("abc")};
    m->annotations[1] = (struct hull_ocispec_kv){xstrdup("quote\"key"), xstrdup("line\nvalue")};
    m->n_annotations = 2;

    struct hull_ocispec_linux *l = hull_ocispec_linux(m);
    l->sysctl = xmalloc0(2 * sizeof(*l->sysctl));
    l->sysctl[0] = (struct hull_ocispec_kv){xstrdup("net.ipv4.ip_forward"), xstrdup("1")};
    l->n_sysctl = 1;
    l->resources = full_resources();
    l->cgroups_path = xstrdup("kubepods.slice:hull:abc");
    l->namespaces = xmalloc0(4 * sizeof(*l->namespaces));
    l->namespaces[0] = (struct hull_ocispec_namespace){xstrdup("pid"), NULL};
    l->namespaces[1] = (struct hull_ocispec_namespace){xstrdup("network"), xstrdup("/run/netns/x")};
    l->namespaces[2] = (struct hull_ocispec_namespace){xstrdup("user"), NULL};
    l->namespaces[3] = (struct hull_ocispec_namespace){xstrdup("time"), NULL};
    l->n_namespaces = 4;
    l->uid_mappings = xmalloc0(2 * sizeof(*l->uid_mappings));
    l->uid_mappings[0] = (struct hull_ocispec_idmap){0, 100000, 65536};
    l->uid_mappings[1] = (struct hull_ocispec_idmap){65536, 4294901760u, 65535};
    l->n_uid_mappings = 2;
    l->gid_mappings = xmalloc0(sizeof(*l->gid_mappings)); /* present and empty */
    l->devices = xmalloc0(3 * sizeof(*l->devices));
    l->devices[0] = (struct hull_ocispec_device){
        xstrdup("/dev/fuse"), 'c', 10, 229, true, false, true, 0666, 0, 7};
    l->devices[1] = (struct hull_ocispec_device){.path = xstrdup("/dev/p"), .type = 'p'};
    l->n_devices = 2;
    l->masked_paths = sv("/proc/kcore", NULL);
    l->readonly_paths = xmalloc0(sizeof(char *));
    l->rootfs_propagation = xstrdup("rslave");
    l->mount_label = xstrdup("system_u:object_r:container_file_t:s0");
    struct hull_ocispec_seccomp *sc = l->seccomp = xmalloc0(sizeof(*sc));
    sc->default_action = xstrdup("SCMP_ACT_ERRNO");
    sc->has_default_errno_ret = true;
    sc->default_errno_ret = 1;
    sc->architectures = sv("SCMP_ARCH_X86_64", "SCMP_ARCH_X86");
    sc->flags = sv("SECCOMP_FILTER_FLAG_LOG", NULL);
    sc->listener_path = xstrdup("/run/l.sock");
    sc->listener_metadata = xstrdup("meta");
    sc->syscalls = xmalloc0(3 * sizeof(*sc->syscalls));
    sc->syscalls[0] = (struct hull_ocispec_syscall){.names = sv("read", "write"),
                                                    .action = xstrdup("SCMP_ACT_ALLOW")};
    sc->syscalls[1] = (struct hull_ocispec_syscall){.names = sv("clone", NULL),
                                                    .action = xstrdup("SCMP_ACT_ERRNO"),
                                                    .has_errno_ret = true,
                                                    .errno_ret = 38};
    sc->syscalls[1].args = xmalloc0(3 * sizeof(struct hull_ocispec_seccomp_arg));
    sc->syscalls[1].args[0] = (struct hull_ocispec_seccomp_arg){
        0, 0xFFFFFFFFFFFFFFFFull, 0x7E020000, true, xstrdup("SCMP_CMP_MASKED_EQ")};
    sc->syscalls[1].args[1] =
        (struct hull_ocispec_seccomp_arg){.index = 5, .value = 3, .op = xstrdup("SCMP_CMP_GT")};
    sc->syscalls[1].n_args = 2;
    sc->n_syscalls = 2;
    l->time_offsets[HULL_OCISPEC_CLOCK_BOOTTIME] =
        (struct hull_ocispec_time_offset){true, -86400, 999999999};
    l->personality_domain = xstrdup("LINUX32");
    l->personality_flags = xmalloc0(sizeof(char *));
    return m;
}

static void test_round_trip_rich_model(void **state)
{
    (void)state;
    _cleanup_hull_ocispec_ struct hull_ocispec *m = rich_model();
    for (int pretty = 0; pretty < 2; pretty++) {
        _cleanup_free_ char *json = hull_ocispec_to_json(m, pretty);
        _cleanup_hull_ocispec_ struct hull_ocispec *back = NULL;
        hull_error_t err = NULL;
        if (hull_ocispec_parse(json, &back, &err) < 0)
            fail_msg("%s: %s", hull_error_msg(&err), json);
        assert_model_equal(m, back);
        _cleanup_free_ char *again = hull_ocispec_to_json(back, pretty);
        assert_string_equal(json, again);
    }
    /* the process alone (exec --process) */
    _cleanup_free_ char *pj = hull_ocispec_process_to_json(m->process);
    _cleanup_yajl_ yajl_val t = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_json_parse(pj, "process", &t, &err), 0);
    struct hull_ocispec_process p = {0};
    assert_int_equal(hull_ocispec_process_from_tree(t, &p, &err), 0);
    eq_process(m->process, &p);
    hull_ocispec_process_clear(&p);
}

/* serialize(parse(json)) keeps every member of a runc-style config (member order as written by
 * the serializer) */
static void test_round_trip_text(void **state)
{
    (void)state;
    static const char json[] =
        "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,\"user\":{\"uid\":0,"
        "\"gid\":0},\"args\":[\"sh\"],\"env\":[\"TERM=xterm\"],\"cwd\":\"/\",\"capabilities\":"
        "{\"bounding\":[\"CAP_AUDIT_WRITE\"],\"effective\":[\"CAP_AUDIT_WRITE\"],\"permitted\":"
        "[\"CAP_AUDIT_WRITE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,"
        "\"soft\":1024}],\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":"
        "true},\"hostname\":\"runc\",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
        "\"source\":\"proc\"},{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
        "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]}],\"linux\":{"
        "\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},\"namespaces\":[{"
        "\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{"
        "\"type\":\"mount\"},{\"type\":\"cgroup\"}],\"maskedPaths\":[\"/proc/acpi\"],"
        "\"readonlyPaths\":[\"/proc/bus\"]}}";
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_ocispec_parse(json, &m, &err), 0);
    _cleanup_free_ char *out = hull_ocispec_to_json(m, false);
    assert_string_equal(out, json);
}

/* null is the same as absent; unknown members are ignored; an empty namespace path is none */
static void test_null_and_unknown(void **state)
{
    (void)state;
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL;
    hull_error_t err = NULL;
    int r = hull_ocispec_parse(
        "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"/r\"},\"process\":null,\"hooks\":null,"
        "\"vm\":{\"x\":1},\"mounts\":null,\"linux\":{\"seccomp\":null,\"resources\":null,"
        "\"namespaces\":[{\"type\":\"mount\",\"path\":\"\"}],\"intelRdt\":{\"closID\":\"x\"},"
        "\"futureThing\":[1,2]}}",
        &m, &err);
    if (r < 0)
        fail_msg("%s", hull_error_msg(&err));
    assert_null(m->process);
    assert_false(m->has_hooks);
    assert_null(m->mounts);
    assert_non_null(m->linux_);
    assert_null(m->linux_->seccomp);
    assert_null(m->linux_->resources);
    assert_int_equal(m->linux_->n_namespaces, 1);
    assert_null(m->linux_->namespaces[0].path);
    assert_true(m->linux_->has_intel_rdt);
}

static void test_bad_input(void **state)
{
    (void)state;
#define R "\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"}"
#define P "\"process\":{\"args\":[\"x\"],"
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{not json", "invalid JSON"},
        {"[]", "not a JSON object"},
        {"{\"root\":{\"path\":\"r\"}}", "ociVersion missing"},
        {"{\"ociVersion\":2,\"root\":{\"path\":\"r\"}}", "ociVersion: must be a string"},
        {"{\"ociVersion\":\"2.0.0\",\"root\":{\"path\":\"r\"}}", "unsupported ociVersion"},
        {"{\"ociVersion\":\"1.1.0\"}", "root.path missing"},
        {"{\"ociVersion\":\"1.1.0\",\"root\":\"r\"}", "root: must be an object"},
        {"{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\",\"readonly\":\"yes\"}}",
         "root.readonly"},
        {"{" R ",\"process\":{\"args\":[]}}", "process.args: must not be empty"},
        {"{" R ",\"process\":{\"args\":\"sh\"}}", "process.args: must be an array"},
        {"{" R ",\"process\":{\"args\":[\"sh\",1]}}", "process.args[1]: must be a string"},
        {"{" R "," P "\"cwd\":\"relative\"}}", "process.cwd"},
        {"{" R "," P "\"terminal\":1}}", "process.terminal"},
        {"{" R "," P "\"user\":{\"uid\":4294967296}}}", "process.user.uid"},
        {"{" R "," P "\"user\":{\"uid\":0,\"gid\":-1}}}", "process.user.gid"},
        {"{" R "," P "\"user\":{\"additionalGids\":[4294967296]}}}", "additionalGids[0]"},
        {"{" R "," P "\"rlimits\":[{\"type\":\"NOFILE\",\"soft\":1,\"hard\":1}]}}",
         "unknown type `NOFILE`"},
        {"{" R "," P "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1}]}}",
         "needs soft and hard"},
        {"{" R "," P "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":-1,\"hard\":1}]}}",
         "process.rlimits.soft"},
        {"{" R "," P "\"oomScoreAdj\":1001}}", "process.oomScoreAdj"},
        {"{" R "," P "\"consoleSize\":{\"height\":70000,\"width\":1}}}", "consoleSize"},
        {"{" R "," P "\"capabilities\":{\"bounding\":[7]}}}", "process.capabilities.bounding[0]"},
        {"{" R ",\"mounts\":[{\"destination\":\"rel\",\"type\":\"tmpfs\"}]}", "mounts[0]"},
        {"{" R ",\"mounts\":[{\"destination\":\"/x\",\"options\":\"ro\"}]}", "mounts[].options"},
        {"{" R ",\"mounts\":{}}", "mounts: must be an array"},
        {"{" R ",\"hooks\":{\"prestart\":[{\"path\":\"rel\"}]}}", "hooks.prestart[0]"},
        {"{" R ",\"hooks\":{\"poststop\":[{\"path\":\"/x\",\"timeout\":0}]}}", "hooks.poststop"},
        {"{" R ",\"annotations\":{\"a\":1}}", "annotations `a`"},
        {"{" R ",\"linux\":[]}", "linux: must be an object"},
        {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]}}",
         "duplicate `pid`"},
        {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"bogus\"}]}}", "unknown type `bogus`"},
        {"{" R ",\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":-5,\"size\":1}]}}",
         "linux.uidMappings"},
        {"{" R ",\"linux\":{\"gidMappings\":[{\"containerID\":0,\"size\":1}]}}",
         "linux.gidMappings"},
        {"{" R ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"q\"}]}}", "bad type"},
        {"{" R ",\"linux\":{\"devices\":[{\"path\":\"dev/x\",\"type\":\"c\"}]}}", "bad path"},
        {"{" R ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"major\":\"1\"}]}}",
         "linux.devices[].major"},
        {"{" R ",\"linux\":{\"sysctl\":{\"a\":1}}}", "linux.sysctl `a`"},
        {"{" R ",\"linux\":{\"rootfsPropagation\":\"sideways\"}}", "rootfsPropagation"},
        {"{" R ",\"linux\":{\"maskedPaths\":\"/proc\"}}", "linux.maskedPaths"},
        {"{" R ",\"linux\":{\"cgroupsPath\":5}}", "linux.cgroupsPath"},
        {"{" R ",\"linux\":{\"resources\":[]}}", "linux.resources: must be an object"},
        {"{" R ",\"linux\":{\"seccomp\":{}}}", "defaultAction missing"},
        {"{" R ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":"
         "[{\"names\":[\"read\"]}]}}}",
         "syscalls[0]: no action"},
        {"{" R ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":"
         "[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,"
         "\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}]}]}}}",
         "args[].value"},
        {"{" R ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":"
         "[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"value\":1,"
         "\"op\":\"SCMP_CMP_EQ\"}]}]}}}",
         "args[].index"},
        {"{" R ",\"linux\":{\"timeOffsets\":{\"boottime\":{\"secs\":\"1\"}}}}",
         "linux.timeOffsets.secs"},
        {"{" R ",\"linux\":{\"personality\":{\"flags\":\"x\"}}}", "linux.personality.flags"},
    };
#undef R
#undef P
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hull_ocispec *m = NULL;
        hull_error_t err = NULL;
        int r = hull_ocispec_parse(bad[i].json, &m, &err);
        if (r == 0)
            fail_msg("accepted: %s", bad[i].json);
        assert_null(m);
        if (strstr(hull_error_msg(&err), bad[i].needle) == NULL)
            fail_msg("%s: error `%s` does not name `%s`", bad[i].json, hull_error_msg(&err),
                     bad[i].needle);
        hull_error_free(&err);
    }
}

/* ---- linux.resources ------------------------------------------------------------------------ */
/* every member Hull supports, as the serializer writes them */
static const char full_resources_json[] =
    "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\","
    "\"access\":\"m\"},{\"allow\":true,\"type\":\"c\",\"major\":136,\"access\":\"rwm\"},"
    "{\"allow\":false,\"type\":\"b\",\"major\":8,\"minor\":0,\"access\":\"rw\"}],"
    "\"memory\":{\"limit\":1073741824,\"swap\":-1,\"reservation\":536870912,"
    "\"kernel\":9223372036854775807,\"kernelTCP\":1048576,\"swappiness\":60,"
    "\"disableOOMKiller\":false},"
    "\"cpu\":{\"shares\":1024,\"quota\":-1,\"period\":100000,\"realtimeRuntime\":950000,"
    "\"realtimePeriod\":1000000,\"idle\":1,\"cpus\":\"0-1,3\",\"mems\":\"0\"},"
    "\"pids\":{\"limit\":4096},"
    "\"blockIO\":{\"weight\":500,\"leafWeight\":300,\"weightDevice\":[{\"major\":8,\"minor\":0,"
    "\"weight\":200}],\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1000}],"
    "\"throttleWriteBpsDevice\":[{\"major\":8,\"minor\":1,\"rate\":2000}],"
    "\"throttleReadIOPSDevice\":[{\"major\":8,\"minor\":2,\"rate\":3000}],"
    "\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":3,\"rate\":4000}]},"
    "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304},{\"pageSize\":\"1GB\","
    "\"limit\":0}],"
    "\"unified\":{\"memory.high\":\"max\",\"io.weight\":\"default 100\"},"
    "\"network\":{\"classID\":1048577}}";

/* parse -> serialize -> parse gives the same typed resources for every member, and the text
 * is the serializer's own; the typed values are the JSON's (not merely equal to each other) */
static void test_resources_round_trip(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r, back;
    if (hull_ocispec_resources_parse(full_resources_json, &r, &err) < 0)
        fail_msg("%s", hull_error_msg(&err));
    _cleanup_free_ struct hull_cgroup_resources *want = full_resources();
    eq_resources(want, &r);
    hull_cgroup_resources_clear(want);
    _cleanup_free_ char *json = hull_ocispec_resources_to_json(&r);
    assert_string_equal(json, full_resources_json);
    if (hull_ocispec_resources_parse(json, &back, &err) < 0)
        fail_msg("%s", hull_error_msg(&err));
    eq_resources(&r, &back);

    /* inside a config.json: the model's linux.resources */
    _cleanup_free_ char *doc =
        xasprintf("{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{"
                  "\"resources\":%s}}",
                  full_resources_json);
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL, *m2 = NULL;
    assert_int_equal(hull_ocispec_parse(doc, &m, &err), 0);
    eq_resources(&r, m->linux_->resources);
    _cleanup_free_ char *out = hull_ocispec_to_json(m, true);
    assert_int_equal(hull_ocispec_parse(out, &m2, &err), 0);
    eq_resources(m->linux_->resources, m2->linux_->resources);

    /* an empty object: present and empty (no device rules: an update keeps the old ones) */
    _cleanup_cgroup_resources_ struct hull_cgroup_resources none;
    assert_int_equal(hull_ocispec_resources_parse("{}", &none, &err), 0);
    assert_null(none.devices);
    assert_true(none.memory.limit == HULL_CG_UNSET && none.pids_limit == HULL_CG_UNSET);
    _cleanup_free_ char *empty = hull_ocispec_resources_to_json(&none);
    assert_string_equal(empty, "{}");
}

/* the spellings other writers use: defaults, null, empty strings, numbers above INT64_MAX
 * ("max"), members Hull does not support (ignored, as runc ignores unknown members) */
static void test_resources_spellings(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    int ret = hull_ocispec_resources_parse(
        "{\"devices\":[{\"allow\":true},{\"allow\":false,\"type\":\"\",\"access\":\"\"},"
        "{\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"mwr\"}],"
        "\"memory\":{\"limit\":null,\"swap\":18446744073709551615,\"useHierarchy\":true,"
        "\"checkBeforeUpdate\":true},\"cpu\":{\"cpus\":\"\",\"burst\":5},"
        "\"blockIO\":{\"weightDevice\":[{\"major\":8,\"minor\":0,\"leafWeight\":10}]},"
        "\"rdma\":{\"mlx5_1\":{\"hcaHandles\":3}},\"network\":{\"priorities\":[{\"name\":\"eth0\","
        "\"priority\":5}]},\"futureThing\":{\"x\":[1]}}",
        &r, &err);
    if (ret < 0)
        fail_msg("%s", hull_error_msg(&err));
    assert_int_equal(r.n_devices, 3);
    assert_true(r.devices[0].allow);
    assert_int_equal(r.devices[0].type, 'a');
    assert_true(r.devices[0].major == -1 && r.devices[0].minor == -1);
    assert_int_equal(r.devices[0].access, HULL_CG_DEV_RWM);
    assert_false(r.devices[1].allow);
    assert_int_equal(r.devices[1].type, 'a');
    assert_int_equal(r.devices[1].access, HULL_CG_DEV_RWM);
    assert_false(r.devices[2].allow); /* allow absent: false */
    assert_int_equal(r.devices[2].access, HULL_CG_DEV_RWM);
    assert_true(r.memory.limit == HULL_CG_UNSET);
    assert_true(r.memory.swap == INT64_MAX);
    assert_null(r.cpu.cpus);
    assert_int_equal(r.blkio.n_weight_device, 0); /* leafWeight alone sets nothing */
    assert_true(r.net_cls_classid == HULL_CG_UNSET);
    char buf[4];
    assert_string_equal(hull_cgroup_device_access_string(r.devices[2].access, buf), "rwm");
}

/* bad resources: a clear error naming the member, in config.json and in update's input */
static void test_resources_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"[]", "linux.resources: must be an object"},
        {"{\"devices\":{}}", "linux.resources.devices: must be an array"},
        {"{\"devices\":[1]}", "linux.resources.devices[0]: must be an object"},
        {"{\"devices\":[{\"allow\":\"yes\"}]}", "linux.resources.devices[].allow"},
        {"{\"devices\":[{\"type\":\"x\"}]}", "devices[0]: invalid type `x`"},
        {"{\"devices\":[{\"type\":\"cc\"}]}", "devices[0]: invalid type `cc`"},
        {"{\"devices\":[{\"type\":7}]}", "linux.resources.devices[].type: must be a string"},
        {"{\"devices\":[{},{\"type\":\"c\",\"access\":\"rwx\"}]}",
         "devices[1]: invalid access `rwx`"},
        {"{\"devices\":[{\"type\":\"c\",\"major\":-2}]}", "devices[].major: -2 out of range"},
        {"{\"devices\":[{\"type\":\"c\",\"minor\":\"1\"}]}", "devices[].minor: must be an integer"},
        {"{\"memory\":[]}", "linux.resources.memory: must be an object"},
        {"{\"memory\":{\"limit\":\"1G\"}}", "linux.resources.memory.limit: must be an integer"},
        {"{\"memory\":{\"limit\":1.5}}", "linux.resources.memory.limit"},
        {"{\"memory\":{\"limit\":-2}}", "linux.resources.memory.limit: -2 out of range"},
        {"{\"memory\":{\"reservation\":-5}}", "memory.reservation: -5 out of range"},
        {"{\"memory\":{\"swappiness\":-1}}", "linux.resources.memory.swappiness: -1 out of range"},
        {"{\"memory\":{\"disableOOMKiller\":1}}", "memory.disableOOMKiller: must be true or false"},
        {"{\"cpu\":{\"shares\":-1}}", "linux.resources.cpu.shares: -1 out of range"},
        {"{\"cpu\":{\"period\":-100000}}", "linux.resources.cpu.period"},
        {"{\"cpu\":{\"realtimePeriod\":-1}}", "linux.resources.cpu.realtimePeriod"},
        {"{\"cpu\":{\"quota\":true}}", "linux.resources.cpu.quota: must be an integer"},
        {"{\"cpu\":{\"cpus\":3}}", "linux.resources.cpu.cpus: must be a string"},
        {"{\"pids\":5}", "linux.resources.pids: must be an object"},
        {"{\"pids\":{\"limit\":\"max\"}}", "linux.resources.pids.limit: must be an integer"},
        {"{\"blockIO\":{\"weight\":70000}}", "linux.resources.blockIO.weight: 70000 out of range"},
        {"{\"blockIO\":{\"leafWeight\":-1}}", "linux.resources.blockIO.leafWeight"},
        {"{\"blockIO\":{\"weightDevice\":[{\"minor\":0,\"weight\":10}]}}",
         "blockIO.weightDevice[0].major: missing"},
        {"{\"blockIO\":{\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0}]}}",
         "blockIO.throttleReadBpsDevice[0].rate: missing"},
        {"{\"blockIO\":{\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":0,\"rate\":-1}]}}",
         "blockIO.throttleWriteIOPSDevice[0].rate: -1 out of range"},
        {"{\"blockIO\":{\"throttleReadIOPSDevice\":{}}}",
         "blockIO.throttleReadIOPSDevice: must be an array"},
        {"{\"blockIO\":{\"weightDevice\":[{\"major\":-1,\"minor\":0,\"weight\":10}]}}",
         "blockIO.weightDevice[0].major: -1 out of range"},
        {"{\"hugepageLimits\":[{\"limit\":1}]}", "hugepageLimits[0].pageSize: missing"},
        {"{\"hugepageLimits\":[{\"pageSize\":\"2MB\"}]}", "hugepageLimits[].limit: missing"},
        {"{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":-1}]}",
         "hugepageLimits[].limit: -1 out of range"},
        {"{\"unified\":{\"pids.max\":5}}", "linux.resources.unified `pids.max`: value must be"},
        {"{\"unified\":[]}", "linux.resources.unified: must be an object"},
        {"{\"network\":{\"classID\":4294967296}}", "linux.resources.network.classID"},
        {"{\"network\":{\"classID\":-1}}", "linux.resources.network.classID"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hull_error_t err = NULL;
        _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
        if (hull_ocispec_resources_parse(bad[i].json, &r, &err) == 0)
            fail_msg("accepted: %s", bad[i].json);
        if (strstr(hull_error_msg(&err), bad[i].needle) == NULL)
            fail_msg("%s: error `%s` does not name `%s`", bad[i].json, hull_error_msg(&err),
                     bad[i].needle);
        hull_error_free(&err);
        /* the same inside a config.json */
        _cleanup_free_ char *doc =
            xasprintf("{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{"
                      "\"resources\":%s}}",
                      bad[i].json);
        struct hull_ocispec *m = NULL;
        if (hull_ocispec_parse(doc, &m, &err) == 0)
            fail_msg("config.json accepted: %s", bad[i].json);
        assert_null(m);
        if (strstr(hull_error_msg(&err), bad[i].needle) == NULL)
            fail_msg("config.json %s: error `%s` does not name `%s`", bad[i].json,
                     hull_error_msg(&err), bad[i].needle);
        hull_error_free(&err);
    }
}

/* the config.json `runc spec` writes parses, and comes back out the same */
static void test_runc_spec_config(void **state)
{
    (void)state;
    if (system("command -v runc >/dev/null 2>&1") != 0)
        skip(); /* contrib/install-deps.sh installs runc */
    char dir[] = "/tmp/hull-ocispec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *cmd = xasprintf("runc spec --bundle %s", dir);
    assert_int_equal(system(cmd), 0);
    _cleanup_free_ char *path = hull_path_join(dir, "config.json"), *text = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_read_file(path, 1u << 20, &text, NULL, &err), 0);
    unlink(path);
    rmdir(dir);
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL, *back = NULL;
    if (hull_ocispec_parse(text, &m, &err) < 0)
        fail_msg("%s", hull_error_msg(&err));
    const struct hull_cgroup_resources *r = m->linux_->resources;
    assert_non_null(r);
    assert_int_equal(r->n_devices, 1); /* deny all */
    assert_false(r->devices[0].allow);
    assert_int_equal(r->devices[0].type, 'a');
    assert_int_equal(r->devices[0].access, HULL_CG_DEV_RWM);
    _cleanup_free_ char *out = hull_ocispec_to_json(m, false);
    assert_int_equal(hull_ocispec_parse(out, &back, &err), 0);
    assert_model_equal(m, back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_rich_model), cmocka_unit_test(test_round_trip_text),
        cmocka_unit_test(test_null_and_unknown),      cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_resources_round_trip),  cmocka_unit_test(test_resources_spellings),
        cmocka_unit_test(test_resources_bad_input),   cmocka_unit_test(test_runc_spec_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
