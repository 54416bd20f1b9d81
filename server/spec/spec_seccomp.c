/* Seccomp: the profile choice from the CRI security context and Localhost profile files
 * (runtime-spec or Docker/containerd format) converted for this host.  The RuntimeDefault profile
 * is in seccomp_default.c. */
#include "server/spec/spec_internal.h"

#include <errno.h>
#include <string.h>

#define SECCOMP_FILE_MAX (4u << 20)

/* The deprecated CRI string fields, still honoured. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const char *sc_seccomp_profile_path(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
    return S(sc->seccomp_profile_path);
}
#pragma GCC diagnostic pop

/* ---- seccomp ----------------------------------------------------------------------------- */

static int localhost_profile_path(const struct spec_input *in, const char *ref, char **out,
                                  hull_error_t *err)
{
    if (empty(ref))
        return hull_error_setx(err, EINVAL, "seccomp Localhost profile without a localhost_ref");
    if (ref[0] == '/') {
        *out = hull_path_clean(ref, 0);
        return 0;
    }
    if (hull_path_has_dotdot(ref))
        return hull_error_setx(err, EINVAL, "seccomp profile \"%s\": `..` not allowed", ref);
    if (empty(in->seccomp_profile_root))
        return hull_error_setx(err, EINVAL,
                               "seccomp profile \"%s\" is relative and no seccomp "
                               "profile root is configured",
                               ref);
    *out = hull_path_join(in->seccomp_profile_root, ref);
    return 0;
}

int spec_seccomp_choice(const struct spec_input *in,
                        const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
                        int *kind, char **path, hull_error_t *err)
{
    *kind = SECCOMP_NONE;
    *path = NULL;
    if (privileged || sc == NULL)
        return 0;
    if (sc->seccomp) {
        switch (sc->seccomp->profile_type) {
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
            *kind = SECCOMP_DEFAULT;
            return 0;
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
            return 0;
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
            *kind = SECCOMP_LOCALHOST;
            return localhost_profile_path(in, sc->seccomp->localhost_ref, path, err);
        default:
            return hull_error_setx(err, EINVAL, "unknown seccomp profile type %d",
                                   (int)sc->seccomp->profile_type);
        }
    }
    const char *p = sc_seccomp_profile_path(sc);
    if (*p == '\0' || strcmp(p, "unconfined") == 0)
        return 0;
    if (strcmp(p, "runtime/default") == 0 || strcmp(p, "docker/default") == 0) {
        *kind = SECCOMP_DEFAULT;
        return 0;
    }
    if (strncmp(p, "localhost/", 10) == 0) {
        *kind = SECCOMP_LOCALHOST;
        return localhost_profile_path(in, p + 10, path, err);
    }
    return hull_error_setx(err, EINVAL,
                           "seccomp_profile_path \"%s\" is not one of "
                           "runtime/default, docker/default, unconfined, localhost/PATH",
                           p);
}

static const char *host_scmp_arch(void)
{
#if defined(__x86_64__)
    return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
    return "SCMP_ARCH_AARCH64";
#elif defined(__i386__)
    return "SCMP_ARCH_X86";
#else
    return "";
#endif
}

static bool json_strarr_has(yajl_val arr, const char *s)
{
    if (arr == NULL || !YAJL_IS_ARRAY(arr))
        return false;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        const char *x =
            YAJL_IS_STRING(arr->u.array.values[i]) ? YAJL_GET_STRING(arr->u.array.values[i]) : NULL;
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static bool json_caps_all_in(yajl_val arr, uint64_t bounding)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        int c = YAJL_IS_STRING(v) ? hull_cap_from_name(YAJL_GET_STRING(v)) : -1;
        if (c < 0 || !(bounding & (1ULL << c)))
            return false;
    }
    return true;
}

static bool json_caps_any_in(yajl_val arr, uint64_t bounding)
{
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        int c = YAJL_IS_STRING(v) ? hull_cap_from_name(YAJL_GET_STRING(v)) : -1;
        if (c >= 0 && (bounding & (1ULL << c)))
            return true;
    }
    return false;
}

/* A Localhost profile: runtime-spec format as is; Docker/containerd format ("archMap",
 * "name", "includes"/"excludes") converted for this host and bounding set. */
int spec_jw_seccomp_file(struct hull_json_writer *w, const char *path, uint64_t bounding,
                         hull_error_t *err)
{
    _cleanup_yajl_ yajl_val t = NULL;
    int r = hull_json_parse_file(path, SECCOMP_FILE_MAX, &t, err);
    if (r < 0)
        return hull_error_wrap(err, "seccomp Localhost profile");
    if (!YAJL_IS_OBJECT(t))
        return hull_error_setx(err, EINVAL, "seccomp profile `%s`: not a JSON object", path);
    const char *def = hull_json_get_string(t, "defaultAction", NULL);
    if (empty(def))
        return hull_error_setx(err, EINVAL, "seccomp profile `%s`: no defaultAction", path);
    hull_jw_begin_object(w);
    hull_jw_kv_string(w, "defaultAction", def);
    yajl_val v = hull_json_get(t, "defaultErrnoRet");
    if (v && YAJL_IS_INTEGER(v)) {
        hull_jw_key(w, "defaultErrnoRet");
        hull_jw_value(w, v);
    }
    hull_jw_key(w, "architectures");
    hull_jw_begin_array(w);
    if ((v = hull_json_get(t, "architectures")) && YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (YAJL_IS_STRING(v->u.array.values[i]))
                hull_jw_string(w, YAJL_GET_STRING(v->u.array.values[i]));
    } else if ((v = hull_json_get(t, "archMap")) && YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            yajl_val a = v->u.array.values[i];
            if (strcmp(hull_json_get_string(a, "architecture", ""), host_scmp_arch()) != 0)
                continue;
            hull_jw_string(w, host_scmp_arch());
            yajl_val subs = hull_json_get(a, "subArchitectures");
            for (size_t j = 0; subs && YAJL_IS_ARRAY(subs) && j < subs->u.array.len; j++)
                if (YAJL_IS_STRING(subs->u.array.values[j]))
                    hull_jw_string(w, YAJL_GET_STRING(subs->u.array.values[j]));
        }
    }
    hull_jw_end_array(w);
    if ((v = hull_json_get(t, "flags")) && YAJL_IS_ARRAY(v)) {
        hull_jw_key(w, "flags");
        hull_jw_value(w, v);
    }
    const char *lp = hull_json_get_string(t, "listenerPath", NULL);
    if (lp)
        hull_jw_kv_string(w, "listenerPath", lp);
    const char *lm = hull_json_get_string(t, "listenerMetadata", NULL);
    if (lm)
        hull_jw_kv_string(w, "listenerMetadata", lm);
    hull_jw_key(w, "syscalls");
    hull_jw_begin_array(w);
    yajl_val calls = hull_json_get(t, "syscalls");
    for (size_t i = 0; calls && YAJL_IS_ARRAY(calls) && i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        if (!YAJL_IS_OBJECT(c))
            return hull_error_setx(err, EINVAL,
                                   "seccomp profile `%s`: syscalls[%zu] is not an "
                                   "object",
                                   path, i);
        const char *action = hull_json_get_string(c, "action", NULL);
        if (empty(action))
            return hull_error_setx(err, EINVAL,
                                   "seccomp profile `%s`: syscalls[%zu] has no "
                                   "action",
                                   path, i);
        yajl_val inc = hull_json_get(c, "includes"), exc = hull_json_get(c, "excludes");
        if (inc) {
            yajl_val arches = hull_json_get(inc, "arches");
            if (arches && YAJL_IS_ARRAY(arches) && arches->u.array.len &&
                !json_strarr_has(arches, hull_goarch()))
                continue;
            if (!json_caps_all_in(hull_json_get(inc, "caps"), bounding))
                continue;
        }
        if (exc) {
            if (json_strarr_has(hull_json_get(exc, "arches"), hull_goarch()) ||
                json_caps_any_in(hull_json_get(exc, "caps"), bounding))
                continue;
        }
        hull_jw_begin_object(w);
        hull_jw_key(w, "names");
        hull_jw_begin_array(w);
        yajl_val names = hull_json_get(c, "names");
        for (size_t j = 0; names && YAJL_IS_ARRAY(names) && j < names->u.array.len; j++)
            if (YAJL_IS_STRING(names->u.array.values[j]))
                hull_jw_string(w, YAJL_GET_STRING(names->u.array.values[j]));
        const char *name = hull_json_get_string(c, "name", NULL);
        if (name)
            hull_jw_string(w, name);
        hull_jw_end_array(w);
        hull_jw_kv_string(w, "action", action);
        if ((v = hull_json_get(c, "errnoRet")) && YAJL_IS_INTEGER(v)) {
            hull_jw_key(w, "errnoRet");
            hull_jw_value(w, v);
        }
        if ((v = hull_json_get(c, "args")) && YAJL_IS_ARRAY(v)) {
            hull_jw_key(w, "args");
            hull_jw_value(w, v);
        }
        hull_jw_end_object(w);
    }
    hull_jw_end_array(w);
    hull_jw_end_object(w);
    return 0;
}
