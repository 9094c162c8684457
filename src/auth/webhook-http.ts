/**
 * One HTTP request to a ContainerSSH-style webhook (every auth-step webhook through webhook-client.ts,
 * the config server): POST JSON, read JSON, validate it with zod. Shared by auth/webhook-client.ts and
 * config/config-webhook.ts so both treat the wire the same way; retries are the caller's (with
 * core/retry.ts), since only the caller knows its deadline.
 *
 * Only HTTP 200 with a body that parses and matches the schema is an answer. Everything else is
 * an AirlockError with the caller's codes: `unavailable` for a network error, a timeout or a
 * status other than 200; `badResponse` for a body that is too big, not JSON or the wrong shape.
 */
import { z } from 'zod';
import { AirlockError, isAirlockError, type ErrorCode } from '../core/errors.js';
import { timeoutSignal } from '../core/timeout-signal.js';

export interface WebhookClientOptions {
  /** Names the service in messages: "auth webhook", "config server". */
  readonly service: string;
  /** Code for "no answer" (network error, timeout, non-200 status). */
  readonly unavailableCode: ErrorCode;
  /** Code for "an answer, but not a valid one". */
  readonly badResponseCode: ErrorCode;
  readonly fetch?: typeof fetch;
  /** Upper bound on an answer's size; bigger answers are bad responses. Default 16 MiB. */
  readonly maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * Checks a webhook URL once at start-up: http(s) only, and no user:password part (fetch refuses
 * such URLs, and they would leak into logs). Returns it normalised.
 */
export function checkWebhookUrl(raw: string, service: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new AirlockError('CONFIG_INVALID', `${service} URL is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AirlockError('CONFIG_INVALID', `${service} URL must be http or https, got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new AirlockError('CONFIG_INVALID', `${service} URL must not contain a user or password`);
  }
  return url.toString();
}

/**
 * POSTs `body` (already JSON text) to `url` and returns the answer parsed by `schema`. The
 * attempt ends after `timeoutMs` or when `signal` aborts, whichever comes first.
 */
export async function postWebhook<S extends z.ZodType>(
  url: string,
  body: string,
  schema: S,
  request: { readonly timeoutMs: number; readonly signal: AbortSignal },
  options: WebhookClientOptions,
): Promise<z.output<S>> {
  const { service } = options;
  const doFetch = options.fetch ?? globalThis.fetch;
  const { timeoutMs, signal } = request;
  const attemptSignal = AbortSignal.any([signal, timeoutSignal(timeoutMs)]);
  let response: Response;
  try {
    response = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      // A redirect is not an answer; following it could re-send a password elsewhere.
      redirect: 'manual',
      signal: attemptSignal,
    });
  } catch (err) {
    throw unavailable(err, signal, timeoutMs, options);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new AirlockError(options.unavailableCode, `${service} answered HTTP ${response.status}`, {
      details: { status: response.status },
    });
  }
  let text: string;
  try {
    text = await readLimited(response, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, options);
  } catch (err) {
    if (isAirlockError(err)) throw err;
    throw unavailable(err, signal, timeoutMs, options);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AirlockError(options.badResponseCode, `${service} answer is not JSON`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new AirlockError(options.badResponseCode, `${service} answer has the wrong shape: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function unavailable(err: unknown, callerSignal: AbortSignal, timeoutMs: number, options: WebhookClientOptions): AirlockError {
  const { service, unavailableCode: code } = options;
  if (callerSignal.aborted) return new AirlockError(code, `${service} request aborted`, { cause: err });
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new AirlockError(code, `${service} did not answer within ${timeoutMs} ms`, { cause: err, details: { timeoutMs } });
  }
  // undici hides the useful part ("ECONNREFUSED ...") in `cause`.
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  const message = err instanceof Error ? err.message : String(err);
  return new AirlockError(code, `${service} request failed: ${message}${cause}`, { cause: err });
}

async function readLimited(response: Response, maxBytes: number, options: WebhookClientOptions): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new AirlockError(options.badResponseCode, `${options.service} answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
