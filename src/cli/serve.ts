import type { Logger } from 'pino';
import { loadConfigSource, embeddedDefaults, resolveConfigPath, parseListenAddress, createConfigWebhook, configWarnings, type ConfigSource } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics, startOperatorFromConfig } from '../observability/index.js';
import { createAuthRateLimiter, createGateway, describeHostCertificate, loadHostCertificates, loadHostKeys } from '../ssh/index.js';
import { createRecorder } from '../audit/index.js';
import type { DockerBackend } from '../backend/docker/index.js';
import { systemClock } from '../core/clock.js';
import { newGatewayId } from '../core/ids.js';
import { toAirlockError } from '../core/errors.js';
import { authRateLimit, buildAuth, createBackend, reaperLiveIds, sshOptions } from './wiring.js';
import { reaperKinds, startReapers } from './reapers.js';
import { createBrokerRuntime } from '../broker/index.js';
import { createConnectionConfigurer } from './connection-config.js';

export interface ServeFlags {
  readonly config?: string;
}

/** `airlock serve`: runs the gateway until SIGTERM/SIGINT, then drains and removes every container. */
export async function runServe(flags: ServeFlags): Promise<void> {
  const path = resolveConfigPath(flags.config, process.env);
  const source: ConfigSource = path ? await loadConfigSource(path) : { config: embeddedDefaults(), sections: new Set() };
  const { config } = source;
  const logger = createLogger(config.log);
  const gatewayId = newGatewayId();
  // Only when enabled: without it nothing is measured at all. Created first so any part can report.
  const metrics = config.metrics.enable ? createMetrics() : undefined;
  logger.info({ gatewayId, config: path ?? 'embedded defaults', pid: process.pid }, 'starting airlock');
  for (const w of configWarnings(config)) logger.warn({ key: w.key }, w.message);

  const hostKeys = await loadHostKeys(config.ssh.hostkeys, config.ssh.generatedHostKeyPath);
  const hostCertificates = await loadHostCertificates(config.ssh.hostcerts, hostKeys, { now: systemClock.now(), hostKeyAlgos: config.ssh.hostKeyAlgos });
  // CI-debug broker: token logins (and the provisioning API, started once the SSH port is known).
  const broker = config.broker ? await createBrokerRuntime({ config: config.broker, logger, sshListen: parseListenAddress(config.ssh.listen) }) : undefined;
  const { provider, methods, authorizer } = buildAuth(config, logger, broker?.tokenProvider);
  const backend = await createBackend(config, gatewayId, logger);
  await backend.ping().catch((err: unknown) => {
    // Keep serving: the engine may come up later; each login then gets the clear error line.
    const e = toAirlockError(err, 'BACKEND_UNAVAILABLE');
    logger.error({ code: e.code, err: e }, 'container engine not reachable at start-up');
  });

  // Seals and queues recordings an earlier run left incomplete (crash) before serving.
  const recorder = await createRecorder(config.audit, { logger, clock: systemClock, drainTimeoutMs: config.ssh.shutdownTimeout });
  metrics?.setAuditSource(() => recorder.stats().uploads);
  if (metrics && 'poolStatus' in backend && typeof backend.poolStatus === 'function') {
    const status = backend.poolStatus.bind(backend) as DockerBackend['poolStatus'];
    metrics.setPoolSource(() => status());
  }
  // Config server: each connection's backend, policy and log level come from its answer.
  const configure = config.configserver
    ? createConnectionConfigurer({
        config,
        backend,
        webhook: createConfigWebhook({
          url: config.configserver.url,
          timeoutMs: config.configserver.timeout,
          totalTimeoutMs: config.configserver.totalTimeout,
          logger: logger.child({ component: 'configserver' }),
        }),
        gatewayId,
        logger,
        ...(metrics ? { onConfigRequest: (ok: boolean) => metrics.configServerRequest(ok) } : {}),
      })
    : undefined;
  const gateway = createGateway({
    options: sshOptions(config, parseListenAddress(config.ssh.listen)),
    hostKeys,
    hostCertificates,
    auth: provider,
    authMethods: methods,
    authorizer,
    rateLimiter: createAuthRateLimiter(authRateLimit(config), systemClock),
    backend,
    ...(configure ? { configure } : {}),
    recorder,
    logger,
    clock: systemClock,
    metrics,
  });
  broker?.attachGateway(gateway);
  // The static backend's reaper, and those of the engines a config server may switch to (reapers.ts).
  const reapers = await startReapers({ config, kinds: reaperKinds(config, source.sections), gatewayId, liveConnections: reaperLiveIds(gateway, backend), logger });

  const address = await gateway.listen();
  const operator = await startOperatorFromConfig(config, { metrics, backend, sessionStore: broker?.store, logger });
  logger.info({ address: address.address, port: address.port, hostKeys: hostKeys.map((k) => `${k.type} ${k.source}`), hostCertificates: hostCertificates.map(describeHostCertificate) }, 'listening');
  const brokerApi = broker && config.broker?.serveApi ? await broker.startApi({ sshPort: address.port }) : undefined;
  if (process.stderr.isTTY) {
    const user = methods.includes('publickey') && config.auth.publicKey.method === 'authorizedKeys' ? '<user from authorized_keys>' : '<user>';
    process.stderr.write(`\nAirlock is listening on ${address.address}:${address.port}\nConnect with:  ssh -p ${address.port} ${user}@${address.address === '0.0.0.0' ? '127.0.0.1' : address.address}\n\n`);
  }
  installSignalHandlers(logger, async () => {
    operator?.setDraining(); // /readyz 503: load balancers stop sending logins
    await brokerApi?.close(); // no new sessions while draining
    await gateway.shutdown(config.ssh.shutdownTimeout);
    // Every connection is closed, so every recording is sealed; uploads get ssh.shutdownTimeout.
    await recorder.close();
    await broker?.close();
    await reapers.stop();
    await backend.close();
    await operator?.close();
  });
}

function installSignalHandlers(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: still removing containers, please wait');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    shutdown()
      .then(() => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A bug must not leave containers behind: log it, then clean up as on SIGTERM and exit 1.
  const onCrash = (err: unknown) => {
    // Once: an error raised while logging or shutting down must not start another round.
    if (stopping) return;
    stopping = true;
    try {
      logger.fatal({ err }, 'unexpected error: shutting down');
    } catch {
      // the log destination itself may be what failed
    }
    shutdown()
      .catch(() => undefined)
      .finally(() => {
        logger.flush();
        process.exit(1);
      });
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
}
