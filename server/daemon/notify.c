/* sd_notify(3)'s protocol without libsystemd: a datagram to $NOTIFY_SOCKET (a path or an
 * abstract '@' name). */
#include "server/daemon/daemon.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

char *notify_socket_take(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    char *copy = s && s[0] ? xstrdup(s) : NULL;
    unsetenv("NOTIFY_SOCKET");
    return copy;
}

int notify_send(const char *socket_path, const char *state)
{
    if (socket_path == NULL || socket_path[0] == '\0')
        return 0;
    if (socket_path[0] != '/' && socket_path[0] != '@')
        return -EAFNOSUPPORT; /* vsock and others: not supported */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(socket_path);
    if (n >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, socket_path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: no trailing NUL counted */
    socklen_t sl =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (socket_path[0] == '/' ? 1 : 0));
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl) < 0) {
        int e = errno;
        log_warn("sd_notify %s: %s", socket_path, strerror(e));
        return -e;
    }
    return 0;
}
