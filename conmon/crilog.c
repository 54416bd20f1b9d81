/* The CRI log writer: "TIMESTAMP STREAM TAG CONTENT\n" records, one per line, as kubelet's
 * CRI log parser reads them.  TAG is F for a full line (its newline is the record's newline)
 * and P for a chunk of a line longer than HULL_CONMON_LINE_MAX, or for an unfinished line
 * flushed at exit or reopen. */
#define HULL_CONMON_INTERNAL
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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

static void emit(struct crilog *l, int stream, const char *ts, char tag, const char *a, size_t an,
                 const char *b, size_t bn)
{
    if (l->fd < 0)
        return;
    char prefix[96];
    int pn = snprintf(prefix, sizeof(prefix), "%s %s %c ", ts, stream_names[stream], tag);
    struct iovec iov[4] = {
        {prefix, (size_t)pn},
        {(void *)a, an},
        {(void *)b, bn},
        {"\n", 1},
    };
    size_t total = (size_t)pn + an + bn + 1;
    if (l->max_size > 0 && l->size > 0 && l->size + (int64_t)total > l->max_size)
        rotate(l);
    size_t done = 0;
    int idx = 0;
    while (done < total) {
        ssize_t w = writev(l->fd, iov + idx, 4 - idx);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* ENOSPC & co: the record is lost, the container keeps running */
        }
        done += (size_t)w;
        l->size += w;
        while (idx < 4 && (size_t)w >= iov[idx].iov_len) {
            w -= (ssize_t)iov[idx].iov_len;
            idx++;
        }
        if (idx < 4) {
            iov[idx].iov_base = (char *)iov[idx].iov_base + w;
            iov[idx].iov_len -= (size_t)w;
        }
    }
}

void crilog_write(struct crilog *l, int stream, const char *data, size_t len, int64_t now_ns)
{
    if (l->fd < 0 || len == 0)
        return;
    char ts[64];
    hull_format_rfc3339nano(now_ns, ts, sizeof(ts));
    if (l->buf[stream] == NULL)
        l->buf[stream] = xmalloc0(HULL_CONMON_LINE_MAX);
    char *buf = l->buf[stream];
    size_t *pending = &l->len[stream];
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        if (*pending + seg <= HULL_CONMON_LINE_MAX) {
            if (nl) {
                emit(l, stream, ts, 'F', buf, *pending, data, seg);
                *pending = 0;
                data += seg + 1;
                len -= seg + 1;
            } else {
                memcpy(buf + *pending, data, seg);
                *pending += seg;
                return;
            }
        } else {
            size_t take = HULL_CONMON_LINE_MAX - *pending;
            emit(l, stream, ts, 'P', buf, *pending, data, take);
            *pending = 0;
            data += take;
            len -= take;
        }
    }
}

void crilog_flush(struct crilog *l, int64_t now_ns)
{
    char ts[64];
    hull_format_rfc3339nano(now_ns, ts, sizeof(ts));
    for (int s = 0; s < 2; s++) {
        if (l->len[s] > 0) {
            emit(l, s, ts, 'P', l->buf[s], l->len[s], NULL, 0);
            l->len[s] = 0;
        }
    }
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
