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

int hull_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           hull_error_t *err)
{
    _cleanup_free_ char *dup = xstrdup(path);
    const char *dir = dirname(dup);
    _cleanup_free_ char *tmp = NULL;
    {
        _cleanup_free_ char *base_dup = xstrdup(path);
        tmp = xasprintf("%s/.%s.tmp", dir, basename(base_dup));
    }
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", tmp);
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
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
    return hull_fsync_dir(dir, err);
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

/* One directory on the way down: its name in its parent and its identity, so that
 * climbing back with ".." can be checked against what was entered. */
struct rm_frame {
    char *name;
    dev_t dev;
    ino_t ino;
};

/* Opens the directory `name` under dirfd without following symlinks and refuses other
 * file systems (a mount point below the tree stays, as rmdir of it would fail anyway). */
static int rm_open_dir(int dirfd, const char *name, dev_t dev, struct stat *st, hull_error_t *err)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : hull_error_set(err, errno, "open `%s`", name);
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return hull_error_set(err, e, "stat `%s`", name);
    }
    if (dev != 0 && st->st_dev != dev) {
        close(fd);
        return hull_error_setx(err, EBUSY, "rm -rf: `%s` is a mount point", name);
    }
    return fd;
}

/* Removes every non-directory entry of fd; returns 1 and the name of the first
 * subdirectory found (to descend into), 0 when the directory is now empty. */
static int rm_scan(int fd, char **subdir, hull_error_t *err)
{
    int dfd = dup(fd);
    if (dfd < 0)
        return hull_error_set(err, errno, "dup");
    _cleanup_closedir_ DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return hull_error_set(err, errno, "opendir");
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_type != DT_DIR && unlinkat(fd, de->d_name, 0) == 0)
            continue;
        if (de->d_type != DT_DIR && errno != EISDIR && errno != EPERM && errno != ENOENT)
            return hull_error_set(err, errno, "unlink `%s`", de->d_name);
        if (de->d_type == DT_DIR || errno != ENOENT) {
            *subdir = xstrdup(de->d_name);
            return 1;
        }
        errno = 0;
    }
    if (errno != 0)
        return hull_error_set(err, errno, "readdir");
    return 0;
}

/* Iterative rm -rf of name under dirfd: one directory fd open at a time (the way back up
 * is "..", checked against the recorded device and inode), no depth or path length limit. */
static int rm_rf_at(int dirfd, const char *name, dev_t dev, hull_error_t *err)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return hull_error_set(err, errno, "unlink `%s`", name);
    struct stat st;
    _cleanup_close_ int fd = rm_open_dir(dirfd, name, dev, &st, err);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    dev = st.st_dev;
    size_t depth = 0, cap = 16;
    struct rm_frame *stack = xmalloc0(cap * sizeof(*stack));
    stack[depth++] = (struct rm_frame){xstrdup(name), st.st_dev, st.st_ino};
    int r = 0;
    while (depth > 0) {
        char *sub = NULL;
        r = rm_scan(fd, &sub, err);
        if (r < 0)
            break;
        if (r == 1) {
            int cfd = rm_open_dir(fd, sub, dev, &st, err);
            if (cfd == -ENOENT) {
                free(sub);
                continue;
            }
            if (cfd < 0) {
                free(sub);
                r = hull_error_wrap(err, "rm -rf `%s` (depth %zu)", name, depth);
                break;
            }
            close(fd);
            fd = cfd;
            if (depth == cap) {
                cap *= 2;
                stack = xrealloc(stack, cap * sizeof(*stack));
            }
            stack[depth++] = (struct rm_frame){sub, st.st_dev, st.st_ino};
            continue;
        }
        /* fd is empty: climb to its parent and remove it there */
        struct rm_frame *top = &stack[depth - 1];
        int pfd;
        if (depth == 1) {
            pfd = -1;
        } else {
            pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (pfd < 0) {
                r = hull_error_set(err, errno, "rm -rf `%s`: open parent of `%s`", name, top->name);
                break;
            }
            struct stat pst;
            if (fstat(pfd, &pst) < 0 || pst.st_dev != top[-1].dev || pst.st_ino != top[-1].ino) {
                close(pfd);
                r = hull_error_setx(err, EXDEV, "rm -rf `%s`: tree moved during removal", name);
                break;
            }
        }
        close(fd);
        fd = pfd;
        if (unlinkat(depth == 1 ? dirfd : pfd, top->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
            r = hull_error_set(err, errno, "rm -rf `%s`: rmdir `%s` (depth %zu)", name, top->name,
                               depth - 1);
            break;
        }
        free(top->name);
        top->name = NULL;
        depth--;
    }
    for (size_t i = 0; i < depth; i++)
        free(stack[i].name);
    free(stack);
    return r < 0 ? r : 0;
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
    return rm_rf_at(dfd, basename(dup2), S_ISDIR(st.st_mode) ? st.st_dev : 0, err);
}
