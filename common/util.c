/* Ids, names and time. */

#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void hull_id_generate(char out[65])
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        got += (size_t)r;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[64] = '\0';
}

bool hull_id_is_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool hull_is_safe_component(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 255)
        return false;
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    return strchr(s, '/') == NULL;
}

const char *hull_clip(const char *s, char *buf)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (n <= HULL_CLIP_MAX) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    n = HULL_CLIP_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* do not cut a multi-byte character */
    memcpy(buf, s, n);
    memcpy(buf + n, "\xe2\x80\xa6", 4); /* "…" and NUL */
    return buf;
}

int64_t hull_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t hull_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void hull_format_rfc3339nano(int64_t ns, char *buf, size_t len)
{
    time_t sec = (time_t)(ns / 1000000000LL);
    long nsec = (long)(ns % 1000000000LL);
    struct tm tm;
    localtime_r(&sec, &tm);
    char base[64], zone[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(zone, sizeof(zone), "Z");
    } else {
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        snprintf(zone, sizeof(zone), "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
    }
    snprintf(buf, len, "%s.%09ld%s", base, nsec, zone);
}
