/* CRI sysctl validation (sysctl.h). */
#include "server/pod/pod.h"

#include <errno.h>
#include <string.h>

char *cri_sysctl_normalize(const char *key)
{
    char *k = xstrdup(key);
    /* as kubelet: the first separator tells the form */
    const char *sep = strpbrk(k, "./");
    if (sep && *sep == '/')
        for (char *p = k; *p; p++) {
            if (*p == '/')
                *p = '.';
            else if (*p == '.')
                *p = '/';
        }
    return k;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '/';
}

int cri_sysctl_validate(const char *key, const char *value, bool host_network, bool host_ipc,
                        hull_error_t *err)
{
    if (key == NULL || *key == '\0' || strlen(key) > CRI_SYSCTL_NAME_MAX)
        return hull_error_setx(err, EINVAL, "sysctl: empty or too long name");
    for (const char *c = key; *c; c++)
        if (!name_char_ok(*c))
            return hull_error_setx(err, EINVAL, "sysctl \"%s\": invalid character in name", key);
    size_t n = strlen(key);
    /* no empty, "." or ".." component in either form */
    if (key[0] == '.' || key[0] == '/' || key[n - 1] == '.' || key[n - 1] == '/' ||
        strstr(key, "..") || strstr(key, "//") || strstr(key, "/.") || strstr(key, "./"))
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": invalid name", key);
    _cleanup_free_ char *dotted = cri_sysctl_normalize(key);
    bool ipc = has_prefix(dotted, "kernel.shm") || has_prefix(dotted, "kernel.msg") ||
               strcmp(dotted, "kernel.sem") == 0 || has_prefix(dotted, "fs.mqueue.");
    bool net = has_prefix(dotted, "net.");
    if (!ipc && !net)
        return hull_error_setx(err, EINVAL,
                               "sysctl \"%s\" is not allowed: only namespaced sysctls "
                               "(kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*) "
                               "can be set for a pod",
                               key);
    if (net && host_network)
        return hull_error_setx(err, EINVAL,
                               "sysctl \"%s\" is not allowed: the pod uses the host network", key);
    if (ipc && host_ipc)
        return hull_error_setx(
            err, EINVAL, "sysctl \"%s\" is not allowed: the pod uses the host IPC namespace", key);
    if (value == NULL || strlen(value) > CRI_SYSCTL_VALUE_MAX)
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": missing or too long value", key);
    for (const char *c = value; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return hull_error_setx(err, EINVAL, "sysctl \"%s\": control character in value", key);
    /* a value is written to this one key only; "1+kernel.core_pattern=…" is just a bad value
     * for the kernel, but refuse the shape outright */
    if (strchr(value, '=') || strchr(value, '+'))
        return hull_error_setx(err, EINVAL, "sysctl \"%s\": value must not contain '=' or '+'",
                               key);
    return 0;
}
