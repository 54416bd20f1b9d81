/* Restore through the CRI (see container_restore.h for the flow).  The archive is untrusted
 * input: it is unpacked by the image layer unpacker (nothing lands outside the staging
 * directory, ".." refused, file data capped by the archive's own size), its files are opened
 * confined to the staging directory (a symlink named config.dump cannot read a host file), the
 * CRIU images must be regular files, rootfs-diff.tar is unpacked into the container's rootfs
 * by the same unpacker, and deleted.files removes paths resolved inside the rootfs only.
 *
 * The merge (CRI-O's rules): metadata, labels, annotations, linux resources and security
 * context, log path and stdin flags come from the request; the image is the archive's
 * rootfsImageName; command, working directory and environment are the checkpointed process's
 * (spec.dump); bind mounts of the checkpointed container from host paths must be given again
 * by the request at the same container path (their sources are the request's, never the
 * archive's); the pod's own files (/etc/hosts, resolv.conf, hostname, /dev/shm, ...) and
 * Hull's volume copies are the new pod's and the new container's. */
#include "server/container/container_restore.h"
#include "server/pod/sandbox_int.h" /* sandbox_proc_start_time */
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESTORE_JSON_MAX  (4u << 20)  /* config.dump, spec.dump */
#define RESTORE_LIST_MAX  (16u << 20) /* deleted.files */
#define RESTORE_SLACK     (64u << 20) /* file data beyond the archive's size (sparse entries) */
#define RESTORE_RM_DEPTH  256
#define RESTORE_IMAGE_DIR "checkpoint"

struct ctr_restore {
    char *archive;
    char *staging; /* the unpacked archive */
    int staging_fd;
    Runtime__V1__ContainerConfig *config;
};

void ctr_restore_free(struct ctr_restore *rs)
{
    if (rs == NULL)
        return;
    if (rs->staging_fd >= 0)
        close(rs->staging_fd);
    if (rs->staging) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_rm_rf(rs->staging, &e) < 0)
            log_warn("restore: %s", hull_error_msg(&e));
    }
    if (rs->config)
        runtime__v1__container_config__free_unpacked(rs->config, NULL);
    free(rs->staging);
    free(rs->archive);
    free(rs);
}

const Runtime__V1__ContainerConfig *ctr_restore_config(const struct ctr_restore *rs)
{
    return rs->config;
}

/* Reads name (a regular file, resolved inside the staging directory) whole. */
static int staged_read(struct ctr_restore *rs, const char *name, size_t max, char **out,
                       hull_error_t *err)
{
    _cleanup_close_ int fd = hull_open_in_root(rs->staging_fd, name, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0)
        return hull_error_setx(err, EINVAL, "checkpoint archive has no %s", name);
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return hull_error_setx(err, EINVAL, "checkpoint archive: %s is not a file", name);
    if ((uint64_t)sb.st_size > max)
        return hull_error_setx(err, EINVAL, "checkpoint archive: %s is over %zu bytes", name, max);
    _cleanup_free_ char *buf = xmalloc0((size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return hull_error_set(err, n < 0 ? errno : EIO, "read %s", name);
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = hull_steal(buf);
    return 0;
}

static int staged_json(struct ctr_restore *rs, const char *name, yajl_val *out, hull_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    int r = staged_read(rs, name, RESTORE_JSON_MAX, &text, err);
    if (r < 0)
        return r;
    if (hull_json_parse(text, name, out, err) < 0 || !YAJL_IS_OBJECT(*out)) {
        hull_error_free(err);
        yajl_tree_free(*out);
        *out = NULL;
        return hull_error_setx(err, EINVAL, "checkpoint archive: %s is not a JSON object", name);
    }
    return 0;
}

/* The CRIU images: a directory of regular files only (a symlink there would let CRIU read a
 * host file into the restored process). */
static int check_images(struct ctr_restore *rs, hull_error_t *err)
{
    int fd = hull_open_in_root(rs->staging_fd, RESTORE_IMAGE_DIR,
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd < 0)
        return hull_error_setx(err, EINVAL, "checkpoint archive has no %s/ directory",
                               RESTORE_IMAGE_DIR);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return hull_error_set(err, errno, "checkpoint archive: open %s/", RESTORE_IMAGE_DIR);
    }
    int r = 0;
    size_t n = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
            r = hull_error_setx(err, EINVAL, "checkpoint archive: %s/%s is not a regular file",
                                RESTORE_IMAGE_DIR, HULL_CLIP(de->d_name));
        n++;
    }
    closedir(d);
    if (r == 0 && n == 0)
        r = hull_error_setx(err, EINVAL, "checkpoint archive: %s/ is empty", RESTORE_IMAGE_DIR);
    return r;
}

/* ---- the merged config -------------------------------------------------------------------- */
static bool is_bind(yajl_val m)
{
    if (strcmp(hull_json_get_string(m, "type", ""), "bind") == 0)
        return true;
    yajl_val opts = hull_json_get(m, "options");
    for (size_t i = 0; opts && YAJL_IS_ARRAY(opts) && i < opts->u.array.len; i++) {
        const char *o = YAJL_GET_STRING(opts->u.array.values[i]);
        if (o && (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0))
            return true;
    }
    return false;
}

static bool under(const char *path, const char *dir)
{
    size_t n = dir ? strlen(dir) : 0;
    return n > 0 && strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* What the runtime sets up from the pod or the kernel at the new place (CRI-O's list, plus
 * /etc/hosts that Hull may bind from the pod). */
static bool pod_made(const char *dest)
{
    static const char *const list[] = {
        "/proc",          "/dev",       "/dev/pts",         "/dev/mqueue",        "/sys",
        "/sys/fs/cgroup", "/dev/shm",   "/etc/resolv.conf", "/etc/hostname",      "/etc/hosts",
        "/etc/passwd",    "/etc/group", "/run/secrets",     "/run/.containerenv", NULL};
    for (size_t i = 0; list[i]; i++)
        if (strcmp(dest, list[i]) == 0)
            return true;
    return false;
}

static bool same_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

/* Keeps the request's mounts that the checkpointed container had; every host bind mount of the
 * checkpoint must be among them. */
static int merge_mounts(struct hull_server *srv, Runtime__V1__ContainerConfig *cfg, yajl_val spec,
                        const char *archive, hull_error_t *err)
{
    yajl_val mounts = hull_json_get(spec, "mounts");
    size_t nm = mounts && YAJL_IS_ARRAY(mounts) ? mounts->u.array.len : 0;
    bool *keep = xmalloc0((cfg->n_mounts + 1) * sizeof(bool));
    _cleanup_free_ char *missing = xstrdup("");
    for (size_t i = 0; i < nm; i++) {
        yajl_val m = mounts->u.array.values[i];
        const char *dest = hull_json_get_string(m, "destination", "");
        const char *src = hull_json_get_string(m, "source", "");
        if (!YAJL_IS_OBJECT(m) || dest[0] != '/')
            continue;
        bool found = false;
        for (size_t j = 0; j < cfg->n_mounts; j++) {
            if (cfg->mounts[j] && cfg->mounts[j]->container_path &&
                same_path(cfg->mounts[j]->container_path, dest)) {
                keep[j] = found = true;
            }
        }
        if (found || !is_bind(m) || pod_made(dest) || under(src, srv->config->root) ||
            under(src, srv->config->state_dir))
            continue;
        char *t = xasprintf("%s%s%s", missing, missing[0] ? "," : "", dest);
        free(missing);
        missing = t;
    }
    size_t n = 0;
    for (size_t j = 0; j < cfg->n_mounts; j++) {
        if (keep[j])
            cfg->mounts[n++] = cfg->mounts[j];
        else if (cfg->mounts[j])
            protobuf_c_message_free_unpacked(&cfg->mounts[j]->base, NULL);
    }
    cfg->n_mounts = n;
    free(keep);
    if (missing[0])
        return hull_error_setx(err, EINVAL,
                               "restoring \"%s\" expects these bind mounts in the container "
                               "config: %s",
                               HULL_CLIP(archive), HULL_CLIP(missing));
    return 0;
}

static char **json_strv(yajl_val arr, size_t *n, bool *ok)
{
    *n = 0;
    *ok = arr == NULL || YAJL_IS_ARRAY(arr);
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return NULL;
    char **v = xmalloc0((arr->u.array.len + 1) * sizeof(char *));
    for (size_t i = 0; i < arr->u.array.len; i++) {
        const char *s = YAJL_GET_STRING(arr->u.array.values[i]);
        if (s == NULL) {
            *ok = false;
            continue;
        }
        v[(*n)++] = xstrdup(s);
    }
    return v;
}

static void set_strv(char ***field, size_t *n_field, char **v, size_t n)
{
    hull_strv_free_n(*field, *n_field);
    free(*field);
    *field = v;
    *n_field = n;
}

/* A string field of an unpacked message: the empty default is protobuf-c's static string. */
static void set_str(char **field, const char *v)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = xstrdup(v);
}

static int merge_config(struct hull_server *srv, struct ctr_restore *rs,
                        const Runtime__V1__ContainerConfig *req, yajl_val cfgdump, yajl_val spec,
                        hull_error_t *err)
{
    const char *image = hull_json_get_string(cfgdump, "rootfsImageName", "");
    if (image[0] == '\0')
        image = hull_json_get_string(cfgdump, "rootfsImage", "");
    if (image[0] == '\0')
        return hull_error_setx(err, EINVAL, "checkpoint archive: config.dump names no image");
    if (image[0] == '/')
        return hull_error_setx(err, EINVAL,
                               "checkpoint archive: config.dump's image \"%s\" is a path",
                               HULL_CLIP(image));
    yajl_val proc = hull_json_get(spec, "process");
    size_t n_args = 0, n_env = 0;
    bool ok_args = false, ok_env = false;
    char **args = json_strv(proc ? hull_json_get(proc, "args") : NULL, &n_args, &ok_args);
    char **env = json_strv(proc ? hull_json_get(proc, "env") : NULL, &n_env, &ok_env);
    if (!YAJL_IS_OBJECT(proc) || !ok_args || n_args == 0 || !ok_env) {
        hull_strv_free(args);
        hull_strv_free(env);
        return hull_error_setx(err, EINVAL, "checkpoint archive: spec.dump has no valid process");
    }
    if (hull_json_get_bool(proc, "terminal", false) || req->tty) {
        hull_strv_free(args);
        hull_strv_free(env);
        return hull_error_setx(err, EOPNOTSUPP,
                               "restoring a container with a terminal (tty) is not supported");
    }
    /* a deep copy of the request to edit */
    size_t len = protobuf_c_message_get_packed_size(&req->base);
    _cleanup_free_ uint8_t *pb = xmalloc0(len + 1);
    protobuf_c_message_pack(&req->base, pb);
    Runtime__V1__ContainerConfig *cfg = runtime__v1__container_config__unpack(NULL, len, pb);
    if (cfg == NULL || cfg->image == NULL) {
        hull_strv_free(args);
        hull_strv_free(env);
        if (cfg)
            runtime__v1__container_config__free_unpacked(cfg, NULL);
        return hull_error_setx(err, EINVAL, "container config cannot be copied");
    }
    rs->config = cfg;
    set_str(&cfg->image->image, image);
    set_strv(&cfg->command, &cfg->n_command, args, n_args);
    set_strv(&cfg->args, &cfg->n_args, NULL, 0);
    set_str(&cfg->working_dir, hull_json_get_string(proc, "cwd", ""));
    for (size_t i = 0; i < cfg->n_envs; i++)
        protobuf_c_message_free_unpacked(&cfg->envs[i]->base, NULL);
    free(cfg->envs);
    cfg->envs = xmalloc0((n_env + 1) * sizeof(*cfg->envs));
    cfg->n_envs = 0;
    for (size_t i = 0; i < n_env; i++) {
        char *eq = strchr(env[i], '=');
        if (eq == NULL || eq == env[i])
            continue;
        Runtime__V1__KeyValue *kv = xmalloc0(sizeof(*kv));
        runtime__v1__key_value__init(kv);
        kv->key = xstrndup(env[i], (size_t)(eq - env[i]));
        kv->value = xstrdup(eq + 1);
        cfg->envs[cfg->n_envs++] = kv;
    }
    hull_strv_free(env);
    return merge_mounts(srv, cfg, spec, rs->archive, err);
}

/* ---- open --------------------------------------------------------------------------------- */
int ctr_restore_open(struct hull_server *srv, const Runtime__V1__ContainerConfig *config,
                     struct ctr_restore **out, hull_error_t *err)
{
    *out = NULL;
    const char *path = config->image->image;
    if (path[0] != '/')
        return 0; /* an image reference */
    _cleanup_restore_ struct ctr_restore *rs = xmalloc0(sizeof(*rs));
    rs->staging_fd = -1;
    rs->archive = xstrdup(path);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return hull_error_set(err, errno == ELOOP ? EINVAL : errno, "checkpoint archive `%s`",
                              HULL_CLIP(path));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return hull_error_setx(err, EINVAL, "checkpoint archive `%s` is not a regular file",
                               HULL_CLIP(path));
    char id[65];
    hull_id_generate(id);
    /* a full id under the containers' root: a crash leaves it to the orphan sweep */
    rs->staging = hull_path_join(ctr_service(srv)->root_dir, id);
    if (mkdir(rs->staging, 0700) < 0) {
        int e = errno;
        free(hull_steal(rs->staging));
        return hull_error_set(err, e, "restore: staging directory");
    }
    rs->staging_fd = open(rs->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rs->staging_fd < 0)
        return hull_error_set(err, errno, "open `%s`", rs->staging);
    int r = image_unpack_layer_capped(fd, rs->staging_fd, NULL,
                                      (uint64_t)sb.st_size + RESTORE_SLACK, NULL, err);
    if (r < 0) {
        int code = hull_error_status(err) == EFBIG ? EFBIG : EINVAL;
        _cleanup_free_ char *msg = xstrdup(hull_error_msg(err));
        hull_error_free(err);
        return hull_error_setx(err, code, "checkpoint archive `%s` cannot be unpacked: %s",
                               HULL_CLIP(path), msg);
    }
    _cleanup_yajl_ yajl_val cfgdump = NULL;
    _cleanup_yajl_ yajl_val spec = NULL;
    if ((r = staged_json(rs, "config.dump", &cfgdump, err)) < 0 ||
        (r = staged_json(rs, "spec.dump", &spec, err)) < 0 || (r = check_images(rs, err)) < 0 ||
        (r = merge_config(srv, rs, config, cfgdump, spec, err)) < 0)
        return r;
    log_info("restore: container \"%s\" from checkpoint %s (image %s, checkpointed %s)",
             config->metadata->name, path, rs->config->image->image,
             hull_json_get_string(cfgdump, "checkpointedTime", "?"));
    *out = hull_steal(rs);
    return 0;
}

/* ---- prepare ------------------------------------------------------------------------------ */
/* rm -rf of name in dirfd, never following a symlink. */
static int rm_at(int pfd, const char *name, int depth)
{
    if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    if (depth > RESTORE_RM_DEPTH)
        return -ELOOP;
    int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -errno;
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            r = rm_at(dirfd(d), de->d_name, depth + 1);
    closedir(d);
    if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        r = -errno;
    return r;
}

/* deleted.files: paths removed from the rootfs, each resolved inside it. */
static int apply_deleted(struct ctr_restore *rs, int rootfd, hull_error_t *err)
{
    _cleanup_close_ int probe =
        hull_open_in_root(rs->staging_fd, "deleted.files", O_PATH | O_NOFOLLOW, 0);
    if (probe < 0)
        return 0; /* optional, as in CRI-O */
    _cleanup_free_ char *text = NULL;
    int r = staged_read(rs, "deleted.files", RESTORE_LIST_MAX, &text, err);
    if (r < 0)
        return r;
    _cleanup_yajl_ yajl_val doc = NULL;
    if (hull_json_parse(text, "deleted.files", &doc, err) < 0 || !YAJL_IS_ARRAY(doc)) {
        hull_error_free(err);
        return hull_error_setx(err, EINVAL, "checkpoint archive: deleted.files is not a JSON list");
    }
    for (size_t i = 0; i < doc->u.array.len; i++) {
        const char *p = YAJL_GET_STRING(doc->u.array.values[i]);
        if (p == NULL)
            return hull_error_setx(err, EINVAL,
                                   "checkpoint archive: deleted.files holds a non-string");
        _cleanup_free_ char *dup = xstrdup(p);
        size_t n = strlen(dup);
        while (n > 1 && dup[n - 1] == '/')
            dup[--n] = '\0';
        char *slash = strrchr(dup, '/');
        const char *base = slash ? slash + 1 : dup;
        if (slash)
            *slash = '\0';
        const char *parent = slash ? dup : "";
        if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
            continue; /* the root itself is never removed */
        _cleanup_close_ int pfd =
            hull_open_in_root(rootfd, parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY, 0);
        if (pfd < 0)
            continue; /* its directory is gone already */
        if ((r = rm_at(pfd, base, 0)) < 0)
            return hull_error_set(err, -r, "restore: remove \"%s\" from the rootfs", HULL_CLIP(p));
    }
    return 0;
}

int ctr_restore_prepare(struct hull_server *srv, struct ctr_restore *rs, struct container *c,
                        const char *rootfs, hull_error_t *err)
{
    _cleanup_close_ int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return hull_error_set(err, errno, "restore: open `%s`", rootfs);
    /* the writable layer as it was at the checkpoint */
    _cleanup_close_ int diff =
        hull_open_in_root(rs->staging_fd, "rootfs-diff.tar", O_RDONLY | O_NOFOLLOW, 0);
    struct stat sb;
    if (diff >= 0) {
        if (fstat(diff, &sb) < 0 || !S_ISREG(sb.st_mode))
            return hull_error_setx(err, EINVAL,
                                   "checkpoint archive: rootfs-diff.tar is not a file");
        int r = image_unpack_layer_capped(diff, rootfd, NULL, (uint64_t)sb.st_size + RESTORE_SLACK,
                                          NULL, err);
        if (r < 0) {
            int code = hull_error_status(err) == EFBIG || hull_error_status(err) == ENOSPC
                           ? hull_error_status(err)
                           : EINVAL;
            _cleanup_free_ char *msg = xstrdup(hull_error_msg(err));
            hull_error_free(err);
            return hull_error_setx(err, code, "checkpoint archive: rootfs-diff.tar: %s", msg);
        }
    }
    int r = apply_deleted(rs, rootfd, err);
    if (r < 0)
        return r;
    /* the CRIU images into the container's directory (same file system: a rename) */
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    _cleanup_free_ char *src = hull_path_join(rs->staging, RESTORE_IMAGE_DIR);
    _cleanup_free_ char *dst = hull_path_join(rdir, RESTORE_IMAGE_DIR);
    if (rename(src, dst) < 0)
        return hull_error_set(err, errno, "restore: move the checkpoint images to `%s`", dst);
    pthread_mutex_lock(&c->lock);
    c->restore_pending = true;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* ---- start / stop ------------------------------------------------------------------------- */
int ctr_restore_start(struct hull_server *srv, struct container *c, hull_error_t *err)
{
    struct container_service *cs = ctr_service(srv);
    _cleanup_free_ char *sdir = ctr_state_dir(srv, c->id);
    _cleanup_free_ char *rdir = ctr_root_dir(srv, c->id);
    _cleanup_free_ char *mon = ctr_socket_dir(srv, c->id, NULL);
    _cleanup_free_ char *images = hull_path_join(rdir, RESTORE_IMAGE_DIR);
    _cleanup_margs_ struct monitor_args ma = {0};
    margs_monitor(&ma, srv, c, sdir, mon, cs->exit_dir);
    margs_add(&ma, "--log-level");
    margs_add(&ma, hull_log_level_name(hull_log_get_level()));
    if (c->log_path[0]) {
        margs_add(&ma, "--log-path");
        margs_add(&ma, c->log_path);
    }
    if (srv->config->max_container_log_size > 0) {
        margs_add(&ma, "--log-max-size");
        margs_add(&ma, margs_own(&ma, xasprintf("%lld", srv->config->max_container_log_size)));
    }
    if (c->config->stdin)
        margs_add(&ma, "--stdin");
    if (c->config->stdin_once)
        margs_add(&ma, "--stdin-once");
    margs_add(&ma, "--monitor-log");
    margs_add(&ma, margs_own(&ma, hull_path_join(sdir, "monitor.log")));
    margs_add(&ma, "--restore");
    margs_add(&ma, images);
    pid_t pid = 0, mpid = -1;
    int r = ctr_monitor_start(&ma, &pid, &mpid, NULL, err);
    if (r < 0)
        return hull_error_wrap(err, "restore (CRIU)");
    uint64_t start = sandbox_proc_start_time(pid);
    pthread_mutex_lock(&c->lock);
    c->pid = pid;
    c->monitor_pid = mpid;
    c->pid_start = start;
    c->restore_pending = false;
    pthread_mutex_unlock(&c->lock);
    log_info("container %s restored from its checkpoint, pid %d", c->id, pid);
    /* the images are spent; CRIU's restore.log stays for a look */
    DIR *d = opendir(images);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.' && strcmp(de->d_name, "restore.log") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    return 0;
}

void ctr_restore_stop_pending(struct hull_server *srv, struct container *c)
{
    pthread_mutex_lock(&c->lock);
    c->state = CONTAINER_EXITED;
    c->exit_code = 0;
    c->finished_ns = hull_now_ns();
    c->restore_pending = false;
    free(c->reason);
    c->reason = xstrdup("Completed");
    free(c->message);
    c->message = xstrdup("stopped before its restore was started");
    pthread_cond_broadcast(&c->exited_cv);
    pthread_mutex_unlock(&c->lock);
    ctr_save(srv, c, NULL);
}
