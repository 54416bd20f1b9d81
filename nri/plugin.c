/* One connected NRI plugin: the reader thread that takes the trunk apart (responses to hulld's
 * calls on conn 1, the plugin's requests on conn 2) and hulld's calls with their timeouts. */
#include "nri/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nri_call {
    struct nri_call *next;
    uint32_t id;
    bool done;
    int code;
    char *msg;
    uint8_t *payload;
    size_t len;
};

struct nri_plugin *nri_plugin_new(struct nri *n, int fd)
{
    struct nri_plugin *p = xmalloc0(sizeof(*p));
    atomic_init(&p->refs, 1);
    p->n = n;
    p->fd = fd;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->wlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->next_stream = 1;
    p->full = xstrdup("(unregistered)");
    pthread_mutex_lock(&n->lock);
    n->live++;
    n->all = xrealloc(n->all, (n->n_all + 1) * sizeof(*n->all));
    n->all[n->n_all++] = p;
    pthread_mutex_unlock(&n->lock);
    return p;
}

struct nri_plugin *nri_plugin_ref(struct nri_plugin *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void nri_plugin_unref(struct nri_plugin *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    struct nri *n = p->n;
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n->n_all; i++)
        if (n->all[i] == p) {
            n->all[i] = n->all[--n->n_all];
            break;
        }
    pthread_mutex_unlock(&n->lock);
    close(p->fd);
    for (int i = 0; i < 3; i++)
        ttrpc_stream_free(&p->in[i]);
    free(p->name);
    free(p->idx);
    free(p->full);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->wlock);
    pthread_cond_destroy(&p->cond);
    free(p);
    pthread_mutex_lock(&n->lock);
    n->live--;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

void nri_plugin_close(struct nri_plugin *p, const char *why)
{
    pthread_mutex_lock(&p->lock);
    bool was = p->closed;
    p->closed = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (was)
        return;
    log_info("nri: plugin %s: %s", p->full, why);
    shutdown(p->fd, SHUT_RDWR);
    nri_drop_plugin(p->n, p);
}

static void deadline_ts(struct timespec *ts, int64_t timeout_ms)
{
    int64_t t = hull_monotonic_ns() + timeout_ms * 1000000LL;
    ts->tv_sec = t / 1000000000LL;
    ts->tv_nsec = t % 1000000000LL;
}

bool nri_plugin_wait_registered(struct nri_plugin *p, int64_t timeout_ms)
{
    struct timespec ts;
    deadline_ts(&ts, timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (!p->registered && !p->closed)
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    bool ok = p->registered && !p->closed;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static int write_msg(struct nri_plugin *p, uint32_t conn, uint32_t stream, uint8_t type,
                     const ProtobufCMessage *msg, hull_error_t *err)
{
    size_t len;
    _cleanup_free_ uint8_t *b = ttrpc_encode(stream, type, msg, &len);
    pthread_mutex_lock(&p->wlock);
    int r = nri_mux_write(p->fd, conn, b, len, err);
    pthread_mutex_unlock(&p->wlock);
    return r;
}

/* A response on conn 1 to one of our calls. */
static int on_response(struct nri_plugin *p, const struct ttrpc_msg *m, hull_error_t *err)
{
    if (m->type != TTRPC_RESPONSE)
        return hull_error_setx(err, EPROTO, "unexpected ttrpc message type %u on the plugin conn",
                               m->type);
    Hull__Ttrpc__Response *resp = hull__ttrpc__response__unpack(NULL, m->len, m->payload);
    if (resp == NULL)
        return hull_error_setx(err, EPROTO, "undecodable ttrpc response");
    pthread_mutex_lock(&p->lock);
    for (struct nri_call *c = p->calls; c; c = c->next) {
        if (c->id != m->stream || c->done)
            continue;
        c->done = true;
        c->code = resp->status ? resp->status->code : 0;
        c->msg = xstrdup(resp->status && resp->status->message ? resp->status->message : "");
        c->len = resp->payload.len;
        c->payload = xmalloc0(c->len + 1);
        if (c->len)
            memcpy(c->payload, resp->payload.data, c->len);
        pthread_cond_broadcast(&p->cond);
        break;
    }
    pthread_mutex_unlock(&p->lock);
    hull__ttrpc__response__free_unpacked(resp, NULL);
    return 0;
}

/* A request on conn 2 from the plugin. */
static int on_request(struct nri_plugin *p, const struct ttrpc_msg *m, hull_error_t *err)
{
    if (m->type != TTRPC_REQUEST)
        return hull_error_setx(err, EPROTO, "unexpected ttrpc message type %u on the runtime conn",
                               m->type);
    if (m->stream % 2 != 1 || m->stream <= p->last_peer_stream)
        return hull_error_setx(err, EPROTO, "bad ttrpc stream id %u", m->stream);
    p->last_peer_stream = m->stream;
    Hull__Ttrpc__Request *req = hull__ttrpc__request__unpack(NULL, m->len, m->payload);
    if (req == NULL)
        return hull_error_setx(err, EPROTO, "undecodable ttrpc request");
    Hull__Ttrpc__Response resp = HULL__TTRPC__RESPONSE__INIT;
    Hull__Ttrpc__Status st = HULL__TTRPC__STATUS__INIT;
    _cleanup_free_ uint8_t *payload = NULL;
    _cleanup_error_ hull_error_t rerr = NULL;
    int r = nri_runtime_request(p, req, &resp, &payload, &rerr);
    hull__ttrpc__request__free_unpacked(req, NULL);
    if (r < 0) {
        st.code = r == -ENOSYS ? 12 /* UNIMPLEMENTED */ : r == -EINVAL ? 3 : 13 /* INTERNAL */;
        st.message = (char *)hull_error_msg(&rerr);
        resp.status = &st;
        resp.payload.len = 0;
    }
    return write_msg(p, NRI_CONN_RUNTIME, m->stream, TTRPC_RESPONSE, &resp.base, err);
}

static void *reader(void *arg)
{
    struct nri_plugin *p = arg;
    for (;;) {
        _cleanup_error_ hull_error_t err = NULL;
        uint32_t conn;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r = nri_mux_read(p->fd, &conn, &buf, &len, &err);
        if (r == 0) {
            nri_plugin_close(p, "disconnected");
            break;
        }
        if (r < 0)
            goto bad;
        if (conn != NRI_CONN_PLUGIN && conn != NRI_CONN_RUNTIME) {
            hull_error_setx(&err, EPROTO, "frame for unknown conn %u", conn);
            goto bad;
        }
        if (ttrpc_feed(&p->in[conn], buf, len, &err) < 0)
            goto bad;
        for (;;) {
            struct ttrpc_msg m;
            r = ttrpc_next(&p->in[conn], &m, &err);
            if (r == 0)
                break;
            if (r < 0)
                goto bad;
            r = conn == NRI_CONN_PLUGIN ? on_response(p, &m, &err) : on_request(p, &m, &err);
            free(m.payload);
            if (r < 0)
                goto bad;
        }
        continue;
    bad:;
        _cleanup_free_ char *why = xasprintf("protocol error, closing: %s", hull_error_msg(&err));
        nri_plugin_close(p, why);
        break;
    }
    nri_plugin_unref(p);
    return NULL;
}

int nri_plugin_start_reader(struct nri_plugin *p, hull_error_t *err)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    nri_plugin_ref(p);
    int r = pthread_create(&t, &attr, reader, p);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        nri_plugin_unref(p);
        return hull_error_set(err, r, "nri: start plugin reader");
    }
    return 0;
}

static void unlink_call(struct nri_plugin *p, struct nri_call *c)
{
    for (struct nri_call **pp = &p->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
}

int nri_plugin_call(struct nri_plugin *p, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                    int64_t timeout_ms, int *code, hull_error_t *err)
{
    size_t plen = protobuf_c_message_get_packed_size(req);
    _cleanup_free_ uint8_t *pl = xmalloc0(plen + 1);
    protobuf_c_message_pack(req, pl);
    Hull__Ttrpc__Request rq = HULL__TTRPC__REQUEST__INIT;
    rq.service = (char *)NRI_PLUGIN_SERVICE;
    rq.method = (char *)method;
    rq.payload.data = pl;
    rq.payload.len = plen;
    rq.timeout_nano = timeout_ms * 1000000LL;
    *code = 0;

    /* ttrpc servers refuse a stream id lower than one they saw: ids are taken and written
     * in one order */
    struct nri_call c = {0};
    pthread_mutex_lock(&p->wlock);
    pthread_mutex_lock(&p->lock);
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_unlock(&p->wlock);
        return hull_error_setx(err, ECONNRESET, "plugin %s is gone", p->full);
    }
    c.id = p->next_stream;
    p->next_stream += 2;
    c.next = p->calls;
    p->calls = &c;
    pthread_mutex_unlock(&p->lock);
    size_t blen;
    _cleanup_free_ uint8_t *b = ttrpc_encode(c.id, TTRPC_REQUEST, &rq.base, &blen);
    _cleanup_error_ hull_error_t werr = NULL;
    int wr = nri_mux_write(p->fd, NRI_CONN_PLUGIN, b, blen, &werr);
    pthread_mutex_unlock(&p->wlock);
    if (wr < 0) {
        pthread_mutex_lock(&p->lock);
        unlink_call(p, &c);
        pthread_mutex_unlock(&p->lock);
        nri_plugin_close(p, hull_error_msg(&werr));
        return hull_error_setx(err, ECONNRESET, "plugin %s is gone", p->full);
    }
    struct timespec ts;
    deadline_ts(&ts, timeout_ms);
    bool timed_out = false;
    pthread_mutex_lock(&p->lock);
    while (!c.done && !p->closed)
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT) {
            timed_out = !c.done;
            break;
        }
    unlink_call(p, &c);
    pthread_mutex_unlock(&p->lock);
    _cleanup_free_ uint8_t *payload = c.payload;
    _cleanup_free_ char *msg = c.msg;
    if (!c.done) {
        if (timed_out) {
            _cleanup_free_ char *why =
                xasprintf("%s timed out after %lld ms", method, (long long)timeout_ms);
            nri_plugin_close(p, why);
            return hull_error_setx(err, ETIMEDOUT, "plugin %s: %s", p->full, why);
        }
        return hull_error_setx(err, ECONNRESET, "plugin %s is gone", p->full);
    }
    if (c.code != 0) {
        *code = c.code;
        return hull_error_setx(err, EREMOTEIO, "%s", msg);
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(rdesc, NULL, c.len, payload);
    if (m == NULL) {
        _cleanup_free_ char *why = xasprintf("undecodable %s response, closing", method);
        nri_plugin_close(p, why);
        return hull_error_setx(err, ECONNRESET, "plugin %s: %s", p->full, why);
    }
    *resp = m;
    return 0;
}
