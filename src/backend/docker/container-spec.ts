import { DOCKER_DEFAULTS, type DockerContainerOptions, type DockerHostConfigOptions } from './options.js';

/**
 * Builds the Engine's container create body. Secure defaults first, then the typed options,
 * then the raw `extra` passthrough maps (keys matched case-insensitively, as the Engine's JSON
 * decoder does, so `extra: {init: false}` replaces `Init` instead of sending both). A few keys
 * are the backend's mechanics and cannot be overridden: labels (the reaper trusts them), the
 * command, the stdio/TTY wiring and AutoRemove (it would delete the container before its exit
 * code is read).
 */
export interface CreateBodyInput {
  readonly container: DockerContainerOptions;
  readonly hostConfig: Record<string, unknown>;
  /** Image id or name. */
  readonly image: string;
  /** '' keeps the image's default. */
  readonly user: string;
  readonly labels: Record<string, string>;
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
  readonly tty: boolean;
  readonly openStdin: boolean;
}

const PROTECTED_BODY_KEYS = ['Image', 'Labels', 'Entrypoint', 'Cmd', 'Tty', 'OpenStdin', 'StdinOnce', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'HostConfig', 'User', 'Env'];
const PROTECTED_HOST_KEYS = ['AutoRemove', 'ConsoleSize'];

export function buildCreateBody(input: CreateBodyInput): Record<string, unknown> {
  const base: Record<string, unknown> = {
    Image: input.image,
    Env: [...input.env],
    // Overriding both: CI images often have an entrypoint script that would wrap our command.
    Entrypoint: [...input.entrypoint],
    Cmd: [],
    Tty: input.tty,
    OpenStdin: input.openStdin,
    // With StdinOnce, closing our attached stdin closes the program's stdin (EOF) for good.
    StdinOnce: input.openStdin,
    AttachStdin: input.openStdin,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: input.hostConfig,
  };
  if (input.user !== '') base['User'] = input.user;
  if (input.container.workingDir) base['WorkingDir'] = input.container.workingDir;
  if (input.container.hostname) base['Hostname'] = input.container.hostname;
  const body = mergeCaseInsensitive(base, input.container.extra, PROTECTED_BODY_KEYS);
  const extraLabels = getCaseInsensitive(input.container.extra, 'Labels');
  body['Labels'] = { ...(isStringMap(extraLabels) ? extraLabels : {}), ...input.labels };
  return body;
}

/** HostConfig with the secure defaults; `consoleSize` is [rows, cols] (honoured by Engine API ≥ 1.42). */
export function buildHostConfig(options: DockerHostConfigOptions, consoleSize?: readonly [number, number]): Record<string, unknown> {
  const base: Record<string, unknown> = {
    // docker-init as PID 1: signals reach the program, zombies are reaped.
    Init: true,
    // The json-file driver throttles output (~25 MB/s) and keeps a copy on disk; output only
    // ever travels through the attach/exec stream.
    LogConfig: { Type: 'none', Config: {} },
    Memory: options.memory ?? DOCKER_DEFAULTS.memory,
    NanoCpus: options.nanoCpus ?? DOCKER_DEFAULTS.nanoCpus,
    PidsLimit: options.pidsLimit ?? DOCKER_DEFAULTS.pidsLimit,
    CapDrop: [...(options.capDrop ?? DOCKER_DEFAULTS.capDrop)],
    SecurityOpt: mergeSecurityOpt(options.securityOpt ?? []),
    AutoRemove: false,
  };
  if (options.capAdd) base['CapAdd'] = [...options.capAdd];
  if (options.readonlyRootfs !== undefined) base['ReadonlyRootfs'] = options.readonlyRootfs;
  if (options.tmpfs) base['Tmpfs'] = { ...options.tmpfs };
  if (options.networkMode) base['NetworkMode'] = options.networkMode;
  if (consoleSize) base['ConsoleSize'] = [...consoleSize];
  return mergeCaseInsensitive(base, options.extra, PROTECTED_HOST_KEYS);
}

/** Adds "no-new-privileges" unless the list already says something about it (e.g. ":false"). */
export function mergeSecurityOpt(configured: readonly string[]): string[] {
  const out = [...new Set(configured)];
  if (!out.some((opt) => /^no-new-privileges(?:[:=]|$)/.test(opt))) out.unshift(...DOCKER_DEFAULTS.securityOpt);
  return out;
}

/** Mount points of tmpfs mounts in a built HostConfig (`Tmpfs` keys and `Mounts` of type tmpfs). */
export function tmpfsMountPoints(hostConfig: Record<string, unknown>): string[] {
  const points: string[] = [];
  const tmpfs = getCaseInsensitive(hostConfig, 'Tmpfs');
  if (tmpfs && typeof tmpfs === 'object' && !Array.isArray(tmpfs)) points.push(...Object.keys(tmpfs));
  const mounts = getCaseInsensitive(hostConfig, 'Mounts');
  if (Array.isArray(mounts)) {
    for (const mount of mounts) {
      if (!mount || typeof mount !== 'object') continue;
      const type = getCaseInsensitive(mount as Record<string, unknown>, 'Type');
      const target = getCaseInsensitive(mount as Record<string, unknown>, 'Target');
      if (type === 'tmpfs' && typeof target === 'string') points.push(target);
    }
  }
  return points;
}

export function mergeCaseInsensitive(base: Record<string, unknown>, extra: Readonly<Record<string, unknown>>, protectedKeys: readonly string[]): Record<string, unknown> {
  const out = { ...base };
  const guarded = new Set(protectedKeys.map((k) => k.toLowerCase()));
  for (const [key, value] of Object.entries(extra)) {
    const lower = key.toLowerCase();
    if (guarded.has(lower)) continue;
    // Keep our spelling of a key the Engine would treat as the same field.
    const existing = Object.keys(out).find((k) => k.toLowerCase() === lower);
    out[existing ?? key] = value;
  }
  return out;
}

function getCaseInsensitive(obj: Readonly<Record<string, unknown>>, key: string): unknown {
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function isStringMap(value: unknown): value is Record<string, string> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
