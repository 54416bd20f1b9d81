/* Streaming server tests: codecs (SPDY frames and header compression, WebSocket frames, base64,
 * resize events, Status JSON), request validation, tokens and HTTP answers, and whole sessions
 * against an in-process server whose backend runs real processes (fork/exec with pipes or a
 * pty), a fake hull-conmon attach socket and real network namespaces for port-forward.
 *
 * `test_stream --serve` runs the same server for tests/integration/test_stream_protocol.py:
 * it prints "PORT n", then reads one JSON request per line and prints the URL (or
 * "ERROR <errno> <message>"); "stats" prints "fds N threads N sessions N"; EOF stops. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/unit/hull_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <zlib.h>

#include "stream/internal.h"
#include "conmon/conmon.h"

/* ---- the test backend ------------------------------------------------------------------------ */

struct test_proc {
    pid_t pid;
    int master; /* pty master (not owned: the session closes it) */
    bool reaped;
    int status;
};

static int tp_resize(void *data, const struct stream_winsize *size)
{
    struct test_proc *p = data;
    struct winsize ws = {.ws_row = size->height, .ws_col = size->width};
    return ioctl(p->master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

static int tp_wait(void *data, int *exit_code)
{
    struct test_proc *p = data;
    int st = 0;
    if (waitpid(p->pid, &st, 0) < 0)
        return -errno;
    p->reaped = true;
    *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static void tp_release(void *data)
{
    struct test_proc *p = data;
    if (p->pid > 0 && !p->reaped) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    free(p);
}

static int test_exec(void *data, const struct stream_request *req,
                     const struct stream_winsize *size, struct stream_process *out,
                     hull_error_t *err)
{
    if (strcmp(req->id, "missing") == 0)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
    int master = -1, slave = -1;
    if (req->tty) {
        struct winsize ws = {.ws_row = size ? size->height : 24, .ws_col = size ? size->width : 80};
        if (openpty(&master, &slave, NULL, NULL, &ws) < 0)
            return hull_error_set(err, errno, "openpty");
        fcntl(master, F_SETFD, FD_CLOEXEC);
    } else {
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
            return hull_error_set(err, errno, "pipe");
    }
    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork");
    if (pid == 0) {
        if (req->tty) {
            setsid();
            ioctl(slave, TIOCSCTTY, 0);
            dup2(slave, 0);
            dup2(slave, 1);
            dup2(slave, 2);
        } else {
            dup2(in[0], 0);
            dup2(o[1], 1);
            dup2(e[1], 2);
        }
        execvp(req->cmd[0], req->cmd);
        _exit(127);
    }
    struct test_proc *p = calloc(1, sizeof(*p));
    p->pid = pid;
    p->master = master;
    stream_process_init(out);
    out->data = p;
    out->wait = tp_wait;
    out->release = tp_release;
    out->resize = tp_resize;
    out->exit_fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (req->tty) {
        close(slave);
        out->stdin_fd = req->use_stdin ? master : -1;
        out->stdout_fd = master; /* drained even when not requested */
        if (!req->use_stdin && !req->use_stdout) {
            out->stdout_fd = -1;
            close(master);
        }
    } else {
        close(in[0]);
        close(o[1]);
        close(e[1]);
        out->stdin_fd = in[1];
        out->stdout_fd = o[0];
        out->stderr_fd = e[0];
        if (!req->use_stdin) {
            close(in[1]);
            out->stdin_fd = -1;
        }
    }
    return 0;
}

static void pkt(int fd, int tag, const char *s, size_t n)
{
    char b[HULL_CONMON_PKT_MAX + 1];
    b[0] = (char)tag;
    memcpy(b + 1, s, n);
    if (send(fd, b, n + 1, MSG_NOSIGNAL) < 0)
        _exit(1);
}

/* A fake hull-conmon attach socket: greets, echoes stdin as stdout, reports resizes on stderr,
 * exits 0 on STDIN_EOF (or, for "ticker", prints five ticks and exits 7). */
static int test_attach(void *data, const struct stream_request *req, struct stream_process *out,
                       hull_error_t *err)
{
    if (strcmp(req->id, "missing") == 0)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return hull_error_set(err, errno, "socketpair");
    bool ticker = strcmp(req->id, "ticker") == 0;
    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork");
    if (pid == 0) {
        close(sv[0]);
        int fd = sv[1];
        if (ticker) {
            for (int i = 0; i < 5; i++) {
                char t[32];
                int n = snprintf(t, sizeof(t), "tick %d\n", i);
                pkt(fd, HULL_ATTACH_STDOUT, t, (size_t)n);
                usleep(50000);
            }
            const char *ex = "{\"exit_code\":7}";
            pkt(fd, HULL_ATTACH_EXIT, ex, strlen(ex));
            _exit(0);
        }
        const char *hello = "hello from container\n";
        pkt(fd, HULL_ATTACH_STDOUT, hello, strlen(hello));
        char b[HULL_CONMON_PKT_MAX + 1];
        for (;;) {
            ssize_t n = recv(fd, b, sizeof(b), 0);
            if (n <= 0)
                _exit(0);
            if (b[0] == HULL_ATTACH_STDIN)
                pkt(fd, HULL_ATTACH_STDOUT, b + 1, (size_t)n - 1);
            else if (b[0] == HULL_ATTACH_RESIZE) {
                char t[80];
                int l = snprintf(t, sizeof(t), "resize %.*s\n", (int)(n - 1), b + 1);
                pkt(fd, HULL_ATTACH_STDERR, t, (size_t)l);
            } else if (b[0] == HULL_ATTACH_STDIN_EOF) {
                const char *ex = "{\"exit_code\":0}";
                pkt(fd, HULL_ATTACH_EXIT, ex, strlen(ex));
                _exit(0);
            }
        }
    }
    close(sv[1]);
    struct test_proc *p = calloc(1, sizeof(*p));
    p->pid = pid;
    p->master = -1;
    stream_process_init(out);
    out->attach_fd = sv[0];
    out->data = p;
    out->release = tp_release;
    return 0;
}

static int test_netns(void *data, const char *id, char **path, hull_error_t *err)
{
    char *p = xasprintf("/run/netns/%s", id);
    struct stat st;
    if (!hull_is_safe_component(id) || stat(p, &st) < 0) {
        free(p);
        return hull_error_setx(err, ENOENT, "pod sandbox \"%s\" not found", id);
    }
    *path = p;
    return 0;
}

static int test_check(void *data, const struct stream_request *req, hull_error_t *err)
{
    if (req->kind == STREAM_PORTFORWARD) {
        char *p = NULL;
        int r = test_netns(data, req->id, &p, err);
        free(p);
        return r;
    }
    if (strcmp(req->id, "missing") == 0)
        return hull_error_setx(err, ENOENT, "container \"%s\" not found", req->id);
    return 0;
}

static const struct stream_backend test_backend = {
    .check = test_check,
    .exec = test_exec,
    .attach = test_attach,
    .netns_path = test_netns,
};

static struct stream_server *start_server(long idle)
{
    struct stream_options o = {.address = "127.0.0.1", .port = 0, .idle_timeout_s = idle};
    struct stream_server *s = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    int r = stream_server_start(&o, &test_backend, &s, &e);
    if (r < 0)
        fprintf(stderr, "start: %s\n", hull_error_msg(&e));
    assert_int_equal(r, 0);
    return s;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the opendir fd itself, for /proc/self/fd */
}

/* The count once threads of earlier tests (detached, they end a moment after their session)
 * have gone: the baseline for leak checks must not include them. */
static int settled_count(const char *path)
{
    int last = count_dir(path), same = 0;
    for (int i = 0; i < 150 && same < 5; i++) {
        usleep(20000);
        int now = count_dir(path);
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

/* ---- a small client built from the same codec (the Python client is the independent one) --- */

struct client {
    int fd;
    struct spdy_zlib z;
    struct hull_buf in;
};

/* A TCP connection to 127.0.0.1:port from the loopback address src (NULL: any). */
static int tcp_connect_from(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        assert_int_equal(inet_pton(AF_INET, src, &b.sin_addr), 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int tcp_connect(int port)
{
    return tcp_connect_from(port, NULL);
}

/* Sends a raw request from src; returns the status code and leaves the rest in c->in. */
static int http_request_from(struct client *c, int port, const char *src, const char *text)
{
    c->fd = tcp_connect_from(port, src);
    assert_int_equal(write(c->fd, text, strlen(text)), (ssize_t)strlen(text));
    char buf[8192];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        hull_buf_add(&c->in, buf, (size_t)n);
        hull_buf_add(&c->in, "", 1);
        c->in.len--;
        char *end = strstr((char *)c->in.data, "\r\n\r\n");
        if (end) {
            int code = atoi((char *)c->in.data + 9);
            hull_buf_consume(&c->in, (size_t)(end + 4 - (char *)c->in.data));
            return code;
        }
    }
    return -1;
}

static int http_request(struct client *c, int port, const char *text)
{
    return http_request_from(c, port, NULL, text);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    hull_buf_free(&c->in);
}

static char *path_of(const char *url)
{
    const char *p = strchr(url + 7, '/');
    return xstrdup(p);
}

static int spdy_upgrade(struct client *c, int port, const char *url, const char *proto)
{
    _cleanup_free_ char *path = path_of(url);
    _cleanup_free_ char *req = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                         "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n"
                                         "\r\n",
                                         path, proto);
    return http_request(c, port, req);
}

static void c_syn(struct client *c, uint32_t id, const char *type)
{
    struct spdy_header h[] = {{"streamtype", (char *)type}};
    struct hull_buf p = {0}, f = {0};
    uint8_t hd[10] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    hull_buf_add(&p, hd, 10);
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_headers_encode(&c->z, h, 1, &p, &e), e);
    spdy_put_control(&f, SPDY_SYN_STREAM, 0, p.data, (uint32_t)p.len);
    assert_int_equal(write(c->fd, f.data, f.len), (ssize_t)f.len);
    hull_buf_free(&p);
    hull_buf_free(&f);
}

/* Reads frames until the connection closes; collects data per stream id (1..7). */
struct spdy_result {
    struct hull_buf data[8];
    bool fin[8];
    int replies;
    int goaways;
    uint32_t goaway_status;
    int rsts;
};

static void c_read_all(struct client *c, struct spdy_result *r)
{
    uint8_t buf[65536];
    for (;;) {
        struct spdy_frame f;
        ssize_t n;
        while ((n = spdy_frame_parse(c->in.data, c->in.len, 1u << 24, &f)) > 0) {
            if (f.control) {
                if (f.type == SPDY_SYN_REPLY) {
                    struct spdy_header *h = NULL;
                    size_t nh = 0;
                    _cleanup_error_ hull_error_t e = NULL;
                    assert_hull_ok(
                        spdy_headers_decode(&c->z, f.payload + 4, f.length - 4, &h, &nh, &e), e);
                    spdy_headers_free(h, nh);
                    r->replies++;
                } else if (f.type == SPDY_GOAWAY) {
                    r->goaways++;
                    r->goaway_status = ntohl(*(uint32_t *)(f.payload + 4));
                } else if (f.type == SPDY_RST_STREAM) {
                    r->rsts++;
                }
            } else if (f.stream_id < 8) {
                hull_buf_add(&r->data[f.stream_id], f.payload, f.length);
                if (f.flags & SPDY_FLAG_FIN)
                    r->fin[f.stream_id] = true;
            }
            hull_buf_consume(&c->in, (size_t)n);
        }
        ssize_t got = recv(c->fd, buf, sizeof(buf), 0);
        if (got <= 0)
            return;
        hull_buf_add(&c->in, buf, (size_t)got);
    }
}

static void result_free(struct spdy_result *r)
{
    for (int i = 0; i < 8; i++)
        hull_buf_free(&r->data[i]);
}

static char *str_of(struct hull_buf *b)
{
    return xstrndup(b->data ? (char *)b->data : "", b->len);
}

static char *get_url(struct stream_server *s, enum stream_kind kind, const char *id, char **cmd,
                     bool tty, bool in, bool out, bool err_)
{
    struct stream_request r = {.kind = kind,
                               .id = (char *)id,
                               .cmd = cmd,
                               .tty = tty,
                               .use_stdin = in,
                               .use_stdout = out,
                               .use_stderr = err_};
    char *url = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(stream_server_url(s, &r, &url, &e), e);
    return url;
}

/* ---- codec tests ---------------------------------------------------------------------------- */

static void test_spdy_dictionary(void **state)
{
    assert_int_equal(spdy_dictionary_len, 1423);
    assert_int_equal(adler32(1, spdy_dictionary, (uInt)spdy_dictionary_len), 0xe3c6a7c2u);
}

static void test_spdy_headers(void **state)
{
    struct spdy_zlib a, b;
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_zlib_init(&a, &e), e);
    assert_hull_ok(spdy_zlib_init(&b, &e), e);
    for (int round = 0; round < 3; round++) { /* one shared context per direction */
        struct spdy_header h[] = {{"streamtype", "stdout"}, {"port", "8080"}};
        struct hull_buf blk = {0};
        assert_hull_ok(spdy_headers_encode(&a, h, 2, &blk, &e), e);
        struct spdy_header *out = NULL;
        size_t n = 0;
        assert_hull_ok(spdy_headers_decode(&b, blk.data, blk.len, &out, &n, &e), e);
        assert_int_equal(n, 2);
        assert_string_equal(spdy_header_get(out, n, "streamtype"), "stdout");
        assert_string_equal(spdy_header_get(out, n, "PORT"), "8080");
        spdy_headers_free(out, n);
        hull_buf_free(&blk);
    }
    /* a header block that inflates above the limit */
    char *big = xmalloc0(STREAM_MAX_HEADER_BLOCK + 10);
    memset(big, 'a', STREAM_MAX_HEADER_BLOCK + 9);
    struct spdy_header hb[] = {{"x", big}};
    struct hull_buf blk = {0};
    assert_hull_ok(spdy_headers_encode(&a, hb, 1, &blk, &e), e);
    struct spdy_header *out = NULL;
    size_t n = 0;
    assert_hull_fails(spdy_headers_decode(&b, blk.data, blk.len, &out, &n, &e), EMSGSIZE, e);
    hull_buf_free(&blk);
    free(big);
    spdy_zlib_fini(&a);
    spdy_zlib_fini(&b);
    /* garbage */
    assert_hull_ok(spdy_zlib_init(&b, &e), e);
    const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_true(spdy_headers_decode(&b, junk, sizeof(junk), &out, &n, &e) < 0);
    hull_error_free(&e);
    spdy_zlib_fini(&b);
    /* a block that claims more headers than it has */
    assert_hull_ok(spdy_zlib_init(&a, &e), e);
    assert_hull_ok(spdy_zlib_init(&b, &e), e);
    uint8_t raw[] = {0, 0, 0, 5, 0, 0, 0, 1, 'a'};
    z_stream *d = &a.def;
    uint8_t zbuf[256];
    d->next_in = raw;
    d->avail_in = sizeof(raw);
    d->next_out = zbuf;
    d->avail_out = sizeof(zbuf);
    deflate(d, Z_SYNC_FLUSH);
    assert_hull_fails(spdy_headers_decode(&b, zbuf, sizeof(zbuf) - d->avail_out, &out, &n, &e),
                      EPROTO, e);
    spdy_zlib_fini(&a);
    spdy_zlib_fini(&b);
}

static void test_spdy_frames(void **state)
{
    struct hull_buf b = {0};
    spdy_put_data(&b, 5, SPDY_FLAG_FIN, "abc", 3);
    struct spdy_frame f;
    assert_int_equal(spdy_frame_parse(b.data, b.len, 100, &f), 11);
    assert_false(f.control);
    assert_int_equal(f.stream_id, 5);
    assert_int_equal(f.flags, SPDY_FLAG_FIN);
    assert_memory_equal(f.payload, "abc", 3);
    assert_int_equal(spdy_frame_parse(b.data, 10, 100, &f), 0);
    assert_int_equal(spdy_frame_parse(b.data, b.len, 2, &f), -EMSGSIZE);
    b.len = 0;
    spdy_put_control(&b, SPDY_PING, 0, "\0\0\0\1", 4);
    assert_int_equal(spdy_frame_parse(b.data, b.len, 100, &f), 12);
    assert_true(f.control);
    assert_int_equal(f.version, 3);
    assert_int_equal(f.type, SPDY_PING);
    hull_buf_free(&b);
}

static void test_ws_codec(void **state)
{
    char acc[29];
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc), 0); /* RFC 6455 1.3 */
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    struct hull_buf b = {0};
    const uint8_t mask[4] = {1, 2, 3, 4};
    ws_put_frame(&b, WS_BINARY, true, mask, "hello", 5);
    struct ws_frame f;
    assert_int_equal(ws_frame_parse(b.data, b.len, 100, &f), 11);
    assert_true(f.masked && f.fin);
    assert_int_equal(f.opcode, WS_BINARY);
    assert_int_equal(f.payload[0] ^ 1, 'h');
    assert_int_equal(ws_frame_parse(b.data, 5, 100, &f), 0);
    assert_int_equal(ws_frame_parse(b.data, b.len, 4, &f), -EMSGSIZE);
    b.data[0] |= 0x40; /* RSV1 */
    assert_int_equal(ws_frame_parse(b.data, b.len, 100, &f), -EPROTO);
    uint8_t bad_op[] = {0x83, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_frame_parse(bad_op, sizeof(bad_op), 100, &f), -EPROTO);
    uint8_t frag_ping[] = {0x09, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_frame_parse(frag_ping, sizeof(frag_ping), 100, &f), -EPROTO);
    uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ws_frame_parse(huge, sizeof(huge), 100, &f), -EPROTO);
    uint8_t big[] = {0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0};
    assert_int_equal(ws_frame_parse(big, sizeof(big), STREAM_MAX_FRAME, &f), -EMSGSIZE);
    b.len = 0;
    char payload[70000];
    memset(payload, 'x', sizeof(payload));
    ws_put_frame(&b, WS_TEXT, false, NULL, payload, sizeof(payload));
    assert_int_equal(ws_frame_parse(b.data, b.len, 100000, &f), 10 + (ssize_t)sizeof(payload));
    assert_false(f.fin);
    hull_buf_free(&b);

    char enc[64];
    uint8_t dec[64];
    assert_int_equal(hull_base64_encode_to((const uint8_t *)"hello!?", 7, enc), 12);
    assert_string_equal(enc, "aGVsbG8hPw==");
    assert_int_equal(hull_base64_decode(enc, strlen(enc), dec, false), 7);
    assert_memory_equal(dec, "hello!?", 7);
    assert_int_equal(hull_base64_decode("ab$d", 4, dec, false), -EINVAL);
    assert_int_equal(hull_base64_decode("ab=d", 4, dec, false), -EINVAL);
}

static void test_resize_and_status(void **state)
{
    struct hull_buf p = {0};
    struct stream_winsize sz;
    const char *two = "{\"Width\":100,\"Height\":40}{\"Width\":";
    assert_int_equal(stream_resize_feed(&p, (const uint8_t *)two, strlen(two), &sz), 1);
    assert_int_equal(sz.width, 100);
    assert_int_equal(sz.height, 40);
    assert_int_equal(stream_resize_feed(&p, NULL, 0, &sz), 0);
    const char *rest = "7,\"Height\":9}\n";
    assert_int_equal(stream_resize_feed(&p, (const uint8_t *)rest, strlen(rest), &sz), 1);
    assert_int_equal(sz.width, 7);
    assert_int_equal(sz.height, 9);
    assert_int_equal(stream_resize_feed(&p, (const uint8_t *)"garbage", 7, &sz), -EINVAL);
    p.len = 0;
    assert_int_equal(stream_resize_feed(&p, (const uint8_t *)"{\"Width\":-1}", 12, &sz), -EINVAL);
    hull_buf_free(&p);

    const char *cmd[] = {"sh", "-c", "exit 3", NULL};
    _cleanup_free_ char *j = stream_status_json(3, cmd, NULL);
    assert_non_null(strstr(j, "\"status\":\"Failure\""));
    assert_non_null(strstr(j, "\"reason\":\"NonZeroExitCode\""));
    assert_non_null(
        strstr(j, "\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"3\"}]}"));
    _cleanup_free_ char *ok = stream_status_json(0, cmd, NULL);
    assert_string_equal(ok, "{\"metadata\":{},\"status\":\"Success\"}");
    _cleanup_free_ char *ie = stream_status_json(0, cmd, "boom");
    assert_non_null(strstr(ie, "\"reason\":\"InternalError\""));
}

static void test_http_parse_head(void **state)
{
    struct http_request r;
    memset(&r, 0, sizeof(r));
    char ok[] = "GET /exec/abc?port=80&port=81 HTTP/1.1\r\nHost: x\r\nUpgrade:  SPDY/3.1 \t\r\n"
                "X-Stream-Protocol-Version: v4.channel.k8s.io";
    assert_int_equal(stream_http_parse_head(ok, &r), 0);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/exec/abc");
    assert_string_equal(r.query, "port=80&port=81");
    assert_int_equal(r.n_headers, 3);
    assert_string_equal(r.headers[1].name, "Upgrade");
    assert_string_equal(r.headers[1].value, "SPDY/3.1"); /* surrounding blanks trimmed */
    stream_http_request_free(&r);
    static const char *const bad[] = {
        "",
        "GET /x",                           /* no version */
        "GET /x HTTP/2.0",                  /* not HTTP/1.x */
        "GET x HTTP/1.1",                   /* not an absolute path */
        "AVERYLONGMETHODNAME /x HTTP/1.1",  /* method above 15 bytes */
        "GET /x HTTP/1.1\r\nno colon here", /* header without ':' */
        "GET /x HTTP/1.1\r\n: empty name",  /* header without a name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        _cleanup_free_ char *h = xstrdup(bad[i]);
        memset(&r, 0, sizeof(r));
        assert_int_equal(stream_http_parse_head(h, &r), 400);
        stream_http_request_free(&r);
    }
    /* more than STREAM_MAX_HEADERS header lines: 431 */
    struct hull_buf b = {0};
    hull_buf_add(&b, "GET /x HTTP/1.1", 15);
    for (int i = 0; i <= STREAM_MAX_HEADERS; i++)
        hull_buf_add(&b, "\r\nA: b", 6);
    hull_buf_add(&b, "", 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(stream_http_parse_head((char *)b.data, &r), 431);
    assert_int_equal(r.n_headers, STREAM_MAX_HEADERS);
    stream_http_request_free(&r);
    hull_buf_free(&b);
}

static void test_validate(void **state)
{
    char *cmd[] = {"true", NULL};
    _cleanup_error_ hull_error_t e = NULL;
    struct stream_request r = {.kind = STREAM_EXEC, .id = "c", .cmd = cmd, .use_stdout = true};
    assert_hull_ok(stream_request_validate(&r, &e), e);
    r.tty = r.use_stderr = true;
    assert_hull_fails(stream_request_validate(&r, &e), EINVAL, e);
    r.tty = r.use_stderr = r.use_stdout = false;
    assert_int_equal(stream_request_validate(&r, &e), -EINVAL);
    assert_non_null(strstr(hull_error_msg(&e), "one of stdin, stdout, or stderr"));
    hull_error_free(&e);
    r.use_stdout = true;
    r.cmd = NULL;
    assert_hull_fails(stream_request_validate(&r, &e), EINVAL, e);
    r.id = "";
    r.kind = STREAM_ATTACH;
    assert_hull_fails(stream_request_validate(&r, &e), EINVAL, e);
    int32_t ports[] = {80, 70000};
    struct stream_request pf = {
        .kind = STREAM_PORTFORWARD, .id = "p", .ports = ports, .n_ports = 2};
    assert_hull_fails(stream_request_validate(&pf, &e), EINVAL, e);
    pf.n_ports = 1;
    assert_hull_ok(stream_request_validate(&pf, &e), e);
}

/* ---- server tests -----------------------------------------------------------------------------
 */

static void test_tokens_and_http(void **state)
{
    struct stream_server *s = start_server(60);
    int port = stream_server_port(s);
    char *cmd[] = {"echo", "hi", NULL};
    struct client c = {.fd = -1};
    /* unknown token, unknown path, garbage request line, missing upgrade headers */
    assert_int_equal(http_request(&c, port,
                                  "GET /exec/nope HTTP/1.1\r\nConnection: Upgrade\r\n"
                                  "Upgrade: SPDY/3.1\r\n\r\n"),
                     404);
    client_close(&c);
    assert_int_equal(http_request(&c, port, "GET /exec/nope HTTP/1.1\r\n\r\n"), 400);
    client_close(&c);
    assert_int_equal(http_request(&c, port, "GET /metrics HTTP/1.1\r\n\r\n"), 404);
    client_close(&c);
    assert_int_equal(http_request(&c, port, "\x01\x02garbage\r\n\r\n"), 400);
    client_close(&c);
    assert_int_equal(http_request(&c, port, "GET /exec/x HTTP/1.1\r\nbad header line\r\n\r\n"),
                     400);
    client_close(&c);
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, true);
    _cleanup_free_ char *path = path_of(url);
    _cleanup_free_ char *plain = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    assert_int_equal(http_request(&c, port, plain), 400); /* no upgrade headers */
    client_close(&c);
    /* the token of one kind does not open another */
    _cleanup_free_ char *wrong =
        xasprintf("POST /attach/%s HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n",
                  strrchr(path, '/') + 1);
    assert_int_equal(http_request(&c, port, wrong), 404);
    client_close(&c);
    /* unsupported protocol version → 403 with the negotiation message */
    assert_int_equal(spdy_upgrade(&c, port, url, "v9.channel.k8s.io"), 403);
    client_close(&c);
    /* none of these used the token up: it still opens its session, once */
    assert_int_equal(spdy_upgrade(&c, port, url, "v4.channel.k8s.io"), 101);
    client_close(&c);
    assert_int_equal(spdy_upgrade(&c, port, url, "v4.channel.k8s.io"), 404); /* used */
    client_close(&c);
    /* an over-long request head */
    char *huge = xmalloc0(40000);
    strcpy(huge, "GET /exec/x HTTP/1.1\r\nX: ");
    memset(huge + strlen(huge), 'a', 30000);
    assert_int_equal(http_request(&c, port, huge), 431);
    free(huge);
    client_close(&c);
    stream_server_stop(s);
}

static void test_token_limits(void **state)
{
    struct stream_options o = {.address = "127.0.0.1", .token_ttl_s = 1};
    struct stream_server *s = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(stream_server_start(&o, &test_backend, &s, &e), e);
    char *cmd[] = {"true", NULL};
    struct stream_request r = {.kind = STREAM_EXEC, .id = "c1", .cmd = cmd, .use_stdout = true};
    char *first = NULL;
    for (int i = 0; i < STREAM_MAX_PENDING; i++) {
        char *url = NULL;
        assert_hull_ok(stream_server_url(s, &r, &url, &e), e);
        if (i == 0)
            first = url;
        else
            free(url);
    }
    char *url = NULL;
    assert_int_equal(stream_server_url(s, &r, &url, &e), -ENOSPC); /* RESOURCE_EXHAUSTED */
    hull_error_free(&e);
    usleep(1200000); /* all expire */
    struct client c = {.fd = -1};
    assert_int_equal(spdy_upgrade(&c, stream_server_port(s), first, "v4.channel.k8s.io"), 404);
    client_close(&c);
    free(first);
    assert_hull_ok(stream_server_url(s, &r, &url, &e), e); /* room again */
    free(url);
    stream_server_stop(s);
}

/* Is ::1 configured on lo (/proc/net/if_inet6)? */
static bool has_ipv6_loopback(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/net/if_inet6", "re");
    char addr[64], dev[32];
    unsigned a, b, c, d;
    while (f && fscanf(f, "%63s %x %x %x %x %31s", addr, &a, &b, &c, &d, dev) == 6)
        if (strcmp(addr, "00000000000000000000000000000001") == 0)
            return true;
    return false;
}

static void test_ipv6_url(void **state)
{
    struct stream_options o = {.address = "::1"};
    struct stream_server *s = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (!has_ipv6_loopback()) {
        skip(); /* no ::1 on this machine */
        return;
    }
    assert_hull_ok(stream_server_start(&o, &test_backend, &s, &e), e);
    char *cmd[] = {"true", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, false);
    _cleanup_free_ char *want = xasprintf("http://[::1]:%d/exec/", stream_server_port(s));
    assert_true(strncmp(url, want, strlen(want)) == 0);
    stream_server_stop(s);
    o.address = "not-an-address";
    assert_int_equal(stream_server_start(&o, &test_backend, &s, &e), -EINVAL);
}

/* Connections without a token take no session slot: one peer may hold at most
 * STREAM_MAX_UNAUTH_PER_PEER of them, each for STREAM_HEADER_TIMEOUT_MS, while other peers and
 * holders of a token are still served. */
static void test_preauth_limits(void **state)
{
    struct stream_server *s = start_server(60);
    int port = stream_server_port(s);
    int fds[STREAM_MAX_UNAUTH_PER_PEER];
    int64_t t0 = hull_monotonic_ns();
    for (int i = 0; i < STREAM_MAX_UNAUTH_PER_PEER; i++)
        fds[i] = tcp_connect(port); /* silent: never sends a byte */
    for (int i = 0; i < 200 && stream_server_unauthenticated(s) < STREAM_MAX_UNAUTH_PER_PEER; i++)
        usleep(5000);
    assert_int_equal(stream_server_unauthenticated(s), STREAM_MAX_UNAUTH_PER_PEER);
    assert_int_equal(stream_server_active_sessions(s), 0);
    /* the same peer is refused one more */
    struct client c = {.fd = -1};
    assert_int_equal(http_request(&c, port, "GET /exec/x HTTP/1.1\r\n\r\n"), 503);
    client_close(&c);
    /* another peer with a token gets its session meanwhile */
    char *cmd[] = {"echo", "hi", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, true);
    _cleanup_free_ char *path = path_of(url);
    _cleanup_free_ char *up = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                        "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                                        "v4.channel.k8s.io\r\n\r\n",
                                        path);
    assert_int_equal(http_request_from(&c, port, "127.0.0.2", up), 101);
    client_close(&c);
    /* the silent connections are closed at the header deadline, not held */
    for (int i = 0; i < STREAM_MAX_UNAUTH_PER_PEER; i++) {
        char b[256];
        ssize_t n;
        while ((n = recv(fds[i], b, sizeof(b), 0)) > 0)
            ;
        assert_int_equal(n, 0); /* EOF, not the 10 s receive timeout */
        close(fds[i]);
    }
    int64_t waited_ms = (hull_monotonic_ns() - t0) / 1000000;
    assert_true(waited_ms >= STREAM_HEADER_TIMEOUT_MS - 100);
    assert_true(waited_ms < STREAM_HEADER_TIMEOUT_MS + 4000);
    for (int i = 0; i < 300 && stream_server_unauthenticated(s) > 0; i++)
        usleep(10000);
    assert_int_equal(stream_server_unauthenticated(s), 0);
    /* and the peer is served again */
    _cleanup_free_ char *u2 = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, true);
    assert_int_equal(spdy_upgrade(&c, port, u2, "v4.channel.k8s.io"), 101);
    client_close(&c);
    stream_server_stop(s);
}

/* With every session slot taken, a valid token is answered 503 and stays usable. */
static void test_session_cap(void **state)
{
    struct stream_server *s = start_server(60);
    int port = stream_server_port(s);
    char *cmd[] = {"echo", "hi", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, true);
    pthread_mutex_lock(&s->lock);
    s->sessions += STREAM_MAX_SESSIONS; /* as many live sessions as allowed */
    pthread_mutex_unlock(&s->lock);
    struct client c = {.fd = -1};
    assert_int_equal(spdy_upgrade(&c, port, url, "v4.channel.k8s.io"), 503);
    client_close(&c);
    pthread_mutex_lock(&s->lock);
    s->sessions -= STREAM_MAX_SESSIONS;
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(spdy_upgrade(&c, port, url, "v4.channel.k8s.io"), 101);
    client_close(&c);
    stream_server_stop(s);
}

static struct spdy_result run_spdy_exec(struct stream_server *s, const char *proto, char **cmd,
                                        const char *stdin_data)
{
    struct spdy_result r;
    memset(&r, 0, sizeof(r));
    _cleanup_free_ char *url =
        get_url(s, STREAM_EXEC, "c1", cmd, false, stdin_data != NULL, true, true);
    struct client c = {.fd = -1};
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_zlib_init(&c.z, &e), e);
    assert_int_equal(spdy_upgrade(&c, stream_server_port(s), url, proto), 101);
    c_syn(&c, 1, "error");
    c_syn(&c, 3, "stdout");
    c_syn(&c, 5, "stderr");
    if (stdin_data) {
        c_syn(&c, 7, "stdin");
        struct hull_buf f = {0};
        spdy_put_data(&f, 7, SPDY_FLAG_FIN, stdin_data, (uint32_t)strlen(stdin_data));
        assert_int_equal(write(c.fd, f.data, f.len), (ssize_t)f.len);
        hull_buf_free(&f);
    }
    c_read_all(&c, &r);
    spdy_zlib_fini(&c.z);
    client_close(&c);
    return r;
}

static void test_spdy_exec(void **state)
{
    struct stream_server *s = start_server(60);
    int thr0 = settled_count("/proc/self/task"), fds0 = settled_count("/proc/self/fd");
    char *echo[] = {"sh", "-c", "echo hello; echo oops >&2", NULL};
    struct spdy_result r = run_spdy_exec(s, "v4.channel.k8s.io", echo, NULL);
    _cleanup_free_ char *out = str_of(&r.data[3]);
    _cleanup_free_ char *errout = str_of(&r.data[5]);
    _cleanup_free_ char *status = str_of(&r.data[1]);
    assert_string_equal(out, "hello\n");
    assert_string_equal(errout, "oops\n");
    assert_string_equal(status, "{\"metadata\":{},\"status\":\"Success\"}");
    assert_int_equal(r.replies, 3);
    assert_true(r.fin[1] && r.fin[3] && r.fin[5]);
    assert_int_equal(r.goaways, 1);
    result_free(&r);

    char *three[] = {"sh", "-c", "exit 3", NULL};
    r = run_spdy_exec(s, "v4.channel.k8s.io", three, NULL);
    _cleanup_free_ char *st3 = str_of(&r.data[1]);
    assert_non_null(strstr(st3, "\"reason\":\"NonZeroExitCode\""));
    assert_non_null(strstr(st3, "{\"reason\":\"ExitCode\",\"message\":\"3\"}"));
    result_free(&r);

    /* v2: plain-text error stream */
    r = run_spdy_exec(s, "v2.channel.k8s.io", three, NULL);
    _cleanup_free_ char *st2 = str_of(&r.data[1]);
    assert_non_null(strstr(st2, "command terminated with non-zero exit code"));
    result_free(&r);

    char *cat[] = {"cat", NULL};
    r = run_spdy_exec(s, "v4.channel.k8s.io", cat, "from stdin\n");
    _cleanup_free_ char *catout = str_of(&r.data[3]);
    assert_string_equal(catout, "from stdin\n");
    result_free(&r);

    /* missing command: InternalError status, no crash */
    char *nope[] = {"/nonexistent/binary", NULL};
    r = run_spdy_exec(s, "v4.channel.k8s.io", nope, NULL);
    _cleanup_free_ char *st127 = str_of(&r.data[1]);
    assert_non_null(strstr(st127, "\"message\":\"127\""));
    result_free(&r);

    for (int i = 0; i < 100 && stream_server_active_sessions(s) > 0; i++)
        usleep(20000);
    assert_int_equal(stream_server_active_sessions(s), 0);
    int fds1 = 0, thr1 = 0;
    for (int i = 0; i < 100; i++) { /* detached threads finish a moment after they count down */
        fds1 = count_dir("/proc/self/fd");
        thr1 = count_dir("/proc/self/task");
        if (fds1 == fds0 && thr1 == thr0)
            break;
        usleep(20000);
    }
    assert_int_equal(fds1, fds0);
    assert_int_equal(thr1, thr0);
    stream_server_stop(s);
}

/* Raw bytes after a successful upgrade: the server answers with GOAWAY / close and survives. */
static void send_after_upgrade(struct stream_server *s, bool ws, const void *junk, size_t n,
                               struct hull_buf *answer)
{
    char *cmd[] = {"sleep", "30", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, false);
    struct client c = {.fd = -1};
    if (ws) {
        _cleanup_free_ char *path = path_of(url);
        _cleanup_free_ char *req =
            xasprintf("GET %s HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
                      path);
        assert_int_equal(http_request(&c, stream_server_port(s), req), 101);
    } else {
        assert_int_equal(spdy_upgrade(&c, stream_server_port(s), url, "v4.channel.k8s.io"), 101);
    }
    assert_int_equal(write(c.fd, junk, n), (ssize_t)n);
    uint8_t buf[4096];
    hull_buf_add(answer, c.in.data, c.in.len);
    for (;;) {
        ssize_t got = recv(c.fd, buf, sizeof(buf), 0);
        if (got <= 0)
            break;
        hull_buf_add(answer, buf, (size_t)got);
    }
    client_close(&c);
}

/* The close code of the first WebSocket close frame in a (data frames are skipped). */
static int ws_close_code(struct hull_buf *a)
{
    size_t off = 0;
    struct ws_frame wf;
    ssize_t n;
    while ((n = ws_frame_parse(a->data + off, a->len - off, 1u << 20, &wf)) > 0) {
        if (wf.opcode == WS_CLOSE)
            return wf.length >= 2 ? (wf.payload[0] << 8) | wf.payload[1] : 1005;
        off += (size_t)n;
    }
    return -1;
}

static void test_bad_frames(void **state)
{
    struct stream_server *s = start_server(60);
    int fds0 = count_dir("/proc/self/fd");
    struct hull_buf a = {0};
    struct spdy_frame f;

    /* garbage: version 0x7f7f control frame */
    uint8_t junk[64];
    memset(junk, 0xff, sizeof(junk));
    junk[5] = junk[6] = 0;
    junk[7] = 8;
    send_after_upgrade(s, false, junk, 16, &a);
    assert_true(spdy_frame_parse(a.data, a.len, 100, &f) > 0);
    assert_true(f.control);
    assert_int_equal(f.type, SPDY_GOAWAY);
    assert_int_equal(ntohl(*(uint32_t *)(f.payload + 4)), 1); /* PROTOCOL_ERROR */
    a.len = 0;

    /* oversized frame: 16 MiB data frame header */
    uint8_t big[8] = {0, 0, 0, 1, 0, 0xff, 0xff, 0xff};
    send_after_upgrade(s, false, big, 8, &a);
    assert_true(spdy_frame_parse(a.data, a.len, 100, &f) > 0);
    assert_int_equal(f.type, SPDY_GOAWAY);
    a.len = 0;

    /* SYN_STREAM with a corrupt header block */
    struct hull_buf fr = {0};
    uint8_t syn[20] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    spdy_put_control(&fr, SPDY_SYN_STREAM, 0, syn, sizeof(syn));
    send_after_upgrade(s, false, fr.data, fr.len, &a);
    assert_true(spdy_frame_parse(a.data, a.len, 100, &f) > 0);
    assert_int_equal(f.type, SPDY_GOAWAY);
    hull_buf_free(&fr);
    a.len = 0;

    /* WebSocket: unmasked frame → close 1002; oversized → close 1009 */
    uint8_t unmasked[] = {0x82, 0x02, 0x00, 'x'};
    send_after_upgrade(s, true, unmasked, sizeof(unmasked), &a);
    assert_int_equal(ws_close_code(&a), 1002);
    a.len = 0;
    uint8_t wsbig[] = {0x82, 0xff, 0, 0, 0, 0, 0x7f, 0, 0, 0, 1, 2, 3, 4};
    send_after_upgrade(s, true, wsbig, sizeof(wsbig), &a);
    assert_int_equal(ws_close_code(&a), 1009);
    a.len = 0;
    /* random bytes */
    uint8_t rnd[4096];
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (uint8_t)(i * 7919 + 13);
    send_after_upgrade(s, true, rnd, sizeof(rnd), &a);
    assert_int_equal(ws_close_code(&a), 1002);
    a.len = 0;
    send_after_upgrade(s, false, rnd, sizeof(rnd), &a);
    hull_buf_free(&a);

    /* still serving */
    char *echo[] = {"echo", "alive", NULL};
    struct spdy_result r = run_spdy_exec(s, "v4.channel.k8s.io", echo, NULL);
    _cleanup_free_ char *out = str_of(&r.data[3]);
    assert_string_equal(out, "alive\n");
    result_free(&r);
    for (int i = 0; i < 200 && stream_server_active_sessions(s) > 0; i++)
        usleep(20000);
    assert_int_equal(stream_server_active_sessions(s), 0); /* the `sleep 30`s were killed */
    assert_int_equal(count_dir("/proc/self/fd"), fds0);
    stream_server_stop(s);
}

static void test_stop_ends_sessions(void **state)
{
    struct stream_server *s = start_server(60);
    char *cmd[] = {"sleep", "60", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, false);
    struct client c = {.fd = -1};
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_zlib_init(&c.z, &e), e);
    assert_int_equal(spdy_upgrade(&c, stream_server_port(s), url, "v4.channel.k8s.io"), 101);
    c_syn(&c, 1, "error");
    c_syn(&c, 3, "stdout");
    /* the session starts once the server has both streams */
    for (int i = 0; i < 500 && stream_server_active_sessions(s) == 0; i++)
        usleep(20000);
    assert_int_equal(stream_server_active_sessions(s), 1);
    int64_t t0 = hull_monotonic_ns();
    stream_server_stop(s); /* waits for the session thread, which kills `sleep` */
    assert_true(hull_monotonic_ns() - t0 < 5000000000LL);
    spdy_zlib_fini(&c.z);
    client_close(&c);
}

/* A client that stops reading while the process floods it: stop still returns promptly. */
static void test_stop_with_stalled_client(void **state)
{
    struct stream_server *s = start_server(60);
    char *cmd[] = {"cat", "/dev/zero", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, false);
    struct client c = {.fd = -1};
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_zlib_init(&c.z, &e), e);
    assert_int_equal(spdy_upgrade(&c, stream_server_port(s), url, "v4.channel.k8s.io"), 101);
    c_syn(&c, 1, "error");
    c_syn(&c, 3, "stdout");
    /* the socket buffers fill up (our receive queue stops growing): the session blocks writing */
    for (int i = 0, last = -1, now = 0; i < 500; i++, last = now) {
        assert_int_equal(ioctl(c.fd, FIONREAD, &now), 0);
        if (now > 0 && now == last)
            break;
        usleep(20000);
    }
    int64_t t0 = hull_monotonic_ns();
    stream_server_stop(s);
    assert_true(hull_monotonic_ns() - t0 < 3000000000LL);
    spdy_zlib_fini(&c.z);
    client_close(&c);
}

static void test_idle_timeout(void **state)
{
    struct stream_server *s = start_server(1);
    char *cmd[] = {"sleep", "60", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", cmd, false, false, true, false);
    struct client c = {.fd = -1};
    _cleanup_error_ hull_error_t e = NULL;
    assert_hull_ok(spdy_zlib_init(&c.z, &e), e);
    assert_int_equal(spdy_upgrade(&c, stream_server_port(s), url, "v4.channel.k8s.io"), 101);
    c_syn(&c, 1, "error");
    c_syn(&c, 3, "stdout");
    struct spdy_result r;
    memset(&r, 0, sizeof(r));
    int64_t t0 = hull_monotonic_ns();
    c_read_all(&c, &r); /* returns when the server closes */
    assert_true(hull_monotonic_ns() - t0 < 5000000000LL);
    result_free(&r);
    spdy_zlib_fini(&c.z);
    client_close(&c);
    stream_server_stop(s);
}

static void test_netns_connect(void **state)
{
    if (geteuid() != 0 || access("/usr/sbin/ip", X_OK) != 0) {
        skip();
        return;
    }
    char ns[64];
    snprintf(ns, sizeof(ns), "hullstream-u%d", getpid());
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ip netns add %s && ip -n %s link set lo up", ns, ns);
    assert_int_equal(system(cmd), 0);
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    /* nothing listens: refused, and the caller's own namespace is untouched */
    _cleanup_error_ hull_error_t e = NULL;
    int thr0 = settled_count("/proc/self/task");
    assert_true(stream_netns_connect(path, 8080, &e) < 0);
    assert_non_null(strstr(hull_error_msg(&e), "dial tcp localhost:8080"));
    hull_error_free(&e);
    assert_true(stream_netns_connect("/nonexistent", 80, &e) < 0);
    hull_error_free(&e);
    /* a listener inside: nc-free, via a forked child that enters the namespace */
    int sync[2];
    assert_int_equal(pipe(sync), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int nsfd = open(path, O_RDONLY);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
            _exit(1);
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0)
            _exit(2);
        if (write(sync[1], "x", 1) != 1)
            _exit(3);
        int c = accept(l, NULL, NULL);
        if (write(c, "inside\n", 7) != 7)
            _exit(4);
        _exit(0);
    }
    char x;
    assert_int_equal(read(sync[0], &x, 1), 1);
    int fd = stream_netns_connect(path, 8080, &e);
    assert_true(fd >= 0);
    char buf[16] = {0};
    assert_int_equal(read(fd, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "inside\n");
    close(fd);
    close(sync[0]);
    close(sync[1]);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(count_dir("/proc/self/task"), thr0);
    /* our namespace was not changed: 127.0.0.1:8080 here is not the listener above */
    snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
    assert_int_equal(system(cmd), 0);
}

static void test_tls_options(void **state)
{
    if (system("command -v openssl >/dev/null") != 0) {
        skip();
        return;
    }
    _cleanup_free_ char *dir = hull_test_tmpdir("stream-tls");
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    _cleanup_free_ char *cert = xasprintf("%s/cert.pem", dir);
    _cleanup_free_ char *key = xasprintf("%s/key.pem", dir);
    struct stream_options o = {.address = "127.0.0.1", .tls_cert = cert, .tls_key = NULL};
    struct stream_server *s = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    assert_int_equal(stream_server_start(&o, &test_backend, &s, &e), -EINVAL); /* no key */
    hull_error_free(&e);
    o.tls_key = cert; /* not a key */
    assert_hull_fails(stream_server_start(&o, &test_backend, &s, &e), EINVAL, e);
    o.tls_key = key;
    assert_hull_ok(stream_server_start(&o, &test_backend, &s, &e), e);
    char *echo[] = {"echo", "x", NULL};
    _cleanup_free_ char *url = get_url(s, STREAM_EXEC, "c1", echo, false, false, true, false);
    assert_true(strncmp(url, "https://127.0.0.1:", 18) == 0);
    /* plain HTTP to the TLS port: the handshake fails, the server goes on */
    struct client c = {.fd = -1};
    assert_int_equal(http_request(&c, stream_server_port(s), "GET /exec/x HTTP/1.1\r\n\r\n"), -1);
    client_close(&c);
    for (int i = 0; i < 100 && stream_server_active_sessions(s) > 0; i++)
        usleep(20000);
    assert_int_equal(stream_server_active_sessions(s), 0);
    stream_server_stop(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- --serve ------------------------------------------------------------------------------------
 */

static int serve(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct stream_options o = {.address = "127.0.0.1",
                               .port = 0,
                               .idle_timeout_s = 30,
                               .tls_cert = getenv("HULL_STREAM_TLS_CERT"),
                               .tls_key = getenv("HULL_STREAM_TLS_KEY")};
    const char *idle = getenv("HULL_STREAM_IDLE");
    if (idle)
        o.idle_timeout_s = atol(idle);
    const char *creation = getenv("HULL_STREAM_CREATION");
    if (creation)
        o.creation_timeout_s = atol(creation);
    struct stream_server *s = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (stream_server_start(&o, &test_backend, &s, &e) < 0) {
        fprintf(stderr, "%s\n", hull_error_msg(&e));
        return 1;
    }
    printf("PORT %d\n", stream_server_port(s));
    fflush(stdout);
    char line[8192];
    while (fgets(line, sizeof(line), stdin)) {
        if (strncmp(line, "stats", 5) == 0) {
            printf("fds %d threads %d sessions %d\n", count_dir("/proc/self/fd"),
                   count_dir("/proc/self/task"), stream_server_active_sessions(s));
            fflush(stdout);
            continue;
        }
        _cleanup_yajl_ yajl_val v = NULL;
        _cleanup_error_ hull_error_t je = NULL;
        if (hull_json_parse(line, "request", &v, &je) < 0) {
            printf("ERROR %d %s\n", EINVAL, hull_error_msg(&je));
            fflush(stdout);
            continue;
        }
        const char *kind = hull_json_get_string(v, "kind", "exec");
        struct stream_request r = {
            .kind = strcmp(kind, "attach") == 0        ? STREAM_ATTACH
                    : strcmp(kind, "portforward") == 0 ? STREAM_PORTFORWARD
                                                       : STREAM_EXEC,
            .id = (char *)hull_json_get_string(v, "id", "c1"),
            .tty = hull_json_get_bool(v, "tty", false),
            .use_stdin = hull_json_get_bool(v, "stdin", false),
            .use_stdout = hull_json_get_bool(v, "stdout", true),
            .use_stderr = hull_json_get_bool(v, "stderr", false),
        };
        char *cmd[64] = {NULL};
        yajl_val c = hull_json_get(v, "cmd");
        for (size_t i = 0; c && YAJL_IS_ARRAY(c) && i < c->u.array.len && i < 63; i++)
            cmd[i] = YAJL_GET_STRING(c->u.array.values[i]);
        r.cmd = cmd[0] ? cmd : NULL;
        int32_t ports[16];
        yajl_val p = hull_json_get(v, "ports");
        for (size_t i = 0; p && YAJL_IS_ARRAY(p) && i < p->u.array.len && i < 16; i++)
            ports[r.n_ports++] = (int32_t)YAJL_GET_INTEGER(p->u.array.values[i]);
        r.ports = ports;
        char *url = NULL;
        _cleanup_error_ hull_error_t ue = NULL;
        int rr = stream_request_validate(&r, &ue);
        if (rr == 0)
            rr = stream_server_check(s, &r, &ue);
        if (rr == 0)
            rr = stream_server_url(s, &r, &url, &ue);
        if (rr < 0)
            printf("ERROR %d %s\n", -rr, hull_error_msg(&ue));
        else
            printf("%s\n", url);
        free(url);
        fflush(stdout);
    }
    stream_server_stop(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--serve") == 0)
        return serve();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spdy_dictionary),   cmocka_unit_test(test_spdy_headers),
        cmocka_unit_test(test_spdy_frames),       cmocka_unit_test(test_ws_codec),
        cmocka_unit_test(test_resize_and_status), cmocka_unit_test(test_validate),
        cmocka_unit_test(test_tokens_and_http),   cmocka_unit_test(test_spdy_exec),
        cmocka_unit_test(test_bad_frames),        cmocka_unit_test(test_stop_ends_sessions),
        cmocka_unit_test(test_idle_timeout),      cmocka_unit_test(test_netns_connect),
        cmocka_unit_test(test_tls_options),       cmocka_unit_test(test_stop_with_stalled_client),
        cmocka_unit_test(test_token_limits),      cmocka_unit_test(test_session_cap),
        cmocka_unit_test(test_preauth_limits),    cmocka_unit_test(test_ipv6_url),
        cmocka_unit_test(test_http_parse_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
