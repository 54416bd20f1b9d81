/* Test-only fault injection: with HULL_TEST_CRASH_AT=<name> in the environment, the process
 * SIGKILLs itself when it reaches the crash point of that name, so crash recovery can be tested
 * at every step of an operation.  Without the variable this is one getenv() call. */
#ifndef HULL_COMMON_CRASHPOINT_H
#define HULL_COMMON_CRASHPOINT_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void hull_crash_point(const char *name)
{
    const char *want = getenv("HULL_TEST_CRASH_AT");
    if (want == NULL || strcmp(want, name) != 0)
        return;
    static const char msg[] = "HULL_TEST_CRASH_AT: killing myself\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    kill(getpid(), SIGKILL);
    pause();
}

/* With HULL_TEST_STOP_AT=<name>, the process stops itself (SIGSTOP) at the stop point of that
 * name, so a test can change the world (e.g. recycle a pid) between two steps and SIGCONT it. */
static inline void hull_stop_point(const char *name)
{
    const char *want = getenv("HULL_TEST_STOP_AT");
    if (want == NULL || strcmp(want, name) != 0)
        return;
    kill(getpid(), SIGSTOP);
}

#endif
