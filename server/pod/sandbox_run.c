/* RunPodSandbox: validation of the request, the pod's namespaces, cgroup, files, /dev/shm,
 * infra process and network, recorded before each side effect and rolled back on failure. */
#include "server/events/events.h"
#include "server/hooks.h"
#include "server/pod/sandbox_int.h"
#include "common/cgroup_systemd.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <libgen.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define SHM_SIZE_DEF (64LL * 1024 * 1024)

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
        sb->cgroup_parent = sandbox_default_cgroup(svc, sb->id);
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

    return sandbox_network_params(c, p, err);
}

/* io.hull.shm-size sizes a host tmpfs: honoured only for the runtime handlers an administrator
 * listed it for (allowed_annotations), as CRI-O's allowed_annotations; ignored otherwise. */
static int64_t shm_size(const struct sandbox *sb)
{
    const char *v = sandbox_annotation(sb->config, "io.hull.shm-size");
    if (v && !config_annotation_allowed(sb->svc->config, sb->runtime_handler, "io.hull.shm-size")) {
        log_warn("sandbox %s: annotation io.hull.shm-size ignored: not allowed for runtime "
                 "handler \"%s\" (allowed_annotations)",
                 sb->id, sb->runtime_handler);
        v = NULL;
    }
    if (v) {
        uint64_t q = sandbox_parse_quantity(v);
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
    sandbox_fill_attachment(sb, p, cidr, &a);
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

/* Step: the pod's directories (and, for a user-namespace pod, the check that its ids can
 * reach them). */
static int create_pod_dirs(struct sandbox *sb, hull_error_t *err)
{
    struct sandbox_service *svc = sb->svc;
    int r;
    if (sb->userns && (r = userns_check_reachable(svc->root, svc->state_dir, err)) < 0)
        return r;
    if ((r = pod_dir(sb, sb->dir, err)) < 0)
        return r;
    return pod_dir(sb, sb->run_dir, err);
}

/* Step: the cgroup parent (a cgroupfs directory or a systemd slice) with the pod-level
 * resources, and whether it is ours in the record. */
static int create_pod_cgroup(struct sandbox *sb, hull_error_t *err)
{
    /* the record already says whether the cgroup is ours (sandbox_run checked before) */
    bool created = false;
    const Runtime__V1__LinuxPodSandboxConfig *lx = sb->config->linux;
    bool slice = hull_systemd_path_form(sb->cgroup_parent);
    int r;
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
        r = sandbox_persist_locked(sb, err);
        pthread_mutex_unlock(&sb->lock);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Step: the pinned namespaces (user first, then net, ipc, uts with the pod's sysctls). */
static int create_pod_namespaces(struct sandbox *sb, const struct run_params *p, hull_error_t *err)
{
    int r;
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
    return 0;
}

/* Step: the pod's /dev/shm tmpfs (not for host IPC). */
static int mount_pod_shm(struct sandbox *sb, hull_error_t *err)
{
    if (sb->host_ipc)
        return 0;
    int r = hull_mkdir_p(sb->shm_path, 0755, err);
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
    return 0;
}

/* Step: the hostname and resolv.conf files the containers bind. */
static int write_pod_files(struct sandbox *sb, hull_error_t *err)
{
    _cleanup_free_ char *hn = xasprintf("%s\n", sb->hostname);
    int r = write_file(sb, sb->hostname_path, hn, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *resolv = sandbox_resolv_conf_text(sb->config->dns_config);
    return resolv ? write_file(sb, sb->resolv_path, resolv, err)
                  : copy_host_file(sb, "/etc/resolv.conf", sb->resolv_path, "", err);
}

/* Step (shared pid namespace): the infra process in the pod cgroup, its pid namespace pinned
 * and its pid recorded (after a crash, recovery must find and kill it). */
static int start_pod_infra(struct sandbox *sb, hull_error_t *err)
{
    pid_t pid = 0;
    int r =
        sandbox_spawn_pause(sb->svc->infra, sb->netns, sb->ipcns, sb->utsns, sb->userns, &pid, err);
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
    pthread_mutex_lock(&sb->lock);
    r = sandbox_persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    return r;
}

/* The pod's host side, in order: directories, cgroup, namespaces, shm, files, the infra
 * process (shared pid namespace), the network, /etc/hosts. */
static int create_resources(struct sandbox *sb, const struct run_params *p, hull_error_t *err)
{
    int r;
    if ((r = create_pod_dirs(sb, err)) < 0 || (r = create_pod_cgroup(sb, err)) < 0)
        return r;
    hull_crash_point("runpod:after-cgroup");
    if ((r = create_pod_namespaces(sb, p, err)) < 0)
        return r;
    hull_crash_point("runpod:after-ns");
    if ((r = mount_pod_shm(sb, err)) < 0)
        return r;
    hull_crash_point("runpod:after-shm");
    if ((r = write_pod_files(sb, err)) < 0 ||
        (sb->shared_pid && (r = start_pod_infra(sb, err)) < 0))
        return r;
    if (!sb->host_net) {
        if ((r = setup_network(sb, p, err)) < 0)
            return r;
        hull_crash_point("runpod:after-network");
    }
    return write_hosts(sb, err);
}

int sandbox_run(struct hull_server *srv, const Runtime__V1__RunPodSandboxRequest *req,
                char **id_out, hull_error_t *err)
{
    struct sandbox_service *svc = sandbox_svc(srv);
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
    sandbox_set_paths(svc, sb);

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
    r = sandbox_persist(sb, err);
    if (r == 0) {
        hull_crash_point("runpod:after-intent");
        r = create_resources(sb, &p, err);
    }
    if (r == 0)
        r = hooks_run_pod(srv, sb, err); /* holds the NRI event lock until READY */
    free(p.sysctls);
    free(p.ports);
    if (r < 0) {
        if (!sb->add_started)
            sb->net_done = true; /* no plugin ran: none to undo */
        log_info("sandbox %s: rolling back: %s", sb->id, hull_error_msg(err));
        sandbox_release_runtime(sb, true, NULL);
        sandbox_release_storage(sb, true, NULL);
        sandbox_index_remove(svc, sb);
        return r;
    }
    hull_crash_point("runpod:before-ready");
    pthread_mutex_lock(&sb->lock);
    sb->state = SANDBOX_STATE_READY;
    r = sandbox_persist_locked(sb, err);
    pthread_mutex_unlock(&sb->lock);
    hooks_run_pod_done(srv);
    if (r < 0) {
        sandbox_release_runtime(sb, true, NULL);
        sandbox_release_storage(sb, true, NULL);
        sandbox_index_remove(svc, sb);
        return r;
    }
    log_info("sandbox %s: ready (%s/%s)", sb->id, m->namespace_, m->name);
    events_publish(srv, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
    events_publish(srv, sb->id, sb->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
    *id_out = xstrdup(sb->id);
    return 0;
}
