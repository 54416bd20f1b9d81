/* Container lifecycle: create (overlay rootfs + OCI bundle + hull-conmon running `RUNTIME
 * create`), start, stop with the stop signal and a grace period, remove, exec-sync, live
 * resource updates and log reopen.  Locks: c->op_lock serialises operations on one container;
 * c->lock is only held to read or change fields, never across a child process. */
#include "server/container_internal.h"
#include "server/ocispec.h"
#include "server/sandbox.h"
#include "image/image.h"
#include "conmon/conmon.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define RUNTIME_TIMEOUT_MS     (120 * 1000)
#define CREATE_SYNC_TIMEOUT_MS (120 * 1000)

static char *ctr_state_dir(struct hull_server *srv, const char *id)
{
    return hull_path_join(ctr_service(srv)->state_root, id);
}

static char *ctr_root_dir(struct hull_server *srv, const char *id)
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
    struct image_store *is = server_image_store(srv);
    _cleanup_error_ hull_error_t err = NULL;
    if (is && c->image_id[0] && image_acquire(is, c->image_id, &err) < 0)
        log_warn("container %s: image %s: %s", c->id, c->image_id, hull_error_msg(&err));
}

static void ctr_image_release(struct hull_server *srv, struct container *c)
{
    struct image_store *is = server_image_store(srv);
    if (is && c->image_id[0])
        image_release(is, c->image_id);
}

/* runtime [--root R] VERB ... */
static int runtime_run(struct container *c, const char *const *args, hull_error_t *err)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = c->runtime_path;
    argv[n++] = "--root";
    argv[n++] = c->runtime_root;
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
static void fill_pod_view(struct sandbox *sb, struct ocispec_sandbox *v)
{
    memset(v, 0, sizeof(*v));
    v->id = sandbox_id(sb);
    v->config = sandbox_config(sb);
    v->netns_path = sandbox_netns_path(sb);
    v->ipcns_path = sandbox_ipcns_path(sb);
    v->utsns_path = sandbox_utsns_path(sb);
    v->pidns_path = sandbox_pidns_path(sb);
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

/* ---- monitor start -------------------------------------------------------------------------- */
/* Reads one '\n'-terminated line from fd within timeout_ms. */
static int read_line(int fd, int timeout_ms, char **out, hull_error_t *err)
{
    size_t cap = 256, n = 0;
    _cleanup_free_ char *buf = xmalloc0(cap);
    int64_t deadline = hull_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        if (left <= 0)
            return hull_error_setx(err, ETIMEDOUT, "no answer from the monitor in %d s",
                                   timeout_ms / 1000);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return hull_error_setx(err, EPIPE, "the monitor exited without reporting");
        if (ch == '\n')
            break;
        if (n + 2 >= cap) {
            if (cap >= 64 * 1024)
                return hull_error_setx(err, EPROTO, "monitor message too long");
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        buf[n++] = ch;
        buf[n] = '\0';
    }
    *out = hull_steal(buf);
    return 0;
}

void margs_add(struct monitor_args *a, const char *s)
{
    if (a->n < sizeof(a->argv) / sizeof(a->argv[0]) - 1)
        a->argv[a->n++] = s;
    a->argv[a->n] = NULL;
}

const char *margs_own(struct monitor_args *a, char *s)
{
    if (a->n_owned < sizeof(a->owned) / sizeof(a->owned[0]))
        a->owned[a->n_owned++] = s;
    return s;
}

void margs_free(struct monitor_args *a)
{
    for (size_t i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
}

void margs_monitor(struct monitor_args *a, struct hull_server *srv, struct container *c,
                   const char *bundle, const char *socket_dir, const char *exit_dir)
{
    margs_add(a, ctr_service(srv)->conmon_path);
    margs_add(a, "--cid");
    margs_add(a, c->id);
    margs_add(a, "--bundle");
    margs_add(a, bundle);
    margs_add(a, "--runtime");
    margs_add(a, c->runtime_path);
    margs_add(a, "--runtime-root");
    margs_add(a, c->runtime_root);
    margs_add(a, "--socket-dir");
    margs_add(a, socket_dir);
    margs_add(a, "--exit-dir");
    margs_add(a, exit_dir);
    margs_add(a, "--sync-fd");
    margs_add(a, "3");
}

/* Starts hull-conmon with argv, reads its first sync message: the container pid or the
 * runtime's error.  sync_fd_out (optional) keeps the read end open for a second message. */
static int monitor_start(struct monitor_args *a, pid_t *pid, pid_t *monitor_pid, int *sync_fd_out,
                         hull_error_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    _cleanup_close_ int rd = p[0];
    _cleanup_close_ int wr = p[1];
    pid_t child = -1;
    int r = proc_spawn_with_fd((char *const *)a->argv, wr, &child, err);
    if (r < 0)
        return r;
    close(hull_steal_fd(wr));
    _cleanup_free_ char *line = NULL;
    r = read_line(rd, CREATE_SYNC_TIMEOUT_MS, &line, err);
    if (!sync_fd_out) {
        /* the first process forks the monitor away and exits at once */
        int st;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (r < 0) {
        if (sync_fd_out)
            kill(child, SIGKILL), waitpid(child, NULL, 0);
        return r;
    }
    _cleanup_yajl_ yajl_val doc = NULL;
    r = hull_json_parse(line, "monitor message", &doc, err);
    if (r < 0)
        return r;
    long long cpid = hull_json_get_int(doc, "pid", -1);
    *monitor_pid = (pid_t)hull_json_get_int(doc, "monitor_pid", -1);
    if (cpid <= 0) {
        const char *e = hull_json_get_string(doc, "error", "unknown error");
        if (sync_fd_out)
            waitpid(child, NULL, 0);
        return hull_error_setx(err, EIO, "%s", e);
    }
    *pid = (pid_t)cpid;
    if (sync_fd_out) {
        *sync_fd_out = hull_steal_fd(rd);
        *monitor_pid = child;
    }
    return 0;
}

/* ---- create --------------------------------------------------------------------------------- */
/* Undoes whatever create got to. */
static void create_rollback(struct hull_server *srv, struct container *c, bool mounted)
{
    _cleanup_error_ hull_error_t err = NULL;
    if (c->monitor_pid > 0) {
        const char *kill_args[] = {"kill", c->id, "KILL", NULL};
        runtime_run(c, kill_args, &err);
        hull_error_free(&err);
    }
    if (c->runtime_path) {
        const char *del[] = {"delete", "--force", c->id, NULL};
        runtime_run(c, del, &err);
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
    hull_rm_rf(rdir, &err);
    hull_error_free(&err);
    _cleanup_free_ char *exitf = hull_path_join(ctr_service(srv)->exit_dir, c->id);
    unlink(exitf);
    ctr_remove_record(srv, c, &err);
}

int container_create(struct hull_server *srv, const char *pod_id,
                     const Runtime__V1__ContainerConfig *config,
                     const Runtime__V1__PodSandboxConfig *pod_config_req, char **id_out,
                     hull_error_t *err)
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

    struct sandbox *sb = NULL;
    int r = sandbox_lookup(srv, pod_id, &sb, err);
    if (r < 0)
        return r;
    r = sandbox_hold(sb, err);
    if (r < 0) {
        sandbox_unref(sb);
        return r;
    }

    struct image_store *is = server_image_store(srv);
    struct image_info *img = NULL;
    struct container *c = ctr_new();
    bool mounted = false, inserted = false;
    _cleanup_free_ char *json = NULL, *sdir = NULL, *rdir = NULL, *rootfs = NULL, *mon = NULL,
                        *upper = NULL, *work = NULL, *cfgpath = NULL, *target_pidns = NULL;
    struct monitor_args ma = {0};
    struct ocispec_user user = {0};
    const Runtime__V1__PodSandboxConfig *pod_config = sandbox_config(sb);
    (void)pod_config_req; /* the pod's stored config is authoritative */

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
            : ocispec_log_path(pod_config, config, &c->log_path, err);
    if (c->log_path == NULL)
        c->log_path = xstrdup(""); /* no log asked for (or refused below) */
    if (r < 0) {
        hull_error_wrap(err, "container \"%s\"", config->metadata->name);
        goto fail;
    }

    c->busy = true;              /* being created: the exit watcher leaves it alone */
    r = ctr_insert(srv, c, err); /* reserves the name */
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
    c->cgroups_path = xasprintf("%s/hull-%s", sandbox_cgroup_parent(sb), c->id);
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
    r = image_overlay_mount(is, c->image_id, upper, work, rootfs, NULL, err);
    if (r < 0)
        goto fail;
    mounted = true;
    hull_crash_point("create:after-mount");

    /* the OCI spec */
    struct ocispec_sandbox view;
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
        target_pidns = xasprintf("/proc/%d/ns/pid", (int)t->pid);
        ctr_put(t);
        if (!same_pod) {
            r = hull_error_setx(err, EINVAL,
                                "container \"%s\": pid namespace target \"%s\" is in another pod",
                                config->metadata->name, nso->target_id);
            goto fail;
        }
    }
    struct ocispec_input in = {
        .container_id = c->id,
        .config = c->config,
        .sandbox = &view,
        .image = img,
        .rootfs = rootfs,
        .container_dir = rdir,
        .seccomp_profile_root = "/var/lib/kubelet/seccomp",
        .target_pidns_path = target_pidns,
        .volume_copy_budget = (uint64_t)srv->config->max_volume_copy_size,
        .user_out = &user,
    };
    r = oci_spec_from_cri(&in, &json, err);
    if (r < 0)
        goto fail;
    c->has_user = true;
    c->uid = user.uid;
    c->gid = user.gid;
    c->gids = hull_steal(user.additional_gids);
    c->n_gids = user.n_additional_gids;
    cfgpath = hull_path_join(sdir, "config.json");
    r = hull_write_file_atomic(cfgpath, json, strlen(json), 0600, err);
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
    r = monitor_start(&ma, &c->pid, &c->monitor_pid, NULL, err);
    if (r < 0) {
        hull_error_wrap(err, "create container \"%s\"", config->metadata->name);
        goto fail;
    }
    hull_crash_point("create:after-monitor");
    pthread_mutex_lock(&c->lock);
    c->created_ns = hull_now_ns();
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
    *id_out = xstrdup(c->id);
    margs_free(&ma);
    image_info_free(img);
    ctr_put(c);
    sandbox_release(sb);
    sandbox_unref(sb);
    return 0;

fail:
    margs_free(&ma);
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
    ctr_put(c);
    sandbox_release(sb);
    sandbox_unref(sb);
    return r;
}

/* ---- sandbox hooks ------------------------------------------------------------------------- */
static int hook_stop_all(void *opaque, struct sandbox *sb, hull_error_t *err)
{
    return container_stop_pod(opaque, sandbox_id(sb), err);
}

static int hook_remove_all(void *opaque, struct sandbox *sb, hull_error_t *err)
{
    return container_remove_pod(opaque, sandbox_id(sb), err);
}

void ctr_register_hooks(struct hull_server *srv)
{
    struct sandbox_container_hooks hooks = {
        .opaque = srv, .stop_all = hook_stop_all, .remove_all = hook_remove_all};
    sandbox_set_container_hooks(srv, &hooks);
}

/* ---- start ---------------------------------------------------------------------------------- */
int container_start(struct hull_server *srv, const char *id, hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    struct sandbox *sb = NULL;
    int r = sandbox_lookup(srv, c->pod_id, &sb, err);
    if (r < 0)
        goto out;
    r = sandbox_hold(sb, err);
    if (r < 0)
        goto out;
    pthread_mutex_lock(&c->op_lock);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (state != CONTAINER_CREATED) {
        r = hull_error_setx(err, EBUSY, "container \"%s\" is %s, not created", c->id,
                            state == CONTAINER_RUNNING ? "running" : "not in the created state");
    } else {
        const char *args[] = {"start", c->id, NULL};
        pthread_mutex_lock(&c->lock);
        c->busy = true;
        pthread_mutex_unlock(&c->lock);
        /* the process is released during `start`: take the time before, so a process that
         * exits at once never finishes before it started */
        int64_t started = hull_now_ns();
        hull_crash_point("start:before-runtime");
        r = runtime_run(c, args, err);
        hull_crash_point("start:after-runtime");
        pthread_mutex_lock(&c->lock);
        if (r == 0 && c->state == CONTAINER_CREATED) {
            c->state = CONTAINER_RUNNING;
            c->started_ns = started;
        }
        pthread_mutex_unlock(&c->lock);
        if (r == 0) {
            ctr_save(srv, c, NULL);
            events_publish(srv, c->id, c->pod_id,
                           RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
        }
        /* busy until STARTED is out: the exit watcher must not publish STOPPED before it */
        pthread_mutex_lock(&c->lock);
        c->busy = false;
        pthread_mutex_unlock(&c->lock);
        if (r == 0) {
            ctr_collect_exit(srv, c); /* it may already be done */
        } else {
            hull_error_wrap(err, "start container \"%s\"", c->id);
        }
    }
    pthread_mutex_unlock(&c->op_lock);
    sandbox_release(sb);
out:
    if (sb)
        sandbox_unref(sb);
    ctr_put(c);
    return r;
}

/* ---- stop ----------------------------------------------------------------------------------- */
/* Waits until c exited or timeout_ms passed; true if it exited. */
static bool wait_exited(struct hull_server *srv, struct container *c, int64_t timeout_ms)
{
    int64_t deadline = hull_monotonic_ns() + timeout_ms * 1000000;
    for (;;) {
        ctr_collect_exit(srv, c);
        pthread_mutex_lock(&c->lock);
        bool done = c->state == CONTAINER_EXITED;
        if (!done) {
            struct timespec ts;
            int64_t until = hull_monotonic_ns() + 200 * 1000000LL;
            if (until > deadline)
                until = deadline;
            ts.tv_sec = until / 1000000000LL;
            ts.tv_nsec = until % 1000000000LL;
            pthread_cond_timedwait(&c->exited_cv, &c->lock, &ts);
            done = c->state == CONTAINER_EXITED;
        }
        pthread_mutex_unlock(&c->lock);
        if (done)
            return true;
        if (hull_monotonic_ns() >= deadline)
            return false;
    }
}

static int stop_locked(struct hull_server *srv, struct container *c, int64_t timeout_s,
                       hull_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    if (state == CONTAINER_EXITED)
        return 0;
    if (ctr_collect_exit(srv, c))
        return 0;
    _cleanup_error_ hull_error_t kerr = NULL;
    if (timeout_s > 0 && state == CONTAINER_RUNNING) {
        _cleanup_free_ char *sig = xasprintf("%d", ctr_signal_number(c->stop_signal));
        const char *args[] = {"kill", c->id, sig, NULL};
        if (runtime_run(c, args, &kerr) < 0)
            log_debug("container %s: stop signal: %s", c->id, hull_error_msg(&kerr));
        hull_error_free(&kerr);
        hull_crash_point("stop:after-signal");
        if (wait_exited(srv, c, timeout_s * 1000))
            return 0;
        log_info("container %s did not stop within %lld s: killing it", c->id,
                 (long long)timeout_s);
    }
    const char *args[] = {"kill", "--all", c->id, "KILL", NULL};
    if (runtime_run(c, args, &kerr) < 0) {
        log_debug("container %s: kill: %s", c->id, hull_error_msg(&kerr));
        hull_error_free(&kerr);
        const char *args1[] = {"kill", c->id, "KILL", NULL};
        runtime_run(c, args1, &kerr);
    }
    hull_crash_point("stop:after-kill");
    if (wait_exited(srv, c, 30 * 1000))
        return 0;
    /* A monitor that is gone can't report: the container is lost. */
    pthread_mutex_lock(&c->lock);
    pid_t mpid = c->monitor_pid;
    pthread_mutex_unlock(&c->lock);
    if (mpid <= 0 || kill(mpid, 0) < 0) {
        pthread_mutex_lock(&c->lock);
        c->state = CONTAINER_EXITED;
        c->exit_code = 137;
        c->finished_ns = hull_now_ns();
        free(c->reason);
        c->reason = xstrdup("Error");
        pthread_cond_broadcast(&c->exited_cv);
        pthread_mutex_unlock(&c->lock);
        ctr_save(srv, c, NULL);
        return 0;
    }
    return hull_error_setx(err, ETIMEDOUT, "container \"%s\" did not stop after SIGKILL", c->id);
}

int container_stop(struct hull_server *srv, const char *id, int64_t timeout_s, hull_error_t *err)
{
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    pthread_mutex_lock(&c->op_lock);
    int r = stop_locked(srv, c, timeout_s, err);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

/* ---- remove --------------------------------------------------------------------------------- */
static int remove_locked(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    int r = stop_locked(srv, c, 0, err);
    if (r < 0)
        return r;
    /* from here on the removal is owed: a restart finishes it */
    if (c->phase != CTR_PHASE_REMOVING) {
        pthread_mutex_lock(&c->lock);
        c->phase = CTR_PHASE_REMOVING;
        pthread_mutex_unlock(&c->lock);
        if ((r = ctr_save(srv, c, err)) < 0)
            return hull_error_wrap(err, "remove container \"%s\"", c->id);
    }
    hull_crash_point("remove:after-intent");
    _cleanup_error_ hull_error_t e = NULL;
    const char *args[] = {"delete", "--force", c->id, NULL};
    if (runtime_run(c, args, &e) < 0)
        log_debug("container %s: delete: %s", c->id, hull_error_msg(&e));
    hull_error_free(&e);
    hull_crash_point("remove:after-delete");
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *rootfs = hull_path_join(sdir, "rootfs");
    if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return hull_error_set(err, errno, "remove container \"%s\": unmount rootfs", c->id);
    hull_crash_point("remove:after-umount");
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    if ((r = hull_rm_rf(mon, err)) < 0 || (r = hull_rm_rf(sdir, err)) < 0 ||
        (r = hull_rm_rf(rdir, err)) < 0)
        return hull_error_wrap(err, "remove container \"%s\"", c->id);
    hull_crash_point("remove:after-dirs");
    _cleanup_free_ char *exitf = hull_path_join(ctr_service(srv)->exit_dir, c->id);
    unlink(exitf);
    r = ctr_remove_record(srv, c, err);
    if (r < 0)
        return r;
    ctr_image_release(srv, c);
    ctr_unlink(srv, c);
    log_info("container %s removed", c->id);
    events_publish(srv, c->id, c->pod_id,
                   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
    return 0;
}

int container_remove(struct hull_server *srv, const char *id, hull_error_t *err)
{
    _cleanup_error_ hull_error_t ferr = NULL;
    struct container *c = ctr_find(srv, id, &ferr);
    if (c == NULL) {
        if (hull_error_status(&ferr) == ENOENT)
            return 0; /* idempotent */
        *err = hull_steal(ferr);
        return -hull_error_status(err);
    }
    pthread_mutex_lock(&c->op_lock);
    int r = remove_locked(srv, c, err);
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

static int for_pod(struct hull_server *srv, const char *pod_id, bool remove, hull_error_t *err)
{
    struct container_snapshot **l = NULL;
    size_t n = 0;
    container_list(srv, pod_id, &l, &n, err);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        int r = remove ? container_remove(srv, l[i]->id, &e) : container_stop(srv, l[i]->id, 0, &e);
        if (r < 0 && first == 0) {
            first = r;
            hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
        }
    }
    container_snapshot_list_free(l, n);
    return first;
}

int container_stop_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err)
{
    return for_pod(srv, pod_id, false, err);
}

int container_remove_pod(struct hull_server *srv, const char *pod_id, hull_error_t *err)
{
    return for_pod(srv, pod_id, true, err);
}

/* ---- exec sync ------------------------------------------------------------------------------ */
int ctr_exec_process_json(const char *bundle, char *const *cmd, size_t n_cmd, bool tty,
                          unsigned rows, unsigned cols, char **out, hull_error_t *err)
{
    _cleanup_free_ char *cfg = hull_path_join(bundle, "config.json");
    _cleanup_free_ char *spec = NULL;
    int r = hull_read_file(cfg, 8 << 20, &spec, NULL, err);
    if (r < 0)
        return r;
    return ocispec_exec_process(spec, cmd, n_cmd, tty, rows, cols, out, err);
}

static int read_exact(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE;
        got += (size_t)n;
    }
    return 0;
}

int container_exec_sync(struct hull_server *srv, const char *id, char *const *cmd, size_t n_cmd,
                        int64_t timeout_s, struct container_exec_result *res, hull_error_t *err)
{
    memset(res, 0, sizeof(*res));
    if (n_cmd == 0 || cmd[0] == NULL || cmd[0][0] == '\0')
        return hull_error_setx(err, EINVAL, "exec: no command given");
    struct container *c = ctr_find_running(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    int r;
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    char xid[65];
    hull_id_generate(xid);
    xid[16] = '\0';
    _cleanup_free_ char *xdir = ctr_socket_dir(srv, c->id, xid);
    _cleanup_free_ char *pjson = NULL;
    _cleanup_free_ char *pfile = hull_path_join(xdir, "process.json");
    _cleanup_free_ char *timeout = xasprintf("%lld", (long long)(timeout_s > 0 ? timeout_s : 0));
    _cleanup_close_ int sync_fd = -1;
    _cleanup_free_ char *line = NULL;
    _cleanup_yajl_ yajl_val doc = NULL;
    struct monitor_args ma = {0};
    pid_t pid = 0, mpid = -1;
    if ((r = hull_mkdir_p(xdir, 0700, err)) < 0 ||
        (r = ctr_exec_process_json(sdir, cmd, n_cmd, false, 0, 0, &pjson, err)) < 0 ||
        (r = hull_write_file_atomic(pfile, pjson, strlen(pjson), 0600, err)) < 0)
        goto out;
    margs_monitor(&ma, srv, c, sdir, xdir, xdir);
    margs_add(&ma, "--exec");
    margs_add(&ma, "--exec-process");
    margs_add(&ma, pfile);
    margs_add(&ma, "--exec-capture");
    margs_add(&ma, "--foreground");
    if (timeout_s > 0) {
        margs_add(&ma, "--timeout");
        margs_add(&ma, timeout);
    }
    r = monitor_start(&ma, &pid, &mpid, &sync_fd, err);
    if (r < 0) {
        hull_error_wrap(err, "exec in container \"%s\"", c->id);
        goto out;
    }
    /* the result follows once the process ended and its output drained */
    int wait_ms = timeout_s > 0 ? (int)(timeout_s * 1000 + 30000) : 24 * 3600 * 1000;
    r = read_line(sync_fd, wait_ms, &line, err);
    if (r == 0)
        r = hull_json_parse(line, "exec result", &doc, err);
    if (r == 0) {
        res->exit_code = (int)hull_json_get_int(doc, "exit_code", 255);
        res->timed_out = hull_json_get_bool(doc, "timed_out", false);
        res->out_len = (size_t)hull_json_get_int(doc, "stdout_len", 0);
        res->err_len = (size_t)hull_json_get_int(doc, "stderr_len", 0);
        if (res->out_len > HULL_CONMON_CAPTURE_DEFAULT ||
            res->err_len > HULL_CONMON_CAPTURE_DEFAULT)
            r = hull_error_setx(err, EPROTO, "exec output larger than announced limits");
    }
    if (r == 0) {
        res->out = xmalloc0(res->out_len + 1);
        res->errout = xmalloc0(res->err_len + 1);
        if (read_exact(sync_fd, res->out, res->out_len, 30000) < 0 ||
            read_exact(sync_fd, res->errout, res->err_len, 30000) < 0)
            r = hull_error_setx(err, EPIPE, "exec output cut short");
    }
    if (mpid > 0) {
        if (r < 0)
            kill(mpid, SIGKILL);
        while (waitpid(mpid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
out:
    margs_free(&ma);
    {
        _cleanup_error_ hull_error_t e = NULL;
        hull_rm_rf(xdir, &e);
    }
    if (r < 0) {
        free(res->out);
        free(res->errout);
        res->out = res->errout = NULL;
    }
    ctr_put(c);
    return r;
}

/* ---- update, reopen -------------------------------------------------------------------------- */
int container_update_resources(struct hull_server *srv, const char *id,
                               const Runtime__V1__LinuxContainerResources *res, hull_error_t *err)
{
    if (res == NULL)
        return 0;
    struct container *c = ctr_find(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    _cleanup_free_ char *json = NULL;
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *file = hull_path_join(sdir, "resources.json");
    pthread_mutex_lock(&c->op_lock);
    pthread_mutex_lock(&c->lock);
    int state = c->state;
    pthread_mutex_unlock(&c->lock);
    int r = 0;
    if (state != CONTAINER_RUNNING && state != CONTAINER_CREATED) {
        r = hull_error_setx(err, EBUSY, "container \"%s\" is not running", c->id);
        goto out;
    }
    if ((r = oci_resources_from_cri(res, &json, err)) < 0 ||
        (r = hull_write_file_atomic(file, json, strlen(json), 0600, err)) < 0)
        goto out;
    const char *args[] = {"update", "--resources", file, c->id, NULL};
    r = runtime_run(c, args, err);
    if (r < 0) {
        hull_error_wrap(err, "update container \"%s\"", c->id);
        goto out;
    }
    size_t len = protobuf_c_message_get_packed_size(&res->base);
    uint8_t *pb = xmalloc0(len + 1);
    protobuf_c_message_pack(&res->base, pb);
    pthread_mutex_lock(&c->lock);
    free(c->resources_pb);
    c->resources_pb = pb;
    c->resources_len = len;
    pthread_mutex_unlock(&c->lock);
    r = ctr_save(srv, c, err);
out:
    pthread_mutex_unlock(&c->op_lock);
    ctr_put(c);
    return r;
}

int container_reopen_log(struct hull_server *srv, const char *id, hull_error_t *err)
{
    struct container *c = ctr_find_running(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    int r = 0;
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    _cleanup_free_ char *path = hull_path_join(mon, HULL_CONMON_CTL_SOCK);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        r = hull_error_setx(err, ENAMETOOLONG, "control socket path too long");
        goto out;
    }
    strcpy(sa.sun_path, path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = hull_error_set(err, errno, "reopen log of container \"%s\": connect monitor", c->id);
        goto out;
    }
    if (send(fd, "reopen", 6, MSG_NOSIGNAL) < 0) {
        r = hull_error_set(err, errno, "reopen log: send");
        goto out;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[512];
    if (poll(&pfd, 1, 10000) <= 0) {
        r = hull_error_setx(err, ETIMEDOUT, "reopen log: the monitor did not answer");
        goto out;
    }
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        r = hull_error_setx(err, EPIPE, "reopen log: the monitor closed the connection");
        goto out;
    }
    buf[n] = '\0';
    if (strncmp(buf, "ok", 2) != 0)
        r = hull_error_setx(err, EIO, "reopen log of container \"%s\": %s", c->id, buf);
out:
    ctr_put(c);
    return r;
}
