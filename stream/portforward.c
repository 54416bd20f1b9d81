/* Port-forward: connecting to a port inside a pod's network namespace. */
#include "stream/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

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
