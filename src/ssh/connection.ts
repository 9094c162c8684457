import { setMaxListeners } from 'node:events';
import type { Connection, ClientInfo } from 'ssh2';
import type { Logger } from 'pino';
import type { AuthMethod, AuthProvider } from '../auth/provider.js';
import type { Authorizer } from '../auth/authz.js';
import type { AuthRateLimiter } from './auth-rate-limit.js';
import type { Backend, BackendConnection, ConnectionInfo, MetadataMap } from '../backend/backend.js';
import { nullRecording, type ConnectionRecording, type Recorder } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import { ERROR_CODES, toAirlockError, userLine, type AirlockError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { newConnectionId } from '../core/ids.js';
import { loggableLoginName } from '../auth/login-name.js';
import { attachAuthenticator, type AuthenticatedIdentity } from './authenticator.js';
import { openSessionChannel, type SessionChannel } from './session-channel.js';
import { attachForwarding } from './forwarding.js';
import { createSessionPolicy, tooManySessionsPolicy, PERMISSIVE_SECURITY, type SessionPolicy } from './policy.js';
import { staticConnectionSetup, type ConnectionConfigurer, type ConnectionSetup } from './connection-setup.js';
import { loginNotice } from './login-notice.js';
import { chooseSftpServer, type SftpServer } from './sftp-route.js';
import type { SshOptions } from './options.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface ConnectionDeps {
  readonly options: SshOptions;
  readonly auth: AuthProvider;
  readonly authMethods: readonly AuthMethod[];
  readonly backend: Backend;
  /**
   * Decides each connection's backend, policy and log level after authentication (config
   * server). Absent = the static `backend` and `options` for every connection.
   */
  readonly configure?: ConnectionConfigurer;
  readonly recorder: Recorder;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Prometheus metrics (metrics.enable); absent = not measured. */
  readonly metrics?: GatewayMetrics;
  /** `auth.authz`: asked after each successful authentication; absent = none. */
  readonly authorizer?: Authorizer;
  /** Failed-login limits shared by every connection (`auth.rateLimit`); absent = none. */
  readonly rateLimiter?: AuthRateLimiter;
}

/** A connection as the gateway sees it: enough to list it, drain it and wait for its cleanup. */
export interface LiveConnection {
  readonly connectionId: string;
  /** Tells every session why, then closes the connection (its workload is removed). */
  end(line: string): void;
  /** Writes a line to every session of the connection without ending it. */
  notify(line: string): void;
  /** Resolves once the connection is closed and its workload removed. */
  readonly closed: Promise<void>;
  /** Metadata from authentication (empty before login); lets the gateway pick connections to end. */
  metadata(): MetadataMap;
}

/** How long a polite close (SSH disconnect + FIN) may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 3000;

/**
 * ssh2's `end()` only half-closes: a peer that never answers (frozen client, dead network) keeps
 * the socket — and with it the workload — forever. ssh2 exposes no socket, so reach its `_sock`.
 */
function destroyTransport(client: Connection): void {
  (client as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
}

/** How long end() lets the sessions close (flushing the reason line) before closing the connection. */
const END_FLUSH_MS = 1_000;

/**
 * Owns one SSH connection from TCP accept to workload removal: login grace timer, auth,
 * the workload (started once at login), session channels, idle/deadline timers, and cleanup on
 * every way a connection can end (client exit, TCP drop, keepalive timeout, gateway shutdown).
 */
export function handleConnection(client: Connection, clientInfo: ClientInfo, deps: ConnectionDeps): LiveConnection {
  const connectionId = newConnectionId();
  const remoteAddress = `${clientInfo.ip}:${clientInfo.port}`;
  const logger = deps.logger.child({ connectionId });
  const meter = deps.metrics?.connectionAccepted(client);
  let auditFailure: AirlockError | undefined;
  let recording: ConnectionRecording;
  try {
    recording = deps.recorder.begin(connectionId, remoteAddress);
  } catch (err) {
    // Fail closed: an unrecordable connection may log in but gets no workload, only the reason.
    auditFailure = toAirlockError(err, 'AUDIT_UNAVAILABLE');
    logger.error({ code: auditFailure.code, err: auditFailure }, 'recording cannot start');
    recording = nullRecording;
  }
  const abort = new AbortController();
  // Every forwarded connection being opened listens on it: many at once are normal.
  setMaxListeners(1000, abort.signal);
  const sessions = new Set<SessionChannel>();
  const timers = new Set<NodeJS.Timeout>();
  let identity: AuthenticatedIdentity | undefined;
  let workload: Promise<BackendConnection> | undefined;
  let nextChannelId = 0;
  /** Lines for the user raised outside any channel (a refused ssh -R) before a session exists. */
  const pendingNotices: string[] = [];
  /** Session channels waiting for their open to be confirmed (see client.on('session')). */
  let opening = 0;
  let ending = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  logger.info({ remoteAddress, clientVersion: clientInfo.header.versions.software }, 'connection accepted');
  recording.event(AuditType.Connect, null, { remoteAddress });

  const timer = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };

  /** Polite close first; if the peer does not finish it, drop the socket. */
  const closeClient = () => {
    client.end();
    const t = setTimeout(() => destroyTransport(client), CLOSE_GRACE_MS);
    t.unref();
    void closed.then(() => clearTimeout(t));
  };

  const graceTimer = timer(deps.options.loginGraceTime, () => {
    logger.warn({ code: 'LOGIN_GRACE_EXPIRED', loginGraceTimeMs: deps.options.loginGraceTime }, 'login grace time expired');
    closeClient();
  });

  let idleTimer: NodeJS.Timeout | undefined;
  const onActivity = () => idleTimer?.refresh();

  // OpenSSH exits on DISCONNECT without writing out channel data it read in the same batch, so
  // the reason line could be lost (seen under load): the sessions close first (the client then
  // leaves by itself), the connection once they have, or after END_FLUSH_MS.
  let clientClosing = false;
  const closeClientOnce = () => {
    if (clientClosing) return;
    clientClosing = true;
    closeClient();
  };
  const end = (line: string) => {
    if (ending) return;
    ending = true;
    for (const s of sessions) s.terminate(line);
    if (sessions.size === 0) closeClientOnce();
    else timer(END_FLUSH_MS, closeClientOnce);
  };

  // 198 once per connection: ssh2 reports a failed key exchange as an 'error' of level
  // "handshake"; a client that leaves before any key exchange finished is recorded at close.
  let handshakeDone = false;
  let handshakeFailed = false;
  const recordHandshakeFailed = (reason: string) => {
    if (handshakeDone || handshakeFailed) return;
    handshakeFailed = true;
    recording.event(AuditType.HandshakeFailed, null, { reason });
  };

  client.on('error', (err: Error & { level?: string }) => {
    if (err.level === 'handshake') recordHandshakeFailed(err.message);
    // Without a listener ssh2 errors (ECONNRESET, keepalive timeout) would crash the gateway.
    if (err.level === 'client-timeout') {
      logger.warn({ reason: 'keepalive' }, 'client stopped answering keepalives');
      destroyTransport(client); // it will not answer a polite close either
    } else logger.debug({ err: err.message, level: err.level }, 'connection error');
  });

  client.on('handshake', (negotiated) => {
    handshakeDone = true;
    meter?.handshake();
    recording.event(AuditType.HandshakeSuccessful, null, { kex: negotiated.kex, cipher: negotiated.cs.cipher });
  });

  attachAuthenticator({
    client,
    provider: deps.auth,
    methods: deps.authMethods,
    maxAuthTries: deps.options.maxAuthTries,
    connectionId,
    remoteAddress,
    remoteIp: clientInfo.ip,
    clientVersion: () => clientInfo.header.identRaw,
    logger,
    recording,
    signal: abort.signal,
    metrics: deps.metrics,
    authorizer: deps.authorizer,
    rateLimiter: deps.rateLimiter,
    onAuthenticated: (id) => (identity = id),
    onTooManyFailures: () => closeClient(),
  });

  client.on('ready', () => {
    clearTimeout(graceTimer);
    timers.delete(graceTimer);
    if (!identity) {
      closeClient();
      return;
    }
    const limit = connectionDeadline(identity.decision.deadline, deps.clock.now(), deps.options.maxConnectionDuration);
    const info = connectionInfo(connectionId, remoteAddress, clientInfo.header.identRaw, identity, limit?.at);
    const restrictions = identity.decision.session;
    logger.info({ username: info.username, loginUsername: loggableLoginName(info.loginUsername), method: identity.method }, 'connection authenticated');
    meter?.authenticated();
    const configuring: Promise<ConnectionSetup> = auditFailure
      ? Promise.reject(auditFailure)
      : deps.configure
        ? deps.configure(info, abort.signal)
        : Promise.resolve(staticConnectionSetup(info, deps.backend, deps.options));
    // Settles once; session channels wait for it (see below). `undefined` = no valid setup: the
    // connection is refused — every program start shows the reason — and nothing is created.
    let setupError: AirlockError | undefined;
    const ready: Promise<ConnectionSetup | undefined> = configuring.then(
      (setup) => {
        if (setup.logLevel !== undefined) logger.level = setup.logLevel;
        recording.identify(setup.info);
        return setup;
      },
      (err: unknown) => {
        setupError = toAirlockError(err, 'CONFIG_SERVER_ERROR');
        recording.identify(info);
        if (abort.signal.aborted) return undefined; // the client left: nothing to refuse
        if (!auditFailure) logger.error({ code: setupError.code, err: setupError }, 'connection configuration failed: connection refused');
        // Sessions show the reason when they start a program; a client without any (ssh -N)
        // must not keep a refused connection open either.
        const line = userLine(setupError);
        timer(END_FLUSH_MS, () => {
          if (sessions.size === 0) end(line);
        });
        return undefined;
      },
    );
    // One policy per connection, from its setup (static config or the config server's answer).
    // Without a setup nothing can run (the workload rejects with the reason): let every request
    // through to that line instead of a policy refusal that would hide it.
    let sessionPolicy: SessionPolicy | undefined;
    const policyFor = (setup: ConnectionSetup | undefined): SessionPolicy =>
      (sessionPolicy ??= createSessionPolicy(setup?.security ?? PERMISSIVE_SECURITY, restrictions));
    workload = ready.then((setup) => {
      if (!setup) throw setupError;
      const opening = setup.openWorkload(abort.signal);
      return meter ? meter.workload(opening) : opening;
    });
    // Errors surface on the first session channel; keep the rejection from going unhandled.
    workload.catch((err: unknown) => {
      if (err === setupError && !auditFailure) return; // logged above
      const e = toAirlockError(err, 'CONTAINER_START_FAILED');
      logger.error({ code: e.code, err: e }, 'workload could not be created');
    });
    if (deps.options.idleTimeout > 0) {
      idleTimer = timer(deps.options.idleTimeout, () => {
        logger.info({ code: 'IDLE_TIMEOUT', idleTimeoutMs: deps.options.idleTimeout }, 'idle timeout');
        end(`airlock: ${ERROR_CODES.IDLE_TIMEOUT.userMessage} [IDLE_TIMEOUT]`);
      });
    }
    if (limit) scheduleDeadline(limit);

    attachForwarding({
      client,
      workload: () => workload ?? Promise.reject(new Error('not authenticated')),
      backendName: deps.backend.name,
      policy: () => ready.then(policyFor),
      recording,
      logger,
      nextChannelId: () => nextChannelId++,
      onActivity,
      notify: (line) => {
        if (sessions.size > 0) notify(line);
        else if (pendingNotices.length < 10) pendingNotices.push(line);
      },
      ending: () => ending,
      signal: abort.signal,
    });

    // A session channel is confirmed only once the connection's setup is known (the client
    // waits for the confirmation before sending pty/env/exec), so every request on it is judged
    // by this connection's policy. Confirmations keep their order: `ready` settles once.
    client.on('session', (accept, reject) => {
      const channelId = nextChannelId++;
      // 300 at the request (as ContainerSSH), 301/302 once it is answered.
      recording.event(AuditType.NewChannel, channelId, { type: 'session' });
      void ready.then(async (setup) => {
        const maxSessions = setup?.maxSessions ?? deps.options.maxSessions;
        if (ending) {
          recording.event(AuditType.NewChannelFailed, channelId, { type: 'session' });
          reject(); // OpenSSH prints "channel N: open failed: administratively prohibited"
          return;
        }
        // Channels still waiting for their confirmation count too (the SFTP routing below).
        const overLimit = maxSessions >= 0 && sessions.size + opening >= maxSessions;
        if (overLimit) logger.warn({ channelId, maxSessions, code: 'POLICY_DENIED' }, 'session channel over security.maxSessions: its request will be refused');
        const policy = overLimit ? tooManySessionsPolicy(maxSessions) : policyFor(setup);
        // Who serves SFTP on the channel must be known before it is accepted (sftp-route.ts);
        // the answer needs the workload, which the channel's program needs anyway.
        opening++;
        let sftpServer: SftpServer;
        try {
          sftpServer = await chooseSftpServer(() => workload ?? Promise.reject(new Error('not authenticated')), policy, logger);
        } finally {
          opening--;
        }
        if (ending) {
          // The connection ended meanwhile (shutdown, idle, deadline, the client left).
          recording.event(AuditType.NewChannelFailed, channelId, { type: 'session' });
          reject();
          return;
        }
        recording.event(AuditType.NewChannelSuccessful, channelId, { type: 'session' });
        const channel = openSessionChannel({
          channelId,
          session: accept(),
          sftpServer,
          workload: () => workload ?? Promise.reject(new Error('not authenticated')),
          envAllowed: setup?.envAllowed ?? deps.options.envAllowed,
          policy,
          loginNotice: () =>
            loginNotice({
              ...(deps.options.motd ? { motd: deps.options.motd } : {}),
              recorded: recording.captures,
              ...(info.deadline ? { deadline: info.deadline } : {}),
              now: Date.now(),
            }),
          logger: logger.child({ channelId }),
          recording,
          onActivity,
          onClosed: () => {
            sessions.delete(channel);
            if (ending && sessions.size === 0) closeClientOnce();
          },
        });
        sessions.add(channel);
        for (const line of pendingNotices.splice(0)) channel.notify(line);
      }).catch((err: unknown) => {
        // Deferred, so a throw here (the client left meanwhile) must not become an unhandled rejection.
        logger.warn({ channelId, err }, 'session channel could not be opened');
      });
    });
  });

  function scheduleDeadline(limit: ConnectionDeadline) {
    const at = limit.at.getTime();
    const iso = limit.at.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const remaining = at - deps.clock.now();
    const lead = deps.options.deadlineWarning;
    if (lead > 0 && remaining > lead) {
      longTimer(remaining - lead, () => {
        const why = limit.source === 'duration' ? `maximum connection duration, at ${iso}` : `access expires at ${iso}`;
        for (const s of sessions) s.notify(`airlock: this session ends in ${describeLead(lead)} (${why})`);
      });
    }
    longTimer(Math.max(0, remaining), () => {
      logger.info({ deadline: limit.at.toISOString(), source: limit.source }, 'connection deadline reached');
      end(
        limit.source === 'duration'
          ? `airlock: this connection reached its maximum duration (${describeLead(deps.options.maxConnectionDuration)}); the session is closed`
          : 'airlock: access has expired; the session is closed',
      );
    });
  }

  /** setTimeout fires at once for delays over 2^31-1 ms (~24.8 days): wait in steps. */
  function longTimer(ms: number, fn: () => void) {
    if (ms <= MAX_TIMER_MS) timer(ms, fn);
    else timer(MAX_TIMER_MS, () => longTimer(ms - MAX_TIMER_MS, fn));
  }

  let cleanedUp = false;
  const cleanup = async (why: string) => {
    if (cleanedUp) return;
    cleanedUp = true;
    ending = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    abort.abort();
    for (const s of sessions) s.terminate('airlock: connection closed');
    // Give back what auth holds (a CI session's connection slot) as soon as the client is gone.
    // Not awaited before the workload removal (a reconnect need not wait for it), but before
    // `closed` resolves, so a shutdown never closes the session store under a pending release.
    const released = identity?.decision.release?.().catch((err: unknown) => logger.warn({ err }, 'auth release failed'));
    try {
      if (workload) {
        const conn = await workload.catch(() => undefined);
        await conn?.close(why);
      }
    } catch (err) {
      logger.error({ err, code: toAirlockError(err).code }, 'workload removal failed');
    }
    recordHandshakeFailed('the connection closed before the key exchange completed');
    recording.event(AuditType.Disconnect, null, { reason: why });
    await recording.close().catch((err: unknown) => logger.error({ err }, 'recording close failed'));
    await released;
    meter?.closed();
    logger.info({ reason: why }, 'connection closed');
    resolveClosed();
  };
  client.on('close', () => void cleanup('client disconnected'));

  const notify = (line: string) => {
    for (const s of sessions) s.notify(line);
  };
  return { connectionId, end, notify, closed, metadata: () => identity?.decision.metadata ?? {} };
}

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** "2 hours", "5 minutes", "1 minute", "30 seconds": the warning and closing lines' wording. */
function describeLead(ms: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return unit(ms / 3_600_000, 'hour');
  return ms >= 60_000 && ms % 60_000 === 0 ? unit(ms / 60_000, 'minute') : unit(Math.round(ms / 1000), 'second');
}

/** When a connection is closed, and why: the credential's end (`auth`) or ssh.maxConnectionDuration. */
export interface ConnectionDeadline {
  readonly at: Date;
  readonly source: 'auth' | 'duration';
}

/**
 * The earlier of the credential's deadline (a CI-debug token's expiry, or an SSH certificate's
 * `valid before` with auth.publicKey.closeAtCertificateExpiry) and login + maxDurationMs (0 = no
 * limit). Undefined = the connection may last as long as it is used.
 */
export function connectionDeadline(auth: Date | undefined, loginAt: number, maxDurationMs: number): ConnectionDeadline | undefined {
  const byDuration = maxDurationMs > 0 ? loginAt + maxDurationMs : undefined;
  if (auth && (byDuration === undefined || auth.getTime() <= byDuration)) return { at: auth, source: 'auth' };
  return byDuration === undefined ? undefined : { at: new Date(byDuration), source: 'duration' };
}

function connectionInfo(connectionId: string, remoteAddress: string, clientVersion: string, id: AuthenticatedIdentity, deadline: Date | undefined): ConnectionInfo {
  const d = id.decision;
  const files: Record<string, { content: Buffer; sensitive: boolean }> = {};
  for (const [path, v] of Object.entries(d.files ?? {})) {
    files[path] = { content: Buffer.from(v.value, 'base64'), sensitive: v.sensitive };
  }
  const metadata: MetadataMap = d.metadata ?? {};
  return {
    connectionId,
    // A CI-debug token typed as the user name is a credential: nothing after auth (recordings,
    // labels, webhooks) gets it, only its digest.
    loginUsername: loggableLoginName(id.loginUsername),
    username: d.authenticatedUsername || id.loginUsername,
    remoteAddress,
    clientVersion,
    metadata,
    environment: d.environment ?? {},
    files,
    ...(deadline ? { deadline } : {}),
    ...(d.image ? { image: d.image } : {}),
  };
}
