/**
 * ContainerSSH config server client (shared/reference/containerssh-protocol.md, "Config
 * webhook"): once per connection, after authentication, POST the authenticated connection's facts
 * to `configserver.url` exactly as configured and read
 * `{config?: {...}, metadata?, environment?, files?}`.
 *
 * The HTTP side is the auth webhook's (auth/webhook-http.ts): only HTTP 200 with a body of that
 * shape is an answer; anything else is retried with the shared backoff until `totalTimeoutMs`,
 * then it fails (fail closed: the caller refuses the connection). `config` is returned as sent;
 * merging and validating it is merge.ts's job.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ConnectionInfo, MetadataMap } from '../backend/backend.js';
import { filesMapSchema, valueMapSchema, withoutSensitive } from '../auth/metadata-merge.js';
import { checkWebhookUrl, postWebhook, type WebhookClientOptions } from '../auth/webhook-http.js';
import { systemClock, type Clock } from '../core/clock.js';
import { AirlockError, isAirlockError } from '../core/errors.js';
import { retry } from '../core/retry.js';

export interface ConfigWebhookDeps {
  /** POSTed to as is (ContainerSSH appends nothing; examples end in `/config`). */
  readonly url: string;
  /** One request (`configserver.timeout`). */
  readonly timeoutMs: number;
  /** The whole call including retries (`configserver.totalTimeout`). */
  readonly totalTimeoutMs: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  /** First retry delay (backoff doubles, capped at 10 s). Default 200 ms. */
  readonly retryInitialDelayMs?: number;
}

/** The answer with its value maps decoded (`files` values stay base64). */
export interface ConfigAnswer {
  /** Subset of the app config, unvalidated; absent = no change. */
  readonly config?: Readonly<Record<string, unknown>>;
  readonly metadata?: MetadataMap;
  readonly environment?: MetadataMap;
  readonly files?: MetadataMap;
}

export interface ConfigWebhook {
  /** Asks the config server about one authenticated connection. Throws CONFIG_SERVER_* errors. */
  fetch(info: ConnectionInfo, signal: AbortSignal): Promise<ConfigAnswer>;
}

const KNOWN_FIELDS = new Set(['config', 'metadata', 'environment', 'files']);

// Unknown fields are let through with a warning, as for the auth webhook. `null` (a Go server's
// nil map) reads as absent.
const answerSchema = z.looseObject({
  config: z.record(z.string(), z.unknown()).nullish(),
  metadata: valueMapSchema,
  environment: valueMapSchema,
  files: filesMapSchema,
});

export function createConfigWebhook(deps: ConfigWebhookDeps): ConfigWebhook {
  const clock = deps.clock ?? systemClock;
  const url = checkWebhookUrl(deps.url, 'config server');
  const client: WebhookClientOptions = {
    service: 'config server',
    unavailableCode: 'CONFIG_SERVER_ERROR',
    badResponseCode: 'CONFIG_SERVER_BAD_RESPONSE',
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  };

  return {
    async fetch(info, signal) {
      const started = clock.now();
      const deadline = started + deps.totalTimeoutMs;
      const body = JSON.stringify(requestBody(info));
      const log = deps.logger.child({ connectionId: info.connectionId });
      let attempts = 0;
      let answer: z.output<typeof answerSchema>;
      try {
        answer = await retry(
          () => {
            attempts++;
            // One request never outlives the whole call's deadline.
            const timeoutMs = Math.max(1, Math.min(deps.timeoutMs, deadline - clock.now()));
            return postWebhook(url, body, answerSchema, { timeoutMs, signal }, client);
          },
          {
            deadline,
            signal,
            clock,
            ...(deps.retryInitialDelayMs === undefined ? {} : { initialDelayMs: deps.retryInitialDelayMs }),
            retryable: (err) => isAirlockError(err) && !signal.aborted,
            onRetry: (err, attempt, delayMs) =>
              log.debug({ code: isAirlockError(err) ? err.code : undefined, error: (err as Error).message, attempt, delayMs }, 'config server request failed, retrying'),
          },
        );
      } catch (err) {
        const e = signal.aborted
          ? new AirlockError('CONFIG_SERVER_ERROR', 'config server request aborted (the connection closed)', { cause: err })
          : isAirlockError(err)
            ? err
            : new AirlockError('CONFIG_SERVER_ERROR', `config server request failed: ${(err as Error).message}`, { cause: err });
        throw new AirlockError(e.code, e.message, { cause: e.cause, details: { ...e.details, attempts, durationMs: clock.now() - started } });
      }
      const unknown = Object.keys(answer).filter((k) => !KNOWN_FIELDS.has(k));
      if (unknown.length > 0) log.warn({ fields: unknown }, 'config server answer has unknown fields');
      log.debug({ attempts, durationMs: clock.now() - started, sections: Object.keys(answer.config ?? {}) }, 'config server answer');
      return {
        ...(answer.config ? { config: answer.config } : {}),
        ...(answer.metadata ? { metadata: answer.metadata } : {}),
        ...(answer.environment ? { environment: answer.environment } : {}),
        ...(answer.files ? { files: answer.files } : {}),
      };
    },
  };
}

interface ConfigRequestBody {
  readonly username: string;
  readonly authenticatedUsername: string;
  readonly remoteAddress: string;
  readonly connectionId: string;
  readonly clientVersion: string;
  readonly metadata: MetadataMap;
  readonly environment: MetadataMap;
  readonly files: MetadataMap;
}

function requestBody(info: ConnectionInfo): ConfigRequestBody {
  // fromEntries: a path named "__proto__" stays a plain key.
  const files = Object.fromEntries(
    Object.entries(info.files)
      .filter(([, file]) => !file.sensitive)
      .map(([path, file]) => [path, { value: file.content.toString('base64'), sensitive: false }]),
  );
  return {
    // Already the loggable form: a CI-debug token typed as the user name arrives as its digest.
    username: info.loginUsername,
    authenticatedUsername: info.username,
    remoteAddress: info.remoteAddress,
    connectionId: info.connectionId,
    clientVersion: info.clientVersion,
    // `sensitive` values stay with the gateway: never forwarded to a later webhook.
    metadata: withoutSensitive(info.metadata),
    environment: withoutSensitive(info.environment),
    files,
  };
}
