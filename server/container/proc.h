/* Child processes of hulld: running the OCI runtime and starting monitors.  Every child gets
 * only the fds it is given (close_range after fork) and its own process group never; output is
 * captured with bounds and a deadline. */
#ifndef HULL_SERVER_PROC_H
#define HULL_SERVER_PROC_H

#include "common/common.h"

#define PROC_OUTPUT_MAX (64 * 1024)

struct proc_result {
    int status;   /* exit status (0..255), or 128+signal */
    char *out;    /* captured stdout (bounded, NUL-terminated) */
    char *errout; /* captured stderr */
    bool timed_out;
};
void proc_result_free(struct proc_result *r);

/* Runs argv (argv[0] a path), feeding stdin_data (may be NULL), and waits at most timeout_ms
 * (0: no limit; on expiry the child is killed with SIGKILL).  Returns 0 when the child ran
 * (whatever its status), a negative errno when it could not be started. */
int proc_run(char *const argv[], const char *stdin_data, int timeout_ms, struct proc_result *res,
             hull_error_t *err);

/* Runs argv and fails unless it exits 0; the error carries the child's stderr (or stdout). */
int proc_run_ok(char *const argv[], int timeout_ms, hull_error_t *err);

/* Starts argv with extra_fd duplicated to fd 3 in the child, without waiting.  Returns the pid. */
int proc_spawn_with_fd(char *const argv[], int extra_fd, pid_t *pid, hull_error_t *err);

/* The directory hulld's binary lives in (for hull-oci, hull-conmon, hull-pause). */
char *proc_self_dir(void);

#endif
