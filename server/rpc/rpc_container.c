/* CRI container RPCs: CreateContainer … ExecSync (GetContainerEvents is rpc_events.c).  They
 * messages and the container area (container.h). */
#include "server/container/container.h"
#include "server/pod/pod.h"
#include "server/rpc/handlers.h"
#include "server/hooks.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static Runtime__V1__ContainerMetadata *copy_metadata(struct rpc_call *call,
                                                     const Runtime__V1__ContainerMetadata *m)
{
    Runtime__V1__ContainerMetadata *r =
        rpc_new_message(call, &runtime__v1__container_metadata__descriptor);
    if (m) {
        r->name = rpc_strdup(call, m->name);
        r->attempt = m->attempt;
    }
    return r;
}

static Runtime__V1__ImageSpec *image_spec(struct rpc_call *call, const struct container_snapshot *s)
{
    Runtime__V1__ImageSpec *r = rpc_new_message(call, &runtime__v1__image_spec__descriptor);
    const Runtime__V1__ImageSpec *req = s->config ? s->config->image : NULL;
    r->image = rpc_strdup(call, s->image_ref);
    r->user_specified_image = rpc_strdup(call, req ? req->user_specified_image : "");
    r->runtime_handler = rpc_strdup(call, req ? req->runtime_handler : "");
    r->image_ref = rpc_strdup(call, s->image_id);
    if (req)
        r->annotations =
            rpc_copy_map(call, &runtime__v1__image_spec__annotations_entry__descriptor,
                         req->n_annotations, (void *const *)req->annotations, &r->n_annotations);
    return r;
}

static const char *image_ref_of(const struct container_snapshot *s)
{
    return s->image_digest_ref && s->image_digest_ref[0] ? s->image_digest_ref : s->image_id;
}

static char *borrow(const char *s)
{
    return (char *)(s ? s : "");
}

/* Borrows the snapshot's strings and map entries: the snapshot must live as long as the call
 * (list_filtered frees the list when the call ends). */
static Runtime__V1__Container *container_message(struct rpc_call *call,
                                                 const struct container_snapshot *s)
{
    Runtime__V1__Container *r = rpc_new_message(call, &runtime__v1__container__descriptor);
    r->id = borrow(s->id);
    r->pod_sandbox_id = borrow(s->pod_id);
    r->metadata = copy_metadata(call, s->config ? s->config->metadata : NULL);
    r->image = image_spec(call, s);
    r->image_ref = borrow(image_ref_of(s));
    r->image_id = borrow(s->image_id);
    r->state = (Runtime__V1__ContainerState)s->state;
    r->created_at = s->created_ns;
    if (s->config) {
        r->labels =
            rpc_share_map(s->config->n_labels, (void *const *)s->config->labels, &r->n_labels);
        r->annotations = rpc_share_map(s->config->n_annotations,
                                       (void *const *)s->config->annotations, &r->n_annotations);
    }
    return r;
}

struct snapshot_list {
    struct container_snapshot **l;
    size_t n;
};

static void snapshot_list_free(void *p)
{
    struct snapshot_list *sl = p;
    container_snapshot_list_free(sl->l, sl->n);
}

static void free_resources(void *p)
{
    runtime__v1__linux_container_resources__free_unpacked(p, NULL);
}

static Runtime__V1__ContainerResources *resources_message(struct rpc_call *call,
                                                          const struct container_snapshot *s)
{
    const Runtime__V1__LinuxContainerResources *src = NULL;
    Runtime__V1__LinuxContainerResources *upd = NULL;
    if (s->resources_pb) {
        upd = runtime__v1__linux_container_resources__unpack(NULL, s->resources_len,
                                                             (const uint8_t *)s->resources_pb);
        src = upd;
    } else if (s->config && s->config->linux) {
        src = s->config->linux->resources;
    }
    if (src == NULL)
        return NULL;
    /* re-encode into call memory so the copy lives as long as the call */
    size_t len = protobuf_c_message_get_packed_size(&src->base);
    uint8_t *buf = rpc_alloc(call, len + 1);
    protobuf_c_message_pack(&src->base, buf);
    if (upd)
        runtime__v1__linux_container_resources__free_unpacked(upd, NULL);
    Runtime__V1__LinuxContainerResources *copy =
        runtime__v1__linux_container_resources__unpack(NULL, len, buf);
    if (copy == NULL)
        return NULL;
    rpc_defer(call, free_resources, copy);
    Runtime__V1__ContainerResources *r =
        rpc_new_message(call, &runtime__v1__container_resources__descriptor);
    r->linux = copy;
    return r;
}

/* Kernel signal number → CRI Signal enum (whose numbering is its own). */
static Runtime__V1__Signal cri_signal(int signo)
{
    static const struct {
        int signo;
        Runtime__V1__Signal v;
    } tab[] = {
        {SIGABRT, RUNTIME__V1__SIGNAL__SIGABRT},     {SIGALRM, RUNTIME__V1__SIGNAL__SIGALRM},
        {SIGBUS, RUNTIME__V1__SIGNAL__SIGBUS},       {SIGCHLD, RUNTIME__V1__SIGNAL__SIGCHLD},
        {SIGCONT, RUNTIME__V1__SIGNAL__SIGCONT},     {SIGFPE, RUNTIME__V1__SIGNAL__SIGFPE},
        {SIGHUP, RUNTIME__V1__SIGNAL__SIGHUP},       {SIGILL, RUNTIME__V1__SIGNAL__SIGILL},
        {SIGIO, RUNTIME__V1__SIGNAL__SIGIO},         {SIGINT, RUNTIME__V1__SIGNAL__SIGINT},
        {SIGKILL, RUNTIME__V1__SIGNAL__SIGKILL},     {SIGPIPE, RUNTIME__V1__SIGNAL__SIGPIPE},
        {SIGPROF, RUNTIME__V1__SIGNAL__SIGPROF},     {SIGPWR, RUNTIME__V1__SIGNAL__SIGPWR},
        {SIGQUIT, RUNTIME__V1__SIGNAL__SIGQUIT},     {SIGSEGV, RUNTIME__V1__SIGNAL__SIGSEGV},
        {SIGSTKFLT, RUNTIME__V1__SIGNAL__SIGSTKFLT}, {SIGSTOP, RUNTIME__V1__SIGNAL__SIGSTOP},
        {SIGSYS, RUNTIME__V1__SIGNAL__SIGSYS},       {SIGTERM, RUNTIME__V1__SIGNAL__SIGTERM},
        {SIGTRAP, RUNTIME__V1__SIGNAL__SIGTRAP},     {SIGTSTP, RUNTIME__V1__SIGNAL__SIGTSTP},
        {SIGTTIN, RUNTIME__V1__SIGNAL__SIGTTIN},     {SIGTTOU, RUNTIME__V1__SIGNAL__SIGTTOU},
        {SIGURG, RUNTIME__V1__SIGNAL__SIGURG},       {SIGUSR1, RUNTIME__V1__SIGNAL__SIGUSR1},
        {SIGUSR2, RUNTIME__V1__SIGNAL__SIGUSR2},     {SIGVTALRM, RUNTIME__V1__SIGNAL__SIGVTALRM},
        {SIGWINCH, RUNTIME__V1__SIGNAL__SIGWINCH},   {SIGXCPU, RUNTIME__V1__SIGNAL__SIGXCPU},
        {SIGXFSZ, RUNTIME__V1__SIGNAL__SIGXFSZ},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (tab[i].signo == signo)
            return tab[i].v;
    /* real-time signals: kernel 34 (SIGRTMIN) .. 64 (SIGRTMAX) are CRI 35 .. 65 */
    if (signo >= 34 && signo <= 64)
        return (Runtime__V1__Signal)(signo + 1);
    return RUNTIME__V1__SIGNAL__SIGTERM;
}

Runtime__V1__ContainerStatus *container_status_message(struct rpc_call *call,
                                                       const struct container_snapshot *s)
{
    Runtime__V1__ContainerStatus *r =
        rpc_new_message(call, &runtime__v1__container_status__descriptor);
    const Runtime__V1__ContainerConfig *cfg = s->config;
    r->id = rpc_strdup(call, s->id);
    r->metadata = copy_metadata(call, cfg ? cfg->metadata : NULL);
    r->state = (Runtime__V1__ContainerState)s->state;
    r->created_at = s->created_ns;
    r->started_at = s->started_ns;
    r->finished_at = s->finished_ns;
    r->exit_code = s->exit_code;
    r->image = image_spec(call, s);
    r->image_ref = rpc_strdup(call, image_ref_of(s));
    r->image_id = rpc_strdup(call, s->image_id);
    r->reason = rpc_strdup(call, s->reason);
    r->message = rpc_strdup(call, s->message);
    r->log_path = rpc_strdup(call, s->log_path);
    r->resources = resources_message(call, s);
    r->stop_signal = cri_signal(s->stop_signo);
    if (s->has_user) {
        r->user = rpc_new_message(call, &runtime__v1__container_user__descriptor);
        Runtime__V1__LinuxContainerUser *u =
            rpc_new_message(call, &runtime__v1__linux_container_user__descriptor);
        u->uid = s->uid;
        u->gid = s->gid;
        u->supplemental_groups = rpc_alloc(call, (s->n_gids + 1) * sizeof(int64_t));
        for (size_t i = 0; i < s->n_gids; i++)
            u->supplemental_groups[i] = s->gids[i];
        u->n_supplemental_groups = s->n_gids;
        r->user->linux = u;
    }
    if (cfg) {
        r->labels = rpc_copy_map(call, &runtime__v1__container_status__labels_entry__descriptor,
                                 cfg->n_labels, (void *const *)cfg->labels, &r->n_labels);
        r->annotations =
            rpc_copy_map(call, &runtime__v1__container_status__annotations_entry__descriptor,
                         cfg->n_annotations, (void *const *)cfg->annotations, &r->n_annotations);
        r->n_mounts = cfg->n_mounts;
        r->mounts = rpc_alloc(call, (cfg->n_mounts + 1) * sizeof(*r->mounts));
        for (size_t i = 0; i < cfg->n_mounts; i++) {
            const Runtime__V1__Mount *m = cfg->mounts[i];
            Runtime__V1__Mount *o = rpc_new_message(call, &runtime__v1__mount__descriptor);
            o->container_path = rpc_strdup(call, m->container_path);
            o->host_path = rpc_strdup(call, m->host_path);
            o->readonly = m->readonly;
            o->selinux_relabel = m->selinux_relabel;
            o->propagation = m->propagation;
            o->recursive_read_only = m->recursive_read_only;
            if (m->image && m->image->image && m->image->image[0]) {
                /* an image volume: the image as asked for, and the id it resolved to */
                Runtime__V1__ImageSpec *is =
                    rpc_new_message(call, &runtime__v1__image_spec__descriptor);
                is->image = rpc_strdup(call, m->image->image);
                is->user_specified_image = rpc_strdup(call, m->image->user_specified_image);
                is->image_ref = rpc_strdup(call, m->image->image_ref);
                o->image = is;
                o->image_sub_path = rpc_strdup(call, m->image_sub_path);
            }
            r->mounts[i] = o;
        }
    }
    return r;
}

/* ---- handlers ------------------------------------------------------------------------------ */
/* container_path with "//", "/./" and a trailing "/" folded away (".." is left as is: the
 * spec builder refuses it), so that "/data", "/data/" and "//./data" compare equal. */
static char *mount_key(const char *p)
{
    return hull_path_clean(p, HULL_PATH_KEEP_DOTDOT);
}

/* Two mounts at one container path would shadow each other silently: refused. */
static int check_mounts(const Runtime__V1__ContainerConfig *cfg, hull_error_t *err)
{
    if (cfg == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        if (cfg->mounts[i] == NULL)
            continue;
        _cleanup_free_ char *a = mount_key(cfg->mounts[i]->container_path);
        for (size_t j = 0; j < i; j++) {
            if (cfg->mounts[j] == NULL)
                continue;
            _cleanup_free_ char *b = mount_key(cfg->mounts[j]->container_path);
            if (strcmp(a, b) == 0)
                return hull_error_setx(err, EINVAL,
                                       "CreateContainer: mounts %zu and %zu both go to \"%s\"", j,
                                       i, HULL_CLIP(a));
        }
    }
    return 0;
}

int rpc_create_container(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__CreateContainerRequest *in = (const void *)req;
    _cleanup_free_ char *id = NULL;
    if (check_mounts(in->config, err) < 0)
        return -EINVAL;
    int r = container_create(rpc_server(call), in->pod_sandbox_id, in->config, &id, err);
    if (r < 0)
        return r;
    Runtime__V1__CreateContainerResponse *out =
        rpc_new_message(call, &runtime__v1__create_container_response__descriptor);
    out->container_id = rpc_strdup(call, id);
    *resp = &out->base;
    return 0;
}

int rpc_start_container(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err)
{
    const Runtime__V1__StartContainerRequest *in = (const void *)req;
    int r = container_start(rpc_server(call), in->container_id, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__start_container_response__descriptor);
    return 0;
}

int rpc_stop_container(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       hull_error_t *err)
{
    const Runtime__V1__StopContainerRequest *in = (const void *)req;
    _cleanup_error_ hull_error_t e = NULL;
    int r = container_stop(rpc_server(call), in->container_id, in->timeout, &e);
    if (r < 0 && hull_error_status(&e) != ENOENT) {
        *err = hull_steal(e);
        return r;
    }
    /* Stopping a container that is gone is not an error (idempotent, as kubelet expects). */
    *resp = rpc_new_message(call, &runtime__v1__stop_container_response__descriptor);
    return 0;
}

int rpc_remove_container(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__RemoveContainerRequest *in = (const void *)req;
    if (in->container_id == NULL || in->container_id[0] == '\0')
        return hull_error_setx(err, EINVAL, "container id is empty");
    int r = container_remove(rpc_server(call), in->container_id, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__remove_container_response__descriptor);
    return 0;
}

static bool filter_match(const Runtime__V1__ContainerFilter *f, const struct container_snapshot *s)
{
    if (f == NULL)
        return true;
    if (f->id && f->id[0] && strncmp(s->id, f->id, strlen(f->id)) != 0)
        return false;
    if (f->pod_sandbox_id && f->pod_sandbox_id[0] &&
        strncmp(s->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
        return false;
    if (f->state && (int)f->state->state != s->state)
        return false;
    return rpc_labels_match(f->n_label_selector, (void *const *)f->label_selector,
                            s->config ? s->config->n_labels : 0,
                            s->config ? (void *const *)s->config->labels : NULL);
}

static int list_filtered(struct rpc_call *call, const Runtime__V1__ContainerFilter *f,
                         Runtime__V1__Container ***out, size_t *n_out, hull_error_t *err)
{
    struct container_snapshot **l = NULL;
    size_t n = 0;
    int r = container_list(rpc_server(call), NULL, &l, &n, err);
    if (r < 0)
        return r;
    Runtime__V1__Container **items = rpc_alloc(call, (n + 1) * sizeof(*items));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (filter_match(f, l[i]))
            items[k++] = container_message(call, l[i]);
    struct snapshot_list *sl = rpc_alloc(call, sizeof(*sl));
    *sl = (struct snapshot_list){.l = l, .n = n};
    rpc_defer(call, snapshot_list_free, sl); /* the messages borrow from it */
    *out = items;
    *n_out = k;
    return 0;
}

int rpc_list_containers(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err)
{
    const Runtime__V1__ListContainersRequest *in = (const void *)req;
    Runtime__V1__ListContainersResponse *out =
        rpc_new_message(call, &runtime__v1__list_containers_response__descriptor);
    int r = list_filtered(call, in->filter, &out->containers, &out->n_containers, err);
    if (r < 0)
        return r;
    *resp = &out->base;
    return 0;
}

#define STREAM_CHUNK 500

int rpc_stream_containers(struct rpc_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__StreamContainersRequest *in = (const void *)req;
    Runtime__V1__Container **items = NULL;
    size_t n = 0;
    int r = list_filtered(call, in->filter, &items, &n, err);
    if (r < 0)
        return r;
    return rpc_stream_items(call, &runtime__v1__stream_containers_response__descriptor, items, n,
                            STREAM_CHUNK, false, err);
}

int rpc_container_status(struct rpc_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__ContainerStatusRequest *in = (const void *)req;
    struct container_snapshot *s = NULL;
    int r = container_get(rpc_server(call), in->container_id, &s, err);
    if (r < 0)
        return r;
    Runtime__V1__ContainerStatusResponse *out =
        rpc_new_message(call, &runtime__v1__container_status_response__descriptor);
    out->status = container_status_message(call, s);
    if (in->verbose) {
        struct rpc_map_entry **info = rpc_alloc(call, sizeof(*info));
        info[0] =
            rpc_new_message(call, &runtime__v1__container_status_response__info_entry__descriptor);
        info[0]->key = "info";
        info[0]->value =
            rpc_printf(call,
                       "{\"sandboxID\":\"%s\",\"pid\":%d,\"runtimeHandler\":\"%s\","
                       "\"cgroupsPath\":\"%s\",\"upperDir\":\"%s\"}",
                       s->pod_id, (int)s->pid, s->runtime_handler, s->cgroups_path, s->upper_dir);
        out->info = (void *)info;
        out->n_info = 1;
    }
    container_snapshot_free(s);
    *resp = &out->base;
    return 0;
}

int rpc_update_container_resources(struct rpc_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__UpdateContainerResourcesRequest *in = (const void *)req;
    int r = hooks_update(rpc_server(call), in->container_id, in->linux, err);
    if (r == 0)
        r = container_update_resources(rpc_server(call), in->container_id, in->linux, err);
    if (r < 0)
        return r;
    hooks_post_update(rpc_server(call), in->container_id);
    *resp = rpc_new_message(call, &runtime__v1__update_container_resources_response__descriptor);
    return 0;
}

int rpc_reopen_container_log(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__ReopenContainerLogRequest *in = (const void *)req;
    int r = container_reopen_log(rpc_server(call), in->container_id, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__reopen_container_log_response__descriptor);
    return 0;
}

int rpc_checkpoint_container(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__CheckpointContainerRequest *in = (const void *)req;
    int r =
        container_checkpoint(rpc_server(call), in->container_id, in->location, in->timeout, err);
    if (r < 0)
        return r;
    *resp = rpc_new_message(call, &runtime__v1__checkpoint_container_response__descriptor);
    return 0;
}

int rpc_exec_sync(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                  hull_error_t *err)
{
    const Runtime__V1__ExecSyncRequest *in = (const void *)req;
    struct container_exec_result res;
    int r = container_exec_sync(rpc_server(call), in->container_id, in->cmd, in->n_cmd, in->timeout,
                                &res, err);
    if (r < 0)
        return r;
    rpc_defer(call, free, res.out);
    rpc_defer(call, free, res.errout);
    if (res.timed_out)
        return hull_error_setx(err, ETIMEDOUT, "command %s timed out after %lld s",
                               HULL_CLIP(in->cmd[0]), (long long)in->timeout);
    Runtime__V1__ExecSyncResponse *out =
        rpc_new_message(call, &runtime__v1__exec_sync_response__descriptor);
    out->stdout.data = (uint8_t *)res.out;
    out->stdout.len = res.out_len;
    out->stderr.data = (uint8_t *)res.errout;
    out->stderr.len = res.err_len;
    out->exit_code = res.exit_code;
    *resp = &out->base;
    return 0;
}
