/* The image service's state: the image store of image/ opened under config->root with the
 * registry settings of the configuration, reloaded on SIGHUP.  rpc_image.c translates the CRI
 * messages; containers get the store at their init. */
#include "server/image_service/image_service.h"
#include "image/image.h"
#include "server/server.h"

struct image_service {
    struct image_store *store;
};

struct image_store *image_service_store(struct image_service *svc)
{
    return svc ? svc->store : NULL;
}

static void kv_split(const struct hull_kv_list *l, const char ***keys, const char ***values)
{
    *keys = xmalloc0((l->len + 1) * sizeof(char *));
    *values = xmalloc0((l->len + 1) * sizeof(char *));
    for (size_t i = 0; i < l->len; i++) {
        (*keys)[i] = l->items[i].key;
        (*values)[i] = l->items[i].value;
    }
}

/* The registry settings of a configuration, as image/ takes them (arrays freed by the caller). */
struct registry_settings {
    struct image_registry_config rc;
    const char **mh, **mu, **ch, **cf;
};

static void registry_settings_of(const struct hull_config *c, struct registry_settings *o)
{
    kv_split(&c->registry_mirrors, &o->mh, &o->mu);
    kv_split(&c->registry_ca_files, &o->ch, &o->cf);
    o->rc = (struct image_registry_config){
        .mirror_hosts = o->mh,
        .mirror_urls = o->mu,
        .n_mirrors = c->registry_mirrors.len,
        .insecure = (const char *const *)c->insecure_registries.items,
        .n_insecure = c->insecure_registries.len,
        .ca_hosts = o->ch,
        .ca_files = o->cf,
        .n_ca = c->registry_ca_files.len,
        .timeout_s = (long)c->pull_timeout,
        .low_speed = (long)c->pull_low_speed_limit,
        .deadline_s = (long)c->pull_deadline,
        .max_unsized_blob = (uint64_t)c->max_unsized_blob,
        .max_layer_size = (uint64_t)c->max_layer_size,
        .max_image_size = (uint64_t)c->max_image_size,
        .fs_min_free = (uint64_t)c->image_fs_min_free,
    };
}

static void registry_settings_free(struct registry_settings *o)
{
    free(o->mh);
    free(o->mu);
    free(o->ch);
    free(o->cf);
}

int image_service_init(struct hull_server *srv, hull_error_t *err)
{
    struct registry_settings rs;
    registry_settings_of(srv->config, &rs);
    struct image_service *svc = xmalloc0(sizeof(*svc));
    int r = image_store_open(srv->config->root, &rs.rc, &svc->store, err);
    registry_settings_free(&rs);
    if (r < 0) {
        free(svc);
        return r;
    }
    srv->images = svc;
    return 0;
}

void image_service_reload(struct hull_server *srv, const struct hull_config *fresh)
{
    if (srv->images == NULL)
        return;
    struct registry_settings rs;
    registry_settings_of(fresh, &rs);
    image_store_set_registry_config(srv->images->store, &rs.rc); /* copies the strings */
    registry_settings_free(&rs);
    log_info("SIGHUP: registry settings reloaded (%zu mirrors, %zu insecure registries)",
             fresh->registry_mirrors.len, fresh->insecure_registries.len);
}

void image_service_fini(struct hull_server *srv)
{
    if (srv->images == NULL)
        return;
    image_store_close(srv->images->store);
    free(srv->images);
    srv->images = NULL;
}
