/* config.json as any bundle hands it to hull-oci (a runc-compatible runtime runs whatever bundle
 * it is given): the typed model's parser (common/ocispec_model.h), then hull-oci's reading of the
 * model (oci_spec_parse).  A model the parser accepts serializes to JSON the parser accepts
 * again, and that second trip changes nothing. */
#include "tests/fuzz/fuzz.h"
#include "common/ocispec_model.h"
#include "oci/oci.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    _cleanup_error_ hull_error_t err = NULL;
    struct hull_ocispec *m = NULL;
    if (hull_ocispec_parse(text, &m, &err) == 0) {
        hull_fuzz_check(m != NULL && m->root_path != NULL && m->oci_version != NULL);
        char *once = hull_ocispec_to_json(m, false);
        struct hull_ocispec *back = NULL;
        _cleanup_error_ hull_error_t e2 = NULL;
        hull_fuzz_check(hull_ocispec_parse(once, &back, &e2) == 0);
        char *twice = hull_ocispec_to_json(back, false);
        hull_fuzz_check(strcmp(once, twice) == 0);
        free(once);
        free(twice);
        hull_ocispec_free(back);
        hull_ocispec_free(m);
    } else {
        hull_fuzz_check(m == NULL && err != NULL);
    }
    struct oci_spec *s = NULL;
    _cleanup_error_ hull_error_t e3 = NULL;
    if (oci_spec_parse(text, "/bundle", &s, &e3) == 0) {
        hull_fuzz_check(s->rootfs != NULL && s->rootfs[0] == '/');
        oci_spec_free(s);
    }
    free(text);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char full[] =
        "{\"ociVersion\":\"1.1.0\",\"process\":{\"terminal\":true,\"consoleSize\":{\"height\":1,"
        "\"width\":2},\"user\":{\"uid\":1,\"gid\":2,\"umask\":18,\"additionalGids\":[3,2]},"
        "\"args\":[\"sh\"],\"env\":[\"A=1\"],\"cwd\":\"/\",\"capabilities\":{\"bounding\":"
        "[\"CAP_KILL\",\"CAP_NOPE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":"
        "18446744073709551615,\"soft\":1}],\"noNewPrivileges\":true,\"oomScoreAdj\":-5,"
        "\"apparmorProfile\":\"p\",\"selinuxLabel\":\"l\"},\"root\":{\"path\":\"rootfs\"},"
        "\"hostname\":\"h\",\"mounts\":[{\"destination\":\"/d\",\"source\":\"s\",\"options\":"
        "[\"rbind\",\"rro\",\"rshared\",\"mode=1\"]},{\"destination\":\"/t\",\"type\":\"tmpfs\"}],"
        "\"hooks\":{\"prestart\":[{\"path\":\"/h\",\"timeout\":3}]},\"annotations\":{\"a\":\"b\"},"
        "\"linux\":{\"sysctl\":{\"net.x\":\"1\"},\"resources\":{\"memory\":{\"limit\":1}},"
        "\"cgroupsPath\":\"/c\",\"namespaces\":[{\"type\":\"user\"},{\"type\":\"time\"}],"
        "\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":2}],\"gidMappings\":"
        "[{\"containerID\":0,\"hostID\":1,\"size\":2}],\"devices\":[{\"path\":\"/dev/f\","
        "\"type\":\"c\",\"major\":1,\"minor\":2,\"fileMode\":438}],\"maskedPaths\":[\"/m\"],"
        "\"readonlyPaths\":[],\"rootfsPropagation\":\"rslave\",\"mountLabel\":\"x\",\"seccomp\":"
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
        "\"syscalls\":[{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":"
        "0,\"value\":2080505856,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]},"
        "\"timeOffsets\":{\"boottime\":{\"secs\":-1,\"nanosecs\":2}},\"personality\":{\"domain\":"
        "\"LINUX\"}}}";
    add(full, sizeof(full) - 1);
    static const char nulls[] = "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"/r\"},\"process\":"
                                "null,\"linux\":{\"seccomp\":null,\"namespaces\":[{\"type\":"
                                "\"pid\",\"path\":\"\"}]}}";
    add(nulls, sizeof(nulls) - 1);
    static const char odd[] = "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"r\"},\"process\":{"
                              "\"args\":[\"x\"],\"user\":{\"uid\":4294967296}},\"mounts\":{}}";
    add(odd, sizeof(odd) - 1);
}
