/* hulld: the daemon object every handler reaches through rpc_server(call).  Each service
 * area keeps its state behind one pointer here and initialises it in server_init(). */
#ifndef HULL_SERVER_SERVER_H
#define HULL_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/common.h"
#include "server/config.h"
#include "server/store.h"

struct image_service;     /* image_service.c (ImageService) */
struct stats_service;     /* stats_service.c (container and pod stats) */
struct sandbox_service;   /* sandbox area (pods + CNI) */
struct container_service; /* containers */
struct stream_server;     /* streaming HTTP server (stream/) */

struct hull_server {
    struct hull_config *config; /* replaced only on SIGHUP, under config_lock */
    pthread_rwlock_t config_lock;
    struct hull_store *store;
    int64_t started_ns;
    atomic_bool stopping;

    struct image_service *images;
    struct sandbox_service *sandboxes;
    struct container_service *containers;
    struct stream_server *stream;
    struct stats_service *stats;
    struct hull_metrics *metrics; /* Prometheus counters, NULL when the endpoint is off */
    struct nri *nri;              /* NRI plugins (server/nri_hooks.c), NULL when off */
    char *notify_socket;          /* $NOTIFY_SOCKET (sd_notify), NULL when none */
};

/* Creates the state directories, opens the store and every service area (recovering state). */
int server_init(struct hull_server *srv, struct hull_config *config, hull_error_t *err);
/* Applies what can change at run time from a freshly loaded configuration (SIGHUP). */
void server_reload(struct hull_server *srv, struct hull_config *fresh);
void server_fini(struct hull_server *srv);

/* The streaming server with hulld's backend (stream_service.c); srv->stream while it runs. */
int stream_service_init(struct hull_server *srv, hull_error_t *err);
void stream_service_fini(struct hull_server *srv);

/* Serves gRPC on config->listen until a SIGTERM/SIGINT; returns 0 on a clean stop. */
int grpc_serve(struct hull_server *srv, int argc, char **argv, hull_error_t *err);

#endif
