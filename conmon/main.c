/* hull-conmon entry point: command-line parsing (see conmon.h for the options). */
#include "conmon/conmon_internal.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
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

int conmon_parse_args(int argc, char **argv, struct conmon_opts *o, hull_error_t *err)
{
    memset(o, 0, sizeof(*o));
    o->sync_fd = -1;
    o->runtime_fd = -1;
    o->capture_max = HULL_CONMON_CAPTURE_DEFAULT;
    o->attach_wait_s = 60;
    o->runtime_args = xmalloc0(sizeof(char *));
    optind = 1;
    opterr = 0;
    int c;
    long long v;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_CID:
            o->cid = optarg;
            break;
        case OPT_BUNDLE:
            o->bundle = optarg;
            break;
        case OPT_RUNTIME:
            o->runtime = optarg;
            break;
        case OPT_RUNTIME_ROOT:
            o->runtime_root = optarg;
            break;
        case OPT_RUNTIME_ARG:
            o->runtime_args = xrealloc(o->runtime_args, (o->n_runtime_args + 2) * sizeof(char *));
            o->runtime_args[o->n_runtime_args++] = optarg;
            o->runtime_args[o->n_runtime_args] = NULL;
            break;
        case OPT_LOG_PATH:
            o->log_path = optarg;
            break;
        case OPT_LOG_MAX_SIZE:
            if (parse_num(optarg, 0, LLONG_MAX, &v) < 0)
                return hull_error_setx(err, EINVAL, "invalid --log-max-size `%s`", optarg);
            o->log_max_size = v;
            break;
        case OPT_EXIT_DIR:
            o->exit_dir = optarg;
            break;
        case OPT_SOCKET_DIR:
            o->socket_dir = optarg;
            break;
        case OPT_TERMINAL:
            o->terminal = true;
            break;
        case OPT_STDIN:
            o->stdin_ = true;
            break;
        case OPT_STDIN_ONCE:
            o->stdin_once = true;
            break;
        case OPT_SYNC_FD:
            if (parse_num(optarg, 3, INT_MAX, &v) < 0)
                return hull_error_setx(err, EINVAL, "invalid --sync-fd `%s` (must be >= 3)",
                                       optarg);
            o->sync_fd = (int)v;
            break;
        case OPT_CONTAINER_PIDFILE:
            o->container_pidfile = optarg;
            break;
        case OPT_CONMON_PIDFILE:
            o->conmon_pidfile = optarg;
            break;
        case OPT_EXEC:
            o->exec = true;
            break;
        case OPT_EXEC_PROCESS:
            o->exec_process = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_num(optarg, 0, 100LL * 365 * 86400, &v) < 0)
                return hull_error_setx(err, EINVAL, "invalid --timeout `%s`", optarg);
            o->timeout_s = v;
            break;
        case OPT_EXEC_CAPTURE:
            o->exec_capture = true;
            break;
        case OPT_EXEC_ATTACH:
            o->exec_attach = true;
            break;
        case OPT_ATTACH_WAIT:
            if (parse_num(optarg, 1, 86400, &v) < 0)
                return hull_error_setx(err, EINVAL, "invalid --attach-wait `%s`", optarg);
            o->attach_wait_s = v;
            break;
        case OPT_CAPTURE_MAX:
            if (parse_num(optarg, 0, (long long)1 << 30, &v) < 0)
                return hull_error_setx(err, EINVAL, "invalid --capture-max `%s`", optarg);
            o->capture_max = (size_t)v;
            break;
        case OPT_MONITOR_LOG:
            o->monitor_log = optarg;
            break;
        case OPT_LOG_LEVEL: {
            int lvl = hull_log_level_parse(optarg);
            if (lvl < 0)
                return hull_error_setx(err, EINVAL, "invalid --log-level `%s`", optarg);
            hull_log_set_level(lvl);
            break;
        }
        case OPT_FOREGROUND:
            o->foreground = true;
            break;
        case OPT_DELETE_ON_EXIT:
            o->delete_on_exit = true;
            break;
        case OPT_RESTORE:
            o->restore = optarg;
            break;
        case OPT_HELP:
            fputs(usage, stdout);
            exit(0);
        case OPT_VERSION:
            printf("hull-conmon %s\n", HULL_VERSION);
            exit(0);
        default:
            return hull_error_setx(err, EINVAL, "unknown or incomplete option `%s`",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return hull_error_setx(err, EINVAL, "unexpected argument `%s`", argv[optind]);
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
    const char *paths[] = {
        o->bundle,       o->runtime,           o->log_path,       o->exit_dir,     o->socket_dir,
        o->exec_process, o->container_pidfile, o->conmon_pidfile, o->runtime_root, o->monitor_log,
        o->restore};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i] && paths[i][0] != '/')
            return hull_error_setx(err, EINVAL, "path `%s` must be absolute", paths[i]);
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
