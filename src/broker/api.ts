/**
 * The provisioning API (fastify): CI asks for a debug session, gets a token and a ready-to-paste
 * ssh command. Every route but /healthz needs `Authorization: Bearer <provisioning key>`.
 *
 *   POST   /v1/sessions      → 201 {token, session_id, ssh_host, ssh_port, ssh_command, expires_at, ...}
 *   GET    /v1/sessions/:id  → 200 session metadata (no env values, no token)
 *   DELETE /v1/sessions/:id  → 200 {session_id, revoked: true}; ends live connections
 *   GET    /healthz          → 200 / 503 (store reachability)
 *
 * Errors are `{error: <code>, message, problems?}` with the codes of docs/errors.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AirlockError, ERROR_CODES, toAirlockError, type ErrorCode } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { effectiveTtlSeconds, imageAllowed, isEnvName, MAX_ENV_NAME_LENGTH, sanitizeEnv, type SecretPolicy, type TtlPolicy } from './policy.js';
import { newSessionId, type TokenIssuer } from './tokens.js';
import type { SessionRecord, SessionStore } from './store/session-store.js';

export interface BrokerPolicy extends SecretPolicy, TtlPolicy {
  readonly defaultMaxConnections: number;
  readonly allowedImages: readonly string[];
  /** Seconds a connection may outlive its token (its deadline is expiry + grace). */
  readonly deadlineGraceSeconds: number;
}

export interface BrokerApiDeps {
  readonly store: SessionStore;
  readonly issuer: TokenIssuer;
  /** Accepted bearer keys (several, for rotation). */
  readonly provisionKeys: readonly string[];
  readonly policy: BrokerPolicy;
  /** Put the session's secret-free facts into the token (degraded logins without the store). */
  readonly allowStatelessTokens: boolean;
  /** What goes into `ssh_command`. */
  readonly publicHost: string;
  readonly publicPort: number;
  /** The store keeps a session this long after its deadline (clock skew, late revocation checks). */
  readonly retainMarginMs?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
}

export interface BrokerApi {
  listen(host: string, port: number): Promise<AddressInfo>;
  close(): Promise<void>;
}

const BODY_LIMIT = 256 * 1024;
const MAX_ENV_VARS = 1000;
const MAX_ENV_VALUE = 32 * 1024;

/** Optional CI fields often arrive empty (`${{ github.event.pull_request.number }}` on a push). */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' || v === null ? undefined : v), schema.optional());
const printable = (max: number) =>
  z.string().max(max).regex(/^[\x21-\x7e]+$/, { message: 'must be printable ASCII without spaces' });

// A Docker image reference: [registry[:port]/]name[:tag][@digest]; no whitespace or shell syntax.
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/;
const ENV_NAME_RULE = `letters, digits and "_", not starting with a digit, at most ${MAX_ENV_NAME_LENGTH} characters`;
/** The name itself goes into the message: a record key is in the path, an array item is not. */
const envName = z.string().refine(isEnvName, {
  error: (issue) => {
    const name = String(issue.input);
    const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
    return `variable name ${JSON.stringify(shown)} is invalid: use ${ENV_NAME_RULE}`;
  },
});

export const provisionRequestSchema = z.strictObject({
  image: z.string().min(1).max(512).regex(IMAGE, { message: 'must be an image reference like ghcr.io/org/app:tag' }),
  commit_sha: optional(z.string().regex(/^[0-9a-fA-F]{7,64}$/, { message: 'must be a hex commit id (7-64 characters)' })),
  pr_number: optional(
    z.union([z.int().positive(), z.string().regex(/^[1-9]\d{0,9}$/, { message: 'must be a positive number' }).transform(Number)]),
  ),
  actor: optional(printable(128)),
  repository: optional(printable(256)),
  pipeline_run: optional(printable(256)),
  ttl_seconds: optional(z.int().min(1, { message: 'must be at least 1' })),
  max_connections: optional(z.int().min(1).max(20)),
  env: optional(
    z
      .record(
        envName,
        z.string().max(MAX_ENV_VALUE).regex(/^[^\0]*$/, { message: 'must not contain NUL' }),
      )
      .refine((env) => Object.keys(env).length <= MAX_ENV_VARS, { message: `at most ${MAX_ENV_VARS} variables` }),
  ),
  /** Names the client already stripped before sending (airlock provision --pass-env); listed, never trusted for anything else. */
  redacted_vars: optional(z.array(envName).max(MAX_ENV_VARS)),
});
export type ProvisionRequest = z.output<typeof provisionRequestSchema>;

const STATUS: Partial<Record<ErrorCode, number>> = {
  REQUEST_INVALID: 400,
  PROVISION_UNAUTHORIZED: 401,
  POLICY_DENIED: 403,
  SESSION_NOT_FOUND: 404,
  STORE_UNAVAILABLE: 503,
};

/** "2026-11-24 20:06:40 UTC" */
export function humanUtc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function sshCommand(token: string, host: string, port: number): string {
  const target = `${token}@${host}`;
  return port === 22 ? `ssh ${target}` : `ssh -p ${port} ${target}`;
}

function problemsOf(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    const what =
      i.code === 'invalid_type' && i.input === undefined
        ? 'required'
        : i.code === 'invalid_key' // a record key: zod wraps the key's own message
          ? (i.issues[0]?.message ?? i.message)
          : i.message;
    return path === '' ? what : `${path}: ${what}`;
  });
}

function sendError(reply: FastifyReply, code: ErrorCode, message?: string, problems?: string[], status?: number): FastifyReply {
  return reply
    .code(status ?? STATUS[code] ?? 500)
    .send({ error: code, message: message ?? ERROR_CODES[code].userMessage, ...(problems ? { problems } : {}) });
}

export function createBrokerApi(deps: BrokerApiDeps): BrokerApi {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  const retainMarginMs = deps.retainMarginMs ?? 60_000;
  if (deps.provisionKeys.length === 0) {
    throw new AirlockError('CONFIG_INVALID', 'the provisioning API needs at least one key (broker.provisionKeys or AIRLOCK_PROVISION_KEYS)');
  }
  // Compare digests: equal lengths for timingSafeEqual, and no early exit on the first match.
  const keyDigests = deps.provisionKeys.map((k) => createHash('sha256').update(k).digest());
  const authorized = (req: FastifyRequest): boolean => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const presented = createHash('sha256').update(match?.[1] ?? '').digest();
    let ok = false;
    for (const d of keyDigests) ok = timingSafeEqual(presented, d) || ok;
    return ok && match !== null;
  };

  const app = fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    forceCloseConnections: true,
    trustProxy: false,
  });

  app.addHook('onRequest', async (req, reply) => {
    if (req.url.split('?')[0] === '/healthz') return;
    if (!authorized(req)) {
      logger.warn({ code: 'PROVISION_UNAUTHORIZED', method: req.method, url: req.url, remoteAddress: req.ip }, 'provisioning request refused');
      reply.header('www-authenticate', 'Bearer realm="airlock"');
      return sendError(reply, 'PROVISION_UNAUTHORIZED');
    }
    return undefined;
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (bad JSON, too large, wrong content type): messages are generic.
      return sendError(reply, 'REQUEST_INVALID', err.message, undefined, status);
    }
    const e = toAirlockError(err);
    logger.error({ code: e.code, err: e, method: req.method, url: req.url }, 'provisioning API error');
    return sendError(reply, e.code, undefined, undefined, STATUS[e.code] ?? 500);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'REQUEST_INVALID', `no such endpoint: ${req.method} ${req.url.split('?')[0] ?? ''}`, undefined, 404));

  app.get('/healthz', async (_req, reply) => {
    try {
      await deps.store.ping();
      return reply.send({ status: 'ok', store: deps.store.kind });
    } catch (err) {
      const e = toAirlockError(err, 'STORE_UNAVAILABLE');
      return reply.code(503).send({ status: 'unavailable', store: deps.store.kind, error: e.code });
    }
  });

  app.post('/v1/sessions', async (req, reply) => {
    const parsed = provisionRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) return sendError(reply, 'REQUEST_INVALID', 'the request body is invalid', problemsOf(parsed.error));
    const body = parsed.data;
    if (!imageAllowed(body.image, deps.policy.allowedImages)) {
      logger.warn({ code: 'POLICY_DENIED', image: body.image }, 'provisioning refused: image not allowed');
      return sendError(reply, 'POLICY_DENIED', 'the image is not in broker.policy.allowedImages');
    }
    const ttlSeconds = effectiveTtlSeconds(body.ttl_seconds, deps.policy);
    // Whole seconds: the token's exp (a NumericDate) and the record must agree exactly.
    const nowSeconds = Math.floor(clock.now() / 1000);
    const expiresAt = (nowSeconds + ttlSeconds) * 1000;
    const clean = sanitizeEnv(body.env ?? {}, deps.policy);
    const record: SessionRecord = {
      id: newSessionId(),
      image: body.image,
      ...(body.commit_sha !== undefined ? { commitSha: body.commit_sha.toLowerCase() } : {}),
      ...(body.pr_number !== undefined ? { prNumber: body.pr_number } : {}),
      ...(body.actor !== undefined ? { actor: body.actor } : {}),
      ...(body.repository !== undefined ? { repository: body.repository } : {}),
      ...(body.pipeline_run !== undefined ? { pipelineRun: body.pipeline_run } : {}),
      env: clean.env,
      redactedVars: [...new Set([...clean.redacted, ...(body.redacted_vars ?? [])])].sort(),
      maxConnections: body.max_connections ?? deps.policy.defaultMaxConnections,
      createdAt: clock.now(),
      expiresAt,
    };
    const token = await deps.issuer.issue({
      sessionId: record.id,
      expiresAt,
      ...(deps.allowStatelessTokens
        ? {
            stateless: {
              image: record.image,
              ...(record.commitSha !== undefined ? { commitSha: record.commitSha } : {}),
              ...(record.prNumber !== undefined ? { prNumber: record.prNumber } : {}),
              ...(record.actor !== undefined ? { actor: record.actor } : {}),
              ...(record.repository !== undefined ? { repository: record.repository } : {}),
              ...(record.pipelineRun !== undefined ? { pipelineRun: record.pipelineRun } : {}),
            },
          }
        : {}),
    });
    await deps.store.create(record, expiresAt + deps.policy.deadlineGraceSeconds * 1000 + retainMarginMs);
    logger.info(
      {
        sessionId: record.id,
        actor: record.actor,
        repository: record.repository,
        commitSha: record.commitSha,
        prNumber: record.prNumber,
        image: record.image,
        ttlSeconds,
        maxConnections: record.maxConnections,
        redacted: clean.reasons,
      },
      'debug session provisioned',
    );
    return reply.code(201).send({
      session_id: record.id,
      token,
      ssh_host: deps.publicHost,
      ssh_port: deps.publicPort,
      ssh_command: sshCommand(token, deps.publicHost, deps.publicPort),
      expires_at: expiresAt / 1000,
      expires_at_human: humanUtc(expiresAt),
      ttl_seconds: ttlSeconds,
      max_connections: record.maxConnections,
      redacted_vars: record.redactedVars,
    });
  });

  app.get<{ Params: { id: string } }>('/v1/sessions/:id', async (req, reply) => {
    const state = await deps.store.get(req.params.id);
    if (!state) return sendError(reply, 'SESSION_NOT_FOUND');
    const r = state.record;
    return reply.send({
      session_id: r.id,
      image: r.image,
      commit_sha: r.commitSha ?? null,
      pr_number: r.prNumber ?? null,
      actor: r.actor ?? null,
      repository: r.repository ?? null,
      pipeline_run: r.pipelineRun ?? null,
      created_at: Math.floor(r.createdAt / 1000),
      expires_at: r.expiresAt / 1000,
      expires_at_human: humanUtc(r.expiresAt),
      expired: r.expiresAt <= clock.now(),
      revoked: state.revoked,
      revoked_at: state.revokedAt === undefined ? null : Math.floor(state.revokedAt / 1000),
      max_connections: r.maxConnections,
      active_connections: state.activeConnections,
      // Names only: values stay in the store and reach nothing but the container.
      env_names: Object.keys(r.env).sort(),
      redacted_vars: r.redactedVars,
    });
  });

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', async (req, reply) => {
    const revoked = await deps.store.revoke(req.params.id);
    if (!revoked) return sendError(reply, 'SESSION_NOT_FOUND');
    logger.info({ sessionId: req.params.id }, 'debug session revoked');
    return reply.send({ session_id: req.params.id, revoked: true });
  });

  return {
    async listen(host, port) {
      await app.listen({ host, port });
      return app.server.address() as AddressInfo;
    },
    async close() {
      await app.close();
    },
  };
}
