/* Plugin execution per the CNI spec: ADD (chained prevResult), DEL (reverse order, cached
 * result), CHECK; result parsing and the result cache. */

#include "cni/internal.h"
#include "common/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define CNI_OUTPUT_MAX (1024 * 1024)
#define CNI_STDERR_MAX (16 * 1024)
#define CNI_CACHE_MAX  (4 * 1024 * 1024)

/* ---- results ------------------------------------------------------------------------------ */

void cni_result_free(struct cni_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_ips; i++)
        free(r->ips[i]);
    free(r->ips);
    free(r->json);
    free(r->network_name);
    free(r);
}

static void result_add_ip(struct cni_result *r, const char *cidr)
{
    if (cidr == NULL || *cidr == '\0')
        return;
    const char *slash = strchr(cidr, '/');
    r->ips = xrealloc(r->ips, (r->n_ips + 1) * sizeof(char *));
    r->ips[r->n_ips++] = slash ? xstrndup(cidr, (size_t)(slash - cidr)) : xstrdup(cidr);
}

int cni_result_parse(const char *json, struct cni_result **out, hull_error_t *err)
{
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = hull_json_parse(json, "CNI result", &doc, err);
    if (r < 0)
        return r;
    if (!YAJL_IS_OBJECT(doc))
        return hull_error_setx(err, EINVAL, "CNI result is not a JSON object");
    struct cni_result *res = xmalloc0(sizeof(*res));
    res->json = xstrdup(json);
    yajl_val ips = hull_json_get(doc, "ips");
    if (ips && YAJL_IS_ARRAY(ips)) {
        /* v4 first, then v6, each in the plugin's order */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < ips->u.array.len; i++) {
                const char *a = hull_json_get_string(ips->u.array.values[i], "address", NULL);
                if (a && (strchr(a, ':') != NULL) == (pass == 1))
                    result_add_ip(res, a);
            }
    }
    /* 0.1.0/0.2.0 */
    yajl_val ip4 = hull_json_get(doc, "ip4");
    if (ip4)
        result_add_ip(res, hull_json_get_string(ip4, "ip", NULL));
    yajl_val ip6 = hull_json_get(doc, "ip6");
    if (ip6)
        result_add_ip(res, hull_json_get_string(ip6, "ip", NULL));
    *out = res;
    return 0;
}

/* ---- CNI_ARGS ----------------------------------------------------------------------------- */

static bool arg_ok(const char *v)
{
    return v == NULL || (strchr(v, ';') == NULL && strchr(v, '=') == NULL);
}

int cni_build_args(const struct cni_attachment *a, char **out, hull_error_t *err)
{
    if (!arg_ok(a->pod_namespace) || !arg_ok(a->pod_name) || !arg_ok(a->pod_uid) ||
        !arg_ok(a->container_id))
        return hull_error_setx(err, EINVAL, "CNI_ARGS: pod names must not contain ';' or '='");
    *out = xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
                     "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
                     a->pod_namespace ? a->pod_namespace : "", a->pod_name ? a->pod_name : "",
                     a->container_id ? a->container_id : "", a->pod_uid ? a->pod_uid : "");
    return 0;
}

/* ---- plugin execution --------------------------------------------------------------------- */

static int find_plugin(const struct cni_exec *ex, const char *type, char **out, hull_error_t *err)
{
    for (size_t i = 0; i < ex->n_plugin_dirs; i++) {
        _cleanup_free_ char *p = hull_path_join(ex->plugin_dirs[i], type);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
            *out = hull_steal(p);
            return 0;
        }
    }
    size_t len = 2;
    for (size_t i = 0; i < ex->n_plugin_dirs; i++)
        len += strlen(ex->plugin_dirs[i]) + 1;
    _cleanup_free_ char *dirs = xmalloc0(len);
    for (size_t i = 0; i < ex->n_plugin_dirs; i++) {
        if (i)
            strcat(dirs, " ");
        strcat(dirs, ex->plugin_dirs[i]);
    }
    return hull_error_setx(err, EIO, "failed to find plugin \"%s\" in path [%s]", type, dirs);
}

static char **build_env(const struct cni_exec *ex, const char *command,
                        const struct cni_attachment *a, const char *cni_args)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = xmalloc0((n + 8) * sizeof(char *));
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "CNI_", 4) != 0)
            env[k++] = xstrdup(*e);
    size_t plen = 1;
    for (size_t i = 0; i < ex->n_plugin_dirs; i++)
        plen += strlen(ex->plugin_dirs[i]) + 1;
    char *path = xmalloc0(plen);
    for (size_t i = 0; i < ex->n_plugin_dirs; i++) {
        if (i)
            strcat(path, ":");
        strcat(path, ex->plugin_dirs[i]);
    }
    env[k++] = xasprintf("CNI_COMMAND=%s", command);
    env[k++] = xasprintf("CNI_CONTAINERID=%s", a->container_id ? a->container_id : "");
    env[k++] = xasprintf("CNI_NETNS=%s", a->netns ? a->netns : "");
    env[k++] = xasprintf("CNI_IFNAME=%s", a->ifname ? a->ifname : "eth0");
    env[k++] = xasprintf("CNI_ARGS=%s", cni_args ? cni_args : "");
    env[k++] = xasprintf("CNI_PATH=%s", path);
    free(path);
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; e && *e; e++)
        free(*e);
    free(env);
}

static void closep2(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* The error message of a failed plugin: its CNI error JSON, else its stderr. */
static char *plugin_error_text(const char *out, const char *errtext, int status)
{
    if (out && *out) {
        _cleanup_yajl_ yajl_val doc = yajl_tree_parse(out, NULL, 0);
        if (doc && YAJL_IS_OBJECT(doc)) {
            const char *msg = hull_json_get_string(doc, "msg", NULL);
            const char *details = hull_json_get_string(doc, "details", NULL);
            long long code = hull_json_get_int(doc, "code", 0);
            if (msg) {
                if (details && *details)
                    return xasprintf("%s: %s (code %lld)", msg, details, code);
                return xasprintf("%s (code %lld)", msg, code);
            }
        }
    }
    if (errtext && *errtext) {
        char *t = xstrdup(errtext);
        size_t n = strlen(t);
        while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
            t[--n] = '\0';
        return t;
    }
    if (WIFSIGNALED(status))
        return xasprintf("killed by signal %d", WTERMSIG(status));
    return xasprintf("exit status %d", WEXITSTATUS(status));
}

/* One plugin run: its pipes, its pid and what it wrote. */
struct plugin_io {
    int in[2], po[2], pe[2];
    pid_t pid;
    int pidfd;
    bool exited, timed_out, too_big;
    const char *wbuf;
    size_t wlen, woff;
    char *obuf;
    size_t ocap, olen;
    char *ebuf;
    size_t elen;
    int64_t deadline;
};

static void plugin_io_clear(struct plugin_io *io)
{
    closep2(io->in);
    closep2(io->po);
    closep2(io->pe);
    if (io->pidfd >= 0)
        close(io->pidfd);
    io->pidfd = -1;
    free(io->obuf);
    free(io->ebuf);
    io->obuf = io->ebuf = NULL;
}

/* stdin, stdout and stderr pipes for the plugin */
static int open_pipes(struct plugin_io *io, hull_error_t *err)
{
    if (pipe2(io->in, O_CLOEXEC) < 0 || pipe2(io->po, O_CLOEXEC) < 0 ||
        pipe2(io->pe, O_CLOEXEC) < 0) {
        int r = hull_error_set(err, errno, "pipe");
        closep2(io->in);
        closep2(io->po);
        closep2(io->pe);
        return r;
    }
    return 0;
}

/* Start the plugin on the pipes, with the CNI environment; closes the child's pipe ends. */
static int spawn_plugin(struct plugin_io *io, const struct cni_exec *ex, const char *path,
                        const char *command, const struct cni_attachment *a, const char *cni_args,
                        hull_error_t *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, io->in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, io->po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, io->pe[1], 2);
    /* plugins get stdio and nothing else, whatever hulld holds open */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    /* its own process group: a timeout kills whatever the plugin started too */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    char **env = build_env(ex, command, a, cni_args);
    char *argv[] = {(char *)path, NULL};
    int sr = posix_spawn(&io->pid, path, &fa, &attr, argv, env);
    free_env(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(io->in[0]);
    close(io->po[1]);
    close(io->pe[1]);
    io->in[0] = io->po[1] = io->pe[1] = -1;
    if (sr != 0) {
        closep2(io->in);
        closep2(io->po);
        closep2(io->pe);
        return hull_error_set(err, sr, "exec CNI plugin `%s`", path);
    }
    return 0;
}

/* The plugin exited: what it wrote before is in the pipes, read that much, no more. */
static void on_plugin_exit(struct plugin_io *io)
{
    io->exited = true;
    if (io->in[1] >= 0)
        closep2(io->in);
    if (io->po[0] >= 0)
        fcntl(io->po[0], F_SETFL, O_NONBLOCK);
    if (io->pe[0] >= 0)
        fcntl(io->pe[0], F_SETFL, O_NONBLOCK);
}

/* Write more of the network config to the plugin's stdin; close it when all is written. */
static void write_stdin(struct plugin_io *io)
{
    ssize_t w = write(io->in[1], io->wbuf + io->woff, io->wlen - io->woff);
    if (w > 0)
        io->woff += (size_t)w;
    if (w < 0 && errno != EAGAIN && errno != EINTR)
        io->woff = io->wlen; /* plugin closed stdin */
    if (io->woff >= io->wlen)
        closep2(io->in);
}

/* Read the plugin's stdout; false when it is over CNI_OUTPUT_MAX. */
static bool read_stdout(struct plugin_io *io)
{
    if (io->olen == io->ocap) {
        if (io->ocap >= CNI_OUTPUT_MAX) {
            io->too_big = true;
            return false;
        }
        io->ocap *= 2;
        io->obuf = xrealloc(io->obuf, io->ocap + 1);
    }
    ssize_t rd = read(io->po[0], io->obuf + io->olen, io->ocap - io->olen);
    if (rd > 0)
        io->olen += (size_t)rd;
    else if (rd == 0 || errno != EINTR)
        closep2(io->po); /* EOF, an error, or drained after the exit */
    return true;
}

/* Read the plugin's stderr, keeping at most CNI_STDERR_MAX bytes. */
static void read_stderr(struct plugin_io *io)
{
    char tmp[4096];
    ssize_t rd = read(io->pe[0], tmp, sizeof(tmp));
    if (rd > 0) {
        size_t take = (size_t)rd;
        if (take > CNI_STDERR_MAX - io->elen)
            take = CNI_STDERR_MAX - io->elen;
        memcpy(io->ebuf + io->elen, tmp, take);
        io->elen += take;
    } else if (rd == 0 || errno != EINTR) {
        closep2(io->pe);
    }
}

/* Feed stdin and collect stdout/stderr until both close, the deadline or too much output.
 * The plugin's exit ends the reading: a child it left in the background may hold its
 * stdout open for ever. */
static void exchange_io(struct plugin_io *io)
{
    if (io->wlen == 0)
        closep2(io->in);
    fcntl(io->in[1], F_SETFL, O_NONBLOCK);
    while (io->po[0] >= 0 || io->pe[0] >= 0) {
        struct pollfd pfd[4];
        int n = 0, iw = -1, iout = -1, ie = -1, ix = -1;
        if (io->pidfd >= 0 && !io->exited) {
            pfd[n] = (struct pollfd){.fd = io->pidfd, .events = POLLIN};
            ix = n++;
        }
        if (io->in[1] >= 0) {
            pfd[n] = (struct pollfd){.fd = io->in[1], .events = POLLOUT};
            iw = n++;
        }
        if (io->po[0] >= 0) {
            pfd[n] = (struct pollfd){.fd = io->po[0], .events = POLLIN};
            iout = n++;
        }
        if (io->pe[0] >= 0) {
            pfd[n] = (struct pollfd){.fd = io->pe[0], .events = POLLIN};
            ie = n++;
        }
        int64_t left = (io->deadline - hull_monotonic_ns()) / 1000000LL;
        if (left <= 0) {
            io->timed_out = true;
            break;
        }
        int pr;
        if (io->exited) {
            /* drain what is buffered without waiting: the fds are non-blocking now */
            for (int k = 0; k < n; k++)
                pfd[k].revents = POLLIN;
            pr = n;
        } else {
            pr = poll(pfd, (nfds_t)n, (int)(left > 1000 ? 1000 : left));
        }
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ix >= 0 && pfd[ix].revents)
            on_plugin_exit(io);
        if (iw >= 0 && io->in[1] >= 0 && pfd[iw].revents)
            write_stdin(io);
        if (iout >= 0 && pfd[iout].revents && !read_stdout(io))
            break;
        if (ie >= 0 && pfd[ie].revents)
            read_stderr(io);
    }
}

/* Close the pipes, kill the plugin's group on a timeout or overflow, and wait for it. */
static int reap_plugin(struct plugin_io *io)
{
    closep2(io->in);
    closep2(io->po);
    closep2(io->pe);
    if (io->timed_out || io->too_big)
        kill(-io->pid, SIGKILL); /* the plugin and what it started */
    int status = 0;
    while (waitpid(io->pid, &status, 0) < 0 && errno == EINTR)
        ;
    io->obuf[io->olen] = '\0';
    io->ebuf[io->elen] = '\0';
    return status;
}

/* The outcome of a reaped plugin: its stdout, or the error that explains its failure. */
static int plugin_outcome(struct plugin_io *io, const char *type, const char *command, int status,
                          char **out, hull_error_t *err)
{
    if (io->timed_out)
        return hull_error_setx(err, ETIMEDOUT, "plugin type=\"%s\" (%s) timed out", type, command);
    if (io->too_big)
        return hull_error_setx(err, EMSGSIZE, "plugin type=\"%s\" (%s): output over %d bytes", type,
                               command, CNI_OUTPUT_MAX);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        _cleanup_free_ char *why = plugin_error_text(io->obuf, io->ebuf, status);
        return hull_error_setx(err, EIO, "plugin type=\"%s\" failed (%s): %s", type, command, why);
    }
    *out = hull_steal(io->obuf);
    return 0;
}

int cni_exec_plugin(const struct cni_exec *ex, const char *type, const char *command,
                    const struct cni_attachment *a, const char *cni_args, const char *stdin_json,
                    char **out, hull_error_t *err)
{
    _cleanup_free_ char *path = NULL;
    int r = find_plugin(ex, type, &path, err);
    if (r < 0)
        return r;
    __attribute__((cleanup(plugin_io_clear))) struct plugin_io io = {
        .in = {-1, -1}, .po = {-1, -1}, .pe = {-1, -1}, .pidfd = -1};
    r = open_pipes(&io, err);
    if (r < 0)
        return r;
    int64_t started = hull_monotonic_ns();
    r = spawn_plugin(&io, ex, path, command, a, cni_args, err);
    if (r < 0)
        return r;
    io.pidfd = (int)pidfd_open(io.pid, 0);
    io.wbuf = stdin_json ? stdin_json : "";
    io.wlen = strlen(io.wbuf);
    io.ocap = 4096;
    io.obuf = xmalloc0(io.ocap + 1);
    io.ebuf = xmalloc0(CNI_STDERR_MAX + 1);
    io.deadline =
        hull_monotonic_ns() + (int64_t)(ex->timeout_ms > 0 ? ex->timeout_ms : 60000) * 1000000LL;
    exchange_io(&io);
    int status = reap_plugin(&io);
    log_debug("cni: plugin %s %s for %s: %.1f ms, status %d", type, command,
              a->container_id ? a->container_id : "", (hull_monotonic_ns() - started) / 1e6,
              status);
    if (io.elen > 0)
        log_debug("cni: plugin %s %s stderr: %s", type, command, io.ebuf);
    return plugin_outcome(&io, type, command, status, out, err);
}

/* ---- capability arguments ----------------------------------------------------------------- */

static void emit_str_array(struct hull_json_writer *w, const char *const *v, size_t n)
{
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++)
        hull_jw_string(w, v[i]);
    hull_jw_end_array(w);
}

/* {"portMappings": [...], "bandwidth": {...}, "ipRanges": [[...]], "dns": {...}} */
static yajl_val build_caps(const struct cni_attachment *a)
{
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_key(&w, "portMappings");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < a->n_port_mappings; i++) {
        const struct cni_port_mapping *p = &a->port_mappings[i];
        hull_jw_begin_object(&w);
        hull_jw_kv_int(&w, "hostPort", p->host_port);
        hull_jw_kv_int(&w, "containerPort", p->container_port);
        hull_jw_kv_string(&w, "protocol", p->protocol ? p->protocol : "tcp");
        if (p->host_ip && *p->host_ip)
            hull_jw_kv_string(&w, "hostIP", p->host_ip);
        hull_jw_end_object(&w);
    }
    hull_jw_end_array(&w);
    if (a->bandwidth) {
        hull_jw_key(&w, "bandwidth");
        hull_jw_begin_object(&w);
        if (a->bandwidth->ingress_rate) {
            hull_jw_kv_int(&w, "ingressRate", (long long)a->bandwidth->ingress_rate);
            hull_jw_kv_int(&w, "ingressBurst", (long long)a->bandwidth->ingress_burst);
        }
        if (a->bandwidth->egress_rate) {
            hull_jw_kv_int(&w, "egressRate", (long long)a->bandwidth->egress_rate);
            hull_jw_kv_int(&w, "egressBurst", (long long)a->bandwidth->egress_burst);
        }
        hull_jw_end_object(&w);
    }
    if (a->pod_cidr && *a->pod_cidr) {
        hull_jw_key(&w, "ipRanges");
        hull_jw_begin_array(&w);
        hull_jw_begin_array(&w);
        hull_jw_begin_object(&w);
        hull_jw_kv_string(&w, "subnet", a->pod_cidr);
        hull_jw_end_object(&w);
        hull_jw_end_array(&w);
        hull_jw_end_array(&w);
    }
    if (a->n_dns_servers || a->n_dns_searches || a->n_dns_options) {
        hull_jw_key(&w, "dns");
        hull_jw_begin_object(&w);
        hull_jw_key(&w, "servers");
        emit_str_array(&w, a->dns_servers, a->n_dns_servers);
        hull_jw_key(&w, "searches");
        emit_str_array(&w, a->dns_searches, a->n_dns_searches);
        hull_jw_key(&w, "options");
        emit_str_array(&w, a->dns_options, a->n_dns_options);
        hull_jw_end_object(&w);
    }
    hull_jw_end_object(&w);
    _cleanup_free_ char *text = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    yajl_val v = yajl_tree_parse(text, NULL, 0);
    if (v == NULL)
        abort();
    return v;
}

/* The stdin of one plugin (libcni's buildOneConfig): the plugin's object with name and
 * cniVersion of the list, prevResult, and runtimeConfig holding the capability arguments the
 * plugin declares in "capabilities". */
static char *plugin_stdin(const struct cni_network *net, size_t i, yajl_val prev, yajl_val caps)
{
    yajl_val p = net->plugins[i];
    yajl_val declared = hull_json_get(p, "capabilities");
    bool any_cap = false;
    if (caps && declared && YAJL_IS_OBJECT(declared))
        for (size_t k = 0; k < declared->u.object.len; k++)
            if (YAJL_IS_TRUE(declared->u.object.values[k]) &&
                hull_json_get(caps, declared->u.object.keys[k]))
                any_cap = true;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    for (size_t k = 0; k < p->u.object.len; k++) {
        const char *key = p->u.object.keys[k];
        if (strcmp(key, "name") == 0 || strcmp(key, "cniVersion") == 0 ||
            (prev && strcmp(key, "prevResult") == 0) ||
            (any_cap && strcmp(key, "runtimeConfig") == 0))
            continue;
        /* a single-plugin .conf is the whole document */
        if (net->n_plugins == 1 && p == net->doc &&
            (strcmp(key, "plugins") == 0 || strcmp(key, "disableCheck") == 0))
            continue;
        hull_jw_key(&w, key);
        cni_json_emit(&w, p->u.object.values[k]);
    }
    hull_jw_kv_string(&w, "name", net->name);
    hull_jw_kv_string(&w, "cniVersion", net->version);
    if (prev) {
        hull_jw_key(&w, "prevResult");
        cni_json_emit(&w, prev);
    }
    if (any_cap) {
        hull_jw_key(&w, "runtimeConfig");
        hull_jw_begin_object(&w);
        for (size_t k = 0; k < declared->u.object.len; k++) {
            const char *cap = declared->u.object.keys[k];
            yajl_val v = hull_json_get(caps, cap);
            if (YAJL_IS_TRUE(declared->u.object.values[k]) && v) {
                hull_jw_key(&w, cap);
                cni_json_emit(&w, v);
            }
        }
        hull_jw_end_object(&w);
    }
    hull_jw_end_object(&w);
    char *s = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return s;
}

/* ---- cache -------------------------------------------------------------------------------- */

static char *cache_path(const struct cni_exec *ex, const char *net, const char *cid,
                        const char *ifname)
{
    return xasprintf("%s/results/%s-%s-%s", ex->cache_dir, net, cid, ifname ? ifname : "eth0");
}

static bool cache_key_ok(const char *net, const char *cid, const char *ifname)
{
    return net && hull_is_safe_component(net) && cid && hull_is_safe_component(cid) &&
           (!ifname || hull_is_safe_component(ifname));
}

static int cache_write(const struct cni_exec *ex, const struct cni_network *net,
                       const struct cni_attachment *a, const char *cni_args, yajl_val caps,
                       yajl_val result, hull_error_t *err)
{
    _cleanup_free_ char *dir = xasprintf("%s/results", ex->cache_dir);
    int r = hull_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "kind", "cniCacheV1");
    hull_jw_kv_string(&w, "containerId", a->container_id);
    hull_jw_kv_string(&w, "ifName", a->ifname ? a->ifname : "eth0");
    hull_jw_kv_string(&w, "networkName", net->name);
    hull_jw_kv_string(&w, "netns", a->netns ? a->netns : "");
    hull_jw_kv_string(&w, "cniArgs", cni_args);
    hull_jw_kv_string(&w, "config", net->text);
    hull_jw_kv_bool(&w, "single", net->n_plugins == 1 && net->plugins[0] == net->doc);
    hull_jw_key(&w, "capabilityArgs");
    cni_json_emit(&w, caps);
    hull_jw_key(&w, "result");
    cni_json_emit(&w, result);
    hull_jw_end_object(&w);
    size_t len = 0;
    _cleanup_free_ char *text = hull_jw_finish(&w, &len);
    hull_jw_free(&w);
    _cleanup_free_ char *path = cache_path(ex, net->name, a->container_id, a->ifname);
    /* Atomic but not waited on the disk, as libcni writes its cache: it serves DEL while the
     * host is up (a hulld crash keeps it); after a power loss the plugins' own state it
     * describes (host-local's leases, written without fsync too) is no more durable, and
     * cni_del falls back to the current config when the entry is missing or unreadable. */
    return hull_write_file_atomic_flags(path, text, len, 0600, HULL_ATOMIC_NOSYNC, err);
}

static int cache_read(const struct cni_exec *ex, const char *network_name, const char *cid,
                      const char *ifname, yajl_val *out, hull_error_t *err)
{
    if (!cache_key_ok(network_name, cid, ifname))
        return hull_error_setx(err, EINVAL, "invalid CNI cache key");
    _cleanup_free_ char *path = cache_path(ex, network_name, cid, ifname);
    if (access(path, F_OK) < 0)
        return hull_error_setx(err, ENOENT, "no cached CNI result for %s", cid);
    return hull_json_parse_file(path, CNI_CACHE_MAX, out, err);
}

int cni_cached_result(const struct cni_exec *ex, const char *network_name, const char *container_id,
                      const char *ifname, struct cni_result **out, hull_error_t *err)
{
    _cleanup_yajl_ yajl_val doc = NULL;
    int r = cache_read(ex, network_name, container_id, ifname, &doc, err);
    if (r < 0)
        return r;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    cni_json_emit(&w, hull_json_get(doc, "result"));
    _cleanup_free_ char *text = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    r = cni_result_parse(text, out, err);
    if (r == 0)
        (*out)->network_name = xstrdup(network_name);
    return r;
}

/* ---- ADD / DEL / CHECK -------------------------------------------------------------------- */

static int run_list_del(const struct cni_exec *ex, const struct cni_network *net,
                        const struct cni_attachment *a, const char *cni_args, yajl_val caps,
                        yajl_val prev, hull_error_t *err)
{
    int ret = 0;
    for (size_t i = net->n_plugins; i-- > 0;) {
        _cleanup_free_ char *in = plugin_stdin(net, i, prev, caps);
        _cleanup_free_ char *out = NULL;
        _cleanup_error_ hull_error_t e = NULL;
        const char *type = hull_json_get_string(net->plugins[i], "type", "");
        int r = cni_exec_plugin(ex, type, "DEL", a, cni_args, in, &out, &e);
        if (r < 0 && ret == 0) {
            /* go on with the other plugins, report the first failure */
            ret = hull_error_setx(err, hull_error_status(&e), "%s", hull_error_msg(&e));
        }
    }
    return ret;
}

int cni_add(const struct cni_exec *ex, struct cni_network *net, const struct cni_attachment *a,
            struct cni_result **out, hull_error_t *err)
{
    if (!cache_key_ok(net->name, a->container_id, a->ifname))
        return hull_error_setx(err, EINVAL, "invalid container id or interface name");
    _cleanup_free_ char *args = NULL;
    int r = cni_build_args(a, &args, err);
    if (r < 0)
        return r;
    _cleanup_yajl_ yajl_val caps = build_caps(a);
    _cleanup_yajl_ yajl_val prev = NULL;
    _cleanup_free_ char *last = NULL;
    for (size_t i = 0; i < net->n_plugins; i++) {
        _cleanup_free_ char *in = plugin_stdin(net, i, prev, caps);
        _cleanup_free_ char *outj = NULL;
        const char *type = hull_json_get_string(net->plugins[i], "type", "");
        r = cni_exec_plugin(ex, type, "ADD", a, args, in, &outj, err);
        if (r == 0) {
            yajl_val next = yajl_tree_parse(outj, NULL, 0);
            if (next == NULL || !YAJL_IS_OBJECT(next)) {
                if (next)
                    yajl_tree_free(next);
                r = hull_error_setx(err, EBADMSG, "plugin type=\"%s\" (ADD) returned invalid JSON",
                                    type);
            } else {
                if (prev)
                    yajl_tree_free(prev);
                prev = next;
                free(last);
                last = hull_steal(outj);
            }
        }
        if (r < 0) {
            _cleanup_error_ hull_error_t derr = NULL;
            if (run_list_del(ex, net, a, args, caps, prev, &derr) < 0)
                log_warn("cni: cleanup after failed ADD of %s: %s", a->container_id,
                         hull_error_msg(&derr));
            return hull_error_wrap(err, "network \"%s\"", net->name);
        }
    }
    if (last == NULL)
        last = xstrdup("{}");
    /* every plugin ran, nothing is cached yet: a DEL must find the pod's runtime config from
     * its caller (tests/integration/test_robust_cni.py) */
    hull_crash_point("runpod:cni-before-cache");
    r = cache_write(ex, net, a, args, caps, prev, err);
    if (r == 0 && cni_result_parse(last, out, err) < 0) {
        /* an answer that is no CNI result: the plugin is broken, not the request */
        _cleanup_free_ char *why = xstrdup(hull_error_msg(err));
        hull_error_free(err);
        r = hull_error_setx(err, EBADMSG, "network \"%s\": malformed result: %s", net->name, why);
    }
    if (r < 0) {
        _cleanup_error_ hull_error_t derr = NULL;
        run_list_del(ex, net, a, args, caps, prev, &derr);
        _cleanup_free_ char *path = cache_path(ex, net->name, a->container_id, a->ifname);
        unlink(path);
        return r;
    }
    (*out)->network_name = xstrdup(net->name);
    return 0;
}

/* The network of the cache entry "<network>-<cid>-<ifname>", when the caller does not know it
 * (a crash between ADD and recording the network name). */
static char *find_cached_network(const struct cni_exec *ex, const char *cid, const char *ifname)
{
    if (!cache_key_ok("x", cid, ifname))
        return NULL;
    _cleanup_free_ char *dir = xasprintf("%s/results", ex->cache_dir);
    _cleanup_free_ char *suffix = xasprintf("-%s-%s", cid, ifname ? ifname : "eth0");
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    size_t sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl > sl && strcmp(de->d_name + nl - sl, suffix) == 0)
            return xstrndup(de->d_name, nl - sl);
    }
    return NULL;
}

int cni_del(const struct cni_exec *ex, struct cni_network *net, const char *network_name,
            const struct cni_attachment *a, hull_error_t *err)
{
    _cleanup_free_ char *found = NULL;
    if (network_name == NULL)
        network_name = found = find_cached_network(ex, a->container_id, a->ifname);
    if (network_name == NULL && net)
        network_name = net->name;
    _cleanup_yajl_ yajl_val cache = NULL;
    _cleanup_error_ hull_error_t cerr = NULL;
    int r = network_name ? cache_read(ex, network_name, a->container_id, a->ifname, &cache, &cerr)
                         : -ENOENT;
    if (r < 0 && r != -ENOENT)
        log_warn("cni: ignoring unreadable cache entry: %s", hull_error_msg(&cerr));
    if (cache) {
        const char *text = hull_json_get_string(cache, "config", NULL);
        struct cni_network *cached = NULL;
        _cleanup_error_ hull_error_t perr = NULL;
        if (text &&
            cni_network_parse(text, "cached network config",
                              hull_json_get_bool(cache, "single", false), &cached, &perr) == 0) {
            const char *args = hull_json_get_string(cache, "cniArgs", "");
            r = run_list_del(ex, cached, a, args, hull_json_get(cache, "capabilityArgs"),
                             hull_json_get(cache, "result"), err);
            cni_network_unref(cached);
            if (r < 0)
                return hull_error_wrap(err, "network \"%s\"", network_name);
            _cleanup_free_ char *path = cache_path(ex, network_name, a->container_id, a->ifname);
            unlink(path);
            return 0;
        }
        log_warn("cni: cache entry of %s unusable (%s); using the current config", a->container_id,
                 hull_error_msg(&perr));
    }
    if (net == NULL)
        return 0;
    _cleanup_free_ char *args = NULL;
    r = cni_build_args(a, &args, err);
    if (r < 0)
        return r;
    _cleanup_yajl_ yajl_val caps = build_caps(a);
    r = run_list_del(ex, net, a, args, caps, NULL, err);
    if (r < 0)
        return hull_error_wrap(err, "network \"%s\"", net->name);
    if (cache) {
        _cleanup_free_ char *path = cache_path(ex, network_name, a->container_id, a->ifname);
        unlink(path);
    }
    return 0;
}

int cni_check(const struct cni_exec *ex, const char *network_name, const struct cni_attachment *a,
              hull_error_t *err)
{
    _cleanup_yajl_ yajl_val cache = NULL;
    int r = cache_read(ex, network_name, a->container_id, a->ifname, &cache, err);
    if (r < 0)
        return r;
    const char *text = hull_json_get_string(cache, "config", "");
    _cleanup_cni_network_ struct cni_network *net = NULL;
    r = cni_network_parse(text, "cached network config", hull_json_get_bool(cache, "single", false),
                          &net, err);
    if (r < 0)
        return r;
    if (cni_version_cmp(net->version, "0.4.0") < 0 || net->disable_check)
        return hull_error_setx(err, EOPNOTSUPP, "network \"%s\": CHECK not supported",
                               network_name);
    const char *args = hull_json_get_string(cache, "cniArgs", "");
    yajl_val caps = hull_json_get(cache, "capabilityArgs");
    yajl_val prev = hull_json_get(cache, "result");
    for (size_t i = 0; i < net->n_plugins && r == 0; i++) {
        _cleanup_free_ char *in = plugin_stdin(net, i, prev, caps);
        _cleanup_free_ char *out = NULL;
        r = cni_exec_plugin(ex, hull_json_get_string(net->plugins[i], "type", ""), "CHECK", a, args,
                            in, &out, err);
    }
    return r < 0 ? hull_error_wrap(err, "network \"%s\"", network_name) : 0;
}
