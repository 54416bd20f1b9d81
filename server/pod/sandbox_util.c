/* Sandbox helpers: resolv.conf text, cgroupfs (v1 and v2), finding and
 * killing the infra process (it is started by sandbox_infra.c). */
#include "server/pod/pod.h"
#include "server/pod/sandbox_int.h"
#include "common/cgroup.h"
#include "common/cgroup_systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* ---- resolv.conf -------------------------------------------------------------------------- */

char *sandbox_resolv_conf_text(const Runtime__V1__DNSConfig *dns)
{
    if (dns == NULL || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0))
        return NULL;
    size_t cap = 256, len = 0;
    char *s = xmalloc0(cap);
#define APPEND(...)                                                                                \
    do {                                                                                           \
        _cleanup_free_ char *piece = xasprintf(__VA_ARGS__);                                       \
        size_t pl = strlen(piece);                                                                 \
        if (len + pl + 1 > cap) {                                                                  \
            cap = (len + pl + 1) * 2;                                                              \
            s = xrealloc(s, cap);                                                                  \
        }                                                                                          \
        memcpy(s + len, piece, pl + 1);                                                            \
        len += pl;                                                                                 \
    } while (0)
    if (dns->n_searches) {
        APPEND("search");
        for (size_t i = 0; i < dns->n_searches; i++)
            APPEND(" %s", dns->searches[i]);
        APPEND("\n");
    }
    for (size_t i = 0; i < dns->n_servers; i++)
        APPEND("nameserver %s\n", dns->servers[i]);
    if (dns->n_options) {
        APPEND("options");
        for (size_t i = 0; i < dns->n_options; i++)
            APPEND(" %s", dns->options[i]);
        APPEND("\n");
    }
#undef APPEND
    return s;
}

/* ---- cgroupfs ----------------------------------------------------------------------------- */

/* cgroupsPath forms a recovery may meet: absolute, no "..", no empty component. */
static bool cleanup_path_ok(const char *rel)
{
    return rel && rel[0] == '/' && rel[1] != '\0' && strstr(rel, "/..") == NULL &&
           strstr(rel, "//") == NULL;
}

/* systemd driver: stops the unit a cgroupsPath ("slice:prefix:name") or a pod slice names
 * (systemd kills what runs in it and removes its cgroup) and gives its cgroup path. */
static char *systemd_stop(const char *path, bool stop)
{
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *rel = NULL, *slice = NULL, *unit = NULL;
    if (hull_systemd_cgroup_of(path, &rel, &err) < 0) {
        log_warn("recovery: cgroup %s: %s", path, hull_error_msg(&err));
        return NULL;
    }
    if (strchr(path, ':') == NULL)
        unit = xstrdup(path);
    else if (hull_systemd_parse_path(path, NULL, NULL, &slice, &unit, &err) < 0)
        return NULL;
    if (stop && hull_systemd_booted() && hull_systemd_stop_unit(unit, &err) < 0)
        log_warn("recovery: %s", hull_error_msg(&err));
    return hull_steal(rel);
}

void sandbox_cgroup_remove_all(const char *path, bool kill_procs)
{
    _cleanup_free_ char *sd_rel = NULL;
    const char *rel = path;
    if (hull_systemd_path_form(path) && (rel = sd_rel = systemd_stop(path, kill_procs)) == NULL)
        return;
    if (!cleanup_path_ok(rel))
        return;
    size_t n = 0;
    char **mnts = hull_cgroup_mount_points(&n);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *p = xasprintf("%s%s", mnts[i], rel);
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_cgroup_remove_tree(p, kill_procs ? HULL_CGROUP_RM_KILL : 0, &e) < 0 && kill_procs)
            log_warn("recovery: %s", hull_error_msg(&e));
        free(mnts[i]);
    }
    free(mnts);
}

bool sandbox_cgroup_path_ok(const char *parent)
{
    /* absolute, below the root (never the root itself), and safe to join to it */
    return parent != NULL && parent[0] == '/' && strlen(parent) <= 1024 &&
           strcmp(parent, "/") != 0 && hull_cgroup_path_safe(parent);
}

/* The cgroup layout at cgroot (common/cgroup_layout.c); version 0 takes its mode, 1 or 2 forces one
 * (tests).  On a v2 host the pod cgroup is <root><parent>. */
struct cg_host {
    struct hull_cgroup_layout l;
    int version;
    const char *root;
};

static int host_open(const char *cgroot, int version, struct cg_host *h, hull_error_t *err)
{
    memset(h, 0, sizeof(*h));
    h->root = cgroot ? cgroot : "/sys/fs/cgroup";
    int r = hull_cgroup_layout_open(h->root, &h->l, err);
    if (r < 0 && version != 2)
        return r;
    h->version = version ? version : h->l.mode == HULL_CGROUP_V2 ? 2 : 1;
    return 0;
}

static void host_close(struct cg_host *h)
{
    hull_cgroup_layout_clear(&h->l);
}
#define _cleanup_cg_host_ __attribute__((cleanup(host_close)))

/* The n-th v1 hierarchy (NULL past the last one). */
static const struct hull_cgroup_hier *host_v1(const struct cg_host *h, size_t *i)
{
    while (*i < h->l.n && h->l.hiers[*i].v2)
        (*i)++;
    return *i < h->l.n ? &h->l.hiers[(*i)++] : NULL;
}

/* cpuset cgroups start with empty cpus/mems: copy the parent's down each new level. */
static int cpuset_init(const char *dir, hull_error_t *err)
{
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *mine = xasprintf("%s/%s", dir, files[i]);
        _cleanup_free_ char *cur = NULL;
        if (hull_read_file(mine, 4096, &cur, NULL, NULL) < 0)
            continue;
        if (cur[0] != '\0' && cur[0] != '\n')
            continue;
        _cleanup_free_ char *theirs = xasprintf("%s/../%s", dir, files[i]);
        _cleanup_free_ char *val = NULL;
        if (hull_read_file(theirs, 4096, &val, NULL, NULL) < 0)
            continue;
        int r = hull_write_string(mine, val, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int mkdir_levels(const char *base, const char *parent, bool cpuset, bool v2, bool *created,
                        hull_error_t *err)
{
    _cleanup_free_ char *path = xstrdup(base);
    _cleanup_free_ char *dup = xstrdup(parent);
    char *save = NULL;
    bool leaf_new = false;
    for (char *tok = strtok_r(dup, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (v2) {
            /* enable the available controllers for the level below */
            _cleanup_free_ char *ctl = xasprintf("%s/cgroup.controllers", path);
            _cleanup_free_ char *avail = NULL;
            if (hull_read_file(ctl, 4096, &avail, NULL, NULL) == 0) {
                const char *want[] = {"cpu", "cpuset", "memory", "pids", "io", "hugetlb"};
                _cleanup_free_ char *sub = xasprintf("%s/cgroup.subtree_control", path);
                for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                    bool has = false;
                    _cleanup_free_ char *a = xstrdup(avail);
                    char *s2 = NULL;
                    for (char *w = strtok_r(a, " \n", &s2); w; w = strtok_r(NULL, " \n", &s2))
                        if (strcmp(w, want[i]) == 0)
                            has = true;
                    if (!has)
                        continue;
                    _cleanup_free_ char *cmd = xasprintf("+%s", want[i]);
                    _cleanup_error_ hull_error_t e = NULL;
                    if (hull_write_string(sub, cmd, &e) < 0)
                        log_debug("cgroup: %s: %s", sub, hull_error_msg(&e));
                }
            }
        }
        char *next = xasprintf("%s/%s", path, tok);
        free(path);
        path = next;
        leaf_new = false;
        if (mkdir(path, 0755) == 0) {
            leaf_new = true;
            if (cpuset) {
                int r = cpuset_init(path, err);
                if (r < 0)
                    return r;
            }
        } else if (errno != EEXIST) {
            return hull_error_set(err, errno, "create cgroup `%s`", path);
        }
    }
    if (leaf_new)
        *created = true;
    return 0;
}

int sandbox_cgroup_create(const char *cgroot, int version, const char *parent, bool *created,
                          hull_error_t *err)
{
    if (!sandbox_cgroup_path_ok(parent))
        return hull_error_setx(err, EINVAL, "invalid cgroup parent \"%s\"", parent ? parent : "");
    *created = false;
    _cleanup_cg_host_ struct cg_host h;
    int r = host_open(cgroot, version, &h, err);
    if (r < 0)
        return r;
    if (h.version == 2)
        return mkdir_levels(h.root, parent, false, true, created, err);
    size_t i = 0;
    for (const struct hull_cgroup_hier *v1; r == 0 && (v1 = host_v1(&h, &i));) {
        bool cpuset = hull_option_list_has(v1->controllers, "cpuset");
        r = mkdir_levels(v1->mountpoint, parent, cpuset, false, created, err);
    }
    if (r < 0) {
        _cleanup_error_ hull_error_t e = NULL;
        if (*created)
            sandbox_cgroup_remove(cgroot, version, parent, &e);
    }
    return r;
}

bool sandbox_cgroup_exists(const char *cgroot, int version, const char *parent)
{
    _cleanup_cg_host_ struct cg_host h;
    if (host_open(cgroot, version, &h, NULL) < 0)
        return false;
    struct stat st;
    if (h.version == 2) {
        _cleanup_free_ char *p = xasprintf("%s%s", h.root, parent);
        return stat(p, &st) == 0;
    }
    bool any = false;
    size_t i = 0;
    for (const struct hull_cgroup_hier *v1; !any && (v1 = host_v1(&h, &i));) {
        _cleanup_free_ char *p = xasprintf("%s%s", v1->mountpoint, parent);
        any = stat(p, &st) == 0;
    }
    return any;
}

int sandbox_cgroup_remove(const char *cgroot, int version, const char *parent, hull_error_t *err)
{
    if (!sandbox_cgroup_path_ok(parent))
        return hull_error_setx(err, EINVAL, "invalid cgroup parent \"%s\"", parent ? parent : "");
    _cleanup_cg_host_ struct cg_host h;
    int r = host_open(cgroot, version, &h, err);
    if (r < 0)
        return r;
    if (h.version == 2) {
        _cleanup_free_ char *pause = xasprintf("%s%s/pause", h.root, parent);
        rmdir(pause);
        _cleanup_free_ char *p = xasprintf("%s%s", h.root, parent);
        if (rmdir(p) < 0 && errno != ENOENT)
            return hull_error_set(err, errno, "remove cgroup `%s`", p);
        return 0;
    }
    int ret = 0;
    size_t i = 0;
    for (const struct hull_cgroup_hier *v1; (v1 = host_v1(&h, &i));) {
        _cleanup_free_ char *p = xasprintf("%s%s", v1->mountpoint, parent);
        if (rmdir(p) < 0 && errno != ENOENT && ret == 0)
            ret = hull_error_set(err, errno, "remove cgroup `%s`", p);
    }
    /* the hybrid host's cgroup2 directory, made by the OCI runtime, goes with every other
     * hierarchy's in release_storage (recover_cgroup_remove_all) */
    return ret;
}

void sandbox_cgroup_remove_infra(const char *cgroot, int version, const char *parent)
{
    if (!sandbox_cgroup_path_ok(parent))
        return;
    _cleanup_cg_host_ struct cg_host h;
    if (host_open(cgroot, version, &h, NULL) < 0 || h.version != 2)
        return;
    _cleanup_free_ char *pause = xasprintf("%s%s/pause", h.root, parent);
    if (rmdir(pause) < 0 && errno != ENOENT)
        log_warn("remove cgroup `%s`: %s", pause, strerror(errno));
}

int sandbox_cgroup_add_pid(const char *cgroot, int version, const char *parent, pid_t pid,
                           hull_error_t *err)
{
    _cleanup_cg_host_ struct cg_host h;
    int r = host_open(cgroot, version, &h, err);
    if (r < 0)
        return r;
    char pidstr[32];
    snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
    if (h.version == 2) {
        _cleanup_free_ char *dir = xasprintf("%s%s/pause", h.root, parent);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return hull_error_set(err, errno, "create cgroup `%s`", dir);
        _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
        return hull_write_string(procs, pidstr, err);
    }
    size_t i = 0;
    for (const struct hull_cgroup_hier *v1; r == 0 && (v1 = host_v1(&h, &i));) {
        _cleanup_free_ char *procs = xasprintf("%s%s/cgroup.procs", v1->mountpoint, parent);
        r = hull_write_string(procs, pidstr, err);
    }
    return r;
}

/* The pod-level limits kubelet sets on a pod cgroup: memory limit, CPU shares, quota and
 * period (a quota only when positive for systemd, which has no "unset" quota). */
static void pod_resources(const Runtime__V1__LinuxContainerResources *res, bool sd,
                          struct hull_cgroup_resources *out)
{
    hull_cgroup_resources_init(out);
    if (res == NULL)
        return;
    if (res->memory_limit_in_bytes > 0)
        out->memory.limit = res->memory_limit_in_bytes;
    if (res->cpu_shares > 0)
        out->cpu.shares = res->cpu_shares;
    if (res->cpu_period > 0)
        out->cpu.period = res->cpu_period;
    if (sd ? res->cpu_quota > 0 : res->cpu_quota != 0)
        out->cpu.quota = res->cpu_quota;
}

int sandbox_cgroup_apply_resources(const char *parent,
                                   const Runtime__V1__LinuxContainerResources *res,
                                   hull_error_t *err)
{
    if (res == NULL || !sandbox_cgroup_path_ok(parent))
        return 0;
    _cleanup_cgroup_resources_ struct hull_cgroup_resources r;
    pod_resources(res, false, &r);
    /* v1: the memory and cpu hierarchies' pod directories (the cgroup library's writers); on
     * v2 the pod cgroup's limits come from its containers */
    _cleanup_cgroup_layout_ struct hull_cgroup_layout l;
    if (hull_cgroup_layout_open(NULL, &l, NULL) < 0 || l.mode == HULL_CGROUP_V2)
        return 0;
    static const char *const ctrls[] = {"memory", "cpu"};
    for (size_t i = 0; i < 2; i++) {
        const struct hull_cgroup_hier *h = hull_cgroup_layout_find(&l, ctrls[i]);
        _cleanup_free_ char *dir = h ? xasprintf("%s%s", h->mountpoint, parent) : NULL;
        if (dir == NULL || access(dir, F_OK) < 0)
            continue; /* controller absent: nothing to apply here */
        int ret = hull_cgroup_v1_apply(ctrls[i], dir, &r, 0, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* ---- systemd slices -------------------------------------------------------------------------- */
int sandbox_slice_create(const char *slice, const Runtime__V1__LinuxContainerResources *res,
                         bool *created, hull_error_t *err)
{
    *created = false;
    if (!hull_systemd_slice_valid(slice))
        return hull_error_setx(err, EINVAL, "invalid cgroup parent \"%s\" (not a systemd slice)",
                               slice ? slice : "");
    int r = hull_systemd_unit_active(slice, err);
    if (r != 0)
        return r < 0 ? r : 0;
    _cleanup_systemd_props_ struct hull_systemd_props props = {0};
    _cleanup_cgroup_resources_ struct hull_cgroup_resources pr;
    pod_resources(res, true, &pr);
    if ((r = hull_cgroup_systemd_props(
             &pr, hull_cgroup_host_is_v2() ? HULL_CGROUP_V2 : HULL_CGROUP_HYBRID, &props, err)) < 0)
        return r;
    _cleanup_free_ char *desc = xasprintf("hull pod slice %s", slice);
    r = hull_systemd_start_unit(slice, NULL, desc, NULL, 0, &props, err);
    if (r == -EEXIST) {
        hull_error_free(err);
        return 0;
    }
    if (r < 0)
        return r;
    *created = true;
    return 0;
}

bool sandbox_slice_exists(const char *slice)
{
    _cleanup_error_ hull_error_t e = NULL;
    return hull_systemd_unit_active(slice, &e) > 0;
}

int sandbox_slice_remove(const char *slice, hull_error_t *err)
{
    if (!hull_systemd_slice_valid(slice))
        return hull_error_setx(err, EINVAL, "invalid cgroup parent \"%s\"", slice ? slice : "");
    return hull_systemd_stop_unit(slice, err);
}

int sandbox_slice_add_pid(const char *slice, const char *unit, pid_t pid, hull_error_t *err)
{
    _cleanup_free_ char *desc = xasprintf("hull pod infra process of %s", slice);
    return hull_systemd_start_unit(unit, slice, desc, &pid, 1, NULL, err);
}

/* ---- the infra process ---------------------------------------------------------------------- */

/* State letter and starttime of /proc/<pid>/stat; false when there is no such process. */
static bool proc_stat(pid_t pid, char *state, uint64_t *start)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file(path, 4096, &buf, NULL, NULL) < 0)
        return false;
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return false;
    *state = p[2];
    /* starttime is field 22; field 3 (state) is at p + 2 */
    int field = 3;
    for (p += 2; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    *start = strtoull(p, NULL, 10);
    return true;
}

uint64_t sandbox_proc_start_time(pid_t pid)
{
    char state;
    uint64_t start;
    if (!proc_stat(pid, &state, &start) || state == 'Z' || state == 'X')
        return 0; /* a zombie is gone for our purposes */
    return start;
}

bool sandbox_proc_is_zombie(pid_t pid, uint64_t start_time)
{
    char state;
    uint64_t start;
    return proc_stat(pid, &state, &start) && state == 'Z' && start == start_time;
}

bool sandbox_proc_alive(pid_t pid, uint64_t start_time)
{
    char state;
    uint64_t start;
    if (!proc_stat(pid, &state, &start) || start != start_time)
        return false;
    if (state == 'Z')
        waitpid(pid, NULL, WNOHANG); /* reap only our own exited process, never a reused pid */
    return state != 'Z' && state != 'X';
}

int sandbox_child_alive(pid_t pid)
{
    siginfo_t si = {0};
    if (pid <= 0 || waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return -1;
    if (si.si_pid == 0)
        return 1;
    waitpid(pid, NULL, WNOHANG);
    return 0;
}

void sandbox_kill_pause(pid_t pid, uint64_t start_time)
{
    if (pid <= 0)
        return;
    if (sandbox_proc_is_zombie(pid, start_time)) {
        waitpid(pid, NULL, WNOHANG); /* exited already: reap it if it is our child */
        return;
    }
    /* pinned before its start time is compared: a pid recycled after that check can not be
     * hit; with no recorded start time nothing proves the pid is still the infra process */
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    uint64_t now = sandbox_proc_start_time(pid);
    if (now == 0 || start_time == 0 || now != start_time || (pidfd < 0 && errno != ENOSYS)) {
        waitpid(pid, NULL, WNOHANG); /* gone, or the pid is another process's now */
        return;
    }
    if (pidfd >= 0)
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    else
        kill(pid, SIGKILL);
    int status;
    /* reap it if it is our child (it is not after a hulld restart) */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}
