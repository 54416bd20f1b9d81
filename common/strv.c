/* String vectors: NULL-terminated arrays of malloc'd strings, with or without a separate count. */
#include "common.h"

#include <string.h>

size_t hull_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void hull_strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void hull_strv_free_n(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

char **hull_strv_dup_n(const char *const *v, size_t n)
{
    char **r = xmalloc0((n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i] ? v[i] : "");
    return r;
}

void hull_strv_push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

bool hull_strv_remove(char **v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i], s) == 0) {
            free(v[i]);
            memmove(&v[i], &v[i + 1], (*n - i) * sizeof(char *)); /* includes the NULL */
            (*n)--;
            return true;
        }
    return false;
}

bool hull_strv_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}
