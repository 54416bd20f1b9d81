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

void hull_strv_push_owned(char ***v, size_t *n, char *owned)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = owned;
    (*v)[*n] = NULL;
}

void hull_strv_push(char ***v, size_t *n, const char *s)
{
    hull_strv_push_owned(v, n, xstrdup(s));
}

void hull_strv_add(struct hull_strv *s, const char *str)
{
    hull_strv_push(&s->v, &s->n, str);
}

void hull_strv_add_owned(struct hull_strv *s, char *owned)
{
    hull_strv_push_owned(&s->v, &s->n, owned);
}

void hull_strv_clear(struct hull_strv *s)
{
    hull_strv_free_n(s->v, s->n);
    s->v = NULL;
    s->n = 0;
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
