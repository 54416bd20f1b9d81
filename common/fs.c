/* File-system helpers: atomic writes, bounded reads, mkdir -p, rm -rf. */

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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

/* Directory streams kept open: those of the deepest levels below the current one.  Going up
 * past them, a parent is reopened through ".." and read again from its start. */
#define RM_KEEP_OPEN 32

/* One directory on the way down: its name in its parent and its identity, so that climbing
 * back with ".." can be checked against what was entered; d is its open stream or NULL. */
struct rm_frame {
    char *name;
    dev_t dev;
    ino_t ino;
    DIR *d;
};

/* openat(O_NOFOLLOW) of a directory that also refuses a mount point (EXDEV): a bind mount of
 * the same file system has the tree's st_dev, so only the kernel's mount check tells it. */
static int rm_openat_dir(int dirfd, const char *name, bool below)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    if (below) {
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS};
        int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return fd;
    }
    return openat(dirfd, name, flags);
}

/* Opens the directory `name` under dirfd as a stream, without following symlinks, refusing
 * mount points below the top (another file system or a bind mount: it stays, rmdir of it
 * fails).  -ENOENT (no error set) when it vanished. */
static int rm_open_dir(int dirfd, const char *name, dev_t dev, bool below, struct stat *st,
                       DIR **out, hull_error_t *err)
{
    int fd = rm_openat_dir(dirfd, name, below);
    if (fd < 0 && errno == EXDEV)
        return hull_error_setx(err, EBUSY, "rm -rf: `%s` is a mount point", name);
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
    *out = fdopendir(fd);
    if (*out == NULL) {
        int e = errno;
        close(fd);
        return hull_error_set(err, e, "opendir `%s`", name);
    }
    return 0;
}

/* Removes non-directory entries of d until a subdirectory comes: returns 1 with its name
 * (to descend into), 0 when the directory has been read to its end. */
static int rm_scan(DIR *d, char **subdir, hull_error_t *err)
{
    int fd = dirfd(d);
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_type != DT_DIR) {
            if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT) {
                errno = 0;
                continue;
            }
            if (errno != EISDIR && errno != EPERM)
                return hull_error_set(err, errno, "unlink `%s`", de->d_name);
        }
        *subdir = xstrdup(de->d_name);
        return 1;
    }
    if (errno != 0)
        return hull_error_set(err, errno, "readdir");
    return 0;
}

/* Iterative rm -rf of name under rootfd: no recursion, no depth or path length limit, at most
 * RM_KEEP_OPEN directory fds; never follows symlinks, never leaves the file system. */
static int rm_rf_at(int rootfd, const char *name, dev_t dev, hull_error_t *err)
{
    if (unlinkat(rootfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return hull_error_set(err, errno, "unlink `%s`", name);
    struct stat st;
    DIR *d = NULL;
    int r = rm_open_dir(rootfd, name, dev, false, &st, &d, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    dev = st.st_dev;
    size_t depth = 0, cap = 16;
    struct rm_frame *stack = xmalloc0(cap * sizeof(*stack));
    stack[depth++] = (struct rm_frame){xstrdup(name), st.st_dev, st.st_ino, d};
    while (depth > 0) {
        struct rm_frame *top = &stack[depth - 1];
        char *sub = NULL;
        r = rm_scan(top->d, &sub, err);
        if (r < 0)
            break;
        if (r == 1) {
            DIR *cd = NULL;
            r = rm_open_dir(dirfd(top->d), sub, dev, true, &st, &cd, err);
            if (r == -ENOENT) {
                free(sub);
                continue;
            }
            if (r < 0) {
                free(sub);
                hull_error_wrap(err, "rm -rf `%s` (depth %zu)", name, depth);
                break;
            }
            /* only the deepest levels keep their streams (a wide directory deep down goes
             * on where it stopped); the oldest one beyond the window is closed */
            if (depth >= RM_KEEP_OPEN && stack[depth - RM_KEEP_OPEN].d) {
                closedir(stack[depth - RM_KEEP_OPEN].d);
                stack[depth - RM_KEEP_OPEN].d = NULL;
            }
            if (depth == cap) {
                cap *= 2;
                stack = xrealloc(stack, cap * sizeof(*stack));
            }
            stack[depth++] = (struct rm_frame){sub, st.st_dev, st.st_ino, cd};
            continue;
        }
        /* top is empty: remove it from its parent (reopened through ".." if closed) */
        int pfd = rootfd;
        if (depth > 1) {
            struct rm_frame *parent = &stack[depth - 2];
            if (parent->d == NULL) {
                int fd =
                    openat(dirfd(top->d), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat pst;
                if (fd < 0 || fstat(fd, &pst) < 0) {
                    r = hull_error_set(err, errno, "rm -rf `%s`: open parent of `%s`", name,
                                       top->name);
                    if (fd >= 0)
                        close(fd);
                    break;
                }
                if (pst.st_dev != parent->dev || pst.st_ino != parent->ino) {
                    close(fd);
                    r = hull_error_setx(err, EXDEV, "rm -rf `%s`: tree moved during removal", name);
                    break;
                }
                parent->d = fdopendir(fd);
                if (parent->d == NULL) {
                    r = hull_error_set(err, errno, "rm -rf `%s`: opendir", name);
                    close(fd);
                    break;
                }
            }
            pfd = dirfd(parent->d);
        }
        closedir(top->d);
        top->d = NULL;
        if (unlinkat(pfd, top->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
            r = hull_error_set(err, errno, "rm -rf `%s`: rmdir `%s` (depth %zu)", name, top->name,
                               depth - 1);
            break;
        }
        free(top->name);
        top->name = NULL;
        depth--;
    }
    for (size_t i = 0; i < depth; i++) {
        free(stack[i].name);
        if (stack[i].d)
            closedir(stack[i].d);
    }
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

char **hull_dir_names(const char *dir, size_t *n)
{
    *n = 0;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            hull_strv_push(&names, n, de->d_name);
    return names;
}
