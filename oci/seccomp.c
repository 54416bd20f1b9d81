/* Seccomp from linux.seccomp through libseccomp.  The filter is compiled to BPF in hull-oci
 * (before the container is set up) so the container process only installs it. */

#include "oci/oci.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int action_from_name(const char *name, uint32_t errno_ret, uint32_t *out, hull_error_t *err)
{
    if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO(errno_ret);
    else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL_THREAD;
    else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
        *out = SCMP_ACT_TRACE(errno_ret);
    else if (strcmp(name, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else if (strcmp(name, "SCMP_ACT_NOTIFY") == 0)
        return hull_error_setx(err, ENOTSUP,
                               "seccomp: SCMP_ACT_NOTIFY is not supported by hull-oci (no "
                               "listenerPath support)");
    else
        return hull_error_setx(err, EINVAL, "seccomp: unknown action `%s`", name);
    return 0;
}

static int arch_from_name(const char *name, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t arch;
    } archs[] = {
        {"SCMP_ARCH_X86", SCMP_ARCH_X86},
        {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
        {"SCMP_ARCH_X32", SCMP_ARCH_X32},
        {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
        {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
        {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
        {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
        {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
        {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
        {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
        {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
        {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
        {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
        {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
        {"SCMP_ARCH_S390", SCMP_ARCH_S390},
        {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
        {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
    };
    for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
        if (strcmp(name, archs[i].name) == 0) {
            *out = archs[i].arch;
            return 0;
        }
    }
    return -1;
}

static int op_from_name(const char *name, enum scmp_compare *out)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE},
        {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE},
        {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(name, ops[i].name) == 0) {
            *out = ops[i].op;
            return 0;
        }
    }
    return -1;
}

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr,
                    const struct hull_ocispec_syscall *call, const char *name, hull_error_t *err)
{
    struct scmp_arg_cmp cmps[6];
    unsigned n = 0;
    bool by_index[6] = {false};
    bool repeated = false;
    for (size_t i = 0; i < call->n_args; i++) {
        const struct hull_ocispec_seccomp_arg *a = &call->args[i];
        uint32_t idx = a->index;
        enum scmp_compare op;
        if (idx > 5)
            return hull_error_setx(err, EINVAL, "seccomp `%s`: arg index %" PRIu32 " > 5", name,
                                   idx);
        if (op_from_name(a->op, &op) < 0)
            return hull_error_setx(err, EINVAL, "seccomp `%s`: unknown op `%s`", name, a->op);
        repeated = repeated || by_index[idx];
        by_index[idx] = true;
        if (n < 6)
            cmps[n++] = (struct scmp_arg_cmp){idx, op, a->value, a->value_two};
    }
    int r;
    if (!repeated) {
        r = seccomp_rule_add_array(ctx, action, nr, n, n ? cmps : NULL);
    } else {
        /* several conditions on one argument: OR them, one rule each (as runc does) */
        r = 0;
        for (unsigned i = 0; i < n && r == 0; i++)
            r = seccomp_rule_add_array(ctx, action, nr, 1, &cmps[i]);
    }
    if (r == -EEXIST || r == -EACCES)
        return 0; /* same as default action / duplicate */
    if (r < 0)
        return hull_error_set(err, -r, "seccomp: add rule for `%s`", name);
    return 0;
}

int oci_seccomp_compile(const struct hull_ocispec_seccomp *sc, void **bpf, size_t *len,
                        unsigned *flags, hull_error_t *err)
{
    *bpf = NULL;
    *len = 0;
    *flags = 0;
    if (sc == NULL)
        return 0;
    uint32_t def_errno = sc->has_default_errno_ret ? sc->default_errno_ret : EPERM;
    uint32_t def;
    int r = action_from_name(sc->default_action, def_errno, &def, err);
    if (r < 0)
        return r;
    if (sc->listener_path)
        return hull_error_setx(err, ENOTSUP, "seccomp: listenerPath (notify) is not supported");
    __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = seccomp_init(def);
    if (ctx == NULL)
        return hull_error_setx(err, EINVAL, "seccomp_init failed");
    for (size_t i = 0; sc->architectures && sc->architectures[i]; i++) {
        const char *a = sc->architectures[i];
        uint32_t arch;
        if (arch_from_name(a, &arch) < 0)
            return hull_error_setx(err, EINVAL, "seccomp: unknown architecture `%s`", a);
        r = seccomp_arch_add(ctx, arch);
        if (r < 0 && r != -EEXIST)
            return hull_error_set(err, -r, "seccomp: add architecture `%s`", a);
    }
    for (size_t i = 0; sc->flags && sc->flags[i]; i++) {
        const char *f = sc->flags[i];
        if (strcmp(f, "SECCOMP_FILTER_FLAG_LOG") == 0)
            *flags |= SECCOMP_FILTER_FLAG_LOG;
        else if (strcmp(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
            *flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        else if (strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
            *flags |= SECCOMP_FILTER_FLAG_TSYNC;
        else
            return hull_error_setx(err, EINVAL, "seccomp: unknown flag `%s`", f);
    }
    for (size_t i = 0; i < sc->n_syscalls; i++) {
        const struct hull_ocispec_syscall *c = &sc->syscalls[i];
        uint32_t action;
        r = action_from_name(c->action, c->has_errno_ret ? c->errno_ret : EPERM, &action, err);
        if (r < 0)
            return r;
        for (size_t j = 0; c->names[j]; j++) {
            const char *name = c->names[j];
            int nr = seccomp_syscall_resolve_name(name);
            if (nr == __NR_SCMP_ERROR) {
                log_debug("seccomp: unknown syscall `%s` skipped", name);
                continue;
            }
            if (action == def)
                continue;
            r = add_rule(ctx, action, nr, c, name, err);
            if (r < 0)
                return r;
        }
    }
    /* export the program through a memfd (seccomp_export_bpf writes to an fd) */
    _cleanup_close_ int mfd = memfd_create("hull-seccomp", MFD_CLOEXEC);
    if (mfd < 0)
        return hull_error_set(err, errno, "memfd_create");
    r = seccomp_export_bpf(ctx, mfd);
    if (r < 0)
        return hull_error_set(err, -r, "seccomp_export_bpf");
    off_t size = lseek(mfd, 0, SEEK_END);
    if (size <= 0 || lseek(mfd, 0, SEEK_SET) < 0)
        return hull_error_set(err, errno ? errno : EIO, "seccomp: empty program");
    char *buf = xmalloc0((size_t)size);
    for (off_t off = 0; off < size;) {
        ssize_t n = read(mfd, buf + off, (size_t)(size - off));
        if (n <= 0) {
            free(buf);
            return hull_error_set(err, n < 0 ? errno : EIO, "seccomp: read program");
        }
        off += n;
    }
    *bpf = buf;
    *len = (size_t)size;
    return 0;
}

int oci_seccomp_load(const void *bpf, size_t len, unsigned flags, hull_error_t *err)
{
    if (bpf == NULL)
        return 0;
    struct sock_fprog prog = {
        .len = (unsigned short)(len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)bpf,
    };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) {
        if (errno == EINVAL && flags) {
            /* old kernels without some flags: retry without them */
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
                return 0;
        }
        return hull_error_set(err, errno, "load seccomp filter");
    }
    return 0;
}
