/* /proc/PID/mountinfo parsing: see mountinfo.h. */
#include "common/mountinfo.h"

#include <errno.h>
#include <string.h>

#define MOUNTINFO_MAX (16u << 20)

void hull_mountinfo_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* The next space-separated field of *p (NULL at the end); *p moves past it. */
static char *next_field(char **p)
{
    char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    char *e = strchr(s, ' ');
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

static bool parse_int(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0 || v > 0x7fffffff)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_line(char *line, struct hull_mountinfo_entry *e)
{
    /* the separator: no field before it holds a space (the paths are escaped) */
    char *sep = strstr(line, " - ");
    if (sep == NULL)
        return false;
    *sep = '\0';
    char *p = line, *rest = sep + 3;
    char *id = next_field(&p), *parent = next_field(&p), *dev = next_field(&p);
    e->root = next_field(&p);
    e->mount_point = next_field(&p);
    e->options = next_field(&p);
    if (e->options == NULL || !parse_int(id, &e->id) || !parse_int(parent, &e->parent))
        return false;
    unsigned maj = 0, min = 0;
    char *colon = strchr(dev, ':');
    if (colon == NULL)
        return false;
    *colon = '\0';
    int a, b;
    if (!parse_int(dev, &a) || !parse_int(colon + 1, &b))
        return false;
    maj = (unsigned)a;
    min = (unsigned)b;
    e->major = maj;
    e->minor = min;
    while (*p == ' ')
        p++;
    e->optional = p; /* what is left before " - " */
    e->fstype = next_field(&rest);
    e->source = next_field(&rest);
    e->super_options = next_field(&rest);
    if (e->fstype == NULL)
        return false;
    if (e->source == NULL)
        e->source = sep + 2; /* "" */
    if (e->super_options == NULL)
        e->super_options = sep + 2;
    *(sep + 2) = '\0';
    hull_mountinfo_unescape(e->root);
    hull_mountinfo_unescape(e->mount_point);
    hull_mountinfo_unescape(e->source);
    return true;
}

void hull_mountinfo_parse(const char *text, struct hull_mountinfo *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    for (const char *s = text ? text : ""; *s;) {
        const char *nl = strchrnul(s, '\n');
        char *line = xstrndup(s, (size_t)(nl - s));
        s = *nl ? nl + 1 : nl;
        struct hull_mountinfo_entry e = {.line_ = line};
        if (!parse_line(line, &e)) {
            free(line);
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->v = xrealloc(out->v, cap * sizeof(*out->v));
        }
        out->v[out->n++] = e;
    }
}

int hull_mountinfo_read(const char *path, struct hull_mountinfo *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(path ? path : "/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL, err);
    if (r < 0)
        return r;
    hull_mountinfo_parse(text, out);
    return 0;
}

void hull_mountinfo_clear(struct hull_mountinfo *mi)
{
    for (size_t i = 0; i < mi->n; i++)
        free(mi->v[i].line_);
    free(mi->v);
    memset(mi, 0, sizeof(*mi));
}

bool hull_path_at_or_below(const char *path, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

const struct hull_mountinfo_entry *hull_mountinfo_holding(const struct hull_mountinfo *mi,
                                                          const char *path)
{
    const struct hull_mountinfo_entry *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < mi->n; i++) {
        const char *mp = mi->v[i].mount_point;
        size_t l = strlen(mp);
        if (!hull_path_at_or_below(path, mp) || (best && l < best_len))
            continue;
        best = &mi->v[i];
        best_len = l;
    }
    return best;
}

char *hull_mount_point_of(const char *path, hull_error_t *err)
{
    struct hull_mountinfo mi;
    if (hull_mountinfo_read(NULL, &mi, err) < 0)
        return NULL;
    const struct hull_mountinfo_entry *e = hull_mountinfo_holding(&mi, path);
    char *best = e ? xstrdup(e->mount_point) : NULL;
    hull_mountinfo_clear(&mi);
    if (best == NULL)
        hull_error_setx(err, ENOENT, "no mount holds `%s`", path);
    return best;
}

bool hull_mountinfo_has_optional(const struct hull_mountinfo_entry *e, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *s = e->optional; s && *s;) {
        while (*s == ' ')
            s++;
        if (strncmp(s, tag, n) == 0)
            return true;
        s = strchrnul(s, ' ');
    }
    return false;
}

bool hull_option_list_has(const char *list, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *s = list; s && *s;) {
        const char *c = strchrnul(s, ',');
        if ((size_t)(c - s) == n && strncmp(s, opt, n) == 0)
            return true;
        s = *c ? c + 1 : c;
    }
    return false;
}
