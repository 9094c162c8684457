/**
 * What a CI-debug session may carry into its container: secret stripping (by variable name and by
 * value shape) and TTL capping. Pure functions, shared by the provisioning API (at provisioning)
 * and the token auth provider (again at login, defence in depth).
 *
 * Over-stripping is cheap and visible (the name appears in AIRLOCK_REDACTED_VARS and the developer
 * can export the variable again); under-stripping leaks a credential into an interactive shell.
 * So every rule below errs on the side of stripping.
 */

import { BROKER_SECRET_NAME_PATTERNS } from '../config/index.js';

/** Substrings of variable names that mark a secret (case-insensitive); the config default. */
export const DEFAULT_SECRET_NAME_PATTERNS: readonly string[] = BROKER_SECRET_NAME_PATTERNS;

/** No session may outlive this, whatever the configuration says (issue: "hard max 3600"). */
export const HARD_MAX_TTL_SECONDS = 3600;

/**
 * A session variable name: a portable shell identifier (POSIX "Name"). Anything else is refused at
 * the API: a comma would corrupt the comma-separated AIRLOCK_REDACTED_VARS, and names such as
 * bash's exported functions (`BASH_FUNC_f%%`) cannot be used from a shell anyway.
 */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_NAME_LENGTH = 256;

export function isEnvName(name: string): boolean {
  return name.length <= MAX_ENV_NAME_LENGTH && ENV_NAME_PATTERN.test(name);
}

/** Variables the gateway sets itself; values supplied by CI under these names are dropped. */
export const RESERVED_ENV_PREFIX = 'AIRLOCK_';

export interface SecretPolicy {
  /** Case-insensitive substrings; a name containing any of them is stripped. */
  readonly secretNamePatterns: readonly string[];
  /** Exact names exempt from the name patterns (never from the value checks). */
  readonly keepEnvNames: readonly string[];
}

export interface TtlPolicy {
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
}

/** Why a variable was stripped; names only ever reach logs, never values. */
export type RedactionReason =
  | 'name'
  | 'reserved'
  | 'pem-private-key'
  | 'jwt'
  | 'github-token'
  | 'gitlab-token'
  | 'slack-token'
  | 'aws-access-key-id'
  | 'known-token-prefix'
  | 'url-credentials'
  | 'high-entropy';

export interface SanitizedEnv {
  readonly env: Record<string, string>;
  /** Stripped names, sorted, without duplicates. */
  readonly redacted: string[];
  /** Name → reason, for the operator's log line. */
  readonly reasons: Record<string, RedactionReason>;
}

// Each rule looks for a credential anywhere in the value (a token inside a URL or a
// "Bearer ..." string is as much a leak as the bare token).
const VALUE_RULES: ReadonlyArray<readonly [RedactionReason, RegExp]> = [
  // PKCS#1/#8, OpenSSH, EC, encrypted and PGP private keys; with real or escaped ("\n") newlines.
  ['pem-private-key', /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/],
  // A JWS/JWE: base64url JSON header ("eyJ" = '{"') and payload.
  ['jwt', /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/],
  // Classic (ghp_/gho_/ghu_/ghs_/ghr_) and fine-grained GitHub tokens.
  ['github-token', /gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}/],
  // GitLab personal/deploy/runner/CI-build/trigger/feed/... tokens and runner registration tokens.
  ['gitlab-token', /gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas|soat|ffct)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,}/],
  ['slack-token', /xox[abposre]-[A-Za-z0-9-]{10,}|hooks\.slack\.com\/(?:services|workflows)\/[A-Za-z0-9/_-]{20,}/],
  ['aws-access-key-id', /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{16}(?![A-Z0-9])/],
  // npm, PyPI, Stripe, OpenAI/Anthropic-style, Google API keys, Docker Hub PATs, HashiCorp Vault.
  [
    'known-token-prefix',
    /npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|dckr_pat_[A-Za-z0-9_-]{20,}|hv[sbr]\.[A-Za-z0-9_-]{20,}/,
  ],
  // scheme://user:password@host (DATABASE_URL and friends).
  ['url-credentials', /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:@/]*:[^\s@/]+@/],
];

/**
 * Candidate substrings for the randomness check: everything except characters that separate
 * words in path lists, URLs and prose. `/`, `+`, `=`, `_`, `-`, `.` stay in because base64
 * secrets (e.g. AWS secret access keys) contain them.
 */
const CANDIDATE_SPLIT = /[\s,;:'"`<>()[\]{}|\\&?!*#@$%^~]+/;
/** Letters and digits in a candidate before it is judged; shorter strings are identifiers. */
const RANDOM_MIN_ALNUM = 20;
/**
 * Share of neighbouring letters/digits that switch class (upper/lower/digit). Random base62 or
 * base64 text switches ~60% of the time; words, CamelCase names, paths and version strings
 * ~15-36%. At 0.4, random strings of ≥ 24 characters are flagged ~97% of the time (measured);
 * the table in test/unit/broker-policy.test.ts pins both sides.
 */
const RANDOM_MIN_SWITCH_RATE = 0.4;
const RANDOM_MIN_BITS = 3.5;

function charClass(ch: string): number {
  if (ch >= 'a' && ch <= 'z') return 0;
  if (ch >= 'A' && ch <= 'Z') return 1;
  return 2;
}

function shannonBits(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

function looksRandom(candidate: string): boolean {
  const alnum = candidate.replace(/[^A-Za-z0-9]/g, '');
  if (alnum.length < RANDOM_MIN_ALNUM) return false;
  if (!/[a-z]/.test(alnum) || !/[A-Z]/.test(alnum)) return false;
  let switches = 0;
  for (let i = 1; i < alnum.length; i++) {
    if (charClass(alnum[i]!) !== charClass(alnum[i - 1]!)) switches++;
  }
  return switches / (alnum.length - 1) >= RANDOM_MIN_SWITCH_RATE && shannonBits(alnum) >= RANDOM_MIN_BITS;
}

/**
 * A long mixed-case run that switches between upper case, lower case and digits as often as
 * random text does: what API keys and base64 secrets look like. Hex-only and lower-case-only
 * strings are never flagged: commit SHAs, image digests and UUIDs are everyday CI values (known
 * gap: lower-case or hex secrets are caught only by their variable names).
 */
export function looksHighEntropy(value: string): boolean {
  return value.split(CANDIDATE_SPLIT).some(looksRandom);
}

/** Why a value looks like a credential, or undefined when it does not. */
export function secretValueReason(value: string): RedactionReason | undefined {
  for (const [reason, pattern] of VALUE_RULES) {
    if (pattern.test(value)) return reason;
  }
  return looksHighEntropy(value) ? 'high-entropy' : undefined;
}

export function nameLooksSecret(name: string, policy: SecretPolicy): boolean {
  if (policy.keepEnvNames.includes(name)) return false;
  const upper = name.toUpperCase();
  return policy.secretNamePatterns.some((p) => p !== '' && upper.includes(p.toUpperCase()));
}

/**
 * Drops variables whose names match the policy, whose values look like credentials, and those
 * under the reserved AIRLOCK_ prefix. Input order is kept for the survivors.
 */
export function sanitizeEnv(env: Readonly<Record<string, string>>, policy: SecretPolicy): SanitizedEnv {
  const out: Record<string, string> = {};
  const reasons: Record<string, RedactionReason> = {};
  for (const [name, value] of Object.entries(env)) {
    let reason: RedactionReason | undefined;
    if (name.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) reason = 'reserved';
    else if (nameLooksSecret(name, policy)) reason = 'name';
    else reason = secretValueReason(value);
    if (reason === undefined) {
      // defineProperty: a variable literally named "__proto__" must stay data, not a prototype.
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    } else {
      Object.defineProperty(reasons, name, { value: reason, enumerable: true, writable: true, configurable: true });
    }
  }
  return { env: out, redacted: Object.keys(reasons).sort(), reasons };
}

/** The TTL a session gets: the request (or the default), never above the policy cap or 3600 s. */
export function effectiveTtlSeconds(requested: number | undefined, policy: TtlPolicy): number {
  const cap = Math.min(policy.maxTtlSeconds, HARD_MAX_TTL_SECONDS);
  const wanted = requested ?? policy.defaultTtlSeconds;
  return Math.max(1, Math.min(Math.floor(wanted), cap));
}

/**
 * Image allow-list: `*` matches any run of characters (including `/` and `:`), everything else
 * literally. `["*"]` allows every image.
 */
export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => {
    const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
    return re.test(image);
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
