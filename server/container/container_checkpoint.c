/* CheckpointContainer: the runtime's `checkpoint` (CRIU) with the container left running, and
 * the archive in the layout CRI-O and containerd write (checkpointctl reads it):
 *   checkpoint/       the CRIU images (plus runc's descriptors.json)
 *   config.dump       {id, name, rootfsImage, rootfsImageRef, rootfsImageName, runtime,
 *                      createdTime, checkpointedTime}
 *   spec.dump         the container's OCI config.json
 *   rootfs-diff.tar   the container's writable layer, whiteouts left out
 *   deleted.files     JSON list of the paths the container deleted (the whiteouts)
 *   stats-dump        CRIU's dump statistics
 *   dump.log          CRIU's log */

#include "server/container/container_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cgroup_systemd.h"

/* The rootfs diff: the upper dir's entries without whiteouts (NUL-separated, for tar -T) and
 * the whiteouts as deleted paths. */
struct diff_walk {
    const char *upper;
    size_t upper_len;
    FILE *list;
    struct hull_json_writer *deleted;
};

static int ckpt_copy(const char *from, const char *to, hull_error_t *err)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    int r = hull_read_file(from, 64 << 20, &data, &len, err);
    if (r < 0)
        return r;
    return hull_write_file_atomic(to, data, len, 0600, err);
}

static int walk_upper(const char *upper, const char *list_path, char **deleted_json,
                      hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_array(&w);
    FILE *list = fopen(list_path, "we");
    if (list == NULL) {
        hull_jw_free(&w);
        return hull_error_set(err, errno, "create `%s`", list_path);
    }
    /* an explicit stack instead of nftw: no globals */
    size_t cap = 64, n = 1;
    char **stack = xmalloc0(cap * sizeof(char *));
    stack[0] = xstrdup("");
    int r = 0;
    while (n > 0) {
        _cleanup_free_ char *rel = stack[--n];
        _cleanup_free_ char *abs = xasprintf("%s%s%s", upper, rel[0] ? "/" : "", rel);
        DIR *d = opendir(abs);
        if (d == NULL) {
            r = hull_error_set(err, errno, "open `%s`", abs);
            break;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            _cleanup_free_ char *child =
                rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
            struct stat sb;
            if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            if (S_ISCHR(sb.st_mode) && major(sb.st_rdev) == 0 && minor(sb.st_rdev) == 0) {
                _cleanup_free_ char *p = xasprintf("/%s", child);
                hull_jw_string(&w, p);
                continue;
            }
            fprintf(list, "%s%c", child, '\0');
            if (S_ISDIR(sb.st_mode)) {
                if (n == cap) {
                    cap *= 2;
                    stack = xrealloc(stack, cap * sizeof(char *));
                }
                stack[n++] = xstrdup(child);
            }
        }
        closedir(d);
    }
    while (n > 0)
        free(stack[--n]);
    free(stack);
    if (fclose(list) != 0 && r == 0)
        r = hull_error_set(err, errno, "write `%s`", list_path);
    hull_jw_end_array(&w);
    *deleted_json = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return r;
}

static char *config_dump_json(struct container *c, const char *runtime)
{
    struct hull_json_writer w;
    hull_jw_init(&w, true);
    char created[64], now[64];
    hull_format_rfc3339nano(c->created_ns, created, sizeof(created));
    hull_format_rfc3339nano(hull_now_ns(), now, sizeof(now));
    const char *name = c->config && c->config->metadata && c->config->metadata->name
                           ? c->config->metadata->name
                           : "";
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "id", c->id);
    hull_jw_kv_string(&w, "name", name);
    hull_jw_kv_string(&w, "rootfsImage", c->image_ref ? c->image_ref : "");
    hull_jw_kv_string(&w, "rootfsImageRef", c->image_id ? c->image_id : "");
    hull_jw_kv_string(&w, "rootfsImageName", c->image_ref ? c->image_ref : "");
    hull_jw_kv_string(&w, "runtime", runtime);
    hull_jw_kv_string(&w, "createdTime", created);
    hull_jw_kv_string(&w, "checkpointedTime", now);
    hull_jw_kv_string(&w, "podId", c->pod_id ? c->pod_id : "");
    hull_jw_end_object(&w);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}

/* "Error (criu/...)" lines of CRIU's log: the reason a dump failed. */
static char *criu_errors(const char *log)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(log, 8 << 20, &text, &len, &e) < 0)
        return xstrdup("");
    _cleanup_free_ char *out = xstrdup("");
    int n = 0;
    for (char *s = text, *nl; s && *s && n < 4; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(s, "Error (")) {
            char *t = xasprintf("%s; %s", out, s);
            free(out);
            out = t;
            n++;
        }
    }
    return xstrdup(out);
}

static void rm_tmp(char **dir)
{
    if (*dir == NULL)
        return;
    _cleanup_error_ hull_error_t e = NULL;
    hull_rm_rf(*dir, &e);
    free(*dir);
}

int container_checkpoint(struct hull_server *srv, const char *id, const char *location,
                         int64_t timeout_s, hull_error_t *err)
{
    if (location == NULL || location[0] == '\0')
        return hull_error_setx(err, EINVAL, "checkpoint location is empty");
    if (location[0] != '/')
        return hull_error_setx(err, EINVAL, "checkpoint location \"%s\" is not an absolute path",
                               location);
    _cleanup_container_ struct container *c = ctr_find_running(srv, id, err);
    if (c == NULL)
        return -hull_error_status(err);
    int timeout_ms =
        timeout_s > 0 && timeout_s < 86400 ? (int)(timeout_s * 1000) : RUNTIME_TIMEOUT_MS;
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    __attribute__((cleanup(rm_tmp))) char *tmp = xasprintf("%s/checkpoint.XXXXXX", rdir);
    if (mkdtemp(tmp) == NULL) {
        int e = errno;
        free(tmp);
        tmp = NULL;
        return hull_error_set(err, e, "checkpoint of \"%s\": temporary directory", c->id);
    }
    _cleanup_free_ char *images = hull_path_join(tmp, "checkpoint");
    _cleanup_free_ char *dump_log = hull_path_join(tmp, "dump.log");
    pthread_mutex_lock(&c->op_lock);
    const char *args[20];
    size_t n = 0;
    args[n++] = c->runtime_path;
    args[n++] = "--root";
    args[n++] = c->runtime_root;
    if (hull_systemd_path_form(c->cgroups_path))
        args[n++] = "--systemd-cgroup";
    const char *const rest[] = {
        "checkpoint",   "--image-path",          images, "--work-path", tmp, "--leave-running",
        "--file-locks", "--manage-cgroups-mode", "soft", c->id,         NULL};
    for (size_t i = 0; rest[i]; i++)
        args[n++] = rest[i];
    args[n] = NULL;
    int r = proc_run_ok((char *const *)args, timeout_ms, err);
    pthread_mutex_unlock(&c->op_lock);
    if (r < 0) {
        _cleanup_free_ char *why = criu_errors(dump_log);
        int code = hull_error_status(err) == ETIMEDOUT ? ETIMEDOUT : EBUSY;
        _cleanup_free_ char *msg = xstrdup(hull_error_msg(err));
        hull_error_free(err);
        return hull_error_setx(err, code, "checkpoint container \"%s\": CRIU failed: %s%s", c->id,
                               msg, why);
    }
    /* the metadata files next to the images */
    _cleanup_free_ char *cfg = config_dump_json(c, c->runtime_handler ? c->runtime_handler : "");
    _cleanup_free_ char *cfg_path = hull_path_join(tmp, "config.dump");
    _cleanup_free_ char *spec_src = hull_path_join(sdir, "config.json");
    _cleanup_free_ char *spec_dst = hull_path_join(tmp, "spec.dump");
    _cleanup_free_ char *stats_src = hull_path_join(images, "stats-dump");
    _cleanup_free_ char *stats_dst = hull_path_join(tmp, "stats-dump");
    if ((r = hull_write_file_atomic(cfg_path, cfg, strlen(cfg), 0600, err)) < 0 ||
        (r = ckpt_copy(spec_src, spec_dst, err)) < 0 ||
        /* CRIU writes stats-dump into its work dir (here the top level) or the images dir */
        (access(stats_dst, F_OK) < 0 && (r = ckpt_copy(stats_src, stats_dst, err)) < 0))
        return hull_error_wrap(err, "checkpoint container \"%s\"", c->id);
    /* the writable layer */
    _cleanup_free_ char *upper = hull_path_join(rdir, "upper");
    _cleanup_free_ char *list = hull_path_join(tmp, "rootfs-diff.list");
    _cleanup_free_ char *deleted = NULL;
    _cleanup_free_ char *deleted_path = hull_path_join(tmp, "deleted.files");
    _cleanup_free_ char *diff = hull_path_join(tmp, "rootfs-diff.tar");
    if ((r = walk_upper(upper, list, &deleted, err)) < 0 ||
        (r = hull_write_file_atomic(deleted_path, deleted, strlen(deleted), 0600, err)) < 0)
        return hull_error_wrap(err, "checkpoint container \"%s\": rootfs diff", c->id);
    const char *tar_diff[] = {"/bin/tar", "--numeric-owner",
                              "--xattrs", "--no-recursion",
                              "--null",   "-C",
                              upper,      "-cf",
                              diff,       "-T",
                              list,       NULL};
    if ((r = proc_run_ok((char *const *)tar_diff, timeout_ms, err)) < 0)
        return hull_error_wrap(err, "checkpoint container \"%s\": rootfs-diff.tar", c->id);
    unlink(list);
    /* the archive, written next to its final name and renamed into place */
    _cleanup_free_ char *part = xasprintf("%s.part", location);
    const char *tar_all[] = {"/bin/tar",
                             "--numeric-owner",
                             "-C",
                             tmp,
                             "-cf",
                             part,
                             "checkpoint",
                             "config.dump",
                             "spec.dump",
                             "rootfs-diff.tar",
                             "deleted.files",
                             "stats-dump",
                             "dump.log",
                             NULL};
    if ((r = proc_run_ok((char *const *)tar_all, timeout_ms, err)) < 0) {
        unlink(part);
        return hull_error_wrap(err, "checkpoint container \"%s\": write `%s`", c->id, location);
    }
    if (rename(part, location) < 0) {
        r = hull_error_set(err, errno, "checkpoint container \"%s\": rename to `%s`", c->id,
                           location);
        unlink(part);
        return r;
    }
    log_info("container %s checkpointed to %s", c->id, location);
    return 0;
}
