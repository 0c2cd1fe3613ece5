/* Verify a simulated TDX quote through the C API: with its collateral and the simulator's root
 * (a dangerous test root) it verifies, and is accepted under a policy; without collateral it is
 * rejected for missing collateral; under the vendors' roots alone it is rejected.
 * The files come from the test-tdx support program (ffi/tests/support/tdx.rs).
 * Usage: tdx <test-tdx output dir> <examples dir> */
#include "common.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <test-tdx output dir> <examples dir>\n", argv[0]);
        return 2;
    }
    char policies[4096];
    snprintf(policies, sizeof policies, "%s/policies", argv[2]);
    size_t quote_len, coll_len, root_len, at_len, pol_len;
    unsigned char *quote = read_file(argv[1], "quote.bin", &quote_len);
    unsigned char *coll = read_file(argv[1], "collateral.json", &coll_len);
    unsigned char *root = read_file(argv[1], "root.der", &root_len);
    unsigned char *at_text = read_file(argv[1], "at.txt", &at_len);
    unsigned char *dev = read_file(policies, "development.toml", &pol_len);
    char *at_str = dup_text(at_text, at_len);
    int64_t at = strtoll(at_str, NULL, 10);
    CHECK(at > 0);

    /* The simulator's root trusted; the collateral for this call only. */
    tessera_verifier_builder *b = NULL;
    tessera_verifier *v = NULL;
    CHECK_RC(tessera_verifier_builder_new(&b), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, root, root_len), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_build(b, &v), TESSERA_RESULT_OK);
    tessera_endorsements *e = NULL;
    CHECK_RC(tessera_endorsements_new(&e), TESSERA_RESULT_OK);
    CHECK_RC(tessera_endorsements_add_collateral(e, coll, coll_len), TESSERA_RESULT_OK);

    /* With collateral, no policy: verified, not appraised (not accepted). */
    tessera_verification *r = NULL;
    CHECK_RC(tessera_verifier_verify(v, quote, quote_len, e, at, NULL, 0, &r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_VERIFIED_UNAPPRAISED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_NOT_APPRAISED);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_TDX);
    const char *tcb = tessera_verification_tcb_status(r);
    CHECK(tcb != NULL && strcmp(tcb, "UpToDate") == 0);
    const char *ver = tessera_verification_verification_json(r);
    CHECK(ver != NULL && strstr(ver, "\"dangerous_test_root\":true") != NULL);
    CHECK(tessera_verification_claims_json(r) != NULL);
    tessera_verification_free(r);

    /* With collateral and a policy that passes: accepted. */
    r = NULL;
    CHECK_RC(tessera_verifier_verify(v, quote, quote_len, e, at, dev, pol_len, &r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_ACCEPTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_OK);
    tessera_verification_free(r);

    /* No collateral held for the quote's platform: rejected, naming it. */
    r = NULL;
    CHECK_RC(tessera_verifier_verify(v, quote, quote_len, NULL, at, dev, pol_len, &r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_MISSING_COLLATERAL);
    CHECK(tessera_verification_tee(r) == TESSERA_TEE_TDX);
    CHECK(tessera_verification_message(r) != NULL);
    CHECK(tessera_verification_claims_json(r) == NULL);
    tessera_verification_free(r);

    /* The vendors' roots alone: the simulator's PCK chain does not verify. */
    tessera_verifier *vendor = NULL;
    CHECK_RC(tessera_verifier_new(&vendor), TESSERA_RESULT_OK);
    r = NULL;
    CHECK_RC(tessera_verifier_verify(vendor, quote, quote_len, e, at, dev, pol_len, &r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_TDX);
    tessera_verification_free(r);

    /* A flipped byte of the quote's body (signed): rejected. */
    unsigned char *bad = malloc(quote_len);
    memcpy(bad, quote, quote_len);
    bad[200] ^= 0x01;
    r = NULL;
    CHECK_RC(tessera_verifier_verify(v, bad, quote_len, e, at, dev, pol_len, &r), TESSERA_RESULT_OK);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_TDX);
    tessera_verification_free(r);

    tessera_verifier_free(vendor);
    tessera_endorsements_free(e);
    tessera_verifier_free(v);
    tessera_verifier_builder_free(b);
    free(bad);
    free(quote);
    free(coll);
    free(root);
    free(at_text);
    free(at_str);
    free(dev);
    return finish("tdx");
}
