/* hulld: the daemon object every handler reaches through rpc_server(call).  Each service
 * area (a sub-folder of server/) keeps its state behind one pointer here; server_init()
 * (server/daemon/) creates them in dependency order.  This header holds only the object: the
 * areas include it, and it includes nothing of theirs but the configuration and the store. */
#ifndef HULL_SERVER_SERVER_H
#define HULL_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/common.h"
#include "server/config/config.h"
#include "server/store/store.h"

struct image_service;     /* server/image_service/ (ImageService) */
struct stats_service;     /* server/stats/ (container and pod stats) */
struct sandbox_service;   /* server/pod/ (pods + CNI) */
struct container_service; /* server/container/ */
struct stream_server;     /* streaming HTTP server (stream/), with server/container/'s backend */
struct event_hub;         /* server/events/ */
struct hull_metrics;      /* server/stats/ (Prometheus endpoint) */
struct lifecycle_hooks;   /* server/hooks.h: a listener told of each pod and container operation */
struct nri;               /* nri/ */

struct hull_server {
    /* Never replaced.  SIGHUP (server_reload) changes only its log_level string, under
     * config_lock held for writing; readers of log_level (Status verbose's config_to_json) take
     * it for reading.  Every other key is fixed until a restart (the registry settings a reload
     * brings are copied into the image store instead). */
    struct hull_config *config;
    pthread_rwlock_t config_lock;
    struct hull_store *store;
    int64_t started_ns;
    atomic_bool stopping;

    struct image_service *images;
    struct sandbox_service *sandboxes;
    struct container_service *containers;
    struct stream_server *stream;
    struct stats_service *stats;
    struct event_hub *events;            /* GetContainerEvents subscribers */
    struct hull_metrics *metrics;        /* Prometheus counters, NULL when the endpoint is off */
    struct nri *nri;                     /* NRI plugins (server/nri_hooks.c), NULL when off */
    const struct lifecycle_hooks *hooks; /* NRI's table when on, NULL when none */
    char *notify_socket;                 /* $NOTIFY_SOCKET (sd_notify), NULL when none */
};

#endif
