/* The image service of hulld (image_service.c): the image store behind ImageService. */
#ifndef HULL_SERVER_IMAGE_SERVICE_H
#define HULL_SERVER_IMAGE_SERVICE_H

#include "common/common.h"

struct hull_server;
struct hull_config;
struct image_service;
struct image_store;

/* Opens the store under config->root with the registry settings of the config; sets srv->images. */
int image_service_init(struct hull_server *srv, hull_error_t *err);
void image_service_fini(struct hull_server *srv);
/* SIGHUP: takes the registry settings (mirrors, insecure registries, CA files, timeout) of a
 * freshly loaded configuration; pulls already running keep the settings they started with. */
void image_service_reload(struct hull_server *srv, const struct hull_config *fresh);
/* The store (NULL when svc is NULL). */
struct image_store *image_service_store(struct image_service *svc);

#endif
