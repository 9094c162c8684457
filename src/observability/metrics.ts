/**
 * Prometheus metrics of one gateway process (prom-client). One Registry per app — never the
 * global default — so tests and several gateways in one process do not share counters. Labels
 * are small fixed sets (method, outcome, kind, direction, error code, pooled image): never a
 * user name, key fingerprint, address or connection id.
 *
 * The ContainerSSH 0.5 names are kept so dashboards built for it keep working; everything else
 * is `airlock_*`.
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendConnection, Process, ProcessRequest } from '../backend/backend.js';
import { delegateConnection } from '../backend/index.js';
import { toAirlockError } from '../core/errors.js';

export type AuthOutcome = 'accept' | 'reject' | 'error';

/** What the SSH layer reports. Every call is O(1) and off the byte-copying hot path. */
export interface GatewayMetrics {
  /**
   * A client connected (ssh2 has read its version line). `client` is the ssh2 Connection: its
   * TCP socket's byte counters are read at scrape time, so bytes cost nothing per chunk.
   */
  connectionAccepted(client: object): ConnectionMeter;
  /** One authentication decision (the same attempts the authenticator logs). */
  authAttempt(method: string, outcome: AuthOutcome, durationMs: number): void;
  /** A connection refused at its first auth request because its source address or login name is blocked. */
  authRateLimited(scope: 'ip' | 'user'): void;
  /** Too many failed logins: a source address or login name is blocked from now on. */
  authBlocked(scope: 'ip' | 'user'): void;
}

/** The metrics of one SSH connection. */
export interface ConnectionMeter {
  /** Key exchange finished (a connection that closes without it counts as a failed handshake). */
  handshake(): void;
  /** Login succeeded: the session duration runs from here to `closed()`. */
  authenticated(): void;
  /**
   * Times the workload's start (Backend.openConnection) and, through the returned wrapper, every
   * program start (startProcess); counts backend requests and errors. Returns a promise that
   * settles like `opening`.
   */
  workload(opening: Promise<BackendConnection>): Promise<BackendConnection>;
  /** The connection is gone and its workload removed. Idempotent. */
  closed(): void;
}

/** Read from the audit recorder at scrape time (`AuditRecorder.stats().uploads` fits). */
export interface AuditUploadStats {
  /** Sealed recordings waiting in the spool or uploading. */
  readonly pending: number;
  /** Upload attempts that failed (each retry counts). */
  readonly failedAttempts: number;
}

/** Read from the warm pool at scrape time (`DockerBackend.poolStatus()` fits). */
export interface PoolReadiness {
  readonly image: string;
  /** Containers started and waiting to be claimed. */
  readonly idle: number;
}

export interface AppMetrics extends GatewayMetrics {
  readonly registry: Registry;
  /** Wires the audit recorder; its figures are read on every scrape. */
  setAuditSource(source: () => AuditUploadStats): void;
  /** One config server call (per connection); `ok` false = it refused the connection. */
  configServerRequest(ok: boolean): void;
  /** Wires the warm pool (ready containers per pooled image); read on every scrape. */
  setPoolSource(source: () => PoolReadiness | undefined): void;
  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  /** process_* and nodejs_* metrics (memory, CPU, event loop lag, GC). Default true. */
  readonly defaultMetrics?: boolean;
  /** Monotonic milliseconds; injectable so tests can control durations. */
  readonly now?: () => number;
}

interface ByteCounters {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** ssh2 keeps the TCP socket private (`_sock`); reading its counters is free and exact. */
function socketOf(client: object): ByteCounters | undefined {
  const sock = (client as { _sock?: Partial<ByteCounters> })._sock;
  return sock && typeof sock.bytesRead === 'number' && typeof sock.bytesWritten === 'number' ? (sock as ByteCounters) : undefined;
}

// Seconds. Auth: local keys take microseconds, webhooks tens of ms, retried ones up to authTimeout.
const AUTH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
// docker run is ~0.35 s here, a pull or a slow engine tens of seconds, the timeout 60 s.
const START_BUCKETS = [0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60];
const SESSION_BUCKETS = [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400];
// 1 KiB … 16 GiB, ×4.
const BYTE_BUCKETS = Array.from({ length: 13 }, (_, i) => 1024 * 4 ** i);

const DUPLICATE_TOTAL_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetrics(options: MetricsOptions = {}): AppMetrics {
  const now = options.now ?? (() => performance.now());
  const registry = new Registry();
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // prom-client also exports these gauges under a `_total` name, which Prometheus reserves for
    // counters (`promtool check metrics` rejects them); the same values stay under the plain names.
    for (const name of DUPLICATE_TOTAL_GAUGES) registry.removeSingleMetric(name);
  }
  const registers = [registry];

  const live = new Set<ByteCounters>();
  const closedBytes = { received: 0, sent: 0 };
  let audit: (() => AuditUploadStats) | undefined;
  let pool: (() => PoolReadiness | undefined) | undefined;

  // --- ContainerSSH names -------------------------------------------------------------------
  const connections = new Counter({ name: 'containerssh_ssh_connections_total', help: 'SSH connections accepted.', registers });
  let current = 0;
  new Gauge({
    name: 'containerssh_ssh_current_connections',
    help: 'SSH connections open now.',
    registers,
    collect() {
      this.set(current);
    },
  });
  const handshakesOk = new Counter({ name: 'containerssh_ssh_successful_handshakes_total', help: 'SSH key exchanges completed.', registers });
  const handshakesFailed = new Counter({
    name: 'containerssh_ssh_failed_handshakes_total',
    help: 'SSH connections that closed before the key exchange completed.',
    registers,
  });
  const authRequests = new Counter({
    name: 'containerssh_auth_server_requests_total',
    help: 'Authentication decisions asked of the auth chain (webhook, authorized_keys or CI token).',
    registers,
  });
  const authServerFailures = new Counter({
    name: 'containerssh_auth_server_failures_total',
    help: 'Authentication decisions that failed with a backend error (the login was refused: fail closed).',
    registers,
  });
  const authSuccess = new Counter({ name: 'containerssh_auth_success_total', help: 'Successful authentications.', registers });
  const authFailures = new Counter({ name: 'containerssh_auth_failures_total', help: 'Rejected authentication attempts.', registers });
  const configRequests = new Counter({
    name: 'containerssh_config_server_requests_total',
    help: 'Config server calls (configserver.url): one per authenticated connection, retries included.',
    registers,
  });
  const configFailures = new Counter({
    name: 'containerssh_config_server_failures_total',
    help: 'Config server calls that refused the connection: no valid answer within configserver.totalTimeout, or an invalid config.',
    registers,
  });
  const backendRequests = new Counter({
    name: 'containerssh_backend_requests_total',
    help: 'Backend requests: workload starts (one per login) and program starts (one per session channel).',
    registers,
  });
  const backendErrors = new Counter({ name: 'containerssh_backend_errors_total', help: 'Backend requests that failed.', registers });

  // --- airlock_* ----------------------------------------------------------------------------
  const authDuration = new Histogram({
    name: 'airlock_auth_duration_seconds',
    help: 'Time to decide one authentication attempt.',
    labelNames: ['method', 'outcome'] as const,
    buckets: AUTH_BUCKETS,
    registers,
  });
  const containerStart = new Histogram({
    name: 'airlock_container_start_seconds',
    help: 'Time from login to a ready workload (Backend.openConnection: the container start in connection mode).',
    labelNames: ['outcome'] as const,
    buckets: START_BUCKETS,
    registers,
  });
  const processStart = new Histogram({
    name: 'airlock_process_start_seconds',
    help: 'Time to start a session program (an exec in connection mode, a whole container in session mode).',
    labelNames: ['kind', 'outcome'] as const,
    buckets: START_BUCKETS,
    registers,
  });
  const backendErrorsByCode = new Counter({
    name: 'airlock_backend_errors_total',
    help: 'Failed backend requests by operation and error code (docs/errors.md).',
    labelNames: ['operation', 'code'] as const,
    registers,
  });
  const sessionDuration = new Histogram({
    name: 'airlock_session_duration_seconds',
    help: 'Time from login to the end of the connection (workload removed).',
    buckets: SESSION_BUCKETS,
    registers,
  });
  const sessionBytes = new Histogram({
    name: 'airlock_session_transferred_bytes',
    help: 'Bytes on the SSH connection of one logged-in session, observed when it ends.',
    labelNames: ['direction'] as const,
    buckets: BYTE_BUCKETS,
    registers,
  });
  new Counter({
    name: 'airlock_ssh_transferred_bytes_total',
    help: 'Bytes on the gateway\'s SSH connections (TCP payload, encrypted), open ones included.',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      let received = closedBytes.received;
      let sent = closedBytes.sent;
      for (const s of live) {
        received += s.bytesRead;
        sent += s.bytesWritten;
      }
      this.reset();
      this.inc({ direction: 'received' }, received);
      this.inc({ direction: 'sent' }, sent);
    },
  });
  new Gauge({
    name: 'airlock_recordings_pending_upload',
    help: 'Sealed session recordings waiting in the spool to be uploaded.',
    registers,
    collect() {
      this.set(audit?.().pending ?? 0);
    },
  });
  new Counter({
    name: 'airlock_recording_upload_failures_total',
    help: 'Failed recording upload attempts (each retry counts; the recording stays in the spool).',
    registers,
    collect() {
      this.reset();
      this.inc(audit?.().failedAttempts ?? 0);
    },
  });
  const authRateLimited = new Counter({
    name: 'airlock_auth_rate_limited_total',
    help: 'Connections refused at their first authentication request, without asking any auth provider, because the source address (scope="ip") or the login name (scope="user") is blocked after too many failed logins (auth.rateLimit).',
    labelNames: ['scope'] as const,
    registers,
  });
  const authBlocks = new Counter({
    name: 'airlock_auth_blocks_total',
    help: 'Blocks started by the failed-login limits (auth.rateLimit.perIp / perUser), by scope.',
    labelNames: ['scope'] as const,
    registers,
  });
  // Both scopes from the start, so a rate() over them works before the first block.
  for (const scope of ['ip', 'user'] as const) {
    authRateLimited.inc({ scope }, 0);
    authBlocks.inc({ scope }, 0);
  }
  new Gauge({
    name: 'airlock_pool_ready_containers',
    help: 'Warm-pool containers started and waiting to be claimed, per pooled image.',
    labelNames: ['image'] as const,
    registers,
    collect() {
      // Read at scrape time: the pool changes on every claim and refill, nobody has to push.
      const status = pool?.();
      this.reset();
      if (status) this.set({ image: status.image }, status.idle);
    },
  });

  const seconds = (startedMs: number) => Math.max(0, now() - startedMs) / 1000;

  const backendFailed = (operation: string, err: unknown) => {
    backendErrors.inc();
    backendErrorsByCode.inc({ operation, code: toAirlockError(err).code });
  };

  // Only startProcess is measured; every other member (file API, forwarding) passes through.
  const instrument = (conn: BackendConnection): BackendConnection =>
    delegateConnection(conn, {
      startProcess(request: ProcessRequest, signal?: AbortSignal): Promise<Process> {
        const started = now();
        backendRequests.inc();
        return conn.startProcess(request, signal).then(
          (proc) => {
            processStart.observe({ kind: request.kind, outcome: 'success' }, seconds(started));
            return proc;
          },
          (err: unknown) => {
            processStart.observe({ kind: request.kind, outcome: 'error' }, seconds(started));
            backendFailed('startProcess', err);
            throw err;
          },
        );
      },
    });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    setAuditSource(source) {
      audit = source;
    },
    setPoolSource(source) {
      pool = source;
    },
    configServerRequest(ok) {
      configRequests.inc();
      if (!ok) configFailures.inc();
    },
    authAttempt(method, outcome, durationMs) {
      authRequests.inc();
      if (outcome === 'accept') authSuccess.inc();
      else if (outcome === 'reject') authFailures.inc();
      else authServerFailures.inc();
      authDuration.observe({ method, outcome }, Math.max(0, durationMs) / 1000);
    },
    authRateLimited(scope) {
      authRateLimited.inc({ scope });
    },
    authBlocked(scope) {
      authBlocks.inc({ scope });
    },
    connectionAccepted(client) {
      connections.inc();
      current++;
      const socket = socketOf(client);
      if (socket) live.add(socket);
      let handshaken = false;
      let loggedInAt: number | undefined;
      let done = false;
      return {
        handshake() {
          if (handshaken) return;
          handshaken = true;
          handshakesOk.inc();
        },
        authenticated() {
          loggedInAt ??= now();
        },
        workload(opening) {
          const started = now();
          backendRequests.inc();
          return opening.then(
            (conn) => {
              containerStart.observe({ outcome: 'success' }, seconds(started));
              return instrument(conn);
            },
            (err: unknown) => {
              containerStart.observe({ outcome: 'error' }, seconds(started));
              backendFailed('openConnection', err);
              throw err;
            },
          );
        },
        closed() {
          if (done) return;
          done = true;
          current--;
          if (!handshaken) handshakesFailed.inc();
          if (socket) {
            live.delete(socket);
            closedBytes.received += socket.bytesRead;
            closedBytes.sent += socket.bytesWritten;
          }
          if (loggedInAt !== undefined) {
            sessionDuration.observe(seconds(loggedInAt));
            if (socket) {
              sessionBytes.observe({ direction: 'received' }, socket.bytesRead);
              sessionBytes.observe({ direction: 'sent' }, socket.bytesWritten);
            }
          }
        },
      };
    },
  };
}
