/* The NRI connection multiplexer (containerd/nri pkg/net/multiplex): one unix stream carries
 * several logical conns as frames of an 8-byte header (conn id, payload length; big endian)
 * and the payload.  A logical conn's payloads concatenated are its byte stream. */
#include "nri/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_full(int fd, void *buf, size_t n, bool *eof_at_start)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            if (eof_at_start)
                *eof_at_start = got == 0;
            return -EPIPE;
        }
        got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int nri_mux_read(int fd, uint32_t *conn, uint8_t **payload, size_t *len, hull_error_t *err)
{
    uint8_t hdr[NRI_MUX_HDR];
    bool eof = false;
    int r = read_full(fd, hdr, sizeof(hdr), &eof);
    if (r == -EPIPE && eof)
        return 0;
    if (r < 0)
        return hull_error_setx(err, EPROTO, "short frame header (%s)", strerror(-r));
    *conn = be32(hdr);
    uint32_t n = be32(hdr + 4);
    if (n > NRI_MUX_MAX_FRAME)
        return hull_error_setx(err, EPROTO, "frame of %u bytes is over the maximum %u", n,
                               (unsigned)NRI_MUX_MAX_FRAME);
    uint8_t *p = xmalloc0(n ? n : 1);
    r = read_full(fd, p, n, NULL);
    if (r < 0) {
        free(p);
        return hull_error_setx(err, EPROTO, "short frame payload (%s)", strerror(-r));
    }
    *payload = p;
    *len = n;
    return 1;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int nri_mux_write(int fd, uint32_t conn, const uint8_t *p, size_t len, hull_error_t *err)
{
    do {
        size_t chunk = len > NRI_MUX_MAX_FRAME ? NRI_MUX_MAX_FRAME : len;
        uint8_t hdr[NRI_MUX_HDR];
        put_be32(hdr, conn);
        put_be32(hdr + 4, (uint32_t)chunk);
        int r = write_full(fd, hdr, sizeof(hdr));
        if (r == 0)
            r = write_full(fd, p, chunk);
        if (r < 0)
            return hull_error_set(err, -r, "write to plugin");
        p += chunk;
        len -= chunk;
    } while (len > 0);
    return 0;
}
