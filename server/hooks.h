/* Lifecycle hooks: how the pod and container parts (and the gRPC edge) tell a listener above
 * them about each operation without depending on it.  The listener (today NRI,
 * server/nri_hooks.c) installs its table in srv->hooks at start-up; with none installed every
 * hook is a no-op.  The comments are the contract each operation relies on. */
#ifndef HULL_SERVER_HOOKS_H
#define HULL_SERVER_HOOKS_H

#include "runtime/v1/api.pb-c.h"
#include "server/server.h"

#include <stdbool.h>

struct sandbox;
struct container;

struct lifecycle_hooks {
    /* RunPodSandbox, before the pod turns READY: an error fails the call.  On success the
     * listener may hold a lock until run_pod_done() (after READY). */
    int (*run_pod)(struct hull_server *srv, struct sandbox *sb, hull_error_t *err);
    void (*run_pod_done)(struct hull_server *srv);
    void (*stop_pod)(struct hull_server *srv, struct sandbox *sb);
    void (*remove_pod)(struct hull_server *srv, struct sandbox *sb);
    /* Whether a container being created stays hidden (not listed, not found) until create()
     * ran. */
    bool (*hide_created)(struct hull_server *srv);
    /* CreateContainer with the container's OCI spec (*spec_json, replaced by the adjusted
     * one); makes the container visible. */
    int (*create)(struct hull_server *srv, struct container *c, struct sandbox *sb,
                  char **spec_json, hull_error_t *err);
    /* CreateContainer failed after create(): the listener undoes what it did. */
    void (*create_failed)(struct hull_server *srv, struct container *c);
    void (*post_create)(struct hull_server *srv, struct container *c);
    int (*start)(struct hull_server *srv, struct container *c, hull_error_t *err);
    void (*post_start)(struct hull_server *srv, struct container *c);
    /* The container exited (once). */
    void (*exited)(struct hull_server *srv, struct container *c);
    void (*remove)(struct hull_server *srv, struct container *c);
    /* UpdateContainerResources from the CRI (an error fails the call). */
    int (*update)(struct hull_server *srv, const char *id,
                  const Runtime__V1__LinuxContainerResources *res, hull_error_t *err);
    void (*post_update)(struct hull_server *srv, const char *id);
};

static inline int hooks_run_pod(struct hull_server *srv, struct sandbox *sb, hull_error_t *err)
{
    return srv->hooks ? srv->hooks->run_pod(srv, sb, err) : 0;
}

static inline void hooks_run_pod_done(struct hull_server *srv)
{
    if (srv->hooks)
        srv->hooks->run_pod_done(srv);
}

static inline void hooks_stop_pod(struct hull_server *srv, struct sandbox *sb)
{
    if (srv->hooks)
        srv->hooks->stop_pod(srv, sb);
}

static inline void hooks_remove_pod(struct hull_server *srv, struct sandbox *sb)
{
    if (srv->hooks)
        srv->hooks->remove_pod(srv, sb);
}

static inline bool hooks_hide_created(struct hull_server *srv)
{
    return srv->hooks ? srv->hooks->hide_created(srv) : false;
}

static inline int hooks_create(struct hull_server *srv, struct container *c, struct sandbox *sb,
                               char **spec_json, hull_error_t *err)
{
    return srv->hooks ? srv->hooks->create(srv, c, sb, spec_json, err) : 0;
}

static inline void hooks_create_failed(struct hull_server *srv, struct container *c)
{
    if (srv->hooks)
        srv->hooks->create_failed(srv, c);
}

static inline void hooks_post_create(struct hull_server *srv, struct container *c)
{
    if (srv->hooks)
        srv->hooks->post_create(srv, c);
}

static inline int hooks_start(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    return srv->hooks ? srv->hooks->start(srv, c, err) : 0;
}

static inline void hooks_post_start(struct hull_server *srv, struct container *c)
{
    if (srv->hooks)
        srv->hooks->post_start(srv, c);
}

static inline void hooks_exited(struct hull_server *srv, struct container *c)
{
    if (srv->hooks)
        srv->hooks->exited(srv, c);
}

static inline void hooks_remove(struct hull_server *srv, struct container *c)
{
    if (srv->hooks)
        srv->hooks->remove(srv, c);
}

static inline int hooks_update(struct hull_server *srv, const char *id,
                               const Runtime__V1__LinuxContainerResources *res, hull_error_t *err)
{
    return srv->hooks ? srv->hooks->update(srv, id, res, err) : 0;
}

static inline void hooks_post_update(struct hull_server *srv, const char *id)
{
    if (srv->hooks)
        srv->hooks->post_update(srv, id);
}

#endif
