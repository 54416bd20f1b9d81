/* cni/ — pod networking through CNI plugins (external binaries), as the CNI spec and libcni
 * define it:
 *
 *   - network configuration: the first valid `.conflist`, `.conf` or `.json` file of a
 *     directory in lexical order (a `.conf` is a list of one plugin);
 *   - ADD runs every plugin of the list in order, each getting the previous plugin's result as
 *     `prevResult`; DEL runs them in reverse order with the cached ADD result; CHECK (0.4.0+)
 *     re-verifies with the cached result;
 *   - the ADD result, the exact configuration and the arguments used are cached under
 *     `<cache_dir>/results/<network>-<container id>-<ifname>` so that DEL works after a hulld
 *     restart and after the configuration file changed or disappeared;
 *   - plugins run with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH and
 *     the config (plus `runtimeConfig` for the capabilities a plugin declares) on stdin;
 *   - network namespaces (and ipc/uts) are created by a short-lived child and pinned by bind
 *     mounts (cni_ns_create / cni_ns_remove).
 *
 * No function here holds a lock while a plugin runs. */
#ifndef HULL_CNI_H
#define HULL_CNI_H

#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* ---- network configuration ------------------------------------------------------------ */

/* A parsed network configuration list; immutable, reference counted. */
struct cni_network;

/* Parses a conflist (or a single-plugin .conf when `single` is true).  `source` names it in
 * errors.  Validates cniVersion, name and every plugin's type (a plain file name). */
int cni_network_parse(const char *text, const char *source, bool single, struct cni_network **out,
                      hull_error_t *err);
/* Loads one file; `.conf`/`.json` files are single plugins unless they hold "plugins". */
int cni_network_load_file(const char *path, struct cni_network **out, hull_error_t *err);
/* Loads the first valid configuration file of dir (lexical order).  ENOENT when the dir holds no
 * valid one; the message then names the dir and the last file's problem. */
int cni_network_load_dir(const char *dir, struct cni_network **out, hull_error_t *err);
struct cni_network *cni_network_ref(struct cni_network *n);
void cni_network_unref(struct cni_network *n);
HULL_DEFINE_CLEANUP(struct cni_network, cni_network_unref)
#define _cleanup_cni_network_ __attribute__((cleanup(cni_network_unrefp)))
const char *cni_network_name(const struct cni_network *n);
const char *cni_network_version(const struct cni_network *n);
size_t cni_network_plugin_count(const struct cni_network *n);
const char *cni_network_plugin_type(const struct cni_network *n, size_t i);
/* The configuration text exactly as loaded. */
const char *cni_network_text(const struct cni_network *n);

/* The embedded default: bridge `hull0` (gateway, masquerade, hairpin) + host-local on subnet +
 * portmap + loopback, cniVersion 1.0.0.  Caller frees. */
char *cni_default_conflist(const char *subnet);
/* Writes the default as <dir>/10-hull-bridge.conflist when dir holds no configuration file.
 * Sets *written. */
int cni_write_default_config(const char *dir, const char *subnet, bool *written, hull_error_t *err);

/* ---- a network attachment ----------------------------------------------------------------- */

struct cni_port_mapping {
    int32_t host_port;
    int32_t container_port;
    const char *protocol; /* "tcp", "udp", "sctp" */
    const char *host_ip;  /* "" or NULL: all addresses */
};

struct cni_bandwidth {
    uint64_t ingress_rate, ingress_burst; /* bits per second, bits */
    uint64_t egress_rate, egress_burst;
};

/* What a runtime passes for one attachment (one pod, one interface). */
struct cni_attachment {
    const char *container_id; /* pod sandbox id */
    const char *netns;        /* pinned netns path */
    const char *ifname;       /* "eth0" when NULL */
    /* CNI_ARGS: IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_INFRA_CONTAINER_ID=…;
     * K8S_POD_UID=… (values must not hold ';' or '=') */
    const char *pod_name;
    const char *pod_namespace;
    const char *pod_uid;
    /* capability arguments, given to plugins that declare the capability */
    const struct cni_port_mapping *port_mappings; /* portMappings */
    size_t n_port_mappings;
    const struct cni_bandwidth *bandwidth; /* bandwidth, NULL = none */
    const char *pod_cidr;                  /* ipRanges [[{"subnet": pod_cidr}]], NULL = none */
    const char *const *dns_servers;        /* dns */
    size_t n_dns_servers;
    const char *const *dns_searches;
    size_t n_dns_searches;
    const char *const *dns_options;
    size_t n_dns_options;
};

/* The result of an ADD: the final plugin's result JSON and the IPs in it. */
struct cni_result {
    char *json;
    char **ips; /* addresses without prefix length, v4 first as the plugin listed them */
    size_t n_ips;
    char *network_name;
};
/* Parses a CNI result (0.1.0–1.1.0: "ips" or legacy "ip4"/"ip6"). */
int cni_result_parse(const char *json, struct cni_result **out, hull_error_t *err);
void cni_result_free(struct cni_result *r);
HULL_DEFINE_CLEANUP(struct cni_result, cni_result_free)
#define _cleanup_cni_result_ __attribute__((cleanup(cni_result_freep)))

/* How plugins are found and where results are cached. */
struct cni_exec {
    char **plugin_dirs; /* searched in order */
    size_t n_plugin_dirs;
    char *cache_dir; /* results/ lives below */
    int timeout_ms;  /* per plugin call; 0 = 60 s */
};

/* Builds the CNI_ARGS value (caller frees); EINVAL if a value holds ';' or '='. */
int cni_build_args(const struct cni_attachment *a, char **out, hull_error_t *err);

/* ADD: runs the list; on failure runs DEL for the whole list (best effort) and returns the
 * plugin's error message.  On success the result is cached and returned. */
int cni_add(const struct cni_exec *ex, struct cni_network *net, const struct cni_attachment *a,
            struct cni_result **out, hull_error_t *err);
/* DEL: uses the cached configuration, arguments and result when there is a cache entry for
 * (network_name, container id, ifname); otherwise `net` (may be NULL: nothing to do).  Removes
 * the cache entry on success.  Idempotent. */
int cni_del(const struct cni_exec *ex, struct cni_network *net, const char *network_name,
            const struct cni_attachment *a, hull_error_t *err);
/* CHECK with the cached result (EOPNOTSUPP for cniVersion < 0.4.0 or disableCheck). */
int cni_check(const struct cni_exec *ex, const char *network_name, const struct cni_attachment *a,
              hull_error_t *err);
/* The cached result of an attachment (ENOENT when none). */
int cni_cached_result(const struct cni_exec *ex, const char *network_name, const char *container_id,
                      const char *ifname, struct cni_result **out, hull_error_t *err);

/* Runs one plugin binary (exposed for tests): finds `type` in the plugin dirs, sets the CNI_*
 * environment, writes stdin_json, returns its stdout.  A non-zero exit becomes an error carrying
 * the plugin's CNI error message ("msg: details" of its error JSON, else its stderr). */
int cni_exec_plugin(const struct cni_exec *ex, const char *type, const char *command,
                    const struct cni_attachment *a, const char *cni_args, const char *stdin_json,
                    char **out, hull_error_t *err);

/* ---- the manager: config dir watching, readiness, attach/detach ------------------------- */

struct cni_manager;

struct cni_manager_options {
    const char *config_dir;         /* default /etc/cni/net.d */
    const char *const *plugin_dirs; /* default /opt/cni/bin, /usr/lib/cni */
    size_t n_plugin_dirs;
    const char *cache_dir; /* e.g. <state_dir>/cni */
    bool write_default_config;
    const char *default_subnet; /* default 10.88.0.0/16 */
    int plugin_timeout_ms;      /* per plugin call; 0 = 60 s */
};

int cni_manager_new(const struct cni_manager_options *o, struct cni_manager **out,
                    hull_error_t *err);
void cni_manager_free(struct cni_manager *m);
HULL_DEFINE_CLEANUP(struct cni_manager, cni_manager_free)
#define _cleanup_cni_manager_ __attribute__((cleanup(cni_manager_freep)))
/* The current network: rescans the config dir when it changed (directory or file mtime, name,
 * size), so a new or edited config is picked up without restart.  Returns a reference. */
int cni_manager_network(struct cni_manager *m, struct cni_network **out, hull_error_t *err);
/* NetworkReady: true when a valid configuration exists; otherwise reason
 * "NetworkPluginNotReady" and a message (caller frees both). */
bool cni_manager_ready(struct cni_manager *m, char **reason, char **message);
/* kubelet's pod CIDR (UpdateRuntimeConfig), handed to plugins as ipRanges. */
void cni_manager_set_pod_cidr(struct cni_manager *m, const char *cidr);
char *cni_manager_pod_cidr(struct cni_manager *m); /* caller frees; NULL when none */
const struct cni_exec *cni_manager_exec(struct cni_manager *m);

/* ---- namespaces ------------------------------------------------------------------------- */

struct cni_sysctl {
    const char *key; /* dotted or slashed name, validated by the caller */
    const char *value;
};

/* Creates new namespaces in a short-lived child and pins them by bind mounts.  flags is a mask
 * of CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS; the path of each requested kind must be given.
 * In the child: loopback up (net), hostname (uts), then every sysctl written one per open of
 * /proc/sys/<key> (in the new namespaces).  On failure nothing stays pinned. */
struct cni_ns_request {
    int flags;
    const char *net_path, *ipc_path, *uts_path;
    const char *user_path; /* pinned user namespace that owns the new ones, NULL: hulld's */
    const char *hostname;
    const struct cni_sysctl *sysctls;
    size_t n_sysctls;
};
int cni_ns_create(const struct cni_ns_request *req, hull_error_t *err);
/* Unmounts and deletes a pinned namespace file; a missing one is success. */
int cni_ns_remove(const char *path, hull_error_t *err);
/* True when path is a pinned namespace (a nsfs mount). */
bool cni_ns_is_pinned(const char *path);

#endif
