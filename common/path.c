/* Lexical path cleaning: the one place that folds "//", "." and ".." in a path string. */
#include "common.h"

#include <string.h>

/* The next component of *s (after any '/'), its length in *n; NULL at the end. */
static const char *next_component(const char **s, size_t *n)
{
    while (**s == '/')
        (*s)++;
    if (**s == '\0')
        return NULL;
    const char *c = *s;
    *n = strcspn(c, "/");
    *s = c + *n;
    return c;
}

static bool is_dot(const char *c, size_t n)
{
    return n == 1 && c[0] == '.';
}

static bool is_dotdot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

char *hull_path_clean(const char *p, unsigned flags)
{
    char *out = xmalloc0(strlen(p) + 2);
    size_t o = 0, n = 0;
    const char *c;
    while ((c = next_component(&p, &n)) != NULL) {
        if (is_dot(c, n))
            continue;
        if (is_dotdot(c, n) && !(flags & HULL_PATH_KEEP_DOTDOT)) {
            /* drop the last component; at the root there is none to drop */
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, c, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

bool hull_path_has_dotdot(const char *p)
{
    size_t n = 0;
    const char *c;
    while ((c = next_component(&p, &n)) != NULL)
        if (is_dotdot(c, n))
            return true;
    return false;
}
