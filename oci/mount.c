/* Rootfs: spec mounts, /dev, pivot_root, masked and read-only paths.
 *
 * Every container-side path is resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
 * below the rootfs and mounted through /proc/self/fd/N of the resolved O_PATH fd, so symlinks
 * in the image (`/dev -> /`, `../../` tricks, swapped targets) can never point a mount outside
 * the root (SECURITY.md: path joins that follow symlinks). */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sched.h>

static unsigned long locked_flags(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) < 0)
        return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    if (sv.f_flag & ST_RDONLY)
        f |= MS_RDONLY;
    return f;
}

#define ATTR_FLAGS                                                                                 \
    (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |     \
     MS_STRICTATIME)

/* Remounts the mount at dest (re-resolved in the root, so we act on the new top mount). */
static int remount_by_path(int rootfd, const char *dest, unsigned long flags, hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rootfd, dest, O_PATH, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "reopen `%s`", dest);
    char p[64];
    unsigned long cur = locked_flags(fd) & ~MS_RDONLY;
    if (mount(NULL, oci_fd_path(fd, p), NULL, MS_BIND | MS_REMOUNT | cur | flags, NULL) < 0)
        return hull_error_set(err, errno, "remount `%s`", dest);
    return 0;
}

static int set_propagation(int rootfd, const char *dest, unsigned long prop, hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rootfd, dest, O_PATH, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "reopen `%s`", dest);
    char p[64];
    if (mount(NULL, oci_fd_path(fd, p), NULL, prop, NULL) < 0)
        return hull_error_set(err, errno, "set propagation of `%s`", dest);
    return 0;
}

static int mount_cgroup(struct oci_mount_ctx *ctx, int rootfd, const struct oci_mount *m,
                        hull_error_t *err)
{
    const struct hull_cgroup *cg = ctx->cgroup;
    _cleanup_close_ int tfd = oci_mkdir_in_root(rootfd, m->destination, false, err);
    if (tfd < 0)
        return hull_error_wrap(err, "mount `%s`", m->destination);
    char p[64];
    unsigned long flags = m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (cg == NULL || cg->n == 0)
        return 0;
    if (cg->mode == HULL_CGROUP_V2) {
        if (mount(cg->dirs[0].path, oci_fd_path(tfd, p), NULL, MS_BIND | MS_REC, NULL) < 0)
            return hull_error_set(err, errno, "bind cgroup2 on `%s`", m->destination);
        return remount_by_path(rootfd, m->destination, flags | (m->flags & MS_RDONLY), err);
    }
    if (mount("tmpfs", oci_fd_path(tfd, p), "tmpfs", flags, "mode=755") < 0)
        return hull_error_set(err, errno, "mount tmpfs on `%s`", m->destination);
    for (size_t i = 0; i < cg->n; i++) {
        const struct hull_cgroup_dir *d = &cg->dirs[i];
        const char *name = d->controllers && *d->controllers ? d->controllers : d->controller;
        if (strncmp(name, "name=", 5) == 0)
            name += 5;
        _cleanup_free_ char *sub = hull_path_join(m->destination, name);
        _cleanup_close_ int sfd = oci_mkdir_in_root(rootfd, sub, false, err);
        if (sfd < 0)
            return hull_error_wrap(err, "mount cgroup");
        if (mount(d->path, oci_fd_path(sfd, p), NULL, MS_BIND | MS_REC, NULL) < 0)
            return hull_error_set(err, errno, "bind `%s` on `%s`", d->path, sub);
        int r = remount_by_path(rootfd, sub, flags | (m->flags & MS_RDONLY), err);
        if (r < 0)
            return r;
        /* cpu,cpuacct -> symlinks cpu and cpuacct */
        if (strchr(name, ',')) {
            _cleanup_close_ int pfd = hull_open_in_root(rootfd, m->destination, O_PATH, 0);
            _cleanup_free_ char *names = xstrdup(name);
            char *save = NULL;
            for (char *c = strtok_r(names, ",", &save); c && pfd >= 0;
                 c = strtok_r(NULL, ",", &save))
                if (symlinkat(name, pfd, c) < 0 && errno != EEXIST)
                    log_debug("symlink %s: %s", c, strerror(errno));
        }
    }
    if (m->flags & MS_RDONLY)
        return remount_by_path(rootfd, m->destination, flags | MS_RDONLY, err);
    return 0;
}

static int mount_one(struct oci_mount_ctx *ctx, int rootfd, const struct oci_mount *m,
                     hull_error_t *err)
{
    if (m->type && (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0))
        return mount_cgroup(ctx, rootfd, m, err);
    bool is_file = false;
    if (m->bind) {
        struct stat st;
        if (stat(m->source, &st) < 0)
            return hull_error_set(err, errno, "mount `%s`: source `%s`", m->destination, m->source);
        is_file = !S_ISDIR(st.st_mode);
    }
    _cleanup_close_ int tfd = oci_mkdir_in_root(rootfd, m->destination, is_file, err);
    if (tfd < 0)
        return hull_error_wrap(err, "mount `%s`", m->destination);
    struct stat tst;
    if (fstat(tfd, &tst) < 0)
        return hull_error_set(err, errno, "stat `%s`", m->destination);
    if (S_ISLNK(tst.st_mode))
        return hull_error_setx(err, ELOOP, "mount `%s`: target is a symlink", m->destination);
    if (!is_file && !S_ISDIR(tst.st_mode))
        return hull_error_setx(err, ENOTDIR, "mount `%s`: target is not a directory",
                               m->destination);
    char p[64];
    const char *target = oci_fd_path(tfd, p);
    if (m->bind) {
        if (mount(m->source, target, NULL, MS_BIND | (m->recursive ? MS_REC : 0), NULL) < 0)
            return hull_error_set(err, errno, "bind `%s` on `%s`", m->source, m->destination);
        if (m->flags & ATTR_FLAGS) {
            int r = remount_by_path(rootfd, m->destination, m->flags & ATTR_FLAGS, err);
            if (r < 0)
                return r;
        }
        if (m->rro)
            return oci_mount_set_rro(rootfd, m->destination, err);
    } else {
        unsigned long flags = m->flags & ~(unsigned long)MS_REMOUNT;
        if (mount(m->source, target, m->type, flags, m->data) < 0) {
            int e = errno;
            /* sysfs in a user namespace without its own netns: bind the host's instead */
            if (strcmp(m->type, "sysfs") == 0 && (e == EPERM || e == EBUSY)) {
                if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) == 0)
                    return remount_by_path(rootfd, m->destination,
                                           (flags & ATTR_FLAGS) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                           err);
            }
            return hull_error_set(err, e, "mount %s on `%s`", m->type, m->destination);
        }
    }
    /* per-mount propagation flags are applied after pivot_root (see oci_rootfs_finalize) */
    return 0;
}

static const struct {
    const char *name;
    unsigned maj, min;
} default_devices[] = {
    {"null", 1, 3}, {"zero", 1, 5},   {"full", 1, 7},
    {"tty", 5, 0},  {"random", 1, 8}, {"urandom", 1, 9},
};

static int make_device(struct oci_mount_ctx *ctx, int dirfd, const char *name, mode_t type,
                       unsigned maj, unsigned min, mode_t mode, const char *host_path,
                       hull_error_t *err)
{
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT && errno != EISDIR)
        return hull_error_set(err, errno, "remove `%s`", name);
    if (!ctx->userns) {
        if (mknodat(dirfd, name, type | mode, makedev(maj, min)) < 0)
            return hull_error_set(err, errno, "mknod `%s`", name);
        _cleanup_close_ int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        char p[64];
        if (fd < 0 || chmod(oci_fd_path(fd, p), mode) < 0)
            return hull_error_set(err, errno, "chmod `%s`", name);
        return 0;
    }
    /* in a user namespace mknod is not allowed: bind the host's node */
    int f = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0000);
    if (f < 0)
        return hull_error_set(err, errno, "create `%s`", name);
    close(f);
    _cleanup_close_ int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    char p[64];
    if (fd < 0 || mount(host_path, oci_fd_path(fd, p), NULL, MS_BIND, NULL) < 0)
        return hull_error_set(err, errno, "bind `%s`", host_path);
    return 0;
}

static int setup_dev(struct oci_mount_ctx *ctx, int rootfd, hull_error_t *err)
{
    const struct oci_spec *spec = ctx->spec;
    _cleanup_close_ int devfd = oci_mkdir_in_root(rootfd, "/dev", false, err);
    if (devfd < 0)
        return hull_error_wrap(err, "/dev");
    for (size_t i = 0; i < sizeof(default_devices) / sizeof(default_devices[0]); i++) {
        _cleanup_free_ char *host = xasprintf("/dev/%s", default_devices[i].name);
        int r = make_device(ctx, devfd, default_devices[i].name, S_IFCHR, default_devices[i].maj,
                            default_devices[i].min, 0666, host, err);
        if (r < 0)
            return hull_error_wrap(err, "default device");
    }
    static const char *const links[][2] = {
        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        if (strcmp(links[i][1], "ptmx") == 0)
            unlinkat(devfd, "ptmx", 0);
        if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST)
            return hull_error_set(err, errno, "symlink /dev/%s", links[i][1]);
    }
    if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", devfd, "core") < 0 &&
        errno != EEXIST)
        return hull_error_set(err, errno, "symlink /dev/core");
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct oci_device *d = &spec->devices[i];
        _cleanup_free_ char *dup = xstrdup(d->path);
        _cleanup_free_ char *dup2 = xstrdup(d->path);
        const char *dir = dirname(dup);
        const char *base = basename(dup2);
        if (strcmp(base, "..") == 0 || strcmp(base, ".") == 0 || *base == '\0')
            return hull_error_setx(err, EINVAL, "device `%s`: bad path", d->path);
        _cleanup_close_ int dfd = oci_mkdir_in_root(rootfd, dir, false, err);
        if (dfd < 0)
            return hull_error_wrap(err, "device `%s`", d->path);
        mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        int r = make_device(ctx, dfd, base, type, (unsigned)d->major, (unsigned)d->minor,
                            d->has_mode ? d->mode : 0666, d->path, err);
        if (r < 0)
            return r;
        if (d->has_uid || d->has_gid) {
            if (fchownat(dfd, base, d->has_uid ? d->uid : (uid_t)-1,
                         d->has_gid ? d->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
                return hull_error_set(err, errno, "chown `%s`", d->path);
        }
    }
    return 0;
}

static int do_pivot(struct oci_mount_ctx *ctx, int rootfd, hull_error_t *err)
{
    if (fchdir(rootfd) < 0)
        return hull_error_set(err, errno, "chdir to rootfs");
    if (ctx->no_pivot) {
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
            return hull_error_set(err, errno, "move rootfs to /");
        if (chroot(".") < 0)
            return hull_error_set(err, errno, "chroot");
    } else {
        _cleanup_close_ int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (oldroot < 0)
            return hull_error_set(err, errno, "open the old root");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            return hull_error_set(err, errno, "pivot_root");
        /* The old root is now stacked on the new one.  Work on it through its own fd: a
         * mount(2) on "." acts on the new root's tree (our cwd), and making that rslave
         * would cut a bidirectional volume off from its host peer group. */
        if (fchdir(oldroot) < 0)
            return hull_error_set(err, errno, "chdir to the old root");
        /* keep the unmount of the old root from reaching the host */
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
            return hull_error_set(err, errno, "make old root rslave");
        if (umount2(".", MNT_DETACH) < 0)
            return hull_error_set(err, errno, "unmount old root");
    }
    if (chdir("/") < 0)
        return hull_error_set(err, errno, "chdir /");
    return 0;
}

int oci_rootfs_setup(struct oci_mount_ctx *ctx, hull_error_t *err)
{
    const struct oci_spec *spec = ctx->spec;
    unsigned long prop = spec->rootfs_propagation ? spec->rootfs_propagation : MS_SLAVE | MS_REC;
    /* As runc: the requested propagation goes on / right away.  For rshared this keeps the
     * copies of the host's shared mounts in their host peer groups, so a bind of one of them
     * (a bidirectional volume) is itself a peer of the host mount and mounts made under it
     * in the container reach the host.  Starting from rslave would turn every copy into a
     * slave, and a bind of a slave only ever receives. */
    if (mount(NULL, "/", NULL, prop, NULL) < 0)
        return hull_error_set(err, errno, "set propagation of /");
    struct stat st;
    if (stat(spec->rootfs, &st) < 0)
        return hull_error_set(err, errno, "rootfs `%s`", spec->rootfs);
    if (!S_ISDIR(st.st_mode))
        return hull_error_setx(err, ENOTDIR, "rootfs `%s` is not a directory", spec->rootfs);
    if (prop & MS_SHARED) {
        /* The mount holding the rootfs must not be shared: the rootfs bind below would
         * propagate to its peers (on the host), and pivot_root refuses a shared parent. */
        _cleanup_free_ char *real = realpath(spec->rootfs, NULL);
        if (real == NULL)
            return hull_error_set(err, errno, "rootfs `%s`", spec->rootfs);
        _cleanup_free_ char *mp = hull_mount_point_of(real, err);
        if (mp == NULL)
            return hull_error_wrap(err, "rootfs");
        if (mount(NULL, mp, NULL, MS_PRIVATE, NULL) < 0)
            return hull_error_set(err, errno, "make `%s` private", mp);
        /* pivot_root also refuses a shared current root */
        if (strcmp(mp, "/") != 0 && mount(NULL, "/", NULL, MS_PRIVATE, NULL) < 0)
            return hull_error_set(err, errno, "make / private");
    }
    if (mount(spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return hull_error_set(err, errno, "bind rootfs `%s`", spec->rootfs);
    _cleanup_close_ int rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "open rootfs `%s`", spec->rootfs);
    /* the rootfs mount itself must not be shared for pivot_root */
    char p[64];
    if (mount(NULL, oci_fd_path(rootfd, p), NULL, MS_PRIVATE, NULL) < 0)
        return hull_error_set(err, errno, "make rootfs private");
    bool dev_bound = false;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct oci_mount *m = &spec->mounts[i];
        if (strcmp(m->destination, "/dev") == 0 && m->bind)
            dev_bound = true;
        int r = mount_one(ctx, rootfd, m, err);
        if (r < 0)
            return r;
    }
    if (!dev_bound) {
        int r = setup_dev(ctx, rootfd, err);
        if (r < 0)
            return r;
    }
    int r = do_pivot(ctx, rootfd, err);
    if (r < 0)
        return r;
    if (prop & MS_SHARED) {
        if (mount(NULL, "/", NULL, prop, NULL) < 0)
            return hull_error_set(err, errno, "set rootfsPropagation");
    }
    return 0;
}

static int mask_path(int rootfd, int nullfd, const char *path, hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rootfd, path, O_PATH, 0);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return hull_error_set(err, errno, "masked path `%s`", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", path);
    char p[64], q[64];
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", oci_fd_path(fd, p), "tmpfs", MS_RDONLY, "size=0k") < 0)
            return hull_error_set(err, errno, "mask `%s`", path);
    } else if (mount(oci_fd_path(nullfd, q), oci_fd_path(fd, p), NULL, MS_BIND, NULL) < 0) {
        return hull_error_set(err, errno, "mask `%s`", path);
    }
    return 0;
}

static int readonly_path(int rootfd, const char *path, hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rootfd, path, O_PATH, 0);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return hull_error_set(err, errno, "readonly path `%s`", path);
    }
    char p[64];
    if (mount(oci_fd_path(fd, p), p, NULL, MS_BIND | MS_REC, NULL) < 0)
        return hull_error_set(err, errno, "bind readonly path `%s`", path);
    return remount_by_path(rootfd, path, MS_RDONLY, err);
}

int oci_rootfs_finalize(struct oci_mount_ctx *ctx, hull_error_t *err)
{
    const struct oci_spec *spec = ctx->spec;
    _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "open /");
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct oci_mount *m = &spec->mounts[i];
        if (m->propagation == 0)
            continue;
        int r = set_propagation(rootfd, m->destination, m->propagation, err);
        if (r < 0)
            return r;
    }
    for (char **p = spec->readonly_paths; p && *p; p++) {
        int r = readonly_path(rootfd, *p, err);
        if (r < 0)
            return r;
    }
    if (spec->masked_paths && spec->masked_paths[0]) {
        /* The /dev/null used to mask files must really be the null device (CVE-2025-31133:
         * a container could swap it for a symlink to a host-sensitive file). */
        _cleanup_close_ int nullfd = hull_open_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        if (nullfd < 0 || fstat(nullfd, &st) < 0 || !S_ISCHR(st.st_mode) ||
            major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
            return hull_error_setx(err, EPERM,
                                   "/dev/null in the container is not the null "
                                   "device: refusing to mask paths with it");
        for (char **p = spec->masked_paths; *p; p++) {
            int r = mask_path(rootfd, nullfd, *p, err);
            if (r < 0)
                return r;
        }
    }
    if (spec->root_readonly) {
        unsigned long cur = locked_flags(rootfd) & ~MS_RDONLY;
        if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | cur, NULL) < 0)
            return hull_error_set(err, errno, "remount / read-only");
    }
    return 0;
}

/* runc's rules: namespaced sysctls only, net.* only with a private network namespace,
 * kernel.hostname/domainname only with a private UTS namespace. */
int oci_sysctl_validate(const struct oci_spec *spec, const char *key, const char *value,
                        hull_error_t *err)
{
    if (*key == '\0' || strchr(key, '/') || strstr(key, "..") || key[0] == '.')
        return hull_error_setx(err, EINVAL, "sysctl `%s`: invalid name", key);
    if (strchr(value, '\n') && strchr(value, '\n')[1] != '\0')
        return hull_error_setx(err, EINVAL, "sysctl `%s`: value must be one line", key);
    static const char *const ipc[] = {"kernel.msgmax", "kernel.msgmnb",          "kernel.msgmni",
                                      "kernel.sem",    "kernel.shmall",          "kernel.shmmax",
                                      "kernel.shmmni", "kernel.shm_rmid_forced", NULL};
    for (size_t i = 0; ipc[i]; i++)
        if (strcmp(key, ipc[i]) == 0)
            goto need_ipc;
    if (strncmp(key, "fs.mqueue.", 10) == 0)
        goto need_ipc;
    if (strncmp(key, "net.", 4) == 0) {
        const struct oci_namespace *ns = oci_spec_namespace(spec, CLONE_NEWNET);
        if (ns == NULL)
            return hull_error_setx(err, EPERM,
                                   "sysctl `%s` is not allowed in the host network namespace", key);
        return 0;
    }
    if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) {
        if (oci_spec_namespace(spec, CLONE_NEWUTS) == NULL)
            return hull_error_setx(err, EPERM, "sysctl `%s` needs a private UTS namespace", key);
        return 0;
    }
    return hull_error_setx(err, EPERM, "sysctl `%s` is not in a separate kernel namespace", key);
need_ipc:
    if (oci_spec_namespace(spec, CLONE_NEWIPC) == NULL)
        return hull_error_setx(err, EPERM, "sysctl `%s` needs a private IPC namespace", key);
    return 0;
}
