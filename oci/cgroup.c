/* hull-oci's side of the cgroup library (common/cgroup.h): runtime-spec linux.resources JSON
 * parsed once into the library's typed resources, and the device rules (v1 devices
 * hierarchy here, v2 BPF in cgroup_devices.c), which need the spec's devices. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

int64_t oci_json_int64(yajl_val obj, const char *key)
{
    yajl_val v = hull_json_get(obj, key);
    if (v == NULL || !YAJL_IS_NUMBER(v))
        return OCI_UNSET;
    if (YAJL_IS_INTEGER(v))
        return YAJL_GET_INTEGER(v);
    /* uint64 above INT64_MAX: treat as "max" */
    return INT64_MAX;
}

/* ---- linux.resources -> struct hull_cgroup_resources ----------------------------------------- */
static void parse_devs(yajl_val arr, const char *key, struct hull_cgroup_dev_value **v, size_t *n)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val d = arr->u.array.values[i];
        int64_t maj = oci_json_int64(d, "major"), min = oci_json_int64(d, "minor"),
                val = oci_json_int64(d, key);
        /* an entry without its device or value sets nothing (as runc) */
        if (maj == OCI_UNSET || min == OCI_UNSET || val == OCI_UNSET)
            continue;
        hull_cgroup_resources_add_dev(v, n, maj, min, val);
    }
}

static char *nonempty_string(yajl_val obj, const char *key)
{
    const char *s = hull_json_get_string(obj, key, NULL);
    return s && *s ? xstrdup(s) : NULL;
}

void oci_resources_parse(yajl_val res, struct hull_cgroup_resources *out)
{
    hull_cgroup_resources_init(out);
    if (res == NULL || !YAJL_IS_OBJECT(res))
        return;
    yajl_val mem = hull_json_get(res, "memory");
    if (mem) {
        out->memory.limit = oci_json_int64(mem, "limit");
        out->memory.swap = oci_json_int64(mem, "swap");
        out->memory.reservation = oci_json_int64(mem, "reservation");
        out->memory.kernel = oci_json_int64(mem, "kernel");
        out->memory.kernel_tcp = oci_json_int64(mem, "kernelTCP");
        out->memory.swappiness = oci_json_int64(mem, "swappiness");
        yajl_val oom = hull_json_get(mem, "disableOOMKiller");
        out->memory.disable_oom_killer = oom && YAJL_IS_TRUE(oom)    ? 1
                                         : oom && YAJL_IS_FALSE(oom) ? 0
                                                                     : -1;
    }
    yajl_val cpu = hull_json_get(res, "cpu");
    if (cpu) {
        out->cpu.shares = oci_json_int64(cpu, "shares");
        out->cpu.quota = oci_json_int64(cpu, "quota");
        out->cpu.period = oci_json_int64(cpu, "period");
        out->cpu.realtime_runtime = oci_json_int64(cpu, "realtimeRuntime");
        out->cpu.realtime_period = oci_json_int64(cpu, "realtimePeriod");
        out->cpu.idle = oci_json_int64(cpu, "idle");
        out->cpu.cpus = nonempty_string(cpu, "cpus");
        out->cpu.mems = nonempty_string(cpu, "mems");
    }
    out->pids_limit = oci_json_int64(hull_json_get(res, "pids"), "limit");
    yajl_val b = hull_json_get(res, "blockIO");
    if (b) {
        out->blkio.weight = oci_json_int64(b, "weight");
        out->blkio.leaf_weight = oci_json_int64(b, "leafWeight");
        parse_devs(hull_json_get(b, "weightDevice"), "weight", &out->blkio.weight_device,
                   &out->blkio.n_weight_device);
        static const char *const thr[HULL_CG_N_THROTTLE] = {
            [HULL_CG_THROTTLE_READ_BPS] = "throttleReadBpsDevice",
            [HULL_CG_THROTTLE_WRITE_BPS] = "throttleWriteBpsDevice",
            [HULL_CG_THROTTLE_READ_IOPS] = "throttleReadIOPSDevice",
            [HULL_CG_THROTTLE_WRITE_IOPS] = "throttleWriteIOPSDevice",
        };
        for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
            parse_devs(hull_json_get(b, thr[i]), "rate", &out->blkio.throttle[i],
                       &out->blkio.n_throttle[i]);
    }
    yajl_val huge = hull_json_get(res, "hugepageLimits");
    for (size_t i = 0; huge && YAJL_IS_ARRAY(huge) && i < huge->u.array.len; i++) {
        yajl_val h = huge->u.array.values[i];
        hull_cgroup_resources_add_hugetlb(out, hull_json_get_string(h, "pageSize", NULL),
                                          oci_json_int64(h, "limit"));
    }
    yajl_val unified = hull_json_get(res, "unified");
    for (size_t i = 0; unified && YAJL_IS_OBJECT(unified) && i < unified->u.object.len; i++) {
        yajl_val v = unified->u.object.values[i];
        hull_cgroup_resources_add_unified(out, unified->u.object.keys[i],
                                          YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL);
    }
    out->net_cls_classid = oci_json_int64(hull_json_get(res, "network"), "classID");
}

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

static void dev_rule_string(yajl_val d, char *buf, size_t len)
{
    const char *type = hull_json_get_string(d, "type", "a");
    const char *access = hull_json_get_string(d, "access", "rwm");
    int64_t maj = oci_json_int64(d, "major"), min = oci_json_int64(d, "minor");
    char smaj[24] = "*", smin[24] = "*";
    if (maj != OCI_UNSET && maj >= 0)
        snprintf(smaj, sizeof(smaj), "%" PRId64, maj);
    if (min != OCI_UNSET && min >= 0)
        snprintf(smin, sizeof(smin), "%" PRId64, min);
    if (*type == 'a' || *type == '\0')
        snprintf(buf, len, "a");
    else
        snprintf(buf, len, "%c %s:%s %s", *type, smaj, smin, *access ? access : "rwm");
}

/* Devices every container gets (as runc's AllowedDevices). */
static const char *const default_device_rules[] = {
    "c *:* m",   "b *:* m",   "c 1:3 rwm",   "c 1:8 rwm", "c 1:7 rwm",    "c 5:0 rwm", "c 1:5 rwm",
    "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm", NULL,
};

static int v1_devices(const char *dir, yajl_val rules, const struct oci_spec *spec,
                      hull_error_t *err)
{
    int r;
    if (rules && YAJL_IS_ARRAY(rules)) {
        for (size_t i = 0; i < rules->u.array.len; i++) {
            yajl_val d = rules->u.array.values[i];
            char buf[96];
            dev_rule_string(d, buf, sizeof(buf));
            bool allow = hull_json_get_bool(d, "allow", false);
            if ((r = cg_write_file(dir, allow ? "devices.allow" : "devices.deny", buf, err)) < 0)
                return r;
        }
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
                     yajl_val resources, const struct oci_spec *spec, bool update,
                     hull_error_t *err)
{
    int r = hull_cgroup_apply(cg, res, update ? HULL_CGROUP_UPDATE : 0, err);
    if (r < 0)
        return r;
    yajl_val devs = hull_json_get(resources, "devices");
    for (size_t i = 0; i < cg->n; i++) {
        const struct hull_cgroup_dir *d = &cg->dirs[i];
        if (hull_option_list_has(d->controllers, "devices")) {
            if (!update)
                r = v1_devices(d->path, devs, spec, err);
            else if (devs)
                r = v1_devices(d->path, devs, NULL, err);
        } else if (hull_cgroup_dir_is_v2(cg, d) && hull_cgroup_find_dir(cg, "devices") == NULL &&
                   (!update || devs)) {
            /* device access on cgroup2 is a BPF program (no v1 devices hierarchy to do it) */
            r = oci_cgroup_v2_devices(d->path, devs, update ? NULL : spec, err);
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
