/* The runtime state directory: <root>/<id>/{state.json,config.json,exec.fifo}. */

#include "oci/oci.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define STATE_MAX (1u << 20)

const char *oci_status_name(int status)
{
    switch (status) {
    case OCI_CREATING:
        return "creating";
    case OCI_CREATED:
        return "created";
    case OCI_RUNNING:
        return "running";
    case OCI_PAUSED:
        return "paused";
    default:
        return "stopped";
    }
}

bool oci_id_valid(const char *id)
{
    if (id == NULL || !hull_is_safe_component(id) || id[0] == '.' || strlen(id) > 1024)
        return false;
    for (const char *c = id; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.' || *c == '+';
        if (!ok)
            return false;
    }
    return true;
}

void oci_state_clear(struct oci_state *st)
{
    free(st->id);
    free(st->dir);
    free(st->bundle);
    free(st->rootfs);
    free(st->created);
    free(st->config_json);
    hull_cgroup_clear(&st->cgroup);
    memset(st, 0, sizeof(*st));
}

int oci_state_save(const struct oci_state *st, hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "ociVersion", OCI_VERSION);
    hull_jw_kv_string(&w, "id", st->id);
    hull_jw_kv_int(&w, "pid", st->pid);
    hull_jw_kv_int(&w, "starttime", (long long)st->starttime);
    if (st->exec_fd > 0)
        hull_jw_kv_int(&w, "execFd", st->exec_fd);
    hull_jw_kv_string(&w, "bundle", st->bundle);
    hull_jw_kv_string(&w, "rootfs", st->rootfs);
    hull_jw_kv_string(&w, "created", st->created);
    hull_jw_kv_int(&w, "cgroupMode", st->cgroup.mode);
    if (st->cgroup.systemd_unit) {
        hull_jw_kv_string(&w, "systemdUnit", st->cgroup.systemd_unit);
        hull_jw_kv_string(&w, "systemdSlice", st->cgroup.systemd_slice);
    }
    hull_jw_key(&w, "cgroups");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < st->cgroup.n; i++) {
        const struct hull_cgroup_dir *d = &st->cgroup.dirs[i];
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "controller", d->controller);
        hull_jw_kv_string(&w, "controllers", d->controllers);
        hull_jw_kv_string(&w, "path", d->path);
        hull_jw_kv_string(&w, "mount", d->mount);
        hull_jw_end_object(&w);
    }
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    size_t len = 0;
    _cleanup_free_ char *text = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    _cleanup_free_ char *path = hull_path_join(st->dir, "state.json");
    return hull_write_file_atomic_flags(path, text, len, 0600,
                                        HULL_ATOMIC_NOSYNC | HULL_ATOMIC_PROCESS_TMP, err);
}

int oci_state_load(const char *root, const char *id, struct oci_state *st, hull_error_t *err)
{
    memset(st, 0, sizeof(*st));
    if (!oci_id_valid(id))
        return hull_error_setx(err, EINVAL, "invalid container id \"%s\"", id ? id : "");
    st->id = xstrdup(id);
    st->dir = hull_path_join(root, id);
    _cleanup_free_ char *path = hull_path_join(st->dir, "state.json");
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(path, STATE_MAX, &text, NULL, &e) < 0) {
        int status = hull_error_status(&e);
        oci_state_clear(st);
        if (status == ENOENT || status == ENOTDIR)
            return hull_error_setx(err, ENOENT, "container \"%s\" does not exist", id);
        return hull_error_setx(err, status, "container \"%s\": %s", id, hull_error_msg(&e));
    }
    _cleanup_yajl_ yajl_val tree = NULL;
    if (hull_json_parse(text, "state.json", &tree, err) < 0) {
        oci_state_clear(st);
        return hull_error_wrap(err, "container \"%s\"", id);
    }
    st->pid = (pid_t)hull_json_get_int(tree, "pid", 0);
    st->starttime = (uint64_t)hull_json_get_int(tree, "starttime", 0);
    st->exec_fd = (int)hull_json_get_int(tree, "execFd", 0);
    st->bundle = xstrdup(hull_json_get_string(tree, "bundle", ""));
    st->rootfs = xstrdup(hull_json_get_string(tree, "rootfs", ""));
    st->created = xstrdup(hull_json_get_string(tree, "created", ""));
    st->cgroup.mode = (int)hull_json_get_int(tree, "cgroupMode", 0);
    const char *unit = hull_json_get_string(tree, "systemdUnit", NULL);
    if (unit && *unit) {
        st->cgroup.systemd_unit = xstrdup(unit);
        st->cgroup.systemd_slice = xstrdup(hull_json_get_string(tree, "systemdSlice", ""));
    }
    yajl_val cgs = hull_json_get(tree, "cgroups");
    if (cgs && YAJL_IS_ARRAY(cgs)) {
        st->cgroup.dirs = xmalloc0((cgs->u.array.len + 1) * sizeof(*st->cgroup.dirs));
        for (size_t i = 0; i < cgs->u.array.len; i++) {
            yajl_val c = cgs->u.array.values[i];
            struct hull_cgroup_dir *d = &st->cgroup.dirs[st->cgroup.n++];
            d->controller = xstrdup(hull_json_get_string(c, "controller", ""));
            d->controllers = xstrdup(hull_json_get_string(c, "controllers", ""));
            d->path = xstrdup(hull_json_get_string(c, "path", ""));
            d->mount = xstrdup(hull_json_get_string(c, "mount", ""));
        }
    }
    _cleanup_free_ char *cpath = hull_path_join(st->dir, "config.json");
    _cleanup_error_ hull_error_t ce = NULL;
    if (hull_read_file(cpath, 4u << 20, &st->config_json, NULL, &ce) < 0)
        st->config_json = NULL;
    return 0;
}

int oci_state_status(struct oci_state *st)
{
    if (st->pid <= 0)
        return OCI_STOPPED;
    uint64_t start = 0;
    bool zombie = false;
    if (oci_proc_starttime(st->pid, &start, &zombie) < 0 || zombie || start != st->starttime)
        return OCI_STOPPED;
    _cleanup_free_ char *fifo = hull_path_join(st->dir, "exec.fifo");
    if (access(fifo, F_OK) == 0)
        return OCI_CREATED;
    bool frozen = false;
    if (hull_cgroup_is_frozen(&st->cgroup, &frozen) == 0 && frozen)
        return OCI_PAUSED;
    return OCI_RUNNING;
}

char *oci_state_to_json(struct oci_state *st, int status, bool pretty)
{
    struct hull_json_writer w;
    hull_jw_init(&w, pretty);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "ociVersion", OCI_VERSION);
    hull_jw_kv_string(&w, "id", st->id);
    hull_jw_kv_string(&w, "status", oci_status_name(status));
    hull_jw_kv_int(&w, "pid", status == OCI_STOPPED ? 0 : st->pid);
    hull_jw_kv_string(&w, "bundle", st->bundle);
    hull_jw_kv_string(&w, "rootfs", st->rootfs);
    hull_jw_kv_string(&w, "created", st->created);
    hull_jw_kv_string(&w, "owner", "");
    _cleanup_hull_ocispec_ struct hull_ocispec *cfg = NULL;
    _cleanup_error_ hull_error_t e = NULL;
    if (st->config_json)
        hull_ocispec_parse(st->config_json, &cfg, &e);
    hull_jw_key(&w, "annotations");
    if (cfg && cfg->annotations) {
        hull_jw_begin_object(&w);
        for (size_t i = 0; i < cfg->n_annotations; i++)
            hull_jw_kv_string(&w, cfg->annotations[i].key, cfg->annotations[i].value);
        hull_jw_end_object(&w);
    } else {
        hull_jw_null(&w);
    }
    uint64_t ooms = 0;
    if (hull_cgroup_oom_count(&st->cgroup, &ooms) == 0) {
        hull_jw_kv_bool(&w, "oomKilled", ooms > 0);
        hull_jw_kv_int(&w, "oomKillCount", (long long)ooms);
    }
    hull_jw_key(&w, "cgroupPaths");
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < st->cgroup.n; i++)
        hull_jw_kv_string(&w,
                          st->cgroup.dirs[i].controllers && *st->cgroup.dirs[i].controllers
                              ? st->cgroup.dirs[i].controllers
                              : st->cgroup.dirs[i].controller,
                          st->cgroup.dirs[i].path);
    hull_jw_end_object(&w);
    hull_jw_end_object(&w);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}
