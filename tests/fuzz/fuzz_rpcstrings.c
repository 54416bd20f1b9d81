/* hulld's check of raw protobuf requests for NUL bytes in string fields (rpc_check_strings),
 * which runs on every gRPC request before protobuf-c unpacks it: any bytes a client sends
 * (varints of any length, lengths beyond the buffer, deep nesting, unknown fields) must be
 * walked without reading outside the buffer, and only a NUL byte or invalid UTF-8 is refused. */
#include "tests/fuzz/fuzz.h"
#include "server/rpc/rpc.h"

#include <errno.h>
#include <string.h>

static const ProtobufCMessageDescriptor *const descs[] = {
    &runtime__v1__create_container_request__descriptor,
    &runtime__v1__run_pod_sandbox_request__descriptor,
    &runtime__v1__exec_sync_request__descriptor,
    &runtime__v1__pull_image_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const ProtobufCMessageDescriptor *d = descs[data[0] % (sizeof(descs) / sizeof(descs[0]))];
    _cleanup_error_ hull_error_t err = NULL;
    int r = rpc_check_strings(d, data + 1, size - 1, &err);
    hull_fuzz_check(r == 0 || (r == -EINVAL && err != NULL));
    /* only a NUL byte or a byte that is not UTF-8 is refused */
    bool utf8 = true;
    for (size_t i = 1; i < size && utf8; i++)
        utf8 = data[i] < 0x80;
    hull_fuzz_check(r == 0 || memchr(data + 1, 0, size - 1) != NULL || !utf8);
    if (r < 0)
        return 0;
    /* unpacking what passed must be safe too (the server does it next) */
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

static void add_msg(void (*add)(const void *, size_t), uint8_t which, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL)
        abort();
    buf[0] = which;
    protobuf_c_message_pack(m, buf + 1);
    add(buf, n + 1);
    free(buf);
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    Runtime__V1__CreateContainerRequest req = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
    Runtime__V1__ContainerConfig cfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
    Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
    Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;
    Runtime__V1__KeyValue kv = RUNTIME__V1__KEY_VALUE__INIT;
    Runtime__V1__KeyValue *envs[] = {&kv};
    Runtime__V1__ContainerConfig__LabelsEntry lab =
        RUNTIME__V1__CONTAINER_CONFIG__LABELS_ENTRY__INIT;
    Runtime__V1__ContainerConfig__LabelsEntry *labs[] = {&lab};
    char *args[] = {"sh", "-c", "echo hi"};
    md.name = "c";
    img.image = "busybox";
    kv.key = "K";
    kv.value = "V";
    lab.key = "app";
    lab.value = "x";
    cfg.metadata = &md;
    cfg.image = &img;
    cfg.args = args;
    cfg.n_args = 3;
    cfg.envs = envs;
    cfg.n_envs = 1;
    cfg.labels = labs;
    cfg.n_labels = 1;
    req.pod_sandbox_id = "0123456789abcdef";
    req.config = &cfg;
    add_msg(add, 0, &req.base);
    Runtime__V1__ExecSyncRequest ex = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
    ex.container_id = "abc";
    ex.cmd = args;
    ex.n_cmd = 3;
    ex.timeout = 5;
    add_msg(add, 2, &ex.base);
    /* a NUL inside a nested string, a length beyond the end, a 10-byte varint tag */
    static const uint8_t nul[] = {0, 0x12, 0x07, 0x0a, 0x05, 0x0a, 0x03, 'a', 0, 'b'};
    static const uint8_t long_len[] = {0, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a};
    static const uint8_t big_tag[] = {1,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0x01, 0x02, 0x00};
    add(nul, sizeof(nul));
    add(long_len, sizeof(long_len));
    add(big_tag, sizeof(big_tag));
}
