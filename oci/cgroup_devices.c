/* cgroup v2 device access: the OCI device rules (linux.resources.devices, the devices every
 * container gets and the spec's linux.devices) compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
 * program and attached to the container's cgroup with bpf(2).
 *
 * Semantics follow the v1 devices controller that the rules were written for: the rules are
 * read from the last one back, the first that matches decides; a rule matches when type,
 * major and minor match (type 'a' and -1 / absent numbers are wildcards) and, for an allow
 * rule, every requested access is in its access string, for a deny rule, any requested access
 * is.  No match: allowed (a new v1 cgroup allows everything until a deny-all rule).
 *
 * The program is attached with BPF_F_ALLOW_MULTI; programs this code attached before (known by
 * their name) are detached after the new one is in place, so there is no window without one. */

#include "oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>

#define PROG_NAME "hull_devices"

/* one rule: the spec's (cgroup.h), whose access bits are the BPF_DEVCG_ACC_* values */
_Static_assert(HULL_CG_DEV_READ == BPF_DEVCG_ACC_READ && HULL_CG_DEV_WRITE == BPF_DEVCG_ACC_WRITE &&
                   HULL_CG_DEV_MKNOD == BPF_DEVCG_ACC_MKNOD,
               "device access bits");
struct dev_rule {
    bool allow;
    char type;        /* 'a', 'b', 'c' */
    int64_t maj, min; /* -1: any */
    unsigned access;  /* BPF_DEVCG_ACC_* bits */
};

struct rules {
    struct dev_rule *v;
    size_t n;
};

static void rules_add(struct rules *r, struct dev_rule d)
{
    r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
    r->v[r->n++] = d;
}

/* The standard list every container gets (as the v1 path writes it). */
static void add_defaults(struct rules *r)
{
    static const struct dev_rule defaults[] = {
        {true, 'c', -1, -1, BPF_DEVCG_ACC_MKNOD},
        {true, 'b', -1, -1, BPF_DEVCG_ACC_MKNOD},
        {true, 'c', 1, 3, 7},    /* null */
        {true, 'c', 1, 8, 7},    /* random */
        {true, 'c', 1, 7, 7},    /* full */
        {true, 'c', 5, 0, 7},    /* tty */
        {true, 'c', 1, 5, 7},    /* zero */
        {true, 'c', 1, 9, 7},    /* urandom */
        {true, 'c', 5, 1, 7},    /* console */
        {true, 'c', 136, -1, 7}, /* pts */
        {true, 'c', 5, 2, 7},    /* ptmx */
        {true, 'c', 10, 200, 7}, /* tun */
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        rules_add(r, defaults[i]);
}

/* ---- code generation ------------------------------------------------------------------- */
struct prog {
    struct bpf_insn *v;
    size_t n;
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
    struct bpf_insn *i = &p->v[p->n++];
    memset(i, 0, sizeof(*i));
    i->code = code;
    i->dst_reg = dst & 0xf;
    i->src_reg = src & 0xf;
    i->off = off;
    i->imm = imm;
}

/* registers after the prologue: r2 type, r3 access, r4 major, r5 minor */
enum { R0 = 0, R1, R2, R3, R4, R5 };

static void emit_prologue(struct prog *p)
{
    emit(p, BPF_LDX | BPF_MEM | BPF_W, R2, R1, 0, 0); /* r2 = ctx->access_type */
    emit(p, BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, 0xffff);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, R3, R1, 0, 0);
    emit(p, BPF_ALU | BPF_RSH | BPF_K, R3, 0, 0, 16);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, R4, R1, 4, 0); /* r4 = ctx->major */
    emit(p, BPF_LDX | BPF_MEM | BPF_W, R5, R1, 8, 0); /* r5 = ctx->minor */
}

static void emit_verdict(struct prog *p, bool allow)
{
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, allow ? 1 : 0);
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static bool rule_is_total(const struct dev_rule *d)
{
    return d->type == 'a' && d->maj < 0 && d->min < 0 && d->access == 7;
}

/* Emits one rule: checks jump past the block when the rule does not match. */
static void emit_rule(struct prog *p, const struct dev_rule *d)
{
    size_t jumps[8], nj = 0;
    if (d->type != 'a') {
        jumps[nj++] = p->n;
        emit(p, BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, 0,
             d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    }
    if (d->access != 7) {
        emit(p, BPF_ALU | BPF_MOV | BPF_X, R1, R3, 0, 0);
        if (d->allow) {
            /* a requested access outside the rule: no match */
            emit(p, BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, (int32_t)(~d->access & 7));
            jumps[nj++] = p->n;
            emit(p, BPF_JMP32 | BPF_JNE | BPF_K, R1, 0, 0, 0);
        } else {
            /* none of the rule's accesses requested: no match */
            emit(p, BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, (int32_t)d->access);
            jumps[nj++] = p->n;
            emit(p, BPF_JMP32 | BPF_JEQ | BPF_K, R1, 0, 0, 0);
        }
    }
    if (d->maj >= 0) {
        jumps[nj++] = p->n;
        emit(p, BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, 0, (int32_t)(uint32_t)d->maj);
    }
    if (d->min >= 0) {
        jumps[nj++] = p->n;
        emit(p, BPF_JMP32 | BPF_JNE | BPF_K, R5, 0, 0, (int32_t)(uint32_t)d->min);
    }
    emit_verdict(p, d->allow);
    for (size_t i = 0; i < nj; i++)
        p->v[jumps[i]].off = (int16_t)(p->n - jumps[i] - 1);
}

static void compile(const struct rules *r, struct prog *p)
{
    emit_prologue(p);
    for (size_t i = r->n; i-- > 0;) {
        emit_rule(p, &r->v[i]);
        if (rule_is_total(&r->v[i]))
            return; /* decides everything: nothing after it runs */
    }
    emit_verdict(p, true);
}

/* ---- bpf(2) ---------------------------------------------------------------------------- */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
    return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int prog_load(const struct prog *p, hull_error_t *err)
{
    static char log[16384];
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)p->v;
    a.insn_cnt = (uint32_t)p->n;
    a.license = (uint64_t)(uintptr_t) "Apache";
    snprintf(a.prog_name, sizeof(a.prog_name), "%s", PROG_NAME);
    int fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd >= 0)
        return fd;
    int e = errno;
    /* again with the verifier's log for the error message */
    log[0] = '\0';
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = sizeof(log);
    a.log_level = 1;
    fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd >= 0)
        return fd;
    return hull_error_set(err, e, "load the cgroup device BPF program (%zu instructions)%s%.300s",
                          p->n, log[0] ? ": " : "", log);
}

/* The ids of the programs attached directly to the cgroup. */
static int prog_query(int cgfd, uint32_t **ids, uint32_t *n, hull_error_t *err)
{
    *ids = NULL;
    *n = 0;
    uint32_t cap = 64;
    for (;;) {
        uint32_t *v = xmalloc0(cap * sizeof(uint32_t));
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.query.target_fd = (uint32_t)cgfd;
        a.query.attach_type = BPF_CGROUP_DEVICE;
        a.query.prog_ids = (uint64_t)(uintptr_t)v;
        a.query.prog_cnt = cap;
        if (sys_bpf(BPF_PROG_QUERY, &a) == 0) {
            *ids = v;
            *n = a.query.prog_cnt;
            return 0;
        }
        int e = errno;
        free(v);
        if (e == ENOSPC && cap < 4096) {
            cap *= 4;
            continue;
        }
        return hull_error_set(err, e, "query the cgroup's device programs");
    }
}

static bool prog_is_ours(int progfd)
{
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.info.bpf_fd = (uint32_t)progfd;
    a.info.info_len = sizeof(info);
    a.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0)
        return false;
    return strncmp(info.name, PROG_NAME, sizeof(info.name)) == 0;
}

int oci_cgroup_v2_devices(const char *dir, const struct hull_cgroup_resources *res,
                          const struct oci_spec *spec, hull_error_t *err)
{
    struct rules r = {0};
    int ret;
    for (size_t i = 0; i < res->n_devices; i++) {
        const struct hull_cgroup_device_rule *d = &res->devices[i];
        rules_add(&r, (struct dev_rule){d->allow, d->type, d->major, d->minor, d->access});
    }
    add_defaults(&r);
    for (size_t i = 0; spec && i < spec->n_devices; i++) {
        const struct oci_device *d = &spec->devices[i];
        if (d->type == 'c' || d->type == 'b')
            rules_add(&r, (struct dev_rule){true, d->type, d->major, d->minor, 7});
    }
    struct prog p = {0};
    compile(&r, &p);
    free(r.v);
    _cleanup_free_ struct bpf_insn *insns = p.v;

    _cleanup_close_ int cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgfd < 0)
        return hull_error_set(err, errno, "open cgroup `%s`", dir);
    _cleanup_free_ uint32_t *old = NULL;
    uint32_t n_old = 0;
    if ((ret = prog_query(cgfd, &old, &n_old, err)) < 0)
        return ret;
    _cleanup_close_ int progfd = prog_load(&p, err);
    if (progfd < 0)
        return progfd;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t)cgfd;
    a.attach_bpf_fd = (uint32_t)progfd;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
        return hull_error_set(err, errno, "attach the device BPF program to `%s`", dir);
    /* the new program is in force: drop the ones it replaces */
    for (uint32_t i = 0; i < n_old; i++) {
        union bpf_attr g;
        memset(&g, 0, sizeof(g));
        g.prog_id = old[i];
        _cleanup_close_ int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
        if (fd < 0 || !prog_is_ours(fd))
            continue;
        union bpf_attr d;
        memset(&d, 0, sizeof(d));
        d.target_fd = (uint32_t)cgfd;
        d.attach_bpf_fd = (uint32_t)fd;
        d.attach_type = BPF_CGROUP_DEVICE;
        if (sys_bpf(BPF_PROG_DETACH, &d) < 0 && ret == 0)
            ret = hull_error_set(err, errno, "detach the old device BPF program from `%s`", dir);
    }
    return ret;
}
