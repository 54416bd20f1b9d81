/* OCI runtime-spec generation from CRI configs: see ocispec.h.  This file is the builder; what
 * the other ocispec_*.c files hold is listed in ocispec_internal.h.
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
#include "server/ocispec.h"
#include "server/ocispec_internal.h"
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

const char *const ocispec_default_caps[] = {"CAP_CHOWN",
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

/* ---- small helpers shared by the ocispec_*.c files ---------------------------------------- */
bool ocispec_has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Raw number from a parsed yajl tree (keeps uint64 values yajl cannot hold as long long). */
void ocispec_jw_number_raw(struct hull_json_writer *w, yajl_val v)
{
    const char *r = v->u.number.r;
    yajl_gen_number(w->gen, r, strlen(r));
}

void ocispec_jw_copy(struct hull_json_writer *w, yajl_val v, int depth)
{
    if (v == NULL || depth > 16) {
        hull_jw_null(w);
        return;
    }
    if (YAJL_IS_STRING(v))
        hull_jw_string(w, YAJL_GET_STRING(v));
    else if (YAJL_IS_NUMBER(v))
        ocispec_jw_number_raw(w, v);
    else if (YAJL_IS_TRUE(v))
        hull_jw_bool(w, true);
    else if (YAJL_IS_FALSE(v))
        hull_jw_bool(w, false);
    else if (YAJL_IS_ARRAY(v)) {
        hull_jw_begin_array(w);
        for (size_t i = 0; i < v->u.array.len; i++)
            ocispec_jw_copy(w, v->u.array.values[i], depth + 1);
        hull_jw_end_array(w);
    } else if (YAJL_IS_OBJECT(v)) {
        hull_jw_begin_object(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            hull_jw_key(w, v->u.object.keys[i]);
            ocispec_jw_copy(w, v->u.object.values[i], depth + 1);
        }
        hull_jw_end_object(w);
    } else
        hull_jw_null(w);
}

void ocispec_jw_strv(struct hull_json_writer *w, const char *key, char *const *v, size_t n)
{
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (size_t i = 0; i < n; i++)
        hull_jw_string(w, v[i]);
    hull_jw_end_array(w);
}

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
    for (const char *const *c = ocispec_default_caps; *c; c++)
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

static void jw_caps(struct hull_json_writer *w, const char *key, uint64_t set)
{
    hull_jw_key(w, key);
    hull_jw_begin_array(w);
    for (int i = 0; i < N_CAPS; i++)
        if (set & (1ULL << i))
            hull_jw_string(w, hull_cap_name(i));
    hull_jw_end_array(w);
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
static int plan_namespaces(const struct ocispec_input *in,
                           const Runtime__V1__LinuxContainerSecurityContext *sc, struct ns_plan *ns,
                           hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
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
    ns->new_cgroupns = ocispec_host_is_cgroup2();
    return 0;
}

static void jw_ns(struct hull_json_writer *w, const char *type, const char *path)
{
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "type", type);
    if (path)
        hull_jw_kv_string(w, "path", path);
    hull_jw_end_object(w);
}

/* ---- process ----------------------------------------------------------------------------- */
static int build_args(const struct ocispec_input *in, struct hull_strv *args, hull_error_t *err)
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

static int build_env(const struct ocispec_input *in, struct hull_strv *env, hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
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

static int cgroups_path(const struct ocispec_input *in, char **out, hull_error_t *err)
{
    const struct ocispec_sandbox *sb = in->sandbox;
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
    if (hull_path_has_dotdot(parent) || ocispec_has_control_chars(parent))
        return hull_error_setx(err, EINVAL, "cgroup parent \"%s\" is invalid", parent);
    _cleanup_free_ char *p = hull_path_clean(parent, 0);
    *out = strcmp(p, "/") == 0 ? xasprintf("/hull-%s", in->container_id)
                               : xasprintf("%s/hull-%s", p, in->container_id);
    return 0;
}

int oci_spec_from_cri(const struct ocispec_input *in, char **json_out, hull_error_t *err)
{
    *json_out = NULL;
    if (in == NULL || in->config == NULL || in->sandbox == NULL || empty(in->rootfs) ||
        !hull_is_safe_component(S(in->container_id)))
        return hull_error_setx(err, EINVAL,
                               "oci spec: missing container id, config, sandbox or "
                               "rootfs");
    const Runtime__V1__ContainerConfig *c = in->config;
    const struct ocispec_sandbox *sb = in->sandbox;
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        c->linux ? c->linux->security_context : NULL;
    const Runtime__V1__LinuxContainerResources *res = c->linux ? c->linux->resources : NULL;
    bool privileged = sc && sc->privileged;
    bool readonly_rootfs = sc && sc->readonly_rootfs;
    int r;

    if (c->n_cdi_devices > 0)
        return hull_error_setx(err, ENOTSUP, "CDI devices are not supported (\"%s\")",
                               S(c->cdi_devices[0]->name));
    if (privileged && sb->config && sb->config->linux && sb->config->linux->security_context &&
        !sb->config->linux->security_context->privileged)
        return hull_error_setx(err, EINVAL,
                               "privileged container in a pod that is not "
                               "privileged");

    struct hull_strv args = {0}, env = {0};
    struct user_result user = {0};
    struct mntv mounts = {0};
    struct devv devices = {0};
    struct hull_json_writer w = {0};
    _cleanup_free_ char *cwd = NULL, *seccomp_path = NULL, *cgpath = NULL;
    const char *rootfs_prop = NULL;
    uint64_t bounding = 0, ambient = 0;
    int seccomp_kind = SECCOMP_NONE;
    struct ns_plan ns;

    r = build_args(in, &args, err);
    if (r < 0)
        goto out;
    r = build_env(in, &env, err);
    if (r < 0)
        goto out;
    const char *wd = !empty(c->working_dir)                          ? c->working_dir
                     : (in->image && !empty(in->image->working_dir)) ? in->image->working_dir
                                                                     : "/";
    if (wd[0] != '/') {
        r = hull_error_setx(err, EINVAL, "working_dir \"%s\" must be absolute", wd);
        goto out;
    }
    cwd = hull_path_clean(wd, 0);
    r = ocispec_resolve_user(in, sc, &user, err);
    if (r < 0)
        goto out;
    r = compute_caps(sc, privileged, &bounding, &ambient, err);
    if (r < 0)
        goto out;
    r = plan_namespaces(in, sc, &ns, err);
    if (r < 0)
        goto out;
    r = ocispec_check_resources(res, err);
    if (r < 0)
        goto out;
    r = cgroups_path(in, &cgpath, err);
    if (r < 0)
        goto out;
    r = ocispec_seccomp_choice(in, sc, privileged, &seccomp_kind, &seccomp_path, err);
    if (r < 0)
        goto out;

    /* AppArmor */
    const char *apparmor = NULL;
    if (sc && !privileged) {
        const char *ref = NULL;
        if (sc->apparmor &&
            sc->apparmor->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
            ref = S(sc->apparmor->localhost_ref);
        else if (!sc->apparmor && strncmp(sc_apparmor_profile(sc), "localhost/", 10) == 0)
            ref = sc_apparmor_profile(sc) + 10;
        if (ref) {
            if (strncmp(ref, "localhost/", 10) == 0)
                ref += 10;
            if (empty(ref) || ocispec_has_control_chars(ref)) {
                r = hull_error_setx(err, EINVAL, "invalid AppArmor profile name \"%s\"", ref);
                goto out;
            }
            if (!in->host_has_apparmor) {
                r = hull_error_setx(err, ENOTSUP,
                                    "AppArmor profile \"%s\" requested but "
                                    "AppArmor is not enabled on this host",
                                    ref);
                goto out;
            }
            apparmor = ref;
        }
    }

    /* sysctls of the pod */
    const Runtime__V1__LinuxPodSandboxConfig *plc = sb->config ? sb->config->linux : NULL;
    struct hull_strv sysctl_keys = {0};
    for (size_t i = 0; plc && i < plc->n_sysctls; i++) {
        r = cri_sysctl_validate(plc->sysctls[i]->key, plc->sysctls[i]->value, ns.host_net,
                                ns.host_ipc, err);
        if (r < 0) {
            hull_strv_clear(&sysctl_keys);
            goto out;
        }
        hull_strv_add_owned(&sysctl_keys, cri_sysctl_normalize(plc->sysctls[i]->key));
    }

    r = ocispec_build_mounts(in, privileged, readonly_rootfs, &ns, &mounts, &rootfs_prop, err);
    if (r == 0 && ns.userns)
        r = ocispec_userns_prepare(in, &mounts, err);
    if (r < 0) {
        hull_strv_clear(&sysctl_keys);
        goto out;
    }
    if (privileged)
        ocispec_add_host_devices(&devices, "/dev", 0);
    r = ocispec_add_cri_devices(c, &devices, err);
    if (r < 0) {
        hull_strv_clear(&sysctl_keys);
        goto out;
    }

    /* ---- write ---- */
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "ociVersion", "1.1.0");

    hull_jw_key(&w, "process");
    hull_jw_begin_object(&w);
    hull_jw_kv_bool(&w, "terminal", c->tty);
    hull_jw_key(&w, "user");
    hull_jw_begin_object(&w);
    hull_jw_kv_int(&w, "uid", user.uid);
    hull_jw_kv_int(&w, "gid", user.gid);
    hull_jw_key(&w, "additionalGids");
    hull_jw_begin_array(&w);
    for (size_t i = 0; i < user.gids.n; i++)
        hull_jw_int(&w, user.gids.v[i]);
    hull_jw_end_array(&w);
    hull_jw_end_object(&w);
    ocispec_jw_strv(&w, "args", args.v, args.n);
    ocispec_jw_strv(&w, "env", env.v, env.n);
    hull_jw_kv_string(&w, "cwd", cwd);
    hull_jw_key(&w, "capabilities");
    hull_jw_begin_object(&w);
    jw_caps(&w, "bounding", bounding);
    jw_caps(&w, "effective", bounding);
    jw_caps(&w, "permitted", bounding);
    jw_caps(&w, "inheritable", ambient);
    jw_caps(&w, "ambient", ambient);
    hull_jw_end_object(&w);
    hull_jw_key(&w, "rlimits");
    hull_jw_begin_array(&w);
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "type", "RLIMIT_NOFILE");
    hull_jw_kv_int(&w, "hard", (long long)nofile_limit());
    hull_jw_kv_int(&w, "soft", (long long)nofile_limit());
    hull_jw_end_object(&w);
    hull_jw_end_array(&w);
    hull_jw_kv_bool(&w, "noNewPrivileges", sc && sc->no_new_privs);
    if (res) {
        long long adj = res->oom_score_adj;
        if (in->restrict_oom_score_adj || !(host_caps() & (1ULL << CAP_SYS_RESOURCE))) {
            long long cur = current_oom_score_adj();
            if (adj < cur)
                adj = cur;
        }
        hull_jw_kv_int(&w, "oomScoreAdj", adj);
    }
    if (apparmor)
        hull_jw_kv_string(&w, "apparmorProfile", apparmor);
    hull_jw_end_object(&w); /* process */

    hull_jw_key(&w, "root");
    hull_jw_begin_object(&w);
    hull_jw_kv_string(&w, "path", in->rootfs);
    hull_jw_kv_bool(&w, "readonly", readonly_rootfs);
    hull_jw_end_object(&w);

    if (!ns.host_uts && ns.uts_path == NULL) {
        const char *hn = !empty(sb->hostname)                           ? sb->hostname
                         : (sb->config && !empty(sb->config->hostname)) ? sb->config->hostname
                                                                        : NULL;
        if (hn)
            hull_jw_kv_string(&w, "hostname", hn);
    }

    ocispec_jw_mounts(&w, &mounts);

    hull_jw_key(&w, "annotations");
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < c->n_annotations; i++) {
        const char *k = S(c->annotations[i]->key);
        if (!is_reserved_annotation(k))
            hull_jw_kv_string(&w, k, S(c->annotations[i]->value));
    }
    hull_jw_kv_string(&w, "io.kubernetes.cri.container-type", "container");
    hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-id", S(sb->id));
    if (sb->config && sb->config->metadata) {
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-name", S(sb->config->metadata->name));
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-namespace",
                          S(sb->config->metadata->namespace_));
        hull_jw_kv_string(&w, "io.kubernetes.cri.sandbox-uid", S(sb->config->metadata->uid));
    }
    hull_jw_kv_string(&w, "io.kubernetes.cri.container-name",
                      c->metadata ? S(c->metadata->name) : "");
    if (c->image)
        hull_jw_kv_string(&w, "io.kubernetes.cri.image-name",
                          !empty(c->image->user_specified_image) ? c->image->user_specified_image
                                                                 : S(c->image->image));
    hull_jw_end_object(&w);

    hull_jw_key(&w, "linux");
    hull_jw_begin_object(&w);
    if (sysctl_keys.n) {
        hull_jw_key(&w, "sysctl");
        hull_jw_begin_object(&w);
        for (size_t i = 0; i < sysctl_keys.n; i++)
            hull_jw_kv_string(&w, sysctl_keys.v[i], S(plc->sysctls[i]->value));
        hull_jw_end_object(&w);
    }
    hull_strv_clear(&sysctl_keys);
    hull_jw_key(&w, "resources");
    hull_jw_begin_object(&w);
    ocispec_jw_device_rules(&w, privileged, &devices);
    ocispec_jw_resources_body(&w, res);
    hull_jw_end_object(&w);
    hull_jw_kv_string(&w, "cgroupsPath", cgpath);
    hull_jw_key(&w, "namespaces");
    hull_jw_begin_array(&w);
    if (!ns.host_pid)
        jw_ns(&w, "pid", ns.pid_path);
    if (!ns.host_net)
        jw_ns(&w, "network", ns.net_path);
    if (!ns.host_ipc)
        jw_ns(&w, "ipc", ns.ipc_path);
    if (!ns.host_uts)
        jw_ns(&w, "uts", ns.uts_path);
    jw_ns(&w, "mount", NULL);
    if (ns.new_cgroupns)
        jw_ns(&w, "cgroup", NULL);
    if (ns.userns)
        jw_ns(&w, "user", sb->userns_path); /* the pod's, with its mappings below */
    hull_jw_end_array(&w);
    if (ns.userns) {
        const struct userns_map *maps[2] = {&ns.uid_map, &ns.gid_map};
        const char *keys[2] = {"uidMappings", "gidMappings"};
        for (int i = 0; i < 2; i++) {
            hull_jw_key(&w, keys[i]);
            hull_jw_begin_array(&w);
            hull_jw_begin_object(&w);
            hull_jw_kv_int(&w, "containerID", maps[i]->container_id);
            hull_jw_kv_int(&w, "hostID", maps[i]->host_id);
            hull_jw_kv_int(&w, "size", maps[i]->size);
            hull_jw_end_object(&w);
            hull_jw_end_array(&w);
        }
    }
    ocispec_jw_devices(&w, &devices);
    if (!privileged)
        ocispec_jw_masked_paths(&w, sc);
    if (rootfs_prop)
        hull_jw_kv_string(&w, "rootfsPropagation", rootfs_prop);
    if (seccomp_kind == SECCOMP_DEFAULT) {
        hull_jw_key(&w, "seccomp");
        ocispec_seccomp_default_write(&w, bounding, NULL);
    } else if (seccomp_kind == SECCOMP_LOCALHOST) {
        hull_jw_key(&w, "seccomp");
        r = ocispec_jw_seccomp_file(&w, seccomp_path, bounding, err);
        if (r < 0)
            goto out;
    }
    hull_jw_end_object(&w); /* linux */
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    if (in->user_out) {
        in->user_out->uid = user.uid;
        in->user_out->gid = user.gid;
        in->user_out->additional_gids = hull_steal(user.gids.v);
        in->user_out->n_additional_gids = user.gids.n;
    }
    r = 0;
out:
    if (w.gen)
        hull_jw_free(&w);
    hull_strv_clear(&args);
    hull_strv_clear(&env);
    free(user.gids.v);
    ocispec_mntv_clear(&mounts);
    ocispec_devv_clear(&devices);
    return r;
}

int ocispec_log_path(const Runtime__V1__PodSandboxConfig *pod,
                     const Runtime__V1__ContainerConfig *config, char **out, hull_error_t *err)
{
    *out = NULL;
    const char *dir = pod ? S(pod->log_directory) : "";
    const char *lp = config ? S(config->log_path) : "";
    if (*lp == '\0')
        return 0;
    if (hull_path_has_dotdot(lp) || ocispec_has_control_chars(lp))
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
    if (dir[0] != '/' || hull_path_has_dotdot(dir) || ocispec_has_control_chars(dir))
        return hull_error_setx(err, EINVAL, "log_directory \"%s\" is invalid", dir);
    _cleanup_free_ char *joined = hull_path_join(dir, lp);
    *out = hull_path_clean(joined, 0);
    return 0;
}

int ocispec_exec_process(const char *spec_json, char *const *cmd, size_t n, bool tty, unsigned rows,
                         unsigned cols, char **json_out, hull_error_t *err)
{
    *json_out = NULL;
    if (n == 0)
        return hull_error_setx(err, EINVAL, "exec: no command");
    _cleanup_yajl_ yajl_val t = NULL;
    int r = hull_json_parse(spec_json ? spec_json : "", "container spec", &t, err);
    if (r < 0)
        return r;
    yajl_val p = hull_json_get(t, "process");
    if (p == NULL || !YAJL_IS_OBJECT(p))
        return hull_error_setx(err, EINVAL, "container spec has no process");
    struct hull_json_writer w;
    hull_jw_init(&w, false);
    hull_jw_begin_object(&w);
    for (size_t i = 0; i < p->u.object.len; i++) {
        const char *k = p->u.object.keys[i];
        if (strcmp(k, "args") == 0 || strcmp(k, "terminal") == 0 || strcmp(k, "consoleSize") == 0)
            continue;
        hull_jw_key(&w, k);
        ocispec_jw_copy(&w, p->u.object.values[i], 0);
    }
    hull_jw_kv_bool(&w, "terminal", tty);
    if (tty && rows && cols) {
        hull_jw_key(&w, "consoleSize");
        hull_jw_begin_object(&w);
        hull_jw_kv_int(&w, "height", rows);
        hull_jw_kv_int(&w, "width", cols);
        hull_jw_end_object(&w);
    }
    ocispec_jw_strv(&w, "args", cmd, n);
    hull_jw_end_object(&w);
    *json_out = hull_jw_finish(&w, NULL);
    hull_jw_free(&w);
    return 0;
}
