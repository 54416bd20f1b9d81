/* A container's cgroup (resolve, create, enter, apply, freeze, kill, destroy), the pinned
 * kill of a cgroup's processes, tree removal and the host probes: see cgroup.h.  The
 * controller writers are cgroup_v1.c and cgroup_v2.c, the helpers they share
 * cgroup_resources.c. */
#include "common/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int hull_cgroup_read_procs(const char *procs, pid_t **out, size_t *n_out, hull_error_t *err)
{
    return cg_read_pids(procs, false, out, n_out, err);
}

int cg_read_pids(const char *procs, bool with_self, pid_t **out, size_t *n_out, hull_error_t *err)
{
    *out = NULL;
    *n_out = 0;
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(procs, 16u << 20, &text, NULL, err);
    if (r < 0)
        return r;
    size_t n = 0, cap = 16;
    pid_t *v = xmalloc0(cap * sizeof(pid_t));
    for (char *p = text; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0 && (with_self || pid != getpid())) {
            if (n == cap) {
                cap *= 2;
                v = xrealloc(v, cap * sizeof(pid_t));
            }
            v[n++] = (pid_t)pid;
        }
        p = end;
        while (*p == '\n')
            p++;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int hull_cgroup_signal_procs(const char *procs, int sig, hull_error_t *err)
{
    _cleanup_free_ pid_t *pids = NULL, *now = NULL;
    size_t n = 0, m = 0;
    int r = hull_cgroup_read_procs(procs, &pids, &n, err);
    if (r < 0)
        return r;
    _cleanup_free_ int *fds = xmalloc0((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        fds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (fds[i] < 0)
            fds[i] = -errno; /* ESRCH: gone already; ENOSYS: no pidfds, plain kill */
    }
    _cleanup_error_ hull_error_t re = NULL;
    r = n > 0 ? hull_cgroup_read_procs(procs, &now, &m, &re) : 0;
    if (r == 0 && m > 1)
        qsort(now, m, sizeof(pid_t), cmp_pid);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = r == 0 && bsearch(&pids[i], now, m, sizeof(pid_t), cmp_pid) != NULL;
        int kr = 0;
        if (listed && fds[i] >= 0)
            kr = (int)syscall(SYS_pidfd_send_signal, fds[i], sig, NULL, 0);
        else if (listed && fds[i] == -ENOSYS)
            kr = kill(pids[i], sig);
        if (kr < 0 && errno != ESRCH && failed++ == 0)
            hull_error_set(err, errno, "kill %d", (int)pids[i]);
        if (fds[i] >= 0)
            close(fds[i]);
    }
    if (r < 0) /* the second read failed: nothing proves a pid is still the one listed */
        return hull_error_setx(err, -r, "%s", hull_error_msg(&re));
    return failed;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int remove_tree(const char *dir, int depth, unsigned flags, hull_error_t *err)
{
    if (depth > 16)
        return hull_error_setx(err, ELOOP, "remove cgroup `%s`: too deep", dir);
    int ret = 0;
    {
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (d == NULL)
            return errno == ENOENT ? 0 : hull_error_set(err, errno, "remove cgroup `%s`", dir);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            _cleanup_free_ char *sub = hull_path_join(dir, de->d_name);
            _cleanup_error_ hull_error_t se = NULL;
            int r = remove_tree(sub, depth + 1, flags, &se);
            if (r < 0 && ret == 0)
                ret = hull_error_setx(err, -r, "%s", hull_error_msg(&se));
        }
    }
    _cleanup_free_ char *procs = hull_path_join(dir, "cgroup.procs");
    bool kill_procs = flags & HULL_CGROUP_RM_KILL;
    if (kill_procs) {
        /* frozen (paused) tasks do not die: thaw them first */
        _cleanup_free_ char *v1 = hull_path_join(dir, "freezer.state");
        _cleanup_free_ char *v2 = hull_path_join(dir, "cgroup.freeze");
        _cleanup_error_ hull_error_t e1 = NULL, e2 = NULL;
        if (access(v1, F_OK) == 0)
            hull_write_string(v1, "THAWED", &e1);
        if (access(v2, F_OK) == 0)
            hull_write_string(v2, "0", &e2);
    }
    int attempts = kill_procs ? 100 : (flags & HULL_CGROUP_RM_WAIT) ? 200 : 1;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return ret;
        if (errno != EBUSY)
            break;
        if (kill_procs) {
            /* the one kill sequence: pidfd-pinned, re-checked */
            _cleanup_error_ hull_error_t ke = NULL;
            if (hull_cgroup_signal_procs(procs, SIGKILL, &ke) < 0 && access(procs, F_OK) < 0)
                break;
            sleep_ms(20);
        } else if (attempt + 1 < attempts) {
            sleep_ms(attempt < 20 ? 1 : 10);
        }
    }
    int e = errno;
    if (ret == 0)
        ret = hull_error_set(err, e, "remove cgroup `%s`", dir);
    return ret;
}

int hull_cgroup_remove_tree(const char *dir, unsigned flags, hull_error_t *err)
{
    return remove_tree(dir, 0, flags, err);
}

/* ---- a container's cgroup -------------------------------------------------------------------- */
void hull_cgroup_clear(struct hull_cgroup *cg)
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

int hull_cgroup_resolve(const struct hull_cgroup_layout *l, const char *proc_self_cgroup,
                        const char *cgroups_path, const char *id, struct hull_cgroup *out,
                        hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->mode = l->mode;
    const char *p = cgroups_path && *cgroups_path ? cgroups_path : id;
    if (!hull_cgroup_path_safe(p))
        return hull_error_setx(err, EINVAL,
                               "cgroupsPath `%s`: `.`/`..` components and control characters "
                               "are not allowed",
                               p);
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
        struct hull_cgroup_dir *d = &out->dirs[out->n++];
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

static bool has_controller(const struct hull_cgroup_dir *d, const char *name)
{
    return d->controllers && hull_option_list_has(d->controllers, name);
}

const struct hull_cgroup_dir *hull_cgroup_find_dir(const struct hull_cgroup *cg, const char *ctrl)
{
    for (size_t i = 0; i < cg->n; i++) {
        if (strcmp(ctrl, "unified") == 0 ? strcmp(cg->dirs[i].controller, "unified") == 0
                                         : has_controller(&cg->dirs[i], ctrl))
            return &cg->dirs[i];
    }
    return NULL;
}

bool hull_cgroup_dir_is_v2(const struct hull_cgroup *cg, const struct hull_cgroup_dir *d)
{
    return cg->mode == HULL_CGROUP_V2 || strcmp(d->controller, "unified") == 0;
}

int hull_cgroup_create(struct hull_cgroup *cg, hull_error_t *err)
{
    for (size_t i = 0; i < cg->n; i++) {
        struct hull_cgroup_dir *d = &cg->dirs[i];
        int r = hull_mkdir_p(d->path, 0755, err);
        if (r < 0)
            return hull_error_wrap(err, "create cgroup");
        /* hybrid: controllers that are on no v1 hierarchy may be on the cgroup2 one.  With
         * systemd, Delegate=yes made systemd enable the controllers it manages on the scope's
         * slices; the others (hugetlb, misc, rdma: systemd has no property for them and
         * leaves them alone) are enabled here, as crun does */
        if (cg->mode == HULL_CGROUP_V2 ||
            (cg->mode == HULL_CGROUP_HYBRID && strcmp(d->controller, "unified") == 0)) {
            const char *base = d->mount ? d->mount : "/sys/fs/cgroup";
            _cleanup_error_ hull_error_t e = NULL;
            if (hull_cgroup_v2_enable_controllers(base, d->path, &e) < 0)
                log_debug("cgroup v2 controllers: %s", hull_error_msg(&e));
        }
    }
    return 0;
}

/* Hybrid: the v2 controllers of the cgroup2 directory that no v1 hierarchy of cg holds. */
static unsigned hybrid_v2_mask(const struct hull_cgroup *cg, const char *dir)
{
    _cleanup_free_ char *avail = cg_read(dir, "cgroup.controllers");
    unsigned mask = 0;
    char *save = NULL;
    for (char *c = avail ? strtok_r(avail, " ", &save) : NULL; c; c = strtok_r(NULL, " ", &save)) {
        const char *v1 = NULL;
        unsigned bit = cg_v2_controller_bit(c, &v1);
        if (bit && hull_cgroup_find_dir(cg, v1) == NULL)
            mask |= bit;
    }
    return mask;
}

int hull_cgroup_apply(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                      unsigned flags, hull_error_t *err)
{
    if (cg->mode != HULL_CGROUP_V2 && res->n_unified > 0)
        return hull_error_setx(err, EINVAL,
                               "linux.resources.unified needs cgroup v2 (the host is %s)",
                               hull_cgroup_mode_name(cg->mode));
    const struct hull_cgroup_dir *uni = hull_cgroup_find_dir(cg, "unified");
    if (cg->mode != HULL_CGROUP_V2 && res->n_hugetlb > 0 && !hull_cgroup_find_dir(cg, "hugetlb") &&
        !(uni && (hybrid_v2_mask(cg, uni->path) & CG_V2_HUGETLB)))
        log_warn("hugepageLimits ignored: no hugetlb controller on this host");
    for (size_t i = 0; i < cg->n; i++) {
        struct hull_cgroup_dir *d = &cg->dirs[i];
        int r = 0;
        if (cg->mode == HULL_CGROUP_V2) {
            r = cg_v2_apply(d->path, res, CG_V2_ALL, err);
        } else if (strcmp(d->controller, "unified") == 0) {
            unsigned mask = hybrid_v2_mask(cg, d->path);
            if (mask)
                r = cg_v2_apply(d->path, res, mask, err);
        } else {
            /* a hierarchy may carry several controllers (cpu,cpuacct) */
            _cleanup_free_ char *ctrls = xstrdup(d->controllers);
            char *save = NULL;
            for (char *c = strtok_r(ctrls, ",", &save); c && r == 0; c = strtok_r(NULL, ",", &save))
                r = hull_cgroup_v1_apply(c, d->path, res, flags, err);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int hull_cgroup_enter(struct hull_cgroup *cg, pid_t pid, hull_error_t *err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    for (size_t i = 0; i < cg->n; i++) {
        int r = cg_write(cg->dirs[i].path, "cgroup.procs", buf, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* cgroup2's cgroup.freeze: on v2, and on hybrid hosts whose freezer is not on v1 */
static bool v2_freezer(const struct hull_cgroup *cg)
{
    return cg->mode == HULL_CGROUP_V2 || (hull_cgroup_find_dir(cg, "freezer") == NULL &&
                                          hull_cgroup_find_dir(cg, "unified") != NULL);
}

int hull_cgroup_is_frozen(struct hull_cgroup *cg, bool *frozen)
{
    *frozen = false;
    if (v2_freezer(cg)) {
        const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, "unified");
        if (d == NULL)
            return -ENOENT;
        _cleanup_free_ char *v = cg_read(d->path, "cgroup.freeze");
        if (v == NULL)
            return -ENOENT;
        *frozen = strcmp(v, "1") == 0;
        return 0;
    }
    const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, "freezer");
    if (d == NULL)
        return -ENOENT;
    _cleanup_free_ char *v = cg_read(d->path, "freezer.state");
    if (v == NULL)
        return -ENOENT;
    *frozen = strcmp(v, "FROZEN") == 0 || strcmp(v, "FREEZING") == 0;
    return 0;
}

int hull_cgroup_freeze(struct hull_cgroup *cg, bool freeze, hull_error_t *err)
{
    if (v2_freezer(cg)) {
        const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, "unified");
        if (d == NULL)
            return hull_error_setx(err, ENOTSUP, "no cgroup to freeze");
        int r = cg_write(d->path, "cgroup.freeze", freeze ? "1" : "0", err);
        if (r < 0)
            return r;
        for (int i = 0; i < 1000; i++) {
            _cleanup_free_ char *ev = cg_read(d->path, "cgroup.events");
            if (ev == NULL || strstr(ev, freeze ? "frozen 1" : "frozen 0"))
                return 0;
            sleep_ms(1);
        }
        return hull_error_setx(err, EBUSY, "cgroup did not %s", freeze ? "freeze" : "thaw");
    }
    const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, "freezer");
    if (d == NULL)
        return hull_error_setx(err, ENOTSUP, "the freezer cgroup controller is not available");
    const char *want = freeze ? "FROZEN" : "THAWED";
    for (int i = 0; i < 2000; i++) {
        int r = cg_write(d->path, "freezer.state", want, err);
        if (r < 0)
            return r;
        _cleanup_free_ char *v = cg_read(d->path, "freezer.state");
        if (v && strcmp(v, want) == 0)
            return 0;
        sleep_ms(1);
    }
    return hull_error_setx(err, EBUSY, "freezer did not reach %s", want);
}

/* The directory whose cgroup.procs lists the container's processes. */
static const struct hull_cgroup_dir *pids_dir(const struct hull_cgroup *cg)
{
    const struct hull_cgroup_dir *d =
        hull_cgroup_find_dir(cg, cg->mode == HULL_CGROUP_V2 ? "unified" : "pids");
    if (d == NULL)
        d = hull_cgroup_find_dir(cg, "freezer");
    if (d == NULL && cg->n > 0)
        d = &cg->dirs[0];
    return d;
}

int hull_cgroup_pids(struct hull_cgroup *cg, pid_t **pids, size_t *n, hull_error_t *err)
{
    *pids = NULL;
    *n = 0;
    const struct hull_cgroup_dir *d = pids_dir(cg);
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

int hull_cgroup_oom_count(struct hull_cgroup *cg, uint64_t *count)
{
    *count = 0;
    bool v2 = cg->mode == HULL_CGROUP_V2;
    const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, v2 ? "unified" : "memory");
    if (d == NULL)
        return -ENOENT;
    long long v = hull_cgroup_oom_kills(d->path, v2);
    if (v < 0)
        return -ENOENT;
    *count = (uint64_t)v;
    return 0;
}

int hull_cgroup_kill(struct hull_cgroup *cg, int sig, hull_error_t *err)
{
    if (cg->mode == HULL_CGROUP_V2 && sig == SIGKILL) {
        const struct hull_cgroup_dir *d = hull_cgroup_find_dir(cg, "unified");
        if (d && cg_exists(d->path, "cgroup.kill"))
            return cg_write(d->path, "cgroup.kill", "1", err);
    }
    /* freeze so nothing forks between reading the list and signalling */
    _cleanup_error_ hull_error_t fe = NULL;
    bool frozen = hull_cgroup_freeze(cg, true, &fe) == 0;
    const struct hull_cgroup_dir *d = pids_dir(cg);
    int r;
    if (d == NULL) {
        r = hull_error_setx(err, ENOENT, "no cgroup");
    } else {
        /* each pid pinned with a pidfd, signalled only if the cgroup still lists it (no
         * signal to a recycled pid) */
        _cleanup_free_ char *procs = hull_path_join(d->path, "cgroup.procs");
        r = hull_cgroup_signal_procs(procs, sig, err);
        if (r > 0)
            r = -hull_error_status(err);
    }
    if (frozen) {
        _cleanup_error_ hull_error_t te = NULL;
        hull_cgroup_freeze(cg, false, &te);
    }
    return r;
}

int hull_cgroup_destroy(struct hull_cgroup *cg, hull_error_t *err)
{
    int ret = 0;
    for (size_t i = 0; i < cg->n; i++) {
        /* cgroups the container made below its own go too */
        _cleanup_error_ hull_error_t e = NULL;
        int r = hull_cgroup_remove_tree(cg->dirs[i].path, HULL_CGROUP_RM_WAIT, &e);
        if (r < 0 && ret == 0)
            ret = hull_error_setx(err, -r, "%s", hull_error_msg(&e));
    }
    return ret;
}

/* ---- host probes ----------------------------------------------------------------------------- */
bool hull_cgroup_host_is_v2(void)
{
    return hull_is_cgroup2_mount("/sys/fs/cgroup");
}

bool hull_cgroup_host_has_controller(const char *controller)
{
    _cleanup_cgroup_layout_ struct hull_cgroup_layout l;
    if (hull_cgroup_layout_open(NULL, &l, NULL) < 0)
        return false;
    return hull_cgroup_layout_has_controller(&l, controller);
}

bool hull_cgroup_host_has_swap_accounting(void)
{
    _cleanup_cgroup_layout_ struct hull_cgroup_layout l;
    if (hull_cgroup_layout_open(NULL, &l, NULL) < 0)
        return false;
    if (l.mode == HULL_CGROUP_V2)
        return true;
    const struct hull_cgroup_hier *h = hull_cgroup_layout_find(&l, "memory");
    return h && cg_exists(h->mountpoint, "memory.memsw.limit_in_bytes");
}
