/* Fuzz targets for Hull's parsers of untrusted input.  Each tests/fuzz/fuzz_<name>.c defines
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)   (the libFuzzer entry point)
 *   void hull_fuzz_seeds(void (*add)(const void *data, size_t len)) (valid inputs to mutate)
 * and may define LLVMFuzzerInitialize().  Built two ways:
 *   - with driver.c (make fuzz, run by make test): seeds, then random and mutated seed inputs
 *     from a fixed PRNG seed for a bounded time, under ASan/UBSan;
 *   - with clang's libFuzzer (make fuzz-libfuzzer), for open-ended runs:
 *       build/clang/libfuzzer/fuzz_spdy -max_total_time=600 CORPUS_DIR
 *     (`build/asan/fuzz/fuzz_spdy --corpus DIR` writes the seeds into DIR first).
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
