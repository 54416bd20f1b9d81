/* checkpoint: the container's process tree dumped by the criu binary (runc's options). */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CRIU_MAX_ARGS 256

struct criu_argv {
    char *v[CRIU_MAX_ARGS + 1];
    size_t n;
};

static void cargv_clear(struct criu_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

static int cargv_add(struct criu_argv *a, char *owned, hull_error_t *err)
{
    if (a->n >= CRIU_MAX_ARGS) {
        free(owned);
        return hull_error_setx(err, E2BIG, "too many criu arguments");
    }
    a->v[a->n++] = owned;
    a->v[a->n] = NULL;
    return 0;
}

/* The last "Error" lines of a criu log (what failed), or its tail. */
static char *criu_log_errors(const char *log)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(log, 4 << 20, &text, &len, &e) < 0)
        return xasprintf("(no criu log at %s)", log);
    const char *lines[4] = {0};
    size_t n = 0;
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(s, "Error") || strstr(s, "error")) {
            if (n == 4)
                memmove(lines, lines + 1, 3 * sizeof(lines[0])), n = 3;
            lines[n++] = s;
        }
    }
    if (n == 0)
        return xasprintf("see %s", log);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(lines[i]) + 2;
    char *out = xmalloc0(total);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, "; ");
        strcat(out, lines[i]);
    }
    return out;
}

/* Waits for the criu process pid running `criu what`; its errors come from its log file. */
static int criu_wait(pid_t pid, const char *criu, const char *what, const char *log,
                     hull_error_t *err)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return hull_error_set(err, errno, "waitpid criu");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return hull_error_setx(err, ENOENT, "criu (%s) cannot be run: is it installed?", criu);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        _cleanup_free_ char *why = criu_log_errors(log);
        return hull_error_setx(err, EIO, "criu %s failed (%s %d): %s", what,
                               WIFEXITED(status) ? "exit" : "signal",
                               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why);
    }
    return 0;
}

/* Runs criu with a's arguments; its output goes to its log file. */
static int criu_run(const char *criu, struct criu_argv *a, const char *log, hull_error_t *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork");
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            dup2(nul, STDOUT_FILENO);
        }
        execvp(criu, a->v);
        dprintf(STDERR_FILENO, "exec %s: %s\n", criu, strerror(errno));
        _exit(127);
    }
    return criu_wait(pid, criu, a->v[1], log, err);
}

static const char *ns_key(int type)
{
    switch (type) {
    case CLONE_NEWNET:
        return "net";
    case CLONE_NEWPID:
        return "pid";
    default:
        return NULL;
    }
}

/* runc writes the init's stdio targets next to the images: restore reconnects them. */
static int write_descriptors(pid_t pid, const char *dir, hull_error_t *err)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_array(&w);
    for (int fd = 0; fd < 3; fd++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        target[n < 0 ? 0 : n] = '\0';
        hull_jw_string(&w, n < 0 ? "/dev/null" : target);
    }
    hull_jw_end_array(&w);
    size_t len = 0;
    _cleanup_free_ char *json = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    _cleanup_free_ char *path = hull_path_join(dir, "descriptors.json");
    return hull_write_file_atomic(path, json, len, 0600, err);
}

/* The options dump and restore take alike (runc's names). */
static int add_shared_flags(struct criu_argv *a, const struct oci_checkpoint_opts *o,
                            hull_error_t *err)
{
    const struct {
        bool on;
        const char *flag;
    } flags[] = {{o->tcp_established, "--tcp-established"},
                 {o->ext_unix_sk, "--ext-unix-sk"},
                 {o->shell_job, "--shell-job"},
                 {o->file_locks, "--file-locks"}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        int r = flags[i].on ? cargv_add(a, xstrdup(flags[i].flag), err) : 0;
        if (r < 0)
            return r;
    }
    return 0;
}

int oci_checkpoint(const struct oci_global *g, struct oci_state *st,
                   const struct oci_checkpoint_opts *o, hull_error_t *err)
{
    (void)g;
    _cleanup_oci_spec_ struct oci_spec *spec = NULL;
    int r = oci_spec_parse(st->config_json, st->bundle, &spec, err);
    if (r < 0)
        return hull_error_wrap(err, "the container's config");
    const char *mode = o->manage_cgroups_mode ? o->manage_cgroups_mode : "soft";
    if (strcmp(mode, "soft") != 0 && strcmp(mode, "full") != 0 && strcmp(mode, "strict") != 0 &&
        strcmp(mode, "ignore") != 0)
        return hull_error_setx(
            err, EINVAL, "invalid --manage-cgroups-mode \"%s\" (soft, full, strict, ignore)", mode);
    const char *image = o->image_path ? o->image_path : "checkpoint";
    const char *work = o->work_path ? o->work_path : image;
    if ((r = hull_mkdir_p(image, 0700, err)) < 0 || (r = hull_mkdir_p(work, 0700, err)) < 0)
        return r;
    const char *log_name = o->pre_dump ? "predump.log" : "dump.log";
    _cleanup_free_ char *log = hull_path_join(work, log_name);

    __attribute__((cleanup(cargv_clear))) struct criu_argv a = {0};
    const char *criu = o->criu ? o->criu : "criu";
#define ADD(s)                                                                                     \
    do {                                                                                           \
        if ((r = cargv_add(&a, (s), err)) < 0)                                                     \
            return r;                                                                              \
    } while (0)
    ADD(xstrdup(criu));
    ADD(xstrdup(o->pre_dump ? "pre-dump" : "dump"));
    ADD(xasprintf("--tree=%d", (int)st->pid));
    ADD(xasprintf("--images-dir=%s", image));
    ADD(xasprintf("--work-dir=%s", work));
    ADD(xasprintf("--log-file=%s", log_name));
    ADD(xstrdup("-v4"));
    ADD(xasprintf("--root=%s", st->rootfs));
    ADD(xasprintf("--manage-cgroups=%s", mode));
    if (o->parent_path)
        ADD(xasprintf("--prev-images-dir=%s", o->parent_path));
    if (o->leave_running && !o->pre_dump)
        ADD(xstrdup("--leave-running"));
    if (o->pre_dump)
        ADD(xstrdup("--track-mem"));
    if ((r = add_shared_flags(&a, o, err)) < 0)
        return r;
    if (o->auto_dedup)
        ADD(xstrdup("--auto-dedup"));
    /* bind mounts come from the host: criu records them as external, restore maps them back */
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct oci_mount *m = &spec->mounts[i];
        if (!m->bind)
            continue;
        ADD(xasprintf("--external=mnt[%s]:%s", m->destination, m->destination));
    }
    /* namespaces joined by path (the pod's) are outside the dump */
    for (size_t i = 0; i < spec->n_namespaces; i++) {
        const struct oci_namespace *ns = &spec->namespaces[i];
        const char *key = ns_key(ns->type);
        if (ns->path == NULL || key == NULL)
            continue;
        struct stat sb;
        if (stat(ns->path, &sb) < 0)
            return hull_error_set(err, errno, "stat namespace `%s`", ns->path);
        ADD(xasprintf("--external=%s[%llu]:extRoot%sNS", key, (unsigned long long)sb.st_ino,
                      ns->type == CLONE_NEWNET ? "Net" : "Pid"));
    }
#undef ADD
    if (!o->pre_dump && (r = write_descriptors(st->pid, image, err)) < 0)
        return r;
    if ((r = criu_run(criu, &a, log, err)) < 0)
        return r;
    return 0;
}

/* descriptors.json entry i → "--inherit-fd fd[i]:KEY" for stdio that was a pipe or socket:
 * the restored process gets our fd i in its place (runc's restore does the same). */
static int add_inherit_fds(struct criu_argv *a, const char *image, hull_error_t *err)
{
    _cleanup_free_ char *path = hull_path_join(image, "descriptors.json");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    _cleanup_error_ hull_error_t e = NULL;
    if (hull_read_file(path, 1 << 20, &text, &len, &e) < 0)
        return 0; /* not written by a runtime: nothing to reconnect */
    char ebuf[128];
    yajl_val doc = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (doc == NULL || !YAJL_IS_ARRAY(doc)) {
        yajl_tree_free(doc);
        return hull_error_setx(err, EINVAL, "`%s` is not a JSON array", path);
    }
    int r = 0;
    for (size_t i = 0; i < YAJL_GET_ARRAY(doc)->len && i < 3 && r == 0; i++) {
        const char *s = YAJL_GET_STRING(YAJL_GET_ARRAY(doc)->values[i]);
        if (s && (strncmp(s, "pipe:", 5) == 0 || strncmp(s, "socket:", 7) == 0)) {
            if ((r = cargv_add(a, xstrdup("--inherit-fd"), err)) == 0)
                r = cargv_add(a, xasprintf("fd[%zu]:%s", i, s), err);
        }
    }
    yajl_tree_free(doc);
    return r;
}

int oci_restore(const struct oci_global *g, const struct oci_spec *spec,
                const struct hull_cgroup *cg, const struct oci_checkpoint_opts *o, pid_t *pid_out,
                hull_error_t *err)
{
    const char *mode = o->manage_cgroups_mode ? o->manage_cgroups_mode : "soft";
    const char *image = o->image_path ? o->image_path : "checkpoint";
    const char *work = o->work_path ? o->work_path : image;
    int r = hull_mkdir_p(work, 0700, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *log = hull_path_join(work, "restore.log");
    _cleanup_free_ char *pidfile = hull_path_join(work, "restore.pid");
    unlink(pidfile);
    __attribute__((cleanup(cargv_clear))) struct criu_argv a = {0};
    const char *criu = o->criu ? o->criu : (g->criu ? g->criu : "criu");
#define ADD(s)                                                                                     \
    do {                                                                                           \
        if ((r = cargv_add(&a, (s), err)) < 0)                                                     \
            return r;                                                                              \
    } while (0)
    ADD(xstrdup(criu));
    ADD(xstrdup("restore"));
    ADD(xasprintf("--images-dir=%s", image));
    ADD(xasprintf("--work-dir=%s", work));
    ADD(xstrdup("--log-file=restore.log"));
    ADD(xstrdup("-v4"));
    ADD(xasprintf("--root=%s", spec->rootfs));
    ADD(xstrdup("--restore-detached"));
    ADD(xasprintf("--pidfile=%s", pidfile));
    ADD(xasprintf("--manage-cgroups=%s", mode));
    if ((r = add_shared_flags(&a, o, err)) < 0)
        return r;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct oci_mount *m = &spec->mounts[i];
        if (m->bind)
            ADD(xasprintf("--ext-mount-map=%s:%s", m->destination, m->source));
    }
    /* the restored tree goes into this container's cgroup, wherever the dumped one was (a
     * restore under a new id, as runc passes its cgroup paths as CRIU's cgroup roots) */
    bool v2_only = cg->n == 1 && strcmp(cg->dirs[0].controller, "unified") == 0;
    for (size_t i = 0; i < cg->n; i++) {
        const struct hull_cgroup_dir *d = &cg->dirs[i];
        size_t ml = strlen(d->mount);
        const char *rel = strncmp(d->path, d->mount, ml) == 0 ? d->path + ml : d->path;
        if (v2_only)
            ADD(xasprintf("--cgroup-root=%s", rel[0] ? rel : "/"));
        else if (strcmp(d->controller, "unified") != 0)
            ADD(xasprintf("--cgroup-root=%s:%s", d->controller, rel[0] ? rel : "/"));
    }
    /* the network and pid namespaces joined by path (the pod's) were external at the dump:
     * CRIU puts the tree into the new ones (runc's extRootNetNS / extRootPidNS inherit fds) */
    _cleanup_close_ int netns = -1;
    _cleanup_close_ int pidns = -1;
    for (size_t i = 0; i < spec->n_namespaces; i++) {
        const struct oci_namespace *ns = &spec->namespaces[i];
        int *fd = ns->type == CLONE_NEWNET ? &netns : ns->type == CLONE_NEWPID ? &pidns : NULL;
        if (fd == NULL || ns->path == NULL || *fd >= 0)
            continue;
        *fd = open(ns->path, O_RDONLY); /* inherited by criu */
        if (*fd < 0)
            return hull_error_set(err, errno, "open %s namespace `%s`", ns_key(ns->type), ns->path);
        ADD(xstrdup("--inherit-fd"));
        ADD(xasprintf("fd[%d]:extRoot%sNS", *fd, ns->type == CLONE_NEWNET ? "Net" : "Pid"));
    }
#undef ADD
    if ((r = add_inherit_fds(&a, image, err)) < 0)
        return r;
    /* criu runs in the container's cgroup: the restored tree starts there (runc moves criu
     * into the container's cgroup before restoring, too) */
    pid_t pid = fork();
    if (pid < 0)
        return hull_error_set(err, errno, "fork");
    if (pid == 0) {
        _cleanup_error_ hull_error_t e = NULL;
        if (hull_cgroup_enter((struct hull_cgroup *)cg, getpid(), &e) < 0) {
            dprintf(STDERR_FILENO, "criu restore: %s\n", hull_error_msg(&e));
            _exit(126);
        }
        execvp(criu, a.v);
        _exit(127);
    }
    if ((r = criu_wait(pid, criu, "restore", log, err)) < 0)
        return r;
    _cleanup_free_ char *text = NULL;
    if ((r = hull_read_file(pidfile, 64, &text, NULL, err)) < 0)
        return hull_error_wrap(err, "criu's pid file");
    *pid_out = (pid_t)atoi(text);
    if (*pid_out <= 0)
        return hull_error_setx(err, EIO, "criu's pid file holds \"%s\"", text);
    return 0;
}
