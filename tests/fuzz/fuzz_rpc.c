/* Every CRI request (all methods of server/methods.def) with random fields, through the real
 * handlers of a real hull_server.  The input's first byte picks the method, the rest drives a
 * generator that fills the request message's fields (nested messages, repeated fields, maps,
 * oneofs, strings of any byte but NUL, long strings, and the IDs and names of what exists: pods
 * and containers the run created, the seeded image).  The message is packed and goes through
 * exactly what hulld does with a call's bytes (rpc_dispatch: string check, unpack, handler) on a
 * local call, then the answer is packed as the gRPC plumbing would.
 *
 * The server is rooted in a private temp dir: its own root and state dirs, image store (seeded
 * with one image, "fuzz.local/img:1", whose one layer is an empty directory), an empty CNI
 * config dir (pods with their own network fail in the CNI step; host-network pods are created
 * for real: namespaces, cgroups under /hull-fuzz-<pid>, /dev/shm tmpfs), and the runtime
 * handler "refuse" = /bin/false as the default (CreateContainer runs up to the runtime's
 * create, which refuses).  Registry traffic goes to a proxy that refuses (127.0.0.1:1), so
 * pulls fail at once without network.  After each failed RunPodSandbox / CreateContainer,
 * nothing of it may be left (mounts below the temp dir, cgroups, child processes); pods are
 * removed through the handlers every few pods and at exit, and then nothing at all may be left.
 *
 * Before the handler, the cheaper validators run on their own too (as they did before this
 * target drove handlers): the OCI spec generation for CreateContainer with host paths confined
 * to the temp dir, the pod validators for RunPodSandbox, the resources and exec JSON.
 * Under ASan/UBSan: none may crash, leak or read out of bounds on any field values. */
#include "tests/fuzz/fuzz.h"
#include "image/image.h"
#include "server/spec/spec.h"
#include "server/rpc/rpc.h"
#include "server/pod/pod.h"
#include "server/daemon/daemon.h"
#include "server/server.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Names of what exists, for the generator: the seeded image's references, and the IDs of the
 * pods and containers created so far (and prefixes of them). */
#define MAX_KNOWN 64
static char *known[MAX_KNOWN];
static size_t n_known;

static void know(const char *s)
{
    if (s == NULL || *s == '\0')
        return;
    for (size_t i = 0; i < n_known; i++)
        if (strcmp(known[i], s) == 0)
            return;
    size_t slot = n_known < MAX_KNOWN ? n_known++ : 4 + (size_t)rand() % (MAX_KNOWN - 4);
    free(known[slot]);
    known[slot] = strdup(s);
    if (!known[slot])
        abort();
}

static char *take_str(struct rd *r)
{
    uint8_t lb = take(r);
    if (lb >= 0xF0 && n_known > 0) {
        /* a name that exists, whole or cut short */
        const char *k = known[(lb - 0xF0u) % n_known];
        size_t n = strlen(k);
        if (lb & 1 && take(r) & 1 && n > 3)
            n = 3 + take(r) % (n - 3);
        char *s = strndup(k, n);
        if (!s)
            abort();
        return s;
    }
    if (lb >= 0xE0 && lb < 0xF0) {
        /* a long string: up to 8 KiB of one printable character */
        size_t len = (size_t)(lb - 0xDF) * 512;
        char c = (char)(0x21 + take(r) % 0x5e);
        char *s = malloc(len + 1);
        if (!s)
            abort();
        memset(s, c, len);
        s[len] = '\0';
        return s;
    }
    size_t len = lb % 48;
    bool raw = lb / 48 == 4; /* any byte (controls, mostly not UTF-8); else printable ASCII */
    char *s = malloc(len + 1);
    if (!s)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = raw ? take(r) : (uint8_t)(0x20 + take(r) % 0x5f);
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
    struct spec_sandbox sb = {
        .id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .config = req->sandbox_config,
        .hostname_path = "/etc/hostname",
        .resolv_path = "/etc/resolv.conf",
        .hosts_path = "/etc/hosts",
        .cgroup_parent = "/hull/fuzz",
        .hostname = "fuzz",
    };
    struct spec_user user = {0};
    struct spec_input in = {
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
    int r = spec_from_cri(&in, &json, &err);
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

static struct hull_server srv;
static bool srv_up;
static char cgroup_parent[64];

/* Mounts below the scratch directory (pods' shm and namespace pins, container rootfs). */
static size_t scratch_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        abort();
    char line[8192];
    size_t n = 0, sl = strlen(scratch);
    while (fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mountpoint ... */
        char *p = line;
        for (int i = 0; i < 4 && p; i++) {
            p = strchr(p, ' ');
            if (p)
                p++;
        }
        if (p && strncmp(p, scratch, sl) == 0 && (p[sl] == '/' || p[sl] == ' '))
            n++;
    }
    fclose(f);
    return n;
}

/* Cgroup directories below the fuzz cgroup parent, in every hierarchy. */
static size_t count_dirs(const char *dir, int depth)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        n++;
        if (depth < 4) {
            _cleanup_free_ char *sub = hull_path_join(dir, de->d_name);
            n += count_dirs(sub, depth + 1);
        }
    }
    return n;
}

/* The fuzz cgroup parent in every mounted hierarchy (v1 controllers, named ones, the unified
 * one): calls fn on each that exists. */
static void each_parent(void (*fn)(const char *dir, void *arg), void *arg)
{
    static const char *const tops[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    for (size_t t = 0; t < sizeof(tops) / sizeof(tops[0]); t++) {
        _cleanup_free_ char *own = xasprintf("%s%s", tops[t], cgroup_parent);
        struct stat st;
        if (stat(own, &st) == 0)
            fn(own, arg);
        if (t == 1)
            break;
        _cleanup_closedir_ DIR *d = opendir(tops[t]);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || strcmp(de->d_name, "unified") == 0)
                continue;
            _cleanup_free_ char *p = xasprintf("%s/%s%s", tops[t], de->d_name, cgroup_parent);
            if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                fn(p, arg);
        }
    }
}

static void count_cb(const char *dir, void *arg)
{
    *(size_t *)arg += count_dirs(dir, 0);
}

static size_t fuzz_cgroups(void)
{
    size_t n = 0;
    each_parent(count_cb, &n);
    return n;
}

/* Removes the cgroups below dir, deepest first, then dir. */
static void rmdir_tree(const char *dir, void *arg)
{
    (void)arg;
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_type == DT_DIR && de->d_name[0] != '.') {
            _cleanup_free_ char *sub = hull_path_join(dir, de->d_name);
            rmdir_tree(sub, NULL);
        }
    rmdir(dir);
}

/* Child processes of ours (conmon, runtimes, infra processes) still there, whichever thread
 * forked them. */
static size_t children(void)
{
    _cleanup_closedir_ DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *path = xasprintf("/proc/self/task/%s/children", de->d_name);
        _cleanup_free_ char *txt = NULL;
        _cleanup_error_ hull_error_t err = NULL;
        if (hull_read_file(path, 1 << 16, &txt, NULL, &err) < 0)
            continue;
        for (char *p = txt; *p; p++)
            if (*p == ' ')
                n++;
    }
    return n;
}

static const struct rpc_method *method_of(const char *path)
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        if (strcmp(rpc_methods[i].path, path) == 0)
            return &rpc_methods[i];
    return NULL;
}

/* One call through rpc_dispatch; the answer packed as the plumbing would.  Returns the code. */
static enum rpc_code call(const char *path, const uint8_t *buf, size_t len,
                          void (*look)(const ProtobufCMessage *resp))
{
    struct rpc_call *c = rpc_local_call_new(&srv, path, 200 * 1000000LL, 4);
    ProtobufCMessage *resp = NULL;
    char *msg = NULL;
    const struct rpc_method *m = method_of(path);
    enum rpc_code code = rpc_dispatch(c, m, path, buf, len, &resp, &msg);
    if (code == RPC_OK) {
        hull_fuzz_check(msg == NULL);
        hull_fuzz_check(m->kind == RPC_SERVER_STREAM || resp != NULL);
        if (resp) {
            hull_fuzz_check(resp->descriptor == m->response);
            size_t n = protobuf_c_message_get_packed_size(resp);
            uint8_t *out = malloc(n + 1);
            if (!out)
                abort();
            hull_fuzz_check(protobuf_c_message_pack(resp, out) == n);
            free(out);
            if (look)
                look(resp);
        }
    } else {
        hull_fuzz_check(msg != NULL && code != RPC_OK);
        const char *v = getenv("FUZZ_RPC_STATS");
        if (v && strcmp(v, "2") == 0)
            fprintf(stderr, "%s: %d %s\n", strrchr(path, '/') + 1, (int)code, msg);
    }
    free(msg);
    rpc_local_call_free(c);
    return code;
}

static char last_pod[65];

static void look_pod(const ProtobufCMessage *m)
{
    const char *id = ((const Runtime__V1__RunPodSandboxResponse *)m)->pod_sandbox_id;
    know(id);
    snprintf(last_pod, sizeof(last_pod), "%s", id);
}

static void look_ctr(const ProtobufCMessage *m)
{
    know(((const Runtime__V1__CreateContainerResponse *)m)->container_id);
}

static size_t n_pods;
/* answers per method and code (FUZZ_RPC_STATS=1 prints them at exit: what the run reached) */
static unsigned long answers[64][17];

/* Every pod through StopPodSandbox and RemovePodSandbox (their containers go with them). */
static void remove_all_pods(void)
{
    Runtime__V1__ListPodSandboxRequest lq = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
    uint8_t buf[64];
    size_t len = protobuf_c_message_pack(&lq.base, buf);
    struct rpc_call *c =
        rpc_local_call_new(&srv, "/runtime.v1.RuntimeService/ListPodSandbox", 5000 * 1000000LL, 1);
    ProtobufCMessage *resp = NULL;
    char *msg = NULL;
    enum rpc_code code =
        rpc_dispatch(c, method_of("/runtime.v1.RuntimeService/ListPodSandbox"),
                     "/runtime.v1.RuntimeService/ListPodSandbox", buf, len, &resp, &msg);
    hull_fuzz_check(code == RPC_OK);
    Runtime__V1__ListPodSandboxResponse *l = (void *)resp;
    for (size_t i = 0; i < l->n_items; i++) {
        Runtime__V1__StopPodSandboxRequest sq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
        sq.pod_sandbox_id = l->items[i]->id;
        uint8_t b2[256];
        size_t n2 = protobuf_c_message_pack(&sq.base, b2);
        /* the same fields: StopPodSandboxRequest and RemovePodSandboxRequest are id only */
        hull_fuzz_check(call("/runtime.v1.RuntimeService/StopPodSandbox", b2, n2, NULL) == RPC_OK);
        hull_fuzz_check(call("/runtime.v1.RuntimeService/RemovePodSandbox", b2, n2, NULL) ==
                        RPC_OK);
    }
    free(msg);
    rpc_local_call_free(c);
    n_pods = 0;
    last_pod[0] = '\0';
}

static void set_str(char **field, const char *v)
{
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(v);
    if (!*field)
        abort();
}

static void *ensure_msg(void **field, const ProtobufCMessageDescriptor *d)
{
    if (*field == NULL) {
        ProtobufCMessage *m = malloc(d->sizeof_message);
        if (!m)
            abort();
        d->message_init(m);
        *field = m;
    }
    return *field;
}

/* What reaches the host outside the temp dir is confined to it (host paths, pod cgroup
 * parents below the fuzz parent, log directories, checkpoint archives). */
static void confine_pod(Runtime__V1__PodSandboxConfig *c)
{
    if (c == NULL)
        return;
    if (c->log_directory && c->log_directory[0]) {
        _cleanup_free_ char *d = xasprintf("%s/logs", scratch);
        set_str(&c->log_directory, d);
    }
    if (c->linux && c->linux->cgroup_parent && c->linux->cgroup_parent[0]) {
        _cleanup_free_ char *d = xasprintf("%s/p", cgroup_parent);
        set_str(&c->linux->cgroup_parent, d);
    }
}

static void confine(const char *name, ProtobufCMessage *m)
{
    if (strcmp(name, "RunPodSandbox") == 0) {
        confine_pod(((Runtime__V1__RunPodSandboxRequest *)m)->config);
    } else if (strcmp(name, "CreateContainer") == 0) {
        Runtime__V1__CreateContainerRequest *q = (void *)m;
        confine_pod(q->sandbox_config);
        confine_host_paths(q->config);
        for (char *p = q->config && q->config->log_path ? q->config->log_path : NULL;
             p && (p = strstr(p, "..")) != NULL;)
            p[0] = p[1] = '_';
    } else if (strcmp(name, "CheckpointContainer") == 0) {
        Runtime__V1__CheckpointContainerRequest *q = (void *)m;
        if (q->location && q->location[0]) {
            _cleanup_free_ char *d = xasprintf("%s/checkpoint.tar", scratch);
            set_str(&q->location, d);
        }
    }
}

/* A name of lower-case letters and digits (at most 30): what kubelet sends. */
static void tame(char **field, const char *dflt)
{
    if (*field == NULL || (*field)[0] == '\0') {
        set_str(field, dflt);
        return;
    }
    char *s = *field;
    size_t n = 0;
    for (; s[n] && n < 30; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9')))
            s[n] = (char)('a' + (unsigned char)s[n] % 26);
    s[n] = '\0';
}

static bool pod_ready;

static void look_pod_status(const ProtobufCMessage *m)
{
    const Runtime__V1__PodSandboxStatusResponse *r = (const void *)m;
    pod_ready = r->status && r->status->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
}

/* A ready host-network pod for the plausible requests, made when the last one is gone (a
 * fuzzed StopPodSandbox or RemovePodSandbox may have hit it). */
static void ensure_pod(void)
{
    if (last_pod[0]) {
        Runtime__V1__PodSandboxStatusRequest sq = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
        sq.pod_sandbox_id = last_pod;
        uint8_t b[128];
        size_t n = protobuf_c_message_pack(&sq.base, b);
        pod_ready = false;
        if (call("/runtime.v1.RuntimeService/PodSandboxStatus", b, n, look_pod_status) == RPC_OK &&
            pod_ready)
            return;
        last_pod[0] = '\0';
    }
    Runtime__V1__NamespaceOption ns = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    sc.namespace_options = &ns;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    lx.security_context = &sc;
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    /* a new name each time: a stopped one still holds its name until removed */
    static unsigned serial;
    char name[32];
    snprintf(name, sizeof(name), "base%u", serial++);
    md.name = name;
    md.uid = name;
    md.namespace_ = "fuzz";
    Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    cfg.metadata = &md;
    cfg.linux = &lx;
    Runtime__V1__RunPodSandboxRequest q = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
    q.config = &cfg;
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&q.base, buf);
    hull_fuzz_check(call("/runtime.v1.RuntimeService/RunPodSandbox", buf, len, look_pod) == RPC_OK);
    n_pods++;
}

/* A request made to pass the first checks (input byte 0 >= 128): a pod with a name (host
 * network or not), a container of the seeded image in the newest pod, IDs that exist. */
static void make_plausible(const char *name, ProtobufCMessage *m, uint8_t choice)
{
    if (strcmp(name, "RunPodSandbox") == 0) {
        Runtime__V1__RunPodSandboxRequest *q = (void *)m;
        Runtime__V1__PodSandboxConfig *c =
            ensure_msg((void **)&q->config, &runtime__v1__pod_sandbox_config__descriptor);
        Runtime__V1__PodSandboxMetadata *md =
            ensure_msg((void **)&c->metadata, &runtime__v1__pod_sandbox_metadata__descriptor);
        tame(&md->name, "pod");
        tame(&md->uid, "uid");
        tame(&md->namespace_, "ns");
        if (c->hostname && c->hostname[0])
            tame(&c->hostname, "h");
        if (choice & 1) {
            Runtime__V1__LinuxPodSandboxConfig *lx =
                ensure_msg((void **)&c->linux, &runtime__v1__linux_pod_sandbox_config__descriptor);
            Runtime__V1__LinuxSandboxSecurityContext *sc =
                ensure_msg((void **)&lx->security_context,
                           &runtime__v1__linux_sandbox_security_context__descriptor);
            Runtime__V1__NamespaceOption *ns = ensure_msg(
                (void **)&sc->namespace_options, &runtime__v1__namespace_option__descriptor);
            ns->network = RUNTIME__V1__NAMESPACE_MODE__NODE;
        }
        if (q->runtime_handler && q->runtime_handler[0] && (choice & 2))
            set_str(&q->runtime_handler, "");
    } else if (strcmp(name, "CreateContainer") == 0) {
        Runtime__V1__CreateContainerRequest *q = (void *)m;
        ensure_pod();
        set_str(&q->pod_sandbox_id, last_pod);
        Runtime__V1__ContainerConfig *c =
            ensure_msg((void **)&q->config, &runtime__v1__container_config__descriptor);
        Runtime__V1__ContainerMetadata *md =
            ensure_msg((void **)&c->metadata, &runtime__v1__container_metadata__descriptor);
        tame(&md->name, "ctr");
        Runtime__V1__ImageSpec *im =
            ensure_msg((void **)&c->image, &runtime__v1__image_spec__descriptor);
        if (choice & 1)
            set_str(&im->image, "fuzz.local/img:1");
    } else if (last_pod[0]) {
        /* a method on a pod: the newest one */
        const ProtobufCMessageDescriptor *d = m->descriptor;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, "pod_sandbox_id");
        if (f && f->label != PROTOBUF_C_LABEL_REPEATED)
            set_str((char **)((char *)m + f->offset), last_pod);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    const struct rpc_method *meth = &rpc_methods[(data[0] & 0x7f) % rpc_methods_count];
    const char *name = strrchr(meth->path, '/') + 1;
    struct rd r = {data + 1, size - 1};
    ProtobufCMessage *m = new_msg(meth->request, &r, 0);
    if (data[0] & 0x80)
        make_plausible(name, m, size > 1 ? data[1] : 0);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        abort();
    protobuf_c_message_pack(m, buf);
    /* the handler's copy: confined */
    confine(name, m);
    size_t hlen = protobuf_c_message_get_packed_size(m);
    uint8_t *hbuf = malloc(hlen + 1);
    if (!hbuf)
        abort();
    protobuf_c_message_pack(m, hbuf);
    protobuf_c_message_free_unpacked(m, NULL);
    _cleanup_error_ hull_error_t err = NULL;
    /* strings without NUL bytes: only one that is not UTF-8 is refused (and then the server
     * answers INVALID_ARGUMENT, nothing else runs) */
    if (rpc_check_strings(meth->request, buf, len, &err) < 0) {
        hull_fuzz_check(strstr(hull_error_msg(&err), "UTF-8") != NULL);
        /* (unless the string was one that confine() replaced) */
        enum rpc_code code = call(meth->path, hbuf, hlen, NULL);
        hull_fuzz_check(code == RPC_INVALID_ARGUMENT || hlen != len || memcmp(buf, hbuf, len) != 0);
        free(buf);
        free(hbuf);
        return 0;
    }
    ProtobufCMessage *u = protobuf_c_message_unpack(meth->request, NULL, len, buf);
    hull_fuzz_check(u != NULL);
    size_t len2 = protobuf_c_message_get_packed_size(u);
    hull_fuzz_check(len2 == len);
    free(buf);
    if (strcmp(name, "CreateContainer") == 0) {
        check_create((Runtime__V1__CreateContainerRequest *)u);
    } else if (strcmp(name, "RunPodSandbox") == 0) {
        check_pod(((Runtime__V1__RunPodSandboxRequest *)u)->config);
    } else if (strcmp(name, "UpdateContainerResources") == 0) {
        Runtime__V1__UpdateContainerResourcesRequest *q = (void *)u;
        _cleanup_free_ char *json = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        if (q->linux)
            spec_resources_from_cri(q->linux, &json, &e);
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
        spec_exec_process(spec, cmd, n, false, 0, 0, &json, &e);
    }
    protobuf_c_message_free_unpacked(u, NULL);

    /* the real handler, as hulld runs it */
    bool creates = strcmp(name, "RunPodSandbox") == 0 || strcmp(name, "CreateContainer") == 0;
    size_t mounts0 = 0, cgroups0 = 0, kids0 = 0;
    if (creates) {
        mounts0 = scratch_mounts();
        cgroups0 = fuzz_cgroups();
        kids0 = children(); /* the infra processes of shared-PID pods */
    }
    void (*look)(const ProtobufCMessage *) = strcmp(name, "RunPodSandbox") == 0     ? look_pod
                                             : strcmp(name, "CreateContainer") == 0 ? look_ctr
                                                                                    : NULL;
    enum rpc_code code = call(meth->path, hbuf, hlen, look);
    free(hbuf);
    answers[(meth - rpc_methods) % 64][code <= 16 ? code : 16]++;
    if (creates && code != RPC_OK) {
        /* a create that failed leaves nothing behind */
        size_t mounts1 = scratch_mounts(), cgroups1 = fuzz_cgroups(), kids = children();
        if (mounts1 != mounts0 || cgroups1 != cgroups0 || kids != kids0)
            fprintf(stderr,
                    "fuzz_rpc: failed %s left mounts %zu -> %zu, cgroups %zu -> %zu, "
                    "children %zu -> %zu\n",
                    name, mounts0, mounts1, cgroups0, cgroups1, kids0, kids);
        hull_fuzz_check(mounts1 == mounts0 && cgroups1 == cgroups0 && kids == kids0);
    }
    if (code == RPC_OK && strcmp(name, "RunPodSandbox") == 0 && ++n_pods >= 8)
        remove_all_pods();
    return 0;
}

static void fuzz_fini(void)
{
    for (size_t i = 0; getenv("FUZZ_RPC_STATS") && i < rpc_methods_count && i < 64; i++) {
        fprintf(stderr, "%-28s", strrchr(rpc_methods[i].path, '/') + 1);
        for (int k = 0; k < 17; k++)
            if (answers[i][k])
                fprintf(stderr, " code%d=%lu", k, answers[i][k]);
        fprintf(stderr, "\n");
    }
    if (srv_up) {
        remove_all_pods();
        struct hull_config *cfg = srv.config;
        server_fini(&srv);
        config_free(cfg);
        srv_up = false;
        /* nothing may be left: no mount below the temp dir, no pod cgroup, no process */
        size_t mounts = scratch_mounts(), cgroups = fuzz_cgroups(), kids = children();
        if (mounts || cgroups || kids)
            fprintf(stderr, "fuzz_rpc: left behind: %zu mounts, %zu cgroups, %zu children\n",
                    mounts, cgroups, kids);
        hull_fuzz_check(mounts == 0 && cgroups == 0 && kids == 0);
    }
    /* the fuzz parent with hull's own leaf cgroups below it, in every hierarchy */
    each_parent(rmdir_tree, NULL);
    _cleanup_error_ hull_error_t err = NULL;
    hull_rm_rf(scratch, &err);
}

static void write_or_die(const char *path, const char *text)
{
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *dup = xstrdup(path);
    if (hull_mkdir_p(dirname(dup), 0700, &err) < 0 ||
        hull_write_file_atomic(path, text, strlen(text), 0600, &err) < 0) {
        fprintf(stderr, "fuzz_rpc: %s\n", hull_error_msg(&err));
        abort();
    }
}

/* One image in the store, as a pull would have left it: config blob, layer (an empty
 * directory), record. */
static void seed_image(const char *root)
{
    char layer[72], manifest[72], cfg_digest[72];
    image_sha256_digest("fuzz-layer", 10, layer);
    image_sha256_digest("fuzz-manifest", 13, manifest);
    _cleanup_free_ char *cfg =
        xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/pause\"],"
                  "\"Env\":[\"PATH=/bin\"],\"WorkingDir\":\"/\",\"Volumes\":{\"/data\":{}}},"
                  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                  layer);
    image_sha256_digest(cfg, strlen(cfg), cfg_digest);
    _cleanup_free_ char *p = xasprintf("%s/images/blobs/sha256/%s", root, cfg_digest + 7);
    write_or_die(p, cfg);
    free(p);
    p = xasprintf("%s/images/layers/%s/layer.json", root, layer + 7);
    _cleanup_free_ char *lj =
        xasprintf("{\"diff_id\":\"%s\",\"short\":\"FUZZLAYER1\",\"size\":0,\"entries\":1}", layer);
    write_or_die(p, lj);
    free(p);
    p = xasprintf("%s/images/layers/%s/diff/etc/passwd", root, layer + 7);
    write_or_die(p, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n");
    free(p);
    p = xasprintf("%s/images/images/%s.json", root, cfg_digest + 7);
    _cleanup_free_ char *rec =
        xasprintf("{\"id\":\"%s\",\"manifest_digest\":\"%s\",\"repo_tags\":[\"fuzz.local/img:1\"],"
                  "\"repo_digests\":[\"fuzz.local/img@%s\"],\"layers\":[{\"digest\":\"%s\","
                  "\"diff_id\":\"%s\",\"size\":0,\"media_type\":"
                  "\"application/vnd.oci.image.layer.v1.tar\"}],\"size\":0}",
                  cfg_digest, manifest, manifest, layer, layer);
    write_or_die(p, rec);
    know("fuzz.local/img:1");
    know(cfg_digest);
    know(cfg_digest + 7);
    know("fuzz.local/img@");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(scratch, sizeof(scratch), "/tmp/hull-fuzz-rpc-XXXXXX");
    if (mkdtemp(scratch) == NULL)
        abort();
    char p[sizeof(scratch) + 16];
    snprintf(p, sizeof(p), "%s/rootfs", scratch);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/c", scratch);
    mkdir(p, 0700);
    snprintf(cgroup_parent, sizeof(cgroup_parent), "/hull-fuzz-%d", (int)getpid());
    atexit(fuzz_fini);

    /* registry traffic: a proxy that refuses at once (no DNS, no network) */
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
    setenv("https_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");

    /* hull-conmon and hull-pause of the same build: <build>/fuzz/fuzz_rpc -> <build>/ */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        abort();
    exe[n] = '\0';
    _cleanup_free_ char *bindir = xstrdup(dirname(dirname(exe)));
    _cleanup_free_ char *root = xasprintf("%s/root", scratch);
    seed_image(root);
    _cleanup_free_ char *conf = xasprintf("%s/hull.json", scratch);
    write_or_die(conf, "{}");
    char *args[] = {
        "hulld",
        xasprintf("--config=%s", conf),
        xasprintf("--root=%s", root),
        xasprintf("--state-dir=%s/state", scratch),
        xasprintf("--listen=%s/hull.sock", scratch),
        xasprintf("--cgroup-parent=%s", cgroup_parent),
        xstrdup("--runtime=refuse=/bin/false"),
        xstrdup("--default-runtime=refuse"),
        xasprintf("--conmon=%s/hull-conmon", bindir),
        xasprintf("--pause=%s/hull-pause", bindir),
        xasprintf("--cni-config-dir=%s/cni", scratch),
        xasprintf("--cni-plugin-dirs=%s/cni-bin", scratch),
        xstrdup("--cni-write-default-config=false"),
        xstrdup("--stream-address=127.0.0.1"),
        xstrdup("--stream-port=0"),
        xstrdup("--pull-timeout=1"),
        xstrdup("--pull-deadline=1"),
        xstrdup("--log-level=error"),
        NULL,
    };
    int nargs = (int)(sizeof(args) / sizeof(args[0])) - 1;
    struct hull_config *cfg = NULL;
    bool exit_now = false;
    int exit_code = 0;
    _cleanup_error_ hull_error_t err = NULL;
    if (config_load(nargs, args, &cfg, &exit_now, &exit_code, &err) < 0 || exit_now) {
        fprintf(stderr, "fuzz_rpc: config: %s\n", err ? hull_error_msg(&err) : "exit");
        abort();
    }
    for (int i = 1; i < nargs; i++)
        free(args[i]);
    hull_log_set_level(hull_log_level_parse(cfg->log_level));
    if (server_init(&srv, cfg, &err) < 0) {
        fprintf(stderr, "fuzz_rpc: server_init: %s\n", hull_error_msg(&err));
        abort();
    }
    srv_up = true;
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
        /* the plausible variant (make_plausible), host network / seeded image on */
        buf[0] = (uint8_t)(i | 0x80);
        buf[1] = 1;
        add(buf, sizeof(buf));
    }
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    for (size_t i = 0; i < rpc_methods_count; i++)
        add_msg(add, strrchr(rpc_methods[i].path, '/') + 1);
}
