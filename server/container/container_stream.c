/* The container side of the streaming server (stream.h): streaming exec runs the command under
 * a hull-conmon in exec-attach mode and hands its attach socket to the session; attach joins
 * the container monitor's attach socket. */
#include "server/container/container_internal.h"
#include "stream/stream.h"
#include "conmon/conmon.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

struct exec_session {
    char *dir; /* <state>/containers/<id>/exec-<x>: process.json and the monitor's sockets */
};

static int connect_seqpacket(const char *path, hull_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return hull_error_setx(err, ENAMETOOLONG, "socket path `%s` is too long", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return hull_error_set(err, e, "connect `%s`", path);
    }
    return fd;
}

static int backend_check(void *data, const struct stream_request *req, hull_error_t *err)
{
    struct container *c = ctr_find_running(data, req->id, err);
    if (c == NULL)
        return -hull_error_status(err);
    int r = 0;
    if (req->kind == STREAM_ATTACH && req->tty != (c->config->tty != 0))
        r = hull_error_setx(err, EINVAL, "attach: tty=%s but container \"%s\" has tty=%s",
                            req->tty ? "true" : "false", c->id, c->config->tty ? "true" : "false");
    ctr_put(c);
    return r;
}

static void exec_release(void *data)
{
    struct exec_session *s = data;
    _cleanup_error_ hull_error_t err = NULL;
    hull_rm_rf(s->dir, &err);
    free(s->dir);
    free(s);
}

/* Reads one JSON line from the monitor's sync pipe within timeout_ms. */
static int sync_message(int fd, int timeout_ms, yajl_val *out, hull_error_t *err)
{
    char buf[16384];
    size_t n = 0;
    int64_t deadline = hull_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    while (n < sizeof(buf) - 1) {
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return hull_error_setx(err, ETIMEDOUT, "the exec monitor did not answer");
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return hull_error_setx(err, EPIPE, "the exec monitor exited without reporting");
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return hull_json_parse(buf, "exec monitor message", out, err);
}

static int backend_exec(void *data, const struct stream_request *req,
                        const struct stream_winsize *size, struct stream_process *out,
                        hull_error_t *err)
{
    struct hull_server *srv = data;
    struct container_service *cs = ctr_service(srv);
    _cleanup_container_ struct container *c = ctr_find_running(srv, req->id, err);
    if (c == NULL)
        return -hull_error_status(err);
    size_t n_cmd = 0;
    while (req->cmd && req->cmd[n_cmd])
        n_cmd++;
    char xid[65];
    hull_id_generate(xid);
    xid[16] = '\0';
    struct exec_session *s = xmalloc0(sizeof(*s));
    s->dir = ctr_socket_dir(srv, c->id, xid);
    _cleanup_free_ char *bundle = hull_path_join(cs->state_root, c->id);
    _cleanup_free_ char *pfile = hull_path_join(s->dir, "process.json");
    _cleanup_free_ char *pjson = NULL;
    _cleanup_free_ char *attach = hull_path_join(s->dir, HULL_CONMON_ATTACH_SOCK);
    _cleanup_close_ int rd = -1, wr = -1;
    _cleanup_yajl_ yajl_val ready = NULL, started = NULL;
    _cleanup_margs_ struct monitor_args ma = {0};
    int fd = -1, r;
    if ((r = hull_mkdir_p(s->dir, 0700, err)) < 0 ||
        (r = ctr_exec_process_json(bundle, req->cmd, n_cmd, req->tty, size ? size->height : 0,
                                   size ? size->width : 0, &pjson, err)) < 0 ||
        (r = hull_write_file_atomic_flags(pfile, pjson, strlen(pjson), 0600, HULL_ATOMIC_NOSYNC,
                                          err)) < 0)
        goto fail;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        r = hull_error_set(err, errno, "pipe");
        goto fail;
    }
    rd = p[0];
    wr = p[1];
    margs_monitor(&ma, srv, c, bundle, s->dir, s->dir);
    margs_add(&ma, "--exec");
    margs_add(&ma, "--exec-process");
    margs_add(&ma, pfile);
    margs_add(&ma, "--exec-attach");
    if (req->tty)
        margs_add(&ma, "--terminal");
    if (req->use_stdin) {
        margs_add(&ma, "--stdin");
        margs_add(&ma, "--stdin-once");
    }
    pid_t child;
    if ((r = proc_spawn_with_fd((char *const *)ma.argv, wr, &child, err)) < 0)
        goto fail;
    close(hull_steal_fd(wr));
    r = sync_message(rd, 30000, &ready, err);
    waitpid(child, NULL, 0); /* the first process forks the monitor away and exits */
    if (r < 0)
        goto fail;
    if (!hull_json_get_bool(ready, "ready", false)) {
        r = hull_error_setx(err, EIO, "exec: %s",
                            hull_json_get_string(ready, "error", "the monitor is not ready"));
        goto fail;
    }
    /* systemd driver: the monitor into its own scope before it starts the process (it waits
     * for the attach below); systemd collects the scope when the monitor exits */
    free(ctr_exec_monitor_scope(c->cgroups_path, c->id, xid,
                                (pid_t)hull_json_get_int(ready, "monitor_pid", -1)));
    fd = connect_seqpacket(attach, err);
    if (fd < 0) {
        r = fd;
        goto fail;
    }
    if (size && req->tty) {
        char pkt[32];
        int len = snprintf(pkt + 1, sizeof(pkt) - 1, "%u %u", size->height, size->width);
        pkt[0] = HULL_ATTACH_RESIZE;
        send(fd, pkt, (size_t)len + 1, MSG_NOSIGNAL);
    }
    r = sync_message(rd, 120000, &started, err);
    if (r < 0)
        goto fail;
    if (hull_json_get_int(started, "pid", -1) <= 0) {
        r = hull_error_setx(err, EIO, "exec in container \"%s\": %s", c->id,
                            hull_json_get_string(started, "error", "unknown error"));
        goto fail;
    }
    out->attach_fd = fd;
    out->data = s;
    out->release = exec_release;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    exec_release(s);
    return r;
}

static int backend_attach(void *data, const struct stream_request *req, struct stream_process *out,
                          hull_error_t *err)
{
    struct hull_server *srv = data;
    struct container *c = ctr_find_running(srv, req->id, err);
    if (c == NULL)
        return -hull_error_status(err);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    _cleanup_free_ char *path = hull_path_join(mon, HULL_CONMON_ATTACH_SOCK);
    int fd = connect_seqpacket(path, err);
    ctr_put(c);
    if (fd < 0)
        return fd;
    out->attach_fd = fd;
    return 0;
}

void container_stream_backend(struct hull_server *srv, struct stream_backend *out)
{
    memset(out, 0, sizeof(*out));
    out->data = srv;
    out->check = backend_check;
    out->exec = backend_exec;
    out->attach = backend_attach;
}
