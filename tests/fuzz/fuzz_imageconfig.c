/* Image config blobs as a registry serves them (only their digest is checked, not their shape):
 * what a CreateContainer reads from them (user, entrypoint, cmd, env, working dir, volumes,
 * labels, stop signal) and the diff ids matched against the layers.  A working dir and every
 * volume come out as clean absolute container paths. */
#include "tests/fuzz/fuzz.h"
#include "image/internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *text = malloc(size);
    if (!text)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    _cleanup_error_ hull_error_t err = NULL;
    struct image_rec rec;
    memset(&rec, 0, sizeof(rec));
    if (hull_json_parse(text, "image config", &rec.config, &err) == 0) {
        char id[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char *none[] = {NULL};
        rec.id = id;
        rec.tags = none;
        rec.digests = none;
        rec.manifest_digest = id;
        struct image_info *i = img_info_of(&rec);
        hull_fuzz_check(i != NULL && i->user && i->username && i->working_dir);
        hull_fuzz_check(i->working_dir[0] == '\0' || i->working_dir[0] == '/');
        for (char **v = i->volumes; v && *v; v++) {
            hull_fuzz_check((*v)[0] == '/' || (*v)[0] == '\0');
            hull_fuzz_check(strstr(*v, "/../") == NULL);
        }
        image_info_free(i);
        yajl_tree_free(rec.config);
    }
    /* the diff ids for 0..7 layers */
    size_t n = data[0] % 8;
    struct layer_ref layers[8];
    memset(layers, 0, sizeof(layers));
    _cleanup_error_ hull_error_t e2 = NULL;
    if (img_config_diff_ids(text, layers, n, &e2) == 0)
        for (size_t k = 0; k < n; k++)
            hull_fuzz_check(image_digest_valid(layers[k].diff_id));
    for (size_t k = 0; k < n; k++)
        img_layer_ref_free(&layers[k]);
    free(text);
    return 0;
}

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const char cfg[] =
        "\x01{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1000:1000\","
        "\"Env\":[\"PATH=/usr/bin\",\"A=b\"],\"Entrypoint\":[\"/bin/sh\"],\"Cmd\":[\"-c\",\"x\"],"
        "\"WorkingDir\":\"/srv/../app/./x\",\"Volumes\":{\"/data\":{},\"../../etc\":{},\"\":{}},"
        "\"Labels\":{\"a\":\"b\",\"n\":7},\"StopSignal\":\"SIGINT\"},\"rootfs\":{\"type\":"
        "\"layers\",\"diff_ids\":[\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef\"]}}";
    add(cfg, sizeof(cfg) - 1);
    static const char odd[] = "\x02{\"config\":{\"User\":\"root:\",\"Env\":\"notalist\","
                              "\"Volumes\":[],\"WorkingDir\":7},\"rootfs\":{\"diff_ids\":[1,2]}}";
    add(odd, sizeof(odd) - 1);
    static const char big_uid[] = "\x00{\"config\":{\"User\":\"99999999999999999999\"}}";
    add(big_uid, sizeof(big_uid) - 1);
}
