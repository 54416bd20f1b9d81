/* One upgraded streaming connection: SPDY/3.1 or WebSocket framing carrying either a
 * remotecommand session (exec/attach: stdin, stdout, stderr, error, resize) or a port-forward
 * session (data/error pairs).  Single-threaded: one poll loop over the connection, the
 * process's fds (or its monitor's attach socket) and the port-forward targets. */
#include "stream/internal.h"
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum role {
    R_NONE = 0,
    R_STDIN,
    R_STDOUT,
    R_STDERR,
    R_ERROR,
    R_RESIZE,
    R_PF_DATA,
    R_PF_ERROR,
    R_COUNT
};

enum { SPDY_PROTOCOL_ERROR = 1, SPDY_INVALID_STREAM = 2, SPDY_REFUSED_STREAM = 3 };

#define IN_CAP              (STREAM_MAX_FRAME + 64)
#define WRITE_TIMEOUT_MS    60000
#define SPDY_DEFAULT_WINDOW 65536

struct chan {
    bool used;
    int role;
    uint32_t id; /* SPDY stream id or WebSocket channel number */
    bool remote_fin;
    bool local_fin;
    bool reset;
    int64_t window;
    uint32_t unacked;
    int pair;
};

struct pair {
    bool used;
    bool done;
    int64_t created_ns;
    char *request_id;
    int port;
    int data_ch;
    int err_ch;
    int fd;
    bool started;
    bool target_eof;
    bool client_fin;
    bool shut_wr;
    struct hull_buf to_target;
};

struct session {
    const struct stream_session_params *p;
    const struct stream_request *req;
    int fd;
    bool ws;
    unsigned flags;
    struct hull_buf in;
    struct hull_buf out;
    int64_t activity;
    bool dead;      /* the connection is unusable or we gave up on it */
    bool peer_done; /* the peer closed, said GOAWAY or sent a WebSocket close */
    bool fatal;     /* protocol error: answer sent, stop */
    /* SPDY */
    struct spdy_zlib z;
    bool z_ok;
    uint32_t last_id;
    bool flow_control;
    int64_t init_window;
    /* WebSocket */
    struct hull_buf msg;
    uint8_t msg_op;
    bool in_msg;
    bool close_sent;
    struct chan ch[STREAM_MAX_CHANS];
    int role_ch[R_COUNT];
    /* exec / attach */
    struct stream_process proc;
    bool started;
    struct hull_buf to_stdin;
    bool stdin_eof;
    bool stdin_closed;
    bool out_done, err_done, attach_done, exit_ready, exited;
    int exit_code;
    bool have_size, size_dirty;
    struct stream_winsize size;
    struct hull_buf resize_pending;
    char *error;
    /* port-forward */
    struct pair pairs[STREAM_MAX_PAIRS];
    char *netns;
    char *netns_error;
    uint8_t *scratch; /* SCRATCH bytes: keeps large buffers off the thread stack */
};

#define SCRATCH                                                                                    \
    (HULL_CONMON_PKT_MAX + 1 > STREAM_READ_CHUNK ? HULL_CONMON_PKT_MAX + 1 : STREAM_READ_CHUNK)

/* ---- output -------------------------------------------------------------------------------- */

static void flush(struct session *s)
{
    if (s->dead || s->out.len == 0) {
        s->out.len = 0;
        return;
    }
    int r = stream_write_all(s->p->conn, s->out.data, s->out.len, WRITE_TIMEOUT_MS, &s->activity);
    s->out.len = 0;
    if (r < 0)
        s->dead = true;
}

static void spdy_control(struct session *s, uint16_t type, uint8_t flags, const void *payload,
                         uint32_t len)
{
    spdy_put_control(&s->out, type, flags, payload, len);
    flush(s);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void spdy_rst(struct session *s, uint32_t id, uint32_t status)
{
    uint8_t p[8];
    put_be32(p, id & 0x7fffffffu);
    put_be32(p + 4, status);
    spdy_control(s, SPDY_RST_STREAM, 0, p, 8);
}

static void spdy_goaway(struct session *s, uint32_t status)
{
    uint8_t p[8];
    put_be32(p, s->last_id);
    put_be32(p + 4, status);
    spdy_control(s, SPDY_GOAWAY, 0, p, 8);
}

static void ws_close(struct session *s, uint16_t code, const char *reason)
{
    if (s->close_sent)
        return;
    uint8_t p[125];
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 120)
        rl = 120;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rl)
        memcpy(p + 2, reason, rl);
    ws_put_frame(&s->out, WS_CLOSE, true, NULL, p, 2 + rl);
    flush(s);
    s->close_sent = true;
}

static void send_chan(struct session *s, int ci, const void *data, size_t len)
{
    if (ci < 0 || s->dead)
        return;
    struct chan *c = &s->ch[ci];
    if (!c->used || c->local_fin || c->reset)
        return;
    if (s->ws) {
        if (s->flags & SP_BASE64) {
            char *tmp = xmalloc0(2 + 4 * (len / 3 + 1) + 1);
            tmp[0] = (char)('0' + c->id);
            size_t n = hull_base64_encode_to(data, len, tmp + 1);
            ws_put_frame(&s->out, WS_TEXT, true, NULL, tmp, n + 1);
            free(tmp);
        } else {
            uint8_t *tmp = xmalloc0(len + 1);
            tmp[0] = (uint8_t)c->id;
            if (len)
                memcpy(tmp + 1, data, len);
            ws_put_frame(&s->out, WS_BINARY, true, NULL, tmp, len + 1);
            free(tmp);
        }
    } else {
        spdy_put_data(&s->out, c->id, 0, data, (uint32_t)len);
        c->window -= (int64_t)len;
    }
    flush(s);
}

static void close_chan(struct session *s, int ci)
{
    if (ci < 0)
        return;
    struct chan *c = &s->ch[ci];
    if (!c->used || c->local_fin)
        return;
    c->local_fin = true;
    if (!s->ws && !c->reset) {
        spdy_put_data(&s->out, c->id, SPDY_FLAG_FIN, NULL, 0);
        flush(s);
    }
}

/* How many bytes may go out on channel ci now (reading a source only this much). */
static size_t send_quota(struct session *s, int ci)
{
    if (ci < 0 || s->ws || !s->flow_control)
        return STREAM_READ_CHUNK;
    struct chan *c = &s->ch[ci];
    if (!c->used || c->local_fin || c->reset)
        return STREAM_READ_CHUNK; /* output is dropped */
    if (c->window <= 0)
        return 0;
    return c->window < STREAM_READ_CHUNK ? (size_t)c->window : STREAM_READ_CHUNK;
}

static int chan_alloc(struct session *s, int role, uint32_t id, int pair)
{
    for (int i = 0; i < STREAM_MAX_CHANS; i++) {
        if (!s->ch[i].used) {
            memset(&s->ch[i], 0, sizeof(s->ch[i]));
            s->ch[i].used = true;
            s->ch[i].role = role;
            s->ch[i].id = id;
            s->ch[i].window = s->init_window;
            s->ch[i].pair = pair;
            return i;
        }
    }
    return -1;
}

static int chan_find(struct session *s, uint32_t id)
{
    for (int i = 0; i < STREAM_MAX_CHANS; i++)
        if (s->ch[i].used && s->ch[i].id == id)
            return i;
    return -1;
}

/* ---- port-forward pairs ------------------------------------------------------------------- */

static void pair_finish(struct session *s, int pi)
{
    struct pair *p = &s->pairs[pi];
    if (!p->used || p->done)
        return;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    close_chan(s, p->data_ch);
    close_chan(s, p->err_ch);
    hull_buf_free(&p->to_target);
    p->done = true;
    if (!s->ws) {
        /* SPDY: free the slots; late frames for these ids are ignored. */
        if (p->data_ch >= 0)
            s->ch[p->data_ch].used = false;
        if (p->err_ch >= 0)
            s->ch[p->err_ch].used = false;
        free(p->request_id);
        memset(p, 0, sizeof(*p));
        p->fd = -1;
    }
}

static void pair_error(struct session *s, int pi, const char *msg)
{
    struct pair *p = &s->pairs[pi];
    log_debug("port-forward: %s", msg);
    send_chan(s, p->err_ch, msg, strlen(msg));
    pair_finish(s, pi);
}

static void pair_start(struct session *s, int pi)
{
    struct pair *p = &s->pairs[pi];
    p->started = true;
    char msg[512];
    if (p->port <= 0 || p->port > 65535) {
        snprintf(msg, sizeof(msg), "invalid port: %d", p->port);
        pair_error(s, pi, msg);
        return;
    }
    if (s->req->n_ports > 0) {
        bool found = false;
        for (size_t i = 0; i < s->req->n_ports; i++)
            found |= s->req->ports[i] == p->port;
        if (!found) {
            snprintf(msg, sizeof(msg), "port %d was not requested for pod %s", p->port, s->req->id);
            pair_error(s, pi, msg);
            return;
        }
    }
    if (!s->netns && !s->netns_error) {
        _cleanup_error_ hull_error_t e = NULL;
        char *path = NULL;
        int r = s->p->backend->netns_path
                    ? s->p->backend->netns_path(s->p->backend->data, s->req->id, &path, &e)
                    : hull_error_setx(&e, ENOSYS, "port-forward is not supported");
        if (r < 0)
            s->netns_error = xstrdup(hull_error_msg(&e));
        else
            s->netns = path;
    }
    if (s->netns_error) {
        snprintf(msg, sizeof(msg), "error forwarding port %d to pod %s: %s", p->port, s->req->id,
                 s->netns_error);
        pair_error(s, pi, msg);
        return;
    }
    _cleanup_error_ hull_error_t e = NULL;
    int fd = stream_netns_connect(s->netns, p->port, &e);
    if (fd < 0) {
        snprintf(msg, sizeof(msg), "error forwarding port %d to pod %s, uid : %s", p->port,
                 s->req->id, hull_error_msg(&e));
        pair_error(s, pi, msg);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    p->fd = fd;
}

static int pair_alloc(struct session *s)
{
    for (int i = 0; i < STREAM_MAX_PAIRS; i++) {
        if (!s->pairs[i].used) {
            memset(&s->pairs[i], 0, sizeof(s->pairs[i]));
            s->pairs[i].used = true;
            s->pairs[i].created_ns = hull_monotonic_ns();
            s->pairs[i].fd = -1;
            s->pairs[i].data_ch = s->pairs[i].err_ch = -1;
            return i;
        }
    }
    return -1;
}

/* ---- input dispatch ------------------------------------------------------------------------ */

/* Opens the peer's send window again for n consumed bytes (SPDY flow control; receivers that
 * ignore windows are held back by not reading the socket while a sink is full). */
static void ack(struct session *s, int ci, size_t n)
{
    if (s->ws || ci < 0 || n == 0)
        return;
    struct chan *c = &s->ch[ci];
    if (!c->used || c->remote_fin || c->reset)
        return;
    c->unacked += (uint32_t)n;
    if (c->unacked >= SPDY_DEFAULT_WINDOW / 2) {
        uint8_t w[8];
        put_be32(w, c->id);
        put_be32(w + 4, c->unacked);
        spdy_control(s, SPDY_WINDOW_UPDATE, 0, w, 8);
        c->unacked = 0;
    }
}

static bool sink_full(struct session *s, int ci)
{
    if (ci < 0)
        return false;
    struct chan *c = &s->ch[ci];
    if (c->role == R_STDIN)
        return s->to_stdin.len >= STREAM_BUF_LIMIT;
    if (c->role == R_PF_DATA && c->pair >= 0)
        return s->pairs[c->pair].to_target.len >= STREAM_BUF_LIMIT;
    return false;
}

static bool any_sink_full(struct session *s)
{
    if (s->to_stdin.len >= STREAM_BUF_LIMIT)
        return true;
    for (int i = 0; i < STREAM_MAX_PAIRS; i++)
        if (s->pairs[i].used && s->pairs[i].to_target.len >= STREAM_BUF_LIMIT)
            return true;
    return false;
}

static void deliver(struct session *s, int ci, const uint8_t *d, size_t len)
{
    struct chan *c = &s->ch[ci];
    switch (c->role) {
    case R_STDIN:
        if (!s->stdin_eof && !s->stdin_closed)
            hull_buf_add(&s->to_stdin, d, len);
        break;
    case R_RESIZE: {
        struct stream_winsize sz;
        int r = stream_resize_feed(&s->resize_pending, d, len, &sz);
        while (r == 1) {
            s->size = sz;
            s->have_size = s->size_dirty = true;
            r = stream_resize_feed(&s->resize_pending, NULL, 0, &sz);
        }
        if (r < 0) {
            log_debug("stream: bad resize event dropped");
            s->resize_pending.len = 0;
        }
        break;
    }
    case R_PF_DATA: {
        if (c->pair < 0)
            break;
        struct pair *p = &s->pairs[c->pair];
        if (p->used && !p->done && !p->shut_wr)
            hull_buf_add(&p->to_target, d, len);
        break;
    }
    default:
        break; /* nothing reads what clients send on output streams */
    }
}

static void on_fin(struct session *s, int ci)
{
    struct chan *c = &s->ch[ci];
    c->remote_fin = true;
    if (c->role == R_STDIN)
        s->stdin_eof = true;
    else if (c->role == R_PF_DATA && c->pair >= 0)
        s->pairs[c->pair].client_fin = true;
}

static void on_reset(struct session *s, int ci)
{
    struct chan *c = &s->ch[ci];
    c->reset = c->remote_fin = true;
    if (c->role == R_STDIN)
        s->stdin_eof = true;
    else if ((c->role == R_PF_DATA || c->role == R_PF_ERROR) && c->pair >= 0)
        pair_finish(s, c->pair);
}

static int role_of(const char *type)
{
    static const struct {
        const char *name;
        int role;
    } map[] = {{"stdin", R_STDIN}, {"stdout", R_STDOUT}, {"stderr", R_STDERR},
               {"error", R_ERROR}, {"resize", R_RESIZE}, {"data", R_PF_DATA}};
    for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(type, map[i].name) == 0)
            return map[i].role;
    return R_NONE;
}

/* A new SPDY stream: returns the channel index, or -1 to refuse it. */
static int on_syn(struct session *s, uint32_t id, const struct spdy_header *h, size_t n)
{
    const char *type = spdy_header_get(h, n, "streamtype");
    if (s->flags & SP_PORTFORWARD) {
        int role = type && strcmp(type, "error") == 0  ? R_PF_ERROR
                   : type && strcmp(type, "data") == 0 ? R_PF_DATA
                                                       : R_NONE;
        if (role == R_NONE)
            return -1;
        const char *port = spdy_header_get(h, n, "port");
        char idbuf[16];
        const char *rid = spdy_header_get(h, n, "requestid");
        if (!rid) {
            /* old clients: the data stream follows its error stream */
            snprintf(idbuf, sizeof(idbuf), "%u", role == R_PF_ERROR ? id : id - 2);
            rid = idbuf;
        }
        int pi = -1;
        for (int i = 0; i < STREAM_MAX_PAIRS; i++)
            if (s->pairs[i].used && !s->pairs[i].done && s->pairs[i].request_id &&
                strcmp(s->pairs[i].request_id, rid) == 0)
                pi = i;
        if (pi < 0) {
            pi = pair_alloc(s);
            if (pi < 0)
                return -1;
            s->pairs[pi].request_id = xstrdup(rid);
            char *end = NULL;
            long pv = port ? strtol(port, &end, 10) : 0;
            s->pairs[pi].port = (port && end && !*end && pv > 0 && pv <= 65535) ? (int)pv : 0;
        }
        struct pair *p = &s->pairs[pi];
        if ((role == R_PF_DATA && p->data_ch >= 0) || (role == R_PF_ERROR && p->err_ch >= 0))
            return -1;
        int ci = chan_alloc(s, role, id, pi);
        if (ci < 0) {
            if (p->data_ch < 0 && p->err_ch < 0) {
                free(p->request_id);
                memset(p, 0, sizeof(*p));
                p->fd = -1;
            }
            return -1;
        }
        if (role == R_PF_DATA)
            p->data_ch = ci;
        else
            p->err_ch = ci;
        return ci;
    }
    int role = role_of(type);
    if (role == R_NONE || role == R_PF_DATA || s->started || s->role_ch[role] >= 0)
        return -1;
    int ci = chan_alloc(s, role, id, -1);
    if (ci >= 0)
        s->role_ch[role] = ci;
    return ci;
}

static void after_syn(struct session *s, int ci)
{
    struct chan *c = &s->ch[ci];
    if (c->pair < 0)
        return;
    struct pair *p = &s->pairs[c->pair];
    if (!p->started && p->data_ch >= 0 && p->err_ch >= 0)
        pair_start(s, c->pair);
}

static int spdy_fatal(struct session *s, const char *why)
{
    log_debug("stream: spdy protocol error: %s", why);
    spdy_goaway(s, SPDY_PROTOCOL_ERROR);
    s->fatal = true;
    return -EPROTO;
}

/* SYN_STREAM: a new stream from the client, answered by SYN_REPLY (or refused by RST). */
static int spdy_syn_stream(struct session *s, const struct spdy_frame *f)
{
    const uint8_t *p = f->payload;
    uint32_t len = f->length;
    _cleanup_error_ hull_error_t e = NULL;
    if (len < 10)
        return spdy_fatal(s, "short SYN_STREAM");
    uint32_t id = get_be32(p) & 0x7fffffffu;
    struct spdy_header *h = NULL;
    size_t n = 0;
    if (spdy_headers_decode(&s->z, p + 10, len - 10, &h, &n, &e) < 0)
        return spdy_fatal(s, hull_error_msg(&e));
    if (id == 0 || (id % 2) == 0 || id <= s->last_id) {
        spdy_headers_free(h, n);
        return spdy_fatal(s, "bad stream id");
    }
    s->last_id = id;
    int ci = on_syn(s, id, h, n);
    spdy_headers_free(h, n);
    if (ci < 0) {
        spdy_rst(s, id, SPDY_REFUSED_STREAM);
        return 0;
    }
    struct hull_buf reply = {0};
    uint8_t idb[4];
    put_be32(idb, id);
    hull_buf_add(&reply, idb, 4);
    if (spdy_headers_encode(&s->z, NULL, 0, &reply, &e) < 0) {
        hull_buf_free(&reply);
        s->dead = true;
        return -EIO;
    }
    spdy_control(s, SPDY_SYN_REPLY, 0, reply.data, (uint32_t)reply.len);
    hull_buf_free(&reply);
    if (f->flags & SPDY_FLAG_FIN)
        on_fin(s, ci);
    after_syn(s, ci);
    return 0;
}

/* SYN_REPLY, HEADERS: decoded (the compression state must follow) and dropped. */
static int spdy_header_frame(struct session *s, const struct spdy_frame *f)
{
    _cleanup_error_ hull_error_t e = NULL;
    if (f->length < 4)
        return spdy_fatal(s, "short header frame");
    struct spdy_header *h = NULL;
    size_t n = 0;
    if (spdy_headers_decode(&s->z, f->payload + 4, f->length - 4, &h, &n, &e) < 0)
        return spdy_fatal(s, hull_error_msg(&e));
    spdy_headers_free(h, n);
    return 0;
}

static int spdy_rst_stream(struct session *s, const struct spdy_frame *f)
{
    if (f->length < 8)
        return spdy_fatal(s, "short RST_STREAM");
    int ci = chan_find(s, get_be32(f->payload) & 0x7fffffffu);
    if (ci >= 0)
        on_reset(s, ci);
    return 0;
}

/* SETTINGS: only INITIAL_WINDOW_SIZE matters, and turns flow control on. */
static int spdy_settings(struct session *s, const struct spdy_frame *f)
{
    const uint8_t *p = f->payload;
    uint32_t len = f->length;
    if (len < 4)
        return spdy_fatal(s, "short SETTINGS");
    uint32_t count = get_be32(p);
    if ((uint64_t)count * 8 > len - 4)
        return spdy_fatal(s, "bad SETTINGS");
    for (uint32_t i = 0; i < count; i++) {
        uint32_t idf = get_be32(p + 4 + 8 * i) & 0xffffffu;
        uint32_t val = get_be32(p + 8 + 8 * i);
        if (idf == 7 && val <= 0x7fffffffu) { /* INITIAL_WINDOW_SIZE */
            int64_t delta = (int64_t)val - s->init_window;
            s->init_window = val;
            for (int k = 0; k < STREAM_MAX_CHANS; k++)
                if (s->ch[k].used)
                    s->ch[k].window += delta;
            s->flow_control = true;
        }
    }
    return 0;
}

static int spdy_window_update(struct session *s, const struct spdy_frame *f)
{
    if (f->length < 8)
        return spdy_fatal(s, "short WINDOW_UPDATE");
    uint32_t id = get_be32(f->payload) & 0x7fffffffu;
    uint32_t delta = get_be32(f->payload + 4) & 0x7fffffffu;
    if (id == 0 || delta == 0)
        return 0; /* session window (3.1): we bound buffers instead */
    s->flow_control = true;
    int ci = chan_find(s, id);
    if (ci >= 0)
        s->ch[ci].window += delta;
    return 0;
}

static int spdy_control_frame(struct session *s, const struct spdy_frame *f)
{
    switch (f->type) {
    case SPDY_SYN_STREAM:
        return spdy_syn_stream(s, f);
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        return spdy_header_frame(s, f);
    case SPDY_RST_STREAM:
        return spdy_rst_stream(s, f);
    case SPDY_SETTINGS:
        return spdy_settings(s, f);
    case SPDY_PING:
        if (f->length != 4)
            return spdy_fatal(s, "bad PING");
        spdy_control(s, SPDY_PING, 0, f->payload, 4);
        return 0;
    case SPDY_GOAWAY:
        s->peer_done = true;
        return 0;
    case SPDY_WINDOW_UPDATE:
        return spdy_window_update(s, f);
    default:
        return 0; /* unknown control frames are ignored (spec) */
    }
}

static void spdy_data_frame(struct session *s, int ci, const struct spdy_frame *f)
{
    if (ci < 0) {
        if (f->stream_id == 0 || f->stream_id > s->last_id)
            spdy_rst(s, f->stream_id, SPDY_INVALID_STREAM);
        return; /* a stream we already closed */
    }
    struct chan *c = &s->ch[ci];
    if (f->length) {
        deliver(s, ci, f->payload, f->length);
        /* stdin and port-forward data are acknowledged once they left our buffer */
        if (c->role != R_STDIN && c->role != R_PF_DATA)
            ack(s, ci, f->length);
    }
    if (f->flags & SPDY_FLAG_FIN)
        on_fin(s, ci);
}

/* While a data frame waits for its sink to drain, the flow-control frames queued behind it
 * (WINDOW_UPDATE, PING, SETTINGS) are handled and removed at once: the window updates are what
 * lets our output, and so the process, go on. */
static void spdy_hoist_control(struct session *s, size_t from)
{
    size_t off = from;
    while (!s->dead && !s->fatal) {
        struct spdy_frame f;
        ssize_t n = spdy_frame_parse(s->in.data + off, s->in.len - off, STREAM_MAX_FRAME, &f);
        if (n <= 0)
            return;
        if (f.control && f.version == 3 &&
            (f.type == SPDY_WINDOW_UPDATE || f.type == SPDY_PING || f.type == SPDY_SETTINGS)) {
            struct spdy_frame copy = f;
            uint8_t payload[64];
            if (f.length > sizeof(payload)) { /* SETTINGS can be long: leave it in order */
                off += (size_t)n;
                continue;
            }
            memcpy(payload, f.payload, f.length);
            copy.payload = payload;
            memmove(s->in.data + off, s->in.data + off + n, s->in.len - off - (size_t)n);
            s->in.len -= (size_t)n;
            spdy_control_frame(s, &copy);
            continue;
        }
        off += (size_t)n;
    }
}

static void spdy_input(struct session *s)
{
    size_t off = 0;
    while (!s->dead && !s->fatal) {
        struct spdy_frame f;
        ssize_t n = spdy_frame_parse(s->in.data + off, s->in.len - off, STREAM_MAX_FRAME, &f);
        if (n == -EMSGSIZE) {
            spdy_fatal(s, "frame too large");
            break;
        }
        if (n <= 0)
            break;
        if (!f.control) {
            int ci = chan_find(s, f.stream_id);
            if (sink_full(s, ci) && f.length > 0) {
                spdy_hoist_control(s, off + (size_t)n);
                break; /* resume once the sink drained */
            }
            off += (size_t)n;
            spdy_data_frame(s, ci, &f);
            continue;
        }
        off += (size_t)n;
        if (f.version != 3) {
            spdy_fatal(s, "unsupported version");
            break;
        }
        if (spdy_control_frame(s, &f) < 0)
            break;
    }
    hull_buf_consume(&s->in, off);
}

static void ws_message(struct session *s, const uint8_t *d, size_t len)
{
    if (len == 0)
        return;
    int chn = d[0];
    const uint8_t *payload = d + 1;
    size_t plen = len - 1;
    _cleanup_free_ uint8_t *decoded = NULL;
    if (s->flags & SP_BASE64) {
        chn = d[0] - '0';
        decoded = xmalloc0(plen + 3);
        ssize_t dl = hull_base64_decode((const char *)payload, plen, decoded, false);
        if (dl < 0) {
            log_debug("stream: bad base64 message dropped");
            return;
        }
        payload = decoded;
        plen = (size_t)dl;
    }
    if ((s->flags & SP_CLOSE_SIGNAL) && chn == 255) {
        if (plen != 1)
            return;
        int ci = chan_find(s, payload[0]);
        if (ci >= 0)
            on_fin(s, ci);
        return;
    }
    if (chn < 0)
        return;
    int ci = chan_find(s, (uint32_t)chn);
    if (ci >= 0)
        deliver(s, ci, payload, plen);
}

static void ws_fatal(struct session *s, uint16_t code, const char *why)
{
    log_debug("stream: websocket protocol error: %s", why);
    ws_close(s, code, why);
    s->fatal = true;
}

static void ws_input(struct session *s)
{
    size_t off = 0;
    while (!s->dead && !s->fatal && !s->peer_done) {
        struct ws_frame f;
        ssize_t n = ws_frame_parse(s->in.data + off, s->in.len - off, STREAM_MAX_FRAME, &f);
        if (n == -EMSGSIZE) {
            ws_fatal(s, 1009, "message too big");
            break;
        }
        if (n < 0) {
            ws_fatal(s, 1002, "bad frame");
            break;
        }
        if (n == 0)
            break;
        if (!f.masked) {
            ws_fatal(s, 1002, "unmasked client frame");
            break;
        }
        if (f.opcode < WS_CLOSE && any_sink_full(s))
            break;
        off += (size_t)n;
        uint8_t *pl = (uint8_t *)f.payload;
        for (uint64_t i = 0; i < f.length; i++)
            pl[i] ^= f.mask[i & 3];
        switch (f.opcode) {
        case WS_PING:
            ws_put_frame(&s->out, WS_PONG, true, NULL, pl, f.length);
            flush(s);
            break;
        case WS_PONG:
            break;
        case WS_CLOSE: {
            uint16_t code = f.length >= 2 ? (uint16_t)((pl[0] << 8) | pl[1]) : 1000;
            ws_close(s, code, NULL);
            s->peer_done = true;
            break;
        }
        case WS_TEXT:
        case WS_BINARY:
            if (s->in_msg) {
                ws_fatal(s, 1002, "data frame inside a fragmented message");
                break;
            }
            if (f.fin) {
                ws_message(s, pl, f.length);
            } else {
                s->in_msg = true;
                s->msg.len = 0;
                hull_buf_add(&s->msg, pl, f.length);
            }
            break;
        case WS_CONT:
            if (!s->in_msg) {
                ws_fatal(s, 1002, "continuation without a message");
                break;
            }
            if (s->msg.len + f.length > STREAM_MAX_FRAME) {
                ws_fatal(s, 1009, "message too big");
                break;
            }
            hull_buf_add(&s->msg, pl, f.length);
            if (f.fin) {
                s->in_msg = false;
                ws_message(s, s->msg.data, s->msg.len);
                s->msg.len = 0;
            }
            break;
        default:
            break;
        }
    }
    hull_buf_consume(&s->in, off);
}

/* ---- sinks: process stdin, port-forward targets ------------------------------------------ */

static void pump_stdin(struct session *s)
{
    if (!s->started || s->stdin_closed)
        return;
    if (s->proc.attach_fd >= 0) {
        uint8_t *pkt = s->scratch;
        while (s->to_stdin.len > 0) {
            size_t n =
                s->to_stdin.len > HULL_CONMON_PKT_MAX ? HULL_CONMON_PKT_MAX : s->to_stdin.len;
            pkt[0] = HULL_ATTACH_STDIN;
            memcpy(pkt + 1, s->to_stdin.data, n);
            ssize_t w = send(s->proc.attach_fd, pkt, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (w < 0) {
                s->to_stdin.len = 0;
                s->stdin_closed = true;
                return;
            }
            hull_buf_consume(&s->to_stdin, n);
            ack(s, s->role_ch[R_STDIN], n);
        }
        if (s->stdin_eof) {
            pkt[0] = HULL_ATTACH_STDIN_EOF;
            if (send(s->proc.attach_fd, pkt, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EAGAIN)
                return;
            s->stdin_closed = true;
        }
        return;
    }
    if (s->proc.stdin_fd < 0) {
        s->to_stdin.len = 0;
        return;
    }
    while (s->to_stdin.len > 0) {
        ssize_t w = write(s->proc.stdin_fd, s->to_stdin.data, s->to_stdin.len);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (w <= 0) {
            s->to_stdin.len = 0;
            s->stdin_closed = true;
            return;
        }
        hull_buf_consume(&s->to_stdin, (size_t)w);
        ack(s, s->role_ch[R_STDIN], (size_t)w);
    }
    if (s->stdin_eof) {
        if (s->proc.stdin_fd != s->proc.stdout_fd && s->proc.stdin_fd != s->proc.stderr_fd) {
            close(s->proc.stdin_fd);
            s->proc.stdin_fd = -1;
        }
        s->stdin_closed = true;
    }
}

static void pump_targets(struct session *s)
{
    for (int i = 0; i < STREAM_MAX_PAIRS; i++) {
        struct pair *p = &s->pairs[i];
        if (!p->used || p->done || p->fd < 0)
            continue;
        while (p->to_target.len > 0) {
            ssize_t w =
                send(p->fd, p->to_target.data, p->to_target.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (w <= 0) {
                p->to_target.len = 0;
                p->shut_wr = true;
                break;
            }
            hull_buf_consume(&p->to_target, (size_t)w);
            ack(s, p->data_ch, (size_t)w);
        }
        if (p->client_fin && p->to_target.len == 0 && !p->shut_wr) {
            shutdown(p->fd, SHUT_WR);
            p->shut_wr = true;
        }
    }
}

/* ---- exec / attach ------------------------------------------------------------------------- */

static void apply_resize(struct session *s)
{
    if (!s->started || !s->size_dirty)
        return;
    s->size_dirty = false;
    if (s->proc.attach_fd >= 0) {
        char pkt[64];
        int n = snprintf(pkt, sizeof(pkt), "%c%u %u", HULL_ATTACH_RESIZE, s->size.height,
                         s->size.width);
        if (send(s->proc.attach_fd, pkt, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            log_debug("stream: resize: %m");
    } else if (s->proc.resize) {
        s->proc.resize(s->proc.data, &s->size);
    }
}

static void nonblock(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void start_process(struct session *s)
{
    const struct stream_backend *b = s->p->backend;
    _cleanup_error_ hull_error_t e = NULL;
    stream_process_init(&s->proc);
    int r;
    if (s->req->kind == STREAM_EXEC)
        r = b->exec ? b->exec(b->data, s->req, s->have_size ? &s->size : NULL, &s->proc, &e)
                    : hull_error_setx(&e, ENOSYS, "exec is not supported");
    else
        r = b->attach ? b->attach(b->data, s->req, &s->proc, &e)
                      : hull_error_setx(&e, ENOSYS, "attach is not supported");
    if (r < 0) {
        s->error = xasprintf("error %s command in container: %s",
                             s->req->kind == STREAM_EXEC ? "executing" : "attaching to",
                             hull_error_msg(&e));
        stream_process_init(&s->proc);
        return;
    }
    s->started = true;
    /* The backend got the size at creation; a monitor socket may have been connected before
     * the pty existed, so send it once more there. */
    if (s->req->kind == STREAM_EXEC && s->proc.attach_fd < 0)
        s->size_dirty = false;
    nonblock(s->proc.stdin_fd);
    nonblock(s->proc.stdout_fd);
    nonblock(s->proc.stderr_fd);
    nonblock(s->proc.attach_fd);
    s->out_done = s->proc.stdout_fd < 0;
    s->err_done = s->proc.stderr_fd < 0;
    s->attach_done = s->proc.attach_fd < 0;
    apply_resize(s);
}

static void read_output(struct session *s, int fd, int role, bool *done)
{
    int ci = s->role_ch[role];
    size_t q = send_quota(s, ci);
    if (q == 0)
        return;
    uint8_t *buf = s->scratch;
    ssize_t n = read(fd, buf, q);
    if (n > 0) {
        send_chan(s, ci, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    *done = true; /* EOF, or EIO from a pty whose other side closed */
    close_chan(s, ci);
}

static void read_attach(struct session *s)
{
    size_t q1 = send_quota(s, s->role_ch[R_STDOUT]), q2 = send_quota(s, s->role_ch[R_STDERR]);
    if (q1 == 0 || q2 == 0)
        return;
    uint8_t *buf = s->scratch;
    ssize_t n = recv(s->proc.attach_fd, buf, HULL_CONMON_PKT_MAX + 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        s->attach_done = true;
        s->exited = true;
        return;
    }
    switch (buf[0]) {
    case HULL_ATTACH_STDOUT:
        send_chan(s, s->role_ch[R_STDOUT], buf + 1, (size_t)n - 1);
        break;
    case HULL_ATTACH_STDERR:
        send_chan(s, s->role_ch[R_STDERR] >= 0 ? s->role_ch[R_STDERR] : s->role_ch[R_STDOUT],
                  buf + 1, (size_t)n - 1);
        break;
    case HULL_ATTACH_EXIT: {
        _cleanup_free_ char *text = xstrndup((const char *)buf + 1, (size_t)n - 1);
        _cleanup_yajl_ yajl_val v = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_json_parse(text, "exit packet", &v, &e) == 0)
            s->exit_code = (int)hull_json_get_int(v, "exit_code", 0);
        s->exited = true;
        break;
    }
    default:
        break;
    }
}

static bool expected_streams_present(struct session *s)
{
    const struct stream_request *r = s->req;
    if (s->role_ch[R_ERROR] < 0)
        return false;
    if (r->use_stdin && s->role_ch[R_STDIN] < 0)
        return false;
    if (r->use_stdout && s->role_ch[R_STDOUT] < 0)
        return false;
    if (r->use_stderr && !r->tty && s->role_ch[R_STDERR] < 0)
        return false;
    if (r->tty && (s->flags & SP_RESIZE) && s->role_ch[R_RESIZE] < 0)
        return false;
    return true;
}

static void write_status(struct session *s)
{
    int ci = s->role_ch[R_ERROR];
    int code = s->req->kind == STREAM_EXEC ? s->exit_code : 0;
    if (ci >= 0) {
        if (s->flags & SP_JSON_STATUS) {
            _cleanup_free_ char *json =
                stream_status_json(code, (const char *const *)s->req->cmd, s->error);
            send_chan(s, ci, json, strlen(json));
        } else if (s->error) {
            send_chan(s, ci, s->error, strlen(s->error));
        } else if (code != 0) {
            _cleanup_free_ char *json =
                stream_status_json(code, (const char *const *)s->req->cmd, NULL);
            _cleanup_yajl_ yajl_val v = NULL;
            _cleanup_error_ hull_error_t e = NULL;
            if (hull_json_parse(json, "status", &v, &e) == 0) {
                const char *m = hull_json_get_string(v, "message", "");
                send_chan(s, ci, m, strlen(m));
            }
        }
    }
    close_chan(s, s->role_ch[R_STDOUT]);
    close_chan(s, s->role_ch[R_STDERR]);
    close_chan(s, ci);
}

/* ---- the loop ------------------------------------------------------------------------------ */

enum { END_ABORT = 0, END_DONE = 1 };

static void read_socket(struct session *s)
{
    hull_buf_reserve(&s->in, IN_CAP);
    size_t room = IN_CAP - s->in.len;
    if (room == 0)
        return;
    ssize_t n = stream_conn_recv(s->p->conn, s->in.data + s->in.len, room);
    if (n > 0) {
        s->in.len += (size_t)n;
        s->activity = hull_monotonic_ns();
        return;
    }
    if (n == -EAGAIN || n == -EINTR)
        return;
    s->peer_done = true;
    s->dead = true; /* EOF or error: nothing more can be exchanged reliably */
}

static void process_input(struct session *s)
{
    if (s->in.len == 0 || s->fatal)
        return;
    if (s->ws)
        ws_input(s);
    else
        spdy_input(s);
}

#define MAXP (8 + STREAM_MAX_PAIRS)

/* Besides END_ABORT and END_DONE, a step of the loop returns one of these. */
enum { LOOP_ON = 2, LOOP_AGAIN = 3 };

struct loop_state {
    int64_t idle_ns;
    int64_t creation_deadline;
    int64_t resize_wait_until; /* tty: how long the start waits for the first size; 0 unset */
};

/* Frames in, stdin and targets fed, then frames that waited on them. */
static void pump_all(struct session *s)
{
    process_input(s);
    if (s->started) {
        apply_resize(s); /* before stdin that followed it on the wire */
        pump_stdin(s);
    }
    pump_targets(s);
    process_input(s); /* sinks drained: blocked frames may go on */
}

/* Exec/attach: start the process once the client's streams are there (and, with a tty,
 * its first size, briefly). */
static int start_when_ready(struct session *s, struct loop_state *ls, int64_t now)
{
    bool ready = s->ws || expected_streams_present(s);
    if (!ready && now > ls->creation_deadline) {
        log_debug("stream: timed out waiting for the client to create streams");
        return END_ABORT;
    }
    if (ready && s->req->tty && s->role_ch[R_RESIZE] >= 0 && !s->have_size) {
        if (ls->resize_wait_until == 0)
            ls->resize_wait_until = now + 200 * 1000000LL;
        if (now < ls->resize_wait_until)
            ready = false;
    }
    if (!ready)
        return LOOP_ON;
    start_process(s);
    if (s->error)
        return END_DONE;
    if (s->ws) {
        /* tell the client the streams are set up */
        int ci = s->role_ch[R_STDOUT] >= 0   ? s->role_ch[R_STDOUT]
                 : s->role_ch[R_STDERR] >= 0 ? s->role_ch[R_STDERR]
                                             : s->role_ch[R_ERROR];
        send_chan(s, ci, "", 0);
    }
    return LOOP_AGAIN;
}

/* Exec/attach: done once the output is all sent and the exit known (attach: detached). */
static int check_process_done(struct session *s)
{
    apply_resize(s);
    bool outputs = s->out_done && s->err_done && s->attach_done;
    if (s->proc.attach_fd >= 0) {
        if (s->attach_done)
            return END_DONE;
    } else if (outputs && (s->proc.exit_fd < 0 || s->exit_ready)) {
        if (s->proc.wait && s->proc.wait(s->proc.data, &s->exit_code) == 0)
            s->proc.wait = NULL;
        s->exited = true;
        return END_DONE;
    }
    return LOOP_ON;
}

static int exec_step(struct session *s, struct loop_state *ls, int64_t now)
{
    if (!s->started && !s->error) {
        int r = start_when_ready(s, ls, now);
        if (r != LOOP_ON)
            return r;
    }
    if (s->started) {
        int r = check_process_done(s);
        if (r != LOOP_ON)
            return r;
    }
    if (s->peer_done)
        return END_ABORT;
    return LOOP_ON;
}

/* Port forwarding: pairs whose streams never came time out; done when no pair is left. */
static int portforward_step(struct session *s, int64_t now)
{
    int active = 0;
    int64_t limit = (int64_t)s->p->creation_timeout_s * 1000000000LL;
    for (int i = 0; i < STREAM_MAX_PAIRS; i++) {
        struct pair *pp = &s->pairs[i];
        if (pp->used && !pp->done && !pp->started && now - pp->created_ns > limit) {
            char msg[128];
            snprintf(msg, sizeof(msg), "timed out waiting for the %s stream of port %d",
                     pp->data_ch < 0 ? "data" : "error", pp->port);
            pair_error(s, i, msg);
        }
        if (s->pairs[i].used && !s->pairs[i].done)
            active++;
    }
    if (s->ws && active == 0)
        return END_DONE;
    if (s->peer_done && active == 0)
        return END_DONE;
    if (s->peer_done && s->ws)
        return END_ABORT;
    return LOOP_ON;
}

/* The poll set: the connection, the wake fd, the process's fds, the pairs' targets.
 * what[] tells each entry's role: -1..-7 below, or a pair index. */
static int fill_pollfds(struct session *s, struct pollfd *pfd, int *what)
{
    int np = 0;
#define ADDP(f, ev, w)                                                                             \
    do {                                                                                           \
        pfd[np].fd = (f);                                                                          \
        pfd[np].events = (short)(ev);                                                              \
        pfd[np].revents = 0;                                                                       \
        what[np++] = (w);                                                                          \
    } while (0)
    ADDP(s->fd, s->in.len < IN_CAP ? POLLIN : 0, -1);
    ADDP(s->p->wake_fd, POLLIN, -2);
    if (s->started) {
        if (!s->out_done && send_quota(s, s->role_ch[R_STDOUT]) > 0)
            ADDP(s->proc.stdout_fd, POLLIN, -3);
        if (!s->err_done && send_quota(s, s->role_ch[R_STDERR]) > 0)
            ADDP(s->proc.stderr_fd, POLLIN, -4);
        if (s->proc.attach_fd >= 0 && !s->attach_done)
            ADDP(s->proc.attach_fd,
                 (send_quota(s, s->role_ch[R_STDOUT]) > 0 ? POLLIN : 0) |
                     (s->to_stdin.len > 0 || (s->stdin_eof && !s->stdin_closed) ? POLLOUT : 0),
                 -5);
        else if (s->proc.stdin_fd >= 0 && !s->stdin_closed && s->to_stdin.len > 0)
            ADDP(s->proc.stdin_fd, POLLOUT, -6);
        if (s->proc.exit_fd >= 0 && !s->exit_ready)
            ADDP(s->proc.exit_fd, POLLIN, -7);
    }
    for (int i = 0; i < STREAM_MAX_PAIRS; i++) {
        struct pair *p = &s->pairs[i];
        if (!p->used || p->done || p->fd < 0)
            continue;
        short ev = 0;
        if (!p->target_eof && send_quota(s, p->data_ch) > 0)
            ev |= POLLIN;
        if (p->to_target.len > 0)
            ev |= POLLOUT;
        if (ev)
            ADDP(p->fd, ev, i);
    }
#undef ADDP
    return np;
}

/* A port-forward target has data (or hung up): send it on the pair's data stream. */
static void read_target(struct session *s, int i, short revents)
{
    struct pair *p = &s->pairs[i];
    if (!p->used || p->done || p->fd < 0)
        return;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        size_t q = send_quota(s, p->data_ch);
        if (q == 0)
            return;
        ssize_t n = recv(p->fd, s->scratch, q, MSG_DONTWAIT);
        if (n > 0) {
            send_chan(s, p->data_ch, s->scratch, (size_t)n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            p->target_eof = true;
            pair_finish(s, i);
        }
    }
}

/* Act on what poll reported; END_ABORT when the server is stopping. */
static int dispatch_events(struct session *s, const struct pollfd *pfd, const int *what, int np)
{
    for (int i = 0; i < np; i++) {
        if (!pfd[i].revents)
            continue;
        switch (what[i]) {
        case -1:
            read_socket(s);
            break;
        case -2:
            return END_ABORT; /* server stopping */
        case -3:
            read_output(s, s->proc.stdout_fd, R_STDOUT, &s->out_done);
            break;
        case -4:
            read_output(s, s->proc.stderr_fd, R_STDERR, &s->err_done);
            break;
        case -5:
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                read_attach(s);
            break;
        case -6:
            break; /* pump_stdin runs at the top of the loop */
        case -7:
            s->exit_ready = true;
            break;
        default:
            read_target(s, what[i], pfd[i].revents);
            break;
        }
    }
    return LOOP_ON;
}

static int run_loop(struct session *s)
{
    bool pf = s->flags & SP_PORTFORWARD;
    int64_t now = hull_monotonic_ns();
    struct loop_state ls = {
        .idle_ns = (int64_t)s->p->idle_timeout_s * 1000000000LL,
        .creation_deadline = now + (int64_t)s->p->creation_timeout_s * 1000000000LL,
    };
    for (;;) {
        pump_all(s);
        if (s->fatal || s->dead)
            return END_ABORT;
        now = hull_monotonic_ns();
        int r = pf ? portforward_step(s, now) : exec_step(s, &ls, now);
        if (r == LOOP_AGAIN)
            continue;
        if (r != LOOP_ON)
            return r;
        if (now - s->activity > ls.idle_ns) {
            log_debug("stream: idle timeout");
            return END_ABORT;
        }
        struct pollfd pfd[MAXP];
        int what[MAXP];
        int np = fill_pollfds(s, pfd, what);
        int timeout = ls.resize_wait_until && !s->started ? 20 : 1000;
        bool tls_pending = s->in.len < IN_CAP && stream_conn_pending(s->p->conn);
        int pr = poll(pfd, (nfds_t)np, tls_pending ? 0 : timeout);
        if (pr < 0 && errno != EINTR)
            return END_ABORT;
        if (tls_pending)
            read_socket(s);
        if (pr <= 0)
            continue;
        if (dispatch_events(s, pfd, what, np) != LOOP_ON)
            return END_ABORT;
    }
}

static void linger_close(struct session *s)
{
    if (s->dead)
        return;
    stream_conn_shutdown(s->p->conn);
    int64_t end = hull_monotonic_ns() + 2000LL * 1000000LL;
    uint8_t *buf = s->scratch;
    for (;;) {
        int64_t left = (end - hull_monotonic_ns()) / 1000000;
        if (left <= 0)
            break;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = stream_conn_recv(s->p->conn, buf, SCRATCH);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
            break;
    }
}

static void release_process(struct session *s)
{
    int fds[5] = {s->proc.stdin_fd, s->proc.stdout_fd, s->proc.stderr_fd, s->proc.exit_fd,
                  s->proc.attach_fd};
    for (int i = 0; i < 5; i++) {
        if (fds[i] < 0)
            continue;
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= fds[j] == fds[i];
        if (!dup)
            close(fds[i]);
    }
    if (s->proc.release)
        s->proc.release(s->proc.data);
    stream_process_init(&s->proc);
}

static struct session *session_new(const struct stream_session_params *p)
{
    struct session *s = xmalloc0(sizeof(*s));
    s->p = p;
    s->req = p->req;
    s->fd = p->conn->fd;
    s->ws = p->websocket;
    s->flags = p->protocol ? p->protocol->flags
                           : (p->req->kind == STREAM_PORTFORWARD ? SP_PORTFORWARD
                                                                 : (p->websocket ? SP_RESIZE : 0));
    s->activity = hull_monotonic_ns();
    s->scratch = xmalloc0(SCRATCH);
    s->init_window = SPDY_DEFAULT_WINDOW;
    for (int i = 0; i < R_COUNT; i++)
        s->role_ch[i] = -1;
    for (int i = 0; i < STREAM_MAX_PAIRS; i++)
        s->pairs[i].fd = -1;
    stream_process_init(&s->proc);
    if (p->initial && p->initial->len)
        hull_buf_add(&s->in, p->initial->data, p->initial->len);
    return s;
}

/* WebSocket port forwarding: a pair per port of the query, announced on both its channels. */
static void open_ws_pairs(struct session *s)
{
    const struct stream_session_params *p = s->p;
    for (size_t i = 0; i < p->n_ws_ports && i < STREAM_MAX_PAIRS; i++) {
        int pi = pair_alloc(s);
        s->pairs[pi].port = p->ws_ports[i];
        s->pairs[pi].data_ch = chan_alloc(s, R_PF_DATA, (uint32_t)(2 * i), pi);
        s->pairs[pi].err_ch = chan_alloc(s, R_PF_ERROR, (uint32_t)(2 * i + 1), pi);
        uint8_t portb[2] = {(uint8_t)(p->ws_ports[i] & 0xff),
                            (uint8_t)((p->ws_ports[i] >> 8) & 0xff)};
        send_chan(s, s->pairs[pi].data_ch, portb, 2);
        send_chan(s, s->pairs[pi].err_ch, portb, 2);
    }
    for (int i = 0; i < STREAM_MAX_PAIRS; i++)
        if (s->pairs[i].used)
            pair_start(s, i);
}

/* SPDY: the header compression; WebSocket: the fixed channels.  -1 if SPDY cannot start. */
static int open_channels(struct session *s)
{
    _cleanup_error_ hull_error_t e = NULL;
    if (!s->ws) {
        if (spdy_zlib_init(&s->z, &e) < 0) {
            log_error("stream: %s", hull_error_msg(&e));
            return -1;
        }
        s->z_ok = true;
    } else if (s->flags & SP_PORTFORWARD) {
        open_ws_pairs(s);
    } else {
        /* remotecommand channels: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize */
        if (s->req->use_stdin)
            s->role_ch[R_STDIN] = chan_alloc(s, R_STDIN, 0, -1);
        if (s->req->use_stdout)
            s->role_ch[R_STDOUT] = chan_alloc(s, R_STDOUT, 1, -1);
        if (s->req->use_stderr)
            s->role_ch[R_STDERR] = chan_alloc(s, R_STDERR, 2, -1);
        s->role_ch[R_ERROR] = chan_alloc(s, R_ERROR, 3, -1);
        if (s->req->tty)
            s->role_ch[R_RESIZE] = chan_alloc(s, R_RESIZE, 4, -1);
    }
    return 0;
}

/* The exit status (exec/attach that ended normally), then a clean close of the connection. */
static void end_session(struct session *s, int end)
{
    if (!(s->flags & SP_PORTFORWARD) && end == END_DONE)
        write_status(s);
    if (!s->dead) {
        if (s->ws) {
            ws_close(s, 1000, NULL);
        } else if (!s->fatal) {
            for (int i = 0; i < STREAM_MAX_CHANS; i++)
                if (s->ch[i].used)
                    close_chan(s, i);
            spdy_goaway(s, 0);
        }
        linger_close(s);
    }
}

static void session_free(struct session *s)
{
    release_process(s);
    for (int i = 0; i < STREAM_MAX_PAIRS; i++) {
        if (s->pairs[i].fd >= 0)
            close(s->pairs[i].fd);
        free(s->pairs[i].request_id);
        hull_buf_free(&s->pairs[i].to_target);
    }
    if (s->z_ok)
        spdy_zlib_fini(&s->z);
    hull_buf_free(&s->in);
    hull_buf_free(&s->out);
    hull_buf_free(&s->msg);
    hull_buf_free(&s->to_stdin);
    hull_buf_free(&s->resize_pending);
    free(s->error);
    free(s->netns);
    free(s->netns_error);
    free(s->scratch);
    free(s);
}

void stream_session_run(const struct stream_session_params *p)
{
    struct session *s = session_new(p);
    if (open_channels(s) == 0)
        end_session(s, run_loop(s));
    session_free(s);
}
