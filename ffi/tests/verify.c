/* Verify the real SEV-SNP sample through the C API: verified with no policy (never accepted),
 * accepted under a policy that passes, reject (a flipped signature byte, a missing VCEK, a time
 * outside the VCEK's validity), a policy that rejects, an invalid and an empty policy, a
 * policy with a NUL byte (invalid, never cut short), endorsements from files, a directory and
 * per call, a failed call leaving a reused handle NULL, decode. Usage: verify <examples dir> */
#include "common.h"

static const char *FAILING_POLICY =
    "version = 1\n"
    "id = \"c-test-wrong-measurement\"\n"
    "[snp]\n"
    "measurement = [\"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\"]\n"
    "debug = \"any\"\nmin_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\n"
    "revocation = \"if-given\"\npermit_provisional_firmware = true\n"
    "[tdx]\nmr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"any\"\n[tdx.tcb]\naccepted_statuses = \"any\"\n"
    "[sgx]\nmr_enclave = \"any\"\nmr_signer = \"any\"\ndebug = \"any\"\n"
    "[sgx.tcb]\naccepted_statuses = \"any\"\n";

/* A policy that accepts the sample (no guest policy rule)... */
#define LENIENT_POLICY_TEXT                                                              \
    "version = 1\nid = \"c-test-nul\"\n[snp]\nmeasurement = \"any\"\ndebug = \"any\"\n"  \
    "min_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\nrevocation = \"if-given\"\n"   \
    "permit_provisional_firmware = true\n"
static const char LENIENT_POLICY[] = LENIENT_POLICY_TEXT;
/* ...and a rule that rejects it (its guest policy allows SMT). */
#define STRICT_RULE "[snp.guest_policy]\nsmt = \"must-not\"\n"

/* Verify with a policy of `policy_len` bytes (NULL, 0: no policy); the call must work. */
static tessera_verification *verify_bytes(const tessera_verifier *v, const unsigned char *ev,
                                          size_t len, const tessera_endorsements *extra,
                                          int64_t at, const char *policy, size_t policy_len) {
    tessera_verification *out = NULL;
    CHECK_RC(tessera_verifier_verify(v, ev, len, extra, at, (const uint8_t *)policy, policy_len, &out),
             TESSERA_RESULT_OK);
    CHECK(out != NULL);
    return out;
}

/* Verify with a policy given as a C string (NULL: no policy). */
static tessera_verification *verify(const tessera_verifier *v, const unsigned char *ev, size_t len,
                                    const tessera_endorsements *extra, int64_t at,
                                    const char *policy) {
    return verify_bytes(v, ev, len, extra, at, policy, policy ? strlen(policy) : 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <examples dir>\n", argv[0]);
        return 2;
    }
    char sample[4096], policies[4096];
    snprintf(sample, sizeof sample, "%s/evidence/snp-milan", argv[1]);
    snprintf(policies, sizeof policies, "%s/policies", argv[1]);

    const char *version = tessera_version();
    CHECK(version != NULL && strlen(version) > 0);
    CHECK(strcmp(tessera_result_name(TESSERA_RESULT_POLICY_REJECTED), "TESSERA_RESULT_POLICY_REJECTED") == 0);
    CHECK(tessera_result_name(12345) == NULL);

    size_t report_len, vcek_len, chain_len, pol_len;
    unsigned char *report = read_file(sample, "report.bin", &report_len);
    unsigned char *vcek = read_file(sample, "vcek.der", &vcek_len);
    unsigned char *chain = read_file(sample, "cert_chain.pem", &chain_len);
    unsigned char *dev = read_file(policies, "development.toml", &pol_len);
    /* The policy is given as the file's bytes, as read: no NUL terminator needed. */
    const char *dev_policy = (const char *)dev;
    CHECK(report_len == 1184);

    /* A verifier holding the VCEK, built from endorsements. */
    tessera_endorsements *e = NULL;
    CHECK_RC(tessera_endorsements_new(&e), TESSERA_RESULT_OK);
    CHECK_RC(tessera_endorsements_add_certificates(e, vcek, vcek_len), TESSERA_RESULT_OK);
    CHECK_RC(tessera_endorsements_add_certificates(e, chain, chain_len), TESSERA_RESULT_OK);
    tessera_verifier_builder *b = NULL;
    CHECK_RC(tessera_verifier_builder_new(&b), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_add_endorsements(b, e), TESSERA_RESULT_OK);
    tessera_verifier *v = NULL;
    CHECK_RC(tessera_verifier_builder_build(b, &v), TESSERA_RESULT_OK);

    /* No policy (NULL): verified, but not appraised, so never ACCEPTED. */
    tessera_verification *r = verify(v, report, report_len, NULL, SAMPLE_AT, NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_VERIFIED_UNAPPRAISED);
    CHECK(tessera_verification_verdict(r) != TESSERA_VERDICT_ACCEPTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_NOT_APPRAISED);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_SNP);
    CHECK(tessera_verification_failed_check(r) == NULL);
    const char *message = tessera_verification_message(r);
    CHECK(message != NULL && strstr(message, "no policy") != NULL);
    CHECK(tessera_verification_tcb_status(r) == NULL); /* SEV-SNP has no Intel TCB status */
    CHECK(tessera_verification_appraisal_json(r) == NULL);
    const char *claims = tessera_verification_claims_json(r);
    CHECK(claims != NULL && strstr(claims, "\"report_data\":\"0102030405") != NULL);
    const char *ver = tessera_verification_verification_json(r);
    CHECK(ver != NULL && strstr(ver, "\"dangerous_test_root\":false") != NULL);
    tessera_verification_free(r);

    /* Accept under a policy that passes: the appraisal is there. */
    r = verify_bytes(v, report, report_len, NULL, SAMPLE_AT, dev_policy, pol_len);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_ACCEPTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_failed_check(r) == NULL);
    CHECK(tessera_verification_message(r) == NULL);
    const char *appraisal = tessera_verification_appraisal_json(r);
    CHECK(appraisal != NULL && strstr(appraisal, "\"verdict\":\"pass\"") != NULL);

    /* A failed call on a reused handle variable: *out is set to NULL first, so the variable
     * reads REJECTED, never the previous ACCEPTED. */
    tessera_verification *accepted = r;
    CHECK_RC(tessera_verifier_verify(v, NULL, report_len, NULL, SAMPLE_AT, dev, pol_len, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    r = accepted;
    CHECK_RC(tessera_verifier_verify(NULL, report, report_len, NULL, SAMPLE_AT, dev, pol_len, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    r = accepted;
    /* A length no buffer can have (over PTRDIFF_MAX): refused before the pointer is read. */
    CHECK_RC(tessera_verifier_verify(v, report, SIZE_MAX, NULL, SAMPLE_AT, dev, pol_len, &r), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    r = accepted;
    /* A NULL policy with a length: a call error, never "no policy". */
    CHECK_RC(tessera_verifier_verify(v, report, report_len, NULL, SAMPLE_AT, NULL, pol_len, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    r = accepted;
    /* A policy length no buffer can have. */
    CHECK_RC(tessera_verifier_verify(v, report, report_len, NULL, SAMPLE_AT, dev, SIZE_MAX, &r), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(r == NULL);
    tessera_verification_free(accepted);

    /* A policy over 1 MiB: a call error, the handle NULL. */
    size_t huge_len = (1u << 20) + 1;
    uint8_t *huge = malloc(huge_len);
    memset(huge, '#', huge_len);
    r = (tessera_verification *)0x1;
    CHECK_RC(tessera_verifier_verify(v, report, report_len, NULL, SAMPLE_AT, huge, huge_len, &r), TESSERA_RESULT_TOO_LARGE);
    CHECK(r == NULL);
    free(huge);

    /* Policy failure: verified, but the measurement is not the policy's. */
    r = verify(v, report, report_len, NULL, SAMPLE_AT, FAILING_POLICY);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_REJECTED);
    CHECK(strcmp(tessera_verification_failed_check(r), "policy") == 0);
    CHECK(strstr(tessera_verification_message(r), "snp.measurement") != NULL);
    CHECK(tessera_verification_claims_json(r) != NULL);
    appraisal = tessera_verification_appraisal_json(r);
    CHECK(appraisal != NULL && strstr(appraisal, "\"verdict\":\"fail\"") != NULL);
    tessera_verification_free(r);

    /* An invalid policy: read before the evidence, so the (readable) evidence is not read and
     * the TEE is UNKNOWN. */
    r = verify(v, report, report_len, NULL, SAMPLE_AT, "version = \"not a number\"");
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_INVALID);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK(tessera_verification_message(r) != NULL);
    CHECK(strcmp(tessera_verification_failed_check(r), "policy") == 0);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_UNKNOWN);
    tessera_verification_free(r);

    /* An empty policy (an empty file read) is not "no policy": invalid, rejected. */
    r = verify(v, report, report_len, NULL, SAMPLE_AT, "");
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_INVALID);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK(tessera_verification_claims_json(r) == NULL);
    tessera_verification_free(r);

    /* A policy with a NUL byte before a rule that rejects (a file partly zeroed): the whole
     * text is read, so it is an invalid policy, never its shorter, weaker first part. */
    r = verify(v, report, report_len, NULL, SAMPLE_AT, LENIENT_POLICY);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_OK); /* the first part accepts */
    tessera_verification_free(r);
    static const char whole[] = LENIENT_POLICY_TEXT "\n" STRICT_RULE;
    r = verify_bytes(v, report, report_len, NULL, SAMPLE_AT, whole, sizeof whole - 1);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_REJECTED);
    tessera_verification_free(r);
    static const char cut[] = LENIENT_POLICY_TEXT "\0\n" STRICT_RULE;
    r = verify_bytes(v, report, report_len, NULL, SAMPLE_AT, cut, sizeof cut - 1);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_INVALID);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK(strcmp(tessera_verification_failed_check(r), "policy") == 0);
    CHECK(tessera_verification_claims_json(r) == NULL);
    tessera_verification_free(r);
    /* A C string's terminator counted in the length is a NUL in the text too. */
    r = verify_bytes(v, report, report_len, NULL, SAMPLE_AT, LENIENT_POLICY, sizeof LENIENT_POLICY);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_POLICY_INVALID);
    tessera_verification_free(r);

    /* Reject: one flipped byte of the signature. */
    unsigned char *bad = malloc(report_len);
    memcpy(bad, report, report_len);
    bad[0x2A0] ^= 0x01;
    r = verify(v, bad, report_len, NULL, SAMPLE_AT, NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_SNP);
    CHECK(strstr(tessera_verification_failed_check(r), "signature") != NULL);
    CHECK(tessera_verification_claims_json(r) == NULL);
    tessera_verification_free(r);

    /* Reject: a changed REPORT_DATA byte (signed field). */
    memcpy(bad, report, report_len);
    bad[0x50] ^= 0xFF;
    r = verify(v, bad, report_len, NULL, SAMPLE_AT, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
    tessera_verification_free(r);

    /* Reject: long after the VCEK's validity (2040). */
    r = verify(v, report, report_len, NULL, 2208988800LL, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
    CHECK(tessera_verification_message(r) != NULL);
    tessera_verification_free(r);

    /* Reject: bytes that are no evidence; truncated evidence. */
    r = verify(v, (const unsigned char *)"hello", 5, NULL, SAMPLE_AT, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_EVIDENCE_UNRECOGNIZED);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_UNKNOWN);
    CHECK(strcmp(tessera_verification_failed_check(r), "parse") == 0);
    tessera_verification_free(r);
    r = verify(v, report, 793, NULL, SAMPLE_AT, NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK(tessera_verification_result(r) / 100 == 2);
    tessera_verification_free(r);
    r = verify(v, (const unsigned char *)"{\"report\": 1}", 13, NULL, SAMPLE_AT, NULL);
    CHECK(tessera_verification_result(r) / 100 == 2);
    tessera_verification_free(r);

    /* The embedded-roots-only verifier: no VCEK, rejected; the VCEK given for this one call:
     * accepted; the next call without it is rejected again. */
    tessera_verifier *bare = NULL;
    CHECK_RC(tessera_verifier_new(&bare), TESSERA_RESULT_OK);
    r = verify(bare, report, report_len, NULL, SAMPLE_AT, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
    tessera_verification_free(r);
    r = verify_bytes(bare, report, report_len, e, SAMPLE_AT, dev_policy, pol_len);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_ACCEPTED);
    tessera_verification_free(r);
    r = verify(bare, report, report_len, NULL, SAMPLE_AT, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
    tessera_verification_free(r);

    /* Endorsements from a file, and from a directory. */
    char path[8192];
    tessera_endorsements *from_file = NULL;
    CHECK_RC(tessera_endorsements_new(&from_file), TESSERA_RESULT_OK);
    snprintf(path, sizeof path, "%s/vcek.der", sample);
    CHECK_RC(tessera_endorsements_add_file(from_file, path), TESSERA_RESULT_OK);
    snprintf(path, sizeof path, "%s/README.md", sample);
    CHECK_RC(tessera_endorsements_add_file(from_file, path), TESSERA_RESULT_ENDORSEMENT_FILE);
    snprintf(path, sizeof path, "%s/no-such-file", sample);
    CHECK_RC(tessera_endorsements_add_file(from_file, path), TESSERA_RESULT_ENDORSEMENT_FILE);
    r = verify(bare, report, report_len, from_file, SAMPLE_AT, NULL);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_NOT_APPRAISED);
    tessera_verification_free(r);
    tessera_endorsements_free(from_file);

    tessera_verifier_builder *db = NULL;
    CHECK_RC(tessera_verifier_builder_new(&db), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(db, sample), TESSERA_RESULT_OK);
    snprintf(path, sizeof path, "%s/no-such-dir", sample);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(db, path), TESSERA_RESULT_ENDORSEMENT_FILE);
    CHECK_RC(tessera_verifier_builder_allow_missing_crls(db, true), TESSERA_RESULT_OK);
    tessera_verifier *dv = NULL;
    CHECK_RC(tessera_verifier_builder_build(db, &dv), TESSERA_RESULT_OK);
    r = verify_bytes(dv, report, report_len, NULL, SAMPLE_AT, dev_policy, pol_len);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_OK);
    tessera_verification_free(r);
    tessera_verifier_free(dv);
    tessera_verifier_builder_free(db);

    /* A test root must be one self-issued certificate: the VCEK is not; the ARK is. */
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, vcek, vcek_len), TESSERA_RESULT_TEST_ROOT_INVALID);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, chain, chain_len), TESSERA_RESULT_CERTIFICATE_INVALID);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, (const uint8_t *)"x", 1), TESSERA_RESULT_CERTIFICATE_INVALID);

    /* Oversized certificates and CRLs (over 4 MiB): TOO_LARGE, not unreadable. */
    size_t big_len = (4u << 20) + 1;
    unsigned char *big = calloc(big_len, 1);
    CHECK_RC(tessera_endorsements_add_certificates(e, big, big_len), TESSERA_RESULT_TOO_LARGE);
    CHECK_RC(tessera_endorsements_add_crls(e, big, big_len), TESSERA_RESULT_TOO_LARGE);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, big, big_len), TESSERA_RESULT_TOO_LARGE);
    free(big);
    /* A length over PTRDIFF_MAX: an invalid argument, checked before the pointer is used. */
    CHECK_RC(tessera_endorsements_add_certificates(e, vcek, SIZE_MAX), TESSERA_RESULT_INVALID_ARGUMENT);

    /* Decode without verifying: the JSON of `tessera show --json`. */
    tessera_decoded *d = NULL;
    CHECK_RC(tessera_decode(report, report_len, &d), TESSERA_RESULT_OK);
    CHECK_RC(tessera_decoded_result(d), TESSERA_RESULT_OK);
    CHECK(tessera_decoded_tee(d) == TESSERA_TEE_SNP);
    const char *json = tessera_decoded_json(d);
    CHECK(json != NULL && strstr(json, "\"verified\":false") != NULL);
    CHECK(json != NULL && strstr(json, "\"evidence_kind\":\"report\"") != NULL);
    CHECK(tessera_decoded_message(d) == NULL);
    /* A failed decode on the reused variable leaves it NULL. */
    tessera_decoded *decoded = d;
    CHECK_RC(tessera_decode(NULL, 4, &d), TESSERA_RESULT_NULL_POINTER);
    CHECK(d == NULL);
    CHECK_RC(tessera_decoded_result(d), TESSERA_RESULT_NULL_POINTER);
    tessera_decoded_free(decoded);
    CHECK_RC(tessera_decode((const uint8_t *)"not evidence", 12, &d), TESSERA_RESULT_OK);
    CHECK_RC(tessera_decoded_result(d), TESSERA_RESULT_EVIDENCE_UNRECOGNIZED);
    CHECK(tessera_decoded_json(d) == NULL);
    CHECK(tessera_decoded_tee(d) == TESSERA_TEE_UNKNOWN);
    CHECK(strstr(tessera_decoded_message(d), "tried") != NULL);
    tessera_decoded_free(d);

    tessera_verifier_free(bare);
    tessera_verifier_free(v);
    tessera_verifier_builder_free(b);
    tessera_endorsements_free(e);
    free(bad);
    free(report);
    free(vcek);
    free(chain);
    free(dev);
    return finish("verify");
}
