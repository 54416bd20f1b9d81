/* Base64 (RFC 4648, standard alphabet, '=' padding). */
#include "common.h"

#include <errno.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hull_base64_encode_to(const void *in, size_t len, char *out)
{
    const uint8_t *d = in;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < len)
            v |= d[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

char *hull_base64_encode(const void *in, size_t len)
{
    char *out = xmalloc0(HULL_BASE64_ENCODED_LEN(len) + 1);
    hull_base64_encode_to(in, len, out);
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t hull_base64_decode(const char *in, size_t len, uint8_t *out, bool lenient)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '=') {
            if (lenient)
                break;
            pad++;
            continue;
        }
        if (pad)
            return -EINVAL; /* data after padding */
        int v = b64_value(in[i]);
        if (v < 0) {
            if (lenient)
                continue;
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2)
        return -EINVAL;
    return (ssize_t)o;
}
