import type { AuthContext, Connection, KeyboardAuthContext, PublicKeyAuthContext } from 'ssh2';
import type { Logger } from 'pino';
import type {
  AuthDecision,
  AuthMethod,
  AuthProvider,
  AuthRequest,
  Credential,
  KeyboardInteractiveChallenge,
  PublicKeyCredential,
} from '../auth/provider.js';
import type { Authorizer } from '../auth/authz.js';
import { describePublicKey, verifyUserauthSignature } from '../auth/public-key.js';
import { isCertificateAlgorithm, verifyCertificateUserauthSignature } from '../auth/ssh-ca.js';
import { mergeMaps } from '../auth/metadata-merge.js';
import { loggableLoginName } from '../auth/login-name.js';
import type { ConnectionRecording } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import type { MetadataMap } from '../backend/backend.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { sendAuthBanner } from './auth-banner.js';
import type { AuthRateLimiter } from './auth-rate-limit.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface AuthenticatedIdentity {
  readonly loginUsername: string;
  readonly decision: AuthDecision;
  readonly method: AuthMethod;
  readonly fingerprint?: string;
}

export interface AuthenticatorDeps {
  readonly client: Connection;
  readonly provider: AuthProvider;
  readonly methods: readonly AuthMethod[];
  readonly maxAuthTries: number;
  readonly connectionId: string;
  /** "ip:port", as webhooks receive it. */
  readonly remoteAddress: string;
  /** The client's IP address (the failed-login limit's key). */
  readonly remoteIp: string;
  readonly clientVersion: () => string;
  readonly logger: Logger;
  readonly recording: ConnectionRecording;
  /** Aborted when the connection goes away: pending webhook calls stop. */
  readonly signal: AbortSignal;
  readonly onAuthenticated: (identity: AuthenticatedIdentity) => void;
  /** Too many failures: the connection must be dropped. */
  readonly onTooManyFailures: () => void;
  readonly metrics?: GatewayMetrics;
  /** `auth.authz`: asked after every successful authentication; absent = no authorization step. */
  readonly authorizer?: Authorizer;
  /** Failed-login limits shared by all connections; absent = none. */
  readonly rateLimiter?: AuthRateLimiter;
}

/**
 * How a failed attempt counts. `failure`: a proven credential was refused (password, answers,
 * signed key, token, authz denial) — counts against MaxAuthTries and the failed-login limits.
 * `probe`: a signature-less key probe was refused — MaxAuthTries only (a client with several
 * keys loaded probes each; that is no guessing). `quiet`: not a failure at all.
 */
type FailureKind = 'failure' | 'probe' | 'quiet';

const AUDIT = {
  password: [AuditType.PasswordAttempt, AuditType.PasswordSuccess, AuditType.PasswordFail, AuditType.PasswordBackendError],
  publickey: [AuditType.PubkeyAttempt, AuditType.PubkeySuccess, AuditType.PubkeyFail, AuditType.PubkeyBackendError],
  // ContainerSSH has no numbers for "none" (token-as-user-name) logins; they share password's.
  none: [AuditType.PasswordAttempt, AuditType.PasswordSuccess, AuditType.PasswordFail, AuditType.PasswordBackendError],
  'keyboard-interactive': [
    AuditType.KeyboardInteractiveAttempt,
    AuditType.KeyboardInteractiveSuccess,
    AuditType.KeyboardInteractiveFail,
    AuditType.KeyboardInteractiveBackendError,
  ],
} as const;

/**
 * Drives ssh2's `authentication` events for one connection: asks the provider, verifies public
 * key signatures itself (ssh2 does not), caches the answer of the signature-less key probe so the
 * webhook is asked once per key, counts failures against MaxAuthTries, and fails closed.
 */
export function attachAuthenticator(deps: AuthenticatorDeps): void {
  const { client, logger } = deps;
  let failures = 0;
  /** A failed-login limit refused this connection; it is being closed. */
  let refusedByLimit = false;
  let collected: { metadata: MetadataMap; environment: MetadataMap; files: MetadataMap } = {
    metadata: {},
    environment: {},
    files: {},
  };
  // Key blob (base64) → pending/decided provider answer for that key.
  const keyDecisions = new Map<string, Promise<AuthDecision>>();

  const request = (username: string): AuthRequest => ({
    connectionId: deps.connectionId,
    username,
    remoteAddress: deps.remoteAddress,
    clientVersion: deps.clientVersion(),
    ...collected,
  });

  const ask = async (credential: Credential, username: string): Promise<AuthDecision> => {
    try {
      return await deps.provider.authenticate(credential, request(username), deps.signal);
    } catch (err) {
      // A provider that throws is a backend error: fail closed.
      logger.error({ err, method: credential.method }, 'auth provider failed');
      return { outcome: 'error', reason: 'INTERNAL' };
    }
  };

  const fail = (ctx: AuthContext, decision: AuthDecision | undefined, method: AuthMethod, kind: FailureKind) => {
    if (decision?.userMessage) {
      // The provider's own line, e.g. "the debug-session token has expired [TOKEN_EXPIRED]".
      sendAuthBanner(client, decision.userMessage);
    } else if ((decision?.outcome === 'error' && decision.reason !== 'AUTH_ABORTED') || decision?.reason === 'AUTHZ_DENIED') {
      // The user would otherwise see a bare "Permission denied"; say why in one line. (An
      // abandoned keyboard-interactive exchange needs none: the client has moved on.)
      const code = (decision.reason && decision.reason in ERROR_CODES ? decision.reason : 'AUTH_BACKEND_ERROR') as ErrorCode;
      sendAuthBanner(client, `airlock: ${ERROR_CODES[code].userMessage} [${code}]`);
    }
    if (kind !== 'quiet') failures++;
    // Backend errors are not the client's fault: a webhook outage must not block everyone.
    if (kind === 'failure' && decision?.outcome !== 'error') limitFailure(ctx.username);
    ctx.reject(advertised());
    if (kind !== 'quiet' && failures >= deps.maxAuthTries) {
      logger.warn({ failures, method }, 'too many authentication failures');
      sendAuthBanner(client, 'airlock: too many authentication failures');
      deps.onTooManyFailures();
    }
  };

  const limitFailure = (loginName: string) => {
    for (const block of deps.rateLimiter?.failed(deps.remoteIp, loggableLoginName(loginName)) ?? []) {
      // One line per block (not per refused attempt); the key is the address or login name.
      logger.warn(
        {
          code: 'AUTH_RATE_LIMITED',
          scope: block.scope,
          ...(block.scope === 'ip' ? { source: block.key } : { username: block.key }),
          blockedUntil: new Date(block.until).toISOString(),
        },
        'failed-login limit reached: blocking',
      );
      deps.metrics?.authBlocked(block.scope);
    }
  };

  const succeed = (ctx: AuthContext, decision: AuthDecision, method: AuthMethod, fingerprint?: string) => {
    collected = {
      metadata: mergeMaps(collected.metadata, decision.metadata),
      environment: mergeMaps(collected.environment, decision.environment),
      files: mergeMaps(collected.files, decision.files),
    };
    deps.onAuthenticated({
      loginUsername: ctx.username,
      method,
      decision: { ...decision, ...collected },
      ...(fingerprint ? { fingerprint } : {}),
    });
    ctx.accept();
  };

  /**
   * A provider accepted (and, for keys, the signature verified): the authorization step.
   * Returns the decision to log in with (`accept`, maps and name as authz left them) or the
   * refusal (`reject` AUTHZ_DENIED / `error`).
   */
  const authorize = async (ctx: AuthContext, decision: AuthDecision, method: AuthMethod): Promise<AuthDecision> => {
    if (!deps.authorizer) return decision;
    const started = Date.now();
    const authenticatedUsername = decision.authenticatedUsername || ctx.username;
    let verdict: AuthDecision;
    try {
      verdict = await deps.authorizer.authorize(
        {
          ...request(ctx.username),
          authenticatedUsername,
          metadata: mergeMaps(collected.metadata, decision.metadata),
          environment: mergeMaps(collected.environment, decision.environment),
          files: mergeMaps(collected.files, decision.files),
        },
        deps.signal,
      );
    } catch (err) {
      logger.error({ err }, 'authorizer failed');
      verdict = { outcome: 'error', reason: 'INTERNAL' };
    }
    const fields = { event: 'authz', username: authenticatedUsername, method, outcome: verdict.outcome, reason: verdict.reason, durationMs: Date.now() - started };
    if (verdict.outcome === 'accept') {
      logger.info(fields, 'authorization granted');
      return {
        ...decision,
        authenticatedUsername: verdict.authenticatedUsername || authenticatedUsername,
        metadata: verdict.metadata ?? {},
        environment: verdict.environment ?? {},
        files: verdict.files ?? {},
      };
    }
    if (verdict.outcome === 'error') logger.error(fields, 'authorization backend error');
    else logger.info(fields, 'authorization denied');
    // Refused after all: give back what the authentication holds (a CI session's slot).
    await decision.release?.().catch((err: unknown) => logger.warn({ err }, 'auth release failed'));
    return verdict;
  };

  // "none" is never advertised (RFC 4252 §5.2); offering it only means a provider may accept it.
  const advertised = () => deps.methods.filter((m) => m !== 'none');

  client.on('authentication', (ctx) => {
    const method = ctx.method;
    if (refusedByLimit) {
      // Requests the client sent before our disconnect arrived: already answered once.
      ctx.reject(advertised());
      return;
    }
    const block = deps.rateLimiter?.blockFor(deps.remoteIp, loggableLoginName(ctx.username));
    if (block) {
      refusedByLimit = true;
      // Refused before any provider is asked, so a blocked guesser costs the webhook nothing.
      deps.metrics?.authRateLimited(block.scope);
      logger.info({ event: 'auth', username: loggableLoginName(ctx.username), method, outcome: 'reject', reason: 'AUTH_RATE_LIMITED', scope: block.scope }, 'authentication refused: failed-login limit');
      sendAuthBanner(client, `airlock: ${ERROR_CODES.AUTH_RATE_LIMITED.userMessage} [AUTH_RATE_LIMITED]`);
      ctx.reject(advertised());
      deps.onTooManyFailures();
      return;
    }
    if (!isSupported(method) || !deps.methods.includes(method)) {
      // OpenSSH always starts with "none" to learn the methods; that is not a failure.
      ctx.reject(advertised());
      return;
    }
    void handle(ctx, method).catch((err: unknown) => {
      logger.error({ err }, 'authentication handler failed');
      fail(ctx, { outcome: 'error', reason: 'INTERNAL' }, method, 'failure');
    });
  });

  async function handle(ctx: AuthContext, method: AuthMethod): Promise<void> {
    const started = Date.now();
    const [attemptType] = AUDIT[method];
    const username = loggableLoginName(ctx.username);
    if ((method === 'password' && ctx.method === 'password') || method === 'none') {
      deps.recording.event(attemptType, null, { username, method });
      const credential: Credential = ctx.method === 'password' ? { method: 'password', password: ctx.password } : { method: 'none' };
      const decision = await ask(credential, ctx.username);
      // A refused "none" is OpenSSH's normal first probe: not a failure, not worth a log line.
      const quiet = method === 'none' && decision.outcome === 'reject' && decision.userMessage === undefined;
      if (!quiet) logAttempt(username, method, decision, started);
      await conclude(ctx, decision, method, quiet ? 'quiet' : 'failure', { username, method });
      return;
    }
    if (method === 'keyboard-interactive' && ctx.method === 'keyboard-interactive') {
      deps.recording.event(attemptType, null, { username, method });
      const decision = await ask({ method: 'keyboard-interactive', challenge: (c) => challenge(ctx, c) }, ctx.username);
      // The client moved on to another method (or left) mid-conversation: not a failure.
      const aborted = decision.outcome === 'error' && decision.reason === 'AUTH_ABORTED';
      if (!aborted) logAttempt(username, method, decision, started);
      await conclude(ctx, decision, method, aborted ? 'quiet' : 'failure', { username, method });
      return;
    }
    if (method === 'publickey' && ctx.method === 'publickey') {
      await handlePublicKey(ctx, started);
      return;
    }
    fail(ctx, undefined, method, 'failure');
  }

  /** Authorization, audit event (the attempt is already recorded) and the answer for one attempt. */
  async function conclude(ctx: AuthContext, decision: AuthDecision, method: AuthMethod, kind: FailureKind, audit: Record<string, unknown>, fingerprint?: string) {
    const [, successType, failType, errorType] = AUDIT[method];
    const final = decision.outcome === 'accept' ? await authorize(ctx, decision, method) : decision;
    if (final.outcome === 'accept') {
      deps.recording.event(successType, null, audit);
      succeed(ctx, final, method, fingerprint);
      return;
    }
    deps.recording.event(final.outcome === 'error' ? errorType : failType, null, { ...audit, reason: final.reason });
    // The client leaving while authz was asked is no failure either.
    fail(ctx, final, method, final.reason === 'AUTH_ABORTED' ? 'quiet' : kind);
  }

  /**
   * One SSH_MSG_USERAUTH_INFO_REQUEST / INFO_RESPONSE exchange (RFC 4256 §3.2–3.4). ssh2 calls
   * back with an Error when the client starts another request instead of answering.
   */
  function challenge(ctx: KeyboardAuthContext, c: KeyboardInteractiveChallenge): Promise<readonly string[]> {
    return new Promise((resolve, reject) => {
      if (deps.signal.aborted) {
        reject(new Error('connection closed'));
        return;
      }
      const onAbort = () => reject(new Error('connection closed'));
      deps.signal.addEventListener('abort', onAbort, { once: true });
      ctx.prompt(
        c.prompts.map((p) => ({ prompt: p.prompt, echo: p.echo })),
        '',
        c.instruction ?? '',
        (answers: unknown) => {
          deps.signal.removeEventListener('abort', onAbort);
          if (Array.isArray(answers) && answers.every((a) => typeof a === 'string')) resolve(answers);
          else reject(answers instanceof Error ? answers : new Error('keyboard-interactive exchange aborted'));
        },
      );
    });
  }

  async function handlePublicKey(ctx: PublicKeyAuthContext, started: number): Promise<void> {
    const [attemptType, , failType, errorType] = AUDIT.publickey;
    const username = loggableLoginName(ctx.username);
    const { authorizedKey, fingerprint } = describePublicKey(ctx.key.algo, ctx.key.data);
    const credential: PublicKeyCredential = {
      method: 'publickey',
      algorithm: ctx.key.algo,
      blob: ctx.key.data,
      authorizedKey,
      fingerprint,
    };
    const cacheKey = `${ctx.username}\0${ctx.key.data.toString('base64')}`;
    let pending = keyDecisions.get(cacheKey);
    if (!pending) {
      pending = ask(credential, ctx.username);
      keyDecisions.set(cacheKey, pending);
    }
    const decision = await pending;
    if (decision.outcome === 'error') keyDecisions.delete(cacheKey); // a later attempt may retry

    if (!ctx.signature) {
      // Signature-less probe ("would you accept this key?"): PK_OK or reject, no success yet.
      deps.recording.event(attemptType, null, { username, fingerprint, probe: true });
      if (decision.outcome === 'accept') ctx.accept();
      else {
        // The key's verdict: the client will not sign with a key refused here, so this is its outcome.
        deps.recording.event(decision.outcome === 'error' ? errorType : failType, null, { username, fingerprint, probe: true, reason: decision.reason });
        logAttempt(username, 'publickey', decision, started, fingerprint);
        fail(ctx, decision, 'publickey', 'probe');
      }
      return;
    }
    deps.recording.event(attemptType, null, { username, fingerprint });
    // Certificates: the signature is made by the certified key inside the cert (ssh-ca.ts).
    const signatureOk =
      ctx.blob !== undefined &&
      (isCertificateAlgorithm(ctx.key.algo)
        ? verifyCertificateUserauthSignature(ctx.key.data, ctx.signature, ctx.blob)
        : verifyUserauthSignature({ blob: ctx.key.data, signature: ctx.signature, signedData: ctx.blob, hashAlgo: ctx.hashAlgo }));
    if (!signatureOk) {
      const bad: AuthDecision = { outcome: 'reject', reason: 'AUTH_SIGNATURE_INVALID' };
      logAttempt(username, 'publickey', bad, started, fingerprint);
      deps.recording.event(failType, null, { username, fingerprint, reason: bad.reason });
      fail(ctx, bad, 'publickey', 'failure');
      return;
    }
    logAttempt(username, 'publickey', decision, started, fingerprint);
    await conclude(ctx, decision, 'publickey', 'failure', { username, fingerprint }, fingerprint);
  }

  function logAttempt(username: string, method: AuthMethod, decision: AuthDecision, started: number, fingerprint?: string) {
    const fields = {
      event: 'auth',
      username,
      method,
      outcome: decision.outcome,
      reason: decision.reason,
      durationMs: Date.now() - started,
      ...(fingerprint ? { fingerprint } : {}),
    };
    deps.metrics?.authAttempt(method, decision.outcome, fields.durationMs);
    if (decision.outcome === 'error') logger.error(fields, 'authentication backend error');
    else logger.info(fields, decision.outcome === 'accept' ? 'authentication succeeded' : 'authentication rejected');
  }
}

function isSupported(method: string): method is AuthMethod {
  return method === 'password' || method === 'publickey' || method === 'keyboard-interactive' || method === 'none';
}
