/**
 * The operator listener: `GET /metrics` (metrics.listen, metrics.path) and `GET /healthz`,
 * `GET /readyz` (health.listen). Plain node:http, separate from the broker's provisioning API so
 * a probe or a scrape never shares a port, a body limit or an auth hook with it. When
 * metrics.listen and health.listen are the same address, one server answers all three paths.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AirlockError, toAirlockError } from '../core/errors.js';
import { parseListenAddress, type AppConfig } from '../config/index.js';
import type { AppMetrics } from './metrics.js';

/** One dependency /readyz waits for. `check` rejects (ideally with an AirlockError) when it is down. */
export interface ReadinessCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<void>;
}

export interface MetricsEndpoint {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  render(): Promise<string>;
  readonly contentType: string;
}

export interface HealthEndpoint {
  readonly host: string;
  readonly port: number;
  readonly checks: readonly ReadinessCheck[];
  /** Per-check deadline; a check that does not answer in time is "not ready". Default 2 s. */
  readonly timeoutMs?: number;
}

export interface OperatorListenerOptions {
  readonly metrics?: MetricsEndpoint;
  readonly health?: HealthEndpoint;
  readonly logger: Logger;
}

export interface OperatorListener {
  /** Bound addresses (port 0 resolved); absent when that endpoint is disabled. */
  readonly metricsAddress?: AddressInfo;
  readonly healthAddress?: AddressInfo;
  /** From now on /readyz answers 503 "draining" (SIGTERM: load balancers stop sending logins). */
  setDraining(): void;
  close(): Promise<void>;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly status: 'ready' | 'not ready' | 'draining';
  /** Check name → "ok" or the error code that made it fail. */
  readonly checks: Readonly<Record<string, string>>;
}

const DEFAULT_CHECK_TIMEOUT_MS = 2_000;
const HEALTH_PATHS = new Set(['/healthz', '/readyz']);

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Binds the enabled endpoints; rejects with OPERATOR_LISTEN_FAILED when an address cannot be bound. */
export async function startOperatorListener(options: OperatorListenerOptions): Promise<OperatorListener> {
  const { metrics, health, logger } = options;
  const log = logger.child({ component: 'operator-http' });
  let draining = false;
  let inflight: Promise<ReadinessReport> | undefined;
  let lastReady: boolean | undefined;

  // Concurrent probes share one round of checks, so a burst of probes is one engine ping.
  const readiness = (): Promise<ReadinessReport> => {
    inflight ??= runChecks(health?.checks ?? [], health?.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS).finally(() => (inflight = undefined));
    return inflight;
  };

  const routes = new Map<string, Map<string, Handler>>();
  const route = (host: string, port: number, path: string, handler: Handler) => {
    const key = `${host}:${port}`;
    let paths = routes.get(key);
    if (!paths) routes.set(key, (paths = new Map()));
    paths.set(path, handler);
  };

  if (metrics) {
    if (HEALTH_PATHS.has(metrics.path)) {
      throw new AirlockError('CONFIG_INVALID', `metrics.path ${metrics.path} is reserved for the health endpoints`);
    }
    route(metrics.host, metrics.port, metrics.path, async (_req, res) => {
      const body = await metrics.render();
      send(res, 200, metrics.contentType, body);
    });
  }
  if (health) {
    route(health.host, health.port, '/healthz', async (_req, res) => {
      // Liveness: the event loop answers. Deliberately no dependency checks (a restart would not
      // bring the Docker engine back, it would only cut the open sessions).
      sendJson(res, 200, { status: 'ok' });
    });
    route(health.host, health.port, '/readyz', async (_req, res) => {
      const report = draining ? { ready: false, status: 'draining' as const, checks: {} } : await readiness();
      if (!draining && report.ready !== lastReady) {
        // Log transitions only: probes arrive every few seconds.
        if (report.ready) log.info({ checks: report.checks }, 'ready');
        else log.warn({ checks: report.checks }, 'not ready');
        lastReady = report.ready;
      }
      sendJson(res, report.ready ? 200 : 503, { status: report.status, checks: report.checks });
    });
  }

  const servers: { server: Server; address: AddressInfo; key: string }[] = [];
  try {
    for (const [key, paths] of routes) {
      const [host, port] = splitKey(key);
      const server = createServer((req, res) => void handle(paths, req, res, log));
      // Scrapes and probes are short; do not let idle keep-alive sockets delay shutdown.
      server.keepAliveTimeout = 5_000;
      server.headersTimeout = 10_000;
      server.requestTimeout = 30_000;
      const address = await bind(server, host, port, [...paths.keys()]);
      servers.push({ server, address, key });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => closeServer(s.server)));
    throw err;
  }

  const addressOf = (endpoint: { host: string; port: number } | undefined) =>
    endpoint ? servers.find((s) => s.key === `${endpoint.host}:${endpoint.port}`)?.address : undefined;
  const metricsAddress = addressOf(metrics);
  const healthAddress = addressOf(health);
  log.info(
    {
      ...(metricsAddress ? { metrics: `${metricsAddress.address}:${metricsAddress.port}${metrics?.path}`, metricsPort: metricsAddress.port } : {}),
      ...(healthAddress ? { health: `${healthAddress.address}:${healthAddress.port}`, healthPort: healthAddress.port } : {}),
    },
    'operator listener started',
  );

  return {
    ...(metricsAddress ? { metricsAddress } : {}),
    ...(healthAddress ? { healthAddress } : {}),
    setDraining() {
      draining = true;
    },
    async close() {
      await Promise.all(servers.map((s) => closeServer(s.server)));
    },
  };
}

export interface OperatorDeps {
  /** The app's metrics; required when metrics.enable is true. */
  readonly metrics?: AppMetrics;
  /** Readiness: the container engine answers its ping. */
  readonly backend: { ping(signal?: AbortSignal): Promise<void> };
  /** Readiness, when the broker is configured: its session store (Redis or memory) answers. */
  readonly sessionStore?: { ping(): Promise<void> };
  readonly logger: Logger;
}

/**
 * `airlock serve`'s wiring of `metrics.*` and `health.*`: starts what is enabled, or resolves
 * undefined when neither is.
 */
export async function startOperatorFromConfig(config: Pick<AppConfig, 'metrics' | 'health'>, deps: OperatorDeps): Promise<OperatorListener | undefined> {
  if (!config.metrics.enable && !config.health.enable) return undefined;
  const checks: ReadinessCheck[] = [{ name: 'backend', check: (signal) => deps.backend.ping(signal) }];
  const store = deps.sessionStore;
  if (store) checks.push({ name: 'sessionStore', check: () => store.ping() });
  let metrics: MetricsEndpoint | undefined;
  if (config.metrics.enable) {
    if (!deps.metrics) throw new AirlockError('INTERNAL', 'metrics.enable is true but no metrics were created');
    const m = deps.metrics;
    metrics = { ...parseListenAddress(config.metrics.listen), path: config.metrics.path, render: () => m.render(), contentType: m.contentType };
  }
  return startOperatorListener({
    ...(metrics ? { metrics } : {}),
    ...(config.health.enable ? { health: { ...parseListenAddress(config.health.listen), checks } } : {}),
    logger: deps.logger,
  });
}

/** Runs every check at once, each with its own deadline. */
export async function runChecks(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c): Promise<[string, string]> => {
      const signal = AbortSignal.timeout(timeoutMs);
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_resolve, reject) => {
        // The check should honour the signal; this is the backstop when it does not.
        timer = setTimeout(() => reject(new AirlockError('TIMEOUT', `readiness check ${c.name} did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([c.check(signal), expired]);
        return [c.name, 'ok'];
      } catch (err) {
        return [c.name, signal.aborted ? 'TIMEOUT' : toAirlockError(err).code];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const ready = results.every(([, r]) => r === 'ok');
  return { ready, status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) };
}

async function handle(paths: ReadonlyMap<string, Handler>, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const handler = paths.get(path);
  if (!handler) {
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendJson(res, 405, { error: 'method not allowed' });
    return;
  }
  try {
    await handler(req, res);
  } catch (err) {
    const e = toAirlockError(err);
    log.error({ code: e.code, err: e, path }, 'operator endpoint failed');
    if (!res.headersSent) sendJson(res, 500, { error: e.code });
    else res.destroy();
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value) + '\n');
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

function bind(server: Server, host: string, port: number, paths: readonly string[]): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? ' — the port is taken (by another program, or ssh.listen / broker.listen use the same address)' : '';
      reject(
        new AirlockError('OPERATOR_LISTEN_FAILED', `cannot listen on ${host}:${port} for ${paths.join(', ')}: ${err.code ?? err.message}${hint}`, {
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // A scraper holding a keep-alive connection must not delay the gateway's exit.
    server.closeIdleConnections();
  });
}
