/* The growable byte buffer every module uses (text and binary). */
#include "common.h"

#include <string.h>

void hull_buf_reserve(struct hull_buf *b, size_t cap)
{
    if (cap <= b->cap)
        return;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

/* Room for n more bytes and the NUL after them: doubling from 256. */
static void grow(struct hull_buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    hull_buf_reserve(b, cap);
}

void hull_buf_add(struct hull_buf *b, const void *data, size_t n)
{
    grow(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hull_buf_add_str(struct hull_buf *b, const char *s)
{
    hull_buf_add(b, s, strlen(s));
}

void hull_buf_vaddf(struct hull_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    grow(b, 0);
    int n = vsnprintf(b->str + b->len, b->cap - b->len, fmt, ap);
    if (n < 0)
        abort(); /* a bad format: a programming error */
    if ((size_t)n >= b->cap - b->len) {
        grow(b, (size_t)n);
        vsnprintf(b->str + b->len, b->cap - b->len, fmt, again);
    }
    va_end(again);
    b->len += (size_t)n;
}

void hull_buf_addf(struct hull_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hull_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

void hull_buf_consume(struct hull_buf *b, size_t n)
{
    if (n == 0)
        return;
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0'; /* len < cap: n > 0 bytes were taken */
}

char *hull_buf_steal(struct hull_buf *b, size_t *len)
{
    grow(b, 0);
    b->data[b->len] = '\0';
    char *s = b->str;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void hull_buf_free(struct hull_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
