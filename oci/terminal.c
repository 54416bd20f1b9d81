/* Console: a pty created inside the container, its master sent to --console-socket. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

int oci_console_connect(const char *path, hull_error_t *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return hull_error_setx(err, ENAMETOOLONG, "console socket path `%s` too long", path);
    strcpy(addr.sun_path, path);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return hull_error_set(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return hull_error_set(err, errno, "connect to console socket `%s`", path);
    return hull_steal_fd(fd);
}

static int send_fd(int sock, int fd, const char *name)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do {
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

int oci_console_setup(int sock, uint16_t rows, uint16_t cols, hull_error_t *err)
{
    _cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return hull_error_set(err, errno, "open /dev/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        return hull_error_set(err, errno, "unlockpt");
    /* open the slave through the master: no path lookup in the container's /dev/pts */
    _cleanup_close_ int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        return hull_error_set(err, errno, "open the pty slave");
    if (rows && cols) {
        struct winsize ws = {.ws_row = rows, .ws_col = cols};
        if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
            return hull_error_set(err, errno, "set the console size %ux%u", rows, cols);
    }
    int n = 0;
    char name[64] = "/dev/pts/?";
    if (ioctl(master, TIOCGPTN, &n) == 0)
        snprintf(name, sizeof(name), "/dev/pts/%d", n);
    int r = send_fd(sock, master, name);
    if (r < 0)
        return hull_error_set(err, -r, "send the pty master to the console socket");
    if (setsid() < 0 && errno != EPERM)
        return hull_error_set(err, errno, "setsid");
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        return hull_error_set(err, errno, "set the controlling terminal");
    for (int fd = 0; fd < 3; fd++)
        if (dup2(slave, fd) < 0)
            return hull_error_set(err, errno, "dup2 pty");
    return 0;
}
