/* ExecSync: a one-off hull-conmon in the foreground runs the process with the container's
 * process spec (args replaced), captures its output and reports the exit code. */
#include "server/container/container_internal.h"
#include "server/spec/spec.h"
#include "conmon/conmon.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* ---- exec sync ------------------------------------------------------------------------------ */
int ctr_exec_process_json(const char *bundle, char *const *cmd, size_t n_cmd, bool tty,
                          unsigned rows, unsigned cols, char **out, hull_error_t *err)
{
    _cleanup_free_ char *cfg = hull_path_join(bundle, "config.json");
    _cleanup_free_ char *spec = NULL;
    int r = hull_read_file(cfg, 8 << 20, &spec, NULL, err);
    if (r < 0)
        return r;
    return spec_exec_process(spec, cmd, n_cmd, tty, rows, cols, out, err);
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
    _cleanup_container_ struct container *c = ctr_find_running(srv, id, err);
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
    _cleanup_free_ char *scope = NULL; /* systemd driver: the monitor's scope */
    if ((r = hull_mkdir_p(xdir, 0700, err)) < 0 ||
        (r = ctr_exec_process_json(sdir, cmd, n_cmd, false, 0, 0, &pjson, err)) < 0 ||
        (r = hull_write_file_atomic_flags(pfile, pjson, strlen(pjson), 0600, HULL_ATOMIC_NOSYNC,
                                          err)) < 0)
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
    r = ctr_monitor_start(&ma, &pid, &mpid, &sync_fd, err);
    if (r < 0) {
        hull_error_wrap(err, "exec in container \"%s\"", c->id);
        goto out;
    }
    scope = ctr_exec_monitor_scope(c->cgroups_path, c->id, xid, mpid);
    /* the result follows once the process ended and its output drained */
    int wait_ms = timeout_s > 0 ? (int)(timeout_s * 1000 + 30000) : 24 * 3600 * 1000;
    r = ctr_monitor_read_line(sync_fd, wait_ms, &line, err);
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
    /* the monitor is gone: its scope goes now rather than whenever systemd notices */
    ctr_exec_monitor_scope_stop(hull_steal(scope));
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
    return r;
}
