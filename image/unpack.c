/* Layer unpack.  A layer is untrusted input: every path is resolved beneath the layer's dirfd
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), entries with ".." are refused, link
 * targets must stay inside the layer, and metadata is set on fds or with AT_SYMLINK_NOFOLLOW so
 * it never lands on what a link points to.  libarchive only parses (decompression + tar
 * headers); it never touches the file system. */

#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#define READ_BLOCK (1 << 20)

struct dir_time {
    char *path;
    struct timespec ts[2];
};

struct unpack {
    int rootfd;
    int fd; /* the (compressed) input */
    struct archive *outer;
    struct archive *tar;
    struct image_sha256 hash;
    bool hashing;
    uint64_t raw_bytes;
    /* cache of the last parent dir opened */
    char *parent_path;
    int parent_fd;
    struct dir_time *dirs;
    size_t n_dirs, cap_dirs;
    struct image_unpack_stats stats;
    uint64_t max_bytes; /* cap on stats.bytes, 0 = none */
    int64_t *budget;    /* bytes the whole image may still expand to (shared), NULL = none */
    uint64_t min_free;  /* bytes that must stay free on the target filesystem, 0 = no check */
    bool (*abort)(void *arg);
    void *abort_arg;
    bool truncated_tail; /* the archive ended inside the last entry's padding (umoci) */
    hull_error_t *err;
};

static long sys_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags, .mode = 0, .resolve = resolve};
    long r;
    do
        r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    while (r < 0 && errno == EAGAIN);
    return r;
}

/* what one layer entry counts against max_layer_size besides its data */
#define UNPACK_ENTRY_CHARGE 4096
#define UNPACK_ENTRY_SLACK  1024

/* Charges `bytes` of file data (plus one entry) against the image's budget and checks that
 * the image filesystem keeps min_free bytes free once they are written (kubelet's image GC
 * and everything else on it rely on the space ImageFsInfo and statfs report). */
static int charge_image(struct unpack *u, uint64_t bytes, const char *raw)
{
    if (u->budget) {
        int64_t cost =
            (int64_t)(bytes > (uint64_t)INT64_MAX / 2 ? (uint64_t)INT64_MAX / 2 : bytes) +
            UNPACK_ENTRY_CHARGE;
        int64_t left = __atomic_sub_fetch(u->budget, cost, __ATOMIC_SEQ_CST);
        if (left < 0)
            return hull_error_setx(
                u->err, EFBIG, "image expands beyond its cap (max_image_size) at \"%.64s\"", raw);
    }
    if (u->min_free > 0 && bytes > 0) {
        struct statvfs sv;
        if (fstatvfs(u->rootfd, &sv) == 0) {
            uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
            if (avail < u->min_free || avail - u->min_free < bytes)
                return hull_error_setx(
                    u->err, ENOSPC,
                    "not enough free space on the image filesystem for \"%.64s\" (%llu bytes): "
                    "%llu bytes free, %llu must stay free (image_fs_min_free)",
                    raw, (unsigned long long)bytes, (unsigned long long)avail,
                    (unsigned long long)u->min_free);
        }
    }
    return 0;
}

#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* An archive path as a path relative to the layer root (hull_path_clean without the leading
 * '/', "" for the root); a ".." component is refused (-1). */
static int clean_path(const char *in, char **out)
{
    if (hull_path_has_dotdot(in))
        return -1;
    _cleanup_free_ char *abs = hull_path_clean(in, 0);
    *out = xstrdup(abs + 1);
    return 0;
}

/* Removes name under dirfd, whatever it is (a directory recursively), never following links. */
static int remove_at(int dfd, const char *name, int depth)
{
    if (depth > 512) {
        errno = ELOOP;
        return -1;
    }
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = (int)sys_openat2(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_at(dirfd(d), de->d_name, depth + 1) < 0) {
            r = -1;
            break;
        }
    }
    int e = errno;
    closedir(d);
    if (r < 0) {
        errno = e;
        return -1;
    }
    return unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Opens (creating missing components, mode 0755) the directory rel beneath the root; a
 * component that is a symlink is refused (ELOOP), one that is a non-directory is replaced. */
static int open_dir_beneath(struct unpack *u, const char *rel, bool create, const char *entry)
{
    if (*rel == '\0')
        return fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
    int fd = (int)sys_openat2(u->rootfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (fd >= 0)
        return fd;
    if (errno == ELOOP || errno == EXDEV)
        return hull_error_setx(u->err, EPERM,
                               "layer entry \"%s\": a parent directory is a symbolic link", entry);
    if (!create || (errno != ENOENT && errno != ENOTDIR))
        return hull_error_set(u->err, errno, "layer entry \"%s\": open parent \"%s\"", entry, rel);
    /* walk component by component */
    _cleanup_free_ char *dup = xstrdup(rel);
    int cur = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0)
        return hull_error_set(u->err, errno, "dup");
    char *save = NULL;
    for (char *c = strtok_r(dup, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int next = -1;
        for (int attempt = 0; attempt < 3 && next < 0; attempt++) {
            next = (int)sys_openat2(cur, c, O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH);
            if (next >= 0)
                break;
            if (errno == ELOOP || errno == EXDEV) {
                close(cur);
                return hull_error_setx(u->err, EPERM,
                                       "layer entry \"%s\": a parent directory is a symbolic link",
                                       entry);
            }
            if (errno == ENOTDIR) {
                if (unlinkat(cur, c, 0) < 0 && errno != ENOENT) {
                    int e = errno;
                    close(cur);
                    return hull_error_set(u->err, e, "layer entry \"%s\": replace \"%s\"", entry,
                                          c);
                }
            } else if (errno != ENOENT) {
                int e = errno;
                close(cur);
                return hull_error_set(u->err, e, "layer entry \"%s\": open \"%s\"", entry, c);
            }
            if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                return hull_error_set(u->err, e, "layer entry \"%s\": mkdir \"%s\"", entry, c);
            }
            u->stats.entries++;
        }
        close(cur);
        if (next < 0)
            return hull_error_set(u->err, errno, "layer entry \"%s\": open \"%s\"", entry, c);
        cur = next;
    }
    return cur;
}

/* The parent dir of rel (cached: archives list siblings together).  Returns a borrowed fd. */
static int parent_of(struct unpack *u, const char *rel, const char **base, const char *entry)
{
    const char *slash = strrchr(rel, '/');
    _cleanup_free_ char *parent = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
    *base = slash ? slash + 1 : rel;
    if (u->parent_path && strcmp(u->parent_path, parent) == 0)
        return u->parent_fd;
    int fd = open_dir_beneath(u, parent, true, entry);
    if (fd < 0)
        return fd;
    if (u->parent_fd >= 0)
        close(u->parent_fd);
    free(u->parent_path);
    u->parent_fd = fd;
    u->parent_path = hull_steal(parent);
    return fd;
}

static void forget_parent_cache(struct unpack *u)
{
    if (u->parent_fd >= 0)
        close(u->parent_fd);
    u->parent_fd = -1;
    free(u->parent_path);
    u->parent_path = NULL;
}

static bool xattr_allowed(const char *name)
{
    if (strncmp(name, "trusted.overlay.", 16) == 0)
        return false; /* would steer overlayfs (redirects, opaque, metacopy) */
    return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0 ||
           strncmp(name, "trusted.", 8) == 0;
}

static int apply_xattrs(struct unpack *u, int fd, struct archive_entry *e, const char *entry)
{
    const char *name;
    const void *value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (!xattr_allowed(name))
            continue;
        if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP && errno != EOPNOTSUPP)
            return hull_error_set(u->err, errno, "layer entry \"%s\": set xattr %s", entry, name);
    }
    return 0;
}

static int check_ids(struct unpack *u, struct archive_entry *e, uid_t *uid, gid_t *gid,
                     const char *entry)
{
    la_int64_t U = archive_entry_uid(e), G = archive_entry_gid(e);
    if (U < 0 || U >= (la_int64_t)UINT32_MAX || G < 0 || G >= (la_int64_t)UINT32_MAX)
        return hull_error_setx(u->err, EINVAL, "layer entry \"%s\": uid/gid out of range", entry);
    *uid = (uid_t)U;
    *gid = (gid_t)G;
    return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
    if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
        ts[0].tv_nsec = 0;
    if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
        ts[1].tv_nsec = 0;
}

/* Makes room for a new non-directory entry: whatever is at name goes. */
static int clear_slot(struct unpack *u, int pfd, const char *base, const char *entry)
{
    if (remove_at(pfd, base, 0) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": replace existing", entry);
    return 0;
}

static int write_data(struct unpack *u, int fd, const char *entry, la_int64_t entry_size)
{
    const void *buf;
    size_t size;
    la_int64_t off, end = 0;
    for (;;) {
        int r = archive_read_data_block(u->tar, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN && end >= entry_size && entry_size >= 0) {
            /* every byte of the entry came, only the padding to 512 is missing: writers such
             * as umoci end the stream there, without padding or end-of-archive blocks */
            u->truncated_tail = true;
            return 0;
        }
        if (r < ARCHIVE_WARN)
            return hull_error_setx(u->err, EIO, "layer entry \"%s\": read data: %s", entry,
                                   archive_error_string(u->tar) ? archive_error_string(u->tar)
                                                                : "truncated");
        if (u->abort && u->abort(u->abort_arg))
            return hull_error_setx(u->err, ECANCELED, "unpack abandoned: no caller wants it");
        if (off + (la_int64_t)size > end)
            end = off + (la_int64_t)size;
        const char *p = buf;
        while (size > 0) {
            ssize_t w = pwrite(fd, p, size, off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return hull_error_set(u->err, errno, "layer entry \"%s\": write", entry);
            }
            p += w;
            off += w;
            size -= (size_t)w;
        }
    }
}

/* One layer entry, as do_entry's steps see it. */
struct entry {
    struct archive_entry *e;
    const char *raw; /* its name in the archive, for messages */
    const char *rel; /* cleaned, relative to the layer root */
    mode_t type, perm;
    uid_t uid;
    gid_t gid;
    struct timespec ts[2];
    int pfd;          /* its parent directory (cached by parent_of) */
    const char *base; /* its name in pfd */
};

/* The layer root itself: only its owner and mode. */
static int root_entry(struct unpack *u, const struct entry *en)
{
    if (en->type != AE_IFDIR)
        return hull_error_setx(u->err, EINVAL, "layer entry \"%s\": root is not a directory",
                               en->raw);
    if (fchown(u->rootfd, en->uid, en->gid) < 0 || fchmod(u->rootfd, en->perm) < 0)
        return hull_error_set(u->err, errno, "layer root: set owner/mode");
    return 0;
}

/* OCI whiteouts: .wh..wh..opq marks the directory opaque, .wh.NAME hides NAME. */
static int whiteout_entry(struct unpack *u, const struct entry *en)
{
    const char *raw = en->raw;
    if (strcmp(en->base, ".wh..wh..opq") == 0) {
        int dfd = (int)sys_openat2(en->pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, BENEATH);
        if (dfd < 0)
            return hull_error_set(u->err, errno, "layer entry \"%s\": open dir", raw);
        int sr = fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0);
        int se = errno;
        close(dfd);
        if (sr < 0)
            return hull_error_set(u->err, se, "layer entry \"%s\": mark opaque", raw);
        return 0;
    }
    if (strncmp(en->base, ".wh..wh.", 8) == 0)
        return 0; /* aufs metadata */
    const char *victim = en->base + 4;
    if (*victim == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
        return hull_error_setx(u->err, EPERM, "layer entry \"%s\": bad whiteout", raw);
    int r = clear_slot(u, en->pfd, victim, raw);
    if (r < 0)
        return r;
    if (mknodat(en->pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": create whiteout", raw);
    if (fchownat(en->pfd, victim, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": chown whiteout", raw);
    u->stats.entries++;
    return 0;
}

/* A hard link to a non-directory already unpacked in the layer. */
static int hardlink_entry(struct unpack *u, const struct entry *en, const char *hardlink)
{
    const char *raw = en->raw;
    _cleanup_free_ char *target = NULL;
    if (clean_path(hardlink, &target) < 0 || *target == '\0')
        return hull_error_setx(u->err, EPERM,
                               "layer entry \"%s\": hard link to \"%s\" escapes the layer", raw,
                               hardlink);
    if (strcmp(target, en->rel) == 0)
        return 0;
    const char *tslash = strrchr(target, '/');
    _cleanup_free_ char *tparent =
        tslash ? xstrndup(target, (size_t)(tslash - target)) : xstrdup("");
    const char *tbase = tslash ? tslash + 1 : target;
    _cleanup_close_ int tfd = open_dir_beneath(u, tparent, false, raw);
    if (tfd < 0) {
        hull_error_free(u->err);
        return hull_error_setx(u->err, EPERM,
                               "layer entry \"%s\": hard link target \"%s\" is not in the "
                               "layer",
                               raw, hardlink);
    }
    struct stat st;
    if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return hull_error_setx(u->err, EPERM,
                               "layer entry \"%s\": hard link target \"%s\" is not in the "
                               "layer",
                               raw, hardlink);
    if (S_ISDIR(st.st_mode))
        return hull_error_setx(u->err, EPERM, "layer entry \"%s\": hard link to a directory", raw);
    int r = clear_slot(u, en->pfd, en->base, raw);
    if (r < 0)
        return r;
    if (linkat(tfd, tbase, en->pfd, en->base, 0) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": link to \"%s\"", raw, hardlink);
    return 0;
}

/* A directory: made (or kept), owned, its xattrs set; its times are set at the end. */
static int dir_entry(struct unpack *u, const struct entry *en)
{
    const char *raw = en->raw;
    int r;
    struct stat st;
    if (fstatat(en->pfd, en->base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        r = clear_slot(u, en->pfd, en->base, raw);
        if (r < 0)
            return r;
    }
    if (mkdirat(en->pfd, en->base, 0700) < 0) {
        if (errno != EEXIST)
            return hull_error_set(u->err, errno, "layer entry \"%s\": mkdir", raw);
    } else {
        u->stats.entries++;
    }
    _cleanup_close_ int dfd =
        (int)sys_openat2(en->pfd, en->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC, BENEATH);
    if (dfd < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": open dir", raw);
    if (fchown(dfd, en->uid, en->gid) < 0 || fchmod(dfd, en->perm) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": set owner/mode", raw);
    r = apply_xattrs(u, dfd, en->e, raw);
    if (r < 0)
        return r;
    if (u->n_dirs == u->cap_dirs) {
        u->cap_dirs = u->cap_dirs ? u->cap_dirs * 2 : 64;
        u->dirs = xrealloc(u->dirs, u->cap_dirs * sizeof(*u->dirs));
    }
    u->dirs[u->n_dirs].path = xstrdup(en->rel);
    memcpy(u->dirs[u->n_dirs].ts, en->ts, sizeof(en->ts));
    u->n_dirs++;
    return 0;
}

/* A regular file, within the layer's and the image's size caps. */
static int file_entry(struct unpack *u, const struct entry *en)
{
    const char *raw = en->raw;
    la_int64_t want = archive_entry_size(en->e);
    if (u->max_bytes > 0 && want > 0 &&
        (uint64_t)want >
            u->max_bytes - (u->stats.bytes < u->max_bytes ? u->stats.bytes : u->max_bytes))
        return hull_error_setx(u->err, EFBIG,
                               "layer expands beyond the %llu-byte cap (max_layer_size) at "
                               "\"%.64s\"",
                               (unsigned long long)u->max_bytes, raw);
    int r = charge_image(u, want > 0 ? (uint64_t)want : 0, raw);
    if (r < 0)
        return r;
    r = clear_slot(u, en->pfd, en->base, raw);
    if (r < 0)
        return r;
    _cleanup_close_ int fd =
        openat(en->pfd, en->base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": create", raw);
    u->stats.entries++;
    r = write_data(u, fd, raw, archive_entry_size(en->e));
    if (r < 0)
        return r;
    la_int64_t size = archive_entry_size(en->e);
    if (size > 0 && ftruncate(fd, size) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": truncate", raw);
    u->stats.bytes += size > 0 ? (uint64_t)size : 0;
    if (fchown(fd, en->uid, en->gid) < 0 || fchmod(fd, en->perm) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": set owner/mode", raw);
    r = apply_xattrs(u, fd, en->e, raw);
    if (r < 0)
        return r;
    if (futimens(fd, en->ts) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": set times", raw);
    return 0;
}

static int symlink_entry(struct unpack *u, const struct entry *en)
{
    const char *raw = en->raw;
    const char *target = archive_entry_symlink(en->e);
    if (target == NULL || *target == '\0')
        return hull_error_setx(u->err, EINVAL, "layer entry \"%s\": empty symlink", raw);
    int r = clear_slot(u, en->pfd, en->base, raw);
    if (r < 0)
        return r;
    /* The target is kept as is: it is never followed here, and in the container it resolves
     * inside the container's root. */
    if (symlinkat(target, en->pfd, en->base) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": symlink", raw);
    u->stats.entries++;
    if (fchownat(en->pfd, en->base, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": lchown", raw);
    if (utimensat(en->pfd, en->base, en->ts, AT_SYMLINK_NOFOLLOW) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": set times", raw);
    return 0;
}

/* A character or block device, or a FIFO. */
static int node_entry(struct unpack *u, const struct entry *en)
{
    const char *raw = en->raw;
    int r = clear_slot(u, en->pfd, en->base, raw);
    if (r < 0)
        return r;
    dev_t dev = en->type == AE_IFIFO ? 0 : archive_entry_rdev(en->e);
    if (mknodat(en->pfd, en->base, en->type | 0600, dev) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": mknod", raw);
    u->stats.entries++;
    if (fchownat(en->pfd, en->base, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
        fchmodat(en->pfd, en->base, en->perm, AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(en->pfd, en->base, en->ts, AT_SYMLINK_NOFOLLOW) < 0)
        return hull_error_set(u->err, errno, "layer entry \"%s\": set metadata", raw);
    return 0;
}

/* An entry below the root, by its kind. */
static int place_entry(struct unpack *u, const struct entry *en)
{
    if (strncmp(en->base, ".wh.", 4) == 0)
        return whiteout_entry(u, en);
    const char *hardlink = archive_entry_hardlink(en->e);
    if (hardlink != NULL)
        return hardlink_entry(u, en, hardlink);
    switch (en->type) {
    case AE_IFDIR:
        return dir_entry(u, en);
    case AE_IFREG:
        return file_entry(u, en);
    case AE_IFLNK:
        return symlink_entry(u, en);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        return node_entry(u, en);
    case AE_IFSOCK:
        return 0; /* sockets are not archived meaningfully */
    default:
        return hull_error_setx(u->err, EINVAL, "layer entry \"%s\": unsupported type 0%o", en->raw,
                               (unsigned)en->type);
    }
}

static int do_entry(struct unpack *u, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    if (raw == NULL)
        return hull_error_setx(u->err, EINVAL, "layer entry without a name");
    _cleanup_free_ char *rel = NULL;
    if (clean_path(raw, &rel) < 0)
        return hull_error_setx(u->err, EPERM,
                               "layer entry \"%s\": path with \"..\" escapes the layer", raw);
    struct entry en = {.e = e, .raw = raw, .rel = rel, .type = archive_entry_filetype(e)};
    int r = check_ids(u, e, &en.uid, &en.gid, raw);
    if (r < 0)
        return r;
    en.perm = archive_entry_perm(e) & 07777;
    entry_times(e, en.ts);
    if (*rel == '\0') /* the layer root itself */
        return root_entry(u, &en);
    en.pfd = parent_of(u, rel, &en.base, raw);
    if (en.pfd < 0)
        return en.pfd;
    if (strlen(en.base) > 255)
        return hull_error_setx(u->err, ENAMETOOLONG, "layer entry \"%s\": name too long", raw);
    return place_entry(u, &en);
}

/* The tar reader pulls decompressed bytes from the outer (raw) reader, hashing them on the way:
 * that is the diff id. */
static la_ssize_t tar_read_cb(struct archive *a, void *opaque, const void **buf)
{
    struct unpack *u = opaque;
    size_t size;
    la_int64_t off;
    int r = archive_read_data_block(u->outer, buf, &size, &off);
    if (r == ARCHIVE_EOF)
        return 0;
    if (r < ARCHIVE_WARN) {
        archive_set_error(a, EIO, "decompress: %s",
                          archive_error_string(u->outer) ? archive_error_string(u->outer)
                                                         : "error");
        return -1;
    }
    if (u->hashing)
        image_sha256_update(&u->hash, *buf, size);
    u->raw_bytes += size;
    return (la_ssize_t)size;
}

static int finish_dirs(struct unpack *u)
{
    /* deepest first does not matter for times set on fds; set them after all children exist */
    for (size_t i = u->n_dirs; i-- > 0;) {
        int fd = (int)sys_openat2(u->rootfd, u->dirs[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                  BENEATH);
        if (fd < 0)
            continue; /* replaced later in the archive */
        (void)futimens(fd, u->dirs[i].ts);
        close(fd);
    }
    return 0;
}

int image_unpack_layer(int fd, int dirfd, const char *diff_id, struct image_unpack_stats *stats,
                       hull_error_t *err)
{
    return image_unpack_layer_capped(fd, dirfd, diff_id, 0, stats, err);
}

int image_unpack_layer_capped(int fd, int dirfd, const char *diff_id, uint64_t max_bytes,
                              struct image_unpack_stats *stats, hull_error_t *err)
{
    struct image_unpack_limits lim = {.max_bytes = max_bytes};
    return image_unpack_layer_limited(fd, dirfd, diff_id, &lim, stats, err);
}

/* The outer archive (any compression, raw) and the tar read through it (tar_read_cb). */
static int open_archives(struct unpack *u)
{
    u->outer = archive_read_new();
    u->tar = archive_read_new();
    if (u->outer == NULL || u->tar == NULL)
        abort();
    archive_read_support_filter_all(u->outer);
    archive_read_support_format_raw(u->outer);
    archive_read_support_format_tar(u->tar);
    if (archive_read_open_fd(u->outer, u->fd, READ_BLOCK) != ARCHIVE_OK)
        return hull_error_setx(u->err, EINVAL, "open layer: %s", archive_error_string(u->outer));
    struct archive_entry *oe;
    if (archive_read_next_header(u->outer, &oe) != ARCHIVE_OK)
        return hull_error_setx(u->err, EINVAL, "open layer: %s", archive_error_string(u->outer));
    if (archive_read_open(u->tar, u, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
        return hull_error_setx(u->err, EINVAL, "read layer: %s",
                               archive_error_string(u->tar) ? archive_error_string(u->tar)
                                                            : "not a tar archive");
    return 0;
}

/* Every tar entry, within the entry cap and while some caller still wants the layer. */
static int unpack_entries(struct unpack *u)
{
    uint64_t n_seen = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(u->tar, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN) {
            const char *m = archive_error_string(u->tar);
            return hull_error_setx(u->err, EINVAL, "read layer: %s", m ? m : "bad tar header");
        }
        /* every entry costs an inode whatever its size: charged one block against the cap, so a
         * small layer of empty files cannot exhaust the filesystem's inodes either */
        n_seen++;
        uint64_t max_entries = u->max_bytes / UNPACK_ENTRY_CHARGE + UNPACK_ENTRY_SLACK;
        if (u->max_bytes > 0 && n_seen > max_entries)
            return hull_error_setx(
                u->err, EFBIG, "layer holds more than %llu entries (max_layer_size / %d + %d)",
                (unsigned long long)max_entries, UNPACK_ENTRY_CHARGE, UNPACK_ENTRY_SLACK);
        if (u->abort && u->abort(u->abort_arg))
            return hull_error_setx(u->err, ECANCELED, "unpack abandoned: no caller wants it");
        int ret = do_entry(u, e);
        if (ret < 0)
            return ret;
        if (u->truncated_tail)
            return 0;
        /* entries that replace directories invalidate the cached parent */
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
            forget_parent_cache(u);
    }
}

/* Drain what follows the end-of-archive marker so the whole stream is hashed. */
static int drain_tail(struct unpack *u)
{
    for (;;) {
        const void *b;
        la_ssize_t n = tar_read_cb(u->tar, u, &b);
        if (n < 0)
            return hull_error_setx(u->err, EIO, "read layer: %s",
                                   archive_error_string(u->tar) ? archive_error_string(u->tar)
                                                                : "decompress failed");
        if (n == 0)
            return 0;
    }
}

/* The uncompressed stream's digest is the layer's diff id. */
static int check_diff_id(struct unpack *u, const char *diff_id)
{
    if (!diff_id)
        return 0;
    char got[72];
    image_sha256_final_digest(&u->hash, got);
    if (strcmp(got, diff_id) != 0)
        return hull_error_setx(u->err, EILSEQ,
                               "layer content does not match its diff id: expected %s, got %s",
                               diff_id, got);
    return 0;
}

int image_unpack_layer_limited(int fd, int dirfd, const char *diff_id,
                               const struct image_unpack_limits *lim,
                               struct image_unpack_stats *stats, hull_error_t *err)
{
    struct unpack u = {.rootfd = dirfd,
                       .fd = fd,
                       .parent_fd = -1,
                       .err = err,
                       .max_bytes = lim->max_bytes,
                       .budget = lim->image_budget,
                       .min_free = lim->min_free,
                       .abort = lim->abort,
                       .abort_arg = lim->abort_arg};
    image_sha256_init(&u.hash);
    u.hashing = diff_id != NULL;
    int ret = open_archives(&u);
    if (ret == 0)
        ret = unpack_entries(&u);
    if (ret == 0)
        ret = drain_tail(&u);
    if (ret == 0) {
        finish_dirs(&u);
        ret = check_diff_id(&u, diff_id);
    }
    if (ret == 0 && stats)
        *stats = u.stats;
    forget_parent_cache(&u);
    for (size_t i = 0; i < u.n_dirs; i++)
        free(u.dirs[i].path);
    free(u.dirs);
    archive_read_free(u.tar);
    archive_read_free(u.outer);
    return ret;
}
