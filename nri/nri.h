/* NRI, the Node Resource Interface (github.com/containerd/nri v0.12 protocol): the runtime side.
 *
 * hulld listens on a unix socket (default /var/run/nri/nri.sock).  A plugin connects and the
 * connection is multiplexed (mux.c: frames of a 4-byte conn id and a 4-byte length, both big
 * endian): on conn 1 hulld is the ttrpc client of the plugin's Plugin service, on conn 2 the
 * plugin is the ttrpc client of hulld's Runtime service (ttrpc.c).  The plugin registers
 * (name + index; plugins are called in ascending index, then name, order), is configured
 * (it answers the events it subscribes to), synchronized with the existing pods and containers,
 * and from then on is called at each lifecycle event it subscribed to.
 *
 * Events and Synchronize exclude each other: every event is delivered between nri_begin() and
 * nri_end() (a shared lock) and a plugin's Synchronize takes the lock exclusively, so an object
 * the runtime makes visible before it calls nri_end() is either in a new plugin's Synchronize
 * set or reaches that plugin as an event.
 *
 * Timeouts: registration (default 5 s: connect to RegisterPlugin; also bounds Synchronize, which
 * is part of joining) and request (default 2 s, each other call).  A plugin that times out, sends
 * bad protocol data or disconnects is dropped; the call it was in goes on without it.  A plugin
 * that answers an error fails RunPodSandbox, CreateContainer, StartContainer and
 * UpdateContainer (the other events only log it). */
#ifndef HULL_NRI_NRI_H
#define HULL_NRI_NRI_H

#include "common/common.h"
#include "nri/api.pb-c.h"

typedef Nri__Pkg__Api__V1alpha1__PodSandbox nri_pod_t;
typedef Nri__Pkg__Api__V1alpha1__Container nri_ctr_t;
typedef Nri__Pkg__Api__V1alpha1__ContainerUpdate nri_update_t;
typedef Nri__Pkg__Api__V1alpha1__LinuxResources nri_resources_t;

/* Event numbers (the protocol's Event enum). */
enum nri_event {
    NRI_RUN_POD_SANDBOX = 1,
    NRI_STOP_POD_SANDBOX = 2,
    NRI_REMOVE_POD_SANDBOX = 3,
    NRI_CREATE_CONTAINER = 4,
    NRI_POST_CREATE_CONTAINER = 5,
    NRI_START_CONTAINER = 6,
    NRI_POST_START_CONTAINER = 7,
    NRI_UPDATE_CONTAINER = 8,
    NRI_POST_UPDATE_CONTAINER = 9,
    NRI_STOP_CONTAINER = 10,
    NRI_REMOVE_CONTAINER = 11,
};

/* Memory for messages the runtime builds (everything freed at once). */
struct nri_arena {
    void **p;
    size_t n, cap;
};
void *nri_alloc(struct nri_arena *a, size_t size);    /* zeroed */
char *nri_strdup(struct nri_arena *a, const char *s); /* NULL -> "" */
void nri_arena_free(struct nri_arena *a);
nri_pod_t *nri_pod_new(struct nri_arena *a);
nri_ctr_t *nri_ctr_new(struct nri_arena *a);
/* Appends to a string map field (labels, annotations) of a message built in a. */
void nri_map_add(struct nri_arena *a, size_t *n, void ***entries, const char *k, const char *v);

/* What the runtime provides. */
struct nri_host {
    void *opaque;
    /* Every pod and container (built in a) for a plugin's Synchronize. */
    void (*snapshot)(void *opaque, struct nri_arena *a, nri_pod_t ***pods, size_t *n_pods,
                     nri_ctr_t ***ctrs, size_t *n_ctrs);
    /* A container update a plugin asked for (UpdateContainers, Synchronize). */
    int (*update)(void *opaque, const nri_update_t *u, hull_error_t *err);
};

struct nri_options {
    const char *socket;
    int64_t registration_timeout_ms; /* 0: 5000 */
    int64_t request_timeout_ms;      /* 0: 2000 */
    const char *runtime_name, *runtime_version;
};

struct nri;
/* Takes the socket (its directory is created 0711); EADDRINUSE when another process serves it. */
int nri_start(const struct nri_options *o, const struct nri_host *h, struct nri **out,
              hull_error_t *err);
/* Closes the socket and every plugin connection (NULL: nothing). */
void nri_stop(struct nri *n);
/* Registered plugins (for tests and logs). */
size_t nri_plugin_count(struct nri *n);

/* Every event call is made between these two (see above). */
void nri_begin(struct nri *n);
void nri_end(struct nri *n);

/* Pod events (RUN/STOP/REMOVE_POD_SANDBOX).  Fails only for RUN_POD_SANDBOX (EIO, the
 * plugin's message). */
int nri_pod_event(struct nri *n, enum nri_event ev, const nri_pod_t *pod, hull_error_t *err);
/* Container events other than CREATE and UPDATE.  Fails only for START_CONTAINER. */
int nri_ctr_event(struct nri *n, enum nri_event ev, const nri_pod_t *pod, const nri_ctr_t *ctr,
                  hull_error_t *err);
/* CreateContainer: every subscribed plugin adjusts the container; the adjustments are merged
 * (two plugins touching the same annotation, env variable, mount, device, rlimit, args or
 * resource field is a conflict: EINVAL) and applied to spec_json (the OCI config.json text).
 * *spec_out is NULL when nothing changed, else the new text (free it). */
int nri_create_container(struct nri *n, const nri_pod_t *pod, const nri_ctr_t *ctr,
                         const char *spec_json, char **spec_out, hull_error_t *err);
/* UpdateContainer with the new resources. */
int nri_update_container(struct nri *n, const nri_pod_t *pod, const nri_ctr_t *ctr,
                         const nri_resources_t *res, hull_error_t *err);

/* Fills ctr's args, env, mounts, rlimits, hooks and linux resources from an OCI spec. */
int nri_ctr_from_spec(struct nri_arena *a, nri_ctr_t *ctr, const char *spec_json,
                      hull_error_t *err);

#endif
