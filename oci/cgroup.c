/* cgroups: host layout detection (v1, hybrid, unified), runc-style cgroupfs paths, resources
 * for v1 controllers and v2, freezer, OOM counters, cleanup. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void oci_cgroup_clear(struct oci_cgroup *cg)
{
    for (size_t i = 0; i < cg->n; i++) {
        free(cg->dirs[i].controller);
        free(cg->dirs[i].controllers);
        free(cg->dirs[i].path);
        free(cg->dirs[i].mount);
    }
    free(cg->dirs);
    free(cg->systemd_unit);
    free(cg->systemd_slice);
    memset(cg, 0, sizeof(*cg));
}

int oci_cgroup_resolve(const struct hull_cgroup_layout *l, const char *proc_self_cgroup,
                       const char *cgroups_path, const char *id, struct oci_cgroup *out,
                       hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->mode = l->mode;
    const char *p = cgroups_path && *cgroups_path ? cgroups_path : id;
    if (strstr(p, "..") != NULL) {
        /* reject any `..` component */
        _cleanup_free_ char *d = xstrdup(p);
        char *save = NULL;
        for (char *c = strtok_r(d, "/", &save); c; c = strtok_r(NULL, "/", &save))
            if (strcmp(c, "..") == 0)
                return hull_error_setx(err, EINVAL, "cgroupsPath `%s`: `..` not allowed", p);
    }
    if (strchr(p, ':') != NULL && p[0] != '/')
        return hull_error_setx(err, EINVAL,
                               "cgroupsPath `%s`: systemd-style paths need the systemd cgroup "
                               "driver (--systemd-cgroup)",
                               p);
    for (size_t i = 0; i < l->n; i++) {
        const struct hull_cgroup_hier *h = &l->hiers[i];
        /* the hierarchy's first controller names it ("cpu" for "cpu,cpuacct") */
        const char *comma = strchr(h->controllers, ',');
        _cleanup_free_ char *first =
            comma ? xstrndup(h->controllers, (size_t)(comma - h->controllers))
                  : xstrdup(h->controllers);
        _cleanup_free_ char *rel = NULL;
        if (p[0] == '/') {
            rel = xstrdup(p);
        } else {
            /* below the calling process's own cgroup in that hierarchy */
            _cleanup_free_ char *own =
                hull_proc_cgroup_lookup(proc_self_cgroup, h->v2 ? NULL : first);
            rel = hull_path_join(own ? own : "/", p);
        }
        /* the mount may show only a subtree (mountinfo root) */
        const char *sub = rel;
        size_t rl = strlen(h->root);
        if (strcmp(h->root, "/") != 0 && strncmp(rel, h->root, rl) == 0 &&
            (rel[rl] == '/' || rel[rl] == '\0'))
            sub = rel + rl;
        out->dirs = xrealloc(out->dirs, (out->n + 1) * sizeof(*out->dirs));
        struct oci_cgroup_dir *d = &out->dirs[out->n++];
        d->path = hull_path_join(h->mountpoint, sub);
        d->mount = xstrdup(h->mountpoint);
        if (h->v2) {
            d->controller = xstrdup("unified");
            d->controllers = xstrdup("");
        } else {
            d->controller = hull_steal(first);
            d->controllers = xstrdup(h->controllers);
        }
    }
    return 0;
}

static bool has_controller(const struct oci_cgroup_dir *d, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = d->controllers; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        if (c == NULL)
            break;
        p = c + 1;
    }
    return false;
}

static const struct oci_cgroup_dir *find_dir(const struct oci_cgroup *cg, const char *ctrl)
{
    for (size_t i = 0; i < cg->n; i++) {
        if (strcmp(ctrl, "unified") == 0 ? strcmp(cg->dirs[i].controller, "unified") == 0
                                         : has_controller(&cg->dirs[i], ctrl))
            return &cg->dirs[i];
    }
    return NULL;
}

static int write_file(const char *dir, const char *file, const char *value, hull_error_t *err)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    /* O_TRUNC as runc: no effect on cgroupfs, keeps fixture trees exact */
    _cleanup_close_ int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", p);
    size_t len = strlen(value);
    ssize_t w = write(fd, value, len);
    if (w != (ssize_t)len)
        return hull_error_set(err, w < 0 ? errno : EIO, "write `%s` to `%s`", value, p);
    return 0;
}

static int write_u64(const char *dir, const char *file, uint64_t v, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return write_file(dir, file, buf, err);
}

static int write_i64(const char *dir, const char *file, int64_t v, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return write_file(dir, file, buf, err);
}

static char *read_small(const char *dir, const char *file)
{
    _cleanup_free_ char *p = hull_path_join(dir, file);
    char *out = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(p, 1u << 20, &out, NULL, &e) < 0)
        return NULL;
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return out;
}

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

uint64_t oci_cgroup_shares_to_weight(uint64_t shares)
{
    return hull_cgroup_shares_to_weight(shares);
}

uint64_t oci_cgroup_blkio_to_io_weight(uint64_t weight)
{
    if (weight == 0)
        return 0;
    if (weight < 10)
        weight = 10;
    if (weight > 1000)
        weight = 1000;
    return 1 + (weight - 10) * 9999 / 990;
}

/* ---- v1 ---------------------------------------------------------------------------------- */
static int v1_memory(const char *dir, yajl_val mem, bool update, hull_error_t *err)
{
    if (mem == NULL)
        return 0;
    int64_t limit = oci_json_int64(mem, "limit"), swap = oci_json_int64(mem, "swap"),
            reservation = oci_json_int64(mem, "reservation"),
            kernel = oci_json_int64(mem, "kernel"), tcp = oci_json_int64(mem, "kernelTCP"),
            swappiness = oci_json_int64(mem, "swappiness");
    int r;
    if (limit != OCI_UNSET || swap != OCI_UNSET) {
        _cleanup_free_ char *p = hull_path_join(dir, "memory.memsw.limit_in_bytes");
        bool has_memsw = access(p, F_OK) == 0;
        if (swap != OCI_UNSET && !has_memsw && swap != limit && swap != -1)
            log_warn("memory.swap ignored: no swap accounting (memory.memsw) on this host");
        /* Raising: memsw first (it must stay >= limit); lowering: limit first. */
        _cleanup_free_ char *cur = read_small(dir, "memory.memsw.limit_in_bytes");
        uint64_t cur_sw = cur ? strtoull(cur, NULL, 10) : 0;
        bool memsw_first =
            has_memsw && swap != OCI_UNSET && (swap == -1 || (uint64_t)swap > cur_sw);
        if (memsw_first && (r = write_i64(dir, "memory.memsw.limit_in_bytes", swap, err)) < 0)
            return r;
        if (limit != OCI_UNSET && (r = write_i64(dir, "memory.limit_in_bytes", limit, err)) < 0)
            return r;
        if (!memsw_first && has_memsw && swap != OCI_UNSET &&
            (r = write_i64(dir, "memory.memsw.limit_in_bytes", swap, err)) < 0)
            return r;
    }
    if (reservation != OCI_UNSET &&
        (r = write_i64(dir, "memory.soft_limit_in_bytes", reservation, err)) < 0)
        return r;
    if (kernel != OCI_UNSET) {
        _cleanup_error_ hull_error_t e = NULL;
        if (write_i64(dir, "memory.kmem.limit_in_bytes", kernel, &e) < 0)
            log_warn("memory.kernel ignored: %s", hull_error_msg(&e));
    }
    if (tcp != OCI_UNSET && (r = write_i64(dir, "memory.kmem.tcp.limit_in_bytes", tcp, err)) < 0)
        return r;
    if (swappiness != OCI_UNSET && swappiness != INT64_MAX) {
        if (swappiness < 0 || swappiness > 100)
            return hull_error_setx(err, EINVAL, "memory.swappiness %" PRId64 " not in 0..100",
                                   swappiness);
        if ((r = write_i64(dir, "memory.swappiness", swappiness, err)) < 0)
            return r;
    }
    yajl_val oom = hull_json_get(mem, "disableOOMKiller");
    if (oom && (YAJL_IS_TRUE(oom) || (update && YAJL_IS_FALSE(oom))) &&
        (r = write_file(dir, "memory.oom_control", YAJL_IS_TRUE(oom) ? "1" : "0", err)) < 0)
        return r;
    return 0;
}

static int v1_cpu(const char *dir, yajl_val cpu, hull_error_t *err)
{
    if (cpu == NULL)
        return 0;
    int64_t shares = oci_json_int64(cpu, "shares"), quota = oci_json_int64(cpu, "quota"),
            period = oci_json_int64(cpu, "period"), rt_rt = oci_json_int64(cpu, "realtimeRuntime"),
            rt_p = oci_json_int64(cpu, "realtimePeriod"), idle = oci_json_int64(cpu, "idle");
    int r;
    if (shares != OCI_UNSET && shares != 0) {
        if ((r = write_i64(dir, "cpu.shares", shares, err)) < 0)
            return r;
        _cleanup_free_ char *got = read_small(dir, "cpu.shares");
        if (got && strtoll(got, NULL, 10) != shares)
            return hull_error_setx(err, EINVAL, "cpu.shares: the kernel clamped %" PRId64 " to %s",
                                   shares, got);
    }
    if (period != OCI_UNSET && period != 0 &&
        (r = write_i64(dir, "cpu.cfs_period_us", period, err)) < 0)
        return r;
    if (quota != OCI_UNSET && quota != 0 &&
        (r = write_i64(dir, "cpu.cfs_quota_us", quota, err)) < 0)
        return r;
    if (rt_p != OCI_UNSET && rt_p != 0 && (r = write_i64(dir, "cpu.rt_period_us", rt_p, err)) < 0)
        return r;
    if (rt_rt != OCI_UNSET && rt_rt != 0 &&
        (r = write_i64(dir, "cpu.rt_runtime_us", rt_rt, err)) < 0)
        return r;
    if (idle != OCI_UNSET && (r = write_i64(dir, "cpu.idle", idle, err)) < 0)
        return r;
    return 0;
}

/* cpuset.cpus/mems start empty in a new v1 cgroup: copy the parent's (recursively). */
static int v1_cpuset_init(const char *dir, hull_error_t *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        _cleanup_free_ char *cur = read_small(dir, files[i]);
        if (cur && *cur)
            continue;
        _cleanup_free_ char *parent = xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash == NULL || slash == parent)
            continue;
        *slash = '\0';
        _cleanup_free_ char *pv = read_small(parent, files[i]);
        if (pv == NULL)
            continue;
        if (*pv == '\0') {
            int r = v1_cpuset_init(parent, err);
            if (r < 0)
                return r;
            free(pv);
            pv = read_small(parent, files[i]);
        }
        int r = write_file(dir, files[i], pv ? pv : "", err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int v1_cpuset(const char *dir, yajl_val cpu, hull_error_t *err)
{
    const char *cpus = hull_json_get_string(cpu, "cpus", NULL);
    const char *mems = hull_json_get_string(cpu, "mems", NULL);
    int r;
    if (cpus && *cpus && (r = write_file(dir, "cpuset.cpus", cpus, err)) < 0)
        return r;
    if (mems && *mems && (r = write_file(dir, "cpuset.mems", mems, err)) < 0)
        return r;
    return 0;
}

static int v1_pids(const char *dir, yajl_val pids, hull_error_t *err)
{
    int64_t limit = oci_json_int64(pids, "limit");
    if (limit == OCI_UNSET)
        return 0;
    if (limit <= 0 || limit == INT64_MAX)
        return write_file(dir, "pids.max", "max", err);
    return write_i64(dir, "pids.max", limit, err);
}

static int blkio_devices(const char *dir, const char *file, yajl_val arr, const char *key, bool v2,
                         hull_error_t *err)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return 0;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val d = arr->u.array.values[i];
        int64_t maj = oci_json_int64(d, "major"), min = oci_json_int64(d, "minor"),
                v = oci_json_int64(d, key);
        if (maj == OCI_UNSET || min == OCI_UNSET || v == OCI_UNSET)
            continue;
        char buf[96];
        if (v2)
            snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %s=%" PRId64, maj, min, file, v);
        else
            snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRId64, maj, min, v);
        int r = write_file(dir, v2 ? "io.max" : file, buf, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int v1_blkio(const char *dir, yajl_val b, hull_error_t *err)
{
    if (b == NULL)
        return 0;
    int64_t w = oci_json_int64(b, "weight"), lw = oci_json_int64(b, "leafWeight");
    int r;
    if (w != OCI_UNSET && w != 0) {
        _cleanup_free_ char *p = hull_path_join(dir, "blkio.weight");
        const char *f = access(p, F_OK) == 0 ? "blkio.weight" : "blkio.bfq.weight";
        if ((r = write_i64(dir, f, w, err)) < 0)
            return r;
    }
    if (lw != OCI_UNSET && lw != 0 && (r = write_i64(dir, "blkio.leaf_weight", lw, err)) < 0)
        return r;
    yajl_val wd = hull_json_get(b, "weightDevice");
    if (wd && YAJL_IS_ARRAY(wd) &&
        (r = blkio_devices(dir, "blkio.weight_device", wd, "weight", false, err)) < 0)
        return r;
    static const struct {
        const char *json, *file;
    } thr[] = {
        {"throttleReadBpsDevice", "blkio.throttle.read_bps_device"},
        {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device"},
        {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device"},
        {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"},
    };
    for (size_t i = 0; i < 4; i++)
        if ((r = blkio_devices(dir, thr[i].file, hull_json_get(b, thr[i].json), "rate", false,
                               err)) < 0)
            return r;
    return 0;
}

static int hugetlb(const char *dir, yajl_val arr, bool v2, hull_error_t *err)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return 0;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val h = arr->u.array.values[i];
        const char *size = hull_json_get_string(h, "pageSize", NULL);
        int64_t limit = oci_json_int64(h, "limit");
        if (size == NULL || limit == OCI_UNSET || strchr(size, '/') || strstr(size, ".."))
            return hull_error_setx(err, EINVAL, "hugepageLimits[%zu]: invalid", i);
        _cleanup_free_ char *f = xasprintf("hugetlb.%s.%s", size, v2 ? "max" : "limit_in_bytes");
        int r = write_i64(dir, f, limit, err);
        if (r < 0)
            return r;
    }
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
            if ((r = write_file(dir, allow ? "devices.allow" : "devices.deny", buf, err)) < 0)
                return r;
        }
    }
    if (spec == NULL)
        return 0;
    for (size_t i = 0; default_device_rules[i]; i++)
        if ((r = write_file(dir, "devices.allow", default_device_rules[i], err)) < 0)
            return r;
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct oci_device *d = &spec->devices[i];
        if (d->type != 'c' && d->type != 'b')
            continue;
        char buf[96];
        snprintf(buf, sizeof(buf), "%c %" PRId64 ":%" PRId64 " rwm", d->type, d->major, d->minor);
        if ((r = write_file(dir, "devices.allow", buf, err)) < 0)
            return r;
    }
    return 0;
}

int oci_cgroup_v1_apply(const char *controller, const char *dir, yajl_val res,
                        const struct oci_spec *spec, bool update, hull_error_t *err)
{
    if (strcmp(controller, "cpuset") == 0) {
        int r = v1_cpuset_init(dir, err);
        if (r < 0)
            return r;
        return v1_cpuset(dir, hull_json_get(res, "cpu"), err);
    }
    if (strcmp(controller, "memory") == 0)
        return v1_memory(dir, hull_json_get(res, "memory"), update, err);
    if (strcmp(controller, "cpu") == 0)
        return v1_cpu(dir, hull_json_get(res, "cpu"), err);
    if (strcmp(controller, "pids") == 0)
        return v1_pids(dir, hull_json_get(res, "pids"), err);
    if (strcmp(controller, "blkio") == 0)
        return v1_blkio(dir, hull_json_get(res, "blockIO"), err);
    if (strcmp(controller, "hugetlb") == 0)
        return hugetlb(dir, hull_json_get(res, "hugepageLimits"), false, err);
    if (strcmp(controller, "devices") == 0 && !update)
        return v1_devices(dir, hull_json_get(res, "devices"), spec, err);
    if (strcmp(controller, "devices") == 0 && update) {
        yajl_val dev = hull_json_get(res, "devices");
        return dev ? v1_devices(dir, dev, NULL, err) : 0;
    }
    if (strcmp(controller, "net_cls") == 0) {
        int64_t id = oci_json_int64(hull_json_get(res, "network"), "classID");
        return id == OCI_UNSET ? 0 : write_i64(dir, "net_cls.classid", id, err);
    }
    return 0;
}

/* ---- v2 ---------------------------------------------------------------------------------- */
static int v2_write_max(const char *dir, const char *file, int64_t v, hull_error_t *err)
{
    if (v < 0 || v == INT64_MAX)
        return write_file(dir, file, "max", err);
    return write_i64(dir, file, v, err);
}

static bool safe_unified_key(const char *k)
{
    /* a plain "controller.knob" file name; never the files that move or kill processes */
    static const char *const denied[] = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
                                         "cgroup.kill", NULL};
    if (k == NULL || *k == '\0' || strchr(k, '/') != NULL || strchr(k, '.') == NULL || k[0] == '.')
        return false;
    for (size_t i = 0; denied[i]; i++)
        if (strcmp(k, denied[i]) == 0)
            return false;
    return true;
}

/* The v2 controllers whose settings v2_apply writes. */
enum {
    V2_CPU = 1 << 0,
    V2_CPUSET = 1 << 1,
    V2_MEMORY = 1 << 2,
    V2_PIDS = 1 << 3,
    V2_IO = 1 << 4,
    V2_HUGETLB = 1 << 5,
    V2_UNIFIED = 1 << 6, /* linux.resources.unified */
    V2_ALL = (1 << 7) - 1,
};

static const struct {
    const char *v2, *v1;
    unsigned bit;
} v2_controllers[] = {
    {"cpu", "cpu", V2_CPU},    {"cpuset", "cpuset", V2_CPUSET}, {"memory", "memory", V2_MEMORY},
    {"pids", "pids", V2_PIDS}, {"io", "blkio", V2_IO},          {"hugetlb", "hugetlb", V2_HUGETLB},
};

static int v2_apply(const char *dir, yajl_val res, unsigned mask, hull_error_t *err)
{
    int r;
    if (res == NULL)
        return 0;
    yajl_val mem = (mask & V2_MEMORY) ? hull_json_get(res, "memory") : NULL;
    if (mem) {
        int64_t limit = oci_json_int64(mem, "limit"), swap = oci_json_int64(mem, "swap"),
                reservation = oci_json_int64(mem, "reservation");
        if (swap != OCI_UNSET) {
            /* runtime-spec swap is memory+swap; v2 swap.max is swap alone */
            int64_t s;
            if (swap == -1 || swap == INT64_MAX)
                s = -1;
            else if (limit == OCI_UNSET || limit == -1)
                return hull_error_setx(err, EINVAL, "memory.swap needs memory.limit on cgroup v2");
            else if (swap < limit)
                return hull_error_setx(err, EINVAL,
                                       "memory.swap %" PRId64 " is lower than memory.limit "
                                       "%" PRId64,
                                       swap, limit);
            else
                s = swap - limit;
            if ((r = v2_write_max(dir, "memory.swap.max", s, err)) < 0)
                return r;
        }
        if (limit != OCI_UNSET && (r = v2_write_max(dir, "memory.max", limit, err)) < 0)
            return r;
        if (reservation != OCI_UNSET && (r = v2_write_max(dir, "memory.low", reservation, err)) < 0)
            return r;
        if (hull_json_get_bool(mem, "disableOOMKiller", false))
            log_warn("memory.disableOOMKiller is not supported on cgroup v2, ignored");
    }
    yajl_val cpu = (mask & V2_CPU) ? hull_json_get(res, "cpu") : NULL;
    if (cpu) {
        int64_t shares = oci_json_int64(cpu, "shares"), quota = oci_json_int64(cpu, "quota"),
                period = oci_json_int64(cpu, "period"), idle = oci_json_int64(cpu, "idle");
        if (shares != OCI_UNSET && shares != 0 &&
            (r = write_u64(dir, "cpu.weight", oci_cgroup_shares_to_weight((uint64_t)shares), err)) <
                0)
            return r;
        if ((quota != OCI_UNSET && quota != 0) || (period != OCI_UNSET && period != 0)) {
            char buf[64];
            uint64_t p = (period != OCI_UNSET && period > 0) ? (uint64_t)period : 100000;
            if (quota == OCI_UNSET || quota == 0) {
                /* keep the current quota */
                _cleanup_free_ char *cur = read_small(dir, "cpu.max");
                char q[32] = "max";
                if (cur)
                    sscanf(cur, "%31s", q);
                snprintf(buf, sizeof(buf), "%s %" PRIu64, q, p);
            } else if (quota < 0) {
                snprintf(buf, sizeof(buf), "max %" PRIu64, p);
            } else {
                snprintf(buf, sizeof(buf), "%" PRId64 " %" PRIu64, quota, p);
            }
            if ((r = write_file(dir, "cpu.max", buf, err)) < 0)
                return r;
        }
        if (idle != OCI_UNSET && (r = write_i64(dir, "cpu.idle", idle, err)) < 0)
            return r;
    }
    if ((mask & V2_CPUSET) && (r = v1_cpuset(dir, hull_json_get(res, "cpu"), err)) < 0)
        return r;
    yajl_val pids = (mask & V2_PIDS) ? hull_json_get(res, "pids") : NULL;
    if (pids) {
        int64_t limit = oci_json_int64(pids, "limit");
        if (limit != OCI_UNSET &&
            (r = v2_write_max(dir, "pids.max", limit <= 0 ? -1 : limit, err)) < 0)
            return r;
    }
    yajl_val b = (mask & V2_IO) ? hull_json_get(res, "blockIO") : NULL;
    if (b) {
        int64_t w = oci_json_int64(b, "weight");
        if (w != OCI_UNSET && w != 0) {
            _cleanup_free_ char *bfq = hull_path_join(dir, "io.bfq.weight");
            if (access(bfq, F_OK) == 0)
                r = write_i64(dir, "io.bfq.weight", w, err);
            else
                r = write_u64(dir, "io.weight", oci_cgroup_blkio_to_io_weight((uint64_t)w), err);
            if (r < 0)
                return r;
        }
        static const struct {
            const char *json, *key;
        } thr[] = {
            {"throttleReadBpsDevice", "rbps"},
            {"throttleWriteBpsDevice", "wbps"},
            {"throttleReadIOPSDevice", "riops"},
            {"throttleWriteIOPSDevice", "wiops"},
        };
        for (size_t i = 0; i < 4; i++)
            if ((r = blkio_devices(dir, thr[i].key, hull_json_get(b, thr[i].json), "rate", true,
                                   err)) < 0)
                return r;
    }
    if ((mask & V2_HUGETLB) &&
        (r = hugetlb(dir, hull_json_get(res, "hugepageLimits"), true, err)) < 0)
        return r;
    yajl_val unified = (mask & V2_UNIFIED) ? hull_json_get(res, "unified") : NULL;
    if (unified && YAJL_IS_OBJECT(unified)) {
        for (size_t i = 0; i < unified->u.object.len; i++) {
            const char *k = unified->u.object.keys[i];
            yajl_val v = unified->u.object.values[i];
            if (!safe_unified_key(k))
                return hull_error_setx(err, EINVAL, "unified: invalid key `%s`", k);
            if (!YAJL_IS_STRING(v))
                return hull_error_setx(err, EINVAL, "unified `%s`: value must be a string", k);
            const char *val = YAJL_GET_STRING(v);
            if (strchr(val, '\n') && strchr(val, '\n')[1] != '\0')
                return hull_error_setx(err, EINVAL, "unified `%s`: one line only", k);
            r = write_file(dir, k, val, err);
            if (r == -ENOENT || r == -EACCES) {
                hull_error_wrap(err, "unified `%s` (is its controller enabled?)", k);
                return r;
            }
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int oci_cgroup_v2_apply(const char *dir, yajl_val res, hull_error_t *err)
{
    return v2_apply(dir, res, V2_ALL, err);
}

int oci_cgroup_v2_enable_controllers(const char *base, const char *dir, hull_error_t *err)
{
    /* walk from base down to dir's parent, enabling what each level offers */
    size_t bl = strlen(base);
    if (strncmp(dir, base, bl) != 0)
        return 0;
    _cleanup_free_ char *cur = xstrdup(base);
    const char *rest = dir + bl;
    for (;;) {
        while (*rest == '/')
            rest++;
        const char *slash = strchr(rest, '/');
        if (slash == NULL)
            break; /* cur is dir's parent */
        _cleanup_free_ char *avail = read_small(cur, "cgroup.controllers");
        if (avail && *avail) {
            _cleanup_free_ char *line = xstrdup("");
            char *save = NULL;
            for (char *c = strtok_r(avail, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
                char *n = xasprintf("%s%s+%s", line, *line ? " " : "", c);
                free(line);
                line = n;
            }
            _cleanup_error_ hull_error_t e = NULL;
            if (write_file(cur, "cgroup.subtree_control", line, &e) < 0)
                log_debug("enable controllers in %s: %s", cur, hull_error_msg(&e));
        }
        char *next = xasprintf("%s/%.*s", cur, (int)(slash - rest), rest);
        free(cur);
        cur = next;
        rest = slash;
    }
    /* the last level (dir's parent) */
    _cleanup_free_ char *avail = read_small(cur, "cgroup.controllers");
    if (avail && *avail) {
        _cleanup_free_ char *line = xstrdup("");
        char *save = NULL;
        for (char *c = strtok_r(avail, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
            char *n = xasprintf("%s%s+%s", line, *line ? " " : "", c);
            free(line);
            line = n;
        }
        int r = write_file(cur, "cgroup.subtree_control", line, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------------- */
int oci_cgroup_create(struct oci_cgroup *cg, hull_error_t *err)
{
    for (size_t i = 0; i < cg->n; i++) {
        struct oci_cgroup_dir *d = &cg->dirs[i];
        int r = hull_mkdir_p(d->path, 0755, err);
        if (r < 0)
            return hull_error_wrap(err, "create cgroup");
        /* hybrid: controllers that are on no v1 hierarchy may be on the cgroup2 one; with
         * systemd, Delegate=yes made systemd enable them on the scope's slices */
        if (cg->systemd_unit == NULL &&
            (cg->mode == HULL_CGROUP_V2 ||
             (cg->mode == HULL_CGROUP_HYBRID && strcmp(d->controller, "unified") == 0))) {
            const char *base = d->mount ? d->mount : "/sys/fs/cgroup";
            _cleanup_error_ hull_error_t e = NULL;
            if (oci_cgroup_v2_enable_controllers(base, d->path, &e) < 0)
                log_debug("cgroup v2 controllers: %s", hull_error_msg(&e));
        }
    }
    return 0;
}

/* Hybrid: the v2 controllers of the cgroup2 directory that no v1 hierarchy of cg holds. */
static unsigned hybrid_v2_mask(const struct oci_cgroup *cg, const char *dir)
{
    _cleanup_free_ char *avail = read_small(dir, "cgroup.controllers");
    unsigned mask = 0;
    char *save = NULL;
    for (char *c = avail ? strtok_r(avail, " ", &save) : NULL; c; c = strtok_r(NULL, " ", &save))
        for (size_t i = 0; i < sizeof(v2_controllers) / sizeof(v2_controllers[0]); i++)
            if (strcmp(c, v2_controllers[i].v2) == 0 && find_dir(cg, v2_controllers[i].v1) == NULL)
                mask |= v2_controllers[i].bit;
    return mask;
}

int oci_cgroup_apply(struct oci_cgroup *cg, yajl_val res, const struct oci_spec *spec, bool update,
                     hull_error_t *err)
{
    yajl_val unified = hull_json_get(res, "unified");
    if (cg->mode != HULL_CGROUP_V2 && unified && YAJL_IS_OBJECT(unified) &&
        unified->u.object.len > 0)
        return hull_error_setx(err, EINVAL,
                               "linux.resources.unified needs cgroup v2 (the host is %s)",
                               hull_cgroup_mode_name(cg->mode));
    yajl_val huge = hull_json_get(res, "hugepageLimits");
    const struct oci_cgroup_dir *uni = find_dir(cg, "unified");
    if (cg->mode != HULL_CGROUP_V2 && huge && YAJL_IS_ARRAY(huge) && huge->u.array.len > 0 &&
        !find_dir(cg, "hugetlb") && !(uni && (hybrid_v2_mask(cg, uni->path) & V2_HUGETLB)))
        log_warn("hugepageLimits ignored: no hugetlb controller on this host");
    for (size_t i = 0; i < cg->n; i++) {
        struct oci_cgroup_dir *d = &cg->dirs[i];
        int r = 0;
        bool v2dir = cg->mode == HULL_CGROUP_V2 || strcmp(d->controller, "unified") == 0;
        if (cg->mode == HULL_CGROUP_V2) {
            r = v2_apply(d->path, res, V2_ALL, err);
        } else if (v2dir) {
            unsigned mask = hybrid_v2_mask(cg, d->path);
            if (mask)
                r = v2_apply(d->path, res, mask, err);
        } else {
            /* a hierarchy may carry several controllers (cpu,cpuacct) */
            _cleanup_free_ char *ctrls = xstrdup(d->controllers);
            char *save = NULL;
            for (char *c = strtok_r(ctrls, ",", &save); c && r == 0; c = strtok_r(NULL, ",", &save))
                r = oci_cgroup_v1_apply(c, d->path, res, spec, update, err);
        }
        /* device access on cgroup2 is a BPF program (no v1 devices hierarchy to do it) */
        yajl_val devs = hull_json_get(res, "devices");
        if (r == 0 && v2dir && find_dir(cg, "devices") == NULL && (!update || devs))
            r = oci_cgroup_v2_devices(d->path, devs, update ? NULL : spec, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int oci_cgroup_enter(struct oci_cgroup *cg, pid_t pid, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    for (size_t i = 0; i < cg->n; i++) {
        int r = write_file(cg->dirs[i].path, "cgroup.procs", buf, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* cgroup2's cgroup.freeze: on v2, and on hybrid hosts whose freezer is not on v1 */
static bool v2_freezer(const struct oci_cgroup *cg)
{
    return cg->mode == HULL_CGROUP_V2 ||
           (find_dir(cg, "freezer") == NULL && find_dir(cg, "unified") != NULL);
}

int oci_cgroup_is_frozen(struct oci_cgroup *cg, bool *frozen)
{
    *frozen = false;
    if (v2_freezer(cg)) {
        const struct oci_cgroup_dir *d = find_dir(cg, "unified");
        if (d == NULL)
            return -ENOENT;
        _cleanup_free_ char *v = read_small(d->path, "cgroup.freeze");
        if (v == NULL)
            return -ENOENT;
        *frozen = strcmp(v, "1") == 0;
        return 0;
    }
    const struct oci_cgroup_dir *d = find_dir(cg, "freezer");
    if (d == NULL)
        return -ENOENT;
    _cleanup_free_ char *v = read_small(d->path, "freezer.state");
    if (v == NULL)
        return -ENOENT;
    *frozen = strcmp(v, "FROZEN") == 0 || strcmp(v, "FREEZING") == 0;
    return 0;
}

int oci_cgroup_freeze(struct oci_cgroup *cg, bool freeze, hull_error_t *err)
{
    if (v2_freezer(cg)) {
        const struct oci_cgroup_dir *d = find_dir(cg, "unified");
        if (d == NULL)
            return hull_error_setx(err, ENOTSUP, "no cgroup to freeze");
        int r = write_file(d->path, "cgroup.freeze", freeze ? "1" : "0", err);
        if (r < 0)
            return r;
        for (int i = 0; i < 1000; i++) {
            _cleanup_free_ char *ev = read_small(d->path, "cgroup.events");
            if (ev == NULL || strstr(ev, freeze ? "frozen 1" : "frozen 0"))
                return 0;
            sleep_ms(1);
        }
        return hull_error_setx(err, EBUSY, "cgroup did not %s", freeze ? "freeze" : "thaw");
    }
    const struct oci_cgroup_dir *d = find_dir(cg, "freezer");
    if (d == NULL)
        return hull_error_setx(err, ENOTSUP, "the freezer cgroup controller is not available");
    const char *want = freeze ? "FROZEN" : "THAWED";
    for (int i = 0; i < 2000; i++) {
        int r = write_file(d->path, "freezer.state", want, err);
        if (r < 0)
            return r;
        _cleanup_free_ char *v = read_small(d->path, "freezer.state");
        if (v && strcmp(v, want) == 0)
            return 0;
        sleep_ms(1);
    }
    return hull_error_setx(err, EBUSY, "freezer did not reach %s", want);
}

/* The directory whose cgroup.procs lists the container's processes. */
static const struct oci_cgroup_dir *pids_dir(const struct oci_cgroup *cg)
{
    const struct oci_cgroup_dir *d = find_dir(cg, cg->mode == HULL_CGROUP_V2 ? "unified" : "pids");
    if (d == NULL)
        d = find_dir(cg, "freezer");
    if (d == NULL && cg->n > 0)
        d = &cg->dirs[0];
    return d;
}

int oci_cgroup_pids(struct oci_cgroup *cg, pid_t **pids, size_t *n, hull_error_t *err)
{
    *pids = NULL;
    *n = 0;
    const struct oci_cgroup_dir *d = pids_dir(cg);
    if (d == NULL)
        return hull_error_setx(err, ENOENT, "no cgroup");
    _cleanup_free_ char *p = hull_path_join(d->path, "cgroup.procs");
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(p, 16u << 20, &text, NULL, err);
    if (r < 0)
        return r;
    size_t cap = 16;
    pid_t *v = xmalloc0(cap * sizeof(pid_t));
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (*n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof(pid_t));
        }
        v[(*n)++] = (pid_t)atoi(l);
    }
    *pids = v;
    return 0;
}

int oci_cgroup_oom_kills(struct oci_cgroup *cg, uint64_t *count)
{
    *count = 0;
    const struct oci_cgroup_dir *d =
        find_dir(cg, cg->mode == HULL_CGROUP_V2 ? "unified" : "memory");
    if (d == NULL)
        return -ENOENT;
    _cleanup_free_ char *text =
        read_small(d->path, cg->mode == HULL_CGROUP_V2 ? "memory.events" : "memory.oom_control");
    if (text == NULL)
        return -ENOENT;
    for (char *p = text; p && *p;) {
        if (strncmp(p, "oom_kill ", 9) == 0) {
            *count = strtoull(p + 9, NULL, 10);
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -ENOENT;
}

int oci_cgroup_kill_all(struct oci_cgroup *cg, int sig, hull_error_t *err)
{
    if (cg->mode == HULL_CGROUP_V2 && sig == SIGKILL) {
        const struct oci_cgroup_dir *d = find_dir(cg, "unified");
        _cleanup_free_ char *p = d ? hull_path_join(d->path, "cgroup.kill") : NULL;
        if (p && access(p, F_OK) == 0)
            return write_file(d->path, "cgroup.kill", "1", err);
    }
    /* freeze so nothing forks between reading the list and signalling */
    _cleanup_error_ hull_error_t fe = NULL;
    bool frozen = oci_cgroup_freeze(cg, true, &fe) == 0;
    const struct oci_cgroup_dir *d = pids_dir(cg);
    int r;
    if (d == NULL) {
        r = hull_error_setx(err, ENOENT, "no cgroup");
    } else {
        /* the one kill sequence (common/cgroup.c): each pid pinned with a pidfd, signalled
         * only if the cgroup still lists it (no signal to a recycled pid) */
        _cleanup_free_ char *procs = hull_path_join(d->path, "cgroup.procs");
        r = hull_cgroup_signal_procs(procs, sig, err);
        if (r > 0)
            r = -hull_error_status(err);
    }
    if (frozen) {
        _cleanup_error_ hull_error_t te = NULL;
        oci_cgroup_freeze(cg, false, &te);
    }
    return r;
}

int oci_cgroup_destroy(struct oci_cgroup *cg, hull_error_t *err)
{
    int ret = 0;
    if (cg->systemd_unit) {
        /* systemd removes the scope's cgroup with the unit */
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_systemd_stop_unit(cg->systemd_unit, &e) < 0)
            log_warn("stop %s: %s", cg->systemd_unit, hull_error_msg(&e));
    }
    for (size_t i = 0; i < cg->n; i++) {
        /* tree removal (common/cgroup.c): cgroups the container made below its own go too */
        _cleanup_error_ hull_error_t e = NULL;
        int r = hull_cgroup_remove_tree(cg->dirs[i].path, HULL_CGROUP_RM_WAIT, &e);
        if (r < 0 && ret == 0)
            ret = hull_error_setx(err, -r, "%s", hull_error_msg(&e));
    }
    return ret;
}
