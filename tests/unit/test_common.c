/* Unit tests for common/: errors, fs helpers, JSON, ids, time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/hull-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void test_error_chain(void **state)
{
    hull_error_t err = NULL;
    int r = hull_error_set(&err, ENOENT, "open `%s`", "/x");
    assert_int_equal(r, -ENOENT);
    assert_int_equal(hull_error_status(&err), ENOENT);
    assert_string_equal(hull_error_msg(&err), "open `/x`: No such file or directory");
    /* a second set does not overwrite the first cause */
    r = hull_error_setx(&err, EINVAL, "other");
    assert_int_equal(r, -EINVAL);
    assert_int_equal(hull_error_status(&err), ENOENT);
    r = hull_error_wrap(&err, "load %s", "thing");
    assert_int_equal(r, -ENOENT);
    assert_string_equal(hull_error_msg(&err), "load thing: open `/x`: No such file or directory");
    hull_error_free(&err);
    assert_null(err);
    assert_int_equal(hull_error_setx(NULL, EEXIST, "nobody listens"), -EEXIST);
}

static void test_path_join(void **state)
{
    _cleanup_free_ char *a = hull_path_join("/a/", "/b");
    _cleanup_free_ char *b = hull_path_join("/", "x");
    _cleanup_free_ char *c = hull_path_join("rel", "y/z");
    assert_string_equal(a, "/a/b");
    assert_string_equal(b, "/x");
    assert_string_equal(c, "rel/y/z");
}

static void test_atomic_write_and_bounded_read(void **state)
{
    _cleanup_free_ char *dir = make_tmpdir();
    _cleanup_free_ char *p = hull_path_join(dir, "f.json");
    hull_error_t err = NULL;
    assert_int_equal(hull_write_file_atomic(p, "hello", 5, 0600, &err), 0);
    assert_int_equal(hull_write_file_atomic(p, "world!", 6, 0600, &err), 0);
    char *buf = NULL;
    size_t n = 0;
    assert_int_equal(hull_read_file(p, 1024, &buf, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_string_equal(buf, "world!");
    free(buf);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* no temp file left behind */
    _cleanup_free_ char *tmp = hull_path_join(dir, ".f.json.tmp");
    assert_int_equal(access(tmp, F_OK), -1);
    /* a file over the bound is refused */
    assert_int_equal(hull_read_file(p, 3, &buf, &n, &err), -EFBIG);
    hull_error_free(&err);
    assert_int_equal(hull_read_file("/nonexistent/x", 3, &buf, &n, &err), -ENOENT);
    hull_error_free(&err);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
}

static void test_atomic_write_refuses_symlinked_temp(void **state)
{
    /* a symlink planted at the temp name must not redirect the write */
    _cleanup_free_ char *dir = make_tmpdir();
    _cleanup_free_ char *target = hull_path_join(dir, "victim");
    _cleanup_free_ char *tmp = hull_path_join(dir, ".f.tmp");
    _cleanup_free_ char *p = hull_path_join(dir, "f");
    hull_error_t err = NULL;
    assert_int_equal(hull_write_file_atomic(target, "keep", 4, 0600, &err), 0);
    assert_int_equal(symlink(target, tmp), 0);
    assert_true(hull_write_file_atomic(p, "evil", 4, 0600, &err) < 0);
    hull_error_free(&err);
    char *buf = NULL;
    assert_int_equal(hull_read_file(target, 64, &buf, NULL, &err), 0);
    assert_string_equal(buf, "keep");
    free(buf);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
}

static void test_mkdir_p_and_rm_rf_do_not_follow_symlinks(void **state)
{
    _cleanup_free_ char *dir = make_tmpdir();
    _cleanup_free_ char *outside = make_tmpdir();
    _cleanup_free_ char *deep = hull_path_join(dir, "a/b/c");
    hull_error_t err = NULL;
    assert_int_equal(hull_mkdir_p(deep, 0700, &err), 0);
    assert_int_equal(hull_mkdir_p(deep, 0700, &err), 0); /* idempotent */
    _cleanup_free_ char *keep = hull_path_join(outside, "keep");
    assert_int_equal(hull_write_file_atomic(keep, "x", 1, 0600, &err), 0);
    _cleanup_free_ char *link = hull_path_join(dir, "a/b/link");
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);    /* the link's target survived */
    assert_int_equal(hull_rm_rf(dir, &err), 0); /* missing is fine */
    /* mkdir over a file fails clearly */
    assert_true(hull_mkdir_p(keep, 0700, &err) < 0);
    assert_int_equal(hull_error_status(&err), ENOTDIR);
    hull_error_free(&err);
    assert_int_equal(hull_rm_rf(outside, &err), 0);
}

static void test_rm_rf_deep_tree(void **state)
{
    /* 5000 levels: deeper than any recursion limit and far beyond PATH_MAX; each level
     * holds a file, a symlink to a kept directory outside and (at some) a wide sibling */
    _cleanup_free_ char *dir = make_tmpdir();
    _cleanup_free_ char *outside = make_tmpdir();
    _cleanup_free_ char *keep = hull_path_join(outside, "keep");
    hull_error_t err = NULL;
    assert_int_equal(hull_write_file_atomic(keep, "x", 1, 0600, &err), 0);
    _cleanup_free_ char *top = hull_path_join(dir, "t");
    assert_int_equal(mkdir(top, 0700), 0);
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    for (int i = 0; i < 5000; i++) {
        int f = openat(fd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(f >= 0);
        close(f);
        assert_int_equal(symlinkat(outside, fd, "link"), 0);
        if (i % 1000 == 0) {
            assert_int_equal(mkdirat(fd, "side", 0700), 0);
            assert_int_equal(mkdirat(fd, "side2", 0700), 0);
        }
        assert_int_equal(mkdirat(fd, "d", 0700), 0);
        int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(n >= 0);
        close(fd);
        fd = n;
    }
    close(fd);
    assert_int_equal(hull_rm_rf(top, &err), 0);
    assert_null(err);
    assert_int_equal(access(top, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
    assert_int_equal(hull_rm_rf(outside, &err), 0);
}

static void make_wide(int fd, int n)
{
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "w%d", i);
        assert_int_equal(mkdirat(fd, name, 0700), 0);
        int c = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(c >= 0);
        int f = openat(c, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(f >= 0);
        close(f);
        close(c);
    }
}

static void test_rm_rf_wide_tree(void **state)
{
    /* many sibling directories near the top and far below it (beyond the directory streams
     * kept open, where parents are reopened through "..") */
    _cleanup_free_ char *dir = make_tmpdir();
    _cleanup_free_ char *top = hull_path_join(dir, "t");
    hull_error_t err = NULL;
    assert_int_equal(mkdir(top, 0700), 0);
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    make_wide(fd, 3000);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(mkdirat(fd, "d", 0700), 0);
        int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(n >= 0);
        close(fd);
        fd = n;
    }
    make_wide(fd, 2000);
    close(fd);
    assert_int_equal(hull_rm_rf(top, &err), 0);
    assert_int_equal(access(top, F_OK), -1);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
}

static void test_json(void **state)
{
    hull_error_t err = NULL;
    yajl_val v = NULL;
    assert_int_equal(hull_json_parse("{\"a\":\"x\",\"n\":5,\"t\":true,\"o\":{}}", "doc", &v, &err),
                     0);
    assert_string_equal(hull_json_get_string(v, "a", NULL), "x");
    assert_int_equal(hull_json_get_int(v, "n", 0), 5);
    assert_true(hull_json_get_bool(v, "t", false));
    assert_string_equal(hull_json_get_string(v, "n", "def"), "def"); /* wrong type → default */
    assert_null(hull_json_get(v, "missing"));
    yajl_tree_free(v);
    assert_int_equal(hull_json_parse("{bad", "my doc", &v, &err), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&err), "my doc"));
    assert_null(strchr(hull_error_msg(&err), '\n'));
    hull_error_free(&err);

    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "s", "q\"uote\n");
    hull_jw_kv_int(&w, "i", -3);
    hull_jw_kv_bool(&w, "b", false);
    hull_jw_key(&w, "arr");
    hull_jw_begin_array(&w);
    hull_jw_string(&w, NULL);
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    _cleanup_free_ char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    assert_string_equal(out, "{\"s\":\"q\\\"uote\\n\",\"i\":-3,\"b\":false,\"arr\":[null]}");
    /* round trip */
    assert_int_equal(hull_json_parse(out, "rt", &v, &err), 0);
    assert_string_equal(hull_json_get_string(v, "s", NULL), "q\"uote\n");
    yajl_tree_free(v);
}

static void test_ids_and_names(void **state)
{
    char a[65], b[65];
    hull_id_generate(a);
    hull_id_generate(b);
    assert_int_equal(strlen(a), 64);
    assert_true(hull_id_is_valid(a));
    assert_string_not_equal(a, b);
    assert_false(hull_id_is_valid(""));
    assert_false(hull_id_is_valid("../etc"));
    assert_false(hull_id_is_valid("ABC"));
    assert_true(hull_is_safe_component("pod-1"));
    assert_false(hull_is_safe_component(".."));
    assert_false(hull_is_safe_component("a/b"));
    assert_false(hull_is_safe_component(""));
}

static void test_rfc3339nano(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    char buf[64];
    hull_format_rfc3339nano(1475713029669794202LL, buf, sizeof(buf));
    assert_string_equal(buf, "2016-10-06T00:17:09.669794202Z");
    setenv("TZ", "EST5", 1);
    tzset();
    hull_format_rfc3339nano(1475713029000000001LL, buf, sizeof(buf));
    assert_string_equal(buf, "2016-10-05T19:17:09.000000001-05:00");
    unsetenv("TZ");
    tzset();
}

static void test_log_levels(void **state)
{
    assert_int_equal(hull_log_level_parse("debug"), HULL_LOG_DEBUG);
    assert_int_equal(hull_log_level_parse("WARNING"), HULL_LOG_WARN);
    assert_int_equal(hull_log_level_parse("loud"), -1);
    assert_int_equal(hull_log_level_parse(NULL), -1);
    hull_log_set_level(HULL_LOG_ERROR);
    assert_int_equal(hull_log_get_level(), HULL_LOG_ERROR);
    hull_log_set_level(99); /* ignored */
    assert_int_equal(hull_log_get_level(), HULL_LOG_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_chain),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
        cmocka_unit_test(test_atomic_write_refuses_symlinked_temp),
        cmocka_unit_test(test_mkdir_p_and_rm_rf_do_not_follow_symlinks),
        cmocka_unit_test(test_rm_rf_deep_tree),
        cmocka_unit_test(test_rm_rf_wide_tree),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_ids_and_names),
        cmocka_unit_test(test_rfc3339nano),
        cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
