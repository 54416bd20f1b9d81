/* hulld's side of NRI: the pod and container descriptions plugins get, the hooks each CRI
 * lifecycle operation calls, and the container updates plugins ask for. */
#include "server/nri_hooks.h"
#include "server/hooks.h"

#include "nri/nri.h"
#include "server/container/container.h"
#include "server/container/container_internal.h"
#include "server/pod/pod.h"
#include "server/pod/sandbox_int.h"

#include <errno.h>
#include <string.h>

static const struct lifecycle_hooks nri_lifecycle_hooks;
static void nri_hooks_create_failed(struct hull_server *srv, struct container *c);
static void nri_hooks_remove(struct hull_server *srv, struct container *c);

#define PB(x) Nri__Pkg__Api__V1alpha1__##x

/* ---- descriptions ------------------------------------------------------------------------ */
static void add_kvs(struct nri_arena *a, size_t *n, void ***entries,
                    Runtime__V1__PodSandboxConfig__LabelsEntry **kv, size_t k)
{
    for (size_t i = 0; i < k; i++)
        nri_map_add(a, n, entries, kv[i]->key, kv[i]->value);
}

static nri_pod_t *pod_of(struct nri_arena *a, struct sandbox *sb)
{
    nri_pod_t *p = nri_pod_new(a);
    const Runtime__V1__PodSandboxConfig *cfg = sandbox_config(sb);
    p->id = nri_strdup(a, sandbox_id(sb));
    if (cfg && cfg->metadata) {
        p->name = nri_strdup(a, cfg->metadata->name);
        p->uid = nri_strdup(a, cfg->metadata->uid);
        p->namespace_ = nri_strdup(a, cfg->metadata->namespace_);
    }
    if (cfg) {
        add_kvs(a, &p->n_labels, (void ***)&p->labels, cfg->labels, cfg->n_labels);
        add_kvs(a, &p->n_annotations, (void ***)&p->annotations,
                (Runtime__V1__PodSandboxConfig__LabelsEntry **)cfg->annotations,
                cfg->n_annotations);
    }
    p->runtime_handler = nri_strdup(a, sandbox_runtime_handler(sb));
    PB(LinuxPodSandbox) *l = nri_alloc(a, sizeof(*l));
    nri__pkg__api__v1alpha1__linux_pod_sandbox__init(l);
    l->cgroup_parent = nri_strdup(a, sandbox_cgroup_parent(sb));
    l->cgroups_path = nri_strdup(a, sandbox_cgroup_parent(sb));
    p->linux = l;
    struct sandbox_snapshot s;
    sandbox_snapshot_get(sb, &s);
    p->pid = s.pause_pid > 0 ? (uint32_t)s.pause_pid : 0;
    p->n_ips = s.n_ips;
    p->ips = nri_alloc(a, (s.n_ips + 1) * sizeof(char *));
    for (size_t i = 0; i < s.n_ips; i++)
        p->ips[i] = nri_strdup(a, s.ips[i]);
    sandbox_snapshot_free(&s);
    return p;
}

static PB(ContainerState) nri_state(int state)
{
    switch (state) {
    case CONTAINER_CREATED:
        return NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_CREATED;
    case CONTAINER_RUNNING:
        return NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
    case CONTAINER_EXITED:
        return NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_STOPPED;
    default:
        return NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_UNKNOWN;
    }
}

struct ctr_view {
    const char *id, *pod_id, *image;
    const Runtime__V1__ContainerConfig *config;
    int state;
    pid_t pid;
    int64_t created, started, finished;
    int32_t exit_code;
};

static nri_ctr_t *ctr_of(struct nri_arena *a, const struct ctr_view *v)
{
    nri_ctr_t *c = nri_ctr_new(a);
    c->id = nri_strdup(a, v->id);
    c->pod_sandbox_id = nri_strdup(a, v->pod_id);
    const Runtime__V1__ContainerConfig *cfg = v->config;
    if (cfg && cfg->metadata)
        c->name = nri_strdup(a, cfg->metadata->name);
    if (cfg) {
        add_kvs(a, &c->n_labels, (void ***)&c->labels,
                (Runtime__V1__PodSandboxConfig__LabelsEntry **)cfg->labels, cfg->n_labels);
        add_kvs(a, &c->n_annotations, (void ***)&c->annotations,
                (Runtime__V1__PodSandboxConfig__LabelsEntry **)cfg->annotations,
                cfg->n_annotations);
    }
    c->state = nri_state(v->state);
    c->pid = v->pid > 0 ? (uint32_t)v->pid : 0;
    c->created_at = v->created;
    c->started_at = v->started;
    c->finished_at = v->finished;
    c->exit_code = v->exit_code;
    if (v->image) {
        PB(Image) *im = nri_alloc(a, sizeof(*im));
        nri__pkg__api__v1alpha1__image__init(im);
        im->name = nri_strdup(a, v->image);
        c->image = im;
    }
    return c;
}

static nri_ctr_t *ctr_of_live(struct nri_arena *a, struct container *c)
{
    pthread_mutex_lock(&c->lock);
    struct ctr_view v = {c->id,  c->pod_id,     c->image_ref,  c->config,      c->state,
                         c->pid, c->created_ns, c->started_ns, c->finished_ns, c->exit_code};
    nri_ctr_t *out = ctr_of(a, &v);
    pthread_mutex_unlock(&c->lock);
    return out;
}

/* ---- Synchronize and plugin updates --------------------------------------------------------- */
struct snap {
    struct nri_arena *a;
    nri_pod_t **pods;
    size_t n;
};

static int snap_pod(struct sandbox *sb, void *opaque)
{
    struct snap *s = opaque;
    s->pods = xrealloc(s->pods, (s->n + 1) * sizeof(*s->pods));
    s->pods[s->n++] = pod_of(s->a, sb);
    return 0;
}

static void host_snapshot(void *opaque, struct nri_arena *a, nri_pod_t ***pods, size_t *n_pods,
                          nri_ctr_t ***ctrs, size_t *n_ctrs)
{
    struct hull_server *srv = opaque;
    struct snap s = {a, NULL, 0};
    sandbox_foreach(srv, snap_pod, &s);
    *pods = nri_alloc(a, (s.n + 1) * sizeof(**pods));
    if (s.n)
        memcpy(*pods, s.pods, s.n * sizeof(**pods));
    *n_pods = s.n;
    free(s.pods);
    struct container_snapshot **l = NULL;
    size_t n = 0;
    _cleanup_error_ hull_error_t err = NULL;
    container_list(srv, NULL, &l, &n, &err);
    *ctrs = nri_alloc(a, (n + 1) * sizeof(**ctrs));
    for (size_t i = 0; i < n; i++) {
        struct ctr_view v = {l[i]->id,          l[i]->pod_id,   l[i]->image_ref,  l[i]->config,
                             l[i]->state,       l[i]->pid,      l[i]->created_ns, l[i]->started_ns,
                             l[i]->finished_ns, l[i]->exit_code};
        (*ctrs)[i] = ctr_of(a, &v);
    }
    *n_ctrs = n;
    container_snapshot_list_free(l, n);
}

/* A plugin's update: its resource fields over the container's current ones. */
static int host_update(void *opaque, const nri_update_t *u, hull_error_t *err)
{
    struct hull_server *srv = opaque;
    _cleanup_container_snapshot_ struct container_snapshot *s = NULL;
    int r = container_get(srv, u->container_id, &s, err);
    if (r < 0)
        return r;
    Runtime__V1__LinuxContainerResources *cur =
        s->resources_pb ? runtime__v1__linux_container_resources__unpack(NULL, s->resources_len,
                                                                         (uint8_t *)s->resources_pb)
                        : NULL;
    if (cur == NULL && s->config && s->config->linux && s->config->linux->resources) {
        const ProtobufCMessage *m = &s->config->linux->resources->base;
        size_t len = protobuf_c_message_get_packed_size(m);
        _cleanup_free_ uint8_t *pb = xmalloc0(len + 1);
        protobuf_c_message_pack(m, pb);
        cur = runtime__v1__linux_container_resources__unpack(NULL, len, pb);
    }
    Runtime__V1__LinuxContainerResources fresh = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
    Runtime__V1__LinuxContainerResources *res = cur ? cur : &fresh;
    const PB(LinuxResources) *nr = u->linux ? u->linux->resources : NULL;
    if (nr && nr->memory && nr->memory->limit)
        res->memory_limit_in_bytes = nr->memory->limit->value;
    if (nr && nr->cpu) {
        if (nr->cpu->shares)
            res->cpu_shares = (int64_t)nr->cpu->shares->value;
        if (nr->cpu->quota)
            res->cpu_quota = nr->cpu->quota->value;
        if (nr->cpu->period)
            res->cpu_period = (int64_t)nr->cpu->period->value;
    }
    char *keep_cpus = res->cpuset_cpus, *keep_mems = res->cpuset_mems;
    if (nr && nr->cpu && nr->cpu->cpus && nr->cpu->cpus[0])
        res->cpuset_cpus = nr->cpu->cpus;
    if (nr && nr->cpu && nr->cpu->mems && nr->cpu->mems[0])
        res->cpuset_mems = nr->cpu->mems;
    r = container_update_resources(srv, u->container_id, res, err);
    res->cpuset_cpus = keep_cpus;
    res->cpuset_mems = keep_mems;
    if (cur)
        runtime__v1__linux_container_resources__free_unpacked(cur, NULL);
    return r;
}

void nri_hooks_init(struct hull_server *srv)
{
    const struct hull_config *cfg = srv->config;
    if (!cfg->enable_nri)
        return;
    struct nri_options o = {
        .socket = cfg->nri_socket,
        .registration_timeout_ms = cfg->nri_registration_timeout_ms,
        .request_timeout_ms = cfg->nri_request_timeout_ms,
        .runtime_name = "hull",
        .runtime_version = HULL_VERSION,
    };
    struct nri_host h = {.opaque = srv, .snapshot = host_snapshot, .update = host_update};
    _cleanup_error_ hull_error_t err = NULL;
    if (nri_start(&o, &h, &srv->nri, &err) < 0) {
        log_warn("NRI disabled: %s", hull_error_msg(&err));
        srv->nri = NULL;
        return;
    }
    srv->hooks = &nri_lifecycle_hooks;
}

void nri_hooks_fini(struct hull_server *srv)
{
    srv->hooks = NULL;
    nri_stop(srv->nri);
    srv->nri = NULL;
}

/* ---- pods -------------------------------------------------------------------------------- */
static int nri_hooks_run_pod(struct hull_server *srv, struct sandbox *sb, hull_error_t *err)
{
    if (srv->nri == NULL)
        return 0;
    struct nri_arena a = {0};
    nri_begin(srv->nri);
    int r = nri_pod_event(srv->nri, NRI_RUN_POD_SANDBOX, pod_of(&a, sb), err);
    nri_arena_free(&a);
    if (r < 0)
        nri_end(srv->nri);
    return r;
}

static void nri_hooks_run_pod_done(struct hull_server *srv)
{
    nri_end(srv->nri);
}

static void pod_event(struct hull_server *srv, struct sandbox *sb, enum nri_event ev)
{
    if (srv->nri == NULL)
        return;
    struct nri_arena a = {0};
    _cleanup_error_ hull_error_t err = NULL;
    nri_begin(srv->nri);
    nri_pod_event(srv->nri, ev, pod_of(&a, sb), &err);
    nri_end(srv->nri);
    nri_arena_free(&a);
}

static void nri_hooks_stop_pod(struct hull_server *srv, struct sandbox *sb)
{
    pod_event(srv, sb, NRI_STOP_POD_SANDBOX);
}

static void nri_hooks_remove_pod(struct hull_server *srv, struct sandbox *sb)
{
    pod_event(srv, sb, NRI_REMOVE_POD_SANDBOX);
}

/* ---- containers -------------------------------------------------------------------------- */
static bool nri_hooks_hide_created(struct hull_server *srv)
{
    return srv->nri != NULL;
}

static void unhide(struct hull_server *srv, struct container *c)
{
    struct container_service *cs = ctr_service(srv);
    pthread_mutex_lock(&cs->mu);
    c->hidden = false;
    pthread_mutex_unlock(&cs->mu);
}

static int nri_hooks_create(struct hull_server *srv, struct container *c, struct sandbox *sb,
                            char **spec_json, hull_error_t *err)
{
    if (srv->nri == NULL) {
        unhide(srv, c);
        return 0;
    }
    struct nri_arena a = {0};
    nri_ctr_t *nc = ctr_of_live(&a, c);
    int r = nri_ctr_from_spec(&a, nc, *spec_json, err);
    pthread_mutex_lock(&c->lock);
    c->nri_created = r == 0;
    pthread_mutex_unlock(&c->lock);
    char *adjusted = NULL;
    nri_begin(srv->nri);
    if (r == 0)
        r = nri_create_container(srv->nri, pod_of(&a, sb), nc, *spec_json, &adjusted, err);
    if (r == 0) {
        if (adjusted) {
            free(*spec_json);
            *spec_json = adjusted;
        }
        /* visible before the event lock drops: a plugin synchronizing next sees it */
        unhide(srv, c);
    }
    nri_end(srv->nri);
    nri_arena_free(&a);
    if (r < 0) /* plugins before the one that failed adjusted it: undone for all */
        nri_hooks_create_failed(srv, c);
    return r;
}

static void nri_hooks_create_failed(struct hull_server *srv, struct container *c)
{
    if (srv->nri == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    bool told = c->nri_created;
    c->nri_created = false;
    pthread_mutex_unlock(&c->lock);
    if (told)
        nri_hooks_remove(srv, c);
}

static int ctr_event(struct hull_server *srv, struct container *c, enum nri_event ev,
                     hull_error_t *err)
{
    if (srv->nri == NULL)
        return 0;
    _cleanup_sandbox_ struct sandbox *sb = NULL;
    _cleanup_error_ hull_error_t lerr = NULL;
    struct nri_arena a = {0};
    nri_pod_t *pod = NULL;
    if (sandbox_lookup(srv, c->pod_id, &sb, &lerr) == 0) {
        pod = pod_of(&a, sb);
    } else {
        pod = nri_pod_new(&a);
        pod->id = nri_strdup(&a, c->pod_id);
    }
    nri_begin(srv->nri);
    int r = nri_ctr_event(srv->nri, ev, pod, ctr_of_live(&a, c), err);
    nri_end(srv->nri);
    nri_arena_free(&a);
    return r;
}

static void nri_hooks_post_create(struct hull_server *srv, struct container *c)
{
    ctr_event(srv, c, NRI_POST_CREATE_CONTAINER, NULL);
}

static int nri_hooks_start(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    return ctr_event(srv, c, NRI_START_CONTAINER, err);
}

static void nri_hooks_post_start(struct hull_server *srv, struct container *c)
{
    ctr_event(srv, c, NRI_POST_START_CONTAINER, NULL);
}

/* c->nri_stop: 0 not told, 1 being told, 2 told (under c->lock; exited_cv wakes waiters) */
static bool claim_stop(struct container *c)
{
    pthread_mutex_lock(&c->lock);
    bool mine = c->nri_stop == 0;
    if (mine)
        c->nri_stop = 1;
    pthread_mutex_unlock(&c->lock);
    return mine;
}

static void stop_told(struct container *c)
{
    pthread_mutex_lock(&c->lock);
    c->nri_stop = 2;
    pthread_cond_broadcast(&c->exited_cv);
    pthread_mutex_unlock(&c->lock);
}

static void nri_hooks_exited(struct hull_server *srv, struct container *c)
{
    if (srv->nri == NULL || !claim_stop(c))
        return;
    ctr_event(srv, c, NRI_STOP_CONTAINER, NULL);
    stop_told(c);
}

static void nri_hooks_remove(struct hull_server *srv, struct container *c)
{
    if (srv->nri == NULL)
        return;
    if (claim_stop(c)) {
        ctr_event(srv, c, NRI_STOP_CONTAINER, NULL);
        stop_told(c);
    }
    /* the StopContainer event another thread is delivering goes first */
    pthread_mutex_lock(&c->lock);
    while (c->nri_stop != 2)
        pthread_cond_wait(&c->exited_cv, &c->lock);
    pthread_mutex_unlock(&c->lock);
    ctr_event(srv, c, NRI_REMOVE_CONTAINER, NULL);
}

static int update_event(struct hull_server *srv, const char *id, enum nri_event ev,
                        const Runtime__V1__LinuxContainerResources *res, hull_error_t *err)
{
    if (srv->nri == NULL)
        return 0;
    _cleanup_error_ hull_error_t ferr = NULL;
    struct container *c = ctr_find(srv, id, &ferr);
    if (c == NULL)
        return 0; /* the update itself reports it */
    int r;
    if (ev == NRI_UPDATE_CONTAINER) {
        struct nri_arena a = {0};
        _cleanup_sandbox_ struct sandbox *sb = NULL;
        _cleanup_error_ hull_error_t lerr = NULL;
        nri_pod_t *pod =
            sandbox_lookup(srv, c->pod_id, &sb, &lerr) == 0 ? pod_of(&a, sb) : nri_pod_new(&a);
        PB(LinuxResources) *nr = nri_alloc(&a, sizeof(*nr));
        nri__pkg__api__v1alpha1__linux_resources__init(nr);
        if (res) {
            nr->memory = nri_alloc(&a, sizeof(*nr->memory));
            nri__pkg__api__v1alpha1__linux_memory__init(nr->memory);
            nr->memory->limit = nri_alloc(&a, sizeof(*nr->memory->limit));
            nri__pkg__api__v1alpha1__optional_int64__init(nr->memory->limit);
            nr->memory->limit->value = res->memory_limit_in_bytes;
            nr->cpu = nri_alloc(&a, sizeof(*nr->cpu));
            nri__pkg__api__v1alpha1__linux_cpu__init(nr->cpu);
            nr->cpu->shares = nri_alloc(&a, sizeof(*nr->cpu->shares));
            nri__pkg__api__v1alpha1__optional_uint64__init(nr->cpu->shares);
            nr->cpu->shares->value = (uint64_t)res->cpu_shares;
            nr->cpu->quota = nri_alloc(&a, sizeof(*nr->cpu->quota));
            nri__pkg__api__v1alpha1__optional_int64__init(nr->cpu->quota);
            nr->cpu->quota->value = res->cpu_quota;
            nr->cpu->period = nri_alloc(&a, sizeof(*nr->cpu->period));
            nri__pkg__api__v1alpha1__optional_uint64__init(nr->cpu->period);
            nr->cpu->period->value = (uint64_t)res->cpu_period;
            nr->cpu->cpus = nri_strdup(&a, res->cpuset_cpus);
            nr->cpu->mems = nri_strdup(&a, res->cpuset_mems);
        }
        nri_begin(srv->nri);
        r = nri_update_container(srv->nri, pod, ctr_of_live(&a, c), nr, err);
        nri_end(srv->nri);
        nri_arena_free(&a);
    } else {
        r = ctr_event(srv, c, ev, err);
    }
    ctr_put(c);
    return r;
}

static int nri_hooks_update(struct hull_server *srv, const char *id,
                            const Runtime__V1__LinuxContainerResources *res, hull_error_t *err)
{
    return update_event(srv, id, NRI_UPDATE_CONTAINER, res, err);
}

static void nri_hooks_post_update(struct hull_server *srv, const char *id)
{
    update_event(srv, id, NRI_POST_UPDATE_CONTAINER, NULL, NULL);
}

static const struct lifecycle_hooks nri_lifecycle_hooks = {
    .run_pod = nri_hooks_run_pod,
    .run_pod_done = nri_hooks_run_pod_done,
    .stop_pod = nri_hooks_stop_pod,
    .remove_pod = nri_hooks_remove_pod,
    .hide_created = nri_hooks_hide_created,
    .create = nri_hooks_create,
    .create_failed = nri_hooks_create_failed,
    .post_create = nri_hooks_post_create,
    .start = nri_hooks_start,
    .post_start = nri_hooks_post_start,
    .exited = nri_hooks_exited,
    .remove = nri_hooks_remove,
    .update = nri_hooks_update,
    .post_update = nri_hooks_post_update,
};
