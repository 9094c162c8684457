/**
 * CI-debug token login: `ssh <token>@gateway`. The token (a JWT minted by the broker) arrives as
 * the SSH user name (method `none`), or as the password, or as the answer to a keyboard-interactive
 * prompt (`withTokenPrompt`) for clients that insist on asking. The provider verifies it, takes one of the session's connection
 * slots atomically, and answers with the session's actor, image, sanitized environment,
 * non-sensitive metadata and a hard deadline at token expiry.
 *
 * This file knows only the small interfaces below; the broker (src/broker) implements them. That
 * keeps the dependency direction broker → auth.
 */
import type { Logger } from 'pino';
import type { MetadataMap } from '../backend/backend.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ERROR_CODES, toAirlockError, userLine, type AirlockError, type ErrorCode } from '../core/errors.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';

/** The session facts a login needs (the broker's stored record is a superset). */
export interface TokenSession {
  readonly id: string;
  readonly image: string;
  readonly commitSha?: string;
  readonly prNumber?: number;
  readonly actor?: string;
  readonly repository?: string;
  readonly pipelineRun?: string;
  /** Already sanitized at provisioning. */
  readonly env: Readonly<Record<string, string>>;
  /** Names stripped at provisioning. */
  readonly redactedVars: readonly string[];
  readonly maxConnections: number;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/** Secret-free facts a token may carry for the degraded (store unreachable) mode. */
export type StatelessSessionFacts = Pick<TokenSession, 'image' | 'commitSha' | 'prNumber' | 'actor' | 'repository' | 'pipelineRun'>;

export interface VerifiedSessionToken {
  readonly sessionId: string;
  /** Epoch milliseconds (the `exp` claim). */
  readonly expiresAt: number;
  readonly stateless?: StatelessSessionFacts;
}

export interface SessionTokenVerifier {
  /** Throws AirlockError TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_NOT_YET_VALID. */
  verify(token: string): Promise<VerifiedSessionToken>;
}

export type AcquireResult =
  | { readonly outcome: 'ok'; readonly session: TokenSession }
  | { readonly outcome: 'unknown' | 'revoked' | 'full' };

/** Connection slots of a session, as leases that expire unless renewed (a crashed gateway frees its slots). */
export interface SessionSlots {
  /**
   * Atomically: the session exists, is not revoked and has fewer live leases than its
   * maxConnections → add a lease for this connection. Throws AirlockError STORE_UNAVAILABLE.
   */
  acquire(sessionId: string, connectionId: string, leaseMs: number): Promise<AcquireResult>;
  /** Extends a lease; tells whether the session still stands. */
  renew(sessionId: string, connectionId: string, leaseMs: number): Promise<'ok' | 'unknown' | 'revoked'>;
  release(sessionId: string, connectionId: string): Promise<void>;
}

export type EnvSanitizer = (env: Readonly<Record<string, string>>) => { env: Record<string, string>; redacted: string[] };

export interface TokenAuthDeps {
  readonly verifier: SessionTokenVerifier;
  readonly slots: SessionSlots;
  /** The gateway's own secret policy, applied again at login (defence in depth). */
  readonly sanitize: EnvSanitizer;
  /** Accept a token whose claims carry the session facts when the store cannot be reached. */
  readonly allowStatelessTokens: boolean;
  /** Added to the token expiry to get the connection's hard deadline. */
  readonly deadlineGraceMs: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Lease length; a gateway that stops renewing frees the slot after this long. */
  readonly leaseMs?: number;
  /** How often held leases are renewed; renewal also notices revocations the store did not push. */
  readonly renewIntervalMs?: number;
  /** A session with live connections was revoked or vanished: its connections must end. */
  readonly onSessionEnded?: (sessionId: string, code: 'SESSION_REVOKED' | 'SESSION_NOT_FOUND') => void;
}

export interface TokenAuthProvider extends AuthProvider {
  /** Session ids with a connection slot held by this gateway now. */
  heldSessions(): ReadonlySet<string>;
  /** This gateway's connections holding a slot of the session (to end them on revocation). */
  connectionsOf(sessionId: string): string[];
  /** Stops lease renewal (slots are released by their connections). */
  close(): void;
}

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_RENEW_INTERVAL_MS = 5_000;
/** Used when CI did not say who the actor is. */
export const ANONYMOUS_ACTOR = 'ci-debug';

// A JWS in compact form: base64url JSON header ("eyJ" = '{"'), payload, signature. The signature
// may be empty so that `alg: none` tokens are recognised as ours and refused with a reason.
const TOKEN_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Where the token is in a credential: the password first, then the user name. (A
 * keyboard-interactive answer has to be asked for first: `withTokenPrompt`.)
 */
export function tokenFromCredential(credential: Credential, username: string): string | undefined {
  const candidates: string[] = [];
  if (credential.method === 'password') candidates.push(credential.password.trim());
  if (credential.method !== 'publickey') candidates.push(username);
  return candidates.find((c) => TOKEN_SHAPE.test(c));
}

export const TOKEN_PROMPT = 'Debug-session token: ';

/**
 * Keyboard-interactive for token logins: when the user name is not a token, ask for one (input
 * hidden) and check the answer as if it were the password. Only for gateways where no other
 * provider (the keyboard-interactive webhook) leads that conversation; without it the token
 * provider takes keyboard-interactive logins by a token user name only.
 */
export function withTokenPrompt(tokens: AuthProvider, prompt = TOKEN_PROMPT): AuthProvider {
  return {
    name: tokens.name,
    supports: (method) => tokens.supports(method),
    async authenticate(credential, request, signal) {
      if (credential.method !== 'keyboard-interactive' || TOKEN_SHAPE.test(request.username)) return tokens.authenticate(credential, request, signal);
      let answer: string | undefined;
      try {
        [answer] = await credential.challenge({ prompts: [{ prompt, echo: false }] });
      } catch {
        return { outcome: 'error', reason: 'AUTH_ABORTED' };
      }
      const typed = answer?.trim() ?? '';
      // Asked for a token and given something else: say so instead of a bare "Permission denied".
      if (!TOKEN_SHAPE.test(typed)) return refusal('TOKEN_INVALID');
      return tokens.authenticate({ method: 'password', password: typed }, request, signal);
    },
  };
}

const SLOT_CODES: Record<'unknown' | 'revoked' | 'full', ErrorCode> = {
  unknown: 'SESSION_NOT_FOUND',
  revoked: 'SESSION_REVOKED',
  full: 'SESSION_CONNECTION_LIMIT',
};

function refusal(code: ErrorCode): AuthDecision {
  return { outcome: 'reject', reason: code, userMessage: `airlock: ${ERROR_CODES[code].userMessage} [${code}]` };
}

const plain = (value: string): { value: string; sensitive: boolean } => ({ value, sensitive: false });

/** Non-sensitive facts for logs, labels (`airlock.meta.*`) and recording tags. */
export function sessionMetadata(session: Pick<TokenSession, 'id' | 'commitSha' | 'prNumber' | 'actor' | 'repository' | 'pipelineRun'>): MetadataMap {
  const m: Record<string, { value: string; sensitive: boolean }> = { session_id: plain(session.id) };
  if (session.commitSha !== undefined) m.commit_sha = plain(session.commitSha);
  if (session.prNumber !== undefined) m.pr_number = plain(String(session.prNumber));
  if (session.actor !== undefined) m.actor = plain(session.actor);
  if (session.repository !== undefined) m.repository = plain(session.repository);
  if (session.pipelineRun !== undefined) m.pipeline_run = plain(session.pipelineRun);
  return m;
}

/**
 * The container environment: the session's env (sanitized again with this gateway's policy,
 * marked sensitive so it never reaches logs or webhooks) plus the AIRLOCK_* facts.
 */
export function sessionEnvironment(session: TokenSession, sanitize: EnvSanitizer): MetadataMap {
  const again = sanitize(session.env);
  const env: Record<string, { value: string; sensitive: boolean }> = {};
  for (const [name, value] of Object.entries(again.env)) {
    Object.defineProperty(env, name, { value: { value, sensitive: true }, enumerable: true, writable: true, configurable: true });
  }
  const redacted = [...new Set([...session.redactedVars, ...again.redacted])].sort();
  env.AIRLOCK_SESSION_ID = plain(session.id);
  env.AIRLOCK_ACTOR = plain(session.actor ?? ANONYMOUS_ACTOR);
  if (session.commitSha !== undefined) env.AIRLOCK_COMMIT_SHA = plain(session.commitSha);
  if (session.prNumber !== undefined) env.AIRLOCK_PR_NUMBER = plain(String(session.prNumber));
  if (session.repository !== undefined) env.AIRLOCK_REPOSITORY = plain(session.repository);
  if (session.pipelineRun !== undefined) env.AIRLOCK_PIPELINE_RUN = plain(session.pipelineRun);
  env.AIRLOCK_EXPIRES_AT = plain(new Date(session.expiresAt).toISOString());
  env.AIRLOCK_REDACTED_VARS = plain(redacted.join(','));
  return env;
}

export function createTokenAuthProvider(deps: TokenAuthDeps): TokenAuthProvider {
  const clock = deps.clock ?? systemClock;
  const leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  const renewIntervalMs = deps.renewIntervalMs ?? DEFAULT_RENEW_INTERVAL_MS;
  const logger = deps.logger;
  /** connectionId → sessionId for the slots this gateway holds. */
  const held = new Map<string, string>();
  let renewTimer: NodeJS.Timeout | undefined;
  let renewing = false;
  let closed = false;

  const renewAll = async () => {
    if (renewing) return;
    renewing = true;
    const ended = new Map<string, 'SESSION_REVOKED' | 'SESSION_NOT_FOUND'>();
    try {
      for (const [connectionId, sessionId] of [...held]) {
        if (ended.has(sessionId)) continue;
        try {
          const state = await deps.slots.renew(sessionId, connectionId, leaseMs);
          if (state === 'revoked') ended.set(sessionId, 'SESSION_REVOKED');
          else if (state === 'unknown') ended.set(sessionId, 'SESSION_NOT_FOUND');
        } catch (err) {
          // Store down: keep the connection (it was admitted); the lease simply ages.
          logger.warn({ code: toAirlockError(err, 'STORE_UNAVAILABLE').code, sessionId }, 'session lease renewal failed');
        }
      }
    } finally {
      renewing = false;
    }
    for (const [sessionId, code] of ended) {
      logger.info({ sessionId, code }, 'session ended while connected');
      deps.onSessionEnded?.(sessionId, code);
    }
  };

  const track = (connectionId: string, sessionId: string) => {
    held.set(connectionId, sessionId);
    if (!renewTimer && !closed) {
      renewTimer = setInterval(() => void renewAll(), renewIntervalMs);
      renewTimer.unref();
    }
  };
  const untrack = (connectionId: string) => {
    held.delete(connectionId);
    if (held.size === 0 && renewTimer) {
      clearInterval(renewTimer);
      renewTimer = undefined;
    }
  };

  const accept = (session: TokenSession, verified: VerifiedSessionToken, release: () => Promise<void>): AuthDecision => ({
    outcome: 'accept',
    authenticatedUsername: session.actor ?? ANONYMOUS_ACTOR,
    metadata: sessionMetadata(session),
    environment: sessionEnvironment(session, deps.sanitize),
    image: session.image,
    deadline: new Date(Math.min(verified.expiresAt, session.expiresAt) + deps.deadlineGraceMs),
    release,
  });

  return {
    name: 'token',
    supports: (method: AuthMethod) => method === 'none' || method === 'password' || method === 'keyboard-interactive',
    heldSessions: () => new Set(held.values()),
    connectionsOf: (sessionId) => [...held].filter(([, s]) => s === sessionId).map(([c]) => c),
    close() {
      closed = true;
      if (renewTimer) clearInterval(renewTimer);
      renewTimer = undefined;
    },

    async authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision> {
      const token = tokenFromCredential(credential, request.username);
      // Not token-shaped: not ours. A plain reject lets the chain try the next provider.
      if (token === undefined) return { outcome: 'reject' };

      let verified: VerifiedSessionToken;
      try {
        verified = await deps.verifier.verify(token);
      } catch (err) {
        return refusal(toAirlockError(err, 'TOKEN_INVALID').code);
      }

      // jose accepts `exp` up to the clock tolerance late (skew between broker and gateway), but
      // such a login's deadline has already passed: it would get a container only to have it
      // killed at once. The deadline grace lets a live connection finish, it admits no new one.
      if (verified.expiresAt <= clock.now()) return refusal('TOKEN_EXPIRED');

      const connectionId = request.connectionId;
      let session: TokenSession;
      let release: () => Promise<void>;
      try {
        const slot = await deps.slots.acquire(verified.sessionId, connectionId, leaseMs);
        if (slot.outcome !== 'ok') return refusal(SLOT_CODES[slot.outcome]);
        session = slot.session;
        track(connectionId, session.id);
        let released = false;
        release = async () => {
          if (released) return;
          released = true;
          untrack(connectionId);
          await deps.slots.release(session.id, connectionId).catch((err: unknown) => {
            // The lease expires on its own; a lost release only delays a reconnect.
            logger.warn({ code: toAirlockError(err, 'STORE_UNAVAILABLE').code, sessionId: session.id }, 'session slot release failed');
          });
        };
      } catch (err) {
        const e: AirlockError = toAirlockError(err, 'STORE_UNAVAILABLE');
        if (!deps.allowStatelessTokens || !verified.stateless) {
          logger.error({ code: e.code, err: e, sessionId: verified.sessionId }, 'session store unavailable: login refused');
          return { outcome: 'error', reason: e.code, userMessage: userLine(e) };
        }
        // Degraded mode (documented): no connection limit, no revocation, no CI environment.
        logger.warn({ code: e.code, sessionId: verified.sessionId }, 'session store unavailable: accepting a stateless token');
        session = { ...verified.stateless, id: verified.sessionId, env: {}, redactedVars: [], maxConnections: 0, expiresAt: verified.expiresAt };
        release = async () => undefined;
      }

      // The stored session may end before the token does (and time passed while we asked the store).
      if (Math.min(verified.expiresAt, session.expiresAt) <= clock.now()) {
        await release();
        return refusal('TOKEN_EXPIRED');
      }
      if (signal.aborted) {
        // The client left while we were asking; nobody will call release.
        await release();
        return { outcome: 'error', reason: 'AUTH_ABORTED' };
      }
      return accept(session, verified, release);
    },
  };
}
