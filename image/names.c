/* Paths in the store and random names for temp files: what every file of the store uses. */

#include "image/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void img_random_name(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char rnd[64];
    if (n > sizeof(rnd))
        n = sizeof(rnd);
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(rnd + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            abort();
        got += (size_t)r;
    }
    for (size_t i = 0; i + 1 < n; i++)
        out[i] = alphabet[rnd[i] & 31];
    out[n - 1] = '\0';
}

char *img_path(struct image_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *rel = NULL;
    if (vasprintf(&rel, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *r = hull_path_join(s->dir, rel);
    free(rel);
    return r;
}
