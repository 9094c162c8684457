/**
 * Port forwarding (RFC 4254 §7): `ssh -L`/`-W` arrive as direct-tcpip channel opens (§7.2, ssh2's
 * `tcpip` event) and are dialled by the backend from inside the workload's network namespace
 * (`BackendConnection.openTcp`); `ssh -R` arrives as a tcpip-forward global request (§7.1) and
 * the backend listens inside the workload (`listenTcp`), each accepted connection becoming a
 * forwarded-tcpip channel the gateway opens to the client (`forwardOut`). Both are refused unless
 * `security.forwarding` enables them and the credential allows it (certificate
 * permit-port-forwarding). Unix-socket and X11 forwarding are always refused.
 */
import type { Connection, ServerChannel } from 'ssh2';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { BackendConnection, InboundTcpConnection, TcpListener } from '../backend/backend.js';
import type { ConnectionRecording } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import { AirlockError, toAirlockError, userLine } from '../core/errors.js';
import { OPEN_FAILURE, refuseChannel } from './channel-open-failure.js';
import type { SessionPolicy } from './policy.js';

export interface ForwardingDeps {
  readonly client: Connection;
  /** The connection's workload (started at login). */
  readonly workload: () => Promise<BackendConnection>;
  readonly backendName: string;
  /** This connection's policy; settles once its setup (config server answer) is known. */
  readonly policy: () => Promise<SessionPolicy>;
  readonly recording: ConnectionRecording;
  readonly logger: Logger;
  /** Channel ids are shared with the session channels. */
  readonly nextChannelId: () => number;
  /** Data in either direction (idle timer). */
  readonly onActivity: () => void;
  /** A line for the user outside any channel (a refused ssh -R has no reply text in SSH). */
  readonly notify: (line: string) => void;
  /** True once the connection is ending: nothing new is opened. */
  readonly ending: () => boolean;
  /** Aborted when the connection is gone. */
  readonly signal: AbortSignal;
}

const noop = (): void => undefined;

const unavailable = (backend: string) =>
  new AirlockError('FORWARDING_UNAVAILABLE', `the ${backend} backend has no port forwarding`, {
    userMessage: `port forwarding is not supported by the ${backend} backend`,
  });

/** Wires the forwarding requests of one authenticated connection. */
export function attachForwarding(deps: ForwardingDeps): void {
  const { client, logger, recording } = deps;
  const listeners = new Map<number, { listener: TcpListener; bindAddr: string }>();

  const relay = (channelId: number, channel: ServerChannel, stream: Duplex, kind: string) => {
    void bridge(channel, stream, { channelId, recording, onActivity: deps.onActivity, logger }).then((bytes) => {
      recording.event(AuditType.Close, channelId, bytes);
      logger.info({ channelId, kind, ...bytes }, 'forwarded connection closed');
    });
  };

  // ---- ssh -L: direct-tcpip (RFC 4254 §7.2) ----------------------------------------------
  client.on('tcpip', (accept, reject, info) => {
    const channelId = deps.nextChannelId();
    const target = { host: info.destIP, port: info.destPort };
    recording.event(AuditType.NewChannel, channelId, { type: 'direct-tcpip' });
    recording.event(AuditType.NewForwardChannel, channelId, { hostToConnect: info.destIP, portToConnect: info.destPort, originatorHost: info.srcIP, originatorPort: info.srcPort });
    void deps.policy().then(
      (policy) => openDirect(policy, channelId, target, accept, reject, info),
      (err: unknown) => logger.warn({ channelId, err }, 'port forwarding channel could not be judged'),
    );
  });

  function openDirect(
    policy: SessionPolicy,
    channelId: number,
    target: { host: string; port: number },
    accept: () => ServerChannel,
    reject: () => void,
    info: { destIP: string; destPort: number },
  ): void {
    const answer = deps.ending() ? { allowed: false as const, message: 'airlock: the connection is closing' } : policy.forwarding('local');
    if (!answer.allowed) {
      logger.info({ channelId, code: 'POLICY_DENIED', request: 'direct-tcpip', ...target }, 'port forwarding refused by policy');
      recording.event(AuditType.NewChannelFailed, channelId, { type: 'direct-tcpip', code: 'POLICY_DENIED' });
      refuseChannel(client, reject, OPEN_FAILURE.administrativelyProhibited, answer.message);
      return;
    }
    void deps
      .workload()
      .then((w) => {
        if (!w.openTcp) throw unavailable(deps.backendName);
        return w.openTcp(info.destIP, info.destPort, deps.signal);
      })
      .then(
        (stream) => {
          if (deps.signal.aborted) {
            stream.destroy();
            return;
          }
          recording.event(AuditType.NewChannelSuccessful, channelId, { type: 'direct-tcpip' });
          logger.info({ channelId, ...target }, 'port forwarding channel open');
          relay(channelId, accept(), stream, 'direct-tcpip');
        },
        (err: unknown) => {
          const e = toAirlockError(err, 'FORWARDING_FAILED');
          if (deps.signal.aborted) return;
          logger[e.kind === 'user' ? 'info' : 'error']({ channelId, code: e.code, err: e, ...target }, 'port forwarding channel failed');
          recording.event(AuditType.NewChannelFailed, channelId, { type: 'direct-tcpip', code: e.code });
          const reason = e.code === 'FORWARD_TARGET_FAILED' ? OPEN_FAILURE.connectFailed : OPEN_FAILURE.administrativelyProhibited;
          refuseChannel(client, reject, reason, userLine(e));
        },
      );
  }

  // Unix sockets (ssh -L /path, ssh -R /path): security.forwarding.socket* are disable-only.
  client.on('openssh.streamlocal', (_accept, reject) => {
    const channelId = deps.nextChannelId();
    logger.info({ channelId, code: 'POLICY_DENIED', request: 'direct-streamlocal' }, 'unix socket forwarding refused');
    recording.event(AuditType.NewChannel, channelId, { type: 'direct-streamlocal@openssh.com' });
    recording.event(AuditType.NewChannelFailed, channelId, { type: 'direct-streamlocal@openssh.com', code: 'POLICY_DENIED' });
    refuseChannel(client, reject, OPEN_FAILURE.administrativelyProhibited, 'airlock: forwarding to Unix sockets is not allowed by the gateway policy [POLICY_DENIED]');
  });

  // ---- ssh -R: tcpip-forward (RFC 4254 §7.1) ---------------------------------------------
  client.on('request', (accept, reject, name, info) => {
    if (name === 'tcpip-forward') return void reverseForward(accept, reject, info as { bindAddr: string; bindPort: number });
    if (name === 'cancel-tcpip-forward') return cancelReverseForward(accept, reject, info as { bindAddr: string; bindPort: number });
    // streamlocal-forward@openssh.com and its cancel.
    logger.info({ code: 'POLICY_DENIED', request: name }, 'unix socket forwarding refused');
    recording.event(AuditType.RequestFailed, null, { request: name, code: 'POLICY_DENIED' });
    reject?.();
  });

  async function reverseForward(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, info: { bindAddr: string; bindPort: number }) {
    const request = { bindHost: info.bindAddr, bindPort: info.bindPort };
    // One audit event per request, written with its outcome (the bound port for port 0).
    const answer = deps.ending() ? { allowed: false as const, message: '' } : (await deps.policy()).forwarding('remote');
    if (!answer.allowed) {
      logger.info({ code: 'POLICY_DENIED', request: 'tcpip-forward', ...request }, 'remote port forwarding refused by policy');
      recording.event(AuditType.RequestReverseForward, null, { ...request, code: 'POLICY_DENIED' });
      // A global request failure carries no text (OpenSSH only says "remote port forwarding
      // failed"), so the reason goes to the session channels.
      if (answer.message) deps.notify(answer.message);
      reject?.();
      return;
    }
    let listener: TcpListener | undefined;
    // Connections accepted before the client was told the port are handed over right after.
    const early: InboundTcpConnection[] = [];
    const onConnection = (inbound: InboundTcpConnection) => (listener ? reverseConnection(info.bindAddr, listener, inbound) : early.push(inbound));
    try {
      const w = await deps.workload();
      if (!w.listenTcp) throw unavailable(deps.backendName);
      if (info.bindPort !== 0 && listeners.has(info.bindPort)) {
        throw new AirlockError('FORWARD_TARGET_FAILED', `port ${info.bindPort} is already forwarded`, { userMessage: `port ${info.bindPort} is already forwarded on this connection` });
      }
      const bound = await w.listenTcp(info.bindAddr, info.bindPort, onConnection, deps.signal);
      if (deps.signal.aborted || deps.ending()) {
        void bound.close();
        reject?.();
        return;
      }
      listener = bound;
    } catch (err) {
      const e = toAirlockError(err, 'FORWARDING_FAILED');
      if (deps.signal.aborted) return;
      logger[e.kind === 'user' ? 'info' : 'error']({ code: e.code, err: e, request: 'tcpip-forward', ...request }, 'remote port forwarding failed');
      recording.event(AuditType.RequestReverseForward, null, { ...request, code: e.code });
      deps.notify(userLine(e));
      reject?.();
      return;
    }
    const bound = listener;
    listeners.set(bound.port, { listener: bound, bindAddr: info.bindAddr });
    void bound.closed.then(() => {
      if (listeners.get(bound.port)?.listener === bound) listeners.delete(bound.port);
    });
    logger.info({ ...request, port: bound.port }, 'remote port forwarding listening');
    recording.event(AuditType.RequestReverseForward, null, { ...request, boundPort: bound.port });
    accept?.(bound.port);
    for (const inbound of early.splice(0)) reverseConnection(info.bindAddr, bound, inbound);
  }

  function cancelReverseForward(accept: (() => void) | undefined, reject: (() => void) | undefined, info: { bindAddr: string; bindPort: number }) {
    const entry = listeners.get(info.bindPort);
    recording.event(AuditType.RequestCancelReverseForward, null, { bindHost: info.bindAddr, bindPort: info.bindPort, found: entry !== undefined });
    if (!entry) {
      reject?.();
      return;
    }
    listeners.delete(info.bindPort);
    // Confirmed once the workload no longer listens (a connect right after the reply is refused).
    void entry.listener.close().finally(() => {
      logger.info({ bindAddr: info.bindAddr, port: info.bindPort }, 'remote port forwarding cancelled');
      accept?.();
    });
  }

  /** One connection accepted inside the workload: ask the client to take it (forwarded-tcpip). */
  function reverseConnection(bindAddr: string, listener: TcpListener, inbound: InboundTcpConnection) {
    const channelId = deps.nextChannelId();
    const details = { connectedHost: bindAddr, connectedPort: listener.port, originatorHost: inbound.originAddress, originatorPort: inbound.originPort };
    // Opened by the gateway towards the client, but numbered like the others: 300, 304, 301/302.
    recording.event(AuditType.NewChannel, channelId, { type: 'forwarded-tcpip' });
    recording.event(AuditType.NewReverseForwardChannel, channelId, details);
    if (deps.ending() || deps.signal.aborted) {
      inbound.refuse();
      return;
    }
    // The workload side is opened while the client decides: one round trip less.
    const opened = inbound.open(deps.signal);
    opened.catch(noop);
    client.forwardOut(bindAddr, listener.port, inbound.originAddress, inbound.originPort, (err, channel) => {
      if (err) {
        logger.info({ channelId, port: listener.port, reason: err.message }, 'client refused a reverse-forwarded connection');
        recording.event(AuditType.NewChannelFailed, channelId, { type: 'forwarded-tcpip', reason: err.message });
        void opened.then((s) => s.destroy(), noop);
        return;
      }
      opened.then(
        (stream) => {
          recording.event(AuditType.NewChannelSuccessful, channelId, { type: 'forwarded-tcpip' });
          logger.info({ channelId, port: listener.port }, 'reverse-forwarded connection open');
          relay(channelId, channel, stream, 'forwarded-tcpip');
        },
        (e: unknown) => {
          const ae = toAirlockError(e, 'FORWARDING_FAILED');
          logger.error({ channelId, code: ae.code, err: ae }, 'reverse-forwarded connection could not be relayed');
          recording.event(AuditType.NewChannelFailed, channelId, { type: 'forwarded-tcpip', code: ae.code });
          channel.close();
        },
      );
    });
  }

}

interface BridgeOptions {
  readonly channelId: number;
  readonly recording: ConnectionRecording;
  readonly onActivity: () => void;
  readonly logger: Logger;
}

/**
 * Pumps a forwarded channel and the workload-side stream into each other with backpressure
 * (pipe), carrying half-closes: the client's EOF ends the workload stream's writable side; the
 * workload's EOF becomes a channel EOF once everything before it was handed to ssh2 (ssh2's
 * `end()` on a server channel would send CLOSE too, losing the other direction). The channel is
 * closed when the workload stream is over, and the stream destroyed when the channel closes.
 * Resolves with the byte counts once the channel is closed.
 */
function bridge(channel: ServerChannel, stream: Duplex, o: BridgeOptions): Promise<{ bytesToWorkload: number; bytesFromWorkload: number }> {
  let bytesToWorkload = 0;
  let bytesFromWorkload = 0;
  let channelClosed = false;
  const capture = o.recording.captures.forwarding;
  channel.on('data', (d: Buffer) => {
    bytesToWorkload += d.length;
    o.onActivity();
    if (capture) o.recording.forwardIo(o.channelId, 0, d);
  });
  stream.on('data', (d: Buffer) => {
    bytesFromWorkload += d.length;
    o.onActivity();
    if (capture) o.recording.forwardIo(o.channelId, 1, d);
  });
  // After every queued write has been handed to ssh2 (writes complete in order).
  const afterWrites = (fn: () => void) => {
    if (channelClosed || !channel.writable) return fn();
    channel.write(Buffer.alloc(0), () => fn());
  };
  channel.on('error', (err: Error) => o.logger.debug({ channelId: o.channelId, err: err.message }, 'forwarded channel error'));
  stream.on('error', (err: Error) => o.logger.debug({ channelId: o.channelId, err: err.message }, 'forwarded stream error'));
  channel.pipe(stream);
  stream.pipe(channel, { end: false });
  stream.once('end', () => afterWrites(() => !channelClosed && channel.eof()));
  stream.once('close', () => {
    // Nothing reads the channel any more: drain it, or ssh2 never emits its 'close' (it waits
    // for 'end' of the readable side).
    channel.unpipe(stream);
    channel.resume();
    afterWrites(() => !channelClosed && channel.end());
  });
  return new Promise((resolve) => {
    channel.once('close', () => {
      channelClosed = true;
      channel.unpipe(stream);
      stream.destroy();
      resolve({ bytesToWorkload, bytesFromWorkload });
    });
  });
}
