/* Unit tests for server/pod/sysctl.c: the one CRI sysctl check (RunPodSandbox and the OCI spec of
 * the pod's containers), and that RunPodSandbox's entry point uses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "common/common.h"
#include "server/pod/pod.h"

#include <errno.h>
#include <string.h>

static void test_names(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    const char *ok[] = {"net.ipv4.ip_unprivileged_port_start",
                        "kernel.shm_rmid_forced",
                        "kernel.msgmax",
                        "kernel.sem",
                        "fs.mqueue.msg_max",
                        "net/ipv4/conf/eth0.100/forwarding",
                        "net.ipv4.conf.eth0/100.forwarding"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_hull_ok(cri_sysctl_validate(ok[i], "1", false, false, &err), err);
    const char *bad[] = {"kernel.core_pattern",
                         "kernel.hostname",
                         "vm.overcommit_memory",
                         "fs.file-max",
                         "kernel.semx",
                         "net/../kernel/core_pattern",
                         "../net",
                         "net..x",
                         "net.x.",
                         ".net.x",
                         "net/./ipv4/ip_forward",
                         "net/ipv4./ip_forward",
                         "net/ipv4/",
                         "/proc/sys/net/x",
                         "net.ipv4 x",
                         "kernel.shm_rmid_forced\n",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_hull_fails(cri_sysctl_validate(bad[i], "1", false, false, &err), EINVAL, err);
    assert_hull_fails(cri_sysctl_validate(NULL, "1", false, false, &err), EINVAL, err);
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "net.", 4);
    longname[sizeof(longname) - 1] = '\0';
    assert_hull_fails(cri_sysctl_validate(longname, "1", false, false, &err), EINVAL, err);
}

static void test_values(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    assert_hull_ok(cri_sysctl_validate("net.core.somaxconn", "1024", false, false, &err), err);
    assert_hull_ok(
        cri_sysctl_validate("net.ipv4.ip_local_port_range", "1024\t65000", false, false, &err),
        err);
    /* CRI-O CVE-2022-0811: no second key, in any of the shapes */
    const char *bad[] = {"1+kernel.core_pattern=|/tmp/x",
                         "1+2",
                         "a=b",
                         "1\nkernel.core_pattern=x",
                         "1\r",
                         "1\x7f",
                         "\x1b[0m"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_hull_fails(cri_sysctl_validate("kernel.shm_rmid_forced", bad[i], false, false, &err),
                          EINVAL, err);
    assert_hull_fails(cri_sysctl_validate("kernel.shmmax", NULL, false, false, &err), EINVAL, err);
    _cleanup_free_ char *big = xmalloc0(CRI_SYSCTL_VALUE_MAX + 2);
    memset(big, '1', CRI_SYSCTL_VALUE_MAX + 1);
    assert_hull_fails(cri_sysctl_validate("kernel.shmmax", big, false, false, &err), EINVAL, err);
    big[CRI_SYSCTL_VALUE_MAX] = '\0';
    assert_hull_ok(cri_sysctl_validate("kernel.shmmax", big, false, false, &err), err);
}

static void test_host_namespaces(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    assert_int_equal(cri_sysctl_validate("net.ipv4.ip_forward", "1", true, false, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "host network"));
    hull_error_free(&err);
    assert_hull_ok(cri_sysctl_validate("kernel.shmmax", "1", true, false, &err), err);
    assert_int_equal(cri_sysctl_validate("kernel.shmmax", "1", false, true, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "host IPC"));
    hull_error_free(&err);
    assert_hull_ok(cri_sysctl_validate("net.ipv4.ip_forward", "1", false, true, &err), err);
}

static void test_normalize(void **state)
{
    (void)state;
    _cleanup_free_ char *a = cri_sysctl_normalize("net.ipv4.ip_forward");
    assert_string_equal(a, "net.ipv4.ip_forward");
    _cleanup_free_ char *b = cri_sysctl_normalize("net/ipv4/conf/eth0.100/forwarding");
    assert_string_equal(b, "net.ipv4.conf.eth0/100.forwarding");
    _cleanup_free_ char *c = cri_sysctl_normalize("net.ipv4.conf.eth0/100.forwarding");
    assert_string_equal(c, "net.ipv4.conf.eth0/100.forwarding");
}

/* RunPodSandbox's check is this one: a DEL in a value (refused by the OCI spec side before) and
 * a '+' are both refused there. */
static void test_sandbox_uses_it(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    assert_hull_fails(cri_sysctl_validate("net.ipv4.ip_forward", "1\x7f", false, false, &err),
                      EINVAL, err);
    assert_hull_fails(cri_sysctl_validate("net.ipv4.ip_forward", "1+1", false, false, &err), EINVAL,
                      err);
    assert_hull_fails(cri_sysctl_validate("net.ipv4.", "1", false, false, &err), EINVAL, err);
    assert_hull_ok(cri_sysctl_validate("net.ipv4.ip_forward", "1", false, false, &err), err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),           cmocka_unit_test(test_values),
        cmocka_unit_test(test_host_namespaces), cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_sandbox_uses_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
