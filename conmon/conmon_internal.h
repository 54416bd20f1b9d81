/* conmon/ inside: the monitor's options, the CRI log writer and small helpers
 * shared by its files.  The public protocol (command line, sockets, exit file) is conmon.h. */
#ifndef HULL_CONMON_INTERNAL_H
#define HULL_CONMON_INTERNAL_H

#include "common/common.h"
#include "common/cgroup.h"
#include "conmon/conmon.h"

struct conmon_opts {
    const char *cid;
    const char *bundle;
    const char *runtime;
    const char *runtime_root;
    const char **runtime_args; /* NULL-terminated */
    size_t n_runtime_args;
    const char *log_path;
    int64_t log_max_size; /* 0 = unlimited */
    const char *exit_dir;
    const char *socket_dir;
    const char *container_pidfile;
    const char *conmon_pidfile;
    const char *monitor_log;
    bool terminal, stdin_, stdin_once, foreground;
    int sync_fd;
    bool exec;
    const char *exec_process;
    int64_t timeout_s; /* 0 = none */
    bool exec_capture;
    size_t capture_max;
    bool exec_attach;
    int64_t attach_wait_s;
    bool delete_on_exit; /* --delete-on-exit (delete.c) */
    int runtime_fd;      /* the runtime, opened at start for that delete; -1 if not */
    const char *restore; /* CRIU images: `restore` instead of `create` */
};

/* Parses argv; on error fills err.  opts->runtime_args is malloc'd. */
int conmon_parse_args(int argc, char **argv, struct conmon_opts *opts, hull_error_t *err);
/* Runs the monitor after daemonizing; returns the process exit status. */
int conmon_run(struct conmon_opts *opts);

/* ---- CRI log writer (crilog.c) ---- */
struct crilog {
    const char *path;
    int fd;
    int64_t max_size; /* 0 = unlimited */
    int64_t size;     /* bytes in the current file */
    /* per stream (0 = stdout, 1 = stderr) pending bytes of an unfinished line */
    char *buf[2];
    size_t len[2];
    int64_t since[2]; /* monotonic ns when the pending bytes started waiting, 0 if none */
};
int crilog_open(struct crilog *l, const char *path, int64_t max_size, hull_error_t *err);
/* Feeds bytes read from a stream (0 stdout, 1 stderr); writes complete lines as F records and
 * full buffers as P records, all with the timestamp now_ns. */
void crilog_write(struct crilog *l, int stream, const char *data, size_t len, int64_t now_ns);
/* Writes pending partial lines of both streams as P records. */
void crilog_flush(struct crilog *l, int64_t now_ns);
/* Writes pending partial lines that waited max_age_ns or longer as P records (so a prompt or
 * progress output shows up in `kubectl logs -f`); returns the monotonic time at which the
 * next one is due, or 0 if nothing is pending. */
int64_t crilog_flush_stale(struct crilog *l, int64_t max_age_ns);
int crilog_reopen(struct crilog *l, hull_error_t *err);
void crilog_close(struct crilog *l);

/* ---- OOM watch: the cgroup library's (common/cgroup.h, hull_cgroup_oom_watch_*) ---- */

/* ---- small helpers (util.c) ---- */
int conmon_write_all(int fd, const void *data, size_t len);
/* Appends s as a JSON string literal (with quotes) to the buffer. */
void conmon_buf_add_json_string(struct hull_buf *b, const char *s, size_t n);

/* ---- the runtime's delete at exit (delete.c) ---- */
/* With --delete-on-exit (and not --exec): opens the runtime for conmon_runtime_delete. */
void conmon_runtime_pin(struct conmon_opts *opts);
/* Runs `RUNTIME ... delete --force ID` (10 s at most); true if it succeeded. */
bool conmon_runtime_delete(const struct conmon_opts *opts);

#endif
