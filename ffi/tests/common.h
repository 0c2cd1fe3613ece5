/* Shared helpers of the C API's tests: file reading and checks that exit non-zero. */
#ifndef TESSERA_TEST_COMMON_H
#define TESSERA_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

/* The sample's verification time: 2022-09-25T00:55:28Z (examples/evidence/snp-milan). */
#define SAMPLE_AT 1664067328LL

static int failures = 0;
static inline void unused_failures(void) { (void)failures; }

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#define CHECK_RC(expr, want)                                                              \
    do {                                                                                  \
        tessera_result got_ = (expr);                                                     \
        if (got_ != (want)) {                                                             \
            const char *g_ = tessera_result_name(got_);                                   \
            const char *w_ = tessera_result_name(want);                                   \
            fprintf(stderr, "%s:%d: %s returned %s (%u), expected %s\n", __FILE__,       \
                    __LINE__, #expr, g_ ? g_ : "?", (unsigned)got_, w_ ? w_ : "?");       \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

/* Read a whole file (exits on failure). */
static inline unsigned char *read_file(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A NUL-terminated copy of `len` bytes (a policy or a time read from a file). */
static inline char *dup_text(const unsigned char *bytes, size_t len) {
    char *s = malloc(len + 1);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(s, bytes, len);
    s[len] = 0;
    return s;
}

static inline int finish(const char *name) {
    if (failures) {
        fprintf(stderr, "%s: %d check(s) FAILED\n", name, failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
