/* Pod user namespaces: mapping rules, the pinned namespace, id-mapped mounts (userns.h). */
#include "server/pod/pod.h"
#include "common/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int one_map(Runtime__V1__IDMapping **v, size_t n, const char *what, struct userns_map *out,
                   hull_error_t *err)
{
    if (n != 1)
        return hull_error_setx(
            err, EINVAL, "user namespace: exactly one %s mapping is supported, got %zu", what, n);
    const Runtime__V1__IDMapping *m = v[0];
    if (m->container_id != 0)
        return hull_error_setx(err, EINVAL,
                               "user namespace: the %s mapping must start at container id 0, "
                               "not %u",
                               what, m->container_id);
    /* kubelet maps 65536 ids per pod (a multiple of it for bigger ranges); any length is
     * valid for the kernel and for the id-mapped mounts (critest maps 100000) */
    if (m->length == 0)
        return hull_error_setx(err, EINVAL, "user namespace: the %s mapping has length 0", what);
    if (m->host_id == 0)
        return hull_error_setx(err, EINVAL,
                               "user namespace: the %s mapping may not include host id 0", what);
    if ((uint64_t)m->host_id + m->length > UINT32_MAX)
        return hull_error_setx(err, EINVAL,
                               "user namespace: the %s mapping %u+%u is past the last host id",
                               what, m->host_id, m->length);
    *out = (struct userns_map){0, m->host_id, m->length};
    return 0;
}

int userns_from_cri(const Runtime__V1__NamespaceOption *ns, bool *enabled, struct userns_map *uid,
                    struct userns_map *gid, hull_error_t *err)
{
    *enabled = false;
    const Runtime__V1__UserNamespace *u = ns ? ns->userns_options : NULL;
    if (u == NULL)
        return 0;
    switch (u->mode) {
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
        if (u->n_uids || u->n_gids)
            return hull_error_setx(err, EINVAL,
                                   "user namespace: mode NODE takes no uid/gid mappings");
        return 0;
    case RUNTIME__V1__NAMESPACE_MODE__POD:
        break;
    default:
        return hull_error_setx(err, EINVAL,
                               "user namespace: mode %d is not supported (only POD or NODE)",
                               (int)u->mode);
    }
    int r = one_map(u->uids, u->n_uids, "uid", uid, err);
    if (r == 0)
        r = one_map(u->gids, u->n_gids, "gid", gid, err);
    if (r < 0)
        return r;
    *enabled = true;
    return 0;
}

static int write_map(pid_t pid, const char *file, const struct userns_map *m, hull_error_t *err)
{
    char path[64], line[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int n = snprintf(line, sizeof(line), "%u %u %u\n", m->container_id, m->host_id, m->size);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        return hull_error_set(err, errno, "write %s", path);
    return 0;
}

int userns_pin(const char *path, const struct userns_map *uid, const struct userns_map *gid,
               hull_error_t *err)
{
    int ready[2], done[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    if (pipe2(done, O_CLOEXEC) < 0) {
        int e = errno;
        close(ready[0]);
        close(ready[1]);
        return hull_error_set(err, e, "pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls: hulld is multi-threaded */
        close(ready[0]);
        close(done[1]);
        char c = unshare(CLONE_NEWUSER) == 0 ? 0 : 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(done[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    int e = errno;
    close(ready[1]);
    close(done[0]);
    _cleanup_close_ int rfd = ready[0];
    _cleanup_close_ int dfd = done[1];
    if (pid < 0)
        return hull_error_set(err, e, "fork");
    int r = 0;
    char c = 1;
    ssize_t got;
    while ((got = read(rfd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (got != 1 || c != 0) {
        r = hull_error_setx(err, EPERM, "create a user namespace: unshare failed");
        goto out;
    }
    if ((r = write_map(pid, "uid_map", uid, err)) < 0 ||
        (r = write_map(pid, "gid_map", gid, err)) < 0)
        goto out;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (fd < 0) {
        r = hull_error_set(err, errno, "create `%s`", path);
        goto out;
    }
    close(fd);
    char src[64];
    snprintf(src, sizeof(src), "/proc/%d/ns/user", (int)pid);
    if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
        r = hull_error_set(err, errno, "pin user namespace on `%s`", path);
        unlink(path);
    }
out:
    close(dfd);
    dfd = -1;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return r;
}

int userns_idmapped_tree(int userns_fd, const char *path, bool recursive, hull_error_t *err)
{
    unsigned rec = recursive ? AT_RECURSIVE : 0;
    int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
    if (fd < 0)
        return hull_error_set(err, errno, "clone the mount of `%s`", path);
    struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | rec, &a, sizeof(a)) < 0) {
        int e = errno;
        close(fd);
        if (e == EINVAL || e == EPERM || e == ENOSYS)
            return hull_error_setx(err, ENOTSUP,
                                   "`%s` cannot be id-mapped for the pod's user namespace "
                                   "(its filesystem or a submount does not support id-mapped "
                                   "mounts: %s)",
                                   path, strerror(e));
        return hull_error_set(err, e, "id-map `%s`", path);
    }
    return fd;
}

int userns_idmap_mount(const char *userns_path, const char *src, const char *target, bool recursive,
                       hull_error_t *err)
{
    _cleanup_close_ int us = open(userns_path, O_RDONLY | O_CLOEXEC);
    if (us < 0)
        return hull_error_set(err, errno, "open the pod's user namespace `%s`", userns_path);
    _cleanup_close_ int fd = userns_idmapped_tree(us, src, recursive, err);
    if (fd < 0)
        return fd;
    if (move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return hull_error_set(err, errno, "attach the id-mapped `%s` on `%s`", src, target);
    return 0;
}

int userns_check_reachable(const char *root, const char *state_dir, hull_error_t *err)
{
    const char *tops[] = {root, state_dir};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *p = xstrdup(tops[i]);
        size_t n = strlen(p);
        for (size_t j = 1; j <= n; j++) {
            if (p[j] != '/' && p[j] != '\0')
                continue;
            char c = p[j];
            p[j] = '\0';
            struct stat st;
            if (stat(p, &st) < 0)
                return hull_error_set(err, errno, "stat `%s`", p);
            if ((st.st_mode & S_IXOTH) == 0)
                return hull_error_setx(err, EBUSY,
                                       "user-namespace pods need `%s` to be searchable by the "
                                       "pod's ids (mode o+x, now %04o); hulld does not change "
                                       "the modes of its configured directories",
                                       p, (unsigned)(st.st_mode & 07777));
            p[j] = c;
        }
    }
    return 0;
}

static int by_length_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

int userns_unmount_below(const char *dir, hull_error_t *err)
{
    /* stacked mounts show up again after their top is gone: a few passes */
    for (int pass = 0; pass < 8; pass++) {
        struct hull_mountinfo mi;
        int r = hull_mountinfo_read(NULL, &mi, err);
        if (r < 0)
            return r;
        size_t n = 0;
        char **v = NULL;
        for (size_t i = 0; i < mi.n; i++) {
            if (!hull_path_at_or_below(mi.v[i].mount_point, dir))
                continue;
            v = xrealloc(v, (n + 1) * sizeof(*v));
            v[n++] = xstrdup(mi.v[i].mount_point);
        }
        hull_mountinfo_clear(&mi);
        if (n == 0)
            return 0;
        qsort(v, n, sizeof(*v), by_length_desc);
        for (size_t i = 0; i < n; i++) {
            if (r == 0 && umount2(v[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                r = hull_error_set(err, errno, "unmount `%s`", v[i]);
            free(v[i]);
        }
        free(v);
        if (r < 0)
            return r;
    }
    return hull_error_setx(err, EBUSY, "mounts below `%s` keep coming back", dir);
}
