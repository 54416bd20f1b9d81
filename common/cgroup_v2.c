/* cgroup v2 writers: every setting of a container in its cgroup2 directory, and the
 * controllers enabled on the way down (cgroup.h). */
#include "common/cgroup_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *v2, *v1;
    unsigned bit;
} v2_controllers[] = {
    {"cpu", "cpu", CG_V2_CPU},          {"cpuset", "cpuset", CG_V2_CPUSET},
    {"memory", "memory", CG_V2_MEMORY}, {"pids", "pids", CG_V2_PIDS},
    {"io", "blkio", CG_V2_IO},          {"hugetlb", "hugetlb", CG_V2_HUGETLB},
};

unsigned cg_v2_controller_bit(const char *v2_name, const char **v1_name)
{
    for (size_t i = 0; i < sizeof(v2_controllers) / sizeof(v2_controllers[0]); i++)
        if (strcmp(v2_name, v2_controllers[i].v2) == 0) {
            if (v1_name)
                *v1_name = v2_controllers[i].v1;
            return v2_controllers[i].bit;
        }
    return 0;
}

bool hull_cgroup_unified_key_ok(const char *k)
{
    static const char *const denied[] = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
                                         "cgroup.kill", NULL};
    if (k == NULL || *k == '\0' || strchr(k, '/') != NULL || strchr(k, '.') == NULL || k[0] == '.')
        return false;
    for (size_t i = 0; denied[i]; i++)
        if (strcmp(k, denied[i]) == 0)
            return false;
    return true;
}

int hull_cgroup_unified_check(const struct hull_cgroup_resources *r, hull_error_t *err)
{
    for (size_t i = 0; i < r->n_unified; i++) {
        const char *k = r->unified[i].key, *val = r->unified[i].value;
        if (!hull_cgroup_unified_key_ok(k))
            return hull_error_setx(err, EINVAL, "unified: invalid key `%s`", k ? k : "");
        if (val == NULL)
            return hull_error_setx(err, EINVAL, "unified `%s`: value must be a string", k);
        const char *nl = strchr(val, '\n');
        if (nl && nl[1] != '\0')
            return hull_error_setx(err, EINVAL, "unified `%s`: one line only", k);
    }
    return 0;
}

bool hull_cgroup_cpu_max(int64_t quota, int64_t period, const char *cur_max, char *buf, size_t len)
{
    bool q = quota != HULL_CG_UNSET && quota != 0, p = period != HULL_CG_UNSET && period != 0;
    if (!q && !p)
        return false;
    uint64_t per = p && period > 0 ? (uint64_t)period : 100000;
    if (!q) {
        /* keep the current quota */
        char cur[32] = "max";
        if (cur_max)
            sscanf(cur_max, "%31s", cur);
        snprintf(buf, len, "%s %" PRIu64, cur, per);
    } else if (quota < 0) {
        snprintf(buf, len, "max %" PRIu64, per);
    } else {
        snprintf(buf, len, "%" PRId64 " %" PRIu64, quota, per);
    }
    return true;
}

static int v2_memory(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int64_t limit = res->memory.limit, swap = res->memory.swap;
    int r;
    if (swap != HULL_CG_UNSET) {
        /* runtime-spec swap is memory+swap; v2 swap.max is swap alone */
        int64_t s;
        if (swap == -1 || swap == INT64_MAX)
            s = -1;
        else if (limit == HULL_CG_UNSET || limit == -1)
            return hull_error_setx(err, EINVAL, "memory.swap needs memory.limit on cgroup v2");
        else if (swap < limit)
            return hull_error_setx(err, EINVAL,
                                   "memory.swap %" PRId64 " is lower than memory.limit %" PRId64,
                                   swap, limit);
        else
            s = swap - limit;
        if ((r = cg_write_max(dir, "memory.swap.max", s, err)) < 0)
            return r;
    }
    if (limit != HULL_CG_UNSET && (r = cg_write_max(dir, "memory.max", limit, err)) < 0)
        return r;
    if (res->memory.reservation != HULL_CG_UNSET &&
        (r = cg_write_max(dir, "memory.low", res->memory.reservation, err)) < 0)
        return r;
    if (res->memory.disable_oom_killer == 1)
        log_warn("memory.disableOOMKiller is not supported on cgroup v2, ignored");
    return 0;
}

static int v2_cpu(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r;
    int64_t shares = res->cpu.shares;
    if (shares != HULL_CG_UNSET && shares != 0 &&
        (r = cg_write_u64(dir, "cpu.weight", hull_cgroup_shares_to_weight((uint64_t)shares), err)) <
            0)
        return r;
    char buf[64];
    bool q = res->cpu.quota != HULL_CG_UNSET && res->cpu.quota != 0;
    _cleanup_free_ char *cur = q ? NULL : cg_read(dir, "cpu.max");
    if (hull_cgroup_cpu_max(res->cpu.quota, res->cpu.period, cur, buf, sizeof(buf)) &&
        (r = cg_write(dir, "cpu.max", buf, err)) < 0)
        return r;
    if (res->cpu.idle != HULL_CG_UNSET &&
        (r = cg_write_i64(dir, "cpu.idle", res->cpu.idle, err)) < 0)
        return r;
    return 0;
}

static int v2_io_values(const char *dir, const char *key, const struct hull_cgroup_dev_value *v,
                        size_t n, hull_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        char buf[96];
        snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %s=%" PRId64, v[i].major, v[i].minor,
                 key, v[i].value);
        int r = cg_write(dir, "io.max", buf, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int v2_io(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r;
    int64_t w = res->blkio.weight;
    if (w != HULL_CG_UNSET && w != 0) {
        if (cg_exists(dir, "io.bfq.weight"))
            r = cg_write_i64(dir, "io.bfq.weight", w, err);
        else
            r = cg_write_u64(dir, "io.weight", hull_cgroup_blkio_to_io_weight((uint64_t)w), err);
        if (r < 0)
            return r;
    }
    static const char *const keys[HULL_CG_N_THROTTLE] = {
        [HULL_CG_THROTTLE_READ_BPS] = "rbps",
        [HULL_CG_THROTTLE_WRITE_BPS] = "wbps",
        [HULL_CG_THROTTLE_READ_IOPS] = "riops",
        [HULL_CG_THROTTLE_WRITE_IOPS] = "wiops",
    };
    for (size_t i = 0; i < HULL_CG_N_THROTTLE; i++)
        if ((r = v2_io_values(dir, keys[i], res->blkio.throttle[i], res->blkio.n_throttle[i],
                              err)) < 0)
            return r;
    return 0;
}

static int v2_unified(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err)
{
    int r = hull_cgroup_unified_check(res, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < res->n_unified; i++) {
        const char *k = res->unified[i].key;
        r = cg_write(dir, k, res->unified[i].value, err);
        if (r == -ENOENT || r == -EACCES) {
            hull_error_wrap(err, "unified `%s` (is its controller enabled?)", k);
            return r;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int cg_v2_apply(const char *dir, const struct hull_cgroup_resources *res, unsigned mask,
                hull_error_t *err)
{
    int r;
    if ((mask & CG_V2_MEMORY) && (r = v2_memory(dir, res, err)) < 0)
        return r;
    if ((mask & CG_V2_CPU) && (r = v2_cpu(dir, res, err)) < 0)
        return r;
    if ((mask & CG_V2_CPUSET) && (r = cg_cpuset_write(dir, res, err)) < 0)
        return r;
    if ((mask & CG_V2_PIDS) && res->pids_limit != HULL_CG_UNSET &&
        (r = cg_write_max(dir, "pids.max", res->pids_limit <= 0 ? -1 : res->pids_limit, err)) < 0)
        return r;
    if ((mask & CG_V2_IO) && (r = v2_io(dir, res, err)) < 0)
        return r;
    if ((mask & CG_V2_HUGETLB) && (r = cg_hugetlb_write(dir, res, true, err)) < 0)
        return r;
    if ((mask & CG_V2_UNIFIED) && (r = v2_unified(dir, res, err)) < 0)
        return r;
    return 0;
}

int hull_cgroup_v2_apply(const char *dir, const struct hull_cgroup_resources *res,
                         hull_error_t *err)
{
    return cg_v2_apply(dir, res, CG_V2_ALL, err);
}

/* "+a +b ..." for the controllers dir's cgroup.controllers lists; NULL for none. */
static char *enable_line(const char *dir)
{
    _cleanup_free_ char *avail = cg_read(dir, "cgroup.controllers");
    if (avail == NULL || *avail == '\0')
        return NULL;
    char *line = xstrdup("");
    char *save = NULL;
    for (char *c = strtok_r(avail, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
        char *n = xasprintf("%s%s+%s", line, *line ? " " : "", c);
        free(line);
        line = n;
    }
    return line;
}

int hull_cgroup_v2_enable_controllers(const char *base, const char *dir, hull_error_t *err)
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
        _cleanup_free_ char *line = enable_line(cur);
        _cleanup_error_ hull_error_t e = NULL;
        if (line && cg_write(cur, "cgroup.subtree_control", line, &e) < 0)
            log_debug("enable controllers in %s: %s", cur, hull_error_msg(&e));
        char *next = xasprintf("%s/%.*s", cur, (int)(slash - rest), rest);
        free(cur);
        cur = next;
        rest = slash;
    }
    /* the last level (dir's parent) */
    _cleanup_free_ char *line = enable_line(cur);
    if (line) {
        int r = cg_write(cur, "cgroup.subtree_control", line, err);
        if (r < 0)
            return r;
    }
    return 0;
}
