/* common/ — what several Hull modules share: error objects, logging, cleanup helpers,
 * file-system helpers, JSON over yajl, base64, string vectors, the host architecture, ids and
 * time.  Nothing module-specific lives here. */
#ifndef HULL_COMMON_H
#define HULL_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define HULL_VERSION "0.1.0"

/* ---- error objects (libcrun style) -------------------------------------------------------
 * A failing function fills *err and returns a negative errno.  Callers add context with
 * hull_error_wrap() as the error travels up; the edge (gRPC, CLI) reports it once. */
struct hull_error {
    int status; /* positive errno */
    char *msg;
};
typedef struct hull_error *hull_error_t;

/* Sets *err (if err is non-NULL and empty) to "msg: strerror(errnum)" when errnum > 0, or just
 * msg when errnum is given as a negative number or 0 (status then EINVAL).  Returns -status. */
int hull_error_set(hull_error_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like hull_error_set() but never appends strerror (for messages that already explain). */
int hull_error_setx(hull_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes "context: " to the message; returns -status. */
int hull_error_wrap(hull_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hull_error_free(hull_error_t *err);
/* The status of a filled error, or EIO if none was set. */
int hull_error_status(const hull_error_t *err);
const char *hull_error_msg(const hull_error_t *err);

/* ---- cleanup attributes ------------------------------------------------------------------ */
void hull_freep(void *p);
void hull_closep(int *fd);
void hull_fclosep(FILE **f);
void hull_closedirp(DIR **d);
void hull_yajl_freep(yajl_val *v);
#define _cleanup_free_     __attribute__((cleanup(hull_freep)))
#define _cleanup_close_    __attribute__((cleanup(hull_closep)))
#define _cleanup_fclose_   __attribute__((cleanup(hull_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(hull_closedirp)))
#define _cleanup_error_    __attribute__((cleanup(hull_error_free)))
#define _cleanup_yajl_     __attribute__((cleanup(hull_yajl_freep)))

/* Defines `static inline void <func>p(type **p)`: calls func(*p) unless *p is NULL, for a
 * module header's typed cleanup, e.g. HULL_DEFINE_CLEANUP(struct foo, foo_free) next to
 * foo_free() and then `#define _cleanup_foo_ __attribute__((cleanup(foo_freep)))`. */
#define HULL_DEFINE_CLEANUP(type, func)                                                            \
    static inline void func##p(type **p)                                                           \
    {                                                                                              \
        if (*p)                                                                                    \
            func(*p);                                                                              \
    }

/* Steal a pointer / fd out of a cleanup variable. */
#define hull_steal(p)                                                                              \
    ({                                                                                             \
        __typeof__(p) _s = (p);                                                                    \
        (p) = NULL;                                                                                \
        _s;                                                                                        \
    })
#define hull_steal_fd(fd)                                                                          \
    ({                                                                                             \
        int _s = (fd);                                                                             \
        (fd) = -1;                                                                                 \
        _s;                                                                                        \
    })

/* Allocation that aborts on OOM, as crun's xmalloc. */
void *xmalloc0(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- logging ------------------------------------------------------------------------------ */
enum hull_log_level { HULL_LOG_ERROR = 0, HULL_LOG_WARN, HULL_LOG_INFO, HULL_LOG_DEBUG };
/* Parses "error|warn|warning|info|debug"; returns -1 for anything else. */
int hull_log_level_parse(const char *s);
const char *hull_log_level_name(int level);
void hull_log_set_level(int level);
int hull_log_get_level(void);
void hull_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) hull_log(HULL_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  hull_log(HULL_LOG_WARN, __VA_ARGS__)
#define log_info(...)  hull_log(HULL_LOG_INFO, __VA_ARGS__)
#define log_debug(...) hull_log(HULL_LOG_DEBUG, __VA_ARGS__)

/* ---- file-system helpers ------------------------------------------------------------------ */
/* Writes data to path atomically: temp file in the same dir, fsync, rename, fsync dir. */
int hull_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           hull_error_t *err);
/* The same with flags.  HULL_ATOMIC_NOSYNC: no fsync of the file or the directory (files on
 * tmpfs, state that is rebuilt after a crash).  HULL_ATOMIC_PROCESS_TMP: the temp file is
 * ".NAME.tmp-PID" (several processes may replace the same file at once); the default
 * ".NAME.tmp" is what a crash leaves behind and a store can recognise. */
#define HULL_ATOMIC_NOSYNC      1u
#define HULL_ATOMIC_PROCESS_TMP 2u
int hull_write_file_atomic_flags(const char *path, const void *data, size_t len, mode_t mode,
                                 unsigned flags, hull_error_t *err);
/* Reads a whole file (NUL-terminated) of at most max bytes; larger files fail with EFBIG. */
int hull_read_file(const char *path, size_t max, char **out, size_t *len, hull_error_t *err);
/* mkdir -p with the given mode for created components. */
int hull_mkdir_p(const char *path, mode_t mode, hull_error_t *err);
/* rm -rf that never follows symlinks and stays on the same file system where it can; a
 * missing path is success. */
int hull_rm_rf(const char *path, hull_error_t *err);
/* The names of dir's entries but . and .. (a snapshot, to act on while the directory changes;
 * free with hull_strv_free_n(names, *n)); NULL and *n = 0 when dir cannot be opened. */
char **hull_dir_names(const char *dir, size_t *n);
/* fsync a directory. */
int hull_fsync_dir(const char *dir, hull_error_t *err);
/* Writes a short string to an existing file (e.g. cgroup or /proc knobs). */
int hull_write_string(const char *path, const char *value, hull_error_t *err);
/* Joins a and b with exactly one '/' between them (caller frees). */
char *hull_path_join(const char *a, const char *b);
/* Lexical path cleaning (no file-system access), the one copy every module uses: repeated '/',
 * "." components and a trailing '/' are dropped and the result is always absolute ("/" for the
 * root, also for "" and relative input: "a/b" is "/a/b").  A ".." component removes the
 * component before it and never climbs above "/" ("/../etc" is "/etc"), so the result names a
 * place inside whatever root it is later resolved in.  HULL_PATH_KEEP_DOTDOT leaves ".."
 * components as they are (to compare paths that are refused elsewhere when they have one).
 * For a relative form ("" for the root) use the result + 1.  Caller frees. */
#define HULL_PATH_KEEP_DOTDOT 1u
char *hull_path_clean(const char *p, unsigned flags);
/* True if p has a ".." component ("a..b" and "..." are names, not "..").  */
bool hull_path_has_dotdot(const char *p);
/* Opens path confined below rootfd (a container's or an image's root): one
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) call, so ".." and absolute symlinks stay
 * inside the root and /proc magic links are refused.  path may be absolute ("/etc/passwd" is
 * the root's) and "" or "/" is the root itself.  O_CLOEXEC always, O_NOCTTY unless O_PATH;
 * mode is used with O_CREAT.  Retried a few times on EAGAIN/EINTR (a rename racing the
 * lookup), then that error.  Kernels without openat2 (before 5.6) get -1/ENOSYS: there is
 * no string-joining fallback, confinement is refused rather than approximated.  Returns the
 * fd, or -1 with errno. */
int hull_open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* The same with more RESOLVE_* flags (e.g. RESOLVE_NO_XDEV). */
int hull_open_in_root_resolve(int rootfd, const char *path, int flags, mode_t mode,
                              uint64_t extra_resolve);

/* ---- JSON over yajl ---------------------------------------------------------------------- */
/* Parses text into a yajl tree; errors name the source. */
int hull_json_parse(const char *text, const char *what, yajl_val *out, hull_error_t *err);
int hull_json_parse_file(const char *path, size_t max, yajl_val *out, hull_error_t *err);
/* Object member lookup (NULL if absent or node is not an object). */
yajl_val hull_json_get(yajl_val obj, const char *key);
/* Typed getters: return the default when absent or of another type. */
const char *hull_json_get_string(yajl_val obj, const char *key, const char *def);
long long hull_json_get_int(yajl_val obj, const char *key, long long def);
bool hull_json_get_bool(yajl_val obj, const char *key, bool def);

/* A small growable-buffer JSON writer on top of yajl_gen. */
struct hull_json_writer {
    yajl_gen gen;
};
void hull_jw_init(struct hull_json_writer *w, bool pretty);
void hull_jw_free(struct hull_json_writer *w);
void hull_jw_begin_object(struct hull_json_writer *w);
void hull_jw_end_object(struct hull_json_writer *w);
void hull_jw_begin_array(struct hull_json_writer *w);
void hull_jw_end_array(struct hull_json_writer *w);
void hull_jw_key(struct hull_json_writer *w, const char *key);
void hull_jw_string(struct hull_json_writer *w, const char *s); /* NULL writes null */
void hull_jw_int(struct hull_json_writer *w, long long v);
void hull_jw_bool(struct hull_json_writer *w, bool v);
void hull_jw_null(struct hull_json_writer *w);
/* key + value shortcuts */
void hull_jw_kv_string(struct hull_json_writer *w, const char *key, const char *s);
void hull_jw_kv_int(struct hull_json_writer *w, const char *key, long long v);
void hull_jw_kv_bool(struct hull_json_writer *w, const char *key, bool v);
/* Returns a malloc'd copy of the document so far. */
char *hull_jw_finish(struct hull_json_writer *w, size_t *len);

/* ---- base64 (RFC 4648, standard alphabet, padded) ------------------------------------------ */
#define HULL_BASE64_ENCODED_LEN(n) (4 * (((n) + 2) / 3)) /* without the NUL */
#define HULL_BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)
/* Encodes into out (HULL_BASE64_ENCODED_LEN(len) + 1 bytes, NUL-terminated); returns the length. */
size_t hull_base64_encode_to(const void *in, size_t len, char *out);
/* Encodes into a new string (caller frees). */
char *hull_base64_encode(const void *in, size_t len);
/* Decodes len characters into out (HULL_BASE64_DECODED_MAX(len) bytes); returns the decoded
 * length.  Strict: only alphabet characters, then at most two '=' (missing padding is fine),
 * else -EINVAL.  Lenient (Docker config "auth" values): characters outside the alphabet are
 * skipped and decoding stops at the first '='; never fails. */
ssize_t hull_base64_decode(const char *in, size_t len, uint8_t *out, bool lenient);

/* ---- growable byte buffer ------------------------------------------------------------------
 * Text or binary: str and data are the same bytes.  add/addf keep them NUL-terminated (the NUL
 * is not counted in len); {0} is an empty buffer. */
struct hull_buf {
    union {
        char *str;
        uint8_t *data;
    };
    size_t len, cap;
};
void hull_buf_add(struct hull_buf *b, const void *data, size_t n);
void hull_buf_add_str(struct hull_buf *b, const char *s);
void hull_buf_addf(struct hull_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hull_buf_vaddf(struct hull_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (all of them when n >= len). */
void hull_buf_consume(struct hull_buf *b, size_t n);
/* Makes the capacity at least cap bytes (for callers that fill data themselves). */
void hull_buf_reserve(struct hull_buf *b, size_t cap);
/* The contents as a NUL-terminated string the caller frees (never NULL); b is empty after. */
char *hull_buf_steal(struct hull_buf *b, size_t *len);
void hull_buf_free(struct hull_buf *b);
#define _cleanup_buf_ __attribute__((cleanup(hull_buf_free)))

/* ---- string vectors (NULL-terminated arrays of malloc'd strings) --------------------------- */
size_t hull_strv_len(char *const *v);
void hull_strv_free(char **v);             /* NULL-terminated; NULL is fine */
void hull_strv_free_n(char **v, size_t n); /* the first n entries; NULL is fine */
/* A NULL-terminated copy of the first n entries (NULL entries become ""). */
char **hull_strv_dup_n(const char *const *v, size_t n);
/* Appends a copy of s to the NULL-terminated vector *v of *n entries. */
void hull_strv_push(char ***v, size_t *n, const char *s);
/* Appends s itself (malloc'd; the vector owns it from now on). */
void hull_strv_push_owned(char ***v, size_t *n, char *owned);
/* The same vector with its count in one struct ({0} is empty; v is NULL until the first add). */
struct hull_strv {
    char **v;
    size_t n;
};
void hull_strv_add(struct hull_strv *s, const char *str);
void hull_strv_add_owned(struct hull_strv *s, char *owned);
void hull_strv_clear(struct hull_strv *s); /* frees every entry; s is empty after */
/* Removes (and frees) the first entry equal to s; true if there was one. */
bool hull_strv_remove(char **v, size_t *n, const char *s);
bool hull_strv_has(char *const *v, size_t n, const char *s);

/* ---- host ------------------------------------------------------------------------------------ */
/* This build's architecture as GOARCH spells it ("amd64", "arm64", "386", ...); "" if unknown. */
const char *hull_goarch(void);

/* ---- processes ------------------------------------------------------------------------------- */
/* hull_clone_in_userns: a short-lived helper joins the mount namespace pre_mntns_fd (if >= 0)
 * and then the user namespace userns_fd, becomes uid/gid 0 there and clones the child with
 * clone_flags | CLONE_PARENT | SIGCHLD, so the child stays the caller's child while the
 * namespaces the clone creates are owned by the joined user namespace; the caller never joins
 * it.  The child runs child(arg) (which must not return) with the helper's pipe closed; the
 * helper is reaped before returning.  Returns the child's pid as seen from the caller's pid
 * namespace for children (a joined pid namespace gives a pid local to it) or -errno. */
#define HULL_CLONE_NONDUMPABLE  1u /* helper and child non-dumpable from their first instruction */
#define HULL_CLONE_ID0_OPTIONAL 2u /* go on as the overflow ids if uid/gid 0 is not mapped */
pid_t hull_clone_in_userns(int userns_fd, int pre_mntns_fd, unsigned long clone_flags,
                           unsigned flags, void (*child)(void *), void *arg);

/* ---- capabilities ------------------------------------------------------------------------ */
#define HULL_CAP_COUNT 41 /* CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40) */
/* "CAP_CHOWN" for 0; NULL outside the table. */
const char *hull_cap_name(int cap);
/* "CHOWN", "CAP_CHOWN", any case → number; -1 if unknown. */
int hull_cap_from_name(const char *name);

/* ---- ids and time ------------------------------------------------------------------------ */
/* 64 lowercase hex chars from getrandom(); out must hold 65 bytes. */
void hull_id_generate(char out[65]);
/* True if s is 1..64 chars of [0-9a-f] (the form Hull hands out). */
bool hull_id_is_valid(const char *s);
/* A name safe to use as one path component: non-empty, <= 255, no '/', not "." or "..". */
bool hull_is_safe_component(const char *s);
/* A user string as error messages may echo it: at most 64 bytes (cut at a UTF-8 character
 * boundary) plus "…" when longer.  buf must hold HULL_CLIP_SIZE bytes; returns buf. */
#define HULL_CLIP_MAX  64
#define HULL_CLIP_SIZE (HULL_CLIP_MAX + 4)
const char *hull_clip(const char *s, char *buf);
/* hull_clip with a buffer living until the end of the enclosing full expression's block. */
#define HULL_CLIP(s) hull_clip((s), (char[HULL_CLIP_SIZE]){0})
int64_t hull_now_ns(void);       /* CLOCK_REALTIME in ns */
int64_t hull_monotonic_ns(void); /* CLOCK_MONOTONIC in ns */
/* RFC3339Nano with numeric offset, as kubelet's CRI log parser expects. buf >= 48 bytes. */
void hull_format_rfc3339nano(int64_t ns, char *buf, size_t len);

#endif
