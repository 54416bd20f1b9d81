/* Recovery at start-up: pod records are loaded (half-created pods cleaned up, pods whose
 * namespaces or infra process are gone marked not ready), resources no record names are
 * swept, and removals a crash interrupted are finished once the containers are loaded. */
#include "server/pod/sandbox_int.h"

#include <string.h>
#include <sys/mount.h>

int sandbox_load_one(void *opaque, const char *id, yajl_val doc, hull_error_t *err)
{
    struct sandbox_service *svc = opaque;
    struct sandbox *sb = NULL;
    int r = sandbox_from_record(svc, id, doc, &sb, err);
    if (r < 0)
        return r;
    if (sb->state == SANDBOX_STATE_CREATING) {
        log_warn("sandbox %s: cleaning up a half-created pod", sb->id);
        sandbox_release_runtime(sb, true, NULL);
        sandbox_release_storage(sb, true, NULL);
        sandbox_unref(sb);
        return 0;
    }
    if (sb->state == SANDBOX_STATE_READY) {
        bool ok = true;
        if (sb->netns && !cni_ns_is_pinned(sb->netns))
            ok = false;
        if (sb->pause_pid > 0 && sandbox_proc_start_time(sb->pause_pid) != sb->pause_start)
            ok = false;
        if (!ok) {
            log_warn("sandbox %s: namespaces or infra process gone; marking it not ready", sb->id);
            sb->state = SANDBOX_STATE_NOTREADY;
            _cleanup_error_ hull_error_t e = NULL;
            if (sandbox_persist_locked(sb, &e) < 0)
                log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    svc->items = xrealloc(svc->items, (svc->n + 1) * sizeof(*svc->items));
    svc->items[svc->n++] = sb;
    return 0;
}

static bool sandbox_known(struct sandbox_service *svc, const char *id)
{
    for (size_t i = 0; i < svc->n; i++)
        if (strcmp(svc->items[i]->id, id) == 0)
            return true;
    return false;
}

static bool full_id(const char *s)
{
    return strlen(s) == 64 && hull_id_is_valid(s);
}

/* The names of the entries of dir that are pod ids with no record (NULL-terminated). */
static char **orphan_ids(struct sandbox_service *svc, const char *dir)
{
    char **v = xmalloc0(sizeof(char *));
    size_t n = 0;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return v;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!full_id(de->d_name) || sandbox_known(svc, de->d_name))
            continue;
        v = xrealloc(v, (n + 2) * sizeof(char *));
        v[n++] = xstrdup(de->d_name);
        v[n] = NULL;
    }
    return v;
}

static void free_nullv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* CNI DEL for every cached attachment of pod id (the cache holds the network's config). */
static void orphan_network_del(struct sandbox_service *svc, const char *id, const char *netns)
{
    _cleanup_free_ char *dir = xasprintf("%s/cni/results", svc->root);
    _cleanup_free_ char *suffix = xasprintf("-%s-", id);
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char **nets = xmalloc0(sizeof(char *));
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *at = strstr(de->d_name, suffix);
        if (at == NULL || at == de->d_name)
            continue;
        nets = xrealloc(nets, (n + 2) * sizeof(char *));
        nets[n++] = xstrndup(de->d_name, (size_t)(at - de->d_name));
        nets[n] = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct cni_attachment a = {.container_id = id,
                                   .netns = cni_ns_is_pinned(netns) ? netns : "",
                                   .ifname = "eth0",
                                   .pod_name = "",
                                   .pod_namespace = "",
                                   .pod_uid = ""};
        _cleanup_error_ hull_error_t e = NULL;
        if (cni_del(cni_manager_exec(svc->cni), NULL, nets[i], &a, &e) < 0)
            log_warn("sandbox %s: network teardown: %s", id, hull_error_msg(&e));
    }
    free_nullv(nets);
}

/* Pinned namespaces, shm mounts and directories of pods with no record (a record lost or
 * set aside as corrupt): the network is released through the CNI cache, the rest removed. */
void sandbox_sweep_orphans(struct sandbox_service *svc)
{
    static const char *const kinds[] = {"net", "pid", "ipc", "uts"};
    for (size_t k = 0; k < 4; k++) {
        _cleanup_free_ char *dir = xasprintf("%s/%s", svc->ns_dir, kinds[k]);
        char **ids = orphan_ids(svc, dir);
        for (size_t i = 0; ids[i]; i++) {
            _cleanup_free_ char *pin = xasprintf("%s/%s", dir, ids[i]);
            log_warn("sandbox %s: no record: removing %s", ids[i], pin);
            if (k == 0)
                orphan_network_del(svc, ids[i], pin);
            _cleanup_error_ hull_error_t e = NULL;
            if (cni_ns_remove(pin, &e) < 0)
                log_warn("sandbox %s: %s", ids[i], hull_error_msg(&e));
        }
        free_nullv(ids);
    }
    const char *bases[] = {svc->state_dir, svc->root};
    for (size_t b = 0; b < 2; b++) {
        _cleanup_free_ char *dir = xasprintf("%s/sandboxes", bases[b]);
        char **ids = orphan_ids(svc, dir);
        for (size_t i = 0; ids[i]; i++) {
            _cleanup_free_ char *path = xasprintf("%s/%s", dir, ids[i]);
            _cleanup_free_ char *shm = xasprintf("%s/shm", path);
            log_warn("sandbox %s: no record: removing %s", ids[i], path);
            if (b == 0) {
                orphan_network_del(svc, ids[i], "");
                for (int j = 0; j < 4 && umount2(shm, MNT_DETACH) == 0; j++)
                    ;
            }
            _cleanup_error_ hull_error_t e = NULL;
            if (hull_rm_rf(path, &e) < 0)
                log_warn("sandbox %s: %s", ids[i], hull_error_msg(&e));
            /* its cgroup, when it had the default one (a pod of ours by its id) */
            _cleanup_free_ char *cg = sandbox_default_cgroup(svc, ids[i]);
            sandbox_cgroup_remove_all(cg, true);
        }
        free_nullv(ids);
    }
}

/* Finishes the removals a crash interrupted (after the container area is up: the pod's
 * containers go first). */
void sandbox_recover_finish(struct hull_server *srv)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    char **ids = xmalloc0((svc->n + 1) * sizeof(char *));
    size_t n = 0;
    pthread_rwlock_rdlock(&svc->lock);
    for (size_t i = 0; i < svc->n; i++)
        if (svc->items[i]->removing)
            ids[n++] = xstrdup(svc->items[i]->id);
    pthread_rwlock_unlock(&svc->lock);
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        log_warn("sandbox %s: finishing a removal interrupted by a crash", ids[i]);
        if (sandbox_remove(srv, ids[i], &e) < 0)
            log_warn("sandbox %s: %s", ids[i], hull_error_msg(&e));
    }
    free_nullv(ids);
}
