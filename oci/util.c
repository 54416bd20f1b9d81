/* Helpers for hull-oci: paths confined to a root, fd hygiene, the parent/child sync channel. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Creates what is missing of path, always resolving from the root: every lookup is a fresh
 * openat2(RESOLVE_IN_ROOT) of the prefix, and creation happens with a single-name mkdirat()
 * in a directory fd that was itself resolved inside the root.  A dangling symlink is followed
 * (inside the root) and its target created, like securejoin's MkdirAll. */
static int mkdir_in_root_depth(int rootfd, const char *path, bool last_is_file, int depth,
                               hull_error_t *err)
{
    if (depth > 40)
        return hull_error_setx(err, ELOOP, "`%s`: too many levels of symbolic links", path);
    _cleanup_free_ char *dup = xstrdup(path);
    _cleanup_free_ char *sofar = xstrdup("");
    char *save = NULL;
    char *comp = strtok_r(dup, "/", &save);
    if (comp == NULL) {
        int r = hull_open_in_root(rootfd, ".", O_PATH, 0);
        return r < 0 ? hull_error_set(err, errno, "open the container root") : r;
    }
    int fd = -1;
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        bool last = next == NULL;
        _cleanup_free_ char *candidate = xasprintf("%s/%s", sofar, comp);
        if (fd >= 0)
            close(fd);
        fd = hull_open_in_root(rootfd, candidate, O_PATH, 0);
        if (fd < 0 && errno == ENOENT) {
            _cleanup_close_ int parent =
                hull_open_in_root(rootfd, *sofar ? sofar : ".", O_PATH | O_DIRECTORY, 0);
            if (parent < 0)
                return hull_error_set(err, errno, "resolve `%s` in the container root", path);
            char target[4096];
            ssize_t n = readlinkat(parent, comp, target, sizeof(target) - 1);
            if (n >= 0) {
                /* dangling symlink: create its target (still inside the root) */
                target[n] = '\0';
                _cleanup_free_ char *rest = xstrdup("");
                for (char *c = next; c; c = strtok_r(NULL, "/", &save)) {
                    char *t = xasprintf("%s/%s", rest, c);
                    free(rest);
                    rest = t;
                }
                _cleanup_free_ char *np = target[0] == '/'
                                              ? xasprintf("%s%s", target, rest)
                                              : xasprintf("%s/%s%s", sofar, target, rest);
                return mkdir_in_root_depth(rootfd, np, last_is_file, depth + 1, err);
            }
            if (last && last_is_file) {
                int f = openat(parent, comp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                               0644);
                if (f < 0 && errno != EEXIST)
                    return hull_error_set(err, errno, "create `%s`", path);
                if (f >= 0)
                    close(f);
            } else if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST) {
                return hull_error_set(err, errno, "mkdir `%s`", path);
            }
            fd = hull_open_in_root(rootfd, candidate, O_PATH, 0);
        }
        if (fd < 0)
            return hull_error_set(err, errno, "resolve `%s` in the container root", path);
        if (!last) {
            struct stat st;
            if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                close(fd);
                return hull_error_setx(err, ENOTDIR, "`%s`: a component is not a directory", path);
            }
        }
        free(sofar);
        sofar = hull_steal(candidate);
        comp = next;
    }
    return fd;
}

int oci_mkdir_in_root(int rootfd, const char *path, bool last_is_file, hull_error_t *err)
{
    return mkdir_in_root_depth(rootfd, path, last_is_file, 0, err);
}

const char *oci_fd_path(int fd, char buf[64])
{
    snprintf(buf, 64, "/proc/self/fd/%d", fd);
    return buf;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void close_range_compat(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
    unsigned top = hi > 65535 ? 65535 : hi;
    for (unsigned fd = lo; fd <= top; fd++)
        close((int)fd);
}

void oci_close_fds_except(int from, const int *keep, size_t n)
{
    int sorted[16];
    size_t m = 0;
    for (size_t i = 0; i < n && m < sizeof(sorted) / sizeof(sorted[0]); i++)
        if (keep[i] >= from)
            sorted[m++] = keep[i];
    qsort(sorted, m, sizeof(int), cmp_int);
    unsigned lo = (unsigned)from;
    for (size_t i = 0; i < m; i++) {
        if ((unsigned)sorted[i] > lo)
            close_range_compat(lo, (unsigned)sorted[i] - 1);
        if ((unsigned)sorted[i] + 1 > lo)
            lo = (unsigned)sorted[i] + 1;
    }
    close_range_compat(lo, ~0U);
}

int oci_copy_file_fd(int in, int out)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
    }
}

int oci_proc_starttime(pid_t pid, uint64_t *starttime, bool *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    /* comm may contain spaces and parens: fields start after the last ')' */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0')
        return -EIO;
    p += 2;
    char state = *p;
    /* field 3 is state; starttime is field 22 */
    int field = 3;
    while (*p && field < 22) {
        if (*p == ' ')
            field++;
        p++;
    }
    if (field != 22)
        return -EIO;
    if (starttime)
        *starttime = strtoull(p, NULL, 10);
    if (zombie)
        *zombie = state == 'Z' || state == 'X';
    return 0;
}

int oci_sync_send(int fd, int type, int status, const char *msg)
{
    struct oci_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.status = status;
    if (msg)
        snprintf(m.msg, sizeof(m.msg), "%s", msg);
    ssize_t w;
    do {
        w = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    return w == (ssize_t)sizeof(m) ? 0 : -EPIPE;
}

int oci_sync_recv(int fd, struct oci_sync_msg *m)
{
    ssize_t r;
    do {
        r = recv(fd, m, sizeof(*m), 0);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return -EPIPE;
    if (r != (ssize_t)sizeof(*m))
        return r < 0 ? -errno : -EIO;
    m->msg[sizeof(m->msg) - 1] = '\0';
    return 0;
}
