/* hull-oci's side of the cgroup library (common/cgroup.h): the device rules (v1 devices
 * hierarchy here, v2 BPF in cgroup_devices.c), which need the spec's devices.  The rules are
 * the typed linux.resources.devices the model parsed (common/ocispec_model.h). */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

/* ---- device rules -----------------------------------------------------------------------------
 */
static int cg_write_file(const char *dir, const char *file, const char *value, hull_error_t *err)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", p);
    size_t len = strlen(value);
    ssize_t w = write(fd, value, len);
    if (w != (ssize_t)len)
        return hull_error_set(err, w < 0 ? errno : EIO, "write `%s` to `%s`", value, p);
    return 0;
}

static void dev_rule_string(const struct hull_cgroup_device_rule *d, char *buf, size_t len)
{
    char smaj[24] = "*", smin[24] = "*", access[4];
    if (d->major >= 0)
        snprintf(smaj, sizeof(smaj), "%" PRId64, d->major);
    if (d->minor >= 0)
        snprintf(smin, sizeof(smin), "%" PRId64, d->minor);
    if (d->type == 'a')
        snprintf(buf, len, "a");
    else
        snprintf(buf, len, "%c %s:%s %s", d->type, smaj, smin,
                 hull_cgroup_device_access_string(d->access, access));
}

/* Devices every container gets (as runc's AllowedDevices). */
static const char *const default_device_rules[] = {
    "c *:* m",   "b *:* m",   "c 1:3 rwm",   "c 1:8 rwm", "c 1:7 rwm",    "c 5:0 rwm", "c 1:5 rwm",
    "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm", NULL,
};

static int v1_devices(const char *dir, const struct hull_cgroup_resources *res,
                      const struct oci_spec *spec, hull_error_t *err)
{
    int r;
    for (size_t i = 0; i < res->n_devices; i++) {
        const struct hull_cgroup_device_rule *d = &res->devices[i];
        char buf[96];
        dev_rule_string(d, buf, sizeof(buf));
        if ((r = cg_write_file(dir, d->allow ? "devices.allow" : "devices.deny", buf, err)) < 0)
            return r;
    }
    if (spec == NULL)
        return 0;
    for (size_t i = 0; default_device_rules[i]; i++)
        if ((r = cg_write_file(dir, "devices.allow", default_device_rules[i], err)) < 0)
            return r;
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct oci_device *d = &spec->devices[i];
        if (d->type != 'c' && d->type != 'b')
            continue;
        char buf[96];
        snprintf(buf, sizeof(buf), "%c %" PRId64 ":%" PRId64 " rwm", d->type, d->major, d->minor);
        if ((r = cg_write_file(dir, "devices.allow", buf, err)) < 0)
            return r;
    }
    return 0;
}

int oci_cgroup_apply(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                     const struct oci_spec *spec, bool update, hull_error_t *err)
{
    int r = hull_cgroup_apply(cg, res, update ? HULL_CGROUP_UPDATE : 0, err);
    if (r < 0)
        return r;
    bool devs = res->devices != NULL;
    for (size_t i = 0; i < cg->n; i++) {
        const struct hull_cgroup_dir *d = &cg->dirs[i];
        if (hull_option_list_has(d->controllers, "devices")) {
            if (!update)
                r = v1_devices(d->path, res, spec, err);
            else if (devs)
                r = v1_devices(d->path, res, NULL, err);
        } else if (hull_cgroup_dir_is_v2(cg, d) && hull_cgroup_find_dir(cg, "devices") == NULL &&
                   (!update || devs)) {
            /* device access on cgroup2 is a BPF program (no v1 devices hierarchy to do it) */
            r = oci_cgroup_v2_devices(d->path, res, update ? NULL : spec, err);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int oci_cgroup_destroy(struct hull_cgroup *cg, hull_error_t *err)
{
    hull_cgroup_systemd_stop(cg);
    return hull_cgroup_destroy(cg, err);
}
