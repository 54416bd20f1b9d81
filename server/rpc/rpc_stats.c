/* CRI stats RPCs: ContainerStats, ListContainerStats, StreamContainerStats, PodSandboxStats,
 * ListPodSandboxStats, StreamPodSandboxStats.  Usage comes from the cgroup library
 * (common/cgroup.h) and stats.c (writable layers, network namespaces); nano-cores from the
 * previous sample per object that stats_service.c keeps. */
#include "server/container/container.h"
#include "server/rpc/handlers.h"
#include "server/pod/pod.h"
#include "server/stats/stats.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* cgroup v2 pressure (PSI), NULL when the kernel gave none for this resource. */
static Runtime__V1__PsiStats *psi_message(struct rpc_call *call, const struct hull_cgroup_psi *p)
{
    if (!p->valid)
        return NULL;
    Runtime__V1__PsiStats *m = rpc_new_message(call, &runtime__v1__psi_stats__descriptor);
    const struct hull_cgroup_psi_data *src[2] = {&p->some, p->has_full ? &p->full : NULL};
    Runtime__V1__PsiData **dst[2] = {&m->some, &m->full};
    for (size_t i = 0; i < 2; i++) {
        if (src[i] == NULL)
            continue;
        Runtime__V1__PsiData *d = rpc_new_message(call, &runtime__v1__psi_data__descriptor);
        d->total = src[i]->total_ns;
        d->avg10 = src[i]->avg10;
        d->avg60 = src[i]->avg60;
        d->avg300 = src[i]->avg300;
        *dst[i] = d;
    }
    return m;
}

static void fill_cpu_mem(struct rpc_call *call, const struct hull_cgroup_stats *u, const char *key,
                         Runtime__V1__CpuUsage **cpu_out, Runtime__V1__MemoryUsage **mem_out,
                         Runtime__V1__IoUsage **io_out)
{
    if (u->cpu.valid || u->cpu.psi.valid) {
        Runtime__V1__CpuUsage *cpu = rpc_new_message(call, &runtime__v1__cpu_usage__descriptor);
        cpu->timestamp = u->timestamp_ns;
        if (u->cpu.valid) {
            cpu->usage_core_nano_seconds = rpc_u64(call, u->cpu.usage_ns);
            uint64_t nc = 0;
            if (stats_service_nano_cores(rpc_server(call), key, stats_cpu_sample_of(u), &nc))
                cpu->usage_nano_cores = rpc_u64(call, nc);
        }
        cpu->psi = psi_message(call, &u->cpu.psi);
        *cpu_out = cpu;
    }
    if (u->memory.valid || u->memory.psi.valid) {
        Runtime__V1__MemoryUsage *m = rpc_new_message(call, &runtime__v1__memory_usage__descriptor);
        m->timestamp = u->timestamp_ns;
        if (u->memory.valid) {
            m->working_set_bytes = rpc_u64(call, u->memory.working_set_bytes);
            m->usage_bytes = rpc_u64(call, u->memory.usage_bytes);
            m->rss_bytes = rpc_u64(call, u->memory.rss_bytes);
            m->page_faults = rpc_u64(call, u->memory.page_faults);
            m->major_page_faults = rpc_u64(call, u->memory.major_page_faults);
            if (u->memory.has_limit)
                m->available_bytes = rpc_u64(call, u->memory.available_bytes);
        }
        m->psi = psi_message(call, &u->memory.psi);
        *mem_out = m;
    }
    if (u->io.psi.valid) {
        Runtime__V1__IoUsage *io = rpc_new_message(call, &runtime__v1__io_usage__descriptor);
        io->timestamp = u->timestamp_ns;
        io->psi = psi_message(call, &u->io.psi);
        *io_out = io;
    }
}

/* The mount point holding the writable layers, looked up once per call: finding it reads the
 * whole mount table, which grows with the pods (their overlays, pinned namespaces, shm), so a
 * lookup per container made the list calls quadratic.  Keyed by the layer's device. */
struct fs_mount_cache {
    bool have;
    dev_t dev;
    char *mountpoint; /* may be NULL: unknown */
};

static void fs_mount_cache_clear(struct fs_mount_cache *m)
{
    free(m->mountpoint);
    memset(m, 0, sizeof(*m));
}

static const char *fs_mount_of(struct fs_mount_cache *m, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return NULL;
    if (!m->have || m->dev != st.st_dev) {
        _cleanup_error_ hull_error_t e = NULL;
        fs_mount_cache_clear(m);
        stats_fs_mountpoint(dir, &m->mountpoint, &e); /* unknown: left empty */
        m->have = true;
        m->dev = st.st_dev;
    }
    return m->mountpoint;
}

static Runtime__V1__ContainerStats *container_stats(struct rpc_call *call,
                                                    const struct container_snapshot *c,
                                                    struct fs_mount_cache *mc)
{
    const struct hull_cgroup_layout *cg = stats_service_cgroups(rpc_server(call));
    Runtime__V1__ContainerStats *st =
        rpc_new_message(call, &runtime__v1__container_stats__descriptor);
    Runtime__V1__ContainerAttributes *a =
        rpc_new_message(call, &runtime__v1__container_attributes__descriptor);
    a->id = rpc_strdup(call, c->id);
    a->metadata = rpc_new_message(call, &runtime__v1__container_metadata__descriptor);
    if (c->config && c->config->metadata) {
        a->metadata->name = rpc_strdup(call, c->config->metadata->name);
        a->metadata->attempt = c->config->metadata->attempt;
        a->labels =
            rpc_copy_map(call, &runtime__v1__container_attributes__labels_entry__descriptor,
                         c->config->n_labels, (void *const *)c->config->labels, &a->n_labels);
        a->annotations = rpc_copy_map(
            call, &runtime__v1__container_attributes__annotations_entry__descriptor,
            c->config->n_annotations, (void *const *)c->config->annotations, &a->n_annotations);
    }
    st->attributes = a;
    struct hull_cgroup_stats u;
    _cleanup_error_ hull_error_t e = NULL;
    if (cg && c->cgroups_path[0] && c->state != CONTAINER_EXITED &&
        hull_cgroup_stats_read_path(cg, c->cgroups_path, &u, &e) == 0) {
        _cleanup_free_ char *key = xasprintf("c/%s", c->id);
        fill_cpu_mem(call, &u, key, &st->cpu, &st->memory, &st->io);
        if (u.memory.valid && u.memory.has_swap) {
            st->swap = rpc_new_message(call, &runtime__v1__swap_usage__descriptor);
            st->swap->timestamp = u.timestamp_ns;
            st->swap->swap_usage_bytes = rpc_u64(call, u.memory.swap_usage_bytes);
            if (u.memory.has_swap_limit)
                st->swap->swap_available_bytes = rpc_u64(call, u.memory.swap_available_bytes);
        }
    }
    struct stats_fs_usage fs;
    hull_error_free(&e);
    if (stats_dir_usage(c->upper_dir, &fs, &e) == 0) {
        const char *mp = fs_mount_of(mc, c->upper_dir);
        Runtime__V1__FilesystemUsage *w =
            rpc_fs_usage(call, fs.timestamp_ns, mp, fs.used_bytes, fs.inodes_used);
        st->writable_layer = w;
    }
    return st;
}

static bool container_filter_match(const Runtime__V1__ContainerStatsFilter *f,
                                   const struct container_snapshot *c)
{
    if (f == NULL)
        return true;
    if (f->id && f->id[0] && strncmp(c->id, f->id, strlen(f->id)) != 0)
        return false;
    if (f->pod_sandbox_id && f->pod_sandbox_id[0] &&
        strncmp(c->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
        return false;
    return rpc_labels_match(f->n_label_selector, (void *const *)f->label_selector,
                            c->config ? c->config->n_labels : 0,
                            c->config ? (void *const *)c->config->labels : NULL);
}

int rpc_container_stats(struct rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        hull_error_t *err)
{
    const Runtime__V1__ContainerStatsRequest *in = (const void *)req;
    struct container_snapshot *c = NULL;
    int r = container_get(rpc_server(call), in->container_id, &c, err);
    if (r < 0)
        return r;
    Runtime__V1__ContainerStatsResponse *out =
        rpc_new_message(call, &runtime__v1__container_stats_response__descriptor);
    struct fs_mount_cache mc = {0};
    out->stats = container_stats(call, c, &mc);
    fs_mount_cache_clear(&mc);
    container_snapshot_free(c);
    *resp = &out->base;
    return 0;
}

static int list_container_stats(struct rpc_call *call, const Runtime__V1__ContainerStatsFilter *f,
                                Runtime__V1__ContainerStats ***out, size_t *n_out,
                                hull_error_t *err)
{
    struct container_snapshot **l = NULL;
    size_t n = 0;
    int r = container_list(rpc_server(call), NULL, &l, &n, err);
    if (r < 0)
        return r;
    Runtime__V1__ContainerStats **items = rpc_alloc(call, (n + 1) * sizeof(*items));
    size_t k = 0;
    struct fs_mount_cache mc = {0};
    for (size_t i = 0; i < n; i++)
        if (container_filter_match(f, l[i]))
            items[k++] = container_stats(call, l[i], &mc);
    fs_mount_cache_clear(&mc);
    container_snapshot_list_free(l, n);
    *out = items;
    *n_out = k;
    return 0;
}

int rpc_list_container_stats(struct rpc_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__ListContainerStatsRequest *in = (const void *)req;
    Runtime__V1__ListContainerStatsResponse *out =
        rpc_new_message(call, &runtime__v1__list_container_stats_response__descriptor);
    int r = list_container_stats(call, in->filter, &out->stats, &out->n_stats, err);
    if (r < 0)
        return r;
    *resp = &out->base;
    return 0;
}

#define STREAM_CHUNK 200

int rpc_stream_container_stats(struct rpc_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__StreamContainerStatsRequest *in = (const void *)req;
    Runtime__V1__ContainerStats **items = NULL;
    size_t n = 0;
    int r = list_container_stats(call, in->filter, &items, &n, err);
    if (r < 0)
        return r;
    return rpc_stream_items(call, &runtime__v1__stream_container_stats_response__descriptor, items,
                            n, STREAM_CHUNK, false, err);
}

/* ---- pods ----------------------------------------------------------------------------------- */
/* The containers of the pods a call reports on, listed once and grouped by pod (a list per pod
 * walked every container once per pod). */
struct pod_ctrs {
    struct container_snapshot **l;
    size_t n;
    struct fs_mount_cache mc;
};

static int by_pod(const void *a, const void *b)
{
    const struct container_snapshot *x = *(struct container_snapshot *const *)a;
    const struct container_snapshot *y = *(struct container_snapshot *const *)b;
    int r = strcmp(x->pod_id, y->pod_id);
    if (r == 0)
        r = x->created_ns < y->created_ns ? -1 : x->created_ns > y->created_ns;
    return r != 0 ? r : strcmp(x->id, y->id);
}

static void pod_ctrs_load(struct hull_server *srv, const char *pod_id, struct pod_ctrs *pc)
{
    memset(pc, 0, sizeof(*pc));
    if (container_list(srv, pod_id, &pc->l, &pc->n, NULL) < 0) {
        pc->l = NULL;
        pc->n = 0;
    }
    if (pc->n > 1)
        qsort(pc->l, pc->n, sizeof(*pc->l), by_pod);
}

static void pod_ctrs_free(struct pod_ctrs *pc)
{
    container_snapshot_list_free(pc->l, pc->n);
    fs_mount_cache_clear(&pc->mc);
}

/* The containers of pod_id: l[*first .. *first + returned). */
static size_t pod_ctrs_of(const struct pod_ctrs *pc, const char *pod_id, size_t *first)
{
    size_t lo = 0, hi = pc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(pc->l[mid]->pod_id, pod_id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < pc->n && strcmp(pc->l[end]->pod_id, pod_id) == 0)
        end++;
    *first = lo;
    return end - lo;
}

static Runtime__V1__NetworkInterfaceUsage *iface_usage(struct rpc_call *call,
                                                       const struct stats_net_iface *i)
{
    Runtime__V1__NetworkInterfaceUsage *u =
        rpc_new_message(call, &runtime__v1__network_interface_usage__descriptor);
    u->name = rpc_strdup(call, i->name);
    u->rx_bytes = rpc_u64(call, i->rx_bytes);
    u->rx_errors = rpc_u64(call, i->rx_errors);
    u->tx_bytes = rpc_u64(call, i->tx_bytes);
    u->tx_errors = rpc_u64(call, i->tx_errors);
    return u;
}

static Runtime__V1__PodSandboxStats *pod_stats(struct rpc_call *call, struct sandbox *sb,
                                               struct pod_ctrs *pc)
{
    struct hull_server *srv = rpc_server(call);
    const struct hull_cgroup_layout *cg = stats_service_cgroups(srv);
    const Runtime__V1__PodSandboxConfig *cfg = sandbox_config(sb);
    Runtime__V1__PodSandboxStats *st =
        rpc_new_message(call, &runtime__v1__pod_sandbox_stats__descriptor);
    Runtime__V1__PodSandboxAttributes *a =
        rpc_new_message(call, &runtime__v1__pod_sandbox_attributes__descriptor);
    a->id = rpc_strdup(call, sandbox_id(sb));
    if (cfg && cfg->metadata) {
        a->metadata = rpc_new_message(call, &runtime__v1__pod_sandbox_metadata__descriptor);
        a->metadata->name = rpc_strdup(call, cfg->metadata->name);
        a->metadata->uid = rpc_strdup(call, cfg->metadata->uid);
        a->metadata->namespace_ = rpc_strdup(call, cfg->metadata->namespace_);
        a->metadata->attempt = cfg->metadata->attempt;
    }
    if (cfg) {
        a->labels =
            rpc_copy_map(call, &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor,
                         cfg->n_labels, (void *const *)cfg->labels, &a->n_labels);
        a->annotations =
            rpc_copy_map(call, &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                         cfg->n_annotations, (void *const *)cfg->annotations, &a->n_annotations);
    }
    st->attributes = a;
    Runtime__V1__LinuxPodSandboxStats *lx =
        rpc_new_message(call, &runtime__v1__linux_pod_sandbox_stats__descriptor);
    st->linux = lx;
    struct hull_cgroup_stats u;
    _cleanup_error_ hull_error_t e = NULL;
    if (cg && sandbox_get_state(sb) == SANDBOX_STATE_READY &&
        hull_cgroup_stats_read_path(cg, sandbox_cgroup_parent(sb), &u, &e) == 0) {
        _cleanup_free_ char *key = xasprintf("p/%s", sandbox_id(sb));
        fill_cpu_mem(call, &u, key, &lx->cpu, &lx->memory, &lx->io);
        if (u.pids.valid) {
            lx->process = rpc_new_message(call, &runtime__v1__process_usage__descriptor);
            lx->process->timestamp = u.timestamp_ns;
            lx->process->process_count = rpc_u64(call, u.pids.current);
        }
    }
    const char *netns = sandbox_netns_path(sb);
    struct stats_net net = {0};
    hull_error_free(&e);
    if (netns && sandbox_get_state(sb) == SANDBOX_STATE_READY &&
        stats_net_read_netns(netns, &net, &e) == 0) {
        Runtime__V1__NetworkUsage *nu =
            rpc_new_message(call, &runtime__v1__network_usage__descriptor);
        nu->timestamp = net.timestamp_ns;
        const struct stats_net_iface *def = stats_net_default(&net, "eth0");
        if (def)
            nu->default_interface = iface_usage(call, def);
        nu->interfaces = rpc_alloc(call, (net.n + 1) * sizeof(void *));
        for (size_t i = 0; i < net.n; i++)
            if (strcmp(net.ifaces[i].name, "lo") != 0)
                nu->interfaces[nu->n_interfaces++] = iface_usage(call, &net.ifaces[i]);
        lx->network = nu;
    }
    stats_net_clear(&net);
    size_t first = 0, n = pod_ctrs_of(pc, sandbox_id(sb), &first);
    lx->containers = rpc_alloc(call, (n + 1) * sizeof(void *));
    for (size_t i = first; i < first + n; i++)
        lx->containers[lx->n_containers++] = container_stats(call, pc->l[i], &pc->mc);
    return st;
}

int rpc_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__PodSandboxStatsRequest *in = (const void *)req;
    struct sandbox *sb = NULL;
    int r = sandbox_lookup(rpc_server(call), in->pod_sandbox_id, &sb, err);
    if (r < 0)
        return r;
    Runtime__V1__PodSandboxStatsResponse *out =
        rpc_new_message(call, &runtime__v1__pod_sandbox_stats_response__descriptor);
    struct pod_ctrs pc;
    pod_ctrs_load(rpc_server(call), sandbox_id(sb), &pc);
    out->stats = pod_stats(call, sb, &pc);
    pod_ctrs_free(&pc);
    sandbox_unref(sb);
    *resp = &out->base;
    return 0;
}

struct pod_collect {
    struct rpc_call *call;
    const Runtime__V1__PodSandboxStatsFilter *filter;
    Runtime__V1__PodSandboxStats **items;
    size_t n, cap;
    struct pod_ctrs ctrs;
};

static int collect_pod(struct sandbox *sb, void *opaque)
{
    struct pod_collect *pc = opaque;
    const Runtime__V1__PodSandboxStatsFilter *f = pc->filter;
    const Runtime__V1__PodSandboxConfig *cfg = sandbox_config(sb);
    if (f && f->id && f->id[0] && strncmp(sandbox_id(sb), f->id, strlen(f->id)) != 0)
        return 0;
    if (f && !rpc_labels_match(f->n_label_selector, (void *const *)f->label_selector,
                               cfg ? cfg->n_labels : 0, cfg ? (void *const *)cfg->labels : NULL))
        return 0;
    if (pc->n == pc->cap) {
        size_t cap = pc->cap ? pc->cap * 2 : 16;
        Runtime__V1__PodSandboxStats **items = rpc_alloc(pc->call, cap * sizeof(*items));
        if (pc->n)
            memcpy(items, pc->items, pc->n * sizeof(*items));
        pc->items = items;
        pc->cap = cap;
    }
    pc->items[pc->n++] = pod_stats(pc->call, sb, &pc->ctrs);
    return 0;
}

int rpc_list_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__ListPodSandboxStatsRequest *in = (const void *)req;
    struct pod_collect pc = {.call = call, .filter = in->filter};
    pod_ctrs_load(rpc_server(call), NULL, &pc.ctrs);
    sandbox_foreach(rpc_server(call), collect_pod, &pc);
    pod_ctrs_free(&pc.ctrs);
    Runtime__V1__ListPodSandboxStatsResponse *out =
        rpc_new_message(call, &runtime__v1__list_pod_sandbox_stats_response__descriptor);
    out->stats = pc.items;
    out->n_stats = pc.n;
    *resp = &out->base;
    return 0;
}

int rpc_stream_pod_sandbox_stats(struct rpc_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, hull_error_t *err)
{
    const Runtime__V1__StreamPodSandboxStatsRequest *in = (const void *)req;
    struct pod_collect pc = {.call = call, .filter = in->filter};
    pod_ctrs_load(rpc_server(call), NULL, &pc.ctrs);
    sandbox_foreach(rpc_server(call), collect_pod, &pc);
    pod_ctrs_free(&pc.ctrs);
    return rpc_stream_items(call, &runtime__v1__stream_pod_sandbox_stats_response__descriptor,
                            pc.items, pc.n, STREAM_CHUNK, false, err);
}

/* ---- metrics (kubelet's /metrics/cadvisor from CRI) -------------------------------------------
 */
int rpc_list_metric_descriptors(struct rpc_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **resp, hull_error_t *err)
{
    size_t n = 0;
    const struct stats_metric_desc *d = stats_metric_descriptors(&n);
    Runtime__V1__ListMetricDescriptorsResponse *out =
        rpc_new_message(call, &runtime__v1__list_metric_descriptors_response__descriptor);
    out->descriptors = rpc_alloc(call, (n + 1) * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        Runtime__V1__MetricDescriptor *m =
            rpc_new_message(call, &runtime__v1__metric_descriptor__descriptor);
        m->name = (char *)d[i].name;
        m->help = (char *)d[i].help;
        m->label_keys = (char **)d[i].label_keys;
        m->n_label_keys = d[i].n_label_keys;
        out->descriptors[out->n_descriptors++] = m;
    }
    *resp = &out->base;
    return 0;
}

struct metric_sink {
    struct rpc_call *call;
    const char *labels[3]; /* id, name, image */
    int64_t timestamp;
    Runtime__V1__Metric **items;
    size_t n, cap;
};

static void metric_cb(void *opaque, const struct stats_metric_desc *d, const char *const *extra,
                      uint64_t value)
{
    struct metric_sink *s = opaque;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        Runtime__V1__Metric **items = rpc_alloc(s->call, cap * sizeof(*items));
        if (s->n)
            memcpy(items, s->items, s->n * sizeof(*items));
        s->items = items;
        s->cap = cap;
    }
    Runtime__V1__Metric *m = rpc_new_message(s->call, &runtime__v1__metric__descriptor);
    m->name = (char *)d->name;
    m->timestamp = s->timestamp;
    m->metric_type = (Runtime__V1__MetricType)d->type;
    m->n_label_values = d->n_label_keys;
    m->label_values = rpc_alloc(s->call, (d->n_label_keys + 1) * sizeof(char *));
    /* extra values (an interface name of the caller's stats_net, freed before the reply is
     * packed): copied */
    size_t k = 0;
    for (size_t i = 0; i < d->n_label_keys; i++) {
        const char *x = i >= 3 && extra && extra[k] ? extra[k++] : "";
        m->label_values[i] = i < 3 ? (char *)s->labels[i] : rpc_strdup(s->call, x);
    }
    m->value = rpc_u64(s->call, value);
    s->items[s->n++] = m;
}

static Runtime__V1__PodSandboxMetrics *pod_metrics(struct rpc_call *call, struct sandbox *sb,
                                                   const struct pod_ctrs *pc)
{
    struct hull_server *srv = rpc_server(call);
    const struct hull_cgroup_layout *cg = stats_service_cgroups(srv);
    Runtime__V1__PodSandboxMetrics *pm =
        rpc_new_message(call, &runtime__v1__pod_sandbox_metrics__descriptor);
    pm->pod_sandbox_id = rpc_strdup(call, sandbox_id(sb));
    bool ready = sandbox_get_state(sb) == SANDBOX_STATE_READY;
    /* the pod: cgroup usage and network */
    struct metric_sink ps = {.call = call, .labels = {pm->pod_sandbox_id, "POD", ""}};
    struct hull_cgroup_stats u;
    struct stats_net net = {0};
    _cleanup_error_ hull_error_t e = NULL;
    bool have_cg =
        cg && ready && hull_cgroup_stats_read_path(cg, sandbox_cgroup_parent(sb), &u, &e) == 0;
    hull_error_free(&e);
    const char *netns = sandbox_netns_path(sb);
    bool have_net = netns && ready && stats_net_read_netns(netns, &net, &e) == 0;
    ps.timestamp = hull_now_ns();
    stats_metrics_emit(have_cg ? &u : NULL, NULL, have_net ? &net : NULL,
                       ready ? sandbox_created_at(sb) : 0, metric_cb, &ps);
    stats_net_clear(&net);
    pm->metrics = ps.items;
    pm->n_metrics = ps.n;
    /* its containers */
    size_t first = 0, n = pod_ctrs_of(pc, sandbox_id(sb), &first);
    struct container_snapshot *const *l = pc->l + first;
    pm->container_metrics = rpc_alloc(call, (n + 1) * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        Runtime__V1__ContainerMetrics *cm =
            rpc_new_message(call, &runtime__v1__container_metrics__descriptor);
        cm->container_id = rpc_strdup(call, l[i]->id);
        const char *name =
            l[i]->config && l[i]->config->metadata ? l[i]->config->metadata->name : "";
        struct metric_sink cs = {.call = call,
                                 .labels = {cm->container_id, rpc_strdup(call, name),
                                            rpc_strdup(call, l[i]->image_ref)}};
        struct hull_cgroup_stats cu;
        struct stats_fs_usage fs;
        bool c_cg = cg && l[i]->state != CONTAINER_EXITED && l[i]->cgroups_path[0] &&
                    hull_cgroup_stats_read_path(cg, l[i]->cgroups_path, &cu, &e) == 0;
        hull_error_free(&e);
        bool c_fs = stats_dir_usage(l[i]->upper_dir, &fs, &e) == 0;
        hull_error_free(&e);
        cs.timestamp = hull_now_ns();
        stats_metrics_emit(c_cg ? &cu : NULL, c_fs ? &fs : NULL, NULL,
                           l[i]->state == CONTAINER_RUNNING ? l[i]->started_ns : 0, metric_cb, &cs);
        cm->metrics = cs.items;
        cm->n_metrics = cs.n;
        pm->container_metrics[pm->n_container_metrics++] = cm;
    }
    return pm;
}

struct metrics_collect {
    struct rpc_call *call;
    Runtime__V1__PodSandboxMetrics **items;
    size_t n, cap;
    struct pod_ctrs ctrs;
};

static int collect_metrics(struct sandbox *sb, void *opaque)
{
    struct metrics_collect *mc = opaque;
    if (mc->n == mc->cap) {
        size_t cap = mc->cap ? mc->cap * 2 : 16;
        Runtime__V1__PodSandboxMetrics **items = rpc_alloc(mc->call, cap * sizeof(*items));
        if (mc->n)
            memcpy(items, mc->items, mc->n * sizeof(*items));
        mc->items = items;
        mc->cap = cap;
    }
    mc->items[mc->n++] = pod_metrics(mc->call, sb, &mc->ctrs);
    return 0;
}

int rpc_list_pod_sandbox_metrics(struct rpc_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp, hull_error_t *err)
{
    struct metrics_collect mc = {.call = call};
    pod_ctrs_load(rpc_server(call), NULL, &mc.ctrs);
    sandbox_foreach(rpc_server(call), collect_metrics, &mc);
    pod_ctrs_free(&mc.ctrs);
    Runtime__V1__ListPodSandboxMetricsResponse *out =
        rpc_new_message(call, &runtime__v1__list_pod_sandbox_metrics_response__descriptor);
    out->pod_metrics = mc.items;
    out->n_pod_metrics = mc.n;
    *resp = &out->base;
    return 0;
}

int rpc_stream_pod_sandbox_metrics(struct rpc_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp, hull_error_t *err)
{
    struct metrics_collect mc = {.call = call};
    pod_ctrs_load(rpc_server(call), NULL, &mc.ctrs);
    sandbox_foreach(rpc_server(call), collect_metrics, &mc);
    pod_ctrs_free(&mc.ctrs);
    return rpc_stream_items(call, &runtime__v1__stream_pod_sandbox_metrics_response__descriptor,
                            mc.items, mc.n, STREAM_CHUNK, false, err);
}
