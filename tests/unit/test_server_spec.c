/* Unit tests of server/spec/ (the spec builder): OCI spec generation from CRI configs.  Each
 * test builds CRI configs as protobuf-c structs, generates the spec on a fixture rootfs in a temp
 * dir, parses it back with yajl and checks it; every generated spec also goes through the
 * model's parser and serializer unchanged (what hull-oci loads is what hulld wrote).  The last test
 * runs a generated spec with runc on a busybox rootfs and checks `id` and CapEff from inside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/spec/spec.h"
#include "server/pod/pod.h"
#include "tests/unit/hull_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>

/* ---- fixtures ---------------------------------------------------------------------------- */
struct fx {
    char *dir;    /* temp dir */
    char *rootfs; /* <dir>/rootfs */
    char *cdir;   /* <dir>/container */
    Runtime__V1__ContainerConfig cfg;
    Runtime__V1__ContainerMetadata meta;
    Runtime__V1__ImageSpec ispec;
    Runtime__V1__LinuxContainerConfig lcfg;
    Runtime__V1__LinuxContainerSecurityContext sc;
    Runtime__V1__LinuxContainerResources res;
    Runtime__V1__PodSandboxConfig pcfg;
    Runtime__V1__PodSandboxMetadata pmeta;
    Runtime__V1__LinuxPodSandboxConfig plcfg;
    struct spec_sandbox sb;
    struct image_info img;
    struct spec_input in;
};

static char *fx_path(struct fx *f, const char *rel)
{
    return hull_path_join(f->dir, rel);
}

static void fx_write(struct fx *f, const char *rel, const char *content)
{
    _cleanup_free_ char *p = fx_path(f, rel);
    hull_test_write_file(p, content, 0644);
}

static const char *default_passwd = "root:x:0:0:root:/root:/bin/sh\n"
                                    "app:x:1000:1000:App:/home/app:/bin/sh\n"
                                    "svc:x:2000:3000::/:/bin/false\n";
static const char *default_group = "root:x:0:\n"
                                   "wheel:x:10:root,app\n"
                                   "staff:x:50:svc\n"
                                   "extra:x:500:svc,app\n"
                                   "app:x:1000:\n"
                                   "svcgrp:x:3000:\n";

static int fx_setup(void **state)
{
    struct fx *f = xmalloc0(sizeof(*f));
    char tmpl[] = "/tmp/hull-ocispec-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->rootfs = fx_path(f, "rootfs");
    f->cdir = fx_path(f, "container");
    hull_error_t err = NULL;
    _cleanup_free_ char *etc = fx_path(f, "rootfs/etc");
    assert_int_equal(hull_mkdir_p(etc, 0755, &err), 0);
    assert_int_equal(hull_mkdir_p(f->cdir, 0755, &err), 0);
    fx_write(f, "rootfs/etc/passwd", default_passwd);
    fx_write(f, "rootfs/etc/group", default_group);

    runtime__v1__container_config__init(&f->cfg);
    runtime__v1__container_metadata__init(&f->meta);
    runtime__v1__image_spec__init(&f->ispec);
    runtime__v1__linux_container_config__init(&f->lcfg);
    runtime__v1__linux_container_security_context__init(&f->sc);
    runtime__v1__linux_container_resources__init(&f->res);
    runtime__v1__pod_sandbox_config__init(&f->pcfg);
    runtime__v1__pod_sandbox_metadata__init(&f->pmeta);
    runtime__v1__linux_pod_sandbox_config__init(&f->plcfg);
    f->meta.name = "web";
    f->ispec.image = "docker.io/library/busybox:latest";
    f->cfg.metadata = &f->meta;
    f->cfg.image = &f->ispec;
    f->cfg.linux = &f->lcfg;
    f->lcfg.security_context = &f->sc;
    f->lcfg.resources = &f->res;
    f->pmeta.name = "pod";
    f->pmeta.namespace_ = "default";
    f->pmeta.uid = "uid-1";
    f->pcfg.metadata = &f->pmeta;
    f->pcfg.hostname = "podhost";
    f->pcfg.linux = &f->plcfg;
    f->plcfg.cgroup_parent = "/kubepods/besteffort/pod1";

    f->sb.id = "sandbox1";
    f->sb.config = &f->pcfg;
    f->sb.netns_path = "/run/hull/ns/net-1";
    f->sb.ipcns_path = "/run/hull/ns/ipc-1";
    f->sb.utsns_path = "/run/hull/ns/uts-1";
    f->sb.cgroup_parent = "/kubepods/besteffort/pod1";
    f->sb.hostname = "podhost";

    static char *ep[] = {"/entry", NULL};
    static char *cmd[] = {"cmd1", "cmd2", NULL};
    static char *env[] = {"PATH=/img/bin", "FOO=img", "ONLYIMG=1", NULL};
    f->img.user = "";
    f->img.entrypoint = ep;
    f->img.cmd = cmd;
    f->img.env = env;
    f->img.working_dir = "/imgwd";

    f->in.container_id = "c0ffee";
    f->in.config = &f->cfg;
    f->in.sandbox = &f->sb;
    f->in.image = &f->img;
    f->in.rootfs = f->rootfs;
    f->in.container_dir = f->cdir;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    hull_error_t err = NULL;
    assert_int_equal(hull_rm_rf(f->dir, &err), 0);
    free(f->dir);
    free(f->rootfs);
    free(f->cdir);
    free(f);
    return 0;
}

/* Generates and parses; NULL (with *errp set) on failure. */
static yajl_val gen(struct fx *f, hull_error_t *errp)
{
    char *json = NULL;
    int r = spec_from_cri(&f->in, &json, errp);
    if (r < 0) {
        assert_null(json);
        assert_int_equal(-r, hull_error_status(errp));
        return NULL;
    }
    assert_non_null(json);
    /* the one parser reads back everything the one serializer wrote (hull-oci loads this) */
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL;
    hull_error_t perr = NULL;
    if (hull_ocispec_parse(json, &m, &perr) < 0)
        fail_msg("hull-oci's parser refuses the spec: %s", hull_error_msg(&perr));
    _cleanup_free_ char *again = hull_ocispec_to_json(m, false);
    assert_string_equal(again, json);
    char ebuf[256];
    yajl_val t = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    if (t == NULL)
        fail_msg("spec is not JSON: %s", ebuf);
    free(json);
    return t;
}

static yajl_val gen_ok(struct fx *f)
{
    hull_error_t err = NULL;
    yajl_val t = gen(f, &err);
    if (t == NULL)
        fail_msg("spec_from_cri failed: %s", hull_error_msg(&err));
    return t;
}

/* Expects failure with status; checks that the message contains needle. */
static void gen_fail(struct fx *f, int status, const char *needle)
{
    hull_error_t err = NULL;
    yajl_val t = gen(f, &err);
    if (t != NULL) {
        yajl_tree_free(t);
        fail_msg("expected failure with %s", strerror(status));
    }
    if (hull_error_status(&err) != status)
        fail_msg("expected %s, got %s: %s", strerror(status), strerror(hull_error_status(&err)),
                 hull_error_msg(&err));
    if (needle && strstr(hull_error_msg(&err), needle) == NULL)
        fail_msg("error `%s` does not mention `%s`", hull_error_msg(&err), needle);
    hull_error_free(&err);
}

static yajl_val jget(yajl_val t, const char *a, const char *b, const char *c)
{
    const char *path[4] = {a, b, c, NULL};
    return yajl_tree_get(t, path, yajl_t_any);
}

static const char *jstr(yajl_val t, const char *a, const char *b, const char *c)
{
    yajl_val v = jget(t, a, b, c);
    return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static long long jint(yajl_val t, const char *a, const char *b, const char *c)
{
    yajl_val v = jget(t, a, b, c);
    if (v == NULL || !YAJL_IS_INTEGER(v))
        fail_msg("%s.%s.%s is not an integer", a, b ? b : "", c ? c : "");
    return YAJL_GET_INTEGER(v);
}

/* Array of strings joined with ' '. Caller frees. */
static char *jjoin(yajl_val arr)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return xstrdup("<none>");
    char *s = xstrdup("");
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        char *n;
        if (YAJL_IS_STRING(v))
            n = xasprintf("%s%s%s", s, i ? " " : "", YAJL_GET_STRING(v));
        else
            n = xasprintf("%s%s%lld", s, i ? " " : "", (long long)YAJL_GET_INTEGER(v));
        free(s);
        s = n;
    }
    return s;
}

static void assert_join(yajl_val arr, const char *expect)
{
    _cleanup_free_ char *s = jjoin(arr);
    if (strcmp(s, expect) != 0)
        fail_msg("got `%s`, expected `%s`", s, expect);
}

static bool arr_has(yajl_val arr, const char *s)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        const char *x =
            YAJL_IS_STRING(arr->u.array.values[i]) ? YAJL_GET_STRING(arr->u.array.values[i]) : NULL;
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static yajl_val find_mount(yajl_val t, const char *dest)
{
    yajl_val m = jget(t, "mounts", NULL, NULL);
    assert_non_null(m);
    yajl_val found = NULL;
    for (size_t i = 0; i < m->u.array.len; i++)
        if (strcmp(hull_json_get_string(m->u.array.values[i], "destination", ""), dest) == 0) {
            if (found)
                fail_msg("two mounts at %s", dest);
            found = m->u.array.values[i];
        }
    return found;
}

static int mount_index(yajl_val t, const char *dest)
{
    yajl_val m = jget(t, "mounts", NULL, NULL);
    for (size_t i = 0; i < m->u.array.len; i++)
        if (strcmp(hull_json_get_string(m->u.array.values[i], "destination", ""), dest) == 0)
            return (int)i;
    return -1;
}

static yajl_val find_ns(yajl_val t, const char *type)
{
    yajl_val ns = jget(t, "linux", "namespaces", NULL);
    assert_non_null(ns);
    for (size_t i = 0; i < ns->u.array.len; i++)
        if (strcmp(hull_json_get_string(ns->u.array.values[i], "type", ""), type) == 0)
            return ns->u.array.values[i];
    return NULL;
}

/* ---- process ----------------------------------------------------------------------------- */
static void test_args_precedence(void **state)
{
    struct fx *f = *state;
    static char *ep[] = {"/entry", NULL};
    static char *cmd[] = {"cmd1", "cmd2", NULL};
    static char *c_command[] = {"/bin/run"};
    static char *c_args[] = {"a1", "a2"};
    struct {
        char **ep, **cmd;
        size_t ncommand, nargs;
        const char *expect;
    } cases[] = {
        {ep, cmd, 0, 0, "/entry cmd1 cmd2"},  /* image only */
        {ep, cmd, 0, 2, "/entry a1 a2"},      /* args override cmd */
        {ep, cmd, 1, 0, "/bin/run"},          /* command overrides entrypoint, drops cmd */
        {ep, cmd, 1, 2, "/bin/run a1 a2"},    /* command + args */
        {NULL, cmd, 0, 0, "cmd1 cmd2"},       /* cmd alone */
        {NULL, cmd, 0, 2, "a1 a2"},           /* args alone */
        {ep, NULL, 0, 0, "/entry"},           /* entrypoint alone */
        {NULL, NULL, 1, 2, "/bin/run a1 a2"}, /* no image config */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->img.entrypoint = cases[i].ep;
        f->img.cmd = cases[i].cmd;
        f->cfg.n_command = cases[i].ncommand;
        f->cfg.command = c_command;
        f->cfg.n_args = cases[i].nargs;
        f->cfg.args = c_args;
        yajl_val t = gen_ok(f);
        assert_join(jget(t, "process", "args", NULL), cases[i].expect);
        yajl_tree_free(t);
    }
    /* nothing at all */
    f->img.entrypoint = f->img.cmd = NULL;
    f->cfg.n_command = f->cfg.n_args = 0;
    gen_fail(f, EINVAL, "no command");
}

static void test_env_cwd_terminal(void **state)
{
    struct fx *f = *state;
    Runtime__V1__KeyValue e1 = RUNTIME__V1__KEY_VALUE__INIT, e2 = RUNTIME__V1__KEY_VALUE__INIT;
    e1.key = "FOO";
    e1.value = "cri";
    e2.key = "BAR";
    e2.value = "x=y";
    Runtime__V1__KeyValue *envs[] = {&e1, &e2};
    f->cfg.envs = envs;
    f->cfg.n_envs = 2;
    f->cfg.tty = true;
    f->sb.utsns_path = NULL; /* a new UTS namespace gets the hostname */
    yajl_val t = gen_ok(f);
    assert_join(jget(t, "process", "env", NULL),
                "HOSTNAME=podhost PATH=/img/bin FOO=cri ONLYIMG=1 BAR=x=y");
    assert_string_equal(jstr(t, "process", "cwd", NULL), "/imgwd");
    assert_true(YAJL_IS_TRUE(jget(t, "process", "terminal", NULL)));
    assert_string_equal(jstr(t, "hostname", NULL, NULL), "podhost");
    yajl_tree_free(t);

    /* default PATH when neither sets one; CRI working dir wins */
    static char *env[] = {"A=1", NULL};
    f->img.env = env;
    f->cfg.working_dir = "/work/./dir/";
    t = gen_ok(f);
    yajl_val ev = jget(t, "process", "env", NULL);
    assert_true(arr_has(ev, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_string_equal(jstr(t, "process", "cwd", NULL), "/work/dir");
    yajl_tree_free(t);

    f->cfg.working_dir = "";
    f->img.working_dir = "";
    t = gen_ok(f);
    assert_string_equal(jstr(t, "process", "cwd", NULL), "/");
    yajl_tree_free(t);

    f->cfg.working_dir = "relative";
    gen_fail(f, EINVAL, "working_dir");
    f->cfg.working_dir = "";
    e1.key = "BAD=KEY";
    gen_fail(f, EINVAL, "BAD=KEY");
}

/* ---- users ------------------------------------------------------------------------------- */
static void expect_user(struct fx *f, long long uid, long long gid, const char *gids)
{
    yajl_val t = gen_ok(f);
    assert_int_equal(jint(t, "process", "user", "uid"), uid);
    assert_int_equal(jint(t, "process", "user", "gid"), gid);
    assert_join(jget(t, "process", "user", "additionalGids"), gids);
    yajl_tree_free(t);
}

static void test_user_image(void **state)
{
    struct fx *f = *state;
    f->img.user = "";
    expect_user(f, 0, 0, "0 10"); /* root, member of wheel */
    f->img.user = "app";
    expect_user(f, 1000, 1000, "1000 10 500");
    f->img.user = "1000";
    expect_user(f, 1000, 1000, "1000 10 500");
    f->img.user = "1000:50";
    expect_user(f, 1000, 50, "50 10 500");
    f->img.user = "app:staff";
    expect_user(f, 1000, 50, "50 10 500");
    f->img.user = "svc:7";
    expect_user(f, 2000, 7, "7 50 500");
    f->img.user = "4242"; /* not in passwd: gid 0, no groups */
    expect_user(f, 4242, 0, "0");
    f->img.user = "nobody2";
    gen_fail(f, ENOENT, "\"nobody2\"");
    f->img.user = "app:nogroup";
    gen_fail(f, ENOENT, "\"nogroup\"");
    f->img.user = "4294967296";
    gen_fail(f, EINVAL, "out of range");
    f->img.user = "4294967295"; /* (uid_t)-1: "unchanged" to setresuid */
    gen_fail(f, EINVAL, "out of range");
    f->img.user = "1:99999999999";
    gen_fail(f, EINVAL, "out of range");
}

static void test_user_cri(void **state)
{
    struct fx *f = *state;
    Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
    Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
    f->img.user = "app"; /* overridden by everything below */

    f->sc.run_as_username = "svc";
    expect_user(f, 2000, 3000, "3000 50 500");
    f->sc.run_as_username = "nobody2";
    gen_fail(f, ENOENT, "run_as_username \"nobody2\"");
    f->sc.run_as_username = "";

    uid.value = 0;
    f->sc.run_as_user = &uid;
    expect_user(f, 0, 0, "0 10");
    uid.value = 4242;
    expect_user(f, 4242, 0, "0");
    uid.value = 1000;
    gid.value = 7;
    f->sc.run_as_group = &gid;
    int64_t supp[] = {9, 7, 10};
    f->sc.supplemental_groups = supp;
    f->sc.n_supplemental_groups = 3;
    expect_user(f, 1000, 7, "7 10 500 9"); /* primary gid first, deduplicated */
    struct spec_user u = {0};
    f->in.user_out = &u;
    expect_user(f, 1000, 7, "7 10 500 9");
    f->in.user_out = NULL;
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 7);
    assert_int_equal(u.n_additional_gids, 4);
    assert_int_equal(u.additional_gids[0], 7);
    assert_int_equal(u.additional_gids[3], 9);
    free(u.additional_gids);

    /* Strict: only the primary gid and the CRI-given groups */
    f->sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    expect_user(f, 1000, 7, "7 9 10");
    f->sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge;

    /* run_as_group alone is refused (containerd, CRI-O and critest agree) */
    f->sc.run_as_user = NULL;
    f->sc.n_supplemental_groups = 0;
    gen_fail(f, EINVAL, "run_as_group is set without run_as_user");
    /* with run_as_username */
    f->sc.run_as_username = "svc";
    expect_user(f, 2000, 7, "7 50 500");
    f->sc.run_as_username = "";

    /* uid/gid arithmetic: ids are unsigned 32-bit, (uint32_t)-1 refused */
    f->sc.run_as_user = &uid;
    uid.value = 4294967296LL;
    gen_fail(f, EINVAL, "run_as_user 4294967296");
    uid.value = 4294967295LL;
    gen_fail(f, EINVAL, "run_as_user");
    uid.value = -1;
    gen_fail(f, EINVAL, "run_as_user -1");
    uid.value = 1000;
    gid.value = 1LL << 32;
    gen_fail(f, EINVAL, "run_as_group");
    gid.value = 5;
    int64_t bad[] = {-5};
    f->sc.supplemental_groups = bad;
    f->sc.n_supplemental_groups = 1;
    gen_fail(f, EINVAL, "supplemental group -5");
}

static void test_user_no_passwd(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *p = fx_path(f, "rootfs/etc/passwd");
    _cleanup_free_ char *g = fx_path(f, "rootfs/etc/group");
    unlink(p);
    unlink(g);
    f->img.user = "";
    expect_user(f, 0, 0, "0");
    f->img.user = "1234:55";
    expect_user(f, 1234, 55, "55");
    f->img.user = "app";
    gen_fail(f, ENOENT, "the image has none");
}

/* SECURITY.md: hostile /etc/passwd and /etc/group — bounded file and line sizes */
static void test_hostile_passwd_sizes(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *p = fx_path(f, "rootfs/etc/passwd");
    _cleanup_free_ char *g = fx_path(f, "rootfs/etc/group");

    /* a 10 MiB /etc/passwd is refused, not read */
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    char line[128];
    for (int i = 0; i < 10 * 1024 * 1024 / 40; i++) {
        snprintf(line, sizeof(line), "user%08d:x:%d:%d::/:/bin/sh\n", i, 10000 + i, 10000 + i);
        fputs(line, fp);
    }
    fclose(fp);
    f->img.user = "app";
    gen_fail(f, EFBIG, "/etc/passwd");

    /* a line of almost 1 MiB is skipped; the entries around it still work */
    fp = fopen(p, "w");
    fputs("root:x:0:0::/:/bin/sh\n", fp);
    for (int i = 0; i < (1 << 20) - 200; i++)
        fputc(i % 100 == 0 ? ':' : 'a', fp);
    fputs("\napp:x:1000:1000::/:/bin/sh\n", fp);
    fclose(fp);
    expect_user(f, 1000, 1000, "1000 10 500");

    /* a huge /etc/group fails Merge, and is never opened under Strict */
    hull_test_write_file(p, default_passwd, 0644);
    fp = fopen(g, "w");
    for (int i = 0; i < 3 * 1024 * 1024 / 16; i++)
        fprintf(fp, "g%08d:x:%d:\n", i, 5000 + i % 1000);
    fclose(fp);
    gen_fail(f, EFBIG, "/etc/group");
    f->sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    expect_user(f, 1000, 1000, "1000");
    f->sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge;

    /* more groups than NGROUPS_MAX listing the user */
    fp = fopen(g, "w");
    for (int i = 0; i < 66000; i++)
        fprintf(fp, "g:x:%d:app\n", 100000 + i);
    fclose(fp);
    gen_fail(f, EINVAL, "additional groups");

    /* a device node as /etc/passwd is refused without being opened */
    unlink(p);
    assert_int_equal(mknod(p, S_IFCHR | 0644, makedev(1, 3)), 0);
    gen_fail(f, EINVAL, "not a regular file");
    /* a FIFO as /etc/passwd is refused without blocking */
    hull_test_write_file(g, default_group, 0644);
    unlink(p);
    assert_int_equal(mkfifo(p, 0644), 0);
    gen_fail(f, EINVAL, "not a regular file");
}

/* SECURITY.md: path joins following symlinks — /etc/passwd is resolved inside the rootfs only */
static void test_hostile_passwd_symlinks(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *p = fx_path(f, "rootfs/etc/passwd");
    _cleanup_free_ char *outside = fx_path(f, "outside");
    _cleanup_free_ char *outside_pw = fx_path(f, "outside/passwd");
    hull_error_t err = NULL;
    assert_int_equal(hull_mkdir_p(outside, 0755, &err), 0);
    hull_test_write_file(outside_pw, "evil:x:0:0::/:/bin/sh\n", 0644);
    f->sc.run_as_username = "evil";

    /* absolute link to the host's /etc/shadow: resolved as <rootfs>/etc/shadow (absent) */
    unlink(p);
    assert_int_equal(symlink("/etc/shadow", p), 0);
    gen_fail(f, ENOENT, "the image has none");
    /* ... and when the image has one, that one is used */
    fx_write(f, "rootfs/etc/shadow", "evil:x:777:778::/:/bin/sh\n");
    expect_user(f, 777, 778, "778");

    /* relative link climbing out of the rootfs: ".." stops at the rootfs */
    unlink(p);
    assert_int_equal(symlink("../../../../../outside/passwd", p), 0);
    gen_fail(f, ENOENT, "\"evil\"");
    /* the host's own /etc/passwd through ../: the rootfs's file, not the host's */
    unlink(p);
    assert_int_equal(symlink("../../../../../../../etc/passwd", p), 0);
    f->sc.run_as_username = "root";
    gen_fail(f, ELOOP, "/etc/passwd");
    /* a symlinked /etc directory is resolved inside the rootfs too */
    unlink(p);
    _cleanup_free_ char *etc = fx_path(f, "rootfs/etc");
    _cleanup_free_ char *etc2 = fx_path(f, "rootfs/etc2");
    assert_int_equal(rename(etc, etc2), 0);
    assert_int_equal(symlink(outside, etc), 0); /* absolute host path */
    f->sc.run_as_username = "evil";
    gen_fail(f, ENOENT, "\"evil\"");
}

/* ---- capabilities ------------------------------------------------------------------------ */
static uint64_t caps_of(yajl_val arr)
{
    uint64_t m = 0;
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        int c = hull_cap_from_name(YAJL_GET_STRING(arr->u.array.values[i]));
        assert_true(c >= 0);
        m |= 1ULL << c;
    }
    return m;
}

static uint64_t my_caps(void)
{
    _cleanup_free_ char *buf = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_read_file("/proc/self/status", 1 << 16, &buf, NULL, &err), 0);
    char *p = strstr(buf, "CapEff:");
    assert_non_null(p);
    return strtoull(p + 7, NULL, 16);
}

static void test_caps(void **state)
{
    struct fx *f = *state;
    uint64_t defaults = 0;
    for (const char *const *c = spec_default_caps; *c; c++)
        defaults |= 1ULL << hull_cap_from_name(*c);
    assert_int_equal(defaults, 0xa80425fbULL); /* docker/containerd's well-known CapEff */

    yajl_val t = gen_ok(f);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")), defaults);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "effective")), defaults);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "permitted")), defaults);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "inheritable")), 0);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "ambient")), 0);
    assert_true(YAJL_IS_FALSE(jget(t, "process", "noNewPrivileges", NULL)));
    yajl_tree_free(t);

    Runtime__V1__Capability caps = RUNTIME__V1__CAPABILITY__INIT;
    f->sc.capabilities = &caps;
    char *add[] = {"NET_ADMIN", "CAP_SYS_TIME"};
    char *drop[] = {"chown", "CAP_KILL"};
    caps.add_capabilities = add;
    caps.n_add_capabilities = 2;
    caps.drop_capabilities = drop;
    caps.n_drop_capabilities = 2;
    f->sc.no_new_privs = true;
    t = gen_ok(f);
    uint64_t want = (defaults | (1ULL << 12) | (1ULL << 25)) & ~((1ULL << 0) | (1ULL << 5));
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")), want);
    assert_true(YAJL_IS_TRUE(jget(t, "process", "noNewPrivileges", NULL)));
    yajl_tree_free(t);

    /* drop ALL then add one */
    char *dropall[] = {"ALL"};
    char *add1[] = {"NET_BIND_SERVICE"};
    caps.drop_capabilities = dropall;
    caps.n_drop_capabilities = 1;
    caps.add_capabilities = add1;
    caps.n_add_capabilities = 1;
    t = gen_ok(f);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")), 1ULL << 10);
    yajl_tree_free(t);

    /* add ALL, drop one: everything this process holds but that one */
    char *addall[] = {"ALL"};
    char *drop1[] = {"SYS_ADMIN"};
    caps.add_capabilities = addall;
    caps.drop_capabilities = drop1;
    t = gen_ok(f);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")),
                     my_caps() & ~(1ULL << 21));
    yajl_tree_free(t);

    /* ambient */
    char *amb[] = {"NET_RAW"};
    caps.n_add_capabilities = caps.n_drop_capabilities = 0;
    caps.add_ambient_capabilities = amb;
    caps.n_add_ambient_capabilities = 1;
    t = gen_ok(f);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "ambient")), 1ULL << 13);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "inheritable")), 1ULL << 13);
    yajl_tree_free(t);
    caps.n_add_ambient_capabilities = 0;

    /* unknown names are refused */
    char *bogus[] = {"CAP_FLY"};
    caps.add_capabilities = bogus;
    caps.n_add_capabilities = 1;
    gen_fail(f, EINVAL, "CAP_FLY");
    caps.n_add_capabilities = 0;

    /* privileged: every capability this process holds (needs a privileged pod) */
    Runtime__V1__LinuxSandboxSecurityContext psc =
        RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    f->plcfg.security_context = &psc;
    f->sc.privileged = true;
    gen_fail(f, EINVAL, "privileged");
    psc.privileged = true;
    t = gen_ok(f);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")), my_caps());
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "effective")), my_caps());
    yajl_tree_free(t);
}

/* ---- masked paths, devices, privileged --------------------------------------------------- */
static void test_masked_paths(void **state)
{
    struct fx *f = *state;
    yajl_val t = gen_ok(f);
    yajl_val mp = jget(t, "linux", "maskedPaths", NULL);
    yajl_val rp = jget(t, "linux", "readonlyPaths", NULL);
    assert_true(arr_has(mp, "/proc/kcore"));
    assert_true(arr_has(mp, "/proc/keys"));
    assert_true(arr_has(mp, "/sys/firmware"));
    assert_true(arr_has(rp, "/proc/sys"));
    assert_true(arr_has(rp, "/proc/sysrq-trigger"));
    /* sysfs and the cgroup mount are read-only */
    assert_true(arr_has(hull_json_get(find_mount(t, "/sys"), "options"), "ro"));
    assert_true(arr_has(hull_json_get(find_mount(t, "/sys/fs/cgroup"), "options"), "ro"));
    yajl_tree_free(t);

    char *masked[] = {"/proc/foo"};
    char *ro[] = {"/proc/bar", "/proc/baz"};
    f->sc.masked_paths = masked;
    f->sc.n_masked_paths = 1;
    f->sc.readonly_paths = ro;
    f->sc.n_readonly_paths = 2;
    t = gen_ok(f);
    assert_join(jget(t, "linux", "maskedPaths", NULL), "/proc/foo");
    assert_join(jget(t, "linux", "readonlyPaths", NULL), "/proc/bar /proc/baz");
    yajl_tree_free(t);

    Runtime__V1__LinuxSandboxSecurityContext psc =
        RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    psc.privileged = true;
    f->plcfg.security_context = &psc;
    f->sc.privileged = true;
    t = gen_ok(f);
    assert_null(jget(t, "linux", "maskedPaths", NULL));
    assert_null(jget(t, "linux", "readonlyPaths", NULL));
    assert_true(arr_has(hull_json_get(find_mount(t, "/sys"), "options"), "rw"));
    /* all host devices, all allowed */
    yajl_val devs = jget(t, "linux", "devices", NULL);
    bool has_null = false;
    for (size_t i = 0; devs && i < devs->u.array.len; i++)
        if (strcmp(hull_json_get_string(devs->u.array.values[i], "path", ""), "/dev/null") == 0)
            has_null = true;
    assert_true(has_null);
    yajl_val rules = jget(t, "linux", "resources", "devices");
    assert_int_equal(rules->u.array.len, 1);
    assert_true(hull_json_get_bool(rules->u.array.values[0], "allow", false));
    assert_string_equal(hull_json_get_string(rules->u.array.values[0], "access", ""), "rwm");
    /* no seccomp for privileged containers */
    assert_null(jget(t, "linux", "seccomp", NULL));
    yajl_tree_free(t);
}

static void test_devices(void **state)
{
    struct fx *f = *state;
    Runtime__V1__Device d1 = RUNTIME__V1__DEVICE__INIT, d2 = RUNTIME__V1__DEVICE__INIT;
    d1.host_path = "/dev/null";
    d1.container_path = "/dev/mynull";
    d1.permissions = "rw";
    Runtime__V1__Device *devs[] = {&d1, &d2};
    f->cfg.devices = devs;
    f->cfg.n_devices = 1;
    yajl_val t = gen_ok(f);
    yajl_val dl = jget(t, "linux", "devices", NULL);
    assert_int_equal(dl->u.array.len, 1);
    yajl_val d = dl->u.array.values[0];
    assert_string_equal(hull_json_get_string(d, "path", ""), "/dev/mynull");
    assert_string_equal(hull_json_get_string(d, "type", ""), "c");
    assert_int_equal(hull_json_get_int(d, "major", -1), 1);
    assert_int_equal(hull_json_get_int(d, "minor", -1), 3);
    yajl_val rules = jget(t, "linux", "resources", "devices");
    yajl_val first = rules->u.array.values[0];
    assert_false(hull_json_get_bool(first, "allow", true));
    yajl_val last = rules->u.array.values[rules->u.array.len - 1];
    assert_true(hull_json_get_bool(last, "allow", false));
    assert_int_equal(hull_json_get_int(last, "major", -1), 1);
    assert_int_equal(hull_json_get_int(last, "minor", -1), 3);
    assert_string_equal(hull_json_get_string(last, "access", ""), "rw");
    yajl_tree_free(t);

    d2.host_path = "/etc/hostname";
    d2.container_path = "/dev/x";
    f->cfg.n_devices = 2;
    gen_fail(f, EINVAL, "not a device");
    d2.host_path = "/dev/null";
    d2.permissions = "rwx";
    gen_fail(f, EINVAL, "permissions");
}

/* ---- mounts ------------------------------------------------------------------------------ */
static Runtime__V1__Mount mk_mount(const char *cp, const char *hp, bool ro, int prop)
{
    Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
    m.container_path = (char *)cp;
    m.host_path = (char *)hp;
    m.readonly = ro;
    m.propagation = prop;
    return m;
}

static void test_mounts_basic(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *hosts = fx_path(f, "hosts");
    _cleanup_free_ char *resolv = fx_path(f, "resolv.conf");
    _cleanup_free_ char *hostname = fx_path(f, "hostname");
    _cleanup_free_ char *shm = fx_path(f, "shm");
    hull_test_write_file(hosts, "127.0.0.1 localhost\n", 0644);
    hull_test_write_file(resolv, "nameserver 10.0.0.10\n", 0644);
    hull_test_write_file(hostname, "podhost\n", 0644);
    f->sb.hosts_path = hosts;
    f->sb.resolv_path = resolv;
    f->sb.hostname_path = hostname;
    f->sb.shm_path = shm;

    _cleanup_free_ char *h_abc = fx_path(f, "vols/abc");
    _cleanup_free_ char *h_a = fx_path(f, "vols/a");
    _cleanup_free_ char *h_ab = fx_path(f, "vols/ab");
    Runtime__V1__Mount m1 = mk_mount("/a/b/c", h_abc, true, 0);
    Runtime__V1__Mount m2 = mk_mount("/a", h_a, false, 0);
    Runtime__V1__Mount m3 = mk_mount("/a/b/", h_ab, false, 0);
    Runtime__V1__Mount *ms[] = {&m1, &m2, &m3};
    f->cfg.mounts = ms;
    f->cfg.n_mounts = 3;
    static char *vols[] = {"/data", "../x", "/../../etc", "/a", "/proc", "/dev/../sys/x", NULL};
    f->img.volumes = vols;

    yajl_val t = gen_ok(f);
    /* defaults first */
    assert_int_equal(mount_index(t, "/proc"), 0);
    assert_true(mount_index(t, "/dev") < mount_index(t, "/dev/pts"));
    assert_string_equal(hull_json_get_string(find_mount(t, "/sys/fs/cgroup"), "type", ""),
                        "cgroup");
    assert_non_null(find_mount(t, "/dev/mqueue"));
    /* parents before children, whatever the CRI order */
    int ia = mount_index(t, "/a"), iab = mount_index(t, "/a/b"), iabc = mount_index(t, "/a/b/c");
    assert_true(ia >= 0 && ia < iab && iab < iabc);
    yajl_val mabc = find_mount(t, "/a/b/c");
    assert_string_equal(hull_json_get_string(mabc, "source", ""), h_abc);
    assert_join(hull_json_get(mabc, "options"), "rbind rprivate ro");
    assert_join(hull_json_get(find_mount(t, "/a"), "options"), "rbind rprivate rw");
    /* missing host paths were created as directories */
    struct stat st;
    assert_int_equal(stat(h_abc, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* the pod's files */
    assert_string_equal(hull_json_get_string(find_mount(t, "/etc/hosts"), "source", ""), hosts);
    assert_string_equal(hull_json_get_string(find_mount(t, "/etc/resolv.conf"), "source", ""),
                        resolv);
    assert_string_equal(hull_json_get_string(find_mount(t, "/etc/hostname"), "source", ""),
                        hostname);
    /* the pod's /dev/shm replaces the default tmpfs */
    yajl_val mshm = find_mount(t, "/dev/shm");
    assert_string_equal(hull_json_get_string(mshm, "source", ""), shm);
    assert_string_equal(hull_json_get_string(mshm, "type", ""), "bind");
    /* termination log under the container dir */
    yajl_val mtl = find_mount(t, "/dev/termination-log");
    assert_non_null(mtl);
    assert_true(strncmp(hull_json_get_string(mtl, "source", ""), f->cdir, strlen(f->cdir)) == 0);
    assert_int_equal(stat(hull_json_get_string(mtl, "source", ""), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    /* SECURITY.md: image config used as host paths — volumes are container paths only */
    yajl_val mx = find_mount(t, "/x");
    yajl_val metc = find_mount(t, "/etc");
    yajl_val mdata = find_mount(t, "/data");
    assert_non_null(mx);
    assert_non_null(metc);
    assert_non_null(mdata);
    _cleanup_free_ char *voldir = hull_path_join(f->cdir, "volumes/");
    for (yajl_val *m = (yajl_val[]){mx, metc, mdata, NULL}; *m; m++) {
        const char *src = hull_json_get_string(*m, "source", "");
        assert_true(strncmp(src, voldir, strlen(voldir)) == 0);
        assert_null(strstr(src, ".."));
        assert_int_equal(stat(src, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
    }
    /* image volumes never shadow /proc, /sys or /dev */
    assert_string_equal(hull_json_get_string(find_mount(t, "/proc"), "type", ""), "proc");
    assert_null(find_mount(t, "/sys/x"));
    /* a CRI mount at a volume's path wins */
    assert_string_equal(hull_json_get_string(find_mount(t, "/a"), "source", ""), h_a);
    assert_true(mount_index(t, "/etc") < mount_index(t, "/etc/hosts"));
    assert_null(jget(t, "linux", "rootfsPropagation", NULL));
    assert_true(YAJL_IS_FALSE(jget(t, "root", "readonly", NULL)));
    assert_string_equal(jstr(t, "root", "path", NULL), f->rootfs);
    yajl_tree_free(t);

    /* read-only rootfs: the pod files are read-only too; CRI mounts override pod files */
    _cleanup_free_ char *myhosts = fx_path(f, "myhosts");
    hull_test_write_file(myhosts, "", 0644);
    Runtime__V1__Mount m4 = mk_mount("/etc/hosts", myhosts, false, 0);
    Runtime__V1__Mount m5 = mk_mount("/dev/termination-log", myhosts, false, 0);
    Runtime__V1__Mount *ms2[] = {&m4, &m5};
    f->cfg.mounts = ms2;
    f->cfg.n_mounts = 2;
    f->sc.readonly_rootfs = true;
    f->img.volumes = NULL;
    t = gen_ok(f);
    assert_true(YAJL_IS_TRUE(jget(t, "root", "readonly", NULL)));
    assert_string_equal(hull_json_get_string(find_mount(t, "/etc/hosts"), "source", ""), myhosts);
    assert_string_equal(hull_json_get_string(find_mount(t, "/dev/termination-log"), "source", ""),
                        myhosts);
    assert_true(arr_has(hull_json_get(find_mount(t, "/etc/resolv.conf"), "options"), "ro"));
    yajl_tree_free(t);

    /* bad mounts */
    Runtime__V1__Mount bad = mk_mount("relative", h_a, false, 0);
    Runtime__V1__Mount *ms3[] = {&bad};
    f->cfg.mounts = ms3;
    f->cfg.n_mounts = 1;
    gen_fail(f, EINVAL, "must be absolute");
    bad = mk_mount("/..", h_a, false, 0);
    gen_fail(f, EINVAL, "root");
    bad = mk_mount("/x", "rel/host", false, 0);
    gen_fail(f, EINVAL, "must be absolute");
    /* recursive read-only: refused unless the runtime supports "rro" */
    bad = mk_mount("/x", h_a, true, 0);
    bad.recursive_read_only = true;
    gen_fail(f, EINVAL, "recursive read-only");
    f->in.runtime_supports_rro = true;
    t = gen_ok(f);
    assert_join(hull_json_get(find_mount(t, "/x"), "options"), "rbind rprivate rro");
    yajl_tree_free(t);
    bad.readonly = false;
    gen_fail(f, EINVAL, "recursive_read_only");
}

/* image mounts: the root hulld mounted, or a sub path resolved inside it, always read-only */
static void test_image_mounts(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *root = fx_path(f, "img");
    _cleanup_free_ char *sub = fx_path(f, "img/data/sub");
    hull_error_t err = NULL;
    assert_int_equal(hull_mkdir_p(sub, 0755, &err), 0);
    _cleanup_free_ char *abs = fx_path(f, "img/data/abs");
    _cleanup_free_ char *esc = fx_path(f, "img/data/esc");
    assert_int_equal(symlink("/data/sub", abs), 0);
    assert_int_equal(symlink("../../../../../../..", esc), 0);
    Runtime__V1__ImageSpec is = RUNTIME__V1__IMAGE_SPEC__INIT;
    is.image = "vol:1";
    Runtime__V1__Mount m = mk_mount("/img", "", false, 0);
    m.image = &is;
    Runtime__V1__Mount *ms[] = {&m};
    f->cfg.mounts = ms;
    f->cfg.n_mounts = 1;
    /* hulld did not mount it */
    gen_fail(f, EINVAL, "not mounted");
    char *roots[] = {root, NULL};
    f->in.image_mount_roots = roots;
    yajl_val t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_mount(t, "/img"), "source", ""), root);
    assert_join(hull_json_get(find_mount(t, "/img"), "options"), "rbind rprivate ro");
    yajl_tree_free(t);
    m.image_sub_path = "data/abs"; /* an absolute link, resolved in the image */
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_mount(t, "/img"), "source", ""), sub);
    yajl_tree_free(t);
    m.image_sub_path = "data/esc"; /* climbs to the image's root, not further */
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_mount(t, "/img"), "source", ""), root);
    yajl_tree_free(t);
    m.image_sub_path = "data/../data";
    gen_fail(f, EINVAL, "\"..\"");
    m.image_sub_path = "/data";
    gen_fail(f, EINVAL, "relative");
    m.image_sub_path = "data/nothere";
    gen_fail(f, ENOENT, "does not exist");
    m.image_sub_path = "";
    m.host_path = "/tmp";
    gen_fail(f, EINVAL, "no host_path");
    f->in.image_mount_roots = NULL;
}

/* SECURITY.md: image config used as host paths — volume copy-up stays inside the rootfs */
static void test_volume_copy_up(void **state)
{
    struct fx *f = *state;
    hull_error_t err = NULL;
    _cleanup_free_ char *sub = fx_path(f, "rootfs/data/sub");
    _cleanup_free_ char *secret = fx_path(f, "hostsecret");
    assert_int_equal(hull_mkdir_p(sub, 0755, &err), 0);
    assert_int_equal(hull_mkdir_p(secret, 0755, &err), 0);
    fx_write(f, "hostsecret/key", "SECRET");
    fx_write(f, "rootfs/data/file.txt", "hello");
    fx_write(f, "rootfs/data/sub/x", "x");
    _cleanup_free_ char *datadir = fx_path(f, "rootfs/data");
    _cleanup_free_ char *file = fx_path(f, "rootfs/data/file.txt");
    assert_int_equal(chown(file, 1000, 1000), 0);
    assert_int_equal(chmod(file, 0640), 0);
    assert_int_equal(chown(datadir, 1000, 1000), 0);
    _cleanup_free_ char *ln = fx_path(f, "rootfs/data/shadow");
    assert_int_equal(symlink("/etc/shadow", ln), 0);
    /* volume paths that are symlinks out of the rootfs (absolute and relative) */
    _cleanup_free_ char *evil1 = fx_path(f, "rootfs/evil1");
    _cleanup_free_ char *evil2 = fx_path(f, "rootfs/evil2");
    assert_int_equal(symlink(secret, evil1), 0);
    assert_int_equal(symlink("../../../../../../../../hostsecret", evil2), 0);
    static char *vols[] = {"/data", "/evil1", "/evil2/", NULL};
    f->img.volumes = vols;

    yajl_val t = gen_ok(f);
    const char *src = hull_json_get_string(find_mount(t, "/data"), "source", "");
    _cleanup_free_ char *cf = hull_path_join(src, "file.txt");
    _cleanup_free_ char *cx = hull_path_join(src, "sub/x");
    _cleanup_free_ char *cl = hull_path_join(src, "shadow");
    char *text = NULL;
    assert_int_equal(hull_read_file(cf, 64, &text, NULL, &err), 0);
    assert_string_equal(text, "hello");
    free(text);
    struct stat st;
    assert_int_equal(stat(cf, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(stat(src, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(access(cx, F_OK), 0);
    /* the link is copied as a link, not followed */
    assert_int_equal(lstat(cl, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* nothing from outside the rootfs was copied */
    for (const char *d = "/evil1"; d; d = strcmp(d, "/evil1") == 0 ? "/evil2" : NULL) {
        const char *vs = hull_json_get_string(find_mount(t, d), "source", "");
        _cleanup_free_ char *k = hull_path_join(vs, "key");
        assert_int_equal(access(k, F_OK), -1);
    }
    yajl_tree_free(t);
}

static void test_mounts_propagation(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *priv = fx_path(f, "private");
    Runtime__V1__Mount m =
        mk_mount("/p", priv, false, RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER);
    Runtime__V1__Mount *ms[] = {&m};
    f->cfg.mounts = ms;
    f->cfg.n_mounts = 1;
    /* /tmp here is on a private mount */
    gen_fail(f, EINVAL, "not a shared or slave mount");
    m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
    gen_fail(f, EINVAL, "not a shared mount");

    _cleanup_free_ char *sh = fx_path(f, "shared");
    _cleanup_free_ char *vol = fx_path(f, "shared/vol");
    hull_error_t err = NULL;
    assert_int_equal(hull_mkdir_p(sh, 0755, &err), 0);
    assert_int_equal(mount("tmpfs", sh, "tmpfs", 0, "size=1m"), 0);
    if (mount(NULL, sh, NULL, MS_SHARED, NULL) < 0) {
        int e = errno;
        umount2(sh, 0);
        print_error("make %s shared: %s\n", sh, strerror(e));
        fail();
    }
    /* generate both while the shared mount exists, check after unmounting it */
    m.host_path = vol;
    hull_error_t err1 = NULL, err2 = NULL;
    yajl_val t1 = gen(f, &err1);
    m.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
    yajl_val t2 = gen(f, &err2);
    umount2(sh, MNT_DETACH);
    if (t1 == NULL || t2 == NULL)
        fail_msg("%s%s", hull_error_msg(&err1), hull_error_msg(&err2));
    assert_join(hull_json_get(find_mount(t1, "/p"), "options"), "rbind rshared rw");
    assert_string_equal(jstr(t1, "linux", "rootfsPropagation", NULL), "rshared");
    assert_join(hull_json_get(find_mount(t2, "/p"), "options"), "rbind rslave rw");
    assert_string_equal(jstr(t2, "linux", "rootfsPropagation", NULL), "rslave");
    yajl_tree_free(t1);
    yajl_tree_free(t2);
}

/* ---- namespaces, cgroups, resources ------------------------------------------------------ */
static void test_namespaces(void **state)
{
    struct fx *f = *state;
    yajl_val t = gen_ok(f);
    /* kubelet's default: pid CONTAINER is what it sends; POD is proto's zero value */
    yajl_tree_free(t);

    Runtime__V1__NamespaceOption no = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    f->sc.namespace_options = &no;
    no.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_ns(t, "network"), "path", ""),
                        "/run/hull/ns/net-1");
    assert_string_equal(hull_json_get_string(find_ns(t, "ipc"), "path", ""), "/run/hull/ns/ipc-1");
    assert_string_equal(hull_json_get_string(find_ns(t, "uts"), "path", ""), "/run/hull/ns/uts-1");
    assert_non_null(find_ns(t, "pid"));
    assert_null(hull_json_get(find_ns(t, "pid"), "path"));
    assert_non_null(find_ns(t, "mount"));
    /* joining the pod's UTS namespace: no hostname to set */
    assert_null(jget(t, "hostname", NULL, NULL));
    assert_string_equal(jstr(t, "linux", "cgroupsPath", NULL),
                        "/kubepods/besteffort/pod1/hull-c0ffee");
    yajl_tree_free(t);

    /* POD pid without a shared pid namespace is refused; with one it is joined */
    no.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
    gen_fail(f, EINVAL, "no shared PID namespace");
    f->sb.pidns_path = "/proc/42/ns/pid";
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_ns(t, "pid"), "path", ""), "/proc/42/ns/pid");
    yajl_tree_free(t);

    /* TARGET */
    no.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
    no.target_id = "other";
    gen_fail(f, EINVAL, "\"other\"");
    f->in.target_pidns_path = "/proc/77/ns/pid";
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_ns(t, "pid"), "path", ""), "/proc/77/ns/pid");
    yajl_tree_free(t);

    /* host namespaces */
    no.pid = no.network = no.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
    f->sb.host_network = f->sb.host_ipc = f->sb.host_pid = true;
    f->sb.utsns_path = NULL;
    t = gen_ok(f);
    assert_null(find_ns(t, "pid"));
    assert_null(find_ns(t, "network"));
    assert_null(find_ns(t, "ipc"));
    assert_null(find_ns(t, "uts"));
    assert_non_null(find_ns(t, "mount"));
    assert_string_equal(hull_json_get_string(find_mount(t, "/dev/shm"), "source", ""), "/dev/shm");
    yajl_tree_free(t);

    /* a fresh UTS namespace gets the pod's hostname; no cgroup parent */
    no.pid = no.network = no.ipc = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    f->sb.host_network = f->sb.host_ipc = f->sb.host_pid = false;
    f->sb.cgroup_parent = NULL;
    f->plcfg.cgroup_parent = "";
    t = gen_ok(f);
    assert_null(hull_json_get(find_ns(t, "network"), "path"));
    assert_string_equal(jstr(t, "hostname", NULL, NULL), "podhost");
    assert_string_equal(jstr(t, "linux", "cgroupsPath", NULL), "/hull-c0ffee");
    yajl_tree_free(t);
    f->sb.cgroup_parent = "/kubepods/../../x";
    gen_fail(f, EINVAL, "cgroup parent");
    f->sb.cgroup_parent = NULL;

    /* user namespaces: mode POD needs exactly one mapping per kind, and the pod's */
    Runtime__V1__UserNamespace uns = RUNTIME__V1__USER_NAMESPACE__INIT;
    uns.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
    no.userns_options = &uns;
    gen_fail(f, EINVAL, "exactly one uid mapping");
    Runtime__V1__IDMapping map = RUNTIME__V1__IDMAPPING__INIT;
    map.host_id = 100000;
    map.length = 65536;
    Runtime__V1__IDMapping *maps[] = {&map};
    uns.n_uids = uns.n_gids = 1;
    uns.uids = uns.gids = maps;
    gen_fail(f, EINVAL, "the pod's");
    /* the pod has one: the container joins it and carries its mappings */
    Runtime__V1__LinuxSandboxSecurityContext psc =
        RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    Runtime__V1__NamespaceOption pno = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    pno.userns_options = &uns;
    psc.namespace_options = &pno;
    f->plcfg.security_context = &psc;
    f->pcfg.linux = &f->plcfg;
    gen_fail(f, EINVAL, "no user namespace");
    f->sb.userns_path = "/run/hull/ns/user-1";
    t = gen_ok(f);
    assert_string_equal(hull_json_get_string(find_ns(t, "user"), "path", ""),
                        "/run/hull/ns/user-1");
    for (int i = 0; i < 2; i++) {
        yajl_val m = hull_json_get(hull_json_get(t, "linux"), i ? "gidMappings" : "uidMappings");
        assert_true(m && YAJL_IS_ARRAY(m) && m->u.array.len == 1);
        assert_int_equal(hull_json_get_int(m->u.array.values[0], "hostID", 0), 100000);
        assert_int_equal(hull_json_get_int(m->u.array.values[0], "containerID", 1), 0);
        assert_int_equal(hull_json_get_int(m->u.array.values[0], "size", 0), 65536);
    }
    yajl_tree_free(t);
    map.container_id = 1;
    gen_fail(f, EINVAL, "container id 0");
    map.container_id = 0;
    f->sc.privileged = true;
    f->plcfg.security_context->privileged = true;
    gen_fail(f, EINVAL, "privileged");
    f->sc.privileged = false;
    f->plcfg.security_context = NULL;
    f->sb.userns_path = NULL;
}

static void test_resources(void **state)
{
    struct fx *f = *state;
    f->res.cpu_shares = 512;
    f->res.cpu_quota = 50000;
    f->res.cpu_period = 100000;
    f->res.cpuset_cpus = "0-1";
    f->res.cpuset_mems = "0";
    f->res.memory_limit_in_bytes = 64 << 20;
    f->res.memory_swap_limit_in_bytes = 128 << 20;
    f->res.oom_score_adj = 500;
    Runtime__V1__HugepageLimit hp = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
    hp.page_size = "2MB";
    hp.limit = 4 << 21;
    Runtime__V1__HugepageLimit *hps[] = {&hp};
    f->res.hugepage_limits = hps;
    f->res.n_hugepage_limits = 1;
    Runtime__V1__LinuxContainerResources__UnifiedEntry u =
        RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
    u.key = "memory.high";
    u.value = "1000000";
    Runtime__V1__LinuxContainerResources__UnifiedEntry *us[] = {&u};
    f->res.unified = us;
    f->res.n_unified = 1;

    yajl_val t = gen_ok(f);
    const char *cpu[] = {"linux", "resources", "cpu", "shares", NULL};
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, cpu, yajl_t_number)), 512);
    cpu[3] = "quota";
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, cpu, yajl_t_number)), 50000);
    cpu[3] = "period";
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, cpu, yajl_t_number)), 100000);
    cpu[3] = "cpus";
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(t, cpu, yajl_t_string)), "0-1");
    const char *mem[] = {"linux", "resources", "memory", "limit", NULL};
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, mem, yajl_t_number)), 64 << 20);
    mem[3] = "swap";
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, mem, yajl_t_number)), 128 << 20);
    /* hugepage limits only where the runtime can set them (runc fails otherwise) */
    yajl_val hpl = jget(t, "linux", "resources", "hugepageLimits");
    struct statfs sfs;
    if (statfs("/sys/fs/cgroup/hugetlb", &sfs) == 0 && sfs.f_type == CGROUP_SUPER_MAGIC) {
        assert_string_equal(hull_json_get_string(hpl->u.array.values[0], "pageSize", ""), "2MB");
        assert_int_equal(hull_json_get_int(hpl->u.array.values[0], "limit", 0), 4 << 21);
    } else if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type != CGROUP2_SUPER_MAGIC) {
        assert_null(hpl);
    }
    const char *un[] = {"linux", "resources", "unified", "memory.high", NULL};
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(t, un, yajl_t_string)), "1000000");
    assert_int_equal(jint(t, "process", "oomScoreAdj", NULL), 500);
    /* rlimits: NOFILE 1048576 like containerd (capped at hulld's hard limit without
     * CAP_SYS_RESOURCE) */
    yajl_val rl = jget(t, "process", "rlimits", NULL);
    assert_string_equal(hull_json_get_string(rl->u.array.values[0], "type", ""), "RLIMIT_NOFILE");
    assert_true(hull_json_get_int(rl->u.array.values[0], "hard", 0) > 0);
    yajl_tree_free(t);

    /* oom_score_adj lower than hulld's own is clamped when restricted */
    f->res.oom_score_adj = -999;
    f->in.restrict_oom_score_adj = true;
    t = gen_ok(f);
    _cleanup_free_ char *cur = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_read_file("/proc/self/oom_score_adj", 64, &cur, NULL, &err), 0);
    assert_int_equal(jint(t, "process", "oomScoreAdj", NULL), atoi(cur));
    yajl_tree_free(t);

    /* live updates */
    f->res.oom_score_adj = 0;
    char *json = NULL;
    assert_int_equal(spec_resources_from_cri(&f->res, &json, &err), 0);
    char ebuf[128];
    t = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    free(json);
    assert_non_null(t);
    assert_null(jget(t, "devices", NULL, NULL));
    const char *shares[] = {"cpu", "shares", NULL};
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, shares, yajl_t_number)), 512);
    const char *lim[] = {"memory", "limit", NULL};
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(t, lim, yajl_t_number)), 64 << 20);
    yajl_tree_free(t);
    assert_int_equal(spec_resources_from_cri(NULL, &json, &err), 0);
    assert_string_equal(json, "{}");
    free(json);

    /* invalid values */
    hp.page_size = "2M/../x";
    assert_int_equal(spec_resources_from_cri(&f->res, &json, &err), -EINVAL);
    hull_error_free(&err);
    gen_fail(f, EINVAL, "page size");
    hp.page_size = "2MB";
    u.key = "../cgroup.procs";
    gen_fail(f, EINVAL, "unified");
    u.key = "memory.high";
    u.value = "1\nmemory.max=0";
    gen_fail(f, EINVAL, "newline");
    u.value = "1";
    f->res.cpuset_cpus = "0-1\n";
    gen_fail(f, EINVAL, "cpuset");
    f->res.cpuset_cpus = "";
    f->res.oom_score_adj = 1001;
    gen_fail(f, EINVAL, "oom_score_adj");
}

/* SECURITY.md: pod strings reaching privileged settings — sysctls */
static void test_sysctls(void **state)
{
    struct fx *f = *state;
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry s1 =
        RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry s2 =
        RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *ss[] = {&s1, &s2};
    f->plcfg.sysctls = ss;
    f->plcfg.n_sysctls = 2;
    s1.key = "net.ipv4.ip_unprivileged_port_start";
    s1.value = "0";
    s2.key = "kernel/shm_rmid_forced";
    s2.value = "1";
    yajl_val t = gen_ok(f);
    const char *p1[] = {"linux", "sysctl", "net.ipv4.ip_unprivileged_port_start", NULL};
    const char *p2[] = {"linux", "sysctl", "kernel.shm_rmid_forced", NULL};
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(t, p1, yajl_t_string)), "0");
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(t, p2, yajl_t_string)), "1");
    yajl_tree_free(t);

    /* CVE-2022-0811 style: a second key smuggled in the value */
    s2.key = "kernel.shm_rmid_forced";
    s2.value = "1\nkernel.core_pattern=|/x";
    gen_fail(f, EINVAL, "kernel.shm_rmid_forced");
    s2.value = "1+kernel.core_pattern=|/x";
    gen_fail(f, EINVAL, "kernel.shm_rmid_forced");
    s2.value = "1";
    /* not namespaced */
    const char *bad_keys[] = {"kernel.core_pattern",
                              "kernel.modprobe",
                              "vm.overcommit_memory",
                              "fs.file-max",
                              "kernel.shm_rmid_forced\n",
                              "net..x",
                              "../net.x",
                              "kernel.sem_x",
                              ""};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        s2.key = (char *)bad_keys[i];
        gen_fail(f, EINVAL, "sysctl");
    }
    s2.key = "fs.mqueue.msg_max";
    t = gen_ok(f);
    yajl_tree_free(t);

    /* net.* with the host network, ipc ones with the host IPC namespace */
    Runtime__V1__NamespaceOption no = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    no.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    no.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    f->sc.namespace_options = &no;
    gen_fail(f, EINVAL, "host network");
    no.network = RUNTIME__V1__NAMESPACE_MODE__POD;
    no.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
    gen_fail(f, EINVAL, "host IPC");

    hull_error_t err = NULL;
    assert_int_equal(cri_sysctl_validate("net.core.somaxconn", "1024", false, false, &err), 0);
    assert_int_equal(
        cri_sysctl_validate("net.ipv4.ip_local_port_range", "1024 65000", false, false, &err), 0);
    assert_int_equal(cri_sysctl_validate("kernel.msgmax", "1\r", false, false, &err), -EINVAL);
    hull_error_free(&err);
}

/* ---- seccomp, apparmor, annotations ------------------------------------------------------ */
static bool seccomp_allows(yajl_val sc, const char *name, bool unconditional)
{
    yajl_val calls = hull_json_get(sc, "syscalls");
    for (size_t i = 0; calls && i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        if (strcmp(hull_json_get_string(c, "action", ""), "SCMP_ACT_ALLOW") != 0)
            continue;
        if (unconditional && hull_json_get(c, "args"))
            continue;
        if (arr_has(hull_json_get(c, "names"), name))
            return true;
    }
    return false;
}

static void test_seccomp_default(void **state)
{
    struct fx *f = *state;
    Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
    f->sc.seccomp = &sp;
    yajl_val t = gen_ok(f);
    yajl_val sc = jget(t, "linux", "seccomp", NULL);
    assert_non_null(sc);
    assert_string_equal(hull_json_get_string(sc, "defaultAction", ""), "SCMP_ACT_ERRNO");
    assert_int_equal(hull_json_get_int(sc, "defaultErrnoRet", 0), EPERM);
    assert_true(arr_has(hull_json_get(sc, "architectures"), "SCMP_ARCH_X86_64"));
    assert_true(arr_has(hull_json_get(sc, "architectures"), "SCMP_ARCH_X86"));
    assert_true(arr_has(hull_json_get(sc, "architectures"), "SCMP_ARCH_X32"));
    assert_true(seccomp_allows(sc, "read", true));
    assert_true(seccomp_allows(sc, "execve", true));
    assert_true(seccomp_allows(sc, "arch_prctl", true));
    assert_false(seccomp_allows(sc, "kexec_load", false));
    assert_false(seccomp_allows(sc, "open_by_handle_at", false));
    assert_false(seccomp_allows(sc, "mount", false));
    assert_false(seccomp_allows(sc, "io_uring_setup", false));
    assert_false(seccomp_allows(sc, "clone", true)); /* only with the namespace-flag check */
    assert_true(seccomp_allows(sc, "clone", false));
    assert_true(seccomp_allows(sc, "chroot", true)); /* CAP_SYS_CHROOT is a default cap */
    /* clone3 answers ENOSYS */
    yajl_val calls = hull_json_get(sc, "syscalls");
    bool clone3 = false;
    for (size_t i = 0; i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        if (arr_has(hull_json_get(c, "names"), "clone3")) {
            assert_string_equal(hull_json_get_string(c, "action", ""), "SCMP_ACT_ERRNO");
            assert_int_equal(hull_json_get_int(c, "errnoRet", 0), ENOSYS);
            clone3 = true;
        }
    }
    assert_true(clone3);
    yajl_tree_free(t);

    /* CAP_SYS_ADMIN added: mount and unrestricted clone allowed */
    Runtime__V1__Capability caps = RUNTIME__V1__CAPABILITY__INIT;
    char *add[] = {"SYS_ADMIN"};
    caps.add_capabilities = add;
    caps.n_add_capabilities = 1;
    f->sc.capabilities = &caps;
    t = gen_ok(f);
    sc = jget(t, "linux", "seccomp", NULL);
    assert_true(seccomp_allows(sc, "mount", true));
    assert_true(seccomp_allows(sc, "clone", true));
    yajl_tree_free(t);
    f->sc.capabilities = NULL;

    /* the arm64 table (data only on this host) */
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    spec_seccomp_default_write(&w, 0, "arm64");
    char *json = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    char ebuf[128];
    t = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    free(json);
    assert_true(arr_has(hull_json_get(t, "architectures"), "SCMP_ARCH_AARCH64"));
    assert_false(arr_has(hull_json_get(t, "architectures"), "SCMP_ARCH_X86_64"));
    assert_false(seccomp_allows(t, "arch_prctl", false));
    assert_true(seccomp_allows(t, "set_tls", true));
    yajl_tree_free(t);

    /* Unconfined, the deprecated strings, and the containerd default for "unset" */
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
    t = gen_ok(f);
    assert_null(jget(t, "linux", "seccomp", NULL));
    yajl_tree_free(t);
    f->sc.seccomp = NULL;
    t = gen_ok(f);
    assert_null(jget(t, "linux", "seccomp", NULL));
    yajl_tree_free(t);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    f->sc.seccomp_profile_path = "runtime/default";
    t = gen_ok(f);
    assert_non_null(jget(t, "linux", "seccomp", NULL));
    yajl_tree_free(t);
    f->sc.seccomp_profile_path = "docker/default";
    t = gen_ok(f);
    assert_non_null(jget(t, "linux", "seccomp", NULL));
    yajl_tree_free(t);
    f->sc.seccomp_profile_path = "bogus";
    gen_fail(f, EINVAL, "bogus");
    f->sc.seccomp_profile_path = "";
#pragma GCC diagnostic pop

    /* annotations never become settings */
    Runtime__V1__ContainerConfig__AnnotationsEntry a1 =
        RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
    Runtime__V1__ContainerConfig__AnnotationsEntry a2 =
        RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
    Runtime__V1__ContainerConfig__AnnotationsEntry a3 =
        RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
    a1.key = "seccomp.security.alpha.kubernetes.io/pod";
    a1.value = "unconfined";
    a2.key = "io.kubernetes.cri.sandbox-id";
    a2.value = "forged";
    a3.key = "example.com/note";
    a3.value = "hello";
    Runtime__V1__ContainerConfig__AnnotationsEntry *as[] = {&a1, &a2, &a3};
    f->cfg.annotations = as;
    f->cfg.n_annotations = 3;
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
    f->sc.seccomp = &sp;
    t = gen_ok(f);
    assert_non_null(jget(t, "linux", "seccomp", NULL));
    assert_string_equal(jstr(t, "annotations", "io.kubernetes.cri.sandbox-id", NULL), "sandbox1");
    assert_string_equal(jstr(t, "annotations", "example.com/note", NULL), "hello");
    assert_string_equal(jstr(t, "annotations", "io.kubernetes.cri.container-type", NULL),
                        "container");
    assert_string_equal(jstr(t, "annotations", "io.kubernetes.cri.container-name", NULL), "web");
    assert_string_equal(jstr(t, "annotations", "io.kubernetes.cri.image-name", NULL),
                        "docker.io/library/busybox:latest");
    assert_string_equal(jstr(t, "annotations", "io.kubernetes.cri.sandbox-namespace", NULL),
                        "default");
    /* the forged key appears once, with our value */
    yajl_val an = jget(t, "annotations", NULL, NULL);
    int n = 0;
    for (size_t i = 0; i < an->u.object.len; i++)
        if (strcmp(an->u.object.keys[i], "io.kubernetes.cri.sandbox-id") == 0)
            n++;
    assert_int_equal(n, 1);
    assert_int_equal(caps_of(jget(t, "process", "capabilities", "bounding")), 0xa80425fbULL);
    yajl_tree_free(t);
}

static void test_seccomp_localhost(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *root = fx_path(f, "seccomp");
    hull_error_t err = NULL;
    assert_int_equal(hull_mkdir_p(root, 0755, &err), 0);
    fx_write(f, "seccomp/spec.json",
             "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
             "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],"
             "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
             "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
             "\"value\":18446744073709551615,\"op\":\"SCMP_CMP_EQ\"}]}]}");
    fx_write(f, "seccomp/docker.json",
             "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"archMap\":[{\"architecture\":"
             "\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\"]},{\"architecture\":"
             "\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],\"syscalls\":["
             "{\"name\":\"getpid\",\"action\":\"SCMP_ACT_ALLOW\"},"
             "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
             "[\"CAP_SYS_ADMIN\"]}},"
             "{\"names\":[\"chroot\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
             "[\"CAP_SYS_CHROOT\"]}},"
             "{\"names\":[\"set_tls\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":"
             "[\"arm64\"]}},"
             "{\"names\":[\"uname\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"caps\":"
             "[\"CAP_KILL\"]}}]}");
    f->in.seccomp_profile_root = root;
    Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
    sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
    sp.localhost_ref = "spec.json";
    f->sc.seccomp = &sp;
    yajl_val t = gen_ok(f);
    yajl_val sc = jget(t, "linux", "seccomp", NULL);
    assert_int_equal(hull_json_get_int(sc, "defaultErrnoRet", 0), 38);
    assert_true(seccomp_allows(sc, "write", true));
    assert_join(hull_json_get(sc, "flags"), "SECCOMP_FILTER_FLAG_LOG");
    yajl_val calls = hull_json_get(sc, "syscalls");
    yajl_val args = hull_json_get(calls->u.array.values[1], "args");
    yajl_val v = hull_json_get(args->u.array.values[0], "value");
    assert_string_equal(v->u.number.r, "18446744073709551615");
    yajl_tree_free(t);

    /* Docker format: archMap and includes/excludes resolved; absolute ref */
    _cleanup_free_ char *abs = fx_path(f, "seccomp/docker.json");
    sp.localhost_ref = abs;
    t = gen_ok(f);
    sc = jget(t, "linux", "seccomp", NULL);
    assert_join(hull_json_get(sc, "architectures"), "SCMP_ARCH_X86_64 SCMP_ARCH_X86");
    assert_true(seccomp_allows(sc, "getpid", true));
    assert_false(seccomp_allows(sc, "mount", false));
    assert_true(seccomp_allows(sc, "chroot", true));
    assert_false(seccomp_allows(sc, "set_tls", false));
    assert_false(seccomp_allows(sc, "uname", false));
    yajl_tree_free(t);

    /* the deprecated "localhost/PATH" form */
    f->sc.seccomp = NULL;
    _cleanup_free_ char *dep = xasprintf("localhost/%s", abs);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    f->sc.seccomp_profile_path = dep;
    t = gen_ok(f);
    assert_true(seccomp_allows(jget(t, "linux", "seccomp", NULL), "getpid", true));
    yajl_tree_free(t);
    f->sc.seccomp_profile_path = "";
#pragma GCC diagnostic pop
    f->sc.seccomp = &sp;

    sp.localhost_ref = "missing.json";
    gen_fail(f, ENOENT, "missing.json");
    sp.localhost_ref = "../../etc/passwd";
    gen_fail(f, EINVAL, "..");
    fx_write(f, "seccomp/bad.json", "[1,2]");
    sp.localhost_ref = "bad.json";
    gen_fail(f, EINVAL, "not a JSON object");
    sp.localhost_ref = "";
    gen_fail(f, EINVAL, "localhost_ref");
}

static void test_apparmor(void **state)
{
    struct fx *f = *state;
    Runtime__V1__SecurityProfile ap = RUNTIME__V1__SECURITY_PROFILE__INIT;
    ap.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
    f->sc.apparmor = &ap;
    yajl_val t = gen_ok(f); /* accepted without AppArmor */
    assert_null(jget(t, "process", "apparmorProfile", NULL));
    yajl_tree_free(t);
    ap.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
    ap.localhost_ref = "localhost/my-profile";
    gen_fail(f, ENOTSUP, "AppArmor");
    f->in.host_has_apparmor = true;
    t = gen_ok(f);
    assert_string_equal(jstr(t, "process", "apparmorProfile", NULL), "my-profile");
    yajl_tree_free(t);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    Runtime__V1__CDIDevice cdi = RUNTIME__V1__CDIDEVICE__INIT;
    cdi.name = "vendor.com/gpu=0";
    Runtime__V1__CDIDevice *cdis[] = {&cdi};
    f->cfg.cdi_devices = cdis;
    f->cfg.n_cdi_devices = 1;
    gen_fail(f, ENOTSUP, "vendor.com/gpu=0");
    f->cfg.n_cdi_devices = 0;
    f->in.container_id = "../x";
    gen_fail(f, EINVAL, NULL);
    f->in.container_id = "c0ffee";
    f->in.rootfs = "/nonexistent-rootfs";
    gen_fail(f, ENOENT, "rootfs");
}

static void test_log_path(void **state)
{
    struct fx *f = *state;
    hull_error_t err = NULL;
    char *p = NULL;
    f->pcfg.log_directory = "/var/log/pods/ns_pod_uid";
    f->cfg.log_path = "web/0.log";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), 0);
    assert_string_equal(p, "/var/log/pods/ns_pod_uid/web/0.log");
    free(p);
    f->cfg.log_path = "";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), 0);
    assert_null(p);
    f->cfg.log_path = "../../../etc/cron.d/x";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), -EINVAL);
    hull_error_free(&err);
    f->cfg.log_path = "web/0.log";
    f->pcfg.log_directory = "relative/dir";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), -EINVAL);
    hull_error_free(&err);
    f->pcfg.log_directory = "";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), -EINVAL);
    hull_error_free(&err);
    f->cfg.log_path = "/abs/./x.log";
    assert_int_equal(spec_log_path(&f->pcfg, &f->cfg, &p, &err), 0);
    assert_string_equal(p, "/abs/x.log");
    free(p);
}

static void test_exec_process(void **state)
{
    struct fx *f = *state;
    hull_error_t err = NULL;
    char *spec = NULL, *proc = NULL;
    f->img.user = "app";
    assert_int_equal(spec_from_cri(&f->in, &spec, &err), 0);
    char *cmd[] = {"ls", "-l"};
    assert_int_equal(spec_exec_process(spec, cmd, 2, true, 40, 120, &proc, &err), 0);
    char ebuf[128];
    yajl_val t = yajl_tree_parse(proc, ebuf, sizeof(ebuf));
    assert_non_null(t);
    assert_join(hull_json_get(t, "args"), "ls -l");
    assert_true(hull_json_get_bool(t, "terminal", false));
    assert_int_equal(jint(t, "user", "uid", NULL), 1000);
    assert_join(jget(t, "user", "additionalGids", NULL), "1000 10 500");
    assert_non_null(jget(t, "capabilities", "bounding", NULL));
    assert_string_equal(jstr(t, "cwd", NULL, NULL), "/imgwd");
    assert_int_equal(jint(t, "consoleSize", "height", NULL), 40);
    assert_int_equal(jint(t, "consoleSize", "width", NULL), 120);
    yajl_tree_free(t);
    free(proc);
    /* no size without a terminal */
    assert_int_equal(spec_exec_process(spec, cmd, 2, false, 40, 120, &proc, &err), 0);
    t = yajl_tree_parse(proc, ebuf, sizeof(ebuf));
    assert_null(hull_json_get(t, "consoleSize"));
    yajl_tree_free(t);
    free(proc);
    assert_int_equal(spec_exec_process(spec, cmd, 0, false, 0, 0, &proc, &err), -EINVAL);
    hull_error_free(&err);
    assert_int_equal(spec_exec_process("{}", cmd, 1, false, 0, 0, &proc, &err), -EINVAL);
    hull_error_free(&err);
    free(spec);
}

/* ---- running a generated spec with runc -------------------------------------------------- */
static int run_cmd(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644)
                           : open("/dev/null", O_WRONLY);
        dup2(in, 0);
        dup2(out, 1);
        if (out_path)
            dup2(out, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The runtime under test: runc, or hull-oci when HULL_OCI names its binary (create + start,
 * waiting for the init as a child subreaper, as hull-conmon does). */
static const char *runtime_bin(void)
{
    const char *h = getenv("HULL_OCI");
    return h && *h ? h : "/usr/sbin/runc";
}

static int runtime_run_bundle(const char *state, const char *bundle, const char *id,
                              const char *out)
{
    const char *bin = runtime_bin();
    if (strcmp(bin, "/usr/sbin/runc") == 0) {
        char *run[] = {(char *)bin, "--root",       (char *)state, "run",
                       "--bundle",  (char *)bundle, (char *)id,    NULL};
        return run_cmd(run, out);
    }
    _cleanup_free_ char *pidf = hull_path_join(bundle, "pid");
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    char *create[] = {(char *)bin,    "--root",     (char *)state, "create",   "--bundle",
                      (char *)bundle, "--pid-file", pidf,          (char *)id, NULL};
    int rc = run_cmd(create, out);
    if (rc != 0)
        return rc;
    char *text = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_read_file(pidf, 64, &text, NULL, &err), 0);
    pid_t init = atoi(text);
    free(text);
    char *start[] = {(char *)bin, "--root", (char *)state, "start", (char *)id, NULL};
    rc = run_cmd(start, NULL);
    if (rc != 0)
        return rc;
    int st;
    while (waitpid(init, &st, 0) < 0 && errno == EINTR)
        ;
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *runc_run(struct fx *f, const char *id)
{
    hull_error_t err = NULL;
    char *json = NULL;
    if (spec_from_cri(&f->in, &json, &err) < 0)
        fail_msg("%s", hull_error_msg(&err));
    _cleanup_free_ char *bundle = fx_path(f, "bundle");
    _cleanup_free_ char *cfgp = fx_path(f, "bundle/config.json");
    _cleanup_free_ char *state = fx_path(f, "runc");
    _cleanup_free_ char *out = fx_path(f, "out.txt");
    assert_int_equal(hull_mkdir_p(bundle, 0755, &err), 0);
    assert_int_equal(hull_write_file_atomic(cfgp, json, strlen(json), 0644, &err), 0);
    free(json);
    int rc = runtime_run_bundle(state, bundle, id, out);
    char *del[] = {(char *)runtime_bin(), "--root", state, "delete", "--force", (char *)id, NULL};
    run_cmd(del, NULL);
    char *text = NULL;
    assert_int_equal(hull_read_file(out, 1 << 20, &text, NULL, &err), 0);
    if (rc != 0)
        fail_msg("%s exited %d: %s", runtime_bin(), rc, text);
    return text;
}

static void test_runc_run(void **state)
{
    struct fx *f = *state;
    if (geteuid() != 0 || access(runtime_bin(), X_OK) != 0 || access("/bin/busybox", X_OK) != 0) {
        print_message("skipping: needs root, /usr/sbin/runc and busybox-static\n");
        skip();
    }
    hull_error_t err = NULL;
    _cleanup_free_ char *bin = fx_path(f, "rootfs/bin");
    assert_int_equal(hull_mkdir_p(bin, 0755, &err), 0);
    _cleanup_free_ char *bb = fx_path(f, "rootfs/bin/busybox");
    char *cp[] = {"/bin/cp", "/bin/busybox", bb, NULL};
    assert_int_equal(run_cmd(cp, NULL), 0);
    const char *links[] = {"sh", "id", "cat", "grep"};
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *l = hull_path_join(bin, links[i]);
        assert_int_equal(symlink("busybox", l), 0);
    }
    _cleanup_free_ char *hosts = fx_path(f, "hosts");
    hull_test_write_file(hosts, "127.0.0.1 localhost\n10.9.9.9 marker-host\n", 0644);
    f->sb.hosts_path = hosts;
    /* a standalone pod: fresh namespaces, its own cgroup parent */
    f->sb.netns_path = f->sb.ipcns_path = f->sb.utsns_path = NULL;
    f->sb.cgroup_parent = "/hull-ocispec-test";
    f->img.env = NULL; /* the default PATH */
    /* a read-only CRI mount and an image volume with content */
    _cleanup_free_ char *rohost = fx_path(f, "rohost");
    _cleanup_free_ char *datad = fx_path(f, "rootfs/data");
    assert_int_equal(hull_mkdir_p(rohost, 0755, &err), 0);
    assert_int_equal(hull_mkdir_p(datad, 0755, &err), 0);
    fx_write(f, "rohost/rofile", "ro-content\n");
    fx_write(f, "rootfs/data/file.txt", "vol-content\n");
    Runtime__V1__Mount m = mk_mount("/ro", rohost, true, 0);
    Runtime__V1__Mount *ms[] = {&m};
    f->cfg.mounts = ms;
    f->cfg.n_mounts = 1;
    static char *vols[] = {"/data", NULL};
    f->img.volumes = vols;
    Runtime__V1__NamespaceOption no = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    no.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    f->sc.namespace_options = &no;
    Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
    f->sc.seccomp = &sp; /* RuntimeDefault */
    f->res.memory_limit_in_bytes = 64 << 20;
    f->res.cpu_shares = 256;
    /* kubelet sends a (0) limit for every page size the node has */
    Runtime__V1__HugepageLimit hp = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
    hp.page_size = "2MB";
    Runtime__V1__HugepageLimit *hps[] = {&hp};
    f->res.hugepage_limits = hps;
    f->res.n_hugepage_limits = 1;
    static char *cmd[] = {
        "sh", "-c",
        "id; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; "
        "cat /etc/hosts; hostname; "
        "echo timer_list=$(cat /proc/timer_list 2>/dev/null | head -c 1 | wc -c); "
        "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); cat /ro/rofile; "
        "touch /ro/x 2>/dev/null && echo ro=writable || echo ro=readonly; "
        "cat /data/file.txt; touch /data/y 2>/dev/null && echo data=writable; "
        "unshare -U true 2>/dev/null && echo unshare=allowed || echo unshare=denied; true"};
    f->cfg.command = cmd;
    f->cfg.n_command = 3;

    char id[64];
    snprintf(id, sizeof(id), "hull-ocispec-%d", (int)getpid());
    _cleanup_free_ char *out = runc_run(f, id);
    print_message("%s", out);
    assert_non_null(strstr(out, "uid=0(root) gid=0(root) groups=0(root),10(wheel)"));
    assert_non_null(strstr(out, "CapEff:\t00000000a80425fb"));
    assert_non_null(strstr(out, "Seccomp:\t2"));
    assert_non_null(strstr(out, "marker-host"));
    assert_non_null(strstr(out, "podhost"));
    assert_non_null(strstr(out, "timer_list=0")); /* masked */
    assert_non_null(strstr(out, "mem=67108864"));
    assert_non_null(strstr(out, "ro-content"));
    assert_non_null(strstr(out, "ro=readonly"));
    assert_non_null(strstr(out, "vol-content"));
    assert_non_null(strstr(out, "data=writable"));
    /* RuntimeDefault seccomp: no new namespaces without CAP_SYS_ADMIN */
    assert_non_null(strstr(out, "unshare=denied"));

    /* as a user of the image, with a CRI supplemental group */
    f->sc.run_as_username = "app";
    int64_t supp[] = {4242};
    f->sc.supplemental_groups = supp;
    f->sc.n_supplemental_groups = 1;
    f->sc.no_new_privs = true;
    _cleanup_free_ char *out2 = runc_run(f, id);
    print_message("%s", out2);
    assert_non_null(
        strstr(out2, "uid=1000(app) gid=1000(app) groups=10(wheel),500(extra),1000(app),4242"));
    assert_non_null(strstr(out2, "CapEff:\t0000000000000000"));
    assert_non_null(strstr(out2, "NoNewPrivs:\t1"));

    /* the host's network, pid, ipc and uts namespaces */
    no.pid = no.network = no.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
    f->sb.host_network = f->sb.host_pid = f->sb.host_ipc = true;
    f->sc.run_as_username = "";
    f->sc.n_supplemental_groups = 0;
    static char *hcmd[] = {"sh", "-c",
                           "echo host=$(hostname); test -e /proc/$PPID && echo hostpid"};
    f->cfg.command = hcmd;
    _cleanup_free_ char *outh = runc_run(f, id);
    print_message("%s", outh);
    char hn[256] = "", want[300];
    gethostname(hn, sizeof(hn) - 1);
    snprintf(want, sizeof(want), "host=%s\n", hn);
    assert_non_null(strstr(outh, want));
    assert_non_null(strstr(outh, "hostpid")); /* the parent is visible: the host's pid ns */
    no.pid = no.network = no.ipc = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    f->sb.host_network = f->sb.host_pid = f->sb.host_ipc = false;

    /* privileged: all of this process's capabilities, host devices, no seccomp, no masking */
    Runtime__V1__LinuxSandboxSecurityContext psc =
        RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    psc.privileged = true;
    f->plcfg.security_context = &psc;
    f->sc.privileged = true;
    f->sc.run_as_username = "";
    f->sc.n_supplemental_groups = 0;
    f->sc.no_new_privs = false;
    static char *pcmd[] = {
        "sh", "-c",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; "
        "test -c /dev/null && echo devnull=ok; "
        "echo timer_list=$(cat /proc/timer_list 2>/dev/null | head -c 1 | wc -c)"};
    f->cfg.command = pcmd;
    _cleanup_free_ char *out3 = runc_run(f, id);
    print_message("%s", out3);
    char capeff[64];
    snprintf(capeff, sizeof(capeff), "CapEff:\t%016llx", (unsigned long long)my_caps());
    assert_non_null(strstr(out3, capeff));
    assert_non_null(strstr(out3, "Seccomp:\t0"));
    assert_non_null(strstr(out3, "devnull=ok"));
    assert_non_null(strstr(out3, "timer_list=1"));

    /* the cgroup parent runc created */
    const char *ctrls[] = {"cpu",     "cpuacct", "cpuset", "memory",  "devices",
                           "freezer", "blkio",   "pids",   "systemd", "unified"};
    for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
        _cleanup_free_ char *p = xasprintf("/sys/fs/cgroup/%s/hull-ocispec-test", ctrls[i]);
        rmdir(p);
    }
    _cleanup_free_ char *state_dir = fx_path(f, "runc");
    hull_rm_rf(state_dir, &err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_args_precedence),
        T(test_env_cwd_terminal),
        T(test_user_image),
        T(test_user_cri),
        T(test_user_no_passwd),
        T(test_image_mounts),
        T(test_hostile_passwd_sizes),
        T(test_hostile_passwd_symlinks),
        T(test_caps),
        T(test_masked_paths),
        T(test_devices),
        T(test_mounts_basic),
        T(test_volume_copy_up),
        T(test_mounts_propagation),
        T(test_namespaces),
        T(test_resources),
        T(test_sysctls),
        T(test_seccomp_default),
        T(test_seccomp_localhost),
        T(test_apparmor),
        T(test_bad_input),
        T(test_log_path),
        T(test_exec_process),
        T(test_runc_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
