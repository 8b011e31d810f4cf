#!/usr/bin/env bash
# Build opkg 0.6.3 (what OE scarthgap ships as opkg-native) from ../shared/tools or $BINDISTRO_OPKG_SRC,
# with gpg, curl, libsolv, xz and zstd, into the project's cache. Device paths are compiled in
# (/etc/opkg, /var/lib/opkg), resolved under the offline root given with `-o ROOT`, as OE's rootfs does.
# Without a source tarball this does nothing: bindistro then says once that it has no opkg.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${BINDISTRO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bindistro}/opkg"
SRC="${BINDISTRO_OPKG_SRC:-$(ls ../shared/tools/opkg-*.tar.gz 2>/dev/null | head -1 || true)}"
if [ -z "$SRC" ] || [ ! -f "$SRC" ]; then
  echo "build-opkg: no opkg source (../shared/tools/opkg-*.tar.gz or BINDISTRO_OPKG_SRC); skipped" >&2
  exit 0
fi
stamp="$(sha256sum "$SRC" | cut -c1-16)"
if [ -x "$CACHE/bin/opkg" ] && [ "$(cat "$CACHE/source-sha256" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
DEBS=(autoconf automake libtool libtool-bin pkg-config libarchive-dev libcurl4-openssl-dev libgpgme-dev
      libsolv-dev libsolvext-dev libssl-dev libzstd-dev liblzma-dev make gcc)
. scripts/debs.sh
install_debs "${DEBS[@]}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$SRC" -C "$work"
cd "$work"/opkg-*
echo "build-opkg: building $(basename "$SRC") into $CACHE" >&2
./autogen.sh >/dev/null 2>&1
./configure -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var --disable-shared \
  --with-libsolv --enable-gpg --enable-curl --enable-sha256 --enable-zstd --enable-xz >/dev/null
make -s -j"$(nproc)" >/dev/null 2>&1
make -s install DESTDIR="$work/dest" >/dev/null
rm -rf "$CACHE.tmp" && mkdir -p "$CACHE.tmp/bin"
cp "$work/dest/usr/bin/opkg" "$CACHE.tmp/bin/opkg"
echo "$stamp" > "$CACHE.tmp/source-sha256"
rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"
"$CACHE/bin/opkg" --version >&2 || true
