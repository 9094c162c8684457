#!/usr/bin/env bash
# Builds `airlock-relay:busybox`, the port-forwarding network helper (src/backend/docker/relay.ts)
# that the Docker backend starts next to a workload container (sharing its network namespace) when
# a connection uses `ssh -L` / `ssh -R`. No registry: a root filesystem with Debian's busybox-static
# and only the applets the helper scripts use, imported with `docker import`; it runs as nobody
# (65534). Idempotent: does nothing when the image exists with the current version label (pass
# --force to rebuild). ENGINE=podman builds it for Podman.
set -euo pipefail
version=1
force=false
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done
tag="${AIRLOCK_RELAY_IMAGE:-airlock-relay:busybox}"
engine="${ENGINE:-docker}"
if ! $force && [ "$("$engine" image inspect -f '{{index .Config.Labels "airlock.relay-version"}}' "$tag" 2>/dev/null || true)" = "$version" ]; then
  exit 0
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  busybox=/bin/busybox
fi
[ -x "$busybox" ] || { echo "busybox-static is not installed (apt-get install -y busybox-static)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
# What relay-scripts.ts runs (kill, echo, test, read are shell builtins).
for applet in sh nc cat awk sed tr ls readlink mktemp mkfifo rm sleep usleep; do
  "$root/bin/busybox" --list | grep -qx "$applet" || { echo "busybox lacks the $applet applet" >&2; exit 1; }
  ln -s busybox "$root/bin/$applet"
done
printf 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'nogroup:x:65534:\n' > "$root/etc/group"
tar -C "$root" -c . | "$engine" import \
  --change 'ENV PATH=/bin' --change 'USER 65534:65534' --change 'WORKDIR /tmp' \
  --change "LABEL airlock.relay-version=$version" --change 'CMD ["sleep", "2147483647"]' \
  - "$tag" >/dev/null
echo "built $tag"
