#!/usr/bin/env bash
# The C API's tests: build tessera-ffi, check the header for drift, compile the C tests under
# ffi/tests/ with cc against the static library, run them, run them under valgrind, build them
# once with AddressSanitizer and run them, then run the Go binding's test (examples/go).
# Respects CARGO_TARGET_DIR. Needs cc, valgrind, go (Debian: build-essential valgrind
# golang-go) and cbindgen (installed with cargo when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
lib_dir=$target/debug
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf -- '-- %s\n' "$*"; }

step "cargo build -p tessera-ffi (the library and the test broker)"
cargo build --locked -p tessera-ffi --lib --example test-broker
broker=$lib_dir/examples/test-broker

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
}

step "compile the C tests (cc, static library)"
mkdir -p "$out/plain" "$out/asan"
for t in verify errors threads secret; do
    cc "${cflags[@]}" "ffi/tests/$t.c" "$lib_dir/libtessera_ffi.a" "${libs[@]}" -o "$out/plain/$t"
done

step "run the C tests"
run_tests "$out/plain"

step "run the C tests under valgrind"
run_tests "$out/plain" valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

step "compile and run the C tests with AddressSanitizer"
for t in verify errors threads secret; do
    cc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer "ffi/tests/$t.c" \
        "$lib_dir/libtessera_ffi.a" "${libs[@]}" -o "$out/asan/$t"
done
run_tests "$out/asan"

step "also link against the shared library"
cc "${cflags[@]}" ffi/tests/errors.c -L "$lib_dir" -ltessera_ffi -Wl,-rpath,"$lib_dir" -o "$out/plain/errors-shared"
"$out/plain/errors-shared"

step "go test (examples/go)"
if [[ -d examples/go ]]; then
    (
        cd examples/go
        export CGO_CFLAGS="-I$root/ffi/include"
        export CGO_LDFLAGS="$lib_dir/libtessera_ffi.a -lpthread -ldl -lm"
        export TESSERA_EXAMPLES="$root/examples" TESSERA_TEST_BROKER="$broker"
        export GOFLAGS=-mod=mod GOCACHE="${GOCACHE:-$out/gocache}"
        go test -count=1 ./...
    )
fi
echo "ffi tests passed"
