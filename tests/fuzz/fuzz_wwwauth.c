/* WWW-Authenticate challenges as a registry sends them (`Bearer realm="…",service="…",
 * scope="…"`): any header text; a parameter that is found is a substring of the header. */
#include "tests/fuzz/fuzz.h"
#include "image/internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *h = malloc(size + 1);
    if (!h)
        abort();
    memcpy(h, data, size);
    h[size] = '\0';
    static const char *const keys[] = {"realm", "service", "scope", "error", "r"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        _cleanup_free_ char *v = img_challenge_param(h, keys[i]);
        if (v)
            hull_fuzz_check(strlen(v) <= strlen(h) && (v[0] == '\0' || strstr(h, v) != NULL));
    }
    free(h);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char *const s[] = {
        ("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
         "scope=\"repository:library/busybox:pull\""),
        "Basic realm=\"Registry Realm\"",
        "Bearer realm=https://x/t,service=svc,scope=a scope",
        "Bearer realm=\"unterminated",
        "bearer REALM=\"h\", Service=\"s\",error=\"invalid_token\"",
        "realm=",
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        add(s[i], strlen(s[i]));
}
