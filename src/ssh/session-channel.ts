import { finished } from 'node:stream/promises';
import type { AcceptSftpConnection, Session, ServerChannel, SFTPWrapper } from 'ssh2';
import type { Logger } from 'pino';
import type { BackendConnection, ExitStatus, Process, ProcessRequest, PtySpec, WorkloadFiles } from '../backend/backend.js';
import type { ConnectionRecording } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import { AirlockError, toAirlockError, userLine } from '../core/errors.js';
import { createSessionPolicy, envRefusalLine, PERMISSIVE_SECURITY, type SessionPolicy } from './policy.js';
import type { SftpServer } from './sftp-route.js';
import { sftpStderr } from './sftp-channel.js';
import { serveSftp, type SftpSession } from './sftp-server.js';

export interface SessionChannelDeps {
  readonly channelId: number;
  readonly session: Session;
  /** Who serves an "sftp" request, decided before the channel was accepted (sftp-route.ts). */
  readonly sftpServer?: SftpServer;
  /** Resolves to the connection's workload (started once at login, shared by its channels). */
  readonly workload: () => Promise<BackendConnection>;
  readonly envAllowed: (name: string) => boolean;
  /** security.* config plus the credential's restrictions; absent = everything allowed. */
  readonly policy?: SessionPolicy;
  /** Login notice (motd, recording, deadline) written before an interactive shell starts. */
  readonly loginNotice?: () => string;
  readonly logger: Logger;
  readonly recording: ConnectionRecording;
  /** Called on every chunk in either direction (idle timer). */
  readonly onActivity: () => void;
  readonly onClosed: () => void;
}

/** Exit status OpenSSH's client uses for "something went wrong before the program ran". */
const GATEWAY_FAILURE_STATUS = 255;

export interface SessionChannel {
  readonly channelId: number;
  /** Writes one line to the user (stderr) and ends the channel; used for shutdown/idle/deadline. */
  terminate(line: string): void;
  /** Writes a line to the user without ending anything (e.g. a deadline warning). */
  notify(line: string): void;
}

/**
 * One SSH "session" channel (RFC 4254 §6): collects pty/env requests, starts exactly one program
 * on shell/exec/subsystem, pipes bytes with backpressure, forwards window changes and signals,
 * and reports exit-status or exit-signal before closing.
 */
export function openSessionChannel(deps: SessionChannelDeps): SessionChannel {
  const { session, logger, recording, channelId } = deps;
  const env: Record<string, string> = {};
  let pty: PtySpec | undefined;
  let started = false;
  let channel: ServerChannel | undefined;
  let proc: Process | undefined;
  let sftp: { readonly wrapper: SFTPWrapper; readonly session: SftpSession } | undefined;
  let closed = false;
  const pendingLines: string[] = [];
  /** Variable names refused by security.env, told to the user once when the program starts. */
  const refusedEnv: string[] = [];
  const policy = deps.policy ?? createSessionPolicy(PERMISSIVE_SECURITY);

  session.on('pty', (accept, reject, info) => {
    const answer = policy.pty();
    recording.event(AuditType.ChannelRequestPty, channelId, { term: info.term, cols: info.cols, rows: info.rows, allowed: answer.allowed });
    if (!answer.allowed) {
      // OpenSSH goes on without a terminal; the line tells the user why.
      logger.info({ channelId, code: 'POLICY_DENIED', request: 'pty' }, 'pty request refused by policy');
      pendingLines.push(answer.message + '\r\n');
      reject?.();
      return;
    }
    pty = { term: info.term || 'xterm', cols: info.cols || 80, rows: info.rows || 24 };
    accept?.();
  });

  session.on('env', (accept, reject, info) => {
    const allowed = deps.envAllowed(info.key);
    recording.event(AuditType.ChannelRequestSetEnv, channelId, { name: info.key, allowed });
    if (started) {
      // RFC 4254 §6.4: env comes before the program; OpenSSH never sends one later.
      logger.debug({ channelId, name: info.key }, 'env request after the program started: refused');
      reject?.();
      return;
    }
    if (!allowed) {
      // OpenSSH does not report a refused env request: the user hears of it when the program
      // starts (envRefusalLine). Names only — a value may be a secret.
      logger.info({ channelId, code: 'POLICY_DENIED', name: info.key }, 'env request refused by policy');
      // Bounded: a client may send any number of env requests.
      if (refusedEnv.length < 100 && !refusedEnv.includes(info.key)) refusedEnv.push(info.key);
      reject?.();
      return;
    }
    logger.debug({ channelId, name: info.key }, 'env request accepted');
    env[info.key] = info.val;
    accept?.();
  });

  session.on('window-change', (accept, _reject, info) => {
    recording.event(AuditType.ChannelRequestWindow, channelId, { cols: info.cols, rows: info.rows });
    if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
    accept?.();
    proc
      ?.resize(info.cols, info.rows)
      .then(() => logger.debug({ channelId, cols: info.cols, rows: info.rows }, 'window resized'))
      .catch((err: unknown) => {
        logger.warn({ channelId, code: toAirlockError(err).code, err }, 'window resize failed');
      });
  });

  session.on('signal', (accept, reject, info) => {
    recording.event(AuditType.ChannelRequestSignal, channelId, { signal: info.name });
    const answer = policy.signal(info.name);
    if (!proc || !answer.allowed) {
      if (!answer.allowed) {
        logger.info({ channelId, code: 'POLICY_DENIED', signal: info.name }, 'signal refused by policy');
        // OpenSSH does not show a refused request (it often does not even ask for a reply).
        if (channel && !closed) channel.stderr.write(answer.message + '\r\n');
      }
      reject?.();
      return;
    }
    accept?.();
    proc.signal(info.name).catch((err: unknown) => {
      logger.warn({ channelId, signal: info.name, code: toAirlockError(err).code, err }, 'signal delivery failed');
    });
  });

  session.on('exec', (accept, reject, info) => {
    recording.event(AuditType.ChannelRequestExec, channelId, { command: info.command });
    start(accept, reject, 'exec', info.command);
  });
  session.on('shell', (accept, reject) => {
    recording.event(AuditType.ChannelRequestShell, channelId, {});
    start(accept, reject, 'shell', '');
  });
  session.on('subsystem', (accept, reject, info) => {
    recording.event(AuditType.ChannelRequestSubsystem, channelId, { subsystem: info.name });
    start(accept, reject, 'subsystem', info.name);
  });
  // With an `sftp` listener ssh2 hands "sftp" requests to it (parsed SFTP), others to `subsystem`.
  if (deps.sftpServer === 'gateway') session.on('sftp', (accept, reject) => onGatewaySftp(accept, reject));

  // The client's EOF (its stdin ended): ssh2 emits 'eof' for CHANNEL_EOF only, not for CLOSE.
  session.on('eof', () => recording.event(AuditType.CloseWrite, channelId, {}));

  session.on('close', () => {
    if (closed) return;
    closed = true;
    recording.event(AuditType.Close, channelId, {});
    // The client went away (or closed the channel): the program has no one to talk to.
    void proc?.kill();
    void sftp?.session.abort(GATEWAY_FAILURE_STATUS);
    deps.onClosed();
  });

  /** An "sftp" subsystem request the gateway serves itself (the workload has no sftp-server). */
  function onGatewaySftp(accept: AcceptSftpConnection | undefined, reject: (() => void) | undefined) {
    recording.event(AuditType.ChannelRequestSubsystem, channelId, { subsystem: 'sftp' });
    if (started || !accept) {
      reject?.();
      return;
    }
    started = true;
    void serveGatewaySftp(accept);
  }

  async function serveGatewaySftp(accept: AcceptSftpConnection) {
    // Accepted at once: ssh2 drops data that arrives before, and OpenSSH's INIT follows the
    // request without waiting for the answer. Requests wait for the files instead.
    const wrapper = accept();
    queueEnvRefusal();
    for (const line of pendingLines.splice(0)) sftpStderr(wrapper, line.trimEnd());
    const ready = (async () => {
      const workload = await deps.workload();
      if (!workload.openFiles) throw new AirlockError('EXEC_FAILED', 'the backend has no file access');
      return workload.openFiles({ channelId });
    })();
    const served = serveSftp({ sftp: wrapper, files: ready, channelId, logger, recording, onActivity: deps.onActivity, now: Date.now });
    sftp = { wrapper, session: served };
    let files: WorkloadFiles;
    try {
      files = await ready;
    } catch (err) {
      const e = toAirlockError(err, 'EXEC_FAILED');
      logger.error({ channelId, code: e.code, err: e, kind: 'subsystem', servedBy: 'gateway' }, 'session program could not start');
      sftpStderr(wrapper, userLine(e));
      await served.abort(GATEWAY_FAILURE_STATUS);
      return;
    }
    logger.info({ channelId, kind: 'subsystem', servedBy: 'gateway' }, 'session program started');
    await served.done;
    await files.close().catch((err: unknown) => logger.warn({ channelId, err }, 'could not release the file access'));
    logger.info({ channelId, servedBy: 'gateway' }, 'session program ended');
  }

  function queueEnvRefusal() {
    if (refusedEnv.length > 0) pendingLines.push(envRefusalLine(refusedEnv) + '\r\n');
  }

  function start(accept: (() => ServerChannel) | undefined, reject: (() => void) | undefined, kind: ProcessRequest['kind'], command: string) {
    if (started || !accept) {
      reject?.();
      return;
    }
    started = true;
    channel = accept();
    queueEnvRefusal();
    for (const line of pendingLines.splice(0)) channel.stderr.write(line);
    const decision = policy.program(kind, command);
    if (!decision.allowed) {
      logger.info({ channelId, code: 'POLICY_DENIED', kind, command }, 'session request refused by policy');
      channel.stderr.write(decision.message + '\r\n');
      channel.exit(GATEWAY_FAILURE_STATUS);
      channel.end();
      return;
    }
    // A forced command hides the request from the workload except as SSH_ORIGINAL_COMMAND (as sshd does).
    const programEnv = decision.originalCommand !== undefined ? { ...env, SSH_ORIGINAL_COMMAND: decision.originalCommand } : { ...env };
    if (kind === 'shell') {
      const notice = deps.loginNotice?.() ?? '';
      if (notice !== '') channel.write(notice);
    }
    if (decision.command !== command || decision.kind !== kind) logger.info({ channelId, kind, forced: true }, 'forced command replaces the request');
    void run(channel, { channelId, kind: decision.kind, command: decision.command, env: programEnv, ...(pty ? { pty } : {}) });
  }

  async function run(ch: ServerChannel, request: ProcessRequest): Promise<void> {
    try {
      const workload = await deps.workload();
      if (closed) return;
      proc = await workload.startProcess(request);
    } catch (err) {
      const e = toAirlockError(err, 'EXEC_FAILED');
      logger.error({ channelId, code: e.code, err: e, kind: request.kind }, 'session program could not start');
      fail(ch, e);
      return;
    }
    if (closed) {
      await proc.kill();
      return;
    }
    logger.info({ channelId, kind: request.kind, pty: Boolean(request.pty) }, 'session program started');
    await pump(ch, proc);
  }

  async function pump(ch: ServerChannel, p: Process): Promise<void> {
    const activity = deps.onActivity;
    ch.on('data', activity);
    p.stdout.on('data', activity);
    p.stdin.on('error', (err: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET after the program exited: input nobody reads any more.
      logger.debug({ channelId, err: err.message }, 'stdin closed by program');
    });
    // Plain listeners next to pipe(), only on the streams the recording keeps: the recorder
    // copies nothing and queues without blocking.
    const keep = recording.captures;
    if (keep.stdin) ch.on('data', (d: Buffer) => recording.io(channelId, 0, d));
    if (keep.stdout) p.stdout.on('data', (d: Buffer) => recording.io(channelId, 1, d));
    if (keep.stderr) p.stderr.on('data', (d: Buffer) => recording.io(channelId, 2, d));
    ch.pipe(p.stdin);
    p.stdout.pipe(ch, { end: false });
    p.stderr.pipe(ch.stderr, { end: false });
    let status: ExitStatus;
    try {
      [status] = await Promise.all([p.exited, finished(p.stdout).catch(() => undefined), finished(p.stderr).catch(() => undefined)]);
    } catch (err) {
      const e = toAirlockError(err, 'EXEC_FAILED');
      logger.error({ channelId, code: e.code, err: e }, 'session program failed');
      fail(ch, e);
      return;
    }
    ch.unpipe(p.stdin);
    if (closed) return;
    if (status.kind === 'code') {
      recording.event(AuditType.ExitStatus, channelId, { exitStatus: status.code });
      ch.exit(status.code);
    } else {
      recording.event(AuditType.ExitSignal, channelId, { signal: status.signal, coreDumped: status.coreDumped });
      ch.exit(status.signal, status.coreDumped, '');
    }
    logger.info({ channelId, exit: status }, 'session program ended');
    ch.end();
  }

  function fail(ch: ServerChannel, err: AirlockError) {
    if (closed) return;
    ch.stderr.write(userLine(err) + '\r\n');
    ch.exit(GATEWAY_FAILURE_STATUS);
    ch.end();
  }

  return {
    channelId,
    notify(line) {
      if (closed) return;
      if (channel) channel.stderr.write(line + '\r\n');
      else if (sftp) sftpStderr(sftp.wrapper, line);
      else pendingLines.push(line + '\r\n');
    },
    terminate(line) {
      if (closed) return;
      if (channel) {
        channel.stderr.write(line + '\r\n');
        channel.exit(GATEWAY_FAILURE_STATUS);
        channel.end();
      } else if (sftp) {
        sftpStderr(sftp.wrapper, line);
        void sftp.session.abort(GATEWAY_FAILURE_STATUS);
      } else {
        session.removeAllListeners('sftp');
        session.removeAllListeners('exec');
        session.removeAllListeners('shell');
        session.removeAllListeners('subsystem');
      }
      void proc?.kill();
    },
  };
}
