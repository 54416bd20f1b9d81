/* hulld configuration: one option table drives defaults, the JSON file, flags, --help and the
 * JSON dump.  Precedence: embedded defaults < config file < command-line flags. */
#include "server/config/config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <string.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL, OPT_STRLIST, OPT_KVLIST };

struct opt {
    const char *key;  /* JSON key */
    const char *flag; /* long flag without "--" */
    enum opt_type type;
    size_t offset;
    const char *def; /* default, as text (lists: comma separated; kv: k=v,k=v) */
    const char *help;
};

#define O(field) offsetof(struct hull_config, field)

static const struct opt options[] = {
    {"listen", "listen", OPT_STRING, O(listen), "/run/hull/hull.sock", "gRPC unix socket path"},
    {"root", "root", OPT_STRING, O(root), "/var/lib/hull",
     "persistent state: images, metadata, writable layers"},
    {"state_dir", "state-dir", OPT_STRING, O(state_dir), "/run/hull",
     "volatile state: monitor sockets, exit files, pinned namespaces"},
    {"log_level", "log-level", OPT_STRING, O(log_level), "info", "error, warn, info or debug"},
    {"cgroup_manager", "cgroup-manager", OPT_STRING, O(cgroup_manager), "cgroupfs",
     "cgroup driver: cgroupfs, or systemd (containers in transient scopes made over D-Bus, pod "
     "cgroup parents as slices; needs systemd as PID 1); reported to kubelet by RuntimeConfig"},
    {"cgroup_driver", "cgroup-driver", OPT_STRING, O(cgroup_driver), "cgroupfs",
     "older name of cgroup_manager (\"systemd\" here selects the systemd driver as well)"},
    {"cgroup_parent", "cgroup-parent", OPT_STRING, O(cgroup_parent), "/hull",
     "cgroup parent for pods that name none (systemd driver: a slice such as hull.slice; a "
     "path there means hull.slice); pods get <parent>/pod-ID or <slice stem>-podID.slice"},
    {"workers", "workers", OPT_INT, O(workers), "4", "worker threads kept ready for RPCs"},
    {"max_workers", "max-workers", OPT_INT, O(max_workers), "256",
     "upper bound of worker threads (RPCs beyond it wait)"},
    {"max_msg_size", "max-msg-size", OPT_INT, O(max_msg_size), "16777216",
     "largest gRPC request accepted, bytes (kubelet uses 16 MiB)"},
    {"runtimes", "runtime", OPT_KVLIST, O(runtimes), "",
     "runtime handler NAME=PATH of a runc-compatible OCI runtime (repeatable); hull-oci is "
     "always available as \"hull-oci\""},
    {"allowed_annotations", "allowed-annotations", OPT_KVLIST, O(allowed_annotations), "",
     "HANDLER=NAME[,NAME...]: the io.hull.* pod annotations pods of that runtime handler may use "
     "(repeatable; none by default: such annotations are ignored). Known: io.hull.shm-size "
     "(size of the pod's /dev/shm)"},
    {"default_runtime", "default-runtime", OPT_STRING, O(default_runtime), "hull-oci",
     "handler used when the pod names none"},
    {"conmon_path", "conmon", OPT_STRING, O(conmon_path), "",
     "hull-conmon binary (default: next to hulld)"},
    {"pause_path", "pause", OPT_STRING, O(pause_path), "",
     "pod infra binary for shared PID namespaces (default: hull-pause next to hulld)"},
    {"registry_mirrors", "registry-mirror", OPT_KVLIST, O(registry_mirrors), "",
     "REGISTRY=URL mirror tried before the registry itself (repeatable, in order; http:// "
     "URLs are plain HTTP)"},
    {"insecure_registries", "insecure-registry", OPT_STRLIST, O(insecure_registries), "",
     "HOST[:PORT] reached over plain HTTP or unverified TLS (repeatable)"},
    {"registry_ca_files", "registry-ca", OPT_KVLIST, O(registry_ca_files), "",
     "REGISTRY=PATH of a CA bundle for that registry (repeatable)"},
    {"pull_timeout", "pull-timeout", OPT_INT, O(pull_timeout), "60",
     "seconds a registry transfer may stay below pull_low_speed_limit before it is retried"},
    {"pull_low_speed_limit", "pull-low-speed-limit", OPT_INT, O(pull_low_speed_limit), "1024",
     "bytes per second under which a registry transfer counts as stalled (0: only no progress)"},
    {"pull_deadline", "pull-deadline", OPT_INT, O(pull_deadline), "3600",
     "seconds one image pull may take in total, retries included (0: no limit)"},
    {"max_unsized_blob", "max-unsized-blob", OPT_INT, O(max_unsized_blob), "1073741824",
     "bytes downloaded at most for a layer whose descriptor gives no size"},
    {"max_layer_size", "max-layer-size", OPT_INT, O(max_layer_size), "34359738368",
     "bytes one unpacked layer may hold (file data, apparent size; 0: unlimited)"},
    {"max_image_size", "max-image-size", OPT_INT, O(max_image_size), "68719476736",
     "bytes of file data the layers one pull unpacks may hold together (apparent size, each "
     "entry counts 4 KiB; 0: unlimited)"},
    {"image_fs_min_free", "image-fs-min-free", OPT_INT, O(image_fs_min_free), "268435456",
     "bytes that must stay free on the image filesystem: a layer file that would eat into them "
     "fails the pull (0: no check)"},
    {"max_volume_copy_size", "max-volume-copy-size", OPT_INT, O(max_volume_copy_size), "1073741824",
     "bytes of data (holes excluded) copied from an image into its VOLUME directories per "
     "container (0: unlimited)"},
    {"cni_config_dir", "cni-config-dir", OPT_STRING, O(cni_config_dir), "/etc/cni/net.d",
     "CNI network configuration directory"},
    {"cni_plugin_dirs", "cni-plugin-dirs", OPT_STRLIST, O(cni_plugin_dirs),
     "/opt/cni/bin,/usr/lib/cni", "CNI plugin directories (flag: colon or comma separated)"},
    {"cni_write_default_config", "cni-write-default-config", OPT_BOOL, O(cni_write_default_config),
     "false", "write the embedded bridge network config when the CNI config dir is empty"},
    {"cni_default_subnet", "cni-default-subnet", OPT_STRING, O(cni_default_subnet), "10.88.0.0/16",
     "subnet of the embedded default network"},
    {"cni_plugin_timeout", "cni-plugin-timeout", OPT_INT, O(cni_plugin_timeout), "60",
     "seconds one CNI plugin call may take before its process group is killed"},
    {"cni_del_max_failures", "cni-del-max-failures", OPT_INT, O(cni_del_max_failures), "3",
     "failed CNI DELs of a pod (StopPodSandbox/RemovePodSandbox answer UNAVAILABLE and kubelet "
     "retries) after which its network teardown is given up, logged and the pod let go (0: "
     "never)"},
    {"stream_address", "stream-address", OPT_STRING, O(stream_address), "127.0.0.1",
     "address of the exec/attach/port-forward streaming server"},
    {"stream_port", "stream-port", OPT_INT, O(stream_port), "0",
     "port of the streaming server (0: ephemeral)"},
    {"stream_tls_cert", "stream-tls-cert", OPT_STRING, O(stream_tls_cert), "",
     "TLS certificate file for the streaming server (empty: plain HTTP)"},
    {"stream_tls_key", "stream-tls-key", OPT_STRING, O(stream_tls_key), "",
     "TLS key file for the streaming server"},
    {"stream_idle_timeout", "stream-idle-timeout", OPT_INT, O(stream_idle_timeout), "14400",
     "seconds a streaming session may stay idle"},
    {"max_container_log_size", "max-container-log-size", OPT_INT, O(max_container_log_size), "0",
     "bytes after which a container log is truncated by its monitor (0: unlimited)"},
    /* NRI plugins (nri/nri.h) */
    {"enable_nri", "enable-nri", OPT_BOOL, O(enable_nri), "false",
     "serve NRI (Node Resource Interface) plugins on nri_socket"},
    {"nri_socket", "nri-socket", OPT_STRING, O(nri_socket), "/var/run/nri/nri.sock",
     "unix socket NRI plugins connect to (another runtime serving it: hulld runs without NRI)"},
    {"nri_registration_timeout_ms", "nri-registration-timeout-ms", OPT_INT,
     O(nri_registration_timeout_ms), "5000",
     "milliseconds a plugin has to register after connecting (and to synchronize)"},
    {"nri_request_timeout_ms", "nri-request-timeout-ms", OPT_INT, O(nri_request_timeout_ms), "2000",
     "milliseconds a plugin has to answer one event; a plugin that does not is dropped"},
    /* operators */
    {"metrics_address", "metrics-address", OPT_STRING, O(metrics_address), "",
     "HOST:PORT of the Prometheus /metrics endpoint (empty: off; \":PORT\" is 127.0.0.1:PORT)"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static void *field(struct hull_config *c, const struct opt *o)
{
    return (char *)c + o->offset;
}

static const void *cfield(const struct hull_config *c, const struct opt *o)
{
    return (const char *)c + o->offset;
}

static void strlist_clear(struct hull_str_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static void strlist_add(struct hull_str_list *l, const char *s)
{
    l->items = xrealloc(l->items, (l->len + 1) * sizeof(char *));
    l->items[l->len++] = xstrdup(s);
}

static void kvlist_clear(struct hull_kv_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static void kvlist_add(struct hull_kv_list *l, const char *k, const char *v)
{
    l->items = xrealloc(l->items, (l->len + 1) * sizeof(struct hull_kv));
    l->items[l->len].key = xstrdup(k);
    l->items[l->len].value = xstrdup(v);
    l->len++;
}

/* Parses a KEY=VALUE flag value into the list. */
static int kvlist_add_text(struct hull_kv_list *l, const char *name, const char *text,
                           hull_error_t *err)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text || eq[1] == '\0')
        return hull_error_setx(err, EINVAL, "%s: expected KEY=VALUE, got `%s`", name, text);
    _cleanup_free_ char *k = xstrndup(text, (size_t)(eq - text));
    kvlist_add(l, k, eq + 1);
    return 0;
}

static int parse_int(const char *name, const char *text, long long *out, hull_error_t *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0)
        return hull_error_setx(err, EINVAL, "%s: expected a non-negative integer, got `%s`", name,
                               text);
    *out = v;
    return 0;
}

static int parse_bool(const char *name, const char *text, bool *out, hull_error_t *err)
{
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 || strcmp(text, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 || strcmp(text, "no") == 0) {
        *out = false;
        return 0;
    }
    return hull_error_setx(err, EINVAL, "%s: expected true or false, got `%s`", name, text);
}

/* Sets an option from text (defaults and flags).  Lists are appended to. */
static int set_from_text(struct hull_config *c, const struct opt *o, const char *name,
                         const char *text, hull_error_t *err)
{
    void *f = field(c, o);
    switch (o->type) {
    case OPT_STRING:
        free(*(char **)f);
        *(char **)f = xstrdup(text);
        return 0;
    case OPT_INT:
        return parse_int(name, text, (long long *)f, err);
    case OPT_BOOL:
        return parse_bool(name, text, (bool *)f, err);
    case OPT_STRLIST: {
        _cleanup_free_ char *dup = xstrdup(text);
        char *save = NULL;
        /* only path lists split at ':' too: HOST:PORT entries stay whole */
        const char *seps = o->offset == O(cni_plugin_dirs) ? ",:" : ",";
        for (char *t = strtok_r(dup, seps, &save); t; t = strtok_r(NULL, seps, &save))
            strlist_add(f, t);
        return 0;
    }
    case OPT_KVLIST: {
        _cleanup_free_ char *dup = xstrdup(text);
        char *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int r = kvlist_add_text(f, name, t, err);
            if (r < 0)
                return r;
        }
        return 0;
    }
    }
    return 0;
}

static const char *json_type_name(yajl_val v)
{
    if (YAJL_IS_STRING(v))
        return "a string";
    if (YAJL_IS_NUMBER(v))
        return "a number";
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        return "a boolean";
    if (YAJL_IS_ARRAY(v))
        return "an array";
    if (YAJL_IS_OBJECT(v))
        return "an object";
    return "null";
}

static int wrong_type(const char *path, const char *key, const char *want, yajl_val v,
                      hull_error_t *err)
{
    return hull_error_setx(err, EINVAL, "%s: key \"%s\" must be %s, not %s", path, key, want,
                           json_type_name(v));
}

static int set_from_json(struct hull_config *c, const struct opt *o, const char *path, yajl_val v,
                         hull_error_t *err)
{
    void *f = field(c, o);
    switch (o->type) {
    case OPT_STRING:
        if (!YAJL_IS_STRING(v))
            return wrong_type(path, o->key, "a string", v, err);
        free(*(char **)f);
        *(char **)f = xstrdup(YAJL_GET_STRING(v));
        return 0;
    case OPT_INT:
        if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0)
            return wrong_type(path, o->key, "a non-negative integer", v, err);
        *(long long *)f = YAJL_GET_INTEGER(v);
        return 0;
    case OPT_BOOL:
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
            return wrong_type(path, o->key, "a boolean", v, err);
        *(bool *)f = YAJL_IS_TRUE(v);
        return 0;
    case OPT_STRLIST:
        if (!YAJL_IS_ARRAY(v))
            return wrong_type(path, o->key, "an array of strings", v, err);
        strlist_clear(f);
        for (size_t i = 0; i < v->u.array.len; i++) {
            yajl_val e = v->u.array.values[i];
            if (!YAJL_IS_STRING(e))
                return wrong_type(path, o->key, "an array of strings", e, err);
            strlist_add(f, YAJL_GET_STRING(e));
        }
        return 0;
    case OPT_KVLIST:
        if (!YAJL_IS_OBJECT(v))
            return wrong_type(path, o->key, "an object", v, err);
        kvlist_clear(f);
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            yajl_val e = v->u.object.values[i];
            if (YAJL_IS_STRING(e)) {
                kvlist_add(f, k, YAJL_GET_STRING(e));
                continue;
            }
            if (!YAJL_IS_ARRAY(e))
                return wrong_type(path, o->key, "an object of strings or string arrays", e, err);
            for (size_t j = 0; j < e->u.array.len; j++) {
                if (!YAJL_IS_STRING(e->u.array.values[j]))
                    return wrong_type(path, o->key, "an object of strings or string arrays",
                                      e->u.array.values[j], err);
                kvlist_add(f, k, YAJL_GET_STRING(e->u.array.values[j]));
            }
        }
        return 0;
    }
    return 0;
}

static int load_file(struct hull_config *c, const char *path, bool must_exist, hull_error_t *err)
{
    if (!must_exist && access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse_file(path, 1 << 20, &doc, err);
    if (r < 0)
        return hull_error_wrap(err, "config");
    if (!YAJL_IS_OBJECT(doc))
        return hull_error_setx(err, EINVAL, "config %s: top level must be an object", path);
    for (size_t i = 0; i < doc->u.object.len; i++) {
        const char *key = doc->u.object.keys[i];
        if (key[0] == '#' || strncmp(key, "_comment", 8) == 0)
            continue; /* documentation keys, as in contrib/hull.json */
        const struct opt *o = NULL;
        for (size_t j = 0; j < N_OPTIONS; j++)
            if (strcmp(options[j].key, key) == 0)
                o = &options[j];
        if (o == NULL)
            return hull_error_setx(err, EINVAL, "config %s: unknown key \"%s\"", path, key);
        r = set_from_json(c, o, path, doc->u.object.values[i], err);
        if (r < 0)
            return r;
    }
    free(c->config_path);
    c->config_path = xstrdup(path);
    return 0;
}

static void print_help(FILE *out)
{
    fprintf(out, "Usage: hulld [OPTIONS]\n\n"
                 "Hull: a Kubernetes CRI runtime.  Serves runtime.v1 RuntimeService and "
                 "ImageService on a unix socket.\n\n"
                 "  --config PATH             JSON config file (default /etc/hull/hull.json; "
                 "missing default is fine)\n"
                 "  --print-config            print the effective configuration as JSON and "
                 "exit\n"
                 "  --help, --version\n\n"
                 "Every config key is also a flag (KEY in the file, --FLAG here):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        const char *arg = o->type == OPT_INT      ? " N"
                          : o->type == OPT_BOOL   ? "[=BOOL]"
                          : o->type == OPT_KVLIST ? " K=V"
                                                  : " VALUE";
        fprintf(out, "  --%s%s\n      %s (key \"%s\"; default \"%s\")\n", o->flag, arg, o->help,
                o->key, o->def);
    }
}

void config_free(struct hull_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        void *f = field(c, &options[i]);
        switch (options[i].type) {
        case OPT_STRING:
            free(*(char **)f);
            break;
        case OPT_STRLIST:
            strlist_clear(f);
            break;
        case OPT_KVLIST:
            kvlist_clear(f);
            break;
        default:
            break;
        }
    }
    free(c->config_path);
    free(c);
}

static int validate(struct hull_config *c, hull_error_t *err)
{
    if (hull_log_level_parse(c->log_level) < 0)
        return hull_error_setx(err, EINVAL, "log_level: unknown level `%s`", c->log_level);
    const char *managers[] = {c->cgroup_manager, c->cgroup_driver};
    const char *mkeys[] = {"cgroup_manager", "cgroup_driver"};
    for (size_t i = 0; i < 2; i++)
        if (strcmp(managers[i], "cgroupfs") != 0 && strcmp(managers[i], "systemd") != 0)
            return hull_error_setx(err, EINVAL,
                                   "%s: `%s` is not a cgroup driver (cgroupfs or systemd)",
                                   mkeys[i], managers[i]);
    if (strcmp(c->cgroup_driver, "systemd") == 0 && strcmp(c->cgroup_manager, "systemd") != 0) {
        free(c->cgroup_manager);
        c->cgroup_manager = xstrdup("systemd");
    }
    free(c->cgroup_driver);
    c->cgroup_driver = xstrdup(c->cgroup_manager);
    const char *paths[] = {c->listen, c->root, c->state_dir};
    const char *names[] = {"listen", "root", "state_dir"};
    for (size_t i = 0; i < 3; i++)
        if (paths[i][0] != '/')
            return hull_error_setx(err, EINVAL, "%s: `%s` must be an absolute path", names[i],
                                   paths[i]);
    if (strlen(c->listen) >= 100)
        return hull_error_setx(err, EINVAL, "listen: socket path `%s` is too long", c->listen);
    if (c->workers < 1 || c->max_workers < c->workers)
        return hull_error_setx(err, EINVAL, "workers: need 1 <= workers <= max_workers");
    if (c->max_msg_size < 1024)
        return hull_error_setx(err, EINVAL, "max_msg_size: too small");
    if (c->stream_port > 65535)
        return hull_error_setx(err, EINVAL, "stream_port: %lld is not a port", c->stream_port);
    if (config_runtime_path(c, c->default_runtime) == NULL)
        return hull_error_setx(err, EINVAL, "default_runtime: no runtime handler named `%s`",
                               c->default_runtime);
    return 0;
}

bool config_systemd_cgroup(const struct hull_config *c)
{
    return c && c->cgroup_manager && strcmp(c->cgroup_manager, "systemd") == 0;
}

int config_load(int argc, char **argv, struct hull_config **out, bool *exit_now, int *exit_code,
                hull_error_t *err)
{
    _cleanup_config_ struct hull_config *c = xmalloc0(sizeof(*c));
    int r;
    *exit_now = false;
    *exit_code = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].def[0] == '\0' && options[i].type != OPT_STRING)
            continue;
        r = set_from_text(c, &options[i], options[i].key, options[i].def, err);
        if (r < 0)
            return r;
    }
    c->config_path = xstrdup("");

    /* getopt table: every option + config/help/version */
    enum { F_CONFIG = 1000, F_HELP, F_VERSION, F_PRINT };
    struct option *lopts = xmalloc0((N_OPTIONS + 5) * sizeof(struct option));
    _cleanup_free_ struct option *lopts_free = lopts;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        lopts[i].name = options[i].flag;
        lopts[i].has_arg = options[i].type == OPT_BOOL ? optional_argument : required_argument;
        lopts[i].val = (int)i;
    }
    lopts[N_OPTIONS] = (struct option){"config", required_argument, NULL, F_CONFIG};
    lopts[N_OPTIONS + 1] = (struct option){"help", no_argument, NULL, F_HELP};
    lopts[N_OPTIONS + 2] = (struct option){"version", no_argument, NULL, F_VERSION};
    lopts[N_OPTIONS + 3] = (struct option){"print-config", no_argument, NULL, F_PRINT};

    /* pass 1: --config, --help, --version (the file comes before the other flags) */
    const char *config_file = "/etc/hull/hull.json";
    bool explicit_file = false, print = false;
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (ch == F_CONFIG) {
            config_file = optarg;
            explicit_file = true;
        } else if (ch == F_HELP || ch == 'h') {
            print_help(stdout);
            *exit_now = true;
            return 0;
        } else if (ch == F_VERSION) {
            printf("hulld %s (CRI runtime.v1)\n", HULL_VERSION);
            *exit_now = true;
            return 0;
        } else if (ch == F_PRINT) {
            print = true;
        } else if (ch == '?') {
            *exit_code = 2;
            return hull_error_setx(err, EINVAL, "unknown or malformed option `%s` (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc) {
        *exit_code = 2;
        return hull_error_setx(err, EINVAL, "unexpected argument `%s`", argv[optind]);
    }
    r = load_file(c, config_file, explicit_file, err);
    if (r < 0) {
        *exit_code = 2;
        return r;
    }

    /* pass 2: the flags, overriding the file; a repeated list flag replaces the file's list */
    bool *seen = xmalloc0(N_OPTIONS);
    _cleanup_free_ bool *seen_free = seen;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (ch < 0 || ch >= (int)N_OPTIONS)
            continue;
        const struct opt *o = &options[ch];
        if (!seen[ch]) {
            if (o->type == OPT_STRLIST)
                strlist_clear(field(c, o));
            else if (o->type == OPT_KVLIST)
                kvlist_clear(field(c, o));
            seen[ch] = true;
        }
        _cleanup_free_ char *name = xasprintf("--%s", o->flag);
        r = set_from_text(c, o, name, optarg ? optarg : "true", err);
        if (r < 0) {
            *exit_code = 2;
            return r;
        }
    }
    r = validate(c, err);
    if (r < 0) {
        *exit_code = 2;
        return r;
    }
    if (print) {
        _cleanup_free_ char *json = config_to_json(c, true);
        printf("%s\n", json);
        *exit_now = true;
        return 0;
    }
    *out = hull_steal(c);
    return 0;
}

char *config_to_json(const struct hull_config *c, bool pretty)
{
    struct hull_json_writer w;
    hull_jw_init(&w, pretty);
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        const void *f = cfield(c, o);
        hull_jw_key(&w, o->key);
        switch (o->type) {
        case OPT_STRING:
            hull_jw_string(&w, *(char *const *)f);
            break;
        case OPT_INT:
            hull_jw_int(&w, *(const long long *)f);
            break;
        case OPT_BOOL:
            hull_jw_bool(&w, *(const bool *)f);
            break;
        case OPT_STRLIST: {
            const struct hull_str_list *l = f;
            hull_jw_begin_array(&w);
            for (size_t j = 0; j < l->len; j++)
                hull_jw_string(&w, l->items[j]);
            hull_jw_end_array(&w);
            break;
        }
        case OPT_KVLIST: {
            /* keys may repeat (several mirrors): group values per key, in order */
            const struct hull_kv_list *l = f;
            hull_jw_begin_object(&w);
            for (size_t j = 0; j < l->len; j++) {
                bool first = true;
                for (size_t k = 0; k < j; k++)
                    if (strcmp(l->items[k].key, l->items[j].key) == 0)
                        first = false;
                if (!first)
                    continue;
                hull_jw_key(&w, l->items[j].key);
                hull_jw_begin_array(&w);
                for (size_t k = j; k < l->len; k++)
                    if (strcmp(l->items[k].key, l->items[j].key) == 0)
                        hull_jw_string(&w, l->items[k].value);
                hull_jw_end_array(&w);
            }
            hull_jw_end_object(&w);
            break;
        }
        }
    }
    hull_jw_end_object(&w);
    char *r = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return r;
}

const char *config_kv_get(const struct hull_kv_list *l, const char *key)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

bool config_annotation_allowed(const struct hull_config *c, const char *handler,
                               const char *annotation)
{
    if (handler == NULL || handler[0] == '\0')
        handler = c->default_runtime;
    const char *list = config_kv_get(&c->allowed_annotations, handler);
    size_t n = strlen(annotation);
    for (const char *p = list; p && *p;) {
        p += strspn(p, ", ");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == n && n > 0 && strncmp(p, annotation, n) == 0)
            return true;
        p += len;
    }
    return false;
}

const char *config_runtime_path(const struct hull_config *c, const char *handler)
{
    if (handler == NULL || handler[0] == '\0')
        handler = c->default_runtime;
    const char *p = config_kv_get(&c->runtimes, handler);
    if (p)
        return p;
    if (strcmp(handler, "hull-oci") == 0)
        return "hull-oci"; /* resolved next to hulld by the container area */
    return NULL;
}
