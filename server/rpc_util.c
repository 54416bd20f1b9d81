/* Helpers the CRI handlers share: protobuf map copies and label selectors. */
#include "server/rpc.h"

#include <string.h>

void *rpc_copy_map(struct rpc_call *call, const ProtobufCMessageDescriptor *desc, size_t n,
                   void *const *src, size_t *n_out)
{
    struct rpc_map_entry **out = rpc_alloc(call, (n + 1) * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const struct rpc_map_entry *e = src[i];
        out[i] = rpc_new_message(call, desc);
        out[i]->key = rpc_strdup(call, e->key);
        out[i]->value = rpc_strdup(call, e->value);
    }
    *n_out = n;
    return out;
}

bool rpc_labels_match(size_t n_sel, void *const *sel, size_t n_labels, void *const *labels)
{
    for (size_t i = 0; i < n_sel; i++) {
        const struct rpc_map_entry *want = sel[i];
        bool found = false;
        for (size_t j = 0; j < n_labels && !found; j++) {
            const struct rpc_map_entry *l = labels[j];
            found = strcmp(l->key, want->key) == 0 && strcmp(l->value, want->value) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}
