/* A cgroup's usage (cgroup.h, hull_cgroup_stats_read): which hierarchy each controller is read
 * from, pressure (PSI), pids and the processes; the per-version readers are
 * cgroup_stats_v1.c and cgroup_stats_v2.c. */
#include "common/cgroup_internal.h"
#include "common/cgroup_systemd.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROCS_DEPTH 32 /* levels of child cgroups whose processes are counted */

/* ---- pressure -------------------------------------------------------------------------------- */
/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..." (total in microseconds) */
static bool psi_line(const char *line, struct hull_cgroup_psi_data *d)
{
    memset(d, 0, sizeof(*d));
    uint64_t us = 0;
    int n = sscanf(line, "%*s avg10=%lf avg60=%lf avg300=%lf total=%" SCNu64, &d->avg10, &d->avg60,
                   &d->avg300, &us);
    d->total_ns = us * 1000;
    return n == 4;
}

void hull_cgroup_stats_psi(const char *dir, const char *file, struct hull_cgroup_psi *psi)
{
    memset(psi, 0, sizeof(*psi));
    _cleanup_free_ char *t = cg_stats_text(dir, file);
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

/* ---- processes ------------------------------------------------------------------------------- */
static bool dir_exists(const char *dir)
{
    struct stat st;
    return dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The pids of dir's cgroup.procs (the caller's own included); false when it cannot be read. */
static bool procs_of(const char *dir, pid_t **pids, size_t *n)
{
    _cleanup_free_ char *f = hull_path_join(dir, "cgroup.procs");
    _cleanup_error_ hull_error_t e = NULL;
    return cg_read_pids(f, true, pids, n, &e) == 0;
}

/* fn(child, depth + 1, opaque) for every child cgroup of dir. */
static void each_child(const char *dir, int depth, void (*fn)(const char *, int, void *),
                       void *opaque)
{
    if (depth >= PROCS_DEPTH)
        return;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *sub = hull_path_join(dir, e->d_name);
        fn(sub, depth + 1, opaque);
    }
}

/* Adds the processes listed in dir's cgroup.procs and below to *(uint64_t *)opaque. */
static void count_procs(const char *dir, int depth, void *opaque)
{
    _cleanup_free_ pid_t *pids = NULL;
    size_t n = 0;
    if (procs_of(dir, &pids, &n))
        *(uint64_t *)opaque += n;
    each_child(dir, depth, count_procs, opaque);
}

/* Adds the open fds and sockets of every process listed in dir's cgroup.procs and below. */
static void procs_read(const char *dir, int depth, void *opaque)
{
    struct hull_cgroup_procs_stats *p = opaque;
    _cleanup_free_ pid_t *pids = NULL;
    size_t n = 0;
    if (!procs_of(dir, &pids, &n))
        return;
    p->valid = true;
    for (size_t i = 0; i < n; i++) {
        p->processes++;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids[i]);
        _cleanup_closedir_ DIR *fds = opendir(path);
        if (fds == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(fds)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            p->fds++;
            char target[64];
            ssize_t len = readlinkat(dirfd(fds), e->d_name, target, sizeof(target) - 1);
            if (len > 0) {
                target[len] = '\0';
                if (strncmp(target, "socket:", 7) == 0)
                    p->sockets++;
            }
        }
    }
    each_child(dir, depth, procs_read, p);
}

/* pids.current and pids.max of dir; without them (no pids controller there) the processes
 * listed below any_dir. */
static void pids_read(const char *dir, const char *any_dir, struct hull_cgroup_pids_stats *p)
{
    if (hull_cgroup_read_u64(dir, "pids.current", &p->current, NULL)) {
        p->valid = true;
        uint64_t max = 0;
        bool unlimited = false;
        if (hull_cgroup_read_u64(dir, "pids.max", &max, &unlimited) && !unlimited) {
            p->has_limit = true;
            p->limit = max;
        }
        return;
    }
    if (dir_exists(any_dir)) {
        p->valid = true;
        p->current = 0;
        count_procs(any_dir, 0, &p->current);
    }
}

/* ---- one cgroup --------------------------------------------------------------------------------
 */
static const char *dir_of(const struct hull_cgroup *cg, const char *controller)
{
    const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, controller);
    return d ? d->path : NULL;
}

static void psi_all(const char *dir, struct hull_cgroup_stats *out)
{
    hull_cgroup_stats_psi(dir, "cpu.pressure", &out->cpu.psi);
    hull_cgroup_stats_psi(dir, "memory.pressure", &out->memory.psi);
    hull_cgroup_stats_psi(dir, "io.pressure", &out->io.psi);
}

static int read_v2(const struct hull_cgroup *cg, struct hull_cgroup_stats *out, hull_error_t *err)
{
    const char *dir = dir_of(cg, "unified");
    if (!dir_exists(dir))
        return hull_error_setx(err, ENOENT, "cgroup `%s` not found", dir ? dir : "(none)");
    cg_stats_v2_cpu(dir, &out->cpu);
    cg_stats_v2_memory(dir, &out->memory);
    pids_read(dir, dir, &out->pids);
    cg_stats_v2_io(dir, &out->io);
    psi_all(dir, out);
    procs_read(dir, 0, &out->procs);
    return 0;
}

/* v1 and hybrid: each controller from its v1 hierarchy; one that no v1 hierarchy holds from
 * the cgroup2 directory when the cgroup exists there (a host that moved some controllers to
 * cgroup2; cgroup2's cpu.stat usage needs no controller at all). */
static int read_v1(const struct hull_cgroup *cg, struct hull_cgroup_stats *out, hull_error_t *err)
{
    const char *acct = dir_of(cg, "cpuacct"), *cpu = dir_of(cg, "cpu");
    const char *mem = dir_of(cg, "memory"), *pids = dir_of(cg, "pids");
    const char *blkio = dir_of(cg, "blkio"), *uni = dir_of(cg, "unified");
    if (!dir_exists(uni))
        uni = NULL;
    const char *dirs[] = {acct, cpu, mem, pids, blkio, uni};
    const char *any = NULL;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && any == NULL; i++)
        if (dir_exists(dirs[i]))
            any = dirs[i];
    if (any == NULL)
        return hull_error_setx(err, ENOENT, "cgroup `%s` not found",
                               cg->n ? cg->dirs[0].path : "(none)");
    cg_stats_v1_cpu(dir_exists(acct) ? acct : NULL, dir_exists(cpu) ? cpu : NULL, &out->cpu);
    if (!out->cpu.valid && acct == NULL && uni)
        cg_stats_v2_cpu(uni, &out->cpu);
    if (dir_exists(mem))
        cg_stats_v1_memory(mem, &out->memory);
    else if (mem == NULL && uni)
        cg_stats_v2_memory(uni, &out->memory);
    if (pids != NULL || uni == NULL)
        pids_read(dir_exists(pids) ? pids : NULL, any, &out->pids);
    else
        pids_read(uni, any, &out->pids);
    if (dir_exists(blkio))
        cg_stats_v1_io(blkio, &out->io);
    else if (blkio == NULL && uni)
        cg_stats_v2_io(uni, &out->io);
    if (uni)
        psi_all(uni, out);
    procs_read(any, 0, &out->procs);
    return 0;
}

int hull_cgroup_stats_read(const struct hull_cgroup *cg, struct hull_cgroup_stats *out,
                           hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->timestamp_ns = hull_now_ns();
    out->monotonic_ns = hull_monotonic_ns();
    return cg->mode == HULL_CGROUP_V2 ? read_v2(cg, out, err) : read_v1(cg, out, err);
}

int hull_cgroup_stats_read_path(const struct hull_cgroup_layout *l, const char *cgroups_path,
                                struct hull_cgroup_stats *out, hull_error_t *err)
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
    if (cgroups_path == NULL || cgroups_path[0] != '/' || !hull_cgroup_path_safe(cgroups_path))
        return hull_error_setx(err, EINVAL, "cgroup `%s`: an absolute path without `..` is needed",
                               cgroups_path ? cgroups_path : "(null)");
    _cleanup_hull_cgroup_ struct hull_cgroup cg;
    int r = hull_cgroup_resolve(l, NULL, cgroups_path, NULL, &cg, err);
    if (r < 0)
        return r;
    r = hull_cgroup_stats_read(&cg, out, err);
    if (r == -ENOENT) {
        hull_error_free(err);
        return hull_error_setx(err, ENOENT, "cgroup `%s` not found", cgroups_path);
    }
    return r;
}
