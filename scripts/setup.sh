#!/usr/bin/env bash
# All set-up on a fresh Debian 12 machine (as root): Debian tools, then a venv that sees Debian's
# python3-rpm/-solv/-createrepo-c bindings, then bindistro itself. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(rpm createrepo-c dnf dnf-plugins-core python3-solv python3-rpm python3-createrepo-c gnupg
      abigail-tools dpkg-dev apt apt-utils zstd busybox-static binutils git python3-venv chromium
      qemu-system-x86 qemu-system-arm rpm2cpio gcc postgresql)
. scripts/debs.sh
install_debs "${DEBS[@]}"

# SAMPLE boot images: Debian's kernels and static busybox for amd64 and arm64, cached outside the repo
bash scripts/fetch-boot.sh
# opkg 0.6.3 (OE scarthgap's opkg-native) for the ipk upgrade tests, built from ../shared/tools
bash scripts/build-opkg.sh
# qemu-user for aarch64 maintainer scripts in the upgrade tests
bash scripts/setup-qemu-user.sh

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import bindistro, bindistro_sample, pytest, hypothesis, xdist, jsonschema, alembic, psycopg, boto3, moto, jinja2, playwright" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
fi
# bytecode of our own modules, as pip writes it for what it installs: an editable install's is
# written on first import, unless PYTHONDONTWRITEBYTECODE is set (as on some CI images), and then
# every command compiles what it imports again (30-100 ms a command, measured)
.venv/bin/python -m compileall -q bindistro bindistro_sample >/dev/null

# The SAMPLE distro's packages (real ipk/rpm/deb from opkg-build, rpmbuild, dpkg-deb), built once per
# version of their writers into the cache (~/.cache/bindistro/sample-packages): the demo (README's
# first command) and the tests take them from there. A run of the demo without boots builds them all;
# then the first releases of world-sized samples (`--packages`) at the sizes the tests and the bench
# smokes use.
stamp=$(.venv/bin/python -c "from bindistro_sample import pkgcache; print(pkgcache.warm_stamp())")
if [ -z "${BINDISTRO_SAMPLE_NOCACHE:-}" ] && [ ! -e "$stamp" ]; then
  echo "building the SAMPLE distro's packages into the cache (minutes, once)..."
  tmp=$(mktemp -d -p "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}" )")
  if ! ( .venv/bin/bindistro demo --no-boot --out "$tmp/demo" &&
         for n in 1 2; do .venv/bin/bindistro sample-build "$tmp/w500" --release $n --packages 500 || exit 1; done &&
         for n in 1 2 3; do .venv/bin/bindistro sample-build "$tmp/w300" --release $n --packages 300 --formats ipk || exit 1; done
       ) > "$tmp/log" 2>&1; then
    tail -30 "$tmp/log"; rm -rf "$tmp"; exit 1
  fi
  rm -rf "$tmp"
  touch "$stamp"
fi
