/* Network configuration files: parsing, directory loading, the embedded default. */

#include "cni/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define CNI_CONF_MAX (1024 * 1024)

void cni_json_emit(struct hull_json_writer *w, yajl_val v)
{
    if (v == NULL) {
        hull_jw_null(w);
        return;
    }
    switch (v->type) {
    case yajl_t_string:
        hull_jw_string(w, YAJL_GET_STRING(v));
        break;
    case yajl_t_number: {
        const char *r = YAJL_GET_NUMBER(v);
        yajl_gen_number(w->gen, r, strlen(r));
        break;
    }
    case yajl_t_object:
        hull_jw_begin_object(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            hull_jw_key(w, v->u.object.keys[i]);
            cni_json_emit(w, v->u.object.values[i]);
        }
        hull_jw_end_object(w);
        break;
    case yajl_t_array:
        hull_jw_begin_array(w);
        for (size_t i = 0; i < v->u.array.len; i++)
            cni_json_emit(w, v->u.array.values[i]);
        hull_jw_end_array(w);
        break;
    case yajl_t_true:
        hull_jw_bool(w, true);
        break;
    case yajl_t_false:
        hull_jw_bool(w, false);
        break;
    default:
        hull_jw_null(w);
        break;
    }
}

int cni_version_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        long x = 0, y = 0;
        if (a && *a) {
            char *end;
            x = strtol(a, &end, 10);
            a = *end == '.' ? end + 1 : end;
        }
        if (b && *b) {
            char *end;
            y = strtol(b, &end, 10);
            b = *end == '.' ? end + 1 : end;
        }
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static bool valid_plugin_type(const char *t)
{
    if (t == NULL || *t == '\0' || strlen(t) > 255)
        return false;
    if (strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (const char *p = t; *p; p++)
        if (*p == '/' || (unsigned char)*p < 0x20)
            return false;
    return true;
}

static bool valid_version(const char *v)
{
    if (v == NULL || *v == '\0' || strlen(v) > 16)
        return false;
    int dots = 0;
    for (const char *p = v; *p; p++) {
        if (*p == '.')
            dots++;
        else if (*p < '0' || *p > '9')
            return false;
    }
    return dots == 2;
}

static bool valid_network_name(const char *n)
{
    /* used in cache file names */
    if (n == NULL || *n == '\0' || strlen(n) > 128)
        return false;
    for (const char *p = n; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

int cni_network_parse(const char *text, const char *source, bool single, struct cni_network **out,
                      hull_error_t *err)
{
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse(text, source, &doc, err);
    if (r < 0)
        return r;
    if (!YAJL_IS_OBJECT(doc))
        return hull_error_setx(err, EINVAL, "%s: not a JSON object", source);
    yajl_val plist = hull_json_get(doc, "plugins");
    if (plist != NULL)
        single = false;
    else if (!single)
        return hull_error_setx(err, EINVAL, "%s: no \"plugins\" list", source);
    const char *name = hull_json_get_string(doc, "name", NULL);
    const char *version = hull_json_get_string(doc, "cniVersion", NULL);
    if (!valid_network_name(name))
        return hull_error_setx(err, EINVAL,
                               "%s: \"name\" missing or not a valid network name ([A-Za-z0-9_.-])",
                               source);
    if (!valid_version(version))
        return hull_error_setx(err, EINVAL, "%s: \"cniVersion\" missing or invalid", source);
    size_t n = 1;
    if (!single) {
        if (!YAJL_IS_ARRAY(plist) || plist->u.array.len == 0)
            return hull_error_setx(err, EINVAL, "%s: \"plugins\" must be a non-empty list", source);
        n = plist->u.array.len;
    }
    struct cni_network *net = xmalloc0(sizeof(*net));
    net->plugins = xmalloc0(n * sizeof(yajl_val));
    net->n_plugins = n;
    for (size_t i = 0; i < n; i++) {
        yajl_val p = single ? doc : plist->u.array.values[i];
        const char *type = YAJL_IS_OBJECT(p) ? hull_json_get_string(p, "type", NULL) : NULL;
        if (!valid_plugin_type(type)) {
            free(net->plugins);
            free(net);
            return hull_error_setx(err, EINVAL, "%s: plugin %zu: \"type\" missing or invalid",
                                   source, i);
        }
        net->plugins[i] = p;
    }
    atomic_init(&net->refs, 1);
    net->text = xstrdup(text);
    net->source = xstrdup(source);
    net->name = name;
    net->version = version;
    net->disable_check = hull_json_get_bool(doc, "disableCheck", false);
    net->doc = hull_steal(doc);
    *out = net;
    return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static bool is_conf_name(const char *n)
{
    return n[0] != '.' &&
           (has_suffix(n, ".conflist") || has_suffix(n, ".conf") || has_suffix(n, ".json"));
}

int cni_network_load_file(const char *path, struct cni_network **out, hull_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    int r = hull_read_file(path, CNI_CONF_MAX, &text, NULL, err);
    if (r < 0)
        return r;
    return cni_network_parse(text, path, !has_suffix(path, ".conflist"), out, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The configuration file names of dir in lexical order (caller frees). */
static int conf_names(const char *dir, char ***out, size_t *n_out, hull_error_t *err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return hull_error_set(err, errno, "open CNI config dir `%s`", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_conf_name(de->d_name))
            continue;
        names = xrealloc(names, (n + 1) * sizeof(char *));
        names[n++] = xstrdup(de->d_name);
    }
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_str);
    *out = names;
    *n_out = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int cni_network_load_dir(const char *dir, struct cni_network **out, hull_error_t *err)
{
    char **names = NULL;
    size_t n = 0;
    int r = conf_names(dir, &names, &n, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = hull_path_join(dir, names[i]);
        _cleanup_error_ hull_error_t e = NULL;
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (cni_network_load_file(path, out, &e) == 0) {
            free_names(names, n);
            return 0;
        }
        log_warn("cni: skipping invalid network config: %s", hull_error_msg(&e));
        free(last);
        last = xstrdup(hull_error_msg(&e));
    }
    free_names(names, n);
    if (last)
        return hull_error_setx(err, ENOENT, "no valid network config in `%s`: %s", dir, last);
    return hull_error_setx(err, ENOENT, "no network config found in `%s`", dir);
}

struct cni_network *cni_network_ref(struct cni_network *n)
{
    if (n)
        atomic_fetch_add(&n->refs, 1);
    return n;
}

void cni_network_unref(struct cni_network *n)
{
    if (n == NULL || atomic_fetch_sub(&n->refs, 1) != 1)
        return;
    yajl_tree_free(n->doc);
    free(n->plugins);
    free(n->text);
    free(n->source);
    free(n);
}

const char *cni_network_name(const struct cni_network *n)
{
    return n->name;
}

const char *cni_network_version(const struct cni_network *n)
{
    return n->version;
}

size_t cni_network_plugin_count(const struct cni_network *n)
{
    return n->n_plugins;
}

const char *cni_network_plugin_type(const struct cni_network *n, size_t i)
{
    return i < n->n_plugins ? hull_json_get_string(n->plugins[i], "type", "") : NULL;
}

const char *cni_network_text(const struct cni_network *n)
{
    return n->text;
}

char *cni_default_conflist(const char *subnet)
{
    if (subnet == NULL || *subnet == '\0')
        subnet = "10.88.0.0/16";
    for (const char *c = subnet; *c; c++)
        if (!strchr("0123456789abcdefABCDEF.:/", *c))
            subnet = "10.88.0.0/16"; /* not a CIDR: never inject it into JSON */
    bool v6 = strchr(subnet, ':') != NULL;
    return xasprintf(
        "{\n"
        "  \"cniVersion\": \"1.0.0\",\n"
        "  \"name\": \"hull\",\n"
        "  \"plugins\": [\n"
        "    {\n"
        "      \"type\": \"bridge\",\n"
        "      \"bridge\": \"hull0\",\n"
        "      \"isGateway\": true,\n"
        "      \"ipMasq\": true,\n"
        "      \"hairpinMode\": true,\n"
        "      \"ipam\": {\n"
        "        \"type\": \"host-local\",\n"
        "        \"routes\": [{ \"dst\": \"%s\" }],\n"
        "        \"ranges\": [[{ \"subnet\": \"%s\" }]]\n"
        "      }\n"
        "    },\n"
        "    { \"type\": \"portmap\", \"capabilities\": { \"portMappings\": true } },\n"
        "    { \"type\": \"loopback\" }\n"
        "  ]\n"
        "}\n",
        v6 ? "::/0" : "0.0.0.0/0", subnet);
}

int cni_write_default_config(const char *dir, const char *subnet, bool *written, hull_error_t *err)
{
    *written = false;
    int r = hull_mkdir_p(dir, 0755, err);
    if (r < 0)
        return r;
    char **names = NULL;
    size_t n = 0;
    r = conf_names(dir, &names, &n, err);
    if (r < 0)
        return r;
    free_names(names, n);
    if (n > 0)
        return 0;
    _cleanup_free_ char *text = cni_default_conflist(subnet);
    /* validate before writing (the subnet comes from the configuration) */
    struct cni_network *check = NULL;
    r = cni_network_parse(text, "default network config", false, &check, err);
    if (r < 0)
        return r;
    cni_network_unref(check);
    _cleanup_free_ char *path = hull_path_join(dir, "10-hull-bridge.conflist");
    r = hull_write_file_atomic(path, text, strlen(text), 0644, err);
    if (r < 0)
        return r;
    *written = true;
    log_info("cni: wrote default network config `%s`", path);
    return 0;
}
