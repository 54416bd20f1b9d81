/* Overlay assembly: mounts an image's layers as overlayfs lower directories using the short
 * link names (l/<short>), resolved relative to the store from a short-lived child process, so
 * images with hundreds of layers fit in the one page a mount's options may take. */

#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>

#define MAX_MOUNT_OPTS 4000

struct mount_job {
    const char *dir, *target, *opts;
    int err;
    bool in_chdir;
};

static void *mount_thread(void *arg)
{
    struct mount_job *j = arg;
    if (unshare(CLONE_FS) < 0 || chdir(j->dir) < 0) {
        j->err = errno;
        j->in_chdir = true;
    } else if (mount("overlay", j->target, "overlay", 0, j->opts) < 0) {
        j->err = errno;
    }
    return NULL;
}

int image_overlay_mount(struct image_store *s, const char *image_id, const char *upperdir,
                        const char *workdir, const char *target, const char *extra_opts,
                        hull_error_t *err)
{
    char **short_names = NULL;
    int r = image_lowerdirs(s, image_id, &short_names, NULL, err);
    if (r < 0)
        return r;
    size_t n = 0;
    while (short_names[n])
        n++;
    if ((upperdir == NULL) != (workdir == NULL)) {
        hull_strv_free(short_names);
        return hull_error_setx(err, EINVAL, "overlay: upperdir and workdir go together");
    }
    size_t cap = 64 + (upperdir ? strlen(upperdir) + strlen(workdir) : 0) +
                 (extra_opts ? strlen(extra_opts) : 0);
    for (size_t i = 0; i < n; i++)
        cap += strlen(short_names[i]) + 1;
    _cleanup_free_ char *opts = xmalloc0(cap);
    size_t o = 0;
    o += (size_t)snprintf(opts + o, cap - o, "lowerdir=");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(opts + o, cap - o, "%s%s", i ? ":" : "", short_names[i]);
    /* a read-only overlay needs two lowers: repeat an empty one if the image has one layer */
    bool single_ro = upperdir == NULL && n == 1;
    if (upperdir)
        o += (size_t)snprintf(opts + o, cap - o, ",upperdir=%s,workdir=%s", upperdir, workdir);
    if (extra_opts && *extra_opts)
        o += (size_t)snprintf(opts + o, cap - o, ",%s", extra_opts);
    hull_strv_free(short_names);
    if (n == 0)
        return hull_error_setx(err, EINVAL, "image \"%s\" has no layers", image_id);
    if (o >= MAX_MOUNT_OPTS)
        return hull_error_setx(err, E2BIG, "overlay options for image \"%s\" are %zu bytes",
                               image_id, o);
    const char *dir = image_store_dir(s);
    if (single_ro) {
        /* one layer, read-only: a read-only bind mount is the same tree */
        char **ap = NULL;
        r = image_lowerdirs(s, image_id, NULL, &ap, err);
        if (r < 0)
            return r;
        if (mount(ap[0], target, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
            int e = errno;
            hull_strv_free(ap);
            return hull_error_set(err, e, "bind mount image \"%s\" on `%s`", image_id, target);
        }
        hull_strv_free(ap);
        return 0;
    }
    /* The short lower names are relative to the store: mount from a thread with a working
     * directory of its own (unshare(CLONE_FS)), the rest of hulld keeps its own.  A thread
     * instead of a forked child: no copy of the daemon's page tables per container. */
    struct mount_job job = {.dir = dir, .target = target, .opts = opts};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int pr = pthread_create(&t, NULL, mount_thread, &job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pr != 0)
        return hull_error_set(err, pr, "start the overlay mount thread");
    pthread_join(t, NULL);
    if (job.err != 0)
        return hull_error_set(err, job.err, "mount overlay of image \"%s\" on `%s`%s", image_id,
                              target, job.in_chdir ? " (entering the store)" : "");
    return 0;
}

int image_overlay_mount_idmapped(struct image_store *s, const char *image_id, const char *upperdir,
                                 const char *workdir, const char *target, int userns_fd,
                                 hull_error_t *err)
{
    char **abs = NULL;
    int r = image_lowerdirs(s, image_id, NULL, &abs, err);
    if (r < 0)
        return r;
    size_t n = 0;
    while (abs[n])
        n++;
    if (n == 0 || (upperdir == NULL) != (workdir == NULL)) {
        hull_strv_free(abs);
        return hull_error_setx(err, EINVAL, "id-mapped overlay of image \"%s\": %s", image_id,
                               n == 0 ? "no layers" : "upperdir and workdir go together");
    }
    int *fds = xmalloc0(n * sizeof(int));
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    size_t cap = 64 + (upperdir ? strlen(upperdir) + strlen(workdir) : 0) + n * 32;
    _cleanup_free_ char *opts = xmalloc0(cap);
    size_t o = (size_t)snprintf(opts, cap, "lowerdir=");
    for (size_t i = 0; i < n && r == 0; i++) {
        fds[i] = open_tree(AT_FDCWD, abs[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fds[i] < 0) {
            r = hull_error_set(err, errno, "clone layer `%s`", abs[i]);
            break;
        }
        struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd};
        if (mount_setattr(fds[i], "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
            r = hull_error_set(err, errno, "id-map layer `%s`", abs[i]);
            break;
        }
        o += (size_t)snprintf(opts + o, cap - o, "%s/proc/self/fd/%d", i ? ":" : "", fds[i]);
    }
    if (r == 0 && upperdir == NULL && n == 1) {
        /* one layer, read-only: the id-mapped clone itself, made read-only */
        struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(fds[0], "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0 ||
            move_mount(fds[0], "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            r = hull_error_set(err, errno, "mount id-mapped image \"%s\" on `%s`", image_id,
                               target);
    } else if (r == 0) {
        if (upperdir)
            o += (size_t)snprintf(opts + o, cap - o, ",upperdir=%s,workdir=%s", upperdir, workdir);
        if (o >= MAX_MOUNT_OPTS)
            r = hull_error_setx(err, E2BIG, "overlay options for image \"%s\" are %zu bytes",
                                image_id, o);
        else if (mount("overlay", target, "overlay", upperdir ? 0 : MS_RDONLY, opts) < 0)
            r = hull_error_set(err, errno, "mount id-mapped overlay of image \"%s\" on `%s`",
                               image_id, target);
    }
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    hull_strv_free(abs);
    return r;
}
