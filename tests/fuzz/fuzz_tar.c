/* Layer tarballs (untrusted registry content) through the unpacker (image/image.h):
 * the input is the layer stream itself (plain tar, or gzip/zstd when it starts like one),
 * unpacked into a fresh directory that is removed afterwards.  Nothing may be created outside
 * that directory: a canary next to it must stay untouched. */
#include "tests/fuzz/fuzz.h"
#include "image/image.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>

static char *base, *canary;

static void cleanup(void)
{
    hull_error_t err = NULL;
    if (base && hull_rm_rf(base, &err) < 0)
        hull_error_free(&err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/hull-fuzz-tar-XXXXXX";
    if (!mkdtemp(tmpl))
        abort();
    base = xstrdup(tmpl);
    canary = hull_path_join(base, "canary");
    hull_error_t err = NULL;
    if (hull_mkdir_p(canary, 0755, &err) < 0)
        abort();
    atexit(cleanup);
    return 0;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("layer", MFD_CLOEXEC);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || lseek(fd, 0, SEEK_SET) < 0)
        abort();
    _cleanup_free_ char *layer = hull_path_join(base, "layer");
    if (mkdir(layer, 0755) < 0)
        abort();
    int dirfd = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        abort();
    struct image_unpack_stats st = {0};
    _cleanup_error_ hull_error_t err = NULL;
    int r = image_unpack_layer(fd, dirfd, NULL, &st, &err);
    hull_fuzz_check(r == 0 || err != NULL);
    close(dirfd);
    close(fd);
    hull_error_t rerr = NULL;
    if (hull_rm_rf(layer, &rerr) < 0) {
        fprintf(stderr, "cannot remove %s: %s\n", layer, hull_error_msg(&rerr));
        abort();
    }
    /* nothing escaped: the base holds only the canary, and the canary is empty */
    hull_fuzz_check(dir_is_empty(canary));
    DIR *d = opendir(base);
    if (!d)
        abort();
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        hull_fuzz_check(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                        strcmp(de->d_name, "canary") == 0);
    closedir(d);
    return 0;
}

/* ---- seeds: small ustar archives ------------------------------------------------------------- */

struct tarw {
    uint8_t *d;
    size_t len;
};

static void octal(char *field, size_t width, unsigned long long v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, v);
}

static void entry(struct tarw *t, const char *name, char type, const char *link, const void *body,
                  size_t size, unsigned mode)
{
    uint8_t h[512];
    memset(h, 0, sizeof(h));
    snprintf((char *)h, 100, "%s", name);
    octal((char *)h + 100, 8, mode);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, 1700000000);
    h[156] = (uint8_t)type;
    if (link)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    size_t padded = (size + 511) / 512 * 512;
    t->d = xrealloc(t->d, t->len + 512 + padded);
    memcpy(t->d + t->len, h, 512);
    memset(t->d + t->len + 512, 0, padded);
    if (size)
        memcpy(t->d + t->len + 512, body, size);
    t->len += 512 + padded;
}

static void finish(struct tarw *t, void (*add)(const void *, size_t))
{
    t->d = xrealloc(t->d, t->len + 1024);
    memset(t->d + t->len, 0, 1024);
    t->len += 1024;
    add(t->d, t->len);
}

static void add_gzip(const struct tarw *t, void (*add)(const void *, size_t))
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, t->len);
    uint8_t *out = xmalloc0(cap);
    z.next_in = t->d;
    z.avail_in = (uInt)t->len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    add(out, z.total_out);
    deflateEnd(&z);
    free(out);
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    struct tarw t = {0};
    entry(&t, "etc/", '5', NULL, NULL, 0, 0755);
    entry(&t, "etc/passwd", '0', NULL, "root:x:0:0::/:/bin/sh\n", 22, 0644);
    entry(&t, "bin/", '5', NULL, NULL, 0, 0755);
    entry(&t, "bin/busybox", '0', NULL, "\177ELF", 4, 0755);
    entry(&t, "bin/sh", '1', "bin/busybox", NULL, 0, 0755);
    entry(&t, "bin/ls", '2', "busybox", NULL, 0, 0777);
    entry(&t, "etc/.wh.old", '0', NULL, NULL, 0, 0644);
    entry(&t, "var/.wh..wh..opq", '0', NULL, NULL, 0, 0644);
    struct tarw plain = {xmalloc0(t.len), t.len};
    memcpy(plain.d, t.d, t.len);
    finish(&t, add);
    add(plain.d, plain.len); /* no end-of-archive blocks (umoci) */
    add_gzip(&t, add);
    free(t.d);
    free(plain.d);

    struct tarw bad = {0}; /* escapes the unpacker must refuse */
    entry(&bad, "../escape", '0', NULL, "x", 1, 0644);
    entry(&bad, "link", '2', "/", NULL, 0, 0777);
    entry(&bad, "link/escape", '0', NULL, "x", 1, 0644);
    entry(&bad, "hard", '1', "../../etc/shadow", NULL, 0, 0644);
    entry(&bad, "/abs/file", '0', NULL, "y", 1, 0644);
    entry(&bad, "dev/null", '3', NULL, NULL, 0, 0666);
    entry(&bad, "fifo", '6', NULL, NULL, 0, 0644);
    finish(&bad, add);
    free(bad.d);

    struct tarw pax = {0}; /* a PAX long name */
    char rec[300];
    char longname[200];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    size_t body = strlen(" path=\n") + strlen(longname), total = body + 1;
    while ((size_t)snprintf(NULL, 0, "%zu", total) + body != total) /* the length counts itself */
        total++;
    int n = snprintf(rec, sizeof(rec), "%zu path=%s\n", total, longname);
    entry(&pax, "PaxHeaders/x", 'x', NULL, rec, (size_t)n, 0644);
    entry(&pax, "short", '0', NULL, "z", 1, 0644);
    finish(&pax, add);
    free(pax.d);
}
