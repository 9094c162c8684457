#!/usr/bin/env bash
# Builds the demo image `airlock-demo:latest` without any registry: a small but real Debian made by
# `debootstrap --variant=minbase` from the Debian mirror this machine's apt already uses, with a
# non-root user `dev` (uid 1000, /bin/bash, /home/dev), then `docker import`ed.
#
# Idempotent: does nothing when the image exists and was built from the current recipe (the recipe
# hash is kept in the image label airlock.demo.recipe). The finished root filesystem is cached as a
# tarball under $AIRLOCK_CACHE_DIR (default /var/cache/airlock), and the downloaded .debs beside it,
# so a rebuild after `docker rmi` or `docker system prune` takes seconds.
#
# Usage: build-demo-image.sh [--force] [--fresh]
#   --force  re-import the image even if it exists (from the cached root filesystem if there is one)
#   --fresh  also rebuild the root filesystem with debootstrap (picks up new package versions)
# Environment: AIRLOCK_DEMO_IMAGE (tag), AIRLOCK_DEMO_SUITE (default bookworm),
#              AIRLOCK_DEBIAN_MIRROR (default: the mirror apt uses), AIRLOCK_CACHE_DIR, ENGINE.
#
# When no mirror answers (or debootstrap fails) it falls back, with a warning, to a busybox-based
# image with the same user, so the quick start still works; a later run retries the real build as
# soon as the mirror answers.
set -euo pipefail

tag="${AIRLOCK_DEMO_IMAGE:-airlock-demo:latest}"
suite="${AIRLOCK_DEMO_SUITE:-bookworm}"
engine="${ENGINE:-docker}"
cache="${AIRLOCK_CACHE_DIR:-/var/cache/airlock}"
force=0
fresh=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --fresh) force=1; fresh=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-demo-image: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# What goes into the image. Changing any of this changes the recipe hash, so the next run rebuilds.
# minbase already has bash, coreutils, grep, sed, tar, gzip, findutils and passwd (for useradd).
packages="ca-certificates,procps,less,nano,iproute2,openssh-sftp-server"
recipe_version=1
recipe="$(printf '%s\n' "$recipe_version" "$suite" "$packages" | sha256sum | cut -c1-12)"
rootfs_tar="$cache/demo-rootfs-$suite-$recipe.tar.gz"
started=$(date +%s)

log() { echo "build-demo-image: $*"; }
warn() { echo "build-demo-image: WARNING: $*" >&2; }

image_label() { "$engine" image inspect -f "{{ index .Config.Labels \"$1\" }}" "$tag" 2>/dev/null || true; }

# The URI of the first enabled `deb` source for "$suite" in apt's own configuration, in apt's order:
# sources.list, then sources.list.d/*.list and *.sources (deb822). Prints nothing if none matches.
apt_mirror_for_suite() {
  local want="$1" f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v want="$want" '
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }   # skip "[ options ]"
        if ($(i + 1) == want) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v want="$want" '
      BEGIN { RS = ""; FS = "\n" }                                     # one stanza per record
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (j = 1; j <= NF; j++) {
          line = $j
          if (line ~ /^[ \t]*#/ || line !~ /:/) continue
          key = tolower(substr(line, 1, index(line, ":") - 1))
          val = substr(line, index(line, ":") + 1)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "enabled") enabled = tolower(val)
        }
        gsub(/[ \t]/, "", enabled)
        if (enabled == "no" || (" " types " ") !~ /[ \t]deb[ \t]/) next
        n = split(suites, s, /[ \t]+/)
        for (k = 1; k <= n; k++) if (s[k] == want) { split(uris, u, /[ \t]+/); print (u[1] != "" ? u[1] : u[2]); exit }
      }' "$f"
  done
}

pick_mirror() {
  if [ -n "${AIRLOCK_DEBIAN_MIRROR:-}" ]; then echo "$AIRLOCK_DEBIAN_MIRROR"; return; fi
  local m
  m="$(apt_mirror_for_suite "$suite" | grep -E '^(https?|ftp|file):' | head -n 1 || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

# A bounded reachability check, so a machine without network falls back in seconds instead of
# waiting out debootstrap's own (long) download time-outs.
mirror_answers() {
  local url="${1%/}/dists/$suite/Release"
  case "$url" in
    file:*) [ -r "${url#file://}" ] ;;
    *) wget -q --timeout=10 --tries=1 -O /dev/null "$url" 2>/dev/null ;;
  esac
}

import_rootfs() { # tarball flavor recipe
  local old_id new_id
  old_id="$("$engine" image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
  "$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'USER dev' \
    --change 'WORKDIR /home/dev' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL airlock.demo.flavor=$2 airlock.demo.recipe=$3" \
    "$1" "$tag" >/dev/null
  new_id="$("$engine" image inspect -f '{{.Id}}' "$tag")"
  # The replaced image would otherwise linger as a dangling <none> layer of a few dozen MB.
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then "$engine" rmi "$old_id" >/dev/null 2>&1 || true; fi
}

work=""
cleanup() {
  [ -n "$work" ] && [ -d "$work" ] || return 0
  # debootstrap mounts /proc and /sys inside the target; a failed run can leave them mounted, and
  # rm -rf must never walk into a mounted host filesystem.
  awk -v p="$work/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

build_busybox_fallback() {
  local busybox root
  busybox="$(command -v busybox || true)"
  if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then busybox=/bin/busybox; fi
  [ -x "$busybox" ] || { echo "build-demo-image: busybox-static is not installed either (apt-get install -y busybox-static)" >&2; exit 1; }
  root="$work/busybox-root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,home/dev,root,proc,sys,dev,var/tmp}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  # Airlock's default shell command is /bin/bash; Debian's busybox has no `bash` applet, so a
  # wrapper hands over to its ash.
  printf '#!/bin/sh\nexec /bin/sh "$@"\n' > "$root/bin/bash"
  chmod 755 "$root/bin/bash"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'dev:x:1000:1000:Airlock demo user:/home/dev:/bin/bash' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'dev:x:1000:' 'nogroup:x:65534:' > "$root/etc/group"
  chown 1000:1000 "$root/home/dev"
  tar -C "$root" --numeric-owner -cf "$work/busybox-rootfs.tar" .
  import_rootfs "$work/busybox-rootfs.tar" busybox busybox-fallback
  warn "built $tag as a busybox stand-in (no bash, no sftp-server); run $0 --fresh once the Debian mirror answers"
}

fallback() {
  warn "$1"
  warn "falling back to a busybox-based demo image"
  build_busybox_fallback
  exit 0
}

mkdir -p "$cache"
# Two setups at once (two terminals, CI beside a developer) must not build into the same tag.
exec 9>"$cache/build-demo-image.lock"
flock 9

mirror="$(pick_mirror)"
if [ "$force" -eq 0 ] && "$engine" image inspect "$tag" >/dev/null 2>&1; then
  current="$(image_label airlock.demo.recipe)"
  if [ "$current" = "$recipe" ]; then
    exit 0
  fi
  if [ "$current" = busybox-fallback ] && ! mirror_answers "$mirror"; then
    exit 0 # still no mirror: keep the stand-in quietly
  fi
  log "$tag is out of date (recipe '${current:-none}', want '$recipe'); rebuilding"
fi

work="$(mktemp -d "$cache/build.XXXXXX")"

if [ "$fresh" -eq 0 ] && [ -s "$rootfs_tar" ]; then
  import_rootfs "$rootfs_tar" "debian-$suite" "$recipe"
  log "imported $tag from cached $rootfs_tar in $(( $(date +%s) - started ))s"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || fallback "debootstrap is not installed (apt-get install -y debootstrap)"
[ "$(id -u)" -eq 0 ] || { echo "build-demo-image: debootstrap needs root (run: sudo $0)" >&2; exit 1; }
mirror_answers "$mirror" || fallback "the Debian mirror $mirror does not answer for '$suite'"

root="$work/root"
debs="$cache/debootstrap-debs"
mkdir -p "$debs"
log "debootstrap $suite from $mirror (log: $cache/debootstrap.log)"
if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$debs" \
     "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1; then
  tail -n 15 "$cache/debootstrap.log" >&2 || true
  fallback "debootstrap failed (full log: $cache/debootstrap.log)"
fi

chroot "$root" useradd --create-home --uid 1000 --user-group --shell /bin/bash --comment 'Airlock demo user' dev

# Slim it the way Debian's own container images are: no apt lists or .deb cache, no docs beyond
# copyright files, no man pages or translations, and keep it that way for later apt installs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian "$root"/usr/share/linda
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
find "$root/var/log" -type f -exec truncate -s 0 {} +
cat > "$root/etc/dpkg/dpkg.cfg.d/airlock-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
# The engine provides these per container; debootstrap copied the build machine's into the tree.
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
: > "$root/etc/machine-id"

tar -C "$root" --numeric-owner -c . | gzip -1 > "$rootfs_tar.tmp"
mv -f "$rootfs_tar.tmp" "$rootfs_tar"
# Older recipes' tarballs are dead weight now.
find "$cache" -maxdepth 1 -name "demo-rootfs-*.tar.gz" ! -name "$(basename "$rootfs_tar")" -delete

import_rootfs "$rootfs_tar" "debian-$suite" "$recipe"
log "built $tag (Debian $suite, user dev) in $(( $(date +%s) - started ))s; rootfs cached at $rootfs_tar"
