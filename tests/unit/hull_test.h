/* Helpers for the C unit tests (cmocka): assertions on functions that return 0 or a negative
 * errno and fill a hull_error_t, printing the error message when they fail.  Include after
 * <cmocka.h> and common/common.h. */
#ifndef HULL_TESTS_UNIT_HULL_TEST_H
#define HULL_TESTS_UNIT_HULL_TEST_H

#include <string.h>

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

#endif
