/* An image's /etc/passwd and /etc/group (attacker-controlled files of the image) as the OCI spec
 * generator resolves a container's user through them (server/spec/spec.h, called as hulld does).
 * Input: passwd NUL group NUL user-spec (each part optional). */
#include "tests/fuzz/fuzz.h"
#include "server/spec/spec.h"

#include <fcntl.h>
#include <string.h>

static char *dir, *rootfs, *cdir, *passwd_path, *group_path;

static void cleanup(void)
{
    hull_error_t err = NULL;
    if (dir && hull_rm_rf(dir, &err) < 0)
        hull_error_free(&err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/hull-fuzz-passwd-XXXXXX";
    if (!mkdtemp(tmpl))
        abort();
    dir = xstrdup(tmpl);
    rootfs = hull_path_join(dir, "rootfs");
    cdir = hull_path_join(dir, "container");
    _cleanup_free_ char *etc = hull_path_join(rootfs, "etc");
    passwd_path = hull_path_join(etc, "passwd");
    group_path = hull_path_join(etc, "group");
    hull_error_t err = NULL;
    if (hull_mkdir_p(etc, 0755, &err) < 0 || hull_mkdir_p(cdir, 0755, &err) < 0)
        abort();
    atexit(cleanup);
    return 0;
}

static void write_part(const char *path, const uint8_t *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (n && write(fd, d, n) != (ssize_t)n))
        abort();
    close(fd);
}

/* the next NUL-separated part of data */
static const uint8_t *part(const uint8_t **d, size_t *left, size_t *n)
{
    const uint8_t *p = *d;
    const uint8_t *z = *left ? memchr(p, 0, *left) : NULL;
    *n = z ? (size_t)(z - p) : *left;
    *d += *n + (z ? 1 : 0);
    *left -= *n + (z ? 1 : 0);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t left = size, np, ng, nu;
    const uint8_t *p = part(&data, &left, &np);
    const uint8_t *g = part(&data, &left, &ng);
    const uint8_t *u = part(&data, &left, &nu);
    write_part(passwd_path, p, np);
    write_part(group_path, g, ng);
    char user[128];
    if (nu >= sizeof(user))
        nu = sizeof(user) - 1;
    memcpy(user, u, nu);
    user[nu] = '\0';

    Runtime__V1__ContainerConfig cfg;
    Runtime__V1__ContainerMetadata meta;
    Runtime__V1__ImageSpec ispec;
    Runtime__V1__LinuxContainerConfig lcfg;
    Runtime__V1__LinuxContainerSecurityContext sc;
    Runtime__V1__PodSandboxConfig pcfg;
    Runtime__V1__PodSandboxMetadata pmeta;
    runtime__v1__container_config__init(&cfg);
    runtime__v1__container_metadata__init(&meta);
    runtime__v1__image_spec__init(&ispec);
    runtime__v1__linux_container_config__init(&lcfg);
    runtime__v1__linux_container_security_context__init(&sc);
    runtime__v1__pod_sandbox_config__init(&pcfg);
    runtime__v1__pod_sandbox_metadata__init(&pmeta);
    meta.name = (char *)"c";
    ispec.image = (char *)"busybox";
    cfg.metadata = &meta;
    cfg.image = &ispec;
    cfg.linux = &lcfg;
    lcfg.security_context = &sc;
    pmeta.name = (char *)"pod";
    pmeta.namespace_ = (char *)"default";
    pmeta.uid = (char *)"uid";
    pcfg.metadata = &pmeta;
    /* the user comes from the image or, when the spec starts with '@', run_as_username */
    if (user[0] == '@')
        sc.run_as_username = user + 1;
    int64_t groups[2] = {50, 4242};
    if (nu && (u[0] & 0x80)) {
        sc.supplemental_groups = groups;
        sc.n_supplemental_groups = 2;
    }
    struct spec_sandbox sb = {.id = "sb", .config = &pcfg, .hostname = "h"};
    struct image_info img;
    memset(&img, 0, sizeof(img));
    static char *cmd[] = {"sh", NULL};
    img.cmd = cmd;
    img.user = user[0] == '@' ? "" : user;
    struct spec_user uo;
    memset(&uo, 0, sizeof(uo));
    struct spec_input in = {
        .container_id = "c0ffee",
        .config = &cfg,
        .sandbox = &sb,
        .image = &img,
        .rootfs = rootfs,
        .container_dir = cdir,
        .user_out = &uo,
    };
    _cleanup_error_ hull_error_t err = NULL;
    _cleanup_free_ char *json = NULL;
    if (spec_from_cri(&in, &json, &err) == 0) {
        hull_fuzz_check(json != NULL);
        hull_fuzz_check(uo.n_additional_gids >= 1 && uo.additional_gids[0] == uo.gid);
        hull_fuzz_check(uo.uid != (uint32_t)-1 && uo.gid != (uint32_t)-1);
    } else {
        hull_fuzz_check(err != NULL);
    }
    free(uo.additional_gids);
    return 0;
}

#define SEED(lit)                                                                                  \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

void hull_fuzz_seeds(void (*add)(const void *data, size_t len))
{
    static const struct {
        const char *d;
        size_t n;
    } seeds[] = {
        SEED("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n"
             "svc:x:2000:3000::/:/bin/false\n\0"
             "root:x:0:\nwheel:x:10:root,app\nstaff:x:50:svc\nextra:x:500:svc,app\n\0app"),
        SEED("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n\0"
             "wheel:x:10:root,app\nstaff:x:50:svc\n\0app:staff"),
        SEED("svc:x:2000:3000::/:/bin/false\n\0staff:x:50:svc\n\0@svc"),
        SEED("a:x:1:1::/:/bin/sh\n\0g:x:7:a\n\0"
             "\x81:7"),
        SEED("+:::::\n-x:x:5:5\n# comment\n\n\0\0"
             "1000"),
        SEED("toolong:x:99999999999:1::/:\n\0\0toolong"),
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        add(seeds[i].d, seeds[i].n);
}
