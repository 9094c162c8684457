import type { AuthContext, Connection, PublicKeyAuthContext } from 'ssh2';
import type { Logger } from 'pino';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential, PublicKeyCredential } from '../auth/provider.js';
import { describePublicKey, verifyUserauthSignature } from '../auth/public-key.js';
import { isCertificateAlgorithm, verifyCertificateUserauthSignature } from '../auth/ssh-ca.js';
import { mergeMaps } from '../auth/metadata-merge.js';
import { loggableLoginName } from '../auth/login-name.js';
import type { ConnectionRecording } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import type { MetadataMap } from '../backend/backend.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { sendAuthBanner } from './auth-banner.js';
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
  readonly remoteAddress: string;
  readonly clientVersion: () => string;
  readonly logger: Logger;
  readonly recording: ConnectionRecording;
  /** Aborted when the connection goes away: pending webhook calls stop. */
  readonly signal: AbortSignal;
  readonly onAuthenticated: (identity: AuthenticatedIdentity) => void;
  /** Too many failures: the connection must be dropped. */
  readonly onTooManyFailures: () => void;
  readonly metrics?: GatewayMetrics;
}

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

  const fail = (ctx: AuthContext, decision: AuthDecision | undefined, method: AuthMethod, counts: boolean) => {
    if (decision?.userMessage) {
      // The provider's own line, e.g. "the debug-session token has expired [TOKEN_EXPIRED]".
      sendAuthBanner(client, decision.userMessage);
    } else if (decision?.outcome === 'error') {
      // The user would otherwise see a bare "Permission denied"; say why in one line.
      const code = (decision.reason && decision.reason in ERROR_CODES ? decision.reason : 'AUTH_BACKEND_ERROR') as ErrorCode;
      sendAuthBanner(client, `airlock: ${ERROR_CODES[code].userMessage} [${code}]`);
    }
    if (counts) failures++;
    ctx.reject(advertised());
    if (counts && failures >= deps.maxAuthTries) {
      logger.warn({ failures, method }, 'too many authentication failures');
      sendAuthBanner(client, 'airlock: too many authentication failures');
      deps.onTooManyFailures();
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

  // "none" is never advertised (RFC 4252 §5.2); offering it only means a provider may accept it.
  const advertised = () => deps.methods.filter((m) => m !== 'none');

  client.on('authentication', (ctx) => {
    const method = ctx.method;
    if (!isSupported(method) || !deps.methods.includes(method)) {
      // OpenSSH always starts with "none" to learn the methods; that is not a failure.
      ctx.reject(advertised());
      return;
    }
    void handle(ctx, method).catch((err: unknown) => {
      logger.error({ err }, 'authentication handler failed');
      fail(ctx, { outcome: 'error', reason: 'INTERNAL' }, method, true);
    });
  });

  async function handle(ctx: AuthContext, method: AuthMethod): Promise<void> {
    const started = Date.now();
    const [attemptType, successType, failType, errorType] = AUDIT[method];
    const username = loggableLoginName(ctx.username);
    if ((method === 'password' && ctx.method === 'password') || method === 'none') {
      deps.recording.event(attemptType, null, { username, method });
      const credential: Credential = ctx.method === 'password' ? { method: 'password', password: ctx.password } : { method: 'none' };
      const decision = await ask(credential, ctx.username);
      // A refused "none" is OpenSSH's normal first probe: not a failure, not worth a log line.
      const quiet = method === 'none' && decision.outcome === 'reject' && decision.userMessage === undefined;
      if (!quiet) logAttempt(username, method, decision, started);
      if (decision.outcome === 'accept') {
        deps.recording.event(successType, null, { username, method });
        succeed(ctx, decision, method);
      } else {
        deps.recording.event(decision.outcome === 'error' ? errorType : failType, null, { username, method, reason: decision.reason });
        fail(ctx, decision, method, !quiet);
      }
      return;
    }
    if (method === 'publickey' && ctx.method === 'publickey') {
      await handlePublicKey(ctx, started);
      return;
    }
    fail(ctx, undefined, method, true);
  }

  async function handlePublicKey(ctx: PublicKeyAuthContext, started: number): Promise<void> {
    const [attemptType, successType, failType, errorType] = AUDIT.publickey;
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
        logAttempt(username, 'publickey', decision, started, fingerprint);
        fail(ctx, decision, 'publickey', true);
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
      fail(ctx, bad, 'publickey', true);
      return;
    }
    logAttempt(username, 'publickey', decision, started, fingerprint);
    if (decision.outcome === 'accept') {
      deps.recording.event(successType, null, { username, fingerprint });
      succeed(ctx, decision, 'publickey', fingerprint);
    } else {
      deps.recording.event(decision.outcome === 'error' ? errorType : failType, null, { username, fingerprint, reason: decision.reason });
      fail(ctx, decision, 'publickey', true);
    }
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
