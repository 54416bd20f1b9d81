/* hull-pause: the pod infra process, started only for pods that share one PID namespace.
 * It is PID 1 of that namespace: it reaps orphans and exits on SIGINT/SIGTERM.  hulld confines
 * it before exec (server/sandbox_infra.c) and runs it from a memfd, so it names itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts("hull-pause 0.1.0");
        return 0;
    }
    prctl(PR_SET_NAME, "hull-pause", 0, 0, 0);
    /* only a process with CAP_SYS_PTRACE may look into /proc/1/{root,fd,mem,environ} */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct sigaction term = {.sa_handler = on_term};
    struct sigaction chld = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGCHLD, &chld, NULL);
    for (;;)
        pause();
}
