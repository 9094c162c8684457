/**
 * The HTTP side shared by every ContainerSSH-style webhook of the auth step (`/password`,
 * `/pubkey`, `/keyboard-interactive`, `/authz`; see shared/reference/containerssh-protocol.md):
 * one POST of JSON, read `{success, authenticatedUsername?, metadata?, environment?, files?}`
 * (plus what a caller's schema adds).
 *
 * Only HTTP 200 with a body matching the schema is an answer. Anything else (other status,
 * network error, per-request timeout, undecodable body) is a backend error, retried with the
 * shared retry helper until `authTimeoutMs`; then the call fails: callers fail closed.
 */
import { z } from 'zod';
import type { MetadataMap } from '../backend/backend.js';
import type { Clock } from '../core/clock.js';
import { AirlockError, isAirlockError, type ErrorCode } from '../core/errors.js';
import { retry } from '../core/retry.js';
import { filesMapSchema, valueMapSchema, withoutSensitive } from './metadata-merge.js';
import { checkWebhookUrl, postWebhook } from './webhook-http.js';
import type { AuthRequest } from './provider.js';

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The ContainerSSH answer; unknown fields are let through (ContainerSSH rejects them, a known pain point). */
export const webhookAnswerSchema = z.looseObject({
  success: z.boolean(),
  authenticatedUsername: z.string().nullish(),
  metadata: valueMapSchema,
  environment: valueMapSchema,
  files: filesMapSchema,
});
export type WebhookAnswer = z.output<typeof webhookAnswerSchema>;

export interface WebhookCallerDeps {
  /** Per-request timeout (ContainerSSH `timeout`, default 2 s there). */
  readonly timeoutMs: number;
  /** Total time for one call including retries (ContainerSSH `authTimeout`). */
  readonly authTimeoutMs: number;
  readonly clock: Clock;
  readonly fetch: typeof fetch;
  /** Upper bound on an answer's size; bigger answers are bad responses. */
  readonly maxResponseBytes: number;
  /** First retry delay (backoff doubles, capped at 10 s). Default 200 ms. */
  readonly retryInitialDelayMs?: number;
  /** Names the service in error messages, e.g. "auth webhook" or "authz webhook". */
  readonly label: string;
}

export type WebhookCallResult<T> =
  | { readonly ok: true; readonly answer: T; readonly attempts: number; readonly unknownFields: readonly string[] }
  | { readonly ok: false; readonly code: ErrorCode | 'AUTH_ABORTED'; readonly attempts: number; readonly lastError?: AirlockError };

/** POSTs `body` to `url` until an answer that passes `schema`, or until the deadline / abort. */
export async function callWebhook<S extends z.ZodObject>(
  deps: WebhookCallerDeps,
  url: string,
  body: unknown,
  schema: S,
  signal: AbortSignal,
): Promise<WebhookCallResult<z.output<S>>> {
  const { clock } = deps;
  const deadline = clock.now() + deps.authTimeoutMs;
  const text = JSON.stringify(body);
  let attempts = 0;
  let lastError: AirlockError | undefined;
  try {
    const answer = await retry(
      async () => {
        attempts++;
        // Never let one request outlive the overall deadline.
        const timeoutMs = Math.max(1, Math.min(deps.timeoutMs, deadline - clock.now()));
        try {
          return parseAnswer(deps.label, await postOnce(deps, url, text, signal, timeoutMs), schema);
        } catch (err) {
          // A last attempt that only timed out because the overall deadline cut it short says
          // nothing new: keep the earlier attempt's reason (e.g. a bad answer) as the verdict.
          const cutShort = timeoutMs < deps.timeoutMs && isTimeout(err);
          if (isAirlockError(err) && !(cutShort && lastError)) lastError = err;
          throw err;
        }
      },
      {
        deadline,
        signal,
        clock,
        ...(deps.retryInitialDelayMs === undefined ? {} : { initialDelayMs: deps.retryInitialDelayMs }),
        // Only backend errors are worth another try; the caller giving up is not.
        retryable: (err) => isAirlockError(err) && !signal.aborted,
      },
    );
    const known = new Set(Object.keys(schema.shape));
    const unknownFields = Object.keys(answer).filter((k) => !known.has(k));
    return { ok: true, answer, attempts, unknownFields };
  } catch (err) {
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      return { ok: false, code: isAirlockError(reason) ? reason.code : 'AUTH_ABORTED', attempts, ...(lastError ? { lastError } : {}) };
    }
    return { ok: false, code: lastError?.code ?? (isAirlockError(err) ? err.code : 'AUTH_BACKEND_ERROR'), attempts, ...(lastError ? { lastError } : {}) };
  }
}

function parseAnswer<S extends z.ZodObject>(label: string, json: unknown, schema: S): z.output<S> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new AirlockError('AUTH_BAD_RESPONSE', `${label} answer has the wrong shape: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * One request through the webhook wire shared with the config server (webhook-http.ts): throws
 * AirlockError AUTH_BACKEND_ERROR (retryable) or AUTH_BAD_RESPONSE. The shape is the caller's check.
 */
function postOnce(deps: WebhookCallerDeps, url: string, body: string, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
  return postWebhook(url, body, z.unknown(), { timeoutMs, signal }, {
    service: deps.label,
    unavailableCode: 'AUTH_BACKEND_ERROR',
    badResponseCode: 'AUTH_BAD_RESPONSE',
    fetch: deps.fetch,
    maxResponseBytes: deps.maxResponseBytes,
  });
}

/** `<base>/<path>`, checked once at start-up. */
export function webhookEndpoint(base: string, path: string, label = 'auth webhook'): string {
  return checkWebhookUrl(`${base.replace(/\/+$/, '')}/${path}`, label);
}

/** The connection facts every ContainerSSH auth-step request carries. */
export interface ConnectionFacts {
  readonly username: string;
  readonly remoteAddress: string;
  readonly connectionId: string;
  readonly clientVersion: string;
  readonly metadata: MetadataMap;
  readonly environment: MetadataMap;
  readonly files: MetadataMap;
}

export function connectionFacts(request: AuthRequest): ConnectionFacts {
  return {
    username: request.username,
    remoteAddress: request.remoteAddress,
    connectionId: request.connectionId,
    clientVersion: request.clientVersion,
    // `sensitive` values stay with the gateway: never forwarded to a later webhook.
    metadata: withoutSensitive(request.metadata),
    environment: withoutSensitive(request.environment),
    files: withoutSensitive(request.files),
  };
}

/** A per-request timeout (webhook-http.ts puts the timeout into the error's details). */
function isTimeout(err: unknown): boolean {
  return isAirlockError(err) && err.details !== undefined && 'timeoutMs' in err.details;
}
