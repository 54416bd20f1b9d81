/* server/stats/stats.c — container and pod resource usage from cgroups v1/v2, the file system and
 * network namespaces (see stats.h). */
#include "server/stats/stats.h"
#include "common/cgroup.h"
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define STATS_FILE_MAX    (1u << 20)
#define STATS_UNLIMITED   (UINT64_C(1) << 62) /* kubelet: anything above is "no limit" */
#define STATS_PROCS_DEPTH 32

/* ---- layout (common/cgroup_layout.c) --------------------------------------------------------- */
struct stats_cgroups {
    struct hull_cgroup_layout l;
};

const char *stats_mode_name(int mode)
{
    return hull_cgroup_mode_name(mode);
}

int stats_mode(const struct stats_cgroups *cg)
{
    return cg ? cg->l.mode : HULL_CGROUP_NONE;
}

void stats_close(struct stats_cgroups *cg)
{
    if (cg == NULL)
        return;
    hull_cgroup_layout_clear(&cg->l);
    free(cg);
}

static const struct hull_cgroup_hier *find_v1(const struct stats_cgroups *cg,
                                              const char *controller)
{
    return cg->l.mode == HULL_CGROUP_V2 ? NULL : hull_cgroup_layout_find(&cg->l, controller);
}

static int open_with(const char *cgroup_root, const char *mountinfo, bool self,
                     struct stats_cgroups **out, hull_error_t *err)
{
    struct stats_cgroups *cg = xmalloc0(sizeof(*cg));
    int r = self ? hull_cgroup_layout_open(cgroup_root, &cg->l, err)
                 : hull_cgroup_layout_load(cgroup_root, mountinfo, &cg->l, err);
    if (r < 0) {
        free(cg);
        return r;
    }
    *out = cg;
    return 0;
}

int stats_open_mountinfo(const char *cgroup_root, const char *mountinfo, struct stats_cgroups **out,
                         hull_error_t *err)
{
    return open_with(cgroup_root, mountinfo, false, out, err);
}

int stats_open(const char *cgroup_root, struct stats_cgroups **out, hull_error_t *err)
{
    return open_with(cgroup_root, NULL, true, out, err);
}

static bool safe_cgroups_path(const char *p)
{
    return p != NULL && p[0] == '/' && hull_cgroup_path_safe(p);
}

static char *under_mount(const char *mountpoint, const char *mroot, const char *path)
{
    const char *sub = path;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") != 0 && strncmp(path, mroot, rl) == 0 &&
        (path[rl] == '/' || path[rl] == '\0'))
        sub = path + rl;
    if (*sub == '\0' || strcmp(sub, "/") == 0)
        return xstrdup(mountpoint);
    return hull_path_join(mountpoint, sub);
}

char *stats_cgroup_dir(const struct stats_cgroups *cg, const char *controller,
                       const char *cgroups_path)
{
    if (!safe_cgroups_path(cgroups_path))
        return NULL;
    const struct hull_cgroup_hier *h =
        cg->l.mode == HULL_CGROUP_V2 || strcmp(controller, "unified") == 0
            ? hull_cgroup_layout_find(&cg->l, NULL)
            : find_v1(cg, controller);
    if (h == NULL)
        return NULL;
    return under_mount(h->mountpoint, h->root, cgroups_path);
}

/* ---- small file readers ---------------------------------------------------------------------- */
static char *read_in(const char *dir, const char *name)
{
    if (dir == NULL)
        return NULL;
    _cleanup_free_ char *p = hull_path_join(dir, name);
    char *text = NULL;
    if (hull_read_file(p, STATS_FILE_MAX, &text, NULL, NULL) < 0)
        return NULL;
    return text;
}

/* A single number, or "max" (*unlimited).  False when absent or malformed. */
static bool parse_u64(const char *s, uint64_t *v, bool *unlimited)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (unlimited)
        *unlimited = false;
    if (strncmp(s, "max", 3) == 0 && (s[3] == '\0' || s[3] == '\n' || s[3] == ' ')) {
        if (unlimited == NULL)
            return false;
        *unlimited = true;
        *v = UINT64_MAX;
        return true;
    }
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
        return false;
    *v = x;
    return true;
}

static bool read_u64(const char *dir, const char *name, uint64_t *v, bool *unlimited)
{
    _cleanup_free_ char *t = read_in(dir, name);
    return t && parse_u64(t, v, unlimited);
}

/* "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control):
 * common/cgroup_stats.c */
static bool kv_get(const char *text, const char *key, uint64_t *v)
{
    return text && hull_cgroup_kv_get(text, key, v);
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..." (total in microseconds) */
static bool psi_line(const char *line, struct stats_psi_data *d)
{
    memset(d, 0, sizeof(*d));
    uint64_t us = 0;
    int n = sscanf(line, "%*s avg10=%lf avg60=%lf avg300=%lf total=%" SCNu64, &d->avg10, &d->avg60,
                   &d->avg300, &us);
    d->total_ns = us * 1000;
    return n == 4;
}

static void read_psi(const char *dir, const char *file, struct stats_psi *psi)
{
    memset(psi, 0, sizeof(*psi));
    _cleanup_free_ char *t = read_in(dir, file);
    if (t == NULL)
        return;
    for (char *l = t; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(l, "some ", 5) == 0)
            psi->valid = psi_line(l, &psi->some);
        else if (strncmp(l, "full ", 5) == 0)
            psi->has_full = psi_line(l, &psi->full);
        l = nl ? nl + 1 : NULL;
    }
    if (!psi->valid)
        psi->has_full = false;
}

static bool dir_exists(const char *dir)
{
    struct stat st;
    return dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- memory -----------------------------------------------------------------------------------
 */
static void memory_finish(struct stats_memory *m, uint64_t limit, bool limit_known)
{
    m->working_set_bytes = sub_floor(m->usage_bytes, m->inactive_file_bytes);
    if (limit_known && limit < STATS_UNLIMITED) {
        m->has_limit = true;
        m->limit_bytes = limit;
        m->available_bytes = sub_floor(limit, m->working_set_bytes);
    }
    if (m->has_swap_limit)
        m->swap_available_bytes = sub_floor(m->swap_limit_bytes, m->swap_usage_bytes);
}

static void memory_v1(const char *dir, struct stats_memory *m)
{
    if (!read_u64(dir, "memory.usage_in_bytes", &m->usage_bytes, NULL))
        return;
    m->valid = true;
    _cleanup_free_ char *st = read_in(dir, "memory.stat");
    /* hierarchical totals; the root cgroup of old kernels has only the local ones */
    if (!kv_get(st, "total_inactive_file", &m->inactive_file_bytes))
        kv_get(st, "inactive_file", &m->inactive_file_bytes);
    if (!kv_get(st, "total_rss", &m->rss_bytes))
        kv_get(st, "rss", &m->rss_bytes);
    if (!kv_get(st, "total_cache", &m->cache_bytes))
        kv_get(st, "cache", &m->cache_bytes);
    if (!kv_get(st, "total_pgfault", &m->page_faults))
        kv_get(st, "pgfault", &m->page_faults);
    if (!kv_get(st, "total_pgmajfault", &m->major_page_faults))
        kv_get(st, "pgmajfault", &m->major_page_faults);
    if (!kv_get(st, "total_mapped_file", &m->mapped_file_bytes))
        kv_get(st, "mapped_file", &m->mapped_file_bytes);
    m->has_failcnt = read_u64(dir, "memory.failcnt", &m->failcnt, NULL);
    m->has_kernel = read_u64(dir, "memory.kmem.usage_in_bytes", &m->kernel_bytes, NULL);
    m->has_max_usage = read_u64(dir, "memory.max_usage_in_bytes", &m->max_usage_bytes, NULL);
    long long kills = hull_cgroup_oom_kills(dir, false);
    m->has_oom_kills = kills >= 0;
    m->oom_kills = kills >= 0 ? (uint64_t)kills : 0;
    uint64_t limit = 0, memsw = 0, memsw_limit = 0;
    bool have_limit = read_u64(dir, "memory.limit_in_bytes", &limit, NULL);
    if (read_u64(dir, "memory.memsw.usage_in_bytes", &memsw, NULL)) {
        m->has_swap = true;
        m->swap_usage_bytes = sub_floor(memsw, m->usage_bytes);
        if (have_limit && limit < STATS_UNLIMITED &&
            read_u64(dir, "memory.memsw.limit_in_bytes", &memsw_limit, NULL) &&
            memsw_limit < STATS_UNLIMITED) {
            m->has_swap_limit = true;
            m->swap_limit_bytes = sub_floor(memsw_limit, limit);
        }
    }
    memory_finish(m, limit, have_limit);
}

static void memory_v2(const char *dir, struct stats_memory *m)
{
    if (!read_u64(dir, "memory.current", &m->usage_bytes, NULL))
        return;
    m->valid = true;
    _cleanup_free_ char *st = read_in(dir, "memory.stat");
    kv_get(st, "inactive_file", &m->inactive_file_bytes);
    kv_get(st, "anon", &m->rss_bytes);
    kv_get(st, "file", &m->cache_bytes);
    kv_get(st, "pgfault", &m->page_faults);
    kv_get(st, "pgmajfault", &m->major_page_faults);
    kv_get(st, "file_mapped", &m->mapped_file_bytes);
    m->has_kernel = kv_get(st, "kernel", &m->kernel_bytes);
    if (!m->has_kernel) { /* kernels before 5.18 have no "kernel" line */
        uint64_t part = 0;
        static const char *const parts[] = {"kernel_stack", "slab", "sock", "percpu"};
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
            if (kv_get(st, parts[i], &part)) {
                m->has_kernel = true;
                m->kernel_bytes += part;
            }
    }
    m->has_max_usage = read_u64(dir, "memory.peak", &m->max_usage_bytes, NULL);
    _cleanup_free_ char *ev = read_in(dir, "memory.events");
    m->has_failcnt = kv_get(ev, "max", &m->failcnt);
    long long kills = hull_cgroup_oom_kills(dir, true);
    m->has_oom_kills = kills >= 0;
    m->oom_kills = kills >= 0 ? (uint64_t)kills : 0;
    uint64_t limit = 0, swap_max = 0;
    bool unlimited = false, swap_unlimited = false;
    bool have_limit = read_u64(dir, "memory.max", &limit, &unlimited);
    if (read_u64(dir, "memory.swap.current", &m->swap_usage_bytes, NULL)) {
        m->has_swap = true;
        if (read_u64(dir, "memory.swap.max", &swap_max, &swap_unlimited) && !swap_unlimited &&
            swap_max < STATS_UNLIMITED) {
            m->has_swap_limit = true;
            m->swap_limit_bytes = swap_max;
        }
    }
    memory_finish(m, limit, have_limit && !unlimited);
}

/* ---- cpu --------------------------------------------------------------------------------------
 */
static void cpu_v1(const char *acct, const char *cpu, struct stats_cpu *c)
{
    if (read_u64(acct, "cpuacct.usage", &c->usage_ns, NULL))
        c->valid = true;
    if (c->valid && read_u64(acct, "cpuacct.usage_user", &c->user_ns, NULL) &&
        read_u64(acct, "cpuacct.usage_sys", &c->system_ns, NULL)) {
        c->has_user_system = true;
    } else if (c->valid) {
        _cleanup_free_ char *st = read_in(acct, "cpuacct.stat"); /* USER_HZ ticks */
        uint64_t u = 0, s = 0;
        long hz = sysconf(_SC_CLK_TCK);
        if (hz > 0 && kv_get(st, "user", &u) && kv_get(st, "system", &s)) {
            c->has_user_system = true;
            c->user_ns = u * (UINT64_C(1000000000) / (uint64_t)hz);
            c->system_ns = s * (UINT64_C(1000000000) / (uint64_t)hz);
        }
    }
    _cleanup_free_ char *cs = read_in(cpu, "cpu.stat");
    if (kv_get(cs, "nr_periods", &c->nr_periods) && kv_get(cs, "nr_throttled", &c->nr_throttled) &&
        kv_get(cs, "throttled_time", &c->throttled_ns))
        c->has_throttling = true;
    c->has_spec = read_u64(cpu, "cpu.cfs_period_us", &c->period_us, NULL) &&
                  read_u64(cpu, "cpu.shares", &c->shares, NULL);
}

static void cpu_v2(const char *dir, struct stats_cpu *c)
{
    _cleanup_free_ char *cs = read_in(dir, "cpu.stat");
    uint64_t us = 0;
    if (!kv_get(cs, "usage_usec", &us))
        return;
    c->valid = true;
    c->usage_ns = us * 1000;
    uint64_t u = 0, s = 0, t = 0;
    if (kv_get(cs, "user_usec", &u) && kv_get(cs, "system_usec", &s)) {
        c->has_user_system = true;
        c->user_ns = u * 1000;
        c->system_ns = s * 1000;
    }
    if (kv_get(cs, "nr_periods", &c->nr_periods) && kv_get(cs, "nr_throttled", &c->nr_throttled) &&
        kv_get(cs, "throttled_usec", &t)) {
        c->has_throttling = true;
        c->throttled_ns = t * 1000;
    }
    /* cpu.max "QUOTA PERIOD" (QUOTA may be "max"); cpu.weight 1..10000 back to shares 2..262144
     * (the inverse of the conversion runc and the kubelet use) */
    _cleanup_free_ char *max = read_in(dir, "cpu.max");
    uint64_t weight = 0;
    char quota[32];
    if (max && sscanf(max, "%31s %" SCNu64, quota, &c->period_us) == 2 &&
        read_u64(dir, "cpu.weight", &weight, NULL) && weight >= 1) {
        c->has_spec = true;
        c->shares = 2 + ((weight - 1) * 262142) / 9999;
    }
}

/* ---- pids -------------------------------------------------------------------------------------
 */
static uint64_t count_procs(const char *dir, int depth)
{
    uint64_t n = 0;
    _cleanup_free_ char *t = read_in(dir, "cgroup.procs");
    for (const char *l = t; l && *l; l++)
        if (*l == '\n')
            n++;
    if (depth >= STATS_PROCS_DEPTH)
        return n;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *sub = hull_path_join(dir, e->d_name);
        n += count_procs(sub, depth + 1);
    }
    return n;
}

/* Adds the open fds and sockets of every process listed in dir's cgroup.procs and below. */
static void procs_read(const char *dir, int depth, struct stats_procs *p)
{
    _cleanup_free_ char *t = read_in(dir, "cgroup.procs");
    if (t == NULL)
        return;
    p->valid = true;
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *end = NULL;
        long pid = strtol(l, &end, 10);
        if (pid <= 0 || (end && *end))
            continue;
        p->processes++;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
        _cleanup_closedir_ DIR *fds = opendir(path);
        if (fds == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(fds)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            p->fds++;
            char target[64];
            ssize_t n = readlinkat(dirfd(fds), e->d_name, target, sizeof(target) - 1);
            if (n > 0) {
                target[n] = '\0';
                if (strncmp(target, "socket:", 7) == 0)
                    p->sockets++;
            }
        }
    }
    if (depth >= STATS_PROCS_DEPTH)
        return;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *sub = hull_path_join(dir, e->d_name);
        procs_read(sub, depth + 1, p);
    }
}

static void pids_read(const char *dir, const char *any_dir, struct stats_pids *p)
{
    if (read_u64(dir, "pids.current", &p->current, NULL)) {
        p->valid = true;
        uint64_t max = 0;
        bool unlimited = false;
        if (read_u64(dir, "pids.max", &max, &unlimited) && !unlimited) {
            p->has_limit = true;
            p->limit = max;
        }
        return;
    }
    if (dir_exists(any_dir)) {
        p->valid = true;
        p->current = count_procs(any_dir, 0);
    }
}

/* ---- io ---------------------------------------------------------------------------------------
 */
/* v1 blkio: "MAJ:MIN Read N" … lines; sums Read and Write over devices. */
static bool blkio_sum(const char *dir, const char *file, uint64_t *rd, uint64_t *wr)
{
    _cleanup_free_ char *rec = xasprintf("%s_recursive", file);
    _cleanup_free_ char *t = read_in(dir, rec);
    if (t == NULL)
        t = read_in(dir, file);
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

static void io_v1(const char *dir, struct stats_io *io)
{
    if (!blkio_sum(dir, "blkio.throttle.io_service_bytes", &io->read_bytes, &io->write_bytes))
        return;
    io->valid = true;
    if (!blkio_sum(dir, "blkio.throttle.io_serviced", &io->read_ops, &io->write_ops))
        io->read_ops = io->write_ops = 0;
}

/* v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
static void io_v2(const char *dir, struct stats_io *io)
{
    _cleanup_free_ char *t = read_in(dir, "io.stat");
    if (t == NULL)
        return;
    io->valid = true;
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *s2 = NULL;
        strtok_r(l, " ", &s2); /* device */
        for (char *kv = strtok_r(NULL, " ", &s2); kv; kv = strtok_r(NULL, " ", &s2)) {
            char *eq = strchr(kv, '=');
            uint64_t v = 0;
            if (eq == NULL || !parse_u64(eq + 1, &v, NULL))
                continue;
            *eq = '\0';
            if (strcmp(kv, "rbytes") == 0)
                io->read_bytes += v;
            else if (strcmp(kv, "wbytes") == 0)
                io->write_bytes += v;
            else if (strcmp(kv, "rios") == 0)
                io->read_ops += v;
            else if (strcmp(kv, "wios") == 0)
                io->write_ops += v;
        }
    }
}

/* ---- per cgroup ------------------------------------------------------------------------------ */
int stats_cgroup_read(const struct stats_cgroups *cg, const char *cgroups_path,
                      struct stats_cgroup *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    /* systemd driver: "slice:prefix:name" or a pod's slice -> its cgroup */
    _cleanup_free_ char *sd_path = NULL;
    if (hull_systemd_path_form(cgroups_path)) {
        int r = hull_systemd_cgroup_of(cgroups_path, &sd_path, err);
        if (r < 0)
            return r;
        cgroups_path = sd_path;
    }
    if (!safe_cgroups_path(cgroups_path))
        return hull_error_setx(err, EINVAL, "cgroup `%s`: an absolute path without `..` is needed",
                               cgroups_path ? cgroups_path : "(null)");
    out->timestamp_ns = hull_now_ns();
    out->monotonic_ns = hull_monotonic_ns();
    bool found = false;
    if (cg->l.mode == HULL_CGROUP_V2) {
        _cleanup_free_ char *dir = stats_cgroup_dir(cg, "unified", cgroups_path);
        if (!dir_exists(dir))
            return hull_error_setx(err, ENOENT, "cgroup `%s` not found", cgroups_path);
        cpu_v2(dir, &out->cpu);
        memory_v2(dir, &out->memory);
        pids_read(dir, dir, &out->pids);
        io_v2(dir, &out->io);
        read_psi(dir, "cpu.pressure", &out->cpu.psi);
        read_psi(dir, "memory.pressure", &out->memory.psi);
        read_psi(dir, "io.pressure", &out->io.psi);
        procs_read(dir, 0, &out->procs);
        return 0;
    }
    _cleanup_free_ char *acct = stats_cgroup_dir(cg, "cpuacct", cgroups_path);
    _cleanup_free_ char *cpu = stats_cgroup_dir(cg, "cpu", cgroups_path);
    _cleanup_free_ char *mem = stats_cgroup_dir(cg, "memory", cgroups_path);
    _cleanup_free_ char *pids = stats_cgroup_dir(cg, "pids", cgroups_path);
    _cleanup_free_ char *blkio = stats_cgroup_dir(cg, "blkio", cgroups_path);
    _cleanup_free_ char *uni = stats_cgroup_dir(cg, "unified", cgroups_path);
    if (!dir_exists(uni)) {
        free(uni);
        uni = NULL;
    }
    const char *dirs[] = {acct, cpu, mem, pids, blkio, uni};
    const char *any = NULL;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (dir_exists(dirs[i])) {
            found = true;
            any = any ? any : dirs[i];
        }
    }
    if (!found)
        return hull_error_setx(err, ENOENT, "cgroup `%s` not found", cgroups_path);
    /* Hybrid: a controller on no v1 hierarchy may be on the cgroup2 one (a host that moved
     * some controllers there); cgroup2's cpu.stat usage needs no controller at all. */
    cpu_v1(dir_exists(acct) ? acct : NULL, dir_exists(cpu) ? cpu : NULL, &out->cpu);
    if (!out->cpu.valid && find_v1(cg, "cpuacct") == NULL && uni)
        cpu_v2(uni, &out->cpu);
    if (dir_exists(mem))
        memory_v1(mem, &out->memory);
    else if (find_v1(cg, "memory") == NULL && uni)
        memory_v2(uni, &out->memory);
    if (dir_exists(pids) || find_v1(cg, "pids") != NULL || uni == NULL)
        pids_read(dir_exists(pids) ? pids : NULL, any, &out->pids);
    else
        pids_read(uni, any, &out->pids);
    if (dir_exists(blkio))
        io_v1(blkio, &out->io);
    else if (find_v1(cg, "blkio") == NULL && uni)
        io_v2(uni, &out->io);
    if (uni) {
        read_psi(uni, "cpu.pressure", &out->cpu.psi);
        read_psi(uni, "memory.pressure", &out->memory.psi);
        read_psi(uni, "io.pressure", &out->io.psi);
    }
    procs_read(any, 0, &out->procs);
    return 0;
}

/* ---- cpu rate ---------------------------------------------------------------------------------
 */
struct stats_cpu_sample stats_cpu_sample_of(const struct stats_cgroup *s)
{
    struct stats_cpu_sample c = {0};
    if (s && s->cpu.valid) {
        c.valid = true;
        c.monotonic_ns = s->monotonic_ns;
        c.usage_ns = s->cpu.usage_ns;
    }
    return c;
}

bool stats_cpu_nano_cores(const struct stats_cpu_sample *prev, const struct stats_cpu_sample *cur,
                          uint64_t *nano_cores)
{
    if (prev == NULL || cur == NULL || !prev->valid || !cur->valid)
        return false;
    if (cur->monotonic_ns <= prev->monotonic_ns || cur->usage_ns < prev->usage_ns)
        return false;
    unsigned __int128 du = cur->usage_ns - prev->usage_ns;
    unsigned __int128 dt = (uint64_t)(cur->monotonic_ns - prev->monotonic_ns);
    unsigned __int128 r = du * 1000000000u / dt;
    *nano_cores = r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
    return true;
}

/* ---- directory usage --------------------------------------------------------------------------
 */
struct inode_set {
    struct {
        dev_t dev;
        ino_t ino;
    } * slots;
    size_t cap, n;
};

static size_t inode_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)dev;
    return (size_t)(h ^ (h >> 29));
}

/* True when (dev, ino) was not in the set yet (and is now). ino 0 marks an empty slot. */
static bool inode_set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
    if (ino == 0)
        return true;
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        __typeof__(s->slots) ns = xmalloc0(ncap * sizeof(*ns));
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i].ino == 0)
                continue;
            size_t j = inode_hash(s->slots[i].dev, s->slots[i].ino) & (ncap - 1);
            while (ns[j].ino != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = inode_hash(dev, ino) & (s->cap - 1);
    while (s->slots[j].ino != 0) {
        if (s->slots[j].ino == ino && s->slots[j].dev == dev)
            return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j].dev = dev;
    s->slots[j].ino = ino;
    s->n++;
    return true;
}

struct walk {
    struct stats_fs_usage *u;
    struct inode_set links;
    dev_t dev;
};

static bool is_mount_root(int dirfd, const char *name)
{
    struct statx stx;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, 0, &stx) < 0)
        return false;
    return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
           (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static void count_inode(struct walk *w, const struct stat *st)
{
    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 &&
        !inode_set_add(&w->links, st->st_dev, st->st_ino))
        return;
    w->u->inodes_used++;
    w->u->used_bytes += (uint64_t)st->st_blocks * 512;
}

/* fd (owned, closed here) is an open directory already counted; walks its entries.  One fd per
 * level is open at a time, so the walk needs at most STATS_FS_MAX_DEPTH + 1 descriptors. */
static void walk_dir(struct walk *w, int fd, int depth)
{
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        w->u->truncated = true;
        return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished */
        count_inode(w, &st);
        if (!S_ISDIR(st.st_mode))
            continue;
        /* another file system, or a bind mount of this one: counted, not entered */
        if (st.st_dev != w->dev || is_mount_root(dfd, e->d_name))
            continue;
        if (depth + 1 > STATS_FS_MAX_DEPTH) {
            w->u->truncated = true;
            continue;
        }
        int sub =
            openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (sub < 0) {
            if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                w->u->truncated = true; /* EMFILE, EACCES, …: not counted */
            continue;
        }
        struct stat st2;
        if (fstat(sub, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
            close(sub); /* replaced while we looked */
            continue;
        }
        walk_dir(w, sub, depth + 1);
    }
}

int stats_dir_usage(const char *dir, struct stats_fs_usage *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->timestamp_ns = hull_now_ns();
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", dir);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", dir);
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0) {
        out->has_fs = true;
        out->fs_limit_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        out->fs_inodes_total = vfs.f_files;
        out->fs_inodes_free = vfs.f_ffree;
    }
    struct walk w = {.u = out, .dev = st.st_dev};
    count_inode(&w, &st);
    walk_dir(&w, hull_steal_fd(fd), 0);
    free(w.links.slots);
    return 0;
}

int stats_fs_mountpoint(const char *path, char **out, hull_error_t *err)
{
    _cleanup_free_ char *real = realpath(path, NULL);
    if (real == NULL)
        return hull_error_set(err, errno, "resolve `%s`", path);
    *out = hull_mount_point_of(real, err);
    return *out ? 0 : -hull_error_status(err);
}

/* ---- network ----------------------------------------------------------------------------------
 */
void stats_net_clear(struct stats_net *n)
{
    free(n->ifaces);
    n->ifaces = NULL;
    n->n = 0;
}

int stats_net_parse_dev(const char *text, struct stats_net *out, hull_error_t *err)
{
    /* Inter-|   Receive                                                |  Transmit
     *  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs ...
     *     lo:  123  4  0  0  0  0  0  0  123  4  0  0  0  0  0  0 */
    if (out->timestamp_ns == 0)
        out->timestamp_ns = hull_now_ns();
    int lineno = 0;
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        lineno++;
        _cleanup_free_ char *line = xstrndup(l, len);
        l = nl ? nl + 1 : NULL;
        char *colon = strchr(line, ':');
        if (colon == NULL || strchr(line, '|') != NULL)
            continue; /* headers */
        *colon = '\0';
        char *name = line;
        while (*name == ' ' || *name == '\t')
            name++;
        uint64_t v[16];
        int n = sscanf(colon + 1,
                       "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                       &v[11], &v[12], &v[13], &v[14], &v[15]);
        if (n != 16 || *name == '\0' || strlen(name) >= sizeof(out->ifaces[0].name))
            return hull_error_setx(err, EINVAL, "/proc/net/dev line %d: cannot parse", lineno);
        out->ifaces = xrealloc(out->ifaces, (out->n + 1) * sizeof(*out->ifaces));
        struct stats_net_iface *i = &out->ifaces[out->n++];
        memset(i, 0, sizeof(*i));
        snprintf(i->name, sizeof(i->name), "%s", name);
        i->rx_bytes = v[0];
        i->rx_packets = v[1];
        i->rx_errors = v[2];
        i->rx_dropped = v[3];
        i->tx_bytes = v[8];
        i->tx_packets = v[9];
        i->tx_errors = v[10];
        i->tx_dropped = v[11];
    }
    return 0;
}

struct netns_job {
    int fd;
    char *text;
    hull_error_t err;
};

/* Runs in its own thread, which ends right after: nothing else ever runs in the pod's netns. */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;
    if (setns(j->fd, CLONE_NEWNET) < 0) {
        hull_error_set(&j->err, errno, "join network namespace");
        return NULL;
    }
    /* /proc/self/net follows the thread group leader, /proc/thread-self this thread (and
     * /sys/class/net the netns sysfs was mounted in: no use here) */
    if (hull_read_file("/proc/thread-self/net/dev", STATS_FILE_MAX, &j->text, NULL, NULL) == 0)
        return NULL;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/net/dev", (int)gettid());
    hull_read_file(path, STATS_FILE_MAX, &j->text, NULL, &j->err); /* before Linux 3.17 */
    return NULL;
}

int stats_net_read_netns(const char *netns_path, struct stats_net *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_close_ int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open network namespace `%s`", netns_path);
    struct netns_job j = {.fd = fd};
    /* no signal handler may run in the pod's netns */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int r = pthread_create(&t, NULL, netns_thread, &j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return hull_error_set(err, r, "network stats of `%s`: start thread", netns_path);
    pthread_join(t, NULL);
    _cleanup_free_ char *text = j.text;
    if (j.err) {
        int st = hull_error_status(&j.err);
        r = hull_error_setx(err, st, "network stats of `%s`: %s", netns_path,
                            hull_error_msg(&j.err));
        hull_error_free(&j.err);
        return r;
    }
    out->timestamp_ns = hull_now_ns();
    r = stats_net_parse_dev(text, out, err);
    if (r < 0) {
        stats_net_clear(out);
        return hull_error_wrap(err, "network stats of `%s`", netns_path);
    }
    return 0;
}

int stats_net_read_pid(pid_t pid, struct stats_net *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(path, STATS_FILE_MAX, &text, NULL, err);
    if (r < 0)
        return r;
    out->timestamp_ns = hull_now_ns();
    r = stats_net_parse_dev(text, out, err);
    if (r < 0)
        stats_net_clear(out);
    return r;
}

const struct stats_net_iface *stats_net_default(const struct stats_net *n, const char *name)
{
    if (name)
        for (size_t i = 0; i < n->n; i++)
            if (strcmp(n->ifaces[i].name, name) == 0)
                return &n->ifaces[i];
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->ifaces[i].name, "lo") != 0)
            return &n->ifaces[i];
    return NULL;
}

/* ---- metrics ----------------------------------------------------------------------------------
 */
static const char *const base_keys[] = {"id", "name", "image", NULL};
static const char *const iface_keys[] = {"id", "name", "image", "interface", NULL};
static const char *const failure_keys[] = {"id", "name", "image", "failure_type", "scope", NULL};
static const char *const blkio_keys[] = {"id",    "name",  "image",     "device",
                                         "major", "minor", "operation", NULL};

enum metric_id {
    M_CPU_USAGE,
    M_CPU_USER,
    M_CPU_SYSTEM,
    M_CFS_PERIODS,
    M_CFS_THROTTLED_PERIODS,
    M_CFS_THROTTLED_SECONDS,
    M_MEM_USAGE,
    M_MEM_WORKING_SET,
    M_MEM_RSS,
    M_MEM_CACHE,
    M_MEM_SWAP,
    M_MEM_LIMIT,
    M_OOM_EVENTS,
    M_FS_READS_BYTES,
    M_FS_WRITES_BYTES,
    M_FS_READS,
    M_FS_WRITES,
    M_FS_USAGE,
    M_PSI_CPU_WAITING,
    M_PSI_CPU_STALLED,
    M_PSI_MEM_WAITING,
    M_PSI_MEM_STALLED,
    M_PSI_IO_WAITING,
    M_PSI_IO_STALLED,
    M_MEM_FAILCNT,
    M_MEM_FAILURES,
    M_MEM_KERNEL,
    M_MEM_MAPPED_FILE,
    M_MEM_MAX_USAGE,
    M_SWAP_LIMIT,
    M_CPU_PERIOD,
    M_CPU_SHARES,
    M_PROCESSES,
    M_FILE_DESCRIPTORS,
    M_SOCKETS,
    M_THREADS,
    M_THREADS_MAX,
    M_FS_LIMIT,
    M_FS_INODES_TOTAL,
    M_FS_INODES_FREE,
    M_START_TIME,
    M_LAST_SEEN,
    M_BLKIO_DEVICE_USAGE,
    M_NET_RX_BYTES,
    M_NET_RX_PACKETS,
    M_NET_RX_DROPPED,
    M_NET_RX_ERRORS,
    M_NET_TX_BYTES,
    M_NET_TX_PACKETS,
    M_NET_TX_DROPPED,
    M_NET_TX_ERRORS,
    M_COUNT
};

#define C                           STATS_METRIC_COUNTER
#define G                           STATS_METRIC_GAUGE
#define BASE(id, n, h, t)           [id] = {n, h, t, base_keys, 3, false}
#define IFACE(id, n, h)             [id] = {n, h, C, iface_keys, 4, true}
#define KEYS(id, n, h, t, keys, nk) [id] = {n, h, t, keys, nk, false}
static const struct stats_metric_desc metric_table[M_COUNT] = {
    BASE(M_CPU_USAGE, "container_cpu_usage_seconds_total",
         "Cumulative cpu time consumed in seconds.", C),
    BASE(M_CPU_USER, "container_cpu_user_seconds_total",
         "Cumulative user cpu time consumed in seconds.", C),
    BASE(M_CPU_SYSTEM, "container_cpu_system_seconds_total",
         "Cumulative system cpu time consumed in seconds.", C),
    BASE(M_CFS_PERIODS, "container_cpu_cfs_periods_total",
         "Number of elapsed enforcement period intervals.", C),
    BASE(M_CFS_THROTTLED_PERIODS, "container_cpu_cfs_throttled_periods_total",
         "Number of throttled period intervals.", C),
    BASE(M_CFS_THROTTLED_SECONDS, "container_cpu_cfs_throttled_seconds_total",
         "Total time duration the container has been throttled.", C),
    BASE(M_MEM_USAGE, "container_memory_usage_bytes",
         "Current memory usage in bytes, including all memory regardless of when it was accessed",
         G),
    BASE(M_MEM_WORKING_SET, "container_memory_working_set_bytes", "Current working set in bytes.",
         G),
    BASE(M_MEM_RSS, "container_memory_rss", "Size of RSS in bytes.", G),
    BASE(M_MEM_CACHE, "container_memory_cache", "Number of bytes of page cache memory.", G),
    BASE(M_MEM_SWAP, "container_memory_swap", "Container swap usage in bytes.", G),
    BASE(M_MEM_LIMIT, "container_spec_memory_limit_bytes", "Memory limit for the container.", G),
    BASE(M_OOM_EVENTS, "container_oom_events_total",
         "Count of out of memory events observed for the container", C),
    BASE(M_FS_READS_BYTES, "container_fs_reads_bytes_total", "Cumulative count of bytes read", C),
    BASE(M_FS_WRITES_BYTES, "container_fs_writes_bytes_total", "Cumulative count of bytes written",
         C),
    BASE(M_FS_READS, "container_fs_reads_total", "Cumulative count of reads completed", C),
    BASE(M_FS_WRITES, "container_fs_writes_total", "Cumulative count of writes completed", C),
    BASE(M_FS_USAGE, "container_fs_usage_bytes",
         "Number of bytes that are consumed by the container on this filesystem.", G),
    BASE(M_PSI_CPU_WAITING, "container_pressure_cpu_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to CPU congestion.", C),
    BASE(M_PSI_CPU_STALLED, "container_pressure_cpu_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to CPU congestion.",
         C),
    BASE(M_PSI_MEM_WAITING, "container_pressure_memory_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to memory congestion.", C),
    BASE(M_PSI_MEM_STALLED, "container_pressure_memory_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to memory "
         "congestion.",
         C),
    BASE(M_PSI_IO_WAITING, "container_pressure_io_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to IO congestion.", C),
    BASE(M_PSI_IO_STALLED, "container_pressure_io_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to IO congestion.",
         C),
    BASE(M_MEM_FAILCNT, "container_memory_failcnt", "Number of memory usage hits limits", C),
    KEYS(M_MEM_FAILURES, "container_memory_failures_total",
         "Cumulative count of memory allocation failures.", C, failure_keys, 5),
    BASE(M_MEM_KERNEL, "container_memory_kernel_usage", "Size of kernel memory allocated in bytes.",
         G),
    BASE(M_MEM_MAPPED_FILE, "container_memory_mapped_file", "Size of memory mapped files in bytes.",
         G),
    BASE(M_MEM_MAX_USAGE, "container_memory_max_usage_bytes",
         "Maximum memory usage recorded in bytes", G),
    BASE(M_SWAP_LIMIT, "container_spec_memory_swap_limit_bytes",
         "Memory swap limit for the container.", G),
    BASE(M_CPU_PERIOD, "container_spec_cpu_period", "CPU period of the container.", G),
    BASE(M_CPU_SHARES, "container_spec_cpu_shares", "CPU share of the container.", G),
    BASE(M_PROCESSES, "container_processes", "Number of processes running inside the container.",
         G),
    BASE(M_FILE_DESCRIPTORS, "container_file_descriptors",
         "Number of open file descriptors for the container.", G),
    BASE(M_SOCKETS, "container_sockets", "Number of open sockets for the container.", G),
    BASE(M_THREADS, "container_threads", "Number of threads running inside the container", G),
    BASE(M_THREADS_MAX, "container_threads_max",
         "Maximum number of threads allowed inside the container, infinity if value is zero", G),
    BASE(M_FS_LIMIT, "container_fs_limit_bytes",
         "Number of bytes that can be consumed by the container on this filesystem.", G),
    BASE(M_FS_INODES_TOTAL, "container_fs_inodes_total",
         "Number of available Inodes on the container's filesystem", G),
    BASE(M_FS_INODES_FREE, "container_fs_inodes_free",
         "Number of available Inodes on the container's filesystem that are free", G),
    BASE(M_START_TIME, "container_start_time_seconds",
         "Start time of the container since unix epoch in seconds.", G),
    BASE(M_LAST_SEEN, "container_last_seen", "Last time a container was seen by the exporter", G),
    KEYS(M_BLKIO_DEVICE_USAGE, "container_blkio_device_usage_total", "Blkio Device bytes usage", C,
         blkio_keys, 7),
    IFACE(M_NET_RX_BYTES, "container_network_receive_bytes_total",
          "Cumulative count of bytes received"),
    IFACE(M_NET_RX_PACKETS, "container_network_receive_packets_total",
          "Cumulative count of packets received"),
    IFACE(M_NET_RX_DROPPED, "container_network_receive_packets_dropped_total",
          "Cumulative count of packets dropped while receiving"),
    IFACE(M_NET_RX_ERRORS, "container_network_receive_errors_total",
          "Cumulative count of errors encountered while receiving"),
    IFACE(M_NET_TX_BYTES, "container_network_transmit_bytes_total",
          "Cumulative count of bytes transmitted"),
    IFACE(M_NET_TX_PACKETS, "container_network_transmit_packets_total",
          "Cumulative count of packets transmitted"),
    IFACE(M_NET_TX_DROPPED, "container_network_transmit_packets_dropped_total",
          "Cumulative count of packets dropped while transmitting"),
    IFACE(M_NET_TX_ERRORS, "container_network_transmit_errors_total",
          "Cumulative count of errors encountered while transmitting"),
};
#undef C
#undef G
#undef BASE
#undef IFACE
#undef KEYS

_Static_assert(M_PSI_IO_STALLED == M_PSI_CPU_WAITING + 5, "PSI metrics: cpu, memory, io pairs");
_Static_assert(M_NET_TX_ERRORS == M_NET_RX_BYTES + 7 && M_NET_TX_ERRORS == M_COUNT - 1,
               "network metrics last, in stats_metrics_emit's order");

const struct stats_metric_desc *stats_metric_descriptors(size_t *n)
{
    *n = M_COUNT;
    return metric_table;
}

#define SECONDS(ns) ((ns) / UINT64_C(1000000000))

void stats_metrics_emit(const struct stats_cgroup *s, const struct stats_fs_usage *fs,
                        const struct stats_net *net, int64_t start_ns, stats_metric_cb cb,
                        void *opaque)
{
    size_t n;
    const struct stats_metric_desc *t = stats_metric_descriptors(&n);
    static const char *const none[] = {NULL};
#define EMIT(id, v) cb(opaque, &t[id], none, (v))
    if (s && s->cpu.valid) {
        EMIT(M_CPU_USAGE, SECONDS(s->cpu.usage_ns));
        if (s->cpu.has_user_system) {
            EMIT(M_CPU_USER, SECONDS(s->cpu.user_ns));
            EMIT(M_CPU_SYSTEM, SECONDS(s->cpu.system_ns));
        }
        if (s->cpu.has_throttling) {
            EMIT(M_CFS_PERIODS, s->cpu.nr_periods);
            EMIT(M_CFS_THROTTLED_PERIODS, s->cpu.nr_throttled);
            EMIT(M_CFS_THROTTLED_SECONDS, SECONDS(s->cpu.throttled_ns));
        }
    }
    if (s && s->cpu.has_spec) {
        EMIT(M_CPU_PERIOD, s->cpu.period_us);
        EMIT(M_CPU_SHARES, s->cpu.shares);
    }
    if (s && s->memory.valid) {
        const struct stats_memory *m = &s->memory;
        EMIT(M_MEM_USAGE, m->usage_bytes);
        EMIT(M_MEM_WORKING_SET, m->working_set_bytes);
        EMIT(M_MEM_RSS, m->rss_bytes);
        EMIT(M_MEM_CACHE, m->cache_bytes);
        if (m->has_swap)
            EMIT(M_MEM_SWAP, m->swap_usage_bytes);
        if (m->has_limit)
            EMIT(M_MEM_LIMIT, m->limit_bytes);
        if (m->has_oom_kills)
            EMIT(M_OOM_EVENTS, m->oom_kills);
        if (m->has_failcnt)
            EMIT(M_MEM_FAILCNT, m->failcnt);
        if (m->has_kernel)
            EMIT(M_MEM_KERNEL, m->kernel_bytes);
        EMIT(M_MEM_MAPPED_FILE, m->mapped_file_bytes);
        if (m->has_max_usage)
            EMIT(M_MEM_MAX_USAGE, m->max_usage_bytes);
        /* like cadvisor: 0 when there is no swap limit (or no swap accounting) */
        EMIT(M_SWAP_LIMIT, m->has_swap_limit ? m->swap_limit_bytes : 0);
        /* cadvisor's failure series: page faults (pgfault counts the minor ones too) for the
         * container and its hierarchy; cgroup's counters are hierarchical, so both are equal */
        const char *const types[] = {"pgfault", "pgmajfault"};
        const uint64_t faults[] = {m->page_faults, m->major_page_faults};
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                const char *const extra[] = {types[i], k ? "hierarchy" : "container", NULL};
                cb(opaque, &t[M_MEM_FAILURES], extra, faults[i]);
            }
    }
    if (s && s->pids.valid) {
        EMIT(M_THREADS, s->pids.current);
        EMIT(M_THREADS_MAX, s->pids.has_limit ? s->pids.limit : 0);
    }
    if (s && s->procs.valid) {
        EMIT(M_PROCESSES, s->procs.processes);
        EMIT(M_FILE_DESCRIPTORS, s->procs.fds);
        EMIT(M_SOCKETS, s->procs.sockets);
    }
    if (fs && fs->has_fs) {
        EMIT(M_FS_LIMIT, fs->fs_limit_bytes);
        EMIT(M_FS_INODES_TOTAL, fs->fs_inodes_total);
        EMIT(M_FS_INODES_FREE, fs->fs_inodes_free);
    }
    if (start_ns > 0)
        EMIT(M_START_TIME, (uint64_t)start_ns / UINT64_C(1000000000));
    if (s || fs || net)
        EMIT(M_LAST_SEEN, (uint64_t)hull_now_ns() / UINT64_C(1000000000));
    if (s && s->io.valid) {
        EMIT(M_FS_READS_BYTES, s->io.read_bytes);
        EMIT(M_FS_WRITES_BYTES, s->io.write_bytes);
        EMIT(M_FS_READS, s->io.read_ops);
        EMIT(M_FS_WRITES, s->io.write_ops);
    }
    if (fs)
        EMIT(M_FS_USAGE, fs->used_bytes);
    const struct stats_psi *psi[3] = {s ? &s->cpu.psi : NULL, s ? &s->memory.psi : NULL,
                                      s ? &s->io.psi : NULL};
    for (int i = 0; i < 3; i++) {
        if (psi[i] == NULL || !psi[i]->valid)
            continue;
        EMIT(M_PSI_CPU_WAITING + 2 * i, SECONDS(psi[i]->some.total_ns));
        if (psi[i]->has_full)
            EMIT(M_PSI_CPU_STALLED + 2 * i, SECONDS(psi[i]->full.total_ns));
    }
#undef EMIT
    for (size_t i = 0; net && i < net->n; i++) {
        const struct stats_net_iface *f = &net->ifaces[i];
        if (strcmp(f->name, "lo") == 0)
            continue;
        const uint64_t v[] = {f->rx_bytes, f->rx_packets, f->rx_dropped, f->rx_errors,
                              f->tx_bytes, f->tx_packets, f->tx_dropped, f->tx_errors};
        const char *const extra[] = {f->name, NULL};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            cb(opaque, &t[M_NET_RX_BYTES + k], extra, v[k]);
    }
}
