/* The container's devices: CRI devices (nodes or directories of nodes), all host devices for
 * privileged containers, and the device cgroup rules. */
#include "server/spec/spec_internal.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* ---- devices ----------------------------------------------------------------------------- */
struct dev {
    char *path;
    char type;
    unsigned major, minor;
    uint32_t mode, uid, gid;
    char access[4];
};

void spec_devv_clear(struct devv *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].path);
    free(d->v);
    memset(d, 0, sizeof(*d));
}

static void devv_add(struct devv *d, const char *path, const struct stat *st, const char *access)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].path, path) == 0) { /* a later entry replaces an earlier one */
            free(d->v[i].path);
            memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(struct dev));
            d->n--;
            break;
        }
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 32;
        d->v = xrealloc(d->v, d->cap * sizeof(struct dev));
    }
    struct dev *x = &d->v[d->n++];
    memset(x, 0, sizeof(*x));
    x->path = xstrdup(path);
    x->type = S_ISBLK(st->st_mode) ? 'b' : 'c';
    x->major = major(st->st_rdev);
    x->minor = minor(st->st_rdev);
    x->mode = st->st_mode & 07777;
    x->uid = st->st_uid;
    x->gid = st->st_gid;
    snprintf(x->access, sizeof(x->access), "%s", access);
}

static bool host_dev_skip(const char *name)
{
    static const char *const skip[] = {"pts",  "shm",         "fd",    "mqueue",
                                       ".lxc", ".lxd-mounts", ".udev", NULL};
    for (const char *const *s = skip; *s; s++)
        if (strcmp(name, *s) == 0)
            return true;
    return false;
}

/* All device nodes under dir (privileged containers), like containerd's HostDevices(). */
void spec_add_host_devices(struct devv *d, const char *dir, int depth)
{
    if (depth > 8)
        return;
    _cleanup_closedir_ DIR *dp = opendir(dir);
    if (dp == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *p = hull_path_join(dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!host_dev_skip(de->d_name))
                spec_add_host_devices(d, p, depth + 1);
            continue;
        }
        if (strcmp(p, "/dev/console") == 0)
            continue;
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            devv_add(d, p, &st, "rwm");
    }
}

int spec_add_cri_devices(const Runtime__V1__ContainerConfig *c, struct devv *d, hull_error_t *err)
{
    for (size_t i = 0; i < c->n_devices; i++) {
        const Runtime__V1__Device *dv = c->devices[i];
        const char *hp = S(dv->host_path), *cp = S(dv->container_path);
        const char *perm = empty(dv->permissions) ? "rwm" : dv->permissions;
        if (hp[0] != '/')
            return hull_error_setx(err, EINVAL, "device host_path \"%s\" must be absolute", hp);
        if (empty(cp))
            cp = hp;
        if (cp[0] != '/')
            return hull_error_setx(err, EINVAL, "device container_path \"%s\" must be absolute",
                                   cp);
        if (strlen(perm) > 3 || strspn(perm, "rwm") != strlen(perm))
            return hull_error_setx(err, EINVAL,
                                   "device %s: invalid permissions \"%s\" (a subset "
                                   "of \"rwm\")",
                                   hp, perm);
        _cleanup_free_ char *dest = hull_path_clean(cp, 0);
        struct stat st;
        if (stat(hp, &st) < 0)
            return hull_error_set(err, errno, "device `%s`", hp);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            devv_add(d, dest, &st, perm);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            return hull_error_setx(err, EINVAL, "device `%s` is not a device node", hp);
        /* a directory: every device node directly in it */
        _cleanup_closedir_ DIR *dp = opendir(hp);
        if (dp == NULL)
            return hull_error_set(err, errno, "device directory `%s`", hp);
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            _cleanup_free_ char *p = hull_path_join(hp, de->d_name);
            struct stat est;
            if (de->d_name[0] == '.' || lstat(p, &est) < 0 ||
                !(S_ISCHR(est.st_mode) || S_ISBLK(est.st_mode)))
                continue;
            _cleanup_free_ char *dd = hull_path_join(dest, de->d_name);
            devv_add(d, dd, &est, perm);
        }
    }
    return 0;
}

void spec_model_devices(struct hull_ocispec_linux *l, const struct devv *d)
{
    l->devices = xmalloc0((d->n + 1) * sizeof(*l->devices));
    for (size_t i = 0; i < d->n; i++) {
        const struct dev *x = &d->v[i];
        l->devices[l->n_devices++] = (struct hull_ocispec_device){
            .path = xstrdup(x->path),
            .type = x->type,
            .major = x->major,
            .minor = x->minor,
            .has_file_mode = true,
            .file_mode = x->mode,
            .has_uid = true,
            .uid = x->uid,
            .has_gid = true,
            .gid = x->gid,
        };
    }
}

static void dev_rule(struct hull_cgroup_resources *r, bool allow, char type, int64_t maj,
                     int64_t min, const char *access)
{
    hull_cgroup_resources_add_device(
        r, (struct hull_cgroup_device_rule){allow, type, maj, min,
                                            hull_cgroup_device_access_bits(access)});
}

/* linux.resources.devices: everything for privileged containers, else deny-all, the devices
 * every container gets (as runc's defaults) and the CRI devices. */
void spec_device_rules(struct hull_cgroup_resources *r, bool privileged, const struct devv *d)
{
    if (r->devices == NULL)
        r->devices = xmalloc0(sizeof(*r->devices)); /* present, even before the first rule */
    if (privileged) {
        dev_rule(r, true, 'a', -1, -1, "rwm");
        return;
    }
    dev_rule(r, false, 'a', -1, -1, "rwm");
    dev_rule(r, true, 'c', -1, -1, "m");
    dev_rule(r, true, 'b', -1, -1, "m");
    static const struct {
        int maj, min;
    } std[] = {{1, 3}, {1, 8}, {1, 7},    {5, 0}, {1, 5},
               {1, 9}, {5, 1}, {136, -1}, {5, 2}, {10, 200}};
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
        dev_rule(r, true, 'c', std[i].maj, std[i].min, "rwm");
    for (size_t i = 0; i < d->n; i++)
        dev_rule(r, true, d->v[i].type, d->v[i].major, d->v[i].minor, d->v[i].access);
}
