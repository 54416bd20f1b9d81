/* Prototypes of every CRI handler, generated from the method list (server/methods.def); each
 * is defined in the area file that implements it and named in the dispatch table
 * (dispatch.c, generated from the same list). */
#ifndef HULL_SERVER_HANDLERS_H
#define HULL_SERVER_HANDLERS_H

#include "server/rpc.h"

#define METHOD(svc, name, req, resp, kind, fn)                                                     \
    int fn(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,    \
           hull_error_t *err);
#define METHOD_UNIMPLEMENTED(svc, name, req, resp, kind)
#include "server/methods.def"
#undef METHOD
#undef METHOD_UNIMPLEMENTED

#endif
