/* The NRI listener, plugin registration (Configure, Synchronize) and event delivery in plugin
 * order. */
#include "nri/internal.h"

#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NRI_VERSION        "v0.12.2"
#define VALID_EVENTS       ((1u << 14) - 1) /* RUN_POD_SANDBOX .. VALIDATE_CONTAINER_ADJUSTMENT */
#define CODE_UNIMPLEMENTED 12

#define PB(x) Nri__Pkg__Api__V1alpha1__##x

/* ---- arena ------------------------------------------------------------------------------- */
void *nri_alloc(struct nri_arena *a, size_t size)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->p = xrealloc(a->p, a->cap * sizeof(*a->p));
    }
    return a->p[a->n++] = xmalloc0(size ? size : 1);
}

char *nri_strdup(struct nri_arena *a, const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    char *d = nri_alloc(a, n + 1);
    memcpy(d, s, n);
    return d;
}

void nri_arena_free(struct nri_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
    memset(a, 0, sizeof(*a));
}

nri_pod_t *nri_pod_new(struct nri_arena *a)
{
    nri_pod_t *p = nri_alloc(a, sizeof(*p));
    nri__pkg__api__v1alpha1__pod_sandbox__init(p);
    return p;
}

nri_ctr_t *nri_ctr_new(struct nri_arena *a)
{
    nri_ctr_t *c = nri_alloc(a, sizeof(*c));
    nri__pkg__api__v1alpha1__container__init(c);
    return c;
}

void nri_map_add(struct nri_arena *a, size_t *n, void ***entries, const char *k, const char *v)
{
    /* every string map entry type of the API has this layout */
    PB(PodSandbox__LabelsEntry) *e = nri_alloc(a, sizeof(*e));
    nri__pkg__api__v1alpha1__pod_sandbox__labels_entry__init(e);
    e->key = nri_strdup(a, k);
    e->value = nri_strdup(a, v);
    void **arr = nri_alloc(a, (*n + 1) * sizeof(*arr));
    if (*n)
        memcpy(arr, *entries, *n * sizeof(*arr));
    arr[(*n)++] = e;
    *entries = arr;
}

/* ---- plugins ----------------------------------------------------------------------------- */
static int plugin_order(const struct nri_plugin *a, const struct nri_plugin *b)
{
    int c = strcmp(a->idx, b->idx);
    return c ? c : strcmp(a->name, b->name);
}

static void activate(struct nri *n, struct nri_plugin *p)
{
    pthread_mutex_lock(&n->lock);
    pthread_mutex_lock(&p->lock);
    bool closed = p->closed;
    if (!closed)
        p->active = true;
    pthread_mutex_unlock(&p->lock);
    if (!closed) {
        size_t i = 0;
        while (i < n->n_plugins && plugin_order(n->plugins[i], p) <= 0)
            i++;
        n->plugins = xrealloc(n->plugins, (n->n_plugins + 1) * sizeof(*n->plugins));
        memmove(n->plugins + i + 1, n->plugins + i, (n->n_plugins - i) * sizeof(*n->plugins));
        n->plugins[i] = nri_plugin_ref(p);
        n->n_plugins++;
    }
    pthread_mutex_unlock(&n->lock);
    if (!closed)
        log_info("nri: plugin %s ready (events 0x%x)", p->full, p->events);
}

void nri_drop_plugin(struct nri *n, struct nri_plugin *p)
{
    struct nri_plugin *found = NULL;
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n->n_plugins; i++)
        if (n->plugins[i] == p) {
            found = p;
            memmove(n->plugins + i, n->plugins + i + 1,
                    (n->n_plugins - i - 1) * sizeof(*n->plugins));
            n->n_plugins--;
            break;
        }
    pthread_mutex_unlock(&n->lock);
    nri_plugin_unref(found);
}

size_t nri_plugin_count(struct nri *n)
{
    if (n == NULL)
        return 0;
    pthread_mutex_lock(&n->lock);
    size_t c = n->n_plugins;
    pthread_mutex_unlock(&n->lock);
    return c;
}

/* The active plugins subscribed to ev, referenced, in call order. */
static size_t subscribed(struct nri *n, enum nri_event ev, struct nri_plugin ***out)
{
    pthread_mutex_lock(&n->lock);
    struct nri_plugin **l = xmalloc0((n->n_plugins + 1) * sizeof(*l));
    size_t k = 0;
    for (size_t i = 0; i < n->n_plugins; i++)
        if (n->plugins[i]->events & (1u << (ev - 1)))
            l[k++] = nri_plugin_ref(n->plugins[i]);
    pthread_mutex_unlock(&n->lock);
    *out = l;
    return k;
}

static void unref_all(struct nri_plugin **l, size_t k)
{
    for (size_t i = 0; i < k; i++)
        nri_plugin_unref(l[i]);
    free(l);
}

static bool valid_name(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == '+'))
            return false;
    return true;
}

static bool valid_index(const char *s)
{
    return s && strlen(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

static void apply_updates(struct nri *n, struct nri_plugin *p, PB(ContainerUpdate) * *u, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        _cleanup_error_ hull_error_t err = NULL;
        if (n->host.update && n->host.update(n->host.opaque, u[i], &err) < 0)
            log_warn("nri: plugin %s: update of container %s: %s", p->full, u[i]->container_id,
                     hull_error_msg(&err));
    }
}

int nri_runtime_request(struct nri_plugin *p, const Hull__Ttrpc__Request *req,
                        Hull__Ttrpc__Response *resp, uint8_t **payload, hull_error_t *err)
{
    if (req->service == NULL || strcmp(req->service, NRI_RUNTIME_SERVICE) != 0)
        return hull_error_setx(err, ENOSYS, "service %s: not implemented",
                               req->service ? req->service : "");
    if (strcmp(req->method, "RegisterPlugin") == 0) {
        PB(RegisterPluginRequest) *r = nri__pkg__api__v1alpha1__register_plugin_request__unpack(
            NULL, req->payload.len, req->payload.data);
        if (r == NULL)
            return hull_error_setx(err, EINVAL, "undecodable RegisterPluginRequest");
        int rc = 0;
        pthread_mutex_lock(&p->lock);
        if (p->registered)
            rc = hull_error_setx(err, EINVAL, "plugin already registered as %s", p->full);
        else if (!valid_name(r->plugin_name))
            rc = hull_error_setx(err, EINVAL, "invalid plugin name \"%s\"", r->plugin_name);
        else if (!valid_index(r->plugin_idx))
            rc = hull_error_setx(err, EINVAL, "invalid plugin index \"%s\", must be 2 digits",
                                 r->plugin_idx);
        if (rc == 0) {
            p->name = xstrdup(r->plugin_name);
            p->idx = xstrdup(r->plugin_idx);
            free(p->full);
            p->full = xasprintf("%s-%s", p->idx, p->name);
            p->registered = true;
            pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        if (rc == 0)
            log_info("nri: plugin %s registered (NRI %s)", p->full,
                     r->nri_version && r->nri_version[0] ? r->nri_version : "unknown");
        nri__pkg__api__v1alpha1__register_plugin_request__free_unpacked(r, NULL);
        if (rc < 0)
            return rc;
        resp->payload.len = 0; /* Empty */
        return 0;
    }
    if (strcmp(req->method, "UpdateContainers") == 0) {
        pthread_mutex_lock(&p->lock);
        bool active = p->active;
        pthread_mutex_unlock(&p->lock);
        if (!active)
            return hull_error_setx(err, EINVAL, "plugin is not registered and synchronized");
        PB(UpdateContainersRequest) *r = nri__pkg__api__v1alpha1__update_containers_request__unpack(
            NULL, req->payload.len, req->payload.data);
        if (r == NULL)
            return hull_error_setx(err, EINVAL, "undecodable UpdateContainersRequest");
        PB(UpdateContainersResponse)
        out = NRI__PKG__API__V1ALPHA1__UPDATE_CONTAINERS_RESPONSE__INIT;
        _cleanup_free_ PB(ContainerUpdate) **failed = xmalloc0((r->n_update + 1) * sizeof(*failed));
        for (size_t i = 0; i < r->n_update; i++) {
            _cleanup_error_ hull_error_t uerr = NULL;
            if (p->n->host.update == NULL ||
                p->n->host.update(p->n->host.opaque, r->update[i], &uerr) < 0) {
                log_warn("nri: plugin %s: update of container %s: %s", p->full,
                         r->update[i]->container_id, hull_error_msg(&uerr));
                if (!r->update[i]->ignore_failure)
                    failed[out.n_failed++] = r->update[i];
            }
        }
        out.failed = failed;
        size_t len = protobuf_c_message_get_packed_size(&out.base);
        *payload = xmalloc0(len + 1);
        protobuf_c_message_pack(&out.base, *payload);
        resp->payload.data = *payload;
        resp->payload.len = len;
        nri__pkg__api__v1alpha1__update_containers_request__free_unpacked(r, NULL);
        return 0;
    }
    return hull_error_setx(err, ENOSYS, "method %s: not implemented", req->method);
}

/* Registration, Configure and Synchronize of one new connection. */
static void *setup(void *arg)
{
    struct nri_plugin *p = arg;
    struct nri *n = p->n;
    _cleanup_error_ hull_error_t err = NULL;
    if (!nri_plugin_wait_registered(p, n->reg_timeout_ms)) {
        nri_plugin_close(p, "did not register in time");
        nri_plugin_unref(p);
        return NULL;
    }
    PB(ConfigureRequest) cr = NRI__PKG__API__V1ALPHA1__CONFIGURE_REQUEST__INIT;
    cr.config = (char *)"";
    cr.runtime_name = n->runtime_name;
    cr.runtime_version = n->runtime_version;
    cr.registration_timeout = n->reg_timeout_ms;
    cr.request_timeout = n->req_timeout_ms;
    cr.nri_version = (char *)NRI_VERSION;
    ProtobufCMessage *m = NULL;
    int code;
    int r = nri_plugin_call(p, "Configure", &cr.base,
                            &nri__pkg__api__v1alpha1__configure_response__descriptor, &m,
                            n->req_timeout_ms, &code, &err);
    if (r < 0) {
        _cleanup_free_ char *why = xasprintf("Configure failed: %s", hull_error_msg(&err));
        nri_plugin_close(p, why);
        nri_plugin_unref(p);
        return NULL;
    }
    uint32_t events = (uint32_t)((PB(ConfigureResponse) *)m)->events;
    protobuf_c_message_free_unpacked(m, NULL);
    if (events & ~VALID_EVENTS) {
        nri_plugin_close(p, "subscribed to invalid events");
        nri_plugin_unref(p);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    p->events = events ? events : VALID_EVENTS;
    pthread_mutex_unlock(&p->lock);

    /* no event is in flight while the state is taken and the plugin synchronizes: an object
     * made visible after the snapshot reaches the plugin as an event once it is active */
    pthread_rwlock_wrlock(&n->sync);
    struct nri_arena a = {0};
    PB(SynchronizeRequest) sr = NRI__PKG__API__V1ALPHA1__SYNCHRONIZE_REQUEST__INIT;
    if (n->host.snapshot)
        n->host.snapshot(n->host.opaque, &a, &sr.pods, &sr.n_pods, &sr.containers,
                         &sr.n_containers);
    r = nri_plugin_call(p, "Synchronize", &sr.base,
                        &nri__pkg__api__v1alpha1__synchronize_response__descriptor, &m,
                        n->reg_timeout_ms, &code, &err);
    nri_arena_free(&a);
    if (r == 0) {
        PB(SynchronizeResponse) *resp = (PB(SynchronizeResponse) *)m;
        apply_updates(n, p, resp->update, resp->n_update);
        protobuf_c_message_free_unpacked(m, NULL);
        activate(n, p);
    } else {
        _cleanup_free_ char *why = xasprintf("Synchronize failed: %s", hull_error_msg(&err));
        nri_plugin_close(p, why);
    }
    pthread_rwlock_unlock(&n->sync);
    nri_plugin_unref(p);
    return NULL;
}

static void *acceptor(void *arg)
{
    struct nri *n = arg;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = n->lfd, .events = POLLIN},
                                {.fd = n->stop_fd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("nri: poll: %s", strerror(errno));
            return NULL;
        }
        if (pfd[1].revents)
            return NULL;
        int fd = accept4(n->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        _cleanup_error_ hull_error_t err = NULL;
        struct nri_plugin *p = nri_plugin_new(n, fd);
        if (nri_plugin_start_reader(p, &err) < 0) {
            log_warn("%s", hull_error_msg(&err));
            nri_plugin_unref(p);
            continue;
        }
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, setup, p) != 0) {
            nri_plugin_close(p, "cannot start its setup");
            nri_plugin_unref(p);
        }
        pthread_attr_destroy(&attr);
    }
}

int nri_start(const struct nri_options *o, const struct nri_host *h, struct nri **out,
              hull_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (o->socket == NULL || o->socket[0] != '/' || strlen(o->socket) >= sizeof(sa.sun_path))
        return hull_error_setx(err, EINVAL, "nri socket \"%s\": not an absolute path that fits",
                               o->socket ? o->socket : "");
    strcpy(sa.sun_path, o->socket);
    _cleanup_free_ char *dir = xstrdup(o->socket);
    int r = hull_mkdir_p(dirname(dir), 0711, err);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "nri socket");
    if (access(o->socket, F_OK) == 0) {
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return hull_error_setx(err, EADDRINUSE, "nri socket %s is served by another process",
                                   o->socket);
        unlink(o->socket); /* stale */
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hull_error_set(err, errno, "bind nri socket %s", o->socket);
    chmod(o->socket, 0600);
    if (listen(fd, 16) < 0) {
        unlink(o->socket);
        return hull_error_set(err, errno, "listen on nri socket %s", o->socket);
    }
    struct nri *n = xmalloc0(sizeof(*n));
    n->socket = xstrdup(o->socket);
    n->reg_timeout_ms = o->registration_timeout_ms > 0 ? o->registration_timeout_ms : 5000;
    n->req_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 2000;
    n->runtime_name = xstrdup(o->runtime_name ? o->runtime_name : "hull");
    n->runtime_version = xstrdup(o->runtime_version ? o->runtime_version : "");
    n->host = *h;
    pthread_rwlock_init(&n->sync, NULL);
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->cond, NULL);
    n->stop_fd = eventfd(0, EFD_CLOEXEC);
    n->lfd = fd;
    fd = -1;
    if (n->stop_fd < 0 || pthread_create(&n->accept_thread, NULL, acceptor, n) != 0) {
        r = hull_error_set(err, errno ? errno : EAGAIN, "start nri listener");
        unlink(n->socket);
        close(n->lfd);
        if (n->stop_fd >= 0)
            close(n->stop_fd);
        free(n->socket);
        free(n->runtime_name);
        free(n->runtime_version);
        free(n);
        return r;
    }
    log_info("nri: listening on %s", n->socket);
    *out = n;
    return 0;
}

void nri_stop(struct nri *n)
{
    if (n == NULL)
        return;
    uint64_t one = 1;
    if (write(n->stop_fd, &one, sizeof(one)) < 0)
        log_warn("nri: stop: %s", strerror(errno));
    pthread_join(n->accept_thread, NULL);
    close(n->lfd);
    close(n->stop_fd);
    unlink(n->socket);
    pthread_mutex_lock(&n->lock);
    n->stopping = true;
    for (size_t i = 0; i < n->n_all; i++)
        shutdown(n->all[i]->fd, SHUT_RDWR);
    pthread_mutex_unlock(&n->lock);
    /* the readers see the end of their streams and close their plugins */
    pthread_mutex_lock(&n->lock);
    while (n->live > 0)
        pthread_cond_wait(&n->cond, &n->lock);
    pthread_mutex_unlock(&n->lock);
    free(n->plugins);
    free(n->all);
    pthread_rwlock_destroy(&n->sync);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->cond);
    free(n->socket);
    free(n->runtime_name);
    free(n->runtime_version);
    free(n);
}

void nri_begin(struct nri *n)
{
    if (n)
        pthread_rwlock_rdlock(&n->sync);
}

void nri_end(struct nri *n)
{
    if (n)
        pthread_rwlock_unlock(&n->sync);
}

/* ---- events ------------------------------------------------------------------------------ */
struct ev_info {
    const char *method;
    const ProtobufCMessageDescriptor *req, *resp;
};

static const struct ev_info *ev_info(enum nri_event ev)
{
#define E(n, m, s)                                                                                 \
    [n] = {                                                                                        \
        m,                                                                                         \
        &nri__pkg__api__v1alpha1__##s##_request__descriptor,                                       \
        &nri__pkg__api__v1alpha1__##s##_response__descriptor                                       \
    }
    static const struct ev_info t[] = {
        E(NRI_RUN_POD_SANDBOX, "RunPodSandbox", run_pod_sandbox),
        E(NRI_STOP_POD_SANDBOX, "StopPodSandbox", stop_pod_sandbox),
        E(NRI_REMOVE_POD_SANDBOX, "RemovePodSandbox", remove_pod_sandbox),
        E(NRI_CREATE_CONTAINER, "CreateContainer", create_container),
        E(NRI_POST_CREATE_CONTAINER, "PostCreateContainer", post_create_container),
        E(NRI_START_CONTAINER, "StartContainer", start_container),
        E(NRI_POST_START_CONTAINER, "PostStartContainer", post_start_container),
        E(NRI_UPDATE_CONTAINER, "UpdateContainer", update_container),
        E(NRI_POST_UPDATE_CONTAINER, "PostUpdateContainer", post_update_container),
        E(NRI_STOP_CONTAINER, "StopContainer", stop_container),
        E(NRI_REMOVE_CONTAINER, "RemoveContainer", remove_container),
    };
#undef E
    return &t[ev];
}

/* Sets a message field by name (the pod, container and resources fields of the requests). */
static void set_field(ProtobufCMessage *m, const char *name, const void *value)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f)
        *(const void **)((char *)m + f->offset) = value;
}

static bool fails_call(enum nri_event ev)
{
    return ev == NRI_RUN_POD_SANDBOX || ev == NRI_CREATE_CONTAINER || ev == NRI_START_CONTAINER ||
           ev == NRI_UPDATE_CONTAINER;
}

/* One event call to p: 0 (also when p is gone: dropped), -EIO with the plugin's error. */
static int call_event(struct nri *n, struct nri_plugin *p, enum nri_event ev, const nri_pod_t *pod,
                      const nri_ctr_t *ctr, const nri_resources_t *res, ProtobufCMessage **resp,
                      hull_error_t *err)
{
    const struct ev_info *info = ev_info(ev);
    _cleanup_free_ ProtobufCMessage *req = xmalloc0(info->req->sizeof_message);
    protobuf_c_message_init(info->req, req);
    set_field(req, "pod", pod);
    set_field(req, "container", ctr);
    set_field(req, "linux_resources", res);
    _cleanup_error_ hull_error_t cerr = NULL;
    int code = 0;
    ProtobufCMessage *m = NULL;
    int r = nri_plugin_call(p, info->method, req, info->resp, &m, n->req_timeout_ms, &code, &cerr);
    if (r == -EREMOTEIO && code == CODE_UNIMPLEMENTED) {
        /* a plugin of an older NRI: the event as a StateChange */
        hull_error_free(&cerr);
        PB(StateChangeEvent) sc = NRI__PKG__API__V1ALPHA1__STATE_CHANGE_EVENT__INIT;
        sc.event = (PB(Event))ev;
        sc.pod = (nri_pod_t *)pod;
        sc.container = (nri_ctr_t *)ctr;
        r = nri_plugin_call(p, "StateChange", &sc.base, &nri__pkg__api__v1alpha1__empty__descriptor,
                            &m, n->req_timeout_ms, &code, &cerr);
    }
    if (r == 0) {
        if (resp)
            *resp = m;
        else
            protobuf_c_message_free_unpacked(m, NULL);
        return 0;
    }
    if (r != -EREMOTEIO) /* timed out or gone: dropped, the call goes on without it */
        return 0;
    if (!fails_call(ev)) {
        log_warn("nri: plugin %s failed %s: %s", p->full, info->method, hull_error_msg(&cerr));
        return 0;
    }
    return hull_error_setx(err, EIO, "NRI plugin %s failed %s: %s", p->full, info->method,
                           hull_error_msg(&cerr));
}

static int deliver(struct nri *n, enum nri_event ev, const nri_pod_t *pod, const nri_ctr_t *ctr,
                   const nri_resources_t *res, hull_error_t *err)
{
    if (n == NULL)
        return 0;
    struct nri_plugin **l;
    size_t k = subscribed(n, ev, &l);
    int r = 0;
    for (size_t i = 0; i < k && r == 0; i++)
        r = call_event(n, l[i], ev, pod, ctr, res, NULL, err);
    unref_all(l, k);
    return r;
}

int nri_pod_event(struct nri *n, enum nri_event ev, const nri_pod_t *pod, hull_error_t *err)
{
    return deliver(n, ev, pod, NULL, NULL, err);
}

int nri_ctr_event(struct nri *n, enum nri_event ev, const nri_pod_t *pod, const nri_ctr_t *ctr,
                  hull_error_t *err)
{
    return deliver(n, ev, pod, ctr, NULL, err);
}

int nri_update_container(struct nri *n, const nri_pod_t *pod, const nri_ctr_t *ctr,
                         const nri_resources_t *res, hull_error_t *err)
{
    return deliver(n, NRI_UPDATE_CONTAINER, pod, ctr, res, err);
}

int nri_create_container(struct nri *n, const nri_pod_t *pod, const nri_ctr_t *ctr,
                         const char *spec_json, char **spec_out, hull_error_t *err)
{
    *spec_out = NULL;
    if (n == NULL)
        return 0;
    struct nri_plugin **l;
    size_t k = subscribed(n, NRI_CREATE_CONTAINER, &l);
    ProtobufCMessage **resps = xmalloc0((k + 1) * sizeof(*resps));
    struct nri_merge *m = nri_merge_new();
    int r = 0;
    for (size_t i = 0; i < k && r == 0; i++) {
        r = call_event(n, l[i], NRI_CREATE_CONTAINER, pod, ctr, NULL, &resps[i], err);
        PB(CreateContainerResponse) *cr = (PB(CreateContainerResponse) *)resps[i];
        if (r == 0 && cr && cr->adjust)
            r = nri_merge_add(m, l[i]->full, cr->adjust, err);
        if (r == 0 && cr)
            apply_updates(n, l[i], cr->update, cr->n_update);
    }
    if (r == 0 && !nri_merge_empty(m))
        r = nri_merge_apply(m, spec_json, spec_out, err);
    nri_merge_free(m);
    for (size_t i = 0; i < k; i++)
        if (resps[i])
            protobuf_c_message_free_unpacked(resps[i], NULL);
    free(resps);
    unref_all(l, k);
    return r;
}
