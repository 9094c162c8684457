/**
 * Session tokens: compact JWS (jose). EdDSA (Ed25519) by default, HS256 when a shared secret is
 * configured. Each key has a `kid` and a fixed algorithm; verification looks the key up by `kid`
 * and accepts only that key's algorithm, so `alg: none` and HS/EdDSA confusion cannot work.
 *
 * Claims: sub (session id), aud, iat, nbf, exp, jti, and — only when stateless tokens are
 * allowed — `ctx` with the session's secret-free facts (image, commit, PR, actor, repository,
 * pipeline run) for logins while the store is unreachable.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SignJWT, jwtVerify, type JWTHeaderParameters } from 'jose';
import { z } from 'zod';
import type { SessionTokenVerifier, StatelessSessionFacts, VerifiedSessionToken } from '../auth/index.js';
import { AirlockError, isAirlockError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { HARD_MAX_TTL_SECONDS } from './policy.js';

export type TokenAlgorithm = 'EdDSA' | 'HS256';

export interface TokenKey {
  readonly kid: string;
  readonly alg: TokenAlgorithm;
  readonly verifyKey: KeyObject | Uint8Array;
  /** Absent for verify-only keys (a public key kept for rotation). */
  readonly signKey?: KeyObject | Uint8Array;
  /** File the key came from, for logs. */
  readonly source: string;
}

export interface TokenKeySet {
  readonly keys: readonly TokenKey[];
  /** The first key that can sign; absent when only public keys are configured. */
  readonly signing?: TokenKey;
}

export interface TokenKeyConfig {
  readonly kid?: string | undefined;
  readonly privateKeyFile?: string | undefined;
  readonly publicKeyFile?: string | undefined;
  readonly secretFile?: string | undefined;
}

/** `typ` header of our tokens: a JWT minted for another purpose with the same key is refused. */
export const TOKEN_TYPE = 'airlock-session+jwt';
const SESSION_ID = /^[0-9a-f]{32}$/;
const MIN_SECRET_BYTES = 32;

export function newSessionId(): string {
  return randomBytes(16).toString('hex');
}

function keyError(message: string, cause?: unknown): AirlockError {
  return new AirlockError('TOKEN_KEY_INVALID', message, cause === undefined ? {} : { cause });
}

function ed25519Kid(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `ed25519-${createHash('sha256').update(der).digest('base64url').slice(0, 16)}`;
}

async function readKeyFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw keyError(`token key file ${path} cannot be read: ${(err as Error).message}`, err);
  }
}

function requireEd25519(key: KeyObject, path: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw keyError(
      `token key ${path} is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; only Ed25519 is supported ` +
        '(generate one with: openssl genpkey -algorithm ed25519 -out broker.pem), or use secretFile for HS256',
    );
  }
}

async function loadOne(entry: TokenKeyConfig): Promise<TokenKey> {
  if (entry.privateKeyFile !== undefined) {
    const path = entry.privateKeyFile;
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(await readKeyFile(path));
    } catch (err) {
      if (isAirlockError(err)) throw err;
      throw keyError(`token key ${path} is not a PEM private key: ${(err as Error).message}`, err);
    }
    requireEd25519(privateKey, path);
    const publicKey = createPublicKey(privateKey);
    return { kid: entry.kid ?? ed25519Kid(publicKey), alg: 'EdDSA', signKey: privateKey, verifyKey: publicKey, source: path };
  }
  if (entry.publicKeyFile !== undefined) {
    const path = entry.publicKeyFile;
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(await readKeyFile(path));
    } catch (err) {
      if (isAirlockError(err)) throw err;
      throw keyError(`token key ${path} is not a PEM public key: ${(err as Error).message}`, err);
    }
    requireEd25519(publicKey, path);
    return { kid: entry.kid ?? ed25519Kid(publicKey), alg: 'EdDSA', verifyKey: publicKey, source: path };
  }
  if (entry.secretFile !== undefined) {
    const path = entry.secretFile;
    // A trailing newline from `echo`/editors is not part of the secret.
    const raw = await readKeyFile(path);
    const end = raw.length - (raw.at(-1) === 0x0a ? (raw.at(-2) === 0x0d ? 2 : 1) : 0);
    const bytes = raw.subarray(0, end);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw keyError(`HS256 secret ${path} has ${bytes.length} bytes; at least ${MIN_SECRET_BYTES} are required (e.g. openssl rand -hex 32)`);
    }
    const kid = entry.kid ?? `hs256-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
    const key = new Uint8Array(bytes);
    return { kid, alg: 'HS256', signKey: key, verifyKey: key, source: path };
  }
  throw keyError('a token key entry needs privateKeyFile, publicKeyFile or secretFile');
}

/** Loads or creates (mode 0600, public half next to it as `<path>.pub`) the default Ed25519 key. */
async function generatedKey(path: string): Promise<TokenKeyConfig> {
  if (!existsSync(path)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(`${path}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    // Write then rename: a crash never leaves a half-written key that would fail every start.
    await rename(tmp, path);
  }
  return { privateKeyFile: path };
}

/**
 * Loads `broker.tokens.keys`; with none configured, the key at `generatedKeyPath` (created on
 * first start, like the SSH host key). Throws AirlockError TOKEN_KEY_INVALID.
 */
export async function loadTokenKeys(configured: readonly TokenKeyConfig[], generatedKeyPath: string): Promise<TokenKeySet> {
  const entries = configured.length > 0 ? configured : [await generatedKey(generatedKeyPath)];
  const keys: TokenKey[] = [];
  for (const entry of entries) {
    const key = await loadOne(entry);
    if (keys.some((k) => k.kid === key.kid)) throw keyError(`token key id "${key.kid}" is used twice; give each key its own kid`);
    keys.push(key);
  }
  const signing = keys.find((k) => k.signKey !== undefined);
  return signing ? { keys, signing } : { keys };
}

const statelessClaimSchema = z.strictObject({
  img: z.string().min(1),
  sha: z.string().optional(),
  pr: z.int().positive().optional(),
  act: z.string().optional(),
  repo: z.string().optional(),
  run: z.string().optional(),
});

const claimsSchema = z.object({
  sub: z.string().regex(SESSION_ID),
  exp: z.int(),
  iat: z.int(),
  nbf: z.int(),
  jti: z.string().min(8),
  ctx: statelessClaimSchema.optional(),
});

export interface IssueInput {
  readonly sessionId: string;
  /** Epoch milliseconds; rounded down to whole seconds (JWT NumericDate). */
  readonly expiresAt: number;
  /** Put into the token only when stateless tokens are allowed. */
  readonly stateless?: StatelessSessionFacts;
}

export interface TokenIssuer {
  issue(input: IssueInput): Promise<string>;
}

export interface TokenOptions {
  readonly keys: TokenKeySet;
  readonly audience: string;
  readonly clock?: Clock;
}

function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function createTokenIssuer(options: TokenOptions): TokenIssuer {
  const clock = options.clock ?? systemClock;
  const key = options.keys.signing;
  if (!key?.signKey) {
    throw keyError('no token key can sign: configure a privateKeyFile or secretFile in broker.tokens.keys (public keys only verify)');
  }
  const signKey = key.signKey;
  return {
    async issue(input) {
      const iat = Math.floor(clock.now() / 1000);
      const header: JWTHeaderParameters = { alg: key.alg, kid: key.kid, typ: TOKEN_TYPE };
      const s = input.stateless;
      const payload = s
        ? { ctx: definedOnly({ img: s.image, sha: s.commitSha, pr: s.prNumber, act: s.actor, repo: s.repository, run: s.pipelineRun }) }
        : {};
      return new SignJWT(payload)
        .setProtectedHeader(header)
        .setSubject(input.sessionId)
        .setAudience(options.audience)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(Math.floor(input.expiresAt / 1000))
        .setJti(randomBytes(12).toString('base64url'))
        .sign(signKey);
    },
  };
}

export interface VerifierOptions extends TokenOptions {
  readonly clockToleranceSeconds: number;
}

function invalid(message: string, cause?: unknown): AirlockError {
  return new AirlockError('TOKEN_INVALID', message, cause === undefined ? {} : { cause });
}

/** jose's error codes → ours. Messages never contain the token. */
function mapVerifyError(err: unknown): AirlockError {
  if (isAirlockError(err)) return err;
  const e = err as { code?: string; claim?: string; message?: string };
  if (e.code === 'ERR_JWT_EXPIRED') return new AirlockError('TOKEN_EXPIRED', 'token expired', { cause: err });
  if (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && (e.claim === 'nbf' || e.claim === 'iat')) {
    return new AirlockError('TOKEN_NOT_YET_VALID', `token not valid yet (${e.claim})`, { cause: err });
  }
  return invalid(`token rejected: ${e.code ?? 'error'}: ${e.message ?? String(err)}`, err);
}

export function createTokenVerifier(options: VerifierOptions): SessionTokenVerifier {
  const clock = options.clock ?? systemClock;
  const byKid = new Map(options.keys.keys.map((k) => [k.kid, k]));
  const algorithms = [...new Set(options.keys.keys.map((k) => k.alg))];
  return {
    async verify(token: string): Promise<VerifiedSessionToken> {
      let payload: unknown;
      try {
        const result = await jwtVerify(
          token,
          (header) => {
            const key = header.kid === undefined ? undefined : byKid.get(header.kid);
            if (!key) throw invalid('token signed with an unknown key (kid)');
            // The key decides the algorithm, never the token: defeats HS/EdDSA confusion.
            if (header.alg !== key.alg) throw invalid(`token algorithm ${String(header.alg)} does not match key ${key.kid}`);
            return key.verifyKey;
          },
          {
            algorithms,
            audience: options.audience,
            typ: TOKEN_TYPE,
            clockTolerance: options.clockToleranceSeconds,
            currentDate: new Date(clock.now()),
            requiredClaims: ['sub', 'exp', 'iat', 'nbf', 'jti', 'aud'],
            // No token may be honoured for longer than the hard session cap, whatever its exp says.
            maxTokenAge: HARD_MAX_TTL_SECONDS + options.clockToleranceSeconds,
          },
        );
        payload = result.payload;
      } catch (err) {
        throw mapVerifyError(err);
      }
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) throw invalid('token claims have the wrong shape');
      const c = parsed.data;
      const ctx = c.ctx;
      const stateless: StatelessSessionFacts | undefined = ctx
        ? (definedOnly({
            image: ctx.img,
            commitSha: ctx.sha,
            prNumber: ctx.pr,
            actor: ctx.act,
            repository: ctx.repo,
            pipelineRun: ctx.run,
          }) as StatelessSessionFacts)
        : undefined;
      return { sessionId: c.sub, expiresAt: c.exp * 1000, ...(stateless ? { stateless } : {}) };
    },
  };
}
