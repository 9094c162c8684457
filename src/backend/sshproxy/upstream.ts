import ssh2 from 'ssh2';
import type { Algorithms, ConnectConfig } from 'ssh2';
import { AirlockError } from '../../core/errors.js';
import { fingerprintOf, normaliseFingerprint } from './host-key.js';
import type { SshProxyBackendOptions } from './options.js';

const UNAVAILABLE_LINE = 'the upstream SSH server is unavailable; try again later';
const TIMEOUT_LINE = 'the upstream SSH server did not answer in time; try again later';

/**
 * Opens one authenticated ssh2 client connection to the upstream server. The host key is checked
 * against the pinned fingerprints before anything else is sent (ssh2 calls `hostVerifier` during
 * key exchange, before user authentication): an unknown key ends the handshake.
 */
export async function connectUpstream(options: SshProxyBackendOptions, username: string, signal?: AbortSignal): Promise<ssh2.Client> {
  signal?.throwIfAborted();
  const allowed = new Set(options.allowedHostKeyFingerprints.map(normaliseFingerprint));
  const client = new ssh2.Client();
  let presented: string | undefined;
  let rejected = false;
  const config: ConnectConfig = {
    host: options.server,
    port: options.port,
    username,
    hostVerifier: (key: Buffer) => {
      presented = fingerprintOf(key);
      rejected = !allowed.has(presented);
      return !rejected;
    },
    readyTimeout: options.timeoutMs,
    // ssh2 prepends "SSH-2.0-" itself.
    ident: options.clientVersion.replace(/^SSH-2\.0-/, ''),
    keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: 3,
    tryKeyboard: false,
    // The key first (ssh2's default order is none, password, key).
    authHandler: [...(options.privateKey !== undefined ? ['publickey' as const] : []), ...(options.password !== undefined ? ['password' as const] : [])],
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.privateKey !== undefined ? { privateKey: options.privateKey } : {}),
    ...(options.algorithms ? { algorithms: toSsh2Algorithms(options.algorithms) } : {}),
  };
  const where = { server: options.server, port: options.port, username };
  // For the client's whole life, login included: after a failed login (timeout, refusal) ssh2
  // can still emit a late error ("Connection lost before handshake") once the listeners below
  // are gone, and an unlistened 'error' would crash the gateway. The login's own listener
  // reports what matters; later errors surface as closed channels.
  client.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        client.destroy();
        reject(signal?.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (err?: Error) => {
        signal?.removeEventListener('abort', onAbort);
        client.off('ready', onReady);
        client.off('error', onError);
        client.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onError = (err: Error) => done(err);
      const onClose = () => done(new Error('the upstream closed the connection during login'));
      client.once('ready', onReady);
      client.once('error', onError);
      client.once('close', onClose);
      client.connect(config);
      // As on the gateway's own side (ssh/server.ts): no Nagle delay on a proxied keystroke.
      client.setNoDelay(true);
    });
  } catch (err) {
    client.destroy();
    if (signal?.aborted) throw err;
    throw upstreamError(err, rejected ? presented : undefined, where);
  }
  return client;
}

function toSsh2Algorithms(a: NonNullable<SshProxyBackendOptions['algorithms']>): Algorithms {
  // ssh2's Algorithms types list its known names; ours were validated against a subset of them.
  return {
    ...(a.cipher ? { cipher: [...a.cipher] } : {}),
    ...(a.kex ? { kex: [...a.kex] } : {}),
    ...(a.hmac ? { hmac: [...a.hmac] } : {}),
    ...(a.serverHostKey ? { serverHostKey: [...a.serverHostKey] } : {}),
  } as Algorithms;
}

/** Maps an ssh2 connect failure to a coded error whose user line names no address. */
export function upstreamError(err: unknown, rejectedFingerprint: string | undefined, where: Record<string, unknown>): AirlockError {
  const e = err as Error & { level?: string; code?: string };
  const message = e instanceof Error ? e.message : String(err);
  if (rejectedFingerprint !== undefined) {
    return new AirlockError('UPSTREAM_HOST_KEY_REJECTED', `upstream host key ${rejectedFingerprint} is not in sshproxy.allowedHostKeyFingerprints`, {
      cause: err,
      details: { ...where, fingerprint: rejectedFingerprint },
    });
  }
  if (e.level === 'client-authentication') {
    return new AirlockError('UPSTREAM_AUTH_FAILED', `the upstream refused the login: ${message}`, { cause: err, details: where });
  }
  if (e.level === 'client-timeout') {
    return new AirlockError('TIMEOUT', `no answer from the upstream SSH server: ${message}`, { cause: err, details: where, userMessage: TIMEOUT_LINE });
  }
  return new AirlockError('BACKEND_UNAVAILABLE', `cannot connect to the upstream SSH server: ${message}`, {
    cause: err,
    details: { ...where, ...(e.code ? { errno: e.code } : {}) },
    userMessage: UNAVAILABLE_LINE,
  });
}

export { UNAVAILABLE_LINE };
