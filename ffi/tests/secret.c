/* Fetch a secret from a real broker on loopback through the C API. The broker and the
 * simulated SEV-SNP guest that signs evidence are the test-broker support program
 * (ffi/tests/support/broker.rs), spoken to over pipes.
 * Usage: secret <path of the test-broker program> */
#include <signal.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

struct guest {
    FILE *to;
    FILE *from;
    const char *mode; /* "json" or "raw" */
    int calls;
    int fail_with;  /* non-zero: the callback fails with this */
    int set_nothing;
};

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte written as two hex digits at p (a test failure for anything else). */
static unsigned char hexbyte(const char *p) {
    int hi = hexval(p[0]), lo = hexval(p[1]);
    CHECK(hi >= 0 && lo >= 0);
    return (unsigned char)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
}

/* Banner fields: each as long as a banner line can be. */
#define FIELD 8192

static int evidence_cb(void *userdata, const uint8_t *report_data, size_t report_data_len,
                       tessera_evidence_buffer *evidence) {
    struct guest *g = userdata;
    g->calls++;
    CHECK(report_data_len == 64);
    if (g->fail_with) return g->fail_with;
    if (g->set_nothing) return 0;
    CHECK_RC(tessera_evidence_buffer_set(evidence, NULL, 5), TESSERA_RESULT_NULL_POINTER);
    if (g->calls == 1) {
        /* Over 16 MiB: TOO_LARGE (the size is checked before the bytes are read). */
        size_t big_len = (16u << 20) + 1;
        unsigned char *big = calloc(big_len, 1);
        CHECK_RC(tessera_evidence_buffer_set(evidence, big, big_len), TESSERA_RESULT_TOO_LARGE);
        free(big);
        CHECK_RC(tessera_evidence_buffer_set(evidence, report_data, SIZE_MAX), TESSERA_RESULT_TOO_LARGE);
    }
    fprintf(g->to, "%s ", g->mode);
    for (size_t i = 0; i < report_data_len; i++) fprintf(g->to, "%02x", report_data[i]);
    fprintf(g->to, "\n");
    fflush(g->to);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, g->from);
    if (n <= 1) {
        free(line);
        return 9;
    }
    if (line[n - 1] == '\n') line[--n] = 0;
    tessera_result rc;
    if (strcmp(g->mode, "raw") == 0) {
        size_t len = (size_t)n / 2;
        unsigned char *bytes = malloc(len);
        for (size_t i = 0; i < len; i++)
            bytes[i] = hexbyte(line + 2 * i);
        rc = tessera_evidence_buffer_set(evidence, bytes, len);
        free(bytes);
    } else {
        rc = tessera_evidence_buffer_set(evidence, (const uint8_t *)line, (size_t)n);
    }
    free(line);
    return rc == TESSERA_RESULT_OK ? 0 : 8;
}

/* Read "key value" lines until "ready". */
static void read_banner(FILE *from, char *url, char *resource, char *denied, char *secret_hex,
                        char *root_hex) {
    /* Each field is FIELD bytes, as long as a line: every copy fits. */
    char line[FIELD];
    while (fgets(line, sizeof line, from)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "ready") == 0) return;
        if (!strncmp(line, "url ", 4)) snprintf(url, FIELD, "%s", line + 4);
        if (!strncmp(line, "resource ", 9)) snprintf(resource, FIELD, "%s", line + 9);
        if (!strncmp(line, "denied ", 7)) snprintf(denied, FIELD, "%s", line + 7);
        if (!strncmp(line, "secret ", 7)) snprintf(secret_hex, FIELD, "%s", line + 7);
        if (!strncmp(line, "root ", 5)) snprintf(root_hex, FIELD, "%s", line + 5);
    }
    fprintf(stderr, "the test broker did not start\n");
    exit(2);
}

static tessera_result fetch(const tessera_client *c, const char *resource, struct guest *g,
                            tessera_secret **out, char *msg, size_t msg_len) {
    return tessera_client_get_secret(c, "snp", resource, NULL, evidence_cb, g, msg, msg_len, out);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <test-broker program>\n", argv[0]);
        return 2;
    }
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) return 2;
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[1]);
        close(from_child[0]);
        execl(argv[1], argv[1], (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    struct guest g = {fdopen(to_child[1], "w"), fdopen(from_child[0], "r"), "json", 0, 0, 0};

    static char url[FIELD], resource[FIELD], denied[FIELD], secret_hex[FIELD], root_hex[FIELD];
    read_banner(g.from, url, resource, denied, secret_hex, root_hex);

    /* The simulator's evidence verifies only under its root, added as a dangerous test root,
     * and the verification says so. */
    {
        size_t root_len = strlen(root_hex) / 2;
        unsigned char *root = malloc(root_len);
        for (size_t i = 0; i < root_len; i++)
            root[i] = hexbyte(root_hex + 2 * i);
        uint8_t rd[64];
        for (int i = 0; i < 64; i++) rd[i] = (uint8_t)i;
        fprintf(g.to, "json ");
        for (int i = 0; i < 64; i++) fprintf(g.to, "%02x", rd[i]);
        fprintf(g.to, "\n");
        fflush(g.to);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, g.from);
        CHECK(n > 1);
        tessera_verifier *vendor = NULL, *trusting = NULL;
        tessera_verifier_builder *b = NULL;
        CHECK_RC(tessera_verifier_new(&vendor), TESSERA_RESULT_OK);
        CHECK_RC(tessera_verifier_builder_new(&b), TESSERA_RESULT_OK);
        CHECK_RC(tessera_verifier_builder_dangerous_add_test_root(b, root, root_len), TESSERA_RESULT_OK);
        CHECK_RC(tessera_verifier_builder_build(b, &trusting), TESSERA_RESULT_OK);
        int64_t now = (int64_t)time(NULL);
        tessera_verification *r = NULL;
        CHECK_RC(tessera_verifier_verify(vendor, (const uint8_t *)line, (size_t)n, NULL, now, NULL, 0, &r), TESSERA_RESULT_OK);
        CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_VERIFY_SNP);
        tessera_verification_free(r);
        r = NULL;
        CHECK_RC(tessera_verifier_verify(trusting, (const uint8_t *)line, (size_t)n, NULL, now, NULL, 0, &r), TESSERA_RESULT_OK);
        /* No policy: verified, not appraised (never ACCEPTED). */
        CHECK(tessera_verification_verdict(r) == TESSERA_VERDICT_VERIFIED_UNAPPRAISED);
        CHECK_RC(tessera_verification_result(r), TESSERA_RESULT_NOT_APPRAISED);
        const char *ver = tessera_verification_verification_json(r);
        CHECK(ver != NULL && strstr(ver, "\"dangerous_test_root\":true") != NULL);
        const char *claims = tessera_verification_claims_json(r);
        CHECK(claims != NULL && strstr(claims, "\"report_data\":\"000102030405") != NULL);
        tessera_verification_free(r);
        tessera_verifier_free(trusting);
        tessera_verifier_free(vendor);
        tessera_verifier_builder_free(b);
        free(line);
        free(root);
    }

    tessera_client *c = NULL;
    CHECK_RC(tessera_client_new(url, NULL, 0, 1, &c), TESSERA_RESULT_OK);

    /* The secret, with evidence JSON and with a raw report from the callback. */
    const char *modes[] = {"json", "raw"};
    for (int m = 0; m < 2; m++) {
        g.mode = modes[m];
        tessera_secret *s = NULL;
        char msg[512] = "";
        CHECK_RC(fetch(c, resource, &g, &s, msg, sizeof msg), TESSERA_RESULT_OK);
        if (msg[0]) fprintf(stderr, "%s: %s\n", g.mode, msg);
        CHECK(s != NULL);
        size_t len = tessera_secret_len(s);
        const uint8_t *data = tessera_secret_data(s);
        CHECK(len * 2 == strlen(secret_hex));
        for (size_t i = 0; data && i < len && i * 2 < strlen(secret_hex); i++)
            CHECK(data[i] == hexbyte(secret_hex + 2 * i));
        tessera_secret_free(s);
    }
    CHECK(g.calls == 2);
    g.mode = "json";

    /* The broker's policy refuses the other resource: 403, a message, no secret. */
    tessera_secret *s = (tessera_secret *)0x1;
    char msg[512] = "";
    CHECK_RC(fetch(c, denied, &g, &s, msg, sizeof msg), TESSERA_RESULT_BROKER_DENIED);
    CHECK(s == NULL); /* set to NULL first */
    CHECK(strstr(msg, "403") != NULL);

    /* A tiny message buffer is cut, still NUL-terminated. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    CHECK_RC(fetch(c, denied, &g, &s, tiny, sizeof tiny), TESSERA_RESULT_BROKER_DENIED);
    CHECK(strlen(tiny) == 7);

    /* The callback fails; the callback gives nothing. */
    g.fail_with = 42;
    CHECK_RC(fetch(c, resource, &g, &s, msg, sizeof msg), TESSERA_RESULT_EVIDENCE_CALLBACK);
    CHECK(strstr(msg, "42") != NULL);
    g.fail_with = 0;
    g.set_nothing = 1;
    CHECK_RC(fetch(c, resource, &g, &s, NULL, 0), TESSERA_RESULT_EVIDENCE_CALLBACK);
    g.set_nothing = 0;

    /* A resource path that is not repo/type/tag: refused before anything is sent. */
    int before = g.calls;
    s = (tessera_secret *)0x1;
    CHECK_RC(fetch(c, "not-a-path", &g, &s, msg, sizeof msg), TESSERA_RESULT_CLIENT_CONFIG);
    CHECK(g.calls == before);
    CHECK(s == NULL);

    /* Nobody listening. */
    tessera_client *nobody = NULL;
    CHECK_RC(tessera_client_new("http://127.0.0.1:1", NULL, 0, 1, &nobody), TESSERA_RESULT_OK);
    CHECK_RC(fetch(nobody, resource, &g, &s, msg, sizeof msg), TESSERA_RESULT_CLIENT_TRANSPORT);
    tessera_client_free(nobody);

    tessera_client_free(c);
    fclose(g.to); /* the broker exits when its stdin closes */
    fclose(g.from);
    int status = 0;
    waitpid(pid, &status, 0);
    return finish("secret");
}
