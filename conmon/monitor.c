/* The monitor: detach, run the OCI runtime, report to hulld, then one poll() loop that owns
 * the process's stdio (CRI log, attach clients, ExecSync capture), the control socket, OOM
 * events and the exit.  No threads; signals arrive through a signalfd. */
#include "conmon/conmon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#define ERR_TEXT_MAX 8192

struct pkt {
    struct pkt *next;
    size_t len;
    char data[];
};

struct client {
    int fd;
    bool ctl;   /* control socket connection (else attach) */
    bool first; /* the first attach client (stdin-once) */
    struct pkt *head, *tail;
    size_t queued;
    int64_t progress; /* monotonic ns of the last send that emptied or shrank the queue */
};

struct monitor {
    struct conmon_opts *o;
    int sfd;
    int out_fd, err_fd;        /* read ends; in terminal mode out_fd is the pty master */
    int in_fd;                 /* stdin write end (pipe or pty master dup), -1 when closed */
    int master_fd;             /* pty master for resize, -1 without terminal */
    struct winsize pending_ws; /* size asked for before the pty arrived (ws_row 0: none) */
    struct hull_buf stdin_q;
    size_t stdin_off;
    bool stdin_close_pending;
    bool had_first_client;
    int attach_lfd, ctl_lfd;
    char *attach_path, *ctl_path;
    struct client clients[HULL_CONMON_MAX_CLIENTS];
    size_t nclients;
    struct crilog log;
    struct hull_cgroup_oom_watch oom;
    pid_t pid;
    bool exited, timed_out;
    int status;
    int64_t exited_ns;
    int64_t deadline; /* monotonic ns, 0 = none */
    struct hull_buf cap[2];
    bool truncated;
};

/* ---- setup helpers ----------------------------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int make_pipe(int p[2], hull_error_t *err)
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return hull_error_set(err, errno, "pipe");
    return 0;
}

/* Binds a listening socket at path (in dir, open as dirfd).  sun_path holds 108 bytes: a
 * longer path is bound through /proc/self/fd/DIRFD/NAME, which names the same place. */
static int listen_unix(const char *path, int dirfd, int type, hull_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    if (strlen(path) < sizeof(sa.sun_path))
        strcpy(sa.sun_path, path);
    else if (snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, name) >=
             (int)sizeof(sa.sun_path))
        return hull_error_setx(err, ENAMETOOLONG, "socket name `%s` is too long", name);
    _cleanup_close_ int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "socket");
    if (unlink(path) < 0 && errno != ENOENT)
        return hull_error_set(err, errno, "unlink `%s`", path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return hull_error_set(err, errno, "bind `%s`", path);
    if (chmod(path, 0600) < 0)
        return hull_error_set(err, errno, "chmod `%s`", path);
    if (listen(fd, 16) < 0)
        return hull_error_set(err, errno, "listen `%s`", path);
    return hull_steal_fd(fd);
}

/* The socket dir must be a real directory, ours, and 0700: every socket in it is a way into
 * the container's stdio (SECURITY.md: control sockets reachable from pods). */
static int prepare_socket_dir(const char *dir, hull_error_t *err)
{
    if (hull_mkdir_p(dir, 0700, err) < 0)
        return -1;
    struct stat st;
    if (lstat(dir, &st) < 0)
        return hull_error_set(err, errno, "stat `%s`", dir);
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return hull_error_setx(err, EPERM, "socket dir `%s` is not a directory owned by us", dir);
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
        return hull_error_set(err, errno, "chmod `%s`", dir);
    return 0;
}

static void detach_stdio(const char *monitor_log)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    int errfd = null;
    if (monitor_log) {
        int fd = open(monitor_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0)
            errfd = fd;
    }
    dup2(errfd, STDERR_FILENO);
    if (errfd != null)
        close(errfd);
    close(null);
}

/* Double fork: the process hulld started exits at once; the grandchild is in a new session
 * and can never reacquire a controlling terminal. */
static int daemonize(void)
{
    pid_t p = fork();
    if (p < 0)
        return -errno;
    if (p > 0)
        _exit(0);
    if (setsid() < 0)
        _exit(1);
    p = fork();
    if (p < 0)
        _exit(1);
    if (p > 0)
        _exit(0);
    return 0;
}

static void sync_send(struct conmon_opts *o, const char *data, size_t len)
{
    if (o->sync_fd < 0)
        return;
    if (conmon_write_all(o->sync_fd, data, len) < 0)
        log_warn("sync pipe: %s", strerror(errno));
}

static void sync_close(struct conmon_opts *o)
{
    if (o->sync_fd >= 0)
        close(o->sync_fd);
    o->sync_fd = -1;
}

/* ---- the runtime --------------------------------------------------------------------------- */

/* Ignored signals back to default: SIG_IGN survives exec, so what hulld ignored would reach
 * the container (handlers are reset by exec anyway). */
static void reset_signals(void)
{
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            signal(s, SIG_DFL);
    }
}

struct runtime_io {
    int stdin_fd, stdout_fd, stderr_fd; /* for the runtime (child side) */
};

static pid_t spawn_runtime(struct conmon_opts *o, const char *pidfile, const char *console,
                           const struct runtime_io *io, hull_error_t *err)
{
    const char *argv[32 + o->n_runtime_args];
    size_t n = 0;
    argv[n++] = o->runtime;
    if (o->runtime_root) {
        argv[n++] = "--root";
        argv[n++] = o->runtime_root;
    }
    for (size_t i = 0; i < o->n_runtime_args; i++)
        argv[n++] = o->runtime_args[i];
    if (o->exec) {
        argv[n++] = "exec";
        argv[n++] = "--process";
        argv[n++] = o->exec_process;
        argv[n++] = "--detach";
    } else if (o->restore) {
        const char *const r[] = {"restore",      "--image-path",
                                 o->restore,     "--work-path",
                                 o->restore,     "--bundle",
                                 o->bundle,      "--detach",
                                 "--file-locks", "--manage-cgroups-mode",
                                 "ignore",       NULL};
        for (size_t i = 0; r[i]; i++)
            argv[n++] = r[i];
    } else {
        argv[n++] = "create";
        argv[n++] = "--bundle";
        argv[n++] = o->bundle;
    }
    argv[n++] = "--pid-file";
    argv[n++] = pidfile;
    if (console) {
        argv[n++] = "--console-socket";
        argv[n++] = console;
    }
    argv[n++] = o->cid;
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork");
    if (pid == 0) {
        /* Only the three stdio fds reach the runtime (and through it the container). */
        if (dup2(io->stdin_fd, 0) < 0 || dup2(io->stdout_fd, 1) < 0 || dup2(io->stderr_fd, 2) < 0)
            _exit(127);
        closefrom(3);
        /* a clean signal state: nothing of hulld's (or ours) reaches the container */
        reset_signals();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(o->runtime, (char *const *)argv);
        dprintf(2, "exec %s: %s\n", o->runtime, strerror(errno));
        _exit(127);
    }
    return pid;
}

static int do_resize(struct monitor *m, const char *arg, hull_error_t *err);

/* Before the main loop runs, consumes RESIZE packets at the head of the attach clients'
 * queues (anything else stays queued for the loop, so no stdin is lost). */
static void take_early_resizes(struct monitor *m)
{
    for (size_t i = 0; i < m->nclients; i++) {
        char buf[64];
        for (;;) {
            ssize_t r = recv(m->clients[i].fd, buf, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r != 1 || buf[0] != HULL_ATTACH_RESIZE)
                break;
            r = recv(m->clients[i].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
            if (r <= 0)
                break;
            buf[r] = '\0';
            _cleanup_error_ hull_error_t err = NULL;
            do_resize(m, buf + 1, &err);
        }
    }
}

/* The runtime sent the pty master: apply a size asked for before it came. */
static void got_master(struct monitor *m, int fd)
{
    if (m->master_fd >= 0) {
        close(fd);
        return;
    }
    take_early_resizes(m);
    m->master_fd = fd;
    if (m->pending_ws.ws_row || m->pending_ws.ws_col)
        ioctl(fd, TIOCSWINSZ, &m->pending_ws);
}

static int recv_console_fd(int conn)
{
    char name[256];
    char ctrl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {name, sizeof(name)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof(ctrl)};
    ssize_t r;
    do
        r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
            return fd;
        }
    }
    return -EBADMSG;
}

static void read_avail(int fd, struct hull_buf *b, size_t max)
{
    if (fd < 0)
        return;
    set_nonblock(fd);
    char buf[4096];
    while (b->len < max) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (b->len + take > max)
            take = max - b->len;
        hull_buf_add(b, buf, take);
    }
}

static void status_json(struct monitor *m, struct hull_buf *b)
{
    int code = 0, sig = 0;
    if (WIFEXITED(m->status)) {
        code = WEXITSTATUS(m->status);
    } else if (WIFSIGNALED(m->status)) {
        sig = WTERMSIG(m->status);
        code = 128 + sig;
    }
    char ts[64];
    hull_format_rfc3339nano(m->exited_ns, ts, sizeof(ts));
    hull_buf_addf(b,
                  "{\"" HULL_EXIT_KEY_PID "\":%d,\"" HULL_EXIT_KEY_EXIT_CODE
                  "\":%d,\"" HULL_EXIT_KEY_SIGNAL "\":%d,\"" HULL_EXIT_KEY_OOM_KILLED
                  "\":%s,\"" HULL_EXIT_KEY_TIMED_OUT "\":%s,\"" HULL_EXIT_KEY_EXITED_AT
                  "\":\"%s\",\"" HULL_EXIT_KEY_EXITED_AT_NS "\":%lld",
                  (int)m->pid, code, sig, hull_cgroup_oom_watch_killed(&m->oom) ? "true" : "false",
                  m->timed_out ? "true" : "false", ts, (long long)m->exited_ns);
}

/* ---- clients --------------------------------------------------------------------------------- */

static void client_drop(struct monitor *m, size_t i);

static void close_stdin(struct monitor *m)
{
    if (m->in_fd < 0)
        return;
    if (m->stdin_q.len > m->stdin_off) {
        m->stdin_close_pending = true;
        return;
    }
    if (m->master_fd >= 0) {
        /* A pty cannot be half-closed: send the EOF character as a terminal would. */
        char eof = 4;
        (void)!write(m->in_fd, &eof, 1);
    }
    close(m->in_fd);
    m->in_fd = -1;
    m->stdin_close_pending = false;
}

static void client_enqueue(struct monitor *m, size_t i, int tag, const char *data, size_t len)
{
    struct client *c = &m->clients[i];
    if (c->head == NULL) {
        /* fast path: nothing queued, try to send now */
        char hdr_and[1 + HULL_CONMON_PKT_MAX];
        hdr_and[0] = (char)tag;
        memcpy(hdr_and + 1, data, len);
        ssize_t w = send(c->fd, hdr_and, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            client_drop(m, i);
            return;
        }
    }
    if (c->queued + len + 1 > HULL_CONMON_CLIENT_QUEUE_MAX) {
        log_warn("attach client too slow, dropping it");
        client_drop(m, i);
        return;
    }
    if (c->head == NULL)
        c->progress = hull_monotonic_ns();
    struct pkt *p = xmalloc0(sizeof(*p) + len + 1);
    p->len = len + 1;
    p->data[0] = (char)tag;
    memcpy(p->data + 1, data, len);
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->queued += p->len;
}

/* Returns false if the client was dropped. */
static bool client_flush(struct monitor *m, size_t i)
{
    struct client *c = &m->clients[i];
    while (c->head) {
        struct pkt *p = c->head;
        ssize_t w = send(c->fd, p->data, p->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            client_drop(m, i);
            return false;
        }
        c->head = p->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->queued -= p->len;
        c->progress = hull_monotonic_ns();
        free(p);
    }
    return true;
}

static void client_drop(struct monitor *m, size_t i)
{
    struct client *c = &m->clients[i];
    while (c->head) {
        struct pkt *p = c->head;
        c->head = p->next;
        free(p);
    }
    close(c->fd);
    bool first = c->first;
    m->clients[i] = m->clients[--m->nclients];
    if (first && m->o->stdin_once)
        close_stdin(m);
}

static void broadcast(struct monitor *m, int tag, const char *data, size_t len)
{
    for (size_t i = m->nclients; i-- > 0;)
        if (!m->clients[i].ctl)
            client_enqueue(m, i, tag, data, len);
}

static void stdin_push(struct monitor *m, const char *data, size_t len)
{
    if (m->in_fd < 0 || m->stdin_close_pending || len == 0)
        return;
    if (m->stdin_q.len == m->stdin_off) {
        ssize_t w = write(m->in_fd, data, len);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                close(m->in_fd); /* EPIPE: nobody reads stdin any more */
                m->in_fd = -1;
                return;
            }
            w = 0;
        }
        data += w;
        len -= (size_t)w;
        if (len == 0)
            return;
        m->stdin_q.len = m->stdin_off = 0;
    }
    hull_buf_add(&m->stdin_q, data, len);
}

static void stdin_flush(struct monitor *m)
{
    while (m->in_fd >= 0 && m->stdin_q.len > m->stdin_off) {
        ssize_t w = write(m->in_fd, m->stdin_q.str + m->stdin_off, m->stdin_q.len - m->stdin_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            close(m->in_fd);
            m->in_fd = -1;
            break;
        }
        m->stdin_off += (size_t)w;
    }
    m->stdin_q.len = m->stdin_off = 0;
    if (m->stdin_close_pending) {
        m->stdin_close_pending = false;
        close_stdin(m);
    }
}

static int do_resize(struct monitor *m, const char *arg, hull_error_t *err)
{
    unsigned rows, cols;
    if (sscanf(arg, "%u %u", &rows, &cols) != 2 || rows > 65535 || cols > 65535)
        return hull_error_setx(err, EINVAL, "bad resize `%s`", arg);
    if (m->master_fd < 0) {
        if (!m->o->terminal)
            return hull_error_setx(err, ENOTTY, "no terminal");
        /* the runtime has not sent the pty yet: applied as soon as it does */
        m->pending_ws =
            (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        return 0;
    }
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(m->master_fd, TIOCSWINSZ, &ws) < 0)
        return hull_error_set(err, errno, "TIOCSWINSZ");
    return 0;
}

static size_t count_attached(struct monitor *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nclients; i++)
        n += !m->clients[i].ctl;
    return n;
}

static void handle_ctl(struct monitor *m, size_t i, char *req)
{
    _cleanup_error_ hull_error_t err = NULL;
    int r;
    size_t n = strlen(req);
    while (n > 0 && (req[n - 1] == '\n' || req[n - 1] == '\r'))
        req[--n] = '\0';
    if (strncmp(req, "resize ", 7) == 0) {
        r = do_resize(m, req + 7, &err);
    } else if (strcmp(req, "reopen") == 0) {
        r = crilog_reopen(&m->log, &err);
    } else if (strcmp(req, "status") == 0) {
        char reply[160];
        int rn = snprintf(
            reply, sizeof(reply), "ok {\"pid\":%d,\"monitor_pid\":%d,\"attached\":%zu,\"log\":%s}",
            (int)m->pid, (int)getpid(), count_attached(m), m->log.fd >= 0 ? "true" : "false");
        if (send(m->clients[i].fd, reply, (size_t)rn, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            client_drop(m, i);
        return;
    } else {
        r = hull_error_setx(&err, EINVAL, "unknown request `%.64s`", req);
    }
    struct hull_buf reply = {0};
    if (r < 0)
        hull_buf_addf(&reply, "error %s", hull_error_msg(&err));
    else
        hull_buf_add(&reply, "ok", 2);
    if (send(m->clients[i].fd, reply.str, reply.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        client_drop(m, i);
    hull_buf_free(&reply);
}

/* Returns false if the client was dropped. */
static bool client_read(struct monitor *m, size_t i)
{
    char buf[1 + HULL_CONMON_PKT_MAX + 1];
    ssize_t r = recv(m->clients[i].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (r <= 0) {
        client_drop(m, i);
        return false;
    }
    if (m->clients[i].ctl) {
        buf[r] = '\0';
        handle_ctl(m, i, buf);
        return true;
    }
    switch (buf[0]) {
    case HULL_ATTACH_STDIN:
        if (m->o->stdin_)
            stdin_push(m, buf + 1, (size_t)r - 1);
        break;
    case HULL_ATTACH_STDIN_EOF:
        if (m->o->stdin_once)
            close_stdin(m);
        break;
    case HULL_ATTACH_RESIZE: {
        buf[r] = '\0';
        _cleanup_error_ hull_error_t err = NULL;
        if (do_resize(m, buf + 1, &err) < 0)
            log_debug("attach resize: %s", hull_error_msg(&err));
        break;
    }
    default:
        break;
    }
    return true;
}

static void accept_client(struct monitor *m, int lfd, bool ctl)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (m->nclients >= HULL_CONMON_MAX_CLIENTS || (m->exited && !ctl)) {
        close(fd);
        return;
    }
    struct client *c = &m->clients[m->nclients++];
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->ctl = ctl;
    if (!ctl && !m->had_first_client) {
        c->first = true;
        m->had_first_client = true;
    }
}

/* ---- output ------------------------------------------------------------------------------ */

/* Reads one chunk from an output stream, or with drain everything already there (bounded:
 * a process that outlived the one we waited for may keep writing); false at EOF/error. */
static bool pump_output(struct monitor *m, int stream, bool drain)
{
    int *fdp = stream == 0 ? &m->out_fd : &m->err_fd;
    char buf[HULL_CONMON_PKT_MAX];
    size_t budget = drain ? (size_t)8 << 20 : 0, got = 0;
    do {
        ssize_t r = read(*fdp, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return true;
        if (r <= 0) { /* EOF, or EIO from a pty whose other side is gone */
            close(*fdp);
            *fdp = -1;
            if (m->master_fd >= 0 && stream == 0) {
                m->master_fd = -1; /* out_fd was the master */
                if (m->in_fd >= 0) {
                    close(m->in_fd);
                    m->in_fd = -1;
                }
            }
            return false;
        }
        int64_t now = hull_now_ns();
        if (m->o->exec_capture) {
            struct hull_buf *c = &m->cap[stream];
            size_t take = (size_t)r;
            if (c->len + take > m->o->capture_max) {
                take = m->o->capture_max - c->len;
                m->truncated = true;
            }
            hull_buf_add(c, buf, take);
        }
        crilog_write(&m->log, stream, buf, (size_t)r, now);
        broadcast(m, stream == 0 ? HULL_ATTACH_STDOUT : HULL_ATTACH_STDERR, buf, (size_t)r);
        got += (size_t)r;
    } while (got < budget);
    return true;
}

static void reap(struct monitor *m)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0)
            return;
        if (p == m->pid && !m->exited) {
            m->exited = true;
            m->status = st;
            m->exited_ns = hull_now_ns();
            log_debug("process %d exited with status 0x%x", (int)p, st);
        }
    }
}

static void handle_signals(struct monitor *m)
{
    struct signalfd_siginfo si;
    while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            reap(m);
            break;
        case SIGTERM:
        case SIGINT:
            if (!m->exited)
                kill(m->pid, (int)si.ssi_signo);
            break;
        case SIGUSR1: {
            _cleanup_error_ hull_error_t err = NULL;
            if (crilog_reopen(&m->log, &err) < 0)
                log_warn("%s", hull_error_msg(&err));
            break;
        }
        default:
            break;
        }
    }
}

/* ---- the loop ------------------------------------------------------------------------------ */

enum { PFD_SIG, PFD_OUT, PFD_ERR, PFD_IN, PFD_ATTACH, PFD_CTL, PFD_OOM, PFD_CLIENTS };

/* Attach flow control: a backed-up client pauses the output; a stalled one is dropped.
 * True when the output is paused. */
static bool flow_control(struct monitor *m)
{
    bool paused = false;
    int64_t now = hull_monotonic_ns();
    for (size_t i = m->nclients; i-- > 0;) {
        struct client *c = &m->clients[i];
        if (c->ctl || c->queued <= HULL_CONMON_CLIENT_QUEUE_HIGH)
            continue;
        if (now - c->progress > HULL_CONMON_CLIENT_STALL_S * 1000000000LL) {
            log_warn("attach client stalled for %ds, dropping it", HULL_CONMON_CLIENT_STALL_S);
            client_drop(m, i);
            continue;
        }
        paused = true;
    }
    return paused;
}

/* The poll set: signals, output (unless paused), stdin, listeners, OOM, then the clients.
 * Returns how many fds to poll. */
static nfds_t fill_pollfds(struct monitor *m, struct pollfd *pfd, bool paused)
{
    pfd[PFD_SIG] = (struct pollfd){m->sfd, POLLIN, 0};
    pfd[PFD_OUT] = (struct pollfd){paused ? -1 : m->out_fd, POLLIN, 0};
    pfd[PFD_ERR] = (struct pollfd){paused ? -1 : m->err_fd, POLLIN, 0};
    pfd[PFD_IN] = (struct pollfd){m->stdin_q.len > m->stdin_off ? m->in_fd : -1, POLLOUT, 0};
    pfd[PFD_ATTACH] = (struct pollfd){m->attach_lfd, POLLIN, 0};
    pfd[PFD_CTL] = (struct pollfd){m->ctl_lfd, POLLIN, 0};
    pfd[PFD_OOM] = (struct pollfd){m->oom.fd, POLLIN, 0};
    /* stdin backpressure: stop reading attach input while 1 MiB waits for the process */
    bool stdin_full = m->stdin_q.len - m->stdin_off > (1u << 20);
    for (size_t i = 0; i < m->nclients; i++) {
        struct client *c = &m->clients[i];
        short ev = (c->ctl || !stdin_full) ? POLLIN : 0;
        if (c->head)
            ev |= POLLOUT;
        pfd[PFD_CLIENTS + i] = (struct pollfd){c->fd, ev, 0};
    }
    return PFD_CLIENTS + m->nclients;
}

/* The poll timeout in ms (-1: none): a paused output, stale partial log lines and the
 * exec deadline bound it.  False once the deadline passed: the process was killed. */
static bool poll_timeout(struct monitor *m, bool paused, int *timeout)
{
    *timeout = paused ? 1000 : -1;
    int64_t stale = crilog_flush_stale(&m->log, HULL_CONMON_PARTIAL_FLUSH_MS * 1000000LL);
    if (stale) {
        int64_t left = stale - hull_monotonic_ns();
        int st = left > 0 ? (int)(left / 1000000) + 1 : 0;
        *timeout = *timeout < 0 || st < *timeout ? st : *timeout;
    }
    if (m->deadline) {
        int64_t left = m->deadline - hull_monotonic_ns();
        if (left <= 0) {
            log_info("timeout: killing %d", (int)m->pid);
            kill(m->pid, SIGKILL);
            m->timed_out = true;
            m->deadline = 0;
            return false;
        }
        int dl = (int)(left / 1000000) + 1;
        *timeout = *timeout < 0 || dl < *timeout ? dl : *timeout;
    }
    return true;
}

/* Act on what poll reported for the nc clients polled and the other fds. */
static void dispatch_events(struct monitor *m, const struct pollfd *pfd, size_t nc)
{
    if (pfd[PFD_OUT].revents)
        pump_output(m, 0, false);
    if (pfd[PFD_ERR].revents)
        pump_output(m, 1, false);
    if (pfd[PFD_IN].revents)
        stdin_flush(m);
    if (pfd[PFD_OOM].revents)
        hull_cgroup_oom_watch_event(&m->oom);
    /* clients: walk from the end so drops (swap with last) do not skip anyone */
    for (size_t i = nc; i-- > 0;) {
        short re = pfd[PFD_CLIENTS + i].revents;
        if (re == 0 || i >= m->nclients || m->clients[i].fd != pfd[PFD_CLIENTS + i].fd)
            continue;
        if ((re & POLLOUT) && !client_flush(m, i))
            continue;
        if (re & (POLLIN | POLLHUP | POLLERR))
            client_read(m, i);
    }
    if (pfd[PFD_ATTACH].revents)
        accept_client(m, m->attach_lfd, false);
    if (pfd[PFD_CTL].revents)
        accept_client(m, m->ctl_lfd, true);
    if (pfd[PFD_SIG].revents)
        handle_signals(m);
}

/* The process is gone: what it wrote is in the pipes (or the pty).  Read to EOF, which
 * comes at once unless something else still holds the write side (a process that
 * outlived it without a PID namespace): give that at most 200 ms. */
static void drain_output(struct monitor *m)
{
    int64_t end = hull_monotonic_ns() + 200000000LL;
    for (;;) {
        if (m->out_fd >= 0)
            pump_output(m, 0, true);
        if (m->err_fd >= 0)
            pump_output(m, 1, true);
        int64_t left = end - hull_monotonic_ns();
        if ((m->out_fd < 0 && m->err_fd < 0) || left <= 0)
            break;
        struct pollfd p[2] = {{m->out_fd, POLLIN, 0}, {m->err_fd, POLLIN, 0}};
        if (poll(p, 2, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
            break;
    }
}

static void monitor_loop(struct monitor *m)
{
    struct pollfd pfd[PFD_CLIENTS + HULL_CONMON_MAX_CLIENTS];
    reap(m); /* the process may have exited before we knew its pid */
    while (!m->exited) {
        bool paused = flow_control(m);
        nfds_t nfds = fill_pollfds(m, pfd, paused);
        int timeout;
        if (!poll_timeout(m, paused, &timeout))
            continue;
        int n = poll(pfd, nfds, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            break;
        }
        dispatch_events(m, pfd, nfds - PFD_CLIENTS);
    }
    drain_output(m);
}

/* Gives attach clients up to five seconds to take the rest of their output. */
static void drain_clients(struct monitor *m)
{
    int64_t end = hull_monotonic_ns() + 5000000000LL;
    for (;;) {
        struct pollfd pfd[HULL_CONMON_MAX_CLIENTS];
        size_t n = 0;
        for (size_t i = m->nclients; i-- > 0;)
            if (m->clients[i].head && client_flush(m, i) && m->clients[i].head)
                n++;
        if (n == 0)
            break;
        int64_t left = end - hull_monotonic_ns();
        if (left <= 0)
            break;
        n = 0;
        for (size_t i = 0; i < m->nclients; i++)
            pfd[n++] = (struct pollfd){m->clients[i].fd, m->clients[i].head ? POLLOUT : 0, 0};
        if (poll(pfd, n, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
            break;
    }
    /* Closing a unix socket with unread input resets the connection, and the peer may then
     * lose the packets it has not read yet (the exit packet).  So: EOF to every client,
     * swallow what they still send, and give them half a second to hang up first. */
    for (size_t i = 0; i < m->nclients; i++)
        shutdown(m->clients[i].fd, SHUT_WR);
    end = hull_monotonic_ns() + 500000000LL;
    while (m->nclients > 0) {
        char buf[1 + HULL_CONMON_PKT_MAX];
        struct pollfd pfd[HULL_CONMON_MAX_CLIENTS];
        for (size_t i = m->nclients; i-- > 0;) {
            ssize_t r;
            while ((r = recv(m->clients[i].fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                ;
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                client_drop(m, i); /* the client hung up */
        }
        int64_t left = end - hull_monotonic_ns();
        if (m->nclients == 0 || left <= 0)
            break;
        for (size_t i = 0; i < m->nclients; i++)
            pfd[i] = (struct pollfd){m->clients[i].fd, POLLIN, 0};
        if (poll(pfd, m->nclients, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
            break;
    }
    while (m->nclients > 0)
        client_drop(m, m->nclients - 1);
}

static void finish(struct monitor *m)
{
    crilog_flush(&m->log, hull_now_ns());
    crilog_close(&m->log);
    if (m->oom.fd >= 0)
        hull_cgroup_oom_watch_event(&m->oom);
    bool deleted = conmon_runtime_delete(m->o);
    struct hull_buf js = {0};
    status_json(m, &js);
    if (deleted)
        hull_buf_addf(&js, ",\"runtime_deleted\":true");
    hull_buf_add(&js, "}", 1);
    _cleanup_free_ char *exit_path = hull_path_join(m->o->exit_dir, m->o->cid);
    _cleanup_error_ hull_error_t err = NULL;
    /* the exits directory is volatile state (/run): a hulld restart reads it, a power loss
     * ends the container and its monitor alike, so no fsync */
    if (hull_write_file_atomic_flags(exit_path, js.str, js.len, 0600, HULL_ATOMIC_NOSYNC, &err) < 0)
        log_error("exit file: %s", hull_error_msg(&err));
    if (m->o->exec_capture) {
        struct hull_buf msg = {0};
        status_json(m, &msg);
        hull_buf_addf(&msg, ",\"stdout_len\":%zu,\"stderr_len\":%zu,\"truncated\":%s}\n",
                      m->cap[0].len, m->cap[1].len, m->truncated ? "true" : "false");
        sync_send(m->o, msg.str, msg.len);
        sync_send(m->o, m->cap[0].str, m->cap[0].len);
        sync_send(m->o, m->cap[1].str, m->cap[1].len);
        sync_close(m->o);
        hull_buf_free(&msg);
    }
    /* attach clients get the exit status as the last packet */
    for (size_t i = m->nclients; i-- > 0;) {
        if (m->clients[i].ctl)
            client_drop(m, i);
        else
            client_enqueue(m, i, HULL_ATTACH_EXIT, js.str, js.len);
    }
    hull_buf_free(&js);
    drain_clients(m);
}

/* ---- entry ---------------------------------------------------------------------------------- */

/* --exec-attach: say the sockets are ready, then hold the exec until a client attached. */
static int wait_first_attach(struct monitor *m, hull_error_t *err)
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "{\"ready\":true,\"monitor_pid\":%d}\n", (int)getpid());
    sync_send(m->o, msg, (size_t)n);
    int64_t end = hull_monotonic_ns() + m->o->attach_wait_s * 1000000000LL;
    while (!m->had_first_client) {
        int64_t left = end - hull_monotonic_ns();
        if (left <= 0)
            return hull_error_setx(err, ETIMEDOUT, "no attach client within %llds",
                                   (long long)m->o->attach_wait_s);
        struct pollfd pfd[2] = {{m->attach_lfd, POLLIN, 0}, {m->sfd, POLLIN, 0}};
        if (poll(pfd, 2, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
            return hull_error_set(err, errno, "poll");
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                    return hull_error_setx(err, EINTR, "terminated while waiting for attach");
        }
        if (pfd[0].revents)
            accept_client(m, m->attach_lfd, false);
    }
    return 0;
}

static void runtime_failed(struct conmon_opts *o, struct hull_buf *text, const char *fallback,
                           bool timed_out)
{
    struct hull_buf msg = {0};
    hull_buf_addf(&msg, "{\"pid\":-1,\"monitor_pid\":%d,%s\"error\":", (int)getpid(),
                  timed_out ? "\"timed_out\":true," : "");
    /* trim trailing whitespace */
    while (text->len > 0 && (text->str[text->len - 1] == '\n' || text->str[text->len - 1] == ' '))
        text->len--;
    if (text->len == 0)
        conmon_buf_add_json_string(&msg, fallback, strlen(fallback));
    else
        conmon_buf_add_json_string(&msg, text->str, text->len);
    hull_buf_add(&msg, "}\n", 2);
    log_error("runtime failed: %s", msg.str);
    sync_send(o, msg.str, msg.len);
    hull_buf_free(&msg);
}

/* Everything conmon_run holds until it returns. */
struct run {
    struct conmon_opts *o;
    struct monitor m;
    struct hull_buf errtext; /* what the runtime wrote to stderr */
    int rt_in[2], rt_out[2], rt_err[2];
    int console_lfd, console_conn;
    char *console_path, *console_arg, *pidfile;
    int sock_dirfd;
    pid_t rt;
    int rt_status;
    bool rt_timed_out;
};

/* Cut loose from hulld: its fds, its session (unless --foreground), its cwd.  0, or the
 * exit code. */
static int leave_hulld(struct conmon_opts *o)
{
    if (o->sync_fd >= 0 && fcntl(o->sync_fd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "hull-conmon: --sync-fd %d: %s\n", o->sync_fd, strerror(errno));
        return 2;
    }
    /* nothing hulld leaked to us may live as long as the container */
    if (o->sync_fd > 3)
        close_range(3, (unsigned)o->sync_fd - 1, 0);
    closefrom(o->sync_fd >= 3 ? o->sync_fd + 1 : 3);
    if (!o->foreground) {
        if (daemonize() < 0) {
            fprintf(stderr, "hull-conmon: fork: %s\n", strerror(errno));
            return 1;
        }
        detach_stdio(o->monitor_log);
    } else if (o->monitor_log) {
        int fd = open(o->monitor_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    /* stop following hulld's cwd (it may be unmounted later) */
    if (chdir("/") < 0)
        log_warn("chdir /: %s", strerror(errno));
    return 0;
}

/* Exactly our signals blocked, delivered through a signalfd. */
static int setup_signals(struct run *r, hull_error_t *err)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_SETMASK, &mask, NULL); /* exactly ours, whatever hulld had blocked */
    reset_signals();                       /* an inherited SIG_IGN for SIGCHLD breaks waitpid */
    signal(SIGPIPE, SIG_IGN);
    r->m.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (r->m.sfd < 0)
        return hull_error_set(err, errno, "signalfd");
    return 0;
}

/* Our pid file, the socket and exit dirs, the attach and control sockets, the log. */
static int create_files(struct run *r, hull_error_t *err)
{
    struct conmon_opts *o = r->o;
    if (o->conmon_pidfile) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
        if (hull_write_file_atomic(o->conmon_pidfile, buf, (size_t)n, 0644, err) < 0)
            return -1;
    }
    if (prepare_socket_dir(o->socket_dir, err) < 0 || hull_mkdir_p(o->exit_dir, 0700, err) < 0)
        return -1;
    if (o->delete_on_exit && !o->exec)
        conmon_runtime_pin(o);
    r->m.attach_path = hull_path_join(o->socket_dir, HULL_CONMON_ATTACH_SOCK);
    r->m.ctl_path = hull_path_join(o->socket_dir, HULL_CONMON_CTL_SOCK);
    r->pidfile = o->container_pidfile ? xstrdup(o->container_pidfile)
                                      : hull_path_join(o->socket_dir, HULL_CONMON_PIDFILE);
    unlink(r->pidfile);
    r->sock_dirfd = open(o->socket_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->sock_dirfd < 0)
        return hull_error_set(err, errno, "open `%s`", o->socket_dir);
    if ((r->m.attach_lfd = listen_unix(r->m.attach_path, r->sock_dirfd, SOCK_SEQPACKET, err)) < 0 ||
        (r->m.ctl_lfd = listen_unix(r->m.ctl_path, r->sock_dirfd, SOCK_SEQPACKET, err)) < 0)
        return -1;
    if (crilog_open(&r->m.log, o->log_path, o->log_max_size, err) < 0)
        return -1;
    return 0;
}

/* stdio for the runtime (and, without a terminal, the process) */
static int open_runtime_stdio(struct run *r, struct runtime_io *io, hull_error_t *err)
{
    struct conmon_opts *o = r->o;
    if (o->terminal) {
        r->console_path = hull_path_join(o->socket_dir, HULL_CONMON_CONSOLE);
        if ((r->console_lfd = listen_unix(r->console_path, r->sock_dirfd, SOCK_STREAM, err)) < 0)
            return -1;
        if (strlen(r->console_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            /* the runtime connects from another process: name our fd by our pid */
            r->console_arg =
                xasprintf("/proc/%d/fd/%d/%s", (int)getpid(), r->sock_dirfd, HULL_CONMON_CONSOLE);
        }
        if (make_pipe(r->rt_err, err) < 0)
            return -1;
        r->rt_in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        *io = (struct runtime_io){r->rt_in[0], r->rt_err[1], r->rt_err[1]};
    } else {
        if (make_pipe(r->rt_out, err) < 0 || make_pipe(r->rt_err, err) < 0)
            return -1;
        if (o->stdin_) {
            if (make_pipe(r->rt_in, err) < 0)
                return -1;
        } else {
            r->rt_in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        *io = (struct runtime_io){r->rt_in[0], r->rt_out[1], r->rt_err[1]};
    }
    if (io->stdin_fd < 0)
        return hull_error_set(err, errno, "open /dev/null");
    return 0;
}

/* Start the runtime and keep only our ends of its stdio. */
static int start_runtime(struct run *r, struct runtime_io *io, hull_error_t *err)
{
    r->rt =
        spawn_runtime(r->o, r->pidfile, r->console_arg ? r->console_arg : r->console_path, io, err);
    if (r->rt < 0)
        return -1;
    close(r->rt_in[0]);
    r->rt_in[0] = -1;
    close(r->rt_out[1]);
    r->rt_out[1] = -1;
    close(r->rt_err[1]);
    r->rt_err[1] = -1;
    return 0;
}

/* A connection on the console socket brought the pty master (or nothing). */
static void take_console_conn(struct run *r)
{
    int fd = recv_console_fd(r->console_conn);
    if (fd >= 0)
        got_master(&r->m, fd);
    close(r->console_conn);
    r->console_conn = -1;
}

/* Wait for the runtime, taking the pty master if one is sent and collecting its stderr. */
static int wait_runtime(struct run *r, hull_error_t *err)
{
    bool rt_err_open = r->o->terminal;
    for (;;) {
        int st;
        pid_t p = waitpid(r->rt, &st, WNOHANG);
        if (p == r->rt) {
            r->rt_status = st;
            return 0;
        }
        struct pollfd pfd[4] = {
            {r->m.sfd, POLLIN, 0},
            {r->console_lfd, POLLIN, 0},
            {r->console_conn, POLLIN, 0},
            {rt_err_open ? r->rt_err[0] : -1, POLLIN, 0},
        };
        int timeout = -1;
        if (r->m.deadline && !r->rt_timed_out) {
            int64_t left = r->m.deadline - hull_monotonic_ns();
            if (left <= 0) {
                /* the exec's deadline also bounds a runtime that hangs (a frozen container) */
                kill(r->rt, SIGKILL);
                r->rt_timed_out = true;
                continue;
            }
            timeout = (int)(left / 1000000) + 1;
        }
        if (poll(pfd, 4, timeout) < 0 && errno != EINTR)
            return hull_error_set(err, errno, "poll");
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            while (read(r->m.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                    kill(r->rt, SIGKILL);
        }
        if (pfd[1].revents && r->console_conn < 0)
            r->console_conn = accept4(r->console_lfd, NULL, NULL, SOCK_CLOEXEC);
        if (pfd[2].revents)
            take_console_conn(r);
        if (pfd[3].revents) {
            size_t before = r->errtext.len;
            read_avail(r->rt_err[0], &r->errtext, ERR_TEXT_MAX);
            /* hung up (or full): stop polling it, it would only spin */
            rt_err_open = r->errtext.len > before && r->errtext.len < ERR_TEXT_MAX;
        }
    }
}

static bool runtime_succeeded(const struct run *r)
{
    return WIFEXITED(r->rt_status) && WEXITSTATUS(r->rt_status) == 0;
}

/* The runtime exited first: the pty may be queued, or still on its way from a process the
 * runtime left behind (the one that made it, inside the container).  Wait a little for it. */
static void wait_late_pty(struct run *r)
{
    if (!r->o->terminal || r->m.master_fd >= 0 || r->console_lfd < 0 || !runtime_succeeded(r))
        return;
    int64_t end = hull_monotonic_ns() + 5000000000LL;
    while (r->m.master_fd < 0) {
        int64_t left = end - hull_monotonic_ns();
        if (left <= 0)
            break;
        struct pollfd pfd[2] = {{r->console_lfd, POLLIN, 0}, {r->console_conn, POLLIN, 0}};
        if (poll(pfd, 2, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents && r->console_conn < 0)
            r->console_conn = accept4(r->console_lfd, NULL, NULL, SOCK_CLOEXEC);
        if (pfd[1].revents)
            take_console_conn(r);
    }
}

static void close_console_listener(struct run *r)
{
    if (r->console_lfd >= 0) {
        close(r->console_lfd);
        r->console_lfd = -1;
        unlink(r->console_path);
    }
}

/* Tell hulld why the runtime failed: what it said, or its status, or the timeout. */
static void report_runtime_failure(struct run *r)
{
    struct conmon_opts *o = r->o;
    read_avail(r->rt_err[0], &r->errtext, ERR_TEXT_MAX);
    read_avail(r->rt_out[0], &r->errtext, ERR_TEXT_MAX);
    char fb[128];
    if (r->rt_timed_out)
        r->errtext.len = 0; /* whatever it said, the timeout is the story */
    if (r->rt_timed_out)
        snprintf(fb, sizeof(fb), "runtime exec did not finish within the %llds timeout",
                 (long long)o->timeout_s);
    else
        snprintf(fb, sizeof(fb), "%s failed with status 0x%x",
                 o->exec      ? "runtime exec"
                 : o->restore ? "runtime restore"
                              : "runtime create",
                 r->rt_status);
    runtime_failed(o, &r->errtext, fb, r->rt_timed_out);
}

/* The container process's pid, from the runtime's pid file. */
static int read_container_pid(struct run *r, hull_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    if (hull_read_file(r->pidfile, 64, &text, NULL, err) < 0)
        return -1;
    r->m.pid = (pid_t)strtol(text, NULL, 10);
    if (r->m.pid <= 0)
        return hull_error_setx(err, EINVAL, "bad pid file `%s`", r->pidfile);
    return 0;
}

/* The process's stdio for the monitor: the pty master, or our ends of the pipes. */
static int take_process_stdio(struct run *r, hull_error_t *err)
{
    struct monitor *m = &r->m;
    if (r->o->terminal) {
        if (m->master_fd < 0)
            return hull_error_setx(err, EIO, "terminal requested but the runtime sent no pty");
        set_nonblock(m->master_fd);
        m->out_fd = m->master_fd;
        if (r->o->stdin_) {
            m->in_fd = fcntl(m->master_fd, F_DUPFD_CLOEXEC, 3);
            set_nonblock(m->in_fd);
        }
        /* a terminal process has no stderr of its own; whatever the runtime said is gone */
    } else {
        m->out_fd = hull_steal_fd(r->rt_out[0]);
        m->err_fd = hull_steal_fd(r->rt_err[0]);
        m->in_fd = r->rt_in[1];
        r->rt_in[1] = -1;
        set_nonblock(m->out_fd);
        set_nonblock(m->err_fd);
        if (m->in_fd >= 0)
            set_nonblock(m->in_fd);
    }
    return 0;
}

/* Tell hulld the process's pid; the sync fd stays open only for an exec's captured output. */
static void announce_pid(struct run *r)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "{\"pid\":%d,\"monitor_pid\":%d}\n", (int)r->m.pid,
                     (int)getpid());
    sync_send(r->o, msg, (size_t)n);
    if (!r->o->exec_capture)
        sync_close(r->o);
}

/* Close, unlink and free everything the run holds. */
static void release_run(struct run *r)
{
    struct monitor *m = &r->m;
    sync_close(r->o);
    for (size_t i = m->nclients; i-- > 0;)
        client_drop(m, i);
    int fds[] = {m->sfd,       m->out_fd,    m->err_fd,      m->in_fd,       m->attach_lfd,
                 m->ctl_lfd,   r->rt_in[0],  r->rt_in[1],    r->rt_out[0],   r->rt_out[1],
                 r->rt_err[0], r->rt_err[1], r->console_lfd, r->console_conn};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (m->master_fd >= 0 && m->master_fd != m->out_fd)
        close(m->master_fd);
    if (m->attach_path)
        unlink(m->attach_path);
    if (m->ctl_path)
        unlink(m->ctl_path);
    if (r->console_path)
        unlink(r->console_path);
    free(m->attach_path);
    free(m->ctl_path);
    crilog_close(&m->log);
    hull_cgroup_oom_watch_free(&m->oom);
    hull_buf_free(&m->stdin_q);
    hull_buf_free(&m->cap[0]);
    hull_buf_free(&m->cap[1]);
    hull_buf_free(&r->errtext);
    if (r->sock_dirfd >= 0)
        close(r->sock_dirfd);
    free(r->pidfile);
    free(r->console_arg);
    free(r->console_path);
}

int conmon_run(struct conmon_opts *o)
{
    _cleanup_error_ hull_error_t err = NULL;
    int rc = leave_hulld(o);
    if (rc != 0)
        return rc;
    struct run r = {
        .o = o,
        .m = {.o = o,
              .sfd = -1,
              .out_fd = -1,
              .err_fd = -1,
              .in_fd = -1,
              .master_fd = -1,
              .attach_lfd = -1,
              .ctl_lfd = -1,
              .oom = {.fd = -1, .ctl_fd = -1}},
        .rt_in = {-1, -1},
        .rt_out = {-1, -1},
        .rt_err = {-1, -1},
        .console_lfd = -1,
        .console_conn = -1,
        .sock_dirfd = -1,
    };
    rc = 1;
    struct runtime_io io;
    if (setup_signals(&r, &err) < 0 || create_files(&r, &err) < 0 ||
        open_runtime_stdio(&r, &io, &err) < 0)
        goto fail;
    if (o->exec_attach && wait_first_attach(&r.m, &err) < 0)
        goto fail;
    if (o->exec && o->timeout_s > 0)
        r.m.deadline = hull_monotonic_ns() + o->timeout_s * 1000000000LL;
    if (start_runtime(&r, &io, &err) < 0 || wait_runtime(&r, &err) < 0)
        goto fail;
    wait_late_pty(&r);
    close_console_listener(&r);
    if (!runtime_succeeded(&r)) {
        report_runtime_failure(&r);
        goto out;
    }
    if (read_container_pid(&r, &err) < 0 || take_process_stdio(&r, &err) < 0)
        goto fail;
    announce_pid(&r);
    hull_cgroup_oom_watch_init(&r.m.oom, r.m.pid);
    monitor_loop(&r.m);
    finish(&r.m);
    rc = 0;
    goto out;

fail:
    log_error("%s", hull_error_msg(&err));
    {
        struct hull_buf t = {0};
        runtime_failed(o, &t, hull_error_msg(&err), false);
        hull_buf_free(&t);
    }
out:
    release_run(&r);
    return rc;
}
