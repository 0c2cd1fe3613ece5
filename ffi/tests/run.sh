#!/usr/bin/env bash
# The C API's tests: build tessera-ffi and its test support programs (a broker, a TDX
# simulator), check the header for drift, compile the C tests under ffi/tests/ with cc against
# the static library, run them, run them under valgrind, build them once with AddressSanitizer
# and run them, then run the C examples and the Go binding's test (examples/go).
# Respects CARGO_TARGET_DIR. Needs cc, valgrind, go (Debian: build-essential valgrind
# golang-go) pkg-config and cbindgen (installed with cargo when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
lib_dir=$target/debug
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf -- '-- %s\n' "$*"; }

step "cargo build -p tessera-ffi (the library, the test broker and the TDX simulator)"
cargo build --locked -p tessera-ffi --lib --example test-broker --example test-tdx
broker=$lib_dir/examples/test-broker

step "a simulated TDX quote, its collateral and root (ffi/tests/support/tdx.rs)"
mkdir -p "$out/tdx-sim"
"$lib_dir/examples/test-tdx" "$out/tdx-sim"

step "header drift (ffi/check-header.sh)"
if ! command -v cbindgen >/dev/null; then
    cargo install cbindgen --locked
fi
bash ffi/check-header.sh

# What the Rust standard library needs when linked statically into a C program.
libs=(-lpthread -ldl -lm)
cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-format-truncation -Werror -g -I ffi/include -I ffi/tests)

# name and arguments of each test
run_tests() {
    local dir=$1
    shift
    "$@" "$dir/verify" "$root/examples"
    "$@" "$dir/errors"
    "$@" "$dir/threads" "$root/examples"
    "$@" "$dir/secret" "$broker"
    "$@" "$dir/tdx" "$out/tdx-sim" "$root/examples"
}

step "compile the C tests (cc, static library)"
mkdir -p "$out/plain" "$out/asan"
for t in verify errors threads secret tdx; do
    cc "${cflags[@]}" "ffi/tests/$t.c" "$lib_dir/libtessera_ffi.a" "${libs[@]}" -o "$out/plain/$t"
done

step "run the C tests"
run_tests "$out/plain"

step "run the C tests under valgrind"
run_tests "$out/plain" valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

step "compile and run the C tests with AddressSanitizer"
for t in verify errors threads secret tdx; do
    cc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer "ffi/tests/$t.c" \
        "$lib_dir/libtessera_ffi.a" "${libs[@]}" -o "$out/asan/$t"
done
run_tests "$out/asan"

step "also link against the shared library"
cc "${cflags[@]}" ffi/tests/errors.c -L "$lib_dir" -ltessera_ffi -Wl,-rpath,"$lib_dir" -o "$out/plain/errors-shared"
"$out/plain/errors-shared"

step "pkg-config file (ffi/tessera.pc.in) pointing at this build"
mkdir -p "$out/pkgconfig"
sed -e "s|@PREFIX@|$root|" -e "s|@LIBDIR@|$lib_dir|" -e "s|@INCLUDEDIR@|$root/ffi/include|" \
    -e "s|@VERSION@|0.1.0|" ffi/tessera.pc.in >"$out/pkgconfig/tessera.pc"
export PKG_CONFIG_PATH=$out/pkgconfig LD_LIBRARY_PATH=$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
pkg-config --cflags --libs tessera

step "build the C examples (examples/c) with pkg-config and run the verifier on the sample"
# shellcheck disable=SC2046 # pkg-config's flags are meant to be split
for ex in verify fetch_secret; do
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(pkg-config --cflags tessera) \
        "examples/c/$ex.c" $(pkg-config --libs tessera) -o "$out/$ex"
done
sample=examples/evidence/snp-milan
dev=examples/policies/development.toml
"$out/verify" -p "$dev" "$sample/report.bin" 1664067328 "$sample/vcek.der" >"$out/verify.out"
grep -q '^ACCEPTED' "$out/verify.out"
# No policy: verified, never ACCEPTED (exit status 3).
status=0
"$out/verify" "$sample/report.bin" 1664067328 "$sample/vcek.der" >"$out/verify.out" || status=$?
if [[ $status -ne 3 ]] || ! grep -q '^VERIFIED_UNAPPRAISED' "$out/verify.out"; then
    echo "ERROR: examples/c/verify without a policy did not say VERIFIED_UNAPPRAISED (exit $status)" >&2
    exit 1
fi
# A policy file that cannot be read, or is empty, is an error, never "no policy".
for bad in "$out/no-such-policy.toml" /dev/null; do
    status=0
    "$out/verify" -p "$bad" "$sample/report.bin" 1664067328 "$sample/vcek.der" >"$out/verify.out" 2>&1 || status=$?
    if [[ $status -ne 1 && $status -ne 2 ]] || grep -q '^ACCEPTED\|^VERIFIED' "$out/verify.out"; then
        echo "ERROR: examples/c/verify with the policy $bad did not fail (exit $status)" >&2
        exit 1
    fi
done
# A policy file with a NUL byte before a rule the sample fails: the whole file is read, so it
# is an invalid policy (exit 1), never its shorter, weaker first part (which accepts).
{
    sed -n '/^version/,/^permit_provisional/p' "$dev"
    printf '\0\n[snp.guest_policy]\nsmt = "must-not"\n'
} >"$out/nul-policy.toml"
status=0
"$out/verify" -p "$out/nul-policy.toml" "$sample/report.bin" 1664067328 "$sample/vcek.der" >"$out/verify.out" 2>&1 || status=$?
if [[ $status -ne 1 ]] || ! grep -q '^REJECTED TESSERA_RESULT_POLICY_INVALID' "$out/verify.out"; then
    echo "ERROR: examples/c/verify did not refuse a policy file with a NUL byte (exit $status)" >&2
    exit 1
fi
if "$out/verify" -p "$dev" "$sample/report.bin" 2208988800 "$sample/vcek.der" >"$out/verify.out"; then
    echo "ERROR: examples/c/verify accepted the sample long after its VCEK expired" >&2
    exit 1
fi

step "go test (examples/go, cgo through pkg-config)"
(
    cd examples/go
    export TESSERA_EXAMPLES="$root/examples" TESSERA_TEST_BROKER="$broker"
    go test -count=1 ./...
)
echo "ffi tests passed"
