/* The C unit tests' kit (cmocka): assertions on functions that return 0 or a negative errno
 * and fill a hull_error_t, printing the error message when they fail; fixtures for temporary
 * directories and files.  Include after <cmocka.h>. */
#ifndef HULL_TESTS_UNIT_HULL_TEST_H
#define HULL_TESTS_UNIT_HULL_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

/* Asserts that `call` returned 0; on failure prints the call, what it returned and the message
 * of the hull_error_t variable `err` (which the call filled). */
#define assert_hull_ok(call, err)                                                                  \
    do {                                                                                           \
        long _hull_r = (long)(call);                                                               \
        if (_hull_r != 0) {                                                                        \
            print_error("%s returned %ld (%s): %s\n", #call, _hull_r,                              \
                        _hull_r < 0 ? strerror((int)-_hull_r) : "expected 0",                      \
                        hull_error_msg(&(err)));                                                   \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Asserts that `call` failed with -errnum (printing the message when it did not), then frees
 * the error so the next call starts clean. */
#define assert_hull_fails(call, errnum, err)                                                       \
    do {                                                                                           \
        long _hull_r = (long)(call);                                                               \
        if (_hull_r != -(long)(errnum)) {                                                          \
            print_error("%s returned %ld, expected %ld (%s); error: %s\n", #call, _hull_r,         \
                        -(long)(errnum), strerror(errnum),                                         \
                        (err) ? hull_error_msg(&(err)) : "(none)");                                \
            fail();                                                                                \
        }                                                                                          \
        hull_error_free(&(err));                                                                   \
    } while (0)

/* A new empty directory <base>/hull-<tag>-XXXXXX; returns its path (free it).  Fails the test
 * when it cannot be made. */
static inline char *hull_test_tmpdir_under(const char *base, const char *tag)
{
    char *tmpl = xasprintf("%s/hull-%s-XXXXXX", base, tag);
    if (!mkdtemp(tmpl)) {
        print_error("mkdtemp %s: %s\n", tmpl, strerror(errno));
        free(tmpl);
        fail();
    }
    return tmpl;
}

/* Fills out (size bytes) with the path of tests/fixtures/<name>: found from this header's path
 * (make runs from the repo root) or from the binary's location (<repo>/build[/asan]/tests/). */
static inline void hull_test_fixture_dir(const char *name, char *out, size_t size)
{
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(out, size, "%s/../fixtures/%s", dirname(src), name);
    if (access(out, F_OK) == 0)
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *d = dirname(exe);
        for (int up = 0; up < 5; up++) {
            snprintf(out, size, "%s/tests/fixtures/%s", d, name);
            if (access(out, F_OK) == 0)
                return;
            d = dirname(d);
        }
    }
    fail_msg("cannot find tests/fixtures/%s", name);
}

/* hull_test_tmpdir_under /tmp. */
static inline char *hull_test_tmpdir(const char *tag)
{
    return hull_test_tmpdir_under("/tmp", tag);
}

/* hull_test_tmpdir into a fixture's char array of size bytes. */
static inline void hull_test_tmpdir_into(char *buf, size_t size, const char *tag)
{
    char *d = hull_test_tmpdir(tag);
    assert_true(strlen(d) < size);
    memcpy(buf, d, strlen(d) + 1);
    free(d);
}

/* Writes len bytes to path (created or truncated, then given mode) and fsyncs it (its blocks
 * are allocated when this returns).  Fails the test on any error. */
static inline void hull_test_write_data(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        print_error("open %s: %s\n", path, strerror(errno));
        fail();
    }
    ssize_t n = write(fd, data, len);
    int s = fsync(fd);
    close(fd);
    assert_int_equal(n, (ssize_t)len);
    assert_int_equal(s, 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* Writes text to path (created or truncated, then given mode).  Fails the test on any error. */
static inline void hull_test_write_file(const char *path, const char *text, mode_t mode)
{
    hull_test_write_data(path, text, strlen(text), mode);
}

/* hull_test_write_file of dir/name. */
static inline void hull_test_write_at(const char *dir, const char *name, const char *text)
{
    char *p = hull_path_join(dir, name);
    hull_test_write_file(p, text, 0644);
    free(p);
}

#endif
