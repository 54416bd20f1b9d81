/* The container service: loading the records at start-up (rolling back or finishing what a
 * crash interrupted, settling what changed while hulld was down), the exit watcher and the
 * hooks the pod area calls, and its teardown.  The top of the area: it calls the others. */
#include "server/container/container_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

/* ---- records -------------------------------------------------------------------------------- */
/* Records hold padded base64 only; *out is a new buffer. */
static int record_base64_decode(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        return -EINVAL;
    _cleanup_free_ uint8_t *buf = xmalloc0(HULL_BASE64_DECODED_MAX(n));
    ssize_t r = hull_base64_decode(s, n, buf, false);
    if (r < 0)
        return (int)r;
    *out = hull_steal(buf);
    *len = (size_t)r;
    return 0;
}

static char *dup_field(yajl_val doc, const char *key)
{
    return xstrdup(hull_json_get_string(doc, key, ""));
}

static int load_one(void *opaque, const char *id, yajl_val doc, hull_error_t *err)
{
    struct hull_server *srv = opaque;
    if (!hull_id_is_valid(id) || strlen(id) != 64)
        return hull_error_setx(err, EINVAL, "invalid container id");
    const char *phase = hull_json_get_string(doc, "phase", "");
    if (phase[0]) {
        /* hulld died while creating or removing it: undo or finish, by what the record names */
        bool creating = strcmp(phase, "creating") == 0;
        log_warn("container %s: %s a container interrupted by a crash", id,
                 creating ? "rolling back" : "finishing the removal of");
        ctr_teardown(srv, id, hull_json_get_string(doc, "runtime_path", ""),
                     hull_json_get_string(doc, "runtime_root", ""),
                     hull_json_get_string(doc, "cgroups_path", ""), true);
        return 0;
    }
    const char *cfg = hull_json_get_string(doc, "config", NULL);
    if (cfg == NULL)
        return hull_error_setx(err, EINVAL, "record is incomplete");
    _cleanup_container_ struct container *c = ctr_new();
    snprintf(c->id, sizeof(c->id), "%s", id);
    if (record_base64_decode(cfg, &c->config_pb, &c->config_len) < 0 ||
        (c->config = runtime__v1__container_config__unpack(NULL, c->config_len, c->config_pb)) ==
            NULL ||
        c->config->metadata == NULL) {
        return hull_error_setx(err, EINVAL, "stored CRI config is not valid");
    }
    const char *res = hull_json_get_string(doc, "resources", NULL);
    if (res && record_base64_decode(res, &c->resources_pb, &c->resources_len) < 0) {
        return hull_error_setx(err, EINVAL, "stored resources are not valid");
    }
    c->pod_id = dup_field(doc, "pod_id");
    c->name_key = ctr_name_key(c->pod_id, c->config);
    c->image_ref = dup_field(doc, "image_ref");
    c->image_id = dup_field(doc, "image_id");
    c->image_digest_ref = dup_field(doc, "image_digest_ref");
    c->state = (int)hull_json_get_int(doc, "state", CONTAINER_UNKNOWN);
    c->created_ns = hull_json_get_int(doc, "created_ns", 0);
    c->started_ns = hull_json_get_int(doc, "started_ns", 0);
    c->finished_ns = hull_json_get_int(doc, "finished_ns", 0);
    c->exit_code = (int32_t)hull_json_get_int(doc, "exit_code", 0);
    c->reason = dup_field(doc, "reason");
    c->message = dup_field(doc, "message");
    c->log_path = dup_field(doc, "log_path");
    c->runtime_handler = dup_field(doc, "runtime_handler");
    c->runtime_path = dup_field(doc, "runtime_path");
    c->runtime_root = dup_field(doc, "runtime_root");
    c->cgroups_path = dup_field(doc, "cgroups_path");
    c->stop_signal = dup_field(doc, "stop_signal");
    c->pid = (pid_t)hull_json_get_int(doc, "pid", 0);
    c->pid_start = (uint64_t)hull_json_get_int(doc, "pid_start", 0);
    c->monitor_pid = (pid_t)hull_json_get_int(doc, "monitor_pid", -1);
    c->restore_pending = hull_json_get_bool(doc, "restore_pending", false);
    yajl_val gids = hull_json_get(doc, "gids");
    if (hull_json_get(doc, "uid") && gids && YAJL_IS_ARRAY(gids)) {
        c->has_user = true;
        c->uid = (uint32_t)hull_json_get_int(doc, "uid", 0);
        c->gid = (uint32_t)hull_json_get_int(doc, "gid", 0);
        c->gids = xmalloc0((gids->u.array.len + 1) * sizeof(uint32_t));
        for (size_t i = 0; i < gids->u.array.len; i++)
            if (YAJL_IS_INTEGER(gids->u.array.values[i]))
                c->gids[c->n_gids++] = (uint32_t)YAJL_GET_INTEGER(gids->u.array.values[i]);
    }
    int r = ctr_insert(srv, c, err);
    if (r == 0)
        ctr_image_acquire(srv, c);
    return r;
}

/* ---- service --------------------------------------------------------------------------------- */
int container_service_init(struct hull_server *srv, struct image_store *images, hull_error_t *err)
{
    const struct hull_config *cfg = srv->config;
    struct container_service *cs = xmalloc0(sizeof(*cs));
    cs->images = images;
    pthread_mutex_init(&cs->mu, NULL);
    cs->inotify_fd = -1;
    cs->wake_pipe[0] = cs->wake_pipe[1] = -1;
    cs->root_dir = hull_path_join(cfg->root, "containers");
    cs->state_root = hull_path_join(cfg->state_dir, "containers");
    cs->exit_dir = hull_path_join(cfg->state_dir, "exits");
    cs->socket_root = hull_path_join(cfg->state_dir, "s");
    _cleanup_free_ char *self = proc_self_dir();
    cs->conmon_path =
        cfg->conmon_path[0] ? xstrdup(cfg->conmon_path) : xasprintf("%s/hull-conmon", self);
    cs->hull_oci_path = xasprintf("%s/hull-oci", self);
    pthread_mutex_init(&cs->oci_mu, NULL);
    cs->oci_memfd = -1;
    pthread_mutex_init(&cs->feat_mu, NULL);
    srv->containers = cs;
    /* the per-container directories below root_dir and state_root are 0700 (owned by the pod's
     * mapped root in a pod user namespace, whose runtime passes through these two) */
    const char *dirs[] = {cs->root_dir, cs->state_root, cs->exit_dir, cs->socket_root};
    for (size_t i = 0; i < 4; i++) {
        mode_t mode = i < 2 ? 0711 : 0700;
        int r = hull_mkdir_p(dirs[i], mode, err);
        if (r == 0 && chmod(dirs[i], mode) < 0)
            r = hull_error_set(err, errno, "chmod `%s`", dirs[i]);
        if (r < 0)
            return hull_error_wrap(err, "containers");
    }
    cs->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (cs->inotify_fd < 0)
        return hull_error_set(err, errno, "inotify");
    if (inotify_add_watch(cs->inotify_fd, cs->exit_dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        return hull_error_set(err, errno, "watch `%s`", cs->exit_dir);
    if (pipe2(cs->wake_pipe, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");

    /* Recovery: reload records, then settle the ones that changed while hulld was down. */
    size_t loaded = 0, corrupt = 0;
    int r = store_load(srv->store, "containers", load_one, srv, &loaded, &corrupt, err);
    if (r < 0)
        return r;
    struct container_snapshot **l = NULL;
    size_t n = 0;
    container_list(srv, NULL, &l, &n, err);
    for (size_t i = 0; i < n; i++) {
        struct container *c = ctr_find(srv, l[i]->id, NULL);
        if (c == NULL)
            continue;
        if (!ctr_collect_exit(srv, c) && !c->restore_pending &&
            (c->state == CONTAINER_RUNNING || c->state == CONTAINER_CREATED)) {
            if (!ctr_monitor_alive(c->monitor_pid))
                ctr_mark_lost(srv, c);
            else if (c->state == CONTAINER_CREATED)
                ctr_reconcile_started(srv, c);
        }
        ctr_put(c);
    }
    container_snapshot_list_free(l, n);
    ctr_sweep_orphans(srv);
    if (loaded || corrupt)
        log_info("containers: %zu restored, %zu set aside", loaded, corrupt);
    ctr_register_hooks(srv);
    _cleanup_free_ char *root_trash = hull_path_join(cfg->root, "trash");
    _cleanup_free_ char *state_trash = hull_path_join(cfg->state_dir, "trash");
    const char *trash[] = {[CTR_TRASH_ROOT] = root_trash, [CTR_TRASH_STATE] = state_trash};
    if ((r = ctr_trash_open(trash, 2, &cs->trash, err)) < 0)
        return r;
    if (pthread_create(&cs->watcher, NULL, ctr_exit_watcher, srv) != 0)
        return hull_error_setx(err, EAGAIN, "cannot start the exit watcher");
    cs->watcher_running = true;
    return 0;
}

void container_service_fini(struct hull_server *srv)
{
    struct container_service *cs = srv->containers;
    if (cs == NULL)
        return;
    if (cs->watcher_running) {
        ssize_t w = write(cs->wake_pipe[1], "x", 1);
        (void)w;
        pthread_join(cs->watcher, NULL);
    }
    ctr_trash_close(cs->trash);
    for (struct container *c = cs->list, *nx; c; c = nx) {
        nx = c->next;
        ctr_put(c);
    }
    if (cs->inotify_fd >= 0)
        close(cs->inotify_fd);
    if (cs->wake_pipe[0] >= 0) {
        close(cs->wake_pipe[0]);
        close(cs->wake_pipe[1]);
    }
    free(cs->root_dir);
    free(cs->state_root);
    free(cs->exit_dir);
    free(cs->socket_root);
    free(cs->conmon_path);
    free(cs->hull_oci_path);
    free(cs->oci_exec_path);
    if (cs->oci_memfd >= 0)
        close(cs->oci_memfd);
    pthread_mutex_destroy(&cs->oci_mu);
    for (size_t i = 0; i < cs->n_feat; i++)
        free(cs->feat[i].path);
    free(cs->feat);
    pthread_mutex_destroy(&cs->feat_mu);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    srv->containers = NULL;
}
