/* Unit tests for server/pod/sandbox_infra.c: the infra process's seccomp allowlist stays inside the
 * RuntimeDefault profile (each syscall allowed there unconditionally, for a process without
 * capabilities), and names every syscall the static hull-pause is known to make. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/spec/spec.h"
#include "server/pod/sandbox_int.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static bool arr_has(yajl_val arr, const char *s)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        const char *x = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static bool default_allows(yajl_val sc, const char *name)
{
    yajl_val calls = hull_json_get(sc, "syscalls");
    for (size_t i = 0; calls && i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        if (strcmp(hull_json_get_string(c, "action", ""), "SCMP_ACT_ALLOW") != 0 ||
            hull_json_get(c, "args") != NULL)
            continue;
        if (arr_has(hull_json_get(c, "names"), name))
            return true;
    }
    return false;
}

static void test_allowlist_inside_runtime_default(void **state)
{
    (void)state;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    spec_seccomp_default_write(&w, 0, NULL); /* no capability, as the infra process */
    _cleanup_free_ char *json = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    _cleanup_yajl_ yajl_val sc = NULL;
    assert_int_equal(hull_json_parse(json, "profile", &sc, NULL), 0);
    const int *nrs = NULL;
    size_t n = sandbox_infra_syscalls(&nrs);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nrs[i]);
        assert_non_null(name);
        if (!default_allows(sc, name))
            fail_msg("infra allowlist has `%s`, which RuntimeDefault does not allow", name);
        free(name);
    }
}

static void test_allowlist_covers_pause(void **state)
{
    (void)state;
    /* what strace shows the static hull-pause doing from its exec to its exit */
    const char *needed[] = {
        "execveat",
        "brk",
        "set_tid_address",
        "set_robust_list",
        "prlimit64",
        "getrandom",
        "mprotect",
        "prctl",
        "rt_sigaction",
        "rt_sigreturn",
        "wait4",
        "exit_group",
#if defined(__x86_64__)
        "arch_prctl",
        "pause",
        "readlink",
#endif
        NULL
    };
    const int *nrs = NULL;
    size_t n = sandbox_infra_syscalls(&nrs);
    for (const char **p = needed; *p; p++) {
        int nr = seccomp_syscall_resolve_name(*p);
        assert_true(nr >= 0);
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found = found || nrs[i] == nr;
        if (!found)
            fail_msg("infra allowlist lacks `%s`", *p);
    }
}

/* Stopping the infra process never hits a process that merely holds its pid now: with a start
 * time that does not match, or none recorded (a record from before the field, or an infra
 * process that was gone already when it was read), the process stays. */
static void test_kill_pause_needs_matching_start_time(void **state)
{
    (void)state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    uint64_t start = 0;
    for (int i = 0; i < 100 && (start = sandbox_proc_start_time(child)) == 0; i++)
        usleep(1000);
    sandbox_kill_pause(child, start + 1);
    bool alive_wrong = waitpid(child, NULL, WNOHANG) == 0;
    sandbox_kill_pause(child, 0);
    bool alive_unknown = waitpid(child, NULL, WNOHANG) == 0;
    if (alive_unknown)
        sandbox_kill_pause(child, start);
    bool reaped = waitpid(child, NULL, WNOHANG) < 0 && errno == ECHILD;
    if (!reaped) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    assert_true(start != 0);
    assert_true(alive_wrong);
    assert_true(alive_unknown);
    assert_true(reaped); /* the right start time: killed and reaped */
}

#if defined(__x86_64__)
/* i386 entry (int 0x80) from a 64-bit process: returns -errno in eax. */
static long int80_getpid(void)
{
    long ret = 20; /* i386 __NR_getpid */
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    return ret;
}

/* Does this kernel have the i386 entry at all (IA32 emulation; off, int 0x80 is a SIGSEGV)?
 * Without it there is no i386 ABI to get around the filter with. */
static bool have_i386_entry(void)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* a kernel without the i386 entry kills us with SIGSEGV: die of it, not through
         * cmocka's handler (which would go on running the tests in this child) */
        signal(SIGSEGV, SIG_DFL);
        syscall(SYS_exit_group, int80_getpid() > 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
#endif

/* The filter itself, loaded in a child: a native allowed call passes; the same call through
 * another ABI (x32 numbers share the x86-64 audit arch, i386 entry has its own) and a native
 * call not on the list fail with EPERM. */
static void test_filter_denies_other_abis(void **state)
{
    (void)state;
    struct sandbox_infra *in = NULL;
    hull_error_t err = NULL;
    assert_int_equal(sandbox_infra_new("/nonexistent", "/tmp", &in, &err), 0);
    unsigned short len = 0;
    const void *filter = sandbox_infra_filter(in, &len);
    assert_true(len > 4);
#if defined(__x86_64__)
    bool i386 = have_i386_entry();
    if (!i386)
        print_message("no i386 entry in this kernel: the int 0x80 check does not apply\n");
#endif
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct sock_fprog prog = {.len = len, .filter = (struct sock_filter *)filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            _exit(100);
        int bad = 0;
        if (syscall(SYS_getpid) <= 0)
            bad |= 1; /* allowed natively */
        if (syscall(SYS_getppid) != -1 || errno != EPERM)
            bad |= 2; /* not on the list */
#if defined(__x86_64__)
        if (syscall(0x40000000 | SYS_getpid) != -1 || errno != EPERM)
            bad |= 4; /* x32 */
        if (i386 && int80_getpid() != -EPERM)
            bad |= 8; /* i386 */
#endif
        syscall(SYS_exit_group, bad);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    sandbox_infra_free(in);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("filter check failed: %d", WEXITSTATUS(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowlist_inside_runtime_default),
        cmocka_unit_test(test_allowlist_covers_pause),
        cmocka_unit_test(test_kill_pause_needs_matching_start_time),
        cmocka_unit_test(test_filter_denies_other_abis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
