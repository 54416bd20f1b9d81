/* NRI internals shared by the files of nri/ (not part of the interface). */
#ifndef HULL_NRI_INTERNAL_H
#define HULL_NRI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "nri/nri.h"
#include "nri/ttrpc.pb-c.h"

/* ---- mux.c: the multiplexed trunk ------------------------------------------------------- */
#define NRI_MUX_HDR      8 /* conn id (BE32), payload length (BE32) */
#define NRI_CONN_PLUGIN  1 /* the plugin's Plugin service; hulld is the client */
#define NRI_CONN_RUNTIME 2 /* hulld's Runtime service; the plugin is the client */

/* Reads one frame: 1 with it (*payload malloc'd), 0 at a clean end of stream, <0 on an error
 * (an oversized frame, a short read). */
int nri_mux_read(int fd, uint32_t *conn, uint8_t **payload, size_t *len, hull_error_t *err);
/* Writes p on conn, split into frames of at most the protocol's maximum. */
int nri_mux_write(int fd, uint32_t conn, const uint8_t *p, size_t len, hull_error_t *err);

/* ---- ttrpc.c: messages on one mux conn -------------------------------------------------- */
#define TTRPC_HDR           10 /* length (BE32), stream id (BE32), type, flags */
#define TTRPC_MAX           (4u << 20)
#define TTRPC_REQUEST       1
#define TTRPC_RESPONSE      2
#define TTRPC_DATA          3
#define NRI_MUX_MAX_FRAME   (TTRPC_HDR + TTRPC_MAX)
#define NRI_PLUGIN_SERVICE  "nri.pkg.api.v1alpha1.Plugin"
#define NRI_RUNTIME_SERVICE "nri.pkg.api.v1alpha1.Runtime"

struct ttrpc_msg {
    uint32_t stream;
    uint8_t type, flags;
    uint8_t *payload; /* malloc'd */
    size_t len;
};
struct ttrpc_stream {
    uint8_t *buf;
    size_t len, cap;
};
/* Appends bytes of the conn; fails when the buffered data can no longer be a message. */
int ttrpc_feed(struct ttrpc_stream *s, const uint8_t *p, size_t n, hull_error_t *err);
/* 1: *m holds the next complete message; 0: none yet; <0: protocol error. */
int ttrpc_next(struct ttrpc_stream *s, struct ttrpc_msg *m, hull_error_t *err);
void ttrpc_stream_free(struct ttrpc_stream *s);
/* Header + packed message. */
uint8_t *ttrpc_encode(uint32_t stream, uint8_t type, const ProtobufCMessage *msg, size_t *len);

/* ---- plugin.c: one connected plugin ----------------------------------------------------- */
struct nri;
struct nri_call;
struct nri_plugin {
    atomic_int refs;
    struct nri *n;
    int fd;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC */
    bool closed, registered, active;
    char *name, *idx, *full; /* full: "idx-name" */
    uint32_t events;         /* subscribed mask (bit ev-1) */
    uint32_t next_stream;
    uint32_t last_peer_stream;
    struct nri_call *calls;
    pthread_mutex_t wlock; /* frame writes */
    struct ttrpc_stream in[3];
};
struct nri_plugin *nri_plugin_new(struct nri *n, int fd);
struct nri_plugin *nri_plugin_ref(struct nri_plugin *p);
void nri_plugin_unref(struct nri_plugin *p);
/* Starts the reader thread (it holds its own reference). */
int nri_plugin_start_reader(struct nri_plugin *p, hull_error_t *err);
/* Marks p closed (wakes every waiter, shuts the socket down); idempotent. */
void nri_plugin_close(struct nri_plugin *p, const char *why);
/* Waits until p registered (true) or closed / timed out (false). */
bool nri_plugin_wait_registered(struct nri_plugin *p, int64_t timeout_ms);
/* One Plugin-service call.  0 with *resp (free_unpacked); -ETIMEDOUT / -ECONNRESET: the
 * plugin is gone (closed here); -EREMOTEIO: the plugin answered an error (its status code in
 * *code, its message in err). */
int nri_plugin_call(struct nri_plugin *p, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                    int64_t timeout_ms, int *code, hull_error_t *err);

/* ---- nri.c ------------------------------------------------------------------------------- */
struct nri {
    char *socket;
    int64_t reg_timeout_ms, req_timeout_ms;
    char *runtime_name, *runtime_version;
    struct nri_host host;
    int lfd, stop_fd;
    pthread_t accept_thread;
    pthread_rwlock_t sync; /* events shared, Synchronize exclusive */
    pthread_mutex_t lock;  /* below */
    pthread_cond_t cond;
    struct nri_plugin **plugins; /* active, in call order */
    size_t n_plugins;
    int live;                /* plugin objects alive (nri_stop waits for 0) */
    struct nri_plugin **all; /* every live plugin object (not referenced) */
    size_t n_all;
    bool stopping;
};
/* Removes p from the active list (plugin.c calls it when p closes). */
void nri_drop_plugin(struct nri *n, struct nri_plugin *p);
/* Answers a Runtime-service request of p (RegisterPlugin, UpdateContainers). */
int nri_runtime_request(struct nri_plugin *p, const Hull__Ttrpc__Request *req,
                        Hull__Ttrpc__Response *resp, uint8_t **payload, hull_error_t *err);

/* ---- adjust.c ---------------------------------------------------------------------------- */
struct nri_merge;
struct nri_merge *nri_merge_new(void);
void nri_merge_free(struct nri_merge *m);
/* Merges one plugin's adjustment (kept referenced: free m before it); EINVAL on a conflict. */
int nri_merge_add(struct nri_merge *m, const char *plugin,
                  const Nri__Pkg__Api__V1alpha1__ContainerAdjustment *a, hull_error_t *err);
bool nri_merge_empty(const struct nri_merge *m);
int nri_merge_apply(const struct nri_merge *m, const char *spec_json, char **out,
                    hull_error_t *err);

#endif
