/* Container records, persistence and exit tracking, and the helpers every other container file
 * shares (directories, image holds, runtime runs, signal names): the bottom of the area, it
 * calls none of the others.  The lifecycle operations that talk to hull-conmon and the OCI
 * runtime are in container_create.c, container_lifecycle.c and container_exec.c; loading the
 * records at start-up and the service itself in container_service.c. */
#include "server/container/container_internal.h"
#include "server/spec/spec.h"
#include "common/cgroup_systemd.h"
#include "image/image.h"
#include "server/stats/stats.h"
#include "server/hooks.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <poll.h>

struct container_service *ctr_service(struct hull_server *srv)
{
    return srv->containers;
}

/* ---- shared helpers ------------------------------------------------------------------------ */
char *ctr_state_dir(struct hull_server *srv, const char *id)
{
    return hull_path_join(ctr_service(srv)->state_root, id);
}

char *ctr_root_dir(struct hull_server *srv, const char *id)
{
    return hull_path_join(ctr_service(srv)->root_dir, id);
}

char *ctr_socket_dir(struct hull_server *srv, const char *id, const char *exec_id)
{
    /* unix socket paths must fit in 108 bytes: keep these short */
    if (exec_id)
        return xasprintf("%s/%.12s-%s", ctr_service(srv)->socket_root, id, exec_id);
    return xasprintf("%s/%.20s", ctr_service(srv)->socket_root, id);
}

void ctr_image_acquire(struct hull_server *srv, struct container *c)
{
    struct image_store *is = ctr_service(srv)->images;
    _cleanup_error_ hull_error_t err = NULL;
    if (is && c->image_id[0] && image_acquire(is, c->image_id, &err) < 0)
        log_warn("container %s: image %s: %s", c->id, c->image_id, hull_error_msg(&err));
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    spec_image_mounts_acquire(is, rdir); /* image volumes, after a restart */
}

void ctr_image_release(struct hull_server *srv, struct container *c)
{
    struct image_store *is = ctr_service(srv)->images;
    if (is && c->image_id[0])
        image_release(is, c->image_id);
}

/* runtime [--root R] VERB ... */
int ctr_runtime_run(struct container *c, const char *const *args, hull_error_t *err)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = c->runtime_path;
    argv[n++] = "--root";
    argv[n++] = c->runtime_root;
    if (hull_systemd_path_form(c->cgroups_path))
        argv[n++] = "--systemd-cgroup";
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return proc_run_ok((char *const *)argv, RUNTIME_TIMEOUT_MS, err);
}

/* A signal name ("SIGUSR1", "USR1", "9", "SIGRTMIN+3", or a CRI enum name such as
 * "SIGRTMINPLUS3" / "SIGRTMAXMINUS2") → its number; SIGTERM when unknown. */
int ctr_signal_number(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return SIGTERM;
    if (name[0] >= '0' && name[0] <= '9') {
        int n = atoi(name);
        return n > 0 && n < 65 ? n : SIGTERM;
    }
    const char *s = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
    static const struct {
        const char *n;
        int v;
    } tab[] = {{"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
               {"USR1", SIGUSR1},     {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
               {"WINCH", SIGWINCH},   {"PWR", SIGPWR},   {"ABRT", SIGABRT}, {"ALRM", SIGALRM},
               {"BUS", SIGBUS},       {"CHLD", SIGCHLD}, {"CLD", SIGCHLD},  {"CONT", SIGCONT},
               {"FPE", SIGFPE},       {"ILL", SIGILL},   {"IO", SIGIO},     {"IOT", SIGABRT},
               {"PIPE", SIGPIPE},     {"POLL", SIGIO},   {"PROF", SIGPROF}, {"SEGV", SIGSEGV},
               {"STKFLT", SIGSTKFLT}, {"SYS", SIGSYS},   {"TRAP", SIGTRAP}, {"TSTP", SIGTSTP},
               {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"VTALRM", SIGVTALRM},
               {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(tab[i].n, s) == 0)
            return tab[i].v;
    int n = 0;
    if (strcmp(s, "RTMIN") == 0)
        return SIGRTMIN;
    if (strcmp(s, "RTMAX") == 0)
        return SIGRTMAX;
    if (strncmp(s, "RTMIN+", 6) == 0 || strncmp(s, "RTMINPLUS", 9) == 0) {
        n = SIGRTMIN + atoi(s + (s[5] == '+' ? 6 : 9));
    } else if (strncmp(s, "RTMAX-", 6) == 0 || strncmp(s, "RTMAXMINUS", 10) == 0) {
        n = SIGRTMAX - atoi(s + (s[5] == '-' ? 6 : 10));
    }
    return n >= SIGRTMIN && n <= SIGRTMAX ? n : SIGTERM;
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
        if (c->hidden)
            continue;
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
        if (c->hidden || (pod_id && pod_id[0] && strcmp(c->pod_id, pod_id) != 0))
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
static int ctr_save_locked(struct hull_server *srv, struct container *c, bool nosync,
                           hull_error_t *err);

int ctr_save(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    pthread_mutex_lock(&c->save_lock);
    int r = c->record_gone ? 0 : ctr_save_locked(srv, c, false, err);
    pthread_mutex_unlock(&c->save_lock);
    return r;
}

int ctr_save_running(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    pthread_mutex_lock(&c->save_lock);
    int r = c->record_gone ? 0 : ctr_save_locked(srv, c, true, err);
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

static int ctr_save_locked(struct hull_server *srv, struct container *c, bool nosync,
                           hull_error_t *err)
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
    bool intent = nosync || c->phase != CTR_PHASE_COMMITTED;
    pthread_mutex_unlock(&c->lock);
    size_t len = 0;
    _cleanup_free_ char *json = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    /* "creating" / "removing" and "running": no fsync (store_save_intent); the committed record
     * is durable */
    return intent ? store_save_intent(srv->store, "containers", c->id, json, len, err)
                  : store_save(srv->store, "containers", c->id, json, len, err);
}

/* ---- exits ---------------------------------------------------------------------------------- */
bool ctr_monitor_alive(pid_t pid)
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
    c->runtime_deleted = hull_json_get_bool(doc, "runtime_deleted", false);
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
        hooks_exited(srv, c);
    }
    return changed;
}

/* Marks a container whose monitor vanished without an exit file. */
void ctr_mark_lost(struct hull_server *srv, struct container *c)
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

void *ctr_exit_watcher(void *arg)
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
                if (!busy && !ctr_collect_exit(srv, c) && !ctr_monitor_alive(c->monitor_pid))
                    ctr_mark_lost(srv, c);
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
