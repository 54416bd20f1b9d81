/* Internals of the streaming module, shared by the files of stream/, the unit tests and the fuzz
 * targets: buffers, the SPDY/3.1 and WebSocket codecs, connections, tokens, HTTP parsing and
 * sessions. Nothing outside stream/ (but tests) includes this header; the interface is
 * stream/stream.h. */
#ifndef HULL_STREAM_INTERNAL_H
#define HULL_STREAM_INTERNAL_H

#include "stream/stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <zlib.h>

#include <openssl/ssl.h>

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
                        struct hull_buf *out, hull_error_t *err);
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
void spdy_put_control(struct hull_buf *b, uint16_t type, uint8_t flags, const void *payload,
                      uint32_t len);
void spdy_put_data(struct hull_buf *b, uint32_t stream_id, uint8_t flags, const void *data,
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
void ws_put_frame(struct hull_buf *b, uint8_t opcode, bool fin, const uint8_t *mask,
                  const void *payload, size_t len);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key. out: 29 bytes. */
int ws_accept_key(const char *key, char out[29]);

/* Resize events: a stream of JSON objects {"Width":W,"Height":H}.  Feeds bytes; returns 1 and
 * fills *size when an object completed (call again with len 0 for more), 0 when more bytes are
 * needed, -EINVAL on garbage or an object above 4 KiB. */
int stream_resize_feed(struct hull_buf *pending, const uint8_t *d, size_t len,
                       struct stream_winsize *size);

/* The kubelet's error-stream Status JSON for an exit code (0: Success). Caller frees. */
char *stream_status_json(int exit_code, const char *const *cmd, const char *error);

/* Opens a TCP connection to localhost:port inside the network namespace at netns_path (a
 * short-lived thread enters the namespace only to create the socket). Returns an fd. */
int stream_netns_connect(const char *netns_path, int port, hull_error_t *err);

/* Sessions (session.c), started by the server once the upgrade answer went out. */
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
    const struct hull_buf *initial; /* bytes that followed the HTTP head */
    const int32_t *ws_ports;        /* WebSocket port-forward: ports, one pair each */
    size_t n_ws_ports;
};
void stream_session_run(const struct stream_session_params *p);
/* Writes everything (polls up to timeout_ms per stall). */
int stream_write_all(struct stream_conn *c, const void *data, size_t len, int timeout_ms,
                     int64_t *activity);

/* ---- the server (server.c) ------------------------------------------------------------------ */

struct pending_token {
    char token[33];
    int64_t expires_ns;
    struct stream_request *req;
};

struct stream_server {
    int listen_fd;
    int wake_fd; /* written once at stop: every poll loop watches it */
    pthread_t accept_thread;
    bool accept_started;
    struct stream_backend backend;
    SSL_CTX *tls; /* NULL: plain HTTP */
    char *url_host;
    int port;
    long idle_timeout_s;
    long creation_timeout_s;
    long token_ttl_s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pending_token *pending; /* STREAM_MAX_PENDING slots */
    size_t n_pending;
    int sessions; /* connections that showed a valid token */
    int unauth;   /* connections that have not (yet) */
    int live;     /* threads serving a connection */
    struct stream_slot {
        int fd; /* -1: free */
        bool authed;
        uint8_t peer[16];                             /* IPv6 or v4-mapped address of the client */
    } conns[STREAM_MAX_SESSIONS + STREAM_MAX_UNAUTH]; /* live connections, shut down at stop */
    atomic_bool stopping;
};

/* ---- tokens (tokens.c) ---------------------------------------------------------------------- */

void stream_request_free(struct stream_request *r);
/* Drops pending tokens that expired by `now` (INT64_MAX: all).  Call with s->lock held. */
void stream_tokens_purge_locked(struct stream_server *s, int64_t now);
/* Removes and returns the request behind token if it is of this kind (NULL: unknown, used,
 * expired or of another kind, and then nothing is removed).  Call with s->lock held. */
struct stream_request *stream_token_consume_locked(struct stream_server *s, const char *token,
                                                   enum stream_kind kind);
/* (tokens.c, called by http.c.)  A connection's token checks out: if it names a pending request of
 * this kind and a session slot is free, the token is used up, the connection counts as a session
 * and 0 is returned with the request (the caller frees it).  -ENOENT: unknown, expired or for
 * another kind (the token stays usable); -EBUSY: every session slot is taken (the token stays
 * usable). */
int stream_server_authorize(struct stream_server *s, int slot, const char *token,
                            enum stream_kind kind, struct stream_request **out);

/* ---- HTTP (http.c) -------------------------------------------------------------------------- */

struct http_request {
    char method[16];
    char path[1024];
    char query[1024];
    struct {
        char *name;
        char *value;
    } headers[STREAM_MAX_HEADERS];
    size_t n_headers;
};
/* Parses a request head (NUL-terminated, without the final blank line; modified in place)
 * into req.  Returns 0, or an HTTP status to answer with (400, 431).  Free req with
 * stream_http_request_free() in either case. */
int stream_http_parse_head(char *head, struct http_request *req);
void stream_http_request_free(struct http_request *r);
/* Answers an HTTP error with a text body and Connection: close. */
void stream_http_error(struct stream_conn *c, int code, const char *reason, const char *body);
/* Reads the request on an accepted connection (its head complete by deadline_ns, monotonic),
 * upgrades it and runs the session; slot is the connection's in s->conns. */
void stream_serve_connection(struct stream_server *s, struct stream_conn *c, int slot,
                             int64_t deadline_ns);

#endif
