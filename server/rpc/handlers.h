/* Private to server/rpc/.  Prototypes of every CRI handler, generated from the method list
 * (methods.def); each is defined in the rpc_*.c file of its area and named in the dispatch
 * table (dispatch.c, generated from the same list); and the CRI status messages that more than
 * one handler file builds (rpc_status.c). */
#ifndef HULL_SERVER_HANDLERS_H
#define HULL_SERVER_HANDLERS_H

#include "server/rpc/rpc.h"

#define METHOD(svc, name, req, resp, kind, fn)                                                     \
    int fn(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,    \
           hull_error_t *err);
#define METHOD_UNIMPLEMENTED(svc, name, req, resp, kind)
#include "server/rpc/methods.def"
#undef METHOD
#undef METHOD_UNIMPLEMENTED

struct sandbox;
struct container_snapshot;
/* The CRI PodSandboxStatus of sb / ContainerStatus of a snapshot, in call memory. */
Runtime__V1__PodSandboxStatus *sandbox_status_message(struct rpc_call *call, struct sandbox *sb);
Runtime__V1__ContainerStatus *container_status_message(struct rpc_call *call,
                                                       const struct container_snapshot *s);

#endif
