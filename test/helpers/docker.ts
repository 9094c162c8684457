/**
 * Docker helpers for tests: the test images, and leak checks over every container labelled
 * `airlock.managed=true` (what the gateway and the reaper manage).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { retry } from '../../src/core/retry.js';

const run = promisify(execFile);
const script = resolve(import.meta.dirname, '../../scripts/build-test-image.sh');
const relayScript = resolve(import.meta.dirname, '../../scripts/build-relay-image.sh');

/** busybox, USER airlock (uid 1000), WORKDIR /home/airlock. */
export const TEST_IMAGE = 'airlock-test:busybox';
/** Same file system, no USER, ENTRYPOINT ["/bin/false"] (see scripts/build-test-image.sh). */
export const TEST_IMAGE_NOUSER = 'airlock-test:busybox-nouser';

const built = new Map<string, Promise<string>>();

/** Builds the test image (or its `nouser` variant) once per process; resolves with its tag. */
export function ensureTestImage(variant: 'default' | 'nouser' = 'default'): Promise<string> {
  let pending = built.get(variant);
  if (!pending) {
    const args = variant === 'nouser' ? [script, '--no-user'] : [script];
    pending = run('bash', args).then(() => (variant === 'nouser' ? TEST_IMAGE_NOUSER : TEST_IMAGE));
    built.set(variant, pending);
    pending.catch(() => built.delete(variant));
  }
  return pending;
}

/** The port-forwarding network helper image (scripts/build-relay-image.sh). */
export const RELAY_IMAGE = 'airlock-relay:busybox';

let relayBuilt: Promise<string> | undefined;

/** Builds the relay image once per process (a no-op when it is current). */
export function ensureRelayImage(): Promise<string> {
  relayBuilt ??= run('bash', [relayScript]).then(() => RELAY_IMAGE);
  relayBuilt.catch(() => (relayBuilt = undefined));
  return relayBuilt;
}

export interface ContainerFilter {
  /** Only containers of this gateway (label airlock.gateway). */
  readonly gatewayId?: string;
  /** Only containers of this connection (label airlock.connection). */
  readonly connectionId?: string;
  /** Only containers carrying all of these labels (e.g. `airlock.meta.session_id`). */
  readonly labels?: Readonly<Record<string, string>>;
}

function labelFilters(filter: ContainerFilter): string[] {
  const labels: Record<string, string> = { ...filter.labels };
  if (filter.gatewayId) labels['airlock.gateway'] = filter.gatewayId;
  if (filter.connectionId) labels['airlock.connection'] = filter.connectionId;
  return Object.entries(labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
}

/** Ids of `docker ps -a --filter label=airlock.managed=true` (narrowed by `filter`), sorted. */
export async function managedContainers(filter: ContainerFilter = {}): Promise<string[]> {
  const args = ['ps', '-a', '--no-trunc', '--format', '{{.ID}}', '--filter', 'label=airlock.managed=true', ...labelFilters(filter)];
  const { stdout } = await run('docker', args);
  return stdout.split('\n').filter((line) => line !== '').sort();
}

/**
 * Ids of the managed containers the engine *created* between two instants (its event log),
 * narrowed by `filter`. Unlike `docker ps` afterwards, this also sees a container that was
 * created and removed again in between, so it proves "no container was created".
 * `untilMs` must not be in the future (docker events would wait for it).
 */
export async function containersCreatedBetween(sinceMs: number, untilMs: number, filter: ContainerFilter = {}): Promise<string[]> {
  const args = [
    'events', '--since', (sinceMs / 1000).toFixed(3), '--until', (untilMs / 1000).toFixed(3),
    '--format', '{{.Actor.ID}}', '--filter', 'type=container', '--filter', 'event=create',
    '--filter', 'label=airlock.managed=true', ...labelFilters(filter),
  ];
  const { stdout } = await run('docker', args);
  return stdout.split('\n').filter((line) => line !== '');
}

export const listManagedContainers = managedContainers;

/**
 * Fails when managed containers exist that were not in `baseline` (a snapshot taken before the
 * test), narrowed by `filter` (tests sharing one dockerd with other suites should pass their
 * gatewayId). Leaked containers whose gateway process is this one or is gone are removed before
 * failing, so one leak does not fail every later test — but never those of a gateway that is
 * still running (another suite may be using them right now).
 */
export async function assertNoLeakedContainers(baseline: readonly string[] = [], filter: ContainerFilter = {}): Promise<void> {
  const known = new Set(baseline);
  const leaked = (await managedContainers(filter)).filter((id) => !known.has(id));
  const removable: string[] = [];
  for (const id of leaked) {
    const pid = Number(await run('docker', ['inspect', '--format', '{{index .Config.Labels "airlock.gateway-pid"}}', id]).then((r) => r.stdout.trim(), () => ''));
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) removable.push(id);
  }
  if (removable.length > 0) await run('docker', ['rm', '-f', '-v', ...removable]).catch(() => undefined);
  assert.deepEqual(leaked, [], `leaked containers: ${leaked.join(', ')}`);
}

/**
 * Waits until no managed container matches `filter` (the Engine is asked again and again, up
 * to `timeoutMs`: removal is asynchronous after a connection ends), then asserts it.
 */
export async function assertContainersGone(filter: ContainerFilter, timeoutMs = 20_000): Promise<void> {
  const left = await retry(
    async () => {
      const ids = await managedContainers(filter);
      if (ids.length > 0) throw new Error(`containers still present: ${ids.join(', ')}`);
      return ids;
    },
    { deadline: Date.now() + timeoutMs, initialDelayMs: 50, maxDelayMs: 500 },
  ).catch((err: unknown) => [String(err)]);
  assert.deepEqual(left, [], 'the containers are removed');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** `docker inspect` of one container (for tests that check what the backend created). */
export async function inspectContainer(id: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('docker', ['inspect', id]);
  const parsed = JSON.parse(stdout) as unknown;
  assert.ok(Array.isArray(parsed) && parsed.length === 1, `docker inspect ${id}`);
  return parsed[0] as Record<string, unknown>;
}

/** The Debian 12 demo image (scripts/build-demo-image.sh): user `dev`, openssh-sftp-server. */
export const DEMO_IMAGE = 'airlock-demo:latest';

/**
 * Checks that the demo image is the real Debian one: without a Debian mirror setup.sh builds a
 * busybox stand-in without sftp-server, which would silently turn in-container SFTP tests into
 * gateway-side ones.
 */
export async function ensureDemoImage(): Promise<string> {
  const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{index .Config.Labels "airlock.demo.flavor"}}', DEMO_IMAGE]).catch(() => ({ stdout: '' }));
  if (stdout.trim() !== 'debian-bookworm') {
    throw new Error(`${DEMO_IMAGE} is missing or the busybox stand-in (flavor "${stdout.trim()}"); build it with scripts/build-demo-image.sh`);
  }
  return DEMO_IMAGE;
}
