#!/usr/bin/env bash
# Generates the files that every Tessera replica shares, for a trial on one machine:
#
#   kek            the key-encryption keyring (JSON, the format `tessera serve` creates)
#   token.key      the attestation-token signing key (PKCS#8 PEM, ES256)
#   admin.token    a static admin token (64 hex characters)
#   ca.pem         a throwaway CA, and the server certificate it signs (tls.crt, tls.key) for
#                  localhost, 127.0.0.1, tessera-1 and tessera-2
#   db.password    the PostgreSQL password of the compose file
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
