/* ttrpc messages (containerd/ttrpc channel.go): a 10-byte header (payload length and stream id,
 * big endian; message type; flags) and the payload, a protobuf Request or Response. */
#include "nri/internal.h"

#include <errno.h>
#include <string.h>

int ttrpc_feed(struct ttrpc_stream *s, const uint8_t *p, size_t n, hull_error_t *err)
{
    if (n == 0) /* an empty frame */
        return 0;
    if (s->len + n > TTRPC_HDR + TTRPC_MAX + NRI_MUX_MAX_FRAME)
        return hull_error_setx(err, EPROTO, "too much unparsed ttrpc data");
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

int ttrpc_next(struct ttrpc_stream *s, struct ttrpc_msg *m, hull_error_t *err)
{
    if (s->len < TTRPC_HDR)
        return 0;
    const uint8_t *h = s->buf;
    uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (n > TTRPC_MAX)
        return hull_error_setx(err, EPROTO, "ttrpc message of %u bytes is over the maximum %u", n,
                               TTRPC_MAX);
    if (s->len < TTRPC_HDR + (size_t)n)
        return 0;
    m->stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    m->type = h[8];
    m->flags = h[9];
    m->len = n;
    m->payload = xmalloc0(n ? n : 1);
    memcpy(m->payload, h + TTRPC_HDR, n);
    memmove(s->buf, s->buf + TTRPC_HDR + n, s->len - TTRPC_HDR - n);
    s->len -= TTRPC_HDR + n;
    return 1;
}

void ttrpc_stream_free(struct ttrpc_stream *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

uint8_t *ttrpc_encode(uint32_t stream, uint8_t type, const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = xmalloc0(TTRPC_HDR + n + 1);
    b[0] = (uint8_t)(n >> 24);
    b[1] = (uint8_t)(n >> 16);
    b[2] = (uint8_t)(n >> 8);
    b[3] = (uint8_t)n;
    b[4] = (uint8_t)(stream >> 24);
    b[5] = (uint8_t)(stream >> 16);
    b[6] = (uint8_t)(stream >> 8);
    b[7] = (uint8_t)stream;
    b[8] = type;
    b[9] = 0;
    protobuf_c_message_pack(msg, b + TTRPC_HDR);
    *len = TTRPC_HDR + n;
    return b;
}
