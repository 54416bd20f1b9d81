/* hulld configuration: embedded defaults < JSON file (/etc/hull/hull.json) < command-line flags.
 * Every key is described once, in the option table of config.c, which drives the JSON parser,
 * the flag parser, `hulld --help`, contrib/hull.json and Status(verbose). */
#ifndef HULL_SERVER_CONFIG_H
#define HULL_SERVER_CONFIG_H

#include "common/common.h"

/* A repeatable KEY=VALUE setting (JSON: {"key": "value"} or {"key": ["v1", "v2"]}). */
struct hull_kv {
    char *key;
    char *value;
};

struct hull_kv_list {
    struct hull_kv *items;
    size_t len;
};

struct hull_str_list {
    char **items;
    size_t len;
};

struct hull_config {
    char *config_path; /* the file this was loaded from ("" when none) */
    char *listen;      /* gRPC unix socket */
    char *root;        /* persistent state */
    char *state_dir;   /* volatile state */
    char *log_level;
    char *cgroup_manager; /* "cgroupfs" or "systemd" (transient scopes over D-Bus) */
    char *cgroup_driver;  /* older name of cgroup_manager ("systemd" there selects it too) */
    char *cgroup_parent;  /* default parent for pods without one */
    long long workers;    /* minimum worker threads kept warm */
    long long max_workers;
    long long max_msg_size; /* bytes, gRPC receive limit */

    /* runtimes */
    struct hull_kv_list runtimes; /* handler name -> OCI runtime binary */
    /* handler name -> comma-separated io.hull.* annotations its pods may use (CRI-O's
     * allowed_annotations); none by default */
    struct hull_kv_list allowed_annotations;
    char *default_runtime;
    char *conmon_path;
    char *pause_path;

    /* images */
    struct hull_kv_list registry_mirrors; /* registry host -> mirror URL, in order */
    struct hull_str_list insecure_registries;
    struct hull_kv_list registry_ca_files; /* registry host -> CA bundle path */
    long long pull_timeout;                /* seconds an HTTP transfer may stay too slow */
    long long pull_low_speed_limit;        /* bytes/s under which a transfer is too slow */
    long long pull_deadline;               /* seconds per pull in total, 0 = none */
    long long max_unsized_blob;            /* download cap for blobs without a size */
    long long max_layer_size;              /* bytes of an unpacked layer, 0 = unlimited */
    long long max_image_size;              /* bytes all layers of an image unpack to, 0 = none */
    long long image_fs_min_free;           /* bytes unpacks leave free on the image fs, 0 = none */
    long long max_volume_copy_size;        /* image VOLUME copy-up budget, 0 = unlimited */

    /* networking */
    char *cni_config_dir;
    struct hull_str_list cni_plugin_dirs;
    bool cni_write_default_config;
    char *cni_default_subnet;
    long long cni_plugin_timeout;   /* seconds one plugin call may take */
    long long cni_del_max_failures; /* failed DELs after which a pod is let go (0: never) */

    /* streaming */
    char *stream_address;
    long long stream_port;
    char *stream_tls_cert;
    char *stream_tls_key;
    long long stream_idle_timeout; /* seconds */

    /* logs */
    long long max_container_log_size; /* bytes, 0 = unlimited */

    /* NRI */
    bool enable_nri;
    char *nri_socket;
    long long nri_registration_timeout_ms;
    long long nri_request_timeout_ms;

    /* operators */
    char *metrics_address; /* Prometheus endpoint, "" = off */
};

/* Builds the configuration from defaults, the config file and argv.  `--help` and `--version`
 * print and set *exit_now (exit code in *exit_code).  Errors name the key or flag. */
int config_load(int argc, char **argv, struct hull_config **out, bool *exit_now, int *exit_code,
                hull_error_t *err);
void config_free(struct hull_config *c);
HULL_DEFINE_CLEANUP(struct hull_config, config_free)
#define _cleanup_config_ __attribute__((cleanup(config_freep)))
/* The effective configuration as JSON (for Status verbose and `hulld --print-config`). */
char *config_to_json(const struct hull_config *c, bool pretty);
/* The value of a KEY=VALUE list for key (first match) or NULL. */
const char *config_kv_get(const struct hull_kv_list *l, const char *key);
/* Whether pods of handler ("" = default handler) may use the io.hull.* annotation (listed for
 * it in allowed_annotations). */
bool config_annotation_allowed(const struct hull_config *c, const char *handler,
                               const char *annotation);
/* Path of the OCI runtime for a handler name ("" = default handler); NULL if unknown. */
const char *config_runtime_path(const struct hull_config *c, const char *handler);
/* Whether the systemd cgroup driver is selected (cgroup_manager "systemd"). */
bool config_systemd_cgroup(const struct hull_config *c);

#endif
