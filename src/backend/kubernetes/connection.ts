import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { BackendConnection, ConnectionInfo, Process, ProcessRequest } from '../backend.js';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { LABEL } from '../docker/labels.js';
import { newMarkerNonce } from '../docker/pid-marker.js';
import { fileWriteCommand, planKubeCommand } from './command.js';
import type { ExecTarget } from './exec-stream.js';
import type { KubeClient } from './kube-client.js';
import { certainlyNotApplied, mapKubeError } from './kube-errors.js';
import { KubeProcess } from './kube-process.js';
import type { KubernetesBackendOptions } from './options.js';
import { createPod, deletePod, listPods, waitForRunning } from './pod-ops.js';
import { buildPod, podName } from './pod-spec.js';
import { runShortExec } from './short-exec.js';
import { timeoutSignal } from '../../core/timeout-signal.js';

/** What every connection of one backend shares. */
export interface KubeBackendContext {
  readonly client: KubeClient;
  readonly options: KubernetesBackendOptions;
  readonly clock: Clock;
  readonly hostname: string;
  readonly pid: number;
  readonly logger: Logger;
  /** Name of the console container (spec.containers[consoleContainerNumber].name). */
  readonly consoleContainer: string;
}

const noop = (): void => undefined;

/**
 * One SSH connection's pods.
 *
 * `connection` mode: one pod per connection, created at open (Running, files written); every
 * session channel is an exec in its console container.
 * `session` mode: nothing at open; every session channel gets its own pod, and its program is an
 * exec in it (not the pod's main process: Kubernetes cannot attach before a container starts, so
 * early output would be lost; PID 1 ignores signals it has no handler for; and the exit code
 * comes with the exec's status). The pod is deleted when the program ends.
 *
 * Ownership: a pod's name is chosen and recorded before it is created, so `close` deletes every
 * pod even when a create's answer was lost; then it sweeps the namespace for anything labelled
 * with this connection. Every startProcess failure deletes the pod it created. close() is
 * idempotent and safe to race with startProcess.
 */
export class KubernetesConnection implements BackendConnection {
  readonly #ctx: KubeBackendContext;
  readonly #info: ConnectionInfo;
  readonly #logger: Logger;
  readonly #pods = new Set<string>();
  readonly #processes = new Set<KubeProcess>();
  readonly #starting = new Set<Promise<unknown>>();
  readonly #finishing = new Set<Promise<unknown>>();
  readonly #abort = new AbortController();
  #main: string | undefined;
  #closing: Promise<void> | undefined;

  private constructor(ctx: KubeBackendContext, info: ConnectionInfo) {
    // Every exec's open and every pod wait listens on it: many channels are normal.
    setMaxListeners(1000, this.#abort.signal);
    this.#ctx = ctx;
    this.#info = info;
    this.#logger = ctx.logger.child({ connectionId: info.connectionId });
  }

  static async open(ctx: KubeBackendContext, info: ConnectionInfo, signal?: AbortSignal): Promise<KubernetesConnection> {
    const connection = new KubernetesConnection(ctx, info);
    if (ctx.options.mode === 'connection') {
      try {
        connection.#main = await connection.#startPod('connection', undefined, signal);
      } catch (err) {
        await connection.close('open failed');
        throw err;
      }
    }
    return connection;
  }

  startProcess(request: ProcessRequest, signal?: AbortSignal): Promise<Process> {
    if (this.#closing) return Promise.reject(this.#closedError());
    const op = this.#ctx.options.mode === 'connection' ? this.#startInMain(request, signal) : this.#startSession(request, signal);
    const tracked = op.then(noop, noop);
    this.#starting.add(tracked);
    void tracked.then(() => this.#starting.delete(tracked));
    return op;
  }

  close(reason: string): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #startInMain(request: ProcessRequest, signal: AbortSignal | undefined): Promise<Process> {
    const pod = this.#main;
    if (!pod) throw this.#closedError();
    const proc = await this.#exec(pod, request, signal);
    this.#adopt(proc, undefined);
    return proc;
  }

  async #startSession(request: ProcessRequest, signal: AbortSignal | undefined): Promise<Process> {
    const pod = await this.#startPod('session', request.channelId, signal);
    try {
      if (this.#closing) throw this.#closedError();
      const proc = await this.#exec(pod, request, signal);
      this.#adopt(proc, pod);
      return proc;
    } catch (err) {
      await this.#delete(pod);
      throw err;
    }
  }

  async #exec(pod: string, request: ProcessRequest, signal: AbortSignal | undefined): Promise<KubeProcess> {
    const { options } = this.#ctx;
    const nonce = newMarkerNonce();
    const command = planKubeCommand({ request, shellCommand: options.shellCommand, subsystems: options.subsystems, markerNonce: nonce });
    const timeout = timeoutSignal(options.timeouts.commandStart);
    const proc = await KubeProcess.start({
      connector: this.#ctx.client.sockets,
      ...this.#target(pod),
      command,
      pty: request.pty,
      markerNonce: nonce,
      timeouts: options.timeouts,
      logger: this.#logger.child({ channelId: request.channelId, pod }),
      signal: AbortSignal.any([timeout, this.#abort.signal, ...(signal ? [signal] : [])]),
    });
    if (this.#closing) {
      proc.markKilled();
      void proc.kill();
      throw this.#closedError();
    }
    return proc;
  }

  /** Creates a pod, waits for Running and writes the connection's files; deletes it on failure. */
  async #startPod(role: 'connection' | 'session', channelId: number | undefined, signal: AbortSignal | undefined): Promise<string> {
    const { options, clock } = this.#ctx;
    if (this.#closing) throw this.#closedError();
    const name = podName(options.pod.generateName, this.#info.connectionId);
    const body = buildPod({
      name,
      pod: options.pod,
      idleCommand: options.idleCommand,
      info: this.#info,
      gatewayId: options.gatewayId,
      hostname: this.#ctx.hostname,
      pid: this.#ctx.pid,
      role,
      ...(channelId !== undefined ? { channelId } : {}),
      now: new Date(clock.now()),
    });
    const started = clock.now();
    this.#pods.add(name);
    try {
      let created: Awaited<ReturnType<typeof createPod>>;
      try {
        created = await createPod(this.#ctx.client, body, options.timeouts);
      } catch (err) {
        // Nothing to delete (and no reason to retry a delete against an unreachable server).
        if (certainlyNotApplied(err)) this.#pods.delete(name);
        throw err;
      }
      const abort = AbortSignal.any([this.#abort.signal, ...(signal ? [signal] : [])]);
      try {
        await waitForRunning({ client: this.#ctx.client, timeouts: options.timeouts, clock, logger: this.#logger }, created, this.#ctx.consoleContainer, abort);
      } catch (err) {
        if (abort.aborted && !(err instanceof AirlockError)) throw this.#closedError();
        throw mapKubeError(err, 'CONTAINER_START_FAILED', 'waiting for the pod', { pod: name });
      }
      await this.#writeFiles(name, abort);
      this.#logger.info({ pod: name, namespace: options.pod.namespace, role, ms: clock.now() - started }, 'pod started');
      return name;
    } catch (err) {
      await this.#delete(name);
      throw err;
    }
  }

  async #writeFiles(pod: string, signal: AbortSignal): Promise<void> {
    for (const [path, file] of Object.entries(this.#info.files)) {
      if (!path.startsWith('/')) {
        throw new AirlockError('CONTAINER_FILES_FAILED', `file path "${path}" is not absolute`, { details: { pod } });
      }
      const mode = file.sensitive ? 0o600 : 0o644;
      try {
        const result = await runShortExec(this.#ctx.client.sockets, this.#target(pod), fileWriteCommand(path, file.content.length, mode), {
          timeoutMs: this.#ctx.options.timeouts.commandStart,
          input: file.content,
          signal,
        });
        if (result.status.kind !== 'exit' || result.status.code !== 0) {
          throw new AirlockError('CONTAINER_FILES_FAILED', `writing ${path} failed: ${result.stderr.trim() || JSON.stringify(result.status)}`, { details: { pod, path } });
        }
      } catch (err) {
        throw mapKubeError(err, 'CONTAINER_FILES_FAILED', `writing ${path}`, { pod, path });
      }
    }
  }

  #target(pod: string): ExecTarget {
    return { namespace: this.#ctx.options.pod.namespace, pod, container: this.#ctx.consoleContainer };
  }

  #adopt(proc: KubeProcess, pod: string | undefined): void {
    this.#processes.add(proc);
    const finish = proc.exited
      .then(noop, noop)
      .then(async () => {
        this.#processes.delete(proc);
        if (pod) await this.#delete(pod);
      });
    this.#finishing.add(finish);
    void finish.then(() => this.#finishing.delete(finish));
  }

  async #delete(pod: string): Promise<void> {
    if (!this.#pods.delete(pod)) return;
    const { client, options, clock } = this.#ctx;
    try {
      await deletePod(client, options.pod.namespace, pod, options.timeouts, clock);
      this.#logger.debug({ pod }, 'pod deleted');
    } catch (err) {
      this.#logger.error({ err, pod }, 'could not delete a pod; the reaper will retry');
    }
  }

  #closedError(): AirlockError {
    return new AirlockError('EXEC_FAILED', 'the connection is closing', { details: { connectionId: this.#info.connectionId } });
  }

  async #close(reason: string): Promise<void> {
    const started = this.#ctx.clock.now();
    this.#abort.abort(this.#closedError());
    // 1. startProcess calls in flight finish or fail; failures delete their own pod.
    await Promise.all([...this.#starting]);
    // 2. Deleting the pods ends their programs: report them as KILLed.
    for (const proc of this.#processes) proc.markKilled();
    const pods = [...this.#pods];
    await Promise.all(pods.map((p) => this.#delete(p)));
    // 3. Exec streams end when the kubelet stops the containers (the idle PID 1 exits on TERM).
    await Promise.all([...this.#processes].map((p) => p.release()));
    await Promise.all([...this.#finishing]);
    // 4. Anything labelled with this connection that slipped through.
    await this.#sweep();
    this.#logger.info({ reason, pods: pods.length, ms: this.#ctx.clock.now() - started }, 'connection pods deleted');
  }

  async #sweep(): Promise<void> {
    const { client, options } = this.#ctx;
    try {
      const selector = `${LABEL.connection}=${this.#info.connectionId},${LABEL.gateway}=${options.gatewayId}`;
      for (const pod of await listPods(client, options.pod.namespace, selector, options.timeouts)) {
        const name = pod.metadata?.name;
        if (!name || pod.metadata?.deletionTimestamp) continue;
        this.#pods.add(name);
        await this.#delete(name);
      }
    } catch (err) {
      this.#logger.warn({ err: mapKubeError(err, 'BACKEND_UNAVAILABLE', 'listing leftover pods') }, 'could not list leftover pods; the reaper will delete any');
    }
  }
}
