#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with a few real inputs from the test vectors.
#
# Usage: fuzz/seed.sh            (vectors from $TESSERA_VECTORS, default ../shared/vectors
#                                 beside the repository)
#
# fuzz/corpus/ is git-ignored: the vectors stay in the shared vectors tree, never in the
# repository. Seeds are named <case>__<file> so re-running overwrites instead of duplicating;
# whatever the fuzzer has added to a corpus is left alone.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$fuzz_dir")
vectors=${TESSERA_VECTORS:-$root/../shared/vectors}
if [[ ! -d $vectors/snp ]]; then
    echo "seed.sh: no test vectors at '$vectors' (set TESSERA_VECTORS)" >&2
    exit 1
fi
corpus=$fuzz_dir/corpus

# seed TARGET FILE... : copy each FILE (relative to $vectors) into the target's corpus.
seed() {
    local target=$1 rel name n=0
    shift
    mkdir -p "$corpus/$target"
    for rel in "$@"; do
        if [[ ! -f $vectors/$rel ]]; then
            echo "seed.sh: warning: $rel not found, skipped" >&2
            continue
        fi
        name=$(basename "$(dirname "$rel")")__$(basename "$rel")
        install -m 0644 "$vectors/$rel" "$corpus/$target/$name"
        n=$((n + 1))
    done
    if ((n == 0)); then
        echo "seed.sh: no seed found for $target" >&2
        exit 1
    fi
    echo "seeded $target: $n files"
}

# seed_concat TARGET NAME FILE... : one seed that is the FILEs joined (an extended report is
# a report followed by its certificate table).
seed_concat() {
    local target=$1 name=$2 rel
    shift 2
    for rel in "$@"; do
        if [[ ! -f $vectors/$rel ]]; then
            echo "seed.sh: warning: $rel not found, $name skipped" >&2
            return 0
        fi
    done
    mkdir -p "$corpus/$target"
    (cd "$vectors" && cat "$@") > "$corpus/$target/$name"
    echo "seeded $target: $name"
}

reports=(
    snp/milan-v2_go-sev-guest/report.bin
    snp/milan-v3_oak-rk_20241205-4bf52c/report.bin
    snp/milan-v5_gcp_teekit/report.bin
    snp/genoa-v3_veraison-tsm/report.bin
    snp/genoa-v5_oak-genoa_oc-6d1cef/report.bin
    snp/milan-v2-vlek_aws_constellation-cc-test/report.bin
    snp/neg_lit_report-truncated-793/report.bin
)
tables=(
    snp/milan-v2-vlek_aws_constellation-cc-test/certs_table.bin
    snp/genoa-v3_veraison-tsm/auxblob.bin
)
hcl=(
    snp/milan-v2_azure_trustee-test-report/hcl_report.bin
    snp/milan-v3_azure_trustee-evidence-v1/hcl_report.bin
    snp/genoa-v3_azure_trustee-evidence-genoa/hcl_report.bin
)
veks=(
    snp/milan-v2_oak-rk-071c97/vcek.der
    snp/genoa-v3_veraison-tsm/vcek.pem
    snp/milan-v2-vlek_aws_constellation-cc-test/vlek.der
    snp/certs-only_turin-vcek_virtee-sev/cert_chain.pem
    snp/neg_trustee_vcek-tampered-legacy-hwid/vcek.der
)
pki=(
    "${veks[@]}"
    snp/milan-v2_go-sev-guest/cert_chain.pem
    snp/certs-only_milan-vcek_spire/crl.der
    roots/amd/crls/ark-genoa_crl_2022-10-31.der
    roots/amd/genoa/ask_serial_0x20001_revoked.pem
)

seed snp_report "${reports[@]}"
seed snp_cert_table "${tables[@]}"
seed snp_hcl "${hcl[@]}"
seed snp_evidence "${reports[@]:0:3}" "${hcl[@]:0:1}"
seed_concat snp_evidence extended__aws-cc-test.bin \
    snp/milan-v2-vlek_aws_constellation-cc-test/report.bin \
    snp/milan-v2-vlek_aws_constellation-cc-test/certs_table.bin
seed_concat snp_evidence extended__veraison-tsm.bin \
    snp/genoa-v3_veraison-tsm/report.bin \
    snp/genoa-v3_veraison-tsm/auxblob.bin
seed vek_extensions "${veks[@]}"
seed pki_certificates "${pki[@]}"
