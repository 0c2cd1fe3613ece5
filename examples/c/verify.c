/* Verify attestation evidence with Tessera's C API.
 *
 *   verify <evidence file> <unix time> [certificate or CRL or collateral file ...]
 *
 * Prints ACCEPTED or REJECTED with the failed check and message, then the claims JSON.
 * Exit status: 0 accepted, 1 rejected, 2 usage or call error.
 * Build: cc verify.c $(pkg-config --cflags --libs tessera) -o verify */
#include <stdio.h>
#include <stdlib.h>

#include "tessera.h"

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <evidence> <unix time> [endorsement file ...]\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    unsigned char *evidence = read_all(argv[1], &len);
    if (!evidence) {
        perror(argv[1]);
        return 2;
    }
    int status = 2;
    tessera_endorsements *extra = NULL;
    tessera_verifier *verifier = NULL;
    tessera_verification *result = NULL;
    tessera_result rc = tessera_endorsements_new(&extra);
    for (int i = 3; rc == TESSERA_RESULT_OK && i < argc; i++) {
        rc = tessera_endorsements_add_file(extra, argv[i]);
        if (rc != TESSERA_RESULT_OK) fprintf(stderr, "%s: ", argv[i]);
    }
    /* The vendors' roots are built in; one verifier serves any number of threads. */
    if (rc == TESSERA_RESULT_OK) rc = tessera_verifier_new(&verifier);
    if (rc == TESSERA_RESULT_OK)
        rc = tessera_verifier_verify(verifier, evidence, len, extra, strtoll(argv[2], NULL, 10),
                                     NULL, &result);
    if (rc != TESSERA_RESULT_OK) {
        fprintf(stderr, "error: %s\n", tessera_result_name(rc));
    } else if (tessera_verification_verdict(result) == TESSERA_VERDICT_ACCEPTED) {
        printf("ACCEPTED\n%s\n", tessera_verification_claims_json(result));
        status = 0;
    } else {
        printf("REJECTED %s (%s): %s\n", tessera_result_name(tessera_verification_result(result)),
               tessera_verification_failed_check(result), tessera_verification_message(result));
        status = 1;
    }
    tessera_verification_free(result);
    tessera_verifier_free(verifier);
    tessera_endorsements_free(extra);
    free(evidence);
    return status;
}
