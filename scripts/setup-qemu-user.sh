#!/usr/bin/env bash
# Foreign-architecture maintainer scripts: Debian's qemu-user-static, registered with binfmt_misc for
# aarch64 (flag F: it works inside the chroots where package managers run scripts). Needs root; the
# registration is the kernel's, so it lasts until the machine restarts. Without it the upgrade tests
# of aarch64 machines say "solver only".
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup-qemu-user: not root: aarch64 upgrade tests stay solver-only" >&2
  exit 0
fi
cd "$(dirname "$0")/.."
. scripts/debs.sh
install_debs qemu-user-static
bm=/proc/sys/fs/binfmt_misc
if ! mountpoint -q "$bm"; then
  mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null || { echo "setup-qemu-user: cannot mount $bm: skipped" >&2; exit 0; }
fi
if [ ! -e "$bm/qemu-aarch64" ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$bm/register" 2>/dev/null \
    || { echo "setup-qemu-user: cannot register qemu-aarch64: skipped" >&2; exit 0; }
fi
