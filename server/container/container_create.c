/* CreateContainer: the intent record, the overlay rootfs, the OCI bundle, then hull-conmon
 * running `RUNTIME create`; whatever a failure leaves is rolled back (and recovery finishes the
 * rollback after a crash, container_recover.c). */
#include "server/container/container_internal.h"
#include "server/spec/spec.h"
#include "server/hooks.h"
#include "server/pod/pod.h"
#include "server/pod/sandbox_int.h" /* sandbox_proc_start_time */
#include "server/spec/spec.h"
#include "server/container/container_restore.h"
#include "image/image.h"
#include "common/cgroup_systemd.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* CRI Signal enum → name (RUNTIME_DEFAULT → NULL). */
static const char *cri_signal_name(Runtime__V1__Signal s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, s);
    if (v == NULL || s == RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT)
        return NULL;
    return v->name;
}

/* ---- pod view ------------------------------------------------------------------------------- */
static bool features_list_rro(const char *path)
{
    char *argv[] = {(char *)path, (char *)"features", NULL};
    struct proc_result res = {0};
    _cleanup_error_ hull_error_t err = NULL;
    bool rro = false;
    if (proc_run(argv, NULL, RUNTIME_TIMEOUT_MS, &res, &err) == 0 && res.status == 0 && res.out) {
        yajl_val doc = NULL;
        if (hull_json_parse(res.out, "features", &doc, &err) == 0) {
            yajl_val opts = hull_json_get(doc, "mountOptions");
            for (size_t i = 0; opts && YAJL_IS_ARRAY(opts) && i < opts->u.array.len; i++) {
                const char *o = YAJL_GET_STRING(opts->u.array.values[i]);
                if (o && strcmp(o, "rro") == 0)
                    rro = true;
            }
            yajl_tree_free(doc);
        }
    }
    if (!rro)
        log_info("runtime %s: no recursive read-only mounts (\"rro\" not in its features)", path);
    proc_result_free(&res);
    return rro;
}

bool container_handler_supports_rro(struct hull_server *srv, const char *handler)
{
    struct container_service *cs = ctr_service(srv);
    const char *rt = config_runtime_path(srv->config, handler ? handler : "");
    if (rt == NULL)
        return false;
    const char *path = strcmp(rt, "hull-oci") == 0 ? cs->hull_oci_path : rt;
    pthread_mutex_lock(&cs->feat_mu);
    for (size_t i = 0; i < cs->n_feat; i++) {
        if (strcmp(cs->feat[i].path, path) == 0) {
            bool r = cs->feat[i].rro;
            pthread_mutex_unlock(&cs->feat_mu);
            return r;
        }
    }
    pthread_mutex_unlock(&cs->feat_mu);
    bool rro = features_list_rro(path);
    pthread_mutex_lock(&cs->feat_mu);
    cs->feat = xrealloc(cs->feat, (cs->n_feat + 1) * sizeof(*cs->feat));
    cs->feat[cs->n_feat++] = (struct hull_kv_rro){xstrdup(path), rro};
    pthread_mutex_unlock(&cs->feat_mu);
    return rro;
}

/* The overlay root of a container in a pod user namespace: id-mapped layers, the upper
 * directory owned by the pod's mapped root. */
static int ctr_userns_rootfs(struct sandbox *sb, struct image_store *is, const char *image_id,
                             const char *upper, const char *work, const char *rootfs,
                             hull_error_t *err)
{
    const Runtime__V1__PodSandboxConfig *pc = sandbox_config(sb);
    const Runtime__V1__NamespaceOption *nso = pc && pc->linux && pc->linux->security_context
                                                  ? pc->linux->security_context->namespace_options
                                                  : NULL;
    bool on = false;
    struct userns_map u, g;
    int r = userns_from_cri(nso, &on, &u, &g, err);
    if (r < 0)
        return r;
    if (chown(upper, u.host_id, g.host_id) < 0)
        return hull_error_set(err, errno, "chown `%s`", upper);
    _cleanup_close_ int fd = open(sandbox_userns_path(sb), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open the pod's user namespace");
    return image_overlay_mount_idmapped(is, image_id, upper, work, rootfs, fd, err);
}

/* The pid namespace of container process pid (started at start, /proc/PID/stat) pinned on path
 * (a bind mount of its ns file, released with the container's other mounts), so that the
 * runtime joins that namespace and never one of a process that got the pid later: the pid is
 * held by a pidfd from before its start time is compared until after the pin is made. */
static int pin_target_pidns(pid_t pid, uint64_t start, const char *path, hull_error_t *err)
{
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0 || start == 0 || sandbox_proc_start_time(pid) != start)
        return hull_error_setx(err, EBUSY, "its process %d is gone", (int)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (fd < 0)
        return hull_error_set(err, errno, "create `%s`", path);
    close(fd);
    char src[64];
    snprintf(src, sizeof(src), "/proc/%d/ns/pid", (int)pid);
    int r = 0;
    if (mount(src, path, NULL, MS_BIND, NULL) < 0)
        r = hull_error_set(err, errno, "pin the pid namespace of process %d", (int)pid);
    /* still alive (or a zombie not yet reaped): the pid was never free, the pin is its */
    else if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        r = hull_error_setx(err, EBUSY, "its process %d exited", (int)pid);
    if (r < 0) {
        umount2(path, MNT_DETACH);
        unlink(path);
    }
    return r;
}

static void fill_pod_view(struct sandbox *sb, struct spec_sandbox *v)
{
    memset(v, 0, sizeof(*v));
    v->id = sandbox_id(sb);
    v->config = sandbox_config(sb);
    v->netns_path = sandbox_netns_path(sb);
    v->ipcns_path = sandbox_ipcns_path(sb);
    v->utsns_path = sandbox_utsns_path(sb);
    v->pidns_path = sandbox_pidns_path(sb);
    v->userns_path = sandbox_userns_path(sb);
    v->host_network = sandbox_host_network(sb);
    v->host_ipc = sandbox_host_ipc(sb);
    v->host_pid = sandbox_host_pid(sb);
    v->hostname_path = sandbox_hostname_path(sb);
    v->resolv_path = sandbox_resolv_conf_path(sb);
    v->hosts_path = sandbox_hosts_path(sb);
    v->shm_path = sandbox_shm_path(sb);
    v->cgroup_parent = sandbox_cgroup_parent(sb);
    v->hostname = sandbox_hostname(sb);
}

/* ---- create --------------------------------------------------------------------------------- */
/* Undoes whatever create got to. */
static void create_rollback(struct hull_server *srv, struct container *c, bool mounted)
{
    _cleanup_error_ hull_error_t err = NULL;
    if (c->monitor_pid > 0) {
        const char *kill_args[] = {"kill", c->id, "KILL", NULL};
        ctr_runtime_run(c, kill_args, &err);
        hull_error_free(&err);
    }
    if (c->runtime_path) {
        const char *del[] = {"delete", "--force", c->id, NULL};
        ctr_runtime_run(c, del, &err);
        hull_error_free(&err);
    }
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *rootfs = hull_path_join(sdir, "rootfs");
    if (mounted && umount2(rootfs, MNT_DETACH) < 0)
        log_warn("umount %s: %s", rootfs, strerror(errno));
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    hull_rm_rf(mon, &err);
    hull_error_free(&err);
    hull_rm_rf(sdir, &err);
    hull_error_free(&err);
    if (spec_release_mounts(rdir, &err) == 0) {
        spec_image_mounts_release(ctr_service(srv)->images, rdir);
        hull_rm_rf(rdir, &err);
    } else
        log_warn("container %s: %s", c->id, hull_error_msg(&err));
    hull_error_free(&err);
    _cleanup_free_ char *exitf = hull_path_join(ctr_service(srv)->exit_dir, c->id);
    unlink(exitf);
    ctr_remove_record(srv, c, &err);
}

/* What the steps of container_create share.  It owns the strings, the monitor command line,
 * the sandbox reference and the restore (freed at return, in that order); the container, its
 * op_lock, the sandbox hold and the image info are released by create_finish / create_fail. */
struct create_ctx {
    struct hull_server *srv;
    struct container_service *cs;
    const Runtime__V1__ContainerConfig *config; /* the request's, or the checkpoint's */
    struct ctr_restore *rs;                     /* the image is a checkpoint archive */
    struct sandbox *sb;
    struct image_store *is;
    struct container *c;
    struct image_info *img;
    bool mounted, inserted;
    char *json, *sdir, *rdir, *rootfs, *mon, *upper, *work, *cfgpath, *target_pidns;
    struct monitor_args ma;
    struct spec_user user;
};

static void create_ctx_free(struct create_ctx *x)
{
    margs_free(&x->ma);
    free(x->json);
    free(x->sdir);
    free(x->rdir);
    free(x->rootfs);
    free(x->mon);
    free(x->upper);
    free(x->work);
    free(x->cfgpath);
    free(x->target_pidns);
    sandbox_unrefp(&x->sb);
    ctr_restore_freep(&x->rs);
}
#define _cleanup_create_ctx_ __attribute__((cleanup(create_ctx_free)))

static int create_check_request(const char *pod_id, const Runtime__V1__ContainerConfig *config,
                                hull_error_t *err)
{
    if (config == NULL || config->metadata == NULL || config->metadata->name == NULL ||
        config->metadata->name[0] == '\0')
        return hull_error_setx(err, EINVAL, "container config has no metadata name");
    if (config->image == NULL || config->image->image == NULL || config->image->image[0] == '\0')
        return hull_error_setx(err, EINVAL, "container \"%s\": no image given",
                               config->metadata->name);
    if (pod_id == NULL || pod_id[0] == '\0')
        return hull_error_setx(err, EINVAL, "pod sandbox id is empty");
    return 0;
}

/* The checkpoint (when the image is one) and the pod, held until created or rolled back. */
static int create_open_pod(struct create_ctx *x, const char *pod_id, hull_error_t *err)
{
    /* an image that is a checkpoint archive: the container is made to be restored */
    if (ctr_restore_open(x->srv, x->config, &x->rs, err) < 0)
        return -hull_error_status(err);
    if (x->rs)
        x->config = ctr_restore_config(x->rs);

    int r = sandbox_lookup(x->srv, pod_id, &x->sb, err);
    if (r < 0)
        return r;
    r = sandbox_hold(x->sb, err);
    if (r < 0)
        return r;
    return 0;
}

static void create_new_container(struct create_ctx *x)
{
    x->is = x->cs->images;
    x->c = ctr_new();
    /* held until created or rolled back: a RemoveContainer/StopContainer of the name it reserves
     * waits for the outcome instead of killing a container that does not exist yet (and
     * waiting 30 s for it to exit) */
    pthread_mutex_lock(&x->c->op_lock);
}

/* Its id, pod, a copy of the config, names and log path. */
static int create_describe(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    const Runtime__V1__ContainerConfig *config = x->config;
    const Runtime__V1__PodSandboxConfig *pod_config = sandbox_config(x->sb);

    hull_id_generate(c->id);
    c->pod_id = xstrdup(sandbox_id(x->sb));
    c->config_len = protobuf_c_message_get_packed_size(&config->base);
    c->config_pb = xmalloc0(c->config_len + 1);
    protobuf_c_message_pack(&config->base, c->config_pb);
    c->config = runtime__v1__container_config__unpack(NULL, c->config_len, c->config_pb);
    c->name_key = ctr_name_key(c->pod_id, c->config);
    c->image_ref = xstrdup(config->image->image);
    c->state = CONTAINER_CREATED;
    c->reason = xstrdup("");
    c->message = xstrdup("");
    c->runtime_handler = xstrdup(sandbox_runtime_handler(x->sb));
    /* as containerd: a relative log path without a pod log directory means no log file */
    bool no_log_dir = pod_config == NULL || pod_config->log_directory == NULL ||
                      pod_config->log_directory[0] == '\0';
    int r = no_log_dir && config->log_path && config->log_path[0] != '/'
                ? 0
                : spec_log_path(pod_config, config, &c->log_path, err);
    if (c->log_path == NULL)
        c->log_path = xstrdup(""); /* no log asked for (or refused below) */
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\"", config->metadata->name);
        return r;
    }
    return 0;
}

/* Lists it (hidden from NRI-aware listings until the hooks ran) and so reserves its name. */
static int create_reserve_name(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    c->busy = true; /* being created: the exit watcher leaves it alone */
    /* listed from here on: ContainerStatus must carry a creation time (kubelet rejects a
     * status without created_at) */
    c->created_ns = hull_now_ns();
    c->hidden = hooks_hide_created(x->srv); /* until NRI plugins had their say */
    int r = ctr_insert(x->srv, c, err);     /* reserves the name */
    if (r < 0)
        return r;
    x->inserted = true;
    return 0;
}

/* The image: its id and digest, and a reference on its layers. */
static int create_resolve_image(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    if (x->is == NULL)
        return hull_error_setx(err, EOPNOTSUPP, "no image store");
    int r = image_resolve(x->is, x->config->image->image, &x->img, err);
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\": image \"%s\"", x->config->metadata->name,
                        x->config->image->image);
        return r;
    }
    c->image_id = xstrdup(x->img->id);
    c->image_digest_ref =
        xstrdup(x->img->repo_digests && x->img->repo_digests[0] ? x->img->repo_digests[0] : "");
    ctr_image_acquire(x->srv, c);
    return 0;
}

/* The runtime (path and root), the cgroup and the stop signal. */
static int create_choose_runtime(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    const char *rt = config_runtime_path(x->srv->config, c->runtime_handler);
    if (rt == NULL)
        return hull_error_setx(err, EINVAL, "no runtime handler \"%s\"", c->runtime_handler);
    c->runtime_path = strcmp(rt, "hull-oci") == 0 ? xstrdup(x->cs->hull_oci_path) : xstrdup(rt);
    {
        _cleanup_free_ char *h = xstrdup(c->runtime_handler[0] ? c->runtime_handler : "default");
        c->runtime_root = xasprintf("%s/runtime/%s", x->srv->config->state_dir, h);
    }
    /* as the spec's cgroupsPath (systemd driver: "<pod slice>:hull:<id>") */
    c->cgroups_path = hull_systemd_path_form(sandbox_cgroup_parent(x->sb))
                          ? xasprintf("%s:hull:%s", sandbox_cgroup_parent(x->sb), c->id)
                          : xasprintf("%s/hull-%s", sandbox_cgroup_parent(x->sb), c->id);
    const char *sig = cri_signal_name(x->config->stop_signal);
    c->stop_signal = xstrdup(sig                                             ? sig
                             : x->img->stop_signal && x->img->stop_signal[0] ? x->img->stop_signal
                                                                             : "SIGTERM");
    return 0;
}

/* the intent record: saved before anything is made, so that recovery can undo all of it by
 * the id, runtime, runtime root and cgroup it names */
static int create_save_intent(struct create_ctx *x, hull_error_t *err)
{
    pthread_mutex_lock(&x->c->lock);
    x->c->phase = CTR_PHASE_CREATING;
    pthread_mutex_unlock(&x->c->lock);
    int r = ctr_save(x->srv, x->c, err);
    if (r < 0)
        return r;
    hull_crash_point("create:after-intent");
    return 0;
}

/* directories and the overlay root */
static int create_make_rootfs(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    int r;
    x->sdir = ctr_state_dir(x->srv, c->id);
    x->rdir = ctr_root_dir(x->srv, c->id);
    x->rootfs = hull_path_join(x->sdir, "rootfs");
    x->mon = ctr_socket_dir(x->srv, c->id, NULL);
    x->upper = hull_path_join(x->rdir, "upper");
    x->work = hull_path_join(x->rdir, "work");
    const char *mk[] = {x->rootfs, x->upper, x->work, c->runtime_root};
    for (size_t i = 0; i < 4; i++)
        if ((r = hull_mkdir_p(mk[i], 0700, err)) < 0)
            return r;
    /* the overlay's root directory takes the upper dir's mode: non-root users must be able
     * to walk "/" */
    chmod(x->rootfs, 0755);
    chmod(x->upper, 0755);
    /* in a pod user namespace the runtime reaches the rootfs and the mount sources below the
     * container's two directories as the pod's mapped root: they are that user's, 0700 */
    uint32_t map_uid, map_gid;
    if (sandbox_userns_ids(x->sb, &map_uid, &map_gid)) {
        const char *own[] = {x->sdir, x->rdir};
        for (size_t i = 0; i < 2; i++) {
            if (fchownat(AT_FDCWD, own[i], map_uid, map_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return hull_error_set(err, errno, "chown `%s`", own[i]);
        }
    }
    if (sandbox_userns_path(x->sb)) {
        r = ctr_userns_rootfs(x->sb, x->is, c->image_id, x->upper, x->work, x->rootfs, err);
    } else {
        r = image_overlay_mount(x->is, c->image_id, x->upper, x->work, x->rootfs, NULL, err);
    }
    if (r < 0)
        return r;
    x->mounted = true;
    hull_crash_point("create:after-mount");
    return 0;
}

/* pid namespace mode TARGET: join the namespace of another running container of the pod */
static int create_pin_target_pidns(struct create_ctx *x, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *config = x->config;
    const Runtime__V1__NamespaceOption *nso =
        config->linux && config->linux->security_context
            ? config->linux->security_context->namespace_options
            : NULL;
    if (nso == NULL || nso->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET)
        return 0;
    struct container *t = ctr_find_running(x->srv, nso->target_id, err);
    if (t == NULL)
        return hull_error_wrap(err, "container \"%s\": pid namespace target",
                               config->metadata->name);
    bool same_pod = strcmp(t->pod_id, x->c->pod_id) == 0;
    pthread_mutex_lock(&t->lock);
    pid_t tpid = t->pid;
    uint64_t tstart = t->pid_start;
    pthread_mutex_unlock(&t->lock);
    ctr_put(t);
    if (!same_pod)
        return hull_error_setx(err, EINVAL,
                               "container \"%s\": pid namespace target \"%s\" is in another pod",
                               config->metadata->name, nso->target_id);
    x->target_pidns = hull_path_join(x->rdir, "target-pidns");
    int r = pin_target_pidns(tpid, tstart, x->target_pidns, err);
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\": pid namespace target \"%s\"",
                        config->metadata->name, nso->target_id);
        return r;
    }
    return 0;
}

/* the OCI spec (x->json), and the process's identity it resolved */
static int create_build_spec(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    struct spec_sandbox view;
    fill_pod_view(x->sb, &view);
    int r = create_pin_target_pidns(x, err);
    if (r < 0)
        return r;
    char **image_roots = NULL;
    r = spec_image_mounts_prepare(x->is, c->config, x->rdir, sandbox_userns_path(x->sb),
                                  &image_roots, err);
    if (r < 0)
        return r;
    if (image_roots) {
        /* the record keeps the config with each image volume's resolved id (image_ref) */
        size_t len = protobuf_c_message_get_packed_size(&c->config->base);
        uint8_t *pb = xmalloc0(len + 1);
        protobuf_c_message_pack(&c->config->base, pb);
        free(c->config_pb);
        c->config_pb = pb;
        c->config_len = len;
    }
    struct spec_input in = {
        .container_id = c->id,
        .config = c->config,
        .sandbox = &view,
        .image = x->img,
        .rootfs = x->rootfs,
        .container_dir = x->rdir,
        .seccomp_profile_root = "/var/lib/kubelet/seccomp",
        .target_pidns_path = x->target_pidns,
        .volume_copy_budget = (uint64_t)x->srv->config->max_volume_copy_size,
        .runtime_supports_rro = container_handler_supports_rro(x->srv, c->runtime_handler),
        .image_mount_roots = image_roots,
        .user_out = &x->user,
    };
    r = spec_from_cri(&in, &x->json, err);
    spec_image_mounts_free(image_roots, c->config->n_mounts);
    if (r < 0)
        return r;
    c->has_user = true;
    c->uid = x->user.uid;
    c->gid = x->user.gid;
    c->gids = hull_steal(x->user.additional_gids);
    c->n_gids = x->user.n_additional_gids;
    return 0;
}

/* config.json (as the NRI plugins left it) and the log file's directory */
static int create_write_bundle(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    int r;
    x->cfgpath = hull_path_join(x->sdir, "config.json");
    /* the bundle lives in the volatile state directory (/run): no fsync */
    r = hull_write_file_atomic_flags(x->cfgpath, x->json, strlen(x->json), 0600, HULL_ATOMIC_NOSYNC,
                                     err);
    if (r < 0)
        return r;
    if (c->log_path[0]) {
        _cleanup_free_ char *dup = xstrdup(c->log_path);
        char *slash = strrchr(dup, '/');
        if (slash && slash != dup) {
            *slash = '\0';
            if ((r = hull_mkdir_p(dup, 0755, err)) < 0)
                return r;
        }
    }

    hull_crash_point("create:after-spec");
    return 0;
}

/* the hull-conmon command line that runs `RUNTIME create` */
static void create_monitor_args(struct create_ctx *x)
{
    struct monitor_args *ma = &x->ma;
    struct hull_server *srv = x->srv;
    struct container *c = x->c;
    margs_monitor(ma, srv, c, x->sdir, x->mon, x->cs->exit_dir);
    margs_add(ma, "--delete-on-exit"); /* RemoveContainer then has no runtime to run */
    margs_add(ma, "--log-level");
    margs_add(ma, hull_log_level_name(hull_log_get_level()));
    if (c->log_path[0]) {
        margs_add(ma, "--log-path");
        margs_add(ma, c->log_path);
    }
    if (srv->config->max_container_log_size > 0) {
        margs_add(ma, "--log-max-size");
        margs_add(ma, margs_own(ma, xasprintf("%lld", srv->config->max_container_log_size)));
    }
    if (x->config->tty)
        margs_add(ma, "--terminal");
    if (x->config->stdin)
        margs_add(ma, "--stdin");
    if (x->config->stdin_once)
        margs_add(ma, "--stdin-once");
    margs_add(ma, "--monitor-log");
    margs_add(ma, margs_own(ma, hull_path_join(x->sdir, "monitor.log")));
}

/* the monitor runs `RUNTIME create`, or the checkpoint is made ready to restore */
static int create_start_process(struct create_ctx *x, hull_error_t *err)
{
    struct container *c = x->c;
    /* (a restore runs no monitor before StartContainer) */
    int r = x->rs ? ctr_restore_prepare(x->srv, x->rs, c, x->rootfs, err)
                  : ctr_monitor_start(&x->ma, &c->pid, &c->monitor_pid, NULL, err);
    if (r < 0) {
        hull_error_wrap(err, "create container \"%s\"", x->config->metadata->name);
        return r;
    }
    ctr_monitor_scope(c->cgroups_path, c->id, c->monitor_pid);
    /* the init waits for StartContainer: alive, so this is its start time */
    c->pid_start = x->rs ? 0 : sandbox_proc_start_time(c->pid);
    hull_crash_point("create:after-monitor");
    return 0;
}

/* the record, complete: recovery keeps it from here on */
static int create_commit(struct create_ctx *x, hull_error_t *err)
{
    pthread_mutex_lock(&x->c->lock);
    x->c->phase = CTR_PHASE_COMMITTED;
    pthread_mutex_unlock(&x->c->lock);
    int r = ctr_save(x->srv, x->c, err);
    if (r < 0)
        return r;
    hull_crash_point("create:after-commit");
    return 0;
}

/* Created: announced (event, NRI PostCreateContainer) and released. */
static void create_finish(struct create_ctx *x, char **id_out)
{
    struct container *c = x->c;
    pthread_mutex_lock(&c->lock);
    c->busy = false;
    pthread_mutex_unlock(&c->lock);
    log_info("container %s (%s) created in pod %s, pid %d", c->id, x->config->metadata->name,
             c->pod_id, c->pid);
    events_publish(x->srv, c->id, c->pod_id,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
    hooks_post_create(x->srv, c);
    *id_out = xstrdup(c->id);
    image_info_free(x->img);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    sandbox_release(x->sb);
}

/* Failed after the container was made: everything rolled back, then released. */
static void create_fail(struct create_ctx *x)
{
    struct container *c = x->c;
    hooks_create_failed(x->srv, c); /* NRI plugins that adjusted it: undone */
    free(x->user.additional_gids);
    if (c->runtime_path == NULL)
        c->monitor_pid = -1;
    create_rollback(x->srv, c, x->mounted);
    if (x->img) {
        ctr_image_release(x->srv, c);
        image_info_free(x->img);
    }
    if (x->inserted)
        ctr_unlink(x->srv, c);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    sandbox_release(x->sb);
}

int container_create(struct hull_server *srv, const char *pod_id,
                     const Runtime__V1__ContainerConfig *config, char **id_out, hull_error_t *err)
{
    _cleanup_create_ctx_ struct create_ctx x = {
        .srv = srv, .cs = ctr_service(srv), .config = config};
    int r = create_check_request(pod_id, config, err);
    if (r < 0)
        return r;
    r = create_open_pod(&x, pod_id, err);
    if (r < 0)
        return r;

    create_new_container(&x);
    if ((r = create_describe(&x, err)) < 0)
        goto fail;
    if ((r = create_reserve_name(&x, err)) < 0)
        goto fail;
    if ((r = create_resolve_image(&x, err)) < 0)
        goto fail;
    if ((r = create_choose_runtime(&x, err)) < 0)
        goto fail;
    if ((r = create_save_intent(&x, err)) < 0)
        goto fail;
    if ((r = create_make_rootfs(&x, err)) < 0)
        goto fail;
    if ((r = create_build_spec(&x, err)) < 0)
        goto fail;
    if ((r = hooks_create(srv, x.c, x.sb, &x.json, err)) < 0) /* NRI CreateContainer */
        goto fail;
    if ((r = create_write_bundle(&x, err)) < 0)
        goto fail;
    create_monitor_args(&x);
    if ((r = create_start_process(&x, err)) < 0)
        goto fail;
    if ((r = create_commit(&x, err)) < 0)
        goto fail;
    create_finish(&x, id_out);
    return 0;

fail:
    create_fail(&x);
    return r;
}
