/**
 * The "kubelet" of the FAKE Kubernetes API server: runs a pod's containers as local processes in a
 * temp directory and moves the pod object through the phases a real node reports.
 *
 * What it emulates (as the real kubelet reports it):
 * - Pending: no node yet; `PodScheduled=False/Unschedulable` when the fake is told nothing fits;
 *   containers `waiting` with ContainerCreating, ErrImagePull → ImagePullBackOff for images the
 *   fake "registry" does not have, CreateContainerConfigError for runAsNonRoot violations;
 * - Running: every container's command (`command` + `args`, or the fake image's entrypoint) runs
 *   as a local process, as `runAsUser` (or the fake image's user) when the test runs as root,
 *   with the container's `env` (plain values only), HOME = the pod's temp dir, its own process
 *   group;
 * - Succeeded/Failed when every container exited (restartPolicy is treated as Never), with
 *   `terminated` states and exit codes; DeadlineExceeded after `activeDeadlineSeconds`;
 * - graceful deletion: deletionTimestamp, SIGTERM to the containers, SIGKILL after the grace
 *   period, and the object disappears once every process is gone (like a PID namespace, every
 *   process started in the pod — exec'd ones and their orphans included — dies with it).
 * Processes are found through an environment marker (FAKE_KUBE_POD=<uid>) that they inherit.
 *
 * Not emulated: images and their file systems (processes see the host's), volumes, probes,
 * init containers, restarts, resource limits, networking, valueFrom env.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { rfc3339, type Json } from './fake-kube-status.js';

/** What the fake "registry" knows about an image. */
export interface FakeImage {
  /** The image's USER as written in its config ("1000", "0", "root", "app"). Default "1000". */
  readonly user?: string;
  /** The uid a named user resolves to (for non-numeric `user`). Default 1000. */
  readonly uid?: number;
  /** Pull outcome. Default "ok". */
  readonly pull?: 'ok' | 'not-found' | 'unauthorized';
  /** ENTRYPOINT + CMD when the container sets no command. */
  readonly entrypoint?: readonly string[];
}

export interface PodRuntimeDeps {
  /** Directory under which every pod gets its own temp dir. */
  readonly root: string;
  readonly image: (name: string) => FakeImage;
  /** Delay before each step (schedule, pull, start), so watchers see Pending first. */
  readonly stepDelayMs: number;
  /** The scheduler's message when nothing fits, or undefined. */
  readonly unschedulable: () => string | undefined;
  /** The object changed: bump its resourceVersion and tell the watchers. */
  readonly changed: (pod: FakePod) => void;
  /** The object is gone from the store. */
  readonly gone: (pod: FakePod) => void;
}

export const POD_MARKER_ENV = 'FAKE_KUBE_POD';
const DEFAULT_ENTRYPOINT = ['/bin/sh', '-c', 'while :; do sleep 3600; done'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface RunningContainer {
  readonly name: string;
  readonly child: ChildProcess;
  exited: boolean;
}

export interface ContainerRuntime {
  readonly env: NodeJS.ProcessEnv;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly cwd: string;
}

const isRoot = process.getuid?.() === 0;

export class FakePod {
  readonly json: Json;
  readonly uid: string;
  readonly dir: string;
  readonly #deps: PodRuntimeDeps;
  readonly #containers = new Map<string, RunningContainer>();
  readonly #runtime = new Map<string, ContainerRuntime>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #deleting = false;
  #gone = false;
  /** Set once the object has left the store (#gone is set when removal starts). */
  #removed = false;
  #goneWaiters: Array<() => void> = [];

  constructor(json: Json, deps: PodRuntimeDeps) {
    this.json = json;
    this.uid = String(this.metadata['uid']);
    this.#deps = deps;
    this.dir = join(deps.root, `${String(this.metadata['namespace'])}_${String(this.metadata['name'])}_${randomBytes(3).toString('hex')}`);
  }

  get metadata(): Json {
    return this.json['metadata'] as Json;
  }
  get spec(): Json {
    return this.json['spec'] as Json;
  }
  get status(): Json {
    return this.json['status'] as Json;
  }
  get name(): string {
    return String(this.metadata['name']);
  }
  get namespace(): string {
    return String(this.metadata['namespace']);
  }
  get phase(): string {
    return String(this.status['phase']);
  }
  get terminating(): boolean {
    return this.#deleting;
  }
  get isGone(): boolean {
    return this.#gone;
  }

  /** Resolves once the object has left the store. */
  whenGone(): Promise<void> {
    if (this.#removed) return Promise.resolve();
    return new Promise((resolve) => this.#goneWaiters.push(resolve));
  }

  /** The running container `name`, for exec; undefined when it is not running. */
  runtime(name: string): ContainerRuntime | undefined {
    const c = this.#containers.get(name);
    if (!c || c.exited || this.#deleting) return undefined;
    return this.#runtime.get(name);
  }

  containerNames(): string[] {
    return (this.spec['containers'] as Json[]).map((c) => String(c['name']));
  }

  /** Kicks off scheduling → pulling → running. */
  start(): void {
    this.#later(() => this.#schedule());
  }

  // ---- lifecycle ------------------------------------------------------------------------

  #schedule(): void {
    const message = this.#deps.unschedulable();
    if (message !== undefined) {
      this.#condition('PodScheduled', 'False', 'Unschedulable', message);
      this.#deps.changed(this);
      return;
    }
    this.spec['nodeName'] = 'fake-node';
    this.status['hostIP'] = '10.0.0.1';
    this.status['hostIPs'] = [{ ip: '10.0.0.1' }];
    this.status['startTime'] = rfc3339(Date.now());
    this.#condition('PodScheduled', 'True');
    this.#condition('Initialized', 'True');
    this.#condition('Ready', 'False', 'ContainersNotReady', `containers with unready status: [${this.containerNames().join(' ')}]`);
    this.#condition('ContainersReady', 'False', 'ContainersNotReady', `containers with unready status: [${this.containerNames().join(' ')}]`);
    this.status['containerStatuses'] = (this.spec['containers'] as Json[]).map((c) => this.#containerStatus(c, { waiting: { reason: 'ContainerCreating' } }));
    const deadline = this.spec['activeDeadlineSeconds'];
    if (typeof deadline === 'number') {
      const timer = setTimeout(() => this.#deadlineExceeded(), deadline * 1000);
      timer.unref();
      this.#timers.add(timer);
    }
    this.#deps.changed(this);
    this.#later(() => void this.#pullAndRun());
  }

  async #pullAndRun(): Promise<void> {
    const containers = this.spec['containers'] as Json[];
    // Pull every image first: the kubelet reports pull errors per container.
    let blocked = false;
    for (const c of containers) {
      const image = String(c['image']);
      const info = this.#deps.image(image);
      if ((info.pull ?? 'ok') !== 'ok') {
        blocked = true;
        const ref = image.includes('/') ? image : `docker.io/library/${image}`;
        const why =
          info.pull === 'not-found'
            ? `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`
            : `rpc error: code = Unknown desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`;
        this.#setContainerState(String(c['name']), { waiting: { reason: 'ErrImagePull', message: why } });
        this.#deps.changed(this);
        this.#later(() => {
          if (this.#gone) return;
          this.#setContainerState(String(c['name']), { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } });
          this.#deps.changed(this);
        });
        continue;
      }
      const configError = this.#nonRootViolation(c, info);
      if (configError) {
        blocked = true;
        this.#setContainerState(String(c['name']), { waiting: { reason: 'CreateContainerConfigError', message: configError } });
        this.#deps.changed(this);
      }
    }
    if (blocked || this.#deleting || this.#gone) return;
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    for (const c of containers) this.#runContainer(c);
  }

  #runContainer(c: Json): void {
    const name = String(c['name']);
    const info = this.#deps.image(String(c['image']));
    const command = (c['command'] as string[] | undefined) ?? [...(info.entrypoint ?? DEFAULT_ENTRYPOINT)];
    const argv = [...command, ...((c['args'] as string[] | undefined) ?? [])];
    const { uid, gid } = this.#identity(c, info);
    const env: NodeJS.ProcessEnv = {
      PATH: DEFAULT_PATH,
      HOSTNAME: this.name,
      HOME: this.dir,
      [POD_MARKER_ENV]: this.uid,
    };
    for (const e of (c['env'] as Json[] | undefined) ?? []) if (typeof e['value'] === 'string') env[String(e['name'])] = e['value'];
    const runtime: ContainerRuntime = { env, uid, gid, cwd: this.dir };
    this.#runtime.set(name, runtime);
    if (isRoot && uid !== undefined) void chown(this.dir, uid, gid ?? uid).catch(() => undefined);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.dir,
      env,
      detached: true,
      stdio: 'ignore',
      ...(isRoot && uid !== undefined ? { uid, gid: gid ?? uid } : {}),
    });
    const running: RunningContainer = { name, child, exited: false };
    this.#containers.set(name, running);
    const started = rfc3339(Date.now());
    child.once('spawn', () => {
      if (running.exited) return;
      this.#setContainerState(name, { running: { startedAt: started } }, { ready: true, started: true });
      this.#updateRunningPhase();
      this.#deps.changed(this);
    });
    let reported = false;
    const onEnd = (code: number, reason: string, message?: string) => {
      if (reported) return;
      reported = true;
      running.exited = true;
      this.#setContainerState(
        name,
        { terminated: { exitCode: code, reason, ...(message ? { message } : {}), startedAt: started, finishedAt: rfc3339(Date.now()), containerID: this.#containerId(name) } },
        { ready: false, started: false },
      );
      this.#afterContainerExit();
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      onEnd(128, 'StartError', `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "${argv[0]}": ${err.code === 'ENOENT' ? 'executable file not found in $PATH' : err.message}: unknown`);
    });
    child.once('exit', (code, signal) => {
      const exit = code ?? 128 + signalNumber(signal);
      onEnd(exit, exit === 0 ? 'Completed' : 'Error');
    });
  }

  #afterContainerExit(): void {
    const all = [...this.#containers.values()];
    if (all.every((c) => c.exited)) {
      const failed = (this.status['containerStatuses'] as Json[]).some((s) => {
        const t = (s['state'] as Json)['terminated'] as Json | undefined;
        return t !== undefined && t['exitCode'] !== 0;
      });
      if (this.status['reason'] !== 'DeadlineExceeded') this.status['phase'] = failed ? 'Failed' : 'Succeeded';
      this.#condition('Ready', 'False', 'PodCompleted');
      this.#condition('ContainersReady', 'False', 'PodCompleted');
      // Like a PID namespace: exec'd processes and orphans die with the last container.
      void killPodProcesses(this.uid, 'SIGKILL');
      this.#deps.changed(this);
      if (this.#deleting) void this.#finalize();
      return;
    }
    this.#updateRunningPhase();
    this.#deps.changed(this);
  }

  #deadlineExceeded(): void {
    if (this.#gone || this.phase === 'Succeeded' || this.phase === 'Failed') return;
    this.status['phase'] = 'Failed';
    this.status['reason'] = 'DeadlineExceeded';
    this.status['message'] = 'Pod was active on the node longer than the specified deadline';
    this.#deps.changed(this);
    void killPodProcesses(this.uid, 'SIGKILL');
  }

  /**
   * DELETE with this grace period (seconds). Resolves with the object to return. An object that
   * never ran (or grace 0) goes at once; otherwise it is marked and goes when its processes have.
   */
  delete(graceSeconds: number): Json {
    if (this.#gone || this.#deleting) return this.json;
    const alive = [...this.#containers.values()].some((c) => !c.exited);
    this.#deleting = true;
    if (!alive || graceSeconds <= 0) {
      void this.#finalize();
      return this.json;
    }
    const now = Date.now();
    this.metadata['deletionTimestamp'] = rfc3339(now + graceSeconds * 1000);
    this.metadata['deletionGracePeriodSeconds'] = graceSeconds;
    this.#deps.changed(this);
    for (const c of this.#containers.values()) if (!c.exited && c.child.pid) signalGroup(c.child.pid, 'SIGTERM');
    const timer = setTimeout(() => void killPodProcesses(this.uid, 'SIGKILL'), graceSeconds * 1000);
    timer.unref();
    this.#timers.add(timer);
    return this.json;
  }

  /** Server shutdown: every process dies, the temp dir goes. */
  async destroy(): Promise<void> {
    this.#deleting = true;
    await this.#finalize();
  }

  async #finalize(): Promise<void> {
    if (this.#gone) return;
    this.#gone = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await killPodProcesses(this.uid, 'SIGKILL');
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    this.#deps.gone(this);
    this.#removed = true;
    for (const w of this.#goneWaiters.splice(0)) w();
  }

  // ---- status helpers ------------------------------------------------------------------------

  #later(fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#gone && !this.#deleting) fn();
    }, this.#deps.stepDelayMs);
    timer.unref();
    this.#timers.add(timer);
  }

  #updateRunningPhase(): void {
    const statuses = this.status['containerStatuses'] as Json[];
    const anyRunning = statuses.some((s) => (s['state'] as Json)['running'] !== undefined);
    const allReady = statuses.every((s) => s['ready'] === true);
    if (anyRunning && this.phase === 'Pending') {
      this.status['phase'] = 'Running';
      this.status['podIP'] = `10.244.0.${1 + (parseInt(this.uid.slice(0, 2), 16) % 250)}`;
      this.status['podIPs'] = [{ ip: this.status['podIP'] }];
    }
    if (allReady) {
      this.#condition('ContainersReady', 'True');
      this.#condition('Ready', 'True');
    }
  }

  #condition(type: string, status: 'True' | 'False', reason?: string, message?: string): void {
    const conditions = ((this.status['conditions'] as Json[] | undefined) ?? []).filter((c) => c['type'] !== type);
    conditions.push({
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: rfc3339(Date.now()),
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
    this.status['conditions'] = conditions;
  }

  #containerId(name: string): string {
    return `containerd://${Buffer.from(`${this.uid}/${name}`).toString('hex').slice(0, 64)}`;
  }

  #containerStatus(c: Json, state: Json): Json {
    const image = String(c['image']);
    return {
      name: String(c['name']),
      image: image.includes('/') ? image : `docker.io/library/${image}`,
      imageID: '',
      ready: false,
      restartCount: 0,
      started: false,
      state,
      lastState: {},
    };
  }

  #setContainerState(name: string, state: Json, extra: Json = {}): void {
    const statuses = (this.status['containerStatuses'] as Json[] | undefined) ?? [];
    const entry = statuses.find((s) => s['name'] === name);
    if (!entry) return;
    entry['state'] = state;
    Object.assign(entry, extra);
    if (state['running'] || state['terminated']) {
      entry['containerID'] = this.#containerId(name);
      entry['imageID'] = `${String(entry['image'])}@sha256:${'0'.repeat(64)}`;
    }
  }

  /** The uid/gid a container runs as: runAsUser/runAsGroup (container over pod), else the image's. */
  #identity(c: Json, info: FakeImage): { uid: number | undefined; gid: number | undefined } {
    const podSc = (this.spec['securityContext'] as Json | undefined) ?? {};
    const sc = (c['securityContext'] as Json | undefined) ?? {};
    const runAsUser = (sc['runAsUser'] ?? podSc['runAsUser']) as number | undefined;
    const runAsGroup = (sc['runAsGroup'] ?? podSc['runAsGroup']) as number | undefined;
    const imageUser = info.user ?? '1000';
    const uid = runAsUser ?? (/^\d+$/.test(imageUser) ? Number(imageUser) : imageUser === 'root' ? 0 : (info.uid ?? 1000));
    return { uid, gid: runAsGroup ?? uid };
  }

  /** The kubelet's runAsNonRoot check (pkg/kubelet/kuberuntime/security_context_others.go). */
  #nonRootViolation(c: Json, info: FakeImage): string | undefined {
    const podSc = (this.spec['securityContext'] as Json | undefined) ?? {};
    const sc = (c['securityContext'] as Json | undefined) ?? {};
    const nonRoot = (sc['runAsNonRoot'] ?? podSc['runAsNonRoot']) === true;
    if (!nonRoot) return undefined;
    const where = `(pod: "${this.name}_${this.namespace}(${this.uid})", container: ${String(c['name'])})`;
    const runAsUser = (sc['runAsUser'] ?? podSc['runAsUser']) as number | undefined;
    if (runAsUser !== undefined) return runAsUser === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
    const user = info.user ?? '1000';
    if (!/^\d+$/.test(user)) return `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root ${where}`;
    if (Number(user) === 0) return `container has runAsNonRoot and image will run as root ${where}`;
    return undefined;
  }
}

const SIGNALS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGABRT: 6, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (SIGNALS[signal] ?? 0) : 0;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Pids of every live process carrying the pod's environment marker. */
export async function podProcesses(uid: string): Promise<number[]> {
  const marker = Buffer.from(`${POD_MARKER_ENV}=${uid}\0`);
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = await readFile(`/proc/${entry}/environ`);
      // Every entry ends in NUL; a zombie's environ is empty, so it is not counted.
      if (environ.includes(marker)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** SIGKILLs (or signals) every process of the pod, repeating until none is left. */
export async function killPodProcesses(uid: string, signal: NodeJS.Signals): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const pids = await podProcesses(uid);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // raced with its exit
      }
    }
    if (signal !== 'SIGKILL') return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
