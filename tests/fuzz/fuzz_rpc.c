/* Every CRI request type (all methods of server/methods.def) with random fields: the input's
 * first byte picks the method, the rest drives a generator that fills the request message's
 * fields (nested messages, repeated fields, maps, oneofs, strings of any byte but NUL).  The
 * message is packed and goes through what hulld does with a request before and around its
 * handler: the NUL-byte check on the raw bytes (rpc_check_strings, which must accept it), the
 * unpack (which must round-trip), and the validators that decide what reaches the host:
 *   - CreateContainer: the whole OCI spec generation (oci_spec_from_cri) with the request's
 *     pod config, every host path confined to a scratch directory;
 *   - RunPodSandbox: user-namespace mappings, sysctls, DNS config, cgroup parent, log path;
 *   - UpdateContainerResources / UpdatePodSandboxResources: the resources JSON;
 *   - Exec, ExecSync: the exec process JSON.
 * Under ASan/UBSan: none may crash, leak or read out of bounds on any field values. */
#include "tests/fuzz/fuzz.h"
#include "server/ocispec.h"
#include "server/rpc/rpc.h"
#include "server/pod/pod.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rd {
    const uint8_t *d;
    size_t n;
};

static uint8_t take(struct rd *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->d++;
}

static uint64_t take_n(struct rd *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | take(r);
    return v;
}

static char *take_str(struct rd *r)
{
    size_t len = take(r) % 48;
    char *s = malloc(len + 1);
    if (!s)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = take(r);
        if (c)
            s[k++] = (char)c;
    }
    s[k] = '\0';
    return s;
}

static void fill(ProtobufCMessage *m, struct rd *r, int depth);

static void *new_msg(const ProtobufCMessageDescriptor *d, struct rd *r, int depth)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (!m)
        abort();
    d->message_init(m);
    fill(m, r, depth + 1);
    return m;
}

/* One value of field f at p. */
static void fill_value(const ProtobufCFieldDescriptor *f, void *p, struct rd *r, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        *(uint32_t *)p = (uint32_t)take_n(r, 4);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = take_n(r, 8);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = take(r) & 1;
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t v = (uint32_t)take_n(r, 4);
        memcpy(p, &v, 4);
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        uint64_t v = take_n(r, 8);
        memcpy(p, &v, 8);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = take_str(r);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->len = take(r) % 32;
        b->data = malloc(b->len + 1);
        if (!b->data)
            abort();
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = take(r);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(void **)p = new_msg(f->descriptor, r, depth);
        break;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static void fill(ProtobufCMessage *m, struct rd *r, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        uint8_t pick = take(r);
        if (r->n == 0 || pick % 4 == 0)
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 6)
            continue;
        char *base = (char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = take(r) % 4;
            size_t sz = value_size(f);
            void *arr = calloc(n ? n : 1, sz);
            if (!arr)
                abort();
            for (size_t k = 0; k < n; k++)
                fill_value(f, (char *)arr + k * sz, r, depth);
            *(size_t *)(base + f->quantifier_offset) = n;
            *(void **)(base + f->offset) = arr;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which != 0)
                continue; /* one member of a oneof */
            *which = f->id;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) {
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        }
        fill_value(f, base + f->offset, r, depth);
    }
}

static char scratch[64];

/* Every host path of the config made a path below the scratch directory. */
static void confine_host_paths(Runtime__V1__ContainerConfig *c)
{
    for (size_t i = 0; c && i < c->n_mounts; i++) {
        Runtime__V1__Mount *m = c->mounts[i];
        if (m->host_path != protobuf_c_empty_string)
            free(m->host_path);
        m->host_path = malloc(sizeof(scratch) + 16);
        if (!m->host_path)
            abort();
        snprintf(m->host_path, sizeof(scratch) + 16, "%s/m%zu", scratch, i % 4);
    }
}

static void check_create(Runtime__V1__CreateContainerRequest *req)
{
    if (req->config == NULL)
        return;
    confine_host_paths(req->config);
    static const char rootfs_rel[] = "/rootfs";
    char rootfs[sizeof(scratch) + sizeof(rootfs_rel)];
    snprintf(rootfs, sizeof(rootfs), "%s%s", scratch, rootfs_rel);
    char cdir[sizeof(scratch) + 8];
    snprintf(cdir, sizeof(cdir), "%s/c", scratch);
    struct ocispec_sandbox sb = {
        .id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .config = req->sandbox_config,
        .hostname_path = "/etc/hostname",
        .resolv_path = "/etc/resolv.conf",
        .hosts_path = "/etc/hosts",
        .cgroup_parent = "/hull/fuzz",
        .hostname = "fuzz",
    };
    struct ocispec_user user = {0};
    struct ocispec_input in = {
        .container_id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
        .config = req->config,
        .sandbox = &sb,
        .rootfs = rootfs,
        .container_dir = cdir,
        .seccomp_profile_root = scratch,
        .target_pidns_path = "/proc/self/ns/pid",
        .runtime_supports_rro = true,
        .volume_copy_budget = 1 << 20,
        .user_out = &user,
    };
    _cleanup_free_ char *json = NULL;
    _cleanup_error_ hull_error_t err = NULL;
    int r = oci_spec_from_cri(&in, &json, &err);
    hull_fuzz_check(r == 0 ? json != NULL : err != NULL);
    if (r == 0) {
        _cleanup_yajl_ yajl_val doc = NULL;
        _cleanup_error_ hull_error_t e2 = NULL;
        /* the spec hull-oci parses back (a string that is not UTF-8 made it unparsable) */
        if (hull_json_parse(json, "spec", &doc, &e2) < 0)
            fprintf(stderr, "%s\n%s\n", hull_error_msg(&e2), json);
        hull_fuzz_check(doc != NULL);
    }
    free(user.additional_gids);
}

static void check_pod(const Runtime__V1__PodSandboxConfig *c)
{
    if (c == NULL)
        return;
    _cleanup_error_ hull_error_t err = NULL;
    const Runtime__V1__LinuxPodSandboxConfig *lx = c->linux;
    const Runtime__V1__NamespaceOption *ns =
        lx && lx->security_context ? lx->security_context->namespace_options : NULL;
    bool on = false;
    struct userns_map u, g;
    if (userns_from_cri(ns, &on, &u, &g, &err) == 0 && on)
        hull_fuzz_check(u.host_id != 0 && u.size == 65536 && g.host_id != 0);
    hull_error_free(&err);
    for (size_t i = 0; lx && i < lx->n_sysctls; i++) {
        _cleanup_error_ hull_error_t e = NULL;
        cri_sysctl_validate(lx->sysctls[i]->key, lx->sysctls[i]->value, false, false, &e);
        _cleanup_free_ char *n = cri_sysctl_normalize(lx->sysctls[i]->key);
    }
    _cleanup_free_ char *resolv = sandbox_resolv_conf_text(c->dns_config);
    if (lx && lx->cgroup_parent)
        sandbox_cgroup_path_ok(lx->cgroup_parent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    const struct rpc_method *meth = &rpc_methods[data[0] % rpc_methods_count];
    struct rd r = {data + 1, size - 1};
    ProtobufCMessage *m = new_msg(meth->request, &r, 0);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        abort();
    protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    _cleanup_error_ hull_error_t err = NULL;
    /* strings without NUL bytes: only one that is not UTF-8 is refused (and then the server
     * answers INVALID_ARGUMENT, nothing else runs) */
    if (rpc_check_strings(meth->request, buf, len, &err) < 0) {
        hull_fuzz_check(strstr(hull_error_msg(&err), "UTF-8") != NULL);
        free(buf);
        return 0;
    }
    ProtobufCMessage *u = protobuf_c_message_unpack(meth->request, NULL, len, buf);
    hull_fuzz_check(u != NULL);
    size_t len2 = protobuf_c_message_get_packed_size(u);
    hull_fuzz_check(len2 == len);
    free(buf);
    const char *name = strrchr(meth->path, '/') + 1;
    if (strcmp(name, "CreateContainer") == 0) {
        check_create((Runtime__V1__CreateContainerRequest *)u);
    } else if (strcmp(name, "RunPodSandbox") == 0) {
        check_pod(((Runtime__V1__RunPodSandboxRequest *)u)->config);
    } else if (strcmp(name, "UpdateContainerResources") == 0) {
        Runtime__V1__UpdateContainerResourcesRequest *q = (void *)u;
        _cleanup_free_ char *json = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        if (q->linux)
            oci_resources_from_cri(q->linux, &json, &e);
    } else if (strcmp(name, "ExecSync") == 0 || strcmp(name, "Exec") == 0) {
        bool sync = name[4] == 'S';
        char **cmd =
            sync ? ((Runtime__V1__ExecSyncRequest *)u)->cmd : ((Runtime__V1__ExecRequest *)u)->cmd;
        size_t n = sync ? ((Runtime__V1__ExecSyncRequest *)u)->n_cmd
                        : ((Runtime__V1__ExecRequest *)u)->n_cmd;
        _cleanup_free_ char *json = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        static const char spec[] = "{\"process\":{\"args\":[\"sh\"],\"env\":[\"A=b\"],"
                                   "\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}}";
        ocispec_exec_process(spec, cmd, n, false, 0, 0, &json, &e);
    }
    protobuf_c_message_free_unpacked(u, NULL);
    return 0;
}

static void remove_scratch(void)
{
    _cleanup_error_ hull_error_t err = NULL;
    hull_rm_rf(scratch, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(scratch, sizeof(scratch), "/tmp/hull-fuzz-rpc-XXXXXX");
    if (mkdtemp(scratch) == NULL)
        abort();
    char p[sizeof(scratch) + 16];
    snprintf(p, sizeof(p), "%s/rootfs", scratch);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/c", scratch);
    mkdir(p, 0700);
    atexit(remove_scratch);
    return 0;
}

static void add_msg(void (*add)(const void *, size_t), const char *method)
{
    /* a seed per method: every field asked for, short values */
    uint8_t buf[600];
    for (size_t i = 0; i < rpc_methods_count; i++) {
        if (strcmp(strrchr(rpc_methods[i].path, '/') + 1, method) != 0)
            continue;
        buf[0] = (uint8_t)i;
        for (size_t k = 1; k < sizeof(buf); k++)
            buf[k] = (uint8_t)(k % 7 == 0 ? 3 : 'a' + k % 26);
        add(buf, sizeof(buf));
    }
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        add_msg(add, strrchr(rpc_methods[i].path, '/') + 1);
}
