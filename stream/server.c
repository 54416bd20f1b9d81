/* The streaming server: the listener, its accept thread and one thread per connection (TLS
 * handshake, then http.c reads the request and session.c runs the upgraded connection). */
#include "stream/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define N_SLOTS (STREAM_MAX_SESSIONS + STREAM_MAX_UNAUTH)

struct conn_arg {
    struct stream_server *srv;
    int fd;
    int slot;
    int64_t deadline;
};

/* Completes the TLS handshake by deadline (monotonic ns). */
static int tls_accept(struct stream_server *s, struct stream_conn *c, int64_t deadline)
{
    SSL *ssl = SSL_new(s->tls);
    if (!ssl)
        return -ENOMEM;
    c->ssl = ssl;
    SSL_set_fd(ssl, c->fd);
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
    int64_t deadline = a->deadline;
    free(a);
    if (!s->tls || tls_accept(s, &c, deadline) == 0)
        stream_serve_connection(s, &c, slot, deadline);
    if (c.ssl)
        SSL_free(c.ssl);
    pthread_mutex_lock(&s->lock);
    if (s->conns[slot].authed)
        s->sessions--;
    else
        s->unauth--;
    s->conns[slot].fd = -1;
    s->conns[slot].authed = false;
    close(c.fd);
    s->live--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The client's address as 16 bytes (IPv4 v4-mapped). */
static void peer_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else if (ss->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
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
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        memset(&peer, 0, sizeof(peer));
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        int64_t deadline = hull_monotonic_ns() + STREAM_HEADER_TIMEOUT_MS * 1000000LL;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        uint8_t key[16];
        peer_key(&peer, key);
        /* no session slot yet: a connection without a valid token holds only one of the
         * STREAM_MAX_UNAUTH places, at most STREAM_MAX_UNAUTH_PER_PEER from one address */
        pthread_mutex_lock(&s->lock);
        int from_peer = 0, slot = -1;
        for (int i = 0; i < N_SLOTS; i++) {
            if (s->conns[i].fd < 0) {
                if (slot < 0)
                    slot = i;
            } else if (!s->conns[i].authed && memcmp(s->conns[i].peer, key, 16) == 0) {
                from_peer++;
            }
        }
        if (s->unauth >= STREAM_MAX_UNAUTH || from_peer >= STREAM_MAX_UNAUTH_PER_PEER || slot < 0) {
            int un = s->unauth;
            pthread_mutex_unlock(&s->lock);
            log_debug("stream: connection refused: %d connections without a token (%d from "
                      "this peer)",
                      un, from_peer);
            struct stream_conn pc = {.fd = fd, .ssl = NULL};
            if (!s->tls)
                stream_http_error(&pc, 503, "Service Unavailable",
                                  "too many connections without a token\n");
            close(fd);
            continue;
        }
        s->unauth++;
        s->live++;
        s->conns[slot].fd = fd;
        s->conns[slot].authed = false;
        memcpy(s->conns[slot].peer, key, 16);
        pthread_mutex_unlock(&s->lock);
        struct conn_arg *a = xmalloc0(sizeof(*a));
        a->srv = s;
        a->fd = fd;
        a->slot = slot;
        a->deadline = deadline;
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
            s->conns[slot].fd = -1;
            close(fd);
            s->unauth--;
            s->live--;
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
    for (int i = 0; i < N_SLOTS; i++)
        s->conns[i].fd = -1;
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
    for (int i = 0; i < N_SLOTS; i++)
        if (s->conns[i].fd >= 0)
            shutdown(s->conns[i].fd, SHUT_RDWR);
    while (s->live > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    stream_tokens_purge_locked(s, INT64_MAX);
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

int stream_server_unauthenticated(struct stream_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->unauth;
    pthread_mutex_unlock(&s->lock);
    return n;
}
