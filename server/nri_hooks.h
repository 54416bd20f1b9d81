/* hulld's NRI hooks (nri_hooks.c): what each lifecycle operation calls so that NRI plugins
 * (nri/nri.h) see and adjust pods and containers.  Every hook is a no-op when NRI is off. */
#ifndef HULL_SERVER_NRI_HOOKS_H
#define HULL_SERVER_NRI_HOOKS_H

#include "runtime/v1/api.pb-c.h"
#include "server/server.h"

struct sandbox;
struct container;

/* server_init / server_fini: takes config->nri_socket when enable_nri (a socket another
 * runtime serves is logged and NRI left off). */
void nri_hooks_init(struct hull_server *srv);
void nri_hooks_fini(struct hull_server *srv);

/* RunPodSandbox, before the pod turns READY: fails the call with the plugin's error.  On
 * success the NRI event lock stays held until nri_hooks_run_pod_done() (after READY). */
int nri_hooks_run_pod(struct hull_server *srv, struct sandbox *sb, hull_error_t *err);
void nri_hooks_run_pod_done(struct hull_server *srv);
void nri_hooks_stop_pod(struct hull_server *srv, struct sandbox *sb);
void nri_hooks_remove_pod(struct hull_server *srv, struct sandbox *sb);

/* Whether a container being created stays hidden (not listed, not found) until its
 * CreateContainer hook ran. */
bool nri_hooks_hide_created(struct hull_server *srv);
/* CreateContainer with the container's OCI spec (*spec_json, replaced by the adjusted one);
 * makes the container visible. */
int nri_hooks_create(struct hull_server *srv, struct container *c, struct sandbox *sb,
                     char **spec_json, hull_error_t *err);
/* CreateContainer failed after its hook: plugins get StopContainer and RemoveContainer. */
void nri_hooks_create_failed(struct hull_server *srv, struct container *c);
void nri_hooks_post_create(struct hull_server *srv, struct container *c);
int nri_hooks_start(struct hull_server *srv, struct container *c, hull_error_t *err);
void nri_hooks_post_start(struct hull_server *srv, struct container *c);
/* The container exited (StopContainer event, once). */
void nri_hooks_exited(struct hull_server *srv, struct container *c);
void nri_hooks_remove(struct hull_server *srv, struct container *c);
/* UpdateContainerResources from the CRI (not the updates plugins ask for). */
int nri_hooks_update(struct hull_server *srv, const char *id,
                     const Runtime__V1__LinuxContainerResources *res, hull_error_t *err);
void nri_hooks_post_update(struct hull_server *srv, const char *id);

#endif
