/* Unit tests for the state store (server/store/record_store.c): atomic saves, reload, crash
 * leftovers, torn and corrupt files set aside, unsafe names refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "server/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct seen {
    char ids[16][80];
    char names[16][80];
    size_t n;
};

static int collect(void *opaque, const char *id, yajl_val doc, hull_error_t *err)
{
    struct seen *s = opaque;
    if (s->n >= 16)
        return hull_error_setx(err, E2BIG, "too many");
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", hull_json_get_string(doc, "name", "?"));
    s->n++;
    if (strcmp(id, "reject") == 0)
        return hull_error_setx(err, EINVAL, "callback refuses %s", id);
    return 0;
}

struct fixture {
    char *dir;
    struct hull_store *store;
};

static int setup(void **state)
{
    struct fixture *f = xmalloc0(sizeof(*f));
    f->dir = hull_test_tmpdir("store");
    hull_error_t err = NULL;
    assert_hull_ok(store_open(f->dir, &f->store, &err), err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    store_close(f->store);
    hull_rm_rf(f->dir, &err);
    hull_error_free(&err);
    free(f->dir);
    free(f);
    return 0;
}

static void save(struct hull_store *s, const char *kind, const char *id, const char *json)
{
    hull_error_t err = NULL;
    int r = store_save(s, kind, id, json, strlen(json), &err);
    if (r < 0)
        fail_msg("save: %s", hull_error_msg(&err));
}

static void test_save_get_remove(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    save(f->store, "pods", "a1", "{\"name\":\"one\"}");
    save(f->store, "pods", "a1", "{\"name\":\"two\"}"); /* replace */
    yajl_val v = NULL;
    assert_hull_ok(store_get(f->store, "pods", "a1", &v, &err), err);
    assert_string_equal(hull_json_get_string(v, "name", NULL), "two");
    yajl_tree_free(v);
    _cleanup_free_ char *path = xasprintf("%s/pods/a1.json", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_hull_ok(store_remove(f->store, "pods", "a1", &err), err);
    assert_hull_ok(store_remove(f->store, "pods", "a1", &err), err); /* idempotent */
    assert_int_equal(store_get(f->store, "pods", "a1", &v, &err), -ENOENT);
    hull_error_free(&err);
}

static void test_unsafe_names_refused(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    const char *bad[] = {"../x", "a/b", "..", ".", "", ".hidden"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(store_save(f->store, "pods", bad[i], "{}", 2, &err), -EINVAL);
        hull_error_free(&err);
        assert_int_equal(store_save(f->store, bad[i], "id", "{}", 2, &err), -EINVAL);
        hull_error_free(&err);
    }
}

static void test_load_in_order(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    save(f->store, "ctrs", "b", "{\"name\":\"B\"}");
    save(f->store, "ctrs", "a", "{\"name\":\"A\"}");
    save(f->store, "other", "z", "{\"name\":\"Z\"}");
    struct seen s = {0};
    size_t loaded = 9, corrupt = 9;
    assert_hull_ok(store_load(f->store, "ctrs", collect, &s, &loaded, &corrupt, &err), err);
    assert_int_equal(loaded, 2);
    assert_int_equal(corrupt, 0);
    assert_string_equal(s.ids[0], "a");
    assert_string_equal(s.names[1], "B");
    /* an empty or missing kind loads nothing */
    memset(&s, 0, sizeof(s));
    assert_hull_ok(store_load(f->store, "none", collect, &s, &loaded, &corrupt, &err), err);
    assert_int_equal(loaded, 0);
}

/* A process dies after writing the temp file and before the rename: the previous version must
 * load, and the leftover must go. */
static void test_crash_between_write_and_rename(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    save(f->store, "pods", "p1", "{\"name\":\"committed\"}");
    _cleanup_free_ char *tmp = xasprintf("%s/pods/.p1.json.tmp", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child "crashes" half way through the new version */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const char *half = "{\"name\":\"uncomm";
        if (fd < 0 || write(fd, half, strlen(half)) < 0)
            _exit(1);
        raise(SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(access(tmp, F_OK), 0);

    struct seen s = {0};
    size_t loaded = 0, corrupt = 0;
    assert_hull_ok(store_load(f->store, "pods", collect, &s, &loaded, &corrupt, &err), err);
    assert_int_equal(loaded, 1);
    assert_int_equal(corrupt, 0);
    assert_string_equal(s.names[0], "committed");
    assert_int_equal(access(tmp, F_OK), -1);
    /* a crash before the first version was ever renamed leaves nothing to load */
    _cleanup_free_ char *tmp2 = xasprintf("%s/pods/.p2.json.tmp", f->dir);
    int fd = open(tmp2, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    memset(&s, 0, sizeof(s));
    assert_hull_ok(store_load(f->store, "pods", collect, &s, &loaded, &corrupt, &err), err);
    assert_int_equal(loaded, 1);
    assert_int_equal(access(tmp2, F_OK), -1);
}

static void write_raw(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_torn_and_corrupt_files_set_aside(void **state)
{
    struct fixture *f = *state;
    hull_error_t err = NULL;
    save(f->store, "pods", "good", "{\"name\":\"good\"}");
    save(f->store, "pods", "reject", "{\"name\":\"r\"}");
    _cleanup_free_ char *torn = xasprintf("%s/pods/torn.json", f->dir);
    _cleanup_free_ char *empty = xasprintf("%s/pods/empty.json", f->dir);
    _cleanup_free_ char *array = xasprintf("%s/pods/array.json", f->dir);
    write_raw(torn, "{\"name\":\"to");
    write_raw(empty, "");
    write_raw(array, "[1,2]");
    struct seen s = {0};
    size_t loaded = 0, corrupt = 0;
    assert_hull_ok(store_load(f->store, "pods", collect, &s, &loaded, &corrupt, &err), err);
    /* good loads; reject is refused by its callback but is not corrupt */
    assert_int_equal(loaded, 1);
    assert_int_equal(corrupt, 3);
    assert_int_equal(access(torn, F_OK), -1);
    assert_int_equal(access(empty, F_OK), -1);
    _cleanup_free_ char *cdir = xasprintf("%s/pods/.corrupt", f->dir);
    _cleanup_closedir_ DIR *d = opendir(cdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    assert_int_equal(n, 3);
    /* a second load does not see them again */
    memset(&s, 0, sizeof(s));
    assert_hull_ok(store_load(f->store, "pods", collect, &s, &loaded, &corrupt, &err), err);
    assert_int_equal(corrupt, 0);
}

int main(void)
{
    hull_log_set_level(HULL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_get_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_write_and_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_corrupt_files_set_aside, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
