#!/usr/bin/env bash
# The quick start in one command: prepares the machine (scripts/setup.sh), lets the current user log
# in as `demo` with their own SSH key, then runs the gateway in the foreground on 127.0.0.1:2222
# (the built-in defaults: authorized keys from .airlock/authorized_keys, image airlock-demo:latest).
# Usage: scripts/quickstart.sh [--no-serve]   (--no-serve: prepare everything, print, don't start)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
serve=1
for arg in "$@"; do
  case "$arg" in
    --no-serve) serve=0 ;;
    *) echo "quickstart: unknown argument '$arg' (only --no-serve)" >&2; exit 2 ;;
  esac
done

"$repo/scripts/setup.sh"

# The demo login uses the key `ssh` offers by default, so no -i flag is needed to connect.
key="$HOME/.ssh/id_ed25519"
if [ ! -f "$key.pub" ]; then
  if [ -f "$key" ]; then
    ssh-keygen -y -f "$key" > "$key.pub" # private key without its .pub: derive it
  else
    mkdir -p "$HOME/.ssh"
    chmod 700 "$HOME/.ssh"
    ssh-keygen -q -t ed25519 -N '' -C "$(id -un)@airlock-quickstart" -f "$key"
    echo "quickstart: generated $key"
  fi
fi

# .airlock/authorized_keys lines are `<user> <algo> <base64> [comment]` (not OpenSSH's format: the
# first field names the login the key may use).
read -r algo blob _ < "$key.pub"
mkdir -p .airlock
chmod 700 .airlock
keys=.airlock/authorized_keys
if [ -f "$keys" ] && awk -v b="$blob" '$1 == "demo" && $3 == b { found = 1 } END { exit !found }' "$keys"; then
  :
else
  printf 'demo %s %s %s\n' "$algo" "$blob" "$(id -un)@quickstart" >> "$keys"
  echo "quickstart: added your key ($key.pub) to $keys for user demo"
fi
chmod 600 "$keys"

cat <<EOF

Airlock listens on 127.0.0.1:2222. In another terminal, connect with:

    ssh -p 2222 demo@127.0.0.1

(the first time, ssh asks you to trust the gateway's host key: answer yes). Each connection gets
its own fresh container from airlock-demo:latest (Debian, user dev), removed when you log out.
Stop the gateway with Ctrl-C.

EOF

if [ "$serve" -eq 0 ]; then
  echo "quickstart: --no-serve given; start it yourself with: node dist/cli/main.js serve"
  exit 0
fi
[ -f dist/cli/main.js ] || { echo "quickstart: dist/cli/main.js is missing: the build did not produce the CLI" >&2; exit 1; }
exec node dist/cli/main.js serve
