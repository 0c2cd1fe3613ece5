#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with a few real inputs from the test vectors (and, for the
# collateral crate's targets, inputs its simulators make).
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

# seed_skip TARGET NAME FILE SKIP : one seed that is FILE without its first SKIP bytes (the
# certification data of a v4 TD quote starts after header 48, body 584, length 4,
# signature 64, attestation key 64, type 2 and size 4 = 770 bytes).
seed_skip() {
    local target=$1 name=$2 rel=$3 skip=$4
    if [[ ! -f $vectors/$rel ]]; then
        echo "seed.sh: warning: $rel not found, $name skipped" >&2
        return 0
    fi
    mkdir -p "$corpus/$target"
    tail -c +$((skip + 1)) "$vectors/$rel" > "$corpus/$target/$name"
    echo "seeded $target: $name"
}

# seed_json_member TARGET NAME FILE KEY : the signed body inside a PCS response
# `{"KEY":{...},"signature":"..."}` (one line, as Intel serves it).
seed_json_member() {
    local target=$1 name=$2 rel=$3 key=$4 text
    if [[ ! -f $vectors/$rel ]]; then
        echo "seed.sh: warning: $rel not found, $name skipped" >&2
        return 0
    fi
    mkdir -p "$corpus/$target"
    text=$(cat "$vectors/$rel")
    text=${text#\{\"$key\":}
    text=${text%,\"signature\"*}
    printf '%s' "$text" > "$corpus/$target/$name"
    echo "seeded $target: $name"
}

quotes=(
    tdx/auto-tdx-v4-00806f-2025-06/quote.bin
    tdx/auto-tdx-v5-td15-90c06f-2025-06/quote.bin
    tdx/edgeless-tdx-v4-00806f-2023-02/quote.bin
    tdx/phala-tdx-v4-20a06f-2025-09/quote.bin
    sgx/auto-sgx-v3-00606a-2025-08/quote.bin
    sgx/phala-sgx-v3-00a067-2023-11/quote.bin
)
bundles=(
    tdx/auto-tdx-v4-00806f-2025-06/collateral.json
    tdx/oasis-tdx-v4-c0806f-2024-09/collateral.partial.json
    sgx/auto-sgx-v3-00606a-2024-05-tcbinfo-v2/collateral.json
)
seed tdx_quote "${quotes[@]}"
seed_skip tdx_cert_data edgeless-v4__cert_data.bin tdx/edgeless-tdx-v4-00806f-2023-02/quote.bin 770
seed_skip tdx_cert_data phala-v4__cert_data.bin tdx/phala-tdx-v4-20a06f-2025-09/quote.bin 770
seed collateral_bundle "${bundles[@]}"
seed_json_member tcb_info auto-tdx__tcbinfo.json \
    tdx/auto-tdx-v4-00806f-2025-06/collateral/tcbinfov3_00806f050000.json tcbInfo
seed_json_member tcb_info auto-sgx-v2__tcbinfo.json \
    sgx/auto-sgx-v3-00606a-2024-05-tcbinfo-v2/collateral/tcb.json tcbInfo
seed_json_member qe_identity auto-tdx__qe_td.json \
    tdx/auto-tdx-v4-00806f-2025-06/collateral/qe_td.json enclaveIdentity
seed_json_member qe_identity auto-sgx__qe.json \
    sgx/auto-sgx-v3-00606a-2025-08/collateral/sgx_qeidentity_v4.json enclaveIdentity

# KDS/PCS responses (pcs_response) and what crosses an air gap into a collateral cache
# (offline_bundle): made by the repository's AMD and Intel simulators, not taken from the
# vectors. The collateral crate's test makes one response per item the harness asks for, a
# bundle file of their entries and each stored entry, checks that every one reaches its
# harness's round trip, and writes them here.
TESSERA_FUZZ_SEED_DIR=$corpus cargo test -q --locked --manifest-path "$root/Cargo.toml" \
    -p tessera-collateral --lib -- --exact tests::fuzz_seeds_reach_the_round_trips
for target in pcs_response offline_bundle; do
    n=$(find "$corpus/$target" -maxdepth 1 -type f -name 'sim__*' 2>/dev/null | wc -l)
    if ((n == 0)); then
        echo "seed.sh: no seed made for $target" >&2
        exit 1
    fi
    echo "seeded $target: $n files"
done

# The facade: every evidence form, raw and KBS JSON.
seed evidence "${reports[@]:0:2}" "${hcl[@]:0:1}" "${quotes[@]:0:2}" \
    snp/genoa-v3_trustee-e2e/evidence.json
seed kbs_evidence_json snp/genoa-v3_trustee-e2e/evidence.json
# The C ABI's verify and decode: the same forms.
seed ffi_verify "${reports[@]:0:2}" "${hcl[@]:0:1}" "${quotes[@]:0:1}" \
    snp/genoa-v3_trustee-e2e/evidence.json

# Policies come from the repository's own examples, not from the vectors.
mkdir -p "$corpus/policy_loader"
n=0
for f in "$root"/examples/policies/*.toml "$root"/examples/policies/*.json; do
    [[ -f $f ]] || continue
    install -m 0644 "$f" "$corpus/policy_loader/examples__$(basename "$f")"
    n=$((n + 1))
done
echo "seeded policy_loader: $n files"

# Init data (init_data): as CoCo guests send it (the algorithm line, a version, the agents'
# files under [data]) for each hash, and the deepest `a=[[[...` nesting that fits the
# 256 KiB bound; written here, not taken from the vectors.
mkdir -p "$corpus/init_data"
for h in sha256 sha384 sha512; do
    cat > "$corpus/init_data/coco__$h.toml" <<INIT
algorithm = "$h"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs]
[token_configs.kbs]
url = "http://kbs.example:8080"
'''
"cdh.toml" = '''
socket = "unix:///run/confidential-containers/cdh.sock"
[kbc]
name = "cc_kbc"
url = "http://kbs.example:8080"
'''
"policy.rego" = '''
package agent_policy
default AllowRequestsFailingPolicy := false
'''
INIT
done
{ printf 'algorithm = "sha384"\na='; head -c $((256 * 1024 - 23)) /dev/zero | tr '\0' '['; } \
    > "$corpus/init_data/deep__brackets.toml"
echo "seeded init_data: 4 files"
