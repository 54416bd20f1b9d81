/* Pod sandbox objects: lifetime, accessors, state and holds, the container hooks, the index and
 * the records on disk.  Each CRI operation has its own file (sandbox_run.c, sandbox_stop.c,
 * sandbox_teardown.c, sandbox_recover.c; sandbox_service.c starts and ends the area); see
 * sandbox_int.h for the locks. */
#include "server/pod/sandbox_int.h"

#include <errno.h>
#include <string.h>

static const char *const state_names[] = {"creating", "ready", "notready"};

/* ---- small helpers ------------------------------------------------------------------------ */

struct sandbox_service *sandbox_svc(struct hull_server *srv)
{
    return srv->sandboxes;
}

/* ---- object lifetime ---------------------------------------------------------------------- */

/* The cgroup parent of a pod that names none: <parent>/pod-<id>, or with the systemd driver
 * the slice <stem>-pod<id>.slice (below <stem>.slice). */
char *sandbox_default_cgroup(const struct sandbox_service *svc, const char *id)
{
    if (svc->systemd)
        return xasprintf("%s-pod%s.slice", svc->default_cgroup_parent, id);
    return xasprintf("%s/pod-%s", svc->default_cgroup_parent, id);
}

struct sandbox *sandbox_new(struct sandbox_service *svc)
{
    struct sandbox *sb = xmalloc0(sizeof(*sb));
    atomic_init(&sb->refs, 1);
    pthread_mutex_init(&sb->lock, NULL);
    pthread_cond_init(&sb->cond, NULL);
    sb->svc = svc;
    return sb;
}

struct sandbox *sandbox_ref(struct sandbox *sb)
{
    if (sb)
        atomic_fetch_add(&sb->refs, 1);
    return sb;
}

void sandbox_unref(struct sandbox *sb)
{
    if (sb == NULL || atomic_fetch_sub(&sb->refs, 1) != 1)
        return;
    if (sb->config)
        runtime__v1__pod_sandbox_config__free_unpacked(sb->config, NULL);
    free(sb->runtime_handler);
    free(sb->netns);
    free(sb->ipcns);
    free(sb->utsns);
    free(sb->userns);
    free(sb->pidns);
    free(sb->cgroup_parent);
    free(sb->hostname);
    free(sb->dir);
    free(sb->run_dir);
    free(sb->hostname_path);
    free(sb->resolv_path);
    free(sb->hosts_path);
    free(sb->shm_path);
    free(sb->network_name);
    hull_strv_free_n(sb->ips, sb->n_ips);
    pthread_mutex_destroy(&sb->lock);
    pthread_cond_destroy(&sb->cond);
    free(sb);
}

/* ---- accessors ---------------------------------------------------------------------------- */

const char *sandbox_id(const struct sandbox *sb)
{
    return sb->id;
}

const Runtime__V1__PodSandboxConfig *sandbox_config(const struct sandbox *sb)
{
    return sb->config;
}

const char *sandbox_runtime_handler(const struct sandbox *sb)
{
    return sb->runtime_handler;
}

int64_t sandbox_created_at(const struct sandbox *sb)
{
    return sb->created_at;
}

const char *sandbox_netns_path(const struct sandbox *sb)
{
    return sb->netns;
}

const char *sandbox_ipcns_path(const struct sandbox *sb)
{
    return sb->ipcns;
}

const char *sandbox_utsns_path(const struct sandbox *sb)
{
    return sb->utsns;
}

const char *sandbox_pidns_path(const struct sandbox *sb)
{
    return sb->pidns;
}

const char *sandbox_userns_path(const struct sandbox *sb)
{
    return sb->userns;
}

bool sandbox_host_network(const struct sandbox *sb)
{
    return sb->host_net;
}

bool sandbox_host_pid(const struct sandbox *sb)
{
    return sb->host_pid;
}

bool sandbox_host_ipc(const struct sandbox *sb)
{
    return sb->host_ipc;
}

const char *sandbox_cgroup_parent(const struct sandbox *sb)
{
    return sb->cgroup_parent;
}

const char *sandbox_hostname(const struct sandbox *sb)
{
    return sb->hostname;
}

const char *sandbox_hostname_path(const struct sandbox *sb)
{
    return sb->hostname_path;
}

const char *sandbox_resolv_conf_path(const struct sandbox *sb)
{
    return sb->resolv_path;
}

const char *sandbox_hosts_path(const struct sandbox *sb)
{
    return sb->hosts_path;
}

const char *sandbox_shm_path(const struct sandbox *sb)
{
    return sb->shm_path;
}

const char *sandbox_dir(const struct sandbox *sb)
{
    return sb->dir;
}

bool sandbox_userns_ids(const struct sandbox *sb, uint32_t *uid, uint32_t *gid)
{
    if (sb->userns == NULL)
        return false;
    const Runtime__V1__LinuxPodSandboxConfig *lx = sb->config ? sb->config->linux : NULL;
    const Runtime__V1__NamespaceOption *ns =
        lx && lx->security_context ? lx->security_context->namespace_options : NULL;
    bool on = false;
    struct userns_map u, g;
    _cleanup_error_ hull_error_t err = NULL;
    if (userns_from_cri(ns, &on, &u, &g, &err) < 0 || !on)
        return false;
    *uid = u.host_id;
    *gid = g.host_id;
    return true;
}

/* A READY pod whose infra process died is NOTREADY (kubelet then recreates it).  Reaps the
 * process if it was our child.  Call with sb->lock held. */
static void check_infra_locked(struct sandbox *sb)
{
    if (sb->state != SANDBOX_STATE_READY || sb->pause_pid <= 0 || sb->busy)
        return;
    /* listing pods makes this check for every pod: one waitid() for our own child, else one
     * read of its stat */
    int child = sb->pause_child ? sandbox_child_alive(sb->pause_pid) : -1;
    if (child < 0)
        sb->pause_child = false;
    if (child == 0 || (child < 0 && !sandbox_proc_alive(sb->pause_pid, sb->pause_start))) {
        log_warn("sandbox %s: infra process %d is gone; pod not ready", sb->id, (int)sb->pause_pid);
        sb->state = SANDBOX_STATE_NOTREADY;
    }
}

enum sandbox_state sandbox_get_state(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    check_infra_locked(sb);
    enum sandbox_state s = sb->state;
    pthread_mutex_unlock(&sb->lock);
    return s;
}

enum sandbox_state sandbox_state_checked(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    enum sandbox_state s = sb->state;
    pthread_mutex_unlock(&sb->lock);
    return s;
}

int sandbox_hold(struct sandbox *sb, hull_error_t *err)
{
    pthread_mutex_lock(&sb->lock);
    if (sb->state != SANDBOX_STATE_READY || sb->busy || sb->removed) {
        pthread_mutex_unlock(&sb->lock);
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is not ready", sb->id);
    }
    sb->holds++;
    pthread_mutex_unlock(&sb->lock);
    return 0;
}

void sandbox_release(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    if (sb->holds > 0)
        sb->holds--;
    pthread_cond_broadcast(&sb->cond);
    pthread_mutex_unlock(&sb->lock);
}

void sandbox_set_container_hooks(struct hull_server *srv, const struct sandbox_container_hooks *h)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    pthread_mutex_lock(&svc->hooks_lock);
    if (h) {
        svc->hooks = *h;
        svc->have_hooks = true;
    } else {
        svc->have_hooks = false;
    }
    pthread_mutex_unlock(&svc->hooks_lock);
}

bool sandbox_get_hooks(struct sandbox_service *svc, struct sandbox_container_hooks *out)
{
    pthread_mutex_lock(&svc->hooks_lock);
    bool have = svc->have_hooks;
    if (have)
        *out = svc->hooks;
    pthread_mutex_unlock(&svc->hooks_lock);
    return have;
}

bool sandbox_network_ready(struct hull_server *srv, char **reason, char **message)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    if (svc == NULL || svc->cni == NULL) {
        *reason = xstrdup("NetworkPluginNotReady");
        *message = xstrdup("the sandbox service is not initialised");
        return false;
    }
    return cni_manager_ready(svc->cni, reason, message);
}

/* ---- index -------------------------------------------------------------------------------- */

int sandbox_lookup(struct hull_server *srv, const char *id, struct sandbox **out, hull_error_t *err)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    if (id == NULL || *id == '\0')
        return hull_error_setx(err, EINVAL, "pod sandbox id is empty");
    size_t len = strlen(id);
    struct sandbox *found = NULL;
    int matches = 0;
    pthread_rwlock_rdlock(&svc->lock);
    for (size_t i = 0; i < svc->n; i++) {
        struct sandbox *sb = svc->items[i];
        if (strcmp(sb->id, id) == 0) {
            found = sb;
            matches = 1;
            break;
        }
        if (strncmp(sb->id, id, len) == 0) {
            found = sb;
            matches++;
        }
    }
    if (matches == 1)
        sandbox_ref(found);
    pthread_rwlock_unlock(&svc->lock);
    if (matches == 0)
        return hull_error_setx(err, ENOENT, "pod sandbox \"%s\" not found", HULL_CLIP(id));
    if (matches > 1)
        return hull_error_setx(err, EINVAL, "pod sandbox id prefix \"%s\" is ambiguous",
                               HULL_CLIP(id));
    *out = found;
    return 0;
}

int sandbox_foreach(struct hull_server *srv, int (*cb)(struct sandbox *sb, void *opaque),
                    void *opaque)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    pthread_rwlock_rdlock(&svc->lock);
    size_t n = svc->n;
    struct sandbox **snap = xmalloc0((n + 1) * sizeof(*snap));
    for (size_t i = 0; i < n; i++)
        snap[i] = sandbox_ref(svc->items[i]);
    pthread_rwlock_unlock(&svc->lock);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r == 0 && sandbox_get_state(snap[i]) != SANDBOX_STATE_CREATING)
            r = cb(snap[i], opaque);
        sandbox_unref(snap[i]);
    }
    free(snap);
    return r;
}

void sandbox_index_remove(struct sandbox_service *svc, struct sandbox *sb)
{
    pthread_rwlock_wrlock(&svc->lock);
    for (size_t i = 0; i < svc->n; i++)
        if (svc->items[i] == sb) {
            memmove(&svc->items[i], &svc->items[i + 1], (svc->n - i - 1) * sizeof(*svc->items));
            svc->n--;
            pthread_mutex_lock(&sb->lock);
            sb->removed = true;
            pthread_cond_broadcast(&sb->cond);
            pthread_mutex_unlock(&sb->lock);
            sandbox_unref(sb);
            break;
        }
    pthread_rwlock_unlock(&svc->lock);
}

/* ---- persistence -------------------------------------------------------------------------- */

static void kv_str_or_empty(struct hull_json_writer *w, const char *k, const char *v)
{
    hull_jw_kv_string(w, k, v ? v : "");
}

/* Saves the record; call with sb->lock held. */
static int persist_locked(struct sandbox *sb, bool nosync, hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_int(&w, "version", 1);
    hull_jw_kv_string(&w, "id", sb->id);
    hull_jw_kv_string(&w, "state", state_names[sb->state]);
    hull_jw_kv_int(&w, "created_at", sb->created_at);
    hull_jw_kv_string(&w, "runtime_handler", sb->runtime_handler);
    size_t plen = runtime__v1__pod_sandbox_config__get_packed_size(sb->config);
    _cleanup_free_ uint8_t *packed = xmalloc0(plen + 1);
    runtime__v1__pod_sandbox_config__pack(sb->config, packed);
    _cleanup_free_ char *b64 = hull_base64_encode(packed, plen);
    hull_jw_kv_string(&w, "config", b64);
    hull_jw_kv_bool(&w, "host_network", sb->host_net);
    hull_jw_kv_bool(&w, "host_pid", sb->host_pid);
    hull_jw_kv_bool(&w, "host_ipc", sb->host_ipc);
    hull_jw_kv_bool(&w, "shared_pid", sb->shared_pid);
    kv_str_or_empty(&w, "netns", sb->netns);
    kv_str_or_empty(&w, "ipcns", sb->ipcns);
    kv_str_or_empty(&w, "utsns", sb->utsns);
    kv_str_or_empty(&w, "pidns", sb->pidns);
    kv_str_or_empty(&w, "userns", sb->userns);
    hull_jw_kv_string(&w, "cgroup_parent", sb->cgroup_parent);
    hull_jw_kv_bool(&w, "cgroup_created", sb->cgroup_created);
    hull_jw_kv_string(&w, "hostname", sb->hostname);
    hull_jw_kv_bool(&w, "shm_mounted", sb->shm_mounted);
    hull_jw_kv_bool(&w, "net_attempted", sb->net_attempted);
    hull_jw_kv_bool(&w, "net_done", sb->net_done);
    if (sb->removing)
        hull_jw_kv_bool(&w, "removing", true);
    if (sb->del_failures)
        hull_jw_kv_int(&w, "del_failures", sb->del_failures);
    kv_str_or_empty(&w, "network_name", sb->network_name);
    hull_jw_key(&w, "ips");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < sb->n_ips; i++)
        hull_jw_string(&w, sb->ips[i]);
    hull_jw_end_array(&w);
    hull_jw_kv_int(&w, "pause_pid", sb->pause_pid);
    hull_jw_kv_int(&w, "pause_start", (long long)sb->pause_start);
    hull_jw_end_object(&w);
    size_t len = 0;
    _cleanup_free_ char *text = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    /* being created or removed, or stopped: no fsync (store_save_intent); ready is durable */
    if (nosync || sb->state == SANDBOX_STATE_CREATING || sb->removing)
        return store_save_intent(sb->svc->store, STORE_KIND, sb->id, text, len, err);
    return store_save(sb->svc->store, STORE_KIND, sb->id, text, len, err);
}

int sandbox_persist_locked(struct sandbox *sb, hull_error_t *err)
{
    return persist_locked(sb, false, err);
}

int sandbox_persist(struct sandbox *sb, hull_error_t *err)
{
    pthread_mutex_lock(&sb->lock);
    int r = persist_locked(sb, false, err);
    pthread_mutex_unlock(&sb->lock);
    return r;
}

int sandbox_persist_stopped(struct sandbox *sb, hull_error_t *err)
{
    pthread_mutex_lock(&sb->lock);
    int r = persist_locked(sb, true, err);
    pthread_mutex_unlock(&sb->lock);
    return r;
}

static char *opt_str(yajl_val doc, const char *key)
{
    const char *s = hull_json_get_string(doc, key, "");
    return *s ? xstrdup(s) : NULL;
}

void sandbox_set_paths(struct sandbox_service *svc, struct sandbox *sb)
{
    sb->dir = xasprintf("%s/sandboxes/%s", svc->root, sb->id);
    sb->run_dir = xasprintf("%s/sandboxes/%s", svc->state_dir, sb->id);
    sb->hostname_path = xasprintf("%s/hostname", sb->dir);
    sb->resolv_path = xasprintf("%s/resolv.conf", sb->dir);
    sb->hosts_path = xasprintf("%s/hosts", sb->dir);
    sb->shm_path = sb->host_ipc ? xstrdup("/dev/shm") : xasprintf("%s/shm", sb->run_dir);
}

int sandbox_from_record(struct sandbox_service *svc, const char *id, yajl_val doc,
                        struct sandbox **out, hull_error_t *err)
{
    if (!hull_id_is_valid(id) || strlen(id) != 64)
        return hull_error_setx(err, EINVAL, "invalid sandbox id");
    const char *b64 = hull_json_get_string(doc, "config", NULL);
    size_t blen = b64 ? strlen(b64) : 0;
    _cleanup_free_ uint8_t *bytes = xmalloc0(HULL_BASE64_DECODED_MAX(blen));
    ssize_t n = b64 ? hull_base64_decode(b64, blen, bytes, false) : -EINVAL;
    if (n < 0)
        return hull_error_setx(err, EINVAL, "sandbox record: bad config");
    Runtime__V1__PodSandboxConfig *cfg =
        runtime__v1__pod_sandbox_config__unpack(NULL, (size_t)n, bytes);
    if (cfg == NULL || cfg->metadata == NULL) {
        if (cfg)
            runtime__v1__pod_sandbox_config__free_unpacked(cfg, NULL);
        return hull_error_setx(err, EINVAL, "sandbox record: undecodable config");
    }
    struct sandbox *sb = sandbox_new(svc);
    memcpy(sb->id, id, 65);
    sb->config = cfg;
    const char *st = hull_json_get_string(doc, "state", "notready");
    sb->state = strcmp(st, "ready") == 0      ? SANDBOX_STATE_READY
                : strcmp(st, "creating") == 0 ? SANDBOX_STATE_CREATING
                                              : SANDBOX_STATE_NOTREADY;
    sb->created_at = hull_json_get_int(doc, "created_at", 0);
    sb->runtime_handler = xstrdup(hull_json_get_string(doc, "runtime_handler", ""));
    sb->host_net = hull_json_get_bool(doc, "host_network", false);
    sb->host_pid = hull_json_get_bool(doc, "host_pid", false);
    sb->host_ipc = hull_json_get_bool(doc, "host_ipc", false);
    sb->shared_pid = hull_json_get_bool(doc, "shared_pid", false);
    sb->netns = opt_str(doc, "netns");
    sb->ipcns = opt_str(doc, "ipcns");
    sb->utsns = opt_str(doc, "utsns");
    sb->pidns = opt_str(doc, "pidns");
    sb->userns = opt_str(doc, "userns");
    sb->cgroup_parent = xstrdup(hull_json_get_string(doc, "cgroup_parent", ""));
    sb->cgroup_created = hull_json_get_bool(doc, "cgroup_created", false);
    sb->hostname = xstrdup(hull_json_get_string(doc, "hostname", ""));
    sb->shm_mounted = hull_json_get_bool(doc, "shm_mounted", false);
    sb->net_attempted = hull_json_get_bool(doc, "net_attempted", false);
    sb->net_done = hull_json_get_bool(doc, "net_done", false);
    sb->removing = hull_json_get_bool(doc, "removing", false);
    sb->del_failures = (int)hull_json_get_int(doc, "del_failures", 0);
    sb->network_name = opt_str(doc, "network_name");
    yajl_val ips = hull_json_get(doc, "ips");
    if (ips && YAJL_IS_ARRAY(ips)) {
        sb->ips = xmalloc0((ips->u.array.len + 1) * sizeof(char *));
        for (size_t i = 0; i < ips->u.array.len; i++)
            if (YAJL_IS_STRING(ips->u.array.values[i]))
                sb->ips[sb->n_ips++] = xstrdup(YAJL_GET_STRING(ips->u.array.values[i]));
    }
    sb->pause_pid = (pid_t)hull_json_get_int(doc, "pause_pid", 0);
    sb->pause_start = (uint64_t)hull_json_get_int(doc, "pause_start", 0);
    sandbox_set_paths(svc, sb);
    *out = sb;
    return 0;
}

/* ---- snapshots for Status/List ------------------------------------------------------------ */

void sandbox_snapshot_get(struct sandbox *sb, struct sandbox_snapshot *s)
{
    pthread_mutex_lock(&sb->lock);
    check_infra_locked(sb);
    s->state = sb->state;
    s->n_ips = sb->net_done ? 0 : sb->n_ips;
    s->ips = xmalloc0((s->n_ips + 1) * sizeof(char *));
    for (size_t i = 0; i < s->n_ips; i++)
        s->ips[i] = xstrdup(sb->ips[i]);
    s->pause_pid = sb->pause_pid;
    s->net_done = sb->net_done;
    s->network_name = sb->network_name ? xstrdup(sb->network_name) : NULL;
    pthread_mutex_unlock(&sb->lock);
}

void sandbox_snapshot_free(struct sandbox_snapshot *s)
{
    hull_strv_free_n(s->ips, s->n_ips);
    free(s->network_name);
}

struct cni_manager *sandbox_cni(struct hull_server *srv)
{
    return sandbox_svc(srv)->cni;
}
