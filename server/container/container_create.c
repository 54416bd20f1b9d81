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

int container_create(struct hull_server *srv, const char *pod_id,
                     const Runtime__V1__ContainerConfig *config, char **id_out, hull_error_t *err)
{
    struct container_service *cs = ctr_service(srv);
    if (config == NULL || config->metadata == NULL || config->metadata->name == NULL ||
        config->metadata->name[0] == '\0')
        return hull_error_setx(err, EINVAL, "container config has no metadata name");
    if (config->image == NULL || config->image->image == NULL || config->image->image[0] == '\0')
        return hull_error_setx(err, EINVAL, "container \"%s\": no image given",
                               config->metadata->name);
    if (pod_id == NULL || pod_id[0] == '\0')
        return hull_error_setx(err, EINVAL, "pod sandbox id is empty");
    /* an image that is a checkpoint archive: the container is made to be restored */
    _cleanup_restore_ struct ctr_restore *rs = NULL;
    if (ctr_restore_open(srv, config, &rs, err) < 0)
        return -hull_error_status(err);
    if (rs)
        config = ctr_restore_config(rs);

    _cleanup_sandbox_ struct sandbox *sb = NULL;
    int r = sandbox_lookup(srv, pod_id, &sb, err);
    if (r < 0)
        return r;
    r = sandbox_hold(sb, err);
    if (r < 0)
        return r;

    struct image_store *is = cs->images;
    struct image_info *img = NULL;
    struct container *c = ctr_new();
    /* held until created or rolled back: a RemoveContainer/StopContainer of the name it reserves
     * waits for the outcome instead of killing a container that does not exist yet (and
     * waiting 30 s for it to exit) */
    pthread_mutex_lock(&c->op_lock);
    bool mounted = false, inserted = false;
    _cleanup_free_ char *json = NULL, *sdir = NULL, *rdir = NULL, *rootfs = NULL, *mon = NULL,
                        *upper = NULL, *work = NULL, *cfgpath = NULL, *target_pidns = NULL;
    _cleanup_margs_ struct monitor_args ma = {0};
    struct spec_user user = {0};
    const Runtime__V1__PodSandboxConfig *pod_config = sandbox_config(sb);

    hull_id_generate(c->id);
    c->pod_id = xstrdup(sandbox_id(sb));
    c->config_len = protobuf_c_message_get_packed_size(&config->base);
    c->config_pb = xmalloc0(c->config_len + 1);
    protobuf_c_message_pack(&config->base, c->config_pb);
    c->config = runtime__v1__container_config__unpack(NULL, c->config_len, c->config_pb);
    c->name_key = ctr_name_key(c->pod_id, c->config);
    c->image_ref = xstrdup(config->image->image);
    c->state = CONTAINER_CREATED;
    c->reason = xstrdup("");
    c->message = xstrdup("");
    c->runtime_handler = xstrdup(sandbox_runtime_handler(sb));
    /* as containerd: a relative log path without a pod log directory means no log file */
    bool no_log_dir = pod_config == NULL || pod_config->log_directory == NULL ||
                      pod_config->log_directory[0] == '\0';
    r = no_log_dir && config->log_path && config->log_path[0] != '/'
            ? 0
            : spec_log_path(pod_config, config, &c->log_path, err);
    if (c->log_path == NULL)
        c->log_path = xstrdup(""); /* no log asked for (or refused below) */
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\"", config->metadata->name);
        goto fail;
    }

    c->busy = true; /* being created: the exit watcher leaves it alone */
    /* listed from here on: ContainerStatus must carry a creation time (kubelet rejects a
     * status without created_at) */
    c->created_ns = hull_now_ns();
    c->hidden = hooks_hide_created(srv); /* until NRI plugins had their say */
    r = ctr_insert(srv, c, err);         /* reserves the name */
    if (r < 0)
        goto fail;
    inserted = true;

    if (is == NULL) {
        r = hull_error_setx(err, EOPNOTSUPP, "no image store");
        goto fail;
    }
    r = image_resolve(is, config->image->image, &img, err);
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\": image \"%s\"", config->metadata->name,
                        config->image->image);
        goto fail;
    }
    c->image_id = xstrdup(img->id);
    c->image_digest_ref =
        xstrdup(img->repo_digests && img->repo_digests[0] ? img->repo_digests[0] : "");
    ctr_image_acquire(srv, c);

    const char *rt = config_runtime_path(srv->config, c->runtime_handler);
    if (rt == NULL) {
        r = hull_error_setx(err, EINVAL, "no runtime handler \"%s\"", c->runtime_handler);
        goto fail;
    }
    c->runtime_path = strcmp(rt, "hull-oci") == 0 ? xstrdup(cs->hull_oci_path) : xstrdup(rt);
    {
        _cleanup_free_ char *h = xstrdup(c->runtime_handler[0] ? c->runtime_handler : "default");
        c->runtime_root = xasprintf("%s/runtime/%s", srv->config->state_dir, h);
    }
    /* as the spec's cgroupsPath (systemd driver: "<pod slice>:hull:<id>") */
    c->cgroups_path = hull_systemd_path_form(sandbox_cgroup_parent(sb))
                          ? xasprintf("%s:hull:%s", sandbox_cgroup_parent(sb), c->id)
                          : xasprintf("%s/hull-%s", sandbox_cgroup_parent(sb), c->id);
    const char *sig = cri_signal_name(config->stop_signal);
    c->stop_signal = xstrdup(sig                                       ? sig
                             : img->stop_signal && img->stop_signal[0] ? img->stop_signal
                                                                       : "SIGTERM");

    /* the intent record: saved before anything is made, so that recovery can undo all of it by
     * the id, runtime, runtime root and cgroup it names */
    pthread_mutex_lock(&c->lock);
    c->phase = CTR_PHASE_CREATING;
    pthread_mutex_unlock(&c->lock);
    r = ctr_save(srv, c, err);
    if (r < 0)
        goto fail;
    hull_crash_point("create:after-intent");

    /* directories and the overlay root */
    sdir = ctr_state_dir(srv, c->id);
    rdir = ctr_root_dir(srv, c->id);
    rootfs = hull_path_join(sdir, "rootfs");
    mon = ctr_socket_dir(srv, c->id, NULL);
    upper = hull_path_join(rdir, "upper");
    work = hull_path_join(rdir, "work");
    const char *mk[] = {rootfs, upper, work, c->runtime_root};
    for (size_t i = 0; i < 4; i++)
        if ((r = hull_mkdir_p(mk[i], 0700, err)) < 0)
            goto fail;
    /* the overlay's root directory takes the upper dir's mode: non-root users must be able
     * to walk "/" */
    chmod(rootfs, 0755);
    chmod(upper, 0755);
    /* in a pod user namespace the runtime reaches the rootfs and the mount sources below the
     * container's two directories as the pod's mapped root: they are that user's, 0700 */
    uint32_t map_uid, map_gid;
    if (sandbox_userns_ids(sb, &map_uid, &map_gid)) {
        const char *own[] = {sdir, rdir};
        for (size_t i = 0; i < 2; i++) {
            if (fchownat(AT_FDCWD, own[i], map_uid, map_gid, AT_SYMLINK_NOFOLLOW) < 0) {
                r = hull_error_set(err, errno, "chown `%s`", own[i]);
                goto fail;
            }
        }
    }
    if (sandbox_userns_path(sb)) {
        r = ctr_userns_rootfs(sb, is, c->image_id, upper, work, rootfs, err);
    } else {
        r = image_overlay_mount(is, c->image_id, upper, work, rootfs, NULL, err);
    }
    if (r < 0)
        goto fail;
    mounted = true;
    hull_crash_point("create:after-mount");

    /* the OCI spec */
    struct spec_sandbox view;
    fill_pod_view(sb, &view);
    /* pid namespace mode TARGET: join the namespace of another running container of the pod */
    const Runtime__V1__NamespaceOption *nso =
        config->linux && config->linux->security_context
            ? config->linux->security_context->namespace_options
            : NULL;
    if (nso && nso->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
        struct container *t = ctr_find_running(srv, nso->target_id, err);
        if (t == NULL) {
            r = hull_error_wrap(err, "container \"%s\": pid namespace target",
                                config->metadata->name);
            goto fail;
        }
        bool same_pod = strcmp(t->pod_id, c->pod_id) == 0;
        pthread_mutex_lock(&t->lock);
        pid_t tpid = t->pid;
        uint64_t tstart = t->pid_start;
        pthread_mutex_unlock(&t->lock);
        ctr_put(t);
        if (!same_pod) {
            r = hull_error_setx(err, EINVAL,
                                "container \"%s\": pid namespace target \"%s\" is in another pod",
                                config->metadata->name, nso->target_id);
            goto fail;
        }
        target_pidns = hull_path_join(rdir, "target-pidns");
        r = pin_target_pidns(tpid, tstart, target_pidns, err);
        if (r < 0) {
            hull_error_wrap(err, "container \"%s\": pid namespace target \"%s\"",
                            config->metadata->name, nso->target_id);
            goto fail;
        }
    }
    char **image_roots = NULL;
    r = spec_image_mounts_prepare(is, c->config, rdir, sandbox_userns_path(sb), &image_roots, err);
    if (r < 0)
        goto fail;
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
        .image = img,
        .rootfs = rootfs,
        .container_dir = rdir,
        .seccomp_profile_root = "/var/lib/kubelet/seccomp",
        .target_pidns_path = target_pidns,
        .volume_copy_budget = (uint64_t)srv->config->max_volume_copy_size,
        .runtime_supports_rro = container_handler_supports_rro(srv, c->runtime_handler),
        .image_mount_roots = image_roots,
        .user_out = &user,
    };
    r = spec_from_cri(&in, &json, err);
    spec_image_mounts_free(image_roots, c->config->n_mounts);
    if (r < 0)
        goto fail;
    c->has_user = true;
    c->uid = user.uid;
    c->gid = user.gid;
    c->gids = hull_steal(user.additional_gids);
    c->n_gids = user.n_additional_gids;
    if ((r = hooks_create(srv, c, sb, &json, err)) < 0)
        goto fail;
    cfgpath = hull_path_join(sdir, "config.json");
    /* the bundle lives in the volatile state directory (/run): no fsync */
    r = hull_write_file_atomic_flags(cfgpath, json, strlen(json), 0600, HULL_ATOMIC_NOSYNC, err);
    if (r < 0)
        goto fail;
    if (c->log_path[0]) {
        _cleanup_free_ char *dup = xstrdup(c->log_path);
        char *slash = strrchr(dup, '/');
        if (slash && slash != dup) {
            *slash = '\0';
            if ((r = hull_mkdir_p(dup, 0755, err)) < 0)
                goto fail;
        }
    }

    hull_crash_point("create:after-spec");

    /* the monitor runs `RUNTIME create` */
    margs_monitor(&ma, srv, c, sdir, mon, cs->exit_dir);
    margs_add(&ma, "--delete-on-exit"); /* RemoveContainer then has no runtime to run */
    margs_add(&ma, "--log-level");
    margs_add(&ma, hull_log_level_name(hull_log_get_level()));
    if (c->log_path[0]) {
        margs_add(&ma, "--log-path");
        margs_add(&ma, c->log_path);
    }
    if (srv->config->max_container_log_size > 0) {
        margs_add(&ma, "--log-max-size");
        margs_add(&ma, margs_own(&ma, xasprintf("%lld", srv->config->max_container_log_size)));
    }
    if (config->tty)
        margs_add(&ma, "--terminal");
    if (config->stdin)
        margs_add(&ma, "--stdin");
    if (config->stdin_once)
        margs_add(&ma, "--stdin-once");
    margs_add(&ma, "--monitor-log");
    margs_add(&ma, margs_own(&ma, hull_path_join(sdir, "monitor.log")));
    /* (a restore runs no monitor before StartContainer) */
    r = rs ? ctr_restore_prepare(srv, rs, c, rootfs, err)
           : ctr_monitor_start(&ma, &c->pid, &c->monitor_pid, NULL, err);
    if (r < 0) {
        hull_error_wrap(err, "create container \"%s\"", config->metadata->name);
        goto fail;
    }
    ctr_monitor_scope(c->cgroups_path, c->id, c->monitor_pid);
    /* the init waits for StartContainer: alive, so this is its start time */
    c->pid_start = rs ? 0 : sandbox_proc_start_time(c->pid);
    hull_crash_point("create:after-monitor");
    pthread_mutex_lock(&c->lock);
    c->phase = CTR_PHASE_COMMITTED;
    pthread_mutex_unlock(&c->lock);
    r = ctr_save(srv, c, err);
    if (r < 0)
        goto fail;
    hull_crash_point("create:after-commit");
    pthread_mutex_lock(&c->lock);
    c->busy = false;
    pthread_mutex_unlock(&c->lock);
    log_info("container %s (%s) created in pod %s, pid %d", c->id, config->metadata->name,
             c->pod_id, c->pid);
    events_publish(srv, c->id, c->pod_id,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
    hooks_post_create(srv, c);
    *id_out = xstrdup(c->id);
    image_info_free(img);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    sandbox_release(sb);
    return 0;

fail:
    hooks_create_failed(srv, c); /* NRI plugins that adjusted it: undone */
    free(user.additional_gids);
    if (c->runtime_path == NULL)
        c->monitor_pid = -1;
    create_rollback(srv, c, mounted);
    if (img) {
        ctr_image_release(srv, c);
        image_info_free(img);
    }
    if (inserted)
        ctr_unlink(srv, c);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    sandbox_release(sb);
    return r;
}
