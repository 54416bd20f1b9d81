/* The check of a raw request before it is unpacked (rpc_check_strings): string fields must hold
 * UTF-8 without NUL bytes.  Used by the plumbing (grpcserver.c); it uses nothing of it. */
#include "server/rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* 0: fine or not decodable (the unpacker decides); -EINVAL with err set and the failing
 * field's path in path[] (outermost last) otherwise. */
/* Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or n. */
static size_t utf8_bad_at(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        uint32_t cp = c & (0xff >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += len;
    }
    return n;
}

static int check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                         const uint8_t *end, int depth, const char **path, int *n_path,
                         hull_error_t *err)
{
    if (depth > 32)
        return 0;
    while (p < end) {
        uint64_t tag, v;
        if (!wire_varint(&p, end, &tag))
            return 0;
        switch (tag & 7) {
        case 0:
            if (!wire_varint(&p, end, &v))
                return 0;
            continue;
        case 1:
            if (end - p < 8)
                return 0;
            p += 8;
            continue;
        case 5:
            if (end - p < 4)
                return 0;
            p += 4;
            continue;
        case 2:
            break;
        default:
            return 0; /* groups: not in the CRI, the unpacker refuses or skips them */
        }
        if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p))
            return 0;
        const uint8_t *body = p;
        p += v;
        const ProtobufCFieldDescriptor *f =
            tag >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3))
                : NULL;
        if (f == NULL)
            continue;
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            const uint8_t *nul = memchr(body, 0, v);
            size_t bad = utf8_bad_at(body, v);
            if (nul == NULL && bad == v)
                continue;
            /* the prefix before the first bad byte is printable as it is */
            size_t cut = nul && (size_t)(nul - body) < bad ? (size_t)(nul - body) : bad;
            _cleanup_free_ char *prefix = xstrndup((const char *)body, cut);
            path[(*n_path)++] = f->name;
            if (nul && (size_t)(nul - body) <= bad)
                return hull_error_setx(err, EINVAL, "holds a NUL byte after \"%s\"",
                                       HULL_CLIP(prefix));
            /* proto3 strings are UTF-8; hulld writes them into JSON (OCI spec, records) */
            return hull_error_setx(err, EINVAL, "is not valid UTF-8 after \"%s\"",
                                   HULL_CLIP(prefix));
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            int r = check_strings(f->descriptor, body, body + v, depth + 1, path, n_path, err);
            if (r < 0) {
                if (*n_path < 34)
                    path[(*n_path)++] = f->name;
                return r;
            }
        }
    }
    return 0;
}

int rpc_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      hull_error_t *err)
{
    const char *path[36];
    int n = 0;
    _cleanup_error_ hull_error_t e = NULL;
    int r = check_strings(desc, data, data + len, 0, path, &n, &e);
    if (r == 0)
        return 0;
    char buf[512];
    size_t o = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && o < sizeof(buf); i--) {
        int w = snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? "." : "", path[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    return hull_error_setx(err, EINVAL, "field %s %s", buf, hull_error_msg(&e));
}
