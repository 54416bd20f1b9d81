/* What an NRI plugin sends (nri/): the first byte picks the parser of the rest.
 *   0: a conn's byte stream split into ttrpc messages, each decoded as Request and Response;
 *   1: a ContainerAdjustment merged for two plugins and applied to an OCI spec (the result must
 *      be JSON);
 *   2: an OCI spec turned into the container description plugins get. */
#include "tests/fuzz/fuzz.h"
#include "nri/internal.h"

#include <string.h>

#define PB(x) Nri__Pkg__Api__V1alpha1__##x

static const char spec[] =
    "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"env\":[\"A=1\",\"PATH=/bin\"],"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}]},"
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
    "\"annotations\":{\"a\":\"b\"},\"linux\":{\"resources\":{\"memory\":{\"limit\":1048576},"
    "\"cpu\":{\"shares\":2,\"quota\":-1.5}},\"cgroupsPath\":\"/x\"}}";

static void streams(const uint8_t *data, size_t size)
{
    struct ttrpc_stream s = {0};
    _cleanup_error_ hull_error_t err = NULL;
    size_t off = 0;
    while (off < size) {
        size_t n = (data[off] % 64) + 1; /* feed in small, varying pieces */
        off++;
        if (n > size - off)
            n = size - off;
        if (ttrpc_feed(&s, data + off, n, &err) < 0)
            break;
        off += n;
        struct ttrpc_msg m;
        int r;
        while ((r = ttrpc_next(&s, &m, &err)) == 1) {
            hull_fuzz_check(m.len <= TTRPC_MAX);
            Hull__Ttrpc__Request *rq = hull__ttrpc__request__unpack(NULL, m.len, m.payload);
            if (rq)
                hull__ttrpc__request__free_unpacked(rq, NULL);
            Hull__Ttrpc__Response *rs = hull__ttrpc__response__unpack(NULL, m.len, m.payload);
            if (rs)
                hull__ttrpc__response__free_unpacked(rs, NULL);
            free(m.payload);
        }
        if (r < 0)
            break;
    }
    ttrpc_stream_free(&s);
}

static void adjust(const uint8_t *data, size_t size)
{
    PB(ContainerAdjustment) *a =
        nri__pkg__api__v1alpha1__container_adjustment__unpack(NULL, size, data);
    if (a == NULL)
        return;
    struct nri_merge *m = nri_merge_new();
    _cleanup_error_ hull_error_t err = NULL;
    if (nri_merge_add(m, "10-a", a, &err) == 0 && !nri_merge_empty(m)) {
        _cleanup_free_ char *out = NULL;
        if (nri_merge_apply(m, spec, &out, &err) == 0) {
            _cleanup_yajl_ yajl_val v = NULL;
            hull_error_t perr = NULL;
            hull_fuzz_check(hull_json_parse(out, "adjusted", &v, &perr) == 0);
        }
        hull_error_free(&err);
        nri_merge_add(m, "20-b", a, &err); /* the same fields again: a conflict when any */
    }
    nri_merge_free(m);
    nri__pkg__api__v1alpha1__container_adjustment__free_unpacked(a, NULL);
}

static void from_spec(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    struct nri_arena a = {0};
    nri_ctr_t *c = nri_ctr_new(&a);
    _cleanup_error_ hull_error_t err = NULL;
    if (nri_ctr_from_spec(&a, c, text, &err) == 0) {
        size_t n = protobuf_c_message_get_packed_size(&c->base);
        uint8_t *buf = malloc(n + 1);
        if (!buf)
            abort();
        protobuf_c_message_pack(&c->base, buf);
        free(buf);
    }
    nri_arena_free(&a);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    switch (data[0] % 3) {
    case 0:
        streams(data + 1, size - 1);
        break;
    case 1:
        adjust(data + 1, size - 1);
        break;
    default:
        from_spec(data + 1, size - 1);
        break;
    }
    return 0;
}

static void add_msg(void (*add)(const void *, size_t), uint8_t mode, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc0(n + 1);
    b[0] = mode;
    protobuf_c_message_pack(m, b + 1);
    add(b, n + 1);
    free(b);
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    /* a RegisterPlugin request as a plugin sends it, split by the feeding byte */
    Hull__Ttrpc__Request rq = HULL__TTRPC__REQUEST__INIT;
    rq.service = (char *)NRI_RUNTIME_SERVICE;
    rq.method = (char *)"RegisterPlugin";
    size_t len;
    uint8_t *msg = ttrpc_encode(1, TTRPC_REQUEST, &rq.base, &len);
    uint8_t *b = xmalloc0(len * 2 + 2);
    size_t k = 0;
    b[k++] = 0;
    for (size_t i = 0; i < len; i++) {
        b[k++] = 0; /* one byte at a time */
        b[k++] = msg[i];
    }
    add(b, k);
    free(b);
    free(msg);

    PB(ContainerAdjustment) a = NRI__PKG__API__V1ALPHA1__CONTAINER_ADJUSTMENT__INIT;
    PB(KeyValue) e1 = NRI__PKG__API__V1ALPHA1__KEY_VALUE__INIT, e2 = e1;
    e1.key = (char *)"X";
    e1.value = (char *)"1";
    e2.key = (char *)"-A";
    e2.value = (char *)"";
    PB(KeyValue) * env[] = {&e1, &e2};
    a.env = env;
    a.n_env = 2;
    PB(Mount) mt = NRI__PKG__API__V1ALPHA1__MOUNT__INIT;
    mt.destination = (char *)"/data";
    mt.source = (char *)"/srv";
    mt.type = (char *)"bind";
    char *opts[] = {(char *)"ro"};
    mt.options = opts;
    mt.n_options = 1;
    PB(Mount) * mounts[] = {&mt};
    a.mounts = mounts;
    a.n_mounts = 1;
    PB(POSIXRlimit) rl = NRI__PKG__API__V1ALPHA1__POSIXRLIMIT__INIT;
    rl.type = (char *)"RLIMIT_NOFILE";
    rl.hard = rl.soft = 4096;
    PB(POSIXRlimit) * rls[] = {&rl};
    a.rlimits = rls;
    a.n_rlimits = 1;
    char *args[] = {(char *)"", (char *)"sleep", (char *)"1"};
    a.args = args;
    a.n_args = 3;
    PB(LinuxContainerAdjustment) lx = NRI__PKG__API__V1ALPHA1__LINUX_CONTAINER_ADJUSTMENT__INIT;
    PB(LinuxDevice) dev = NRI__PKG__API__V1ALPHA1__LINUX_DEVICE__INIT;
    dev.path = (char *)"/dev/x";
    dev.type = (char *)"c";
    dev.major = 1;
    dev.minor = 3;
    PB(LinuxDevice) * devs[] = {&dev};
    lx.devices = devs;
    lx.n_devices = 1;
    PB(LinuxResources) res = NRI__PKG__API__V1ALPHA1__LINUX_RESOURCES__INIT;
    PB(LinuxMemory) mem = NRI__PKG__API__V1ALPHA1__LINUX_MEMORY__INIT;
    PB(OptionalInt64) lim = NRI__PKG__API__V1ALPHA1__OPTIONAL_INT64__INIT;
    lim.value = 1 << 30;
    mem.limit = &lim;
    res.memory = &mem;
    lx.resources = &res;
    a.linux = &lx;
    add_msg(add, 1, &a.base);

    size_t n = strlen(spec);
    b = xmalloc0(n + 1);
    b[0] = 2;
    memcpy(b + 1, spec, n);
    add(b, n + 1);
    free(b);
}
