#!/usr/bin/env bash
# Regenerate ffi/include/tessera.h with cbindgen and fail when it differs from the committed one
# (the header drifted from ffi/src). `--write` updates the committed header instead.
# Needs cbindgen (`cargo install cbindgen --locked`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cbindgen >/dev/null; then
    echo "cbindgen not found: cargo install cbindgen --locked" >&2
    exit 1
fi
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
cbindgen --quiet --config cbindgen.toml --crate tessera-ffi --output "$fresh" .
if [[ ${1:-} == --write ]]; then
    cp "$fresh" include/tessera.h
    echo "wrote ffi/include/tessera.h"
elif ! diff -u include/tessera.h "$fresh"; then
    echo "ERROR: ffi/include/tessera.h is out of date: run ffi/check-header.sh --write" >&2
    exit 1
else
    echo "ffi/include/tessera.h is up to date"
fi
