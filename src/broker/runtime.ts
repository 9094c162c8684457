/**
 * Builds the broker's parts from `broker:` config once, for both `airlock serve` (token logins +
 * embedded API) and `airlock broker` (API only): session store, token keys, verifier, the token
 * auth provider and the provisioning API. Also turns revocations into ended SSH connections.
 */
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { MetadataMap } from '../backend/backend.js';
import { createTokenAuthProvider, type TokenAuthProvider } from '../auth/index.js';
import { parseListenAddress, type BrokerConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';
import { createBrokerApi, type BrokerApi, type BrokerPolicy } from './api.js';
import { sanitizeEnv } from './policy.js';
import { createTokenIssuer, createTokenVerifier, loadTokenKeys, type TokenKeySet } from './tokens.js';
import { createMemorySessionStore } from './store/memory.js';
import { createRedisSessionStore } from './store/redis.js';
import type { SessionStore } from './store/session-store.js';

/** What the broker needs from the SSH gateway (structural: broker does not import ssh/). */
export interface ConnectionTerminator {
  endWhere(predicate: (c: { readonly connectionId: string; readonly metadata: MetadataMap }) => boolean, line: string): number;
}

export interface BrokerRuntimeOptions {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** The gateway's ssh.listen, for the publicHost/publicPort defaults. */
  readonly sshListen?: { readonly host: string; readonly port: number };
  /** Injected store (tests); default from broker.redisUrl. */
  readonly store?: SessionStore;
}

export interface StartedApi {
  readonly address: AddressInfo;
  readonly publicHost: string;
  readonly publicPort: number;
  close(): Promise<void>;
}

export interface BrokerRuntime {
  readonly store: SessionStore;
  readonly keys: TokenKeySet;
  readonly tokenProvider: TokenAuthProvider;
  /** Revocations (pushed by the store, or noticed when leases are renewed) end live connections. */
  attachGateway(gateway: ConnectionTerminator): void;
  /** Starts the provisioning API on broker.listen; `sshPort` is the gateway's bound port (port 0 configs). */
  startApi(options?: { readonly sshPort?: number }): Promise<StartedApi>;
  close(): Promise<void>;
}

export function brokerPolicy(config: BrokerConfig): BrokerPolicy {
  return { ...config.policy };
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

export async function createBrokerRuntime(options: BrokerRuntimeOptions): Promise<BrokerRuntime> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger.child({ component: 'broker' });
  const policy = brokerPolicy(config);
  const keys = await loadTokenKeys(config.tokens.keys, config.tokens.generatedKeyPath);
  const store =
    options.store ??
    (config.redisUrl !== undefined
      ? await createRedisSessionStore({ url: config.redisUrl, logger, clock })
      : createMemorySessionStore({ clock }));
  logger.info({ store: store.kind, keys: keys.keys.map((k) => `${k.kid} (${k.alg}${k.signKey ? '' : ', verify only'})`) }, 'broker ready');

  const verifier = createTokenVerifier({ keys, audience: config.tokens.audience, clockToleranceSeconds: config.tokens.clockTolerance / 1000, clock });
  let gateway: ConnectionTerminator | undefined;

  const endSession = (sessionId: string, code: ErrorCode, connectionIds: readonly string[]) => {
    if (!gateway || connectionIds.length === 0) return;
    const ids = new Set(connectionIds);
    const n = gateway.endWhere((c) => ids.has(c.connectionId), `airlock: ${ERROR_CODES[code].userMessage} [${code}]`);
    if (n > 0) logger.info({ sessionId, code, connections: n }, 'ended the live connections of a session');
  };

  const tokenProvider: TokenAuthProvider = createTokenAuthProvider({
    verifier,
    slots: store,
    sanitize: (env) => sanitizeEnv(env, policy),
    allowStatelessTokens: config.allowStatelessTokens,
    deadlineGraceMs: config.policy.deadlineGraceSeconds * 1000,
    logger: logger.child({ component: 'token-auth' }),
    clock,
    onSessionEnded: (sessionId, code) => endSession(sessionId, code, tokenProvider.connectionsOf(sessionId)),
  });

  let unsubscribe: (() => void) | undefined;
  const apis = new Set<BrokerApi>();

  return {
    store,
    keys,
    tokenProvider,
    attachGateway(g) {
      gateway = g;
      unsubscribe ??= store.onRevoked((sessionId) => endSession(sessionId, 'SESSION_REVOKED', tokenProvider.connectionsOf(sessionId)));
    },
    async startApi(startOptions = {}) {
      const listen = parseListenAddress(config.listen);
      const sshHost = options.sshListen?.host;
      let publicHost = config.publicHost ?? (sshHost !== undefined && !WILDCARD.has(sshHost) ? sshHost : undefined);
      if (publicHost === undefined) {
        publicHost = hostname();
        logger.warn({ publicHost }, 'broker.publicHost is not set: ssh commands name this machine\'s host name');
      }
      const publicPort = config.publicPort ?? startOptions.sshPort ?? options.sshListen?.port ?? 22;
      const api = createBrokerApi({
        store,
        issuer: createTokenIssuer({ keys, audience: config.tokens.audience, clock }),
        provisionKeys: config.provisionKeys,
        policy,
        allowStatelessTokens: config.allowStatelessTokens,
        publicHost,
        publicPort,
        logger,
        clock,
      });
      const address = await api.listen(listen.host, listen.port);
      apis.add(api);
      logger.info({ address: address.address, port: address.port, publicHost, publicPort }, 'broker API listening');
      return {
        address,
        publicHost,
        publicPort,
        close: async () => {
          apis.delete(api);
          await api.close();
        },
      };
    },
    async close() {
      unsubscribe?.();
      for (const api of apis) await api.close();
      apis.clear();
      tokenProvider.close();
      await store.close();
    },
  };
}
