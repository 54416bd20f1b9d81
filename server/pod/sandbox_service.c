/* The pod sandbox service: its state, the infra launcher, the CNI manager, the records loaded at
 * start-up; and its teardown at exit. */
#include "server/pod/sandbox_int.h"
#include "common/cgroup_systemd.h"

#include <libgen.h>
#include <string.h>

static char *default_pause_path(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return xstrdup("/usr/local/bin/hull-pause");
    exe[n] = '\0';
    return xasprintf("%s/hull-pause", dirname(exe));
}

int sandbox_service_init(struct hull_server *srv, hull_error_t *err)
{
    const struct hull_config *c = srv->config;
    struct sandbox_service *svc = xmalloc0(sizeof(*svc));
    pthread_rwlock_init(&svc->lock, NULL);
    pthread_mutex_init(&svc->hooks_lock, NULL);
    svc->config = c;
    svc->store = srv->store;
    svc->root = xstrdup(c->root);
    svc->state_dir = xstrdup(c->state_dir);
    svc->ns_dir = xasprintf("%s/ns", c->state_dir);
    svc->pause_path =
        c->pause_path && *c->pause_path ? xstrdup(c->pause_path) : default_pause_path();
    const char *cp = c->cgroup_parent && *c->cgroup_parent ? c->cgroup_parent : "/hull";
    svc->systemd = config_systemd_cgroup(c);
    if (svc->systemd) {
        /* a slice: pods get <stem>-pod<id>.slice (a path configured here means hull.slice) */
        size_t cl = strlen(cp);
        bool is_slice = hull_systemd_slice_valid(cp) && strcmp(cp, "-.slice") != 0;
        svc->default_cgroup_parent =
            is_slice ? xstrndup(cp, cl - strlen(".slice")) : xstrdup("hull");
    } else {
        svc->default_cgroup_parent = xstrdup(cp);
        size_t len = strlen(svc->default_cgroup_parent);
        while (len > 1 && svc->default_cgroup_parent[len - 1] == '/')
            svc->default_cgroup_parent[--len] = '\0';
    }
    srv->sandboxes = svc;
    int ir = sandbox_infra_new(svc->pause_path, svc->state_dir, &svc->infra, err);
    if (ir < 0)
        return ir;

    _cleanup_free_ char *cache = xasprintf("%s/cni", c->root);
    struct cni_manager_options o = {
        .config_dir = c->cni_config_dir,
        .plugin_dirs = (const char *const *)c->cni_plugin_dirs.items,
        .n_plugin_dirs = c->cni_plugin_dirs.len,
        .cache_dir = cache,
        .write_default_config = c->cni_write_default_config,
        .default_subnet = c->cni_default_subnet,
        .plugin_timeout_ms = c->cni_plugin_timeout > 0 && c->cni_plugin_timeout < 86400
                                 ? (int)c->cni_plugin_timeout * 1000
                                 : 0,
    };
    int r = cni_manager_new(&o, &svc->cni, err);
    if (r < 0)
        return hull_error_wrap(err, "cni");
    size_t loaded = 0, corrupt = 0;
    r = store_load(svc->store, STORE_KIND, sandbox_load_one, svc, &loaded, &corrupt, err);
    if (r < 0)
        return hull_error_wrap(err, "load pod sandboxes");
    log_info("sandboxes: %zu loaded, %zu set aside", svc->n, corrupt);
    sandbox_sweep_orphans(svc);
    return 0;
}

void sandbox_service_fini(struct hull_server *srv)
{
    struct sandbox_service *svc = sandbox_svc(srv);
    if (svc == NULL)
        return;
    for (size_t i = 0; i < svc->n; i++)
        sandbox_unref(svc->items[i]);
    free(svc->items);
    cni_manager_free(svc->cni);
    free(svc->root);
    free(svc->state_dir);
    free(svc->ns_dir);
    free(svc->pause_path);
    sandbox_infra_free(svc->infra);
    free(svc->default_cgroup_parent);
    pthread_rwlock_destroy(&svc->lock);
    pthread_mutex_destroy(&svc->hooks_lock);
    free(svc);
    srv->sandboxes = NULL;
}
