/* The systemd cgroup driver: slice names and their cgroup paths, the runc-style cgroupsPath
 * "slice:prefix:name", and transient units (scopes, slices) created and stopped over
 * systemd's D-Bus API with sd-bus.  Used by hulld (pod slices, infra scopes, recovery) and
 * hull-oci (container scopes); libsystemd is loaded on first use (common/sdbus_dl.h). */
#ifndef HULL_COMMON_CGROUP_SYSTEMD_H
#define HULL_COMMON_CGROUP_SYSTEMD_H

#include "common/cgroup.h"
#include "common/common.h"

/* Whether systemd is the init system (/run/systemd/system is a directory, as sd_booted). */
bool hull_systemd_booted(void);
/* systemd is PID 1 and its manager answers over D-Bus; otherwise err says why not. */
int hull_systemd_check(hull_error_t *err);

/* Whether s is a valid slice unit name: "-.slice", or dash-separated non-empty parts ending
 * in ".slice" ("kubepods-burstable-pod1234.slice"), no "/" and only unit-name characters. */
bool hull_systemd_slice_valid(const char *s);
/* systemd's slice expansion: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", "-.slice" ->
 * "/".  EINVAL for an invalid slice name. */
int hull_systemd_expand_slice(const char *slice, char **out, hull_error_t *err);
/* Whether a cgroupsPath / cgroup parent is in systemd form: "slice:prefix:name" or a bare
 * slice name, rather than a cgroupfs path ("/a/b"). */
bool hull_systemd_path_form(const char *path);
/* A systemd-driver cgroupsPath as runc reads it: "slice:prefix:name" gives the unit
 * "prefix-name.scope" (or name itself when it ends in ".slice") in slice ("" means
 * system.slice); an empty path gives "system.slice" and default_prefix-id.scope.  Every part
 * is checked (no "/", ".."). */
int hull_systemd_parse_path(const char *cgroups_path, const char *default_prefix, const char *id,
                            char **slice, char **unit, hull_error_t *err);
/* The cgroup, relative to a hierarchy's root, that a systemd cgroupsPath or a slice names:
 * "kubepods-pod1.slice:hull:abc" -> "/kubepods.slice/kubepods-pod1.slice/hull-abc.scope". */
int hull_systemd_cgroup_of(const char *path, char **out, hull_error_t *err);

/* Unit properties for StartTransientUnit / SetUnitProperties. */
enum hull_systemd_prop_type {
    HULL_SD_U64,   /* "t" */
    HULL_SD_BOOL,  /* "b" */
    HULL_SD_STR,   /* "s" */
    HULL_SD_BYTES, /* "ay" (a CPU or NUMA-node bitmask) */
};
struct hull_systemd_prop {
    char *name;
    int type;
    uint64_t u64;
    char *str;
    uint8_t *bytes;
    size_t n_bytes;
};
struct hull_systemd_props {
    struct hull_systemd_prop *v;
    size_t n;
};
void hull_systemd_props_u64(struct hull_systemd_props *p, const char *name, uint64_t v);
void hull_systemd_props_bool(struct hull_systemd_props *p, const char *name, bool v);
void hull_systemd_props_str(struct hull_systemd_props *p, const char *name, const char *v);
/* A CPU / memory-node list ("0-3,7") as the bitmask systemd's AllowedCPUs wants. */
int hull_systemd_props_cpuset(struct hull_systemd_props *p, const char *name, const char *list,
                              hull_error_t *err);
const struct hull_systemd_prop *hull_systemd_props_find(const struct hull_systemd_props *p,
                                                        const char *name);
void hull_systemd_props_clear(struct hull_systemd_props *p);
#define _cleanup_systemd_props_ __attribute__((cleanup(hull_systemd_props_clear))) /* by value */

/* StartTransientUnit(unit, "fail") with Description, Slice (when slice is not NULL), the
 * PIDs, props, and for a scope Delegate=yes, CollectMode=inactive-or-failed and
 * OOMPolicy=continue (an OOM kill does not stop the scope); returns once
 * systemd's job has finished (30 s at most).  EEXIST when the unit is loaded already. */
int hull_systemd_start_unit(const char *unit, const char *slice, const char *description,
                            const pid_t *pids, size_t n_pids,
                            const struct hull_systemd_props *props, hull_error_t *err);
/* StopUnit(unit, "replace"), waiting for the job; a unit systemd does not know is no error. */
int hull_systemd_stop_unit(const char *unit, hull_error_t *err);
/* SetUnitProperties(unit, runtime=true, props). */
int hull_systemd_set_unit_properties(const char *unit, const struct hull_systemd_props *props,
                                     hull_error_t *err);
/* Whether systemd has the unit loaded and not inactive (ActiveState), 0 / 1, or -errno. */
int hull_systemd_unit_active(const char *unit, hull_error_t *err);

/* ---- the container driver (hull-oci --systemd-cgroup, as runc and crun) ----------------- */
/* cgroupsPath "slice:prefix:name" -> the scope unit, its slice and the directories (the
 * unit's cgroup below the root of each hierarchy). */
int hull_cgroup_systemd_resolve(const struct hull_cgroup_layout *l, const char *cgroups_path,
                                const char *id, struct hull_cgroup *out, hull_error_t *err);
/* res as unit properties for a host of the given mode (enum hull_cgroup_mode; see
 * cgroup_systemd.c for the mapping and what has no property). */
int hull_cgroup_systemd_props(const struct hull_cgroup_resources *res, int mode,
                              struct hull_systemd_props *props, hull_error_t *err);
/* StartTransientUnit for pid with Delegate=yes and res as unit properties, waiting for
 * systemd's job. */
int hull_cgroup_systemd_start(struct hull_cgroup *cg, pid_t pid,
                              const struct hull_cgroup_resources *res, const char *description,
                              hull_error_t *err);
/* update: res as unit properties too (SetUnitProperties); a no-op without a unit. */
int hull_cgroup_systemd_update(struct hull_cgroup *cg, const struct hull_cgroup_resources *res,
                               hull_error_t *err);
/* StopUnit of the container's scope (a no-op without one); failures are logged. */
void hull_cgroup_systemd_stop(struct hull_cgroup *cg);

#endif
