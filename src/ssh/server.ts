import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { Logger } from 'pino';
import type { HostKey } from './host-keys.js';
import { certificateHostKeyEntries, type HostCertificate } from './host-certificates.js';
import { handleConnection, type ConnectionDeps, type LiveConnection } from './connection.js';
import { ERROR_CODES } from '../core/errors.js';
import type { MetadataMap } from '../backend/backend.js';

export interface GatewayDeps extends ConnectionDeps {
  readonly hostKeys: readonly HostKey[];
  /** Presented next to the plain host keys (host-certificates.ts). */
  readonly hostCertificates?: readonly HostCertificate[];
}

export interface Gateway {
  /** Resolves with the bound address once listening. */
  listen(): Promise<AddressInfo>;
  /** Ids of connections that are open now (the reaper keeps their containers). */
  liveConnectionIds(): ReadonlySet<string>;
  /**
   * Ends every open connection the predicate picks (e.g. those of a revoked CI session), telling
   * each session `line`; returns how many. Their workloads are removed as on any other end.
   */
  endWhere(predicate: (c: { readonly connectionId: string; readonly metadata: MetadataMap }) => boolean, line: string): number;
  /**
   * Graceful stop: refuse new connections, let open ones finish until `deadlineMs`, then end
   * them with a message; resolves when every workload is removed.
   */
  shutdown(deadlineMs: number): Promise<void>;
}

/** ssh2 falls back to its own 15 s keepalive when given 0, so "off" is a practically infinite interval. */
const KEEPALIVE_OFF_MS = 2 ** 31 - 1;

export function createGateway(deps: GatewayDeps): Gateway {
  const { options, logger } = deps;
  const live = new Map<string, LiveConnection>();
  let shuttingDown = false;

  const server = new ssh2.Server(
    {
      hostKeys: [...certificateHostKeyEntries(deps.hostCertificates ?? []), ...deps.hostKeys.map((k) => k.pem)],
      ident: options.serverVersion.replace(/^SSH-2\.0-/, ''),
      ...(options.banner ? { banner: options.banner } : {}),
      keepaliveInterval: options.clientAliveInterval > 0 ? options.clientAliveInterval : KEEPALIVE_OFF_MS,
      keepaliveCountMax: options.clientAliveCountMax,
      algorithms: {
        kex: options.kex.slice() as ssh2.KexAlgorithm[],
        cipher: options.ciphers.slice() as ssh2.CipherAlgorithm[],
        hmac: options.macs.slice() as ssh2.MacAlgorithm[],
        serverHostKey: options.hostKeyAlgos.slice() as ssh2.ServerHostKeyAlgorithm[],
        compress: ['none'],
      },
    },
    (client, info) => {
      if (shuttingDown) {
        client.on('error', () => undefined);
        client.end();
        return;
      }
      // Nagle's algorithm holds back the small packets of the handshake and of every keystroke
      // until the peer's delayed ACK (~40 ms each, several times per login); OpenSSH's sshd
      // disables it for sessions too. (ssh2's server Connection has setNoDelay; its typings omit it.)
      (client as ssh2.Connection & { setNoDelay(noDelay: boolean): unknown }).setNoDelay(true);
      const conn = handleConnection(client, info, deps);
      live.set(conn.connectionId, conn);
      void conn.closed.then(() => live.delete(conn.connectionId));
    },
  );
  server.on('error', (err: Error) => logger.error({ err }, 'ssh server error'));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.listenPort, options.listenHost, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    liveConnectionIds: () => new Set(live.keys()),
    endWhere(predicate, line) {
      let n = 0;
      for (const c of live.values()) {
        if (!predicate({ connectionId: c.connectionId, metadata: c.metadata() })) continue;
        c.end(line);
        n++;
      }
      return n;
    },
    async shutdown(deadlineMs) {
      shuttingDown = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info({ connections: live.size, deadlineMs }, 'shutting down: draining connections');
      for (const c of live.values()) {
        c.notify(`airlock: the gateway is shutting down; this session will be closed within ${Math.ceil(deadlineMs / 1000)} s`);
      }
      const drained = Promise.all([...live.values()].map((c) => c.closed));
      let timeout: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (timeout = setTimeout(() => resolve('expired'), deadlineMs)));
      const outcome = await Promise.race([drained.then(() => 'drained' as const), expired]);
      clearTimeout(timeout);
      if (outcome === 'expired') {
        logger.warn({ connections: live.size }, 'drain deadline reached: closing remaining connections');
        const line = `airlock: ${ERROR_CODES.GATEWAY_SHUTDOWN.userMessage} [GATEWAY_SHUTDOWN]`;
        for (const c of live.values()) c.end(line);
        await Promise.all([...live.values()].map((c) => c.closed));
      }
      await stopped;
    },
  };
}
