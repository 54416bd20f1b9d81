/* linux.resources JSON <-> the typed resources (cgroup.h): hull-oci parses the spec once,
 * hulld writes the spec (and hull-oci update's input) from the typed form it built from CRI. */
#include "common/cgroup.h"

#include <string.h>

int64_t hull_cgroup_json_int64(yajl_val obj, const char *key)
{
    yajl_val v = hull_json_get(obj, key);
    if (v == NULL || !YAJL_IS_NUMBER(v))
        return HULL_CG_UNSET;
    if (YAJL_IS_INTEGER(v))
        return YAJL_GET_INTEGER(v);
    /* uint64 above INT64_MAX: treat as "max" */
    return INT64_MAX;
}

/* ---- linux.resources -> typed ---------------------------------------------------------------- */
static void parse_devs(yajl_val arr, const char *key, struct hull_cgroup_dev_value **v, size_t *n)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val d = arr->u.array.values[i];
        int64_t maj = hull_cgroup_json_int64(d, "major"), min = hull_cgroup_json_int64(d, "minor"),
                val = hull_cgroup_json_int64(d, key);
        /* an entry without its device or value sets nothing (as runc) */
        if (maj == HULL_CG_UNSET || min == HULL_CG_UNSET || val == HULL_CG_UNSET)
            continue;
        hull_cgroup_resources_add_dev(v, n, maj, min, val);
    }
}

static char *nonempty_string(yajl_val obj, const char *key)
{
    const char *s = hull_json_get_string(obj, key, NULL);
    return s && *s ? xstrdup(s) : NULL;
}

void hull_cgroup_resources_from_json(yajl_val res, struct hull_cgroup_resources *out)
{
    hull_cgroup_resources_init(out);
    if (res == NULL || !YAJL_IS_OBJECT(res))
        return;
    yajl_val mem = hull_json_get(res, "memory");
    if (mem) {
        out->memory.limit = hull_cgroup_json_int64(mem, "limit");
        out->memory.swap = hull_cgroup_json_int64(mem, "swap");
        out->memory.reservation = hull_cgroup_json_int64(mem, "reservation");
        out->memory.kernel = hull_cgroup_json_int64(mem, "kernel");
        out->memory.kernel_tcp = hull_cgroup_json_int64(mem, "kernelTCP");
        out->memory.swappiness = hull_cgroup_json_int64(mem, "swappiness");
        yajl_val oom = hull_json_get(mem, "disableOOMKiller");
        out->memory.disable_oom_killer = oom && YAJL_IS_TRUE(oom)    ? 1
                                         : oom && YAJL_IS_FALSE(oom) ? 0
                                                                     : -1;
    }
    yajl_val cpu = hull_json_get(res, "cpu");
    if (cpu) {
        out->cpu.shares = hull_cgroup_json_int64(cpu, "shares");
        out->cpu.quota = hull_cgroup_json_int64(cpu, "quota");
        out->cpu.period = hull_cgroup_json_int64(cpu, "period");
        out->cpu.realtime_runtime = hull_cgroup_json_int64(cpu, "realtimeRuntime");
        out->cpu.realtime_period = hull_cgroup_json_int64(cpu, "realtimePeriod");
        out->cpu.idle = hull_cgroup_json_int64(cpu, "idle");
        out->cpu.cpus = nonempty_string(cpu, "cpus");
        out->cpu.mems = nonempty_string(cpu, "mems");
    }
    out->pids_limit = hull_cgroup_json_int64(hull_json_get(res, "pids"), "limit");
    yajl_val b = hull_json_get(res, "blockIO");
    if (b) {
        out->blkio.weight = hull_cgroup_json_int64(b, "weight");
        out->blkio.leaf_weight = hull_cgroup_json_int64(b, "leafWeight");
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
                                          hull_cgroup_json_int64(h, "limit"));
    }
    yajl_val unified = hull_json_get(res, "unified");
    for (size_t i = 0; unified && YAJL_IS_OBJECT(unified) && i < unified->u.object.len; i++) {
        yajl_val v = unified->u.object.values[i];
        hull_cgroup_resources_add_unified(out, unified->u.object.keys[i],
                                          YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL);
    }
    out->net_cls_classid = hull_cgroup_json_int64(hull_json_get(res, "network"), "classID");
}

/* ---- typed -> linux.resources -------------------------------------------------------------------
 */
static void kv_i64(struct hull_json_writer *w, const char *key, int64_t v)
{
    if (v != HULL_CG_UNSET)
        hull_jw_kv_int(w, key, v);
}

static void devs_json(struct hull_json_writer *w, const char *key, const char *vkey,
                      const struct hull_cgroup_dev_value *v, size_t n)
{
    if (n == 0)
        return;
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "major", v[i].major);
        hull_jw_kv_int(w, "minor", v[i].minor);
        hull_jw_kv_int(w, vkey, v[i].value);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
}

void hull_cgroup_resources_to_json(struct hull_json_writer *w,
                                   const struct hull_cgroup_resources *r)
{
    const int64_t U = HULL_CG_UNSET;
    if (r->memory.limit != U || r->memory.swap != U || r->memory.reservation != U ||
        r->memory.kernel != U || r->memory.kernel_tcp != U || r->memory.swappiness != U ||
        r->memory.disable_oom_killer >= 0) {
        hull_jw_key(w, "memory");
        hull_jw_begin_object(w);
        kv_i64(w, "limit", r->memory.limit);
        kv_i64(w, "swap", r->memory.swap);
        kv_i64(w, "reservation", r->memory.reservation);
        kv_i64(w, "kernel", r->memory.kernel);
        kv_i64(w, "kernelTCP", r->memory.kernel_tcp);
        kv_i64(w, "swappiness", r->memory.swappiness);
        if (r->memory.disable_oom_killer >= 0)
            hull_jw_kv_bool(w, "disableOOMKiller", r->memory.disable_oom_killer == 1);
        hull_jw_end_object(w);
    }
    if (r->cpu.shares != U || r->cpu.quota != U || r->cpu.period != U ||
        r->cpu.realtime_runtime != U || r->cpu.realtime_period != U || r->cpu.idle != U ||
        r->cpu.cpus || r->cpu.mems) {
        hull_jw_key(w, "cpu");
        hull_jw_begin_object(w);
        kv_i64(w, "shares", r->cpu.shares);
        kv_i64(w, "quota", r->cpu.quota);
        kv_i64(w, "period", r->cpu.period);
        kv_i64(w, "realtimeRuntime", r->cpu.realtime_runtime);
        kv_i64(w, "realtimePeriod", r->cpu.realtime_period);
        kv_i64(w, "idle", r->cpu.idle);
        if (r->cpu.cpus)
            hull_jw_kv_string(w, "cpus", r->cpu.cpus);
        if (r->cpu.mems)
            hull_jw_kv_string(w, "mems", r->cpu.mems);
        hull_jw_end_object(w);
    }
    if (r->pids_limit != U) {
        hull_jw_key(w, "pids");
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "limit", r->pids_limit);
        hull_jw_end_object(w);
    }
    size_t n_thr = 0;
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        n_thr += r->blkio.n_throttle[i];
    if (r->blkio.weight != U || r->blkio.leaf_weight != U || r->blkio.n_weight_device || n_thr) {
        static const char *const thr[HULL_CG_N_THROTTLE] = {
            [HULL_CG_THROTTLE_READ_BPS] = "throttleReadBpsDevice",
            [HULL_CG_THROTTLE_WRITE_BPS] = "throttleWriteBpsDevice",
            [HULL_CG_THROTTLE_READ_IOPS] = "throttleReadIOPSDevice",
            [HULL_CG_THROTTLE_WRITE_IOPS] = "throttleWriteIOPSDevice",
        };
        hull_jw_key(w, "blockIO");
        hull_jw_begin_object(w);
        kv_i64(w, "weight", r->blkio.weight);
        kv_i64(w, "leafWeight", r->blkio.leaf_weight);
        devs_json(w, "weightDevice", "weight", r->blkio.weight_device, r->blkio.n_weight_device);
        for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
            devs_json(w, thr[i], "rate", r->blkio.throttle[i], r->blkio.n_throttle[i]);
        hull_jw_end_object(w);
    }
    if (r->n_hugetlb) {
        hull_jw_key(w, "hugepageLimits");
        hull_jw_begin_array(w);
        for (size_t i = 0; i < r->n_hugetlb; i++) {
            hull_jw_begin_object(w);
            if (r->hugetlb[i].page_size)
                hull_jw_kv_string(w, "pageSize", r->hugetlb[i].page_size);
            kv_i64(w, "limit", r->hugetlb[i].limit);
            hull_jw_end_object(w);
        }
        hull_jw_end_array(w);
    }
    if (r->n_unified) {
        hull_jw_key(w, "unified");
        hull_jw_begin_object(w);
        for (size_t i = 0; i < r->n_unified; i++) {
            hull_jw_key(w, r->unified[i].key);
            hull_jw_string(w, r->unified[i].value);
        }
        hull_jw_end_object(w);
    }
    if (r->net_cls_classid != U) {
        hull_jw_key(w, "network");
        hull_jw_begin_object(w);
        hull_jw_kv_int(w, "classID", r->net_cls_classid);
        hull_jw_end_object(w);
    }
}
