#!/usr/bin/env bash
# Checks deploy/: the CI section "deploy manifests" of .ci/run. Tools come from PyPI only
# (deploy/ci/requirements.txt, in a cached virtualenv); nothing is fetched while validating.
#
#   * the Helm chart: helm lint (strict) and render through Helm's Go SDK (helm-python-sdk),
#     the broker configuration and security settings checked (render_chart.py), the manifests
#     validated against the Kubernetes schemas bundled in kubernetes-validate (strict, for the
#     oldest and newest Kubernetes the chart supports), the ServiceMonitor (a CRD) against
#     servicemonitor.schema.json;
#   * the compose file against the compose specification, the Dockerfile with hadolint and its
#     build context (docker_context.py), the scripts with shellcheck, init.sh's output;
#   * deploy/trial.sh --check (two replicas over a throwaway PostgreSQL) when the tessera binary
#     has `serve` and PostgreSQL support.
#
# Usage: deploy/ci/check.sh [TESSERA_BIN]   (from anywhere; the binary defaults to
# ${CARGO_TARGET_DIR:-target}/debug/tessera)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/tessera}

venv=${XDG_CACHE_HOME:-$HOME/.cache}/tessera-ci/deploy-venv
req=deploy/ci/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
fi
py=$venv/bin/python
tools=$venv/bin

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# trial.sh, run as root, runs PostgreSQL as the `postgres` user inside this directory.
chmod 0711 "$work"

# Fails unless COMMAND fails: a validator that cannot reject checks nothing.
must_reject() {
    local what=$1
    shift
    if "$@" >"$work/reject.log" 2>&1; then
        echo "ERROR: accepted $what" >&2
        exit 1
    fi
    echo "ok: rejected $what"
}

echo "-- chart: lint, render, configuration checks"
"$py" deploy/ci/render_chart.py deploy/helm/tessera "$work/rendered"

echo "-- chart: Kubernetes schemas (kubernetes-validate $("$tools/kubernetes-validate" --version))"
for k in 1.27.0 1.37.0; do
    "$tools/kubernetes-validate" --strict --quiet -k "$k" "$work"/rendered/{base,full,mesh}.yaml
    echo "ok: base, full, mesh against Kubernetes $k"
done
"$tools/check-jsonschema" --schemafile deploy/ci/servicemonitor.schema.json \
    "$work/rendered/full-monitoring.yaml"
sed 's/^  revisionHistoryLimit: 5$/&\n  replicass: 2/' "$work/rendered/base.yaml" >"$work/bad-deploy.yaml"
grep -q replicass "$work/bad-deploy.yaml"
must_reject "a Deployment with an unknown field" \
    "$tools/kubernetes-validate" --strict --quiet "$work/bad-deploy.yaml"
sed 's/interval: 30s/interval: 30 seconds/' "$work/rendered/full-monitoring.yaml" >"$work/bad-sm.yaml"
grep -q '30 seconds' "$work/bad-sm.yaml"
must_reject "a ServiceMonitor with a malformed interval" \
    "$tools/check-jsonschema" --schemafile deploy/ci/servicemonitor.schema.json "$work/bad-sm.yaml"

echo "-- compose, Dockerfile, scripts"
"$tools/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/docker-compose.yaml
sed 's/^    image: postgres:16-bookworm$/&\n    imagee: x/' deploy/compose/docker-compose.yaml >"$work/bad-compose.yaml"
grep -q imagee "$work/bad-compose.yaml"
must_reject "a compose service with an unknown key" \
    "$tools/check-jsonschema" --builtin-schema vendor.compose-spec "$work/bad-compose.yaml"
"$tools/hadolint" deploy/Dockerfile
echo "ok: hadolint"
# The image cannot be built here (no base images), so check its build context: the files
# .dockerignore leaves hold every manifest of the locked workspace and every included file.
python3 deploy/ci/docker_context.py . "$work/context"
(cd "$work/context" && cargo metadata --locked --offline --format-version 1 >/dev/null)
echo "ok: the Docker build context has the locked workspace"
"$tools/shellcheck" deploy/trial.sh deploy/compose/init.sh deploy/ci/check.sh
echo "ok: shellcheck"
"$py" -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' deploy/compose/tessera.toml

echo "-- init.sh"
bash deploy/compose/init.sh "$work/keys"
for f in kek token.key sealing.keys coco-signing.key admin.token db.password ca.pem tls.crt tls.key; do
    mode=$(stat -c %a "$work/keys/$f")
    [[ $mode == 600 ]] || {
        echo "ERROR: init.sh wrote $f with mode $mode" >&2
        exit 1
    }
done
"$py" - "$work/keys/kek" <<'EOF'
import base64, json, re, sys
doc = json.load(open(sys.argv[1]))
assert set(doc) == {"version", "active", "keys"} and doc["version"] == 1, doc.keys()
assert len(doc["keys"]) == 1 and set(doc["keys"][0]) == {"id", "key"}
assert doc["active"] == doc["keys"][0]["id"]
assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", doc["active"])
assert len(base64.b64decode(doc["keys"][0]["key"], validate=True)) == 32
print("ok: kek is a keyring with one 32-byte KEK")
EOF
"$py" - "$work/keys/sealing.keys" <<'EOF'
import base64, json, sys
doc = json.load(open(sys.argv[1]))
assert set(doc) == {"version", "keys"} and doc["version"] == 1, doc.keys()
(k,) = doc["keys"]
assert set(k) == {"kid", "created_ms", "key"} and k["kid"].startswith("seal-")
assert isinstance(k["created_ms"], int) and k["created_ms"] > 1_600_000_000_000
scalar = int.from_bytes(base64.b64decode(k["key"], validate=True), "big")
n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 order
assert len(base64.b64decode(k["key"])) == 32 and 0 < scalar < n
print("ok: sealing.keys holds one P-256 scalar")
EOF
# PKCS#8 (`openssl pkcs8` without -topk8 reads only that), not SEC1.
openssl pkcs8 -nocrypt -inform DER -in "$work/keys/coco-signing.key" -out /dev/null
echo "ok: coco-signing.key is PKCS#8 DER"
grep -q -- '-----BEGIN PRIVATE KEY-----' "$work/keys/token.key"
openssl verify -CAfile "$work/keys/ca.pem" "$work/keys/tls.crt"
before=$(sha256sum "$work/keys/kek")
bash deploy/compose/init.sh "$work/keys" >/dev/null
[[ $(sha256sum "$work/keys/kek") == "$before" ]] || {
    echo "ERROR: a second init.sh replaced the KEK" >&2
    exit 1
}
echo "ok: a second run keeps the KEK"

echo "-- trial.sh"
if [[ -x $bin ]] && "$bin" serve --help >/dev/null 2>&1 && grep -aq TESSERA_DATABASE_URL "$bin"; then
    TESSERA_BIN=$bin TRIAL_DIR="$work/trial" bash deploy/trial.sh --check
else
    echo "note: $bin lacks 'serve' or PostgreSQL support (TESSERA_DATABASE_URL): trial.sh --check skipped"
fi
echo "deploy checks passed"
