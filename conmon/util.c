/* Small helpers for the monitor: full writes and a growable byte buffer with JSON strings. */
#define HULL_CONMON_INTERNAL
#include "conmon/conmon.h"

#include <errno.h>
#include <string.h>

int conmon_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void sbuf_add(struct sbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    sbuf_add(b, s, (size_t)n);
    free(s);
}

/* JSON string literal; bytes that are not valid UTF-8 become U+FFFD so the document stays
 * valid (runtime error text may contain anything). */
void sbuf_add_json_string(struct sbuf *b, const char *s, size_t n)
{
    sbuf_add(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sbuf_add(b, e, 2);
        } else if (c == '\n') {
            sbuf_add(b, "\\n", 2);
        } else if (c == '\t') {
            sbuf_add(b, "\\t", 2);
        } else if (c == '\r') {
            sbuf_add(b, "\\r", 2);
        } else if (c < 0x20 || c == 0x7f) {
            sbuf_addf(b, "\\u%04x", c);
        } else if (c < 0x80) {
            sbuf_add(b, &u[i], 1);
        } else {
            size_t len = (c & 0xe0) == 0xc0   ? 2
                         : (c & 0xf0) == 0xe0 ? 3
                         : (c & 0xf8) == 0xf0 ? 4
                                              : 0;
            bool ok = len > 0 && i + len <= n;
            for (size_t k = 1; ok && k < len; k++)
                ok = (u[i + k] & 0xc0) == 0x80;
            if (ok) {
                sbuf_add(b, &u[i], len);
                i += len - 1;
            } else {
                sbuf_add(b, "\xef\xbf\xbd", 3);
            }
        }
    }
    sbuf_add(b, "\"", 1);
}

void sbuf_free(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
