/* hull-oci commands (runc-compatible CLI). */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <strings.h>
#include <time.h>

#define OPT_FLAG  0
#define OPT_VALUE 1

struct opt_def {
    const char *long_name;
    char short_name;
    int kind;
};

struct opts {
    const struct opt_def *defs;
    const char *values[16];
    bool set[16];
    char **pos;
    size_t n_pos;
};

/* Options may come before or after positionals; `stop_after` stops option parsing after that
 * many positionals (exec ID CMD...). */
static int parse_opts(int argc, char **argv, const struct opt_def *defs, size_t stop_after,
                      struct opts *o, hull_error_t *err)
{
    memset(o, 0, sizeof(*o));
    o->defs = defs;
    o->pos = xmalloc0((size_t)(argc + 1) * sizeof(char *));
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0' || (stop_after > 0 && o->n_pos >= stop_after)) {
            o->pos[o->n_pos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        const char *name = a + 1, *val = NULL;
        bool is_long = a[1] == '-';
        if (is_long)
            name = a + 2;
        else if (name[0] == '-')
            name++;
        _cleanup_free_ char *key = NULL;
        const char *eq = strchr(name, '=');
        if (eq) {
            key = xstrndup(name, (size_t)(eq - name));
            val = eq + 1;
        } else {
            key = xstrdup(name);
        }
        int found = -1;
        for (int j = 0; defs && defs[j].long_name; j++) {
            if (strcmp(key, defs[j].long_name) == 0 ||
                (strlen(key) == 1 && key[0] == defs[j].short_name))
                found = j;
        }
        if (found < 0)
            return hull_error_setx(err, EINVAL, "flag provided but not defined: %s", a);
        if (defs[found].kind == OPT_VALUE && val == NULL) {
            if (i + 1 >= argc)
                return hull_error_setx(err, EINVAL, "flag needs an argument: %s", a);
            val = argv[++i];
        }
        o->set[found] = true;
        o->values[found] = val ? val : "true";
    }
    return 0;
}

static void opts_free(struct opts *o)
{
    free(o->pos);
}

static const char *opt(const struct opts *o, const char *name)
{
    for (int j = 0; o->defs && o->defs[j].long_name; j++)
        if (strcmp(o->defs[j].long_name, name) == 0 && o->set[j])
            return o->values[j];
    return NULL;
}

static bool flag(const struct opts *o, const char *name)
{
    const char *v = opt(o, name);
    return v && strcmp(v, "false") != 0;
}

static int need_id(const struct opts *o, const char *cmd, const char **id, hull_error_t *err)
{
    if (o->n_pos < 1)
        return hull_error_setx(err, EINVAL, "%s: container id cannot be empty", cmd);
    *id = o->pos[0];
    if (!oci_id_valid(*id))
        return hull_error_setx(err, EINVAL, "invalid container id \"%s\"", *id);
    return 0;
}

void oci_report_error(const struct oci_global *g, const char *msg)
{
    _cleanup_free_ char *line = xasprintf("hull-oci: %s\n", msg);
    ssize_t w = write(STDERR_FILENO, line, strlen(line));
    (void)w;
    if (g == NULL || g->log_path == NULL)
        return;
    _cleanup_close_ int fd =
        open(g->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    char ts[64];
    hull_format_rfc3339nano(hull_now_ns(), ts, sizeof(ts));
    _cleanup_free_ char *entry = NULL;
    if (g->log_json) {
        struct hull_json_writer jw;
        hull_jw_init(&jw, false);
        hull_jw_begin_object(&jw);
        hull_jw_kv_string(&jw, "level", "error");
        hull_jw_kv_string(&jw, "msg", msg);
        hull_jw_kv_string(&jw, "time", ts);
        hull_jw_end_object(&jw);
        _cleanup_free_ char *j = hull_jw_finish(&jw, NULL);
        hull_jw_free(&jw);
        entry = xasprintf("%s\n", j);
    } else {
        entry = xasprintf("time=\"%s\" level=error msg=\"%s\"\n", ts, msg);
    }
    w = write(fd, entry, strlen(entry));
    (void)w;
}

/* ---- create ---------------------------------------------------------------------------- */
static char *now_rfc3339(void)
{
    char ts[64];
    hull_format_rfc3339nano(hull_now_ns(), ts, sizeof(ts));
    return xstrdup(ts);
}

static int cmd_create(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {
        {"bundle", 'b', OPT_VALUE},
        {"pid-file", 0, OPT_VALUE},
        {"console-socket", 0, OPT_VALUE},
        {"no-pivot", 0, OPT_FLAG},
        {"no-new-keyring", 0, OPT_FLAG},
        {"preserve-fds", 0, OPT_VALUE},
        {NULL, 0, 0},
    };
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "create", &id, err)) < 0)
        return r;
    const char *bundle = opt(&o, "bundle") ? opt(&o, "bundle") : ".";
    _cleanup_oci_spec_ struct oci_spec *spec = NULL;
    if ((r = oci_spec_load(bundle, &spec, err)) < 0)
        return hull_error_wrap(err, "create container \"%s\"", id);
    _cleanup_free_ char *dir = hull_path_join(g->root, id);
    _cleanup_free_ char *fifo = hull_path_join(dir, "exec.fifo");
    _cleanup_cgroup_layout_ struct hull_cgroup_layout layout = {0};
    _cleanup_hull_cgroup_ struct hull_cgroup cg = {0};
    _cleanup_free_ char *self_cg = NULL;
    bool made_dir = false, cg_made = false;
    pid_t pid = -1;
    if ((r = hull_mkdir_p(g->root, 0700, err)) < 0)
        goto fail;
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            r = hull_error_setx(err, EEXIST, "container \"%s\" already exists", id);
        else
            r = hull_error_set(err, errno, "mkdir `%s`", dir);
        goto fail;
    }
    made_dir = true;
    {
        _cleanup_free_ char *src = hull_path_join(spec->bundle, "config.json");
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        _cleanup_free_ char *dst = hull_path_join(dir, "config.json");
        if ((r = hull_read_file(src, 4u << 20, &text, &len, err)) < 0 ||
            (r = hull_write_file_atomic_flags(
                 dst, text, len, 0600, HULL_ATOMIC_NOSYNC | HULL_ATOMIC_PROCESS_TMP, err)) < 0)
            goto fail;
    }
    if ((r = hull_cgroup_layout_detect(NULL, &layout, err)) < 0)
        goto fail;
    if ((r = hull_read_file("/proc/self/cgroup", 1u << 20, &self_cg, NULL, err)) < 0)
        goto fail;
    if (g->systemd_cgroup)
        r = hull_cgroup_systemd_resolve(&layout, spec->cgroups_path, id, &cg, err);
    else
        r = hull_cgroup_resolve(&layout, self_cg, spec->cgroups_path, id, &cg, err);
    if (r < 0)
        goto fail;
    cg_made = true;
    struct oci_run_opts ro = {
        .root = g->root,
        .id = id,
        .pid_file = opt(&o, "pid-file"),
        .console_socket = opt(&o, "console-socket"),
        .no_pivot = flag(&o, "no-pivot"),
        .preserve_fds = opt(&o, "preserve-fds") ? atoi(opt(&o, "preserve-fds")) : 0,
        .fifo = fifo,
        .state_dir = dir,
    };
    if ((r = oci_container_create(spec, &cg, &ro, &pid, err)) < 0)
        goto fail;
    struct oci_state st = {
        .id = (char *)id,
        .dir = dir,
        .pid = pid,
        .bundle = spec->bundle,
        .rootfs = spec->rootfs,
        .cgroup = cg,
        .exec_fd = ro.exec_fd,
    };
    st.created = now_rfc3339();
    if (oci_proc_starttime(pid, &st.starttime, NULL) < 0)
        st.starttime = 0;
    r = oci_state_save(&st, err);
    free(st.created);
    if (r < 0)
        goto fail;
    if (ro.pid_file) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%d", (int)pid);
        if ((r = hull_write_file_atomic_flags(ro.pid_file, buf, strlen(buf), 0644,
                                              HULL_ATOMIC_NOSYNC | HULL_ATOMIC_PROCESS_TMP, err)) <
            0)
            goto fail;
    }
    return 0;
fail:
    if (pid > 0)
        kill(pid, SIGKILL);
    if (cg_made) {
        _cleanup_error_ hull_error_t e = NULL;
        if (pid > 0)
            hull_cgroup_kill(&cg, SIGKILL, &e);
        hull_error_free(&e);
        oci_cgroup_destroy(&cg, &e);
    }
    if (made_dir) {
        _cleanup_error_ hull_error_t e = NULL;
        hull_rm_rf(dir, &e);
    }
    if (hull_error_status(err) == EEXIST)
        return -EEXIST;
    return hull_error_wrap(err, "create container \"%s\"", id);
}

/* ---- start ----------------------------------------------------------------------------- */
static bool pid_alive(struct oci_state *st)
{
    uint64_t start;
    bool zombie;
    return oci_proc_starttime(st->pid, &start, &zombie) == 0 && !zombie && start == st->starttime;
}

/* Signals the init recorded in st, never a process that got its pid after it exited: the
 * pid is pinned with a pidfd before its start time is compared.  -ESRCH when the init is
 * gone. */
static int signal_init(struct oci_state *st, int sig)
{
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
    if (pidfd < 0 && errno != ENOSYS)
        return -errno;
    if (!pid_alive(st))
        return -ESRCH;
    int r =
        pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) : kill(st->pid, sig);
    return r < 0 ? -errno : 0;
}

/* Takes the init's start pipe (write end): pidfd_getfd(2) on a pidfd checked against the
 * recorded start time, so a recycled pid can never be written to. */
static int init_start_pipe(struct oci_state *st, hull_error_t *err)
{
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
    if (pidfd < 0 && errno != ENOSYS)
        return hull_error_set(err, errno, "pidfd_open %d", (int)st->pid);
    if (!pid_alive(st))
        return hull_error_setx(err, ESRCH, "the init process exited");
    int fd = -1;
    if (pidfd >= 0)
        fd = (int)syscall(SYS_pidfd_getfd, pidfd, st->exec_fd, 0);
    if (fd < 0 && (pidfd < 0 || errno == ENOSYS)) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)st->pid, st->exec_fd);
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (fd < 0)
        return hull_error_set(err, errno, "take the init's start pipe");
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISFIFO(sb.st_mode)) {
        close(fd);
        return hull_error_setx(err, EIO, "fd %d of the init is not its start pipe", st->exec_fd);
    }
    return fd;
}

/* Writes the start byte and waits until the init has taken it and closed the pipe: when
 * `start` returns, the init is past the barrier (as with runc's exec fifo). */
static int release_init(struct oci_state *st, hull_error_t *err)
{
    _cleanup_close_ int fd = init_start_pipe(st, err);
    if (fd < 0)
        return fd;
    ssize_t w;
    do {
        w = write(fd, "0", 1);
    } while (w < 0 && errno == EINTR);
    if (w != 1)
        return hull_error_set(err, w < 0 ? errno : EIO, "write the start pipe");
    for (int i = 0; i < 6000; i++) {
        /* the byte was read: the init is past the barrier */
        int left = 1;
        if (ioctl(fd, FIONREAD, &left) == 0 && left == 0)
            return 0;
        /* POLLERR on a write end: no reader left.  The init closes its end right after
         * reading, so with the init alive it has started (a concurrent start may have left
         * its own byte behind); otherwise it died waiting. */
        struct pollfd pfd = {.fd = fd, .events = 0};
        bool closed = poll(&pfd, 1, i < 100 ? 1 : 10) > 0 && (pfd.revents & POLLERR);
        /* a short-lived process may be gone already: what counts is that the byte was read */
        if (ioctl(fd, FIONREAD, &left) == 0 && left == 0)
            return 0;
        bool alive = pid_alive(st);
        if (closed && alive)
            return 0;
        if (!alive)
            break;
    }
    return hull_error_setx(err, EIO, "the init process exited");
}

/* Containers created by an older hull-oci wait on exec.fifo itself. */
static int release_init_fifo(struct oci_state *st, const char *fifo, hull_error_t *err)
{
    _cleanup_close_ int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return hull_error_set(err, errno, "open exec fifo");
    for (int i = 0; i < 6000; i++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, 10);
        if (n > 0 && (pfd.revents & POLLIN)) {
            char c;
            if (read(fd, &c, 1) == 1)
                return 0;
        }
        if (!pid_alive(st))
            break;
    }
    return hull_error_setx(err, EIO, "the init process exited");
}

static int cmd_start(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, NULL, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "start", &id, err)) < 0)
        return r;
    _cleanup_oci_state_ struct oci_state st = {0};
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    int status = oci_state_status(&st);
    if (status != OCI_CREATED) {
        r = hull_error_setx(err, EINVAL,
                            status == OCI_STOPPED
                                ? "cannot start container \"%s\": it has stopped"
                                : "cannot start container \"%s\": it is already started",
                            id);
        return r;
    }
    _cleanup_free_ char *fifo = hull_path_join(st.dir, "exec.fifo");
    r = st.exec_fd > 0 ? release_init(&st, err) : release_init_fifo(&st, fifo, err);
    unlink(fifo);
    if (r < 0)
        hull_error_wrap(err, "start container \"%s\"", id);
    return r;
}

/* ---- state / list / ps --------------------------------------------------------------- */
static int cmd_state(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, NULL, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "state", &id, err)) < 0)
        return r;
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    _cleanup_free_ char *json = oci_state_to_json(&st, oci_state_status(&st), true);
    printf("%s\n", json);
    oci_state_clear(&st);
    return 0;
}

static int cmd_list(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {
        {"format", 'f', OPT_VALUE}, {"quiet", 'q', OPT_FLAG}, {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0)
        return r;
    bool json = opt(&o, "format") && strcmp(opt(&o, "format"), "json") == 0;
    bool quiet = flag(&o, "quiet");
    _cleanup_closedir_ DIR *d = opendir(g->root);
    if (!json && !quiet)
        printf("%-12s%-12s%-12s%-12s%-12s%s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
               "OWNER");
    if (json)
        printf("[");
    bool first = true;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !oci_id_valid(de->d_name))
            continue;
        struct oci_state st;
        _cleanup_error_ hull_error_t e = NULL;
        if (oci_state_load(g->root, de->d_name, &st, &e) < 0)
            continue;
        int status = oci_state_status(&st);
        if (quiet) {
            printf("%s\n", st.id);
        } else if (json) {
            _cleanup_free_ char *j = oci_state_to_json(&st, status, false);
            printf("%s%s", first ? "" : ",", j);
        } else {
            printf("%-12s%-12d%-12s%-12s%-12s%s\n", st.id, status == OCI_STOPPED ? 0 : st.pid,
                   oci_status_name(status), st.bundle, st.created, "root");
        }
        first = false;
        oci_state_clear(&st);
    }
    if (json)
        printf("]\n");
    return 0;
}

static int cmd_ps(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {{"format", 'f', OPT_VALUE}, {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 1, &o, err);
    if (r < 0 || (r = need_id(&o, "ps", &id, err)) < 0)
        return r;
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    _cleanup_free_ pid_t *pids = NULL;
    size_t n = 0;
    if (oci_state_status(&st) == OCI_STOPPED) {
        r = hull_error_setx(err, EINVAL, "container \"%s\" is not running", id);
    } else if ((r = hull_cgroup_pids(&st.cgroup, &pids, &n, err)) == 0) {
        bool json = opt(&o, "format") && strcmp(opt(&o, "format"), "json") == 0;
        if (json) {
            printf("[");
            for (size_t i = 0; i < n; i++)
                printf("%s%d", i ? "," : "", (int)pids[i]);
            printf("]\n");
        } else {
            printf("%-8s %s\n", "PID", "CMD");
            for (size_t i = 0; i < n; i++) {
                char path[64], comm[64] = "?";
                snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[i]);
                FILE *f = fopen(path, "re");
                if (f) {
                    if (fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = '\0';
                    fclose(f);
                }
                printf("%-8d %s\n", (int)pids[i], comm);
            }
        }
    }
    oci_state_clear(&st);
    return r;
}

/* ---- kill / delete ----------------------------------------------------------------------- */
static const struct {
    const char *name;
    int sig;
} signals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

static int parse_signal(const char *s)
{
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (end && *end == '\0' && end != s)
        return (n > 0 && n < NSIG) ? (int)n : -1;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        if (strcasecmp(s, signals[i].name) == 0)
            return signals[i].sig;
    return -1;
}

static int cmd_kill(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {{"all", 'a', OPT_FLAG}, {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "kill", &id, err)) < 0)
        return r;
    int sig = SIGTERM;
    if (o.n_pos > 1 && (sig = parse_signal(o.pos[1])) < 0)
        return hull_error_setx(err, EINVAL, "unknown signal \"%s\"", o.pos[1]);
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    int status = oci_state_status(&st);
    if (status == OCI_STOPPED && !flag(&o, "all")) {
        r = hull_error_setx(err, ESRCH, "container \"%s\" is not running", id);
    } else if (flag(&o, "all")) {
        r = hull_cgroup_kill(&st.cgroup, sig, err);
    } else if ((r = signal_init(&st, sig)) < 0) {
        r = r == -ESRCH ? hull_error_setx(err, ESRCH, "container \"%s\" is not running", id)
                        : hull_error_set(err, -r, "kill container \"%s\"", id);
    }
    oci_state_clear(&st);
    return r;
}

static void wait_dead(struct oci_state *st)
{
    for (int i = 0; i < 2000 && pid_alive(st); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static int destroy(struct oci_state *st, hull_error_t *err)
{
    _cleanup_error_ hull_error_t e = NULL;
    signal_init(st, SIGKILL);
    _cleanup_free_ pid_t *left = NULL;
    size_t n_left = 0;
    if (st->cgroup.n > 0 && hull_cgroup_pids(&st->cgroup, &left, &n_left, &e) < 0)
        n_left = 1; /* unknown: be thorough */
    hull_error_free(&e);
    if (n_left > 0) {
        bool frozen = false;
        if (hull_cgroup_is_frozen(&st->cgroup, &frozen) == 0 && frozen)
            hull_cgroup_freeze(&st->cgroup, false, &e);
        hull_error_free(&e);
        hull_cgroup_kill(&st->cgroup, SIGKILL, &e);
        hull_error_free(&e);
    }
    wait_dead(st);
    int r = oci_cgroup_destroy(&st->cgroup, err);
    if (r < 0)
        return r;
    return hull_rm_rf(st->dir, err);
}

static int cmd_delete(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {{"force", 'f', OPT_FLAG}, {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "delete", &id, err)) < 0)
        return r;
    bool force = flag(&o, "force");
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0) {
        if (hull_error_status(err) == ENOENT) {
            /* a half-created container may have a directory without state.json */
            _cleanup_free_ char *dir = hull_path_join(g->root, id);
            _cleanup_error_ hull_error_t e = NULL;
            hull_rm_rf(dir, &e);
            if (force) {
                hull_error_free(err);
                return 0;
            }
        }
        return r;
    }
    int status = oci_state_status(&st);
    if ((status == OCI_RUNNING || status == OCI_PAUSED) && !force)
        r = hull_error_setx(err, EBUSY, "cannot delete container \"%s\" that is not stopped: %s",
                            id, oci_status_name(status));
    else
        r = destroy(&st, err);
    if (r < 0 && hull_error_status(err) != EBUSY)
        hull_error_wrap(err, "delete container \"%s\"", id);
    oci_state_clear(&st);
    return r;
}

/* ---- checkpoint ------------------------------------------------------------------------ */
/* The CRIU options checkpoint and restore share (runc's names). */
static struct oci_checkpoint_opts criu_opts(const struct oci_global *g, struct opts *o)
{
    return (struct oci_checkpoint_opts){
        .image_path = opt(o, "image-path"),
        .work_path = opt(o, "work-path"),
        .manage_cgroups_mode = opt(o, "manage-cgroups-mode"),
        .criu = g->criu,
        .tcp_established = flag(o, "tcp-established"),
        .ext_unix_sk = flag(o, "ext-unix-sk"),
        .shell_job = flag(o, "shell-job"),
        .file_locks = flag(o, "file-locks"),
    };
}

static int cmd_checkpoint(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {{"image-path", 0, OPT_VALUE},
                                          {"work-path", 0, OPT_VALUE},
                                          {"parent-path", 0, OPT_VALUE},
                                          {"leave-running", 0, OPT_FLAG},
                                          {"tcp-established", 0, OPT_FLAG},
                                          {"ext-unix-sk", 0, OPT_FLAG},
                                          {"shell-job", 0, OPT_FLAG},
                                          {"file-locks", 0, OPT_FLAG},
                                          {"pre-dump", 0, OPT_FLAG},
                                          {"auto-dedup", 0, OPT_FLAG},
                                          {"manage-cgroups-mode", 0, OPT_VALUE},
                                          {"lazy-pages", 0, OPT_FLAG},
                                          {"page-server", 0, OPT_VALUE},
                                          {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "checkpoint", &id, err)) < 0)
        return r;
    if (flag(&o, "lazy-pages") || opt(&o, "page-server"))
        return hull_error_setx(err, EOPNOTSUPP,
                               "checkpoint: lazy pages and a page server are "
                               "not supported");
    struct oci_checkpoint_opts co = criu_opts(g, &o);
    co.parent_path = opt(&o, "parent-path");
    co.leave_running = flag(&o, "leave-running");
    co.pre_dump = flag(&o, "pre-dump");
    co.auto_dedup = flag(&o, "auto-dedup");
    _cleanup_oci_state_ struct oci_state st = {0};
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    int status = oci_state_status(&st);
    if (status != OCI_RUNNING)
        return hull_error_setx(err, EBUSY, "cannot checkpoint container \"%s\": it is %s", id,
                               oci_status_name(status));
    if ((r = oci_checkpoint(g, &st, &co, err)) < 0)
        return hull_error_wrap(err, "checkpoint container \"%s\"", id);
    /* as runc: without --leave-running the dumped container is gone */
    if (!co.leave_running && !co.pre_dump)
        r = destroy(&st, err);
    return r;
}

static int cmd_restore(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {
        {"image-path", 0, OPT_VALUE}, {"work-path", 0, OPT_VALUE},
        {"bundle", 'b', OPT_VALUE},   {"pid-file", 0, OPT_VALUE},
        {"detach", 'd', OPT_FLAG},    {"tcp-established", 0, OPT_FLAG},
        {"ext-unix-sk", 0, OPT_FLAG}, {"shell-job", 0, OPT_FLAG},
        {"file-locks", 0, OPT_FLAG},  {"manage-cgroups-mode", 0, OPT_VALUE},
        {"no-pivot", 0, OPT_FLAG},    {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "restore", &id, err)) < 0)
        return r;
    if (g->systemd_cgroup)
        return hull_error_setx(err, EOPNOTSUPP,
                               "restore: the systemd cgroup driver is not "
                               "supported");
    struct oci_checkpoint_opts co = criu_opts(g, &o);
    const char *bundle = opt(&o, "bundle") ? opt(&o, "bundle") : ".";
    _cleanup_oci_spec_ struct oci_spec *spec = NULL;
    if ((r = oci_spec_load(bundle, &spec, err)) < 0)
        return hull_error_wrap(err, "restore container \"%s\"", id);
    _cleanup_free_ char *dir = hull_path_join(g->root, id);
    _cleanup_cgroup_layout_ struct hull_cgroup_layout layout = {0};
    _cleanup_hull_cgroup_ struct hull_cgroup cg = {0};
    _cleanup_free_ char *self_cg = NULL;
    bool made_dir = false, cg_made = false;
    pid_t pid = -1;
    if ((r = hull_mkdir_p(g->root, 0700, err)) < 0)
        goto fail;
    if (mkdir(dir, 0700) < 0) {
        r = errno == EEXIST ? hull_error_setx(err, EEXIST, "container \"%s\" already exists", id)
                            : hull_error_set(err, errno, "mkdir `%s`", dir);
        goto fail;
    }
    made_dir = true;
    {
        _cleanup_free_ char *src = hull_path_join(spec->bundle, "config.json");
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        _cleanup_free_ char *dst = hull_path_join(dir, "config.json");
        if ((r = hull_read_file(src, 4u << 20, &text, &len, err)) < 0 ||
            (r = hull_write_file_atomic(dst, text, len, 0600, err)) < 0)
            goto fail;
    }
    if ((r = hull_cgroup_layout_detect(NULL, &layout, err)) < 0 ||
        (r = hull_read_file("/proc/self/cgroup", 1u << 20, &self_cg, NULL, err)) < 0 ||
        (r = hull_cgroup_resolve(&layout, self_cg, spec->cgroups_path, id, &cg, err)) < 0)
        goto fail;
    cg_made = true;
    if ((r = hull_cgroup_create(&cg, err)) < 0 ||
        (r = oci_cgroup_apply(&cg, spec->resources, spec, false, err)) < 0 ||
        (r = oci_restore(g, spec, &cg, &co, &pid, err)) < 0)
        goto fail;
    struct oci_state st = {
        .id = (char *)id,
        .dir = dir,
        .pid = pid,
        .bundle = spec->bundle,
        .rootfs = spec->rootfs,
        .cgroup = cg,
    };
    st.created = now_rfc3339();
    if (oci_proc_starttime(pid, &st.starttime, NULL) < 0)
        st.starttime = 0;
    r = oci_state_save(&st, err);
    free(st.created);
    if (r < 0)
        goto fail;
    if (opt(&o, "pid-file")) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%d", (int)pid);
        if ((r = hull_write_file_atomic(opt(&o, "pid-file"), buf, strlen(buf), 0644, err)) < 0)
            goto fail;
    }
    return 0;
fail:
    if (pid > 0)
        kill(pid, SIGKILL);
    if (cg_made) {
        _cleanup_error_ hull_error_t e = NULL;
        hull_cgroup_kill(&cg, SIGKILL, &e);
        hull_error_free(&e);
        oci_cgroup_destroy(&cg, &e);
    }
    if (made_dir) {
        _cleanup_error_ hull_error_t e = NULL;
        hull_rm_rf(dir, &e);
    }
    return hull_error_wrap(err, "restore container \"%s\"", id);
}

/* ---- pause / resume / update ---------------------------------------------------------- */
static int cmd_freeze(const struct oci_global *g, int argc, char **argv, bool freeze,
                      hull_error_t *err)
{
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, NULL, 0, &o, err);
    if (r < 0 || (r = need_id(&o, freeze ? "pause" : "resume", &id, err)) < 0)
        return r;
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    int status = oci_state_status(&st);
    if (freeze && status != OCI_RUNNING)
        r = hull_error_setx(err, EINVAL, "container \"%s\" is not running", id);
    else if (!freeze && status != OCI_PAUSED)
        r = hull_error_setx(err, EINVAL, "container \"%s\" is not paused", id);
    else if ((r = hull_cgroup_freeze(&st.cgroup, freeze, err)) < 0)
        hull_error_wrap(err, "%s container \"%s\"", freeze ? "pause" : "resume", id);
    oci_state_clear(&st);
    return r;
}

static int cmd_update(const struct oci_global *g, int argc, char **argv, hull_error_t *err)
{
    static const struct opt_def defs[] = {{"resources", 'r', OPT_VALUE},
                                          {"memory", 'm', OPT_VALUE},
                                          {"pids-limit", 0, OPT_VALUE},
                                          {"cpu-quota", 0, OPT_VALUE},
                                          {"cpu-period", 0, OPT_VALUE},
                                          {"cpu-share", 0, OPT_VALUE},
                                          {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    int r = parse_opts(argc, argv, defs, 0, &o, err);
    if (r < 0 || (r = need_id(&o, "update", &id, err)) < 0)
        return r;
    _cleanup_free_ char *text = NULL;
    const char *res = opt(&o, "resources");
    if (res) {
        r = hull_read_file(strcmp(res, "-") == 0 ? "/dev/stdin" : res, 1u << 20, &text, NULL, err);
        if (r < 0)
            return r;
    } else {
        /* the few flags CRI-style callers use, turned into a resources object */
        static const struct {
            const char *flag, *group, *key;
        } map[] = {
            {"memory", "memory", "limit"},  {"pids-limit", "pids", "limit"},
            {"cpu-quota", "cpu", "quota"},  {"cpu-period", "cpu", "period"},
            {"cpu-share", "cpu", "shares"},
        };
        static const char *const groups[] = {"memory", "pids", "cpu"};
        struct hull_json_writer w;
        hull_jw_init(&w, false);
        hull_jw_begin_object(&w);
        for (size_t gi = 0; gi < 3; gi++) {
            hull_jw_key(&w, groups[gi]);
            hull_jw_begin_object(&w);
            for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                const char *v = opt(&o, map[i].flag);
                if (v == NULL || strcmp(map[i].group, groups[gi]) != 0)
                    continue;
                char *end = NULL;
                errno = 0;
                long long n = strtoll(v, &end, 10);
                if (errno || end == v || *end) {
                    hull_jw_free(&w);
                    return hull_error_setx(err, EINVAL, "update: --%s `%s` is not an integer",
                                           map[i].flag, v);
                }
                hull_jw_kv_int(&w, map[i].key, n);
            }
            hull_jw_end_object(&w);
        }
        hull_jw_end_object(&w);
        text = hull_jw_finish(&w, NULL);
        hull_jw_free(&w);
    }
    /* the parser of config.json's linux.resources */
    _cleanup_cgroup_resources_ struct hull_cgroup_resources typed;
    if ((r = hull_ocispec_resources_parse(text, &typed, err)) < 0)
        return hull_error_wrap(err, "update: resources");
    struct oci_state st;
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return r;
    if (oci_state_status(&st) == OCI_STOPPED)
        r = hull_error_setx(err, EINVAL, "container \"%s\" is not running", id);
    else if ((r = hull_cgroup_systemd_update(&st.cgroup, &typed, err)) < 0 ||
             (r = oci_cgroup_apply(&st.cgroup, &typed, NULL, true, err)) < 0)
        hull_error_wrap(err, "update container \"%s\"", id);
    oci_state_clear(&st);
    return r;
}

/* ---- exec ------------------------------------------------------------------------------ */
static int cmd_exec(const struct oci_global *g, int argc, char **argv, int *exit_code,
                    hull_error_t *err)
{
    static const struct opt_def defs[] = {{"process", 'p', OPT_VALUE},
                                          {"detach", 'd', OPT_FLAG},
                                          {"pid-file", 0, OPT_VALUE},
                                          {"tty", 't', OPT_FLAG},
                                          {"console-socket", 0, OPT_VALUE},
                                          {"cwd", 0, OPT_VALUE},
                                          {"env", 'e', OPT_VALUE},
                                          {"user", 'u', OPT_VALUE},
                                          {"preserve-fds", 0, OPT_VALUE},
                                          {"no-new-privs", 0, OPT_FLAG},
                                          {NULL, 0, 0}};
    __attribute__((cleanup(opts_free))) struct opts o;
    const char *id = NULL;
    *exit_code = 255;
    int r = parse_opts(argc, argv, defs, 1, &o, err);
    if (r < 0 || (r = need_id(&o, "exec", &id, err)) < 0)
        return r;
    _cleanup_oci_state_ struct oci_state st = {0};
    if ((r = oci_state_load(g->root, id, &st, err)) < 0)
        return hull_error_wrap(err, "exec failed");
    _cleanup_oci_spec_ struct oci_spec *spec = NULL;
    _cleanup_oci_process_ struct oci_process proc = {0};
    _cleanup_yajl_ yajl_val ptree = NULL;
    int status = oci_state_status(&st);
    if (status == OCI_STOPPED)
        return hull_error_setx(err, EINVAL, "cannot exec in a stopped container \"%s\"", id);
    if (status == OCI_PAUSED)
        return hull_error_setx(err, EINVAL, "cannot exec in a paused container \"%s\"", id);
    if (st.config_json && (r = oci_spec_parse(st.config_json, st.bundle, &spec, err)) < 0)
        return r;
    const char *pfile = opt(&o, "process");
    if (pfile) {
        _cleanup_free_ char *text = NULL;
        if ((r = hull_read_file(pfile, 4u << 20, &text, NULL, err)) < 0 ||
            (r = hull_json_parse(text, "process.json", &ptree, err)) < 0 ||
            (r = oci_process_parse(ptree, &proc, err)) < 0)
            return r;
        /* no capabilities object: the container's own sets, never hull-oci's full set */
        if (!proc.caps.set && spec && spec->has_process)
            proc.caps = spec->process.caps;
    } else {
        if (o.n_pos < 2)
            return hull_error_setx(err, EINVAL, "exec: no command given (use --process or ARGS)");
        if (spec == NULL || !spec->has_process)
            return hull_error_setx(err, EINVAL, "exec: container \"%s\" has no process template",
                                   id);
        if ((r = oci_process_from_model(spec->model->process, &proc, err)) < 0)
            return r;
        hull_strv_free(proc.args);
        proc.args = xmalloc0((o.n_pos) * sizeof(char *));
        for (size_t i = 1; i < o.n_pos; i++)
            proc.args[i - 1] = xstrdup(o.pos[i]);
        if (opt(&o, "cwd")) {
            free(proc.cwd);
            proc.cwd = xstrdup(opt(&o, "cwd"));
        }
        if (opt(&o, "env")) {
            size_t n = hull_strv_len(proc.env);
            proc.env = xrealloc(proc.env, (n + 2) * sizeof(char *));
            proc.env[n] = xstrdup(opt(&o, "env"));
            proc.env[n + 1] = NULL;
        }
        if (opt(&o, "user")) {
            unsigned uid = 0, gid = 0;
            int n = sscanf(opt(&o, "user"), "%u:%u", &uid, &gid);
            if (n < 1)
                return hull_error_setx(err, EINVAL, "exec: bad --user `%s`", opt(&o, "user"));
            proc.user.uid = uid;
            proc.user.gid = gid;
            proc.user.gids[0] = gid;
        }
        proc.terminal = flag(&o, "tty");
        if (flag(&o, "no-new-privs"))
            proc.no_new_privileges = true;
    }
    if (flag(&o, "tty"))
        proc.terminal = true;
    struct oci_run_opts ro = {
        .root = g->root,
        .id = id,
        .pid_file = opt(&o, "pid-file"),
        .console_socket = opt(&o, "console-socket"),
        .detach = flag(&o, "detach"),
        .preserve_fds = opt(&o, "preserve-fds") ? atoi(opt(&o, "preserve-fds")) : 0,
    };
    r = oci_container_exec(&st, spec, &proc, &ro, exit_code, err);
    if (r < 0)
        hull_error_wrap(err, "exec in container \"%s\"", id);
    return r;
}

/* ---- features / main ------------------------------------------------------------------ */
char *oci_features_json(void)
{
    struct hull_json_writer w;
    hull_jw_init(&w, true);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "ociVersionMin", "1.0.0");
    hull_jw_kv_string(&w, "ociVersionMax", OCI_VERSION);
    static const char *const hooks[] = {NULL};
    hull_jw_key(&w, "hooks");
    hull_jw_begin_array(&w);
    for (size_t i = 0; hooks[i]; i++)
        hull_jw_string(&w, hooks[i]);
    hull_jw_end_array(&w);
    static const char *const mount_opts[] = {
        "async",         "atime",       "bind",     "defaults",   "dev",
        "diratime",      "dirsync",     "exec",     "mand",       "noatime",
        "nodev",         "nodiratime",  "noexec",   "nomand",     "norelatime",
        "nostrictatime", "nosuid",      "private",  "rbind",      "relatime",
        "remount",       "ro",          "rprivate", "rro",        "rshared",
        "rslave",        "runbindable", "rw",       "shared",     "slave",
        "strictatime",   "suid",        "sync",     "unbindable", NULL};
    hull_jw_key(&w, "mountOptions");
    hull_jw_begin_array(&w);
    for (size_t i = 0; mount_opts[i]; i++)
        hull_jw_string(&w, mount_opts[i]);
    hull_jw_end_array(&w);
    hull_jw_key(&w, "linux");
    hull_jw_begin_object(&w);
    static const char *const ns[] = {"cgroup", "ipc",  "mount", "network", "pid",
                                     "time",   "user", "uts",   NULL};
    hull_jw_key(&w, "namespaces");
    hull_jw_begin_array(&w);
    for (size_t i = 0; ns[i]; i++)
        hull_jw_string(&w, ns[i]);
    hull_jw_end_array(&w);
    hull_jw_key(&w, "capabilities");
    hull_jw_begin_array(&w);
    for (int c = 0; c < HULL_CAP_COUNT; c++)
        hull_jw_string(&w, hull_cap_name(c));
    hull_jw_end_array(&w);
    hull_jw_key(&w, "cgroup");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "v1", true);
    hull_jw_kv_bool(&w, "v2", true);
    hull_jw_kv_bool(&w, "systemd", true);
    hull_jw_kv_bool(&w, "systemdUser", false);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "seccomp");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "enabled", true);
    static const char *const actions[] = {
        "SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO",       "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
        "SCMP_ACT_TRACE",        "SCMP_ACT_TRAP",        NULL};
    hull_jw_key(&w, "actions");
    hull_jw_begin_array(&w);
    for (size_t i = 0; actions[i]; i++)
        hull_jw_string(&w, actions[i]);
    hull_jw_end_array(&w);
    static const char *const ops[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                      "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                      "SCMP_CMP_NE", NULL};
    hull_jw_key(&w, "operators");
    hull_jw_begin_array(&w);
    for (size_t i = 0; ops[i]; i++)
        hull_jw_string(&w, ops[i]);
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "apparmor");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "enabled", false);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "selinux");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "enabled", false);
    hull_jw_end_object(&w);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "annotations");
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "io.github.hull.oom", "state.oomKilled");
    hull_jw_end_object(&w);
    hull_jw_end_object(&w);
    char *out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return out;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hull-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] "
               "COMMAND [ARGS]\n"
               "commands: create start state kill delete exec update pause resume checkpoint "
               "restore ps list "
               "features\n");
}

int oci_main(int argc, char **argv)
{
    struct oci_global g = {.root = OCI_DEFAULT_ROOT};
    hull_log_set_level(HULL_LOG_WARN);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            break;
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a) : strlen(a);
#define KEY(s) (klen == strlen(s) && strncmp(a, s, klen) == 0)
        bool takes = KEY("--root") || KEY("--log") || KEY("--log-format") || KEY("--criu") ||
                     KEY("--rootless");
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                oci_report_error(&g, "missing value for a global option");
                return 1;
            }
        }
        if (KEY("--root"))
            g.root = val;
        else if (KEY("--log"))
            g.log_path = val;
        else if (KEY("--log-format"))
            g.log_json = strcmp(val, "json") == 0;
        else if (KEY("--debug"))
            g.debug = true;
        else if (KEY("--version") || KEY("-v")) {
            printf("hull-oci version %s\nspec: %s\n", HULL_VERSION, OCI_VERSION);
            return 0;
        } else if (KEY("--help") || KEY("-h")) {
            usage(stdout);
            return 0;
        } else if (KEY("--criu")) {
            g.criu = val;
        } else if (KEY("--systemd-cgroup")) {
            g.systemd_cgroup = true;
        } else if (!takes) {
            _cleanup_free_ char *m = xasprintf("flag provided but not defined: %s", a);
            oci_report_error(&g, m);
            return 1;
        }
#undef KEY
    }
    if (g.debug)
        hull_log_set_level(HULL_LOG_DEBUG);
    if (i >= argc) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[i];
    int cargc = argc - i - 1;
    char **cargv = argv + i + 1;
    _cleanup_error_ hull_error_t err = NULL;
    int r = 0, exit_code = 0;
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "exec") == 0) {
        if (oci_ensure_sealed_self(argc, argv, &err) < 0) {
            oci_report_error(&g, hull_error_msg(&err));
            return 1;
        }
    }
    if (strcmp(cmd, "create") == 0)
        r = cmd_create(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "start") == 0)
        r = cmd_start(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "state") == 0)
        r = cmd_state(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "kill") == 0)
        r = cmd_kill(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "delete") == 0)
        r = cmd_delete(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "exec") == 0) {
        r = cmd_exec(&g, cargc, cargv, &exit_code, &err);
        if (r < 0) {
            oci_report_error(&g, hull_error_msg(&err));
            return 255;
        }
        return exit_code;
    } else if (strcmp(cmd, "update") == 0)
        r = cmd_update(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "pause") == 0)
        r = cmd_freeze(&g, cargc, cargv, true, &err);
    else if (strcmp(cmd, "resume") == 0)
        r = cmd_freeze(&g, cargc, cargv, false, &err);
    else if (strcmp(cmd, "restore") == 0)
        r = cmd_restore(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "checkpoint") == 0)
        r = cmd_checkpoint(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "ps") == 0)
        r = cmd_ps(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "list") == 0)
        r = cmd_list(&g, cargc, cargv, &err);
    else if (strcmp(cmd, "features") == 0) {
        _cleanup_free_ char *j = oci_features_json();
        printf("%s\n", j);
    } else {
        _cleanup_free_ char *m = xasprintf("unknown command \"%s\"", cmd);
        oci_report_error(&g, m);
        return 1;
    }
    if (r < 0) {
        oci_report_error(&g, hull_error_msg(&err));
        return 1;
    }
    fflush(stdout);
    return 0;
}
