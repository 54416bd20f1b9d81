/* Manifests and image indexes as a registry serves them (a hostile registry controls every byte
 * and the Content-Type): the first input byte picks the Content-Type, the rest is the body.  A
 * manifest that parses names a valid config digest and at most 500 layers with valid digests;
 * an index that parses names a valid platform digest. */
#include "tests/fuzz/fuzz.h"
#include "image/internal.h"

#include <errno.h>
#include <string.h>

static const char *const types[] = {
    NULL,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "text/html",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *ct = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    char *body = malloc(size);
    if (!body)
        abort();
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    struct img_manifest m;
    _cleanup_error_ hull_error_t err = NULL;
    int r = img_manifest_parse(body, ct, &m, &err);
    hull_fuzz_check(r == 0 || (r < 0 && err != NULL));
    if (r == 0 && m.index) {
        hull_fuzz_check(image_digest_valid(m.pick));
    } else if (r == 0) {
        hull_fuzz_check(image_digest_valid(m.config_digest));
        hull_fuzz_check(m.n_layers <= 500);
        for (size_t i = 0; i < m.n_layers; i++)
            hull_fuzz_check(image_digest_valid(m.layers[i].digest));
        /* and the config's diff ids against these layers */
        _cleanup_error_ hull_error_t e2 = NULL;
        img_config_diff_ids(body, m.layers, m.n_layers, &e2);
    }
    img_manifest_clear(&m);
    free(body);
    return 0;
}

static void add_str(void (*add)(const void *, size_t), uint8_t type, const char *s)
{
    size_t n = strlen(s);
    uint8_t *b = malloc(n + 1);
    if (!b)
        abort();
    b[0] = type;
    memcpy(b + 1, s, n);
    add(b, n + 1);
    free(b);
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char d[] =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
             "\"%s\",\"size\":1234},\"layers\":[{\"mediaType\":\"application/"
             "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":99}],"
             "\"rootfs\":{\"diff_ids\":[\"%s\"]}}",
             d, d, d);
    add_str(add, 1, buf);
    snprintf(buf, sizeof(buf),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
             "\"manifests\":[{\"digest\":\"%s\",\"size\":5,\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"amd64\"}},{\"digest\":\"%s\",\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}",
             d, d);
    add_str(add, 2, buf);
    add_str(add, 0, "{\"schemaVersion\":1,\"fsLayers\":[]}");
    add_str(add, 0, "{\"manifests\":[{\"digest\":7}]}");
    add_str(add, 3, "[1,2,3]");
}
