/* OCI runtime-spec generation from CRI configs: see spec.h.  This file is the builder; what
 * the other spec_*.c files hold is listed in spec_internal.h.
 *
 * Everything pod- or image-supplied is treated as untrusted input here:
 *  - the image's /etc/passwd and /etc/group are read through the rootfs dirfd with
 *    hull_open_in_root() (openat2 RESOLVE_IN_ROOT), never by joining strings, with bounded file
 *    (1 MiB) and line (64 KiB) sizes and at most NGROUPS_MAX additional gids;
 *  - ids are range-checked as unsigned 32-bit (and (uint32_t)-1 refused: setresuid() reads it as
 *    "unchanged"); the primary gid is always in additionalGids;
 *  - image volumes are container paths only: cleaned and confined below "/", and their host
 *    directories are named by a hash under <container_dir>/volumes, never by the path itself;
 *  - sysctls are checked by cri_sysctl_validate() (sysctl.h), as RunPodSandbox checks them;
 *  - annotations are passed through as data and never read for any setting. */
#include "server/spec/spec.h"
#include "server/spec/spec_internal.h"
#include "server/pod/pod.h"
#include "common/cgroup_systemd.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define DEFAULT_NOFILE   1048576
#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define NS_MODE_POD       RUNTIME__V1__NAMESPACE_MODE__POD
#define NS_MODE_CONTAINER RUNTIME__V1__NAMESPACE_MODE__CONTAINER
#define NS_MODE_NODE      RUNTIME__V1__NAMESPACE_MODE__NODE
#define NS_MODE_TARGET    RUNTIME__V1__NAMESPACE_MODE__TARGET

const char *const spec_default_caps[] = {"CAP_CHOWN",
                                         "CAP_DAC_OVERRIDE",
                                         "CAP_FSETID",
                                         "CAP_FOWNER",
                                         "CAP_MKNOD",
                                         "CAP_NET_RAW",
                                         "CAP_SETGID",
                                         "CAP_SETUID",
                                         "CAP_SETFCAP",
                                         "CAP_SETPCAP",
                                         "CAP_NET_BIND_SERVICE",
                                         "CAP_SYS_CHROOT",
                                         "CAP_KILL",
                                         "CAP_AUDIT_WRITE",
                                         NULL};

#define N_CAPS HULL_CAP_COUNT

/* ---- capabilities ------------------------------------------------------------------------ */
static uint64_t known_caps_mask(void)
{
    int last = N_CAPS - 1;
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file("/proc/sys/kernel/cap_last_cap", 64, &buf, NULL, NULL) == 0) {
        int v = atoi(buf);
        if (v > 0 && v < last)
            last = v;
    }
    return last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
}

/* The capabilities this process holds (containerd's "all capabilities" are the current ones:
 * a runtime cannot hand out what it does not have). */
static uint64_t host_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    uint64_t known = known_caps_mask();
    if (syscall(SYS_capget, &h, d) < 0)
        return known;
    uint64_t eff = (uint64_t)d[0].effective | ((uint64_t)d[1].effective << 32);
    return eff & known;
}

static bool caps_list_has_all(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(S(v[i]), "ALL") == 0 || strcasecmp(S(v[i]), "CAP_ALL") == 0)
            return true;
    return false;
}

static int compute_caps(const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                        uint64_t *bounding, uint64_t *ambient, hull_error_t *err)
{
    uint64_t host = host_caps();
    uint64_t caps = 0, amb = 0;
    for (const char *const *c = spec_default_caps; *c; c++)
        caps |= 1ULL << hull_cap_from_name(*c);
    const Runtime__V1__Capability *cc = sc ? sc->capabilities : NULL;
    if (privileged)
        caps = host;
    else if (cc) {
        if (caps_list_has_all(cc->add_capabilities, cc->n_add_capabilities))
            caps = host;
        if (caps_list_has_all(cc->drop_capabilities, cc->n_drop_capabilities))
            caps = 0;
        for (size_t i = 0; i < cc->n_add_capabilities; i++) {
            const char *n = S(cc->add_capabilities[i]);
            if (caps_list_has_all(&cc->add_capabilities[i], 1))
                continue;
            int c = hull_cap_from_name(n);
            if (c < 0)
                return hull_error_setx(err, EINVAL, "add_capabilities: unknown capability \"%s\"",
                                       n);
            caps |= 1ULL << c;
        }
        for (size_t i = 0; i < cc->n_drop_capabilities; i++) {
            const char *n = S(cc->drop_capabilities[i]);
            if (caps_list_has_all(&cc->drop_capabilities[i], 1))
                continue;
            int c = hull_cap_from_name(n);
            if (c < 0)
                return hull_error_setx(err, EINVAL, "drop_capabilities: unknown capability \"%s\"",
                                       n);
            caps &= ~(1ULL << c);
        }
    }
    for (size_t i = 0; cc && i < cc->n_add_ambient_capabilities; i++) {
        const char *n = S(cc->add_ambient_capabilities[i]);
        int c = hull_cap_from_name(n);
        if (c < 0)
            return hull_error_setx(err, EINVAL,
                                   "add_ambient_capabilities: unknown capability \"%s\"", n);
        amb |= 1ULL << c;
    }
    *bounding = caps | amb;
    *ambient = amb;
    return 0;
}

/* The deprecated CRI string fields, still honoured. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const char *sc_apparmor_profile(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    return S(sc->apparmor_profile);
}
#pragma GCC diagnostic pop

/* ---- namespaces -------------------------------------------------------------------------- */
static int plan_namespaces(const struct spec_input *in,
                           const Runtime__V1__LinuxContainerSecurityContext *sc, struct ns_plan *ns,
                           hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
    if (o == NULL && sb->config && sb->config->linux && sb->config->linux->security_context)
        o = sb->config->linux->security_context->namespace_options;
    int net = o ? (int)o->network : (sb->host_network ? NS_MODE_NODE : NS_MODE_POD);
    int pid = o ? (int)o->pid : (sb->host_pid ? NS_MODE_NODE : NS_MODE_CONTAINER);
    int ipc = o ? (int)o->ipc : (sb->host_ipc ? NS_MODE_NODE : NS_MODE_POD);
    memset(ns, 0, sizeof(*ns));

    {
        const Runtime__V1__NamespaceOption *po =
            sb->config && sb->config->linux && sb->config->linux->security_context
                ? sb->config->linux->security_context->namespace_options
                : NULL;
        bool want = false;
        struct userns_map u, g;
        int r = userns_from_cri(o, &want, &u, &g, err);
        if (r < 0)
            return r;
        r = userns_from_cri(po, &ns->userns, &ns->uid_map, &ns->gid_map, err);
        if (r < 0)
            return r;
        if (want &&
            (!ns->userns || u.host_id != ns->uid_map.host_id || g.host_id != ns->gid_map.host_id))
            return hull_error_setx(err, EINVAL,
                                   "the container's user namespace must be the pod's (same "
                                   "mappings)");
        if (ns->userns && empty(sb->userns_path))
            return hull_error_setx(err, EINVAL, "the pod has no user namespace");
        if (ns->userns && sc && sc->privileged)
            return hull_error_setx(err, EINVAL,
                                   "a privileged container cannot run in a pod user namespace");
    }

    switch (net) {
    case NS_MODE_NODE:
        ns->host_net = true;
        break;
    case NS_MODE_POD:
        if (sb->host_network)
            ns->host_net = true;
        else
            ns->net_path = empty(sb->netns_path) ? NULL : sb->netns_path;
        break;
    case NS_MODE_CONTAINER:
        break;
    default:
        return hull_error_setx(err, EINVAL, "network namespace mode %d is not supported", net);
    }
    switch (ipc) {
    case NS_MODE_NODE:
        ns->host_ipc = true;
        break;
    case NS_MODE_POD:
        if (sb->host_ipc)
            ns->host_ipc = true;
        else
            ns->ipc_path = empty(sb->ipcns_path) ? NULL : sb->ipcns_path;
        break;
    case NS_MODE_CONTAINER:
        break;
    default:
        return hull_error_setx(err, EINVAL, "ipc namespace mode %d is not supported", ipc);
    }
    switch (pid) {
    case NS_MODE_NODE:
        ns->host_pid = true;
        break;
    case NS_MODE_POD:
        if (sb->host_pid)
            ns->host_pid = true;
        else if (!empty(sb->pidns_path))
            ns->pid_path = sb->pidns_path;
        else
            return hull_error_setx(err, EINVAL,
                                   "pid namespace mode POD but pod \"%s\" has no "
                                   "shared PID namespace",
                                   S(sb->id));
        break;
    case NS_MODE_CONTAINER:
        break;
    case NS_MODE_TARGET:
        if (empty(in->target_pidns_path))
            return hull_error_setx(err, EINVAL,
                                   "pid namespace mode TARGET (target_id \"%s\"): "
                                   "the target container's PID namespace is unknown",
                                   o ? S(o->target_id) : "");
        ns->pid_path = in->target_pidns_path;
        break;
    default:
        return hull_error_setx(err, EINVAL, "pid namespace mode %d is not supported", pid);
    }
    /* UTS: the pod's; host-network pods use the host's (as kubelet expects) */
    if (!empty(sb->utsns_path))
        ns->uts_path = sb->utsns_path;
    else if (ns->host_net)
        ns->host_uts = true;
    ns->new_cgroupns = hull_cgroup_host_is_v2();
    return 0;
}

/* ---- process ----------------------------------------------------------------------------- */
static int build_args(const struct spec_input *in, struct hull_strv *args, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    char **cmd = c->command, **arg = c->args;
    size_t ncmd = c->n_command, narg = c->n_args;
    if (ncmd == 0) {
        /* no command: the image's entrypoint, then the CRI args or else the image's cmd */
        char **ep = in->image ? in->image->entrypoint : NULL;
        for (size_t i = 0; ep && ep[i]; i++)
            hull_strv_add_owned(args, xstrdup(ep[i]));
        if (narg == 0) {
            char **ic = in->image ? in->image->cmd : NULL;
            for (size_t i = 0; ic && ic[i]; i++)
                hull_strv_add_owned(args, xstrdup(ic[i]));
        }
    } else {
        /* a command replaces the entrypoint and drops the image's cmd */
        for (size_t i = 0; i < ncmd; i++)
            hull_strv_add_owned(args, xstrdup(S(cmd[i])));
    }
    for (size_t i = 0; i < narg; i++)
        hull_strv_add_owned(args, xstrdup(S(arg[i])));
    if (args->n == 0)
        return hull_error_setx(err, EINVAL,
                               "no command specified: neither the container config "
                               "nor the image has an entrypoint, cmd, command or args");
    return 0;
}

static void env_set(struct hull_strv *env, const char *kv, size_t keylen)
{
    for (size_t i = 0; i < env->n; i++) {
        if (strncmp(env->v[i], kv, keylen) == 0 && env->v[i][keylen] == '=') {
            free(env->v[i]);
            env->v[i] = xstrdup(kv);
            return;
        }
    }
    hull_strv_add_owned(env, xstrdup(kv));
}

static int build_env(const struct spec_input *in, struct hull_strv *env, hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    const char *hn = !empty(sb->hostname)                           ? sb->hostname
                     : (sb->config && !empty(sb->config->hostname)) ? sb->config->hostname
                                                                    : NULL;
    char buf[256];
    if (hn == NULL && gethostname(buf, sizeof(buf)) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        hn = buf;
    }
    if (hn) {
        _cleanup_free_ char *kv = xasprintf("HOSTNAME=%s", hn);
        env_set(env, kv, 8);
    }
    for (char **e = in->image ? in->image->env : NULL; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || eq == *e)
            continue;
        env_set(env, *e, (size_t)(eq - *e));
    }
    for (size_t i = 0; i < in->config->n_envs; i++) {
        const char *k = S(in->config->envs[i]->key), *v = S(in->config->envs[i]->value);
        if (empty(k) || strchr(k, '='))
            return hull_error_setx(err, EINVAL, "environment variable name \"%s\" is invalid", k);
        _cleanup_free_ char *kv = xasprintf("%s=%s", k, v);
        env_set(env, kv, strlen(k));
    }
    bool has_path = false;
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->v[i], "PATH=", 5) == 0)
            has_path = true;
    if (!has_path)
        hull_strv_add_owned(env, xstrdup(DEFAULT_PATH_ENV));
    return 0;
}

static long long current_oom_score_adj(void)
{
    _cleanup_free_ char *buf = NULL;
    if (hull_read_file("/proc/self/oom_score_adj", 64, &buf, NULL, NULL) < 0)
        return 0;
    return atoll(buf);
}

static uint64_t nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < DEFAULT_NOFILE && !(host_caps() & (1ULL << CAP_SYS_RESOURCE)))
        return rl.rlim_max; /* raising the hard limit needs CAP_SYS_RESOURCE */
    return DEFAULT_NOFILE;
}

/* ---- the spec ---------------------------------------------------------------------------- */
static const char *const reserved_annotations[] = {
    "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id",
    "io.kubernetes.cri.sandbox-name",   "io.kubernetes.cri.sandbox-namespace",
    "io.kubernetes.cri.sandbox-uid",    "io.kubernetes.cri.container-name",
    "io.kubernetes.cri.image-name",     NULL};

static bool is_reserved_annotation(const char *k)
{
    for (const char *const *r = reserved_annotations; *r; r++)
        if (strcmp(k, *r) == 0)
            return true;
    return false;
}

static int cgroups_path(const struct spec_input *in, char **out, hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    const char *parent = sb->cgroup_parent;
    if (empty(parent) && sb->config && sb->config->linux)
        parent = sb->config->linux->cgroup_parent;
    parent = S(parent);
    if (hull_systemd_path_form(parent)) {
        /* systemd driver: the pod slice; the runtime makes the scope hull-<id>.scope in it */
        if (!hull_systemd_slice_valid(parent))
            return hull_error_setx(err, EINVAL, "cgroup parent \"%s\" is not a systemd slice",
                                   parent);
        *out = xasprintf("%s:hull:%s", parent, in->container_id);
        return 0;
    }
    if (hull_path_has_dotdot(parent) || spec_has_control_chars(parent))
        return hull_error_setx(err, EINVAL, "cgroup parent \"%s\" is invalid", parent);
    _cleanup_free_ char *p = hull_path_clean(parent, 0);
    *out = strcmp(p, "/") == 0 ? xasprintf("/hull-%s", in->container_id)
                               : xasprintf("%s/hull-%s", p, in->container_id);
    return 0;
}

/* ---- the builder: validate, plan, build the model, serialize -------------------------------- */
/* Everything decided about the container before the model is built. */
struct spec_plan {
    const Runtime__V1__LinuxContainerSecurityContext *sc;
    const Runtime__V1__LinuxContainerResources *res;
    bool privileged, readonly_rootfs;
    struct hull_strv args, env;
    char *cwd;
    struct user_result user;
    uint64_t bounding, ambient;
    struct ns_plan ns;
    char *cgroups_path;
    int seccomp_kind; /* SECCOMP_* */
    char *seccomp_path;
    const char *apparmor;         /* Localhost profile name, or NULL */
    struct hull_strv sysctl_keys; /* normalized, parallel to the pod's sysctls */
    struct mntv mounts;
    const char *rootfs_prop;
    struct devv devices;
};

static void plan_clear(struct spec_plan *p)
{
    hull_strv_clear(&p->args);
    hull_strv_clear(&p->env);
    free(p->cwd);
    free(p->user.gids.v);
    free(p->cgroups_path);
    free(p->seccomp_path);
    hull_strv_clear(&p->sysctl_keys);
    spec_mntv_clear(&p->mounts);
    spec_devv_clear(&p->devices);
    memset(p, 0, sizeof(*p));
}

/* Step 1: the input is complete and asks for nothing refused outright. */
static int spec_validate(const struct spec_input *in, hull_error_t *err)
{
    if (in == NULL || in->config == NULL || in->sandbox == NULL || empty(in->rootfs) ||
        !hull_is_safe_component(S(in->container_id)))
        return hull_error_setx(err, EINVAL,
                               "oci spec: missing container id, config, sandbox or "
                               "rootfs");
    const Runtime__V1__ContainerConfig *c = in->config;
    const struct spec_sandbox *sb = in->sandbox;
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        c->linux ? c->linux->security_context : NULL;
    if (c->n_cdi_devices > 0)
        return hull_error_setx(err, ENOTSUP, "CDI devices are not supported (\"%s\")",
                               S(c->cdi_devices[0]->name));
    if (sc && sc->privileged && sb->config && sb->config->linux &&
        sb->config->linux->security_context && !sb->config->linux->security_context->privileged)
        return hull_error_setx(err, EINVAL,
                               "privileged container in a pod that is not "
                               "privileged");
    return 0;
}

/* The Localhost AppArmor profile asked for, NULL for none. */
static int plan_apparmor(const struct spec_input *in, struct spec_plan *p, hull_error_t *err)
{
    const Runtime__V1__LinuxContainerSecurityContext *sc = p->sc;
    if (sc == NULL || p->privileged)
        return 0;
    const char *ref = NULL;
    if (sc->apparmor &&
        sc->apparmor->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
        ref = S(sc->apparmor->localhost_ref);
    else if (!sc->apparmor && strncmp(sc_apparmor_profile(sc), "localhost/", 10) == 0)
        ref = sc_apparmor_profile(sc) + 10;
    if (ref == NULL)
        return 0;
    if (strncmp(ref, "localhost/", 10) == 0)
        ref += 10;
    if (empty(ref) || spec_has_control_chars(ref))
        return hull_error_setx(err, EINVAL, "invalid AppArmor profile name \"%s\"", ref);
    if (!in->host_has_apparmor)
        return hull_error_setx(err, ENOTSUP,
                               "AppArmor profile \"%s\" requested but "
                               "AppArmor is not enabled on this host",
                               ref);
    p->apparmor = ref;
    return 0;
}

/* The pod's sysctls, checked as RunPodSandbox checks them. */
static int plan_sysctls(const struct spec_input *in, struct spec_plan *p, hull_error_t *err)
{
    const Runtime__V1__LinuxPodSandboxConfig *plc =
        in->sandbox->config ? in->sandbox->config->linux : NULL;
    for (size_t i = 0; plc && i < plc->n_sysctls; i++) {
        int r = cri_sysctl_validate(plc->sysctls[i]->key, plc->sysctls[i]->value, p->ns.host_net,
                                    p->ns.host_ipc, err);
        if (r < 0)
            return r;
        hull_strv_add_owned(&p->sysctl_keys, cri_sysctl_normalize(plc->sysctls[i]->key));
    }
    return 0;
}

/* Step 2: every decision (process, user, capabilities, namespaces, cgroup, seccomp, AppArmor,
 * sysctls, mounts, devices), with the host side effects of mounts (see spec.h). */
static int spec_plan(const struct spec_input *in, struct spec_plan *p, hull_error_t *err)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    p->sc = c->linux ? c->linux->security_context : NULL;
    p->res = c->linux ? c->linux->resources : NULL;
    p->privileged = p->sc && p->sc->privileged;
    p->readonly_rootfs = p->sc && p->sc->readonly_rootfs;
    int r = build_args(in, &p->args, err);
    if (r < 0 || (r = build_env(in, &p->env, err)) < 0)
        return r;
    const char *wd = !empty(c->working_dir)                          ? c->working_dir
                     : (in->image && !empty(in->image->working_dir)) ? in->image->working_dir
                                                                     : "/";
    if (wd[0] != '/')
        return hull_error_setx(err, EINVAL, "working_dir \"%s\" must be absolute", wd);
    p->cwd = hull_path_clean(wd, 0);
    if ((r = spec_resolve_user(in, p->sc, &p->user, err)) < 0 ||
        (r = compute_caps(p->sc, p->privileged, &p->bounding, &p->ambient, err)) < 0 ||
        (r = plan_namespaces(in, p->sc, &p->ns, err)) < 0 ||
        (r = spec_check_resources(p->res, err)) < 0 ||
        (r = cgroups_path(in, &p->cgroups_path, err)) < 0 ||
        (r = spec_seccomp_choice(in, p->sc, p->privileged, &p->seccomp_kind, &p->seccomp_path,
                                 err)) < 0 ||
        (r = plan_apparmor(in, p, err)) < 0 || (r = plan_sysctls(in, p, err)) < 0)
        return r;
    r = spec_build_mounts(in, p->privileged, p->readonly_rootfs, &p->ns, &p->mounts,
                          &p->rootfs_prop, err);
    if (r == 0 && p->ns.userns)
        r = spec_userns_prepare(in, &p->mounts, err);
    if (r < 0)
        return r;
    if (p->privileged)
        spec_add_host_devices(&p->devices, "/dev", 0);
    return spec_add_cri_devices(c, &p->devices, err);
}

static char **strv_dup_plan(const struct hull_strv *v)
{
    return hull_strv_dup_n((const char *const *)v->v, v->n);
}

static char **caps_names(uint64_t set)
{
    char **v = NULL;
    size_t n = 0;
    for (int i = 0; i < N_CAPS; i++)
        if (set & (1ULL << i))
            hull_strv_push(&v, &n, hull_cap_name(i));
    return v ? v : xmalloc0(sizeof(char *));
}

static void build_process(const struct spec_input *in, const struct spec_plan *p,
                          struct hull_ocispec_process *o)
{
    o->terminal = in->config->tty;
    o->user.uid = p->user.uid;
    o->user.gid = p->user.gid;
    o->user.additional_gids = xmalloc0((p->user.gids.n + 1) * sizeof(uint32_t));
    if (p->user.gids.n)
        memcpy(o->user.additional_gids, p->user.gids.v, p->user.gids.n * sizeof(uint32_t));
    o->user.n_additional_gids = p->user.gids.n;
    o->args = strv_dup_plan(&p->args);
    o->env = strv_dup_plan(&p->env);
    o->cwd = xstrdup(p->cwd);
    o->has_capabilities = true;
    o->caps.bounding = caps_names(p->bounding);
    o->caps.effective = caps_names(p->bounding);
    o->caps.permitted = caps_names(p->bounding);
    o->caps.inheritable = caps_names(p->ambient);
    o->caps.ambient = caps_names(p->ambient);
    o->rlimits = xmalloc0(2 * sizeof(*o->rlimits));
    o->rlimits[0] =
        (struct hull_ocispec_rlimit){xstrdup("RLIMIT_NOFILE"), nofile_limit(), nofile_limit()};
    o->n_rlimits = 1;
    o->no_new_privileges = p->sc && p->sc->no_new_privs;
    if (p->res) {
        long long adj = p->res->oom_score_adj;
        if (in->restrict_oom_score_adj || !(host_caps() & (1ULL << CAP_SYS_RESOURCE))) {
            long long cur = current_oom_score_adj();
            if (adj < cur)
                adj = cur;
        }
        o->has_oom_score_adj = true;
        o->oom_score_adj = (int)adj;
    }
    o->apparmor_profile = p->apparmor ? xstrdup(p->apparmor) : NULL;
}

static void add_kv(struct hull_ocispec_kv **v, size_t *n, const char *k, const char *val)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(**v));
    (*v)[*n] = (struct hull_ocispec_kv){xstrdup(k), xstrdup(val)};
    (*n)++;
}

static void build_annotations(const struct spec_input *in, struct hull_ocispec *m)
{
    const Runtime__V1__ContainerConfig *c = in->config;
    const struct spec_sandbox *sb = in->sandbox;
    struct hull_ocispec_kv **v = &m->annotations;
    size_t *n = &m->n_annotations;
    for (size_t i = 0; i < c->n_annotations; i++) {
        const char *k = S(c->annotations[i]->key);
        if (!is_reserved_annotation(k))
            add_kv(v, n, k, S(c->annotations[i]->value));
    }
    add_kv(v, n, "io.kubernetes.cri.container-type", "container");
    add_kv(v, n, "io.kubernetes.cri.sandbox-id", S(sb->id));
    if (sb->config && sb->config->metadata) {
        add_kv(v, n, "io.kubernetes.cri.sandbox-name", S(sb->config->metadata->name));
        add_kv(v, n, "io.kubernetes.cri.sandbox-namespace", S(sb->config->metadata->namespace_));
        add_kv(v, n, "io.kubernetes.cri.sandbox-uid", S(sb->config->metadata->uid));
    }
    add_kv(v, n, "io.kubernetes.cri.container-name", c->metadata ? S(c->metadata->name) : "");
    if (c->image)
        add_kv(v, n, "io.kubernetes.cri.image-name",
               !empty(c->image->user_specified_image) ? c->image->user_specified_image
                                                      : S(c->image->image));
}

static void add_ns(struct hull_ocispec_linux *l, const char *type, const char *path)
{
    l->namespaces = xrealloc(l->namespaces, (l->n_namespaces + 2) * sizeof(*l->namespaces));
    l->namespaces[l->n_namespaces++] =
        (struct hull_ocispec_namespace){xstrdup(type), path ? xstrdup(path) : NULL};
}

static void build_namespaces(const struct spec_input *in, const struct ns_plan *ns,
                             struct hull_ocispec_linux *l)
{
    l->namespaces = xmalloc0(sizeof(*l->namespaces));
    if (!ns->host_pid)
        add_ns(l, "pid", ns->pid_path);
    if (!ns->host_net)
        add_ns(l, "network", ns->net_path);
    if (!ns->host_ipc)
        add_ns(l, "ipc", ns->ipc_path);
    if (!ns->host_uts)
        add_ns(l, "uts", ns->uts_path);
    add_ns(l, "mount", NULL);
    if (ns->new_cgroupns)
        add_ns(l, "cgroup", NULL);
    if (!ns->userns)
        return;
    add_ns(l, "user", in->sandbox->userns_path); /* the pod's, with its mappings below */
    l->uid_mappings = xmalloc0(sizeof(*l->uid_mappings));
    l->uid_mappings[0] = (struct hull_ocispec_idmap){ns->uid_map.container_id, ns->uid_map.host_id,
                                                     ns->uid_map.size};
    l->n_uid_mappings = 1;
    l->gid_mappings = xmalloc0(sizeof(*l->gid_mappings));
    l->gid_mappings[0] = (struct hull_ocispec_idmap){ns->gid_map.container_id, ns->gid_map.host_id,
                                                     ns->gid_map.size};
    l->n_gid_mappings = 1;
}

/* linux.resources: the CRI resources and the device rules, typed. */
static void build_resources(const struct spec_plan *p, struct hull_ocispec_linux *l)
{
    l->resources = xmalloc0(sizeof(*l->resources));
    spec_cgroup_resources(p->res, l->resources);
    spec_device_rules(l->resources, p->privileged, &p->devices);
}

/* linux.seccomp: the RuntimeDefault profile or a Localhost file, for this bounding set. */
static int build_seccomp(const struct spec_plan *p, struct hull_ocispec_linux *l, hull_error_t *err)
{
    if (p->seccomp_kind == SECCOMP_NONE)
        return 0;
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    int r = 0;
    if (p->seccomp_kind == SECCOMP_DEFAULT)
        spec_seccomp_default_write(&w, p->bounding, NULL);
    else
        r = spec_jw_seccomp_file(&w, p->seccomp_path, p->bounding, err);
    _cleanup_free_ char *text = r == 0 ? hull_jw_finish(&w, NULL) : NULL;
    hull_jw_free(&w);
    if (r < 0)
        return r;
    _cleanup_yajl_ yajl_val t = NULL;
    if ((r = hull_json_parse(text, "linux.seccomp", &t, err)) < 0 ||
        (r = hull_ocispec_seccomp_from_tree(t, &l->seccomp, err)) < 0)
        return hull_error_wrap(err, "seccomp profile");
    return 0;
}

/* Step 3: the runtime-spec model of the plan. */
static int spec_build_model(const struct spec_input *in, const struct spec_plan *p,
                            struct hull_ocispec *m, hull_error_t *err)
{
    const struct spec_sandbox *sb = in->sandbox;
    m->oci_version = xstrdup("1.1.0");
    m->process = xmalloc0(sizeof(*m->process));
    build_process(in, p, m->process);
    m->root_path = xstrdup(in->rootfs);
    m->root_readonly = p->readonly_rootfs;
    if (!p->ns.host_uts && p->ns.uts_path == NULL) {
        const char *hn = !empty(sb->hostname)                           ? sb->hostname
                         : (sb->config && !empty(sb->config->hostname)) ? sb->config->hostname
                                                                        : NULL;
        if (hn)
            m->hostname = xstrdup(hn);
    }
    spec_model_mounts(m, &p->mounts);
    build_annotations(in, m);

    struct hull_ocispec_linux *l = hull_ocispec_linux(m);
    const Runtime__V1__LinuxPodSandboxConfig *plc = sb->config ? sb->config->linux : NULL;
    if (p->sysctl_keys.n) {
        l->sysctl = xmalloc0((p->sysctl_keys.n + 1) * sizeof(*l->sysctl));
        for (size_t i = 0; i < p->sysctl_keys.n; i++)
            l->sysctl[i] = (struct hull_ocispec_kv){xstrdup(p->sysctl_keys.v[i]),
                                                    xstrdup(S(plc->sysctls[i]->value))};
        l->n_sysctl = p->sysctl_keys.n;
    }
    build_resources(p, l);
    l->cgroups_path = xstrdup(p->cgroups_path);
    build_namespaces(in, &p->ns, l);
    spec_model_devices(l, &p->devices);
    if (!p->privileged)
        spec_model_masked_paths(l, p->sc);
    if (p->rootfs_prop)
        l->rootfs_propagation = xstrdup(p->rootfs_prop);
    return build_seccomp(p, l, err);
}

int spec_model_from_cri(const struct spec_input *in, struct hull_ocispec **out, hull_error_t *err)
{
    *out = NULL;
    int r = spec_validate(in, err);
    if (r < 0)
        return r;
    __attribute__((cleanup(plan_clear))) struct spec_plan plan = {0};
    _cleanup_hull_ocispec_ struct hull_ocispec *m = hull_ocispec_new();
    if ((r = spec_plan(in, &plan, err)) < 0 || (r = spec_build_model(in, &plan, m, err)) < 0)
        return r;
    if (in->user_out) {
        in->user_out->uid = plan.user.uid;
        in->user_out->gid = plan.user.gid;
        in->user_out->additional_gids = hull_steal(plan.user.gids.v);
        in->user_out->n_additional_gids = plan.user.gids.n;
    }
    *out = hull_steal(m);
    return 0;
}

int spec_from_cri(const struct spec_input *in, char **json_out, hull_error_t *err)
{
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL;
    *json_out = NULL;
    int r = spec_model_from_cri(in, &m, err);
    if (r < 0)
        return r;
    *json_out = hull_ocispec_to_json(m, false); /* step 4: serialize */
    return 0;
}

int spec_log_path(const Runtime__V1__PodSandboxConfig *pod,
                  const Runtime__V1__ContainerConfig *config, char **out, hull_error_t *err)
{
    *out = NULL;
    const char *dir = pod ? S(pod->log_directory) : "";
    const char *lp = config ? S(config->log_path) : "";
    if (*lp == '\0')
        return 0;
    if (hull_path_has_dotdot(lp) || spec_has_control_chars(lp))
        return hull_error_setx(err, EINVAL, "log_path \"%s\" is invalid", lp);
    if (*dir == '\0') {
        if (lp[0] != '/')
            return hull_error_setx(err, EINVAL,
                                   "log_path \"%s\" is relative and the pod has "
                                   "no log_directory",
                                   lp);
        *out = hull_path_clean(lp, 0);
        return 0;
    }
    if (dir[0] != '/' || hull_path_has_dotdot(dir) || spec_has_control_chars(dir))
        return hull_error_setx(err, EINVAL, "log_directory \"%s\" is invalid", dir);
    _cleanup_free_ char *joined = hull_path_join(dir, lp);
    *out = hull_path_clean(joined, 0);
    return 0;
}

int spec_exec_process(const char *spec_json, char *const *cmd, size_t n, bool tty, unsigned rows,
                      unsigned cols, char **json_out, hull_error_t *err)
{
    *json_out = NULL;
    if (n == 0)
        return hull_error_setx(err, EINVAL, "exec: no command");
    _cleanup_hull_ocispec_ struct hull_ocispec *m = NULL;
    int r = hull_ocispec_parse(spec_json, &m, err);
    if (r < 0)
        return hull_error_wrap(err, "container spec");
    if (m->process == NULL)
        return hull_error_setx(err, EINVAL, "container spec has no process");
    struct hull_ocispec_process *p = m->process;
    p->terminal = tty;
    p->has_console_size = tty && rows && cols;
    p->console_height = p->has_console_size ? rows : 0;
    p->console_width = p->has_console_size ? cols : 0;
    hull_strv_free(p->args);
    p->args = hull_strv_dup_n((const char *const *)cmd, n);
    *json_out = hull_ocispec_process_to_json(p);
    return 0;
}
