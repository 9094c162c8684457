import { setMaxListeners } from 'node:events';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { BackendConnection, ConnectionInfo, FilesRequest, InboundTcpConnection, Process, ProcessRequest, TcpListener, WorkloadFiles } from '../backend.js';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { envList, planCommand } from './command.js';
import { ContainerDriver } from './container-driver.js';
import { normalizeFiles, partitionFiles, pathExists, writeFilesByArchive, writeFilesByExec, type ContainerFile, type DirectoryCache } from './container-fs.js';
import { buildCreateBody, buildHostConfig, tmpfsMountPoints } from './container-spec.js';
import { DockerProcess } from './docker-process.js';
import { engineMessage, mapEngineError, statusCodeOf } from './engine-errors.js';
import { launchRequest, type Launcher } from './launcher.js';
import { attachHijacked, callSignal, createContainer, removeContainer, startExecHijacked, startFailure } from './engine-ops.js';
import { ExecDriver } from './exec-driver.js';
import { ensureImage } from './image.js';
import type { ImageUsers, ResolvedUser } from './image-user.js';
import { buildLabels, containerName, LABEL, metadataLabels, type ContainerRole } from './labels.js';
import { RELAY_IMAGE, type DockerBackendOptions } from './options.js';
import { newMarkerNonce } from './pid-marker.js';
import type { ContainerPool, PooledContainer } from './pool.js';
import { relayCreateBody, RelaySidecar } from './relay.js';
import { withProbeContainer } from './probe-container.js';
import { DockerWorkloadFiles } from './workload-files.js';

/** What every connection of one backend shares. */
export interface BackendContext {
  readonly docker: Docker;
  readonly options: DockerBackendOptions;
  readonly clock: Clock;
  readonly hostname: string;
  readonly pid: number;
  readonly users: ImageUsers;
  readonly dirs: DirectoryCache;
  readonly logger: Logger;
  /** The warm pool (connection mode with `pool.size` > 0). */
  readonly pool?: ContainerPool;
}

const noop = (): void => undefined;

/**
 * One SSH connection's share of the engine.
 *
 * `connection` mode: one container per connection, started at open with `idleCommand` as its
 * main process; each startProcess is a `docker exec` in it.
 * `session` mode: open only checks the image; each startProcess creates, attaches to and starts
 * a container whose main process is the user's program, removed when the program ends.
 *
 * Ownership: every container id is recorded the moment `create` returns, and `close` removes
 * all of them after the in-flight startProcess calls have settled, then sweeps the engine for
 * anything labelled with this connection that slipped through. close() is idempotent.
 */
export class DockerConnection implements BackendConnection {
  readonly #ctx: BackendContext;
  readonly #info: ConnectionInfo;
  readonly #image: Docker.ImageInspectInfo;
  #user: ResolvedUser;
  readonly #files: readonly ContainerFile[];
  readonly #logger: Logger;
  readonly #containers = new Map<string, Docker.Container>();
  readonly #processes = new Set<DockerProcess>();
  /** startProcess calls in flight. */
  readonly #starting = new Set<Promise<unknown>>();
  /** Session containers being removed after their program ended. */
  readonly #finishing = new Set<Promise<unknown>>();
  readonly #abort = new AbortController();
  #main: Docker.Container | undefined;
  #closing: Promise<void> | undefined;
  /** Set when the main container came from the warm pool. */
  #pooled: PooledContainer | undefined;
  /** Pending work that makes a claimed pool container usable (see #finishClaim). */
  #claim: Promise<void> | undefined;
  /**
   * The connection's env for every exec: a pool container was created before anyone logged
   * in, so its env holds only the configured part. Undefined for fresh containers (theirs is
   * in the container's env already).
   */
  #execEnv: Record<string, string> | undefined;
  /** The port-forwarding network helper, started on first use (connection mode). */
  #relay: Promise<RelaySidecar> | undefined;

  private constructor(ctx: BackendContext, info: ConnectionInfo, image: Docker.ImageInspectInfo, user: ResolvedUser, files: readonly ContainerFile[], logger: Logger) {
    // Every long-poll `wait` of a session container listens on it: many channels are normal.
    setMaxListeners(1000, this.#abort.signal);
    this.#ctx = ctx;
    this.#info = info;
    this.#image = image;
    this.#user = user;
    this.#files = files;
    this.#logger = logger;
  }

  static async open(ctx: BackendContext, info: ConnectionInfo, signal?: AbortSignal): Promise<DockerConnection> {
    const { options } = ctx;
    const logger = ctx.logger.child({ connectionId: info.connectionId });
    if (options.mode === 'connection' && ctx.pool) {
      const claimed = ctx.pool.claim(info.image ?? options.container.image, info.connectionId);
      if (claimed) return DockerConnection.#openPooled(ctx, info, claimed, logger);
    }
    // A CI-debug session brings its own image (ConnectionInfo.image); otherwise the configured one.
    const image = await ensureImage(ctx.docker, info.image ?? options.container.image, options.imagePullPolicy, {
      timeouts: options.timeouts,
      logger,
      ...(signal ? { signal } : {}),
    });
    const files = normalizeFiles(info.files);
    const user = await ctx.users.resolve(image, options.container.user, files.length > 0, {
      labels: labels(ctx, info, 'probe'),
      name: containerName(info.connectionId),
      logger,
      ...(signal ? { signal } : {}),
    });
    logger.debug({ image: image.Id, user: user.spec || '(image default)', userSource: user.source }, 'container user resolved');
    const connection = new DockerConnection(ctx, info, image, user, files, logger);
    if (options.mode === 'connection') {
      try {
        await connection.#startMain(signal);
      } catch (err) {
        await connection.close('open failed');
        throw err;
      }
    }
    return connection;
  }

  /**
   * Takes over a pool container without waiting: its network, files and a check that it still
   * runs are applied by `#claim` in the background while the first program's exec is already
   * being created (gated, see #startExec), so the two round trips to the Engine overlap.
   */
  static #openPooled(ctx: BackendContext, info: ConnectionInfo, claimed: PooledContainer, logger: Logger): DockerConnection {
    const connection = new DockerConnection(ctx, info, claimed.image, claimed.user, normalizeFiles(info.files), logger);
    connection.#containers.set(claimed.container.id, claimed.container);
    connection.#pooled = claimed;
    connection.#main = claimed.container;
    connection.#execEnv = connection.#connectionEnv();
    const claim = connection.#finishClaim(claimed).finally(() => {
      if (connection.#claim === claim) connection.#claim = undefined;
    });
    claim.catch(noop);
    connection.#claim = claim;
    return connection;
  }

  /**
   * Makes a claimed pool container the connection's: checks it still runs, connects its
   * network, writes the files. If that fails for a reason that is not the user's (the container
   * died, the network call failed), the container is removed and a fresh one started instead;
   * rejects only when the connection cannot get a container at all.
   */
  async #finishClaim(claimed: PooledContainer): Promise<void> {
    const { docker, options, clock } = this.#ctx;
    const started = clock.now();
    const { container } = claimed;
    try {
      const callAbort = callSignal(options.timeouts.containerStart, this.#abort.signal);
      const attach = claimed.attachNetwork
        ? docker.getNetwork(claimed.attachNetwork).connect({ Container: container.id, abortSignal: callAbort } as Docker.NetworkConnectOptions)
        : Promise.resolve();
      const [state] = await Promise.all([container.inspect({ abortSignal: callAbort }), attach]);
      if (!state.State.Running) throw new Error('the pool container is not running any more');
      if (this.#files.length > 0) {
        if (!this.#user.ids) {
          this.#user = await this.#ctx.users.resolve(claimed.image, options.container.user, true, {
            labels: labels(this.#ctx, this.#info, 'probe'),
            name: containerName(this.#info.connectionId),
            logger: this.#logger,
            signal: this.#abort.signal,
          });
        }
        const { beforeStart, afterStart } = partitionFiles(this.#files, tmpfsMountPoints(buildHostConfig(options.hostConfig)));
        // The archive API writes into a running container just as into a created one.
        if (beforeStart.length > 0) await this.#writeByArchive(container, beforeStart, undefined);
        if (afterStart.length > 0) await this.#writeByExec(container, afterStart, undefined);
      }
    } catch (err) {
      if (this.#closing) throw this.#closedError();
      // The user's files are the user's problem: a fresh container would fail the same way.
      if (err instanceof AirlockError && err.code === 'CONTAINER_FILES_FAILED') throw err;
      this.#logger.warn({ err, containerId: container.id }, 'pool container could not be used; starting a fresh one');
      this.#main = undefined;
      this.#execEnv = undefined;
      await this.#remove(container);
      await this.#startMain(undefined);
      return;
    }
    // Only for people reading `docker ps`; the gateway tracks the claim itself.
    container.rename({ name: containerName(this.#info.connectionId), abortSignal: AbortSignal.timeout(options.timeouts.http) }).catch((err: unknown) => {
      this.#logger.debug({ err, containerId: container.id }, 'could not rename the pool container');
    });
    this.#logger.info({ containerId: container.id, ms: clock.now() - started, pooled: true, user: this.#user.spec || '(image default)' }, 'container started');
  }

  startProcess(request: ProcessRequest, signal?: AbortSignal): Promise<Process> {
    if (this.#closing) return Promise.reject(this.#closedError());
    return this.#track(this.#ctx.options.mode === 'connection' ? this.#startExec(request, signal) : this.#startSession(request, signal));
  }

  /**
   * Whether the subsystem's configured binary exists in the image — asked once per image id
   * and path (cached with the directory probes): a HEAD on the archive API of the connection's
   * container, or in session mode of a never-started probe container. A binary installed later
   * inside a running container is not noticed.
   */
  async hasSubsystem(name: string, signal?: AbortSignal): Promise<boolean> {
    const { subsystems } = this.#ctx.options;
    const binary = Object.hasOwn(subsystems, name) ? subsystems[name] : undefined;
    if (!binary) return false;
    const imageId = this.#image.Id;
    const known = this.#ctx.dirs.get(imageId, binary);
    if (known !== undefined) return known;
    const { docker, options } = this.#ctx;
    const callAbort = callSignal(options.timeouts.http, signal, this.#abort.signal);
    let exists: boolean;
    try {
      const main = this.#main;
      exists = main
        ? await pathExists(docker, main, binary, callAbort)
        : await withProbeContainer({ docker, timeouts: options.timeouts, clock: this.#ctx.clock, logger: this.#logger }, imageId, { labels: labels(this.#ctx, this.#info, 'probe'), name: containerName(this.#info.connectionId), signal: callAbort }, (probe, probeSignal) =>
            pathExists(docker, probe, binary, probeSignal),
          );
    } catch (err) {
      throw mapEngineError(err, 'EXEC_FAILED', 'looking for the subsystem program', { subsystem: name });
    }
    this.#ctx.dirs.set(imageId, binary, exists);
    return exists;
  }

  /**
   * File access for the gateway-side SFTP server, as the session's user: execs in the
   * connection's container, or (session mode) in a container of the channel's own, started
   * with the idle command and removed when the files are closed.
   */
  openFiles(request: FilesRequest, signal?: AbortSignal): Promise<WorkloadFiles> {
    if (this.#closing) return Promise.reject(this.#closedError());
    return this.#track(this.#openFiles(request, signal));
  }

  async #openFiles(request: FilesRequest, signal: AbortSignal | undefined): Promise<WorkloadFiles> {
    const { options, clock } = this.#ctx;
    const deps = {
      user: this.#user.spec,
      home: options.container.workingDir || this.#image.Config?.WorkingDir || '/',
      timeouts: options.timeouts,
      clock,
      logger: this.#logger.child({ channelId: request.channelId }),
      signal: this.#abort.signal,
    };
    if (options.mode === 'connection') {
      // A pool container is usable once its claim is done (network, files) or it was replaced.
      await this.#claim;
      const main = this.#main;
      if (!main || this.#closing) throw this.#closedError();
      return new DockerWorkloadFiles({ ...deps, container: main });
    }
    const container = await this.#startIdle('session', request.channelId, signal);
    if (this.#closing) {
      await this.#remove(container);
      throw this.#closedError();
    }
    this.#logger.debug({ containerId: container.id, channelId: request.channelId }, 'file access container started');
    return new DockerWorkloadFiles({ ...deps, container, release: () => this.#remove(container) });
  }

  #track<T>(op: Promise<T>): Promise<T> {
    const tracked = op.then(noop, noop);
    this.#starting.add(tracked);
    void tracked.then(() => this.#starting.delete(tracked));
    return op;
  }

  close(reason: string): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  // ---- port forwarding ----------------------------------------------------------------

  async openTcp(host: string, port: number, signal?: AbortSignal): Promise<Duplex> {
    const relay = await this.#relayFor();
    return relay.connect(host, port, signal);
  }

  async listenTcp(bindAddress: string, port: number, onConnection: (c: InboundTcpConnection) => void, signal?: AbortSignal): Promise<TcpListener> {
    const relay = await this.#relayFor();
    // Like sshd's default GatewayPorts=no: only loopback connections are relayed, whatever the
    // client asked for (see ACCEPT_SCRIPT).
    if (!isLoopbackName(bindAddress)) this.#logger.info({ bindAddress, port }, 'reverse forward narrowed to loopback connections');
    return relay.listen(port, onConnection, signal);
  }

  /**
   * The sidecar sharing the connection container's network namespace, started once (a failed
   * start is retried by the next request). Session mode has no container of the connection to
   * share: each channel has its own, and none exists before a session starts — forwarding is
   * refused there rather than guessing which container's network is meant.
   */
  #relayFor(): Promise<RelaySidecar> {
    if (this.#ctx.options.mode !== 'connection') {
      return Promise.reject(
        new AirlockError('FORWARDING_UNAVAILABLE', 'port forwarding needs docker.execution.mode connection', {
          userMessage: 'port forwarding needs a container per connection (docker.execution.mode: connection)',
        }),
      );
    }
    if (this.#closing) return Promise.reject(this.#closedError());
    if (!this.#relay) {
      // Not tied to the request's signal: the sidecar belongs to the connection.
      const starting = this.#startRelay();
      this.#relay = starting;
      const tracked = starting.then(noop, () => {
        if (this.#relay === starting) this.#relay = undefined;
      });
      this.#starting.add(tracked);
      void tracked.then(() => this.#starting.delete(tracked));
    }
    return this.#relay;
  }

  async #startRelay(): Promise<RelaySidecar> {
    const { docker, options, clock } = this.#ctx;
    await this.#claim?.catch(noop);
    const main = this.#main;
    if (!main || this.#closing) throw this.#closedError();
    const image = options.relayImage ?? RELAY_IMAGE;
    const started = clock.now();
    try {
      // A local-only image (scripts/build-relay-image.sh): pulling it on every use is pointless.
      await ensureImage(docker, image, options.imagePullPolicy === 'Never' ? 'Never' : 'IfNotPresent', {
        timeouts: options.timeouts,
        logger: this.#logger,
        signal: this.#abort.signal,
      });
    } catch (err) {
      throw new AirlockError('FORWARDING_FAILED', `the network helper image ${image} is not available (build it with scripts/build-relay-image.sh)`, {
        cause: err,
        details: { image },
      });
    }
    const body = relayCreateBody({ image, labels: labels(this.#ctx, this.#info, 'relay'), workloadContainerId: main.id });
    const container = await this.#create(body, undefined).catch((err: unknown) => {
      throw new AirlockError('FORWARDING_FAILED', `creating the network helper: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { image } });
    });
    try {
      await container.start({ abortSignal: callSignal(options.timeouts.containerStart, this.#abort.signal) });
    } catch (err) {
      await this.#remove(container);
      const e = startFailure(err, 'starting the network helper', { containerId: container.id, image });
      throw new AirlockError('FORWARDING_FAILED', e.message, { cause: err, details: e.details });
    }
    this.#logger.info({ containerId: container.id, workloadContainerId: main.id, ms: clock.now() - started }, 'network helper started');
    return new RelaySidecar({ container, timeouts: options.timeouts, clock, logger: this.#logger.child({ relay: container.id.slice(0, 12) }), signal: this.#abort.signal });
  }

  // ---- connection mode ----------------------------------------------------------------

  async #startMain(signal: AbortSignal | undefined): Promise<void> {
    const started = this.#ctx.clock.now();
    this.#main = await this.#startIdle('connection', undefined, signal);
    this.#logger.info({ containerId: this.#main.id, ms: this.#ctx.clock.now() - started, user: this.#user.spec || '(image default)' }, 'container started');
  }

  /**
   * Creates and starts a container running `idleCommand` with the connection's files: the
   * connection's container, or in session mode a channel's file-access container. On failure
   * the container is removed (a connection container by the failed open's close()).
   */
  async #startIdle(role: 'connection' | 'session', channelId: number | undefined, signal: AbortSignal | undefined): Promise<Docker.Container> {
    const { options } = this.#ctx;
    const hostConfig = buildHostConfig(options.hostConfig);
    const { beforeStart, afterStart } = partitionFiles(this.#files, tmpfsMountPoints(hostConfig));
    const body = buildCreateBody({
      container: options.container,
      hostConfig,
      image: this.#info.image ?? options.container.image,
      user: this.#user.spec,
      labels: labels(this.#ctx, this.#info, role, channelId),
      env: envList(options.container.env, this.#connectionEnv()),
      entrypoint: options.idleCommand,
      tty: false,
      openStdin: false,
    });
    const container = await this.#create(body, signal);
    try {
      if (beforeStart.length > 0) await this.#writeByArchive(container, beforeStart, signal);
      const startSignal = callSignal(options.timeouts.containerStart, signal, this.#abort.signal);
      try {
        await container.start({ abortSignal: startSignal });
        // With docker-init as PID 1 a bad idle command still "starts" and exits a moment later;
        // catch it here when it already has (otherwise the first exec reports it).
        const state = await container.inspect({ abortSignal: startSignal });
        if (!state.State.Running) {
          throw new Error(`the container exited at once (exit code ${state.State.ExitCode}${state.State.Error ? `: ${state.State.Error}` : ''})`);
        }
      } catch (err) {
        throw startFailure(err, `starting the ${role} container`, { containerId: container.id, image: this.#info.image ?? options.container.image });
      }
      if (afterStart.length > 0) await this.#writeByExec(container, afterStart, signal);
    } catch (err) {
      if (role === 'session') await this.#remove(container);
      throw err;
    }
    return container;
  }

  async #startExec(request: ProcessRequest, signal: AbortSignal | undefined): Promise<Process> {
    const claim = this.#claim;
    const main = this.#main;
    if (!main) throw this.#closedError();
    if (!claim) return this.#execIn(main, request, signal, undefined);
    try {
      return await this.#execIn(main, request, signal, claim);
    } catch (err) {
      // Raced a claim that failed: its own error if nothing could replace the container,
      // else start over in the fresh container that did.
      await claim;
      const replaced = this.#main;
      if (replaced && replaced !== main) return this.#execIn(replaced, request, signal, undefined);
      throw err;
    }
  }

  /**
   * One `docker exec` in `main`. With `claim` pending (a pool container still being made the
   * connection's), the wrapper waits for a gate line before it runs the program; the line is
   * sent once the claim is done, so the exec's own start-up overlaps with the claim.
   */
  async #execIn(main: Docker.Container, request: ProcessRequest, signal: AbortSignal | undefined, claim: Promise<void> | undefined): Promise<Process> {
    const launched = await this.#launchIn(main, request, claim);
    if (launched) return launched;
    const { options, clock } = this.#ctx;
    const pty = request.pty;
    const nonce = newMarkerNonce();
    const argv = planCommand({ request, shellCommand: options.shellCommand, subsystems: options.subsystems, markerNonce: nonce, gate: claim !== undefined });
    const consoleSize: [number, number] | undefined = pty ? [pty.rows, pty.cols] : undefined;
    const callAbort = callSignal(options.timeouts.commandStart, signal, this.#abort.signal);
    let stream: Duplex | undefined;
    let exec: Docker.Exec;
    try {
      exec = await main.exec({
        Cmd: argv,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: pty !== undefined,
        Env: envList(this.#execEnv, request.env, pty ? { TERM: pty.term } : undefined),
        ...(this.#user.spec ? { User: this.#user.spec } : {}),
        ...(consoleSize ? { ConsoleSize: consoleSize } : {}),
        abortSignal: callAbort,
      });
      stream = await startExecHijacked(exec, {
        hijack: true,
        stdin: true,
        Detach: false,
        Tty: pty !== undefined,
        ...(consoleSize ? { ConsoleSize: consoleSize } : {}),
        abortSignal: callAbort,
      });
      if (this.#closing) throw this.#closedError();
    } catch (err) {
      stream?.destroy();
      if (statusCodeOf(err) === 409 && !this.#closing) {
        // The connection container is not running: its idle command failed (docker-init lets a
        // bad one "start") or died. That is the container's failure, not this program's.
        throw new AirlockError('CONTAINER_START_FAILED', `the connection container is not running: ${engineMessage(err)}`, {
          cause: err,
          details: { containerId: main.id, channelId: request.channelId },
        });
      }
      throw mapEngineError(err, 'EXEC_FAILED', 'starting the program', { kind: request.kind, channelId: request.channelId });
    }
    if (claim) {
      try {
        await claim;
        if (this.#main !== main) throw new Error('the pool container was replaced');
        if (this.#closing) throw this.#closedError();
      } catch (err) {
        stream.destroy();
        throw err;
      }
      stream.write('\n');
    }
    const proc = new DockerProcess({
      stream,
      pty,
      markerNonce: nonce,
      driver: new ExecDriver(main, exec, this.#user.spec, options.timeouts, clock),
      timeouts: options.timeouts,
      logger: this.#logger.child({ channelId: request.channelId }),
    });
    this.#adopt(proc, undefined);
    return proc;
  }

  /**
   * Starts the program through a pool container's pre-started launcher of the right terminal
   * kind (launcher.ts), if one is left: no exec create or start on the way. Undefined when there
   * is none or the request needs a normal exec; the caller then makes one.
   */
  async #launchIn(main: Docker.Container, request: ProcessRequest, claim: Promise<void> | undefined): Promise<Process | undefined> {
    const launchers = this.#pooled?.container === main ? this.#pooled.launchers : undefined;
    const index = launchers?.findIndex((l) => l.tty === (request.pty !== undefined)) ?? -1;
    if (!launchers || index < 0) return undefined;
    const { options, clock } = this.#ctx;
    // Before the launcher is taken: an unknown subsystem throws here.
    const argv = planCommand({ request, shellCommand: options.shellCommand, subsystems: options.subsystems, markerNonce: undefined, gate: false });
    const [launcher] = launchers.splice(index, 1) as [Launcher];
    const pty = request.pty;
    const nonce = newMarkerNonce();
    try {
      if (claim) {
        await claim;
        if (this.#main !== main) throw new Error('the pool container was replaced');
      }
      if (this.#closing) throw this.#closedError();
    } catch (err) {
      launcher.stream.destroy();
      throw err;
    }
    const bytes =
      // The claim may have resolved the user anew (files need its ids): only the same user.
      launcher.user === this.#user.spec
        ? launchRequest({
            argv,
            env: envList(this.#execEnv, request.env, pty ? { TERM: pty.term } : undefined),
            markerNonce: nonce,
            pty,
            terminator: `airlock-end-${newMarkerNonce()}`,
          })
        : undefined;
    if (!bytes || launcher.stream.destroyed || !launcher.stream.writable) {
      launcher.stream.destroy();
      return undefined;
    }
    launcher.stream.write(bytes);
    this.#logger.debug({ channelId: request.channelId, containerId: main.id, tty: launcher.tty }, 'program handed to a pool launcher');
    const proc = new DockerProcess({
      stream: launcher.stream,
      pty,
      markerNonce: nonce,
      driver: new ExecDriver(main, launcher.exec, launcher.user, options.timeouts, clock),
      timeouts: options.timeouts,
      logger: this.#logger.child({ channelId: request.channelId }),
    });
    this.#adopt(proc, undefined);
    return proc;
  }

  // ---- session mode -------------------------------------------------------------------

  async #startSession(request: ProcessRequest, signal: AbortSignal | undefined): Promise<Process> {
    const { options, clock } = this.#ctx;
    const pty = request.pty;
    const consoleSize: [number, number] | undefined = pty ? [pty.rows, pty.cols] : undefined;
    const hostConfig = buildHostConfig(options.hostConfig, consoleSize);
    const { beforeStart, afterStart } = partitionFiles(this.#files, tmpfsMountPoints(hostConfig));
    // Files on tmpfs can only be written once the container runs: the wrapper then waits for
    // one line on stdin (the gate) before it starts the program.
    const gate = afterStart.length > 0;
    const nonce = pty || gate ? newMarkerNonce() : undefined;
    const argv = planCommand({ request, shellCommand: options.shellCommand, subsystems: options.subsystems, markerNonce: nonce, gate });
    const body = buildCreateBody({
      container: options.container,
      hostConfig,
      image: this.#info.image ?? options.container.image,
      user: this.#user.spec,
      labels: labels(this.#ctx, this.#info, 'session', request.channelId),
      env: envList(options.container.env, this.#connectionEnv(), request.env, pty ? { TERM: pty.term } : undefined),
      entrypoint: argv,
      tty: pty !== undefined,
      openStdin: true,
    });
    const started = clock.now();
    const container = await this.#create(body, signal);
    let stream: Duplex | undefined;
    try {
      if (beforeStart.length > 0) await this.#writeByArchive(container, beforeStart, signal);
      if (this.#closing) throw this.#closedError();
      // Attach before start, so not a byte of early output is lost.
      try {
        stream = await attachHijacked(container, callSignal(options.timeouts.commandStart, signal, this.#abort.signal));
      } catch (err) {
        throw mapEngineError(err, 'EXEC_FAILED', 'attaching to the container', { containerId: container.id });
      }
      try {
        await container.start({ abortSignal: callSignal(options.timeouts.containerStart, this.#abort.signal) });
      } catch (err) {
        throw startFailure(err, 'starting the session container', { containerId: container.id, image: this.#info.image ?? options.container.image });
      }
      // 'not-running' right after start: answers at once if the program already exited.
      const wait = container.wait({ condition: 'not-running', abortSignal: this.#abort.signal }) as Promise<{ StatusCode?: unknown }>;
      wait.catch(noop);
      if (afterStart.length > 0) await this.#writeByExec(container, afterStart, signal);
      if (this.#closing) throw this.#closedError();
      if (gate) stream.write('\n');
      const proc = new DockerProcess({
        stream,
        pty,
        markerNonce: nonce,
        driver: new ContainerDriver(container, wait, options.timeouts),
        timeouts: options.timeouts,
        logger: this.#logger.child({ channelId: request.channelId, containerId: container.id }),
      });
      this.#adopt(proc, container);
      this.#logger.debug({ containerId: container.id, ms: clock.now() - started, channelId: request.channelId }, 'session container started');
      return proc;
    } catch (err) {
      stream?.destroy();
      await this.#remove(container);
      throw err;
    }
  }

  // ---- shared -------------------------------------------------------------------------

  #connectionEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.#info.environment)) env[key] = value.value;
    return env;
  }

  async #create(body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Docker.Container> {
    const { docker, options } = this.#ctx;
    if (this.#closing) throw this.#closedError();
    let container: Docker.Container;
    try {
      // Never aborted by close() or the caller: an aborted create may still complete in the
      // engine, unseen. A finished one is recorded below and removed by whoever fails or closes.
      container = await createContainer(docker, containerName(this.#info.connectionId), body, AbortSignal.timeout(options.timeouts.containerStart));
    } catch (err) {
      throw startFailure(err, 'creating the container', { image: this.#info.image ?? options.container.image });
    }
    this.#containers.set(container.id, container);
    signal?.throwIfAborted();
    return container;
  }

  async #remove(container: Docker.Container): Promise<void> {
    if (!this.#containers.delete(container.id)) return;
    try {
      await removeContainer(container, this.#ctx.options.timeouts, this.#ctx.clock);
      this.#logger.debug({ containerId: container.id }, 'container removed');
    } catch (err) {
      this.#logger.error({ err, containerId: container.id }, 'could not remove a container; the reaper will retry');
    } finally {
      // Released either way: a pool key no longer owned is what lets the reaper retry.
      if (this.#pooled?.container.id === container.id) this.#ctx.pool?.release(this.#pooled.key);
    }
  }

  #adopt(proc: DockerProcess, container: Docker.Container | undefined): void {
    this.#processes.add(proc);
    const finish = proc.exited
      .then(noop, noop)
      .then(async () => {
        this.#processes.delete(proc);
        if (container) await this.#remove(container);
      });
    this.#finishing.add(finish);
    void finish.then(() => this.#finishing.delete(finish));
  }

  async #writeByArchive(container: Docker.Container, files: readonly ContainerFile[], signal: AbortSignal | undefined): Promise<void> {
    const ids = this.#user.ids;
    if (!ids) throw new AirlockError('CONTAINER_FILES_FAILED', 'the user ids for file ownership are unknown');
    await writeFilesByArchive(container, files, {
      docker: this.#ctx.docker,
      imageId: this.#image.Id,
      owner: ids,
      dirs: this.#ctx.dirs,
      timeoutMs: this.#ctx.options.timeouts.containerStart,
      signal: callSignal(this.#ctx.options.timeouts.containerStart, signal, this.#abort.signal),
    });
  }

  async #writeByExec(container: Docker.Container, files: readonly ContainerFile[], signal: AbortSignal | undefined): Promise<void> {
    const { options, clock } = this.#ctx;
    await writeFilesByExec(container, files, {
      user: this.#user.spec,
      timeoutMs: options.timeouts.commandStart,
      signal: callSignal(options.timeouts.containerStart, signal, this.#abort.signal),
      timeouts: options.timeouts,
      clock,
    });
  }

  #closedError(): AirlockError {
    return new AirlockError('EXEC_FAILED', 'the connection is closing', { details: { connectionId: this.#info.connectionId } });
  }

  async #close(reason: string): Promise<void> {
    const started = this.#ctx.clock.now();
    this.#abort.abort(this.#closedError());
    // 1. startProcess calls (and a pool claim) in flight finish or fail; failures remove their
    //    own container.
    await Promise.all([...this.#starting, this.#claim?.catch(noop)]);
    // Launchers nobody used (their container goes next).
    for (const launcher of this.#pooled?.launchers.splice(0) ?? []) launcher.stream.destroy();
    // 2. Removing a container kills its programs; report them as KILLed.
    for (const proc of this.#processes) proc.markKilled();
    await Promise.all([...this.#containers.values()].map((c) => this.#remove(c)));
    // 3. The programs' streams end with their containers; make sure nothing lingers.
    await Promise.all([...this.#processes].map((p) => p.kill()));
    await Promise.all([...this.#finishing]);
    // 4. Anything labelled with this connection that we lost track of (e.g. a create whose
    //    answer never arrived).
    await this.#sweep();
    this.#logger.info({ reason, ms: this.#ctx.clock.now() - started }, 'connection containers removed');
  }

  async #sweep(): Promise<void> {
    const { docker, options } = this.#ctx;
    try {
      const leftovers = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.connection}=${this.#info.connectionId}`, `${LABEL.gateway}=${options.gatewayId}`] },
        abortSignal: AbortSignal.timeout(options.timeouts.http),
      });
      for (const info of leftovers) {
        const container = docker.getContainer(info.Id);
        this.#containers.set(info.Id, container);
        await this.#remove(container);
      }
    } catch (err) {
      this.#logger.warn({ err }, 'could not list leftover containers; the reaper will remove any');
    }
  }
}

function isLoopbackName(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\./.test(address);
}

function labels(ctx: BackendContext, info: ConnectionInfo, role: ContainerRole, channelId?: number): Record<string, string> {
  return buildLabels({
    gatewayId: ctx.options.gatewayId,
    hostname: ctx.hostname,
    pid: ctx.pid,
    connectionId: info.connectionId,
    username: info.username,
    now: new Date(ctx.clock.now()),
    role,
    extra: { ...ctx.options.container.labels, ...metadataLabels(info.metadata) },
    ...(info.deadline ? { deadline: info.deadline } : {}),
    ...(channelId !== undefined ? { channelId } : {}),
  });
}
