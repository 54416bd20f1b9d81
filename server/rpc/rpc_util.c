/* Helpers the CRI handlers share: protobuf map copies, label selectors, CRI value messages. */
#include "server/rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
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

void *rpc_share_map(size_t n, void *const *src, size_t *n_out)
{
    *n_out = src ? n : 0;
    return (void *)src;
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

Runtime__V1__UInt64Value *rpc_u64(struct rpc_call *call, uint64_t v)
{
    Runtime__V1__UInt64Value *r = rpc_new_message(call, &runtime__v1__uint64_value__descriptor);
    r->value = v;
    return r;
}

Runtime__V1__FilesystemUsage *rpc_fs_usage(struct rpc_call *call, int64_t timestamp,
                                           const char *mountpoint, uint64_t used_bytes,
                                           uint64_t inodes_used)
{
    Runtime__V1__FilesystemUsage *u =
        rpc_new_message(call, &runtime__v1__filesystem_usage__descriptor);
    u->timestamp = timestamp;
    u->fs_id = rpc_new_message(call, &runtime__v1__filesystem_identifier__descriptor);
    if (mountpoint)
        u->fs_id->mountpoint = rpc_strdup(call, mountpoint);
    u->used_bytes = rpc_u64(call, used_bytes);
    u->inodes_used = rpc_u64(call, inodes_used);
    return u;
}

int rpc_stream_items(struct rpc_call *call, const ProtobufCMessageDescriptor *desc, void *items,
                     size_t n, size_t chunk, bool send_empty, hull_error_t *err)
{
    const ProtobufCFieldDescriptor *f = NULL;
    for (unsigned i = 0; i < desc->n_fields && f == NULL; i++)
        if (desc->fields[i].label == PROTOBUF_C_LABEL_REPEATED &&
            desc->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            f = &desc->fields[i];
    if (f == NULL || chunk == 0)
        return hull_error_setx(err, EINVAL, "%s: no repeated message field", desc->name);
    if (n == 0 && !send_empty)
        return 0;
    ProtobufCMessage *m = rpc_new_message(call, desc);
    size_t off = 0;
    do {
        if (rpc_call_cancelled(call))
            return hull_error_setx(err, ECANCELED, "%s: stream cancelled", desc->name);
        size_t k = n - off < chunk ? n - off : chunk;
        *(size_t *)((char *)m + f->quantifier_offset) = k;
        *(void ***)((char *)m + f->offset) = k ? (void **)items + off : NULL;
        int r = rpc_stream_send(call, m, err);
        if (r < 0)
            return r;
        off += k;
    } while (off < n);
    return 0;
}
