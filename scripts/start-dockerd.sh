#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine. There is no systemd here (nor in CI), so when
# `docker info` fails we start `dockerd` ourselves, detached, and wait until it answers.
# Idempotent: exits 0 at once when the engine already answers.
# Environment: AIRLOCK_DOCKERD_LOG (default /var/log/airlock-dockerd.log),
#              AIRLOCK_DOCKERD_TIMEOUT seconds to wait (default 60), DOCKERD_ARGS extra flags.
set -euo pipefail

log="${AIRLOCK_DOCKERD_LOG:-/var/log/airlock-dockerd.log}"
timeout_s="${AIRLOCK_DOCKERD_TIMEOUT:-60}"
pidfile=/var/run/docker.pid

engine_answers() { docker info >/dev/null 2>&1; }

# A pid file survives a killed or crashed dockerd (and a restored machine); dockerd refuses to start
# while it names a live process, and a recycled pid may name an unrelated one.
pid_is_dockerd() {
  local pid="$1"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]
}

if engine_answers; then
  echo "dockerd: already running"
  exit 0
fi

command -v docker >/dev/null 2>&1 || { echo "start-dockerd: the docker client is missing (apt-get install docker.io)" >&2; exit 1; }
command -v dockerd >/dev/null 2>&1 || { echo "start-dockerd: dockerd is missing (apt-get install docker.io)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "start-dockerd: starting dockerd needs root (run: sudo $0)" >&2
  exit 1
fi

pid=""
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if pid_is_dockerd "$pid"; then
    # A live dockerd that does not answer yet is still starting (or stuck): wait for it rather
    # than start a second one that would fight over /var/lib/docker.
    echo "dockerd: pid $pid is running but not answering yet; waiting"
  else
    echo "dockerd: removing stale $pidfile (pid ${pid:-none} is not dockerd)"
    rm -f "$pidfile"
    pid=""
  fi
fi

if [ -z "$pid" ]; then
  # dockerd supervises its own containerd and reuses one its pid file names if that pid is alive;
  # after a hard stop the pid may belong to an unrelated process by now.
  cpidfile=/var/run/docker/containerd/containerd.pid
  cpid="$(cat "$cpidfile" 2>/dev/null || true)"
  if [ -n "$cpid" ] && [ "$(cat "/proc/$cpid/comm" 2>/dev/null || true)" != containerd ]; then
    rm -f "$cpidfile"
  fi
  mkdir -p "$(dirname "$log")"
  echo "dockerd: starting (log: $log)"
  # setsid + nohup: the engine must outlive this script, its terminal and its process group.
  # shellcheck disable=SC2086 # DOCKERD_ARGS is a flag list on purpose
  setsid nohup dockerd ${DOCKERD_ARGS:-} >>"$log" 2>&1 </dev/null &
  pid=$!
fi

deadline=$(( $(date +%s) + timeout_s ))
until engine_answers; do
  # setsid normally execs in place (so $! is dockerd); the pid file covers the case where it forked.
  if ! kill -0 "$pid" 2>/dev/null && ! pid_is_dockerd "$(cat "$pidfile" 2>/dev/null || true)"; then
    echo "start-dockerd: dockerd (pid $pid) exited before answering; last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "start-dockerd: dockerd (pid $pid) did not answer within ${timeout_s}s; last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "dockerd: ready (pid $pid)"
