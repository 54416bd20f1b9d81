/* Pod sandboxes: creation, stop, removal, persistence and recovery.
 *
 * Locks: svc->lock (rwlock) guards the index; sb->lock guards a sandbox's mutable fields.
 * Long operations (CNI plugins, container hooks) run with no lock held: a sandbox being
 * stopped or removed is marked `busy` and others wait on sb->cond. */
#include "server/container.h" /* events_publish */
#include "server/sandbox.h"
#include "server/sandbox_int.h"
#include "server/userns.h"
#include "server/rpc.h"
#include "server/recover.h"
#include "server/sysctl.h"

#include "cni/cni.h"
#include "common/cgroup_systemd.h"
#include "common/crashpoint.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define STORE_KIND   "sandboxes"
#define SHM_SIZE_DEF (64LL * 1024 * 1024)

struct sandbox_service {
    pthread_rwlock_t lock; /* the index */
    struct sandbox **items;
    size_t n;
    struct cni_manager *cni;
    char *root, *state_dir, *ns_dir, *pause_path, *default_cgroup_parent;
    bool systemd; /* systemd cgroup driver: pod cgroup parents are slices */
    struct hull_store *store;
    const struct hull_config *config;
    pthread_mutex_t hooks_lock;
    struct sandbox_container_hooks hooks;
    bool have_hooks;
    struct sandbox_infra *infra;
};

struct sandbox {
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sandbox_service *svc;

    /* immutable after creation */
    char id[65];
    Runtime__V1__PodSandboxConfig *config;
    char *runtime_handler;
    int64_t created_at;
    bool host_net, host_pid, host_ipc, shared_pid;
    char *netns, *ipcns, *utsns, *pidns; /* NULL when not used */
    char *userns;                        /* pinned pod user namespace, NULL when not used */
    char *cgroup_parent;
    char *hostname;
    char *dir, *run_dir;
    char *hostname_path, *resolv_path, *hosts_path, *shm_path;

    /* mutable, under lock */
    enum sandbox_state state;
    bool busy;    /* a stop/remove is running */
    int holds;    /* container operations in progress */
    bool removed; /* out of the index */
    bool cgroup_created;
    bool shm_mounted;
    bool net_attempted; /* CNI ADD may have run: DEL is owed (persisted from the start) */
    bool add_started;   /* in memory: this process started the ADD */
    bool net_done;      /* torn down */
    bool removing;      /* RemovePodSandbox began: a restart finishes it (persisted) */
    int del_failures;   /* CNI DELs that failed in a row (persisted) */
    char *network_name;
    char **ips;
    size_t n_ips;
    pid_t pause_pid;
    uint64_t pause_start;
    bool pause_child; /* pause_pid is this hulld's own, unreaped child (spawned here) */
};

static const char *const state_names[] = {"creating", "ready", "notready"};

/* ---- small helpers ------------------------------------------------------------------------ */

static struct sandbox_service *svc_of(struct hull_server *srv)
{
    return srv->sandboxes;
}

/* ---- object lifetime ---------------------------------------------------------------------- */

/* The cgroup parent of a pod that names none: <parent>/pod-<id>, or with the systemd driver
 * the slice <stem>-pod<id>.slice (below <stem>.slice). */
static char *default_pod_cgroup(const struct sandbox_service *svc, const char *id)
{
    if (svc->systemd)
        return xasprintf("%s-pod%s.slice", svc->default_cgroup_parent, id);
    return xasprintf("%s/pod-%s", svc->default_cgroup_parent, id);
}

static struct sandbox *sandbox_new(struct sandbox_service *svc)
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
    struct sandbox_service *svc = svc_of(srv);
    pthread_mutex_lock(&svc->hooks_lock);
    if (h) {
        svc->hooks = *h;
        svc->have_hooks = true;
    } else {
        svc->have_hooks = false;
    }
    pthread_mutex_unlock(&svc->hooks_lock);
}

static bool get_hooks(struct sandbox_service *svc, struct sandbox_container_hooks *out)
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
    struct sandbox_service *svc = svc_of(srv);
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
    struct sandbox_service *svc = svc_of(srv);
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
    struct sandbox_service *svc = svc_of(srv);
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

static void index_remove(struct sandbox_service *svc, struct sandbox *sb)
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
static int persist_locked(struct sandbox *sb, hull_error_t *err)
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
    /* being created or removed: no fsync (store_save_intent); ready / not ready is durable */
    if (sb->state == SANDBOX_STATE_CREATING || sb->removing)
        return store_save_intent(sb->svc->store, STORE_KIND, sb->id, text, len, err);
    return store_save(sb->svc->store, STORE_KIND, sb->id, text, len, err);
}

static int persist(struct sandbox *sb, hull_error_t *err)
{
    pthread_mutex_lock(&sb->lock);
    int r = persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    return r;
}

static char *opt_str(yajl_val doc, const char *key)
{
    const char *s = hull_json_get_string(doc, key, "");
    return *s ? xstrdup(s) : NULL;
}

static void set_paths(struct sandbox_service *svc, struct sandbox *sb)
{
    sb->dir = xasprintf("%s/sandboxes/%s", svc->root, sb->id);
    sb->run_dir = xasprintf("%s/sandboxes/%s", svc->state_dir, sb->id);
    sb->hostname_path = xasprintf("%s/hostname", sb->dir);
    sb->resolv_path = xasprintf("%s/resolv.conf", sb->dir);
    sb->hosts_path = xasprintf("%s/hosts", sb->dir);
    sb->shm_path = sb->host_ipc ? xstrdup("/dev/shm") : xasprintf("%s/shm", sb->run_dir);
}

static int sandbox_from_record(struct sandbox_service *svc, const char *id, yajl_val doc,
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
    set_paths(svc, sb);
    *out = sb;
    return 0;
}

/* ---- resource teardown -------------------------------------------------------------------- */

struct run_params {
    struct cni_sysctl *sysctls;
    size_t n_sysctls;
    struct cni_port_mapping *ports;
    size_t n_ports;
    struct cni_bandwidth bw;
    bool have_bw;
    bool userns; /* a pod user namespace with these mappings */
    struct userns_map uid_map, gid_map;
};

static int network_params(const Runtime__V1__PodSandboxConfig *c, struct run_params *p,
                          hull_error_t *err);

/* The attachment of the pod to its network with every runtime config of its pod config (port
 * mappings, bandwidth, DNS, pod CIDR): ADD and every DEL pass the same, as libcni's callers
 * do.  a points into sb, p and cidr. */
static void fill_attachment(struct sandbox *sb, const struct run_params *p, const char *cidr,
                            struct cni_attachment *a)
{
    memset(a, 0, sizeof(*a));
    a->container_id = sb->id;
    a->netns = sb->netns && cni_ns_is_pinned(sb->netns) ? sb->netns : "";
    a->ifname = "eth0";
    a->pod_name = sb->config->metadata->name;
    a->pod_namespace = sb->config->metadata->namespace_;
    a->pod_uid = sb->config->metadata->uid;
    a->port_mappings = p->ports;
    a->n_port_mappings = p->n_ports;
    a->bandwidth = p->have_bw ? &p->bw : NULL;
    a->pod_cidr = cidr;
    const Runtime__V1__DNSConfig *dns = sb->config->dns_config;
    if (dns) {
        a->dns_servers = (const char *const *)dns->servers;
        a->n_dns_servers = dns->n_servers;
        a->dns_searches = (const char *const *)dns->searches;
        a->n_dns_searches = dns->n_searches;
        a->dns_options = (const char *const *)dns->options;
        a->n_dns_options = dns->n_options;
    }
}

/* Stops the pod's processes and releases its network and namespaces.  With `force` (rollback,
 * recovery of half-created pods) errors are logged and ignored. */
static int release_runtime(struct sandbox *sb, bool force, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    pthread_mutex_lock(&sb->lock);
    pid_t pid = sb->pause_pid;
    uint64_t start = sb->pause_start;
    bool need_del = !sb->host_net && sb->net_attempted && !sb->net_done;
    _cleanup_free_ char *netname = sb->network_name ? xstrdup(sb->network_name) : NULL;
    pthread_mutex_unlock(&sb->lock);

    if (pid > 0) {
        sandbox_kill_pause(pid, start);
        pthread_mutex_lock(&sb->lock);
        sb->pause_pid = 0;
        sb->pause_start = 0;
        sb->pause_child = false;
        pthread_mutex_unlock(&sb->lock);
    }
    if (need_del) {
        /* the config was validated when the pod was created (and recorded) */
        struct run_params p = {0};
        _cleanup_error_ hull_error_t perr = NULL;
        if (network_params(sb->config, &p, &perr) < 0)
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&perr));
        _cleanup_free_ char *cidr = cni_manager_pod_cidr(svc->cni);
        struct cni_attachment a;
        fill_attachment(sb, &p, cidr, &a);
        struct cni_network *net = NULL;
        _cleanup_error_ hull_error_t nerr = NULL;
        if (cni_manager_network(svc->cni, &net, &nerr) < 0)
            net = NULL; /* DEL then relies on the cache */
        _cleanup_error_ hull_error_t derr = NULL;
        int r = cni_del(cni_manager_exec(svc->cni), net, netname, &a, &derr);
        cni_network_unref(net);
        free(p.ports);
        if (r < 0 && !force) {
            /* kubelet retries StopPodSandbox/RemovePodSandbox (UNAVAILABLE); after
             * cni_del_max_failures failures in a row the pod is let go, as containerd and
             * CRI-O let go of pods whose teardown cannot succeed (docs: README, CNI) */
            long long max = svc->config ? svc->config->cni_del_max_failures : 0;
            pthread_mutex_lock(&sb->lock);
            int failures = ++sb->del_failures;
            pthread_mutex_unlock(&sb->lock);
            if (max <= 0 || failures < max) {
                _cleanup_free_ char *of = max > 0 ? xasprintf(" of %lld", max) : xstrdup("");
                return hull_error_setx(err, EAGAIN,
                                       "tear down network of pod sandbox \"%s\" (attempt %d%s): %s",
                                       sb->id, failures, of, hull_error_msg(&derr));
            }
            log_error("sandbox %s: giving up on the network teardown after %d failed attempts "
                      "(cni_del_max_failures); its CNI cache entry stays in %s/cni: %s",
                      sb->id, failures, svc->root, hull_error_msg(&derr));
        } else if (r < 0) {
            log_warn("sandbox %s: network teardown: %s", sb->id, hull_error_msg(&derr));
        }
        pthread_mutex_lock(&sb->lock);
        sb->net_done = true;
        pthread_mutex_unlock(&sb->lock);
    }
    const char *pins[] = {sb->pidns, sb->netns, sb->ipcns, sb->utsns, sb->userns};
    for (size_t i = 0; i < 5; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (pins[i] && cni_ns_remove(pins[i], &e) < 0) {
            if (!force) {
                hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
                return -hull_error_status(&e);
            }
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    if (!sb->host_ipc) {
        if (umount2(sb->shm_path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
            if (!force)
                return hull_error_set(err, errno, "unmount `%s`", sb->shm_path);
            log_warn("sandbox %s: unmount shm: %s", sb->id, strerror(errno));
        }
        pthread_mutex_lock(&sb->lock);
        sb->shm_mounted = false;
        pthread_mutex_unlock(&sb->lock);
    }
    return 0;
}

/* Removes the pod's files, cgroup and record (after release_runtime). */
static int release_storage(struct sandbox *sb, bool force, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    if (sb->cgroup_created) {
        _cleanup_error_ hull_error_t e = NULL;
        int r = hull_systemd_path_form(sb->cgroup_parent)
                    ? sandbox_slice_remove(sb->cgroup_parent, &e)
                    : sandbox_cgroup_remove(NULL, 0, sb->cgroup_parent, &e);
        if (r < 0)
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        /* and from the hierarchies the runtime used too (the v2 one of a hybrid host), with
         * what is left below it; a rollback also kills what still runs there */
        recover_cgroup_remove_all(sb->cgroup_parent, force);
    } else if (sb->cgroup_parent && *sb->cgroup_parent) {
        /* kubelet's pod cgroup stays (kubelet removes it), the infra leaf hull made goes */
        sandbox_cgroup_remove_infra(NULL, 0, sb->cgroup_parent);
    }
    const char *dirs[] = {sb->run_dir, sb->dir};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_rm_rf(dirs[i], &e) < 0) {
            if (!force) {
                hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
                return hull_error_wrap(err, "remove pod sandbox \"%s\"", sb->id);
            }
            log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    _cleanup_error_ hull_error_t e = NULL;
    if (store_remove(svc->store, STORE_KIND, sb->id, &e) < 0) {
        if (!force) {
            hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
            return -hull_error_status(&e);
        }
        log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
    }
    return 0;
}

/* ---- RunPodSandbox ------------------------------------------------------------------------ */

static bool text_ok(const char *s, size_t max)
{
    if (s == NULL)
        return true;
    if (strlen(s) > max)
        return false;
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static bool hostname_ok(const char *h)
{
    if (h == NULL || *h == '\0' || strlen(h) > 64)
        return false;
    for (const char *c = h; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '/')
            return false;
    return true;
}

static const char *proto_name(Runtime__V1__Protocol p)
{
    switch (p) {
    case RUNTIME__V1__PROTOCOL__UDP:
        return "udp";
    case RUNTIME__V1__PROTOCOL__SCTP:
        return "sctp";
    default:
        return "tcp";
    }
}

/* "10M", "1Gi", "500k" → bits per second (kubelet's bandwidth annotations). */
static uint64_t parse_quantity(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return 0;
    static const struct {
        const char *suf;
        double mul;
    } sufs[] = {{"Ki", 1024.0},
                {"Mi", 1024.0 * 1024},
                {"Gi", 1024.0 * 1024 * 1024},
                {"Ti", 1024.0 * 1024 * 1024 * 1024},
                {"k", 1e3},
                {"K", 1e3},
                {"M", 1e6},
                {"G", 1e9},
                {"T", 1e12},
                {"", 1}};
    for (size_t i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
        if (strcmp(end, sufs[i].suf) == 0)
            return (uint64_t)(v * sufs[i].mul);
    return 0;
}

static const char *annotation(const Runtime__V1__PodSandboxConfig *c, const char *key)
{
    for (size_t i = 0; i < c->n_annotations; i++)
        if (strcmp(c->annotations[i]->key, key) == 0)
            return c->annotations[i]->value;
    return NULL;
}

/* A file of the pod that containers get bind-mounted (hosts, resolv.conf, hostname): in a pod
 * user namespace it belongs to the pod's mapped root, so that container root owns it.  A power
 * loss ends the pod's containers and kubelet makes a new sandbox then, so no fsync. */
static int write_file(struct sandbox *sb, const char *path, const char *text, hull_error_t *err)
{
    int r = hull_write_file_atomic_flags(path, text, strlen(text), 0644, HULL_ATOMIC_NOSYNC, err);
    uint32_t uid, gid;
    if (r == 0 && sandbox_userns_ids(sb, &uid, &gid) &&
        fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        r = hull_error_set(err, errno, "chown `%s`", path);
    return r;
}

static int copy_host_file(struct sandbox *sb, const char *src, const char *dst,
                          const char *fallback, hull_error_t *err)
{
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file(src, 1024 * 1024, &buf, NULL, NULL) < 0)
        return write_file(sb, dst, fallback, err);
    return write_file(sb, dst, buf, err);
}

/* A per-pod directory: 0700 in a 0711 parent of hulld's, owned by host root, or by the pod's
 * mapped root in a pod user namespace (the runtime reaches the pod's files as that user; nobody
 * else can enter).  hulld's configured root and state directories are never changed. */
static int pod_dir(struct sandbox *sb, const char *dir, hull_error_t *err)
{
    _cleanup_free_ char *parent = xstrdup(dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    int r = hull_mkdir_p(parent, 0711, err);
    if (r < 0)
        return r;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return hull_error_set(err, errno, "mkdir `%s`", dir);
    uint32_t uid = 0, gid = 0;
    sandbox_userns_ids(sb, &uid, &gid);
    if (fchownat(AT_FDCWD, dir, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 || chmod(dir, 0700) < 0)
        return hull_error_set(err, errno, "own `%s`", dir);
    return 0;
}

static int write_hosts(struct sandbox *sb, hull_error_t *err)
{
    if (sb->host_net)
        return copy_host_file(sb, "/etc/hosts", sb->hosts_path, "127.0.0.1\tlocalhost\n", err);
    _cleanup_free_ char *extra = NULL;
    pthread_mutex_lock(&sb->lock);
    for (size_t i = 0; i < sb->n_ips; i++) {
        char *n = xasprintf("%s%s\t%s\n", extra ? extra : "", sb->ips[i], sb->hostname);
        free(extra);
        extra = n;
    }
    pthread_mutex_unlock(&sb->lock);
    _cleanup_free_ char *text = xasprintf("127.0.0.1\tlocalhost\n"
                                          "::1\tlocalhost ip6-localhost ip6-loopback\n"
                                          "fe00::0\tip6-localnet\n"
                                          "fe00::0\tip6-mcastprefix\n"
                                          "fe00::1\tip6-allnodes\n"
                                          "fe00::2\tip6-allrouters\n"
                                          "%s",
                                          extra ? extra : "");
    return write_file(sb, sb->hosts_path, text, err);
}

/* The pod's port mappings and bandwidth (the CNI capability arguments) from its config: at
 * RunPodSandbox, and again for every DEL, so a DEL without a cached result (a crash before
 * the cache was written) still names the host ports portmap must release. */
static int network_params(const Runtime__V1__PodSandboxConfig *c, struct run_params *p,
                          hull_error_t *err)
{
    if (c->n_port_mappings) {
        p->ports = xmalloc0(c->n_port_mappings * sizeof(*p->ports));
        for (size_t i = 0; i < c->n_port_mappings; i++) {
            const Runtime__V1__PortMapping *pm = c->port_mappings[i];
            if (pm->container_port <= 0 || pm->container_port > 65535 || pm->host_port < 0 ||
                pm->host_port > 65535)
                return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid port mapping %d:%d",
                                       pm->host_port, pm->container_port);
            if (pm->host_ip && *pm->host_ip) {
                unsigned char buf[16];
                if (inet_pton(AF_INET, pm->host_ip, buf) != 1 &&
                    inet_pton(AF_INET6, pm->host_ip, buf) != 1)
                    return hull_error_setx(err, EINVAL,
                                           "RunPodSandbox: invalid port mapping host_ip \"%s\"",
                                           pm->host_ip);
            }
            if (pm->host_port == 0)
                continue; /* nothing to publish */
            p->ports[p->n_ports++] = (struct cni_port_mapping){
                .host_port = pm->host_port,
                .container_port = pm->container_port,
                .protocol = proto_name(pm->protocol),
                .host_ip = pm->host_ip,
            };
        }
    }
    const char *in = annotation(c, "kubernetes.io/ingress-bandwidth");
    const char *out = annotation(c, "kubernetes.io/egress-bandwidth");
    if (in || out) {
        p->bw.ingress_rate = parse_quantity(in);
        p->bw.egress_rate = parse_quantity(out);
        if ((in && !p->bw.ingress_rate) || (out && !p->bw.egress_rate))
            return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid bandwidth annotation");
        p->bw.ingress_burst = p->bw.egress_burst = 4294967295ULL; /* CRI-O's default burst */
        p->have_bw = true;
    }
    return 0;
}

static int validate_request(struct sandbox_service *svc, const Runtime__V1__PodSandboxConfig *c,
                            const char *handler, struct sandbox *sb, struct run_params *p,
                            hull_error_t *err)
{
    if (c == NULL || c->metadata == NULL)
        return hull_error_setx(err, EINVAL, "RunPodSandbox: config.metadata is required");
    const Runtime__V1__PodSandboxMetadata *m = c->metadata;
    if (m->name == NULL || *m->name == '\0')
        return hull_error_setx(err, EINVAL, "RunPodSandbox: metadata.name is required");
    if (!text_ok(m->name, 253) || !text_ok(m->namespace_, 253) || !text_ok(m->uid, 253))
        return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid metadata");
    if (strpbrk(m->name, ";=") || strpbrk(m->namespace_, ";=") || strpbrk(m->uid, ";="))
        return hull_error_setx(err, EINVAL, "RunPodSandbox: metadata must not contain ';' or '='");
    if (config_runtime_path(svc->config, handler) == NULL)
        return hull_error_setx(err, EINVAL, "RunPodSandbox: no runtime handler named \"%s\"",
                               handler);
    sb->runtime_handler = xstrdup(*handler ? handler : svc->config->default_runtime);

    const Runtime__V1__LinuxPodSandboxConfig *lx = c->linux;
    const Runtime__V1__NamespaceOption *ns = NULL;
    if (lx && lx->security_context)
        ns = lx->security_context->namespace_options;
    if (ns) {
        sb->host_net = ns->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
        sb->host_pid = ns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE;
        sb->host_ipc = ns->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE;
        sb->shared_pid = ns->pid == RUNTIME__V1__NAMESPACE_MODE__POD;
        int r = userns_from_cri(ns, &p->userns, &p->uid_map, &p->gid_map, err);
        if (r < 0)
            return hull_error_wrap(err, "RunPodSandbox");
        if (p->userns && (sb->host_net || sb->host_pid || sb->host_ipc))
            return hull_error_setx(err, EINVAL,
                                   "RunPodSandbox: a pod user namespace cannot be combined with "
                                   "the host's network, pid or ipc namespace");
    } else {
        sb->shared_pid = true; /* proto default: POD */
    }

    const char *hn = c->hostname;
    char hostbuf[HOST_NAME_MAX + 1] = "";
    if (hn == NULL || *hn == '\0') {
        if (sb->host_net && gethostname(hostbuf, sizeof(hostbuf) - 1) == 0)
            hn = hostbuf;
        else
            hn = m->name;
    }
    if (!hostname_ok(hn)) {
        if (c->hostname && *c->hostname)
            return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid hostname \"%s\"", hn);
        hn = "pod";
    }
    sb->hostname = xstrndup(hn, 63);

    if (lx && lx->cgroup_parent && *lx->cgroup_parent) {
        if (svc->systemd && !hull_systemd_slice_valid(lx->cgroup_parent))
            return hull_error_setx(err, EINVAL,
                                   "RunPodSandbox: cgroup_parent \"%s\" is not a systemd slice "
                                   "(\"kubepods-burstable-pod<uid>.slice\"; the systemd cgroup "
                                   "driver is in use)",
                                   lx->cgroup_parent);
        if (!svc->systemd && !sandbox_cgroup_path_ok(lx->cgroup_parent))
            return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid cgroup_parent \"%s\"",
                                   lx->cgroup_parent);
        sb->cgroup_parent = xstrdup(lx->cgroup_parent);
    } else {
        sb->cgroup_parent = default_pod_cgroup(svc, sb->id);
        if (svc->systemd ? !hull_systemd_slice_valid(sb->cgroup_parent)
                         : !sandbox_cgroup_path_ok(sb->cgroup_parent))
            return hull_error_setx(err, EINVAL, "invalid cgroup_parent configuration \"%s\"",
                                   svc->default_cgroup_parent);
    }

    if (lx && lx->n_sysctls) {
        p->sysctls = xmalloc0(lx->n_sysctls * sizeof(*p->sysctls));
        for (size_t i = 0; i < lx->n_sysctls; i++) {
            const char *k = lx->sysctls[i]->key, *v = lx->sysctls[i]->value;
            int r = cri_sysctl_validate(k, v, sb->host_net, sb->host_ipc, err);
            if (r < 0)
                return hull_error_wrap(err, "RunPodSandbox");
            p->sysctls[p->n_sysctls++] = (struct cni_sysctl){k, v};
        }
    }

    const Runtime__V1__DNSConfig *dns = c->dns_config;
    if (dns) {
        char **lists[] = {dns->servers, dns->searches, dns->options};
        size_t ns_[] = {dns->n_servers, dns->n_searches, dns->n_options};
        for (size_t l = 0; l < 3; l++)
            for (size_t i = 0; i < ns_[l]; i++)
                if (!text_ok(lists[l][i], 253) || strchr(lists[l][i], ' ') || *lists[l][i] == '\0')
                    return hull_error_setx(err, EINVAL, "RunPodSandbox: invalid DNS entry \"%s\"",
                                           lists[l][i]);
    }

    return network_params(c, p, err);
}

/* io.hull.shm-size sizes a host tmpfs: honoured only for the runtime handlers an administrator
 * listed it for (allowed_annotations), as CRI-O's allowed_annotations; ignored otherwise. */
static int64_t shm_size(const struct sandbox *sb)
{
    const char *v = annotation(sb->config, "io.hull.shm-size");
    if (v && !config_annotation_allowed(sb->svc->config, sb->runtime_handler, "io.hull.shm-size")) {
        log_warn("sandbox %s: annotation io.hull.shm-size ignored: not allowed for runtime "
                 "handler \"%s\" (allowed_annotations)",
                 sb->id, sb->runtime_handler);
        v = NULL;
    }
    if (v) {
        uint64_t q = parse_quantity(v);
        if (q > 0 && q < (1ULL << 40))
            return (int64_t)q;
    }
    return SHM_SIZE_DEF;
}

static int setup_network(struct sandbox *sb, const struct run_params *p, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    struct cni_network *net = NULL;
    int r = cni_manager_network(svc->cni, &net, err);
    if (r < 0) {
        /* no network: FAILED_PRECONDITION */
        _cleanup_free_ char *msg = xstrdup(hull_error_msg(err));
        hull_error_free(err);
        return hull_error_setx(err, EBUSY, "network not ready: %s", msg);
    }
    /* the record says net_attempted since creation; after a crash, DEL finds the network
     * by its cache entry */
    pthread_mutex_lock(&sb->lock);
    sb->add_started = true;
    free(sb->network_name);
    sb->network_name = xstrdup(cni_network_name(net));
    pthread_mutex_unlock(&sb->lock);
    _cleanup_free_ char *cidr = cni_manager_pod_cidr(svc->cni);
    struct cni_attachment a;
    fill_attachment(sb, p, cidr, &a);
    struct cni_result *res = NULL;
    r = cni_add(cni_manager_exec(svc->cni), net, &a, &res, err);
    cni_network_unref(net);
    if (r < 0) {
        /* cni_add already ran DEL: nothing more is owed */
        pthread_mutex_lock(&sb->lock);
        sb->net_done = true;
        pthread_mutex_unlock(&sb->lock);
        return r;
    }
    pthread_mutex_lock(&sb->lock);
    hull_strv_free_n(sb->ips, sb->n_ips);
    sb->ips = hull_steal(res->ips);
    sb->n_ips = res->n_ips;
    res->n_ips = 0;
    pthread_mutex_unlock(&sb->lock);
    cni_result_free(res);
    return 0;
}

static int create_resources(struct sandbox *sb, const struct run_params *p, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    int r = 0;
    if (sb->userns && (r = userns_check_reachable(svc->root, svc->state_dir, err)) < 0)
        return r;
    r = pod_dir(sb, sb->dir, err);
    if (r < 0)
        return r;
    r = pod_dir(sb, sb->run_dir, err);
    if (r < 0)
        return r;

    /* the record already says whether the cgroup is ours (sandbox_run checked before) */
    bool created = false;
    const Runtime__V1__LinuxPodSandboxConfig *lx = sb->config->linux;
    bool slice = hull_systemd_path_form(sb->cgroup_parent);
    if (slice)
        r = sandbox_slice_create(sb->cgroup_parent, lx ? lx->resources : NULL, &created, err);
    else
        r = sandbox_cgroup_create(NULL, 0, sb->cgroup_parent, &created, err);
    if (r < 0)
        return hull_error_wrap(err, "cgroup parent");
    /* pod-level resources (kubelet's pod overhead + limits) on the pod cgroup (a slice gets
     * them as properties when it is made) */
    if (!slice && lx && lx->resources) {
        r = sandbox_cgroup_apply_resources(sb->cgroup_parent, lx->resources, err);
        if (r < 0)
            return hull_error_wrap(err, "pod resources");
    }
    if (created != sb->cgroup_created) {
        pthread_mutex_lock(&sb->lock);
        sb->cgroup_created = created;
        r = persist_locked(sb, err);
        pthread_mutex_unlock(&sb->lock);
        if (r < 0)
            return r;
    }
    hull_crash_point("runpod:after-cgroup");

    if (sb->userns) {
        _cleanup_free_ char *dup = xstrdup(sb->userns);
        r = hull_mkdir_p(dirname(dup), 0700, err);
        if (r == 0)
            r = userns_pin(sb->userns, &p->uid_map, &p->gid_map, err);
        if (r < 0)
            return hull_error_wrap(err, "pod user namespace");
    }

    struct cni_ns_request nr = {
        .flags = (sb->netns ? CLONE_NEWNET : 0) | (sb->ipcns ? CLONE_NEWIPC : 0) |
                 (sb->utsns ? CLONE_NEWUTS : 0),
        .net_path = sb->netns,
        .ipc_path = sb->ipcns,
        .uts_path = sb->utsns,
        .user_path = sb->userns,
        .hostname = sb->hostname,
        .sysctls = p->sysctls,
        .n_sysctls = p->n_sysctls,
    };
    r = cni_ns_create(&nr, err);
    if (r < 0) {
        /* a sysctl the kernel refuses is the request's fault */
        if (strstr(hull_error_msg(err), "sysctl")) {
            _cleanup_free_ char *msg = xstrdup(hull_error_msg(err));
            hull_error_free(err);
            return hull_error_setx(err, EINVAL, "RunPodSandbox: %s", msg);
        }
        return hull_error_wrap(err, "create namespaces");
    }
    hull_crash_point("runpod:after-ns");

    if (!sb->host_ipc) {
        r = hull_mkdir_p(sb->shm_path, 0755, err);
        if (r < 0)
            return r;
        uint32_t uid = 0, gid = 0;
        sandbox_userns_ids(sb, &uid, &gid);
        _cleanup_free_ char *opts =
            xasprintf("mode=1777,size=%lld,uid=%u,gid=%u", (long long)shm_size(sb), uid, gid);
        if (mount("shm", sb->shm_path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
            return hull_error_set(err, errno, "mount shm on `%s`", sb->shm_path);
        pthread_mutex_lock(&sb->lock);
        sb->shm_mounted = true;
        pthread_mutex_unlock(&sb->lock);
    }
    hull_crash_point("runpod:after-shm");

    _cleanup_free_ char *hn = xasprintf("%s\n", sb->hostname);
    r = write_file(sb, sb->hostname_path, hn, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *resolv = sandbox_resolv_conf_text(sb->config->dns_config);
    r = resolv ? write_file(sb, sb->resolv_path, resolv, err)
               : copy_host_file(sb, "/etc/resolv.conf", sb->resolv_path, "", err);
    if (r < 0)
        return r;

    if (sb->shared_pid) {
        pid_t pid = 0;
        r = sandbox_spawn_pause(svc->infra, sb->netns, sb->ipcns, sb->utsns, sb->userns, &pid, err);
        if (r < 0)
            return r;
        pthread_mutex_lock(&sb->lock);
        sb->pause_pid = pid;
        sb->pause_start = sandbox_proc_start_time(pid);
        sb->pause_child = true;
        pthread_mutex_unlock(&sb->lock);
        if (hull_systemd_path_form(sb->cgroup_parent)) {
            _cleanup_free_ char *unit = xasprintf("hull-%s.scope", sb->id);
            r = sandbox_slice_add_pid(sb->cgroup_parent, unit, pid, err);
        } else {
            r = sandbox_cgroup_add_pid(NULL, 0, sb->cgroup_parent, pid, err);
        }
        if (r < 0)
            return hull_error_wrap(err, "move infra process into the pod cgroup");
        _cleanup_free_ char *src = xasprintf("/proc/%d/ns/pid", (int)pid);
        _cleanup_free_ char *dup = xstrdup(sb->pidns);
        r = hull_mkdir_p(dirname(dup), 0700, err);
        if (r < 0)
            return r;
        int fd = open(sb->pidns, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0)
            return hull_error_set(err, errno, "create `%s`", sb->pidns);
        close(fd);
        if (mount(src, sb->pidns, NULL, MS_BIND, NULL) < 0)
            return hull_error_set(err, errno, "pin pid namespace on `%s`", sb->pidns);
        /* record the pid now: after a crash, recovery must find and kill it */
        pthread_mutex_lock(&sb->lock);
        r = persist_locked(sb, err);
        pthread_mutex_unlock(&sb->lock);
        if (r < 0)
            return r;
    }

    if (!sb->host_net) {
        r = setup_network(sb, p, err);
        if (r < 0)
            return r;
        hull_crash_point("runpod:after-network");
    }
    return write_hosts(sb, err);
}

int sandbox_run(struct hull_server *srv, const Runtime__V1__RunPodSandboxRequest *req,
                char **id_out, hull_error_t *err)
{
    struct sandbox_service *svc = svc_of(srv);
    _cleanup_sandbox_ struct sandbox *sb = sandbox_new(svc);
    hull_id_generate(sb->id);
    sb->created_at = hull_now_ns();
    sb->state = SANDBOX_STATE_CREATING;
    struct run_params p = {0};
    int r = validate_request(svc, req->config, req->runtime_handler ? req->runtime_handler : "", sb,
                             &p, err);
    if (r < 0) {
        free(p.sysctls);
        free(p.ports);
        return r;
    }
    /* own a copy of the request's config */
    size_t plen = runtime__v1__pod_sandbox_config__get_packed_size(req->config);
    _cleanup_free_ uint8_t *packed = xmalloc0(plen + 1);
    runtime__v1__pod_sandbox_config__pack(req->config, packed);
    sb->config = runtime__v1__pod_sandbox_config__unpack(NULL, plen, packed);
    if (sb->config == NULL)
        abort();
    /* the run params point into the request; repoint sysctls into our copy is unnecessary:
     * the request outlives this call */
    if (!sb->host_net) {
        sb->netns = xasprintf("%s/net/%s", svc->ns_dir, sb->id);
        sb->utsns = xasprintf("%s/uts/%s", svc->ns_dir, sb->id);
    }
    if (!sb->host_ipc)
        sb->ipcns = xasprintf("%s/ipc/%s", svc->ns_dir, sb->id);
    if (sb->shared_pid)
        sb->pidns = xasprintf("%s/pid/%s", svc->ns_dir, sb->id);
    if (p.userns)
        sb->userns = xasprintf("%s/user/%s", svc->ns_dir, sb->id);
    set_paths(svc, sb);

    const Runtime__V1__PodSandboxMetadata *m = sb->config->metadata;
    pthread_rwlock_wrlock(&svc->lock);
    for (size_t i = 0; i < svc->n; i++) {
        const Runtime__V1__PodSandboxMetadata *o = svc->items[i]->config->metadata;
        if (strcmp(o->name, m->name) == 0 && strcmp(o->namespace_, m->namespace_) == 0 &&
            o->attempt == m->attempt) {
            char other[13];
            snprintf(other, sizeof(other), "%.12s", svc->items[i]->id);
            pthread_rwlock_unlock(&svc->lock);
            free(p.sysctls);
            free(p.ports);
            return hull_error_setx(err, EEXIST,
                                   "pod sandbox with name \"%s\" in namespace \"%s\" attempt %u "
                                   "already exists (%s)",
                                   m->name, m->namespace_, m->attempt, other);
        }
    }
    svc->items = xrealloc(svc->items, (svc->n + 1) * sizeof(*svc->items));
    svc->items[svc->n++] = sandbox_ref(sb);
    pthread_rwlock_unlock(&svc->lock);

    sb->cgroup_created = hull_systemd_path_form(sb->cgroup_parent)
                             ? !sandbox_slice_exists(sb->cgroup_parent)
                             : !sandbox_cgroup_exists(NULL, 0, sb->cgroup_parent);
    sb->net_attempted = !sb->host_net;
    r = persist(sb, err);
    if (r == 0) {
        hull_crash_point("runpod:after-intent");
        r = create_resources(sb, &p, err);
    }
    free(p.sysctls);
    free(p.ports);
    if (r < 0) {
        if (!sb->add_started)
            sb->net_done = true; /* no plugin ran: none to undo */
        log_info("sandbox %s: rolling back: %s", sb->id, hull_error_msg(err));
        release_runtime(sb, true, NULL);
        release_storage(sb, true, NULL);
        index_remove(svc, sb);
        return r;
    }
    hull_crash_point("runpod:before-ready");
    pthread_mutex_lock(&sb->lock);
    sb->state = SANDBOX_STATE_READY;
    r = persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    if (r < 0) {
        release_runtime(sb, true, NULL);
        release_storage(sb, true, NULL);
        index_remove(svc, sb);
        return r;
    }
    log_info("sandbox %s: ready (%s/%s)", sb->id, m->namespace_, m->name);
    events_publish(srv, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
    events_publish(srv, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
    *id_out = xstrdup(sb->id);
    return 0;
}

/* ---- Stop / Remove ------------------------------------------------------------------------ */

/* Marks sb busy (waiting for another stop/remove); false when it was removed meanwhile. */
static bool begin_op(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    while (sb->busy && !sb->removed)
        pthread_cond_wait(&sb->cond, &sb->lock);
    if (sb->removed) {
        pthread_mutex_unlock(&sb->lock);
        return false;
    }
    sb->busy = true;
    pthread_mutex_unlock(&sb->lock);
    return true;
}

static void end_op(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    sb->busy = false;
    pthread_cond_broadcast(&sb->cond);
    pthread_mutex_unlock(&sb->lock);
}

static int stop_locked_op(struct sandbox *sb, bool save, hull_error_t *err)
{
    /* no new container operations; wait for running ones */
    pthread_mutex_lock(&sb->lock);
    sb->state = SANDBOX_STATE_NOTREADY;
    while (sb->holds > 0)
        pthread_cond_wait(&sb->cond, &sb->lock);
    pthread_mutex_unlock(&sb->lock);

    struct sandbox_container_hooks h;
    if (get_hooks(sb->svc, &h) && h.stop_all) {
        int r = h.stop_all(h.opaque, sb, err);
        if (r < 0)
            return hull_error_wrap(err, "stop containers of pod sandbox \"%s\"", sb->id);
    }
    hull_crash_point("stoppod:after-containers");
    int r = release_runtime(sb, false, err);
    _cleanup_error_ hull_error_t perr = NULL;
    if ((save || r < 0) && persist(sb, &perr) < 0)
        log_warn("sandbox %s: %s", sb->id, hull_error_msg(&perr));
    return r;
}

int sandbox_stop(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    int r = sandbox_lookup(srv, id, &sb, &lerr);
    if (r == -ENOENT) {
        /* already gone: stop is idempotent */
        log_debug("StopPodSandbox: %s", hull_error_msg(&lerr));
        return 0;
    }
    if (r < 0) {
        hull_error_setx(err, hull_error_status(&lerr), "%s", hull_error_msg(&lerr));
        return r;
    }
    if (sandbox_get_state(sb) == SANDBOX_STATE_CREATING)
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is still being created", sb->id);
    if (!begin_op(sb))
        return 0;
    bool was_ready = sandbox_get_state(sb) == SANDBOX_STATE_READY;
    r = stop_locked_op(sb, true, err);
    end_op(sb);
    if (was_ready)
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    if (r == 0)
        log_info("sandbox %s: stopped", sb->id);
    return r;
}

int sandbox_remove(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    int r = sandbox_lookup(srv, id, &sb, &lerr);
    if (r == -ENOENT)
        return 0; /* idempotent */
    if (r < 0) {
        hull_error_setx(err, hull_error_status(&lerr), "%s", hull_error_msg(&lerr));
        return r;
    }
    if (sandbox_get_state(sb) == SANDBOX_STATE_CREATING)
        return hull_error_setx(err, EBUSY, "pod sandbox \"%s\" is still being created", sb->id);
    if (!begin_op(sb))
        return 0;
    /* from here on the removal is owed: a restart finishes it */
    bool was_ready = sandbox_get_state(sb) == SANDBOX_STATE_READY;
    pthread_mutex_lock(&sb->lock);
    bool was_removing = sb->removing;
    sb->removing = true;
    r = was_removing ? 0 : persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    if (r < 0) {
        end_op(sb);
        return hull_error_wrap(err, "remove pod sandbox \"%s\"", sb->id);
    }
    hull_crash_point("removepod:after-intent");
    r = stop_locked_op(sb, false, err);
    if (was_ready)
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    hull_crash_point("removepod:after-stop");
    if (r == 0) {
        struct sandbox_container_hooks h;
        if (get_hooks(sb->svc, &h) && h.remove_all) {
            r = h.remove_all(h.opaque, sb, err);
            if (r < 0)
                hull_error_wrap(err, "remove containers of pod sandbox \"%s\"", sb->id);
        }
    }
    hull_crash_point("removepod:after-containers");
    if (r == 0)
        r = release_storage(sb, false, err);
    if (r == 0)
        index_remove(sb->svc, sb);
    end_op(sb);
    if (r == 0) {
        log_info("sandbox %s: removed", sb->id);
        events_publish(srv, sb->id, sb->id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
    }
    return r;
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
    return svc_of(srv)->cni;
}

/* ---- init / recovery ---------------------------------------------------------------------- */

static int load_one(void *opaque, const char *id, yajl_val doc, hull_error_t *err)
{
    struct sandbox_service *svc = opaque;
    struct sandbox *sb = NULL;
    int r = sandbox_from_record(svc, id, doc, &sb, err);
    if (r < 0)
        return r;
    if (sb->state == SANDBOX_STATE_CREATING) {
        log_warn("sandbox %s: cleaning up a half-created pod", sb->id);
        release_runtime(sb, true, NULL);
        release_storage(sb, true, NULL);
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
            if (persist_locked(sb, &e) < 0)
                log_warn("sandbox %s: %s", sb->id, hull_error_msg(&e));
        }
    }
    svc->items = xrealloc(svc->items, (svc->n + 1) * sizeof(*svc->items));
    svc->items[svc->n++] = sb;
    return 0;
}

/* ---- orphans: pod resources no record names -------------------------------------------- */

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
static void sweep_orphans(struct sandbox_service *svc)
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
            _cleanup_free_ char *cg = default_pod_cgroup(svc, ids[i]);
            recover_cgroup_remove_all(cg, true);
        }
        free_nullv(ids);
    }
}

/* Finishes the removals a crash interrupted (after the container area is up: the pod's
 * containers go first). */
void sandbox_recover_finish(struct hull_server *srv)
{
    struct sandbox_service *svc = svc_of(srv);
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

static char *default_pause_path(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return xstrdup("/usr/local/bin/hull-pause");
    exe[n] = '\0';
    return xasprintf("%s/hull-pause", dirname(exe));
}

int sandbox_service_init(struct hull_server *srv, hull_error_t *err)
{
    const struct hull_config *c = srv->config;
    struct sandbox_service *svc = xmalloc0(sizeof(*svc));
    pthread_rwlock_init(&svc->lock, NULL);
    pthread_mutex_init(&svc->hooks_lock, NULL);
    svc->config = c;
    svc->store = srv->store;
    svc->root = xstrdup(c->root);
    svc->state_dir = xstrdup(c->state_dir);
    svc->ns_dir = xasprintf("%s/ns", c->state_dir);
    svc->pause_path =
        c->pause_path && *c->pause_path ? xstrdup(c->pause_path) : default_pause_path();
    const char *cp = c->cgroup_parent && *c->cgroup_parent ? c->cgroup_parent : "/hull";
    svc->systemd = config_systemd_cgroup(c);
    if (svc->systemd) {
        /* a slice: pods get <stem>-pod<id>.slice (a path configured here means hull.slice) */
        size_t cl = strlen(cp);
        bool is_slice = hull_systemd_slice_valid(cp) && strcmp(cp, "-.slice") != 0;
        svc->default_cgroup_parent =
            is_slice ? xstrndup(cp, cl - strlen(".slice")) : xstrdup("hull");
    } else {
        svc->default_cgroup_parent = xstrdup(cp);
        size_t len = strlen(svc->default_cgroup_parent);
        while (len > 1 && svc->default_cgroup_parent[len - 1] == '/')
            svc->default_cgroup_parent[--len] = '\0';
    }
    srv->sandboxes = svc;
    int ir = sandbox_infra_new(svc->pause_path, svc->state_dir, &svc->infra, err);
    if (ir < 0)
        return ir;

    _cleanup_free_ char *cache = xasprintf("%s/cni", c->root);
    struct cni_manager_options o = {
        .config_dir = c->cni_config_dir,
        .plugin_dirs = (const char *const *)c->cni_plugin_dirs.items,
        .n_plugin_dirs = c->cni_plugin_dirs.len,
        .cache_dir = cache,
        .write_default_config = c->cni_write_default_config,
        .default_subnet = c->cni_default_subnet,
        .plugin_timeout_ms = c->cni_plugin_timeout > 0 && c->cni_plugin_timeout < 86400
                                 ? (int)c->cni_plugin_timeout * 1000
                                 : 0,
    };
    int r = cni_manager_new(&o, &svc->cni, err);
    if (r < 0)
        return hull_error_wrap(err, "cni");
    size_t loaded = 0, corrupt = 0;
    r = store_load(svc->store, STORE_KIND, load_one, svc, &loaded, &corrupt, err);
    if (r < 0)
        return hull_error_wrap(err, "load pod sandboxes");
    log_info("sandboxes: %zu loaded, %zu set aside", svc->n, corrupt);
    sweep_orphans(svc);
    return 0;
}

void sandbox_service_fini(struct hull_server *srv)
{
    struct sandbox_service *svc = svc_of(srv);
    if (svc == NULL)
        return;
    for (size_t i = 0; i < svc->n; i++)
        sandbox_unref(svc->items[i]);
    free(svc->items);
    cni_manager_free(svc->cni);
    free(svc->root);
    free(svc->state_dir);
    free(svc->ns_dir);
    free(svc->pause_path);
    sandbox_infra_free(svc->infra);
    free(svc->default_cgroup_parent);
    pthread_rwlock_destroy(&svc->lock);
    pthread_mutex_destroy(&svc->hooks_lock);
    free(svc);
    srv->sandboxes = NULL;
}
