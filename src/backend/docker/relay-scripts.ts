/**
 * The shell the network-helper sidecar runs (see relay.ts). Plain busybox `sh`, `nc` (the small
 * nc.c applet: `-l`, `-ll -e PROG`, `-w`; stdin EOF → shutdown(SHUT_WR), network EOF → exit),
 * `awk`, `mkfifo`, `mktemp`, `usleep`. User data (host, port) is only ever a positional
 * argument, never part of a script. Every line the gateway reads starts with `airlock-relay-`
 * and goes to stderr (nc's own error messages go there too).
 *
 * Why /proc: the small nc prints nothing on success, so the scripts find nc's socket inodes in
 * /proc/<pid>/fd and look up their TCP state in /proc/net/tcp{,6} (the sidecar shares the
 * workload's network namespace, so those files list the workload's sockets): ESTABLISHED (01)
 * after connect, LISTEN (0A) after bind+listen.
 *
 * ash quirk: a background job in a non-interactive shell gets stdin from /dev/null even with an
 * explicit `<&0`, so stdin is duplicated to fd 3 first and given to the job from there.
 */

/** Exits 0 when one of the socket inodes of process $1 is in TCP state $2 (hex, e.g. 01, 0A). */
const SOCKET_STATE_FN = `sockstate() {
  inodes=$(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\\[\\([0-9]*\\)\\]$/\\1/p' | tr '\\n' ' ')
  [ -n "$inodes" ] || return 1
  awk -v want=" $inodes" -v st="$2" '$4 == st && index(want, " " $10 " ") { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}`;

export const RELAY_LINE = {
  connected: 'airlock-relay-connected',
  listening: 'airlock-relay-listening',
  accept: 'airlock-relay-accept',
} as const;

/**
 * `ssh -L` (direct-tcpip): `sh -c CONNECT_SCRIPT airlock-connect HOST PORT TIMEOUT_S`. stdin and
 * stdout are the TCP stream (nc's own loop: half-close both ways); `airlock-relay-connected` on
 * stderr once the connection is established, so the gateway confirms the SSH channel only then
 * (as sshd does after connect()), with nc's PID for KILL_CONNECT_SCRIPT. Exits with nc's status: 0 after the peer closed, 1 when the
 * connect failed (nc's reason on stderr).
 */
export const CONNECT_SCRIPT = `${SOCKET_STATE_FN}
exec 3<&0
nc -w "$3" -- "$1" "$2" <&3 3<&- &
pid=$!
exec 3<&-
delay=500
while kill -0 "$pid" 2>/dev/null; do
  if sockstate "$pid" 01; then echo "${RELAY_LINE.connected} $pid" >&2; break; fi
  usleep "$delay"
  [ "$delay" -lt 100000 ] && delay=$((delay * 2))
done
wait "$pid"`;

/**
 * Runs once per accepted connection (nc -ll -e): stdin/stdout are the accepted socket, stderr is
 * the listener exec's stderr, which the gateway reads. Only connections made to a loopback
 * address are relayed (like sshd's default GatewayPorts=no; busybox nc can only bind every
 * address), others are closed at once. A relayed connection gets a directory with two FIFOs and
 * is announced as `airlock-relay-accept <dir> <peer address> <peer port>`; the gateway then opens
 * `up` (socket → gateway) and `down` (gateway → socket) with one exec each. The gateway's EOF on
 * `down` closes the whole socket (cat cannot half-close it); the client's EOF ends `up` only.
 */
export const ACCEPT_SCRIPT = `ino=$(readlink /proc/self/fd/0)
ino=\${ino#socket:[}
ino=\${ino%]}
peer=$(awk -v ino="$ino" '
function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
function v4(h) { return hex(substr(h, 7, 2)) "." hex(substr(h, 5, 2)) "." hex(substr(h, 3, 2)) "." hex(substr(h, 1, 2)) }
$10 == ino {
  split($2, l, ":"); split($3, r, ":")
  if (length(l[1]) == 8) { la = l[1]; ra = r[1] }
  else if (substr(l[1], 1, 24) == "0000000000000000FFFF0000") { la = substr(l[1], 25, 8); ra = substr(r[1], 25, 8) }
  else if (l[1] == "00000000000000000000000001000000") { print "::1", hex(r[2]); exit 0 }
  else exit 1
  if (substr(la, 7, 2) != "7F") exit 1
  print v4(ra), hex(r[2]); exit 0
}' /proc/net/tcp6 /proc/net/tcp) || exit 0
[ -n "$peer" ] || exit 0
d=$(mktemp -d /tmp/airlock-relay.XXXXXX) || exit 1
mkfifo "$d/up" "$d/down" || exit 1
echo "${RELAY_LINE.accept} \${d##*/} $peer" >&2
exec 3<&0
cat <&3 3<&- > "$d/up" &
up=$!
exec 3<&-
cat "$d/down"
kill "$up" 2>/dev/null
rm -rf "$d"`;

/**
 * `ssh -R` (tcpip-forward): `sh -c LISTEN_SCRIPT airlock-listen PORT ACCEPT_SCRIPT`. Prints
 * `airlock-relay-listening` once nc's socket is in LISTEN state, or exits 1 with nc's reason
 * ("bind: Address in use"). The gateway cancels by closing stdin: nc is killed, connections
 * already accepted go on (as with sshd's cancel-tcpip-forward).
 */
export const LISTEN_SCRIPT = `${SOCKET_STATE_FN}
nc -ll -p "$1" -e sh -c "$2" </dev/null &
pid=$!
delay=500
until sockstate "$pid" 0A; do
  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; exit 1; fi
  usleep "$delay"
  [ "$delay" -lt 100000 ] && delay=$((delay * 2))
done
echo ${RELAY_LINE.listening} >&2
cat >/dev/null
kill "$pid"`;

/**
 * `sh -c KILL_CONNECT_SCRIPT airlock-kill PID CMDLINE`: ends a connect's nc whose SSH side went
 * away (closing its stdin only half-closes the socket). Checks the command line first, so a
 * reused PID is left alone.
 */
export const KILL_CONNECT_SCRIPT = '[ "$(tr "\\0" " " < "/proc/$1/cmdline" 2>/dev/null)" = "$2" ] && kill "$1"';

/** nc's command line as /proc shows it (NULs as spaces) for KILL_CONNECT_SCRIPT. */
export function connectCmdline(host: string, port: number, timeoutS: number): string {
  return `nc -w ${timeoutS} -- ${host} ${port} `;
}

/** `sh -c UP_SCRIPT airlock-up DIR`: the accepted socket's bytes, until the client's EOF. */
export const UP_SCRIPT = 'exec cat "$1/up"';
/** `sh -c DOWN_SCRIPT airlock-down DIR`: stdin to the accepted socket; EOF closes it. */
export const DOWN_SCRIPT = 'exec cat > "$1/down"';
/** `sh -c REFUSE_SCRIPT airlock-refuse DIR`: meets both FIFOs and closes them (the socket closes). */
export const REFUSE_SCRIPT = 'exec 3>"$1/down" 4<"$1/up"';

/** What ACCEPT_SCRIPT's mktemp makes; checked before the name is used in an exec. */
export const RELAY_DIR_NAME = /^airlock-relay\.[A-Za-z0-9]{6}$/;
