#!/usr/bin/env bash
# Generates the files that every Tessera replica shares, for a trial on one machine:
#
#   kek               the key-encryption keyring (JSON, the format `tessera serve` creates)
#   token.key         the attestation-token signing key (PKCS#8 PEM, ES256)
#   sealing.keys      the keys secrets sealed for Git are sealed to (JSON, one P-256 key)
#   coco-signing.key  the key that signs CoCo sealed secrets (PKCS#8 DER, ES256)
#   admin.token       a static admin token (64 hex characters)
#   ca.pem            a throwaway CA, and the server certificate it signs (tls.crt, tls.key) for
#                     localhost, 127.0.0.1, tessera-1 and tessera-2
#   db.password       the PostgreSQL password of the compose file
#
# Usage: init.sh [DIR]
#
# Without DIR (docker compose): the files go to secrets/ beside this script, and .env beside it
# tells compose the UID/GID the containers run as and the database password. Run as root, the
# files are given to UID/GID 10001 (the image's user); otherwise the containers run as your UID.
# With DIR (deploy/trial.sh): only the files, owned by you.
#
# Existing files are kept, never replaced: a new KEK would make every stored secret unreadable.
# Every file is mode 0600. Needs openssl.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
compose=0
if (($# == 0)); then
    compose=1
fi
dir=${1:-$here/secrets}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

command -v openssl >/dev/null || {
    echo "init.sh: openssl is required" >&2
    exit 1
}

made=()
kept=()

# new FILE: true when FILE must be created (and records which).
new() {
    if [[ -e $dir/$1 ]]; then
        kept+=("$1")
        return 1
    fi
    made+=("$1")
    return 0
}

if new kek; then
    id="kek-$(openssl rand -hex 8)"
    key=$(openssl rand -base64 32)
    printf '{\n  "version": 1,\n  "active": "%s",\n  "keys": [\n    {\n      "id": "%s",\n      "key": "%s"\n    }\n  ]\n}\n' \
        "$id" "$id" "$key" >"$dir/kek.tmp"
    mv "$dir/kek.tmp" "$dir/kek"
fi

if new token.key; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/token.key.tmp" 2>/dev/null
    mv "$dir/token.key.tmp" "$dir/token.key"
fi

if new sealing.keys; then
    # The broker's format: {"version": 1, "keys": [{"kid", "created_ms", "key"}]}, `key` the
    # P-256 private scalar (32 bytes, big-endian) in standard base64. OpenSSL writes it inside a
    # SEC1 ECPrivateKey without the public key: 30 31 02 01 01 04 20 <scalar> a0 0a <curve>.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/seal.tmp.pem" 2>/dev/null
    openssl ec -in "$dir/seal.tmp.pem" -no_public -outform DER -out "$dir/seal.tmp.der" 2>/dev/null
    rm -f "$dir/seal.tmp.pem"
    if [[ $(head -c 7 "$dir/seal.tmp.der" | od -An -tx1 | tr -d ' \n') != 30310201010420 ||
        $(wc -c <"$dir/seal.tmp.der") -ne 51 ]]; then
        rm -f "$dir/seal.tmp.der"
        echo "init.sh: unexpected SEC1 encoding from openssl" >&2
        exit 1
    fi
    scalar=$(tail -c +8 "$dir/seal.tmp.der" | head -c 32 | openssl base64 -A)
    rm -f "$dir/seal.tmp.der"
    printf '{\n  "version": 1,\n  "keys": [\n    {\n      "kid": "seal-%s",\n      "created_ms": %s,\n      "key": "%s"\n    }\n  ]\n}\n' \
        "$(openssl rand -hex 8)" "$(($(date +%s) * 1000))" "$scalar" >"$dir/sealing.keys.tmp"
    unset scalar
    mv "$dir/sealing.keys.tmp" "$dir/sealing.keys"
fi

if new coco-signing.key; then
    # PKCS#8 DER (genpkey's own DER output for EC is SEC1, which the broker refuses).
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/coco.tmp.pem" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$dir/coco.tmp.pem" -outform DER -out "$dir/coco-signing.key.tmp"
    rm -f "$dir/coco.tmp.pem"
    mv "$dir/coco-signing.key.tmp" "$dir/coco-signing.key"
fi

if new admin.token; then
    openssl rand -hex 32 >"$dir/admin.token"
fi

if new db.password; then
    openssl rand -hex 24 >"$dir/db.password"
fi

if new ca.pem; then
    rm -f "$dir/tls.crt" "$dir/tls.key" # a new CA needs a new leaf
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=Tessera trial CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
fi

if new tls.crt; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=tessera" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:tessera-1,DNS:tessera-2\nextendedKeyUsage=serverAuth\n' \
        >"$dir/tls.ext"
    openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 30 -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
    rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
fi

chmod 0600 "$dir"/*

echo "init.sh: in $dir"
if ((${#made[@]})); then
    echo "  created: ${made[*]}"
fi
if ((${#kept[@]})); then
    echo "  kept:    ${kept[*]}"
fi
if [[ -e "$dir/ca.key" ]]; then
    echo "  private keys: ca.key (the trial CA's: delete it once the certificates you need are" \
        "made) and tls.key (the server's)"
fi
if ((compose == 0)); then
    exit 0
fi

if [[ $(id -u) == 0 ]]; then
    uid=10001
    gid=10001
    chown -R "$uid:$gid" "$dir"
else
    uid=$(id -u)
    gid=$(id -g)
fi

# What docker-compose.yaml reads.
cat >"$here/.env" <<EOF
TESSERA_UID=$uid
TESSERA_GID=$gid
TESSERA_DB_PASSWORD=$(cat "$dir/db.password")
EOF
chmod 0600 "$here/.env"
echo "  the containers run as $uid:$gid ($here/.env)"
