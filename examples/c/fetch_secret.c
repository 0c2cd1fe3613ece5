/* Fetch a secret from a key broker with Tessera's C API, inside an SEV-SNP or TDX guest.
 *
 *   fetch_secret <broker url> <tee: snp|tdx> <resource repo/type/tag>
 *
 * Evidence comes from the Linux configfs-tsm interface (/sys/kernel/config/tsm/report): the
 * callback writes the broker's REPORT_DATA to `inblob` and hands `outblob` to Tessera.
 * The secret is written to stdout. Exit status: 0 on success, 1 on failure.
 * Build: cc fetch_secret.c $(pkg-config --cflags --libs tessera) -o fetch_secret */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tessera.h"

#define TSM "/sys/kernel/config/tsm/report"

static int tsm_evidence(void *userdata, const uint8_t *report_data, size_t report_data_len,
                        tessera_evidence_buffer *evidence) {
    (void)userdata;
    char dir[256], path[320];
    snprintf(dir, sizeof dir, TSM "/tessera-%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0) return 1;
    int rc = 1;
    snprintf(path, sizeof path, "%s/inblob", dir);
    FILE *in = fopen(path, "wb");
    int written = in && fwrite(report_data, 1, report_data_len, in) == report_data_len;
    /* fclose closes the stream even when it fails: it is never closed twice. */
    int closed = in && fclose(in) == 0;
    if (written && closed) {
        snprintf(path, sizeof path, "%s/outblob", dir);
        FILE *out = fopen(path, "rb");
        unsigned char buf[1 << 16];
        size_t n = out ? fread(buf, 1, sizeof buf, out) : 0;
        if (out) fclose(out);
        if (n > 0 && tessera_evidence_buffer_set(evidence, buf, n) == TESSERA_RESULT_OK) rc = 0;
    }
    rmdir(dir);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <broker url> <snp|tdx> <repo/type/tag>\n", argv[0]);
        return 1;
    }
    tessera_client *client = NULL;
    tessera_secret *secret = NULL;
    char message[512] = "";
    tessera_result rc = tessera_client_new(argv[1], NULL, 0, 0, &client);
    if (rc == TESSERA_RESULT_OK)
        rc = tessera_client_get_secret(client, argv[2], argv[3], NULL, tsm_evidence, NULL,
                                       message, sizeof message, &secret);
    if (rc != TESSERA_RESULT_OK) {
        fprintf(stderr, "error: %s: %s\n", tessera_result_name(rc), message);
    } else {
        fwrite(tessera_secret_data(secret), 1, tessera_secret_len(secret), stdout);
    }
    tessera_secret_free(secret); /* zeroizes the secret */
    tessera_client_free(client);
    return rc == TESSERA_RESULT_OK ? 0 : 1;
}
