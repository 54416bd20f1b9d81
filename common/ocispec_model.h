/* The typed runtime-spec model (config.json, runtime-spec 1.1): the fields Hull uses, with one
 * serializer (hulld writes config.json and exec's process.json with it) and one complete parser
 * (hull-oci loads config.json and exec --process with it).
 *
 * The model keeps values as the spec spells them (capability names, mount options, namespace
 * types as strings); what they mean to a runtime (flags, bit masks, paths relative to a bundle)
 * is the reader's business (oci/spec.c).  The parser checks structure and what the spec itself
 * defines: member types, required members, integer ranges, enumerations (namespace, device and
 * rlimit types, rootfsPropagation), absolute paths where the spec requires them; every error
 * names the member, e.g. "linux.namespaces: unknown type `foo`".  JSON null is the same as an
 * absent member; unknown members are ignored (the spec says so).
 *
 * Presence: a string or a pointer is NULL when the member is absent; an array member is present
 * (possibly empty) when its pointer is not NULL, so that parse(serialize(m)) == m.
 *
 * linux.resources is the cgroup library's typed struct (common/cgroup.h: every member Hull
 * applies, the device cgroup rules included), parsed completely here with the rest (integer
 * types and ranges, device rule types and access, required members); what Hull does not
 * support (rdma, network.priorities, memory.useHierarchy/checkBeforeUpdate, cpu.burst) is
 * ignored like any unknown member.  hull-oci update's input is parsed by the same function
 * (hull_ocispec_resources_from_tree). */
#ifndef HULL_COMMON_OCISPEC_MODEL_H
#define HULL_COMMON_OCISPEC_MODEL_H

#include "common/cgroup.h"
#include "common/common.h"

#include <stdbool.h>
#include <stdint.h>

struct hull_ocispec_user {
    uint32_t uid, gid;
    bool has_umask;
    uint32_t umask;
    uint32_t *additional_gids; /* NULL: absent */
    size_t n_additional_gids;
    char *username;
};

struct hull_ocispec_rlimit {
    char *type; /* "RLIMIT_NOFILE" */
    uint64_t hard, soft;
};

/* NULL-terminated capability names ("CAP_CHOWN"); NULL: the set is absent */
struct hull_ocispec_caps {
    char **bounding, **effective, **inheritable, **permitted, **ambient;
};

struct hull_ocispec_process {
    bool terminal;
    bool has_console_size;
    uint32_t console_height, console_width;
    struct hull_ocispec_user user;
    char **args; /* NULL-terminated, at least one non-empty entry */
    char **env;  /* NULL-terminated; NULL: absent */
    char *cwd;   /* absolute; NULL: absent */
    bool has_capabilities;
    struct hull_ocispec_caps caps;
    struct hull_ocispec_rlimit *rlimits; /* NULL: absent */
    size_t n_rlimits;
    bool no_new_privileges;
    bool has_oom_score_adj;
    int oom_score_adj; /* -1000..1000 */
    char *apparmor_profile, *selinux_label;
};

struct hull_ocispec_mount {
    char *destination; /* absolute */
    char *type, *source;
    char **options; /* NULL-terminated; NULL: absent */
};

struct hull_ocispec_hook {
    char *path; /* absolute */
    char **args, **env;
    bool has_timeout;
    int64_t timeout;
};

enum {
    HULL_OCISPEC_HOOK_PRESTART,
    HULL_OCISPEC_HOOK_CREATE_RUNTIME,
    HULL_OCISPEC_HOOK_CREATE_CONTAINER,
    HULL_OCISPEC_HOOK_START_CONTAINER,
    HULL_OCISPEC_HOOK_POSTSTART,
    HULL_OCISPEC_HOOK_POSTSTOP,
    HULL_OCISPEC_N_HOOK_KINDS
};
/* "prestart", "createRuntime", ... by HULL_OCISPEC_HOOK_* */
extern const char *const hull_ocispec_hook_names[HULL_OCISPEC_N_HOOK_KINDS];

struct hull_ocispec_kv {
    char *key, *value;
};

struct hull_ocispec_namespace {
    char *type; /* pid network ipc uts mount user cgroup time */
    char *path; /* NULL: a new namespace */
};

struct hull_ocispec_idmap {
    uint32_t container_id, host_id, size;
};

struct hull_ocispec_device {
    char *path; /* absolute */
    char type;  /* c b u p */
    int64_t major, minor;
    bool has_file_mode, has_uid, has_gid;
    uint32_t file_mode, uid, gid;
};

struct hull_ocispec_seccomp_arg {
    uint32_t index;
    uint64_t value, value_two;
    bool has_value_two;
    char *op;
};

struct hull_ocispec_syscall {
    char **names; /* NULL-terminated, never NULL */
    char *action;
    bool has_errno_ret;
    uint32_t errno_ret;
    struct hull_ocispec_seccomp_arg *args; /* NULL: absent */
    size_t n_args;
};

struct hull_ocispec_seccomp {
    char *default_action;
    bool has_default_errno_ret;
    uint32_t default_errno_ret;
    char **architectures; /* NULL: absent */
    char **flags;         /* NULL: absent */
    char *listener_path, *listener_metadata;
    struct hull_ocispec_syscall *syscalls; /* NULL: absent */
    size_t n_syscalls;
};

enum { HULL_OCISPEC_CLOCK_MONOTONIC, HULL_OCISPEC_CLOCK_BOOTTIME, HULL_OCISPEC_N_CLOCKS };
struct hull_ocispec_time_offset {
    bool set;
    int64_t secs;
    uint32_t nanosecs;
};

struct hull_ocispec_linux {
    struct hull_ocispec_kv *sysctl; /* NULL: absent */
    size_t n_sysctl;
    struct hull_cgroup_resources *resources; /* linux.resources; NULL: absent */
    char *cgroups_path;
    struct hull_ocispec_namespace *namespaces; /* NULL: absent; types unique */
    size_t n_namespaces;
    struct hull_ocispec_idmap *uid_mappings, *gid_mappings; /* NULL: absent */
    size_t n_uid_mappings, n_gid_mappings;
    struct hull_ocispec_device *devices; /* NULL: absent */
    size_t n_devices;
    char **masked_paths, **readonly_paths; /* NULL: absent */
    char *rootfs_propagation;              /* private rprivate shared ... */
    char *mount_label;
    struct hull_ocispec_seccomp *seccomp; /* NULL: absent */
    struct hull_ocispec_time_offset time_offsets[HULL_OCISPEC_N_CLOCKS];
    char *personality_domain; /* linux.personality: "LINUX" or "LINUX32"; NULL: absent */
    char **personality_flags;
    bool has_intel_rdt; /* linux.intelRdt present (not modelled: Hull never writes it) */
};

struct hull_ocispec {
    char *oci_version;                    /* "1.x" */
    struct hull_ocispec_process *process; /* NULL: absent */
    char *root_path;                      /* never NULL */
    bool root_readonly;
    char *hostname, *domainname;
    struct hull_ocispec_mount *mounts; /* NULL: absent */
    size_t n_mounts;
    bool has_hooks;
    struct hull_ocispec_hook *hooks[HULL_OCISPEC_N_HOOK_KINDS]; /* NULL: that kind absent */
    size_t n_hooks[HULL_OCISPEC_N_HOOK_KINDS];
    struct hull_ocispec_kv *annotations; /* NULL: absent */
    size_t n_annotations;
    struct hull_ocispec_linux *linux_; /* NULL: absent */
};

/* ---- parsing ----------------------------------------------------------------------------- */
/* config.json text to a model (ociVersion 1.x and root.path required). */
int hull_ocispec_parse(const char *text, struct hull_ocispec **out, hull_error_t *err);
/* A process object (config.json's or exec --process); *p is cleared first. */
int hull_ocispec_process_from_tree(yajl_val node, struct hull_ocispec_process *p,
                                   hull_error_t *err);
/* A linux.seccomp object. */
int hull_ocispec_seccomp_from_tree(yajl_val node, struct hull_ocispec_seccomp **out,
                                   hull_error_t *err);
/* A linux.resources object (config.json's, or hull-oci update's input) into *r, which is
 * initialized first without being freed (clear a used one before) and left empty on error. */
int hull_ocispec_resources_from_tree(yajl_val node, struct hull_cgroup_resources *r,
                                     hull_error_t *err);
/* The same from JSON text. */
int hull_ocispec_resources_parse(const char *text, struct hull_cgroup_resources *r,
                                 hull_error_t *err);

/* ---- serializing ------------------------------------------------------------------------- */
/* The config.json text (compact unless pretty); members in a fixed order. */
char *hull_ocispec_to_json(const struct hull_ocispec *s, bool pretty);
/* process.json for `exec --process`. */
char *hull_ocispec_process_to_json(const struct hull_ocispec_process *p);
/* A linux.resources object (hull-oci update's input); the inverse of
 * hull_ocispec_resources_parse. */
char *hull_ocispec_resources_to_json(const struct hull_cgroup_resources *r);
/* Writes any parsed JSON value as is (deeper than 64 levels: null). */
void hull_jw_value(struct hull_json_writer *w, yajl_val v);

/* ---- building and freeing ------------------------------------------------------------------ */
struct hull_ocispec *hull_ocispec_new(void);
struct hull_ocispec_linux *hull_ocispec_linux(struct hull_ocispec *s); /* created on demand */
void hull_ocispec_free(struct hull_ocispec *s);
void hull_ocispec_process_clear(struct hull_ocispec_process *p);
void hull_ocispec_seccomp_free(struct hull_ocispec_seccomp *s);
HULL_DEFINE_CLEANUP(struct hull_ocispec, hull_ocispec_free)
#define _cleanup_hull_ocispec_ __attribute__((cleanup(hull_ocispec_freep)))

#endif
