/* Error objects and allocation helpers. */

#include "common.h"

#include <errno.h>
#include <string.h>

void *xmalloc0(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *r = realloc(p, n ? n : 1);
    if (r == NULL)
        abort();
    return r;
}

char *xstrdup(const char *s)
{
    char *r = strdup(s ? s : "");
    if (r == NULL)
        abort();
    return r;
}

char *xstrndup(const char *s, size_t n)
{
    char *r = strndup(s ? s : "", n);
    if (r == NULL)
        abort();
    return r;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *r = NULL;
    va_start(ap, fmt);
    if (vasprintf(&r, fmt, ap) < 0)
        abort();
    va_end(ap);
    return r;
}

static int error_vset(hull_error_t *err, int status, int errnum, const char *fmt, va_list ap)
{
    if (status <= 0)
        status = EINVAL;
    if (err == NULL || *err != NULL)
        return -status;
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    struct hull_error *e = xmalloc0(sizeof(*e));
    e->status = status;
    if (errnum > 0) {
        e->msg = xasprintf("%s: %s", msg, strerror(errnum));
        free(msg);
    } else {
        e->msg = msg;
    }
    *err = e;
    return -status;
}

int hull_error_set(hull_error_t *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = error_vset(err, errnum > 0 ? errnum : EINVAL, errnum, fmt, ap);
    va_end(ap);
    return r;
}

int hull_error_setx(hull_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = error_vset(err, status, 0, fmt, ap);
    va_end(ap);
    return r;
}

int hull_error_wrap(hull_error_t *err, const char *fmt, ...)
{
    if (err == NULL || *err == NULL)
        return -EIO;
    char *ctx = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *m = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = m;
    return -(*err)->status;
}

void hull_error_free(hull_error_t *err)
{
    if (err == NULL || *err == NULL)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

int hull_error_status(const hull_error_t *err)
{
    if (err == NULL || *err == NULL)
        return EIO;
    return (*err)->status;
}

const char *hull_error_msg(const hull_error_t *err)
{
    if (err == NULL || *err == NULL)
        return "unknown error";
    return (*err)->msg;
}

void hull_freep(void *p)
{
    free(*(void **)p);
}

void hull_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

void hull_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

void hull_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
