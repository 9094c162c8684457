import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { envList } from './command.js';
import { buildCreateBody, buildHostConfig } from './container-spec.js';
import { callSignal, createContainer, removeContainer, startFailure } from './engine-ops.js';
import { ensureImage } from './image.js';
import { startLauncher, type Launcher } from './launcher.js';
import type { ImageUsers, ResolvedUser } from './image-user.js';
import { buildLabels, LABEL } from './labels.js';
import type { DockerBackendOptions } from './options.js';

/**
 * The warm pool (connection mode): `size` containers of one image, created and started ahead of
 * time with the idle command as their main process and nothing of any user in them — no
 * connection env, no files, no per-connection labels, and no network (see `poolNetworkPlan`).
 * A new connection for that image claims one (`claim`, synchronous: no Engine call), gets its
 * network attached and its files written, runs its programs as `docker exec`s exactly like a
 * fresh container, and removes it when it ends; the pool refills in the background.
 *
 * Labels cannot change after create, so a pool container carries `airlock.role=pool`,
 * `airlock.pool=true`, the gateway's labels and a pool key (`pool-<hex>`) in
 * `airlock.connection`. The claim is recorded in the gateway: `ownerIds()` lists the keys of
 * every pool container still owned — being created, idle, or claimed by a connection that has
 * not removed it yet — and the reaper treats them like live connections. A claimed container is
 * also renamed `airlock-<connection>-<random>` so `docker ps` shows whose it is. `close()`
 * stops refilling and removes every idle container; claimed ones belong to their connections.
 */
export interface PoolDeps {
  readonly docker: Docker;
  readonly options: DockerBackendOptions;
  readonly clock: Clock;
  readonly hostname: string;
  readonly pid: number;
  readonly users: ImageUsers;
  readonly logger: Logger;
}

export interface PoolOptions {
  readonly size: number;
  /** Image name as connections ask for it (the configured image unless set otherwise). */
  readonly image: string;
}

/** What a connection gets from `claim`. */
export interface PooledContainer {
  /** The pool key (label airlock.connection); `release(key)` once the container is removed. */
  readonly key: string;
  readonly container: Docker.Container;
  readonly image: Docker.ImageInspectInfo;
  readonly user: ResolvedUser;
  /** Network to connect at claim; undefined when the container was created with its final mode. */
  readonly attachNetwork: string | undefined;
  /**
   * Pre-started execs waiting for a program (launcher.ts), at most one per terminal kind; the
   * connection takes them out as it uses them and destroys the rest when it ends.
   */
  readonly launchers: Launcher[];
}

export interface NetworkPlan {
  /** NetworkMode of the pool container at create. */
  readonly createMode: string;
  /** Network to detach the container from once it runs (so it idles with no network at all). */
  readonly detach?: string;
  /** Network to connect the claimed container to. */
  readonly attach?: string;
}

/**
 * Idle pool containers have no network: created with `none` and detached from it once started
 * (so the claim is a single `connect`, and the claimed container's interface is `eth0` as in a
 * fresh one), then connected to the configured network at claim. Podman cannot connect any
 * network to a container created with `none` ('"" is not supported: invalid network mode'), so
 * there (`podman`) the container is created on the configured network and detached from it
 * once running, before anything else starts in it. Modes that cannot be joined later — `host`,
 * `container:<id>`, `none` itself — are used as configured from the start.
 */
export function poolNetworkPlan(networkMode: string | undefined, engine: 'docker' | 'podman' = 'docker'): NetworkPlan {
  const mode = networkMode === undefined || networkMode === '' || networkMode === 'default' ? 'bridge' : networkMode;
  if (mode === 'none' || mode === 'host' || mode.startsWith('container:')) return { createMode: mode };
  if (engine === 'podman') return { createMode: mode, detach: mode, attach: mode };
  return { createMode: 'none', detach: 'none', attach: mode };
}

const MAX_PARALLEL_CREATES = 2;
/**
 * A claim's refill waits this long, so the claiming connection's own Engine calls (network
 * connect, the first exec) are not slowed by a container being created and started beside them
 * on the same engine: that start is the slowest thing the Engine does.
 */
const REFILL_DELAY_MS = 500;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class ContainerPool {
  readonly size: number;
  readonly image: string;
  readonly #deps: PoolDeps;
  readonly #logger: Logger;
  readonly #idle: PooledContainer[] = [];
  /** Keys of every pool container we own: being created, idle, or claimed and not yet removed. */
  readonly #owned = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  #creating = 0;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #refillTimer: NodeJS.Timeout | undefined;
  #engineKind: Promise<'docker' | 'podman'> | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: PoolDeps, options: PoolOptions) {
    this.#deps = deps;
    this.size = options.size;
    this.image = options.image;
    this.#logger = deps.logger.child({ component: 'pool' });
  }

  /** Starts filling the pool in the background. */
  start(): void {
    this.#fill();
  }

  /** An idle container of `image`, or undefined (the caller starts a fresh one). Never waits. */
  claim(image: string, connectionId: string): PooledContainer | undefined {
    if (this.#closing || image !== this.image) return undefined;
    const pooled = this.#idle.shift();
    this.#refillSoon();
    if (!pooled) {
      this.#logger.info({ connectionId, size: this.size }, 'pool empty: starting a fresh container');
      return undefined;
    }
    this.#logger.info({ connectionId, containerId: pooled.container.id, idle: this.#idle.length, size: this.size }, 'pool container claimed');
    return pooled;
  }

  /** The claimed container `key` is gone (removed by its connection, or given up on). */
  release(key: string): void {
    this.#owned.delete(key);
  }

  /** Values of `airlock.connection` the reaper must treat as live. */
  ownerIds(): string[] {
    return [...this.#owned];
  }

  idleCount(): number {
    return this.#idle.length;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    clearTimeout(this.#refillTimer);
    this.#refillTimer = undefined;
    await Promise.all([...this.#inFlight]);
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map((p) => this.#discard(p, 'gateway stopping')));
    this.#logger.info({ removed: idle.length }, 'pool closed');
  }

  /** Which engine answers (Podman's compat API names itself in /version); asked once. */
  #engine(): Promise<'docker' | 'podman'> {
    this.#engineKind ??= this.#deps.docker
      .version()
      .then((v) => ((v.Components ?? []).some((c) => /podman/i.test(c.Name)) ? ('podman' as const) : ('docker' as const)))
      .catch(() => {
        // Unknown for now (the create that follows reports the engine's state); ask again next time.
        this.#engineKind = undefined;
        return 'docker' as const;
      });
    return this.#engineKind;
  }

  #refillSoon(): void {
    if (this.#refillTimer !== undefined) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#fill();
    }, REFILL_DELAY_MS);
    this.#refillTimer.unref();
  }

  #fill(): void {
    while (!this.#closing && this.#retryTimer === undefined && this.#creating < MAX_PARALLEL_CREATES && this.#idle.length + this.#creating < this.size) {
      this.#creating++;
      const op = this.#createOne().finally(() => {
        this.#creating--;
        this.#inFlight.delete(op);
      });
      this.#inFlight.add(op);
      // Top up after each one, so a pool larger than MAX_PARALLEL_CREATES fills completely.
      void op.then(() => this.#fill());
    }
  }

  async #createOne(): Promise<void> {
    const { docker, options, clock, users } = this.#deps;
    const key = `pool-${randomBytes(6).toString('hex')}`;
    // Owned before create is even sent: the reaper must never see it as an orphan.
    this.#owned.add(key);
    const started = clock.now();
    let container: Docker.Container | undefined;
    try {
      const image = await ensureImage(docker, this.image, options.imagePullPolicy, { timeouts: options.timeouts, logger: this.#logger });
      const labels = this.#labels(key);
      // The passwd probe (first time per image only) is owned by the same key while it exists.
      const probeLabels: Record<string, string> = { ...labels, [LABEL.role]: 'probe' };
      delete probeLabels[LABEL.pool];
      const user = await users.resolve(image, options.container.user, false, { labels: probeLabels, name: `airlock-pool-probe-${key.slice(5)}`, logger: this.#logger });
      const hostConfig = buildHostConfig(options.hostConfig);
      const plan = poolNetworkPlan(networkModeOf(hostConfig), await this.#engine());
      setCaseInsensitive(hostConfig, 'NetworkMode', plan.createMode);
      const body = buildCreateBody({
        container: options.container,
        hostConfig,
        image: this.image,
        user: user.spec,
        labels,
        // Only the configured, user-independent env; a connection's env is given to each exec.
        env: envList(options.container.env),
        entrypoint: options.idleCommand,
        tty: false,
        openStdin: false,
      });
      container = await createContainer(docker, `airlock-${key}`, body, AbortSignal.timeout(options.timeouts.containerStart));
      const signal = callSignal(options.timeouts.containerStart);
      try {
        await container.start({ abortSignal: signal });
        const state = await container.inspect({ abortSignal: signal });
        if (!state.State.Running) throw new Error(`the container exited at once (exit code ${state.State.ExitCode})`);
        // Leave it with no network at all; the claim then only has to connect it.
        if (plan.detach) await docker.getNetwork(plan.detach).disconnect({ Container: container.id, abortSignal: signal });
      } catch (err) {
        throw startFailure(err, 'starting a pool container', { containerId: container.id, image: this.image });
      }
      const launchers = await this.#startLaunchers(container, user.spec);
      const pooled: PooledContainer = { key, container, image, user, attachNetwork: plan.attach, launchers };
      if (this.#closing) {
        await this.#discard(pooled, 'gateway stopping');
        return;
      }
      this.#idle.push(pooled);
      this.#failures = 0;
      this.#logger.info({ containerId: container.id, ms: clock.now() - started, idle: this.#idle.length, size: this.size }, 'pool container ready');
    } catch (err) {
      if (container) await this.#discard({ key, container }, 'start failed');
      else this.#owned.delete(key);
      this.#failures++;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.#failures - 1));
      this.#logger.warn({ err, retryMs: delay, failures: this.#failures }, 'pool container could not be started; connections start fresh containers meanwhile');
      if (!this.#closing && this.#retryTimer === undefined) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#fill();
        }, delay);
        this.#retryTimer.unref();
      }
    }
  }

  /**
   * One launcher with and one without a TTY. Optional: a launcher that cannot start (no `stty`
   * for the TTY one, an engine hiccup) only means that kind of first program is a normal exec.
   */
  async #startLaunchers(container: Docker.Container, user: string): Promise<Launcher[]> {
    const signal = callSignal(this.#deps.options.timeouts.commandStart);
    const started = await Promise.allSettled([false, true].map((tty) => startLauncher(container, { tty, user, signal })));
    const launchers: Launcher[] = [];
    for (const result of started) {
      if (result.status === 'fulfilled') launchers.push(result.value);
      else this.#logger.debug({ err: result.reason, containerId: container.id }, 'pool launcher not started; that kind of program starts as a normal exec');
    }
    return launchers;
  }

  async #discard(pooled: { key: string; container: Docker.Container; launchers?: Launcher[] }, reason: string): Promise<void> {
    const { options, clock } = this.#deps;
    for (const launcher of pooled.launchers ?? []) launcher.stream.destroy();
    try {
      await removeContainer(pooled.container, options.timeouts, clock);
      this.#owned.delete(pooled.key);
      this.#logger.debug({ containerId: pooled.container.id, reason }, 'pool container removed');
    } catch (err) {
      // Given up on: no longer owned, so the reaper retries the removal.
      this.#logger.error({ err, containerId: pooled.container.id, reason }, 'could not remove a pool container; the reaper will retry');
      this.#owned.delete(pooled.key);
    }
  }

  #labels(key: string): Record<string, string> {
    const { options, hostname, pid, clock } = this.#deps;
    const labels = buildLabels({
      gatewayId: options.gatewayId,
      hostname,
      pid,
      connectionId: key,
      username: '',
      now: new Date(clock.now()),
      role: 'pool',
      extra: { ...options.container.labels },
    });
    labels[LABEL.pool] = 'true';
    return labels;
  }
}

function networkModeOf(hostConfig: Record<string, unknown>): string | undefined {
  for (const [k, v] of Object.entries(hostConfig)) if (k.toLowerCase() === 'networkmode' && typeof v === 'string') return v;
  return undefined;
}

function setCaseInsensitive(obj: Record<string, unknown>, key: string, value: unknown): void {
  const existing = Object.keys(obj).find((k) => k.toLowerCase() === key.toLowerCase());
  obj[existing ?? key] = value;
}
