#!/usr/bin/env bash
# A trial of two Tessera broker replicas over one PostgreSQL on this machine, without containers.
#
# Usage: deploy/trial.sh [--check]
#
#   (no option)  start PostgreSQL (unless TESSERA_DATABASE_URL is set) and two replicas on
#                http://127.0.0.1:8081 and :8082 (or the next free pair), print how to use
#                them, and run until Ctrl-C
#   --check      start them, check that a secret put at replica 1 is listed by replica 2 and
#                that a wrong admin token is refused at each, then stop; exit 1 on any failure
#
# The replicas share PostgreSQL, the KEK keyring, the token signing key, the sealing keys, the
# CoCo signing key and the admin token (deploy/compose/init.sh writes them into the trial
# directory), and nothing else: each has its
# own configuration file and scratch data directory. They serve plain HTTP on loopback, which the
# broker allows without `insecure_http`.
#
# Environment:
#   TESSERA_BIN           the tessera binary (default: target/release/tessera, then target/debug,
#                         then `tessera` on PATH); build it with `cargo build --release -p tessera-cli`
#   TESSERA_DATABASE_URL  an existing PostgreSQL database to use (default: a throwaway cluster)
#   TRIAL_DIR             where the keys, configurations, logs and cluster go
#                         (default: ${TMPDIR:-/tmp}/tessera-trial; kept between runs)
#   TRIAL_PORT            the first replica's port, the second is TRIAL_PORT+1 (default: the
#                         first pair of 8081/8082 to 8099/8100 with nothing listening on either;
#                         a TRIAL_PORT that is taken is an error)
#   TRIAL_PG_PORT         the throwaway cluster's port on 127.0.0.1 (default: the first free of
#                         25432 to 25441, below Linux's ephemeral range so that no outgoing
#                         connection's local port holds it)
#
# The throwaway cluster needs PostgreSQL's server binaries (Debian: apt-get install postgresql);
# run as root, it runs them as the `postgres` user.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *)
        sed -n '2,10p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
esac

trial=${TRIAL_DIR:-${TMPDIR:-/tmp}/tessera-trial}
port1=${TRIAL_PORT:-8081}
# Pairs to try when a port is taken (none when TRIAL_PORT names one).
port_tries=$([[ -n ${TRIAL_PORT:-} ]] && echo 1 || echo 10)
pg_port=${TRIAL_PG_PORT:-25432}
# Ports to try after it when it is taken (none when TRIAL_PG_PORT names one).
pg_port_tries=$([[ -n ${TRIAL_PG_PORT:-} ]] && echo 1 || echo 10)

say() { printf 'trial: %s\n' "$*"; }
die() {
    printf 'trial: ERROR: %s\n' "$*" >&2
    exit 1
}
if ! [[ $port1 =~ ^[1-9][0-9]{0,4}$ ]] || ((port1 < 1 || port1 > 65534)); then
    die "TRIAL_PORT must be a port from 1 to 65534 (the second replica takes the next one)"
fi

# ---- the binary ---------------------------------------------------------------------------
bin=${TESSERA_BIN:-}
if [[ -z $bin ]]; then
    for c in "$repo/target/release/tessera" "$repo/target/debug/tessera" "$(command -v tessera || true)"; do
        if [[ -n $c && -x $c ]]; then
            bin=$c
            break
        fi
    done
fi
[[ -n $bin && -x $bin ]] ||
    die "no tessera binary: run 'cargo build --release -p tessera-cli' or set TESSERA_BIN"
"$bin" serve --help >/dev/null 2>&1 || die "$bin has no 'serve' command (too old a build?)"
command -v curl >/dev/null || die "curl is required"

mkdir -p "$trial"
# A shared default path (/tmp/tessera-trial): refuse a directory someone else made, whose keys
# (kept when present) or files could be theirs.
[[ -O $trial ]] || die "$trial is not owned by you: remove it or set TRIAL_DIR"
chmod 0711 "$trial"
say "directory $trial, binary $bin"

# ---- shared keys ----------------------------------------------------------------------------
bash "$repo/deploy/compose/init.sh" "$trial/secrets" | sed 's/^/trial: /'

# ---- PostgreSQL -----------------------------------------------------------------------------
pids=()
pg_started=0
pg_ctl_cmd=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if ((pg_started)); then
        "${pg_ctl_cmd[@]}" -D "$trial/pg" -m fast stop >/dev/null 2>&1 || true
        say "stopped PostgreSQL"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${TESSERA_DATABASE_URL:-} ]]; then
    db_url=$TESSERA_DATABASE_URL
    say "using the PostgreSQL of TESSERA_DATABASE_URL"
else
    pg_bin=""
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        pg_bin=$(dirname "$(command -v initdb)")
    else
        pg_bin=$(find /usr/lib/postgresql -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
    fi
    [[ -n $pg_bin && -x $pg_bin/initdb ]] ||
        die "no PostgreSQL server binaries (initdb, pg_ctl): install postgresql or set TESSERA_DATABASE_URL"
    as_pg=()
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user for the cluster"
        as_pg=(runuser -u postgres --)
    fi
    pg_ctl_cmd=("${as_pg[@]}" "$pg_bin/pg_ctl")
    pw_file="$trial/secrets/db.password"
    if [[ ! -f $trial/pg/PG_VERSION ]]; then
        rm -rf "$trial/pg"
        mkdir -p "$trial/pg"
        pw_copy="$trial/pg.pwfile"
        install -m 0600 "$pw_file" "$pw_copy"
        if ((${#as_pg[@]})); then
            chown postgres: "$trial/pg" "$pw_copy"
            "${as_pg[@]}" test -w "$trial/pg" ||
                die "the postgres user cannot reach $trial/pg: choose a TRIAL_DIR it can traverse"
        fi
        "${as_pg[@]}" "$pg_bin/initdb" -D "$trial/pg" -U tessera --pwfile="$pw_copy" \
            --auth=scram-sha-256 -E UTF8 >"$trial/initdb.log" 2>&1 ||
            die "initdb failed: see $trial/initdb.log"
        rm -f "$pw_copy"
    fi
    # A trial left running with this TRIAL_DIR holds the cluster: say so, not "did not start".
    if "${pg_ctl_cmd[@]}" -D "$trial/pg" status >/dev/null 2>&1; then
        die "the cluster in $trial/pg is already running (another trial?): stop it, or set TRIAL_DIR"
    fi
    first_port=$pg_port
    for ((try = 0; ; try++)); do
        pg_port=$((first_port + try))
        "${pg_ctl_cmd[@]}" -D "$trial/pg" -l "$trial/pg/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $pg_port -k ''" start >/dev/null && break
        if ((try + 1 < pg_port_tries)) &&
            tail -n 8 "$trial/pg/server.log" 2>/dev/null | grep -q 'Address already in use'; then
            say "port $pg_port is taken; trying $((pg_port + 1))"
            continue
        fi
        # The log's end here too: CI removes the directory when the check fails.
        tail -n 20 "$trial/pg/server.log" >&2 2>/dev/null || true
        die "PostgreSQL did not start on port $pg_port: see $trial/pg/server.log"
    done
    pg_started=1
    pw=$(cat "$pw_file")
    # The database `tessera` (initdb made only `postgres`).
    if ! PGPASSWORD=$pw psql -h 127.0.0.1 -p "$pg_port" -U tessera -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'tessera'" | grep -q 1; then
        PGPASSWORD=$pw psql -h 127.0.0.1 -p "$pg_port" -U tessera -d postgres -q \
            -c "CREATE DATABASE tessera" || die "creating the database failed"
    fi
    db_url="postgres://tessera:$pw@127.0.0.1:$pg_port/tessera?sslmode=disable"
    say "PostgreSQL on 127.0.0.1:$pg_port (log $trial/pg/server.log)"
fi

# ---- the replicas ---------------------------------------------------------------------------
# Something already listening there (a trial left running, say) would answer the readiness
# probe and the check in the replicas' place: take a pair of ports nothing listens on.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
first_pair=$port1
for ((try = 0; ; try++)); do
    port1=$((first_pair + 2 * try))
    port2=$((port1 + 1))
    if ! listening "$port1" && ! listening "$port2"; then
        break
    fi
    ((try + 1 < port_tries)) || die "port $port1 or $port2 is in use: set TRIAL_PORT to a free pair"
    say "port $port1 or $port2 is in use; trying $((port1 + 2)) and $((port1 + 3))"
done
for i in 1 2; do
    port=$((port1 + i - 1))
    # Relative paths are relative to this file's directory.
    cat >"$trial/replica-$i.toml" <<EOF
# Replica $i of the trial (deploy/trial.sh). The store: TESSERA_DATABASE_URL.
listen = "127.0.0.1:$port"
data_dir = "replica-$i"
kek_file = "secrets/kek"
token_key_file = "secrets/token.key"
sealing_key_file = "secrets/sealing.keys"
coco_signing_key_file = "secrets/coco-signing.key"
token_ttl_secs = 300
request_timeout_secs = 30

[admin]
tokens = [{ name = "admin", file = "secrets/admin.token" }]
EOF
    TESSERA_DATABASE_URL=$db_url "$bin" serve --config "$trial/replica-$i.toml" \
        >"$trial/replica-$i.log" 2>&1 &
    pids+=($!)
done

for i in 1 2; do
    port=$((port1 + i - 1))
    ok=0
    for _ in $(seq 1 120); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            ok=1
            break
        fi
        if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    if ((!ok)); then
        tail -n 30 "$trial/replica-$i.log" | sed "s/^/trial: replica-$i | /" >&2
        die "replica $i did not become ready on port $port"
    fi
    say "replica $i ready: http://127.0.0.1:$port (log $trial/replica-$i.log)"
done

token=$(tr -d '[:space:]' <"$trial/secrets/admin.token")

if ((check)); then
    # A policy the admin API accepts (only stored here: nothing attests), as a JSON string.
    policy=$(tr -d '\n' <"$repo/examples/policies/tdx-minimal.json" | sed 's/\\/\\\\/g; s/"/\\"/g')
    status=$(curl -sS -o "$trial/put.json" -w '%{http_code}' \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data "{\"policy\": \"$policy\", \"generate\": 32}" \
        "http://127.0.0.1:$port1/kbs/v0/resource/trial/key/one")
    [[ $status == 200 ]] || die "put at replica 1: HTTP $status: $(cat "$trial/put.json")"
    say "ok: put trial/key/one at replica 1"
    listed=$(curl -fsS -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port2/kbs/v0/admin/resources?repo=trial") ||
        die "list at replica 2 failed"
    grep -q 'trial/key/one' <<<"$listed" ||
        die "replica 2 does not list the secret put at replica 1: $listed"
    say "ok: replica 2 lists it"
    for port in "$port1" "$port2"; do
        status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong-$token" \
            "http://127.0.0.1:$port/kbs/v0/admin/resources")
        [[ $status == 401 ]] || die "a wrong admin token at port $port: HTTP $status, expected 401"
    done
    say "ok: a wrong admin token is refused at both"
    say "check passed"
    exit 0
fi

cat <<EOF

Two replicas share PostgreSQL, the KEK, the token key and this admin token file:
  $trial/secrets/admin.token

Put a secret at replica 1, list it at replica 2:
  TOKEN=\$(cat $trial/secrets/admin.token)
  curl -H "Authorization: Bearer \$TOKEN" --data '{"policy": "...", "generate": 32}' \\
      http://127.0.0.1:$port1/kbs/v0/resource/default/key/one
  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$port2/kbs/v0/admin/resources
Metrics: http://127.0.0.1:$port1/metrics   Readiness: /readyz   Liveness: /healthz

Ctrl-C stops the replicas and the throwaway PostgreSQL (its data stays in $trial/pg).
EOF
wait
