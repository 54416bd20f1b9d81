/* The state store: one JSON file per object, written atomically; see store.h. */
#include "server/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_MAX_OBJECT (16 << 20)

struct hull_store {
    char *root;
};

int store_open(const char *root, struct hull_store **out, hull_error_t *err)
{
    int r = hull_mkdir_p(root, 0700, err);
    if (r < 0)
        return hull_error_wrap(err, "open state store");
    struct hull_store *s = xmalloc0(sizeof(*s));
    s->root = xstrdup(root);
    *out = s;
    return 0;
}

void store_close(struct hull_store *s)
{
    if (s == NULL)
        return;
    free(s->root);
    free(s);
}

static int check_names(const char *kind, const char *id, hull_error_t *err)
{
    if (!hull_is_safe_component(kind) || kind[0] == '.')
        return hull_error_setx(err, EINVAL, "store: invalid kind `%s`", kind);
    if (id && (!hull_is_safe_component(id) || id[0] == '.'))
        return hull_error_setx(err, EINVAL, "store: invalid id `%s`", id);
    return 0;
}

static int save(struct hull_store *s, const char *kind, const char *id, const char *json,
                size_t len, unsigned flags, hull_error_t *err)
{
    int r = check_names(kind, id, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dir = hull_path_join(s->root, kind);
    r = hull_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = xasprintf("%s/%s.json", dir, id);
    r = hull_write_file_atomic_flags(path, json, len, 0600, flags, err);
    if (r < 0)
        return hull_error_wrap(err, "save %s `%s`", kind, id);
    return 0;
}

int store_save(struct hull_store *s, const char *kind, const char *id, const char *json, size_t len,
               hull_error_t *err)
{
    return save(s, kind, id, json, len, 0, err);
}

int store_save_intent(struct hull_store *s, const char *kind, const char *id, const char *json,
                      size_t len, hull_error_t *err)
{
    return save(s, kind, id, json, len, HULL_ATOMIC_NOSYNC, err);
}

int store_remove(struct hull_store *s, const char *kind, const char *id, hull_error_t *err)
{
    int r = check_names(kind, id, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dir = hull_path_join(s->root, kind);
    _cleanup_free_ char *path = xasprintf("%s/%s.json", dir, id);
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return 0;
        return hull_error_set(err, errno, "remove %s `%s`", kind, id);
    }
    /* No fsync of the directory: a removal a power loss undoes brings back a record of an
     * object whose processes, mounts and cgroups are gone; it loads as exited / not ready and
     * kubelet removes it again (removal is idempotent, its garbage collection does it anyway). */
    return 0;
}

int store_get(struct hull_store *s, const char *kind, const char *id, yajl_val *out,
              hull_error_t *err)
{
    int r = check_names(kind, id, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = xasprintf("%s/%s/%s.json", s->root, kind, id);
    if (access(path, F_OK) < 0)
        return hull_error_setx(err, ENOENT, "%s `%s` not found", kind, id);
    return hull_json_parse_file(path, STORE_MAX_OBJECT, out, err);
}

/* Moves a bad file aside into <dir>/.corrupt/ so it can be inspected and is not loaded again. */
static void set_aside(const char *dir, const char *name, const char *why)
{
    _cleanup_free_ char *cdir = xasprintf("%s/.corrupt", dir);
    _cleanup_free_ char *from = xasprintf("%s/%s", dir, name);
    _cleanup_free_ char *to = xasprintf("%s/%s.%lld", cdir, name, (long long)hull_now_ns());
    if (mkdir(cdir, 0700) < 0 && errno != EEXIST) {
        log_error("store: cannot create %s: %s; leaving %s in place", cdir, strerror(errno), from);
        return;
    }
    if (rename(from, to) < 0)
        log_error("store: cannot move %s aside: %s", from, strerror(errno));
    else
        log_error("store: %s: %s; moved to %s", from, why, to);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_load(struct hull_store *s, const char *kind, store_load_cb cb, void *opaque,
               size_t *loaded, size_t *corrupt, hull_error_t *err)
{
    size_t n_loaded = 0, n_corrupt = 0;
    int r = check_names(kind, NULL, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dir = hull_path_join(s->root, kind);
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            goto done;
        return hull_error_set(err, errno, "open store dir `%s`", dir);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (name[0] == '.') {
            /* ".<id>.json.tmp": a write that crashed before its rename; the previous version
             * (if any) is intact, so the temp file is simply dropped. */
            if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
                log_warn("store: dropping unfinished write %s/%s", dir, name);
                unlinkat(dirfd(d), name, 0);
            }
            continue;
        }
        if (len <= 5 || strcmp(name + len - 5, ".json") != 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof(char *));
        names[n++] = xstrdup(name);
    }
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_names);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, names[i]);
        _cleanup_free_ char *id = xstrndup(names[i], strlen(names[i]) - 5);
        _cleanup_yajl_ yajl_val doc = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_json_parse_file(path, STORE_MAX_OBJECT, &doc, &e) < 0 || !YAJL_IS_OBJECT(doc)) {
            set_aside(dir, names[i], e ? hull_error_msg(&e) : "not a JSON object");
            n_corrupt++;
            continue;
        }
        if (cb && cb(opaque, id, doc, &e) < 0) {
            log_error("store: cannot restore %s `%s`: %s", kind, id, hull_error_msg(&e));
            continue;
        }
        n_loaded++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
done:
    if (loaded)
        *loaded = n_loaded;
    if (corrupt)
        *corrupt = n_corrupt;
    return 0;
}
