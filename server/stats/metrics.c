/* The Prometheus endpoint (see metrics.h): atomic counters bumped at the gRPC edge and by image
 * pulls, gauges computed at scrape time, and one HTTP/1.1 thread that serves GET /metrics to one
 * scraper at a time with a bounded request and a deadline per connection. */
#include "server/stats/stats.h"
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define N_CODES          17
#define REQ_MAX          8192 /* request head; larger requests get 431 */
#define CONN_DEADLINE_MS 5000 /* a whole connection, read and write */

static const double rpc_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60};
#define N_RPC_BUCKETS (sizeof(rpc_buckets) / sizeof(rpc_buckets[0]))
static const double pull_buckets[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
#define N_PULL_BUCKETS (sizeof(pull_buckets) / sizeof(pull_buckets[0]))

/* gRPC code names as grpc-go prints them (what operators grep for). */
static const char *const code_names[N_CODES] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

struct histogram {
    atomic_ullong buckets[N_RPC_BUCKETS + 1]; /* non-cumulative; the last is +Inf */
    atomic_ullong sum_ns;
};

struct method_stats {
    atomic_ullong errors[N_CODES];
    struct histogram latency; /* its count is the operation count */
};

struct hull_metrics {
    struct metrics_sources src;   /* operation names and the gauges' counts */
    struct method_stats *methods; /* src.n_operations */
    atomic_ullong pulls_ok, pulls_failed, pull_bytes;
    struct histogram pull_duration; /* uses N_PULL_BUCKETS + 1 of the buckets */
    atomic_ullong monitor_lost;

    int listen_fd, stop_fd;
    bool thread_running;
    pthread_t thread;
    struct hull_server *srv;
};

static void hist_observe(struct histogram *h, const double *bounds, size_t n, int64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < n && s > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns > 0 ? (unsigned long long)ns : 0,
                              memory_order_relaxed);
}

void metrics_rpc_done(struct hull_metrics *m, size_t method, int code, int64_t duration_ns)
{
    if (m == NULL || method >= m->src.n_operations)
        return;
    struct method_stats *s = &m->methods[method];
    hist_observe(&s->latency, rpc_buckets, N_RPC_BUCKETS, duration_ns);
    if (code > 0 && code < N_CODES)
        atomic_fetch_add_explicit(&s->errors[code], 1, memory_order_relaxed);
}

void metrics_image_pull(struct hull_metrics *m, uint64_t bytes, int64_t duration_ns, bool ok)
{
    if (m == NULL)
        return;
    atomic_fetch_add_explicit(ok ? &m->pulls_ok : &m->pulls_failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->pull_bytes, bytes, memory_order_relaxed);
    hist_observe(&m->pull_duration, pull_buckets, N_PULL_BUCKETS, duration_ns);
}

void metrics_monitor_lost(struct hull_metrics *m)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->monitor_lost, 1, memory_order_relaxed);
}

/* ---- rendering --------------------------------------------------------------------------- */
static void head(struct hull_buf *b, const char *name, const char *type, const char *help)
{
    hull_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram's series; labels is "" or `key="value"`. */
static void hist_render(struct hull_buf *b, const char *name, const char *labels,
                        const struct histogram *h, const double *bounds, size_t n)
{
    unsigned long long cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= n; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < n)
            hull_buf_addf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], cum);
        else
            hull_buf_addf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    hull_buf_addf(b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, sum);
    hull_buf_addf(b, "%s_count%s%s%s %llu\n", name, open, labels, close, cum);
}

static unsigned long long hist_count(const struct histogram *h, size_t n)
{
    unsigned long long c = 0;
    for (size_t i = 0; i <= n; i++)
        c += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return c;
}

char *metrics_render(struct hull_server *srv, size_t *len)
{
    struct hull_metrics *m = srv->metrics;
    struct hull_buf b = {0};
    hull_buf_reserve(&b, 16384);
    /* per-method histograms: counts taken once so the three families agree */
    size_t n_ops = m->src.n_operations;
    const char *(*method_name)(size_t) = m->src.operation_name;
    unsigned long long *counts = xmalloc0((n_ops + 1) * sizeof(*counts));
    for (size_t i = 0; i < n_ops; i++)
        counts[i] = hist_count(&m->methods[i].latency, N_RPC_BUCKETS);

    head(&b, "hull_operations_total", "counter",
         "Cumulative number of CRI operations by operation type.");
    for (size_t i = 0; i < n_ops; i++)
        if (counts[i])
            hull_buf_addf(&b, "hull_operations_total{operation=\"%s\"} %llu\n", method_name(i),
                          counts[i]);
    head(&b, "hull_operations_errors_total", "counter",
         "Cumulative number of CRI operation errors by operation type and gRPC code.");
    for (size_t i = 0; i < n_ops; i++)
        for (int c = 1; c < N_CODES; c++) {
            unsigned long long v =
                atomic_load_explicit(&m->methods[i].errors[c], memory_order_relaxed);
            if (v)
                hull_buf_addf(&b,
                              "hull_operations_errors_total{operation=\"%s\",error=\"%s\"} %llu\n",
                              method_name(i), code_names[c], v);
        }
    head(&b, "hull_operations_latency_seconds", "histogram",
         "Latency in seconds of CRI operations by operation type.");
    for (size_t i = 0; i < n_ops; i++) {
        if (!counts[i])
            continue;
        char labels[128];
        snprintf(labels, sizeof(labels), "operation=\"%s\"", method_name(i));
        hist_render(&b, "hull_operations_latency_seconds", labels, &m->methods[i].latency,
                    rpc_buckets, N_RPC_BUCKETS);
    }
    free(counts);

    head(&b, "hull_image_pulls_bytes_total", "counter",
         "Bytes (config and compressed layers) of images newly stored by PullImage.");
    hull_buf_addf(&b, "hull_image_pulls_bytes_total %llu\n",
                  atomic_load_explicit(&m->pull_bytes, memory_order_relaxed));
    head(&b, "hull_image_pulls_success_total", "counter", "Successful PullImage calls.");
    hull_buf_addf(&b, "hull_image_pulls_success_total %llu\n",
                  atomic_load_explicit(&m->pulls_ok, memory_order_relaxed));
    head(&b, "hull_image_pulls_failure_total", "counter", "Failed PullImage calls.");
    hull_buf_addf(&b, "hull_image_pulls_failure_total %llu\n",
                  atomic_load_explicit(&m->pulls_failed, memory_order_relaxed));
    head(&b, "hull_image_pulls_duration_seconds", "histogram", "Duration of PullImage calls.");
    hist_render(&b, "hull_image_pulls_duration_seconds", "", &m->pull_duration, pull_buckets,
                N_PULL_BUCKETS);

    size_t cstate[4] = {0};
    if (m->src.count_containers)
        m->src.count_containers(m->src.opaque, cstate);
    static const char *const cnames[4] = {"created", "running", "exited", "unknown"};
    head(&b, "hull_containers", "gauge", "Containers by state.");
    for (int i = 0; i < 4; i++)
        hull_buf_addf(&b, "hull_containers{state=\"%s\"} %zu\n", cnames[i], cstate[i]);
    size_t pstate[2] = {0};
    if (m->src.count_pods)
        m->src.count_pods(m->src.opaque, pstate);
    head(&b, "hull_pod_sandboxes", "gauge", "Pod sandboxes by state.");
    hull_buf_addf(&b, "hull_pod_sandboxes{state=\"ready\"} %zu\n", pstate[0]);
    hull_buf_addf(&b, "hull_pod_sandboxes{state=\"notready\"} %zu\n", pstate[1]);
    head(&b, "hull_containers_monitor_lost_total", "counter",
         "Containers whose monitor ended without recording an exit status.");
    hull_buf_addf(&b, "hull_containers_monitor_lost_total %llu\n",
                  atomic_load_explicit(&m->monitor_lost, memory_order_relaxed));
    return hull_buf_steal(&b, len);
}

/* ---- HTTP ----------------------------------------------------------------------------------- */
static int64_t now_ms(void)
{
    return hull_monotonic_ns() / 1000000;
}

/* Writes all of data before the deadline. */
static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len > 0) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -ETIMEDOUT;
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int64_t deadline, const char *status, const char *ctype,
                    const char *body, size_t len)
{
    _cleanup_free_ char *h = xasprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                       "Connection: close\r\n\r\n",
                                       status, ctype, len);
    if (send_all(fd, h, strlen(h), deadline) == 0 && body)
        send_all(fd, body, len, deadline);
}

static void serve_conn(struct hull_metrics *m, int fd)
{
    int64_t deadline = now_ms() + CONN_DEADLINE_MS;
    char req[REQ_MAX + 1];
    size_t got = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return; /* too slow: just close */
        ssize_t r = recv(fd, req + got, REQ_MAX - got, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
        if (got == REQ_MAX) {
            const char *msg = "request too large\n";
            respond(fd, deadline, "431 Request Header Fields Too Large", "text/plain", msg,
                    strlen(msg));
            return;
        }
    }
    /* request line: METHOD SP TARGET SP VERSION */
    char *eol = strpbrk(req, "\r\n");
    *eol = '\0';
    char *sp1 = strchr(req, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        const char *msg = "bad request\n";
        respond(fd, deadline, "400 Bad Request", "text/plain", msg, strlen(msg));
        return;
    }
    *sp1 = *sp2 = '\0';
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    if (strcmp(target, "/metrics") != 0) {
        const char *msg = "not found\n";
        respond(fd, deadline, "404 Not Found", "text/plain", msg, strlen(msg));
        return;
    }
    bool is_head = strcmp(req, "HEAD") == 0;
    if (strcmp(req, "GET") != 0 && !is_head) {
        const char *msg = "method not allowed\n";
        respond(fd, deadline, "405 Method Not Allowed", "text/plain", msg, strlen(msg));
        return;
    }
    size_t len = 0;
    _cleanup_free_ char *body = metrics_render(m->srv, &len);
    respond(fd, deadline, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
            is_head ? NULL : body, len);
}

static void *metrics_main(void *arg)
{
    struct hull_metrics *m = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = m->listen_fd, .events = POLLIN},
                              {.fd = m->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("metrics: poll: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        serve_conn(m, fd);
        /* half-close, then swallow what the client still sends (briefly), so that closing
         * with unread input does not reset the connection before it reads the answer */
        shutdown(fd, SHUT_WR);
        char sink[4096];
        size_t drained = 0;
        struct pollfd pd = {.fd = fd, .events = POLLIN};
        while (drained < 65536 && poll(&pd, 1, 200) > 0) {
            ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (r <= 0)
                break;
            drained += (size_t)r;
        }
        close(fd);
    }
}

int metrics_parse_address(const char *addr, char **host, int *port, hull_error_t *err)
{
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr; /* no colon: a bare port on loopback */
    size_t host_len = colon ? (size_t)(colon - addr) : 0;
    if (colon == NULL && strspn(addr, "0123456789") != strlen(addr))
        return hull_error_setx(err, EINVAL, "metrics_address `%s`: want HOST:PORT", addr);
    _cleanup_free_ char *h = xstrndup(addr, host_len);
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 3 || h[n - 1] != ']')
            return hull_error_setx(err, EINVAL, "metrics_address `%s`: bad IPv6 host", addr);
        h[n - 1] = '\0';
        memmove(h, h + 1, n - 1);
    } else if (strchr(h, ':')) {
        return hull_error_setx(err, EINVAL, "metrics_address `%s`: put an IPv6 host in brackets",
                               addr);
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(port_s, &end, 10);
    if (port_s[0] < '0' || port_s[0] > '9' || *end != '\0' || errno || p < 0 || p > 65535)
        return hull_error_setx(err, EINVAL, "metrics_address `%s`: bad port", addr);
    *host = h[0] ? xstrdup(h) : xstrdup("127.0.0.1");
    *port = (int)p;
    return 0;
}

int metrics_start(struct hull_server *srv, const struct metrics_sources *src, hull_error_t *err)
{
    const char *addr = srv->config->metrics_address;
    if (addr == NULL || addr[0] == '\0')
        return 0; /* off */
    _cleanup_free_ char *host = NULL;
    int port = 0;
    int r = metrics_parse_address(addr, &host, &port, err);
    if (r < 0)
        return r;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int g = getaddrinfo(host, portstr, &hints, &ai);
    if (g != 0)
        return hull_error_setx(err, EINVAL, "metrics_address `%s`: %s (want a numeric address)",
                               addr, gai_strerror(g));
    _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = hull_error_set(err, errno, "metrics: socket");
        freeaddrinfo(ai);
        return r;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        r = hull_error_set(err, errno, "metrics: listen on `%s`", addr);
        freeaddrinfo(ai);
        return r;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char shown[INET6_ADDRSTRLEN] = "?";
    int bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, shown, sizeof(shown));
            bound = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, shown, sizeof(shown));
            bound = ntohs(a->sin6_port);
        }
    }
    struct hull_metrics *m = xmalloc0(sizeof(*m));
    m->src = *src;
    m->methods = xmalloc0((src->n_operations + 1) * sizeof(*m->methods));
    m->srv = srv;
    m->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (m->stop_fd < 0) {
        r = hull_error_set(err, errno, "metrics: eventfd");
        free(m->methods);
        free(m);
        return r;
    }
    m->listen_fd = fd;
    fd = -1;
    srv->metrics = m;
    if (pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
        metrics_stop(srv);
        return hull_error_setx(err, EAGAIN, "metrics: cannot start its thread");
    }
    m->thread_running = true;
    log_info("metrics: Prometheus endpoint on http://%s%s%s:%d/metrics",
             ss.ss_family == AF_INET6 ? "[" : "", shown, ss.ss_family == AF_INET6 ? "]" : "",
             bound);
    return 0;
}

void metrics_stop(struct hull_server *srv)
{
    struct hull_metrics *m = srv->metrics;
    if (m == NULL)
        return;
    if (m->thread_running) {
        uint64_t one = 1;
        if (write(m->stop_fd, &one, sizeof(one)) < 0)
            log_warn("metrics: stop: %s", strerror(errno));
        pthread_join(m->thread, NULL);
    }
    close(m->listen_fd);
    close(m->stop_fd);
    srv->metrics = NULL;
    free(m->methods);
    free(m);
}
