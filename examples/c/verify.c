/* Verify attestation evidence with Tessera's C API.
 *
 *   verify [-p policy.toml] <evidence file> <unix time> [certificate or CRL or collateral file ...]
 *
 * Prints ACCEPTED (verified, and the policy passed), VERIFIED_UNAPPRAISED (verified, but no
 * policy was given: authentic evidence, yet nothing it reports was appraised) or REJECTED with
 * the failed check and message, then the claims JSON.
 * Exit status: 0 accepted, 1 rejected, 2 usage or call error, 3 verified but not appraised.
 * Build: cc verify.c $(pkg-config --cflags --libs tessera) -o verify */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* A read error is not an end of file: a policy cut short could be a weaker one. */
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    const char *policy_path = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-p") == 0) {
        policy_path = argv[2];
        first = 3;
    }
    if (argc < first + 2) {
        fprintf(stderr, "usage: %s [-p policy] <evidence> <unix time> [endorsement file ...]\n",
                argv[0]);
        return 2;
    }
    /* A policy file that cannot be read is an error: never verify without the policy asked for
     * (a NULL policy would mean "no appraisal"). The policy is passed as the bytes read, with
     * their length: all of them are appraised (a NUL byte in the file makes it an invalid
     * policy, never a shorter one), and an empty file (non-NULL, length 0) is rejected. */
    unsigned char *policy = NULL;
    size_t policy_len = 0;
    if (policy_path) {
        policy = read_all(policy_path, &policy_len);
        if (!policy) {
            perror(policy_path);
            return 2;
        }
    }
    size_t len = 0;
    unsigned char *evidence = read_all(argv[first], &len);
    if (!evidence) {
        perror(argv[first]);
        free(policy);
        return 2;
    }
    int status = 2;
    tessera_endorsements *extra = NULL;
    tessera_verifier *verifier = NULL;
    tessera_verification *result = NULL;
    tessera_result rc = tessera_endorsements_new(&extra);
    for (int i = first + 2; rc == TESSERA_RESULT_OK && i < argc; i++) {
        rc = tessera_endorsements_add_file(extra, argv[i]);
        if (rc != TESSERA_RESULT_OK) fprintf(stderr, "%s: ", argv[i]);
    }
    /* The vendors' roots are built in; one verifier serves any number of threads. */
    if (rc == TESSERA_RESULT_OK) rc = tessera_verifier_new(&verifier);
    /* The return code says whether the call worked; the verdict is in the result handle. */
    if (rc == TESSERA_RESULT_OK)
        rc = tessera_verifier_verify(verifier, evidence, len, extra,
                                     strtoll(argv[first + 1], NULL, 10), policy, policy_len, &result);
    if (rc != TESSERA_RESULT_OK) {
        fprintf(stderr, "error: %s\n", tessera_result_name(rc));
    } else {
        switch (tessera_verification_verdict(result)) {
        case TESSERA_VERDICT_ACCEPTED:
            printf("ACCEPTED\n%s\n", tessera_verification_claims_json(result));
            status = 0;
            break;
        case TESSERA_VERDICT_VERIFIED_UNAPPRAISED:
            printf("VERIFIED_UNAPPRAISED (no policy given: not accepted)\n%s\n",
                   tessera_verification_claims_json(result));
            status = 3;
            break;
        default:
            printf("REJECTED %s (%s): %s\n",
                   tessera_result_name(tessera_verification_result(result)),
                   tessera_verification_failed_check(result),
                   tessera_verification_message(result));
            status = 1;
        }
    }
    tessera_verification_free(result);
    tessera_verifier_free(verifier);
    tessera_endorsements_free(extra);
    free(evidence);
    free(policy);
    return status;
}
