/* gRPC plumbing over the C core: one acceptor thread takes new calls from the server's
 * completion queue, a growing worker pool runs them (each call on its own completion queue, so a
 * call's operations block only its worker), and the main thread waits for signals.
 *
 * Calls are taken unregistered (grpc_server_request_call) and routed by method path through the
 * method table the daemon passes (dispatch.c's), so unknown paths get UNIMPLEMENTED from the
 * same place as known-but-unbuilt methods.  Requests and responses are protobuf-c messages.
 * What the service manager hears and what SIGHUP reloads are the daemon's (struct grpc_hooks). */
#include "server/rpc/rpc.h"
#include "server/server.h"
#include "server/stats/stats.h" /* metrics_rpc_done */

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#define PENDING_SLOTS 16

/* Tags of the operations of one call; any distinct pointers do. */
static char tag_recv, tag_send, tag_close;

/* ---- call-scoped memory ----------------------------------------------------------------------
 * A bump allocator: a call's messages and strings are carved out of a few chunks (the first
 * RPC_CHUNK_MIN bytes, doubling up to RPC_CHUNK_MAX) instead of one malloc each.  A list
 * answer for hundreds of pods made thousands of small allocations per call, slow and scattered
 * over the heap among long-lived objects (pages that malloc_trim cannot give back). */
#define RPC_CHUNK_MIN ((size_t)4096)
#define RPC_CHUNK_MAX ((size_t)128 * 1024)
/* Under AddressSanitizer every allocation keeps a chunk of its own, so an overflow past one
 * message still hits a redzone. */
#if defined(__SANITIZE_ADDRESS__)
#define RPC_CHUNK_EXACT 1
#else
#define RPC_CHUNK_EXACT 0
#endif

struct chunk {
    struct chunk *next;
    size_t cap, used; /* bytes of data; data[0 .. used) is handed out, the rest still zero */
    max_align_t data[];
};

struct deferred {
    struct deferred *next;
    void (*fn)(void *);
    void *arg;
};

struct grpc_ctx;

struct rpc_call {
    struct hull_server *srv;
    struct grpc_ctx *g;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_completion_queue *cq;
    char *path;
    struct chunk *chunks;
    struct deferred *defers;
    bool sent_md;
    bool closed;
    int close_cancelled;
    struct rpc_call *next; /* work queue link */
    /* a local call (rpc_local_call_new): no gRPC call behind it */
    bool local;
    int64_t local_deadline_ns; /* monotonic; cancelled from then on */
    size_t local_max_sent, local_sent;
};

void *rpc_alloc(struct rpc_call *call, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    size = size ? (size + align - 1) / align * align : align;
    struct chunk *c = call->chunks;
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = c ? c->cap * 2 : RPC_CHUNK_MIN - sizeof(struct chunk);
        if (cap > RPC_CHUNK_MAX)
            cap = RPC_CHUNK_MAX;
        if (cap < size || RPC_CHUNK_EXACT)
            cap = size; /* a large block: a chunk of its own */
        c = xmalloc0(sizeof(struct chunk) + cap);
        c->cap = cap;
        c->next = call->chunks;
        call->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

char *rpc_strdup(struct rpc_call *call, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *r = rpc_alloc(call, n);
    memcpy(r, s, n);
    return r;
}

char *rpc_printf(struct rpc_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *tmp = NULL;
    if (vasprintf(&tmp, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *r = rpc_strdup(call, tmp);
    free(tmp);
    return r;
}

void *rpc_new_message(struct rpc_call *call, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = rpc_alloc(call, desc->sizeof_message);
    desc->message_init(m);
    return m;
}

void rpc_defer(struct rpc_call *call, void (*fn)(void *), void *arg)
{
    struct deferred *d = xmalloc0(sizeof(*d));
    d->fn = fn;
    d->arg = arg;
    d->next = call->defers;
    call->defers = d;
}

struct rpc_mark rpc_mark(struct rpc_call *call)
{
    return (struct rpc_mark){.chunks = call->chunks,
                             .used = call->chunks ? call->chunks->used : 0,
                             .defers = call->defers};
}

void rpc_release_to(struct rpc_call *call, struct rpc_mark mark)
{
    while (call->defers && call->defers != mark.defers) {
        struct deferred *d = call->defers;
        call->defers = d->next;
        d->fn(d->arg);
        free(d);
    }
    while (call->chunks && call->chunks != mark.chunks) {
        struct chunk *k = call->chunks;
        call->chunks = k->next;
        free(k);
    }
    struct chunk *c = call->chunks;
    if (c && c->used > mark.used) { /* handed out again: zeroed again */
        memset((char *)c->data + mark.used, 0, c->used - mark.used);
        c->used = mark.used;
    }
}

struct hull_server *rpc_server(struct rpc_call *call)
{
    return call->srv;
}

const struct hull_config *rpc_config(struct rpc_call *call)
{
    return call->srv->config;
}

enum rpc_code rpc_status_from_errno(int e)
{
    switch (e) {
    case 0:
        return RPC_OK;
    case ENOENT:
        return RPC_NOT_FOUND;
    case EEXIST:
        return RPC_ALREADY_EXISTS;
    case EINVAL:
        return RPC_INVALID_ARGUMENT;
    case ENOSYS:
    case EOPNOTSUPP:
        return RPC_UNIMPLEMENTED;
    case EPERM:
    case EACCES:
        return RPC_PERMISSION_DENIED;
    case ETIMEDOUT:
        return RPC_DEADLINE_EXCEEDED;
    case ECANCELED:
        return RPC_CANCELLED;
    case ENOSPC:
    case EFBIG:
    case EMSGSIZE:
        return RPC_RESOURCE_EXHAUSTED;
    case EBUSY:
    case ENOTEMPTY:
    case EBADMSG:
    case EPROTONOSUPPORT:
        return RPC_FAILED_PRECONDITION;
    case EILSEQ:
        return RPC_DATA_LOSS;
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
        return RPC_UNAVAILABLE;
    default:
        return RPC_UNKNOWN;
    }
}

/* ---- the daemon's gRPC state ----------------------------------------------------------------- */
struct slot {
    grpc_completion_queue *cq; /* the queue the call's operations will complete on */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
};

struct grpc_ctx {
    struct hull_server *srv;
    const struct grpc_hooks *hooks;
    grpc_server *server;
    grpc_completion_queue *accept_cq;
    struct slot *slots[PENDING_SLOTS];

    /* worker pool */
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* work queued or stopping */
    pthread_cond_t idle_cv; /* a call finished / a worker exited */
    struct rpc_call *head, *tail;
    size_t idle, total, inflight;
    uint64_t finished;      /* calls answered so far */
    int64_t last_finish_ns; /* monotonic time of the last answer */
    size_t min_workers, max_workers;
    bool stopping;
    bool slots_drained; /* stopping, and every requested call has come back from grpc */
};

/* Waits for tag on the call's queue; other completions seen meanwhile are recorded.
 * Returns the operation's success; *timeout tells a deadline expiry apart. */
static bool call_wait(struct rpc_call *c, void *tag, gpr_timespec deadline, bool *timeout)
{
    if (timeout)
        *timeout = false;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            if (timeout)
                *timeout = true;
            return false;
        }
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return false;
        if (ev.tag == &tag_close) {
            c->closed = true;
            if (tag == &tag_close)
                return ev.success;
            continue;
        }
        if (ev.tag == tag)
            return ev.success;
    }
}

bool rpc_call_cancelled(struct rpc_call *c)
{
    if (atomic_load(&c->srv->stopping))
        return true;
    if (c->local) {
        if (hull_monotonic_ns() >= c->local_deadline_ns)
            c->closed = true;
        return c->closed;
    }
    if (!c->closed)
        call_wait(c, NULL, gpr_time_0(GPR_CLOCK_MONOTONIC), NULL);
    /* The close operation completes before our status only when the call ended early. */
    return c->closed;
}

static int start_batch(struct rpc_call *c, grpc_op *ops, size_t n, void *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("grpc: %s: start_batch failed (%d)", c->path, (int)e);
        return -1;
    }
    return 0;
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* A local call's streamed message: packed (what a client would get) and dropped; the call ends
 * after its budget of messages. */
static int local_send(struct rpc_call *c, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc0(n + 1);
    size_t packed = protobuf_c_message_pack(msg, buf);
    free(buf);
    if (packed != n)
        abort();
    c->sent_md = true;
    if (++c->local_sent >= c->local_max_sent)
        c->closed = true;
    return 0;
}

int rpc_stream_send(struct rpc_call *c, const ProtobufCMessage *msg, hull_error_t *err)
{
    if (rpc_call_cancelled(c))
        return hull_error_setx(err, ECANCELED, "%s: call cancelled", c->path);
    if (c->local)
        return local_send(c, msg);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    if (!c->sent_md) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_md = true;
    }
    grpc_byte_buffer *bb = pack_message(msg);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    bool ok = start_batch(c, ops, n, &tag_send) == 0 &&
              call_wait(c, &tag_send, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_byte_buffer_destroy(bb);
    if (!ok)
        return hull_error_setx(err, ECANCELED, "%s: client went away", c->path);
    return 0;
}

int rpc_stream_begin(struct rpc_call *c, hull_error_t *err)
{
    if (c->sent_md)
        return 0;
    if (rpc_call_cancelled(c))
        return hull_error_setx(err, ECANCELED, "%s: call cancelled", c->path);
    if (c->local) {
        c->sent_md = true;
        return 0;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    c->sent_md = true;
    if (start_batch(c, &op, 1, &tag_send) < 0 ||
        !call_wait(c, &tag_send, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL))
        return hull_error_setx(err, ECANCELED, "%s: client went away", c->path);
    return 0;
}

static void send_status(struct rpc_call *c, const ProtobufCMessage *resp, enum rpc_code code,
                        const char *msg)
{
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    if (!c->sent_md) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_md = true;
    }
    grpc_byte_buffer *bb = NULL;
    if (resp && code == RPC_OK) {
        bb = pack_message(resp);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    if (start_batch(c, ops, n, &tag_send) == 0)
        call_wait(c, &tag_send, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_slice_unref(details);
    if (bb)
        grpc_byte_buffer_destroy(bb);
}

static void call_free(struct rpc_call *c)
{
    for (struct deferred *d = c->defers, *nx; d; d = nx) {
        nx = d->next;
        d->fn(d->arg);
        free(d);
    }
    for (struct chunk *k = c->chunks, *nx; k; k = nx) {
        nx = k->next;
        free(k);
    }
    if (c->local) {
        free(c->path);
        free(c);
        return;
    }
    if (c->call)
        grpc_call_unref(c->call);
    if (c->cq) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(c->cq);
    }
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    free(c->path);
    free(c);
}

struct rpc_call *rpc_local_call_new(struct hull_server *srv, const char *path, int64_t timeout_ns,
                                    size_t max_stream_messages)
{
    struct rpc_call *c = xmalloc0(sizeof(*c));
    c->srv = srv;
    c->path = xstrdup(path);
    c->local = true;
    c->local_deadline_ns = hull_monotonic_ns() + timeout_ns;
    c->local_max_sent = max_stream_messages ? max_stream_messages : 1;
    return c;
}

void rpc_local_call_free(struct rpc_call *c)
{
    if (c)
        call_free(c);
}

enum rpc_code rpc_dispatch(struct rpc_call *c, const struct rpc_method *m, const char *path,
                           const uint8_t *data, size_t len, ProtobufCMessage **resp, char **msg)
{
    *resp = NULL;
    *msg = NULL;
    if (m == NULL || m->handler == NULL) {
        *msg = xasprintf("method %s is not implemented", path);
        return RPC_UNIMPLEMENTED;
    }
    _cleanup_error_ hull_error_t serr = NULL;
    if (rpc_check_strings(m->request, data, len, &serr) < 0) {
        *msg = xasprintf("%s: %s", path, hull_error_msg(&serr));
        return RPC_INVALID_ARGUMENT;
    }
    ProtobufCMessage *req = protobuf_c_message_unpack(m->request, NULL, len, data);
    if (req == NULL) {
        *msg = xasprintf("%s: request is not a valid %s message", path, m->request->name);
        return RPC_INVALID_ARGUMENT;
    }
    enum rpc_code code = RPC_OK;
    _cleanup_error_ hull_error_t err = NULL;
    int r = m->handler(c, req, resp, &err);
    if (r < 0) {
        code = rpc_status_from_errno(err ? hull_error_status(&err) : -r);
        *msg = xstrdup(err ? hull_error_msg(&err) : strerror(-r));
        *resp = NULL;
    } else if (m->kind == RPC_UNARY && *resp == NULL) {
        code = RPC_INTERNAL;
        *msg = xasprintf("%s: handler produced no response", path);
    }
    protobuf_c_message_free_unpacked(req, NULL);
    return code;
}

/* Runs one call from request to status. */
static const struct rpc_method *method_find(const struct grpc_hooks *h, const char *path)
{
    for (size_t i = 0; i < h->n_methods; i++)
        if (strcmp(h->methods[i].path, path) == 0)
            return &h->methods[i];
    return NULL;
}

static void call_run(struct rpc_call *c)
{
    int64_t t0 = hull_monotonic_ns();
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &c->close_cancelled;
    if (start_batch(c, ops, 1, &tag_close) < 0)
        return;

    grpc_byte_buffer *payload = NULL;
    _cleanup_free_ char *msg = NULL; /* before the goto below: freed on every way out */
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &payload;
    if (start_batch(c, ops, 1, &tag_recv) < 0 ||
        !call_wait(c, &tag_recv, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)) {
        log_debug("grpc: %s: client went away before sending its request", c->path);
        if (payload)
            grpc_byte_buffer_destroy(payload);
        goto wait_close;
    }

    const struct rpc_method *m = method_find(c->g->hooks, c->path);
    enum rpc_code code = RPC_OK;
    ProtobufCMessage *resp = NULL;
    if (payload == NULL) {
        code = RPC_INVALID_ARGUMENT;
        msg = xasprintf("%s: no request message", c->path);
    } else {
        grpc_byte_buffer_reader reader;
        grpc_slice all = grpc_empty_slice();
        if (grpc_byte_buffer_reader_init(&reader, payload)) {
            all = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
        }
        code = rpc_dispatch(c, m, c->path, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &resp,
                            &msg);
        grpc_slice_unref(all);
    }
    if (payload)
        grpc_byte_buffer_destroy(payload);
    if (code != RPC_OK && code != RPC_UNIMPLEMENTED && code != RPC_NOT_FOUND)
        log_info("%s: %s", c->path, msg);
    /* counted before the answer leaves, so a client that scrapes next sees its call */
    if (m != NULL)
        metrics_rpc_done(c->srv->metrics, (size_t)(m - c->g->hooks->methods), (int)code,
                         hull_monotonic_ns() - t0);
    /* logged before the answer leaves too, so a client that reads the log next finds its call */
    log_debug("%s: code %d in %.3f ms", c->path, (int)code,
              (double)(hull_monotonic_ns() - t0) / 1e6);
    send_status(c, resp, code, msg);
wait_close:
    if (!c->closed)
        call_wait(c, &tag_close, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
}

/* ---- worker pool ----------------------------------------------------------------------------- */
static void *worker_main(void *arg)
{
    struct grpc_ctx *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (g->head == NULL && !g->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 30;
            g->idle++;
            int r = pthread_cond_timedwait(&g->work_cv, &g->mu, &ts);
            g->idle--;
            if (r == ETIMEDOUT && g->head == NULL && g->total > g->min_workers)
                goto out;
        }
        if (g->head == NULL)
            break; /* stopping and nothing left */
        struct rpc_call *c = g->head;
        g->head = c->next;
        if (g->head == NULL)
            g->tail = NULL;
        pthread_mutex_unlock(&g->mu);
        call_run(c);
        call_free(c);
        pthread_mutex_lock(&g->mu);
        g->inflight--;
        g->finished++;
        g->last_finish_ns = hull_monotonic_ns();
        pthread_cond_broadcast(&g->idle_cv);
    }
out:
    g->total--;
    pthread_cond_broadcast(&g->idle_cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static int spawn_worker(struct grpc_ctx *g)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int r = pthread_create(&t, &attr, worker_main, g);
    pthread_attr_destroy(&attr);
    if (r == 0)
        g->total++;
    return -r;
}

static void submit(struct grpc_ctx *g, struct rpc_call *c)
{
    pthread_mutex_lock(&g->mu);
    g->inflight++;
    if (g->tail)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
    /* A new thread when everyone is busy: a slow pull or a stop never delays other calls. */
    if (g->idle == 0 && g->total < g->max_workers) {
        int r = spawn_worker(g);
        if (r < 0 && g->total == 0)
            log_error("grpc: cannot start a worker: %s", strerror(-r));
    }
    pthread_cond_signal(&g->work_cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- accepting calls --------------------------------------------------------------------------
 */
static void slot_free(struct slot *s)
{
    if (s->call)
        grpc_call_unref(s->call);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->cq);
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    free(s);
}

static int arm_slot(struct grpc_ctx *g, int i)
{
    struct slot *s = xmalloc0(sizeof(*s));
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    /* The call gets a completion queue of its own, so its worker waits only on its own ops. */
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_call_error e = grpc_server_request_call(g->server, &s->call, &s->details, &s->md, s->cq,
                                                 g->accept_cq, (void *)(intptr_t)(i + 1));
    if (e != GRPC_CALL_OK) {
        slot_free(s);
        g->slots[i] = NULL;
        return -1;
    }
    g->slots[i] = s;
    return 0;
}

static char tag_shutdown;

/* Takes new calls until the server has shut down and every pending request has returned. */
static void *acceptor_main(void *arg)
{
    struct grpc_ctx *g = arg;
    bool shut = false;
    for (;;) {
        size_t pending = 0;
        for (int i = 0; i < PENDING_SLOTS; i++)
            pending += g->slots[i] != NULL;
        if (pending == 0 && atomic_load(&g->srv->stopping)) {
            /* grpc has failed or handed over every call it could still match: each one it
             * accepted is now counted in `inflight` */
            pthread_mutex_lock(&g->mu);
            g->slots_drained = true;
            pthread_cond_broadcast(&g->idle_cv);
            pthread_mutex_unlock(&g->mu);
        }
        if (shut && pending == 0)
            break;
        grpc_event ev =
            grpc_completion_queue_next(g->accept_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        if (ev.tag == &tag_shutdown) {
            shut = true;
            continue;
        }
        int i = (int)(intptr_t)ev.tag - 1;
        if (i < 0 || i >= PENDING_SLOTS || g->slots[i] == NULL)
            continue;
        struct slot *s = g->slots[i];
        g->slots[i] = NULL;
        if (!ev.success) {
            slot_free(s); /* the server is shutting down */
            continue;
        }
        struct rpc_call *c = xmalloc0(sizeof(*c));
        c->srv = g->srv;
        c->g = g;
        c->call = s->call;
        c->cq = s->cq;
        c->details = s->details;
        c->md = s->md;
        c->path = xstrndup((const char *)GRPC_SLICE_START_PTR(s->details.method),
                           GRPC_SLICE_LENGTH(s->details.method));
        free(s);
        if (!atomic_load(&g->srv->stopping))
            arm_slot(g, i);
        submit(g, c);
    }
    return NULL;
}

/* ---- the socket ---------------------------------------------------------------------------------
 */

/* Takes <listen>.lock (held for the life of the process) and removes a stale socket.  Fails when
 * another hulld owns the socket. */
static int claim_socket(const char *path, int *lock_fd, hull_error_t *err)
{
    _cleanup_free_ char *dup = xstrdup(path);
    char *slash = strrchr(dup, '/');
    if (slash && slash != dup) {
        *slash = '\0';
        struct stat st;
        bool existed = stat(dup, &st) == 0;
        int r = hull_mkdir_p(dup, 0700, err);
        if (r < 0)
            return hull_error_wrap(err, "socket directory");
        if (!existed && chmod(dup, 0700) < 0)
            return hull_error_set(err, errno, "chmod `%s`", dup);
    }
    _cleanup_free_ char *lock = xasprintf("%s.lock", path);
    _cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hull_error_set(err, errno, "open `%s`", lock);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return hull_error_setx(err, EBUSY, "another hulld is serving `%s` (lock `%s` held)",
                                   path, lock);
        return hull_error_set(err, errno, "lock `%s`", lock);
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return hull_error_setx(err, EEXIST, "`%s` exists and is not a socket", path);
        /* Someone without our lock may still be listening there. */
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return hull_error_setx(err, EBUSY, "`%s` is in use by another process", path);
        log_info("removing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT)
            return hull_error_set(err, errno, "remove stale socket `%s`", path);
    }
    *lock_fd = hull_steal_fd(fd);
    return 0;
}

/* ---- serve -------------------------------------------------------------------------------------
 */
static void drain_and_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* Waits until every call grpc matched has reached the pool and none is in flight, or the
 * deadline passes; returns true when idle.  Without the first condition a call accepted just
 * before the shutdown, still queued for the acceptor, would be cancelled instead of answered. */
static bool wait_idle(struct grpc_ctx *g, int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    pthread_mutex_lock(&g->mu);
    while (g->inflight > 0 || !g->slots_drained)
        if (pthread_cond_timedwait(&g->idle_cv, &g->mu, &ts) == ETIMEDOUT)
            break;
    bool idle = g->inflight == 0 && g->slots_drained;
    pthread_mutex_unlock(&g->mu);
    return idle;
}

/* After a burst of calls, once no call has run for a second: gives the memory the burst freed
 * back to the kernel (glibc keeps freed heap pages, in every arena, until trimmed), so the
 * daemon's RSS comes back to its idle size instead of staying at its peak. */
static void trim_when_idle(struct grpc_ctx *g, uint64_t *trimmed_at)
{
    pthread_mutex_lock(&g->mu);
    bool due = g->inflight == 0 && g->finished != *trimmed_at &&
               hull_monotonic_ns() - g->last_finish_ns >= INT64_C(1000000000);
    uint64_t finished = g->finished;
    pthread_mutex_unlock(&g->mu);
    if (due) {
        malloc_trim(0);
        *trimmed_at = finished;
    }
}

int grpc_serve(struct hull_server *srv, const struct grpc_hooks *hooks, hull_error_t *err)
{
    const struct hull_config *cfg = srv->config;
    _cleanup_close_ int lock_fd = -1;
    int r = claim_socket(cfg->listen, &lock_fd, err);
    if (r < 0)
        return r;

    struct grpc_ctx g = {.srv = srv,
                         .hooks = hooks,
                         .min_workers = (size_t)cfg->workers,
                         .max_workers = (size_t)cfg->max_workers};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.work_cv, NULL);
    pthread_cond_init(&g.idle_cv, NULL);

    grpc_arg args[1];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)cfg->max_msg_size;
    grpc_channel_args cargs = {.num_args = 1, .args = args};
    g.server = grpc_server_create(&cargs, NULL);
    g.accept_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g.server, g.accept_cq, NULL);
    _cleanup_free_ char *addr = xasprintf("unix:%s", cfg->listen);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(g.server, addr, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        grpc_server_destroy(g.server);
        grpc_completion_queue_destroy(g.accept_cq);
        return hull_error_setx(err, EADDRINUSE, "cannot listen on `%s`", cfg->listen);
    }
    grpc_server_start(g.server);
    if (chmod(cfg->listen, 0660) < 0)
        log_warn("chmod %s: %s", cfg->listen, strerror(errno));

    pthread_mutex_lock(&g.mu);
    for (size_t i = 0; i < g.min_workers; i++)
        spawn_worker(&g);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < PENDING_SLOTS; i++)
        arm_slot(&g, i);
    pthread_t acceptor;
    pthread_create(&acceptor, NULL, acceptor_main, &g);
    log_info("hulld %s serving CRI runtime.v1 on %s (root %s, state %s)", HULL_VERSION, cfg->listen,
             cfg->root, cfg->state_dir);
    /* the socket accepts calls: tell the service manager (Type=notify) */
    if (hooks->ready)
        hooks->ready(hooks->opaque);

    /* The main thread owns the signals (blocked everywhere else since before grpc_init). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    uint64_t trimmed_at = 0;
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            trim_when_idle(&g, &trimmed_at);
            continue;
        }
        if (sig == SIGHUP) {
            if (hooks->reload)
                hooks->reload(hooks->opaque);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: stopping: no new calls, finishing calls in flight",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
            if (hooks->stopping)
                hooks->stopping(hooks->opaque);
            break;
        }
    }

    /* Unary calls finish; streams (GetContainerEvents, which kubelet always holds) see
     * `stopping` and end within their poll interval.  Set before the shutdown so that the
     * acceptor re-arms no slot once grpc starts failing them. */
    atomic_store(&srv->stopping, true);
    grpc_server_shutdown_and_notify(g.server, g.accept_cq, &tag_shutdown);
    if (!wait_idle(&g, 30))
        log_warn("calls still running after 30 s: cancelling them");
    /* The shutdown completes only once every client connection is gone, and an idle client
     * (kubelet keeps one open) does not close its connection on the GOAWAY: with no call left
     * to finish, disconnect them all. */
    grpc_server_cancel_all_calls(g.server);
    wait_idle(&g, 5);
    pthread_join(acceptor, NULL);
    pthread_mutex_lock(&g.mu);
    g.stopping = true;
    pthread_cond_broadcast(&g.work_cv);
    while (g.total > 0)
        pthread_cond_wait(&g.idle_cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    grpc_server_destroy(g.server);
    drain_and_destroy(g.accept_cq);
    unlink(cfg->listen);
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.work_cv);
    pthread_cond_destroy(&g.idle_cv);
    log_info("stopped");
    return 0;
}
