/**
 * The ContainerSSH authorization step (`auth.authz`): after a successful authentication, and
 * before the login is accepted, POST `<url>/authz` with the connection facts, the metadata,
 * environment and files collected so far (non-sensitive entries only) and `authenticatedUsername`.
 * The answer has the auth webhooks' shape: `success: false` denies the login; `success: true`
 * may add or overwrite metadata/environment/files (0.6 key-by-key merge) and replace the
 * authenticated user name. Errors fail closed (webhook-client.ts).
 */
import type { Logger } from 'pino';
import { mergeMaps } from './metadata-merge.js';
import type { AuthDecision, AuthRequest } from './provider.js';
import { callWebhook, connectionFacts, webhookAnswerSchema, webhookEndpoint } from './webhook-client.js';
import { webhookCaller, type WebhookAuthDeps } from './webhook.js';

export interface AuthzRequest extends AuthRequest {
  /** Who authentication says the user is (the provider's `authenticatedUsername`). */
  readonly authenticatedUsername: string;
}

/** Decides whether an authenticated user may in; `reject` and `error` both refuse the login. */
export interface Authorizer {
  authorize(request: AuthzRequest, signal: AbortSignal): Promise<AuthDecision>;
}

export interface AuthzWebhookDeps extends Omit<WebhookAuthDeps, 'passwordUrl' | 'publicKeyUrl'> {
  /** Base URL; `/authz` is appended. */
  readonly url: string;
  readonly logger: Logger;
}

export function createAuthzWebhook(deps: AuthzWebhookDeps): Authorizer {
  const caller = webhookCaller(deps, 'authz webhook');
  const { clock } = caller;
  const url = webhookEndpoint(deps.url, 'authz', 'authz webhook');
  return {
    async authorize(request: AuthzRequest, signal: AbortSignal): Promise<AuthDecision> {
      const started = clock.now();
      const body = { ...connectionFacts(request), authenticatedUsername: request.authenticatedUsername };
      const result = await callWebhook(caller, url, body, webhookAnswerSchema, signal);
      const finish = (decision: AuthDecision): AuthDecision => {
        const line = {
          connectionId: request.connectionId,
          username: request.username,
          authenticatedUsername: request.authenticatedUsername,
          remoteAddress: request.remoteAddress,
          outcome: decision.outcome,
          reason: decision.reason,
          durationMs: clock.now() - started,
          attempts: result.attempts,
          ...(!result.ok && result.lastError ? { error: result.lastError.message } : {}),
        };
        if (decision.outcome === 'error') deps.logger.warn(line, 'authz webhook error');
        else deps.logger.debug(line, 'authz webhook answer');
        return decision;
      };
      if (!result.ok) return finish({ outcome: 'error', reason: result.code });
      const answer = result.answer;
      if (result.unknownFields.length > 0) {
        deps.logger.warn({ connectionId: request.connectionId, fields: result.unknownFields }, 'authz webhook answer has unknown fields');
      }
      if (!answer.success) return finish({ outcome: 'reject', reason: 'AUTHZ_DENIED' });
      return finish({
        outcome: 'accept',
        authenticatedUsername: answer.authenticatedUsername || request.authenticatedUsername,
        metadata: mergeMaps(request.metadata, answer.metadata),
        environment: mergeMaps(request.environment, answer.environment),
        files: mergeMaps(request.files, answer.files),
      });
    },
  };
}
