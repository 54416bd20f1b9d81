/* Unit tests for server/stats/metrics.c and server/daemon/notify.c: the metrics address parser and
 * sd_notify datagrams to a path socket and an abstract one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "server/daemon/daemon.h"
#include "server/stats/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void parse_ok(const char *addr, const char *want_host, int want_port)
{
    char *host = NULL;
    int port = -1;
    hull_error_t err = NULL;
    int r = metrics_parse_address(addr, &host, &port, &err);
    if (r < 0)
        fail_msg("%s: %s", addr, hull_error_msg(&err));
    assert_string_equal(host, want_host);
    assert_int_equal(port, want_port);
    free(host);
}

static void parse_bad(const char *addr)
{
    char *host = NULL;
    int port = -1;
    hull_error_t err = NULL;
    assert_int_equal(metrics_parse_address(addr, &host, &port, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "metrics_address"));
    assert_null(host);
    hull_error_free(&err);
}

static void test_parse_address(void **state)
{
    parse_ok("127.0.0.1:9090", "127.0.0.1", 9090);
    parse_ok(":9090", "127.0.0.1", 9090);
    parse_ok("9090", "127.0.0.1", 9090);
    parse_ok("0.0.0.0:1", "0.0.0.0", 1);
    parse_ok("[::1]:9090", "::1", 9090);
    parse_ok("127.0.0.1:0", "127.0.0.1", 0);
    parse_bad("");
    parse_bad("127.0.0.1");
    parse_bad("127.0.0.1:");
    parse_bad("127.0.0.1:65536");
    parse_bad("127.0.0.1:-1");
    parse_bad("127.0.0.1:90x");
    parse_bad("::1:9090");
    parse_bad("[]:9090");
    parse_bad("[::1:9090");
}

static void recv_expect(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_notify_path_and_abstract(void **state)
{
    /* a path socket */
    _cleanup_free_ char *dir = hull_test_tmpdir("notify");
    char path[64];
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(notify_send(path, "READY=1\nMAINPID=7"), 0);
    recv_expect(fd, "READY=1\nMAINPID=7");
    close(fd);
    unlink(path);
    rmdir(dir);

    /* an abstract one: "@name" on the wire is "\0name", with no trailing NUL */
    char name[64];
    snprintf(name, sizeof(name), "hull-unit-notify-%d", (int)getpid());
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    memcpy(ab.sun_path + 1, name, strlen(name));
    assert_int_equal(bind(fd, (struct sockaddr *)&ab,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))),
                     0);
    char at[80];
    snprintf(at, sizeof(at), "@%s", name);
    assert_int_equal(notify_send(at, "STOPPING=1"), 0);
    recv_expect(fd, "STOPPING=1");
    close(fd);

    /* nothing configured: a no-op; unsupported kinds refused */
    assert_int_equal(notify_send(NULL, "READY=1"), 0);
    assert_int_equal(notify_send("", "READY=1"), 0);
    assert_int_equal(notify_send("vsock:2:1234", "READY=1"), -EAFNOSUPPORT);
}

static void test_notify_socket_take(void **state)
{
    setenv("NOTIFY_SOCKET", "/run/x.sock", 1);
    char *s = notify_socket_take();
    assert_string_equal(s, "/run/x.sock");
    assert_null(getenv("NOTIFY_SOCKET"));
    free(s);
    assert_null(notify_socket_take());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_address),
        cmocka_unit_test(test_notify_path_and_abstract),
        cmocka_unit_test(test_notify_socket_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
