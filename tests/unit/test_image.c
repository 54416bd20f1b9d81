/* Unit tests for image/: sha256, reference normalisation, layer unpack (whiteouts, hard links,
 * missing end-of-archive, compression) and one regression test per hostile-layer class of
 * SECURITY.md ("layer unpack writes outside the root"), and the overlay short-name mount. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

/* ---- helpers: build a tar in memory -----------------------------------------------------------
 */
struct tarb {
    struct archive *a;
    char *buf;
    size_t cap;
    size_t used;
};

static void tar_begin(struct tarb *t, int filter)
{
    t->cap = 8 << 20;
    t->buf = malloc(t->cap);
    t->a = archive_write_new();
    archive_write_set_format_pax_restricted(t->a);
    if (filter == 1)
        archive_write_add_filter_gzip(t->a);
    else if (filter == 2)
        archive_write_add_filter_zstd(t->a);
    archive_write_set_bytes_in_last_block(t->a, 1);
    assert_int_equal(archive_write_open_memory(t->a, t->buf, t->cap, &t->used), ARCHIVE_OK);
}

static void tar_add(struct tarb *t, const char *name, mode_t type, mode_t perm, const char *data,
                    const char *link, bool hardlink)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 1000000, 0);
    if (link && hardlink)
        archive_entry_set_hardlink(e, link);
    else if (link)
        archive_entry_set_symlink(e, link);
    if (type == AE_IFREG && data && !hardlink)
        archive_entry_set_size(e, (la_int64_t)strlen(data));
    else
        archive_entry_set_size(e, 0);
    assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
    if (type == AE_IFREG && data && !hardlink)
        archive_write_data(t->a, data, strlen(data));
    archive_entry_free(e);
}

static int tar_fd(struct tarb *t)
{
    archive_write_close(t->a);
    archive_write_free(t->a);
    int fd = memfd_create("layer", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t->buf, t->used), (ssize_t)t->used);
    lseek(fd, 0, SEEK_SET);
    free(t->buf);
    return fd;
}

struct fx {
    char base[64];
    char layer[96];
    char outside[96];
    int dirfd;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    hull_test_tmpdir_into(f->base, sizeof(f->base), "image-test");
    snprintf(f->layer, sizeof(f->layer), "%s/layer", f->base);
    snprintf(f->outside, sizeof(f->outside), "%s/outside", f->base);
    mkdir(f->layer, 0755);
    mkdir(f->outside, 0755);
    f->dirfd = open(f->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close(f->dirfd);
    hull_error_t err = NULL;
    hull_rm_rf(f->base, &err);
    hull_error_free(&err);
    free(f);
    return 0;
}

static int unpack(struct fx *f, struct tarb *t, char **msg)
{
    int fd = tar_fd(t);
    hull_error_t err = NULL;
    int r = image_unpack_layer(fd, f->dirfd, NULL, NULL, &err);
    close(fd);
    if (msg)
        *msg = err ? strdup(err->msg) : NULL;
    hull_error_free(&err);
    return r;
}

static bool exists_in(const char *dir, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* ---- sha256
 * --------------------------------------------------------------------------------------- */
/* The portable implementation, computed in a child that asks for it before any hashing. */
static void generic_digest(const void *data, size_t len, char out[72])
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("HULL_SHA256_GENERIC", "1", 1);
        char d[72];
        image_sha256_digest(data, len, d);
        _exit(write(pfd[1], d, 72) == 72 ? 0 : 1);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], out, 72), 72);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
}

static void test_sha256(void **state)
{
    (void)state;
    /* the portable path first, in children, before this process picks (and caches) one */
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'a', n);
    size_t lens[32];
    char gen[32][72];
    size_t nl = 0;
    lens[nl++] = n;
    for (size_t k = 0; k < 200 && nl < 32; k += 7)
        lens[nl++] = k * 13 + 1;
    for (size_t i = 0; i < nl; i++)
        generic_digest(big, lens[i], gen[i]);

    char d[72];
    image_sha256_digest("", 0, d);
    assert_string_equal(d,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    image_sha256_digest("abc", 3, d);
    assert_string_equal(d,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* multi-block, split updates */
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    struct image_sha256 c;
    image_sha256_init(&c);
    image_sha256_update(&c, m, 10);
    image_sha256_update(&c, m + 10, strlen(m) - 10);
    image_sha256_final_digest(&c, d);
    assert_string_equal(d,
                        "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* 1 MiB of 'a' and odd lengths: both paths agree with each other and the known value */
    image_sha256_digest(big, n, d);
    assert_string_equal(d,
                        "sha256:9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360");
    for (size_t i = 0; i < nl; i++) {
        image_sha256_digest(big, lens[i], d);
        assert_string_equal(d, gen[i]);
    }
    free(big);
}

/* ---- references
 * -------------------------------------------------------------------------------------- */
static void check_ref(const char *in, const char *want)
{
    struct image_ref r;
    hull_error_t err = NULL;
    int rc = image_ref_parse(in, &r, &err);
    if (rc < 0)
        fail_msg("%s: %s", in, err->msg);
    char *s = image_ref_string(&r);
    assert_string_equal(s, want);
    free(s);
    image_ref_free(&r);
}

static void check_bad_ref(const char *in)
{
    struct image_ref r;
    hull_error_t err = NULL;
    assert_int_equal(image_ref_parse(in, &r, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "invalid image reference"));
    hull_error_free(&err);
}

static void test_reference(void **state)
{
    (void)state;
    const char *dg = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char buf[256];
    check_ref("busybox", "docker.io/library/busybox:latest");
    check_ref("busybox:1.36", "docker.io/library/busybox:1.36");
    check_ref("library/busybox", "docker.io/library/busybox:latest");
    check_ref("docker.io/busybox", "docker.io/library/busybox:latest");
    check_ref("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
    check_ref("user/app:v1", "docker.io/user/app:v1");
    check_ref("localhost/app", "localhost/app:latest");
    check_ref("127.0.0.1:5000/a/b/c:t-1.2_x", "127.0.0.1:5000/a/b/c:t-1.2_x");
    check_ref("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9");
    snprintf(buf, sizeof(buf), "busybox@%s", dg);
    char want[256];
    snprintf(want, sizeof(want), "docker.io/library/busybox@%s", dg);
    check_ref(buf, want);
    snprintf(buf, sizeof(buf), "host:5000/x:tag@%s", dg);
    snprintf(want, sizeof(want), "host:5000/x:tag@%s", dg);
    check_ref(buf, want);
    check_ref("a__b/c--d.e", "docker.io/a__b/c--d.e:latest");
    check_bad_ref("");
    check_bad_ref("Busybox");
    check_bad_ref("busybox:");
    check_bad_ref("busybox:bad/tag");
    check_bad_ref("busybox@sha256:123");
    check_bad_ref("busybox@md5:abc");
    check_bad_ref("-bad");
    check_bad_ref("a//b");
    check_bad_ref("host:99999999/x");
    check_bad_ref("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_bad_ref("busybox:.tag");
    assert_true(image_digest_valid(dg));
    assert_false(image_digest_valid(
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
}

/* ---- unpack
 * ----------------------------------------------------------------------------------------- */
static void test_unpack_basic(void **state)
{
    struct fx *f = *state;
    for (int filter = 0; filter < 3; filter++) {
        struct tarb t;
        tar_begin(&t, filter);
        tar_add(&t, "bin/", AE_IFDIR, 0755, NULL, NULL, false);
        tar_add(&t, "bin/busybox", AE_IFREG, 04755, "ELF-ish", NULL, false);
        tar_add(&t, "bin/sh", AE_IFREG, 0755, NULL, "bin/busybox", true);
        tar_add(&t, "./bin/ls", AE_IFREG, 0755, NULL, "./bin/busybox", true);
        tar_add(&t, "/etc/hostname", AE_IFREG, 0644, "box\n", NULL,
                false); /* absolute: contained */
        tar_add(&t, "lib", AE_IFLNK, 0777, NULL, "usr/lib", false);
        tar_add(&t, "abs", AE_IFLNK, 0777, NULL, "/etc/shadow", false);
        tar_add(&t, "deep/a/b/c", AE_IFREG, 0600, "x", NULL, false); /* parents implied */
        tar_add(&t, "gone/.wh.file", AE_IFREG, 0600, "", NULL, false);
        tar_add(&t, "opq/.wh..wh..opq", AE_IFREG, 0600, "", NULL, false);
        tar_add(&t, "dev/null", AE_IFCHR, 0666, NULL, NULL, false);
        char *msg = NULL;
        int r = unpack(f, &t, &msg);
        if (r < 0)
            fail_msg("filter %d: %s", filter, msg);
        free(msg);
        struct stat a, b;
        char p[256], q[256];
        snprintf(p, sizeof(p), "%s/bin/busybox", f->layer);
        snprintf(q, sizeof(q), "%s/bin/sh", f->layer);
        assert_int_equal(lstat(p, &a), 0);
        assert_int_equal(lstat(q, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino); /* hard link kept */
        assert_int_equal(a.st_mode & 07777, 04755);
        assert_true(exists_in(f->layer, "etc/hostname"));
        assert_false(exists_in(f->outside, "hostname"));
        char tgt[64] = "";
        snprintf(p, sizeof(p), "%s/abs", f->layer);
        assert_true(readlink(p, tgt, sizeof(tgt)) > 0);
        assert_string_equal(tgt, "/etc/shadow");
        snprintf(p, sizeof(p), "%s/gone/file", f->layer);
        assert_int_equal(lstat(p, &a), 0);
        assert_true(S_ISCHR(a.st_mode) && a.st_rdev == makedev(0, 0)); /* whiteout */
        snprintf(p, sizeof(p), "%s/opq", f->layer);
        char v[4] = "";
        assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
        assert_int_equal(v[0], 'y');
        assert_false(exists_in(f->layer, "opq/.wh..wh..opq"));
        snprintf(p, sizeof(p), "%s/deep/a/b/c", f->layer);
        assert_int_equal(lstat(p, &a), 0);
        assert_int_equal(a.st_mtime, 1000000);
        /* clean for the next compression */
        hull_error_t err = NULL;
        close(f->dirfd);
        hull_rm_rf(f->layer, &err);
        mkdir(f->layer, 0755);
        f->dirfd = open(f->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
}

/* umoci insert writes tars without the two zero blocks at the end */
/* owners, modes, xattrs, fifos, device numbers and times are kept */
static void test_unpack_metadata(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 1);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "owned");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 02750);
    archive_entry_set_uid(e, 1234);
    archive_entry_set_gid(e, 5678);
    archive_entry_set_mtime(e, 1234567890, 0);
    archive_entry_set_size(e, 2);
    archive_entry_xattr_add_entry(e, "user.note", "hi", 2);
    archive_write_header(t.a, e);
    archive_write_data(t.a, "ok", 2);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, "dir");
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0710);
    archive_entry_set_uid(e, 42);
    archive_entry_set_gid(e, 43);
    archive_entry_set_mtime(e, 1000, 0);
    archive_write_header(t.a, e);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, "dir/fifo");
    archive_entry_set_filetype(e, AE_IFIFO);
    archive_entry_set_perm(e, 0640);
    archive_write_header(t.a, e);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, "dir/tty");
    archive_entry_set_filetype(e, AE_IFCHR);
    archive_entry_set_perm(e, 0620);
    archive_entry_set_rdevmajor(e, 5);
    archive_entry_set_rdevminor(e, 0);
    archive_write_header(t.a, e);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, "dir/sl");
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_symlink(e, "../owned");
    archive_entry_set_uid(e, 7);
    archive_entry_set_gid(e, 8);
    archive_write_header(t.a, e);
    archive_entry_free(e);
    char *msg = NULL;
    if (unpack(f, &t, &msg) < 0)
        fail_msg("%s", msg);
    struct stat st;
    char p[256], v[8] = "";
    snprintf(p, sizeof(p), "%s/owned", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(st.st_mode & 07777, 02750);
    assert_int_equal(st.st_mtime, 1234567890);
    assert_int_equal(getxattr(p, "user.note", v, sizeof(v)), 2);
    snprintf(p, sizeof(p), "%s/dir", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 42);
    assert_int_equal(st.st_mode & 07777, 0710);
    assert_int_equal(st.st_mtime, 1000); /* set after its children were made */
    snprintf(p, sizeof(p), "%s/dir/fifo", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    snprintf(p, sizeof(p), "%s/dir/tty", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(5, 0));
    snprintf(p, sizeof(p), "%s/dir/sl", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(st.st_uid, 7);
    assert_int_equal(st.st_gid, 8);
}

static void test_unpack_no_eof_marker(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, "a", AE_IFREG, 0644, "hello", NULL, false);
    tar_add(&t, "b", AE_IFREG, 0644, "world", NULL, false);
    archive_write_close(t.a);
    archive_write_free(t.a);
    /* strip trailing zero blocks */
    while (t.used >= 512) {
        bool zero = true;
        for (size_t i = t.used - 512; i < t.used; i++)
            if (t.buf[i]) {
                zero = false;
                break;
            }
        if (!zero)
            break;
        t.used -= 512;
    }
    int fd = memfd_create("layer", MFD_CLOEXEC);
    assert_int_equal(write(fd, t.buf, t.used), (ssize_t)t.used);
    lseek(fd, 0, SEEK_SET);
    char d[72];
    image_sha256_digest(t.buf, t.used, d);
    free(t.buf);
    hull_error_t err = NULL;
    int r = image_unpack_layer(fd, f->dirfd, d, NULL, &err);
    if (r < 0)
        fail_msg("%s", err->msg);
    close(fd);
    assert_true(exists_in(f->layer, "a"));
    assert_true(exists_in(f->layer, "b"));
}

/* umoci insert ends the stream right after the last file's data: no padding either */
static void test_unpack_no_padding(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, "a", AE_IFREG, 0644, "hello", NULL, false);
    tar_add(&t, "b", AE_IFREG, 0644, "world", NULL, false);
    archive_write_close(t.a);
    archive_write_free(t.a);
    /* pax restricted with plain names: two 512-byte headers, data of a padded, data of b */
    size_t len = 512 + 512 + 512 + 5;
    assert_true(t.used >= len);
    int fd = memfd_create("layer", MFD_CLOEXEC);
    assert_int_equal(write(fd, t.buf, len), (ssize_t)len);
    lseek(fd, 0, SEEK_SET);
    char d[72];
    image_sha256_digest(t.buf, len, d);
    free(t.buf);
    hull_error_t err = NULL;
    int r = image_unpack_layer(fd, f->dirfd, d, NULL, &err);
    if (r < 0)
        fail_msg("%s", err->msg);
    close(fd);
    char p[256];
    snprintf(p, sizeof(p), "%s/b", f->layer);
    char *data = NULL;
    assert_hull_ok(hull_read_file(p, 100, &data, NULL, &err), err);
    assert_string_equal(data, "world");
    free(data);
}

static void test_unpack_diff_id_mismatch(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 1);
    tar_add(&t, "a", AE_IFREG, 0644, "hello", NULL, false);
    int fd = tar_fd(&t);
    hull_error_t err = NULL;
    int r = image_unpack_layer(
        fd, f->dirfd, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        NULL, &err);
    close(fd);
    assert_int_equal(r, -EILSEQ);
    assert_non_null(strstr(err->msg, "diff id"));
    hull_error_free(&err);
}

static void test_unpack_size_cap(void **state)
{
    /* 10 + 10 bytes fit a 25-byte cap; the third file would cross it: EFBIG naming it, and
     * it is never created */
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 1);
    tar_add(&t, "a", AE_IFREG, 0644, "0123456789", NULL, false);
    tar_add(&t, "b", AE_IFREG, 0644, "0123456789", NULL, false);
    tar_add(&t, "c", AE_IFREG, 0644, "0123456789", NULL, false);
    int fd = tar_fd(&t);
    hull_error_t err = NULL;
    struct image_unpack_stats st = {0};
    int r = image_unpack_layer_capped(fd, f->dirfd, NULL, 25, &st, &err);
    close(fd);
    assert_int_equal(r, -EFBIG);
    assert_non_null(strstr(err->msg, "25-byte cap"));
    assert_non_null(strstr(err->msg, "\"c\""));
    hull_error_free(&err);
    assert_true(exists_in(f->layer, "b"));
    assert_false(exists_in(f->layer, "c"));
    /* the same layer within a 30-byte cap */
    tar_begin(&t, 1);
    tar_add(&t, "d", AE_IFREG, 0644, "0123456789", NULL, false);
    tar_add(&t, "e", AE_IFREG, 0644, "0123456789", NULL, false);
    tar_add(&t, "g", AE_IFREG, 0644, "0123456789", NULL, false);
    fd = tar_fd(&t);
    r = image_unpack_layer_capped(fd, f->dirfd, NULL, 30, &st, &err);
    close(fd);
    assert_int_equal(r, 0);
    assert_int_equal(st.bytes, 30);
}

/* Empty entries cost inodes, not bytes: a layer of many empty files still meets the cap
 * (one 4 KiB block charged per entry, plus 1024 entries of slack). */
static void test_unpack_entry_cap(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 1);
    char name[32];
    for (int i = 0; i < 1100; i++) {
        snprintf(name, sizeof(name), "empty%d", i);
        tar_add(&t, name, AE_IFREG, 0644, "", NULL, false);
    }
    int fd = tar_fd(&t);
    hull_error_t err = NULL;
    struct image_unpack_stats st = {0};
    int r = image_unpack_layer_capped(fd, f->dirfd, NULL, 8192, &st, &err);
    close(fd);
    assert_int_equal(r, -EFBIG);
    assert_non_null(strstr(err->msg, "more than 1026 entries"));
    hull_error_free(&err);
    assert_false(exists_in(f->layer, "empty1099"));
    /* the same layer with a cap that allows it */
    tar_begin(&t, 1);
    for (int i = 0; i < 1100; i++) {
        snprintf(name, sizeof(name), "ok%d", i);
        tar_add(&t, name, AE_IFREG, 0644, "", NULL, false);
    }
    fd = tar_fd(&t);
    r = image_unpack_layer_capped(fd, f->dirfd, NULL, 4096 * 100, &st, &err);
    close(fd);
    assert_int_equal(r, 0);
}

/* The image budget is shared by the layers of one image: each file costs its size plus one
 * 4 KiB entry; the file that would overdraw it fails with EFBIG before it is written. */
static void test_unpack_image_budget(void **state)
{
    struct fx *f = *state;
    int64_t budget = 2 * (4096 + 100) + 50; /* two 100-byte files, not a third */
    struct image_unpack_limits lim = {.image_budget = &budget};
    struct tarb t;
    tar_begin(&t, 1);
    char data[101];
    memset(data, 'x', 100);
    data[100] = '\0';
    tar_add(&t, "one", AE_IFREG, 0644, data, NULL, false);
    int fd = tar_fd(&t);
    hull_error_t err = NULL;
    struct image_unpack_stats st = {0};
    assert_int_equal(image_unpack_layer_limited(fd, f->dirfd, NULL, &lim, &st, &err), 0);
    close(fd);
    tar_begin(&t, 1);
    tar_add(&t, "two", AE_IFREG, 0644, data, NULL, false);
    tar_add(&t, "three", AE_IFREG, 0644, data, NULL, false);
    fd = tar_fd(&t);
    int r = image_unpack_layer_limited(fd, f->dirfd, NULL, &lim, &st, &err);
    close(fd);
    assert_int_equal(r, -EFBIG);
    assert_non_null(strstr(err->msg, "max_image_size"));
    assert_non_null(strstr(err->msg, "\"three\""));
    hull_error_free(&err);
    assert_true(exists_in(f->layer, "two"));
    assert_false(exists_in(f->layer, "three"));
}

/* A free-space floor larger than the filesystem refuses the first file with ENOSPC; an
 * abort callback that says stop ends the unpack with ECANCELED. */
static bool always(void *arg)
{
    (*(int *)arg)++;
    return true;
}

static void test_unpack_min_free_and_abort(void **state)
{
    struct fx *f = *state;
    struct image_unpack_limits lim = {.min_free = UINT64_MAX / 4};
    struct tarb t;
    tar_begin(&t, 1);
    tar_add(&t, "big", AE_IFREG, 0644, "0123456789", NULL, false);
    int fd = tar_fd(&t);
    hull_error_t err = NULL;
    int r = image_unpack_layer_limited(fd, f->dirfd, NULL, &lim, NULL, &err);
    close(fd);
    assert_int_equal(r, -ENOSPC);
    assert_non_null(strstr(err->msg, "image_fs_min_free"));
    hull_error_free(&err);
    assert_false(exists_in(f->layer, "big"));
    int calls = 0;
    struct image_unpack_limits ab = {.abort = always, .abort_arg = &calls};
    tar_begin(&t, 1);
    tar_add(&t, "never", AE_IFREG, 0644, "0123456789", NULL, false);
    fd = tar_fd(&t);
    r = image_unpack_layer_limited(fd, f->dirfd, NULL, &ab, NULL, &err);
    close(fd);
    assert_int_equal(r, -ECANCELED);
    assert_true(calls > 0);
    hull_error_free(&err);
    assert_false(exists_in(f->layer, "never"));
}

/* SECURITY.md: layer unpack writes outside the root — one test per hostile entry kind. */
static void test_hostile_dotdot(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, "../outside/pwned", AE_IFREG, 0644, "x", NULL, false);
    char *msg = NULL;
    assert_true(unpack(f, &t, &msg) < 0);
    assert_non_null(strstr(msg, "escapes"));
    free(msg);
    assert_int_equal(count_entries(f->outside), 0);
    tar_begin(&t, 0);
    tar_add(&t, "a/../../outside/pwned2", AE_IFREG, 0644, "x", NULL, false);
    assert_true(unpack(f, &t, NULL) < 0);
    assert_int_equal(count_entries(f->outside), 0);
}

static void test_hostile_symlink_parent(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    char target[128];
    tar_begin(&t, 0);
    snprintf(target, sizeof(target), "%s", f->outside);
    tar_add(&t, "escape", AE_IFLNK, 0777, NULL, target, false); /* absolute, to the host dir */
    tar_add(&t, "escape/pwned", AE_IFREG, 0644, "x", NULL, false);
    char *msg = NULL;
    assert_true(unpack(f, &t, &msg) < 0);
    assert_non_null(strstr(msg, "symbolic link"));
    free(msg);
    assert_int_equal(count_entries(f->outside), 0);
    /* relative variant */
    tar_begin(&t, 0);
    tar_add(&t, "rel", AE_IFLNK, 0777, NULL, "../outside", false);
    tar_add(&t, "rel/pwned", AE_IFREG, 0644, "x", NULL, false);
    assert_true(unpack(f, &t, NULL) < 0);
    assert_int_equal(count_entries(f->outside), 0);
    /* a directory entry through the link */
    tar_begin(&t, 0);
    tar_add(&t, "rel2", AE_IFLNK, 0777, NULL, "../outside", false);
    tar_add(&t, "rel2/sub/", AE_IFDIR, 0755, NULL, NULL, false);
    assert_true(unpack(f, &t, NULL) < 0);
    assert_int_equal(count_entries(f->outside), 0);
}

static void test_hostile_hardlink(void **state)
{
    struct fx *f = *state;
    char victim[160];
    snprintf(victim, sizeof(victim), "%s/victim", f->outside);
    int vfd = open(victim, O_CREAT | O_WRONLY, 0600);
    close(vfd);
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, "hl", AE_IFREG, 0644, NULL, "../outside/victim", true);
    char *msg = NULL;
    assert_true(unpack(f, &t, &msg) < 0);
    assert_non_null(strstr(msg, "escapes"));
    free(msg);
    /* absolute target: contained -> must not exist inside the layer, so refused */
    tar_begin(&t, 0);
    tar_add(&t, "hl2", AE_IFREG, 0644, NULL, victim, true);
    assert_true(unpack(f, &t, NULL) < 0);
    /* through a symlink to outside */
    tar_begin(&t, 0);
    tar_add(&t, "sl", AE_IFLNK, 0777, NULL, f->outside, false);
    tar_add(&t, "hl3", AE_IFREG, 0644, NULL, "sl/victim", true);
    assert_true(unpack(f, &t, NULL) < 0);
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_nlink, 1); /* never linked */
}

/* containerd CVE-2021-32760: metadata applied through a symlink. */
static void test_hostile_chmod_through_symlink(void **state)
{
    struct fx *f = *state;
    char victim[160];
    snprintf(victim, sizeof(victim), "%s/victim", f->outside);
    int vfd = open(victim, O_CREAT | O_WRONLY, 0600);
    close(vfd);
    chmod(victim, 0600);
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, "link", AE_IFLNK, 0777, NULL, victim, false);
    tar_add(&t, "dirlink", AE_IFLNK, 0777, NULL, f->outside, false);
    /* a second entry for the same name as a directory must replace the link, not follow it */
    tar_add(&t, "link2", AE_IFLNK, 0777, NULL, victim, false);
    tar_add(&t, "link2", AE_IFREG, 04777, "over", NULL, false);
    char *msg = NULL;
    int r = unpack(f, &t, &msg);
    if (r < 0)
        fail_msg("%s", msg);
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(stat(f->outside, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    char p[256];
    snprintf(p, sizeof(p), "%s/link2", f->layer);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void test_hostile_whiteout_and_xattr(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 0);
    tar_add(&t, ".wh..", AE_IFREG, 0644, "", NULL, false);
    assert_true(unpack(f, &t, NULL) < 0);
    /* whiteout through a symlinked parent */
    tar_begin(&t, 0);
    tar_add(&t, "sl", AE_IFLNK, 0777, NULL, f->outside, false);
    tar_add(&t, "sl/.wh.x", AE_IFREG, 0644, "", NULL, false);
    assert_true(unpack(f, &t, NULL) < 0);
    assert_int_equal(count_entries(f->outside), 0);
    /* overlay xattrs from the image are dropped */
    tar_begin(&t, 0);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "d");
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_xattr_add_entry(e, "trusted.overlay.redirect", "/etc", 4);
    archive_entry_xattr_add_entry(e, "user.ok", "1", 1);
    archive_write_header(t.a, e);
    archive_entry_free(e);
    char *msg = NULL;
    int r = unpack(f, &t, &msg);
    if (r < 0)
        fail_msg("%s", msg);
    char p[256], v[16];
    snprintf(p, sizeof(p), "%s/d", f->layer);
    assert_true(getxattr(p, "trusted.overlay.redirect", v, sizeof(v)) < 0);
    assert_int_equal(getxattr(p, "user.ok", v, sizeof(v)), 1);
}

static void test_hostile_uid_range(void **state)
{
    struct fx *f = *state;
    struct tarb t;
    tar_begin(&t, 0);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "f");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_uid(e, 4294967296LL); /* 2^32: would wrap to 0 */
    archive_entry_set_size(e, 0);
    archive_write_header(t.a, e);
    archive_entry_free(e);
    char *msg = NULL;
    assert_true(unpack(f, &t, &msg) < 0);
    assert_non_null(strstr(msg, "out of range"));
    free(msg);
}

/* Random hostile archives (names with "..", absolute paths, links in and out of the layer,
 * entries under links, whiteouts, repeated names): nothing outside the layer ever changes. */
static void test_hostile_fuzz(void **state)
{
    struct fx *f = *state;
    char sentinel[160];
    snprintf(sentinel, sizeof(sentinel), "%s/sentinel", f->outside);
    int sfd = open(sentinel, O_CREAT | O_WRONLY, 0600);
    assert_int_equal(write(sfd, "keep", 4), 4);
    close(sfd);
    struct stat before;
    assert_int_equal(stat(sentinel, &before), 0);
    const char *comps[] = {"a",     "b",     "..",           ".",        "",        "link",
                           "dlink", ".wh.a", ".wh..wh..opq", "sentinel", "outside", "layer"};
    char abs_out[160], abs_sent[200];
    snprintf(abs_out, sizeof(abs_out), "%s", f->outside);
    snprintf(abs_sent, sizeof(abs_sent), "%s", sentinel);
    const char *targets[] = {"/",     "..",     "../..", "../outside", "../outside/sentinel",
                             abs_out, abs_sent, "a",     "link",       "dlink/sentinel",
                             "a/b",   ".."};
    unsigned seed = 12345;
    int refused = 0, accepted = 0;
    for (int iter = 0; iter < 400; iter++) {
        struct tarb t;
        tar_begin(&t, iter % 2);
        int n = 2 + (int)(rand_r(&seed) % 8);
        for (int i = 0; i < n; i++) {
            char name[256] = "";
            int depth = 1 + (int)(rand_r(&seed) % 4);
            if (rand_r(&seed) % 5 == 0)
                strcat(name, "/");
            for (int k = 0; k < depth; k++) {
                if (k)
                    strcat(name, "/");
                strcat(name, comps[rand_r(&seed) % (sizeof(comps) / sizeof(comps[0]))]);
            }
            if (name[0] == '\0')
                strcpy(name, "x");
            const char *target = targets[rand_r(&seed) % (sizeof(targets) / sizeof(targets[0]))];
            switch (rand_r(&seed) % 6) {
            case 0:
                tar_add(&t, name, AE_IFDIR, 0777, NULL, NULL, false);
                break;
            case 1:
                tar_add(&t, name, AE_IFLNK, 0777, NULL, target, false);
                break;
            case 2:
                tar_add(&t, name, AE_IFREG, 0777, NULL, target, true);
                break;
            case 3:
                tar_add(&t, name, AE_IFIFO, 0666, NULL, NULL, false);
                break;
            default:
                tar_add(&t, name, AE_IFREG, 04777, "pwned", NULL, false);
                break;
            }
        }
        if (unpack(f, &t, NULL) < 0)
            refused++;
        else
            accepted++;
        /* the outside never changes */
        struct stat now;
        assert_int_equal(stat(sentinel, &now), 0);
        assert_int_equal(now.st_mode, before.st_mode);
        assert_int_equal(now.st_size, 4);
        assert_int_equal(now.st_nlink, 1);
        assert_int_equal(now.st_uid, before.st_uid);
        assert_int_equal(count_entries(f->outside), 1);
        assert_int_equal(count_entries(f->base), 2);
        /* fresh layer dir for the next round */
        hull_error_t err = NULL;
        close(f->dirfd);
        assert_hull_ok(hull_rm_rf(f->layer, &err), err);
        mkdir(f->layer, 0755);
        f->dirfd = open(f->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    assert_true(refused > 0);
    assert_true(accepted > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_reference),
        cmocka_unit_test_setup_teardown(test_unpack_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_no_eof_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_no_padding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_diff_id_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_dotdot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_symlink_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_hardlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_chmod_through_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_whiteout_and_xattr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_uid_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_entry_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_image_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_min_free_and_abort, setup, teardown),
    };
    return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
