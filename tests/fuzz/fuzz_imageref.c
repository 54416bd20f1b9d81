/* Image references as CRI clients send them: name, registry host (with port, IPv6), tag and
 * digest; a parsed reference must print and re-parse to itself. */
#include "tests/fuzz/fuzz.h"
#include "image/image.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    struct image_ref r;
    memset(&r, 0, sizeof(r));
    _cleanup_error_ hull_error_t err = NULL;
    if (image_ref_parse(s, &r, &err) == 0) {
        _cleanup_free_ char *str = image_ref_string(&r);
        _cleanup_free_ char *repo = image_ref_repo(&r);
        hull_fuzz_check(str && repo);
        struct image_ref again;
        memset(&again, 0, sizeof(again));
        _cleanup_error_ hull_error_t err2 = NULL;
        hull_fuzz_check(image_ref_parse(str, &again, &err2) == 0);
        _cleanup_free_ char *str2 = image_ref_string(&again);
        hull_fuzz_check(strcmp(str, str2) == 0);
        image_ref_free(&again);
        image_ref_free(&r);
    } else {
        hull_fuzz_check(err != NULL);
    }
    free(s);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char *const seeds[] = {
        "busybox",
        "library/busybox:1.36",
        "docker.io/library/busybox:latest",
        "quay.io/org/app/sub:v1.2.3-rc.1",
        "localhost:5000/a/"
        "b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "127.0.0.1:5000/"
        "x:y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "[::1]:5000/img:tag",
        "registry.k8s.io/pause:3.9",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "UPPER/case",
        "a..b/c",
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        add(seeds[i], strlen(seeds[i]));
}
