/* What the v1 and v2 usage readers (cgroup_stats_v1.c, cgroup_stats_v2.c) share: a cgroup
 * file's text, one number, the memory sums.  Apart from cgroup_stats.c so that hull-conmon's
 * OOM watch links none of it. */
#include "common/cgroup_internal.h"

char *cg_stats_text(const char *dir, const char *file)
{
    return dir ? cg_read(dir, file) : NULL;
}

bool hull_cgroup_read_u64(const char *dir, const char *file, uint64_t *v, bool *unlimited)
{
    _cleanup_free_ char *t = cg_stats_text(dir, file);
    return t && cg_parse_u64(t, v, unlimited);
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void cg_stats_memory_finish(struct hull_cgroup_memory_stats *m, uint64_t limit, bool limit_known)
{
    m->working_set_bytes = sub_floor(m->usage_bytes, m->inactive_file_bytes);
    if (limit_known && limit < HULL_CGROUP_STATS_UNLIMITED) {
        m->has_limit = true;
        m->limit_bytes = limit;
        m->available_bytes = sub_floor(limit, m->working_set_bytes);
    }
    if (m->has_swap_limit)
        m->swap_available_bytes = sub_floor(m->swap_limit_bytes, m->swap_usage_bytes);
}
