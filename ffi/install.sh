#!/usr/bin/env bash
# Build tessera-ffi in release mode and install the C API:
#   $DESTDIR$PREFIX/include/tessera.h
#   $DESTDIR$PREFIX/lib/libtessera_ffi.{so,a}
#   $DESTDIR$PREFIX/lib/pkgconfig/tessera.pc
# PREFIX defaults to /usr/local; DESTDIR (for packaging) to nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
target=${CARGO_TARGET_DIR:-$(pwd)/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

cargo build --release --locked -p tessera-ffi
install -d "$DESTDIR$PREFIX/include" "$DESTDIR$PREFIX/lib/pkgconfig"
install -m 644 ffi/include/tessera.h "$DESTDIR$PREFIX/include/"
install -m 755 "$target/release/libtessera_ffi.so" "$DESTDIR$PREFIX/lib/"
install -m 644 "$target/release/libtessera_ffi.a" "$DESTDIR$PREFIX/lib/"
sed -e "s|@PREFIX@|$PREFIX|" -e "s|@LIBDIR@|\${prefix}/lib|" \
    -e "s|@INCLUDEDIR@|\${prefix}/include|" -e "s|@VERSION@|$version|" \
    ffi/tessera.pc.in >"$DESTDIR$PREFIX/lib/pkgconfig/tessera.pc"
echo "installed under $DESTDIR$PREFIX (pkg-config: PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig)"
