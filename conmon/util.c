/* Small helpers for the monitor: full writes and JSON strings into a hull_buf. */
#include "conmon/conmon_internal.h"

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

/* JSON string literal; bytes that are not valid UTF-8 become U+FFFD so the document stays
 * valid (runtime error text may contain anything). */
void conmon_buf_add_json_string(struct hull_buf *b, const char *s, size_t n)
{
    hull_buf_add(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            hull_buf_add(b, e, 2);
        } else if (c == '\n') {
            hull_buf_add(b, "\\n", 2);
        } else if (c == '\t') {
            hull_buf_add(b, "\\t", 2);
        } else if (c == '\r') {
            hull_buf_add(b, "\\r", 2);
        } else if (c < 0x20 || c == 0x7f) {
            hull_buf_addf(b, "\\u%04x", c);
        } else if (c < 0x80) {
            hull_buf_add(b, &u[i], 1);
        } else {
            size_t len = (c & 0xe0) == 0xc0   ? 2
                         : (c & 0xf0) == 0xe0 ? 3
                         : (c & 0xf8) == 0xf0 ? 4
                                              : 0;
            bool ok = len > 0 && i + len <= n;
            for (size_t k = 1; ok && k < len; k++)
                ok = (u[i + k] & 0xc0) == 0x80;
            if (ok) {
                hull_buf_add(b, &u[i], len);
                i += len - 1;
            } else {
                hull_buf_add(b, "\xef\xbf\xbd", 3);
            }
        }
    }
    hull_buf_add(b, "\"", 1);
}
