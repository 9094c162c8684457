import type { AttributeChanges, DirectoryEntry, FileAttributes, OpenWriteFlags } from '../backend.js';

/**
 * The POSIX shell scripts behind the gateway-side file API (`workload-files.ts`), and parsers for
 * what they print. They need only what busybox and coreutils both have — `sh`, `stat -c`, `dd`
 * (`iflag=skip_bytes`, `oflag=seek_bytes|append`, `status=none`), `xargs -0`, `chmod`, `chown`,
 * `touch -d @N`, `mkdir -m`, `rmdir`, `rm`, `mv`, `ln`, `readlink` — and run as the session's
 * user, so the kernel checks every permission. As everywhere in this backend, user data (paths,
 * modes, offsets) only travels as positional arguments ("$1"...), never inside the script text.
 *
 * Error text: the shells abbreviate some errno strings ("no such file", "nonexistent
 * directory"), and dash's `cd` gives none, so the scripts test the common cases themselves and
 * print the strerror(3) words that `fileErrorFromText` (src/backend/file-error.ts) classifies.
 */

/** argv[0] of every script (shows in `ps` inside the container). */
export const SCRIPT_NAME = 'airlock-sftp';

/** mode (raw hex, with the type bits), size, uid, gid, atime, mtime, links, owner, group. */
const FORMAT = '%f %s %u %g %X %Y %h %U %G';
const FIELDS = 9;

const NO_SUCH_FILE = `{ echo "No such file or directory" >&2; exit 1; }`;

export const STAT_SCRIPT = `exec stat -L -c '${FORMAT}' "$1"`;
export const LSTAT_SCRIPT = `exec stat -c '${FORMAT}' "$1"`;

/**
 * Lists a directory: the entry names, each ended by NUL, an empty name (one more NUL), then one
 * stat line per entry ending in the name itself. Names may contain anything but NUL and "/", so
 * the lines are matched to the names by their known length (see parseListing). An entry that
 * vanishes between the two steps has no line and is left out.
 */
export const LIST_SCRIPT = [
  `[ -e "$1" ] || ${NO_SUCH_FILE}`,
  `[ -d "$1" ] || { echo "Not a directory" >&2; exit 1; }`,
  `[ -r "$1" ] && [ -x "$1" ] || { echo "Permission denied" >&2; exit 1; }`,
  `cd "$1" || exit 1`,
  'set -- . .. .[!.]* ..?* *',
  `for f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "$f"; fi; done`,
  `printf '\\0'`,
  `for f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "$f"; fi; done | xargs -0 stat -c '${FORMAT} %n' -- 2>/dev/null`,
  'exit 0',
].join('\n');

/**
 * Opens a file for reading at offset $2. The redirection is the real open(2) as the user (so
 * "Permission denied" is the kernel's answer); then one line on stdout — `airlock-open <pid>
 * <stat>` — says the file is open, and dd streams the file right behind it (`$$` is dd's PID
 * after `exec`). On stdout, not stderr: the Engine copies the two from separate pipes, so a
 * line on stderr may arrive after file data that nobody reads before the line came.
 */
export const READ_SCRIPT = [
  `[ -d "$1" ] && { echo "Is a directory" >&2; exit 1; }`,
  'exec 0<"$1" || exit 1',
  `s=$(stat -L -c '${FORMAT}' "$1") || exit 1`,
  'echo "airlock-open $$ $s"',
  'exec dd bs=65536 skip="$2" iflag=skip_bytes status=none',
].join('\n');

/**
 * Opens a file for writing: $1 path, $2 flags (c create, t truncate, x exclusive, a append),
 * $3 the new file's mode in octal (umask applies, as with open(2)) or empty, $4 the offset.
 * The shell's redirection creates/truncates the file as the user; then the open line on stdout,
 * then dd writes stdin into the file from the offset without truncating it.
 */
export const WRITE_SCRIPT = [
  'f=$1',
  `[ -d "$f" ] && { echo "Is a directory" >&2; exit 1; }`,
  'new=0',
  'if [ -e "$f" ] || [ -L "$f" ]; then',
  `  case $2 in *x*) echo "File exists" >&2; exit 1 ;; esac`,
  'else',
  `  case $2 in *c*) new=1 ;; *) echo "No such file or directory" >&2; exit 1 ;; esac`,
  'fi',
  `case $2 in *x*) set -C; exec 3>"$f" ;; *t*) exec 3>"$f" ;; *) exec 3>>"$f" ;; esac`,
  'exec 3>&-',
  `if [ "$new" = 1 ] && [ -n "$3" ]; then chmod "$(printf '%o' $(( 0$3 & ~0$(umask) )))" "$f" || exit 1; fi`,
  'echo "airlock-open $$"',
  `case $2 in *a*) exec dd of="$f" bs=65536 oflag=append conv=notrunc status=none ;; esac`,
  'exec dd of="$f" bs=65536 seek="$4" oflag=seek_bytes conv=notrunc status=none',
].join('\n');

/** $1 path, then size, uid, gid, mode (octal), atime, mtime — each empty when unchanged. */
export const SETSTAT_SCRIPT = [
  'f=$1',
  `[ -e "$f" ] || ${NO_SUCH_FILE}`,
  'if [ -n "$2" ]; then dd of="$f" bs=1 seek="$2" count=0 status=none </dev/null || exit 1; fi',
  'if [ -n "$3$4" ]; then chown "$3:$4" "$f" || exit 1; fi',
  'if [ -n "$5" ]; then chmod "$5" "$f" || exit 1; fi',
  'if [ -n "$6" ]; then touch -c -a -d "@$6" "$f" || exit 1; fi',
  'if [ -n "$7" ]; then touch -c -m -d "@$7" "$f" || exit 1; fi',
].join('\n');

/** $1 path, $2 mode in octal or empty (umask applies, as with mkdir(2)). */
export const MKDIR_SCRIPT = [
  `if [ -n "$2" ]; then exec mkdir -m "$(printf '%o' $(( 0$2 & ~0$(umask) )))" "$1"; fi`,
  'exec mkdir "$1"',
].join('\n');

export const RMDIR_SCRIPT = 'exec rmdir "$1"';

/** rm without -f: a missing file is an error; stdin is not a terminal, so it never prompts. */
export const REMOVE_SCRIPT = [`[ -d "$1" ] && [ ! -L "$1" ] && { echo "Is a directory" >&2; exit 1; }`, 'exec rm "$1"'].join('\n');

/** SFTP v3 RENAME never replaces an existing target (the check races, as OpenSSH's link+unlink does not). */
export const RENAME_SCRIPT = [
  `[ -e "$2" ] || [ -L "$2" ] && { echo "File exists" >&2; exit 1; }`,
  `[ -e "$1" ] || [ -L "$1" ] || ${NO_SUCH_FILE}`,
  'exec mv -f "$1" "$2"',
].join('\n');

export const READLINK_SCRIPT = [
  `if [ ! -L "$1" ]; then if [ -e "$1" ]; then echo "Invalid argument" >&2; else echo "No such file or directory" >&2; fi; exit 1; fi`,
  'exec readlink "$1"',
].join('\n');

/** $1 target (may be relative, or start with "-"), $2 the link. */
export const SYMLINK_SCRIPT = 'exec ln -s -- "$1" "$2"';

/** argv for one script run by `/bin/sh -c`. */
export function scriptArgv(script: string, ...args: ReadonlyArray<string | number | undefined>): string[] {
  return ['/bin/sh', '-c', script, SCRIPT_NAME, ...args.map((a) => (a === undefined ? '' : String(a)))];
}

export function writeFlagLetters(flags: OpenWriteFlags): string {
  return `${flags.create ? 'c' : ''}${flags.truncate ? 't' : ''}${flags.exclusive ? 'x' : ''}${flags.append ? 'a' : ''}` || '-';
}

/** Permission bits as the octal string chmod/mkdir take ("644"); undefined stays undefined. */
export function octalMode(mode: number | undefined): string | undefined {
  return mode === undefined ? undefined : (mode & 0o7777).toString(8);
}

/** SETSTAT_SCRIPT's arguments after the path. */
export function setstatArgs(changes: AttributeChanges): Array<string | undefined> {
  const hasOwner = changes.uid !== undefined && changes.gid !== undefined;
  return [
    int(changes.size),
    hasOwner ? int(changes.uid) : undefined,
    hasOwner ? int(changes.gid) : undefined,
    octalMode(changes.mode),
    int(changes.atime),
    int(changes.mtime),
  ];
}

function int(n: number | undefined): string | undefined {
  return n === undefined || !Number.isSafeInteger(n) || n < 0 ? undefined : String(n);
}

/** Parses one line of FORMAT; undefined when it is not one. */
export function parseStatFields(text: string): FileAttributes | undefined {
  const fields = text.trim().split(' ');
  if (fields.length !== FIELDS) return undefined;
  return attributesFrom(fields);
}

function attributesFrom(fields: readonly string[]): FileAttributes | undefined {
  const [modeHex, size, uid, gid, atime, mtime, nlink, owner, group] = fields;
  if (!modeHex || !/^[0-9a-fA-F]+$/.test(modeHex)) return undefined;
  const numbers = [size, uid, gid, atime, mtime, nlink].map((f) => (f !== undefined && /^-?\d+$/.test(f) ? Number(f) : NaN));
  if (numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  const [s, u, g, a, m, l] = numbers as [number, number, number, number, number, number];
  return {
    mode: Number.parseInt(modeHex, 16),
    size: s,
    uid: u,
    gid: g,
    atime: Math.max(0, a),
    mtime: Math.max(0, m),
    nlink: l,
    owner: owner && owner !== 'UNKNOWN' ? owner : String(u),
    group: group && group !== 'UNKNOWN' ? group : String(g),
  };
}

/** The open line of READ_SCRIPT / WRITE_SCRIPT: `airlock-open <pid> [<stat fields>]`. */
export function parseOpenLine(line: string): { pid: number; attrs?: FileAttributes } | undefined {
  const match = /^airlock-open (\d+)(?: (.*))?$/.exec(line.trim());
  if (!match?.[1]) return undefined;
  const pid = Number(match[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const attrs = match[2] !== undefined ? parseStatFields(match[2]) : undefined;
  return attrs ? { pid, attrs } : { pid };
}

/** Parses LIST_SCRIPT's output (see there). Unmatched names and lines are skipped. */
export function parseListing(out: Buffer): DirectoryEntry[] {
  // Names stay bytes until matched, so a name that is not valid UTF-8 still finds its line.
  const names: Buffer[] = [];
  let p = 0;
  for (;;) {
    const end = out.indexOf(0, p);
    if (end < 0) return []; // cut short: no complete name list
    if (end === p) {
      p = end + 1;
      break;
    }
    names.push(out.subarray(p, end));
    p = end + 1;
  }
  const entries: DirectoryEntry[] = [];
  for (const name of names) {
    const parsed = statLineAt(out, p, name);
    if (!parsed) continue; // vanished (stat printed nothing for it)
    entries.push({ name: name.toString('utf8'), attrs: parsed.attrs });
    p = parsed.next;
  }
  return entries;
}

/** A line at `p` of FORMAT fields, a space, exactly `name`, and "\n". */
function statLineAt(out: Buffer, p: number, name: Buffer): { attrs: FileAttributes; next: number } | undefined {
  const fields: string[] = [];
  let q = p;
  for (let i = 0; i < FIELDS; i++) {
    const space = out.indexOf(0x20, q);
    if (space < 0) return undefined;
    fields.push(out.subarray(q, space).toString('utf8'));
    q = space + 1;
  }
  const end = q + name.length;
  if (end >= out.length || out[end] !== 0x0a || !out.subarray(q, end).equals(name)) return undefined;
  const attrs = attributesFrom(fields);
  return attrs ? { attrs, next: end + 1 } : undefined;
}
