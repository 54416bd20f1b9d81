/* Unit tests for common/: errors, fs helpers, JSON, base64, string vectors, host arch, ids,
 * time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "common/cgroup.h"
#include "common/common.h"
#include "common/mountinfo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static int write_new_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -EIO;
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
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *p = hull_path_join(dir, "f.json");
    hull_error_t err = NULL;
    assert_hull_ok(hull_write_file_atomic(p, "hello", 5, 0600, &err), err);
    assert_hull_ok(hull_write_file_atomic(p, "world!", 6, 0600, &err), err);
    char *buf = NULL;
    size_t n = 0;
    assert_hull_ok(hull_read_file(p, 1024, &buf, &n, &err), err);
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
    assert_hull_ok(hull_rm_rf(dir, &err), err);
}

static void test_atomic_write_refuses_symlinked_temp(void **state)
{
    /* a symlink planted at the temp name must not redirect the write */
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *target = hull_path_join(dir, "victim");
    _cleanup_free_ char *tmp = hull_path_join(dir, ".f.tmp");
    _cleanup_free_ char *p = hull_path_join(dir, "f");
    hull_error_t err = NULL;
    assert_hull_ok(hull_write_file_atomic(target, "keep", 4, 0600, &err), err);
    assert_int_equal(symlink(target, tmp), 0);
    assert_true(hull_write_file_atomic(p, "evil", 4, 0600, &err) < 0);
    hull_error_free(&err);
    char *buf = NULL;
    assert_hull_ok(hull_read_file(target, 64, &buf, NULL, &err), err);
    assert_string_equal(buf, "keep");
    free(buf);
    assert_hull_ok(hull_rm_rf(dir, &err), err);
}

static void test_mkdir_p_and_rm_rf_do_not_follow_symlinks(void **state)
{
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *outside = hull_test_tmpdir("unit");
    _cleanup_free_ char *deep = hull_path_join(dir, "a/b/c");
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(deep, 0700, &err), err);
    assert_hull_ok(hull_mkdir_p(deep, 0700, &err), err); /* idempotent */
    _cleanup_free_ char *keep = hull_path_join(outside, "keep");
    assert_hull_ok(hull_write_file_atomic(keep, "x", 1, 0600, &err), err);
    _cleanup_free_ char *link = hull_path_join(dir, "a/b/link");
    assert_int_equal(symlink(outside, link), 0);
    assert_hull_ok(hull_rm_rf(dir, &err), err);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);    /* the link's target survived */
    assert_hull_ok(hull_rm_rf(dir, &err), err); /* missing is fine */
    /* mkdir over a file fails clearly */
    assert_true(hull_mkdir_p(keep, 0700, &err) < 0);
    assert_int_equal(hull_error_status(&err), ENOTDIR);
    hull_error_free(&err);
    assert_hull_ok(hull_rm_rf(outside, &err), err);
}

static void test_rm_rf_deep_tree(void **state)
{
    /* 5000 levels: deeper than any recursion limit and far beyond PATH_MAX; each level
     * holds a file, a symlink to a kept directory outside and (at some) a wide sibling */
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *outside = hull_test_tmpdir("unit");
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

/* A directory bind mount of the same file system inside the tree: st_dev does not tell it
 * from the tree, but rm -rf must stop at it and never delete what the bind shows (the source
 * lives elsewhere on the host). */
static void test_rm_rf_stops_at_same_fs_bind_mount(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *outside = hull_test_tmpdir("unit");
    _cleanup_free_ char *keep = hull_path_join(outside, "sub/keep");
    _cleanup_free_ char *sub = hull_path_join(outside, "sub");
    _cleanup_free_ char *top = hull_path_join(dir, "t");
    _cleanup_free_ char *mnt = hull_path_join(dir, "t/a/b");
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(sub, 0700, &err), err);
    assert_hull_ok(hull_write_file_atomic(keep, "x", 1, 0600, &err), err);
    assert_hull_ok(hull_mkdir_p(mnt, 0700, &err), err);
    if (mount(outside, mnt, NULL, MS_BIND, NULL) < 0) {
        hull_rm_rf(dir, &err);
        hull_rm_rf(outside, &err);
        skip();
    }
    int r = hull_rm_rf(top, &err);
    int status = r < 0 ? hull_error_status(&err) : 0;
    hull_error_free(&err);
    bool kept = access(keep, F_OK) == 0;
    umount2(mnt, MNT_DETACH);
    /* with the mount gone, the rest goes */
    int r2 = hull_rm_rf(dir, &err);
    hull_error_free(&err);
    hull_rm_rf(outside, &err);
    hull_error_free(&err);
    assert_true(kept);
    assert_int_equal(r, -EBUSY);
    assert_int_equal(status, EBUSY);
    assert_int_equal(r2, 0);
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
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
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
    assert_hull_ok(hull_json_parse(out, "rt", &v, &err), err);
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

static void test_base64(void **state)
{
    /* RFC 4648 section 10 vectors */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        _cleanup_free_ char *e = hull_base64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, enc[i]);
        assert_int_equal(strlen(e), HULL_BASE64_ENCODED_LEN(strlen(plain[i])));
        char buf[16];
        assert_int_equal(hull_base64_encode_to(plain[i], strlen(plain[i]), buf), strlen(enc[i]));
        assert_string_equal(buf, enc[i]);
        uint8_t dec[HULL_BASE64_DECODED_MAX(8)];
        ssize_t n = hull_base64_decode(enc[i], strlen(enc[i]), dec, false);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(dec, plain[i], (size_t)n);
    }
    /* every byte value survives a round trip */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    _cleanup_free_ char *e = hull_base64_encode(all, sizeof(all));
    _cleanup_free_ uint8_t *back = xmalloc0(HULL_BASE64_DECODED_MAX(strlen(e)));
    assert_int_equal(hull_base64_decode(e, strlen(e), back, false), 256);
    assert_memory_equal(back, all, 256);
    uint8_t dec[32];
    /* missing padding is accepted; garbage, data after padding and over-padding are not */
    assert_int_equal(hull_base64_decode("Zm8", 3, dec, false), 2);
    assert_int_equal(hull_base64_decode("Zm$v", 4, dec, false), -EINVAL);
    assert_int_equal(hull_base64_decode("Zg=v", 4, dec, false), -EINVAL);
    assert_int_equal(hull_base64_decode("Z===", 4, dec, false), -EINVAL);
    assert_int_equal(hull_base64_decode("Zm9v\n", 5, dec, false), -EINVAL);
    /* lenient (Docker config auth): skips what is not base64, stops at '=' */
    ssize_t n = hull_base64_decode("dXNl\ncjpw\r\nYXNz=garbage", 25, dec, true);
    assert_int_equal(n, 9);
    assert_memory_equal(dec, "user:pass", 9);
}

/* hull_path_clean / hull_path_has_dotdot: the one lexical path cleaner (a security matter: its
 * result must never name a place above the root it is resolved in). */
static void expect_clean(const char *in, unsigned flags, const char *want)
{
    _cleanup_free_ char *got = hull_path_clean(in, flags);
    if (strcmp(got, want) != 0) {
        print_error("hull_path_clean(\"%s\", %u) = \"%s\", want \"%s\"\n", in, flags, got, want);
        fail();
    }
}

static void test_path_clean(void **state)
{
    /* empty, root, slashes, ".", trailing slash */
    expect_clean("", 0, "/");
    expect_clean("/", 0, "/");
    expect_clean("///", 0, "/");
    expect_clean(".", 0, "/");
    expect_clean("./", 0, "/");
    expect_clean("/a//b///c", 0, "/a/b/c");
    expect_clean("/a/./b/.", 0, "/a/b");
    expect_clean("/a/b/", 0, "/a/b");
    expect_clean("/a/b//", 0, "/a/b");
    /* relative input becomes absolute; the relative form is the result + 1 */
    expect_clean("a/b", 0, "/a/b");
    expect_clean("./a/b/", 0, "/a/b");
    _cleanup_free_ char *rel = hull_path_clean("./etc//passwd", 0);
    assert_string_equal(rel + 1, "etc/passwd");
    /* ".." removes the component before it and never climbs above the root */
    expect_clean("/a/b/../c", 0, "/a/c");
    expect_clean("/a/b/../../c", 0, "/c");
    expect_clean("/..", 0, "/");
    expect_clean("..", 0, "/");
    expect_clean("../../../etc/shadow", 0, "/etc/shadow");
    expect_clean("/a/../../../etc", 0, "/etc");
    expect_clean("a/../..//../b/./..", 0, "/");
    expect_clean("/a/b/c/../../..", 0, "/");
    /* names that only look like dots are names */
    expect_clean("/.../..a/a../.b", 0, "/.../..a/a../.b");
    expect_clean("/a/.../..", 0, "/a");
    /* KEEP_DOTDOT folds the rest and leaves ".." where it is */
    expect_clean("//a/./../b/", HULL_PATH_KEEP_DOTDOT, "/a/../b");
    expect_clean("../x", HULL_PATH_KEEP_DOTDOT, "/../x");
    expect_clean("", HULL_PATH_KEEP_DOTDOT, "/");

    assert_false(hull_path_has_dotdot(""));
    assert_false(hull_path_has_dotdot("/a/b"));
    assert_false(hull_path_has_dotdot("/a.../..b/.../c.."));
    assert_true(hull_path_has_dotdot(".."));
    assert_true(hull_path_has_dotdot("/a/../b"));
    assert_true(hull_path_has_dotdot("a//..//"));
    assert_true(hull_path_has_dotdot("/a/b/.."));

    /* very long: 100k components, then as many ".." plus one more than there are */
    size_t n = 100000;
    char *lng = xmalloc0(n * 3 + n * 3 + 16);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(lng + o, "/ab", 3);
        o += 3;
    }
    lng[o] = '\0';
    _cleanup_free_ char *same = hull_path_clean(lng, 0);
    assert_int_equal(strlen(same), n * 3);
    assert_string_equal(same, lng);
    for (size_t i = 0; i <= n; i++) {
        memcpy(lng + o, "/..", 3);
        o += 3;
    }
    memcpy(lng + o, "/x", 3);
    _cleanup_free_ char *up = hull_path_clean(lng, 0);
    assert_string_equal(up, "/x");
    assert_true(hull_path_has_dotdot(lng));
    free(lng);
}

static void test_buf(void **state)
{
    struct hull_buf b = {0};
    /* empty: steal gives "" */
    size_t len = 99;
    _cleanup_free_ char *e = hull_buf_steal(&b, &len);
    assert_string_equal(e, "");
    assert_int_equal(len, 0);
    assert_null(b.data);

    hull_buf_add(&b, "ab", 2);
    hull_buf_add_str(&b, "cd");
    assert_int_equal(b.len, 4);
    assert_string_equal(b.str, "abcd"); /* NUL-terminated, not counted */
    /* binary bytes, including NUL */
    hull_buf_add(&b, "\0\xff", 2);
    assert_int_equal(b.len, 6);
    assert_int_equal(b.data[4], 0);
    assert_int_equal(b.data[5], 0xff);
    assert_int_equal(b.data[6], 0);
    /* consume: part, nothing, then more than there is */
    hull_buf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "cd\0\xff", 4);
    hull_buf_consume(&b, 0);
    assert_int_equal(b.len, 4);
    hull_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.str, "");
    /* addf: short, then longer than the free room (the second vsnprintf pass) */
    hull_buf_addf(&b, "%s=%d;", "x", 42);
    assert_string_equal(b.str, "x=42;");
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hull_buf_addf(&b, "[%s]", big);
    assert_int_equal(b.len, 5 + 2 + sizeof(big) - 1);
    assert_int_equal(b.str[5], '[');
    assert_int_equal(b.str[b.len - 1], ']');
    assert_int_equal(b.str[b.len], '\0');
    assert_true(b.cap > b.len);
    /* a full buffer filled by the caller (reserve, no room for a NUL) can still be consumed */
    hull_buf_free(&b);
    hull_buf_reserve(&b, 8);
    assert_int_equal(b.cap, 8);
    memcpy(b.data, "12345678", 8);
    b.len = 8;
    hull_buf_consume(&b, 3);
    assert_string_equal(b.str, "45678");
    hull_buf_add_str(&b, "9");
    size_t n = 0;
    _cleanup_free_ char *s = hull_buf_steal(&b, &n);
    assert_string_equal(s, "456789");
    assert_int_equal(n, 6);
    assert_int_equal(b.len, 0);
    hull_buf_free(&b); /* after steal: a no-op */
    {
        _cleanup_buf_ struct hull_buf c = {0};
        hull_buf_addf(&c, "%d", 7);
        assert_string_equal(c.str, "7");
    }
}

static void test_strv_struct(void **state)
{
    struct hull_strv s = {0};
    hull_strv_add(&s, "a");
    hull_strv_add_owned(&s, xstrdup("b"));
    for (int i = 0; i < 100; i++)
        hull_strv_add_owned(&s, xasprintf("n%d", i));
    assert_int_equal(s.n, 102);
    assert_int_equal(hull_strv_len(s.v), 102);
    assert_string_equal(s.v[0], "a");
    assert_string_equal(s.v[1], "b");
    assert_string_equal(s.v[101], "n99");
    assert_null(s.v[102]);
    assert_true(hull_strv_has(s.v, s.n, "n50"));
    hull_strv_clear(&s);
    assert_null(s.v);
    assert_int_equal(s.n, 0);
    hull_strv_clear(&s); /* empty: fine */
}

static void test_strv(void **state)
{
    char **v = NULL;
    size_t n = 0;
    assert_int_equal(hull_strv_len(v), 0);
    hull_strv_push(&v, &n, "a");
    hull_strv_push(&v, &n, "b");
    hull_strv_push(&v, &n, "c");
    assert_int_equal(n, 3);
    assert_int_equal(hull_strv_len(v), 3);
    assert_null(v[3]);
    assert_true(hull_strv_has(v, n, "b"));
    assert_false(hull_strv_has(v, n, "d"));
    assert_true(hull_strv_remove(v, &n, "b"));
    assert_false(hull_strv_remove(v, &n, "b"));
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "c");
    assert_null(v[2]);
    const char *const src[] = {"x", NULL, "z"};
    char **d = hull_strv_dup_n(src, 3);
    assert_string_equal(d[0], "x");
    assert_string_equal(d[1], ""); /* NULL entries become "" */
    assert_string_equal(d[2], "z");
    assert_null(d[3]);
    hull_strv_free_n(d, 3);
    char **e = hull_strv_dup_n(NULL, 0);
    assert_non_null(e);
    assert_null(e[0]);
    hull_strv_free(e);
    hull_strv_free(v);
    hull_strv_free(NULL);
    hull_strv_free_n(NULL, 0);
}

static void test_atomic_write_flags(void **state)
{
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *p = hull_path_join(dir, "state.json");
    hull_error_t err = NULL;
    assert_hull_ok(hull_write_file_atomic_flags(p, "one", 3, 0640,
                                                HULL_ATOMIC_NOSYNC | HULL_ATOMIC_PROCESS_TMP, &err),
                   err);
    assert_hull_ok(hull_write_file_atomic_flags(p, "two!", 4, 0640, HULL_ATOMIC_NOSYNC, &err), err);
    char *buf = NULL;
    assert_hull_ok(hull_read_file(p, 64, &buf, NULL, &err), err);
    assert_string_equal(buf, "two!");
    free(buf);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* nothing but the file is left in the directory */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    /* the per-process temp name does not follow a planted symlink either */
    _cleanup_free_ char *victim = hull_path_join(dir, "victim");
    _cleanup_free_ char *tmpname = xasprintf("%s/.f.tmp-%d", dir, (int)getpid());
    _cleanup_free_ char *f = hull_path_join(dir, "f");
    assert_int_equal(symlink(victim, tmpname), 0);
    assert_hull_fails(hull_write_file_atomic_flags(f, "x", 1, 0600, HULL_ATOMIC_PROCESS_TMP, &err),
                      ELOOP, err);
    assert_int_equal(access(victim, F_OK), -1);
    assert_hull_ok(hull_rm_rf(dir, &err), err);
}

static void test_goarch(void **state)
{
#if defined(__x86_64__)
    assert_string_equal(hull_goarch(), "amd64");
#elif defined(__aarch64__)
    assert_string_equal(hull_goarch(), "arm64");
#else
    assert_non_null(hull_goarch());
#endif
}

/* Exit status of the cloned child: 1 if dumpable, + 2 if in the user namespace of inode *arg. */
static void report_child(void *arg)
{
    struct stat st;
    int in_ns = stat("/proc/self/ns/user", &st) == 0 && st.st_ino == *(ino_t *)arg;
    _exit((prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) + (in_ns ? 2 : 0));
}

static int clone_status(int usfd, unsigned flags, ino_t ino)
{
    pid_t pid = hull_clone_in_userns(usfd, -1, 0, flags, report_child, &ino);
    if (pid < 0)
        return pid;
    int status = 0;
    /* CLONE_PARENT: the child is ours, the helper is already reaped */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_clone_in_userns(void **state)
{
    /* a user namespace without any mapping, held by a child until we close the pipe */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        char c;
        close(p[1]);
        if (unshare(CLONE_NEWUSER) < 0)
            _exit(1);
        (void)!read(p[0], &c, 1);
        _exit(0);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)holder);
    struct stat self, st;
    assert_int_equal(stat("/proc/self/ns/user", &self), 0);
    for (int i = 0; i < 500 && (stat(path, &st) != 0 || st.st_ino == self.st_ino); i++)
        usleep(10000);
    assert_int_not_equal(st.st_ino, self.st_ino);
    int usfd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(usfd >= 0);
    int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

    /* uid/gid 0 is not mapped: an error unless optional */
    assert_int_equal(clone_status(usfd, 0, st.st_ino), -EINVAL);
    /* in the namespace; non-dumpable only when asked, and the caller's flag is kept */
    assert_int_equal(clone_status(usfd, HULL_CLONE_ID0_OPTIONAL, st.st_ino), 2 + 1);
    assert_int_equal(
        clone_status(usfd, HULL_CLONE_ID0_OPTIONAL | HULL_CLONE_NONDUMPABLE, st.st_ino), 2);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), dumpable);
    /* not a user namespace */
    int bad = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_int_equal(clone_status(bad, HULL_CLONE_ID0_OPTIONAL, st.st_ino), -EINVAL);
    close(bad);

    close(usfd);
    close(p[1]);
    assert_int_equal(waitpid(holder, NULL, 0), holder);
}

/* ---- mountinfo and the cgroup layout ----------------------------------------------------- */
static char *cg_fixture(const char *name)
{
    _cleanup_free_ char *p = xasprintf("tests/fixtures/cgroup/%s", name);
    char *text = NULL;
    hull_error_t err = NULL;
    if (hull_read_file(p, 1 << 20, &text, NULL, &err) < 0) {
        fprintf(stderr, "fixture %s: %s (run from the repo root)\n", p, hull_error_msg(&err));
        hull_error_free(&err);
    }
    assert_non_null(text);
    return text;
}

static void test_open_in_root(void **state)
{
    (void)state;
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    _cleanup_free_ char *root = hull_path_join(dir, "root");
    _cleanup_free_ char *etc = hull_path_join(root, "etc");
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_equal(mkdir(etc, 0755), 0);
    /* a file outside the root and links that try to reach it */
    _cleanup_free_ char *outside = hull_path_join(dir, "secret");
    hull_error_t err = NULL;
    assert_int_equal(write_new_file(outside, "host"), 0);
    _cleanup_free_ char *inside = hull_path_join(etc, "secret");
    assert_int_equal(write_new_file(inside, "root"), 0);
    _cleanup_free_ char *abs = hull_path_join(root, "abs");
    assert_int_equal(symlink(outside, abs), 0); /* resolves to <root>/<dir>/secret: missing */
    _cleanup_free_ char *rel = hull_path_join(root, "rel");
    assert_int_equal(symlink("../../../../../../etc/secret", rel), 0); /* <root>/etc/secret */
    _cleanup_free_ char *magic = hull_path_join(root, "magic");
    assert_int_equal(symlink("/proc/self/root", magic), 0);

    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(rootfd >= 0);
    int fd = hull_open_in_root(rootfd, "abs", O_RDONLY, 0);
    assert_true(fd < 0);
    assert_int_equal(errno, ENOENT);
    char buf[16] = {0};
    fd = hull_open_in_root(rootfd, "/rel", O_RDONLY, 0);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 4);
    assert_string_equal(buf, "root");
    close(fd);
    fd = hull_open_in_root(rootfd, "/../../etc/secret", O_RDONLY, 0);
    assert_true(fd >= 0);
    close(fd);
    /* no /proc magic links, even ones that stay inside */
    fd = hull_open_in_root(rootfd, "magic", O_PATH, 0);
    assert_true(fd < 0);
    /* "" and "/" are the root itself */
    struct stat a, b;
    assert_int_equal(fstat(rootfd, &a), 0);
    fd = hull_open_in_root(rootfd, "", O_PATH | O_DIRECTORY, 0);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    fd = hull_open_in_root(rootfd, "/", O_PATH | O_DIRECTORY, 0);
    assert_true(fd >= 0);
    close(fd);
    /* creation with a mode, and only below the root */
    fd = hull_open_in_root(rootfd, "/etc/new", O_WRONLY | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &b), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(b.st_mode & 0777, 0640 & ~mask);
    close(fd);
    fd = hull_open_in_root_resolve(rootfd, "/", O_PATH, 0, RESOLVE_NO_XDEV);
    assert_true(fd >= 0);
    close(fd);
    close(rootfd);
    assert_int_equal(hull_rm_rf(dir, &err), 0);
}

static void test_mountinfo_parse(void **state)
{
    (void)state;
    const char *text =
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "37 36 0:41 /a\\040b /mnt/with\\040space\\011tab rw shared:7 master:2 - tmpfs "
        "my\\134src rw,size=4k\n"
        "garbage line without separator\n"
        "x 1 0:1 / /bad rw - tmpfs tmpfs rw\n"
        "38 36 0:42 / /no/super rw - proc\n"
        "39 36 0:43 / /odd\\999 rw - tmpfs t rw";
    struct hull_mountinfo mi;
    hull_mountinfo_parse(text, &mi);
    assert_int_equal(mi.n, 4);
    const struct hull_mountinfo_entry *e = &mi.v[0];
    assert_int_equal(e->id, 36);
    assert_int_equal(e->parent, 35);
    assert_int_equal(e->major, 98);
    assert_int_equal(e->minor, 0);
    assert_string_equal(e->root, "/mnt1");
    assert_string_equal(e->mount_point, "/mnt2");
    assert_string_equal(e->options, "rw,noatime");
    assert_string_equal(e->optional, "master:1");
    assert_string_equal(e->fstype, "ext3");
    assert_string_equal(e->source, "/dev/root");
    assert_string_equal(e->super_options, "rw,errors=continue");
    assert_true(hull_mountinfo_has_optional(e, "master:"));
    assert_false(hull_mountinfo_has_optional(e, "shared:"));
    e = &mi.v[1];
    assert_string_equal(e->root, "/a b");
    assert_string_equal(e->mount_point, "/mnt/with space\ttab");
    assert_string_equal(e->source, "my\\src");
    assert_string_equal(e->optional, "shared:7 master:2");
    assert_true(hull_mountinfo_has_optional(e, "shared:"));
    assert_true(hull_mountinfo_has_optional(e, "master:"));
    assert_true(hull_option_list_has(e->super_options, "size=4k"));
    assert_false(hull_option_list_has(e->super_options, "size"));
    e = &mi.v[2];
    assert_string_equal(e->fstype, "proc");
    assert_string_equal(e->source, "");
    assert_string_equal(e->super_options, "");
    assert_string_equal(e->optional, "");
    assert_string_equal(mi.v[3].mount_point, "/odd\\999"); /* not an escape: kept */

    /* the top-most of the longest prefix holds a path */
    assert_ptr_equal(hull_mountinfo_holding(&mi, "/mnt2/x"), &mi.v[0]);
    assert_ptr_equal(hull_mountinfo_holding(&mi, "/mnt/with space\ttab"), &mi.v[1]);
    assert_null(hull_mountinfo_holding(&mi, "/mnt/with space")); /* no "/" mount here */
    hull_mountinfo_clear(&mi);

    hull_mountinfo_parse("1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /m rw - t a rw\n"
                         "3 1 0:3 / /m rw - t b rw\n",
                         &mi);
    assert_ptr_equal(hull_mountinfo_holding(&mi, "/m/x"), &mi.v[2]);
    assert_ptr_equal(hull_mountinfo_holding(&mi, "/mm"), &mi.v[0]);
    hull_mountinfo_clear(&mi);

    char s[] = "a\\040b\\134\\0";
    hull_mountinfo_unescape(s);
    assert_string_equal(s, "a b\\\\0");
    assert_true(hull_path_at_or_below("/a/b", "/a"));
    assert_true(hull_path_at_or_below("/a", "/a/"));
    assert_false(hull_path_at_or_below("/ab", "/a"));
    assert_true(hull_path_at_or_below("/x", "/"));

    /* the running system's own file parses, and / is mounted */
    hull_error_t err = NULL;
    assert_int_equal(hull_mountinfo_read(NULL, &mi, &err), 0);
    assert_true(mi.n > 0);
    assert_non_null(hull_mountinfo_holding(&mi, "/"));
    hull_mountinfo_clear(&mi);
    /* /proc/self lives on the proc mount */
    _cleanup_free_ char *mp = hull_mount_point_of("/proc/self", &err);
    assert_non_null(mp);
    assert_string_equal(mp, "/proc");
}

static void test_cgroup_layout(void **state)
{
    (void)state;
    struct hull_cgroup_layout l;
    _cleanup_free_ char *hybrid = cg_fixture("mountinfo-hybrid");
    hull_cgroup_layout_parse(hybrid, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    assert_string_equal(hull_cgroup_mode_name(l.mode), "hybrid");
    const struct hull_cgroup_hier *h = hull_cgroup_layout_find(&l, NULL);
    assert_non_null(h);
    assert_string_equal(h->mountpoint, "/sys/fs/cgroup/unified");
    h = hull_cgroup_layout_find(&l, "name=systemd");
    assert_non_null(h);
    assert_string_equal(h->mountpoint, "/sys/fs/cgroup/systemd");
    assert_null(hull_cgroup_layout_find(&l, "nosuchcontroller"));
    hull_cgroup_layout_clear(&l);
    /* only below a root, and cgroup2 on that root makes it unified */
    hull_cgroup_layout_parse(hybrid, "/sys/fs/cgroup/unified", &l);
    assert_int_equal(l.mode, HULL_CGROUP_V2);
    assert_int_equal(l.n, 1);
    hull_cgroup_layout_clear(&l);

    _cleanup_free_ char *mixed = cg_fixture("mountinfo-hybrid-mixed");
    hull_cgroup_layout_parse(mixed, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    assert_int_equal(l.n, 3);
    assert_string_equal(hull_cgroup_layout_find(&l, "memory")->mountpoint, "/sys/fs/cgroup/memory");
    assert_null(hull_cgroup_layout_find(&l, "cpu")); /* moved to cgroup2 */
    hull_cgroup_layout_clear(&l);

    _cleanup_free_ char *v2 = cg_fixture("mountinfo-v2");
    hull_cgroup_layout_parse(v2, NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_V2);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.hiers[0].mountpoint, "/sys/fs/cgroup");
    assert_string_equal(l.hiers[0].controllers, "");
    hull_cgroup_layout_clear(&l);

    /* mount flags are not controllers; the same hierarchy twice counts once */
    hull_cgroup_layout_parse(
        "1 0 0:1 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,noprefix,cpuset,cpuset_v2_mode,"
        "clone_children,release_agent=/x\n"
        "2 0 0:2 /sub /mnt/again rw - cgroup cgroup rw,cpuset,noprefix\n"
        "3 0 0:3 / /sys/fs/cgroup/x rw - cgroup cgroup rw,xattr\n",
        NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_V1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.hiers[0].controllers, "cpuset");
    hull_cgroup_layout_clear(&l);
    hull_cgroup_layout_parse("1 0 0:1 / / rw - ext4 a rw\n", NULL, &l);
    assert_int_equal(l.mode, HULL_CGROUP_NONE);
    hull_cgroup_layout_clear(&l);

    assert_true(hull_cgroup_is_controller_option("name=systemd"));
    assert_true(hull_cgroup_is_controller_option("net_cls"));
    assert_false(hull_cgroup_is_controller_option("memory_recursiveprot"));
    assert_false(hull_cgroup_is_controller_option(""));
}

/* A fixture root (no cgroup mounted there): the layout is guessed from the files. */
static void test_cgroup_layout_load_files(void **state)
{
    (void)state;
    _cleanup_free_ char *root = hull_test_tmpdir("unit");
    struct hull_cgroup_layout l;
    hull_error_t err = NULL;
    assert_hull_fails(hull_cgroup_layout_load(root, NULL, &l, &err), ENOENT, err);
    /* v1: a co-mounted directory, its symlinked names, and an unified dir without cgroup2 */
    const char *dirs[] = {"memory", "cpu,cpuacct", "pids", "unified"};
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *d = hull_path_join(root, dirs[i]);
        assert_int_equal(mkdir(d, 0755), 0);
    }
    _cleanup_free_ char *cpu = hull_path_join(root, "cpu");
    assert_int_equal(symlink("cpu,cpuacct", cpu), 0);
    _cleanup_free_ char *acct = hull_path_join(root, "cpuacct");
    assert_int_equal(symlink("cpu,cpuacct", acct), 0);
    _cleanup_free_ char *slash = xasprintf("%s/", root);
    /* mountinfo without a cgroup mount below the root counts as none */
    assert_hull_ok(hull_cgroup_layout_load(slash, "1 0 0:1 / / rw - ext4 a rw\n", &l, &err), err);
    assert_int_equal(l.mode, HULL_CGROUP_V1);
    assert_int_equal(l.n, 3);
    _cleanup_free_ char *cc = hull_path_join(root, "cpu,cpuacct");
    assert_string_equal(hull_cgroup_layout_find(&l, "cpu")->mountpoint, cc);
    assert_string_equal(hull_cgroup_layout_find(&l, "cpuacct")->mountpoint, cc);
    assert_null(hull_cgroup_layout_find(&l, NULL));
    assert_true(hull_cgroup_layout_has_controller(&l, "pids"));
    assert_false(hull_cgroup_layout_has_controller(&l, "hugetlb"));
    hull_cgroup_layout_clear(&l);
    /* hybrid: cgroup2 at <root>/unified */
    _cleanup_free_ char *uc = xasprintf("%s/unified/cgroup.controllers", root);
    assert_int_equal(write_new_file(uc, ""), 0);
    assert_hull_ok(hull_cgroup_layout_load(root, NULL, &l, &err), err);
    assert_int_equal(l.mode, HULL_CGROUP_HYBRID);
    _cleanup_free_ char *un = hull_path_join(root, "unified");
    assert_string_equal(hull_cgroup_layout_find(&l, NULL)->mountpoint, un);
    hull_cgroup_layout_clear(&l);
    /* v2: cgroup.controllers at the root; v1 directories then ignored */
    _cleanup_free_ char *rc = hull_path_join(root, "cgroup.controllers");
    assert_int_equal(write_new_file(rc, "cpu memory hugetlb\n"), 0);
    assert_hull_ok(hull_cgroup_layout_open(root, &l, &err), err);
    assert_int_equal(l.mode, HULL_CGROUP_V2);
    assert_int_equal(l.n, 1);
    assert_string_equal(hull_cgroup_layout_find(&l, NULL)->mountpoint, root);
    assert_true(hull_cgroup_layout_has_controller(&l, "hugetlb"));
    assert_false(hull_cgroup_layout_has_controller(&l, "pids"));
    hull_cgroup_layout_clear(&l);
    hull_rm_rf(root, NULL);
}

/* Tree removal: deepest first; a missing tree is no error; what cannot go is named. */
static void test_cgroup_remove_tree(void **state)
{
    (void)state;
    _cleanup_free_ char *root = hull_test_tmpdir("unit");
    _cleanup_free_ char *deep = xasprintf("%s/a/b/c", root);
    _cleanup_free_ char *side = xasprintf("%s/a/d", root);
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(deep, 0755, &err), err);
    assert_hull_ok(hull_mkdir_p(side, 0755, &err), err);
    _cleanup_free_ char *a = hull_path_join(root, "a");
    assert_hull_ok(hull_cgroup_remove_tree(a, 0, &err), err);
    struct stat st;
    assert_int_equal(stat(a, &st), -1);
    assert_hull_ok(hull_cgroup_remove_tree(a, HULL_CGROUP_RM_WAIT, &err), err);
    /* a file (not a cgroup) keeps its directory and the ones above it */
    assert_hull_ok(hull_mkdir_p(deep, 0755, &err), err);
    _cleanup_free_ char *f = hull_path_join(deep, "file");
    assert_int_equal(write_new_file(f, "x"), 0);
    assert_hull_fails(hull_cgroup_remove_tree(a, 0, &err), ENOTEMPTY, err);
    assert_int_equal(stat(deep, &st), 0);
    unlink(f);
    assert_hull_ok(hull_cgroup_remove_tree(a, HULL_CGROUP_RM_KILL, &err), err);
    assert_int_equal(stat(a, &st), -1);
    hull_rm_rf(root, NULL);
}

/* Stats reading: flat-keyed cgroup files and the oom_kill counter of v1 and v2. */
static void test_cgroup_kv_and_oom_kills(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_true(
        hull_cgroup_kv_get("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill", &v));
    assert_int_equal(v, 3);
    assert_false(hull_cgroup_kv_get("oom_kill_disable 0\n", "oom_kill", &v));
    assert_false(hull_cgroup_kv_get("oom_kill max\n", "oom_kill", &v));
    assert_false(hull_cgroup_kv_get("", "oom_kill", &v));
    _cleanup_free_ char *dir = hull_test_tmpdir("unit");
    assert_int_equal(hull_cgroup_oom_kills(dir, true), -1);
    _cleanup_free_ char *ev = hull_path_join(dir, "memory.events");
    assert_int_equal(write_new_file(ev, "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"), 0);
    _cleanup_free_ char *oc = hull_path_join(dir, "memory.oom_control");
    assert_int_equal(write_new_file(oc, "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"), 0);
    assert_int_equal(hull_cgroup_oom_kills(dir, true), 1);
    assert_int_equal(hull_cgroup_oom_kills(dir, false), 5);
    hull_rm_rf(dir, NULL);
}

static void test_proc_cgroup(void **state)
{
    (void)state;
    _cleanup_free_ char *v1 = cg_fixture("proc-self-cgroup-v1");
    _cleanup_free_ char *cpu = hull_proc_cgroup_lookup(v1, "cpuacct");
    assert_string_equal(cpu, "/user.slice");
    _cleanup_free_ char *sd = hull_proc_cgroup_lookup(v1, "name=systemd");
    assert_string_equal(sd, "/user.slice/session-1.scope");
    _cleanup_free_ char *dev = hull_proc_cgroup_lookup(v1, "devices");
    assert_string_equal(dev, "/kubepods/pod1");
    assert_null(hull_proc_cgroup_lookup(v1, "cpu,cpuacct"));
    assert_null(hull_proc_cgroup_lookup(v1, NULL)); /* no cgroup2 line */
    _cleanup_free_ char *v2 = cg_fixture("proc-self-cgroup-v2");
    _cleanup_free_ char *u = hull_proc_cgroup_lookup(v2, NULL);
    assert_string_equal(u, "/user.slice/session-1.scope");
    assert_null(hull_proc_cgroup_lookup(v2, "memory"));
    _cleanup_free_ char *mixed = hull_proc_cgroup_lookup("4:memory:/x\n0::/y", "");
    assert_string_equal(mixed, "/y");
    assert_null(hull_proc_cgroup_lookup("", NULL));
    assert_null(hull_proc_cgroup_lookup("broken", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_chain),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
        cmocka_unit_test(test_atomic_write_refuses_symlinked_temp),
        cmocka_unit_test(test_mkdir_p_and_rm_rf_do_not_follow_symlinks),
        cmocka_unit_test(test_rm_rf_deep_tree),
        cmocka_unit_test(test_rm_rf_wide_tree),
        cmocka_unit_test(test_rm_rf_stops_at_same_fs_bind_mount),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_ids_and_names),
        cmocka_unit_test(test_rfc3339nano),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_strv),
        cmocka_unit_test(test_strv_struct),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_atomic_write_flags),
        cmocka_unit_test(test_goarch),
        cmocka_unit_test(test_clone_in_userns),
        cmocka_unit_test(test_open_in_root),
        cmocka_unit_test(test_mountinfo_parse),
        cmocka_unit_test(test_cgroup_layout),
        cmocka_unit_test(test_cgroup_layout_load_files),
        cmocka_unit_test(test_cgroup_remove_tree),
        cmocka_unit_test(test_cgroup_kv_and_oom_kills),
        cmocka_unit_test(test_proc_cgroup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
