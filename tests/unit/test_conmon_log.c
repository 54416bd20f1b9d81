/* Unit tests for hull-conmon's CRI log writer, JSON string escaping and OOM counter parsing.
 * conmon/ is a binary, not a library, so the sources under test are included directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "conmon/crilog.c"
#include "conmon/util.c"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-23T12:00:00.000000007Z, formatted in UTC */
#define NOW 1795435200000000007LL

struct fixture {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    hull_test_tmpdir_into(f->dir, sizeof(f->dir), "conmon-unit");
    snprintf(f->path, sizeof(f->path), "%s/ctr.log", f->dir);
    setenv("TZ", "UTC", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    _cleanup_error_ hull_error_t err = NULL;
    hull_rm_rf(f->dir, &err);
    free(f);
    return 0;
}

__attribute__((noinline)) static char *slurp(const char *path)
{
    char *text = NULL;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(hull_read_file(path, 1 << 24, &text, NULL, &err), err);
    return text;
}

static void test_lines_across_reads(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, f->path, 0, &err), err);
    crilog_write(&l, 0, "ab", 2, NOW);
    crilog_write(&l, 1, "E1\n", 3, NOW);
    crilog_write(&l, 0, "c\n\nd", 4, NOW);
    crilog_flush(&l, NOW);
    crilog_close(&l);
    _cleanup_free_ char *got = slurp(f->path);
    assert_string_equal(got, "2026-11-23T12:00:00.000000007Z stderr F E1\n"
                             "2026-11-23T12:00:00.000000007Z stdout F abc\n"
                             "2026-11-23T12:00:00.000000007Z stdout F \n"
                             "2026-11-23T12:00:00.000000007Z stdout P d\n");
}

__attribute__((noinline)) static size_t count(const char *s, const char *needle)
{
    size_t n = 0, off = 0;
    const char *hit;
    while ((hit = strstr(s + off, needle)) != NULL) {
        n++;
        off = (size_t)(hit - s) + 1;
    }
    return n;
}

static void test_line_max_boundaries(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, f->path, 0, &err), err);
    size_t n = 2 * HULL_CONMON_LINE_MAX + 10;
    _cleanup_free_ char *big = malloc(n);
    memset(big, 'x', n);
    big[HULL_CONMON_LINE_MAX] = '\n'; /* exactly LINE_MAX bytes: one F record */
    /* fed in odd-sized pieces: the records must not depend on read sizes */
    for (size_t off = 0; off < n; off += 777)
        crilog_write(&l, 0, big + off, n - off < 777 ? n - off : 777, NOW);
    crilog_write(&l, 0, "\n", 1, NOW);
    crilog_close(&l);
    _cleanup_free_ char *got = slurp(f->path);
    /* LINE_MAX F, then LINE_MAX+9 bytes: one P of LINE_MAX and an F of 9 */
    assert_int_equal(count(got, " stdout F "), 2);
    assert_int_equal(count(got, " stdout P "), 1);
    assert_int_equal(count(got, "\n"), 3);
    const char *last = strrchr(got, 'F');
    assert_string_equal(last, "F xxxxxxxxx\n");
}

static void test_max_size_rotates(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, f->path, 200, &err), err);
    for (int i = 0; i < 20; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "line %d\n", i);
        crilog_write(&l, 0, line, (size_t)n, NOW);
    }
    crilog_close(&l);
    _cleanup_free_ char *got = slurp(f->path);
    assert_true(strlen(got) <= 200);
    assert_non_null(strstr(got, "stdout F line 19\n"));
}

/* Many records from one read: several writev batches, a rotation in the middle of one. */
static void test_batches_and_rotation_in_one_write(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    struct hull_buf in = {0}, want = {0};
    hull_buf_add(&in, "head", 4); /* a pending partial line first */
    assert_hull_ok(crilog_open(&l, f->path, 0, &err), err);
    crilog_write(&l, 1, in.str, in.len, NOW);
    in.len = 0;
    for (int i = 0; i < 500; i++) {
        hull_buf_addf(&in, "%d\n", i);
        hull_buf_addf(&want, "2026-11-23T12:00:00.000000007Z stderr F %s%d\n", i ? "" : "head", i);
    }
    crilog_write(&l, 1, in.str, in.len, NOW);
    crilog_close(&l);
    _cleanup_free_ char *got = slurp(f->path);
    assert_string_equal(got, want.str);

    unlink(f->path);
    assert_hull_ok(crilog_open(&l, f->path, 300, &err), err);
    crilog_write(&l, 0, in.str, in.len, NOW);
    crilog_close(&l);
    _cleanup_free_ char *rot = slurp(f->path);
    assert_true(strlen(rot) <= 300);
    const char *tail = "stdout F 499\n";
    assert_string_equal(rot + strlen(rot) - strlen(tail), tail);
    hull_buf_free(&in);
    hull_buf_free(&want);
}

static void test_reopen_keeps_partial(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, f->path, 0, &err), err);
    crilog_write(&l, 0, "one\ntw", 6, NOW);
    char moved[128];
    snprintf(moved, sizeof(moved), "%s.1", f->path);
    assert_int_equal(rename(f->path, moved), 0);
    assert_hull_ok(crilog_reopen(&l, &err), err);
    crilog_write(&l, 0, "o\n", 2, NOW);
    crilog_close(&l);
    _cleanup_free_ char *a = slurp(moved);
    _cleanup_free_ char *b = slurp(f->path);
    assert_string_equal(a, "2026-11-23T12:00:00.000000007Z stdout F one\n");
    assert_string_equal(b, "2026-11-23T12:00:00.000000007Z stdout F two\n");
}

static void test_stale_partial_flushed(void **state)
{
    struct fixture *f = *state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, f->path, 0, &err), err);
    assert_int_equal(crilog_flush_stale(&l, 1000000000LL), 0); /* nothing pending */
    crilog_write(&l, 0, "prompt> ", 8, NOW);
    int64_t due = crilog_flush_stale(&l, 3600 * 1000000000LL);
    assert_true(due > hull_monotonic_ns());         /* not yet */
    assert_int_equal(crilog_flush_stale(&l, 0), 0); /* due now: written as P */
    crilog_write(&l, 0, "yes\n", 4, NOW);
    crilog_close(&l);
    _cleanup_free_ char *got = slurp(f->path);
    assert_non_null(strstr(got, " stdout P prompt> \n"));
    assert_non_null(strstr(got, "Z stdout F yes\n"));
    assert_int_equal(count(got, "\n"), 2);
}

static void test_no_log_path(void **state)
{
    (void)state;
    struct crilog l;
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(crilog_open(&l, NULL, 0, &err), err);
    crilog_write(&l, 0, "x\n", 2, NOW);
    crilog_flush(&l, NOW);
    assert_true(crilog_reopen(&l, &err) < 0);
    crilog_close(&l);
}

static void test_json_string(void **state)
{
    (void)state;
    struct hull_buf b = {0};
    const char in[] = "a\"b\\c\n\t\x01 \xc3\xa9 \xff end";
    conmon_buf_add_json_string(&b, in, sizeof(in) - 1);
    assert_string_equal(b.str, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9 \xef\xbf\xbd end\"");
    hull_buf_free(&b);
    /* a truncated multi-byte sequence at the end */
    conmon_buf_add_json_string(&b, "x\xe2\x82", 3);
    assert_string_equal(b.str, "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
    hull_buf_free(&b);
}

static void test_oom_counter(void **state)
{
    (void)state;
    assert_int_equal(hull_cgroup_oom_parse("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3);
    assert_int_equal(hull_cgroup_oom_parse("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"), 1);
    assert_int_equal(hull_cgroup_oom_parse("oom_kill_disable 0\nunder_oom 0\n"), -1);
    assert_int_equal(hull_cgroup_oom_parse(""), -1);
}

/* cgroup v2 mechanics on a stand-in memory.events: inotify wakes us, the counter decides. */
static void test_oom_watch_v2_events(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/memory.events", f->dir);
    _cleanup_error_ hull_error_t err = NULL;
    assert_hull_ok(hull_write_file_atomic(path, "low 0\noom 0\noom_kill 2\n", 23, 0644, &err), err);
    struct hull_cgroup_oom_watch w;
    hull_cgroup_oom_watch_init_dir(&w, f->dir, true);
    assert_true(w.fd >= 0);
    assert_int_equal(w.base_kills, 2);
    assert_false(hull_cgroup_oom_watch_killed(&w));
    /* an unrelated change: woken, but no kill */
    assert_hull_ok(hull_write_string(path, "low 1\noom 0\noom_kill 2\n", &err), err);
    struct pollfd p = {w.fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 1000), 1);
    hull_cgroup_oom_watch_event(&w);
    assert_false(w.fired);
    assert_hull_ok(hull_write_string(path, "low 1\noom 1\noom_kill 3\n", &err), err);
    assert_int_equal(poll(&p, 1, 1000), 1);
    hull_cgroup_oom_watch_event(&w);
    assert_true(w.fired);
    assert_true(hull_cgroup_oom_watch_killed(&w));
    hull_cgroup_oom_watch_free(&w);
}

/* Our own memory cgroup resolves to a directory with the OOM counter file (host-agnostic: v1
 * memory controller or cgroup2); the root cgroup is refused. */
static void test_oom_cgroup_dir_self(void **state)
{
    (void)state;
    bool v2 = false;
    _cleanup_free_ char *dir = hull_cgroup_memory_dir_of(getpid(), &v2);
    if (dir == NULL) {
        /* only acceptable when we are in the root cgroup */
        _cleanup_free_ char *text = NULL;
        _cleanup_error_ hull_error_t err = NULL;
        assert_hull_ok(hull_read_file("/proc/self/cgroup", 65536, &text, NULL, &err), err);
        assert_true(strstr(text, "memory:/\n") != NULL || strstr(text, "0::/\n") != NULL);
        skip();
    }
    _cleanup_free_ char *f = hull_path_join(dir, v2 ? "memory.events" : "memory.oom_control");
    assert_int_equal(access(f, R_OK), 0);
    bool v2b;
    assert_null(hull_cgroup_memory_dir_of(999999999, &v2b)); /* no such process */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_across_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_max_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_and_rotation_in_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_partial_flushed, setup, teardown),
        cmocka_unit_test(test_no_log_path),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_oom_counter),
        cmocka_unit_test(test_oom_cgroup_dir_self),
        cmocka_unit_test_setup_teardown(test_oom_watch_v2_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
