/* cgroup v1 writers: one controller's settings in its hierarchy's directory (cgroup.h). */
#include "common/cgroup_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static int v1_memory(const char *dir, const struct hull_cgroup_resources *res, unsigned flags,
                     hull_error_t *err)
{
    int64_t limit = res->memory.limit, swap = res->memory.swap;
    int r;
    if (limit != HULL_CG_UNSET || swap != HULL_CG_UNSET) {
        bool has_memsw = cg_exists(dir, "memory.memsw.limit_in_bytes");
        if (swap != HULL_CG_UNSET && !has_memsw && swap != limit && swap != -1)
            log_warn("memory.swap ignored: no swap accounting (memory.memsw) on this host");
        /* Raising: memsw first (it must stay >= limit); lowering: limit first. */
        uint64_t cur_sw = 0;
        if (!hull_cgroup_read_u64(dir, "memory.memsw.limit_in_bytes", &cur_sw, NULL))
            cur_sw = 0;
        bool memsw_first =
            has_memsw && swap != HULL_CG_UNSET && (swap == -1 || (uint64_t)swap > cur_sw);
        if (memsw_first && (r = cg_write_i64(dir, "memory.memsw.limit_in_bytes", swap, err)) < 0)
            return r;
        if (limit != HULL_CG_UNSET &&
            (r = cg_write_i64(dir, "memory.limit_in_bytes", limit, err)) < 0)
            return r;
        if (!memsw_first && has_memsw && swap != HULL_CG_UNSET &&
            (r = cg_write_i64(dir, "memory.memsw.limit_in_bytes", swap, err)) < 0)
            return r;
    }
    if (res->memory.reservation != HULL_CG_UNSET &&
        (r = cg_write_i64(dir, "memory.soft_limit_in_bytes", res->memory.reservation, err)) < 0)
        return r;
    if (res->memory.kernel != HULL_CG_UNSET) {
        _cleanup_error_ hull_error_t e = NULL;
        if (cg_write_i64(dir, "memory.kmem.limit_in_bytes", res->memory.kernel, &e) < 0)
            log_warn("memory.kernel ignored: %s", hull_error_msg(&e));
    }
    if (res->memory.kernel_tcp != HULL_CG_UNSET &&
        (r = cg_write_i64(dir, "memory.kmem.tcp.limit_in_bytes", res->memory.kernel_tcp, err)) < 0)
        return r;
    int64_t swappiness = res->memory.swappiness;
    if (swappiness != HULL_CG_UNSET && swappiness != INT64_MAX) {
        if (swappiness < 0 || swappiness > 100)
            return hull_error_setx(err, EINVAL, "memory.swappiness %" PRId64 " not in 0..100",
                                   swappiness);
        if ((r = cg_write_i64(dir, "memory.swappiness", swappiness, err)) < 0)
            return r;
    }
    int oom = res->memory.disable_oom_killer;
    if ((oom == 1 || (oom == 0 && (flags & HULL_CGROUP_UPDATE))) &&
        (r = cg_write(dir, "memory.oom_control", oom == 1 ? "1" : "0", err)) < 0)
        return r;
    return 0;
}

static bool given(int64_t v)
{
    return v != HULL_CG_UNSET && v != 0;
}

static int v1_cpu(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r;
    int64_t shares = res->cpu.shares;
    if (given(shares)) {
        if ((r = cg_write_i64(dir, "cpu.shares", shares, err)) < 0)
            return r;
        uint64_t got = 0;
        if (hull_cgroup_read_u64(dir, "cpu.shares", &got, NULL) && got != (uint64_t)shares)
            return hull_error_setx(
                err, EINVAL, "cpu.shares: the kernel clamped %" PRId64 " to %" PRIu64, shares, got);
    }
    if (given(res->cpu.period) &&
        (r = cg_write_i64(dir, "cpu.cfs_period_us", res->cpu.period, err)) < 0)
        return r;
    if (given(res->cpu.quota) &&
        (r = cg_write_i64(dir, "cpu.cfs_quota_us", res->cpu.quota, err)) < 0)
        return r;
    if (given(res->cpu.realtime_period) &&
        (r = cg_write_i64(dir, "cpu.rt_period_us", res->cpu.realtime_period, err)) < 0)
        return r;
    if (given(res->cpu.realtime_runtime) &&
        (r = cg_write_i64(dir, "cpu.rt_runtime_us", res->cpu.realtime_runtime, err)) < 0)
        return r;
    if (res->cpu.idle != HULL_CG_UNSET &&
        (r = cg_write_i64(dir, "cpu.idle", res->cpu.idle, err)) < 0)
        return r;
    return 0;
}

/* cpuset.cpus/mems start empty in a new v1 cgroup: copy the parent's (recursively). */
static int v1_cpuset_init(const char *dir, hull_error_t *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        _cleanup_free_ char *cur = cg_read(dir, files[i]);
        if (cur && *cur)
            continue;
        _cleanup_free_ char *parent = xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash == NULL || slash == parent)
            continue;
        *slash = '\0';
        _cleanup_free_ char *pv = cg_read(parent, files[i]);
        if (pv == NULL)
            continue;
        if (*pv == '\0') {
            int r = v1_cpuset_init(parent, err);
            if (r < 0)
                return r;
            free(pv);
            pv = cg_read(parent, files[i]);
        }
        int r = cg_write(dir, files[i], pv ? pv : "", err);
        if (r < 0)
            return r;
    }
    return 0;
}

int cg_cpuset_write(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r;
    if (res->cpu.cpus && *res->cpu.cpus &&
        (r = cg_write(dir, "cpuset.cpus", res->cpu.cpus, err)) < 0)
        return r;
    if (res->cpu.mems && *res->cpu.mems &&
        (r = cg_write(dir, "cpuset.mems", res->cpu.mems, err)) < 0)
        return r;
    return 0;
}

static int v1_pids(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int64_t limit = res->pids_limit;
    if (limit == HULL_CG_UNSET)
        return 0;
    if (limit <= 0 || limit == INT64_MAX)
        return cg_write(dir, "pids.max", "max", err);
    return cg_write_i64(dir, "pids.max", limit, err);
}

static int v1_devices_values(const char *dir, const char *file,
                             const struct hull_cgroup_dev_value *v, size_t n, hull_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        char buf[96];
        snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRId64, v[i].major, v[i].minor,
                 v[i].value);
        int r = cg_write(dir, file, buf, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int v1_blkio(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r;
    int64_t w = res->blkio.weight;
    if (given(w)) {
        const char *f = cg_exists(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
        if ((r = cg_write_i64(dir, f, w, err)) < 0)
            return r;
    }
    if (given(res->blkio.leaf_weight) &&
        (r = cg_write_i64(dir, "blkio.leaf_weight", res->blkio.leaf_weight, err)) < 0)
        return r;
    if ((r = v1_devices_values(dir, "blkio.weight_device", res->blkio.weight_device,
                               res->blkio.n_weight_device, err)) < 0)
        return r;
    static const char *const thr[HULL_CG_N_THROTTLE] = {
        [HULL_CG_THROTTLE_READ_BPS] = "blkio.throttle.read_bps_device",
        [HULL_CG_THROTTLE_WRITE_BPS] = "blkio.throttle.write_bps_device",
        [HULL_CG_THROTTLE_READ_IOPS] = "blkio.throttle.read_iops_device",
        [HULL_CG_THROTTLE_WRITE_IOPS] = "blkio.throttle.write_iops_device",
    };
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        if ((r = v1_devices_values(dir, thr[i], res->blkio.throttle[i], res->blkio.n_throttle[i],
                                   err)) < 0)
            return r;
    return 0;
}

int cg_hugetlb_write(const char *dir, const struct hull_cgroup_resources *res, bool v2,
                     hull_error_t *err)
{
    for (size_t i = 0; i < res->n_hugetlb; i++) {
        const struct hull_cgroup_hugetlb *h = &res->hugetlb[i];
        const char *size = h->page_size;
        if (size == NULL || h->limit == HULL_CG_UNSET || strchr(size, '/') || strstr(size, ".."))
            return hull_error_setx(err, EINVAL, "hugepageLimits[%zu]: invalid", i);
        _cleanup_free_ char *f = xasprintf("hugetlb.%s.%s", size, v2 ? "max" : "limit_in_bytes");
        int r = cg_write_i64(dir, f, h->limit, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int hull_cgroup_v1_apply(const char *controller, const char *dir,
                         const struct hull_cgroup_resources *res, unsigned flags, hull_error_t *err)
{
    if (strcmp(controller, "cpuset") == 0) {
        int r = v1_cpuset_init(dir, err);
        if (r < 0)
            return r;
        return cg_cpuset_write(dir, res, err);
    }
    if (strcmp(controller, "memory") == 0)
        return v1_memory(dir, res, flags, err);
    if (strcmp(controller, "cpu") == 0)
        return v1_cpu(dir, res, err);
    if (strcmp(controller, "pids") == 0)
        return v1_pids(dir, res, err);
    if (strcmp(controller, "blkio") == 0)
        return v1_blkio(dir, res, err);
    if (strcmp(controller, "hugetlb") == 0)
        return cg_hugetlb_write(dir, res, false, err);
    if (strcmp(controller, "net_cls") == 0 && res->net_cls_classid != HULL_CG_UNSET)
        return cg_write_i64(dir, "net_cls.classid", res->net_cls_classid, err);
    return 0;
}
