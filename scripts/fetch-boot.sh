#!/usr/bin/env bash
# Fetch what the sample boot images need and cache it: Debian's kernel and static busybox for each
# architecture (amd64, arm64). A private apt state per architecture, so the host's dpkg is left alone.
# Sample data only: a real Yocto image brings its own kernel.
set -euo pipefail
CACHE="${BINDISTRO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bindistro}/boot"
for arch in amd64 arm64; do
  out="$CACHE/$arch"
  if [ -s "$out/vmlinuz" ] && [ -s "$out/busybox" ]; then continue; fi
  work="$CACHE/apt-$arch"
  mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" "$work/debs" "$out"
  opts=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
        -o "Dir::State=$work/state" -o "Dir::Cache=$work/cache" -o "Dir::State::status=/dev/null"
        -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -qq)
  echo "fetch-boot: $arch kernel and busybox (Debian packages, cached in $out)" >&2
  apt-get "${opts[@]}" update
  kpkg=$(apt-cache "${opts[@]}" depends "linux-image-$arch" | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$work/debs" && apt-get "${opts[@]}" download "$kpkg" busybox-static)
  rm -rf "$work/x" && mkdir -p "$work/x"
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/x"; done
  cp "$(ls "$work"/x/boot/vmlinuz-* | head -1)" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
  cp "$work/x/bin/busybox" "$out/busybox.tmp" && mv "$out/busybox.tmp" "$out/busybox"
  echo "$kpkg" > "$out/kernel-package"
  rm -rf "$work/x" "$work/debs"
done
