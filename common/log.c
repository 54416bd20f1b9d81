/* Leveled logging to stderr: "TIME LEVEL message". */

#include "common.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

/* The level is process configuration, set once from the config (or a flag) and on SIGHUP. */
static _Atomic int log_level = HULL_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int hull_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "warning") == 0)
        return HULL_LOG_WARN;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *hull_log_level_name(int level)
{
    if (level < 0 || level > HULL_LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

void hull_log_set_level(int level)
{
    if (level >= HULL_LOG_ERROR && level <= HULL_LOG_DEBUG)
        log_level = level;
}

int hull_log_get_level(void)
{
    return log_level;
}

void hull_log(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char ts[64];
    hull_format_rfc3339nano(hull_now_ns(), ts, sizeof(ts));
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* one write per line so concurrent threads do not interleave */
    char *line = NULL;
    n = asprintf(&line, "%s %-5s %s\n", ts, hull_log_level_name(level), msg);
    free(msg);
    if (n < 0)
        return;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    free(line);
}
