/* The streaming server (issue 9): the HTTP endpoint the CRI Exec, Attach and PortForward RPCs
 * hand out URLs for.  Clients upgrade an HTTP/1.1 request on that URL to SPDY/3.1 (remotecommand
 * v1-v4, portforward.k8s.io) or to WebSocket (RFC 6455: v5/v4/v1/base64 channel protocols and
 * the websocket port-forward protocol).
 *
 * The server knows nothing about containers or pods: it asks a backend (struct stream_backend)
 * to start an exec, join a container's attach socket or name a pod's network namespace.  The
 * container and sandbox areas provide that backend to hulld (see stream_init() and
 * rpc_stream.c); unit tests provide their own (a real process behind pipes or a pty).
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
 * expire after STREAM_TOKEN_TTL_S seconds. */
#ifndef HULL_SERVER_STREAM_H
#define HULL_SERVER_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "common/common.h"

#define STREAM_MAX_FRAME          (1u << 20) /* payload bytes of one SPDY frame / WS message */
#define STREAM_BUF_LIMIT          (256u << 10)
#define STREAM_READ_CHUNK         (32u << 10)
#define STREAM_MAX_HEADER_BLOCK   (64u << 10)
#define STREAM_MAX_HEADERS        64
#define STREAM_MAX_CHANS          128  /* streams per session */
#define STREAM_MAX_PAIRS          64   /* concurrent port-forward connections per session */
#define STREAM_MAX_PENDING        1000 /* outstanding tokens */
#define STREAM_MAX_SESSIONS       256
#define STREAM_TOKEN_TTL_S        60
#define STREAM_CREATION_TIMEOUT_S 30
#define STREAM_MAX_REQUEST_HEAD   (16u << 10)

struct stream_server;
struct hull_server;

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

/* What containers (issue 8) and sandboxes (issue 7) implement.  Every function returns 0 or a
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
int stream_server_port(const struct stream_server *s);
int stream_server_active_sessions(struct stream_server *s);
/* Validates req as CRI says (tty+stderr, at least one stream, ports in range), registers it
 * under a fresh single-use token and returns the URL to hand out (caller frees). */
int stream_server_url(struct stream_server *s, const struct stream_request *req, char **url,
                      hull_error_t *err);
/* Asks the backend whether req's target exists (-ENOENT: NOT_FOUND). */
int stream_server_check(struct stream_server *s, const struct stream_request *req,
                        hull_error_t *err);
/* Validation alone (the CRI handlers call it before asking the backend). */
int stream_request_validate(const struct stream_request *req, hull_error_t *err);

/* hulld: starts the server from the configuration (server.c calls these). */
int stream_init(struct hull_server *srv, hull_error_t *err);
void stream_fini(struct hull_server *srv);

/* ---- internals shared by server/stream*.c and tests/unit/test_stream*.c ------------------ */

struct stream_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};
void stream_buf_append(struct stream_buf *b, const void *d, size_t n);
void stream_buf_consume(struct stream_buf *b, size_t n);
void stream_buf_free(struct stream_buf *b);

/* SPDY/3 header compression: one inflate and one deflate stream per connection, primed with
 * the SPDY/3 dictionary. */
struct spdy_header {
    char *name; /* lower case */
    char *value;
};
struct spdy_zlib {
    z_stream inf;
    z_stream def;
    bool inf_ready;
    bool def_ready;
};
extern const uint8_t spdy_dictionary[];
extern const size_t spdy_dictionary_len;
int spdy_zlib_init(struct spdy_zlib *z, hull_error_t *err);
void spdy_zlib_fini(struct spdy_zlib *z);
/* Appends the compressed name/value block to out. */
int spdy_headers_encode(struct spdy_zlib *z, const struct spdy_header *h, size_t n,
                        struct stream_buf *out, hull_error_t *err);
int spdy_headers_decode(struct spdy_zlib *z, const uint8_t *d, size_t len, struct spdy_header **h,
                        size_t *n, hull_error_t *err);
void spdy_headers_free(struct spdy_header *h, size_t n);
const char *spdy_header_get(const struct spdy_header *h, size_t n, const char *name);

enum spdy_type {
    SPDY_SYN_STREAM = 1,
    SPDY_SYN_REPLY = 2,
    SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4,
    SPDY_PING = 6,
    SPDY_GOAWAY = 7,
    SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};
#define SPDY_FLAG_FIN 0x01
struct spdy_frame {
    bool control;
    uint16_t version;
    uint16_t type;
    uint32_t stream_id; /* data frames */
    uint8_t flags;
    uint32_t length;
    const uint8_t *payload;
};
/* >0: size of a complete frame at d; 0: need more bytes; <0: -EMSGSIZE (above max). */
ssize_t spdy_frame_parse(const uint8_t *d, size_t len, uint32_t max, struct spdy_frame *f);
void spdy_put_control(struct stream_buf *b, uint16_t type, uint8_t flags, const void *payload,
                      uint32_t len);
void spdy_put_data(struct stream_buf *b, uint32_t stream_id, uint8_t flags, const void *data,
                   uint32_t len);

/* WebSocket codec. */
enum ws_opcode { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };
struct ws_frame {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint64_t length;
    uint8_t mask[4];
    const uint8_t *payload; /* still masked */
    size_t header_len;
};
/* >0: size of a complete frame; 0: need more; -EPROTO bad frame; -EMSGSIZE above max. */
ssize_t ws_frame_parse(const uint8_t *d, size_t len, uint64_t max, struct ws_frame *f);
void ws_put_frame(struct stream_buf *b, uint8_t opcode, bool fin, const uint8_t *mask,
                  const void *payload, size_t len);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key. out: 29 bytes. */
int ws_accept_key(const char *key, char out[29]);
size_t stream_base64_encode(const uint8_t *in, size_t len, char *out);  /* out: 4*ceil(len/3)+1 */
ssize_t stream_base64_decode(const char *in, size_t len, uint8_t *out); /* -EINVAL on bad input */

/* Resize events: a stream of JSON objects {"Width":W,"Height":H}.  Feeds bytes; returns 1 and
 * fills *size when an object completed (call again with len 0 for more), 0 when more bytes are
 * needed, -EINVAL on garbage or an object above 4 KiB. */
int stream_resize_feed(struct stream_buf *pending, const uint8_t *d, size_t len,
                       struct stream_winsize *size);

/* The kubelet's error-stream Status JSON for an exit code (0: Success). Caller frees. */
char *stream_status_json(int exit_code, const char *const *cmd, const char *error);

/* Opens a TCP connection to localhost:port inside the network namespace at netns_path (a
 * short-lived thread enters the namespace only to create the socket). Returns an fd. */
int stream_netns_connect(const char *netns_path, int port, hull_error_t *err);

/* Sessions (stream_session.c), started by the server once the upgrade answer went out. */
enum {
    SP_JSON_STATUS = 1,  /* error stream carries a metav1.Status JSON (v4, v5) */
    SP_RESIZE = 2,       /* resize stream/channel (v3+) */
    SP_BASE64 = 4,       /* WebSocket base64 channel framing (text frames) */
    SP_CLOSE_SIGNAL = 8, /* WebSocket v5 stream-close signal (channel 255) */
    SP_PORTFORWARD = 16,
};
struct stream_protocol {
    const char *name;
    unsigned flags;
};
/* One client connection: a non-blocking socket, optionally under TLS (an OpenSSL SSL *). */
struct stream_conn {
    int fd;
    void *ssl;
};
/* >0 bytes read, 0 at EOF, -EAGAIN when nothing is there yet, another -errno on failure. */
ssize_t stream_conn_recv(struct stream_conn *c, void *buf, size_t n);
/* True when TLS holds bytes poll() cannot see. */
bool stream_conn_pending(struct stream_conn *c);
/* Sends TLS close_notify (if any) and shuts the write side down. */
void stream_conn_shutdown(struct stream_conn *c);

struct stream_session_params {
    const struct stream_backend *backend;
    struct stream_conn *conn; /* the upgraded connection */
    int wake_fd;              /* readable once the server stops */
    bool websocket;
    const struct stream_protocol *protocol; /* NULL: the client named none */
    const struct stream_request *req;
    long idle_timeout_s;
    long creation_timeout_s;
    const struct stream_buf *initial; /* bytes that followed the HTTP head */
    const int32_t *ws_ports;          /* WebSocket port-forward: ports, one pair each */
    size_t n_ws_ports;
};
void stream_session_run(const struct stream_session_params *p);
/* Writes everything (polls up to timeout_ms per stall). */
int stream_write_all(struct stream_conn *c, const void *data, size_t len, int timeout_ms,
                     int64_t *activity);

#endif
