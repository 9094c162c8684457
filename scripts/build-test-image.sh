#!/usr/bin/env bash
# Builds the tiny test image `airlock-test:busybox` without any registry: a root filesystem made
# from Debian's busybox-static, with a non-root user `airlock` (uid 1000), imported with
# `docker import`. Idempotent: does nothing when the image already exists (pass --force to rebuild).
#
# --no-user builds the variant `airlock-test:busybox-nouser` for user-detection tests: the same
# file system but no `USER` (so the image runs as root unless the gateway picks a user from
# /etc/passwd) and an `ENTRYPOINT ["/bin/false"]`, like a CI image's entrypoint script, which the
# gateway must override.
set -euo pipefail
force=false
nouser=false
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    --no-user) nouser=true ;;
    *) echo "usage: $0 [--force] [--no-user]" >&2; exit 2 ;;
  esac
done
if $nouser; then
  tag="${AIRLOCK_TEST_IMAGE_NOUSER:-airlock-test:busybox-nouser}"
else
  tag="${AIRLOCK_TEST_IMAGE:-airlock-test:busybox}"
fi
engine="${ENGINE:-docker}"
if ! $force && "$engine" image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  busybox=/bin/busybox
fi
[ -x "$busybox" ] || { echo "busybox-static is not installed (apt-get install -y busybox-static)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,home/airlock,root,proc,sys,dev,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
airlock:x:1000:1000:Airlock user:/home/airlock:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
airlock:x:1000:
nogroup:x:65534:
GROUP
chown 1000:1000 "$root/home/airlock"
changes=(--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'WORKDIR /home/airlock' --change 'CMD ["/bin/sh"]')
if $nouser; then
  changes+=(--change 'ENTRYPOINT ["/bin/false"]')
else
  changes+=(--change 'USER airlock')
fi
tar -C "$root" -c . | "$engine" import "${changes[@]}" - "$tag" >/dev/null
echo "built $tag"
