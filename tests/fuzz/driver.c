/* The standalone fuzz driver (no libFuzzer needed): runs a target's seeds, then random inputs
 * and mutations of the seeds from a fixed PRNG seed until the time budget is spent.
 *
 *   fuzz_X [-t SECONDS] [-s SEED] [-n MAX_RUNS]   fuzz (defaults: 3 s, seed 1)
 *   fuzz_X FILE...                                 run these inputs once (reproduce a crash)
 *   fuzz_X --corpus DIR                            write the seeds into DIR (for libFuzzer)
 *
 * When a sanitizer reports an error or the target aborts, the input is written to
 * ./fuzz-crash-<target> first, so the failure can be replayed with `fuzz_X fuzz-crash-<target>`. */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUT 65536

/* The sanitizers' hook, if linked with one (weak: the driver also runs without). */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
/* UBSan reports end with abort() (SIGABRT saves the input) rather than _exit(). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "print_stacktrace=1:halt_on_error=1:abort_on_error=1";
}
/* Optional in a target. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct seed {
    uint8_t *data;
    size_t len;
};
static struct seed *seeds;
static size_t n_seeds;
static const uint8_t *cur_data;
static size_t cur_len;
static const char *target_name = "target";

static void add_seed(const void *data, size_t len)
{
    seeds = realloc(seeds, (n_seeds + 1) * sizeof(*seeds));
    if (!seeds)
        abort();
    seeds[n_seeds].data = malloc(len ? len : 1);
    if (!seeds[n_seeds].data)
        abort();
    memcpy(seeds[n_seeds].data, data, len);
    seeds[n_seeds].len = len;
    n_seeds++;
}

static void save_current(void)
{
    if (!cur_data)
        return;
    char path[256];
    snprintf(path, sizeof(path), "fuzz-crash-%s", target_name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, cur_data, cur_len) == (ssize_t)cur_len)
        fprintf(stderr, "fuzz: input (%zu bytes) saved to %s\n", cur_len, path);
    close(fd);
    cur_data = NULL;
}

static void on_abort(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_one(const uint8_t *d, size_t len)
{
    /* a private copy of exactly len bytes: ASan catches any read past the end */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, d, len);
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    cur_data = NULL;
    free(copy);
}

/* xorshift64*: fixed seed, same inputs on every run */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '\r', '\n', ':', ' ', '=', '/', 0xfe};

/* One random edit of buf (len bytes, room for MAX_INPUT); returns the new length. */
static size_t mutate(uint8_t *buf, size_t len)
{
    switch (rnd_below(9)) {
    case 0: /* flip a bit */
        if (len)
            buf[rnd_below(len)] ^= (uint8_t)(1u << rnd_below(8));
        break;
    case 1: /* an interesting byte */
        if (len)
            buf[rnd_below(len)] = interesting[rnd_below(sizeof(interesting))];
        break;
    case 2: /* a random byte */
        if (len)
            buf[rnd_below(len)] = (uint8_t)rnd();
        break;
    case 3: /* truncate */
        len = rnd_below(len + 1);
        break;
    case 4: { /* delete a run */
        if (!len)
            break;
        size_t at = rnd_below(len), n = 1 + rnd_below(len - at < 16 ? len - at : 16);
        memmove(buf + at, buf + at + n, len - at - n);
        len -= n;
        break;
    }
    case 5: { /* insert random bytes */
        size_t n = 1 + rnd_below(16), at = rnd_below(len + 1);
        if (len + n > MAX_INPUT)
            break;
        memmove(buf + at + n, buf + at, len - at);
        for (size_t i = 0; i < n; i++)
            buf[at + i] = (uint8_t)rnd();
        len += n;
        break;
    }
    case 6: { /* duplicate a chunk (repeated headers, frames) */
        if (!len)
            break;
        size_t at = rnd_below(len), n = 1 + rnd_below(len - at);
        if (len + n > MAX_INPUT)
            break;
        size_t to = rnd_below(len + 1);
        uint8_t tmp[MAX_INPUT];
        memcpy(tmp, buf + at, n);
        memmove(buf + to + n, buf + to, len - to);
        memcpy(buf + to, tmp, n);
        len += n;
        break;
    }
    case 7: { /* a 16/32-bit field set to a boundary value (lengths, counts, ids) */
        if (len < 4)
            break;
        static const uint32_t vals[] = {0,       1,          0x7f,       0x80,
                                        0xff,    0x100,      0x7fff,     0xffff,
                                        0x10000, 0x7fffffff, 0x80000000, 0xffffffff};
        uint32_t v = vals[rnd_below(sizeof(vals) / sizeof(vals[0]))];
        size_t at = rnd_below(len - 3);
        if (rnd() & 1) {
            buf[at] = (uint8_t)(v >> 8);
            buf[at + 1] = (uint8_t)v;
        } else {
            buf[at] = (uint8_t)(v >> 24);
            buf[at + 1] = (uint8_t)(v >> 16);
            buf[at + 2] = (uint8_t)(v >> 8);
            buf[at + 3] = (uint8_t)v;
        }
        break;
    }
    default: { /* splice with another seed */
        if (!n_seeds)
            break;
        const struct seed *o = &seeds[rnd_below(n_seeds)];
        size_t keep = rnd_below(len + 1), from = rnd_below(o->len + 1);
        size_t n = o->len - from;
        if (keep + n > MAX_INPUT)
            n = MAX_INPUT - keep;
        memcpy(buf + keep, o->data + from, n);
        len = keep + n;
        break;
    }
    }
    return len;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_corpus(const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    for (size_t i = 0; i < n_seeds; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%03zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
            perror(path);
            if (f)
                fclose(f);
            return 1;
        }
        fclose(f);
    }
    printf("%zu seeds written to %s\n", n_seeds, dir);
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    run_one(buf, n);
    printf("%s: %zu bytes: ok\n", path, n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    target_name = slash ? slash + 1 : argv[0];
    if (strncmp(target_name, "fuzz_", 5) == 0)
        target_name += 5;
    double seconds = 3;
    uint64_t seed = 1;
    unsigned long max_runs = 0;
    const char *corpus = NULL;
    int first_file = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            max_runs = strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            corpus = argv[++i];
        else {
            first_file = i;
            break;
        }
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    hull_fuzz_seeds(add_seed);
    if (corpus)
        return write_corpus(corpus);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(save_current);
    signal(SIGABRT, on_abort);
    signal(SIGSEGV, on_abort);
    if (first_file < argc) {
        int rc = 0;
        for (int i = first_file; i < argc; i++)
            rc |= run_file(argv[i]);
        return rc;
    }

    rng_state = seed ? seed : 1;
    for (size_t i = 0; i < n_seeds; i++)
        run_one(seeds[i].data, seeds[i].len);
    static uint8_t buf[MAX_INPUT];
    unsigned long runs = 0, random_runs = 0;
    double end = now_s() + seconds;
    while ((max_runs == 0 || runs < max_runs) && ((runs & 63) != 0 || now_s() < end)) {
        size_t len;
        if (n_seeds == 0 || rnd_below(8) == 0) {
            /* random bytes, mostly short */
            len = rnd_below(8) == 0 ? rnd_below(MAX_INPUT) : rnd_below(256);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd();
            random_runs++;
        } else {
            const struct seed *s = &seeds[rnd_below(n_seeds)];
            len = s->len < MAX_INPUT ? s->len : MAX_INPUT;
            memcpy(buf, s->data, len);
            for (size_t m = 1 + rnd_below(6); m > 0; m--)
                len = mutate(buf, len);
        }
        run_one(buf, len);
        runs++;
    }
    printf("fuzz %s: %zu seeds, %lu runs (%lu random, %lu mutated) in %.1f s, seed %llu: ok\n",
           target_name, n_seeds, runs, random_runs, runs - random_runs, seconds,
           (unsigned long long)seed);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    free(seeds);
    return 0;
}
