/* cgroup v1 usage readers: cpuacct and cpu, memory, blkio (cgroup.h, hull_cgroup_stats_read). */
#include "common/cgroup_internal.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static bool kv(const char *text, const char *key, uint64_t *v)
{
    return text && hull_cgroup_kv_get(text, key, v);
}

void cg_stats_v1_cpu(const char *acct, const char *cpu, struct hull_cgroup_cpu_stats *c)
{
    if (hull_cgroup_read_u64(acct, "cpuacct.usage", &c->usage_ns, NULL))
        c->valid = true;
    if (c->valid && hull_cgroup_read_u64(acct, "cpuacct.usage_user", &c->user_ns, NULL) &&
        hull_cgroup_read_u64(acct, "cpuacct.usage_sys", &c->system_ns, NULL)) {
        c->has_user_system = true;
    } else if (c->valid) {
        _cleanup_free_ char *st = cg_stats_text(acct, "cpuacct.stat"); /* USER_HZ ticks */
        uint64_t u = 0, s = 0;
        long hz = sysconf(_SC_CLK_TCK);
        if (hz > 0 && kv(st, "user", &u) && kv(st, "system", &s)) {
            c->has_user_system = true;
            c->user_ns = u * (UINT64_C(1000000000) / (uint64_t)hz);
            c->system_ns = s * (UINT64_C(1000000000) / (uint64_t)hz);
        }
    }
    _cleanup_free_ char *cs = cg_stats_text(cpu, "cpu.stat");
    if (kv(cs, "nr_periods", &c->nr_periods) && kv(cs, "nr_throttled", &c->nr_throttled) &&
        kv(cs, "throttled_time", &c->throttled_ns))
        c->has_throttling = true;
    c->has_spec = hull_cgroup_read_u64(cpu, "cpu.cfs_period_us", &c->period_us, NULL) &&
                  hull_cgroup_read_u64(cpu, "cpu.shares", &c->shares, NULL);
}

/* The hierarchical total ("total_<key>") of memory.stat, else the local value: the root cgroup
 * of old kernels has only the local ones. */
static void total_or_local(const char *st, const char *key, uint64_t *v)
{
    char total[64];
    snprintf(total, sizeof(total), "total_%s", key);
    if (!kv(st, total, v))
        kv(st, key, v);
}

void cg_stats_v1_memory(const char *dir, struct hull_cgroup_memory_stats *m)
{
    if (!hull_cgroup_read_u64(dir, "memory.usage_in_bytes", &m->usage_bytes, NULL))
        return;
    m->valid = true;
    _cleanup_free_ char *st = cg_stats_text(dir, "memory.stat");
    total_or_local(st, "inactive_file", &m->inactive_file_bytes);
    total_or_local(st, "rss", &m->rss_bytes);
    total_or_local(st, "cache", &m->cache_bytes);
    total_or_local(st, "pgfault", &m->page_faults);
    total_or_local(st, "pgmajfault", &m->major_page_faults);
    total_or_local(st, "mapped_file", &m->mapped_file_bytes);
    m->has_failcnt = hull_cgroup_read_u64(dir, "memory.failcnt", &m->failcnt, NULL);
    m->has_kernel = hull_cgroup_read_u64(dir, "memory.kmem.usage_in_bytes", &m->kernel_bytes, NULL);
    m->has_max_usage =
        hull_cgroup_read_u64(dir, "memory.max_usage_in_bytes", &m->max_usage_bytes, NULL);
    _cleanup_free_ char *oc = cg_stats_text(dir, "memory.oom_control");
    long long kills = hull_cgroup_oom_parse(oc); /* kernel >= 4.13 */
    m->has_oom_kills = kills >= 0;
    m->oom_kills = kills >= 0 ? (uint64_t)kills : 0;
    uint64_t limit = 0, memsw = 0, memsw_limit = 0;
    bool have_limit = hull_cgroup_read_u64(dir, "memory.limit_in_bytes", &limit, NULL);
    if (hull_cgroup_read_u64(dir, "memory.memsw.usage_in_bytes", &memsw, NULL)) {
        m->has_swap = true;
        m->swap_usage_bytes = memsw > m->usage_bytes ? memsw - m->usage_bytes : 0;
        if (have_limit && limit < HULL_CGROUP_STATS_UNLIMITED &&
            hull_cgroup_read_u64(dir, "memory.memsw.limit_in_bytes", &memsw_limit, NULL) &&
            memsw_limit < HULL_CGROUP_STATS_UNLIMITED) {
            m->has_swap_limit = true;
            m->swap_limit_bytes = memsw_limit > limit ? memsw_limit - limit : 0;
        }
    }
    cg_stats_memory_finish(m, limit, have_limit);
}

/* "MAJ:MIN Read N" ... lines (and a last "Total N"): the Read and Write sums over devices of
 * <file>_recursive (the cgroup and its descendants), else of <file> when there is none. */
static bool blkio_sum(const char *dir, const char *file, uint64_t *rd, uint64_t *wr)
{
    _cleanup_free_ char *rec = xasprintf("%s_recursive", file);
    _cleanup_free_ char *t = cg_stats_text(dir, rec);
    if (t == NULL)
        t = cg_stats_text(dir, file);
    if (t == NULL)
        return false;
    *rd = *wr = 0;
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char dev[32], op[16];
        uint64_t v = 0;
        if (sscanf(l, "%31s %15s %" SCNu64, dev, op, &v) != 3)
            continue;
        if (strcmp(op, "Read") == 0)
            *rd += v;
        else if (strcmp(op, "Write") == 0)
            *wr += v;
    }
    return true;
}

void cg_stats_v1_io(const char *dir, struct hull_cgroup_io_stats *io)
{
    if (!blkio_sum(dir, "blkio.throttle.io_service_bytes", &io->read_bytes, &io->write_bytes))
        return;
    io->valid = true;
    if (!blkio_sum(dir, "blkio.throttle.io_serviced", &io->read_ops, &io->write_ops))
        io->read_ops = io->write_ops = 0;
}
