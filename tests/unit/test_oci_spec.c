/* Unit tests of oci/: config.json parsing and validation, mount options, seccomp compilation,
 * sysctl validation, container ids, and in-root path resolution (symlinks never leave the root:
 * SECURITY.md path-join class). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "oci/oci.h"

static const char base_config[] =
    "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"process\":{\"args\":[\"/bin/sh\"],\"cwd\":\"/\",\"env\":[\"A=1\"],"
    "\"user\":{\"uid\":1000,\"gid\":1000,\"additionalGids\":[2000,1000],\"umask\":18},"
    "\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_KILL\"],"
    "\"ambient\":[\"CAP_NET_BIND_SERVICE\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":100,\"hard\":18446744073709551615}],"
    "\"noNewPrivileges\":true,\"oomScoreAdj\":100},"
    "\"hostname\":\"h\",\"mounts\":[{\"destination\":\"/data\",\"type\":\"bind\","
    "\"source\":\"data\",\"options\":[\"rbind\",\"ro\",\"nosuid\",\"rslave\"]},"
    "{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":"
    "[\"nodev\",\"mode=1777\",\"size=1m\",\"rw\"]}],"
    "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/run/netns/"
    "x\"},"
    "{\"type\":\"mount\"}],\"cgroupsPath\":\"/hull/x\",\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},"
    "\"rootfsPropagation\":\"rshared\",\"maskedPaths\":[\"/proc/kcore\"],"
    "\"devices\":[{\"path\":\"/dev/fuse\",\"type\":\"c\",\"major\":10,\"minor\":229,"
    "\"fileMode\":438}]}}";

static void test_parse_config(void **state)
{
    (void)state;
    struct oci_spec *s = NULL;
    hull_error_t err = NULL;
    int r = oci_spec_parse(base_config, "/b", &s, &err);
    if (r < 0)
        fprintf(stderr, "%s\n", hull_error_msg(&err));
    assert_int_equal(r, 0);
    assert_string_equal(s->rootfs, "/b/rootfs");
    assert_true(s->root_readonly);
    assert_int_equal(s->process.user.uid, 1000);
    /* primary gid first, duplicates dropped */
    assert_int_equal(s->process.user.n_gids, 2);
    assert_int_equal(s->process.user.gids[0], 1000);
    assert_int_equal(s->process.user.gids[1], 2000);
    assert_int_equal(s->process.user.umask, 18);
    assert_true(s->process.caps.set);
    assert_int_equal(s->process.caps.bounding, (1ULL << 5) | (1ULL << 0));
    assert_int_equal(s->process.caps.ambient, 1ULL << 10);
    assert_int_equal(s->process.caps.permitted, 0);
    assert_int_equal(s->process.n_rlimits, 1);
    assert_int_equal(s->process.rlimits[0].resource, RLIMIT_NOFILE);
    assert_true(s->process.rlimits[0].hard == UINT64_MAX);
    assert_true(s->process.no_new_privileges);
    assert_int_equal(s->process.oom_score_adj, 100);
    assert_int_equal(s->n_mounts, 2);
    assert_string_equal(s->mounts[0].source, "/b/data");
    assert_true(s->mounts[0].bind && s->mounts[0].recursive);
    assert_int_equal(s->mounts[0].flags, MS_RDONLY | MS_NOSUID);
    assert_int_equal(s->mounts[0].propagation, MS_SLAVE | MS_REC);
    assert_int_equal(s->mounts[1].flags, MS_NODEV);
    assert_string_equal(s->mounts[1].data, "mode=1777,size=1m");
    assert_int_equal(s->n_namespaces, 3);
    const struct oci_namespace *net = oci_spec_namespace(s, CLONE_NEWNET);
    assert_non_null(net);
    assert_string_equal(net->path, "/run/netns/x");
    assert_null(oci_spec_namespace(s, CLONE_NEWUSER));
    assert_string_equal(s->cgroups_path, "/hull/x");
    assert_int_equal(s->rootfs_propagation, MS_SHARED | MS_REC);
    assert_int_equal(s->n_sysctls, 1);
    assert_int_equal(s->n_devices, 1);
    assert_int_equal(s->devices[0].mode, 0666);
    oci_spec_free(s);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{not json",
        "[]",
        "{\"root\":{\"path\":\"r\"}}",
        "{\"ociVersion\":\"2.0.0\",\"root\":{\"path\":\"r\"}}",
        "{\"ociVersion\":\"1.1.0\"}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[]}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"x\"],"
        "\"cwd\":\"relative\"}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"x\"],"
        "\"user\":{\"uid\":4294967296}}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"x\"],"
        "\"user\":{\"uid\":0,\"gid\":-1}}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"x\"],"
        "\"user\":{\"additionalGids\":[4294967296]}}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"x\"],"
        "\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"soft\":1,\"hard\":1}]}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"namespaces\":"
        "[{\"type\":\"pid\"},{\"type\":\"pid\"}]}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"namespaces\":"
        "[{\"type\":\"bogus\"}]}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"namespaces\":"
        "[{\"type\":\"user\"}]}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"mounts\":[{\"destination\":"
        "\"relative\",\"type\":\"tmpfs\"}]}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"mounts\":[{\"destination\":"
        "\"/x\",\"type\":\"bind\"}]}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"timeOffsets\":"
        "{\"boottime\":{\"secs\":1}}}}",
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"uidMappings\":"
        "[{\"containerID\":0,\"hostID\":-5,\"size\":1}]}}",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        struct oci_spec *s = NULL;
        hull_error_t err = NULL;
        int r = oci_spec_parse(bad[i], "/b", &s, &err);
        if (r == 0)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_true(r < 0);
        assert_null(s);
        assert_non_null(err);
        hull_error_free(&err);
    }
}

static void test_ids_and_sysctls(void **state)
{
    (void)state;
    assert_true(oci_id_valid("abc-DEF_1.2"));
    assert_false(oci_id_valid(""));
    assert_false(oci_id_valid(".."));
    assert_false(oci_id_valid(".hidden"));
    assert_false(oci_id_valid("a/b"));
    assert_false(oci_id_valid("a b"));
    struct oci_spec *s = NULL;
    hull_error_t err = NULL;
    assert_int_equal(oci_spec_parse(base_config, "/b", &s, &err), 0);
    assert_int_equal(oci_sysctl_validate(s, "net.ipv4.ip_forward", "1", &err), 0);
    /* no private ipc/uts namespace in base_config */
    assert_true(oci_sysctl_validate(s, "kernel.shmmax", "1", &err) < 0);
    hull_error_free(&err);
    assert_true(oci_sysctl_validate(s, "kernel.core_pattern", "|/x", &err) < 0);
    hull_error_free(&err);
    assert_true(oci_sysctl_validate(s, "net/../../kernel/x", "1", &err) < 0);
    hull_error_free(&err);
    assert_true(oci_sysctl_validate(s, "net.ipv4.ip_forward", "1\nkernel.x=1", &err) < 0);
    hull_error_free(&err);
    oci_spec_free(s);
}

/* linux.seccomp text -> the model's seccomp -> a BPF program */
static int compile_text(const char *text, void **bpf, size_t *len, unsigned *flags,
                        hull_error_t *err)
{
    _cleanup_yajl_ yajl_val v = NULL;
    struct hull_ocispec_seccomp *sc = NULL;
    int r = hull_json_parse(text, "seccomp", &v, err);
    if (r == 0)
        r = hull_ocispec_seccomp_from_tree(v, &sc, err);
    if (r == 0)
        r = oci_seccomp_compile(sc, bpf, len, flags, err);
    hull_ocispec_seccomp_free(sc);
    return r;
}

static void test_seccomp_compile(void **state)
{
    (void)state;
    void *bpf = NULL;
    size_t len = 0;
    unsigned flags = 0;
    hull_error_t err = NULL;
    int r = compile_text("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
                         "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\"],"
                         "\"flags\":[\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],"
                         "\"syscalls\":[{\"names\":[\"read\",\"write\",\"no_such_syscall\"],"
                         "\"action\":\"SCMP_ACT_ALLOW\"},{\"names\":[\"kill\"],"
                         "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":1,\"value\":0,"
                         "\"op\":\"SCMP_CMP_EQ\"},{\"index\":1,\"value\":9,\"op\":"
                         "\"SCMP_CMP_EQ\"}]},{\"names\":[\"personality\"],\"action\":"
                         "\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":4294967295,"
                         "\"valueTwo\":8,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]}",
                         &bpf, &len, &flags, &err);
    if (r < 0)
        fprintf(stderr, "%s\n", hull_error_msg(&err));
    assert_int_equal(r, 0);
    assert_non_null(bpf);
    assert_true(len > 0 && len % 8 == 0);
    assert_true(flags != 0);
    free(bpf);
    static const char *const bad[] = {
        "{\"defaultAction\":\"SCMP_ACT_BOGUS\"}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_BOGUS\"]}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":7,\"value\":0,\"op\":"
        "\"SCMP_CMP_EQ\"}]}]}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":0,\"op\":"
        "\"SCMP_CMP_BOGUS\"}]}]}",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        assert_true(compile_text(bad[i], &bpf, &len, &flags, &err) < 0);
        assert_null(bpf);
        hull_error_free(&err);
    }
}

/* SECURITY.md: path joins that follow symlinks.  Absolute, relative and `..` symlinks in the
 * rootfs, dangling or not, resolve inside it; creation follows them inside too. */
static void test_mkdir_in_root_confined(void **state)
{
    (void)state;
    _cleanup_free_ char *top = hull_test_tmpdir("oci-root");
    _cleanup_free_ char *root = hull_path_join(top, "rootfs");
    _cleanup_free_ char *outside = hull_path_join(top, "outside");
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_equal(mkdir(outside, 0755), 0);
    _cleanup_free_ char *l1 = hull_path_join(root, "abs");
    _cleanup_free_ char *l2 = hull_path_join(root, "rel");
    _cleanup_free_ char *l3 = hull_path_join(root, "dev");
    assert_int_equal(symlink(outside, l1), 0);
    assert_int_equal(symlink("../../../../../outside", l2), 0);
    assert_int_equal(symlink("/proc/self/root/..", l3), 0);
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(rootfd >= 0);
    hull_error_t err = NULL;
    static const char *const paths[] = {"/abs/x", "/rel/y/z", "/dev/shm", "../../outside/w", NULL};
    for (size_t i = 0; paths[i]; i++) {
        int fd = oci_mkdir_in_root(rootfd, paths[i], false, &err);
        if (fd < 0) {
            /* refusing is allowed; escaping is not */
            hull_error_free(&err);
            continue;
        }
        char p[64], real[4096];
        ssize_t n = readlink(oci_fd_path(fd, p), real, sizeof(real) - 1);
        assert_true(n > 0);
        real[n] = '\0';
        assert_true(strncmp(real, root, strlen(root)) == 0);
        close(fd);
    }
    /* nothing was created outside */
    _cleanup_closedir_ DIR *d = opendir(outside);
    assert_non_null(d);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            entries++;
    assert_int_equal(entries, 0);
    /* a file as the last component, and a directory expected where a file is */
    int fd = oci_mkdir_in_root(rootfd, "/etc/hosts", true, &err);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    close(fd);
    assert_true(oci_mkdir_in_root(rootfd, "/etc/hosts/x", false, &err) < 0);
    hull_error_free(&err);
    /* magic links are refused */
    assert_true(hull_open_in_root(rootfd, "dev/fd/0", O_PATH, 0) < 0);
    close(rootfd);
    hull_rm_rf(top, &err);
    hull_error_free(&err);
}

/* Runs in a child: it closes fds the test runner may own. */
static int close_fds_except_child(void)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0)
        return 1;
    for (int fd = 100; fd <= 110; fd++)
        if (dup2(null, fd) < 0)
            return 2;
    if (dup2(null, 200) < 0)
        return 2;
    const int keep[] = {107, 103, 99, 500};
    oci_close_fds_except(101, keep, 4);
    for (int fd = 100; fd <= 110; fd++) {
        bool open_now = fcntl(fd, F_GETFD) >= 0;
        bool want = fd == 100 || fd == 103 || fd == 107;
        if (open_now != want)
            return 10 + fd - 100;
    }
    if (fcntl(200, F_GETFD) >= 0 || fcntl(null, F_GETFD) < 0)
        return 3;
    return 0;
}

static void test_close_fds_except(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(close_fds_except_child());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_features_json(void **state)
{
    (void)state;
    _cleanup_free_ char *j = oci_features_json();
    yajl_val v = NULL;
    hull_error_t err = NULL;
    assert_int_equal(hull_json_parse(j, "features", &v, &err), 0);
    assert_string_equal(hull_json_get_string(v, "ociVersionMax", ""), OCI_VERSION);
    yajl_tree_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_config),           cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_ids_and_sysctls),        cmocka_unit_test(test_seccomp_compile),
        cmocka_unit_test(test_mkdir_in_root_confined), cmocka_unit_test(test_features_json),
        cmocka_unit_test(test_close_fds_except),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
