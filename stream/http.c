/* HTTP/1.1 on the streaming port: the request head (read and parsed), the upgrade to SPDY/3.1
 * or WebSocket and the subprotocol negotiation; then the session runs on the connection. */
#include "stream/internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>

static int http_send(struct stream_conn *c, const char *text)
{
    return stream_write_all(c, text, strlen(text), 5000, NULL);
}

void stream_http_error(struct stream_conn *fd, int code, const char *reason, const char *body)
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

void stream_http_request_free(struct http_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->n_headers = 0;
}

int stream_http_parse_head(char *head, struct http_request *req)
{
    char *save = NULL;
    char *line = strtok_r(head, "\r\n", &save);
    if (!line)
        return 400;
    /* request line: METHOD SP target SP HTTP/1.x */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (size_t)(sp1 - line) >= 16)
        return 400;
    memcpy(req->method, line, (size_t)(sp1 - line));
    req->method[sp1 - line] = '\0';
    *sp2 = '\0';
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        snprintf(req->query, sizeof(req->query), "%s", q + 1);
    }
    if (strlen(target) >= sizeof(req->path) || target[0] != '/')
        return 400;
    snprintf(req->path, sizeof(req->path), "%s", target);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            return 400;
        if (req->n_headers >= STREAM_MAX_HEADERS)
            return 431;
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
    return 0;
}

/* Reads the request head; leftover bytes (the start of the upgraded protocol) stay in *rest.
 * Returns 0, or an HTTP status to answer with (400, 408, 431). */
static int http_read_request(struct stream_server *s, struct stream_conn *c,
                             struct http_request *req, struct hull_buf *rest, int64_t deadline)
{
    struct hull_buf b = {0};
    int status = 0;
    char *end = NULL;
    for (;;) {
        if (b.len >= 4) {
            hull_buf_add(&b, "", 1);
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
        hull_buf_add(&b, chunk, (size_t)n);
    }
    size_t head_len = (size_t)(end - (char *)b.data) + 4;
    hull_buf_add(rest, b.data + head_len, b.len - head_len);
    *end = '\0';
    status = stream_http_parse_head((char *)b.data, req);
out:
    hull_buf_free(&b);
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
                     const struct stream_protocol **out, struct hull_buf *offered)
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
                hull_buf_add(offered, " ", 1);
            hull_buf_add(offered, t, strlen(t));
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

static void supported_list(const struct stream_protocol *t, size_t n, struct hull_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            hull_buf_add(b, " ", 1);
        hull_buf_add(b, t[i].name, strlen(t[i].name));
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

/* One upgrade request on its way to a session. */
struct upgrade {
    struct http_request hr;
    struct hull_buf rest; /* bytes read past the request head */
    struct stream_request *req;
    enum stream_kind kind;
    const char *token;
    bool ws;
    const struct stream_protocol *table;
    size_t n;
    const struct stream_protocol *proto;
    int32_t qports[STREAM_MAX_PAIRS];
    size_t np;
};

/* Each step below returns 0 to go on, or -1 once it has answered the client with an error. */

static int read_request(struct stream_server *s, struct stream_conn *fd, struct upgrade *u,
                        int64_t deadline_ns)
{
    int st = http_read_request(s, fd, &u->hr, &u->rest, deadline_ns);
    if (st != 0) {
        if (st > 0)
            stream_http_error(fd, st,
                              st == 408   ? "Request Timeout"
                              : st == 431 ? "Request Header Fields Too Large"
                                          : "Bad Request",
                              "bad request\n");
        return -1;
    }
    return 0;
}

/* /exec/TOKEN, /attach/TOKEN, /portforward/TOKEN, by GET or POST */
static int route_request(struct stream_conn *fd, struct upgrade *u)
{
    const char *path = u->hr.path;
    if (strncmp(path, "/exec/", 6) == 0) {
        u->kind = STREAM_EXEC;
        u->token = path + 6;
    } else if (strncmp(path, "/attach/", 8) == 0) {
        u->kind = STREAM_ATTACH;
        u->token = path + 8;
    } else if (strncmp(path, "/portforward/", 13) == 0) {
        u->kind = STREAM_PORTFORWARD;
        u->token = path + 13;
    } else {
        stream_http_error(fd, 404, "Not Found", "404 page not found\n");
        return -1;
    }
    if (strcmp(u->hr.method, "GET") != 0 && strcmp(u->hr.method, "POST") != 0) {
        stream_http_error(fd, 405, "Method Not Allowed", "method not allowed\n");
        return -1;
    }
    return 0;
}

/* An upgrade to WebSocket or SPDY/3.1 */
static int check_upgrade_headers(struct stream_conn *fd, struct upgrade *u)
{
    u->ws = http_header_has(&u->hr, "Upgrade", "websocket");
    bool spdy = http_header_has(&u->hr, "Upgrade", "SPDY/3.1");
    if (!http_header_has(&u->hr, "Connection", "upgrade") || (!u->ws && !spdy)) {
        stream_http_error(fd, 400, "Bad Request",
                          "unable to upgrade: missing upgrade headers in request\n");
        return -1;
    }
    return 0;
}

/* The subprotocol from the table of the transport and kind */
static int choose_protocol(struct stream_conn *fd, struct upgrade *u)
{
    bool pf = u->kind == STREAM_PORTFORWARD;
    if (u->ws)
        u->table = pf ? ws_pf_protocols : ws_exec_protocols,
        u->n = pf ? sizeof(ws_pf_protocols) / sizeof(ws_pf_protocols[0])
                  : sizeof(ws_exec_protocols) / sizeof(ws_exec_protocols[0]);
    else
        u->table = pf ? spdy_pf_protocols : spdy_exec_protocols,
        u->n = pf ? sizeof(spdy_pf_protocols) / sizeof(spdy_pf_protocols[0])
                  : sizeof(spdy_exec_protocols) / sizeof(spdy_exec_protocols[0]);
    struct hull_buf offered = {0};
    int nr = negotiate(&u->hr, u->ws ? "Sec-WebSocket-Protocol" : "X-Stream-Protocol-Version",
                       u->table, u->n, &u->proto, &offered);
    if (nr < 0) {
        struct hull_buf sup = {0};
        supported_list(u->table, u->n, &sup);
        hull_buf_add(&offered, "", 1);
        hull_buf_add(&sup, "", 1);
        _cleanup_free_ char *msg = xasprintf("unable to upgrade: unable to negotiate protocol: "
                                             "client supports [%s], server supports [%s]\n",
                                             (char *)offered.data, (char *)sup.data);
        hull_buf_free(&sup);
        hull_buf_free(&offered);
        if (u->ws)
            stream_http_error(fd, 400, "Bad Request", msg);
        else
            stream_http_error(fd, 403, "Forbidden", msg);
        return -1;
    }
    hull_buf_free(&offered);
    return 0;
}

/* The Sec-WebSocket-Accept value of a version 13 handshake; -1 if the handshake is bad. */
static int ws_handshake_accept(const struct upgrade *u, char accept[29])
{
    const char *key = http_header(&u->hr, "Sec-WebSocket-Key");
    const char *ver = http_header(&u->hr, "Sec-WebSocket-Version");
    if (!key || !ver || strcmp(ver, "13") != 0 || ws_accept_key(key, accept) < 0)
        return -1;
    return 0;
}

/* A WebSocket request carries a valid handshake (checked before the token is used up) */
static int check_ws_handshake(struct stream_conn *fd, struct upgrade *u)
{
    char accept[29];
    if (u->ws && ws_handshake_accept(u, accept) < 0) {
        stream_http_error(fd, 400, "Bad Request", "bad websocket handshake\n");
        return -1;
    }
    return 0;
}

/* Use up the token: the request it stands for */
static int authorize(struct stream_server *s, int slot, struct stream_conn *fd, struct upgrade *u)
{
    int ar = stream_server_authorize(s, slot, u->token, u->kind, &u->req);
    if (ar == -EBUSY) {
        stream_http_error(fd, 503, "Service Unavailable", "too many streaming sessions\n");
        return -1;
    }
    if (ar < 0) {
        stream_http_error(fd, 404, "Not Found", "404 page not found\n");
        return -1;
    }
    return 0;
}

/* WebSocket port forwarding: the ports of the query, among those of the request */
static int pick_ws_ports(struct stream_conn *fd, struct upgrade *u)
{
    if (!u->ws || u->kind != STREAM_PORTFORWARD)
        return 0;
    const struct stream_request *req = u->req;
    bool bad = false;
    size_t np = query_ports(u->hr.query, u->qports, STREAM_MAX_PAIRS, &bad);
    if (bad) {
        stream_http_error(fd, 400, "Bad Request", "invalid port query parameter\n");
        return -1;
    }
    if (np == 0 && req->n_ports > 0) {
        np = req->n_ports > STREAM_MAX_PAIRS ? STREAM_MAX_PAIRS : req->n_ports;
        memcpy(u->qports, req->ports, np * sizeof(int32_t));
    } else if (req->n_ports > 0) {
        for (size_t i = 0; i < np; i++) {
            bool found = false;
            for (size_t j = 0; j < req->n_ports; j++)
                found |= req->ports[j] == u->qports[i];
            if (!found) {
                stream_http_error(fd, 400, "Bad Request", "port not in the port-forward request\n");
                return -1;
            }
        }
    }
    if (np == 0) {
        stream_http_error(fd, 400, "Bad Request", "query parameter \"port\" is required\n");
        return -1;
    }
    u->np = np;
    return 0;
}

/* 101 Switching Protocols with the chosen subprotocol */
static int send_switching_protocols(struct stream_conn *fd, struct upgrade *u)
{
    struct hull_buf resp = {0};
#define ADD(str) hull_buf_add(&resp, str, strlen(str))
    ADD("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
    if (u->ws) {
        char accept[29];
        if (ws_handshake_accept(u, accept) < 0) {
            hull_buf_free(&resp);
            stream_http_error(fd, 400, "Bad Request", "bad websocket handshake\n");
            return -1;
        }
        ADD("Upgrade: websocket\r\nSec-WebSocket-Accept: ");
        ADD(accept);
        ADD("\r\n");
        if (u->proto) {
            ADD("Sec-WebSocket-Protocol: ");
            ADD(u->proto->name);
            ADD("\r\n");
        }
    } else {
        ADD("Upgrade: SPDY/3.1\r\n");
        if (u->proto) {
            ADD("X-Stream-Protocol-Version: ");
            ADD(u->proto->name);
            ADD("\r\n");
        }
    }
    ADD("\r\n");
#undef ADD
    int wr = stream_write_all(fd, resp.data, resp.len, 10000, NULL);
    hull_buf_free(&resp);
    return wr < 0 ? -1 : 0;
}

static void run_session(struct stream_server *s, struct stream_conn *fd, struct upgrade *u)
{
    struct stream_session_params sp = {
        .backend = &s->backend,
        .conn = fd,
        .wake_fd = s->wake_fd,
        .websocket = u->ws,
        .protocol = u->proto,
        .req = u->req,
        .idle_timeout_s = s->idle_timeout_s,
        .creation_timeout_s = s->creation_timeout_s,
        .initial = &u->rest,
    };
    if (u->ws && u->kind == STREAM_PORTFORWARD) {
        sp.ws_ports = u->qports;
        sp.n_ws_ports = u->np;
    }
    stream_session_run(&sp);
}

void stream_serve_connection(struct stream_server *s, struct stream_conn *fd, int slot,
                             int64_t deadline_ns)
{
    struct upgrade u;
    memset(&u, 0, sizeof(u));
    if (read_request(s, fd, &u, deadline_ns) == 0 && route_request(fd, &u) == 0 &&
        check_upgrade_headers(fd, &u) == 0 && choose_protocol(fd, &u) == 0 &&
        check_ws_handshake(fd, &u) == 0 && authorize(s, slot, fd, &u) == 0 &&
        pick_ws_ports(fd, &u) == 0 && send_switching_protocols(fd, &u) == 0)
        run_session(s, fd, &u);
    stream_request_free(u.req);
    hull_buf_free(&u.rest);
    stream_http_request_free(&u.hr);
}
