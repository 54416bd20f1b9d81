/* The daemon object: state directories, the store, the event hub, and each service area's
 * init/fini. */
#include "server/daemon/daemon.h"
#include "server/nri_hooks.h"
#include "image/image.h" /* images */
#include "server/container/container.h"
#include "server/events/events.h"
#include "server/image_service/image_service.h"
#include "server/pod/pod.h" /* sandboxes */
#include "server/stats/stats.h"

#include <errno.h>
#include <string.h>

int server_init(struct hull_server *srv, struct hull_config *config, hull_error_t *err)
{
    memset(srv, 0, sizeof(*srv));
    srv->config = config;
    srv->started_ns = hull_now_ns();
    pthread_rwlock_init(&srv->config_lock, NULL);
    /* created searchable, never listable (user-namespace pods need to pass through them; what
     * lies below is 0700 or per-pod 0700); an existing directory keeps its mode */
    int r = hull_mkdir_p(config->root, 0711, err);
    if (r < 0)
        return hull_error_wrap(err, "root");
    r = hull_mkdir_p(config->state_dir, 0711, err);
    if (r < 0)
        return hull_error_wrap(err, "state dir");
    _cleanup_free_ char *store_dir = hull_path_join(config->root, "store");
    r = store_open(store_dir, &srv->store, err);
    if (r < 0)
        return r;

    srv->events = events_hub_new(); /* GetContainerEvents: pods and containers publish */

    /* Service areas, in dependency order (images before sandboxes before containers).
     * Each area adds its init call here. */
    r = image_service_init(srv, err); /* images */
    if (r < 0)
        return hull_error_wrap(err, "images");

    r = sandbox_service_init(srv, err); /* sandboxes */
    if (r < 0)
        return hull_error_wrap(err, "sandboxes");

    r = container_service_init(srv, image_service_store(srv->images),
                               err); /* containers: after images and sandboxes */
    if (r < 0)
        return hull_error_wrap(err, "containers");
    sandbox_recover_finish(srv); /* pod removals a crash interrupted */
    /* hidden images no restored container took back, and layers nobody uses */
    image_gc(image_service_store(srv->images));

    r = stats_service_init(srv, err); /* container and pod stats */
    if (r < 0)
        return hull_error_wrap(err, "stats");

    r = stream_service_init(srv, err); /* streaming: last, it serves the areas above */
    if (r < 0)
        return hull_error_wrap(err, "streaming server");

    nri_hooks_init(srv); /* NRI plugins: once pods and containers are known */

    return 0;
}

void server_reload(struct hull_server *srv, struct hull_config *fresh)
{
    pthread_rwlock_wrlock(&srv->config_lock);
    struct hull_config *old = srv->config;
    /* Reloadable: the log level here and the registry settings below (copied into the image
     * store).  Everything else needs a restart: handlers hold pointers into the running
     * configuration. */
    int level = hull_log_level_parse(fresh->log_level);
    if (level >= 0 && strcmp(old->log_level, fresh->log_level) != 0) {
        log_info("SIGHUP: log level %s -> %s", old->log_level, fresh->log_level);
        hull_log_set_level(level);
        char *tmp = old->log_level;
        old->log_level = fresh->log_level;
        fresh->log_level = tmp;
    } else {
        log_info("SIGHUP: configuration reloaded (log level %s)", old->log_level);
    }
    pthread_rwlock_unlock(&srv->config_lock);
    image_service_reload(srv, fresh); /* registry mirrors, insecure registries, CAs */
    config_free(fresh);
}

void server_fini(struct hull_server *srv)
{
    /* Each area adds its fini call here, in reverse init order. */
    /* streaming: first, it uses the areas below */
    stream_service_fini(srv);
    stats_service_fini(srv);     /* stats */
    container_service_fini(srv); /* containers (their exit watcher calls NRI hooks) */
    nri_hooks_fini(srv);         /* NRI plugins */
    sandbox_service_fini(srv);   /* sandboxes */
    image_service_fini(srv);     /* images */

    events_hub_free(srv->events);
    srv->events = NULL;
    store_close(srv->store);
    pthread_rwlock_destroy(&srv->config_lock);
}
