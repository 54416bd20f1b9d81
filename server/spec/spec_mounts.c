/* The container's mounts: defaults, CRI mounts (bind, propagation, recursive read-only, image
 * volumes), the pod's files, image volumes with their copy-up, id-mapped mounts for a pod user
 * namespace, and the masked and read-only paths. */
#include "server/spec/spec_internal.h"
#include "common/mountinfo.h"
#include "server/pod/pod.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

static const char *const default_masked_paths[] = {"/proc/asound",
                                                   "/proc/acpi",
                                                   "/proc/interrupts",
                                                   "/proc/kcore",
                                                   "/proc/keys",
                                                   "/proc/latency_stats",
                                                   "/proc/timer_list",
                                                   "/proc/timer_stats",
                                                   "/proc/sched_debug",
                                                   "/proc/scsi",
                                                   "/sys/firmware",
                                                   "/sys/devices/virtual/powercap",
                                                   NULL};
static const char *const default_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

/* ---- mounts ------------------------------------------------------------------------------ */
/* Mount.uid_mappings / gid_mappings, as kubelet sends them for a pod with a user namespace:
 * one uid and one gid mapping, container id 0, and the pod's own mappings (any other mapping
 * would let the pod write a host volume as ids outside its range, host root included).  The
 * mount is then id-mapped through the pod's user namespace like every volume of such a pod
 * (spec_userns_prepare). */
static int check_mount_idmap(const struct spec_input *in, const Runtime__V1__Mount *m,
                             const char *cp, hull_error_t *err)
{
    const Runtime__V1__PodSandboxConfig *pc = in->sandbox ? in->sandbox->config : NULL;
    const Runtime__V1__NamespaceOption *ns = pc && pc->linux && pc->linux->security_context
                                                 ? pc->linux->security_context->namespace_options
                                                 : NULL;
    bool on = false;
    struct userns_map pu, pg;
    _cleanup_error_ hull_error_t e = NULL;
    if (userns_from_cri(ns, &on, &pu, &pg, &e) < 0 || !on || empty(in->sandbox->userns_path))
        return hull_error_setx(err, EINVAL,
                               "mount %s: uid/gid mappings need a pod with a user namespace", cp);
    if (m->n_uidmappings != 1 || m->n_gidmappings != 1)
        return hull_error_setx(err, EINVAL,
                               "mount %s: exactly one uid and one gid mapping are supported, "
                               "got %zu and %zu",
                               cp, m->n_uidmappings, m->n_gidmappings);
    const Runtime__V1__IDMapping *u = m->uidmappings[0], *g = m->gidmappings[0];
    const struct userns_map *want[2] = {&pu, &pg};
    const Runtime__V1__IDMapping *got[2] = {u, g};
    static const char *const what[2] = {"uid", "gid"};
    for (int k = 0; k < 2; k++) {
        if (got[k]->container_id != 0)
            return hull_error_setx(
                err, EINVAL, "mount %s: the %s mapping must start at container id 0", cp, what[k]);
        if (got[k]->host_id != want[k]->host_id || got[k]->length != want[k]->size)
            return hull_error_setx(
                err, EINVAL, "mount %s: the %s mapping 0:%u:%u is not the pod's (0:%u:%u)", cp,
                what[k], got[k]->host_id, got[k]->length, want[k]->host_id, want[k]->size);
    }
    return 0;
}

enum mount_kind { MK_DEFAULT, MK_EXTRA, MK_CRI, MK_VOLUME };

static int path_depth(const char *clean)
{
    if (strcmp(clean, "/") == 0)
        return 0;
    int d = 0;
    for (const char *s = clean; *s; s++)
        if (*s == '/')
            d++;
    return d;
}

struct mnt {
    char *dest, *type, *source;
    struct hull_strv opts;
    int kind;
    int depth;
    size_t seq;
    bool image; /* an image mount (already id-mapped for a pod user namespace if needed) */
};

static struct mnt *mnt_add(struct mntv *m, int kind, const char *dest, const char *type,
                           const char *source, ...)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(struct mnt));
    }
    struct mnt *x = &m->v[m->n];
    memset(x, 0, sizeof(*x));
    x->dest = hull_path_clean(dest, 0);
    x->type = xstrdup(type);
    x->source = xstrdup(source);
    x->kind = kind;
    x->depth = path_depth(x->dest);
    x->seq = m->n++;
    va_list ap;
    va_start(ap, source);
    for (const char *o; (o = va_arg(ap, const char *)) != NULL;)
        hull_strv_add_owned(&x->opts, xstrdup(o));
    va_end(ap);
    return x;
}

static void mnt_free_one(struct mnt *x)
{
    free(x->dest);
    free(x->type);
    free(x->source);
    hull_strv_clear(&x->opts);
}

void spec_mntv_clear(struct mntv *m)
{
    for (size_t i = 0; i < m->n; i++)
        mnt_free_one(&m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static bool mntv_has_dest(const struct mntv *m, int kind, const char *dest)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].kind == kind && strcmp(m->v[i].dest, dest) == 0)
            return true;
    return false;
}

static int mnt_cmp(const void *a, const void *b)
{
    const struct mnt *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Propagation of the mount holding path (the top-most one on the longest prefix). */
static int mount_propagation_of(const char *path, bool *shared, bool *slave, char **mpoint,
                                hull_error_t *err)
{
    *shared = *slave = false;
    *mpoint = NULL;
    _cleanup_free_ char *real = realpath(path, NULL); /* inspection only, never mounted */
    if (real == NULL)
        return hull_error_set(err, errno, "resolve `%s`", path);
    struct hull_mountinfo mi;
    int r = hull_mountinfo_read(NULL, &mi, err);
    if (r < 0)
        return r;
    const struct hull_mountinfo_entry *e = hull_mountinfo_holding(&mi, real);
    if (e) {
        *shared = hull_mountinfo_has_optional(e, "shared:");
        *slave = hull_mountinfo_has_optional(e, "master:");
    }
    *mpoint = xstrdup(e ? e->mount_point : "/");
    hull_mountinfo_clear(&mi);
    return 0;
}

/* CRI mount i is an image volume: the image's root mounted by hulld, or a path inside it
 * (image_sub_path: relative, no "..", symlinks resolved inside the image), read-only. */
static int add_image_mount(const struct spec_input *in, size_t i, struct mntv *mounts,
                           hull_error_t *err)
{
    const Runtime__V1__Mount *m = in->config->mounts[i];
    const char *cp = S(m->container_path), *sub = S(m->image_sub_path);
    const char *root = in->image_mount_roots ? in->image_mount_roots[i] : NULL;
    if (cp[0] != '/')
        return hull_error_setx(err, EINVAL, "mount container_path \"%s\" must be absolute", cp);
    if (!empty(m->host_path))
        return hull_error_setx(err, EINVAL, "mount %s: image mounts take no host_path", cp);
    if (empty(root))
        return hull_error_setx(err, EINVAL, "mount %s: image \"%s\" is not mounted", cp,
                               S(m->image->image));
    _cleanup_free_ char *src = NULL;
    if (!empty(sub)) {
        if (sub[0] == '/')
            return hull_error_setx(err, EINVAL, "mount %s: image_sub_path \"%s\" must be relative",
                                   cp, sub);
        _cleanup_free_ char *dup = xstrdup(sub);
        char *save = NULL;
        for (char *c = strtok_r(dup, "/", &save); c; c = strtok_r(NULL, "/", &save))
            if (strcmp(c, "..") == 0)
                return hull_error_setx(
                    err, EINVAL, "mount %s: image_sub_path \"%s\" may not contain \"..\"", cp, sub);
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
            return hull_error_set(err, errno, "mount %s: open the image root", cp);
        _cleanup_close_ int fd = hull_open_in_root_resolve(rfd, sub, O_PATH, 0, RESOLVE_NO_XDEV);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                return hull_error_setx(err, ENOENT,
                                       "mount %s: image_sub_path \"%s\" does not exist in "
                                       "image \"%s\"",
                                       cp, sub, S(m->image->image));
            return hull_error_set(err, errno, "mount %s: image_sub_path \"%s\"", cp, sub);
        }
        /* both as the kernel names them (the configured root may contain symlinks) */
        char link[64], buf[PATH_MAX], rbuf[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);
        snprintf(link, sizeof(link), "/proc/self/fd/%d", rfd);
        ssize_t rn = n < 0 ? -1 : readlink(link, rbuf, sizeof(rbuf) - 1);
        if (n < 0 || rn < 0)
            return hull_error_set(err, errno, "mount %s: image_sub_path \"%s\"", cp, sub);
        buf[n] = '\0';
        rbuf[rn] = '\0';
        size_t rl = (size_t)rn;
        if (strncmp(buf, rbuf, rl) != 0 || (buf[rl] != '/' && buf[rl] != '\0'))
            return hull_error_setx(err, EINVAL, "mount %s: image_sub_path \"%s\" leaves the image",
                                   cp, sub);
        src = xstrdup(buf);
    } else {
        src = xstrdup(root);
    }
    mnt_add(mounts, MK_CRI, cp, "bind", src, "rbind", "rprivate", "ro", NULL)->image = true;
    return 0;
}

static int add_cri_mounts(const struct spec_input *in, const struct ns_plan *ns,
                          struct mntv *mounts, const char **rootfs_prop, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Runtime__V1__Mount *m = c->mounts[i];
        const char *cp = S(m->container_path), *hp = S(m->host_path);
        if (m->image && !empty(m->image->image)) {
            int r = add_image_mount(in, i, mounts, err);
            if (r < 0)
                return r;
            continue;
        }
        if (cp[0] != '/')
            return hull_error_setx(err, EINVAL, "mount container_path \"%s\" must be absolute", cp);
        if (hp[0] != '/')
            return hull_error_setx(err, EINVAL, "mount %s: host_path \"%s\" must be absolute", cp,
                                   hp);
        if (m->n_uidmappings || m->n_gidmappings) {
            int r = check_mount_idmap(in, m, cp, err);
            if (r < 0)
                return r;
        }
        _cleanup_free_ char *src = hull_path_clean(hp, 0);
        _cleanup_free_ char *dst = hull_path_clean(cp, 0);
        if (strcmp(dst, "/") == 0)
            return hull_error_setx(err, EINVAL,
                                   "mount container_path \"%s\": cannot mount over "
                                   "the container's root",
                                   cp);
        struct stat st;
        if (lstat(src, &st) < 0) {
            if (errno != ENOENT)
                return hull_error_set(err, errno, "mount %s: host path `%s`", cp, src);
            /* kubelet semantics: a missing host path is created as a directory */
            int r = hull_mkdir_p(src, 0755, err);
            if (r < 0)
                return hull_error_wrap(err, "mount %s: create host path", cp);
        }
        const char *prop;
        switch (m->propagation) {
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
            prop = "rprivate";
            break;
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
            prop = "rslave";
            break;
        case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
            prop = "rshared";
            break;
        default:
            return hull_error_setx(err, EINVAL, "mount %s: unknown propagation %d", cp,
                                   (int)m->propagation);
        }
        if (strcmp(prop, "rprivate") != 0) {
            bool sh, sl;
            _cleanup_free_ char *mp = NULL;
            int r = mount_propagation_of(src, &sh, &sl, &mp, err);
            if (r < 0)
                return hull_error_wrap(err, "mount %s", cp);
            if (strcmp(prop, "rshared") == 0 && !sh)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: host path `%s` is mounted on `%s` "
                                       "but it is not a shared mount (needed for bidirectional "
                                       "propagation)",
                                       cp, src, mp);
            if (strcmp(prop, "rslave") == 0 && !sh && !sl)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: host path `%s` is mounted on `%s` "
                                       "but it is not a shared or slave mount (needed for "
                                       "host-to-container propagation)",
                                       cp, src, mp);
            if (strcmp(prop, "rshared") == 0)
                *rootfs_prop = "rshared";
            else if (*rootfs_prop == NULL)
                *rootfs_prop = "rslave";
        }
        const char *mode = m->readonly ? "ro" : "rw";
        if (m->recursive_read_only) {
            if (!m->readonly || strcmp(prop, "rprivate") != 0)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: recursive_read_only needs readonly "
                                       "and private propagation",
                                       cp);
            if (!in->runtime_supports_rro)
                return hull_error_setx(err, EINVAL,
                                       "mount %s: recursive read-only mounts are not "
                                       "supported by the runtime handler",
                                       cp);
            mode = "rro";
        }
        /* selinux_relabel is ignored: no SELinux support */
        mnt_add(mounts, MK_CRI, cp, "bind", src, "rbind", prop, mode, NULL);
    }
    return 0;
}

static int create_termination_log(const char *dir, char **out, hull_error_t *err)
{
    _cleanup_free_ char *p = hull_path_join(dir, "termination-log");
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", p);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return hull_error_setx(err, EINVAL, "`%s` is not a regular file", p);
    if (fchmod(fd, 0666) < 0)
        return hull_error_set(err, errno, "chmod `%s`", p);
    *out = hull_steal(p);
    return 0;
}

/* ---- image volume copy-up ---------------------------------------------------------------- */
#define COPYUP_MAX_DEPTH 64

/* The copy-up's byte budget: file data (not holes) left to copy; unlimited when !limited. */
struct copy_budget {
    bool limited;
    uint64_t total, left;
};

static int copy_range(int in, int out, off_t from, off_t to, struct copy_budget *b)
{
    char buf[65536];
    while (from < to) {
        size_t want = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
        if (b->limited) {
            if (b->left == 0)
                return -EFBIG;
            if (want > b->left)
                want = (size_t)b->left;
        }
        ssize_t n = pread(in, buf, want, from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0; /* the file shrank: the final ftruncate fixes the size */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = pwrite(out, buf + off, (size_t)(n - off), from + off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
        from += n;
        if (b->limited)
            b->left -= (uint64_t)n;
    }
    return 0;
}

/* Copies a regular file keeping its holes: only the data extents (SEEK_DATA/SEEK_HOLE) are
 * read and written, the rest stays unallocated; the apparent size is kept. */
static int copy_file_fd(int in, int out, off_t size, struct copy_budget *b)
{
    off_t pos = 0;
    while (pos < size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only a hole up to the end */
        off_t hole = data < 0 ? size : lseek(in, data, SEEK_HOLE);
        if (data < 0)
            data = pos; /* no SEEK_DATA here: copy everything */
        if (hole < 0 || hole > size)
            hole = size;
        int r = copy_range(in, out, data, hole, b);
        if (r < 0)
            return r;
        pos = hole > data ? hole : size;
    }
    if (ftruncate(out, size) < 0)
        return -errno;
    return 0;
}

/* Copies the tree below sfd into dfd relative to the two dirfds only: every entry is opened
 * with O_NOFOLLOW, symlinks are copied as links (never followed), devices, fifos and sockets
 * are skipped; owners and modes are kept. */
static int copy_tree(int sfd, int dfd, const char *what, int depth, struct copy_budget *b,
                     hull_error_t *err)
{
    if (depth > COPYUP_MAX_DEPTH)
        return hull_error_setx(err, ELOOP, "copy %s: directory tree deeper than %d", what,
                               COPYUP_MAX_DEPTH);
    int dup = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return hull_error_set(err, errno, "copy %s", what);
    _cleanup_closedir_ DIR *d = fdopendir(dup);
    if (d == NULL) {
        close(dup);
        return hull_error_set(err, errno, "copy %s", what);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return hull_error_set(err, errno, "copy %s/%s", what, n);
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dfd, n, 0700) < 0 && errno != EEXIST)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            _cleanup_close_ int s2 =
                openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int d2 =
                openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            _cleanup_free_ char *sub = xasprintf("%s/%s", what, n);
            int r = copy_tree(s2, d2, sub, depth + 1, b, err);
            if (r < 0)
                return r;
            if (fchown(d2, st.st_uid, st.st_gid) < 0 || fchmod(d2, st.st_mode & 07777) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner and mode", what, n);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int in = openat(sfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
            _cleanup_close_ int out =
                openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (in < 0 || out < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            int r = copy_file_fd(in, out, st.st_size, b);
            if (r == -EFBIG)
                return hull_error_setx(err, EFBIG,
                                       "copy %s/%s: the image's volume data exceeds the %llu-byte "
                                       "copy budget (max_volume_copy_size)",
                                       what, n, (unsigned long long)b->total);
            if (r < 0)
                return hull_error_set(err, -r, "copy %s/%s", what, n);
            if (fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner and mode", what, n);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t l = readlinkat(sfd, n, target, sizeof(target) - 1);
            if (l < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            target[l] = '\0';
            if (symlinkat(target, dfd, n) < 0)
                return hull_error_set(err, errno, "copy %s/%s", what, n);
            if (fchownat(dfd, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return hull_error_set(err, errno, "copy %s/%s: set owner", what, n);
        }
    }
    return 0;
}

/* containerd's image volume semantics: a fresh volume starts with what the image has at that
 * path.  The path is opened inside the rootfs only (RESOLVE_IN_ROOT): an image whose volume path
 * is, or goes through, a symlink to a host path copies from inside the rootfs, never the host
 * (CVE-2022-23648). */
static int volume_copy_up(const char *rootfs, const char *dest, const char *voldir,
                          struct copy_budget *b, hull_error_t *err)
{
    _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "open rootfs `%s`", rootfs);
    _cleanup_close_ int sfd = hull_open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY, 0);
    if (sfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* nothing in the image there */
        return hull_error_set(err, errno, "open %s in the image", dest);
    }
    _cleanup_close_ int dfd = open(voldir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return hull_error_set(err, errno, "open `%s`", voldir);
    int r = copy_tree(sfd, dfd, dest, 0, b, err);
    if (r < 0)
        return r;
    struct stat st;
    if (fstat(sfd, &st) == 0 &&
        (fchown(dfd, st.st_uid, st.st_gid) < 0 || fchmod(dfd, st.st_mode & 07777) < 0))
        return hull_error_set(err, errno, "set owner and mode of `%s`", voldir);
    return 0;
}

static bool is_runtime_path(const char *clean)
{
    static const char *const roots[] = {"/proc", "/sys", "/dev", NULL};
    for (const char *const *r = roots; *r; r++) {
        size_t n = strlen(*r);
        if (strncmp(clean, *r, n) == 0 && (clean[n] == '\0' || clean[n] == '/'))
            return true;
    }
    return false;
}

int spec_build_mounts(const struct spec_input *in, bool privileged, bool readonly_rootfs,
                      const struct ns_plan *ns, struct mntv *out, const char **rootfs_prop,
                      hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    struct mntv defaults = {0}, rest = {0};
    int r = 0;
    const char *sysmode = privileged ? "rw" : "ro";
    mnt_add(&defaults, MK_DEFAULT, "/proc", "proc", "proc", "nosuid", "noexec", "nodev", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755",
            "size=65536k", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/pts", "devpts", "devpts", "nosuid", "noexec",
            "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev",
            "mode=1777", "size=65536k", NULL);
    mnt_add(&defaults, MK_DEFAULT, "/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev",
            NULL);
    mnt_add(&defaults, MK_DEFAULT, "/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", sysmode,
            NULL);
    mnt_add(&defaults, MK_DEFAULT, "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec",
            "nodev", "relatime", sysmode, NULL);

    /* CRI mounts first (they override the pod's files of the same destination) */
    r = add_cri_mounts(in, ns, &rest, rootfs_prop, err);
    if (r < 0)
        goto out;

    const char *fmode = readonly_rootfs ? "ro" : "rw";
    struct {
        const char *dest, *src;
    } files[] = {
        {"/etc/hostname", sb->hostname_path},
        {"/etc/hosts", sb->hosts_path},
        {"/etc/resolv.conf", sb->resolv_path},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (!empty(files[i].src) && !mntv_has_dest(&rest, MK_CRI, files[i].dest))
            mnt_add(&rest, MK_EXTRA, files[i].dest, "bind", files[i].src, "rbind", "rprivate",
                    fmode, NULL);
    const char *shm = ns->host_ipc ? "/dev/shm" : sb->shm_path;
    if (!empty(shm) && !mntv_has_dest(&rest, MK_CRI, "/dev/shm"))
        mnt_add(&rest, MK_EXTRA, "/dev/shm", "bind", shm, "rbind", "rprivate", "rw", NULL);
    if (!mntv_has_dest(&rest, MK_CRI, "/dev/termination-log") && !empty(in->container_dir)) {
        _cleanup_free_ char *tl = NULL;
        r = create_termination_log(in->container_dir, &tl, err);
        if (r < 0)
            goto out;
        mnt_add(&rest, MK_EXTRA, "/dev/termination-log", "bind", tl, "rbind", "rprivate", "rw",
                NULL);
    }

    /* image volumes: container paths only, cleaned and confined; the host side is a fresh
     * directory named by a hash of the cleaned path */
    struct copy_budget budget = {.limited = in->volume_copy_budget > 0,
                                 .total = in->volume_copy_budget,
                                 .left = in->volume_copy_budget};
    for (char **v = in->image ? in->image->volumes : NULL; v && *v; v++) {
        _cleanup_free_ char *dest = hull_path_clean(*v, 0);
        if (strcmp(dest, "/") == 0 || mntv_has_dest(&rest, MK_CRI, dest) ||
            mntv_has_dest(&rest, MK_VOLUME, dest))
            continue;
        if (is_runtime_path(dest)) {
            /* an image may not shadow /proc, /sys or /dev (and with them the masked paths) */
            log_warn("container %s: image volume %s ignored", in->container_id, dest);
            continue;
        }
        if (empty(in->container_dir)) {
            r = hull_error_setx(err, EINVAL, "image volume %s: no container directory", dest);
            goto out;
        }
        char digest[72];
        image_sha256_digest(dest, strlen(dest), digest);
        _cleanup_free_ char *src =
            xasprintf("%s/volumes/%.32s", in->container_dir, digest + strlen("sha256:"));
        struct stat vst;
        bool fresh = lstat(src, &vst) < 0 && errno == ENOENT;
        r = hull_mkdir_p(src, 0755, err);
        if (r == 0 && fresh) {
            r = volume_copy_up(in->rootfs, dest, src, &budget, err);
            if (r < 0) {
                /* a half copied volume would be taken as done by a retry */
                _cleanup_error_ hull_error_t e2 = NULL;
                hull_rm_rf(src, &e2);
            }
        }
        if (r < 0) {
            hull_error_wrap(err, "image volume %s", dest);
            goto out;
        }
        mnt_add(&rest, MK_VOLUME, dest, "bind", src, "rbind", "rprivate", "rw", NULL);
    }

    /* defaults minus those a pod or CRI mount replaces (and all of /dev/... under a new /dev) */
    bool new_dev = false;
    for (size_t i = 0; i < rest.n; i++)
        if (strcmp(rest.v[i].dest, "/dev") == 0)
            new_dev = true;
    for (size_t i = 0; i < defaults.n; i++) {
        struct mnt *d = &defaults.v[i];
        bool drop = new_dev && strncmp(d->dest, "/dev/", 5) == 0;
        for (size_t j = 0; j < rest.n && !drop; j++)
            if (strcmp(rest.v[j].dest, d->dest) == 0)
                drop = true;
        if (drop)
            continue;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 32;
            out->v = xrealloc(out->v, out->cap * sizeof(struct mnt));
        }
        out->v[out->n++] = *d;
        memset(d, 0, sizeof(*d));
    }
    /* the others sorted so parents mount before children (stable) */
    qsort(rest.v, rest.n, sizeof(struct mnt), mnt_cmp);
    for (size_t i = 0; i < rest.n; i++) {
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 32;
            out->v = xrealloc(out->v, out->cap * sizeof(struct mnt));
        }
        out->v[out->n++] = rest.v[i];
        memset(&rest.v[i], 0, sizeof(rest.v[i]));
    }
out:
    spec_mntv_clear(&defaults);
    spec_mntv_clear(&rest);
    return r;
}

/* ---- pod user namespace ------------------------------------------------------------------ */
/* The container's volumes id-mapped through the pod's user namespace (containerd and CRI-O
 * give the runtime "idmap" mounts; hulld makes them itself so that runc 1.1 works too).  The
 * paths the mapped root must reach are in per-pod and per-container 0700 directories that
 * user owns (sandbox.c, container_create.c); nothing is made traversable for others. */
int spec_userns_prepare(const struct spec_input *in, struct mntv *mounts, hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    size_t n = 0;
    for (size_t i = 0; i < mounts->n; i++) {
        struct mnt *m = &mounts->v[i];
        if ((m->kind != MK_CRI && m->kind != MK_VOLUME) || m->image || strcmp(m->type, "bind") != 0)
            continue;
        if (empty(in->container_dir))
            return hull_error_setx(err, EINVAL, "id-mapped mount %s: no container directory",
                                   m->dest);
        struct stat st;
        if (stat(m->source, &st) < 0)
            return hull_error_set(err, errno, "mount %s: `%s`", m->dest, m->source);
        _cleanup_free_ char *dir = hull_path_join(in->container_dir, "idmap");
        /* passable: its parent, the container's directory, is the mapped root's 0700 */
        int r = hull_mkdir_p(dir, 0711, err);
        if (r < 0)
            return r;
        _cleanup_free_ char *target = xasprintf("%s/%zu", dir, n++);
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(target, 0700) < 0 && errno != EEXIST)
                return hull_error_set(err, errno, "mkdir `%s`", target);
        } else {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0)
                return hull_error_set(err, errno, "create `%s`", target);
            close(fd);
        }
        r = userns_idmap_mount(sb->userns_path, m->source, target, true, err);
        if (r < 0)
            return hull_error_wrap(err, "mount %s", m->dest);
        free(m->source);
        m->source = hull_steal(target);
    }
    return 0;
}

int spec_release_mounts(const char *container_dir, hull_error_t *err)
{
    if (empty(container_dir))
        return 0;
    return userns_unmount_below(container_dir, err);
}

void spec_model_mounts(struct hull_ocispec *m, const struct mntv *v)
{
    m->mounts = xmalloc0((v->n + 1) * sizeof(*m->mounts));
    for (size_t i = 0; i < v->n; i++) {
        const struct mnt *x = &v->v[i];
        struct hull_ocispec_mount *o = &m->mounts[m->n_mounts++];
        o->destination = xstrdup(x->dest);
        o->type = xstrdup(x->type);
        o->source = xstrdup(x->source);
        o->options = hull_strv_dup_n((const char *const *)x->opts.v, x->opts.n);
    }
}

static char **paths_or_defaults(char *const *own, size_t n, const char *const *defaults)
{
    if (n > 0)
        return hull_strv_dup_n((const char *const *)own, n);
    return hull_strv_dup_n(defaults, hull_strv_len((char *const *)defaults));
}

void spec_model_masked_paths(struct hull_ocispec_linux *l,
                             const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    l->masked_paths = paths_or_defaults(sc ? sc->masked_paths : NULL, sc ? sc->n_masked_paths : 0,
                                        default_masked_paths);
    l->readonly_paths = paths_or_defaults(sc ? sc->readonly_paths : NULL,
                                          sc ? sc->n_readonly_paths : 0, default_readonly_paths);
}
