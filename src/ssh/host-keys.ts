import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { AirlockError } from '../core/errors.js';

export interface HostKey {
  /** Private key text (OpenSSH or PEM) as ssh2 expects it. */
  readonly pem: string;
  readonly type: string;
  /** The public key wire blob (RFC 4253 §6.6), to match host certificates against. */
  readonly publicKey: Buffer;
  /** Where it came from (file path, "inline" or "generated:<path>"); for logs. */
  readonly source: string;
}

/**
 * ssh2's generator drops a leading zero byte of the ed25519 public key (about 1 key in 128), and
 * the result does not parse; generate again until the key reads back.
 */
function generateEd25519(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'airlock host key' });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new AirlockError('HOSTKEY_INVALID', 'could not generate a valid ed25519 host key');
}

function looksInline(value: string): boolean {
  return value.includes('-----BEGIN');
}

function parseHostKey(text: string, source: string): HostKey {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    throw new AirlockError('HOSTKEY_INVALID', `host key ${source}: ${parsed.message}`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) {
    throw new AirlockError('HOSTKEY_INVALID', `host key ${source}: not a private key`);
  }
  return { pem: text, type: key.type, publicKey: key.getPublicSSH(), source };
}

/**
 * Loads `ssh.hostkeys` (paths or inline keys). With none configured, generates an ed25519 key
 * on first start and persists it (mode 0600), so clients see the same host key after a restart.
 */
export async function loadHostKeys(configured: readonly string[], generatedPath: string): Promise<HostKey[]> {
  if (configured.length > 0) {
    return Promise.all(
      configured.map(async (entry, i) => {
        if (looksInline(entry)) return parseHostKey(entry, `ssh.hostkeys[${i}] (inline)`);
        let text: string;
        try {
          text = await readFile(entry, 'utf8');
        } catch (err) {
          throw new AirlockError('HOSTKEY_INVALID', `host key file ${entry} cannot be read: ${(err as Error).message}`, { cause: err });
        }
        return parseHostKey(text, entry);
      }),
    );
  }
  if (existsSync(generatedPath)) {
    return [parseHostKey(await readFile(generatedPath, 'utf8'), `generated:${generatedPath}`)];
  }
  const pair = generateEd25519();
  await mkdir(dirname(generatedPath), { recursive: true, mode: 0o700 });
  // Write then rename so a crash never leaves a half-written key behind.
  const tmp = `${generatedPath}.${process.pid}.tmp`;
  await writeFile(tmp, pair.private, { mode: 0o600 });
  await writeFile(`${generatedPath}.pub`, pair.public + '\n', { mode: 0o644 });
  await rename(tmp, generatedPath);
  return [parseHostKey(pair.private, `generated:${generatedPath}`)];
}
