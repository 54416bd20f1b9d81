/* Unit tests for server/stats/stats_service.c: the previous CPU sample of every container and pod
 * (nano-cores need the sample before) stays found however many objects a node has, and the
 * table keeps working as it grows past its initial size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "server/server.h"
#include "server/stats/stats.h"

#include <stdio.h>
#include <string.h>

#define N_OBJECTS 6000 /* more than the 4096 the old list kept */

static struct stats_cpu_sample sample(int64_t t_ns, uint64_t usage_ns)
{
    return (struct stats_cpu_sample){.valid = true, .monotonic_ns = t_ns, .usage_ns = usage_ns};
}

static void test_every_object_keeps_its_previous_sample(void **state)
{
    (void)state;
    struct hull_server srv;
    memset(&srv, 0, sizeof(srv));
    hull_error_t err = NULL;
    assert_int_equal(stats_service_init(&srv, &err), 0);
    int64_t t0 = hull_monotonic_ns();
    char key[80];
    uint64_t nc = 0;
    /* the first sample of each object: nothing to compare with */
    for (int i = 0; i < N_OBJECTS; i++) {
        snprintf(key, sizeof(key), "%c/%064d", i % 2 ? 'c' : 'p', i);
        assert_false(stats_service_nano_cores(&srv, key, sample(t0, 1000), &nc));
    }
    /* one second later, each has used i ms of CPU: i * 1e6 nano-cores, found for every one */
    for (int i = 0; i < N_OBJECTS; i++) {
        snprintf(key, sizeof(key), "%c/%064d", i % 2 ? 'c' : 'p', i);
        nc = 0;
        assert_true(stats_service_nano_cores(
            &srv, key, sample(t0 + 1000000000, 1000 + (uint64_t)i * 1000000), &nc));
        assert_int_equal(nc, (uint64_t)i * 1000000);
    }
    /* an over-long key is refused, never truncated into another object's slot */
    char longkey[200];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_false(stats_service_nano_cores(&srv, longkey, sample(t0, 1), &nc));
    assert_false(stats_service_nano_cores(&srv, longkey, sample(t0 + 1000000000, 2), &nc));
    stats_service_fini(&srv);
}

/* A full listing drops the samples of the objects it no longer saw (removed pods and
 * containers): their keys start over, the ones it sampled and the other kind keep theirs. */
static void test_prune_drops_the_samples_of_objects_gone(void **state)
{
    (void)state;
    struct hull_server srv;
    memset(&srv, 0, sizeof(srv));
    hull_error_t err = NULL;
    assert_int_equal(stats_service_init(&srv, &err), 0);
    const int64_t s = 1000000000, t0 = hull_monotonic_ns();
    char key[80];
    uint64_t nc = 0;
    for (int i = 0; i < N_OBJECTS; i++) { /* a churn of containers, and a few pods */
        snprintf(key, sizeof(key), "c/%064d", i);
        stats_service_nano_cores(&srv, key, sample(t0, 1000), &nc);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "p/%d", i);
        stats_service_nano_cores(&srv, key, sample(t0, 1000), &nc);
    }
    /* the next listing sees only the first 10 containers */
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "c/%064d", i);
        assert_true(stats_service_nano_cores(&srv, key, sample(t0 + s, 1000 + 5000000), &nc));
    }
    stats_service_prune(&srv, "c/", t0 + s);
    for (int i = 0; i < N_OBJECTS; i++) {
        snprintf(key, sizeof(key), "c/%064d", i);
        nc = 0;
        bool kept = stats_service_nano_cores(&srv, key, sample(t0 + 2 * s, 1000 + 7000000), &nc);
        if (i < 10) {
            assert_true(kept);
            assert_int_equal(nc, 2000000);
        } else {
            assert_false(kept); /* dropped: this is its first sample again */
        }
    }
    for (int i = 0; i < 10; i++) { /* another prefix: untouched */
        snprintf(key, sizeof(key), "p/%d", i);
        assert_true(stats_service_nano_cores(&srv, key, sample(t0 + s, 1000 + 1000000), &nc));
        assert_int_equal(nc, 1000000);
    }
    stats_service_fini(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_object_keeps_its_previous_sample),
        cmocka_unit_test(test_prune_drops_the_samples_of_objects_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
