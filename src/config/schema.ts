import { z } from 'zod';
import { checkPassthroughKeys, definedOnly, passthroughMap } from './docker-passthrough.js';
import { byteSize, durationMs, envMap, httpUrl, listenAddress } from './value-parsers.js';
import { kubernetesSchema } from './kubernetes-schema.js';
import { sshProxySchema } from './sshproxy-schema.js';

/**
 * The YAML config file. Key names follow ContainerSSH 0.5 where it has them so existing configs
 * carry over. Every object is strict — an unknown key is an error naming the key — except the two
 * Docker create-body objects, whose untyped keys are passed to Docker under `extra`.
 * Nested sections use `.prefault({})`: zod 4's `.default()` would return the default object as-is
 * and skip the defaults of the fields inside it.
 */

// Algorithms ssh2 implements, minus the ones with known weaknesses (CBC, arcfour, SHA-1, MD5,
// group1/group14-sha1): ContainerSSH's default lists are a subset, so copied configs still pass.
export const SSH_CIPHERS = [
  'chacha20-poly1305@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-gcm@openssh.com',
  'aes256-ctr',
  'aes192-ctr',
  'aes128-ctr',
] as const;
export const SSH_KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
] as const;
export const SSH_MACS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
] as const;
export const SSH_HOST_KEY_ALGOS = ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256'] as const;

const text = () => z.string().min(1);

// RFC 4253 §4.2: "SSH-2.0-softwareversion [SP comments]", printable US-ASCII, the software version
// without spaces or minus signs, at most 255 bytes including the CR LF.
const SERVER_VERSION = /^SSH-2\.0-[\x21-\x2c\x2e-\x7e]+(?: [\x20-\x7e]*)?$/;

export const sshSchema = z.strictObject({
  listen: listenAddress().default('0.0.0.0:2222'),
  hostkeys: z.array(text()).default([]),
  /** OpenSSH host certificate files (`ssh-keygen -s ca -h`), each for one of the host keys. */
  hostcerts: z.array(text()).default([]),
  generatedHostKeyPath: text().default('.airlock/ssh_host_ed25519_key'),
  ciphers: z
    .array(z.enum(SSH_CIPHERS))
    .min(1)
    .default(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com']),
  kex: z.array(z.enum(SSH_KEX)).min(1).default(['curve25519-sha256', 'curve25519-sha256@libssh.org']),
  macs: z.array(z.enum(SSH_MACS)).min(1).default(['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com']),
  hostKeyAlgos: z.array(z.enum(SSH_HOST_KEY_ALGOS)).min(1).default(['ssh-ed25519']),
  banner: z.string().default(''),
  /** Shown to interactive (shell) logins, with the recording notice and the session deadline. */
  motd: z.string().optional(),
  serverVersion: z
    .string()
    .max(253)
    .regex(SERVER_VERSION, {
      message:
        'must look like "SSH-2.0-Name_1.0": start with SSH-2.0-, printable ASCII, no spaces or "-" in the software version (RFC 4253 §4.2)',
    })
    .default('SSH-2.0-Airlock'),
  clientAliveInterval: durationMs({ zeroDisables: true, minMs: 1000 }).default(15_000),
  clientAliveCountMax: z.int().min(1).default(3),
  loginGraceTime: durationMs().default(30_000),
  maxAuthTries: z.int().min(1).default(6),
  idleTimeout: durationMs({ zeroDisables: true, minMs: 1000 }).default(1_800_000),
  shutdownTimeout: durationMs().default(10_000),
  /** Lead time of the "this session ends in ..." line before a connection's deadline; 0 = none. */
  deadlineWarning: durationMs({ zeroDisables: true, minMs: 1000 }).default(300_000),
  /**
   * Airlock addition (ContainerSSH and sshd have no such limit): every connection is closed this
   * long after login, with the deadline machinery of token logins; 0 = no limit.
   */
  maxConnectionDuration: durationMs({ zeroDisables: true, minMs: 1000 }).default(0),
});

// ContainerSSH writes `method: ""` for a disabled method; read it as "none".
const authMethod = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess((v) => (v === '' ? 'none' : v), z.enum(values)).default('none' as T[number]);

const webhookClientSchema = z.strictObject({
  url: httpUrl().optional(),
  timeout: durationMs({ minMs: 100 }).default(2_000),
});

const passwordAuthSchema = z.strictObject({
  method: authMethod(['webhook', 'none']),
  webhook: webhookClientSchema.prefault({}),
});

const publicKeyAuthSchema = z.strictObject({
  method: authMethod(['webhook', 'authorizedKeys', 'none']),
  webhook: webhookClientSchema.prefault({}),
  authorizedKeys: text().optional(),
  /** SSH user certificate CAs: inline public keys or files of them. Works with any method. */
  trustedUserCAKeys: z.array(text()).min(1).optional(),
  /** Plain revocation list file (serial:/id:/key:/sha256: lines), re-read on every login. */
  revokedKeys: text().optional(),
  /**
   * Close a certificate login's connection at the certificate's `valid before`. Off by default,
   * as in sshd, which checks the window only at login: short-lived certificates (minutes, from
   * an SSH CA service) are meant to open a session, not to bound it.
   */
  closeAtCertificateExpiry: z.boolean().default(false),
});

/** Airlock's own keyboard-interactive webhook (`POST <url>/keyboard-interactive`, src/auth/keyboard-interactive.ts). */
const keyboardInteractiveAuthSchema = z.strictObject({
  method: authMethod(['webhook', 'none']),
  webhook: webhookClientSchema.prefault({}),
});

/** ContainerSSH's authorization step (`POST <url>/authz` after a successful authentication). */
const authzSchema = z.strictObject({
  method: authMethod(['webhook', 'none']),
  webhook: webhookClientSchema.prefault({}),
});

/** One failed-login limit: `maxFailures` within `window` block the key for `blockFor`; 0 = off. */
const failureLimitSchema = (defaults: { maxFailures: number; window: number; blockFor: number }) =>
  z.strictObject({
    maxFailures: z.int().min(0).max(1_000_000).default(defaults.maxFailures),
    window: durationMs({ minMs: 1000 }).default(defaults.window),
    blockFor: durationMs({ minMs: 1000 }).default(defaults.blockFor),
  });

// Per address stricter than per user: one guessing source is stopped before it can lock a
// user out; a distributed guess at one account still meets the per-user limit.
export const RATE_LIMIT_DEFAULTS = {
  perIp: { maxFailures: 10, window: 300_000, blockFor: 600_000 },
  perUser: { maxFailures: 20, window: 300_000, blockFor: 300_000 },
} as const;

const rateLimitSchema = z.strictObject({
  perIp: failureLimitSchema(RATE_LIMIT_DEFAULTS.perIp).prefault({}),
  perUser: failureLimitSchema(RATE_LIMIT_DEFAULTS.perUser).prefault({}),
});

/** Reads a nested field of a value that may not have parsed cleanly (refinements run regardless). */
function field(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function checkAuth(value: unknown, ctx: z.RefinementCtx): void {
  const password = field(value, 'password', 'method');
  const publicKey = field(value, 'publicKey', 'method');
  const methods = [
    ['password', password],
    ['publicKey', publicKey],
    ['keyboardInteractive', field(value, 'keyboardInteractive', 'method')],
    ['authz', field(value, 'authz', 'method')],
  ] as const;
  for (const [name, method] of methods) {
    const url = field(value, name, 'webhook', 'url');
    if (method === 'webhook' && url === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [name, 'webhook', 'url'],
        message: `required when auth.${name}.method is "webhook" — set it to the webhook base URL (e.g. http://auth:8080)`,
      });
    }
    if ((method === 'none' || method === 'authorizedKeys') && url !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [name, 'webhook', 'url'],
        message: `is set but auth.${name}.method is "${method}", so it would be ignored — set auth.${name}.method to "webhook" or remove the url`,
      });
    }
  }
  const keysFile = field(value, 'publicKey', 'authorizedKeys');
  if (publicKey === 'authorizedKeys' && keysFile === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['publicKey', 'authorizedKeys'],
      message: 'required when auth.publicKey.method is "authorizedKeys" — set it to the path of an authorized_keys file',
    });
  }
  if (field(value, 'publicKey', 'closeAtCertificateExpiry') === true && field(value, 'publicKey', 'trustedUserCAKeys') === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['publicKey', 'closeAtCertificateExpiry'],
      message: 'applies to SSH certificate logins only — set auth.publicKey.trustedUserCAKeys or remove it',
    });
  }
  if ((publicKey === 'none' || publicKey === 'webhook') && keysFile !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['publicKey', 'authorizedKeys'],
      message: `is set but auth.publicKey.method is "${publicKey}", so it would be ignored — set auth.publicKey.method to "authorizedKeys" or remove it`,
    });
  }
}

export const authSchema = z
  .strictObject({
    password: passwordAuthSchema.prefault({}),
    publicKey: publicKeyAuthSchema.prefault({}),
    keyboardInteractive: keyboardInteractiveAuthSchema.prefault({}),
    authz: authzSchema.prefault({}),
    authTimeout: durationMs({ minMs: 100 }).default(60_000),
    rateLimit: rateLimitSchema.prefault({}),
  })
  // Cross-field rules run even when a sibling key failed, so one run reports every problem.
  .superRefine(checkAuth, { when: () => true });

export const DOCKER_DEFAULT_HOST = 'unix:///var/run/docker.sock';
/** `podman system service` as root (what ContainerSSH documents for Podman). */
export const PODMAN_DEFAULT_HOST = 'unix:///run/podman/podman.sock';
const DOCKER_HOST = /^(?:unix:\/\/\/\S+|tcp:\/\/[^\s/:]+:\d{1,5}\/?)$/;

const dockerConnectionSchema = z
  .strictObject({
    host: z
      .string()
      .regex(DOCKER_HOST, { message: 'must be unix:///path/to/docker.sock or tcp://host:port' })
      .default(DOCKER_DEFAULT_HOST),
    cert: text().optional(),
    key: text().optional(),
    cacert: text().optional(),
  })
  .superRefine(
    (value, ctx) => {
      const cert = field(value, 'cert');
      const key = field(value, 'key');
      if ((cert === undefined) !== (key === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [cert === undefined ? 'cert' : 'key'],
          message: 'TLS client authentication needs both docker.connection.cert and docker.connection.key — set both or neither',
        });
      }
      const host = field(value, 'host');
      const tls = cert !== undefined || key !== undefined || field(value, 'cacert') !== undefined;
      if (tls && typeof host === 'string' && host.startsWith('unix://')) {
        ctx.addIssue({
          code: 'custom',
          path: ['host'],
          message: 'TLS settings (cert, key, cacert) only apply to tcp:// hosts — use a tcp://host:port host or remove them',
        });
      }
    },
    { when: () => true },
  );

const RESERVED_LABEL_PREFIX = 'airlock.';

const labelMap = z.record(z.string(), z.string()).superRefine(
  (labels, ctx) => {
    if (labels === null || typeof labels !== 'object') return;
    for (const name of Object.keys(labels)) {
      if (name.startsWith(RESERVED_LABEL_PREFIX)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          // The reaper trusts airlock.* labels to decide what to delete.
          message: `labels starting with "${RESERVED_LABEL_PREFIX}" are reserved for the gateway — choose another name`,
        });
      }
    }
  },
  { when: () => true },
);

export const CONTAINER_TYPED_KEYS = ['image', 'user', 'env', 'labels', 'workingDir', 'hostname'] as const;

/** Docker's container create body (camelCase; the Engine matches field names case-insensitively). */
export interface DockerContainerConfig {
  image: string;
  user?: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  workingDir?: string;
  hostname?: string;
  /** Every other create-body field, passed to Docker unchanged. */
  extra: Record<string, unknown>;
}

const dockerContainerSchema = z
  .looseObject({
    image: text().default('airlock-demo:latest'),
    user: text().optional(),
    env: envMap().default({}),
    labels: labelMap.default({}),
    workingDir: text().optional(),
    hostname: text().optional(),
    extra: passthroughMap.optional(),
  })
  .superRefine((value, ctx) => checkPassthroughKeys(value, CONTAINER_TYPED_KEYS, ctx), { when: () => true })
  .transform(({ image, user, env, labels, workingDir, hostname, extra, ...rest }): DockerContainerConfig =>
    definedOnly({ image, user, env, labels, workingDir, hostname, extra: { ...extra, ...rest } }),
  );

export const HOST_TYPED_KEYS = [
  'memory',
  'nanoCpus',
  'cpus',
  'pidsLimit',
  'securityOpt',
  'readonlyRootfs',
  'tmpfs',
  'capDrop',
  'capAdd',
  'networkMode',
] as const;

/** Docker's HostConfig (camelCase). `cpus` in the file becomes `nanoCpus` here. */
export interface DockerHostConfig {
  /** Bytes. */
  memory?: number;
  /** CPU quota in units of 1e-9 CPUs. */
  nanoCpus?: number;
  pidsLimit?: number;
  securityOpt?: string[];
  readonlyRootfs?: boolean;
  tmpfs?: Record<string, string>;
  capDrop?: string[];
  capAdd?: string[];
  networkMode?: string;
  /** Every other HostConfig field, passed to Docker unchanged. */
  extra: Record<string, unknown>;
}

const dockerHostSchema = z
  .looseObject({
    memory: byteSize().optional(),
    nanoCpus: z.int().positive().optional(),
    cpus: z.number().positive().optional(),
    pidsLimit: z.int().min(-1).optional(),
    securityOpt: z.array(text()).optional(),
    readonlyRootfs: z.boolean().optional(),
    tmpfs: z.record(text(), z.string()).optional(),
    capDrop: z.array(text()).optional(),
    capAdd: z.array(text()).optional(),
    networkMode: text().optional(),
    extra: passthroughMap.optional(),
  })
  .superRefine(
    (value, ctx) => {
      checkPassthroughKeys(value, HOST_TYPED_KEYS, ctx);
      if (field(value, 'cpus') !== undefined && field(value, 'nanoCpus') !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['cpus'],
          message: 'set either cpus (e.g. 1.5) or nanoCpus (e.g. 1500000000), not both',
        });
      }
    },
    { when: () => true },
  )
  .transform((value): DockerHostConfig => {
    const { memory, nanoCpus, cpus, pidsLimit, securityOpt, readonlyRootfs, tmpfs, capDrop, capAdd, networkMode, extra, ...rest } =
      value;
    return definedOnly({
      memory,
      nanoCpus: nanoCpus ?? (cpus === undefined ? undefined : Math.round(cpus * 1e9)),
      pidsLimit,
      securityOpt,
      readonlyRootfs,
      tmpfs,
      capDrop,
      capAdd,
      networkMode,
      extra: { ...extra, ...rest },
    });
  });

const commandSchema = z.array(text()).min(1);

const dockerExecutionSchema = z.strictObject({
  container: dockerContainerSchema.prefault({}),
  host: dockerHostSchema.prefault({}),
  mode: z.enum(['connection', 'session']).default('connection'),
  shellCommand: commandSchema.optional(),
  idleCommand: commandSchema.default(['/bin/sh', '-c', 'while :; do sleep 3600; done']),
  subsystems: z.record(text(), text()).default({ sftp: '/usr/lib/openssh/sftp-server' }),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
});

const dockerTimeoutsSchema = z.strictObject({
  containerStart: durationMs().default(60_000),
  containerStop: durationMs().default(10_000),
  commandStart: durationMs().default(60_000),
  signal: durationMs().default(10_000),
  window: durationMs().default(10_000),
  http: durationMs().default(15_000),
});

const reaperSchema = z.strictObject({
  interval: durationMs({ zeroDisables: true, minMs: 1000 }).default(60_000),
  foreignMaxAge: durationMs({ minMs: 1000 }).default(86_400_000),
});

// Warm pool: containers started ahead of time (connection mode); see src/backend/docker/pool.ts.
const dockerPoolSchema = z.strictObject({
  size: z.int().min(0).max(100).default(0),
  image: text().optional(),
});

export const dockerSchema = z
  .strictObject({
    connection: dockerConnectionSchema.prefault({}),
    execution: dockerExecutionSchema.prefault({}),
    timeouts: dockerTimeoutsSchema.prefault({}),
    reaper: reaperSchema.prefault({}),
    pool: dockerPoolSchema.prefault({}),
    // The port-forwarding network helper (src/backend/docker/relay.ts), built without a registry
    // by scripts/build-relay-image.sh; set it to a copy in your registry where that is easier.
    relay: z.strictObject({ image: text().default('airlock-relay:busybox') }).prefault({}),
  })
  .superRefine(
    (value, ctx) => {
      const size = field(value, 'pool', 'size');
      if (typeof size === 'number' && size > 0 && field(value, 'execution', 'mode') === 'session') {
        ctx.addIssue({
          code: 'custom',
          path: ['pool', 'size'],
          message: 'the warm pool works in connection mode only — set docker.execution.mode to "connection" or docker.pool.size to 0',
        });
      }
    },
    { when: () => true },
  );

// A variable name, optionally ending in "*" for a prefix match; "*" alone matches every name.
const ENV_PATTERN = /^(?:[^\s=*]+\*?|\*)$/;
const envPattern = z.string().regex(ENV_PATTERN, {
  message: 'must be a variable name, optionally ending in * for a prefix match (e.g. LC_*)',
});

const policyMode = z.enum(['enable', 'filter', 'disable']);
// Absent sub-keys fall back to security.defaultMode (itself "enable"), as in ContainerSSH.
const listPolicySchema = z.strictObject({
  mode: policyMode.optional(),
  allow: z.array(text()).default([]),
  deny: z.array(text()).default([]),
});

export const securitySchema = z.strictObject({
  defaultMode: policyMode.optional(),
  /** Runs instead of every exec/shell/subsystem request (the request is in SSH_ORIGINAL_COMMAND). */
  forceCommand: text().optional(),
  /** filter = exec commands must equal an allow entry exactly. */
  command: z.strictObject({ mode: policyMode.optional(), allow: z.array(text()).default([]) }).optional(),
  /** filter has no list here and behaves as enable. */
  shell: z.strictObject({ mode: policyMode.optional() }).optional(),
  tty: z.strictObject({ mode: policyMode.optional() }).optional(),
  subsystem: listPolicySchema.optional(),
  signal: listPolicySchema.optional(),
  // Port forwarding is off unless enabled here: it never follows defaultMode (a network path into
  // or out of the workload is opened only on purpose). ContainerSSH accepts "filter" too, but
  // there is no list to filter by: a copied config still loads and "filter" means "disable", with
  // a start-up warning (compat-warnings.ts). Unix-socket and X11 forwarding are not implemented:
  // "enable" is refused for them.
  forwarding: z
    .strictObject({
      forwardingMode: z.enum(['enable', 'filter', 'disable']).default('disable'),
      reverseForwardingMode: z.enum(['enable', 'filter', 'disable']).default('disable'),
      socketForwardingMode: z.enum(['filter', 'disable']).default('disable'),
      socketListenMode: z.enum(['filter', 'disable']).default('disable'),
      x11ForwardingMode: z.enum(['filter', 'disable']).default('disable'),
    })
    .prefault({}),
  env: z
    .strictObject({
      mode: z.enum(['enable', 'filter', 'disable']).default('filter'),
      allow: z.array(envPattern).default(['LANG', 'LC_*', 'TERM', 'TZ', 'COLORTERM']),
      deny: z.array(envPattern).default([]),
    })
    .prefault({}),
  maxSessions: z
    .int()
    .refine((n) => n === -1 || n >= 1, { message: 'must be -1 (unlimited) or at least 1' })
    .default(-1),
});

// ContainerSSH's level names are accepted and mapped onto pino's.
const CONTAINERSSH_LOG_LEVELS: Record<string, string> = {
  notice: 'info',
  warning: 'warn',
  critical: 'fatal',
  alert: 'fatal',
  emergency: 'fatal',
};

export const logSchema = z
  .strictObject({
    level: z
      .preprocess(
        (v) => (typeof v === 'string' ? (CONTAINERSSH_LOG_LEVELS[v] ?? v) : v),
        z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
      )
      .default('info'),
    format: z.enum(['ljson', 'text']).default('ljson'),
    destination: z.enum(['stdout', 'stderr', 'file']).default('stdout'),
    file: text().optional(),
  })
  .superRefine(
    (value, ctx) => {
      const destination = field(value, 'destination');
      const file = field(value, 'file');
      if (destination === 'file' && file === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['file'],
          message: 'required when log.destination is "file" — set it to the log file path',
        });
      }
      if ((destination === 'stdout' || destination === 'stderr') && file !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['file'],
          message: `is set but log.destination is "${destination}", so it would be ignored — set log.destination to "file" or remove log.file`,
        });
      }
    },
    { when: () => true },
  );

// {{connectionId}}, {{username}}, {{date}} (YYYY-MM-DD, UTC) and {{metadata.NAME}}; src/audit/key-template.ts renders it.
const KEY_TEMPLATE_PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;
const KEY_TEMPLATE_NAME = /^(?:connectionId|username|date|metadata\.[A-Za-z0-9_.-]+)$/;

const keyTemplate = z.string().superRefine((value, ctx) => {
  for (const match of value.matchAll(KEY_TEMPLATE_PLACEHOLDER)) {
    if (!KEY_TEMPLATE_NAME.test(match[1] ?? '')) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown placeholder "${match[0]}" — use {{connectionId}}, {{username}}, {{date}} or {{metadata.NAME}}`,
      });
    }
  }
  if (value.startsWith('/')) ctx.addIssue({ code: 'custom', message: 'must not start with "/" (S3 keys are relative to the bucket)' });
}).transform(uniqueKeyTemplate);

/**
 * A template without {{connectionId}} (the issue's own `{{metadata.commit_sha}}/{{metadata.session_id}}/`)
 * gets `{{connectionId}}/` appended: one CI session can have several SSH connections, and two
 * recordings under one prefix would overwrite each other's files. Idempotent.
 */
export function uniqueKeyTemplate(template: string): string {
  if (/\{\{\s*connectionId\s*\}\}/.test(template)) return template;
  if (template === '') return '{{connectionId}}/';
  return `${template.endsWith('/') ? template : `${template}/`}{{connectionId}}/`;
}

const auditS3Schema = z.strictObject({
  local: text().optional(),
  bucket: text().optional(),
  region: text().default('us-east-1'),
  endpoint: httpUrl().optional(),
  accessKey: text().optional(),
  secretKey: text().optional(),
  pathStyleAccess: z.boolean().default(false),
  uploadPartSize: byteSize()
    .refine((n) => n >= 5 * 1024 * 1024, { message: 'must be at least 5MiB (the S3 minimum part size)' })
    .default(5 * 1024 * 1024),
  parallelUploads: z.int().min(1).max(1000).default(20),
  metadata: z
    .strictObject({
      ip: z.boolean().default(false),
      username: z.boolean().default(false),
    })
    .prefault({}),
  keyTemplate: keyTemplate.default('{{connectionId}}/'),
});

export const auditSchema = z
  .strictObject({
    enable: z.boolean().default(false),
    // ContainerSSH has binary | asciinema (| none); "both" is Airlock's spelling for writing both.
    format: z.enum(['binary', 'asciinema', 'both', 'none']).default('binary'),
    storage: z.enum(['none', 'file', 's3']).default('none'),
    file: z
      .strictObject({
        directory: text().optional(),
        // Storing is a rename on the same file system: a few at a time is plenty.
        parallelUploads: z.int().min(1).max(1000).default(4),
      })
      .prefault({}),
    s3: auditS3Schema.prefault({}),
    intercept: z
      .strictObject({
        // Airlock records every stream by default (ContainerSSH defaults to false): an audit
        // gateway that silently records no I/O would be a surprise.
        stdin: z.boolean().default(true),
        stdout: z.boolean().default(true),
        stderr: z.boolean().default(true),
        passwords: z
          .boolean()
          .refine((v) => !v, { message: 'Airlock never records passwords — set it to false or remove it' })
          .optional(),
        // The bytes of forwarded TCP connections (ssh -L / -R); their opening and closing (with
        // byte counts) are always recorded.
        forwarding: z.boolean().default(false),
      })
      .prefault({}),
    onFailure: z.enum(['deny', 'allow']).default('deny'),
    queueSize: byteSize().default(64 * 1024 * 1024),
    // Sealed recordings waiting in memory for an upload slot; the rest wait on the spool only.
    uploadQueueSize: z.int().min(1).max(1_000_000).default(1000),
  })
  .superRefine(
    (value, ctx) => {
      if (field(value, 'enable') !== true) return;
      const storage = field(value, 'storage');
      if (storage === 'none' || storage === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['storage'],
          message: 'must be "file" or "s3" when audit.enable is true — or set audit.enable to false',
        });
      }
      if (field(value, 'format') === 'none') {
        ctx.addIssue({
          code: 'custom',
          path: ['format'],
          message: 'must be binary, asciinema or both when audit.enable is true — or set audit.enable to false',
        });
      }
      if (storage === 'file' && field(value, 'file', 'directory') === undefined) {
        ctx.addIssue({ code: 'custom', path: ['file', 'directory'], message: 'required when audit.storage is "file" — set it to the recordings directory' });
      }
      if (storage === 's3') {
        for (const key of ['local', 'bucket'] as const) {
          if (field(value, 's3', key) === undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['s3', key],
              message:
                key === 'local'
                  ? 'required when audit.storage is "s3" — set it to a local spool directory (recordings wait there until uploaded)'
                  : 'required when audit.storage is "s3" — set it to the bucket name',
            });
          }
        }
      }
      if ((field(value, 's3', 'accessKey') === undefined) !== (field(value, 's3', 'secretKey') === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['s3', field(value, 's3', 'accessKey') === undefined ? 'accessKey' : 'secretKey'],
          message: 'set both audit.s3.accessKey and audit.s3.secretKey, or neither (then the AWS default credential chain is used)',
        });
      }
    },
    { when: () => true },
  );

/** Case-insensitive substrings of variable names stripped from CI-debug sessions (broker.policy). */
export const BROKER_SECRET_NAME_PATTERNS = ['SECRET', 'TOKEN', 'KEY', 'PASSWORD', 'CREDENTIAL', 'CERT', 'PRIVATE', 'API_KEY'] as const;

const brokerTokenKeySchema = z
  .strictObject({
    kid: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'must be 1-64 letters, digits, ".", "_" or "-"' })
      .optional(),
    privateKeyFile: text().optional(),
    publicKeyFile: text().optional(),
    secretFile: text().optional(),
  })
  .superRefine(
    (value, ctx) => {
      const set = ['privateKeyFile', 'publicKeyFile', 'secretFile'].filter((k) => field(value, k) !== undefined);
      if (set.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: [],
          message:
            'set exactly one of privateKeyFile (Ed25519 PKCS#8 PEM: signs and verifies), publicKeyFile (verify only, ' +
            'for rotation or a gateway without the broker) or secretFile (HS256 shared secret, at least 32 bytes)',
        });
      }
    },
    { when: () => true },
  );

const brokerPolicySchema = z
  .strictObject({
    defaultTtlSeconds: z.int().min(1).max(3600).default(1800),
    maxTtlSeconds: z.int().min(1).max(3600).default(3600),
    deadlineGraceSeconds: z.int().min(0).max(600).default(0),
    defaultMaxConnections: z.int().min(1).max(20).default(1),
    secretNamePatterns: z.array(text()).default([...BROKER_SECRET_NAME_PATTERNS]),
    keepEnvNames: z.array(text()).default([]),
    allowedImages: z.array(text()).min(1).default(['*']),
  })
  .superRefine(
    (value, ctx) => {
      const def = field(value, 'defaultTtlSeconds');
      const max = field(value, 'maxTtlSeconds');
      if (typeof def === 'number' && typeof max === 'number' && def > max) {
        ctx.addIssue({ code: 'custom', path: ['defaultTtlSeconds'], message: `must not exceed broker.policy.maxTtlSeconds (${max})` });
      }
    },
    { when: () => true },
  );

const brokerTokensSchema = z.strictObject({
  /** The first key that can sign signs new tokens; every key verifies (rotation). */
  keys: z.array(brokerTokenKeySchema).default([]),
  generatedKeyPath: text().default('.airlock/broker_ed25519_key.pem'),
  audience: text().default('airlock'),
  clockTolerance: durationMs({ zeroDisables: true })
    .refine((ms) => ms <= 60_000, { message: 'must be at most 60s' })
    .default(5_000),
});

const redisUrl = () =>
  z.string().refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'must be a redis:// or rediss:// URL (e.g. redis://redis:6379/0)' },
  );

export const brokerSchema = z
  .strictObject({
    listen: listenAddress().default('127.0.0.1:8080'),
    /** `airlock serve` runs the provisioning API in-process; false = token logins only (API elsewhere). */
    serveApi: z.boolean().default(true),
    provisionKeys: z
      .array(z.string().refine((k) => k.length >= 16, { message: 'must be at least 16 characters — generate one with: openssl rand -hex 32' }))
      .default([]),
    redisUrl: redisUrl().optional(),
    publicHost: text().optional(),
    publicPort: z.int().min(1).max(65535).optional(),
    allowStatelessTokens: z.boolean().default(false),
    policy: brokerPolicySchema.prefault({}),
    tokens: brokerTokensSchema.prefault({}),
  })
  .superRefine(
    (value, ctx) => {
      const keys = field(value, 'provisionKeys');
      if (field(value, 'serveApi') !== false && Array.isArray(keys) && keys.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['provisionKeys'],
          message:
            'needs at least one key when the provisioning API runs — set broker.provisionKeys or the AIRLOCK_PROVISION_KEYS ' +
            'environment variable (comma-separated), or set broker.serveApi: false',
        });
      }
    },
    { when: () => true },
  );

/**
 * ContainerSSH's config server: POSTed once per connection after authentication; its answer is
 * merged over this file for that connection (src/config/merge.ts). Absent = no config server.
 */
export const configServerSchema = z.strictObject({
  url: httpUrl(),
  /** One request (ContainerSSH's `timeout`). */
  timeout: durationMs({ minMs: 100 }).default(2_000),
  /** Airlock: the whole config step including retries; then the connection is refused. */
  totalTimeout: durationMs({ minMs: 100 }).default(10_000),
});

// ContainerSSH's defaults. /healthz and /readyz are kept free so both can share one listener.
const HTTP_PATH = /^\/[\x21-\x7e]*$/;

export const metricsSchema = z.strictObject({
  enable: z.boolean().default(false),
  listen: listenAddress().default('0.0.0.0:9100'),
  path: z
    .string()
    .regex(HTTP_PATH, { message: 'must be a URL path starting with "/" (e.g. /metrics), without spaces' })
    .refine((p) => p !== '/healthz' && p !== '/readyz', { message: 'is reserved for the health endpoints — use e.g. /metrics' })
    .default('/metrics'),
});

export const healthSchema = z.strictObject({
  enable: z.boolean().default(false),
  listen: listenAddress().default('0.0.0.0:7000'),
});

export const appConfigSchema = z
  .strictObject({
    ssh: sshSchema.prefault({}),
    auth: authSchema.prefault({}),
    configserver: configServerSchema.optional(),
    // podman = the docker backend and docker.* keys, defaulting to Podman's socket (see below).
    backend: z.enum(['docker', 'podman', 'kubernetes', 'sshproxy']).default('docker'),
    docker: dockerSchema.prefault({}),
    kubernetes: kubernetesSchema.prefault({}),
    /** Upstream SSH server for `backend: sshproxy`; required then. */
    sshproxy: sshProxySchema.optional(),
    security: securitySchema.prefault({}),
    audit: auditSchema.prefault({}),
    log: logSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    health: healthSchema.prefault({}),
    /** CI-debug broker: token logins, and the provisioning API in `airlock serve`. Absent = off. */
    broker: brokerSchema.optional(),
  })
  .superRefine(
    (value, ctx) => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return; // reported by the object check
      const none = (m: unknown) => m === 'none' || m === '' || m === undefined;
      if (
        none(field(value, 'auth', 'password', 'method')) &&
        none(field(value, 'auth', 'publicKey', 'method')) &&
        none(field(value, 'auth', 'keyboardInteractive', 'method')) &&
        field(value, 'auth', 'publicKey', 'trustedUserCAKeys') === undefined &&
        field(value, 'broker') === undefined
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['auth'],
          message:
            'no authentication method is enabled, so nobody could log in — set auth.publicKey.method to "authorizedKeys" ' +
            '(with auth.publicKey.authorizedKeys: path/to/authorized_keys) or "webhook", set auth.password.method to "webhook" ' +
            '(or auth.keyboardInteractive.method), ' +
            'or add a broker: section for CI-debug token logins',
        });
      }
    },
    { when: () => true },
  )
  .superRefine(
    (value, ctx) => {
      if (field(value, 'backend') === 'sshproxy' && field(value, 'sshproxy') === undefined) {
        ctx.addIssue({ code: 'custom', path: ['sshproxy'], message: 'required when backend is "sshproxy" — set at least sshproxy.server, allowedHostKeyFingerprints, username and privateKey or password' });
      }
    },
    { when: () => true },
  )
  .transform((config) =>
    // `backend: podman` without a host means Podman's rootful API socket, not Docker's default.
    config.backend === 'podman' && config.docker.connection.host === DOCKER_DEFAULT_HOST
      ? { ...config, docker: { ...config.docker, connection: { ...config.docker.connection, host: PODMAN_DEFAULT_HOST } } }
      : config,
  );

export type AppConfig = z.output<typeof appConfigSchema>;
/** What a config file may contain (durations as strings, env as a list, cpus, ...). */
export type AppConfigInput = z.input<typeof appConfigSchema>;
export type SshConfig = AppConfig['ssh'];
export type AuthConfig = AppConfig['auth'];
export type ConfigServerConfig = z.output<typeof configServerSchema>;
export type DockerConfig = AppConfig['docker'];
export type DockerExecutionConfig = DockerConfig['execution'];
export type KubernetesConfig = AppConfig['kubernetes'];
export type { SshProxyConfig } from './sshproxy-schema.js';
export type SecurityConfig = AppConfig['security'];
export type EnvPolicy = SecurityConfig['env'];
export type LogConfig = AppConfig['log'];
export type MetricsConfig = AppConfig['metrics'];
export type HealthConfig = AppConfig['health'];
export type AuditConfig = AppConfig['audit'];
export type BrokerConfig = z.output<typeof brokerSchema>;
