/**
 * Static public-key auth from one file, lines `<user> <algo> <base64 blob> [comment]` (blank
 * lines and `#` comments ignored). The file is re-read when it changes (stat: mtime, ctime,
 * size, inode), so adding or revoking a key needs no restart. A file that becomes unreadable or
 * malformed makes every decision `error` until it is fixed: keeping the last good copy could keep
 * a key that the edit was meant to revoke (fail closed).
 *
 * This provider only decides whether a key is listed; the SSH layer verifies the signature.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AirlockError, isAirlockError } from '../core/errors.js';
import { fileStamp, fileStampSync } from './file-stamp.js';
import { fingerprintOf, parseAuthorizedKeyLine } from './public-key.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';

export interface AuthorizedKeyEntry {
  readonly user: string;
  readonly algorithm: string;
  readonly blob: Buffer;
  readonly comment: string;
  readonly fingerprint: string;
  /** 1-based line number in the file. */
  readonly line: number;
}

export interface AuthorizedKeysDeps {
  readonly file: string;
  readonly logger: Logger;
}

/** Parses the file's text; every malformed line is named in one CONFIG_INVALID error. */
export function parseAuthorizedKeys(text: string, source: string): AuthorizedKeyEntry[] {
  const entries: AuthorizedKeyEntry[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = /^(\S+)\s+(.*)$/.exec(trimmed);
    const key = match ? parseAuthorizedKeyLine(match[2] ?? '') : null;
    if (!match || !key) {
      problems.push(`line ${line}: expected "<user> <algorithm> <base64 key> [comment]"`);
      return;
    }
    entries.push({ user: match[1] ?? '', ...key, fingerprint: fingerprintOf(key.blob), line });
  });
  if (problems.length > 0) {
    throw new AirlockError('CONFIG_INVALID', `authorized keys file ${source}: ${problems.join('; ')}`, {
      details: { file: source, problems },
    });
  }
  return entries;
}

/** Reads and checks the file (for `airlock config check` and startup). */
export function loadAuthorizedKeys(file: string): AuthorizedKeyEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AirlockError('CONFIG_FILE_UNREADABLE', `authorized keys file ${file} cannot be read`, { cause: err });
  }
  return parseAuthorizedKeys(text, file);
}

interface Snapshot {
  /** Identity of the file version the entries came from. */
  readonly stamp: string;
  readonly entries: readonly AuthorizedKeyEntry[] | AirlockError;
}

/** Loads the file at once (throws on a bad file), then re-reads it whenever it changes. */
export function createAuthorizedKeysProvider(deps: AuthorizedKeysDeps): AuthProvider {
  const { file, logger } = deps;
  // Stamp first, then read: if the file changes in between, the next login sees a new stamp.
  let initialStamp = '';
  try {
    initialStamp = fileStampSync(file);
  } catch {
    // loadAuthorizedKeys below reports the unreadable file.
  }
  let snapshot: Snapshot = { stamp: initialStamp, entries: loadAuthorizedKeys(file) };
  let reloading: Promise<Snapshot> | undefined;

  async function reload(): Promise<Snapshot> {
    let stamp: string;
    try {
      stamp = await fileStamp(file);
    } catch (err) {
      return { stamp: '', entries: new AirlockError('CONFIG_FILE_UNREADABLE', `authorized keys file ${file} cannot be read`, { cause: err }) };
    }
    if (stamp === snapshot.stamp) return snapshot;
    let entries: readonly AuthorizedKeyEntry[] | AirlockError;
    try {
      entries = parseAuthorizedKeys(await readFile(file, 'utf8'), file);
      logger.info({ file, keys: entries.length }, 'authorized keys loaded');
    } catch (err) {
      entries = isAirlockError(err)
        ? err
        : new AirlockError('CONFIG_FILE_UNREADABLE', `authorized keys file ${file} cannot be read`, { cause: err });
      logger.error({ file, code: entries.code, error: entries.message }, 'authorized keys file rejected');
    }
    return { stamp, entries };
  }

  async function current(): Promise<Snapshot> {
    // One reload at a time; concurrent logins share it.
    reloading ??= reload().finally(() => {
      reloading = undefined;
    });
    snapshot = await reloading;
    return snapshot;
  }

  return {
    name: 'authorized-keys',
    supports: (method: AuthMethod) => method === 'publickey',
    async authenticate(credential: Credential, request: AuthRequest): Promise<AuthDecision> {
      const log = (decision: AuthDecision, fingerprint?: string): AuthDecision => {
        const line = {
          connectionId: request.connectionId,
          username: request.username,
          method: credential.method,
          remoteAddress: request.remoteAddress,
          outcome: decision.outcome,
          reason: decision.reason,
          ...(fingerprint === undefined ? {} : { fingerprint }),
        };
        // The SSH layer writes the one canonical line per attempt; this is the provider's detail.
        if (decision.outcome === 'error') logger.warn(line, 'auth provider error');
        else logger.debug(line, 'auth provider answer');
        return decision;
      };
      if (credential.method !== 'publickey') return log({ outcome: 'reject', reason: 'AUTH_METHOD_UNSUPPORTED' });
      const { entries } = await current();
      if (entries instanceof AirlockError) return log({ outcome: 'error', reason: entries.code }, credential.fingerprint);
      const listed = entries.some((e) => e.user === request.username && e.blob.equals(credential.blob));
      return log(
        listed ? { outcome: 'accept', authenticatedUsername: request.username } : { outcome: 'reject', reason: 'AUTH_REJECTED' },
        credential.fingerprint,
      );
    },
  };
}
