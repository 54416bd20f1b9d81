/* hull-conmon entry point: command-line parsing (see conmon.h for the options). */
#include "conmon/conmon_internal.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

enum {
    OPT_CID = 256,
    OPT_BUNDLE,
    OPT_RUNTIME,
    OPT_RUNTIME_ROOT,
    OPT_RUNTIME_ARG,
    OPT_LOG_PATH,
    OPT_LOG_MAX_SIZE,
    OPT_EXIT_DIR,
    OPT_SOCKET_DIR,
    OPT_TERMINAL,
    OPT_STDIN,
    OPT_STDIN_ONCE,
    OPT_SYNC_FD,
    OPT_CONTAINER_PIDFILE,
    OPT_CONMON_PIDFILE,
    OPT_EXEC,
    OPT_EXEC_PROCESS,
    OPT_TIMEOUT,
    OPT_EXEC_CAPTURE,
    OPT_EXEC_ATTACH,
    OPT_ATTACH_WAIT,
    OPT_CAPTURE_MAX,
    OPT_MONITOR_LOG,
    OPT_LOG_LEVEL,
    OPT_FOREGROUND,
    OPT_DELETE_ON_EXIT,
    OPT_RESTORE,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"cid", required_argument, NULL, OPT_CID},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"runtime", required_argument, NULL, OPT_RUNTIME},
    {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
    {"runtime-arg", required_argument, NULL, OPT_RUNTIME_ARG},
    {"log-path", required_argument, NULL, OPT_LOG_PATH},
    {"log-max-size", required_argument, NULL, OPT_LOG_MAX_SIZE},
    {"exit-dir", required_argument, NULL, OPT_EXIT_DIR},
    {"socket-dir", required_argument, NULL, OPT_SOCKET_DIR},
    {"terminal", no_argument, NULL, OPT_TERMINAL},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"stdin-once", no_argument, NULL, OPT_STDIN_ONCE},
    {"sync-fd", required_argument, NULL, OPT_SYNC_FD},
    {"container-pidfile", required_argument, NULL, OPT_CONTAINER_PIDFILE},
    {"conmon-pidfile", required_argument, NULL, OPT_CONMON_PIDFILE},
    {"exec", no_argument, NULL, OPT_EXEC},
    {"exec-process", required_argument, NULL, OPT_EXEC_PROCESS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"exec-capture", no_argument, NULL, OPT_EXEC_CAPTURE},
    {"exec-attach", no_argument, NULL, OPT_EXEC_ATTACH},
    {"attach-wait", required_argument, NULL, OPT_ATTACH_WAIT},
    {"capture-max", required_argument, NULL, OPT_CAPTURE_MAX},
    {"monitor-log", required_argument, NULL, OPT_MONITOR_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"foreground", no_argument, NULL, OPT_FOREGROUND},
    {"delete-on-exit", no_argument, NULL, OPT_DELETE_ON_EXIT},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: hull-conmon --cid ID --bundle DIR --runtime PATH --socket-dir DIR --exit-dir DIR\n"
    "         [--log-path FILE] [--log-max-size BYTES] [--runtime-root DIR] [--runtime-arg A]...\n"
    "         [--terminal] [--stdin] [--stdin-once] [--sync-fd N] [--container-pidfile F]\n"
    "         [--conmon-pidfile F] [--exec --exec-process FILE [--timeout S]\n"
    "         [--exec-capture [--capture-max BYTES] | --exec-attach [--attach-wait S]]]\n"
    "         [--monitor-log FILE] [--log-level L] [--foreground] [--delete-on-exit]\n"
    "         [--restore IMAGES]\n";

static int parse_num(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Options that store their argument as is: option -> field of struct conmon_opts. */
static const struct {
    int opt;
    size_t off;
} string_options[] = {
    {OPT_CID, offsetof(struct conmon_opts, cid)},
    {OPT_BUNDLE, offsetof(struct conmon_opts, bundle)},
    {OPT_RUNTIME, offsetof(struct conmon_opts, runtime)},
    {OPT_RUNTIME_ROOT, offsetof(struct conmon_opts, runtime_root)},
    {OPT_LOG_PATH, offsetof(struct conmon_opts, log_path)},
    {OPT_EXIT_DIR, offsetof(struct conmon_opts, exit_dir)},
    {OPT_SOCKET_DIR, offsetof(struct conmon_opts, socket_dir)},
    {OPT_CONTAINER_PIDFILE, offsetof(struct conmon_opts, container_pidfile)},
    {OPT_CONMON_PIDFILE, offsetof(struct conmon_opts, conmon_pidfile)},
    {OPT_EXEC_PROCESS, offsetof(struct conmon_opts, exec_process)},
    {OPT_MONITOR_LOG, offsetof(struct conmon_opts, monitor_log)},
    {OPT_RESTORE, offsetof(struct conmon_opts, restore)},
};

/* Flags without an argument: option -> bool field of struct conmon_opts. */
static const struct {
    int opt;
    size_t off;
} flag_options[] = {
    {OPT_TERMINAL, offsetof(struct conmon_opts, terminal)},
    {OPT_STDIN, offsetof(struct conmon_opts, stdin_)},
    {OPT_STDIN_ONCE, offsetof(struct conmon_opts, stdin_once)},
    {OPT_EXEC, offsetof(struct conmon_opts, exec)},
    {OPT_EXEC_CAPTURE, offsetof(struct conmon_opts, exec_capture)},
    {OPT_EXEC_ATTACH, offsetof(struct conmon_opts, exec_attach)},
    {OPT_FOREGROUND, offsetof(struct conmon_opts, foreground)},
    {OPT_DELETE_ON_EXIT, offsetof(struct conmon_opts, delete_on_exit)},
};

static void set_defaults(struct conmon_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sync_fd = -1;
    o->runtime_fd = -1;
    o->capture_max = HULL_CONMON_CAPTURE_DEFAULT;
    o->attach_wait_s = 60;
    o->runtime_args = xmalloc0(sizeof(char *));
}

/* A string or flag option from the tables; false if c is neither. */
static bool set_table_option(struct conmon_opts *o, int c, const char *arg)
{
    for (size_t i = 0; i < sizeof(string_options) / sizeof(string_options[0]); i++)
        if (string_options[i].opt == c) {
            *(const char **)((char *)o + string_options[i].off) = arg;
            return true;
        }
    for (size_t i = 0; i < sizeof(flag_options) / sizeof(flag_options[0]); i++)
        if (flag_options[i].opt == c) {
            *(bool *)((char *)o + flag_options[i].off) = true;
            return true;
        }
    return false;
}

/* An option with a numeric argument; 1 if c is not one. */
static int set_number_option(struct conmon_opts *o, int c, const char *arg, hull_error_t *err)
{
    long long v;
    switch (c) {
    case OPT_LOG_MAX_SIZE:
        if (parse_num(arg, 0, LLONG_MAX, &v) < 0)
            return hull_error_setx(err, EINVAL, "invalid --log-max-size `%s`", arg);
        o->log_max_size = v;
        return 0;
    case OPT_SYNC_FD:
        if (parse_num(arg, 3, INT_MAX, &v) < 0)
            return hull_error_setx(err, EINVAL, "invalid --sync-fd `%s` (must be >= 3)", arg);
        o->sync_fd = (int)v;
        return 0;
    case OPT_TIMEOUT:
        if (parse_num(arg, 0, 100LL * 365 * 86400, &v) < 0)
            return hull_error_setx(err, EINVAL, "invalid --timeout `%s`", arg);
        o->timeout_s = v;
        return 0;
    case OPT_ATTACH_WAIT:
        if (parse_num(arg, 1, 86400, &v) < 0)
            return hull_error_setx(err, EINVAL, "invalid --attach-wait `%s`", arg);
        o->attach_wait_s = v;
        return 0;
    case OPT_CAPTURE_MAX:
        if (parse_num(arg, 0, (long long)1 << 30, &v) < 0)
            return hull_error_setx(err, EINVAL, "invalid --capture-max `%s`", arg);
        o->capture_max = (size_t)v;
        return 0;
    default:
        return 1;
    }
}

/* One option from getopt_long: c is its code, arg its argument, given its text as typed. */
static int apply_option(struct conmon_opts *o, int c, const char *arg, const char *given,
                        hull_error_t *err)
{
    if (set_table_option(o, c, arg))
        return 0;
    int r = set_number_option(o, c, arg, err);
    if (r <= 0)
        return r;
    switch (c) {
    case OPT_RUNTIME_ARG:
        o->runtime_args = xrealloc(o->runtime_args, (o->n_runtime_args + 2) * sizeof(char *));
        o->runtime_args[o->n_runtime_args++] = arg;
        o->runtime_args[o->n_runtime_args] = NULL;
        return 0;
    case OPT_LOG_LEVEL: {
        int lvl = hull_log_level_parse(arg);
        if (lvl < 0)
            return hull_error_setx(err, EINVAL, "invalid --log-level `%s`", arg);
        hull_log_set_level(lvl);
        return 0;
    }
    case OPT_HELP:
        fputs(usage, stdout);
        exit(0);
    case OPT_VERSION:
        printf("hull-conmon %s\n", HULL_VERSION);
        exit(0);
    default:
        return hull_error_setx(err, EINVAL, "unknown or incomplete option `%s`", given);
    }
}

/* The options every mode needs, and those of a container (not exec) run. */
static int check_required(const struct conmon_opts *o, hull_error_t *err)
{
    if (o->cid == NULL || !hull_is_safe_component(o->cid))
        return hull_error_setx(err, EINVAL, "--cid missing or not a valid name");
    if (o->runtime == NULL)
        return hull_error_setx(err, EINVAL, "--runtime is required");
    if (o->socket_dir == NULL || o->exit_dir == NULL)
        return hull_error_setx(err, EINVAL, "--socket-dir and --exit-dir are required");
    if (o->exec) {
        if (o->exec_process == NULL)
            return hull_error_setx(err, EINVAL, "--exec needs --exec-process");
    } else {
        if (o->bundle == NULL)
            return hull_error_setx(err, EINVAL, "--bundle is required");
        if (o->timeout_s || o->exec_capture || o->exec_process || o->exec_attach)
            return hull_error_setx(err, EINVAL,
                                   "--timeout/--exec-capture/--exec-attach/--exec-process need "
                                   "--exec");
    }
    return 0;
}

/* Every path option must be absolute. */
static int check_paths(const struct conmon_opts *o, hull_error_t *err)
{
    const char *paths[] = {
        o->bundle,       o->runtime,           o->log_path,       o->exit_dir,     o->socket_dir,
        o->exec_process, o->container_pidfile, o->conmon_pidfile, o->runtime_root, o->monitor_log,
        o->restore};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i] && paths[i][0] != '/')
            return hull_error_setx(err, EINVAL, "path `%s` must be absolute", paths[i]);
    return 0;
}

/* Options that need or exclude each other. */
static int check_combinations(const struct conmon_opts *o, hull_error_t *err)
{
    if (o->restore && (o->exec || o->terminal))
        return hull_error_setx(err, EINVAL, "--restore excludes --exec and --terminal");
    if (o->stdin_once && !o->stdin_)
        return hull_error_setx(err, EINVAL, "--stdin-once needs --stdin");
    if (o->exec_attach && o->exec_capture)
        return hull_error_setx(err, EINVAL, "--exec-attach and --exec-capture exclude each other");
    if (o->exec_attach && o->sync_fd < 0)
        return hull_error_setx(err, EINVAL, "--exec-attach needs --sync-fd");
    if (o->exec_capture && o->sync_fd < 0)
        return hull_error_setx(err, EINVAL, "--exec-capture needs --sync-fd");
    return 0;
}

int conmon_parse_args(int argc, char **argv, struct conmon_opts *o, hull_error_t *err)
{
    set_defaults(o);
    optind = 1;
    opterr = 0;
    int c, r;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1)
        if ((r = apply_option(o, c, optarg, argv[optind - 1], err)) < 0)
            return r;
    if (optind < argc)
        return hull_error_setx(err, EINVAL, "unexpected argument `%s`", argv[optind]);
    if ((r = check_required(o, err)) < 0 || (r = check_paths(o, err)) < 0 ||
        (r = check_combinations(o, err)) < 0)
        return r;
    return 0;
}

int main(int argc, char **argv)
{
    struct conmon_opts opts;
    _cleanup_error_ hull_error_t err = NULL;
    if (conmon_parse_args(argc, argv, &opts, &err) < 0) {
        fprintf(stderr, "hull-conmon: %s\n%s", hull_error_msg(&err), usage);
        free(opts.runtime_args);
        return 2;
    }
    int r = conmon_run(&opts);
    free(opts.runtime_args);
    return r;
}
