/* JSON helpers over yajl: tree parsing with clear errors, typed getters, a writer. */

#include "common.h"

#include <errno.h>
#include <string.h>

void hull_yajl_freep(yajl_val *v)
{
    if (*v)
        yajl_tree_free(*v);
}

int hull_json_parse(const char *text, const char *what, yajl_val *out, hull_error_t *err)
{
    char ebuf[256] = "";
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (v == NULL) {
        /* yajl's message spans lines and points at the error with an arrow: keep one line */
        char *cut = strstr(ebuf, "(right here)");
        if (cut)
            *cut = '\0';
        size_t w = 0;
        for (size_t i = 0; ebuf[i]; i++) {
            char ch = ebuf[i] == '\n' || ebuf[i] == '\t' ? ' ' : ebuf[i];
            if (ch == ' ' && (w == 0 || ebuf[w - 1] == ' '))
                continue;
            ebuf[w++] = ch;
        }
        while (w > 0 && ebuf[w - 1] == ' ')
            w--;
        ebuf[w] = '\0';
        return hull_error_setx(err, EINVAL, "parse %s: invalid JSON: %s", what,
                               ebuf[0] ? ebuf : "unknown error");
    }
    *out = v;
    return 0;
}

int hull_json_parse_file(const char *path, size_t max, yajl_val *out, hull_error_t *err)
{
    _cleanup_free_ char *buf = NULL;
    int r = hull_read_file(path, max, &buf, NULL, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *what = xasprintf("`%s`", path);
    return hull_json_parse(buf, what, out, err);
}

yajl_val hull_json_get(yajl_val obj, const char *key)
{
    if (obj == NULL || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *hull_json_get_string(yajl_val obj, const char *key, const char *def)
{
    yajl_val v = hull_json_get(obj, key);
    return (v && YAJL_IS_STRING(v)) ? YAJL_GET_STRING(v) : def;
}

long long hull_json_get_int(yajl_val obj, const char *key, long long def)
{
    yajl_val v = hull_json_get(obj, key);
    return (v && YAJL_IS_INTEGER(v)) ? YAJL_GET_INTEGER(v) : def;
}

bool hull_json_get_bool(yajl_val obj, const char *key, bool def)
{
    yajl_val v = hull_json_get(obj, key);
    if (v && YAJL_IS_TRUE(v))
        return true;
    if (v && YAJL_IS_FALSE(v))
        return false;
    return def;
}

void hull_jw_init(struct hull_json_writer *w, bool pretty)
{
    w->gen = yajl_gen_alloc(NULL);
    if (w->gen == NULL)
        abort();
    yajl_gen_config(w->gen, yajl_gen_beautify, pretty ? 1 : 0);
    yajl_gen_config(w->gen, yajl_gen_validate_utf8, 0);
}

void hull_jw_free(struct hull_json_writer *w)
{
    if (w->gen)
        yajl_gen_free(w->gen);
    w->gen = NULL;
}

void hull_jw_begin_object(struct hull_json_writer *w)
{
    yajl_gen_map_open(w->gen);
}

void hull_jw_end_object(struct hull_json_writer *w)
{
    yajl_gen_map_close(w->gen);
}

void hull_jw_begin_array(struct hull_json_writer *w)
{
    yajl_gen_array_open(w->gen);
}

void hull_jw_end_array(struct hull_json_writer *w)
{
    yajl_gen_array_close(w->gen);
}

void hull_jw_string(struct hull_json_writer *w, const char *s)
{
    if (s == NULL)
        yajl_gen_null(w->gen);
    else
        yajl_gen_string(w->gen, (const unsigned char *)s, strlen(s));
}

void hull_jw_key(struct hull_json_writer *w, const char *key)
{
    hull_jw_string(w, key);
}

void hull_jw_int(struct hull_json_writer *w, long long v)
{
    yajl_gen_integer(w->gen, v);
}

void hull_jw_bool(struct hull_json_writer *w, bool v)
{
    yajl_gen_bool(w->gen, v);
}

void hull_jw_null(struct hull_json_writer *w)
{
    yajl_gen_null(w->gen);
}

void hull_jw_kv_string(struct hull_json_writer *w, const char *key, const char *s)
{
    hull_jw_key(w, key);
    hull_jw_string(w, s);
}

void hull_jw_kv_int(struct hull_json_writer *w, const char *key, long long v)
{
    hull_jw_key(w, key);
    hull_jw_int(w, v);
}

void hull_jw_kv_bool(struct hull_json_writer *w, const char *key, bool v)
{
    hull_jw_key(w, key);
    hull_jw_bool(w, v);
}

char *hull_jw_finish(struct hull_json_writer *w, size_t *len)
{
    const unsigned char *buf = NULL;
    size_t n = 0;
    yajl_gen_get_buf(w->gen, &buf, &n);
    char *r = xstrndup((const char *)buf, n);
    if (len)
        *len = n;
    return r;
}
