/* SPDY/3.1 frames and compressed header blocks as the streaming server reads them from a
 * client: frames parsed back to back, name/value blocks of SYN_STREAM, SYN_REPLY and HEADERS
 * inflated through one per-connection zlib context. */
#include "tests/fuzz/fuzz.h"
#include "stream/internal.h"

#include <errno.h>
#include <string.h>

static void decode_block(struct spdy_zlib *z, const uint8_t *d, size_t len)
{
    _cleanup_error_ hull_error_t err = NULL;
    struct spdy_header *h = NULL;
    size_t n = 0;
    if (spdy_headers_decode(z, d, len, &h, &n, &err) < 0) {
        hull_fuzz_check(err != NULL);
        return;
    }
    hull_fuzz_check(n <= STREAM_MAX_HEADERS || n < STREAM_MAX_HEADER_BLOCK);
    for (size_t i = 0; i < n; i++)
        hull_fuzz_check(h[i].name && h[i].value);
    (void)spdy_header_get(h, n, ":path");
    spdy_headers_free(h, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spdy_zlib z;
    _cleanup_error_ hull_error_t err = NULL;
    if (spdy_zlib_init(&z, &err) < 0)
        abort();
    /* a small max as well as the server's: both limits must hold */
    uint32_t max = size && (data[0] & 1) ? 64 : STREAM_MAX_FRAME;
    size_t off = 0;
    while (off < size) {
        struct spdy_frame f;
        ssize_t n = spdy_frame_parse(data + off, size - off, max, &f);
        if (n <= 0) {
            hull_fuzz_check(n == 0 || n == -EMSGSIZE);
            break;
        }
        hull_fuzz_check((size_t)n <= size - off);
        hull_fuzz_check(f.length <= max);
        hull_fuzz_check(f.payload >= data + off && f.payload + f.length <= data + off + (size_t)n);
        if (f.control && f.version == 3) {
            if (f.type == SPDY_SYN_STREAM && f.length >= 10)
                decode_block(&z, f.payload + 10, f.length - 10);
            else if ((f.type == SPDY_SYN_REPLY || f.type == SPDY_HEADERS) && f.length >= 4)
                decode_block(&z, f.payload + 4, f.length - 4);
        }
        off += (size_t)n;
    }
    spdy_zlib_fini(&z);
    return 0;
}

/* Seeds: what kubectl sends: SYN_STREAMs (one per remotecommand stream), data, PING,
 * SETTINGS, WINDOW_UPDATE, RST_STREAM, GOAWAY. */
void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    struct spdy_zlib z;
    _cleanup_error_ hull_error_t err = NULL;
    if (spdy_zlib_init(&z, &err) < 0)
        abort();
    struct hull_buf all = {0};
    static const char *const types[] = {"error", "stdin", "stdout", "stderr", "resize"};
    for (uint32_t i = 0; i < 5; i++) {
        struct spdy_header h[] = {{(char *)"streamtype", (char *)types[i]},
                                  {(char *)"port", (char *)"8080"},
                                  {(char *)"requestid", (char *)"0"}};
        struct hull_buf block = {0};
        if (spdy_headers_encode(&z, h, i == 4 ? 3 : 1, &block, &err) < 0)
            abort();
        uint8_t p[10] = {0};
        uint32_t id = 1 + 2 * i;
        p[0] = (uint8_t)(id >> 24);
        p[1] = (uint8_t)(id >> 16);
        p[2] = (uint8_t)(id >> 8);
        p[3] = (uint8_t)id;
        struct hull_buf payload = {0};
        hull_buf_add(&payload, p, sizeof(p));
        hull_buf_add(&payload, block.data, block.len);
        struct hull_buf frame = {0};
        spdy_put_control(&frame, SPDY_SYN_STREAM, 0, payload.data, (uint32_t)payload.len);
        add(frame.data, frame.len);
        hull_buf_add(&all, frame.data, frame.len);
        hull_buf_free(&block);
        hull_buf_free(&payload);
        hull_buf_free(&frame);
    }
    struct hull_buf b = {0};
    spdy_put_data(&b, 3, 0, "echo hi\n", 8);
    spdy_put_data(&b, 3, SPDY_FLAG_FIN, "", 0);
    spdy_put_data(&b, 9, 0, "{\"Width\":80,\"Height\":24}", 24);
    static const uint8_t ping[4] = {0, 0, 0, 1};
    spdy_put_control(&b, SPDY_PING, 0, ping, 4);
    static const uint8_t settings[12] = {0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0};
    spdy_put_control(&b, SPDY_SETTINGS, 0, settings, 12);
    static const uint8_t window[8] = {0, 0, 0, 3, 0, 0, 0x10, 0};
    spdy_put_control(&b, SPDY_WINDOW_UPDATE, 0, window, 8);
    static const uint8_t rst[8] = {0, 0, 0, 3, 0, 0, 0, 5};
    spdy_put_control(&b, SPDY_RST_STREAM, 0, rst, 8);
    static const uint8_t goaway[8] = {0, 0, 0, 9, 0, 0, 0, 0};
    spdy_put_control(&b, SPDY_GOAWAY, 0, goaway, 8);
    add(b.data, b.len);
    hull_buf_add(&all, b.data, b.len);
    add(all.data, all.len);
    hull_buf_free(&b);
    hull_buf_free(&all);
    spdy_zlib_fini(&z);
}
