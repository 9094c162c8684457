import { connect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Backend, BackendConnection, ConnectionInfo } from '../backend.js';
import { AirlockError } from '../../core/errors.js';
import type { SshProxyBackendOptions } from './options.js';
import { SshProxyConnection } from './proxy-connection.js';
import { connectUpstream, UNAVAILABLE_LINE } from './upstream.js';
import { writeUpstreamFiles } from './upstream-files.js';

/**
 * `backend: sshproxy`: forwards each authenticated connection to one upstream SSH server
 * (ContainerSSH's `sshproxy.*`). The gateway authenticates the user itself, then logs in upstream
 * with its own credentials (`username`/`privateKey`/`password`, or the user's name with
 * `usernamePassThrough`), refusing any host key that is not pinned.
 */
export function createSshProxyBackend(options: SshProxyBackendOptions): Backend {
  const logger = options.logger;
  if (options.privateKey !== undefined) {
    // Fail at start-up, not at the first login: ssh2 parses the key only when connecting.
    const parsed = ssh2.utils.parseKey(options.privateKey);
    if (parsed instanceof Error || Array.isArray(parsed)) {
      const why = parsed instanceof Error ? parsed.message : 'the file holds more than one key';
      throw new AirlockError('CONFIG_INVALID', `sshproxy.privateKey cannot be used: ${why} (it must be an unencrypted PEM or OpenSSH private key)`);
    }
    if (!parsed.isPrivateKey()) throw new AirlockError('CONFIG_INVALID', 'sshproxy.privateKey is a public key — give the private key');
  }
  const live = new Set<BackendConnection>();
  return {
    name: 'sshproxy',

    async openConnection(info: ConnectionInfo, signal?: AbortSignal): Promise<BackendConnection> {
      const username = options.usernamePassThrough ? info.username : options.username;
      if (!username) throw new AirlockError('CONFIG_INVALID', 'sshproxy.username is not set and usernamePassThrough is off');
      const connLogger = logger.child({ connectionId: info.connectionId });
      const started = Date.now();
      const client = await connectUpstream(options, username, signal);
      try {
        await writeUpstreamFiles(client, info.files, options.timeoutMs);
        signal?.throwIfAborted();
      } catch (err) {
        client.destroy();
        throw err;
      }
      connLogger.info({ server: options.server, port: options.port, upstreamUser: username, ms: Date.now() - started }, 'upstream connection ready');
      const conn = new SshProxyConnection(client, info, options.timeoutMs, connLogger);
      live.add(conn);
      const close = conn.close.bind(conn);
      return {
        startProcess: (request, s) => conn.startProcess(request, s),
        close: (reason) => close(reason).finally(() => live.delete(conn)),
      };
    },

    /** Readiness: the upstream accepts TCP and greets with an SSH identification line. */
    ping(signal?: AbortSignal): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const socket: Socket = connect({ host: options.server, port: options.port });
        let banner = '';
        const fail = (err: Error) => {
          socket.destroy();
          reject(new AirlockError('BACKEND_UNAVAILABLE', `upstream SSH server ${options.server}:${options.port} did not greet: ${err.message}`, { cause: err, userMessage: UNAVAILABLE_LINE }));
        };
        socket.setTimeout(Math.min(options.timeoutMs, 10_000), () => fail(new Error('timed out')));
        signal?.addEventListener('abort', () => fail(new Error('aborted')), { once: true });
        socket.on('error', fail);
        socket.on('close', () => fail(new Error('connection closed')));
        socket.on('data', (chunk: Buffer) => {
          banner += chunk.toString('latin1');
          if (/^SSH-/m.test(banner)) {
            socket.removeAllListeners('close');
            socket.destroy();
            resolve();
          } else if (banner.length > 8192) fail(new Error('no SSH identification line'));
        });
      });
    },

    async close(): Promise<void> {
      await Promise.all([...live].map((c) => c.close('gateway closing')));
    },
  };
}
