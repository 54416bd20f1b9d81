/* cgroup v2 usage readers: cpu.stat and cpu.max/cpu.weight, memory, io.stat (cgroup.h,
 * hull_cgroup_stats_read). */
#include "common/cgroup_internal.h"

#include <inttypes.h>
#include <string.h>

static bool kv(const char *text, const char *key, uint64_t *v)
{
    return text && hull_cgroup_kv_get(text, key, v);
}

void cg_stats_v2_cpu(const char *dir, struct hull_cgroup_cpu_stats *c)
{
    _cleanup_free_ char *cs = cg_stats_text(dir, "cpu.stat");
    uint64_t us = 0;
    if (!kv(cs, "usage_usec", &us))
        return;
    c->valid = true;
    c->usage_ns = us * 1000;
    uint64_t u = 0, s = 0, t = 0;
    if (kv(cs, "user_usec", &u) && kv(cs, "system_usec", &s)) {
        c->has_user_system = true;
        c->user_ns = u * 1000;
        c->system_ns = s * 1000;
    }
    if (kv(cs, "nr_periods", &c->nr_periods) && kv(cs, "nr_throttled", &c->nr_throttled) &&
        kv(cs, "throttled_usec", &t)) {
        c->has_throttling = true;
        c->throttled_ns = t * 1000;
    }
    /* cpu.max "QUOTA PERIOD" (QUOTA may be "max"); cpu.weight 1..10000 back to shares 2..262144
     * (the inverse of the conversion runc and the kubelet use) */
    _cleanup_free_ char *max = cg_stats_text(dir, "cpu.max");
    uint64_t weight = 0;
    char quota[32];
    if (max && sscanf(max, "%31s %" SCNu64, quota, &c->period_us) == 2 &&
        hull_cgroup_read_u64(dir, "cpu.weight", &weight, NULL) && weight >= 1) {
        c->has_spec = true;
        c->shares = 2 + ((weight - 1) * 262142) / 9999;
    }
}

void cg_stats_v2_memory(const char *dir, struct hull_cgroup_memory_stats *m)
{
    if (!hull_cgroup_read_u64(dir, "memory.current", &m->usage_bytes, NULL))
        return;
    m->valid = true;
    _cleanup_free_ char *st = cg_stats_text(dir, "memory.stat");
    kv(st, "inactive_file", &m->inactive_file_bytes);
    kv(st, "anon", &m->rss_bytes);
    kv(st, "file", &m->cache_bytes);
    kv(st, "pgfault", &m->page_faults);
    kv(st, "pgmajfault", &m->major_page_faults);
    kv(st, "file_mapped", &m->mapped_file_bytes);
    m->has_kernel = kv(st, "kernel", &m->kernel_bytes);
    if (!m->has_kernel) { /* kernels before 5.18 have no "kernel" line */
        uint64_t part = 0;
        static const char *const parts[] = {"kernel_stack", "slab", "sock", "percpu"};
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
            if (kv(st, parts[i], &part)) {
                m->has_kernel = true;
                m->kernel_bytes += part;
            }
    }
    m->has_max_usage = hull_cgroup_read_u64(dir, "memory.peak", &m->max_usage_bytes, NULL);
    /* memory.events: "max" counts the times the limit was hit, "oom_kill" the kills */
    _cleanup_free_ char *ev = cg_stats_text(dir, "memory.events");
    m->has_failcnt = kv(ev, "max", &m->failcnt);
    long long kills = hull_cgroup_oom_parse(ev);
    m->has_oom_kills = kills >= 0;
    m->oom_kills = kills >= 0 ? (uint64_t)kills : 0;
    uint64_t limit = 0, swap_max = 0;
    bool unlimited = false, swap_unlimited = false;
    bool have_limit = hull_cgroup_read_u64(dir, "memory.max", &limit, &unlimited);
    if (hull_cgroup_read_u64(dir, "memory.swap.current", &m->swap_usage_bytes, NULL)) {
        m->has_swap = true;
        if (hull_cgroup_read_u64(dir, "memory.swap.max", &swap_max, &swap_unlimited) &&
            !swap_unlimited && swap_max < HULL_CGROUP_STATS_UNLIMITED) {
            m->has_swap_limit = true;
            m->swap_limit_bytes = swap_max;
        }
    }
    cg_stats_memory_finish(m, limit, have_limit && !unlimited);
}

/* io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device, summed. */
void cg_stats_v2_io(const char *dir, struct hull_cgroup_io_stats *io)
{
    _cleanup_free_ char *t = cg_stats_text(dir, "io.stat");
    if (t == NULL)
        return;
    io->valid = true;
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *s2 = NULL;
        strtok_r(l, " ", &s2); /* device */
        for (char *k = strtok_r(NULL, " ", &s2); k; k = strtok_r(NULL, " ", &s2)) {
            char *eq = strchr(k, '=');
            uint64_t v = 0;
            if (eq == NULL || !cg_parse_u64(eq + 1, &v, NULL))
                continue;
            *eq = '\0';
            if (strcmp(k, "rbytes") == 0)
                io->read_bytes += v;
            else if (strcmp(k, "wbytes") == 0)
                io->write_bytes += v;
            else if (strcmp(k, "rios") == 0)
                io->read_ops += v;
            else if (strcmp(k, "wios") == 0)
                io->write_ops += v;
        }
    }
}
