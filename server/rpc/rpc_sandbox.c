/* RPC handlers of the sandbox area: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, StreamPodSandboxes, UpdateRuntimeConfig,
 * UpdatePodSandboxResources. */
#include "server/container/container.h"
#include "server/rpc/handlers.h"
#include "server/pod/pod.h"
#include "server/pod/sandbox_int.h"
#include "server/server.h"

#include "cni/cni.h"

#include <errno.h>
#include <string.h>

typedef struct rpc_map_entry map_entry;

/* What the last UpdatePodSandboxResources asked for, in the sandbox directory. */
#define POD_RESOURCES_FILE "pod_resources.json"
#define POD_RESOURCES_MAX  (64 * 1024)

static void defer_unref(void *p)
{
    sandbox_unref(p);
}

/* Keeps sb alive until the call ends, so the response may point into its config. */
static void keep(struct rpc_call *call, struct sandbox *sb)
{
    rpc_defer(call, defer_unref, sb);
}

int rpc_run_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err)
{
    const Runtime__V1__RunPodSandboxRequest *in = (const Runtime__V1__RunPodSandboxRequest *)req;
    _cleanup_free_ char *id = NULL;
    int r = sandbox_run(rpc_server(call), in, &id, err);
    if (r < 0)
        return r;
    Runtime__V1__RunPodSandboxResponse *out =
        rpc_new_message(call, &runtime__v1__run_pod_sandbox_response__descriptor);
    out->pod_sandbox_id = rpc_strdup(call, id);
    *resp = &out->base;
    return 0;
}

int rpc_stop_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__StopPodSandboxRequest *in = (const Runtime__V1__StopPodSandboxRequest *)req;
    int r = sandbox_stop(rpc_server(call), in->pod_sandbox_id, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__stop_pod_sandbox_response__descriptor);
    return 0;
}

int rpc_remove_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__RemovePodSandboxRequest *in =
        (const Runtime__V1__RemovePodSandboxRequest *)req;
    int r = sandbox_remove(rpc_server(call), in->pod_sandbox_id, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__remove_pod_sandbox_response__descriptor);
    return 0;
}

static Runtime__V1__PodSandboxState cri_state(enum sandbox_state s)
{
    return s == SANDBOX_STATE_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                    : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

static Runtime__V1__NamespaceMode mode(bool host, bool pod)
{
    if (host)
        return RUNTIME__V1__NAMESPACE_MODE__NODE;
    return pod ? RUNTIME__V1__NAMESPACE_MODE__POD : RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
}

static char *verbose_info(struct sandbox *sb, const struct sandbox_snapshot *s)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "id", sandbox_id(sb));
    hull_jw_kv_int(&w, "pid", s->pause_pid);
    hull_jw_kv_string(&w, "runtimeHandler", sandbox_runtime_handler(sb));
    hull_jw_kv_string(&w, "cgroupParent", sandbox_cgroup_parent(sb));
    hull_jw_kv_string(&w, "netns", sandbox_netns_path(sb));
    hull_jw_kv_string(&w, "ipcns", sandbox_ipcns_path(sb));
    hull_jw_kv_string(&w, "utsns", sandbox_utsns_path(sb));
    hull_jw_kv_string(&w, "pidns", sandbox_pidns_path(sb));
    hull_jw_kv_string(&w, "hostname", sandbox_hostname(sb));
    hull_jw_kv_string(&w, "resolvConf", sandbox_resolv_conf_path(sb));
    hull_jw_kv_string(&w, "hosts", sandbox_hosts_path(sb));
    hull_jw_kv_string(&w, "shm", sandbox_shm_path(sb));
    hull_jw_kv_string(&w, "networkName", s->network_name);
    hull_jw_kv_bool(&w, "hostNetwork", sandbox_host_network(sb));
    hull_jw_key(&w, "ips");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < s->n_ips; i++)
        hull_jw_string(&w, s->ips[i]);
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    char *text = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return text;
}

Runtime__V1__PodSandboxStatus *sandbox_status_message(struct rpc_call *call, struct sandbox *sb)
{
    keep(call, sandbox_ref(sb));
    struct sandbox_snapshot snap;
    sandbox_snapshot_get(sb, &snap);
    const Runtime__V1__PodSandboxConfig *cfg = sandbox_config(sb);
    Runtime__V1__PodSandboxStatus *st =
        rpc_new_message(call, &runtime__v1__pod_sandbox_status__descriptor);
    st->id = (char *)sandbox_id(sb);
    st->metadata = cfg->metadata;
    st->state =
        cri_state(snap.state == SANDBOX_STATE_CREATING ? SANDBOX_STATE_NOTREADY : snap.state);
    st->created_at = sandbox_created_at(sb);
    st->runtime_handler = (char *)sandbox_runtime_handler(sb);
    st->labels = rpc_copy_map(call, &runtime__v1__pod_sandbox_status__labels_entry__descriptor,
                              cfg->n_labels, (void *const *)cfg->labels, &st->n_labels);
    st->annotations =
        rpc_copy_map(call, &runtime__v1__pod_sandbox_status__annotations_entry__descriptor,
                     cfg->n_annotations, (void *const *)cfg->annotations, &st->n_annotations);

    st->network = rpc_new_message(call, &runtime__v1__pod_sandbox_network_status__descriptor);
    if (!sandbox_host_network(sb) && snap.n_ips > 0) {
        st->network->ip = rpc_strdup(call, snap.ips[0]);
        st->network->n_additional_ips = snap.n_ips - 1;
        st->network->additional_ips =
            rpc_alloc(call, (snap.n_ips + 1) * sizeof(Runtime__V1__PodIP *));
        for (size_t i = 1; i < snap.n_ips; i++) {
            Runtime__V1__PodIP *ip = rpc_new_message(call, &runtime__v1__pod_ip__descriptor);
            ip->ip = rpc_strdup(call, snap.ips[i]);
            st->network->additional_ips[i - 1] = ip;
        }
    }
    st->linux = rpc_new_message(call, &runtime__v1__linux_pod_sandbox_status__descriptor);
    st->linux->namespaces = rpc_new_message(call, &runtime__v1__namespace__descriptor);
    Runtime__V1__NamespaceOption *no =
        rpc_new_message(call, &runtime__v1__namespace_option__descriptor);
    no->network = mode(sandbox_host_network(sb), true);
    no->pid = mode(sandbox_host_pid(sb), sandbox_pidns_path(sb) != NULL);
    no->ipc = mode(sandbox_host_ipc(sb), true);
    /* the user namespace as the pod runs it: POD with its mappings, or NODE */
    no->userns_options = rpc_new_message(call, &runtime__v1__user_namespace__descriptor);
    const Runtime__V1__NamespaceOption *asked =
        cfg->linux && cfg->linux->security_context ? cfg->linux->security_context->namespace_options
                                                   : NULL;
    const Runtime__V1__UserNamespace *un = asked ? asked->userns_options : NULL;
    if (sandbox_userns_path(sb) && un) {
        no->userns_options->mode = RUNTIME__V1__NAMESPACE_MODE__POD;
        Runtime__V1__IDMapping *const *src[2] = {un->uids, un->gids};
        size_t n_src[2] = {un->n_uids, un->n_gids};
        Runtime__V1__IDMapping **dst[2];
        for (int k = 0; k < 2; k++) {
            dst[k] = rpc_alloc(call, (n_src[k] + 1) * sizeof(*dst[k]));
            for (size_t i = 0; i < n_src[k]; i++) {
                Runtime__V1__IDMapping *m =
                    rpc_new_message(call, &runtime__v1__idmapping__descriptor);
                m->host_id = src[k][i]->host_id;
                m->container_id = src[k][i]->container_id;
                m->length = src[k][i]->length;
                dst[k][i] = m;
            }
        }
        no->userns_options->uids = dst[0];
        no->userns_options->n_uids = n_src[0];
        no->userns_options->gids = dst[1];
        no->userns_options->n_gids = n_src[1];
    } else {
        no->userns_options->mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
    }
    st->linux->namespaces->options = no;
    sandbox_snapshot_free(&snap);
    return st;
}

int rpc_pod_sandbox_status(struct rpc_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__PodSandboxStatusRequest *in =
        (const Runtime__V1__PodSandboxStatusRequest *)req;
    struct hull_server *srv = rpc_server(call);
    struct sandbox *sb = NULL;
    int r = sandbox_lookup(srv, in->pod_sandbox_id, &sb, err);
    if (r < 0)
        return r;
    keep(call, sb);
    Runtime__V1__PodSandboxStatusResponse *out =
        rpc_new_message(call, &runtime__v1__pod_sandbox_status_response__descriptor);
    out->status = sandbox_status_message(call, sb);
    out->timestamp = hull_now_ns();
    /* the pod's containers too, as the evented PLEG reads them */
    struct container_snapshot **l = NULL;
    size_t n = 0;
    container_list(srv, sandbox_id(sb), &l, &n, NULL);
    out->containers_statuses = rpc_alloc(call, (n + 1) * sizeof(void *));
    for (size_t i = 0; i < n; i++)
        out->containers_statuses[out->n_containers_statuses++] =
            container_status_message(call, l[i]);
    container_snapshot_list_free(l, n);

    if (in->verbose) {
        struct sandbox_snapshot snap;
        sandbox_snapshot_get(sb, &snap);
        _cleanup_free_ char *info = verbose_info(sb, &snap);
        sandbox_snapshot_free(&snap);
        out->n_info = 1;
        out->info = rpc_alloc(call, 2 * sizeof(void *));
        map_entry *e = rpc_new_message(
            call, &runtime__v1__pod_sandbox_status_response__info_entry__descriptor);
        e->key = "info";
        e->value = rpc_strdup(call, info);
        out->info[0] = (void *)e;
        /* the last UpdatePodSandboxResources, when there was one */
        _cleanup_free_ char *path = hull_path_join(sandbox_dir(sb), POD_RESOURCES_FILE);
        _cleanup_free_ char *res = NULL;
        if (hull_read_file(path, POD_RESOURCES_MAX, &res, NULL, NULL) == 0) {
            e = rpc_new_message(call,
                                &runtime__v1__pod_sandbox_status_response__info_entry__descriptor);
            e->key = "podResources";
            e->value = rpc_strdup(call, res);
            out->info[out->n_info++] = (void *)e;
        }
    }
    *resp = &out->base;
    return 0;
}

/* ---- List / Stream ---------------------------------------------------------------------- */

struct list_ctx {
    struct rpc_call *call;
    const Runtime__V1__PodSandboxFilter *filter;
    Runtime__V1__PodSandbox **items;
    size_t n, cap;
};

static int list_one(struct sandbox *sb, void *opaque)
{
    struct list_ctx *ctx = opaque;
    const Runtime__V1__PodSandboxFilter *f = ctx->filter;
    enum sandbox_state s = sandbox_state_checked(sb); /* sandbox_foreach checked it */
    if (s == SANDBOX_STATE_CREATING)
        return 0;
    if (f) {
        if (f->id && *f->id && strncmp(sandbox_id(sb), f->id, strlen(f->id)) != 0)
            return 0;
        if (f->state && f->state->state != cri_state(s))
            return 0;
        if (!rpc_labels_match(f->n_label_selector, (void *const *)f->label_selector,
                              sandbox_config(sb)->n_labels,
                              (void *const *)sandbox_config(sb)->labels))
            return 0;
    }
    keep(ctx->call, sandbox_ref(sb));
    const Runtime__V1__PodSandboxConfig *cfg = sandbox_config(sb);
    Runtime__V1__PodSandbox *p = rpc_new_message(ctx->call, &runtime__v1__pod_sandbox__descriptor);
    p->id = (char *)sandbox_id(sb);
    p->metadata = cfg->metadata;
    p->state = cri_state(s);
    p->created_at = sandbox_created_at(sb);
    p->runtime_handler = (char *)sandbox_runtime_handler(sb);
    /* the pod's own config entries (held by the reference above), as metadata is */
    p->labels = rpc_share_map(cfg->n_labels, (void *const *)cfg->labels, &p->n_labels);
    p->annotations =
        rpc_share_map(cfg->n_annotations, (void *const *)cfg->annotations, &p->n_annotations);
    if (ctx->n == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 16;
        Runtime__V1__PodSandbox **items = rpc_alloc(ctx->call, ncap * sizeof(*items));
        if (ctx->n)
            memcpy(items, ctx->items, ctx->n * sizeof(*items));
        ctx->items = items;
        ctx->cap = ncap;
    }
    ctx->items[ctx->n++] = p;
    return 0;
}

int rpc_list_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__ListPodSandboxRequest *in = (const Runtime__V1__ListPodSandboxRequest *)req;
    struct list_ctx ctx = {.call = call, .filter = in->filter};
    sandbox_foreach(rpc_server(call), list_one, &ctx);
    Runtime__V1__ListPodSandboxResponse *out =
        rpc_new_message(call, &runtime__v1__list_pod_sandbox_response__descriptor);
    out->items = ctx.items;
    out->n_items = ctx.n;
    *resp = &out->base;
    return 0;
}

int rpc_stream_pod_sandboxes(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__StreamPodSandboxesRequest *in =
        (const Runtime__V1__StreamPodSandboxesRequest *)req;
    struct list_ctx ctx = {.call = call, .filter = in->filter};
    sandbox_foreach(rpc_server(call), list_one, &ctx);
    /* batches of 256 keep each message small; an empty list is one empty message */
    return rpc_stream_items(call, &runtime__v1__stream_pod_sandboxes_response__descriptor,
                            ctx.items, ctx.n, 256, true, err);
}

/* ---- runtime config, resources ------------------------------------------------------------ */

int rpc_update_runtime_config(struct rpc_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__UpdateRuntimeConfigRequest *in =
        (const Runtime__V1__UpdateRuntimeConfigRequest *)req;
    const char *cidr = NULL;
    if (in->runtime_config && in->runtime_config->network_config)
        cidr = in->runtime_config->network_config->pod_cidr;
    if (cidr && *cidr) {
        for (const char *c = cidr; *c; c++)
            if (!strchr("0123456789abcdefABCDEF.:/,", *c))
                return hull_error_setx(err, EINVAL, "UpdateRuntimeConfig: invalid pod CIDR \"%s\"",
                                       HULL_CLIP(cidr));
        /* the first CIDR of a dual-stack list */
        _cleanup_free_ char *first = xstrdup(cidr);
        char *comma = strchr(first, ',');
        if (comma)
            *comma = '\0';
        cni_manager_set_pod_cidr(sandbox_cni(rpc_server(call)), first);
        log_info("UpdateRuntimeConfig: pod CIDR %s", first);
    }
    *resp = rpc_new_message(call, &runtime__v1__update_runtime_config_response__descriptor);
    return 0;
}

static void resources_json(struct hull_json_writer *w, const char *key,
                           const Runtime__V1__LinuxContainerResources *r)
{
    hull_jw_key(w, key);
    if (r == NULL) {
        hull_jw_null(w);
        return;
    }
    hull_jw_begin_object(w);
    hull_jw_kv_int(w, "cpuPeriod", r->cpu_period);
    hull_jw_kv_int(w, "cpuQuota", r->cpu_quota);
    hull_jw_kv_int(w, "cpuShares", r->cpu_shares);
    hull_jw_kv_int(w, "memoryLimitInBytes", r->memory_limit_in_bytes);
    hull_jw_kv_int(w, "memorySwapLimitInBytes", r->memory_swap_limit_in_bytes);
    hull_jw_kv_string(w, "cpusetCpus", r->cpuset_cpus);
    hull_jw_kv_string(w, "cpusetMems", r->cpuset_mems);
    hull_jw_key(w, "hugepageLimits");
    hull_jw_begin_array(w);
    for (size_t i = 0; i < r->n_hugepage_limits; i++) {
        hull_jw_begin_object(w);
        hull_jw_kv_string(w, "pageSize", r->hugepage_limits[i]->page_size);
        hull_jw_kv_int(w, "limit", (long long)r->hugepage_limits[i]->limit);
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
    hull_jw_key(w, "unified");
    hull_jw_begin_object(w);
    for (size_t i = 0; i < r->n_unified; i++)
        hull_jw_kv_string(w, r->unified[i]->key, r->unified[i]->value);
    hull_jw_end_object(w);
    hull_jw_end_object(w);
}

/* Informational: kubelet has already resized the pod cgroup (it owns it, overhead included)
 * before it calls this, so the pod's cgroup is left alone; the resources are recorded next to
 * the sandbox and shown by PodSandboxStatus (verbose) under "podResources". */
int rpc_update_pod_sandbox_resources(struct rpc_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__UpdatePodSandboxResourcesRequest *in =
        (const Runtime__V1__UpdatePodSandboxResourcesRequest *)req;
    struct sandbox *sb = NULL;
    int r = sandbox_lookup(rpc_server(call), in->pod_sandbox_id, &sb, err);
    if (r < 0)
        return r;
    keep(call, sb);
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_int(&w, "updatedAt", hull_now_ns());
    resources_json(&w, "overhead", in->overhead);
    resources_json(&w, "resources", in->resources);
    hull_jw_end_object(&w);
    size_t len = 0;
    _cleanup_free_ char *text = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    if (len > POD_RESOURCES_MAX)
        return hull_error_setx(err, EINVAL, "UpdatePodSandboxResources \"%s\": request too large",
                               sandbox_id(sb));
    _cleanup_free_ char *path = hull_path_join(sandbox_dir(sb), POD_RESOURCES_FILE);
    r = hull_write_file_atomic(path, text, len, 0600, err);
    if (r < 0)
        return hull_error_wrap(err, "UpdatePodSandboxResources \"%s\"", sandbox_id(sb));
    log_info("sandbox %s: pod resources recorded (cgroup left to kubelet)", sandbox_id(sb));
    *resp = rpc_new_message(call, &runtime__v1__update_pod_sandbox_resources_response__descriptor);
    return 0;
}
