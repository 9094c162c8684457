/**
 * Pure helpers for user detection: /etc/passwd and /etc/group parsing, and Docker's
 * "user[:group]" specs.
 */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
}

function id(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [name, , uidText, gidText, , home] = line.split(':');
    const uid = id(uidText);
    const gid = id(gidText);
    if (!name || uid === undefined || gid === undefined) continue;
    entries.push({ name, uid, gid, home: home ?? '' });
  }
  return entries;
}

export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [name, , gidText] = line.split(':');
    const gid = id(gidText);
    if (!name || gid === undefined) continue;
    entries.push({ name, gid });
  }
  return entries;
}

/**
 * The image's first regular user: uid 1000..59999. Below 1000 are system accounts; 60000+ are
 * Debian's dynamic/system ranges and 65534 is `nobody`, neither meant for a login.
 */
export function pickDefaultUser(entries: readonly PasswdEntry[]): PasswdEntry | undefined {
  return entries.find((e) => e.uid >= 1000 && e.uid < 60000);
}

/** "", "root", "0", "root:root", "0:0" ... all mean the image runs as root. */
export function isRootUserSpec(spec: string): boolean {
  const user = spec.trim().split(':')[0] ?? '';
  return user === '' || user === 'root' || user === '0';
}

export interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Resolves Docker's "user[:group]" to numeric ids like the Engine does: numbers are taken as is,
 * names are looked up in the image's files; a user without a group gets its passwd gid (or its
 * uid when numeric and unknown). Returns undefined when a name is not found.
 */
export function resolveUserIds(spec: string, passwd: readonly PasswdEntry[], groups: readonly GroupEntry[]): UserIds | undefined {
  const [userPart = '', groupPart] = spec.trim().split(':');
  const numericUid = id(userPart);
  const entry = numericUid === undefined ? passwd.find((e) => e.name === userPart) : passwd.find((e) => e.uid === numericUid);
  const uid = numericUid ?? entry?.uid;
  if (uid === undefined) return undefined;
  if (groupPart === undefined || groupPart === '') return { uid, gid: entry?.gid ?? uid };
  const numericGid = id(groupPart);
  const gid = numericGid ?? groups.find((g) => g.name === groupPart)?.gid;
  return gid === undefined ? undefined : { uid, gid };
}
