/* Several threads share one verifier: each verifies the real sample under a policy (accept),
 * with no policy (verified, not appraised) and a corrupted copy (reject) many times.
 * Usage: threads <examples dir> */
#include <pthread.h>

#include "common.h"

#define THREADS 8
#define ROUNDS 6

struct job {
    const tessera_verifier *verifier;
    const unsigned char *report;
    size_t len;
    const uint8_t *policy; /* the policy file's bytes, as read */
    size_t policy_len;
    int failures;
};

static void *run(void *arg) {
    struct job *job = arg;
    unsigned char bad[1184];
    memcpy(bad, job->report, sizeof bad);
    bad[0x2A0] ^= 0x80;
    for (int i = 0; i < ROUNDS; i++) {
        tessera_verification *r = NULL;
        if (tessera_verifier_verify(job->verifier, job->report, job->len, NULL, SAMPLE_AT, job->policy, job->policy_len, &r) != TESSERA_RESULT_OK ||
            tessera_verification_verdict(r) != TESSERA_VERDICT_ACCEPTED)
            job->failures++;
        tessera_verification_free(r);
        r = NULL;
        if (tessera_verifier_verify(job->verifier, job->report, job->len, NULL, SAMPLE_AT, NULL, 0, &r) != TESSERA_RESULT_OK ||
            tessera_verification_verdict(r) != TESSERA_VERDICT_VERIFIED_UNAPPRAISED)
            job->failures++;
        tessera_verification_free(r);
        r = NULL;
        if (tessera_verifier_verify(job->verifier, bad, sizeof bad, NULL, SAMPLE_AT, NULL, 0, &r) != TESSERA_RESULT_OK ||
            tessera_verification_result(r) != TESSERA_RESULT_VERIFY_SNP)
            job->failures++;
        tessera_verification_free(r);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <examples dir>\n", argv[0]);
        return 2;
    }
    char sample[4096], policies[4096];
    snprintf(sample, sizeof sample, "%s/evidence/snp-milan", argv[1]);
    snprintf(policies, sizeof policies, "%s/policies", argv[1]);
    size_t report_len, vcek_len, pol_len;
    unsigned char *report = read_file(sample, "report.bin", &report_len);
    unsigned char *vcek = read_file(sample, "vcek.der", &vcek_len);
    unsigned char *dev = read_file(policies, "development.toml", &pol_len);
    CHECK(report_len == 1184);

    tessera_endorsements *e = NULL;
    tessera_verifier_builder *b = NULL;
    tessera_verifier *v = NULL;
    CHECK_RC(tessera_endorsements_new(&e), TESSERA_RESULT_OK);
    CHECK_RC(tessera_endorsements_add_certificates(e, vcek, vcek_len), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_new(&b), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_add_endorsements(b, e), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_build(b, &v), TESSERA_RESULT_OK);

    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){v, report, report_len, dev, pol_len, 0};
        CHECK(pthread_create(&threads[i], NULL, run, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(jobs[i].failures == 0);
    }

    tessera_verifier_free(v);
    tessera_verifier_builder_free(b);
    tessera_endorsements_free(e);
    free(report);
    free(vcek);
    free(dev);
    return finish("threads");
}
