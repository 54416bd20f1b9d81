/* One client connection: non-blocking reads and writes, plain or under TLS. */
#include "stream/internal.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

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
