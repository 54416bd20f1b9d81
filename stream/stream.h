/* stream/ — the streaming server: the HTTP endpoint the CRI Exec, Attach and PortForward RPCs
 * hand out URLs for.  Clients upgrade an HTTP/1.1 request on that URL to SPDY/3.1 (remotecommand
 * v1-v4, portforward.k8s.io) or to WebSocket (RFC 6455: v5/v4/v1/base64 channel protocols and
 * the websocket port-forward protocol).
 *
 * The server knows nothing about containers or pods: it asks a backend (struct stream_backend)
 * to start an exec, join a container's attach socket or name a pod's network namespace.  The
 * container and sandbox areas of hulld provide that backend (server/stream_service.c); unit
 * tests provide their own (a real process behind pipes or a pty).
 *
 * Files: server.c (listener, connection threads), tokens.c (single-use URLs), http.c (request
 * head, upgrade, negotiation), conn.c (plain/TLS connection I/O), session.c (one upgraded
 * connection), spdy.c and ws.c (codecs), portforward.c (connecting inside a pod's netns);
 * stream/internal.h is what they share.
 *
 * Threads: one accept thread and one thread per connection (a poll loop over the connection,
 * the process's fds or monitor socket and the port-forward targets); stream_server_stop() wakes
 * and joins them all.  The process must ignore SIGPIPE (hulld does): stdin pipes are written
 * with write(2).  Port-forward enters the pod's network namespace in a short-lived thread that
 * only creates the socket (stream_netns_connect), so no long-lived thread ever changes netns.
 *
 * Limits (SECURITY.md "unbounded buffers and streams"): frames above STREAM_MAX_FRAME are refused
 * (SPDY GOAWAY / WebSocket close 1009), every per-stream buffer is bounded by STREAM_BUF_LIMIT
 * (the socket is not read while a sink is full), header blocks inflate to at most
 * STREAM_MAX_HEADER_BLOCK, sessions are capped, idle sessions end, tokens are single-use and
 * expire after STREAM_TOKEN_TTL_S seconds.  A connection takes a session slot only once its
 * token checked out; before that it has STREAM_HEADER_TIMEOUT_MS and a per-peer cap. */
#ifndef HULL_STREAM_STREAM_H
#define HULL_STREAM_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

#define STREAM_MAX_FRAME        (1u << 20) /* payload bytes of one SPDY frame / WS message */
#define STREAM_BUF_LIMIT        (256u << 10)
#define STREAM_READ_CHUNK       (32u << 10)
#define STREAM_MAX_HEADER_BLOCK (64u << 10)
#define STREAM_MAX_HEADERS      64
#define STREAM_MAX_CHANS        128  /* streams per session */
#define STREAM_MAX_PAIRS        64   /* concurrent port-forward connections per session */
#define STREAM_MAX_PENDING      1000 /* outstanding tokens */
#define STREAM_MAX_SESSIONS     256
/* Before a connection shows a valid token it holds no session slot: at most STREAM_MAX_UNAUTH
 * such connections (STREAM_MAX_UNAUTH_PER_PEER from one address), each given
 * STREAM_HEADER_TIMEOUT_MS from accept to a complete request head (TLS handshake included). */
#define STREAM_MAX_UNAUTH          256
#define STREAM_MAX_UNAUTH_PER_PEER 16
#define STREAM_HEADER_TIMEOUT_MS   2000
#define STREAM_TOKEN_TTL_S         60
#define STREAM_CREATION_TIMEOUT_S  30
#define STREAM_MAX_REQUEST_HEAD    (16u << 10)

struct stream_server;

enum stream_kind { STREAM_EXEC = 0, STREAM_ATTACH = 1, STREAM_PORTFORWARD = 2 };

/* What a CRI request asked for; kept behind the token until the client connects. */
struct stream_request {
    enum stream_kind kind;
    char *id;   /* container id (exec, attach) or pod sandbox id (port-forward) */
    char **cmd; /* exec: NULL-terminated argv */
    bool tty;
    bool use_stdin;
    bool use_stdout;
    bool use_stderr;
    int32_t *ports; /* port-forward: ports the request named (may be empty: any port) */
    size_t n_ports;
};

struct stream_winsize {
    uint16_t width;  /* columns */
    uint16_t height; /* rows */
};

/* A running exec, or a joined container, handed from the backend to the server.  Two forms:
 *   - plain fds: stdin_fd / stdout_fd / stderr_fd (-1 when absent; with a tty stdout_fd is the
 *     pty master and stdin_fd may be the same fd; EIO from a pty is end of output), plus
 *     exit_fd (optional, readable once the process ended, e.g. a pidfd) and wait();
 *   - a hull-conmon attach socket (attach_fd, SOCK_SEQPACKET, the tagged packets of
 *     conmon/conmon.h): output arrives as STDOUT/STDERR packets and the exit status as the
 *     EXIT packet; stdin goes out as STDIN packets, EOF as STDIN_EOF, resizes as RESIZE.
 * The server owns every fd given here and closes them. */
struct stream_process {
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int exit_fd;
    int attach_fd;
    void *data;
    /* Optional: apply a terminal size (plain-fd form; the attach form uses RESIZE packets). */
    int (*resize)(void *data, const struct stream_winsize *size);
    /* Optional: block until the process ended; *exit_code as a shell reports it (128+signal).
     * Called once output is drained (and exit_fd, if any, is readable). */
    int (*wait)(void *data, int *exit_code);
    /* Optional: the session is over; kill the process if it still runs, reap it, free data. */
    void (*release)(void *data);
};

static inline void stream_process_init(struct stream_process *p)
{
    p->stdin_fd = p->stdout_fd = p->stderr_fd = p->exit_fd = p->attach_fd = -1;
    p->data = NULL;
    p->resize = NULL;
    p->wait = NULL;
    p->release = NULL;
}

/* What the container and sandbox areas implement.  Every function returns 0 or a
 * negative errno with *err set; -ENOENT means "no such container/sandbox" (NOT_FOUND). */
struct stream_backend {
    void *data;
    /* Called by the CRI handlers before a URL is handed out (optional): does the target exist
     * and can it be streamed to (e.g. a running container; attach: tty must match)? */
    int (*check)(void *data, const struct stream_request *req, hull_error_t *err);
    /* Starts req->cmd in container req->id with the requested stdio (tty: a pty, initial size
     * *size when non-NULL). */
    int (*exec)(void *data, const struct stream_request *req, const struct stream_winsize *size,
                struct stream_process *out, hull_error_t *err);
    /* Joins the running container req->id (its monitor's attach socket). */
    int (*attach)(void *data, const struct stream_request *req, struct stream_process *out,
                  hull_error_t *err);
    /* Path of the network namespace of pod sandbox `sandbox_id` (caller frees *path). */
    int (*netns_path)(void *data, const char *sandbox_id, char **path, hull_error_t *err);
    /* Optional: called once when the server stops (frees data). */
    void (*destroy)(void *data);
};

struct stream_options {
    const char *address;     /* "127.0.0.1", "::1", "0.0.0.0" */
    int port;                /* 0: ephemeral */
    long idle_timeout_s;     /* <= 0: 4 hours */
    long creation_timeout_s; /* <= 0: STREAM_CREATION_TIMEOUT_S */
    long token_ttl_s;        /* <= 0: STREAM_TOKEN_TTL_S (tests shorten it) */
    const char *tls_cert;    /* PEM certificate chain; NULL/"": plain HTTP */
    const char *tls_key;     /* PEM private key, required with tls_cert */
};

/* Binds, listens and starts the accept thread.  The backend is copied. */
int stream_server_start(const struct stream_options *opts, const struct stream_backend *backend,
                        struct stream_server **out, hull_error_t *err);
/* Closes the listener, ends every session (processes released), waits for their threads. */
void stream_server_stop(struct stream_server *s);
HULL_DEFINE_CLEANUP(struct stream_server, stream_server_stop)
#define _cleanup_stream_server_ __attribute__((cleanup(stream_server_stopp)))
int stream_server_port(const struct stream_server *s);
/* Connections that showed a valid token (sessions), and those that have not (yet). */
int stream_server_active_sessions(struct stream_server *s);
int stream_server_unauthenticated(struct stream_server *s);
/* Validates req as CRI says (tty+stderr, at least one stream, ports in range), registers it
 * under a fresh single-use token and returns the URL to hand out (caller frees). */
int stream_server_url(struct stream_server *s, const struct stream_request *req, char **url,
                      hull_error_t *err);
/* Asks the backend whether req's target exists (-ENOENT: NOT_FOUND). */
int stream_server_check(struct stream_server *s, const struct stream_request *req,
                        hull_error_t *err);
/* Validation alone (the CRI handlers call it before asking the backend). */
int stream_request_validate(const struct stream_request *req, hull_error_t *err);

#endif
