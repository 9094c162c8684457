/**
 * Keyboard-interactive (RFC 4256) login through a webhook: Airlock's own extension of the
 * ContainerSSH auth protocol (ContainerSSH has no keyboard-interactive webhook). The webhook
 * leads the conversation, so a password, a one-time code or both can be asked without the
 * gateway knowing which:
 *
 *   POST <url>/keyboard-interactive   {connection facts..., "answers": []}
 *   ← {"success": false, "prompts": [{"prompt": "Password: ", "echo": false}], "instruction"?: "..."}
 *   (the gateway asks the client, then)
 *   POST <url>/keyboard-interactive   {..., "answers": [{"prompt": "Password: ", "echo": false, "answerBase64": "..."}]}
 *   ← {"success": true, "authenticatedUsername"?, "metadata"?, "environment"?, "files"?}
 *
 * Every request carries all answers of this attempt so far (the webhook keeps no state).
 * `success: true` accepts; `success: false` with `prompts` asks them; `success: false` without
 * prompts rejects. At most MAX_ROUNDS rounds of questions: a webhook that keeps asking gives a
 * bad-response error. Errors and retries are the other auth webhooks' (webhook-client.ts): fail
 * closed. `authTimeout` bounds each request (with its retries), not the time the user takes to
 * type, which `ssh.loginGraceTime` bounds.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { mergeMaps } from './metadata-merge.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential, KeyboardInteractivePrompt } from './provider.js';
import { callWebhook, connectionFacts, webhookAnswerSchema, webhookEndpoint } from './webhook-client.js';
import { webhookCaller, type WebhookAuthDeps } from './webhook.js';

export interface KeyboardInteractiveWebhookDeps extends Omit<WebhookAuthDeps, 'passwordUrl' | 'publicKeyUrl'> {
  /** Base URL; `/keyboard-interactive` is appended. */
  readonly url: string;
  readonly logger: Logger;
}

/** Rounds of questions per attempt (password, then a code, ... — real flows need two). */
export const MAX_ROUNDS = 5;
const MAX_PROMPTS = 10;
const MAX_TEXT = 1024;

const promptSchema = z.looseObject({
  prompt: z.string().max(MAX_TEXT),
  // Hidden unless the webhook says otherwise: answers are usually secrets.
  echo: z.boolean().nullish(),
});

const answerSchema = webhookAnswerSchema.extend({
  prompts: z.array(promptSchema).max(MAX_PROMPTS).nullish(),
  instruction: z.string().max(MAX_TEXT).nullish(),
});

interface SentAnswer {
  readonly prompt: string;
  readonly echo: boolean;
  readonly answerBase64: string;
}

export function createKeyboardInteractiveWebhookProvider(deps: KeyboardInteractiveWebhookDeps): AuthProvider {
  const caller = webhookCaller(deps, 'keyboard-interactive webhook');
  const { clock } = caller;
  const url = webhookEndpoint(deps.url, 'keyboard-interactive', 'keyboard-interactive webhook');

  return {
    name: 'keyboard-interactive-webhook',
    supports: (method: AuthMethod) => method === 'keyboard-interactive',
    async authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision> {
      const started = clock.now();
      let requests = 0;
      let rounds = 0;
      let lastError: string | undefined;
      const finish = (decision: AuthDecision): AuthDecision => {
        const line = {
          connectionId: request.connectionId,
          username: request.username,
          method: 'keyboard-interactive',
          remoteAddress: request.remoteAddress,
          outcome: decision.outcome,
          reason: decision.reason,
          durationMs: clock.now() - started,
          attempts: requests,
          rounds,
          ...(lastError === undefined ? {} : { error: lastError }),
        };
        if (decision.outcome === 'error') deps.logger.warn(line, 'auth provider error');
        else deps.logger.debug(line, 'auth provider answer');
        return decision;
      };
      if (credential.method !== 'keyboard-interactive') return finish({ outcome: 'reject', reason: 'AUTH_METHOD_UNSUPPORTED' });

      const answers: SentAnswer[] = [];
      for (;;) {
        const result = await callWebhook(caller, url, { ...connectionFacts(request), answers }, answerSchema, signal);
        requests += result.attempts;
        if (!result.ok) {
          lastError = result.lastError?.message;
          return finish({ outcome: 'error', reason: result.code });
        }
        const answer = result.answer;
        if (result.unknownFields.length > 0) {
          deps.logger.warn({ connectionId: request.connectionId, fields: result.unknownFields }, 'keyboard-interactive webhook answer has unknown fields');
        }
        if (answer.success) {
          return finish({
            outcome: 'accept',
            authenticatedUsername: answer.authenticatedUsername || request.username,
            metadata: mergeMaps(request.metadata, answer.metadata),
            environment: mergeMaps(request.environment, answer.environment),
            files: mergeMaps(request.files, answer.files),
          });
        }
        const prompts: KeyboardInteractivePrompt[] = (answer.prompts ?? []).map((p) => ({ prompt: p.prompt, echo: p.echo ?? false }));
        if (prompts.length === 0) return finish({ outcome: 'reject', reason: 'AUTH_REJECTED' });
        if (rounds >= MAX_ROUNDS) {
          lastError = `keyboard-interactive webhook asked more than ${MAX_ROUNDS} rounds of questions`;
          return finish({ outcome: 'error', reason: 'AUTH_BAD_RESPONSE' });
        }
        rounds++;
        let replies: readonly string[];
        try {
          replies = await credential.challenge({ prompts, ...(answer.instruction ? { instruction: answer.instruction } : {}) });
        } catch {
          // The client started another method or left: nothing to decide.
          return finish({ outcome: 'error', reason: 'AUTH_ABORTED' });
        }
        // RFC 4256 §3.4: one response per prompt; anything else is a broken client.
        if (replies.length !== prompts.length) return finish({ outcome: 'reject', reason: 'AUTH_REJECTED' });
        prompts.forEach((p, i) => answers.push({ prompt: p.prompt, echo: p.echo, answerBase64: Buffer.from(replies[i] ?? '', 'utf8').toString('base64') }));
      }
    },
  };
}
