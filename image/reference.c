/* Image references, normalised as docker/distribution's reference package (and so kubelet and
 * containerd) do: [domain[:port]/]path[:tag][@digest]. */

#include "image/image.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#define DEFAULT_DOMAIN "docker.io"
#define MAX_NAME_LEN   255

bool image_digest_valid(const char *s)
{
    if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
        return false;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t n)
{
    if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
        return false;
    size_t i = 0;
    while (i < n) {
        if (is_alnum_lower(s[i])) {
            i++;
            continue;
        }
        /* separator */
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j >= n || !is_alnum_lower(s[j]))
            return false;
        i = j;
    }
    return true;
}

/* host (dns labels or IPv4 or [IPv6]) with optional :port */
static bool domain_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    size_t hostlen = n;
    const char *colon = NULL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':')
                return false;
        hostlen = (size_t)(close - s) + 1;
        if (hostlen < n) {
            if (s[hostlen] != ':')
                return false;
            colon = s + hostlen;
        }
    } else {
        colon = memchr(s, ':', n);
        if (colon)
            hostlen = (size_t)(colon - s);
        if (hostlen == 0)
            return false;
        /* labels: [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? separated by dots */
        size_t start = 0;
        for (size_t i = 0; i <= hostlen; i++) {
            if (i == hostlen || s[i] == '.') {
                if (i == start || s[start] == '-' || s[i - 1] == '-')
                    return false;
                start = i + 1;
            } else if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
                return false;
            }
        }
    }
    if (colon) {
        size_t plen = n - (size_t)(colon - s) - 1;
        if (plen == 0 || plen > 5)
            return false;
        for (size_t i = 1; i <= plen; i++)
            if (!isdigit((unsigned char)colon[i]))
                return false;
    }
    return true;
}

static bool tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

void image_ref_free(struct image_ref *r)
{
    if (r == NULL)
        return;
    free(r->domain);
    free(r->path);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

int image_ref_parse(const char *s, struct image_ref *out, hull_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL || *s == '\0')
        return hull_error_setx(err, EINVAL, "invalid image reference \"\": empty");
    if (strlen(s) > 4096)
        return hull_error_setx(err, EINVAL, "invalid image reference: longer than 4096 bytes");
    _cleanup_free_ char *name = xstrdup(s);
    _cleanup_free_ char *digest = NULL, *tag = NULL, *domain = NULL, *path = NULL;

    char *at = strchr(name, '@');
    if (at) {
        *at = '\0';
        const char *d = at + 1;
        if (strncmp(d, "sha256:", 7) != 0) {
            if (strchr(d, ':') != NULL && strncmp(d, "sha", 3) == 0)
                return hull_error_setx(err, EINVAL,
                                       "invalid image reference \"%s\": unsupported digest "
                                       "algorithm (only sha256)",
                                       s);
            return hull_error_setx(err, EINVAL, "invalid image reference \"%s\": bad digest", s);
        }
        if (!image_digest_valid(d))
            return hull_error_setx(err, EINVAL,
                                   "invalid image reference \"%s\": digest is not sha256:<64 "
                                   "lowercase hex>",
                                   s);
        digest = xstrdup(d);
    }
    /* tag: after the last ':' that follows the last '/' */
    char *slash = strrchr(name, '/');
    char *colon = strrchr(slash ? slash : name, ':');
    if (colon) {
        *colon = '\0';
        if (!tag_valid(colon + 1))
            return hull_error_setx(err, EINVAL, "invalid image reference \"%s\": bad tag \"%s\"", s,
                                   colon + 1);
        tag = xstrdup(colon + 1);
    }
    if (*name == '\0')
        return hull_error_setx(err, EINVAL, "invalid image reference \"%s\": no repository name",
                               s);
    /* domain: the first component, if it looks like a host */
    char *first_slash = strchr(name, '/');
    const char *rest = name;
    if (first_slash) {
        size_t n = (size_t)(first_slash - name);
        bool is_domain = memchr(name, '.', n) || memchr(name, ':', n) ||
                         (n == 9 && strncmp(name, "localhost", 9) == 0);
        for (size_t i = 0; i < n && !is_domain; i++)
            if (isupper((unsigned char)name[i]))
                is_domain = true;
        if (is_domain) {
            if (!domain_valid(name, n))
                return hull_error_setx(err, EINVAL,
                                       "invalid image reference \"%s\": bad registry host \"%.*s\"",
                                       s, (int)n, name);
            domain = xstrndup(name, n);
            rest = first_slash + 1;
        }
    }
    if (domain == NULL)
        domain = xstrdup(DEFAULT_DOMAIN);
    if (strcmp(domain, "index.docker.io") == 0 || strcmp(domain, "registry-1.docker.io") == 0) {
        free(domain);
        domain = xstrdup(DEFAULT_DOMAIN);
    }
    if (strcmp(domain, DEFAULT_DOMAIN) == 0 && strchr(rest, '/') == NULL)
        path = xasprintf("library/%s", rest);
    else
        path = xstrdup(rest);

    /* validate path components */
    for (const char *p = path;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!component_valid(p, n)) {
            for (size_t i = 0; i < n; i++)
                if (isupper((unsigned char)p[i]))
                    return hull_error_setx(err, EINVAL,
                                           "invalid image reference \"%s\": repository name must "
                                           "be lowercase",
                                           s);
            return hull_error_setx(err, EINVAL,
                                   "invalid image reference \"%s\": bad repository name "
                                   "component \"%.*s\"",
                                   s, (int)n, p);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (strlen(domain) + 1 + strlen(path) > MAX_NAME_LEN)
        return hull_error_setx(err, EINVAL,
                               "invalid image reference \"%s\": repository name longer than %d", s,
                               MAX_NAME_LEN);
    if (is_hex64(rest) && tag == NULL && digest == NULL)
        return hull_error_setx(err, EINVAL,
                               "invalid image reference \"%s\": a 64-character hex string is an "
                               "image id, not a repository name",
                               s);
    if (tag == NULL && digest == NULL)
        tag = xstrdup("latest");
    out->domain = hull_steal(domain);
    out->path = hull_steal(path);
    out->tag = hull_steal(tag);
    out->digest = hull_steal(digest);
    return 0;
}

char *image_ref_repo(const struct image_ref *r)
{
    return xasprintf("%s/%s", r->domain, r->path);
}

char *image_ref_string(const struct image_ref *r)
{
    if (r->tag && r->digest)
        return xasprintf("%s/%s:%s@%s", r->domain, r->path, r->tag, r->digest);
    if (r->digest)
        return xasprintf("%s/%s@%s", r->domain, r->path, r->digest);
    return xasprintf("%s/%s:%s", r->domain, r->path, r->tag ? r->tag : "latest");
}
