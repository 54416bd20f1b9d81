/* The request head the streaming server reads before an upgrade: request line, target and
 * query, header lines (bounded count and sizes). */
#include "tests/fuzz/fuzz.h"
#include "stream/internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > STREAM_MAX_REQUEST_HEAD) /* the reader answers 431 before parsing */
        return 0;
    char *head = malloc(size + 1);
    if (!head)
        abort();
    memcpy(head, data, size);
    head[size] = '\0';
    struct http_request req;
    memset(&req, 0, sizeof(req));
    int st = stream_http_parse_head(head, &req);
    hull_fuzz_check(st == 0 || st == 400 || st == 431);
    hull_fuzz_check(req.n_headers <= STREAM_MAX_HEADERS);
    if (st == 0) {
        hull_fuzz_check(req.path[0] == '/');
        hull_fuzz_check(strlen(req.method) < sizeof(req.method));
        for (size_t i = 0; i < req.n_headers; i++)
            hull_fuzz_check(req.headers[i].name[0] != '\0' && req.headers[i].value);
    }
    stream_http_request_free(&req);
    free(head);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char *const seeds[] = {
        "GET /exec/0123456789abcdef0123456789abcdef HTTP/1.1\r\n"
        "Host: 127.0.0.1:40000\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
        "X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\n"
        "User-Agent: kubectl/v1.30.0",
        "GET /portforward/0123456789abcdef0123456789abcdef?port=80&port=8080 HTTP/1.1\r\n"
        "Host: [::1]:40000\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: v4.channel.k8s.io,   base64.channel.k8s.io  ",
        "POST /attach/x HTTP/1.0\r\nA:b\r\n\t:\r\nC: \t d \t",
        "GET / HTTP/1.1",
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        add(seeds[i], strlen(seeds[i]));
}
