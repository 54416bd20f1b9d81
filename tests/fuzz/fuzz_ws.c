/* WebSocket frames as the streaming server reads them (masked client frames, fragmented
 * messages, control frames), the resize-event JSON stream a channel carries, base64 channel
 * payloads and the Sec-WebSocket-Key of the handshake. */
#include "tests/fuzz/fuzz.h"
#include "stream/internal.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t max = size && (data[0] & 1) ? 125 : STREAM_MAX_FRAME;
    size_t off = 0;
    struct hull_buf resize = {0};
    while (off < size) {
        struct ws_frame f;
        ssize_t n = ws_frame_parse(data + off, size - off, max, &f);
        if (n <= 0) {
            hull_fuzz_check(n == 0 || n == -EMSGSIZE || n == -EPROTO);
            break;
        }
        hull_fuzz_check((size_t)n <= size - off);
        hull_fuzz_check(f.length <= max);
        hull_fuzz_check(f.header_len + f.length == (size_t)n);
        hull_fuzz_check(f.payload == data + off + f.header_len);
        uint8_t *p = malloc(f.length + 1);
        if (!p)
            abort();
        for (uint64_t i = 0; i < f.length; i++)
            p[i] = f.payload[i] ^ (f.masked ? f.mask[i & 3] : 0);
        if (f.opcode == WS_TEXT && f.length > 0) {
            /* base64 channel framing: a channel digit, then base64 */
            uint8_t *dec = malloc(HULL_BASE64_DECODED_MAX(f.length));
            if (!dec)
                abort();
            ssize_t dl = hull_base64_decode((const char *)p + 1, f.length - 1, dec, false);
            hull_fuzz_check(dl < 0 || (size_t)dl <= HULL_BASE64_DECODED_MAX(f.length));
            free(dec);
        } else if (f.opcode == WS_BINARY && f.length > 0 && p[0] == 4) {
            struct stream_winsize sz;
            int r = stream_resize_feed(&resize, p + 1, f.length - 1, &sz);
            while (r == 1)
                r = stream_resize_feed(&resize, NULL, 0, &sz);
            hull_fuzz_check(r == 0 || r == -EINVAL);
            if (r < 0)
                resize.len = 0;
        } else if (f.opcode == WS_CLOSE) {
            /* echo as the server does: re-framed, unmasked */
            struct hull_buf out = {0};
            ws_put_frame(&out, WS_CLOSE, true, NULL, p, f.length);
            struct ws_frame g;
            hull_fuzz_check(ws_frame_parse(out.data, out.len, UINT64_MAX, &g) == (ssize_t)out.len);
            hull_buf_free(&out);
        }
        free(p);
        off += (size_t)n;
    }
    hull_buf_free(&resize);
    /* the handshake key */
    char key[64];
    size_t kl = size < sizeof(key) - 1 ? size : sizeof(key) - 1;
    memcpy(key, data, kl);
    key[kl] = '\0';
    char accept[29];
    if (ws_accept_key(key, accept) == 0)
        hull_fuzz_check(strlen(accept) == 28);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    struct hull_buf all = {0};
    struct hull_buf b = {0};
    ws_put_frame(&b, WS_BINARY, true, mask, "\0echo hi\n", 9);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    b.len = 0;
    ws_put_frame(&b, WS_BINARY, true, mask, "\4{\"Width\":80,\"Height\":24}", 25);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    b.len = 0;
    ws_put_frame(&b, WS_TEXT, true, mask, "0ZWNobyBoaQo=", 13);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    b.len = 0;
    ws_put_frame(&b, WS_BINARY, false, mask, "\0part", 5);
    ws_put_frame(&b, WS_PING, true, mask, "p", 1);
    ws_put_frame(&b, WS_CONT, true, mask, "two", 3);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    b.len = 0;
    uint8_t big[300];
    memset(big, 'x', sizeof(big));
    big[0] = 0;
    ws_put_frame(&b, WS_BINARY, true, mask, big, sizeof(big)); /* 16-bit length */
    add(b.data, b.len);
    b.len = 0;
    static const uint8_t len64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    add(len64, sizeof(len64));
    ws_put_frame(&b, WS_CLOSE, true, mask,
                 "\x03\xe8"
                 "bye",
                 5);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    add(all.data, all.len);
    add("dGhlIHNhbXBsZSBub25jZQ==", 24);
    hull_buf_free(&b);
    hull_buf_free(&all);
}
