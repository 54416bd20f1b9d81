/* server/rpc/: the gRPC edge.  This header is its whole interface: grpc_serve and the method
 * table for the daemon, and the handler side of the plumbing for the CRI handlers (rpc_*.c),
 * which only translate between CRI messages and the areas' operations.
 *
 * Every CRI method has one entry in the dispatch table (dispatch.c): its full gRPC path, the
 * protobuf-c descriptor of its request, and a handler.  The plumbing (grpcserver.c) decodes the
 * request, runs the handler on a worker thread, and encodes the answer:
 *
 *   - unary handler: fill *resp (allocate it and everything in it with rpc_alloc / rpc_strdup,
 *     so it is freed with the call) and return 0; on failure return a negative errno with *err
 *     set: the errno becomes the gRPC code (see rpc_status_from_errno), the message the text.
 *   - server-streaming handler: call rpc_stream_send() for each message, return 0 at the end
 *     (leave *resp NULL).  Check rpc_call_cancelled() in long loops.
 *
 * Handlers must not hold a lock across a call to a plugin, a registry or a monitor. */
#ifndef HULL_SERVER_RPC_H
#define HULL_SERVER_RPC_H

#include <protobuf-c/protobuf-c.h>

#include "common/common.h"
#include "runtime/v1/api.pb-c.h"
#include "server/config/config.h"

struct hull_server; /* the daemon: config + module state; see server.h */
struct rpc_call;    /* one in-flight call */

typedef int (*rpc_handler_fn)(struct rpc_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **resp, hull_error_t *err);

enum rpc_kind { RPC_UNARY = 0, RPC_SERVER_STREAM = 1 };

struct rpc_method {
    const char *path; /* "/runtime.v1.RuntimeService/Version" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    enum rpc_kind kind;
    rpc_handler_fn handler; /* NULL: answers UNIMPLEMENTED naming the method */
};

/* The table of all CRI methods (dispatch.c). */
extern const struct rpc_method rpc_methods[];
extern const size_t rpc_methods_count;
/* The method name of rpc_methods[i] ("RunPodSandbox"), the metrics' operation label. */
const char *rpc_method_name(size_t i);

/* What grpc_serve needs from the daemon: the method table it routes by path (a call of
 * methods[i] is counted as metrics operation i), and what to do when the socket starts
 * accepting calls, on SIGHUP, and on SIGTERM/SIGINT before the calls in flight finish (any
 * may be NULL). */
struct grpc_hooks {
    const struct rpc_method *methods;
    size_t n_methods;
    void *opaque;
    void (*ready)(void *opaque);
    void (*reload)(void *opaque);
    void (*stopping)(void *opaque);
};
/* Serves gRPC on config->listen until a SIGTERM/SIGINT; returns 0 on a clean stop. */
int grpc_serve(struct hull_server *srv, const struct grpc_hooks *hooks, hull_error_t *err);

/* What hulld does with one request's bytes (grpcserver.c, for every call): method m, the one
 * of the table named by path (NULL or without a handler: UNIMPLEMENTED), the string check
 * (rpc_check_strings), the unpack, the handler, then the request is freed.  Returns the gRPC
 * code; *resp (call memory) is the unary answer when RPC_OK, *msg (malloc) the status text. */
enum rpc_code rpc_dispatch(struct rpc_call *call, const struct rpc_method *m, const char *path,
                           const uint8_t *data, size_t len, ProtobufCMessage **resp, char **msg);

/* A call no gRPC client made (the RPC fuzz target): handlers see a normal call; streamed
 * messages are packed and dropped; it counts as cancelled once timeout_ns have passed or after
 * max_stream_messages streamed messages (0: 1).  Free it with rpc_local_call_free (which frees
 * its call memory, the answer included). */
struct rpc_call *rpc_local_call_new(struct hull_server *srv, const char *path, int64_t timeout_ns,
                                    size_t max_stream_messages);
void rpc_local_call_free(struct rpc_call *call);

/* The daemon this call runs in. */
struct hull_server *rpc_server(struct rpc_call *call);
const struct hull_config *rpc_config(struct rpc_call *call);

/* Call-scoped allocation: zeroed, freed when the call ends.  Never fails (aborts on OOM). */
void *rpc_alloc(struct rpc_call *call, size_t size);
char *rpc_strdup(struct rpc_call *call, const char *s);
char *rpc_printf(struct rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Allocates and initialises a message of the given descriptor (e.g.
 * &runtime__v1__version_response__descriptor). */
void *rpc_new_message(struct rpc_call *call, const ProtobufCMessageDescriptor *desc);
/* Registers a cleanup to run when the call ends (for memory not from rpc_alloc). */
void rpc_defer(struct rpc_call *call, void (*fn)(void *), void *arg);

/* Long streams free per-message memory: take a mark, build and send, then release to it
 * (runs the deferred cleanups registered since the mark too). */
struct rpc_mark {
    void *chunks;
    size_t used;
    void *defers;
};
struct rpc_mark rpc_mark(struct rpc_call *call);
void rpc_release_to(struct rpc_call *call, struct rpc_mark mark);

/* Server streaming: send one message.  Returns 0, or -ECANCELED when the client went away. */
int rpc_stream_send(struct rpc_call *call, const ProtobufCMessage *msg, hull_error_t *err);
/* Server streaming: send the response headers now, before any message (a client waiting on
 * them learns that the stream is set up, e.g. that an event subscription is live).  Returns 0,
 * or -ECANCELED when the client went away. */
int rpc_stream_begin(struct rpc_call *call, hull_error_t *err);
/* True once the client cancelled, the deadline passed or the server is shutting down. */
bool rpc_call_cancelled(struct rpc_call *call);

/* protobuf-c map<string,string> fields are arrays of entries with this layout. */
struct rpc_map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
};
/* Copies n entries of src into call memory as entries of desc (the target map's entry type). */
void *rpc_copy_map(struct rpc_call *call, const ProtobufCMessageDescriptor *desc, size_t n,
                   void *const *src, size_t *n_out);
/* The entries of src as they are, for a map field of another message (no copy): every
 * map<string,string> entry is the same struct rpc_map_entry with the same two fields, and
 * protobuf-c packs each entry by its own descriptor, so the bytes on the wire are the same.
 * src must outlive the call (e.g. the config of an object the call holds a reference to). */
void *rpc_share_map(size_t n, void *const *src, size_t *n_out);
/* True if every selector entry is present with the same value among the labels. */
bool rpc_labels_match(size_t n_sel, void *const *sel, size_t n_labels, void *const *labels);
/* Checks the wire encoding of a request of type desc before it is unpacked (protobuf-c would cut
 * strings at their first NUL): a string field holding a NUL byte or bytes that are not valid
 * UTF-8 (proto3 strings are UTF-8, and they end up in JSON: OCI specs, records) is EINVAL,
 * naming the field ("config.metadata.name") and a bounded prefix of the value.  Malformed
 * encodings are left to the unpacker. */
int rpc_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      hull_error_t *err);

/* The Stream twin of a List RPC: sends the items the List builder made (an array of n message
 * pointers) as the one repeated message field of desc's messages, at most chunk per message.
 * An empty list sends nothing, or with send_empty one empty message.  ECANCELED once the call
 * is cancelled. */
int rpc_stream_items(struct rpc_call *call, const ProtobufCMessageDescriptor *desc, void *items,
                     size_t n, size_t chunk, bool send_empty, hull_error_t *err);

/* A CRI UInt64Value / FilesystemUsage in call memory (mountpoint NULL: left empty). */
Runtime__V1__UInt64Value *rpc_u64(struct rpc_call *call, uint64_t v);
Runtime__V1__FilesystemUsage *rpc_fs_usage(struct rpc_call *call, int64_t timestamp,
                                           const char *mountpoint, uint64_t used_bytes,
                                           uint64_t inodes_used);

/* gRPC status codes, as in grpc/status.h. */
enum rpc_code {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
};

/* errno → gRPC code: ENOENT NOT_FOUND, EEXIST ALREADY_EXISTS, EINVAL INVALID_ARGUMENT,
 * ENOSYS/EOPNOTSUPP UNIMPLEMENTED, EPERM/EACCES PERMISSION_DENIED, ETIMEDOUT DEADLINE_EXCEEDED,
 * ECANCELED CANCELLED, ENOSPC/EFBIG/EMSGSIZE RESOURCE_EXHAUSTED, EBUSY/ENOTEMPTY
 * FAILED_PRECONDITION, EAGAIN/ECONNREFUSED UNAVAILABLE, EILSEQ (content that does not match its
 * digest) DATA_LOSS, EBADMSG (malformed answer of a plugin or server) and EPROTONOSUPPORT (a
 * URL scheme that is refused, e.g. file://) FAILED_PRECONDITION, anything else UNKNOWN. */
enum rpc_code rpc_status_from_errno(int errnum);

#endif
