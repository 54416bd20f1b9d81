/* Unit tests for the image store without a registry: a store laid out on disk is reloaded,
 * an image of 130 layers is mounted with the short lowerdir names in one real overlay mount,
 * and layers held by a container outlive the removed image until released. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define NLAYERS 130

static char base[64];
static char diff_ids[NLAYERS][72];
static char image_id[72];

static void mkdirs(const char *path)
{
    hull_error_t err = NULL;
    assert_hull_ok(hull_mkdir_p(path, 0755, &err), err);
}

/* Lays out <base>/images as a pull would have left it. */
static void build_store(void)
{
    char p[512], q[600];
    snprintf(p, sizeof(p), "%s/images/blobs/sha256", base);
    mkdirs(p);
    snprintf(p, sizeof(p), "%s/images/images", base);
    mkdirs(p);
    struct hull_json_writer cfg;
    hull_jw_init(&cfg, false);
    hull_jw_begin_object(&cfg);
    hull_jw_key(&cfg, "config");
    hull_jw_begin_object(&cfg);
    hull_jw_kv_string(&cfg, "User", "0");
    hull_jw_kv_string(&cfg, "WorkingDir", "/a/../../w");
    hull_jw_key(&cfg, "Volumes");
    hull_jw_begin_object(&cfg);
    hull_jw_key(&cfg, "/../../etc/");
    hull_jw_begin_object(&cfg);
    hull_jw_end_object(&cfg);
    hull_jw_end_object(&cfg);
    hull_jw_end_object(&cfg);
    hull_jw_key(&cfg, "rootfs");
    hull_jw_begin_object(&cfg);
    hull_jw_kv_string(&cfg, "type", "layers");
    hull_jw_key(&cfg, "diff_ids");
    hull_jw_begin_array(&cfg);
    for (int i = 0; i < NLAYERS; i++) {
        char content[32];
        snprintf(content, sizeof(content), "layer-%d", i);
        image_sha256_digest(content, strlen(content), diff_ids[i]);
        hull_jw_string(&cfg, diff_ids[i]);
        snprintf(p, sizeof(p), "%s/images/layers/%.64s/diff", base, diff_ids[i] + 7);
        mkdirs(p);
        snprintf(q, sizeof(q), "%s/f%d", p, i);
        hull_test_write_file(q, content, 0644);
        snprintf(q, sizeof(q), "%s/common", p);
        hull_test_write_file(q, content, 0644);
        snprintf(p, sizeof(p), "%s/images/layers/%.64s/layer.json", base, diff_ids[i] + 7);
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"diff_id\":\"%.71s\",\"short\":\"S%08dXX\",\"size\":10,\"entries\":2}",
                 diff_ids[i], i);
        hull_test_write_file(p, json, 0644);
    }
    hull_jw_end_array(&cfg);
    hull_jw_end_object(&cfg);
    hull_jw_end_object(&cfg);
    size_t len;
    char *cj = hull_jw_finish(&cfg, &len);
    hull_jw_free(&cfg);
    image_sha256_digest(cj, len, image_id);
    snprintf(p, sizeof(p), "%s/images/blobs/sha256/%s", base, image_id + 7);
    hull_test_write_file(p, cj, 0644);
    free(cj);

    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "id", image_id);
    hull_jw_kv_string(&w, "manifest_digest", image_id); /* any valid digest */
    hull_jw_key(&w, "repo_tags");
    hull_jw_begin_array(&w);
    hull_jw_string(&w, "example.com/deep:latest");
    hull_jw_end_array(&w);
    hull_jw_key(&w, "layers");
    hull_jw_begin_array(&w);
    for (int i = 0; i < NLAYERS; i++) {
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "digest", diff_ids[i]);
        hull_jw_kv_string(&w, "diff_id", diff_ids[i]);
        hull_jw_kv_int(&w, "size", 10);
        hull_jw_end_object(&w);
    }
    hull_jw_end_array(&w);
    hull_jw_kv_int(&w, "size", 1300);
    hull_jw_end_object(&w);
    char *rec = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    snprintf(p, sizeof(p), "%s/images/images/%s.json", base, image_id + 7);
    hull_test_write_file(p, rec, 0644);
    free(rec);
}

static int setup(void **state)
{
    hull_test_tmpdir_into(base, sizeof(base), "image-store");
    build_store();
    *state = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hull_error_t err = NULL;
    hull_rm_rf(base, &err);
    hull_error_free(&err);
    return 0;
}

static void test_reload_and_info(void **state)
{
    (void)state;
    struct image_store *s = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    struct image_info **list = NULL;
    size_t n = 0;
    assert_hull_ok(image_list(s, NULL, &list, &n, &err), err);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, image_id);
    assert_true(list[0]->has_uid);
    assert_int_equal(list[0]->uid, 0);
    /* image-supplied paths are container paths, cleaned and confined */
    assert_string_equal(list[0]->working_dir, "/w");
    assert_string_equal(list[0]->volumes[0], "/etc");
    image_info_list_free(list, n);
    struct image_info *info = NULL;
    assert_hull_ok(image_resolve(s, "example.com/deep", &info, &err), err);
    assert_int_equal(info->n_layers, NLAYERS);
    image_info_free(info);
    assert_hull_fails(image_resolve(s, "example.com/deep:other", &info, &err), ENOENT, err);
    image_store_close(s);
}

static void test_overlay_130_layers(void **state)
{
    (void)state;
    struct image_store *s = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    char **sn = NULL, **ap = NULL;
    assert_hull_ok(image_lowerdirs(s, image_id, &sn, &ap, &err), err);
    size_t n = 0, total = 0;
    while (sn[n]) {
        assert_int_equal(strncmp(sn[n], "l/", 2), 0);
        total += strlen(sn[n]) + 1;
        n++;
    }
    assert_int_equal(n, NLAYERS);
    assert_non_null(strstr(ap[0], diff_ids[NLAYERS - 1] + 7)); /* topmost first */
    /* the absolute paths alone would not fit one page of mount options */
    size_t abs_total = 0;
    for (size_t i = 0; i < n; i++)
        abs_total += strlen(ap[i]) + 1;
    assert_true(abs_total > 4096);
    assert_true(total < 2000);
    hull_strv_free(sn);
    hull_strv_free(ap);

    char upper[128], work[128], merged[128], p[400];
    snprintf(upper, sizeof(upper), "%s/upper", base);
    snprintf(work, sizeof(work), "%s/work", base);
    snprintf(merged, sizeof(merged), "%s/merged", base);
    mkdir(upper, 0755);
    mkdir(work, 0755);
    mkdir(merged, 0755);
    int r = image_overlay_mount(s, image_id, upper, work, merged, NULL, &err);
    if (r < 0)
        fail_msg("%s", err->msg);
    char *data = NULL;
    snprintf(p, sizeof(p), "%s/common", merged);
    assert_hull_ok(hull_read_file(p, 100, &data, NULL, &err), err);
    char want[32];
    snprintf(want, sizeof(want), "layer-%d", NLAYERS - 1);
    assert_string_equal(data, want);
    free(data);
    for (int i = 0; i < NLAYERS; i += 43) {
        snprintf(p, sizeof(p), "%s/f%d", merged, i);
        assert_int_equal(access(p, F_OK), 0);
    }
    assert_int_equal(umount2(merged, MNT_DETACH), 0);
    image_store_close(s);
}

static size_t count_links(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/images/l", base);
    DIR *d = opendir(p);
    size_t links = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        links += de->d_name[0] != '.';
    closedir(d);
    return links;
}

static size_t count_images(struct image_store *s)
{
    struct image_info **list = NULL;
    size_t n = 0;
    hull_error_t err = NULL;
    assert_hull_ok(image_list(s, NULL, &list, &n, &err), err);
    image_info_list_free(list, n);
    return n;
}

static void test_held_layers_outlive_removal(void **state)
{
    (void)state;
    struct image_store *s = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    assert_hull_ok(image_acquire(s, image_id, &err), err);
    bool removed = false;
    assert_hull_ok(image_remove(s, "example.com/deep:latest", &removed, &err), err);
    assert_true(removed);
    assert_int_equal(count_images(s), 0); /* hidden */
    struct image_info *info = NULL;
    assert_hull_fails(image_resolve(s, image_id, &info, &err), ENOENT, err);
    assert_hull_ok(image_remove(s, "example.com/deep:latest", &removed, &err), err);
    assert_false(removed); /* idempotent */
    char p[512];
    snprintf(p, sizeof(p), "%s/images/layers/%.64s", base, diff_ids[0] + 7);
    assert_int_equal(access(p, F_OK), 0); /* still used by a container */

    /* restart: the container finds its image by id again */
    image_store_close(s);
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    assert_int_equal(count_images(s), 0);
    assert_hull_ok(image_acquire(s, image_id, &err), err);
    image_gc(s); /* held: kept */
    char **sn = NULL;
    assert_hull_ok(image_lowerdirs(s, image_id, &sn, NULL, &err), err);
    hull_strv_free(sn);
    assert_int_equal(access(p, F_OK), 0);
    image_release(s, image_id); /* last user: record and layers go */
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(count_links(), 0);
    image_store_close(s);
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    assert_hull_fails(image_lowerdirs(s, image_id, &sn, NULL, &err), ENOENT, err);
    image_store_close(s);
}

/* a hidden image whose containers went away while hulld was down goes at image_gc() */
static void test_gc_after_restart(void **state)
{
    (void)state;
    struct image_store *s = NULL;
    hull_error_t err = NULL;
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    assert_hull_ok(image_acquire(s, image_id, &err), err);
    assert_hull_ok(image_remove(s, image_id, NULL, &err), err);
    image_store_close(s);
    assert_hull_ok(image_store_open(base, NULL, &s, &err), err);
    char p[512];
    snprintf(p, sizeof(p), "%s/images/layers/%.64s", base, diff_ids[0] + 7);
    assert_int_equal(access(p, F_OK), 0);
    image_gc(s);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/images/images/%.64s.json", base, image_id + 7);
    assert_int_equal(access(p, F_OK), -1);
    image_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reload_and_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_130_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_layers_outlive_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_after_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("image_store", tests, NULL, NULL);
}
