/* The CRI log writer: "TIMESTAMP STREAM TAG CONTENT\n" records, one per line, as kubelet's
 * CRI log parser reads them.  TAG is F for a full line (its newline is the record's newline)
 * and P for a chunk of a line longer than HULL_CONMON_LINE_MAX, or for an unfinished line
 * flushed at exit or reopen. */
#include "conmon/conmon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <sys/uio.h>

static const char *const stream_names[2] = {"stdout", "stderr"};

static int open_log(const char *path, int flags)
{
    return open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0640);
}

int crilog_open(struct crilog *l, const char *path, int64_t max_size, hull_error_t *err)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->path = path;
    l->max_size = max_size;
    if (path == NULL)
        return 0;
    l->fd = open_log(path, O_APPEND);
    if (l->fd < 0)
        return hull_error_set(err, errno, "open log `%s`", path);
    struct stat st;
    if (fstat(l->fd, &st) == 0)
        l->size = st.st_size;
    return 0;
}

/* Starts a fresh, empty log file at the same path (log-max-size reached). */
static void rotate(struct crilog *l)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", l->path);
    int fd = open_log(tmp, O_APPEND | O_TRUNC);
    if (fd < 0)
        return;
    if (rename(tmp, l->path) < 0) {
        close(fd);
        unlink(tmp);
        return;
    }
    close(l->fd);
    l->fd = fd;
    l->size = 0;
}

/* Records are gathered into one writev() per batch: a read of many short lines costs one
 * system call, not one per line. */
#define BATCH_IOV 256

struct batch {
    struct crilog *l;
    struct iovec iov[BATCH_IOV];
    int n;
    size_t bytes;
    char prefix[2][96]; /* [0] = P, [1] = F */
    size_t prefix_len;
};

static void batch_init(struct batch *b, struct crilog *l, int stream, int64_t now_ns)
{
    char ts[64];
    hull_format_rfc3339nano(now_ns, ts, sizeof(ts));
    b->l = l;
    b->n = 0;
    b->bytes = 0;
    int n = snprintf(b->prefix[0], sizeof(b->prefix[0]), "%s %s P ", ts, stream_names[stream]);
    snprintf(b->prefix[1], sizeof(b->prefix[1]), "%s %s F ", ts, stream_names[stream]);
    b->prefix_len = (size_t)n;
}

static void batch_flush(struct batch *b)
{
    struct crilog *l = b->l;
    struct iovec *iov = b->iov;
    int left = b->n;
    size_t total = b->bytes;
    b->n = 0;
    b->bytes = 0;
    while (total > 0 && left > 0) {
        ssize_t w = writev(l->fd, iov, left > IOV_MAX ? IOV_MAX : left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* ENOSPC & co: the records are lost, the container keeps running */
        }
        total -= (size_t)w;
        l->size += w;
        while (left > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            left--;
        }
        if (left > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

/* Adds the record "PREFIX a b\n"; a and b must stay valid until the batch is flushed. */
static void batch_add(struct batch *b, bool full, const char *a, size_t an, const char *c,
                      size_t cn)
{
    struct crilog *l = b->l;
    size_t rec = b->prefix_len + an + cn + 1;
    if (b->n + 4 > BATCH_IOV)
        batch_flush(b);
    if (l->max_size > 0 && l->size + (int64_t)(b->bytes + rec) > l->max_size &&
        l->size + (int64_t)b->bytes > 0) {
        batch_flush(b);
        rotate(l);
    }
    b->iov[b->n++] = (struct iovec){b->prefix[full], b->prefix_len};
    if (an)
        b->iov[b->n++] = (struct iovec){(void *)a, an};
    if (cn)
        b->iov[b->n++] = (struct iovec){(void *)c, cn};
    b->iov[b->n++] = (struct iovec){"\n", 1};
    b->bytes += rec;
}

void crilog_write(struct crilog *l, int stream, const char *data, size_t len, int64_t now_ns)
{
    if (l->fd < 0 || len == 0)
        return;
    if (l->buf[stream] == NULL)
        l->buf[stream] = xmalloc0(HULL_CONMON_LINE_MAX);
    char *buf = l->buf[stream];
    size_t *pending = &l->len[stream];
    struct batch b;
    batch_init(&b, l, stream, now_ns);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        if (*pending + seg <= HULL_CONMON_LINE_MAX) {
            if (!nl) {
                batch_flush(&b); /* before buf changes under queued records */
                if (*pending == 0)
                    l->since[stream] = hull_monotonic_ns();
                memcpy(buf + *pending, data, seg);
                *pending += seg;
                return;
            }
            batch_add(&b, true, buf, *pending, data, seg);
            data += seg + 1;
            len -= seg + 1;
        } else {
            size_t take = HULL_CONMON_LINE_MAX - *pending;
            batch_add(&b, false, buf, *pending, data, take);
            data += take;
            len -= take;
        }
        if (*pending) {
            /* buf is referenced by the batch: write it out before buf is reused */
            batch_flush(&b);
            *pending = 0;
            l->since[stream] = 0;
        }
    }
    batch_flush(&b);
}

void crilog_flush(struct crilog *l, int64_t now_ns)
{
    if (l->fd < 0)
        return;
    for (int s = 0; s < 2; s++) {
        if (l->len[s] > 0) {
            struct batch b;
            batch_init(&b, l, s, now_ns);
            batch_add(&b, false, l->buf[s], l->len[s], NULL, 0);
            batch_flush(&b);
            l->len[s] = 0;
            l->since[s] = 0;
        }
    }
}

int64_t crilog_flush_stale(struct crilog *l, int64_t max_age_ns)
{
    int64_t now = hull_monotonic_ns(), next = 0;
    for (int s = 0; s < 2; s++) {
        if (l->fd < 0 || l->len[s] == 0)
            continue;
        if (now - l->since[s] >= max_age_ns) {
            struct batch b;
            batch_init(&b, l, s, hull_now_ns());
            batch_add(&b, false, l->buf[s], l->len[s], NULL, 0);
            batch_flush(&b);
            l->len[s] = 0;
            l->since[s] = 0;
        } else if (next == 0 || l->since[s] + max_age_ns < next) {
            next = l->since[s] + max_age_ns;
        }
    }
    return next;
}

int crilog_reopen(struct crilog *l, hull_error_t *err)
{
    if (l->path == NULL)
        return hull_error_setx(err, EINVAL, "no log file");
    int fd = open_log(l->path, O_APPEND);
    if (fd < 0)
        return hull_error_set(err, errno, "reopen log `%s`", l->path);
    if (l->fd >= 0) {
        fdatasync(l->fd);
        close(l->fd);
    }
    l->fd = fd;
    struct stat st;
    l->size = fstat(fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

void crilog_close(struct crilog *l)
{
    if (l->fd >= 0) {
        fdatasync(l->fd);
        close(l->fd);
    }
    l->fd = -1;
    free(l->buf[0]);
    free(l->buf[1]);
    l->buf[0] = l->buf[1] = NULL;
}
