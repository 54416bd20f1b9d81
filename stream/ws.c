/* WebSocket (RFC 6455) framing, base64, the resize-event parser and the error-stream Status JSON
 * of the Kubernetes remotecommand protocols. */
#include "stream/internal.h"

#include <errno.h>
#include <string.h>

ssize_t ws_frame_parse(const uint8_t *d, size_t len, uint64_t max, struct ws_frame *f)
{
    if (len < 2)
        return 0;
    memset(f, 0, sizeof(*f));
    f->fin = (d[0] & 0x80) != 0;
    if (d[0] & 0x70)
        return -EPROTO; /* no extension was negotiated */
    f->opcode = d[0] & 0x0f;
    f->masked = (d[1] & 0x80) != 0;
    uint64_t l = d[1] & 0x7f;
    size_t hl = 2;
    if (l == 126) {
        if (len < 4)
            return 0;
        l = ((uint64_t)d[2] << 8) | d[3];
        hl = 4;
    } else if (l == 127) {
        if (len < 10)
            return 0;
        l = 0;
        for (int i = 0; i < 8; i++)
            l = (l << 8) | d[2 + i];
        if (l >> 63)
            return -EPROTO;
        hl = 10;
    }
    switch (f->opcode) {
    case WS_CONT:
    case WS_TEXT:
    case WS_BINARY:
        break;
    case WS_CLOSE:
    case WS_PING:
    case WS_PONG:
        if (!f->fin || l > 125)
            return -EPROTO;
        break;
    default:
        return -EPROTO;
    }
    if (l > max)
        return -EMSGSIZE;
    if (f->masked) {
        if (len < hl + 4)
            return 0;
        memcpy(f->mask, d + hl, 4);
        hl += 4;
    }
    if (len < hl + l)
        return 0;
    f->length = l;
    f->header_len = hl;
    f->payload = d + hl;
    return (ssize_t)(hl + l);
}

void ws_put_frame(struct hull_buf *b, uint8_t opcode, bool fin, const uint8_t *mask,
                  const void *payload, size_t len)
{
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        h[1] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        h[1] = m | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = m | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    if (mask) {
        memcpy(h + hl, mask, 4);
        hl += 4;
    }
    hull_buf_add(b, h, hl);
    size_t start = b->len;
    hull_buf_add(b, payload, len);
    if (mask)
        for (size_t i = 0; i < len; i++)
            b->data[start + i] ^= mask[i & 3];
}

/* SHA-1 (FIPS 180-4), only for the WebSocket handshake's Sec-WebSocket-Accept. */
static uint32_t rol(uint32_t v, int n)
{
    return (v << n) | (v >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const uint8_t *d, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t i = 0;
    for (; i + 64 <= len; i += 64)
        sha1_block(h, d + i);
    uint8_t tail[128] = {0};
    size_t rest = len - i;
    memcpy(tail, d + i, rest);
    tail[rest] = 0x80;
    size_t tl = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++)
        tail[tl - 1 - k] = (uint8_t)(bits >> (8 * k));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (int k = 0; k < 5; k++) {
        out[4 * k] = (uint8_t)(h[k] >> 24);
        out[4 * k + 1] = (uint8_t)(h[k] >> 16);
        out[4 * k + 2] = (uint8_t)(h[k] >> 8);
        out[4 * k + 3] = (uint8_t)h[k];
    }
}

int ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[256];
    size_t kl = strlen(key);
    if (kl == 0 || kl + sizeof(guid) > sizeof(buf))
        return -EINVAL;
    memcpy(buf, key, kl);
    memcpy(buf + kl, guid, sizeof(guid) - 1);
    uint8_t md[20];
    sha1((const uint8_t *)buf, kl + sizeof(guid) - 1, md);
    hull_base64_encode_to(md, 20, out);
    return 0;
}

/* Finds one complete top-level JSON object in pending (strings and escapes respected). */
int stream_resize_feed(struct hull_buf *pending, const uint8_t *d, size_t len,
                       struct stream_winsize *size)
{
    hull_buf_add(pending, d, len);
    size_t i = 0;
    while (i < pending->len && (pending->data[i] == ' ' || pending->data[i] == '\n' ||
                                pending->data[i] == '\r' || pending->data[i] == '\t'))
        i++;
    hull_buf_consume(pending, i);
    if (pending->len == 0)
        return 0;
    if (pending->data[0] != '{')
        return -EINVAL;
    int depth = 0;
    bool in_str = false, esc = false;
    size_t end = 0;
    for (i = 0; i < pending->len; i++) {
        uint8_t c = pending->data[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) {
                end = i + 1;
                break;
            }
        }
    }
    if (end == 0)
        return pending->len > 4096 ? -EINVAL : 0;
    _cleanup_free_ char *text = xstrndup((const char *)pending->data, end);
    hull_buf_consume(pending, end);
    _cleanup_yajl_ yajl_val v = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_json_parse(text, "resize event", &v, &e) < 0 || !YAJL_IS_OBJECT(v))
        return -EINVAL;
    long long w = hull_json_get_int(v, "Width", -1), h = hull_json_get_int(v, "Height", -1);
    if (w < 0 || h < 0 || w > 65535 || h > 65535)
        return -EINVAL;
    size->width = (uint16_t)w;
    size->height = (uint16_t)h;
    return 1;
}

char *stream_status_json(int exit_code, const char *const *cmd, const char *error)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_key(&w, "metadata");
    hull_jw_begin_object(&w);
    hull_jw_end_object(&w);
    if (error == NULL && exit_code == 0) {
        hull_jw_kv_string(&w, "status", "Success");
    } else if (error != NULL) {
        _cleanup_free_ char *msg = xasprintf("Internal error occurred: %s", error);
        hull_jw_kv_string(&w, "status", "Failure");
        hull_jw_kv_string(&w, "message", msg);
        hull_jw_kv_string(&w, "reason", "InternalError");
        hull_jw_key(&w, "details");
        hull_jw_begin_object(&w);
        hull_jw_key(&w, "causes");
        hull_jw_begin_array(&w);
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "message", error);
        hull_jw_end_object(&w);
        hull_jw_end_array(&w);
        hull_jw_end_object(&w);
        hull_jw_kv_int(&w, "code", 500);
    } else {
        struct hull_buf c = {0};
        for (size_t i = 0; cmd && cmd[i]; i++) {
            if (i)
                hull_buf_add(&c, " ", 1);
            hull_buf_add(&c, cmd[i], strlen(cmd[i]));
        }
        hull_buf_add(&c, "", 1);
        _cleanup_free_ char *msg =
            xasprintf("command terminated with non-zero exit code: error executing command [%s], "
                      "exit code %d",
                      (char *)c.data, exit_code);
        hull_buf_free(&c);
        char code[16];
        snprintf(code, sizeof(code), "%d", exit_code);
        hull_jw_kv_string(&w, "status", "Failure");
        hull_jw_kv_string(&w, "message", msg);
        hull_jw_kv_string(&w, "reason", "NonZeroExitCode");
        hull_jw_key(&w, "details");
        hull_jw_begin_object(&w);
        hull_jw_key(&w, "causes");
        hull_jw_begin_array(&w);
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "reason", "ExitCode");
        hull_jw_kv_string(&w, "message", code);
        hull_jw_end_object(&w);
        hull_jw_end_array(&w);
        hull_jw_end_object(&w);
    }
    hull_jw_end_object(&w);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}
