/* The streaming server: listener, tokens, HTTP/1.1 request parsing and upgrade negotiation.
 * One thread per connection; the session itself (SPDY or WebSocket, remotecommand or
 * port-forward) runs in stream_session.c. */
#include "server/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct pending_token {
    char token[33];
    int64_t expires_ns;
    struct stream_request *req;
};

struct stream_server {
    int listen_fd;
    int wake_fd; /* written once at stop: every poll loop watches it */
    pthread_t accept_thread;
    bool accept_started;
    struct stream_backend backend;
    SSL_CTX *tls; /* NULL: plain HTTP */
    char *url_host;
    int port;
    long idle_timeout_s;
    long creation_timeout_s;
    long token_ttl_s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pending_token *pending; /* STREAM_MAX_PENDING slots */
    size_t n_pending;
    int sessions;
    int conn_fds[STREAM_MAX_SESSIONS]; /* live connections (-1: free), shut down at stop */
    atomic_bool stopping;
};

/* ---- requests and tokens ----------------------------------------------------------------- */

static void request_free(struct stream_request *r)
{
    if (!r)
        return;
    free(r->id);
    for (size_t i = 0; r->cmd && r->cmd[i]; i++)
        free(r->cmd[i]);
    free(r->cmd);
    free(r->ports);
    free(r);
}

static struct stream_request *request_copy(const struct stream_request *src)
{
    struct stream_request *r = xmalloc0(sizeof(*r));
    *r = *src;
    r->id = xstrdup(src->id ? src->id : "");
    r->cmd = NULL;
    if (src->cmd) {
        size_t n = 0;
        while (src->cmd[n])
            n++;
        r->cmd = xmalloc0(sizeof(char *) * (n + 1));
        for (size_t i = 0; i < n; i++)
            r->cmd[i] = xstrdup(src->cmd[i]);
    }
    r->ports = NULL;
    if (src->n_ports) {
        r->ports = xmalloc0(sizeof(int32_t) * src->n_ports);
        memcpy(r->ports, src->ports, sizeof(int32_t) * src->n_ports);
    }
    return r;
}

int stream_request_validate(const struct stream_request *req, hull_error_t *err)
{
    const char *what = req->kind == STREAM_PORTFORWARD ? "pod sandbox id" : "container id";
    if (req->id == NULL || req->id[0] == '\0')
        return hull_error_setx(err, EINVAL, "%s is required", what);
    if (strlen(req->id) > 256)
        return hull_error_setx(err, EINVAL, "%s is too long", what);
    switch (req->kind) {
    case STREAM_EXEC:
        if (req->cmd == NULL || req->cmd[0] == NULL)
            return hull_error_setx(err, EINVAL, "cmd is required");
        /* fallthrough */
    case STREAM_ATTACH:
        if (req->tty && req->use_stderr)
            return hull_error_setx(err, EINVAL, "tty and stderr cannot both be true");
        if (!req->use_stdin && !req->use_stdout && !req->use_stderr)
            return hull_error_setx(err, EINVAL, "one of stdin, stdout, or stderr must be set");
        break;
    case STREAM_PORTFORWARD:
        for (size_t i = 0; i < req->n_ports; i++)
            if (req->ports[i] <= 0 || req->ports[i] > 65535)
                return hull_error_setx(err, EINVAL, "invalid port %d", req->ports[i]);
        break;
    default:
        return hull_error_setx(err, EINVAL, "unknown stream kind");
    }
    return 0;
}

static void purge_expired_locked(struct stream_server *s, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].expires_ns <= now) {
            request_free(s->pending[i].req);
            continue;
        }
        s->pending[j++] = s->pending[i];
    }
    s->n_pending = j;
}

static const char *kind_path(enum stream_kind k)
{
    return k == STREAM_EXEC ? "exec" : k == STREAM_ATTACH ? "attach" : "portforward";
}

int stream_server_url(struct stream_server *s, const struct stream_request *req, char **url,
                      hull_error_t *err)
{
    int r = stream_request_validate(req, err);
    if (r < 0)
        return r;
    char id[65];
    hull_id_generate(id);
    id[32] = '\0';
    int64_t now = hull_monotonic_ns();
    pthread_mutex_lock(&s->lock);
    purge_expired_locked(s, now);
    if (s->n_pending >= STREAM_MAX_PENDING) {
        pthread_mutex_unlock(&s->lock);
        return hull_error_setx(err, ENOSPC, "too many pending streaming requests (%d)",
                               STREAM_MAX_PENDING);
    }
    struct pending_token *p = &s->pending[s->n_pending++];
    memcpy(p->token, id, 33);
    p->expires_ns = now + (int64_t)s->token_ttl_s * 1000000000LL;
    p->req = request_copy(req);
    pthread_mutex_unlock(&s->lock);
    *url = xasprintf("%s://%s:%d/%s/%s", s->tls ? "https" : "http", s->url_host, s->port,
                     kind_path(req->kind), id);
    return 0;
}

/* Removes and returns the request behind token (NULL: unknown, used or expired). */
static struct stream_request *token_consume(struct stream_server *s, const char *token)
{
    struct stream_request *req = NULL;
    int64_t now = hull_monotonic_ns();
    pthread_mutex_lock(&s->lock);
    purge_expired_locked(s, now);
    for (size_t i = 0; i < s->n_pending; i++) {
        if (strcmp(s->pending[i].token, token) == 0) {
            req = s->pending[i].req;
            s->pending[i] = s->pending[--s->n_pending];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return req;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

struct http_request {
    char method[16];
    char path[1024];
    char query[1024];
    struct {
        char *name;
        char *value;
    } headers[STREAM_MAX_HEADERS];
    size_t n_headers;
};

static int http_send(struct stream_conn *c, const char *text)
{
    return stream_write_all(c, text, strlen(text), 5000, NULL);
}

static void http_error(struct stream_conn *fd, int code, const char *reason, const char *body)
{
    _cleanup_free_ char *resp = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; "
                                          "charset=utf-8\r\nContent-Length: %zu\r\nConnection: "
                                          "close\r\n\r\n%s",
                                          code, reason, strlen(body), body);
    http_send(fd, resp);
}

/* The first value of a header (case-insensitive name). */
static const char *http_header(const struct http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* True if a comma-separated header (any occurrence) contains token (case-insensitive). */
static bool http_header_has(const struct http_request *r, const char *name, const char *token)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, name) != 0)
            continue;
        _cleanup_free_ char *v = xstrdup(r->headers[i].value);
        char *save = NULL;
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ' || *t == '\t')
                t++;
            size_t l = strlen(t);
            while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
                t[--l] = '\0';
            if (strcasecmp(t, token) == 0)
                return true;
        }
    }
    return false;
}

static void http_request_free(struct http_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->n_headers = 0;
}

/* Reads the request head; leftover bytes (the start of the upgraded protocol) stay in *rest.
 * Returns 0, or an HTTP status to answer with (400, 408, 431). */
static int http_read_request(struct stream_server *s, struct stream_conn *c,
                             struct http_request *req, struct stream_buf *rest)
{
    struct stream_buf b = {0};
    int64_t deadline = hull_monotonic_ns() + 10LL * 1000000000LL;
    int status = 0;
    char *end = NULL;
    for (;;) {
        if (b.len >= 4) {
            stream_buf_append(&b, "", 1);
            b.len--;
            end = strstr((char *)b.data, "\r\n\r\n");
            if (end)
                break;
            if (memchr(b.data, '\0', b.len)) {
                status = 400;
                goto out;
            }
        }
        if (b.len >= STREAM_MAX_REQUEST_HEAD) {
            status = 431;
            goto out;
        }
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        if (left <= 0) {
            status = 408;
            goto out;
        }
        if (!stream_conn_pending(c)) {
            struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                                  {.fd = s->wake_fd, .events = POLLIN}};
            int pr = poll(p, 2, (int)left);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0 || p[1].revents) {
                status = -1;
                goto out;
            }
            if (pr == 0)
                continue;
        }
        uint8_t chunk[4096];
        ssize_t n = stream_conn_recv(c, chunk, sizeof(chunk));
        if (n == -EAGAIN || n == -EINTR)
            continue;
        if (n <= 0) {
            status = -1;
            goto out;
        }
        stream_buf_append(&b, chunk, (size_t)n);
    }
    size_t head_len = (size_t)(end - (char *)b.data) + 4;
    stream_buf_append(rest, b.data + head_len, b.len - head_len);
    *end = '\0';
    char *save = NULL;
    char *line = strtok_r((char *)b.data, "\r\n", &save);
    if (!line) {
        status = 400;
        goto out;
    }
    /* request line: METHOD SP target SP HTTP/1.x */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (size_t)(sp1 - line) >= 16) {
        status = 400;
        goto out;
    }
    memcpy(req->method, line, (size_t)(sp1 - line));
    req->method[sp1 - line] = '\0';
    *sp2 = '\0';
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        snprintf(req->query, sizeof(req->query), "%s", q + 1);
    }
    if (strlen(target) >= sizeof(req->path) || target[0] != '/') {
        status = 400;
        goto out;
    }
    snprintf(req->path, sizeof(req->path), "%s", target);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            status = 400;
            goto out;
        }
        if (req->n_headers >= STREAM_MAX_HEADERS) {
            status = 431;
            goto out;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        req->headers[req->n_headers].name = xstrdup(line);
        req->headers[req->n_headers].value = xstrdup(v);
        req->n_headers++;
    }
out:
    stream_buf_free(&b);
    return status;
}

/* ---- protocol negotiation -------------------------------------------------------------------- */

static const struct stream_protocol spdy_exec_protocols[] = {
    {"v4.channel.k8s.io", SP_JSON_STATUS | SP_RESIZE},
    {"v3.channel.k8s.io", SP_RESIZE},
    {"v2.channel.k8s.io", 0},
    {"channel.k8s.io", 0},
};
static const struct stream_protocol spdy_pf_protocols[] = {
    {"portforward.k8s.io", SP_PORTFORWARD},
};
static const struct stream_protocol ws_exec_protocols[] = {
    {"v5.channel.k8s.io", SP_JSON_STATUS | SP_RESIZE | SP_CLOSE_SIGNAL},
    {"v4.channel.k8s.io", SP_JSON_STATUS | SP_RESIZE},
    {"v4.base64.channel.k8s.io", SP_JSON_STATUS | SP_RESIZE | SP_BASE64},
    {"channel.k8s.io", SP_RESIZE},
    {"base64.channel.k8s.io", SP_RESIZE | SP_BASE64},
};
static const struct stream_protocol ws_pf_protocols[] = {
    {"v4.channel.k8s.io", SP_PORTFORWARD},
    {"v4.base64.channel.k8s.io", SP_PORTFORWARD | SP_BASE64},
    {"portforward.k8s.io", SP_PORTFORWARD},
    {"v4.portforward.k8s.io", SP_PORTFORWARD},
    {"v4.base64.portforward.k8s.io", SP_PORTFORWARD | SP_BASE64},
    {"channel.k8s.io", SP_PORTFORWARD},
    {"base64.channel.k8s.io", SP_PORTFORWARD | SP_BASE64},
};

/* Picks the first protocol the client lists (header may repeat and hold comma lists) that the
 * server supports.  Returns 1 with *out set, 0 when the client sent none, -1 on no match;
 * *offered lists what the client sent (for the error message). */
static int negotiate(const struct http_request *r, const char *header,
                     const struct stream_protocol *table, size_t n,
                     const struct stream_protocol **out, struct stream_buf *offered)
{
    bool any = false;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, header) != 0)
            continue;
        _cleanup_free_ char *v = xstrdup(r->headers[i].value);
        char *save = NULL;
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            size_t l = strlen(t);
            while (l && t[l - 1] == ' ')
                t[--l] = '\0';
            if (!*t)
                continue;
            if (any)
                stream_buf_append(offered, " ", 1);
            stream_buf_append(offered, t, strlen(t));
            any = true;
            for (size_t j = 0; j < n; j++) {
                if (strcmp(t, table[j].name) == 0) {
                    *out = &table[j];
                    return 1;
                }
            }
        }
    }
    return any ? -1 : 0;
}

static void supported_list(const struct stream_protocol *t, size_t n, struct stream_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            stream_buf_append(b, " ", 1);
        stream_buf_append(b, t[i].name, strlen(t[i].name));
    }
}

/* Query parameter values named `name` (port=80&port=8080). */
static size_t query_ports(const char *query, int32_t *ports, size_t max, bool *bad)
{
    size_t n = 0;
    _cleanup_free_ char *q = xstrdup(query);
    char *save = NULL;
    for (char *t = strtok_r(q, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
        if (strncmp(t, "port=", 5) != 0)
            continue;
        char *endp = NULL;
        errno = 0;
        long v = strtol(t + 5, &endp, 10);
        if (errno || endp == t + 5 || *endp || v <= 0 || v > 65535 || n >= max) {
            *bad = true;
            return n;
        }
        ports[n++] = (int32_t)v;
    }
    return n;
}

/* ---- connections ------------------------------------------------------------------------------
 */

struct conn_arg {
    struct stream_server *srv;
    int fd;
    int slot;
};

static void serve_connection(struct stream_server *s, struct stream_conn *fd)
{
    struct http_request hr;
    memset(&hr, 0, sizeof(hr));
    struct stream_buf rest = {0};
    struct stream_request *req = NULL;
    int st = http_read_request(s, fd, &hr, &rest);
    if (st != 0) {
        if (st > 0)
            http_error(fd, st,
                       st == 408   ? "Request Timeout"
                       : st == 431 ? "Request Header Fields Too Large"
                                   : "Bad Request",
                       "bad request\n");
        goto out;
    }
    /* /exec/TOKEN, /attach/TOKEN, /portforward/TOKEN */
    enum stream_kind kind;
    const char *token;
    if (strncmp(hr.path, "/exec/", 6) == 0) {
        kind = STREAM_EXEC;
        token = hr.path + 6;
    } else if (strncmp(hr.path, "/attach/", 8) == 0) {
        kind = STREAM_ATTACH;
        token = hr.path + 8;
    } else if (strncmp(hr.path, "/portforward/", 13) == 0) {
        kind = STREAM_PORTFORWARD;
        token = hr.path + 13;
    } else {
        http_error(fd, 404, "Not Found", "404 page not found\n");
        goto out;
    }
    if (strcmp(hr.method, "GET") != 0 && strcmp(hr.method, "POST") != 0) {
        http_error(fd, 405, "Method Not Allowed", "method not allowed\n");
        goto out;
    }
    req = token_consume(s, token);
    if (req == NULL || req->kind != kind) {
        http_error(fd, 404, "Not Found", "404 page not found\n");
        goto out;
    }

    bool ws = http_header_has(&hr, "Upgrade", "websocket");
    bool spdy = http_header_has(&hr, "Upgrade", "SPDY/3.1");
    if (!http_header_has(&hr, "Connection", "upgrade") || (!ws && !spdy)) {
        http_error(fd, 400, "Bad Request",
                   "unable to upgrade: missing upgrade headers in request\n");
        goto out;
    }
    const struct stream_protocol *table;
    size_t n;
    if (ws)
        table = kind == STREAM_PORTFORWARD ? ws_pf_protocols : ws_exec_protocols,
        n = kind == STREAM_PORTFORWARD ? sizeof(ws_pf_protocols) / sizeof(ws_pf_protocols[0])
                                       : sizeof(ws_exec_protocols) / sizeof(ws_exec_protocols[0]);
    else
        table = kind == STREAM_PORTFORWARD ? spdy_pf_protocols : spdy_exec_protocols,
        n = kind == STREAM_PORTFORWARD
                ? sizeof(spdy_pf_protocols) / sizeof(spdy_pf_protocols[0])
                : sizeof(spdy_exec_protocols) / sizeof(spdy_exec_protocols[0]);
    const struct stream_protocol *proto = NULL;
    struct stream_buf offered = {0};
    int nr = negotiate(&hr, ws ? "Sec-WebSocket-Protocol" : "X-Stream-Protocol-Version", table, n,
                       &proto, &offered);
    if (nr < 0) {
        struct stream_buf sup = {0};
        supported_list(table, n, &sup);
        stream_buf_append(&offered, "", 1);
        stream_buf_append(&sup, "", 1);
        _cleanup_free_ char *msg = xasprintf("unable to upgrade: unable to negotiate protocol: "
                                             "client supports [%s], server supports [%s]\n",
                                             (char *)offered.data, (char *)sup.data);
        stream_buf_free(&sup);
        stream_buf_free(&offered);
        if (ws)
            http_error(fd, 400, "Bad Request", msg);
        else
            http_error(fd, 403, "Forbidden", msg);
        goto out;
    }
    stream_buf_free(&offered);

    struct stream_session_params sp = {
        .backend = &s->backend,
        .conn = fd,
        .wake_fd = s->wake_fd,
        .websocket = ws,
        .protocol = proto,
        .req = req,
        .idle_timeout_s = s->idle_timeout_s,
        .creation_timeout_s = s->creation_timeout_s,
        .initial = &rest,
    };
    int32_t qports[STREAM_MAX_PAIRS];
    if (ws && kind == STREAM_PORTFORWARD) {
        bool bad = false;
        size_t np = query_ports(hr.query, qports, STREAM_MAX_PAIRS, &bad);
        if (bad) {
            http_error(fd, 400, "Bad Request", "invalid port query parameter\n");
            goto out;
        }
        if (np == 0 && req->n_ports > 0) {
            np = req->n_ports > STREAM_MAX_PAIRS ? STREAM_MAX_PAIRS : req->n_ports;
            memcpy(qports, req->ports, np * sizeof(int32_t));
        } else if (req->n_ports > 0) {
            for (size_t i = 0; i < np; i++) {
                bool found = false;
                for (size_t j = 0; j < req->n_ports; j++)
                    found |= req->ports[j] == qports[i];
                if (!found) {
                    http_error(fd, 400, "Bad Request", "port not in the port-forward request\n");
                    goto out;
                }
            }
        }
        if (np == 0) {
            http_error(fd, 400, "Bad Request", "query parameter \"port\" is required\n");
            goto out;
        }
        sp.ws_ports = qports;
        sp.n_ws_ports = np;
    }

    /* 101 */
    struct stream_buf resp = {0};
#define ADD(str) stream_buf_append(&resp, str, strlen(str))
    ADD("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
    if (ws) {
        const char *key = http_header(&hr, "Sec-WebSocket-Key");
        const char *ver = http_header(&hr, "Sec-WebSocket-Version");
        char accept[29];
        if (!key || !ver || strcmp(ver, "13") != 0 || ws_accept_key(key, accept) < 0) {
            stream_buf_free(&resp);
            http_error(fd, 400, "Bad Request", "bad websocket handshake\n");
            goto out;
        }
        ADD("Upgrade: websocket\r\nSec-WebSocket-Accept: ");
        ADD(accept);
        ADD("\r\n");
        if (proto) {
            ADD("Sec-WebSocket-Protocol: ");
            ADD(proto->name);
            ADD("\r\n");
        }
    } else {
        ADD("Upgrade: SPDY/3.1\r\n");
        if (proto) {
            ADD("X-Stream-Protocol-Version: ");
            ADD(proto->name);
            ADD("\r\n");
        }
    }
    ADD("\r\n");
#undef ADD
    int wr = stream_write_all(fd, resp.data, resp.len, 10000, NULL);
    stream_buf_free(&resp);
    if (wr < 0)
        goto out;
    stream_session_run(&sp);
out:
    request_free(req);
    stream_buf_free(&rest);
    http_request_free(&hr);
}

/* Completes the TLS handshake within 10 seconds. */
static int tls_accept(struct stream_server *s, struct stream_conn *c)
{
    SSL *ssl = SSL_new(s->tls);
    if (!ssl)
        return -ENOMEM;
    c->ssl = ssl;
    SSL_set_fd(ssl, c->fd);
    int64_t deadline = hull_monotonic_ns() + 10LL * 1000000000LL;
    for (;;) {
        int r = SSL_accept(ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        int64_t left = (deadline - hull_monotonic_ns()) / 1000000;
        if (!ev || left <= 0) {
            log_debug("stream: TLS handshake failed");
            ERR_clear_error();
            return -EPROTO;
        }
        struct pollfd p[2] = {{.fd = c->fd, .events = ev}, {.fd = s->wake_fd, .events = POLLIN}};
        if (poll(p, 2, (int)left) < 0 && errno != EINTR)
            return -errno;
        if (p[1].revents)
            return -ECANCELED;
    }
}

static void *conn_main(void *arg)
{
    struct conn_arg *a = arg;
    struct stream_server *s = a->srv;
    struct stream_conn c = {.fd = a->fd, .ssl = NULL};
    int slot = a->slot;
    free(a);
    if (!s->tls || tls_accept(s, &c) == 0)
        serve_connection(s, &c);
    if (c.ssl)
        SSL_free(c.ssl);
    pthread_mutex_lock(&s->lock);
    s->conn_fds[slot] = -1;
    close(c.fd);
    s->sessions--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct stream_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->wake_fd, .events = POLLIN}};
        int pr = poll(p, 2, -1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || p[1].revents || atomic_load(&s->stopping))
            break;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&s->lock);
        if (s->sessions >= STREAM_MAX_SESSIONS) {
            pthread_mutex_unlock(&s->lock);
            struct stream_conn pc = {.fd = fd, .ssl = NULL};
            if (!s->tls)
                http_error(&pc, 503, "Service Unavailable", "too many streaming sessions\n");
            close(fd);
            continue;
        }
        s->sessions++;
        int slot = 0;
        while (s->conn_fds[slot] >= 0)
            slot++; /* sessions < STREAM_MAX_SESSIONS: a free slot exists */
        s->conn_fds[slot] = fd;
        pthread_mutex_unlock(&s->lock);
        struct conn_arg *a = xmalloc0(sizeof(*a));
        a->srv = s;
        a->fd = fd;
        a->slot = slot;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1024 * 1024); /* backends run here too */
        pthread_t t;
        int r = pthread_create(&t, &attr, conn_main, a);
        pthread_attr_destroy(&attr);
        if (r != 0) {
            free(a);
            pthread_mutex_lock(&s->lock);
            s->conn_fds[slot] = -1;
            close(fd);
            s->sessions--;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
        }
    }
    return NULL;
}

int stream_server_start(const struct stream_options *o, const struct stream_backend *backend,
                        struct stream_server **out, hull_error_t *err)
{
    SSL_CTX *tls = NULL;
    if (o->tls_cert && o->tls_cert[0]) {
        if (!o->tls_key || !o->tls_key[0])
            return hull_error_setx(err, EINVAL,
                                   "streaming server: stream_tls_key is required "
                                   "with stream_tls_cert");
        tls = SSL_CTX_new(TLS_server_method());
        if (!tls)
            return hull_error_setx(err, ENOMEM, "streaming server: SSL_CTX_new failed");
        SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
        SSL_CTX_set_mode(tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (SSL_CTX_use_certificate_chain_file(tls, o->tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(tls) != 1) {
            char msg[256];
            ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
            ERR_clear_error();
            SSL_CTX_free(tls);
            return hull_error_setx(err, EINVAL, "streaming server: TLS cert %s / key %s: %s",
                                   o->tls_cert, o->tls_key, msg);
        }
    }
    const char *addr = o->address && o->address[0] ? o->address : "127.0.0.1";
    if (o->port < 0 || o->port > 65535)
        return hull_error_setx(err, EINVAL, "streaming server: invalid port %d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", o->port);
    int gr = getaddrinfo(addr, portstr, &hints, &ai);
    if (gr != 0) {
        SSL_CTX_free(tls);
        return hull_error_setx(err, EINVAL, "streaming server: address %s: %s", addr,
                               gai_strerror(gr));
    }
    _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        SSL_CTX_free(tls);
        return hull_error_set(err, errno, "streaming server: socket");
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        SSL_CTX_free(tls);
        return hull_error_set(err, e, "streaming server: bind %s:%d", addr, o->port);
    }
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (listen(fd, 128) < 0) {
        SSL_CTX_free(tls);
        return hull_error_set(err, errno, "streaming server: listen");
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        SSL_CTX_free(tls);
        return hull_error_set(err, errno, "streaming server: getsockname");
    }
    int port = v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);

    struct stream_server *s = xmalloc0(sizeof(*s));
    s->listen_fd = hull_steal_fd(fd);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->backend = *backend;
    s->tls = tls;
    s->url_host = v6 ? xasprintf("[%s]", addr) : xstrdup(addr);
    s->port = port;
    s->idle_timeout_s = o->idle_timeout_s > 0 ? o->idle_timeout_s : 4 * 3600;
    s->creation_timeout_s =
        o->creation_timeout_s > 0 ? o->creation_timeout_s : STREAM_CREATION_TIMEOUT_S;
    s->token_ttl_s = o->token_ttl_s > 0 ? o->token_ttl_s : STREAM_TOKEN_TTL_S;
    s->pending = xmalloc0(sizeof(*s->pending) * STREAM_MAX_PENDING);
    for (int i = 0; i < STREAM_MAX_SESSIONS; i++)
        s->conn_fds[i] = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    atomic_init(&s->stopping, false);
    if (s->wake_fd < 0) {
        int e = errno;
        s->backend.destroy = NULL; /* the caller keeps its data on failure */
        stream_server_stop(s);
        return hull_error_set(err, e, "streaming server: eventfd");
    }
    if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0) {
        s->backend.destroy = NULL;
        stream_server_stop(s);
        return hull_error_setx(err, EAGAIN, "streaming server: cannot start accept thread");
    }
    s->accept_started = true;
    log_info("streaming server listening on %s://%s:%d", tls ? "https" : "http", s->url_host, port);
    *out = s;
    return 0;
}

void stream_server_stop(struct stream_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    if (s->wake_fd >= 0) {
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            log_warn("streaming server: cannot wake sessions: %m");
    }
    if (s->accept_started)
        pthread_join(s->accept_thread, NULL);
    pthread_mutex_lock(&s->lock);
    /* unblock sessions stuck writing to a client that stopped reading */
    for (int i = 0; i < STREAM_MAX_SESSIONS; i++)
        if (s->conn_fds[i] >= 0)
            shutdown(s->conn_fds[i], SHUT_RDWR);
    while (s->sessions > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    purge_expired_locked(s, INT64_MAX);
    pthread_mutex_unlock(&s->lock);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->backend.destroy)
        s->backend.destroy(s->backend.data);
    SSL_CTX_free(s->tls);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->pending);
    free(s->url_host);
    free(s);
}

int stream_server_check(struct stream_server *s, const struct stream_request *req,
                        hull_error_t *err)
{
    if (s->backend.check == NULL)
        return 0;
    return s->backend.check(s->backend.data, req, err);
}

int stream_server_port(const struct stream_server *s)
{
    return s->port;
}

int stream_server_active_sessions(struct stream_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->sessions;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- helpers shared with the session ------------------------------------------------------ */

ssize_t stream_conn_recv(struct stream_conn *c, void *buf, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return -EAGAIN;
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        return -ECONNRESET;
    }
    ssize_t r = recv(c->fd, buf, n, MSG_DONTWAIT);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

bool stream_conn_pending(struct stream_conn *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

void stream_conn_shutdown(struct stream_conn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* close_notify; non-blocking, best effort */
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
}

int stream_write_all(struct stream_conn *c, const void *data, size_t len, int timeout_ms,
                     int64_t *activity)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n;
        short want = POLLOUT;
        if (c->ssl) {
            int r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
            n = r;
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    want = POLLIN;
                else if (e != SSL_ERROR_WANT_WRITE) {
                    ERR_clear_error();
                    return -EPIPE;
                }
                n = -1;
                errno = EAGAIN;
            }
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            if (activity)
                *activity = hull_monotonic_ns();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        struct pollfd pf = {.fd = c->fd, .events = want};
        int pr = poll(&pf, 1, timeout_ms);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Creates the sockets inside the namespace; the thread ends right after, so the setns() never
 * leaks into a thread that does anything else. */
struct nsconn {
    const char *path;
    int fd4;
    int fd6;
    int err;
};

static void *nsconn_main(void *arg)
{
    struct nsconn *c = arg;
    int nsfd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
        c->err = errno;
        return NULL;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
        c->err = errno;
        close(nsfd);
        return NULL;
    }
    close(nsfd);
    c->fd4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd4 < 0 && c->fd6 < 0)
        c->err = errno;
    return NULL;
}

int stream_netns_connect(const char *netns_path, int port, hull_error_t *err)
{
    struct nsconn c = {.path = netns_path, .fd4 = -1, .fd6 = -1, .err = 0};
    pthread_t t;
    if (pthread_create(&t, NULL, nsconn_main, &c) != 0)
        return hull_error_setx(err, EAGAIN, "cannot start the namespace thread");
    pthread_join(t, NULL);
    _cleanup_close_ int fd4 = c.fd4;
    _cleanup_close_ int fd6 = c.fd6;
    if (c.err)
        return hull_error_set(err, c.err, "enter network namespace %s", netns_path);
    int e = ECONNREFUSED;
    if (fd4 >= 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd4, (struct sockaddr *)&a, sizeof(a)) == 0)
            return hull_steal_fd(fd4);
        e = errno;
    }
    if (fd6 >= 0) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        a.sin6_addr = in6addr_loopback;
        if (connect(fd6, (struct sockaddr *)&a, sizeof(a)) == 0)
            return hull_steal_fd(fd6);
        if (fd4 < 0)
            e = errno;
    }
    return hull_error_set(err, e, "dial tcp localhost:%d", port);
}
