/* Image volumes: read-only overlays of pulled images for CRI Mount.image (spec.h). */
#include "server/spec/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char *list_path(const char *container_dir)
{
    return hull_path_join(container_dir, "image-mounts.list");
}

static int record(const char *container_dir, const char *id, hull_error_t *err)
{
    _cleanup_free_ char *p = list_path(container_dir);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", p);
    _cleanup_free_ char *line = xasprintf("%s\n", id);
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n)
        return hull_error_set(err, errno, "write `%s`", p);
    return 0;
}

void spec_image_mounts_free(char **roots, size_t n)
{
    if (roots == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(roots[i]);
    free(roots);
}

int spec_image_mounts_prepare(struct image_store *is, Runtime__V1__ContainerConfig *cfg,
                              const char *container_dir, const char *userns_path, char ***roots_out,
                              hull_error_t *err)
{
    *roots_out = NULL;
    size_t n = cfg->n_mounts;
    bool any = false;
    for (size_t i = 0; i < n; i++)
        if (cfg->mounts[i]->image && cfg->mounts[i]->image->image &&
            cfg->mounts[i]->image->image[0])
            any = true;
    if (!any)
        return 0;
    if (is == NULL)
        return hull_error_setx(err, EOPNOTSUPP, "image mounts: no image store");
    char **roots = xmalloc0((n + 1) * sizeof(char *));
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        Runtime__V1__Mount *m = cfg->mounts[i];
        if (m->image == NULL || m->image->image == NULL || m->image->image[0] == '\0')
            continue;
        const char *cp = m->container_path ? m->container_path : "";
        if (!m->readonly) {
            r = hull_error_setx(err, EINVAL,
                                "image mount %s: an image volume is read-only (readonly must be "
                                "set)",
                                cp);
            break;
        }
        struct image_info *img = NULL;
        r = image_resolve(is, m->image->image, &img, err);
        if (r < 0) {
            hull_error_wrap(err, "image mount %s: image \"%s\" (it must be pulled first)", cp,
                            m->image->image);
            break;
        }
        _cleanup_free_ char *id = xstrdup(img->id);
        image_info_free(img);
        if (m->image->image_ref && m->image->image_ref != protobuf_c_empty_string)
            free(m->image->image_ref);
        m->image->image_ref = xstrdup(id);
        r = image_acquire(is, id, err);
        if (r < 0)
            break;
        r = record(container_dir, id, err);
        if (r < 0) {
            image_release(is, id);
            break;
        }
        _cleanup_free_ char *dir = hull_path_join(container_dir, "image-mounts");
        roots[i] = xasprintf("%s/%zu", dir, i);
        r = hull_mkdir_p(roots[i], 0755, err);
        if (r == 0 && userns_path) {
            _cleanup_close_ int us = open(userns_path, O_RDONLY | O_CLOEXEC);
            r = us < 0 ? hull_error_set(err, errno, "open `%s`", userns_path)
                       : image_overlay_mount_idmapped(is, id, NULL, NULL, roots[i], us, err);
        } else if (r == 0) {
            r = image_overlay_mount(is, id, NULL, NULL, roots[i], NULL, err);
        }
        if (r < 0)
            hull_error_wrap(err, "image mount %s", cp);
    }
    if (r < 0) {
        spec_image_mounts_free(roots, n);
        return r;
    }
    *roots_out = roots;
    return 0;
}

static void each_recorded(struct image_store *is, const char *container_dir, bool acquire)
{
    _cleanup_free_ char *p = list_path(container_dir);
    _cleanup_fclose_ FILE *f = fopen(p, "re");
    if (f == NULL)
        return;
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (line[0] == '\0' || is == NULL)
            continue;
        if (acquire) {
            _cleanup_error_ hull_error_t e = NULL;
            if (image_acquire(is, line, &e) < 0)
                log_warn("image mount: %s", hull_error_msg(&e));
        } else {
            image_release(is, line);
        }
    }
}

void spec_image_mounts_acquire(struct image_store *is, const char *container_dir)
{
    each_recorded(is, container_dir, true);
}

void spec_image_mounts_release(struct image_store *is, const char *container_dir)
{
    each_recorded(is, container_dir, false);
    _cleanup_free_ char *p = list_path(container_dir);
    unlink(p);
}
