import { randomInt } from 'node:crypto';
import { Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { InboundTcpConnection, TcpListener } from '../backend.js';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { mapEngineError } from './engine-errors.js';
import { callSignal, execExitCode, runShortExec, startExecHijacked } from './engine-ops.js';
import type { DockerTimeouts } from './options.js';
import { ACCEPT_SCRIPT, CONNECT_SCRIPT, connectCmdline, DOWN_SCRIPT, KILL_CONNECT_SCRIPT, LISTEN_SCRIPT, REFUSE_SCRIPT, RELAY_DIR_NAME, RELAY_LINE, UP_SCRIPT } from './relay-scripts.js';
import { DockerStreamDemuxer } from './stream-demux.js';
import { within } from './timing.js';

/**
 * The network helper ("relay") sidecar: a tiny busybox container started on demand for a
 * connection that forwards ports, sharing the workload container's network namespace
 * (`NetworkMode: container:<id>`). User images are CI build images with no agent and maybe no
 * nc, so the gateway never runs anything of its own in the workload; and the Engine has no
 * port-forwarding API, so every forwarded connection is a `docker exec` in the sidecar whose
 * stdio is the TCP stream (scripts in relay-scripts.ts):
 * - `ssh -L`: one exec of `nc HOST PORT` per channel; the dial happens inside the workload's
 *   network namespace, with its /etc/hosts and DNS (Docker shares both with a container that
 *   joins another's network).
 * - `ssh -R`: one long exec per forward runs `nc -ll` on the port; each accepted connection is
 *   announced on its stderr and relayed through two FIFOs by two execs (up, down), so each
 *   direction has its own end-of-stream.
 * The sidecar is hardened (non-root, no capabilities, read-only root, no new privileges, small
 * limits, no log driver), carries the connection's airlock.* labels (role `relay`) and is removed
 * with the connection's other containers on every path; the reaper treats it like them.
 */

/** Resource limits of the sidecar: it only ever runs nc, cat and a little sh. */
export const RELAY_LIMITS = {
  memory: 64 * 1024 * 1024,
  nanoCpus: 1_000_000_000,
  /** Each forwarded connection costs 2-4 processes. */
  pidsLimit: 256,
} as const;

/** The sidecar's uid:gid (`nobody`): the image has no other user and needs none. */
export const RELAY_USER = '65534:65534';

/** Ports tried for `ssh -R 0:…` (the Linux default ephemeral range). */
const DYNAMIC_PORTS = { from: 32768, to: 60999, attempts: 8 } as const;

/** Keeps a few stderr lines of a helper for the error message / log (never user data). */
const MAX_DIAGNOSTICS = 5;

export function relayCreateBody(input: { image: string; labels: Record<string, string>; workloadContainerId: string }): Record<string, unknown> {
  return {
    Image: input.image,
    User: RELAY_USER,
    Entrypoint: ['sleep', '2147483647'],
    Cmd: [],
    Env: [],
    WorkingDir: '/tmp',
    Labels: input.labels,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      // The whole point: the workload's network stack (and its /etc/hosts and resolv.conf).
      NetworkMode: `container:${input.workloadContainerId}`,
      // docker-init reaps the processes nc forks per accepted connection.
      Init: true,
      LogConfig: { Type: 'none', Config: {} },
      ReadonlyRootfs: true,
      // The FIFOs of reverse-forwarded connections.
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,noexec,size=1m,mode=1777' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Memory: RELAY_LIMITS.memory,
      NanoCpus: RELAY_LIMITS.nanoCpus,
      PidsLimit: RELAY_LIMITS.pidsLimit,
      AutoRemove: false,
    },
  };
}

export interface RelayDeps {
  readonly container: Docker.Container;
  readonly timeouts: DockerTimeouts;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
}

interface HelperExec {
  readonly exec: Docker.Exec;
  readonly stream: Duplex;
  readonly demux: DockerStreamDemuxer;
}

/** Calls `onLine` for every line of a (small, line-oriented) helper output. */
function readLines(stream: Readable, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      onLine(pending.slice(0, i));
      pending = pending.slice(i + 1);
    }
    if (pending.length > 4096) {
      onLine(pending);
      pending = '';
    }
  });
  stream.once('end', () => {
    if (pending !== '') onLine(pending);
  });
}

/** nc's own wording, without the "nc: " prefix and the resolved address it repeats. */
function ncReason(lines: readonly string[]): string | undefined {
  const line = lines.find((l) => l.startsWith('nc: '));
  return line?.replace(/^nc: /, '').replace(/^can't connect to remote host \([^)]*\): /, '');
}

/** A host name or address nc can be given as an argument (never an option). */
const HOST = /^[A-Za-z0-9_.:%[\]-]{1,255}$/;

export function checkTarget(host: string, port: number): void {
  if (!HOST.test(host) || host.startsWith('-')) {
    throw new AirlockError('FORWARD_TARGET_FAILED', 'invalid forwarding host', { userMessage: 'the forwarding target is not a valid host name or address', details: { port } });
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AirlockError('FORWARD_TARGET_FAILED', `invalid forwarding port ${port}`, { userMessage: `the forwarding port ${port} is not valid` });
  }
}

export class RelaySidecar {
  readonly container: Docker.Container;
  readonly #timeouts: DockerTimeouts;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #signal: AbortSignal;

  constructor(deps: RelayDeps) {
    this.container = deps.container;
    this.#timeouts = deps.timeouts;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#signal = deps.signal;
  }

  async #exec(argv: readonly string[], stdin: boolean, signal: AbortSignal | undefined, what: string): Promise<HelperExec> {
    const callAbort = callSignal(this.#timeouts.commandStart, signal, this.#signal);
    let stream: Duplex | undefined;
    try {
      const exec = await this.container.exec({ Cmd: [...argv], AttachStdin: stdin, AttachStdout: true, AttachStderr: true, Tty: false, abortSignal: callAbort });
      stream = await startExecHijacked(exec, { hijack: true, stdin, Detach: false, Tty: false, abortSignal: callAbort });
      return { exec, stream, demux: new DockerStreamDemuxer(stream, { multiplexed: true }) };
    } catch (err) {
      stream?.destroy();
      throw mapEngineError(err, 'FORWARDING_FAILED', `${what} in the network helper`, { containerId: this.container.id });
    }
  }

  async #exitCode(exec: Docker.Exec): Promise<number | undefined> {
    try {
      return await execExitCode(exec, this.#clock.now() + this.#timeouts.http, this.#timeouts, this.#clock);
    } catch {
      return undefined;
    }
  }

  /** `ssh -L`: see BackendConnection.openTcp. */
  async connect(host: string, port: number, signal?: AbortSignal): Promise<Duplex> {
    checkTarget(host, port);
    const timeoutS = Math.max(1, Math.ceil(this.#timeouts.commandStart / 1000));
    const run = await this.#exec(['sh', '-c', CONNECT_SCRIPT, 'airlock-connect', host, String(port), String(timeoutS)], true, signal, 'connecting');
    const diagnostics: string[] = [];
    let ncPid: number | undefined;
    const connected = new Promise<boolean>((resolve) => {
      readLines(run.demux.stderr, (line) => {
        if (line.startsWith(`${RELAY_LINE.connected} `)) {
          ncPid = Number(line.slice(RELAY_LINE.connected.length + 1));
          resolve(true);
        } else if (diagnostics.length < MAX_DIAGNOSTICS) diagnostics.push(line.slice(0, 200));
      });
      // Output proves the connection too, and must count: a server that speaks first fills the
      // demuxer's stdout buffer, which pauses the Engine stream — the marker behind it would
      // never be read. (A 'readable' listener does not consume; once removed, the stream is
      // back in its initial mode for the Duplex below.)
      run.demux.stdout.once('readable', () => {
        if (run.demux.stdout.readableLength > 0) resolve(true);
      });
      void run.demux.finished.then(() => resolve(false));
    });
    const onAbort = () => run.stream.destroy();
    const aborts = [signal, this.#signal].filter((s): s is AbortSignal => s !== undefined);
    for (const s of aborts) s.addEventListener('abort', onAbort, { once: true });
    let ok: boolean;
    try {
      ok = await connected;
      if (aborts.some((s) => s.aborted)) throw new AirlockError('FORWARDING_FAILED', 'the connection is closing');
      // nc exits 0 only after a connection that the peer has already closed (a quick server).
      if (!ok && (await this.#exitCode(run.exec)) !== 0) {
        const reason = ncReason(diagnostics);
        if (reason === undefined) throw new AirlockError('FORWARDING_FAILED', `the network helper's connect ended without a result: ${diagnostics.join(' | ')}`);
        throw new AirlockError('FORWARD_TARGET_FAILED', `connect to ${host}:${port} inside the workload failed: ${reason}`, {
          userMessage: `could not connect to ${host}:${port} inside the workload: ${reason}`,
          details: { port },
        });
      }
    } catch (err) {
      run.stream.destroy();
      throw err;
    } finally {
      for (const s of aborts) s.removeEventListener('abort', onAbort);
    }
    const duplex = Duplex.from({ readable: run.demux.stdout, writable: run.stream });
    // nc exits when the peer closes; once its output has been read nothing can flow either way.
    let ended = false;
    duplex.once('end', () => {
      ended = true;
      duplex.destroy();
    });
    duplex.once('close', () => {
      run.stream.destroy();
      // Closed from our side while nc still ran: closing its stdin only half-closes the
      // socket, so make sure nc goes.
      if (!ended && ncPid !== undefined && Number.isInteger(ncPid) && ncPid > 0 && !this.#signal.aborted) {
        this.#shortExec(['sh', '-c', KILL_CONNECT_SCRIPT, 'airlock-kill', String(ncPid), connectCmdline(host, port, timeoutS)], 'ending a forwarded connection');
      }
    });
    return duplex;
  }

  /** A best-effort helper exec; failures are only logged (the sidecar goes with the connection). */
  #shortExec(argv: readonly string[], what: string): void {
    runShortExec(this.container, argv, { user: '', timeoutMs: this.#timeouts.signal, signal: this.#signal, timeouts: this.#timeouts, clock: this.#clock }).catch((err: unknown) => {
      if (!this.#signal.aborted) this.#logger.debug({ err, what }, 'network helper call failed');
    });
  }

  /** `ssh -R`: see BackendConnection.listenTcp. Port 0 picks a free port. */
  async listen(port: number, onConnection: (c: InboundTcpConnection) => void, signal?: AbortSignal): Promise<TcpListener> {
    if (port !== 0) return this.#listenOn(port, onConnection, signal);
    for (let attempt = 1; ; attempt++) {
      const candidate = randomInt(DYNAMIC_PORTS.from, DYNAMIC_PORTS.to + 1);
      try {
        return await this.#listenOn(candidate, onConnection, signal);
      } catch (err) {
        if (!(err instanceof AirlockError && err.details['inUse'] === true) || attempt >= DYNAMIC_PORTS.attempts) throw err;
      }
    }
  }

  async #listenOn(port: number, onConnection: (c: InboundTcpConnection) => void, signal: AbortSignal | undefined): Promise<TcpListener> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new AirlockError('FORWARD_TARGET_FAILED', `invalid listen port ${port}`, { userMessage: `the port ${port} is not valid` });
    }
    const run = await this.#exec(['sh', '-c', LISTEN_SCRIPT, 'airlock-listen', String(port), ACCEPT_SCRIPT], true, signal, 'listening');
    run.demux.stdout.resume();
    const diagnostics: string[] = [];
    let state: 'starting' | 'listening' | 'closed' = 'starting';
    // nc may accept a connection before the script has seen its socket listening.
    const early: InboundTcpConnection[] = [];
    const ready = new Promise<boolean>((resolve) => {
      readLines(run.demux.stderr, (line) => {
        if (line === RELAY_LINE.listening) {
          state = 'listening';
          resolve(true);
        } else if (line.startsWith(`${RELAY_LINE.accept} `)) {
          const inbound = this.#inbound(line);
          if (!inbound) this.#logger.warn({ port }, 'network helper announced a connection it cannot relay');
          else if (state === 'listening') onConnection(inbound);
          else if (state === 'starting') early.push(inbound);
          else inbound.refuse();
        } else if (diagnostics.length < MAX_DIAGNOSTICS) {
          diagnostics.push(line.slice(0, 200));
        }
      });
      void run.demux.finished.then(() => resolve(false));
    });
    if (!(await ready)) {
      run.stream.destroy();
      for (const inbound of early.splice(0)) inbound.refuse();
      const reason = ncReason(diagnostics);
      const inUse = reason !== undefined && /in use/i.test(reason);
      if (reason === undefined) throw new AirlockError('FORWARDING_FAILED', `the network helper could not listen on port ${port}: ${diagnostics.join(' | ') || 'no reason given'}`);
      throw new AirlockError('FORWARD_TARGET_FAILED', `listening on port ${port} inside the workload failed: ${reason}`, {
        userMessage: `could not listen on port ${port} inside the workload: ${reason}`,
        details: { port, inUse },
      });
    }
    for (const inbound of early.splice(0)) onConnection(inbound);
    const closed = run.demux.finished.then(() => {
      state = 'closed';
    });
    return {
      port,
      closed,
      close: async () => {
        if (state === 'closed') return;
        state = 'closed';
        // EOF on the listener's stdin kills its nc (see LISTEN_SCRIPT).
        run.stream.end();
        await within(closed, this.#timeouts.signal);
        run.stream.destroy();
      },
    };
  }

  /** Parses `airlock-relay-accept <dir> <address> <port>` into a connection to relay. */
  #inbound(line: string): InboundTcpConnection | undefined {
    const [, name, address, portText] = line.split(' ');
    const originPort = Number(portText);
    if (name === undefined || !RELAY_DIR_NAME.test(name) || address === undefined || !/^[0-9a-fA-F.:]+$/.test(address) || !Number.isInteger(originPort)) return undefined;
    const dir = `/tmp/${name}`;
    let used = false;
    return {
      originAddress: address,
      originPort,
      open: async (signal) => {
        used = true;
        return this.#relayAccepted(dir, signal);
      },
      refuse: () => {
        if (used) return;
        used = true;
        this.#shortExec(['sh', '-c', REFUSE_SCRIPT, 'airlock-refuse', dir], 'closing a refused forwarded connection');
      },
    };
  }

  /** The two execs of one accepted connection: `up` (socket → us) and `down` (us → socket). */
  async #relayAccepted(dir: string, signal: AbortSignal | undefined): Promise<Duplex> {
    const [up, down] = await Promise.allSettled([
      this.#exec(['sh', '-c', UP_SCRIPT, 'airlock-up', dir], false, signal, 'relaying'),
      this.#exec(['sh', '-c', DOWN_SCRIPT, 'airlock-down', dir], true, signal, 'relaying'),
    ]);
    if (up.status === 'rejected' || down.status === 'rejected') {
      if (up.status === 'fulfilled') up.value.stream.destroy();
      // Destroying `down` closes the FIFO, which closes the accepted socket.
      if (down.status === 'fulfilled') down.value.stream.destroy();
      throw up.status === 'rejected' ? up.reason : (down as PromiseRejectedResult).reason;
    }
    const upRun = up.value;
    const downRun = down.value;
    upRun.demux.stderr.resume();
    downRun.demux.stdout.resume();
    downRun.demux.stderr.resume();
    const duplex = Duplex.from({ readable: upRun.demux.stdout, writable: downRun.stream });
    // Over when the client's bytes are all read and the down side has ended too.
    let readableEnded = false;
    let downEnded = false;
    const maybeDone = () => {
      if (readableEnded && downEnded) duplex.destroy();
    };
    duplex.once('end', () => {
      readableEnded = true;
      maybeDone();
    });
    void downRun.demux.finished.then(() => {
      downEnded = true;
      maybeDone();
    });
    duplex.once('close', () => {
      upRun.stream.destroy();
      downRun.stream.destroy();
    });
    return duplex;
  }
}
