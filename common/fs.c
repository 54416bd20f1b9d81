/* File-system helpers: atomic writes, bounded reads, mkdir -p, rm -rf. */

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

char *hull_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    if (la == 1 && a[0] == '/')
        return xasprintf("/%s", b);
    return xasprintf("%.*s/%s", (int)la, a, b);
}

int hull_fsync_dir(const char *dir, hull_error_t *err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open dir `%s`", dir);
    if (fsync(fd) < 0)
        return hull_error_set(err, errno, "fsync dir `%s`", dir);
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int hull_write_file_atomic_flags(const char *path, const void *data, size_t len, mode_t mode,
                                 unsigned flags, hull_error_t *err)
{
    _cleanup_free_ char *dup = xstrdup(path);
    const char *dir = dirname(dup);
    _cleanup_free_ char *tmp = NULL;
    {
        _cleanup_free_ char *base_dup = xstrdup(path);
        if (flags & HULL_ATOMIC_PROCESS_TMP)
            tmp = xasprintf("%s/.%s.tmp-%d", dir, basename(base_dup), (int)getpid());
        else
            tmp = xasprintf("%s/.%s.tmp", dir, basename(base_dup));
    }
    bool sync = !(flags & HULL_ATOMIC_NOSYNC);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", tmp);
    if (write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
        int e = errno;
        unlink(tmp);
        return hull_error_set(err, e, "write `%s`", tmp);
    }
    if (close(hull_steal_fd(fd)) < 0) {
        int e = errno;
        unlink(tmp);
        return hull_error_set(err, e, "close `%s`", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return hull_error_set(err, e, "rename `%s` to `%s`", tmp, path);
    }
    return sync ? hull_fsync_dir(dir, err) : 0;
}

int hull_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           hull_error_t *err)
{
    return hull_write_file_atomic_flags(path, data, len, mode, 0, err);
}

int hull_read_file(const char *path, size_t max, char **out, size_t *len, hull_error_t *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", path);
    /* read at most max + 1 bytes: one more than allowed tells an oversized file */
    size_t limit = max + 1, cap = limit < 4096 ? limit : 4096, n = 0;
    _cleanup_free_ char *buf = xmalloc0(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= limit)
                break;
            cap = cap * 2 > limit ? limit : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return hull_error_set(err, errno, "read `%s`", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max)
        return hull_error_setx(err, EFBIG, "`%s` is larger than %zu bytes", path, max);
    buf[n] = '\0';
    if (len)
        *len = n;
    *out = hull_steal(buf);
    return 0;
}

int hull_write_string(const char *path, const char *value, hull_error_t *err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", path);
    if (write_all(fd, value, strlen(value)) < 0)
        return hull_error_set(err, errno, "write `%s` to `%s`", value, path);
    return 0;
}

int hull_mkdir_p(const char *path, mode_t mode, hull_error_t *err)
{
    _cleanup_free_ char *p = xstrdup(path);
    size_t n = strlen(p);
    if (n == 0)
        return hull_error_setx(err, EINVAL, "mkdir: empty path");
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return hull_error_set(err, errno, "mkdir `%s`", p);
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", path);
    if (!S_ISDIR(st.st_mode))
        return hull_error_setx(err, ENOTDIR, "`%s` is not a directory", path);
    return 0;
}

static int rm_rf_at(int dirfd, const char *name, dev_t dev, int depth, hull_error_t *err)
{
    if (depth > 256)
        return hull_error_setx(err, ELOOP, "rm -rf: tree too deep at `%s`", name);
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return hull_error_set(err, errno, "unlink `%s`", name);
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return hull_error_set(err, errno, "open `%s`", name);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", name);
    if (dev != 0 && st.st_dev != dev)
        return hull_error_setx(err, EBUSY, "rm -rf: `%s` is a mount point", name);
    int dfd = dup(fd);
    if (dfd < 0)
        return hull_error_set(err, errno, "dup");
    _cleanup_closedir_ DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return hull_error_set(err, errno, "opendir `%s`", name);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = rm_rf_at(fd, de->d_name, st.st_dev, depth + 1, err);
        if (r < 0)
            return hull_error_wrap(err, "in `%s`", name);
    }
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return hull_error_set(err, errno, "rmdir `%s`", name);
    return 0;
}

int hull_rm_rf(const char *path, hull_error_t *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : hull_error_set(err, errno, "stat `%s`", path);
    _cleanup_free_ char *dup = xstrdup(path);
    _cleanup_free_ char *dup2 = xstrdup(path);
    _cleanup_close_ int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return hull_error_set(err, errno, "open parent of `%s`", path);
    return rm_rf_at(dfd, basename(dup2), S_ISDIR(st.st_mode) ? st.st_dev : 0, 0, err);
}
