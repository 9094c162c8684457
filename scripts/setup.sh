#!/usr/bin/env bash
# Prepares this machine to build, run and test Airlock: Debian packages, Node dependencies, the
# build, a running Docker engine and the two images the tests and the quick start use.
# Idempotent and quick to re-run: every step checks first and skips what is already done.
# Works on a fresh Debian 12 as root (or as a user with sudo). See docs/setup.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# Why each package is here (docs/setup.md says more):
#   docker.io          dockerd + client: every connection gets a container
#   busybox-static     the tiny test image airlock-test:busybox and the port-forwarding helper
#                      image airlock-relay:busybox
#   debootstrap        builds the Debian demo image airlock-demo:latest without a registry
#   openssh-client     ssh/ssh-keygen/sftp: the tests drive the gateway with the real client
#   openssh-server     its sftp-server, and sshd as the SSH proxy backend's upstream in tests
#   bsdutils           `script`, to give the ssh client a real terminal in tests
#   tmux               interactive (pty) tests: send-keys / capture-pane
#   redis-server       the broker's session store in tests
#   asciinema          plays back and checks the asciicast recordings
#   file               tells a static busybox from a dynamic one when building the test image
#   prometheus         its `promtool check metrics` lints the gateway's /metrics in a test (on a
#                      host booted with systemd the package also enables a Prometheus server on
#                      :9090, and its recommended node exporter on :9100 — Airlock's default
#                      metrics.listen port; `systemctl disable --now prometheus
#                      prometheus-node-exporter` if you do not want them)
#   systemd            systemd-analyze verifies deploy/systemd/airlock.service in a test
#   jq curl            the CI templates in integrations/ use them; a test runs their scripts
#   podman catatonit   the Podman backend's tests (test/helpers/podman.ts starts its API service);
#                      catatonit is the init binary Podman needs for Init: true
packages=(docker.io busybox-static debootstrap openssh-client openssh-server bsdutils tmux
          redis-server asciinema file prometheus systemd jq curl podman catatonit)

started=$(date +%s)
step_started=$started
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
step() { step_started=$(date +%s); printf 'setup: %-22s ' "$1"; }
done_() { printf '%s (%ss)\n' "$1" "$(( $(date +%s) - step_started ))"; }

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing: run this script as root"
  as_root=(sudo)
fi

# --- 1. Debian packages -------------------------------------------------------------------------
step "debian packages"
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  done_ "all ${#packages[@]} present"
else
  printf 'installing %s\n' "${missing[*]}"
  install_started=$step_started
  # Recommends stay on: docker.io recommends apparmor, which dockerd needs on AppArmor kernels.
  apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # Lists may be missing or stale on a fresh machine: refresh them once, only when installing.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null \
    </dev/null || die "apt-get update failed"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install \
    "${missing[@]}" </dev/null >/tmp/airlock-apt.log 2>&1 \
    || { tail -n 20 /tmp/airlock-apt.log >&2; die "apt-get install failed (log: /tmp/airlock-apt.log)"; }
  step "debian packages"; step_started=$install_started; done_ "installed ${#missing[@]}"
fi

# --- 2. Node.js -----------------------------------------------------------------------------------
step "node"
command -v node >/dev/null 2>&1 \
  || die "Node.js >= 20 is required and 'node' is not on PATH (Debian 12's nodejs is 18: install Node 20+ from nodejs.org or NodeSource)"
node_version="$(node -p 'process.versions.node')"
[ "${node_version%%.*}" -ge 20 ] \
  || die "Node.js >= 20 is required, found $node_version (install Node 20+ from nodejs.org or NodeSource)"
command -v npm >/dev/null 2>&1 || die "npm is missing (it ships with Node.js; reinstall Node 20+)"
done_ "v$node_version, npm $(npm -v 2>/dev/null)"

# --- 3. npm dependencies --------------------------------------------------------------------------
step "npm dependencies"
# npm keeps its own record of what it installed in node_modules/.package-lock.json; a lock file
# newer than that record means the dependencies changed (git pull, branch switch).
if [ -f package-lock.json ]; then
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    printf 'npm ci\n'
    t=$step_started
    npm ci --no-audit --no-fund --loglevel=error
    step "npm dependencies"; step_started=$t; done_ "installed"
  else
    done_ "up to date"
  fi
else
  if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
    printf 'npm install (no package-lock.json)\n'
    t=$step_started
    npm install --no-audit --no-fund --loglevel=error
    step "npm dependencies"; step_started=$t; done_ "installed"
  else
    done_ "up to date"
  fi
fi

# --- 4. build -------------------------------------------------------------------------------------
step "build (dist/)"
# Rebuild only when a source or config file is newer than the last successful build. The stamp lives
# in node_modules/.cache, so `npm ci` (which empties node_modules) forces a rebuild too.
stamp=node_modules/.cache/airlock/build.stamp
if [ -f "$stamp" ] && [ -f dist/cli/main.js ] \
   && [ -z "$(find src tsconfig.json tsconfig.build.json package.json package-lock.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  done_ "up to date"
else
  build_out="$(npm run --silent build 2>&1)" || { echo; printf '%s\n' "$build_out" >&2; die "npm run build failed"; }
  mkdir -p "$(dirname "$stamp")"
  touch "$stamp"
  done_ "built"
fi

# --- 5. Docker engine -----------------------------------------------------------------------------
step "docker engine"
if docker info >/dev/null 2>&1; then
  done_ "running"
else
  echo
  "${as_root[@]}" "$repo/scripts/start-dockerd.sh"
fi
docker_cmd=(docker)
if [ "$(id -u)" -ne 0 ] && ! docker info >/dev/null 2>&1; then
  # The engine answers root but not us: not in the `docker` group.
  docker_cmd=("${as_root[@]}" docker)
  say "note: $(id -un) cannot use /var/run/docker.sock; building images with sudo (add yourself to the docker group)"
fi

# --- 6. images ------------------------------------------------------------------------------------
step "image airlock-test"
if "${docker_cmd[@]}" image inspect airlock-test:busybox >/dev/null 2>&1; then
  done_ "present"
else
  echo
  "${as_root[@]}" "$repo/scripts/build-test-image.sh"
fi
step "image airlock-relay"
# The port-forwarding network helper (src/backend/docker/relay.ts); the script is silent when the
# image is current.
relay_out="$("${as_root[@]}" "$repo/scripts/build-relay-image.sh" 2>&1)" || { echo; printf '%s\n' "$relay_out" >&2; die "building airlock-relay:busybox failed"; }
done_ "${relay_out:-present}"
step "image airlock-demo"
# The script is silent when the image is current; otherwise stream its progress (a first build runs
# debootstrap for about a minute).
"${as_root[@]}" "$repo/scripts/build-demo-image.sh" 2>&1 \
  | { if IFS= read -r first; then echo; printf '%s\n' "$first"; cat; else done_ "present"; fi; } \
  || die "building airlock-demo:latest failed"

say "ready in $(( $(date +%s) - started ))s"
