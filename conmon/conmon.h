/* conmon/ — hull-conmon, the per-container (and per-exec) monitor.
 *
 * This header is the monitor's interface: hulld includes it for the command line it builds,
 * the sync-pipe messages it parses, the attach/control socket protocol it speaks and the
 * exit file it reads.  What conmon/ shares inside itself is in conmon_internal.h.
 *
 * ---- Command line ---------------------------------------------------------------------------
 *   hull-conmon --cid ID --bundle DIR --runtime PATH --socket-dir DIR --exit-dir DIR
 *               [--log-path FILE] [--log-max-size BYTES] [--runtime-root DIR]
 *               [--runtime-arg ARG]... [--terminal] [--stdin] [--stdin-once]
 *               [--sync-fd N] [--container-pidfile FILE] [--conmon-pidfile FILE]
 *               [--exec --exec-process FILE [--timeout SECONDS]
 *                [--exec-capture [--capture-max BYTES] | --exec-attach [--attach-wait S]]]
 *               [--monitor-log FILE] [--log-level LEVEL] [--foreground] [--delete-on-exit]
 *               [--restore IMAGES]
 *
 *   The process started by hulld forks, the child calls setsid() and forks again, and the
 *   first process exits 0 at once (hulld reaps it); the grandchild is the monitor.  It marks
 *   itself PR_SET_CHILD_SUBREAPER, creates the socket dir (0700), binds the sockets, opens the
 *   log, runs `RUNTIME [--root R] [ARGS] create --bundle B --pid-file P [--console-socket S] ID`
 *   (exec mode: `RUNTIME ... exec --process F --detach --pid-file P [--console-socket S] ID`),
 *   reports on the sync fd and then monitors the process until it exits.
 *   --restore IMAGES runs `RUNTIME ... restore --image-path IMAGES --work-path IMAGES --bundle B
 *   --detach --file-locks --manage-cgroups-mode ignore --pid-file P ID` (runc's options; CRIU
 *   reconnects the checkpointed stdio to the monitor's pipes) instead of `create`: the process
 *   runs at once, there is no `start`; the rest (log, exit file) is as for create.
 *   --foreground skips the double fork (ExecSync, tests).  All paths must be absolute.  The
 *   monitor closes every inherited fd but the sync fd (>= 3), resets inherited SIG_IGN
 *   dispositions and the signal mask (for itself and the runtime), and chdirs to /.  Bad
 *   arguments: exit status 2 and a message on stderr, before any fork.  Its own log (warnings,
 *   sanitizer reports) goes to --monitor-log, else /dev/null.
 *
 *   Paths: attach socket  <socket-dir>/attach   (HULL_CONMON_ATTACH_SOCK)
 *          control socket <socket-dir>/ctl      (HULL_CONMON_CTL_SOCK)
 *          console socket <socket-dir>/console  (terminal mode, removed once the pty arrives)
 *          container pid  --container-pidfile, default <socket-dir>/pid
 *          exit file      <exit-dir>/<ID>, written via <exit-dir>/.<ID>.tmp + rename
 *   A socket path longer than sockaddr_un allows (108 bytes) is bound through
 *   /proc/self/fd/<dirfd>/<name> (the runtime gets /proc/<monitor>/fd/<dirfd>/console);
 *   clients then connect the same way: open the socket dir O_PATH, connect to
 *   /proc/self/fd/<fd>/attach.
 *
 * ---- CRI log (--log-path) -----------------------------------------------------------------
 *   One record per line: "2016-10-06T00:17:09.669794202Z stdout F text\n" (RFC3339Nano time of
 *   the read with the local offset or Z, stream stdout|stderr, F = the line ends here, P = a
 *   chunk of a longer line).  Lines over HULL_CONMON_LINE_MAX bytes are split into P records
 *   of that size and a final F; an unfinished line is written as P after waiting
 *   HULL_CONMON_PARTIAL_FLUSH_MS for its newline, and at exit.  In terminal mode everything is
 *   stdout (with the pty's \r\n).  --log-max-size: a record that would grow the file past it
 *   starts a new, empty file at the same path (temp + rename); kubelet's own rotation uses
 *   "reopen" instead.  Write errors (ENOSPC) drop records, never block the process.
 *
 * ---- Sync pipe (--sync-fd N) ---------------------------------------------------------------
 *   Messages are one line of JSON each, terminated by '\n':
 *     after the runtime ran:  {"pid":1234,"monitor_pid":99}            success
 *                             {"pid":-1,"monitor_pid":99,"error":"..."}  runtime failed; the
 *                             error is the runtime's stderr/stdout text (at most 8 KiB)
 *                             {"pid":-1,"monitor_pid":99,"timed_out":true,"error":"..."}
 *                             the runtime (exec) did not finish within --timeout
 *   With --exec-attach (streaming exec) one message comes first, once the sockets exist:
 *                             {"ready":true,"monitor_pid":99}
 *   and the monitor runs the runtime only after the first attach client connected (within
 *   --attach-wait seconds, default 60), so that client sees all output and the exit packet even
 *   when the process exits at once.
 *   Without --exec-capture the fd is closed after the pid message.  With --exec-capture (ExecSync)
 *   a second message follows once the process exited and its output is drained:
 *     {"exit_code":0,"signal":0,"oom_killed":false,"timed_out":false,
 *      "stdout_len":N,"stderr_len":M,"truncated":false}\n
 *   followed by exactly N raw stdout bytes and M raw stderr bytes; then the fd is closed.
 *   Each stream is capped at --capture-max bytes (default 16 MiB); the rest is read and dropped
 *   ("truncated":true).
 *
 * ---- Attach socket (AF_UNIX, SOCK_SEQPACKET) ----------------------------------------------
 *   Every packet, both ways, is one tag byte followed by the payload (0..HULL_CONMON_PKT_MAX
 *   bytes).
 *   Monitor -> client: HULL_ATTACH_STDOUT / HULL_ATTACH_STDERR with output as it is read (the
 *   pty output in terminal mode is STDOUT); when the process has exited and all output was
 *   sent, one HULL_ATTACH_EXIT packet carrying the exit-file JSON, then EOF (the monitor shuts
 *   its side down, swallows further input and waits up to 0.5 s for the client to hang up
 *   before closing, so the client never gets a reset instead of its last packets).
 *   Client -> monitor: HULL_ATTACH_STDIN with bytes for the process's stdin (ignored without
 *   --stdin), HULL_ATTACH_STDIN_EOF to close it, HULL_ATTACH_RESIZE with "ROWS COLS" in ASCII.
 *   A resize sent before the runtime handed over the pty is kept and applied when it arrives;
 *   for exec the race-free way is process.consoleSize in process.json, which the runtime
 *   applies before the process starts.
 *   Several clients may be attached; output goes to all, stdin from any.  With --stdin-once the
 *   process's stdin is closed when the first client that connected detaches (or sends
 *   STDIN_EOF); without it STDIN_EOF and detaching leave stdin open.  A pty cannot be
 *   half-closed: there "closing stdin" writes the EOF character (^D).
 *   Flow control: while any attach client has more than HULL_CONMON_CLIENT_QUEUE_HIGH bytes
 *   queued the monitor stops reading the process's output (the process blocks, as on a
 *   terminal; nothing is lost, the log waits too); a client that takes nothing for
 *   HULL_CONMON_CLIENT_STALL_S seconds meanwhile, or ever has HULL_CONMON_CLIENT_QUEUE_MAX
 *   queued, is dropped.  At most HULL_CONMON_MAX_CLIENTS connections (attach + control).
 *
 * ---- Control socket (AF_UNIX, SOCK_SEQPACKET) ---------------------------------------------
 *   One ASCII request per packet, one reply packet: "ok" or "error <text>".
 *     "resize ROWS COLS"  set the pty window size (error without --terminal)
 *     "reopen"            flush, close and reopen the log file (ReopenContainerLog); the new
 *                         file exists when "ok" comes back
 *     "status"            "ok {"pid":N,"monitor_pid":M,"attached":K,"log":true}": liveness
 *                         check for a restarted hulld
 *   Connections stay open for further requests.  The sockets are removed when the monitor
 *   exits (connect then fails with ENOENT/ECONNREFUSED: read the exit file).
 *   SIGUSR1 to the monitor also reopens the log; SIGTERM/SIGINT are forwarded to the process.
 *
 * ---- Exit file (<exit-dir>/<ID>) -----------------------------------------------------------
 *   One JSON object, written atomically after the last log line was written and fsynced:
 *     {"pid":1234,"exit_code":137,"signal":9,"oom_killed":false,"timed_out":false,
 *      "exited_at":"2026-11-23T12:00:00.123456789Z","exited_at_ns":1795003200123456789}
 *   exit_code is the exit status, or 128+signal when killed by a signal (signal is then the
 *   signal number, else 0).  timed_out is set when --timeout killed an exec (the deadline
 *   counts from when the runtime is started).  oom_killed: an OOM kill happened in the
 *   process's memory cgroup while it ran ("oom_kill" counter of memory.oom_control (v1) /
 *   memory.events (v2), woken by the v1 eventfd / v2 inotify).  Watchers of the exit dir
 *   should ignore dot files (the temp file).  The runtime's state is left alone (hulld runs
 *   `RUNTIME delete`), except with --delete-on-exit (not with --exec): then, after the OOM
 *   check and before writing the file, the monitor runs `RUNTIME [--root R] [ARGS] delete
 *   --force ID` itself (10 s at most; the runtime executable was opened at start) and adds
 *   "runtime_deleted":true when that succeeded.
 */
#ifndef HULL_CONMON_H
#define HULL_CONMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HULL_CONMON_ATTACH_SOCK "attach"
#define HULL_CONMON_CTL_SOCK    "ctl"
#define HULL_CONMON_CONSOLE     "console"
#define HULL_CONMON_PIDFILE     "pid"

/* attach socket stream tags (first byte of every packet) */
enum hull_attach_tag {
    HULL_ATTACH_STDIN = 0,
    HULL_ATTACH_STDOUT = 1,
    HULL_ATTACH_STDERR = 2,
    HULL_ATTACH_EXIT = 3,
    HULL_ATTACH_STDIN_EOF = 4,
    HULL_ATTACH_RESIZE = 5,
};

#define HULL_CONMON_PKT_MAX           32768 /* payload bytes per packet */
#define HULL_CONMON_CLIENT_QUEUE_MAX  (4u << 20)
#define HULL_CONMON_CLIENT_QUEUE_HIGH (1u << 20)
#define HULL_CONMON_CLIENT_STALL_S    10
#define HULL_CONMON_MAX_CLIENTS       64
/* CRI log lines longer than this are split into P records of this size. */
#define HULL_CONMON_LINE_MAX (16 * 1024)
/* An unfinished line is written out (as P) after waiting this long for its newline. */
#define HULL_CONMON_PARTIAL_FLUSH_MS 1000
#define HULL_CONMON_CAPTURE_DEFAULT  ((size_t)16 << 20)

/* exit file / sync message keys */
#define HULL_EXIT_KEY_PID          "pid"
#define HULL_EXIT_KEY_EXIT_CODE    "exit_code"
#define HULL_EXIT_KEY_SIGNAL       "signal"
#define HULL_EXIT_KEY_OOM_KILLED   "oom_killed"
#define HULL_EXIT_KEY_TIMED_OUT    "timed_out"
#define HULL_EXIT_KEY_EXITED_AT    "exited_at"
#define HULL_EXIT_KEY_EXITED_AT_NS "exited_at_ns"

#endif
