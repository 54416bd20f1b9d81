/* Fuzz targets for Hull's parsers of untrusted input.  Each tests/fuzz/fuzz_<name>.c defines
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)   (the libFuzzer entry point)
 *   void hull_fuzz_seeds(void (*add)(const void *data, size_t len)) (valid inputs to mutate)
 * and may define LLVMFuzzerInitialize().  Each target has a corpus, tests/fuzz/corpus/<name>/:
 * its seeds (seed-NNN, written by `fuzz_<name> --write-seeds DIR`) and every input that ever
 * made it fail (crash-*, timeout-*), kept as regression cases.  Built two ways:
 *   - with driver.c (make fuzz, run by make test): the corpus replayed first, then random and
 *     mutated inputs from a random PRNG seed (printed; `-s SEED` reproduces a run) for
 *     FUZZ_SECONDS, each input bounded by -T milliseconds, under ASan/UBSan; a failing input is
 *     saved into the corpus;
 *   - with clang's libFuzzer (make fuzz-libfuzzer: FUZZ_SECONDS per target on the corpus, new
 *     coverage in build/clang/corpus/, failures written into the corpus).
 * A target must never crash, leak or hang on any input; it may check invariants with
 * hull_fuzz_check(), which aborts (and the driver saves the input) when one fails. */
#ifndef HULL_TESTS_FUZZ_FUZZ_H
#define HULL_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
void hull_fuzz_seeds(void (*add)(const void *data, size_t len));

#define hull_fuzz_check(cond)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
