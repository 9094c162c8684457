/**
 * ContainerSSH-compatible auth webhook client (0.5 protocol as served by 0.6; see
 * shared/reference/containerssh-protocol.md): POST `<url>/password` or `<url>/pubkey` with the
 * connection facts, read `{success, authenticatedUsername?, metadata?, environment?, files?}`.
 *
 * Only HTTP 200 with a body matching the schema is an answer. Anything else (other status,
 * network error, per-request timeout, undecodable body) is a backend error, retried with the
 * shared retry helper until `authTimeoutMs`, then the decision is `error`: fail closed.
 * A clean `success: false` is a `reject` at once (the client may try its next method).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { mergeMaps } from './metadata-merge.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  callWebhook,
  connectionFacts,
  webhookAnswerSchema,
  webhookEndpoint,
  type ConnectionFacts,
  type WebhookCallerDeps,
} from './webhook-client.js';

export interface WebhookAuthDeps {
  /** Base URL for password auth; `/password` is appended. Absent: password not supported. */
  readonly passwordUrl?: string;
  /** Base URL for public-key auth; `/pubkey` is appended. Absent: publickey not supported. */
  readonly publicKeyUrl?: string;
  /** Per-request timeout (ContainerSSH `timeout`, default 2 s there). */
  readonly timeoutMs: number;
  /** Total time for one authentication including retries (ContainerSSH `authTimeout`). */
  readonly authTimeoutMs: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  /** Upper bound on an answer's size; bigger answers are bad responses. Default 16 MiB. */
  readonly maxResponseBytes?: number;
  /** First retry delay (backoff doubles, capped at 10 s). Default 200 ms. */
  readonly retryInitialDelayMs?: number;
}

/** The caller settings of `WebhookAuthDeps`-like deps (shared by the auth-step webhooks). */
export function webhookCaller(
  deps: Pick<WebhookAuthDeps, 'timeoutMs' | 'authTimeoutMs' | 'clock' | 'fetch' | 'maxResponseBytes' | 'retryInitialDelayMs'>,
  label: string,
): WebhookCallerDeps {
  return {
    timeoutMs: deps.timeoutMs,
    authTimeoutMs: deps.authTimeoutMs,
    clock: deps.clock ?? systemClock,
    fetch: deps.fetch ?? globalThis.fetch,
    maxResponseBytes: deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    label,
    ...(deps.retryInitialDelayMs === undefined ? {} : { retryInitialDelayMs: deps.retryInitialDelayMs }),
  };
}

export function createWebhookAuthProvider(deps: WebhookAuthDeps): AuthProvider {
  const caller = webhookCaller(deps, 'auth webhook');
  const { clock } = caller;
  const endpoints: Partial<Record<AuthMethod, string>> = {};
  if (deps.passwordUrl !== undefined) endpoints.password = webhookEndpoint(deps.passwordUrl, 'password');
  if (deps.publicKeyUrl !== undefined) endpoints.publickey = webhookEndpoint(deps.publicKeyUrl, 'pubkey');

  return {
    name: 'webhook',
    supports: (method: AuthMethod) => endpoints[method] !== undefined,
    async authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision> {
      const started = clock.now();
      const url = endpoints[credential.method];
      const fingerprint = credential.method === 'publickey' ? credential.fingerprint : undefined;
      let attempts = 0;
      let lastError: string | undefined;

      const finish = (decision: AuthDecision): AuthDecision => {
        const line = {
          connectionId: request.connectionId,
          username: request.username,
          method: credential.method,
          remoteAddress: request.remoteAddress,
          outcome: decision.outcome,
          reason: decision.reason,
          durationMs: clock.now() - started,
          attempts,
          ...(fingerprint === undefined ? {} : { fingerprint }),
          ...(decision.authenticatedUsername !== undefined && decision.authenticatedUsername !== request.username
            ? { authenticatedUsername: decision.authenticatedUsername }
            : {}),
          ...(lastError === undefined ? {} : { error: lastError }),
        };
        // The SSH layer writes the one canonical line per attempt; this is the provider's detail.
        if (decision.outcome === 'error') deps.logger.warn(line, 'auth provider error');
        else deps.logger.debug(line, 'auth provider answer');
        return decision;
      };

      if (url === undefined) return finish({ outcome: 'reject', reason: 'AUTH_METHOD_UNSUPPORTED' });
      const result = await callWebhook(caller, url, requestBody(credential, request), webhookAnswerSchema, signal);
      attempts = result.attempts;
      if (!result.ok) {
        lastError = result.lastError?.message;
        return finish({ outcome: 'error', reason: result.code });
      }
      const answer = result.answer;
      if (result.unknownFields.length > 0) {
        deps.logger.warn({ connectionId: request.connectionId, fields: result.unknownFields }, 'auth webhook answer has unknown fields');
      }
      if (!answer.success) return finish({ outcome: 'reject', reason: 'AUTH_REJECTED' });
      // Returned maps are the complete result after this step (earlier ⊕ answer), so merging
      // them again with mergeMaps(request.x, decision.x) is harmless.
      return finish({
        outcome: 'accept',
        authenticatedUsername: answer.authenticatedUsername || request.username,
        metadata: mergeMaps(request.metadata, answer.metadata),
        environment: mergeMaps(request.environment, answer.environment),
        files: mergeMaps(request.files, answer.files),
      });
    },
  };
}

interface WebhookRequestBody extends ConnectionFacts {
  readonly passwordBase64?: string;
  readonly publicKey?: string;
}

function requestBody(credential: Credential, request: AuthRequest): WebhookRequestBody {
  const common = connectionFacts(request);
  switch (credential.method) {
    case 'password':
      return { ...common, passwordBase64: Buffer.from(credential.password, 'utf8').toString('base64') };
    case 'publickey':
      return { ...common, publicKey: credential.authorizedKey };
    default:
      return common;
  }
}
