/* Crash recovery of the container area.
 *
 * Every container record carries a phase.  CreateContainer saves the record in the "creating"
 * phase before it makes anything (directories, mount, monitor, runtime state, cgroup) and
 * commits it ("phase" absent) once the monitor reported the container; RemoveContainer saves
 * "removing" before it tears anything down.  At start-up:
 *   - a "creating" record is rolled back completely and a "removing" one is finished, both by
 *     the ids and paths the record names (ctr_teardown);
 *   - a committed CREATED container the runtime already started is marked running;
 *   - everything under the state and root directories, every monitor process, runtime state
 *     dir and container cgroup that belongs to no committed record is torn down
 *     (ctr_sweep_orphans). */
#include "server/container/container_internal.h"
#include "server/pod/pod.h"
#include "common/cgroup.h"
#include "common/cgroup_systemd.h"
#include "common/mountinfo.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define RECOVER_RUNTIME_TIMEOUT_MS (30 * 1000)

/* ---- processes ---------------------------------------------------------------------------- */
/* The argv of pid (NUL-separated, *len bytes), or NULL. */
static char *proc_argv(pid_t pid, size_t *len)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", (int)pid);
    char *buf = NULL;
    _cleanup_error_ hull_error_t err = NULL;
    if (hull_read_file(path, 64 * 1024, &buf, len, &err) < 0)
        return NULL;
    return buf;
}

/* The value following `opt` in an argv, or NULL. */
static const char *argv_opt(const char *buf, size_t len, const char *opt)
{
    for (const char *p = buf; p < buf + len; p += strlen(p) + 1)
        if (strcmp(p, opt) == 0 && p + strlen(p) + 1 < buf + len)
            return p + strlen(p) + 1;
    return NULL;
}

static bool argv_has(const char *buf, size_t len, const char *word)
{
    for (const char *p = buf; p < buf + len; p += strlen(p) + 1)
        if (strcmp(p, word) == 0)
            return true;
    return false;
}

typedef bool (*proc_match_fn)(void *opaque, const char *argv, size_t len);

/* Signals the process pinned by pidfd (plain kill of pid without pidfd support). */
static int signal_pinned(pid_t pid, int pidfd, int sig)
{
    if (pidfd >= 0)
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
    return kill(pid, sig);
}

/* SIGKILLs every process (but hulld) whose argv matches; returns how many. */
static int kill_matching(proc_match_fn match, void *opaque)
{
    _cleanup_closedir_ DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self)
            continue;
        /* pinned before its argv is read: if the pid is recycled in between, the signal
         * goes to the dead process (ESRCH), never to the newcomer */
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (pidfd < 0 && errno != ENOSYS)
            continue;
        size_t len = 0;
        _cleanup_free_ char *argv = proc_argv((pid_t)pid, &len);
        if (argv == NULL || len == 0)
            continue;
        if (match(opaque, argv, len) && signal_pinned((pid_t)pid, pidfd, SIGKILL) == 0) {
            log_info("recovery: killed stale process %ld (%s)", pid, argv);
            n++;
        }
    }
    return n;
}

/* A monitor or runtime command of container id: the id as an argument, and an argument under
 * hulld's state directory (monitor sockets, exit files, runtime roots all live there), so a
 * client or a workload that merely names the id (crictl exec ID ...) is never taken for one. */
struct id_match {
    const char *id, *state_dir;
};

static bool match_id(void *opaque, const char *argv, size_t len)
{
    const struct id_match *m = opaque;
    if (!argv_has(argv, len, m->id))
        return false;
    size_t n = strlen(m->state_dir);
    for (const char *p = argv; p < argv + len; p += strlen(p) + 1)
        if (strncmp(p, m->state_dir, n) == 0 && (p[n] == '/' || p[n] == '\0'))
            return true;
    return false;
}

/* ---- cgroups ------------------------------------------------------------------------------ */
static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Removes the cgroup dir and those below it, deepest first; with kill, what runs in them is
 * SIGKILLed first. */
/* Tree removal (common/cgroup_manager.c); with kill_procs the processes die first and a cgroup left
 * behind is logged. */
static void cgroup_kill_tree(const char *dir, bool kill_procs)
{
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_cgroup_remove_tree(dir, kill_procs ? HULL_CGROUP_RM_KILL : 0, &e) < 0 && kill_procs)
        log_warn("recovery: %s", hull_error_msg(&e));
}

static bool cgroup_path_ok(const char *rel)
{
    return rel && rel[0] == '/' && rel[1] != '\0' && strstr(rel, "//") == NULL &&
           hull_cgroup_path_safe(rel);
}

/* ---- mounts ------------------------------------------------------------------------------- */
static void unmount_all(const char *path)
{
    for (int i = 0; i < 8; i++)
        if (umount2(path, MNT_DETACH) < 0)
            break;
}

/* ---- teardown ----------------------------------------------------------------------------- */
static void rm_quiet(const char *path)
{
    _cleanup_error_ hull_error_t err = NULL;
    if (hull_rm_rf(path, &err) < 0)
        log_warn("recovery: %s", hull_error_msg(&err));
}

static char *runtime_for_handler(struct hull_server *srv, const char *handler)
{
    const char *rt =
        config_runtime_path(srv->config, strcmp(handler, "default") == 0 ? "" : handler);
    if (rt == NULL)
        return NULL;
    return strcmp(rt, "hull-oci") == 0 ? xstrdup(ctr_service(srv)->hull_oci_path) : xstrdup(rt);
}

void ctr_teardown(struct hull_server *srv, const char *id, const char *runtime_path,
                  const char *runtime_root, const char *cgroups_path, bool remove_record)
{
    struct container_service *cs = ctr_service(srv);
    /* the monitor and any runtime process still working for it */
    struct id_match im = {.id = id, .state_dir = srv->config->state_dir};
    kill_matching(match_id, &im);
    if (runtime_path && runtime_path[0] && runtime_root && runtime_root[0]) {
        bool sd = hull_systemd_path_form(cgroups_path);
        const char *argv[] = {runtime_path,
                              "--root",
                              runtime_root,
                              sd ? "--systemd-cgroup" : "delete",
                              sd ? "delete" : "--force",
                              sd ? "--force" : id,
                              sd ? id : NULL,
                              NULL};
        _cleanup_error_ hull_error_t err = NULL;
        if (proc_run_ok((char *const *)argv, RECOVER_RUNTIME_TIMEOUT_MS, &err) < 0)
            log_debug("recovery: container %s: delete: %s", id, hull_error_msg(&err));
        _cleanup_free_ char *rstate = hull_path_join(runtime_root, id);
        rm_quiet(rstate);
    }
    if (cgroups_path && cgroups_path[0])
        sandbox_cgroup_remove_all(cgroups_path, true);
    _cleanup_free_ char *sdir = hull_path_join(cs->state_root, id);
    _cleanup_free_ char *rootfs = hull_path_join(sdir, "rootfs");
    unmount_all(rootfs);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, id, NULL);
    _cleanup_free_ char *rdir = hull_path_join(cs->root_dir, id);
    _cleanup_free_ char *exitf = hull_path_join(cs->exit_dir, id);
    rm_quiet(mon);
    rm_quiet(sdir);
    rm_quiet(rdir);
    unlink(exitf);
    if (remove_record) {
        _cleanup_error_ hull_error_t err = NULL;
        if (store_remove(srv->store, "containers", id, &err) < 0)
            log_warn("recovery: %s", hull_error_msg(&err));
    }
}

/* ---- started while hulld was down --------------------------------------------------------- */
void ctr_reconcile_started(struct hull_server *srv, struct container *c)
{
    const char *argv[] = {c->runtime_path, "--root", c->runtime_root, "state", c->id, NULL};
    struct proc_result res = {0};
    _cleanup_error_ hull_error_t err = NULL;
    if (proc_run((char *const *)argv, NULL, RECOVER_RUNTIME_TIMEOUT_MS, &res, &err) < 0 ||
        res.status != 0) {
        proc_result_free(&res);
        return;
    }
    _cleanup_yajl_ yajl_val doc = NULL;
    if (hull_json_parse(res.out ? res.out : "", "runtime state", &doc, &err) == 0) {
        const char *st = hull_json_get_string(doc, "status", "");
        if (strcmp(st, "running") == 0 || strcmp(st, "stopped") == 0) {
            pthread_mutex_lock(&c->lock);
            if (c->state == CONTAINER_CREATED) {
                c->state = CONTAINER_RUNNING;
                c->started_ns = hull_now_ns();
            }
            pthread_mutex_unlock(&c->lock);
            log_info("recovery: container %s was started while hulld was down", c->id);
            ctr_save(srv, c, NULL);
        }
    }
    proc_result_free(&res);
}

/* ---- orphans ------------------------------------------------------------------------------ */
/* Whether a committed container's id starts with prefix (a full id or a socket dir name). */
static bool known_prefix(struct hull_server *srv, const char *prefix)
{
    struct container_service *cs = ctr_service(srv);
    size_t n = strlen(prefix);
    bool found = false;
    pthread_mutex_lock(&cs->mu);
    for (struct container *c = cs->list; c && !found; c = c->next)
        found = strncmp(c->id, prefix, n) == 0;
    pthread_mutex_unlock(&cs->mu);
    return found;
}

static bool is_full_id(const char *s)
{
    return strlen(s) == 64 && hull_id_is_valid(s);
}

struct monitor_match {
    struct hull_server *srv;
    const char *socket_root;
};

/* A monitor of ours (its socket dir is under our socket root) that is an exec session (hulld
 * does not take those back) or serves a container without a committed record. */
static bool match_stale_monitor(void *opaque, const char *argv, size_t len)
{
    struct monitor_match *m = opaque;
    const char *sock = argv_opt(argv, len, "--socket-dir");
    const char *cid = argv_opt(argv, len, "--cid");
    size_t n = strlen(m->socket_root);
    if (sock == NULL || cid == NULL || strncmp(sock, m->socket_root, n) != 0 || sock[n] != '/')
        return false;
    if (argv_has(argv, len, "--exec"))
        return true;
    return !is_full_id(cid) || !known_prefix(m->srv, cid);
}

typedef void (*entry_fn)(struct hull_server *srv, const char *dir, const char *name);

static void for_entries(struct hull_server *srv, const char *dir, entry_fn fn)
{
    size_t n;
    char **names = hull_dir_names(dir, &n);
    for (size_t i = 0; i < n; i++)
        fn(srv, dir, names[i]);
    hull_strv_free_n(names, n);
}

static void sweep_full_id_entry(struct hull_server *srv, const char *dir, const char *name)
{
    if (name[0] == '.' || (is_full_id(name) && known_prefix(srv, name)))
        return;
    _cleanup_free_ char *path = hull_path_join(dir, name);
    log_warn("recovery: removing %s (no container record)", path);
    if (is_full_id(name))
        ctr_teardown(srv, name, NULL, NULL, NULL, false);
    else
        rm_quiet(path);
}

static void sweep_socket_entry(struct hull_server *srv, const char *dir, const char *name)
{
    /* "<id:20>" for a container, "<id:12>-<exec>" for an exec session (always stale now) */
    if (strchr(name, '-') == NULL && strlen(name) == 20 && known_prefix(srv, name))
        return;
    _cleanup_free_ char *path = hull_path_join(dir, name);
    log_warn("recovery: removing stale monitor dir %s", path);
    rm_quiet(path);
}

static void sweep_exit_entry(struct hull_server *srv, const char *dir, const char *name)
{
    if (name[0] == '.' || (is_full_id(name) && known_prefix(srv, name)))
        return;
    _cleanup_free_ char *path = hull_path_join(dir, name);
    unlink(path);
}

static void sweep_runtime_entry(struct hull_server *srv, const char *dir, const char *name)
{
    if (!is_full_id(name) || known_prefix(srv, name))
        return;
    _cleanup_free_ char *path = hull_path_join(dir, name);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    const char *handler = strrchr(dir, '/');
    _cleanup_free_ char *rt = handler ? runtime_for_handler(srv, handler + 1) : NULL;
    log_warn("recovery: deleting runtime state %s (no container record)", path);
    ctr_teardown(srv, name, rt, dir, NULL, false);
}

static void sweep_runtime_root(struct hull_server *srv, const char *dir, const char *name)
{
    if (name[0] == '.')
        return;
    _cleanup_free_ char *path = hull_path_join(dir, name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        for_entries(srv, path, sweep_runtime_entry);
}

struct cgroup_sweep {
    struct hull_server *srv;
    char **mnts;
    size_t n;
};

static int sweep_pod_cgroups(struct sandbox *sb, void *opaque)
{
    struct cgroup_sweep *cg = opaque;
    const char *parent = sandbox_cgroup_parent(sb);
    /* systemd driver: the pod slice's cgroup holds hull-<id>.scope units */
    _cleanup_free_ char *slice_rel = NULL;
    bool slice = hull_systemd_path_form(parent);
    if (slice) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_systemd_cgroup_of(parent, &slice_rel, &e) < 0)
            return 0;
        parent = slice_rel;
    }
    if (!cgroup_path_ok(parent))
        return 0;
    for (size_t i = 0; i < cg->n; i++) {
        _cleanup_free_ char *dir = xasprintf("%s%s", cg->mnts[i], parent);
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (d == NULL)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t nl = strlen(de->d_name);
            if (strncmp(de->d_name, "hull-", 5) != 0 ||
                (slice && (nl < 6 || strcmp(de->d_name + nl - 6, ".scope") != 0)))
                continue;
            _cleanup_free_ char *id = xstrndup(de->d_name + 5, nl - 5 - (slice ? 6 : 0));
            /* the pod's own infra scope (hull-<pod id>.scope) is not a container's */
            if (!is_full_id(id) || known_prefix(cg->srv, id) || strcmp(id, sandbox_id(sb)) == 0)
                continue;
            _cleanup_free_ char *sub = hull_path_join(dir, de->d_name);
            log_warn("recovery: removing cgroup %s (no container record)", sub);
            if (slice && hull_systemd_booted()) {
                _cleanup_error_ hull_error_t e = NULL;
                if (hull_systemd_stop_unit(de->d_name, &e) < 0)
                    log_warn("recovery: %s", hull_error_msg(&e));
            }
            cgroup_kill_tree(sub, true);
        }
    }
    return 0;
}

void ctr_sweep_orphans(struct hull_server *srv)
{
    struct container_service *cs = ctr_service(srv);
    struct monitor_match mm = {.srv = srv, .socket_root = cs->socket_root};
    kill_matching(match_stale_monitor, &mm);
    _cleanup_free_ char *runtime_dir = hull_path_join(srv->config->state_dir, "runtime");
    for_entries(srv, runtime_dir, sweep_runtime_root);
    for_entries(srv, cs->state_root, sweep_full_id_entry);
    for_entries(srv, cs->root_dir, sweep_full_id_entry);
    for_entries(srv, cs->socket_root, sweep_socket_entry);
    for_entries(srv, cs->exit_dir, sweep_exit_entry);
    struct cgroup_sweep cg = {.srv = srv};
    cg.mnts = hull_cgroup_mount_points(&cg.n);
    sandbox_foreach(srv, sweep_pod_cgroups, &cg);
    free_strv(cg.mnts, cg.n);
}
