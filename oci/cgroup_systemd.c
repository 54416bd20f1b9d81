/* The systemd cgroup driver of hull-oci (--systemd-cgroup, as runc and crun): the container
 * runs in a transient scope created over D-Bus with Delegate=yes and its resources as unit
 * properties; the scope's cgroup files are then written as with cgroupfs (systemd has no
 * property for everything), so both views agree. */
#include "oci/oci.h"

#include <errno.h>
#include <string.h>

int oci_cgroup_systemd_resolve(const struct hull_cgroup_layout *l, const char *cgroups_path,
                               const char *id, struct oci_cgroup *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *slice = NULL, *unit = NULL, *sp = NULL;
    int r = hull_systemd_parse_path(cgroups_path, "hull-oci", id, &slice, &unit, err);
    if (r < 0 || (r = hull_systemd_expand_slice(slice, &sp, err)) < 0)
        return r;
    _cleanup_free_ char *rel =
        strcmp(sp, "/") == 0 ? xasprintf("/%s", unit) : xasprintf("%s/%s", sp, unit);
    /* the unit's cgroup, below the root of every hierarchy (absolute, as systemd sees it) */
    if ((r = oci_cgroup_resolve(l, "", rel, id, out, err)) < 0)
        return r;
    out->systemd_unit = hull_steal(unit);
    out->systemd_slice = hull_steal(slice);
    return 0;
}

int oci_cgroup_systemd_props(yajl_val res, struct hull_systemd_props *p, hull_error_t *err)
{
    if (res == NULL)
        return 0;
    yajl_val mem = hull_json_get(res, "memory");
    if (mem) {
        int64_t limit = oci_json_int64(mem, "limit"), swap = oci_json_int64(mem, "swap"),
                low = oci_json_int64(mem, "reservation");
        if (limit != OCI_UNSET)
            hull_systemd_props_u64(p, "MemoryMax",
                                   limit < 0 || limit == INT64_MAX ? UINT64_MAX : (uint64_t)limit);
        /* runtime-spec swap is memory+swap; systemd's MemorySwapMax is swap alone */
        if (swap != OCI_UNSET) {
            if (swap < 0 || swap == INT64_MAX)
                hull_systemd_props_u64(p, "MemorySwapMax", UINT64_MAX);
            else if (limit > 0 && swap >= limit)
                hull_systemd_props_u64(p, "MemorySwapMax", (uint64_t)(swap - limit));
        }
        if (low != OCI_UNSET)
            hull_systemd_props_u64(p, "MemoryLow",
                                   low < 0 || low == INT64_MAX ? UINT64_MAX : (uint64_t)low);
    }
    yajl_val cpu = hull_json_get(res, "cpu");
    if (cpu) {
        int64_t shares = oci_json_int64(cpu, "shares"), quota = oci_json_int64(cpu, "quota"),
                period = oci_json_int64(cpu, "period");
        if (shares != OCI_UNSET && shares > 0)
            hull_systemd_props_u64(p, "CPUWeight", oci_cgroup_shares_to_weight((uint64_t)shares));
        if (period != OCI_UNSET && period > 0)
            hull_systemd_props_u64(p, "CPUQuotaPeriodUSec", (uint64_t)period);
        if (quota != OCI_UNSET && quota != 0) {
            uint64_t per_sec = UINT64_MAX;
            if (quota > 0 && quota != INT64_MAX) {
                uint64_t per = period != OCI_UNSET && period > 0 ? (uint64_t)period : 100000;
                per_sec = (uint64_t)quota * 1000000ull / per;
                /* systemd keeps the quota in 10 ms steps: round up as runc does */
                if (per_sec % 10000)
                    per_sec = (per_sec / 10000 + 1) * 10000;
            }
            hull_systemd_props_u64(p, "CPUQuotaPerSecUSec", per_sec);
        }
        const char *cpus = hull_json_get_string(cpu, "cpus", NULL);
        const char *mems = hull_json_get_string(cpu, "mems", NULL);
        int r;
        if (cpus && *cpus && (r = hull_systemd_props_cpuset(p, "AllowedCPUs", cpus, err)) < 0)
            return r;
        if (mems && *mems &&
            (r = hull_systemd_props_cpuset(p, "AllowedMemoryNodes", mems, err)) < 0)
            return r;
    }
    yajl_val pids = hull_json_get(res, "pids");
    if (pids) {
        int64_t limit = oci_json_int64(pids, "limit");
        if (limit != OCI_UNSET)
            hull_systemd_props_u64(p, "TasksMax",
                                   limit <= 0 || limit == INT64_MAX ? UINT64_MAX : (uint64_t)limit);
    }
    yajl_val b = hull_json_get(res, "blockIO");
    if (b) {
        int64_t w = oci_json_int64(b, "weight");
        if (w != OCI_UNSET && w > 0)
            hull_systemd_props_u64(p, "IOWeight", oci_cgroup_blkio_to_io_weight((uint64_t)w));
    }
    return 0;
}

int oci_cgroup_systemd_start(struct oci_cgroup *cg, pid_t pid, yajl_val res, const char *id,
                             hull_error_t *err)
{
    _cleanup_systemd_props_ struct hull_systemd_props props = {0};
    int r = 0;
    /* the resource properties map to cgroup2 files; on v1 the files are written directly */
    if (cg->mode == HULL_CGROUP_V2 && (r = oci_cgroup_systemd_props(res, &props, err)) < 0)
        return r;
    _cleanup_free_ char *desc = xasprintf("hull-oci container %s", id);
    r = hull_systemd_start_unit(cg->systemd_unit, cg->systemd_slice, desc, &pid, 1, &props, err);
    if (r < 0)
        return hull_error_wrap(err, "systemd cgroup");
    return 0;
}

int oci_cgroup_systemd_update(struct oci_cgroup *cg, yajl_val res, hull_error_t *err)
{
    if (cg->systemd_unit == NULL || cg->mode != HULL_CGROUP_V2)
        return 0;
    _cleanup_systemd_props_ struct hull_systemd_props props = {0};
    int r = oci_cgroup_systemd_props(res, &props, err);
    if (r < 0 || props.n == 0)
        return r;
    return hull_systemd_set_unit_properties(cg->systemd_unit, &props, err);
}
