/* The CNI manager: plugin search path, result cache, the watched config dir. */

#include "cni/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

struct cni_manager {
    pthread_mutex_t lock; /* guards everything below exec */
    struct cni_exec exec; /* immutable after creation */
    char *config_dir;
    struct cni_network *current; /* NULL when none is valid */
    char *error;                 /* why current is NULL */
    char *fingerprint;           /* of the dir when current/error were computed */
    char *pod_cidr;
};

static const char *const default_plugin_dirs[] = {"/opt/cni/bin", "/usr/lib/cni"};

int cni_manager_new(const struct cni_manager_options *o, struct cni_manager **out,
                    hull_error_t *err)
{
    struct cni_manager *m = xmalloc0(sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->config_dir = xstrdup(o->config_dir && *o->config_dir ? o->config_dir : "/etc/cni/net.d");
    const char *const *dirs = o->n_plugin_dirs ? o->plugin_dirs : default_plugin_dirs;
    size_t n = o->n_plugin_dirs ? o->n_plugin_dirs : 2;
    m->exec.plugin_dirs = xmalloc0(n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        m->exec.plugin_dirs[i] = xstrdup(dirs[i]);
    m->exec.n_plugin_dirs = n;
    m->exec.timeout_ms = o->plugin_timeout_ms;
    m->exec.cache_dir = xstrdup(o->cache_dir && *o->cache_dir ? o->cache_dir : "/var/lib/cni");
    int r = hull_mkdir_p(m->exec.cache_dir, 0700, err);
    if (r < 0) {
        cni_manager_free(m);
        return r;
    }
    if (o->write_default_config) {
        bool written = false;
        _cleanup_error_ hull_error_t e = NULL;
        if (cni_write_default_config(m->config_dir, o->default_subnet, &written, &e) < 0)
            log_warn("cni: could not write the default network config: %s", hull_error_msg(&e));
    }
    *out = m;
    return 0;
}

void cni_manager_free(struct cni_manager *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->exec.n_plugin_dirs; i++)
        free(m->exec.plugin_dirs[i]);
    free(m->exec.plugin_dirs);
    free(m->exec.cache_dir);
    free(m->config_dir);
    cni_network_unref(m->current);
    free(m->error);
    free(m->fingerprint);
    free(m->pod_cidr);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

const struct cni_exec *cni_manager_exec(struct cni_manager *m)
{
    return &m->exec;
}

/* Names, sizes and mtimes of the dir's entries: cheap, and changes whenever a config file is
 * added, removed, replaced or edited. */
static char *dir_fingerprint(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return xstrdup("missing");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return xstrdup("unreadable");
    size_t cap = 256, len = 0;
    char *fp = xmalloc0(cap);
    len += (size_t)snprintf(fp, cap, "%lld.%ld;", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct stat fs;
        if (fstatat(dirfd(d), de->d_name, &fs, 0) < 0)
            continue;
        char item[512];
        int k = snprintf(item, sizeof(item), "%s:%lld:%lld.%ld:%llu;", de->d_name,
                         (long long)fs.st_size, (long long)fs.st_mtim.tv_sec, fs.st_mtim.tv_nsec,
                         (unsigned long long)fs.st_ino);
        if (k < 0)
            continue;
        if (len + (size_t)k + 1 > cap) {
            cap = (len + (size_t)k + 1) * 2;
            fp = xrealloc(fp, cap);
        }
        memcpy(fp + len, item, (size_t)k + 1);
        len += (size_t)k;
    }
    /* readdir order is stable for an unchanged dir; good enough as a fingerprint */
    return fp;
}

static void refresh_locked(struct cni_manager *m)
{
    _cleanup_free_ char *fp = dir_fingerprint(m->config_dir);
    if (m->fingerprint && strcmp(fp, m->fingerprint) == 0)
        return;
    struct cni_network *net = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    int r = cni_network_load_dir(m->config_dir, &net, &e);
    cni_network_unref(m->current);
    m->current = NULL;
    free(m->error);
    m->error = NULL;
    if (r < 0) {
        m->error = xstrdup(hull_error_msg(&e));
    } else {
        m->current = net;
        log_info("cni: using network \"%s\" from `%s`", net->name, net->source);
    }
    free(m->fingerprint);
    m->fingerprint = hull_steal(fp);
}

int cni_manager_network(struct cni_manager *m, struct cni_network **out, hull_error_t *err)
{
    pthread_mutex_lock(&m->lock);
    refresh_locked(m);
    int r = 0;
    if (m->current)
        *out = cni_network_ref(m->current);
    else
        r = hull_error_setx(err, ENOENT, "cni config uninitialized: %s",
                            m->error ? m->error : "no network config");
    pthread_mutex_unlock(&m->lock);
    return r;
}

bool cni_manager_ready(struct cni_manager *m, char **reason, char **message)
{
    pthread_mutex_lock(&m->lock);
    refresh_locked(m);
    bool ready = m->current != NULL;
    if (!ready) {
        *reason = xstrdup("NetworkPluginNotReady");
        *message = xasprintf("Network plugin returns error: cni config uninitialized: %s",
                             m->error ? m->error : "no network config");
    } else {
        *reason = NULL;
        *message = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    return ready;
}

void cni_manager_set_pod_cidr(struct cni_manager *m, const char *cidr)
{
    pthread_mutex_lock(&m->lock);
    free(m->pod_cidr);
    m->pod_cidr = cidr && *cidr ? xstrdup(cidr) : NULL;
    pthread_mutex_unlock(&m->lock);
}

char *cni_manager_pod_cidr(struct cni_manager *m)
{
    pthread_mutex_lock(&m->lock);
    char *r = m->pod_cidr ? xstrdup(m->pod_cidr) : NULL;
    pthread_mutex_unlock(&m->lock);
    return r;
}
