/* Container records, persistence, recovery and exit tracking.  The lifecycle operations that
 * talk to hull-conmon and the OCI runtime are in container_create.c, container_lifecycle.c and
 * container_exec.c. */
#include "server/container_internal.h"
#include "server/metrics.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <poll.h>

/* ---- small helpers ------------------------------------------------------------------------- */
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

struct container_service *ctr_service(struct hull_server *srv)
{
    return srv->containers;
}

struct event_hub *container_event_hub(struct hull_server *srv)
{
    return srv->containers->hub;
}

/* ---- records ------------------------------------------------------------------------------- */
void ctr_put(struct container *c)
{
    if (c == NULL)
        return;
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    if (c->config)
        runtime__v1__container_config__free_unpacked(c->config, NULL);
    free(c->config_pb);
    free(c->pod_id);
    free(c->name_key);
    free(c->image_ref);
    free(c->image_id);
    free(c->image_digest_ref);
    free(c->reason);
    free(c->message);
    free(c->log_path);
    free(c->runtime_handler);
    free(c->runtime_path);
    free(c->runtime_root);
    free(c->cgroups_path);
    free(c->stop_signal);
    free(c->resources_pb);
    free(c->gids);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->op_lock);
    pthread_mutex_destroy(&c->save_lock);
    pthread_cond_destroy(&c->exited_cv);
    free(c);
}

struct container *ctr_new(void)
{
    struct container *c = xmalloc0(sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->op_lock, NULL);
    pthread_mutex_init(&c->save_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->exited_cv, &attr);
    pthread_condattr_destroy(&attr);
    c->refs = 1;
    c->monitor_pid = -1;
    return c;
}

/* Finds by full id or unique prefix; returns a reference (ctr_put) or NULL with *err set. */
struct container *ctr_find(struct hull_server *srv, const char *id, hull_error_t *err)
{
    struct container_service *cs = ctr_service(srv);
    if (id == NULL || id[0] == '\0') {
        hull_error_setx(err, EINVAL, "container id is empty");
        return NULL;
    }
    size_t n = strlen(id);
    struct container *found = NULL;
    int matches = 0;
    pthread_mutex_lock(&cs->mu);
    for (struct container *c = cs->list; c; c = c->next) {
        if (strcmp(c->id, id) == 0) {
            found = c;
            matches = 1;
            break;
        }
        if (strncmp(c->id, id, n) == 0) {
            found = c;
            matches++;
        }
    }
    if (matches == 1)
        __atomic_add_fetch(&found->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&cs->mu);
    if (matches == 0) {
        hull_error_setx(err, ENOENT, "container \"%s\" not found", HULL_CLIP(id));
        return NULL;
    }
    if (matches > 1) {
        hull_error_setx(err, EINVAL, "container id prefix \"%s\" is ambiguous", HULL_CLIP(id));
        return NULL;
    }
    return found;
}

struct container *ctr_find_running(struct hull_server *srv, const char *id, hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (state != CONTAINER_RUNNING) {
        hull_error_setx(err, EBUSY, "container \"%s\" is not running", c->id);
        ctr_put(c);
        return NULL;
    }
    return c;
}

/* Adds c to the index unless its name is taken in its pod. */
int ctr_insert(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    struct container_service *cs = ctr_service(srv);
    pthread_mutex_lock(&cs->mu);
    for (struct container *o = cs->list; o; o = o->next) {
        if (strcmp(o->name_key, c->name_key) == 0) {
            pthread_mutex_unlock(&cs->mu);
            return hull_error_setx(err, EEXIST,
                                   "container name \"%s\" is already in use by container \"%s\" "
                                   "in pod \"%s\"",
                                   c->config->metadata->name, o->id, c->pod_id);
        }
    }
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
    c->next = cs->list;
    cs->list = c;
    pthread_mutex_unlock(&cs->mu);
    return 0;
}

void ctr_unlink(struct hull_server *srv, struct container *c)
{
    struct container_service *cs = ctr_service(srv);
    bool was = false;
    pthread_mutex_lock(&cs->mu);
    for (struct container **p = &cs->list; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            was = true;
            break;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    if (was)
        ctr_put(c);
}

char *ctr_name_key(const char *pod_id, const Runtime__V1__ContainerConfig *config)
{
    return xasprintf("%s/%s/%u", pod_id, config->metadata->name, config->metadata->attempt);
}

/* ---- snapshots ----------------------------------------------------------------------------- */
void container_snapshot_free(struct container_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->id);
    free(s->pod_id);
    if (s->config)
        runtime__v1__container_config__free_unpacked(s->config, NULL);
    free(s->image_ref);
    free(s->image_id);
    free(s->image_digest_ref);
    free(s->reason);
    free(s->message);
    free(s->log_path);
    free(s->runtime_handler);
    free(s->cgroups_path);
    free(s->upper_dir);
    free(s->resources_pb);
    free(s->gids);
    free(s);
}

void container_snapshot_list_free(struct container_snapshot **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        container_snapshot_free(l[i]);
    free(l);
}

static struct container_snapshot *snapshot(struct hull_server *srv, struct container *c)
{
    struct container_snapshot *s = xmalloc0(sizeof(*s));
    pthread_mutex_lock(&c->lock);
    s->id = xstrdup(c->id);
    s->pod_id = xstrdup(c->pod_id);
    s->config = runtime__v1__container_config__unpack(NULL, c->config_len, c->config_pb);
    s->image_ref = xstrdup(c->image_ref);
    s->image_id = xstrdup(c->image_id);
    s->image_digest_ref = xstrdup(c->image_digest_ref);
    s->state = c->state;
    s->created_ns = c->created_ns;
    s->started_ns = c->started_ns;
    s->finished_ns = c->finished_ns;
    s->exit_code = c->exit_code;
    s->reason = xstrdup(c->reason);
    s->message = xstrdup(c->message);
    s->log_path = xstrdup(c->log_path);
    s->runtime_handler = xstrdup(c->runtime_handler);
    s->cgroups_path = xstrdup(c->cgroups_path);
    s->upper_dir = xasprintf("%s/%s/upper", ctr_service(srv)->root_dir, c->id);
    s->pid = c->pid;
    s->stop_signo = ctr_signal_number(c->stop_signal);
    s->has_user = c->has_user;
    s->uid = c->uid;
    s->gid = c->gid;
    if (c->n_gids) {
        s->gids = xmalloc0(c->n_gids * sizeof(uint32_t));
        memcpy(s->gids, c->gids, c->n_gids * sizeof(uint32_t));
        s->n_gids = c->n_gids;
    }
    if (c->resources_pb) {
        s->resources_pb = xmalloc0(c->resources_len);
        memcpy(s->resources_pb, c->resources_pb, c->resources_len);
        s->resources_len = c->resources_len;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

int container_get(struct hull_server *srv, const char *id, struct container_snapshot **out,
                  hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    *out = snapshot(srv, c);
    ctr_put(c);
    return 0;
}

int container_list(struct hull_server *srv, const char *pod_id, struct container_snapshot ***out,
                   size_t *n_out, hull_error_t *err)
{
    struct container_service *cs = ctr_service(srv);
    size_t n = 0, cap = 0;
    struct container **refs = NULL;
    pthread_mutex_lock(&cs->mu);
    for (struct container *c = cs->list; c; c = c->next) {
        if (pod_id && pod_id[0] && strcmp(c->pod_id, pod_id) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            refs = xrealloc(refs, cap * sizeof(*refs));
        }
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
        refs[n++] = c;
    }
    pthread_mutex_unlock(&cs->mu);
    struct container_snapshot **l = xmalloc0((n + 1) * sizeof(*l));
    for (size_t i = 0; i < n; i++) {
        l[i] = snapshot(srv, refs[i]);
        ctr_put(refs[i]);
    }
    free(refs);
    *out = l;
    *n_out = n;
    return 0;
}

/* ---- persistence --------------------------------------------------------------------------- */
static int ctr_save_locked(struct hull_server *srv, struct container *c, hull_error_t *err);

int ctr_save(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    pthread_mutex_lock(&c->save_lock);
    int r = c->record_gone ? 0 : ctr_save_locked(srv, c, err);
    pthread_mutex_unlock(&c->save_lock);
    return r;
}

bool ctr_gone(struct container *c)
{
    pthread_mutex_lock(&c->save_lock);
    bool gone = c->record_gone;
    pthread_mutex_unlock(&c->save_lock);
    return gone;
}

int ctr_remove_record(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    pthread_mutex_lock(&c->save_lock);
    int r = store_remove(srv->store, "containers", c->id, err);
    if (r == 0)
        c->record_gone = true;
    pthread_mutex_unlock(&c->save_lock);
    return r;
}

static int ctr_save_locked(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    pthread_mutex_lock(&c->lock);
    _cleanup_free_ char *cfg = hull_base64_encode(c->config_pb, c->config_len);
    _cleanup_free_ char *res =
        c->resources_pb ? hull_base64_encode(c->resources_pb, c->resources_len) : NULL;
    hull_jw_begin_object(&w);
    hull_jw_kv_int(&w, "version", 1);
    hull_jw_kv_string(&w, "id", c->id);
    if (c->phase != CTR_PHASE_COMMITTED)
        hull_jw_kv_string(&w, "phase", c->phase == CTR_PHASE_CREATING ? "creating" : "removing");
    hull_jw_kv_string(&w, "pod_id", c->pod_id);
    hull_jw_kv_string(&w, "config", cfg);
    if (res)
        hull_jw_kv_string(&w, "resources", res);
    hull_jw_kv_string(&w, "image_ref", c->image_ref);
    hull_jw_kv_string(&w, "image_id", c->image_id);
    hull_jw_kv_string(&w, "image_digest_ref", c->image_digest_ref);
    hull_jw_kv_int(&w, "state", c->state);
    hull_jw_kv_int(&w, "created_ns", c->created_ns);
    hull_jw_kv_int(&w, "started_ns", c->started_ns);
    hull_jw_kv_int(&w, "finished_ns", c->finished_ns);
    hull_jw_kv_int(&w, "exit_code", c->exit_code);
    hull_jw_kv_string(&w, "reason", c->reason);
    hull_jw_kv_string(&w, "message", c->message);
    hull_jw_kv_string(&w, "log_path", c->log_path);
    hull_jw_kv_string(&w, "runtime_handler", c->runtime_handler);
    hull_jw_kv_string(&w, "runtime_path", c->runtime_path);
    hull_jw_kv_string(&w, "runtime_root", c->runtime_root);
    hull_jw_kv_string(&w, "cgroups_path", c->cgroups_path);
    hull_jw_kv_string(&w, "stop_signal", c->stop_signal);
    hull_jw_kv_int(&w, "pid", c->pid);
    hull_jw_kv_int(&w, "pid_start", (long long)c->pid_start);
    hull_jw_kv_int(&w, "monitor_pid", c->monitor_pid);
    if (c->restore_pending)
        hull_jw_kv_bool(&w, "restore_pending", true);
    if (c->has_user) {
        hull_jw_kv_int(&w, "uid", c->uid);
        hull_jw_kv_int(&w, "gid", c->gid);
        hull_jw_key(&w, "gids");
        hull_jw_begin_array(&w);
        for (size_t i = 0; i < c->n_gids; i++)
            hull_jw_int(&w, c->gids[i]);
        hull_jw_end_array(&w);
    }
    hull_jw_end_object(&w);
    bool intent = c->phase != CTR_PHASE_COMMITTED;
    pthread_mutex_unlock(&c->lock);
    size_t len = 0;
    _cleanup_free_ char *json = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    /* "creating" / "removing": no fsync (store_save_intent); the committed record is durable */
    return intent ? store_save_intent(srv->store, "containers", c->id, json, len, err)
                  : store_save(srv->store, "containers", c->id, json, len, err);
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

/* ---- exits ---------------------------------------------------------------------------------- */
static bool monitor_alive(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) < 0)
        return false;
    _cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", pid);
    _cleanup_free_ char *cmd = NULL;
    _cleanup_error_ hull_error_t err = NULL;
    if (hull_read_file(path, 4096, &cmd, NULL, &err) < 0)
        return false;
    return strstr(cmd, "conmon") != NULL;
}

/* Reads the monitor's exit file for c and moves c to EXITED.  Returns true if it did. */
bool ctr_collect_exit(struct hull_server *srv, struct container *c)
{
    struct container_service *cs = ctr_service(srv);
    _cleanup_free_ char *path = hull_path_join(cs->exit_dir, c->id);
    _cleanup_yajl_ yajl_val doc = NULL;
    _cleanup_error_ hull_error_t err = NULL;
    if (access(path, F_OK) < 0)
        return false;
    if (hull_json_parse_file(path, 64 * 1024, &doc, &err) < 0) {
        log_warn("container %s: unreadable exit file: %s", c->id, hull_error_msg(&err));
        return false;
    }
    bool changed = false;
    pthread_mutex_lock(&c->lock);
    if (c->busy) {
        /* StartContainer is between `RUNTIME start` and recording it: it collects the exit
         * itself afterwards, so STARTED is always published before STOPPED */
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    if (c->state != CONTAINER_EXITED) {
        c->state = CONTAINER_EXITED;
        c->exit_code = (int32_t)hull_json_get_int(doc, "exit_code", 255);
        c->finished_ns = hull_json_get_int(doc, "exited_at_ns", hull_now_ns());
        bool oom = hull_json_get_bool(doc, "oom_killed", false);
        free(c->reason);
        c->reason = xstrdup(oom ? "OOMKilled" : c->exit_code == 0 ? "Completed" : "Error");
        changed = true;
        pthread_cond_broadcast(&c->exited_cv);
    }
    pthread_mutex_unlock(&c->lock);
    if (changed) {
        log_info("container %s exited with %d", c->id, c->exit_code);
        if (ctr_save(srv, c, &err) < 0)
            log_error("container %s: %s", c->id, hull_error_msg(&err));
        /* The host's view of the rootfs is not needed once init is gone (processes left in a
         * shared pid namespace keep their own mount namespace): unmounting it now, off the
         * RemoveContainer path, spares Remove the unmount's wait (kernel RCU grace period),
         * as a containerd shim unmounts at task exit.  Remove unmounts what is still there. */
        _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
        _cleanup_free_ char *rootfs = hull_path_join(sdir, "rootfs");
        if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            log_warn("container %s: unmount rootfs: %s", c->id, strerror(errno));
        events_publish(srv, c->id, c->pod_id,
                       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
    }
    return changed;
}

/* Marks a container whose monitor vanished without an exit file. */
static void mark_lost(struct hull_server *srv, struct container *c)
{
    _cleanup_error_ hull_error_t err = NULL;
    pthread_mutex_lock(&c->lock);
    c->state = CONTAINER_EXITED;
    c->exit_code = 255;
    c->finished_ns = hull_now_ns();
    free(c->reason);
    free(c->message);
    c->reason = xstrdup("Error");
    c->message = xstrdup("the container's monitor ended without recording an exit status");
    pthread_cond_broadcast(&c->exited_cv);
    pthread_mutex_unlock(&c->lock);
    log_warn("container %s: monitor %d is gone; marking it exited", c->id, c->monitor_pid);
    metrics_monitor_lost(srv->metrics);
    if (ctr_save(srv, c, &err) < 0)
        log_error("container %s: %s", c->id, hull_error_msg(&err));
}

static void *exit_watcher(void *arg)
{
    struct hull_server *srv = arg;
    struct container_service *cs = ctr_service(srv);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd pfd[2] = {{.fd = cs->inotify_fd, .events = POLLIN},
                                {.fd = cs->wake_pipe[0], .events = POLLIN}};
        int r = poll(pfd, 2, 5000);
        if (r < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if (r == 0) {
            /* belt and braces: a monitor killed hard never writes its exit file */
            struct container_snapshot **l = NULL;
            size_t n = 0;
            container_list(srv, NULL, &l, &n, NULL);
            for (size_t i = 0; i < n; i++) {
                if (l[i]->state != CONTAINER_RUNNING && l[i]->state != CONTAINER_CREATED)
                    continue;
                struct container *c = ctr_find(srv, l[i]->id, NULL);
                if (c == NULL)
                    continue;
                pthread_mutex_lock(&c->lock);
                bool busy = c->busy || c->restore_pending; /* no monitor yet */
                pthread_mutex_unlock(&c->lock);
                if (!busy && !ctr_collect_exit(srv, c) && !monitor_alive(c->monitor_pid))
                    mark_lost(srv, c);
                ctr_put(c);
            }
            container_snapshot_list_free(l, n);
            continue;
        }
        ssize_t len = read(cs->inotify_fd, buf, sizeof(buf));
        if (len <= 0)
            continue;
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(struct inotify_event) + ev->len;
            if (ev->len == 0 || ev->name[0] == '.' || !hull_id_is_valid(ev->name))
                continue;
            struct container *c = ctr_find(srv, ev->name, NULL);
            if (c == NULL)
                continue;
            ctr_collect_exit(srv, c);
            ctr_put(c);
        }
    }
    return NULL;
}

/* ---- service --------------------------------------------------------------------------------- */
int container_service_init(struct hull_server *srv, struct image_store *images, hull_error_t *err)
{
    const struct hull_config *cfg = srv->config;
    struct container_service *cs = xmalloc0(sizeof(*cs));
    cs->images = images;
    pthread_mutex_init(&cs->mu, NULL);
    cs->hub = events_hub_new();
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
            if (!monitor_alive(c->monitor_pid))
                mark_lost(srv, c);
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
    if (pthread_create(&cs->watcher, NULL, exit_watcher, srv) != 0)
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
    events_hub_free(cs->hub);
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
