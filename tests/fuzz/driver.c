/* The standalone fuzz driver (no libFuzzer needed): replays the target's corpus (every file of
 * the --corpus directory: its seeds and every input that ever failed), then runs random inputs
 * and mutations of the seeds and corpus until the time budget is spent.
 *
 *   fuzz_X [-t SECONDS] [-s SEED] [-n MAX_RUNS] [-T MS] [--corpus DIR]
 *          fuzz (defaults: 3 s, a random seed printed at start, 5000 ms per input)
 *   fuzz_X FILE...             run these inputs once (reproduce a failure)
 *   fuzz_X --write-seeds DIR   write the built-in seeds into DIR (a corpus for libFuzzer)
 *
 * The PRNG seed is drawn from getrandom(2) unless -s gives one; it is printed first, so any run
 * is reproduced with `-s SEED` (and the same -n or time budget).  An input that makes a
 * sanitizer report, the target abort, or runs longer than -T milliseconds is written to
 * ./fuzz-crash-<target> and, with --corpus, into DIR as crash-<hash>: commit that file and
 * every later run replays it first (a regression case). */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <dirent.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT 65536

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
static const char *corpus_dir;
static long timeout_ms = 5000;

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

static void save_to(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, cur_data, cur_len) == (ssize_t)cur_len)
        fprintf(stderr, "fuzz: input (%zu bytes) saved to %s\n", cur_len, path);
    close(fd);
}

static void save_current(void)
{
    if (!cur_data)
        return;
    char path[4096];
    snprintf(path, sizeof(path), "fuzz-crash-%s", target_name);
    save_to(path);
    if (corpus_dir) {
        /* named by content: the same failure found twice is one regression case */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < cur_len; i++)
            h = (h ^ cur_data[i]) * 1099511628211ULL;
        snprintf(path, sizeof(path), "%s/crash-%016llx", corpus_dir, (unsigned long long)h);
        save_to(path);
    }
    cur_data = NULL;
}

static void on_abort(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_timeout(int sig)
{
    static const char msg[] = "fuzz: input ran past the per-input timeout (-T)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    (void)sig;
    save_current();
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void arm_timer(long ms)
{
    struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
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
    if (timeout_ms > 0)
        arm_timer(timeout_ms);
    LLVMFuzzerTestOneInput(copy, len);
    if (timeout_ms > 0)
        arm_timer(0);
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

/* One random edit of buf (len bytes, room for FUZZ_MAX_INPUT); returns the new length. */
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
        if (len + n > FUZZ_MAX_INPUT)
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
        if (len + n > FUZZ_MAX_INPUT)
            break;
        size_t to = rnd_below(len + 1);
        uint8_t tmp[FUZZ_MAX_INPUT];
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
        if (keep + n > FUZZ_MAX_INPUT)
            n = FUZZ_MAX_INPUT - keep;
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir (sorted by name): run once each, and added to the seeds.
 * Returns the number of files, or -1 when dir cannot be read (a missing dir is empty). */
static long load_corpus(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        if (!names || !(names[n] = strdup(de->d_name)))
            abort();
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    static uint8_t buf[1 << 20];
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        free(names[i]);
        struct stat st;
        FILE *f = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        run_one(buf, len); /* a regression case first: it must pass */
        if (len <= FUZZ_MAX_INPUT)
            add_seed(buf, len);
        count++;
    }
    free(names);
    return count;
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
    uint64_t seed = 0;
    bool have_seed = false;
    unsigned long max_runs = 0;
    const char *write_seeds = NULL;
    int first_file = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0), have_seed = true;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            max_runs = strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "-T") == 0 && i + 1 < argc)
            timeout_ms = strtol(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            corpus_dir = argv[++i];
        else if (strcmp(argv[i], "--write-seeds") == 0 && i + 1 < argc)
            write_seeds = argv[++i];
        else {
            first_file = i;
            break;
        }
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    hull_fuzz_seeds(add_seed);
    if (write_seeds)
        return write_corpus(write_seeds);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(save_current);
    signal(SIGABRT, on_abort);
    signal(SIGSEGV, on_abort);
    signal(SIGALRM, on_timeout);
    if (first_file < argc) {
        int rc = 0;
        for (int i = first_file; i < argc; i++)
            rc |= run_file(argv[i]);
        return rc;
    }

    if (!have_seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    printf("fuzz %s: seed %llu (rerun with -s %llu)\n", target_name, (unsigned long long)seed,
           (unsigned long long)seed);
    fflush(stdout);
    rng_state = seed ? seed : 1;
    for (size_t i = 0; i < n_seeds; i++)
        run_one(seeds[i].data, seeds[i].len);
    long n_corpus = 0;
    if (corpus_dir && (n_corpus = load_corpus(corpus_dir)) < 0) {
        perror(corpus_dir);
        return 1;
    }
    static uint8_t buf[FUZZ_MAX_INPUT];
    unsigned long runs = 0, random_runs = 0;
    double end = now_s() + seconds;
    while ((max_runs == 0 || runs < max_runs) && ((runs & 63) != 0 || now_s() < end)) {
        size_t len;
        if (n_seeds == 0 || rnd_below(8) == 0) {
            /* random bytes, mostly short */
            len = rnd_below(8) == 0 ? rnd_below(FUZZ_MAX_INPUT) : rnd_below(256);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rnd();
            random_runs++;
        } else {
            const struct seed *s = &seeds[rnd_below(n_seeds)];
            len = s->len < FUZZ_MAX_INPUT ? s->len : FUZZ_MAX_INPUT;
            memcpy(buf, s->data, len);
            for (size_t m = 1 + rnd_below(6); m > 0; m--)
                len = mutate(buf, len);
        }
        run_one(buf, len);
        runs++;
    }
    printf("fuzz %s: %ld corpus files replayed, %zu seeds, %lu runs (%lu random, %lu mutated) in "
           "%.1f s, seed %llu: ok\n",
           target_name, n_corpus, n_seeds, runs, random_runs, runs - random_runs, seconds,
           (unsigned long long)seed);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    free(seeds);
    return 0;
}
