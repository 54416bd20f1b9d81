/* The dispatch table: every CRI runtime.v1 method of server/methods.def, its request/response
 * types and handler.  A NULL handler answers UNIMPLEMENTED naming the method. */
#include "server/handlers.h"

#include <string.h>

#define ENTRY(svc, name, req, resp, kind, fn)                                                      \
    {"/runtime.v1." #svc "/" #name, &runtime__v1__##req##__descriptor,                             \
     &runtime__v1__##resp##__descriptor, kind, fn},
#define METHOD(svc, name, req, resp, kind, fn)           ENTRY(svc, name, req, resp, kind, fn)
#define METHOD_UNIMPLEMENTED(svc, name, req, resp, kind) ENTRY(svc, name, req, resp, kind, NULL)

const struct rpc_method rpc_methods[] = {
#include "server/methods.def"
};

#undef METHOD
#undef METHOD_UNIMPLEMENTED
#undef ENTRY

const size_t rpc_methods_count = sizeof(rpc_methods) / sizeof(rpc_methods[0]);

const struct rpc_method *rpc_method_find(const char *path)
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        if (strcmp(rpc_methods[i].path, path) == 0)
            return &rpc_methods[i];
    return NULL;
}
