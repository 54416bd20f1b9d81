/* The web server of the conformance test images (stand-in for the e2e nginx, hostnet-nginx and
 * httpd images, which cannot be fetched here).  critest checks of those images only what this
 * reproduces: an HTTP 200 on GET /, the port (80, or $WEB_PORT), the master's pid in
 * /var/run/nginx.pid (or $WEB_PID_FILE), a main process whose command line reads
 * "<name>: master process ..." and whose comm is the binary's name (pidof finds it).
 *
 * Static, libc only; built by tests/conformance/images.py with gcc -static. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

static void serve(int fd)
{
    char buf[4096];
    size_t have = 0;
    while (have < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            break;
    }
    static const char body[] =
        "<html><body>Welcome to the Hull conformance web server</body></html>\n";
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      sizeof(body) - 1);
    if (write(fd, head, (size_t)hl) == hl && strncmp(buf, "HEAD ", 5) != 0)
        (void)!write(fd, body, sizeof(body) - 1);
    close(fd);
}

int main(int argc, char **argv)
{
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        return 1;
    self[sl] = '\0';
    char namebuf[4096];
    snprintf(namebuf, sizeof(namebuf), "%s", self);
    const char *name = basename(namebuf);
    /* first start: re-exec with the master's title as argv[0] (same pid, same comm) */
    if (strstr(argv[0], ": master process") == NULL) {
        char title[512];
        int off = snprintf(title, sizeof(title), "%s: master process %s", name, name);
        for (int i = 1; i < argc && off < (int)sizeof(title) - 1; i++)
            off += snprintf(title + off, sizeof(title) - (size_t)off, " %s", argv[i]);
        char *nargv[] = {title, NULL};
        execv(self, nargv);
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGQUIT, on_term);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN);

    const char *ps = getenv("WEB_PORT");
    int port = ps && *ps ? atoi(ps) : 80;
    const char *pidfile = getenv("WEB_PID_FILE");
    if (!pidfile || !*pidfile)
        pidfile = "/var/run/nginx.pid";

    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
    if (s >= 0) {
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(s, (struct sockaddr *)&a6, sizeof(a6)) < 0) {
            close(s);
            s = -1;
        }
    }
    if (s < 0) { /* no IPv6 in this network namespace */
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((unsigned short)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, (struct sockaddr *)&a4, sizeof(a4)) < 0) {
            fprintf(stderr, "%s: bind port %d: %s\n", name, port, strerror(errno));
            return 1;
        }
    }
    if (listen(s, 64) < 0)
        return 1;
    FILE *pf = fopen(pidfile, "we");
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    }
    fprintf(stderr, "%s: listening on port %d\n", name, port);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve(c);
    }
}
