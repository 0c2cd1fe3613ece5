/* Every error path of the C API: NULL handles, NULL out-parameters, NULL data with a length,
 * lengths over PTRDIFF_MAX, bad bytes, oversized files, non-UTF-8 strings, _free(NULL), and
 * out-parameter handles set to NULL by a failed call (whatever they held before).
 * Usage: errors */
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define SENTINEL ((void *)0x1)

static int never_calls = 0;

/* An evidence callback that must not be called. */
static int never(void *userdata, const uint8_t *report_data, size_t report_data_len,
                 tessera_evidence_buffer *evidence) {
    (void)userdata;
    (void)report_data;
    (void)report_data_len;
    (void)evidence;
    never_calls++;
    return 1;
}

int main(void) {
    const uint8_t byte = 0x30;
    const char bad_utf8[] = {(char)0xff, (char)0xfe, 0};

    /* _free(NULL) is fine. */
    tessera_endorsements_free(NULL);
    tessera_verifier_builder_free(NULL);
    tessera_verifier_free(NULL);
    tessera_verification_free(NULL);
    tessera_decoded_free(NULL);
    tessera_client_free(NULL);
    tessera_secret_free(NULL);

    /* Constructors: NULL out. */
    CHECK_RC(tessera_endorsements_new(NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_new(NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_new(NULL), TESSERA_RESULT_NULL_POINTER);

    /* Endorsements. */
    tessera_endorsements *e = NULL;
    CHECK_RC(tessera_endorsements_new(&e), TESSERA_RESULT_OK);
    CHECK_RC(tessera_endorsements_add_certificates(NULL, &byte, 1), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_certificates(e, NULL, 10), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_certificates(e, NULL, 0), TESSERA_RESULT_CERTIFICATE_INVALID);
    CHECK_RC(tessera_endorsements_add_certificates(e, &byte, 1), TESSERA_RESULT_CERTIFICATE_INVALID);
    /* A length over PTRDIFF_MAX is refused before the pointer is used. */
    CHECK_RC(tessera_endorsements_add_certificates(e, &byte, SIZE_MAX), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK_RC(tessera_endorsements_add_crls(e, &byte, SIZE_MAX), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK_RC(tessera_endorsements_add_collateral(e, &byte, SIZE_MAX), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK_RC(tessera_endorsements_add_crls(NULL, &byte, 1), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_crls(e, NULL, 3), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_crls(e, &byte, 1), TESSERA_RESULT_CRL_INVALID);
    CHECK_RC(tessera_endorsements_add_collateral(NULL, &byte, 1), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_collateral(e, NULL, 3), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_collateral(e, (const uint8_t *)"{}", 2), TESSERA_RESULT_COLLATERAL_INVALID);
    CHECK_RC(tessera_endorsements_add_file(NULL, "/dev/null"), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_endorsements_add_file(e, NULL), TESSERA_RESULT_NULL_POINTER);
    /* A path need not be UTF-8 (this one does not exist). */
    CHECK_RC(tessera_endorsements_add_file(e, bad_utf8), TESSERA_RESULT_ENDORSEMENT_FILE);
    CHECK_RC(tessera_endorsements_add_file(e, "/dev/null"), TESSERA_RESULT_ENDORSEMENT_FILE);
    /* A FIFO with no writer is refused at once, not waited on. */
    char fifo[] = "/tmp/tessera-errors-fifo-XXXXXX";
    CHECK(mkdtemp(fifo) != NULL);
    char fifo_path[sizeof fifo + 8];
    snprintf(fifo_path, sizeof fifo_path, "%s/f", fifo);
    CHECK(mkfifo(fifo_path, 0600) == 0);
    CHECK_RC(tessera_endorsements_add_file(e, fifo_path), TESSERA_RESULT_ENDORSEMENT_FILE);
    unlink(fifo_path);
    rmdir(fifo);

    /* Builder. */
    tessera_verifier_builder *b = NULL;
    CHECK_RC(tessera_verifier_builder_new(&b), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verifier_builder_add_endorsements(NULL, e), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_add_endorsements(b, NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(NULL, "/tmp"), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(b, NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(b, bad_utf8), TESSERA_RESULT_ENDORSEMENT_FILE);
    /* A file over 16 MiB (sparse) is TOO_LARGE in a directory as on its own, not unreadable. */
    char big_dir[] = "/tmp/tessera-errors-big-XXXXXX";
    CHECK(mkdtemp(big_dir) != NULL);
    char big_path[sizeof big_dir + 8];
    snprintf(big_path, sizeof big_path, "%s/big.pem", big_dir);
    FILE *big = fopen(big_path, "wb");
    CHECK(big != NULL);
    if (big) {
        CHECK(ftruncate(fileno(big), (16 << 20) + 1) == 0);
        fclose(big);
    }
    CHECK_RC(tessera_endorsements_add_file(e, big_path), TESSERA_RESULT_TOO_LARGE);
    CHECK_RC(tessera_verifier_builder_add_endorsement_dir(b, big_dir), TESSERA_RESULT_TOO_LARGE);
    unlink(big_path);
    rmdir(big_dir);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(NULL, &byte, 1), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, NULL, 5), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, NULL, 0), TESSERA_RESULT_CERTIFICATE_INVALID);
    CHECK_RC(tessera_verifier_builder_allow_missing_crls(NULL, true), TESSERA_RESULT_NULL_POINTER);
    tessera_verifier *v = SENTINEL;
    CHECK_RC(tessera_verifier_builder_build(NULL, &v), TESSERA_RESULT_NULL_POINTER);
    CHECK(v == NULL); /* set to NULL first, whatever the failure */
    CHECK_RC(tessera_verifier_builder_build(b, NULL), TESSERA_RESULT_NULL_POINTER);
    v = NULL;
    CHECK_RC(tessera_verifier_builder_build(b, &v), TESSERA_RESULT_OK);
    CHECK(v != NULL);

    /* Verify: every failed call sets the handle to NULL (which reads REJECTED). */
    tessera_verification *r = SENTINEL;
    CHECK_RC(tessera_verifier_verify(NULL, &byte, 1, NULL, 0, NULL, 0, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    r = SENTINEL;
    CHECK_RC(tessera_verifier_verify(v, NULL, 1184, NULL, 0, NULL, 0, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    r = SENTINEL;
    CHECK_RC(tessera_verifier_verify(v, &byte, 1, NULL, 0, (const uint8_t *)bad_utf8, 2, &r), TESSERA_RESULT_INVALID_UTF8);
    CHECK(r == NULL);
    r = SENTINEL;
    /* A NULL policy with a length is a call error, never "no policy"; a policy length over
     * PTRDIFF_MAX is refused before the pointer is used. */
    CHECK_RC(tessera_verifier_verify(v, &byte, 1, NULL, 0, NULL, 1, &r), TESSERA_RESULT_NULL_POINTER);
    CHECK(r == NULL);
    r = SENTINEL;
    CHECK_RC(tessera_verifier_verify(v, &byte, 1, NULL, 0, &byte, SIZE_MAX, &r), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(r == NULL);
    r = SENTINEL;
    CHECK_RC(tessera_verifier_verify(v, &byte, SIZE_MAX, NULL, 0, NULL, 0, &r), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
    CHECK_RC(tessera_verifier_verify(v, &byte, 1, NULL, 0, NULL, 0, NULL), TESSERA_RESULT_NULL_POINTER);
    /* (NULL, 0) is empty evidence: not evidence, an outcome rather than a call error. */
    r = NULL;
    CHECK_RC(tessera_verifier_verify(v, NULL, 0, NULL, 0, NULL, 0, &r), TESSERA_RESULT_OK);
    CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_EVIDENCE_UNRECOGNIZED);
    tessera_verification_free(r);
    /* Wrong sizes: 1183 and 1185 bytes of a zero "report". */
    unsigned char zeros[1185] = {0};
    for (size_t len = 1183; len <= 1185; len++) {
        r = NULL;
        CHECK_RC(tessera_verifier_verify(v, zeros, len, NULL, 0, NULL, 0, &r), TESSERA_RESULT_OK);
        CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_REJECTED);
        CHECK(tessera_verification_result(r) != TESSERA_RESULT_OK);
        tessera_verification_free(r);
    }

    /* Result accessors on NULL: a NULL handle is never a yes. */
    CHECK(tessera_verification_verdict(NULL) == TESSERA_VERDICT_REJECTED);
    CHECK(strcmp(tessera_result_name(TESSERA_RESULT_NOT_APPRAISED), "TESSERA_RESULT_NOT_APPRAISED") == 0);
    CHECK(TESSERA_VERDICT_REJECTED == 0 && TESSERA_VERDICT_ACCEPTED == 1 &&
          TESSERA_VERDICT_VERIFIED_UNAPPRAISED == 2);
    CHECK_RC(tessera_verification_result(NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK(tessera_verification_tee(NULL) == TESSERA_TEE_UNKNOWN);
    CHECK(tessera_verification_failed_check(NULL) == NULL);
    CHECK(tessera_verification_message(NULL) == NULL);
    CHECK(tessera_verification_tcb_status(NULL) == NULL);
    CHECK(tessera_verification_claims_json(NULL) == NULL);
    CHECK(tessera_verification_verification_json(NULL) == NULL);
    CHECK(tessera_verification_appraisal_json(NULL) == NULL);

    /* Decode. */
    tessera_decoded *d = SENTINEL;
    CHECK_RC(tessera_decode(NULL, 4, &d), TESSERA_RESULT_NULL_POINTER);
    CHECK(d == NULL);
    d = SENTINEL;
    CHECK_RC(tessera_decode(&byte, SIZE_MAX, &d), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(d == NULL);
    CHECK_RC(tessera_decode(&byte, 1, NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_decoded_result(NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK(tessera_decoded_tee(NULL) == TESSERA_TEE_UNKNOWN);
    CHECK(tessera_decoded_json(NULL) == NULL);
    CHECK(tessera_decoded_message(NULL) == NULL);

    /* Client. */
    tessera_client *c = SENTINEL;
    CHECK_RC(tessera_client_new(NULL, NULL, 0, 1, &c), TESSERA_RESULT_NULL_POINTER);
    CHECK(c == NULL);
    c = SENTINEL;
    CHECK_RC(tessera_client_new("http://127.0.0.1:1", NULL, 0, 1, NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK_RC(tessera_client_new(bad_utf8, NULL, 0, 1, &c), TESSERA_RESULT_INVALID_UTF8);
    CHECK_RC(tessera_client_new("not a url", NULL, 0, 1, &c), TESSERA_RESULT_CLIENT_CONFIG);
    CHECK_RC(tessera_client_new("http://example.com", NULL, 0, 1, &c), TESSERA_RESULT_CLIENT_CONFIG);
    CHECK_RC(tessera_client_new("https://example.com", (const uint8_t *)"junk", 4, 1, &c), TESSERA_RESULT_CLIENT_CONFIG);
    CHECK_RC(tessera_client_new("https://example.com", NULL, 9, 1, &c), TESSERA_RESULT_NULL_POINTER);
    /* A pin that is empty (an empty file read) is refused, never taken as Mozilla's roots. */
    CHECK_RC(tessera_client_new("https://example.com", (const uint8_t *)"", 0, 1, &c), TESSERA_RESULT_CLIENT_CONFIG);
    /* A bounded number of handshake attempts. */
    CHECK_RC(tessera_client_new("https://example.com", NULL, 0, 101, &c), TESSERA_RESULT_INVALID_ARGUMENT);
    CHECK(c == NULL);
    c = NULL;
    CHECK_RC(tessera_client_new("http://127.0.0.1:1", NULL, 0, 1, &c), TESSERA_RESULT_OK);
    tessera_secret *s = SENTINEL;
    char msg[256] = "untouched";
    /* An argument error is said in the message buffer too, naming the argument. */
    CHECK_RC(tessera_client_get_secret(NULL, "snp", "a/b/c", NULL, NULL, NULL, msg, sizeof msg, &s), TESSERA_RESULT_NULL_POINTER);
    CHECK(strstr(msg, "argument client") != NULL);
    CHECK_RC(tessera_client_get_secret(c, NULL, "a/b/c", NULL, NULL, NULL, msg, sizeof msg, &s), TESSERA_RESULT_NULL_POINTER);
    CHECK(strstr(msg, "argument tee") != NULL);
    CHECK_RC(tessera_client_get_secret(c, "snp", NULL, NULL, NULL, NULL, msg, sizeof msg, &s), TESSERA_RESULT_NULL_POINTER);
    CHECK(strstr(msg, "argument resource") != NULL);
    CHECK_RC(tessera_client_get_secret(c, "snp", "a/b/c", NULL, NULL, NULL, msg, sizeof msg, &s), TESSERA_RESULT_NULL_POINTER);
    CHECK(strstr(msg, "argument callback") != NULL);
    CHECK_RC(tessera_client_get_secret(c, "snp", "a/b/c", NULL, NULL, NULL, NULL, 0, &s), TESSERA_RESULT_NULL_POINTER);
    CHECK(s == NULL);
    /* out NULL, every other argument usable: refused before anything is sent or called. */
    CHECK_RC(tessera_client_get_secret(c, "snp", "a/b/c", NULL, never, NULL, msg, sizeof msg, NULL), TESSERA_RESULT_NULL_POINTER);
    CHECK(strstr(msg, "argument out") != NULL);
    CHECK(never_calls == 0);
    CHECK(tessera_secret_data(NULL) == NULL);
    CHECK(tessera_secret_len(NULL) == 0);
    CHECK_RC(tessera_evidence_buffer_set(NULL, &byte, 1), TESSERA_RESULT_NULL_POINTER);
    /* Over 16 MiB needs the callback's buffer: ffi/tests/secret.c and ffi/src/client.rs. */

    tessera_client_free(c);
    tessera_verifier_free(v);
    tessera_verifier_builder_free(b);
    tessera_endorsements_free(e);
    return finish("errors");
}
